//! The browser bundle's file names: which ones carry a content hash
//! (cargo-leptos `hash-files`, listed in hash.txt) and so may be cached for
//! good, and the stylesheet's address. Serving them is `http::assets`.

use std::{collections::HashSet, path::Path};

pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";
pub const REVALIDATE: &str = "no-cache";

/// What the server knows about the bundle it serves.
#[derive(Clone, Debug, Default)]
pub struct Assets {
    /// File names under /pkg that carry their content's hash.
    hashed: HashSet<String>,
    stylesheet: String,
}

impl Assets {
    /// Reads the hash file cargo-leptos wrote (`js: H`, `wasm: H`, `css: H`
    /// lines); without one, the bundle's names are plain.
    pub fn load(output_name: &str, hash_file: Option<&Path>) -> std::io::Result<Self> {
        let text = match hash_file {
            Some(p) => std::fs::read_to_string(p)?,
            None => String::new(),
        };
        Ok(Self::from_hashes(output_name, &text))
    }

    pub fn from_hashes(output_name: &str, text: &str) -> Self {
        let mut hashed = HashSet::new();
        let mut stylesheet = format!("/pkg/{output_name}.css");
        for (kind, hash) in text.lines().filter_map(|l| l.split_once(':')) {
            let (kind, hash) = (kind.trim(), hash.trim());
            let well_formed = !hash.is_empty()
                && hash
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !well_formed || !matches!(kind, "js" | "wasm" | "css") {
                continue;
            }
            let name = format!("{output_name}.{hash}.{kind}");
            if kind == "css" {
                stylesheet = format!("/pkg/{name}");
            }
            hashed.insert(name);
        }
        Self { hashed, stylesheet }
    }

    /// The stylesheet's address, for pages rendered outside the app shell.
    pub fn stylesheet_href(&self) -> &str {
        &self.stylesheet
    }

    /// Cache-Control for a successful answer from /pkg.
    /// `path` is the request path, with or without the `/pkg` prefix.
    pub fn cache_control(&self, path: &str) -> &'static str {
        let name = path.strip_prefix("/pkg").unwrap_or(path).trim_start_matches('/');
        if self.hashed.contains(name) {
            IMMUTABLE
        } else {
            REVALIDATE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASHES: &str = "js: Qm9vdHN0cmFwSGFzaA12\nwasm: V2FzbUhhc2hBQkNERUZH\ncss: Q3NzSGFzaEFCQ0RFRkdI\n";

    #[test]
    fn only_the_listed_hashed_names_are_immutable() {
        let a = Assets::from_hashes("gatehouse", HASHES);
        assert_eq!(a.cache_control("/pkg/gatehouse.V2FzbUhhc2hBQkNERUZH.wasm"), IMMUTABLE);
        assert_eq!(a.cache_control("/pkg/gatehouse.Qm9vdHN0cmFwSGFzaA12.js"), IMMUTABLE);
        assert_eq!(a.cache_control("/pkg/gatehouse.Q3NzSGFzaEFCQ0RFRkdI.css"), IMMUTABLE);
        // A hash of another kind, an old bundle's name, a plain name.
        assert_eq!(a.cache_control("/pkg/gatehouse.Qm9vdHN0cmFwSGFzaA12.wasm"), REVALIDATE);
        assert_eq!(a.cache_control("/pkg/gatehouse.wasm"), REVALIDATE);
        assert_eq!(a.cache_control("/pkg/snippets/x/inline0.js"), REVALIDATE);
        assert_eq!(a.stylesheet_href(), "/pkg/gatehouse.Q3NzSGFzaEFCQ0RFRkdI.css");
    }

    #[test]
    fn without_hashes_nothing_is_cached_for_good() {
        let a = Assets::from_hashes("gatehouse", "");
        assert_eq!(a.cache_control("/pkg/gatehouse.wasm"), REVALIDATE);
        assert_eq!(a.stylesheet_href(), "/pkg/gatehouse.css");
        // Junk lines are ignored rather than trusted as names.
        let a = Assets::from_hashes("gatehouse", "css: ../../etc\nfont: AAAA\nnonsense\n");
        assert_eq!(a.stylesheet_href(), "/pkg/gatehouse.css");
        assert_eq!(a.cache_control("/pkg/gatehouse.AAAA.font"), REVALIDATE);
    }
}
