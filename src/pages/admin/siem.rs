//! SIEM sinks on /admin: how far each has received the trail, what waits,
//! and why the last delivery failed.

use crate::components::LoadError;
use leptos::prelude::*;

/// One row per configured sink; nothing when none is configured. Loaded in
/// the browser after hydration, like the alerts beside it.
#[component]
pub fn SiemPanel() -> impl IntoView {
    let sinks = LocalResource::new(crate::api::siem_sinks);
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                match sinks.await {
                    Ok(list) if list.is_empty() => ().into_any(),
                    Ok(list) => view! { <SinkTable list /> }.into_any(),
                    Err(e) => view! { <LoadError error=e /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn SinkTable(list: Vec<crate::dto::SiemSinkView>) -> impl IntoView {
    view! {
        <section id="siem" class="mb-6 rounded-lg border border-slate-200 bg-white p-4" aria-labelledby="siem-h">
            <h2 id="siem-h" class="mb-2 font-semibold">
                "SIEM sinks"
            </h2>
            <table class="w-full text-left text-sm">
                <thead class="text-slate-600">
                    <tr>
                        <th scope="col" class="py-1 pr-4 font-medium">
                            "Sink"
                        </th>
                        <th scope="col" class="py-1 pr-4 font-medium">
                            "Delivered up to event"
                        </th>
                        <th scope="col" class="py-1 pr-4 font-medium">
                            "Backlog"
                        </th>
                        <th scope="col" class="py-1 pr-4 font-medium">
                            "Lag"
                        </th>
                        <th scope="col" class="py-1 font-medium">
                            "Last error"
                        </th>
                    </tr>
                </thead>
                <tbody class="divide-y divide-slate-100">
                    {list
                        .into_iter()
                        .map(|s| {
                            let failing = s.failures > 0;
                            view! {
                                <tr
                                    data-sink=s.name.clone()
                                    class=if failing { "text-amber-900" } else { "" }
                                >
                                    <td class="py-1 pr-4">
                                        <span class="font-medium">{s.name.clone()}</span>
                                        " "
                                        <span class="text-xs text-slate-600">{s.kind.clone()}</span>
                                    </td>
                                    <td class="py-1 pr-4" data-field="delivered">
                                        {s.delivered_seq}
                                    </td>
                                    <td class="py-1 pr-4" data-field="backlog">
                                        {s.backlog}
                                    </td>
                                    <td class="py-1 pr-4" data-field="lag">
                                        {if s.lag.is_empty() { "none".to_owned() } else { s.lag.clone() }}
                                    </td>
                                    <td class="py-1" data-field="error">
                                        {match (&s.last_error, &s.last_error_at) {
                                            (Some(e), Some(at)) => {
                                                let failing_now = if s.failures == 1 {
                                                    " (failing)".to_owned()
                                                } else if failing {
                                                    format!(" ({} failures in a row)", s.failures)
                                                } else {
                                                    " (since delivered)".to_owned()
                                                };
                                                format!("{at}: {e}{failing_now}")
                                            }
                                            _ => "none".to_owned(),
                                        }}
                                    </td>
                                </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
        </section>
    }
}
