//! Test support: a real server on a free port over a real database (a fresh
//! SQLite file, or a fresh MySQL database), with a controllable clock, and
//! an RFC 6238 implementation independent of the server's.

use gatehouse::server::{
    http,
    platform::{clock::Clock, config::Config},
    startup,
    state::AppState,
};
use reqwest::{header, Client, Response, StatusCode};
use std::{collections::HashMap, net::SocketAddr, sync::Arc};

/// 2026-01-01T00:00:10Z: the clock tests start from.
pub const T0: i64 = 1_767_225_610_000;

#[derive(Debug, Clone)]
pub enum Backend {
    Sqlite,
    MySql { root_url: String },
}

impl Backend {
    /// MySQL from GATEHOUSE_TEST_MYSQL_URL, or None (with a visible notice)
    /// when it is unreachable. Under CI=true an unreachable server fails.
    pub async fn mysql() -> Option<Self> {
        let url =
            std::env::var("GATEHOUSE_TEST_MYSQL_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into());
        sqlx::any::install_default_drivers();
        match sqlx::AnyPool::connect(&url).await {
            Ok(pool) => {
                pool.close().await;
                Some(Backend::MySql { root_url: url })
            }
            Err(e) => {
                if std::env::var("CI").as_deref() == Ok("true") {
                    panic!("MySQL at {url} is unreachable and CI=true: {e}");
                }
                eprintln!("SKIPPED: MySQL tests, {url} is unreachable: {e}");
                None
            }
        }
    }
}

/// A new, empty MySQL database `name` (one a crashed run left behind is
/// dropped first): the root pool, to drop it afterwards, and its URL.
pub async fn new_mysql_database(root_url: &str, name: &str) -> (sqlx::AnyPool, String) {
    let pool = sqlx::AnyPool::connect(root_url).await.unwrap();
    for sql in [
        format!("DROP DATABASE IF EXISTS `{name}`"),
        format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"),
    ] {
        sqlx::query(&sql).execute(&pool).await.unwrap();
    }
    let base = root_url.rsplit_once('/').unwrap().0;
    (pool, format!("{base}/{name}"))
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub state: AppState,
    pub clock: Clock,
    cleanup: Option<(String, String)>,
    pub _dir: Arc<tempdir::Dir>,
    /// The configuration's environment, for another server on the same
    /// database and data directory.
    pub vars: HashMap<String, String>,
}

pub mod tempdir {
    /// A directory removed when dropped.
    pub struct Dir(pub std::path::PathBuf);
    impl Dir {
        pub fn new() -> Self {
            let p = std::env::temp_dir().join(format!(
                "gatehouse-it-{}",
                gatehouse::server::platform::crypto::random_token(9)
            ));
            std::fs::create_dir_all(&p).unwrap();
            Dir(p)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

pub fn client() -> Client {
    // A hang fails the test instead of spending the whole CI budget.
    Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(120))
        .build()
        .unwrap()
}

impl TestApp {
    pub async fn spawn(backend: &Backend) -> Self {
        Self::spawn_with(backend, &[]).await
    }

    pub async fn spawn_with(backend: &Backend, extra: &[(&str, &str)]) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::spawn_on(backend, listener, extra).await
    }

    /// Reached as `http://localhost:PORT` (GATEHOUSE_PUBLIC_URL): a domain
    /// name, as passkeys need.
    pub async fn spawn_localhost(backend: &Backend, extra: &[(&str, &str)]) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let public = format!("http://localhost:{}", listener.local_addr().unwrap().port());
        let mut vars = vec![("GATEHOUSE_PUBLIC_URL", public.as_str())];
        vars.extend_from_slice(extra);
        Self::spawn_on(backend, listener, &vars).await
    }

    /// With single sign-on through a real OpenID provider (npm
    /// oidc-provider) started for this app.
    pub async fn spawn_with_sso(backend: &Backend, extra: &[(&str, &str)]) -> (Self, OidcProvider) {
        Self::spawn_with_sso_at(backend, extra, false).await
    }

