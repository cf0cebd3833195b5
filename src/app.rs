//! The HTML shell, the application frame and the route table.

use crate::components::Shell;
use crate::domain::permissions::Permission;
use crate::pages::*;
use leptos::prelude::*;
use leptos_meta::{provide_meta_context, HashedStylesheet, Link, MetaTags, Title};
use leptos_router::{
    components::{Route, Router, Routes},
    lazy_route, path, Lazy, LazyRoute, SsrMode,
};

/// Every fixed page path, for server-side gating (see `server::http`).
pub const PAGES: &[&str] = &[
    "/",
    "/signin",
    "/setup",
    "/invite",
    "/mfa",
    "/mfa/recovery",
    "/mfa/enrol",
    "/mfa/passkey",
    "/mfa/recovery-codes",
    "/activity",
    "/security",
    "/access",
    "/admin",
    "/employees",
    "/employees/new",
    "/roles",
    "/grants",
    "/offboarding",
    "/service-accounts",
    "/targets",
    "/audit",
    "/audit/reports",
    "/audit/elevations",
    "/requests",
    "/notifications",
    "/reviews",
    "/reviews/campaigns",
];

/// Is `path` one of the app's pages (fixed, or an employee's page)?
pub fn is_page(path: &str) -> bool {
    PAGES.contains(&path)
        || path.starts_with("/employees/")
        || path.starts_with("/audit/elevations/")
        || campaign_page(path)
}

/// `/reviews/<number>`: one access review campaign.
fn campaign_page(path: &str) -> bool {
    path.strip_prefix("/reviews/")
        .is_some_and(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
}

/// The permissions a page needs (any one of them); empty for pages every
/// signed-in employee may open. Checked on the server before rendering.
pub fn page_permissions(path: &str) -> &'static [Permission] {
    const MANAGE: &[Permission] = &[Permission::EmployeesManage];
    const ACCESS: &[Permission] = &[Permission::AccessGrant, Permission::EmployeesManage];
    match path {
        "/admin" | "/employees" | "/employees/new" | "/offboarding" => MANAGE,
        "/roles" | "/grants" => ACCESS,
        "/service-accounts" | "/targets" => &[Permission::AccessGrant],
        "/audit" | "/audit/reports" | "/audit/elevations" => &[Permission::AuditRead],
        p if p.starts_with("/audit/elevations/") => &[Permission::AuditRead],
        p if p.starts_with("/employees/") => MANAGE,
        "/reviews" => &[],
        "/reviews/campaigns" => &[Permission::AccessGrant, Permission::AuditRead],
        p if campaign_page(p) => &[Permission::AccessGrant, Permission::AuditRead],
        _ => &[],
    }
}

pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en" class="h-full bg-slate-50">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <HashedStylesheet id="leptos" options=options.clone() />
                <HydrationScripts options />
                <script src="/passkeys.js" defer></script>
                <MetaTags />
            </head>
            <body class="h-full text-slate-900 antialiased">
                <App />
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Title text="Gatehouse" />
        <Link rel="icon" href="/favicon.ico" />
        <Router>
            <Shell>
                <Routes fallback=|| view! { <NotFound /> }>
                    <Route path=path!("/") view=HomePage />
                    <Route path=path!("/signin") view=SignInPage />
                    <Route path=path!("/setup") view=SetupPage />
                    <Route path=path!("/mfa") view=MfaPage />
                    <Route path=path!("/mfa/recovery") view=RecoverySignInPage />
                    <Route path=path!("/mfa/enrol") view=EnrolPage ssr=SsrMode::Async />
                    <Route path=path!("/mfa/passkey") view=PasskeySetupPage />
                    <Route path=path!("/mfa/recovery-codes") view=RecoveryCodesPage ssr=SsrMode::Async />
                    <Route path=path!("/activity") view={Lazy::<LazyActivity>::new()} />
                    <Route path=path!("/security") view={Lazy::<LazySecurity>::new()} />
                    <Route path=path!("/access") view={Lazy::<LazyMyAccess>::new()} />
                    <Route path=path!("/invite") view=InvitePage />
                    <Route path=path!("/admin") view={Lazy::<LazyDashboard>::new()} />
                    <Route path=path!("/employees") view={Lazy::<LazyDirectory>::new()} />
                    <Route path=path!("/employees/new") view={Lazy::<LazyOnboard>::new()} />
                    <Route path=path!("/employees/:id") view={Lazy::<LazyEmployee>::new()} />
                    <Route path=path!("/roles") view={Lazy::<LazyRoles>::new()} />
                    <Route path=path!("/grants") view={Lazy::<LazyGrants>::new()} />
                    <Route path=path!("/offboarding") view={Lazy::<LazyOffboarding>::new()} />
                    <Route path=path!("/service-accounts") view={Lazy::<LazyServiceAccounts>::new()} />
                    <Route path=path!("/targets") view={Lazy::<LazyTargets>::new()} />
                    <Route path=path!("/audit") view={Lazy::<LazyAudit>::new()} />
                    <Route path=path!("/audit/reports") view={Lazy::<LazyAuditReports>::new()} />
                    <Route path=path!("/audit/elevations") view={Lazy::<LazyElevations>::new()} />
                    <Route path=path!("/audit/elevations/:id") view={Lazy::<LazyTicket>::new()} />
                    <Route path=path!("/requests") view={Lazy::<LazyRequests>::new()} />
                    <Route path=path!("/notifications") view={Lazy::<LazyNotifications>::new()} />
                    <Route path=path!("/reviews") view={Lazy::<LazyReviews>::new()} />
                    <Route path=path!("/reviews/campaigns") view={Lazy::<LazyCampaigns>::new()} />
                    <Route path=path!("/reviews/:id") view={Lazy::<LazyCampaign>::new()} />
                </Routes>
            </Shell>
        </Router>
    }
}

// Screens whose code the browser fetches when one is first opened (Leptos
// lazy routes: `cargo leptos --split` puts each in a file of its own), so
// the bundle every page loads holds the frame and the sign-in screens. The
// server renders them like any other. (One type each: the macro names the
// split point after the type.)
macro_rules! later {
    ($($route:ident => $page:ident),* $(,)?) => {$(
        pub struct $route;

        #[lazy_route]
        impl LazyRoute for $route {
            fn data() -> Self {
                $route
            }

            fn view(_this: Self) -> AnyView {
                view! { <$page /> }.into_any()
            }
        }
    )*};
}

later!(
    LazyDashboard => DashboardPage,
    LazyDirectory => DirectoryPage,
    LazyOnboard => OnboardPage,
    LazyEmployee => EmployeePage,
    LazyRoles => RolesPage,
    LazyGrants => GrantsPage,
    LazyOffboarding => OffboardingPage,
    LazyServiceAccounts => ServiceAccountsPage,
    LazyTargets => TargetsPage,
    LazyAudit => AuditPage,
    LazyAuditReports => AuditReportsPage,
    LazyElevations => ElevationsPage,
    LazyTicket => TicketPage,
    LazyRequests => RequestsPage,
    LazyNotifications => NotificationsPage,
    LazyActivity => ActivityPage,
    LazySecurity => SecurityPage,
    LazyMyAccess => MyAccessPage,
    LazyReviews => ReviewsPage,
    LazyCampaigns => CampaignsPage,
    LazyCampaign => CampaignPage,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn administration_pages_need_permissions() {
        for p in [
            "/admin",
            "/employees",
            "/employees/new",
            "/employees/7",
            "/employees/x",
            "/offboarding",
        ] {
            assert!(is_page(p), "{p}");
            assert_eq!(page_permissions(p), &[Permission::EmployeesManage], "{p}");
        }
        assert!(page_permissions("/roles").contains(&Permission::AccessGrant));
        for p in ["/", "/access", "/activity", "/security", "/signin", "/invite"] {
            assert!(page_permissions(p).is_empty(), "{p}");
        }
        assert!(!is_page("/api/me"));
        // Reviewers are anyone; campaigns are for administrators and auditors.
        assert!(page_permissions("/reviews").is_empty());
        for p in ["/reviews/campaigns", "/reviews/12"] {
            assert!(is_page(p), "{p}");
            assert_eq!(
                page_permissions(p),
                &[Permission::AccessGrant, Permission::AuditRead],
                "{p}"
            );
        }
        assert!(!is_page("/reviews/12/report.csv"));
    }
}
