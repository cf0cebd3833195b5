//! The one error type of the HTTP API and the SCIM routes. Handlers return
//! `Result<_, ApiError>`; the error becomes a response here, and only here:
//! its status is set, a server error is logged with the request id and its
//! cause, and the client sees a message and the request id, never the cause.

use crate::domain::scim::{ScimError, ERROR_SCHEMA};
use axum::{
    extract::rejection::{JsonRejection, QueryRejection},
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde::Serialize;
use serde_json::json;
use std::collections::BTreeMap;
use utoipa::{
    openapi::{RefOr, ResponseBuilder, ResponsesBuilder},
    IntoResponses, ToSchema,
};

tokio::task_local! {
    /// The request id of the request being answered (see `with_request_id`).
    static REQUEST_ID: String;
}

/// Runs `f` (the rest of the request) with `id` as its request id, so an
/// error can name it wherever it is turned into a response.
pub async fn with_request_id<F: std::future::Future>(id: String, f: F) -> F::Output {
    REQUEST_ID.scope(id, f).await
}

/// The request id of the request being answered.
pub fn request_id() -> String {
    REQUEST_ID.try_with(Clone::clone).unwrap_or_else(|_| "unknown".into())
}

/// How the error is written: Gatehouse's JSON, or RFC 7644's SCIM error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialect {
    Json,
    Scim,
}

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    /// RFC 7644's `scimType`, for SCIM answers.
    scim_type: Option<&'static str>,
    dialect: Dialect,
    /// Asks for a bearer token (`WWW-Authenticate: Bearer`).
    bearer: bool,
    /// What went wrong inside: logged, never sent.
    cause: Option<String>,
    /// Seconds to wait (`Retry-After`), for 429.
    retry_after: Option<i64>,
}

/// The body of every error answer of the JSON API.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong, for people; names the field at fault.
    pub error: String,
    /// Quote it to an administrator; the server log has the details.
    pub request_id: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            scim_type: None,
            dialect: Dialect::Json,
            bearer: false,
            cause: None,
            retry_after: None,
        }
    }

    /// 429: too many requests without a valid token from this address.
    pub fn too_many(retry_after: i64) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many requests without a valid API token from this address; try again later.",
            )
        }
    }

    /// 400: the request could not be read.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 401 for a route that takes a service token.
    pub fn token_required() -> Self {
        Self {
            bearer: true,
            ..Self::new(
                StatusCode::UNAUTHORIZED,
                "A valid API token is required (Authorization: Bearer …).",
            )
        }
    }

    /// 401 for a route used from a signed-in browser.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }

    /// 422: read, but not acceptable; the message names the field.
    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, message)
    }

    /// 415: the body is not JSON.
    pub fn not_json() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Send JSON with Content-Type: application/json.",
        )
    }

    /// 500: `cause` is logged with the request id, never sent.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        Self {
            cause: Some(cause.to_string()),
            ..Self::new(StatusCode::INTERNAL_SERVER_ERROR, "")
        }
    }

    /// The same error, written as RFC 7644 asks (SCIM routes).
    pub fn scim(mut self) -> Self {
        self.dialect = Dialect::Scim;
        self
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        Self::internal(format_args!("database: {e}"))
    }
}

