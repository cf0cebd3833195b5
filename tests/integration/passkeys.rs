//! Passkeys over HTTP, on SQLite and MySQL, with a software authenticator
//! written here from the WebAuthn and CTAP2 specifications (ES256 keys, a
//! CBOR encoder of its own, attestation `none`): registration, what is
//! refused (another origin, no user verification, a stale or foreign
//! ceremony, a credential registered twice), removal after a fresh second
//! factor, and passkeys off where the public host is an IP address.

use crate::helpers::*;
use base64::{engine::general_purpose::URL_SAFE_NO_PAD as B64, Engine};
use openssl::{
    bn::BigNumContext,
    ec::{EcGroup, EcKey, PointConversionForm},
    nid::Nid,
    pkey::Private,
    sha::sha256,
};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

const ADMIN: &str = "maya.okafor@sunridge-solar.example";
const PW: &str = "violet harbour lantern 42";
const MINUTE: i64 = 60_000;

on_both!(
    an_employee_registers_passkeys_and_removes_one_after_a_fresh_factor,
    a_registration_that_is_not_for_this_site_or_does_not_verify_the_user_is_refused,
);

// ---------------------------------------------------------------- CBOR (RFC 8949), what the authenticator sends

fn head(major: u8, n: u64, out: &mut Vec<u8>) {
    let m = major << 5;
    match n {
        0..=23 => out.push(m | n as u8),
        24..=0xff => out.extend([m | 24, n as u8]),
        0x100..=0xffff => {
            out.push(m | 25);
            out.extend((n as u16).to_be_bytes());
        }
        _ => {
            out.push(m | 26);
            out.extend((n as u32).to_be_bytes());
        }
    }
}

fn int(i: i64, out: &mut Vec<u8>) {
    if i >= 0 {
        head(0, i as u64, out)
    } else {
        head(1, (-1 - i) as u64, out)
    }
}

fn bytes(b: &[u8], out: &mut Vec<u8>) {
    head(2, b.len() as u64, out);
    out.extend_from_slice(b);
}

fn text(s: &str, out: &mut Vec<u8>) {
    head(3, s.len() as u64, out);
    out.extend_from_slice(s.as_bytes());
}

// ---------------------------------------------------------------- the software authenticator

pub const UP: u8 = 0x01;
pub const UV: u8 = 0x04;
const AT: u8 = 0x40;

/// One credential on a software authenticator (a passkey). Its private
/// key signs assertions; registration only shows the public half.
pub struct SoftKey {
    key: EcKey<Private>,
    pub cred_id: Vec<u8>,
    /// The user handle it was made for (what a discoverable credential
    /// answers with).
    user_handle: std::cell::RefCell<Option<String>>,
    /// Its signature counter; `None` for a synced passkey, whose counter
    /// stays 0.
    pub counter: std::cell::Cell<Option<u32>>,
}

impl SoftKey {
    pub fn new() -> Self {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
        let mut cred_id = vec![0u8; 32];
        openssl::rand::rand_bytes(&mut cred_id).unwrap();
        SoftKey {
            key: EcKey::generate(&group).unwrap(),
            cred_id,
            user_handle: Default::default(),
            counter: std::cell::Cell::new(Some(0)),
        }
    }

    /// The COSE_Key (RFC 9053) of the public key: EC2, ES256, P-256.
    fn cose_key(&self) -> Vec<u8> {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
        let mut ctx = BigNumContext::new().unwrap();
        let point = self
            .key
            .public_key()
            .to_bytes(&group, PointConversionForm::UNCOMPRESSED, &mut ctx)
            .unwrap();
        let mut out = Vec::new();
        head(5, 5, &mut out);
        for (k, v) in [(1, 2), (3, -7), (-1, 1)] {
            int(k, &mut out);
            int(v, &mut out);
        }
        int(-2, &mut out);
        bytes(&point[1..33], &mut out);
        int(-3, &mut out);
        bytes(&point[33..65], &mut out);
        out
    }

    /// `navigator.credentials.create()` on this authenticator, for the
    /// server's `options` as seen from `origin`, with `flags`.
    pub fn create(&self, options: &Value, origin: &str, flags: u8) -> String {
        let pk = &options["publicKey"];
        let rp_id = pk["rp"]["id"].as_str().unwrap();
        *self.user_handle.borrow_mut() = pk["user"]["id"].as_str().map(str::to_owned);
        let mut auth = sha256(rp_id.as_bytes()).to_vec();
        auth.push(flags | AT);
        auth.extend(0u32.to_be_bytes()); // signature counter
        auth.extend([0u8; 16]); // AAGUID: none
        auth.extend((self.cred_id.len() as u16).to_be_bytes());
        auth.extend_from_slice(&self.cred_id);
        auth.extend(self.cose_key());
        let mut attestation = Vec::new();
        head(5, 3, &mut attestation);
        text("fmt", &mut attestation);
        text("none", &mut attestation);
        text("attStmt", &mut attestation);
        head(5, 0, &mut attestation);
        text("authData", &mut attestation);
        bytes(&auth, &mut attestation);
        let client_data = json!({
            "type": "webauthn.create",
            "challenge": pk["challenge"],
            "origin": origin,
            "crossOrigin": false,
        })
        .to_string();
        json!({
            "id": B64.encode(&self.cred_id),
            "rawId": B64.encode(&self.cred_id),
            "type": "public-key",
            "extensions": {},
            "response": {
                "attestationObject": B64.encode(&attestation),
                "clientDataJSON": B64.encode(client_data.as_bytes()),
            },
        })
        .to_string()
    }
}

