//! Each employee's access facts (status, grants not revoked or expired, and
//! the roles those grants name) kept in memory by this process, so that a
//! permission check costs no query of its own.
//!
//! Safety rests on `users.access_version`: database triggers bump it with
//! every change to the employee's status, grants or the roles they hold,
//! whoever makes it (this process, another Gatehouse process on the same
//! MySQL database, the command line, a hand-written SQL statement). Every
//! request reads the employee's row, and with it the version, before it is
//! authorised; cached facts are used only when they were read at exactly
//! that version. Time is not cached: grants are evaluated at the instant of
//! each check, so a grant still stops counting at its expiry instant.

use super::{grants::grant_from_row, roles::parse_stored};
use crate::domain::{
    grants::{self, Grant, Status},
    permissions::{Permission, PermissionSet},
    roles::{self, RoleDef},
    service::{self, Decision},
    Millis,
};
use crate::server::platform::db::{opt_text, text};
use sqlx::Row;
use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
};

/// What an employee's permissions depend on, read in one query.
#[derive(Debug, Clone)]
pub struct Facts {
    /// `users.access_version` when these facts were read.
    pub version: i64,
    /// When they were read: an earlier instant is not covered (grants that
    /// had expired by then were left out).
    pub read_at: Millis,
    pub status: Option<Status>,
    /// Approved grants, not revoked, not expired at `read_at` (some may
    /// start later).
    pub grants: Vec<Grant>,
    /// The roles those grants name: built-in, or custom and not deleted.
    pub roles: Vec<RoleDef>,
}

impl Facts {
    pub fn permissions(&self, now: Millis) -> PermissionSet {
        match self.status {
            Some(status) => grants::permission_set(status, &self.grants, &self.roles, now),
            None => PermissionSet::EMPTY,
        }
    }

    pub fn decide(&self, permission: Permission, customer: Option<&str>, now: Millis) -> Decision {
        service::decide(self.status, &self.grants, &self.roles, permission, customer, now)
    }

    /// Names of the roles active at `now`, sorted.
    pub fn active_role_names(&self, now: Millis) -> Vec<String> {
        let mut names: Vec<String> = self
            .grants
            .iter()
            .filter(|g| g.is_active(now))
            .filter_map(|g| self.roles.iter().find(|r| r.key == g.role).map(|r| r.name.clone()))
            .collect();
        names.sort();
        names.dedup();
        names
    }
}

/// Reads an employee's facts from the database (no cache).
pub async fn load(pool: &sqlx::AnyPool, user_id: i64, now: Millis) -> Result<Facts, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT u.status, u.access_version, g.id, g.user_id, g.role, g.starts_at, g.expires_at, g.revoked_at, g.pending, g.customer_scope, \
         r.name AS role_name, r.description AS role_description, r.permissions AS role_permissions, \
         r.max_duration_ms, r.requestable, r.deleted_at \
         FROM users u LEFT JOIN grants g ON g.user_id = u.id AND g.revoked_at IS NULL AND g.pending = 0 \
         AND (g.expires_at IS NULL OR g.expires_at > ?) \
         LEFT JOIN roles r ON r.role_key = g.role WHERE u.id = ? ORDER BY g.id",
    )
    .bind(now)
    .bind(user_id)
    .fetch_all(pool)
    .await?;
    let Some(first) = rows.first() else {
        return Ok(Facts {
            version: -1,
            read_at: now,
            status: None,
            grants: Vec::new(),
            roles: Vec::new(),
        });
    };
    let mut facts = Facts {
        version: first.try_get("access_version")?,
        read_at: now,
        status: Status::parse(&text(first, "status")?),
        grants: Vec::new(),
        roles: Vec::new(),
    };
    for r in &rows {
        if r.try_get::<Option<i64>, _>("id")?.is_none() {
            continue;
        }
        let g = grant_from_row(r)?;
        if !facts.roles.iter().any(|known| known.key == g.role) {
            if let Some(def) = roles::builtin_role(&g.role) {
                facts.roles.push(def.clone());
            } else if let (Some(name), None) = (opt_text(r, "role_name")?, r.try_get::<Option<i64>, _>("deleted_at")?) {
                facts.roles.push(RoleDef {
                    key: g.role.clone(),
                    name,
                    description: opt_text(r, "role_description")?.unwrap_or_default(),
                    permissions: parse_stored(&opt_text(r, "role_permissions")?.unwrap_or_default()),
                    max_duration: r.try_get("max_duration_ms")?,
                    requestable: r.try_get::<Option<i64>, _>("requestable")?.unwrap_or(0) != 0,
                    builtin: false,
                });
            }
        }
        facts.grants.push(g);
    }
    Ok(facts)
}

