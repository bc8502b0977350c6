//! Leases through the real `bao` CLI: service tokens carry leases that can be looked up,
//! listed, renewed and revoked (also by prefix), and the expiration manager revokes a lease
//! on time without anyone asking.
mod common;
use common::*;

#[test]
fn token_leases_lookup_renew_revoke_and_expire_on_time() {
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

    // A short lease is revoked on time by the expiration manager: its token's cubbyhole goes too.
    let short = create("2s");
    ok(&short, &["write", "cubbyhole/x", "v=1"]);
    let keys = json(&ok("root", &["list", "-format=json", "sys/leases/lookup/auth/token/create/"]));
    assert_eq!(keys.as_array().unwrap().len(), 1);
    std::thread::sleep(std::time::Duration::from_millis(4500));
    let o = run("root", &["list", "sys/leases/lookup/auth/token/create/"]);
    assert_eq!(o.status.code(), Some(2), "the expired lease is gone without a lookup: {}", out(&o));
}
