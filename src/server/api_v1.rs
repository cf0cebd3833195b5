//! The HTTP API for backend services (JSON, under /api/v1), authenticated
//! with service-account bearer tokens.

use super::{
    access, audit_log,
    auth::RequestCtx,
    db::text,
    service::{self as svc, ApiAuthError, ServicePrincipal},
    state::AppState,
};
use crate::domain::{
    audit::{NewEvent, Outcome},
    permissions::Permission,
    service::{self, Scope},
};
use axum::{
    extract::{rejection::JsonRejection, State},
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    Extension, Json,
};
use serde::Deserialize;
use serde_json::{json, Value};
use sqlx::Row;

/// A JSON error with the request id; never internal details.
fn error(status: StatusCode, message: impl Into<String>, request_id: &str) -> Response {
    (
        status,
        Json(json!({ "error": message.into(), "request_id": request_id })),
    )
        .into_response()
}

fn internal(request_id: &str, e: impl std::fmt::Display) -> Response {
    tracing::error!(request_id, error = %e, "api error");
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong on our side.",
        request_id,
    )
}

fn rejection(r: JsonRejection, request_id: &str) -> Response {
    let (status, message) = match &r {
        JsonRejection::MissingJsonContentType(_) => (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Send JSON with Content-Type: application/json.".to_owned(),
        ),
        JsonRejection::JsonSyntaxError(_) => (StatusCode::BAD_REQUEST, "The body is not valid JSON.".to_owned()),
        // serde's message names the field and what is wrong with it; it
        // never contains server internals.
        JsonRejection::JsonDataError(e) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "The request does not match the schema: {}",
                e.body_text()
                    .trim_start_matches("Failed to deserialize the JSON body into the target type: ")
            ),
        ),
        JsonRejection::BytesRejection(_) => (
            StatusCode::PAYLOAD_TOO_LARGE,
            "The request body could not be read or is too large.".to_owned(),
        ),
        _ => (StatusCode::BAD_REQUEST, "The request could not be read.".to_owned()),
    };
    error(status, message, request_id)
}

