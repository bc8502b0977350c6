//! Response wrapping, cubbyhole and sys/tools over HTTP, in-process: a wrapped read unwraps
//! once, a wrapped token creation unwraps into a working token, a policy's wrapping TTL bounds
//! are enforced, each token's cubbyhole is its own. (Wrapping through the `bao` CLI's
//! `-wrap-ttl` and `bao unwrap`: crates/coffer/tests/e2e_wrapping.rs.)
use coffer_testing::TestCore;
use serde_json::{json, Value};

async fn call(c: &TestCore, method: &str, path: &str, token: &str, wrap: Option<&str>, body: Value) -> (u16, Value) {
    let mut headers = vec![("X-Vault-Token", token)];
    if let Some(ttl) = wrap {
        headers.push(("X-Vault-Wrap-TTL", ttl));
    }
    let b = if body.is_null() { Vec::new() } else { body.to_string().into_bytes() };
    let (st, text) = c.http(method, &format!("/v1/{path}"), &headers, &b).await;
    (st, if text.trim().is_empty() { Value::Null } else { coffer_testing::json(&text) })
}

#[tokio::test]
async fn a_wrapped_answer_unwraps_once_and_a_wrapped_token_creation_into_a_working_token() {
    let c = &TestCore::new().await;
    call(c, "POST", "sys/mounts/kv1", "root", None, json!({ "type": "kv" })).await;
    assert_eq!(call(c, "PUT", "kv1/db", "root", None, json!({ "password": "hunter2" })).await.0, 204);
    let (st, wrapped) = call(c, "GET", "kv1/db", "root", Some("2m"), Value::Null).await;
    assert_eq!(st, 200, "{wrapped}");
    let wt = wrapped["wrap_info"]["token"].as_str().unwrap().to_string();
    assert_eq!(wrapped["wrap_info"]["ttl"], 120);
    assert!(wrapped["data"].is_null(), "the secret is not in the wrapped response");
    let (_, look) = call(c, "PUT", "sys/wrapping/lookup", "root", None, json!({ "token": wt })).await;
    assert_eq!(look["data"]["creation_path"], "kv1/db");
    let (st, un) = call(c, "PUT", "sys/wrapping/unwrap", "root", None, json!({ "token": wt })).await;
    assert_eq!((st, &un["data"]["password"]), (200, &json!("hunter2")), "{un}");
    let (st, again) = call(c, "PUT", "sys/wrapping/unwrap", "root", None, json!({ "token": wt })).await;
    assert_eq!(st, 400, "a wrapping token is single use: {again}");

    let (_, w) = call(c, "POST", "auth/token/create", "root", Some("5m"), json!({ "policies": ["default"] })).await;
    let (_, inner) =
        call(c, "PUT", "sys/wrapping/unwrap", "root", None, json!({ "token": w["wrap_info"]["token"] })).await;
    let t = inner["auth"]["client_token"].as_str().unwrap().to_string();
    assert_eq!(w["wrap_info"]["wrapped_accessor"], inner["auth"]["accessor"]);
    assert_eq!(call(c, "GET", "auth/token/lookup-self", &t, None, Value::Null).await.0, 200);
}

#[tokio::test]
async fn a_policy_bounds_the_wrapping_ttl_cubbyholes_are_private_and_tools_answer() {
    let c = &TestCore::new().await;
    call(c, "POST", "sys/mounts/kv1", "root", None, json!({ "type": "kv" })).await;
    call(c, "PUT", "kv1/db", "root", None, json!({ "password": "hunter2" })).await;
    let policy = "path \"kv1/db\" {\n  capabilities = [\"read\"]\n  min_wrapping_ttl = \"1m\"\n  max_wrapping_ttl = \"10m\"\n}\n";
    assert_eq!(call(c, "PUT", "sys/policies/acl/wrapped-only", "root", None, json!({ "policy": policy })).await.0, 204);
    let limited = c.token(&["wrapped-only"]).await;
    assert_eq!(call(c, "GET", "kv1/db", &limited, None, Value::Null).await.0, 403, "unwrapped read refused");
    assert_eq!(call(c, "GET", "kv1/db", &limited, Some("20m"), Value::Null).await.0, 403, "too long refused");
    assert_eq!(call(c, "GET", "kv1/db", &limited, Some("5m"), Value::Null).await.0, 200, "in bounds allowed");

    let t = c.token(&["default"]).await;
    assert_eq!(call(c, "PUT", "cubbyhole/note", &t, None, json!({ "x": "mine" })).await.0, 204);
    assert_eq!(call(c, "GET", "cubbyhole/note", &t, None, Value::Null).await.1["data"]["x"], "mine");
    assert_eq!(call(c, "GET", "cubbyhole/note", "root", None, Value::Null).await.0, 404, "another token sees nothing");
    let (_, sum) = call(c, "PUT", "sys/tools/hash", "root", None, json!({ "input": "YWJj" })).await;
    assert_eq!(sum["data"]["sum"], "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    let (_, random) = call(c, "PUT", "sys/tools/random", "root", None, json!({ "bytes": 16, "format": "hex" })).await;
    assert_eq!(random["data"]["random_bytes"].as_str().unwrap().len(), 32);
}
