//! Sign-in: the password step, the second factor at sign-in (an
//! authenticator or recovery code), and signing out. Each operation loads
//! what it needs, applies the domain rules, and writes its change and its
//! audit event in one transaction.

use super::{
    accounts,
    mfa::{check_totp, recovery_codes},
    sessions, sso,
    throttle::{self, clear_account_failures, fail_attempt, subjects},
};
use crate::domain::actions::Action;
use crate::domain::{
    audit::{NewEvent, Outcome},
    recovery,
    validation::Email,
};
use crate::errors::AppError;
use crate::server::{
    audit,
    platform::request::{AuthState, RequestCtx, Stage},
    state::AppState,
};
use serde_json::json;
use tower_sessions::Session;

pub const MAX_PASSWORD_INPUT: usize = 1024;

const GENERIC_SIGNIN_FAILURE: &str = "The email or password is not correct.";

// ---------------------------------------------------------------- password step

/// Checks email and password. Unknown emails cost the same Argon2 work and
/// get the same answer as a wrong password.
pub async fn sign_in(
    st: &AppState,
    ctx: &RequestCtx,
    session: &Session,
    email: &str,
    pw: String,
) -> Result<Stage, AppError> {
    let email = Email::parse(email)?;
    if pw.is_empty() {
        return Err(AppError::Validation("Enter your password.".into()));
    }
    if pw.chars().count() > MAX_PASSWORD_INPUT {
        return Err(AppError::Validation("The password is too long.".into()));
    }
    let now = st.clock.now();
    if let Some(sso) = &st.sso {
        if !crate::domain::sso::password_allowed(sso.required, sso.breakglass.as_deref(), email.as_str()) {
            st.recorder
                .record(
                    now,
                    NewEvent::new(Action::SignIn, Outcome::Denied, ctx.actor_for(None))
                        .target("email", email.as_str())
                        .reason("password sign-in while SSO is required"),
                )
                .await?;
            return Err(AppError::Refused(
                "Sign in with your company account (single sign-on).".into(),
            ));
        }
    }
    let user = accounts::by_email(st.db.pool(), email.as_str()).await?;
    let subs = subjects(st, ctx, email.as_str(), user.as_ref().map(|u| u.id));
    let attempt = throttle::begin(st, &subs).await?;

    let ok = match st
        .hasher
        .verify(pw, user.as_ref().and_then(|u| u.password_hash.clone()))
        .await
    {
        Ok(ok) => ok,
        Err(busy) => {
            // Not checked: the attempt does not count against anyone.
            let mut tx = st.db.begin_write().await?;
            attempt.succeeded(&mut tx).await?;
            tx.commit().await?;
            return Err(busy.into());
        }
    };
    let user = match user {
        Some(u) if ok && u.is_active() => u,
        other => {
            let why = match &other {
                None => "unknown email",
                Some(u) if !u.is_active() => "account not active",
                Some(_) => "wrong password",
            };
            let mut event = NewEvent::new(Action::SignIn, Outcome::Failure, ctx.actor_for(None)).reason(why);
            event = match &other {
                Some(u) => event.target("user", u.id),
                None => event.target("email", email.as_str()),
            };
            fail_attempt(st, ctx, attempt, other.as_ref().map(|u| u.id), event).await?;
            return Err(AppError::Unauthorized(GENERIC_SIGNIN_FAILURE.into()));
        }
    };

    let stage = if user.has_totp() {
        Stage::NeedsCode
    } else {
        Stage::NeedsEnrolment
    };
    let mut tx = st.db.begin_write().await?;
    attempt.succeeded(&mut tx).await?;
    audit::append(
        &mut tx,
        st.clock.now(),
        vec![
            NewEvent::new(Action::PasswordAccepted, Outcome::Success, ctx.actor_for(Some(user.id)))
                .target("user", user.id)
                .details(json!({ "next": if user.has_totp() { "totp" } else { "enrolment" } })),
        ],
    )
    .await?;
    tx.commit().await?;
    sessions::rotate(session).await?;
    sessions::set_auth(
        session,
        &AuthState {
            user_id: user.id,
            stage,
            created_at: now,
            last_seen: now,
            mfa_at: None,
        },
    )
    .await?;
    Ok(stage)
}

