//! `POST /api/v1/audit/cosignatures`: a witness posts its co-signature of a
//! checkpoint it accepted (docs/audit-chain.md, "Witnesses").

use super::authenticate;
use crate::domain::service::Scope;
use crate::server::{
    audit::witnesses::{self, CosignError},
    http::error::ApiError,
    platform::request::RequestCtx,
    state::AppState,
};
use axum::{
    extract::State,
    http::{HeaderMap, StatusCode},
    Extension, Json,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A witness's co-signature of one checkpoint.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCosignature {
    /// The checkpoint's number.
    #[schema(minimum = 1)]
    pub checkpoint: i64,
    /// The witness's registered Ed25519 public key (hex).
    #[schema(pattern = "^[0-9a-fA-F]{64}$", min_length = 64, max_length = 64)]
    pub public_key: String,
    /// Ed25519 signature (hex) over the co-signed message: "gatehouse-cosignature-v1\nnumber N\ntree_size T\n\
    /// root R\ncheckpoint D\n", D the SHA-256 (hex) of the checkpoint's signed_message.
    #[schema(pattern = "^[0-9a-fA-F]{128}$", min_length = 128, max_length = 128)]
    pub signature: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CosignatureStored {
    pub checkpoint: i64,
    /// False when this co-signature was already stored.
    pub stored: bool,
}

fn hex_of(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// POST /api/v1/audit/cosignatures (audit:witness).
#[utoipa::path(
    post,
    path = "/api/v1/audit/cosignatures",
    tag = "audit",
    summary = "A witness's co-signature of a signed checkpoint",
    description = "Scope audit:witness. The public key must be a witness registered for this token's service \\
                   account; the signature is checked before it is stored. Posting a stored co-signature again \\
                   answers 200.",
    request_body = NewCosignature,
    responses(
        (status = 201, description = "Stored", body = CosignatureStored),
        (status = 200, description = "Already stored", body = CosignatureStored),
        ApiError
    ),
    security(("bearer" = []))
)]
pub async fn cosignatures(
    State(st): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<CosignatureStored>), ApiError> {
    let service = authenticate(&st, &ctx, &headers, Scope::AuditWitness).await?;
    super::require_json(&headers)?;
    let Json(new) = Json::<NewCosignature>::from_bytes(&body)?;
    if new.checkpoint < 1 {
        return Err(ApiError::unprocessable("checkpoint: a checkpoint number, 1 or more"));
    }
    if !hex_of(&new.public_key, 64) {
        return Err(ApiError::unprocessable("public_key: 64 hex digits"));
    }
    if !hex_of(&new.signature, 128) {
        return Err(ApiError::unprocessable("signature: 128 hex digits"));
    }
    let actor = service.actor(&ctx);
    let now = st.clock.now();
    let stored = witnesses::cosign(
        &st.db,
        now,
        actor,
        service.account_id,
        new.checkpoint,
        &new.public_key,
        &new.signature,
    )
    .await;
    match stored {
        Ok(stored) => Ok((
            if stored { StatusCode::CREATED } else { StatusCode::OK },
            Json(CosignatureStored {
                checkpoint: new.checkpoint,
                stored,
            }),
        )),
        Err(e @ CosignError::UnknownWitness) => Err(ApiError::forbidden(e.to_string())),
        Err(e @ CosignError::NoCheckpoint(_)) => Err(ApiError::not_found(e.to_string())),
        Err(e @ CosignError::BadSignature(_)) => Err(ApiError::unprocessable(e.to_string())),
        Err(CosignError::Db(e)) => Err(ApiError::internal(e)),
    }
}
