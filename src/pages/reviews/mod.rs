//! Access reviews: the items a reviewer has to decide (`/reviews`), the
//! campaigns with their progress and the forms that start one and name
//! role owners (`/reviews/campaigns`, in `campaigns`), and one campaign
//! (`/reviews/:id`, in `campaign`).

mod campaign;
mod campaigns;

pub use campaign::CampaignPage;
pub use campaigns::CampaignsPage;

use crate::api::*;
use crate::components::{class::*, Badge, Done, FormError, LoadError};
use crate::dto::ReviewItemView;
use leptos::prelude::*;

pub(super) const SMALL_INPUT: &str = "rounded-md border border-slate-300 px-2 py-1 text-sm";

/// What is known of an item's use, next to it.
fn facts(i: &ReviewItemView) -> String {
    let mut f = vec![format!("granted {}", i.granted_at)];
    if let Some(b) = &i.granted_by {
        f.push(format!("by {b}"));
    }
    f.push(format!("reason: {}", i.reason));
    f.push(format!(
        "last sign-in {}",
        i.last_sign_in.clone().unwrap_or_else(|| "never".into())
    ));
    f.push(format!(
        "last used {}",
        i.last_used.clone().unwrap_or_else(|| "never".into())
    ));
    if let Some(e) = &i.expires_at {
        f.push(format!("ends {e}"));
    }
    f.join(" · ")
}

#[component]
pub fn ReviewsPage() -> impl IntoView {
    let decide = ServerAction::<DecideReview>::new();
    let data = Resource::new(move || decide.version().get(), |_| my_reviews());
    let (unused, set_unused) = signal(false);
    let (critical, set_critical) = signal(false);
    view! {
        <h1 class="mb-2 text-2xl font-semibold">"Access reviews"</h1>
        <p class="mb-4 text-sm text-slate-600">
            "Keep, revoke, or convert each grant to time-boxed access before the deadline. A revoke takes effect at once "
            "and is final; keep and convert can be changed until the campaign closes. Keeping a critical permission needs a comment."
        </p>
        <Done action=decide message="Decision recorded." />
        <FormError action=decide />
        <div class="mb-4 flex gap-4 text-sm">
            <label class="flex items-center gap-2">
                <input type="checkbox" on:change=move |e| set_unused.set(event_target_checked(&e)) />
                "Unused for 30 days"
            </label>
            <label class="flex items-center gap-2">
                <input type="checkbox" on:change=move |e| set_critical.set(event_target_checked(&e)) />
                "Critical"
            </label>
        </div>
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(items) if items.is_empty() => {
                        view! { <p>"Nothing to review."</p> }.into_any()
                    }
                    Ok(items) => {
                        let shown = move |i: &ReviewItemView| {
                            (!unused.get() || i.unused_30_days) && (!critical.get() || i.critical)
                        };
                        let mut campaigns: Vec<(i64, String, String)> = items
                            .iter()
                            .map(|i| (i.campaign_id, i.campaign.clone(), i.due_at.clone()))
                            .collect();
                        campaigns.dedup();
                        view! {
                            {campaigns
                                .into_iter()
                                .map(|(cid, name, due)| {
                                    let people = by_person(items.iter().filter(|i| i.campaign_id == cid));
                                    view! {
                                        <section class=CARD aria-label=format!("Campaign {name}")>
                                            <h2 class="font-semibold">{name.clone()}</h2>
                                            <p class="mb-2 text-sm text-slate-600">"Due " {due}</p>
                                            {move || {
                                                people
                                                    .iter()
                                                    .filter_map(|(holder, items)| {
                                                        let shown: Vec<ReviewItemView> =
                                                            items.iter().filter(|i| shown(i)).cloned().collect();
                                                        (!shown.is_empty()).then(|| view! {
                                                            <Person holder=holder.clone() items=shown decide />
                                                        })
                                                    })
                                                    .collect_view()
                                            }}
                                        </section>
                                    }
                                })
                                .collect_view()}
                            <BulkForm decide />
                        }
                            .into_any()
                    }
                    Err(e) => view! { <LoadError error=e /> }.into_any(),
                }
            })}
        </Transition>
    }
}

