//! The HTTP API for backend services (JSON, under /api/v1), authenticated
//! with service-account bearer tokens; and the auditors' exports, for a
//! signed-in browser.

mod checkpoints;
mod checks;
mod events;
mod exports;
mod openapi;

pub use checkpoints::{checkpoints, proof, public_key};
pub use checks::access_check;
pub use events::{audit_events, EVENTS_BODY_LIMIT, MAX_BATCH};
pub use exports::{audit_bundle, audit_csv, audit_report_csv};
pub use openapi::openapi;

use crate::domain::{permissions::Permission, service::Scope};
use crate::server::{
    access::{
        authz,
        service_accounts::{self as svc, ApiAuthError, ServicePrincipal},
    },
    platform::request::RequestCtx,
    state::AppState,
};
use axum::{
    extract::rejection::JsonRejection,
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde_json::json;

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
    match authz::require(st, ctx, perm, operation).await {
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

/// Printable text of at most `max` characters.
fn printable(s: &str, max: usize) -> bool {
    !s.is_empty() && s.chars().count() <= max && !s.chars().any(char::is_control)
}
