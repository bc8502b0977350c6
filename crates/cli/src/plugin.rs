//! `coffer plugin new` writes a buildable plugin crate (secrets engine or auth method);
//! `coffer plugin install` downloads a plugin binary over HTTPS, checks its SHA-256 while it
//! streams in, places it in the server's plugin directory and registers it in the catalog.

use crate::args::{self, Parsed};
use crate::client::Client;
use crate::fetch;
use crate::{api_in, Fail, R};
use serde_json::json;
use std::path::{Path, PathBuf};

const NEW_USAGE: &str = "Usage: coffer plugin new [-type=secrets|auth|database] [-dir=DIR] NAME

  Writes a standalone plugin crate in DIR/NAME (default ./NAME): the backend built on
  coffer_sdk::framework (a coffer_sdk::database::Database for -type=database), the plugin
  binary, unit tests, an acceptance test (COFFER_ACC=1), a README and docs/. coffer-sdk and coffer-plugin come, in this order, from: -sdk=PATH
  (a Coffer source tree), $COFFER_SDK_PATH, the Coffer checkout around the current or target
  directory, the checkout this binary was built from (while it still exists), else crates.io
  by the SDK version this binary was built with. It says which it chose.

  -type=secrets|auth|database
                       What the plugin is (default: secrets): a secrets engine, an auth
                       method, or a database plugin for the database secrets engine.
  -dir=DIR             Where to create the crate directory (default: the current directory).
  -sdk=PATH            A Coffer source tree to take the SDK from (also $COFFER_SDK_PATH);
                       -sdk=crates.io takes the published SDK even inside a checkout.";

const INSTALL_USAGE: &str = "Usage: coffer plugin install [options] URL -sha256=HEX

  Downloads a plugin binary over HTTPS into the plugin directory, refusing it unless its
  SHA-256 is HEX (and, with -public-key, its minisign signature verifies), and registers it in the plugin catalog (sys/plugins/catalog/TYPE/NAME).
  Run it on the server's host: the file must land in the server's plugin_directory.

  -sha256=HEX          The published SHA-256 of the binary (required).
  -name=NAME           Catalog name (default: the URL's last path segment).
  -type=secret|auth|database
                       Catalog type (default: secret).
  -version=V           Semantic version to register (v1.2.3); the file is saved as NAME-V.
  -plugin-dir=DIR      The server's plugin directory (default: $COFFER_PLUGIN_DIR).
  -args=A, -env=K=V    Arguments and environment for the plugin process (repeatable).
  -ca-cert=FILE        CA certificate(s) for the download (also BAO_CACERT/VAULT_CACERT).
  -public-key=KEY      A trusted minisign public key (the RW… line, or a minisign.pub file):
                       the binary must carry a signature by it, checked before the digest.
  -signature=SRC       The detached minisign signature: an https:// URL or a file
                       (default with -public-key: the binary's URL with .minisig appended).
  -force               Replace an existing file of that name with different contents.";

/// Largest binary `install` accepts.
const MAX_DOWNLOAD: u64 = 1 << 30;

/// Names taken besides the builtin backends' (which the caller passes from the server's
/// registry): the `sys/` mount path and the `plugin` command itself.
const RESERVED: &[&str] = &["plugin", "sys"];

/// Vault's flag parser stops at the first positional; `plugin install URL -sha256=…` puts
/// flags after it, so the remaining arguments are parsed again after each positional.
fn interleaved(p: &Parsed) -> Result<Parsed, Fail> {
    let mut out = Parsed { flags: p.flags.clone(), positional: vec![] };
    let mut rest = p.positional.clone();
    while let Some((first, tail)) = rest.split_first() {
        out.positional.push(first.clone());
        let q = args::parse(tail).map_err(|e| Fail::Usage(e.to_string()))?;
        for (k, v) in q.flags {
            out.flags.entry(k).or_default().extend(v);
        }
        rest = q.positional;
    }
    Ok(out)
}

fn wants_help(p: &Parsed) -> bool {
    p.has("h") || p.has("help")
}

// ----- plugin new -----

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Secrets,
    Auth,
    Database,
}

fn parse_kind(v: Option<&str>, default: Kind) -> Result<Kind, Fail> {
    match v.map(str::to_ascii_lowercase).as_deref() {
        None | Some("") => Ok(default),
        Some("secret" | "secrets") => Ok(Kind::Secrets),
        Some("auth") => Ok(Kind::Auth),
        Some("database" | "db") => Ok(Kind::Database),
        Some(other) => Err(Fail::Usage(format!("invalid -type {other:?}: expected secrets, auth or database"))),
    }
}

/// A plugin name usable as a package, binary, file and catalog name.
/// `builtin_names`: the server's builtin backends; a plugin by such a name would be hidden.
fn check_new_name(name: &str, builtin_names: &[&str]) -> Result<(), Fail> {
    let ok_chars = name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    let starts = name.chars().next().is_some_and(|c| c.is_ascii_lowercase());
    if !ok_chars || !starts || name.len() > 64 || name.ends_with(['-', '_']) {
        return Err(Fail::Usage(format!(
            "invalid plugin name {name:?}: use lower-case letters, digits, '-' and '_', starting with a letter \
             (at most 64 characters)"
        )));
    }
    const RUST: &[&str] = &[
        "alloc",
        "as",
        "async",
        "await",
        "core",
        "crate",
        "dyn",
        "fn",
        "impl",
        "mod",
        "proc_macro",
        "self",
        "std",
        "super",
        "test",
        "type",
        "use",
    ];
    if RESERVED.contains(&name) || builtin_names.contains(&name) || RUST.contains(&name) {
        return Err(Fail::Usage(format!("invalid plugin name {name:?}: it is reserved; choose another")));
    }
    Ok(())
}

/// `my-plugin` → `MyPluginBackend` (`MyPluginDatabase` for a database plugin).
fn struct_name(name: &str, kind: Kind) -> String {
    let mut s: String = name
        .split(['-', '_'])
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
        })
        .collect();
    s.push_str(if kind == Kind::Database { "Database" } else { "Backend" });
    s
}

