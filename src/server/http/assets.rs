//! The browser bundle under `/pkg`: precompressed copies (`.br`, `.gz`,
//! written by `cargo leptos build --release --precompress`) chosen by the
//! request's Accept-Encoding, and Cache-Control from `platform::assets`:
//! hashed names for a year, anything else there revalidated, errors never
//! stored. Pages and API answers stay `no-store` (middleware::security_headers).

use crate::server::platform::assets::Assets;
use axum::{
    extract::{Request, State},
    http::{header, HeaderValue, StatusCode},
    middleware::Next,
    response::Response,
};
use std::{path::Path, sync::Arc};
use tower_http::services::ServeDir;

/// The /pkg directory of the site root, with its precompressed copies.
pub fn serve_dir(site_root: &Path) -> ServeDir {
    ServeDir::new(site_root.join("pkg"))
        .precompressed_br()
        .precompressed_gzip()
        .append_index_html_on_directories(false)
}

/// Sets Cache-Control on what /pkg answers: hashed files for a year, other
/// files revalidated, errors never stored. The answer depends on
/// Accept-Encoding (a precompressed copy or the file), so shared caches are
/// told to key on it (ServeDir does not say so).
pub async fn cache_layer(State(assets): State<Arc<Assets>>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    let mut res = next.run(req).await;
    let ok = res.status().is_success() || res.status() == StatusCode::NOT_MODIFIED;
    let value = if ok { assets.cache_control(&path) } else { "no-store" };
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(value));
    if ok {
        h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    res
}
