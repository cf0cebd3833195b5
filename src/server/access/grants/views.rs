//! Grants as the screens show them.

use super::GrantRecord;
use crate::domain::{
    grants::GrantState,
    grants::{Grant, Status},
    roles::RoleDef,
    Millis,
};
use crate::dto::{GrantInfo, PermissionSource};
use crate::server::platform::{names::opt_name, time::format_time};
use std::collections::HashMap;

pub fn grant_info(rec: &GrantRecord, roles: &[RoleDef], names: &HashMap<i64, String>, now: Millis) -> GrantInfo {
    let g = &rec.grant;
    let role = roles.iter().find(|r| r.key == g.role);
    GrantInfo {
        id: g.id,
        user_id: g.user_id,
        user_name: opt_name(names, Some(g.user_id)).unwrap_or_default(),
        role: g.role.clone(),
        role_name: role.map(|r| r.name.clone()).unwrap_or_else(|| g.role.clone()),
        state: GrantState::of(g, now),
        critical: role.is_some_and(|r| r.permissions.has_critical()),
        granted_by: opt_name(names, rec.granted_by),
        reason: rec.reason.clone(),
        starts_at: format_time(g.starts_at),
        expires_at: g.expires_at.map(format_time),
        approved_by: opt_name(names, rec.approved_by),
        revoked_by: opt_name(names, rec.revoked_by),
        revoked_at: g.revoked_at.map(format_time),
        revoke_reason: rec.revoke_reason.clone(),
        customers: g.customers.clone().unwrap_or_default(),
    }
}

pub fn sources_view(status: Status, grants: &[Grant], roles: &[RoleDef], now: Millis) -> Vec<PermissionSource> {
    crate::domain::grants::effective(status, grants, roles, now)
        .into_iter()
        .map(|(p, srcs)| PermissionSource {
            id: p.id().into(),
            description: p.description().into(),
            sensitivity: p.sensitivity().as_str().into(),
            sources: srcs
                .iter()
                .map(|s| {
                    let only = s
                        .customers
                        .as_ref()
                        .map(|c| format!(", only customers {}", c.join(", ")))
                        .unwrap_or_default();
                    match s.expires_at {
                        Some(e) => format!("{} (grant {}, until {}{only})", s.role_name, s.grant_id, format_time(e)),
                        None => format!("{} (grant {}{only})", s.role_name, s.grant_id),
                    }
                })
                .collect(),
        })
        .collect()
}
