//! Administrator screens: least-privilege overview, employee directory,
//! onboarding, an employee's page (grants, sessions, suspension,
//! offboarding), roles, grants and the offboarding report. The server
//! checks every permission; these screens only show what it returns.

use crate::api::types::*;
use crate::api::*;
use crate::components::{Field, FormError, LoadError, Submit};
use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};

const INPUT: &str = "block w-full rounded-md border border-slate-300 px-3 py-2 shadow-sm focus:border-indigo-500 focus:outline-none focus:ring-2 focus:ring-indigo-500";
const BUTTON: &str = "rounded-md bg-indigo-600 px-3 py-2 text-sm font-semibold text-white hover:bg-indigo-700 focus:outline-none focus:ring-2 focus:ring-indigo-500 focus:ring-offset-2 disabled:opacity-60";
const DANGER: &str = "rounded-md bg-red-700 px-3 py-2 text-sm font-semibold text-white hover:bg-red-800 focus:outline-none focus:ring-2 focus:ring-red-500 focus:ring-offset-2 disabled:opacity-60";
const LINK: &str = "text-indigo-700 underline";
const CARD: &str = "mb-6 rounded-lg border border-slate-200 bg-white p-4";
const TH: &str = "px-3 py-2 text-left font-medium";
const TD: &str = "px-3 py-2 align-top";

#[component]
fn Badge(text: String) -> impl IntoView {
    let colour = match text.as_str() {
        "active" | "enrolled" => "bg-green-100 text-green-800",
        "pending" | "invited" | "scheduled" | "sensitive" => "bg-amber-100 text-amber-800",
        "suspended" | "critical" | "missing" => "bg-red-100 text-red-800",
        _ => "bg-slate-100 text-slate-700",
    };
    view! { <span class=format!("inline-block rounded px-2 py-0.5 text-xs font-medium {colour}")>{text}</span> }
}

/// A labelled select.
#[component]
fn Select(
    label: &'static str,
    name: &'static str,
    options: Vec<(String, String)>,
    #[prop(default = String::new())] selected: String,
) -> impl IntoView {
    view! {
        <div class="mb-4">
            <label for=name class="mb-1 block text-sm font-medium text-slate-700">{label}</label>
            <select id=name name=name class=INPUT>
                {options.into_iter().map(|(v, l)| { let sel = v == selected; view! { <option value=v selected=sel>{l}</option> } }).collect_view()}
            </select>
        </div>
    }
}

