//! An employee's page: grants and permissions, sessions, activity,
//! suspension and offboarding, the offboarding checklist.

use super::{GrantTable, PermissionTable};
use crate::api::*;
use crate::components::{
    capital, class::*, Badge, Done, FormError, InvitationSent, LoadError, PasskeyStepUp, Select, StepUpCode,
};
use crate::dto::*;
use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

// ---------------------------------------------------------------- employee page

/// What offboarding now does.
const OFFBOARD_NOW: &str =
    "Ends everything at once: every grant is revoked (reason “offboarding”), pending invitations are \
                            cancelled and every session ends. ";

/// An invited employee whom the identity provider manages.
const PROVIDER_MANAGED: &str =
    "Managed by the company's identity provider: signs in through it, so Gatehouse issues no invitation link.";

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
        <p class="mb-2 text-sm">
            <a class=LINK href="/employees">
                "← Employees"
            </a>
        </p>
        <Transition fallback=|| {
            view! { <p>"Loading…"</p> }
        }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(d) => {
                        view! {
                            <EmployeeView
                                d
                                grant
                                revoke
                                approve
                                suspend
                                reactivate
                                offboard
                                cancel
                                checklist
                                reissue
                                unlock
                            />
                        }
                            .into_any()
                    }
                    Err(e) => view! { <LoadError error=e /> }.into_any(),
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
    let status = e.status;
    let offboarded = status == EmployeeStatus::Offboarded;
    let managed_by_provider = d.managed_by_provider;
    let grantable = !offboarded && status != EmployeeStatus::Suspended && !d.is_self;
    let roles = d.roles.clone();
    view! {
        <header class="mb-6">
            <h1 id="employee-name" class="text-2xl font-semibold">
                {e.name.clone()}
            </h1>
            <p class="text-sm text-slate-600">
                {e.email.clone()} " · " {capital(&e.department)} " · " <span id="employee-status">
                    <Badge text=status.as_str().to_owned() />
                </span> " · MFA " <Badge text=(if e.mfa { "enrolled" } else { "missing" }).to_string() />
            </p>
            {d
                .status_reason
                .clone()
                .filter(|_| status == EmployeeStatus::Suspended)
                .map(|r| view! { <p class="text-sm text-slate-600">"Suspended: " {r}</p> })}
            {e
                .offboard_at
                .clone()
                .map(|t| {
                    view! {
                        <p id="offboard-scheduled" class="mt-1 text-sm text-amber-800">
                            "Offboarding scheduled for "
                            {t}
                        </p>
                    }
                })}
            {d
                .offboarded_at
                .clone()
                .map(|t| {
                    view! {
                        <p class="mt-1 text-sm">
                            "Offboarded " {t} {d.offboarded_by.clone().map(|b| format!(" by {b}"))}
                        </p>
                    }
                })}
            {d
                .invitation_expires_at
                .clone()
                .map(|t| view! { <p class="mt-1 text-sm">"Invitation pending, valid until " {t}</p> })}
        </header>

        <section class=CARD aria-labelledby="perms-h">
            <h2 id="perms-h" class="mb-2 font-semibold">
                "Effective permissions"
            </h2>
            {(status == EmployeeStatus::Invited)
                .then(|| {
                    view! {
                        <p class="mb-2 text-sm text-slate-600">"Grants take effect once the invitation is accepted."</p>
                    }
                })}
            {(status == EmployeeStatus::Suspended)
                .then(|| {
                    view! { <p class="mb-2 text-sm text-slate-600">"None while suspended; the grants below stay."</p> }
                })}
            <PermissionTable perms=d.permissions.clone() />
        </section>

        <section class=CARD aria-labelledby="grants-h">
            <h2 id="grants-h" class="mb-2 font-semibold">
                "Grants"
            </h2>
            <FormError action=revoke />
            <FormError action=approve />
            <GrantTable grants=d.grants.clone() revoke=Some(revoke) approve=Some(approve) show_user=false />
            {grantable
                .then(|| {
                    view! {
                        <h3 class="mb-2 mt-6 font-semibold">"Grant a role"</h3>
                        {move || {
                            grant
                                .value()
                                .get()
                                .and_then(|r| r.ok())
                                .map(|pending| {
                                    view! {
                                        <p
                                            role="status"
                                            class=NOTICE_OK
                                        >
                                            {if pending {
                                                "Granted. It takes effect once a second administrator approves it."
                                            } else {
                                                "Role granted."
                                            }}
                                        </p>
                                    }
                                })
                        }}
                        <FormError action=grant />
                        <ActionForm action=grant attr:id="grant-form">
                            <input type="hidden" name="user_id" value=uid.to_string() />
                            <div class="grid gap-x-4 sm:grid-cols-3">
                                <Select
                                    label="Role"
                                    name="role"
                                    options=roles
                                        .iter()
                                        .map(|r| (
                                            r.key.clone(),
                                            match &r.max_duration {
                                                Some(m) => format!("{} (at most {m})", r.name),
                                                None => r.name.clone(),
                                            },
                                        ))
                                        .collect()
                                />
                                <div class="mb-4">
                                    <label for="expires_in" class="mb-1 block text-sm font-medium text-slate-700">
                                        "Expires in"
                                    </label>
                                    <input
                                        id="expires_in"
                                        name="expires_in"
                                        class=INPUT
                                        placeholder="e.g. 8h, 30m, 14d"
                                        aria-describedby="expires-hint"
                                    />
                                    <p id="expires-hint" class="mt-1 text-xs text-slate-500">
                                        "Required for time-boxed roles; empty means standing."
                                    </p>
                                </div>
                                <div class="mb-4">
                                    <label for="grant-reason" class="mb-1 block text-sm font-medium text-slate-700">
                                        "Reason"
                                    </label>
                                    <input id="grant-reason" name="reason" required class=INPUT />
                                </div>
                                <StepUpCode id="grant-code" />
                            </div>
                            <button type="submit" class=BUTTON disabled=move || grant.pending().get()>
                                "Grant role"
                            </button>
                        </ActionForm>
                    }
                })}
        </section>

        <section class=CARD aria-labelledby="sessions-h">
            <h2 id="sessions-h" class="mb-2 font-semibold">
                "Sessions"
            </h2>
            {if d.sessions.is_empty() {
                view! {
                    <p id="no-sessions" class="text-sm text-slate-600">
                        "No open sessions."
                    </p>
                }
                    .into_any()
            } else {
                view! {
                    <ul id="sessions" class="text-sm">
                        {d
                            .sessions
                            .iter()
                            .map(|s| {
                                view! {
                                    <li>
                                        "Session " {s.tag.clone()} " · started " {s.started.clone()} " · last seen "
                                        {s.last_seen.clone()}
                                    </li>
                                }
                            })
                            .collect_view()}
                    </ul>
                }
                    .into_any()
            }}
        </section>

        {(status == EmployeeStatus::Invited)
            .then(|| {
                view! {
                    <section class=CARD aria-labelledby="invite-h">
                        <h2 id="invite-h" class="mb-2 font-semibold">
                            "Invitation"
                        </h2>
                        {if managed_by_provider {
                            view! {
                                <p class="text-sm text-slate-600">{PROVIDER_MANAGED}</p>
                            }
                                .into_any()
                        } else {
                            view! {
                                <FormError action=reissue />
                                {move || {
                                    reissue
                                        .value()
                                        .get()
                                        .and_then(|r| r.ok())
                                        .map(|inv| {
                                            view! {
                                                <div role="status" class="mb-2 text-sm">
                                                    <InvitationSent invited=inv />
                                                </div>
                                            }
                                        })
                                }}
                                <ActionForm action=reissue>
                                    <input type="hidden" name="user_id" value=uid.to_string() />
                                    <button
                                        type="submit"
                                        class="mt-2 rounded-md border border-slate-300 px-3 py-2 text-sm hover:bg-slate-100"
                                    >
                                        "Create a new invitation link"
                                    </button>
                                </ActionForm>
                            }
                                .into_any()
                        }}
                    </section>
                }
            })}

        {(!offboarded && !d.is_self)
            .then(|| {
                view! {
                    <section class=CARD aria-labelledby="suspend-h">
                        <h2 id="suspend-h" class="mb-2 font-semibold">
                            "Sign-in and suspension"
                        </h2>
                        <p class="mb-2 text-sm text-slate-600">
                            "Suspending blocks sign-in and ends every session at once; grants stay."
                        </p>
                        <FormError action=unlock />
                        {move || {
                            unlock
                                .value()
                                .get()
                                .and_then(|r| r.ok())
                                .map(|was| {
                                    view! {
                                        <p role="status" class="mb-2 text-sm">
                                            {if was { "Sign-in unlocked." } else { "Sign-in was not locked." }}
                                        </p>
                                    }
                                })
                        }}
                        <ActionForm action=unlock attr:class="mb-4">
                            <input type="hidden" name="user_id" value=uid.to_string() />
                            <button
                                type="submit"
                                class="rounded-md border border-slate-300 px-3 py-2 text-sm hover:bg-slate-100"
                            >
                                "Unlock sign-in after failed attempts"
                            </button>
                        </ActionForm>
                        <FormError action=suspend />
                        <FormError action=reactivate />
                        {if status == EmployeeStatus::Suspended {
                            view! {
                                <ActionForm action=reactivate>
                                    <input type="hidden" name="user_id" value=uid.to_string() />
                                    <button type="submit" class=BUTTON>
                                        "Reactivate"
                                    </button>
                                </ActionForm>
                            }
                                .into_any()
                        } else {
                            view! {
                                <ActionForm action=suspend attr:class="flex flex-wrap items-end gap-2">
                                    <input type="hidden" name="user_id" value=uid.to_string() />
                                    <div class="grow">
                                        <label
                                            for="suspend-reason"
                                            class="mb-1 block text-sm font-medium text-slate-700"
                                        >
                                            "Reason"
                                        </label>
                                        <input id="suspend-reason" name="reason" required class=INPUT />
                                    </div>
                                    <StepUpCode id="suspend-code" />
                                    <button type="submit" class=DANGER>
                                        "Suspend"
                                    </button>
                                </ActionForm>
                            }
                                .into_any()
                        }}
                    </section>
                }
            })}

        {(!offboarded && !d.is_self)
            .then(|| {
                let email = e.email.clone();
                let scheduled = e.offboard_at.is_some();
                view! {
                    <section class="mb-6 rounded-lg border border-red-200 bg-white p-4" aria-labelledby="offboard-h">
                        <h2 id="offboard-h" class="mb-2 font-semibold text-red-800">
                            "Offboard"
                        </h2>
                        <p class="mb-4 text-sm text-slate-600">
                            {OFFBOARD_NOW}
                            "Leave the date empty to offboard now, or schedule it (UTC)."
                        </p>
                        <FormError action=offboard />
                        <Done action=offboard message="Done." />
                        <ActionForm action=offboard attr:id="offboard-form">
                            <input type="hidden" name="user_id" value=uid.to_string() />
                            <div class="grid gap-x-4 sm:grid-cols-3">
                                <div class="mb-4">
                                    <label for="confirm_email" class="mb-1 block text-sm font-medium text-slate-700">
                                        "Type "
                                        <span class="font-mono">{email}</span>
                                        " to confirm"
                                    </label>
                                    <input
                                        id="confirm_email"
                                        name="confirm_email"
                                        required
                                        autocomplete="off"
                                        class=INPUT
                                    />
                                </div>
                                <div class="mb-4">
                                    <label for="offboard-code" class="mb-1 block text-sm font-medium text-slate-700">
                                        "Your authenticator code"
                                    </label>
                                    <input
                                        id="offboard-code"
                                        name="code"
                                        inputmode="numeric"
                                        autocomplete="one-time-code"
                                        class=INPUT
                                        aria-describedby="code-hint"
                                    />
                                    <p id="code-hint" class="mt-1 text-xs text-slate-500">
                                        {if d.step_up_fresh {
                                            "Not needed: you entered one in the last 5 minutes."
                                        } else {
                                            "Required: your last code is more than 5 minutes old."
                                        }}
                                    </p>
                                    <PasskeyStepUp id="offboard-passkey" purpose="offboarding" />
                                </div>
                                <div class="mb-4">
                                    <label for="offboard-at" class="mb-1 block text-sm font-medium text-slate-700">
                                        "Schedule for (UTC, optional)"
                                    </label>
                                    <input id="offboard-at" name="at" type="datetime-local" class=INPUT />
                                </div>
                            </div>
                            <button type="submit" class=DANGER disabled=move || offboard.pending().get()>
                                "Offboard employee"
                            </button>
                        </ActionForm>
                        {scheduled
                            .then(|| {
                                view! {
                                    <FormError action=cancel />
                                    <ActionForm action=cancel attr:class="mt-2">
                                        <input type="hidden" name="user_id" value=uid.to_string() />
                                        <button
                                            type="submit"
                                            class="rounded-md border border-slate-300 px-3 py-2 text-sm hover:bg-slate-100"
                                        >
                                            "Cancel the scheduled offboarding"
                                        </button>
                                    </ActionForm>
                                }
                            })}
                    </section>
                }
            })}

        {offboarded
            .then(|| {
                view! {
                    <section class=CARD aria-labelledby="checklist-h">
                        <h2 id="checklist-h" class="mb-2 font-semibold">
                            "Offboarding checklist"
                        </h2>
                        <p class="mb-2 text-sm text-slate-600">
                            "Steps outside Gatehouse. Mark each one when it is done."
                        </p>
                        <FormError action=checklist />
                        <Checklist items=d.checklist.clone() user_id=e.id action=checklist />
                    </section>
                }
            })}

        <section class=CARD aria-labelledby="activity-h">
            <h2 id="activity-h" class="mb-2 font-semibold">
                "Recent activity"
            </h2>
            <ul id="employee-activity" class="divide-y divide-slate-100 text-sm">
                {d
                    .activity
                    .iter()
                    .map(|a| {
                        view! {
                            <li class="py-1">
                                <span class="text-slate-500">{a.when.clone()}</span>
                                " · "
                                {a.what.clone()}
                                " · "
                                <Badge text=a.outcome.as_str().to_owned() />
                                {(!a.note.is_empty())
                                    .then(|| {
                                        view! { <span class="block text-xs text-slate-500">{a.note.clone()}</span> }
                                    })}
                            </li>
                        }
                    })
                    .collect_view()}
            </ul>
        </section>
    }
}

