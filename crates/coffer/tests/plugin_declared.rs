//! Plugins declared in the server configuration (`plugin "type" "name" { url = … }`): the
//! real `coffer server` downloads each binary over real HTTP from a local server at start,
//! checks its minisign signature (keys and signatures made by the real `minisign` tool) and its
//! SHA-256 before it is ever executable, registers it in the catalog and mounts it; and a wrong
//! digest, an oversize file, an unreachable URL, a signature by another key or a tampered
//! binary stop the start with a message naming the stanza, leaving nothing in the plugin
//! directory. `coffer plugin init` does the same download and checks without a server.
mod common;
use common::*;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A plain-HTTP file server on 127.0.0.1: URL path → body; 404 for anything else. Paths under
/// `/nolen/` are sent without a Content-Length (the body ends when the connection closes), so
/// the size cap is tested on the stream as well as on the announced length. Counts requests
/// per path.
struct Files {
    port: u16,
    hits: Arc<Mutex<HashMap<String, usize>>>,
}

impl Files {
    fn serve(files: HashMap<String, Vec<u8>>) -> Files {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let files = Arc::new(files);
        let hits: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let h = hits.clone();
        std::thread::spawn(move || {
            for mut tcp in listener.incoming().flatten() {
                let (files, hits) = (files.clone(), h.clone());
                std::thread::spawn(move || {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match tcp.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let text = String::from_utf8_lossy(&head);
                    let path = text.split_whitespace().nth(1).unwrap_or("").to_string();
                    *hits.lock().unwrap().entry(path.clone()).or_default() += 1;
                    let (status, body) = match files.get(&path) {
                        Some(b) => ("200 OK", b.clone()),
                        None => ("404 Not Found", b"not found".to_vec()),
                    };
                    let length = if path.starts_with("/nolen/") {
                        String::new()
                    } else {
                        format!("Content-Length: {}\r\n", body.len())
                    };
                    let resp = format!(
                        "HTTP/1.1 {status}\r\nContent-Type: application/octet-stream\r\n{length}Connection: close\r\n\r\n"
                    );
                    let _ = tcp.write_all(resp.as_bytes()).and_then(|_| tcp.write_all(&body));
                });
            }
        });
        Files { port, hits }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }
}

/// A minisign key pair made by the real tool (no password): (public key line, secret key file).
fn minisign_keypair(dir: &Path, name: &str) -> (String, PathBuf) {
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
    (line, secret)
}

/// Signs `file` with the real minisign tool; returns the signature file's contents.
fn minisign_sign(secret: &Path, file: &Path) -> Vec<u8> {
    let o = Command::new("minisign")
        .arg("-S")
        .arg("-s")
        .arg(secret)
        .arg("-m")
        .arg(file)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "minisign -S: {}", out(&o));
    let mut sig = file.as_os_str().to_owned();
    sig.push(".minisig");
    std::fs::read(sig).unwrap()
}

