//! Single sign-on against a real OpenID provider (npm oidc-provider, run
//! by the test): who may sign in, Gatehouse's TOTP after SSO, `amr` trust,
//! one-use state bound to the browser, replayed codes, SSO-only sign-in
//! with a break-glass administrator, RP-initiated logout, and each ID
//! token check (nonce, audience, expiry, signature, issuer).

use crate::helpers::*;
use reqwest::StatusCode;

const ADMIN: &str = "maya.okafor@sunridge-solar.example";
const PW: &str = "violet harbour lantern 42";
const JONAS: &str = "jonas.becker@sunridge-solar.example";

on_both!(
    sso_signs_in_a_provisioned_employee_and_still_asks_for_totp,
    sso_refuses_unknown_unverified_suspended_and_offboarded_people,
    sso_state_is_single_use_bound_to_the_browser_and_expires,
);

/// The callback's answer: status, where it sends the browser next, body.
async fn finish(c: &reqwest::Client, callback: &str) -> (StatusCode, Option<String>, String) {
    let r = c.get(callback).send().await.unwrap();
    let next = r
        .headers()
        .get("x-gatehouse-next")
        .map(|v| v.to_str().unwrap().to_owned());
    (r.status(), next, r.text().await.unwrap())
}

async fn sso_signs_in_a_provisioned_employee_and_still_asks_for_totp(b: Backend) {
    let (app, idp) = TestApp::spawn_with_sso(&b, &[]).await;
    let (admin, _, _) = app.first_admin(ADMIN, PW).await;
    let (_, key, jonas_id) = app
        .employee(&admin, "Jonas Becker", JONAS, "support", &["support"])
        .await;

    // First sign-in: matched by verified email, linked to the subject.
    idp.next_login("okta-jonas", JONAS, true, Some("pwd,otp")).await;
    let c = client();
    let callback = idp.authorize(&app, &c).await;
    assert!(callback.contains("code=") && callback.contains("state="), "{callback}");
    let (status, next, _) = finish(&c, &callback).await;
    assert_eq!(
        (status, next.as_deref()),
        (StatusCode::OK, Some("/mfa")),
        "provider MFA is not trusted by default"
    );
    assert!(app.me(&c).await.is_null(), "not signed in before Gatehouse's own code");
    assert_eq!(
        app.call(&c, "verify_code", &[("code", &app.code(&key))]).await.status(),
        StatusCode::OK
    );
    app.clock.advance(30_000);
    assert_eq!(app.me(&c).await["email"], JONAS);
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM users WHERE id = {jonas_id} AND oidc_subject = 'okta-jonas'"
        ))
        .await,
        1
    );
    assert_eq!(app.audit_count("auth.sso", "success").await, 1);

    // The same code again, in a new attempt of the same browser: the
    // provider refuses it, Gatehouse records the refusal.
    let old_code = reqwest::Url::parse(&callback)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    idp.next_login("okta-jonas", JONAS, true, None).await;
    let c2 = client();
    let fresh = idp.authorize(&app, &c2).await;
    let mut replay = reqwest::Url::parse(&fresh).unwrap();
    let state = replay.query_pairs().find(|(k, _)| k == "state").unwrap().1.into_owned();
    replay
        .query_pairs_mut()
        .clear()
        .append_pair("code", &old_code)
        .append_pair("state", &state);
    let denied = app.audit_count("auth.sso", "denied").await;
    let (status, next, body) = finish(&c2, replay.as_str()).await;
    assert_eq!((status, next), (StatusCode::BAD_REQUEST, None));
    assert!(body.contains("Start again"), "{body}");
    assert_eq!(app.audit_count("auth.sso", "denied").await, denied + 1);

    // Later sign-ins go by the subject, even after the email changed at the provider.
    idp.next_login("okta-jonas", "jonas.b@elsewhere.example", true, None)
        .await;
    let c3 = client();
    let callback = idp.authorize(&app, &c3).await;
    assert_eq!(finish(&c3, &callback).await.1.as_deref(), Some("/mfa"));

    // Sign-out ends the session and continues at the provider's end-session endpoint.
    let r = app.call(&c, "sign_out", &[]).await;
    let location = r
        .headers()
        .get("location")
        .expect("redirect")
        .to_str()
        .unwrap()
        .to_owned();
    assert!(location.starts_with(&idp.issuer), "{location}");
    assert!(
        location.contains("id_token_hint=") && location.contains("post_logout_redirect_uri="),
        "{location}"
    );
    assert!(app.me(&c).await.is_null());
    app.verify_chain().await;
    app.cleanup().await;
}

