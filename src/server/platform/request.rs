//! Who is asking: set on every request by the auth layer (`http`), read
//! by every server function and route. The sign-in state is what the
//! session stores under `AUTH_KEY`; `identity` is the only area that
//! changes it.

use crate::domain::{audit::Actor, Millis};
use crate::errors::AppError;
use serde::{Deserialize, Serialize};

/// The session key the sign-in state is stored under.
pub const AUTH_KEY: &str = "auth";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Password checked; a TOTP or recovery code is due.
    NeedsCode,
    /// Password checked; the account has no TOTP yet and must enrol.
    NeedsEnrolment,
    /// Authenticator code accepted, but the employee's access requires a
    /// passkey and they have none yet: they may only register one.
    NeedsPasskey,
    /// Fully signed in.
    Full,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthState {
    pub user_id: i64,
    pub stage: Stage,
    pub created_at: Millis,
    pub last_seen: Millis,
    /// When a second factor (a TOTP code or a passkey) was last given in
    /// this session (for step-up).
    pub mfa_at: Option<Millis>,
    /// When a passkey was last used in this session: step-up under the
    /// passkey policy, and break-glass, count only a passkey.
    #[serde(default)]
    pub passkey_at: Option<Millis>,
}

/// Who is asking, set on every request by the auth layer.
#[derive(Debug, Clone)]
pub struct RequestCtx {
    pub request_id: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub session_tag: Option<String>,
    pub auth: Option<AuthState>,
    /// The signed-in employee's `access_version`, read with their row at
    /// the start of this request (see access_cache).
    pub access_version: Option<i64>,
    /// The device cookie's value, if the browser sent one (see
    /// `identity::device`).
    pub device_cookie: Option<String>,
    /// Whether the signed-in employee's access requires a passkey
    /// (`GATEHOUSE_REQUIRE_PASSKEY`): set by `api::server::serve` before a
    /// server function's body runs, false elsewhere.
    pub passkey_required: bool,
}

impl RequestCtx {
    pub fn actor(&self) -> Actor {
        Actor {
            user_id: self.auth.as_ref().map(|a| a.user_id),
            session: self.session_tag.clone(),
            ip: self.ip.clone(),
            user_agent: self.user_agent.clone(),
        }
    }

    pub fn actor_for(&self, user_id: Option<i64>) -> Actor {
        Actor {
            user_id,
            ..self.actor()
        }
    }

    pub fn full(&self) -> Result<&AuthState, AppError> {
        match &self.auth {
            Some(a) if a.stage == Stage::Full => Ok(a),
            _ => Err(AppError::sign_in_required()),
        }
    }

    pub fn at_stage(&self, stage: Stage) -> Result<&AuthState, AppError> {
        match &self.auth {
            Some(a) if a.stage == stage => Ok(a),
            Some(_) => Err(AppError::Conflict(
                "This step does not apply to your session. Reload the page.".into(),
            )),
            None => Err(AppError::Unauthorized(
                "Your sign-in has expired. Sign in again.".into(),
            )),
        }
    }
}
