//! Witnesses and their co-signatures (`audit_witnesses`,
//! `audit_cosignatures`): registering and retiring a witness (recorded in
//! the trail), storing a co-signature after checking it, and reading them
//! back for the API, exports and the console. The rules live in
//! domain::witness.
//!
//! Accepted co-signatures are not appended to the trail: the append-only
//! table is their record, and an event per co-signature would need a new
//! checkpoint, which witnesses co-sign, forever. Refused ones are recorded.

use super::{checkpoints, log};
use crate::domain::{
    actions::Action,
    audit::{Actor, NewEvent, Outcome},
    checkpoint,
    witness::{self, Cosignature},
    Millis,
};
use crate::server::platform::db::{text, Db};
use serde_json::json;
use sqlx::Row;

#[derive(Debug, thiserror::Error)]
pub enum WitnessError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error("no such witness: {0}")]
    NotFound(String),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Registers a witness: its name (1 to 64 letters, digits, `-`, `_`, `.`),
/// its Ed25519 public key (hex), and the service account it posts through.
pub async fn add(
    db: &Db,
    now: Millis,
    actor: Actor,
    name: &str,
    public_key: &str,
    service_account_id: i64,
) -> Result<i64, WitnessError> {
    let good_name =
        (1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if !good_name {
        return Err(WitnessError::Invalid(
            "a witness name is 1 to 64 letters, digits, '-', '_' or '.'".into(),
        ));
    }
    let key = checkpoint::public_key_from_hex(public_key)
        .filter(|_| public_key.trim().len() == 64)
        .ok_or_else(|| WitnessError::Invalid("the public key must be 64 hex digits of an Ed25519 key".into()))?;
    let key_hex = hex::encode(key.as_bytes());
    let mut tx = db.begin_write().await?;
    let q = sqlx::query(
        "INSERT INTO audit_witnesses (name, public_key, service_account_id, created_at) VALUES (?, ?, ?, ?)",
    )
    .bind(name)
    .bind(&key_hex)
    .bind(service_account_id)
    .bind(now);
    let id = match tx.insert_returning_id(q).await {
        Ok(id) => id,
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            return Err(WitnessError::Conflict(
                "a witness with that name or public key is already registered".into(),
            ))
        }
        Err(e) => return Err(e.into()),
    };
    let event = NewEvent::new(Action::WitnessAdded, Outcome::Success, actor)
        .target("audit_witness", id)
        .details(json!({ "name": name, "public_key": key_hex, "service_account_id": service_account_id }));
    log::append(&mut tx, now, vec![event]).await?;
    tx.commit().await?;
    Ok(id)
}

/// Retires a witness: it may co-sign no more, and its co-signatures no
/// longer count towards a quorum (its key may be lost).
pub async fn retire(db: &Db, now: Millis, actor: Actor, name: &str) -> Result<(), WitnessError> {
    let mut tx = db.begin_write().await?;
    let done = sqlx::query("UPDATE audit_witnesses SET retired_at = ? WHERE name = ? AND retired_at IS NULL")
        .bind(now)
        .bind(name)
        .execute(tx.conn())
        .await?;
    if done.rows_affected() != 1 {
        return Err(WitnessError::NotFound(name.chars().take(64).collect()));
    }
    let event = NewEvent::new(Action::WitnessRetired, Outcome::Success, actor)
        .target("audit_witness", name)
        .details(json!({ "name": name }));
    log::append(&mut tx, now, vec![event]).await?;
    tx.commit().await?;
    Ok(())
}

