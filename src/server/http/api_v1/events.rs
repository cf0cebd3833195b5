//! `POST /api/v1/audit-events`: backend services report accesses to
//! customer data in batches, idempotently.

use super::{authenticate, printable};
use crate::domain::{
    actions::Action,
    audit::{NewEvent, Outcome},
    service::Scope,
};
use crate::server::{
    access::service_accounts::ServicePrincipal,
    audit,
    http::error::ApiError,
    platform::{crypto, db::text, request::RequestCtx},
    state::AppState,
};
use axum::{
    extract::State,
    http::{HeaderMap, StatusCode},
    Extension, Json,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sqlx::Row;
use utoipa::ToSchema;

// ---------------------------------------------------------------- event ingestion

/// Largest batch: 1,000 events.
pub const MAX_BATCH: usize = 1_000;

/// Body limit of the events route (the rest of the app allows 64 KiB).
pub const EVENTS_BODY_LIMIT: usize = 2 * 1024 * 1024;

/// How far in the future an event's time may be (clock skew).
const FUTURE_SKEW: i64 = 5 * 60_000;

/// Up to 1,000 accesses to customer data, stored whole or not at all.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventBatch {
    #[schema(min_items = 1, max_items = 1000)]
    pub events: Vec<ExternalEvent>,
}

/// One access to customer data, as another system reports it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExternalEvent {
    /// An employee id (number) or email (string).
    #[schema(schema_with = super::checks::employee_schema)]
    pub employee: Value,
    /// What was done, e.g. `customer.view`, `order.update`.
    #[schema(pattern = "^[a-z0-9_.:-]{1,64}$", min_length = 1, max_length = 64)]
    pub action: String,
    #[schema(
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]{1,128}$",
        min_length = 1,
        max_length = 128
    )]
    pub customer_id: String,
    /// The fields seen or changed (at most 100 names).
    #[serde(default)]
    #[schema(schema_with = fields_schema)]
    pub fields: Vec<String>,
    /// The kinds of record touched (at most 20 names).
    #[serde(default)]
    #[schema(schema_with = record_types_schema)]
    pub record_types: Vec<String>,
    #[serde(default)]
    #[schema(pattern = r"^[^\u0000-\u001F\u007F-\u009F]{0,500}$", max_length = 500)]
    pub purpose: Option<String>,
    #[schema(pattern = "^[a-z0-9_.:-]{1,64}$", min_length = 1, max_length = 64)]
    pub source_system: String,
    /// RFC 3339, e.g. 2026-11-23T09:15:00Z; at most 5 minutes in the future, not before 2000.
    #[schema(format = DateTime)]
    pub occurred_at: String,
    /// The grant the access check named (`grant.id` of its answer): ties
    /// the access to the elevation and ticket it happened under.
    #[serde(default)]
    #[schema(minimum = 1)]
    pub grant_id: Option<i64>,
}

/// At most `max` names of lower-case letters, digits, `_`, `.`, `:`, `-`.
fn names_schema(max: usize) -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
    let name = ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some("^[a-z0-9_.:-]{1,64}$"))
        .min_length(Some(1))
        .max_length(Some(64));
    ArrayBuilder::new().items(name).max_items(Some(max)).build()
}

fn fields_schema() -> utoipa::openapi::schema::Array {
    names_schema(100)
}

fn record_types_schema() -> utoipa::openapi::schema::Array {
    names_schema(20)
}

/// What was stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct Stored {
    pub accepted: i64,
    pub first_seq: i64,
    pub last_seq: i64,
    /// A retry of a batch already stored under its Idempotency-Key.
    pub replayed: bool,
    pub request_id: String,
}

fn ident(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.:-".contains(&b))
}

/// Checks one event; the error names the field. Returns its time.
fn validate_event(e: &ExternalEvent, now: i64) -> Result<i64, String> {
    match &e.employee {
        Value::Number(n) if n.as_i64().is_some_and(|i| i > 0) => {}
        Value::String(s) if crate::domain::validation::Email::parse(s).is_ok() => {}
        _ => return Err("employee: a positive employee id or an email address".into()),
    }
    if !ident(&e.action, 64) {
        return Err("action: 1 to 64 characters: lower-case letters, digits, '_', '.', ':', '-'".into());
    }
    if !printable(&e.customer_id, 128) {
        return Err("customer_id: 1 to 128 printable characters".into());
    }
    if e.fields.len() > 100 || e.fields.iter().any(|f| !ident(f, 64)) {
        return Err(
            "fields: at most 100 names of 1 to 64 characters: lower-case letters, digits, '_', '.', ':', '-'".into(),
        );
    }
    if e.record_types.len() > 20 || e.record_types.iter().any(|f| !ident(f, 64)) {
        return Err(
            "record_types: at most 20 names of 1 to 64 characters: lower-case letters, digits, '_', '.', ':', '-'"
                .into(),
        );
    }
    if e.purpose
        .as_ref()
        .is_some_and(|p| p.chars().count() > 500 || p.chars().any(char::is_control))
    {
        return Err("purpose: at most 500 printable characters".into());
    }
    if !ident(&e.source_system, 64) {
        return Err("source_system: 1 to 64 characters: lower-case letters, digits, '_', '.', ':', '-'".into());
    }
    if e.grant_id.is_some_and(|g| g <= 0) {
        return Err("grant_id: a positive grant id".into());
    }
    let at = time::OffsetDateTime::parse(&e.occurred_at, &time::format_description::well_known::Rfc3339)
        .map_err(|_| "occurred_at: an RFC 3339 time such as 2026-11-23T09:15:00Z".to_owned())?;
    let ms = (at.unix_timestamp_nanos() / 1_000_000) as i64;
    if ms > now + FUTURE_SKEW {
        return Err("occurred_at: more than 5 minutes in the future".into());
    }
    if ms < 946_684_800_000 {
        return Err("occurred_at: before the year 2000".into());
    }
    Ok(ms)
}

