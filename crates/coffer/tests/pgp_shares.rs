//! PGP-encrypted key shares, root tokens and the rekey backup, with real GnuPG: throwaway keys
//! made by `gpg --quick-gen-key` (RSA with an encryption subkey, RSA whose primary key
//! encrypts, Curve25519), each operator in a GnuPG home of their own, so a share decrypts only
//! for the operator it was encrypted to. Driven by the real `bao` CLI and by Coffer's own CLI
//! against the real `coffer server` on file storage, and over HTTP where a second server (the
//! transit seal's) is needed. (The HTTP-only ceremonies with PGP keys run in-process:
//! crates/testing/tests/api/pgp_shares.rs.)

mod common;
mod gpg_operator;
mod seal_common;

use common::*;
use gpg_operator::{Kind, Operator};
use serde_json::{json, Value};
use std::time::Duration;

fn put(addr: &str, path: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
    let headers: Vec<(&str, &str)> = token.map(|t| vec![("X-Vault-Token", t)]).unwrap_or_default();
    let (st, text) = http(addr, "PUT", &format!("/v1/{path}"), &headers, body.to_string().as_bytes());
    (st, if text.trim().is_empty() { Value::Null } else { json(&text) })
}

fn get(addr: &str, path: &str, token: Option<&str>) -> (u16, Value) {
    let headers: Vec<(&str, &str)> = token.map(|t| vec![("X-Vault-Token", t)]).unwrap_or_default();
    let (st, text) = http(addr, "GET", &format!("/v1/{path}"), &headers, b"");
    (st, if text.trim().is_empty() { Value::Null } else { json(&text) })
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().unwrap_or_else(|| panic!("not a list: {v}")).iter().map(|x| x.as_str().unwrap().to_string()).collect()
}

fn b64_to_hex(b64: &str) -> String {
    use base64::Engine;
    hex::encode(base64::engine::general_purpose::STANDARD.decode(b64).unwrap())
}

fn token_works(addr: &str, token: &str) {
    let (st, v) = get(addr, "auth/token/lookup-self", Some(token));
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["data"]["policies"], json!(["root"]), "{v}");
}

fn seal(addr: &str, root: &str) {
    let (st, v) = put(addr, "sys/seal", Some(root), &json!({}));
    assert_eq!(st, 204, "{v}");
}

/// `Unseal Key N: …` / `Initial Root Token: …` from `operator init`.
fn init_output(text: &str) -> (Vec<String>, String) {
    let keys = text
        .lines()
        .filter(|l| l.starts_with("Unseal Key "))
        .map(|l| l.split_whitespace().last().unwrap().to_string())
        .collect();
    let root =
        text.lines().find(|l| l.starts_with("Initial Root Token:")).unwrap().split_whitespace().last().unwrap().into();
    (keys, root)
}

