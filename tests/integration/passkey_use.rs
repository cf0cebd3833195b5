//! Using a passkey over HTTP, on SQLite and MySQL, with the software
//! authenticator of `passkeys.rs`: the second step of sign-in, passwordless
//! sign-in (user verification required), a cloned authenticator refused
//! and alerted, step-up, and the policy that holds administrators and
//! break-glass to a passkey (`GATEHOUSE_REQUIRE_PASSKEY`).

use super::passkeys::{mine, options, origin, register, SoftKey, UP, UV};
use crate::helpers::*;
use base64::{engine::general_purpose::URL_SAFE_NO_PAD as B64, Engine};
use reqwest::{Client, StatusCode};
use serde_json::Value;

const ADMIN: &str = "maya.okafor@sunridge-solar.example";
const PW: &str = "violet harbour lantern 42";
const MINUTE: i64 = 60_000;
const OUTAGE: &str = "payments API down, need prod database to fix stuck orders";

on_both!(
    a_passkey_signs_in_after_the_password_or_alone_and_a_clone_is_refused_and_alerted,
    the_policy_holds_administrators_and_break_glass_to_a_passkey,
    the_emergency_administrator_keeps_the_code,
);

async fn use_options(app: &TestApp, c: &Client) -> Value {
    let r = app.call(c, "passkey_authentication_options", &[]).await;
    let status = r.status();
    let body = r.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    let json: String = serde_json::from_str(&body).unwrap();
    serde_json::from_str(&json).unwrap()
}

/// Sends an authenticator's answer to sign `c` in.
async fn send(app: &TestApp, c: &Client, answer: &str) -> reqwest::Response {
    app.call(c, "passkey_sign_in", &[("credential", answer)]).await
}

/// Signs in (or finishes signing in) `c` with `k`; the response.
async fn passkey_sign_in(app: &TestApp, c: &Client, k: &SoftKey, flags: u8) -> reqwest::Response {
    let o = use_options(app, c).await;
    send(app, c, &k.get(&o, &origin(app), flags)).await
}

/// 200 when `c` is fully signed in (a call that needs it).
async fn me(app: &TestApp, c: &Client) -> StatusCode {
    app.call(c, "my_activity", &[]).await.status()
}

async fn add(app: &TestApp, c: &Client, k: &SoftKey, name: &str) -> i64 {
    let o = options(app, c).await;
    let r = register(app, c, name, &k.create(&o, &origin(app), UP | UV)).await;
    assert_eq!(r.status(), StatusCode::OK);
    r.json::<i64>().await.unwrap_or_default()
}

