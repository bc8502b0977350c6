//! `sys/raw`: storage through the barrier, as Vault's raw endpoint. Off by default; with
//! `raw_storage_endpoint = true` a root (sudo) token reads, writes, lists and deletes decrypted
//! entries; the barrier's own keys are refused. (`bao read sys/raw/…` against a spawned server:
//! crates/coffer/tests/raw_storage.rs.)
use coffer_testing::{json, TestCore};

#[tokio::test]
async fn raw_endpoint_is_off_unless_configured() {
    let c = TestCore::new().await;
    let (st, body) = c.http("GET", "/v1/sys/raw/core/mounts", &[("X-Vault-Token", &c.root_token)], b"").await;
    assert_eq!(st, 404, "{body}");
    assert!(json(&body)["errors"].is_array());
}

#[tokio::test]
async fn raw_endpoint_reads_writes_lists_deletes_and_refuses_barrier_keys() {
    let c = TestCore::builder().config("raw_storage_endpoint = true\n").start().await;
    let t = [("X-Vault-Token", c.root_token.as_str())];
    // Plaintext in, plaintext out (stored encrypted underneath).
    let (st, body) = c.http("PUT", "/v1/sys/raw/test/hello", &t, br#"{"value":"world"}"#).await;
    assert_eq!(st, 204, "{body}");
    let (st, body) = c.http("GET", "/v1/sys/raw/test/hello", &t, b"").await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(json(&body)["data"]["value"], "world");
    // base64 both ways, for binary values.
    let (st, _) = c.http("PUT", "/v1/sys/raw/test/bin", &t, br#"{"value":"AAEC/w==","encoding":"base64"}"#).await;
    assert_eq!(st, 204);
    let (_, body) = c.http("GET", "/v1/sys/raw/test/bin?encoding=base64", &t, b"").await;
    assert_eq!(json(&body)["data"]["value"], "AAEC/w==");
    let (st, body) = c.http("LIST", "/v1/sys/raw/test", &t, b"").await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(json(&body)["data"]["keys"], serde_json::json!(["bin", "hello"]));
    let (st, body) = c.http("LIST", "/v1/sys/raw", &t, b"").await;
    assert_eq!(st, 200, "{body}");
    assert!(json(&body)["data"]["keys"].as_array().unwrap().contains(&"core/".into()), "{body}");
    // The mount table is readable JSON through the barrier.
    let (st, body) = c.http("GET", "/v1/sys/raw/core/mounts", &t, b"").await;
    assert_eq!(st, 200, "{body}");
    assert!(json(&body)["data"]["value"].as_str().unwrap().contains("\"entries\""), "{body}");
    // The barrier's own entries are refused, whatever the operation.
    for key in ["core/keyring", "core/root-key", "core/seal-config"] {
        for (m, b) in [("GET", &b""[..]), ("PUT", &br#"{"value":"x"}"#[..]), ("DELETE", &b""[..])] {
            let (st, body) = c.http(m, &format!("/v1/sys/raw/{key}"), &t, b).await;
            assert_eq!(st, 400, "{m} {key}: {body}");
            assert!(body.contains("cannot access"), "{body}");
        }
    }
    let (st, _) = c.http("DELETE", "/v1/sys/raw/test/hello", &t, b"").await;
    assert_eq!(st, 204);
    let (st, _) = c.http("GET", "/v1/sys/raw/test/hello", &t, b"").await;
    assert_eq!(st, 404);
    // A token without sudo on sys/raw is refused.
    let user = c.token(&["default"]).await;
    let (st, _) = c.http("GET", "/v1/sys/raw/test/bin", &[("X-Vault-Token", &user)], b"").await;
    assert_eq!(st, 403);
}
