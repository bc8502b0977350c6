//! `sys/raw`: storage through the barrier, as Vault's raw endpoint. Off by default; with
//! `raw_storage_endpoint = true` a root (sudo) token reads, writes, lists and deletes decrypted
//! entries; the barrier's own keys are refused; `bao read sys/raw/…` works.
mod common;
use common::*;

fn start(dir: &std::path::Path, raw: bool) -> Server {
    let port = free_port();
    let config = dir.join(format!("c{port}.hcl"));
    std::fs::write(
        &config,
        format!(
            "storage \"file\" {{\n  path = \"{}\"\n}}\nlistener \"tcp\" {{\n  address = \"127.0.0.1:{port}\"\n  tls_disable = true\n}}\n\
             disable_mlock = true\nraw_storage_endpoint = {raw}\n",
            dir.join(format!("data{port}")).display()
        ),
    )
    .unwrap();
    Server::start_with_config(&config, &format!("127.0.0.1:{port}"))
}

#[test]
fn raw_endpoint_is_off_unless_configured() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), false);
    let (_, root) = init_unseal(&s.addr);
    let (st, body) = http(&s.addr, "GET", "/v1/sys/raw/core/mounts", &[("X-Vault-Token", &root)], b"");
    assert_eq!(st, 404, "{body}");
    assert!(json(&body)["errors"].is_array());
}

#[test]
fn raw_endpoint_reads_writes_lists_deletes_and_refuses_barrier_keys() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), true);
    let (_, root) = init_unseal(&s.addr);
    let t = [("X-Vault-Token", root.as_str())];
    // Plaintext in, plaintext out (stored encrypted underneath).
    let (st, body) = http(&s.addr, "PUT", "/v1/sys/raw/test/hello", &t, br#"{"value":"world"}"#);
    assert_eq!(st, 204, "{body}");
    let (st, body) = http(&s.addr, "GET", "/v1/sys/raw/test/hello", &t, b"");
    assert_eq!(st, 200, "{body}");
    assert_eq!(json(&body)["data"]["value"], "world");
    // base64 both ways, for binary values.
    let (st, _) = http(&s.addr, "PUT", "/v1/sys/raw/test/bin", &t, br#"{"value":"AAEC/w==","encoding":"base64"}"#);
    assert_eq!(st, 204);
    let (_, body) = http(&s.addr, "GET", "/v1/sys/raw/test/bin?encoding=base64", &t, b"");
    assert_eq!(json(&body)["data"]["value"], "AAEC/w==");
    let (st, body) = http(&s.addr, "LIST", "/v1/sys/raw/test", &t, b"");
    assert_eq!(st, 200, "{body}");
    assert_eq!(json(&body)["data"]["keys"], serde_json::json!(["bin", "hello"]));
    let (st, body) = http(&s.addr, "LIST", "/v1/sys/raw", &t, b"");
    assert_eq!(st, 200, "{body}");
    assert!(json(&body)["data"]["keys"].as_array().unwrap().contains(&"core/".into()), "{body}");
    // The mount table is readable JSON through the barrier.
    let (st, body) = http(&s.addr, "GET", "/v1/sys/raw/core/mounts", &t, b"");
    assert_eq!(st, 200, "{body}");
    assert!(json(&body)["data"]["value"].as_str().unwrap().contains("\"entries\""), "{body}");
    // The barrier's own entries are refused, whatever the operation.
    for key in ["core/keyring", "core/root-key", "core/seal-config"] {
        for (m, b) in [("GET", &b""[..]), ("PUT", &br#"{"value":"x"}"#[..]), ("DELETE", &b""[..])] {
            let (st, body) = http(&s.addr, m, &format!("/v1/sys/raw/{key}"), &t, b);
            assert_eq!(st, 400, "{m} {key}: {body}");
            assert!(body.contains("cannot access"), "{body}");
        }
    }
    let (st, _) = http(&s.addr, "DELETE", "/v1/sys/raw/test/hello", &t, b"");
    assert_eq!(st, 204);
    let (st, _) = http(&s.addr, "GET", "/v1/sys/raw/test/hello", &t, b"");
    assert_eq!(st, 404);
    // A token without sudo on sys/raw is refused.
    let (st, body) = http(&s.addr, "POST", "/v1/auth/token/create", &t, br#"{"policies":["default"]}"#);
    assert_eq!(st, 200, "{body}");
    let user = json(&body)["auth"]["client_token"].as_str().unwrap().to_string();
    let (st, _) = http(&s.addr, "GET", "/v1/sys/raw/test/bin", &[("X-Vault-Token", &user)], b"");
    assert_eq!(st, 403);
    // The real CLI.
    if let Some(bao) = bao_path() {
        let o = cli(&bao, &s.addr, Some(&root), &["read", "-field=value", "sys/raw/test/bin"]);
        assert!(o.status.success(), "{}", out(&o));
        let o = cli(&bao, &s.addr, Some(&root), &["write", "sys/raw/test/cli", "value=from-bao"]);
        assert!(o.status.success(), "{}", out(&o));
        let o = cli(&bao, &s.addr, Some(&root), &["read", "-field=value", "sys/raw/test/cli"]);
        assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "from-bao", "{}", out(&o));
    }
}