/// Second step of sign-in with an authenticator code.
pub async fn verify_code(st: &AppState, ctx: &RequestCtx, session: &Session, code: &str) -> Result<(), AppError> {
    let auth = ctx.at_stage(Stage::NeedsCode)?.clone();
    let user = accounts::active(st.db.pool(), auth.user_id).await?;
    let now = st.clock.now();
    let ok = NewEvent::new(Action::SignIn, Outcome::Success, ctx.actor_for(Some(user.id)))
        .target("user", user.id)
        .details(json!({ "method": "password+totp" }));
    check_totp(st, ctx, &user, code, Action::SignInCode, vec![ok]).await?;
    sessions::rotate(session).await?;
    sessions::set_auth(
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

/// Second step of sign-in with a recovery code (each works once).
pub async fn use_recovery_code(
    st: &AppState,
    ctx: &RequestCtx,
    session: &Session,
    code: &str,
) -> Result<usize, AppError> {
    let auth = ctx.at_stage(Stage::NeedsCode)?.clone();
    let user = accounts::active(st.db.pool(), auth.user_id).await?;
    let normalised = recovery::normalise(code);
    if normalised.is_empty() {
        return Err(AppError::Validation("Enter one of your recovery codes.".into()));
    }
    if normalised.len() > 64 {
        return Err(AppError::Validation("That is not a recovery code.".into()));
    }
    let now = st.clock.now();
    let subs = subjects(st, ctx, &user.email, Some(user.id));
    let attempt = throttle::begin(st, &subs).await?;

    let stored = recovery_codes::unused(&st.db, user.id).await?;
    let found = recovery::find_match(&normalised, stored.iter().map(|(_, s, h)| (s.as_slice(), h.as_slice())));
    let Some(index) = found else {
        let event = NewEvent::new(Action::RecoveryCode, Outcome::Failure, ctx.actor_for(Some(user.id)))
            .target("user", user.id)
            .reason("wrong or already used recovery code");
        fail_attempt(st, ctx, attempt, Some(user.id), event).await?;
        return Err(AppError::Unauthorized(
            "That recovery code is not valid or was already used.".into(),
        ));
    };
    let code_id = stored[index].0;
    let remaining = stored.len() - 1;
    let mut tx = st.db.begin_write().await?;
    if !recovery_codes::mark_used(&mut tx, code_id, now).await? {
        // Used by a concurrent request meanwhile: this attempt failed.
        drop(tx);
        let event = NewEvent::new(Action::RecoveryCode, Outcome::Failure, ctx.actor_for(Some(user.id)))
            .target("user", user.id)
            .reason("recovery code used by a concurrent request");
        fail_attempt(st, ctx, attempt, Some(user.id), event).await?;
        return Err(AppError::Unauthorized(
            "That recovery code is not valid or was already used.".into(),
        ));
    }
    attempt.succeeded(&mut tx).await?;
    clear_account_failures(&mut tx, &user.email).await?;
    audit::append(
        &mut tx,
        now,
        vec![
            NewEvent::new(Action::RecoveryCode, Outcome::Success, ctx.actor_for(Some(user.id)))
                .target("user", user.id)
                .details(json!({ "remaining": remaining })),
            NewEvent::new(Action::SignIn, Outcome::Success, ctx.actor_for(Some(user.id)))
                .target("user", user.id)
                .details(json!({ "method": "password+recovery_code" })),
        ],
    )
    .await?;
    tx.commit().await?;
    sessions::rotate(session).await?;
    // A recovery code is not a fresh TOTP: step-up will still ask for one.
    sessions::set_auth(
        session,
        &AuthState {
            stage: Stage::Full,
            mfa_at: None,
            last_seen: now,
            ..auth
        },
    )
    .await?;
    Ok(remaining)
}

// ---------------------------------------------------------------- sign-out and expiry

/// Ends this session; returns the provider's end-session URL when this was
/// a single sign-on session and the provider offers RP-initiated logout.
pub async fn sign_out(st: &AppState, ctx: &RequestCtx, session: &Session) -> Result<Option<String>, AppError> {
    let id_token: Option<String> = session.get(sso::ID_TOKEN_KEY).await.ok().flatten();
    if let Some(auth) = &ctx.auth {
        st.recorder
            .record(
                st.clock.now(),
                NewEvent::new(Action::SignOut, Outcome::Success, ctx.actor()).target("user", auth.user_id),
            )
            .await?;
    }
    session.delete().await.map_err(sessions::session_err)?;
    Ok(sso::logout_url(st, id_token))
}

/// Ends every session of the signed-in user, this one included.
pub async fn sign_out_everywhere(st: &AppState, ctx: &RequestCtx, session: &Session) -> Result<u64, AppError> {
    let auth = ctx.full()?;
    let now = st.clock.now();
    let mut tx = st.db.begin_write().await?;
    let ended = sessions::delete_all_for_user(&mut tx, auth.user_id).await?;
    audit::append(
        &mut tx,
        now,
        vec![NewEvent::new(Action::SignOutEverywhere, Outcome::Success, ctx.actor())
            .target("user", auth.user_id)
            .details(json!({ "sessions_ended": ended }))],
    )
    .await?;
    tx.commit().await?;
    session.clear().await;
    let _ = session.delete().await;
    Ok(ended)
}
