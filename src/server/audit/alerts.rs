//! Anomaly alerts: a job reads new audit events in order, asks the rules in
//! domain::alerts, and stores each alert together with an `alert.raised`
//! event, in the same transaction that moves its cursor, so every event is
//! judged exactly once. Administrators and auditors see open alerts and
//! acknowledge them with a comment (recorded too).

use super::log;
use crate::domain::actions::Action;
use crate::domain::{
    alerts::{self, Counts, CustomerWindows, Rule, CLOCK_MARGIN, CUSTOMER_WINDOW},
    audit::{Event, NewEvent, Outcome},
};
use crate::dto::AlertView;
use crate::errors::AppError;
use crate::server::{
    platform::{
        db::{opt_text, text, WriteTx},
        leases, names, outbound,
        request::RequestCtx,
        time::format_time,
    },
    state::AppState,
};
use futures::TryStreamExt;
use serde_json::json;
use sqlx::Row;

/// Events judged per pass. Each pass ends in one write transaction (the
/// cursor, and any alerts), so passes of 500 cost about 14 commits a second
/// at 7,000 events/s, competing with ingestion, and twenty of them per
/// 2-second tick capped the job at 5,000 events/s (docs/benchmarks.md,
/// run D). About 5 MB of events are held at once.
const BATCH: i64 = 5_000;

/// The first event after `t` (by append time, which grows with `seq`), at
/// most `hi`: a binary search over the primary key.
async fn first_seq_after(pool: &sqlx::AnyPool, t: i64, hi: i64) -> Result<i64, sqlx::Error> {
    let (mut lo, mut hi) = (1_i64, hi);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let at: Option<i64> = sqlx::query("SELECT at FROM audit_events WHERE seq = ?")
            .bind(mid)
            .fetch_optional(pool)
            .await?
            .map(|r| r.try_get("at"))
            .transpose()?;
        match at {
            Some(at) if at > t => hi = mid,
            _ => lo = mid + 1,
        }
    }
    Ok(lo)
}