    /// `spawn_with_sso`, reached as `http://localhost:PORT` (passkeys on).
    pub async fn spawn_with_sso_at(backend: &Backend, extra: &[(&str, &str)], localhost: bool) -> (Self, OidcProvider) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = if localhost {
            format!("http://localhost:{}", listener.local_addr().unwrap().port())
        } else {
            format!("http://{}", listener.local_addr().unwrap())
        };
        let provider = OidcProvider::start(&format!("{base}/auth/oidc/callback"));
        let mut vars = vec![
            ("GATEHOUSE_OIDC_ISSUER", provider.issuer.as_str()),
            ("GATEHOUSE_OIDC_CLIENT_ID", "gatehouse"),
            ("GATEHOUSE_OIDC_CLIENT_SECRET", OidcProvider::SECRET),
        ];
        if localhost {
            vars.push(("GATEHOUSE_PUBLIC_URL", base.as_str()));
        }
        vars.extend_from_slice(extra);
        (Self::spawn_on(backend, listener, &vars).await, provider)
    }

    async fn spawn_on(backend: &Backend, listener: tokio::net::TcpListener, extra: &[(&str, &str)]) -> Self {
        gatehouse::server::platform::telemetry::init(false);
        let addr = listener.local_addr().unwrap();
        let dir = Arc::new(tempdir::Dir::new());
        let (db_url, cleanup): (String, Option<(String, String)>) = match backend {
            Backend::Sqlite => (format!("sqlite://{}/gatehouse.db", dir.0.display()), None),
            Backend::MySql { root_url } => {
                let name = format!(
                    "gh_t_{}",
                    gatehouse::server::platform::crypto::random_token(6)
                        .to_lowercase()
                        .replace(['-', '_'], "x")
                );
                let (pool, url) = new_mysql_database(root_url, &name).await;
                pool.close().await;
                (url, Some((root_url.clone(), name)))
            }
        };
        let mut vars: HashMap<String, String> = HashMap::new();
        vars.insert("GATEHOUSE_DATABASE_URL".into(), db_url.clone());
        vars.insert("GATEHOUSE_DATA_DIR".into(), dir.0.display().to_string());
        vars.insert("GATEHOUSE_LISTEN".into(), addr.to_string());
        for (k, v) in extra {
            vars.insert(k.to_string(), v.to_string());
        }
        Self::serve(listener, vars, Clock::manual(T0), cleanup, dir).await
    }

    async fn serve(
        listener: tokio::net::TcpListener,
        vars: HashMap<String, String>,
        clock: Clock,
        cleanup: Option<(String, String)>,
        dir: Arc<tempdir::Dir>,
    ) -> Self {
        let addr = listener.local_addr().unwrap();
        let config = Config::from_lookup(|k| vars.get(k).cloned()).unwrap();
        let state = startup::with_sso(startup::state(config, clock.clone()).await.unwrap())
            .await
            .unwrap();
        let app = http::router(state.clone());
        tokio::spawn(async move {
            axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
                .await
                .unwrap();
        });
        TestApp {
            addr,
            state,
            clock,
            cleanup,
            _dir: dir,
            vars,
        }
    }

