//! Server functions: the browser's API, one file per area. Each one is
//! declared with `api!`, which gives it the request's state, context and
//! session, checks its permission on the server first (a refusal is
//! recorded, with the endpoint as the operation's name), sets the HTTP
//! status of an error, and then runs its body: one call into `server`.
//!
//! ```ignore
//! api! {
//!     /// What it does.
//!     "save_role" needs [AccessGrant] (st, ctx, session, principal)
//!     pub async fn save_role(key: String) -> Result<(), AppError> { ... }
//! }
//! ```
//!
//! Forms: `"endpoint" (st, ctx, session)` for calls that check sign-in
//! themselves (or need none); `needs [P, ...]` for calls that need any of
//! those permissions; `approver` for the elevation approvers' calls (holders
//! of `requests:approve` and named approvers).

/// Declares a server function; see the module documentation.
macro_rules! api {
    (
        $(#[$($attr:tt)*])*
        $endpoint:literal $($guard:ident $([$($perm:ident),+ $(,)?])?)? ($st:pat, $ctx:pat, $session:pat $(, $principal:pat)?)
        pub async fn $name:ident($($(#[$($arg_attr:tt)*])* $arg:ident: $ty:ty),* $(,)?) -> Result<$ret:ty, AppError>
        { $($body:tt)* }
    ) => {
        $(#[$($attr)*])*
        #[leptos::server(endpoint = $endpoint)]
        pub async fn $name($($(#[$($arg_attr)*])* $arg: $ty),*) -> Result<$ret, AppError> {
            crate::api::server::serve(
                $endpoint,
                api!(@guard $($guard $([$($perm),+])?)?),
                move |call| async move {
                    let crate::api::server::Call { st: $st, ctx: $ctx, session: $session, principal: _principal } = call;
                    $(let $principal = _principal.expect("a guarded call has a principal");)?
                    $($body)*
                },
            )
            .await
        }
    };
    (@guard) => { crate::api::server::Guard::None };
    (@guard needs [$($perm:ident),+]) => {
        crate::api::server::Guard::Any(&[$(crate::domain::permissions::Permission::$perm),+])
    };
    (@guard approver) => { crate::api::server::Guard::Approver };
}

mod access;
mod account;
mod audit;
mod databases;
mod elevation;
mod passkeys;
mod people;
mod reviews;

pub use access::*;
pub use account::*;
pub use audit::*;
pub use databases::*;
pub use elevation::*;
pub use passkeys::*;
pub use people::*;
pub use reviews::*;

/// What `api!` runs on the server.
#[cfg(feature = "ssr")]
pub(crate) mod server {
    use crate::domain::permissions::Permission;
    use crate::errors::{current_request_id, internal, set_status, AppError};
    use crate::server::{
        access::{
            authz::{self, Principal},
            elevation,
        },
        identity::signin,
        platform::request::{RequestCtx, Stage},
        state::AppState,
    };
    use leptos::prelude::*;
    use std::future::Future;
    use tower_sessions::Session;

    /// Who may make a call, checked before its body runs.
    pub enum Guard {
        /// The body checks sign-in itself, or needs none.
        None,
        /// Any of these permissions.
        Any(&'static [Permission]),
        /// Holders of `requests:approve` and named approvers.
        Approver,
    }

    /// The current request, handed to a server function's body.
    pub struct Call {
        pub st: AppState,
        pub ctx: RequestCtx,
        pub session: Session,
        /// The signed-in employee, for guarded calls.
        pub principal: Option<Principal>,
    }

    impl Call {
        /// The state, request context and session of the current call.
        fn current() -> Result<Self, AppError> {
            let st = AppState::current()?;
            let parts = use_context::<http::request::Parts>().ok_or_else(|| internal("no request parts"))?;
            // Paths the auth layer skips (static files) render as anonymous.
            let ctx = parts
                .extensions
                .get::<RequestCtx>()
                .cloned()
                .unwrap_or_else(|| RequestCtx {
                    request_id: current_request_id(),
                    ip: None,
                    user_agent: None,
                    session_tag: None,
                    auth: None,
                    access_version: None,
                    device_cookie: None,
                    passkey_required: false,
                });
            let session = parts
                .extensions
                .get::<Session>()
                .cloned()
                .ok_or_else(|| internal("no session"))?;
            Ok(Call {
                st,
                ctx,
                session,
                principal: None,
            })
        }
    }

    /// Runs a server function: builds its `Call`, applies its guard (the
    /// endpoint names the operation in a recorded refusal), runs the body,
    /// and sets the HTTP status of an error.
    pub async fn serve<T, F, Fut>(endpoint: &'static str, guard: Guard, body: F) -> Result<T, AppError>
    where
        F: FnOnce(Call) -> Fut,
        Fut: Future<Output = Result<T, AppError>>,
    {
        let result = async {
            let mut call = Call::current()?;
            if let Some(auth) = call.ctx.auth.clone() {
                call.ctx.passkey_required =
                    authz::passkey_required(&call.st, auth.user_id, call.ctx.access_version).await?;
                // Signed in without a passkey the access now requires:
                // nothing but signing out, the header's profile and the
                // recovery codes just made until one is used.
                let exempt = matches!(
                    endpoint,
                    "sign_out" | "sign_out_everywhere" | "take_recovery_codes" | "me"
                );
                if call.ctx.passkey_required && auth.stage == Stage::Full && auth.passkey_at.is_none() && !exempt {
                    signin::passkey_now(&call.st, &call.ctx, &call.session).await?;
                    return Err(AppError::Unauthorized(
                        "Your access requires a passkey: reload the page and confirm with it.".into(),
                    ));
                }
            }
            call.principal = match guard {
                Guard::None => None,
                Guard::Any(perms) => Some(authz::require_any(&call.st, &call.ctx, perms, endpoint).await?),
                Guard::Approver => Some(elevation::approver(&call.st, &call.ctx, endpoint).await?),
            };
            body(call).await
        }
        .await;
        if let Err(e) = &result {
            set_status(e);
        }
        result
    }

    /// After a completed sign-in: this browser is remembered for the
    /// account (the device cookie), so failures elsewhere cannot lock it out.
    pub fn remember_device(st: &AppState, ctx: &RequestCtx) {
        let (Some(auth), Some(opts)) = (&ctx.auth, use_context::<leptos_axum::ResponseOptions>()) else {
            return;
        };
        let cookie = crate::server::identity::device::remember(st, ctx, auth.user_id);
        if let Ok(v) = http::HeaderValue::from_str(&cookie) {
            opts.append_header(http::header::SET_COOKIE, v);
        }
    }
}
