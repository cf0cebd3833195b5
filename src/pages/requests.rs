//! Just-in-time elevation: ask for a requestable role, see your requests
//! with a live countdown, and (for approvers) decide on other people's.

use crate::api::{BreakGlass, CancelElevation, DecideElevation, RequestElevation, ReviewBreakglass, RevokeElevation};
use crate::components::class::{BUTTON, CARD, INPUT};
use crate::components::use_me;
use crate::components::{FormError, LoadError};
use crate::domain::permissions::Permission;
use crate::dto::{ElevationKind, ElevationView, RequestState};
use leptos::prelude::*;

/// Time left, counting down every second in the browser.
#[component]
fn Countdown(ms: i64) -> impl IntoView {
    let left = RwSignal::new(ms.max(0));
    Effect::new(move |_| {
        let _ = set_interval_with_handle(
            move || left.update(|l| *l = (*l - 1000).max(0)),
            std::time::Duration::from_secs(1),
        );
    });
    let text = move || {
        let s = left.get() / 1000;
        if s == 0 {
            "ended".to_owned()
        } else {
            format!("{}:{:02}:{:02} left", s / 3600, (s / 60) % 60, s % 60)
        }
    };
    view! { <span class="countdown font-mono text-green-800" role="timer" aria-live="off">{text}</span> }
}

fn line(e: &ElevationView) -> String {
    let mut s = if e.kind == ElevationKind::Breakglass {
        format!(
            "{} (break-glass) for {} · activated {}",
            e.role_name, e.duration, e.requested_at
        )
    } else {
        format!(
            "{} for {} · {} · requested {}",
            e.role_name, e.duration, e.ticket, e.requested_at
        )
    };
    if let (Some(a), Some(b)) = (&e.starts_at, &e.ends_at) {
        s.push_str(&format!(" · {a} to {b}"));
    }
    if !e.customers.is_empty() {
        s.push_str(&format!(" · only customers {}", e.customers.join(", ")));
    }
    if let Some(x) = e.extends {
        s.push_str(&format!(" · extends request {x}"));
    }
    s
}

