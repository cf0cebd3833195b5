//! Elevations and tickets: every request and break-glass, and what was accessed under each.

use crate::components::LoadError;
use crate::dto::ElevationKind;
use leptos::prelude::*;

/// Every elevation request and break-glass activation, kept forever.
#[component]
pub fn ElevationsPage() -> impl IntoView {
    let list = Resource::new(|| (), |_| crate::api::elevation_history());
    view! {
        <h1 class="mb-2 text-2xl font-semibold">"Elevations and tickets"</h1>
        <p class="mb-4 text-sm text-slate-600">
            "Every request for elevated access and every break-glass activation, newest first. Open one to see what was accessed under it. "
            <a href="/audit" class="text-indigo-700 underline">
                "Back to the audit trail"
            </a>
        </p>
        <Transition fallback=|| {
            view! { <p>"Loading…"</p> }
        }>
            {move || Suspend::new(async move {
                match list.await {
                    Ok(l) if l.is_empty() => {
                        view! { <p class="text-sm text-slate-600">"No elevations yet."</p> }.into_any()
                    }
                    Ok(l) => {
                        view! {
                            <div class="overflow-x-auto">
                                <table id="elevations" class="min-w-full divide-y divide-slate-200 bg-white text-sm">
                                    <caption class="sr-only">"Elevations, newest first"</caption>
                                    <thead class="bg-slate-50">
                                        <tr>
                                            <th scope="col" class="px-3 py-2 text-left">
                                                "Request"
                                            </th>
                                            <th scope="col" class="px-3 py-2 text-left">
                                                "Employee"
                                            </th>
                                            <th scope="col" class="px-3 py-2 text-left">
                                                "Role"
                                            </th>
                                            <th scope="col" class="px-3 py-2 text-left">
                                                "Ticket"
                                            </th>
                                            <th scope="col" class="px-3 py-2 text-left">
                                                "State"
                                            </th>
                                            <th scope="col" class="px-3 py-2 text-left">
                                                "Window"
                                            </th>
                                        </tr>
                                    </thead>
                                    <tbody class="divide-y divide-slate-100">
                                        {l
                                            .into_iter()
                                            .map(|e| {
                                                view! {
                                                    <tr data-request=e.id.to_string()>
                                                        <td class="px-3 py-2">
                                                            <a
                                                                class="text-indigo-700 underline"
                                                                href=format!("/audit/elevations/{}", e.id)
                                                            >
                                                                {e.id}
                                                            </a>
                                                        </td>
                                                        <td class="px-3 py-2">{e.requester.clone()}</td>
                                                        <td class="px-3 py-2">
                                                            {e.role_name.clone()}
                                                            {(e.kind == ElevationKind::Breakglass)
                                                                .then_some(" (break-glass)")}
                                                            {(!e.customers.is_empty())
                                                                .then(|| {
                                                                    view! {
                                                                        <span class="block text-xs text-slate-500">
                                                                            "Only customers " {e.customers.join(", ")}
                                                                        </span>
                                                                    }
                                                                })}
                                                        </td>
                                                        <td class="px-3 py-2">{e.ticket.clone()}</td>
                                                        <td class="px-3 py-2">
                                                            {e.state.as_str()}
                                                            {e.needs_review.then_some(" · review pending")}
                                                        </td>
                                                        <td class="px-3 py-2">
                                                            {e
                                                                .starts_at
                                                                .clone()
                                                                .zip(e.ends_at.clone())
                                                                .map(|(a, b)| format!("{a} to {b}"))}
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
        </Transition>
    }
}

/// One elevation: who asked, who decided, and every customer record
/// checked or accessed under its grant.
#[component]
pub fn TicketPage() -> impl IntoView {
    let params = leptos_router::hooks::use_params_map();
    let id = move || params.with(|p| p.get("id").and_then(|s| s.parse::<i64>().ok()).unwrap_or(0));
    let data = Resource::new(id, crate::api::elevation_ticket);
    view! {
        <p class="mb-2 text-sm">
            <a class="text-indigo-700 underline" href="/audit/elevations">
                "← Elevations"
            </a>
        </p>
        <Transition fallback=|| {
            view! { <p>"Loading…"</p> }
        }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(t) => {
                        let e = t.elevation;
                        view! {
                            <h1 class="mb-2 text-2xl font-semibold">
                                {format!(
                                    "{} · {} · {}",
                                    if e.ticket.is_empty() { "Break-glass".to_owned() } else { e.ticket.clone() },
                                    e.requester,
                                    e.role_name,
                                )}
                            </h1>
                            <dl
                                id="ticket"
                                class="mb-6 grid gap-x-4 gap-y-1 rounded-lg border border-slate-200 bg-white p-4 text-sm \
                                       sm:grid-cols-[12rem_1fr]"
                            >
                                <dt class="font-medium">"State"</dt>
                                <dd data-state=e.state.as_str()>{e.state.as_str()}</dd>
                                <dt class="font-medium">"Justification"</dt>
                                <dd>{e.justification.clone()}</dd>
                                <dt class="font-medium">"Requested"</dt>
                                <dd>{e.requested_at.clone()}</dd>
                                <dt class="font-medium">"Window"</dt>
                                <dd>
                                    {e
                                        .starts_at
                                        .clone()
                                        .zip(e.ends_at.clone())
                                        .map(|(a, b)| format!("{a} to {b}"))
                                        .unwrap_or_else(|| "—".into())}
                                </dd>
                                <dt class="font-medium">"Customers"</dt>
                                <dd>
                                    {if e.customers.is_empty() { "all".to_owned() } else { e.customers.join(", ") }}
                                </dd>
                                <dt class="font-medium">"Decided by"</dt>
                                <dd>
                                    {e.decided_by.clone().unwrap_or_else(|| "—".into())}
                                    {e.decision_reason.clone().map(|r| format!(" ({r})"))}
                                </dd>
                                <dt class="font-medium">"Grant"</dt>
                                <dd>{e.grant_id.map(|g| g.to_string()).unwrap_or_else(|| "—".into())}</dd>
                                {(e.kind == ElevationKind::Breakglass)
                                    .then(|| {
                                        view! {
                                            <dt class="font-medium">"Post-incident review"</dt>
                                            <dd>
                                                {match (e.reviewed_by.clone(), e.review_note.clone()) {
                                                    (Some(b), Some(n)) => {
                                                        format!(
                                                            "{b}, {}: {n}",
                                                            e.reviewed_at.clone().unwrap_or_default(),
                                                        )
                                                    }
                                                    _ => "not yet recorded".into(),
                                                }}
                                            </dd>
                                        }
                                    })}
                            </dl>
                            <h2 class="mb-2 font-semibold">"Accessed under this elevation"</h2>
                            {if t.events.is_empty() {
                                view! {
                                    <p id="ticket-empty" class="text-sm text-slate-600">
                                        "Nothing recorded under it."
                                    </p>
                                }
                                    .into_any()
                            } else {
                                view! {
                                    <div class="overflow-x-auto">
                                        <table
                                            id="ticket-events"
                                            class="min-w-full divide-y divide-slate-200 bg-white text-sm"
                                        >
                                            <caption class="sr-only">
                                                "Events recorded under this elevation's grant, oldest first"
                                            </caption>
                                            <thead class="bg-slate-50">
                                                <tr>
                                                    <th scope="col" class="px-3 py-2 text-left">
                                                        "Event"
                                                    </th>
                                                    <th scope="col" class="px-3 py-2 text-left">
                                                        "Time"
                                                    </th>
                                                    <th scope="col" class="px-3 py-2 text-left">
                                                        "Action"
                                                    </th>
                                                    <th scope="col" class="px-3 py-2 text-left">
                                                        "Customer"
                                                    </th>
                                                    <th scope="col" class="px-3 py-2 text-left">
                                                        "What"
                                                    </th>
                                                    <th scope="col" class="px-3 py-2 text-left">
                                                        "Source"
                                                    </th>
                                                    <th scope="col" class="px-3 py-2 text-left">
                                                        "Outcome"
                                                    </th>
                                                </tr>
                                            </thead>
                                            <tbody class="divide-y divide-slate-100">
                                                {t
                                                    .events
                                                    .into_iter()
                                                    .map(|ev| {
                                                        let customer = ev.customer_id.unwrap_or_default();
                                                        let attr_customer = customer.clone();
                                                        let seq = ev.seq;
                                                        view! {
                                                            <tr data-seq=seq.to_string() data-customer=attr_customer>
                                                                <td class="px-3 py-2">{seq}</td>
                                                                <td class="px-3 py-2">{ev.at}</td>
                                                                <td class="px-3 py-2">{ev.action}</td>
                                                                <td class="px-3 py-2">{customer}</td>
                                                                <td class="px-3 py-2">{ev.what}</td>
                                                                <td class="px-3 py-2">{ev.source.unwrap_or_default()}</td>
                                                                <td class="px-3 py-2">{ev.outcome.as_str()}</td>
                                                            </tr>
                                                        }
                                                    })
                                                    .collect_view()}
                                            </tbody>
                                        </table>
                                    </div>
                                }
                                    .into_any()
                            }}
                        }
                            .into_any()
                    }
                    Err(e) => view! { <LoadError error=e /> }.into_any(),
                }
            })}
        </Transition>
    }
}