async fn authenticate(
    st: &AppState,
    ctx: &RequestCtx,
    headers: &HeaderMap,
    scope: Scope,
) -> Result<ServicePrincipal, Response> {
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    match svc::authenticate(st, ctx, authorization, scope).await {
        Ok(p) => Ok(p),
        Err(ApiAuthError::Unauthenticated) => {
            let mut r = error(
                StatusCode::UNAUTHORIZED,
                "A valid API token is required (Authorization: Bearer …).",
                &ctx.request_id,
            );
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
            Err(r)
        }
        Err(ApiAuthError::MissingScope) => Err(error(
            StatusCode::FORBIDDEN,
            format!("This token does not have the {} scope.", scope.id()),
            &ctx.request_id,
        )),
        Err(ApiAuthError::Internal(e)) => Err(internal(&ctx.request_id, e)),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resource {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckRequest {
    /// An employee id (number) or email (string).
    pub employee: Value,
    pub permission: String,
    pub resource: Resource,
    #[serde(default)]
    pub customer_id: Option<String>,
    #[serde(default)]
    pub purpose: Option<String>,
}

fn printable(s: &str, max: usize) -> bool {
    !s.is_empty() && s.chars().count() <= max && !s.chars().any(char::is_control)
}

/// Checks the request; the error names the field.
fn validate(req: &CheckRequest) -> Result<Permission, String> {
    let permission =
        Permission::parse(&req.permission).ok_or_else(|| "permission: unknown permission identifier".to_owned())?;
    let k = &req.resource.kind;
    if k.is_empty()
        || k.len() > 64
        || !k
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.' || b == b'-')
    {
        return Err("resource.type: 1 to 64 characters: lower-case letters, digits, '_', '.', '-'".into());
    }
    if !printable(&req.resource.id, 128) {
        return Err("resource.id: 1 to 128 printable characters".into());
    }
    if let Some(c) = &req.customer_id {
        if !printable(c, 128) {
            return Err("customer_id: 1 to 128 printable characters".into());
        }
    }
    if let Some(p) = &req.purpose {
        if p.chars().count() > 500 || p.chars().any(|c| c.is_control()) {
            return Err("purpose: at most 500 printable characters".into());
        }
    }
    match &req.employee {
        Value::Number(n) if n.as_i64().is_some_and(|i| i > 0) => {}
        Value::String(s) if crate::domain::validation::Email::parse(s).is_ok() => {}
        _ => return Err("employee: a positive employee id or an email address".into()),
    }
    Ok(permission)
}

/// `POST /api/v1/access-checks`: may this employee do this now? Every
/// deny and every check that names a customer is recorded in the audit
/// chain before the answer leaves; if recording fails, there is no answer.
pub async fn access_check(
    State(st): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    headers: HeaderMap,
    body: Result<Json<CheckRequest>, JsonRejection>,
) -> Response {
    let rid = ctx.request_id.clone();
    let service = match authenticate(&st, &ctx, &headers, Scope::AccessCheck).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let req = match body {
        Ok(Json(r)) => r,
        Err(e) => return rejection(e, &rid),
    };
    let permission = match validate(&req) {
        Ok(p) => p,
        Err(msg) => return error(StatusCode::UNPROCESSABLE_ENTITY, msg, &rid),
    };
    match decide(&st, &ctx, &service, &req, permission).await {
        Ok(r) => r,
        Err(e) => internal(&rid, e),
    }
}

async fn decide(
    st: &AppState,
    ctx: &RequestCtx,
    service: &ServicePrincipal,
    req: &CheckRequest,
    permission: Permission,
) -> Result<Response, sqlx::Error> {
    let now = st.clock.now();
    let row = match &req.employee {
        Value::Number(n) => {
            sqlx::query("SELECT id, access_version FROM users WHERE id = ?")
                .bind(n.as_i64().unwrap_or(0))
                .fetch_optional(&st.db.pool)
                .await?
        }
        Value::String(s) => {
            let email = s.trim().to_lowercase();
            sqlx::query("SELECT id, access_version FROM users WHERE email = ?")
                .bind(email)
                .fetch_optional(&st.db.pool)
                .await?
        }
        _ => None,
    };
    let employee = match &row {
        Some(r) => Some((r.try_get::<i64, _>("id")?, r.try_get::<i64, _>("access_version")?)),
        None => None,
    };
    let employee_id = employee.map(|(id, _)| id);
    let d = match employee {
        Some((id, version)) => st.access.facts(&st.db.pool, id, Some(version), now).await?.decide(
            permission,
            req.customer_id.as_deref(),
            now,
        ),
        None => service::decide(None, &[], &[], permission, None, now),
    };
    let mut audit_seq = None;
    if !d.allow || req.customer_id.is_some() {
        let mut event = NewEvent::new(
            "access.check",
            if d.allow { Outcome::Success } else { Outcome::Denied },
            service.actor(ctx),
        )
        .reason(d.reason.clone())
        .details(json!({
            "service": service.name,
            "token_id": service.token_id,
            "permission": permission.id(),
            "resource": { "type": req.resource.kind, "id": req.resource.id },
            "purpose": req.purpose,
            "decision": if d.allow { "allow" } else { "deny" },
            "grant_id": d.grant_id,
            "role": d.role,
        }));
        event = match employee_id {
            Some(id) => event.target("user", id),
            None => event.target(
                "employee",
                req.employee.to_string().chars().take(254).collect::<String>(),
            ),
        };
        if let Some(c) = &req.customer_id {
            event = event.customer(c);
        }
        audit_seq = Some(audit_log::record_sealed(&st.db, now, event).await?.seq);
    }
    let body = json!({
        "decision": if d.allow { "allow" } else { "deny" },
        "reason": d.reason,
        "grant": d.grant_id.map(|id| json!({ "id": id, "role": d.role, "expires_at": d.grant_expires_at })),
        "employee_id": employee_id,
        "audit_seq": audit_seq,
        "request_id": ctx.request_id,
    });
    Ok((StatusCode::OK, Json(body)).into_response())
}

/// `GET /api/v1/openapi.json`: the API's description.
pub async fn openapi() -> Response {
    let error = json!({ "type": "object", "properties": { "error": { "type": "string" }, "request_id": { "type": "string" } } });
    let doc = json!({
        "openapi": "3.1.0",
        "info": { "title": "Gatehouse API", "version": "1" },
        "components": {
            "securitySchemes": {
                "bearer": { "type": "http", "scheme": "bearer", "description": "A service-account token (ghs_…)" },
                "session": { "type": "apiKey", "in": "cookie", "name": "gatehouse", "description": "A signed-in browser session (auditors)" }
            },
            "schemas": {
                "Error": error,
                "AccessCheck": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["employee", "permission", "resource"],
                    "properties": {
                        "employee": { "oneOf": [{ "type": "integer", "minimum": 1 }, { "type": "string", "format": "email" }] },
                        "permission": { "type": "string", "enum": Permission::ALL.iter().map(|p| p.id()).collect::<Vec<_>>() },
                        "resource": {
                            "type": "object", "additionalProperties": false, "required": ["type", "id"],
                            "properties": { "type": { "type": "string", "pattern": "^[a-z0-9_.-]{1,64}$" }, "id": { "type": "string", "maxLength": 128 } }
                        },
                        "customer_id": { "type": "string", "maxLength": 128 },
                        "purpose": { "type": "string", "maxLength": 500 }
                    }
                },
                "Decision": {
                    "type": "object",
                    "properties": {
                        "decision": { "type": "string", "enum": ["allow", "deny"] },
                        "reason": { "type": "string" },
                        "grant": { "type": ["object", "null"], "properties": { "id": { "type": "integer" }, "role": { "type": "string" }, "expires_at": { "type": ["integer", "null"], "description": "milliseconds since the Unix epoch" } } },
                        "employee_id": { "type": ["integer", "null"] },
                        "audit_seq": { "type": ["integer", "null"], "description": "the audit event recording this check, when one was written" },
                        "request_id": { "type": "string" }
                    }
                }
            }
        },
        "security": [{ "bearer": [] }],
        "paths": {
            "/api/v1/audit-events": {
                "post": {
                    "summary": "Report up to 1,000 customer-data access events from another system (scope events:write). The batch is validated whole and stored whole or not at all; errors name the event index and field. With an Idempotency-Key header a retried batch is stored once (same key, different batch: 409).",
                    "parameters": [{ "name": "Idempotency-Key", "in": "header", "required": false, "schema": { "type": "string", "maxLength": 128 } }],
                    "requestBody": { "required": true, "content": { "application/json": { "schema": {
                        "type": "object", "additionalProperties": false, "required": ["events"],
                        "properties": { "events": { "type": "array", "minItems": 1, "maxItems": 1000, "items": {
                            "type": "object", "additionalProperties": false,
                            "required": ["employee", "action", "customer_id", "source_system", "occurred_at"],
                            "properties": {
                                "employee": { "oneOf": [{ "type": "integer", "minimum": 1 }, { "type": "string", "format": "email" }] },
                                "action": { "type": "string", "pattern": "^[a-z0-9_.:-]{1,64}$" },
                                "customer_id": { "type": "string", "maxLength": 128 },
                                "fields": { "type": "array", "maxItems": 100, "items": { "type": "string" } },
                                "record_types": { "type": "array", "maxItems": 20, "items": { "type": "string" } },
                                "purpose": { "type": "string", "maxLength": 500 },
                                "source_system": { "type": "string", "pattern": "^[a-z0-9_.:-]{1,64}$" },
                                "occurred_at": { "type": "string", "format": "date-time", "description": "at most 5 minutes in the future" },
                                "grant_id": { "type": "integer", "minimum": 1, "description": "the grant named by the access check that allowed it; must be a grant of this employee" }
                            }
                        } } }
                    } } } },
                    "responses": {
                        "201": { "description": "Stored: accepted, first_seq, last_seq" },
                        "200": { "description": "A retry of a stored batch (replayed: true)" },
                        "401": { "description": "No valid token" }, "403": { "description": "The token lacks the events:write scope" },
                        "409": { "description": "The Idempotency-Key was used for a different batch" },
                        "413": { "description": "Body over 2 MiB" }, "415": { "description": "Not application/json" },
                        "422": { "description": "An event is invalid; the message names its index and field" }
                    }
                }
            },
            "/api/v1/access-checks": {
                "post": {
                    "summary": "May an employee use a permission now? Denies, and checks naming a customer, are recorded in the audit trail.",
                    "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/AccessCheck" } } } },
                    "responses": {
                        "200": { "description": "The decision", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Decision" } } } },
                        "400": { "description": "Not JSON", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } },
                        "401": { "description": "No valid token", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } },
                        "403": { "description": "The token lacks the access:check scope", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } },
                        "413": { "description": "Body too large" },
                        "415": { "description": "Not application/json" },
                        "422": { "description": "A field is missing, unknown or invalid; the message names it", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } }
                    }
                }
            },
            "/api/v1/audit/public-key": {
                "get": {
                    "summary": "The Ed25519 public keys that sign audit checkpoints (hex). Public: no authentication.",
                    "security": [],
                    "responses": { "200": { "description": "algorithm, signed_format, current_key_id, keys[{key_id, public_key, created_at}]" } }
                }
            },
            "/api/v1/audit/checkpoints": {
                "get": {
                    "summary": "Signed checkpoints in order (signed-in employee with audit:read). Each names tree_size, the RFC 6962 Merkle root over events 1..tree_size, the head hash, the digest of the previous checkpoint, and signs signed_message.",
                    "security": [{ "session": [] }],
                    "parameters": [
                        { "name": "after", "in": "query", "required": false, "schema": { "type": "integer", "minimum": 0 } },
                        { "name": "limit", "in": "query", "required": false, "schema": { "type": "integer", "minimum": 1, "maximum": 1000, "default": 100 } }
                    ],
                    "responses": { "200": { "description": "checkpoints[]" }, "401": { "description": "Not signed in" }, "403": { "description": "No audit:read" }, "422": { "description": "limit out of range" } }
                }
            },
            "/api/v1/audit/proofs/{seq}": {
                "get": {
                    "summary": "An RFC 6962 inclusion proof that event seq is under the root of a checkpoint (default the latest), with the checkpoint (signed-in employee with audit:read).",
                    "security": [{ "session": [] }],
                    "parameters": [
                        { "name": "seq", "in": "path", "required": true, "schema": { "type": "integer", "minimum": 1 } },
                        { "name": "checkpoint", "in": "query", "required": false, "schema": { "type": "integer", "minimum": 1 } }
                    ],
                    "responses": { "200": { "description": "seq, leaf_index, event_hash, leaf_hash, tree_size, audit_path[], checkpoint" }, "404": { "description": "No such checkpoint, or it does not cover seq" } }
                }
            }
        }
    });
    (StatusCode::OK, [(header::CACHE_CONTROL, "no-cache")], Json(doc)).into_response()
}

