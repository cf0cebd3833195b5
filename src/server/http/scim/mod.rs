//! `/scim/v2`: the company's identity provider provisions employees
//! (RFC 7644). Authenticated by a service token with the `scim` scope.
//! Creating makes an invited employee; `active: false` or DELETE carries
//! out the same offboarding as the offboarding action, at once (sessions
//! end in the same transaction). Every change is recorded in the audit
//! chain in the transaction that makes it.

mod users;

use super::error::ApiError;
use crate::domain::actions::Action;
use crate::domain::{
    audit::{NewEvent, Outcome},
    scim::{self, ScimError},
    service::Scope,
};
use crate::server::{access::service_accounts::ServicePrincipal, platform::request::RequestCtx, state::AppState};
use axum::{
    body::Bytes,
    extract::{Path, Query, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Extension,
};
use serde::Deserialize;
use serde_json::{json, Value};
use users::{change, create, delete, list, resource, stored, COLS};

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
    super::authenticate_service(st, ctx, headers, Scope::Scim)
        .await
        .map_err(ApiError::scim)
}

fn parse_body(body: &Bytes) -> Result<Value, ScimError> {
    serde_json::from_slice(body).map_err(|_| ScimError::bad("invalidSyntax", "The body is not valid JSON."))
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
            .fetch_optional(st.db.pool())
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
            "authenticationSchemes": [{ "type": "oauthbearertoken", "name": "Bearer token", "description": "A Gatehouse service-account \
                token with the scim scope", "primary": true }],
            "meta": { "resourceType": "ServiceProviderConfig", "location": here.to_string() },
        }),
    ))
}
