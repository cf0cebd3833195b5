//! The frame around every page: the header with its navigation, and the
//! signed-in employee's profile, loaded once per page and shared.

use super::class;
use crate::api::{SignOut, SignOutEverywhere};
use crate::domain::permissions::Permission;
use crate::dto::Profile;
use crate::errors::AppError;
use leptos::prelude::*;
use leptos_router::{components::A, hooks::use_location};

/// The signed-in employee's profile (`None` when signed out), loaded by the
/// frame on every navigation and shared with the page through context.
#[derive(Clone, Copy)]
pub struct Me(pub Resource<Result<Option<Profile>, AppError>>);

/// The profile the frame loaded for this page.
pub fn use_me() -> Resource<Result<Option<Profile>, AppError>> {
    match use_context::<Me>() {
        Some(Me(me)) => me,
        // Outside the frame (never in the app): load it here.
        None => Resource::new(|| (), |_| crate::api::me()),
    }
}

/// The frame around every page: header with navigation and the user menu
/// when signed in.
#[component]
pub fn Shell(children: Children) -> impl IntoView {
    let location = use_location();
    // Refetched on every navigation, so the header follows sign-in and sign-out.
    let me = Resource::new(move || location.pathname.get(), |_| crate::api::me());
    provide_context(Me(me));
    // Owned here, not by the header's menu: signing out navigates to
    // /signin, which re-renders the header (the menu goes away) before the
    // action records its result; an action owned by the menu would then be
    // written after it was disposed, and the page would panic.
    let sign_out = ServerAction::<SignOut>::new();
    let everywhere = ServerAction::<SignOutEverywhere>::new();
    view! {
        <a
            href="#main"
            class="sr-only focus:not-sr-only focus:absolute focus:m-2 focus:rounded focus:bg-white focus:p-2"
        >
            "Skip to content"
        </a>
        <header class="border-b border-slate-200 bg-white">
            <div class="mx-auto flex max-w-5xl items-center justify-between gap-4 px-4 py-3">
                <a href="/" class="flex shrink-0 items-center gap-2 text-lg font-semibold text-slate-900">
                    <span aria-hidden="true" class="inline-block h-6 w-6 rounded bg-indigo-600"></span>
                    "Gatehouse"
                </a>
                <Transition fallback=|| ()>
                    {move || Suspend::new(async move {
                        match me.await {
                            Ok(Some(me)) => view! { <SignedInNav me sign_out everywhere /> }.into_any(),
                            _ => ().into_any(),
                        }
                    })}
                </Transition>
            </div>
        </header>
        <main id="main" class="mx-auto max-w-5xl px-4 py-8">
            {children()}
        </main>
    }
}

/// A link of the header or of one of its menus.
struct Link {
    href: &'static str,
    label: &'static str,
    /// Shown to holders of any of these; to everyone when empty.
    needs: &'static [Permission],
}

const fn link(href: &'static str, label: &'static str, needs: &'static [Permission]) -> Link {
    Link { href, label, needs }
}

const MANAGE: &[Permission] = &[Permission::EmployeesManage];
const GRANT: &[Permission] = &[Permission::AccessGrant];
const ROLES: &[Permission] = &[Permission::AccessGrant, Permission::EmployeesManage];
const AUDIT: &[Permission] = &[Permission::AuditRead];

/// The administration screens, under one menu.
const ADMINISTRATION: &[Link] = &[
    link("/admin", "Overview of access", MANAGE),
    link("/employees", "Employees", MANAGE),
    link("/roles", "Roles", ROLES),
    link("/service-accounts", "Service accounts", GRANT),
    link("/targets", "Database targets", GRANT),
    link("/reviews/campaigns", "Access reviews", GRANT),
];

/// The auditors' screens.
const AUDIT_TRAIL: &[Link] = &[
    link("/audit", "Audit trail", AUDIT),
    link("/audit/reports", "Reports", AUDIT),
    link("/audit/elevations", "Elevations and tickets", AUDIT),
    link("/reviews/campaigns", "Access reviews", AUDIT),
];

/// The signed-in employee's own pages, in the menu under their name.
const ACCOUNT: &[Link] = &[
    link("/access", "My access", &[]),
    link("/activity", "Sign-in activity", &[]),
    link("/security", "Security", &[]),
];

