//! `POST /api/v1/access-checks`: may employee E do P on customer C? Every
//! answer is recorded.

use super::{authenticate, error, internal, printable, rejection};
use crate::domain::actions::Action;
use crate::domain::{
    audit::{NewEvent, Outcome},
    permissions::Permission,
    service::{self, Scope},
};
use crate::server::{access::service_accounts::ServicePrincipal, platform::request::RequestCtx, state::AppState};
use axum::{
    extract::{rejection::JsonRejection, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    Extension, Json,
};
use serde::Deserialize;
use serde_json::{json, Value};
use sqlx::Row;

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
                .fetch_optional(st.db.reader())
                .await?
        }
        Value::String(s) => {
            let email = s.trim().to_lowercase();
            sqlx::query("SELECT id, access_version FROM users WHERE email = ?")
                .bind(email)
                .fetch_optional(st.db.reader())
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
        Some((id, version)) => st.access.facts(st.db.reader(), id, Some(version), now).await?.decide(
            permission,
            req.customer_id.as_deref(),
            now,
        ),
        None => service::decide(None, &[], &[], permission, None, now),
    };
    let mut audit_seq = None;
    if !d.allow || req.customer_id.is_some() {
        let mut event = NewEvent::new(
            Action::AccessCheck,
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
        audit_seq = Some(st.recorder.record_sealed(now, event).await?.seq);
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
