//! The example plugin inside a real OpenBao (`bao server -dev`): registered with its SHA-256
//! and version, mounted, written and read through, leases revoked through it, reloaded, and
//! killed with SIGKILL (OpenBao restarts it). Skipped when `bao` is not on PATH, unless
//! COFFER_REQUIRE_BAO is set. Builds nothing itself: the example binary must already be built
//! (`cargo test -p coffer-plugin -p coffer-plugin-example` does). COFFER_BAO_LOG=1 prints the
//! server log.

mod common;

use common::{example_binary, kill9, process_alive, sha256_hex};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const NAME: &str = "coffer-passphrase";

fn find_on_path(cmd: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join(cmd)).find(|p| p.is_file())
}

struct Bao {
    server: Child,
    addr: String,
    home: tempfile::TempDir,
    plugin: PathBuf,
}

impl Bao {
    fn cmd(&self, args: &[&str]) -> Output {
        Command::new("bao")
            .args(args)
            .env("BAO_ADDR", &self.addr)
            .env("BAO_TOKEN", "root")
            .env("HOME", self.home.path())
            .env_remove("VAULT_ADDR")
            .env_remove("VAULT_TOKEN")
            .output()
            .expect("bao runs")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd(args);
        assert!(
            out.status.success(),
            "bao {args:?} failed: {}{}\nserver log tail:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log_tail()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `bao <words…> -format=json <rest…>`: the flag goes after the (sub)command words.
    fn json(&self, args: &[&str]) -> Value {
        let words = if matches!(args[0], "plugin" | "secrets" | "lease") { 2 } else { 1 };
        let mut full = args[..words].to_vec();
        full.push("-format=json");
        full.extend_from_slice(&args[words..]);
        serde_json::from_str(&self.ok(&full)).expect("bao printed JSON")
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.home.path().join("server.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Running processes of the plugin binary (by argv[0]).
    fn plugin_pids(&self) -> Vec<u32> {
        let want = self.plugin.to_string_lossy().into_owned();
        let mut out = Vec::new();
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
            let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else { continue };
            let argv0 = cmdline.split(|b| *b == 0).next().map(|a| String::from_utf8_lossy(a).into_owned());
            if argv0.as_deref() == Some(want.as_str()) && process_alive(pid) {
                out.push(pid);
            }
        }
        out
    }

    /// The one running plugin process (waiting briefly for short-lived ones to go).
    fn plugin_pid(&self) -> u32 {
        let t = Instant::now();
        loop {
            let pids = self.plugin_pids();
            if pids.len() == 1 {
                return pids[0];
            }
            assert!(t.elapsed() < Duration::from_secs(10), "expected one plugin process, found {pids:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Bao {
    fn drop(&mut self) {
        // SIGTERM lets OpenBao stop its plugins; SIGKILL if it does not exit.
        let _ = Command::new("kill").args(["-TERM", &self.server.id().to_string()]).status();
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.server.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

fn start_bao() -> Option<Bao> {
    if find_on_path("bao").is_none() {
        if std::env::var_os("COFFER_REQUIRE_BAO").is_some() {
            panic!("COFFER_REQUIRE_BAO is set but `bao` is not on PATH");
        }
        eprintln!("skipped: `bao` (OpenBao) is not on PATH");
        return None;
    }
    let home = tempfile::tempdir().unwrap();
    let plugins = home.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    let plugin = plugins.join(NAME);
    std::fs::copy(example_binary(), &plugin).unwrap();
    let log = std::fs::File::create(home.path().join("server.log")).unwrap();
    let mut server = Command::new("bao")
        .args([
            "server",
            "-dev",
            "-dev-root-token-id=root",
            // Port 0, found below by asking the system: OpenBao prints the port it was given.
            "-dev-listen-address=127.0.0.1:0",
            &format!("-dev-plugin-dir={}", plugins.display()),
        ])
        .env("HOME", home.path())
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("bao server starts");
    let found = coffer_plugin_testing::find_listener(&mut server, Duration::from_secs(60), |addr| {
        coffer_plugin_testing::http_call(addr, "GET", "sys/health", None, None).0 == 200
    });
    let addr = found.map(|a| format!("http://{a}")).unwrap_or_default();
    let bao = Bao { server, addr, home, plugin };
    assert!(!bao.addr.is_empty(), "bao server did not come up:\n{}", bao.log_tail());
    let t = Instant::now();
    while !bao.cmd(&["status"]).status.success() {
        assert!(t.elapsed() < Duration::from_secs(60), "bao server did not come up:\n{}", bao.log_tail());
        std::thread::sleep(Duration::from_millis(200));
    }
    Some(bao)
}

fn phrase_of(v: &Value) -> (String, String) {
    let d = &v["data"];
    (d["passphrase"].as_str().expect("a passphrase").to_string(), d["id"].as_str().expect("an id").to_string())
}

#[test]
fn the_example_plugin_runs_inside_openbao() {
    let Some(bao) = start_bao() else { return };
    let sha = sha256_hex(&bao.plugin);
    bao.ok(&[
        "plugin",
        "register",
        &format!("-sha256={sha}"),
        "-version=v0.1.0",
        &format!("-command={NAME}"),
        "secret",
        NAME,
    ]);
    let info = bao.json(&["plugin", "info", "-version=v0.1.0", "secret", NAME]);
    assert_eq!(info["version"], "v0.1.0", "{info}");
    bao.ok(&["secrets", "enable", "-path=pp", "-plugin-version=v0.1.0", NAME]);
    let mounts = bao.json(&["secrets", "list"]);
    assert_eq!(mounts["pp/"]["plugin_version"], "v0.1.0", "{mounts}");

    // Writes and reads through the plugin; its storage is OpenBao's.
    bao.ok(&["write", "pp/config", "words=5", "separator=."]);
    let cfg = bao.json(&["read", "pp/config"]);
    assert_eq!(cfg["data"]["words"], 5);
    let g = bao.json(&["read", "pp/gen"]);
    let (phrase, id) = phrase_of(&g);
    assert_eq!(phrase.split('.').count(), 5, "{phrase}");
    assert!(phrase.split('.').all(|w| w.len() == 5 && w.chars().all(|c| c.is_ascii_lowercase())), "{phrase}");
    let list = bao.json(&["list", "pp/issued"]);
    assert!(list.as_array().unwrap().iter().any(|k| k == &Value::String(id.clone())), "{list}");
    let rec = bao.json(&["read", &format!("pp/issued/{id}")]);
    assert_eq!(rec["data"]["passphrase"], Value::String(phrase.clone()));
    let g2 = bao.json(&["write", "pp/gen", "words=3", "separator=+"]);
    assert_eq!(phrase_of(&g2).0.split('+').count(), 3);

    // Errors keep their meaning.
    let out = bao.cmd(&["write", "pp/nope", "x=1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("Code: 404") && err.contains("unsupported path"), "{err}");
    let out = bao.cmd(&["write", "pp/config", "words=100"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("Code: 400") && err.contains("words must be between"), "{err}");
    let out = bao.cmd(&["delete", "pp/gen"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("unsupported operation"), "{err}");
    // Help comes from the plugin's path table.
    let help = bao.ok(&["path-help", "pp/gen"]);
    assert!(help.contains("Issue a passphrase"), "{help}");

    // Leased passphrases: OpenBao registers the lease; revoking it reaches the plugin.
    bao.ok(&["write", "pp/config", "ttl=1h"]);
    let g = bao.json(&["read", "pp/gen"]);
    let (_, leased_id) = phrase_of(&g);
    let lease_id = g["lease_id"].as_str().unwrap_or_default().to_string();
    assert!(lease_id.starts_with("pp/gen/"), "{g}");
    assert_eq!(g["lease_duration"], 3600, "{g}");
    bao.ok(&["read", &format!("pp/issued/{leased_id}")]);
    bao.ok(&["lease", "revoke", "-sync", &lease_id]);
    let out = bao.cmd(&["read", &format!("pp/issued/{leased_id}")]);
    assert!(!out.status.success(), "revoking the lease deleted the record");
    bao.ok(&["write", "pp/config", "ttl=0"]);

    // Reload: a new process, same data.
    let pid = bao.plugin_pid();
    bao.ok(&["plugin", "reload", &format!("-plugin={NAME}")]);
    let rec = bao.json(&["read", &format!("pp/issued/{id}")]);
    assert_eq!(rec["data"]["passphrase"], Value::String(phrase.clone()));
    let reloaded = bao.plugin_pid();
    assert_ne!(pid, reloaded, "reload started a new plugin process");
    assert!(!process_alive(pid));

    // SIGKILL: OpenBao notices and starts the plugin again on the next request.
    kill9(reloaded);
    let g = bao.json(&["read", "pp/gen"]);
    assert_eq!(phrase_of(&g).0.split('.').count(), 5, "{g}");
    let restarted = bao.plugin_pid();
    assert_ne!(restarted, reloaded);

    // Unmounting stops the plugin.
    bao.ok(&["secrets", "disable", "pp"]);
    let t = Instant::now();
    while process_alive(restarted) && t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!process_alive(restarted), "unmounting stopped the plugin");
    if std::env::var_os("COFFER_BAO_LOG").is_some() {
        let log = std::fs::read_to_string(bao.home.path().join("server.log")).unwrap_or_default();
        eprintln!("---- bao server log ----\n{log}");
    }
}
