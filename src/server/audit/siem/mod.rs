//! Streaming the audit trail to SIEM sinks (`GATEHOUSE_SIEM_SINKS`): each
//! committed event as an OCSF record (`domain::siem`), in order, at least
//! once, from a cursor per sink stored in `siem_cursors` (written only
//! here). Each sink streams in a task of its own, on the server holding the
//! `siem` lease (`jobs::spawn_siem`): a sink that is down or slow delays
//! nobody, and appends never wait for a sink. After a failure the sink
//! backs off (`domain::siem::retry_after`) and resends from its cursor. A
//! busy sink stores its cursor at most every `siem::STORE_EVERY`, so a
//! crash resends at most that much.

mod transport;

use crate::domain::siem::{self, Names, Progress, Window};
use crate::dto::SiemSinkView;
use crate::errors::AppError;
use crate::server::platform::config::siem::Sink;
use crate::server::platform::db::{opt_text, Backend, Db};
use crate::server::platform::names;
use crate::server::platform::time::format_time;
use crate::server::state::AppState;
use sqlx::Row;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use transport::{Conn, Item, Sent};

/// Events per batch: one read and one write to the sink (the cursor is
/// stored at most every `siem::STORE_EVERY` while batches come full).
const BATCH: i64 = 500;
/// Records kept for the other sinks: sinks near the head read and map each
/// event once between them.
const SHARED: usize = 8 * BATCH as usize;

/// Recent records, by sequence number, shared by every sink's task. Events
/// never change once committed, and sequence numbers are committed in
/// order, so a cached record is the record.
#[derive(Default, Clone)]
pub struct Shared(Arc<Mutex<BTreeMap<i64, Arc<Item>>>>);

impl Shared {
    /// The cached records after `from`, as long as they run without a gap.
    fn after(&self, from: i64) -> Vec<Arc<Item>> {
        let cache = self.0.lock().unwrap_or_else(|e| e.into_inner());
        (from + 1..)
            .zip(cache.range(from + 1..).take(BATCH as usize))
            .take_while(|(want, (seq, _))| *want == **seq)
            .map(|(_, (_, item))| item.clone())
            .collect()
    }

    fn keep(&self, items: &[Arc<Item>]) {
        let mut cache = self.0.lock().unwrap_or_else(|e| e.into_inner());
        for item in items {
            cache.insert(item.seq, item.clone());
        }
        while cache.len() > SHARED {
            cache.pop_first();
        }
    }
}

/// How often an idle sink looks for new events.
const POLL: Duration = Duration::from_millis(200);

/// Where a sink stands, for /admin and /metrics.
#[derive(Debug, Clone)]
pub struct Status {
    pub name: String,
    pub kind: &'static str,
    pub delivered_seq: i64,
    /// Events committed and not yet acknowledged by the sink.
    pub backlog: i64,
    /// How old the oldest unacknowledged event is (0 when none), in ms.
    pub lag_ms: i64,
    pub failures: i64,
    pub last_error: Option<String>,
    pub last_error_at: Option<i64>,
}

/// Every configured sink's standing: two reads for all sinks with a cursor,
/// and one more for each sink that has not streamed yet.
pub async fn status(st: &AppState) -> Result<Vec<Status>, sqlx::Error> {
    let pool = st.db.pool();
    let head: i64 = sqlx::query_scalar("SELECT last_seq FROM audit_head WHERE id = 1")
        .fetch_one(pool)
        .await?;
    // Each cursor with the time of the first event it has not delivered.
    let rows = sqlx::query(
        "SELECT c.sink, c.delivered_seq, c.failures, c.last_error, c.last_error_at, e.at AS oldest \
         FROM siem_cursors c LEFT JOIN audit_events e ON e.seq = c.delivered_seq + 1",
    )
    .fetch_all(pool)
    .await?;
    let mut stored = std::collections::HashMap::new();
    for r in &rows {
        let sink: String = crate::server::platform::db::text(r, "sink")?;
        stored.insert(sink, r);
    }
    let now = st.clock.now();
    let mut out = Vec::new();
    for sink in &st.config.siem {
        let (delivered_seq, failures, last_error, last_error_at, oldest) = match stored.get(&sink.name) {
            Some(r) => (
                r.try_get("delivered_seq")?,
                r.try_get("failures")?,
                opt_text(r, "last_error")?,
                r.try_get("last_error_at")?,
                r.try_get::<Option<i64>, _>("oldest")?,
            ),
            // Not streamed yet: the whole trail waits.
            None => (
                0,
                0,
                None,
                None,
                sqlx::query_scalar("SELECT at FROM audit_events WHERE seq = 1")
                    .fetch_optional(pool)
                    .await?,
            ),
        };
        out.push(Status {
            name: sink.name.clone(),
            kind: sink.target.kind(),
            delivered_seq,
            backlog: (head - delivered_seq).max(0),
            lag_ms: oldest.map_or(0, |at| (now - at).max(0)),
            failures,
            last_error,
            last_error_at,
        });
    }
    Ok(out)
}