/// Judges up to `BATCH` events after the cursor; returns (events, alerts).
/// The events are read and judged without the write lock (they never
/// change, and every count only looks at events up to the one judged); the
/// lock is taken only to store the alerts and move the cursor, and if
/// another process moved it meanwhile, nothing is stored.
async fn scan_batch(st: &AppState) -> Result<(usize, usize), sqlx::Error> {
    let t = &st.config.alerts;
    let pool = st.db.pool();
    let last: i64 = sqlx::query("SELECT last_seq FROM alert_cursor WHERE id = 1")
        .fetch_one(pool)
        .await?
        .try_get("last_seq")?;
    let sql = format!(
        "SELECT {} FROM audit_events WHERE seq > ? ORDER BY seq LIMIT ?",
        log::COLUMNS
    );
    let rows = sqlx::query(&sql).bind(last).bind(BATCH).fetch_all(pool).await?;
    let events: Vec<Event> = rows.iter().map(log::event_from_row).collect::<Result<_, _>>()?;
    let Some(newest) = events.last().map(|e| e.seq) else {
        return Ok((0, 0));
    };
    let mut guard = st.alert_windows.lock().await;
    let windows = match guard.as_mut() {
        Some(w) if w.through() == Some(last) => w,
        _ => guard.insert(rebuild_windows(st, last).await?),
    };
    // Until every event of this batch is judged the windows are not whole:
    // an error half-way makes the next run rebuild them.
    windows.begin();
    let mut raised = Vec::new();
    let mut closing = Vec::new();
    for e in &events {
        if let Some((rule, employee)) = alerts::closes(e) {
            closing.push((e.seq, rule, employee));
        }
        let mut counts = Counts::default();
        if let Some((employee, customer)) = alerts::customer_access(e) {
            (counts.distinct_customers, counts.customer_is_new) = windows.observe(employee, &customer, e.at);
        }
        if let Some(user) = alerts::failed_signin(e) {
            let [signin, code, recovery] = alerts::FAILED_SIGNIN;
            let n: i64 = sqlx::query(
                "SELECT COUNT(*) AS n FROM audit_events WHERE seq <= ? AND at > ? AND outcome = 'failure' \
                 AND action IN (?, ?, ?) AND target_type = 'user' AND target_id = ?",
            )
            .bind(e.seq)
            .bind(e.at - t.failed_window)
            .bind(signin.id())
            .bind(code.id())
            .bind(recovery.id())
            .bind(user.to_string())
            .fetch_one(pool)
            .await?
            .try_get("n")?;
            counts.failed_signins = n as u32;
        }
        for a in alerts::evaluate(e, counts, t) {
            raised.push((e.seq, a));
        }
    }

    // Should the batch not be stored below, the windows are ahead of the
    // cursor and the next run rebuilds them. (`guard` is held to the end,
    // so two runs never judge the same events in this process.)
    windows.finish(newest, events.iter().map(|e| e.at).max().unwrap_or(0));
    let now = st.clock.now();
    let mut tx = st.db.begin_write().await?;
    let sql = format!("SELECT last_seq FROM alert_cursor WHERE id = 1{}", tx.for_update());
    let current: i64 = sqlx::query(&sql).fetch_one(tx.conn()).await?.try_get("last_seq")?;
    if current != last {
        return Ok((events.len(), 0));
    }
    let at_of: std::collections::HashMap<i64, i64> = events.iter().map(|e| (e.seq, e.at)).collect();
    let mut open: std::collections::HashMap<(Rule, Option<i64>), Open> = std::collections::HashMap::new();
    let mut events_out = Vec::new();
    let mut new_alerts = Vec::new();
    for (seq, a) in &raised {
        let seen_at = at_of.get(seq).copied().unwrap_or(now);
        let key = (a.rule, a.employee_id);
        if let std::collections::hash_map::Entry::Vacant(slot) = open.entry(key) {
            if let Some(found) = open_alert(&mut tx, a.rule, a.employee_id).await? {
                slot.insert(found);
            }
        }
        if let Some(o) = open.get_mut(&key) {
            // An open alert of this rule about this employee: count on it.
            o.count += 1;
            o.last_seen_at = o.last_seen_at.max(seen_at);
            o.last_seq = *seq;
            o.seqs.push(*seq);
            continue;
        }
        let id = tx
            .insert_returning_id(
                sqlx::query(
                    "INSERT INTO alerts (rule, employee_id, event_seq, summary, raised_at, last_seen_at, last_event_seq) \
                     VALUES (?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(a.rule.id())
                .bind(a.employee_id)
                .bind(*seq)
                .bind(&a.summary)
                .bind(now)
                .bind(seen_at)
                .bind(*seq),
            )
            .await?;
        new_alerts.push((a.rule, a.employee_id, a.summary.clone()));
        open.insert(
            key,
            Open {
                id,
                stored: 1,
                count: 1,
                last_seen_at: seen_at,
                last_seq: *seq,
                seqs: vec![*seq],
            },
        );
        let mut ev = NewEvent::new(Action::AlertRaised, Outcome::Success, Default::default())
            .reason(a.summary.clone())
            .details(json!({ "alert_id": id, "rule": a.rule.id(), "event_seq": seq, "employee_id": a.employee_id }));
        ev = match a.employee_id {
            Some(u) => ev.target("user", u),
            None => ev.target("alert", id),
        };
        events_out.push(ev);
    }
    for o in open.values() {
        store_matches(&mut tx, o).await?;
    }
    for (seq, rule, employee) in closing {
        let at = at_of.get(&seq).copied().unwrap_or(now);
        events_out.extend(close(&mut tx, rule, employee, seq, at).await?);
    }
    sqlx::query("UPDATE alert_cursor SET last_seq = ? WHERE id = 1")
        .bind(newest)
        .execute(tx.conn())
        .await?;
    log::append(&mut tx, now, events_out).await?;
    tx.commit().await?;
    for (rule, employee_id, summary) in &new_alerts {
        tracing::warn!(rule = rule.id(), employee_id = ?employee_id, summary = %summary, "anomaly alert raised");
    }
    Ok((events.len(), new_alerts.len()))
}

/// Closes the open alert of `rule` about `employee` raised before event
/// `seq`, which ended its cause (no one acknowledges it: Gatehouse does,
/// naming the event); the event recording that, if one was open.
async fn close(
    tx: &mut WriteTx,
    rule: Rule,
    employee: i64,
    seq: i64,
    at: i64,
) -> Result<Option<NewEvent>, sqlx::Error> {
    let Some(o) = open_alert(tx, rule, Some(employee)).await? else {
        return Ok(None);
    };
    if o.last_seq >= seq {
        return Ok(None);
    }
    let comment = format!("Closed by Gatehouse: the end of access was confirmed (event {seq}).");
    sqlx::query("UPDATE alerts SET acknowledged_at = ?, ack_comment = ? WHERE id = ? AND acknowledged_at IS NULL")
        .bind(at)
        .bind(&comment)
        .bind(o.id)
        .execute(tx.conn())
        .await?;
    Ok(Some(
        NewEvent::new(Action::AlertAcknowledged, Outcome::Success, Default::default())
            .target("alert", o.id)
            .reason(comment)
            .details(json!({
                "alert_id": o.id,
                "rule": rule.id(),
                "closed_by_event": seq,
                "before": { "acknowledged": false },
                "after": { "acknowledged": true },
            })),
    ))
}

/// An open alert as this pass found it and what the pass adds to it.
struct Open {
    id: i64,
    /// Its count as stored before this pass (1 for one raised in it).
    stored: u64,
    count: u64,
    last_seen_at: i64,
    last_seq: i64,
    /// Events of this pass that count on it.
    seqs: Vec<i64>,
}

/// The open alert of `rule` about `employee`, locked until the pass commits
/// (an acknowledgement waits, so no match is counted on a closed alert).
async fn open_alert(tx: &mut WriteTx, rule: Rule, employee: Option<i64>) -> Result<Option<Open>, sqlx::Error> {
    let who = if employee.is_some() {
        "employee_id = ?"
    } else {
        "employee_id IS NULL"
    };
    let sql = format!(
        "SELECT id, occurrences, last_seen_at, last_event_seq FROM alerts \
         WHERE rule = ? AND {who} AND acknowledged_at IS NULL ORDER BY id DESC LIMIT 1{}",
        tx.for_update()
    );
    let mut q = sqlx::query(&sql).bind(rule.id());
    if let Some(e) = employee {
        q = q.bind(e);
    }
    let Some(r) = q.fetch_optional(tx.conn()).await? else {
        return Ok(None);
    };
    let stored = r.try_get::<i64, _>("occurrences")?.max(0) as u64;
    Ok(Some(Open {
        id: r.try_get("id")?,
        stored,
        count: stored,
        last_seen_at: r.try_get::<Option<i64>, _>("last_seen_at")?.unwrap_or(0),
        last_seq: r.try_get::<Option<i64>, _>("last_event_seq")?.unwrap_or(0),
        seqs: Vec::new(),
    }))
}

/// Writes what this pass counted on an alert: its count, last-seen time
/// and event, and its list of events. (A webhook call falls due by the
/// count: see `deliver`; a new one starts with fresh attempts.)
async fn store_matches(tx: &mut WriteTx, o: &Open) -> Result<(), sqlx::Error> {
    for chunk in o.seqs.chunks(500) {
        let rows = vec!["(?, ?)"; chunk.len()].join(", ");
        let sql = format!("INSERT INTO alert_events (alert_id, event_seq) VALUES {rows}");
        let mut q = sqlx::query(&sql);
        for seq in chunk {
            q = q.bind(o.id).bind(*seq);
        }
        q.execute(tx.conn()).await?;
    }
    if o.count == o.stored {
        return Ok(());
    }
    let again = i64::from(alerts::renotify(o.stored, o.count));
    sqlx::query(
        "UPDATE alerts SET occurrences = ?, last_seen_at = ?, last_event_seq = ?, \
         webhook_attempts = CASE WHEN ? = 1 THEN 0 ELSE webhook_attempts END WHERE id = ?",
    )
    .bind(o.count as i64)
    .bind(o.last_seen_at)
    .bind(o.last_seq)
    .bind(again)
    .bind(o.id)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// The customer windows as they stood after event `through`: the
/// customer accesses of the last window before it, read in order (streamed,
/// so a busy hour does not load at once).
async fn rebuild_windows(st: &AppState, through: i64) -> Result<CustomerWindows, sqlx::Error> {
    let mut windows = CustomerWindows::new(through);
    let pool = st.db.pool();
    let Some(at) = sqlx::query("SELECT at FROM audit_events WHERE seq = ?")
        .bind(through)
        .fetch_optional(pool)
        .await?
    else {
        return Ok(windows);
    };
    let through_at: i64 = at.try_get("at")?;
    let lower = first_seq_after(pool, through_at - CUSTOMER_WINDOW - CLOCK_MARGIN, through).await?;
    windows.begin();
    let sql = format!(
        "SELECT {} FROM audit_events WHERE seq >= ? AND seq <= ? AND customer_id IS NOT NULL ORDER BY seq",
        log::COLUMNS
    );
    let mut rows = sqlx::query(&sql).bind(lower).bind(through).fetch(pool);
    let mut newest_at = through_at;
    while let Some(row) = rows.try_next().await? {
        let e = log::event_from_row(&row)?;
        if let Some((employee, customer)) = alerts::customer_access(&e) {
            windows.observe(employee, &customer, e.at);
            newest_at = newest_at.max(e.at);
        }
    }
    windows.finish(through, newest_at);
    Ok(windows)
}

/// The job: judges every event since the last run (up to 20 batches).
pub async fn scan(st: &AppState) -> Result<usize, sqlx::Error> {
    let mut total = 0;
    for _ in 0..20 {
        let (events, raised) = scan_batch(st).await?;
        total += raised;
        if (events as i64) < BATCH {
            break;
        }
    }
    Ok(total)
}

/// Open alerts first, newest first; the latest 100 acknowledged after them.
pub async fn list(st: &AppState) -> Result<Vec<AlertView>, AppError> {
    let rows = sqlx::query(
        "SELECT id, rule, employee_id, event_seq, summary, raised_at, occurrences, last_seen_at, last_event_seq, \
         acknowledged_by, acknowledged_at, ack_comment FROM alerts \
         ORDER BY CASE WHEN acknowledged_at IS NULL THEN 0 ELSE 1 END, id DESC LIMIT 200",
    )
    .fetch_all(st.db.pool())
    .await?;
    let names = names::names(st.db.pool()).await?;
    rows.iter()
        .map(|r| {
            Ok(AlertView {
                id: r.try_get("id")?,
                rule: text(r, "rule")?,
                employee: names::opt_name(&names, r.try_get("employee_id")?),
                event_seq: r.try_get("event_seq")?,
                summary: text(r, "summary")?,
                raised_at: format_time(r.try_get("raised_at")?),
                count: r.try_get("occurrences")?,
                last_seen_at: format_time(
                    r.try_get::<Option<i64>, _>("last_seen_at")?
                        .unwrap_or(r.try_get("raised_at")?),
                ),
                last_event_seq: r
                    .try_get::<Option<i64>, _>("last_event_seq")?
                    .unwrap_or(r.try_get("event_seq")?),
                acknowledged_by: names::opt_name(&names, r.try_get("acknowledged_by")?),
                acknowledged_at: r.try_get::<Option<i64>, _>("acknowledged_at")?.map(format_time),
                comment: opt_text(r, "ack_comment")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

/// Acknowledges an open alert with a comment; recorded with the alert.
/// An alert about the acknowledging employee is refused (and recorded).
pub async fn acknowledge(
    st: &AppState,
    ctx: &RequestCtx,
    user_id: i64,
    id: i64,
    comment: &str,
) -> Result<(), AppError> {
    let comment = comment.trim();
    if comment.chars().count() < 3 || comment.chars().count() > 1000 {
        return Err(AppError::Validation(
            "Say in a few words (3 to 1,000 characters) what was checked.".into(),
        ));
    }
    let now = st.clock.now();
    let mut tx = st.db.begin_write().await?;
    let sql = format!(
        "SELECT rule, employee_id, acknowledged_at FROM alerts WHERE id = ?{}",
        tx.for_update()
    );
    let row = sqlx::query(&sql)
        .bind(id)
        .fetch_optional(tx.conn())
        .await?
        .ok_or(AppError::NotFound)?;
    if row.try_get::<Option<i64>, _>("employee_id")? == Some(user_id) {
        // Nobody closes the case about themselves; the refusal is recorded.
        drop(tx);
        let e = AppError::Refused("This alert is about you; someone else must acknowledge it.".into());
        let event = NewEvent::new(Action::AlertAcknowledged, Outcome::Denied, ctx.actor())
            .target("alert", id)
            .reason(e.to_string());
        st.recorder.record(now, event).await?;
        return Err(e);
    }
    if row.try_get::<Option<i64>, _>("acknowledged_at")?.is_some() {
        return Err(AppError::Conflict("This alert was already acknowledged.".into()));
    }
    let rule = text(&row, "rule")?;
    sqlx::query("UPDATE alerts SET acknowledged_by = ?, acknowledged_at = ?, ack_comment = ? WHERE id = ? AND acknowledged_at IS NULL")
        .bind(user_id)
        .bind(now)
        .bind(comment)
        .bind(id)
        .execute(tx.conn())
        .await?;
    log::append(
        &mut tx,
        now,
        vec![NewEvent::new(Action::AlertAcknowledged, Outcome::Success, ctx.actor())
            .target("alert", id)
            .reason(comment.to_owned())
            .details(json!({
                "alert_id": id,
                "rule": Rule::parse(&rule).map(Rule::id).unwrap_or("unknown"),
                "before": { "acknowledged": false },
                "after": { "acknowledged": true },
            }))],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Attempts per alert before delivery is given up (each failure is logged).
const MAX_ATTEMPTS: i64 = 5;

/// The signature header value: `t=<ms>,v1=<hex HMAC-SHA256 of "<ms>.<body>">`.
pub fn signature(secret: &[u8], timestamp: i64, body: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(format!("{timestamp}.{body}").as_bytes());
    format!("t={timestamp},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// Posts alerts to the configured webhook, oldest first, at most 20 a
/// run: each new alert, and an open one again when its count has crossed
/// 10, 100 or 1,000 since the last call (with the count); a failure is retried on later runs up to `MAX_ATTEMPTS`.
/// Redirects are not followed (the host allow-list is checked once, at
/// start, against the configured URL). Returns how many were delivered.
pub async fn deliver(st: &AppState) -> Result<usize, sqlx::Error> {
    use secrecy::ExposeSecret;
    let Some(hook) = st.config.webhook.as_ref() else {
        return Ok(0);
    };
    // Due: never sent, or the count crossed a mark since the last call.
    let crossed: Vec<String> = alerts::RENOTIFY_AT
        .iter()
        .map(|m| format!("(webhook_sent_count < {m} AND occurrences >= {m})"))
        .collect();
    let sql = format!(
        "SELECT id, rule, employee_id, event_seq, summary, raised_at, occurrences, last_seen_at, last_event_seq, \
         webhook_claimed_until, webhook_sent_count, webhook_attempts FROM alerts \
         WHERE (webhook_sent_count = 0 OR {}) AND webhook_attempts < ? AND webhook_claimed_until < ? ORDER BY id LIMIT 20",
        crossed.join(" OR ")
    );
    let rows = sqlx::query(&sql)
        .bind(MAX_ATTEMPTS)
        .bind(st.clock.now())
        .fetch_all(st.db.pool())
        .await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let client = outbound::webhook_client().map_err(|e| sqlx::Error::Protocol(format!("webhook client: {e}")))?;
    let mut delivered = 0;
    for r in &rows {
        let id: i64 = r.try_get("id")?;
        let count: i64 = r.try_get("occurrences")?;
        // Claimed first, as it was read: another server sending the same
        // call skips it, also after this one has sent it and let go.
        let claimed = st
            .db
            .write(
                sqlx::query(
                    "UPDATE alerts SET webhook_claimed_until = ? WHERE id = ? AND webhook_claimed_until = ? \
             AND webhook_sent_count = ? AND webhook_attempts = ?",
                )
                .bind(st.clock.now() + leases::CLAIM)
                .bind(id)
                .bind(r.try_get::<i64, _>("webhook_claimed_until")?)
                .bind(r.try_get::<i64, _>("webhook_sent_count")?)
                .bind(r.try_get::<i64, _>("webhook_attempts")?),
            )
            .await?
            .rows_affected();
        if claimed != 1 {
            continue;
        }
        let body = json!({
            "alert_id": id,
            "rule": text(r, "rule")?,
            "employee_id": r.try_get::<Option<i64>, _>("employee_id")?,
            "event_seq": r.try_get::<i64, _>("event_seq")?,
            "summary": text(r, "summary")?,
            "raised_at": r.try_get::<i64, _>("raised_at")?,
            "count": count,
            "last_seen_at": r.try_get::<Option<i64>, _>("last_seen_at")?,
            "last_event_seq": r.try_get::<Option<i64>, _>("last_event_seq")?,
        })
        .to_string();
        let now = st.clock.now();
        let signed = signature(hook.secret.expose_secret().as_bytes(), now, &body);
        // The same on every attempt at this call (raised, or the mark it
        // crossed), however the count grew meanwhile: receivers drop repeats.
        let mark = alerts::webhook_mark(count.max(0) as u64);
        let delivery = format!("alert-{id}-{mark}.{}", st.audit_keys.current().installation());
        let headers = [("x-gatehouse-signature", signed), ("x-gatehouse-delivery", delivery)];
        let sent = outbound::post_json(&client, hook.url.as_str(), &headers, body).await;
        match sent {
            Ok(()) => {
                st.db
                    .write(
                        sqlx::query(
                            "UPDATE alerts SET webhook_delivered_at = ?, webhook_sent_count = ?, \
                     webhook_attempts = webhook_attempts + 1, webhook_claimed_until = 0 WHERE id = ?",
                        )
                        .bind(now)
                        .bind(count)
                        .bind(id),
                    )
                    .await?;
                delivered += 1;
            }
            Err(why) => {
                tracing::warn!(alert_id = id, problem = %why, "alert webhook delivery failed");
                st.db.write(sqlx::query(
                    "UPDATE alerts SET webhook_attempts = webhook_attempts + 1, webhook_claimed_until = 0 WHERE id = ?",
                )
                .bind(id))
                .await?;
            }
        }
    }
    Ok(delivered)
}
