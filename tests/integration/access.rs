//! Roles, grants, onboarding, suspension and offboarding over HTTP, on
//! SQLite and MySQL.

use crate::helpers::*;
use reqwest::StatusCode;

const ADMIN: &str = "maya.okafor@sunridge-solar.example";
const PW: &str = "violet harbour lantern 42";
const JONAS: &str = "jonas.becker@sunridge-solar.example";
const PRIYA: &str = "priya.raman@sunridge-solar.example";

on_both!(
    onboarding_by_single_use_invitation,
    grants_follow_the_rules_and_record_before_and_after,
    time_boxed_grant_stops_at_its_expiry_and_the_job_records_it,
    granting_admin_needs_a_second_admin,
    administrator_power_follows_permissions_not_role_names,
    last_admin_cannot_be_removed,
    suspension_blocks_sign_in_and_keeps_grants,
    offboarding_ends_everything_in_one_step,
    scheduled_offboarding_is_carried_out_by_the_job,
    nobody_cancels_their_own_offboarding,
    offboarding_revokes_the_api_tokens_the_person_created,
    custom_roles_are_managed_and_protected,
    directory_filters_and_overview_counts,
);

async fn grants_of(app: &TestApp, email: &str) -> Vec<(String, Option<String>)> {
    use sqlx::Row;
    let uid = app.user_id(email).await;
    let rows = sqlx::query("SELECT role, revoke_reason FROM grants WHERE user_id = ? ORDER BY id")
        .bind(uid)
        .fetch_all(app.state.db.pool())
        .await
        .unwrap();
    rows.iter()
        .map(|r| (r.try_get("role").unwrap(), r.try_get("revoke_reason").unwrap()))
        .collect()
}

