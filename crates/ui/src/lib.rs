//! Coffer's web UI, embedded in the binary.
//!
//! The UI is plain ES modules and CSS under `assets/`, with no build step: what is in the
//! repository is what the browser gets. [`asset`] maps a path below `/ui/` to its bytes and
//! content type; `coffer-http` serves them (with the security headers) when `ui = true`.
#![forbid(unsafe_code)]

/// One embedded file.
#[derive(Debug, Clone, Copy)]
pub struct Asset {
    pub content_type: &'static str,
    pub bytes: &'static [u8],
}

macro_rules! assets {
    ($($name:literal => $ct:literal),* $(,)?) => {
        /// Every embedded file: (path below `/ui/`, asset).
        pub const ASSETS: &[(&str, Asset)] = &[
            $(($name, Asset { content_type: $ct, bytes: include_bytes!(concat!("../assets/", $name)) }),)*
        ];
    };
}

assets! {
    "index.html" => "text/html; charset=utf-8",
    "app.css" => "text/css; charset=utf-8",
    "favicon.svg" => "image/svg+xml",
    "js/app.js" => "text/javascript; charset=utf-8",
    "js/api.js" => "text/javascript; charset=utf-8",
    "js/dom.js" => "text/javascript; charset=utf-8",
    "js/acl.js" => "text/javascript; charset=utf-8",
    "js/views/setup.js" => "text/javascript; charset=utf-8",
    "js/views/dashboard.js" => "text/javascript; charset=utf-8",
    "js/views/secrets.js" => "text/javascript; charset=utf-8",
    "js/views/transit.js" => "text/javascript; charset=utf-8",
    "js/views/database.js" => "text/javascript; charset=utf-8",
    "js/views/policies.js" => "text/javascript; charset=utf-8",
    "js/views/access.js" => "text/javascript; charset=utf-8",
    "js/views/identity.js" => "text/javascript; charset=utf-8",
    "js/views/system.js" => "text/javascript; charset=utf-8",
}

/// The file served for `/ui/<path>`: `""` (the `/ui/` page itself) is `index.html`.
pub fn asset(path: &str) -> Option<Asset> {
    let path = if path.is_empty() { "index.html" } else { path };
    ASSETS.iter().find(|(name, _)| *name == path).map(|(_, a)| *a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_is_the_default_page() {
        let a = asset("").unwrap();
        assert!(a.content_type.starts_with("text/html"));
        assert!(std::str::from_utf8(a.bytes).unwrap().contains("js/app.js"));
        assert!(asset("../Cargo.toml").is_none());
        assert!(asset("nope.js").is_none());
    }

    /// Every file under `assets/` is embedded (a new file must be added to the list).
    #[test]
    fn every_asset_file_is_embedded() {
        fn walk(dir: &std::path::Path, base: &std::path::Path, out: &mut Vec<String>) {
            for e in std::fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    walk(&p, base, out);
                } else {
                    out.push(p.strip_prefix(base).unwrap().to_string_lossy().replace('\\', "/"));
                }
            }
        }
        let base = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets");
        let mut files = Vec::new();
        walk(&base, &base, &mut files);
        for f in files {
            assert!(asset(&f).is_some(), "assets/{f} is not listed in assets! {{ … }}");
        }
    }

    /// The Content-Security-Policy forbids inline code: no asset may rely on it.
    #[test]
    fn no_inline_scripts_styles_or_handlers() {
        for (name, a) in ASSETS {
            let text = std::str::from_utf8(a.bytes).unwrap();
            if name.ends_with(".html") {
                assert!(!text.contains("<script>") && !text.contains("<style"), "{name} has inline code");
                assert!(!text.contains(" style=") && !text.contains(" onclick="), "{name} has inline attributes");
            }
            if name.ends_with(".js") {
                assert!(!text.contains("innerHTML") && !text.contains("outerHTML"), "{name} uses innerHTML");
                assert!(
                    !text.contains("insertAdjacentHTML") && !text.contains("eval("),
                    "{name} parses strings as code"
                );
                assert!(!text.contains("console.log"), "{name} logs to the console");
            }
        }
    }
}
