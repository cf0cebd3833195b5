//! Forms and their feedback: fields, buttons, errors and confirmations,
//! cards and load errors.

use super::class;
use crate::errors::AppError;
use leptos::prelude::*;

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
                <p
                    role="alert"
                    class="form-error mb-4 rounded-md border border-red-200 bg-red-50 px-3 py-2 text-sm text-red-800"
                >
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
            <label for=name class="mb-1 block text-sm font-medium text-slate-700">
                {label}
            </label>
            <input
                id=name
                name=name
                type=kind
                autocomplete=autocomplete
                inputmode=(!inputmode.is_empty()).then_some(inputmode)
                required=true
                autofocus=autofocus
                aria-describedby=hint.map(|_| hint_id.clone())
                class=class::INPUT
            />
            {hint
                .map(|h| {
                    view! {
                        <p id=hint_id class="mt-1 text-xs text-slate-500">
                            {h}
                        </p>
                    }
                })}
        </div>
    }
}

#[component]
pub fn Submit(label: &'static str, #[prop(into)] pending: Signal<bool>) -> impl IntoView {
    view! {
        <button
            type="submit"
            disabled=move || pending.get()
            class=class::SUBMIT
        >
            {label}
        </button>
    }
}

/// A centred card for the sign-in screens.
#[component]
pub fn Card(title: &'static str, children: Children) -> impl IntoView {
    view! {
        <section
            class="mx-auto max-w-md rounded-lg border border-slate-200 bg-white p-6 shadow-sm"
            aria-labelledby="card-title"
        >
            <h1 id="card-title" class="mb-4 text-xl font-semibold">
                {title}
            </h1>
            {children()}
        </section>
    }
}

/// An error from loading a page's data.
#[component]
pub fn LoadError(error: AppError) -> impl IntoView {
    view! {
        <p role="alert" class="rounded-md border border-red-200 bg-red-50 px-3 py-2 text-sm text-red-800">
            {error.to_string()}
        </p>
    }
}

/// A labelled select.
#[component]
pub fn Select(
    label: &'static str,
    name: &'static str,
    options: Vec<(String, String)>,
    #[prop(default = String::new())] selected: String,
) -> impl IntoView {
    view! {
        <div class="mb-4">
            <label for=name class="mb-1 block text-sm font-medium text-slate-700">
                {label}
            </label>
            <select id=name name=name class=class::INPUT>
                {options
                    .into_iter()
                    .map(|(v, l)| {
                        let sel = v == selected;
                        view! {
                            <option value=v selected=sel>
                                {l}
                            </option>
                        }
                    })
                    .collect_view()}
            </select>
        </div>
    }
}

/// A message after a successful action.
#[component]
pub fn Done<A>(action: ServerAction<A>, message: &'static str) -> impl IntoView
where
    A: leptos::server_fn::ServerFn<Error = AppError> + Clone + Send + Sync + 'static,
    A::Output: Send + Sync + 'static,
{
    move || {
        action.value().with(|v| matches!(v, Some(Ok(_)))).then(|| {
            view! {
                <p
                    role="status"
                    class=class::NOTICE_OK
                >
                    {message}
                </p>
            }
        })
    }
}

/// A status as a coloured label.
#[component]
pub fn Badge(text: String) -> impl IntoView {
    let colour = match text.as_str() {
        "active" | "enrolled" => "bg-green-100 text-green-800",
        "pending" | "invited" | "scheduled" | "sensitive" => "bg-amber-100 text-amber-800",
        "suspended" | "critical" | "missing" => "bg-red-100 text-red-800",
        _ => "bg-slate-100 text-slate-700",
    };
    view! { <span class=format!("inline-block rounded px-2 py-0.5 text-xs font-medium {colour}")>{text}</span> }
}

/// `word` with its first letter in capitals.
pub fn capital(word: &str) -> String {
    let mut c = word.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

/// Where a new invitation link went: to the invitee's address (the page
/// never shows it then), or shown once here for the administrator to pass on.
#[component]
pub fn InvitationSent(invited: crate::dto::Invited) -> impl IntoView {
    match (invited.link, invited.emailed_to) {
        (Some(link), _) => view! {
            <p class="mb-2">
                "Send them this single-use invitation link; it is shown only now and works until "
                {invited.expires_at} ":"
            </p>
            <input id="invitation-link" readonly class=class::INPUT value=link aria-label="Invitation link" />
        }
        .into_any(),
        (None, Some(to)) => view! {
            <p id="invitation-sent">
                "The single-use invitation link was emailed to " <strong>{to}</strong> "; it works until "
                {invited.expires_at} ". It is not shown here: only the invitee can use it."
            </p>
        }
        .into_any(),
        (None, None) => ().into_any(),
    }
}

/// The form that adds a passkey (`public/passkeys.js` does the WebAuthn
/// call, then reloads or goes where the server says): its name, and the
/// button.
#[component]
pub fn AddPasskey(
    label: &'static str,
    #[prop(default = false)] autofocus: bool,
    button_class: &'static str,
) -> impl IntoView {
    view! {
        <form>
            <Field
                label=label
                name="passkey_name"
                autocomplete="off"
                autofocus=autofocus
                hint="For example \"Work laptop\" or \"Blue security key\"."
            />
            <button
                type="button"
                id="passkey-add"
                data-passkey="register"
                data-passkey-error="passkey-add-error"
                class=button_class
            >
                "Add a passkey"
            </button>
            <p id="passkey-add-error" role="alert" class="mt-2 text-sm text-red-700"></p>
        </form>
    }
}

/// A button that confirms the enclosing form's action with a passkey
/// instead of a code (`public/passkeys.js`): the passkey makes the
/// session's second factor fresh, then the form is sent, through the
/// submit button `submit` selects when it has several.
#[component]
pub fn PasskeyStepUp(
    /// Unique on the page.
    #[prop(into)]
    id: String,
    /// What it confirms, as recorded with the passkey's use.
    #[prop(into)]
    purpose: String,
    #[prop(into, default = "Use a passkey instead".into())] label: String,
    #[prop(into, optional)] submit: Option<String>,
) -> impl IntoView {
    let error = format!("{id}-error");
    view! {
        <div>
            <button
                type="button"
                id=id
                data-passkey="step-up"
                data-purpose=purpose
                data-passkey-error=error.clone()
                data-passkey-submit=submit
                class="text-sm text-indigo-700 underline hover:text-indigo-900"
            >
                {label}
            </button>
            <p id=error role="alert" class="text-sm text-red-700"></p>
        </div>
    }
}

/// The authenticator code a powerful action asks for when the signed-in
/// employee's last one is more than 5 minutes old (the server decides;
/// left empty while the last one is fresh), or a passkey instead.
#[component]
pub fn StepUpCode(
    #[prop(into)] id: String,
    #[prop(into, default = "step-up".into())] purpose: String,
) -> impl IntoView {
    let hint = format!("{id}-hint");
    let passkey = format!("{id}-passkey");
    view! {
        <div>
            <label for=id.clone() class="mb-1 block text-sm font-medium text-slate-700">
                "Your authenticator code"
            </label>
            <input
                id=id
                name="code"
                inputmode="numeric"
                autocomplete="one-time-code"
                class="w-32 rounded-md border border-slate-300 px-3 py-2"
                aria-describedby=hint.clone()
            />
            <p id=hint class="mt-1 text-xs text-slate-500">"Needed when your last code is over 5 minutes old."</p>
            <PasskeyStepUp id=passkey purpose />
        </div>
    }
}