async fn onboarding_by_single_use_invitation(b: Backend) {
    let app = TestApp::spawn(&b).await;
    let (admin, admin_key) = admin(&app).await;
    let inv = app
        .onboard(&admin, "Jonas Becker", JONAS, "support", &["support"])
        .await;
    let link = inv["link"].as_str().unwrap().to_owned();
    assert!(link.contains("/invite?token="), "{link}");
    let token = link.split("token=").nth(1).unwrap().to_owned();
    // Only a hash of the token is stored.
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM invitations WHERE token_hash = '{token}'"
        ))
        .await,
        0
    );
    let detail: serde_json::Value = app
        .call(&admin, "employee", &[("id", &inv["user_id"].to_string())])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(detail["employee"]["status"], "invited");
    // Invited: no sign-in, no permissions yet.
    assert!(detail["permissions"].as_array().unwrap().is_empty());

    let c = client();
    let info: serde_json::Value = app
        .call(&c, "invitation_status", &[("token", &token)])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(info["email"], JONAS);
    // A weak password is refused and changes nothing.
    let r = app
        .call(
            &c,
            "accept_invitation",
            &[("token", &token), ("password", "short pass"), ("confirm", "short pass")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM users WHERE status = 'invited'").await,
        1
    );

    let (jonas, _) = app.join(&link, "quiet meadow lantern 7").await;
    assert_eq!(app.me(&jonas).await["roles"][0], "Customer support");
    assert_eq!(
        app.perms(&jonas).await,
        ["customers:read", "orders:write", "accounts:write"]
    );
    // Single use.
    let r = app
        .call(
            &client(),
            "accept_invitation",
            &[("token", &token), ("password", PW), ("confirm", PW)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.audit_count("invitation.accept", "denied").await, 1);

    // Valid for 72 hours.
    let inv = app
        .onboard(&admin, "Priya Raman", PRIYA, "engineering", &["engineer"])
        .await;
    let token = inv["link"].as_str().unwrap().split("token=").nth(1).unwrap().to_owned();
    app.clock.advance(72 * 3_600_000);
    let info: serde_json::Value = app
        .call(&c, "invitation_status", &[("token", &token)])
        .await
        .json()
        .await
        .unwrap();
    assert!(info.is_null());
    let r = app
        .call(
            &c,
            "accept_invitation",
            &[("token", &token), ("password", PW), ("confirm", PW)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // A new link replaces it.
    let admin = app.sign_in(ADMIN, PW, &admin_key).await;
    let r = app
        .call(
            &admin,
            "reissue_invitation",
            &[("user_id", &inv["user_id"].to_string())],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let inv2: serde_json::Value = r.json().await.unwrap();
    app.join(inv2["link"].as_str().unwrap(), "quiet meadow lantern 7").await;

    assert_eq!(app.audit_count("employee.onboarded", "success").await, 2);
    assert_eq!(app.audit_count("invitation.accepted", "success").await, 2);
    let d = last_details(&app, "invitation.accepted").await;
    assert_eq!(d["before"]["status"], "invited");
    assert_eq!(d["after"]["status"], "active");
    app.verify_chain().await;
    app.cleanup().await;
}

/// The first administrator's client and TOTP key.
async fn admin(app: &TestApp) -> (reqwest::Client, String) {
    let (c, key, _) = app.first_admin(ADMIN, PW).await;
    (c, key)
}

async fn grants_follow_the_rules_and_record_before_and_after(b: Backend) {
    let app = TestApp::spawn(&b).await;
    let (admin, _) = admin(&app).await;
    let (jonas, _, jonas_id) = app
        .employee(&admin, "Jonas Becker", JONAS, "support", &["support"])
        .await;
    let admin_id = app.user_id(ADMIN).await;
    let uid = jonas_id.to_string();
    let grant = |user: String, role: &'static str, exp: &'static str, reason: &'static str| {
        let admin = admin.clone();
        let app = &app;
        async move {
            app.call(
                &admin,
                "grant_role",
                &[
                    ("user_id", &user),
                    ("role", role),
                    ("reason", reason),
                    ("expires_in", exp),
                ],
            )
            .await
        }
    };
    let before = app.count("SELECT COUNT(*) FROM grants").await;
    // A time-boxed role needs an expiry within its maximum.
    let r = grant(uid.clone(), "support-pii", "", "case 4711").await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(error_message(&r.text().await.unwrap()).contains("at most 8 hours"));
    assert_eq!(
        grant(uid.clone(), "support-pii", "9h", "case 4711").await.status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    // A reason is required.
    assert_eq!(
        grant(uid.clone(), "support-pii", "2h", " ").await.status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    // Unknown role.
    assert_eq!(
        grant(uid.clone(), "root", "", "x").await.status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    // Nobody grants to themselves.
    let r = grant(admin_id.to_string(), "support", "", "me").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(error_message(&r.text().await.unwrap()).contains("own access"));
    // Separation of duties: an auditor cannot become an administrator.
    let (_, _, dan_id) = app
        .employee(
            &admin,
            "Daniel Brandt",
            "daniel.brandt@sunridge-solar.example",
            "audit",
            &["auditor"],
        )
        .await;
    let r = grant(dan_id.to_string(), "admin", "", "cover").await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert!(error_message(&r.text().await.unwrap()).contains("Separation of duties"));
    assert_eq!(
        app.count("SELECT COUNT(*) FROM grants").await,
        before + 1,
        "refusals write no grant (only Daniel's auditor)"
    );
    assert!(
        app.audit_count("grant.create", "denied").await >= 2,
        "refusals are recorded"
    );

    // A valid grant takes effect at once and records before and after.
    let r = grant(uid.clone(), "support-pii", "2h", "case 4711").await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    assert!(app.perms(&jonas).await.contains(&"customers:read_pii".to_string()));
    let d = last_details(&app, "grant.created").await;
    assert_eq!(d["role"], "support-pii");
    assert_eq!(d["before"]["roles"], serde_json::json!(["support"]));
    assert_eq!(d["after"]["roles"], serde_json::json!(["support", "support-pii"]));
    // The employee page says where each permission comes from.
    let detail: serde_json::Value = app
        .call(&admin, "employee", &[("id", &uid)])
        .await
        .json()
        .await
        .unwrap();
    let perms = detail["permissions"].as_array().unwrap();
    let read = perms.iter().find(|p| p["id"] == "customers:read").unwrap();
    assert_eq!(read["sources"].as_array().unwrap().len(), 2, "{read}");
    assert!(read["sources"][0]
        .as_str()
        .unwrap()
        .starts_with("Customer support (grant "));

    // Held once.
    assert_eq!(
        grant(uid.clone(), "support", "", "again").await.status(),
        StatusCode::CONFLICT
    );

    // Revoking needs a reason, keeps history, and takes effect at once.
    let gid = detail["grants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["role"] == "support")
        .unwrap()["id"]
        .to_string();
    assert_eq!(
        app.call(&admin, "revoke_grant", &[("grant_id", &gid), ("reason", "")])
            .await
            .status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let r = app
        .call(
            &admin,
            "revoke_grant",
            &[("grant_id", &gid), ("reason", "moved to sales")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(!app.perms(&jonas).await.contains(&"orders:write".to_string()));
    assert_eq!(
        grants_of(&app, JONAS).await[0],
        ("support".into(), Some("moved to sales".into()))
    );
    let d = last_details(&app, "grant.revoked").await;
    assert_eq!(d["before"]["roles"], serde_json::json!(["support", "support-pii"]));
    assert_eq!(d["after"]["roles"], serde_json::json!(["support-pii"]));
    // A revoked grant cannot be revoked again.
    assert_eq!(
        app.call(&admin, "revoke_grant", &[("grant_id", &gid), ("reason", "again")])
            .await
            .status(),
        StatusCode::CONFLICT
    );
    // Nobody revokes their own grant.
    let own = app
        .count(&format!("SELECT id FROM grants WHERE user_id = {admin_id}"))
        .await
        .to_string();
    assert_eq!(
        app.call(&admin, "revoke_grant", &[("grant_id", &own), ("reason", "x")])
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    app.verify_chain().await;
    app.cleanup().await;
}

async fn time_boxed_grant_stops_at_its_expiry_and_the_job_records_it(b: Backend) {
    let app = TestApp::spawn(&b).await;
    let (admin, _) = admin(&app).await;
    let (jonas, jonas_key, jonas_id) = app
        .employee(&admin, "Jonas Becker", JONAS, "support", &["support"])
        .await;
    let r = app
        .call(
            &admin,
            "grant_role",
            &[
                ("user_id", &jonas_id.to_string()),
                ("role", "breakglass"),
                ("reason", "incident 9"),
                ("expires_in", "30m"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(app.perms(&jonas).await.contains(&"prod_db:write".to_string()));
    // At the expiry instant it stops counting, before any job runs.
    app.clock.advance(30 * 60_000 - 1);
    let jonas = app.sign_in(JONAS, "quiet meadow lantern 7", &jonas_key).await;
    let expires: i64 = app
        .count("SELECT expires_at FROM grants WHERE role = 'breakglass'")
        .await;
    app.clock.set(expires - 1);
    assert!(app.perms(&jonas).await.contains(&"prod_db:write".to_string()));
    app.clock.set(expires);
    assert!(!app.perms(&jonas).await.contains(&"prod_db:write".to_string()));
    assert_eq!(app.audit_count("grant.expired", "success").await, 0);
    // The background job records the expiry within seconds.
    gatehouse::server::jobs::spawn_access_jobs(app.state.clone(), std::time::Duration::from_millis(100));
    let mut waited = 0;
    while app.audit_count("grant.expired", "success").await == 0 && waited < 100 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        waited += 1;
    }
    assert_eq!(app.audit_count("grant.expired", "success").await, 1);
    let d = last_details(&app, "grant.expired").await;
    assert_eq!(d["role"], "breakglass");
    assert_eq!(d["expires_at"], expires);
    // Recorded once, however often the job runs.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(app.audit_count("grant.expired", "success").await, 1);
    app.verify_chain().await;
    app.cleanup().await;
}

async fn granting_admin_needs_a_second_admin(b: Backend) {
    let app = TestApp::spawn(&b).await;
    let (maya, _) = admin(&app).await;
    // With one administrator, granting admin takes effect directly.
    let (lukas, _, _) = app
        .employee(
            &maya,
            "Lukas Meyer",
            "lukas.meyer@sunridge-solar.example",
            "administration",
            &["admin"],
        )
        .await;
    assert!(app.perms(&lukas).await.contains(&"access:grant".to_string()));
    // With two, a third needs the other one's approval.
    let (sofia, _, sofia_id) = app
        .employee(
            &maya,
            "Sofia Alvarez",
            "sofia.alvarez@sunridge-solar.example",
            "engineering",
            &["engineer"],
        )
        .await;
    let r = app
        .call(
            &maya,
            "grant_role",
            &[
                ("user_id", &sofia_id.to_string()),
                ("role", "admin"),
                ("reason", "second on-call admin"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.text().await.unwrap(), "true", "pending");
    assert!(
        !app.perms(&sofia).await.contains(&"access:grant".to_string()),
        "pending grants do not count"
    );
    let gid = app
        .count("SELECT id FROM grants WHERE role = 'admin' AND pending = 1")
        .await
        .to_string();
    let pending: serde_json::Value = app
        .call(&maya, "grant_list", &[("filter", "pending")])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(pending.as_array().unwrap().len(), 1);
    // The requester cannot approve it; the grantee neither.
    let r = app.call(&maya, "approve_grant", &[("grant_id", &gid)]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        app.call(&sofia, "approve_grant", &[("grant_id", &gid)]).await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(app.audit_count("grant.approve", "denied").await, 1);
    // Holding access:grant through another role is administrator power too:
    // it waits for a second administrator, and until then approves nothing.
    let r = app
        .call(
            &maya,
            "save_role",
            &[
                ("key", "people-ops"),
                ("name", "People operations"),
                ("permissions[]", "access:grant"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let (ops, _, _) = app
        .employee(
            &maya,
            "Grace Kim",
            "grace.kim@sunridge-solar.example",
            "administration",
            &["people-ops"],
        )
        .await;
    assert!(!app.perms(&ops).await.contains(&"access:grant".to_string()), "pending");
    let r = app.call(&ops, "approve_grant", &[("grant_id", &gid)]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = app.call(&lukas, "approve_grant", &[("grant_id", &gid)]).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    assert!(app.perms(&sofia).await.contains(&"access:grant".to_string()));
    assert_eq!(app.audit_count("grant.approved", "success").await, 1);
    assert_eq!(
        app.call(&lukas, "approve_grant", &[("grant_id", &gid)]).await.status(),
        StatusCode::CONFLICT
    );
    app.verify_chain().await;
    app.cleanup().await;
}

async fn last_admin_cannot_be_removed(b: Backend) {
    const GRACE: &str = "grace.kim@sunridge-solar.example";
    let app = TestApp::spawn(&b).await;
    let (maya, _) = admin(&app).await;
    let maya_id = app.user_id(ADMIN).await;
    // A people-operations role holds administrator power under another name.
    let r = app
        .call(
            &maya,
            "save_role",
            &[
                ("key", "people-ops"),
                ("name", "People operations"),
                ("permissions[]", "employees:manage"),
                ("permissions[]", "access:grant"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let (ops, _, grace_id) = app
        .employee(&maya, "Grace Kim", GRACE, "administration", &["people-ops"])
        .await;
    // Grace schedules Maya's offboarding while both hold the power.
    let r = app
        .call(
            &ops,
            "offboard_employee",
            &[
                ("user_id", &maya_id.to_string()),
                ("confirm_email", ADMIN),
                ("at", "2026-01-01T12:00"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    // Maya then takes Grace's power away: Maya is the last administrator.
    let ops_grant = app
        .count(&format!("SELECT id FROM grants WHERE user_id = {grace_id}"))
        .await;
    let r = app
        .call(
            &maya,
            "revoke_grant",
            &[("grant_id", &ops_grant.to_string()), ("reason", "reorganisation")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let dash: serde_json::Value = app.call(&maya, "dashboard", &[]).await.json().await.unwrap();
    assert_eq!(dash["admins"], 1);
    // Nor can an administrator suspend or offboard themselves.
    let r = app
        .call(
            &maya,
            "suspend_employee",
            &[("user_id", &maya_id.to_string()), ("reason", "test")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // The scheduled offboarding is not carried out: the last one stays.
    app.clock.advance(24 * 3_600_000);
    gatehouse::server::jobs::run_access_jobs(&app.state).await;
    assert_eq!(app.count("SELECT COUNT(*) FROM users WHERE status = 'active'").await, 2);
    assert_eq!(app.audit_count("employee.offboard", "denied").await, 1);
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM grants WHERE user_id = {maya_id} AND revoked_at IS NULL"
        ))
        .await,
        1
    );
    app.cleanup().await;
}

async fn suspension_blocks_sign_in_and_keeps_grants(b: Backend) {
    let app = TestApp::spawn(&b).await;
    let (maya, _) = admin(&app).await;
    let (jonas, key, jonas_id) = app
        .employee(&maya, "Jonas Becker", JONAS, "support", &["support"])
        .await;
    let uid = jonas_id.to_string();
    assert_eq!(
        app.call(&maya, "suspend_employee", &[("user_id", &uid), ("reason", "")])
            .await
            .status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let r = app
        .call(
            &maya,
            "suspend_employee",
            &[("user_id", &uid), ("reason", "laptop stolen")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    // The open session is refused on its next request.
    assert!(app.me(&jonas).await.is_null());
    assert_eq!(app.get(&jonas, "/").await.headers().get("location").unwrap(), "/signin");
    assert_eq!(
        app.count(&format!("SELECT COUNT(*) FROM sessions WHERE user_id = {jonas_id}"))
            .await,
        0
    );
    // Sign-in is refused with the usual message.
    let c = client();
    let r = app
        .call(
            &c,
            "sign_in",
            &[("email", JONAS), ("password", "quiet meadow lantern 7")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // Grants stay; nothing new can be granted.
    assert_eq!(grants_of(&app, JONAS).await, [("support".to_string(), None)]);
    let r = app
        .call(
            &maya,
            "grant_role",
            &[("user_id", &uid), ("role", "sales"), ("reason", "x")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let list: serde_json::Value = app
        .call(&maya, "list_employees", &[("status", "suspended")])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list[0]["email"], JONAS);
    // Reactivated, the same password and authenticator work again.
    assert_eq!(
        app.call(&maya, "reactivate_employee", &[("user_id", &uid)])
            .await
            .status(),
        StatusCode::OK
    );
    let jonas = app.sign_in(JONAS, "quiet meadow lantern 7", &key).await;
    assert!(app.perms(&jonas).await.contains(&"orders:write".to_string()));
    let d = last_details(&app, "employee.suspended").await;
    assert_eq!(
        (d["before"]["status"].as_str(), d["after"]["status"].as_str()),
        (Some("active"), Some("suspended"))
    );

    // After repeated wrong passwords, an administrator unlocks sign-in from the employee page.
    for _ in 0..10 {
        app.call(
            &client(),
            "sign_in",
            &[("email", JONAS), ("password", "wrong wrong wrong")],
        )
        .await;
    }
    let r = app
        .call(
            &client(),
            "sign_in",
            &[("email", JONAS), ("password", "quiet meadow lantern 7")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    // (The administrator's session predates the failures, which also lock this test's address.)
    let r = app.call(&maya, "unlock_employee", &[("user_id", &uid)]).await;
    assert_eq!(r.text().await.unwrap(), "true");
    assert_eq!(app.audit_count("auth.unlock", "success").await, 1);
    assert_eq!(d["sessions_ended"], 1);
    app.verify_chain().await;
    app.cleanup().await;
}

async fn offboarding_ends_everything_in_one_step(b: Backend) {
    let app = TestApp::spawn(&b).await;
    let (maya, maya_key) = admin(&app).await;
    let (jonas, key, jonas_id) = app
        .employee(&maya, "Jonas Becker", JONAS, "support", &["support"])
        .await;
    let uid = jonas_id.to_string();
    app.call(
        &maya,
        "grant_role",
        &[
            ("user_id", &uid),
            ("role", "support-pii"),
            ("reason", "case 1"),
            ("expires_in", "4h"),
        ],
    )
    .await;
    let phone = app.sign_in(JONAS, "quiet meadow lantern 7", &key).await;
    assert_eq!(
        app.count(&format!("SELECT COUNT(*) FROM sessions WHERE user_id = {jonas_id}"))
            .await,
        2
    );
    // The administrator's last code is older than five minutes.
    app.clock.advance(6 * 60_000);
    let r = app
        .call(
            &maya,
            "offboard_employee",
            &[("user_id", &uid), ("confirm_email", JONAS)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(error_message(&r.text().await.unwrap()).contains("authenticator"));
    let code = app.code(&maya_key);
    let r = app
        .call(
            &maya,
            "offboard_employee",
            &[
                ("user_id", &uid),
                ("confirm_email", "jonas@example.com"),
                ("code", &code),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM users WHERE status = 'offboarded'")
            .await,
        0,
        "nothing written"
    );
    let r = app
        .call(
            &maya,
            "offboard_employee",
            &[("user_id", &uid), ("confirm_email", JONAS), ("code", &code)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());

    // Every grant revoked with reason "offboarding", every session ended.
    assert!(grants_of(&app, JONAS)
        .await
        .iter()
        .all(|(_, why)| why.as_deref() == Some("offboarding")));
    assert_eq!(
        app.count(&format!("SELECT COUNT(*) FROM sessions WHERE user_id = {jonas_id}"))
            .await,
        0
    );
    // Both browsers are refused on their very next request.
    assert!(app.me(&jonas).await.is_null());
    assert_eq!(
        app.get(&phone, "/activity").await.headers().get("location").unwrap(),
        "/signin"
    );
    assert_eq!(
        app.call(
            &client(),
            "sign_in",
            &[("email", JONAS), ("password", "quiet meadow lantern 7")]
        )
        .await
        .status(),
        StatusCode::UNAUTHORIZED
    );
    let d = last_details(&app, "employee.offboarded").await;
    assert_eq!(d["sessions_ended"], 2);
    assert_eq!(d["grants_revoked"].as_array().unwrap().len(), 2);
    assert_eq!(d["after"]["status"], "offboarded");
    assert_eq!(app.audit_count("grant.revoked", "success").await, 2);
    // The step-up is recorded; within five minutes no new code is needed.
    assert_eq!(app.audit_count("mfa.step_up", "success").await, 1);
    // Offboarding happens once.
    let r = app
        .call(
            &maya,
            "offboard_employee",
            &[("user_id", &uid), ("confirm_email", JONAS)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);

    // An invited employee's pending invitation is cancelled.
    let inv = app
        .onboard(&maya, "Priya Raman", PRIYA, "engineering", &["engineer"])
        .await;
    let r = app
        .call(
            &maya,
            "offboard_employee",
            &[("user_id", &inv["user_id"].to_string()), ("confirm_email", PRIYA)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let token = inv["link"].as_str().unwrap().split("token=").nth(1).unwrap();
    assert!(app
        .call(&client(), "invitation_status", &[("token", token)])
        .await
        .json::<serde_json::Value>()
        .await
        .unwrap()
        .is_null());
    assert_eq!(
        last_details(&app, "employee.offboarded").await["invitations_cancelled"],
        1
    );

    // The checklist, marked by an administrator, shows in the report.
    assert_eq!(
        app.call(&maya, "mark_checklist", &[("user_id", &uid), ("item", "github")])
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        app.call(&maya, "mark_checklist", &[("user_id", &uid), ("item", "github")])
            .await
            .status(),
        StatusCode::CONFLICT
    );
    assert_eq!(
        app.call(&maya, "mark_checklist", &[("user_id", &uid), ("item", "printer")])
            .await
            .status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let report: serde_json::Value = app.call(&maya, "offboarding_report", &[]).await.json().await.unwrap();
    let row = report.as_array().unwrap().iter().find(|r| r["email"] == JONAS).unwrap();
    let github = row["checklist"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["item"] == "github")
        .unwrap();
    assert_eq!(github["done_by"], "Maya Okafor");
    assert!(github["done_at"].as_str().unwrap().ends_with("UTC"));
    let dash: serde_json::Value = app.call(&maya, "dashboard", &[]).await.json().await.unwrap();
    assert_eq!(dash["offboarding"], 2);
    app.verify_chain().await;
    app.cleanup().await;
}

async fn scheduled_offboarding_is_carried_out_by_the_job(b: Backend) {
    let app = TestApp::spawn(&b).await;
    let (maya, _) = admin(&app).await;
    let (jonas, _, jonas_id) = app
        .employee(&maya, "Jonas Becker", JONAS, "support", &["support"])
        .await;
    let uid = jonas_id.to_string();
    // 2026-01-01 12:00 UTC, hours after the test clock's start.
    let r = app
        .call(
            &maya,
            "offboard_employee",
            &[("user_id", &uid), ("confirm_email", JONAS), ("at", "2026-01-01T00:00")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "in the past");
    let r = app
        .call(
            &maya,
            "offboard_employee",
            &[("user_id", &uid), ("confirm_email", JONAS), ("at", "2026-01-01T12:00")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    assert_eq!(
        app.count("SELECT COUNT(*) FROM users WHERE status = 'offboarded'")
            .await,
        0
    );
    assert!(app.me(&jonas).await["email"] == JONAS, "still working until then");
    gatehouse::server::jobs::run_access_jobs(&app.state).await;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM users WHERE status = 'offboarded'")
            .await,
        0
    );
    app.clock.set(1_767_268_800_000); // 2026-01-01T12:00:00Z
    gatehouse::server::jobs::run_access_jobs(&app.state).await;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM users WHERE status = 'offboarded'")
            .await,
        1
    );
    let d = last_details(&app, "employee.offboarded").await;
    assert_eq!(d["grants_revoked"].as_array().unwrap().len(), 1);
    assert_eq!(app.audit_count("employee.offboarding_scheduled", "success").await, 1);
    app.verify_chain().await;
    app.cleanup().await;
}

async fn custom_roles_are_managed_and_protected(b: Backend) {
    let app = TestApp::spawn(&b).await;
    let (maya, maya_key) = admin(&app).await;
    let save = |form: Vec<(&'static str, &'static str)>| {
        let maya = maya.clone();
        let app = &app;
        async move { maya.post(app.url("/api/save_role")).form(&form).send().await.unwrap() }
    };
    let r = save(vec![
        ("key", "billing"),
        ("name", "Billing"),
        ("permissions[]", "accounts:write"),
        ("max_duration", "8h"),
        ("requestable", "on"),
    ])
    .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    // Separation of duties inside one role.
    let r = save(vec![
        ("key", "overseer"),
        ("name", "Overseer"),
        ("permissions[]", "access:grant"),
        ("permissions[]", "audit:read"),
    ])
    .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // Requestable needs a maximum duration; unknown permissions are refused.
    assert_eq!(
        save(vec![
            ("key", "x-1"),
            ("name", "X"),
            ("permissions[]", "leads:read"),
            ("requestable", "on")
        ])
        .await
        .status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        save(vec![("key", "x-1"), ("name", "X"), ("permissions[]", "root:all")])
            .await
            .status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    // Built-in roles cannot be changed or deleted.
    assert_eq!(
        save(vec![
            ("key", "support"),
            ("name", "Support"),
            ("permissions[]", "customers:read_pii")
        ])
        .await
        .status(),
        StatusCode::FORBIDDEN
    );
    let r = app.call(&maya, "delete_role", &[("key", "admin")]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.audit_count("role.delete", "denied").await, 1);

    let (jonas, _, jonas_id) = app
        .employee(&maya, "Jonas Becker", JONAS, "support", &["support"])
        .await;
    let r = app
        .call(
            &maya,
            "grant_role",
            &[
                ("user_id", &jonas_id.to_string()),
                ("role", "billing"),
                ("reason", "month end"),
                ("expires_in", "2h"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    // Editing changes what holders can do, and is recorded with before and after.
    let r = save(vec![
        ("key", "billing"),
        ("name", "Billing"),
        ("permissions[]", "accounts:write"),
        ("permissions[]", "leads:read"),
        ("max_duration", "8h"),
    ])
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(app.perms(&jonas).await.contains(&"leads:read".to_string()));
    let d = last_details(&app, "role.updated").await;
    assert_eq!(d["before"]["permissions"], "accounts:write");
    assert_eq!(d["after"]["permissions"], "accounts:write,leads:read");
    // A role in use cannot be deleted.
    let r = app.call(&maya, "delete_role", &[("key", "billing")]).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let cat: serde_json::Value = app.call(&maya, "catalogue", &[]).await.json().await.unwrap();
    let billing = cat["roles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == "billing")
        .unwrap()
        .clone();
    assert_eq!(billing["holders"], 1);
    assert_eq!(billing["max_duration"], "8 hours");
    assert_eq!(cat["permissions"].as_array().unwrap().len(), 14);
    // Once nobody holds it (the grant expired), it can; the key stays taken.
    app.clock.advance(2 * 3_600_000);
    let maya = app.sign_in(ADMIN, PW, &maya_key).await;
    assert_eq!(
        app.call(&maya, "delete_role", &[("key", "billing")]).await.status(),
        StatusCode::OK
    );
    let r = maya
        .post(app.url("/api/save_role"))
        .form(&[
            ("key", "billing"),
            ("name", "Billing 2"),
            ("permissions[]", "accounts:write"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert_eq!(app.audit_count("role.deleted", "success").await, 1);
    app.verify_chain().await;
    app.cleanup().await;
}

async fn directory_filters_and_overview_counts(b: Backend) {
    let app = TestApp::spawn(&b).await;
    let people = gatehouse::server::seed::seed_demo(&app.state).await.unwrap();
    let (email, _, pw) = people.iter().find(|p| p.1 == "admin").unwrap();
    let (maya, _) = app.sign_in_enrolling(email, pw).await;
    let list = |form: Vec<(&'static str, &'static str)>| {
        let maya = maya.clone();
        let app = &app;
        async move {
            let r = maya
                .post(app.url("/api/list_employees"))
                .form(&form)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            r.json::<Vec<serde_json::Value>>().await.unwrap()
        }
    };
    assert_eq!(list(vec![]).await.len(), 18);
    assert_eq!(list(vec![("department", "engineering")]).await.len(), 12);
    assert_eq!(list(vec![("role", "support")]).await.len(), 3);
    assert_eq!(list(vec![("role", "admin")]).await.len(), 1);
    assert_eq!(list(vec![("mfa", "missing")]).await.len(), 17, "only Maya has enrolled");
    assert_eq!(list(vec![("mfa", "enrolled")]).await[0]["email"], email.as_str());
    let found = list(vec![("q", "NOWAK")]).await;
    assert_eq!((found.len(), found[0]["roles"][0].as_str()), (1, Some("Engineer")));
    assert_eq!(
        list(vec![("q", "sunridge"), ("department", "sales"), ("status", "active")])
            .await
            .len(),
        1
    );
    assert!(list(vec![("status", "offboarded")]).await.is_empty());
    let r = app.call(&maya, "list_employees", &[("status", "deleted")]).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // The overview counts what the lists behind it show.
    let aisha = app.user_id("aisha.bello@sunridge-solar.example").await.to_string();
    let grant = |user: String, role: &'static str, exp: &'static str| {
        let maya = maya.clone();
        let app = &app;
        async move {
            let r = app
                .call(
                    &maya,
                    "grant_role",
                    &[
                        ("user_id", &user),
                        ("role", role),
                        ("reason", "test"),
                        ("expires_in", exp),
                    ],
                )
                .await;
            assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
        }
    };
    grant(aisha.clone(), "support-pii", "8h").await;
    let r = maya
        .post(app.url("/api/save_role"))
        .form(&[
            ("key", "db-reader"),
            ("name", "Production reader"),
            ("permissions[]", "prod_db:read"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    grant(
        app.user_id("priya.raman@sunridge-solar.example").await.to_string(),
        "db-reader",
        "",
    )
    .await;
    let r = app
        .call(&maya, "suspend_employee", &[("user_id", &aisha), ("reason", "leave")])
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let d: serde_json::Value = app.call(&maya, "dashboard", &[]).await.json().await.unwrap();
    assert_eq!(d["without_mfa"], 16, "Aisha is suspended");
    assert_eq!(d["admins"], 1);
    assert_eq!(d["suspended"], 1);
    assert_eq!(d["critical_standing"], 1, "the standing production reader");
    assert_eq!(d["expiring_soon"], 1, "Aisha's 8-hour grant");
    assert_eq!(d["offboarding"], 0);
    let critical: serde_json::Value = app
        .call(&maya, "grant_list", &[("filter", "critical")])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(critical[0]["role"], "db-reader");
    assert_eq!(critical[0]["user_name"], "Priya Raman");
    let expiring: serde_json::Value = app
        .call(&maya, "grant_list", &[("filter", "expiring")])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(expiring[0]["role"], "support-pii");
    assert_eq!(
        app.call(&maya, "grant_list", &[("filter", "bogus")]).await.status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    app.cleanup().await;
}

async fn nobody_cancels_their_own_offboarding(b: Backend) {
    let app = TestApp::spawn(&b).await;
    let (maya, _) = admin(&app).await;
    let maya_id = app.user_id(ADMIN).await;
    // A second administrator (granted directly while there is one).
    let (lukas, _, lukas_id) = app
        .employee(
            &maya,
            "Lukas Meyer",
            "lukas.meyer@sunridge-solar.example",
            "administration",
            &["admin"],
        )
        .await;
    let uid = lukas_id.to_string();
    let r = app
        .call(
            &maya,
            "offboard_employee",
            &[
                ("user_id", &uid),
                ("confirm_email", "lukas.meyer@sunridge-solar.example"),
                ("at", "2026-01-01T12:00"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    // Lukas still holds employees:manage until then, but cannot undo his own.
    let r = app.call(&lukas, "cancel_offboarding", &[("user_id", &uid)]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(error_message(&r.text().await.unwrap()).contains("own"));
    assert_eq!(
        app.count("SELECT COUNT(*) FROM users WHERE offboard_at IS NOT NULL")
            .await,
        1
    );
    assert_eq!(app.audit_count("employee.offboarding_cancelled", "denied").await, 1);
    assert_eq!(app.audit_count("employee.offboarding_cancelled", "success").await, 0);
    let activity: serde_json::Value = app.call(&lukas, "my_activity", &[]).await.json().await.unwrap();
    assert_eq!(activity[0]["what"], "Refused: cancelling your own offboarding");
    // He may still cancel someone else's; Maya may cancel his.
    let r = app.call(&maya, "cancel_offboarding", &[("user_id", &uid)]).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM users WHERE offboard_at IS NOT NULL")
            .await,
        0
    );
    let r = app
        .call(&lukas, "cancel_offboarding", &[("user_id", &maya_id.to_string())])
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT, "nothing scheduled for Maya");
    app.verify_chain().await;
    app.cleanup().await;
}

/// Tokens do not outlive their creators unseen: offboarding revokes the API
/// tokens the person created (GATEHOUSE_OFFBOARD_REVOKE_TOKENS, on by
/// default) and lists them on the checklist; switched off, they are listed
/// as still usable.
async fn offboarding_revokes_the_api_tokens_the_person_created(b: Backend) {
    const LUKAS: &str = "lukas.meyer@sunridge-solar.example";
    for revoke in [true, false] {
        let extra: &[(&str, &str)] = if revoke {
            &[]
        } else {
            &[("GATEHOUSE_OFFBOARD_REVOKE_TOKENS", "false")]
        };
        let app = TestApp::spawn_with(&b, extra).await;
        let (maya, _) = admin(&app).await;
        let (lukas, _, lukas_id) = app
            .employee(&maya, "Lukas Meyer", LUKAS, "administration", &["admin"])
            .await;
        let account = service_account(&app, &lukas, "customer-api", &["access:check"]).await;
        let his = api_token(&app, &lukas, account, "").await;
        let hers = api_token(&app, &maya, account, "").await;
        let check = |token: String| {
            let url = app.url("/api/v1/access-checks");
            async move {
                let body = serde_json::json!({ "employee": ADMIN, "permission": "customers:read",
                    "resource": { "type": "customer", "id": "C-1" } });
                client()
                    .post(url)
                    .bearer_auth(token)
                    .json(&body)
                    .send()
                    .await
                    .unwrap()
                    .status()
            }
        };
        assert_eq!(check(his.clone()).await, StatusCode::OK);
        // Each token says who created it.
        let accounts: serde_json::Value = app.call(&maya, "service_accounts", &[]).await.json().await.unwrap();
        let creators: Vec<&str> = accounts[0]["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["created_by"].as_str().unwrap())
            .collect();
        assert!(
            creators.contains(&"Lukas Meyer") && creators.contains(&"Maya Okafor"),
            "{creators:?}"
        );

        let uid = lukas_id.to_string();
        let r = app
            .call(
                &maya,
                "offboard_employee",
                &[("user_id", &uid), ("confirm_email", LUKAS)],
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
        let expected = if revoke {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::OK
        };
        assert_eq!(check(his).await, expected, "his token, revoke={revoke}");
        assert_eq!(check(hers).await, StatusCode::OK, "hers stays");
        let report: serde_json::Value = app.call(&maya, "offboarding_report", &[]).await.json().await.unwrap();
        let row = report.as_array().unwrap().iter().find(|r| r["email"] == LUKAS).unwrap();
        let tokens = row["tokens"].as_array().expect("the tokens he created");
        assert_eq!(tokens.len(), 1, "{tokens:?}");
        assert_eq!(tokens[0]["account"], "customer-api");
        assert_eq!(tokens[0]["usable"], !revoke);
        let d = last_details(&app, "employee.offboarded").await;
        assert_eq!(
            d["tokens_revoked"].as_array().map(Vec::len),
            Some(usize::from(revoke)),
            "{d}"
        );
        assert_eq!(app.audit_count("api_token.revoked", "success").await, i64::from(revoke));
        app.verify_chain().await;
        app.cleanup().await;
    }
}

/// Administrator power is any role carrying `employees:manage` or
/// `access:grant`, whatever its name: it counts among the administrators,
/// may approve, and is granted with four eyes once two administrators
/// exist; so are `audit:*` permissions (no puppet auditors).
async fn administrator_power_follows_permissions_not_role_names(b: Backend) {
    const GRACE: &str = "grace.kim@sunridge-solar.example";
    let app = TestApp::spawn(&b).await;
    let (maya, _) = admin(&app).await;
    let maya_id = app.user_id(ADMIN).await;
    let form = [
        ("key", "people-ops"),
        ("name", "People operations"),
        ("permissions[]", "employees:manage"),
        ("permissions[]", "access:grant"),
    ];
    assert_eq!(app.call(&maya, "save_role", &form).await.status(), StatusCode::OK);
    // One administrator: granted at once. Grace now counts as one.
    let (grace, _, _) = app
        .employee(&maya, "Grace Kim", GRACE, "administration", &["people-ops"])
        .await;
    let dash: serde_json::Value = app.call(&maya, "dashboard", &[]).await.json().await.unwrap();
    assert_eq!(dash["admins"], 2, "people-ops holds administrator power");
    // So the next administrator power waits for a second one, even under
    // another name, and Grace may approve it.
    let (_, _, lukas_id) = app
        .employee(
            &maya,
            "Lukas Meyer",
            "lukas.meyer@sunridge-solar.example",
            "engineering",
            &["engineer"],
        )
        .await;
    let r = app
        .call(
            &maya,
            "grant_role",
            &[
                ("user_id", &lukas_id.to_string()),
                ("role", "people-ops"),
                ("reason", "cover"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.text().await.unwrap(), "true", "pending a second administrator");
    let gid = app
        .count(&format!(
            "SELECT id FROM grants WHERE user_id = {lukas_id} AND role = 'people-ops'"
        ))
        .await;
    let r = app
        .call(&grace, "approve_grant", &[("grant_id", &gid.to_string())])
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    // An auditor is no puppet of one administrator either.
    let (_, _, ada_id) = app
        .employee(
            &maya,
            "Ada Byrne",
            "ada.byrne@sunridge-solar.example",
            "sales",
            &["sales"],
        )
        .await;
    let r = app
        .call(
            &maya,
            "grant_role",
            &[
                ("user_id", &ada_id.to_string()),
                ("role", "auditor"),
                ("reason", "year-end audit"),
            ],
        )
        .await;
    assert_eq!(
        r.text().await.unwrap(),
        "true",
        "auditor waits for a second administrator"
    );
    // With three holding the power, Maya is not the last: Grace may demote her.
    let admin_grant = app
        .count(&format!(
            "SELECT id FROM grants WHERE user_id = {maya_id} AND role = 'admin'"
        ))
        .await;
    let r = app
        .call(
            &grace,
            "revoke_grant",
            &[("grant_id", &admin_grant.to_string()), ("reason", "role change")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let dash: serde_json::Value = app.call(&grace, "dashboard", &[]).await.json().await.unwrap();
    assert_eq!(dash["admins"], 2);
    app.verify_chain().await;
    app.cleanup().await;
}
