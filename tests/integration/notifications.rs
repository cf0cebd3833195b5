//! Notifications of elevation requests: in-app, by email through a real
//! SMTP server (Python's aiosmtpd, installed by the test command), and to a
//! Slack-compatible webhook; the reminder 10 minutes before access ends.
//! SQLite and MySQL.

use crate::helpers::*;
use reqwest::{Client, StatusCode};
use serde_json::Value;
use std::path::PathBuf;

const ADMIN: &str = "maya.okafor@sunridge-solar.example";
const PW: &str = "violet harbour lantern 42";
const JONAS: &str = "jonas.becker@sunridge-solar.example";
const ADA: &str = "ada.nwosu@sunridge-solar.example";
const WHY: &str = "customer 1042 asks to correct the delivery address";

on_both!(
    requests_notify_in_app_by_email_and_webhook_and_remind_before_the_end,
    invitations_go_to_the_invitee_by_email_and_are_never_shown,
);

/// aiosmtpd on a free port, storing what it receives in a Maildir.
struct SmtpServer {
    child: std::process::Child,
    dir: PathBuf,
    port: u16,
}

impl SmtpServer {
    async fn start() -> Self {
        let python = std::env::var("GATEHOUSE_TEST_PYTHON")
            .unwrap_or_else(|_| format!("{}/.ci/work/py/bin/python", env!("CARGO_MANIFEST_DIR")));
        assert!(
            std::path::Path::new(&python).exists(),
            "{python} not found: the email tests need aiosmtpd; `bash .ci/dev test` installs it (or set GATEHOUSE_TEST_PYTHON)"
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = std::env::temp_dir().join(format!("gatehouse-smtp-{}-{port}", std::process::id()));
        let mut child = std::process::Command::new(&python)
            .args([
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                &format!("127.0.0.1:{port}"),
                "-c",
                "aiosmtpd.handlers.Mailbox",
            ])
            .arg(&dir)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("start aiosmtpd");
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return Self { child, dir, port };
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("aiosmtpd did not start on port {port}");
    }

    /// Every message received so far, as raw text.
    fn messages(&self) -> Vec<String> {
        let mut out = Vec::new();
        for sub in ["new", "cur"] {
            if let Ok(entries) = std::fs::read_dir(self.dir.join(sub)) {
                for e in entries.flatten() {
                    out.push(std::fs::read_to_string(e.path()).unwrap());
                }
            }
        }
        out
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn notes(app: &TestApp, c: &Client) -> Vec<Value> {
    app.call(c, "my_notifications", &[]).await.json().await.unwrap()
}

async fn requests_notify_in_app_by_email_and_webhook_and_remind_before_the_end(b: Backend) {
    let smtp = SmtpServer::start().await;
    let (hook, posted) = crate::alerts::receiver(true).await;
    let smtp_url = format!("smtp://127.0.0.1:{}", smtp.port);
    let app = TestApp::spawn_with(
        &b,
        &[
            ("GATEHOUSE_SMTP_URL", &smtp_url),
            ("GATEHOUSE_SMTP_FROM", "gatehouse@sunridge-solar.example"),
            ("GATEHOUSE_NOTIFY_WEBHOOK_URL", &hook),
            ("GATEHOUSE_NOTIFY_WEBHOOK_ALLOWED_HOSTS", "127.0.0.1"),
            // Invitation links shown on the page, as without email (the
            // option's other side is the test below).
            ("GATEHOUSE_INVITATIONS_BY_EMAIL", "false"),
        ],
    )
    .await;
    let (maya, _, _) = app.first_admin(ADMIN, PW).await;
    let (jonas, jonas_key, _) = app
        .employee(&maya, "Jonas Becker", JONAS, "support", &["support"])
        .await;
    let (ada, _, _) = app.employee(&maya, "Ada Nwosu", ADA, "audit", &["auditor"]).await;

    let r = app
        .call(
            &jonas,
            "request_elevation",
            &[
                ("role", "support-pii"),
                ("justification", WHY),
                ("ticket", "SUP-1234"),
                ("customers", "1042"),
            ],
        )
        .await;
    let id = r.text().await.unwrap();
    // In-app, at once, for the approver only (not the requester, not the auditor).
    assert_eq!(app.me(&maya).await["unread"], 1);
    let n = notes(&app, &maya).await;
    assert_eq!(n[0]["subject"], "Jonas Becker asks for Support with customer PII for 1 hour (SUP-1234, only customers 1042): waiting for your approval");
    assert_eq!(
        (n[0]["link"].as_str(), n[0]["unread"].as_bool()),
        (Some("/requests"), Some(true))
    );
    assert!(notes(&app, &ada).await.is_empty(), "auditors never approve");
    assert!(notes(&app, &jonas).await.is_empty());
    assert_eq!(app.get(&maya, "/notifications").await.status(), StatusCode::OK);

    // The job delivers: email to the approver, one message to the chat
    // webhook; the webhook's first answer is 500, so it is tried again later.
    gatehouse::server::jobs::run_access_jobs(&app.state).await;
    let mail = smtp.messages();
    assert_eq!(mail.len(), 1, "{mail:?}");
    assert!(mail[0].contains(&format!("To: {ADMIN}")), "{}", mail[0]);
    assert!(
        mail[0].contains("Subject: Jonas Becker asks for Support with customer PII"),
        "{}",
        mail[0]
    );
    assert!(mail[0].contains("/requests"));
    assert_eq!(posted.lock().unwrap().len(), 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM notification_outbox WHERE channel = 'webhook' AND delivered_at IS NULL AND attempts = 1").await, 1);
    gatehouse::server::jobs::run_access_jobs(&app.state).await;
    assert_eq!(posted.lock().unwrap().len(), 1, "not before the retry delay");
    app.clock.advance(61_000);
    gatehouse::server::jobs::run_access_jobs(&app.state).await;
    let got = posted.lock().unwrap().clone();
    assert_eq!(got.len(), 2);
    // The retry carries the same delivery id as the failed attempt, and the
    // email names the same outbox message scheme in its Message-ID.
    assert!(got[0].2.starts_with("notification-"), "{:?}", got[0].2);
    assert_eq!(got[0].2, got[1].2, "a retry is the same delivery");
    assert!(
        mail[0]
            .lines()
            .any(|l| l.starts_with("Message-ID: <notification-") && l.ends_with("@127.0.0.1>")),
        "{}",
        mail[0]
    );
    let v: Value = serde_json::from_str(&got[1].1).unwrap();
    assert!(
        v["text"]
            .as_str()
            .unwrap()
            .starts_with("Jonas Becker asks for Support with customer PII"),
        "{v}"
    );
    assert!(v["text"].as_str().unwrap().ends_with("/requests|Open in Gatehouse>"));
    gatehouse::server::jobs::run_access_jobs(&app.state).await;
    assert_eq!(posted.lock().unwrap().len(), 2, "delivered once");
    assert_eq!(smtp.messages().len(), 1);

    // Marking read clears the badge.
    assert_eq!(
        app.call(&maya, "mark_notifications_read", &[]).await.status(),
        StatusCode::OK
    );
    assert_eq!(app.me(&maya).await["unread"], 0);
    assert_eq!(notes(&app, &maya).await[0]["unread"], false);

    // The requester hears the decision.
    let r = app
        .call(&maya, "decide_elevation", &[("id", &id), ("decision", "approve")])
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let n = notes(&app, &jonas).await;
    assert!(
        n[0]["subject"].as_str().unwrap().starts_with(&format!(
            "Your request {id} for Support with customer PII was approved from "
        )),
        "{n:?}"
    );
    gatehouse::server::jobs::run_access_jobs(&app.state).await;
    assert!(smtp
        .messages()
        .iter()
        .any(|m| m.contains(&format!("To: {JONAS}")) && m.contains("was approved")));

    // Ten minutes before the end, once.
    let end: i64 = app
        .count(&format!("SELECT window_end FROM elevation_requests WHERE id = {id}"))
        .await;
    app.clock.set(end - 10 * 60_000 - 1);
    gatehouse::server::jobs::run_access_jobs(&app.state).await;
    let jonas = app.sign_in(JONAS, "quiet meadow lantern 7", &jonas_key).await;
    assert_eq!(notes(&app, &jonas).await.len(), 1, "not yet");
    app.clock.set(end - 10 * 60_000);
    gatehouse::server::jobs::run_access_jobs(&app.state).await;
    gatehouse::server::jobs::run_access_jobs(&app.state).await;
    let n = notes(&app, &jonas).await;
    assert_eq!(n.len(), 2, "{n:?}");
    assert!(
        n[0]["subject"].as_str().unwrap().contains("ends in 10 minutes"),
        "{n:?}"
    );
    assert!(smtp.messages().iter().any(|m| m.contains("ends in 10 minutes")));
    // Nothing secret went out: no codes, keys or tokens in any message.
    for m in smtp.messages() {
        assert!(!m.contains("otpauth") && !m.contains("ghs_"));
    }
    app.verify_chain().await;
    app.cleanup().await;
}

/// The invitation link in a message, its quoted-printable soft line breaks
/// and `=3D` undone.
fn link_in(message: &str) -> String {
    let plain = message.replace("=\r\n", "").replace("=\n", "").replace("=3D", "=");
    let start = plain.find("http://").expect("a link in the message");
    plain[start..].split_whitespace().next().unwrap().to_owned()
}

/// With email configured, an invitation link goes to the invitee's own
/// address and is never shown to the administrator who made it (who could
/// otherwise accept it for a made-up employee); once sent, the outbox keeps
/// no usable link, and the audit trail never held one.
async fn invitations_go_to_the_invitee_by_email_and_are_never_shown(b: Backend) {
    let smtp = SmtpServer::start().await;
    let smtp_url = format!("smtp://127.0.0.1:{}", smtp.port);
    let app = TestApp::spawn_with(
        &b,
        &[
            ("GATEHOUSE_SMTP_URL", &smtp_url),
            ("GATEHOUSE_SMTP_FROM", "gatehouse@sunridge-solar.example"),
        ],
    )
    .await;
    let (maya, _, _) = app.first_admin(ADMIN, PW).await;
    let inv = app.onboard(&maya, "Jonas Becker", JONAS, "support", &["support"]).await;
    assert!(inv["link"].is_null(), "{inv}");
    assert_eq!(inv["emailed_to"], JONAS);
    let uid = inv["user_id"].to_string();

    gatehouse::server::jobs::run_access_jobs(&app.state).await;
    let mail = smtp.messages();
    assert_eq!(mail.len(), 1, "{mail:?}");
    assert!(mail[0].contains(&format!("To: {JONAS}")), "{}", mail[0]);
    let first = link_in(&mail[0]);
    assert!(first.contains("token="), "{first}");
    let stored = "SELECT COUNT(*) FROM notification_outbox WHERE body LIKE '%token=%'";
    assert_eq!(app.count(stored).await, 0, "the sent link is not kept");

    // A new link goes the same way; the first one stops working.
    let r = app.call(&maya, "reissue_invitation", &[("user_id", &uid)]).await;
    assert_eq!(r.status(), StatusCode::OK);
    let again: Value = r.json().await.unwrap();
    assert!(again["link"].is_null(), "{again}");
    assert_eq!(again["emailed_to"], JONAS);
    gatehouse::server::jobs::run_access_jobs(&app.state).await;
    let mail = smtp.messages();
    assert_eq!(mail.len(), 2, "{mail:?}");
    let second = mail.iter().map(|m| link_in(m)).find(|l| *l != first).unwrap();
    let old_token = first.split("token=").nth(1).unwrap();
    let r = app
        .call(
            &client(),
            "accept_invitation",
            &[("token", old_token), ("password", PW), ("confirm", PW)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let (jonas, _) = app.join(&second, "quiet meadow lantern 7").await;
    assert_eq!(app.me(&jonas).await["email"], JONAS);
    assert_eq!(app.count(stored).await, 0);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_events WHERE details LIKE '%token=%'")
            .await,
        0
    );
    app.verify_chain().await;
    app.cleanup().await;
}
