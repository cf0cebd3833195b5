//! Break-glass for engineers, and the approvers' queue.

use super::line;
use crate::api::{BreakGlass, DecideElevation, ReviewBreakglass, RevokeElevation};
use crate::components::class::CARD;
use crate::components::{FormError, LoadError, PasskeyStepUp};
use crate::domain::permissions::Permission;
use crate::dto::{ElevationView, Profile, RequestState};
use crate::errors::AppError;
use leptos::prelude::*;

/// What breaking the glass does.
const BREAKGLASS_WARNING: &str =
    "Production and customer data at once, for at most 1 hour, without waiting for approval. Every \
                                  administrator and auditor is alerted, and someone else must review it afterwards.";

/// When an approver is asked for a code.
const STEP_UP_NOTE: &str =
    "Approving, denying and revoking need your authenticator code when your last one is more than 5 \
                            minutes old.";

/// Break-glass, for engineers only.
#[component]
pub(super) fn BreakGlassPanel(
    glass: ServerAction<BreakGlass>,
    me: Resource<Result<Option<Profile>, AppError>>,
) -> impl IntoView {
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                me.await
                    .ok()
                    .flatten()
                    .filter(|m| m.department == "engineering")
                    .map(|_| {
                        view! {
                            <section
                                class="mb-6 rounded-lg border border-red-200 bg-red-50 p-4"
                                aria-labelledby="glass-h"
                            >
                                <h2 id="glass-h" class="mb-2 font-semibold text-red-900">
                                    "Break glass (emergencies only)"
                                </h2>
                                <p class="mb-2 text-sm text-red-900">
                                    {BREAKGLASS_WARNING}
                                </p>
                                <FormError action=glass />
                                {move || {
                                    glass
                                        .value()
                                        .get()
                                        .and_then(|r| r.ok())
                                        .map(|id| {
                                            view! {
                                                <p role="status" class="form-ok mb-2 text-sm text-green-800">
                                                    "Break-glass access "
                                                    {id}
                                                    " is active."
                                                </p>
                                            }
                                        })
                                }}
                                <ActionForm action=glass attr:class="grid gap-2 sm:grid-cols-4">
                                    <div>
                                        <label for="glass-duration" class="block text-xs">
                                            "For (at most 1h)"
                                        </label>
                                        <input
                                            id="glass-duration"
                                            name="duration"
                                            placeholder="1h"
                                            class="w-full rounded border border-slate-300 px-2 py-1"
                                        />
                                    </div>
                                    <div class="sm:col-span-2">
                                        <label for="glass-why" class="block text-xs">
                                            "What is broken (at least 20 characters)"
                                        </label>
                                        <input
                                            id="glass-why"
                                            name="justification"
                                            required
                                            minlength="20"
                                            class="w-full rounded border border-slate-300 px-2 py-1"
                                        />
                                    </div>
                                    <div>
                                        <label for="glass-code" class="block text-xs">
                                            "Authenticator code"
                                        </label>
                                        <input
                                            id="glass-code"
                                            name="code"
                                            inputmode="numeric"
                                            autocomplete="one-time-code"
                                            class="w-full rounded border border-slate-300 px-2 py-1"
                                        />
                                        <PasskeyStepUp
                                            id="glass-passkey"
                                            purpose="break glass"
                                            label="Confirm with a passkey instead"
                                        />
                                    </div>
                                    <button
                                        type="submit"
                                        class="rounded-md bg-red-700 px-3 py-2 text-sm font-semibold text-white hover:bg-red-800"
                                    >
                                        "Break the glass"
                                    </button>
                                </ActionForm>
                            </section>
                        }
                    })
            })}
        </Suspense>
    }
}

