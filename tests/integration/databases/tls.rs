//! A target over TLS: a second MariaDB server, started by the test on a
//! free port with a certificate from a private authority that the test
//! makes with openssl, and a connector account that requires TLS.

use super::{holders, Target, ADMIN, CONNECTOR_PW, PW};
use crate::helpers::*;
use gatehouse::server::jobs;
use reqwest::StatusCode;
use sqlx::{mysql::MySqlConnectOptions, ConnectOptions, Connection};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct TlsServer {
    dir: PathBuf,
    port: u16,
    child: Child,
}

fn run(dir: &Path, program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA (`name.pem`, `name.key`) in `dir`.
fn authority(dir: &Path, name: &str) {
    let (pem, key) = (format!("{name}.pem"), format!("{name}.key"));
    let subject = format!("/CN=Gatehouse test {name}");
    run(
        dir,
        "openssl",
        &[
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &pem, "-days", "2", "-subj",
            &subject,
        ],
    );
}

impl TlsServer {
    async fn start() -> Self {
        let tag = gatehouse::server::platform::crypto::random_token(6).replace(['-', '_'], "x");
        let dir = std::env::temp_dir().join(format!("gh-tls-mariadb-{tag}"));
        std::fs::create_dir_all(&dir).unwrap();
        authority(&dir, "ca");
        authority(&dir, "other");
        run(
            &dir,
            "openssl",
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=127.0.0.1",
            ],
        );
        std::fs::write(
            dir.join("ext.cnf"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n\
             extendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        run(
            &dir,
            "openssl",
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.pem",
                "-days",
                "2",
                "-extfile",
                "ext.cnf",
            ],
        );
        let data = dir.join("data");
        let datadir = format!("--datadir={}", data.display());
        run(
            &dir,
            "mariadb-install-db",
            &[
                "--no-defaults",
                &datadir,
                "--user=root",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ],
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let at = |f: &str| dir.join(f).display().to_string();
        let child = Command::new("/usr/sbin/mariadbd")
            .args([
                "--no-defaults".to_string(),
                datadir,
                format!("--port={port}"),
                "--bind-address=127.0.0.1".into(),
                format!("--socket={}", at("sock")),
                format!("--pid-file={}", at("pid")),
                format!("--log-error={}", at("error.log")),
                "--user=root".into(),
                "--skip-log-bin".into(),
                "--innodb-buffer-pool-size=16M".into(),
                format!("--ssl-ca={}", at("ca.pem")),
                format!("--ssl-cert={}", at("server.pem")),
                format!("--ssl-key={}", at("server.key")),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mariadbd");
        let server = TlsServer { dir, port, child };
        let started = Instant::now();
        while server.root().await.is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the TLS MariaDB did not start: {}",
                std::fs::read_to_string(server.dir.join("error.log")).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        server
    }

    async fn root(&self) -> Result<sqlx::MySqlConnection, sqlx::Error> {
        MySqlConnectOptions::new()
            .socket(self.dir.join("sock"))
            .username("root")
            .connect()
            .await
    }

    fn pem(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(format!("{name}.pem"))).unwrap()
    }
}

/// The server ends with the test, passed or failed.
impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Registering over TLS: refused in clear by a connector that requires
/// TLS, refused against a certificate from an authority not trusted
/// (public roots, or another CA), accepted against the private CA given;
/// accounts are then reconciled over that connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_behind_a_private_ca_is_verified_and_reconciled_over_tls() {
    let server = TlsServer::start().await;
    // The company's tables and the README's connector, which must use TLS.
    let t = Target {
        root: String::new(),
        schema: "app".into(),
        connector: "gh_connector".into(),
        prefix: "gs_".into(),
    };
    let mut root = server.root().await.unwrap();
    for sql in [
        "CREATE DATABASE app".to_string(),
        "CREATE TABLE app.customer_contacts (id INT PRIMARY KEY, email TEXT)".into(),
        format!("CREATE USER 'gh_connector'@'%' IDENTIFIED BY '{CONNECTOR_PW}' REQUIRE SSL"),
        "GRANT CREATE USER, PROCESS, CONNECTION ADMIN ON *.* TO 'gh_connector'@'%'".into(),
        "GRANT SELECT, UPDATE ON mysql.* TO 'gh_connector'@'%'".into(),
        "GRANT SELECT, INSERT, UPDATE, DELETE ON app.* TO 'gh_connector'@'%' WITH GRANT OPTION".into(),
    ] {
        sqlx::raw_sql(&sql).execute(&mut root).await.unwrap();
    }
    let vars = t.vars();
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let app = TestApp::spawn_with(&Backend::Sqlite, &vars).await;
    // Registering needs a fresh second factor: the sign-in just now is one.
    let (maya, _, _) = app.first_admin(ADMIN, PW).await;
    let port = server.port.to_string();
    let register = |tls: bool, ca: String| {
        let (app, maya, port) = (&app, &maya, &port);
        async move {
            let mut form = vec![
                ("name", "rds".to_string()),
                ("host", "127.0.0.1".into()),
                ("port", port.clone()),
                ("username", "gh_connector".into()),
                ("password", CONNECTOR_PW.into()),
                ("tls_ca", ca),
            ];
            if tls {
                form.push(("tls", "on".into()));
            }
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let r = app.call(maya, "register_db_target", &form).await;
            (r.status(), error_message(&r.text().await.unwrap()))
        }
    };
    let (status, message) = register(false, String::new()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "the connector requires TLS");
    assert!(message.contains("Access denied"), "{message}");
    let (status, message) = register(false, server.pem("ca")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(message.contains("only with TLS"), "{message}");
    let (status, message) = register(true, "not a certificate".into()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(message.contains("PEM"), "{message}");
    let (status, message) = register(true, String::new()).await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a private CA is not a public root"
    );
    assert!(message.to_lowercase().contains("certificate"), "{message}");
    let (status, message) = register(true, server.pem("other")).await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "another authority is not trusted"
    );
    assert!(message.to_lowercase().contains("certificate"), "{message}");
    assert_eq!(app.count("SELECT COUNT(*) FROM db_targets").await, 0, "nothing stored");
    let (status, message) = register(true, server.pem("ca")).await;
    assert_eq!(status, StatusCode::OK, "{message}");
    let target = app.count("SELECT id FROM db_targets WHERE name = 'rds'").await;
    let registered = super::details(&app, "database.target_registered").await;
    let fingerprint = gatehouse::server::platform::crypto::sha256_hex(server.pem("ca").trim().as_bytes());
    assert_eq!(registered[0]["tls_ca_sha256"], fingerprint.as_str());
    let targets: serde_json::Value = app.call(&maya, "db_targets", &[]).await.json().await.unwrap();
    assert_eq!(targets[0]["private_ca"], true, "{targets}");
    super::connector_lacks_nothing(&app, &maya, target).await;

    // Reconciled over TLS: an employee's account is opened there.
    let r = super::map(&app, &maya, target, "support-pii", "app", "customer_contacts").await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let people = holders(&app, 1).await;
    jobs::run_db_provisioning(&app.state).await;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM db_accounts WHERE status = 'provisioned' AND locked = 0")
            .await,
        1
    );
    let locked: i64 = sqlx::query_scalar(
        "SELECT CAST(COALESCE(JSON_VALUE(Priv, '$.account_locked'), 0) AS SIGNED) FROM mysql.global_priv WHERE User = ?",
    )
    .bind(format!("gs_{}", people[0]))
    .fetch_one(&mut root)
    .await
    .unwrap();
    assert_eq!(locked, 0, "the account exists on the TLS server, open");
    let _ = root.close().await;
    app.cleanup().await;
    drop(server);
}
