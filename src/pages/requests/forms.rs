//! Asking for a role for a while, and the employee's own requests.

use super::{line, Countdown};
use crate::api::{CancelElevation, RequestElevation};
use crate::components::class::{BUTTON, CARD, INPUT, SMALL_BUTTON};
use crate::components::{FormError, LoadError};
use crate::dto::{ElevationView, RequestState, RoleInfo};
use crate::errors::AppError;
use leptos::prelude::*;

/// The request form.
#[component]
pub(super) fn AskForm(
    ask: ServerAction<RequestElevation>,
    roles: Resource<Result<Vec<RoleInfo>, AppError>>,
) -> impl IntoView {
    view! {
        <section class=CARD aria-labelledby="ask-h">
            <h2 id="ask-h" class="mb-2 font-semibold">
                "Request a role for a while"
            </h2>
            <p class="mb-4 text-sm text-slate-600">
                "Someone else approves it; it ends by itself. Without a start time the clock starts at approval."
            </p>
            <FormError action=ask />
            {move || {
                ask.value()
                    .get()
                    .and_then(|r| r.ok())
                    .map(|id| {
                        view! {
                            <p role="status" class="form-ok mb-4 text-sm text-green-800">
                                "Request "
                                {id}
                                " sent for approval."
                            </p>
                        }
                    })
            }}
            <ActionForm action=ask>
                <div class="grid gap-x-4 sm:grid-cols-2">
                    <div class="mb-4">
                        <label for="req-role" class="mb-1 block text-sm font-medium text-slate-700">
                            "Role"
                        </label>
                        <Suspense fallback=|| ()>
                            {move || Suspend::new(async move {
                                let list = roles.await.unwrap_or_default();
                                view! {
                                    <select id="req-role" name="role" class=INPUT>
                                        {list
                                            .into_iter()
                                            .map(|r| {
                                                view! {
                                                    <option value=r
                                                        .key
                                                        .clone()>
                                                        {format!(
                                                            "{} (at most {}): {}",
                                                            r.name,
                                                            r.max_duration.clone().unwrap_or_default(),
                                                            r.permissions.join(", "),
                                                        )}
                                                    </option>
                                                }
                                            })
                                            .collect_view()}
                                    </select>
                                }
                            })}
                        </Suspense>
                    </div>
                    <div class="mb-4">
                        <label for="req-duration" class="mb-1 block text-sm font-medium text-slate-700">
                            "Duration"
                        </label>
                        <input id="req-duration" name="duration" class=INPUT placeholder="1h (default), e.g. 30m, 4h" />
                    </div>
                    <div class="mb-4">
                        <label for="req-ticket" class="mb-1 block text-sm font-medium text-slate-700">
                            "Ticket"
                        </label>
                        <input id="req-ticket" name="ticket" required class=INPUT placeholder="SUP-1234" />
                    </div>
                    <div class="mb-4">
                        <label for="req-start" class="mb-1 block text-sm font-medium text-slate-700">
                            "Start (UTC, optional, within 7 days)"
                        </label>
                        <input id="req-start" name="starts_at" type="datetime-local" class=INPUT />
                    </div>
                </div>
                <div class="mb-4">
                    <label for="req-why" class="mb-1 block text-sm font-medium text-slate-700">
                        "Justification (at least 20 characters)"
                    </label>
                    <textarea id="req-why" name="justification" required minlength="20" rows="2" class=INPUT></textarea>
                </div>
                <div class="mb-4">
                    <label for="req-customers" class="mb-1 block text-sm font-medium text-slate-700">
                        "Only these customers (optional)"
                    </label>
                    <input
                        id="req-customers"
                        name="customers"
                        class=INPUT
                        placeholder="1042, 1043"
                        aria-describedby="req-customers-help"
                    />
                    <p id="req-customers-help" class="mt-1 text-xs text-slate-500">
                        "Customer ids separated by commas. The access then holds for these customers only; leave empty for all."
                    </p>
                </div>
                <button type="submit" class=BUTTON disabled=move || ask.pending().get()>
                    "Send request"
                </button>
            </ActionForm>
        </section>
    }
}

