//! The auditor console: browse the audit trail with filters, newest first,
//! and verify the chain. Read-only.

mod alerts;
mod elevations;
mod reports;

pub use alerts::AlertsPanel;
pub use elevations::{ElevationsPage, TicketPage};
pub use reports::AuditReportsPage;

use crate::api::{AuditSignCheckpoint, AuditVerify};
use crate::components::class::{BUTTON, INPUT, TD, TH};
use crate::components::{FormError, LoadError};
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

/// What verification checks.
const VERIFY_EXPLAINED: &str =
    "Checks every event's hash and link from the first to the head of the chain, and every signed \
                                checkpoint: its Ed25519 signature ";

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
        <p class="mb-4 text-sm">
            <a id="reports-link" href="/audit/reports" class="text-indigo-700 underline">
                "Reports: who accessed a customer, what an employee accessed, denied checks"
            </a>
            " · "
            <a id="elevations-link" href="/audit/elevations" class="text-indigo-700 underline">
                "Elevations and tickets: what was accessed under each"
            </a>
        </p>
        <AlertsPanel />
        <section class="mb-6 rounded-lg border border-slate-200 bg-white p-4" aria-labelledby="integrity-h">
            <h2 id="integrity-h" class="mb-2 font-semibold">
                "Integrity"
            </h2>
            <p class="mb-2 text-sm text-slate-600">
                {VERIFY_EXPLAINED}
                "(public key at " <a class="text-indigo-700 underline" href="/api/v1/audit/public-key" rel="external">
                    "/api/v1/audit/public-key"
                </a> ") and its Merkle root over the events."
            </p>
            <Suspense fallback=|| {
                view! { <p class="mb-2 text-sm">"Loading the latest checkpoint…"</p> }
            }>
                {move || Suspend::new(async move {
                    match checkpoint.await {
                        Ok(Some(c)) => {
                            view! {
                                <p
                                    id="latest-checkpoint"
                                    class="mb-2 text-sm"
                                    data-number=c.number.to_string()
                                    data-tree-size=c.tree_size.to_string()
                                >
                                    "Latest signed checkpoint: number "
                                    {c.number}
                                    ", covering events 1 to "
                                    {c.tree_size}
                                    ", signed "
                                    {c.at.clone()}
                                    " by key "
                                    <span class="font-mono">{c.key_id.clone()}</span>
                                    ". Root "
                                    <span class="break-all font-mono">{c.root.clone()}</span>
                                </p>
                                <Witnessed c=c.clone() />
                            }
                                .into_any()
                        }
                        Ok(None) => {
                            view! {
                                <p id="latest-checkpoint" class="mb-2 text-sm">
                                    "No checkpoint signed yet: one is signed within a minute of new events."
                                </p>
                            }
                                .into_any()
                        }
                        Err(e) => view! { <LoadError error=e /> }.into_any(),
                    }
                })}
            </Suspense>
            <FormError action=sign />
            <FormError action=verify />
            {move || {
                verify
                    .value()
                    .get()
                    .and_then(|r| r.ok())
                    .map(|v| {
                        view! {
                            <p
                                id="verify-result"
                                role="status"
                                class=if v.ok {
                                    "mb-2 text-sm text-green-800"
                                } else {
                                    "mb-2 text-sm font-semibold text-red-800"
                                }
                            >
                                {v.message.clone()}
                                " (checked "
                                {v.at.clone()}
                                ")"
                            </p>
                        }
                    })
            }}
            <div class="flex flex-wrap gap-2">
                <ActionForm action=verify>
                    <button type="submit" class=BUTTON disabled=move || verify.pending().get()>
                        "Verify the chain now"
                    </button>
                </ActionForm>
                <ActionForm action=sign>
                    <button id="sign-checkpoint" type="submit" class=BUTTON disabled=move || sign.pending().get()>
                        "Sign a checkpoint now"
                    </button>
                </ActionForm>
            </div>
            <RecentCheckpoints version=sign.version() />
        </section>
        <form
            method="get"
            action="/audit"
            role="search"
            aria-label="Filter events"
            class="mb-6 grid gap-x-4 rounded-lg border border-slate-200 bg-white p-4 sm:grid-cols-2 lg:grid-cols-4"
        >
            {FILTERS
                .iter()
                .map(|(name, label, kind)| {
                    let name = *name;
                    let control = if *kind == "select" {
                        view! {
                            <select id=name name=name class=INPUT>
                                {["", "success", "failure", "denied"]
                                    .into_iter()
                                    .map(|o| {
                                        let sel = get("outcome") == o;
                                        view! {
                                            <option value=o selected=sel>
                                                {if o.is_empty() { "Any" } else { o }}
                                            </option>
                                        }
                                    })
                                    .collect_view()}
                            </select>
                        }
                            .into_any()
                    } else {
                        view! { <input id=name name=name type=*kind class=INPUT prop:value=move || get(name) /> }
                            .into_any()
                    };
                    view! {
                        <div class="mb-4">
                            <label for=name class="mb-1 block text-sm font-medium text-slate-700">
                                {*label}
                            </label>
                            {control}
                        </div>
                    }
                })
                .collect_view()}
            <div class="flex items-end gap-2 pb-4">
                <button type="submit" class=BUTTON>
                    "Filter"
                </button>
                <a href="/audit" class="px-3 py-2 text-sm text-slate-700 underline">
                    "Clear"
                </a>
                <a
                    id="export-csv"
                    rel="external"
                    download=""
                    href=move || format!("/audit/export.csv?{}", base_query())
                    class="px-3 py-2 text-sm text-indigo-700 underline"
                >
                    "Export as CSV"
                </a>
                <a
                    id="export-bundle"
                    rel="external"
                    download=""
                    title="The events from..until, with signed checkpoints; check it offline with: gatehouse audit verify FILE"
                    href=move || {
                        format!("/audit/export.bundle?from={}&to={}", urlencode(&get("from")), urlencode(&get("to")))
                    }
                    class="px-3 py-2 text-sm text-indigo-700 underline"
                >
                    "Export a signed bundle (time range)"
                </a>
            </div>
        </form>
        <Suspense fallback=|| {
            view! { <p>"Loading…"</p> }
        }>
            {move || Suspend::new(async move {
                match page.await {
                    Ok(p) if p.events.is_empty() => view! { <p id="no-events">"No events match."</p> }.into_any(),
                    Ok(p) => {
                        view! {
                            <ol
                                id="audit-events"
                                class="divide-y divide-slate-100 rounded-lg border border-slate-200 bg-white text-sm"
                            >
                                {p
                                    .events
                                    .into_iter()
                                    .map(|e| {
                                        view! {
                                            <li data-seq=e.seq.to_string() data-action=e.action.clone()>
                                                <details class="px-3 py-2">
                                                    <summary class="cursor-pointer">
                                                        <span class="font-mono text-slate-500">"#" {e.seq}</span>
                                                        " · "
                                                        {e.at.clone()}
                                                        " · "
                                                        <span class="font-medium">{e.action.clone()}</span>
                                                        " · "
                                                        {e.outcome.as_str()}
                                                        " · "
                                                        {e.actor.clone()}
                                                        {e.customer_id.clone().map(|c| format!(" · customer {c}"))}
                                                        {e
                                                            .reason
                                                            .clone()
                                                            .filter(|r| !r.is_empty())
                                                            .map(|r| {
                                                                view! {
                                                                    <span class="block text-xs text-slate-500">{r}</span>
                                                                }
                                                            })}
                                                    </summary>
                                                    <dl class="mt-2 grid grid-cols-[10rem_1fr] gap-x-3 gap-y-1 text-xs">
                                                        <dt class="font-medium">"Target"</dt>
                                                        <dd>{e.target.clone().unwrap_or_default()}</dd>
                                                        <dt class="font-medium">"Address"</dt>
                                                        <dd>{e.actor_ip.clone().unwrap_or_default()}</dd>
                                                        <dt class="font-medium">"Session or service"</dt>
                                                        <dd class="font-mono">
                                                            {e.actor_session.clone().unwrap_or_default()}
                                                        </dd>
                                                        <dt class="font-medium">"Device"</dt>
                                                        <dd>{e.actor_agent.clone().unwrap_or_default()}</dd>
                                                        <dt class="font-medium">"Details"</dt>
                                                        <dd>
                                                            <pre class="whitespace-pre-wrap font-mono">
                                                                {e.details.clone()}
                                                            </pre>
                                                        </dd>
                                                        <dt class="font-medium">"Previous hash"</dt>
                                                        <dd class="break-all font-mono">{e.prev_hash.clone()}</dd>
                                                        <dt class="font-medium">"Hash"</dt>
                                                        <dd class="event-hash break-all font-mono">{e.hash.clone()}</dd>
                                                        <dt class="font-medium">"Inclusion proof"</dt>
                                                        <dd>
                                                            <a
                                                                class="proof-link text-indigo-700 underline"
                                                                rel="external"
                                                                href=format!("/api/v1/audit/proofs/{}", e.seq)
                                                            >
                                                                "Proof against the latest checkpoint (JSON)"
                                                            </a>
                                                        </dd>
                                                    </dl>
                                                </details>
                                            </li>
                                        }
                                    })
                                    .collect_view()}
                            </ol>
                            {p
                                .next_before
                                .map(|b| {
                                    let q = base_query();
                                    view! {
                                        <p class="mt-4">
                                            <a
                                                id="older"
                                                class="text-indigo-700 underline"
                                                href=format!(
                                                    "/audit?{}{}before={b}",
                                                    q,
                                                    if q.is_empty() { "" } else { "&" },
                                                )
                                            >
                                                "Older events"
                                            </a>
                                        </p>
                                    }
                                })}
                        }
                            .into_any()
                    }
                    Err(e) => view! { <LoadError error=e /> }.into_any(),
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

/// Which witnesses co-signed the latest checkpoint, and, with a quorum
/// configured, whether it is final.
#[component]
fn Witnessed(c: crate::dto::CheckpointView) -> impl IntoView {
    let by = if c.cosigned_by.is_empty() {
        "Co-signed by no witness yet.".to_owned()
    } else {
        format!("Co-signed by witnesses: {}.", c.cosigned_by.join(", "))
    };
    let finality = match (c.quorum, c.last_final) {
        (0, _) => String::new(),
        (q, Some(n)) if n >= c.number => format!(" Final: co-signed by at least {q} witnesses."),
        (q, Some(n)) => format!(" Not final yet (needs {q} witnesses); the newest final checkpoint is number {n}."),
        (q, None) => format!(" Not final yet (needs {q} witnesses); no checkpoint is final yet."),
    };
    let is_final = c.last_final.is_some_and(|n| n >= c.number);
    view! {
        <p
            id="checkpoint-witnesses"
            class="mb-2 text-sm"
            data-final=is_final.to_string()
            data-cosigners=c.cosigned_by.len().to_string()
        >
            {by}
            {finality}
        </p>
    }
}

/// The newest checkpoints, each with the witnesses that co-signed it.
#[component]
fn RecentCheckpoints(version: RwSignal<usize>) -> impl IntoView {
    let recent = Resource::new(move || version.get(), |_| crate::api::audit_recent_checkpoints());
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                match recent.await {
                    Ok(list) if list.is_empty() => ().into_any(),
                    Ok(list) => {
                        view! {
                            <table id="recent-checkpoints" class="mt-4 w-full text-sm">
                                <caption class="mb-1 text-left font-medium">"Recent checkpoints and their witnesses"</caption>
                                <thead>
                                    <tr>
                                        <th scope="col" class=TH>"Number"</th>
                                        <th scope="col" class=TH>"Events"</th>
                                        <th scope="col" class=TH>"Signed"</th>
                                        <th scope="col" class=TH>"Co-signed by"</th>
                                        <th scope="col" class=TH>"Final"</th>
                                    </tr>
                                </thead>
                                <tbody>
                                    {list
                                        .into_iter()
                                        .map(|c| {
                                            let is_final = c.last_final.is_some_and(|n| n >= c.number);
                                            let by = if c.cosigned_by.is_empty() {
                                                "no witness".to_owned()
                                            } else {
                                                c.cosigned_by.join(", ")
                                            };
                                            view! {
                                                <tr data-number=c.number.to_string() data-final=is_final.to_string()>
                                                    <td class=TD>{c.number}</td>
                                                    <td class=TD>{c.tree_size}</td>
                                                    <td class=TD>{c.at.clone()}</td>
                                                    <td class=TD>{by}</td>
                                                    <td class=TD>{if is_final { "yes" } else { "not yet" }}</td>
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
        </Suspense>
    }
}
