//! Architecture invariants, read from `cargo metadata` and the crates' sources.
//!
//! Each rule is stated as an absence: something no crate may do. `docs/ARCHITECTURE.md`
//! explains why each rule exists. Dev-dependencies are left out: tests may wire anything.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("..")
}

/// Workspace package name → names of its normal and build dependencies.
fn dependencies() -> &'static BTreeMap<String, BTreeSet<String>> {
    static DEPS: OnceLock<BTreeMap<String, BTreeSet<String>>> = OnceLock::new();
    DEPS.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
        let out = Command::new(&cargo)
            .args(["metadata", "--format-version", "1", "--no-deps"])
            .current_dir(workspace_root())
            .output()
            .unwrap_or_else(|e| panic!("cannot run `{cargo} metadata`: {e}"));
        assert!(out.status.success(), "`cargo metadata` failed:\n{}", String::from_utf8_lossy(&out.stderr));
        let meta: Value = serde_json::from_slice(&out.stdout).expect("`cargo metadata` printed invalid JSON");
        let packages = meta["packages"].as_array().expect("`cargo metadata` output has no \"packages\" array");
        let mut map = BTreeMap::new();
        for p in packages {
            let name = p["name"].as_str().expect("a package without a name").to_string();
            let deps: BTreeSet<String> = p["dependencies"]
                .as_array()
                .map(|deps| {
                    deps.iter()
                        // "kind" is null for normal dependencies, "build" or "dev" otherwise.
                        .filter(|d| d["kind"].as_str() != Some("dev"))
                        .filter_map(|d| d["name"].as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            map.insert(name, deps);
        }
        map
    })
}

fn deps_of(package: &str) -> &'static BTreeSet<String> {
    dependencies().get(package).unwrap_or_else(|| panic!("package {package} is not in the workspace"))
}

fn coffer_deps_of(package: &str) -> BTreeSet<String> {
    deps_of(package).iter().filter(|d| d.starts_with("coffer-") || d.as_str() == "coffer").cloned().collect()
}

/// The core takes logical requests and returns logical responses: it knows nothing of HTTP,
/// so it can be driven in-process (tests, a future gRPC front end) and `coffer-http` stays the
/// only place that knows status codes.
#[test]
fn core_has_no_http_dependency() {
    const HTTP: &[&str] = &["axum", "http", "hyper", "hyper-util", "tower", "coffer-http"];
    let found: Vec<&str> = HTTP.iter().copied().filter(|h| deps_of("coffer-core").contains(*h)).collect();
    assert!(
        found.is_empty(),
        "coffer-core must not depend on HTTP crates, but depends on {found:?}; \
         map errors to an ErrorKind and let coffer-http pick the status"
    );
}

/// The core knows builtin engines and auth methods only through the `BackendRegistry` the
/// binary injects: it depends on no builtin crate, so a builtin can be added, removed or moved
/// out of process without touching the core.
#[test]
fn core_depends_on_no_builtin_backend() {
    let found: Vec<&String> = deps_of("coffer-core").iter().filter(|d| d.starts_with("coffer-builtin")).collect();
    assert!(
        found.is_empty(),
        "coffer-core must not depend on builtin backends, but depends on {found:?}; \
         register them in coffer-builtins and let the binary inject the registry"
    );
}

/// `coffer-builtins` is the one list of builtin backends: no other crate depends on a
/// `coffer-builtin-*` crate, so mounting, the catalog and the CLI cannot drift apart. (The one
/// exception is the example that serves the cert method as an external plugin binary: it is
/// outside the server, so it cannot make the server's lists drift.)
#[test]
fn only_the_registry_crate_depends_on_builtin_backends() {
    let mut violations = Vec::new();
    for (name, deps) in dependencies() {
        for d in deps {
            let allowed =
                name == "coffer-builtins" || (name == "coffer-plugin-cert-example" && d == "coffer-builtin-cert");
            if d.starts_with("coffer-builtin-") && !allowed {
                violations.push(format!("{name} -> {d}"));
            }
        }
    }
    assert!(violations.is_empty(), "only coffer-builtins may depend on coffer-builtin-* crates; found: {violations:?}");
    assert!(
        deps_of("coffer-builtins").iter().any(|d| d.starts_with("coffer-builtin-")),
        "coffer-builtins depends on no builtin crate: has the layering changed? update this test"
    );
}

