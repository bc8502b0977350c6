//! Leases through the real `bao` CLI: `bao list sys/leases/lookup/…`, `bao lease lookup`,
//! `bao lease renew` (refused for a token's lease, as on OpenBao), `bao token renew` and
//! `bao lease revoke -prefix`. (The same behaviour over HTTP, and the sweeper revoking a due
//! lease, in-process: crates/testing/tests/api/leases.rs.)
mod common;
use common::*;

#[test]
fn bao_lease_commands_list_look_up_renew_and_revoke_token_leases() {
    let Some(bao) = bao_path() else { return };
    let server = Server::start_dev("root");
    let run = |t: &str, args: &[&str]| cli(&bao, &server.addr, Some(t), args);
    let ok = |t: &str, args: &[&str]| {
        let o = run(t, args);
        assert!(o.status.success(), "bao {args:?}: {}", out(&o));
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    let create = |ttl: &str| {
        json(&ok("root", &["token", "create", "-policy=default", &format!("-ttl={ttl}"), "-format=json"]))["auth"]
            ["client_token"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let a = create("1h");
    let b = create("1h");
    let keys = ok("root", &["list", "-format=json", "sys/leases/lookup/auth/token/create/"]);
    let ids: Vec<String> = json(&keys).as_array().unwrap().iter().map(|k| k.as_str().unwrap().to_string()).collect();
    assert_eq!(ids.len(), 2, "each service token with a TTL has a lease: {ids:?}");
    let lease = format!("auth/token/create/{}", ids[0]);
    let look = json(&ok("root", &["lease", "lookup", "-format=json", &lease]));
    assert_eq!(look["data"]["renewable"], true);
    assert!(look["data"]["ttl"].as_i64().unwrap() > 3500);
    // As on OpenBao, a token's lease is renewed through the token, not through sys/leases.
    let refused = run("root", &["lease", "renew", "-increment=2h", &lease]);
    assert_eq!(refused.status.code(), Some(2), "{}", out(&refused));
    assert!(out(&refused).contains("tokens cannot be renewed through this endpoint"), "{}", out(&refused));
    let renewed = json(&ok("root", &["token", "renew", "-increment=2h", "-format=json", &a]));
    assert_eq!(renewed["auth"]["lease_duration"], 7200);

    // Revoking by prefix revokes both tokens.
    ok("root", &["lease", "revoke", "-prefix", "auth/token/create"]);
    for t in [&a, &b] {
        assert_eq!(run(t, &["token", "lookup"]).status.code(), Some(2), "token revoked with its lease");
    }
}
