//! HTTP: the router and its middleware, the `/api/v1` routes for backend
//! services and auditors' tools, and the SCIM routes. The top area: it may
//! use every other one; none uses it.

pub mod api_v1;
pub mod assets;
pub mod error;
pub mod metrics;
pub mod middleware;
pub mod router;
pub mod scim;
pub mod tls;

pub use router::router;

use crate::domain::service::Scope;
use crate::server::{
    access::service_accounts::{self as svc, ApiAuthError, ServicePrincipal},
    platform::request::RequestCtx,
    state::AppState,
};
use axum::http::{header, HeaderMap};
use error::ApiError;

/// The service behind the request's bearer token, if the token is valid
/// and holds `scope`.
async fn authenticate_service(
    st: &AppState,
    ctx: &RequestCtx,
    headers: &HeaderMap,
    scope: Scope,
) -> Result<ServicePrincipal, ApiError> {
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    match svc::authenticate(st, ctx, authorization, scope).await {
        Ok(p) => Ok(p),
        Err(ApiAuthError::Unauthenticated) => Err(ApiError::token_required()),
        Err(ApiAuthError::MissingScope) => Err(ApiError::forbidden(format!(
            "This token does not have the {} scope.",
            scope.id()
        ))),
        Err(ApiAuthError::Throttled(wait)) => Err(ApiError::too_many(wait)),
        Err(ApiAuthError::Internal(e)) => Err(ApiError::internal(e)),
    }
}
