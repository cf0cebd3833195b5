//! Invitations (the `invitations` table): a single-use link, valid for 72
//! hours, with which an invited employee sets a password. Only its hash is
//! stored; the link is shown once.

use super::{
    accounts::{self, UserRow},
    sessions,
    signin::MAX_PASSWORD_INPUT,
};
use crate::domain::actions::Action;
use crate::domain::{
    audit::{NewEvent, Outcome},
    password as pw_rules, Millis, HOUR,
};
use crate::errors::AppError;
use crate::server::{
    audit,
    platform::{
        crypto,
        db::WriteTx,
        request::{AuthState, RequestCtx, Stage},
    },
    state::AppState,
};
use serde_json::json;
use sqlx::Row;
use tower_sessions::Session;

pub const INVITATION_LIFETIME: Millis = 72 * HOUR;

/// The invited person, when the token is valid.
pub async fn invitation(st: &AppState, token: &str) -> Result<Option<(i64, UserRow)>, AppError> {
    if token.is_empty() || token.len() > 200 {
        return Ok(None);
    }
    let now = st.clock.now();
    let row = sqlx::query(
        "SELECT id, user_id FROM invitations WHERE token_hash = ? AND used_at IS NULL AND cancelled_at IS NULL AND expires_at > ?",
    )
    .bind(crypto::sha256_hex(token.as_bytes()))
    .bind(now)
    .fetch_optional(st.db.pool())
    .await?;
    let Some(row) = row else { return Ok(None) };
    let user = accounts::by_id(st.db.pool(), row.try_get("user_id")?).await?;
    Ok(user
        .filter(|u| u.status == "invited")
        .map(|u| (row.try_get("id").unwrap_or_default(), u)))
}

/// The invited employee sets a password; the account becomes active and
/// the session continues to authenticator enrolment.
pub async fn accept_invitation(
    st: &AppState,
    ctx: &RequestCtx,
    session: &Session,
    token: &str,
    pw: String,
    confirm: String,
) -> Result<(), AppError> {
    let now = st.clock.now();
    if pw.chars().count() > MAX_PASSWORD_INPUT {
        return Err(AppError::Validation("The password is too long.".into()));
    }
    let Some((_, user)) = invitation(st, token).await? else {
        st.recorder
            .record(
                now,
                NewEvent::new(Action::InvitationAccept, Outcome::Denied, ctx.actor())
                    .reason("link invalid, used, cancelled or expired"),
            )
            .await?;
        return Err(AppError::Refused(
            "This invitation link is not valid: it has expired, was already used or was \
            cancelled. Ask your administrator for a new one."
                .into(),
        ));
    };
    let local = user.email.split('@').next().unwrap_or_default().to_owned();
    pw_rules::check(&pw, &confirm, &[local.as_str()], pw_rules::is_common)
        .map_err(|e| AppError::Validation(e.to_string()))?;
    let hash = st.hasher.hash(pw).await?;
    let mut tx = st.db.begin_write().await?;
    let used = sqlx::query(
        "UPDATE invitations SET used_at = ? WHERE token_hash = ? AND used_at IS NULL AND cancelled_at IS NULL AND expires_at > ?",
    )
    .bind(now)
    .bind(crypto::sha256_hex(token.as_bytes()))
    .bind(now)
    .execute(tx.conn())
    .await?
    .rows_affected();
    let activated = accounts::accept_invitation(&mut tx, user.id, &hash, now).await?;
    if used != 1 || !activated {
        return Err(AppError::Conflict(
            "This invitation was used or cancelled a moment ago.".into(),
        ));
    }
    audit::append(
        &mut tx,
        now,
        vec![NewEvent::new(
            Action::InvitationAccepted,
            Outcome::Success,
            ctx.actor_for(Some(user.id)),
        )
        .target("user", user.id)
        .details(json!({ "before": { "status": "invited" }, "after": { "status": "active" } }))],
    )
    .await?;
    tx.commit().await?;
    sessions::rotate(session).await?;
    sessions::set_auth(
        session,
        &AuthState {
            user_id: user.id,
            stage: Stage::NeedsEnrolment,
            created_at: now,
            last_seen: now,
            mfa_at: None,
            passkey_at: None,
        },
    )
    .await
}

/// A new invitation for `user_id`; returns its token (for the link).
pub async fn create(tx: &mut WriteTx, user_id: i64, by: i64, now: Millis) -> Result<String, sqlx::Error> {
    let token = crypto::random_token(32);
    sqlx::query(
        "INSERT INTO invitations (user_id, token_hash, created_by, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(user_id)
    .bind(crypto::sha256_hex(token.as_bytes()))
    .bind(by)
    .bind(now)
    .bind(now + INVITATION_LIFETIME)
    .execute(tx.conn())
    .await?;
    Ok(token)
}

/// Cancels the invitations of `user_id` that are still open; returns how many.
pub async fn cancel_open(tx: &mut WriteTx, user_id: i64, now: Millis) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE invitations SET cancelled_at = ? WHERE user_id = ? AND used_at IS NULL AND cancelled_at IS NULL",
    )
    .bind(now)
    .bind(user_id)
    .execute(tx.conn())
    .await?;
    Ok(done.rows_affected())
}

/// The address an invitation's token opens.
pub fn link(public_url: &url::Url, token: &str) -> String {
    let mut url = public_url.clone();
    url.set_path("/invite");
    url.set_query(Some(&format!("token={token}")));
    url.to_string()
}

/// When the open invitation of `user_id` expires, if one is open at `now`.
pub async fn open_until<'e>(
    ex: impl sqlx::Executor<'e, Database = sqlx::Any>,
    user_id: i64,
    now: Millis,
) -> Result<Option<Millis>, sqlx::Error> {
    sqlx::query(
        "SELECT MAX(expires_at) AS e FROM invitations WHERE user_id = ? AND used_at IS NULL AND cancelled_at IS NULL \
         AND expires_at > ?",
    )
    .bind(user_id)
    .bind(now)
    .fetch_one(ex)
    .await?
    .try_get("e")
}