/// A campaign's items grouped by the person (or token) holding them, in
/// the order given (the server sorts them by holder).
fn by_person<'a>(items: impl Iterator<Item = &'a ReviewItemView>) -> Vec<(String, Vec<ReviewItemView>)> {
    // Keyed by id and name: two people may share a name, tokens have no id.
    let mut keys: Vec<(Option<i64>, String)> = Vec::new();
    let mut out: Vec<(String, Vec<ReviewItemView>)> = Vec::new();
    for i in items {
        let key = (i.holder_id, i.holder.clone());
        match keys.iter().position(|k| *k == key) {
            Some(at) => out[at].1.push(i.clone()),
            None => {
                keys.push(key);
                out.push((i.holder.clone(), vec![i.clone()]));
            }
        }
    }
    out
}

/// One person's items in a campaign, under their name.
#[component]
fn Person(holder: String, items: Vec<ReviewItemView>, decide: ServerAction<DecideReview>) -> impl IntoView {
    view! {
        <div class="mt-3" role="group" aria-label=holder.clone() data-holder=holder.clone()>
            <h3 class="border-b border-slate-200 pb-1 text-sm font-semibold text-slate-800">
                {holder.clone()} <span class="font-normal text-slate-500">" · " {items.len()} " to review"</span>
            </h3>
            <ul class="divide-y divide-slate-100">
                {items.into_iter().map(|i| view! { <ItemRow item=i decide /> }).collect_view()}
            </ul>
        </div>
    }
}

/// One item: its facts, its current decision, and the decision forms.
#[component]
fn ItemRow(item: ReviewItemView, decide: ServerAction<DecideReview>) -> impl IntoView {
    let id = item.id.to_string();
    let label = format!("{} · {}", item.holder, item.role);
    let (select, comment, until) = (
        format!("Select {label}"),
        format!("Comment on {label}"),
        format!("Time-boxed until (UTC) for {label}"),
    );
    let facts = facts(&item);
    let hidden = id.clone();
    view! {
        <li class="py-3" data-item=id.clone() aria-label=label>
            <div class="flex flex-wrap items-center gap-2">
                <input type="checkbox" form="bulk" name="items[]" value=id.clone() aria-label=select />
                <span class="font-mono text-sm font-medium">{item.role.clone()}</span>
                {item.critical.then(|| view! { <Badge text="critical".to_owned() /> })}
                {item.unused_30_days.then(|| view! { <Badge text="unused 30 days".to_owned() /> })}
                {item
                    .decision
                    .clone()
                    .map(|d| {
                        let until = item.convert_until.clone().map(|u| format!(" until {u}")).unwrap_or_default();
                        view! { <span class="text-sm">"Decided: " {d} {until}</span> }
                    })}
            </div>
            <p class="text-xs text-slate-600">{item.permissions.join(", ")}</p>
            <p class="mb-2 text-xs text-slate-600">{facts}</p>
            <ActionForm action=decide attr:class="flex flex-wrap items-end gap-2">
                <input type="hidden" name="items[]" value=hidden />
                <input
                    name="comment"
                    class=SMALL_INPUT
                    placeholder="Comment"
                    aria-label=comment
                />
                <button type="submit" name="decision" value="keep" class=SMALL_BUTTON>
                    "Keep"
                </button>
                <button type="submit" name="decision" value="revoke" class=SMALL_DANGER>
                    "Revoke"
                </button>
                <input
                    type="datetime-local"
                    name="until"
                    class=SMALL_INPUT
                    aria-label=until
                />
                <button type="submit" name="decision" value="convert" class=SMALL_BUTTON>
                    "Convert to time-boxed"
                </button>
            </ActionForm>
        </li>
    }
}

/// The selected items' decision in one submit.
#[component]
fn BulkForm(decide: ServerAction<DecideReview>) -> impl IntoView {
    view! {
        <section class=CARD aria-labelledby="bulk-h">
            <h2 id="bulk-h" class="mb-2 font-semibold">"Decide the selected items"</h2>
            <ActionForm action=decide attr:id="bulk" attr:class="flex flex-wrap items-end gap-2">
                <select name="decision" class=SMALL_INPUT aria-label="Decision">
                    <option value="keep">"Keep"</option>
                    <option value="revoke">"Revoke"</option>
                    <option value="convert">"Convert to time-boxed"</option>
                </select>
                <input type="datetime-local" name="until" class=SMALL_INPUT aria-label="Until (UTC)" />
                <input name="comment" class=SMALL_INPUT placeholder="Comment" aria-label="Comment" />
                <button type="submit" class=BUTTON>"Apply to selected"</button>
            </ActionForm>
        </section>
    }
}
