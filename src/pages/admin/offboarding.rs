//! The offboarding report: who is leaving or has left, and their checklists.

use crate::api::*;
use crate::components::{class::*, LoadError};
use leptos::prelude::*;

// ---------------------------------------------------------------- offboarding report

#[component]
pub fn OffboardingPage() -> impl IntoView {
    let data = Resource::new(|| (), |_| offboarding_report());
    view! {
        <h1 class="mb-2 text-2xl font-semibold">"Offboarding report"</h1>
        <p class="mb-4 text-sm text-slate-600">
            "Scheduled and completed offboardings, with the steps outside Gatehouse."
        </p>
        <Suspense fallback=|| {
            view! { <p>"Loading…"</p> }
        }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(rows) if rows.is_empty() => view! { <p>"No offboardings."</p> }.into_any(),
                    Ok(rows) => {
                        view! {
                            <div class="overflow-x-auto rounded-lg border border-slate-200 bg-white">
                                <table id="offboarding" class="min-w-full divide-y divide-slate-200 text-sm">
                                    <caption class="sr-only">"Offboardings"</caption>
                                    <thead class="bg-slate-50">
                                        <tr>
                                            <th scope="col" class=TH>
                                                "Employee"
                                            </th>
                                            <th scope="col" class=TH>
                                                "Offboarded"
                                            </th>
                                            <th scope="col" class=TH>
                                                "Checklist"
                                            </th>
                                        </tr>
                                    </thead>
                                    <tbody class="divide-y divide-slate-100">
                                        {rows
                                            .into_iter()
                                            .map(|r| {
                                                let done = r.checklist.iter().filter(|c| c.done_at.is_some()).count();
                                                let total = r.checklist.len();
                                                view! {
                                                    <tr data-email=r.email.clone()>
                                                        <td class=TD>
                                                            <a class=LINK href=format!("/employees/{}", r.id)>
                                                                {r.name.clone()}
                                                            </a>
                                                            <span class="block text-xs text-slate-500">
                                                                {r.email.clone()}
                                                            </span>
                                                        </td>
                                                        <td class=TD>
                                                            {match (r.offboarded_at.clone(), r.offboard_at.clone()) {
                                                                (Some(t), _) => {
                                                                    format!(
                                                                        "{t}{}",
                                                                        r
                                                                            .offboarded_by
                                                                            .clone()
                                                                            .map(|b| format!(" by {b}"))
                                                                            .unwrap_or_default(),
                                                                    )
                                                                }
                                                                (None, Some(t)) => format!("scheduled for {t}"),
                                                                _ => String::new(),
                                                            }}
                                                        </td>
                                                        <td class=TD>
                                                            <span class="font-medium">
                                                                {format!("{done} of {total} done")}
                                                            </span>
                                                            <ul class="text-xs">
                                                                {r
                                                                    .checklist
                                                                    .into_iter()
                                                                    .map(|c| {
                                                                        view! {
                                                                            <li>
                                                                                {if c.done_at.is_some() { "✓ " } else { "○ " }}
                                                                                {c.label.clone()}
                                                                                {c
                                                                                    .done_by
                                                                                    .clone()
                                                                                    .map(|b| {
                                                                                        format!(
                                                                                            " — {b}, {}",
                                                                                            c.done_at.clone().unwrap_or_default(),
                                                                                        )
                                                                                    })}
                                                                            </li>
                                                                        }
                                                                    })
                                                                    .collect_view()}
                                                            </ul>
                                                            <TokensCreated tokens=r.tokens />
                                                        </td>
                                                    </tr>
                                                }
                                            })
                                            .collect_view()}
                                    </tbody>
                                </table>
                            </div>
                        }
                            .into_any()
                    }
                    Err(e) => view! { <LoadError error=e /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// The API tokens the employee created: revoked at offboarding, or listed
/// as still usable when GATEHOUSE_OFFBOARD_REVOKE_TOKENS is false.
#[component]
fn TokensCreated(tokens: Vec<crate::dto::CreatedToken>) -> impl IntoView {
    (!tokens.is_empty()).then(|| {
        view! {
            <p class="mt-2 text-xs font-medium">"API tokens they created"</p>
            <ul class="text-xs" data-tokens="">
                {tokens
                    .into_iter()
                    .map(|t| {
                        let state = match (t.usable, t.revoked_at) {
                            (true, _) => "still usable: revoke it on Service accounts".to_owned(),
                            (false, Some(at)) => format!("revoked {at}"),
                            (false, None) => "expired or its account disabled".to_owned(),
                        };
                        view! {
                            <li data-usable=t.usable.to_string()>
                                {if t.usable { "⚠ " } else { "✓ " }}
                                {format!("{} / {} ({state})", t.account, t.label)}
                            </li>
                        }
                    })
                    .collect_view()}
            </ul>
        }
    })
}
