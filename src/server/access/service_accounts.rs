//! Service accounts and their API tokens: created and revoked by
//! administrators, presented by backend services as bearer tokens.

use crate::domain::actions::Action;
use crate::domain::{
    audit::{Actor, NewEvent, Outcome},
    grants as rules,
    service::{self, Scope, TokenState},
    Millis,
};
use crate::dto::{CreatedToken, ServiceAccountView, TokenView};
use crate::errors::AppError;
use crate::server::{
    access::authz::Principal,
    audit,
    platform::{
        crypto,
        db::{opt_text, text, WriteTx},
        names,
        request::RequestCtx,
        time::format_time,
    },
    state::AppState,
};
use serde_json::json;
use sqlx::{Any, Executor, Row};

fn check_name(name: &str) -> Result<String, AppError> {
    let n = name.trim();
    let ok = (2..=64).contains(&n.len())
        && n.starts_with(|c: char| c.is_ascii_lowercase())
        && n.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !ok {
        return Err(AppError::Validation(
            "The name must be 2 to 64 characters: lower-case letters, digits and dashes, starting with a letter \
                (e.g. customer-api)."
                .into(),
        ));
    }
    Ok(n.to_owned())
}

fn scopes_list(scopes: &[Scope]) -> String {
    scopes.iter().map(|s| s.id()).collect::<Vec<_>>().join(",")
}

pub async fn list(st: &AppState) -> Result<Vec<ServiceAccountView>, AppError> {
    let names = names::names(st.db.pool()).await?;
    let accounts =
        sqlx::query("SELECT id, name, scopes, created_by, created_at, disabled_at FROM service_accounts ORDER BY name")
            .fetch_all(st.db.pool())
            .await?;
    let tokens = sqlx::query(
        "SELECT id, account_id, label, created_by, created_at, expires_at, revoked_at, last_used_at FROM api_tokens ORDER BY id DESC",
    )
    .fetch_all(st.db.pool())
    .await?;
    let now = st.clock.now();
    let mut out = Vec::new();
    for a in &accounts {
        let id: i64 = a.try_get("id")?;
        let mut views = Vec::new();
        for t in tokens
            .iter()
            .filter(|t| t.try_get::<i64, _>("account_id").ok() == Some(id))
        {
            let expires_at: Option<i64> = t.try_get("expires_at")?;
            let revoked_at: Option<i64> = t.try_get("revoked_at")?;
            views.push(TokenView {
                id: t.try_get("id")?,
                label: text(t, "label")?,
                created: format_time(t.try_get("created_at")?),
                created_by: names::opt_name(&names, t.try_get("created_by")?),
                expires_at: expires_at.map(format_time),
                revoked_at: revoked_at.map(format_time),
                last_used_at: t.try_get::<Option<i64>, _>("last_used_at")?.map(format_time),
                usable: service::token_usable(
                    &TokenState {
                        expires_at,
                        revoked_at,
                        account_disabled: false,
                    },
                    now,
                ),
            });
        }
        out.push(ServiceAccountView {
            id,
            name: text(a, "name")?,
            scopes: text(a, "scopes")?
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            created: format_time(a.try_get("created_at")?),
            created_by: names::opt_name(&names, a.try_get("created_by")?),
            tokens: views,
        });
    }
    Ok(out)
}

/// Creates a service account; `by` is the administrator (none from the
/// command line).
pub async fn create_account(
    st: &AppState,
    actor: Actor,
    by: Option<i64>,
    name: &str,
    scopes: &[String],
) -> Result<i64, AppError> {
    let name = check_name(name)?;
    let scopes = service::parse_scopes(scopes).map_err(|s| AppError::Validation(format!("Unknown scope \"{s}\".")))?;
    if scopes.is_empty() {
        return Err(AppError::Validation("Choose at least one scope.".into()));
    }
    let now = st.clock.now();
    let mut tx = st.db.begin_write().await?;
    let exists = sqlx::query("SELECT id FROM service_accounts WHERE name = ?")
        .bind(&name)
        .fetch_optional(tx.conn())
        .await?;
    if exists.is_some() {
        return Err(AppError::Conflict("A service account with this name exists.".into()));
    }
    let q = sqlx::query("INSERT INTO service_accounts (name, scopes, created_by, created_at) VALUES (?, ?, ?, ?)")
        .bind(&name)
        .bind(scopes_list(&scopes))
        .bind(by)
        .bind(now);
    let id = tx.insert_returning_id(q).await?;
    audit::append(
        &mut tx,
        now,
        vec![NewEvent::new(Action::ServiceAccountCreated, Outcome::Success, actor)
            .target("service_account", id)
            .details(json!({ "name": name, "scopes": scopes_list(&scopes), "before": null }))],
    )
    .await?;
    tx.commit().await?;
    Ok(id)
}

