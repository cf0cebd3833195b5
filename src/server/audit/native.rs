//! The SQLite file read natively (rusqlite on sqlx's own SQLite library),
//! for verification and checkpoint signing: rows are stepped and hashed in
//! place, without the pool's per-row hand-over and copies (five times
//! faster; docs/benchmarks.md). One read transaction holds one snapshot.

use super::{
    checkpoints::{Extension, Next, SignError, CP_COLS},
    log::COLUMNS,
    verify::{VerifyReport, Walk},
};
use crate::domain::{audit::EventRef, checkpoint::Checkpoint};

/// `walk` on a SQLite file through a read-only native connection: rows are
/// stepped and hashed in place, without the pool's per-row hand-over and
/// copies (five times faster; see docs/benchmarks.md). One read
/// transaction holds the snapshot for head, checkpoints and events.
pub(super) fn walk(path: &str, keys: Option<&[ed25519_dalek::VerifyingKey]>) -> Result<VerifyReport, sqlx::Error> {
    let err = err;
    let conn = snapshot(path)?;
    let (head_seq, head_hash): (i64, String) = conn
        .query_row("SELECT last_seq, last_hash FROM audit_head WHERE id = 1", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .map_err(err)?;
    let checkpoints = match keys {
        Some(_) => {
            let sql = format!("SELECT {} FROM audit_checkpoints ORDER BY number", CP_COLS);
            let mut stmt = conn.prepare(&sql).map_err(err)?;
            // Bound to a local so the rows iterator ends before `stmt`.
            let list = stmt
                .query_map([], |r| checkpoint_row(r).map(|(c, _)| c))
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
        let event = event_ref(r).map_err(err)?;
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
pub(super) fn snapshot(path: &str) -> Result<rusqlite::Connection, sqlx::Error> {
    use rusqlite::{Connection, OpenFlags};
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(err)?;
    conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(err)?;
    conn.execute_batch("BEGIN").map_err(err)?;
    Ok(conn)
}

pub(super) fn err(e: rusqlite::Error) -> sqlx::Error {
    match e.sqlite_error() {
        Some(code) => sqlx::Error::Protocol(format!(
            "reading the audit chain: {e} (SQLite extended code {})",
            code.extended_code
        )),
        None => sqlx::Error::Protocol(format!("reading the audit chain: {e}")),
    }
}

/// `event_ref` for a native SQLite row selected with `COLUMNS`.
pub(super) fn event_ref<'r>(r: &'r rusqlite::Row<'_>) -> rusqlite::Result<EventRef<'r>> {
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

/// `read_pool` on a SQLite file through a read-only native connection, as
/// `audit verify` reads (five times faster than rows through the pool;
/// docs/benchmarks.md).
pub(super) fn read_checkpoint_extension(
    path: &str,
    due: impl Fn(&Option<(Checkpoint, String)>, i64) -> bool,
) -> Result<Option<Next>, SignError> {
    let err = err;
    let conn = snapshot(path)?;
    let (head_seq, head_hash): (i64, String) = conn
        .query_row("SELECT last_seq, last_hash FROM audit_head WHERE id = 1", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .map_err(err)?;
    let sql = format!("SELECT {CP_COLS} FROM audit_checkpoints ORDER BY number DESC LIMIT 1");
    let last = match conn.query_row(&sql, [], checkpoint_row) {
        Ok(l) => Some(l),
        Err(rusqlite::Error::QueryReturnedNoRows) => None,
        Err(e) => return Err(err(e).into()),
    };
    if !due(&last, head_seq) {
        return Ok(None);
    }
    let (mut ext, covered) = Extension::after(&last)?;
    {
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {} FROM audit_events WHERE seq > ?1 AND seq <= ?2 ORDER BY seq",
                COLUMNS
            ))
            .map_err(err)?;
        let mut rows = stmt.query([covered, head_seq]).map_err(err)?;
        while let Some(r) = rows.next().map_err(err)? {
            ext.push(&event_ref(r).map_err(err)?)?;
        }
    }
    let frontier = ext.finish(head_seq, &head_hash)?;
    Ok(Some(Next {
        last,
        head_seq,
        head_hash,
        frontier,
    }))
}

/// `from_row` for a native SQLite row selected with `CP_COLS`.
pub(super) fn checkpoint_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(Checkpoint, String)> {
    Ok((
        Checkpoint {
            number: r.get("number")?,
            tree_size: r.get("tree_size")?,
            root: r.get("root")?,
            head_hash: r.get("head_hash")?,
            prev_hash: r.get("prev_hash")?,
            at: r.get("at")?,
            key_id: r.get("key_id")?,
            signature: r.get("signature")?,
        },
        r.get("frontier")?,
    ))
}
