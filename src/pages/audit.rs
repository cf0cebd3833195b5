//! The auditor console: browse the audit trail with filters, newest first,
//! and verify the chain. Read-only.

use crate::api::{AuditSignCheckpoint, AuditVerify};
use crate::components::class::{BUTTON, INPUT};
use crate::components::{FormError, LoadError};
use crate::dto::ElevationKind;
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

const FILTERS: [(&str, &str, &str); 8] = [
    ("from", "From (UTC)", "datetime-local"),
    ("to", "Until (UTC)", "datetime-local"),
    ("employee", "Employee (email or id)", "text"),
    ("customer", "Customer id", "text"),
    ("action", "Action", "text"),
    ("outcome", "Outcome", "select"),
    ("source", "Source system or service", "text"),
    ("text", "Text in reason or details", "search"),
];

#[component]
pub fn AuditPage() -> impl IntoView {
    let query = use_query_map();
    let get = move |k: &'static str| query.with(|q| q.get(k).unwrap_or_default());
    let page = Resource::new(
        move || {
            (
                get("from"),
                get("to"),
                get("employee"),
                get("action"),
                get("outcome"),
                get("customer"),
                get("text"),
                get("source"),
                get("before"),
            )
        },
        |(from, to, employee, action, outcome, customer, text, source, before)| {
            crate::api::audit_browse(
                from,
                to,
                employee,
                action,
                outcome,
                customer,
                text,
                source,
                before.parse().ok(),
            )
        },
    );
    let verify = ServerAction::<AuditVerify>::new();
    let sign = ServerAction::<AuditSignCheckpoint>::new();
    let checkpoint = Resource::new(move || sign.version().get(), |_| crate::api::audit_latest_checkpoint());
    // The query string without `before`, for the "older" link.
    let base_query = move || {
        query.with(|q| {
            FILTERS
                .iter()
                .filter_map(|(k, _, _)| {
                    q.get(k)
                        .filter(|v| !v.is_empty())
                        .map(|v| format!("{k}={}", urlencode(&v)))
                })
                .collect::<Vec<_>>()
                .join("&")
        })
    };
    view! {
        <h1 class="mb-2 text-2xl font-semibold">"Audit trail"</h1>
        <p class="mb-4 text-sm"><a id="reports-link" href="/audit/reports" class="text-indigo-700 underline">"Reports: who accessed a customer, what an employee accessed, denied checks"</a>
            " · " <a id="elevations-link" href="/audit/elevations" class="text-indigo-700 underline">"Elevations and tickets: what was accessed under each"</a></p>
        <AlertsPanel/>
        <section class="mb-6 rounded-lg border border-slate-200 bg-white p-4" aria-labelledby="integrity-h">
            <h2 id="integrity-h" class="mb-2 font-semibold">"Integrity"</h2>
            <p class="mb-2 text-sm text-slate-600">
                "Checks every event's hash and link from the first to the head of the chain, and every signed checkpoint: its Ed25519 signature "
                "(public key at " <a class="text-indigo-700 underline" href="/api/v1/audit/public-key" rel="external">"/api/v1/audit/public-key"</a> ") and its Merkle root over the events."
            </p>
            <Suspense fallback=|| view! { <p class="mb-2 text-sm">"Loading the latest checkpoint…"</p> }>
                {move || Suspend::new(async move {
                    match checkpoint.await {
                        Ok(Some(c)) => view! {
                            <p id="latest-checkpoint" class="mb-2 text-sm" data-number=c.number.to_string() data-tree-size=c.tree_size.to_string()>
                                "Latest signed checkpoint: number " {c.number} ", covering events 1 to " {c.tree_size} ", signed " {c.at.clone()}
                                " by key " <span class="font-mono">{c.key_id.clone()}</span> ". Root "
                                <span class="break-all font-mono">{c.root.clone()}</span>
                            </p>
                        }.into_any(),
                        Ok(None) => view! { <p id="latest-checkpoint" class="mb-2 text-sm">"No checkpoint signed yet: one is signed within a minute of new events."</p> }.into_any(),
                        Err(e) => view! { <LoadError error=e/> }.into_any(),
                    }
                })}
            </Suspense>
            <FormError action=sign/>
            <FormError action=verify/>
            {move || verify.value().get().and_then(|r| r.ok()).map(|v| view! {
                <p id="verify-result" role="status" class=if v.ok { "mb-2 text-sm text-green-800" } else { "mb-2 text-sm font-semibold text-red-800" }>
                    {v.message.clone()} " (checked " {v.at.clone()} ")"
                </p>
            })}
            <div class="flex flex-wrap gap-2">
                <ActionForm action=verify>
                    <button type="submit" class=BUTTON disabled=move || verify.pending().get()>"Verify the chain now"</button>
                </ActionForm>
                <ActionForm action=sign>
                    <button id="sign-checkpoint" type="submit" class=BUTTON disabled=move || sign.pending().get()>"Sign a checkpoint now"</button>
                </ActionForm>
            </div>
        </section>
        <form method="get" action="/audit" role="search" aria-label="Filter events" class="mb-6 grid gap-x-4 rounded-lg border border-slate-200 bg-white p-4 sm:grid-cols-2 lg:grid-cols-4">
            {FILTERS.iter().map(|(name, label, kind)| {
                let name = *name;
                let control = if *kind == "select" {
                    view! {
                        <select id=name name=name class=INPUT>
                            {["", "success", "failure", "denied"].into_iter().map(|o| { let sel = get("outcome") == o; view! { <option value=o selected=sel>{if o.is_empty() { "Any" } else { o }}</option> } }).collect_view()}
                        </select>
                    }.into_any()
                } else {
                    view! { <input id=name name=name type=*kind class=INPUT prop:value=move || get(name)/> }.into_any()
                };
                view! { <div class="mb-4"><label for=name class="mb-1 block text-sm font-medium text-slate-700">{*label}</label>{control}</div> }
            }).collect_view()}
            <div class="flex items-end gap-2 pb-4">
                <button type="submit" class=BUTTON>"Filter"</button>
                <a href="/audit" class="px-3 py-2 text-sm text-slate-700 underline">"Clear"</a>
                <a id="export-csv" rel="external" download="" href=move || format!("/audit/export.csv?{}", base_query()) class="px-3 py-2 text-sm text-indigo-700 underline">"Export as CSV"</a>
                <a id="export-bundle" rel="external" download="" title="The events from..until, with signed checkpoints; check it offline with: gatehouse audit verify FILE"
                    href=move || format!("/audit/export.bundle?from={}&to={}", urlencode(&get("from")), urlencode(&get("to")))
                    class="px-3 py-2 text-sm text-indigo-700 underline">"Export a signed bundle (time range)"</a>
            </div>
        </form>
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match page.await {
                    Ok(p) if p.events.is_empty() => view! { <p id="no-events">"No events match."</p> }.into_any(),
                    Ok(p) => view! {
                        <ol id="audit-events" class="divide-y divide-slate-100 rounded-lg border border-slate-200 bg-white text-sm">
                            {p.events.into_iter().map(|e| view! {
                                <li data-seq=e.seq.to_string() data-action=e.action.clone()>
                                    <details class="px-3 py-2">
                                        <summary class="cursor-pointer">
                                            <span class="font-mono text-slate-500">"#" {e.seq}</span> " · " {e.at.clone()} " · "
                                            <span class="font-medium">{e.action.clone()}</span> " · " {e.outcome.as_str()} " · " {e.actor.clone()}
                                            {e.customer_id.clone().map(|c| format!(" · customer {c}"))}
                                            {e.reason.clone().filter(|r| !r.is_empty()).map(|r| view! { <span class="block text-xs text-slate-500">{r}</span> })}
                                        </summary>
                                        <dl class="mt-2 grid grid-cols-[10rem_1fr] gap-x-3 gap-y-1 text-xs">
                                            <dt class="font-medium">"Target"</dt><dd>{e.target.clone().unwrap_or_default()}</dd>
                                            <dt class="font-medium">"Address"</dt><dd>{e.actor_ip.clone().unwrap_or_default()}</dd>
                                            <dt class="font-medium">"Session or service"</dt><dd class="font-mono">{e.actor_session.clone().unwrap_or_default()}</dd>
                                            <dt class="font-medium">"Device"</dt><dd>{e.actor_agent.clone().unwrap_or_default()}</dd>
                                            <dt class="font-medium">"Details"</dt><dd><pre class="whitespace-pre-wrap font-mono">{e.details.clone()}</pre></dd>
                                            <dt class="font-medium">"Previous hash"</dt><dd class="break-all font-mono">{e.prev_hash.clone()}</dd>
                                            <dt class="font-medium">"Hash"</dt><dd class="event-hash break-all font-mono">{e.hash.clone()}</dd>
                                            <dt class="font-medium">"Inclusion proof"</dt>
                                            <dd><a class="proof-link text-indigo-700 underline" rel="external" href=format!("/api/v1/audit/proofs/{}", e.seq)>"Proof against the latest checkpoint (JSON)"</a></dd>
                                        </dl>
                                    </details>
                                </li>
                            }).collect_view()}
                        </ol>
                        {p.next_before.map(|b| { let q = base_query(); view! {
                            <p class="mt-4"><a id="older" class="text-indigo-700 underline" href=format!("/audit?{}{}before={b}", q, if q.is_empty() { "" } else { "&" })>"Older events"</a></p>
                        }})}
                    }.into_any(),
                    Err(e) => view! { <LoadError error=e/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

const REPORTS: [(&str, &str); 3] = [
    ("customer", "Who accessed a customer's data"),
    ("employee", "What an employee accessed"),
    ("denied", "Denied access checks"),
];

/// Auditor reports: each access to customer data with the employee, time,
/// purpose and the grant that allowed it; exportable as CSV.
#[component]
pub fn AuditReportsPage() -> impl IntoView {
    let query = use_query_map();
    let get = move |k: &'static str| query.with(|q| q.get(k).unwrap_or_default());
    let report = Resource::new(
        move || {
            (
                get("kind"),
                get("customer"),
                get("employee"),
                get("from"),
                get("to"),
                get("before"),
            )
        },
        |(kind, customer, employee, from, to, before)| async move {
            if kind.is_empty() {
                return Ok(None);
            }
            crate::api::audit_report(kind, customer, employee, from, to, before.parse().ok())
                .await
                .map(Some)
        },
    );
    let base_query = move || {
        query.with(|q| {
            ["kind", "customer", "employee", "from", "to"]
                .iter()
                .filter_map(|k| {
                    q.get(k)
                        .filter(|v| !v.is_empty())
                        .map(|v| format!("{k}={}", urlencode(&v)))
                })
                .collect::<Vec<_>>()
                .join("&")
        })
    };
    view! {
        <h1 class="mb-2 text-2xl font-semibold">"Audit reports"</h1>
        <p class="mb-4 text-sm text-slate-600">
            "Accesses to customer data: checks answered by Gatehouse and accesses reported by other systems. "
            <a href="/audit" class="text-indigo-700 underline">"Back to the audit trail"</a>
        </p>
        <form method="get" action="/audit/reports" aria-label="Choose a report" class="mb-6 grid gap-x-4 rounded-lg border border-slate-200 bg-white p-4 sm:grid-cols-2 lg:grid-cols-5">
            <div class="mb-4">
                <label for="kind" class="mb-1 block text-sm font-medium text-slate-700">"Report"</label>
                <select id="kind" name="kind" class=INPUT>
                    {REPORTS.into_iter().map(|(k, label)| { let sel = get("kind") == k; view! { <option value=k selected=sel>{label}</option> } }).collect_view()}
                </select>
            </div>
            <div class="mb-4"><label for="r-customer" class="mb-1 block text-sm font-medium text-slate-700">"Customer id"</label>
                <input id="r-customer" name="customer" type="text" class=INPUT prop:value=move || get("customer")/></div>
            <div class="mb-4"><label for="r-employee" class="mb-1 block text-sm font-medium text-slate-700">"Employee (email or id)"</label>
                <input id="r-employee" name="employee" type="text" class=INPUT prop:value=move || get("employee")/></div>
            <div class="mb-4"><label for="r-from" class="mb-1 block text-sm font-medium text-slate-700">"From (UTC)"</label>
                <input id="r-from" name="from" type="datetime-local" class=INPUT prop:value=move || get("from")/></div>
            <div class="mb-4"><label for="r-to" class="mb-1 block text-sm font-medium text-slate-700">"Until (UTC)"</label>
                <input id="r-to" name="to" type="datetime-local" class=INPUT prop:value=move || get("to")/></div>
            <div class="flex items-end gap-2 pb-4">
                <button type="submit" class=BUTTON>"Show report"</button>
            </div>
        </form>
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match report.await {
                    Ok(None) => view! { <p>"Choose a report."</p> }.into_any(),
                    Ok(Some(p)) if p.rows.is_empty() => view! { <p id="no-rows">"No accesses match."</p> }.into_any(),
                    Ok(Some(p)) => view! {
                        <p class="mb-2"><a id="report-csv" rel="external" download="" class="text-sm text-indigo-700 underline" href=format!("/audit/report.csv?{}", base_query())>"Export this report as CSV"</a></p>
                        <div class="overflow-x-auto rounded-lg border border-slate-200 bg-white">
                            <table id="report" class="min-w-full text-left text-sm">
                                <thead class="bg-slate-50 text-xs uppercase text-slate-600">
                                    <tr><th scope="col" class="px-3 py-2">"Event"</th><th scope="col" class="px-3 py-2">"Time (UTC)"</th><th scope="col" class="px-3 py-2">"Employee"</th>
                                        <th scope="col" class="px-3 py-2">"Access"</th><th scope="col" class="px-3 py-2">"Customer"</th><th scope="col" class="px-3 py-2">"Purpose"</th>
                                        <th scope="col" class="px-3 py-2">"Allowed by"</th><th scope="col" class="px-3 py-2">"Decision"</th><th scope="col" class="px-3 py-2">"Source"</th></tr>
                                </thead>
                                <tbody class="divide-y divide-slate-100">
                                    {p.rows.into_iter().map(|r| view! {
                                        <tr data-seq=r.seq.to_string()>
                                            <td class="px-3 py-2 font-mono">{r.seq}</td><td class="px-3 py-2">{r.at}</td><td class="px-3 py-2">{r.employee}</td>
                                            <td class="px-3 py-2">{r.what}</td><td class="px-3 py-2">{r.customer_id.unwrap_or_default()}</td>
                                            <td class="px-3 py-2">{r.purpose.unwrap_or_default()}</td><td class="px-3 py-2">{r.grant.unwrap_or_default()}</td>
                                            <td class="px-3 py-2">{r.decision}</td><td class="px-3 py-2">{r.source.unwrap_or_default()}</td>
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            </table>
                        </div>
                        {p.next_before.map(|b| view! {
                            <p class="mt-4"><a id="older" class="text-indigo-700 underline" href=format!("/audit/reports?{}&before={b}", base_query())>"Older accesses"</a></p>
                        })}
                    }.into_any(),
                    Err(e) => view! { <LoadError error=e/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

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
            <h2 id="alerts-h" class="mb-2 font-semibold">"Alerts"</h2>
            <FormError action=ack/>
            <Suspense fallback=|| view! { <p class="text-sm">"Loading alerts…"</p> }>
                {move || Suspend::new(async move {
                    match list.await {
                        Ok(all) => {
                            let (open, done): (Vec<_>, Vec<_>) = all.into_iter().partition(|a| a.acknowledged_at.is_none());
                            view! {
                                {if open.is_empty() { Some(view! { <p id="no-open-alerts" class="text-sm text-slate-600">"No open alerts."</p> }) } else { None }}
                                <ul id="open-alerts" class="divide-y divide-slate-100 text-sm">
                                    {open.into_iter().map(|a| view! {
                                        <li class="py-2" data-alert=a.id.to_string() data-rule=a.rule.clone()>
                                            <p><span class="font-medium text-red-800">{a.rule.clone()}</span> " · " {a.raised_at.clone()} " · "
                                               {a.employee.clone().unwrap_or_else(|| "no employee".into())} " · " {a.summary.clone()}
                                               " · " <a class="text-indigo-700 underline" href=format!("/audit?before={}", a.event_seq + 1)>"event " {a.event_seq}</a></p>
                                            <ActionForm action=ack attr:class="mt-1 flex flex-wrap items-end gap-2">
                                                <input type="hidden" name="id" value=a.id.to_string()/>
                                                <label class="text-xs">"What was checked "
                                                    <input name="comment" required minlength="3" maxlength="1000" class=INPUT/></label>
                                                <button type="submit" class=BUTTON>"Acknowledge"</button>
                                            </ActionForm>
                                        </li>
                                    }).collect_view()}
                                </ul>
                                {(!done.is_empty()).then(|| view! {
                                    <details class="mt-2 text-sm"><summary class="cursor-pointer">"Acknowledged"</summary>
                                        <ul id="acknowledged-alerts" class="divide-y divide-slate-100">
                                            {done.into_iter().take(20).map(|a| view! {
                                                <li class="py-1" data-alert=a.id.to_string()>{a.rule.clone()} " · " {a.summary.clone()} " · acknowledged by "
                                                    {a.acknowledged_by.clone().unwrap_or_default()} " at " {a.acknowledged_at.clone().unwrap_or_default()} ": " {a.comment.clone().unwrap_or_default()}</li>
                                            }).collect_view()}
                                        </ul>
                                    </details>
                                })}
                            }.into_any()
                        }
                        Err(e) => view! { <LoadError error=e/> }.into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}

/// Every elevation request and break-glass activation, kept forever.
#[component]
pub fn ElevationsPage() -> impl IntoView {
    let list = Resource::new(|| (), |_| crate::api::elevation_history());
    view! {
        <h1 class="mb-2 text-2xl font-semibold">"Elevations and tickets"</h1>
        <p class="mb-4 text-sm text-slate-600">
            "Every request for elevated access and every break-glass activation, newest first. Open one to see what was accessed under it. "
            <a href="/audit" class="text-indigo-700 underline">"Back to the audit trail"</a>
        </p>
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match list.await {
                    Ok(l) if l.is_empty() => view! { <p class="text-sm text-slate-600">"No elevations yet."</p> }.into_any(),
                    Ok(l) => view! {
                        <div class="overflow-x-auto">
                        <table id="elevations" class="min-w-full divide-y divide-slate-200 bg-white text-sm">
                            <caption class="sr-only">"Elevations, newest first"</caption>
                            <thead class="bg-slate-50"><tr>
                                <th scope="col" class="px-3 py-2 text-left">"Request"</th><th scope="col" class="px-3 py-2 text-left">"Employee"</th>
                                <th scope="col" class="px-3 py-2 text-left">"Role"</th><th scope="col" class="px-3 py-2 text-left">"Ticket"</th>
                                <th scope="col" class="px-3 py-2 text-left">"State"</th><th scope="col" class="px-3 py-2 text-left">"Window"</th>
                            </tr></thead>
                            <tbody class="divide-y divide-slate-100">
                                {l.into_iter().map(|e| view! {
                                    <tr data-request=e.id.to_string()>
                                        <td class="px-3 py-2"><a class="text-indigo-700 underline" href=format!("/audit/elevations/{}", e.id)>{e.id}</a></td>
                                        <td class="px-3 py-2">{e.requester.clone()}</td>
                                        <td class="px-3 py-2">{e.role_name.clone()}{(e.kind == ElevationKind::Breakglass).then_some(" (break-glass)")}
                                            {(!e.customers.is_empty()).then(|| view! { <span class="block text-xs text-slate-500">"Only customers " {e.customers.join(", ")}</span> })}</td>
                                        <td class="px-3 py-2">{e.ticket.clone()}</td>
                                        <td class="px-3 py-2">{e.state.as_str()}{e.needs_review.then_some(" · review pending")}</td>
                                        <td class="px-3 py-2">{e.starts_at.clone().zip(e.ends_at.clone()).map(|(a, b)| format!("{a} to {b}"))}</td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                        </div>
                    }.into_any(),
                    Err(e) => view! { <LoadError error=e/> }.into_any(),
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
        <p class="mb-2 text-sm"><a class="text-indigo-700 underline" href="/audit/elevations">"← Elevations"</a></p>
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(t) => { let e = t.elevation; view! {
                        <h1 class="mb-2 text-2xl font-semibold">{format!("{} · {} · {}", if e.ticket.is_empty() { "Break-glass".to_owned() } else { e.ticket.clone() }, e.requester, e.role_name)}</h1>
                        <dl id="ticket" class="mb-6 grid gap-x-4 gap-y-1 rounded-lg border border-slate-200 bg-white p-4 text-sm sm:grid-cols-[12rem_1fr]">
                            <dt class="font-medium">"State"</dt><dd data-state=e.state.as_str()>{e.state.as_str()}</dd>
                            <dt class="font-medium">"Justification"</dt><dd>{e.justification.clone()}</dd>
                            <dt class="font-medium">"Requested"</dt><dd>{e.requested_at.clone()}</dd>
                            <dt class="font-medium">"Window"</dt><dd>{e.starts_at.clone().zip(e.ends_at.clone()).map(|(a, b)| format!("{a} to {b}")).unwrap_or_else(|| "—".into())}</dd>
                            <dt class="font-medium">"Customers"</dt><dd>{if e.customers.is_empty() { "all".to_owned() } else { e.customers.join(", ") }}</dd>
                            <dt class="font-medium">"Decided by"</dt><dd>{e.decided_by.clone().unwrap_or_else(|| "—".into())}{e.decision_reason.clone().map(|r| format!(" ({r})"))}</dd>
                            <dt class="font-medium">"Grant"</dt><dd>{e.grant_id.map(|g| g.to_string()).unwrap_or_else(|| "—".into())}</dd>
                            {(e.kind == ElevationKind::Breakglass).then(|| view! {
                                <dt class="font-medium">"Post-incident review"</dt>
                                <dd>{match (e.reviewed_by.clone(), e.review_note.clone()) { (Some(b), Some(n)) => format!("{b}, {}: {n}", e.reviewed_at.clone().unwrap_or_default()), _ => "not yet recorded".into() }}</dd>
                            })}
                        </dl>
                        <h2 class="mb-2 font-semibold">"Accessed under this elevation"</h2>
                        {if t.events.is_empty() { view! { <p id="ticket-empty" class="text-sm text-slate-600">"Nothing recorded under it."</p> }.into_any() } else { view! {
                            <div class="overflow-x-auto">
                            <table id="ticket-events" class="min-w-full divide-y divide-slate-200 bg-white text-sm">
                                <caption class="sr-only">"Events recorded under this elevation's grant, oldest first"</caption>
                                <thead class="bg-slate-50"><tr>
                                    <th scope="col" class="px-3 py-2 text-left">"Event"</th><th scope="col" class="px-3 py-2 text-left">"Time"</th>
                                    <th scope="col" class="px-3 py-2 text-left">"Action"</th><th scope="col" class="px-3 py-2 text-left">"Customer"</th>
                                    <th scope="col" class="px-3 py-2 text-left">"What"</th><th scope="col" class="px-3 py-2 text-left">"Source"</th>
                                    <th scope="col" class="px-3 py-2 text-left">"Outcome"</th>
                                </tr></thead>
                                <tbody class="divide-y divide-slate-100">
                                    {t.events.into_iter().map(|ev| { let customer = ev.customer_id.unwrap_or_default(); let attr_customer = customer.clone(); let seq = ev.seq; view! {
                                        <tr data-seq=seq.to_string() data-customer=attr_customer>
                                            <td class="px-3 py-2">{seq}</td><td class="px-3 py-2">{ev.at}</td><td class="px-3 py-2">{ev.action}</td>
                                            <td class="px-3 py-2">{customer}</td><td class="px-3 py-2">{ev.what}</td>
                                            <td class="px-3 py-2">{ev.source.unwrap_or_default()}</td><td class="px-3 py-2">{ev.outcome.as_str()}</td>
                                        </tr>
                                    }}).collect_view()}
                                </tbody>
                            </table>
                            </div>
                        }.into_any() }}
                    }.into_any() }
                    Err(e) => view! { <LoadError error=e/> }.into_any(),
                }
            })}
        </Transition>
    }
}
