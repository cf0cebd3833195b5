//! The stored Merkle tree (`audit_tree_nodes`, `audit_tree_state`): the
//! roots of perfect subtrees at every fourth height, kept up to the latest
//! signed checkpoint, so proofs and exports read O(log n) rows however
//! long the trail. Which nodes a proof needs, and how a stored height
//! stands in for the others, is domain::merkle::proofs; this module reads
//! and writes the rows.
//!
//! The store is an index, never a source of trust: each extension is
//! checked against the signed root it reaches before it is written, and
//! each proof is checked against its checkpoints' roots before it is
//! served.

use super::checkpoints::{frontier_text, parse_frontier};
use crate::domain::merkle::{
    self,
    proofs::{self, Ask, Known},
    Frontier, Hash,
};
use crate::server::platform::db::{text, Db};
use futures::TryStreamExt;
use sqlx::Row;
use std::collections::{BTreeMap, BTreeSet};

/// At most this many events are added to the store per transaction (and
/// then only up to a checkpoint, whose signed root they must reach).
const CHUNK: i64 = 1 << 20;
/// Ranges read per statement (SQLite allows 500 SELECTs in a compound).
const RANGES_PER_QUERY: usize = 100;
/// Nodes written per INSERT.
const ROWS_PER_INSERT: usize = 400;

#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    /// The events no longer hash to a root a checkpoint signed: the trail
    /// was changed after signing. Nothing is stored.
    #[error("events 1 to {size} no longer hash to the root signed by checkpoint {checkpoint}")]
    Mismatch { checkpoint: i64, size: i64 },
    /// The stored frontier cannot be read, or does not match the events.
    #[error("the stored Merkle tree state is damaged")]
    Damaged,
    /// A stored node is missing, extra or not the root of its events.
    #[error("the stored Merkle tree node at height {height}, index {idx} does not match the events")]
    Node { height: u32, idx: u64 },
}

/// Where the store stands: every stored node lies within leaves 0..size.
async fn state(db: &Db) -> Result<(i64, Frontier), TreeError> {
    let row = sqlx::query("SELECT size, frontier FROM audit_tree_state WHERE id = 1")
        .fetch_one(db.pool())
        .await?;
    let size: i64 = row.try_get("size")?;
    let frontier = parse_frontier(&text(&row, "frontier")?)
        .filter(|f| f.size() as i64 == size)
        .ok_or(TreeError::Damaged)?;
    Ok((size, frontier))
}

/// The checkpoint the next extension reaches: the furthest within CHUNK
/// events, or else the first beyond. (number, tree size, root.)
async fn next_target(db: &Db, size: i64) -> Result<Option<(i64, i64, String)>, sqlx::Error> {
    let within = "SELECT number, tree_size, root FROM audit_checkpoints WHERE tree_size > ? AND tree_size <= ? \
                  ORDER BY tree_size DESC LIMIT 1";
    let beyond = "SELECT number, tree_size, root FROM audit_checkpoints WHERE tree_size > ? ORDER BY tree_size LIMIT 1";
    let mut row = sqlx::query(within)
        .bind(size)
        .bind(size + CHUNK)
        .fetch_optional(db.pool())
        .await?;
    if row.is_none() {
        row = sqlx::query(beyond).bind(size).fetch_optional(db.pool()).await?;
    }
    row.map(|r| Ok((r.try_get("number")?, r.try_get("tree_size")?, text(&r, "root")?)))
        .transpose()
}

/// Brings the store up to the latest signed checkpoint (a trail older
/// than the store is filled here, a chunk per transaction). Returns the
/// events added. A trail that no longer matches a signed root stops it.
pub async fn extend(db: &Db) -> Result<i64, TreeError> {
    let mut added = 0;
    loop {
        let (size, mut frontier) = state(db).await?;
        let Some((number, target, signed_root)) = next_target(db, size).await? else {
            return Ok(added);
        };
        let nodes = grow(db, &mut frontier, size, target).await?;
        if frontier.size() as i64 != target || hex::encode(frontier.root()) != signed_root {
            return Err(TreeError::Mismatch {
                checkpoint: number,
                size: target,
            });
        }
        let mut tx = db.begin_write().await?;
        // Another server got there first: start again from where it left.
        let moved = sqlx::query("UPDATE audit_tree_state SET size = ?, frontier = ? WHERE id = 1 AND size = ?")
            .bind(target)
            .bind(frontier_text(&frontier))
            .bind(size)
            .execute(tx.conn())
            .await?
            .rows_affected();
        if moved == 0 {
            continue;
        }
        for batch in nodes.chunks(ROWS_PER_INSERT) {
            let sql = format!(
                "INSERT INTO audit_tree_nodes (height, idx, hash) VALUES {}",
                vec!["(?, ?, ?)"; batch.len()].join(", ")
            );
            let mut q = sqlx::query(&sql);
            for (height, idx, h) in batch {
                q = q.bind(*height as i64).bind(*idx as i64).bind(hex::encode(h));
            }
            q.execute(tx.conn()).await?;
        }
        tx.commit().await?;
        added += target - size;
    }
}