async fn a_passkey_signs_in_after_the_password_or_alone_and_a_clone_is_refused_and_alerted(b: Backend) {
    let app = TestApp::spawn_localhost(&b, &[]).await;
    let (admin, _, _) = app.first_admin(ADMIN, PW).await;
    let laptop = SoftKey::new();
    add(&app, &admin, &laptop, "Laptop").await;

    // The password, then the passkey (offered first: the page asks).
    let c = client();
    let r = app.call(&c, "sign_in", &[("email", ADMIN), ("password", PW)]).await;
    assert_eq!(r.headers().get("location").unwrap(), "/mfa");
    let status: Value = app.call(&c, "passkey_status", &[]).await.json().await.unwrap();
    assert_eq!(
        (status["on"].as_bool(), status["registered"].as_bool()),
        (Some(true), Some(true))
    );
    let o = use_options(&app, &c).await;
    assert_eq!(o["publicKey"]["userVerification"], "required");
    assert_eq!(o["publicKey"]["allowCredentials"][0]["id"], B64.encode(&laptop.cred_id));
    assert_eq!(me(&app, &c).await, StatusCode::UNAUTHORIZED);
    let r = send(&app, &c, &laptop.get(&o, &origin(&app), UP | UV)).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    assert_eq!(me(&app, &c).await, StatusCode::OK);
    assert_eq!(last_details(&app, "auth.signin").await["method"], "password+passkey");
    let used = last_details(&app, "passkey.used").await;
    assert_eq!(
        (used["for"].as_str(), used["counter"].as_i64()),
        (Some("sign-in"), Some(1))
    );
    assert!(
        mine(&app, &c).await[0]["last_used_at"].is_string(),
        "its last use is shown"
    );

    // Without a password: the authenticator offers its discoverable
    // credential, and a verified user counts as both factors.
    let d = client();
    let o = use_options(&app, &d).await;
    assert!(
        o["publicKey"]["allowCredentials"]
            .as_array()
            .is_none_or(|a| a.is_empty()),
        "{o}"
    );
    let r = send(&app, &d, &laptop.get(&o, &origin(&app), UP | UV)).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    assert_eq!(me(&app, &d).await, StatusCode::OK);
    assert_eq!(last_details(&app, "auth.signin").await["method"], "passkey");

    // Presence without verification, another origin (a phishing page's),
    // and a spent ceremony: refused, nobody signed in.
    let e = client();
    let r = passkey_sign_in(&app, &e, &laptop, UP).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let o = use_options(&app, &e).await;
    let phished = laptop.get(&o, &format!("http://127.0.0.1:{}", app.addr.port()), UP | UV);
    let r = send(&app, &e, &phished).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = send(&app, &e, &phished).await;
    assert_eq!(r.status(), StatusCode::CONFLICT, "the ceremony is spent");
    assert_eq!(me(&app, &e).await, StatusCode::UNAUTHORIZED);
    assert_eq!(app.audit_count("passkey.use", "failure").await, 2);
    let activity: Value = app.call(&c, "my_activity", &[]).await.json().await.unwrap();
    let activity = activity.to_string();
    assert!(
        activity.contains("Passkey used") && activity.contains("Passkey refused"),
        "{activity}"
    );

    // A signature counter that goes backwards: a copy of the key.
    // Refused, recorded as denied, and alerted.
    laptop.counter.set(Some(1));
    let r = passkey_sign_in(&app, &e, &laptop, UP | UV).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(error_message(&r.text().await.unwrap()).contains("copied"));
    assert_eq!(me(&app, &e).await, StatusCode::UNAUTHORIZED);
    assert_eq!(app.audit_count("passkey.use", "denied").await, 1);
    assert_eq!(last_details(&app, "passkey.use").await["possible_clone"], true);
    gatehouse::server::jobs::run_access_jobs(&app.state).await;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM alerts WHERE rule = 'passkey_clone'")
            .await,
        1
    );

    // A synced passkey's counter stays 0: not a clone signal.
    let synced = SoftKey::new();
    synced.counter.set(None);
    add(&app, &admin, &synced, "Phone").await;
    for _ in 0..2 {
        let f = client();
        let r = passkey_sign_in(&app, &f, &synced, UP | UV).await;
        assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    }
    assert_eq!(app.audit_count("passkey.use", "denied").await, 1);
    app.verify_chain().await;
    app.cleanup().await;
}