fn dir_names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| d.map(|e| e.unwrap().file_name().to_string_lossy().to_string()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// The example plugin binary, built with the workspace.
fn example_plugin() -> PathBuf {
    let built = Path::new(coffer_bin()).with_file_name("coffer-plugin-example");
    assert!(built.exists(), "build the workspace first (the example plugin binary is missing)");
    built
}

/// A configuration with the plugin settings and one `plugin "secret" "NAME"` stanza.
fn config(dir: &Path, plugins: &Path, top: &str, stanza: &str) -> PathBuf {
    let path = dir.join("coffer.hcl");
    std::fs::write(
        &path,
        format!(
            "plugin_directory = \"{}\"\nplugin_auto_download = true\nplugin_auto_register = true\n{top}\n{stanza}\n",
            plugins.display()
        ),
    )
    .unwrap();
    path
}

fn stanza(name: &str, url: &str, sha: &str, extra: &str) -> String {
    format!("plugin \"secret\" \"{name}\" {{\n  url = \"{url}\"\n  version = \"v1.0.0\"\n  sha256sum = \"{sha}\"\n{extra}}}\n")
}

/// Runs `coffer server -dev -config=CONFIG`, expecting it to refuse to start: returns its
/// output. Fails if it is still running after 30 s.
fn start_fails(config: &Path) -> String {
    let mut child = Command::new(coffer_bin())
        .args(["server", "-dev", "-dev-root-token-id=root", "-dev-listen-address=127.0.0.1:0", "-dev-no-store-token"])
        .arg(format!("-config={}", config.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let o = child.wait_with_output().unwrap();
            let text = out(&o);
            assert_eq!(status.code(), Some(1), "the start must fail: {text}");
            return text;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let o = child.wait_with_output().unwrap();
            panic!("the server started although it should have refused: {}", out(&o));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn start(config: &Path, log: &Path) -> Server {
    Server::start_dev_logging_to("root", &[&format!("-config={}", config.display())], log)
}

#[test]
fn declared_signed_plugin_is_downloaded_checked_registered_mountable_and_not_fetched_again() {
    let tmp = tempfile::tempdir().unwrap();
    let plugins = tmp.path().join("plugins");
    let release = tmp.path().join("release");
    std::fs::create_dir_all(&release).unwrap();
    let bin = release.join("passphrase");
    std::fs::copy(example_plugin(), &bin).unwrap();
    let sha = sha256_hex(&bin);
    let (public_key, secret) = minisign_keypair(tmp.path(), "vendor");
    let sig = minisign_sign(&secret, &bin);
    let files = Files::serve(
        [("/passphrase".to_string(), std::fs::read(&bin).unwrap()), ("/passphrase.minisig".to_string(), sig)].into(),
    );
    let cfg = config(
        tmp.path(),
        &plugins,
        "",
        &stanza("passphrase", &files.url("/passphrase"), &sha, &format!("  public_key = \"{public_key}\"\n")),
    );
    let s = start(&cfg, &tmp.path().join("one.log"));
    // Placed as NAME-VERSION, owner-executable only, nothing else left in the directory.
    assert_eq!(dir_names(&plugins), vec!["passphrase-v1.0.0"], "no temporary file left");
    let installed = plugins.join("passphrase-v1.0.0");
    assert_eq!(sha256_hex(&installed), sha);
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&installed).unwrap().permissions().mode() & 0o777, 0o700);
    }
    assert_eq!(files.hits("/passphrase"), 1);
    assert_eq!(files.hits("/passphrase.minisig"), 1, "the signature is fetched (public_key makes it required)");

    // Registered as OpenBao registers a declared plugin, and mountable.
    let t = [("X-Vault-Token", "root")];
    let (st, body) = http(&s.addr, "GET", "/v1/sys/plugins/catalog/secret/passphrase?version=v1.0.0", &t, b"");
    assert_eq!(st, 200, "{body}");
    let e = json(&body)["data"].clone();
    assert_eq!(e["declarative"], true, "{e}");
    assert_eq!(e["oci"], false, "{e}");
    assert_eq!(e["sha256"], sha.as_str());
    assert_eq!(e["command"], "passphrase-v1.0.0");
    assert_eq!(e["version"], "v1.0.0");
    let (st, body) = http(&s.addr, "POST", "/v1/sys/mounts/pp", &t, br#"{"type":"passphrase"}"#);
    assert_eq!(st, 204, "{body}");
    let (st, body) = http(&s.addr, "GET", "/v1/pp/gen", &t, b"");
    assert_eq!(st, 200, "the declared plugin serves: {body}");
    assert!(json(&body)["data"]["passphrase"].is_string(), "{body}");
    drop(s);

    // A restart with the file in place: nothing downloaded again, registered again.
    let s = start(&cfg, &tmp.path().join("two.log"));
    assert_eq!(files.hits("/passphrase"), 1, "an installed binary with the right digest is not downloaded again");
    assert!(s.log_text().contains("already present"), "{}", s.log_text());
    let (st, _) = http(&s.addr, "GET", "/v1/sys/plugins/catalog/secret/passphrase?version=v1.0.0", &t, b"");
    assert_eq!(st, 200);
    drop(s);

    // The same stanza in JSON, as OpenBao writes it: same result.
    let json_cfg = tmp.path().join("coffer.json");
    std::fs::write(
        &json_cfg,
        serde_json::json!({
            "plugin_directory": plugins.display().to_string(),
            "plugin_auto_download": true,
            "plugin_auto_register": true,
            "plugin": [{ "secret": { "passphrase": {
                "url": files.url("/passphrase"), "version": "v1.0.0", "sha256sum": sha, "public_key": public_key,
            }}}],
        })
        .to_string(),
    )
    .unwrap();
    let s = start(&json_cfg, &tmp.path().join("three.log"));
    let (st, body) = http(&s.addr, "GET", "/v1/sys/plugins/catalog/secret/passphrase?version=v1.0.0", &t, b"");
    assert_eq!(st, 200, "{body}");
    assert_eq!(json(&body)["data"]["declarative"], true);
    assert!(!s.log_text().contains("panicked"));
}

#[test]
fn declared_plugin_with_a_wrong_sha256_stops_the_start_and_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let plugins = tmp.path().join("plugins");
    let right = sha256_hex(Path::new("/bin/true"));
    let files = Files::serve([("/p".to_string(), std::fs::read("/bin/true").unwrap())].into());
    let wrong = "ab".repeat(32);
    let cfg = config(tmp.path(), &plugins, "", &stanza("p", &files.url("/p"), &wrong, ""));
    let msg = start_fails(&cfg);
    assert!(msg.contains("plugin \"secret\" \"p\" (version v1.0.0"), "the stanza is named: {msg}");
    assert!(msg.contains("SHA-256 mismatch") && msg.contains(&wrong) && msg.contains(&right), "{msg}");
    assert_eq!(dir_names(&plugins), Vec::<String>::new(), "nothing left, executable or not");

    // A file already there with another digest, and no URL to fetch the right one from.
    std::fs::copy("/bin/true", plugins.join("manual")).unwrap();
    let cfg = config(
        tmp.path(),
        &plugins,
        "",
        &format!("plugin \"auth\" \"manual\" {{\n  command = \"manual\"\n  version = \"v2.0.0\"\n  sha256sum = \"{wrong}\"\n}}\n"),
    );
    let msg = start_fails(&cfg);
    assert!(msg.contains("plugin \"auth\" \"manual\"") && msg.contains("not the declared sha256sum"), "{msg}");
}

#[test]
fn declared_plugin_larger_than_plugin_download_max_size_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let plugins = tmp.path().join("plugins");
    let big = vec![7u8; 4096];
    let path = tmp.path().join("big");
    std::fs::write(&path, &big).unwrap();
    let sha = sha256_hex(&path);
    let files = Files::serve([("/big".to_string(), big.clone()), ("/nolen/big".to_string(), big)].into());
    for url in [files.url("/big"), files.url("/nolen/big")] {
        let cfg = config(tmp.path(), &plugins, "plugin_download_max_size = 1000", &stanza("big", &url, &sha, ""));
        let msg = start_fails(&cfg);
        assert!(msg.contains("plugin \"secret\" \"big\""), "{msg}");
        assert!(msg.contains("larger than the 1000 bytes allowed (plugin_download_max_size)"), "{url}: {msg}");
        assert_eq!(dir_names(&plugins), Vec::<String>::new(), "{url}: nothing left");
    }
    // Under the cap, the same file installs.
    let cfg =
        config(tmp.path(), &plugins, "plugin_download_max_size = 4096", &stanza("big", &files.url("/big"), &sha, ""));
    let s = start(&cfg, &tmp.path().join("ok.log"));
    assert_eq!(dir_names(&plugins), vec!["big-v1.0.0"]);
    drop(s);
}

