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
    /// lines, and `split: H` in a split build); without one, the bundle's
    /// names are plain. In a split build the lazy screens' files in `pkg`
    /// are read too (`split_chunks`).
    pub fn load(output_name: &str, hash_file: Option<&Path>, pkg: &Path) -> std::io::Result<Self> {
        let text = match hash_file {
            Some(p) => std::fs::read_to_string(p)?,
            None => String::new(),
        };
        let mut assets = Self::from_hashes(output_name, &text);
        if assets.hashed.iter().any(|n| n.starts_with(LOADER)) {
            assets.hashed.extend(split_chunks(pkg)?);
        }
        Ok(assets)
    }

    /// In a split build (`cargo leptos --split`, a `split:` line) cargo-leptos
    /// names the wasm files and the main JavaScript by their content, then
    /// writes the loader's hashed name into those that refer to it (the
    /// main wasm and JavaScript): such a file keeps its name when only a
    /// screen changed, while its content refers to the new loader. Those
    /// are revalidated (a 304 when unchanged); the loader (hashed again
    /// after that), the stylesheet and the screens' files that do not name
    /// the loader (`load`) are cached for good.
    pub fn from_hashes(output_name: &str, text: &str) -> Self {
        let mut lines = Vec::new();
        let mut stylesheet = format!("/pkg/{output_name}.css");
        for (kind, hash) in text.lines().filter_map(|l| l.split_once(':')) {
            let (kind, hash) = (kind.trim(), hash.trim());
            let well_formed = !hash.is_empty()
                && hash
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if well_formed && matches!(kind, "js" | "wasm" | "css" | "split") {
                lines.push((kind, hash));
            }
        }
        let split = lines.iter().any(|(kind, _)| *kind == "split");
        let mut hashed = HashSet::new();
        for (kind, hash) in lines {
            let name = match kind {
                "split" => format!("{LOADER}{hash}.js"),
                "js" | "wasm" if split => continue,
                _ => format!("{output_name}.{hash}.{kind}"),
            };
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

/// The start of the lazy screens' loader's name (`__wasm_split.H.js`).
const LOADER: &str = "__wasm_split.";

/// The wasm files of a split build that may be cached for good: named
/// `stem.H.wasm` by their content, and not rewritten after that. The only
/// rewrite cargo-leptos makes to a wasm file after naming it is to write
/// the loader's name into it, so a file without that name in it is still
/// what its name says.
fn split_chunks(pkg: &Path) -> std::io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(pkg)? {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let mut parts = name.split('.');
        let named = matches!(
            (parts.next(), parts.next(), parts.next(), parts.next()),
            (Some(_), Some(hash), Some("wasm"), None) if hash.len() == 22
        );
        if !named || !entry.file_type()?.is_file() {
            continue;
        }
        let bytes = std::fs::read(entry.path())?;
        if !bytes.windows(LOADER.len()).any(|w| w == LOADER.as_bytes()) {
            names.push(name);
        }
    }
    Ok(names)
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
    fn a_split_build_caches_for_good_only_what_is_named_after_its_last_rewrite() {
        let text = format!("{HASHES}manifest: TWFuaWZlc3RIYXNoQUJDREVG\nsplit: U3BsaXRMb2FkZXJIYXNoQUJD\n");
        let a = Assets::from_hashes("gatehouse", &text);
        assert_eq!(
            a.cache_control("/pkg/__wasm_split.U3BsaXRMb2FkZXJIYXNoQUJD.js"),
            IMMUTABLE
        );
        assert_eq!(a.cache_control("/pkg/gatehouse.Q3NzSGFzaEFCQ0RFRkdI.css"), IMMUTABLE);
        // Rewritten after they were named: revalidated.
        assert_eq!(a.cache_control("/pkg/gatehouse.V2FzbUhhc2hBQkNERUZH.wasm"), REVALIDATE);
        assert_eq!(a.cache_control("/pkg/gatehouse.Qm9vdHN0cmFwSGFzaA12.js"), REVALIDATE);
        assert_eq!(
            a.cache_control("/pkg/__wasm_split_manifest.TWFuaWZlc3RIYXNoQUJDREVG.json"),
            REVALIDATE
        );
        assert_eq!(a.stylesheet_href(), "/pkg/gatehouse.Q3NzSGFzaEFCQ0RFRkdI.css");
    }

    #[test]
    fn a_split_build_caches_for_good_the_screens_that_do_not_name_the_loader() {
        let dir = std::env::temp_dir().join(format!("gatehouse-assets-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let files: [(&str, &[u8]); 5] = [
            ("chunk_3.QUJDREVGR0hJSktMTU5PUA.wasm", b"\0asm chunk"),
            ("split_audit.QUJDREVGR0hJSktMTU5PUB.wasm", b"\0asm screen"),
            // Rewritten after it was named (it names the loader).
            ("chunk_4.QUJDREVGR0hJSktMTU5PUC.wasm", b"\0asm ./__wasm_split.X.js"),
            ("chunk_5.wasm", b"\0asm unnamed"),
            ("chunk_6.QUJDREVGR0hJSktMTU5PUD.wasm.br", b"compressed"),
        ];
        for (name, body) in files {
            std::fs::write(dir.join(name), body).unwrap();
        }
        let hashes = dir.join("hash.txt");
        std::fs::write(&hashes, format!("{HASHES}split: U3BsaXRMb2FkZXJIYXNoQUJD\n")).unwrap();
        let a = Assets::load("gatehouse", Some(&hashes), &dir).unwrap();
        let cache = |name: &str| a.cache_control(&format!("/pkg/{name}"));
        assert_eq!(cache(files[0].0), IMMUTABLE);
        assert_eq!(cache(files[1].0), IMMUTABLE);
        assert_eq!(cache(files[2].0), REVALIDATE);
        assert_eq!(cache(files[3].0), REVALIDATE);
        assert_eq!(cache("gatehouse.V2FzbUhhc2hBQkNERUZH.wasm"), REVALIDATE);
        // Without a split build the directory is not read at all.
        std::fs::write(&hashes, HASHES).unwrap();
        let a = Assets::load("gatehouse", Some(&hashes), &dir.join("missing")).unwrap();
        assert_eq!(a.cache_control(&format!("/pkg/{}", files[0].0)), REVALIDATE);
        std::fs::remove_dir_all(&dir).unwrap();
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
