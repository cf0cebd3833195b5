//! Roles: named sets of permissions. The built-in ones are defined here and
//! cannot be changed or deleted; administrators add custom roles.

use super::{
    permissions::{Permission as P, PermissionSet},
    Millis, HOUR,
};
use serde::{Deserialize, Serialize};

pub const ADMIN: &str = "admin";
pub const AUDITOR: &str = "auditor";
pub const ENGINEER: &str = "engineer";
pub const SUPPORT: &str = "support";
pub const SALES: &str = "sales";
pub const SUPPORT_PII: &str = "support-pii";
pub const PROD_DB_WRITE: &str = "prod-db-write";
pub const BREAKGLASS: &str = "breakglass";

/// The longest a custom role's maximum grant duration may be.
pub const MAX_DURATION_CEILING: Millis = 90 * 24 * HOUR;
pub const MIN_DURATION: Millis = 15 * 60 * 1000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleDef {
    /// Stable identifier: lower-case letters, digits and dashes.
    pub key: String,
    pub name: String,
    pub description: String,
    #[serde(skip)]
    pub permissions: PermissionSet,
    /// Grants of this role must expire within this long.
    pub max_duration: Option<Millis>,
    /// Employees may ask for it through an access request.
    pub requestable: bool,
    pub builtin: bool,
}

impl RoleDef {
    pub fn has(&self, p: P) -> bool {
        self.permissions.contains(p)
    }
}

fn builtin(key: &str, name: &str, description: &str, perms: &[P], max_hours: Option<i64>) -> RoleDef {
    RoleDef {
        key: key.into(),
        name: name.into(),
        description: description.into(),
        permissions: PermissionSet::of(perms),
        max_duration: max_hours.map(|h| h * HOUR),
        requestable: max_hours.is_some(),
        builtin: true,
    }
}

/// The built-in roles, least privilege by default.
pub fn builtin_roles() -> Vec<RoleDef> {
    vec![
        builtin(
            ENGINEER,
            "Engineer",
            "Ships code: production deploys through the pipeline; no customer data, no production writes.",
            &[P::DeployProd],
            None,
        ),
        builtin(
            SUPPORT,
            "Customer support",
            "Helps customers: views customers, changes orders and accounts.",
            &[P::CustomersRead, P::OrdersWrite, P::AccountsWrite],
            None,
        ),
        builtin(
            SALES,
            "Sales",
            "Works leads and sees existing customers.",
            &[P::LeadsRead, P::CustomersRead],
            None,
        ),
        builtin(
            ADMIN,
            "Administrator",
            "Manages employees and their access; approves requests. Cannot export the audit trail.",
            &[P::EmployeesManage, P::AccessGrant, P::RequestsApprove],
            None,
        ),
        builtin(
            AUDITOR,
            "Auditor",
            "Reads and exports the audit trail; read-only everywhere else.",
            &[P::AuditRead, P::AuditExport],
            None,
        ),
        builtin(
            SUPPORT_PII,
            "Support with customer PII",
            "Time-boxed: a customer's address, phone and payment details for one case.",
            &[P::CustomersRead, P::CustomersReadPii],
            Some(8),
        ),
        builtin(
            PROD_DB_WRITE,
            "Production database write",
            "Time-boxed: read and write the production database to fix data.",
            &[P::ProdDbRead, P::ProdDbWrite],
            Some(4),
        ),
        builtin(
            BREAKGLASS,
            "Break-glass",
            "Time-boxed emergency access to production and customer data.",
            &[
                P::ProdDbRead,
                P::ProdDbWrite,
                P::K8sProdExec,
                P::DeployProd,
                P::CustomersRead,
                P::CustomersReadPii,
            ],
            Some(2),
        ),
    ]
}

static BUILTINS: std::sync::LazyLock<Vec<RoleDef>> = std::sync::LazyLock::new(builtin_roles);

pub fn is_builtin(key: &str) -> bool {
    builtin_permissions(key).is_some()
}

/// The permissions of a built-in role, without allocating.
pub fn builtin_permissions(key: &str) -> Option<PermissionSet> {
    builtin_role(key).map(|r| r.permissions)
}

/// A built-in role by key.
pub fn builtin_role(key: &str) -> Option<&'static RoleDef> {
    BUILTINS.iter().find(|r| r.key == key)
}

/// Separation of duties: one person may not both manage access and hold
/// the audit trail that checks it.
pub const MANAGING: &[P] = &[P::EmployeesManage, P::AccessGrant];
pub const AUDITING: &[P] = &[P::AuditRead, P::AuditExport];

