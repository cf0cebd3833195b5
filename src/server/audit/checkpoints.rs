//! Signed checkpoints as stored (`audit_checkpoints`): signing (every
//! minute while events arrive, and on demand), listing, and inclusion
//! proofs. The rules live in domain::checkpoint and domain::merkle.

use super::{log, native};
use crate::domain::{
    audit::{EventRef, Verifier, GENESIS_HASH},
    checkpoint::Checkpoint,
    merkle::{self, Frontier, Hash},
    Millis, MINUTE,
};
use crate::server::{
    platform::db::{text, Db},
    state::AppState,
};
use futures::TryStreamExt;
use sqlx::Row;

/// A checkpoint is signed at least this often while new events arrive.
pub const INTERVAL: Millis = MINUTE;

pub const CP_COLS: &str = "number, tree_size, root, head_hash, prev_hash, at, key_id, signature, frontier";

fn from_row(r: &sqlx::any::AnyRow) -> Result<(Checkpoint, String), sqlx::Error> {
    Ok((
        Checkpoint {
            number: r.try_get("number")?,
            tree_size: r.try_get("tree_size")?,
            root: text(r, "root")?,
            head_hash: text(r, "head_hash")?,
            prev_hash: text(r, "prev_hash")?,
            at: r.try_get("at")?,
            key_id: text(r, "key_id")?,
            signature: text(r, "signature")?,
        },
        text(r, "frontier")?,
    ))
}

pub async fn latest<'e>(ex: impl sqlx::Executor<'e, Database = sqlx::Any>) -> Result<Option<Checkpoint>, sqlx::Error> {
    let sql = format!("SELECT {CP_COLS} FROM audit_checkpoints ORDER BY number DESC LIMIT 1");
    Ok(sqlx::query(&sql)
        .fetch_optional(ex)
        .await?
        .as_ref()
        .map(from_row)
        .transpose()?
        .map(|(c, _)| c))
}

/// Checkpoints by number, `after` excluded, at most `limit`.
pub async fn list<'e>(
    ex: impl sqlx::Executor<'e, Database = sqlx::Any>,
    after: i64,
    limit: i64,
) -> Result<Vec<Checkpoint>, sqlx::Error> {
    let sql = format!("SELECT {CP_COLS} FROM audit_checkpoints WHERE number > ? ORDER BY number LIMIT ?");
    let rows = sqlx::query(&sql).bind(after).bind(limit).fetch_all(ex).await?;
    rows.iter().map(|r| from_row(r).map(|(c, _)| c)).collect()
}

pub async fn by_number(db: &Db, number: i64) -> Result<Option<Checkpoint>, sqlx::Error> {
    let sql = format!("SELECT {CP_COLS} FROM audit_checkpoints WHERE number = ?");
    Ok(sqlx::query(&sql)
        .bind(number)
        .fetch_optional(db.pool())
        .await?
        .as_ref()
        .map(from_row)
        .transpose()?
        .map(|(c, _)| c))
}

fn frontier_text(f: &Frontier) -> String {
    f.nodes()
        .iter()
        .map(|(n, h)| format!("{n}:{}", hex::encode(h)))
        .collect::<Vec<_>>()
        .join(",")
}

fn parse_frontier(s: &str) -> Option<Frontier> {
    if s.is_empty() {
        return Some(Frontier::new());
    }
    let nodes = s
        .split(',')
        .map(|part| {
            let (n, h) = part.split_once(':')?;
            let mut hash = [0u8; 32];
            hex::decode_to_slice(h, &mut hash).ok()?;
            Some((n.parse().ok()?, hash))
        })
        .collect::<Option<Vec<(u64, Hash)>>>()?;
    Frontier::from_nodes(nodes)
}

#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    /// The newer signing key a rotation made cannot be loaded.
    #[error(transparent)]
    Key(#[from] super::keys::KeyError),
    /// The events since the last checkpoint do not verify: nothing is signed.
    #[error("the audit chain does not verify after checkpoint {after}: {problem}; no checkpoint signed")]
    Broken { after: i64, problem: String },
}

/// What the next checkpoint covers: read and checked, not yet signed.
pub(super) struct Next {
    pub(super) last: Option<(Checkpoint, String)>,
    pub(super) head_seq: i64,
    pub(super) head_hash: String,
    pub(super) frontier: Frontier,
}