fn allowed(me: &Profile, links: &'static [Link]) -> Vec<&'static Link> {
    links
        .iter()
        .filter(|l| l.needs.is_empty() || l.needs.iter().any(|p| me.can(*p)))
        .collect()
}

#[component]
fn SignedInNav(
    me: Profile,
    sign_out: ServerAction<SignOut>,
    everywhere: ServerAction<SignOutEverywhere>,
) -> impl IntoView {
    let administration = allowed(&me, ADMINISTRATION);
    let audit = allowed(&me, AUDIT_TRAIL);
    view! {
        <nav aria-label="Main" class="flex items-center gap-1 whitespace-nowrap text-sm">
            <A href="/" attr:class=class::NAV_LINK>
                "Overview"
            </A>
            <A href="/requests" attr:class=class::NAV_LINK>
                "Requests"
            </A>
            <A href="/reviews" attr:class=class::NAV_LINK>
                "Reviews"
            </A>
            {(!administration.is_empty())
                .then(|| {
                    view! {
                        <NavMenu id="admin-menu" label="Administration".to_owned()>
                            <MenuLinks links=administration />
                        </NavMenu>
                    }
                })}
            {(!audit.is_empty())
                .then(|| {
                    view! {
                        <NavMenu id="audit-menu" label="Audit".to_owned()>
                            <MenuLinks links=audit />
                        </NavMenu>
                    }
                })}
            <A href="/notifications" attr:class=class::NAV_LINK>
                "Notifications"
                {(me.unread > 0)
                    .then(|| {
                        view! {
                            " "
                            <span
                                id="unread-badge"
                                class="rounded-full bg-red-600 px-2 py-0.5 text-xs font-semibold text-white"
                            >
                                {me.unread}
                                <span class="sr-only">" unread"</span>
                            </span>
                        }
                    })}
            </A>
            <NavMenu id="user-menu" label=me.name.clone() button_id="user-menu-button" round=true>
                <p class="px-3 py-1 text-xs text-slate-500">{me.email.clone()}</p>
                <MenuLinks links=ACCOUNT.iter().collect() />
                <ActionForm action=sign_out>
                    <button type="submit" class="w-full rounded px-3 py-2 text-left hover:bg-slate-100">
                        "Sign out"
                    </button>
                </ActionForm>
                <ActionForm action=everywhere>
                    <button type="submit" class="w-full rounded px-3 py-2 text-left hover:bg-slate-100">
                        "Sign out everywhere"
                    </button>
                </ActionForm>
            </NavMenu>
        </nav>
    }
}

#[component]
fn MenuLinks(links: Vec<&'static Link>) -> impl IntoView {
    links
        .into_iter()
        .map(|l| {
            view! {
                <A href=l.href attr:class=class::NAV_LINK>
                    {l.label}
                </A>
            }
        })
        .collect_view()
}

/// A menu of the header: a button that shows and hides its panel
/// (the disclosure pattern). Enter or Space opens it, Tab walks through
/// its links, Escape closes it and returns to the button, and it closes
/// when a link in it is followed or focus leaves it.
#[component]
fn NavMenu(
    id: &'static str,
    label: String,
    #[prop(default = "")] button_id: &'static str,
    #[prop(default = false)] round: bool,
    children: Children,
) -> impl IntoView {
    let open = RwSignal::new(false);
    let button = NodeRef::<leptos::html::Button>::new();
    let container = NodeRef::<leptos::html::Div>::new();
    let button_id = if button_id.is_empty() {
        format!("{id}-button")
    } else {
        button_id.to_owned()
    };
    let button_class = if round {
        "rounded-full border border-slate-300 px-3 py-1.5 hover:bg-slate-100 focus:outline-none focus:ring-2 \
         focus:ring-indigo-500"
    } else {
        "rounded px-3 py-2 hover:bg-slate-100 focus:outline-none focus:ring-2 focus:ring-indigo-500"
    };
    let close_and_focus = move || {
        open.set(false);
        if let Some(b) = button.get() {
            let _ = b.focus();
        }
    };
    view! {
        <div
            class="relative"
            node_ref=container
            on:keydown=move |ev| {
                if ev.key() == "Escape" && open.get_untracked() {
                    ev.prevent_default();
                    close_and_focus();
                }
            }
            on:focusout=move |ev| {
                // Also fired while the menu is being removed (signing out
                // re-renders the header), when its reactive values are gone:
                // read them with try_, which answers None then.
                let Some(container) = container.try_get_untracked() else {
                    return;
                };
                let inside = ev
                    .related_target()
                    .and_then(|t| leptos::wasm_bindgen::JsCast::dyn_into::<leptos::web_sys::Node>(t).ok())
                    .zip(container)
                    .is_some_and(|(t, c)| c.contains(Some(&t)));
                if !inside {
                    let _ = open.try_set(false);
                }
            }
        >
            <button
                type="button"
                id=button_id
                node_ref=button
                class=button_class
                aria-haspopup="true"
                aria-expanded=move || if open.get() { "true" } else { "false" }
                aria-controls=id
                on:click=move |_| open.update(|o| *o = !*o)
            >
                {label}
                <span aria-hidden="true" class="ml-1 text-xs text-slate-500">
                    "▾"
                </span>
            </button>
            <div
                id=id
                class="absolute right-0 z-10 mt-2 w-64 rounded-md border border-slate-200 bg-white p-2 shadow-lg"
                hidden=move || !open.get()
                on:click=move |ev| {
                    let on_link = ev
                        .target()
                        .and_then(|t| leptos::wasm_bindgen::JsCast::dyn_into::<leptos::web_sys::Element>(t).ok())
                        .and_then(|e| e.closest("a").ok().flatten())
                        .is_some();
                    if on_link {
                        open.set(false);
                    }
                }
            >
                {children()}
            </div>
        </div>
    }
}
