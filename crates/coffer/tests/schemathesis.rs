//! Fuzzes a dev server with schemathesis, driven by the OpenAPI document the server serves
//! (tests/schemathesis/run.py): kv v1, kv v2, userpass and approle mounted (transit and totp
//! too when this build has them), root token. No request may get a 5xx answer (but the few
//! OpenBao gives too, listed in tests/schemathesis/hooks.py) and the server must not panic.
mod common;
mod python;
use common::*;
use std::process::Command;
use std::time::Duration;

const ROOT: &[(&str, &str)] = &[("X-Vault-Token", "root")];

fn ok(addr: &str, method: &str, path: &str, body: &str) {
    let (st, b) = http(addr, method, path, ROOT, body.as_bytes());
    assert!(st == 200 || st == 204, "{method} {path}: {st} {b}");
}

#[test]
fn schemathesis_finds_no_server_errors() {
    if !python::ensure("schemathesis", "schemathesis") {
        return;
    }
    let server = Server::start_dev("root");
    let addr = server.addr.clone();
    ok(&addr, "POST", "/v1/sys/mounts/kv", r#"{"type":"kv"}"#);
    ok(&addr, "POST", "/v1/sys/mounts/kv2", r#"{"type":"kv-v2"}"#);
    for ty in ["transit", "totp"] {
        let _ = http(&addr, "POST", &format!("/v1/sys/mounts/{ty}"), ROOT, format!(r#"{{"type":"{ty}"}}"#).as_bytes());
    }
    ok(&addr, "POST", "/v1/sys/auth/userpass", r#"{"type":"userpass"}"#);
    ok(&addr, "POST", "/v1/sys/auth/approle", r#"{"type":"approle"}"#);
    // Some data, so that reads and deletes meet existing objects too.
    ok(&addr, "POST", "/v1/kv/foo", r#"{"a":"b"}"#);
    ok(&addr, "POST", "/v1/kv2/data/foo", r#"{"data":{"a":"b"}}"#);
    ok(&addr, "POST", "/v1/auth/userpass/users/alice", r#"{"password":"pw","token_policies":"default"}"#);
    ok(&addr, "POST", "/v1/auth/approle/role/app", r#"{"token_policies":"default"}"#);

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/schemathesis/run.py");
    let work = tempfile::tempdir().unwrap();
    let out_path = work.path().join("run.out");
    // Bounded: a few minutes at most.
    let (status, output) = run_bounded(
        Command::new("python3")
            .args([script, "--addr", &addr, "--token", "root", "--max-examples", "5", "--workdir"])
            .arg(work.path()),
        &out_path,
        Duration::from_secs(600),
    );
    let summary = output.lines().rev().find(|l| l.starts_with("schemathesis:")).unwrap_or("(no summary)");
    eprintln!("{summary}");
    let log = server.log_text();
    assert!(!log.contains("panicked"), "the server panicked during the run:\n{log}");
    let Some(status) = status else { panic!("schemathesis did not finish within 10 minutes:\n{output}") };
    assert!(status.success(), "schemathesis found server errors:\n{output}");
    assert_eq!(http(&addr, "GET", "/v1/sys/seal-status", &[], b"").0, 200, "the server is still up");
}