/// The events after the last checkpoint, checked link by link and added
/// to its Merkle frontier.
pub(super) struct Extension {
    verifier: Verifier,
    frontier: Frontier,
    after: i64,
}

impl Extension {
    /// Where `last` left off (the start of the trail when there is none).
    pub(super) fn after(last: &Option<(Checkpoint, String)>) -> Result<(Self, i64), SignError> {
        Ok(match last {
            Some((cp, f)) => {
                let frontier = parse_frontier(f)
                    .filter(|f| f.size() as i64 == cp.tree_size)
                    .ok_or_else(|| SignError::Broken {
                        after: cp.number,
                        problem: "its stored Merkle frontier is damaged".into(),
                    })?;
                (
                    Extension {
                        verifier: Verifier::resume(cp.tree_size, &cp.head_hash),
                        frontier,
                        after: cp.number,
                    },
                    cp.tree_size,
                )
            }
            None => (
                Extension {
                    verifier: Verifier::resume(0, GENESIS_HASH),
                    frontier: Frontier::new(),
                    after: 0,
                },
                0,
            ),
        })
    }

    pub(super) fn push(&mut self, event: &EventRef<'_>) -> Result<(), SignError> {
        self.verifier.push_ref(event).map_err(|e| SignError::Broken {
            after: self.after,
            problem: e.to_string(),
        })?;
        self.frontier
            .push_leaf(merkle::leaf_from_hex(event.hash).unwrap_or([0; 32]));
        Ok(())
    }

    pub(super) fn finish(self, head_seq: i64, head_hash: &str) -> Result<Frontier, SignError> {
        self.verifier
            .finish(head_seq, head_hash)
            .map_err(|e| SignError::Broken {
                after: self.after,
                problem: e.to_string(),
            })?;
        Ok(self.frontier)
    }
}

/// The next checkpoint's content through the pool (MySQL).
async fn read_pool(
    db: &Db,
    due: impl Fn(&Option<(Checkpoint, String)>, i64) -> bool,
) -> Result<Option<Next>, SignError> {
    let mut read = db.pool().begin().await?;
    let head = sqlx::query("SELECT last_seq, last_hash FROM audit_head WHERE id = 1")
        .fetch_one(&mut *read)
        .await?;
    let head_seq: i64 = head.try_get("last_seq")?;
    let sql = format!("SELECT {CP_COLS} FROM audit_checkpoints ORDER BY number DESC LIMIT 1");
    let last = sqlx::query(&sql)
        .fetch_optional(&mut *read)
        .await?
        .as_ref()
        .map(from_row)
        .transpose()?;
    if !due(&last, head_seq) {
        return Ok(None);
    }
    let (mut ext, covered) = Extension::after(&last)?;
    {
        let sql = format!(
            "SELECT {} FROM audit_events WHERE seq > ? AND seq <= ? ORDER BY seq",
            log::COLUMNS
        );
        let mut rows = sqlx::query(&sql).bind(covered).bind(head_seq).fetch(&mut *read);
        while let Some(row) = rows.try_next().await? {
            ext.push(&log::event_ref(&row)?)?;
        }
    }
    read.rollback().await?;
    let head_hash = text(&head, "last_hash")?;
    let frontier = ext.finish(head_seq, &head_hash)?;
    Ok(Some(Next {
        last,
        head_seq,
        head_hash,
        frontier,
    }))
}

/// Signs a checkpoint over every event so far when there are events the
/// latest checkpoint does not cover and, unless `force`, it is at least
/// `INTERVAL` old. The new events are verified first (content hashes and
/// links): a damaged chain is never signed. Returns the new checkpoint.
pub async fn sign(st: &AppState, force: bool) -> Result<Option<Checkpoint>, SignError> {
    // A key made by a rotation since the keys were loaded: load it, then
    // sign with it.
    match sign_with_current_key(st, force).await? {
        Signed::Done(cp) => Ok(cp),
        Signed::NewerKey => match sign_with_current_key(st, force).await? {
            Signed::Done(cp) => Ok(cp),
            Signed::NewerKey => Ok(None),
        },
    }
}

