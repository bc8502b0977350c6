//! Audit devices where the process matters: SIGHUP reopens file devices (log rotation), and the
//! real `bao` CLI lists enabled devices. (The devices themselves, their sinks, HMACs,
//! fail-closed behaviour, declared devices and metrics are checked in-process:
//! crates/testing/tests/api/audit.rs and crates/testing/tests/metrics.rs.)
mod common;
use common::*;
use std::time::Duration;

fn root() -> [(&'static str, &'static str); 1] {
    [("X-Vault-Token", "root")]
}

fn enable(addr: &str, path: &str, body: &str) {
    let (st, b) = http(addr, "PUT", &format!("/v1/sys/audit/{path}"), &root(), body.as_bytes());
    assert_eq!(st, 204, "enable audit {path}: {b}");
}

#[test]
fn sighup_reopens_file_devices_and_a_broken_device_does_not_stop_requests() {
    let s = Server::start_dev("root");
    assert_eq!(http(&s.addr, "POST", "/v1/sys/mounts/kv1", &root(), br#"{"type":"kv"}"#).0, 204);
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.log");
    enable(&s.addr, "good", &format!(r#"{{"type":"file","options":{{"file_path":"{}"}}}}"#, good.display()));
    enable(&s.addr, "broken", r#"{"type":"file","options":{"file_path":"/dev/full"}}"#);
    assert_eq!(http(&s.addr, "PUT", "/v1/kv1/x", &root(), br#"{"v":"1"}"#).0, 204);
    let (st, body) = http(&s.addr, "GET", "/v1/kv1/x", &root(), b"");
    assert_eq!(st, 200, "one healthy device is enough: {body}");
    // Log rotation: move the file away, SIGHUP, and new entries go to a new file.
    let rotated = dir.path().join("good.log.1");
    std::fs::rename(&good, &rotated).unwrap();
    let pid = s.child.id().to_string();
    assert!(std::process::Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(http(&s.addr, "GET", "/v1/kv1/x", &root(), b"").0, 200);
    let fresh = std::fs::read_to_string(&good).expect("a new file after SIGHUP");
    assert!(fresh.contains("kv1/x"));
    assert!(!std::fs::read_to_string(&rotated).unwrap().is_empty());
}

#[test]
fn bao_audit_list_shows_an_enabled_file_device() {
    let Some(bao) = bao_path() else { return };
    let s = Server::start_dev("root");
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    enable(&s.addr, "file", &format!(r#"{{"type":"file","options":{{"file_path":"{}"}}}}"#, log.display()));
    let o = cli(&bao, &s.addr, Some("root"), &["audit", "list"]);
    assert!(out(&o).contains("file/"), "{}", out(&o));
}
