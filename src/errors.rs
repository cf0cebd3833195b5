//! The error type that crosses the wire from server functions. Internal
//! details never leave the server: `Internal` carries only a request id.

use leptos::server_fn::{
    codec::JsonEncoding,
    error::{FromServerFnError, ServerFnErrorErr},
};
use serde::{Deserialize, Serialize};

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
                crate::server::errors::set_status(&e);
                e
            }
            ServerFnErrorErr::Request(_) | ServerFnErrorErr::Response(_) => {
                AppError::Internal("unavailable: the server could not be reached".into())
            }
            other => {
                #[cfg(feature = "ssr")]
                {
                    crate::server::errors::internal(other)
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
        AppError::Validation(e.to_string())
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

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str() + if s.ends_with('.') { "" } else { "." },
        None => String::new(),
    }
}
