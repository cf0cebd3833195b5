//! Signed checkpoints as stored (`audit_checkpoints`): signing (every
//! minute while events arrive, and on demand), listing, and inclusion
//! proofs. The rules live in domain::checkpoint and domain::merkle.

use super::{log, native};
use crate::domain::{
    audit::{EventRef, Verifier, GENESIS_HASH},
    checkpoint::Checkpoint,
    merkle::{self, proofs::Ask, Frontier, Hash},
    Millis, MINUTE,
};
use crate::server::{
    platform::db::{text, Db},
    state::AppState,
};
use futures::TryStreamExt;
use sqlx::Row;
use std::collections::HashMap;

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

/// The first checkpoint whose `column` (number or tree_size) is `value`,
/// with its stored frontier text.
async fn one_where(db: &Db, column: &str, value: i64) -> Result<Option<(Checkpoint, String)>, sqlx::Error> {
    let sql = format!("SELECT {CP_COLS} FROM audit_checkpoints WHERE {column} = ? ORDER BY number LIMIT 1");
    sqlx::query(&sql)
        .bind(value)
        .fetch_optional(db.pool())
        .await?
        .as_ref()
        .map(from_row)
        .transpose()
}

pub async fn by_number(db: &Db, number: i64) -> Result<Option<Checkpoint>, sqlx::Error> {
    Ok(one_where(db, "number", number).await?.map(|(c, _)| c))
}

/// The checkpoint that signed a tree of exactly `size` events.
pub async fn at_size(db: &Db, size: i64) -> Result<Option<Checkpoint>, sqlx::Error> {
    Ok(one_where(db, "tree_size", size).await?.map(|(c, _)| c))
}

pub(super) fn frontier_text(f: &Frontier) -> String {
    f.nodes()
        .iter()
        .map(|(n, h)| format!("{n}:{}", hex::encode(h)))
        .collect::<Vec<_>>()
        .join(",")
}

