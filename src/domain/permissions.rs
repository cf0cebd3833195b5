//! The permission catalogue: what can be granted, with stable identifiers
//! that the backend asks about and a sensitivity level for each.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sensitivity {
    Low,
    Sensitive,
    Critical,
}

impl Sensitivity {
    pub fn as_str(self) -> &'static str {
        match self {
            Sensitivity::Low => "low",
            Sensitivity::Sensitive => "sensitive",
            Sensitivity::Critical => "critical",
        }
    }
}

macro_rules! permissions {
    ($($variant:ident = $id:literal, $sens:ident, $desc:literal;)*) => {
        /// A permission; written as its identifier (`customers:read`) in
        /// JSON, as everywhere else.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(into = "&'static str", try_from = "String")]
        pub enum Permission { $($variant),* }

        impl Permission {
            pub const ALL: &'static [Permission] = &[$(Permission::$variant),*];

            /// The stable identifier, as stored and as the API speaks it.
            pub fn id(self) -> &'static str {
                match self { $(Permission::$variant => $id),* }
            }

            pub fn sensitivity(self) -> Sensitivity {
                match self { $(Permission::$variant => Sensitivity::$sens),* }
            }

            pub fn description(self) -> &'static str {
                match self { $(Permission::$variant => $desc),* }
            }
        }
    };
}

permissions! {
    CustomersRead = "customers:read", Sensitive, "View customers: name, contact details and orders.";
    CustomersReadPii = "customers:read_pii", Critical, "View customers' home address, phone number and payment details.";
    OrdersWrite = "orders:write", Sensitive, "Create and change customers' orders.";
    AccountsWrite = "accounts:write", Sensitive, "Change customers' accounts.";
    LeadsRead = "leads:read", Low, "View sales leads.";
    ProdDbRead = "prod_db:read", Critical, "Read the production database.";
    ProdDbWrite = "prod_db:write", Critical, "Write to the production database.";
    K8sProdExec = "k8s_prod:exec", Critical, "Open a shell in production Kubernetes pods.";
    DeployProd = "deploy:prod", Sensitive, "Deploy to production.";
    EmployeesManage = "employees:manage", Sensitive, "Onboard, suspend and offboard employees.";
    AccessGrant = "access:grant", Sensitive, "Grant and revoke roles; define custom roles.";
    RequestsApprove = "requests:approve", Sensitive, "Approve other people's requests for elevated access.";
    AuditRead = "audit:read", Sensitive, "Browse and verify the audit trail.";
    AuditExport = "audit:export", Sensitive, "Export the audit trail.";
}

impl From<Permission> for &'static str {
    fn from(p: Permission) -> Self {
        p.id()
    }
}

impl TryFrom<String> for Permission {
    type Error = String;

    fn try_from(id: String) -> Result<Self, Self::Error> {
        Permission::parse(&id).ok_or_else(|| format!("unknown permission {id}"))
    }
}

impl Permission {
    pub fn parse(id: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|p| p.id() == id)
    }

    pub fn is_critical(self) -> bool {
        self.sensitivity() == Sensitivity::Critical
    }
}

impl std::fmt::Display for Permission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.id())
    }
}

/// A set of permissions as a bit mask: checks are one AND.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct PermissionSet(u32);

impl PermissionSet {
    pub const EMPTY: PermissionSet = PermissionSet(0);

    fn bit(p: Permission) -> u32 {
        1 << (p as u32)
    }

    pub fn of(perms: &[Permission]) -> Self {
        let mut s = Self::EMPTY;
        for p in perms {
            s.insert(*p);
        }
        s
    }

    pub fn insert(&mut self, p: Permission) {
        self.0 |= Self::bit(p);
    }

    pub fn contains(self, p: Permission) -> bool {
        self.0 & Self::bit(p) != 0
    }

    pub fn union(self, other: PermissionSet) -> PermissionSet {
        PermissionSet(self.0 | other.0)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The permissions of `self` that `other` lacks.
    pub fn without(self, other: PermissionSet) -> PermissionSet {
        PermissionSet(self.0 & !other.0)
    }

    pub fn intersects(self, other: PermissionSet) -> bool {
        self.0 & other.0 != 0
    }

    pub fn iter(self) -> impl Iterator<Item = Permission> {
        Permission::ALL.iter().copied().filter(move |p| self.contains(*p))
    }

    pub fn has_critical(self) -> bool {
        self.iter().any(Permission::is_critical)
    }

    /// Parses a comma-separated list of identifiers; unknown ones are an error.
    pub fn parse_list(s: &str) -> Result<Self, String> {
        let mut set = Self::EMPTY;
        for id in s.split(',').map(str::trim).filter(|x| !x.is_empty()) {
            set.insert(Permission::parse(id).ok_or_else(|| id.to_owned())?);
        }
        Ok(set)
    }

    pub fn to_list(self) -> String {
        self.iter().map(Permission::id).collect::<Vec<_>>().join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permissions_are_written_as_their_identifiers() {
        let json = serde_json::to_string(&[Permission::CustomersRead, Permission::AuditExport]).unwrap();
        assert_eq!(json, r#"["customers:read","audit:export"]"#);
        let back: Vec<Permission> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, [Permission::CustomersRead, Permission::AuditExport]);
        assert!(serde_json::from_str::<Permission>(r#""CustomersRead""#).is_err());
    }

    #[test]
    fn identifiers_are_stable_and_unique() {
        let ids: Vec<&str> = Permission::ALL.iter().map(|p| p.id()).collect();
        assert_eq!(
            ids,
            [
                "customers:read",
                "customers:read_pii",
                "orders:write",
                "accounts:write",
                "leads:read",
                "prod_db:read",
                "prod_db:write",
                "k8s_prod:exec",
                "deploy:prod",
                "employees:manage",
                "access:grant",
                "requests:approve",
                "audit:read",
                "audit:export",
            ]
        );
        for p in Permission::ALL {
            assert_eq!(Permission::parse(p.id()), Some(*p));
            assert!(!p.description().is_empty());
        }
        assert!(Permission::ALL.len() <= 32, "PermissionSet is a u32 mask");
    }

    #[test]
    fn customer_pii_and_production_access_are_critical() {
        for p in [
            Permission::CustomersReadPii,
            Permission::ProdDbRead,
            Permission::ProdDbWrite,
            Permission::K8sProdExec,
        ] {
            assert_eq!(p.sensitivity(), Sensitivity::Critical, "{p}");
        }
        assert_eq!(Permission::LeadsRead.sensitivity(), Sensitivity::Low);
        assert_eq!(Permission::CustomersRead.sensitivity(), Sensitivity::Sensitive);
    }

    #[test]
    fn sets_parse_and_print() {
        let s = PermissionSet::parse_list("orders:write, customers:read").unwrap();
        assert!(s.contains(Permission::CustomersRead) && s.contains(Permission::OrdersWrite));
        assert!(!s.contains(Permission::CustomersReadPii));
        assert_eq!(s.to_list(), "customers:read,orders:write");
        assert_eq!(PermissionSet::parse_list("customers:read,root").unwrap_err(), "root");
        assert!(PermissionSet::parse_list("").unwrap().is_empty());
        assert!(!s.has_critical());
        assert!(PermissionSet::of(&[Permission::ProdDbWrite]).has_critical());
    }
}
