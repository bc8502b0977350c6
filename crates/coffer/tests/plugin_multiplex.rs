//! Multiplexed plugins: one process of a plugin built with `coffer_plugin::serve_multiplexed`
//! serves every mount of it, in Coffer and in real OpenBao, with each mount's data out of the
//! other's reach; a plugin served the plain way still gets a process per mount.
mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The example plugin binary `name`, built with the workspace, copied into `plugins` as `as_name`.
fn install(plugins: &Path, name: &str, as_name: &str) -> PathBuf {
    let built = Path::new(coffer_bin()).with_file_name(name);
    assert!(built.exists(), "build the workspace first ({} is missing)", built.display());
    let bin = plugins.join(as_name);
    std::fs::copy(&built, &bin).unwrap();
    bin.canonicalize().unwrap()
}

/// Pids of the processes running `bin`.
fn pids_of(bin: &Path) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else { continue };
        let zombie = std::fs::read_to_string(e.path().join("stat")).is_ok_and(|s| s.contains(") Z "));
        if !zombie && cmd.split(|b| *b == 0).next().is_some_and(|a| a == bin.as_os_str().as_encoded_bytes()) {
            out.push(pid);
        }
    }
    out.sort_unstable();
    out
}

/// Waits until `bin` runs as exactly `n` processes; returns their pids.
fn wait_pids(bin: &Path, n: usize) -> Vec<u32> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let p = pids_of(bin);
        if p.len() == n || Instant::now() > deadline {
            return p;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A Vault-style HTTP client for one server.
struct Api<'a> {
    addr: &'a str,
}