enum Signed {
    Done(Option<Checkpoint>),
    NewerKey,
}

async fn sign_with_current_key(st: &AppState, force: bool) -> Result<Signed, SignError> {
    let now = st.clock.now();
    let due = move |last: &Option<(Checkpoint, String)>, head_seq: i64| {
        let covered = last.as_ref().map_or(0, |(cp, _)| cp.tree_size);
        head_seq > covered && (force || last.as_ref().is_none_or(|(cp, _)| now - cp.at >= INTERVAL))
    };
    // Read in one snapshot, outside the write lock: appends go on meanwhile.
    let next = match st.db.sqlite_file() {
        Some(path) => tokio::task::spawn_blocking(move || native::read_checkpoint_extension(&path, due))
            .await
            .map_err(|e| sqlx::Error::Protocol(format!("checkpoint task failed: {e}")))??,
        None => read_pool(&st.db, due).await?,
    };
    let Some(Next {
        last,
        head_seq,
        head_hash,
        frontier,
    }) = next
    else {
        return Ok(Signed::Done(None));
    };
    let keys = st.audit_keys.current();
    let cp = Checkpoint::sign(
        &keys.signing,
        last.as_ref().map(|(c, _)| c),
        head_seq,
        &frontier.root(),
        &head_hash,
        now,
    );

    let mut tx = st.db.begin_write().await?;
    // A rotation made a newer key: sign with it on the next pass, never
    // again with the old one (the head lock orders this against the
    // rotation's insert).
    let newest = super::keys::lock_and_newest(&mut tx).await?.map(|(id, _)| id);
    if newest.as_deref() != Some(keys.key_id.as_str()) {
        drop(tx);
        st.audit_keys.refresh(&st.db, &st.key).await?;
        return Ok(Signed::NewerKey);
    }
    // Another signer got there first: keep theirs.
    let current = latest(tx.conn()).await?.map(|c| c.number);
    if current != last.as_ref().map(|(c, _)| c.number) {
        return Ok(Signed::Done(None));
    }
    sqlx::query(&format!(
        "INSERT INTO audit_checkpoints ({CP_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
    ))
    .bind(cp.number)
    .bind(cp.tree_size)
    .bind(&cp.root)
    .bind(&cp.head_hash)
    .bind(&cp.prev_hash)
    .bind(cp.at)
    .bind(&cp.key_id)
    .bind(&cp.signature)
    .bind(frontier_text(&frontier))
    .execute(tx.conn())
    .await?;
    tx.commit().await?;
    Ok(Signed::Done(Some(cp)))
}

/// An inclusion proof of event `seq` under `cp`'s root.
pub struct Proof {
    pub seq: i64,
    pub leaf_index: u64,
    pub leaf_hash: Hash,
    pub event_hash: String,
    pub path: Vec<Hash>,
}

/// Reads the hashes of events 1..=`cp.tree_size` and builds the audit path
/// of event `seq`. `None` when the checkpoint does not cover `seq`.
pub async fn proof(db: &Db, cp: &Checkpoint, seq: i64) -> Result<Option<Proof>, sqlx::Error> {
    if seq < 1 || seq > cp.tree_size {
        return Ok(None);
    }
    Ok(proofs(db, cp, &[seq]).await?.pop())
}

/// The audit paths of several events under `cp`'s root, reading the
/// hashes of events 1..=`cp.tree_size` once. Events it does not cover are
/// left out.
pub async fn proofs(db: &Db, cp: &Checkpoint, seqs: &[i64]) -> Result<Vec<Proof>, sqlx::Error> {
    let mut leaves = Vec::with_capacity(cp.tree_size as usize);
    let mut hashes = std::collections::HashMap::new();
    let wanted: std::collections::HashSet<i64> = seqs.iter().copied().collect();
    {
        let mut rows = sqlx::query("SELECT seq, hash FROM audit_events WHERE seq <= ? ORDER BY seq")
            .bind(cp.tree_size)
            .fetch(db.pool());
        while let Some(row) = rows.try_next().await? {
            let h = text(&row, "hash")?;
            let seq: i64 = row.try_get("seq")?;
            leaves.push(merkle::leaf_from_hex(&h).unwrap_or([0; 32]));
            if wanted.contains(&seq) {
                hashes.insert(seq, h);
            }
        }
    }
    let mut out = Vec::with_capacity(seqs.len());
    for &seq in seqs.iter().filter(|s| (1..=cp.tree_size).contains(*s)) {
        let index = (seq - 1) as usize;
        let Some(path) = merkle::inclusion_proof(&leaves, index) else {
            continue;
        };
        out.push(Proof {
            seq,
            leaf_index: index as u64,
            leaf_hash: leaves[index],
            event_hash: hashes.get(&seq).cloned().unwrap_or_default(),
            path,
        });
    }
    Ok(out)
}

