//! Helpers for the seal tests: a SoftHSM2 token of the test's own, servers started with extra
//! environment (SOFTHSM2_CONF, VAULT_HSM_PIN), polling for the seal state, a `bao server -dev`.
#![allow(dead_code)]

use crate::common::{healthy_listener, http, json, Server};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SOFTHSM_LIBS: &[&str] = &[
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
];

/// A SoftHSM2 token store in a temp dir, with its own config file.
pub struct SoftHsm {
    pub dir: tempfile::TempDir,
    pub conf: PathBuf,
    pub lib: String,
}

pub const TOKEN_LABEL: &str = "coffer-test";
pub const PIN: &str = "4711-pin";

/// Sets up SoftHSM2 with one initialised token. Without SoftHSM2 the test fails when
/// COFFER_REQUIRE_HSM is set (scripts/test sets it) and is skipped with a message otherwise.
pub fn softhsm() -> Option<SoftHsm> {
    let lib = SOFTHSM_LIBS.iter().find(|p| Path::new(p).exists());
    let util = Command::new("sh").args(["-c", "command -v softhsm2-util"]).output().ok().filter(|o| o.status.success());
    let (Some(lib), Some(_)) = (lib, util) else {
        if std::env::var("COFFER_REQUIRE_HSM").is_ok_and(|v| !v.is_empty() && v != "0") {
            panic!("SoftHSM2 is required (apt-get install softhsm2): libsofthsm2.so or softhsm2-util not found");
        }
        eprintln!("SKIPPED: SoftHSM2 not found (apt-get install softhsm2)");
        return None;
    };
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::create_dir_all(&tokens).unwrap();
    let conf = dir.path().join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!("directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n", tokens.display()),
    )
    .unwrap();
    let out = Command::new("softhsm2-util")
        .args(["--init-token", "--free", "--label", TOKEN_LABEL, "--pin", PIN, "--so-pin", "so-4711"])
        .env("SOFTHSM2_CONF", &conf)
        .output()
        .expect("run softhsm2-util");
    assert!(out.status.success(), "softhsm2-util --init-token failed: {}", String::from_utf8_lossy(&out.stderr));
    Some(SoftHsm { dir, conf, lib: lib.to_string() })
}

impl SoftHsm {
    /// A `seal "pkcs11"` stanza for this token; `extra` lines go inside it.
    pub fn stanza(&self, key_label: &str, generate_key: bool, extra: &str) -> String {
        format!(
            "seal \"pkcs11\" {{\n  lib = \"{}\"\n  token_label = \"{TOKEN_LABEL}\"\n  key_label = \"{key_label}\"\n  generate_key = \"{generate_key}\"\n{extra}}}\n",
            self.lib
        )
    }
}

/// Writes `coffer.hcl` in `dir` (file storage in `dir/data`, a listener on port 0, plus
/// `extra`) and returns its path.
pub fn write_config(dir: &Path, extra: &str) -> PathBuf {
    let config = dir.join("coffer.hcl");
    std::fs::write(
        &config,
        format!(
            "storage \"file\" {{\n  path = \"{}\"\n}}\nlistener \"tcp\" {{\n  address = \"127.0.0.1:0\"\n  tls_disable = true\n}}\ndisable_mlock = true\n{extra}",
            dir.join("data").display()
        ),
    )
    .unwrap();
    config
}

/// Starts `coffer server` with `config` and extra environment variables; its address is the
/// one it reports (a listener at port 0 is pinned in the file, so a restart comes back there).
pub fn start(config: &Path, env: &[(&str, &str)]) -> Server {
    Server::start_with_config_env(config, env)
}

pub fn seal_status(addr: &str) -> Value {
    let (st, body) = http(addr, "GET", "/v1/sys/seal-status", &[], b"");
    assert_eq!(st, 200, "seal-status: {body}");
    json(&body)
}

