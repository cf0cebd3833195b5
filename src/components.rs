//! Reusable UI pieces.

use crate::api::{Profile, SignOut, SignOutEverywhere};
use crate::errors::AppError;
use leptos::prelude::*;
use leptos_router::{components::A, hooks::use_location};

/// The frame around every page: header with navigation and the user menu
/// when signed in.
#[component]
pub fn Shell(children: Children) -> impl IntoView {
    let location = use_location();
    // Refetched on every navigation, so the header follows sign-in and sign-out.
    let me = Resource::new(move || location.pathname.get(), |_| crate::api::me());
    view! {
        <a href="#main" class="sr-only focus:not-sr-only focus:absolute focus:m-2 focus:rounded focus:bg-white focus:p-2">
            "Skip to content"
        </a>
        <header class="border-b border-slate-200 bg-white">
            <div class="mx-auto flex max-w-5xl items-center justify-between gap-4 px-4 py-3">
                <a href="/" class="flex items-center gap-2 text-lg font-semibold text-slate-900">
                    <span aria-hidden="true" class="inline-block h-6 w-6 rounded bg-indigo-600"></span>
                    "Gatehouse"
                </a>
                <Transition fallback=|| ()>
                    {move || Suspend::new(async move {
                        match me.await {
                            Ok(Some(me)) => view! { <SignedInNav me/> }.into_any(),
                            _ => ().into_any(),
                        }
                    })}
                </Transition>
            </div>
        </header>
        <main id="main" class="mx-auto max-w-5xl px-4 py-8">{children()}</main>
    }
}

#[component]
fn SignedInNav(me: Profile) -> impl IntoView {
    let open = RwSignal::new(false);
    let sign_out = ServerAction::<SignOut>::new();
    let everywhere = ServerAction::<SignOutEverywhere>::new();
    view! {
        <nav aria-label="Main" class="flex items-center gap-1 text-sm">
            <A href="/" attr:class="rounded px-3 py-2 hover:bg-slate-100 aria-[current=page]:font-semibold">"Overview"</A>
            <A href="/activity" attr:class="rounded px-3 py-2 hover:bg-slate-100 aria-[current=page]:font-semibold">"Sign-in activity"</A>
            <A href="/access" attr:class="rounded px-3 py-2 hover:bg-slate-100 aria-[current=page]:font-semibold">"My access"</A>
            <A href="/requests" attr:class="rounded px-3 py-2 hover:bg-slate-100 aria-[current=page]:font-semibold">"Requests"</A>
            {me.can("employees:manage").then(|| view! {
                <A href="/admin" attr:class="rounded px-3 py-2 hover:bg-slate-100 aria-[current=page]:font-semibold">"Administration"</A>
                <A href="/employees" attr:class="rounded px-3 py-2 hover:bg-slate-100 aria-[current=page]:font-semibold">"Employees"</A>
            })}
            {(me.can("access:grant") || me.can("employees:manage")).then(|| view! {
                <A href="/roles" attr:class="rounded px-3 py-2 hover:bg-slate-100 aria-[current=page]:font-semibold">"Roles"</A>
            })}
            {me.can("audit:read").then(|| view! {
                <A href="/audit" attr:class="rounded px-3 py-2 hover:bg-slate-100 aria-[current=page]:font-semibold">"Audit trail"</A>
            })}
            {me.can("access:grant").then(|| view! {
                <A href="/service-accounts" attr:class="rounded px-3 py-2 hover:bg-slate-100 aria-[current=page]:font-semibold">"Services"</A>
            })}
            <A href="/security" attr:class="rounded px-3 py-2 hover:bg-slate-100 aria-[current=page]:font-semibold">"Security"</A>
            <A href="/notifications" attr:class="rounded px-3 py-2 hover:bg-slate-100 aria-[current=page]:font-semibold">
                "Notifications"
                {(me.unread > 0).then(|| view! {
                    " " <span id="unread-badge" class="rounded-full bg-red-600 px-2 py-0.5 text-xs font-semibold text-white">{me.unread}<span class="sr-only">" unread"</span></span>
                })}
            </A>
            <div class="relative ml-2">
                <button
                    type="button"
                    id="user-menu-button"
                    class="rounded-full border border-slate-300 px-3 py-1.5 hover:bg-slate-100 focus:outline-none focus:ring-2 focus:ring-indigo-500"
                    aria-haspopup="true"
                    aria-expanded=move || if open.get() { "true" } else { "false" }
                    aria-controls="user-menu"
                    on:click=move |_| open.update(|o| *o = !*o)
                >
                    {me.name.clone()}
                </button>
                <div
                    id="user-menu"
                    class="absolute right-0 z-10 mt-2 w-64 rounded-md border border-slate-200 bg-white p-2 shadow-lg"
                    hidden=move || !open.get()
                >
                    <p class="px-2 py-1 text-xs text-slate-500">{me.email.clone()}</p>
                    <ActionForm action=sign_out>
                        <button type="submit" class="w-full rounded px-2 py-2 text-left hover:bg-slate-100">"Sign out"</button>
                    </ActionForm>
                    <ActionForm action=everywhere>
                        <button type="submit" class="w-full rounded px-2 py-2 text-left hover:bg-slate-100">
                            "Sign out everywhere"
                        </button>
                    </ActionForm>
                </div>
            </div>
        </nav>
    }
}

