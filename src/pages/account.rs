//! Pages for a signed-in person: overview, own activity, security.

use crate::api::{RegenerateRecoveryCodes, RemovePasskey};
use crate::components::{use_me, AddPasskey, Field, FormError, LoadError, StepUpCode, Submit};
use leptos::prelude::*;

#[component]
pub fn HomePage() -> impl IntoView {
    let me = use_me();
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                match me.await {
                    Ok(Some(me)) => {
                        view! {
                            <h1 class="mb-2 text-2xl font-semibold">"Welcome, " {me.name.clone()}</h1>
                            <p class="mb-6 text-slate-600">
                                "Signed in as " {me.email.clone()} " with password and authenticator app."
                            </p>
                            <div class="grid gap-4 sm:grid-cols-2">
                                <section
                                    class="rounded-lg border border-slate-200 bg-white p-4"
                                    aria-labelledby="roles-h"
                                >
                                    <h2 id="roles-h" class="mb-2 font-semibold">
                                        "Your roles"
                                    </h2>
                                    <ul id="my-roles" class="list-disc pl-5 text-sm">
                                        {me.roles.iter().map(|r| view! { <li>{r.clone()}</li> }).collect_view()}
                                    </ul>
                                </section>
                                <section
                                    class="rounded-lg border border-slate-200 bg-white p-4"
                                    aria-labelledby="mfa-h"
                                >
                                    <h2 id="mfa-h" class="mb-2 font-semibold">
                                        "Two-factor sign-in"
                                    </h2>
                                    <p class="text-sm">"Authenticator app: set up."</p>
                                    <p id="codes-left" class="text-sm">
                                        "Recovery codes left: "
                                        {me.recovery_codes_left}
                                    </p>
                                    <a href="/security" class="text-sm text-indigo-700 underline">
                                        "Manage"
                                    </a>
                                </section>
                            </div>
                        }
                            .into_any()
                    }
                    Ok(None) => {
                        view! {
                            <p>
                                "Please " <a class="underline" href="/signin">
                                    "sign in"
                                </a> "."
                            </p>
                        }
                            .into_any()
                    }
                    Err(e) => view! { <LoadError error=e /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
pub fn ActivityPage() -> impl IntoView {
    let items = Resource::new(|| (), |_| crate::api::my_activity());
    view! {
        <h1 class="mb-2 text-2xl font-semibold">"Sign-in activity"</h1>
        <p class="mb-4 text-sm text-slate-600">
            "Recent sign-ins, failed attempts and security changes on your account, newest first. "
            "If you see something you did not do, sign out everywhere and tell your administrator."
        </p>
        <Suspense fallback=|| {
            view! { <p>"Loading…"</p> }
        }>
            {move || Suspend::new(async move {
                match items.await {
                    Ok(items) => {
                        view! {
                            <div class="overflow-x-auto rounded-lg border border-slate-200 bg-white">
                                <table id="activity" class="min-w-full divide-y divide-slate-200 text-sm">
                                    <caption class="sr-only">"Your recent account activity"</caption>
                                    <thead class="bg-slate-50 text-left">
                                        <tr>
                                            <th scope="col" class="px-3 py-2">
                                                "When"
                                            </th>
                                            <th scope="col" class="px-3 py-2">
                                                "What"
                                            </th>
                                            <th scope="col" class="px-3 py-2">
                                                "Result"
                                            </th>
                                            <th scope="col" class="px-3 py-2">
                                                "From"
                                            </th>
                                            <th scope="col" class="px-3 py-2">
                                                "Device"
                                            </th>
                                        </tr>
                                    </thead>
                                    <tbody class="divide-y divide-slate-100">
                                        {items
                                            .into_iter()
                                            .map(|i| {
                                                let outcome = i.outcome.as_str();
                                                view! {
                                                    <tr data-outcome=outcome>
                                                        <td class="whitespace-nowrap px-3 py-2">{i.when}</td>
                                                        <td class="px-3 py-2">
                                                            {i.what}
                                                            {(!i.note.is_empty())
                                                                .then(|| {
                                                                    view! {
                                                                        <span class="block text-xs text-slate-500">
                                                                            {i.note.clone()}
                                                                        </span>
                                                                    }
                                                                })}
                                                        </td>
                                                        <td class="px-3 py-2">{i.outcome.as_str()}</td>
                                                        <td class="px-3 py-2">{i.ip}</td>
                                                        <td class="max-w-xs truncate px-3 py-2" title=i.device.clone()>
                                                            {i.device.clone()}
                                                        </td>
                                                    </tr>
                                                }
                                            })
                                            .collect_view()}
                                    </tbody>
                                </table>
                            </div>
                        }
                            .into_any()
                    }
                    Err(e) => view! { <LoadError error=e /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
pub fn SecurityPage() -> impl IntoView {
    let action = ServerAction::<RegenerateRecoveryCodes>::new();
    view! {
        <h1 class="mb-6 text-2xl font-semibold">"Security"</h1>
        <section class="mb-6 max-w-md rounded-lg border border-slate-200 bg-white p-4" aria-labelledby="regen-h">
            <h2 id="regen-h" class="mb-2 font-semibold">
                "New recovery codes"
            </h2>
            <p class="mb-4 text-sm text-slate-600">"Generating new codes makes all your old codes stop working."</p>
            <FormError action />
            <ActionForm action=action>
                <Field
                    label="Current authenticator code"
                    name="code"
                    autocomplete="one-time-code"
                    inputmode="numeric"
                />
                <Submit label="Generate new recovery codes" pending=action.pending() />
            </ActionForm>
        </section>
        <Passkeys />
        <section class="max-w-md rounded-lg border border-slate-200 bg-white p-4">
            <h2 class="mb-2 font-semibold">"Sessions"</h2>
            <p class="text-sm text-slate-600">
                "Use “Sign out everywhere” in your account menu to end every session of your account, on every device."
            </p>
        </section>
    }
}

/// The employee's passkeys: each with when it was added and last used,
/// removal after a fresh second factor, and adding one.
#[component]
fn Passkeys() -> impl IntoView {
    let remove = ServerAction::<RemovePasskey>::new();
    let status = Resource::new(|| (), |_| crate::api::passkey_status());
    let mine = Resource::new(move || remove.version().get(), |_| crate::api::my_passkeys());
    view! {
        <section class="mb-6 max-w-md rounded-lg border border-slate-200 bg-white p-4" aria-labelledby="passkeys-h">
            <h2 id="passkeys-h" class="mb-2 font-semibold">
                "Passkeys and security keys"
            </h2>
            <p class="mb-4 text-sm text-slate-600">
                "A passkey signs you in and confirms powerful actions without a code, and cannot be phished."
            </p>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    match (status.await, mine.await) {
                        (Ok(s), _) if !s.on => {
                            view! {
                                <p class="text-sm text-slate-600">
                                    "Passkeys are off on this server: its address is not a domain name."
                                </p>
                            }
                                .into_any()
                        }
                        (Ok(s), Ok(list)) => {
                            view! {
                                {s.required.then(|| view! {
                                    <p class="mb-3 text-sm font-medium text-amber-800">
                                        "Your access requires a passkey to sign in and to confirm actions."
                                    </p>
                                })}
                                <FormError action=remove />
                                <ul id="passkeys" class="mb-4 divide-y divide-slate-100">
                                    {list.into_iter().map(|p| view! { <PasskeyItem p remove /> }).collect_view()}
                                </ul>
                                <AddPasskey
                                    label="Name a new passkey"
                                    button_class="rounded-md bg-indigo-600 px-4 py-2 text-sm font-semibold text-white hover:bg-indigo-700"
                                />
                            }
                                .into_any()
                        }
                        (Err(e), _) | (_, Err(e)) => view! { <LoadError error=e /> }.into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}

#[component]
fn PasskeyItem(p: crate::dto::PasskeyView, remove: ServerAction<RemovePasskey>) -> impl IntoView {
    let code_id = format!("passkey-code-{}", p.id);
    view! {
        <li class="passkey py-3">
            <p class="font-medium">{p.name.clone()}</p>
            <p class="text-xs text-slate-500">
                "Added " {p.created_at.clone()} " · "
                {p.last_used_at.clone().map(|t| format!("last used {t}")).unwrap_or_else(|| "never used".into())}
            </p>
            <ActionForm action=remove attr:class="mt-2 flex flex-wrap items-end gap-2">
                <input type="hidden" name="id" value=p.id.to_string() />
                <StepUpCode id=code_id purpose="remove passkey" />
                <button type="submit" class="remove rounded-md border border-red-300 px-3 py-1 text-sm text-red-800">
                    "Remove"
                </button>
            </ActionForm>
        </li>
    }
}

#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    {
        if let Some(res) = use_context::<leptos_axum::ResponseOptions>() {
            res.set_status(http::StatusCode::NOT_FOUND);
        }
    }
    view! {
        <h1 class="mb-2 text-2xl font-semibold">"Page not found"</h1>
        <p>
            <a class="text-indigo-700 underline" href="/">
                "Go to the start page"
            </a>
        </p>
    }
}

#[component]
pub fn MyAccessPage() -> impl IntoView {
    let data = Resource::new(|| (), |_| crate::api::my_access());
    view! {
        <h1 class="mb-2 text-2xl font-semibold">"My access"</h1>
        <p class="mb-4 text-sm text-slate-600">"What you may do now, and the grant each permission comes from."</p>
        <Suspense fallback=|| {
            view! { <p>"Loading…"</p> }
        }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(a) => {
                        view! {
                            <section
                                class="mb-6 rounded-lg border border-slate-200 bg-white p-4"
                                aria-labelledby="my-perms-h"
                            >
                                <h2 id="my-perms-h" class="mb-2 font-semibold">
                                    "Permissions"
                                </h2>
                                <crate::pages::PermissionTable perms=a.permissions />
                            </section>
                            <section
                                class="rounded-lg border border-slate-200 bg-white p-4"
                                aria-labelledby="my-grants-h"
                            >
                                <h2 id="my-grants-h" class="mb-2 font-semibold">
                                    "Grants"
                                </h2>
                                <crate::pages::GrantTable grants=a.grants revoke=None approve=None show_user=false />
                            </section>
                            <DbAccounts />
                        }
                            .into_any()
                    }
                    Err(e) => view! { <LoadError error=e /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// The employee's own database accounts: where, under which name, whether
/// they are open, and a new password (shown once) while they are.
#[component]
fn DbAccounts() -> impl IntoView {
    use crate::components::{class::*, FormError};
    let reveal = ServerAction::<crate::api::NewDbPassword>::new();
    let data = Resource::new(move || reveal.version().get(), |_| crate::api::my_db_accounts());
    view! {
        <Suspense>
            {move || Suspend::new(async move {
                let accounts = data.await.unwrap_or_default();
                (!accounts.is_empty())
                    .then(|| {
                        view! {
                            <section class="mt-6 rounded-lg border border-slate-200 bg-white p-4" aria-labelledby="my-db-h">
                                <h2 id="my-db-h" class="mb-2 font-semibold">"Database accounts"</h2>
                                <FormError action=reveal />
                                {move || {
                                    reveal.value().get().and_then(|r| r.ok()).map(|pw| {
                                        view! {
                                            <div role="status" class="mb-3 rounded-md border border-green-200 bg-green-50 p-3 text-sm">
                                                <p class="mb-2 font-semibold">
                                                    "Your new database password. Copy it now: it is shown only once, and it stops "
                                                    "working when this access ends."
                                                </p>
                                                <input id="db-password" readonly class=INPUT value=pw aria-label="New database password" />
                                            </div>
                                        }
                                    })
                                }}
                                <ul class="divide-y divide-slate-100 text-sm">
                                    {accounts
                                        .into_iter()
                                        .map(|a| view! { <DbAccountItem a reveal /> })
                                        .collect_view()}
                                </ul>
                            </section>
                        }
                    })
            })}
        </Suspense>
    }
}

#[component]
fn DbAccountItem(a: crate::dto::DbAccountView, reveal: ServerAction<crate::api::NewDbPassword>) -> impl IntoView {
    use crate::components::{class::*, Badge, StepUpCode};
    let state = if a.open {
        "open"
    } else if a.provisioned {
        "locked: no database access is due"
    } else {
        "not provisioned yet"
    };
    let tid = a.target_id;
    view! {
        <li class="flex flex-wrap items-end justify-between gap-2 py-2" data-db-account=a.account.clone()>
            <span>
                <strong>{a.target.clone()}</strong> " · "
                <span class="font-mono">{format!("{}@{}:{}", a.account, a.host, a.port)}</span>
                {if a.tls { " · TLS" } else { "" }} " · " <Badge text=state.to_string() />
                {(!a.roles.is_empty()).then(|| format!(" · {}", a.roles.join(", ")))}
            </span>
            {a
                .open
                .then(|| {
                    view! {
                        <ActionForm action=reveal attr:class="flex items-end gap-2">
                            <input type="hidden" name="target" value=tid.to_string() />
                            <StepUpCode id=format!("db-code-{tid}") />
                            <button type="submit" class=SMALL_BUTTON>"New password"</button>
                        </ActionForm>
                    }
                })}
        </li>
    }
}
