//! The browser bundle as browsers fetch it: hashed names from the hash file
//! in the pages, precompressed copies chosen by Accept-Encoding, hashed
//! files cached for a year, anything else revalidated, pages never stored.

use crate::helpers::{tempdir::Dir, *};
use reqwest::StatusCode;

const JS: &str = "SnNIYXNoQUJDREVGR0hJSktM";
const WASM: &str = "V2FzbUhhc2hBQkNERUZHSElK";
const CSS: &str = "Q3NzSGFzaEFCQ0RFRkdISUpL";

/// A site root with a hashed bundle and its .br and .gz copies (their bytes
/// differ, so the test sees which one was sent), plus an unhashed file.
fn site() -> Dir {
    let dir = Dir::new();
    let pkg = dir.0.join("site/pkg");
    std::fs::create_dir_all(&pkg).unwrap();
    for (name, body) in [
        (format!("gatehouse.{WASM}.wasm"), "raw wasm"),
        (format!("gatehouse.{WASM}.wasm.br"), "brotli wasm"),
        (format!("gatehouse.{WASM}.wasm.gz"), "gzip wasm"),
        (format!("gatehouse.{JS}.js"), "raw js"),
        (format!("gatehouse.{CSS}.css"), "raw css"),
        ("notes.txt".to_owned(), "plain"),
    ] {
        std::fs::write(pkg.join(name), body).unwrap();
    }
    std::fs::write(dir.0.join("hash.txt"), format!("js: {JS}\nwasm: {WASM}\ncss: {CSS}\n")).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hashed_bundle_is_compressed_and_cached_for_good() {
    let dir = site();
    let root = dir.0.join("site").display().to_string();
    let hashes = dir.0.join("hash.txt").display().to_string();
    let app = TestApp::spawn_with(
        &Backend::Sqlite,
        &[("LEPTOS_SITE_ROOT", &root), ("LEPTOS_HASH_FILE_NAME", &hashes)],
    )
    .await;
    let c = client();
    let get = |path: &str, encoding: Option<&str>| {
        let mut r = c.get(app.url(path));
        if let Some(e) = encoding {
            r = r.header("accept-encoding", e);
        }
        r.send()
    };
    let header = |r: &reqwest::Response, k: &str| {
        r.headers()
            .get(k)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };

    // The page names the hashed files, and is never stored.
    let page = get("/signin", None).await.unwrap();
    assert_eq!(header(&page, "cache-control"), "no-store");
    let html = page.text().await.unwrap();
    for name in [
        format!("/pkg/gatehouse.{WASM}.wasm"),
        format!("/pkg/gatehouse.{JS}.js"),
        format!("/pkg/gatehouse.{CSS}.css"),
    ] {
        assert!(html.contains(&name), "{name} not in the page");
    }

    let wasm = format!("/pkg/gatehouse.{WASM}.wasm");
    for (accept, encoding, body) in [
        (Some("gzip, deflate, br, zstd"), "br", "brotli wasm"),
        (Some("gzip"), "gzip", "gzip wasm"),
        (None, "", "raw wasm"),
    ] {
        let r = get(&wasm, accept).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{accept:?}");
        assert_eq!(header(&r, "content-encoding"), encoding, "{accept:?}");
        assert_eq!(header(&r, "content-type"), "application/wasm");
        assert_eq!(header(&r, "cache-control"), "public, max-age=31536000, immutable");
        assert!(
            header(&r, "vary").to_lowercase().contains("accept-encoding"),
            "{accept:?}"
        );
        assert_eq!(r.text().await.unwrap(), body, "{accept:?}");
    }
    // No precompressed copy: the file as it is.
    let r = get(&format!("/pkg/gatehouse.{CSS}.css"), Some("br")).await.unwrap();
    assert_eq!(header(&r, "content-encoding"), "");
    assert_eq!(header(&r, "cache-control"), "public, max-age=31536000, immutable");
    assert_eq!(r.text().await.unwrap(), "raw css");

    // Not hashed: revalidated each time. Missing: never stored.
    let r = get("/pkg/notes.txt", None).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "cache-control"), "no-cache");
    let r = get("/pkg/gatehouse.AAAAAAAAAAAAAAAAAAAAAA.wasm", Some("br"))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(header(&r, "cache-control"), "no-store");
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_named_hash_file_that_is_missing_stops_the_start() {
    let dir = Dir::new();
    let missing = dir.0.join("nope.txt").display().to_string();
    let err = gatehouse::server::platform::config::Config::from_lookup(|k| {
        (k == "LEPTOS_HASH_FILE_NAME").then(|| missing.clone())
    })
    .unwrap_err();
    assert_eq!(err.variable, "LEPTOS_HASH_FILE_NAME");
}
