//! Notifications about elevation requests: what each says, when the
//! reminder is due, and how delivery is retried. In-app notifications are
//! always written; the webhook (Slack-compatible) and email are optional.

use super::{Millis, MINUTE, SECOND};
use serde_json::json;

/// The requester is reminded this long before active access ends.
pub const REMIND_BEFORE: Millis = 10 * MINUTE;
/// Deliveries are tried this many times, then given up (and logged).
pub const MAX_ATTEMPTS: i64 = 6;

/// One line, at most 300 characters: no control characters (so nothing
/// user-written can add an email header or break a chat message).
pub fn subject(s: &str) -> String {
    let clean: String = s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let mut out: String = clean.split_whitespace().collect::<Vec<_>>().join(" ");
    if out.chars().count() > 300 {
        out = out.chars().take(299).collect::<String>() + "…";
    }
    out
}

pub fn requested(
    requester: &str,
    role: &str,
    duration: &str,
    ticket: &str,
    customers: &[String],
    extension: bool,
) -> String {
    let scope = if customers.is_empty() {
        String::new()
    } else {
        format!(", only customers {}", customers.join(", "))
    };
    let what = if extension { "an extension of" } else { "" };
    subject(&format!(
        "{requester} asks for {what} {role} for {duration} ({ticket}{scope}): waiting for your approval"
    ))
}

pub fn decided(role: &str, id: i64, state: &str, window: Option<(&str, &str)>, reason: Option<&str>) -> String {
    let tail = match (state, window, reason) {
        ("approved", Some((a, b)), _) => format!(" from {a} to {b}"),
        (_, _, Some(r)) => format!(": {r}"),
        _ => String::new(),
    };
    subject(&format!("Your request {id} for {role} was {state}{tail}"))
}

pub fn partly_approved(role: &str, id: i64, have: usize, need: usize) -> String {
    subject(&format!("Your request {id} for {role} has {have} of {need} approvals"))
}

pub fn breakglass(engineer: &str, duration: &str, justification: &str) -> String {
    subject(&format!(
        "Break-glass: {engineer} activated emergency access for {duration}: {justification}"
    ))
}

pub fn reminder(role: &str, id: i64, end: &str) -> String {
    subject(&format!(
        "Your {role} access (request {id}) ends in 10 minutes, at {end}"
    ))
}

/// Whether the 10-minute reminder is due for access ending at `end`.
pub fn reminder_due(end: Millis, now: Millis, reminded: bool) -> bool {
    !reminded && now >= end - REMIND_BEFORE && now < end
}

/// When to try again after `attempts` failed deliveries (30 s, doubling);
/// `None` once it is time to give up.
pub fn next_attempt(attempts: i64, now: Millis) -> Option<Millis> {
    (attempts < MAX_ATTEMPTS).then(|| now + 30 * SECOND * (1 << attempts.clamp(0, 10)))
}

/// The JSON a Slack incoming webhook (and compatible chat tools) accepts.
/// `&`, `<` and `>` in the subject are escaped as Slack asks, so text
/// someone wrote cannot become a link or an @channel mention.
pub fn slack_body(subject: &str, url: &str) -> String {
    let text = subject.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    json!({ "text": format!("{text} <{url}|Open in Gatehouse>") }).to_string()
}

pub fn email_body(subject: &str, url: &str) -> String {
    format!("{subject}\n\nOpen in Gatehouse: {url}\n\nYou receive this because of your role in Gatehouse.\n")
}

/// The message that carries an invitation link to the invitee. The link is
/// the only way in: it goes to the invitee's own address, never to the
/// administrator who onboarded them.
pub fn invitation(name: &str, link: &str, valid_until: &str) -> (String, String) {
    (
        subject(&format!("{name}, you are invited to Gatehouse")),
        format!(
            "Your company invites you to Gatehouse, where access to customer data is granted and recorded.\n\n\
             Choose your password here (the link works once, until {valid_until}):\n\n{link}\n\n\
             You will then set up an authenticator app. If you did not expect this, tell your administrator.\n"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invitation_carries_its_link_on_a_line_of_its_own() {
        let (subject, body) = invitation(
            "Jonas\r\nBcc: x@example.com",
            "https://g.example/invite?token=abc",
            "3 Jan 2026 10:00 UTC",
        );
        assert_eq!(subject, "Jonas Bcc: x@example.com, you are invited to Gatehouse");
        assert!(
            body.lines().any(|l| l == "https://g.example/invite?token=abc"),
            "{body}"
        );
        assert!(body.contains("until 3 Jan 2026 10:00 UTC"));
    }

    #[test]
    fn subjects_are_one_clean_line() {
        assert_eq!(subject("a\r\nBcc: x@example.com\tb"), "a Bcc: x@example.com b");
        assert_eq!(subject(&"x".repeat(400)).chars().count(), 300);
        let s = requested(
            "Jonas Becker",
            "Support with customer PII",
            "1 hour",
            "SUP-1234",
            &["1042".into()],
            false,
        );
        assert_eq!(
            s,
            "Jonas Becker asks for Support with customer PII for 1 hour (SUP-1234, only customers 1042): \
            waiting for your approval"
        );
        assert!(requested("J", "R", "1 hour", "SUP-1", &[], true).contains("asks for an extension of R"));
        assert_eq!(
            decided("R", 7, "approved", Some(("a", "b")), None),
            "Your request 7 for R was approved from a to b"
        );
        assert_eq!(
            decided("R", 7, "denied", None, Some("use the redacted view")),
            "Your request 7 for R was denied: use the redacted view"
        );
    }

    #[test]
    fn the_reminder_is_due_in_the_last_ten_minutes_once() {
        let end = 1_000_000_000;
        assert!(!reminder_due(end, end - REMIND_BEFORE - 1, false));
        assert!(reminder_due(end, end - REMIND_BEFORE, false));
        assert!(reminder_due(end, end - 1, false));
        assert!(!reminder_due(end, end, false), "ended: no reminder");
        assert!(!reminder_due(end, end - 1, true), "once");
    }

    #[test]
    fn delivery_backs_off_then_gives_up() {
        assert_eq!(next_attempt(0, 0), Some(30 * SECOND));
        assert_eq!(next_attempt(1, 0), Some(60 * SECOND));
        assert_eq!(next_attempt(MAX_ATTEMPTS - 1, 0), Some(30 * SECOND * 32));
        assert_eq!(next_attempt(MAX_ATTEMPTS, 0), None);
    }

    #[test]
    fn chat_messages_are_slack_json() {
        let v: serde_json::Value =
            serde_json::from_str(&slack_body("Hello \"there\"", "https://g.example/requests")).unwrap();
        assert_eq!(
            v["text"],
            "Hello \"there\" <https://g.example/requests|Open in Gatehouse>"
        );
        let v: serde_json::Value = serde_json::from_str(&slack_body(
            "fix <!channel> & <http://evil.example|here>",
            "https://g.example/r",
        ))
        .unwrap();
        assert_eq!(
            v["text"],
            "fix &lt;!channel&gt; &amp; &lt;http://evil.example|here&gt; <https://g.example/r|Open in Gatehouse>"
        );
    }
}
