//! Access reviews: the items a reviewer has to decide (`/reviews`), the
//! campaigns with their progress and the form that starts one
//! (`/reviews/campaigns`), and one campaign (`/reviews/:id`).

use crate::api::*;
use crate::components::{class::*, Badge, Done, Field, FormError, LoadError, StepUpCode};
use crate::dto::{CampaignView, ReviewItemView};
use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

const SMALL_INPUT: &str = "rounded-md border border-slate-300 px-2 py-1 text-sm";

/// A labelled input that may stay empty.
#[component]
fn Optional(
    label: &'static str,
    id: &'static str,
    name: &'static str,
    #[prop(default = "text")] kind: &'static str,
) -> impl IntoView {
    view! {
        <div class="mb-4">
            <label for=id class="mb-1 block text-sm font-medium text-slate-700">{label}</label>
            <input id=id name=name type=kind autocomplete="off" class=INPUT />
        </div>
    }
}

/// Decided out of total, as a bar and in words.
#[component]
fn Progress(decided: i64, total: i64, label: String) -> impl IntoView {
    // A native bar: the page's Content-Security-Policy allows no inline style.
    let (value, max) = if total == 0 { (1, 1) } else { (decided, total) };
    view! {
        <div class="mb-1 text-sm">
            <span>{label.clone()} ": " {decided} " of " {total} " decided"</span>
            <progress
                class="mt-1 block h-2 w-full accent-indigo-600"
                value=value.to_string()
                max=max.to_string()
                aria-label=format!("{label}: decided")
            >
                {format!("{decided} of {total}")}
            </progress>
        </div>
    }
}

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
                                    let items = items.clone();
                                    view! {
                                        <section class=CARD aria-label=format!("Campaign {name}")>
                                            <h2 class="font-semibold">{name.clone()}</h2>
                                            <p class="mb-2 text-sm text-slate-600">"Due " {due}</p>
                                            <ul class="divide-y divide-slate-100">
                                                {move || {
                                                    items
                                                        .iter()
                                                        .filter(|i| i.campaign_id == cid && shown(i))
                                                        .cloned()
                                                        .map(|i| view! { <ItemRow item=i decide /> })
                                                        .collect_view()
                                                }}
                                            </ul>
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
                <span class="font-medium">{item.holder.clone()}</span>
                <span class="font-mono text-sm">{item.role.clone()}</span>
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

fn campaign_summary(c: &CampaignView) -> impl IntoView + use<> {
    let state = match &c.closed_at {
        Some(at) => format!(
            "closed {at}{}",
            c.closed_by
                .clone()
                .map(|b| format!(" by {b}"))
                .unwrap_or_else(|| " at the deadline".into())
        ),
        None => format!("open, due {}", c.due_at),
    };
    let recurs = c
        .every_months
        .map(|m| format!(" · every {m} months"))
        .unwrap_or_default();
    view! {
        <p class="mb-2 text-sm text-slate-600">
            {c.scope.clone()} " · started " {c.starts_at.clone()} " · " {state} {recurs}
            " · undecided critical items: " {c.undecided_critical.clone()} " · other undecided items: "
            {c.undecided_other.clone()}
        </p>
        <Progress decided=c.decided total=c.items label="All items".to_owned() />
    }
}

#[component]
pub fn CampaignsPage() -> impl IntoView {
    let start = ServerAction::<StartReview>::new();
    let data = Resource::new(move || start.version().get(), |_| review_campaigns());
    view! {
        <h1 class="mb-4 text-2xl font-semibold">"Access review campaigns"</h1>
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(list) if list.is_empty() => view! { <p class="mb-6">"No campaigns yet."</p> }.into_any(),
                    Ok(list) => list
                        .into_iter()
                        .map(|c| {
                            view! {
                                <section class=CARD data-campaign=c.id.to_string()>
                                    <h2 class="font-semibold">
                                        <a class=LINK href=format!("/reviews/{}", c.id)>{c.name.clone()}</a>
                                    </h2>
                                    {campaign_summary(&c)}
                                </section>
                            }
                        })
                        .collect_view()
                        .into_any(),
                    Err(e) => view! { <LoadError error=e /> }.into_any(),
                }
            })}
        </Transition>
        <section class=CARD aria-labelledby="start-h">
            <h2 id="start-h" class="mb-2 font-semibold">"Start a campaign"</h2>
            <Done action=start message="Campaign started: its snapshot is taken." />
            <FormError action=start />
            <ActionForm action=start>
                <Field label="Name" name="name" autocomplete="off" hint="e.g. Q1 access review" />
                <label for="scope-kind" class="mb-1 block text-sm font-medium text-slate-700">"What to review"</label>
                <select id="scope-kind" name="scope_kind" class=INPUT>
                    <option value="all">"All standing grants"</option>
                    <option value="critical">"Grants carrying critical permissions"</option>
                    <option value="roles">"Grants of the roles below"</option>
                    <option value="department">"One department"</option>
                    <option value="tokens">"Service-account tokens"</option>
                </select>
                <Optional label="Role keys, separated by commas (for grants of chosen roles)" id="scope-roles" name="roles[]" />
                <Optional label="Department (for one department)" id="scope-department" name="department" />
                <Field label="Due in (days, 1 to 90)" name="due_in_days" kind="number" />
                <label for="critical-rule" class="mb-1 block text-sm font-medium text-slate-700">
                    "Undecided critical items at the deadline"
                </label>
                <select id="critical-rule" name="critical_rule" class=INPUT>
                    <option value="revoke">"Revoke"</option>
                    <option value="keep_and_flag">"Keep and flag"</option>
                </select>
                <label for="other-rule" class="mb-1 mt-2 block text-sm font-medium text-slate-700">
                    "Other undecided items at the deadline"
                </label>
                <select id="other-rule" name="other_rule" class=INPUT>
                    <option value="keep_and_flag">"Keep and flag"</option>
                    <option value="revoke">"Revoke"</option>
                </select>
                <Optional label="Repeat every (months, optional)" id="every-months" name="every_months" kind="number" />
                <div class="mb-4">
                    <StepUpCode id="start-code" />
                </div>
                <button type="submit" class=BUTTON>"Start campaign"</button>
            </ActionForm>
        </section>
        <RoleOwners />
    }
}

