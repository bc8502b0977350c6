//! Resource quotas end to end: the real `bao` CLI writes and reads them on Coffer and on a real
//! OpenBao, both servers refuse the same requests with the same answers, lease-count quotas
//! hold the live leases under their maximum, and a rate-limited client does not take another
//! client's budget.
mod common;

use common::*;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// One request; returns (status, lower-cased headers, body).
fn request(addr: &str, method: &str, path: &str, token: &str, body: &str) -> (u16, Vec<(String, String)>, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nX-Vault-Token: {token}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let headers = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, body.to_string())
}

fn header<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
    h.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// The two servers of a differential test, each with its address and root token.
fn servers(bao: &str) -> (Server, RealBao) {
    (Server::start_dev("root"), RealBao::start(bao))
}

#[test]
fn rate_limit_quotas_are_written_read_and_enforced_as_openbao_does() {
    let Some(bao) = bao_path() else { return };
    let (coffer, openbao) = servers(&bao);
    let mut seen = Vec::new();
    for addr in [coffer.addr.as_str(), openbao.addr.as_str()] {
        let run = |args: &[&str]| cli(&bao, addr, Some("root"), args);
        let o = run(&["write", "sys/quotas/config", "enable_rate_limit_response_headers=true"]);
        assert!(o.status.success(), "{addr}: {}", out(&o));
        let o = run(&["write", "sys/quotas/rate-limit/kv-reads", "path=secret", "rate=2", "interval=1h"]);
        assert!(o.status.success(), "{addr}: {}", out(&o));
        let o = run(&["read", "-format=json", "sys/quotas/rate-limit/kv-reads"]);
        assert!(o.status.success(), "{addr}: {}", out(&o));
        let read = json(&String::from_utf8_lossy(&o.stdout))["data"].clone();
        let o = run(&["list", "-format=json", "sys/quotas/rate-limit"]);
        let listed = json(&String::from_utf8_lossy(&o.stdout));
        let o = run(&["read", "-format=json", "sys/quotas/config"]);
        let config = json(&String::from_utf8_lossy(&o.stdout))["data"].clone();

        // Two reads of secret/ pass with the budget counting down, the third is refused.
        let (s1, h1, _) = request(addr, "GET", "/v1/secret/data/missing", "root", "");
        let (s2, h2, _) = request(addr, "GET", "/v1/secret/data/missing", "root", "");
        let (s3, h3, b3) = request(addr, "GET", "/v1/secret/data/missing", "root", "");
        // Other mounts are not limited.
        let (s4, h4, _) = request(addr, "GET", "/v1/sys/mounts", "root", "");
        // The CLI shows the refusal.
        let cli_refused = out(&run(&["kv", "get", "secret/missing"]));
        seen.push(json!({
            "read": read,
            "listed": listed,
            "config": config,
            "statuses": [s1, s2, s3, s4],
            "remaining": [header(&h1, "x-ratelimit-remaining"), header(&h2, "x-ratelimit-remaining"), header(&h3, "x-ratelimit-remaining")],
            "limit": header(&h3, "x-ratelimit-limit"),
            "retry_after_set": header(&h3, "retry-after").is_some_and(|v| v.parse::<u64>().is_ok_and(|n| n > 3000)),
            "unlimited_has_headers": header(&h4, "x-ratelimit-limit").is_some(),
            "refusal": json(&b3),
            "cli_says_429": cli_refused.contains("429") && cli_refused.contains("rate limit quota exceeded"),
        }));
    }
    assert_eq!(seen[0], seen[1], "Coffer (left) and OpenBao (right) differ");
    let c = &seen[0];
    assert_eq!(c["statuses"], json!([404, 404, 429, 200]));
    assert_eq!(c["remaining"], json!(["1", "0", "0"]));
    assert_eq!(c["refusal"], json!({"errors": ["request path \"secret/data/missing\": rate limit quota exceeded"]}));
    assert_eq!(c["read"]["path"], "secret/");
    assert_eq!(c["read"]["interval"], 3600);
    assert_eq!(c["cli_says_429"], true);
}

