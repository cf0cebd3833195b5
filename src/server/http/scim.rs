//! `/scim/v2`: the company's identity provider provisions employees
//! (RFC 7644). Authenticated by a service token with the `scim` scope.
//! Creating makes an invited employee; `active: false` or DELETE carries
//! out the same offboarding as the offboarding action, at once (sessions
//! end in the same transaction). Every change is recorded in the audit
//! chain in the transaction that makes it.

use super::error::ApiError;
use crate::domain::actions::Action;
use crate::domain::{
    audit::{NewEvent, Outcome},
    grants as rules,
    scim::{self, Filter, ScimError, UserFields},
    service::Scope,
    Millis,
};
use crate::server::{
    access::{
        grants, people,
        service_accounts::{self as svc, ApiAuthError, ServicePrincipal},
    },
    audit,
    identity::accounts,
    platform::{
        db::{opt_text, text, WriteTx},
        request::RequestCtx,
    },
    state::AppState,
};
use axum::{
    body::Bytes,
    extract::{Path, Query, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Extension,
};
use serde::Deserialize;
use serde_json::{json, Value};
use sqlx::Row;

pub const CONTENT_TYPE: &str = "application/scim+json";

fn respond(status: StatusCode, body: Value) -> Response {
    let mut r = (status, body.to_string()).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    r
}

fn not_found() -> ScimError {
    ScimError {
        status: 404,
        scim_type: None,
        detail: "No such user.".into(),
    }
}

async fn authenticate(st: &AppState, ctx: &RequestCtx, headers: &HeaderMap) -> Result<ServicePrincipal, ApiError> {
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    match svc::authenticate(st, ctx, authorization, Scope::Scim).await {
        Ok(p) => Ok(p),
        Err(ApiAuthError::Unauthenticated) => Err(ApiError::token_required().scim()),
        Err(ApiAuthError::MissingScope) => Err(ApiError::forbidden("This token does not have the scim scope.").scim()),
        Err(ApiAuthError::Internal(e)) => Err(ApiError::internal(e).scim()),
    }
}

fn parse_body(body: &Bytes) -> Result<Value, ScimError> {
    serde_json::from_slice(body).map_err(|_| ScimError::bad("invalidSyntax", "The body is not valid JSON."))
}

/// An employee as SCIM sees them.
struct Stored {
    id: i64,
    fields: UserFields,
    status: String,
    created: Millis,
    updated: Millis,
}

const COLS: &str = "id, email, display_name, department, status, scim_external_id, created_at, updated_at";

fn stored(r: &sqlx::any::AnyRow) -> Result<Stored, sqlx::Error> {
    let status = text(r, "status")?;
    Ok(Stored {
        id: r.try_get("id")?,
        fields: UserFields {
            email: text(r, "email")?,
            name: text(r, "display_name")?,
            department: text(r, "department")?,
            // Suspension is Gatehouse's own, temporary measure; to the
            // provider the employee is still there until offboarded.
            active: status != "offboarded",
            external_id: opt_text(r, "scim_external_id")?,
        },
        status,
        created: r.try_get("created_at")?,
        updated: r.try_get("updated_at")?,
    })
}

/// The employee with this SCIM id, unless the provider deleted them.
async fn load(tx: &mut WriteTx, id: &str) -> Result<Option<Stored>, sqlx::Error> {
    let Ok(id) = id.parse::<i64>() else { return Ok(None) };
    let sql = format!("SELECT {COLS} FROM users WHERE id = ? AND scim_deleted_at IS NULL");
    sqlx::query(&sql)
        .bind(id)
        .fetch_optional(tx.conn())
        .await?
        .as_ref()
        .map(stored)
        .transpose()
}

fn rfc3339(ms: Millis) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

fn location(st: &AppState, id: i64) -> String {
    let mut url = st.config.public_url.clone();
    url.set_path(&format!("/scim/v2/Users/{id}"));
    url.to_string()
}

fn resource(st: &AppState, u: &Stored) -> Value {
    let f = &u.fields;
    let mut v = json!({
        "schemas": [scim::USER_SCHEMA, scim::ENTERPRISE_SCHEMA],
        "id": u.id.to_string(),
        "userName": f.email,
        "displayName": f.name,
        "name": { "formatted": f.name },
        "emails": [{ "value": f.email, "type": "work", "primary": true }],
        "active": f.active,
        scim::ENTERPRISE_SCHEMA: { "department": f.department },
        "meta": {
            "resourceType": "User",
            "created": rfc3339(u.created),
            "lastModified": rfc3339(u.updated),
            "location": location(st, u.id),
        },
    });
    if let Some(x) = &f.external_id {
        v["externalId"] = json!(x);
    }
    v
}

// ------------------------------------------------------------------ list

#[derive(Debug, Deserialize)]
pub struct ListParams {
    filter: Option<String>,
    #[serde(rename = "startIndex")]
    start_index: Option<String>,
    count: Option<String>,
}

/// `GET /scim/v2/Users[?filter=userName eq "…"][&startIndex=1&count=100]`.
pub async fn list_users(
    State(st): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    headers: HeaderMap,
    Query(q): Query<ListParams>,
) -> Result<Response, ApiError> {
    authenticate(&st, &ctx, &headers).await?;
    let number = |v: &Option<String>, default: i64, name: &str| -> Result<i64, ScimError> {
        match v.as_deref().map(str::trim) {
            None | Some("") => Ok(default),
            Some(s) => s
                .parse::<i64>()
                .map_err(|_| ScimError::bad("invalidValue", format!("{name} must be a whole number."))),
        }
    };
    let parsed = (|| -> Result<_, ScimError> {
        let filter = q
            .filter
            .as_deref()
            .filter(|f| !f.trim().is_empty())
            .map(scim::parse_filter)
            .transpose()?;
        // RFC 7644 3.4.2.4: below 1 counts as 1; a negative count as 0.
        let start = number(&q.start_index, 1, "startIndex")?.max(1);
        let count = number(&q.count, 100, "count")?.clamp(0, scim::MAX_PAGE as i64);
        Ok((filter, start, count))
    })();
    let (filter, start, count) = parsed?;
    let v = list(&st, filter, start, count)
        .await
        .map_err(|e| ApiError::internal(e).scim())?;
    Ok(respond(StatusCode::OK, v))
}

async fn list(st: &AppState, filter: Option<Filter>, start: i64, count: i64) -> Result<Value, sqlx::Error> {
    let (clause, arg) = match &filter {
        // userName is case-insensitive (RFC 7643 4.1.1); emails are stored lower-cased.
        Some(Filter::UserName(v)) => (" AND email = ?", Some(v.trim().to_lowercase())),
        Some(Filter::ExternalId(v)) => (" AND scim_external_id = ?", Some(v.clone())),
        None => ("", None),
    };
    let total_sql = format!("SELECT COUNT(*) AS n FROM users WHERE scim_deleted_at IS NULL{clause}");
    let page_sql =
        format!("SELECT {COLS} FROM users WHERE scim_deleted_at IS NULL{clause} ORDER BY id LIMIT ? OFFSET ?");
    let mut total = sqlx::query(&total_sql);
    let mut page = sqlx::query(&page_sql);
    if let Some(a) = &arg {
        total = total.bind(a.clone());
        page = page.bind(a.clone());
    }
    let total: i64 = total.fetch_one(st.db.reader()).await?.try_get("n")?;
    let rows = page.bind(count).bind(start - 1).fetch_all(st.db.reader()).await?;
    let items = rows
        .iter()
        .map(|r| stored(r).map(|u| resource(st, &u)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(json!({
        "schemas": [scim::LIST_SCHEMA],
        "totalResults": total,
        "startIndex": start,
        "itemsPerPage": items.len(),
        "Resources": items,
    }))
}

/// `GET /scim/v2/Users/{id}`.
pub async fn get_user(
    State(st): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    authenticate(&st, &ctx, &headers).await?;
    let Ok(n) = id.parse::<i64>() else {
        return Err(not_found().into());
    };
    let sql = format!("SELECT {COLS} FROM users WHERE id = ? AND scim_deleted_at IS NULL");
    let found = async {
        sqlx::query(&sql)
            .bind(n)
            .fetch_optional(st.db.reader())
            .await?
            .as_ref()
            .map(stored)
            .transpose()
    };
    match found.await.map_err(|e| ApiError::internal(e).scim())? {
        Some(u) => Ok(respond(StatusCode::OK, resource(&st, &u))),
        None => Err(not_found().into()),
    }
}

// ---------------------------------------------------------------- changes

/// What went wrong while changing: a SCIM error for the provider (and,
/// when a rule refused, the reason to record), or a storage failure.
enum Failure {
    Scim(ScimError),
    Refused(ScimError, i64, Action),
    Db(sqlx::Error),
}

impl From<sqlx::Error> for Failure {
    fn from(e: sqlx::Error) -> Self {
        Failure::Db(e)
    }
}

impl From<ScimError> for Failure {
    fn from(e: ScimError) -> Self {
        Failure::Scim(e)
    }
}

async fn finish(
    st: &AppState,
    ctx: &RequestCtx,
    service: &ServicePrincipal,
    outcome: Result<Response, Failure>,
) -> Result<Response, ApiError> {
    match outcome {
        Ok(r) => Ok(r),
        Err(Failure::Scim(e)) => Err(e.into()),
        Err(Failure::Refused(e, user_id, action)) => {
            // The change was rolled back; the refusal is recorded on its own.
            let event = NewEvent::new(action, Outcome::Denied, service.actor(ctx))
                .target("user", user_id)
                .reason(e.detail.clone())
                .details(json!({ "source": "scim", "service": service.name }));
            match st.recorder.record(st.clock.now(), event).await {
                Ok(_) => Err(e.into()),
                Err(db) => Err(ApiError::internal(db).scim()),
            }
        }
        Err(Failure::Db(e)) => Err(ApiError::internal(e).scim()),
    }
}

async fn email_taken(tx: &mut WriteTx, email: &str, except: Option<i64>) -> Result<bool, sqlx::Error> {
    Ok(accounts::by_email(tx.conn(), email)
        .await?
        .is_some_and(|u| Some(u.id) != except))
}

fn taken() -> ScimError {
    ScimError {
        status: 409,
        scim_type: Some("uniqueness"),
        detail: "An employee with this userName (email) already exists.".into(),
    }
}

/// `POST /scim/v2/Users`: an invited employee. They sign in through the
/// identity provider, or an administrator sends them an invitation link.
pub async fn create_user(
    State(st): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let service = authenticate(&st, &ctx, &headers).await?;
    let outcome = create(&st, &ctx, &service, &body).await;
    finish(&st, &ctx, &service, outcome).await
}

async fn create(
    st: &AppState,
    ctx: &RequestCtx,
    service: &ServicePrincipal,
    body: &Bytes,
) -> Result<Response, Failure> {
    let fields = scim::user_from_resource(&parse_body(body)?, None)?;
    if !fields.active {
        return Err(ScimError::bad(
            "invalidValue",
            "Create employees with active: true; setting active to false later offboards them.",
        )
        .into());
    }
    let now = st.clock.now();
    let mut tx = st.db.begin_write().await?;
    if email_taken(&mut tx, &fields.email, None).await? {
        return Err(taken().into());
    }
    let id = accounts::insert(
        &mut tx,
        accounts::NewUser {
            email: &fields.email,
            display_name: &fields.name,
            department: &fields.department,
            password_hash: None,
            status: "invited",
        },
        now,
    )
    .await?;
    accounts::set_external_id(&mut tx, id, fields.external_id.as_deref()).await?;
    audit::append(
        &mut tx,
        now,
        vec![NewEvent::new(Action::Onboarded, Outcome::Success, service.actor(ctx)).target("user", id).details(json!({
            "source": "scim",
            "service": service.name,
            "email": fields.email,
            "department": fields.department,
            "external_id": fields.external_id,
            "before": null,
            "after": { "status": "invited", "name": fields.name, "email": fields.email, "department": fields.department },
        }))],
    )
    .await?;
    let u = load(&mut tx, &id.to_string())
        .await?
        .ok_or_else(|| sqlx::Error::RowNotFound)?;
    tx.commit().await?;
    let mut r = respond(StatusCode::CREATED, resource(st, &u));
    if let Ok(v) = HeaderValue::from_str(&location(st, id)) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    Ok(r)
}

/// `PUT /scim/v2/Users/{id}`: replaces what SCIM manages.
pub async fn replace_user(
    State(st): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let service = authenticate(&st, &ctx, &headers).await?;
    let outcome = change(&st, &ctx, &service, &id, |current| {
        scim::user_from_resource(&parse_body(&body)?, Some(current))
    })
    .await;
    finish(&st, &ctx, &service, outcome).await
}

/// `PATCH /scim/v2/Users/{id}`: `active: false` offboards at once.
pub async fn patch_user(
    State(st): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let service = authenticate(&st, &ctx, &headers).await?;
    let outcome = change(&st, &ctx, &service, &id, |current| {
        scim::apply_patch(current, &parse_body(&body)?)
    })
    .await;
    finish(&st, &ctx, &service, outcome).await
}

async fn change(
    st: &AppState,
    ctx: &RequestCtx,
    service: &ServicePrincipal,
    id: &str,
    new_fields: impl FnOnce(&UserFields) -> Result<UserFields, ScimError>,
) -> Result<Response, Failure> {
    let now = st.clock.now();
    let mut tx = st.db.begin_write().await?;
    let current = load(&mut tx, id).await?.ok_or_else(not_found)?;
    let new = new_fields(&current.fields)?;
    let old = &current.fields;
    if current.status == "offboarded" && new.active {
        return Err(ScimError::bad(
            "mutability",
            "This employee has been offboarded and cannot be reactivated; create a new employee instead.",
        )
        .into());
    }
    if new.email != old.email && email_taken(&mut tx, &new.email, Some(current.id)).await? {
        return Err(taken().into());
    }
    let profile_changed = new.email != old.email
        || new.name != old.name
        || new.department != old.department
        || new.external_id != old.external_id;
    if profile_changed {
        let profile = accounts::Profile {
            email: &new.email,
            name: &new.name,
            department: &new.department,
            external_id: new.external_id.as_deref(),
        };
        accounts::update_profile(&mut tx, current.id, profile, now).await?;
        audit::append(
            &mut tx,
            now,
            vec![NewEvent::new(Action::Updated, Outcome::Success, service.actor(ctx)).target("user", current.id).details(json!({
                "source": "scim",
                "service": service.name,
                "before": { "name": old.name, "email": old.email, "department": old.department, "external_id": old.external_id },
                "after": { "name": new.name, "email": new.email, "department": new.department, "external_id": new.external_id },
            }))],
        )
        .await?;
    }
    if old.active && !new.active {
        deprovision(
            &mut tx,
            ctx,
            service,
            &current,
            "deactivated by the identity provider (SCIM)",
            now,
        )
        .await?;
    }
    let u = load(&mut tx, id).await?.ok_or_else(|| sqlx::Error::RowNotFound)?;
    tx.commit().await?;
    Ok(respond(StatusCode::OK, resource(st, &u)))
}

/// The offboarding action's own work, unless the rules refuse (the last
/// active administrator is never offboarded from outside).
async fn deprovision(
    tx: &mut WriteTx,
    ctx: &RequestCtx,
    service: &ServicePrincipal,
    u: &Stored,
    reason: &str,
    now: Millis,
) -> Result<(), Failure> {
    let admins = grants::active_admin_ids(tx.conn(), now).await?;
    // A service is never the employee itself, so only the last-admin rule applies.
    if rules::is_last_admin(u.id, admins.contains(&u.id), admins.len()) {
        let e = ScimError {
            status: 409,
            scim_type: None,
            detail: "This is the last active administrator; Gatehouse keeps them until another administrator exists."
                .into(),
        };
        return Err(Failure::Refused(e, u.id, Action::Offboard));
    }
    people::offboard_in(tx, &service.actor(ctx), None, u.id, &u.status, reason, now).await?;
    Ok(())
}

/// `DELETE /scim/v2/Users/{id}`: offboards (if not already) and hides the
/// employee from SCIM from then on; Gatehouse keeps the record and its history.
pub async fn delete_user(
    State(st): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let service = authenticate(&st, &ctx, &headers).await?;
    let outcome = delete(&st, &ctx, &service, &id).await;
    finish(&st, &ctx, &service, outcome).await
}

async fn delete(st: &AppState, ctx: &RequestCtx, service: &ServicePrincipal, id: &str) -> Result<Response, Failure> {
    let now = st.clock.now();
    let mut tx = st.db.begin_write().await?;
    let current = load(&mut tx, id).await?.ok_or_else(not_found)?;
    if current.status != "offboarded" {
        deprovision(
            &mut tx,
            ctx,
            service,
            &current,
            "deleted by the identity provider (SCIM)",
            now,
        )
        .await?;
    }
    accounts::mark_scim_deleted(&mut tx, current.id, now).await?;
    audit::append(
        &mut tx,
        now,
        vec![NewEvent::new(Action::ScimDeleted, Outcome::Success, service.actor(ctx))
            .target("user", current.id)
            .details(json!({ "source": "scim", "service": service.name }))],
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /scim/v2/ServiceProviderConfig` (RFC 7643 5): what this endpoint supports.
pub async fn service_provider_config(
    State(st): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authenticate(&st, &ctx, &headers).await?;
    let mut here = st.config.public_url.clone();
    here.set_path("/scim/v2/ServiceProviderConfig");
    Ok(respond(
        StatusCode::OK,
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
            "patch": { "supported": true },
            "bulk": { "supported": false, "maxOperations": 0, "maxPayloadSize": 0 },
            "filter": { "supported": true, "maxResults": scim::MAX_PAGE },
            "changePassword": { "supported": false },
            "sort": { "supported": false },
            "etag": { "supported": false },
            "authenticationSchemes": [{ "type": "oauthbearertoken", "name": "Bearer token", "description": "A Gatehouse service-account token with the scim scope", "primary": true }],
            "meta": { "resourceType": "ServiceProviderConfig", "location": here.to_string() },
        }),
    ))
}
