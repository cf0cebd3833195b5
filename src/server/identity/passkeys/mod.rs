//! Passkeys and security keys (the table `passkeys`): registering one
//! (WebAuthn with user verification required, resident keys preferred,
//! attestation `none`), each employee's list, and removal. The ceremonies
//! are webauthn-rs's; the rules are `domain::passkeys`.

use crate::domain::actions::Action;
use crate::domain::{
    audit::{NewEvent, Outcome},
    passkeys as rules, Millis, MINUTE,
};
use crate::errors::AppError;
use crate::server::{
    audit,
    identity::{accounts, sessions::session_err},
    platform::{
        crypto::{random_bytes, sha256_hex},
        db::text,
        request::{AuthState, RequestCtx, Stage},
    },
    state::AppState,
};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD as B64, Engine};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::Row;
use tower_sessions::Session;
use webauthn_rs::prelude::{
    Passkey, PasskeyRegistration, RegisterPublicKeyCredential, Uuid, Webauthn, WebauthnBuilder,
};

pub mod assertion;

/// At most this many passkeys per employee.
pub const MAX_PER_EMPLOYEE: usize = 10;
/// A ceremony's answer must come within this long of its options.
const CEREMONY: Millis = 5 * MINUTE;
const REGISTRATION_KEY: &str = "passkey_registration";

/// A registered passkey.
#[derive(Debug, Clone)]
pub struct Stored {
    pub id: i64,
    pub user_id: i64,
    pub user_handle: String,
    pub name: String,
    pub passkey: Passkey,
    pub created_at: Millis,
    pub last_used_at: Option<Millis>,
}

/// The relying party, or why passkeys are off (409: the server is not set
/// up for them).
pub fn webauthn(st: &AppState) -> Result<Webauthn, AppError> {
    let rp = st
        .config
        .passkeys
        .as_ref()
        .map_err(|why| AppError::Conflict(why.clone()))?;
    WebauthnBuilder::new(&rp.rp_id, &rp.origin)
        .and_then(|b| b.rp_name("Gatehouse").build())
        .map_err(|e| crate::errors::internal(format_args!("WebAuthn relying party {}: {e:?}", rp.rp_id)))
}

fn credential_hash(cred_id: &[u8]) -> String {
    sha256_hex(cred_id)
}

fn from_row(r: &sqlx::any::AnyRow) -> Result<Stored, AppError> {
    let id: i64 = r.try_get("id")?;
    let passkey = serde_json::from_str(&text(r, "credential")?)
        .map_err(|e| crate::errors::internal(format_args!("passkey {id} is unreadable: {e}")))?;
    Ok(Stored {
        id,
        user_id: r.try_get("user_id")?,
        user_handle: text(r, "user_handle")?,
        name: text(r, "name")?,
        passkey,
        created_at: r.try_get("created_at")?,
        last_used_at: r.try_get("last_used_at")?,
    })
}

const COLS: &str = "id, user_id, user_handle, name, credential, created_at, last_used_at";

/// An employee's passkeys, oldest first.
pub async fn of_user(pool: &sqlx::AnyPool, user_id: i64) -> Result<Vec<Stored>, AppError> {
    let sql = format!("SELECT {COLS} FROM passkeys WHERE user_id = ? ORDER BY id");
    let rows = sqlx::query(&sql).bind(user_id).fetch_all(pool).await?;
    rows.iter().map(from_row).collect()
}

/// Who may register a passkey: a signed-in employee, or one whose access
/// requires a passkey and who has none yet (see `Stage::NeedsPasskey`).
fn registrant(ctx: &RequestCtx) -> Result<&AuthState, AppError> {
    match &ctx.auth {
        Some(a) if a.stage == Stage::NeedsPasskey => Ok(a),
        _ => ctx.full(),
    }
}

/// A registration waiting for the authenticator's answer, in the session.
#[derive(Serialize, Deserialize)]
struct Pending {
    state: PasskeyRegistration,
    user_id: i64,
    user_handle: String,
    at: Millis,
}

/// Starts registering a passkey for the signed-in employee: the options
/// for `navigator.credentials.create()` (JSON), its state kept in the
/// session. Credentials already registered are excluded.
pub async fn registration_options(st: &AppState, ctx: &RequestCtx, session: &Session) -> Result<String, AppError> {
    let auth = registrant(ctx)?;
    let w = webauthn(st)?;
    let user = accounts::active(st.db.pool(), auth.user_id).await?;
    let existing = of_user(st.db.pool(), user.id).await?;
    if existing.len() >= MAX_PER_EMPLOYEE {
        return Err(AppError::Validation(format!(
            "You have {MAX_PER_EMPLOYEE} passkeys: remove one before adding another."
        )));
    }
    let user_handle = existing
        .first()
        .map(|p| p.user_handle.clone())
        .unwrap_or_else(|| B64.encode(random_bytes::<16>()));
    let uuid = B64
        .decode(&user_handle)
        .ok()
        .and_then(|b| Uuid::from_slice(&b).ok())
        .ok_or_else(|| crate::errors::internal(format_args!("user {}'s passkey handle is unreadable", user.id)))?;
    let exclude = existing.iter().map(|p| p.passkey.cred_id().clone()).collect();
    let (options, state) = w
        .start_passkey_registration(uuid, &user.email, &user.display_name, Some(exclude))
        .map_err(|e| crate::errors::internal(format_args!("passkey registration options: {e:?}")))?;
    let mut options =
        serde_json::to_value(&options).map_err(|e| crate::errors::internal(format_args!("passkey options: {e}")))?;
    // Resident keys preferred (the library asks for none): a discoverable
    // credential also signs in without a password, and a security key
    // without room for one still registers.
    options["publicKey"]["authenticatorSelection"]["residentKey"] = json!("preferred");
    options["publicKey"]["authenticatorSelection"]["requireResidentKey"] = json!(false);
    let pending = Pending {
        state,
        user_id: user.id,
        user_handle,
        at: st.clock.now(),
    };
    session.insert(REGISTRATION_KEY, pending).await.map_err(session_err)?;
    Ok(options.to_string())
}