#[component]
pub fn RequestsPage() -> impl IntoView {
    let ask = ServerAction::<RequestElevation>::new();
    let cancel = ServerAction::<CancelElevation>::new();
    let decide = ServerAction::<DecideElevation>::new();
    let revoke = ServerAction::<RevokeElevation>::new();
    let extend = ServerAction::<RequestElevation>::new();
    let glass = ServerAction::<BreakGlass>::new();
    let review = ServerAction::<ReviewBreakglass>::new();
    let version = move || {
        ask.version().get()
            + cancel.version().get()
            + decide.version().get()
            + revoke.version().get()
            + extend.version().get()
            + glass.version().get()
            + review.version().get()
    };
    let me = use_me();
    let roles = Resource::new(|| (), |_| crate::api::requestable_roles());
    let mine = Resource::new(version, |_| crate::api::my_elevations());
    // Only approvers ask for the queue (anyone else would be refused, and
    // the refusal recorded, on every visit).
    let queue = Resource::new(version, move |_| async move {
        match me.await {
            Ok(Some(m)) if m.can(Permission::RequestsApprove) || m.named_approver => {
                crate::api::elevation_queue().await
            }
            _ => Ok(Vec::new()),
        }
    });
    view! {
        <h1 class="mb-4 text-2xl font-semibold">"Elevated access"</h1>
        <section class=CARD aria-labelledby="ask-h">
            <h2 id="ask-h" class="mb-2 font-semibold">"Request a role for a while"</h2>
            <p class="mb-4 text-sm text-slate-600">"Someone else approves it; it ends by itself. Without a start time the clock starts at approval."</p>
            <FormError action=ask/>
            {move || ask.value().get().and_then(|r| r.ok()).map(|id| view! { <p role="status" class="form-ok mb-4 text-sm text-green-800">"Request " {id} " sent for approval."</p> })}
            <ActionForm action=ask>
                <div class="grid gap-x-4 sm:grid-cols-2">
                    <div class="mb-4">
                        <label for="req-role" class="mb-1 block text-sm font-medium text-slate-700">"Role"</label>
                        <Suspense fallback=|| ()>
                            {move || Suspend::new(async move {
                                let list = roles.await.unwrap_or_default();
                                view! {
                                    <select id="req-role" name="role" class=INPUT>
                                        {list.into_iter().map(|r| view! { <option value=r.key.clone()>{format!("{} (at most {}): {}", r.name, r.max_duration.clone().unwrap_or_default(), r.permissions.join(", "))}</option> }).collect_view()}
                                    </select>
                                }
                            })}
                        </Suspense>
                    </div>
                    <div class="mb-4">
                        <label for="req-duration" class="mb-1 block text-sm font-medium text-slate-700">"Duration"</label>
                        <input id="req-duration" name="duration" class=INPUT placeholder="1h (default), e.g. 30m, 4h"/>
                    </div>
                    <div class="mb-4">
                        <label for="req-ticket" class="mb-1 block text-sm font-medium text-slate-700">"Ticket"</label>
                        <input id="req-ticket" name="ticket" required class=INPUT placeholder="SUP-1234"/>
                    </div>
                    <div class="mb-4">
                        <label for="req-start" class="mb-1 block text-sm font-medium text-slate-700">"Start (UTC, optional, within 7 days)"</label>
                        <input id="req-start" name="starts_at" type="datetime-local" class=INPUT/>
                    </div>
                </div>
                <div class="mb-4">
                    <label for="req-why" class="mb-1 block text-sm font-medium text-slate-700">"Justification (at least 20 characters)"</label>
                    <textarea id="req-why" name="justification" required minlength="20" rows="2" class=INPUT></textarea>
                </div>
                <div class="mb-4">
                    <label for="req-customers" class="mb-1 block text-sm font-medium text-slate-700">"Only these customers (optional)"</label>
                    <input id="req-customers" name="customers" class=INPUT placeholder="1042, 1043" aria-describedby="req-customers-help"/>
                    <p id="req-customers-help" class="mt-1 text-xs text-slate-500">"Customer ids separated by commas. The access then holds for these customers only; leave empty for all."</p>
                </div>
                <button type="submit" class=BUTTON disabled=move || ask.pending().get()>"Send request"</button>
            </ActionForm>
        </section>

        <section class=CARD aria-labelledby="mine-h">
            <h2 id="mine-h" class="mb-2 font-semibold">"My requests"</h2>
            <FormError action=cancel/>
            <FormError action=extend/>
            {move || extend.value().get().and_then(|r| r.ok()).map(|id| view! { <p role="status" class="form-ok mb-2 text-sm text-green-800">"Extension request " {id} " sent for approval."</p> })}
            <Transition fallback=|| ()>
                {move || Suspend::new(async move {
                    match mine.await {
                        Ok(list) if list.is_empty() => view! { <p class="text-sm text-slate-600">"None yet."</p> }.into_any(),
                        Ok(list) => view! {
                            <ul id="my-requests" class="divide-y divide-slate-100 text-sm">
                                {list.into_iter().map(|e| { let id = e.id; let can_cancel = e.state == RequestState::Pending || (e.state == RequestState::Approved && e.ends_in_ms.is_none()); view! {
                                    <li class="flex flex-wrap items-center justify-between gap-2 py-2" data-request=id.to_string() data-state=e.state.as_str()>
                                        <span><span class="font-medium">{e.state.as_str()}</span> " · " {line(&e)}
                                            {e.decision_reason.clone().map(|r| view! { <span class="block text-xs text-slate-500">{r}</span> })}</span>
                                        {e.ends_in_ms.map(|ms| view! { <Countdown ms/> })}
                                        {e.extendable.then(|| view! {
                                            <details class="w-full">
                                                <summary class="cursor-pointer text-indigo-700">"Extend (once, approved again)"</summary>
                                                <ActionForm action=extend attr:class="extend mt-2 grid gap-2 sm:grid-cols-4">
                                                    <input type="hidden" name="extends" value=id.to_string()/>
                                                    <input type="hidden" name="role" value=e.role.clone()/>
                                                    <input type="hidden" name="customers" value=e.customers.join(",")/>
                                                    <div><label for=format!("ext-d-{id}") class="block text-xs">"For"</label>
                                                        <input id=format!("ext-d-{id}") name="duration" placeholder="1h" class="w-full rounded border border-slate-300 px-2 py-1"/></div>
                                                    <div><label for=format!("ext-t-{id}") class="block text-xs">"Ticket"</label>
                                                        <input id=format!("ext-t-{id}") name="ticket" value=e.ticket.clone() required class="w-full rounded border border-slate-300 px-2 py-1"/></div>
                                                    <div class="sm:col-span-2"><label for=format!("ext-j-{id}") class="block text-xs">"Why more time is needed"</label>
                                                        <input id=format!("ext-j-{id}") name="justification" required minlength="20" class="w-full rounded border border-slate-300 px-2 py-1"/></div>
                                                    <button type="submit" class="rounded-md border border-slate-300 px-2 py-1 hover:bg-slate-100">"Ask to extend"</button>
                                                </ActionForm>
                                            </details>
                                        })}
                                        {can_cancel.then(|| view! {
                                            <ActionForm action=cancel>
                                                <input type="hidden" name="id" value=id.to_string()/>
                                                <button type="submit" class="rounded-md border border-slate-300 px-2 py-1 hover:bg-slate-100">"Cancel"</button>
                                            </ActionForm>
                                        })}
                                    </li>
                                }}).collect_view()}
                            </ul>
                        }.into_any(),
                        Err(e) => view! { <LoadError error=e/> }.into_any(),
                    }
                })}
            </Transition>
        </section>

        <Suspense fallback=|| ()>
        {move || Suspend::new(async move { me.await.ok().flatten().filter(|m| m.department == "engineering").map(|_| view! {
            <section class="mb-6 rounded-lg border border-red-200 bg-red-50 p-4" aria-labelledby="glass-h">
                <h2 id="glass-h" class="mb-2 font-semibold text-red-900">"Break glass (emergencies only)"</h2>
                <p class="mb-2 text-sm text-red-900">"Production and customer data at once, for at most 1 hour, without waiting for approval. Every administrator and auditor is alerted, and someone else must review it afterwards."</p>
                <FormError action=glass/>
                {move || glass.value().get().and_then(|r| r.ok()).map(|id| view! { <p role="status" class="form-ok mb-2 text-sm text-green-800">"Break-glass access " {id} " is active."</p> })}
                <ActionForm action=glass attr:class="grid gap-2 sm:grid-cols-4">
                    <div><label for="glass-duration" class="block text-xs">"For (at most 1h)"</label>
                        <input id="glass-duration" name="duration" placeholder="1h" class="w-full rounded border border-slate-300 px-2 py-1"/></div>
                    <div class="sm:col-span-2"><label for="glass-why" class="block text-xs">"What is broken (at least 20 characters)"</label>
                        <input id="glass-why" name="justification" required minlength="20" class="w-full rounded border border-slate-300 px-2 py-1"/></div>
                    <div><label for="glass-code" class="block text-xs">"Authenticator code"</label>
                        <input id="glass-code" name="code" required inputmode="numeric" autocomplete="one-time-code" class="w-full rounded border border-slate-300 px-2 py-1"/></div>
                    <button type="submit" class="rounded-md bg-red-700 px-3 py-2 text-sm font-semibold text-white hover:bg-red-800">"Break the glass"</button>
                </ActionForm>
            </section>
        })})}
        </Suspense>

        // Inside Suspense, so the server renders the same as the browser
        // hydrates (a bare `me.get()` renders nothing on the server).
        <Suspense fallback=|| ()>
        {move || Suspend::new(async move { me.await.ok().flatten().filter(|m| m.can(Permission::RequestsApprove) || m.named_approver).map(|_| view! {
            <section class=CARD aria-labelledby="queue-h">
                <h2 id="queue-h" class="mb-2 font-semibold">"Waiting for a decision, and active"</h2>
                <p class="mb-2 text-sm text-slate-600">"Approving, denying and revoking need your authenticator code when your last one is more than 5 minutes old."</p>
                <FormError action=decide/>
                <FormError action=revoke/>
                <FormError action=review/>
                <Transition fallback=|| ()>
                    {move || Suspend::new(async move {
                        match queue.await {
                            Ok(list) if list.is_empty() => view! { <p id="queue-empty" class="text-sm text-slate-600">"Nothing waiting."</p> }.into_any(),
                            Ok(list) => view! {
                                <ul id="queue" class="divide-y divide-slate-100 text-sm">
                                    {list.into_iter().map(|e| { let id = e.id; let pending = e.state == RequestState::Pending; view! {
                                        <li class="py-3" data-request=id.to_string() data-state=e.state.as_str()>
                                            <p><span class="font-medium">{e.requester.clone()}</span> " asks for " {line(&e)}</p>
                                            <p class="text-slate-600">"“" {e.justification.clone()} "”"</p>
                                            <p class="text-xs text-slate-500">"Holds now: " {if e.requester_roles.is_empty() { "nothing".to_owned() } else { e.requester_roles.join(", ") }}</p>
                                            <p class="text-xs text-slate-500">"Recent elevations: " {if e.recent.is_empty() { "none".to_owned() } else { e.recent.join(" · ") }}</p>
                                            {pending.then(|| view! { <p class="approvals text-xs text-slate-500">{format!("Approvals {} of {}", e.approvals, e.approvals_needed)}
                                                {(!e.approvers.is_empty()).then(|| format!(" · approvers: {}", e.approvers.join(", ")))}</p> })}
                                            {if e.needs_review && !pending { view! {
                                                <ActionForm action=review attr:class="review mt-2 flex flex-wrap items-end gap-2">
                                                    <input type="hidden" name="id" value=id.to_string()/>
                                                    <div class="grow"><label for=format!("note-{id}") class="block text-xs">"Post-incident review (at least 20 characters)"</label>
                                                        <input id=format!("note-{id}") name="note" required minlength="20" class="w-full rounded border border-slate-300 px-2 py-1"/></div>
                                                    <button type="submit" class="rounded-md border border-slate-300 px-3 py-1">"Record review"</button>
                                                </ActionForm>
                                            }.into_any() } else { ().into_any() }}
                                            {if pending && !e.can_decide { ().into_any() } else if pending { view! {
                                                <ActionForm action=decide attr:class="mt-2 flex flex-wrap items-end gap-2">
                                                    <input type="hidden" name="id" value=id.to_string()/>
                                                    <div><label for=format!("code-{id}") class="block text-xs">"Authenticator code"</label>
                                                        <input id=format!("code-{id}") name="code" inputmode="numeric" autocomplete="one-time-code" class="w-28 rounded border border-slate-300 px-2 py-1"/></div>
                                                    <div><label for=format!("reason-{id}") class="block text-xs">"Reason (to deny)"</label>
                                                        <input id=format!("reason-{id}") name="reason" class="rounded border border-slate-300 px-2 py-1"/></div>
                                                    <button type="submit" name="decision" value="approve" class="approve rounded-md bg-green-700 px-3 py-1 font-semibold text-white">"Approve"</button>
                                                    <button type="submit" name="decision" value="deny" class="deny rounded-md border border-red-300 px-3 py-1 text-red-800">"Deny"</button>
                                                </ActionForm>
                                            }.into_any() } else if e.ends_in_ms.is_none() && e.state != RequestState::Approved { ().into_any() } else { view! {
                                                <ActionForm action=revoke attr:class="mt-2 flex flex-wrap items-end gap-2">
                                                    <input type="hidden" name="id" value=id.to_string()/>
                                                    <div><label for=format!("rcode-{id}") class="block text-xs">"Authenticator code"</label>
                                                        <input id=format!("rcode-{id}") name="code" inputmode="numeric" autocomplete="one-time-code" class="w-28 rounded border border-slate-300 px-2 py-1"/></div>
                                                    <div><label for=format!("rreason-{id}") class="block text-xs">"Reason"</label>
                                                        <input id=format!("rreason-{id}") name="reason" required class="rounded border border-slate-300 px-2 py-1"/></div>
                                                    <button type="submit" class="rounded-md border border-red-300 px-3 py-1 text-red-800">"Revoke now"</button>
                                                </ActionForm>
                                            }.into_any() }}
                                        </li>
                                    }}).collect_view()}
                                </ul>
                            }.into_any(),
                            Err(e) => view! { <LoadError error=e/> }.into_any(),
                        }
                    })}
                </Transition>
            </section>
        })})}
        </Suspense>
    }
}

