//! Brute force under concurrency: an attempt is counted before its password
//! or code is checked, so however many guesses arrive at once, no more are
//! checked than the rules allow (5 free, then one per growing wait, and a
//! lock at 10 within 15 minutes); the rest are answered 429 with
//! Retry-After, and the lock is recorded once. SQLite and MySQL.

use crate::helpers::*;
use reqwest::{Client, StatusCode};

const ADMIN: &str = "maya.okafor@sunridge-solar.example";
const PW: &str = "violet harbour lantern 42";
const JONAS: &str = "jonas.becker@sunridge-solar.example";
const JONAS_PW: &str = "quiet meadow lantern 7";

on_both!(
    concurrent_guesses_are_counted_before_they_are_checked,
    expensive_work_only_after_cheap_checks,
    a_known_browser_keeps_its_own_allowance,
);

/// Sends `n` copies of one call at once (each from `client(i)`); answers
/// how many were checked (401) and how many refused unchecked (429, each
/// with Retry-After).
async fn burst(
    app: &TestApp,
    n: usize,
    client: impl Fn(usize) -> Client,
    name: &str,
    form: &[(&str, &str)],
) -> (usize, usize) {
    let calls = (0..n).map(|i| {
        let c = client(i);
        async move { app.call(&c, name, form).await }
    });
    let answers = futures::future::join_all(calls).await;
    let (mut checked, mut refused) = (0, 0);
    for r in answers {
        match r.status() {
            StatusCode::UNAUTHORIZED => checked += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                let wait: i64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
                assert!(wait >= 1);
                refused += 1;
            }
            other => panic!("{name}: {other} {}", r.text().await.unwrap()),
        }
    }
    (checked, refused)
}

/// The lock events recorded about one account.
async fn locks_of(app: &TestApp, user_id: i64) -> i64 {
    app.count(&format!(
        "SELECT COUNT(*) FROM audit_events WHERE action = 'auth.lockout' AND target_type = 'user' AND target_id = '{user_id}'"
    ))
    .await
}

async fn concurrent_guesses_are_counted_before_they_are_checked(b: Backend) {
    let app = TestApp::spawn(&b).await;
    let (maya, _, _) = app.first_admin(ADMIN, PW).await;
    let (_, jonas_key, jonas_id) = app.employee(&maya, "Jonas Becker", JONAS, "support", &[]).await;
    let maya_id = app.user_id(ADMIN).await;

    // 100 wrong passwords at once, each from a new browser.
    let wrong = [("email", ADMIN), ("password", "not the password at all")];
    let (checked, refused) = burst(&app, 100, |_| client(), "sign_in", &wrong).await;
    assert_eq!((checked, refused), (5, 95), "the five free attempts, no more");
    // Then one per wait, however many arrive, up to the lock at ten.
    for round in 6..=10 {
        app.clock.advance(40_000);
        let (checked, refused) = burst(&app, 20, |_| client(), "sign_in", &wrong).await;
        assert_eq!((checked, refused), (1, 19), "round {round}");
    }
    assert_eq!(app.audit_count("auth.signin", "failure").await, 10);
    assert_eq!(locks_of(&app, maya_id).await, 1, "the lock is recorded once");
    app.clock.advance(40_000);
    let (checked, refused) = burst(&app, 50, |_| client(), "sign_in", &wrong).await;
    assert_eq!((checked, refused), (0, 50), "locked");
    assert_eq!(locks_of(&app, maya_id).await, 1);

    // Authenticator codes: 100 wrong codes at once on one half-signed-in
    // session, after the window has passed.
    app.clock.advance(16 * 60_000);
    let c = client();
    let r = app
        .call(&c, "sign_in", &[("email", JONAS), ("password", JONAS_PW)])
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let right = app.code(&jonas_key);
    let wrong_code = if right == "000000" { "000001" } else { "000000" };
    let form = [("code", wrong_code)];
    let (checked, refused) = burst(&app, 100, |_| c.clone(), "verify_code", &form).await;
    assert_eq!((checked, refused), (5, 95));
    for round in 6..=10 {
        app.clock.advance(40_000);
        let (checked, refused) = burst(&app, 20, |_| c.clone(), "verify_code", &form).await;
        assert_eq!((checked, refused), (1, 19), "round {round}");
    }
    assert_eq!(app.audit_count("auth.mfa", "failure").await, 10);
    assert_eq!(locks_of(&app, jonas_id).await, 1);
    app.verify_chain().await;
    app.cleanup().await;
}

