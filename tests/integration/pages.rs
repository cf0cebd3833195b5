//! Server-rendered pages under concurrent load: every page a signed-in
//! administrator opens renders completely, with the navigation marking the
//! current section.
//!
//! These guard issue 2's intermittent SSR stall, which had two causes:
//! - a deadlock in reactive_graph 0.2.16's `Owner::with_context` (a Tokio
//!   worker stuck for good in an owner's cleanup): fixed by the patched copy
//!   in vendor/reactive_graph (PATCH.md; tests/integration/owner_race.rs);
//! - a render waiting for good on a resource (every worker idle, the
//!   response stopped after some streamed parts) when another server in the
//!   same process generated its route list at that moment: leptos switches
//!   resource loading off process-wide while it does (leptos-rs/leptos#4773).
//!   The route list is now made once per process (`startup::page_routes`);
//!   `pages_render_completely_while_another_router_is_built` guards it.

use crate::helpers::*;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const ADMIN: &str = "maya.okafor@sunridge-solar.example";
const PW: &str = "violet harbour lantern 42";

/// The pages rendered, each with the navigation link it marks as current.
const PAGES: &[(&str, Option<&str>)] = &[
    ("/", Some("/")),
    ("/admin", Some("/admin")),
    ("/employees", Some("/employees")),
    ("/employees/1", Some("/employees")),
    ("/roles", Some("/roles")),
    ("/grants", None),
    ("/offboarding", None),
    ("/service-accounts", Some("/service-accounts")),
    ("/targets", Some("/targets")),
    ("/requests", Some("/requests")),
    ("/access", Some("/access")),
    ("/activity", Some("/activity")),
    ("/security", Some("/security")),
];

/// Renders of every page in all, and how many run at once.
const RENDERS: usize = 480;
const AT_ONCE: usize = 12;

// Its own runtime sizes, not `on_both!`: the server gets four workers so
// renders of one page really run on several threads at once, and the
// client runs on a runtime of its own so a wedged server worker fails the
// test instead of stopping the clock that would time it out.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn signed_in_pages_render_completely_under_concurrent_load_sqlite() {
    signed_in_pages_render_completely_under_concurrent_load(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn signed_in_pages_render_completely_under_concurrent_load_mysql() {
    if let Some(b) = Backend::mysql().await {
        signed_in_pages_render_completely_under_concurrent_load(b).await
    }
}

async fn signed_in_pages_render_completely_under_concurrent_load(b: Backend) {
    let app = TestApp::spawn(&b).await;
    let (admin, _, _) = app.first_admin(ADMIN, PW).await;
    serve_load(admin, app.url(""), RENDERS).await;
    app.cleanup().await;
}

/// Another router built in this process while pages are being served (as
/// each test server does, and as an embedding application could) leaves
/// those pages alone. Before the route list was made once per process, a
/// router built during a render could leave that render waiting for good
/// on its data (leptos-rs/leptos#4773); here routers are built back to back
/// for the whole run, so nearly every render would meet one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pages_render_completely_while_another_router_is_built() {
    let app = TestApp::spawn(&Backend::Sqlite).await;
    let (admin, _, _) = app.first_admin(ADMIN, PW).await;
    let stop = Arc::new(AtomicBool::new(false));
    let built = Arc::new(AtomicUsize::new(0));
    let builder = {
        let (st, stop, built) = (app.state.clone(), stop.clone(), built.clone());
        let rt = tokio::runtime::Handle::current();
        std::thread::spawn(move || {
            let _in_runtime = rt.enter();
            while !stop.load(Ordering::Relaxed) {
                drop(gatehouse::server::http::router(st.clone()));
                built.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    serve_load(admin, app.url(""), 120).await;
    stop.store(true, Ordering::Relaxed);
    builder.join().unwrap();
    assert!(
        built.load(Ordering::Relaxed) > 10,
        "routers were built during the renders"
    );
    app.cleanup().await;
}

/// Renders `renders` pages, `AT_ONCE` at a time, from a runtime of its own
/// so a wedged server worker fails the test instead of stopping the clock
/// that would time it out.
async fn serve_load(admin: reqwest::Client, base: String, renders: usize) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let outcome = rt.block_on(load(admin, base, renders));
        let _ = tx.send(outcome);
    });
    // Blocking here is deliberate: if the server wedges, nothing on this
    // runtime can be relied on to wake us.
    match rx.recv_timeout(Duration::from_secs(300)) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("{e}"),
        Err(_) => {
            // A wedged worker would also stop this runtime from shutting
            // down, so the failure would never be reported: end the process.
            eprintln!("pages: renders did not finish within 300 s (server worker wedged)");
            std::process::exit(101);
        }
    }
}

