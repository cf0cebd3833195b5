//! One campaign (`/reviews/:id`): its progress by reviewer, its items with
//! reassignment, "Close now", and the report and evidence downloads.

use super::campaigns::{campaign_summary, Progress};
use super::SMALL_INPUT;
use crate::api::*;
use crate::components::{class::*, Badge, Done, FormError, LoadError, StepUpCode};
use crate::dto::CampaignDetail;
use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

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
                    Ok(CampaignDetail { campaign: c, items, reassign_to }) => {
                        let cid = c.id;
                        let reassign_to = StoredValue::new(reassign_to);
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
                                            let open = c.closed_at.is_none() && i.decision.as_deref() != Some("revoke")
                                                && reassign_to.with_value(|r| !r.is_empty());
                                            let to_label = format!("Reassign {} · {} to", i.holder, i.role);
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
                                                                <select name="to" class=SMALL_INPUT aria-label=to_label>
                                                                    {reassign_to.with_value(|people| {
                                                                        people
                                                                            .iter()
                                                                            .filter(|p| Some(p.id) != i.holder_id)
                                                                            .map(|p| view! {
                                                                                <option value=p.id.to_string()>{p.name.clone()}</option>
                                                                            })
                                                                            .collect_view()
                                                                    })}
                                                                </select>
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
