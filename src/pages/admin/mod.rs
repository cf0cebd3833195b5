//! Administrator screens: the least-privilege overview, the employee
//! directory and onboarding, an employee's page, roles, grants, the
//! offboarding report, service accounts, database targets and the SIEM
//! sinks' standing. The server checks every permission; these screens only
//! show what it returns.

mod dashboard;
mod directory;
mod employee;
mod grants;
mod offboarding;
mod role_changes;
mod roles;
mod service_accounts;
mod siem;
mod targets;

pub use dashboard::DashboardPage;
pub use directory::{DirectoryPage, OnboardPage};
pub use employee::EmployeePage;
pub use grants::{GrantTable, GrantsPage, PermissionTable};
pub use offboarding::OffboardingPage;
pub use roles::RolesPage;
pub use service_accounts::ServiceAccountsPage;
pub use targets::TargetsPage;

use crate::components::capital;

/// The departments, for a select.
pub(super) fn departments() -> Vec<(String, String)> {
    crate::domain::grants::DEPARTMENTS
        .iter()
        .map(|d| (d.to_string(), capital(d)))
        .collect()
}
