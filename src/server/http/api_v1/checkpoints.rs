//! Signed checkpoints, public keys and inclusion proofs, for auditors' tools.

use super::reader;
use crate::domain::{checkpoint::Checkpoint, witness::Cosignature, Millis};
use crate::server::{
    audit::{self, checkpoints, witnesses},
    http::error::ApiError,
    platform::request::RequestCtx,
    state::AppState,
};
use axum::{
    extract::{
        rejection::{PathRejection, QueryRejection},
        Path, Query, State,
    },
    http::HeaderMap,
    Extension, Json,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// A signed checkpoint: the state of the trail at `tree_size` events.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignedCheckpoint {
    /// 1, 2, 3, ... in signing order.
    pub number: i64,
    /// Events covered: 1 through `tree_size`.
    pub tree_size: i64,
    /// RFC 6962 Merkle root over those events (hex).
    pub root: String,
    /// Hash of event `tree_size` (hex).
    pub head_hash: String,
    /// Digest of the previous checkpoint; zeros for the first.
    pub prev_hash: String,
    /// Milliseconds since the Unix epoch.
    pub at: Millis,
    pub key_id: String,
    /// Ed25519 signature over `signed_message` (hex).
    pub signature: String,
    pub signed_message: String,
}

impl From<&Checkpoint> for SignedCheckpoint {
    fn from(cp: &Checkpoint) -> Self {
        Self {
            number: cp.number,
            tree_size: cp.tree_size,
            root: cp.root.clone(),
            head_hash: cp.head_hash.clone(),
            prev_hash: cp.prev_hash.clone(),
            at: cp.at,
            key_id: cp.key_id.clone(),
            signature: cp.signature.clone(),
            signed_message: cp.message(),
        }
    }
}

