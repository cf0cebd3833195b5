//! Configuration from environment variables. Every variable has a documented
//! default (README.md); a malformed value is reported in one line naming the
//! variable, and the process exits with code 2.

use crate::domain::{session_policy::Lifetimes, HOUR, MINUTE};
use secrecy::SecretString;
use std::{fmt, net::SocketAddr, path::PathBuf};

#[derive(Debug)]
pub struct ConfigError {
    pub variable: &'static str,
    pub problem: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "configuration error: {}: {}", self.variable, self.problem)
    }
}

impl std::error::Error for ConfigError {}

#[derive(Clone)]
pub struct Config {
    pub database_url: String,
    pub data_dir: PathBuf,
    /// Base64 of 32 bytes, when given in the environment.
    pub master_key: Option<SecretString>,
    /// The key it replaced, still opening secrets sealed under it until
    /// `gatehouse rotate-master-key` has sealed them again.
    pub master_key_previous: Option<SecretString>,
    pub listen: SocketAddr,
    /// Where the audit trail is streamed (`GATEHOUSE_SIEM_SINKS`).
    pub siem: Vec<siem::Sink>,
    /// How the server is served: TLS, the metrics and redirect listeners,
    /// the browser bundle's hash file, the shutdown grace period.
    pub serving: Serving,
    /// The URL people use to reach Gatehouse; decides Secure cookies and the
    /// `__Host-` cookie prefix (https) and the accepted Origin.
    pub public_url: url::Url,
    /// Reverse proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<crate::domain::network::Cidr>,
    pub session: Lifetimes,
    pub site_root: PathBuf,
    pub log_json: bool,
    /// Anomaly alert thresholds (GATEHOUSE_ALERT_*, GATEHOUSE_COMPANY_UTC_OFFSET_MINUTES).
    pub alerts: crate::domain::alerts::Thresholds,
    /// Where alerts are also posted, signed (GATEHOUSE_ALERT_WEBHOOK_*).
    pub webhook: Option<Webhook>,
    /// Single sign-on with the company's OpenID provider (GATEHOUSE_OIDC_*).
    pub oidc: Option<Oidc>,
    /// Accepted ticket references on elevation requests (GATEHOUSE_TICKET_PREFIXES).
    pub tickets: crate::domain::elevation::TicketRule,
    /// Slack-compatible webhook for request notifications (GATEHOUSE_NOTIFY_WEBHOOK_*).
    /// The URL is a credential (incoming webhooks carry their secret in it): never logged.
    pub notify_webhook: Option<SecretString>,
    /// Email notifications (GATEHOUSE_SMTP_URL, GATEHOUSE_SMTP_FROM).
    pub smtp: Option<Smtp>,
    /// Offboarding revokes the API tokens the person created
    /// (GATEHOUSE_OFFBOARD_REVOKE_TOKENS, on by default).
    pub offboard_revoke_tokens: bool,
    /// Co-signatures by distinct registered witnesses a checkpoint needs to
    /// count as final in the console (GATEHOUSE_WITNESS_QUORUM; 0, the
    /// default, asks for none).
    pub witness_quorum: u32,
    /// Invitation links go to the invitee's address, never to the page
    /// (GATEHOUSE_INVITATIONS_BY_EMAIL, on by default when SMTP is set).
    pub invitations_by_email: bool,
    /// The account that changes the schema (GATEHOUSE_MIGRATE_DATABASE_URL,
    /// MySQL only). When set, only `gatehouse migrate` migrates, through
    /// it; `serve` runs as GATEHOUSE_DATABASE_URL's account and refuses a
    /// schema that is behind. Never logged.
    pub migrate_database_url: Option<SecretString>,
    /// Hosts a database target may be on (GATEHOUSE_DB_TARGET_ALLOWED_HOSTS).
    pub db_target_hosts: Vec<String>,
    /// Names of database roles and accounts (GATEHOUSE_DB_ACCOUNT_PREFIX, `gh_`).
    pub db_names: crate::domain::databases::Names,
    /// Passkeys' relying party (from the public URL), or why they are off.
    pub passkeys: Result<Passkeys, String>,
    /// Who must sign in and step up with a passkey (GATEHOUSE_REQUIRE_PASSKEY).
    pub require_passkey: crate::domain::passkeys::Policy,
}

#[derive(Clone)]
pub struct Smtp {
    /// `smtps://user:pass@host:465`, `smtp://host:587?tls=required`, or
    /// plain `smtp://127.0.0.1:25` (loopback only). Never logged.
    pub url: SecretString,
    pub from: String,
}

