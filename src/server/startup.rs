//! Builds the application state and serves it.

use super::{
    access::people::setup,
    audit, http,
    identity::sso,
    jobs,
    platform::{
        assets::Assets,
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
    #[error("browser bundle hash file: {0}")]
    Assets(std::io::Error),
    #[error("TLS: {0}")]
    Tls(String),
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
    let key = MasterKey::load(
        config.master_key.as_ref(),
        config.master_key_previous.as_ref(),
        &config.data_dir,
    )?;
    let audit_keys = audit::load_or_create_keys(&db, &key, clock.now()).await?;
    let pkg = config.site_root.join("pkg");
    let assets = Assets::load("gatehouse", config.serving.hash_file.as_deref(), &pkg).map_err(StartError::Assets)?;
    let leptos_options = LeptosOptions::builder()
        .output_name("gatehouse")
        .site_root(config.site_root.display().to_string())
        .site_pkg_dir("pkg")
        .site_addr(config.listen)
        .env(leptos::config::Env::PROD)
        // Leptos joins the hash file's name to the binary's directory: an
        // absolute path stays as it is.
        .hash_files(config.serving.hash_file.is_some())
        .hash_file(
            config
                .serving
                .hash_file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "hash.txt".to_owned())
                .into(),
        )
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
        assets: Arc::new(assets),
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
    jobs::spawn_db_provisioning(st.clone(), Duration::from_millis(500));
    jobs::spawn_siem(st.clone());
    let (stop_jobs, jobs_stop) = tokio::sync::watch::channel(false);
    let access_jobs = jobs::spawn_stoppable_access_jobs(st.clone(), Duration::from_secs(2), jobs_stop);
    let app = http::router(st.clone());
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| StartError::Listen { addr: listen, source })?;
    let addr = listener.local_addr().unwrap_or(listen);
    if let Some(m) = st.config.serving.metrics_listen {
        let metrics = tokio::net::TcpListener::bind(m)
            .await
            .map_err(|source| StartError::Listen { addr: m, source })?;
        tracing::info!(addr = %m, "metrics at /metrics");
        let app = http::metrics::router(st.clone());
        tokio::spawn(async move {
            if let Err(e) = axum::serve(metrics, app).await {
                tracing::error!(error = %e, "the metrics listener stopped");
            }
        });
    }
    let tls = match &st.config.serving.tls {
        Some(files) => Some(Arc::new(
            http::tls::Tls::load(&files.cert, &files.key).map_err(StartError::Tls)?,
        )),
        None => None,
    };
    if let Some(r) = st.config.serving.redirect_listen {
        let redirect = tokio::net::TcpListener::bind(r)
            .await
            .map_err(|source| StartError::Listen { addr: r, source })?;
        http::tls::spawn_redirect(redirect, st.config.public_url.clone());
    }
    let scheme = if tls.is_some() { "https" } else { "http" };
    // Passkeys off (an IP address as the public host): said once, at start.
    match &st.config.passkeys {
        Ok(rp) => tracing::info!(rp_id = %rp.rp_id, "passkeys are on"),
        Err(why) => {
            tracing::warn!("{why}");
            println!("{why}.");
        }
    }
    tracing::info!(%addr, scheme, "Gatehouse is listening");
    println!("Gatehouse is running at {scheme}://{addr}");
    // On SIGTERM or Ctrl-C: stop accepting, let requests in flight (and
    // the group commits they wait for) finish, and let the job pass under
    // way end, all within the grace period; then exit.
    let (signalled, on_signal) = tokio::sync::oneshot::channel::<()>();
    let stopping = async move {
        shutdown_signal().await;
        let _ = signalled.send(());
    };
    let server = async move {
        match tls {
            Some(tls) => {
                http::tls::reload_on_sighup(tls.clone());
                http::tls::serve(listener, app, tls, stopping).await;
                Ok(())
            }
            None => {
                axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
                    .with_graceful_shutdown(stopping)
                    .await
            }
        }
    };
    tokio::pin!(server);
    let grace = st.config.serving.shutdown_grace;
    let served = tokio::select! {
        r = &mut server => r,
        _ = async {
            let _ = on_signal.await;
            let _ = stop_jobs.send(true);
            tokio::time::sleep(grace).await;
        } => {
            tracing::warn!(grace_seconds = grace.as_secs(), "requests still running at the end of the grace period");
            Ok(())
        }
    }
    .map_err(|source| StartError::Listen { addr, source });
    let _ = stop_jobs.send(true);
    match tokio::time::timeout(grace, access_jobs).await {
        Ok(_) => {}
        Err(_) => tracing::warn!("the background jobs did not stop within the grace period"),
    }
    // Another replica takes the janitor's work at once (the access jobs gave
    // their lease up as they stopped).
    let _ = super::platform::leases::release(&st.db, "janitor", super::platform::leases::holder()).await;
    // What is still counted in memory goes into the trail before exit.
    if let Err(e) = st.anonymous.fold(&st.db, st.clock.now(), true).await {
        tracing::error!(error = %e, "folding anonymous refusals at shutdown failed");
    }
    // Closing waits for connections in use: not past a request the grace
    // period gave up on.
    let _ = tokio::time::timeout(Duration::from_secs(2), st.db.close()).await;
    tracing::info!("stopped");
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