/// Waits until seal-status says `sealed == want`; returns how long it took.
pub fn wait_sealed(s: &Server, want: bool, within: Duration) -> Duration {
    let start = Instant::now();
    while start.elapsed() < within {
        let (st, body) = http(&s.addr, "GET", "/v1/sys/seal-status", &[], b"");
        if st == 200 && json(&body)["sealed"] == Value::Bool(want) {
            return start.elapsed();
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!(
        "server did not become sealed={want} within {within:?}; seal-status: {}\nlog:\n{}",
        http(&s.addr, "GET", "/v1/sys/seal-status", &[], b"").1,
        s.log_text()
    );
}

/// Waits until seal-status carries a `seal_error`; returns it.
pub fn wait_seal_error(s: &Server, within: Duration) -> String {
    let start = Instant::now();
    while start.elapsed() < within {
        let v = seal_status(&s.addr);
        if let Some(e) = v["seal_error"].as_str() {
            return e.to_string();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("no seal_error within {within:?}: {}\nlog:\n{}", seal_status(&s.addr), s.log_text());
}

/// `sys/init` with recovery shares; returns (recovery keys base64, root token).
pub fn init_recovery(addr: &str, shares: u32, threshold: u32) -> (Vec<String>, String) {
    let body = format!("{{\"recovery_shares\":{shares},\"recovery_threshold\":{threshold}}}");
    let (st, resp) = http(addr, "PUT", "/v1/sys/init", &[], body.as_bytes());
    assert_eq!(st, 200, "init: {resp}");
    let v = json(&resp);
    assert_eq!(v["keys"], serde_json::json!([]), "an auto seal gives no unseal keys: {v}");
    let keys: Vec<String> =
        v["recovery_keys_base64"].as_array().unwrap().iter().map(|k| k.as_str().unwrap().to_string()).collect();
    assert_eq!(keys.len(), shares as usize);
    assert_eq!(v["recovery_keys"].as_array().unwrap().len(), shares as usize);
    (keys, v["root_token"].as_str().unwrap().to_string())
}

pub fn put_secret(addr: &str, token: &str, path: &str, body: &str) {
    let (st, resp) = http(addr, "PUT", &format!("/v1/{path}"), &[("X-Vault-Token", token)], body.as_bytes());
    assert!(st == 200 || st == 204, "write {path}: {st} {resp}");
}

pub fn get_secret(addr: &str, token: &str, path: &str) -> Value {
    let (st, resp) = http(addr, "GET", &format!("/v1/{path}"), &[("X-Vault-Token", token)], b"");
    assert_eq!(st, 200, "read {path}: {resp}");
    json(&resp)
}

/// Mounts kv (v1) at `kv/` and writes `kv/proof`.
pub fn write_proof(addr: &str, token: &str, value: &str) {
    let (st, resp) = http(addr, "POST", "/v1/sys/mounts/kv", &[("X-Vault-Token", token)], br#"{"type":"kv"}"#);
    assert!(st == 200 || st == 204, "mount kv: {st} {resp}");
    put_secret(addr, token, "kv/proof", &format!("{{\"value\":\"{value}\"}}"));
}

pub fn read_proof(addr: &str, token: &str) -> String {
    get_secret(addr, token, "kv/proof")["data"]["value"].as_str().unwrap().to_string()
}

/// Sends unseal keys with `migrate` set; returns the last answer.
pub fn unseal_migrate(addr: &str, keys: &[String]) -> Value {
    let mut last = Value::Null;
    for k in keys {
        let (st, body) =
            http(addr, "PUT", "/v1/sys/unseal", &[], format!("{{\"key\":\"{k}\",\"migrate\":true}}").as_bytes());
        assert_eq!(st, 200, "unseal -migrate: {body}");
        last = json(&body);
    }
    last
}

/// A running `bao server -dev` (killed on drop).
pub struct BaoDev {
    pub child: std::process::Child,
    pub addr: String,
    pub port: u16,
    pub log: PathBuf,
}

impl Drop for BaoDev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the real OpenBao dev server with root token `root` on port 0; OpenBao does not report
/// the port it bound, so its address is found among the ports the process listens on.
pub fn bao_dev(bao: &str, dir: &Path, root: &str) -> BaoDev {
    let log = tempfile::Builder::new().prefix("bao-dev-").suffix(".log").tempfile_in(dir).unwrap().into_temp_path();
    let log = log.keep().unwrap();
    let logf = std::fs::File::create(&log).unwrap();
    let mut child = Command::new(bao)
        .args([
            "server",
            "-dev",
            &format!("-dev-root-token-id={root}"),
            "-dev-listen-address=127.0.0.1:0",
            "-dev-no-store-token",
        ])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir)
        .stdout(logf.try_clone().unwrap())
        .stderr(logf)
        .stdin(Stdio::null())
        .spawn()
        .expect("start bao server -dev");
    match healthy_listener(&mut child, Duration::from_secs(30)) {
        Some(addr) => {
            let port = addr.rsplit(':').next().and_then(|p| p.parse().ok()).unwrap_or(0);
            BaoDev { child, addr, port, log }
        }
        None => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("bao server -dev did not start; log:\n{}", std::fs::read_to_string(&log).unwrap_or_default());
        }
    }
}

/// Enables transit at `transit/` on a server and creates the key `name`.
pub fn transit_key(addr: &str, token: &str, name: &str) {
    let h = [("X-Vault-Token", token)];
    let (st, body) = http(addr, "POST", "/v1/sys/mounts/transit", &h, br#"{"type":"transit"}"#);
    assert!(st == 200 || st == 204, "enable transit: {st} {body}");
    let (st, body) = http(addr, "POST", &format!("/v1/transit/keys/{name}"), &h, b"{}");
    assert!(st == 200 || st == 204, "create transit key: {st} {body}");
}

/// A `seal "transit"` stanza pointing at `addr`.
pub fn transit_stanza(addr: &str, token: &str, key: &str) -> String {
    format!(
        "seal \"transit\" {{\n  address = \"http://{addr}\"\n  token = \"{token}\"\n  key_name = \"{key}\"\n  mount_path = \"transit/\"\n}}\n"
    )
}
