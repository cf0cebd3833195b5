//! One module per group of screens.

mod account;
mod admin;
mod audit;
mod requests;
mod reviews;
mod sign_in;

pub use account::{ActivityPage, HomePage, MyAccessPage, NotFound, SecurityPage};
pub use admin::{
    DashboardPage, DirectoryPage, EmployeePage, GrantTable, GrantsPage, OffboardingPage, OnboardPage, PermissionTable,
    RolesPage, ServiceAccountsPage, TargetsPage,
};
pub use audit::{AuditPage, AuditReportsPage, ElevationsPage, TicketPage};
pub use requests::{NotificationsPage, RequestsPage};
pub use reviews::{CampaignPage, CampaignsPage, ReviewsPage};
pub use sign_in::{
    EnrolPage, InvitePage, MfaPage, PasskeySetupPage, RecoveryCodesPage, RecoverySignInPage, SetupPage, SignInPage,
};
