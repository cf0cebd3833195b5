//! Setting up an authenticator, and the recovery codes issued with it.

use super::{check_totp, recovery_codes, ISSUER, SECRET_BYTES};
use crate::domain::actions::Action;
use crate::domain::{
    audit::{NewEvent, Outcome},
    totp,
    validation::OtpCode,
};
use crate::errors::AppError;
use crate::server::{
    audit,
    identity::{
        accounts,
        sessions::{rotate, set_auth},
        throttle::{self, clear_account_failures, fail_attempt, subjects},
    },
    platform::{
        crypto,
        db::WriteTx,
        request::{AuthState, RequestCtx, Stage},
    },
    state::AppState,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tower_sessions::Session;

// ---------------------------------------------------------------- enrolment

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Enrolment {
    pub key: String,
    pub uri: String,
    pub qr_svg: String,
}

/// The pending authenticator secret of a user who must enrol, created on
/// first view and kept (encrypted) until confirmed.
pub async fn enrolment(st: &AppState, ctx: &RequestCtx) -> Result<Enrolment, AppError> {
    let auth = ctx.at_stage(Stage::NeedsEnrolment)?;
    let user = accounts::active(st.db.pool(), auth.user_id).await?;
    let context = format!("totp-pending:{}", user.id);
    let secret = match user.totp_pending_enc.as_deref().and_then(|s| st.key.open(&context, s)) {
        Some(s) => s,
        None => {
            let secret = crypto::random_bytes::<SECRET_BYTES>().to_vec();
            let mut tx = st.db.begin_write().await?;
            accounts::set_pending_totp(&mut tx, user.id, &st.key.seal(&context, &secret), st.clock.now()).await?;
            tx.commit().await?;
            secret
        }
    };
    let key = super::base32(&secret);
    let uri = totp::otpauth_uri(ISSUER, &user.email, &key);
    Ok(Enrolment {
        key: super::grouped(&key),
        qr_svg: super::qr_svg(&uri),
        uri,
    })
}

/// Keeps freshly generated recovery codes, encrypted, until the page that
/// shows them once has read them. Kept on the user row (not in the session,
/// which concurrent requests rewrite), in the transaction that created them.
async fn stash_codes(st: &AppState, tx: &mut WriteTx, user_id: i64, codes: &[String]) -> Result<(), sqlx::Error> {
    let sealed = st
        .key
        .seal(&format!("recovery-reveal:{user_id}"), codes.join("\n").as_bytes());
    accounts::stash_recovery_codes(tx, user_id, &sealed).await
}

/// Returns the recovery codes waiting to be shown and forgets them.
pub async fn take_stashed_codes(st: &AppState, ctx: &RequestCtx) -> Result<Vec<String>, AppError> {
    let auth = ctx.full()?;
    let mut tx = st.db.begin_write().await?;
    let sealed = accounts::take_recovery_codes(&mut tx, auth.user_id).await?;
    if sealed.is_none() {
        return Ok(Vec::new());
    }
    tx.commit().await?;
    Ok(sealed
        .and_then(|s| st.key.open(&format!("recovery-reveal:{}", auth.user_id), &s))
        .and_then(|b| String::from_utf8(b).ok())
        .map(|s| s.lines().map(str::to_owned).collect())
        .unwrap_or_default())
}

/// Confirms enrolment with a code from the new authenticator: the secret
/// becomes active, ten recovery codes are issued, and sign-in completes.
pub async fn confirm_enrolment(st: &AppState, ctx: &RequestCtx, session: &Session, code: &str) -> Result<(), AppError> {
    let auth = ctx.at_stage(Stage::NeedsEnrolment)?.clone();
    let user = accounts::active(st.db.pool(), auth.user_id).await?;
    let code = OtpCode::parse(code)?;
    let now = st.clock.now();
    let subs = subjects(st, ctx, &user.email, Some(user.id));
    let attempt = throttle::begin(st, &subs).await?;
    let pending = user
        .totp_pending_enc
        .as_deref()
        .and_then(|s| st.key.open(&format!("totp-pending:{}", user.id), s))
        .ok_or_else(|| AppError::Conflict("Reload the page to get a new QR code, then try again.".into()))?;
    let step = match totp::verify(code.as_str(), now, None, |s| super::code_for_step(&pending, s)) {
        Ok(step) => step,
        Err(_) => {
            let event = NewEvent::new(Action::EnrolRefused, Outcome::Failure, ctx.actor_for(Some(user.id)))
                .target("user", user.id)
                .reason("wrong confirmation code");
            fail_attempt(st, ctx, attempt, Some(user.id), event).await?;
            return Err(AppError::Unauthorized(
                "That code is not correct. Check that your device's clock is right and enter the current code.".into(),
            ));
        }
    };
    let mut tx = st.db.begin_write().await?;
    let sealed = st.key.seal(&format!("totp:{}", user.id), &pending);
    if !accounts::confirm_totp(&mut tx, user.id, &sealed, step, now).await? {
        return Err(AppError::Conflict(
            "An authenticator is already set up for this account.".into(),
        ));
    }
    let codes = recovery_codes::replace(&mut tx, user.id, now).await?;
    stash_codes(st, &mut tx, user.id, &codes).await?;
    attempt.succeeded(&mut tx).await?;
    clear_account_failures(&mut tx, &user.email).await?;
    audit::append(
        &mut tx,
        now,
        vec![
            NewEvent::new(Action::Enrolled, Outcome::Success, ctx.actor_for(Some(user.id)))
                .target("user", user.id)
                .details(json!({ "method": "totp", "recovery_codes": codes.len() })),
            NewEvent::new(Action::SignIn, Outcome::Success, ctx.actor_for(Some(user.id)))
                .target("user", user.id)
                .details(json!({ "method": "password+totp_enrolment" })),
        ],
    )
    .await?;
    tx.commit().await?;
    rotate(session).await?;
    set_auth(
        session,
        &AuthState {
            stage: Stage::Full,
            mfa_at: Some(now),
            last_seen: now,
            ..auth
        },
    )
    .await
}

/// Replaces the recovery codes after a fresh TOTP code; the old set stops
/// working at once.
pub async fn regenerate_recovery_codes(
    st: &AppState,
    ctx: &RequestCtx,
    session: &Session,
    code: &str,
) -> Result<(), AppError> {
    let auth = ctx.full()?.clone();
    let user = accounts::active(st.db.pool(), auth.user_id).await?;
    check_totp(st, ctx, &user, code, Action::StepUp, vec![]).await?;
    let now = st.clock.now();
    let mut tx = st.db.begin_write().await?;
    let codes = recovery_codes::replace(&mut tx, user.id, now).await?;
    stash_codes(st, &mut tx, user.id, &codes).await?;
    audit::append(
        &mut tx,
        now,
        vec![NewEvent::new(
            Action::RecoveryCodesRegenerated,
            Outcome::Success,
            ctx.actor_for(Some(user.id)),
        )
        .target("user", user.id)
        .details(json!({ "recovery_codes": codes.len(), "previous_set": "voided" }))],
    )
    .await?;
    tx.commit().await?;
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