/// Finishes a registration with the authenticator's answer (the JSON of
/// the `PublicKeyCredential`, binary fields in base64url) and names the
/// passkey. Returns its id. A refused answer is recorded and writes nothing.
pub async fn register(
    st: &AppState,
    ctx: &RequestCtx,
    session: &Session,
    name: &str,
    credential: &str,
) -> Result<i64, AppError> {
    let auth = registrant(ctx)?;
    let w = webauthn(st)?;
    let name = rules::name(name).map_err(|m| AppError::Validation(m.into()))?;
    let now = st.clock.now();
    let pending: Option<Pending> = session.remove(REGISTRATION_KEY).await.map_err(session_err)?;
    let pending = match pending {
        Some(p) if p.user_id == auth.user_id && now - p.at < CEREMONY && p.at <= now => p,
        _ => {
            return Err(AppError::Conflict(
                "The registration has expired or was not started here: add the passkey again.".into(),
            ))
        }
    };
    let refused = |reason: String| {
        NewEvent::new(Action::PasskeyRegister, Outcome::Failure, ctx.actor())
            .target("user", auth.user_id)
            .reason(reason)
    };
    let answer: RegisterPublicKeyCredential = match serde_json::from_str(credential) {
        Ok(a) => a,
        Err(_) => {
            st.recorder
                .record(now, refused("malformed authenticator answer".into()))
                .await?;
            return Err(AppError::Validation("The authenticator's answer is malformed.".into()));
        }
    };
    // One of the employee's own (excluded from the options, which an
    // authenticator may ignore): say so rather than "not accepted".
    let raw_id: &[u8] = answer.raw_id.as_ref();
    if of_user(st.db.pool(), auth.user_id)
        .await?
        .iter()
        .any(|p| AsRef::<[u8]>::as_ref(p.passkey.cred_id()) == raw_id)
    {
        st.recorder
            .record(now, refused("credential already registered".into()))
            .await?;
        return Err(AppError::Conflict("This passkey is already registered.".into()));
    }
    let passkey = match w.finish_passkey_registration(&answer, &pending.state) {
        Ok(p) => p,
        Err(e) => {
            // The library's error names the failed check, never key material.
            st.recorder.record(now, refused(format!("{e:?}"))).await?;
            return Err(AppError::Validation(
                "The authenticator's answer was not accepted (a passkey must verify you, with a PIN or biometrics, \
                 and be made for this site)."
                    .into(),
            ));
        }
    };
    let hash = credential_hash(passkey.cred_id().as_ref());
    let stored = serde_json::to_string(&passkey)
        .map_err(|e| crate::errors::internal(format_args!("passkey serialisation: {e}")))?;
    let mut tx = st.db.begin_write().await?;
    let inserted = sqlx::query(
        "INSERT INTO passkeys (user_id, user_handle, credential_hash, name, credential, created_at) \
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(auth.user_id)
    .bind(&pending.user_handle)
    .bind(&hash)
    .bind(&name)
    .bind(&stored)
    .bind(now)
    .execute(tx.conn())
    .await;
    match inserted {
        Ok(_) => {}
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            drop(tx);
            st.recorder
                .record(now, refused("credential already registered".into()))
                .await?;
            return Err(AppError::Conflict("This passkey is already registered.".into()));
        }
        Err(e) => return Err(e.into()),
    }
    let id = sqlx::query("SELECT id FROM passkeys WHERE credential_hash = ?")
        .bind(&hash)
        .fetch_one(tx.conn())
        .await?
        .try_get::<i64, _>("id")?;
    let event = NewEvent::new(Action::PasskeyRegistered, Outcome::Success, ctx.actor())
        .target("user", auth.user_id)
        .details(json!({ "passkey_id": id, "name": name, "user_verified": true }));
    audit::append(&mut tx, now, vec![event]).await?;
    tx.commit().await?;
    Ok(id)
}

/// Removes one of `user_id`'s passkeys (the caller has checked a fresh
/// second factor).
pub async fn remove(st: &AppState, ctx: &RequestCtx, user_id: i64, passkey_id: i64) -> Result<(), AppError> {
    let now = st.clock.now();
    let mut tx = st.db.begin_write().await?;
    let row = sqlx::query("SELECT name FROM passkeys WHERE id = ? AND user_id = ?")
        .bind(passkey_id)
        .bind(user_id)
        .fetch_optional(tx.conn())
        .await?
        .ok_or(AppError::NotFound)?;
    let name = text(&row, "name")?;
    sqlx::query("DELETE FROM passkeys WHERE id = ? AND user_id = ?")
        .bind(passkey_id)
        .bind(user_id)
        .execute(tx.conn())
        .await?;
    let event = NewEvent::new(Action::PasskeyRemoved, Outcome::Success, ctx.actor())
        .target("user", user_id)
        .details(json!({ "passkey_id": passkey_id, "name": name }));
    audit::append(&mut tx, now, vec![event]).await?;
    tx.commit().await?;
    Ok(())
}
