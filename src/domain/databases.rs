//! Database access provisioned by grants: the privileges a Gatehouse role
//! carries on a MySQL or MariaDB target, the names Gatehouse gives the
//! database roles and accounts it keeps, what a reconciliation must change,
//! and whether a read-back confirms a revocation.
//!
//! Names are built from role keys (validated: lowercase letters, digits and
//! hyphens), employee ids and the installation's prefix, never from free
//! text; identifiers in statements are quoted anyway.

use crate::domain::Millis;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// MySQL's limit on user and role names.
pub const NAME_LIMIT: usize = 32;

/// The privileges a role may carry, chosen from this list (no free SQL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Privilege {
    Select,
    Insert,
    Update,
    Delete,
}

impl Privilege {
    pub const ALL: [Privilege; 4] = [
        Privilege::Select,
        Privilege::Insert,
        Privilege::Update,
        Privilege::Delete,
    ];

    pub fn sql(self) -> &'static str {
        match self {
            Privilege::Select => "SELECT",
            Privilege::Insert => "INSERT",
            Privilege::Update => "UPDATE",
            Privilege::Delete => "DELETE",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.sql().eq_ignore_ascii_case(s.trim()))
    }

    /// Privileges that name columns (`SELECT (col)`); `DELETE` has none.
    pub fn has_columns(self) -> bool {
        self != Privilege::Delete
    }
}

/// What a privilege applies to: a whole schema, a table, or a column.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Scope {
    pub schema: String,
    pub table: Option<String>,
    pub column: Option<String>,
}

/// One privilege of a role on one target.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Mapping {
    pub role: String,
    pub privilege: Privilege,
    pub scope: Scope,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    #[error("Choose a privilege: SELECT, INSERT, UPDATE or DELETE.")]
    Privilege,
    #[error("{0} must be 1 to 64 letters, digits, _ or $.")]
    Identifier(&'static str),
    #[error("A column needs its table.")]
    ColumnWithoutTable,
    #[error("DELETE applies to whole rows: choose a table or the schema, not a column.")]
    DeleteColumn,
    #[error("The role's database name would be longer than 32 characters with this installation's prefix.")]
    NameTooLong,
}

/// A schema, table or column name: MySQL's unquoted identifier characters,
/// so that what is stored, shown and quoted is what the catalogue holds.
pub fn identifier(s: &str, what: &'static str) -> Result<String, MappingError> {
    let s = s.trim();
    let ok = (1..=64).contains(&s.len())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
        && !s.chars().all(|c| c.is_ascii_digit());
    if ok {
        Ok(s.to_owned())
    } else {
        Err(MappingError::Identifier(what))
    }
}

/// Checks a mapping from a form: the privilege from the list, each name an
/// identifier, a column only with its table, the role's name within limits.
pub fn check_mapping(
    names: &Names,
    role: &str,
    privilege: &str,
    schema: &str,
    table: &str,
    column: &str,
) -> Result<Mapping, MappingError> {
    let privilege = Privilege::parse(privilege).ok_or(MappingError::Privilege)?;
    let schema = identifier(schema, "The schema")?;
    let table = (!table.trim().is_empty())
        .then(|| identifier(table, "The table"))
        .transpose()?;
    let column = (!column.trim().is_empty())
        .then(|| identifier(column, "The column"))
        .transpose()?;
    if column.is_some() && table.is_none() {
        return Err(MappingError::ColumnWithoutTable);
    }
    if column.is_some() && !privilege.has_columns() {
        return Err(MappingError::DeleteColumn);
    }
    names.role(role).ok_or(MappingError::NameTooLong)?;
    Ok(Mapping {
        role: role.to_owned(),
        privilege,
        scope: Scope { schema, table, column },
    })
}

/// Quotes an identifier for MySQL: backticks, an inner backtick doubled.
pub fn quote(id: &str) -> String {
    format!("`{}`", id.replace('`', "``"))
}

