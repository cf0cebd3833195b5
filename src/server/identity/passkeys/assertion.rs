//! Using a passkey: the options for `navigator.credentials.get()` and the
//! check of the authenticator's answer. With an employee known (the second
//! step of sign-in, step-up) the options name their passkeys; without one
//! (passwordless sign-in) the authenticator offers its discoverable
//! credentials and the answer says whose it is. User verification is
//! required either way (webauthn-rs asks for it and refuses an answer
//! without it). A use updates the passkey's counter and last use and is
//! recorded in the same transaction as what it unlocked; a refusal is
//! recorded, and a counter that went backwards raises the clone alert.

use super::{credential_hash, from_row, webauthn, Stored, CEREMONY, COLS};
use crate::domain::actions::Action;
use crate::domain::{
    audit::{NewEvent, Outcome},
    passkeys::{self as rules, Counter},
    Millis,
};
use crate::errors::AppError;
use crate::server::{
    audit,
    identity::{accounts, sessions::session_err},
    platform::{
        db::WriteTx,
        request::{RequestCtx, Stage},
    },
    state::AppState,
};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD as B64, Engine};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tower_sessions::Session;
use webauthn_rs::prelude::{
    AuthenticationResult, DiscoverableAuthentication, DiscoverableKey, PasskeyAuthentication, PublicKeyCredential,
    WebauthnError,
};

const AUTHENTICATION_KEY: &str = "passkey_authentication";

#[derive(Serialize, Deserialize)]
enum Ceremony {
    /// For one employee's passkeys.
    Known { user_id: i64, state: PasskeyAuthentication },
    /// Any discoverable passkey (passwordless sign-in).
    Discoverable(DiscoverableAuthentication),
}

#[derive(Serialize, Deserialize)]
struct Pending {
    ceremony: Ceremony,
    at: Millis,
}

/// The employee a passkey was just used by.
#[derive(Debug)]
pub struct Used {
    pub user: accounts::UserRow,
    pub passkey_id: i64,
    pub user_verified: bool,
}

/// Starts using a passkey: for the employee of this session when there is
/// one (at the second step of sign-in, or signed in for step-up), else
/// for passwordless sign-in. Returns the options as JSON.
pub async fn options(st: &AppState, ctx: &RequestCtx, session: &Session) -> Result<String, AppError> {
    let w = webauthn(st)?;
    let (json, ceremony) = match &ctx.auth {
        Some(auth) if matches!(auth.stage, Stage::NeedsCode | Stage::Full) => {
            let keys: Vec<_> = super::of_user(st.db.pool(), auth.user_id)
                .await?
                .into_iter()
                .map(|p| p.passkey)
                .collect();
            if keys.is_empty() {
                return Err(AppError::Conflict(
                    "You have no passkey yet: add one on the Security page.".into(),
                ));
            }
            let (rcr, state) = w
                .start_passkey_authentication(&keys)
                .map_err(|e| crate::errors::internal(format_args!("passkey options: {e:?}")))?;
            (
                serde_json::to_string(&rcr),
                Ceremony::Known {
                    user_id: auth.user_id,
                    state,
                },
            )
        }
        Some(_) => return Err(AppError::Unauthorized("Finish signing in first.".into())),
        None => {
            let (mut rcr, state) = w
                .start_discoverable_authentication()
                .map_err(|e| crate::errors::internal(format_args!("passkey options: {e:?}")))?;
            // A button press, not the autofill prompt.
            rcr.mediation = None;
            (serde_json::to_string(&rcr), Ceremony::Discoverable(state))
        }
    };
    let json = json.map_err(|e| crate::errors::internal(format_args!("passkey options: {e}")))?;
    let pending = Pending {
        ceremony,
        at: st.clock.now(),
    };
    session.insert(AUTHENTICATION_KEY, pending).await.map_err(session_err)?;
    Ok(json)
}

/// The answer could not be used: the message for the user.
const NOT_ACCEPTED: &str = "The passkey was not accepted. Try again, or use another way to confirm.";

