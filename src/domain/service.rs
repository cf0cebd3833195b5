//! Backend services: their scopes, their API tokens, and the answer to
//! "may employee E do P on resource R (of customer C)?".

use super::{
    grants::{Grant, Status},
    permissions::Permission,
    roles::RoleDef,
    Millis,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Scope {
    AccessCheck,
    EventsWrite,
    /// Provisioning and deprovisioning employees through /scim/v2.
    Scim,
    /// A witness: reads signed checkpoints and proofs (/api/v1/audit/...)
    /// and posts co-signatures of the ones it accepted.
    AuditWitness,
}

impl Scope {
    pub const ALL: [Scope; 4] = [Scope::AccessCheck, Scope::EventsWrite, Scope::Scim, Scope::AuditWitness];

    pub fn id(self) -> &'static str {
        match self {
            Scope::AccessCheck => "access:check",
            Scope::EventsWrite => "events:write",
            Scope::Scim => "scim",
            Scope::AuditWitness => "audit:witness",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.id() == s)
    }
}

/// Parses a comma-separated scope list; unknown scopes are an error.
pub fn parse_scopes(list: &[String]) -> Result<Vec<Scope>, String> {
    let mut out = Vec::new();
    for s in list.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        let scope = Scope::parse(s).ok_or_else(|| s.chars().take(40).collect::<String>())?;
        if !out.contains(&scope) {
            out.push(scope);
        }
    }
    Ok(out)
}

/// Tokens look like `ghs_<id>_<secret>`: the id finds the row, the secret
/// is compared by hash.
pub const TOKEN_PREFIX: &str = "ghs_";

pub fn parse_token(s: &str) -> Option<(i64, &str)> {
    let rest = s.strip_prefix(TOKEN_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    if id.is_empty() || id.len() > 18 || !id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if secret.len() < 32
        || secret.len() > 128
        || !secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return None;
    }
    Some((id.parse().ok()?, secret))
}

pub fn format_token(id: i64, secret: &str) -> String {
    format!("{TOKEN_PREFIX}{id}_{secret}")
}

/// A stored token as the checks see it.
#[derive(Debug, Clone)]
pub struct TokenState {
    pub expires_at: Option<Millis>,
    pub revoked_at: Option<Millis>,
    pub account_disabled: bool,
}

pub fn token_usable(t: &TokenState, now: Millis) -> bool {
    t.revoked_at.is_none() && !t.account_disabled && t.expires_at.is_none_or(|e| now < e)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub allow: bool,
    pub reason: String,
    /// The grant that allowed it (the one ending last, standing first).
    pub grant_id: Option<i64>,
    pub role: Option<String>,
    pub grant_expires_at: Option<Millis>,
}

