//! Verification of the whole chain: every link, and with keys every
//! signed checkpoint against the events. A SQLite file is read natively
//! (`native`), MySQL through the pool.

use super::{checkpoints, log::event_ref, log::COLUMNS, native};
use crate::domain::{
    audit::{ChainError, EventRef, Verifier},
    checkpoint::{self, CheckpointError, RootChecker},
    merkle::Frontier,
};
use crate::server::platform::db::{text, Db};
use futures::TryStreamExt;
use sqlx::Row;

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
        return tokio::task::spawn_blocking(move || native::walk(&path, keys.as_deref()))
            .await
            .map_err(|e| sqlx::Error::Protocol(format!("verification task failed: {e}")))?;
    }
    let mut tx = db.pool().begin().await?;
    let head = sqlx::query("SELECT last_seq, last_hash FROM audit_head WHERE id = 1")
        .fetch_one(&mut *tx)
        .await?;
    let head_seq: i64 = head.try_get("last_seq")?;
    let head_hash = text(&head, "last_hash")?;
    let checkpoints = match keys {
        Some(_) => checkpoints::list(&mut *tx, 0, i64::MAX).await?,
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
pub(super) struct Walk {
    report: VerifyReport,
    head_hash: String,
    verifier: Verifier,
    roots: Option<RootChecker>,
}

impl Walk {
    pub(super) fn new(
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
    pub(super) fn push(&mut self, event: &EventRef<'_>) -> bool {
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

    pub(super) fn finish(mut self) -> VerifyReport {
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