/// Builtin backends see only the SDK (and the wire types it re-uses), never the core, the
/// barrier or storage: so any builtin could be moved out of process as a plugin unchanged.
#[test]
fn builtins_see_only_the_sdk() {
    const ALLOWED: &[&str] = &["coffer-sdk", "coffer-api"];
    let builtins: Vec<&String> = dependencies().keys().filter(|p| p.starts_with("coffer-builtin-")).collect();
    assert!(!builtins.is_empty(), "no coffer-builtin-* crate found: has the naming changed? update this test");
    let mut violations = Vec::new();
    for b in builtins {
        for d in coffer_deps_of(b) {
            if !ALLOWED.contains(&d.as_str()) {
                violations.push(format!("{b} -> {d}"));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "builtin crates may depend only on {ALLOWED:?} among Coffer's crates; found: {violations:?}"
    );
}

/// Only the storage backends, the barrier and the `coffer` binary (which opens the storage and
/// hands it to the barrier) know the physical storage contract. Everything else reaches
/// storage through the barrier, so nothing else can hold plaintext next to the physical store.
#[test]
fn only_the_storage_chain_touches_physical_storage() {
    const WIRING: &[&str] = &["coffer-barrier", "coffer"];
    let users: BTreeSet<&str> = dependencies()
        .iter()
        .filter(|(_, deps)| deps.contains("coffer-physical"))
        .map(|(name, _)| name.as_str())
        .collect();
    let unexpected: Vec<&str> =
        users.iter().copied().filter(|u| !u.starts_with("coffer-storage-") && !WIRING.contains(u)).collect();
    assert!(
        unexpected.is_empty(),
        "only coffer-storage-*, {WIRING:?} may depend on coffer-physical; also found: {unexpected:?}"
    );
    for required in ["coffer-barrier", "coffer-storage-inmem", "coffer-storage-file"] {
        assert!(
            users.contains(&required),
            "{required} no longer depends on coffer-physical: has the layering changed? update this test"
        );
    }
}

/// The in-process test harness is a dev-dependency only: no crate depends on `coffer-testing`
/// for its normal build, so nothing a server runs can reach a test's shortcuts.
#[test]
fn the_test_harness_is_only_a_dev_dependency() {
    assert!(
        dependencies().contains_key("coffer-testing"),
        "coffer-testing is not in the workspace: has it been renamed? update this test"
    );
    let users: Vec<&str> = dependencies()
        .iter()
        .filter(|(_, deps)| deps.contains("coffer-testing"))
        .map(|(name, _)| name.as_str())
        .collect();
    assert!(users.is_empty(), "coffer-testing may only be a dev-dependency; normal dependency of: {users:?}");
}

/// Every crate forbids `unsafe` in its own source, as the very first attribute of its root
/// (on top of the workspace lint). Should a crate ever need FFI of its own, it must be listed
/// here by directory name; `coffer-seal-pkcs11` needs none (the `cryptoki` crate wraps the FFI).
#[test]
fn every_crate_forbids_unsafe_code() {
    const UNSAFE_ALLOWED: &[&str] = &[];
    let crates_dir = workspace_root().join("crates");
    // Workspace members live in crates/ and examples/.
    let mut dirs: Vec<PathBuf> = ["crates", "examples"]
        .iter()
        .flat_map(|d| {
            let d = workspace_root().join(d);
            std::fs::read_dir(&d).unwrap_or_else(|e| panic!("cannot read {}: {e}", d.display()))
        })
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("Cargo.toml").is_file())
        .collect();
    dirs.sort();
    assert!(!dirs.is_empty(), "no crates found under {}", crates_dir.display());
    let mut violations = Vec::new();
    for dir in dirs {
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if UNSAFE_ALLOWED.contains(&name.as_str()) {
            continue;
        }
        let roots: Vec<PathBuf> =
            ["src/lib.rs", "src/main.rs"].iter().map(|r| dir.join(r)).filter(|p| p.is_file()).collect();
        if roots.is_empty() {
            violations.push(format!("crates/{name}: no src/lib.rs or src/main.rs"));
        }
        for root in roots {
            let src = std::fs::read_to_string(&root).unwrap_or_else(|e| panic!("cannot read {}: {e}", root.display()));
            // The first line that is neither blank nor a comment (doc comments included).
            let first = src.lines().map(str::trim).find(|l| !l.is_empty() && !l.starts_with("//"));
            if first != Some("#![forbid(unsafe_code)]") {
                violations.push(format!("{}: first attribute is {first:?}", root.display()));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "every crate root must start its attributes with #![forbid(unsafe_code)]:\n{}",
        violations.join("\n")
    );
}

/// The SDK is what a backend (builtin or plugin) compiles against: it must not pull in the
/// core, the barrier, storage or HTTP, only the shared wire types.
#[test]
fn sdk_depends_on_no_coffer_crate_but_api() {
    let others: Vec<String> = coffer_deps_of("coffer-sdk").into_iter().filter(|d| d != "coffer-api").collect();
    assert!(others.is_empty(), "coffer-sdk may depend only on coffer-api among Coffer's crates; found: {others:?}");
}

/// Seal implementations that load a PKCS#11 library or speak HTTP (`coffer-seal-pkcs11`,
/// `coffer-seal-transit`) are injected by the `coffer` binary: the core sees only the `Seal`
/// contract of `coffer-seal`, so it loads no native library and does no HTTP.
#[test]
fn only_the_binary_wires_seal_implementations() {
    const IMPLS: &[&str] = &["coffer-seal-pkcs11", "coffer-seal-transit"];
    let mut violations = Vec::new();
    for (name, deps) in dependencies() {
        for i in IMPLS {
            if deps.contains(*i) && name != "coffer" {
                violations.push(format!("{name} -> {i}"));
            }
        }
    }
    assert!(violations.is_empty(), "only the coffer binary may depend on {IMPLS:?}; found: {violations:?}");
    for forbidden in ["cryptoki", "ureq", "reqwest"] {
        assert!(!deps_of("coffer-core").contains(forbidden), "coffer-core must not depend on {forbidden}");
        assert!(!deps_of("coffer-seal").contains(forbidden), "coffer-seal must not depend on {forbidden}");
    }
}

/// Library code keeps the causes of its errors: errors are typed (`thiserror` enums, or the
/// SDK's `LogicalError` with [`with_source`]) instead of `Result<_, String>`, and no
/// `map_err(|_| …)` throws a cause away. Where dropping a cause is deliberate (secret safety:
/// a decryption failure that must not become an oracle, a parse error that would echo a secret
/// value), the drop stays, with a `drop-cause: <reason>` comment on the same or the line above.
/// Files not yet converted are listed below with the reason; the list only shrinks.
#[test]
fn library_errors_keep_their_causes() {
    // (path prefix under crates/, reason). Paths ending in '/' cover a whole directory.
    const NOT_YET: &[(&str, &str)] = &[];
    // (file, text of the line, reason): single lines that must keep a String error for now.
    const NOT_YET_LINES: &[(&str, &str, &str)] = &[];
    let crates_dir = workspace_root().join("crates");
    let mut files = Vec::new();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&crates_dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", crates_dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path().join("src")))
        .filter(|p| p.is_dir())
        .collect();
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display())) {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|x| x == "rs") {
                files.push(path);
            }
        }
    }
    assert!(files.len() > 50, "found only {} source files under {}", files.len(), crates_dir.display());
    let mut violations = Vec::new();
    for file in files {
        let rel = file.strip_prefix(&crates_dir).expect("a file under crates/").to_string_lossy().replace('\\', "/");
        if NOT_YET.iter().any(|(p, _)| if p.ends_with('/') { rel.starts_with(p) } else { rel == *p }) {
            continue;
        }
        let src = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
        let lines: Vec<&str> = src.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if code.contains("map_err(|_|") {
                let justified = line.contains("drop-cause:") || (i > 0 && lines[i - 1].contains("drop-cause:"));
                if !justified {
                    violations.push(format!("crates/{rel}:{}: map_err(|_| …) drops the cause: {}", i + 1, line.trim()));
                }
            }
            let allowed_line = NOT_YET_LINES.iter().any(|(p, text, _)| rel == *p && line.contains(text));
            if result_with_string_error(code) && !allowed_line {
                violations.push(format!("crates/{rel}:{}: Result<_, String>: {}", i + 1, line.trim()));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "library errors must be typed and keep their cause (or say why with `drop-cause:`):\n{}",
        violations.join("\n")
    );
}

