//! The router: every route, and the layers every request passes through
//! (outermost first: security headers, body limits, cross-origin refusal,
//! the session, and the auth layer that publishes the request context).

use super::{api_v1, assets, middleware, scim};
use crate::app::{shell, App};
use crate::server::{
    identity::{sessions::DbSessionStore, sso},
    platform::config::Config,
    state::AppState,
};
use axum::{middleware as layer, routing::get, Router};
use leptos::prelude::*;
use leptos_axum::{generate_route_list, AxumRouteListing, LeptosRoutes};
use std::sync::OnceLock;
use tower_sessions::{cookie::SameSite, Expiry, SessionManagerLayer};

/// Largest request body accepted (forms and server-function calls).
pub const BODY_LIMIT: usize = 64 * 1024;

/// The cookie name: `__Host-` prefixed (Secure, no Domain, Path=/) when
/// served over https.
pub fn cookie_name(config: &Config) -> &'static str {
    if config.secure_cookies() {
        "__Host-gatehouse"
    } else {
        "gatehouse"
    }
}

/// The app's page routes, generated once per process.
///
/// `generate_route_list` renders the app with resource loading switched off
/// through a process-wide flag (leptos_server's `SuppressResourceLoad`). A
/// resource that a real render polls for the first time while that flag is
/// set waits for good (leptos-rs/leptos#4773): the page stops mid-stream and
/// never ends. So the list is made once, before any router can serve a page,
/// and every later router (the tests start many servers in one process)
/// reuses it instead of switching the flag on under pages being served.
fn page_routes() -> Vec<AxumRouteListing> {
    static ROUTES: OnceLock<Vec<AxumRouteListing>> = OnceLock::new();
    ROUTES.get_or_init(|| generate_route_list(App)).clone()
}

pub fn router(st: AppState) -> Router {
    let routes = page_routes();
    let ctx_state = st.clone();
    let context = move || {
        provide_context(ctx_state.clone());
        // Use the nonce that the security-headers layer put in the CSP.
        if let Some(parts) = use_context::<::http::request::Parts>() {
            if let Some(n) = parts.extensions.get::<middleware::CspNonce>() {
                provide_context(leptos::nonce::Nonce::from_value(n.0.clone()));
            }
        }
    };
    let sessions = SessionManagerLayer::new(DbSessionStore::new(st.db.clone(), st.clock.clone(), st.config.session))
        .with_name(cookie_name(&st.config))
        .with_secure(st.config.secure_cookies())
        .with_http_only(true)
        .with_same_site(SameSite::Strict)
        .with_path("/")
        .with_expiry(Expiry::OnSessionEnd);

    let bundle = Router::new()
        .fallback_service(assets::serve_dir(&st.config.site_root))
        .layer(layer::from_fn_with_state(st.assets.clone(), assets::cache_layer));

    Router::new()
        .nest("/pkg", bundle)
        .route("/healthz", get(middleware::healthz))
        .route("/readyz", get(middleware::readyz))
        .route("/api/v1/access-checks", axum::routing::post(api_v1::access_check))
        .route("/api/v1/openapi.json", get(api_v1::openapi))
        .route("/api/v1/audit-events", axum::routing::post(api_v1::audit_events))
        .route("/audit/export.csv", get(api_v1::audit_csv))
        .route("/audit/export.bundle", get(api_v1::audit_bundle))
        .route("/audit/report.csv", get(api_v1::audit_report_csv))
        .route("/reviews/{id}/report.csv", get(api_v1::review_report_csv))
        .route("/reviews/{id}/evidence.jsonl", get(api_v1::review_evidence))
        .route("/api/v1/audit/public-key", get(api_v1::public_key))
        .route("/api/v1/audit/checkpoints", get(api_v1::checkpoints))
        .route("/api/v1/audit/proofs/{seq}", get(api_v1::proof))
        .route("/api/v1/audit/consistency", get(api_v1::consistency))
        .route("/api/v1/audit/cosignatures", axum::routing::post(api_v1::cosignatures))
        .route("/scim/v2/Users", get(scim::list_users).post(scim::create_user))
        .route(
            "/scim/v2/Users/{id}",
            get(scim::get_user)
                .put(scim::replace_user)
                .patch(scim::patch_user)
                .delete(scim::delete_user),
        )
        .route("/scim/v2/ServiceProviderConfig", get(scim::service_provider_config))
        .route("/auth/oidc/start", get(sso::start))
        .route("/auth/oidc/callback", get(sso::callback))
        .leptos_routes_with_context(&st, routes, context.clone(), {
            let options = st.leptos_options.clone();
            move || shell(options.clone())
        })
        .route_layer(layer::from_fn(super::metrics::route_label))
        .fallback(leptos_axum::file_and_error_handler_with_context::<AppState, _>(
            context, shell,
        ))
        .layer(layer::from_fn_with_state(st.clone(), middleware::auth_layer))
        .layer(sessions)
        .layer(layer::from_fn_with_state(st.clone(), middleware::origin_check))
        // Before anything reads the request: event batches from services may
        // be up to 2 MiB, everything else 64 KiB.
        .layer(layer::from_fn(middleware::body_limit))
        .layer(layer::from_fn(middleware::security_headers))
        .with_state(st)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_prefixed_cookie_over_https_only() {
        let plain = Config::from_lookup(|_| None).unwrap();
        assert_eq!(cookie_name(&plain), "gatehouse");
        let https =
            Config::from_lookup(|k| (k == "GATEHOUSE_PUBLIC_URL").then(|| "https://gatehouse.example.com".to_owned()))
                .unwrap();
        assert_eq!(cookie_name(&https), "__Host-gatehouse");
        assert!(https.secure_cookies());
    }
}