macro_rules! tmpl {
    ($path:literal) => {
        include_str!(concat!("../templates/plugin/", $path))
    };
}

const COMMON_FILES: &[(&str, &str)] = &[
    ("Cargo.toml", tmpl!("common/Cargo.toml.tmpl")),
    ("src/main.rs", tmpl!("common/main.rs.tmpl")),
    ("tests/support/mod.rs", tmpl!("common/support.rs.tmpl")),
    (".gitignore", tmpl!("common/gitignore.tmpl")),
    ("CHANGELOG.md", tmpl!("common/CHANGELOG.md.tmpl")),
];

const SECRETS_FILES: &[(&str, &str)] = &[
    ("src/lib.rs", tmpl!("secrets/lib.rs.tmpl")),
    ("tests/backend.rs", tmpl!("secrets/backend_test.rs.tmpl")),
    ("tests/acceptance.rs", tmpl!("secrets/acceptance.rs.tmpl")),
    ("README.md", tmpl!("secrets/README.md.tmpl")),
    ("docs/configuration.md", tmpl!("secrets/docs/configuration.md.tmpl")),
    ("docs/paths.md", tmpl!("secrets/docs/paths.md.tmpl")),
    ("docs/examples.md", tmpl!("secrets/docs/examples.md.tmpl")),
];

const AUTH_FILES: &[(&str, &str)] = &[
    ("src/lib.rs", tmpl!("auth/lib.rs.tmpl")),
    ("tests/backend.rs", tmpl!("auth/backend_test.rs.tmpl")),
    ("tests/acceptance.rs", tmpl!("auth/acceptance.rs.tmpl")),
    ("README.md", tmpl!("auth/README.md.tmpl")),
    ("docs/configuration.md", tmpl!("auth/docs/configuration.md.tmpl")),
    ("docs/paths.md", tmpl!("auth/docs/paths.md.tmpl")),
    ("docs/examples.md", tmpl!("auth/docs/examples.md.tmpl")),
];