impl Mapping {
    /// `SELECT (`col`) ON `app`.`t``: the privilege and its object, as a
    /// GRANT or REVOKE statement names them.
    pub fn grant_clause(&self) -> String {
        let s = &self.scope;
        let object = match &s.table {
            Some(t) => format!("{}.{}", quote(&s.schema), quote(t)),
            None => format!("{}.*", quote(&s.schema)),
        };
        match &s.column {
            Some(c) => format!("{} ({}) ON {object}", self.privilege.sql(), quote(c)),
            None => format!("{} ON {object}", self.privilege.sql()),
        }
    }
}

/// The names of what Gatehouse keeps on a target, from the installation's
/// prefix (`GATEHOUSE_DB_ACCOUNT_PREFIX`): `gh_support` for the role
/// `support`, `gh_12` for employee 12's account and `gh_12_roles` for the
/// personal role that holds the roles due to them. Role keys start with a
/// letter and employee ids are digits, so the two never meet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    prefix: String,
}

impl Names {
    /// A prefix of 2 to 12 lowercase letters, digits and `_`, starting with a letter.
    pub fn new(prefix: &str) -> Result<Self, String> {
        let ok = (2..=12).contains(&prefix.len())
            && prefix.starts_with(|c: char| c.is_ascii_lowercase())
            && prefix
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if ok {
            Ok(Self {
                prefix: prefix.to_owned(),
            })
        } else {
            Err("must be 2 to 12 lowercase letters, digits or _, starting with a letter (for example gh_)".into())
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The database role of a Gatehouse role; `None` when the name would
    /// pass MySQL's limit or the key is not a role key.
    pub fn role(&self, key: &str) -> Option<String> {
        let key_ok = key.starts_with(|c: char| c.is_ascii_lowercase())
            && key
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        let name = format!("{}{}", self.prefix, key.replace('-', "_"));
        (key_ok && name.len() <= NAME_LIMIT).then_some(name)
    }

    pub fn account(&self, user_id: i64) -> String {
        format!("{}{user_id}", self.prefix)
    }

    pub fn personal_role(&self, user_id: i64) -> String {
        format!("{}{user_id}_roles", self.prefix)
    }

    /// Whether a name on the target is Gatehouse's (for drift scans).
    pub fn owns(&self, name: &str) -> bool {
        name.starts_with(&self.prefix)
    }

    /// The employee an account name belongs to, if it is one of ours.
    pub fn account_user(&self, name: &str) -> Option<i64> {
        let rest = name.strip_prefix(&self.prefix)?;
        (!rest.is_empty() && rest.chars().all(|c| c.is_ascii_digit()))
            .then(|| rest.parse().ok())
            .flatten()
    }
}

/// What an employee's account on a target should be, and what it was.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AccountState {
    /// Database role names held through the personal role.
    pub roles: BTreeSet<String>,
    pub locked: bool,
}

impl AccountState {
    /// What is due: the roles, and locked exactly when none is.
    pub fn due(roles: BTreeSet<String>) -> Self {
        let locked = roles.is_empty();
        Self { roles, locked }
    }
}

/// The changes that bring an account from `actual` to `due`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Plan {
    pub grant: Vec<String>,
    pub revoke: Vec<String>,
    pub lock: bool,
    pub unlock: bool,
    /// A new window of access begins: the password is replaced by a random
    /// one nobody knows, so a password revealed for an earlier window fails.
    pub new_password: bool,
    /// Something was taken away: live connections are killed and the
    /// result read back.
    pub ends_access: bool,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.grant.is_empty() && self.revoke.is_empty() && !self.lock && !self.unlock
    }
}

pub fn plan(actual: &AccountState, due: &AccountState) -> Plan {
    let grant: Vec<String> = due.roles.difference(&actual.roles).cloned().collect();
    let revoke: Vec<String> = actual.roles.difference(&due.roles).cloned().collect();
    let lock = due.locked && !actual.locked;
    let unlock = !due.locked && actual.locked;
    Plan {
        new_password: !grant.is_empty() || unlock,
        ends_access: !revoke.is_empty() || due.locked,
        grant,
        revoke,
        lock,
        unlock,
    }
}

