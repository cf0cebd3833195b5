//! Passkeys and security keys: registering one on `/security` (the
//! options for the browser, then the authenticator's answer), the list,
//! removal after a fresh second factor, and using one: at sign-in (after
//! the password, or passwordless) and for step-up. Each acts on the
//! signed-in employee's own passkeys only. The browser half is
//! `public/passkeys.js`.

use crate::dto::*;
use crate::errors::AppError;
#[cfg(feature = "ssr")]
use crate::server::{
    identity::{mfa, passkeys, signin},
    platform::time::format_time,
};

api! {
    /// The options for `navigator.credentials.create()`, as JSON (binary
    /// fields in base64url); the ceremony's state stays in the session.
    "passkey_registration_options" (st, ctx, session)
    pub async fn passkey_registration_options() -> Result<String, AppError> {
        passkeys::registration_options(&st, &ctx, &session).await
    }
}

api! {
    /// Finishes a registration: `credential` is the authenticator's answer
    /// as JSON. Returns the new passkey's id.
    "register_passkey" (st, ctx, session)
    pub async fn register_passkey(name: String, credential: String) -> Result<i64, AppError> {
        let id = passkeys::register(&st, &ctx, &session, &name, &credential).await?;
        // A first passkey registered because the access requires one: the
        // sign-in goes on with it.
        if signin::registered_first_passkey(&ctx, &session).await? {
            leptos_axum::redirect("/mfa");
        }
        Ok(id)
    }
}

api! {
    "my_passkeys" (st, ctx, _)
    pub async fn my_passkeys() -> Result<Vec<PasskeyView>, AppError> {
        let auth = ctx.full()?;
        Ok(passkeys::of_user(st.db.pool(), auth.user_id)
            .await?
            .into_iter()
            .map(|p| PasskeyView {
                id: p.id,
                name: p.name,
                created_at: format_time(p.created_at),
                last_used_at: p.last_used_at.map(format_time),
            })
            .collect())
    }
}

api! {
    /// Removes one of your passkeys. Step-up: a fresh code (or passkey).
    "remove_passkey" (st, ctx, session)
    pub async fn remove_passkey(id: i64, #[server(default)] code: String) -> Result<(), AppError> {
        mfa::step_up(&st, &ctx, &session, &code, "remove passkey").await?;
        let user_id = ctx.full()?.user_id;
        passkeys::remove(&st, &ctx, user_id, id).await
    }
}

api! {
    /// The options for `navigator.credentials.get()`, as JSON: the
    /// employee's passkeys at the second step of sign-in and for step-up,
    /// any discoverable passkey for passwordless sign-in.
    "passkey_authentication_options" (st, ctx, session)
    pub async fn passkey_authentication_options() -> Result<String, AppError> {
        passkeys::assertion::options(&st, &ctx, &session).await
    }
}

api! {
    /// Signs in with a passkey (its answer as JSON): the second step after
    /// the password, or passwordless. Returns where to go next.
    "passkey_sign_in" (st, ctx, session)
    pub async fn passkey_sign_in(credential: String) -> Result<String, AppError> {
        signin::passkey(&st, &ctx, &session, &credential).await?;
        crate::api::server::remember_device(&st, &ctx);
        Ok("/".into())
    }
}

api! {
    /// Confirms with a passkey for a powerful action (`purpose`): the
    /// session's second factor is then fresh for five minutes.
    "passkey_step_up" (st, ctx, session)
    pub async fn passkey_step_up(purpose: String, credential: String) -> Result<(), AppError> {
        mfa::passkey_step_up(&st, &ctx, &session, &credential, &purpose).await
    }
}

api! {
    /// Whether passkeys work here and, for the employee of this session,
    /// whether they have one and must use one.
    "passkey_status" (st, ctx, _)
    pub async fn passkey_status() -> Result<PasskeyInfo, AppError> {
        let registered = match &ctx.auth {
            Some(a) => !passkeys::of_user(st.db.pool(), a.user_id).await?.is_empty(),
            None => false,
        };
        Ok(PasskeyInfo {
            on: st.config.passkeys.is_ok(),
            registered,
            required: ctx.passkey_required,
        })
    }
}