/// The Merkle frontier over events `1..=size`: from the stored frontier of
/// the latest checkpoint at or before `size`, plus the hashes after it.
pub async fn frontier_at(db: &Db, size: i64) -> Result<Frontier, sqlx::Error> {
    let row = sqlx::query(
        "SELECT tree_size, frontier FROM audit_checkpoints WHERE tree_size <= ? ORDER BY \
        tree_size DESC, number DESC LIMIT 1",
    )
    .bind(size)
    .fetch_optional(db.pool())
    .await?;
    let (mut frontier, from) = match row {
        Some(r) => match parse_frontier(&text(&r, "frontier")?) {
            Some(f) => (f, r.try_get::<i64, _>("tree_size")?),
            None => (Frontier::new(), 0),
        },
        None => (Frontier::new(), 0),
    };
    if frontier.size() as i64 != from {
        frontier = Frontier::new();
    }
    let start = frontier.size() as i64;
    let mut rows = sqlx::query("SELECT hash FROM audit_events WHERE seq > ? AND seq <= ? ORDER BY seq")
        .bind(start)
        .bind(size)
        .fetch(db.pool());
    while let Some(row) = rows.try_next().await? {
        frontier.push_leaf(merkle::leaf_from_hex(&text(&row, "hash")?).unwrap_or([0; 32]));
    }
    Ok(frontier)
}

/// Roots of the aligned subtrees covering events `after+1..=upto`, as
/// (first event, event count, root).
pub async fn subtrees(db: &Db, after: i64, upto: i64) -> Result<Vec<(i64, u64, Hash)>, sqlx::Error> {
    let mut out = Vec::new();
    for (at, len) in merkle::aligned_ranges(after as u64, upto as u64) {
        // Streamed: a subtree may span millions of events.
        let mut f = Frontier::new();
        let mut rows = sqlx::query("SELECT hash FROM audit_events WHERE seq > ? AND seq <= ? ORDER BY seq")
            .bind(at as i64)
            .bind((at + len) as i64)
            .fetch(db.pool());
        while let Some(row) = rows.try_next().await? {
            f.push_leaf(merkle::leaf_from_hex(&text(&row, "hash")?).unwrap_or([0; 32]));
        }
        out.push((at as i64 + 1, len, f.root()));
    }
    Ok(out)
}

/// The job: signs when a checkpoint is due. Failures are logged loudly; a
/// chain that does not verify is an incident, not a retry.
/// Whether the pass ended without an error (a checkpoint signed or none due).
pub async fn sign_due(st: &AppState) -> bool {
    match sign(st, false).await {
        Ok(Some(cp)) => tracing::info!(number = cp.number, tree_size = cp.tree_size, "signed audit checkpoint"),
        Ok(None) => {}
        Err(SignError::Broken { after, problem }) => {
            tracing::error!(after, problem = %problem, "AUDIT CHAIN DOES NOT VERIFY: checkpoint not signed");
            return false;
        }
        Err(e) => {
            tracing::error!(error = %e, "signing an audit checkpoint failed");
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frontiers_round_trip_through_text() {
        let mut f = Frontier::new();
        assert_eq!(parse_frontier(&frontier_text(&f)), Some(f.clone()));
        for i in 0..11u8 {
            f.push_leaf([i; 32]);
        }
        let t = frontier_text(&f);
        assert_eq!(t.split(',').count(), 3, "11 = 8 + 2 + 1");
        assert_eq!(parse_frontier(&t), Some(f));
        assert_eq!(parse_frontier("3:00"), None);
        assert_eq!(parse_frontier("x"), None);
    }
}
