//! Just-in-time elevation: ask for a requestable role, see your requests
//! with a live countdown, and (for approvers) decide on other people's.

mod approvals;
mod forms;

use approvals::{ApprovalQueue, BreakGlassPanel};
use forms::{AskForm, MyRequests};

use crate::api::{BreakGlass, CancelElevation, DecideElevation, RequestElevation, ReviewBreakglass, RevokeElevation};
use crate::components::class::BUTTON;
use crate::components::{use_me, LoadError};
use crate::domain::permissions::Permission;
use crate::dto::{ElevationKind, ElevationView};
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
    view! {
        <span class="countdown font-mono text-green-800" role="timer" aria-live="off">
            {text}
        </span>
    }
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
        <AskForm ask=ask roles=roles />
        <MyRequests mine=mine cancel=cancel extend=extend />
        <BreakGlassPanel glass=glass me=me />
        <ApprovalQueue queue=queue decide=decide revoke=revoke review=review me=me />
    }
}

/// The signed-in employee's notifications about requests, newest first.
#[component]
pub fn NotificationsPage() -> impl IntoView {
    let read = ServerAction::<crate::api::MarkNotificationsRead>::new();
    let list = Resource::new(move || read.version().get(), |_| crate::api::my_notifications());
    view! {
        <h1 class="mb-4 text-2xl font-semibold">"Notifications"</h1>
        <Transition fallback=|| {
            view! { <p>"Loading…"</p> }
        }>
            {move || Suspend::new(async move {
                match list.await {
                    Ok(l) if l.is_empty() => {
                        view! {
                            <p id="no-notifications" class="text-sm text-slate-600">
                                "Nothing yet."
                            </p>
                        }
                            .into_any()
                    }
                    Ok(l) => {
                        let any_unread = l.iter().any(|n| n.unread);
                        view! {
                            {any_unread
                                .then(|| {
                                    view! {
                                        <ActionForm action=read attr:class="mb-4">
                                            <button type="submit" class=BUTTON>
                                                "Mark all as read"
                                            </button>
                                        </ActionForm>
                                    }
                                })}
                            <ul
                                id="notifications"
                                class="divide-y divide-slate-100 rounded-lg border border-slate-200 bg-white text-sm"
                            >
                                {l
                                    .into_iter()
                                    .map(|n| {
                                        view! {
                                            <li
                                                class="flex flex-wrap items-baseline justify-between gap-2 px-4 py-3"
                                                data-unread=n.unread.to_string()
                                            >
                                                <a
                                                    class="text-indigo-700 underline"
                                                    class:font-semibold=n.unread
                                                    href=n.link.clone()
                                                >
                                                    {n.subject.clone()}
                                                </a>
                                                <span class="text-xs text-slate-500">{n.at.clone()}</span>
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
    }
}
