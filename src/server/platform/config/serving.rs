//! How the server is served: HTTPS (GATEHOUSE_TLS_CERT_FILE and
//! GATEHOUSE_TLS_KEY_FILE), a plain-HTTP listener that only redirects
//! (GATEHOUSE_HTTP_REDIRECT_LISTEN), metrics on their own listener
//! (GATEHOUSE_METRICS_LISTEN), the browser bundle's hash file
//! (LEPTOS_HASH_FILE_NAME) and the shutdown grace period
//! (GATEHOUSE_SHUTDOWN_GRACE_SECONDS).

use super::ConfigError;
use std::{net::SocketAddr, path::PathBuf, time::Duration};

#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Clone, Debug)]
pub struct Serving {
    /// Serve HTTPS with these files (re-read on SIGHUP).
    pub tls: Option<TlsFiles>,
    /// A plain-HTTP listener that redirects to the https public address.
    pub redirect_listen: Option<SocketAddr>,
    /// Where `/metrics` is served, apart from the public listener.
    pub metrics_listen: Option<SocketAddr>,
    /// The browser bundle's content hashes (cargo-leptos `hash-files`):
    /// absolute or beside the binary (default hash.txt there); `None` when
    /// the bundle's names carry no hash.
    pub hash_file: Option<PathBuf>,
    /// How long a stopping server waits for requests in flight and the
    /// running job pass.
    pub shutdown_grace: Duration,
}

fn address(variable: &'static str, raw: &str, example: &str) -> Result<SocketAddr, ConfigError> {
    raw.parse().map_err(|_| ConfigError {
        variable,
        problem: format!("must be an address and port such as {example}, got {raw:?}"),
    })
}

impl Serving {
    pub fn from_lookup(var: &dyn Fn(&'static str) -> Option<String>, listen: SocketAddr) -> Result<Self, ConfigError> {
        let other_port = |variable: &'static str, addr: SocketAddr| {
            if addr.port() == listen.port() {
                Err(ConfigError {
                    variable,
                    problem: "must be another port than GATEHOUSE_LISTEN".into(),
                })
            } else {
                Ok(addr)
            }
        };
        let metrics_listen = var("GATEHOUSE_METRICS_LISTEN")
            .map(|raw| address("GATEHOUSE_METRICS_LISTEN", &raw, "127.0.0.1:9100"))
            .transpose()?
            .map(|a| other_port("GATEHOUSE_METRICS_LISTEN", a))
            .transpose()?;

        let file = |variable: &'static str| -> Result<Option<PathBuf>, ConfigError> {
            match var(variable) {
                None => Ok(None),
                Some(p) if std::path::Path::new(&p).is_file() => Ok(Some(PathBuf::from(p))),
                Some(p) => Err(ConfigError {
                    variable,
                    problem: format!("no such file: {p}"),
                }),
            }
        };
        let tls = match (file("GATEHOUSE_TLS_CERT_FILE")?, file("GATEHOUSE_TLS_KEY_FILE")?) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            (None, None) => None,
            (Some(_), None) | (None, Some(_)) => {
                return Err(ConfigError {
                    variable: "GATEHOUSE_TLS_CERT_FILE",
                    problem: "and GATEHOUSE_TLS_KEY_FILE go together: set both or neither".into(),
                })
            }
        };
        let redirect_listen = var("GATEHOUSE_HTTP_REDIRECT_LISTEN")
            .map(|raw| address("GATEHOUSE_HTTP_REDIRECT_LISTEN", &raw, "0.0.0.0:80"))
            .transpose()?
            .map(|a| other_port("GATEHOUSE_HTTP_REDIRECT_LISTEN", a))
            .transpose()?;
        if redirect_listen.is_some() && tls.is_none() {
            return Err(ConfigError {
                variable: "GATEHOUSE_HTTP_REDIRECT_LISTEN",
                problem: "only redirects to HTTPS: set GATEHOUSE_TLS_CERT_FILE and GATEHOUSE_TLS_KEY_FILE too".into(),
            });
        }

        let beside_binary = |name: &str| {
            std::env::current_exe()
                .ok()
                .and_then(|exe| exe.parent().map(|dir| dir.join(name)))
                .unwrap_or_else(|| PathBuf::from(name))
        };
        let hash_file = match var("LEPTOS_HASH_FILE_NAME") {
            Some(name) => {
                let path = beside_binary(&name);
                if !path.is_file() {
                    return Err(ConfigError {
                        variable: "LEPTOS_HASH_FILE_NAME",
                        problem: format!("no such file: {}", path.display()),
                    });
                }
                Some(path)
            }
            None => Some(beside_binary("hash.txt")).filter(|p| p.is_file()),
        };

        let shutdown_grace = match var("GATEHOUSE_SHUTDOWN_GRACE_SECONDS") {
            None => Duration::from_secs(20),
            Some(v) => v
                .parse::<u64>()
                .ok()
                .filter(|n| *n <= 3600)
                .map(Duration::from_secs)
                .ok_or_else(|| ConfigError {
                    variable: "GATEHOUSE_SHUTDOWN_GRACE_SECONDS",
                    problem: format!("must be a whole number from 0 to 3600, got {v:?}"),
                })?,
        };
        Ok(Self {
            tls,
            redirect_listen,
            metrics_listen,
            hash_file,
            shutdown_grace,
        })
    }
}