/// Issues a token; the returned string is its only copy.
pub async fn create_token(
    st: &AppState,
    actor: Actor,
    by: Option<i64>,
    account_id: i64,
    label: &str,
    expires_in: &str,
) -> Result<(String, Option<Millis>), AppError> {
    let label = label.trim();
    if label.is_empty() || label.chars().count() > 100 || label.chars().any(char::is_control) {
        return Err(AppError::Validation(
            "Give the token a label of at most 100 characters (where it is used).".into(),
        ));
    }
    let now = st.clock.now();
    let expires_at = rules::parse_duration(expires_in)?.map(|d| now + d);
    let secret = crypto::random_token(32);
    let mut tx = st.db.begin_write().await?;
    let account = sqlx::query("SELECT name, disabled_at FROM service_accounts WHERE id = ?")
        .bind(account_id)
        .fetch_optional(tx.conn())
        .await?
        .ok_or(AppError::NotFound)?;
    if account.try_get::<Option<i64>, _>("disabled_at")?.is_some() {
        return Err(AppError::Conflict("This service account is disabled.".into()));
    }
    let q = sqlx::query(
        "INSERT INTO api_tokens (account_id, secret_hash, label, created_by, created_at, \
        expires_at) VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(account_id)
    .bind(crypto::sha256_hex(secret.as_bytes()))
    .bind(label)
    .bind(by)
    .bind(now)
    .bind(expires_at);
    let id = tx.insert_returning_id(q).await?;
    audit::append(
        &mut tx,
        now,
        vec![NewEvent::new(Action::TokenCreated, Outcome::Success, actor)
            .target("service_account", account_id)
            .details(json!({ "token_id": id, "label": label, "expires_at": expires_at }))],
    )
    .await?;
    tx.commit().await?;
    Ok((service::format_token(id, &secret), expires_at))
}

pub async fn revoke_token(st: &AppState, ctx: &RequestCtx, p: &Principal, token_id: i64) -> Result<(), AppError> {
    let now = st.clock.now();
    let mut tx = st.db.begin_write().await?;
    let row = sqlx::query("SELECT account_id, revoked_at FROM api_tokens WHERE id = ?")
        .bind(token_id)
        .fetch_optional(tx.conn())
        .await?
        .ok_or(AppError::NotFound)?;
    if row.try_get::<Option<i64>, _>("revoked_at")?.is_some() {
        return Err(AppError::Conflict("This token is already revoked.".into()));
    }
    let account_id: i64 = row.try_get("account_id")?;
    sqlx::query("UPDATE api_tokens SET revoked_at = ?, revoked_by = ? WHERE id = ? AND revoked_at IS NULL")
        .bind(now)
        .bind(p.user_id)
        .bind(token_id)
        .execute(tx.conn())
        .await?;
    audit::append(
        &mut tx,
        now,
        vec![NewEvent::new(Action::TokenRevoked, Outcome::Success, ctx.actor())
            .target("service_account", account_id)
            .details(json!({ "token_id": token_id, "before": { "revoked": false }, "after": { "revoked": true } }))],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The API tokens `user_id` created, oldest first, for the offboarding checklist.
pub async fn created_by<'e>(
    ex: impl Executor<'e, Database = Any>,
    user_id: i64,
    now: Millis,
) -> Result<Vec<CreatedToken>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT t.id, t.label, t.expires_at, t.revoked_at, a.name, a.disabled_at \
         FROM api_tokens t JOIN service_accounts a ON a.id = t.account_id WHERE t.created_by = ? ORDER BY t.id",
    )
    .bind(user_id)
    .fetch_all(ex)
    .await?;
    rows.iter()
        .map(|r| {
            let revoked_at: Option<i64> = r.try_get("revoked_at")?;
            let state = TokenState {
                expires_at: r.try_get("expires_at")?,
                revoked_at,
                account_disabled: r.try_get::<Option<i64>, _>("disabled_at")?.is_some(),
            };
            Ok(CreatedToken {
                id: r.try_get("id")?,
                account: text(r, "name")?,
                label: text(r, "label")?,
                usable: service::token_usable(&state, now),
                revoked_at: revoked_at.map(format_time),
            })
        })
        .collect()
}

