//! The server's layout, checked (docs/architecture.md): areas import each
//! other one way and only through what their `mod.rs` exposes, nothing in
//! `server` imports the browser's API or pages, the types `AppState` holds
//! do not import it, each table is written by one module, and writes take
//! the write lock.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The areas, lowest first: each may use the ones before it, none after.
const AREAS: [&str; 5] = ["platform", "audit", "identity", "access", "http"];
/// Outside the areas: the composition root and the state every request reaches.
const ROOT: [&str; 8] = [
    "state", "startup", "jobs", "cli", "seed", "backup", "rotation", "witness",
];

fn server_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src/server")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src/server is readable") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every server source file with its path below `src/server` ("access/grants/mod.rs").
fn sources() -> Vec<(String, String)> {
    let mut files = Vec::new();
    rust_files(&server_dir(), &mut files);
    files.sort();
    files
        .into_iter()
        .filter(|p| !p.ends_with("layout_tests.rs"))
        .map(|p| {
            let rel = p
                .strip_prefix(server_dir())
                .expect("below src/server")
                .to_string_lossy()
                .replace('\\', "/");
            let text = std::fs::read_to_string(&p).expect("source is readable");
            (rel, text)
        })
        .collect()
}

/// The source without comments, so prose that names a module is not read
/// as a dependency.
fn code(text: &str) -> String {
    text.lines()
        .map(|l| l.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The first segment of every path under `crate::server::` in `code`,
/// including each item of a grouped import (`crate::server::{a::x, b}`).
fn server_modules_used(code: &str) -> BTreeSet<String> {
    let mut used = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::server::") {
        rest = &rest[at + "crate::server::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // Top-level items of the group: split on commas at depth 0.
            let mut depth = 0;
            let mut item = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        used.extend(first_segment(&item));
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                item.push(c);
            }
            used.extend(first_segment(&item));
        } else {
            used.extend(first_segment(rest));
        }
    }
    used
}

fn first_segment(path: &str) -> Option<String> {
    let name: String = path
        .trim_start()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (!name.is_empty()).then_some(name)
}

fn area_of(rel: &str) -> Option<&'static str> {
    AREAS.into_iter().find(|a| rel.starts_with(&format!("{a}/")))
}

#[test]
fn areas_depend_on_lower_areas_only() {
    let mut problems = Vec::new();
    let mut edges: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for (rel, text) in sources() {
        let code = code(&text);
        let Some(area) = area_of(&rel) else { continue };
        let rank = AREAS.iter().position(|a| *a == area).expect("an area");
        for used in server_modules_used(&code) {
            if used == area || used == "state" {
                continue;
            }
            match AREAS.iter().position(|a| *a == used) {
                Some(r) if r < rank => {
                    edges.entry(area).or_default().insert(used);
                }
                Some(_) => problems.push(format!("{rel}: {area} uses {used}, which is above it")),
                None if ROOT.contains(&used.as_str()) => {
                    problems.push(format!("{rel}: {area} uses {used} (only the root may)"))
                }
                None => problems.push(format!("{rel}: uses crate::server::{used}, which is not an area")),
            }
        }
        // `super::` may walk up within the area, never out of it.
        let depth = rel.matches('/').count();
        let out_of_area = "super::".repeat(depth + 1);
        if code.contains(&out_of_area) {
            problems.push(format!(
                "{rel}: `{out_of_area}` leaves the {area} area; import through crate::server::"
            ));
        }
    }
    assert!(problems.is_empty(), "layout problems:\n{}", problems.join("\n"));
    // The documented order holds: http uses access, access identity, and so on.
    for (upper, lower) in [
        ("audit", "platform"),
        ("identity", "audit"),
        ("access", "identity"),
        ("http", "access"),
    ] {
        assert!(
            edges.get(upper).is_some_and(|e| e.contains(lower)),
            "{upper} is expected to use {lower}: {edges:?}"
        );
    }
}

#[test]
fn server_code_does_not_import_the_browser_side() {
    for (rel, text) in sources() {
        let code = code(&text);
        for banned in ["crate::api", "crate::pages", "crate::components"] {
            assert!(!code.contains(banned), "{rel} imports {banned}");
        }
        // Only `http` serves the app's pages (its route table and shell).
        if !rel.starts_with("http/") {
            assert!(!code.contains("crate::app"), "{rel} imports crate::app; only http may");
        }
    }
}