/// What the target showed after a change.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct ReadBack {
    pub roles: BTreeSet<String>,
    pub locked: bool,
    /// Ids of the account's live connections.
    pub connections: Vec<u64>,
}

impl ReadBack {
    /// Clean: the roles are exactly those due, the lock state is as due,
    /// and a locked account has no live connection left.
    pub fn confirms(&self, due: &AccountState) -> bool {
        self.roles == due.roles && self.locked == due.locked && (!due.locked || self.connections.is_empty())
    }
}

/// The Gatehouse roles due on a target now (those of the employee's active
/// grants that carry privileges there; none unless the employee is active),
/// and the next instant that changes by time alone (a grant's start or
/// expiry). A grant limited to some customers provisions nothing: a
/// database cannot hold it to those customers.
pub fn due_roles(
    status: Option<crate::domain::grants::Status>,
    grants: &[crate::domain::grants::Grant],
    mapped: &BTreeSet<String>,
    now: Millis,
) -> (BTreeSet<String>, Option<Millis>) {
    let counts = |g: &&crate::domain::grants::Grant| {
        g.customers.is_none() && !g.pending && g.revoked_at.is_none() && mapped.contains(&g.role)
    };
    let next = grants
        .iter()
        .filter(counts)
        .flat_map(|g| [Some(g.starts_at), g.expires_at])
        .flatten()
        .filter(|t| *t > now)
        .min();
    if status != Some(crate::domain::grants::Status::Active) {
        return (BTreeSet::new(), next);
    }
    let roles = grants
        .iter()
        .filter(counts)
        .filter(|g| g.is_active(now))
        .map(|g| g.role.clone())
        .collect();
    (roles, next)
}

/// What the connector account lacks, judged from its `SHOW GRANTS` lines:
/// creating and locking users, seeing and killing other users'
/// connections, reading the grant tables, passing privileges on (grant
/// option), setting another account's default role (MariaDB: UPDATE on the
/// mysql schema) and, on MySQL 8, administering roles.
pub fn missing_privileges(mariadb: bool, grants: &[String]) -> Vec<String> {
    let mut global: BTreeSet<String> = BTreeSet::new();
    let mut mysql_read = false;
    let mut mysql_update = false;
    let mut grant_option = false;
    for line in grants {
        let upper = line.to_ascii_uppercase();
        grant_option |= upper.contains("WITH GRANT OPTION");
        let Some(rest) = upper.strip_prefix("GRANT ") else {
            continue;
        };
        let Some((privs, object)) = rest.split_once(" ON ") else {
            continue;
        };
        let object = object.split(" TO ").next().unwrap_or_default().replace('`', "");
        let privs: BTreeSet<String> = privs.split(',').map(|p| p.trim().to_owned()).collect();
        if object == "*.*" {
            if privs.contains("ALL PRIVILEGES") || privs.contains("ALL") {
                return if grant_option || upper.contains("WITH GRANT OPTION") {
                    Vec::new()
                } else {
                    vec!["GRANT OPTION".into()]
                };
            }
            mysql_read |= privs.contains("SELECT");
            mysql_update |= privs.contains("UPDATE");
            global.extend(privs);
        } else if object == "MYSQL.*" {
            let all = privs.contains("ALL PRIVILEGES");
            mysql_read |= privs.contains("SELECT") || all;
            mysql_update |= privs.contains("UPDATE") || all;
        }
    }
    let kill = if mariadb {
        "CONNECTION ADMIN"
    } else {
        "CONNECTION_ADMIN"
    };
    let mut needed = vec!["CREATE USER", "PROCESS", kill];
    if !mariadb {
        needed.push("ROLE_ADMIN");
    }
    let mut missing: Vec<String> = needed
        .into_iter()
        .filter(|p| !(global.contains(*p) || (*p == kill && global.contains("SUPER"))))
        .map(str::to_owned)
        .collect();
    if !mysql_read {
        missing.push("SELECT ON mysql.*".into());
    }
    // MariaDB writes another account's default role into mysql.global_priv
    // and asks for UPDATE on the mysql schema to do it.
    if mariadb && !mysql_update {
        missing.push("UPDATE ON mysql.*".into());
    }
    if !grant_option {
        missing.push("GRANT OPTION".into());
    }
    missing
}

