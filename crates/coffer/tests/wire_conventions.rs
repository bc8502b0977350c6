//! HTTP conventions the differential wire suite found Coffer answering unlike OpenBao, each
//! checked against the real binary: how an unserved method or an unknown path is refused, the
//! wrapping-token check of sys/wrapping/*, 202 for tidy, the default JSON and form limits, and
//! the raw-HTTP cases (OPTIONS *, chunked twice, X-Vault-Index, half-close, redirects).
mod common;
use common::*;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

/// Sends raw bytes (optionally half-closing after them) and returns the whole answer.
fn raw(addr: &str, bytes: &[u8], half_close: bool) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(bytes).unwrap();
    if half_close {
        s.shutdown(Shutdown::Write).unwrap();
    }
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn status_of(answer: &str) -> u16 {
    answer.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
}

#[test]
fn system_paths_refuse_unserved_methods_with_405_and_unknown_paths_with_404() {
    let s = Server::start_dev("root");
    let a = s.addr.as_str();
    let t = [("X-Vault-Token", "root")];
    let patch = [("X-Vault-Token", "root"), ("Content-Type", "application/merge-patch+json")];
    assert_eq!(http(a, "POST", "/v1/sys/mounts/kv", &t, br#"{"type":"kv"}"#).0, 204);
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
        let (st, body) = http(a, m, p, h, b"");
        assert_eq!(st, *want, "{m} {p}: {body}");
    }
    let (_, b) = http(a, "LIST", "/v1/sys/policy/default", &t, b"");
    assert_eq!(json(&b)["policies"], serde_json::Value::Null, "{b}");
    let (_, b) = http(a, "PATCH", "/v1/sys/policies/acl/nope", &patch, b"{}");
    assert_eq!(json(&b)["errors"][0], "policy not found");
    let (_, b) = http(a, "GET", "/v1", &t, b"");
    assert_eq!(json(&b)["errors"], serde_json::json!([]), "{b}");
    let (st, b) = http(a, "GET", "/v1/sys/policies/password/nope", &t, b"");
    assert_eq!((st, json(&b)["errors"][0].as_str()), (404, Some("policy does not exist")), "{b}");
    let (st, b) = http(a, "GET", "/v1/sys/health?standbyok=junk", &[], b"");
    assert_eq!((st, json(&b)["errors"].clone()), (400, serde_json::json!([])), "{b}");
    // Tuning a KV mount to another version is an upgrade, announced in a warning (200).
    assert_eq!(http(a, "POST", "/v1/sys/mounts/upg", &t, br#"{"type":"kv"}"#).0, 204);
    let (st, b) = http(a, "POST", "/v1/sys/mounts/upg/tune", &t, br#"{"options":{"version":"2"}}"#);
    assert_eq!(st, 200, "{b}");
    assert!(json(&b)["warnings"][0].as_str().unwrap().starts_with("Upgrading mount from version 1 to version 2"));
    // PATCH of an existing policy replaces its text.
    let pol = r#"{"policy":"path \"a\" { capabilities = [\"read\"] }"}"#;
    assert_eq!(http(a, "PUT", "/v1/sys/policies/acl/p1", &t, pol.as_bytes()).0, 204);
    let pol2 = r#"{"policy":"path \"b\" { capabilities = [\"read\"] }"}"#;
    assert_eq!(http(a, "PATCH", "/v1/sys/policies/acl/p1", &patch, pol2.as_bytes()).0, 204);
    let (_, b) = http(a, "GET", "/v1/sys/policies/acl/p1", &t, b"");
    assert!(json(&b)["data"]["policy"].as_str().unwrap().contains("\"b\""), "{b}");
}

#[test]
fn wrapping_paths_check_the_wrapping_token_first_whatever_the_method() {
    let s = Server::start_dev("root");
    let a = s.addr.as_str();
    let t = [("X-Vault-Token", "root")];
    let wrap = |a: &str| {
        let (st, b) = http(a, "POST", "/v1/sys/wrapping/wrap", &[t[0], ("X-Vault-Wrap-TTL", "300")], br#"{"x":"y"}"#);
        assert_eq!(st, 200, "{b}");
        json(&b)["wrap_info"]["token"].as_str().unwrap().to_string()
    };
    let w = wrap(a);
    // The wrapping token as a query parameter, no other token: a lookup.
    let (st, b) = http(a, "GET", &format!("/v1/sys/wrapping/lookup?token={w}"), &[], b"");
    assert_eq!((st, json(&b)["data"]["creation_path"].as_str()), (200, Some("sys/wrapping/wrap")), "{b}");
    // The wrapping token as the request's token: a lookup too, which does not spend it.
    let wt = [("X-Vault-Token", w.as_str())];
    let (st, b) = http(a, "GET", "/v1/sys/wrapping/lookup", &wt, b"");
    assert_eq!(st, 200, "{b}");
    let (st, _) =
        http(a, "PATCH", "/v1/sys/wrapping/lookup", &[wt[0], ("Content-Type", "application/merge-patch+json")], b"{}");
    assert_eq!(st, 405, "a valid wrapping token, an unserved method");
    // Anything that is not a wrapping token: 400, whatever the method.
    for (m, h) in [("GET", t[0]), ("DELETE", t[0]), ("GET", ("X-Vault-Token", "junk")), ("POST", t[0])] {
        let (st, b) = http(a, m, "/v1/sys/wrapping/lookup", &[h], b"");
        assert_eq!((st, json(&b)["errors"][0].as_str()), (400, Some("wrapping token is not valid or does not exist")));
    }
    let (st, _) = http(a, "GET", "/v1/sys/wrapping/unwrap", &t, b"");
    assert_eq!(st, 400);
    // HEAD too: 400 for a token that is not a wrapping token, 405 for one that is.
    assert_eq!(http(a, "HEAD", "/v1/sys/wrapping/lookup", &t, b"").0, 400);
    assert_eq!(http(a, "HEAD", "/v1/sys/wrapping/lookup", &wt, b"").0, 405);
    // The looked-up token still unwraps once.
    let (st, b) = http(a, "POST", "/v1/sys/wrapping/unwrap", &wt, b"");
    assert_eq!((st, json(&b)["data"]["x"].as_str()), (200, Some("y")), "{b}");
}

#[test]
fn tidy_endpoints_answer_202_accepted() {
    let s = Server::start_dev("root");
    let a = s.addr.as_str();
    let t = [("X-Vault-Token", "root")];
    let (st, b) = http(a, "POST", "/v1/auth/token/tidy", &t, b"{}");
    assert_eq!(st, 202, "{b}");
    assert!(json(&b)["warnings"][0].as_str().unwrap().starts_with("Tidy operation successfully started"));
    assert_eq!(http(a, "POST", "/v1/sys/auth/approle", &t, br#"{"type":"approle"}"#).0, 204);
    let (st, b) = http(a, "POST", "/v1/auth/approle/tidy/secret-id", &t, b"{}");
    assert_eq!(st, 202, "{b}");
}

#[test]
fn json_and_form_complexity_limits_apply_by_default() {
    let s = Server::start_dev("root");
    let a = s.addr.as_str();
    let t = [("X-Vault-Token", "root")];
    assert_eq!(http(a, "POST", "/v1/sys/mounts/kv", &t, br#"{"type":"kv"}"#).0, 204);
    // 1000 strings (the key counts) pass, 1001 do not.
    let strings = |n: usize| format!("{{\"a\":[{}\"x\"]}}", "\"x\",".repeat(n - 2));
    assert_eq!(http(a, "PUT", "/v1/kv/s", &t, strings(1000).as_bytes()).0, 204);
    let (st, b) = http(a, "PUT", "/v1/kv/s", &t, strings(1001).as_bytes());
    assert_eq!(st, 400, "{b}");
    assert_eq!(json(&b)["errors"][0], "refused JSON input due to high complexity: exceeded maximum number of strings");
    // About 34 MB of parsed values: a 4 MB array of numbers is refused.
    let nums = format!("{{\"a\":[{}1]}}", "1,".repeat(2_000_000));
    let (st, b) = http(a, "PUT", "/v1/kv/n", &t, nums.as_bytes());
    assert_eq!(st, 400, "{b}");
    assert!(json(&b)["errors"][0].as_str().unwrap().contains("exceeded maximum estimated memory limits"));
    // A form of 10000 fields passes, one more does not.
    let form = |n: usize| (0..n).map(|i| format!("k{i}=v")).collect::<Vec<_>>().join("&");
    let ft = [t[0], ("Content-Type", "application/x-www-form-urlencoded")];
    assert_eq!(http(a, "PUT", "/v1/kv/f", &ft, form(10_000).as_bytes()).0, 204);
    let (st, b) = http(a, "PUT", "/v1/kv/f", &ft, form(10_001).as_bytes());
    assert_eq!((st, json(&b)["errors"][0].as_str()), (400, Some("error parsing form data")));
}

#[test]
fn raw_http_cases_answer_as_openbao() {
    let s = Server::start_dev("root");
    let a = s.addr.as_str();
    let r = raw(a, b"OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", false);
    assert_eq!(status_of(&r), 200, "{r}");
    let r = raw(
        a,
        b"PUT /v1/secret/data/c HTTP/1.1\r\nHost: x\r\nX-Vault-Token: root\r\nTransfer-Encoding: chunked, chunked\r\nConnection: close\r\n\r\n0\r\n\r\n",
        false,
    );
    assert_eq!(status_of(&r), 400, "chunked applied twice: {r}");
    // No Host, two Hosts: Go's plain-text 400; an expectation other than 100-continue: a bare 417.
    let r = raw(a, b"GET /v1/sys/health HTTP/1.1\r\nConnection: close\r\n\r\n", false);
    assert_eq!(status_of(&r), 400, "{r}");
    assert!(r.ends_with("400 Bad Request: missing required Host header") && r.contains("text/plain"), "{r}");
    let r = raw(a, b"GET /v1/sys/health HTTP/1.1\r\nHost: x\r\nHost: x\r\nConnection: close\r\n\r\n", false);
    assert!(status_of(&r) == 400 && r.ends_with("400 Bad Request"), "{r}");
    let r = raw(
        a,
        b"PUT /v1/secret/data/e HTTP/1.1\r\nHost: x\r\nX-Vault-Token: root\r\nExpect: something\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
        false,
    );
    assert!(status_of(&r) == 417 && !r.to_ascii_lowercase().contains("content-type"), "{r}");
    let (st, b) = http(a, "GET", "/v1/sys/mounts", &[("X-Vault-Token", "root"), ("X-Vault-Index", "junk")], b"");
    assert_eq!((st, json(&b)["errors"][0].as_str()), (400, Some("failed to decode \"X-Vault-Index\"")));
    // An encoded control character: a bare 400; a malformed escape: Go's plain-text 400.
    let r = raw(
        a,
        b"GET /v1/secret/data/a%00b HTTP/1.1\r\nHost: x\r\nX-Vault-Token: root\r\nConnection: close\r\n\r\n",
        false,
    );
    assert!(status_of(&r) == 400 && !r.to_ascii_lowercase().contains("content-type"), "{r}");
    let r = raw(
        a,
        b"GET /v1/secret/data/%ZZ HTTP/1.1\r\nHost: x\r\nX-Vault-Token: root\r\nConnection: close\r\n\r\n",
        false,
    );
    assert!(status_of(&r) == 400 && r.ends_with("400 Bad Request") && r.contains("text/plain"), "{r}");
    // A client that half-closes right after its request still gets the answer.
    for _ in 0..20 {
        let r = raw(a, b"GET /v1/sys/health HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n", true);
        assert_eq!(status_of(&r), 200, "half-closed: {r:?}");
    }
    // Redirects carry Cache-Control no-store; on GET an HTML body, on PUT none.
    for path in ["/v1//kv/x", "/ui"] {
        let r = raw(a, format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(), false);
        let lower = r.to_ascii_lowercase();
        assert_eq!(status_of(&r), 307, "{r}");
        assert!(lower.contains("cache-control: no-store") && lower.contains("content-type: text/html"), "{r}");
        assert!(r.contains("Temporary Redirect</a>."), "{r}");
        let r = raw(
            a,
            format!("PUT {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes(),
            false,
        );
        let lower = r.to_ascii_lowercase();
        assert!(lower.contains("cache-control: no-store") && !lower.contains("content-type"), "{r}");
    }
}
