//! The web UI: served at `/ui/` with strict security headers when `ui = true`, absent otherwise.
//! (The browser tests in `tests/ui/` drive the UI itself.)
mod common;
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;

/// One raw request; returns (status, lower-cased headers, body).
fn fetch(addr: &str, method: &str, path: &str) -> (u16, Vec<(String, String)>, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(s, "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split_whitespace().nth(1)).and_then(|c| c.parse().ok()).unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, body.to_string())
}

fn header<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
    h.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn start(dir: &std::path::Path, ui: bool) -> Server {
    let port = free_port();
    let config = dir.join("coffer.hcl");
    std::fs::write(
        &config,
        format!(
            "storage \"file\" {{\n  path = \"{}\"\n}}\nlistener \"tcp\" {{\n  address = \"127.0.0.1:{port}\"\n  tls_disable = true\n}}\ndisable_mlock = true\nui = {ui}\n",
            dir.join("data").display()
        ),
    )
    .unwrap();
    Server::start_with_config(&config, &format!("127.0.0.1:{port}"))
}

#[test]
fn ui_is_served_with_strict_security_headers() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), true);
    for path in ["/ui/", "/ui/js/app.js", "/ui/app.css"] {
        let (status, h, body) = fetch(&s.addr, "GET", path);
        assert_eq!(status, 200, "{path}");
        assert!(!body.is_empty(), "{path} is empty");
        let csp = header(&h, "content-security-policy").unwrap_or_else(|| panic!("{path}: no CSP"));
        for directive in [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "frame-ancestors 'none'",
            "object-src 'none'",
        ] {
            assert!(csp.contains(directive), "{path}: CSP {csp:?} lacks {directive}");
        }
        assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "{path}: {csp}");
        assert_eq!(header(&h, "x-frame-options"), Some("DENY"), "{path}");
        assert_eq!(header(&h, "x-content-type-options"), Some("nosniff"), "{path}");
    }
    let (_, h, body) = fetch(&s.addr, "GET", "/ui/");
    assert!(header(&h, "content-type").unwrap().starts_with("text/html"));
    assert!(body.contains("<script type=\"module\" src=\"js/app.js\">"), "{body}");
    let (_, h, _) = fetch(&s.addr, "GET", "/ui/js/app.js");
    assert!(header(&h, "content-type").unwrap().starts_with("text/javascript"));

    // `/` leads to the UI; unknown files and other methods are refused, still with the headers.
    let (status, h, _) = fetch(&s.addr, "GET", "/");
    assert_eq!((status, header(&h, "location")), (307, Some("/ui/")));
    let (status, h, _) = fetch(&s.addr, "GET", "/ui/../Cargo.toml");
    assert_eq!(status, 404);
    assert_eq!(header(&h, "x-frame-options"), Some("DENY"));
    assert_eq!(fetch(&s.addr, "GET", "/ui/nothing.js").0, 404);
    assert_eq!(fetch(&s.addr, "POST", "/ui/").0, 405);
    // The API is unaffected.
    assert_eq!(http(&s.addr, "GET", "/v1/sys/seal-status", &[], b"").0, 200);
}

#[test]
fn ui_is_absent_when_off() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), false);
    for path in ["/ui/", "/ui/js/app.js", "/ui", "/"] {
        let (status, h, _) = fetch(&s.addr, "GET", path);
        assert_eq!(status, 404, "{path} must be 404 with ui = false");
        assert!(header(&h, "location").is_none(), "{path} redirects");
    }
    assert_eq!(http(&s.addr, "GET", "/v1/sys/seal-status", &[], b"").0, 200);
}
