//! The HTML shell, the application frame and the route table.

use crate::components::Shell;
use crate::pages::*;
use leptos::prelude::*;
use leptos_meta::{provide_meta_context, Link, MetaTags, Stylesheet, Title};
use leptos_router::{
    components::{Route, Router, Routes},
    path, SsrMode,
};

/// Every page path, for server-side gating (see `server::http`).
pub const PAGES: &[&str] =
    &["/", "/signin", "/setup", "/mfa", "/mfa/recovery", "/mfa/enrol", "/mfa/recovery-codes", "/activity", "/security"];

pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en" class="h-full bg-slate-50">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body class="h-full text-slate-900 antialiased">
                <App/>
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Stylesheet id="leptos" href="/pkg/gatehouse.css"/>
        <Title text="Gatehouse"/>
        <Link rel="icon" href="data:,"/>
        <Router>
            <Shell>
                <Routes fallback=|| view! { <NotFound/> }>
                    <Route path=path!("/") view=HomePage/>
                    <Route path=path!("/signin") view=SignInPage/>
                    <Route path=path!("/setup") view=SetupPage/>
                    <Route path=path!("/mfa") view=MfaPage/>
                    <Route path=path!("/mfa/recovery") view=RecoverySignInPage/>
                    <Route path=path!("/mfa/enrol") view=EnrolPage ssr=SsrMode::Async/>
                    <Route path=path!("/mfa/recovery-codes") view=RecoveryCodesPage ssr=SsrMode::Async/>
                    <Route path=path!("/activity") view=ActivityPage/>
                    <Route path=path!("/security") view=SecurityPage/>
                </Routes>
            </Shell>
        </Router>
    }
}