// ---------------------------------------------------------------- event ingestion

/// Largest batch: 1,000 events.
pub const MAX_BATCH: usize = 1_000;
/// Body limit of the events route (the rest of the app allows 64 KiB).
pub const EVENTS_BODY_LIMIT: usize = 2 * 1024 * 1024;
/// How far in the future an event's time may be (clock skew).
const FUTURE_SKEW: i64 = 5 * 60_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventBatch {
    pub events: Vec<ExternalEvent>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExternalEvent {
    /// An employee id (number) or email (string).
    pub employee: Value,
    /// What was done, e.g. `customer.view`, `order.update`.
    pub action: String,
    pub customer_id: String,
    #[serde(default)]
    pub fields: Vec<String>,
    #[serde(default)]
    pub record_types: Vec<String>,
    #[serde(default)]
    pub purpose: Option<String>,
    pub source_system: String,
    /// RFC 3339, e.g. 2026-11-23T09:15:00Z.
    pub occurred_at: String,
    /// The grant the access check named (`grant.id` of its answer): ties
    /// the access to the elevation and ticket it happened under.
    #[serde(default)]
    pub grant_id: Option<i64>,
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
pub async fn audit_events(
    State(st): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let rid = ctx.request_id.clone();
    let service = match authenticate(&st, &ctx, &headers, Scope::EventsWrite).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    if !is_json {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Send JSON with Content-Type: application/json.",
            &rid,
        );
    }
    let key = match headers.get("idempotency-key").map(|v| v.to_str()) {
        None => None,
        Some(Ok(k)) if !k.is_empty() && k.len() <= 128 && k.bytes().all(|b| b.is_ascii_graphic()) => Some(k.to_owned()),
        Some(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "Idempotency-Key: 1 to 128 visible ASCII characters.",
                &rid,
            )
        }
    };
    let batch = match Json::<EventBatch>::from_bytes(&body) {
        Ok(Json(b)) => b,
        Err(e) => return rejection(e, &rid),
    };
    if batch.events.is_empty() || batch.events.len() > MAX_BATCH {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("events: 1 to {MAX_BATCH} events per batch"),
            &rid,
        );
    }
    let now = st.clock.now();
    let mut times = Vec::with_capacity(batch.events.len());
    for (i, e) in batch.events.iter().enumerate() {
        match validate_event(e, now) {
            Ok(t) => times.push(t),
            Err(msg) => return error(StatusCode::UNPROCESSABLE_ENTITY, format!("events[{i}].{msg}"), &rid),
        }
    }
    let request_hash = super::crypto::sha256_hex(&body);
    match store_batch(&st, &ctx, &service, &batch, &times, key.as_deref(), &request_hash).await {
        Ok(r) => r,
        Err(e) => internal(&rid, e),
    }
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
        for r in q.fetch_all(&st.db.pool).await? {
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
        .fetch_all(&st.db.pool)
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
) -> Result<Option<Response>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT request_hash, first_seq, last_seq, accepted FROM api_idempotency WHERE account_id = ? AND idem_key = ?",
    )
    .bind(service.account_id)
    .bind(key)
    .fetch_optional(&st.db.pool)
    .await?;
    let Some(row) = row else { return Ok(None) };
    if text(&row, "request_hash")? != request_hash {
        return Ok(Some(error(
            StatusCode::CONFLICT,
            "This Idempotency-Key was used for a different batch.",
            rid,
        )));
    }
    let body = json!({
        "accepted": row.try_get::<i64, _>("accepted")?,
        "first_seq": row.try_get::<i64, _>("first_seq")?,
        "last_seq": row.try_get::<i64, _>("last_seq")?,
        "replayed": true,
        "request_id": rid,
    });
    Ok(Some((StatusCode::OK, Json(body)).into_response()))
}

