//! The audit chain in the database: appends inside the caller's
//! transaction (the events exist if and only if the change they record is
//! committed), and reading events back.

use crate::domain::{
    audit::{Actor, Event, EventRef, NewEvent, Outcome},
    Millis,
};
use crate::server::platform::db::{opt_text, text, Backend, WriteTx};
use sqlx::Row;

pub const COLUMNS: &str = "seq, at, actor_user_id, actor_session, actor_ip, actor_ua, action, target_type, \
                       target_id, customer_id, outcome, reason, details, prev_hash, hash";

/// Appends events after the current head, in the caller's transaction: the
/// events exist if and only if the change they record is committed. The
/// head row is locked for the rest of the transaction, so concurrent
/// appends queue up and never fork the chain.
pub async fn append(tx: &mut WriteTx, at: Millis, events: Vec<NewEvent>) -> Result<Vec<Event>, sqlx::Error> {
    append_timed(tx, events.into_iter().map(|e| (at, e)).collect()).await
}

/// `append` for events that each carry their own time.
pub(super) async fn append_timed(tx: &mut WriteTx, events: Vec<(Millis, NewEvent)>) -> Result<Vec<Event>, sqlx::Error> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT last_seq, last_hash FROM audit_head WHERE id = 1{}",
        tx.for_update()
    );
    let head = sqlx::query(&sql).fetch_one(tx.conn()).await?;
    let mut seq: i64 = head.try_get("last_seq")?;
    let mut prev: String = text(&head, "last_hash")?;

    let mut sealed = Vec::with_capacity(events.len());
    let mut grant_refs: Vec<(i64, i64)> = Vec::new();
    for (at, e) in events {
        seq += 1;
        if let Some(g) = e.details.get("grant_id").and_then(serde_json::Value::as_i64) {
            grant_refs.push((g, seq));
        }
        let action = crate::domain::actions::Action::parse(&e.action).map_or("other", |a| a.id());
        tx.count_event(action, e.outcome.as_str());
        let event = e.seal(seq, at, &prev);
        prev.clone_from(&event.hash);
        sealed.push(event);
    }
    if tx.backend == Backend::Sqlite && !sealed.iter().any(has_nul) {
        insert_sqlite_json(tx, &sealed).await?;
    } else {
        insert_bound(tx, &sealed).await?;
    }
    // The index from a grant to what was done under it (the ticket view).
    for chunk in grant_refs.chunks(400) {
        let sql = format!(
            "INSERT INTO audit_grant_refs (grant_id, seq) VALUES {}",
            vec!["(?, ?)"; chunk.len()].join(", ")
        );
        let mut q = sqlx::query(&sql);
        for (g, s) in chunk {
            q = q.bind(*g).bind(*s);
        }
        q.execute(tx.conn()).await?;
    }
    sqlx::query("UPDATE audit_head SET last_seq = ?, last_hash = ? WHERE id = 1")
        .bind(seq)
        .bind(&prev)
        .execute(tx.conn())
        .await?;
    Ok(sealed)
}

/// Multi-row INSERTs with one bound value per column (MySQL, and SQLite
/// text SQLite's JSON functions could not carry).
async fn insert_bound(tx: &mut WriteTx, sealed: &[Event]) -> Result<(), sqlx::Error> {
    for chunk in sealed.chunks(500) {
        let mut sql = format!("INSERT INTO audit_events ({COLUMNS}) VALUES ");
        for i in 0..chunk.len() {
            if i > 0 {
                sql.push(',');
            }
            sql.push_str("(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
        }
        let mut q = sqlx::query(&sql);
        for e in chunk {
            q = q
                .bind(e.seq)
                .bind(e.at)
                .bind(e.actor.user_id)
                .bind(e.actor.session.clone())
                .bind(e.actor.ip.clone())
                .bind(e.actor.user_agent.clone())
                .bind(e.action.clone())
                .bind(e.target_type.clone())
                .bind(e.target_id.clone())
                .bind(e.customer_id.clone())
                .bind(e.outcome.as_str())
                .bind(e.reason.clone())
                .bind(e.details.clone())
                .bind(e.prev_hash.clone())
                .bind(e.hash.clone());
        }
        q.execute(tx.conn()).await?;
    }
    Ok(())
}

/// SQLite: the whole batch as one JSON array of rows, unpacked by SQLite
/// itself (`json_each`), instead of fifteen values bound per event through
/// the `Any` driver, which cost most of an append (see docs/benchmarks.md).
/// JSON strings, numbers and nulls come back as exactly the text, integers
/// and NULLs they were; `has_nul` keeps the one exception out.
async fn insert_sqlite_json(tx: &mut WriteTx, sealed: &[Event]) -> Result<(), sqlx::Error> {
    let rows: Vec<serde_json::Value> = sealed
        .iter()
        .map(|e| {
            serde_json::json!([
                e.seq,
                e.at,
                e.actor.user_id,
                e.actor.session,
                e.actor.ip,
                e.actor.user_agent,
                e.action,
                e.target_type,
                e.target_id,
                e.customer_id,
                e.outcome.as_str(),
                e.reason,
                e.details,
                e.prev_hash,
                e.hash,
            ])
        })
        .collect();
    let batch = serde_json::to_string(&rows).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        let columns = (0..15).map(|i| format!("value ->> {i}")).collect::<Vec<_>>().join(", ");
        format!("INSERT INTO audit_events ({COLUMNS}) SELECT {columns} FROM json_each(?) ORDER BY key")
    });
    let done = sqlx::query(SQL.as_str()).bind(batch).execute(tx.conn()).await?;
    if done.rows_affected() != sealed.len() as u64 {
        return Err(sqlx::Error::Protocol(format!(
            "audit append stored {} of {} events",
            done.rows_affected(),
            sealed.len()
        )));
    }
    Ok(())
}