async fn the_policy_holds_administrators_and_break_glass_to_a_passkey(b: Backend) {
    let policy = [("GATEHOUSE_REQUIRE_PASSKEY", "administrators,breakglass")];
    let app = TestApp::spawn_localhost(&b, &policy).await;
    let (admin, key, codes) = app.first_admin(ADMIN, PW).await;
    // Enrolled with a code, no passkey yet: the administrator may only add
    // one, and then signs in with it.
    assert_eq!(me(&app, &admin).await, StatusCode::UNAUTHORIZED);
    let r = app.get(&admin, "/security").await;
    assert_eq!(r.headers().get("location").unwrap(), "/mfa/passkey");
    let laptop = SoftKey::new();
    let o = options(&app, &admin).await;
    let r = register(&app, &admin, "Laptop", &laptop.create(&o, &origin(&app), UP | UV)).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers().get("location").unwrap(), "/mfa");
    assert_eq!(me(&app, &admin).await, StatusCode::UNAUTHORIZED);
    let r = passkey_sign_in(&app, &admin, &laptop, UP | UV).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    assert_eq!(me(&app, &admin).await, StatusCode::OK);

    // A code alone, or a recovery code, no longer signs an administrator in.
    let c = client();
    app.call(&c, "sign_in", &[("email", ADMIN), ("password", PW)]).await;
    let r = app.call(&c, "verify_code", &[("code", &app.code(&key))]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(error_message(&r.text().await.unwrap()).contains("requires a passkey"));
    let r = app.call(&c, "use_recovery_code", &[("code", &codes[0])]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.audit_count("auth.signin", "denied").await, 2);
    let r = passkey_sign_in(&app, &c, &laptop, UP | UV).await;
    assert_eq!(r.status(), StatusCode::OK);

    // Step-up: a code is refused, a passkey counts.
    let spare = SoftKey::new();
    let spare_id = add(&app, &c, &spare, "Spare").await.to_string();
    app.clock.advance(6 * MINUTE);
    let r = app
        .call(&c, "remove_passkey", &[("id", &spare_id), ("code", &app.code(&key))])
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(error_message(&r.text().await.unwrap()).contains("passkey"));
    let o = use_options(&app, &c).await;
    let answer = laptop.get(&o, &origin(&app), UP | UV);
    let r = app
        .call(
            &c,
            "passkey_step_up",
            &[("purpose", "remove passkey"), ("credential", &answer)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let r = app.call(&c, "remove_passkey", &[("id", &spare_id)]).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let step = last_details(&app, "mfa.step_up").await;
    assert_eq!(
        (step["method"].as_str(), step["for"].as_str()),
        (Some("passkey"), Some("remove passkey"))
    );

    // Support staff hold no administrator power: the code still works.
    let (jonas, _, _) = app
        .employee(
            &c,
            "Jonas Becker",
            "jonas@sunridge-solar.example",
            "support",
            &["support"],
        )
        .await;
    assert_eq!(me(&app, &jonas).await, StatusCode::OK);
    // A new administrator without a passkey is listed on the overview,
    // and can do nothing but add one.
    let (lukas, _, lukas_id) = app
        .employee(
            &c,
            "Lukas Meyer",
            "lukas.meyer@sunridge-solar.example",
            "administration",
            &["admin"],
        )
        .await;
    let dash: Value = app.call(&c, "dashboard", &[]).await.json().await.unwrap();
    assert_eq!(dash["passkeys_required"], true);
    assert_eq!(dash["lacking_passkey"], serde_json::json!([[lukas_id, "Lukas Meyer"]]));
    assert_eq!(me(&app, &lukas).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.get(&lukas, "/").await.headers().get("location").unwrap(),
        "/mfa/passkey"
    );
    // Breaking the glass needs a passkey, used within the last minute.
    let (eng, eng_key, _) = app
        .employee(
            &c,
            "Priya Raman",
            "priya.raman@sunridge-solar.example",
            "engineering",
            &["engineer"],
        )
        .await;
    app.clock.advance(31_000);
    let r = app
        .call(
            &eng,
            "break_glass",
            &[("justification", OUTAGE), ("code", &app.code(&eng_key))],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let key = SoftKey::new();
    add(&app, &eng, &key, "Security key").await;
    let o = use_options(&app, &eng).await;
    let answer = key.get(&o, &origin(&app), UP | UV);
    let r = app
        .call(
            &eng,
            "passkey_step_up",
            &[("purpose", "break glass"), ("credential", &answer)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    app.clock.advance(2 * MINUTE);
    let r = app.call(&eng, "break_glass", &[("justification", OUTAGE)]).await;
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "the passkey was used too long ago"
    );
    let o = use_options(&app, &eng).await;
    let answer = key.get(&o, &origin(&app), UP | UV);
    app.call(
        &eng,
        "passkey_step_up",
        &[("purpose", "break glass"), ("credential", &answer)],
    )
    .await;
    let r = app.call(&eng, "break_glass", &[("justification", OUTAGE)]).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    assert_eq!(app.count("SELECT COUNT(*) FROM elevation_requests").await, 1);
    app.verify_chain().await;
    app.cleanup().await;
}

async fn the_emergency_administrator_keeps_the_code(b: Backend) {
    let vars = [
        ("GATEHOUSE_REQUIRE_PASSKEY", "administrators,breakglass"),
        ("GATEHOUSE_SSO_BREAKGLASS_EMAIL", ADMIN),
    ];
    let (app, _provider) = TestApp::spawn_with_sso_at(&b, &vars, true).await;
    let (maya, key, _) = app.first_admin(ADMIN, PW).await;
    // The emergency administrator (GATEHOUSE_SSO_BREAKGLASS_EMAIL): password
    // and code, no passkey, for sign-in and step-up alike.
    assert_eq!(me(&app, &maya).await, StatusCode::OK);
    let c = app.sign_in(ADMIN, PW, &key).await;
    assert_eq!(me(&app, &c).await, StatusCode::OK);
    let dash: Value = app.call(&c, "dashboard", &[]).await.json().await.unwrap();
    assert_eq!(
        dash["lacking_passkey"],
        serde_json::json!([]),
        "not lacking: not required"
    );
    // Any other administrator is held to a passkey.
    let (lukas, _, _) = app
        .employee(
            &c,
            "Lukas Meyer",
            "lukas.meyer@sunridge-solar.example",
            "administration",
            &["admin"],
        )
        .await;
    assert_eq!(me(&app, &lukas).await, StatusCode::UNAUTHORIZED);
    app.cleanup().await;
}
