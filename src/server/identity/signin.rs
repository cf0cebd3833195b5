//! Sign-in: the password step, the second factor at sign-in (an
//! authenticator or recovery code), and signing out. Each operation loads
//! what it needs, applies the domain rules, and writes its change and its
//! audit event in one transaction.

use super::{
    accounts,
    mfa::{check_totp, recovery_codes},
    passkeys, sessions, sso,
    throttle::{self, clear_account_failures, fail_attempt, subjects},
};
use crate::domain::actions::Action;
use crate::domain::{
    audit::{NewEvent, Outcome},
    passkeys::{self as rules, Factor, FactorRefusal},
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
            passkey_at: None,
        },
    )
    .await?;
    Ok(stage)
}

/// Where a code at the second step leads when the employee's access
/// requires a passkey (`ctx.passkey_required`): refused when they have one
/// (they must use it), or on to registering one when they have none.
async fn code_allowed(st: &AppState, ctx: &RequestCtx, user_id: i64, method: &str) -> Result<Stage, AppError> {
    let Err(refusal) = rules::second_factor(Factor::Totp, ctx.passkey_required) else {
        return Ok(Stage::Full);
    };
    if passkeys::of_user(st.db.pool(), user_id).await?.is_empty() {
        return Ok(Stage::NeedsPasskey);
    }
    st.recorder
        .record(
            st.clock.now(),
            NewEvent::new(Action::SignIn, Outcome::Denied, ctx.actor_for(Some(user_id)))
                .target("user", user_id)
                .reason(format!("{method} refused: the access requires a passkey")),
        )
        .await?;
    Err(AppError::Refused(refusal.to_string()))
}

/// Second step of sign-in with an authenticator code. Returns the stage
/// reached: signed in, or (passkey required, none registered) registering
/// a passkey.
pub async fn verify_code(st: &AppState, ctx: &RequestCtx, session: &Session, code: &str) -> Result<Stage, AppError> {
    let auth = ctx.at_stage(Stage::NeedsCode)?.clone();
    let user = accounts::active(st.db.pool(), auth.user_id).await?;
    let next = code_allowed(st, ctx, user.id, "authenticator code").await?;
    let now = st.clock.now();
    let ok = if next == Stage::Full {
        NewEvent::new(Action::SignIn, Outcome::Success, ctx.actor_for(Some(user.id)))
            .target("user", user.id)
            .details(json!({ "method": "password+totp" }))
    } else {
        NewEvent::new(Action::SignInCode, Outcome::Success, ctx.actor_for(Some(user.id)))
            .target("user", user.id)
            .details(json!({ "next": "passkey registration" }))
    };
    check_totp(st, ctx, &user, code, Action::SignInCode, vec![ok]).await?;
    sessions::rotate(session).await?;
    sessions::set_auth(
        session,
        &AuthState {
            stage: next,
            mfa_at: (next == Stage::Full).then_some(now),
            last_seen: now,
            ..auth
        },
    )
    .await?;
    Ok(next)
}