/// Requests waiting for a decision and active elevations, for approvers.
#[component]
pub(super) fn ApprovalQueue(
    queue: Resource<Result<Vec<ElevationView>, AppError>>,
    decide: ServerAction<DecideElevation>,
    revoke: ServerAction<RevokeElevation>,
    review: ServerAction<ReviewBreakglass>,
    me: Resource<Result<Option<Profile>, AppError>>,
) -> impl IntoView {
    view! {
        // Inside Suspense, so the server renders the same as the browser
        // hydrates (a bare `me.get()` renders nothing on the server).
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                me.await
                    .ok()
                    .flatten()
                    .filter(|m| m.can(Permission::RequestsApprove) || m.named_approver)
                    .map(|_| {
                        view! {
                            <section class=CARD aria-labelledby="queue-h">
                                <h2 id="queue-h" class="mb-2 font-semibold">
                                    "Waiting for a decision, and active"
                                </h2>
                                <p class="mb-2 text-sm text-slate-600">
                                    {STEP_UP_NOTE}
                                </p>
                                <FormError action=decide />
                                <FormError action=revoke />
                                <FormError action=review />
                                <Transition fallback=|| ()>
                                    {move || Suspend::new(async move {
                                        match queue.await {
                                            Ok(list) if list.is_empty() => {
                                                view! {
                                                    <p id="queue-empty" class="text-sm text-slate-600">
                                                        "Nothing waiting."
                                                    </p>
                                                }
                                                    .into_any()
                                            }
                                            Ok(list) => {
                                                view! {
                                                    <ul id="queue" class="divide-y divide-slate-100 text-sm">
                                                        {list
                                                            .into_iter()
                                                            .map(|e| {
                                                                view! {
                                                                    <QueueItem e=e decide=decide revoke=revoke review=review />
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
                                </Transition>
                            </section>
                        }
                    })
            })}
        </Suspense>
    }
}

/// One request or active elevation in the queue, with what the approver can do.
#[component]
fn QueueItem(
    e: ElevationView,
    decide: ServerAction<DecideElevation>,
    revoke: ServerAction<RevokeElevation>,
    review: ServerAction<ReviewBreakglass>,
) -> impl IntoView {
    let id = e.id;
    let pending = e.state == RequestState::Pending;
    view! {
        <li class="py-3" data-request=id.to_string() data-state=e.state.as_str()>
            <p>
                <span class="font-medium">{e.requester.clone()}</span>
                " asks for "
                {line(&e)}
            </p>
            <p class="text-slate-600">"“" {e.justification.clone()} "”"</p>
            <p class="text-xs text-slate-500">
                "Holds now: "
                {if e.requester_roles.is_empty() { "nothing".to_owned() } else { e.requester_roles.join(", ") }}
            </p>
            <p class="text-xs text-slate-500">
                "Recent elevations: " {if e.recent.is_empty() { "none".to_owned() } else { e.recent.join(" · ") }}
            </p>
            {pending
                .then(|| {
                    view! {
                        <p class="approvals text-xs text-slate-500">
                            {format!("Approvals {} of {}", e.approvals, e.approvals_needed)}
                            {(!e.approvers.is_empty())
                                .then(|| { format!(" · approvers: {}", e.approvers.join(", ")) })}
                        </p>
                    }
                })}
            {if e.needs_review && !pending {
                view! {
                    <ActionForm action=review attr:class="review mt-2 flex flex-wrap items-end gap-2">
                        <input type="hidden" name="id" value=id.to_string() />
                        <div class="grow">
                            <label for=format!("note-{id}") class="block text-xs">
                                "Post-incident review (at least 20 characters)"
                            </label>
                            <input
                                id=format!("note-{id}")
                                name="note"
                                required
                                minlength="20"
                                class="w-full rounded border border-slate-300 px-2 py-1"
                            />
                        </div>
                        <button type="submit" class="rounded-md border border-slate-300 px-3 py-1">
                            "Record review"
                        </button>
                    </ActionForm>
                }
                    .into_any()
            } else {
                ().into_any()
            }}
            {if pending && !e.can_decide {
                ().into_any()
            } else if pending {
                view! {
                    <ActionForm action=decide attr:class="mt-2 flex flex-wrap items-end gap-2">
                        <input type="hidden" name="id" value=id.to_string() />
                        <div>
                            <label for=format!("code-{id}") class="block text-xs">
                                "Authenticator code"
                            </label>
                            <input
                                id=format!("code-{id}")
                                name="code"
                                inputmode="numeric"
                                autocomplete="one-time-code"
                                class="w-28 rounded border border-slate-300 px-2 py-1"
                            />
                            <PasskeyStepUp
                                id=format!("approve-passkey-{id}")
                                purpose="decide elevation"
                                label="Approve with a passkey"
                                submit="button.approve"
                            />
                        </div>
                        <div>
                            <label for=format!("reason-{id}") class="block text-xs">
                                "Reason (to deny)"
                            </label>
                            <input
                                id=format!("reason-{id}")
                                name="reason"
                                class="rounded border border-slate-300 px-2 py-1"
                            />
                        </div>
                        <button
                            type="submit"
                            name="decision"
                            value="approve"
                            class="approve rounded-md bg-green-700 px-3 py-1 font-semibold text-white"
                        >
                            "Approve"
                        </button>
                        <button
                            type="submit"
                            name="decision"
                            value="deny"
                            class="deny rounded-md border border-red-300 px-3 py-1 text-red-800"
                        >
                            "Deny"
                        </button>
                    </ActionForm>
                }
                    .into_any()
            } else if e.ends_in_ms.is_none() && e.state != RequestState::Approved {
                ().into_any()
            } else {
                view! {
                    <ActionForm action=revoke attr:class="mt-2 flex flex-wrap items-end gap-2">
                        <input type="hidden" name="id" value=id.to_string() />
                        <div>
                            <label for=format!("rcode-{id}") class="block text-xs">
                                "Authenticator code"
                            </label>
                            <input
                                id=format!("rcode-{id}")
                                name="code"
                                inputmode="numeric"
                                autocomplete="one-time-code"
                                class="w-28 rounded border border-slate-300 px-2 py-1"
                            />
                            <PasskeyStepUp id=format!("revoke-passkey-{id}") purpose="revoke elevation" />
                        </div>
                        <div>
                            <label for=format!("rreason-{id}") class="block text-xs">
                                "Reason"
                            </label>
                            <input
                                id=format!("rreason-{id}")
                                name="reason"
                                required
                                class="rounded border border-slate-300 px-2 py-1"
                            />
                        </div>
                        <button type="submit" class="rounded-md border border-red-300 px-3 py-1 text-red-800">
                            "Revoke now"
                        </button>
                    </ActionForm>
                }
                    .into_any()
            }}
        </li>
    }
}
