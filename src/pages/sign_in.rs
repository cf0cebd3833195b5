//! First-administrator setup, sign-in, MFA enrolment and MFA code entry.

use crate::api::{CompleteSetup, ConfirmEnrolment, SignIn, UseRecoveryCode, VerifyCode};
use crate::components::{AddPasskey, Card, Field, FormError, LoadError, Submit};
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

/// A setup link that cannot be used.
const SETUP_LINK_INVALID: &str =
    "This setup link is not valid: it has expired, was already used, or Gatehouse already has an \
                                  administrator. ";

/// Why enrolment is asked for.
const AUTHENTICATOR_NEEDED: &str =
    "Every Gatehouse account needs an authenticator app (for example Google Authenticator, 1Password \
                                    or Authy).";

/// An invitation link that cannot be used.
const INVITATION_INVALID: &str =
    "This invitation link is not valid: it has expired, was already used or was cancelled. Ask your \
                                  administrator for a new one.";

/// The single sign-on link, as a button.
const SSO_BUTTON: &str = "mb-4 block rounded-md bg-indigo-600 px-4 py-2 text-center text-sm font-medium text-white \
                          hover:bg-indigo-500";
/// A link that is the page's one way on, as a button.
const LINK_BUTTON: &str = "block w-full rounded-md bg-indigo-600 px-4 py-2 text-center font-semibold text-white \
                           hover:bg-indigo-700";

#[component]
pub fn SignInPage() -> impl IntoView {
    let action = ServerAction::<SignIn>::new();
    let sso = Resource::new(|| (), |_| crate::api::sso_status());
    view! {
        <Card title="Sign in to Gatehouse">
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    match sso.await {
                        Ok((true, required)) => {
                            view! {
                                <a
                                    id="sso-signin"
                                    href="/auth/oidc/start"
                                    rel="external"
                                    class=SSO_BUTTON
                                >
                                    "Sign in with your company account"
                                </a>
                                <p class="mb-4 text-xs text-slate-500">
                                    {if required {
                                        "Password sign-in is only for the emergency administrator account."
                                    } else {
                                        "Or sign in with your Gatehouse password:"
                                    }}
                                </p>
                            }
                                .into_any()
                        }
                        _ => ().into_any(),
                    }
                })}
            </Suspense>
            <FormError action />
            <ActionForm action=action>
                <Field label="Email" name="email" kind="email" autocomplete="username" autofocus=true />
                <Field label="Password" name="password" kind="password" autocomplete="current-password" />
                <Submit label="Continue" pending=action.pending() />
            </ActionForm>
            <p class="mt-4 text-xs text-slate-500">
                "After your password you will be asked for your passkey or a code from your authenticator app."
            </p>
            <PasskeyButton
                when=Passkeys::On
                id="passkey-signin"
                label="Sign in with a passkey"
                hint="A passkey on this device or a security key signs you in without a password."
            />
        </Card>
    }
}

#[component]
pub fn SetupPage() -> impl IntoView {
    let query = use_query_map();
    let token = move || query.with(|q| q.get("token").unwrap_or_default());
    let usable = Resource::new(token, crate::api::setup_status);
    let action = ServerAction::<CompleteSetup>::new();
    view! {
        <Card title="Create the first administrator">
            <Suspense fallback=|| {
                view! { <p>"Checking the setup link…"</p> }
            }>
                {move || Suspend::new(async move {
                    match usable.await {
                        Ok(true) => {
                            view! {
                                <p class="mb-4 text-sm text-slate-600">
                                    "This account will administer Gatehouse. You will set up an authenticator app next."
                                </p>
                                <FormError action />
                                <ActionForm action=action>
                                    <input type="hidden" name="token" value=token() />
                                    <Field label="Your name" name="name" autocomplete="name" autofocus=true />
                                    <Field label="Work email" name="email" kind="email" autocomplete="username" />
                                    <Field
                                        label="Password"
                                        name="password"
                                        kind="password"
                                        autocomplete="new-password"
                                        hint="At least 12 characters. A few unrelated words make a good password."
                                    />
                                    <Field
                                        label="Repeat the password"
                                        name="confirm"
                                        kind="password"
                                        autocomplete="new-password"
                                    />
                                    <Submit label="Create administrator" pending=action.pending() />
                                </ActionForm>
                            }
                                .into_any()
                        }
                        Ok(false) => {
                            view! {
                                <p role="alert" class="text-sm text-slate-700">
                                    {SETUP_LINK_INVALID}
                                    <a class="text-indigo-700 underline" href="/signin">
                                        "Sign in"
                                    </a>
                                    " instead, or restart the server on an empty database to get a new link."
                                </p>
                            }
                                .into_any()
                        }
                        Err(e) => view! { <LoadError error=e /> }.into_any(),
                    }
                })}
            </Suspense>
        </Card>
    }
}

