//! `coffer plugin install` downloads a plugin binary over HTTPS (a local rustls server with a
//! certificate from an openssl-made test CA), checks its SHA-256 while it streams in, places it in the plugin
//! directory and registers it in the catalog — and with a wrong digest, a untrusted
//! certificate or a plain-HTTP URL installs nothing and leaves nothing behind.
//! `coffer plugin new` writes a complete plugin crate.
mod common;
use common::*;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

fn openssl(args: &[&str], dir: &Path) {
    let o = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl");
    assert!(o.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&o.stderr));
}

/// A test CA and a certificate for 127.0.0.1 it signed (webpki refuses a CA certificate as
/// the server's own): (ca.pem, cert.pem, key.pem).
fn test_pki(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
    let mut ca = vec!["req", "-x509", "-days", "1", "-subj", "/CN=coffer test CA", "-keyout", "ca.key", "-out"];
    ca.extend(["ca.pem"]);
    ca.extend(ec);
    openssl(&ca, dir);
    let mut csr = vec!["req", "-subj", "/CN=localhost", "-keyout", "key.pem", "-out", "leaf.csr"];
    csr.extend(ec);
    openssl(&csr, dir);
    std::fs::write(dir.join("leaf.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n")
        .unwrap();
    openssl(
        &["x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "1"]
            .into_iter()
            .chain(["-extfile", "leaf.ext", "-out", "cert.pem"])
            .collect::<Vec<_>>(),
        dir,
    );
    (dir.join("ca.pem"), dir.join("cert.pem"), dir.join("key.pem"))
}

/// Serves `files` (URL path → body) over HTTPS on 127.0.0.1; 404 for anything else.
/// Returns the port; the server lives as long as the test process.
fn https_server(cert: &Path, key: &Path, files: HashMap<String, Vec<u8>>) -> u16 {
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(cert).unwrap().collect::<Result<_, _>>().unwrap();
    let key = PrivateKeyDer::from_pem_file(key).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let files = Arc::new(files);
    std::thread::spawn(move || {
        for tcp in listener.incoming().flatten() {
            let (config, files) = (config.clone(), files.clone());
            std::thread::spawn(move || {
                let Ok(conn) = rustls::ServerConnection::new(config) else { return };
                let mut tls = rustls::StreamOwned::new(conn, tcp);
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&head);
                let path = text.split_whitespace().nth(1).unwrap_or("").to_string();
                let (status, body) = match files.get(&path) {
                    Some(b) => ("200 OK", b.clone()),
                    None => ("404 Not Found", b"not found".to_vec()),
                };
                let resp = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = tls.write_all(resp.as_bytes()).and_then(|_| tls.write_all(&body));
                tls.conn.send_close_notify();
                let _ = tls.flush();
            });
        }
    });
    port
}

/// A dev server whose plugin directory is `plugins` (its log kept outside it).
fn start_dev_with_plugins(plugins: &Path, log: &Path) -> Server {
    Server::start_dev_logging_to("root", &[&format!("-dev-plugin-dir={}", plugins.display())], log)
}

fn dir_names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().to_string()).collect();
    v.sort();
    v
}