impl SoftKey {
    /// `navigator.credentials.get()` on this authenticator, for the
    /// server's `options` as seen from `origin`, with `flags`: the counter
    /// goes up by one (unless it is a synced passkey's), and the assertion
    /// is signed (ES256 over authenticatorData and the client data's hash).
    pub fn get(&self, options: &Value, origin: &str, flags: u8) -> String {
        let pk = &options["publicKey"];
        let rp_id = pk["rpId"].as_str().unwrap();
        let counter = self.counter.get().map(|c| c + 1);
        self.counter.set(counter);
        let mut auth = sha256(rp_id.as_bytes()).to_vec();
        auth.push(flags);
        auth.extend(counter.unwrap_or(0).to_be_bytes());
        let client_data = json!({
            "type": "webauthn.get",
            "challenge": pk["challenge"],
            "origin": origin,
            "crossOrigin": false,
        })
        .to_string();
        let mut signed = auth.clone();
        signed.extend(sha256(client_data.as_bytes()));
        let sig = openssl::ecdsa::EcdsaSig::sign(&sha256(&signed), &self.key)
            .unwrap()
            .to_der()
            .unwrap();
        json!({
            "id": B64.encode(&self.cred_id),
            "rawId": B64.encode(&self.cred_id),
            "type": "public-key",
            "extensions": {},
            "response": {
                "authenticatorData": B64.encode(&auth),
                "clientDataJSON": B64.encode(client_data.as_bytes()),
                "signature": B64.encode(&sig),
                "userHandle": self.user_handle.borrow().clone(),
            },
        })
        .to_string()
    }
}

// ---------------------------------------------------------------- helpers

pub fn origin(app: &TestApp) -> String {
    format!("http://localhost:{}", app.addr.port())
}

pub async fn options(app: &TestApp, c: &Client) -> Value {
    let r = app.call(c, "passkey_registration_options", &[]).await;
    let status = r.status();
    let body = r.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    let json: String = serde_json::from_str(&body).unwrap();
    serde_json::from_str(&json).unwrap()
}

pub async fn register(app: &TestApp, c: &Client, name: &str, credential: &str) -> reqwest::Response {
    app.call(c, "register_passkey", &[("name", name), ("credential", credential)])
        .await
}

pub async fn mine(app: &TestApp, c: &Client) -> Vec<Value> {
    let r = app.call(c, "my_passkeys", &[]).await;
    assert_eq!(r.status(), StatusCode::OK);
    r.json::<Value>().await.unwrap().as_array().unwrap().clone()
}

// ---------------------------------------------------------------- tests