    /// A second server on this one's database, data directory and clock,
    /// with state of its own (as another replica, or this one restarted,
    /// has). Dropping it leaves the database to this one.
    pub async fn another(&self) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut vars = self.vars.clone();
        vars.insert("GATEHOUSE_LISTEN".into(), listener.local_addr().unwrap().to_string());
        Self::serve(listener, vars, self.clock.clone(), None, self._dir.clone()).await
    }

    /// Drops the MySQL database of this test.
    pub async fn cleanup(self) {
        if let Some((root, name)) = &self.cleanup {
            self.state.db.close().await;
            let pool = sqlx::AnyPool::connect(root).await.unwrap();
            sqlx::query(&format!("DROP DATABASE `{name}`"))
                .execute(&pool)
                .await
                .unwrap();
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Calls a server function the way the browser's code does.
    pub async fn call(&self, client: &Client, name: &str, form: &[(&str, &str)]) -> Response {
        client
            .post(self.url(&format!("/api/{name}")))
            .form(form)
            .send()
            .await
            .unwrap()
    }

    pub async fn get(&self, client: &Client, path: &str) -> Response {
        client.get(self.url(path)).send().await.unwrap()
    }

    pub async fn count(&self, sql: &str) -> i64 {
        use sqlx::Row;
        sqlx::query(sql)
            .fetch_one(self.state.db.pool())
            .await
            .unwrap()
            .try_get(0)
            .unwrap()
    }

    pub async fn audit_count(&self, action: &str, outcome: &str) -> i64 {
        use sqlx::Row;
        sqlx::query("SELECT COUNT(*) FROM audit_events WHERE action = ? AND outcome = ?")
            .bind(action)
            .bind(outcome)
            .fetch_one(self.state.db.pool())
            .await
            .unwrap()
            .try_get(0)
            .unwrap()
    }

    pub async fn verify_chain(&self) {
        let report = gatehouse::server::audit::verify(&self.state.db).await.unwrap();
        assert_eq!(report.error, None, "audit chain broken");
        assert!(report.checked > 0);
    }

    /// The TOTP code of the app's current time for a base32 key.
    pub fn code(&self, key: &str) -> String {
        totp_now(key, self.clock.now())
    }

    /// Creates the first administrator through the setup link and enrols
    /// TOTP; returns the client (signed in), the base32 key and the recovery codes.
    pub async fn first_admin(&self, email: &str, password: &str) -> (Client, String, Vec<String>) {
        let token = gatehouse::server::access::people::setup::issue_setup_token(&self.state)
            .await
            .unwrap()
            .expect("no admin yet");
        let c = client();
        let r = self
            .call(
                &c,
                "complete_setup",
                &[
                    ("token", &token),
                    ("name", "Maya Okafor"),
                    ("email", email),
                    ("password", password),
                    ("confirm", password),
                ],
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
        let (key, codes) = self.enrol(&c).await;
        (c, key, codes)
    }

    /// Completes enrolment for a client at the enrolment stage.
    pub async fn enrol(&self, c: &Client) -> (String, Vec<String>) {
        let r = self.call(c, "enrolment", &[]).await;
        assert_eq!(r.status(), StatusCode::OK);
        let e: serde_json::Value = r.json().await.unwrap();
        let key = e["key"].as_str().unwrap().replace(' ', "");
        assert!(e["uri"].as_str().unwrap().starts_with("otpauth://totp/Gatehouse:"));
        let r = self.call(c, "confirm_enrolment", &[("code", &self.code(&key))]).await;
        assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
        let r = self.call(c, "take_recovery_codes", &[]).await;
        let codes: Vec<String> = r.json().await.unwrap();
        assert_eq!(codes.len(), 10);
        // A new client step: move the clock past this code's step so tests
        // that sign in again get a fresh code.
        self.clock.advance(30_000);
        (key, codes)
    }

    /// Password + TOTP sign-in with a fresh client.
    pub async fn sign_in(&self, email: &str, password: &str, key: &str) -> Client {
        let c = client();
        let r = self
            .call(&c, "sign_in", &[("email", email), ("password", password)])
            .await;
        assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
        let r = self.call(&c, "verify_code", &[("code", &self.code(key))]).await;
        assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
        self.clock.advance(30_000);
        c
    }

    /// Password sign-in for an account that may still need to enrol;
    /// returns the signed-in client and the TOTP key.
    pub async fn sign_in_enrolling(&self, email: &str, password: &str) -> (Client, String) {
        let c = client();
        let r = self
            .call(&c, "sign_in", &[("email", email), ("password", password)])
            .await;
        assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
        assert_eq!(r.headers().get("location").unwrap(), "/mfa/enrol");
        let (key, _) = self.enrol(&c).await;
        (c, key)
    }

    /// Onboards an employee through the API; returns the invitation link.
    pub async fn onboard(
        &self,
        admin: &Client,
        name: &str,
        email: &str,
        department: &str,
        roles: &[&str],
    ) -> serde_json::Value {
        let mut form = vec![
            ("name", name.to_owned()),
            ("email", email.to_owned()),
            ("department", department.to_owned()),
        ];
        for r in roles {
            form.push(("roles[]", r.to_string()));
        }
        let r = admin
            .post(self.url("/api/onboard_employee"))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
        r.json().await.unwrap()
    }

    /// Accepts an invitation link and enrols TOTP; returns the signed-in
    /// client and the key.
    pub async fn join(&self, link: &str, password: &str) -> (Client, String) {
        let token = link.split("token=").nth(1).expect("token in link");
        let c = client();
        let r = self
            .call(
                &c,
                "accept_invitation",
                &[("token", token), ("password", password), ("confirm", password)],
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
        assert_eq!(r.headers().get("location").unwrap(), "/mfa/enrol");
        let (key, _) = self.enrol(&c).await;
        (c, key)
    }

    /// Onboards and signs in an employee with the given roles.
    pub async fn employee(
        &self,
        admin: &Client,
        name: &str,
        email: &str,
        department: &str,
        roles: &[&str],
    ) -> (Client, String, i64) {
        let inv = self.onboard(admin, name, email, department, roles).await;
        let (c, key) = self.join(inv["link"].as_str().unwrap(), "quiet meadow lantern 7").await;
        (c, key, inv["user_id"].as_i64().unwrap())
    }

    pub async fn user_id(&self, email: &str) -> i64 {
        use sqlx::Row;
        sqlx::query("SELECT id FROM users WHERE email = ?")
            .bind(email)
            .fetch_one(self.state.db.pool())
            .await
            .unwrap()
            .try_get(0)
            .unwrap()
    }

    /// Permission identifiers the client's user holds, as `me` reports.
    pub async fn perms(&self, c: &Client) -> Vec<String> {
        let me = self.me(c).await;
        me["permissions"]
            .as_array()
            .map(|a| a.iter().map(|v| v.as_str().unwrap().to_owned()).collect())
            .unwrap_or_default()
    }

    pub async fn me(&self, c: &Client) -> serde_json::Value {
        let r = self.call(c, "me", &[]).await;
        assert_eq!(r.status(), StatusCode::OK);
        r.json().await.unwrap()
    }
}

pub fn error_message(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.as_object().and_then(|o| o.values().next().cloned()))
        .map(|v| v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string()))
        .unwrap_or_else(|| body.to_owned())
}

pub fn cookie_header(r: &Response) -> Option<String> {
    r.headers()
        .get(header::SET_COOKIE)
        .map(|v| v.to_str().unwrap().to_owned())
}

// ---- RFC 6238, written here independently of the server's totp-rs.

fn base32_decode(s: &str) -> Vec<u8> {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut bits = 0u64;
    let mut n = 0;
    let mut out = Vec::new();
    for c in s.trim_end_matches('=').bytes() {
        let v = A.iter().position(|&x| x == c.to_ascii_uppercase()).expect("base32") as u64;
        bits = (bits << 5) | v;
        n += 5;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
            bits &= (1 << n) - 1;
        }
    }
    out
}

