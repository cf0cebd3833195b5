//! The key that signs checkpoints: created once, sealed under the master
//! key (`audit_signing_keys`), replaced by `gatehouse audit rotate-key`;
//! every public key that ever signed stays, so old checkpoints verify.

use super::log;
use crate::domain::{
    actions::Action,
    audit::{Actor, NewEvent, Outcome},
    checkpoint, Millis,
};
use crate::server::platform::{
    crypto::{self, MasterKey},
    db::{text, Db, WriteTx},
};
use ed25519_dalek::{SigningKey, VerifyingKey};
use serde_json::json;
use sqlx::Row;
use std::sync::{Arc, RwLock};

const SEAL_CONTEXT: &str = "audit-signing-key";

/// The newest key, which signs, and every public key in the order they were
/// made (a checkpoint never goes back to an older key: `check_list`).
pub struct KeySet {
    pub signing: SigningKey,
    pub key_id: String,
    pub public: Vec<VerifyingKey>,
}

impl KeySet {
    /// The first key's id, which names this installation in delivery ids
    /// (Message-ID), so a rotation does not change them.
    pub fn installation(&self) -> String {
        self.public.first().map(checkpoint::key_id).unwrap_or_default()
    }
}

/// The keys a server signs and verifies with: replaced in place when the
/// checkpoint signer finds that a newer key was made (a rotation while
/// replicas run).
pub struct AuditKeys(RwLock<Arc<KeySet>>);

impl AuditKeys {
    pub fn new(keys: KeySet) -> Self {
        Self(RwLock::new(Arc::new(keys)))
    }

    pub fn current(&self) -> Arc<KeySet> {
        self.0.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    fn replace(&self, keys: KeySet) {
        *self.0.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(keys);
    }

    /// Loads the stored keys again when the newest is not the one in use;
    /// whether they changed.
    pub async fn refresh(&self, db: &Db, master: &MasterKey) -> Result<bool, KeyError> {
        let Some(keys) = load(db, master).await? else {
            return Ok(false);
        };
        let changed = keys.key_id != self.current().key_id;
        if changed {
            tracing::info!(key_id = %keys.key_id, "signing checkpoints with the newer audit key");
            self.replace(keys);
        }
        Ok(changed)
    }
}

impl std::fmt::Debug for AuditKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditKeys")
            .field("key_id", &self.current().key_id)
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
        return Ok(AuditKeys::new(keys));
    }
    let mut tx = db.begin_write().await?;
    // Two processes starting at once on MySQL: the head row lock serialises them.
    let newest = lock_and_newest(&mut tx).await?;
    if newest.is_none() {
        let id = insert(&mut tx, master, now).await?;
        tracing::info!(key_id = %id, "created the audit signing key");
    }
    tx.commit().await?;
    load(db, master)
        .await?
        .map(AuditKeys::new)
        .ok_or_else(|| KeyError::Db(sqlx::Error::RowNotFound))
}

/// Takes the audit head's lock (which checkpoint signing takes too, so a
/// checkpoint is never signed with a key that a rotation has replaced) and
/// reads the newest key: (key id, created at).
pub async fn lock_and_newest(tx: &mut WriteTx) -> Result<Option<(String, Millis)>, sqlx::Error> {
    let lock = format!("SELECT last_seq FROM audit_head WHERE id = 1{}", tx.for_update());
    sqlx::query(&lock).fetch_one(tx.conn()).await?;
    let row =
        sqlx::query("SELECT key_id, created_at FROM audit_signing_keys ORDER BY created_at DESC, key_id DESC LIMIT 1")
            .fetch_optional(tx.conn())
            .await?;
    row.map(|r| Ok((text(&r, "key_id")?, r.try_get("created_at")?)))
        .transpose()
}

async fn insert(tx: &mut WriteTx, master: &MasterKey, created_at: Millis) -> Result<String, sqlx::Error> {
    let key = SigningKey::from_bytes(&crypto::random_bytes::<32>());
    let public = key.verifying_key();
    let id = checkpoint::key_id(&public);
    sqlx::query("INSERT INTO audit_signing_keys (key_id, public_key, secret_enc, created_at) VALUES (?, ?, ?, ?)")
        .bind(&id)
        .bind(hex::encode(public.as_bytes()))
        .bind(master.seal(&format!("{SEAL_CONTEXT}:{id}"), key.as_bytes()))
        .bind(created_at)
        .execute(tx.conn())
        .await?;
    Ok(id)
}

/// Makes a new signing key, which signs every checkpoint from now on; the
/// old ones stay published so the checkpoints they signed still verify,
/// but may sign no more. Recorded in the same transaction. Returns (old
/// key id, new key id).
pub async fn rotate(db: &Db, master: &MasterKey, now: Millis, actor: Actor) -> Result<(String, String), KeyError> {
    // Every stored key must open first: a rotation never hides a problem.
    load(db, master).await?;
    let mut tx = db.begin_write().await?;
    let (old, old_at) = lock_and_newest(&mut tx)
        .await?
        .ok_or(KeyError::Db(sqlx::Error::RowNotFound))?;
    // Sorted after the old key even when this machine's clock is behind.
    let id = insert(&mut tx, master, now.max(old_at + 1)).await?;
    let event = NewEvent::new(Action::AuditKeyRotated, Outcome::Success, actor)
        .target("audit_key", &id)
        .details(json!({ "previous_key_id": old, "key_id": id }));
    log::append(&mut tx, now, vec![event]).await?;
    tx.commit().await?;
    tracing::info!(key_id = %id, previous_key_id = %old, "rotated the audit signing key");
    Ok((old, id))
}

/// Seals every stored signing key again under the master key's current
/// key, in the caller's transaction (`gatehouse rotate-master-key`); the
/// number sealed.
pub async fn reseal(tx: &mut WriteTx, master: &MasterKey) -> Result<u64, KeyError> {
    let rows = sqlx::query("SELECT key_id, secret_enc FROM audit_signing_keys")
        .fetch_all(tx.conn())
        .await?;
    for r in &rows {
        let id = text(r, "key_id")?;
        let context = format!("{SEAL_CONTEXT}:{id}");
        let secret = master
            .open(&context, &text(r, "secret_enc")?)
            .ok_or_else(|| KeyError::Sealed(id.clone()))?;
        sqlx::query("UPDATE audit_signing_keys SET secret_enc = ? WHERE key_id = ?")
            .bind(master.seal(&context, &secret))
            .bind(&id)
            .execute(tx.conn())
            .await?;
    }
    Ok(rows.len() as u64)
}

/// The stored keys, each opened with the master key and checked against its
/// public half; `None` when there are none yet.
pub async fn load(db: &Db, master: &MasterKey) -> Result<Option<KeySet>, KeyError> {
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
    Ok(newest.map(|(signing, key_id)| KeySet {
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
