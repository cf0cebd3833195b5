//! SCIM 2.0 provisioning from the identity provider: create, find by
//! filter, update, deactivate (= offboard at once), delete, and the
//! standard error format. SQLite and MySQL.

use crate::helpers::*;
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

const ADMIN: &str = "maya.okafor@sunridge-solar.example";
const PW: &str = "violet harbour lantern 42";
const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

on_both!(
    scim_creates_finds_and_lists_employees,
    scim_deactivation_offboards_and_ends_sessions_at_once,
    scim_updates_profiles_with_before_and_after,
    scim_refuses_bad_requests_in_its_error_format_and_writes_nothing,
    no_invitation_link_for_employees_the_provider_manages,
);

/// The identity provider's side: a token with the scim scope.
struct Idp {
    token: String,
}

impl Idp {
    async fn new(app: &TestApp, admin: &Client) -> Self {
        let id = service_account(app, admin, "okta-scim", &["scim"]).await;
        Self {
            token: api_token(app, admin, id, "").await,
        }
    }

    async fn send(
        &self,
        app: &TestApp,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let mut req = client().request(method, app.url(path)).bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.header("content-type", "application/scim+json").body(b.to_string());
        }
        let r = req.send().await.unwrap();
        let status = r.status();
        if status != StatusCode::NO_CONTENT {
            assert_eq!(
                r.headers().get("content-type").unwrap(),
                "application/scim+json",
                "{status}"
            );
        }
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, app: &TestApp, path: &str) -> (StatusCode, Value) {
        self.send(app, reqwest::Method::GET, path, None).await
    }

    async fn patch(&self, app: &TestApp, id: &str, ops: Value) -> (StatusCode, Value) {
        self.send(
            app,
            reqwest::Method::PATCH,
            &format!("/scim/v2/Users/{id}"),
            Some(&json!({ "schemas": [PATCH], "Operations": ops })),
        )
        .await
    }
}

fn new_user(email: &str, given: &str, family: &str, department: &str) -> Value {
    json!({
        "schemas": [USER, ENTERPRISE],
        "userName": email,
        "name": { "givenName": given, "familyName": family },
        "emails": [{ "value": email, "type": "work", "primary": true }],
        "active": true,
        "externalId": format!("00u-{given}"),
        ENTERPRISE: { "department": department }
    })
}

/// A SCIM error body with this status and scimType.
fn assert_error(status: StatusCode, body: &Value, want: StatusCode, scim_type: Option<&str>) {
    assert_eq!(status, want, "{body}");
    assert_eq!(body["schemas"], json!([ERROR]), "{body}");
    assert_eq!(body["status"], json!(want.as_u16().to_string()));
    assert_eq!(body["scimType"].as_str(), scim_type, "{body}");
    assert!(!body["detail"].as_str().unwrap().is_empty());
}

