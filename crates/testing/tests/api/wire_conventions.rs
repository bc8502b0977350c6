//! HTTP conventions the differential wire suite found Coffer answering unlike OpenBao, checked
//! in-process through the full router: how an unserved method or an unknown path is refused,
//! the wrapping-token check of sys/wrapping/*, 202 for tidy, and the default JSON and form
//! limits. (The raw-HTTP cases, which need a socket, stay in crates/coffer/tests/wire_conventions.rs.)
use coffer_testing::{json, TestCore};

#[tokio::test]
async fn system_paths_refuse_unserved_methods_with_405_and_unknown_paths_with_404() {
    let a = TestCore::new().await;
    let t = [("X-Vault-Token", "root")];
    let patch = [("X-Vault-Token", "root"), ("Content-Type", "application/merge-patch+json")];
    assert_eq!(a.http("POST", "/v1/sys/mounts/kv", &t, br#"{"type":"kv"}"#).await.0, 204);
    type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], u16);
    let cases: &[Case] = &[
        // A known path, an operation it does not serve: 405.
        ("PUT", "/v1/sys/auth", &t, 405),
        ("DELETE", "/v1/sys/auth", &t, 405),
        ("POST", "/v1/sys/policy", &t, 405),
        ("GET", "/v1/sys/policies/acl", &t, 405),
        ("DELETE", "/v1/sys/policies/acl", &t, 405),
        ("HEAD", "/v1/sys/mounts", &t, 405),
        ("HEAD", "/v1/kv/x", &t, 405),
        // No path of the table (a LIST adds a slash): 404.
        ("LIST", "/v1/sys/auth", &t, 404),
        ("LIST", "/v1/sys/wrapping/wrap", &t, 404),
        ("GET", "/v1/sys/wrapping/nope", &t, 404),
        ("HEAD", "/v1/sys/nonexistent", &t, 404),
        ("HEAD", "/v1/nomount/x", &t, 404),
        ("LIST", "/v1/auth/token/roles/x", &t, 404),
        // An unknown method stays a bare 405.
        ("FOO", "/v1/sys/nonexistent", &t, 405),
        // A LIST below a policy name: the old path lists nothing, the new one finds nothing.
        ("LIST", "/v1/sys/policy/default", &t, 200),
        ("LIST", "/v1/sys/policies/acl/default", &t, 404),
        ("PATCH", "/v1/sys/policies/acl/nope", &patch, 400),
        ("PATCH", "/v1/kv/", &patch, 400),
        ("GET", "/v1", &t, 404),
    ];
    for (m, p, h, want) in cases {
        let (st, body) = a.http(m, p, h, b"").await;
        assert_eq!(st, *want, "{m} {p}: {body}");
    }
    let (_, b) = a.http("LIST", "/v1/sys/policy/default", &t, b"").await;
    assert_eq!(json(&b)["policies"], serde_json::Value::Null, "{b}");
    let (_, b) = a.http("PATCH", "/v1/sys/policies/acl/nope", &patch, b"{}").await;
    assert_eq!(json(&b)["errors"][0], "policy not found");
    let (_, b) = a.http("GET", "/v1", &t, b"").await;
    assert_eq!(json(&b)["errors"], serde_json::json!([]), "{b}");
    let (st, b) = a.http("GET", "/v1/sys/policies/password/nope", &t, b"").await;
    assert_eq!((st, json(&b)["errors"][0].as_str()), (404, Some("policy does not exist")), "{b}");
    let (st, b) = a.http("GET", "/v1/sys/health?standbyok=junk", &[], b"").await;
    assert_eq!((st, json(&b)["errors"].clone()), (400, serde_json::json!([])), "{b}");
    // Tuning a KV mount to another version is an upgrade, announced in a warning (200).
    assert_eq!(a.http("POST", "/v1/sys/mounts/upg", &t, br#"{"type":"kv"}"#).await.0, 204);
    let (st, b) = a.http("POST", "/v1/sys/mounts/upg/tune", &t, br#"{"options":{"version":"2"}}"#).await;
    assert_eq!(st, 200, "{b}");
    assert!(json(&b)["warnings"][0].as_str().unwrap().starts_with("Upgrading mount from version 1 to version 2"));
    // PATCH of an existing policy replaces its text.
    let pol = r#"{"policy":"path \"a\" { capabilities = [\"read\"] }"}"#;
    assert_eq!(a.http("PUT", "/v1/sys/policies/acl/p1", &t, pol.as_bytes()).await.0, 204);
    let pol2 = r#"{"policy":"path \"b\" { capabilities = [\"read\"] }"}"#;
    assert_eq!(a.http("PATCH", "/v1/sys/policies/acl/p1", &patch, pol2.as_bytes()).await.0, 204);
    let (_, b) = a.http("GET", "/v1/sys/policies/acl/p1", &t, b"").await;
    assert!(json(&b)["data"]["policy"].as_str().unwrap().contains("\"b\""), "{b}");
}

#[tokio::test]
async fn wrapping_paths_check_the_wrapping_token_first_whatever_the_method() {
    let a = TestCore::new().await;
    let t = [("X-Vault-Token", "root")];
    let (st, b) = a.http("POST", "/v1/sys/wrapping/wrap", &[t[0], ("X-Vault-Wrap-TTL", "300")], br#"{"x":"y"}"#).await;
    assert_eq!(st, 200, "{b}");
    let w = json(&b)["wrap_info"]["token"].as_str().unwrap().to_string();
    // The wrapping token as a query parameter, no other token: a lookup.
    let (st, b) = a.http("GET", &format!("/v1/sys/wrapping/lookup?token={w}"), &[], b"").await;
    assert_eq!((st, json(&b)["data"]["creation_path"].as_str()), (200, Some("sys/wrapping/wrap")), "{b}");
    // The wrapping token as the request's token: a lookup too, which does not spend it.
    let wt = [("X-Vault-Token", w.as_str())];
    let (st, b) = a.http("GET", "/v1/sys/wrapping/lookup", &wt, b"").await;
    assert_eq!(st, 200, "{b}");
    let (st, _) = a
        .http("PATCH", "/v1/sys/wrapping/lookup", &[wt[0], ("Content-Type", "application/merge-patch+json")], b"{}")
        .await;
    assert_eq!(st, 405, "a valid wrapping token, an unserved method");
    // Anything that is not a wrapping token: 400, whatever the method.
    for (m, h) in [("GET", t[0]), ("DELETE", t[0]), ("GET", ("X-Vault-Token", "junk")), ("POST", t[0])] {
        let (st, b) = a.http(m, "/v1/sys/wrapping/lookup", &[h], b"").await;
        assert_eq!((st, json(&b)["errors"][0].as_str()), (400, Some("wrapping token is not valid or does not exist")));
    }
    let (st, _) = a.http("GET", "/v1/sys/wrapping/unwrap", &t, b"").await;
    assert_eq!(st, 400);
    // HEAD too: 400 for a token that is not a wrapping token, 405 for one that is.
    assert_eq!(a.http("HEAD", "/v1/sys/wrapping/lookup", &t, b"").await.0, 400);
    assert_eq!(a.http("HEAD", "/v1/sys/wrapping/lookup", &wt, b"").await.0, 405);
    // The looked-up token still unwraps once.
    let (st, b) = a.http("POST", "/v1/sys/wrapping/unwrap", &wt, b"").await;
    assert_eq!((st, json(&b)["data"]["x"].as_str()), (200, Some("y")), "{b}");
}

#[tokio::test]
async fn tidy_endpoints_answer_202_accepted() {
    let a = TestCore::new().await;
    let t = [("X-Vault-Token", "root")];
    let (st, b) = a.http("POST", "/v1/auth/token/tidy", &t, b"{}").await;
    assert_eq!(st, 202, "{b}");
    assert!(json(&b)["warnings"][0].as_str().unwrap().starts_with("Tidy operation successfully started"));
    assert_eq!(a.http("POST", "/v1/sys/auth/approle", &t, br#"{"type":"approle"}"#).await.0, 204);
    let (st, b) = a.http("POST", "/v1/auth/approle/tidy/secret-id", &t, b"{}").await;
    assert_eq!(st, 202, "{b}");
}

#[tokio::test]
async fn json_and_form_complexity_limits_apply_by_default() {
    let a = TestCore::new().await;
    let t = [("X-Vault-Token", "root")];
    assert_eq!(a.http("POST", "/v1/sys/mounts/kv", &t, br#"{"type":"kv"}"#).await.0, 204);
    // 1000 strings (the key counts) pass, 1001 do not.
    let strings = |n: usize| format!("{{\"a\":[{}\"x\"]}}", "\"x\",".repeat(n - 2));
    assert_eq!(a.http("PUT", "/v1/kv/s", &t, strings(1000).as_bytes()).await.0, 204);
    let (st, b) = a.http("PUT", "/v1/kv/s", &t, strings(1001).as_bytes()).await;
    assert_eq!(st, 400, "{b}");
    assert_eq!(json(&b)["errors"][0], "refused JSON input due to high complexity: exceeded maximum number of strings");
    // About 34 MB of parsed values: a 4 MB array of numbers is refused.
    let nums = format!("{{\"a\":[{}1]}}", "1,".repeat(2_000_000));
    let (st, b) = a.http("PUT", "/v1/kv/n", &t, nums.as_bytes()).await;
    assert_eq!(st, 400, "{b}");
    assert!(json(&b)["errors"][0].as_str().unwrap().contains("exceeded maximum estimated memory limits"));
    // A form of 10000 fields passes, one more does not.
    let form = |n: usize| (0..n).map(|i| format!("k{i}=v")).collect::<Vec<_>>().join("&");
    let ft = [t[0], ("Content-Type", "application/x-www-form-urlencoded")];
    assert_eq!(a.http("PUT", "/v1/kv/f", &ft, form(10_000).as_bytes()).await.0, 204);
    let (st, b) = a.http("PUT", "/v1/kv/f", &ft, form(10_001).as_bytes()).await;
    assert_eq!((st, json(&b)["errors"][0].as_str()), (400, Some("error parsing form data")));
}