/// Whether `code` names a `Result<…, String>` (generic arguments balanced, the last one `String`).
fn result_with_string_error(code: &str) -> bool {
    let bytes = code.as_bytes();
    let mut from = 0;
    while let Some(at) = code[from..].find("Result<") {
        let start = from + at;
        from = start + "Result<".len();
        if start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_') {
            continue;
        }
        let (mut depth, mut last_arg) = (1usize, from);
        for (j, c) in code[from..].char_indices() {
            match c {
                '<' | '(' | '[' => depth += 1,
                '>' | ')' | ']' => {
                    depth -= 1;
                    if depth == 0 {
                        let last = code[last_arg..from + j].trim();
                        if last_arg != from && (last == "String" || last == "std::string::String") {
                            return true;
                        }
                        break;
                    }
                }
                ',' if depth == 1 => last_arg = from + j + 1,
                _ => {}
            }
        }
    }
    false
}

#[test]
fn the_result_string_scanner_finds_what_it_should() {
    assert!(result_with_string_error("fn f() -> Result<Vec<u8>, String> {"));
    assert!(result_with_string_error("x: std::result::Result<(i64, &'a str), String>,"));
    assert!(!result_with_string_error("fn f() -> Result<BTreeMap<String, String>> {"));
    assert!(!result_with_string_error("fn f() -> Result<String, Error> {"));
    assert!(!result_with_string_error("fn f() -> io::Result<String> {"));
    assert!(!result_with_string_error("fn f() -> MyResult<u8, String> {"));
}

