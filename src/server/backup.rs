//! `gatehouse backup` and `gatehouse restore` for the embedded SQLite
//! database. A backup is a consistent copy taken while the server runs
//! (`VACUUM INTO`); it is reported good only once its audit chain and
//! signed checkpoints verify under this installation's keys. A restore
//! verifies the same before the copy takes the configured database's place,
//! and never overwrites an existing database. MySQL is backed up with
//! `mysqldump --single-transaction` (README.md, Backups).

use super::{
    audit,
    platform::{
        clock::Clock,
        config::Config,
        crypto::{self, MasterKey},
        db::{sqlite_path, Db, Schema},
    },
    startup,
};
use std::path::{Path, PathBuf};

const SQLITE_ONLY: &str =
    "backup and restore work on the SQLite database; back up MySQL with mysqldump --single-transaction (README.md, Backups)";

/// The verified figures of a copy.
struct Verified {
    events: u64,
    head_seq: i64,
    checkpoints: u64,
}

/// Opens the copy at `path` (SQLite, current schema, nothing migrated) and
/// verifies its audit chain and signed checkpoints with the signing keys
/// that open under `master`: a copy of another installation, or one whose
/// key table was changed, is refused like a broken chain.
async fn verify_copy(path: &Path, master: &MasterKey) -> Result<Verified, String> {
    let url = format!("sqlite://{}", path.display());
    let db = Db::open(&url, Schema::RequireCurrent)
        .await
        .map_err(|e| format!("the copy cannot be opened: {e}"))?;
    let result = async {
        let keys = audit::load_keys(&db, master)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("the copy holds no audit signing key")?;
        let report = audit::verify_signed(&db, &keys.public)
            .await
            .map_err(|e| e.to_string())?;
        match report.problem() {
            None => Ok(Verified {
                events: report.checked,
                head_seq: report.head_seq,
                checkpoints: report.checkpoints,
            }),
            Some(e) => Err(format!("audit chain BROKEN after {} good events: {e}", report.checked)),
        }
    }
    .await;
    db.close().await;
    result
}

/// A SQLite file and the WAL and shared-memory files that go with it.
fn with_wal(path: &Path) -> [PathBuf; 3] {
    let name = path.display().to_string();
    [
        path.to_path_buf(),
        format!("{name}-wal").into(),
        format!("{name}-shm").into(),
    ]
}

fn remove_all(path: &Path) {
    for p in with_wal(path) {
        let _ = std::fs::remove_file(p);
    }
}

/// `gatehouse backup FILE`.
pub async fn backup(config: Config, file: &str) -> Result<(), String> {
    if sqlite_path(&config.database_url).is_none() {
        return Err(SQLITE_ONLY.into());
    }
    let target = Path::new(file);
    let st = startup::state(config, Clock::system())
        .await
        .map_err(|e| e.to_string())?;
    // Created empty first, readable by its owner only (it holds sealed
    // secrets and the whole trail), and never over an existing file;
    // SQLite then fills the empty file.
    {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(target)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => format!("{file} exists already: back up into a new file"),
                _ => format!("cannot create {file}: {e}"),
            })?;
    }
    let started = std::time::Instant::now();
    if let Err(e) = st.db.backup_into(target).await {
        remove_all(target);
        return Err(format!("the copy failed: {e}"));
    }
    match verify_copy(target, &st.key).await {
        Ok(v) => {
            println!(
                "OK: {file}: {} events verified, head at event {}, {} signed checkpoints match ({} ms)",
                v.events,
                v.head_seq,
                v.checkpoints,
                started.elapsed().as_millis()
            );
            Ok(())
        }
        Err(e) => {
            remove_all(target);
            Err(format!("backup REJECTED and removed: {e}"))
        }
    }
}

/// `gatehouse restore FILE`: into the configured database, which must not
/// exist yet (a new data directory), with the installation's master key
/// (GATEHOUSE_MASTER_KEY or master.key in the data directory).
pub async fn restore(config: Config, file: &str) -> Result<(), String> {
    let Some(target) = sqlite_path(&config.database_url).map(PathBuf::from) else {
        return Err(SQLITE_ONLY.into());
    };
    if !Path::new(file).is_file() {
        return Err(format!("{file}: no such file"));
    }
    if with_wal(&target).iter().any(|p| p.exists()) {
        return Err(format!(
            "{} exists: restore into a new data directory, or move the database away first",
            target.display()
        ));
    }
    let master = match &config.master_key {
        Some(_) => master_key(&config)?,
        None if config.data_dir.join(crypto::KEY_FILE).is_file() => master_key(&config)?,
        None => {
            return Err(format!(
                "restore needs this installation's master key: set GATEHOUSE_MASTER_KEY or put master.key in {}",
                config.data_dir.display()
            ))
        }
    };
    // A copy taken before a rotation opens with the previous key.
    // Verified where it will live, under a name the server does not open;
    // the user's file is only read.
    let staging = PathBuf::from(format!("{}.restoring", target.display()));
    remove_all(&staging);
    if let Some(dir) = staging.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::copy(file, &staging).map_err(|e| format!("cannot copy {file}: {e}"))?;
    match verify_copy(&staging, &master).await {
        Ok(v) => {
            for (from, to) in with_wal(&staging).iter().zip(with_wal(&target).iter()) {
                if from.exists() {
                    std::fs::rename(from, to).map_err(|e| format!("{}: {e}", to.display()))?;
                }
            }
            println!(
                "OK: restored {file} into {}: {} events verified, head at event {}, {} signed checkpoints match",
                target.display(),
                v.events,
                v.head_seq,
                v.checkpoints
            );
            Ok(())
        }
        Err(e) => {
            remove_all(&staging);
            Err(format!("restore REFUSED: {e}"))
        }
    }
}

fn master_key(config: &Config) -> Result<MasterKey, String> {
    MasterKey::load(
        config.master_key.as_ref(),
        config.master_key_previous.as_ref(),
        &config.data_dir,
    )
    .map_err(|e| e.to_string())
}