async fn store_batch(
    st: &AppState,
    ctx: &RequestCtx,
    service: &ServicePrincipal,
    batch: &EventBatch,
    times: &[i64],
    key: Option<&str>,
    request_hash: &str,
) -> Result<Response, sqlx::Error> {
    let rid = &ctx.request_id;
    if let Some(k) = key {
        if let Some(r) = replay(st, service, k, request_hash, rid).await? {
            return Ok(r);
        }
    }
    let employees = employees_of(st, batch).await?;
    if let Some(i) = employees.iter().position(Option::is_none) {
        return Ok(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("events[{i}].employee: no such employee"),
            rid,
        ));
    }
    if let Some(i) = foreign_grant(st, batch, &employees).await? {
        return Ok(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("events[{i}].grant_id: not a grant of this employee"),
            rid,
        ));
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
            let mut ev = NewEvent::new("data.access", Outcome::Success, actor)
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
            "INSERT INTO api_idempotency (account_id, idem_key, request_hash, first_seq, last_seq, accepted, created_at) VALUES (?, ?, ?, 0, 0, 0, ?)",
        )
        .bind(service.account_id)
        .bind(k)
        .bind(request_hash)
        .bind(now)
        .execute(&mut **tx)
        .await;
        if claimed.is_err() {
            drop(tx);
            return Ok(replay(st, service, k, request_hash, rid)
                .await?
                .unwrap_or_else(|| error(StatusCode::CONFLICT, "Retry the batch.", rid)));
        }
    }
    let sealed = audit_log::append(&mut tx, now, events).await?;
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
            .execute(&mut **tx)
            .await?;
    }
    tx.commit().await?;
    let body =
        json!({ "accepted": sealed.len(), "first_seq": first, "last_seq": last, "replayed": false, "request_id": rid });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

