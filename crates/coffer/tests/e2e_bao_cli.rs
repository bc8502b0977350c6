//! The whole foundation driven only by the real `bao` CLI against the real `coffer server`
//! on `storage "file"`: init, unseal, status, KV v1, secrets list, rotate, seal (503),
//! restart, unseal with other shares, and the data is back.
mod common;
use common::*;

fn bao_ok(bao: &str, addr: &str, token: Option<&str>, args: &[&str]) -> String {
    let o = cli(bao, addr, token, args);
    assert!(o.status.success(), "bao {args:?} failed ({:?}):\n{}", o.status.code(), out(&o));
    String::from_utf8_lossy(&o.stdout).to_string()
}

#[test]
fn bao_cli_drives_init_unseal_kv_rotate_seal_restart() {
    let Some(bao) = bao_path() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start_file(dir.path());
    let addr = server.addr.clone();

    // Uninitialised: status exits 2 and says so.
    let o = cli(&bao, &addr, None, &["status"]);
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    assert!(out(&o).contains("Initialized        false"), "{}", out(&o));

    let init = bao_ok(&bao, &addr, None, &["operator", "init", "-key-shares=5", "-key-threshold=3"]);
    let keys: Vec<String> = init
        .lines()
        .filter(|l| l.starts_with("Unseal Key "))
        .map(|l| l.split_whitespace().last().unwrap().to_string())
        .collect();
    assert_eq!(keys.len(), 5, "{init}");
    let root = init
        .lines()
        .find(|l| l.starts_with("Initial Root Token:"))
        .unwrap()
        .split_whitespace()
        .last()
        .unwrap()
        .to_string();
    assert!(root.starts_with("s.") && root.len() == 26, "token format: {root}");

    for (i, k) in keys[..3].iter().enumerate() {
        let s = bao_ok(&bao, &addr, None, &["operator", "unseal", k]);
        if i < 2 {
            assert!(s.contains(&format!("Unseal Progress    {}/3", i + 1)), "{s}");
        }
    }
    let st = bao_ok(&bao, &addr, Some(&root), &["status"]);
    assert!(st.contains("Sealed          false") && st.contains("Storage Type    file"), "{st}");

    let t = Some(root.as_str());
    bao_ok(&bao, &addr, t, &["secrets", "enable", "-path=kv1", "kv"]);
    bao_ok(&bao, &addr, t, &["kv", "put", "kv1/app/db", "user=admin", "password=s3cr3t"]);
    bao_ok(&bao, &addr, t, &["kv", "put", "kv1/other", "a=b"]);
    let got = bao_ok(&bao, &addr, t, &["kv", "get", "-field=password", "kv1/app/db"]);
    assert_eq!(got.trim(), "s3cr3t");
    let listed = bao_ok(&bao, &addr, t, &["kv", "list", "kv1"]);
    assert!(listed.contains("app/") && listed.contains("other"), "{listed}");
    bao_ok(&bao, &addr, t, &["kv", "delete", "kv1/other"]);
    let o = cli(&bao, &addr, t, &["kv", "get", "kv1/other"]);
    assert_eq!(o.status.code(), Some(2), "deleted key is gone: {}", out(&o));

    let mounts = bao_ok(&bao, &addr, t, &["secrets", "list"]);
    assert!(mounts.contains("kv1/") && mounts.contains("sys/"), "{mounts}");

    let rot = bao_ok(&bao, &addr, t, &["operator", "rotate"]);
    assert!(rot.contains("Key Term            2"), "{rot}");

    // The secret is not on disk in plaintext.
    let db = std::fs::read(dir.path().join("data").join("coffer.redb")).unwrap();
    assert!(!db.windows(6).any(|w| w == b"s3cr3t"), "plaintext found in the storage file");

    bao_ok(&bao, &addr, t, &["operator", "seal"]);
    let o = cli(&bao, &addr, t, &["kv", "get", "kv1/app/db"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(out(&o).contains("Code: 503") && out(&o).contains("Vault is sealed"), "{}", out(&o));

    // Restart the process and unseal with a different quorum of shares.
    server.kill9();
    let server2 = Server::start_with_config(&server.config);
    assert_eq!(server2.addr, addr, "the restart comes back at the pinned address");
    for k in [&keys[1], &keys[3], &keys[4]] {
        bao_ok(&bao, &addr, None, &["operator", "unseal", k]);
    }
    let got = bao_ok(&bao, &addr, t, &["kv", "get", "-field=user", "kv1/app/db"]);
    assert_eq!(got.trim(), "admin", "data is back after restart");
    let ks = bao_ok(&bao, &addr, t, &["operator", "key-status"]);
    assert!(ks.contains("Key Term            2"), "rotation survived restart: {ks}");
    drop(server2);
}

#[test]
fn bao_cli_generate_root_and_rekey_with_verification() {
    let Some(bao) = bao_path() else { return };
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_file(dir.path());
    let addr = server.addr.clone();
    let (keys, root) = init_unseal(&addr);
    let t = Some(root.as_str());

    // generate-root: init with a generated OTP, give 3 shares, decode the token.
    let otp = bao_ok(&bao, &addr, t, &["operator", "generate-root", "-generate-otp"]).trim().to_string();
    assert_eq!(otp.len(), 26);
    let init = bao_ok(&bao, &addr, t, &["operator", "generate-root", "-init", &format!("-otp={otp}"), "-format=json"]);
    let nonce = json(&init)["nonce"].as_str().unwrap().to_string();
    let mut last = String::new();
    for k in &keys[..3] {
        last = bao_ok(&bao, &addr, t, &["operator", "generate-root", "-format=json", &format!("-nonce={nonce}"), k]);
    }
    let encoded = json(&last)["encoded_token"].as_str().unwrap().to_string();
    let decoded =
        bao_ok(&bao, &addr, t, &["operator", "generate-root", &format!("-decode={encoded}"), &format!("-otp={otp}")])
            .trim()
            .to_string();
    assert!(decoded.starts_with("s.") && decoded != root, "{decoded}");
    let look = bao_ok(&bao, &addr, Some(&decoded), &["token", "lookup", "-format=json"]);
    assert_eq!(json(&look)["data"]["policies"][0], "root", "generated token is a root token");

    // rotate-keys (rekey) to 3 shares / threshold 2, with verification.
    let init = bao_ok(
        &bao,
        &addr,
        t,
        &["operator", "rotate-keys", "-init", "-key-shares=3", "-key-threshold=2", "-verify", "-format=json"],
    );
    let nonce = json(&init)["nonce"].as_str().unwrap().to_string();
    let mut fin = String::new();
    for k in &keys[..3] {
        fin = bao_ok(&bao, &addr, t, &["operator", "rotate-keys", "-format=json", &format!("-nonce={nonce}"), k]);
    }
    let fin = json(&fin);
    let new_keys: Vec<String> =
        fin["keys_base64"].as_array().unwrap().iter().map(|k| k.as_str().unwrap().to_string()).collect();
    let vnonce = fin["verification_nonce"].as_str().unwrap().to_string();
    assert_eq!(new_keys.len(), 3);
    for k in &new_keys[..2] {
        bao_ok(&bao, &addr, t, &["operator", "rotate-keys", "-verify", "-format=json", &format!("-nonce={vnonce}"), k]);
    }
    // The new keys unseal; the old ones no longer do.
    bao_ok(&bao, &addr, t, &["operator", "seal"]);
    bao_ok(&bao, &addr, None, &["operator", "unseal", &keys[0]]);
    let o = cli(&bao, &addr, None, &["operator", "unseal", &keys[1]]);
    assert_eq!(o.status.code(), Some(2), "old keys reach the new threshold but must not unseal: {}", out(&o));
    let o = cli(&bao, &addr, None, &["status"]);
    assert_eq!(o.status.code(), Some(2), "still sealed: {}", out(&o));
    for k in &new_keys[1..3] {
        bao_ok(&bao, &addr, None, &["operator", "unseal", k]);
    }
    let st = bao_ok(&bao, &addr, None, &["status"]);
    assert!(st.contains("Sealed          false") && st.contains("Total Shares    3"), "{st}");
}

#[test]
fn coffer_cli_drives_the_same_flow() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_file(dir.path());
    let addr = server.addr.clone();
    let c = coffer_bin();
    let o = cli(c, &addr, None, &["status"]);
    assert_eq!(o.status.code(), Some(2), "uninitialised status exits 2");
    let o = cli(c, &addr, None, &["operator", "init", "-key-shares=3", "-key-threshold=2", "-format=json"]);
    assert!(o.status.success(), "{}", out(&o));
    let v = json(&String::from_utf8_lossy(&o.stdout));
    let root = v["root_token"].as_str().unwrap().to_string();
    for k in v["unseal_keys_hex"].as_array().unwrap()[..2].iter() {
        let o = cli(c, &addr, None, &["operator", "unseal", k.as_str().unwrap()]);
        assert!(o.status.success(), "{}", out(&o));
    }
    let t = Some(root.as_str());
    let o = cli(c, &addr, t, &["status"]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    for args in [
        vec!["secrets", "enable", "-path=kv1", "-description=team kv", "kv"],
        vec!["kv", "put", "kv1/app", "k=v"],
        vec!["write", "kv1/other", "x=1"],
        vec!["secrets", "tune", "-default-lease-ttl=1h", "kv1"],
        vec!["secrets", "move", "kv1", "kv2"],
    ] {
        let o = cli(c, &addr, t, &args);
        assert!(o.status.success(), "coffer {args:?}: {}", out(&o));
    }
    let o = cli(c, &addr, t, &["kv", "get", "-field=k", "kv2/app"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "v", "{}", out(&o));
    let o = cli(c, &addr, t, &["read", "-format=json", "kv2/other"]);
    assert_eq!(json(&String::from_utf8_lossy(&o.stdout))["lease_duration"], 3600, "tuned TTL is advertised");
    let o = cli(c, &addr, t, &["list", "kv2/"]);
    assert!(out(&o).contains("app") && out(&o).contains("other"), "{}", out(&o));
    let o = cli(c, &addr, t, &["secrets", "list"]);
    assert!(out(&o).contains("kv2/") && out(&o).contains("team kv"), "{}", out(&o));
    let o = cli(c, &addr, t, &["operator", "rotate"]);
    assert!(out(&o).contains("Key Term            2"), "{}", out(&o));
    let o = cli(c, &addr, t, &["delete", "kv2/app"]);
    assert!(o.status.success());
    let o = cli(c, &addr, t, &["kv", "get", "kv2/app"]);
    assert_eq!(o.status.code(), Some(2), "missing key exits 2");
    let o = cli(c, &addr, Some("s.wrongwrongwrongwrongwron"), &["kv", "get", "kv2/other"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(out(&o).contains("permission denied"), "{}", out(&o));
    let o = cli(c, &addr, t, &["operator", "seal"]);
    assert!(o.status.success());
    let o = cli(c, &addr, t, &["status"]);
    assert_eq!(o.status.code(), Some(2), "sealed status exits 2");
}