/// `POST /api/v1/audit-events`: a batch of customer-data access events from
/// another system, validated whole and stored whole (or not at all) in the
/// audit chain. With an `Idempotency-Key`, a retried batch is stored once.
#[utoipa::path(
    post,
    path = "/api/v1/audit-events",
    tag = "audit",
    summary = "Report accesses to customer data from another system",
    description = "Scope events:write. Up to 1,000 events, validated whole and stored whole or not at all; errors \
                   name the event index and field. With an Idempotency-Key a retried batch is stored once (the same \
                   key with another batch: 409).",
    params(("Idempotency-Key" = Option<String>, Header, description = "1 to 128 visible ASCII characters")),
    request_body = EventBatch,
    responses(
        (status = 201, description = "Stored", body = Stored),
        (status = 200, description = "A retry of a stored batch (replayed: true)", body = Stored),
        ApiError
    ),
    security(("bearer" = []))
)]
pub async fn audit_events(
    State(st): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Stored>), ApiError> {
    let service = authenticate(&st, &ctx, &headers, Scope::EventsWrite).await?;
    super::require_json(&headers)?;
    let key = match headers.get("idempotency-key").map(|v| v.to_str()) {
        None => None,
        Some(Ok(k)) if !k.is_empty() && k.len() <= 128 && k.bytes().all(|b| b.is_ascii_graphic()) => Some(k.to_owned()),
        Some(_) => {
            return Err(ApiError::bad_request(
                "Idempotency-Key: 1 to 128 visible ASCII characters.",
            ))
        }
    };
    let Json(batch) = Json::<EventBatch>::from_bytes(&body)?;
    if batch.events.is_empty() || batch.events.len() > MAX_BATCH {
        return Err(ApiError::unprocessable(format!(
            "events: 1 to {MAX_BATCH} events per batch"
        )));
    }
    let now = st.clock.now();
    let mut times = Vec::with_capacity(batch.events.len());
    for (i, e) in batch.events.iter().enumerate() {
        times.push(validate_event(e, now).map_err(|msg| ApiError::unprocessable(format!("events[{i}].{msg}")))?);
    }
    let request_hash = crypto::sha256_hex(&body);
    store_batch(&st, &ctx, &service, &batch, &times, key.as_deref(), &request_hash).await
}

/// The index of the first event naming a grant that is not its employee's.
async fn foreign_grant(
    st: &AppState,
    batch: &EventBatch,
    employees: &[Option<i64>],
) -> Result<Option<usize>, sqlx::Error> {
    let mut ids: Vec<i64> = batch.events.iter().filter_map(|e| e.grant_id).collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return Ok(None);
    }
    let mut owner = std::collections::HashMap::new();
    for chunk in ids.chunks(500) {
        let sql = format!(
            "SELECT id, user_id FROM grants WHERE id IN ({})",
            vec!["?"; chunk.len()].join(", ")
        );
        let mut q = sqlx::query(&sql);
        for id in chunk {
            q = q.bind(*id);
        }
        for r in q.fetch_all(st.db.pool()).await? {
            owner.insert(r.try_get::<i64, _>("id")?, r.try_get::<i64, _>("user_id")?);
        }
    }
    Ok(batch
        .events
        .iter()
        .zip(employees)
        .position(|(e, emp)| e.grant_id.is_some_and(|g| owner.get(&g).copied() != *emp)))
}

async fn employees_of(st: &AppState, batch: &EventBatch) -> Result<Vec<Option<i64>>, sqlx::Error> {
    let rows = sqlx::query("SELECT id, email FROM users")
        .fetch_all(st.db.pool())
        .await?;
    let mut by_email = std::collections::HashMap::new();
    let mut ids = std::collections::HashSet::new();
    for r in &rows {
        let id: i64 = r.try_get("id")?;
        by_email.insert(text(r, "email")?, id);
        ids.insert(id);
    }
    Ok(batch
        .events
        .iter()
        .map(|e| match &e.employee {
            Value::Number(n) => n.as_i64().filter(|i| ids.contains(i)),
            Value::String(s) => by_email.get(&s.trim().to_lowercase()).copied(),
            _ => None,
        })
        .collect())
}

