//! `sys/config/cors` and the answers it shapes, in-process through the full router: sudo
//! needed, OpenBao's refusals, preflights (allowed methods and headers, max age, `Vary`),
//! refused origins, the server's own origin not cross-origin, and switching it off. (Across a
//! restart and through the `bao` CLI: crates/coffer/tests/listener_http_options.rs.)
use coffer_testing::{json, TestCore};

/// One request; (status, body).
async fn http(s: &TestCore, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String) {
    s.http(method, path, headers, body).await
}

/// One request; (status, lower-cased head as `name: value` lines, body).
async fn http_full(
    s: &TestCore,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String, String) {
    let r = s.send(method, path, headers, body.to_vec()).await;
    let head: String = r
        .headers
        .iter()
        .map(|(k, v)| format!("{}: {}\r\n", k.as_str(), v.to_str().unwrap_or("")).to_ascii_lowercase())
        .collect();
    (r.status, head, r.body)
}

#[tokio::test]
async fn sys_config_cors_needs_sudo_and_shapes_cross_origin_answers_like_openbao() {
    let s = &TestCore::new().await;
    let t = [("X-Vault-Token", "root")];
    let (c, b) = http(s, "GET", "/v1/sys/config/cors", &t, b"").await;
    assert_eq!(c, 200);
    assert_eq!((json(&b)["enabled"].clone(), json(&b)["data"]["enabled"].clone()), (false.into(), false.into()));

    // Without CORS an Origin changes nothing.
    let (c, head, _) = http_full(s, "GET", "/v1/sys/health", &[("Origin", "http://app.example")], b"").await;
    assert_eq!(c, 200);
    assert!(!head.contains("access-control-allow-origin"), "{head}");

    // sudo is required: a token with every other capability is refused.
    assert_eq!(
        http(
            s,
            "PUT",
            "/v1/sys/policies/acl/all",
            &t,
            br#"{"policy":"path \"*\" { capabilities = [\"create\",\"read\",\"update\",\"delete\",\"list\"] }"}"#
        )
        .await
        .0,
        204
    );
    let (_, b) = http(s, "POST", "/v1/auth/token/create", &t, br#"{"policies":["all"]}"#).await;
    let all = json(&b)["auth"]["client_token"].as_str().unwrap().to_string();
    assert_eq!(http(s, "GET", "/v1/sys/config/cors", &[("X-Vault-Token", &all)], b"").await.0, 403);
    assert_eq!(
        http(s, "PUT", "/v1/sys/config/cors", &[("X-Vault-Token", &all)], br#"{"allowed_origins":"*"}"#).await.0,
        403
    );

    // Bad input: 400 (OpenBao answers these with 500).
    for (body, msg) in [
        (r#"{"enabled":true}"#, "at least one origin or the wildcard must be provided"),
        (
            r#"{"allowed_origins":["*","http://a"]}"#,
            "to allow all origins the '*' must be the only value for allowed_origins",
        ),
    ] {
        let (c, b) = http(s, "PUT", "/v1/sys/config/cors", &t, body.as_bytes()).await;
        assert_eq!((c, json(&b)["errors"][0].as_str()), (400, Some(msg)), "{body}");
    }

    // A write enables CORS; allowed_headers are added to the standard ones.
    let (c, _) = http(
        s,
        "PUT",
        "/v1/sys/config/cors",
        &t,
        br#"{"allowed_origins":"http://app.example, http://other.example","allowed_headers":"X-Custom"}"#,
    )
    .await;
    assert_eq!(c, 204);
    let (_, b) = http(s, "GET", "/v1/sys/config/cors", &t, b"").await;
    let v = json(&b);
    assert_eq!(v["data"]["enabled"], true);
    assert_eq!(v["data"]["allowed_origins"], serde_json::json!(["http://app.example", "http://other.example"]));
    let headers = v["data"]["allowed_headers"].as_array().unwrap();
    assert_eq!(
        (headers[2].as_str(), headers.last().and_then(|h| h.as_str())),
        (Some("X-Vault-Token"), Some("X-Custom"))
    );

    let (c, head, _) = http_full(
        s,
        "OPTIONS",
        "/v1/secret/data/x",
        &[("Origin", "http://app.example"), ("Access-Control-Request-Method", "GET")],
        b"",
    )
    .await;
    assert_eq!(c, 200, "{head}");
    assert!(head.contains("access-control-allow-origin: http://app.example"), "{head}");
    assert!(head.contains("access-control-allow-methods: delete,get,options,post,put,list,patch"), "{head}");
    assert!(head.contains("access-control-allow-headers: content-type,authorization,x-vault-token"), "{head}");
    assert!(head.contains("access-control-max-age: 300") && head.contains("vary: origin"), "{head}");
    let (c, _, _) = http_full(
        s,
        "OPTIONS",
        "/v1/secret/data/x",
        &[("Origin", "http://app.example"), ("Access-Control-Request-Method", "TRACE")],
        b"",
    )
    .await;
    assert_eq!(c, 405);
    let (c, head, _) =
        http_full(s, "GET", "/v1/secret/data/x", &[("Origin", "http://app.example"), ("X-Vault-Token", "root")], b"")
            .await;
    assert_eq!(c, 404);
    assert!(
        head.contains("access-control-allow-origin: http://app.example") && head.contains("vary: origin"),
        "{head}"
    );
    for method in ["GET", "OPTIONS"] {
        let (c, _, body) = http_full(
            s,
            method,
            "/v1/sys/health",
            &[("Origin", "http://evil.example"), ("Access-Control-Request-Method", "GET")],
            b"",
        )
        .await;
        assert_eq!((c, json(&body)["errors"][0].as_str()), (403, Some("origin not allowed")), "{method}");
    }

    // The server's own origin (the web UI writing through fetch) is not cross-origin.
    let own = "http://127.0.0.1:8200";
    let (c, head, _) = http_full(
        s,
        "PUT",
        "/v1/secret/data/y",
        &[("Host", "127.0.0.1:8200"), ("Origin", own), ("X-Vault-Token", "root"), ("Content-Type", "application/json")],
        br#"{"data":{"k":"v"}}"#,
    )
    .await;
    assert_eq!(c, 200, "{head}");
    assert!(!head.contains("access-control-allow-origin"), "{head}");

    // DELETE switches it off again.
    assert_eq!(http(s, "DELETE", "/v1/sys/config/cors", &t, b"").await.0, 204);
    let (_, b) = http(s, "GET", "/v1/sys/config/cors", &t, b"").await;
    assert_eq!(json(&b)["enabled"], false);
    assert_eq!(http(s, "GET", "/v1/sys/health", &[("Origin", "http://evil.example")], b"").await.0, 200);
}
