//! The first administrator: a one-time setup link printed at start while
//! no administrator exists, and the form it opens.

use crate::domain::actions::Action;
use crate::domain::{
    audit::{Actor, NewEvent, Outcome},
    password as pw_rules,
    validation::{Email, PersonName},
    Millis, HOUR,
};
use crate::errors::AppError;
use crate::server::{
    access::grants,
    audit,
    identity::{accounts, sessions, signin::MAX_PASSWORD_INPUT},
    platform::{
        crypto,
        request::{AuthState, RequestCtx, Stage},
    },
    state::AppState,
};
use serde_json::json;
use sqlx::{AnyConnection, Row};
use tower_sessions::Session;

// ---------------------------------------------------------------- first administrator

pub const SETUP_TOKEN_LIFETIME: Millis = HOUR;

/// On a database with no administrator, issues a one-time setup token
/// (valid for an hour) and returns it; `None` when an administrator exists.
pub async fn issue_setup_token(st: &AppState) -> Result<Option<String>, sqlx::Error> {
    let now = st.clock.now();
    if admin_exists(&mut *st.db.pool().acquire().await?, now).await? {
        return Ok(None);
    }
    let token = crypto::random_token(32);
    let mut tx = st.db.begin_write().await?;
    sqlx::query("INSERT INTO setup_tokens (token_hash, expires_at, created_at) VALUES (?, ?, ?)")
        .bind(crypto::sha256_hex(token.as_bytes()))
        .bind(now + SETUP_TOKEN_LIFETIME)
        .bind(now)
        .execute(tx.conn())
        .await?;
    audit::append(
        &mut tx,
        now,
        vec![
            NewEvent::new(Action::SetupTokenIssued, Outcome::Success, Actor::default())
                .reason("no administrator exists"),
        ],
    )
    .await?;
    tx.commit().await?;
    Ok(Some(token))
}

/// Whether a setup token can still be used (for showing the form).
pub async fn setup_token_usable(st: &AppState, token: &str) -> Result<bool, AppError> {
    let now = st.clock.now();
    if admin_exists(&mut *st.db.pool().acquire().await?, now).await? {
        return Ok(false);
    }
    let row = sqlx::query("SELECT expires_at, used_at FROM setup_tokens WHERE token_hash = ?")
        .bind(crypto::sha256_hex(token.as_bytes()))
        .fetch_optional(st.db.pool())
        .await?;
    Ok(
        matches!(row, Some(r) if r.try_get::<Option<i64>, _>("used_at")?.is_none() && r.try_get::<i64, _>("expires_at")? > now),
    )
}

pub struct SetupInput {
    pub token: String,
    pub name: String,
    pub email: String,
    pub password: String,
    pub confirm: String,
}

/// Creates the first administrator with a valid setup token, and signs the
/// new administrator in up to TOTP enrolment.
pub async fn complete_setup(
    st: &AppState,
    ctx: &RequestCtx,
    session: &Session,
    input: SetupInput,
) -> Result<(), AppError> {
    let now = st.clock.now();
    let name = PersonName::parse(&input.name)?;
    let email = Email::parse(&input.email)?;
    if input.password.chars().count() > MAX_PASSWORD_INPUT || input.token.len() > 200 {
        return Err(AppError::Validation("The password is too long.".into()));
    }
    pw_rules::check(
        &input.password,
        &input.confirm,
        &[email.local_part()],
        pw_rules::is_common,
    )
    .map_err(|e| AppError::Validation(e.to_string()))?;
    let refused = |why: &str| NewEvent::new(Action::FirstAdmin, Outcome::Denied, ctx.actor()).reason(why.to_owned());
    // Cheap checks before the expensive hash: a closed setup or a bad link
    // costs no Argon2 work (checked again below, in the transaction).
    if admin_exists(&mut *st.db.pool().acquire().await?, now).await? {
        st.recorder
            .record(now, refused("an administrator already exists"))
            .await?;
        return Err(AppError::Conflict(
            "Gatehouse is already set up. Sign in instead.".into(),
        ));
    }
    if !setup_token_usable(st, &input.token).await? {
        st.recorder
            .record(now, refused("setup link invalid, used or expired"))
            .await?;
        return Err(AppError::Forbidden);
    }
    let hash = st.hasher.hash(input.password).await?;

    let mut tx = st.db.begin_write().await?;
    if admin_exists(tx.conn(), now).await? {
        drop(tx);
        st.recorder
            .record(now, refused("an administrator already exists"))
            .await?;
        return Err(AppError::Conflict(
            "Gatehouse is already set up. Sign in instead.".into(),
        ));
    }
    let used =
        sqlx::query("UPDATE setup_tokens SET used_at = ? WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?")
            .bind(now)
            .bind(crypto::sha256_hex(input.token.as_bytes()))
            .bind(now)
            .execute(tx.conn())
            .await?
            .rows_affected();
    if used != 1 {
        drop(tx);
        st.recorder
            .record(now, refused("setup link invalid, used or expired"))
            .await?;
        return Err(AppError::Forbidden);
    }
    if accounts::by_email(tx.conn(), email.as_str()).await?.is_some() {
        return Err(AppError::Conflict("An account with this email already exists.".into()));
    }
    let user_id = accounts::insert(
        &mut tx,
        accounts::NewUser {
            email: email.as_str(),
            display_name: name.as_str(),
            department: "administration",
            password_hash: Some(&hash),
            status: "active",
            provisioned_by: accounts::Provisioning::Gatehouse,
        },
        now,
    )
    .await?;
    let grant_id = grants::insert_standing(
        &mut tx,
        user_id,
        crate::domain::roles::ADMIN,
        None,
        "first administrator (setup)",
        now,
    )
    .await?;
    audit::append(
        &mut tx,
        now,
        vec![
            NewEvent::new(Action::FirstAdmin, Outcome::Success, ctx.actor_for(Some(user_id)))
                .target("user", user_id)
                .details(json!({ "email": email.as_str(), "role": "admin", "grant_id": grant_id })),
        ],
    )
    .await?;
    tx.commit().await?;

    sessions::rotate(session).await?;
    sessions::set_auth(
        session,
        &AuthState {
            user_id,
            stage: Stage::NeedsEnrolment,
            created_at: now,
            last_seen: now,
            mfa_at: None,
            passkey_at: None,
        },
    )
    .await
}

/// Whether an active employee holds administrator power (any role with
/// `employees:manage` or `access:grant`).
async fn admin_exists(conn: &mut AnyConnection, now: i64) -> Result<bool, sqlx::Error> {
    Ok(!grants::active_admin_ids(conn, now).await?.is_empty())
}