/// A message after a successful action.
#[component]
fn Done<A>(action: ServerAction<A>, message: &'static str) -> impl IntoView
where
    A: leptos::server_fn::ServerFn<Error = crate::errors::AppError> + Clone + Send + Sync + 'static,
    A::Output: Send + Sync + 'static,
{
    move || {
        action.value().with(|v| matches!(v, Some(Ok(_)))).then(|| {
            view! { <p role="status" class="form-ok mb-4 rounded-md border border-green-200 bg-green-50 px-3 py-2 text-sm text-green-800">{message}</p> }
        })
    }
}

fn departments() -> Vec<(String, String)> {
    crate::domain::grants::DEPARTMENTS
        .iter()
        .map(|d| (d.to_string(), capital(d)))
        .collect()
}

fn capital(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

// ---------------------------------------------------------------- overview

#[component]
pub fn DashboardPage() -> impl IntoView {
    let data = Resource::new(|| (), |_| dashboard());
    view! {
        <h1 class="mb-2 text-2xl font-semibold">"Least-privilege overview"</h1>
        <p class="mb-6 text-sm text-slate-600">"Each number links to the list behind it."</p>
        <crate::pages::audit::AlertsPanel/>
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(d) => {
                        let tiles = vec![
                            ("without-mfa", "Employees without MFA", d.without_mfa, "/employees?mfa=missing", d.without_mfa > 0),
                            ("critical-standing", "Standing grants of critical permissions", d.critical_standing, "/grants?filter=critical", d.critical_standing > 0),
                            ("expiring", "Grants expiring in the next 7 days", d.expiring_soon, "/grants?filter=expiring", false),
                            ("pending", "Grants awaiting a second administrator", d.pending_approvals, "/grants?filter=pending", d.pending_approvals > 0),
                            ("admins", "Administrators", d.admins, "/employees?role=admin", d.admins < 2),
                            ("offboarding", "Offboardings in progress", d.offboarding, "/offboarding", false),
                            ("suspended", "Suspended accounts", d.suspended, "/employees?status=suspended", false),
                            ("employees", "Active and invited employees", d.employees, "/employees", false),
                        ];
                        view! {
                            <ul class="grid gap-4 sm:grid-cols-2 lg:grid-cols-4">
                                {tiles.into_iter().map(|(id, label, n, href, warn)| view! {
                                    <li>
                                        <a id=format!("tile-{id}") href=href class=format!("block h-full rounded-lg border bg-white p-4 hover:border-indigo-400 focus:outline-none focus:ring-2 focus:ring-indigo-500 {}", if warn { "border-amber-300" } else { "border-slate-200" })>
                                            <span class="tile-number block text-3xl font-semibold">{n}</span>
                                            <span class="text-sm text-slate-600">{label}</span>
                                        </a>
                                    </li>
                                }).collect_view()}
                            </ul>
                        }.into_any()
                    }
                    Err(e) => view! { <LoadError error=e/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

// ---------------------------------------------------------------- directory

#[component]
pub fn DirectoryPage() -> impl IntoView {
    let query = use_query_map();
    let get = move |k: &'static str| query.with(|q| q.get(k).unwrap_or_default());
    let rows = Resource::new(
        move || (get("q"), get("department"), get("role"), get("status"), get("mfa")),
        |(q, department, role, status, mfa)| list_employees(q, department, role, status, mfa),
    );
    let catalogue = Resource::new(|| (), |_| catalogue());
    view! {
        <div class="mb-4 flex items-center justify-between">
            <h1 class="text-2xl font-semibold">"Employees"</h1>
            <a href="/employees/new" class=BUTTON>"Onboard an employee"</a>
        </div>
        <form method="get" action="/employees" class="mb-6 grid gap-x-4 rounded-lg border border-slate-200 bg-white p-4 sm:grid-cols-3 lg:grid-cols-6" role="search" aria-label="Filter employees">
            <div class="mb-4 sm:col-span-2">
                <label for="q" class="mb-1 block text-sm font-medium text-slate-700">"Name or email"</label>
                <input id="q" name="q" type="search" class=INPUT prop:value=move || get("q")/>
            </div>
            <Select label="Department" name="department" selected=get("department") options={
                let mut o = vec![(String::new(), "Any".to_string())]; o.extend(departments()); o
            }/>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    let mut o = vec![(String::new(), "Any".to_string())];
                    if let Ok(c) = catalogue.await { o.extend(c.roles.into_iter().map(|r| (r.key, r.name))); }
                    view! { <Select label="Role" name="role" selected=get("role") options=o/> }
                })}
            </Suspense>
            <Select label="Status" name="status" selected=get("status") options=vec![
                (String::new(), "Any".into()), ("invited".into(), "Invited".into()), ("active".into(), "Active".into()),
                ("suspended".into(), "Suspended".into()), ("offboarded".into(), "Offboarded".into()),
            ]/>
            <Select label="MFA" name="mfa" selected=get("mfa") options=vec![
                (String::new(), "Any".into()), ("enrolled".into(), "Set up".into()), ("missing".into(), "Not set up".into()),
            ]/>
            <div class="flex items-end gap-2 pb-4 sm:col-span-3 lg:col-span-6">
                <button type="submit" class=BUTTON>"Filter"</button>
                <a href="/employees" class="px-3 py-2 text-sm text-slate-700 underline">"Clear"</a>
            </div>
        </form>
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match rows.await {
                    Ok(rows) if rows.is_empty() => view! { <p id="no-employees">"No employees match."</p> }.into_any(),
                    Ok(rows) => view! {
                        <div class="overflow-x-auto rounded-lg border border-slate-200 bg-white">
                            <table id="employees" class="min-w-full divide-y divide-slate-200 text-sm">
                                <caption class="sr-only">"Employees"</caption>
                                <thead class="bg-slate-50"><tr>
                                    <th scope="col" class=TH>"Name"</th><th scope="col" class=TH>"Department"</th>
                                    <th scope="col" class=TH>"Roles"</th><th scope="col" class=TH>"Status"</th><th scope="col" class=TH>"MFA"</th>
                                </tr></thead>
                                <tbody class="divide-y divide-slate-100">
                                    {rows.into_iter().map(|e| view! {
                                        <tr data-email=e.email.clone()>
                                            <td class=TD><a class=LINK href=format!("/employees/{}", e.id)>{e.name.clone()}</a><span class="block text-xs text-slate-500">{e.email.clone()}</span></td>
                                            <td class=TD>{capital(&e.department)}</td>
                                            <td class=TD>{e.roles.join(", ")}</td>
                                            <td class=TD><Badge text=e.status.clone()/></td>
                                            <td class=TD><Badge text=(if e.mfa { "enrolled" } else { "missing" }).to_string()/></td>
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            </table>
                        </div>
                    }.into_any(),
                    Err(e) => view! { <LoadError error=e/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

// ---------------------------------------------------------------- onboarding

#[component]
pub fn OnboardPage() -> impl IntoView {
    let action = ServerAction::<OnboardEmployee>::new();
    let catalogue = Resource::new(|| (), |_| catalogue());
    view! {
        <h1 class="mb-4 text-2xl font-semibold">"Onboard an employee"</h1>
        <section class=CARD aria-labelledby="onboard-h">
            <h2 id="onboard-h" class="sr-only">"New employee"</h2>
            <FormError action/>
            {move || action.value().get().and_then(|r| r.ok()).map(|inv| view! {
                <div role="status" class="mb-4 rounded-md border border-green-200 bg-green-50 p-3 text-sm">
                    <p class="mb-2 font-semibold">"Employee created. Send them this single-use invitation link; it is shown only now and works until " {inv.expires_at.clone()} ":"</p>
                    <input id="invitation-link" readonly class=INPUT value=inv.link.clone() aria-label="Invitation link"/>
                    <p class="mt-2"><a class=LINK href=format!("/employees/{}", inv.user_id)>"Open the employee's page"</a></p>
                </div>
            })}
            <ActionForm action=action>
                <Field label="Full name" name="name" autocomplete="off"/>
                <Field label="Work email" name="email" kind="email" autocomplete="off"/>
                <Select label="Department" name="department" options=departments()/>
                <fieldset class="mb-4">
                    <legend class="mb-1 text-sm font-medium text-slate-700">"Initial roles"</legend>
                    <Suspense fallback=|| ()>
                        {move || Suspend::new(async move {
                            match catalogue.await {
                                Ok(c) => c.roles.into_iter().filter(|r| r.max_duration.is_none()).map(|r| {
                                    let id = format!("role-{}", r.key);
                                    view! {
                                        <div class="flex items-start gap-2 py-1">
                                            <input type="checkbox" id=id.clone() name="roles[]" value=r.key.clone() class="mt-1"/>
                                            <label for=id class="text-sm"><span class="font-medium">{r.name.clone()}</span><span class="block text-xs text-slate-500">{r.description.clone()}</span></label>
                                        </div>
                                    }
                                }).collect_view().into_any(),
                                Err(e) => view! { <LoadError error=e/> }.into_any(),
                            }
                        })}
                    </Suspense>
                    <p class="mt-1 text-xs text-slate-500">"Time-boxed roles are granted from the employee's page once they are needed."</p>
                </fieldset>
                <div class="mb-4">
                    <label for="reason" class="mb-1 block text-sm font-medium text-slate-700">"Reason for the initial roles"</label>
                    <input id="reason" name="reason" class=INPUT placeholder="onboarding"/>
                </div>
                <Submit label="Create employee and invitation" pending=action.pending()/>
            </ActionForm>
        </section>
    }
}

// ---------------------------------------------------------------- employee page

#[component]
pub fn EmployeePage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.with(|p| p.get("id").and_then(|s| s.parse::<i64>().ok()).unwrap_or(0));
    let grant = ServerAction::<GrantRole>::new();
    let revoke = ServerAction::<RevokeGrant>::new();
    let approve = ServerAction::<ApproveGrant>::new();
    let suspend = ServerAction::<SuspendEmployee>::new();
    let reactivate = ServerAction::<ReactivateEmployee>::new();
    let offboard = ServerAction::<OffboardEmployee>::new();
    let cancel = ServerAction::<CancelOffboarding>::new();
    let checklist = ServerAction::<MarkChecklist>::new();
    let reissue = ServerAction::<ReissueInvitation>::new();
    let unlock = ServerAction::<UnlockEmployee>::new();
    let version = move || {
        grant.version().get()
            + revoke.version().get()
            + approve.version().get()
            + suspend.version().get()
            + reactivate.version().get()
            + offboard.version().get()
            + cancel.version().get()
            + checklist.version().get()
            + reissue.version().get()
    };
    let data = Resource::new(move || (id(), version()), |(id, _)| employee(id));
    view! {
        <p class="mb-2 text-sm"><a class=LINK href="/employees">"← Employees"</a></p>
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(d) => view! { <EmployeeView d grant revoke approve suspend reactivate offboard cancel checklist reissue unlock/> }.into_any(),
                    Err(e) => view! { <LoadError error=e/> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
#[allow(clippy::too_many_arguments)]
fn EmployeeView(
    d: EmployeeDetail,
    grant: ServerAction<GrantRole>,
    revoke: ServerAction<RevokeGrant>,
    approve: ServerAction<ApproveGrant>,
    suspend: ServerAction<SuspendEmployee>,
    reactivate: ServerAction<ReactivateEmployee>,
    offboard: ServerAction<OffboardEmployee>,
    cancel: ServerAction<CancelOffboarding>,
    checklist: ServerAction<MarkChecklist>,
    reissue: ServerAction<ReissueInvitation>,
    unlock: ServerAction<UnlockEmployee>,
) -> impl IntoView {
    let e = d.employee.clone();
    let uid = e.id;
    let status = e.status.clone();
    let offboarded = status == "offboarded";
    let grantable = !offboarded && status != "suspended" && !d.is_self;
    let roles = d.roles.clone();
    view! {
        <header class="mb-6">
            <h1 id="employee-name" class="text-2xl font-semibold">{e.name.clone()}</h1>
            <p class="text-sm text-slate-600">{e.email.clone()} " · " {capital(&e.department)} " · "
                <span id="employee-status"><Badge text=status.clone()/></span> " · MFA "
                <Badge text=(if e.mfa { "enrolled" } else { "missing" }).to_string()/>
            </p>
            {d.status_reason.clone().filter(|_| status == "suspended").map(|r| view! { <p class="text-sm text-slate-600">"Suspended: " {r}</p> })}
            {e.offboard_at.clone().map(|t| view! { <p id="offboard-scheduled" class="mt-1 text-sm text-amber-800">"Offboarding scheduled for " {t}</p> })}
            {d.offboarded_at.clone().map(|t| view! { <p class="mt-1 text-sm">"Offboarded " {t} {d.offboarded_by.clone().map(|b| format!(" by {b}"))}</p> })}
            {d.invitation_expires_at.clone().map(|t| view! { <p class="mt-1 text-sm">"Invitation pending, valid until " {t}</p> })}
        </header>

        <section class=CARD aria-labelledby="perms-h">
            <h2 id="perms-h" class="mb-2 font-semibold">"Effective permissions"</h2>
            {(status == "invited").then(|| view! { <p class="mb-2 text-sm text-slate-600">"Grants take effect once the invitation is accepted."</p> })}
            {(status == "suspended").then(|| view! { <p class="mb-2 text-sm text-slate-600">"None while suspended; the grants below stay."</p> })}
            <PermissionTable perms=d.permissions.clone()/>
        </section>

        <section class=CARD aria-labelledby="grants-h">
            <h2 id="grants-h" class="mb-2 font-semibold">"Grants"</h2>
            <FormError action=revoke/>
            <FormError action=approve/>
            <GrantTable grants=d.grants.clone() revoke=Some(revoke) approve=Some(approve) show_user=false/>
            {grantable.then(|| view! {
                <h3 class="mb-2 mt-6 font-semibold">"Grant a role"</h3>
                {move || grant.value().get().and_then(|r| r.ok()).map(|pending| view! {
                    <p role="status" class="form-ok mb-4 rounded-md border border-green-200 bg-green-50 px-3 py-2 text-sm text-green-800">
                        {if pending { "Granted. It takes effect once a second administrator approves it." } else { "Role granted." }}
                    </p>
                })}
                <FormError action=grant/>
                <ActionForm action=grant attr:id="grant-form">
                    <input type="hidden" name="user_id" value=uid.to_string()/>
                    <div class="grid gap-x-4 sm:grid-cols-3">
                        <Select label="Role" name="role" options=roles.iter().map(|r| (r.key.clone(), match &r.max_duration { Some(m) => format!("{} (at most {m})", r.name), None => r.name.clone() })).collect()/>
                        <div class="mb-4">
                            <label for="expires_in" class="mb-1 block text-sm font-medium text-slate-700">"Expires in"</label>
                            <input id="expires_in" name="expires_in" class=INPUT placeholder="e.g. 8h, 30m, 14d" aria-describedby="expires-hint"/>
                            <p id="expires-hint" class="mt-1 text-xs text-slate-500">"Required for time-boxed roles; empty means standing."</p>
                        </div>
                        <div class="mb-4">
                            <label for="grant-reason" class="mb-1 block text-sm font-medium text-slate-700">"Reason"</label>
                            <input id="grant-reason" name="reason" required class=INPUT/>
                        </div>
                    </div>
                    <button type="submit" class=BUTTON disabled=move || grant.pending().get()>"Grant role"</button>
                </ActionForm>
            })}
        </section>

        <section class=CARD aria-labelledby="sessions-h">
            <h2 id="sessions-h" class="mb-2 font-semibold">"Sessions"</h2>
            {if d.sessions.is_empty() { view! { <p id="no-sessions" class="text-sm text-slate-600">"No open sessions."</p> }.into_any() } else { view! {
                <ul id="sessions" class="text-sm">
                    {d.sessions.iter().map(|s| view! { <li>"Session " {s.tag.clone()} " · started " {s.started.clone()} " · last seen " {s.last_seen.clone()}</li> }).collect_view()}
                </ul>
            }.into_any() }}
        </section>

        {(status == "invited").then(|| view! {
            <section class=CARD aria-labelledby="invite-h">
                <h2 id="invite-h" class="mb-2 font-semibold">"Invitation"</h2>
                <FormError action=reissue/>
                {move || reissue.value().get().and_then(|r| r.ok()).map(|inv| view! {
                    <p role="status" class="mb-2 text-sm">"New link (shown only now, valid until " {inv.expires_at.clone()} "):"</p>
                    <input id="invitation-link" readonly class=INPUT value=inv.link.clone() aria-label="Invitation link"/>
                })}
                <ActionForm action=reissue>
                    <input type="hidden" name="user_id" value=uid.to_string()/>
                    <button type="submit" class="mt-2 rounded-md border border-slate-300 px-3 py-2 text-sm hover:bg-slate-100">"Create a new invitation link"</button>
                </ActionForm>
            </section>
        })}

        {(!offboarded && !d.is_self).then(|| view! {
            <section class=CARD aria-labelledby="suspend-h">
                <h2 id="suspend-h" class="mb-2 font-semibold">"Sign-in and suspension"</h2>
                <p class="mb-2 text-sm text-slate-600">"Suspending blocks sign-in and ends every session at once; grants stay."</p>
                <FormError action=unlock/>
                {move || unlock.value().get().and_then(|r| r.ok()).map(|was| view! {
                    <p role="status" class="mb-2 text-sm">{if was { "Sign-in unlocked." } else { "Sign-in was not locked." }}</p>
                })}
                <ActionForm action=unlock attr:class="mb-4">
                    <input type="hidden" name="user_id" value=uid.to_string()/>
                    <button type="submit" class="rounded-md border border-slate-300 px-3 py-2 text-sm hover:bg-slate-100">"Unlock sign-in after failed attempts"</button>
                </ActionForm>
                <FormError action=suspend/>
                <FormError action=reactivate/>
                {if status == "suspended" { view! {
                    <ActionForm action=reactivate>
                        <input type="hidden" name="user_id" value=uid.to_string()/>
                        <button type="submit" class=BUTTON>"Reactivate"</button>
                    </ActionForm>
                }.into_any() } else { view! {
                    <ActionForm action=suspend attr:class="flex flex-wrap items-end gap-2">
                        <input type="hidden" name="user_id" value=uid.to_string()/>
                        <div class="grow"><label for="suspend-reason" class="mb-1 block text-sm font-medium text-slate-700">"Reason"</label><input id="suspend-reason" name="reason" required class=INPUT/></div>
                        <button type="submit" class=DANGER>"Suspend"</button>
                    </ActionForm>
                }.into_any() }}
            </section>
        })}

        {(!offboarded && !d.is_self).then(|| { let email = e.email.clone(); let scheduled = e.offboard_at.is_some(); view! {
            <section class="mb-6 rounded-lg border border-red-200 bg-white p-4" aria-labelledby="offboard-h">
                <h2 id="offboard-h" class="mb-2 font-semibold text-red-800">"Offboard"</h2>
                <p class="mb-4 text-sm text-slate-600">
                    "Ends everything at once: every grant is revoked (reason “offboarding”), pending invitations are cancelled and every session ends. "
                    "Leave the date empty to offboard now, or schedule it (UTC)."
                </p>
                <FormError action=offboard/>
                <Done action=offboard message="Done."/>
                <ActionForm action=offboard attr:id="offboard-form">
                    <input type="hidden" name="user_id" value=uid.to_string()/>
                    <div class="grid gap-x-4 sm:grid-cols-3">
                        <div class="mb-4">
                            <label for="confirm_email" class="mb-1 block text-sm font-medium text-slate-700">"Type " <span class="font-mono">{email}</span> " to confirm"</label>
                            <input id="confirm_email" name="confirm_email" required autocomplete="off" class=INPUT/>
                        </div>
                        <div class="mb-4">
                            <label for="offboard-code" class="mb-1 block text-sm font-medium text-slate-700">"Your authenticator code"</label>
                            <input id="offboard-code" name="code" inputmode="numeric" autocomplete="one-time-code" class=INPUT aria-describedby="code-hint"/>
                            <p id="code-hint" class="mt-1 text-xs text-slate-500">{if d.step_up_fresh { "Not needed: you entered one in the last 5 minutes." } else { "Required: your last code is more than 5 minutes old." }}</p>
                        </div>
                        <div class="mb-4">
                            <label for="offboard-at" class="mb-1 block text-sm font-medium text-slate-700">"Schedule for (UTC, optional)"</label>
                            <input id="offboard-at" name="at" type="datetime-local" class=INPUT/>
                        </div>
                    </div>
                    <button type="submit" class=DANGER disabled=move || offboard.pending().get()>"Offboard employee"</button>
                </ActionForm>
                {scheduled.then(|| view! {
                    <FormError action=cancel/>
                    <ActionForm action=cancel attr:class="mt-2">
                        <input type="hidden" name="user_id" value=uid.to_string()/>
                        <button type="submit" class="rounded-md border border-slate-300 px-3 py-2 text-sm hover:bg-slate-100">"Cancel the scheduled offboarding"</button>
                    </ActionForm>
                })}
            </section>
        }})}

        {offboarded.then(|| view! {
            <section class=CARD aria-labelledby="checklist-h">
                <h2 id="checklist-h" class="mb-2 font-semibold">"Offboarding checklist"</h2>
                <p class="mb-2 text-sm text-slate-600">"Steps outside Gatehouse. Mark each one when it is done."</p>
                <FormError action=checklist/>
                <Checklist items=d.checklist.clone() user_id=e.id action=checklist/>
            </section>
        })}

        <section class=CARD aria-labelledby="activity-h">
            <h2 id="activity-h" class="mb-2 font-semibold">"Recent activity"</h2>
            <ul id="employee-activity" class="divide-y divide-slate-100 text-sm">
                {d.activity.iter().map(|a| view! {
                    <li class="py-1"><span class="text-slate-500">{a.when.clone()}</span> " · " {a.what.clone()} " · " <Badge text=a.outcome.clone()/>
                    {(!a.note.is_empty()).then(|| view! { <span class="block text-xs text-slate-500">{a.note.clone()}</span> })}</li>
                }).collect_view()}
            </ul>
        </section>
    }
}

#[component]
fn Checklist(items: Vec<ChecklistEntry>, user_id: i64, action: ServerAction<MarkChecklist>) -> impl IntoView {
    view! {
        <ul id="checklist" class="divide-y divide-slate-100 text-sm">
            {items.into_iter().map(|c| view! {
                <li class="flex items-center justify-between gap-2 py-2" data-item=c.item.clone()>{
                    let item = c.item.clone(); view! {
                    <span>{c.label.clone()}</span>
                    {match (c.done_by.clone(), c.done_at.clone()) {
                        (Some(by), Some(at)) => view! { <span class="checklist-done text-green-800">"Done by " {by} ", " {at}</span> }.into_any(),
                        _ => view! {
                            <ActionForm action=action>
                                <input type="hidden" name="user_id" value=user_id.to_string()/>
                                <input type="hidden" name="item" value=item.clone()/>
                                <button type="submit" class="rounded-md border border-slate-300 px-2 py-1 hover:bg-slate-100">"Mark done"</button>
                            </ActionForm>
                        }.into_any(),
                    }}
                }}</li>
            }).collect_view()}
        </ul>
    }
}

#[component]
pub fn PermissionTable(perms: Vec<PermissionSource>) -> impl IntoView {
    if perms.is_empty() {
        return view! { <p id="no-permissions" class="text-sm text-slate-600">"No permissions."</p> }.into_any();
    }
    view! {
        <table id="permissions" class="min-w-full divide-y divide-slate-200 text-sm">
            <caption class="sr-only">"Effective permissions and where they come from"</caption>
            <thead class="bg-slate-50"><tr><th scope="col" class=TH>"Permission"</th><th scope="col" class=TH>"Level"</th><th scope="col" class=TH>"From"</th></tr></thead>
            <tbody class="divide-y divide-slate-100">
                {perms.into_iter().map(|p| view! {
                    <tr data-permission=p.id.clone()>
                        <td class=TD><span class="font-mono">{p.id.clone()}</span><span class="block text-xs text-slate-500">{p.description.clone()}</span></td>
                        <td class=TD><Badge text=p.sensitivity.clone()/></td>
                        <td class=TD>{p.sources.join("; ")}</td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}

#[component]
pub fn GrantTable(
    grants: Vec<GrantInfo>,
    revoke: Option<ServerAction<RevokeGrant>>,
    approve: Option<ServerAction<ApproveGrant>>,
    show_user: bool,
) -> impl IntoView {
    if grants.is_empty() {
        return view! { <p id="no-grants" class="text-sm text-slate-600">"No grants."</p> }.into_any();
    }
    view! {
        <div class="overflow-x-auto">
            <table id="grants" class="min-w-full divide-y divide-slate-200 text-sm">
                <caption class="sr-only">"Grants, newest first"</caption>
                <thead class="bg-slate-50"><tr>
                    {show_user.then(|| view! { <th scope="col" class=TH>"Employee"</th> })}
                    <th scope="col" class=TH>"Role"</th><th scope="col" class=TH>"State"</th><th scope="col" class=TH>"Granted"</th>
                    <th scope="col" class=TH>"Expires"</th><th scope="col" class=TH>"Ended"</th>
                    {revoke.is_some().then(|| view! { <th scope="col" class=TH><span class="sr-only">"Actions"</span></th> })}
                </tr></thead>
                <tbody class="divide-y divide-slate-100">
                    {grants.into_iter().map(|g| { let open = g.state == "active" || g.state == "pending" || g.state == "scheduled"; let gid = g.id; let pending = g.state == "pending"; view! {
                        <tr data-grant=gid.to_string() data-role=g.role.clone() data-state=g.state.clone()>
                            {show_user.then(|| view! { <td class=TD><a class=LINK href=format!("/employees/{}", g.user_id)>{g.user_name.clone()}</a></td> })}
                            <td class=TD>{g.role_name.clone()}{g.critical.then(|| view! { " " <Badge text="critical".to_string()/> })}
                                {(!g.customers.is_empty()).then(|| view! { <span class="grant-scope block text-xs text-slate-500">"Only customers " {g.customers.join(", ")}</span> })}</td>
                            <td class=TD><Badge text=g.state.clone()/></td>
                            <td class=TD>{g.starts_at.clone()}{g.granted_by.clone().map(|b| format!(" by {b}"))}<span class="block text-xs text-slate-500">{g.reason.clone()}</span>
                                {g.approved_by.clone().map(|a| view! { <span class="block text-xs text-slate-500">"Approved by " {a}</span> })}</td>
                            <td class=TD>{g.expires_at.clone().unwrap_or_else(|| "—".into())}</td>
                            <td class=TD>{g.revoked_at.clone().map(|t| view! { {t} {g.revoked_by.clone().map(|b| format!(" by {b}"))}<span class="block text-xs text-slate-500">{g.revoke_reason.clone()}</span> })}</td>
                            {revoke.map(|revoke| view! {
                                <td class=TD>
                                    {(open && pending).then(|| approve.map(|approve| view! {
                                        <ActionForm action=approve attr:class="mb-1">
                                            <input type="hidden" name="grant_id" value=gid.to_string()/>
                                            <button type="submit" class="approve rounded-md border border-slate-300 px-2 py-1 hover:bg-slate-100">"Approve"</button>
                                        </ActionForm>
                                    }))}
                                    {open.then(|| view! {
                                        <ActionForm action=revoke attr:class="flex gap-1">
                                            <input type="hidden" name="grant_id" value=gid.to_string()/>
                                            <label class="sr-only" for=format!("revoke-reason-{gid}")>"Reason to revoke"</label>
                                            <input id=format!("revoke-reason-{gid}") name="reason" required placeholder="Reason" class="w-28 rounded border border-slate-300 px-2 py-1"/>
                                            <button type="submit" class="revoke rounded-md border border-red-300 px-2 py-1 text-red-800 hover:bg-red-50">{if pending { "Reject" } else { "Revoke" }}</button>
                                        </ActionForm>
                                    })}
                                </td>
                            })}
                        </tr>
                    }}).collect_view()}
                </tbody>
            </table>
        </div>
    }
    .into_any()
}

// ---------------------------------------------------------------- roles

#[component]
pub fn RolesPage() -> impl IntoView {
    let save = ServerAction::<SaveRole>::new();
    let delete = ServerAction::<DeleteRole>::new();
    let data = Resource::new(move || save.version().get() + delete.version().get(), |_| catalogue());
    view! {
        <h1 class="mb-4 text-2xl font-semibold">"Roles"</h1>
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(c) => { let perms = c.permissions.clone(); view! {
                        <FormError action=delete/>
                        <div class="mb-6 overflow-x-auto rounded-lg border border-slate-200 bg-white">
                            <table id="roles" class="min-w-full divide-y divide-slate-200 text-sm">
                                <caption class="sr-only">"Roles and their permissions"</caption>
                                <thead class="bg-slate-50"><tr><th scope="col" class=TH>"Role"</th><th scope="col" class=TH>"Permissions"</th><th scope="col" class=TH>"Longest grant"</th><th scope="col" class=TH>"Holders"</th><th scope="col" class=TH><span class="sr-only">"Actions"</span></th></tr></thead>
                                <tbody class="divide-y divide-slate-100">
                                    {c.roles.into_iter().map(|r| view! {
                                        <tr data-role=r.key.clone()>
                                            <td class=TD><span class="font-medium">{r.name.clone()}</span> " " <span class="font-mono text-xs text-slate-500">{r.key.clone()}</span>
                                                {r.builtin.then(|| view! { " " <Badge text="built-in".to_string()/> })}
                                                {r.requestable.then(|| view! { " " <Badge text="requestable".to_string()/> })}
                                                <span class="block text-xs text-slate-500">{r.description.clone()}</span></td>
                                            <td class=TD><span class="font-mono text-xs">{r.permissions.join(", ")}</span></td>
                                            <td class=TD>{r.max_duration.clone().unwrap_or_else(|| "standing".into())}</td>
                                            <td class=TD>{r.holders}</td>
                                            <td class=TD>{ let key = r.key.clone(); (!r.builtin).then(move || view! {
                                                <ActionForm action=delete>
                                                    <input type="hidden" name="key" value=key.clone()/>
                                                    <button type="submit" class="rounded-md border border-red-300 px-2 py-1 text-red-800 hover:bg-red-50">"Delete"</button>
                                                </ActionForm>
                                            })}</td>
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            </table>
                        </div>
                        <section class=CARD aria-labelledby="role-h">
                            <h2 id="role-h" class="mb-2 font-semibold">"Create or change a custom role"</h2>
                            <p class="mb-4 text-sm text-slate-600">"Use an existing custom role's identifier to change it; the change applies to everyone who holds it. Built-in roles cannot be changed."</p>
                            <Done action=save message="Role saved."/>
                            <FormError action=save/>
                            <ActionForm action=save>
                                <div class="grid gap-x-4 sm:grid-cols-2">
                                    <Field label="Identifier" name="key" autocomplete="off" hint="Lower-case letters, digits and dashes, e.g. billing-support."/>
                                    <Field label="Name" name="name" autocomplete="off"/>
                                </div>
                                <div class="mb-4"><label for="description" class="mb-1 block text-sm font-medium text-slate-700">"Description"</label><input id="description" name="description" class=INPUT/></div>
                                <fieldset class="mb-4">
                                    <legend class="mb-1 text-sm font-medium text-slate-700">"Permissions"</legend>
                                    <div class="grid sm:grid-cols-2">
                                        {perms.into_iter().map(|p| { let id = format!("perm-{}", p.id.replace(':', "-")); view! {
                                            <div class="flex items-start gap-2 py-1">
                                                <input type="checkbox" id=id.clone() name="permissions[]" value=p.id.clone() class="mt-1"/>
                                                <label for=id class="text-sm"><span class="font-mono">{p.id.clone()}</span> " " <Badge text=p.sensitivity.clone()/><span class="block text-xs text-slate-500">{p.description.clone()}</span></label>
                                            </div>
                                        }}).collect_view()}
                                    </div>
                                </fieldset>
                                <div class="grid gap-x-4 sm:grid-cols-2">
                                    <div class="mb-4"><label for="max_duration" class="mb-1 block text-sm font-medium text-slate-700">"Longest grant"</label><input id="max_duration" name="max_duration" class=INPUT placeholder="e.g. 8h; empty for standing"/></div>
                                    <div class="mb-4 flex items-center gap-2 pt-6"><input type="checkbox" id="requestable" name="requestable" value="on"/><label for="requestable" class="text-sm">"Employees may request it (needs a longest grant)"</label></div>
                                </div>
                                <button type="submit" class=BUTTON>"Save role"</button>
                            </ActionForm>
                        </section>
                    }.into_any() }
                    Err(e) => view! { <LoadError error=e/> }.into_any(),
                }
            })}
        </Suspense>
        <PolicyPanel/>
    }
}

/// Who approves each requestable role, and how many approvals it needs.
#[component]
fn PolicyPanel() -> impl IntoView {
    let set = ServerAction::<crate::api::SetApprovalPolicy>::new();
    let data = Resource::new(move || set.version().get(), |_| crate::api::approval_policies());
    view! {
        <section class=CARD aria-labelledby="policy-h">
            <h2 id="policy-h" class="mb-2 font-semibold">"Approval of elevation requests"</h2>
            <p class="mb-4 text-sm text-slate-600">"Without named approvers, anyone holding requests:approve may approve. The requester never counts, and auditors never approve. Changes apply to requests made afterwards and need your authenticator code when your last one is more than 5 minutes old."</p>
            <Done action=set message="Approval policy saved."/>
            <FormError action=set/>
            <Transition fallback=|| ()>
                {move || Suspend::new(async move {
                    match data.await {
                        Ok(list) => view! {
                            <ul id="policies" class="divide-y divide-slate-100 text-sm">
                                {list.into_iter().map(|p| { let key = p.role.clone(); let li_key = key.clone(); view! {
                                    <li class="py-3" data-policy=li_key>
                                        <p class="font-medium">{p.role_name.clone()} " " <span class="font-mono text-xs text-slate-500">{key.clone()}</span></p>
                                        <ActionForm action=set attr:class="mt-1 grid items-end gap-2 sm:grid-cols-5">
                                            <input type="hidden" name="role" value=key.clone()/>
                                            <div><label for=format!("pol-n-{key}") class="block text-xs">"Approvals needed"</label>
                                                <select id=format!("pol-n-{key}") name="approvals_needed" class="w-full rounded border border-slate-300 px-2 py-1">
                                                    <option value="1" selected=p.approvals_needed == 1>"1"</option>
                                                    <option value="2" selected=p.approvals_needed == 2>"2 (different people)"</option>
                                                </select></div>
                                            <div class="sm:col-span-2"><label for=format!("pol-a-{key}") class="block text-xs">"Named approvers (emails; empty: holders of requests:approve)"</label>
                                                <input id=format!("pol-a-{key}") name="approvers" value=p.approvers.join(", ") class="w-full rounded border border-slate-300 px-2 py-1"/></div>
                                            <div><label for=format!("pol-c-{key}") class="block text-xs">"Authenticator code"</label>
                                                <input id=format!("pol-c-{key}") name="code" inputmode="numeric" autocomplete="one-time-code" class="w-full rounded border border-slate-300 px-2 py-1"/></div>
                                            <button type="submit" class="rounded-md border border-slate-300 px-3 py-1 hover:bg-slate-100">"Save"</button>
                                        </ActionForm>
                                    </li>
                                }}).collect_view()}
                            </ul>
                        }.into_any(),
                        Err(e) => view! { <LoadError error=e/> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

// ---------------------------------------------------------------- grants list

#[component]
pub fn GrantsPage() -> impl IntoView {
    let query = use_query_map();
    let filter = move || query.with(|q| q.get("filter").unwrap_or_default());
    let revoke = ServerAction::<RevokeGrant>::new();
    let approve = ServerAction::<ApproveGrant>::new();
    let data = Resource::new(
        move || (filter(), revoke.version().get() + approve.version().get()),
        |(f, _)| grant_list(f),
    );
    let title = move || match filter().as_str() {
        "critical" => "Standing grants of critical permissions",
        "expiring" => "Grants expiring in the next 7 days",
        "pending" => "Grants awaiting a second administrator",
        _ => "Open grants",
    };
    view! {
        <h1 class="mb-2 text-2xl font-semibold">{title}</h1>
        <nav aria-label="Grant lists" class="mb-4 flex gap-3 text-sm">
            <a class=LINK href="/grants">"All open"</a><a class=LINK href="/grants?filter=critical">"Critical, standing"</a>
            <a class=LINK href="/grants?filter=expiring">"Expiring soon"</a><a class=LINK href="/grants?filter=pending">"Awaiting approval"</a>
        </nav>
        <FormError action=revoke/>
        <FormError action=approve/>
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(g) => view! { <div class="rounded-lg border border-slate-200 bg-white p-2"><GrantTable grants=g revoke=Some(revoke) approve=Some(approve) show_user=true/></div> }.into_any(),
                    Err(e) => view! { <LoadError error=e/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

// ---------------------------------------------------------------- offboarding report

#[component]
pub fn OffboardingPage() -> impl IntoView {
    let data = Resource::new(|| (), |_| offboarding_report());
    view! {
        <h1 class="mb-2 text-2xl font-semibold">"Offboarding report"</h1>
        <p class="mb-4 text-sm text-slate-600">"Scheduled and completed offboardings, with the steps outside Gatehouse."</p>
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(rows) if rows.is_empty() => view! { <p>"No offboardings."</p> }.into_any(),
                    Ok(rows) => view! {
                        <div class="overflow-x-auto rounded-lg border border-slate-200 bg-white">
                            <table id="offboarding" class="min-w-full divide-y divide-slate-200 text-sm">
                                <caption class="sr-only">"Offboardings"</caption>
                                <thead class="bg-slate-50"><tr><th scope="col" class=TH>"Employee"</th><th scope="col" class=TH>"Offboarded"</th><th scope="col" class=TH>"Checklist"</th></tr></thead>
                                <tbody class="divide-y divide-slate-100">
                                    {rows.into_iter().map(|r| { let done = r.checklist.iter().filter(|c| c.done_at.is_some()).count(); let total = r.checklist.len(); view! {
                                        <tr data-email=r.email.clone()>
                                            <td class=TD><a class=LINK href=format!("/employees/{}", r.id)>{r.name.clone()}</a><span class="block text-xs text-slate-500">{r.email.clone()}</span></td>
                                            <td class=TD>{match (r.offboarded_at.clone(), r.offboard_at.clone()) {
                                                (Some(t), _) => format!("{t}{}", r.offboarded_by.clone().map(|b| format!(" by {b}")).unwrap_or_default()),
                                                (None, Some(t)) => format!("scheduled for {t}"),
                                                _ => String::new(),
                                            }}</td>
                                            <td class=TD><span class="font-medium">{format!("{done} of {total} done")}</span>
                                                <ul class="text-xs">{r.checklist.into_iter().map(|c| view! { <li>{if c.done_at.is_some() { "✓ " } else { "○ " }}{c.label.clone()}{c.done_by.clone().map(|b| format!(" — {b}, {}", c.done_at.clone().unwrap_or_default()))}</li> }).collect_view()}</ul></td>
                                        </tr>
                                    }}).collect_view()}
                                </tbody>
                            </table>
                        </div>
                    }.into_any(),
                    Err(e) => view! { <LoadError error=e/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

// ---------------------------------------------------------------- service accounts

#[component]
pub fn ServiceAccountsPage() -> impl IntoView {
    let create = ServerAction::<CreateServiceAccount>::new();
    let token = ServerAction::<CreateApiToken>::new();
    let revoke = ServerAction::<RevokeApiToken>::new();
    let data = Resource::new(
        move || create.version().get() + token.version().get() + revoke.version().get(),
        |_| service_accounts(),
    );
    view! {
        <h1 class="mb-2 text-2xl font-semibold">"Service accounts"</h1>
        <p class="mb-4 text-sm text-slate-600">
            "Backend services ask Gatehouse with a bearer token: " <span class="font-mono">"POST /api/v1/access-checks"</span>
            " (scope " <span class="font-mono">"access:check"</span> "). The API is described at "
            <a class=LINK href="/api/v1/openapi.json">"/api/v1/openapi.json"</a> "."
        </p>
        <FormError action=token/>
        <FormError action=revoke/>
        {move || token.value().get().and_then(|r| r.ok()).map(|t| view! {
            <div role="status" class="mb-4 rounded-md border border-green-200 bg-green-50 p-3 text-sm">
                <p class="mb-2 font-semibold">"New token. Copy it now: it is shown only once and stored only as a hash."
                    {t.expires_at.clone().map(|e| format!(" It expires {e}."))}</p>
                <input id="new-token" readonly class=INPUT value=t.token.clone() aria-label="New API token"/>
            </div>
        })}
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(accounts) if accounts.is_empty() => view! { <p class="mb-6">"No service accounts yet."</p> }.into_any(),
                    Ok(accounts) => accounts.into_iter().map(|a| { let aid = a.id; view! {
                        <section class=CARD data-account=a.name.clone() aria-label=format!("Service account {}", a.name)>
                            <h2 class="font-semibold"><span class="font-mono">{a.name.clone()}</span></h2>
                            <p class="mb-2 text-sm text-slate-600">"Scopes: " <span class="font-mono">{a.scopes.join(", ")}</span> " · created " {a.created.clone()} {a.created_by.clone().map(|b| format!(" by {b}"))}</p>
                            <ul class="mb-2 divide-y divide-slate-100 text-sm">
                                {a.tokens.into_iter().map(|t| { let tid = t.id; view! {
                                    <li class="flex flex-wrap items-center justify-between gap-2 py-1" data-token=tid.to_string()>
                                        <span>{t.label.clone()} " · " <Badge text=(if t.usable { "active" } else if t.revoked_at.is_some() { "revoked" } else { "expired" }).to_string()/>
                                            " · created " {t.created.clone()} {t.expires_at.clone().map(|e| format!(" · expires {e}"))}
                                            " · last used " {t.last_used_at.clone().unwrap_or_else(|| "never".into())}</span>
                                        {t.usable.then(|| view! {
                                            <ActionForm action=revoke>
                                                <input type="hidden" name="token_id" value=tid.to_string()/>
                                                <button type="submit" class="rounded-md border border-red-300 px-2 py-1 text-red-800 hover:bg-red-50">"Revoke"</button>
                                            </ActionForm>
                                        })}
                                    </li>
                                }}).collect_view()}
                            </ul>
                            <ActionForm action=token attr:class="flex flex-wrap items-end gap-2">
                                <input type="hidden" name="account_id" value=aid.to_string()/>
                                <div><label for=format!("label-{aid}") class="mb-1 block text-sm font-medium text-slate-700">"Token label"</label>
                                    <input id=format!("label-{aid}") name="label" required class=INPUT placeholder="production cluster"/></div>
                                <div><label for=format!("exp-{aid}") class="mb-1 block text-sm font-medium text-slate-700">"Expires in (optional)"</label>
                                    <input id=format!("exp-{aid}") name="expires_in" class=INPUT placeholder="e.g. 90d"/></div>
                                <button type="submit" class=BUTTON>"Create token"</button>
                            </ActionForm>
                        </section>
                    }}).collect_view().into_any(),
                    Err(e) => view! { <LoadError error=e/> }.into_any(),
                }
            })}
        </Suspense>
        <section class=CARD aria-labelledby="new-account-h">
            <h2 id="new-account-h" class="mb-2 font-semibold">"New service account"</h2>
            <Done action=create message="Service account created. Create a token for it above."/>
            <FormError action=create/>
            <ActionForm action=create>
                <Field label="Name" name="name" autocomplete="off" hint="e.g. customer-api"/>
                <fieldset class="mb-4">
                    <legend class="mb-1 text-sm font-medium text-slate-700">"Scopes"</legend>
                    <div class="flex items-center gap-2"><input type="checkbox" id="scope-check" name="scopes[]" value="access:check"/><label for="scope-check" class="text-sm"><span class="font-mono">"access:check"</span> " — ask whether an employee may do something"</label></div>
                    <div class="flex items-center gap-2"><input type="checkbox" id="scope-events" name="scopes[]" value="events:write"/><label for="scope-events" class="text-sm"><span class="font-mono">"events:write"</span> " — report access to customer data"</label></div>
                    <div class="flex items-center gap-2"><input type="checkbox" id="scope-scim" name="scopes[]" value="scim"/><label for="scope-scim" class="text-sm"><span class="font-mono">"scim"</span> " — the identity provider creates, changes and deactivates employees (/scim/v2)"</label></div>
                </fieldset>
                <button type="submit" class=BUTTON>"Create service account"</button>
            </ActionForm>
        </section>
    }
}