// ---------------------------------------------------------------- auditor CSV export

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct ExportQuery {
    pub from: String,
    pub to: String,
    pub employee: String,
    pub action: String,
    pub outcome: String,
    pub customer: String,
    pub text: String,
    pub source: String,
}

/// `GET /audit/export.csv?…`: the events matching the auditor's filters as
/// CSV, newest first, streamed a thousand at a time (memory stays flat).
/// Needs `audit:export`; the export itself is recorded.
pub async fn audit_csv(
    State(st): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    query: Result<axum::extract::Query<ExportQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    use super::audit_console::{self as console, Filter};
    use crate::errors::AppError;
    let rid = ctx.request_id.clone();
    let Ok(axum::extract::Query(q)) = query else {
        return error(StatusCode::BAD_REQUEST, "The filters could not be read.", &rid);
    };
    if let Err(r) = signed_in_with(
        &st,
        &ctx,
        Permission::AuditExport,
        "audit_export_csv",
        "export the audit trail",
    )
    .await
    {
        return r;
    }
    let filter = Filter {
        from: q.from,
        to: q.to,
        employee: q.employee,
        action: q.action,
        outcome: q.outcome,
        customer: q.customer,
        text: q.text,
        source: q.source,
        before: None,
    };
    // Check the filters (and the first page) before answering 200.
    let first = match console::browse_pages(&st, &filter, 1_000).await {
        Ok(p) => p,
        Err(AppError::Validation(m)) => return error(StatusCode::UNPROCESSABLE_ENTITY, m, &rid),
        Err(e) => return internal(&rid, e),
    };
    let details = json!({
        "format": "csv",
        "filters": { "from": filter.from, "to": filter.to, "employee": filter.employee, "action": filter.action,
                     "outcome": filter.outcome, "customer": filter.customer, "text": filter.text, "source": filter.source },
    });
    if let Err(r) = record_export(&st, &ctx, details).await {
        return r;
    }
    let name = format!("gatehouse-audit-{}.csv", file_stamp(st.clock.now()));
    let first = (
        first.events.iter().map(console::csv_row).collect::<String>(),
        first.next_before,
    );
    paged_csv(st, name, console::CSV_HEADER, first, move |st, before| {
        let filter = Filter {
            before: Some(before),
            ..filter.clone()
        };
        async move {
            let p = console::browse_pages(&st, &filter, 1_000).await?;
            Ok((p.events.iter().map(console::csv_row).collect(), p.next_before))
        }
    })
}

/// A CSV download streamed page by page: `first` is the first page's rows
/// (already fetched, so a bad filter was refused before answering 200) and
/// the next `before`; `next` fetches the page before a sequence number.
/// Memory stays flat however long the export.
fn paged_csv<F, Fut>(
    st: AppState,
    file_name: String,
    header_row: &'static str,
    first: (String, Option<i64>),
    next: F,
) -> Response
where
    F: Fn(AppState, i64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(String, Option<i64>), crate::errors::AppError>> + Send + 'static,
{
    let (rows, after) = first;
    let start = futures::stream::once(async move { Ok::<_, std::io::Error>(format!("{header_row}{rows}")) });
    let rest = futures::stream::unfold((st, after), move |(st, before)| {
        let page = before.map(|b| next(st.clone(), b));
        async move {
            match page?.await {
                Ok((chunk, after)) => Some((Ok(chunk), (st, after))),
                Err(e) => {
                    tracing::error!(error = %e, "audit export stopped");
                    Some((Err(std::io::Error::other("export failed")), (st, None)))
                }
            }
        }
    });
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file_name}\""),
            ),
        ],
        axum::body::Body::from_stream(futures::StreamExt::chain(start, rest)),
    )
        .into_response()
}