#[test]
fn types_held_in_app_state_do_not_import_it() {
    let files = sources();
    let state = files
        .iter()
        .find(|(rel, _)| rel == "state.rs")
        .expect("state.rs")
        .1
        .clone();
    let body = state
        .split("pub struct AppState")
        .nth(1)
        .expect("AppState")
        .split('}')
        .next()
        .unwrap_or_default();
    let mut held = BTreeSet::new();
    for line in body.lines().map(str::trim).filter(|l| l.starts_with("pub ")) {
        let ty = line.split(':').nth(1).unwrap_or_default();
        // The innermost type name: Arc<Option<Sso>> names Sso.
        let names: Vec<&str> = ty
            .split(|c: char| !c.is_alphanumeric() && c != '_')
            .filter(|s| !s.is_empty())
            .collect();
        if let Some(name) = names
            .iter()
            .rev()
            .find(|n| n.chars().next().is_some_and(char::is_uppercase))
        {
            held.insert(name.to_string());
        }
    }
    assert!(
        held.contains("AccessCache") && held.contains("Recorder") && held.contains("Sso"),
        "{held:?}"
    );
    for name in &held {
        for (rel, text) in &files {
            if text.contains(&format!("pub struct {name} ")) || text.contains(&format!("pub struct {name}(")) {
                assert!(
                    !code(text).contains("AppState"),
                    "{rel} defines {name}, held by AppState, and imports AppState"
                );
            }
        }
    }
}

/// Which module writes each table: a file's area and the module under it
/// (`access/grants/change.rs` belongs to `access/grants`).
fn owner(rel: &str) -> String {
    let parts: Vec<&str> = rel.trim_end_matches(".rs").split('/').collect();
    match parts.as_slice() {
        [area, module, ..] if AREAS.contains(area) => format!("{area}/{}", module.trim_end_matches(".rs")),
        _ => rel.trim_end_matches(".rs").to_owned(),
    }
}

#[test]
fn each_table_is_written_by_one_module() {
    let mut writers: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (rel, text) in sources() {
        let code = code(&text);
        for verb in ["INSERT INTO ", "UPDATE ", "DELETE FROM "] {
            for piece in code.split(verb).skip(1) {
                let table: String = piece.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                // `UPDATE t SET`: a table; other words after UPDATE are prose.
                let is_update_statement = verb != "UPDATE " || piece[table.len()..].trim_start().starts_with("SET");
                if table.is_empty() || !table.chars().all(|c| c.is_lowercase() || c == '_') || !is_update_statement {
                    continue;
                }
                writers.entry(table).or_default().insert(owner(&rel));
            }
        }
    }
    // `begin_write` takes SQLite's write lock with an UPDATE that changes
    // nothing: a lock, not a change of the audit head.
    if let Some(w) = writers.get_mut("audit_head") {
        w.remove("platform/db");
    }
    let shared: Vec<String> = writers
        .iter()
        .filter(|(_, w)| w.len() > 1)
        .map(|(t, w)| format!("{t}: {w:?}"))
        .collect();
    assert!(
        shared.is_empty(),
        "tables written by more than one module:\n{}",
        shared.join("\n")
    );
    for table in [
        "users",
        "grants",
        "sessions",
        "invitations",
        "audit_events",
        "elevation_requests",
    ] {
        assert!(writers.contains_key(table), "no writer found for {table}: {writers:?}");
    }
}

/// Writes take the write lock (`Db::begin_write`, or `Db::write` for one
/// statement): a statement executed on the read pool, outside `platform/db`,
/// is a write that would wait in SQLite's sleeping busy handler.
#[test]
fn statements_are_not_executed_on_the_read_pool() {
    let mut found = Vec::new();
    for (rel, text) in sources() {
        if rel == "platform/db.rs" {
            continue;
        }
        let code = code(&text);
        for (at, _) in code.match_indices(".execute(") {
            let arg: String = code[at + ".execute(".len()..]
                .chars()
                .take_while(|c| *c != ')')
                .collect();
            if arg.contains("pool") {
                let line = code[..at].lines().count();
                found.push(format!("{rel}:{line}: .execute({arg})"));
            }
        }
    }
    assert!(found.is_empty(), "writes on the read pool:\n{}", found.join("\n"));
}
