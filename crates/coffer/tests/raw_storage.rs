//! `sys/raw` through the real `bao` CLI against a dev server with `raw_storage_endpoint = true`:
//! `bao read` and `bao write` of raw entries. (The endpoint's behaviour, which needs no
//! process, is checked in-process: crates/testing/tests/api/raw_storage.rs.)
mod common;
use common::*;

#[test]
fn bao_cli_reads_and_writes_raw_storage_entries() {
    let Some(bao) = bao_path() else { return };
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("raw.hcl");
    std::fs::write(&config, "raw_storage_endpoint = true\n").unwrap();
    let s = Server::start_dev_with("root", &[&format!("-config={}", config.display())]);
    let t = [("X-Vault-Token", "root")];
    let (st, _) = http(&s.addr, "PUT", "/v1/sys/raw/test/bin", &t, br#"{"value":"AAEC/w==","encoding":"base64"}"#);
    assert_eq!(st, 204);
    let o = cli(&bao, &s.addr, Some("root"), &["read", "-field=value", "sys/raw/test/bin"]);
    assert!(o.status.success(), "{}", out(&o));
    let o = cli(&bao, &s.addr, Some("root"), &["write", "sys/raw/test/cli", "value=from-bao"]);
    assert!(o.status.success(), "{}", out(&o));
    let o = cli(&bao, &s.addr, Some("root"), &["read", "-field=value", "sys/raw/test/cli"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "from-bao", "{}", out(&o));
}