/// The ACL engine is pure computation: a policy text in, a decision out. Neither it nor any of
/// Coffer's crates it builds on may reach an async runtime, the barrier or storage, so it can be
/// tested, fuzzed and reused (a policy linter, the CLI) without a server.
#[test]
fn acl_engine_does_no_io() {
    const FORBIDDEN: &[&str] = &["tokio", "coffer-core", "coffer-barrier", "coffer-physical", "coffer-http"];
    const ALLOWED_COFFER: &[&str] = &["coffer-sdk", "coffer-api"];
    let direct = coffer_deps_of("coffer-acl");
    let unexpected: Vec<&String> = direct.iter().filter(|d| !ALLOWED_COFFER.contains(&d.as_str())).collect();
    assert!(
        unexpected.is_empty(),
        "coffer-acl may depend only on {ALLOWED_COFFER:?} among Coffer's crates; found: {unexpected:?}"
    );
    // The crate itself and the Coffer crates below it.
    let mut seen = BTreeSet::from(["coffer-acl".to_string()]);
    let mut queue: Vec<String> = vec!["coffer-acl".into()];
    while let Some(p) = queue.pop() {
        for d in coffer_deps_of(&p) {
            if seen.insert(d.clone()) {
                queue.push(d);
            }
        }
    }
    let mut violations = Vec::new();
    for p in &seen {
        for d in deps_of(p) {
            if FORBIDDEN.contains(&d.as_str()) || d.starts_with("coffer-storage-") {
                violations.push(format!("{p} -> {d}"));
            }
        }
    }
    assert!(violations.is_empty(), "the ACL engine must do no I/O, but: {violations:?}");
}

/// Why `line` dispatches on a row's position in a path table instead of on a typed route, if
/// it does: a `P_…` row-index constant of type `usize`, the index of a matched row, or an untyped
/// `PathTable`.
fn positional_dispatch(line: &str) -> Option<&'static str> {
    let code = line.split("//").next().unwrap_or("");
    if let Some(i) = code.find("const P_") {
        let rest = &code[i + "const P_".len()..];
        let end = rest.find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'));
        if end.is_some_and(|e| rest[e..].trim_start().starts_with(": usize")) {
            return Some("a `const P_…: usize` row index");
        }
    }
    if code.contains("matched.index") || code.contains("m.index") || code.contains(".route_index(") {
        return Some("the position of the matched row");
    }
    if code.contains("PathTable") {
        return Some("an untyped PathTable (use framework::Paths<Route>)");
    }
    None
}

fn source_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.filter_map(Result::ok) {
        let p = e.path();
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n != "target") {
                source_files(&p, out);
            }
        } else if p.extension().is_some_and(|x| x == "rs" || x == "tmpl") {
            out.push(p);
        }
    }
}