/// When a passkey button shows.
#[derive(Clone, Copy, PartialEq)]
enum Passkeys {
    /// Passkeys work on this server.
    On,
    /// The employee of this session has one.
    Registered,
}

/// A button that signs in with a passkey (`public/passkeys.js`), shown
/// when `when` holds; its errors show beneath it.
#[component]
fn PasskeyButton(when: Passkeys, id: &'static str, label: &'static str, hint: &'static str) -> impl IntoView {
    let status = Resource::new(|| (), |_| crate::api::passkey_status());
    let error = format!("{id}-error");
    view! {
        <Suspense fallback=|| ()>
            {move || {
                let error = error.clone();
                Suspend::new(async move {
                let show = match status.await {
                    Ok(s) => if when == Passkeys::On { s.on } else { s.on && s.registered },
                    Err(_) => false,
                };
                show.then(|| {
                    view! {
                        <div class="mt-6 border-t border-slate-200 pt-4">
                            <button
                                type="button"
                                id=id
                                data-passkey="sign-in"
                                data-passkey-error=error.clone()
                                class=LINK_BUTTON
                            >
                                {label}
                            </button>
                            <p class="mt-2 text-xs text-slate-500">{hint}</p>
                            <p id=error.clone() role="alert" class="mt-2 text-sm text-red-700"></p>
                        </div>
                    }
                })
            })
            }}
        </Suspense>
    }
}

#[component]
pub fn MfaPage() -> impl IntoView {
    let action = ServerAction::<VerifyCode>::new();
    view! {
        <Card title="Confirm it is you">
            <PasskeyButton
                when=Passkeys::Registered
                id="passkey-second"
                label="Use your passkey"
                hint="Your passkey or security key confirms it is you. Or enter a code from your authenticator app:"
            />
            <FormError action />
            <ActionForm action=action>
                <Field
                    label="6-digit code"
                    name="code"
                    autocomplete="one-time-code"
                    inputmode="numeric"
                    autofocus=true
                    hint="Open your authenticator app and enter the code shown for Gatehouse."
                />
                <Submit label="Verify" pending=action.pending() />
            </ActionForm>
            <p class="mt-4 text-sm">
                <a class="text-indigo-700 underline" href="/mfa/recovery">
                    "Use a recovery code instead"
                </a>
            </p>
        </Card>
    }
}

#[component]
pub fn RecoverySignInPage() -> impl IntoView {
    let action = ServerAction::<UseRecoveryCode>::new();
    view! {
        <Card title="Sign in with a recovery code">
            <FormError action />
            <ActionForm action=action>
                <Field
                    label="Recovery code"
                    name="code"
                    autocomplete="off"
                    autofocus=true
                    hint="One of the ten codes you saved when you set up your authenticator. Each works once."
                />
                <Submit label="Sign in" pending=action.pending() />
            </ActionForm>
            <p class="mt-4 text-sm">
                <a class="text-indigo-700 underline" href="/mfa">
                    "Use your authenticator app instead"
                </a>
            </p>
        </Card>
    }
}

/// A first passkey, when the employee's access requires one and they
/// have none: the authenticator code got them this far, the passkey they
/// add here completes the sign-in.
#[component]
pub fn PasskeySetupPage() -> impl IntoView {
    view! {
        <Card title="Add a passkey to go on">
            <p class="mb-4 text-sm text-slate-700">
                "Your access requires a passkey: authenticator codes can be phished, passkeys cannot. Add one now "
                "(this device's, or a security key); you will then sign in with it."
            </p>
            <AddPasskey label="Name the passkey" autofocus=true button_class=LINK_BUTTON />
        </Card>
    }
}