async fn replay(
    st: &AppState,
    service: &ServicePrincipal,
    key: &str,
    request_hash: &str,
    rid: &str,
) -> Result<Option<(StatusCode, Json<Stored>)>, ApiError> {
    let row = sqlx::query(
        "SELECT request_hash, first_seq, last_seq, accepted FROM api_idempotency WHERE account_id = ? AND idem_key = ?",
    )
    .bind(service.account_id)
    .bind(key)
    .fetch_optional(st.db.pool())
    .await?;
    let Some(row) = row else { return Ok(None) };
    if text(&row, "request_hash")? != request_hash {
        return Err(ApiError::conflict(
            "This Idempotency-Key was used for a different batch.",
        ));
    }
    let stored = Stored {
        accepted: row.try_get::<i64, _>("accepted")?,
        first_seq: row.try_get::<i64, _>("first_seq")?,
        last_seq: row.try_get::<i64, _>("last_seq")?,
        replayed: true,
        request_id: rid.to_owned(),
    };
    Ok(Some((StatusCode::OK, Json(stored))))
}

async fn store_batch(
    st: &AppState,
    ctx: &RequestCtx,
    service: &ServicePrincipal,
    batch: &EventBatch,
    times: &[i64],
    key: Option<&str>,
    request_hash: &str,
) -> Result<(StatusCode, Json<Stored>), ApiError> {
    let rid = &ctx.request_id;
    if let Some(k) = key {
        if let Some(r) = replay(st, service, k, request_hash, rid).await? {
            return Ok(r);
        }
    }
    let employees = employees_of(st, batch).await?;
    if let Some(i) = employees.iter().position(Option::is_none) {
        return Err(ApiError::unprocessable(format!(
            "events[{i}].employee: no such employee"
        )));
    }
    if let Some(i) = foreign_grant(st, batch, &employees).await? {
        return Err(ApiError::unprocessable(format!(
            "events[{i}].grant_id: not a grant of this employee"
        )));
    }
    let now = st.clock.now();
    let events: Vec<NewEvent> = batch
        .events
        .iter()
        .zip(&employees)
        .zip(times)
        .map(|((e, emp), at)| {
            let actor = crate::domain::audit::Actor {
                user_id: *emp,
                session: Some(format!("svc:{}", service.name)),
                ip: ctx.ip.clone(),
                user_agent: ctx.user_agent.clone(),
            };
            let mut ev = NewEvent::new(Action::DataAccess, Outcome::Success, actor)
                .target("customer", &e.customer_id)
                .customer(e.customer_id.clone());
            if let Some(p) = e.purpose.as_ref().filter(|p| !p.trim().is_empty()) {
                ev = ev.reason(p.clone());
            }
            let mut details = json!({
                "action": e.action,
                "fields": e.fields,
                "record_types": e.record_types,
                "source_system": e.source_system,
                "occurred_at": at,
                "reported_by": service.name,
                "idempotency_key": key,
            });
            if let Some(g) = e.grant_id {
                details["grant_id"] = g.into();
            }
            ev.details(details)
        })
        .collect();
    let mut tx = st.db.begin_write().await?;
    if let Some(k) = key {
        // Claims the key first; a concurrent retry of the same batch waits
        // on it (or fails on the primary key) and then replays.
        let claimed = sqlx::query(
            "INSERT INTO api_idempotency (account_id, idem_key, request_hash, first_seq, last_seq, accepted, \
                created_at) VALUES (?, ?, ?, 0, 0, 0, ?)",
        )
        .bind(service.account_id)
        .bind(k)
        .bind(request_hash)
        .bind(now)
        .execute(tx.conn())
        .await;
        if claimed.is_err() {
            drop(tx);
            return replay(st, service, k, request_hash, rid)
                .await?
                .ok_or_else(|| ApiError::conflict("Retry the batch."));
        }
    }
    let sealed = audit::append(&mut tx, now, events).await?;
    let (first, last) = (
        sealed.first().map(|e| e.seq).unwrap_or(0),
        sealed.last().map(|e| e.seq).unwrap_or(0),
    );
    if let Some(k) = key {
        sqlx::query("UPDATE api_idempotency SET first_seq = ?, last_seq = ?, accepted = ? WHERE account_id = ? AND idem_key = ?")
            .bind(first)
            .bind(last)
            .bind(sealed.len() as i64)
            .bind(service.account_id)
            .bind(k)
            .execute(tx.conn())
            .await?;
    }
    tx.commit().await?;
    let stored = Stored {
        accepted: sealed.len() as i64,
        first_seq: first,
        last_seq: last,
        replayed: false,
        request_id: rid.clone(),
    };
    Ok((StatusCode::CREATED, Json(stored)))
}
