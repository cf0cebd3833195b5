use crate::helpers::*;
use reqwest::StatusCode;

const ADMIN: &str = "maya.okafor@sunridge-solar.example";
const PW: &str = "violet harbour lantern 42";

on_both!(
    security_headers_on_every_response,
    cross_origin_state_changes_are_refused,
    malformed_input_gets_4xx_and_writes_nothing,
    internal_errors_show_only_a_request_id,
    public_files_are_served_to_anyone,
    forwarded_client_addresses_are_believed_only_from_trusted_proxies,
);

fn assert_headers(r: &reqwest::Response, what: &str) {
    let h = r.headers();
    let get = |k: &str| {
        h.get(k)
            .unwrap_or_else(|| panic!("{what}: missing {k}"))
            .to_str()
            .unwrap()
            .to_owned()
    };
    let csp = get("content-security-policy");
    for part in [
        "frame-ancestors 'none'",
        "object-src 'none'",
        "base-uri 'none'",
        "script-src 'self' 'nonce-",
    ] {
        assert!(csp.contains(part), "{what}: CSP lacks {part}: {csp}");
    }
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("'unsafe-eval'"),
        "{what}: {csp}"
    );
    assert!(get("strict-transport-security").contains("max-age=63072000"));
    assert_eq!(get("x-content-type-options"), "nosniff");
    assert_eq!(get("referrer-policy"), "no-referrer");
    assert!(get("permissions-policy").contains("camera=()"));
    assert_eq!(get("cross-origin-opener-policy"), "same-origin");
    assert!(!get("x-request-id").is_empty());
}

fn nonce_of(r: &reqwest::Response) -> String {
    let csp = r.headers().get("content-security-policy").unwrap().to_str().unwrap();
    csp.split("'nonce-")
        .nth(1)
        .unwrap()
        .split('\'')
        .next()
        .unwrap()
        .to_owned()
}

async fn security_headers_on_every_response(b: Backend) {
    let app = TestApp::spawn(&b).await;
    let c = client();
    let r1 = app.get(&c, "/signin").await;
    assert_eq!(r1.status(), StatusCode::OK);
    assert_headers(&r1, "page");
    let n1 = nonce_of(&r1);
    let html = r1.text().await.unwrap();
    // The hydration script carries the response's nonce.
    assert!(html.contains(&format!("nonce=\"{n1}\"")), "script nonce missing");
    let r2 = app.get(&c, "/signin").await;
    assert_ne!(nonce_of(&r2), n1, "a fresh nonce per response");
    for (method, path) in [
        ("GET", "/no-such-page"),
        ("GET", "/pkg/missing.js"),
        ("GET", "/healthz"),
        ("POST", "/api/sign_in"),
        ("GET", "/"),
    ] {
        let r = c.request(method.parse().unwrap(), app.url(path)).send().await.unwrap();
        assert_headers(&r, path);
    }
    let r = app.get(&c, "/no-such-page").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    app.cleanup().await;
}

async fn cross_origin_state_changes_are_refused(b: Backend) {
    let app = TestApp::spawn(&b).await;
    app.first_admin(ADMIN, PW).await;
    let before = app.count("SELECT COUNT(*) FROM audit_events").await;
    let c = client();
    let form = [("email", ADMIN), ("password", "wrong password here")];
    let r = c
        .post(app.url("/api/sign_in"))
        .header("origin", "https://evil.example")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_headers(&r, "refused");
    let r = c
        .post(app.url("/api/sign_in"))
        .header("sec-fetch-site", "cross-site")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = c
        .post(app.url("/api/sign_in"))
        .header("sec-fetch-site", "same-site")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_events").await,
        before,
        "refused requests change nothing"
    );
    // An Origin that only matches the Host header the request names (as a
    // DNS-rebinding page's would) is not the configured public origin.
    let r = c
        .post(app.url("/api/sign_in"))
        .header("host", "rebound.example:8080")
        .header("origin", "http://rebound.example:8080")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::FORBIDDEN,
        "an origin matching only the Host header is refused"
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_events").await,
        before,
        "refused requests change nothing"
    );
    // The same request from the app's own origin goes through.
    let origin = format!("http://{}", app.addr);
    let r = c
        .post(app.url("/api/sign_in"))
        .header("origin", origin)
        .header("sec-fetch-site", "same-origin")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    app.cleanup().await;
}