/// Facts per employee, for this process. Bounded: when full it starts
/// afresh (a miss costs one query, as a check did before there was a cache).
pub struct AccessCache {
    entries: RwLock<HashMap<i64, Arc<Facts>>>,
    capacity: usize,
}

impl Default for AccessCache {
    fn default() -> Self {
        Self::new(10_000)
    }
}

impl AccessCache {
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: RwLock::new(HashMap::new()),
            capacity: capacity.max(1),
        }
    }

    /// The kept facts of `user_id` if they were read at `version` and cover
    /// `now`: the whole cost of a check when nothing changed.
    pub fn fresh(&self, user_id: i64, version: i64, now: Millis) -> Option<Arc<Facts>> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries
            .get(&user_id)
            .filter(|f| f.version == version && f.read_at <= now)
            .cloned()
    }

    pub fn keep(&self, user_id: i64, facts: Arc<Facts>) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= self.capacity && !entries.contains_key(&user_id) {
            entries.clear();
        }
        entries.insert(user_id, facts);
    }

    pub fn len(&self) -> usize {
        self.entries.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The facts of `user_id` at `now`. `version` is the employee's
    /// `access_version` as the caller read it in this request; without one
    /// the facts are read from the database.
    pub async fn facts(
        &self,
        pool: &sqlx::AnyPool,
        user_id: i64,
        version: Option<i64>,
        now: Millis,
    ) -> Result<Arc<Facts>, sqlx::Error> {
        if let Some(f) = version.and_then(|v| self.fresh(user_id, v, now)) {
            return Ok(f);
        }
        let facts = Arc::new(load(pool, user_id, now).await?);
        if facts.status.is_some() {
            self.keep(user_id, facts.clone());
        }
        Ok(facts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(version: i64, read_at: Millis) -> Arc<Facts> {
        let grant = Grant {
            id: 1,
            user_id: 7,
            role: "support".into(),
            starts_at: 0,
            expires_at: Some(5_000),
            revoked_at: None,
            pending: false,
            customers: None,
        };
        Arc::new(Facts {
            version,
            read_at,
            status: Some(Status::Active),
            grants: vec![grant],
            roles: vec![roles::builtin_role("support").unwrap().clone()],
        })
    }

    #[test]
    fn kept_facts_serve_only_their_version() {
        let cache = AccessCache::new(10);
        cache.keep(7, facts(3, 100));
        assert!(cache.fresh(7, 3, 100).is_some());
        assert!(
            cache.fresh(7, 4, 100).is_none(),
            "a changed employee must be read again"
        );
        assert!(cache.fresh(7, 2, 100).is_none());
        assert!(cache.fresh(8, 3, 100).is_none());
    }

    #[test]
    fn kept_facts_do_not_cover_earlier_instants() {
        let cache = AccessCache::new(10);
        cache.keep(7, facts(3, 1_000));
        assert!(cache.fresh(7, 3, 999).is_none());
        assert!(cache.fresh(7, 3, 1_000).is_some());
    }

    #[test]
    fn time_is_evaluated_at_each_check() {
        let f = facts(3, 0);
        assert!(f.permissions(4_999).contains(Permission::OrdersWrite));
        assert!(f.permissions(5_000).is_empty(), "the grant stops at its expiry instant");
        assert!(f.decide(Permission::OrdersWrite, None, 4_999).allow);
        assert!(!f.decide(Permission::OrdersWrite, None, 5_000).allow);
        assert_eq!(f.active_role_names(1), vec!["Customer support".to_owned()]);
    }

    #[test]
    fn a_full_cache_starts_afresh() {
        let cache = AccessCache::new(2);
        cache.keep(1, facts(0, 0));
        cache.keep(2, facts(0, 0));
        cache.keep(2, facts(1, 0));
        assert_eq!(cache.len(), 2, "replacing an entry does not evict");
        cache.keep(3, facts(0, 0));
        assert_eq!(cache.len(), 1);
        assert!(cache.fresh(3, 0, 0).is_some());
    }

    #[test]
    fn suspended_employees_hold_nothing() {
        let mut f = (*facts(0, 0)).clone();
        f.status = Some(Status::Suspended);
        assert!(f.permissions(1).is_empty());
        f.status = None;
        assert!(f.permissions(1).is_empty());
    }
}