const DATABASE_FILES: &[(&str, &str)] = &[
    ("src/lib.rs", tmpl!("database/lib.rs.tmpl")),
    ("src/main.rs", tmpl!("database/main.rs.tmpl")),
    ("tests/database.rs", tmpl!("database/database_test.rs.tmpl")),
    ("tests/acceptance.rs", tmpl!("database/acceptance.rs.tmpl")),
    ("README.md", tmpl!("database/README.md.tmpl")),
    ("docs/configuration.md", tmpl!("database/docs/configuration.md.tmpl")),
    ("docs/paths.md", tmpl!("database/docs/paths.md.tmpl")),
    ("docs/examples.md", tmpl!("database/docs/examples.md.tmpl")),
];

/// The `-sdk` value (and `COFFER_SDK_PATH` value) that asks for the published SDK.
const CRATES_IO: &str = "crates.io";

/// The requirement on the published SDK crates: the SDK version this binary was built with,
/// as `major.minor` (any compatible release; see docs/integration/compatibility.md).
fn sdk_requirement() -> String {
    coffer_sdk::VERSION.splitn(3, '.').take(2).collect::<Vec<_>>().join(".")
}

/// Where the scaffold takes Coffer's SDK from, and how that was chosen (said to the user).
fn sdk_source(flag: Option<&str>, parent: &Path) -> Result<(Option<PathBuf>, &'static str), Fail> {
    let given = |path: &str, what: &'static str| {
        let p = resolve(Path::new(path));
        match find_coffer_root(&p).filter(|r| r == &p) {
            Some(r) => Ok((Some(r), what)),
            None => Err(Fail::Local(format!(
                "{} is not a Coffer source tree (no workspace Cargo.toml with crates/sdk and crates/plugin)",
                p.display()
            ))),
        }
    };
    if let Some(path) = flag.filter(|p| !p.is_empty()) {
        if path == CRATES_IO {
            return Ok((None, "-sdk=crates.io asked for the published SDK"));
        }
        return given(path, "the source tree given with -sdk");
    }
    if let Some(path) = std::env::var("COFFER_SDK_PATH").ok().filter(|p| !p.is_empty()) {
        if path == CRATES_IO {
            return Ok((None, "COFFER_SDK_PATH=crates.io asked for the published SDK"));
        }
        return given(&path, "the source tree in COFFER_SDK_PATH");
    }
    let cwd = std::env::current_dir().ok();
    if let Some(r) = cwd.as_deref().and_then(find_coffer_root).or_else(|| find_coffer_root(parent)) {
        return Ok((Some(r), "the Coffer checkout around this directory"));
    }
    // The checkout this binary was built from, while it is still there.
    let built_from = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    if let Some(r) = find_coffer_root(&built_from.canonicalize().unwrap_or(built_from)) {
        return Ok((Some(r), "the Coffer checkout this binary was built from"));
    }
    Ok((None, "no Coffer source tree was given or found (use -sdk=PATH or COFFER_SDK_PATH for a local one)"))
}

/// The root of a Coffer checkout at or above `start`: a Cargo.toml naming `coffer-sdk`, with
/// the SDK and plugin crates beside it.
fn find_coffer_root(start: &Path) -> Option<PathBuf> {
    start.ancestors().find_map(|dir| {
        let toml = std::fs::read_to_string(dir.join("Cargo.toml")).ok()?;
        let is_root = toml.contains("coffer-sdk")
            && toml.contains("[workspace]")
            && dir.join("crates/sdk/Cargo.toml").is_file()
            && dir.join("crates/plugin/Cargo.toml").is_file();
        is_root.then(|| dir.to_path_buf())
    })
}

/// `path` as seen from `from` when `path` is below `from`'s ancestor `root`; else absolute.
fn path_from(from: &Path, root: &Path, sub: &str) -> String {
    match from.strip_prefix(root) {
        Ok(rel) => {
            let ups = rel.components().count();
            let mut s = "../".repeat(ups);
            s.push_str(sub);
            s
        }
        Err(_) => root.join(sub).display().to_string(),
    }
}

fn toml_string(s: &str) -> String {
    if s.contains('\'') || s.contains('\n') {
        format!("{s:?}")
    } else {
        format!("'{s}'")
    }
}

