//! Builds the application state and serves it.

use super::{
    access::people::setup,
    audit, http,
    identity::sso,
    jobs,
    platform::{
        clock::Clock,
        config::Config,
        crypto::{KeyError, MasterKey},
        db::{Db, DbError, Schema},
    },
    state::AppState,
};
use leptos::prelude::*;
use std::{net::SocketAddr, sync::Arc, time::Duration};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Db(#[from] DbError),
    #[error("master key: {0}")]
    Key(#[from] KeyError),
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("{0}")]
    AuditKey(#[from] audit::KeyError),
    #[error("single sign-on: {0}")]
    Sso(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
}

pub async fn state(config: Config, clock: Clock) -> Result<AppState, StartError> {
    // With a separate migrating account, the running one cannot change the
    // schema: only `gatehouse migrate` does.
    let schema = if config.migrate_database_url.is_some() {
        Schema::RequireCurrent
    } else {
        Schema::Migrate
    };
    let db = Db::open(&config.database_url, schema).await?;
    let key = match &config.master_key {
        Some(k) => {
            use secrecy::ExposeSecret;
            MasterKey::from_base64(k.expose_secret()).expect("validated when the configuration was read")
        }
        None => MasterKey::load_or_create(&config.data_dir)?,
    };
    let audit_keys = audit::load_or_create_keys(&db, &key, clock.now()).await?;
    let leptos_options = LeptosOptions::builder()
        .output_name("gatehouse")
        .site_root(config.site_root.display().to_string())
        .site_pkg_dir("pkg")
        .site_addr(config.listen)
        .env(leptos::config::Env::PROD)
        .build();
    Ok(AppState {
        leptos_options,
        recorder: Arc::new(audit::Recorder::new(db.clone())),
        db,
        key: Arc::new(key),
        config: Arc::new(config),
        clock,
        access: Arc::default(),
        audit_keys: Arc::new(audit_keys),
        sso: None,
        alert_windows: Arc::default(),
        anonymous: Arc::default(),
        hasher: Arc::new(crate::server::platform::crypto::password::Hasher::for_this_machine()),
    })
}

/// Reads the OpenID provider's metadata when single sign-on is configured
/// (only the server needs it; the other commands work while it is down).
pub async fn with_sso(mut st: AppState) -> Result<AppState, StartError> {
    if let Some(o) = &st.config.oidc {
        st.sso = Some(Arc::new(
            sso::discover(o, &st.config.public_url).await.map_err(StartError::Sso)?,
        ));
    }
    Ok(st)
}

/// Prints the one-time setup address when no administrator exists yet.
pub async fn announce_setup(st: &AppState) -> Result<(), sqlx::Error> {
    if let Some(token) = setup::issue_setup_token(st).await? {
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
    jobs::spawn_janitor(st.clone(), Duration::from_secs(30));
    jobs::spawn_access_jobs(st.clone(), Duration::from_secs(2));
    let app = http::router(st.clone());
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| StartError::Listen { addr: listen, source })?;
    let addr = listener.local_addr().unwrap_or(listen);
    tracing::info!(%addr, "Gatehouse is listening");
    println!("Gatehouse is running at http://{addr}");
    let served = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|source| StartError::Listen { addr, source });
    // What is still counted in memory goes into the trail before exit.
    if let Err(e) = st.anonymous.fold(&st.db, st.clock.now(), true).await {
        tracing::error!(error = %e, "folding anonymous refusals at shutdown failed");
    }
    served
}

/// Ctrl-C, or SIGTERM (how Kubernetes and systemd stop a process).
async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
    tracing::info!("shutting down");
}