/// Builtin backends, the plugin scaffold and the example plugin dispatch on typed routes
/// (`framework::Paths<Route>` + `framework::Handler`), never on a row's position in the path
/// table: an index breaks silently when rows are reordered or one is added in the middle.
#[test]
fn backends_dispatch_on_typed_routes_not_row_positions() {
    // The detector itself: a test that cannot fail proves nothing.
    assert!(positional_dispatch(concat!("const P_", "CONFIG: usize = 0;")).is_some());
    assert!(positional_dispatch("        match (matched.index, req.operation) {").is_some());
    assert!(positional_dispatch("    table: PathTable,").is_some());
    assert!(positional_dispatch("    paths: Paths<Route>,").is_none());
    assert!(positional_dispatch("const ARGON2_P_COST: u32 = 1;").is_none());

    let root = workspace_root();
    let mut files = Vec::new();
    for entry in std::fs::read_dir(root.join("crates")).expect("crates/ is readable").filter_map(Result::ok) {
        if entry.file_name().to_string_lossy().starts_with("builtin-") {
            source_files(&entry.path(), &mut files);
        }
    }
    source_files(&root.join("crates/cli/templates"), &mut files);
    source_files(&root.join("examples"), &mut files);
    let templates = files.iter().filter(|f| f.extension().is_some_and(|x| x == "tmpl")).count();
    assert!(
        files.len() > 20 && templates >= 4,
        "found only {} files ({templates} templates): has the layout changed?",
        files.len()
    );
    let mut violations = Vec::new();
    for f in &files {
        let src = std::fs::read_to_string(f).unwrap_or_else(|e| panic!("cannot read {}: {e}", f.display()));
        for (n, line) in src.lines().enumerate() {
            if let Some(why) = positional_dispatch(line) {
                let rel = f.strip_prefix(&root).unwrap_or(f);
                violations.push(format!("{}:{}: {why}: {}", rel.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "dispatch on a Route enum (rows are (Route, PathSpec) in framework::Paths, the backend a \
         framework::Handler), not on row positions:\n{}",
        violations.join("\n")
    );
}

/// The Coffer crates `package` builds on, directly or not (itself included).
fn coffer_closure(package: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::from([package.to_string()]);
    let mut queue: Vec<String> = vec![package.into()];
    while let Some(p) = queue.pop() {
        for d in coffer_deps_of(&p) {
            if seen.insert(d.clone()) {
                queue.push(d);
            }
        }
    }
    seen
}

/// The core is the request pipeline over subsystem crates that each keep one kind of state
/// (the token store, the identity store, the audit broker, the lease store of the expiration
/// manager) or compute one thing (password policies, the operator ceremonies' state machines). They sit below the core: none of them, nor anything they build on, reaches the
/// core, HTTP or a builtin backend, and their storage is the barrier's `SecureStorage` (they
/// depend on no storage crate themselves), so each can be tested and reasoned about alone.
#[test]
fn subsystem_crates_sit_below_the_core() {
    const SUBSYSTEMS: &[&str] = &[
        "coffer-audit",
        "coffer-token",
        "coffer-identity",
        "coffer-password-policy",
        "coffer-expiration",
        "coffer-ceremony",
        "coffer-quota",
        "coffer-system",
    ];
    const FORBIDDEN: &[&str] =
        &["coffer-core", "coffer-http", "coffer", "axum", "http", "hyper", "hyper-util", "tower"];
    let mut violations = Vec::new();
    for s in SUBSYSTEMS {
        assert!(
            coffer_closure("coffer-core").contains(*s),
            "coffer-core no longer builds on {s}: has the layering changed? update this test"
        );
        for p in coffer_closure(s) {
            for d in deps_of(&p) {
                if FORBIDDEN.contains(&d.as_str()) || d.starts_with("coffer-builtin") {
                    violations.push(format!("{s}: {p} -> {d}"));
                }
            }
        }
        for d in deps_of(s) {
            if d == "coffer-physical" || d.starts_with("coffer-storage-") {
                violations.push(format!("{s} -> {d}"));
            }
        }
    }
    assert!(violations.is_empty(), "subsystem crates must not reach the core, HTTP or storage: {violations:?}");
    // Password policies are pure computation, like the ACL engine.
    let io: Vec<String> = coffer_closure("coffer-password-policy")
        .iter()
        .flat_map(|p| deps_of(p).iter().filter(|d| ["tokio", "coffer-barrier"].contains(&d.as_str())).cloned())
        .collect();
    assert!(io.is_empty(), "coffer-password-policy must do no I/O, but depends on {io:?}");
    // Quotas are matching and counting over definitions the core loads: no I/O, no clock of
    // their own, no other Coffer crate.
    let io: Vec<String> = coffer_closure("coffer-quota").into_iter().filter(|p| p != "coffer-quota").collect();
    assert!(io.is_empty(), "coffer-quota must depend on no other Coffer crate, but reaches {io:?}");
    assert!(
        !deps_of("coffer-quota").iter().any(|d| ["tokio", "coffer-barrier"].contains(&d.as_str())),
        "coffer-quota must do no I/O"
    );
    // The ceremonies (generate-root, rekey and its verification) are state machines: the core
    // does their I/O (checking a key against the barrier, minting the root token, storing a
    // backup, installing the new key), so they know no barrier, no runtime, no other subsystem.
    let io: Vec<String> = coffer_closure("coffer-ceremony")
        .iter()
        .flat_map(|p| {
            deps_of(p)
                .iter()
                .filter(|d| {
                    ["tokio", "coffer-barrier", "coffer-sdk"].contains(&d.as_str()) || SUBSYSTEMS.contains(&d.as_str())
                })
                .cloned()
        })
        .collect();
    assert!(io.is_empty(), "coffer-ceremony must do no I/O and know no other subsystem, but depends on {io:?}");
    // The rows of the core's own trees are declarations over the SDK's path framework: the
    // handlers depend on them, never the other way.
    let rows: Vec<String> = deps_of("coffer-system-paths")
        .iter()
        .filter(|d| d.starts_with("coffer-") && d.as_str() != "coffer-sdk")
        .cloned()
        .collect();
    assert!(rows.is_empty(), "coffer-system-paths must depend on no Coffer crate but the SDK: {rows:?}");
    assert!(
        deps_of("coffer-core").contains("coffer-system-paths"),
        "coffer-core no longer depends on coffer-system-paths: has the layering changed? update this test"
    );
    // The lease store knows no other subsystem: what revoking a lease means (telling the
    // backend, revoking a token) is the core's, so leases and tokens do not know each other.
    let crossing: Vec<String> = coffer_closure("coffer-expiration")
        .into_iter()
        .filter(|p| SUBSYSTEMS.contains(&p.as_str()) && p != "coffer-expiration")
        .collect();
    assert!(crossing.is_empty(), "coffer-expiration must not depend on another subsystem: {crossing:?}");
}

/// The system backend (`coffer-system`: the `sys/` handlers, the mount tables, the policy
/// store) sits below the core: it reaches the core only through the `SystemCore` trait the core
/// implements, so neither it nor anything it builds on depends on the core, HTTP or a builtin
/// backend. It stores through the barrier (no storage crate of its own), and it knows the
/// other subsystems the core owns — tokens, identity, leases, the ceremonies, seals — only
/// through that trait, so their state stays the core's to wire (decision 0026).
#[test]
fn system_backend_reaches_the_core_only_through_its_trait() {
    const FORBIDDEN: &[&str] =
        &["coffer-core", "coffer-http", "coffer", "axum", "http", "hyper", "hyper-util", "tower", "coffer-testing"];
    const THROUGH_THE_TRAIT: &[&str] =
        &["coffer-token", "coffer-identity", "coffer-expiration", "coffer-ceremony", "coffer-seal", "coffer-plugin"];
    assert!(
        deps_of("coffer-core").contains("coffer-system"),
        "coffer-core no longer depends on coffer-system: has the layering changed? update this test"
    );
    let mut violations = Vec::new();
    for p in coffer_closure("coffer-system") {
        for d in deps_of(&p) {
            if FORBIDDEN.contains(&d.as_str()) || d.starts_with("coffer-builtin") {
                violations.push(format!("{p} -> {d}"));
            }
        }
        if THROUGH_THE_TRAIT.contains(&p.as_str()) {
            violations.push(format!("coffer-system builds on {p}: reach it through SystemCore instead"));
        }
    }
    for d in deps_of("coffer-system") {
        if d == "coffer-physical" || d.starts_with("coffer-storage-") {
            violations.push(format!("coffer-system -> {d}"));
        }
    }
    assert!(
        violations.is_empty(),
        "coffer-system must not reach the core, HTTP, builtins, storage or the core's other subsystems: {violations:?}"
    );
    // The handlers' sources name no core type: what they need is a method of `SystemCore`.
    let dir = workspace_root().join("crates/system/src");
    let mut files = Vec::new();
    source_files(&dir, &mut files);
    assert!(files.len() >= 5, "found only {} files under {}: has the crate moved?", files.len(), dir.display());
    let mut named = Vec::new();
    for f in &files {
        let src = std::fs::read_to_string(f).unwrap_or_else(|e| panic!("cannot read {}: {e}", f.display()));
        for (n, line) in src.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            // (A path into the crate, not a word that merely starts with its name: the metric
            // `coffer_core_unsealed` is the system backend's to set.)
            let names_core = code.contains("coffer_core::") || code.contains("use coffer_core");
            if names_core || code.contains("Arc<Active>") || code.contains("&Core") {
                named.push(format!("{}:{}: {}", f.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(named.is_empty(), "coffer-system names the core's types:\n{}", named.join("\n"));
}