#[test]
fn plugin_install_checks_the_digest_places_the_binary_and_registers_it() {
    let tmp = tempfile::tempdir().unwrap();
    let plugins = tmp.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let (ca_pem, cert, key) = test_pki(tmp.path());
    let binary = std::fs::read("/bin/true").unwrap();
    let right = sha256_hex(Path::new("/bin/true"));
    let files: HashMap<String, Vec<u8>> =
        [("/my-plugin".to_string(), binary.clone()), ("/releases/v1.2.3/other-plugin".to_string(), binary.clone())]
            .into();
    let port = https_server(&cert, &key, files);
    let s = start_dev_with_plugins(&plugins, &tmp.path().join("dev.log"));
    let t = [("X-Vault-Token", "root")];
    let ca = format!("-ca-cert={}", ca_pem.display());
    let dir = format!("-plugin-dir={}", plugins.display());
    let install = |args: &[&str]| -> Output {
        let mut all = vec!["plugin", "install"];
        all.extend_from_slice(args);
        cli(coffer_bin(), &s.addr, Some("root"), &all)
    };

    // The right digest: downloaded, executable, registered under the URL's last segment.
    let url = format!("https://127.0.0.1:{port}/my-plugin");
    let o = install(&[&url, &format!("-sha256={right}"), &ca, &dir]);
    assert!(o.status.success(), "{}", out(&o));
    assert!(out(&o).contains("Success! Registered plugin: my-plugin"), "{}", out(&o));
    let installed = plugins.join("my-plugin");
    assert_eq!(sha256_hex(&installed), right);
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&installed).unwrap().permissions().mode() & 0o777,
            0o700,
            "owner-only, whatever the umask"
        );
    }
    assert_eq!(dir_names(&plugins), vec!["my-plugin"], "no temporary file left");
    let (st, body) = http(&s.addr, "GET", "/v1/sys/plugins/catalog/secret/my-plugin", &t, b"");
    assert_eq!(st, 200, "{body}");
    let entry = json(&body)["data"].clone();
    assert_eq!(entry["sha256"], right.as_str());
    assert_eq!(entry["command"], "my-plugin");
    let catalog = || json(&http(&s.addr, "GET", "/v1/sys/plugins/catalog", &t, b"").1)["data"].clone();
    let catalog_before = catalog();

    // A wrong digest: refused, both digests named, nothing left, the catalog unchanged.
    let wrong = "ab".repeat(32);
    let o = install(&[&url, &format!("-sha256={wrong}"), "-name=evil-plugin", &ca, &dir]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    let msg = out(&o);
    assert!(msg.contains("SHA-256 mismatch"), "{msg}");
    assert!(msg.contains(&wrong) && msg.contains(&right), "both digests are named: {msg}");
    assert!(msg.contains("nothing was installed"), "{msg}");
    assert_eq!(dir_names(&plugins), vec!["my-plugin"], "nothing left in the plugin directory");
    let (st, _) = http(&s.addr, "GET", "/v1/sys/plugins/catalog/secret/evil-plugin", &t, b"");
    assert_eq!(st, 404);
    assert_eq!(catalog(), catalog_before, "catalog unchanged");

    // A wrong digest for a name already installed: the installed binary is left alone.
    let o = install(&[&url, &format!("-sha256={wrong}"), &ca, &dir]);
    assert_ne!(o.status.code(), Some(0), "{}", out(&o));
    assert_eq!(sha256_hex(&installed), right);

    // An untrusted certificate, a plain-HTTP URL, a missing digest: refused, nothing written.
    let o = install(&[&url, &format!("-sha256={right}"), "-name=untrusted", &dir]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    assert!(out(&o).to_lowercase().contains("certificate"), "{}", out(&o));
    let o = install(&[&format!("http://127.0.0.1:{port}/my-plugin"), &format!("-sha256={right}"), &dir]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    assert!(out(&o).contains("HTTPS"), "{}", out(&o));
    let o = install(&[&url, &ca, &dir]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    assert!(out(&o).contains("-sha256"), "{}", out(&o));
    let o = install(&[&format!("https://127.0.0.1:{port}/missing"), &format!("-sha256={right}"), &ca, &dir]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    assert!(out(&o).contains("404"), "{}", out(&o));
    assert_eq!(dir_names(&plugins), vec!["my-plugin"]);
    assert_eq!(catalog(), catalog_before, "catalog unchanged");

    // A version, a name and a type: saved as NAME-VERSION, registered as auth/NAME at VERSION.
    let url2 = format!("https://127.0.0.1:{port}/releases/v1.2.3/other-plugin");
    let o = install(&["-type=auth", &url2, &format!("-sha256={right}"), "-version=v1.2.3", "-name=login-x", &ca, &dir]);
    assert!(o.status.success(), "{}", out(&o));
    assert_eq!(sha256_hex(&plugins.join("login-x-v1.2.3")), right);
    let (st, body) = http(&s.addr, "GET", "/v1/sys/plugins/catalog/auth/login-x", &t, b"");
    assert_eq!(st, 200, "{body}");
    assert_eq!(json(&body)["data"]["version"], "v1.2.3");
    assert_eq!(json(&body)["data"]["command"], "login-x-v1.2.3");
    // Installing the same again is idempotent: no download needed, registered again.
    let o = install(&["-type=auth", &url2, &format!("-sha256={right}"), "-version=v1.2.3", "-name=login-x", &ca, &dir]);
    assert!(o.status.success(), "{}", out(&o));
    assert!(out(&o).contains("already holds this binary"), "{}", out(&o));
    assert_eq!(dir_names(&plugins), vec!["login-x-v1.2.3", "my-plugin"]);

    // Registration refused (no token): the freshly placed file is removed again.
    let o = cli(
        coffer_bin(),
        &s.addr,
        None,
        &["plugin", "install", &url2, &format!("-sha256={right}"), "-name=no-token", &ca, &dir],
    );
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    assert!(out(&o).contains("Error registering plugin no-token"), "{}", out(&o));
    assert_eq!(dir_names(&plugins), vec!["login-x-v1.2.3", "my-plugin"]);
    assert!(!s.log_text().contains("panicked"));
}

fn run_new(cwd: &Path, args: &[&str]) -> Output {
    Command::new(coffer_bin())
        .arg("plugin")
        .arg("new")
        .args(args)
        .current_dir(cwd)
        .env_remove("BAO_ADDR")
        .env_remove("VAULT_ADDR")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn plugin_new_writes_a_complete_crate() {
    let tmp = tempfile::tempdir().unwrap();
    let read = |p: PathBuf| std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));

    // From inside the Coffer checkout (the test's working directory): path dependencies.
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target = tmp.path().join("gen");
    let o = run_new(repo, &["-type=secrets", "my-engine", &format!("-dir={}", target.display())]);
    assert!(o.status.success(), "{}", out(&o));
    let c = target.join("my-engine");
    for f in [
        "Cargo.toml",
        "Cargo.lock",
        "README.md",
        "CHANGELOG.md",
        ".gitignore",
        "src/lib.rs",
        "src/main.rs",
        "tests/backend.rs",
        "tests/acceptance.rs",
        "tests/support/mod.rs",
        "docs/configuration.md",
        "docs/paths.md",
        "docs/examples.md",
    ] {
        assert!(c.join(f).is_file(), "{f} missing");
    }
    let toml = read(c.join("Cargo.toml"));
    assert!(toml.contains("name = \"my-engine\""), "{toml}");
    assert!(toml.contains("\n[workspace]\n"), "a standalone workspace: {toml}");
    let sdk = repo.parent().unwrap().join("sdk").canonicalize().unwrap();
    assert!(toml.contains(&format!("coffer-sdk = {{ path = '{}' }}", sdk.display())), "{toml}");
    assert!(toml.contains("coffer-plugin = { path = '"), "{toml}");
    assert!(read(c.join("README.md")).contains("# my-engine"));
    assert!(read(c.join("docs/examples.md")).contains("bao write my-engine/items/"));
    let lib = read(c.join("src/lib.rs"));
    assert!(lib.contains("pub struct MyEngineBackend") && lib.contains("items/(?P<name>"), "{lib}");
    assert!(lib.contains("async fn exists"));
    let main = read(c.join("src/main.rs"));
    assert!(main.contains("framework::Backend::new(my_engine::MyEngineBackend::new())"), "{main}");
    assert!(main.contains("BackendKind::Secret"));
    let acc = read(c.join("tests/acceptance.rs"));
    assert!(acc.contains("CARGO_BIN_EXE_my-engine") && acc.contains("acceptance_enabled("), "{acc}");
    assert!(acc.contains("Acceptance::new(plugin, \"acc\")"), "the harness drives it: {acc}");
    assert!(toml.contains("coffer-plugin-testing = { path = '"), "{toml}");
    assert!(!read(c.join("src/lib.rs")).contains("__"), "every placeholder is filled");

    // Outside any checkout, an auth method: the SDK from the checkout this binary was built
    // from (still here), a login path.
    let outside = tmp.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let o = run_new(&outside, &["my-login", "--type", "auth"]);
    assert!(o.status.success(), "{}", out(&o));
    let c = outside.join("my-login");
    let toml = read(c.join("Cargo.toml"));
    assert!(toml.contains("name = \"my-login\"") && toml.contains("crates/sdk"), "{toml}");
    assert!(toml.contains("crates/plugin-testing"), "{toml}");
    assert!(c.join("Cargo.lock").exists(), "path dependencies come with the checkout's lock file");
    let lib = read(c.join("src/lib.rs"));
    assert!(lib.contains(".unauthenticated()") && lib.contains("AuthResponse {"), "the login row is flagged: {lib}");
    assert!(read(c.join("src/main.rs")).contains("BackendKind::Auth"));
    assert!(read(c.join("README.md")).contains("bao auth enable -path=my-login"));
    for f in ["src/main.rs", "src/lib.rs", "tests/backend.rs", "tests/acceptance.rs", "tests/support/mod.rs"] {
        assert!(!read(c.join(f)).contains("__"), "placeholders left in {f}");
    }

    // Refusals: inside Coffer's crates/ (it would join the workspace), an existing crate, a bad
    // name, a bad type.
    let o = run_new(repo, &["zz-would-join", "-dir=../new-dir"]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    assert!(out(&o).contains("workspace member"), "{}", out(&o));
    assert!(!repo.parent().unwrap().join("new-dir").exists(), "nothing created in crates/");
    let o = run_new(&outside, &["my-login", "-type=auth"]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    assert!(out(&o).contains("already exists"), "{}", out(&o));
    let o = run_new(&outside, &["Bad/Name"]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    let o = run_new(&outside, &["-type=kv", "x"]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    assert!(out(&o).contains("secrets, auth or database"), "{}", out(&o));

    // A database plugin: its own binary (serve_database), unit and acceptance tests, no
    // backend test support.
    let o = run_new(&outside, &["-type=database", "my-db"]);
    assert!(o.status.success(), "{}", out(&o));
    let c = outside.join("my-db");
    assert!(read(c.join("src/main.rs")).contains("coffer_plugin::serve_database"));
    assert!(read(c.join("src/lib.rs")).contains("impl Database for MyDbDatabase"));
    assert!(read(c.join("tests/acceptance.rs")).contains("Plugin::database"));
    assert!(!c.join("tests/support/mod.rs").exists() && !c.join("tests/backend.rs").exists());
    for f in ["src/main.rs", "src/lib.rs", "tests/database.rs", "tests/acceptance.rs", "README.md", "docs/paths.md"] {
        assert!(!read(c.join(f)).contains("__"), "placeholders left in {f}");
    }
}

/// Outside any checkout, as a vendor with only the binary: the scaffold takes the SDK from the
/// checkout the binary was built from (while it exists), or from the source tree named by
/// `-sdk` or `COFFER_SDK_PATH`, says which, and refuses a path that is not a Coffer tree.
#[test]
fn plugin_new_outside_a_checkout_says_where_the_sdk_comes_from() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap();
    let empty = tempfile::tempdir().unwrap();
    let o = run_new(empty.path(), &["demo-a"]);
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success(), "{text}{}", String::from_utf8_lossy(&o.stderr));
    assert!(text.contains("the Coffer checkout this binary was built from"), "{text}");
    let toml = std::fs::read_to_string(empty.path().join("demo-a/Cargo.toml")).unwrap();
    assert!(toml.contains(&repo.join("crates/sdk").display().to_string()), "{toml}");

    let o = run_new(empty.path(), &[&format!("-sdk={}", repo.display()), "demo-b"]);
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success() && text.contains("the source tree given with -sdk"), "{text}");

    let o = Command::new(coffer_bin())
        .args(["plugin", "new", "demo-c"])
        .current_dir(empty.path())
        .env("COFFER_SDK_PATH", empty.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(!o.status.success() && err.contains("is not a Coffer source tree"), "{err}");
    assert!(!empty.path().join("demo-c").exists(), "nothing written on a bad SDK path");

    // COFFER_SDK_PATH naming the tree: path dependencies on it, and said so.
    let o = Command::new(coffer_bin())
        .args(["plugin", "new", "demo-d"])
        .current_dir(empty.path())
        .env("COFFER_SDK_PATH", &repo)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success() && text.contains("come from the source tree in COFFER_SDK_PATH"), "{text}");
    let toml = std::fs::read_to_string(empty.path().join("demo-d/Cargo.toml")).unwrap();
    assert!(
        toml.contains(&format!("coffer-plugin = {{ path = '{}' }}", repo.join("crates/plugin").display())),
        "{toml}"
    );
}

/// The last source: crates.io, by the SDK family's own version (not the server's), asked for
/// with `-sdk=crates.io` (the same choice a binary makes whose checkout is gone). The manifest
/// names the three crates by version, with no path, and no Cargo.lock is copied; the version
/// requirement accepts this checkout's publishable SDK crates (scripts/test checks that they
/// package: `cargo publish --dry-run`).
#[test]
fn plugin_new_takes_the_published_sdk_by_its_own_version_when_asked() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap();
    let empty = tempfile::tempdir().unwrap();
    let o = run_new(empty.path(), &["-sdk=crates.io", "demo-pub"]);
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success(), "{}", out(&o));
    let sdk_version = coffer_sdk::VERSION;
    let req: String = sdk_version.splitn(3, '.').take(2).collect::<Vec<_>>().join(".");
    assert!(text.contains(&format!("come from crates.io, version {req}")), "{text}");
    let c = empty.path().join("demo-pub");
    let toml = std::fs::read_to_string(c.join("Cargo.toml")).unwrap();
    for krate in ["coffer-sdk", "coffer-plugin", "coffer-plugin-testing"] {
        assert!(toml.contains(&format!("\n{krate} = \"{req}\"")), "{krate} by version {req}: {toml}");
    }
    assert!(!toml.lines().any(|l| l.starts_with("coffer-") && l.contains("path")), "no path dependency: {toml}");
    assert!(!c.join("Cargo.lock").exists(), "no lock file from a checkout");
    // The requirement accepts this checkout's SDK crates: with crates.io patched to them, the
    // manifest resolves (offline) to the local packages. A requirement they do not meet leaves
    // the patch unused, and resolution fails offline (they are not on crates.io's index).
    let mut patched = toml.clone();
    patched.push_str("\n[patch.crates-io]\n");
    for (krate, dir) in [
        ("coffer-sdk", "sdk"),
        ("coffer-plugin", "plugin"),
        ("coffer-plugin-testing", "plugin-testing"),
        ("coffer-api", "api"),
    ] {
        patched.push_str(&format!("{krate} = {{ path = '{}' }}\n", repo.join("crates").join(dir).display()));
    }
    std::fs::write(c.join("Cargo.toml"), patched).unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let m = Command::new(cargo)
        .args(["metadata", "--offline", "--format-version", "1"])
        .current_dir(&c)
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .unwrap();
    assert!(m.status.success(), "the crates.io manifest does not resolve to the local SDK: {}", out(&m));
    let meta: serde_json::Value = serde_json::from_slice(&m.stdout).unwrap();
    let local: Vec<(String, String)> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"].as_str().is_some_and(|n| n.starts_with("coffer-")) && p["source"].is_null())
        .map(|p| (p["name"].as_str().unwrap().to_string(), p["version"].as_str().unwrap().to_string()))
        .collect();
    for krate in ["coffer-sdk", "coffer-plugin", "coffer-plugin-testing"] {
        assert!(local.contains(&(krate.to_string(), sdk_version.to_string())), "{krate} {sdk_version}: {local:?}");
    }
    // The same with COFFER_SDK_PATH=crates.io, inside the checkout.
    let o = Command::new(coffer_bin())
        .args(["plugin", "new", "demo-pub2", &format!("-dir={}", empty.path().display())])
        .current_dir(&repo)
        .env("COFFER_SDK_PATH", "crates.io")
        .output()
        .unwrap();
    assert!(o.status.success() && out(&o).contains("come from crates.io"), "{}", out(&o));

    // The requirement matches the local crates' versions: each crate's own manifest says
    // `version = "<SDK version>"`, which `"<major>.<minor>"` accepts.
    for dir in ["sdk", "plugin", "plugin-testing", "api"] {
        let m = std::fs::read_to_string(repo.join("crates").join(dir).join("Cargo.toml")).unwrap();
        assert!(m.contains(&format!("\nversion = \"{sdk_version}\"\n")), "crates/{dir} has the SDK version: {m}");
        assert!(!m.contains("publish = false"), "crates/{dir} is publishable");
    }
}

/// The names the server lists as builtin in its plugin catalog and the names `plugin new`
/// refuses come from the same registry: every listed builtin (and the unlisted `system` and
/// KV aliases) is refused, and nothing is written for it.
#[test]
fn plugin_new_refuses_every_builtin_the_catalog_lists() {
    let s = Server::start_dev("root");
    let (status, body) = http(&s.addr, "GET", "/v1/sys/plugins/catalog", &[("X-Vault-Token", "root")], b"");
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let builtin: Vec<String> = v["data"]["detailed"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["builtin"] == true)
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect();
    for expected in ["kv", "transit", "totp", "userpass", "approle", "token", "cubbyhole", "identity"] {
        assert!(builtin.iter().any(|n| n == expected), "{expected} not listed as builtin: {builtin:?}");
    }
    let tmp = tempfile::tempdir().unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let unlisted = ["system", "generic", "kv-v2"].map(String::from);
    for name in builtin.iter().chain(&unlisted) {
        let o = run_new(repo, &[name, &format!("-dir={}", tmp.path().display())]);
        assert!(!o.status.success() && out(&o).contains("it is reserved"), "{name}: {}", out(&o));
        assert!(!tmp.path().join(name).exists(), "{name}: a crate was written");
    }
    // A name no builtin has is accepted, so the refusals above are about the names.
    let o = run_new(repo, &["kv-helper", &format!("-dir={}", tmp.path().display())]);
    assert!(o.status.success(), "{}", out(&o));
}

/// A minisign key pair made by the real `minisign` tool (no password): (public key file, its
/// key line, secret key file).
fn minisign_keypair(dir: &Path, name: &str) -> (PathBuf, String, PathBuf) {
    let (public, secret) = (dir.join(format!("{name}.pub")), dir.join(format!("{name}.key")));
    let o = Command::new("minisign")
        .args(["-G", "-W", "-f", "-p"])
        .arg(&public)
        .arg("-s")
        .arg(&secret)
        .stdin(Stdio::null())
        .output()
        .expect("minisign (Debian package minisign) must be installed");
    assert!(o.status.success(), "minisign -G: {}", out(&o));
    let line = std::fs::read_to_string(&public).unwrap().lines().nth(1).unwrap().trim().to_string();
    (public, line, secret)
}

/// Signs `file` with the real minisign tool (the signature is written to FILE.minisig, over any
/// earlier one); returns that file and its contents.
fn minisign_sign(secret: &Path, file: &Path) -> (PathBuf, Vec<u8>) {
    let o = Command::new("minisign").arg("-S").arg("-s").arg(secret).arg("-m").arg(file).output().unwrap();
    assert!(o.status.success(), "minisign -S: {}", out(&o));
    let mut sig = file.as_os_str().to_owned();
    sig.push(".minisig");
    let sig = PathBuf::from(sig);
    let bytes = std::fs::read(&sig).unwrap();
    (sig, bytes)
}

#[test]
fn plugin_install_checks_a_minisign_signature_before_the_digest() {
    let tmp = tempfile::tempdir().unwrap();
    let plugins = tmp.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let (ca_pem, cert, key) = test_pki(tmp.path());
    let bin = tmp.path().join("p");
    std::fs::copy("/bin/true", &bin).unwrap();
    let right = sha256_hex(&bin);
    let (vendor_pub, vendor_line, vendor_secret) = minisign_keypair(tmp.path(), "vendor");
    let (_, _, other_secret) = minisign_keypair(tmp.path(), "other");
    let (_, good_sig) = minisign_sign(&vendor_secret, &bin);
    let good_sig_file = tmp.path().join("good.minisig");
    std::fs::write(&good_sig_file, &good_sig).unwrap();
    let (_, other_sig) = minisign_sign(&other_secret, &bin);
    let mut tampered = std::fs::read(&bin).unwrap();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    let tampered_path = tmp.path().join("tampered");
    std::fs::write(&tampered_path, &tampered).unwrap();
    let tampered_sha = sha256_hex(&tampered_path);
    let binary = std::fs::read(&bin).unwrap();
    let files: HashMap<String, Vec<u8>> = [
        ("/signed/p".to_string(), binary.clone()),
        ("/signed/p.minisig".to_string(), good_sig.clone()),
        ("/other.minisig".to_string(), other_sig),
        ("/tampered/p".to_string(), tampered),
        ("/tampered/p.minisig".to_string(), good_sig),
        ("/unsigned/p".to_string(), binary),
    ]
    .into();
    let port = https_server(&cert, &key, files);
    let s = start_dev_with_plugins(&plugins, &tmp.path().join("dev.log"));
    let t = [("X-Vault-Token", "root")];
    let ca = format!("-ca-cert={}", ca_pem.display());
    let dir = format!("-plugin-dir={}", plugins.display());
    let url = |p: &str| format!("https://127.0.0.1:{port}{p}");
    let install = |args: &[&str]| -> Output {
        let mut all = vec!["plugin", "install"];
        all.extend_from_slice(args);
        all.extend([ca.as_str(), dir.as_str()]);
        cli(coffer_bin(), &s.addr, Some("root"), &all)
    };
    let registered = |name: &str| http(&s.addr, "GET", &format!("/v1/sys/plugins/catalog/secret/{name}"), &t, b"").0;

    // Signed by the trusted key (the key line; the signature at URL.minisig): installed.
    let o = install(&[&url("/signed/p"), &format!("-sha256={right}"), &format!("-public-key={vendor_line}")]);
    assert!(o.status.success(), "{}", out(&o));
    assert!(out(&o).contains("Signature verified with the trusted public key"), "{}", out(&o));
    assert_eq!(registered("p"), 200);
    // The key as a minisign.pub file and the signature as a local file: installed too.
    let o = install(&[
        &url("/signed/p"),
        &format!("-sha256={right}"),
        "-name=p-local",
        &format!("-public-key={}", vendor_pub.display()),
        &format!("-signature={}", good_sig_file.display()),
    ]);
    assert!(o.status.success(), "{}", out(&o));
    assert_eq!(dir_names(&plugins), vec!["p", "p-local"]);

    // Signed by another key: refused, nothing placed, nothing registered.
    let o = install(&[
        &url("/signed/p"),
        &format!("-sha256={right}"),
        "-name=p-other",
        &format!("-public-key={vendor_line}"),
        &format!("-signature={}", url("/other.minisig")),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    assert!(out(&o).contains("made with another key"), "{}", out(&o));
    assert_eq!(registered("p-other"), 404);
    // A tampered binary published with its own digest: the signature refuses it first.
    let o = install(&[
        &url("/tampered/p"),
        &format!("-sha256={tampered_sha}"),
        "-name=p-tampered",
        &format!("-public-key={vendor_line}"),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    assert!(out(&o).contains("does not verify with the trusted public key"), "{}", out(&o));
    assert!(out(&o).contains("nothing was installed"), "{}", out(&o));
    assert_eq!(registered("p-tampered"), 404);
    // A trusted key but no signature published: a signature is required.
    let o = install(&[
        &url("/unsigned/p"),
        &format!("-sha256={right}"),
        "-name=p-unsigned",
        &format!("-public-key={vendor_line}"),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    assert!(out(&o).contains("HTTP 404") && out(&o).contains("a signature is required"), "{}", out(&o));
    // A signature without a key to check it with, and a key that is not one: usage errors.
    let o = install(&[
        &url("/signed/p"),
        &format!("-sha256={right}"),
        "-name=p-x",
        &format!("-signature={}", url("/signed/p.minisig")),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    assert!(out(&o).contains("-signature needs -public-key"), "{}", out(&o));
    let o = install(&[&url("/signed/p"), &format!("-sha256={right}"), "-name=p-x", "-public-key=not-a-key"]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    assert!(out(&o).contains("-public-key"), "{}", out(&o));
    assert_eq!(dir_names(&plugins), vec!["p", "p-local"], "no refused download left anything");
}
