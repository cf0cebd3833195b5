//! Database access over sqlx's `Any` driver: one code path for SQLite (the
//! embedded default) and MySQL / MariaDB, picked by the URL scheme. Times are
//! stored as integers (milliseconds) and binary values as text, so the same
//! queries and types work on both.

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{Any, AnyConnection, AnyPool, Row, Transaction};
use std::{str::FromStr, sync::Arc, time::Duration};
use tokio::sync::{Mutex, OwnedMutexGuard};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    MySql,
}

#[derive(Clone)]
pub struct Db {
    /// Where reads run (and single statements that need no transaction of
    /// their own); `pool()` lends it out.
    pool: AnyPool,
    /// Where `begin_write` transactions run: for a SQLite file, one
    /// connection of its own with a larger page cache (the indexes'
    /// pages written at random stay in memory between commits, without
    /// every reading connection holding such a cache); else `pool`.
    write_pool: AnyPool,
    pub backend: Backend,
    /// SQLite allows one writer; serialising write transactions inside the
    /// process avoids busy errors when a transaction upgrades to writing.
    write_lock: Arc<Mutex<()>>,
    /// The SQLite database file, when there is one (for native reads).
    sqlite_file: Option<String>,
    /// Copies a SQLite file's WAL back into it; stops with the last clone.
    _checkpointer: Option<Arc<WalCheckpointer>>,
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
    #[error("cannot make the database {path} readable by its owner only: {source}")]
    Permissions { path: String, source: std::io::Error },
    #[error("cannot connect to the database: {0}")]
    Connect(sqlx::Error),
    #[error("cannot apply migrations: {0}")]
    Migrate(sqlx::migrate::MigrateError),
    #[error(
        "the database schema is {pending} migration(s) behind this version of Gatehouse; \
         run `gatehouse migrate` (it uses GATEHOUSE_MIGRATE_DATABASE_URL) first"
    )]
    SchemaBehind { pending: usize },
    #[error("cannot start WAL checkpoints: {0}")]
    Checkpointer(String),
}

/// Every connection to a SQLite file: no checkpoints inside commits
/// (`WalCheckpointer` does them), and a log cut back to 64 MB when it starts
/// again from the beginning.
const SQLITE_FILE_PRAGMAS: &str = "PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = 67108864";
/// The writing connection also keeps up to 16 MB of pages (SQLite's
/// default is 2 MB). Measured on 5 million events: docs/benchmarks.md.
const SQLITE_WRITER_CACHE: &str = "PRAGMA cache_size = -16384";

/// A pool of SQLite connections, each set up with `pragmas` when it opens.
async fn sqlite_pool(url: &str, max: u32, min: u32, pragmas: &'static [&'static str]) -> Result<AnyPool, DbError> {
    let opts = AnyConnectOptions::from_str(url).map_err(DbError::Connect)?;
    AnyPoolOptions::new()
        .max_connections(max)
        .min_connections(min)
        .acquire_timeout(Duration::from_secs(10))
        .after_connect(move |conn, _| {
            Box::pin(async move {
                use sqlx::Executor;
                for p in pragmas {
                    conn.execute(*p).await?;
                }
                Ok(())
            })
        })
        .connect_with(opts)
        .await
        .map_err(DbError::Connect)
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static MYSQL_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/mysql");

fn migrator(url: &str) -> &'static sqlx::migrate::Migrator {
    if url.starts_with("mysql:") {
        &MYSQL_MIGRATIONS
    } else {
        &SQLITE_MIGRATIONS
    }
}

/// How many of this version's migrations the database has not applied
/// (all of them when it has no migration table yet).
async fn pending_migrations(pool: &AnyPool, migrator: &sqlx::migrate::Migrator) -> Result<usize, sqlx::Error> {
    let has_table = if std::ptr::eq(migrator, &SQLITE_MIGRATIONS) {
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'"
    } else {
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = '_sqlx_migrations'"
    };
    let has_table: i64 = sqlx::query_scalar(has_table).fetch_one(pool).await?;
    let applied: Vec<i64> = if has_table > 0 {
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success = TRUE")
            .fetch_all(pool)
            .await?
    } else {
        Vec::new()
    };
    Ok(migrator.iter().filter(|m| !applied.contains(&m.version)).count())
}

