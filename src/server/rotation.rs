//! Rotating keys (docs/operations.md): the master key, under which every
//! stored secret is sealed, and the key that signs audit checkpoints.
//! Each rotation commits in one transaction with the event that records
//! it; no key material is printed, logged or recorded.

use super::{
    access, audit, identity,
    platform::{
        clock::Clock,
        config::Config,
        crypto::{self, MasterKey},
        leases,
    },
    startup,
};
use crate::domain::{
    actions::Action,
    audit::{Actor, NewEvent, Outcome},
};
use serde_json::json;
use std::path::Path;

fn actor(command: &str) -> Actor {
    Actor {
        user_agent: Some(format!("{command} (command line)")),
        ..Default::default()
    }
}

fn text(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// `gatehouse audit rotate-key`: a new checkpoint signing key; the old
/// ones stay published and verify what they signed, but sign no more.
pub async fn rotate_signing_key(config: Config) -> Result<(), String> {
    let st = startup::state(config, Clock::system()).await.map_err(text)?;
    let (old, new) = audit::rotate_key(&st.db, &st.key, st.clock.now(), actor("gatehouse audit rotate-key"))
        .await
        .map_err(text)?;
    println!(
        "OK: checkpoints are signed with key {new} from now on. Key {old} signs no more and stays published, so \
         the checkpoints it signed still verify; running servers switch at their next checkpoint."
    );
    Ok(())
}

/// `gatehouse rotate-master-key`: seals every stored secret again under
/// the current master key. With `GATEHOUSE_MASTER_KEY`, the operator has
/// set it to the new key and `GATEHOUSE_MASTER_KEY_PREVIOUS` to the old
/// one. With the key in the data directory, this makes the new key itself
/// (`master.key.next`, on disk before anything is sealed under it), and
/// afterwards keeps the old one as `master.key.previous` so backups taken
/// before still restore.
pub async fn rotate_master_key(config: Config) -> Result<(), String> {
    let in_data_dir = config.master_key.is_none();
    if !in_data_dir && config.master_key_previous.is_none() {
        return Err(
            "set GATEHOUSE_MASTER_KEY to the new key and GATEHOUSE_MASTER_KEY_PREVIOUS to the key it \
                    replaces, then run this again (docs/operations.md)"
                .into(),
        );
    }
    let dir = config.data_dir.clone();
    let st = startup::state(config, Clock::system()).await.map_err(text)?;
    let now = st.clock.now();
    let ring = if in_data_dir {
        // A server holding the old key alone could not open what is sealed here.
        if leases::any_held(&st.db, now).await.map_err(text)? {
            return Err(
                "a Gatehouse server is running on this database (it holds a job lease): stop it first, \
                        or wait 10 seconds after it was killed"
                    .into(),
            );
        }
        let next_path = dir.join(crypto::NEXT_KEY_FILE);
        let next = match MasterKey::read_file(&next_path).map_err(text)? {
            Some(k) => k,
            None => {
                let k = MasterKey::generate();
                k.write_new_file(&next_path).map_err(text)?;
                k
            }
        };
        next.replacing(MasterKey::load(None, None, &dir).map_err(text)?)
    } else {
        MasterKey::load(
            st.config.master_key.as_ref(),
            st.config.master_key_previous.as_ref(),
            &dir,
        )
        .map_err(text)?
    };

    let mut tx = st.db.begin_write().await.map_err(text)?;
    let accounts = identity::accounts::reseal(&mut tx, &ring).await.map_err(text)?;
    let logins = identity::sso::reseal_logins(&mut tx, &ring).await.map_err(text)?;
    let keys = audit::reseal_keys(&mut tx, &ring).await.map_err(text)?;
    let targets = access::databases::reseal(&mut tx, &ring).await?;
    let event = NewEvent::new(
        Action::MasterKeyRotated,
        Outcome::Success,
        actor("gatehouse rotate-master-key"),
    )
    .details(json!({
        "key_source": if in_data_dir { "data directory" } else { "environment" },
        "resealed": { "account_secrets": accounts, "sso_logins": logins, "audit_signing_keys": keys, "database_connectors": targets },
    }));
    audit::append(&mut tx, now, vec![event]).await.map_err(text)?;
    tx.commit().await.map_err(text)?;
    if in_data_dir {
        promote_next_key(&dir).map_err(text)?;
    }
    println!(
        "OK: {accounts} account secrets, {logins} single sign-on logins in flight, {keys} audit signing keys and \
         {targets} database connector passwords sealed under the new master key."
    );
    if in_data_dir {
        println!(
            "The old key is kept as {} so backups taken before still restore; delete it once none is needed.",
            dir.join(crypto::PREVIOUS_KEY_FILE).display()
        );
    } else {
        println!(
            "Remove GATEHOUSE_MASTER_KEY_PREVIOUS from every server's configuration once all run with the new key."
        );
    }
    Ok(())
}

/// `master.key` becomes `master.key.previous` and `master.key.next`
/// becomes `master.key`, so that at every moment `master.key` exists and
/// every key that sealed something is on disk (loading opens all three).
fn promote_next_key(dir: &Path) -> Result<(), crypto::KeyError> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| crypto::KeyError::Io { path, source }
    };
    let current = dir.join(crypto::KEY_FILE);
    let previous = dir.join(crypto::PREVIOUS_KEY_FILE);
    let staged = dir.join(format!("{}.tmp", crypto::PREVIOUS_KEY_FILE));
    let old = MasterKey::read_file(&current)?.ok_or_else(|| crypto::KeyError::Malformed {
        path: current.display().to_string(),
    })?;
    let _ = std::fs::remove_file(&staged);
    old.write_new_file(&staged)?;
    std::fs::rename(&staged, &previous).map_err(io(&previous))?;
    std::fs::rename(dir.join(crypto::NEXT_KEY_FILE), &current).map_err(io(&current))?;
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}