/// `GET /audit/report.csv?kind=…`: an auditor report (who accessed a
/// customer, what an employee accessed, denied checks) as CSV, streamed.
/// Needs `audit:export`; the export is recorded.
pub async fn audit_report_csv(
    State(st): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    query: Result<axum::extract::Query<super::audit_console::ReportQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    use super::audit_console as console;
    use crate::errors::AppError;
    let rid = ctx.request_id.clone();
    let Ok(axum::extract::Query(mut q)) = query else {
        return error(StatusCode::BAD_REQUEST, "The report fields could not be read.", &rid);
    };
    if let Err(r) = signed_in_with(
        &st,
        &ctx,
        Permission::AuditExport,
        "audit_report_csv",
        "export the audit trail",
    )
    .await
    {
        return r;
    }
    q.before = None;
    let first = match console::report_pages(&st, &q, 1_000).await {
        Ok(p) => p,
        Err(AppError::Validation(m)) => return error(StatusCode::UNPROCESSABLE_ENTITY, m, &rid),
        Err(e) => return internal(&rid, e),
    };
    let details = json!({ "format": "csv", "report": q.kind, "customer": q.customer, "employee": q.employee, "from": q.from, "to": q.to });
    if let Err(r) = record_export(&st, &ctx, details).await {
        return r;
    }
    let name = format!("gatehouse-report-{}-{}.csv", q.kind.trim(), file_stamp(st.clock.now()));
    let first = (
        first.rows.iter().map(console::report_csv_row).collect::<String>(),
        first.next_before,
    );
    paged_csv(st, name, console::REPORT_CSV_HEADER, first, move |st, before| {
        let q = console::ReportQuery {
            before: Some(before),
            ..q.clone()
        };
        async move {
            let p = console::report_pages(&st, &q, 1_000).await?;
            Ok((p.rows.iter().map(console::report_csv_row).collect(), p.next_before))
        }
    })
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct BundleQuery {
    pub from: String,
    pub to: String,
}

/// `GET /audit/export.bundle?from=&to=`: the events of a time range as a
/// signed bundle (JSON Lines: header, checkpoints, events, subtree roots)
/// that `gatehouse audit verify FILE` checks offline. Signs a checkpoint
/// first so the range is covered. Events stream a thousand at a time.
/// Needs `audit:export`; the export is recorded.
pub async fn audit_bundle(
    State(st): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    query: Result<axum::extract::Query<BundleQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    use crate::domain::bundle::{self, Header, Line, PublicKey};
    let rid = ctx.request_id.clone();
    let Ok(axum::extract::Query(q)) = query else {
        return error(
            StatusCode::BAD_REQUEST,
            "Give from and to as YYYY-MM-DDTHH:MM (UTC).",
            &rid,
        );
    };
    if let Err(r) = signed_in_with(
        &st,
        &ctx,
        Permission::AuditExport,
        "audit_export_bundle",
        "export the audit trail",
    )
    .await
    {
        return r;
    }
    let parse = |s: &str| {
        if s.trim().is_empty() {
            Ok(None)
        } else {
            super::people::parse_utc(s).map(Some)
        }
    };
    let (from, to) = match (parse(&q.from), parse(&q.to)) {
        (Ok(f), Ok(t)) => (f, t),
        _ => {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Give from and to as YYYY-MM-DDTHH:MM (UTC).",
                &rid,
            )
        }
    };
    if let (Some(f), Some(t)) = (from, to) {
        if f > t {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "The range ends before it starts.",
                &rid,
            );
        }
    }
    let now = st.clock.now();
    if let Err(r) = record_export(&st, &ctx, json!({ "format": "bundle", "from": q.from, "to": q.to })).await {
        return r;
    }
    let prepared = async {
        if let Err(e) = super::checkpoints::sign(&st, true).await {
            return Err(e.to_string());
        }
        let cover = super::checkpoints::latest(&st.db.pool)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("no checkpoint")?;
        let first: Option<i64> = sqlx::query("SELECT MIN(seq) AS s FROM audit_events WHERE at >= ?")
            .bind(from.unwrap_or(i64::MIN))
            .fetch_one(&st.db.pool)
            .await
            .and_then(|r| r.try_get("s"))
            .map_err(|e| e.to_string())?;
        let last: Option<i64> = sqlx::query("SELECT MAX(seq) AS s FROM audit_events WHERE at < ? AND seq <= ?")
            .bind(to.unwrap_or(i64::MAX))
            .bind(cover.tree_size)
            .fetch_one(&st.db.pool)
            .await
            .and_then(|r| r.try_get("s"))
            .map_err(|e| e.to_string())?;
        let (Some(first), Some(last)) = (first, last) else {
            return Ok(None);
        };
        if first > last {
            return Ok(None);
        }
        let prefix = super::checkpoints::frontier_at(&st.db, first - 1)
            .await
            .map_err(|e| e.to_string())?;
        let subtrees = super::checkpoints::subtrees(&st.db, last, cover.tree_size)
            .await
            .map_err(|e| e.to_string())?;
        let cps: Vec<_> = super::checkpoints::list(&st.db.pool, 0, i64::MAX)
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .filter(|c| c.tree_size >= first && c.tree_size <= cover.tree_size)
            .collect();
        let keys = super::checkpoints::public_keys(&st.db)
            .await
            .map_err(|e| e.to_string())?;
        let header = Header {
            format: bundle::FORMAT.into(),
            exported_at: now,
            from,
            to,
            first_seq: first,
            last_seq: last,
            public_keys: keys
                .into_iter()
                .map(|(key_id, public_key, _)| PublicKey { key_id, public_key })
                .collect(),
            prefix: prefix.nodes().iter().map(|(n, h)| (*n, hex::encode(h))).collect(),
        };
        let mut head = serde_json::to_string(&header).map_err(|e| e.to_string())? + "\n";
        for c in cps {
            head.push_str(&serde_json::to_string(&Line::Checkpoint(c)).map_err(|e| e.to_string())?);
            head.push('\n');
        }
        let mut tail = String::new();
        for (start, size, root) in subtrees {
            tail.push_str(
                &serde_json::to_string(&Line::Subtree {
                    start,
                    size,
                    root: hex::encode(root),
                })
                .map_err(|e| e.to_string())?,
            );
            tail.push('\n');
        }
        Ok::<_, String>(Some((head, first, last, tail)))
    }
    .await;
    let (head, first, last, tail) = match prepared {
        Ok(Some(p)) => p,
        Ok(None) => return error(StatusCode::UNPROCESSABLE_ENTITY, "No events fall in that range.", &rid),
        Err(e) => return internal(&rid, e),
    };
    let name = format!("attachment; filename=\"gatehouse-audit-{}.jsonl\"", file_stamp(now));
    // (state, next seq, stage): 0 head, 1 events, 2 tail, 3 done.
    let stream = futures::stream::unfold(
        (st, head, tail, first, 0u8),
        move |(st, head, tail, next, stage)| async move {
            match stage {
                0 => Some((Ok::<_, std::io::Error>(head), (st, String::new(), tail, next, 1))),
                1 if next <= last => {
                    let sql = format!(
                        "SELECT {} FROM audit_events WHERE seq >= ? AND seq <= ? ORDER BY seq LIMIT 1000",
                        audit_log::COLUMNS
                    );
                    let rows = match sqlx::query(&sql).bind(next).bind(last).fetch_all(&st.db.pool).await {
                        Ok(r) => r,
                        Err(e) => {
                            tracing::error!(error = %e, "audit bundle export stopped");
                            return Some((Err(std::io::Error::other("export failed")), (st, head, tail, next, 3)));
                        }
                    };
                    let mut chunk = String::new();
                    let mut upto = next;
                    for row in &rows {
                        match audit_log::event_from_row(row) {
                            Ok(e) => {
                                upto = e.seq + 1;
                                chunk.push_str(&serde_json::to_string(&Line::Event(e)).unwrap_or_default());
                                chunk.push('\n');
                            }
                            Err(e) => {
                                tracing::error!(error = %e, "audit bundle export stopped");
                                return Some((Err(std::io::Error::other("export failed")), (st, head, tail, next, 3)));
                            }
                        }
                    }
                    if rows.is_empty() {
                        upto = last + 1;
                    }
                    Some((Ok(chunk), (st, head, tail, upto, 1)))
                }
                1 | 2 => Some((Ok(tail), (st, head, String::new(), next, 3))),
                _ => None,
            }
        },
    );
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/jsonl".to_owned()),
            (header::CONTENT_DISPOSITION, name),
        ],
        axum::body::Body::from_stream(stream),
    )
        .into_response()
}