/// Adds events `from+1..=to` to `frontier`; the nodes the store keeps
/// among the subtrees that completes, as (height, index, root).
async fn grow(db: &Db, frontier: &mut Frontier, from: i64, to: i64) -> Result<Vec<(u32, u64, Hash)>, sqlx::Error> {
    let mut nodes = Vec::new();
    let mut rows = sqlx::query("SELECT hash FROM audit_events WHERE seq > ? AND seq <= ? ORDER BY seq")
        .bind(from)
        .bind(to)
        .fetch(db.pool());
    while let Some(row) = rows.try_next().await? {
        let leaf = merkle::leaf_from_hex(&text(&row, "hash")?).unwrap_or([0; 32]);
        frontier.push_leaf_reporting(leaf, |at, len, h| {
            if proofs::kept(len) {
                nodes.push((len.trailing_zeros(), at / len, *h));
            }
        });
    }
    Ok(nodes)
}

/// Checks the store against the events (`gatehouse audit verify`): every
/// node it should hold, present with the root its events hash to, nothing
/// else, and its frontier. Proofs from a damaged store are refused when
/// served; this says where it is damaged. Returns the nodes checked.
pub async fn check(db: &Db) -> Result<u64, TreeError> {
    // The store's state and nodes from one snapshot; events never change
    // (and a changed one shows here as a node that does not match).
    let mut tx = db.pool().begin().await?;
    let row = sqlx::query("SELECT size, frontier FROM audit_tree_state WHERE id = 1")
        .fetch_one(&mut *tx)
        .await?;
    let size: i64 = row.try_get("size")?;
    let stored_frontier = text(&row, "frontier")?;
    let mut frontier = Frontier::new();
    let mut expected = grow(db, &mut frontier, 0, size).await?;
    if frontier.size() as i64 != size || frontier_text(&frontier) != stored_frontier {
        return Err(TreeError::Damaged);
    }
    expected.sort_unstable_by_key(|&(h, idx, _)| (h, idx));
    let mut expected = expected.into_iter();
    let mut checked = 0;
    {
        let mut rows =
            sqlx::query("SELECT height, idx, hash FROM audit_tree_nodes ORDER BY height, idx").fetch(&mut *tx);
        while let Some(r) = rows.try_next().await? {
            let (height, idx): (i64, i64) = (r.try_get("height")?, r.try_get("idx")?);
            let got = (height as u32, idx as u64);
            let Some((h, i, root)) = expected.next() else {
                return Err(TreeError::Node {
                    height: got.0,
                    idx: got.1,
                });
            };
            // A node missing, or one extra: the first out of place is named.
            let (height, idx) = (h, i).min(got);
            if (h, i) != got || text(&r, "hash")? != hex::encode(root) {
                return Err(TreeError::Node { height, idx });
            }
            checked += 1;
        }
    }
    if let Some((height, idx, _)) = expected.next() {
        return Err(TreeError::Node { height, idx });
    }
    tx.rollback().await?;
    Ok(checked)
}

/// How far the store goes (for metrics and tests).
pub async fn stored_size(db: &Db) -> Result<i64, TreeError> {
    Ok(state(db).await?.0)
}