pub(super) fn parse_frontier(s: &str) -> Option<Frontier> {
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

/// The audit path of event `seq` under `cp`'s root. `None` when the
/// checkpoint does not cover `seq`.
pub async fn proof(db: &Db, cp: &Checkpoint, seq: i64) -> Result<Option<Proof>, sqlx::Error> {
    if seq < 1 || seq > cp.tree_size {
        return Ok(None);
    }
    Ok(proofs(db, cp, &[seq]).await?.pop())
}

/// The frontier stored with a checkpoint: the roots along its tree's
/// right edge, which proofs against it need and need not read.
async fn stored_frontier(db: &Db, number: i64) -> Result<Option<Frontier>, sqlx::Error> {
    Ok(one_where(db, "number", number)
        .await?
        .and_then(|(_, f)| parse_frontier(&f)))
}

fn signed_root(cp: &Checkpoint) -> Option<Hash> {
    let mut r = [0u8; 32];
    hex::decode_to_slice(&cp.root, &mut r).ok().map(|_| r)
}

/// A proof built from stored nodes that does not reach its checkpoint's
/// signed root: the store or the events were changed. Logged loudly; the
/// caller answers an internal error.
fn disagrees(number: i64, what: &str) -> sqlx::Error {
    tracing::error!(
        checkpoint = number,
        what,
        "AUDIT TREE DISAGREES WITH A SIGNED CHECKPOINT"
    );
    sqlx::Error::Protocol(format!("the stored Merkle tree disagrees with checkpoint {number}"))
}

/// The audit paths of several events under `cp`'s root, from O(log n)
/// stored subtree roots each (fetched together). Events it does not cover
/// are left out. Each path is checked against the signed root first.
pub async fn proofs(db: &Db, cp: &Checkpoint, seqs: &[i64]) -> Result<Vec<Proof>, sqlx::Error> {
    let seqs: Vec<i64> = seqs
        .iter()
        .copied()
        .filter(|s| (1..=cp.tree_size).contains(s))
        .collect();
    let mut known = merkle::proofs::Known::default();
    if let Some(f) = stored_frontier(db, cp.number)
        .await?
        .filter(|f| f.size() as i64 == cp.tree_size)
    {
        super::tree::seed(&mut known, &f);
    }
    let asks: Vec<Ask> = seqs
        .iter()
        .map(|&s| Ask::Inclusion {
            index: s as u64 - 1,
            size: cp.tree_size as u64,
        })
        .collect();
    let paths = super::tree::prove(db, &mut known, &asks).await?;
    let hashes = event_hashes(db, &seqs).await?;
    let root = signed_root(cp);
    let mut out = Vec::with_capacity(seqs.len());
    for (&seq, path) in seqs.iter().zip(paths) {
        let (Some(path), Some(event_hash)) = (path, hashes.get(&seq)) else {
            return Err(disagrees(cp.number, "an event or a node is missing"));
        };
        let leaf = merkle::leaf_from_hex(event_hash).unwrap_or([0; 32]);
        let index = seq as u64 - 1;
        if !root.is_some_and(|r| merkle::verify_inclusion(&leaf, index, cp.tree_size as u64, &path, &r)) {
            return Err(disagrees(cp.number, "inclusion proof"));
        }
        out.push(Proof {
            seq,
            leaf_index: index,
            leaf_hash: leaf,
            event_hash: event_hash.clone(),
            path,
        });
    }
    Ok(out)
}

async fn event_hashes(db: &Db, seqs: &[i64]) -> Result<HashMap<i64, String>, sqlx::Error> {
    let mut out = HashMap::with_capacity(seqs.len());
    for chunk in seqs.chunks(500) {
        let sql = format!(
            "SELECT seq, hash FROM audit_events WHERE seq IN ({})",
            vec!["?"; chunk.len()].join(", ")
        );
        let mut q = sqlx::query(&sql);
        for s in chunk {
            q = q.bind(*s);
        }
        for r in q.fetch_all(db.pool()).await? {
            out.insert(r.try_get("seq")?, text(&r, "hash")?);
        }
    }
    Ok(out)
}

/// The RFC 9162 consistency proof that `to`'s tree extends `from`'s
/// (`from` no larger), from O(log n) stored subtree roots, checked
/// against both signed roots before it is returned.
pub async fn consistency(db: &Db, from: &Checkpoint, to: &Checkpoint) -> Result<Vec<Hash>, sqlx::Error> {
    let mut known = merkle::proofs::Known::default();
    for cp in [from, to] {
        if let Some(f) = stored_frontier(db, cp.number)
            .await?
            .filter(|f| f.size() as i64 == cp.tree_size)
        {
            super::tree::seed(&mut known, &f);
        }
    }
    let ask = Ask::Consistency {
        first: from.tree_size as u64,
        second: to.tree_size as u64,
    };
    let Some(Some(proof)) = super::tree::prove(db, &mut known, &[ask]).await?.pop() else {
        return Err(disagrees(to.number, "no consistency proof"));
    };
    let ok = match (signed_root(from), signed_root(to)) {
        (Some(a), Some(b)) => {
            merkle::proofs::verify_consistency(from.tree_size as u64, to.tree_size as u64, &a, &b, &proof)
        }
        _ => false,
    };
    if !ok {
        return Err(disagrees(to.number, "consistency proof"));
    }
    Ok(proof)
}

/// The Merkle frontier over events `1..=size`: the roots of its aligned
/// perfect subtrees, O(log n) stored rows.
pub async fn frontier_at(db: &Db, size: i64) -> Result<Frontier, sqlx::Error> {
    let ranges = merkle::aligned_ranges(0, size.max(0) as u64);
    let roots = super::tree::roots(db, &ranges).await?;
    Ok(Frontier::from_nodes(ranges.iter().map(|r| r.1).zip(roots).collect()).unwrap_or_default())
}

/// Roots of the aligned subtrees covering events `after+1..=upto`, as
/// (first event, event count, root).
pub async fn subtrees(db: &Db, after: i64, upto: i64) -> Result<Vec<(i64, u64, Hash)>, sqlx::Error> {
    let ranges = merkle::aligned_ranges(after as u64, upto as u64);
    let roots = super::tree::roots(db, &ranges).await?;
    Ok(ranges
        .iter()
        .zip(roots)
        .map(|(&(at, len), root)| (at as i64 + 1, len, root))
        .collect())
}

/// The job: signs when a checkpoint is due, then extends the stored tree
/// to it. Failures are logged loudly; a chain that does not verify is an
/// incident, not a retry.
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
    // The stored tree follows the checkpoints (and fills in an older trail).
    match super::tree::extend(&st.db).await {
        Ok(0) => {}
        Ok(added) => tracing::debug!(added, "audit tree extended"),
        Err(e @ super::tree::TreeError::Mismatch { .. }) => {
            tracing::error!(problem = %e, "AUDIT CHAIN CHANGED AFTER SIGNING: stored tree not extended");
            return false;
        }
        Err(e) => {
            tracing::error!(error = %e, "extending the stored audit tree failed");
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
