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
    append_timed(tx, events.into_iter().map(|e| (at, e)).collect()).await
}

/// `append` for events that each carry their own time.
async fn append_timed(tx: &mut WriteTx, events: Vec<(Millis, NewEvent)>) -> Result<Vec<Event>, sqlx::Error> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT last_seq, last_hash FROM audit_head WHERE id = 1{}",
        tx.for_update()
    );
    let head = sqlx::query(&sql).fetch_one(&mut ***tx).await?;
    let mut seq: i64 = head.try_get("last_seq")?;
    let mut prev: String = text(&head, "last_hash")?;

    let mut sealed = Vec::with_capacity(events.len());
    let mut grant_refs: Vec<(i64, i64)> = Vec::new();
    for (at, e) in events {
        seq += 1;
        if let Some(g) = e.details.get("grant_id").and_then(serde_json::Value::as_i64) {
            grant_refs.push((g, seq));
        }
        let event = e.seal(seq, at, &prev);
        prev.clone_from(&event.hash);
        sealed.push(event);
    }
    if tx.backend == super::db::Backend::Sqlite && !sealed.iter().any(has_nul) {
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
        q.execute(&mut ***tx).await?;
    }
    sqlx::query("UPDATE audit_head SET last_seq = ?, last_hash = ? WHERE id = 1")
        .bind(seq)
        .bind(&prev)
        .execute(&mut ***tx)
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
        q.execute(&mut ***tx).await?;
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
    let done = sqlx::query(SQL.as_str()).bind(batch).execute(&mut ***tx).await?;
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

/// Appends one event that records no other change (a failed sign-in, a
/// recorded access check), committed before this returns.
pub async fn record(db: &Db, at: Millis, event: NewEvent) -> Result<(), sqlx::Error> {
    record_sealed(db, at, event).await.map(drop)
}

/// `record`, answering the event as stored in the chain.
///
/// Group commit: events recorded at the same time share one transaction,
/// so one commit (one fsync on SQLite) stores all of them instead of one
/// each. Each caller still gets its answer only after its event is
/// committed, and an error if it was not: nothing is acknowledged early. If
/// a shared commit fails, each of its events is tried again alone, so one
/// event that cannot be stored does not take the others with it.
pub async fn record_sealed(db: &Db, at: Millis, event: NewEvent) -> Result<Event, sqlx::Error> {
    let (reply, mut answer) = tokio::sync::oneshot::channel();
    db.recorder
        .queue
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(Pending { at, event, reply });
    loop {
        tokio::select! {
            biased;
            a = &mut answer => return a.unwrap_or(Err(sqlx::Error::WorkerCrashed)),
            leader = db.recorder.leader.clone().lock_owned() => {
                // The one holding `leader` commits whatever is queued,
                // this caller's event included unless a previous leader has
                // already answered it.
                let batch: Vec<Pending> = {
                    let mut q = db.recorder.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    let n = q.len().min(GROUP_MAX);
                    q.drain(..n).collect()
                };
                if batch.is_empty() {
                    continue;
                }
                // A task of its own, so a caller that goes away (its client
                // hung up) cannot cancel a commit that others wait for.
                let db = db.clone();
                let _ = tokio::spawn(async move {
                    commit_group(&db, batch).await;
                    drop(leader);
                })
                .await;
            }
        }
    }
}

/// Most events in one group commit.
const GROUP_MAX: usize = 256;

/// The queue of events waiting for a group commit (see `record_sealed`).
#[derive(Default)]
pub struct Recorder {
    queue: std::sync::Mutex<Vec<Pending>>,
    leader: std::sync::Arc<tokio::sync::Mutex<()>>,
}

struct Pending {
    at: Millis,
    event: NewEvent,
    reply: tokio::sync::oneshot::Sender<Result<Event, sqlx::Error>>,
}

