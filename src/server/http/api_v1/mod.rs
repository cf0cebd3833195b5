//! The HTTP API for backend services (JSON, under /api/v1), authenticated
//! with service-account bearer tokens; and the auditors' exports, for a
//! signed-in browser.

mod checkpoints;
mod checks;
mod events;
mod exports;
mod openapi;
mod reviews;
mod witness;

pub use checkpoints::{checkpoints, consistency, proof, public_key};
pub use checks::access_check;
pub use events::{audit_events, EVENTS_BODY_LIMIT, MAX_BATCH};
pub use exports::{audit_bundle, audit_csv, audit_report_csv};
pub use openapi::openapi;
pub use reviews::{review_evidence, review_report_csv};
pub use witness::cosignatures;

use super::{authenticate_service as authenticate, error::ApiError};
use crate::domain::permissions::Permission;
use crate::server::{access::authz, platform::request::RequestCtx, state::AppState};

/// For routes used from the browser (session cookie, not a token): the
/// signed-in employee must hold `perm`; a refusal is recorded.
async fn signed_in_with(
    st: &AppState,
    ctx: &RequestCtx,
    perm: Permission,
    operation: &str,
    what: &str,
) -> Result<(), ApiError> {
    use crate::errors::AppError;
    match authz::require(st, ctx, perm, operation).await {
        Ok(_) => Ok(()),
        Err(AppError::Unauthorized(m)) => Err(ApiError::unauthorized(m)),
        Err(AppError::Forbidden) => Err(ApiError::forbidden(format!("You don't have permission to {what}."))),
        Err(e) => Err(ApiError::internal(e)),
    }
}

/// The signed trail's readers: a signed-in employee with audit:read (no
/// Authorization header), or a witness's token with audit:witness.
async fn reader(
    st: &AppState,
    ctx: &RequestCtx,
    headers: &axum::http::HeaderMap,
    operation: &str,
) -> Result<(), ApiError> {
    if headers.contains_key(axum::http::header::AUTHORIZATION) {
        authenticate(st, ctx, headers, crate::domain::service::Scope::AuditWitness).await?;
        return Ok(());
    }
    signed_in_with(st, ctx, Permission::AuditRead, operation, "read the audit trail").await
}

/// Printable text of at most `max` characters.
fn printable(s: &str, max: usize) -> bool {
    !s.is_empty() && s.chars().count() <= max && !s.chars().any(char::is_control)
}

/// 415 unless the request says its body is JSON.
fn require_json(headers: &axum::http::HeaderMap) -> Result<(), ApiError> {
    let is_json = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    if is_json {
        Ok(())
    } else {
        Err(ApiError::not_json())
    }
}