/// `p` made absolute, with its longest existing prefix resolved (symlinks, `..`), so that
/// where it points can be checked before anything is created.
fn resolve(p: &Path) -> PathBuf {
    let abs = if p.is_absolute() { p.to_path_buf() } else { std::env::current_dir().unwrap_or_default().join(p) };
    let mut existing = abs.clone();
    let mut rest = Vec::new();
    while !existing.exists() {
        match existing.file_name() {
            Some(n) => {
                rest.push(n.to_owned());
                existing.pop();
            }
            None => return abs,
        }
    }
    let mut out = existing.canonicalize().unwrap_or(existing);
    out.extend(rest.iter().rev());
    out
}

pub(crate) fn new(p: &Parsed, builtin_names: &[&str]) -> R {
    let p = interleaved(p)?;
    if wants_help(&p) {
        println!("{NEW_USAGE}");
        return Ok(0);
    }
    let [name] = p.positional.as_slice() else {
        return Err(Fail::Usage(NEW_USAGE.into()));
    };
    check_new_name(name, builtin_names)?;
    let kind = parse_kind(p.get("type"), Kind::Secrets)?;
    let parent = resolve(Path::new(p.get("dir").unwrap_or(".")));
    let target = parent.join(name);
    let existed = target.exists();
    if existed && std::fs::read_dir(&target).map(|mut d| d.next().is_some()).unwrap_or(true) {
        return Err(Fail::Local(format!(
            "{} already exists and is not empty: choose another name or -dir",
            target.display()
        )));
    }

    let (root, source) = sdk_source(p.get("sdk"), &parent)?;
    if let Some(r) = &root {
        let r = r.canonicalize().unwrap_or_else(|_| r.clone());
        if target.starts_with(r.join("crates")) {
            return Err(Fail::Local(format!(
                "{} is inside Coffer's crates/ directory, whose every subdirectory is a workspace member: \
                 choose another -dir",
                target.display()
            )));
        }
    }
    std::fs::create_dir_all(&parent).map_err(|e| Fail::Local(format!("cannot create {}: {e}", parent.display())))?;
    let coffer_deps = match &root {
        Some(root) => {
            let root = root.canonicalize().unwrap_or_else(|_| root.clone());
            format!(
                "# Coffer's SDK and plugin protocol, from the Coffer checkout this crate was generated in.\n\
                 coffer-sdk = {{ path = {} }}\ncoffer-plugin = {{ path = {} }}",
                toml_string(&path_from(&target, &root, "crates/sdk")),
                toml_string(&path_from(&target, &root, "crates/plugin")),
            )
        }
        None => {
            let v = sdk_requirement();
            format!(
                "# Coffer's SDK and plugin protocol, by version from crates.io. To build against a Coffer\n\
                 # checkout instead: coffer-sdk = {{ path = \"<coffer>/crates/sdk\" }}, and the same for\n\
                 # coffer-plugin with crates/plugin.\n\
                 coffer-sdk = \"{v}\"\ncoffer-plugin = \"{v}\""
            )
        }
    };
    let coffer_dev_deps = match &root {
        Some(root) => {
            let root = root.canonicalize().unwrap_or_else(|_| root.clone());
            format!(
                "coffer-plugin-testing = {{ path = {} }}",
                toml_string(&path_from(&target, &root, "crates/plugin-testing"))
            )
        }
        None => {
            let v = sdk_requirement();
            format!("coffer-plugin-testing = \"{v}\"")
        }
    };
    let (kind_files, kind_word, serve_kind, description, extra_deps) = match kind {
        Kind::Secrets => (SECRETS_FILES, "secrets engine", "Secret", "A secrets engine plugin for Coffer/OpenBao", ""),
        Kind::Auth => {
            (AUTH_FILES, "auth method", "Auth", "An auth method plugin for Coffer/OpenBao", "sha2 = \"0.10\"\n")
        }
        Kind::Database => (
            DATABASE_FILES,
            "database",
            "",
            "A database plugin for the database secrets engine of Coffer/OpenBao",
            "sha2 = \"0.10\"\n",
        ),
    };
    // A database plugin has its own binary and no backend test support.
    let common: Vec<&(&str, &str)> = COMMON_FILES
        .iter()
        .filter(|(rel, _)| kind != Kind::Database || !matches!(*rel, "src/main.rs" | "tests/support/mod.rs"))
        .collect();
    let fill = |t: &str| {
        t.replace("__COFFER_DEPS__", &coffer_deps)
            .replace("__COFFER_DEV_DEPS__", &coffer_dev_deps)
            .replace("__EXTRA_DEPS__", extra_deps)
            .replace("__DESCRIPTION__", description)
            .replace("__STRUCT__", &struct_name(name, kind))
            .replace("__CRATE__", &name.replace('-', "_"))
            .replace("__KIND__", serve_kind)
            .replace("__NAME__", name)
    };
    let write_all = || -> std::io::Result<()> {
        for (rel, text) in common.iter().copied().chain(kind_files) {
            let path = target.join(rel);
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(&path, fill(text))?;
        }
        // Pin the dependency versions Coffer itself is built and tested with.
        if let Some(root) = &root {
            if root.join("Cargo.lock").is_file() {
                std::fs::copy(root.join("Cargo.lock"), target.join("Cargo.lock"))?;
            }
        }
        Ok(())
    };
    if let Err(e) = write_all() {
        if !existed {
            let _ = std::fs::remove_dir_all(&target);
        }
        return Err(Fail::Local(format!("cannot write the plugin crate in {}: {e}", target.display())));
    }
    println!("Success! Created the {kind_word} plugin {name} in {}", target.display());
    if kind == Kind::Database {
        println!("Register it as type database; the database secrets engine runs it for connections naming it.");
    }
    match &root {
        Some(r) => println!("coffer-sdk and coffer-plugin come from {source} at {}", r.display()),
        None => println!(
            "coffer-sdk and coffer-plugin come from crates.io, version {} (see Cargo.toml): {source}",
            sdk_requirement()
        ),
    }
    println!("\nNext steps:\n    cd {}\n    cargo test", target.display());
    println!("    COFFER_ACC=1 COFFER_BIN=$(command -v coffer) cargo test --test acceptance");
    Ok(0)
}