async fn scim_creates_finds_and_lists_employees(b: Backend) {
    let app = TestApp::spawn(&b).await;
    let (admin, _, _) = app.first_admin(ADMIN, PW).await;
    let idp = Idp::new(&app, &admin).await;

    let onboarded = app.audit_count("employee.onboarded", "success").await;
    let (s, u) = idp
        .send(
            &app,
            reqwest::Method::POST,
            "/scim/v2/Users",
            Some(&new_user(
                "Lea.Hoffmann@sunridge-solar.example",
                "Lea",
                "Hoffmann",
                "Support",
            )),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{u}");
    let id = u["id"].as_str().unwrap().to_owned();
    assert_eq!(u["userName"], "lea.hoffmann@sunridge-solar.example");
    assert_eq!(u["displayName"], "Lea Hoffmann");
    assert_eq!(u["active"], true);
    assert_eq!(u["externalId"], "00u-Lea");
    assert_eq!(u[ENTERPRISE]["department"], "support");
    assert_eq!(u["meta"]["resourceType"], "User");
    assert!(u["meta"]["location"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/scim/v2/Users/{id}")));
    // An invited employee with no password and no roles; recorded as the service's act.
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM users WHERE id = {id} AND status = 'invited' AND password_hash IS NULL"
        ))
        .await,
        1
    );
    assert_eq!(
        app.count(&format!("SELECT COUNT(*) FROM grants WHERE user_id = {id}"))
            .await,
        0
    );
    assert_eq!(app.audit_count("employee.onboarded", "success").await, onboarded + 1);
    assert_eq!(app.count(&format!("SELECT COUNT(*) FROM audit_events WHERE action = 'employee.onboarded' AND target_id = '{id}' AND actor_session = 'svc:okta-scim'")).await, 1);

    // The same userName again, in another case: 409 uniqueness, nothing written.
    let users = app.count("SELECT COUNT(*) FROM users").await;
    let (s, e) = idp
        .send(
            &app,
            reqwest::Method::POST,
            "/scim/v2/Users",
            Some(&new_user("LEA.HOFFMANN@sunridge-solar.example", "Lea", "H", "support")),
        )
        .await;
    assert_error(s, &e, StatusCode::CONFLICT, Some("uniqueness"));
    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, users);

    // Found by userName (case-insensitively) and by externalId; read by id.
    let (s, l) = idp
        .get(
            &app,
            "/scim/v2/Users?filter=userName%20eq%20%22LEA.hoffmann%40sunridge-solar.example%22",
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        l["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:ListResponse"])
    );
    assert_eq!(
        (l["totalResults"].as_i64(), l["Resources"][0]["id"].as_str()),
        (Some(1), Some(id.as_str()))
    );
    let (_, l) = idp
        .get(&app, "/scim/v2/Users?filter=externalId%20eq%20%2200u-Lea%22")
        .await;
    assert_eq!(l["totalResults"], 1);
    let (_, l) = idp
        .get(
            &app,
            "/scim/v2/Users?filter=userName%20eq%20%22nobody%40sunridge-solar.example%22",
        )
        .await;
    assert_eq!(
        (l["totalResults"].as_i64(), l["Resources"].as_array().map(Vec::len)),
        (Some(0), Some(0))
    );
    let (s, one) = idp.get(&app, &format!("/scim/v2/Users/{id}")).await;
    assert_eq!((s, &one), (StatusCode::OK, &u));

    // Administrators and people the provider did not create are listed too,
    // so the provider can link the employees Gatehouse already has.
    let (_, all) = idp.get(&app, "/scim/v2/Users").await;
    assert_eq!(all["totalResults"], 2);
    let (_, page) = idp.get(&app, "/scim/v2/Users?startIndex=2&count=1").await;
    assert_eq!(
        (
            page["startIndex"].as_i64(),
            page["itemsPerPage"].as_i64(),
            page["Resources"][0]["id"].as_str()
        ),
        (Some(2), Some(1), Some(id.as_str()))
    );
    let (_, none) = idp.get(&app, "/scim/v2/Users?count=0").await;
    assert_eq!(
        (none["totalResults"].as_i64(), none["itemsPerPage"].as_i64()),
        (Some(2), Some(0))
    );

    let (s, cfg) = idp.get(&app, "/scim/v2/ServiceProviderConfig").await;
    assert_eq!(
        (s, &cfg["patch"]["supported"], &cfg["bulk"]["supported"]),
        (StatusCode::OK, &json!(true), &json!(false))
    );
    app.verify_chain().await;
    app.cleanup().await;
}