async fn an_employee_registers_passkeys_and_removes_one_after_a_fresh_factor(b: Backend) {
    let app = TestApp::spawn_localhost(&b, &[]).await;
    let (admin, key, _) = app.first_admin(ADMIN, PW).await;
    let o = options(&app, &admin).await;
    // User verification required, resident keys preferred, no attestation.
    let pk = &o["publicKey"];
    assert_eq!(pk["rp"]["id"], "localhost");
    assert_eq!(pk["attestation"], "none");
    assert_eq!(pk["authenticatorSelection"]["userVerification"], "required");
    assert_eq!(pk["authenticatorSelection"]["residentKey"], "preferred");
    let laptop = SoftKey::new();
    let answer = laptop.create(&o, &origin(&app), UP | UV);
    let r = register(&app, &admin, "  Work laptop ", &answer).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let list = mine(&app, &admin).await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["name"], "Work laptop");
    assert_eq!(list[0]["last_used_at"], Value::Null);

    // A second one: the first is excluded from its options, and both
    // share the employee's user handle.
    let o2 = options(&app, &admin).await;
    let excluded: Vec<&str> = o2["publicKey"]["excludeCredentials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(excluded, [B64.encode(&laptop.cred_id)]);
    assert_eq!(o2["publicKey"]["user"]["id"], o["publicKey"]["user"]["id"]);
    let key2 = SoftKey::new();
    let r = register(&app, &admin, "Security key", &key2.create(&o2, &origin(&app), UP | UV)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let key2_id = r.json::<i64>().await.unwrap();
    // The same credential again (an authenticator ignoring the exclusion):
    // one credential, one row.
    let o3 = options(&app, &admin).await;
    let r = register(&app, &admin, "Again", &laptop.create(&o3, &origin(&app), UP | UV)).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert_eq!(app.count("SELECT COUNT(*) FROM passkeys").await, 2);

    // Each registration is in the trail and on the activity page, with no
    // key material in its details.
    assert_eq!(app.audit_count("passkey.registered", "success").await, 2);
    let d = last_details(&app, "passkey.registered").await;
    assert_eq!(d["name"], "Security key");
    let details = d.to_string();
    assert!(
        !details.contains(&B64.encode(&key2.cred_id)) && !details.contains("cred"),
        "{details}"
    );
    let activity: Value = app.call(&admin, "my_activity", &[]).await.json().await.unwrap();
    assert!(activity.to_string().contains("Passkey added"), "{activity}");

    // Removal needs a fresh second factor: the sign-in's code is older
    // than five minutes now.
    app.clock.advance(6 * MINUTE);
    let id = key2_id.to_string();
    let r = app.call(&admin, "remove_passkey", &[("id", &id)]).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(mine(&app, &admin).await.len(), 2);
    // Nobody removes another employee's passkey.
    let (jonas, _, _) = app
        .employee(
            &admin,
            "Jonas Becker",
            "jonas@sunridge-solar.example",
            "support",
            &["support"],
        )
        .await;
    // One credential belongs to one account: the laptop's, offered for
    // Jonas's account, is refused.
    let o = options(&app, &jonas).await;
    let r = register(&app, &jonas, "Borrowed", &laptop.create(&o, &origin(&app), UP | UV)).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert_eq!(app.count("SELECT COUNT(*) FROM passkeys").await, 2);
    assert_eq!(app.audit_count("passkey.register", "failure").await, 2);
    let reason: String = sqlx::query_scalar(
        "SELECT reason FROM audit_events WHERE action = 'passkey.register' ORDER BY seq DESC LIMIT 1",
    )
    .fetch_one(app.state.db.pool())
    .await
    .unwrap();
    assert_eq!(reason, "credential already registered");
    // (His second factor is fresh: he has just enrolled.)
    let r = app.call(&jonas, "remove_passkey", &[("id", &id)]).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(mine(&app, &admin).await.len(), 2);
    let r = app
        .call(&admin, "remove_passkey", &[("id", &id), ("code", &app.code(&key))])
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let left = mine(&app, &admin).await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["name"], "Work laptop");
    assert_eq!(last_details(&app, "passkey.removed").await["name"], "Security key");
    app.verify_chain().await;
    app.cleanup().await;
}

async fn a_registration_that_is_not_for_this_site_or_does_not_verify_the_user_is_refused(b: Backend) {
    let app = TestApp::spawn_localhost(&b, &[]).await;
    let (admin, _, _) = app.first_admin(ADMIN, PW).await;
    // No ceremony started in this session: nothing to finish.
    let k = SoftKey::new();
    let o = options(&app, &admin).await;
    let answer = k.create(&o, &origin(&app), UP | UV);
    let stranger = client();
    let r = register(&app, &stranger, "Laptop", &answer).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // A bad name is a 422.
    let r = register(&app, &admin, "", &answer).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // Made for another origin (a phishing page's): refused, recorded.
    let o = options(&app, &admin).await;
    let phished = k.create(&o, &format!("http://127.0.0.1:{}", app.addr.port()), UP | UV);
    let r = register(&app, &admin, "Laptop", &phished).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = r.text().await.unwrap();
    assert!(error_message(&body).contains("made for this site"), "{body}");
    // The ceremony is spent: its answer cannot be retried.
    let r = register(&app, &admin, "Laptop", &k.create(&o, &origin(&app), UP | UV)).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    // Presence without verification (no PIN, no biometrics): refused.
    let o = options(&app, &admin).await;
    let r = register(&app, &admin, "Laptop", &k.create(&o, &origin(&app), UP)).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // Malformed.
    let _ = options(&app, &admin).await;
    let r = register(&app, &admin, "Laptop", "{\"id\": 1}").await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // A ceremony older than five minutes.
    let o = options(&app, &admin).await;
    app.clock.advance(5 * MINUTE);
    let r = register(&app, &admin, "Laptop", &k.create(&o, &origin(&app), UP | UV)).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert_eq!(app.count("SELECT COUNT(*) FROM passkeys").await, 0);
    assert_eq!(app.audit_count("passkey.register", "failure").await, 3);
    assert_eq!(app.audit_count("passkey.registered", "success").await, 0);
    app.cleanup().await;

    // Where the public host is an IP address, passkeys are off and say why.
    let app = TestApp::spawn(&b).await;
    let (admin, _, _) = app.first_admin(ADMIN, PW).await;
    let r = app.call(&admin, "passkey_registration_options", &[]).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let body = r.text().await.unwrap();
    assert!(error_message(&body).contains("IP address"), "{body}");
    app.cleanup().await;
}