/// How long a change that failed waits before its next attempt: 1 s, 2 s,
/// 4 s, … at most a minute.
pub fn retry_delay(attempts: u32) -> Millis {
    1_000 * (1i64 << attempts.min(6)).min(60)
}

/// A revocation not confirmed within this raises an anomaly alert.
pub const UNCONFIRMED_AFTER: Millis = 60_000;

/// How long a reconciliation polls its read-back (`KILL` is asynchronous)
/// before leaving the change pending.
pub const READ_BACK_FOR: Millis = 5_000;

#[cfg(test)]
mod tests;

/// A privilege as a target's grant tables hold it: whom (user or role and
/// host; a MariaDB role has host ''), what, and on what. Privileges beyond
/// Gatehouse's list (`DROP`, `ALTER`, …) keep their name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct HeldPrivilege {
    pub grantee: String,
    pub host: String,
    pub privilege: String,
    pub scope: Scope,
}

/// What a drift scan read from a target.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// Schema, table and column privileges of every account and role.
    pub privileges: Vec<HeldPrivilege>,
    /// Accounts and roles holding privileges on every schema (`*.*`).
    pub global: BTreeSet<String>,
    /// Gatehouse's accounts (by prefix) and whether each is locked.
    pub accounts: Vec<(String, bool)>,
    /// Role grants: (grantee, host, role).
    pub role_edges: Vec<(String, String, String)>,
}

/// What Gatehouse intends on a target.
#[derive(Debug, Clone, Default)]
pub struct Intended {
    /// The connector's own user name: its privileges are its business.
    pub connector: String,
    pub mappings: Vec<Mapping>,
    /// Each known account's last confirmed state.
    pub accounts: std::collections::BTreeMap<String, AccountState>,
}

/// One difference between a target and what Gatehouse intends, and how to
/// undo it when it is Gatehouse's to undo.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Finding {
    pub kind: DriftKind,
    /// The account or role concerned.
    pub subject: String,
    /// The exact difference, as people read it.
    pub detail: String,
    pub fix: Option<Fix>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum DriftKind {
    /// A privilege on a `gh_` account or role that no mapping gives.
    ExtraPrivilege,
    /// A mapped privilege missing from its `gh_` role.
    MissingPrivilege,
    /// A `gh_` account open although nothing is due to it.
    UnlockedWithoutGrant,
    /// A `gh_` role held by an account or role it was not given to.
    ExtraRole,
    /// An account Gatehouse does not know holding privileges on a mapped schema.
    UnknownAccount,
    /// A `gh_` account Gatehouse never made.
    UnknownGhAccount,
}

/// A statement that undoes a finding: only ever on Gatehouse's own names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Fix {
    /// `REVOKE <privilege> ON <scope> FROM <grantee>@<host>`.
    Revoke(HeldPrivilege),
    /// `GRANT` the mapping to its role again.
    Grant(Mapping),
    Lock(String),
    /// `REVOKE <role> FROM <grantee>@<host>`.
    RevokeRole {
        grantee: String,
        host: String,
        role: String,
    },
}

fn describe_scope(s: &Scope) -> String {
    match (&s.table, &s.column) {
        (None, _) => format!("{}.*", s.schema),
        (Some(t), None) => format!("{}.{t}", s.schema),
        (Some(t), Some(c)) => format!("{}.{t} ({c})", s.schema),
    }
}