fn file_stamp(ms: i64) -> String {
    let fmt = time::macros::format_description!("[year][month][day]-[hour][minute][second]");
    time::OffsetDateTime::from_unix_timestamp(ms / 1000)
        .ok()
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_default()
}

/// Records an export of the audit trail (`audit.exported`) before any of it
/// is sent; if that fails, nothing is sent.
async fn record_export(st: &AppState, ctx: &RequestCtx, details: Value) -> Result<(), Response> {
    let event = NewEvent::new("audit.exported", Outcome::Success, ctx.actor()).details(details);
    audit_log::record(&st.db, st.clock.now(), event)
        .await
        .map_err(|e| internal(&ctx.request_id, e))
}

/// For routes used from the browser (session cookie, not a token): the
/// signed-in employee must hold `perm`; a refusal is recorded.
async fn signed_in_with(
    st: &AppState,
    ctx: &RequestCtx,
    perm: Permission,
    operation: &str,
    what: &str,
) -> Result<(), Response> {
    use crate::errors::AppError;
    let rid = &ctx.request_id;
    match access::require(st, ctx, perm, operation).await {
        Ok(_) => Ok(()),
        Err(AppError::Unauthorized(m)) => Err(error(StatusCode::UNAUTHORIZED, m, rid)),
        Err(AppError::Forbidden) => Err(error(
            StatusCode::FORBIDDEN,
            format!("You don't have permission to {what}."),
            rid,
        )),
        Err(e) => Err(internal(rid, e)),
    }
}