#[component]
fn Checklist(items: Vec<ChecklistEntry>, user_id: i64, action: ServerAction<MarkChecklist>) -> impl IntoView {
    view! {
        <ul id="checklist" class="divide-y divide-slate-100 text-sm">
            {items
                .into_iter()
                .map(|c| {
                    view! {
                        <li class="flex items-center justify-between gap-2 py-2" data-item=c.item.clone()>
                            {
                                let item = c.item.clone();
                                view! {
                                    <span>{c.label.clone()}</span>
                                    {match (c.done_by.clone(), c.done_at.clone()) {
                                        (Some(by), Some(at)) => {
                                            view! {
                                                <span class="checklist-done text-green-800">
                                                    "Done by " {by} ", " {at}
                                                </span>
                                            }
                                                .into_any()
                                        }
                                        _ => {
                                            view! {
                                                <ActionForm action=action>
                                                    <input type="hidden" name="user_id" value=user_id.to_string() />
                                                    <input type="hidden" name="item" value=item.clone() />
                                                    <button
                                                        type="submit"
                                                        class=SMALL_BUTTON
                                                    >
                                                        "Mark done"
                                                    </button>
                                                </ActionForm>
                                            }
                                                .into_any()
                                        }
                                    }}
                                }
                            }
                        </li>
                    }
                })
                .collect_view()}
        </ul>
    }
}