fn run_ok(bin: &str, addr: &str, token: Option<&str>, args: &[&str]) -> String {
    let o = cli(bin, addr, token, args);
    assert!(o.status.success(), "{bin} {args:?} failed ({:?}):\n{}", o.status.code(), out(&o));
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// Init with key files (binary and armored), unseal, rekey with PGP and backup, retrieve and
/// delete the backup, generate a root token for a PGP key: all through one CLI.
fn cli_ceremonies(bin: &str, rekey_cmd: &str) {
    let ops = [Operator::new("one", Kind::RsaSubkey), Operator::new("two", Kind::Curve25519)];
    let dir = tempfile::tempdir().unwrap();
    let s = start_with_legacy_ceremonies(dir.path());
    let a = &s.addr;
    let files = format!("{},{}", ops[0].binary_file.display(), ops[1].armored_file.display());
    let text = run_ok(
        bin,
        a,
        None,
        &[
            "operator",
            "init",
            "-key-shares=2",
            "-key-threshold=2",
            &format!("-pgp-keys={files}"),
            &format!("-root-token-pgp-key={}", ops[0].binary_file.display()),
        ],
    );
    let (enc_keys, enc_root) = init_output(&text);
    assert_eq!(enc_keys.len(), 2, "{text}");
    let shares: Vec<String> = enc_keys.iter().zip(&ops).map(|(k, op)| op.decrypt(k)).collect();
    let root = ops[0].decrypt(&enc_root);
    for k in &shares {
        run_ok(bin, a, None, &["operator", "unseal", k]);
    }
    token_works(a, &root);
    let t = Some(root.as_str());

    // Rekey to the same two operators, with a backup.
    let text = run_ok(
        bin,
        a,
        t,
        &[
            "operator",
            rekey_cmd,
            "-init",
            "-key-shares=2",
            "-key-threshold=2",
            &format!("-pgp-keys={files}"),
            "-backup",
        ],
    );
    assert!(text.contains(&ops[0].fingerprint) && text.contains(&ops[1].fingerprint), "{text}");
    let (_, status) = get(a, "sys/rekey/init", None);
    let nonce = status["nonce"].as_str().unwrap().to_string();
    let mut last = String::new();
    for k in &shares {
        last = run_ok(bin, a, t, &["operator", rekey_cmd, &format!("-nonce={nonce}"), k]);
    }
    let new_enc: Vec<String> = last
        .lines()
        .filter(|l| l.starts_with("Key ") && l.contains("fingerprint: "))
        .map(|l| l.rsplit("value: ").next().unwrap().trim().to_string())
        .collect();
    assert_eq!(new_enc.len(), 2, "{last}");
    assert!(last.contains(&format!("Key 1 fingerprint: {}; value: ", ops[0].fingerprint)), "{last}");

    let retrieved = run_ok(bin, a, t, &["operator", rekey_cmd, "-backup-retrieve", "-format=json"]);
    let v = json(&retrieved);
    let data = if v.get("data").is_some_and(|d| !d.is_null()) { v["data"].clone() } else { v.clone() };
    assert_eq!(data["nonce"], nonce.as_str(), "{retrieved}");
    let new_shares: Vec<String> =
        ops.iter().map(|op| op.decrypt(strings(&data["keys_base64"][&op.fingerprint])[0].as_str())).collect();
    assert_eq!(new_shares, new_enc.iter().zip(&ops).map(|(k, op)| op.decrypt(k)).collect::<Vec<_>>());
    run_ok(bin, a, t, &["operator", rekey_cmd, "-backup-delete"]);
    let o = cli(bin, a, t, &["operator", rekey_cmd, "-backup-retrieve"]);
    assert!(!o.status.success() && out(&o).contains("no backed-up keys found"), "{}", out(&o));

    seal(a, &root);
    for k in &new_shares {
        run_ok(bin, a, None, &["operator", "unseal", k]);
    }

    // A new root token, encrypted to operator two's key.
    let init = run_ok(
        bin,
        a,
        t,
        &["operator", "generate-root", "-init", &format!("-pgp-key={}", ops[1].armored_file.display())],
    );
    assert!(init.contains(&ops[1].fingerprint), "{init}");
    let (_, status) = get(a, "sys/generate-root/attempt", None);
    let nonce = status["nonce"].as_str().unwrap().to_string();
    let mut last = Value::Null;
    for k in &new_shares {
        let text = run_ok(bin, a, t, &["operator", "generate-root", "-format=json", &format!("-nonce={nonce}"), k]);
        last = json(&text);
    }
    let encoded = last["encoded_token"].as_str().or(last["encoded_root_token"].as_str()).unwrap().to_string();
    let token = ops[1].decrypt(&encoded);
    token_works(a, &token);

    // keybase: names are refused before anything is sent (bao would try to reach keybase.io).
    if rekey_cmd != "rekey" {
        return;
    }
    let o =
        cli(bin, a, t, &["operator", rekey_cmd, "-init", "-key-shares=1", "-key-threshold=1", "-pgp-keys=keybase:x"]);
    assert!(!o.status.success(), "{}", out(&o));
    assert_eq!(get(a, "sys/rekey/init", None).1["started"], false);
}

#[test]
fn bao_cli_inits_rekeys_with_backup_and_generates_root_with_pgp_keys_against_coffer() {
    let Some(bao) = bao_path() else { return };
    cli_ceremonies(&bao, "rotate-keys");
}

#[test]
fn coffer_cli_inits_rekeys_with_backup_and_generates_root_with_pgp_keys() {
    cli_ceremonies(coffer_bin(), "rekey");
}

#[test]
fn recovery_keys_of_a_transit_seal_are_encrypted_rekeyed_and_backed_up_with_pgp() {
    use seal_common::*;
    let ops = [Operator::new("r1", Kind::Curve25519), Operator::new("r2", Kind::RsaSubkey)];
    let transit = Server::start_dev("dev-root");
    transit_key(&transit.addr, "dev-root", "coffer-unseal");
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &transit_stanza(&transit.addr, "dev-root", "coffer-unseal"));
    let s = start(&config, &[]);
    let pgp: Vec<String> = ops.iter().map(|o| o.b64.clone()).collect();

    // pgp_keys is for unseal keys, which an auto seal has none of.
    let (st, v) =
        put(&s.addr, "sys/init", None, &json!({"recovery_shares": 2, "recovery_threshold": 2, "pgp_keys": pgp}));
    assert_eq!(st, 400, "{v}");
    assert!(v["errors"][0].as_str().unwrap().contains("recovery_pgp_keys"), "{v}");

    let (st, v) = put(
        &s.addr,
        "sys/init",
        None,
        &json!({"recovery_shares": 2, "recovery_threshold": 2, "recovery_pgp_keys": pgp, "root_token_pgp_key": ops[0].b64}),
    );
    assert_eq!(st, 200, "{v}");
    let enc = strings(&v["recovery_keys_base64"]);
    assert_eq!(strings(&v["recovery_keys"]), enc.iter().map(|b| b64_to_hex(b)).collect::<Vec<_>>());
    let recovery: Vec<String> = enc.iter().zip(&ops).map(|(k, op)| op.decrypt(k)).collect();
    let root = ops[0].decrypt(v["root_token"].as_str().unwrap());
    wait_sealed(&s, false, Duration::from_secs(5));
    token_works(&s.addr, &root);

    // Rekey the recovery keys through the newer path, encrypted and backed up.
    let (st, v) = put(
        &s.addr,
        "sys/rotate/recovery/init",
        Some(&root),
        &json!({"secret_shares": 2, "secret_threshold": 2, "pgp_keys": pgp, "backup": true}),
    );
    assert_eq!(st, 200, "{v}");
    let nonce = v["data"]["nonce"].as_str().unwrap().to_string();
    let mut done = Value::Null;
    for k in &recovery {
        let (st, v) = put(&s.addr, "sys/rotate/recovery/update", Some(&root), &json!({"key": k, "nonce": nonce}));
        assert_eq!(st, 200, "{v}");
        done = v["data"].clone();
    }
    assert_eq!(done["complete"], true, "{done}");
    let (st, b) = get(&s.addr, "sys/rekey/recovery-key-backup", Some(&root));
    assert_eq!(st, 200, "{b}");
    let new_recovery: Vec<String> =
        ops.iter().map(|op| op.decrypt(strings(&b["data"]["keys_base64"][&op.fingerprint])[0].as_str())).collect();
    assert_ne!(new_recovery, recovery);
    // The unseal-key backup is a separate thing, and empty.
    assert_eq!(get(&s.addr, "sys/rekey/backup", Some(&root)).0, 400);

    // The new recovery shares are the ones generate-root accepts now.
    // (through the current path: the legacy sys/generate-root/* is off by default, as in OpenBao)
    let (_, v) = put(&s.addr, "sys/generate-root-token/attempt", Some(&root), &json!({"pgp_key": ops[1].b64}));
    let gr_nonce = v["data"]["nonce"].as_str().unwrap_or_else(|| panic!("{v}")).to_string();
    let mut last = Value::Null;
    for k in &new_recovery {
        let (st, v) =
            put(&s.addr, "sys/generate-root-token/update", Some(&root), &json!({"key": k, "nonce": gr_nonce}));
        assert_eq!(st, 200, "{v}");
        last = v["data"].clone();
    }
    token_works(&s.addr, &ops[1].decrypt(last["encoded_token"].as_str().unwrap()));

    let (st, _) = http(&s.addr, "DELETE", "/v1/sys/rotate/recovery/backup", &[("X-Vault-Token", &root)], b"");
    assert_eq!(st, 204);
    assert_eq!(get(&s.addr, "sys/rekey/recovery-key-backup", Some(&root)).0, 400);
}

/// A file-storage server whose listener also serves the legacy unauthenticated ceremony paths
/// (`sys/rekey/*`, `sys/generate-root/*`), which OpenBao 2.x and Coffer keep off by default:
/// these tests drive them, as operators of older deployments do.
fn start_with_legacy_ceremonies(dir: &std::path::Path) -> Server {
    Server::start_file_with_listener(
        dir,
        "  disable_unauthed_rekey_endpoints = false\n  disable_unauthed_generate_root_endpoints = false\n",
    )
}
