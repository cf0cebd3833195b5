//! Group commit of events that record no other change (a failed sign-in,
//! a recorded access check, an export): `Recorder::record`.

use super::log::append_timed;
use crate::domain::{
    audit::{Event, NewEvent},
    Millis,
};
use crate::server::platform::db::Db;

/// Most events in one group commit.
const GROUP_MAX: usize = 256;

/// Records events into one database's trail, in groups (see
/// `record_sealed`). One per database: its queue is that database's.
pub struct Recorder {
    db: Db,
    queue: std::sync::Mutex<Vec<Pending>>,
    leader: std::sync::Arc<tokio::sync::Mutex<()>>,
}

struct Pending {
    at: Millis,
    event: NewEvent,
    reply: tokio::sync::oneshot::Sender<Result<Event, sqlx::Error>>,
}

impl Recorder {
    pub fn new(db: Db) -> Self {
        Self {
            db,
            queue: Default::default(),
            leader: Default::default(),
        }
    }

    /// Appends one event that records no other change (a failed sign-in, a
    /// recorded access check), committed before this returns.
    pub async fn record(&self, at: Millis, event: NewEvent) -> Result<(), sqlx::Error> {
        self.record_sealed(at, event).await.map(drop)
    }

    /// `record`, answering the event as stored in the chain.
    ///
    /// Group commit: events recorded at the same time share one transaction,
    /// so one commit (one fsync on SQLite) stores all of them instead of one
    /// each. Each caller still gets its answer only after its event is
    /// committed, and an error if it was not: nothing is acknowledged early. If
    /// a shared commit fails, each of its events is tried again alone, so one
    /// event that cannot be stored does not take the others with it.
    pub async fn record_sealed(&self, at: Millis, event: NewEvent) -> Result<Event, sqlx::Error> {
        let (reply, mut answer) = tokio::sync::oneshot::channel();
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Pending { at, event, reply });
        loop {
            tokio::select! {
                biased;
                a = &mut answer => return a.unwrap_or(Err(sqlx::Error::WorkerCrashed)),
                leader = self.leader.clone().lock_owned() => {
                    // The one holding `leader` commits whatever is queued,
                    // this caller's event included unless a previous leader has
                    // already answered it.
                    let batch: Vec<Pending> = {
                        let mut q = self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                        let n = q.len().min(GROUP_MAX);
                        q.drain(..n).collect()
                    };
                    if batch.is_empty() {
                        continue;
                    }
                    // A task of its own, so a caller that goes away (its client
                    // hung up) cannot cancel a commit that others wait for.
                    let db = self.db.clone();
                    let _ = tokio::spawn(async move {
                        commit_group(&db, batch).await;
                        drop(leader);
                    })
                    .await;
                }
            }
        }
    }
}

// Answers carry sqlx::Error as sqlx returns it (large, and rare).
#[allow(clippy::result_large_err)]
async fn commit_group(db: &Db, batch: Vec<Pending>) {
    async fn commit(db: &Db, events: Vec<(Millis, NewEvent)>) -> Result<Vec<Event>, sqlx::Error> {
        let mut tx = db.begin_write().await?;
        let sealed = append_timed(&mut tx, events).await?;
        tx.commit().await?;
        Ok(sealed)
    }
    let events = batch.iter().map(|p| (p.at, p.event.clone())).collect();
    match commit(db, events).await {
        Ok(sealed) => {
            for (p, e) in batch.into_iter().zip(sealed) {
                let _ = p.reply.send(Ok(e));
            }
        }
        Err(e) if batch.len() == 1 => {
            let _ = batch.into_iter().next().map(|p| p.reply.send(Err(e)));
        }
        Err(e) => {
            tracing::warn!(error = %e, events = batch.len(), "group commit of audit events failed; storing each alone");
            for p in batch {
                let one = commit(db, vec![(p.at, p.event)]).await.map(|mut v| v.remove(0));
                let _ = p.reply.send(one);
            }
        }
    }
}