async fn scim_deactivation_offboards_and_ends_sessions_at_once(b: Backend) {
    let app = TestApp::spawn(&b).await;
    let (admin, _, _) = app.first_admin(ADMIN, PW).await;
    let idp = Idp::new(&app, &admin).await;
    let email = "jonas.becker@sunridge-solar.example";
    let (jonas, _, jonas_id) = app
        .employee(&admin, "Jonas Becker", email, "support", &["support"])
        .await;
    assert_eq!(app.me(&jonas).await["email"], email, "signed in before");

    let (_, l) = idp
        .get(
            &app,
            &format!(
                "/scim/v2/Users?filter=userName%20eq%20%22{}%22",
                email.replace('@', "%40")
            ),
        )
        .await;
    let id = l["Resources"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(id, jonas_id.to_string());

    // Microsoft Entra's shape: no path, "False" as a string.
    let (s, u) = idp
        .patch(&app, &id, json!([{ "op": "Replace", "value": { "active": "False" } }]))
        .await;
    assert_eq!((s, &u["active"]), (StatusCode::OK, &json!(false)), "{u}");
    // Offboarded in that same request: status, grants, sessions.
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM users WHERE id = {id} AND status = 'offboarded'"
        ))
        .await,
        1
    );
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM grants WHERE user_id = {id} AND revoked_at IS NULL"
        ))
        .await,
        0
    );
    assert_eq!(
        app.count(&format!("SELECT COUNT(*) FROM sessions WHERE user_id = {id}"))
            .await,
        0
    );
    assert!(app.me(&jonas).await.is_null(), "the employee's session ended at once");
    let r = app.get(&jonas, "/requests").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(r
        .headers()
        .get("location")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("/signin"));
    assert_eq!(app.count(&format!("SELECT COUNT(*) FROM audit_events WHERE action = 'employee.offboarded' AND target_id = '{id}' AND actor_session = 'svc:okta-scim'")).await, 1);

    // Deactivating again changes nothing; reactivating is refused.
    let offboarded = app.audit_count("employee.offboarded", "success").await;
    let (s, _) = idp
        .patch(
            &app,
            &id,
            json!([{ "op": "replace", "path": "active", "value": false }]),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(app.audit_count("employee.offboarded", "success").await, offboarded);
    let (s, e) = idp
        .patch(&app, &id, json!([{ "op": "replace", "path": "active", "value": true }]))
        .await;
    assert_error(s, &e, StatusCode::BAD_REQUEST, Some("mutability"));
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM users WHERE id = {id} AND status = 'offboarded'"
        ))
        .await,
        1
    );

    // DELETE of an active employee offboards too, and the resource is gone for SCIM.
    let (lea, _, lea_id) = app
        .employee(
            &admin,
            "Lea Hoffmann",
            "lea.hoffmann@sunridge-solar.example",
            "support",
            &["support"],
        )
        .await;
    let (s, _) = idp
        .send(&app, reqwest::Method::DELETE, &format!("/scim/v2/Users/{lea_id}"), None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert!(app.me(&lea).await.is_null());
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM users WHERE id = {lea_id} AND status = 'offboarded'"
        ))
        .await,
        1
    );
    let (s, e) = idp.get(&app, &format!("/scim/v2/Users/{lea_id}")).await;
    assert_error(s, &e, StatusCode::NOT_FOUND, None);
    let (s, e) = idp
        .send(&app, reqwest::Method::DELETE, &format!("/scim/v2/Users/{lea_id}"), None)
        .await;
    assert_error(s, &e, StatusCode::NOT_FOUND, None);
    let (_, all) = idp.get(&app, "/scim/v2/Users").await;
    assert_eq!(
        all["totalResults"], 2,
        "the administrator and Jonas; not the deleted one"
    );
    // Gatehouse keeps the record and its history.
    assert_eq!(
        app.count(&format!("SELECT COUNT(*) FROM users WHERE id = {lea_id}"))
            .await,
        1
    );
    app.verify_chain().await;
    app.cleanup().await;
}

async fn scim_updates_profiles_with_before_and_after(b: Backend) {
    let app = TestApp::spawn(&b).await;
    let (admin, _, _) = app.first_admin(ADMIN, PW).await;
    let idp = Idp::new(&app, &admin).await;
    let (_, u) = idp
        .send(
            &app,
            reqwest::Method::POST,
            "/scim/v2/Users",
            Some(&new_user("ana.silva@sunridge-solar.example", "Ana", "Silva", "sales")),
        )
        .await;
    let id = u["id"].as_str().unwrap().to_owned();

    // PUT replaces; a PUT without the department keeps it.
    let mut put = new_user("ana.costa@sunridge-solar.example", "Ana", "Costa", "sales");
    put.as_object_mut().unwrap().remove(ENTERPRISE);
    let (s, u) = idp
        .send(&app, reqwest::Method::PUT, &format!("/scim/v2/Users/{id}"), Some(&put))
        .await;
    assert_eq!(s, StatusCode::OK, "{u}");
    assert_eq!(
        (
            u["userName"].as_str(),
            u["displayName"].as_str(),
            u[ENTERPRISE]["department"].as_str()
        ),
        (
            Some("ana.costa@sunridge-solar.example"),
            Some("Ana Costa"),
            Some("sales")
        )
    );
    let detail: Value = {
        use sqlx::Row;
        let row = sqlx::query("SELECT details FROM audit_events WHERE action = 'employee.updated' AND target_id = ?")
            .bind(&id)
            .fetch_one(app.state.db.pool())
            .await
            .unwrap();
        let text: String = row
            .try_get::<String, _>("details")
            .or_else(|_| {
                row.try_get::<Vec<u8>, _>("details")
                    .map(|b| String::from_utf8(b).unwrap())
            })
            .unwrap();
        serde_json::from_str(&text).unwrap()
    };
    assert_eq!(detail["before"]["email"], "ana.silva@sunridge-solar.example");
    assert_eq!(detail["after"]["email"], "ana.costa@sunridge-solar.example");
    assert_eq!(detail["after"]["name"], "Ana Costa");

    // PATCH of the department through the enterprise path.
    let (s, u) = idp
        .patch(
            &app,
            &id,
            json!([{ "op": "replace", "path": format!("{ENTERPRISE}:department"), "value": "Support" }]),
        )
        .await;
    assert_eq!(
        (s, u[ENTERPRISE]["department"].as_str()),
        (StatusCode::OK, Some("support"))
    );
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM users WHERE id = {id} AND department = 'support'"
        ))
        .await,
        1
    );

    // Taking another employee's email: 409, nothing changed.
    let (s, e) = idp
        .patch(
            &app,
            &id,
            json!([{ "op": "replace", "path": "userName", "value": ADMIN }]),
        )
        .await;
    assert_error(s, &e, StatusCode::CONFLICT, Some("uniqueness"));
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM users WHERE id = {id} AND email = 'ana.costa@sunridge-solar.example'"
        ))
        .await,
        1
    );
    assert_eq!(app.audit_count("employee.updated", "success").await, 2);
    app.verify_chain().await;
    app.cleanup().await;
}