impl Api<'_> {
    fn call(&self, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
        let (st, text) = http(self.addr, method, &format!("/v1/{path}"), &[("X-Vault-Token", "root")], body.as_bytes());
        (st, if text.trim().is_empty() { serde_json::Value::Null } else { json(&text) })
    }
    fn ok(&self, method: &str, path: &str, body: &str) -> serde_json::Value {
        let (st, v) = self.call(method, path, body);
        assert!(st == 200 || st == 204, "{method} {path}: {st} {v}");
        v
    }
    fn register(&self, name: &str, bin: &Path) {
        let body = format!(r#"{{"sha256":"{}","command":"{name}"}}"#, sha256_hex(bin));
        self.ok("PUT", &format!("sys/plugins/catalog/secret/{name}"), &body);
    }
    fn mount(&self, path: &str, plugin: &str) {
        self.ok("POST", &format!("sys/mounts/{path}"), &format!(r#"{{"type":"{plugin}"}}"#));
    }
    fn words(&self, mount: &str) -> usize {
        let v = self.ok("GET", &format!("{mount}/gen"), "");
        let phrase = v["data"]["passphrase"].as_str().unwrap_or_else(|| panic!("{v}")).to_string();
        let sep = self.ok("GET", &format!("{mount}/config"), "")["data"]["separator"].as_str().unwrap().to_string();
        phrase.split(sep.as_str()).count()
    }
    fn issued(&self, mount: &str) -> Vec<String> {
        match self.call("LIST", &format!("{mount}/issued"), "") {
            (200, v) => v["data"]["keys"].as_array().unwrap().iter().map(|k| k.as_str().unwrap().to_string()).collect(),
            (404, _) => vec![],
            (st, v) => panic!("LIST {mount}/issued: {st} {v}"),
        }
    }
}

/// Two mounts with settings and issued passphrases of their own: each sees only its own.
fn check_isolation(api: &Api<'_>, a: &str, b: &str) {
    api.ok("POST", &format!("{a}/config"), r#"{"words":3,"separator":"-"}"#);
    api.ok("POST", &format!("{b}/config"), r#"{"words":7,"separator":"_"}"#);
    assert_eq!(api.words(a), 3);
    assert_eq!(api.words(b), 7);
    let on_a = api.issued(a);
    let on_b = api.issued(b);
    assert_eq!((on_a.len(), on_b.len()), (1, 1), "one passphrase issued on each mount: {on_a:?} {on_b:?}");
    assert_ne!(on_a, on_b);
    let (st, _) = api.call("GET", &format!("{b}/issued/{}", on_a[0]), "");
    assert_eq!(st, 404, "a passphrase issued on {a} is not readable on {b}");
}

#[test]
fn a_multiplexed_plugin_serves_two_mounts_from_one_process_isolated_through_kill_9_and_disable() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let bin = install(&plugins, "coffer-plugin-example", "passphrase");
    let s = Server::start_dev_logging_to(
        "root",
        &[&format!("-dev-plugin-dir={}", plugins.display())],
        &dir.path().join("dev.log"),
    );
    let api = Api { addr: &s.addr };
    api.register("passphrase", &bin);
    api.mount("pa", "passphrase");
    api.mount("pb", "passphrase");

    let pids = wait_pids(&bin, 1);
    assert_eq!(pids.len(), 1, "both mounts share one plugin process: {pids:?}");
    check_isolation(&api, "pa", "pb");
    assert_eq!(pids_of(&bin), pids, "still the one process");

    // kill -9: both mounts recover on one new process, their data intact (it is the host's).
    let _ = Command::new("kill").args(["-9", &pids[0].to_string()]).status();
    assert!(wait_pids(&bin, 0).is_empty(), "the process is gone");
    assert_eq!(api.words("pa"), 3, "mount A recovered");
    assert_eq!(api.words("pb"), 7, "mount B recovered");
    let after = wait_pids(&bin, 1);
    assert_eq!(after.len(), 1, "one new process for both mounts: {after:?}");
    assert_ne!(after, pids);
    assert_eq!(api.issued("pa").len(), 2);
    assert_eq!(api.issued("pb").len(), 2);

    // Disabling A leaves B served by the same process.
    api.ok("DELETE", "sys/mounts/pa", "");
    assert_eq!(api.words("pb"), 7);
    assert_eq!(pids_of(&bin), after, "B keeps the shared process");
    // A mount made again starts from empty storage, on the same process.
    api.mount("pa", "passphrase");
    assert!(api.issued("pa").is_empty(), "the new mount sees nothing of the old one or of B");
    assert_eq!(pids_of(&bin), after);

    // The process ends with its last mount.
    api.ok("DELETE", "sys/mounts/pa", "");
    api.ok("DELETE", "sys/mounts/pb", "");
    assert!(wait_pids(&bin, 0).is_empty(), "no mount left, no process: {:?}", pids_of(&bin));
}

#[test]
fn a_plugin_that_does_not_multiplex_gets_a_process_per_mount() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let bin = install(&plugins, "coffer-plugin-example-single", "passphrase-single");
    let s = Server::start_dev_logging_to(
        "root",
        &[&format!("-dev-plugin-dir={}", plugins.display())],
        &dir.path().join("dev.log"),
    );
    let api = Api { addr: &s.addr };
    api.register("passphrase-single", &bin);
    api.mount("sa", "passphrase-single");
    api.mount("sb", "passphrase-single");
    let pids = wait_pids(&bin, 2);
    assert_eq!(pids.len(), 2, "one process per mount: {pids:?}");
    check_isolation(&api, "sa", "sb");
    // kill -9 of one mount's process leaves the other's alone.
    let _ = Command::new("kill").args(["-9", &pids[0].to_string()]).status();
    assert_eq!(wait_pids(&bin, 1).len(), 1);
    assert_eq!(api.words("sa"), 3);
    assert_eq!(api.words("sb"), 7);
    assert_eq!(wait_pids(&bin, 2).len(), 2);
    api.ok("DELETE", "sys/mounts/sa", "");
    assert_eq!(wait_pids(&bin, 1).len(), 1, "disabling a mount stops its own process only");
    assert_eq!(api.words("sb"), 7);
}

#[test]
fn a_coffer_sdk_multiplexed_plugin_runs_in_real_openbao_with_isolated_mounts() {
    let Some(bao) = bao_path() else { return };
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let bin = install(&plugins, "coffer-plugin-example", "passphrase");
    let server = RealBao::start_with(&bao, &[&format!("-dev-plugin-dir={}", plugins.display())]);
    let ok = |args: &[&str]| {
        let o = cli(&bao, &server.addr, Some("root"), args);
        assert!(o.status.success(), "bao {args:?}: {}", out(&o));
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    ok(&["plugin", "register", &format!("-sha256={}", sha256_hex(&bin)), "secret", "passphrase"]);
    ok(&["secrets", "enable", "-path=pa", "passphrase"]);
    ok(&["secrets", "enable", "-path=pb", "passphrase"]);
    let api = Api { addr: &server.addr };
    check_isolation(&api, "pa", "pb");
    let pids = wait_pids(&bin, 1);
    assert_eq!(pids.len(), 1, "OpenBao runs one process for both mounts: {pids:?}");
    let help = ok(&["path-help", "pb/config"]);
    assert!(help.contains("Number of words in a passphrase"), "path-help through the shared process: {help}");
    ok(&["secrets", "disable", "pa"]);
    assert_eq!(api.words("pb"), 7, "B still served after A is disabled");
    assert_eq!(pids_of(&bin), pids, "on the same process");
}
