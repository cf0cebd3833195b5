//! Checking authenticator codes: at sign-in, and for step-up.

use super::code_for_step;
use crate::domain::actions::Action;
use crate::domain::{
    audit::{NewEvent, Outcome},
    session_policy::step_up_fresh,
    totp::{self, TotpError},
    validation::OtpCode,
    Millis, MINUTE,
};
use crate::errors::AppError;
use crate::server::{
    audit,
    identity::{
        accounts::{self, UserRow},
        passkeys,
        sessions::set_auth,
        throttle::{self, clear_account_failures, fail_attempt, subjects, Attempt},
    },
    platform::request::{AuthState, RequestCtx},
    state::AppState,
};
use serde_json::json;
use tower_sessions::Session;

fn totp_secret(st: &AppState, user: &UserRow) -> Result<Vec<u8>, AppError> {
    let sealed = user
        .totp_secret_enc
        .as_deref()
        .ok_or_else(|| AppError::Conflict("No authenticator is set up.".into()))?;
    st.key
        .open(&format!("totp:{}", user.id), sealed)
        .ok_or_else(|| crate::errors::internal(format_args!("TOTP secret of user {} cannot be decrypted", user.id)))
}

/// Checks a TOTP code for `user`, storing its time step so it is never
/// accepted again. Failures and replays are recorded; `action` names the
/// event (sign-in, step-up, ...). On success the caller's events are
/// appended in the same transaction.
pub async fn check_totp(
    st: &AppState,
    ctx: &RequestCtx,
    user: &UserRow,
    code: &str,
    action: Action,
    success_events: Vec<NewEvent>,
) -> Result<(), AppError> {
    let code = OtpCode::parse(code)?;
    let now = st.clock.now();
    let subs = subjects(st, ctx, &user.email, Some(user.id));
    let attempt = throttle::begin(st, &subs).await?;
    let secret = totp_secret(st, user)?;
    let actor = ctx.actor_for(Some(user.id));
    match totp::verify(code.as_str(), now, user.totp_last_step, |s| code_for_step(&secret, s)) {
        Ok(step) => {
            let mut tx = st.db.begin_write().await?;
            // Conditional update: of two requests racing with one code, one wins.
            if !accounts::use_totp_step(&mut tx, user.id, step, now).await? {
                drop(tx);
                return replayed(st, ctx, attempt, user, action).await;
            }
            attempt.succeeded(&mut tx).await?;
            clear_account_failures(&mut tx, &user.email).await?;
            audit::append(&mut tx, now, success_events).await?;
            tx.commit().await?;
            Ok(())
        }
        Err(TotpError::Replayed) => replayed(st, ctx, attempt, user, action).await,
        Err(TotpError::Invalid) => {
            let event = NewEvent::new(action, Outcome::Failure, actor)
                .target("user", user.id)
                .reason("wrong code");
            fail_attempt(st, ctx, attempt, Some(user.id), event).await?;
            Err(AppError::Unauthorized(TotpError::Invalid.to_string()))
        }
    }
}

async fn replayed(
    st: &AppState,
    ctx: &RequestCtx,
    attempt: Attempt,
    user: &UserRow,
    action: Action,
) -> Result<(), AppError> {
    let event = NewEvent::new(action, Outcome::Denied, ctx.actor_for(Some(user.id)))
        .target("user", user.id)
        .reason("code replayed: its time step was already used")
        .details(json!({ "replay": true }));
    fail_attempt(st, ctx, attempt, Some(user.id), event).await?;
    Err(AppError::Unauthorized(TotpError::Replayed.to_string()))
}

// ---------------------------------------------------------------- step-up

/// How recently a passkey must have been used for an action that always
/// asks for a new second factor (breaking the glass).
const PASSKEY_JUST_USED: Millis = MINUTE;

/// Sensitive actions need a second factor given within the last five
/// minutes: either the session has one that fresh, or `code` is an
/// authenticator code. When the employee's access requires a passkey
/// (`ctx.passkey_required`) only a passkey counts, and a code is refused.
pub async fn step_up(
    st: &AppState,
    ctx: &RequestCtx,
    session: &Session,
    code: &str,
    purpose: &str,
) -> Result<(), AppError> {
    let auth = ctx.full()?;
    let last = if ctx.passkey_required {
        auth.passkey_at
    } else {
        auth.mfa_at
    };
    if step_up_fresh(last, st.clock.now()) {
        return Ok(());
    }
    if ctx.passkey_required {
        return Err(AppError::Unauthorized(PASSKEY_NEEDED.into()));
    }
    if code.trim().is_empty() {
        return Err(AppError::Unauthorized(
            "Enter a code from your authenticator app (or use your passkey) to confirm: your last one is more \
             than 5 minutes old."
                .into(),
        ));
    }
    confirm_code(st, ctx, session, code, purpose, false).await
}

const PASSKEY_NEEDED: &str = "Confirm with your passkey: your access requires one, and an authenticator code alone \
                              no longer counts.";

/// Checks a new second factor whatever the age of the last one (an action
/// that always needs one, such as breaking the glass): an authenticator
/// code, or a passkey used in this session within the last minute. With
/// `passkey_required` only the passkey counts.
pub async fn confirm_code(
    st: &AppState,
    ctx: &RequestCtx,
    session: &Session,
    code: &str,
    purpose: &str,
    passkey_required: bool,
) -> Result<(), AppError> {
    let auth = ctx.full()?.clone();
    let now = st.clock.now();
    let passkey_just_used = auth.passkey_at.is_some_and(|t| t <= now && now - t < PASSKEY_JUST_USED);
    if code.trim().is_empty() && passkey_just_used {
        return Ok(());
    }
    if passkey_required {
        return Err(AppError::Unauthorized(PASSKEY_NEEDED.into()));
    }
    if code.trim().is_empty() {
        return Err(AppError::Unauthorized(
            "Enter a code from your authenticator app (or use your passkey) to confirm.".into(),
        ));
    }
    let user = accounts::active(st.db.pool(), auth.user_id).await?;
    let ok = NewEvent::new(Action::StepUp, Outcome::Success, ctx.actor())
        .target("user", user.id)
        .details(json!({ "for": purpose, "method": "totp" }));
    check_totp(st, ctx, &user, code, Action::StepUp, vec![ok]).await?;
    set_auth(
        session,
        &AuthState {
            mfa_at: Some(now),
            last_seen: now,
            ..auth
        },
    )
    .await
}

/// Step-up with a passkey: the answer to `passkeys::assertion::options`
/// makes this session's second factor fresh (for `purpose`).
pub async fn passkey_step_up(
    st: &AppState,
    ctx: &RequestCtx,
    session: &Session,
    credential: &str,
    purpose: &str,
) -> Result<(), AppError> {
    let auth = ctx.full()?.clone();
    let purpose = purpose.trim();
    if purpose.is_empty() || purpose.chars().count() > 60 || purpose.chars().any(char::is_control) {
        return Err(AppError::Validation("Say what the passkey confirms.".into()));
    }
    let now = st.clock.now();
    passkeys::assertion::finish(st, ctx, session, credential, purpose, |u| {
        Ok(vec![NewEvent::new(Action::StepUp, Outcome::Success, ctx.actor())
            .target("user", u.user.id)
            .details(json!({ "for": purpose, "method": "passkey" }))])
    })
    .await?;
    set_auth(
        session,
        &AuthState {
            mfa_at: Some(now),
            passkey_at: Some(now),
            last_seen: now,
            ..auth
        },
    )
    .await
}