/// Compares a target with what Gatehouse intends. Findings come sorted,
/// so the same drift gives the same list (and fingerprint) each scan.
pub fn drift(names: &Names, intended: &Intended, observed: &Observed) -> Vec<Finding> {
    let mut out = Vec::new();
    let mapped_schemas: BTreeSet<&str> = intended.mappings.iter().map(|m| m.scope.schema.as_str()).collect();
    let expected: BTreeSet<(String, String, Scope)> = intended
        .mappings
        .iter()
        .filter_map(|m| Some((names.role(&m.role)?, m.privilege.sql().to_owned(), m.scope.clone())))
        .collect();
    let held: BTreeSet<(String, String, Scope)> = observed
        .privileges
        .iter()
        .map(|p| (p.grantee.clone(), p.privilege.clone(), p.scope.clone()))
        .collect();
    for p in &observed.privileges {
        let ours = names.owns(&p.grantee);
        if ours && !expected.contains(&(p.grantee.clone(), p.privilege.clone(), p.scope.clone())) {
            out.push(Finding {
                kind: DriftKind::ExtraPrivilege,
                subject: p.grantee.clone(),
                detail: format!("{} on {} granted by hand", p.privilege, describe_scope(&p.scope)),
                fix: Some(Fix::Revoke(p.clone())),
            });
        } else if !ours && p.grantee != intended.connector && mapped_schemas.contains(p.scope.schema.as_str()) {
            out.push(Finding {
                kind: DriftKind::UnknownAccount,
                subject: format!("{}@{}", p.grantee, p.host),
                detail: format!(
                    "{} on {} (not an account Gatehouse keeps)",
                    p.privilege,
                    describe_scope(&p.scope)
                ),
                fix: None,
            });
        }
    }
    for g in &observed.global {
        if names.owns(g) {
            out.push(Finding {
                kind: DriftKind::ExtraPrivilege,
                subject: g.clone(),
                detail: "privileges on every schema (*.*) granted by hand".into(),
                fix: None,
            });
        }
    }
    for (role, privilege, scope) in expected.difference(&held) {
        let m = intended.mappings.iter().find(|m| {
            names.role(&m.role).as_deref() == Some(role) && m.privilege.sql() == privilege && &m.scope == scope
        });
        out.push(Finding {
            kind: DriftKind::MissingPrivilege,
            subject: role.clone(),
            detail: format!("{privilege} on {} is mapped but not held", describe_scope(scope)),
            fix: m.cloned().map(Fix::Grant),
        });
    }
    for (account, locked) in &observed.accounts {
        match intended.accounts.get(account) {
            Some(want) if want.locked && !locked => out.push(Finding {
                kind: DriftKind::UnlockedWithoutGrant,
                subject: account.clone(),
                detail: "unlocked, but no database privilege is due to it".into(),
                fix: Some(Fix::Lock(account.clone())),
            }),
            Some(_) => {}
            None if !locked => out.push(Finding {
                kind: DriftKind::UnknownGhAccount,
                subject: account.clone(),
                detail: "an unlocked account with Gatehouse's prefix that Gatehouse never made".into(),
                fix: Some(Fix::Lock(account.clone())),
            }),
            None => {}
        }
    }
    for (grantee, host, role) in &observed.role_edges {
        if !names.owns(role) || grantee == &intended.connector {
            continue;
        }
        let given = intended.accounts.iter().any(|(account, want)| {
            let personal = names.account_user(account).map(|id| names.personal_role(id));
            (personal.as_deref() == Some(grantee.as_str()) && want.roles.contains(role))
                || (account == grantee && personal.as_deref() == Some(role.as_str()))
        });
        if !given {
            out.push(Finding {
                kind: DriftKind::ExtraRole,
                subject: if host.is_empty() {
                    grantee.clone()
                } else {
                    format!("{grantee}@{host}")
                },
                detail: format!("holds {role}, which Gatehouse did not give it"),
                fix: Some(Fix::RevokeRole {
                    grantee: grantee.clone(),
                    host: host.clone(),
                    role: role.clone(),
                }),
            });
        }
    }
    out.sort();
    out.dedup();
    out
}