async fn commit_group(db: &Db, batch: Vec<Pending>) {
    async fn commit(db: &Db, events: Vec<(Millis, NewEvent)>) -> Result<Vec<Event>, sqlx::Error> {
        let mut tx = db.begin_write().await?;
        let sealed = append_timed(&mut tx, events).await?;
        tx.commit().await?;
        Ok(sealed)
    }
    let events = batch.iter().map(|p| (p.at, p.event.clone())).collect();
    match commit(db, events).await {
        Ok(sealed) => {
            for (p, e) in batch.into_iter().zip(sealed) {
                let _ = p.reply.send(Ok(e));
            }
        }
        Err(e) if batch.len() == 1 => {
            let _ = batch.into_iter().next().map(|p| p.reply.send(Err(e)));
        }
        Err(e) => {
            tracing::warn!(error = %e, events = batch.len(), "group commit of audit events failed; storing each alone");
            for p in batch {
                let one = commit(db, vec![(p.at, p.event)]).await.map(|mut v| v.remove(0));
                let _ = p.reply.send(one);
            }
        }
    }
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
/// from the same snapshot even while other requests append. A SQLite file
/// is read natively (see `sqlite_walk`); MySQL through the pool.
async fn walk(db: &Db, keys: Option<&[ed25519_dalek::VerifyingKey]>) -> Result<VerifyReport, sqlx::Error> {
    if let Some(path) = db.sqlite_file() {
        let keys = keys.map(<[_]>::to_vec);
        return tokio::task::spawn_blocking(move || sqlite_walk(&path, keys.as_deref()))
            .await
            .map_err(|e| sqlx::Error::Protocol(format!("verification task failed: {e}")))?;
    }
    let mut tx = db.pool.begin().await?;
    let head = sqlx::query("SELECT last_seq, last_hash FROM audit_head WHERE id = 1")
        .fetch_one(&mut *tx)
        .await?;
    let head_seq: i64 = head.try_get("last_seq")?;
    let head_hash = text(&head, "last_hash")?;
    let checkpoints = match keys {
        Some(_) => super::checkpoints::list(&mut *tx, 0, i64::MAX).await?,
        None => Vec::new(),
    };
    let mut walk = Walk::new(head_seq, head_hash, keys, checkpoints);
    let sql = format!("SELECT {COLUMNS} FROM audit_events ORDER BY seq");
    {
        let mut rows = sqlx::query(&sql).fetch(&mut *tx);
        while let Some(row) = rows.try_next().await? {
            if !walk.push(&event_ref(&row)?) {
                break;
            }
        }
    }
    tx.rollback().await?;
    Ok(walk.finish())
}

/// One verification pass, fed event by event from either backend.
struct Walk {
    report: VerifyReport,
    head_hash: String,
    verifier: Verifier,
    roots: Option<RootChecker>,
}

impl Walk {
    fn new(
        head_seq: i64,
        head_hash: String,
        keys: Option<&[ed25519_dalek::VerifyingKey]>,
        checkpoints: Vec<checkpoint::Checkpoint>,
    ) -> Self {
        let mut report = VerifyReport {
            checked: 0,
            head_seq,
            error: None,
            checkpoints: 0,
            checkpoint_error: None,
        };
        let roots = keys.and_then(|keys| match checkpoint::check_list(keys, &checkpoints, None) {
            Ok(()) => Some(RootChecker::new(Frontier::new(), checkpoints)),
            Err(e) => {
                report.checkpoint_error = Some(e);
                None
            }
        });
        Walk {
            report,
            head_hash,
            verifier: Verifier::new(),
            roots,
        }
    }

    /// Checks the next event; false once the chain is broken (the rest
    /// need not be read).
    fn push(&mut self, event: &EventRef<'_>) -> bool {
        if let Err(error) = self.verifier.push_ref(event) {
            self.report.error = Some(error);
            return false;
        }
        if let Some(r) = self.roots.as_mut() {
            if let Err(e) = r.push(event.seq, event.hash) {
                self.report.checkpoint_error = Some(e);
                self.roots = None;
            }
        }
        true
    }

    fn finish(mut self) -> VerifyReport {
        self.report.checked = self.verifier.count();
        // A broken link stopped the walk: the rest was not read.
        if self.report.error.is_some() {
            return self.report;
        }
        match self.verifier.finish(self.report.head_seq, &self.head_hash) {
            Ok(n) => self.report.checked = n,
            Err(error) => self.report.error = Some(error),
        }
        if let Some(r) = self.roots {
            match r.finish() {
                Ok(n) => self.report.checkpoints = n,
                Err(e) => self.report.checkpoint_error = Some(e),
            }
        }
        self.report
    }
}

/// `walk` on a SQLite file through a read-only native connection: rows are
/// stepped and hashed in place, without the pool's per-row hand-over and
/// copies (five times faster; see docs/benchmarks.md). One read
/// transaction holds the snapshot for head, checkpoints and events.
fn sqlite_walk(path: &str, keys: Option<&[ed25519_dalek::VerifyingKey]>) -> Result<VerifyReport, sqlx::Error> {
    let err = native_err;
    let conn = native_snapshot(path)?;
    let (head_seq, head_hash): (i64, String) = conn
        .query_row("SELECT last_seq, last_hash FROM audit_head WHERE id = 1", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .map_err(err)?;
    let checkpoints = match keys {
        Some(_) => {
            let sql = format!(
                "SELECT {} FROM audit_checkpoints ORDER BY number",
                super::checkpoints::CP_COLS
            );
            let mut stmt = conn.prepare(&sql).map_err(err)?;
            // Bound to a local so the rows iterator ends before `stmt`.
            let list = stmt
                .query_map([], |r| super::checkpoints::native_row(r).map(|(c, _)| c))
                .map_err(err)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(err)?;
            list
        }
        None => Vec::new(),
    };
    let mut walk = Walk::new(head_seq, head_hash, keys, checkpoints);
    let mut stmt = conn
        .prepare(&format!("SELECT {COLUMNS} FROM audit_events ORDER BY seq"))
        .map_err(err)?;
    let mut rows = stmt.query([]).map_err(err)?;
    while let Some(r) = rows.next().map_err(err)? {
        let event = native_event_ref(r).map_err(err)?;
        if !walk.push(&event) {
            break;
        }
    }
    drop(rows);
    drop(stmt);
    conn.execute_batch("ROLLBACK").map_err(err)?;
    Ok(walk.finish())
}

/// A read-only native connection to a SQLite file, inside a read
/// transaction: everything read through it comes from one snapshot.
pub(crate) fn native_snapshot(path: &str) -> Result<rusqlite::Connection, sqlx::Error> {
    use rusqlite::{Connection, OpenFlags};
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(native_err)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(native_err)?;
    conn.execute_batch("BEGIN").map_err(native_err)?;
    Ok(conn)
}

pub(crate) fn native_err(e: rusqlite::Error) -> sqlx::Error {
    sqlx::Error::Protocol(format!("reading the audit chain: {e}"))
}

/// `event_ref` for a native SQLite row selected with `COLUMNS`.
pub(crate) fn native_event_ref<'r>(r: &'r rusqlite::Row<'_>) -> rusqlite::Result<EventRef<'r>> {
    let s = |i: usize| r.get_ref(i).and_then(|v| v.as_str().map_err(Into::into));
    let o = |i: usize| r.get_ref(i).and_then(|v| v.as_str_or_null().map_err(Into::into));
    Ok(EventRef {
        seq: r.get(0)?,
        at: r.get(1)?,
        user_id: r.get(2)?,
        session: o(3)?,
        ip: o(4)?,
        user_agent: o(5)?,
        action: s(6)?,
        target_type: o(7)?,
        target_id: o(8)?,
        customer_id: o(9)?,
        outcome: s(10)?,
        reason: o(11)?,
        details: s(12)?,
        prev_hash: s(13)?,
        hash: s(14)?,
    })
}
