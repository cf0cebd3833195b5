//! Anonymous refusals of the service API, counted in memory per client
//! address and minute (`domain::floods`) and folded into the trail as one
//! summary event per address and minute: by the access job once a minute
//! is over, and at shutdown. A crash loses at most the counts not folded
//! yet (the last minute or two); several replicas each write their own.

use crate::domain::{
    actions::Action,
    audit::{Actor, NewEvent, Outcome},
    floods::AnonymousRefusals,
    Millis,
};
use crate::server::{audit::log, platform::db::Db};
use serde_json::json;

/// The process's tallies of anonymous refusals.
#[derive(Default)]
pub struct AnonymousTally {
    inner: std::sync::Mutex<AnonymousRefusals>,
}

impl AnonymousTally {
    /// Counts a refusal; answers the seconds to wait (429) when the address
    /// is over its allowance this minute.
    pub fn refused(&self, address: Option<&str>, now: Millis, why: &'static str, token_id: Option<i64>) -> Option<i64> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .note(address, now, why, token_id)
    }

    /// Appends one summary event per address for every finished minute (or
    /// every minute, at shutdown), in one transaction; answers how many.
    pub async fn fold(&self, db: &Db, now: Millis, all: bool) -> Result<usize, sqlx::Error> {
        let done = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take(now, all);
        if done.is_empty() {
            return Ok(0);
        }
        let replica = std::env::var("HOSTNAME").ok();
        let events: Vec<NewEvent> = done
            .iter()
            .map(|(address, t)| {
                let actor = Actor {
                    ip: Some(address.clone()),
                    ..Default::default()
                };
                NewEvent::new(Action::ApiAuth, Outcome::Denied, actor)
                    .target("ip", address)
                    .reason(format!("{} requests without a valid API token in one minute", t.count))
                    .details(json!({
                        "count": t.count,
                        "throttled": t.throttled,
                        "minute": t.minute,
                        "first_at": t.first_at,
                        "last_at": t.last_at,
                        "reasons": t.reasons,
                        "token_ids": t.token_ids,
                        "replica": replica,
                    }))
            })
            .collect();
        let n = events.len();
        let mut tx = db.begin_write().await?;
        log::append(&mut tx, now, events).await?;
        tx.commit().await?;
        Ok(n)
    }
}