/// What opening a database does about its schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    /// Applies pending migrations (SQLite, and MySQL without a separate
    /// migrating account).
    Migrate,
    /// Changes nothing and refuses a schema that is behind: the running
    /// account cannot change it (GATEHOUSE_MIGRATE_DATABASE_URL).
    RequireCurrent,
}

impl Db {
    /// Connects, creating the SQLite file (and its directory) when missing,
    /// and applies pending migrations.
    pub async fn connect(url: &str) -> Result<Self, DbError> {
        Self::open(url, Schema::Migrate).await
    }

    /// Applies pending migrations through `url` (the migrating account),
    /// then closes; used by `gatehouse migrate`.
    pub async fn migrate(url: &str) -> Result<(), DbError> {
        sqlx::any::install_default_drivers();
        let opts = AnyConnectOptions::from_str(url).map_err(DbError::Connect)?;
        let pool = AnyPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(opts)
            .await
            .map_err(DbError::Connect)?;
        let result = migrator(url).run(&pool).await.map_err(DbError::Migrate);
        pool.close().await;
        result
    }

    pub async fn open(url: &str, schema: Schema) -> Result<Self, DbError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("mysql:") {
            Backend::MySql
        } else {
            Backend::Sqlite
        };
        let mut url = url.to_owned();
        let sqlite_file = match backend {
            Backend::Sqlite => sqlite_path(&url),
            Backend::MySql => None,
        };
        let pool = match backend {
            Backend::Sqlite => {
                if let Some(path) = sqlite_path(&url) {
                    if let Some(dir) = std::path::Path::new(&path)
                        .parent()
                        .filter(|d| !d.as_os_str().is_empty())
                    {
                        std::fs::create_dir_all(dir).map_err(|source| DbError::CreateDir {
                            path: dir.display().to_string(),
                            source,
                        })?;
                    }
                    owner_only(&path)?;
                }
                if !url.contains('?') {
                    url.push_str("?mode=rwc");
                }
                // sqlx turns on foreign keys and a 5-second busy timeout for
                // every SQLite connection; WAL mode is stored in the file.
                // A file's WAL is copied back by `WalCheckpointer`, not by
                // the connection that happens to commit past 1,000 pages.
                let pragmas: &'static [&'static str] = if sqlite_file.is_some() {
                    &[SQLITE_FILE_PRAGMAS]
                } else {
                    &[]
                };
                let pool = sqlite_pool(&url, 8, 0, pragmas).await?;
                sqlx::query("PRAGMA journal_mode = WAL")
                    .execute(&pool)
                    .await
                    .map_err(DbError::Connect)?;
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
        match schema {
            Schema::Migrate => migrator(&url).run(&pool).await.map_err(DbError::Migrate)?,
            Schema::RequireCurrent => {
                let pending = pending_migrations(&pool, migrator(&url))
                    .await
                    .map_err(DbError::Connect)?;
                if pending > 0 {
                    pool.close().await;
                    return Err(DbError::SchemaBehind { pending });
                }
            }
        }
        let write_lock = Arc::new(Mutex::new(()));
        let (write_pool, checkpointer) = match &sqlite_file {
            Some(path) => {
                let checkpointer = WalCheckpointer::start(path, write_lock.clone()).map_err(DbError::Checkpointer)?;
                let write_pool = sqlite_pool(&url, 1, 1, &[SQLITE_FILE_PRAGMAS, SQLITE_WRITER_CACHE]).await?;
                (write_pool, Some(Arc::new(checkpointer)))
            }
            None => (pool.clone(), None),
        };
        Ok(Self {
            pool,
            write_pool,
            backend,
            write_lock,
            sqlite_file,
            _checkpointer: checkpointer,
        })
    }

