//! Server side of error handling: internal errors are logged with the
//! request id and replaced by a message that only carries that id.

use crate::errors::AppError;
use leptos::prelude::*;

/// The request id of the current request, set by the request-id middleware.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

pub fn current_request_id() -> String {
    use_context::<http::request::Parts>()
        .and_then(|p| p.extensions.get::<RequestId>().map(|r| r.0.clone()))
        .unwrap_or_else(|| "unknown".into())
}

/// Logs `err` with the request id and returns the public error.
pub fn internal(err: impl std::fmt::Display) -> AppError {
    let id = current_request_id();
    tracing::error!(request_id = %id, error = %err, "internal error");
    let e = AppError::Internal(id);
    set_status(&e);
    e
}

/// Sets the HTTP status of a server function's error response. Plain HTML
/// form posts keep the framework's redirect instead.
pub fn set_status(err: &AppError) {
    let accepts_html = use_context::<http::request::Parts>()
        .and_then(|p| {
            p.headers
                .get(http::header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.contains("text/html"))
        })
        .unwrap_or(false);
    if accepts_html {
        return;
    }
    if let Some(opts) = use_context::<leptos_axum::ResponseOptions>() {
        if let Ok(code) = http::StatusCode::from_u16(err.status()) {
            opts.set_status(code);
        }
        if let AppError::TooManyAttempts { retry_after, .. } = err {
            if let Ok(v) = http::HeaderValue::from_str(&retry_after.to_string()) {
                opts.insert_header(http::header::RETRY_AFTER, v);
            }
        }
    }
}

/// Finishes a server function: sets the status of an error response.
pub fn finish<T>(result: Result<T, AppError>) -> Result<T, AppError> {
    if let Err(e) = &result {
        set_status(e);
    }
    result
}

impl From<sqlx::Error> for AppError {
    fn from(e: sqlx::Error) -> Self {
        internal(format_args!("database: {e}"))
    }
}