pub fn hotp(secret: &[u8], counter: u64) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret).unwrap();
    mac.update(&counter.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let off = (h[19] & 0xf) as usize;
    let bin =
        ((h[off] as u32 & 0x7f) << 24) | ((h[off + 1] as u32) << 16) | ((h[off + 2] as u32) << 8) | h[off + 3] as u32;
    format!("{:06}", bin % 1_000_000)
}

pub fn totp_now(key_base32: &str, now_ms: i64) -> String {
    hotp(&base32_decode(key_base32), (now_ms / 1000 / 30) as u64)
}

#[test]
fn independent_totp_matches_rfc6238() {
    let secret = b"12345678901234567890";
    assert_eq!(hotp(secret, 59 / 30), "287082");
    assert_eq!(hotp(secret, 1111111109 / 30), "081804");
    assert_eq!(hotp(secret, 2000000000 / 30), "279037");
    assert_eq!(base32_decode("JBSWY3DPEHPK3PXP"), b"Hello!\xde\xad\xbe\xef");
}

/// A service account with these scopes; returns its id.
pub async fn service_account(app: &TestApp, admin: &Client, name: &str, scopes: &[&str]) -> i64 {
    let mut form = vec![("name", name.to_owned())];
    for s in scopes {
        form.push(("scopes[]", s.to_string()));
    }
    let r = admin
        .post(app.url("/api/create_service_account"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    r.text().await.unwrap().parse().unwrap()
}

/// A new token for a service account (`expires_in` as the form takes it).
pub async fn api_token(app: &TestApp, admin: &Client, account_id: i64, expires_in: &str) -> String {
    let r = app
        .call(
            admin,
            "create_api_token",
            &[
                ("account_id", &account_id.to_string()),
                ("label", "production"),
                ("expires_in", expires_in),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let v: serde_json::Value = r.json().await.unwrap();
    v["token"].as_str().unwrap().to_owned()
}

/// A real OpenID provider (end2end/oidc/provider.mjs on npm oidc-provider),
/// stopped when dropped.
pub struct OidcProvider {
    child: std::process::Child,
    pub issuer: String,
}

impl OidcProvider {
    pub const SECRET: &'static str = "provider-test-client-secret-0123456789";

    pub fn start(redirect_uri: &str) -> Self {
        use std::io::BufRead;
        let root = env!("CARGO_MANIFEST_DIR");
        let mut child = std::process::Command::new("node")
            .arg(format!("{root}/end2end/oidc/provider.mjs"))
            .current_dir(root)
            .env("REDIRECT_URIS", redirect_uri)
            .env("CLIENT_SECRET", Self::SECRET)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect("node runs the OpenID provider (npm install first)");
        let mut line = String::new();
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        out.read_line(&mut line).unwrap();
        // Keep reading: a closed pipe would kill the provider at its next line.
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        let issuer = line
            .trim()
            .strip_prefix("ISSUER ")
            .unwrap_or_else(|| panic!("provider did not start: {line:?}"))
            .to_owned();
        Self { child, issuer }
    }

    /// Who signs in at the provider next, and with which `amr`.
    pub async fn next_login(&self, sub: &str, email: &str, verified: bool, amr: Option<&str>) {
        let mut url = reqwest::Url::parse(&format!("{}/test/next-login", self.issuer)).unwrap();
        url.query_pairs_mut()
            .append_pair("sub", sub)
            .append_pair("email", email)
            .append_pair("verified", &verified.to_string());
        if let Some(a) = amr {
            url.query_pairs_mut().append_pair("amr", a);
        }
        assert_eq!(reqwest::get(url).await.unwrap().status(), StatusCode::NO_CONTENT);
    }

    /// Follows the browser's way from Gatehouse's start through the
    /// provider, and returns the URL of the callback to Gatehouse (not yet
    /// requested).
    pub async fn authorize(&self, app: &TestApp, c: &Client) -> String {
        let mut url = app.url("/auth/oidc/start");
        for _ in 0..10 {
            if url.starts_with(&app.url("/auth/oidc/callback")) {
                return url;
            }
            let r = c.get(&url).send().await.unwrap();
            assert!(
                r.status().is_redirection(),
                "{url}: {} {}",
                r.status(),
                r.text().await.unwrap_or_default()
            );
            let next = r.headers().get("location").unwrap().to_str().unwrap().to_owned();
            url = reqwest::Url::parse(&url).unwrap().join(&next).unwrap().to_string();
        }
        panic!("no callback after 10 redirects");
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The real `gatehouse` binary as a process: commands and servers.
pub mod process {
    use std::{
        io::{BufRead, BufReader},
        process::{Child, Command, Stdio},
    };

    /// One `gatehouse` process with its environment.
    pub struct Process {
        pub env: Vec<(String, String)>,
    }

    impl Process {
        pub fn command(&self, args: &[&str]) -> Command {
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_gatehouse"));
            cmd.args(args).env("RUST_LOG", "warn");
            for (k, v) in &self.env {
                cmd.env(k, v);
            }
            cmd
        }

        /// Runs a command to success; its standard output.
        pub fn run(&self, args: &[&str]) -> String {
            let out = self.command(args).output().unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            assert!(
                out.status.success(),
                "gatehouse {args:?}: {stdout}{}",
                String::from_utf8_lossy(&out.stderr)
            );
            stdout
        }

        /// `gatehouse serve`, once it says it is running; killed when dropped.
        pub fn serve(&self) -> Running {
            let mut child = self.command(&["serve"]).stdout(Stdio::piped()).spawn().unwrap();
            let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
            for line in lines.by_ref() {
                if line.unwrap().contains("Gatehouse is running") {
                    break;
                }
            }
            // Keep reading so the server never blocks on a full pipe.
            std::thread::spawn(move || lines.for_each(drop));
            Running(child)
        }
    }

    /// A server process that a failing test does not leave behind.
    pub struct Running(pub Child);

    impl Running {
        pub fn id(&self) -> u32 {
            self.0.id()
        }
        pub fn kill(&mut self) -> std::io::Result<()> {
            self.0.kill()
        }
        pub fn wait(&mut self) -> std::io::Result<std::process::ExitStatus> {
            self.0.wait()
        }
    }

    impl Drop for Running {
        fn drop(&mut self) {
            if let Ok(None) = self.0.try_wait() {
                let _ = self.0.kill();
                let _ = self.0.wait();
            }
        }
    }

    /// What a finished command printed: its standard output, then its errors.
    pub fn said(out: &std::process::Output) -> String {
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    pub fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }
}

pub mod load {
    use super::client;
    use serde_json::json;
    use std::sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    };

    /// Event batches and access checks for `employee` from 6 tasks, each
    /// request to the next live server of `bases` in turn (as a load balancer
    /// sends them), until `stop` or until none answers; the customer ids
    /// (`run-…`) of every acknowledged write.
    pub async fn write_load(
        bases: Vec<String>,
        token: String,
        employee: String,
        run: &str,
        stop: Arc<AtomicBool>,
    ) -> Vec<String> {
        let acked = Arc::new(Mutex::new(Vec::new()));
        let dead: Arc<Mutex<Vec<String>>> = Arc::default();
        let mut tasks = Vec::new();
        for w in 0..6 {
            let (bases, token, employee, acked, stop, dead, run) = (
                bases.clone(),
                token.clone(),
                employee.clone(),
                acked.clone(),
                stop.clone(),
                dead.clone(),
                run.to_owned(),
            );
            tasks.push(tokio::spawn(async move {
                let c = client();
                let mut n = 0;
                while !stop.load(Ordering::SeqCst) {
                    n += 1;
                    let base = &bases[(w + n) % bases.len()];
                    let dead_now = dead.lock().unwrap().clone();
                    if dead_now.len() == bases.len() {
                        break;
                    }
                    if dead_now.contains(base) {
                        continue;
                    }
                    let ids: Vec<String> = (0..if w < 4 { 5 } else { 1 })
                        .map(|i| format!("{run}-{w}-{n}-{i}"))
                        .collect();
                    let r = if w < 4 {
                        let events: Vec<_> = ids
                            .iter()
                            .map(|id| {
                                json!({ "employee": employee, "action": "customer.view", "customer_id": id,
                                "fields": ["address"], "record_types": ["customer"], "purpose": "SUP-77",
                                "source_system": "support-desk", "occurred_at": "2026-06-01T10:00:00Z" })
                            })
                            .collect();
                        c.post(format!("{base}/api/v1/audit-events"))
                            .bearer_auth(&token)
                            .json(&json!({ "events": events }))
                    } else {
                        c.post(format!("{base}/api/v1/access-checks"))
                            .bearer_auth(&token)
                            .json(&json!({
                            "employee": employee, "permission": "customers:read", "customer_id": ids[0],
                            "resource": { "type": "customer", "id": ids[0] }, "purpose": "SUP-77" }))
                    };
                    match r.send().await {
                        Ok(r) if r.status().is_success() => acked.lock().unwrap().extend(ids),
                        Ok(r) => panic!(
                            "refused under load: {} {}",
                            r.status(),
                            r.text().await.unwrap_or_default()
                        ),
                        // A killed server: its requests in flight get no
                        // answer, so they count as not acknowledged.
                        Err(_) => {
                            let mut dead = dead.lock().unwrap();
                            if !dead.contains(base) {
                                dead.push(base.clone());
                            }
                        }
                    }
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let acked = acked.lock().unwrap().clone();
        acked
    }
}

/// The details of the latest audit event of this action.
pub async fn last_details(app: &TestApp, action: &str) -> serde_json::Value {
    let row = sqlx::query("SELECT details FROM audit_events WHERE action = ? ORDER BY seq DESC LIMIT 1")
        .bind(action)
        .fetch_one(app.state.db.pool())
        .await
        .unwrap();
    let d: String = gatehouse::server::platform::db::text(&row, "details").unwrap();
    serde_json::from_str(&d).unwrap()
}
