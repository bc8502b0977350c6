//! Response wrapping and cubbyhole with the real `bao` CLI: wrap a read, look the wrapping
//! token up, unwrap once (a second unwrap fails), wrap a token creation, policy-enforced
//! wrapping TTL bounds, and sys/tools.
mod common;
use common::*;

#[test]
fn wrap_unwrap_once_and_policy_wrapping_bounds() {
    let Some(bao) = bao_path() else { return };
    let server = Server::start_dev("root");
    let run = |t: &str, args: &[&str]| cli(&bao, &server.addr, Some(t), args);
    let ok = |t: &str, args: &[&str]| {
        let o = run(t, args);
        assert!(o.status.success(), "bao {args:?}: {}", out(&o));
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    ok("root", &["secrets", "enable", "-path=kv1", "kv"]);
    ok("root", &["kv", "put", "kv1/db", "password=hunter2"]);
    let wrapped = json(&ok("root", &["kv", "get", "-wrap-ttl=2m", "-format=json", "kv1/db"]));
    let wt = wrapped["wrap_info"]["token"].as_str().unwrap().to_string();
    assert_eq!(wrapped["wrap_info"]["ttl"], 120);
    assert!(wrapped["data"].is_null(), "the secret is not in the wrapped response");
    let look = json(&ok("root", &["write", "-format=json", "sys/wrapping/lookup", &format!("token={wt}")]));
    assert_eq!(look["data"]["creation_path"], "kv1/db");
    let un = json(&ok("root", &["unwrap", "-format=json", &wt]));
    assert_eq!(un["data"]["password"], "hunter2");
    let o = run("root", &["unwrap", &wt]);
    assert_eq!(o.status.code(), Some(2), "a wrapping token is single use: {}", out(&o));

    // A wrapped token creation unwraps into a working token.
    let w = json(&ok("root", &["token", "create", "-policy=default", "-wrap-ttl=5m", "-format=json"]));
    let inner = json(&ok("root", &["unwrap", "-format=json", w["wrap_info"]["token"].as_str().unwrap()]));
    let t = inner["auth"]["client_token"].as_str().unwrap().to_string();
    assert_eq!(w["wrap_info"]["wrapped_accessor"], inner["auth"]["accessor"]);
    ok(&t, &["token", "lookup"]);

    // A policy can demand wrapping within bounds.
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("w.hcl");
    std::fs::write(&f, "path \"kv1/db\" {\n  capabilities = [\"read\"]\n  min_wrapping_ttl = \"1m\"\n  max_wrapping_ttl = \"10m\"\n}\n").unwrap();
    ok("root", &["policy", "write", "wrapped-only", f.to_str().unwrap()]);
    let limited = json(&ok("root", &["token", "create", "-policy=wrapped-only", "-format=json"]))["auth"]
        ["client_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(run(&limited, &["read", "kv1/db"]).status.code(), Some(2), "unwrapped read refused");
    assert_eq!(run(&limited, &["read", "-wrap-ttl=20m", "kv1/db"]).status.code(), Some(2), "too long refused");
    assert!(run(&limited, &["read", "-wrap-ttl=5m", "kv1/db"]).status.success(), "in bounds allowed");

    // Cubbyhole is private to each token; sys/tools work.
    ok(&t, &["write", "cubbyhole/note", "x=mine"]);
    assert_eq!(ok(&t, &["read", "-field=x", "cubbyhole/note"]), "mine");
    assert_eq!(run("root", &["read", "cubbyhole/note"]).status.code(), Some(2), "another token sees nothing");
    let sum = ok("root", &["write", "-field=sum", "sys/tools/hash", "input=YWJj"]);
    assert_eq!(sum, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_eq!(ok("root", &["write", "-field=random_bytes", "sys/tools/random", "bytes=16", "format=hex"]).len(), 32);
}
