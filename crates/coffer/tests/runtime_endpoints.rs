//! The running server as an operator inspects it: the log streamed by `bao monitor` and
//! `coffer monitor` (sys/monitor), log levels changed at run time (sys/loggers); a dev server
//! that is ready at its first healthy answer; log_file and pid_file; owner-only files whatever
//! the umask; and settings Coffer has not built refused at start with their file and line.
//! (The requests in flight, the sanitized configuration, the counters and audit device options
//! are checked in-process: crates/testing/tests/api/runtime_endpoints.rs.)
mod common;
use common::*;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const ROOT: &[(&str, &str)] = &[("X-Vault-Token", "root")];

/// Runs a monitor client, triggers a log line by mounting `path`, and returns the first line
/// of the stream that mentions it.
fn first_monitor_line(program: &str, args: &[&str], addr: &str, path: &str) -> String {
    let mut child = Command::new(program)
        .args(args)
        .env("BAO_ADDR", format!("http://{addr}"))
        .env("VAULT_ADDR", format!("http://{addr}"))
        .env("BAO_TOKEN", "root")
        .env("VAULT_TOKEN", "root")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start {program}: {e}"));
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let want = path.to_string();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains(&want) {
                let _ = tx.send(line);
                return;
            }
        }
    });
    // The client subscribes asynchronously: mount a few times until a line arrives.
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut n = 0;
    let line = loop {
        let p = format!("{path}{n}");
        assert_eq!(http(addr, "POST", &format!("/v1/sys/mounts/{p}"), ROOT, br#"{"type":"kv"}"#).0, 204);
        n += 1;
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(500)) {
            break l;
        }
        assert!(Instant::now() < deadline, "{program} streamed no line about {path}");
    };
    let _ = child.kill();
    let _ = child.wait();
    line
}