#[test]
fn declared_plugin_at_an_unreachable_url_is_refused_or_skipped_with_warn() {
    let tmp = tempfile::tempdir().unwrap();
    let plugins = tmp.path().join("plugins");
    let sha = sha256_hex(Path::new("/bin/true"));
    let closed = free_port();
    let cfg = config(tmp.path(), &plugins, "", &stanza("gone", &format!("http://127.0.0.1:{closed}/gone"), &sha, ""));
    let msg = start_fails(&cfg);
    assert!(msg.contains("plugin \"secret\" \"gone\"") && msg.contains("cannot download"), "{msg}");
    let files = Files::serve(HashMap::new());
    let cfg = config(tmp.path(), &plugins, "", &stanza("gone", &files.url("/gone"), &sha, ""));
    let msg = start_fails(&cfg);
    assert!(msg.contains("the server answered HTTP 404"), "{msg}");
    assert_eq!(dir_names(&plugins), Vec::<String>::new());

    // plugin_download_behavior = "warn": the server starts, says why, and has no such plugin.
    let cfg = config(
        tmp.path(),
        &plugins,
        "plugin_download_behavior = \"warn\"",
        &stanza("gone", &files.url("/gone"), &sha, ""),
    );
    let s = start(&cfg, &tmp.path().join("warn.log"));
    assert!(s.log_text().contains("starting without it"), "{}", s.log_text());
    let (st, _) = http(&s.addr, "GET", "/v1/sys/plugins/catalog/secret/gone", &[("X-Vault-Token", "root")], b"");
    assert_eq!(st, 404, "a plugin that was not installed is not registered");
}

