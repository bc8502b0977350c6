//! Response wrapping with the real `bao` CLI: `-wrap-ttl` on a read, `bao write
//! sys/wrapping/lookup`, `bao unwrap` once (a second unwrap fails), a wrapped `bao token
//! create`. (The same over HTTP, policy wrapping bounds, cubbyhole privacy and sys/tools,
//! in-process: crates/testing/tests/api/wrapping.rs.)
mod common;
use common::*;

#[test]
fn bao_wraps_reads_and_token_creations_and_unwraps_once() {
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
}