// ----- plugin install -----

/// A file name, catalog name and URL segment: no separators, no leading dot.
fn check_install_name(name: &str) -> Result<(), Fail> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !ok {
        return Err(Fail::Usage(format!(
            "invalid plugin name {name:?}: use letters, digits, '-', '_' and '.', starting with a letter or digit \
             (give one with -name)"
        )));
    }
    Ok(())
}

/// `v1.2.3`, `1.2.3-rc.1+build.5`: semantic versions, with or without the `v`.
fn check_version(v: &str) -> Result<(), Fail> {
    let bad = || Fail::Usage(format!("invalid -version {v:?}: expected a semantic version such as v1.2.3"));
    let core = v.strip_prefix('v').unwrap_or(v);
    let (core, build) = core.split_once('+').map_or((core, None), |(a, b)| (a, Some(b)));
    let (core, pre) = core.split_once('-').map_or((core, None), |(a, b)| (a, Some(b)));
    let nums: Vec<&str> = core.split('.').collect();
    if nums.len() != 3 || nums.iter().any(|n| n.is_empty() || !n.chars().all(|c| c.is_ascii_digit())) {
        return Err(bad());
    }
    for extra in [pre, build].into_iter().flatten() {
        if extra.is_empty()
            || extra.split('.').any(|s| s.is_empty() || !s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        {
            return Err(bad());
        }
    }
    Ok(())
}

/// The last path segment of a URL, without query or fragment.
fn url_name(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let path = rest.split(['?', '#']).next().unwrap_or("");
    let (_, path) = path.split_once('/')?;
    path.rsplit('/').find(|s| !s.is_empty()).map(str::to_string)
}

fn env_any(names: &[&str]) -> Option<String> {
    names.iter().find_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty()))
}