/// The sinks as /admin shows them (administrators and auditors).
pub async fn views(st: &AppState) -> Result<Vec<SiemSinkView>, AppError> {
    Ok(status(st)
        .await?
        .into_iter()
        .map(|s| SiemSinkView {
            name: s.name,
            kind: s.kind.to_owned(),
            delivered_seq: s.delivered_seq,
            backlog: s.backlog,
            lag: siem::describe_lag(s.lag_ms),
            failures: s.failures,
            last_error: s.last_error,
            last_error_at: s.last_error_at.map(format_time),
        })
        .collect())
}

/// Streams to `sink` until the task is aborted (the lease lost, shutdown).
pub async fn stream(st: AppState, sink: Sink, shared: Shared) {
    let host = st.config.public_url.host_str().unwrap_or("gatehouse").to_owned();
    let mut conn = Conn::default();
    let mut window = Window::default();
    // Acknowledged progress, stored in the cursor at most every
    // `siem::STORE_EVERY` while the sink is busy.
    let mut progress = Progress::default();
    // The last event written to a file sink and not yet synced.
    let mut unsynced: Option<i64> = None;
    let mut failures: u32 = 0;
    let mut sent: Option<i64> = None;
    // The syslog window is about the network, not the trail's clock: it
    // runs on the monotonic clock.
    let started = std::time::Instant::now();
    let elapsed = || started.elapsed().as_millis() as i64;
    loop {
        let step = async {
            let from = match sent {
                Some(s) => s,
                None => cursor(&st.db, &sink.name, st.clock.now()).await.map_err(db_error)?,
            };
            let items = batch(&st, &shared, from).await.map_err(db_error)?;
            if let Some(last) = items.last().map(|i| i.seq) {
                match conn.send(&sink.target, &host, &items).await? {
                    Sent::Received => progress.acknowledged(last),
                    Sent::Unsynced => unsynced = Some(last),
                    Sent::Written => window.wrote(last, elapsed()),
                }
                sent = Some(last);
            }
            if !window.is_empty() {
                if !conn.open() {
                    return Err("the syslog receiver closed the connection".to_owned());
                }
                if let Some(seq) = window.open_at(elapsed()) {
                    progress.acknowledged(seq);
                }
            }
            let full = items.len() as i64 == BATCH;
            if progress.time_to_store(elapsed(), !full) {
                if let Some(seq) = unsynced.take() {
                    conn.sync().await?;
                    progress.acknowledged(seq);
                }
            }
            if let Some(seq) = progress.due(elapsed(), !full) {
                advance(&st.db, &sink.name, seq, st.clock.now())
                    .await
                    .map_err(db_error)?;
            }
            Ok::<bool, String>(full)
        };
        match step.await {
            Ok(full) => {
                failures = 0;
                if !full {
                    tokio::time::sleep(POLL).await;
                }
            }
            Err(problem) => {
                tracing::warn!(sink = %sink.name, problem = %problem, "SIEM sink delivery failed; resending from its cursor");
                if let Some(seq) = progress.take() {
                    let _ = advance(&st.db, &sink.name, seq, st.clock.now()).await;
                }
                conn.reset();
                window.lost();
                unsynced = None;
                sent = None;
                let _ = failed(&st.db, &sink.name, &problem, st.clock.now()).await;
                tokio::time::sleep(Duration::from_millis(siem::retry_after(failures) as u64)).await;
                failures = failures.saturating_add(1);
            }
        }
    }
}

fn db_error(e: sqlx::Error) -> String {
    tracing::error!(error = %e, "SIEM streaming cannot use the database");
    "the database was unavailable".to_owned()
}

/// The next events after `from`, as records: from the shared records as far
/// as they reach, the rest read, mapped and shared.
async fn batch(st: &AppState, shared: &Shared, from: i64) -> Result<Vec<Arc<Item>>, sqlx::Error> {
    let mut items = shared.after(from);
    let last = items.last().map_or(from, |i| i.seq);
    let wanted = BATCH - items.len() as i64;
    if wanted > 0 {
        let read: Vec<Arc<Item>> = read(st, last, wanted).await?.into_iter().map(Arc::new).collect();
        shared.keep(&read);
        items.extend(read);
    }
    Ok(items)
}