async fn sso_refuses_unknown_unverified_suspended_and_offboarded_people(b: Backend) {
    let (app, idp) = TestApp::spawn_with_sso(&b, &[]).await;
    let (admin, _, _) = app.first_admin(ADMIN, PW).await;
    let (_, _, jonas_id) = app
        .employee(&admin, "Jonas Becker", JONAS, "support", &["support"])
        .await;
    let lea = "lea.hoffmann@sunridge-solar.example";
    app.employee(&admin, "Lea Hoffmann", lea, "support", &[]).await;

    let attempt = |sub: &'static str, email: &'static str, verified: bool| {
        let app = &app;
        let idp = &idp;
        async move {
            idp.next_login(sub, email, verified, None).await;
            let c = client();
            let callback = idp.authorize(app, &c).await;
            let (status, next, body) = finish(&c, &callback).await;
            assert!(app.me(&c).await.is_null(), "{email}: no session");
            (status, next, body)
        }
    };
    let denied = app.audit_count("auth.sso", "denied").await;
    // Nobody with this subject or email: no self-registration.
    let (status, next, body) = attempt("okta-stranger", "stranger@elsewhere.example", true).await;
    assert_eq!((status, next), (StatusCode::FORBIDDEN, None));
    assert!(body.contains("not set up in Gatehouse"), "{body}");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM users WHERE email = 'stranger@elsewhere.example'")
            .await,
        0
    );
    // The email matches but the provider has not verified it.
    assert_eq!(attempt("okta-lea", lea, false).await.0, StatusCode::FORBIDDEN);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM users WHERE oidc_subject IS NOT NULL")
            .await,
        0
    );

    // Suspended, then offboarded: refused though the provider lets them in.
    let r = app
        .call(
            &admin,
            "suspend_employee",
            &[("user_id", &jonas_id.to_string()), ("reason", "investigation INC-4")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let (status, _, body) = attempt("okta-jonas", JONAS, true).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body.contains("suspended"), "{body}");
    gatehouse_offboard(&app, jonas_id).await;
    let (status, _, body) = attempt("okta-jonas", JONAS, true).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body.contains("closed"), "{body}");
    assert_eq!(
        app.audit_count("auth.sso", "denied").await,
        denied + 4,
        "each refusal is recorded"
    );
    app.verify_chain().await;
    app.cleanup().await;
}

/// Offboards through the same code the offboarding action uses.
async fn gatehouse_offboard(app: &TestApp, user_id: i64) {
    let st = &app.state;
    let now = st.clock.now();
    let mut tx = st.db.begin_write().await.unwrap();
    let status = gatehouse::server::identity::accounts::by_id(tx.conn(), user_id)
        .await
        .unwrap()
        .unwrap()
        .status;
    let leaver = gatehouse::server::access::people::Leaver {
        user_id,
        status_before: &status,
        reason: "test",
        revoke_tokens: true,
    };
    let actor = Default::default();
    let offboarded = gatehouse::server::access::people::offboard_in(&mut tx, &actor, None, leaver, now);
    assert!(offboarded.await.unwrap());
    tx.commit().await.unwrap();
}

async fn sso_state_is_single_use_bound_to_the_browser_and_expires(b: Backend) {
    let (app, idp) = TestApp::spawn_with_sso(&b, &[]).await;
    let (admin, _, _) = app.first_admin(ADMIN, PW).await;
    app.employee(&admin, "Jonas Becker", JONAS, "support", &["support"])
        .await;

    // A state Gatehouse never issued.
    idp.next_login("okta-jonas", JONAS, true, None).await;
    let c = client();
    let callback = idp.authorize(&app, &c).await;
    let mut forged = reqwest::Url::parse(&callback).unwrap();
    let code = forged.query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned();
    forged
        .query_pairs_mut()
        .clear()
        .append_pair("code", &code)
        .append_pair("state", "not-a-state-we-issued");
    assert_eq!(finish(&c, forged.as_str()).await.0, StatusCode::BAD_REQUEST);

    // The callback in another browser (an attacker's link): refused.
    assert_eq!(finish(&client(), &callback).await.0, StatusCode::BAD_REQUEST);
    // In the right browser it works once; the second time it is refused.
    assert_eq!(finish(&c, &callback).await.0, StatusCode::OK);
    assert_eq!(finish(&c, &callback).await.0, StatusCode::BAD_REQUEST);

    // An attempt older than 10 minutes is refused.
    idp.next_login("okta-jonas", JONAS, true, None).await;
    let late = client();
    let callback = idp.authorize(&app, &late).await;
    app.clock.advance(10 * 60_000 + 1);
    let (status, _, body) = finish(&late, &callback).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("expired"), "{body}");
    assert!(app.me(&late).await.is_null());
    assert_eq!(app.count("SELECT COUNT(*) FROM audit_events WHERE action = 'auth.sso' AND outcome = 'denied' AND reason = 'state expired'").await, 1);
    app.verify_chain().await;
    app.cleanup().await;
}