/// Why a co-signature was not stored.
#[derive(Debug, thiserror::Error)]
pub enum CosignError {
    #[error("no witness with that public key acts through this service account")]
    UnknownWitness,
    #[error("there is no checkpoint {0}")]
    NoCheckpoint(i64),
    #[error("the signature is not this witness's co-signature of checkpoint {0}")]
    BadSignature(i64),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Stores a witness's co-signature of checkpoint `number` after checking
/// it: the key must be a registered, active witness of `service_account_id`
/// and the signature must verify. Answers whether it was new (a repeat of
/// a stored one is accepted unchanged). A refusal is recorded.
pub async fn cosign(
    db: &Db,
    now: Millis,
    actor: Actor,
    service_account_id: i64,
    number: i64,
    public_key: &str,
    signature: &str,
) -> Result<bool, CosignError> {
    // Checkpoints never change once signed; the witness is read, locked, in
    // the transaction that stores its co-signature: one retired meanwhile
    // cannot co-sign.
    let checkpoint = checkpoints::by_number(db, number).await?;
    let mut tx = db.begin_write().await?;
    let sql = format!(
        "SELECT id, name FROM audit_witnesses WHERE public_key = ? AND service_account_id = ? AND retired_at IS NULL{}",
        tx.for_update()
    );
    let found = sqlx::query(&sql)
        .bind(public_key.to_ascii_lowercase())
        .bind(service_account_id)
        .fetch_optional(tx.conn())
        .await?;
    let checked = match (&found, checkpoint) {
        (None, _) => Err(CosignError::UnknownWitness),
        (Some(_), None) => Err(CosignError::NoCheckpoint(number)),
        (Some(_), Some(cp)) => {
            let key = checkpoint::public_key_from_hex(public_key).ok_or(CosignError::UnknownWitness)?;
            if witness::cosignature_valid(&key, &cp, signature) {
                Ok(())
            } else {
                Err(CosignError::BadSignature(number))
            }
        }
    };
    if let Err(e) = checked {
        let event = NewEvent::new(Action::Cosign, Outcome::Denied, actor)
            .target("audit_checkpoint", number)
            .reason(e.to_string())
            .details(json!({ "public_key": public_key.chars().take(64).collect::<String>() }));
        log::append(&mut tx, now, vec![event]).await?;
        tx.commit().await?;
        return Err(e);
    }
    let witness_id: i64 = found
        .as_ref()
        .map(|r| r.try_get::<i64, _>("id"))
        .transpose()?
        .unwrap_or_default();
    let stored = sqlx::query("SELECT signature FROM audit_cosignatures WHERE checkpoint = ? AND witness_id = ?")
        .bind(number)
        .bind(witness_id)
        .fetch_optional(tx.conn())
        .await?;
    if stored.is_some() {
        return Ok(false);
    }
    let insert =
        sqlx::query("INSERT INTO audit_cosignatures (checkpoint, witness_id, signature, at) VALUES (?, ?, ?, ?)")
            .bind(number)
            .bind(witness_id)
            .bind(signature.to_ascii_lowercase())
            .bind(now)
            .execute(tx.conn())
            .await;
    match insert {
        // The same co-signature, posted twice at once.
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(false),
        Err(e) => Err(e.into()),
        Ok(_) => {
            tx.commit().await?;
            Ok(true)
        }
    }
}

/// The co-signatures of checkpoints `first..=last`, by checkpoint, then
/// witness name; `active_only` leaves out retired witnesses.
pub async fn cosignatures(db: &Db, first: i64, last: i64, active_only: bool) -> Result<Vec<Cosignature>, sqlx::Error> {
    let sql = format!(
        "SELECT c.checkpoint, w.name, w.public_key, c.signature FROM audit_cosignatures c \
         JOIN audit_witnesses w ON w.id = c.witness_id WHERE c.checkpoint BETWEEN ? AND ?{} \
         ORDER BY c.checkpoint, w.name",
        if active_only { " AND w.retired_at IS NULL" } else { "" }
    );
    let rows = sqlx::query(&sql).bind(first).bind(last).fetch_all(db.pool()).await?;
    rows.iter()
        .map(|r| {
            Ok(Cosignature {
                checkpoint: r.try_get("checkpoint")?,
                witness: text(r, "name")?,
                public_key: text(r, "public_key")?,
                signature: text(r, "signature")?,
            })
        })
        .collect()
}

/// The newest checkpoint co-signed by at least `quorum` active witnesses.
pub async fn last_final(db: &Db, quorum: u32) -> Result<Option<i64>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT c.checkpoint FROM audit_cosignatures c JOIN audit_witnesses w ON w.id = c.witness_id \
         WHERE w.retired_at IS NULL GROUP BY c.checkpoint HAVING COUNT(*) >= ? ORDER BY c.checkpoint DESC LIMIT 1",
    )
    .bind(i64::from(quorum))
    .fetch_optional(db.pool())
    .await?;
    row.map(|r| r.try_get("checkpoint")).transpose()
}