/// The second step of sign-in with a passkey (after the password or single
/// sign-on), or, with no session, passwordless sign-in with a discoverable
/// passkey that verified its user (it then counts as both factors).
pub async fn passkey(st: &AppState, ctx: &RequestCtx, session: &Session, credential: &str) -> Result<(), AppError> {
    let now = st.clock.now();
    let (auth, method) = match &ctx.auth {
        Some(a) if a.stage == Stage::NeedsCode => (Some(a.clone()), "password+passkey"),
        None => (None, "passkey"),
        Some(_) => return Err(AppError::Conflict("You are already signed in.".into())),
    };
    let purpose = if auth.is_some() {
        "sign-in"
    } else {
        "passwordless sign-in"
    };
    let used = passkeys::assertion::finish(st, ctx, session, credential, purpose, |u| {
        if auth.is_none() {
            if !rules::passwordless(u.user_verified) {
                return Err(AppError::Unauthorized(FactorRefusal::UserNotVerified.to_string()));
            }
            if let Some(sso) = &st.sso {
                if !crate::domain::sso::password_allowed(sso.required, sso.breakglass.as_deref(), &u.user.email) {
                    return Err(AppError::Refused(
                        "Sign in with your company account (single sign-on).".into(),
                    ));
                }
            }
        }
        Ok(vec![NewEvent::new(
            Action::SignIn,
            Outcome::Success,
            ctx.actor_for(Some(u.user.id)),
        )
        .target("user", u.user.id)
        .details(json!({ "method": method, "user_verified": u.user_verified }))])
    })
    .await?;
    sessions::rotate(session).await?;
    let auth = match auth {
        Some(a) => AuthState {
            stage: Stage::Full,
            mfa_at: Some(now),
            passkey_at: Some(now),
            last_seen: now,
            ..a
        },
        None => AuthState {
            user_id: used.user.id,
            stage: Stage::Full,
            created_at: now,
            last_seen: now,
            mfa_at: Some(now),
            passkey_at: Some(now),
        },
    };
    sessions::set_auth(session, &auth).await
}

/// A signed-in session of an employee whose access now requires a passkey
/// and who has not used one in it (the session began before the policy or
/// the power, or by single sign-on trusted without Gatehouse's factor):
/// back to the second step of sign-in, or to registering a passkey.
/// Returns the stage the session is now at.
pub async fn passkey_now(st: &AppState, ctx: &RequestCtx, session: &Session) -> Result<Stage, AppError> {
    let auth = ctx.full()?.clone();
    let none = passkeys::of_user(st.db.pool(), auth.user_id).await?.is_empty();
    let stage = if none { Stage::NeedsPasskey } else { Stage::NeedsCode };
    st.recorder
        .record(
            st.clock.now(),
            NewEvent::new(Action::StepUp, Outcome::Denied, ctx.actor())
                .target("user", auth.user_id)
                .reason("session without a passkey; the access requires one")
                .details(json!({ "passkey_required": true })),
        )
        .await?;
    sessions::set_auth(
        session,
        &AuthState {
            stage,
            mfa_at: None,
            ..auth
        },
    )
    .await?;
    Ok(stage)
}

/// After registering a first passkey at `Stage::NeedsPasskey`: the new
/// passkey, not the code that came before it, completes the sign-in.
pub async fn registered_first_passkey(ctx: &RequestCtx, session: &Session) -> Result<bool, AppError> {
    match &ctx.auth {
        Some(a) if a.stage == Stage::NeedsPasskey => {
            sessions::set_auth(
                session,
                &AuthState {
                    stage: Stage::NeedsCode,
                    ..a.clone()
                },
            )
            .await?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// Second step of sign-in with a recovery code (each works once). Returns
/// the codes left and the stage reached (as for `verify_code`).
pub async fn use_recovery_code(
    st: &AppState,
    ctx: &RequestCtx,
    session: &Session,
    code: &str,
) -> Result<(usize, Stage), AppError> {
    let auth = ctx.at_stage(Stage::NeedsCode)?.clone();
    let user = accounts::active(st.db.pool(), auth.user_id).await?;
    let next = code_allowed(st, ctx, user.id, "recovery code").await?;
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
        [
            NewEvent::new(Action::RecoveryCode, Outcome::Success, ctx.actor_for(Some(user.id)))
                .target("user", user.id)
                .details(json!({ "remaining": remaining })),
            NewEvent::new(Action::SignIn, Outcome::Success, ctx.actor_for(Some(user.id)))
                .target("user", user.id)
                .details(json!({ "method": "password+recovery_code" })),
        ]
        .into_iter()
        .take(if next == Stage::Full { 2 } else { 1 })
        .collect(),
    )
    .await?;
    tx.commit().await?;
    sessions::rotate(session).await?;
    // A recovery code is not a fresh TOTP: step-up will still ask for one.
    sessions::set_auth(
        session,
        &AuthState {
            stage: next,
            mfa_at: None,
            last_seen: now,
            ..auth
        },
    )
    .await?;
    Ok((remaining, next))
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