#[test]
fn declared_plugin_signed_by_another_key_tampered_or_unsigned_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let plugins = tmp.path().join("plugins");
    let release = tmp.path().join("release");
    std::fs::create_dir_all(&release).unwrap();
    let bin = release.join("p");
    std::fs::copy("/bin/true", &bin).unwrap();
    let (vendor_key, vendor_secret) = minisign_keypair(tmp.path(), "vendor");
    let (_, other_secret) = minisign_keypair(tmp.path(), "other");
    let good_sig = minisign_sign(&vendor_secret, &bin);
    let other_sig = minisign_sign(&other_secret, &bin);
    // The tampered binary: one byte changed after signing, published with its own digest.
    let mut tampered = std::fs::read(&bin).unwrap();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    let tampered_path = tmp.path().join("tampered");
    std::fs::write(&tampered_path, &tampered).unwrap();
    let files = Files::serve(
        [
            ("/p".to_string(), std::fs::read(&bin).unwrap()),
            ("/p.minisig".to_string(), good_sig.clone()),
            ("/other.minisig".to_string(), other_sig),
            ("/t".to_string(), tampered),
            ("/t.minisig".to_string(), good_sig),
        ]
        .into(),
    );
    let sha = sha256_hex(&bin);
    let key = format!("  public_key = \"{vendor_key}\"\n");

    let cfg = config(
        tmp.path(),
        &plugins,
        "",
        &stanza("p", &files.url("/p"), &sha, &format!("{key}  signature = \"{}\"\n", files.url("/other.minisig"))),
    );
    let msg = start_fails(&cfg);
    assert!(msg.contains("plugin \"secret\" \"p\"") && msg.contains("made with another key"), "{msg}");
    assert_eq!(dir_names(&plugins), Vec::<String>::new());

    let cfg = config(tmp.path(), &plugins, "", &stanza("t", &files.url("/t"), &sha256_hex(&tampered_path), &key));
    let msg = start_fails(&cfg);
    assert!(msg.contains("does not verify with the trusted public key"), "{msg}");
    assert!(!msg.contains("SHA-256 mismatch"), "the signature is checked before the digest: {msg}");
    assert_eq!(dir_names(&plugins), Vec::<String>::new(), "nothing left by a refused signature");

    // public_key set, no signature published: a signature is required.
    let cfg = config(
        tmp.path(),
        &plugins,
        "",
        &stanza("p", &files.url("/p"), &sha, &format!("{key}  signature = \"{}\"\n", files.url("/missing.minisig"))),
    );
    let msg = start_fails(&cfg);
    assert!(msg.contains("HTTP 404") && msg.contains("a signature is required"), "{msg}");

    // The good signature: installed.
    let cfg = config(tmp.path(), &plugins, "", &stanza("p", &files.url("/p"), &sha, &key));
    let s = start(&cfg, &tmp.path().join("ok.log"));
    assert_eq!(dir_names(&plugins), vec!["p-v1.0.0"]);
    drop(s);
    // A file later swapped in place (same name, other content) is not trusted on restart: the
    // pinned file is fetched again over it, still checked.
    std::fs::write(plugins.join("p-v1.0.0"), b"#!/bin/sh\necho swapped\n").unwrap();
    let s = start(&cfg, &tmp.path().join("again.log"));
    assert_eq!(sha256_hex(&plugins.join("p-v1.0.0")), sha);
    drop(s);
}

