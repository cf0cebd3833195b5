//! Passkeys and security keys on `/security`: registering one (the
//! options for the browser, then the authenticator's answer), the list,
//! and removal after a fresh second factor. Each acts on the signed-in
//! employee's own passkeys only.

use crate::dto::*;
use crate::errors::AppError;
#[cfg(feature = "ssr")]
use crate::server::{
    identity::{mfa, passkeys},
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
        passkeys::register(&st, &ctx, &session, &name, &credential).await
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