#[derive(Clone)]
pub struct Oidc {
    pub issuer: url::Url,
    pub client_id: String,
    /// Never logged.
    pub client_secret: SecretString,
    /// `amr` values that prove the provider did MFA; empty: Gatehouse
    /// always asks for its own code after SSO.
    pub trust_amr: Vec<String>,
    /// Password sign-in is refused, except for `breakglass`.
    pub required: bool,
    pub breakglass: Option<String>,
}

#[derive(Clone)]
pub struct Webhook {
    pub url: url::Url,
    /// HMAC-SHA256 key for the signature header; never logged.
    pub secret: SecretString,
}

/// A master key from the environment: 32 bytes in base64.
fn master_key_var(variable: &'static str, value: Option<String>) -> Result<Option<SecretString>, ConfigError> {
    let Some(v) = value else { return Ok(None) };
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(v.as_bytes())
        .map_err(|_| ConfigError {
            variable,
            problem: "must be 32 bytes in base64 (generate one with: openssl rand -base64 32)".into(),
        })?;
    if bytes.len() != 32 {
        return Err(ConfigError {
            variable,
            problem: format!("must be 32 bytes in base64, got {} bytes", bytes.len()),
        });
    }
    Ok(Some(SecretString::from(v)))
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("database_url", &redact_url(&self.database_url))
            .field("data_dir", &self.data_dir)
            .field("master_key", &self.master_key.as_ref().map(|_| "[redacted]"))
            .field(
                "master_key_previous",
                &self.master_key_previous.as_ref().map(|_| "[redacted]"),
            )
            .field("listen", &self.listen)
            .field(
                "siem",
                &self.siem.iter().map(|s| (&s.name, s.target.kind())).collect::<Vec<_>>(),
            )
            .field("public_url", &self.public_url.as_str())
            .field("session", &self.session)
            .field("webhook", &self.webhook.as_ref().map(|w| w.url.as_str()))
            .field("oidc_issuer", &self.oidc.as_ref().map(|o| o.issuer.as_str()))
            .field("notify_webhook", &self.notify_webhook.as_ref().map(|_| "[redacted]"))
            .field("smtp_from", &self.smtp.as_ref().map(|s| s.from.as_str()))
            .field("invitations_by_email", &self.invitations_by_email)
            .field("passkeys", &self.passkeys.as_ref().map(|p| p.rp_id.as_str()))
            .field(
                "migrate_database_url",
                &self.migrate_database_url.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

/// The URL with any password replaced, for logs.
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("redacted"));
            u.to_string()
        }
        _ => raw.to_owned(),
    }
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let var = |name: &'static str| get(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());

        let data_dir = PathBuf::from(var("GATEHOUSE_DATA_DIR").unwrap_or_else(|| "./data".into()));
        let database_url = var("GATEHOUSE_DATABASE_URL").unwrap_or_else(|| "sqlite://data/gatehouse.db".into());
        if !(database_url.starts_with("sqlite:") || database_url.starts_with("mysql:")) {
            return Err(ConfigError {
                variable: "GATEHOUSE_DATABASE_URL",
                problem: "must start with sqlite: or mysql: (for example sqlite://data/gatehouse.db)".into(),
            });
        }
        if database_url.starts_with("mysql:") && url::Url::parse(&database_url).is_err() {
            return Err(ConfigError {
                variable: "GATEHOUSE_DATABASE_URL",
                problem: "is not a valid URL (for example mysql://user:password@127.0.0.1:3306/gatehouse)".into(),
            });
        }

        let master_key = master_key_var("GATEHOUSE_MASTER_KEY", var("GATEHOUSE_MASTER_KEY"))?;
        let master_key_previous =
            master_key_var("GATEHOUSE_MASTER_KEY_PREVIOUS", var("GATEHOUSE_MASTER_KEY_PREVIOUS"))?;

        let listen_raw = var("GATEHOUSE_LISTEN").unwrap_or_else(|| "127.0.0.1:3000".into());
        let listen: SocketAddr = listen_raw.parse().map_err(|_| ConfigError {
            variable: "GATEHOUSE_LISTEN",
            problem: format!("must be an address and port such as 127.0.0.1:3000, got {listen_raw:?}"),
        })?;
        let serving = Serving::from_lookup(&var, listen)?;

        // Only the configured public origin may change data (the origin
        // check), so a server that others reach must be told its address.
        let public_raw = match var("GATEHOUSE_PUBLIC_URL") {
            Some(v) => v,
            None if listen.ip().is_loopback() => {
                format!("{}://{listen}", if serving.tls.is_some() { "https" } else { "http" })
            }
            None => {
                return Err(ConfigError {
                    variable: "GATEHOUSE_PUBLIC_URL",
                    problem: format!(
                        "is required when listening on {listen}, which is not a loopback address: set the address \
                         people open, such as https://gatehouse.example.com"
                    ),
                })
            }
        };
        let public_url = url::Url::parse(&public_raw)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| ConfigError {
                variable: "GATEHOUSE_PUBLIC_URL",
                problem: format!("must be an http(s) URL such as https://gatehouse.example.com, got {public_raw:?}"),
            })?;

        let passkeys = passkeys::relying_party(&public_url);
        let require_passkey =
            passkeys::policy(var("GATEHOUSE_REQUIRE_PASSKEY").as_deref(), &passkeys).map_err(|problem| {
                ConfigError {
                    variable: "GATEHOUSE_REQUIRE_PASSKEY",
                    problem,
                }
            })?;

        let trusted_proxies = var("GATEHOUSE_TRUSTED_PROXIES")
            .unwrap_or_default()
            .split([',', ' '])
            .filter(|s| !s.trim().is_empty())
            .map(crate::domain::network::Cidr::parse)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|problem| ConfigError {
                variable: "GATEHOUSE_TRUSTED_PROXIES",
                problem,
            })?;

        let number = |name: &'static str, default: i64, min: i64, max: i64| -> Result<i64, ConfigError> {
            match var(name) {
                None => Ok(default),
                Some(v) => v
                    .parse::<i64>()
                    .ok()
                    .filter(|n| (min..=max).contains(n))
                    .ok_or_else(|| ConfigError {
                        variable: name,
                        problem: format!("must be a whole number from {min} to {max}, got {v:?}"),
                    }),
            }
        };
        let idle = number("GATEHOUSE_SESSION_IDLE_MINUTES", 30, 1, 24 * 60)? * MINUTE;
        let absolute = number("GATEHOUSE_SESSION_ABSOLUTE_HOURS", 12, 1, 24 * 30)? * HOUR;

        let log_json = match var("GATEHOUSE_LOG_FORMAT").as_deref() {
            None | Some("text") => false,
            Some("json") => true,
            Some(other) => {
                return Err(ConfigError {
                    variable: "GATEHOUSE_LOG_FORMAT",
                    problem: format!("must be text or json, got {other:?}"),
                })
            }
        };

        let site_root = PathBuf::from(var("LEPTOS_SITE_ROOT").unwrap_or_else(|| "target/site".into()));
        let defaults = crate::domain::alerts::Thresholds::default();
        let (night_from, night_until) = match var("GATEHOUSE_ALERT_NIGHT") {
            None => (defaults.night_from, defaults.night_until),
            Some(v) => v
                .split_once('-')
                .and_then(|(a, b)| Some((a.trim().parse::<u32>().ok()?, b.trim().parse::<u32>().ok()?)))
                .filter(|(a, b)| *a < 24 && *b < 24 && a != b)
                .ok_or_else(|| ConfigError {
                    variable: "GATEHOUSE_ALERT_NIGHT",
                    problem: format!("must be two different hours FROM-UNTIL such as 20-7, got {v:?}"),
                })?,
        };
        let alerts = crate::domain::alerts::Thresholds {
            customers_per_hour: number("GATEHOUSE_ALERT_CUSTOMERS_PER_HOUR", 50, 1, 1_000_000)? as u32,
            night_from,
            night_until,
            utc_offset_minutes: number("GATEHOUSE_COMPANY_UTC_OFFSET_MINUTES", 0, -720, 840)? as i32,
            failed_signins: number("GATEHOUSE_ALERT_FAILED_SIGNINS", 5, 1, 1_000)? as u32,
            failed_window: defaults.failed_window,
        };

        let tickets =
            crate::domain::elevation::TicketRule::parse(&var("GATEHOUSE_TICKET_PREFIXES").unwrap_or_default())
                .map_err(|problem| ConfigError {
                    variable: "GATEHOUSE_TICKET_PREFIXES",
                    problem,
                })?;

        let notify_webhook = match var("GATEHOUSE_NOTIFY_WEBHOOK_URL") {
            None => None,
            Some(raw) => {
                allow_listed_url(
                    &raw,
                    "GATEHOUSE_NOTIFY_WEBHOOK_URL",
                    "GATEHOUSE_NOTIFY_WEBHOOK_ALLOWED_HOSTS",
                    &var,
                )?;
                Some(SecretString::from(raw))
            }
        };

        let smtp = match var("GATEHOUSE_SMTP_URL") {
            None => None,
            Some(raw) => {
                let bad = |problem: &str| ConfigError {
                    variable: "GATEHOUSE_SMTP_URL",
                    problem: problem.into(),
                };
                let url = url::Url::parse(&raw)
                    .map_err(|_| bad("must be a URL such as smtps://user:password@mail.example.com:465"))?;
                let host = url
                    .host_str()
                    .unwrap_or_default()
                    .trim_matches(['[', ']'])
                    .to_ascii_lowercase();
                let tls = url.scheme() == "smtps" || url.query_pairs().any(|(k, v)| k == "tls" && v == "required");
                match url.scheme() {
                    "smtp" | "smtps" => {}
                    _ => return Err(bad("must start with smtp:// or smtps://")),
                }
                if host.is_empty() || (!tls && !crate::domain::sso::url_allowed("http", &host)) {
                    return Err(bad(
                        "must use TLS (smtps://, or smtp://…?tls=required) except for a loopback relay",
                    ));
                }
                let from = var("GATEHOUSE_SMTP_FROM")
                    .filter(|f| crate::domain::validation::Email::parse(f).is_ok())
                    .ok_or(ConfigError {
                        variable: "GATEHOUSE_SMTP_FROM",
                        problem: "must be an email address when GATEHOUSE_SMTP_URL is set".into(),
                    })?;
                Some(Smtp {
                    url: SecretString::from(raw),
                    from,
                })
            }
        };

        let webhook = match var("GATEHOUSE_ALERT_WEBHOOK_URL") {
            None => None,
            Some(raw) => {
                let url = allow_listed_url(
                    &raw,
                    "GATEHOUSE_ALERT_WEBHOOK_URL",
                    "GATEHOUSE_ALERT_WEBHOOK_ALLOWED_HOSTS",
                    &var,
                )?;
                let secret = var("GATEHOUSE_ALERT_WEBHOOK_SECRET")
                    .filter(|s| s.len() >= 16)
                    .ok_or(ConfigError {
                        variable: "GATEHOUSE_ALERT_WEBHOOK_SECRET",
                        problem: "must be set, at least 16 characters, when GATEHOUSE_ALERT_WEBHOOK_URL is".into(),
                    })?;
                Some(Webhook {
                    url,
                    secret: SecretString::from(secret),
                })
            }
        };

        let oidc = match var("GATEHOUSE_OIDC_ISSUER") {
            None => {
                if var("GATEHOUSE_SSO_REQUIRED").is_some_and(|v| v != "false") {
                    return Err(ConfigError {
                        variable: "GATEHOUSE_SSO_REQUIRED",
                        problem: "needs GATEHOUSE_OIDC_ISSUER".into(),
                    });
                }
                None
            }
            Some(raw) => {
                let bad = |problem: String| ConfigError {
                    variable: "GATEHOUSE_OIDC_ISSUER",
                    problem,
                };
                let issuer = url::Url::parse(&raw).map_err(|_| bad(format!("must be a URL, got {raw:?}")))?;
                if !crate::domain::sso::url_allowed(issuer.scheme(), issuer.host_str().unwrap_or_default()) {
                    return Err(bad("must be https (http only for loopback addresses)".into()));
                }
                let client_id = var("GATEHOUSE_OIDC_CLIENT_ID").ok_or(ConfigError {
                    variable: "GATEHOUSE_OIDC_CLIENT_ID",
                    problem: "must be set when GATEHOUSE_OIDC_ISSUER is".into(),
                })?;
                let client_secret = match (
                    var("GATEHOUSE_OIDC_CLIENT_SECRET"),
                    var("GATEHOUSE_OIDC_CLIENT_SECRET_FILE"),
                ) {
                    (Some(s), None) => s,
                    (None, Some(path)) => std::fs::read_to_string(&path)
                        .map(|s| s.trim().to_owned())
                        .ok()
                        .filter(|s| !s.is_empty())
                        .ok_or(ConfigError {
                            variable: "GATEHOUSE_OIDC_CLIENT_SECRET_FILE",
                            problem: format!("cannot read a secret from {path:?}"),
                        })?,
                    (Some(_), Some(_)) => {
                        return Err(ConfigError {
                            variable: "GATEHOUSE_OIDC_CLIENT_SECRET",
                            problem: "set it or GATEHOUSE_OIDC_CLIENT_SECRET_FILE, not both".into(),
                        })
                    }
                    (None, None) => {
                        return Err(ConfigError {
                            variable: "GATEHOUSE_OIDC_CLIENT_SECRET",
                            problem: "must be set (or GATEHOUSE_OIDC_CLIENT_SECRET_FILE) when GATEHOUSE_OIDC_ISSUER is"
                                .into(),
                        })
                    }
                };
                let trust_amr = var("GATEHOUSE_OIDC_TRUST_AMR")
                    .unwrap_or_default()
                    .split(',')
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .collect();
                let required = match var("GATEHOUSE_SSO_REQUIRED").as_deref() {
                    None | Some("false") => false,
                    Some("true") => true,
                    Some(other) => {
                        return Err(ConfigError {
                            variable: "GATEHOUSE_SSO_REQUIRED",
                            problem: format!("must be true or false, got {other:?}"),
                        })
                    }
                };
                let breakglass = match var("GATEHOUSE_SSO_BREAKGLASS_EMAIL") {
                    None => None,
                    Some(e) => Some(
                        crate::domain::validation::Email::parse(&e)
                            .map_err(|_| ConfigError {
                                variable: "GATEHOUSE_SSO_BREAKGLASS_EMAIL",
                                problem: format!("must be an email address, got {e:?}"),
                            })?
                            .as_str()
                            .to_owned(),
                    ),
                };
                Some(Oidc {
                    issuer,
                    client_id,
                    client_secret: SecretString::from(client_secret),
                    trust_amr,
                    required,
                    breakglass,
                })
            }
        };

        let offboard_revoke_tokens = boolean(
            "GATEHOUSE_OFFBOARD_REVOKE_TOKENS",
            var("GATEHOUSE_OFFBOARD_REVOKE_TOKENS"),
            true,
        )?;
        let invitations_by_email = boolean(
            "GATEHOUSE_INVITATIONS_BY_EMAIL",
            var("GATEHOUSE_INVITATIONS_BY_EMAIL"),
            smtp.is_some(),
        )?;
        if invitations_by_email && smtp.is_none() {
            return Err(ConfigError {
                variable: "GATEHOUSE_INVITATIONS_BY_EMAIL",
                problem: "needs GATEHOUSE_SMTP_URL: invitation links are emailed through it".into(),
            });
        }
        let migrate_database_url = match var("GATEHOUSE_MIGRATE_DATABASE_URL") {
            None => None,
            Some(raw) => {
                if !database_url.starts_with("mysql:") || !raw.starts_with("mysql:") || url::Url::parse(&raw).is_err() {
                    return Err(ConfigError {
                        variable: "GATEHOUSE_MIGRATE_DATABASE_URL",
                        problem: "must be a mysql:// URL, with GATEHOUSE_DATABASE_URL on the same MySQL server".into(),
                    });
                }
                Some(SecretString::from(raw))
            }
        };
        Ok(Self {
            passkeys,
            require_passkey,
            database_url,
            data_dir,
            master_key,
            master_key_previous,
            listen,
            siem: siem::sinks(var(siem::VARIABLE).as_deref(), &get)?,
            serving,
            public_url,
            trusted_proxies,
            session: Lifetimes { idle, absolute },
            site_root,
            log_json,
            alerts,
            webhook,
            oidc,
            tickets,
            notify_webhook,
            smtp,
            offboard_revoke_tokens,
            witness_quorum: number("GATEHOUSE_WITNESS_QUORUM", 0, 0, 100)? as u32,
            invitations_by_email,
            migrate_database_url,
            db_target_hosts: var("GATEHOUSE_DB_TARGET_ALLOWED_HOSTS")
                .unwrap_or_default()
                .split(',')
                .map(|h| h.trim().to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .collect(),
            db_names: crate::domain::databases::Names::new(
                &var("GATEHOUSE_DB_ACCOUNT_PREFIX").unwrap_or_else(|| "gh_".into()),
            )
            .map_err(|problem| ConfigError {
                variable: "GATEHOUSE_DB_ACCOUNT_PREFIX",
                problem,
            })?,
        })
    }

    pub fn secure_cookies(&self) -> bool {
        self.public_url.scheme() == "https"
    }

    /// `scheme://host[:port]` as browsers send it in the Origin header.
    pub fn public_origin(&self) -> String {
        self.public_url.origin().ascii_serialization()
    }
}

mod checks;
mod passkeys;
mod serving;
pub mod siem;
use checks::{allow_listed_url, boolean};
pub use passkeys::Passkeys;
pub use serving::{Serving, TlsFiles};

#[cfg(test)]
mod tests;
