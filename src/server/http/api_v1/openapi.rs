//! `GET /api/v1/openapi.json`: the API's description, generated from the
//! handlers' request and response types and the statuses each can answer.

use super::{checkpoints, checks, events, witness};
use crate::server::http::error::ErrorBody;
use axum::{http::header, response::IntoResponse, Json};
use utoipa::{
    openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme},
    Modify, OpenApi,
};

#[derive(OpenApi)]
#[openapi(
    info(title = "Gatehouse API", version = "1", description = "Access checks and reported accesses for backend \
         services (service-account tokens), and the signed audit trail for auditors' tools."),
    paths(
        checks::access_check,
        events::audit_events,
        checkpoints::public_key,
        checkpoints::checkpoints,
        checkpoints::proof,
        checkpoints::consistency,
        witness::cosignatures,
    ),
    components(schemas(ErrorBody)),
    modifiers(&Security),
    security(("bearer" = []))
)]
pub struct ApiDoc;

/// The two ways in: a service token, or a signed-in browser (auditors).
struct Security;

impl Modify for Security {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A service-account token (ghs_…)"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "gatehouse",
                "A signed-in browser session (auditors)",
            ))),
        );
    }
}

/// `GET /api/v1/openapi.json`: the API's description.
pub async fn openapi() -> impl IntoResponse {
    ([(header::CACHE_CONTROL, "no-cache")], Json(ApiDoc::openapi()))
}