/// Up to `limit` events after `from`, read and mapped.
async fn read(st: &AppState, from: i64, limit: i64) -> Result<Vec<Item>, sqlx::Error> {
    let sql = format!(
        "SELECT {} FROM audit_events WHERE seq > ? ORDER BY seq LIMIT ?",
        super::COLUMNS
    );
    let rows = sqlx::query(&sql).bind(from).bind(limit).fetch_all(st.db.pool()).await?;
    let events = rows.iter().map(super::event_from_row).collect::<Result<Vec<_>, _>>()?;
    let mut ids: Vec<i64> = events.iter().filter_map(|e| e.actor.user_id).collect();
    ids.extend(events.iter().filter_map(target_user));
    ids.sort_unstable();
    ids.dedup();
    let known = names::names_of(st.db.pool(), &ids).await?;
    let version = env!("CARGO_PKG_VERSION");
    Ok(events
        .iter()
        .map(|e| {
            let n = Names {
                actor: e.actor.user_id.and_then(|id| known.get(&id).cloned()),
                target: target_user(e).and_then(|id| known.get(&id).cloned()),
            };
            let record = siem::record(e, &n, version);
            Item {
                seq: e.seq,
                hash: e.hash.clone(),
                at: e.at,
                class_uid: siem::classify(&e.action).0.uid().into(),
                json: record.to_string(),
                failed: e.outcome != crate::domain::audit::Outcome::Success,
            }
        })
        .collect())
}

/// The person an event is about, when its target is one.
fn target_user(e: &crate::domain::audit::Event) -> Option<i64> {
    match e.target_type.as_deref() {
        Some("user") => e.target_id.as_deref()?.parse().ok(),
        _ => None,
    }
}

/// The sink's stored cursor, created at 0 (the whole trail) the first time.
async fn cursor(db: &Db, sink: &str, now: i64) -> Result<i64, sqlx::Error> {
    let found: Option<i64> = sqlx::query_scalar("SELECT delivered_seq FROM siem_cursors WHERE sink = ?")
        .bind(sink)
        .fetch_optional(db.pool())
        .await?;
    if let Some(seq) = found {
        return Ok(seq);
    }
    let mut tx = db.begin_write().await?;
    let insert = match tx.backend {
        Backend::MySql => {
            "INSERT INTO siem_cursors (sink, delivered_seq, delivered_at, failures) VALUES (?, 0, ?, 0) \
                           ON DUPLICATE KEY UPDATE sink = sink"
        }
        Backend::Sqlite => {
            "INSERT INTO siem_cursors (sink, delivered_seq, delivered_at, failures) VALUES (?, 0, ?, 0) \
                            ON CONFLICT DO NOTHING"
        }
    };
    sqlx::query(insert).bind(sink).bind(now).execute(tx.conn()).await?;
    tx.commit().await?;
    Ok(0)
}

/// Moves the cursor forward to `seq` (never back: a stalled server that
/// lost the lease cannot undo another's progress) and clears the failures.
async fn advance(db: &Db, sink: &str, seq: i64, now: i64) -> Result<(), sqlx::Error> {
    // Through the write lock, in turn with appends (on SQLite, a write
    // beside it would wait in SQLite's busy handler, which sleeps).
    let mut tx = db.begin_write().await?;
    sqlx::query(
        "UPDATE siem_cursors SET delivered_seq = ?, delivered_at = ?, failures = 0 WHERE sink = ? AND delivered_seq < ?",
    )
    .bind(seq)
    .bind(now)
    .bind(sink)
    .bind(seq)
    .execute(tx.conn())
    .await?;
    tx.commit().await
}

async fn failed(db: &Db, sink: &str, problem: &str, now: i64) -> Result<(), sqlx::Error> {
    let mut tx = db.begin_write().await?;
    sqlx::query("UPDATE siem_cursors SET failures = failures + 1, last_error = ?, last_error_at = ? WHERE sink = ?")
        .bind(problem)
        .bind(now)
        .bind(sink)
        .execute(tx.conn())
        .await?;
    tx.commit().await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(seq: i64) -> Arc<Item> {
        Arc::new(Item {
            seq,
            hash: String::new(),
            at: 0,
            class_uid: 3004,
            failed: false,
            json: format!("{{\"seq\":{seq}}}"),
        })
    }

    #[test]
    fn shared_records_run_without_gaps_and_the_oldest_go_first() {
        let shared = Shared::default();
        shared.keep(&[item(1), item(2), item(3), item(5)]);
        let seqs = |v: Vec<Arc<Item>>| v.iter().map(|i| i.seq).collect::<Vec<_>>();
        assert_eq!(seqs(shared.after(0)), [1, 2, 3], "stops before the gap at 4");
        assert_eq!(seqs(shared.after(3)), Vec::<i64>::new());
        assert_eq!(seqs(shared.after(4)), [5]);
        let many: Vec<_> = (6..6 + SHARED as i64).map(item).collect();
        shared.keep(&many);
        assert_eq!(seqs(shared.after(0)), Vec::<i64>::new(), "the oldest were dropped");
        assert_eq!(shared.after(5).len(), BATCH as usize, "a batch at most");
    }
}
