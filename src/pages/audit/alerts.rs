//! Anomaly alerts, for administrators and auditors: see them and acknowledge them.

use crate::components::class::{BUTTON, INPUT};
use crate::components::{FormError, LoadError};
use leptos::prelude::*;

/// Open anomaly alerts with an acknowledge form; the latest acknowledged
/// ones below. Shown to administrators (overview) and auditors (trail),
/// loaded after the page hydrates.
#[component]
pub fn AlertsPanel() -> impl IntoView {
    use crate::api::AcknowledgeAlert;
    let ack = ServerAction::<AcknowledgeAlert>::new();
    // Loaded in the browser only: the server renders the placeholder. A full
    // test run twice saw the server's streamed page stall mid-body when this
    // list (with its forms) was rendered on the server.
    let list = LocalResource::new(move || {
        ack.version().get();
        crate::api::alerts()
    });
    view! {
        <section id="alerts" class="mb-6 rounded-lg border border-slate-200 bg-white p-4" aria-labelledby="alerts-h">
            <h2 id="alerts-h" class="mb-2 font-semibold">
                "Alerts"
            </h2>
            <FormError action=ack />
            <Suspense fallback=|| {
                view! { <p class="text-sm">"Loading alerts…"</p> }
            }>
                {move || Suspend::new(async move {
                    match list.await {
                        Ok(all) => {
                            let (open, done): (Vec<_>, Vec<_>) = all
                                .into_iter()
                                .partition(|a| a.acknowledged_at.is_none());
                            view! {
                                {if open.is_empty() {
                                    Some(
                                        view! {
                                            <p id="no-open-alerts" class="text-sm text-slate-600">
                                                "No open alerts."
                                            </p>
                                        },
                                    )
                                } else {
                                    None
                                }}
                                <ul id="open-alerts" class="divide-y divide-slate-100 text-sm">
                                    {open
                                        .into_iter()
                                        .map(|a| {
                                            view! {
                                                <li class="py-2" data-alert=a.id.to_string() data-rule=a.rule.clone()>
                                                    <p>
                                                        <span class="font-medium text-red-800">{a.rule.clone()}</span>
                                                        " · "
                                                        {a.raised_at.clone()}
                                                        " · "
                                                        {a.employee.clone().unwrap_or_else(|| "no employee".into())}
                                                        " · "
                                                        {a.summary.clone()}
                                                        " · "
                                                        {event_link(a.event_seq)}
                                                    </p>
                                                    {(a.count > 1)
                                                        .then(|| {
                                                            view! {
                                                                <p class="text-xs text-slate-600" data-count=a.count.to_string()>
                                                                    {format!("{} matches while open, the latest at ", a.count)}
                                                                    {a.last_seen_at.clone()}
                                                                    " ("
                                                                    {event_link(a.last_event_seq)}
                                                                    ")"
                                                                </p>
                                                            }
                                                        })}
                                                    <ActionForm
                                                        action=ack
                                                        attr:class="mt-1 flex flex-wrap items-end gap-2"
                                                    >
                                                        <input type="hidden" name="id" value=a.id.to_string() />
                                                        <label class="text-xs">
                                                            "What was checked "
                                                            <input
                                                                name="comment"
                                                                required
                                                                minlength="3"
                                                                maxlength="1000"
                                                                class=INPUT
                                                            />
                                                        </label>
                                                        <button type="submit" class=BUTTON>
                                                            "Acknowledge"
                                                        </button>
                                                    </ActionForm>
                                                </li>
                                            }
                                        })
                                        .collect_view()}
                                </ul>
                                {(!done.is_empty())
                                    .then(|| {
                                        view! {
                                            <details class="mt-2 text-sm">
                                                <summary class="cursor-pointer">"Acknowledged"</summary>
                                                <ul id="acknowledged-alerts" class="divide-y divide-slate-100">
                                                    {done
                                                        .into_iter()
                                                        .take(20)
                                                        .map(|a| {
                                                            view! {
                                                                <li class="py-1" data-alert=a.id.to_string()>
                                                                    {a.rule.clone()}
                                                                    " · "
                                                                    {a.summary.clone()}
                                                                    " · acknowledged by "
                                                                    {a.acknowledged_by.clone().unwrap_or_else(|| "Gatehouse".into())}
                                                                    " at "
                                                                    {a.acknowledged_at.clone().unwrap_or_default()}
                                                                    ": "
                                                                    {a.comment.clone().unwrap_or_default()}
                                                                </li>
                                                            }
                                                        })
                                                        .collect_view()}
                                                </ul>
                                            </details>
                                        }
                                    })}
                            }
                                .into_any()
                        }
                        Err(e) => view! { <LoadError error=e /> }.into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}

/// A link to one event of the trail (the console opened just after it).
fn event_link(seq: i64) -> impl IntoView {
    view! {
        <a class="text-indigo-700 underline" href=format!("/audit?before={}", seq + 1)>
            "event "
            {seq}
        </a>
    }
}
