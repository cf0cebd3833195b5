//! Authorization: the one check every server function and route goes
//! through, and what an employee holds. A refusal is recorded in the audit
//! trail as denied.

use crate::domain::actions::Action;
use crate::domain::{
    audit::{NewEvent, Outcome},
    grants::Status,
    permissions::{Permission, PermissionSet},
    Millis,
};
use crate::errors::AppError;
use crate::server::{
    platform::{
        db::text,
        request::{AuthState, RequestCtx},
    },
    state::AppState,
};
use serde_json::json;
use sqlx::{Any, Executor};

pub async fn status_of<'e>(ex: impl Executor<'e, Database = Any>, user_id: i64) -> Result<Option<Status>, sqlx::Error> {
    let row = sqlx::query("SELECT status FROM users WHERE id = ?")
        .bind(user_id)
        .fetch_optional(ex)
        .await?;
    Ok(row
        .map(|r| text(&r, "status"))
        .transpose()?
        .and_then(|s| Status::parse(&s)))
}

/// The permissions an employee holds at `now`, read from the database
/// (one query, no cache).
pub async fn permissions_at(pool: &sqlx::AnyPool, user_id: i64, now: Millis) -> Result<PermissionSet, sqlx::Error> {
    Ok(super::load_facts(pool, user_id, now).await?.permissions(now))
}

/// The permissions an employee holds now, from the cache when `version`
/// (their `access_version` as read in this request) matches it.
pub async fn held(st: &AppState, user_id: i64, version: Option<i64>) -> Result<PermissionSet, sqlx::Error> {
    let now = st.clock.now();
    Ok(st
        .access
        .facts(st.db.pool(), user_id, version, now)
        .await?
        .permissions(now))
}

/// Whether `user_id` is the emergency administrator
/// (`GATEHOUSE_SSO_BREAKGLASS_EMAIL`), who keeps their authenticator code
/// when passkeys are required.
pub async fn emergency_administrator(st: &AppState, user_id: i64) -> Result<bool, AppError> {
    let Some(email) = st.sso.as_ref().and_then(|s| s.breakglass.as_deref()) else {
        return Ok(false);
    };
    let user = crate::server::identity::accounts::by_id(st.db.pool(), user_id).await?;
    Ok(user.is_some_and(|u| u.email.eq_ignore_ascii_case(email)))
}

/// Whether `user_id`'s access requires a passkey
/// (`GATEHOUSE_REQUIRE_PASSKEY=administrators`): administrator power, as
/// the permissions define it, unless they are the emergency administrator.
pub async fn passkey_required(st: &AppState, user_id: i64, version: Option<i64>) -> Result<bool, AppError> {
    let policy = st.config.require_passkey;
    if !policy.administrators {
        return Ok(false);
    }
    let perms = held(st, user_id, version).await?;
    if !policy.requires(perms, false) {
        return Ok(false);
    }
    Ok(!emergency_administrator(st, user_id).await?)
}

/// The signed-in employee and what they may do.
#[derive(Debug, Clone)]
pub struct Principal {
    pub auth: AuthState,
    pub user_id: i64,
    pub perms: PermissionSet,
}

/// Allows the call when the signed-in employee holds `perm`; otherwise
/// records the refusal (denied) and answers 403. `operation` names what was
/// attempted, for the audit trail.
pub async fn require(
    st: &AppState,
    ctx: &RequestCtx,
    perm: Permission,
    operation: &str,
) -> Result<Principal, AppError> {
    require_any(st, ctx, &[perm], operation).await
}

pub async fn require_any(
    st: &AppState,
    ctx: &RequestCtx,
    perms: &[Permission],
    operation: &str,
) -> Result<Principal, AppError> {
    let auth = ctx.full()?.clone();
    let held = held(st, auth.user_id, ctx.access_version).await?;
    if perms.iter().any(|p| held.contains(*p)) {
        return Ok(Principal {
            user_id: auth.user_id,
            auth,
            perms: held,
        });
    }
    deny(st, ctx, perms, operation).await?;
    Err(AppError::Forbidden)
}

/// Records a refused call in the audit chain.
pub async fn deny(st: &AppState, ctx: &RequestCtx, perms: &[Permission], operation: &str) -> Result<(), AppError> {
    let needed: Vec<&str> = perms.iter().map(|p| p.id()).collect();
    tracing::warn!(request_id = %ctx.request_id, operation, ?needed, "permission denied");
    st.recorder
        .record(
            st.clock.now(),
            NewEvent::new(Action::Denied, Outcome::Denied, ctx.actor())
                .target("operation", operation)
                .reason("missing permission")
                .details(json!({ "operation": operation, "needs_any_of": needed })),
        )
        .await?;
    Ok(())
}

/// The signed-in employee with what they hold, for calls open to everyone
/// signed in whose body decides by rule (an access review's reviewers).
pub async fn signed_in(st: &AppState, ctx: &RequestCtx) -> Result<Principal, AppError> {
    let auth = ctx.full()?.clone();
    let perms = held(st, auth.user_id, ctx.access_version).await?;
    Ok(Principal {
        user_id: auth.user_id,
        auth,
        perms,
    })
}

/// Records a refused change, then returns the error.
pub async fn refuse(st: &AppState, event: NewEvent, err: AppError) -> Result<AppError, AppError> {
    let reason = err.to_string();
    st.recorder.record(st.clock.now(), event.reason(reason)).await?;
    Ok(err)
}