/// The agent `install` downloads with: HTTPS only, trusting `-ca-cert` / `BAO_CACERT` /
/// `VAULT_CACERT` when given (else the bundled web roots), as the API client does.
fn download_agent(ca_cert: Option<&str>, skip_verify: bool) -> Result<ureq::Agent, Fail> {
    let skip = skip_verify
        || env_any(&["BAO_SKIP_VERIFY", "VAULT_SKIP_VERIFY"]).is_some_and(|v| matches!(v.as_str(), "1" | "true" | "t"));
    let ca = ca_cert.map(str::to_string).or_else(|| env_any(&["BAO_CACERT", "VAULT_CACERT"]));
    fetch::agent(false, ca.as_deref(), skip).map_err(|e| Fail::Local(e.to_string()))
}

pub(crate) fn install(p: &Parsed, c: &Client) -> R {
    let p = interleaved(p)?;
    if wants_help(&p) {
        println!("{INSTALL_USAGE}");
        return Ok(0);
    }
    let [url] = p.positional.as_slice() else {
        return Err(Fail::Usage(INSTALL_USAGE.into()));
    };
    if !url.get(..8).is_some_and(|s| s.eq_ignore_ascii_case("https://")) {
        return Err(Fail::Usage(format!("plugin install downloads over HTTPS only; {url:?} is not an https:// URL")));
    }
    let expected = p.get("sha256").unwrap_or("").trim().to_ascii_lowercase();
    if expected.len() != 64 || !expected.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(Fail::Usage(
            "-sha256 is required: the binary's published SHA-256, as 64 hexadecimal characters".into(),
        ));
    }
    let ty = match p.get("type").map(str::to_ascii_lowercase).as_deref() {
        None | Some("secret" | "secrets") => "secret",
        Some("auth") => "auth",
        Some("database") => "database",
        Some(other) => return Err(Fail::Usage(format!("invalid -type {other:?}: expected secret, auth or database"))),
    };
    let name = match p.get("name") {
        Some(n) => n.to_string(),
        None => {
            url_name(url).ok_or_else(|| Fail::Usage(format!("cannot take a plugin name from {url:?}: give -name")))?
        }
    };
    check_install_name(&name)?;
    let version = p.get("version").unwrap_or("").to_string();
    if !version.is_empty() {
        check_version(&version)?;
    }
    let dir = p.get("plugin-dir").map(str::to_string).or_else(|| env_any(&["COFFER_PLUGIN_DIR"])).ok_or_else(|| {
        Fail::Usage("give the server's plugin directory with -plugin-dir (or COFFER_PLUGIN_DIR)".into())
    })?;
    let dir = PathBuf::from(dir);
    if !dir.is_dir() {
        return Err(Fail::Local(format!("the plugin directory {} does not exist", dir.display())));
    }
    let file_name = if version.is_empty() { name.clone() } else { format!("{name}-{version}") };
    let dest = dir.join(&file_name);

    let agent = download_agent(p.get("ca-cert"), p.has("tls-skip-verify"))?;
    // A trusted key makes a signature required; a signature without a key cannot be checked.
    let trust = match (p.get("public-key"), p.get("signature")) {
        (None, None) => None,
        (None, Some(_)) => {
            return Err(Fail::Usage(
                "-signature needs -public-key: the trusted minisign public key it must verify with".into(),
            ))
        }
        (Some(key), sig) => {
            let public_key = fetch::parse_public_key(key).map_err(|e| Fail::Usage(format!("-public-key: {e}")))?;
            let source = sig.map_or_else(|| format!("{url}.minisig"), str::to_string);
            if source.to_ascii_lowercase().starts_with("http://") {
                return Err(Fail::Usage(format!("-signature {source:?}: signatures are fetched over HTTPS only")));
            }
            let signature = fetch::load_signature(&agent, &source).map_err(|e| {
                Fail::Local(format!("{e}\nA public key was given, so a signature is required: nothing was installed."))
            })?;
            Some(fetch::Trust { public_key, signature, signature_source: source })
        }
    };

    // Already there with the right digest (and signature): nothing to download.
    let present =
        match fetch::check_present(&dest, &expected, trust.as_ref()).map_err(|e| Fail::Local(e.to_string()))? {
            fetch::Present::Matches => {
                println!("{} already holds this binary (SHA-256 {expected})", dest.display());
                true
            }
            fetch::Present::Differs(have) if !p.has("force") => {
                return Err(Fail::Local(format!(
                    "{} already exists with SHA-256 {have}, not {expected}: use -force to replace it",
                    dest.display()
                )));
            }
            fetch::Present::Differs(_) | fetch::Present::Absent => false,
        };
    let mut fresh = false;
    if !present {
        let d = fetch::Download {
            url,
            dir: &dir,
            file_name: &file_name,
            sha256: &expected,
            max_size: MAX_DOWNLOAD,
            trust: trust.as_ref(),
        };
        let size = fetch::download(&agent, &d).map_err(|e| Fail::Local(e.to_string()))?;
        fresh = true;
        println!("Success! Downloaded {size} bytes to {} (SHA-256 {expected})", dest.display());
    }
    if let Some(t) = &trust {
        println!("Signature verified with the trusted public key (trusted comment: {})", t.trusted_comment());
    }

    let mut body = json!({ "sha256": expected, "command": file_name, "version": version });
    let list = |flag: &str| -> Vec<String> { p.all(flag) };
    if !list("args").is_empty() {
        body["args"] = json!(list("args"));
    }
    if !list("env").is_empty() {
        body["env"] = json!(list("env"));
    }
    if let Err(e) = c.request("PUT", &format!("sys/plugins/catalog/{ty}/{name}"), Some(&body)) {
        if fresh {
            let _ = std::fs::remove_file(&dest);
            eprintln!("Removed {} again: it could not be registered.", dest.display());
        }
        return Err(api_in(format!("Error registering plugin {name}"))(e));
    }
    println!("Success! Registered plugin: {name}");
    // Without -plugin-version, a mount takes the unversioned entry, else the highest version.
    let enable = if ty == "auth" { "auth enable" } else { "secrets enable" };
    println!("Enable it with: coffer {enable} -path={name} {name}");
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn flags_may_follow_positionals() {
        let p = args::parse(&s(&["https://x/y", "-sha256=ab", "--type", "auth", "-force"])).unwrap();
        let Ok(p) = interleaved(&p) else { panic!("interleaved parse failed") };
        assert_eq!(p.positional, vec!["https://x/y"]);
        assert_eq!(p.get("sha256"), Some("ab"));
        assert_eq!(p.get("type"), Some("auth"));
        assert!(p.has("force"));
    }

    #[test]
    fn names_versions_and_urls() {
        let builtins = ["kv", "userpass"];
        assert!(check_new_name("my-plugin", &builtins).is_ok());
        for bad in ["My", "1x", "a/b", "kv", "userpass", "sys", "plugin", "test", "x-", ""] {
            assert!(check_new_name(bad, &builtins).is_err(), "{bad}");
        }
        assert_eq!(struct_name("my-cool_plugin", Kind::Secrets), "MyCoolPluginBackend");
        assert_eq!(struct_name("acme-db", Kind::Database), "AcmeDbDatabase");
        for good in ["v1.2.3", "1.0.0", "v1.2.3-rc.1", "v1.2.3+build.7", "v0.1.0-alpha+x"] {
            assert!(check_version(good).is_ok(), "{good}");
        }
        for bad in ["v1.2", "latest", "v1.2.3-", "v1..3", "1.2.3/../x"] {
            assert!(check_version(bad).is_err(), "{bad}");
        }
        assert_eq!(url_name("https://h:1/a/b/my-plugin?x=1#f").as_deref(), Some("my-plugin"));
        assert_eq!(url_name("https://h/a/b/").as_deref(), Some("b"));
        assert_eq!(url_name("https://h"), None);
        assert!(check_install_name("my-plugin_v1.2").is_ok());
        assert!(check_install_name(".hidden").is_err());
        assert!(check_install_name("a/b").is_err());
    }

    #[test]
    fn dependency_paths_are_relative_inside_the_checkout() {
        let root = Path::new("/src/coffer");
        assert_eq!(path_from(Path::new("/src/coffer/tmp/p"), root, "crates/sdk"), "../../crates/sdk");
        assert_eq!(path_from(Path::new("/elsewhere/p"), root, "crates/sdk"), "/src/coffer/crates/sdk");
        assert_eq!(toml_string("/a/b"), "'/a/b'");
    }
}