/// The signed-in employee's notifications about requests, newest first.
#[component]
pub fn NotificationsPage() -> impl IntoView {
    let read = ServerAction::<crate::api::MarkNotificationsRead>::new();
    let list = Resource::new(move || read.version().get(), |_| crate::api::my_notifications());
    view! {
        <h1 class="mb-4 text-2xl font-semibold">"Notifications"</h1>
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match list.await {
                    Ok(l) if l.is_empty() => view! { <p id="no-notifications" class="text-sm text-slate-600">"Nothing yet."</p> }.into_any(),
                    Ok(l) => { let any_unread = l.iter().any(|n| n.unread); view! {
                        {any_unread.then(|| view! {
                            <ActionForm action=read attr:class="mb-4">
                                <button type="submit" class=BUTTON>"Mark all as read"</button>
                            </ActionForm>
                        })}
                        <ul id="notifications" class="divide-y divide-slate-100 rounded-lg border border-slate-200 bg-white text-sm">
                            {l.into_iter().map(|n| view! {
                                <li class="flex flex-wrap items-baseline justify-between gap-2 px-4 py-3" data-unread=n.unread.to_string()>
                                    <a class="text-indigo-700 underline" class:font-semibold=n.unread href=n.link.clone()>{n.subject.clone()}</a>
                                    <span class="text-xs text-slate-500">{n.at.clone()}</span>
                                </li>
                            }).collect_view()}
                        </ul>
                    }.into_any() }
                    Err(e) => view! { <LoadError error=e/> }.into_any(),
                }
            })}
        </Transition>
    }
}