#[component]
pub fn EnrolPage() -> impl IntoView {
    let enrolment = Resource::new(|| (), |_| crate::api::enrolment());
    let action = ServerAction::<ConfirmEnrolment>::new();
    view! {
        <Card title="Set up your authenticator app">
            <Suspense fallback=|| {
                view! { <p>"Preparing your key…"</p> }
            }>
                {move || Suspend::new(async move {
                    match enrolment.await {
                        Ok(e) => {
                            view! {
                                <ol class="mb-4 list-decimal space-y-2 pl-5 text-sm text-slate-700">
                                    <li>
                                        {AUTHENTICATOR_NEEDED}
                                    </li>
                                    <li>"Scan this QR code with the app, or type the key below."</li>
                                    <li>"Enter the 6-digit code the app shows."</li>
                                </ol>
                                <div class="mx-auto mb-4 w-56" inner_html=e.qr_svg></div>
                                <p class="mb-1 text-sm font-medium text-slate-700">"Key"</p>
                                <p
                                    id="totp-key"
                                    class="mb-2 select-all rounded bg-slate-100 px-3 py-2 font-mono text-sm tracking-wider"
                                >
                                    {e.key}
                                </p>
                                <details class="mb-4 text-xs text-slate-500">
                                    <summary>"Setup link for apps on this device"</summary>
                                    <a id="totp-uri" class="break-all text-indigo-700 underline" href=e.uri.clone()>
                                        {e.uri.clone()}
                                    </a>
                                </details>
                                <FormError action />
                                <ActionForm action=action>
                                    <Field
                                        label="6-digit code"
                                        name="code"
                                        autocomplete="one-time-code"
                                        inputmode="numeric"
                                    />
                                    <Submit label="Confirm and continue" pending=action.pending() />
                                </ActionForm>
                            }
                                .into_any()
                        }
                        Err(e) => view! { <LoadError error=e /> }.into_any(),
                    }
                })}
            </Suspense>
        </Card>
    }
}

#[component]
pub fn RecoveryCodesPage() -> impl IntoView {
    let codes = Resource::new(|| (), |_| crate::api::take_recovery_codes());
    view! {
        <Card title="Save your recovery codes">
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    match codes.await {
                        Ok(codes) if !codes.is_empty() => {
                            view! {
                                <p class="mb-4 text-sm text-slate-700">
                                    "If you lose your authenticator, each of these codes signs you in once. "
                                    "Store them somewhere safe, such as a password manager. They are shown only now."
                                </p>
                                <ul id="recovery-codes" class="mb-6 grid grid-cols-2 gap-2 font-mono text-sm">
                                    {codes
                                        .into_iter()
                                        .map(|c| view! { <li class="rounded bg-slate-100 px-2 py-1">{c}</li> })
                                        .collect_view()}
                                </ul>
                                <a
                                    href="/"
                                    class=LINK_BUTTON
                                >
                                    "I have saved them"
                                </a>
                            }
                                .into_any()
                        }
                        Ok(_) => {
                            view! {
                                <p class="text-sm text-slate-700">
                                    "Recovery codes are shown only once. To get a new set, go to "
                                    <a class="text-indigo-700 underline" href="/security">
                                        "Security"
                                    </a>"."
                                </p>
                            }
                                .into_any()
                        }
                        Err(e) => view! { <LoadError error=e /> }.into_any(),
                    }
                })}
            </Suspense>
        </Card>
    }
}

#[component]
pub fn InvitePage() -> impl IntoView {
    let query = use_query_map();
    let token = move || query.with(|q| q.get("token").unwrap_or_default());
    let info = Resource::new(token, crate::api::invitation_status);
    let action = ServerAction::<crate::api::AcceptInvitation>::new();
    view! {
        <Card title="Join Gatehouse">
            <Suspense fallback=|| {
                view! { <p>"Checking the invitation…"</p> }
            }>
                {move || Suspend::new(async move {
                    match info.await {
                        Ok(Some(i)) => {
                            view! {
                                <p class="mb-4 text-sm text-slate-600">
                                    "Welcome, " {i.name.clone()} ". Choose a password for "
                                    <span class="font-medium">{i.email.clone()}</span>
                                    "; you will set up an authenticator app next."
                                </p>
                                <FormError action />
                                <ActionForm action=action>
                                    <input type="hidden" name="token" value=token() />
                                    <input
                                        type="hidden"
                                        name="username"
                                        autocomplete="username"
                                        value=i.email.clone()
                                    />
                                    <Field
                                        label="Password"
                                        name="password"
                                        kind="password"
                                        autocomplete="new-password"
                                        autofocus=true
                                        hint="At least 12 characters. A few unrelated words make a good password."
                                    />
                                    <Field
                                        label="Repeat the password"
                                        name="confirm"
                                        kind="password"
                                        autocomplete="new-password"
                                    />
                                    <Submit label="Set password" pending=action.pending() />
                                </ActionForm>
                            }
                                .into_any()
                        }
                        Ok(None) => {
                            view! {
                                <p role="alert" class="text-sm text-slate-700">
                                    {INVITATION_INVALID}
                                </p>
                            }
                                .into_any()
                        }
                        Err(e) => view! { <LoadError error=e /> }.into_any(),
                    }
                })}
            </Suspense>
        </Card>
    }
}
