//! Leases and the expiration manager, in-process: service tokens carry leases that are listed,
//! looked up, renewed through the token (not sys/leases, as on OpenBao) and revoked by prefix,
//! and a due lease is revoked by the sweeper without anyone asking. (The `bao lease …`
//! commands against a spawned server: crates/coffer/tests/e2e_leases.rs.)
use coffer_testing::TestCore;
use serde_json::json;

async fn token(c: &TestCore, ttl: &str) -> String {
    let r = c.write("auth/token/create", json!({ "policies": ["default"], "ttl": ttl })).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["auth"]["client_token"].as_str().unwrap().to_string()
}

fn keys(r: &coffer_testing::Response) -> Vec<String> {
    r.json()["data"]["keys"].as_array().unwrap().iter().map(|k| k.as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn token_leases_are_listed_looked_up_renewed_through_the_token_and_revoked_by_prefix() {
    let c = &TestCore::new().await;
    let a = token(c, "1h").await;
    let b = token(c, "1h").await;
    let listed = c.list("sys/leases/lookup/auth/token/create/").await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    let ids = keys(&listed);
    assert_eq!(ids.len(), 2, "each service token with a TTL has a lease: {ids:?}");
    let lease = format!("auth/token/create/{}", ids[0]);
    let look = c.write("sys/leases/lookup", json!({ "lease_id": lease })).await;
    assert_eq!(look.status, 200, "{}", look.body);
    assert_eq!(look.json()["data"]["renewable"], true);
    assert!(look.json()["data"]["ttl"].as_i64().unwrap() > 3500);
    assert_eq!(look.json()["data"]["id"], lease.as_str());
    // As on OpenBao, a token's lease is renewed through the token, not through sys/leases.
    let refused = c.write("sys/leases/renew", json!({ "lease_id": lease, "increment": "2h" })).await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(refused.body.contains("tokens cannot be renewed through this endpoint"), "{}", refused.body);
    let renewed = c.write("auth/token/renew", json!({ "token": a, "increment": "2h" })).await;
    assert_eq!(renewed.json()["auth"]["lease_duration"], 7200, "{}", renewed.body);
    // An unknown lease: 400, as OpenBao answers it.
    assert_eq!(c.write("sys/leases/lookup", json!({ "lease_id": "auth/token/create/nope" })).await.status, 400);

    // Revoking by prefix revokes both tokens.
    assert_eq!(c.write("sys/leases/revoke-prefix/auth/token/create", json!({})).await.status, 204);
    for t in [&a, &b] {
        let r = c.request("GET", "auth/token/lookup-self", Some(t), None).await;
        assert_eq!(r.status, 403, "token revoked with its lease: {}", r.body);
    }
    assert_eq!(c.list("sys/leases/lookup/auth/token/create/").await.status, 404);
}

#[tokio::test]
async fn the_sweeper_revokes_a_due_lease_and_its_token_without_anyone_asking() {
    let c = &TestCore::new().await;
    let short = token(c, "1s").await;
    let long = token(c, "1h").await;
    assert_eq!(c.request("PUT", "cubbyhole/x", Some(&short), Some(&json!({ "v": "1" }))).await.status, 204);
    assert_eq!(keys(&c.list("sys/leases/lookup/auth/token/create/").await).len(), 2);
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    // One sweep (the server's background task runs the same every second).
    c.core.expire_due().await.unwrap();
    let left = keys(&c.list("sys/leases/lookup/auth/token/create/").await);
    assert_eq!(left.len(), 1, "only the long lease is left: {left:?}");
    assert_eq!(c.request("GET", "auth/token/lookup-self", Some(&short), None).await.status, 403);
    assert_eq!(c.request("GET", "auth/token/lookup-self", Some(&long), None).await.status, 200);
}
