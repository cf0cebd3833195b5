//! Notifications as stored and delivered: in-app rows (the badge and the
//! list), and an outbox for the chat webhook and email, written in the
//! caller's transaction and delivered by a job with retries.

use crate::domain::{
    notify::{self, MAX_ATTEMPTS},
    permissions::{Permission, PermissionSet},
    Millis,
};
use crate::dto::NotificationView;
use crate::errors::AppError;
use crate::server::{
    access::{authz, elevation, roles},
    platform::{
        db::{text, WriteTx},
        leases, outbound,
        time::format_time,
    },
    state::AppState,
};
use sqlx::Row;

/// Someone to notify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub id: i64,
    pub email: String,
}

/// Active employees whose permissions at `now` pass `wanted`.
async fn active_where(
    st: &AppState,
    now: Millis,
    wanted: impl Fn(i64, PermissionSet) -> bool,
) -> Result<Vec<Recipient>, sqlx::Error> {
    let rows = sqlx::query("SELECT id, email FROM users WHERE status = 'active' ORDER BY id")
        .fetch_all(st.db.pool())
        .await?;
    let mut out = Vec::new();
    for r in &rows {
        let id: i64 = r.try_get("id")?;
        let perms = authz::permissions_at(st.db.pool(), id, now).await?;
        if wanted(id, perms) {
            out.push(Recipient {
                id,
                email: text(r, "email")?,
            });
        }
    }
    Ok(out)
}

fn auditor(p: PermissionSet) -> bool {
    p.contains(Permission::AuditRead) || p.contains(Permission::AuditExport)
}

/// Who may approve a request: its named approvers, or holders of
/// `requests:approve`; never the requester, never an auditor.
pub async fn approvers(
    st: &AppState,
    requester: i64,
    named: &[i64],
    now: Millis,
) -> Result<Vec<Recipient>, sqlx::Error> {
    active_where(st, now, |id, p| {
        id != requester
            && !auditor(p)
            && if named.is_empty() {
                p.contains(Permission::RequestsApprove)
            } else {
                named.contains(&id)
            }
    })
    .await
}

/// Administrators and auditors (break-glass), except `but`.
pub async fn admins_and_auditors(st: &AppState, but: i64, now: Millis) -> Result<Vec<Recipient>, sqlx::Error> {
    active_where(st, now, |id, p| {
        id != but && (p.contains(Permission::EmployeesManage) || auditor(p))
    })
    .await
}

/// One employee (read on the caller's connection, so inside its transaction).
pub async fn person<'e>(
    ex: impl sqlx::Executor<'e, Database = sqlx::Any>,
    id: i64,
) -> Result<Vec<Recipient>, sqlx::Error> {
    let row = sqlx::query("SELECT id, email FROM users WHERE id = ?")
        .bind(id)
        .fetch_optional(ex)
        .await?;
    row.map(|r| {
        Ok(Recipient {
            id: r.try_get("id")?,
            email: text(&r, "email")?,
        })
    })
    .into_iter()
    .collect()
}

/// Writes the notification for each recipient, in the caller's
/// transaction: in-app always, one email each when SMTP is configured,
/// and one message to the chat webhook when that is.
pub async fn queue(
    tx: &mut WriteTx,
    st: &AppState,
    now: Millis,
    to: &[Recipient],
    subject: &str,
    link: &str,
) -> Result<(), sqlx::Error> {
    let subject = notify::subject(subject);
    let url = st
        .config
        .public_url
        .join(link)
        .map(|u| u.to_string())
        .unwrap_or_else(|_| link.to_owned());
    for r in to {
        sqlx::query("INSERT INTO notifications (user_id, subject, link, created_at) VALUES (?, ?, ?, ?)")
            .bind(r.id)
            .bind(&subject)
            .bind(link)
            .bind(now)
            .execute(tx.conn())
            .await?;
        if st.config.smtp.is_some() {
            outbox(
                tx,
                "email",
                &r.email,
                &subject,
                &notify::email_body(&subject, &url),
                now,
            )
            .await?;
        }
    }
    if st.config.notify_webhook.is_some() && !to.is_empty() {
        outbox(tx, "webhook", "", &subject, &notify::slack_body(&subject, &url), now).await?;
    }
    Ok(())
}

/// Queues the invitation link for the invitee's own address, in the
/// caller's transaction. The link is a credential: the outbox keeps it only
/// until the message is sent or given up.
pub async fn queue_invitation(
    tx: &mut WriteTx,
    now: Millis,
    email: &str,
    name: &str,
    link: &str,
    valid_until: &str,
) -> Result<(), sqlx::Error> {
    let (subject, body) = notify::invitation(name, link, valid_until);
    outbox(tx, INVITATION, email, &subject, &body, now).await
}

