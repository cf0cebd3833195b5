//! The error type that crosses the wire from server functions. Internal
//! details never leave the server: `Internal` carries only a request id.

use leptos::server_fn::{
    codec::JsonEncoding,
    error::{FromServerFnError, ServerFnErrorErr},
};
use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
pub use server_side::{current_request_id, internal, set_status, RequestId};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum AppError {
    /// The request could not be read (malformed form, bad encoding).
    #[error("{0}")]
    BadRequest(String),
    /// Input was read but is not acceptable; the message says why.
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("You don't have permission to do that.")]
    Forbidden,
    /// Allowed in general, refused here by a rule; the message says which.
    #[error("{0}")]
    Refused(String),
    #[error("Not found.")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    #[error("{message}")]
    TooManyAttempts { message: String, retry_after: i64 },
    /// Too much work at once (every password-hashing slot taken): 503.
    #[error("Gatehouse is busy. Try again in {retry_after} seconds.")]
    Busy { retry_after: i64 },
    #[error(
        "Something went wrong on our side. If it keeps happening, contact your administrator with request id {0}."
    )]
    Internal(String),
}

impl AppError {
    pub fn status(&self) -> u16 {
        match self {
            AppError::BadRequest(_) => 400,
            AppError::Validation(_) => 422,
            AppError::Unauthorized(_) => 401,
            AppError::Forbidden => 403,
            AppError::Refused(_) => 403,
            AppError::NotFound => 404,
            AppError::Conflict(_) => 409,
            AppError::TooManyAttempts { .. } => 429,
            AppError::Busy { .. } => 503,
            AppError::Internal(_) => 500,
        }
    }

    pub fn sign_in_required() -> Self {
        AppError::Unauthorized("Please sign in.".into())
    }
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        match value {
            ServerFnErrorErr::Args(_) | ServerFnErrorErr::Deserialization(_) => {
                let e = AppError::BadRequest("The form could not be read. Check the fields and try again.".into());
                #[cfg(feature = "ssr")]
                set_status(&e);
                e
            }
            ServerFnErrorErr::Request(_) | ServerFnErrorErr::Response(_) => {
                AppError::Internal("unavailable: the server could not be reached".into())
            }
            other => {
                #[cfg(feature = "ssr")]
                {
                    internal(other)
                }
                #[cfg(not(feature = "ssr"))]
                {
                    let _ = other;
                    AppError::Internal("unknown".into())
                }
            }
        }
    }
}

impl From<crate::domain::validation::ValidationError> for AppError {
    fn from(e: crate::domain::validation::ValidationError) -> Self {
        AppError::Validation(capitalise(&e.to_string()))
    }
}

impl From<crate::domain::grants::RuleError> for AppError {
    fn from(e: crate::domain::grants::RuleError) -> Self {
        use crate::domain::grants::RuleError as R;
        let msg = e.to_string();
        match e {
            R::OwnAccess | R::SameApprover | R::LastAdmin => AppError::Refused(msg),
            R::ExpiryRequired(..) | R::TooLong(..) | R::ExpiryInPast | R::ReasonRequired | R::BadDuration => {
                AppError::Validation(msg)
            }
            R::NotGrantable(_) | R::SeparationOfDuties | R::AlreadyHeld(_) | R::NotPending | R::AlreadyEnded => {
                AppError::Conflict(msg)
            }
        }
    }
}

impl From<crate::domain::roles::RoleError> for AppError {
    fn from(e: crate::domain::roles::RoleError) -> Self {
        use crate::domain::roles::RoleError as R;
        match e {
            R::OwnChange | R::NotAnAdministrator => AppError::Refused(e.to_string()),
            _ => AppError::Validation(e.to_string()),
        }
    }
}

impl From<crate::domain::offboarding::OffboardError> for AppError {
    fn from(e: crate::domain::offboarding::OffboardError) -> Self {
        use crate::domain::offboarding::OffboardError as O;
        match e {
            O::AlreadyOffboarded => AppError::Conflict(e.to_string()),
            _ => AppError::Validation(e.to_string()),
        }
    }
}

impl From<crate::domain::elevation::ElevationError> for AppError {
    fn from(e: crate::domain::elevation::ElevationError) -> Self {
        use crate::domain::elevation::ElevationError;
        let m = e.to_string();
        match e {
            ElevationError::OwnRequest | ElevationError::NotAnApprover => AppError::Refused(m),
            ElevationError::InvalidTransition(_) | ElevationError::AlreadyApproved | ElevationError::Duplicate => {
                AppError::Conflict(m)
            }
            _ => AppError::Validation(m),
        }
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str() + if s.ends_with('.') { "" } else { "." },
        None => String::new(),
    }
}

/// Server side of error handling: internal errors are logged with the
/// request id and replaced by a message that only carries that id.
#[cfg(feature = "ssr")]
mod server_side {
    use super::AppError;
    use leptos::prelude::*;

    /// The request id of the current request, set by the request-id middleware.
    #[derive(Clone, Debug)]
    pub struct RequestId(pub String);

    pub fn current_request_id() -> String {
        use_context::<http::request::Parts>()
            .and_then(|p| p.extensions.get::<RequestId>().map(|r| r.0.clone()))
            .unwrap_or_else(|| "unknown".into())
    }

    /// Logs `err` with the request id and returns the public error, which
    /// carries only that id. The status is set where the error becomes a
    /// response (`set_status`, called by every server function).
    pub fn internal(err: impl std::fmt::Display) -> AppError {
        let id = current_request_id();
        tracing::error!(request_id = %id, error = %err, "internal error");
        AppError::Internal(id)
    }

    /// Sets the HTTP status of a server function's error response. Plain
    /// HTML form posts keep the framework's redirect instead.
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
            if let AppError::TooManyAttempts { retry_after, .. } | AppError::Busy { retry_after } = err {
                if let Ok(v) = http::HeaderValue::from_str(&retry_after.to_string()) {
                    opts.insert_header(http::header::RETRY_AFTER, v);
                }
            }
        }
    }

    impl From<sqlx::Error> for AppError {
        fn from(e: sqlx::Error) -> Self {
            internal(format_args!("database: {e}"))
        }
    }

    impl From<crate::server::platform::crypto::password::Busy> for AppError {
        fn from(_: crate::server::platform::crypto::password::Busy) -> Self {
            AppError::Busy { retry_after: 5 }
        }
    }
}