impl From<ScimError> for ApiError {
    fn from(e: ScimError) -> Self {
        let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
        Self {
            scim_type: e.scim_type,
            ..Self::new(status, e.detail)
        }
        .scim()
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match &r {
            JsonRejection::MissingJsonContentType(_) => Self::not_json(),
            JsonRejection::JsonSyntaxError(_) => Self::bad_request("The body is not valid JSON."),
            // serde's message names the field and what is wrong with it; it
            // never contains server internals.
            JsonRejection::JsonDataError(e) => Self::unprocessable(format!(
                "The request does not match the schema: {}",
                e.body_text()
                    .trim_start_matches("Failed to deserialize the JSON body into the target type: ")
            )),
            JsonRejection::BytesRejection(_) => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "The request body could not be read or is too large.",
            ),
            _ => Self::bad_request("The request could not be read."),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(_: QueryRejection) -> Self {
        Self::unprocessable("A query parameter is not valid.")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let request_id = request_id();
        let message = if self.status.is_server_error() {
            tracing::error!(
                request_id = %request_id,
                status = self.status.as_u16(),
                error = self.cause.as_deref().unwrap_or("(no cause recorded)"),
                "request failed"
            );
            match self.dialect {
                Dialect::Json => "Something went wrong on our side.".to_owned(),
                Dialect::Scim => format!("Something went wrong on our side (request id {request_id})."),
            }
        } else {
            self.message
        };
        let mut response = match self.dialect {
            Dialect::Json => (
                self.status,
                Json(ErrorBody {
                    error: message,
                    request_id,
                }),
            )
                .into_response(),
            Dialect::Scim => {
                let mut body =
                    json!({ "schemas": [ERROR_SCHEMA], "status": self.status.as_u16().to_string(), "detail": message });
                if let Some(t) = self.scim_type {
                    body["scimType"] = json!(t);
                }
                let mut r = (self.status, body.to_string()).into_response();
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(super::scim::CONTENT_TYPE),
                );
                r
            }
        };
        if self.bearer {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        response
    }
}

/// Every status an `ApiError` of the JSON API can have, with its body, for
/// the OpenAPI document (`responses(..., ApiError)` on each route).
impl IntoResponses for ApiError {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::response::Response>> {
        let statuses: [(u16, &str); 10] = [
            (400, "The request could not be read (not JSON, a malformed parameter)"),
            (401, "No valid API token (or, for browser routes, not signed in)"),
            (
                403,
                "The token lacks the route's scope (or the employee the permission)",
            ),
            (404, "Nothing found"),
            (
                409,
                "Conflicts with what is stored (an Idempotency-Key reused for another batch)",
            ),
            (413, "The body is too large"),
            (415, "The body is not application/json"),
            (422, "Read, but not acceptable; the message names the field"),
            (
                429,
                "Too many requests without a valid API token from this address this minute (see Retry-After)",
            ),
            (500, "Something went wrong on Gatehouse's side; quote the request id"),
        ];
        let mut responses = ResponsesBuilder::new();
        for (status, description) in statuses {
            let body = utoipa::openapi::ContentBuilder::new()
                .schema(Some(ErrorBody::schema_ref()))
                .build();
            let response = ResponseBuilder::new()
                .description(description)
                .content("application/json", body)
                .build();
            responses = responses.response(status.to_string(), response);
        }
        responses.build().into()
    }
}

impl ErrorBody {
    fn schema_ref() -> RefOr<utoipa::openapi::schema::Schema> {
        RefOr::Ref(utoipa::openapi::Ref::from_schema_name("ErrorBody"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body(r: Response) -> (StatusCode, axum::http::HeaderMap, serde_json::Value) {
        let (parts, body) = r.into_parts();
        let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
        (parts.status, parts.headers, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn a_server_error_shows_the_request_id_and_never_its_cause() {
        let r = REQUEST_ID.sync_scope("req-42".into(), || {
            ApiError::internal("database: no such table: secret_things").into_response()
        });
        let (status, _, json) = body(r).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            json,
            json!({ "error": "Something went wrong on our side.", "request_id": "req-42" })
        );
    }

    #[tokio::test]
    async fn client_errors_carry_their_message_and_status() {
        let r = REQUEST_ID.sync_scope("req-7".into(), || ApiError::token_required().into_response());
        let (status, headers, json) = body(r).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");
        assert_eq!(json["request_id"], "req-7");
        assert!(json["error"].as_str().unwrap().contains("API token"));
        let (status, headers, _) = body(ApiError::unprocessable("limit: 1 to 1000").into_response()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(!headers.contains_key(header::WWW_AUTHENTICATE));
    }

    #[tokio::test]
    async fn scim_errors_are_written_as_rfc_7644_asks() {
        let e = ScimError {
            status: 409,
            scim_type: Some("uniqueness"),
            detail: "taken".into(),
        };
        let (status, headers, json) = body(ApiError::from(e).into_response()).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(headers[header::CONTENT_TYPE], "application/scim+json");
        assert_eq!(
            json,
            json!({ "schemas": [ERROR_SCHEMA], "status": "409", "detail": "taken", "scimType": "uniqueness" })
        );
        let r = REQUEST_ID.sync_scope("req-9".into(), || ApiError::internal("boom").scim().into_response());
        let (_, _, json) = body(r).await;
        assert_eq!(json["detail"], "Something went wrong on our side (request id req-9).");
    }

    #[test]
    fn every_status_is_declared_for_the_openapi_document() {
        let declared: Vec<String> = ApiError::responses().into_keys().collect();
        assert_eq!(
            declared,
            ["400", "401", "403", "404", "409", "413", "415", "422", "429", "500"]
        );
    }

    #[tokio::test]
    async fn a_throttled_request_says_when_to_come_back() {
        let (status, headers, json) = body(ApiError::too_many(17).into_response()).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(headers[header::RETRY_AFTER], "17");
        assert!(json["error"].as_str().unwrap().contains("API token"));
    }
}
