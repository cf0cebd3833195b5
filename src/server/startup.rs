//! Builds and runs the server.

use super::{
    auth, clock::Clock, config::Config, crypto::MasterKey, db::Db, http, session_store::DbSessionStore, state::AppState,
};
use crate::app::{shell, App};
use axum::{middleware, routing::get, Router};
use leptos::prelude::*;
use leptos_axum::{generate_route_list, AxumRouteListing, LeptosRoutes};
use std::{
    net::SocketAddr,
    sync::{Arc, OnceLock},
    time::Duration,
};
use tower_sessions::{cookie::SameSite, Expiry, SessionManagerLayer};

/// Largest request body accepted (forms and server-function calls).
pub const BODY_LIMIT: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Db(#[from] super::db::DbError),
    #[error("master key: {0}")]
    Key(#[from] super::crypto::KeyError),
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("{0}")]
    AuditKey(#[from] super::checkpoints::KeyError),
    #[error("single sign-on: {0}")]
    Sso(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
}

pub async fn state(config: Config, clock: Clock) -> Result<AppState, StartError> {
    let db = Db::connect(&config.database_url).await?;
    let key = match &config.master_key {
        Some(k) => {
            use secrecy::ExposeSecret;
            MasterKey::from_base64(k.expose_secret()).expect("validated when the configuration was read")
        }
        None => MasterKey::load_or_create(&config.data_dir)?,
    };
    let audit_keys = super::checkpoints::load_or_create(&db, &key, clock.now()).await?;
    let leptos_options = LeptosOptions::builder()
        .output_name("gatehouse")
        .site_root(config.site_root.display().to_string())
        .site_pkg_dir("pkg")
        .site_addr(config.listen)
        .env(leptos::config::Env::PROD)
        .build();
    Ok(AppState {
        leptos_options,
        db,
        key: Arc::new(key),
        config: Arc::new(config),
        clock,
        access: Arc::default(),
        audit_keys: Arc::new(audit_keys),
        sso: None,
        alert_windows: Arc::default(),
    })
}

/// Reads the OpenID provider's metadata when single sign-on is configured
/// (only the server needs it; the other commands work while it is down).
pub async fn with_sso(mut st: AppState) -> Result<AppState, StartError> {
    if let Some(o) = &st.config.oidc {
        st.sso = Some(Arc::new(
            super::sso::discover(o, &st.config.public_url)
                .await
                .map_err(StartError::Sso)?,
        ));
    }
    Ok(st)
}

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
            if let Some(n) = parts.extensions.get::<super::http::CspNonce>() {
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

    Router::new()
        .route("/healthz", get(http::healthz))
        .route(
            "/api/v1/access-checks",
            axum::routing::post(super::api_v1::access_check),
        )
        .route("/api/v1/openapi.json", get(super::api_v1::openapi))
        .route("/api/v1/audit-events", axum::routing::post(super::api_v1::audit_events))
        .route("/audit/export.csv", get(super::api_v1::audit_csv))
        .route("/audit/export.bundle", get(super::api_v1::audit_bundle))
        .route("/audit/report.csv", get(super::api_v1::audit_report_csv))
        .route("/api/v1/audit/public-key", get(super::api_v1::public_key))
        .route("/api/v1/audit/checkpoints", get(super::api_v1::checkpoints))
        .route("/api/v1/audit/proofs/{seq}", get(super::api_v1::proof))
        .route(
            "/scim/v2/Users",
            get(super::scim::list_users).post(super::scim::create_user),
        )
        .route(
            "/scim/v2/Users/{id}",
            get(super::scim::get_user)
                .put(super::scim::replace_user)
                .patch(super::scim::patch_user)
                .delete(super::scim::delete_user),
        )
        .route(
            "/scim/v2/ServiceProviderConfig",
            get(super::scim::service_provider_config),
        )
        .route("/auth/oidc/start", get(super::sso::start))
        .route("/auth/oidc/callback", get(super::sso::callback))
        .leptos_routes_with_context(&st, routes, context.clone(), {
            let options = st.leptos_options.clone();
            move || shell(options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler_with_context::<AppState, _>(
            context, shell,
        ))
        .layer(middleware::from_fn_with_state(st.clone(), http::auth_layer))
        .layer(sessions)
        .layer(middleware::from_fn_with_state(st.clone(), http::origin_check))
        // Before anything reads the request: event batches from services may
        // be up to 2 MiB, everything else 64 KiB.
        .layer(middleware::from_fn(http::body_limit))
        .layer(middleware::from_fn(http::security_headers))
        .with_state(st)
}

/// Ends timed-out sessions every `every`, recording each in the audit chain.
pub fn spawn_janitor(st: AppState, every: Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            if let Err(e) = sweep_sessions(&st).await {
                tracing::error!(error = %e, "session sweep failed");
            }
        }
    });
}

/// Records grant expiries and carries out scheduled offboardings every
/// `every` (two seconds in production), so each lands in the audit chain
/// within seconds of its time.
pub fn spawn_access_jobs(st: AppState, every: Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            run_access_jobs(&st).await;
        }
    });
}

pub async fn run_access_jobs(st: &AppState) {
    if let Err(e) = super::grants::sweep_expired(st).await {
        tracing::error!(error = %e, "grant expiry job failed");
    }
    if let Err(e) = super::elevation::sweep(st).await {
        tracing::error!(error = %e, "elevation job failed");
    }
    if let Err(e) = super::people::sweep_scheduled(st).await {
        tracing::error!(error = %e, "scheduled offboarding job failed");
    }
    if let Err(e) = super::alerts::scan(st).await {
        tracing::error!(error = %e, "anomaly alert job failed");
    }
    if let Err(e) = super::alerts::deliver(st).await {
        tracing::error!(error = %e, "alert webhook job failed");
    }
    if let Err(e) = super::notify::remind(st).await {
        tracing::error!(error = %e, "elevation reminder job failed");
    }
    if let Err(e) = super::notify::deliver(st).await {
        tracing::error!(error = %e, "notification delivery job failed");
    }
    super::checkpoints::sign_due(st).await;
}

pub async fn sweep_sessions(st: &AppState) -> Result<usize, sqlx::Error> {
    let expired = super::session_store::expired(&st.db, st.clock.now(), 500).await?;
    for (id_hash, user_id) in &expired {
        auth::expire_session(st, id_hash, *user_id, "timed out while unused", None).await?;
    }
    Ok(expired.len())
}

/// Prints the one-time setup address when no administrator exists yet.
pub async fn announce_setup(st: &AppState) -> Result<(), sqlx::Error> {
    if let Some(token) = auth::issue_setup_token(st).await? {
        let mut url = st.config.public_url.clone();
        url.set_path("/setup");
        url.set_query(Some(&format!("token={token}")));
        // Printed to standard output for the operator, never to the log.
        println!("\nGatehouse has no administrator yet. Open this address within one hour to create the first one:\n\n    {url}\n");
    }
    Ok(())
}

pub async fn serve(config: Config) -> Result<(), StartError> {
    let listen = config.listen;
    let st = with_sso(state(config, Clock::system()).await?).await?;
    announce_setup(&st).await?;
    spawn_janitor(st.clone(), Duration::from_secs(30));
    spawn_access_jobs(st.clone(), Duration::from_secs(2));
    let app = router(st);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| StartError::Listen { addr: listen, source })?;
    let addr = listener.local_addr().unwrap_or(listen);
    tracing::info!(%addr, "Gatehouse is listening");
    println!("Gatehouse is running at http://{addr}");
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|source| StartError::Listen { addr, source })
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
