//! The differential ACL test: the corpus in tests/acl-corpus (policies and requests, with the
//! statuses real OpenBao returned) runs against a real `bao server -dev` and against Coffer;
//! both must give every recorded status.
mod common;
use common::*;
use std::process::{Command, Stdio};

fn corpus_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/acl-corpus")
}

fn run_corpus(addr: &str) -> (bool, String) {
    let o = Command::new("python3")
        .arg(corpus_dir().join("run.py"))
        .args(["--addr", &format!("http://{addr}"), "--token", "root"])
        .arg("--corpus")
        .arg(corpus_dir().join("corpus.json"))
        .output()
        .expect("python3");
    (o.status.success(), format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
}

#[test]
fn acl_corpus_gives_openbaos_statuses_on_coffer() {
    let server = Server::start_dev("root");
    let (ok, out) = run_corpus(&server.addr);
    let summary = out.lines().last().unwrap_or("").to_string();
    assert!(ok, "Coffer differs from OpenBao:\n{out}");
    let passed: usize = summary.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or(0);
    assert!(passed >= 200, "the corpus must hold at least 200 cases: {summary}");
}

#[test]
fn acl_corpus_still_matches_real_openbao() {
    let Some(bao) = bao_path() else { return };
    let port = free_port();
    let home = tempfile::tempdir().unwrap();
    let mut child = Command::new(&bao)
        .args(["server", "-dev", "-dev-root-token-id=root", &format!("-dev-listen-address=127.0.0.1:{port}")])
        .env("HOME", home.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start bao server -dev");
    let addr = format!("127.0.0.1:{port}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        if http(&addr, "GET", "/v1/sys/health", &[], b"").0 == 200 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let (ok, out) = run_corpus(&addr);
    let _ = child.kill();
    let _ = child.wait();
    assert!(ok, "the corpus no longer matches real OpenBao:\n{out}");
}