async fn load(admin: reqwest::Client, base: String, renders: usize) -> Result<(), String> {
    use futures::stream::{self, StreamExt};
    let results: Vec<Result<(), String>> = stream::iter(0..renders)
        .map(|i| {
            let (path, current) = PAGES[i % PAGES.len()];
            let c = admin.clone();
            let url = format!("{base}{path}");
            async move {
                // What has arrived so far, to show where a stalled page stopped.
                let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
                // Sizes of the pieces as they arrived, to tell the server's
                // stream chunks from where it stopped.
                let pieces = std::sync::Arc::new(std::sync::Mutex::new(Vec::<usize>::new()));
                let fetch = {
                    let received = received.clone();
                    let pieces = pieces.clone();
                    async move {
                        let mut r = c.get(&url).send().await.map_err(|e| format!("{path}: {e}"))?;
                        let status = r.status();
                        while let Some(chunk) = r.chunk().await.map_err(|e| format!("{path}: body: {e}"))? {
                            received.lock().unwrap().extend_from_slice(&chunk);
                            pieces.lock().unwrap().push(chunk.len());
                        }
                        Ok::<_, String>(status)
                    }
                };
                let status = tokio::time::timeout(Duration::from_secs(60), fetch).await.map_err(|_| {
                    let got = String::from_utf8_lossy(&received.lock().unwrap()).into_owned();
                    format!(
                        "{path}: no complete answer within 60 s (render {i}); stopped after {} bytes in pieces of {:?}: …{}",
                        got.len(),
                        pieces.lock().unwrap(),
                        &got[got.len().saturating_sub(600)..]
                    )
                })??;
                let body = String::from_utf8_lossy(&received.lock().unwrap()).into_owned();
                if status != reqwest::StatusCode::OK {
                    return Err(format!("{path}: status {status}"));
                }
                // Streamed out of order: the shell's `</html>` comes first,
                // then each resolved part, and last the list of parts left
                // to the browser (the alerts panel loads there).
                let tail = &body[body.rfind("<script").unwrap_or(0)..];
                if !body.contains("</html>") || !tail.contains("__INCOMPLETE_CHUNKS=[") || !tail.trim_end().ends_with("];</script>") {
                    return Err(format!("{path}: page cut short: …{}", &body[body.len().saturating_sub(200)..]));
                }
                check_navigation(path, current, &body)
            }
        })
        .buffer_unordered(AT_ONCE)
        .collect()
        .await;
    let failures: Vec<String> = results.into_iter().filter_map(Result::err).collect();
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} of {renders} renders failed: {:?}",
            failures.len(),
            &failures[..failures.len().min(5)]
        ))
    }
}

/// The navigation is there, and exactly `current` (if any) is marked as
/// the current page.
fn check_navigation(path: &str, current: Option<&str>, body: &str) -> Result<(), String> {
    let nav_start = body
        .find(r#"<nav aria-label="Main""#)
        .ok_or_else(|| format!("{path}: no main navigation"))?;
    let nav = &body[nav_start
        ..nav_start
            + body[nav_start..]
                .find("</nav>")
                .ok_or_else(|| format!("{path}: navigation not closed"))?];
    let marked: Vec<&str> = nav
        .split("<a ")
        .skip(1)
        .filter(|tag| tag[..tag.find('>').unwrap_or(tag.len())].contains(r#"aria-current="page""#))
        .filter_map(|tag| tag.split("href=\"").nth(1).and_then(|h| h.split('"').next()))
        .collect();
    let expected: Vec<&str> = current.into_iter().collect();
    if marked != expected {
        return Err(format!(
            "{path}: navigation marks {marked:?} as current, expected {expected:?}"
        ));
    }
    for link in ["/admin", "/employees", "/roles", "/security"] {
        if !nav.contains(&format!(r#"href="{link}""#)) {
            return Err(format!("{path}: navigation lacks {link}"));
        }
    }
    if nav.contains(r#"href="/audit""#) {
        return Err(format!(
            "{path}: navigation offers the audit trail to an administrator without audit:read"
        ));
    }
    Ok(())
}