// ------------------------------------------------------- signed checkpoints

fn checkpoint_json(cp: &crate::domain::checkpoint::Checkpoint) -> Value {
    json!({
        "number": cp.number,
        "tree_size": cp.tree_size,
        "root": cp.root,
        "head_hash": cp.head_hash,
        "prev_hash": cp.prev_hash,
        "at": cp.at,
        "key_id": cp.key_id,
        "signature": cp.signature,
        "signed_message": cp.message(),
    })
}

/// GET /api/v1/audit/public-key: the keys that sign checkpoints. Public, so
/// anyone holding a checkpoint or an export can check it.
pub async fn public_key(State(st): State<AppState>, Extension(ctx): Extension<RequestCtx>) -> Response {
    match super::checkpoints::public_keys(&st.db).await {
        Ok(keys) => Json(json!({
            "algorithm": "Ed25519",
            "signed_format": crate::domain::checkpoint::FORMAT,
            "current_key_id": st.audit_keys.key_id,
            "keys": keys.iter().map(|(id, pk, at)| json!({ "key_id": id, "public_key": pk, "created_at": at })).collect::<Vec<_>>(),
        }))
        .into_response(),
        Err(e) => internal(&ctx.request_id, e),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointQuery {
    #[serde(default)]
    pub after: Option<i64>,
    #[serde(default)]
    pub limit: Option<i64>,
}

/// GET /api/v1/audit/checkpoints?after=N&limit=M: signed checkpoints in
/// order (audit:read).
pub async fn checkpoints(
    State(st): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    query: Result<axum::extract::Query<CheckpointQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let rid = ctx.request_id.clone();
    if let Err(r) = signed_in_with(
        &st,
        &ctx,
        Permission::AuditRead,
        "audit_checkpoints",
        "read the audit trail",
    )
    .await
    {
        return r;
    }
    let Ok(axum::extract::Query(q)) = query else {
        return error(
            StatusCode::BAD_REQUEST,
            "Use after and limit, both whole numbers.",
            &rid,
        );
    };
    let limit = q.limit.unwrap_or(100);
    if !(1..=1_000).contains(&limit) {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "limit must be between 1 and 1000.",
            &rid,
        );
    }
    match super::checkpoints::list(&st.db.pool, q.after.unwrap_or(0).max(0), limit).await {
        Ok(list) => {
            Json(json!({ "checkpoints": list.iter().map(checkpoint_json).collect::<Vec<_>>() })).into_response()
        }
        Err(e) => internal(&rid, e),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProofQuery {
    #[serde(default)]
    pub checkpoint: Option<i64>,
}

/// GET /api/v1/audit/proofs/{seq}?checkpoint=N: an RFC 6962 inclusion proof
/// that event `seq` is under the root of checkpoint N (default: the latest)
/// (audit:read).
pub async fn proof(
    State(st): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    path: Result<axum::extract::Path<i64>, axum::extract::rejection::PathRejection>,
    query: Result<axum::extract::Query<ProofQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let rid = ctx.request_id.clone();
    if let Err(r) = signed_in_with(&st, &ctx, Permission::AuditRead, "audit_proof", "read the audit trail").await {
        return r;
    }
    let (Ok(axum::extract::Path(seq)), Ok(axum::extract::Query(q))) = (path, query) else {
        return error(
            StatusCode::BAD_REQUEST,
            "Name an event by its number, and optionally ?checkpoint=N.",
            &rid,
        );
    };
    let cp = match q.checkpoint {
        Some(n) => super::checkpoints::by_number(&st.db, n).await,
        None => super::checkpoints::latest(&st.db.pool).await,
    };
    let cp = match cp {
        Ok(Some(cp)) => cp,
        Ok(None) => return error(StatusCode::NOT_FOUND, "There is no such signed checkpoint yet.", &rid),
        Err(e) => return internal(&rid, e),
    };
    match super::checkpoints::proof(&st.db, &cp, seq).await {
        Ok(Some(p)) => Json(json!({
            "seq": p.seq,
            "leaf_index": p.leaf_index,
            "event_hash": p.event_hash,
            "leaf_hash": hex::encode(p.leaf_hash),
            "tree_size": cp.tree_size,
            "audit_path": p.path.iter().map(hex::encode).collect::<Vec<_>>(),
            "checkpoint": checkpoint_json(&cp),
            "how_to_verify": "RFC 9162 section 2.1.3.2: leaf_hash = SHA-256(0x00 || event_hash bytes); \
                              combine with audit_path using SHA-256(0x01 || left || right) to reach checkpoint.root; \
                              check checkpoint.signature (Ed25519, hex) over signed_message with the public key at /api/v1/audit/public-key.",
        }))
        .into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("Checkpoint {} covers events 1 to {}; event {seq} is not among them.", cp.number, cp.tree_size), &rid),
        Err(e) => internal(&rid, e),
    }
}