/// Revokes, in the caller's transaction, every token `user_id` created that
/// is not yet revoked (offboarding); one audit event per token. Returns their ids.
pub async fn revoke_created_by_in(
    tx: &mut WriteTx,
    actor: &Actor,
    actor_id: Option<i64>,
    user_id: i64,
    now: Millis,
) -> Result<Vec<i64>, sqlx::Error> {
    let sql = format!(
        "SELECT id, account_id FROM api_tokens WHERE created_by = ? AND revoked_at IS NULL ORDER BY id{}",
        tx.for_update()
    );
    let rows = sqlx::query(&sql).bind(user_id).fetch_all(tx.conn()).await?;
    let mut ids = Vec::with_capacity(rows.len());
    let mut events = Vec::with_capacity(rows.len());
    for r in &rows {
        let (id, account_id): (i64, i64) = (r.try_get("id")?, r.try_get("account_id")?);
        sqlx::query("UPDATE api_tokens SET revoked_at = ?, revoked_by = ? WHERE id = ? AND revoked_at IS NULL")
            .bind(now)
            .bind(actor_id)
            .bind(id)
            .execute(tx.conn())
            .await?;
        ids.push(id);
        events.push(
            NewEvent::new(Action::TokenRevoked, Outcome::Success, actor.clone())
                .target("service_account", account_id)
                .reason("offboarding of its creator")
                .details(
                    json!({ "token_id": id, "created_by": user_id, "before": { "revoked": false },
                                 "after": { "revoked": true } }),
                ),
        );
    }
    if !events.is_empty() {
        audit::append(tx, now, events).await?;
    }
    Ok(ids)
}

/// The account's id by name, if it exists.
pub async fn account_id(st: &AppState, name: &str) -> Result<Option<i64>, AppError> {
    Ok(sqlx::query("SELECT id FROM service_accounts WHERE name = ?")
        .bind(name)
        .fetch_optional(st.db.pool())
        .await?
        .map(|r| r.try_get("id"))
        .transpose()?)
}

/// The service behind a valid bearer token.
#[derive(Debug, Clone)]
pub struct ServicePrincipal {
    pub account_id: i64,
    pub name: String,
    pub token_id: i64,
}

impl ServicePrincipal {
    pub fn actor(&self, ctx: &RequestCtx) -> Actor {
        Actor {
            user_id: None,
            session: Some(format!("svc:{}", self.name)),
            ip: ctx.ip.clone(),
            user_agent: ctx.user_agent.clone(),
        }
    }
}

#[derive(Debug)]
pub enum ApiAuthError {
    /// 401: no token, or not a valid one.
    Unauthenticated,
    /// 403: a valid token without the scope.
    MissingScope,
    /// 429: the address sent too many requests without a valid token this
    /// minute; try again after this many seconds.
    Throttled(i64),
    Internal(sqlx::Error),
}

impl From<sqlx::Error> for ApiAuthError {
    fn from(e: sqlx::Error) -> Self {
        ApiAuthError::Internal(e)
    }
}

