//! Gatehouse: decides, and proves, who in a company may touch customer data.
#![recursion_limit = "256"]

pub mod api;
pub mod app;
pub mod components;
pub mod domain;
pub mod dto;
pub mod errors;
pub mod pages;
#[cfg(feature = "ssr")]
pub mod server;

#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    // Asynchronous: a lazy route's screen (app::later!) is fetched before
    // the page it rendered on the server is hydrated.
    wasm_bindgen_futures::spawn_local(async {
        let document = leptos::prelude::document();
        let Some(body) = document.body() else {
            return;
        };
        leptos::mount::hydrate_from_async(body, app::App).await.forget();
        // Lets tests (and curious people) see that the page is interactive.
        if let Some(root) = document.document_element() {
            let _ = root.set_attribute("data-hydrated", "true");
        }
    });
}
