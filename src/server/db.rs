//! Database access over sqlx's `Any` driver: one code path for SQLite (the
//! embedded default) and MySQL / MariaDB, picked by the URL scheme. Times are
//! stored as integers (milliseconds) and binary values as text, so the same
//! queries and types work on both.

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{Any, AnyPool, Row, Transaction};
use std::{str::FromStr, sync::Arc, time::Duration};
use tokio::sync::{Mutex, OwnedMutexGuard};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    MySql,
}

#[derive(Clone)]
pub struct Db {
    pub pool: AnyPool,
    pub backend: Backend,
    /// SQLite allows one writer; serialising write transactions inside the
    /// process avoids busy errors when a transaction upgrades to writing.
    write_lock: Arc<Mutex<()>>,
    /// The SQLite database file, when there is one (for native reads).
    sqlite_file: Option<String>,
    /// Events waiting for a group commit (`audit_log::record`).
    pub(crate) recorder: Arc<super::audit_log::Recorder>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("backend", &self.backend).finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot create the database directory {path}: {source}")]
    CreateDir { path: String, source: std::io::Error },
    #[error("cannot connect to the database: {0}")]
    Connect(sqlx::Error),
    #[error("cannot apply migrations: {0}")]
    Migrate(sqlx::migrate::MigrateError),
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static MYSQL_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/mysql");

impl Db {
    /// Connects, creating the SQLite file (and its directory) when missing,
    /// and applies pending migrations.
    pub async fn connect(url: &str) -> Result<Self, DbError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("mysql:") { Backend::MySql } else { Backend::Sqlite };
        let mut url = url.to_owned();
        let sqlite_file = match backend {
            Backend::Sqlite => sqlite_path(&url),
            Backend::MySql => None,
        };
        let pool = match backend {
            Backend::Sqlite => {
                if let Some(path) = sqlite_path(&url) {
                    if let Some(dir) = std::path::Path::new(&path).parent().filter(|d| !d.as_os_str().is_empty()) {
                        std::fs::create_dir_all(dir)
                            .map_err(|source| DbError::CreateDir { path: dir.display().to_string(), source })?;
                    }
                }
                if !url.contains('?') {
                    url.push_str("?mode=rwc");
                }
                let opts = AnyConnectOptions::from_str(&url).map_err(DbError::Connect)?;
                // sqlx turns on foreign keys and a 5-second busy timeout for
                // every SQLite connection; WAL mode is stored in the file.
                let pool = AnyPoolOptions::new()
                    .max_connections(8)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(opts)
                    .await
                    .map_err(DbError::Connect)?;
                sqlx::query("PRAGMA journal_mode = WAL").execute(&pool).await.map_err(DbError::Connect)?;
                pool
            }
            Backend::MySql => {
                let opts = AnyConnectOptions::from_str(&url).map_err(DbError::Connect)?;
                AnyPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(opts)
                    .await
                    .map_err(DbError::Connect)?
            }
        };
        let migrator = match backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::MySql => &MYSQL_MIGRATIONS,
        };
        migrator.run(&pool).await.map_err(DbError::Migrate)?;
        Ok(Self { pool, backend, write_lock: Arc::new(Mutex::new(())), sqlite_file, recorder: Arc::default() })
    }

    /// The SQLite database file, if this is a SQLite database in a file.
    pub fn sqlite_file(&self) -> Option<String> {
        self.sqlite_file.clone()
    }

    /// Starts a transaction that will write. On SQLite it takes the write
    /// lock at once, so it never fails half-way with a busy error.
    pub async fn begin_write(&self) -> Result<WriteTx, sqlx::Error> {
        let guard = match self.backend {
            Backend::Sqlite => Some(self.write_lock.clone().lock_owned().await),
            Backend::MySql => None,
        };
        let mut tx = self.pool.begin().await?;
        if self.backend == Backend::Sqlite {
            sqlx::query("UPDATE audit_head SET last_seq = last_seq WHERE id = 1").execute(&mut *tx).await?;
        }
        Ok(WriteTx { tx, backend: self.backend, _guard: guard })
    }
}

/// The file path inside a `sqlite:` URL, if it names a file.
fn sqlite_path(url: &str) -> Option<String> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && path != ":memory:").then(|| path.to_owned())
}

pub struct WriteTx {
    pub tx: Transaction<'static, Any>,
    pub backend: Backend,
    _guard: Option<OwnedMutexGuard<()>>,
}

impl WriteTx {
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }

    /// `FOR UPDATE` where the backend has it (SQLite already holds the lock).
    pub fn for_update(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "",
            Backend::MySql => " FOR UPDATE",
        }
    }
}

impl std::ops::Deref for WriteTx {
    type Target = Transaction<'static, Any>;
    fn deref(&self) -> &Self::Target {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.tx
    }
}

/// Reads a text column. MySQL reports long text (MEDIUMTEXT) as a blob
/// through the `Any` driver, so fall back to bytes.
pub fn text(row: &sqlx::any::AnyRow, col: &str) -> Result<String, sqlx::Error> {
    match row.try_get::<String, _>(col) {
        Ok(s) => Ok(s),
        Err(_) => {
            let bytes: Vec<u8> = row.try_get(col)?;
            String::from_utf8(bytes).map_err(|e| sqlx::Error::Decode(Box::new(e)))
        }
    }
}

pub fn opt_text(row: &sqlx::any::AnyRow, col: &str) -> Result<Option<String>, sqlx::Error> {
    match row.try_get::<Option<String>, _>(col) {
        Ok(s) => Ok(s),
        Err(_) => {
            let bytes: Option<Vec<u8>> = row.try_get(col)?;
            bytes.map(|b| String::from_utf8(b).map_err(|e| sqlx::Error::Decode(Box::new(e)))).transpose()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_paths() {
        assert_eq!(sqlite_path("sqlite://data/gatehouse.db").as_deref(), Some("data/gatehouse.db"));
        assert_eq!(sqlite_path("sqlite:///tmp/x.db?mode=rwc").as_deref(), Some("/tmp/x.db"));
        assert_eq!(sqlite_path("sqlite::memory:"), None);
    }
}
