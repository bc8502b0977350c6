//! The non-TLS options of `listener "tcp"` and CORS, end to end against the real binary:
//! X-Forwarded-For (CIDR-bound logins and tokens, audit `remote_address`, OpenBao's rejects),
//! custom response headers, the legacy unauthenticated ceremonies, JSON complexity limits,
//! header-read and idle timeouts, and CORS across a restart and through the `bao` CLI. (How
//! `sys/config/cors` shapes cross-origin answers is checked in-process:
//! crates/testing/tests/api/cors.rs.)
mod common;
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// One raw HTTP/1.1 request returning (status, lower-cased head, body).
fn http_full(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut req =
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, head.to_ascii_lowercase(), body.to_string())
}

/// The listeners' ports, as the server reported them (each listener binds port 0).
struct Ports {
    main: u16,
    untrusted: u16,
    hops: u16,
    headers: u16,
    legacy: u16,
    json: u16,
    timeouts: u16,
}

fn start(dir: &std::path::Path) -> (Server, Ports) {
    let audit = dir.join("audit.log");
    let l =
        |extra: &str| format!("listener \"tcp\" {{\n  address = \"127.0.0.1:0\"\n  tls_disable = true\n{extra}\n}}\n");
    let cfg = [
        "storage \"inmem\" {}\n".to_string(),
        format!("audit \"file\" \"file\" {{\n  options {{\n    file_path = \"{}\"\n  }}\n}}\n", audit.display()),
        l("  x_forwarded_for_authorized_addrs = \"127.0.0.1/32\""),
        l(
            "  x_forwarded_for_authorized_addrs = [\"10.0.0.0/8\"]\n  x_forwarded_for_reject_not_authorized = true",
        ),
        l(
            "  x_forwarded_for_authorized_addrs = \"127.0.0.1\"\n  x_forwarded_for_hop_skips = 1\n  x_forwarded_for_reject_not_present = true",
        ),
        l(
            "  custom_response_headers {\n    default = { \"X-Custom\" = [\"a\", \"b\"] }\n    \"4xx\" = { \"X-Custom\" = [\"client\"] }\n    \"404\" = { \"X-Missing\" = [\"yes\"] }\n  }",
        ),
        l("  disable_unauthed_generate_root_endpoints = false\n  disable_unauthed_rekey_endpoints = false"),
        l("  max_request_json_strings = 3\n  max_request_json_memory = 4096"),
        l("  http_read_header_timeout = \"1s\"\n  http_idle_timeout = \"1s\"\n  http_read_timeout = \"1s\""),
    ]
    .concat();
    let path = dir.join("coffer.hcl");
    std::fs::write(&path, cfg).unwrap();
    let s = Server::start_with_config(&path);
    let port = |i: usize| s.addrs[i].rsplit(':').next().unwrap().parse::<u16>().unwrap();
    let p = Ports {
        main: port(0),
        untrusted: port(1),
        hops: port(2),
        headers: port(3),
        legacy: port(4),
        json: port(5),
        timeouts: port(6),
    };
    (s, p)
}

