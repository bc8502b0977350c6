//! Raw-HTTP cases the differential wire suite found Coffer answering unlike OpenBao, checked
//! against the real binary over a socket (OPTIONS *, chunked twice, missing or repeated Host,
//! Expect, X-Vault-Index, bad escapes, half-close, redirects). The conventions that need no
//! socket are checked in-process: crates/testing/tests/api/wire_conventions.rs.
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