    /// Copies a SQLite database, as it stood at one moment, into a new file
    /// (`VACUUM INTO`) while the server goes on reading and writing it.
    pub async fn backup_into(&self, path: &std::path::Path) -> Result<(), sqlx::Error> {
        sqlx::query("VACUUM INTO ?")
            .bind(path.display().to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// How many of this version's migrations the database lacks: 0 when its
    /// schema is current (readiness), an error when it cannot be reached.
    pub async fn pending_migrations(&self) -> Result<usize, sqlx::Error> {
        let migrator = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::MySql => &MYSQL_MIGRATIONS,
        };
        pending_migrations(&self.pool, migrator).await
    }

    /// The pool, for reads. Writes go through `begin_write` (or `write`,
    /// for one statement), in turn with every other writer.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// One statement that writes, on its own, in turn with the other
    /// writers (`begin_write`). On SQLite a write on a pooled connection
    /// waits in SQLite's busy handler, which sleeps between tries, while
    /// writers through the lock take turns: under steady appends it can
    /// wait until it times out (lease renewals and sessions included).
    /// Never call it while this task holds a `WriteTx`: on SQLite the lock
    /// is not reentrant, so it would wait for itself.
    pub async fn write<'q>(
        &self,
        q: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>,
    ) -> Result<sqlx::any::AnyQueryResult, sqlx::Error> {
        let mut tx = self.begin_write().await?;
        let done = q.execute(tx.conn()).await?;
        tx.commit().await?;
        Ok(done)
    }

    /// Closes every connection (tests drop databases they made).
    pub async fn close(&self) {
        self.pool.close().await;
        self.write_pool.close().await;
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
        let mut tx = self.write_pool.begin().await?;
        if self.backend == Backend::Sqlite {
            sqlx::query("UPDATE audit_head SET last_seq = last_seq WHERE id = 1")
                .execute(&mut *tx)
                .await?;
        }
        Ok(WriteTx {
            tx,
            backend: self.backend,
            _guard: guard,
            events: Vec::new(),
        })
    }
}

/// Copies a SQLite file's write-ahead log back into the database on a
/// thread of its own, instead of SQLite's automatic checkpoint, which runs
/// inside the commit that crosses 1,000 pages: with large indexes that meant
/// nearly every ingestion batch, and a recorded access check now and then,
/// waited for random writes and an fsync of the database file while holding
/// the write lock (docs/benchmarks.md, run E).
///
/// Each pass copies what it can without stopping anyone (`PASSIVE`). The
/// log only starts again from its beginning when a transaction begins after
/// a copy that reached its end; under steady writes that moment never comes
/// by itself. So once the log holds `RESTART_FRAMES`, the copy is finished
/// under the in-process write lock, after up to five passes that as a rule
/// leave it only the last few frames (when writes outpace the copying it
/// is more, and writers wait for it). A reader on an old snapshot can still
/// hold the log back; it starts again after that reader ends.
struct WalCheckpointer {
    stop: Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>,
}

impl WalCheckpointer {
    const EVERY: Duration = Duration::from_millis(250);
    /// 16 MB of 4 KiB pages.
    const RESTART_FRAMES: i64 = 4096;
    /// A pass that found at most this many new frames leaves little to copy
    /// under the lock.
    const FEW_FRAMES: i64 = 512;

    fn start(path: &str, write_lock: Arc<Mutex<()>>) -> Result<Self, String> {
        use rusqlite::{Connection, OpenFlags};
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .and_then(|c| c.execute_batch("PRAGMA wal_autocheckpoint = 0").map(|_| c))
        .map_err(|e| e.to_string())?;
        let stop = Arc::new((std::sync::Mutex::new(false), std::sync::Condvar::new()));
        let signal = stop.clone();
        let path = path.to_owned();
        std::thread::Builder::new()
            .name("wal-checkpoint".into())
            .spawn(move || {
                let (stopped, wake) = &*signal;
                loop {
                    let guard = stopped.lock().unwrap_or_else(|e| e.into_inner());
                    let (guard, _) = wake
                        .wait_timeout_while(guard, Self::EVERY, |s| !*s)
                        .unwrap_or_else(|e| e.into_inner());
                    if *guard {
                        break;
                    }
                    drop(guard);
                    if let Err(e) = Self::pass(&conn, &write_lock) {
                        tracing::warn!(file = %path, error = %e, "WAL checkpoint failed; retrying");
                    }
                }
            })
            .map_err(|e| format!("cannot start the checkpoint thread: {e}"))?;
        Ok(Self { stop })
    }

    /// The frames in the log, or `None` when another checkpoint was
    /// running.
    fn checkpoint(conn: &rusqlite::Connection) -> Result<Option<i64>, rusqlite::Error> {
        let (busy, log): (i64, i64) =
            conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok((busy == 0).then_some(log))
    }