/// `coffer plugin init` (as `bao plugin init`): with `plugin_auto_download` left false (the
/// default) a server cannot start on a declared plugin that is not there; the command
/// downloads and checks it (signature and digest) into `plugin_directory` without a server, a
/// second run downloads nothing, and the server then registers and mounts it without
/// downloading. A digest mismatch names the stanza, exits 1 and leaves nothing; a
/// configuration without stanzas is refused.
#[test]
fn plugin_init_downloads_declared_plugins_for_a_server_without_auto_download() {
    let tmp = tempfile::tempdir().unwrap();
    let plugins = tmp.path().join("plugins");
    let release = tmp.path().join("release");
    std::fs::create_dir_all(&release).unwrap();
    let bin = release.join("passphrase");
    std::fs::copy(example_plugin(), &bin).unwrap();
    let sha = sha256_hex(&bin);
    let (public_key, secret) = minisign_keypair(tmp.path(), "vendor");
    let sig = minisign_sign(&secret, &bin);
    let files = Files::serve(
        [("/passphrase".to_string(), std::fs::read(&bin).unwrap()), ("/passphrase.minisig".to_string(), sig)].into(),
    );
    let cfg = tmp.path().join("coffer.hcl");
    let write_cfg = |sha: &str| {
        std::fs::write(
            &cfg,
            format!(
                "plugin_directory = \"{}\"\nplugin_auto_register = true\n{}",
                plugins.display(),
                stanza("passphrase", &files.url("/passphrase"), sha, &format!("  public_key = \"{public_key}\"\n"))
            ),
        )
        .unwrap()
    };
    write_cfg(&sha);
    let init = |args: &[String]| Command::new(coffer_bin()).args(["plugin", "init"]).args(args).output().unwrap();
    let config_flag = format!("-config={}", cfg.display());

    // Without the download, the server has nothing to register and refuses to start.
    let text = start_fails(&cfg);
    assert!(text.contains("plugin \"secret\" \"passphrase\""), "{text}");
    assert_eq!(files.hits("/passphrase"), 0, "plugin_auto_download is false: the server downloads nothing");

    let sigs = files.hits("/passphrase.minisig");
    let o = init(std::slice::from_ref(&config_flag));
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    assert!(out(&o).contains("Success! secret passphrase v1.0.0: downloaded and checked"), "{}", out(&o));
    assert_eq!(dir_names(&plugins), vec!["passphrase-v1.0.0"], "no temporary file left");
    assert_eq!(sha256_hex(&plugins.join("passphrase-v1.0.0")), sha);
    assert_eq!(files.hits("/passphrase"), 1);
    assert_eq!(files.hits("/passphrase.minisig"), sigs + 1, "public_key makes the signature required");
    let o = init(std::slice::from_ref(&config_flag));
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    assert!(out(&o).contains("secret passphrase v1.0.0: already present and checked"), "{}", out(&o));
    assert_eq!(files.hits("/passphrase"), 1, "a present binary with the right digest is not downloaded again");

    // The server registers what the command placed, and it serves.
    let s = start(&cfg, &tmp.path().join("server.log"));
    let t = [("X-Vault-Token", "root")];
    let (st, body) = http(&s.addr, "GET", "/v1/sys/plugins/catalog/secret/passphrase?version=v1.0.0", &t, b"");
    assert_eq!(st, 200, "{body}");
    assert_eq!(json(&body)["data"]["declarative"], true, "{body}");
    let (st, body) = http(&s.addr, "POST", "/v1/sys/mounts/pp", &t, br#"{"type":"passphrase"}"#);
    assert_eq!(st, 204, "{body}");
    let (st, body) = http(&s.addr, "GET", "/v1/pp/gen", &t, b"");
    assert_eq!(st, 200, "the plugin placed by plugin init serves: {body}");
    assert_eq!(files.hits("/passphrase"), 1);
    drop(s);

    // A wrong digest into another directory: exit 1, the stanza named, nothing left.
    write_cfg(&"cd".repeat(32));
    let other = tmp.path().join("other");
    let o = init(&[config_flag.clone(), format!("-directory={}", other.display())]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    assert!(
        out(&o).contains("plugin \"secret\" \"passphrase\"") && out(&o).contains("SHA-256 mismatch"),
        "{}",
        out(&o)
    );
    assert_eq!(dir_names(&other), Vec::<String>::new());

    std::fs::write(&cfg, format!("plugin_directory = \"{}\"\n", plugins.display())).unwrap();
    let o = init(std::slice::from_ref(&config_flag));
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    assert!(out(&o).contains("declares no plugin stanza"), "{}", out(&o));
}
