//! The differential ACL test: the corpus in tests/acl-corpus (policies and requests, with the
//! statuses real OpenBao returned) runs against a real `bao server -dev` and against Coffer;
//! both must give every recorded status.
mod common;
use common::*;
use std::process::Command;

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
    let real = RealBao::start(&bao);
    let (ok, out) = run_corpus(&real.addr);
    assert!(ok, "the corpus no longer matches real OpenBao:\n{out}");
}

/// What a token holding only the `default` policy may do, as `sys/internal/ui/resultant-acl`
/// shows it (the web UI reads it): the same paths and capabilities on both servers.
#[test]
fn the_default_policy_grants_what_openbaos_grants() {
    let Some(bao) = bao_path() else { return };
    let real = RealBao::start(&bao);
    let coffer = Server::start_dev("root");
    let acl_of = |addr: &str| {
        let root: &[(&str, &str)] = &[("X-Vault-Token", "root")];
        let (_, b) = http(addr, "POST", "/v1/auth/token/create", root, br#"{"policies":["default"]}"#);
        let t = json(&b)["auth"]["client_token"].as_str().unwrap().to_string();
        let (st, b) = http(addr, "GET", "/v1/sys/internal/ui/resultant-acl", &[("X-Vault-Token", &t)], b"");
        assert_eq!(st, 200, "{b}");
        let mut d = json(&b)["data"].clone();
        // Capabilities as sets: the order of the list is not part of the grant.
        for kind in ["exact_paths", "glob_paths"] {
            for (_, rule) in d[kind].as_object_mut().unwrap() {
                let mut caps: Vec<String> =
                    rule["capabilities"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_string()).collect();
                caps.sort();
                *rule = serde_json::json!({ "capabilities": caps });
            }
        }
        d
    };
    assert_eq!(acl_of(&coffer.addr), acl_of(&real.addr));
}