async fn scim_refuses_bad_requests_in_its_error_format_and_writes_nothing(b: Backend) {
    let app = TestApp::spawn(&b).await;
    let (admin, _, _) = app.first_admin(ADMIN, PW).await;
    let idp = Idp::new(&app, &admin).await;
    let admin_id = app.user_id(ADMIN).await;

    // No token, and a token without the scim scope: 401 (counted for the
    // address's summary) and 403 (recorded on its own).
    let denied = app.audit_count("api.auth", "denied").await;
    let r = client().get(app.url("/scim/v2/Users")).send().await.unwrap();
    assert_eq!(r.headers().get("www-authenticate").unwrap(), "Bearer");
    let status = r.status();
    assert_error(status, &r.json().await.unwrap(), StatusCode::UNAUTHORIZED, None);
    let checker = service_account(&app, &admin, "customer-api", &["access:check"]).await;
    let wrong = Idp {
        token: api_token(&app, &admin, checker, "").await,
    };
    let (s, e) = wrong
        .send(
            &app,
            reqwest::Method::POST,
            "/scim/v2/Users",
            Some(&new_user("x@sunridge-solar.example", "X", "Y", "sales")),
        )
        .await;
    assert_error(s, &e, StatusCode::FORBIDDEN, None);
    assert_eq!(app.audit_count("api.auth", "denied").await, denied + 1);

    let users = app.count("SELECT COUNT(*) FROM users").await;
    let events = app.count("SELECT COUNT(*) FROM audit_events").await;
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({ "schemas": [USER], "displayName": "No Name", ENTERPRISE: { "department": "sales" } }),
            "invalidValue",
        ),
        (new_user("not-an-email", "A", "B", "sales"), "invalidValue"),
        (
            new_user("a@sunridge-solar.example", "A", "B", "marketing"),
            "invalidValue",
        ),
        (
            json!({ "schemas": [USER], "userName": "a@sunridge-solar.example", "displayName": "A B" }),
            "invalidValue",
        ),
        (
            json!({ "schemas": ["urn:example:Group"], "userName": "a@sunridge-solar.example", "displayName": "A B", ENTERPRISE: { "department": "sales" } }),
            "invalidSyntax",
        ),
        (
            {
                let mut v = new_user("a@sunridge-solar.example", "A", "B", "sales");
                v["active"] = json!(false);
                v
            },
            "invalidValue",
        ),
    ];
    for (body, scim_type) in cases {
        let (s, e) = idp_post(&app, &idp.token, body.clone()).await;
        assert_error(s, &e, StatusCode::BAD_REQUEST, Some(scim_type));
    }
    let r = client()
        .post(app.url("/scim/v2/Users"))
        .bearer_auth(&idp.token)
        .header("content-type", "application/scim+json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    let status = r.status();
    assert_error(
        status,
        &r.json().await.unwrap(),
        StatusCode::BAD_REQUEST,
        Some("invalidSyntax"),
    );
    let (s, e) = idp.get(&app, "/scim/v2/Users?filter=userName%20co%20%22a%22").await;
    assert_error(s, &e, StatusCode::BAD_REQUEST, Some("invalidFilter"));
    let (s, e) = idp.get(&app, "/scim/v2/Users?count=many").await;
    assert_error(s, &e, StatusCode::BAD_REQUEST, Some("invalidValue"));
    let (s, e) = idp
        .patch(
            &app,
            &admin_id.to_string(),
            json!([{ "op": "replace", "path": "favouriteColour", "value": "red" }]),
        )
        .await;
    assert_error(s, &e, StatusCode::BAD_REQUEST, Some("invalidPath"));
    for missing in ["999999", "abc"] {
        let (s, e) = idp
            .patch(
                &app,
                missing,
                json!([{ "op": "replace", "path": "active", "value": false }]),
            )
            .await;
        assert_error(s, &e, StatusCode::NOT_FOUND, None);
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, users);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_events").await,
        events,
        "bad requests write nothing"
    );

    // The last active administrator is not offboarded from outside: 409,
    // the refusal recorded, the administrator untouched.
    let (s, e) = idp
        .patch(
            &app,
            &admin_id.to_string(),
            json!([{ "op": "replace", "path": "active", "value": false }]),
        )
        .await;
    assert_error(s, &e, StatusCode::CONFLICT, None);
    assert!(e["detail"].as_str().unwrap().contains("last active administrator"));
    assert_eq!(app.audit_count("employee.offboard", "denied").await, 1);
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM users WHERE id = {admin_id} AND status = 'active'"
        ))
        .await,
        1
    );
    assert_eq!(app.me(&admin).await["email"], ADMIN, "still signed in");
    app.verify_chain().await;
    app.cleanup().await;
}