/// Decides an access check from the employee's status and grants at `now`.
/// Expired and revoked grants never allow, whatever any job has recorded.
/// A grant scoped to some customers allows only when the check names one
/// of them.
pub fn decide(
    status: Option<Status>,
    grants: &[Grant],
    roles: &[RoleDef],
    permission: Permission,
    customer: Option<&str>,
    now: Millis,
) -> Decision {
    let deny = |reason: String| Decision {
        allow: false,
        reason,
        grant_id: None,
        role: None,
        grant_expires_at: None,
    };
    match status {
        None => return deny("unknown employee".into()),
        Some(Status::Active) => {}
        Some(s) => return deny(format!("employee is {}", s.as_str())),
    }
    let giving: Vec<&Grant> = grants
        .iter()
        .filter(|g| g.is_active(now))
        .filter(|g| {
            roles
                .iter()
                .any(|r| r.key == g.role && r.permissions.contains(permission))
        })
        .collect();
    let best = giving
        .iter()
        .copied()
        .filter(|g| g.covers(customer))
        // Prefer a standing grant, then the one that lasts longest.
        .max_by_key(|g| (g.expires_at.is_none(), g.expires_at.unwrap_or(i64::MAX), -g.id));
    match best {
        Some(g) => Decision {
            allow: true,
            reason: format!("granted by role {}", g.role),
            grant_id: Some(g.id),
            role: Some(g.role.clone()),
            grant_expires_at: g.expires_at,
        },
        None if !giving.is_empty() => match customer {
            Some(_) => deny(format!("{} is granted only for other customers", permission.id())),
            None => deny(format!(
                "{} is granted only for named customers; name the customer",
                permission.id()
            )),
        },
        None => deny(format!("no active grant gives {}", permission.id())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{roles::builtin_roles, HOUR};

    const NOW: Millis = 1_800_000_000_000;

    fn grant(id: i64, role: &str, expires_at: Option<Millis>) -> Grant {
        Grant {
            id,
            user_id: 7,
            role: role.into(),
            starts_at: NOW - HOUR,
            expires_at,
            revoked_at: None,
            pending: false,
            customers: None,
        }
    }

    #[test]
    fn tokens_round_trip_and_reject_junk() {
        let secret = "a".repeat(43);
        let t = format_token(12, &secret);
        assert_eq!(parse_token(&t), Some((12, secret.as_str())));
        for bad in [
            "",
            "ghs_",
            "ghs_12",
            "ghs_x_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "ghs_12_short",
            "Bearer ghs_1_x",
            &format!("ghs_1_{}!", "a".repeat(40)),
        ] {
            assert_eq!(parse_token(bad), None, "{bad}");
        }
    }

    #[test]
    fn revoked_expired_and_disabled_tokens_are_unusable() {
        let ok = TokenState {
            expires_at: Some(NOW + 1),
            revoked_at: None,
            account_disabled: false,
        };
        assert!(token_usable(&ok, NOW));
        assert!(!token_usable(&ok, NOW + 1), "expires at the instant");
        assert!(!token_usable(
            &TokenState {
                revoked_at: Some(NOW - 1),
                ..ok.clone()
            },
            NOW
        ));
        assert!(!token_usable(
            &TokenState {
                account_disabled: true,
                ..ok
            },
            NOW
        ));
    }

    #[test]
    fn scopes_parse() {
        assert_eq!(
            parse_scopes(&["access:check".into(), " events:write".into(), "access:check".into()]),
            Ok(vec![Scope::AccessCheck, Scope::EventsWrite])
        );
        assert_eq!(parse_scopes(&["admin".into()]), Err("admin".into()));
    }

    #[test]
    fn decisions_name_the_grant_and_stop_at_expiry() {
        let roles = builtin_roles();
        let gs = [grant(1, "support", None), grant(2, "support-pii", Some(NOW + HOUR))];
        let d = decide(
            Some(Status::Active),
            &gs,
            &roles,
            Permission::CustomersReadPii,
            None,
            NOW,
        );
        assert!(d.allow);
        assert_eq!((d.grant_id, d.role.as_deref()), (Some(2), Some("support-pii")));
        let d = decide(Some(Status::Active), &gs, &roles, Permission::CustomersRead, None, NOW);
        assert_eq!(d.grant_id, Some(1), "the standing grant is named first");
        let d = decide(
            Some(Status::Active),
            &gs,
            &roles,
            Permission::CustomersReadPii,
            None,
            NOW + HOUR,
        );
        assert!(!d.allow);
        assert_eq!(d.reason, "no active grant gives customers:read_pii");
        let mut revoked = gs[0].clone();
        revoked.revoked_at = Some(NOW - 1);
        assert!(
            !decide(
                Some(Status::Active),
                &[revoked],
                &roles,
                Permission::CustomersRead,
                None,
                NOW
            )
            .allow
        );
    }

    #[test]
    fn a_customer_scoped_grant_allows_only_for_its_customers() {
        let roles = builtin_roles();
        let mut pii = grant(3, "support-pii", Some(NOW + HOUR));
        pii.customers = Some(vec!["1042".into(), "cust-7".into()]);
        let gs = [grant(1, "support", None), pii];
        let d = decide(
            Some(Status::Active),
            &gs,
            &roles,
            Permission::CustomersReadPii,
            Some("1042"),
            NOW,
        );
        assert!(d.allow);
        assert_eq!(d.grant_id, Some(3));
        assert!(
            decide(
                Some(Status::Active),
                &gs,
                &roles,
                Permission::CustomersReadPii,
                Some("cust-7"),
                NOW
            )
            .allow
        );
        let d = decide(
            Some(Status::Active),
            &gs,
            &roles,
            Permission::CustomersReadPii,
            Some("1043"),
            NOW,
        );
        assert!(!d.allow);
        assert_eq!(d.reason, "customers:read_pii is granted only for other customers");
        let d = decide(
            Some(Status::Active),
            &gs,
            &roles,
            Permission::CustomersReadPii,
            None,
            NOW,
        );
        assert!(!d.allow, "a check naming no customer is not covered by a scoped grant");
        assert!(d.reason.contains("name the customer"));
        // Exact match only, and it still ends at its instant.
        assert!(
            !decide(
                Some(Status::Active),
                &gs,
                &roles,
                Permission::CustomersReadPii,
                Some("10421"),
                NOW
            )
            .allow
        );
        assert!(
            !decide(
                Some(Status::Active),
                &gs,
                &roles,
                Permission::CustomersReadPii,
                Some("1042"),
                NOW + HOUR
            )
            .allow
        );
        // The standing grant still answers for every customer.
        assert_eq!(
            decide(
                Some(Status::Active),
                &gs,
                &roles,
                Permission::CustomersRead,
                Some("9"),
                NOW
            )
            .grant_id,
            Some(1)
        );
    }

    #[test]
    fn only_active_employees_are_allowed() {
        let roles = builtin_roles();
        let gs = [grant(1, "support", None)];
        assert_eq!(
            decide(
                Some(Status::Offboarded),
                &gs,
                &roles,
                Permission::CustomersRead,
                None,
                NOW
            )
            .reason,
            "employee is offboarded"
        );
        assert_eq!(
            decide(
                Some(Status::Suspended),
                &gs,
                &roles,
                Permission::CustomersRead,
                None,
                NOW
            )
            .reason,
            "employee is suspended"
        );
        assert_eq!(
            decide(None, &gs, &roles, Permission::CustomersRead, None, NOW).reason,
            "unknown employee"
        );
        assert!(decide(Some(Status::Active), &gs, &roles, Permission::CustomersRead, None, NOW).allow);
    }
}
