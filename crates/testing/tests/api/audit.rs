//! Audit devices against real sinks, in-process: a file, TCP/UDP/unix listeners, a unix
//! datagram socket standing in for /dev/log; HMAC'd secrets reproducible with sys/audit-hash;
//! fail-closed with a broken device (/dev/full). (Declared devices and metrics: tests/metrics.rs;
//! SIGHUP reopening and `bao audit list` need the process: crates/coffer/tests/audit.rs.)
use coffer_testing::{json, TestCore};
use serde_json::Value;
use std::io::BufRead;
use std::time::Duration;

fn root() -> [(&'static str, &'static str); 1] {
    [("X-Vault-Token", "root")]
}

async fn enable(c: &TestCore, path: &str, body: &str) {
    let (st, b) = c.http("PUT", &format!("/v1/sys/audit/{path}"), &root(), body.as_bytes()).await;
    assert_eq!(st, 204, "enable audit {path}: {b}");
}

/// Writes a secret, reads it, and fails a userpass login: the three entries to look for.
async fn traffic(c: &TestCore) {
    assert_eq!(c.http("PUT", "/v1/kv1/app", &root(), br#"{"password":"s3cr3t-value"}"#).await.0, 204);
    assert_eq!(c.http("GET", "/v1/kv1/app", &root(), b"").await.0, 200);
    let _ = c.http("PUT", "/v1/auth/userpass/login/alice", &[], br#"{"password":"wrong-pass"}"#).await;
}

async fn audit_hash(c: &TestCore, device: &str, input: &str) -> String {
    let (st, b) = c
        .http("PUT", &format!("/v1/sys/audit-hash/{device}"), &root(), format!("{{\"input\":\"{input}\"}}").as_bytes())
        .await;
    assert_eq!(st, 200, "{b}");
    json(&b)["data"]["hash"].as_str().unwrap().to_string()
}

/// Checks a device's lines: secrets hashed as sys/audit-hash says, never in clear, failed login present.
async fn check_lines(c: &TestCore, device: &str, lines: &[String]) {
    let all = lines.join("\n");
    assert!(!all.contains("s3cr3t-value") && !all.contains("wrong-pass"), "a secret leaked:\n{all}");
    assert!(!all.contains("\"client_token\":\"root\""), "a token leaked:\n{all}");
    let entries: Vec<Value> = lines.iter().map(|l| json(l.trim_start_matches(|c| c != '{'))).collect();
    let h = audit_hash(c, device, "s3cr3t-value").await;
    let write = entries
        .iter()
        .find(|e| e["type"] == "request" && e["request"]["path"] == "kv1/app" && e["request"]["operation"] == "update");
    assert_eq!(write.expect("the write is audited")["request"]["data"]["password"], h.as_str());
    let read = entries
        .iter()
        .find(|e| e["type"] == "response" && e["request"]["path"] == "kv1/app" && e["request"]["operation"] == "read");
    assert_eq!(read.expect("the read is audited")["response"]["data"]["password"], h.as_str());
    let login = entries.iter().find(|e| e["type"] == "response" && e["request"]["path"] == "auth/userpass/login/alice");
    let login = login.expect("the failed login is audited");
    assert!(login["error"].as_str().unwrap_or("").contains("invalid username or password"), "{login}");
    assert_eq!(login["request"]["data"]["password"], audit_hash(c, device, "wrong-pass").await.as_str());
    let tok = entries.iter().find(|e| e["auth"]["client_token"].is_string()).expect("authenticated entries carry auth");
    assert_eq!(tok["auth"]["client_token"], audit_hash(c, device, "root").await.as_str(), "tokens are HMAC'd");
}

fn is_login_response(line: &str) -> bool {
    line.contains("\"type\":\"response\"") && line.contains("auth/userpass/login/alice")
}

/// Collects lines up to and including the failed login's response entry.
fn read_until_login(lines: impl Iterator<Item = String>) -> Vec<String> {
    let mut out = Vec::new();
    for l in lines {
        let done = is_login_response(&l);
        out.push(l);
        if done {
            break;
        }
    }
    out
}

/// A dev core with a KV v1 mount at kv1/ (the dev secret/ mount is KV v2).
async fn dev_with_kv1() -> TestCore {
    let c = TestCore::new().await;
    assert_eq!(c.http("POST", "/v1/sys/mounts/kv1", &root(), br#"{"type":"kv"}"#).await.0, 204);
    c
}

async fn dev_with_userpass() -> TestCore {
    let c = dev_with_kv1().await;
    assert_eq!(c.http("POST", "/v1/sys/auth/userpass", &root(), br#"{"type":"userpass"}"#).await.0, 204);
    assert_eq!(c.http("POST", "/v1/auth/userpass/users/alice", &root(), br#"{"password":"right-pass"}"#).await.0, 204);
    c
}

#[tokio::test]
async fn file_device_hmacs_secrets_and_audit_hash_reproduces_them() {
    let c = &dev_with_userpass().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    enable(c, "file", &format!(r#"{{"type":"file","options":{{"file_path":"{}"}}}}"#, log.display())).await;
    traffic(c).await;
    let lines: Vec<String> = std::fs::read_to_string(&log).unwrap().lines().map(str::to_string).collect();
    check_lines(c, "file", &lines).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn socket_devices_tcp_udp_and_unix_receive_entries() {
    let c = &dev_with_userpass().await;
    let dir = tempfile::tempdir().unwrap();
    // TCP
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let tcp_addr = tcp.local_addr().unwrap();
    let tcp_lines = std::thread::spawn(move || {
        let (c, _) = tcp.accept().unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        read_until_login(std::io::BufReader::new(c).lines().map_while(|l| l.ok()))
    });
    // UDP
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let udp_addr = udp.local_addr().unwrap();
    // Unix stream
    let sock = dir.path().join("audit.sock");
    let unix = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let unix_lines = std::thread::spawn(move || {
        let (c, _) = unix.accept().unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        read_until_login(std::io::BufReader::new(c).lines().map_while(|l| l.ok()))
    });
    enable(c, "tcp", &format!(r#"{{"type":"socket","options":{{"address":"{tcp_addr}","socket_type":"tcp"}}}}"#)).await;
    enable(c, "udp", &format!(r#"{{"type":"socket","options":{{"address":"{udp_addr}","socket_type":"udp"}}}}"#)).await;
    enable(
        c,
        "unix",
        &format!(r#"{{"type":"socket","options":{{"address":"{}","socket_type":"unix"}}}}"#, sock.display()),
    )
    .await;
    traffic(c).await;
    let mut udp_lines = Vec::new();
    let mut buf = vec![0u8; 65536];
    while let Ok(n) = udp.recv(&mut buf) {
        let line = String::from_utf8_lossy(&buf[..n]).trim().to_string();
        let done = is_login_response(&line);
        udp_lines.push(line);
        if done {
            break;
        }
    }
    check_lines(c, "tcp", &tcp_lines.join().unwrap()).await;
    check_lines(c, "udp", &udp_lines).await;
    check_lines(c, "unix", &unix_lines.join().unwrap()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn syslog_device_writes_rfc3164_datagrams() {
    let c = &dev_with_userpass().await;
    let dir = tempfile::tempdir().unwrap();
    let log_sock = dir.path().join("dev-log");
    let rx = std::os::unix::net::UnixDatagram::bind(&log_sock).unwrap();
    rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    enable(
        c,
        "syslog",
        &format!(
            r#"{{"type":"syslog","options":{{"facility":"AUTH","tag":"coffer-test","socket_path":"{}"}}}}"#,
            log_sock.display()
        ),
    )
    .await;
    traffic(c).await;
    let mut lines = Vec::new();
    let mut buf = vec![0u8; 65536];
    while let Ok(n) = rx.recv(&mut buf) {
        let msg = String::from_utf8_lossy(&buf[..n]).to_string();
        assert!(msg.starts_with("<38>coffer-test: {"), "facility AUTH, severity info, tag: {msg}");
        let done = is_login_response(&msg);
        lines.push(msg);
        if done {
            break;
        }
    }
    check_lines(c, "syslog", &lines).await;
}

#[tokio::test]
async fn fail_closed_without_a_working_device_and_open_with_one() {
    let c = &dev_with_kv1().await;
    assert_eq!(c.http("PUT", "/v1/kv1/x", &root(), br#"{"v":"hidden-value"}"#).await.0, 204);
    // /dev/full accepts the open and fails every write.
    enable(c, "broken", r#"{"type":"file","options":{"file_path":"/dev/full"}}"#).await;
    let (st, body) = c.http("GET", "/v1/kv1/x", &root(), b"").await;
    assert_eq!(st, 500, "{body}");
    assert!(!body.contains("hidden-value"), "no data when nothing could be audited");
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.log");
    // Enabling needs the request itself to be audited: the broken device fails it too.
    let body = format!(r#"{{"type":"file","options":{{"file_path":"{}"}}}}"#, good.display());
    let (st, _) = c.http("PUT", "/v1/sys/audit/good", &root(), body.as_bytes()).await;
    assert_eq!(st, 500, "enabling is refused while nothing can record it");
    assert_eq!(c.http("DELETE", "/v1/sys/audit/broken", &root(), b"").await.0, 500, "so is disabling");
}

#[tokio::test]
async fn a_second_healthy_device_keeps_requests_flowing_past_a_broken_one() {
    let c = &dev_with_kv1().await;
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.log");
    enable(c, "good", &format!(r#"{{"type":"file","options":{{"file_path":"{}"}}}}"#, good.display())).await;
    enable(c, "broken", r#"{"type":"file","options":{"file_path":"/dev/full"}}"#).await;
    assert_eq!(c.http("PUT", "/v1/kv1/x", &root(), br#"{"v":"1"}"#).await.0, 204);
    let (st, body) = c.http("GET", "/v1/kv1/x", &root(), b"").await;
    assert_eq!(st, 200, "one healthy device is enough: {body}");
    assert!(std::fs::read_to_string(&good).unwrap().contains("kv1/x"), "the healthy device recorded the read");
}

#[tokio::test]
async fn the_rows_audited_flag_decides_what_is_recorded_with_or_without_a_token() {
    // As OpenBao 2.x records them (observed with a declared file device): the status endpoints
    // that answer sealed are never recorded; the ceremonies, a wrapping token's own lookup, the
    // OpenAPI document and the UI's mount listing are, though they need no token.
    // (The unauthenticated ceremonies are served only when the listener allows them.)
    let c = &TestCore::builder()
        .config(
            "listener \"tcp\" {\n  address = \"127.0.0.1:8200\"\n  tls_disable = true\n  \
             disable_unauthed_rekey_endpoints = false\n  disable_unauthed_generate_root_endpoints = false\n}\n",
        )
        .start()
        .await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    enable(c, "file", &format!(r#"{{"type":"file","options":{{"file_path":"{}"}}}}"#, log.display())).await;
    for p in ["seal-status", "leader", "init", "generate-root/attempt", "rekey/init", "internal/ui/mounts"] {
        let (st, b) = c.http("GET", &format!("/v1/sys/{p}"), &[], b"").await;
        assert_eq!(st, 200, "{p}: {b}");
    }
    let (st, b) = c.http("GET", "/v1/sys/internal/specs/openapi", &[], b"").await;
    assert_eq!(st, 200, "{b}");
    let (_, b) = c
        .http(
            "POST",
            "/v1/sys/wrapping/wrap",
            &[("X-Vault-Token", "root"), ("X-Vault-Wrap-TTL", "60")],
            br#"{"a":"b"}"#,
        )
        .await;
    let wrapping = json(&b)["wrap_info"]["token"].as_str().unwrap().to_string();
    let (st, b) =
        c.http("POST", "/v1/sys/wrapping/lookup", &[], format!(r#"{{"token":"{wrapping}"}}"#).as_bytes()).await;
    assert_eq!(st, 200, "{b}");
    let recorded: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(json)
        .filter(|e| e["type"] == "request")
        .map(|e| e["request"]["path"].as_str().unwrap_or_default().to_string())
        .collect();
    for p in [
        "sys/generate-root/attempt",
        "sys/rekey/init",
        "sys/internal/ui/mounts",
        "sys/internal/specs/openapi",
        "sys/wrapping/lookup",
    ] {
        assert!(recorded.iter().any(|r| r == p), "{p} is audited: {recorded:?}");
    }
    for p in ["sys/seal-status", "sys/leader", "sys/init"] {
        assert!(!recorded.iter().any(|r| r == p), "{p} is not audited: {recorded:?}");
    }
}