/// The employee's requests, with a countdown while one is active.
#[component]
pub(super) fn MyRequests(
    mine: Resource<Result<Vec<ElevationView>, AppError>>,
    cancel: ServerAction<CancelElevation>,
    extend: ServerAction<RequestElevation>,
) -> impl IntoView {
    view! {
        <section class=CARD aria-labelledby="mine-h">
            <h2 id="mine-h" class="mb-2 font-semibold">
                "My requests"
            </h2>
            <FormError action=cancel />
            <FormError action=extend />
            {move || {
                extend
                    .value()
                    .get()
                    .and_then(|r| r.ok())
                    .map(|id| {
                        view! {
                            <p role="status" class="form-ok mb-2 text-sm text-green-800">
                                "Extension request "
                                {id}
                                " sent for approval."
                            </p>
                        }
                    })
            }}
            <Transition fallback=|| ()>
                {move || Suspend::new(async move {
                    match mine.await {
                        Ok(list) if list.is_empty() => {
                            view! { <p class="text-sm text-slate-600">"None yet."</p> }.into_any()
                        }
                        Ok(list) => {
                            view! {
                                <ul id="my-requests" class="divide-y divide-slate-100 text-sm">
                                    {list
                                        .into_iter()
                                        .map(|e| {
                                            let id = e.id;
                                            let can_cancel = e.state == RequestState::Pending
                                                || (e.state == RequestState::Approved && e.ends_in_ms.is_none());
                                            view! {
                                                <li
                                                    class="flex flex-wrap items-center justify-between gap-2 py-2"
                                                    data-request=id.to_string()
                                                    data-state=e.state.as_str()
                                                >
                                                    <span>
                                                        <span class="font-medium">{e.state.as_str()}</span>
                                                        " · "
                                                        {line(&e)}
                                                        {e
                                                            .decision_reason
                                                            .clone()
                                                            .map(|r| {
                                                                view! {
                                                                    <span class="block text-xs text-slate-500">{r}</span>
                                                                }
                                                            })}
                                                    </span>
                                                    {e.ends_in_ms.map(|ms| view! { <Countdown ms /> })}
                                                    {e
                                                        .extendable
                                                        .then(|| {
                                                            view! {
                                                                <details class="w-full">
                                                                    <summary class="cursor-pointer text-indigo-700">
                                                                        "Extend (once, approved again)"
                                                                    </summary>
                                                                    <ActionForm
                                                                        action=extend
                                                                        attr:class="extend mt-2 grid gap-2 sm:grid-cols-4"
                                                                    >
                                                                        <input type="hidden" name="extends" value=id.to_string() />
                                                                        <input type="hidden" name="role" value=e.role.clone() />
                                                                        <input
                                                                            type="hidden"
                                                                            name="customers"
                                                                            value=e.customers.join(",")
                                                                        />
                                                                        <div>
                                                                            <label for=format!("ext-d-{id}") class="block text-xs">
                                                                                "For"
                                                                            </label>
                                                                            <input
                                                                                id=format!("ext-d-{id}")
                                                                                name="duration"
                                                                                placeholder="1h"
                                                                                class="w-full rounded border border-slate-300 px-2 py-1"
                                                                            />
                                                                        </div>
                                                                        <div>
                                                                            <label for=format!("ext-t-{id}") class="block text-xs">
                                                                                "Ticket"
                                                                            </label>
                                                                            <input
                                                                                id=format!("ext-t-{id}")
                                                                                name="ticket"
                                                                                value=e.ticket.clone()
                                                                                required
                                                                                class="w-full rounded border border-slate-300 px-2 py-1"
                                                                            />
                                                                        </div>
                                                                        <div class="sm:col-span-2">
                                                                            <label for=format!("ext-j-{id}") class="block text-xs">
                                                                                "Why more time is needed"
                                                                            </label>
                                                                            <input
                                                                                id=format!("ext-j-{id}")
                                                                                name="justification"
                                                                                required
                                                                                minlength="20"
                                                                                class="w-full rounded border border-slate-300 px-2 py-1"
                                                                            />
                                                                        </div>
                                                                        <button
                                                                            type="submit"
                                                                            class=SMALL_BUTTON
                                                                        >
                                                                            "Ask to extend"
                                                                        </button>
                                                                    </ActionForm>
                                                                </details>
                                                            }
                                                        })}
                                                    {can_cancel
                                                        .then(|| {
                                                            view! {
                                                                <ActionForm action=cancel>
                                                                    <input type="hidden" name="id" value=id.to_string() />
                                                                    <button
                                                                        type="submit"
                                                                        class=SMALL_BUTTON
                                                                    >
                                                                        "Cancel"
                                                                    </button>
                                                                </ActionForm>
                                                            }
                                                        })}
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
            </Transition>
        </section>
    }
}