/// The error of the last submission of a form, announced to screen readers.
#[component]
pub fn FormError<A>(action: ServerAction<A>) -> impl IntoView
where
    A: leptos::server_fn::ServerFn<Error = AppError> + Clone + Send + Sync + 'static,
    A::Output: Send + Sync + 'static,
{
    move || {
        action.value().with(|v| v.as_ref().and_then(|r| r.as_ref().err().cloned())).map(|e| {
            view! {
                <p role="alert" class="form-error mb-4 rounded-md border border-red-200 bg-red-50 px-3 py-2 text-sm text-red-800">
                    {e.to_string()}
                </p>
            }
        })
    }
}

/// A labelled input.
#[component]
pub fn Field(
    label: &'static str,
    name: &'static str,
    #[prop(default = "text")] kind: &'static str,
    #[prop(default = "")] autocomplete: &'static str,
    #[prop(optional)] hint: Option<&'static str>,
    #[prop(default = false)] autofocus: bool,
    #[prop(default = "")] inputmode: &'static str,
) -> impl IntoView {
    let hint_id = format!("{name}-hint");
    view! {
        <div class="mb-4">
            <label for=name class="mb-1 block text-sm font-medium text-slate-700">{label}</label>
            <input
                id=name
                name=name
                type=kind
                autocomplete=autocomplete
                inputmode=(!inputmode.is_empty()).then_some(inputmode)
                required=true
                autofocus=autofocus
                aria-describedby=hint.map(|_| hint_id.clone())
                class="block w-full rounded-md border border-slate-300 px-3 py-2 shadow-sm focus:border-indigo-500 focus:outline-none focus:ring-2 focus:ring-indigo-500"
            />
            {hint.map(|h| view! { <p id=hint_id class="mt-1 text-xs text-slate-500">{h}</p> })}
        </div>
    }
}

#[component]
pub fn Submit(label: &'static str, #[prop(into)] pending: Signal<bool>) -> impl IntoView {
    view! {
        <button
            type="submit"
            disabled=move || pending.get()
            class="w-full rounded-md bg-indigo-600 px-4 py-2 font-semibold text-white hover:bg-indigo-700 focus:outline-none focus:ring-2 focus:ring-indigo-500 focus:ring-offset-2 disabled:opacity-60"
        >
            {label}
        </button>
    }
}

/// A centred card for the sign-in screens.
#[component]
pub fn Card(title: &'static str, children: Children) -> impl IntoView {
    view! {
        <section class="mx-auto max-w-md rounded-lg border border-slate-200 bg-white p-6 shadow-sm" aria-labelledby="card-title">
            <h1 id="card-title" class="mb-4 text-xl font-semibold">{title}</h1>
            {children()}
        </section>
    }
}

/// An error from loading a page's data.
#[component]
pub fn LoadError(error: AppError) -> impl IntoView {
    view! {
        <p role="alert" class="rounded-md border border-red-200 bg-red-50 px-3 py-2 text-sm text-red-800">{error.to_string()}</p>
    }
}