/// Whether any text of the event holds a NUL character, which SQLite's JSON
/// functions would cut the text at.
fn has_nul(e: &Event) -> bool {
    let texts = [
        e.actor.session.as_deref(),
        e.actor.ip.as_deref(),
        e.actor.user_agent.as_deref(),
        Some(e.action.as_str()),
        e.target_type.as_deref(),
        e.target_id.as_deref(),
        e.customer_id.as_deref(),
        e.reason.as_deref(),
        Some(e.details.as_str()),
    ];
    texts.into_iter().flatten().any(|t| t.contains('\0'))
}

pub fn event_from_row(row: &sqlx::any::AnyRow) -> Result<Event, sqlx::Error> {
    let outcome_text = text(row, "outcome")?;
    Ok(Event {
        seq: row.try_get("seq")?,
        at: row.try_get("at")?,
        actor: Actor {
            user_id: row.try_get("actor_user_id")?,
            session: opt_text(row, "actor_session")?,
            ip: opt_text(row, "actor_ip")?,
            user_agent: opt_text(row, "actor_ua")?,
        },
        action: text(row, "action")?,
        target_type: opt_text(row, "target_type")?,
        target_id: opt_text(row, "target_id")?,
        customer_id: opt_text(row, "customer_id")?,
        // An unknown outcome cannot hash to the stored value; keep the row
        // readable and let verification report it.
        outcome: Outcome::parse(&outcome_text).unwrap_or(Outcome::Failure),
        reason: opt_text(row, "reason")?,
        details: text(row, "details")?,
        prev_hash: text(row, "prev_hash")?,
        hash: text(row, "hash")?,
    })
}

/// Borrows a row's text; MySQL hands long text over as bytes.
fn str_at(row: &sqlx::any::AnyRow, i: usize) -> Result<&str, sqlx::Error> {
    match row.try_get::<&str, _>(i) {
        Ok(s) => Ok(s),
        Err(_) => std::str::from_utf8(row.try_get::<&[u8], _>(i)?).map_err(|e| sqlx::Error::Decode(Box::new(e))),
    }
}

fn opt_str_at(row: &sqlx::any::AnyRow, i: usize) -> Result<Option<&str>, sqlx::Error> {
    match row.try_get::<Option<&str>, _>(i) {
        Ok(s) => Ok(s),
        Err(_) => row
            .try_get::<Option<&[u8]>, _>(i)?
            .map(|b| std::str::from_utf8(b).map_err(|e| sqlx::Error::Decode(Box::new(e))))
            .transpose(),
    }
}

/// A view of a row selected with `COLUMNS`, without copying.
pub fn event_ref(row: &sqlx::any::AnyRow) -> Result<EventRef<'_>, sqlx::Error> {
    Ok(EventRef {
        seq: row.try_get(0)?,
        at: row.try_get(1)?,
        user_id: row.try_get(2)?,
        session: opt_str_at(row, 3)?,
        ip: opt_str_at(row, 4)?,
        user_agent: opt_str_at(row, 5)?,
        action: str_at(row, 6)?,
        target_type: opt_str_at(row, 7)?,
        target_id: opt_str_at(row, 8)?,
        customer_id: opt_str_at(row, 9)?,
        outcome: str_at(row, 10)?,
        reason: opt_str_at(row, 11)?,
        details: str_at(row, 12)?,
        prev_hash: str_at(row, 13)?,
        hash: str_at(row, 14)?,
    })
}