/// The keys that sign checkpoints.
#[derive(Debug, Serialize, ToSchema)]
pub struct PublicKeys {
    /// Always `Ed25519`.
    pub algorithm: &'static str,
    /// The format tag every signed message starts with.
    pub signed_format: String,
    pub current_key_id: String,
    pub keys: Vec<PublicKey>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PublicKey {
    pub key_id: String,
    /// 32 bytes, hex.
    pub public_key: String,
    /// Milliseconds since the Unix epoch.
    pub created_at: Millis,
}

/// GET /api/v1/audit/public-key: the keys that sign checkpoints. Public, so
/// anyone holding a checkpoint or an export can check it.
#[utoipa::path(
    get,
    path = "/api/v1/audit/public-key",
    tag = "audit",
    summary = "The Ed25519 public keys that sign audit checkpoints",
    description = "Public: no authentication.",
    responses((status = 200, description = "The keys, the current one named", body = PublicKeys), ApiError),
    security(())
)]
pub async fn public_key(State(st): State<AppState>) -> Result<Json<PublicKeys>, ApiError> {
    let keys = audit::public_keys(&st.db).await?;
    Ok(Json(PublicKeys {
        algorithm: "Ed25519",
        signed_format: crate::domain::checkpoint::FORMAT.to_owned(),
        current_key_id: st.audit_keys.current().key_id.clone(),
        keys: keys
            .into_iter()
            .map(|(key_id, public_key, created_at)| PublicKey {
                key_id,
                public_key,
                created_at,
            })
            .collect(),
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CheckpointQuery {
    /// Only checkpoints numbered after this one.
    #[serde(default)]
    #[param(minimum = 0)]
    pub after: Option<i64>,
    /// At most this many (default 100).
    #[serde(default)]
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CheckpointList {
    pub checkpoints: Vec<SignedCheckpoint>,
    /// Witnesses' co-signatures of the listed checkpoints (see
    /// docs/audit-chain.md, "Witnesses"), retired witnesses' included.
    pub cosignatures: Vec<WitnessCosignature>,
}

/// A witness's Ed25519 signature over the checkpoint's co-signed message.
#[derive(Debug, Serialize, ToSchema)]
pub struct WitnessCosignature {
    /// The checkpoint's number.
    pub checkpoint: i64,
    pub witness: String,
    /// The witness's public key (hex).
    pub public_key: String,
    /// Hex.
    pub signature: String,
}

impl From<Cosignature> for WitnessCosignature {
    fn from(c: Cosignature) -> Self {
        Self {
            checkpoint: c.checkpoint,
            witness: c.witness,
            public_key: c.public_key,
            signature: c.signature,
        }
    }
}

/// GET /api/v1/audit/checkpoints?after=N&limit=M: signed checkpoints in
/// order (audit:read).
#[utoipa::path(
    get,
    path = "/api/v1/audit/checkpoints",
    tag = "audit",
    summary = "Signed checkpoints in order",
    description = "A signed-in employee with audit:read, or a token with audit:witness. Each names tree_size, \\
                   the RFC 6962 Merkle root over events 1..tree_size, the head hash, the digest of the previous \\
                   checkpoint, and signs signed_message.",
    params(CheckpointQuery),
    responses((status = 200, description = "The checkpoints", body = CheckpointList), ApiError),
    security(("session" = []), ("bearer" = []))
)]
pub async fn checkpoints(
    State(st): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    headers: HeaderMap,
    query: Result<Query<CheckpointQuery>, QueryRejection>,
) -> Result<Json<CheckpointList>, ApiError> {
    reader(&st, &ctx, &headers, "audit_checkpoints").await?;
    let Ok(Query(q)) = query else {
        return Err(ApiError::bad_request("Use after and limit, both whole numbers."));
    };
    let limit = q.limit.unwrap_or(100);
    if !(1..=1_000).contains(&limit) {
        return Err(ApiError::unprocessable("limit must be between 1 and 1000."));
    }
    let list = checkpoints::list(st.db.pool(), q.after.unwrap_or(0).max(0), limit).await?;
    let cosignatures = match (list.first(), list.last()) {
        (Some(a), Some(b)) => witnesses::cosignatures(&st.db, a.number, b.number, false).await?,
        _ => Vec::new(),
    };
    Ok(Json(CheckpointList {
        checkpoints: list.iter().map(SignedCheckpoint::from).collect(),
        cosignatures: cosignatures.into_iter().map(WitnessCosignature::from).collect(),
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ProofQuery {
    /// The checkpoint to prove against (default: the latest).
    #[serde(default)]
    #[param(minimum = 1)]
    pub checkpoint: Option<i64>,
}

/// An inclusion proof, and how to check it.
#[derive(Debug, Serialize, ToSchema)]
pub struct InclusionProof {
    pub seq: i64,
    pub leaf_index: u64,
    pub event_hash: String,
    pub leaf_hash: String,
    pub tree_size: i64,
    pub audit_path: Vec<String>,
    pub checkpoint: SignedCheckpoint,
    pub how_to_verify: &'static str,
}

/// GET /api/v1/audit/proofs/{seq}?checkpoint=N: an RFC 6962 inclusion proof
/// that event `seq` is under the root of checkpoint N (default: the latest)
/// (audit:read).
#[utoipa::path(
    get,
    path = "/api/v1/audit/proofs/{seq}",
    tag = "audit",
    summary = "An inclusion proof of one event under a signed checkpoint",
    description = "A signed-in employee with audit:read, or a token with audit:witness. RFC 6962 inclusion \\
                   proof that event seq is under the root of a checkpoint (default the latest), with the checkpoint.",
    params(("seq" = i64, Path, minimum = 1, description = "The event's number"), ProofQuery),
    responses(
        (status = 200, description = "The proof", body = InclusionProof),
        ApiError
    ),
    security(("session" = []), ("bearer" = []))
)]
pub async fn proof(
    State(st): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    headers: HeaderMap,
    path: Result<Path<i64>, PathRejection>,
    query: Result<Query<ProofQuery>, QueryRejection>,
) -> Result<Json<InclusionProof>, ApiError> {
    reader(&st, &ctx, &headers, "audit_proof").await?;
    let (Ok(Path(seq)), Ok(Query(q))) = (path, query) else {
        return Err(ApiError::bad_request(
            "Name an event by its number, and optionally ?checkpoint=N.",
        ));
    };
    let cp = match q.checkpoint {
        Some(n) => checkpoints::by_number(&st.db, n).await?,
        None => checkpoints::latest(st.db.pool()).await?,
    };
    let cp = cp.ok_or_else(|| ApiError::not_found("There is no such signed checkpoint yet."))?;
    let Some(p) = checkpoints::proof(&st.db, &cp, seq).await? else {
        return Err(ApiError::not_found(format!(
            "Checkpoint {} covers events 1 to {}; event {seq} is not among them.",
            cp.number, cp.tree_size
        )));
    };
    Ok(Json(InclusionProof {
        seq: p.seq,
        leaf_index: p.leaf_index,
        event_hash: p.event_hash,
        leaf_hash: hex::encode(p.leaf_hash),
        tree_size: cp.tree_size,
        audit_path: p.path.iter().map(hex::encode).collect(),
        checkpoint: SignedCheckpoint::from(&cp),
        how_to_verify: "RFC 9162 section 2.1.3.2: leaf_hash = SHA-256(0x00 || event_hash bytes); \
                        combine with audit_path using SHA-256(0x01 || left || right) to reach checkpoint.root; \
                        check checkpoint.signature (Ed25519, hex) over signed_message with the public key at \
                        /api/v1/audit/public-key.",
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ConsistencyQuery {
    /// The tree size of the older signed checkpoint.
    #[param(minimum = 1)]
    pub from: i64,
    /// The tree size of the newer signed checkpoint (at least `from`).
    #[param(minimum = 1)]
    pub to: i64,
}

/// A consistency proof between two signed checkpoints, and how to check it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsistencyProof {
    /// The older checkpoint (tree size `from`).
    pub from: SignedCheckpoint,
    /// The newer checkpoint (tree size `to`).
    pub to: SignedCheckpoint,
    /// RFC 9162 section 2.1.4.1 proof nodes (hex), empty when the sizes are equal.
    pub proof: Vec<String>,
    pub how_to_verify: &'static str,
}

/// GET /api/v1/audit/consistency?from=N&to=M: the RFC 9162 proof that the
/// tree of the checkpoint with M events extends the one with N (audit:read).
#[utoipa::path(
    get,
    path = "/api/v1/audit/consistency",
    tag = "audit",
    summary = "A consistency proof between two signed checkpoints",
    description = "A signed-in employee with audit:read, or a token with audit:witness. from and to are the \\
                   tree sizes of two signed checkpoints (from <= to); the proof shows the newer tree extends the \\
                   older one without rewriting it.",
    params(ConsistencyQuery),
    responses((status = 200, description = "The proof, with both checkpoints", body = ConsistencyProof), ApiError),
    security(("session" = []), ("bearer" = []))
)]
pub async fn consistency(
    State(st): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    headers: HeaderMap,
    query: Result<Query<ConsistencyQuery>, QueryRejection>,
) -> Result<Json<ConsistencyProof>, ApiError> {
    reader(&st, &ctx, &headers, "audit_consistency").await?;
    let Ok(Query(q)) = query else {
        return Err(ApiError::bad_request(
            "Name two tree sizes as whole numbers: ?from=N&to=M.",
        ));
    };
    if q.from < 1 || q.from > q.to {
        return Err(ApiError::unprocessable(
            "from and to are tree sizes of signed checkpoints, with 1 <= from <= to.",
        ));
    }
    let mut found = Vec::with_capacity(2);
    for size in [q.from, q.to] {
        found.push(
            checkpoints::at_size(&st.db, size)
                .await?
                .ok_or_else(|| ApiError::not_found(format!("No signed checkpoint covers exactly {size} events.")))?,
        );
    }
    let (from, to) = (&found[0], &found[1]);
    let proof = checkpoints::consistency(&st.db, from, to).await?;
    Ok(Json(ConsistencyProof {
        from: SignedCheckpoint::from(from),
        to: SignedCheckpoint::from(to),
        proof: proof.iter().map(hex::encode).collect(),
        how_to_verify: "RFC 9162 section 2.1.4.2 with first = from.tree_size, second = to.tree_size, first_hash = \
                        from.root, second_hash = to.root and consistency_path = proof; check both checkpoints' \
                        signatures (Ed25519 over signed_message) with the keys at /api/v1/audit/public-key.",
    }))
}
