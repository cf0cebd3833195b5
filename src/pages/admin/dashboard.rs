//! The least-privilege overview: who holds what, what expires, what waits.

use crate::api::*;
use crate::components::LoadError;
use leptos::prelude::*;

// ---------------------------------------------------------------- overview

#[component]
pub fn DashboardPage() -> impl IntoView {
    let data = Resource::new(|| (), |_| dashboard());
    view! {
        <h1 class="mb-2 text-2xl font-semibold">"Least-privilege overview"</h1>
        <p class="mb-6 text-sm text-slate-600">"Each number links to the list behind it."</p>
        <crate::pages::audit::AlertsPanel />
        <super::siem::SiemPanel />
        <Suspense fallback=|| {
            view! { <p>"Loading…"</p> }
        }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(d) => {
                        let tiles = vec![
                            (
                                "without-mfa",
                                "Employees without MFA",
                                d.without_mfa,
                                "/employees?mfa=missing",
                                d.without_mfa > 0,
                            ),
                            (
                                "critical-standing",
                                "Standing grants of critical permissions",
                                d.critical_standing,
                                "/grants?filter=critical",
                                d.critical_standing > 0,
                            ),
                            (
                                "expiring",
                                "Grants expiring in the next 7 days",
                                d.expiring_soon,
                                "/grants?filter=expiring",
                                false,
                            ),
                            (
                                "pending",
                                "Grants awaiting a second administrator",
                                d.pending_approvals,
                                "/grants?filter=pending",
                                d.pending_approvals > 0,
                            ),
                            ("admins", "Administrators", d.admins, "/employees?role=admin", d.admins < 2),
                            ("offboarding", "Offboardings in progress", d.offboarding, "/offboarding", false),
                            ("suspended", "Suspended accounts", d.suspended, "/employees?status=suspended", false),
                            ("employees", "Active and invited employees", d.employees, "/employees", false),
                        ];
                        let lacking = d.lacking_passkey.clone();
                        view! {
                            {d.passkeys_required.then(|| view! { <LackingPasskey lacking /> })}
                            <ul class="grid gap-4 sm:grid-cols-2 lg:grid-cols-4">
                                {tiles
                                    .into_iter()
                                    .map(|(id, label, n, href, warn)| {
                                        view! {
                                            <li>
                                                <a
                                                    id=format!("tile-{id}")
                                                    href=href
                                                    class=format!(
                                                        "block h-full rounded-lg border bg-white p-4 hover:border-indigo-400 \
                                                         focus:outline-none focus:ring-2 focus:ring-indigo-500 {}",
                                                        if warn { "border-amber-300" } else { "border-slate-200" },
                                                    )
                                                >
                                                    <span class="tile-number block text-3xl font-semibold">{n}</span>
                                                    <span class="text-sm text-slate-600">{label}</span>
                                                </a>
                                            </li>
                                        }
                                    })
                                    .collect_view()}
                            </ul>
                        }
                            .into_any()
                    }
                    Err(e) => view! { <LoadError error=e /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// Administrators without the passkey their access requires.
#[component]
fn LackingPasskey(lacking: Vec<(i64, String)>) -> impl IntoView {
    view! {
        <section id="lacking-passkey" class="mb-6 rounded-lg border border-slate-200 bg-white p-4">
            <h2 class="mb-1 font-semibold">"Passkeys required for administrators"</h2>
            {if lacking.is_empty() {
                view! { <p class="text-sm text-slate-600">"Every administrator has a passkey."</p> }.into_any()
            } else {
                view! {
                    <p class="mb-2 text-sm text-amber-800">
                        "Without a passkey, these administrators can sign in only to add one:"
                    </p>
                    <ul class="list-disc pl-5 text-sm">
                        {lacking
                            .into_iter()
                            .map(|(id, name)| {
                                view! {
                                    <li>
                                        <a class="text-indigo-700 underline" href=format!("/employees/{id}")>
                                            {name}
                                        </a>
                                    </li>
                                }
                            })
                            .collect_view()}
                    </ul>
                }
                    .into_any()
            }}
        </section>
    }
}
