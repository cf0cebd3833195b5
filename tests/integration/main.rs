//! Integration tests: the real server over HTTP on a free port, with a real
//! database. Every test runs on SQLite and on MySQL (MariaDB).

mod helpers;

/// Runs an async test body once per backend.
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name(crate::helpers::Backend::Sqlite).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn mysql() {
                    if let Some(b) = crate::helpers::Backend::mysql().await {
                        super::$name(b).await
                    }
                }
            }
        )*
    };
}

mod access;
mod alerts;
mod api_v1;
mod assets;
mod audit_console;
mod auth_flows;
mod authz;
mod checkpoints;
mod cli;
mod consistency;
mod databases;
mod durability;
mod elevation;
mod floods;
mod http_security;
mod lockout;
mod notifications;
mod operations;
mod owner_race;
mod pages;
mod passkey_use;
mod passkeys;
mod races;
mod replicas;
mod reviews;
mod role_changes;
mod rotation;
mod scim;
mod siem;
mod sso;
mod step_up;
mod storage;
mod tls;
mod witnesses;