#[test]
fn forwarded_for_decides_the_client_address_for_cidr_bound_logins_tokens_and_audit() {
    let dir = tempfile::tempdir().unwrap();
    let (_s, p) = start(dir.path());
    let main = format!("127.0.0.1:{}", p.main);
    let (_, root) = init_unseal(&main);
    let t = [("X-Vault-Token", root.as_str())];
    assert_eq!(http(&main, "POST", "/v1/sys/auth/userpass", &t, br#"{"type":"userpass"}"#).0, 204);
    let (c, b) = http(
        &main,
        "POST",
        "/v1/auth/userpass/users/alice",
        &t,
        br#"{"password":"pw-alice","token_bound_cidrs":"1.2.3.4/32"}"#,
    );
    assert!(c == 200 || c == 204, "{b}");
    let login = |addr: &str, xff: Option<&str>| {
        let mut h = vec![];
        if let Some(x) = xff {
            h.push(("X-Forwarded-For", x));
        }
        http(addr, "POST", "/v1/auth/userpass/login/alice", &h, br#"{"password":"pw-alice"}"#)
    };
    // From the trusted proxy, the forwarded address counts: inside the CIDR → a token.
    let (c, b) = login(&main, Some("1.2.3.4"));
    assert_eq!(c, 200, "{b}");
    let token = json(&b)["auth"]["client_token"].as_str().unwrap().to_string();
    // Outside it, or the proxy's own address, → refused.
    assert_ne!(login(&main, Some("5.6.7.8")).0, 200);
    assert_ne!(login(&main, None).0, 200, "the peer (127.0.0.1) is outside the CIDR");
    // The token is bound to the CIDR too.
    let lookup = |xff: &str| {
        http(&main, "GET", "/v1/auth/token/lookup-self", &[("X-Vault-Token", &token), ("X-Forwarded-For", xff)], b"")
    };
    assert_eq!(lookup("1.2.3.4").0, 200);
    assert_eq!(lookup("5.6.7.8").0, 403);
    // Audit records the forwarded address.
    let audit = std::fs::read_to_string(dir.path().join("audit.log")).unwrap();
    assert!(audit.contains("\"remote_address\":\"1.2.3.4\""), "audit: {audit}");

    // A peer outside x_forwarded_for_authorized_addrs, with reject_not_authorized: 400.
    let untrusted = format!("127.0.0.1:{}", p.untrusted);
    let (c, b) = login(&untrusted, Some("1.2.3.4"));
    assert_eq!(c, 400);
    assert_eq!(
        json(&b)["errors"][0],
        "client address not authorized for x-forwarded-for and configured to reject connection"
    );
    // Without the header it is an ordinary client (reject_not_present defaults to false).
    assert_eq!(http(&untrusted, "GET", "/v1/sys/health", &[], b"").0, 200);

    // hop_skips = 1: the second-to-last entry; too few entries or no header: 400.
    let hops = format!("127.0.0.1:{}", p.hops);
    assert_eq!(login(&hops, Some("1.2.3.4, 10.9.9.9")).0, 200);
    let (c, b) = login(&hops, Some("1.2.3.4"));
    assert_eq!(c, 400);
    assert!(json(&b)["errors"][0].as_str().unwrap().contains("hops to skip (1)"), "{b}");
    let (c, b) = http(&hops, "GET", "/v1/sys/health", &[], b"");
    assert_eq!(c, 400);
    assert_eq!(json(&b)["errors"][0], "missing x-forwarded-for header and configured to reject when not present");
}

#[test]
fn custom_response_headers_legacy_ceremonies_and_json_limits_act_per_listener() {
    let dir = tempfile::tempdir().unwrap();
    let (_s, p) = start(dir.path());
    let main = format!("127.0.0.1:{}", p.main);
    let (_, root) = init_unseal(&main);

    // OpenBao sends HSTS on every answer by default.
    let (_, head, _) = http_full(&main, "GET", "/v1/sys/health", &[], b"");
    assert!(head.contains("strict-transport-security: max-age=31536000; includesubdomains"), "{head}");
    // Custom headers: values joined with "; ", the most specific status match wins.
    let hdr = format!("127.0.0.1:{}", p.headers);
    let (c, head, _) = http_full(&hdr, "GET", "/v1/sys/health", &[], b"");
    assert_eq!(c, 200);
    assert!(head.contains("x-custom: a; b") && !head.contains("x-missing"), "{head}");
    let (c, head, _) = http_full(&hdr, "GET", "/v1/secret/nothing", &[("X-Vault-Token", &root)], b"");
    assert_eq!(c, 404);
    assert!(head.contains("x-custom: client") && head.contains("x-missing: yes"), "{head}");

    // The legacy unauthenticated ceremonies: off by default (405), on where the listener says so.
    for path in ["/v1/sys/generate-root/attempt", "/v1/sys/rekey/init"] {
        let (c, b) = http(&main, "GET", path, &[], b"");
        assert_eq!((c, json(&b)["errors"][0].as_str()), (405, Some("unsupported operation")), "{path}: {b}");
        let (c, b) = http(&format!("127.0.0.1:{}", p.legacy), "GET", path, &[], b"");
        assert_eq!(c, 200, "{path} enabled: {b}");
    }
    // The authenticated replacement is there either way.
    let (c, _) = http(&main, "GET", "/v1/sys/generate-root-token/attempt", &[("X-Vault-Token", &root)], b"");
    assert_eq!(c, 200);

    // max_request_json_strings = 3: {"data":{"a":"b"}} holds three strings, one more is refused.
    let j = format!("127.0.0.1:{}", p.json);
    let t = [("X-Vault-Token", root.as_str())];
    assert_eq!(http(&j, "POST", "/v1/sys/mounts/kv", &t, br#"{"type":"kv"}"#).0, 204);
    assert_eq!(http(&j, "PUT", "/v1/kv/a", &t, br#"{"a":"b"}"#).0, 204);
    let (c, b) = http(&j, "PUT", "/v1/kv/a", &t, br#"{"a":"b","c":"d"}"#);
    assert_eq!(c, 400);
    assert_eq!(json(&b)["errors"][0], "refused JSON input due to high complexity: exceeded maximum number of strings");
    let (c, b) = http(&j, "PUT", "/v1/kv/a", &t, format!("{{\"a\":[{}1]}}", "1,".repeat(200)).as_bytes());
    assert_eq!(c, 400);
    assert_eq!(
        json(&b)["errors"][0],
        "refused JSON input due to high complexity: exceeded maximum estimated memory limits"
    );
}

#[test]
fn stalled_headers_stalled_bodies_and_idle_connections_are_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let (_s, p) = start(dir.path());
    let addr = format!("127.0.0.1:{}", p.timeouts);
    // A client that never finishes its headers is cut off after http_read_header_timeout.
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /v1/sys/health HTTP/1.1\r\nHost: x\r\n").unwrap();
    let start = Instant::now();
    let mut buf = [0u8; 512];
    let n = loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break 0,
            Ok(n) if String::from_utf8_lossy(&buf[..n]).contains("408") => break n,
            Ok(_) => continue,
        }
    };
    let took = start.elapsed();
    assert!(took < Duration::from_secs(5), "a stalled header must be cut off (took {took:?}, read {n})");

    // A body that stops arriving is answered 408 after http_read_timeout.
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"PUT /v1/sys/unseal HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"key\":").unwrap();
    let start = Instant::now();
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("timed out reading the request body"), "{text}");
    assert!(start.elapsed() < Duration::from_secs(5), "{:?}", start.elapsed());

    // A kept-alive connection with nothing to do is closed after http_idle_timeout.
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /v1/sys/seal-status HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut got = Vec::new();
    while !String::from_utf8_lossy(&got).contains("\"sealed\"") {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "closed before the answer");
        got.extend_from_slice(&buf[..n]);
    }
    let start = Instant::now();
    let closed = matches!(s.read(&mut buf), Ok(0) | Err(_));
    let took = start.elapsed();
    assert!(closed && took < Duration::from_secs(5), "idle connection closed: {closed} after {took:?}");
    assert!(took >= Duration::from_millis(500), "not closed before the idle timeout: {took:?}");
}

#[test]
fn cors_configuration_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::start_file(dir.path());
    let (keys, root) = init_unseal(&s.addr);
    let t = [("X-Vault-Token", root.as_str())];
    assert_eq!(
        http(&s.addr, "PUT", "/v1/sys/config/cors", &t, br#"{"allowed_origins":["http://app.example"]}"#).0,
        204
    );
    s.kill9();
    drop(s);
    let s = Server::start_with_config(&dir.path().join("coffer.hcl"));
    unseal(&s.addr, &keys[..3]);
    let (_, head, _) = http_full(&s.addr, "GET", "/v1/sys/health", &[("Origin", "http://app.example")], b"");
    assert!(head.contains("access-control-allow-origin: http://app.example"), "{head}");
}

#[test]
fn the_bao_cli_configures_cors_with_write_read_and_delete() {
    let Some(bao) = bao_path() else { return };
    let s = Server::start_dev("root");
    let o = cli(
        &bao,
        &s.addr,
        Some("root"),
        &["write", "sys/config/cors", "allowed_origins=http://a.example,http://b.example"],
    );
    assert!(o.status.success(), "{}", out(&o));
    let o = cli(&bao, &s.addr, Some("root"), &["read", "-format=json", "sys/config/cors"]);
    assert!(o.status.success(), "{}", out(&o));
    let v = json(&String::from_utf8_lossy(&o.stdout));
    assert_eq!(v["data"]["enabled"], true);
    assert_eq!(v["data"]["allowed_origins"], serde_json::json!(["http://a.example", "http://b.example"]));
    let (_, head, _) = http_full(&s.addr, "GET", "/v1/sys/health", &[("Origin", "http://b.example")], b"");
    assert!(head.contains("access-control-allow-origin: http://b.example"), "{head}");
    let o = cli(&bao, &s.addr, Some("root"), &["delete", "sys/config/cors"]);
    assert!(o.status.success(), "{}", out(&o));
    let o = cli(&bao, &s.addr, Some("root"), &["read", "-format=json", "sys/config/cors"]);
    assert_eq!(json(&String::from_utf8_lossy(&o.stdout))["data"]["enabled"], false);
}