// Configuration-dependent behaviour, SQLite only (the storage paths are the same).

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sso_trusts_provider_mfa_only_when_configured_and_proven() {
    let (app, idp) = TestApp::spawn_with_sso(&Backend::Sqlite, &[("GATEHOUSE_OIDC_TRUST_AMR", "mfa,otp,hwk")]).await;
    let (admin, _, _) = app.first_admin(ADMIN, PW).await;
    app.employee(&admin, "Jonas Becker", JONAS, "support", &["support"])
        .await;

    idp.next_login("okta-jonas", JONAS, true, Some("pwd,otp")).await;
    let c = client();
    let callback = idp.authorize(&app, &c).await;
    assert_eq!(
        finish(&c, &callback).await.1.as_deref(),
        Some("/"),
        "amr proves MFA: signed in"
    );
    assert_eq!(app.me(&c).await["email"], JONAS);

    idp.next_login("okta-jonas", JONAS, true, Some("pwd")).await;
    let c = client();
    let callback = idp.authorize(&app, &c).await;
    assert_eq!(
        finish(&c, &callback).await.1.as_deref(),
        Some("/mfa"),
        "password only: Gatehouse asks for its code"
    );
    assert!(app.me(&c).await.is_null());

    // An employee without Gatehouse TOTP enrols, whatever the provider did.
    let lea = "lea.hoffmann@sunridge-solar.example";
    app.onboard(&admin, "Lea Hoffmann", lea, "support", &[]).await;
    idp.next_login("okta-lea", lea, true, Some("mfa")).await;
    let c = client();
    let callback = idp.authorize(&app, &c).await;
    assert_eq!(finish(&c, &callback).await.1.as_deref(), Some("/mfa/enrol"));
    // The invited employee is active from this first sign-in on.
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM users WHERE email = '{lea}' AND status = 'active'"
        ))
        .await,
        1
    );
    assert_eq!(app.audit_count("employee.activated", "success").await, 1);
    app.verify_chain().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sso_required_leaves_passwords_to_the_break_glass_administrator() {
    let (app, _idp) = TestApp::spawn_with_sso(
        &Backend::Sqlite,
        &[
            ("GATEHOUSE_SSO_REQUIRED", "true"),
            ("GATEHOUSE_SSO_BREAKGLASS_EMAIL", ADMIN),
        ],
    )
    .await;
    let (admin, admin_key, _) = app.first_admin(ADMIN, PW).await;
    app.employee(&admin, "Jonas Becker", JONAS, "support", &["support"])
        .await;

    let c = client();
    let r = app
        .call(
            &c,
            "sign_in",
            &[("email", JONAS), ("password", "quiet meadow lantern 7")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(error_message(&r.text().await.unwrap()).contains("single sign-on"));
    assert_eq!(app.count("SELECT COUNT(*) FROM audit_events WHERE action = 'auth.signin' AND outcome = 'denied' AND reason = 'password sign-in while SSO is required'").await, 1);
    // The break-glass administrator still signs in with password + TOTP.
    let again = app.sign_in(ADMIN, PW, &admin_key).await;
    assert_eq!(app.me(&again).await["email"], ADMIN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_or_invalid_provider_stops_the_server_with_a_clear_message() {
    let dir = tempdir::Dir::new();
    let db = format!("sqlite://{}/g.db", dir.0.display());
    let vars: std::collections::HashMap<&str, String> = [
        ("GATEHOUSE_DATABASE_URL", db),
        ("GATEHOUSE_DATA_DIR", dir.0.display().to_string()),
        ("GATEHOUSE_OIDC_ISSUER", "http://127.0.0.1:9".to_owned()),
        ("GATEHOUSE_OIDC_CLIENT_ID", "gatehouse".to_owned()),
        ("GATEHOUSE_OIDC_CLIENT_SECRET", "do-not-print-this-secret".to_owned()),
    ]
    .into_iter()
    .collect();
    let config = gatehouse::server::platform::config::Config::from_lookup(|k| vars.get(k).cloned()).unwrap();
    let st = gatehouse::server::startup::state(config, gatehouse::server::platform::clock::Clock::system())
        .await
        .unwrap();
    let e = gatehouse::server::startup::with_sso(st)
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(
        e.starts_with("single sign-on: cannot read the OpenID provider's metadata at http://127.0.0.1:9"),
        "{e}"
    );
    assert!(!e.contains("do-not-print-this-secret"));
    // A provider whose metadata is not valid OpenID metadata.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let bogus = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().route(
        "/.well-known/openid-configuration",
        axum::routing::get(|| async {
            (
                [("content-type", "application/json")],
                r#"{"issuer":"https://elsewhere.example"}"#,
            )
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let config = gatehouse::server::platform::config::Config::from_lookup(|k| match k {
        "GATEHOUSE_OIDC_ISSUER" => Some(bogus.clone()),
        _ => vars.get(k).cloned(),
    })
    .unwrap();
    let st = gatehouse::server::startup::state(config, gatehouse::server::platform::clock::Clock::system())
        .await
        .unwrap();
    let e = gatehouse::server::startup::with_sso(st)
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(
        e.starts_with(&format!(
            "single sign-on: cannot read the OpenID provider's metadata at {bogus}"
        )),
        "{e}"
    );
    assert!(!e.contains("do-not-print-this-secret"));
    // An issuer over plain http on another host is refused before any request.
    let bad = gatehouse::server::platform::config::Config::from_lookup(|k| match k {
        "GATEHOUSE_OIDC_ISSUER" => Some("http://login.example.com".into()),
        _ => vars.get(k).cloned(),
    });
    let e = bad.expect_err("refused");
    assert_eq!(e.variable, "GATEHOUSE_OIDC_ISSUER");
}

/// ID token validation, each failure on its own: tokens signed here with
/// a known key (A) and an unknown one (B), checked by the same verifier the
/// callback uses.
#[test]
fn id_tokens_failing_any_check_are_rejected_with_that_reason() {
    use openidconnect::core::*;
    use openidconnect::*;
    let issuer = "https://login.sunridge-solar.example";
    let key_a =
        CoreRsaPrivateSigningKey::from_pem(include_str!("keys/provider_a.pem"), Some(JsonWebKeyId::new("a".into())))
            .unwrap();
    let key_b =
        CoreRsaPrivateSigningKey::from_pem(include_str!("keys/provider_b.pem"), Some(JsonWebKeyId::new("a".into())))
            .unwrap();
    let meta = CoreProviderMetadata::new(
        IssuerUrl::new(issuer.into()).unwrap(),
        AuthUrl::new(format!("{issuer}/authorize")).unwrap(),
        JsonWebKeySetUrl::new(format!("{issuer}/jwks")).unwrap(),
        vec![ResponseTypes::new(vec![CoreResponseType::Code])],
        vec![CoreSubjectIdentifierType::Public],
        vec![CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256],
        EmptyAdditionalProviderMetadata {},
    )
    .set_token_endpoint(Some(TokenUrl::new(format!("{issuer}/token")).unwrap()))
    .set_jwks(JsonWebKeySet::new(vec![key_a.as_verification_key()]));
    let cfg = gatehouse::server::platform::config::Oidc {
        issuer: reqwest::Url::parse(issuer).unwrap(),
        client_id: "gatehouse".into(),
        client_secret: secrecy::SecretString::from("s"),
        trust_amr: vec![],
        required: false,
        breakglass: None,
    };
    let sso = gatehouse::server::identity::sso::Sso::from_metadata(
        meta,
        &cfg,
        &reqwest::Url::parse("http://127.0.0.1:3000").unwrap(),
        None,
    )
    .unwrap();

    struct Token<'a> {
        key: &'a CoreRsaPrivateSigningKey,
        iss: &'a str,
        aud: &'a str,
        expires_in: i64,
        nonce: &'a str,
    }
    let good = Token {
        key: &key_a,
        iss: issuer,
        aud: "gatehouse",
        expires_in: 300,
        nonce: "n-1",
    };
    let mint = |t: &Token| {
        let now = chrono::Utc::now();
        let claims = CoreIdTokenClaims::new(
            IssuerUrl::new(t.iss.into()).unwrap(),
            vec![Audience::new(t.aud.into())],
            now + chrono::Duration::seconds(t.expires_in),
            now - chrono::Duration::seconds(600),
            StandardClaims::new(SubjectIdentifier::new("okta-jonas".into())),
            EmptyAdditionalClaims {},
        )
        .set_nonce(Some(Nonce::new(t.nonce.into())));
        CoreIdToken::new(claims, t.key, CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256, None, None).unwrap()
    };
    let accepted = sso
        .verify_id_token(&mint(&good), "n-1")
        .expect("a correct token passes");
    assert_eq!(accepted.subject().as_str(), "okta-jonas");
    let cases = [
        (
            Token {
                nonce: "n-other",
                ..good
            },
            "wrong nonce",
        ),
        (
            Token {
                aud: "other-app",
                ..good
            },
            "wrong audience",
        ),
        (
            Token {
                expires_in: -60,
                ..good
            },
            "expired",
        ),
        (Token { key: &key_b, ..good }, "bad signature"),
        (
            Token {
                iss: "https://evil.example",
                ..good
            },
            "wrong issuer",
        ),
    ];
    for (t, why) in cases {
        assert_eq!(sso.verify_id_token(&mint(&t), "n-1").err(), Some(why));
    }
}