/// Fills `known` with the roots of the perfect subtrees `wanted` names
/// that it lacks: stored nodes and event hashes, a few statements for
/// all of them. A subtree the store does not reach yet (the job is
/// behind) is hashed from its events.
pub async fn fetch(db: &Db, wanted: &BTreeSet<(u64, u64)>, known: &mut Known) -> Result<(), sqlx::Error> {
    // (height, first index, count) per subtree; the rows each needs.
    let missing: Vec<(u64, u64)> = wanted.iter().filter(|k| !known.0.contains_key(k)).copied().collect();
    let plans: Vec<(u32, u64, u64)> = missing.iter().map(|&(s, l)| proofs::stored_parts(s, l)).collect();
    let mut rows: BTreeMap<(u32, u64), Hash> = BTreeMap::new();
    let leaf_ranges: Vec<(u64, u64)> = plans.iter().filter(|p| p.0 == 0).map(|p| (p.1, p.2)).collect();
    for chunk in leaf_ranges.chunks(RANGES_PER_QUERY) {
        let sql =
            vec!["SELECT seq, hash FROM audit_events WHERE seq > ? AND seq <= ?"; chunk.len()].join(" UNION ALL ");
        let mut q = sqlx::query(&sql);
        for (first, n) in chunk {
            q = q.bind(*first as i64).bind((first + n) as i64);
        }
        for r in q.fetch_all(db.pool()).await? {
            let seq: i64 = r.try_get("seq")?;
            let leaf = merkle::leaf_from_hex(&text(&r, "hash")?).unwrap_or([0; 32]);
            rows.insert((0, seq as u64 - 1), leaf);
        }
    }
    let node_ranges: Vec<&(u32, u64, u64)> = plans.iter().filter(|p| p.0 > 0).collect();
    for chunk in node_ranges.chunks(RANGES_PER_QUERY) {
        let sql = vec![
            "SELECT height, idx, hash FROM audit_tree_nodes WHERE height = ? AND idx >= ? AND idx < ?";
            chunk.len()
        ]
        .join(" UNION ALL ");
        let mut q = sqlx::query(&sql);
        for (h, first, n) in chunk {
            q = q.bind(*h as i64).bind(*first as i64).bind((first + n) as i64);
        }
        for r in q.fetch_all(db.pool()).await? {
            let (h, idx): (i64, i64) = (r.try_get("height")?, r.try_get("idx")?);
            let mut hash = [0u8; 32];
            if hex::decode_to_slice(text(&r, "hash")?, &mut hash).is_ok() {
                rows.insert((h as u32, idx as u64), hash);
            }
        }
    }
    for (&(start, len), &(h, first, n)) in missing.iter().zip(&plans) {
        let parts: Option<Vec<Hash>> = (first..first + n).map(|i| rows.get(&(h, i)).copied()).collect();
        let root = match parts {
            Some(parts) => merkle::root(&parts),
            None => hashed_from_events(db, start, len).await?,
        };
        known.0.insert((start, len), root);
    }
    Ok(())
}

/// The root of leaves `start..start+len`, from their events (streamed).
async fn hashed_from_events(db: &Db, start: u64, len: u64) -> Result<Hash, sqlx::Error> {
    let mut f = Frontier::new();
    let mut rows = sqlx::query("SELECT hash FROM audit_events WHERE seq > ? AND seq <= ? ORDER BY seq")
        .bind(start as i64)
        .bind((start + len) as i64)
        .fetch(db.pool());
    while let Some(row) = rows.try_next().await? {
        f.push_leaf(merkle::leaf_from_hex(&text(&row, "hash")?).unwrap_or([0; 32]));
    }
    Ok(f.root())
}

/// The subtree roots `known` already holds from a checkpoint's frontier
/// (the right edge of its tree): a proof then reads only the rest.
pub fn seed(known: &mut Known, frontier: &Frontier) {
    for (start, len, h) in frontier.positioned() {
        known.0.insert((start, len), h);
    }
}

/// Builds the proofs `asks` name from `known` and the store, fetching
/// what they need together. `None` for an ask that names no proof.
pub async fn prove(db: &Db, known: &mut Known, asks: &[Ask]) -> Result<Vec<Option<Vec<Hash>>>, sqlx::Error> {
    let mut wanted = BTreeSet::new();
    for ask in asks {
        if let Ok(w) = ask.wanted() {
            wanted.extend(w);
        }
    }
    fetch(db, &wanted, known).await?;
    Ok(asks.iter().map(|ask| ask.run(known).ok()).collect())
}

/// The roots of the aligned perfect subtrees `ranges` names, in order.
pub async fn roots(db: &Db, ranges: &[(u64, u64)]) -> Result<Vec<Hash>, sqlx::Error> {
    let mut known = Known::default();
    fetch(db, &ranges.iter().copied().collect(), &mut known).await?;
    Ok(ranges.iter().map(|k| known.0[k]).collect())
}