    fn pass(conn: &rusqlite::Connection, write_lock: &Mutex<()>) -> Result<(), rusqlite::Error> {
        let Some(mut log) = Self::checkpoint(conn)? else {
            return Ok(());
        };
        if log < Self::RESTART_FRAMES {
            return Ok(());
        }
        for _ in 0..4 {
            let Some(now) = Self::checkpoint(conn)? else {
                return Ok(());
            };
            let arrived = now - log;
            log = now;
            if arrived <= Self::FEW_FRAMES {
                break;
            }
        }
        let _writers_wait = write_lock.blocking_lock();
        Self::checkpoint(conn)?;
        Ok(())
    }
}

impl Drop for WalCheckpointer {
    fn drop(&mut self) {
        let (stopped, wake) = &*self.stop;
        *stopped.lock().unwrap_or_else(|e| e.into_inner()) = true;
        wake.notify_all();
    }
}

/// Makes the SQLite database readable by its owner only (0600), creating
/// it so when it is missing and tightening it (and its -wal and -shm files)
/// when an earlier start left it more open. SQLite gives the -wal and -shm
/// files it creates the database file's mode.
///
/// An existing file is never opened here: closing any descriptor of a
/// SQLite file drops every POSIX lock this process holds on it, and with
/// them the locks of connections already open on it (another `Db` on the
/// same file), after which another process may checkpoint the log away
/// under their feet (seen as "disk I/O error", SQLITE_IOERR_SHORT_READ).
fn owner_only(path: &str) -> Result<(), DbError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let err = |source| DbError::Permissions {
        path: path.to_owned(),
        source,
    };
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(err(e)),
    }
    for suffix in ["", "-wal", "-shm"] {
        let file = format!("{path}{suffix}");
        match std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !suffix.is_empty() => {}
            other => other.map_err(err)?,
        }
    }
    Ok(())
}

/// The file path inside a `sqlite:` URL, if it names a file.
pub fn sqlite_path(url: &str) -> Option<String> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && path != ":memory:").then(|| path.to_owned())
}

pub struct WriteTx {
    tx: Transaction<'static, Any>,
    pub backend: Backend,
    _guard: Option<OwnedMutexGuard<()>>,
    /// Audit events appended in this transaction (action, outcome),
    /// counted in the metrics once it commits.
    events: Vec<(&'static str, &'static str)>,
}

impl WriteTx {
    /// The transaction's connection, for running statements in it.
    pub fn conn(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }

    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await?;
        super::metrics::global().events_committed(&self.events);
        Ok(())
    }

    /// An audit event appended here, counted if the transaction commits.
    pub fn count_event(&mut self, action: &'static str, outcome: &'static str) {
        self.events.push((action, outcome));
    }

    /// `FOR UPDATE` where the backend has it (SQLite already holds the lock).
    pub fn for_update(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "",
            Backend::MySql => " FOR UPDATE",
        }
    }

    /// `FOR UPDATE SKIP LOCKED` where the backend has it: a claim on the
    /// rows a query finds. Rows another transaction holds (another server
    /// deciding them now) are left out instead of waited for, so servers
    /// sweeping at once share the work and none stalls behind another;
    /// what a server that died held is found again once its connection is
    /// gone. SQLite's write lock already makes this transaction the only
    /// writer.
    pub fn skip_locked(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "",
            Backend::MySql => " FOR UPDATE SKIP LOCKED",
        }
    }

    /// Runs an INSERT and returns the new row's id: through `last_insert_id`
    /// on MySQL, and `last_insert_rowid()` on SQLite (which the Any driver
    /// does not pass on).
    pub async fn insert_returning_id<'q>(
        &mut self,
        q: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>,
    ) -> Result<i64, sqlx::Error> {
        let r = q.execute(self.conn()).await?;
        if let Some(id) = r.last_insert_id() {
            return Ok(id);
        }
        sqlx::query("SELECT last_insert_rowid() AS id")
            .fetch_one(self.conn())
            .await?
            .try_get("id")
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
            bytes
                .map(|b| String::from_utf8(b).map_err(|e| sqlx::Error::Decode(Box::new(e))))
                .transpose()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_paths() {
        assert_eq!(
            sqlite_path("sqlite://data/gatehouse.db").as_deref(),
            Some("data/gatehouse.db")
        );
        assert_eq!(sqlite_path("sqlite:///tmp/x.db?mode=rwc").as_deref(), Some("/tmp/x.db"));
        assert_eq!(sqlite_path("sqlite::memory:"), None);
    }
}
