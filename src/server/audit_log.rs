//! The audit chain in the database: serialised appends inside the caller's
//! transaction, and streaming verification.

use super::db::{opt_text, text, Db, WriteTx};
use crate::domain::{
    audit::{Actor, ChainError, Event, EventRef, NewEvent, Outcome, Verifier},
    checkpoint::{self, CheckpointError, RootChecker},
    merkle::Frontier,
    Millis,
};
use futures::TryStreamExt;
use sqlx::Row;

pub const COLUMNS: &str = "seq, at, actor_user_id, actor_session, actor_ip, actor_ua, action, target_type, \
                       target_id, customer_id, outcome, reason, details, prev_hash, hash";

/// Appends events after the current head, in the caller's transaction: the
/// events exist if and only if the change they record is committed. The
/// head row is locked for the rest of the transaction, so concurrent
/// appends queue up and never fork the chain.
pub async fn append(tx: &mut WriteTx, at: Millis, events: Vec<NewEvent>) -> Result<Vec<Event>, sqlx::Error> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!("SELECT last_seq, last_hash FROM audit_head WHERE id = 1{}", tx.for_update());
    let head = sqlx::query(&sql).fetch_one(&mut ***tx).await?;
    let mut seq: i64 = head.try_get("last_seq")?;
    let mut prev: String = text(&head, "last_hash")?;

    let mut sealed = Vec::with_capacity(events.len());
    for e in events {
        seq += 1;
        let event = e.seal(seq, at, &prev);
        prev.clone_from(&event.hash);
        sealed.push(event);
    }
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
        q.execute(&mut ***tx).await?;
    }
    sqlx::query("UPDATE audit_head SET last_seq = ?, last_hash = ? WHERE id = 1")
        .bind(seq)
        .bind(&prev)
        .execute(&mut ***tx)
        .await?;
    Ok(sealed)
}

/// Appends one event in a transaction of its own (for events that record
/// no other change, such as a failed sign-in).
pub async fn record(db: &Db, at: Millis, event: NewEvent) -> Result<(), sqlx::Error> {
    let mut tx = db.begin_write().await?;
    append(&mut tx, at, vec![event]).await?;
    tx.commit().await
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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub checked: u64,
    pub head_seq: i64,
    /// The first broken event, if any.
    pub error: Option<ChainError>,
    /// Signed checkpoints whose root and head matched the events.
    pub checkpoints: u64,
    /// When the events are a consistent chain but the signed checkpoints
    /// say otherwise (or are forged): what is wrong.
    pub checkpoint_error: Option<CheckpointError>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.error.is_none() && self.checkpoint_error.is_none()
    }

    /// One line for people: the first problem, or none.
    pub fn problem(&self) -> Option<String> {
        match (&self.error, &self.checkpoint_error) {
            (Some(e), _) => Some(e.to_string()),
            (None, Some(e)) => Some(e.to_string()),
            (None, None) => None,
        }
    }
}

/// Walks the whole chain in sequence order with constant memory and reports
/// the first broken link (hash chain only; see `verify_signed`).
pub async fn verify(db: &Db) -> Result<VerifyReport, sqlx::Error> {
    walk(db, None).await
}

/// `verify`, and every signed checkpoint against the events: signatures
/// with `keys`, the checkpoints' own chain, each Merkle root and head. This
/// also finds what the hash chain alone cannot: events cut off the end,
/// and a chain rewritten with recomputed hashes.
pub async fn verify_signed(db: &Db, keys: &[ed25519_dalek::VerifyingKey]) -> Result<VerifyReport, sqlx::Error> {
    walk(db, Some(keys)).await
}

/// Head, checkpoints and events are read in one transaction, so all come
/// from the same snapshot even while other requests append.
async fn walk(db: &Db, keys: Option<&[ed25519_dalek::VerifyingKey]>) -> Result<VerifyReport, sqlx::Error> {
    let mut tx = db.pool.begin().await?;
    let head = sqlx::query("SELECT last_seq, last_hash FROM audit_head WHERE id = 1").fetch_one(&mut *tx).await?;
    let head_seq: i64 = head.try_get("last_seq")?;
    let head_hash = text(&head, "last_hash")?;
    let mut report = VerifyReport { checked: 0, head_seq, error: None, checkpoints: 0, checkpoint_error: None };

    let mut roots = None;
    if let Some(keys) = keys {
        let list = super::checkpoints::list(&mut *tx, 0, i64::MAX).await?;
        match checkpoint::check_list(keys, &list, None) {
            Ok(()) => roots = Some(RootChecker::new(Frontier::new(), list)),
            Err(e) => report.checkpoint_error = Some(e),
        }
    }
    let sql = format!("SELECT {COLUMNS} FROM audit_events ORDER BY seq");
    let mut verifier = Verifier::new();
    {
        let mut rows = sqlx::query(&sql).fetch(&mut *tx);
        while let Some(row) = rows.try_next().await? {
            let event = event_ref(&row)?;
            if let Err(error) = verifier.push_ref(&event) {
                report.checked = verifier.count();
                report.error = Some(error);
                return Ok(report);
            }
            if let Some(r) = roots.as_mut() {
                if let Err(e) = r.push(event.seq, event.hash) {
                    report.checkpoint_error = Some(e);
                    roots = None;
                }
            }
        }
    }
    tx.rollback().await?;
    report.checked = verifier.count();
    match verifier.finish(head_seq, &head_hash) {
        Ok(n) => report.checked = n,
        Err(error) => report.error = Some(error),
    }
    if let Some(r) = roots {
        match r.finish() {
            Ok(n) => report.checkpoints = n,
            Err(e) => report.checkpoint_error = Some(e),
        }
    }
    Ok(report)
}
