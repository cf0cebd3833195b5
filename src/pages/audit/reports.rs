//! Auditor reports: who accessed a customer, what an employee accessed, denied checks.

use super::urlencode;
use crate::components::class::{BUTTON, INPUT};
use crate::components::LoadError;
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

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
            <a href="/audit" class="text-indigo-700 underline">
                "Back to the audit trail"
            </a>
        </p>
        <form
            method="get"
            action="/audit/reports"
            aria-label="Choose a report"
            class="mb-6 grid gap-x-4 rounded-lg border border-slate-200 bg-white p-4 sm:grid-cols-2 lg:grid-cols-5"
        >
            <div class="mb-4">
                <label for="kind" class="mb-1 block text-sm font-medium text-slate-700">
                    "Report"
                </label>
                <select id="kind" name="kind" class=INPUT>
                    {REPORTS
                        .into_iter()
                        .map(|(k, label)| {
                            let sel = get("kind") == k;
                            view! {
                                <option value=k selected=sel>
                                    {label}
                                </option>
                            }
                        })
                        .collect_view()}
                </select>
            </div>
            <div class="mb-4">
                <label for="r-customer" class="mb-1 block text-sm font-medium text-slate-700">
                    "Customer id"
                </label>
                <input id="r-customer" name="customer" type="text" class=INPUT prop:value=move || get("customer") />
            </div>
            <div class="mb-4">
                <label for="r-employee" class="mb-1 block text-sm font-medium text-slate-700">
                    "Employee (email or id)"
                </label>
                <input id="r-employee" name="employee" type="text" class=INPUT prop:value=move || get("employee") />
            </div>
            <div class="mb-4">
                <label for="r-from" class="mb-1 block text-sm font-medium text-slate-700">
                    "From (UTC)"
                </label>
                <input id="r-from" name="from" type="datetime-local" class=INPUT prop:value=move || get("from") />
            </div>
            <div class="mb-4">
                <label for="r-to" class="mb-1 block text-sm font-medium text-slate-700">
                    "Until (UTC)"
                </label>
                <input id="r-to" name="to" type="datetime-local" class=INPUT prop:value=move || get("to") />
            </div>
            <div class="flex items-end gap-2 pb-4">
                <button type="submit" class=BUTTON>
                    "Show report"
                </button>
            </div>
        </form>
        <Suspense fallback=|| {
            view! { <p>"Loading…"</p> }
        }>
            {move || Suspend::new(async move {
                match report.await {
                    Ok(None) => view! { <p>"Choose a report."</p> }.into_any(),
                    Ok(Some(p)) if p.rows.is_empty() => view! { <p id="no-rows">"No accesses match."</p> }.into_any(),
                    Ok(Some(p)) => {
                        view! {
                            <p class="mb-2">
                                <a
                                    id="report-csv"
                                    rel="external"
                                    download=""
                                    class="text-sm text-indigo-700 underline"
                                    href=format!("/audit/report.csv?{}", base_query())
                                >
                                    "Export this report as CSV"
                                </a>
                            </p>
                            <div class="overflow-x-auto rounded-lg border border-slate-200 bg-white">
                                <table id="report" class="min-w-full text-left text-sm">
                                    <thead class="bg-slate-50 text-xs uppercase text-slate-600">
                                        <tr>
                                            <th scope="col" class="px-3 py-2">
                                                "Event"
                                            </th>
                                            <th scope="col" class="px-3 py-2">
                                                "Time (UTC)"
                                            </th>
                                            <th scope="col" class="px-3 py-2">
                                                "Employee"
                                            </th>
                                            <th scope="col" class="px-3 py-2">
                                                "Access"
                                            </th>
                                            <th scope="col" class="px-3 py-2">
                                                "Customer"
                                            </th>
                                            <th scope="col" class="px-3 py-2">
                                                "Purpose"
                                            </th>
                                            <th scope="col" class="px-3 py-2">
                                                "Allowed by"
                                            </th>
                                            <th scope="col" class="px-3 py-2">
                                                "Decision"
                                            </th>
                                            <th scope="col" class="px-3 py-2">
                                                "Source"
                                            </th>
                                        </tr>
                                    </thead>
                                    <tbody class="divide-y divide-slate-100">
                                        {p
                                            .rows
                                            .into_iter()
                                            .map(|r| {
                                                view! {
                                                    <tr data-seq=r.seq.to_string()>
                                                        <td class="px-3 py-2 font-mono">{r.seq}</td>
                                                        <td class="px-3 py-2">{r.at}</td>
                                                        <td class="px-3 py-2">{r.employee}</td>
                                                        <td class="px-3 py-2">{r.what}</td>
                                                        <td class="px-3 py-2">{r.customer_id.unwrap_or_default()}</td>
                                                        <td class="px-3 py-2">{r.purpose.unwrap_or_default()}</td>
                                                        <td class="px-3 py-2">{r.grant.unwrap_or_default()}</td>
                                                        <td class="px-3 py-2">{r.decision}</td>
                                                        <td class="px-3 py-2">{r.source.unwrap_or_default()}</td>
                                                    </tr>
                                                }
                                            })
                                            .collect_view()}
                                    </tbody>
                                </table>
                            </div>
                            {p
                                .next_before
                                .map(|b| {
                                    view! {
                                        <p class="mt-4">
                                            <a
                                                id="older"
                                                class="text-indigo-700 underline"
                                                href=format!("/audit/reports?{}&before={b}", base_query())
                                            >
                                                "Older accesses"
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
