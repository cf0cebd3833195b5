//! Service accounts and their API tokens.

use crate::api::*;
use crate::components::{class::*, Badge, Done, Field, FormError, LoadError, StepUpCode};
use leptos::prelude::*;

// ---------------------------------------------------------------- service accounts

#[component]
pub fn ServiceAccountsPage() -> impl IntoView {
    let create = ServerAction::<CreateServiceAccount>::new();
    let token = ServerAction::<CreateApiToken>::new();
    let revoke = ServerAction::<RevokeApiToken>::new();
    let data = Resource::new(
        move || create.version().get() + token.version().get() + revoke.version().get(),
        |_| service_accounts(),
    );
    view! {
        <h1 class="mb-2 text-2xl font-semibold">"Service accounts"</h1>
        <p class="mb-4 text-sm text-slate-600">
            "Backend services ask Gatehouse with a bearer token: "
            <span class="font-mono">"POST /api/v1/access-checks"</span> " (scope "
            <span class="font-mono">"access:check"</span> "). The API is described at "
            <a class=LINK href="/api/v1/openapi.json">
                "/api/v1/openapi.json"
            </a> "."
        </p>
        <FormError action=token />
        <FormError action=revoke />
        {move || {
            token
                .value()
                .get()
                .and_then(|r| r.ok())
                .map(|t| {
                    view! {
                        <div role="status" class="mb-4 rounded-md border border-green-200 bg-green-50 p-3 text-sm">
                            <p class="mb-2 font-semibold">
                                "New token. Copy it now: it is shown only once and stored only as a hash."
                                {t.expires_at.clone().map(|e| format!(" It expires {e}."))}
                            </p>
                            <input
                                id="new-token"
                                readonly
                                class=INPUT
                                value=t.token.clone()
                                aria-label="New API token"
                            />
                        </div>
                    }
                })
        }}
        <Suspense fallback=|| {
            view! { <p>"Loading…"</p> }
        }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(accounts) if accounts.is_empty() => {
                        view! { <p class="mb-6">"No service accounts yet."</p> }.into_any()
                    }
                    Ok(accounts) => {
                        accounts
                            .into_iter()
                            .map(|a| {
                                let aid = a.id;
                                view! {
                                    <section
                                        class=CARD
                                        data-account=a.name.clone()
                                        aria-label=format!("Service account {}", a.name)
                                    >
                                        <h2 class="font-semibold">
                                            <span class="font-mono">{a.name.clone()}</span>
                                        </h2>
                                        <p class="mb-2 text-sm text-slate-600">
                                            "Scopes: " <span class="font-mono">{a.scopes.join(", ")}</span>
                                            " · created " {a.created.clone()}
                                            {a.created_by.clone().map(|b| format!(" by {b}"))}
                                        </p>
                                        <ul class="mb-2 divide-y divide-slate-100 text-sm">
                                            {a
                                                .tokens
                                                .into_iter()
                                                .map(|t| {
                                                    let tid = t.id;
                                                    view! {
                                                        <li
                                                            class="flex flex-wrap items-center justify-between gap-2 py-1"
                                                            data-token=tid.to_string()
                                                        >
                                                            <span>
                                                                {t.label.clone()} " · "
                                                                <Badge text=(if t.usable {
                                                                    "active"
                                                                } else if t.revoked_at.is_some() {
                                                                    "revoked"
                                                                } else {
                                                                    "expired"
                                                                })
                                                                    .to_string() /> " · created " {t.created.clone()}
                                                                {t.expires_at.clone().map(|e| format!(" · expires {e}"))}
                                                                " · last used "
                                                                {t.last_used_at.clone().unwrap_or_else(|| "never".into())}
                                                            </span>
                                                            {t
                                                                .usable
                                                                .then(|| {
                                                                    view! {
                                                                        <ActionForm action=revoke>
                                                                            <input
                                                                                type="hidden"
                                                                                name="token_id"
                                                                                value=tid.to_string()
                                                                            />
                                                                            <button
                                                                                type="submit"
                                                                                class=SMALL_DANGER
                                                                            >
                                                                                "Revoke"
                                                                            </button>
                                                                        </ActionForm>
                                                                    }
                                                                })}
                                                        </li>
                                                    }
                                                })
                                                .collect_view()}
                                        </ul>
                                        <ActionForm action=token attr:class="flex flex-wrap items-end gap-2">
                                            <input type="hidden" name="account_id" value=aid.to_string() />
                                            <div>
                                                <label
                                                    for=format!("label-{aid}")
                                                    class="mb-1 block text-sm font-medium text-slate-700"
                                                >
                                                    "Token label"
                                                </label>
                                                <input
                                                    id=format!("label-{aid}")
                                                    name="label"
                                                    required
                                                    class=INPUT
                                                    placeholder="production cluster"
                                                />
                                            </div>
                                            <div>
                                                <label
                                                    for=format!("exp-{aid}")
                                                    class="mb-1 block text-sm font-medium text-slate-700"
                                                >
                                                    "Expires in (optional)"
                                                </label>
                                                <input
                                                    id=format!("exp-{aid}")
                                                    name="expires_in"
                                                    class=INPUT
                                                    placeholder="e.g. 90d"
                                                />
                                            </div>
                                            <StepUpCode id=format!("token-code-{aid}") />
                                            <button type="submit" class=BUTTON>
                                                "Create token"
                                            </button>
                                        </ActionForm>
                                    </section>
                                }
                            })
                            .collect_view()
                            .into_any()
                    }
                    Err(e) => view! { <LoadError error=e /> }.into_any(),
                }
            })}
        </Suspense>
        <section class=CARD aria-labelledby="new-account-h">
            <h2 id="new-account-h" class="mb-2 font-semibold">
                "New service account"
            </h2>
            <Done action=create message="Service account created. Create a token for it above." />
            <FormError action=create />
            <ActionForm action=create>
                <Field label="Name" name="name" autocomplete="off" hint="e.g. customer-api" />
                <fieldset class="mb-4">
                    <legend class="mb-1 text-sm font-medium text-slate-700">"Scopes"</legend>
                    <div class="flex items-center gap-2">
                        <input type="checkbox" id="scope-check" name="scopes[]" value="access:check" />
                        <label for="scope-check" class="text-sm">
                            <span class="font-mono">"access:check"</span>
                            " — ask whether an employee may do something"
                        </label>
                    </div>
                    <div class="flex items-center gap-2">
                        <input type="checkbox" id="scope-events" name="scopes[]" value="events:write" />
                        <label for="scope-events" class="text-sm">
                            <span class="font-mono">"events:write"</span>
                            " — report access to customer data"
                        </label>
                    </div>
                    <div class="flex items-center gap-2">
                        <input type="checkbox" id="scope-scim" name="scopes[]" value="scim" />
                        <label for="scope-scim" class="text-sm">
                            <span class="font-mono">"scim"</span>
                            " — the identity provider creates, changes and deactivates employees (/scim/v2)"
                        </label>
                    </div>
                    <div class="flex items-center gap-2">
                        <input type="checkbox" id="scope-witness" name="scopes[]" value="audit:witness" />
                        <label for="scope-witness" class="text-sm">
                            <span class="font-mono">"audit:witness"</span>
                            " — an independent witness reads signed checkpoints and proofs and co-signs them"
                        </label>
                    </div>
                </fieldset>
                <button type="submit" class=BUTTON>
                    "Create service account"
                </button>
            </ActionForm>
        </section>
    }
}
