//! Sessions: the tower-sessions store in Gatehouse's own database (the
//! `sessions` table), the sign-in state kept in a session, and the ends of
//! sessions. Rows are keyed by the SHA-256 of the session id (a database
//! reader cannot use them as cookies) and carry the user id, so every
//! session of a user can be ended at once.

use crate::domain::actions::Action;
use crate::domain::{
    audit::{Actor, NewEvent, Outcome},
    session_policy::Lifetimes,
};
use crate::errors::AppError;
use crate::server::{
    audit,
    platform::{
        clock::Clock,
        crypto,
        db::{text, Db, WriteTx},
        request::{AuthState, RequestCtx, AUTH_KEY},
    },
    state::AppState,
};
use async_trait::async_trait;
use sqlx::Row;
use tower_sessions::{
    session::{Id, Record},
    session_store::{Error, Result},
    Session, SessionStore,
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
    crypto::sha256_hex(id.to_string().as_bytes())
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
    let auth = record.data.get(AUTH_KEY);
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
            let insert = sqlx::query(
                "INSERT INTO sessions (id_hash, user_id, data, created_at, last_seen, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(id_hash(&record.id))
            .bind(ix.user_id)
            .bind(&data)
            .bind(ix.created_at)
            .bind(ix.last_seen)
            .bind(self.lifetimes.expires_at(ix.created_at, ix.last_seen));
            let inserted = self.db.write(insert).await;
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
        self.db
            .write(
                sqlx::query(
                    "UPDATE sessions SET user_id = ?, data = ?, last_seen = ?, expires_at = ? WHERE id_hash = ?",
                )
                .bind(ix.user_id)
                .bind(&data)
                .bind(ix.last_seen)
                .bind(self.lifetimes.expires_at(ix.created_at, ix.last_seen))
                .bind(id_hash(&record.id)),
            )
            .await
            .map_err(backend)?;
        Ok(())
    }

    /// Loads a session. Expiry is judged by the auth layer (which records
    /// it in the audit chain), not here.
    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        let row = sqlx::query("SELECT data FROM sessions WHERE id_hash = ?")
            .bind(id_hash(id))
            .fetch_optional(self.db.pool())
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
        self.db
            .write(sqlx::query("DELETE FROM sessions WHERE id_hash = ?").bind(id_hash(id)))
            .await
            .map_err(backend)?;
        Ok(())
    }
}

/// Ends every session of a user, inside the caller's transaction.
pub async fn delete_all_for_user(tx: &mut WriteTx, user_id: i64) -> std::result::Result<u64, sqlx::Error> {
    let r = sqlx::query("DELETE FROM sessions WHERE user_id = ?")
        .bind(user_id)
        .execute(tx.conn())
        .await?;
    Ok(r.rows_affected())
}

/// Session rows whose lifetime has ended, for the janitor.
pub async fn expired(db: &Db, now: i64, limit: i64) -> std::result::Result<Vec<(String, Option<i64>)>, sqlx::Error> {
    let rows = sqlx::query("SELECT id_hash, user_id FROM sessions WHERE expires_at <= ? ORDER BY expires_at LIMIT ?")
        .bind(now)
        .bind(limit)
        .fetch_all(db.pool())
        .await?;
    rows.iter()
        .map(|r| Ok((text(r, "id_hash")?, r.try_get("user_id")?)))
        .collect()
}

// ---------------------------------------------------------------- sign-in state

/// A session error, logged; the caller sees only the request id.
pub fn session_err(e: tower_sessions::session::Error) -> AppError {
    crate::errors::internal(format_args!("session: {e}"))
}

/// Stores the sign-in state in the session.
pub async fn set_auth(session: &Session, state: &AuthState) -> std::result::Result<(), AppError> {
    session.insert(AUTH_KEY, state).await.map_err(session_err)
}

/// Starts a new session id for a privilege change (sign-in, MFA).
pub async fn rotate(session: &Session) -> std::result::Result<(), AppError> {
    session.cycle_id().await.map_err(session_err)
}

/// Records that a session ended by timeout and removes it.
pub async fn expire_session(
    st: &AppState,
    id_hash: &str,
    user_id: Option<i64>,
    reason: &str,
    ctx: Option<&RequestCtx>,
) -> std::result::Result<(), sqlx::Error> {
    let now = st.clock.now();
    let mut tx = st.db.begin_write().await?;
    let gone = sqlx::query("DELETE FROM sessions WHERE id_hash = ?")
        .bind(id_hash)
        .execute(tx.conn())
        .await?
        .rows_affected();
    if gone == 1 {
        if let Some(user_id) = user_id {
            let actor = Actor {
                user_id: Some(user_id),
                session: Some(id_hash[..16].to_owned()),
                ip: ctx.and_then(|c| c.ip.clone()),
                user_agent: ctx.and_then(|c| c.user_agent.clone()),
            };
            audit::append(
                &mut tx,
                now,
                vec![NewEvent::new(Action::SessionExpired, Outcome::Success, actor)
                    .target("user", user_id)
                    .reason(reason)],
            )
            .await?;
        }
    }
    tx.commit().await
}
