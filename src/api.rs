//! Server functions: the browser's API. Each one authenticates, calls one
//! service function and maps its error; the rules live in `server::auth`
//! and `domain`.

use crate::errors::AppError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

pub mod access;
pub mod types;
pub use access::*;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    pub name: String,
    pub email: String,
    pub roles: Vec<String>,
    /// Permission identifiers held now (what the navigation offers).
    pub permissions: Vec<String>,
    pub recovery_codes_left: i64,
    pub department: String,
    /// Named as an approver in some role's approval policy.
    #[serde(default)]
    pub named_approver: bool,
    /// Unread in-app notifications (the badge).
    #[serde(default)]
    pub unread: i64,
}

impl Profile {
    pub fn can(&self, permission: &str) -> bool {
        self.permissions.iter().any(|p| p == permission)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityItem {
    pub seq: i64,
    pub when: String,
    pub what: String,
    pub outcome: String,
    pub ip: String,
    pub device: String,
    pub note: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrolmentView {
    pub key: String,
    pub uri: String,
    pub qr_svg: String,
}

#[cfg(feature = "ssr")]
pub(crate) mod ssr {
    use crate::errors::AppError;
    pub use crate::server::{auth::RequestCtx, errors::finish, state::AppState};
    use leptos::prelude::*;
    pub use tower_sessions::Session;

    /// The state, request context and session of the current call.
    pub fn request() -> Result<(AppState, RequestCtx, Session), AppError> {
        let st = AppState::current()?;
        let parts =
            use_context::<http::request::Parts>().ok_or_else(|| crate::server::errors::internal("no request parts"))?;
        // Paths the auth layer skips (static files) render as anonymous.
        let ctx = parts
            .extensions
            .get::<RequestCtx>()
            .cloned()
            .unwrap_or_else(|| RequestCtx {
                request_id: crate::server::errors::current_request_id(),
                ip: None,
                user_agent: None,
                session_tag: None,
                auth: None,
                access_version: None,
            });
        let session = parts
            .extensions
            .get::<Session>()
            .cloned()
            .ok_or_else(|| crate::server::errors::internal("no session"))?;
        Ok((st, ctx, session))
    }
}

/// Whether the sign-in page offers single sign-on, and whether it is the only way.
#[server(endpoint = "sso_status")]
pub async fn sso_status() -> Result<(bool, bool), AppError> {
    use ssr::*;
    finish(
        async {
            let (st, _, _) = request()?;
            Ok(st.sso.as_ref().map(|s| (true, s.required)).unwrap_or((false, false)))
        }
        .await,
    )
}

#[server(endpoint = "setup_status")]
pub async fn setup_status(token: String) -> Result<bool, AppError> {
    use ssr::*;
    finish(
        async {
            let (st, _, _) = request()?;
            crate::server::auth::setup_token_usable(&st, &token).await
        }
        .await,
    )
}

#[server(endpoint = "complete_setup")]
pub async fn complete_setup(
    token: String,
    name: String,
    email: String,
    password: String,
    confirm: String,
) -> Result<(), AppError> {
    use ssr::*;
    finish(
        async {
            let (st, ctx, session) = request()?;
            let input = crate::server::auth::SetupInput {
                token,
                name,
                email,
                password,
                confirm,
            };
            crate::server::auth::complete_setup(&st, &ctx, &session, input).await?;
            leptos_axum::redirect("/mfa/enrol");
            Ok(())
        }
        .await,
    )
}

#[server(endpoint = "sign_in")]
pub async fn sign_in(email: String, password: String) -> Result<(), AppError> {
    use crate::server::auth::Stage;
    use ssr::*;
    finish(
        async {
            let (st, ctx, session) = request()?;
            let stage = crate::server::auth::sign_in(&st, &ctx, &session, &email, password).await?;
            leptos_axum::redirect(if stage == Stage::NeedsEnrolment {
                "/mfa/enrol"
            } else {
                "/mfa"
            });
            Ok(())
        }
        .await,
    )
}

#[server(endpoint = "verify_code")]
pub async fn verify_code(code: String) -> Result<(), AppError> {
    use ssr::*;
    finish(
        async {
            let (st, ctx, session) = request()?;
            crate::server::auth::verify_code(&st, &ctx, &session, &code).await?;
            leptos_axum::redirect("/");
            Ok(())
        }
        .await,
    )
}

#[server(endpoint = "use_recovery_code")]
pub async fn use_recovery_code(code: String) -> Result<(), AppError> {
    use ssr::*;
    finish(
        async {
            let (st, ctx, session) = request()?;
            crate::server::auth::use_recovery_code(&st, &ctx, &session, &code).await?;
            leptos_axum::redirect("/");
            Ok(())
        }
        .await,
    )
}

#[server(endpoint = "enrolment")]
pub async fn enrolment() -> Result<EnrolmentView, AppError> {
    use ssr::*;
    finish(
        async {
            let (st, ctx, _) = request()?;
            let e = crate::server::auth::enrolment(&st, &ctx).await?;
            Ok(EnrolmentView {
                key: e.key,
                uri: e.uri,
                qr_svg: e.qr_svg,
            })
        }
        .await,
    )
}

#[server(endpoint = "confirm_enrolment")]
pub async fn confirm_enrolment(code: String) -> Result<(), AppError> {
    use ssr::*;
    finish(
        async {
            let (st, ctx, session) = request()?;
            crate::server::auth::confirm_enrolment(&st, &ctx, &session, &code).await?;
            leptos_axum::redirect("/mfa/recovery-codes");
            Ok(())
        }
        .await,
    )
}

/// The recovery codes just generated, once: a second call returns none.
#[server(endpoint = "take_recovery_codes")]
pub async fn take_recovery_codes() -> Result<Vec<String>, AppError> {
    use ssr::*;
    finish(
        async {
            let (st, ctx, _) = request()?;
            crate::server::auth::take_stashed_codes(&st, &ctx).await
        }
        .await,
    )
}

#[server(endpoint = "regenerate_recovery_codes")]
pub async fn regenerate_recovery_codes(code: String) -> Result<(), AppError> {
    use ssr::*;
    finish(
        async {
            let (st, ctx, session) = request()?;
            crate::server::auth::regenerate_recovery_codes(&st, &ctx, &session, &code).await?;
            leptos_axum::redirect("/mfa/recovery-codes");
            Ok(())
        }
        .await,
    )
}

#[server(endpoint = "me")]
pub async fn me() -> Result<Option<Profile>, AppError> {
    use ssr::*;
    finish(
        async {
            let (st, ctx, _) = request()?;
            let Ok(auth) = ctx.full() else { return Ok(None) };
            let Some(user) = crate::server::users::by_id(&st.db.pool, auth.user_id).await? else {
                return Ok(None);
            };
            let now = st.clock.now();
            let facts = st
                .access
                .facts(&st.db.pool, user.id, Some(user.access_version), now)
                .await?;
            Ok(Some(Profile {
                name: user.display_name,
                email: user.email,
                roles: facts.active_role_names(now),
                permissions: facts.permissions(now).iter().map(|p| p.id().to_owned()).collect(),
                recovery_codes_left: crate::server::auth::recovery_codes_left(&st, user.id).await?,
                named_approver: crate::server::elevation::named_anywhere(&st, user.id).await?,
                unread: crate::server::notify::unread(&st, user.id).await?,
                department: user.department,
            }))
        }
        .await,
    )
}

/// The signed-in employee's notifications, newest first.
#[server(endpoint = "my_notifications")]
pub async fn my_notifications() -> Result<Vec<types::NotificationView>, AppError> {
    use ssr::*;
    finish(
        async {
            let (st, ctx, _) = request()?;
            let auth = ctx.full()?;
            crate::server::notify::mine(&st, auth.user_id).await
        }
        .await,
    )
}

#[server(endpoint = "mark_notifications_read")]
pub async fn mark_notifications_read() -> Result<(), AppError> {
    use ssr::*;
    finish(
        async {
            let (st, ctx, _) = request()?;
            let auth = ctx.full()?;
            crate::server::notify::mark_read(&st, auth.user_id).await
        }
        .await,
    )
}

#[server(endpoint = "my_activity")]
pub async fn my_activity() -> Result<Vec<ActivityItem>, AppError> {
    use ssr::*;
    finish(
        async {
            let (st, ctx, _) = request()?;
            let auth = ctx.full()?;
            crate::server::activity::for_user(&st, auth.user_id, 100).await
        }
        .await,
    )
}

#[server(endpoint = "sign_out")]
pub async fn sign_out() -> Result<(), AppError> {
    use ssr::*;
    finish(
        async {
            let (st, ctx, session) = request()?;
            let provider_logout = crate::server::auth::sign_out(&st, &ctx, &session).await?;
            leptos_axum::redirect(provider_logout.as_deref().unwrap_or("/signin"));
            Ok(())
        }
        .await,
    )
}

#[server(endpoint = "sign_out_everywhere")]
pub async fn sign_out_everywhere() -> Result<(), AppError> {
    use ssr::*;
    finish(
        async {
            let (st, ctx, session) = request()?;
            crate::server::auth::sign_out_everywhere(&st, &ctx, &session).await?;
            leptos_axum::redirect("/signin");
            Ok(())
        }
        .await,
    )
}