pub fn conflicts(perms: PermissionSet) -> bool {
    admin_power(perms) && perms.intersects(PermissionSet::of(AUDITING))
}

/// Administrator power: any role carrying `employees:manage` or
/// `access:grant`, whatever it is called. Its holders count among the
/// administrators (the last one stays; a second one approves).
pub fn admin_power(perms: PermissionSet) -> bool {
    perms.intersects(PermissionSet::of(MANAGING))
}

/// Granting these waits for a second administrator once two exist:
/// administrator power, and any `audit:*` permission (otherwise one
/// administrator could make a puppet auditor and read the trail).
pub fn needs_four_eyes(perms: PermissionSet) -> bool {
    admin_power(perms) || perms.intersects(PermissionSet::of(AUDITING))
}

/// Changing a role changes what every holder may do without a grant: a
/// change that adds administrator power, an `audit:*` or a critical
/// permission waits for a second administrator once two exist, as granting
/// such a role does. Narrowing a role, or adding anything else, does not.
pub fn change_needs_four_eyes(before: PermissionSet, after: PermissionSet, active_admins: usize) -> bool {
    let added = after.without(before);
    active_admins >= 2 && (needs_four_eyes(added) || added.has_critical())
}

/// Who decides a role change that waits: an administrator other than its
/// author (who may withdraw it, but not approve it).
pub fn check_role_change_decision(
    decider: i64,
    proposer: i64,
    decider_is_admin: bool,
    approve: bool,
) -> Result<(), RoleError> {
    if approve && decider == proposer {
        return Err(RoleError::OwnChange);
    }
    if !decider_is_admin {
        return Err(RoleError::NotAnAdministrator);
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoleError {
    #[error("The role identifier must be 2 to 40 characters: lower-case letters, digits and dashes, starting with a letter.")]
    BadKey,
    #[error("\"{0}\" is a built-in role; built-in roles cannot be changed or deleted.")]
    Builtin(String),
    #[error("The name is required and must be at most 80 characters.")]
    BadName,
    #[error("The description must be at most 500 characters.")]
    BadDescription,
    #[error("Choose at least one permission.")]
    NoPermissions,
    #[error("The maximum grant duration must be between 15 minutes and 90 days.")]
    BadDuration,
    #[error("A requestable role needs a maximum grant duration: requested access must end by itself.")]
    RequestableNeedsDuration,
    #[error("A role cannot both manage access (employees:manage, access:grant) and read the audit trail (separation of duties).")]
    SeparationOfDuties,
    #[error("You proposed this change; another administrator must approve it.")]
    OwnChange,
    #[error("Only an administrator can decide a change to a role.")]
    NotAnAdministrator,
}

/// Checks a custom role before it is saved.
pub fn validate_custom(role: &RoleDef) -> Result<(), RoleError> {
    let k = &role.key;
    let key_ok = (2..=40).contains(&k.len())
        && k.starts_with(|c: char| c.is_ascii_lowercase())
        && k.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !key_ok {
        return Err(RoleError::BadKey);
    }
    if is_builtin(k) {
        return Err(RoleError::Builtin(k.clone()));
    }
    let name = role.name.trim();
    if name.is_empty() || name.chars().count() > 80 || name.chars().any(char::is_control) {
        return Err(RoleError::BadName);
    }
    if role.description.chars().count() > 500 {
        return Err(RoleError::BadDescription);
    }
    if role.permissions.is_empty() {
        return Err(RoleError::NoPermissions);
    }
    if let Some(d) = role.max_duration {
        if !(MIN_DURATION..=MAX_DURATION_CEILING).contains(&d) {
            return Err(RoleError::BadDuration);
        }
    }
    if role.requestable && role.max_duration.is_none() {
        return Err(RoleError::RequestableNeedsDuration);
    }
    if conflicts(role.permissions) {
        return Err(RoleError::SeparationOfDuties);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn custom(key: &str, perms: &[P]) -> RoleDef {
        RoleDef {
            key: key.into(),
            name: "Billing".into(),
            description: String::new(),
            permissions: PermissionSet::of(perms),
            max_duration: None,
            requestable: false,
            builtin: false,
        }
    }

    fn role(key: &str) -> RoleDef {
        builtin_roles().into_iter().find(|r| r.key == key).unwrap()
    }

    #[test]
    fn builtins_are_least_privilege() {
        let eng = role(ENGINEER);
        for p in [
            P::CustomersRead,
            P::CustomersReadPii,
            P::ProdDbWrite,
            P::ProdDbRead,
            P::K8sProdExec,
        ] {
            assert!(!eng.has(p), "engineer has {p}");
        }
        assert_eq!(
            role(SUPPORT).permissions,
            PermissionSet::of(&[P::CustomersRead, P::OrdersWrite, P::AccountsWrite])
        );
        assert_eq!(
            role(SALES).permissions,
            PermissionSet::of(&[P::LeadsRead, P::CustomersRead])
        );
        let admin = role(ADMIN);
        assert!(admin.has(P::EmployeesManage) && admin.has(P::AccessGrant) && admin.has(P::RequestsApprove));
        assert!(!admin.has(P::AuditExport) && !admin.has(P::AuditRead));
        assert_eq!(
            role(AUDITOR).permissions,
            PermissionSet::of(&[P::AuditRead, P::AuditExport])
        );
        for r in builtin_roles() {
            assert!(!conflicts(r.permissions), "{} breaks separation of duties", r.key);
        }
    }

    #[test]
    fn roles_with_critical_permissions_are_time_boxed_and_requestable() {
        for r in builtin_roles() {
            if r.permissions.has_critical() {
                assert!(
                    r.max_duration.is_some() && r.requestable,
                    "{} carries critical permissions",
                    r.key
                );
            }
        }
        assert_eq!(role(BREAKGLASS).max_duration, Some(2 * HOUR));
        assert!(role(SUPPORT_PII).has(P::CustomersReadPii));
        assert!(role(PROD_DB_WRITE).has(P::ProdDbWrite));
    }

    #[test]
    fn custom_roles_are_checked() {
        assert_eq!(validate_custom(&custom("billing", &[P::AccountsWrite])), Ok(()));
        assert_eq!(
            validate_custom(&custom("Billing", &[P::AccountsWrite])),
            Err(RoleError::BadKey)
        );
        assert_eq!(
            validate_custom(&custom("b", &[P::AccountsWrite])),
            Err(RoleError::BadKey)
        );
        assert_eq!(
            validate_custom(&custom("9lives", &[P::AccountsWrite])),
            Err(RoleError::BadKey)
        );
        assert_eq!(
            validate_custom(&custom("admin", &[P::AccountsWrite])),
            Err(RoleError::Builtin("admin".into()))
        );
        assert_eq!(validate_custom(&custom("billing", &[])), Err(RoleError::NoPermissions));
        assert_eq!(
            validate_custom(&custom("billing", &[P::AccessGrant, P::AuditRead])),
            Err(RoleError::SeparationOfDuties)
        );
        let mut r = custom("billing", &[P::AccountsWrite]);
        r.requestable = true;
        assert_eq!(validate_custom(&r), Err(RoleError::RequestableNeedsDuration));
        r.max_duration = Some(10 * 60 * 1000);
        assert_eq!(validate_custom(&r), Err(RoleError::BadDuration));
        r.max_duration = Some(4 * HOUR);
        assert_eq!(validate_custom(&r), Ok(()));
        r.name = "  ".into();
        assert_eq!(validate_custom(&r), Err(RoleError::BadName));
    }

    #[test]
    fn widening_a_role_waits_for_a_second_administrator_once_two_exist() {
        let of = PermissionSet::of;
        let base = of(&[P::CustomersRead]);
        for added in [
            P::CustomersReadPii,
            P::ProdDbWrite,
            P::AccessGrant,
            P::EmployeesManage,
            P::AuditRead,
        ] {
            let wider = base.union(of(&[added]));
            assert!(change_needs_four_eyes(base, wider, 2), "{added:?}");
            assert!(
                !change_needs_four_eyes(base, wider, 1),
                "{added:?} with one administrator"
            );
        }
        // Neither critical nor administrative, or narrower: at once.
        assert!(!change_needs_four_eyes(
            base,
            base.union(of(&[P::LeadsRead, P::OrdersWrite])),
            2
        ));
        let pii = of(&[P::CustomersRead, P::CustomersReadPii]);
        assert!(!change_needs_four_eyes(pii, base, 2));
        assert!(
            !change_needs_four_eyes(pii, pii.union(of(&[P::LeadsRead])), 2),
            "PII was there before"
        );
    }

    #[test]
    fn a_role_change_is_approved_by_another_administrator() {
        assert_eq!(check_role_change_decision(1, 1, true, true), Err(RoleError::OwnChange));
        assert_eq!(
            check_role_change_decision(2, 1, false, true),
            Err(RoleError::NotAnAdministrator)
        );
        assert_eq!(check_role_change_decision(2, 1, true, true), Ok(()));
        // The author may withdraw it.
        assert_eq!(check_role_change_decision(1, 1, true, false), Ok(()));
    }
}