/// Who reviews a role's grants.
#[component]
fn RoleOwners() -> impl IntoView {
    let set = ServerAction::<SetRoleOwners>::new();
    view! {
        <section class=CARD aria-labelledby="owners-h">
            <h2 id="owners-h" class="mb-2 font-semibold">"Role owners"</h2>
            <p class="mb-2 text-sm text-slate-600">
                "Owners review the grants of their role in the campaigns started after this; "
                "a role without owners is reviewed by administrators. Nobody reviews their own access."
            </p>
            <Done action=set message="Owners saved." />
            <FormError action=set />
            <ActionForm action=set>
                <Field label="Role key" name="role" autocomplete="off" hint="e.g. support" />
                <Optional
                    label="Owners (employee numbers, separated by commas; empty for administrators)"
                    id="role-owners"
                    name="owners"
                />
                <button type="submit" class=BUTTON>"Save owners"</button>
            </ActionForm>
        </section>
    }
}

#[component]
pub fn CampaignPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.with(|p| p.get("id").and_then(|s| s.parse::<i64>().ok()).unwrap_or(0));
    let close = ServerAction::<CloseReview>::new();
    let reassign = ServerAction::<ReassignReviewItem>::new();
    let data = Resource::new(
        move || (id(), close.version().get() + reassign.version().get()),
        |(id, _)| review_campaign(id),
    );
    view! {
        <p class="mb-2 text-sm">
            <a class=LINK href="/reviews/campaigns">"← Campaigns"</a>
        </p>
        <FormError action=close />
        <FormError action=reassign />
        <Done action=reassign message="Item reassigned." />
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok((c, items)) => {
                        let cid = c.id;
                        view! {
                            <h1 class="mb-2 text-2xl font-semibold">{c.name.clone()}</h1>
                            {campaign_summary(&c)}
                            <section class=CARD aria-label="Progress by reviewer">
                                {c.by_reviewer
                                    .iter()
                                    .map(|(who, d, t)| view! { <Progress decided=*d total=*t label=who.clone() /> })
                                    .collect_view()}
                            </section>
                            <p class="mb-4 text-sm">
                                <a class=LINK href=format!("/reviews/{cid}/report.csv") rel="external" download="">
                                    "Download the report (CSV)"
                                </a>
                                {c
                                    .closed_at
                                    .is_some()
                                    .then(|| {
                                        view! {
                                            " · "
                                            <a
                                                class=LINK
                                                href=format!("/reviews/{cid}/evidence.jsonl")
                                                rel="external"
                                                download=""
                                            >
                                                "Download the evidence bundle"
                                            </a>
                                        }
                                    })}
                                {c
                                    .report_sha256
                                    .clone()
                                    .map(|h| {
                                        view! { " · SHA-256 " <span class="break-all font-mono text-xs">{h}</span> }
                                    })}
                            </p>
                            {c.closed_at.is_none().then(|| view! {
                                <section class=CARD aria-labelledby="close-h">
                                    <h2 id="close-h" class="mb-2 font-semibold">"Close now"</h2>
                                    <p class="mb-2 text-sm text-slate-600">
                                        "Undecided items are revoked or kept and flagged as the campaign says, "
                                        "now instead of at the deadline."
                                    </p>
                                    <ActionForm action=close attr:class="flex flex-wrap items-end gap-2">
                                        <input type="hidden" name="id" value=cid.to_string() />
                                        <StepUpCode id="close-code" />
                                        <button type="submit" class=DANGER>"Close now"</button>
                                    </ActionForm>
                                </section>
                            })}
                            <table class="w-full text-sm">
                                <thead>
                                    <tr>
                                        <th class=TH>"Holder"</th>
                                        <th class=TH>"Role"</th>
                                        <th class=TH>"Reviewers"</th>
                                        <th class=TH>"Decision"</th>
                                        <th class=TH>"Outcome"</th>
                                    </tr>
                                </thead>
                                <tbody>
                                    {items
                                        .into_iter()
                                        .map(|i| {
                                            let open = c.closed_at.is_none() && i.decision.as_deref() != Some("revoke");
                                            view! {
                                                <tr data-item=i.id.to_string()>
                                                    <td class=TD>{i.holder.clone()}</td>
                                                    <td class=TD>
                                                        <span class="font-mono">{i.role.clone()}</span>
                                                        {i.critical.then(|| view! { " " <Badge text="critical".to_owned() /> })}
                                                    </td>
                                                    <td class=TD>
                                                        {i.reviewers.clone()}
                                                        {open.then(|| view! {
                                                            <ActionForm action=reassign attr:class="mt-1 flex gap-1">
                                                                <input type="hidden" name="id" value=i.id.to_string() />
                                                                <input
                                                                    name="to"
                                                                    inputmode="numeric"
                                                                    class=SMALL_INPUT
                                                                    aria-label="Employee number"
                                                                />
                                                                <button type="submit" class=SMALL_BUTTON>"Reassign"</button>
                                                            </ActionForm>
                                                        })}
                                                    </td>
                                                    <td class=TD>
                                                        {i.decision.clone().unwrap_or_else(|| "undecided".into())}
                                                        {i.decided_by.clone().map(|b| format!(" by {b}"))}
                                                        {i.comment.clone().map(|c| format!(": {c}"))}
                                                    </td>
                                                    <td class=TD>
                                                        {i.outcome.clone().unwrap_or_default()}
                                                        {i.flags.clone().map(|f| format!(" ({f})"))}
                                                    </td>
                                                </tr>
                                            }
                                        })
                                        .collect_view()}
                                </tbody>
                            </table>
                        }
                            .into_any()
                    }
                    Err(e) => view! { <LoadError error=e /> }.into_any(),
                }
            })}
        </Transition>
    }
}