#[test]
fn bao_monitor_and_coffer_monitor_stream_the_log_and_loggers_change_at_run_time() {
    let s = Server::start_dev("root");
    if let Some(bao) = bao_path() {
        let line = first_monitor_line(&bao, &["monitor", "-log-level=info"], &s.addr, "mon-bao");
        assert!(
            line.contains("[INFO]") && line.contains("core: successful mount") && line.contains("path=mon-bao"),
            "{line}"
        );
    }
    let line = first_monitor_line(coffer_bin(), &["monitor", "-log-format=json"], &s.addr, "mon-coffer");
    let v = json(&line);
    assert_eq!((v["@level"].as_str(), v["@message"].as_str()), (Some("info"), Some("successful mount")), "{line}");
    assert_eq!(v["@module"], "core");
    let (st, b) = http(&s.addr, "GET", "/v1/sys/monitor?log_level=loud", ROOT, b"");
    assert_eq!(st, 400, "{b}");

    // Log levels, per logger and for all, changed and reset without a restart.
    let level = |name: &str| json(&http(&s.addr, "GET", "/v1/sys/loggers", ROOT, b"").1)["data"][name].clone();
    assert_eq!(level("audit"), "info");
    assert_eq!(http(&s.addr, "PUT", "/v1/sys/loggers/audit", ROOT, br#"{"level":"debug"}"#).0, 204);
    assert_eq!(level("audit"), "debug");
    assert_eq!(level("core"), "info");
    assert_eq!(http(&s.addr, "PUT", "/v1/sys/loggers", ROOT, br#"{"level":"warn"}"#).0, 204);
    assert_eq!((level("core"), level("audit")), ("warn".into(), "warn".into()));
    let (st, b) = http(&s.addr, "PUT", "/v1/sys/loggers/core", ROOT, br#"{"level":"loud"}"#);
    assert!(st == 400 && b.contains("unknown log level"), "{st} {b}");
    let (st, b) = http(&s.addr, "PUT", "/v1/sys/loggers/nonesuch", ROOT, br#"{"level":"info"}"#);
    assert!(st == 400 && b.contains("not found"), "{st} {b}");
    assert_eq!(http(&s.addr, "DELETE", "/v1/sys/loggers", ROOT, b"").0, 204);
    assert_eq!((level("core"), level("audit")), ("info".into(), "info".into()));

    // The server's stderr here is a file, not a terminal: its log carries no colour codes.
    let log = s.log_text();
    assert!(log.contains("successful mount"), "the log went to stderr: {log}");
    assert!(!log.contains('\u{1b}'), "no ANSI escapes in a log written to a file or pipe: {log}");
}

#[test]
fn a_dev_server_is_ready_at_its_first_healthy_answer() {
    // Port 0, and the address found by asking the system which ports the process listens on:
    // the first healthy answer is taken as soon as the socket answers, before any banner.
    let mut child = Command::new(coffer_bin())
        .args(["server", "-dev", "-dev-root-token-id=root", "-dev-listen-address=127.0.0.1:0", "-dev-no-store-token"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let addr = healthy_listener(&mut child, Duration::from_secs(15));
    let answer = addr.as_deref().map(|a| http(a, "GET", "/v1/sys/mounts/secret", ROOT, b""));
    let _ = child.kill();
    let _ = child.wait();
    let (st, b) = answer.expect("no healthy answer");
    assert_eq!(st, 200, "healthy means ready: the dev mounts exist: {b}");
}

#[test]
fn log_file_pid_file_and_the_data_directory_are_owner_only_whatever_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let (log, pid, data) = (dir.path().join("coffer.log"), dir.path().join("coffer.pid"), dir.path().join("data"));
    let config = dir.path().join("coffer.hcl");
    std::fs::write(
        &config,
        format!(
            "storage \"file\" {{\n  path = \"{}\"\n}}\nlistener \"tcp\" {{\n  address = \"127.0.0.1:0\"\n  tls_disable = true\n}}\nlog_file = \"{}\"\npid_file = \"{}\"\n",
            data.display(),
            log.display(),
            pid.display()
        ),
    )
    .unwrap();
    // A permissive umask, as a careless service manager might leave it. The log goes to
    // log_file; the banner (with the bound address) to stdout.
    let banner = dir.path().join("stdout.txt");
    let mut child = Command::new("sh")
        .args(["-c", &format!("umask 000; exec {} server -config={}", coffer_bin(), config.display())])
        .stdout(std::fs::File::create(&banner).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let addr = wait_for_banner(&mut child, &banner, 0).remove(0);
    let deadline = Instant::now() + Duration::from_secs(15);
    while !pid.exists() {
        assert!(Instant::now() < deadline, "no pid_file");
        std::thread::sleep(Duration::from_millis(20));
    }
    init_unseal(&addr);
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(std::fs::read_to_string(&pid).unwrap().trim(), child.id().to_string());
    assert_eq!(mode(&data), 0o700, "data directory");
    assert_eq!(mode(&data.join("coffer.redb")), 0o600, "store file");
    assert_eq!(mode(&log), 0o600, "log file");
    // SIGTERM: a clean stop removes the pid file.
    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    let _ = child.wait();
    assert!(!pid.exists(), "pid_file removed at a clean stop");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("shutting down"), "the log went to log_file: {text}");
    assert!(!text.contains('\u{1b}'), "no colour codes in a log file");
}

#[test]
fn settings_coffer_has_not_built_are_refused_at_start_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    for (stanza, key) in [
        ("service_registration \"kubernetes\" {\n  namespace = \"x\"\n}\n", "service_registration"),
        ("telemetry {\n  statsd_address = \"127.0.0.1:8125\"\n}\n", "statsd_address"),
        ("seal \"awskms\" {\n  region = \"x\"\n}\n", "awskms"),
    ] {
        let config = dir.path().join("coffer.hcl");
        std::fs::write(
            &config,
            format!("storage \"inmem\" {{}}\nlistener \"tcp\" {{\n  address = \"127.0.0.1:0\"\n  tls_disable = true\n}}\n{stanza}"),
        )
        .unwrap();
        let o = Command::new(coffer_bin()).args(["server", &format!("-config={}", config.display())]).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{key}: the server must not start");
        assert!(err.contains(&format!("{}:6:", config.display())) && err.contains(key), "{key}: {err}");
    }
}