/// Checks the authenticator's answer (`credential`, the JSON of the
/// `PublicKeyCredential`) to the options this session was given. On
/// success the passkey's counter and last use are stored and `events(used)`
/// appended with the `passkey.used` event in one transaction; `purpose`
/// names what the passkey was used for.
pub async fn finish<F>(
    st: &AppState,
    ctx: &RequestCtx,
    session: &Session,
    credential: &str,
    purpose: &str,
    events: F,
) -> Result<Used, AppError>
where
    F: FnOnce(&Used) -> Result<Vec<NewEvent>, AppError>,
{
    let w = webauthn(st)?;
    let now = st.clock.now();
    let pending: Option<Pending> = session.remove(AUTHENTICATION_KEY).await.map_err(session_err)?;
    let pending = match pending {
        Some(p) if p.at <= now && now - p.at < CEREMONY => p,
        _ => {
            return Err(AppError::Conflict(
                "The passkey request has expired or was not started here: try again.".into(),
            ))
        }
    };
    let refused = |user: Option<i64>, reason: String, details: serde_json::Value| {
        let mut e = NewEvent::new(Action::PasskeyUse, Outcome::Failure, ctx.actor_for(user))
            .reason(reason)
            .details(details);
        if let Some(u) = user {
            e = e.target("user", u);
        }
        e
    };
    let answer: PublicKeyCredential = match serde_json::from_str(credential) {
        Ok(a) => a,
        Err(_) => return Err(AppError::Validation("The authenticator's answer is malformed.".into())),
    };
    let known_user = match &pending.ceremony {
        Ceremony::Known { user_id, .. } => Some(*user_id),
        Ceremony::Discoverable(_) => None,
    };
    // Whose passkey it is: the stored one with this credential id.
    let hash = credential_hash(answer.raw_id.as_ref());
    let stored = by_hash(st, &hash).await?;
    let stored = match stored {
        Some(s) if known_user.is_none_or(|u| u == s.user_id) => s,
        other => {
            let user = known_user.or(other.map(|s| s.user_id));
            let e = refused(user, "unknown passkey".into(), json!({ "for": purpose }));
            st.recorder.record(now, e).await?;
            return Err(AppError::Unauthorized(NOT_ACCEPTED.into()));
        }
    };
    let about = json!({ "passkey_id": stored.id, "for": purpose });
    let result = match &pending.ceremony {
        Ceremony::Known { state, .. } => w.finish_passkey_authentication(&answer, state),
        Ceremony::Discoverable(state) => {
            // The answer's user handle must be the one this passkey was made with.
            let handle_ok = w
                .identify_discoverable_authentication(&answer)
                .is_ok_and(|(uuid, _)| B64.encode(uuid.as_bytes()) == stored.user_handle);
            if !handle_ok {
                let e = refused(Some(stored.user_id), "user handle does not match".into(), about);
                st.recorder.record(now, e).await?;
                return Err(AppError::Unauthorized(NOT_ACCEPTED.into()));
            }
            w.finish_discoverable_authentication(&answer, state.clone(), &[DiscoverableKey::from(&stored.passkey)])
        }
    };
    let result = match result {
        Ok(r) => r,
        Err(WebauthnError::CredentialPossibleCompromise) => return possible_clone(st, ctx, &stored, purpose).await,
        Err(e) => {
            // The library's error names the failed check, never key material.
            let e = refused(Some(stored.user_id), format!("{e:?}"), about);
            st.recorder.record(now, e).await?;
            return Err(AppError::Unauthorized(NOT_ACCEPTED.into()));
        }
    };
    if rules::counter(stored_counter(&stored), result.counter()) == Counter::PossibleClone {
        return possible_clone(st, ctx, &stored, purpose).await;
    }
    let user = match accounts::active(st.db.pool(), stored.user_id).await {
        Ok(u) => u,
        Err(e) => {
            let event = refused(Some(stored.user_id), "account not active".into(), about);
            st.recorder.record(now, event).await?;
            return Err(e);
        }
    };
    let used = Used {
        user,
        passkey_id: stored.id,
        user_verified: result.user_verified(),
    };
    // What the passkey was to unlock may still be refused (a policy): the
    // use is then recorded as refused, with the reason.
    let mut events = match events(&used) {
        Ok(events) => events,
        Err(e) => {
            st.recorder
                .record(now, refused(Some(stored.user_id), e.to_string(), about))
                .await?;
            return Err(e);
        }
    };
    events.insert(
        0,
        NewEvent::new(
            Action::PasskeyUsed,
            Outcome::Success,
            ctx.actor_for(Some(stored.user_id)),
        )
        .target("user", stored.user_id)
        .details(json!({
            "passkey_id": stored.id,
            "name": stored.name,
            "for": purpose,
            "user_verified": used.user_verified,
            "counter": result.counter(),
        })),
    );
    let mut tx = st.db.begin_write().await?;
    record_use(&mut tx, stored, &result, now).await?;
    audit::append(&mut tx, now, events).await?;
    tx.commit().await?;
    Ok(used)
}

async fn by_hash(st: &AppState, hash: &str) -> Result<Option<Stored>, AppError> {
    let sql = format!("SELECT {COLS} FROM passkeys WHERE credential_hash = ?");
    let row = sqlx::query(&sql).bind(hash).fetch_optional(st.db.pool()).await?;
    row.as_ref().map(from_row).transpose()
}

/// The signature counter stored with a passkey (the library keeps it
/// inside the credential and shows it only in its serialised form).
fn stored_counter(p: &Stored) -> u32 {
    serde_json::to_value(&p.passkey)
        .ok()
        .and_then(|v| v["cred"]["counter"].as_u64())
        .and_then(|c| u32::try_from(c).ok())
        .unwrap_or(0)
}

/// Stores the new counter (and any other change the library reports) and
/// the time of use.
async fn record_use(
    tx: &mut WriteTx,
    mut stored: Stored,
    result: &AuthenticationResult,
    now: Millis,
) -> Result<(), AppError> {
    stored.passkey.update_credential(result);
    let json = serde_json::to_string(&stored.passkey)
        .map_err(|e| crate::errors::internal(format_args!("passkey serialisation: {e}")))?;
    sqlx::query("UPDATE passkeys SET credential = ?, last_used_at = ? WHERE id = ?")
        .bind(json)
        .bind(now)
        .bind(stored.id)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// A signature counter that went backwards: refused, recorded as denied
/// (which raises the `passkey_clone` alert).
async fn possible_clone<T>(st: &AppState, ctx: &RequestCtx, stored: &Stored, purpose: &str) -> Result<T, AppError> {
    let event = NewEvent::new(Action::PasskeyUse, Outcome::Denied, ctx.actor_for(Some(stored.user_id)))
        .target("user", stored.user_id)
        .reason("signature counter went backwards: possibly a cloned authenticator")
        .details(json!({
            "passkey_id": stored.id,
            "name": stored.name,
            "for": purpose,
            "possible_clone": true,
            "stored_counter": stored_counter(stored),
        }));
    st.recorder.record(st.clock.now(), event).await?;
    Err(AppError::Unauthorized(
        "This passkey was refused: it may have been copied. Your administrators have been alerted; use another way \
         to confirm."
            .into(),
    ))
}
