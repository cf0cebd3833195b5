//! Database targets, the privileges roles carry on them, and each
//! employee's database accounts.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetView {
    pub id: i64,
    pub name: String,
    pub host: String,
    pub port: u16,
    pub tls: bool,
    /// The server's certificate is verified against a CA given at
    /// registration rather than public roots.
    pub private_ca: bool,
    /// The connector's user name (its password is never shown again).
    pub username: String,
    pub mappings: Vec<MappingView>,
    /// Employees whose last change there is not confirmed yet.
    pub pending: i64,
    /// Drift of Gatehouse's own names is undone by each scan.
    pub auto_correct: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MappingView {
    pub id: i64,
    pub role: String,
    /// The database role holding it on the target (`gh_support`).
    pub db_role: String,
    pub privilege: String,
    pub schema: String,
    pub table: Option<String>,
    pub column: Option<String>,
    /// Proposed, waiting for a second administrator: not on the target yet.
    pub waiting: bool,
}

/// What a drift scan found, and what it undid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftView {
    pub findings: Vec<String>,
    pub corrected: Vec<String>,
}

/// What "Test connection" found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionReport {
    pub server: String,
    /// The connector's grants, as the server lists them.
    pub grants: Vec<String>,
    /// Privileges the connector needs and does not hold.
    pub missing: Vec<String>,
}

/// An employee's account on one target, for `/access`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DbAccountView {
    pub target_id: i64,
    pub target: String,
    pub host: String,
    pub port: u16,
    pub tls: bool,
    pub account: String,
    /// Gatehouse roles that give privileges there now.
    pub roles: Vec<String>,
    /// The target confirmed the account as it should be; false while a
    /// change waits (access not provisioned yet, or not confirmed ended).
    pub provisioned: bool,
    /// The account may sign in (some privilege is due and provisioned).
    pub open: bool,
}