async fn malformed_input_gets_4xx_and_writes_nothing(b: Backend) {
    let app = TestApp::spawn(&b).await;
    let (signed_in, _, _) = app.first_admin(ADMIN, PW).await;
    let events = app.count("SELECT COUNT(*) FROM audit_events").await;
    let failures = app.count("SELECT COUNT(*) FROM auth_failures").await;
    let c = client();
    let post_raw = |body: Vec<u8>| {
        c.post(app.url("/api/sign_in"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    // Missing field.
    let r = post_raw(b"email=a%40b.example".to_vec()).await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body = r.text().await.unwrap();
    assert!(error_message(&body).contains("could not be read"), "{body}");
    // Invalid UTF-8.
    let r = post_raw(b"email=%FF%FE&password=%C3%28".to_vec()).await.unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
    // Over-long fields.
    let long_email = format!("{}@example.com", "a".repeat(300));
    let r = app
        .call(&c, "sign_in", &[("email", &long_email), ("password", "x")])
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let long_pw = "p".repeat(2000);
    let r = app
        .call(&c, "sign_in", &[("email", ADMIN), ("password", &long_pw)])
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = app
        .call(&signed_in, "regenerate_recovery_codes", &[("code", &"9".repeat(5000))])
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // Too large a body. The server answers before reading it and then closes
    // the connection, so this goes on a client of its own (a pooled
    // connection would be reused after the close).
    let r = client()
        .post(app.url("/api/sign_in"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(vec![b'a'; 100 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // Unknown routes and server functions.
    assert_eq!(app.get(&c, "/nope").await.status(), StatusCode::NOT_FOUND);
    let r = c
        .post(app.url("/api/no_such_fn"))
        .form(&[("a", "b")])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error());
    assert!(
        !r.text().await.unwrap().contains("server function"),
        "no framework internals"
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM audit_events").await, events);
    assert_eq!(app.count("SELECT COUNT(*) FROM auth_failures").await, failures);
    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, 1);
    app.cleanup().await;
}

async fn internal_errors_show_only_a_request_id(b: Backend) {
    let app = TestApp::spawn(&b).await;
    app.first_admin(ADMIN, PW).await;
    let users_before = app.count("SELECT COUNT(*) FROM auth_failures").await;
    // Break the audit table as a failing disk would: the action must fail
    // closed (nothing stored without its audit event) and say nothing inside.
    sqlx::query("ALTER TABLE audit_head RENAME TO audit_head_gone")
        .execute(app.state.db.pool())
        .await
        .unwrap();
    let c = client();
    let r = app
        .call(&c, "sign_in", &[("email", ADMIN), ("password", "wrong password here")])
        .await;
    assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let request_id = r.headers().get("x-request-id").unwrap().to_str().unwrap().to_owned();
    let body = r.text().await.unwrap();
    assert!(body.contains(&request_id), "{body}");
    for leak in ["audit_head", "SELECT", "sqlx", "src/", "panicked"] {
        assert!(!body.contains(leak), "{leak} leaked: {body}");
    }
    // The attempt is counted before the password is checked (so concurrent
    // guesses cannot outrun the lockout): where that count could be stored
    // (MySQL; on SQLite every write takes the audit head first and fails
    // here) it stays, failing closed: an attempt whose outcome could not be
    // recorded still counts against the account and the address.
    let counted = match b {
        Backend::Sqlite => 0,
        Backend::MySql { .. } => 2,
    };
    assert_eq!(
        app.count("SELECT COUNT(*) FROM auth_failures").await,
        users_before + counted
    );
    assert_eq!(app.audit_count("auth.signin", "failure").await, 0);
    sqlx::query("ALTER TABLE audit_head_gone RENAME TO audit_head")
        .execute(app.state.db.pool())
        .await
        .unwrap();
    app.cleanup().await;
}

/// `public/` is served from the site root without signing in: the icon the
/// browser asks for on every page, and a robots.txt that keeps crawlers out
/// of an internal tool.
async fn public_files_are_served_to_anyone(b: Backend) {
    let app = TestApp::spawn(&b).await;
    let c = client();
    let r = app.get(&c, "/favicon.ico").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_headers(&r, "favicon");
    let icon = r.bytes().await.unwrap();
    assert_eq!(&icon[..4], &[0, 0, 1, 0], "an ICO file");
    let r = app.get(&c, "/robots.txt").await;
    assert_eq!(r.status(), StatusCode::OK);
    let text = r.text().await.unwrap();
    assert!(text.lines().any(|l| l.trim() == "User-agent: *"), "{text}");
    assert!(text.lines().any(|l| l.trim() == "Disallow: /"), "{text}");
    app.cleanup().await;
}

/// Behind a reverse proxy: `X-Forwarded-For` names the client only when the
/// connection comes from a trusted proxy (here the tests' own loopback);
/// otherwise the connection's address is the client's, whatever the header says.
async fn forwarded_client_addresses_are_believed_only_from_trusted_proxies(b: Backend) {
    let ip_of_failed_signin = |app: &TestApp| {
        let sql = "SELECT actor_ip FROM audit_events WHERE action = 'auth.signin' ORDER BY seq DESC LIMIT 1";
        let pool = app.state.db.pool().clone();
        async move {
            let row = sqlx::query(sql).fetch_one(&pool).await.unwrap();
            gatehouse::server::platform::db::text(&row, "actor_ip").unwrap()
        }
    };
    for (trusted, expected) in [(None, "127.0.0.1"), (Some("127.0.0.1/32"), "198.51.100.7")] {
        let extra: Vec<(&str, &str)> = trusted.map(|t| ("GATEHOUSE_TRUSTED_PROXIES", t)).into_iter().collect();
        let app = TestApp::spawn_with(&b, &extra).await;
        app.first_admin(ADMIN, PW).await;
        let r = client()
            .post(app.url("/api/sign_in"))
            .header("x-forwarded-for", "203.0.113.9, 198.51.100.7")
            .form(&[("email", ADMIN), ("password", "wrong password here")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            ip_of_failed_signin(&app).await,
            expected,
            "trusted proxies: {trusted:?}"
        );
        app.cleanup().await;
    }
}
