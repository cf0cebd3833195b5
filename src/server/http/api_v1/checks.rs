//! `POST /api/v1/access-checks`: may employee E do P on customer C? Every
//! answer that denies or names a customer is recorded.

use super::{authenticate, printable};
use crate::domain::{
    actions::Action,
    audit::{NewEvent, Outcome},
    permissions::Permission,
    service::{self, Scope},
};
use crate::server::{
    access::service_accounts::ServicePrincipal, http::error::ApiError, platform::request::RequestCtx, state::AppState,
};
use axum::{
    extract::{rejection::JsonRejection, State},
    http::HeaderMap,
    Extension, Json,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sqlx::Row;
use utoipa::ToSchema;

/// What the employee wants to touch.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Resource {
    /// A kind of record: lower-case letters, digits, `_`, `.`, `-`.
    #[serde(rename = "type")]
    #[schema(pattern = r"^[a-z0-9_.\-]{1,64}$", min_length = 1, max_length = 64)]
    pub kind: String,
    #[schema(
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]{1,128}$",
        min_length = 1,
        max_length = 128
    )]
    pub id: String,
}

/// May this employee use this permission on this resource now?
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = AccessCheck)]
pub struct CheckRequest {
    /// An employee id (number) or email (string).
    #[schema(schema_with = employee_schema)]
    pub employee: Value,
    #[schema(schema_with = permission_schema)]
    pub permission: String,
    pub resource: Resource,
    /// The customer whose data it is: the check is then recorded.
    #[serde(default)]
    #[schema(
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]{1,128}$",
        min_length = 1,
        max_length = 128
    )]
    pub customer_id: Option<String>,
    /// Why, for the audit trail (a ticket, a task).
    #[serde(default)]
    #[schema(pattern = r"^[^\u0000-\u001F\u007F-\u009F]{0,500}$", max_length = 500)]
    pub purpose: Option<String>,
}

/// An employee by id or by email.
pub(super) fn employee_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, OneOfBuilder, SchemaFormat, Type};
    OneOfBuilder::new()
        .item(ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(1)))
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Email))),
        )
        .build()
        .into()
}

/// Every permission identifier.
fn permission_schema() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(Permission::ALL.iter().map(|p| p.id())))
        .build()
}

/// The answer to an access check.
#[derive(Debug, Serialize, ToSchema)]
pub struct Decision {
    /// `allow` or `deny`.
    #[schema(pattern = "^(allow|deny)$")]
    pub decision: &'static str,
    pub reason: String,
    /// The grant that allows it.
    pub grant: Option<GrantRef>,
    /// The employee, when one was found.
    pub employee_id: Option<i64>,
    /// The audit event recording this check, when one was written.
    pub audit_seq: Option<i64>,
    pub request_id: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GrantRef {
    pub id: i64,
    pub role: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub expires_at: Option<i64>,
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
#[utoipa::path(
    post,
    path = "/api/v1/access-checks",
    tag = "access",
    summary = "May an employee use a permission now?",
    description = "Scope access:check. Denies, and checks naming a customer, are recorded in the audit trail \
                   before the answer is sent.",
    request_body = CheckRequest,
    responses((status = 200, description = "The decision", body = Decision), ApiError),
    security(("bearer" = []))
)]
pub async fn access_check(
    State(st): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    headers: HeaderMap,
    body: Result<Json<CheckRequest>, JsonRejection>,
) -> Result<Json<Decision>, ApiError> {
    let service = authenticate(&st, &ctx, &headers, Scope::AccessCheck).await?;
    let Json(req) = body?;
    let permission = validate(&req).map_err(ApiError::unprocessable)?;
    Ok(Json(decide(&st, &ctx, &service, &req, permission).await?))
}

async fn decide(
    st: &AppState,
    ctx: &RequestCtx,
    service: &ServicePrincipal,
    req: &CheckRequest,
    permission: Permission,
) -> Result<Decision, sqlx::Error> {
    let now = st.clock.now();
    let row = match &req.employee {
        Value::Number(n) => {
            sqlx::query("SELECT id, access_version FROM users WHERE id = ?")
                .bind(n.as_i64().unwrap_or(0))
                .fetch_optional(st.db.pool())
                .await?
        }
        Value::String(s) => {
            let email = s.trim().to_lowercase();
            sqlx::query("SELECT id, access_version FROM users WHERE email = ?")
                .bind(email)
                .fetch_optional(st.db.pool())
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
        Some((id, version)) => st.access.facts(st.db.pool(), id, Some(version), now).await?.decide(
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
    Ok(Decision {
        decision: if d.allow { "allow" } else { "deny" },
        reason: d.reason,
        grant: d.grant_id.map(|id| GrantRef {
            id,
            role: d.role.clone(),
            expires_at: d.grant_expires_at,
        }),
        employee_id,
        audit_seq,
        request_id: ctx.request_id.clone(),
    })
}