async fn idp_post(app: &TestApp, token: &str, body: Value) -> (StatusCode, Value) {
    Idp {
        token: token.to_owned(),
    }
    .send(app, reqwest::Method::POST, "/scim/v2/Users", Some(&body))
    .await
}

/// An employee provisioned by the identity provider signs in through it:
/// an administrator cannot mint an invitation link for them (a puppet
/// identity with a password only Gatehouse knows). With or without an
/// externalId; refused, recorded, nothing written.
async fn no_invitation_link_for_employees_the_provider_manages(b: Backend) {
    let app = TestApp::spawn(&b).await;
    let (admin, _, _) = app.first_admin(ADMIN, PW).await;
    let idp = Idp::new(&app, &admin).await;
    let mut without_external = new_user("tom.weber@sunridge-solar.example", "Tom", "Weber", "Sales");
    without_external.as_object_mut().unwrap().remove("externalId");
    for body in [
        new_user("lea.hoffmann@sunridge-solar.example", "Lea", "Hoffmann", "Support"),
        without_external,
    ] {
        let (s, u) = idp
            .send(&app, reqwest::Method::POST, "/scim/v2/Users", Some(&body))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{u}");
        let id = u["id"].as_str().unwrap().to_owned();
        let r = app.call(&admin, "reissue_invitation", &[("user_id", &id)]).await;
        assert_eq!(r.status(), StatusCode::CONFLICT);
        let text = r.text().await.unwrap();
        assert!(text.contains("identity provider"), "{text}");
        assert!(!text.contains("token="), "{text}");
        assert_eq!(
            app.count(&format!("SELECT COUNT(*) FROM invitations WHERE user_id = {id}"))
                .await,
            0
        );
        let page: Value = app.call(&admin, "employee", &[("id", &id)]).await.json().await.unwrap();
        assert_eq!(page["managed_by_provider"], true, "{page}");
    }
    assert_eq!(app.audit_count("invitation.created", "denied").await, 2);
    // An employee the administrator onboarded still gets a new link.
    let inv = app
        .onboard(&admin, "Ada Nwosu", "ada.nwosu@sunridge-solar.example", "support", &[])
        .await;
    let r = app
        .call(
            &admin,
            "reissue_invitation",
            &[("user_id", &inv["user_id"].to_string())],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    app.verify_chain().await;
    app.cleanup().await;
}