/// Checks `Authorization: Bearer …` for `scope`. A refused valid token is
/// recorded in the audit chain (without the token); requests without a
/// valid one are counted per address and minute and recorded as one
/// summary (`audit::AnonymousTally`), and past the allowance answered 429.
pub async fn authenticate(
    st: &AppState,
    ctx: &RequestCtx,
    authorization: Option<&str>,
    scope: Scope,
) -> Result<ServicePrincipal, ApiAuthError> {
    let now = st.clock.now();
    let presented = authorization.and_then(|h| h.strip_prefix("Bearer ")).map(str::trim);
    let parsed = presented.and_then(service::parse_token);
    let refuse =
        |why: &'static str, token_id: Option<i64>| match st.anonymous.refused(ctx.ip.as_deref(), now, why, token_id) {
            Some(wait) => ApiAuthError::Throttled(wait),
            None => ApiAuthError::Unauthenticated,
        };
    let Some((token_id, secret)) = parsed else {
        let why = if presented.is_none() {
            "no bearer token"
        } else {
            "malformed token"
        };
        return Err(refuse(why, None));
    };
    let row = sqlx::query(
        "SELECT t.secret_hash, t.expires_at, t.revoked_at, t.last_used_at, a.id AS account_id, a.name, a.scopes, a.disabled_at \
         FROM api_tokens t JOIN service_accounts a ON a.id = t.account_id WHERE t.id = ?",
    )
    .bind(token_id)
    .fetch_optional(st.db.pool())
    .await?;
    let valid = row.as_ref().map(|r| -> Result<bool, sqlx::Error> {
        let stored = text(r, "secret_hash")?;
        let matches = crypto::constant_time_eq(stored.as_bytes(), crypto::sha256_hex(secret.as_bytes()).as_bytes());
        let state = TokenState {
            expires_at: r.try_get("expires_at")?,
            revoked_at: r.try_get("revoked_at")?,
            account_disabled: r.try_get::<Option<i64>, _>("disabled_at")?.is_some(),
        };
        Ok(matches && service::token_usable(&state, now))
    });
    let (Some(row), Some(Ok(true))) = (row.as_ref(), valid) else {
        return Err(refuse("unknown, revoked or expired token", Some(token_id)));
    };
    let principal = ServicePrincipal {
        account_id: row.try_get("account_id")?,
        name: text(row, "name")?,
        token_id,
    };
    let scopes = opt_text(row, "scopes")?.unwrap_or_default();
    if !scopes.split(',').any(|s| s == scope.id()) {
        st.recorder
            .record(
                now,
                NewEvent::new(Action::ApiAuth, Outcome::Denied, principal.actor(ctx))
                    .target("service_account", principal.account_id)
                    .reason("token lacks the scope")
                    .details(json!({ "token_id": token_id, "scope": scope.id() })),
            )
            .await?;
        return Err(ApiAuthError::MissingScope);
    }
    // "Last used", to the minute: one write per token per minute at most.
    let last: Option<i64> = row.try_get("last_used_at")?;
    if last.is_none_or(|l| now - l >= 60_000) {
        st.db
            .write(
                sqlx::query("UPDATE api_tokens SET last_used_at = ? WHERE id = ?")
                    .bind(now)
                    .bind(token_id),
            )
            .await?;
    }
    Ok(principal)
}

/// Revokes one token inside the caller's transaction (an access review);
/// returns its service account, or `None` if it was already revoked.
pub async fn end_token_in(
    tx: &mut WriteTx,
    token_id: i64,
    by: Option<i64>,
    now: Millis,
) -> Result<Option<i64>, sqlx::Error> {
    let row = sqlx::query("SELECT account_id FROM api_tokens WHERE id = ? AND revoked_at IS NULL")
        .bind(token_id)
        .fetch_optional(tx.conn())
        .await?;
    let Some(row) = row else { return Ok(None) };
    let changed =
        sqlx::query("UPDATE api_tokens SET revoked_at = ?, revoked_by = ? WHERE id = ? AND revoked_at IS NULL")
            .bind(now)
            .bind(by)
            .bind(token_id)
            .execute(tx.conn())
            .await?
            .rows_affected();
    (changed == 1).then(|| row.try_get("account_id")).transpose()
}
