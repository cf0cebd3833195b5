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
    grants::Status,
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
    (status, Json(json!({ "error": message.into(), "request_id": request_id }))).into_response()
}

fn internal(request_id: &str, e: impl std::fmt::Display) -> Response {
    tracing::error!(request_id, error = %e, "api error");
    error(StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong on our side.", request_id)
}

fn rejection(r: JsonRejection, request_id: &str) -> Response {
    let (status, message) = match &r {
        JsonRejection::MissingJsonContentType(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "Send JSON with Content-Type: application/json.".to_owned()),
        JsonRejection::JsonSyntaxError(_) => (StatusCode::BAD_REQUEST, "The body is not valid JSON.".to_owned()),
        // serde's message names the field and what is wrong with it; it
        // never contains server internals.
        JsonRejection::JsonDataError(e) => (StatusCode::UNPROCESSABLE_ENTITY, format!("The request does not match the schema: {}", e.body_text().trim_start_matches("Failed to deserialize the JSON body into the target type: "))),
        JsonRejection::BytesRejection(_) => (StatusCode::PAYLOAD_TOO_LARGE, "The request body could not be read or is too large.".to_owned()),
        _ => (StatusCode::BAD_REQUEST, "The request could not be read.".to_owned()),
    };
    error(status, message, request_id)
}

async fn authenticate(st: &AppState, ctx: &RequestCtx, headers: &HeaderMap, scope: Scope) -> Result<ServicePrincipal, Response> {
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    match svc::authenticate(st, ctx, authorization, scope).await {
        Ok(p) => Ok(p),
        Err(ApiAuthError::Unauthenticated) => {
            let mut r = error(StatusCode::UNAUTHORIZED, "A valid API token is required (Authorization: Bearer …).", &ctx.request_id);
            r.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
            Err(r)
        }
        Err(ApiAuthError::MissingScope) => {
            Err(error(StatusCode::FORBIDDEN, format!("This token does not have the {} scope.", scope.id()), &ctx.request_id))
        }
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
    let permission = Permission::parse(&req.permission).ok_or_else(|| "permission: unknown permission identifier".to_owned())?;
    let k = &req.resource.kind;
    if k.is_empty() || k.len() > 64 || !k.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.' || b == b'-') {
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

async fn decide(st: &AppState, ctx: &RequestCtx, service: &ServicePrincipal, req: &CheckRequest, permission: Permission) -> Result<Response, sqlx::Error> {
    let now = st.clock.now();
    let row = match &req.employee {
        Value::Number(n) => sqlx::query("SELECT id, status FROM users WHERE id = ?").bind(n.as_i64().unwrap_or(0)).fetch_optional(&st.db.pool).await?,
        Value::String(s) => {
            let email = s.trim().to_lowercase();
            sqlx::query("SELECT id, status FROM users WHERE email = ?").bind(email).fetch_optional(&st.db.pool).await?
        }
        _ => None,
    };
    let (employee_id, status) = match &row {
        Some(r) => (Some(r.try_get::<i64, _>("id")?), Status::parse(&text(r, "status")?)),
        None => (None, None),
    };
    let (grants, roles) = match employee_id {
        Some(id) => (access::open_grants(&st.db.pool, id).await?, access::catalogue(&st.db.pool).await?),
        None => (Vec::new(), Vec::new()),
    };
    let d = service::decide(status, &grants, &roles, permission, now);
    let mut audit_seq = None;
    if !d.allow || req.customer_id.is_some() {
        let mut event = NewEvent::new("access.check", if d.allow { Outcome::Success } else { Outcome::Denied }, service.actor(ctx))
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
            None => event.target("employee", req.employee.to_string().chars().take(254).collect::<String>()),
        };
        if let Some(c) = &req.customer_id {
            event = event.customer(c);
        }
        let mut tx = st.db.begin_write().await?;
        let sealed = audit_log::append(&mut tx, now, vec![event]).await?;
        tx.commit().await?;
        audit_seq = sealed.first().map(|e| e.seq);
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
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer", "description": "A service-account token (ghs_…)" } },
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
            }
        }
    });
    (StatusCode::OK, [(header::CACHE_CONTROL, "no-cache")], Json(doc)).into_response()
}
