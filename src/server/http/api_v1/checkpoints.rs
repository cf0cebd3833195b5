//! Signed checkpoints, public keys and inclusion proofs, for auditors' tools.

use super::{error, internal, signed_in_with};
use crate::domain::permissions::Permission;
use crate::server::{
    audit::{self, checkpoints},
    platform::request::RequestCtx,
    state::AppState,
};
use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    Extension, Json,
};
use serde::Deserialize;
use serde_json::{json, Value};

// ------------------------------------------------------- signed checkpoints

fn checkpoint_json(cp: &crate::domain::checkpoint::Checkpoint) -> Value {
    json!({
        "number": cp.number,
        "tree_size": cp.tree_size,
        "root": cp.root,
        "head_hash": cp.head_hash,
        "prev_hash": cp.prev_hash,
        "at": cp.at,
        "key_id": cp.key_id,
        "signature": cp.signature,
        "signed_message": cp.message(),
    })
}

/// GET /api/v1/audit/public-key: the keys that sign checkpoints. Public, so
/// anyone holding a checkpoint or an export can check it.
pub async fn public_key(State(st): State<AppState>, Extension(ctx): Extension<RequestCtx>) -> Response {
    match audit::public_keys(&st.db).await {
        Ok(keys) => Json(json!({
            "algorithm": "Ed25519",
            "signed_format": crate::domain::checkpoint::FORMAT,
            "current_key_id": st.audit_keys.key_id,
            "keys": keys.iter().map(|(id, pk, at)| json!({ "key_id": id, "public_key": pk, "created_at": at })).collect::<Vec<_>>(),
        }))
        .into_response(),
        Err(e) => internal(&ctx.request_id, e),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointQuery {
    #[serde(default)]
    pub after: Option<i64>,
    #[serde(default)]
    pub limit: Option<i64>,
}

/// GET /api/v1/audit/checkpoints?after=N&limit=M: signed checkpoints in
/// order (audit:read).
pub async fn checkpoints(
    State(st): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    query: Result<axum::extract::Query<CheckpointQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let rid = ctx.request_id.clone();
    if let Err(r) = signed_in_with(
        &st,
        &ctx,
        Permission::AuditRead,
        "audit_checkpoints",
        "read the audit trail",
    )
    .await
    {
        return r;
    }
    let Ok(axum::extract::Query(q)) = query else {
        return error(
            StatusCode::BAD_REQUEST,
            "Use after and limit, both whole numbers.",
            &rid,
        );
    };
    let limit = q.limit.unwrap_or(100);
    if !(1..=1_000).contains(&limit) {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "limit must be between 1 and 1000.",
            &rid,
        );
    }
    match checkpoints::list(st.db.reader(), q.after.unwrap_or(0).max(0), limit).await {
        Ok(list) => {
            Json(json!({ "checkpoints": list.iter().map(checkpoint_json).collect::<Vec<_>>() })).into_response()
        }
        Err(e) => internal(&rid, e),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProofQuery {
    #[serde(default)]
    pub checkpoint: Option<i64>,
}

/// GET /api/v1/audit/proofs/{seq}?checkpoint=N: an RFC 6962 inclusion proof
/// that event `seq` is under the root of checkpoint N (default: the latest)
/// (audit:read).
pub async fn proof(
    State(st): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    path: Result<axum::extract::Path<i64>, axum::extract::rejection::PathRejection>,
    query: Result<axum::extract::Query<ProofQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let rid = ctx.request_id.clone();
    if let Err(r) = signed_in_with(&st, &ctx, Permission::AuditRead, "audit_proof", "read the audit trail").await {
        return r;
    }
    let (Ok(axum::extract::Path(seq)), Ok(axum::extract::Query(q))) = (path, query) else {
        return error(
            StatusCode::BAD_REQUEST,
            "Name an event by its number, and optionally ?checkpoint=N.",
            &rid,
        );
    };
    let cp = match q.checkpoint {
        Some(n) => checkpoints::by_number(&st.db, n).await,
        None => checkpoints::latest(st.db.reader()).await,
    };
    let cp = match cp {
        Ok(Some(cp)) => cp,
        Ok(None) => return error(StatusCode::NOT_FOUND, "There is no such signed checkpoint yet.", &rid),
        Err(e) => return internal(&rid, e),
    };
    match checkpoints::proof(&st.db, &cp, seq).await {
        Ok(Some(p)) => Json(json!({
            "seq": p.seq,
            "leaf_index": p.leaf_index,
            "event_hash": p.event_hash,
            "leaf_hash": hex::encode(p.leaf_hash),
            "tree_size": cp.tree_size,
            "audit_path": p.path.iter().map(hex::encode).collect::<Vec<_>>(),
            "checkpoint": checkpoint_json(&cp),
            "how_to_verify": "RFC 9162 section 2.1.3.2: leaf_hash = SHA-256(0x00 || event_hash bytes); \
                              combine with audit_path using SHA-256(0x01 || left || right) to reach checkpoint.root; \
                              check checkpoint.signature (Ed25519, hex) over signed_message with the public key at /api/v1/audit/public-key.",
        }))
        .into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("Checkpoint {} covers events 1 to {}; event {seq} is not among them.", cp.number, cp.tree_size), &rid),
        Err(e) => internal(&rid, e),
    }
}
