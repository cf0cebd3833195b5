//! tower-sessions store in Gatehouse's own database. Rows are keyed by the
//! SHA-256 of the session id (a database reader cannot use them as cookies)
//! and carry the user id, so every session of a user can be ended at once.

use super::{
    clock::Clock,
    db::{text, Db},
};
use crate::domain::session_policy::Lifetimes;
use async_trait::async_trait;
use sqlx::Row;
use tower_sessions::{
    session::{Id, Record},
    session_store::{Error, Result},
    SessionStore,
};

#[derive(Clone, Debug)]
pub struct DbSessionStore {
    db: Db,
    clock: Clock,
    lifetimes: Lifetimes,
}

impl DbSessionStore {
    pub fn new(db: Db, clock: Clock, lifetimes: Lifetimes) -> Self {
        Self { db, clock, lifetimes }
    }
}

pub fn id_hash(id: &Id) -> String {
    super::crypto::sha256_hex(id.to_string().as_bytes())
}

/// A short, non-reversible tag of a session for audit records.
pub fn session_tag(id: &Id) -> String {
    id_hash(id)[..16].to_owned()
}

/// The fields the store indexes, read from the session data.
struct Indexed {
    user_id: Option<i64>,
    created_at: i64,
    last_seen: i64,
}

fn indexed(record: &Record, now: i64) -> Indexed {
    let auth = record.data.get(super::auth::AUTH_KEY);
    let num = |k: &str| auth.and_then(|a| a.get(k)).and_then(|v| v.as_i64());
    Indexed {
        user_id: num("user_id"),
        created_at: num("created_at").unwrap_or(now),
        last_seen: num("last_seen").unwrap_or(now),
    }
}

fn backend(e: impl std::fmt::Display) -> Error {
    Error::Backend(e.to_string())
}

#[async_trait]
impl SessionStore for DbSessionStore {
    async fn create(&self, record: &mut Record) -> Result<()> {
        let now = self.clock.now();
        let ix = indexed(record, now);
        let data = serde_json::to_string(&record.data).map_err(|e| Error::Encode(e.to_string()))?;
        // Ids are 128 random bits; on the astronomically unlikely collision, draw again.
        for _ in 0..3 {
            let inserted = sqlx::query(
                "INSERT INTO sessions (id_hash, user_id, data, created_at, last_seen, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(id_hash(&record.id))
            .bind(ix.user_id)
            .bind(&data)
            .bind(ix.created_at)
            .bind(ix.last_seen)
            .bind(self.lifetimes.expires_at(ix.created_at, ix.last_seen))
            .execute(&self.db.pool)
            .await;
            match inserted {
                Ok(_) => return Ok(()),
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => record.id = Id::default(),
                Err(e) => return Err(backend(e)),
            }
        }
        Err(Error::Backend("could not allocate a session id".into()))
    }

    /// Updates an existing session. A session deleted meanwhile (signed out
    /// everywhere, account disabled) is not brought back.
    async fn save(&self, record: &Record) -> Result<()> {
        let now = self.clock.now();
        let ix = indexed(record, now);
        let data = serde_json::to_string(&record.data).map_err(|e| Error::Encode(e.to_string()))?;
        sqlx::query("UPDATE sessions SET user_id = ?, data = ?, last_seen = ?, expires_at = ? WHERE id_hash = ?")
            .bind(ix.user_id)
            .bind(&data)
            .bind(ix.last_seen)
            .bind(self.lifetimes.expires_at(ix.created_at, ix.last_seen))
            .bind(id_hash(&record.id))
            .execute(&self.db.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }

    /// Loads a session. Expiry is judged by the auth layer (which records
    /// it in the audit chain), not here.
    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        let row = sqlx::query("SELECT data FROM sessions WHERE id_hash = ?")
            .bind(id_hash(id))
            .fetch_optional(&self.db.pool)
            .await
            .map_err(backend)?;
        let Some(row) = row else { return Ok(None) };
        let data = text(&row, "data").map_err(backend)?;
        let data = serde_json::from_str(&data).map_err(|e| Error::Decode(e.to_string()))?;
        Ok(Some(Record {
            id: *id,
            data,
            expiry_date: time::OffsetDateTime::now_utc() + time::Duration::days(1),
        }))
    }

    async fn delete(&self, id: &Id) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE id_hash = ?")
            .bind(id_hash(id))
            .execute(&self.db.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }
}

/// Ends every session of a user, inside the caller's transaction.
pub async fn delete_all_for_user(tx: &mut super::db::WriteTx, user_id: i64) -> std::result::Result<u64, sqlx::Error> {
    let r = sqlx::query("DELETE FROM sessions WHERE user_id = ?")
        .bind(user_id)
        .execute(&mut ***tx)
        .await?;
    Ok(r.rows_affected())
}

/// Session rows whose lifetime has ended, for the janitor.
pub async fn expired(db: &Db, now: i64, limit: i64) -> std::result::Result<Vec<(String, Option<i64>)>, sqlx::Error> {
    let rows = sqlx::query("SELECT id_hash, user_id FROM sessions WHERE expires_at <= ? ORDER BY expires_at LIMIT ?")
        .bind(now)
        .bind(limit)
        .fetch_all(&db.pool)
        .await?;
    rows.iter()
        .map(|r| Ok((text(r, "id_hash")?, r.try_get("user_id")?)))
        .collect()
}