/// The outbox channel of invitation emails (their body is a credential).
const INVITATION: &str = "invitation";

async fn outbox(
    tx: &mut WriteTx,
    channel: &str,
    recipient: &str,
    subject: &str,
    body: &str,
    now: Millis,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO notification_outbox (channel, recipient, subject, body, created_at, next_attempt_at) \
        VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(channel)
    .bind(recipient)
    .bind(subject)
    .bind(body)
    .bind(now)
    .bind(now)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// The signed-in employee's notifications, newest first.
pub async fn mine(st: &AppState, user_id: i64) -> Result<Vec<NotificationView>, AppError> {
    let rows = sqlx::query(
        "SELECT id, subject, link, created_at, read_at FROM notifications WHERE user_id = ? ORDER BY id DESC LIMIT 50",
    )
    .bind(user_id)
    .fetch_all(st.db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(NotificationView {
                id: r.try_get("id")?,
                subject: text(r, "subject")?,
                link: text(r, "link")?,
                at: format_time(r.try_get("created_at")?),
                unread: r.try_get::<Option<i64>, _>("read_at")?.is_none(),
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

pub async fn unread(st: &AppState, user_id: i64) -> Result<i64, sqlx::Error> {
    sqlx::query("SELECT COUNT(*) AS n FROM notifications WHERE user_id = ? AND read_at IS NULL")
        .bind(user_id)
        .fetch_one(st.db.pool())
        .await?
        .try_get("n")
}

pub async fn mark_read(st: &AppState, user_id: i64) -> Result<(), AppError> {
    st.db
        .write(
            sqlx::query("UPDATE notifications SET read_at = ? WHERE user_id = ? AND read_at IS NULL")
                .bind(st.clock.now())
                .bind(user_id),
        )
        .await?;
    Ok(())
}

/// Reminds requesters 10 minutes before their active access ends (once).
pub async fn remind(st: &AppState) -> Result<usize, sqlx::Error> {
    let now = st.clock.now();
    let rows = sqlx::query(
        "SELECT id, requester_id, role, window_end FROM elevation_requests WHERE state = 'approved' AND reminded_at IS NULL \
         AND window_start <= ? AND window_end > ? AND window_end <= ? LIMIT 500",
    )
    .bind(now)
    .bind(now)
    .bind(now + notify::REMIND_BEFORE)
    .fetch_all(st.db.pool())
    .await?;
    let catalogue = roles::all_roles(st.db.pool()).await?;
    let mut n = 0;
    for r in &rows {
        let id: i64 = r.try_get("id")?;
        let end: i64 = r.try_get("window_end")?;
        if !notify::reminder_due(end, now, false) {
            continue;
        }
        let role = text(r, "role")?;
        let role_name = catalogue
            .iter()
            .find(|c| c.key == role)
            .map(|c| c.name.clone())
            .unwrap_or(role);
        let to = person(st.db.pool(), r.try_get("requester_id")?).await?;
        let mut tx = st.db.begin_write().await?;
        if elevation::mark_reminded(&mut tx, id, now).await? {
            queue(
                &mut tx,
                st,
                now,
                &to,
                &notify::reminder(&role_name, id, &format_time(end)),
                "/requests",
            )
            .await?;
            n += 1;
        }
        tx.commit().await?;
    }
    Ok(n)
}

/// Sends due outbox messages (at most 20 a run): the webhook without
/// following redirects, email over SMTP. A failure is retried later with a
/// growing delay, then given up; only the kind of failure is logged.
///
/// At least once: a message sent just before a crash, whose "delivered"
/// mark did not commit, is sent again on the next run. Each carries an id
/// that stays the same on every attempt (`delivery_id`: the email's
/// Message-ID, the webhook's X-Gatehouse-Delivery header), so receivers can
/// drop repeats.
pub async fn deliver(st: &AppState) -> Result<usize, sqlx::Error> {
    if st.config.notify_webhook.is_none() && st.config.smtp.is_none() {
        return Ok(0);
    }
    let now = st.clock.now();
    let rows = sqlx::query(
        "SELECT id, channel, recipient, subject, body, attempts, next_attempt_at FROM notification_outbox \
         WHERE delivered_at IS NULL AND gave_up_at IS NULL AND next_attempt_at <= ? ORDER BY id LIMIT 20",
    )
    .bind(now)
    .fetch_all(st.db.pool())
    .await?;
    let mut delivered = 0;
    for r in &rows {
        let id: i64 = r.try_get("id")?;
        let attempts: i64 = r.try_get("attempts")?;
        let channel = text(r, "channel")?;
        // Claimed first (its next attempt moved past the claim), so another
        // server sending at the same moment skips it; a server that dies
        // while sending leaves it to the others once the claim has passed.
        let claimed = st
            .db
            .write(
                sqlx::query(
                    "UPDATE notification_outbox SET next_attempt_at = ? WHERE id = ? AND next_attempt_at = ? \
             AND delivered_at IS NULL AND gave_up_at IS NULL",
                )
                .bind(st.clock.now() + leases::CLAIM)
                .bind(id)
                .bind(r.try_get::<i64, _>("next_attempt_at")?),
            )
            .await?
            .rows_affected();
        if claimed != 1 {
            continue;
        }
        let result = match channel.as_str() {
            "webhook" => post_webhook(st, id, &text(r, "body")?).await,
            "email" | INVITATION => {
                let to = text(r, "recipient")?;
                send_email(st, id, &to, &text(r, "subject")?, &text(r, "body")?).await
            }
            _ => Err("unknown channel".to_owned()),
        };
        let now = st.clock.now();
        match result {
            Ok(()) => {
                st.db
                    .write(
                        sqlx::query(
                            "UPDATE notification_outbox SET delivered_at = ?, attempts = attempts + 1 WHERE id = ?",
                        )
                        .bind(now)
                        .bind(id),
                    )
                    .await?;
                delivered += 1;
                if channel == INVITATION {
                    forget_body(st, id).await?;
                }
            }
            Err(problem) => {
                let next = notify::next_attempt(attempts + 1, now);
                let attempts = attempts + 1;
                tracing::warn!(outbox_id = id, channel = %channel, %problem, attempts, max = MAX_ATTEMPTS, "notification delivery failed");
                let q = sqlx::query(
                    "UPDATE notification_outbox SET attempts = attempts + 1, next_attempt_at = ?, gave_up_at = ? WHERE id = ?",
                )
                .bind(next.unwrap_or(now))
                .bind(next.is_none().then_some(now))
                .bind(id);
                st.db.write(q).await?;
                if channel == INVITATION && next.is_none() {
                    forget_body(st, id).await?;
                }
            }
        }
    }
    Ok(delivered)
}

/// Drops a sent (or given-up) invitation's text, which holds its link.
async fn forget_body(st: &AppState, id: i64) -> Result<(), sqlx::Error> {
    st.db
        .write(sqlx::query("UPDATE notification_outbox SET body = '' WHERE id = ?").bind(id))
        .await?;
    Ok(())
}

/// The id of outbox message `id`, the same on every attempt: unique to this
/// installation (its first audit signing key) and message.
pub fn delivery_id(st: &AppState, id: i64) -> String {
    format!("notification-{id}.{}", st.audit_keys.current().installation())
}

async fn post_webhook(st: &AppState, id: i64, body: &str) -> Result<(), String> {
    use secrecy::ExposeSecret;
    let Some(url) = st.config.notify_webhook.as_ref() else {
        return Err("no webhook configured".into());
    };
    let client = outbound::webhook_client()?;
    let delivery = delivery_id(st, id);
    outbound::post_json(
        &client,
        url.expose_secret(),
        &[("x-gatehouse-delivery", delivery)],
        body.to_owned(),
    )
    .await
}

async fn send_email(st: &AppState, id: i64, to: &str, subject: &str, body: &str) -> Result<(), String> {
    use lettre::{message::Mailbox, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
    use secrecy::ExposeSecret;
    let Some(smtp) = st.config.smtp.as_ref() else {
        return Err("no SMTP server configured".into());
    };
    let from: Mailbox = smtp
        .from
        .parse()
        .map_err(|_| "the sender address is invalid".to_owned())?;
    let to: Mailbox = to.parse().map_err(|_| "the recipient address is invalid".to_owned())?;
    let domain = st
        .config
        .public_url
        .host_str()
        .unwrap_or("gatehouse.invalid")
        .to_owned();
    let message = Message::builder()
        .message_id(Some(format!("<{}@{domain}>", delivery_id(st, id))))
        .from(from)
        .to(to)
        .subject(subject)
        .body(body.to_owned())
        .map_err(|_| "could not build the message".to_owned())?;
    let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(smtp.url.expose_secret())
        .map_err(|_| "the SMTP URL is invalid".to_owned())?
        .timeout(Some(std::time::Duration::from_secs(10)))
        .build();
    // The error's text can quote the server's reply; only its kind is kept.
    transport.send(message).await.map(|_| ()).map_err(|e| {
        if e.is_permanent() {
            "the SMTP server refused the message".to_owned()
        } else if e.is_transient() {
            "the SMTP server deferred the message".to_owned()
        } else {
            "could not reach the SMTP server".to_owned()
        }
    })
}
