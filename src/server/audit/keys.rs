//! The key that signs checkpoints: created once, sealed under the master
//! key (`audit_signing_keys`), and every public key that ever signed.

use crate::domain::{checkpoint, Millis};
use crate::server::platform::{
    crypto::{self, MasterKey},
    db::{text, Db},
};
use ed25519_dalek::{SigningKey, VerifyingKey};
use sqlx::Row;

const SEAL_CONTEXT: &str = "audit-signing-key";

/// The key that signs checkpoints, and every public key that ever did.
pub struct AuditKeys {
    pub signing: SigningKey,
    pub key_id: String,
    pub public: Vec<VerifyingKey>,
}

impl std::fmt::Debug for AuditKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditKeys")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read or store the audit signing key: {0}")]
    Db(#[from] sqlx::Error),
    #[error("the audit signing key {0} cannot be opened with this master key (wrong GATEHOUSE_MASTER_KEY or data directory?)")]
    Sealed(String),
    #[error("the audit signing key {0} does not match its published public key (the key table was changed)")]
    Mismatch(String),
}

/// Loads the signing keys, creating the first one on first start. Every
/// stored key must open with the master key and match its public half, so
/// someone who can write to the database but lacks the master key cannot
/// slip in a key of their own.
pub async fn load_or_create(db: &Db, master: &MasterKey, now: Millis) -> Result<AuditKeys, KeyError> {
    if let Some(keys) = load(db, master).await? {
        return Ok(keys);
    }
    let mut tx = db.begin_write().await?;
    // Two processes starting at once on MySQL: the head row lock serialises them.
    let lock = format!("SELECT last_seq FROM audit_head WHERE id = 1{}", tx.for_update());
    sqlx::query(&lock).fetch_one(tx.conn()).await?;
    let existing: i64 = sqlx::query("SELECT COUNT(*) AS n FROM audit_signing_keys")
        .fetch_one(tx.conn())
        .await?
        .try_get("n")?;
    if existing == 0 {
        let key = SigningKey::from_bytes(&crypto::random_bytes::<32>());
        let public = key.verifying_key();
        let id = checkpoint::key_id(&public);
        sqlx::query("INSERT INTO audit_signing_keys (key_id, public_key, secret_enc, created_at) VALUES (?, ?, ?, ?)")
            .bind(&id)
            .bind(hex::encode(public.as_bytes()))
            .bind(master.seal(&format!("{SEAL_CONTEXT}:{id}"), key.as_bytes()))
            .bind(now)
            .execute(tx.conn())
            .await?;
        tracing::info!(key_id = %id, "created the audit signing key");
    }
    tx.commit().await?;
    load(db, master)
        .await?
        .ok_or_else(|| KeyError::Db(sqlx::Error::RowNotFound))
}

/// The stored keys, each opened with the master key and checked against its
/// public half; `None` when there are none yet.
pub async fn load(db: &Db, master: &MasterKey) -> Result<Option<AuditKeys>, KeyError> {
    let rows = sqlx::query("SELECT key_id, public_key, secret_enc FROM audit_signing_keys ORDER BY created_at, key_id")
        .fetch_all(db.pool())
        .await?;
    let mut public = Vec::new();
    let mut newest = None;
    for r in &rows {
        let id = text(r, "key_id")?;
        let secret = master
            .open(&format!("{SEAL_CONTEXT}:{id}"), &text(r, "secret_enc")?)
            .ok_or_else(|| KeyError::Sealed(id.clone()))?;
        let bytes: [u8; 32] = secret.as_slice().try_into().map_err(|_| KeyError::Sealed(id.clone()))?;
        let key = SigningKey::from_bytes(&bytes);
        let stored = checkpoint::public_key_from_hex(&text(r, "public_key")?);
        if stored != Some(key.verifying_key()) || checkpoint::key_id(&key.verifying_key()) != id {
            return Err(KeyError::Mismatch(id));
        }
        public.push(key.verifying_key());
        newest = Some((key, id));
    }
    Ok(newest.map(|(signing, key_id)| AuditKeys {
        signing,
        key_id,
        public,
    }))
}

/// The published keys: (key id, public key hex, created at).
pub async fn public_keys(db: &Db) -> Result<Vec<(String, String, Millis)>, sqlx::Error> {
    let rows = sqlx::query("SELECT key_id, public_key, created_at FROM audit_signing_keys ORDER BY created_at, key_id")
        .fetch_all(db.pool())
        .await?;
    rows.iter()
        .map(|r| Ok((text(r, "key_id")?, text(r, "public_key")?, r.try_get("created_at")?)))
        .collect()
}