#[test]
fn bad_quota_definitions_are_refused_with_openbaos_words() {
    let Some(bao) = bao_path() else { return };
    let (coffer, openbao) = servers(&bao);
    let cases: &[(&str, &str)] = &[
        ("zero", r#"{"rate":0,"path":"secret/"}"#),
        ("missing-rate", r#"{"path":"secret/"}"#),
        ("no-mount", r#"{"rate":1,"path":"nope/"}"#),
        ("role-no-auth", r#"{"rate":1,"role":"r"}"#),
        ("role-token", r#"{"rate":1,"role":"r","path":"auth/token/"}"#),
        ("negative-block", r#"{"rate":1,"path":"secret/","block_interval":"-1s"}"#),
        ("first", r#"{"rate":5,"path":"secret/data/a"}"#),
        ("second-same-path", r#"{"rate":5,"path":"secret/data/a"}"#),
    ];
    let mut answers = Vec::new();
    for addr in [coffer.addr.as_str(), openbao.addr.as_str()] {
        let mut these = Vec::new();
        for (name, body) in cases {
            let (st, _, b) = request(addr, "POST", &format!("/v1/sys/quotas/rate-limit/{name}"), "root", body);
            let errors = if b.trim().is_empty() { Value::Null } else { json(&b)["errors"].clone() };
            these.push((name.to_string(), st, errors));
        }
        let (st, _, _) = request(addr, "GET", "/v1/sys/quotas/rate-limit/none", "root", "");
        these.push(("read-missing".into(), st, Value::Null));
        let (st, _, _) = request(addr, "DELETE", "/v1/sys/quotas/rate-limit/none", "root", "");
        these.push(("delete-missing".into(), st, Value::Null));
        answers.push(these);
    }
    // Field conversion errors are worded by each server's own field parser: compare statuses
    // there, and the whole answer everywhere else.
    for (c, o) in answers[0].iter().zip(&answers[1]) {
        assert_eq!(c.1, o.1, "{}: status differs (Coffer {:?}, OpenBao {:?})", c.0, c.2, o.2);
        if c.0 != "negative-block" {
            assert_eq!(c.2, o.2, "{}: errors differ", c.0);
        }
    }
    assert_eq!(answers[0][7].1, 400, "a second quota on the same path is refused");
}

#[test]
fn lease_count_quota_refuses_logins_past_max_and_frees_room_on_revocation() {
    let Some(bao) = bao_path() else { return };
    let server = Server::start_dev("root");
    let addr = server.addr.as_str();
    let run = |token: Option<&str>, args: &[&str]| cli(&bao, addr, token, args);
    for args in [
        &["auth", "enable", "userpass"][..],
        &["write", "auth/userpass/users/amy", "password=pw", "token_ttl=1h"],
        &["write", "sys/quotas/lease-count/logins", "path=auth/userpass/", "max_leases=2"],
    ] {
        let o = run(Some("root"), args);
        assert!(o.status.success(), "{args:?}: {}", out(&o));
    }
    let login = || run(None, &["login", "-method=userpass", "-token-only", "username=amy", "password=pw"]);
    let first = login();
    assert!(first.status.success(), "{}", out(&first));
    let first = String::from_utf8_lossy(&first.stdout).trim().to_string();
    assert!(login().status.success());
    let third = login();
    assert!(!third.status.success(), "a third live login lease is refused");
    assert!(out(&third).contains("lease count quota exceeded"), "{}", out(&third));
    let o = run(Some("root"), &["read", "-format=json", "sys/quotas/lease-count/logins"]);
    let q = json(&String::from_utf8_lossy(&o.stdout))["data"].clone();
    assert_eq!(
        (q["max_leases"].clone(), q["counter"].clone(), q["type"].clone()),
        (json!(2), json!(2), json!("lease-count"))
    );

    // Revoking a token revokes its lease: there is room for one more login.
    let o = run(Some(&first), &["token", "revoke", "-self"]);
    assert!(o.status.success(), "{}", out(&o));
    assert!(login().status.success(), "the revoked token's lease no longer counts");
    assert!(!login().status.success());

    // Root tokens are never limited: under a full server-wide quota they still make leases.
    let o = run(Some("root"), &["write", "sys/quotas/lease-count/everything", "max_leases=1"]);
    assert!(o.status.success(), "{}", out(&o));
    for _ in 0..2 {
        let o = run(Some("root"), &["token", "create", "-ttl=1h", "-field=token"]);
        assert!(o.status.success(), "{}", out(&o));
    }
    assert!(run(Some("root"), &["delete", "sys/quotas/lease-count/everything"]).status.success());

    // Deleting the quota lifts the limit; disabling the mount deletes its quotas.
    let o = run(Some("root"), &["delete", "sys/quotas/lease-count/logins"]);
    assert!(o.status.success());
    assert!(login().status.success());
    let o = run(Some("root"), &["write", "sys/quotas/rate-limit/on-userpass", "path=auth/userpass/", "rate=100"]);
    assert!(o.status.success(), "{}", out(&o));
    assert!(run(Some("root"), &["auth", "disable", "userpass"]).status.success());
    let (st, _, _) = request(addr, "GET", "/v1/sys/quotas/rate-limit/on-userpass", "root", "");
    assert_eq!(st, 404, "a disabled mount's quotas are deleted with it");
}

#[test]
fn a_rate_limited_client_does_not_spend_another_clients_budget_and_limits_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_file(dir.path());
    let (_keys, root) = init_unseal(&server.addr);
    let addr = server.addr.clone();
    let (st, _, b) = request(&addr, "POST", "/v1/sys/mounts/kv", &root, r#"{"type":"kv"}"#);
    assert_eq!(st, 204, "{b}");
    let (st, _, b) =
        request(&addr, "POST", "/v1/sys/quotas/rate-limit/shared", &root, r#"{"path":"kv/","rate":3,"interval":"1h"}"#);
    assert_eq!(st, 204, "{b}");
    // Budgets are per client address: the loopback network has many.
    let from = |ip: &str| {
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.bind(format!("{ip}:0").parse().unwrap()).unwrap();
        sock
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let get = |ip: &'static str| {
        let addr = addr.clone();
        let root = root.clone();
        rt.block_on(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut s = from(ip).connect(addr.parse().unwrap()).await.unwrap();
            let req =
                format!("GET /v1/kv/x HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nX-Vault-Token: {root}\r\n\r\n");
            s.write_all(req.as_bytes()).await.unwrap();
            let mut raw = Vec::new();
            s.read_to_end(&mut raw).await.unwrap();
            String::from_utf8_lossy(&raw).split_whitespace().nth(1).and_then(|c| c.parse::<u16>().ok()).unwrap()
        })
    };
    let started = std::time::Instant::now();
    let noisy: Vec<u16> = (0..6).map(|_| get("127.0.0.2")).collect();
    // Refusals are held until the budget refills, at most a second each: a client retrying
    // at once is slowed down instead of served refusals as fast as it can ask.
    assert!(started.elapsed() >= Duration::from_secs(3), "three refusals were held {:?}", started.elapsed());
    assert_eq!(noisy.iter().filter(|s| **s == 404).count(), 3, "the noisy client gets its budget: {noisy:?}");
    assert!(noisy[3..].iter().all(|s| *s == 429), "{noisy:?}");
    let quiet: Vec<u16> = (0..3).map(|_| get("127.0.0.3")).collect();
    assert_eq!(quiet, vec![404, 404, 404], "another client keeps its whole budget");

    // The quota is stored behind the barrier: after a restart it is still there and enforced.
    drop(server);
    let server = Server::start_file(dir.path());
    unseal(&server.addr, &_keys[..3]);
    let (st, _, b) = request(&server.addr, "GET", "/v1/sys/quotas/rate-limit/shared", &root, "");
    assert_eq!(st, 200, "{b}");
    let addr2 = server.addr.clone();
    let statuses: Vec<u16> = (0..4).map(|_| request(&addr2, "GET", "/v1/kv/x", &root, "").0).collect();
    assert_eq!(statuses, vec![404, 404, 404, 429]);
}
