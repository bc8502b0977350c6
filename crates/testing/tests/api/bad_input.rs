//! Bad input gets a clear Vault-style error with the right status, never a panic or a hang,
//! and the core keeps serving afterwards; sys/health's codes follow its query parameters.
//! In-process through the full router (the refused configuration file, which is about the
//! process's exit, stays in crates/coffer/tests/bad_input.rs).
use coffer_testing::{json, PanicWatch, TestCore};

async fn unseal(c: &TestCore, keys: &[String]) {
    for k in keys {
        let (st, body) = c.http("PUT", "/v1/sys/unseal", &[], format!("{{\"key\":\"{k}\"}}").as_bytes()).await;
        assert_eq!(st, 200, "unseal: {body}");
    }
    let (_, body) = c.http("GET", "/v1/sys/seal-status", &[], b"").await;
    assert!(body.contains("\"sealed\":false"), "still sealed: {body}");
}

#[tokio::test]
async fn bad_requests_get_clear_errors_and_the_core_keeps_serving() {
    let panics = PanicWatch::start();
    let c = TestCore::builder().uninitialized().file_storage().start().await;

    // Sealed and uninitialised states.
    let (st, _) = c.http("GET", "/v1/sys/health", &[], b"").await;
    assert_eq!(st, 501, "uninitialised health");
    let (st, body) = c.http("PUT", "/v1/sys/unseal", &[], br#"{"key":"abc"}"#).await;
    assert_eq!(st, 400, "{body}");
    let (st, body) = c.http("PUT", "/v1/sys/init", &[], br#"{"secret_shares":2,"secret_threshold":3}"#).await;
    assert_eq!((st, json(&body)["errors"][0].as_str().unwrap()), (400, "threshold cannot be larger than shares"));
    let (st, _) = c.http("PUT", "/v1/sys/init", &[], br#"{"secret_shares":"five"}"#).await;
    assert_eq!(st, 400, "wrong type for secret_shares");

    // Initialised over HTTP with 5 shares, threshold 3.
    let (st, body) = c.http("PUT", "/v1/sys/init", &[], br#"{"secret_shares":5,"secret_threshold":3}"#).await;
    assert_eq!(st, 200, "init: {body}");
    let v = json(&body);
    let keys: Vec<String> =
        v["keys_base64"].as_array().unwrap().iter().map(|k| k.as_str().unwrap().to_string()).collect();
    let root = v["root_token"].as_str().unwrap().to_string();
    unseal(&c, &keys[..3]).await;
    let t = [("X-Vault-Token", root.as_str())];
    assert_eq!(c.http("POST", "/v1/sys/mounts/kv", &t, br#"{"type":"kv"}"#).await.0, 204);

    type Case<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>, Vec<u8>, u16, &'a str);
    let cases: Vec<Case> = vec![
        ("PUT", "/v1/kv/x", t.to_vec(), b"{\"a\":".to_vec(), 400, "failed to decode JSON input"),
        ("PUT", "/v1/kv/x", t.to_vec(), b"[1,2]".to_vec(), 400, "expected a JSON object"),
        ("PUT", "/v1/kv/x", t.to_vec(), b"{}".to_vec(), 400, "missing data fields"),
        ("PUT", "/v1/kv/dir/", t.to_vec(), b"{\"a\":1}".to_vec(), 400, "cannot write to a path ending in '/'"),
        // `type` is a string field: a number is its text, as OpenBao reads it.
        (
            "POST",
            "/v1/sys/mounts/y",
            t.to_vec(),
            b"{\"type\":123}".to_vec(),
            400,
            "plugin not found in the catalog: 123",
        ),
        ("POST", "/v1/sys/mounts/y", t.to_vec(), b"{\"type\":\"nosuch\"}".to_vec(), 400, "plugin not found"),
        ("POST", "/v1/sys/mounts/y", t.to_vec(), b"{\"type\":\"kv\",\"local\":\"notbool\"}".to_vec(), 400, "boolean"),
        ("POST", "/v1/sys/mounts/kv/tune", t.to_vec(), b"{\"default_lease_ttl\":\"abc\"}".to_vec(), 400, "duration"),
        ("POST", "/v1/sys/mounts/kv", t.to_vec(), b"{\"type\":\"kv\"}".to_vec(), 400, "path is already in use"),
        ("GET", "/v1/nonexistent/foo", t.to_vec(), vec![], 404, "no handler for route"),
        ("GET", "/v1/nonexistent/foo", vec![], vec![], 403, "permission denied"),
        ("GET", "/v1/kv/x", vec![("X-Vault-Token", "s.notarealtokennotarealtok")], vec![], 403, "permission denied"),
        ("GET", "/v1/sys/nope", t.to_vec(), vec![], 404, "unsupported path"),
        ("DELETE", "/v1/sys/seal-status", t.to_vec(), vec![], 405, ""),
        ("DELETE", "/v1/sys/key-status", t.to_vec(), vec![], 405, "unsupported operation"),
        ("FOO", "/v1/kv/x", t.to_vec(), vec![], 405, ""),
        ("GET", "/v1/kv/missing", t.to_vec(), vec![], 404, ""),
        ("GET", "/v1/sys/health?activecode=abc", vec![], vec![], 400, ""),
        ("POST", "/v1/sys/rotate/config", t.to_vec(), b"{\"max_operations\":1}".to_vec(), 400, "max_operations"),
        ("POST", "/v1/sys/remount", t.to_vec(), b"{\"from\":\"nope\",\"to\":\"x\"}".to_vec(), 400, "no matching mount"),
        ("PUT", "/v1/sys/unseal", vec![], b"{}".to_vec(), 400, "'key' must be specified"),
    ];
    for (method, path, headers, body, want, msg) in cases {
        let (st, got) = c.http(method, path, &headers, &body).await;
        assert_eq!(st, want, "{method} {path}: {got}");
        let v = json(&got);
        let errors = v["errors"].as_array().unwrap_or_else(|| panic!("{method} {path}: no errors array: {got}"));
        if !msg.is_empty() {
            assert!(errors.iter().any(|e| e.as_str().unwrap().contains(msg)), "{method} {path}: want {msg:?} in {got}");
        }
    }

    // An oversized body: 413 with a clear message.
    let big = vec![b'a'; 33 * 1024 * 1024];
    let (st, body) = c.http("PUT", "/v1/kv/big", &t, &big).await;
    assert_eq!(st, 413, "{body}");
    assert!(body.contains("request body too large"));

    // Wrong unseal keys: progress accepted, then a clear 400 and progress reset; data safe.
    assert_eq!(c.http("PUT", "/v1/sys/seal", &t, b"").await.0, 204);
    let (st, _) = c.http("GET", "/v1/kv/x", &t, b"").await;
    assert_eq!(st, 503, "a sealed core answers 503");
    let mut wrong = keys[0].clone().into_bytes();
    wrong[10] = if wrong[10] == b'A' { b'B' } else { b'A' };
    let wrong = String::from_utf8(wrong).unwrap();
    for k in [&wrong, &keys[1]] {
        assert_eq!(c.http("PUT", "/v1/sys/unseal", &[], format!("{{\"key\":\"{k}\"}}").as_bytes()).await.0, 200);
    }
    let (st, body) = c.http("PUT", "/v1/sys/unseal", &[], format!("{{\"key\":\"{}\"}}", keys[2]).as_bytes()).await;
    assert_eq!(st, 400, "a wrong share fails at the threshold: {body}");
    let (_, body) = c.http("GET", "/v1/sys/seal-status", &[], b"").await;
    assert_eq!(json(&body)["progress"], 0, "progress reset after a failed combination");
    unseal(&c, &keys[2..5]).await;

    // Still serving normally, and nothing panicked.
    let (st, _) = c.http("PUT", "/v1/kv/ok", &t, br#"{"fine":"yes"}"#).await;
    assert_eq!(st, 204);
    let (st, body) = c.http("GET", "/v1/kv/ok", &t, b"").await;
    assert_eq!((st, json(&body)["data"]["fine"].as_str()), (200, Some("yes")));
    assert_eq!(panics.seen(), Vec::<String>::new(), "something panicked");
}

#[tokio::test]
async fn health_codes_follow_the_query_parameters() {
    let c = TestCore::new().await;
    assert_eq!(c.http("GET", "/v1/sys/health", &[], b"").await.0, 200);
    assert_eq!(c.http("HEAD", "/v1/sys/health", &[], b"").await.0, 200);
    assert_eq!(c.http("GET", "/v1/sys/health?activecode=299", &[], b"").await.0, 299);
    let (st, body) = c.http("GET", "/v1/sys/health?activecode=204", &[], b"").await;
    assert_eq!((st, body.as_str()), (204, ""));
    assert_eq!(c.http("PUT", "/v1/sys/seal", &[("X-Vault-Token", "root")], b"").await.0, 204);
    assert_eq!(c.http("GET", "/v1/sys/health", &[], b"").await.0, 503);
    assert_eq!(c.http("GET", "/v1/sys/health?sealedcode=200", &[], b"").await.0, 200);
    let (_, body) = c.http("GET", "/v1/sys/health", &[], b"").await;
    let v = json(&body);
    assert_eq!((v["sealed"].as_bool(), v["standby"].as_bool()), (Some(true), Some(true)));
    assert!(v.get("cluster_id").is_none(), "a sealed core does not reveal its cluster id");
}
