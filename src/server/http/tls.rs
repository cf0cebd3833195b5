//! HTTPS served by Gatehouse itself (GATEHOUSE_TLS_CERT_FILE and
//! GATEHOUSE_TLS_KEY_FILE): rustls with the ring provider, TLS 1.2 and 1.3
//! only and rustls's default cipher suites (AEAD with forward secrecy;
//! nothing older), HTTP/1.1. SIGHUP reads the two files again, so a renewed
//! certificate takes effect without a restart; a pair that does not load is
//! logged and the current one kept. An optional plain-HTTP listener only
//! redirects to the public https address.

use axum::{
    extract::{ConnectInfo, Request},
    http::{header, StatusCode},
    response::{IntoResponse, Response},
    Router,
};
use hyper_util::{rt::TokioIo, server::graceful::GracefulShutdown, service::TowerToHyperService};
use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
use std::{
    future::Future,
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
    time::Duration,
};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

/// The certificate and key files, and the acceptor built from them.
pub struct Tls {
    cert: PathBuf,
    key: PathBuf,
    acceptor: RwLock<TlsAcceptor>,
}

/// Reads a certificate chain and its private key (PEM) into a server
/// configuration. The error names the file, never its content.
pub fn server_config(cert: &Path, key: &Path) -> Result<rustls::ServerConfig, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|i| i.collect::<Result<_, _>>())
        .map_err(|e| format!("{}: not a PEM certificate chain ({e})", cert.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate in it", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|_| format!("{}: not a PEM private key", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("the certificate and key do not form a pair: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

impl Tls {
    pub fn load(cert: &Path, key: &Path) -> Result<Self, String> {
        let config = server_config(cert, key)?;
        Ok(Self {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            acceptor: RwLock::new(TlsAcceptor::from(Arc::new(config))),
        })
    }

    /// Reads the files again; on success new connections use them.
    pub fn reload(&self) -> Result<(), String> {
        let config = server_config(&self.cert, &self.key)?;
        *self.acceptor.write().unwrap_or_else(|e| e.into_inner()) = TlsAcceptor::from(Arc::new(config));
        Ok(())
    }

    fn acceptor(&self) -> TlsAcceptor {
        self.acceptor.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Reloads the certificate on every SIGHUP, for as long as the process runs.
pub fn reload_on_sighup(tls: Arc<Tls>) {
    tokio::spawn(async move {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
            tracing::error!("cannot listen for SIGHUP: certificates will not be reloaded");
            return;
        };
        while hup.recv().await.is_some() {
            match tls.reload() {
                Ok(()) => tracing::info!("TLS certificate reloaded"),
                Err(e) => tracing::error!(error = %e, "TLS certificate NOT reloaded: keeping the current one"),
            }
        }
    });
}

/// Serves `app` over TLS until `shutdown` completes, then waits for the
/// connections in flight to finish their requests (the caller bounds it).
pub async fn serve(listener: TcpListener, app: Router, tls: Arc<Tls>, shutdown: impl Future<Output = ()>) {
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let acceptor = tls.acceptor();
        let app = app.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            // A client that never finishes its handshake is dropped.
            let stream = match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => return,
            };
            let service = tower::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let mut req = req.map(axum::body::Body::new);
                req.extensions_mut().insert(ConnectInfo(peer));
                app.clone().oneshot(req)
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// The plain-HTTP listener next to HTTPS: every request is sent to the
/// same path on the public https address (308 keeps the method).
pub fn redirect_router(public: url::Url) -> Router {
    Router::new().fallback(move |req: Request| {
        let public = public.clone();
        async move { redirect(&public, &req) }
    })
}

fn redirect(public: &url::Url, req: &Request) -> Response {
    let mut to = public.clone();
    to.set_path(req.uri().path());
    to.set_query(req.uri().query());
    (
        StatusCode::PERMANENT_REDIRECT,
        [
            (header::LOCATION, to.to_string()),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
    )
        .into_response()
}

/// Serves the redirecting listener until the process ends.
pub fn spawn_redirect(listener: TcpListener, public: url::Url) {
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, redirect_router(public)).await {
            tracing::error!(error = %e, "the HTTP redirect listener stopped");
        }
    });
}