/// Argon2 (19 MiB, tens of milliseconds) runs only after the cheap checks:
/// a setup attempt once setup is closed, or with a bad link, and an
/// invitation with a bad token cost no hashing; a throttled sign-in is
/// refused before its password is checked. An unknown email is checked
/// against a dummy hash, like a known one (the same cost).
async fn expensive_work_only_after_cheap_checks(b: Backend) {
    let app = TestApp::spawn(&b).await;
    let token = gatehouse::server::access::people::setup::issue_setup_token(&app.state)
        .await
        .unwrap()
        .unwrap();
    let setup = |token: &str| {
        vec![
            ("token", token.to_owned()),
            ("name", "Eve Mallory".to_owned()),
            ("email", "eve@example.com".to_owned()),
            ("password", "a long and unusual passphrase 93".to_owned()),
            ("confirm", "a long and unusual passphrase 93".to_owned()),
        ]
    };
    let call = |form: Vec<(&'static str, String)>| {
        let app = &app;
        async move {
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            app.call(&client(), "complete_setup", &form).await.status()
        }
    };
    let hashes = || app.state.hasher.computed();
    assert_eq!(call(setup("not-the-setup-token")).await, StatusCode::FORBIDDEN);
    assert_eq!(hashes(), 0, "a bad setup link costs no hashing");
    app.first_admin(ADMIN, PW).await;
    let after_setup = hashes();
    assert_eq!(after_setup, 1, "the first administrator's password");
    for _ in 0..3 {
        assert_eq!(call(setup(&token)).await, StatusCode::CONFLICT);
    }
    assert_eq!(hashes(), after_setup, "setup is closed: no hashing");
    let r = app
        .call(
            &client(),
            "accept_invitation",
            &[("token", "no-such-invitation"), ("password", PW), ("confirm", PW)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(hashes(), after_setup, "a bad invitation costs no hashing");

    // Known and unknown emails are both checked; a throttled attempt is not.
    for email in [ADMIN, "nobody@sunridge-solar.example"] {
        let r = app
            .call(
                &client(),
                "sign_in",
                &[("email", email), ("password", "wrong password here")],
            )
            .await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(hashes(), after_setup + 2);
    for _ in 0..3 {
        app.call(
            &client(),
            "sign_in",
            &[("email", ADMIN), ("password", "wrong password here")],
        )
        .await;
    }
    let checked = hashes();
    let r = app
        .call(&client(), "sign_in", &[("email", ADMIN), ("password", PW)])
        .await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(hashes(), checked, "refused before the password is checked");
    app.cleanup().await;
}

/// OWASP's device cookie: failures from browsers that never completed
/// sign-in for an account lock only such browsers (the account and the
/// address); a browser that has keeps an allowance of its own, so guessing
/// an administrator's email cannot lock them out of their own browser, and
/// that browser's failures lock only itself.
async fn a_known_browser_keeps_its_own_allowance(b: Backend) {
    let app = TestApp::spawn(&b).await;
    // The administrator's own browser: it completed sign-in at enrolment.
    let (known, key, _) = app.first_admin(ADMIN, PW).await;
    let maya_id = app.user_id(ADMIN).await;
    assert_eq!(app.call(&known, "sign_out", &[]).await.status(), StatusCode::OK);
    let wrong = [("email", ADMIN), ("password", "not the password at all")];
    let right = [("email", ADMIN), ("password", PW)];

    // Someone who knows the email locks it for unknown browsers.
    for _ in 0..10 {
        app.clock.advance(40_000);
        assert_eq!(
            app.call(&client(), "sign_in", &wrong).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    app.clock.advance(40_000);
    assert_eq!(
        app.call(&client(), "sign_in", &right).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    // The administrator's own browser still signs in, code and all.
    let r = app.call(&known, "sign_in", &right).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let r = app.call(&known, "verify_code", &[("code", &app.code(&key))]).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    assert_eq!(app.me(&known).await["email"], ADMIN);
    // A cookie copied from nowhere (a forged entry) is an unknown browser.
    let forged = reqwest::Client::builder()
        .default_headers(
            [(
                reqwest::header::COOKIE,
                format!("gatehouse-device={maya_id}.abcdefabcdefabcdef.0123456789abcdef")
                    .parse()
                    .unwrap(),
            )]
            .into_iter()
            .collect(),
        )
        .build()
        .unwrap();
    assert_eq!(
        app.call(&forged, "sign_in", &right).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );

    // The other side: once the window has passed, the known browser's own
    // failures lock that browser only.
    assert_eq!(app.call(&known, "sign_out", &[]).await.status(), StatusCode::OK);
    app.clock.advance(16 * 60_000);
    for _ in 0..10 {
        app.clock.advance(40_000);
        assert_eq!(
            app.call(&known, "sign_in", &wrong).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    app.clock.advance(40_000);
    assert_eq!(
        app.call(&known, "sign_in", &right).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    let r = app.call(&client(), "sign_in", &right).await;
    assert_eq!(r.status(), StatusCode::OK, "another browser is not locked by them");
    assert_eq!(
        locks_of(&app, maya_id).await,
        2,
        "the account's lock and the browser's, once each"
    );
    app.verify_chain().await;
    app.cleanup().await;
}
