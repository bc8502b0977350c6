//! PGP-encrypted key shares, root tokens and the rekey backup, with real GnuPG: throwaway keys
//! made by `gpg --quick-gen-key` (RSA with an encryption subkey, RSA whose primary key
//! encrypts, Curve25519), each operator in a GnuPG home of their own, so a share decrypts only
//! for the operator it was encrypted to. Driven over HTTP, by the real `bao` CLI and by
//! Coffer's own CLI against the real `coffer server` on file storage.

mod common;
mod seal_common;

use common::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// One operator's GnuPG home with one key pair.
struct Operator {
    home: tempfile::TempDir,
    fingerprint: String,
    /// base64 of the binary public key, as `pgp_keys` takes it.
    b64: String,
    /// The public key exported in binary and armored form.
    binary_file: PathBuf,
    armored_file: PathBuf,
}

fn gpg(home: &Path, args: &[&str], stdin: Option<&[u8]>) -> std::process::Output {
    let mut c = Command::new("gpg");
    c.env("GNUPGHOME", home)
        .args(["--batch", "--no-tty", "--quiet", "--pinentry-mode", "loopback", "--passphrase", ""])
        .args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("gpg must be installed (Debian package gnupg; scripts/test installs it)");
    if let Some(input) = stdin {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(input).unwrap();
    }
    child.wait_with_output().unwrap()
}

fn gpg_ok(home: &Path, args: &[&str]) -> String {
    let o = gpg(home, args, None);
    assert!(o.status.success(), "gpg {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// The kinds of key an operator may bring.
#[derive(Clone, Copy)]
enum Kind {
    /// RSA primary key (sign, certify) with an RSA encryption subkey.
    RsaSubkey,
    /// Ed25519 primary with a Curve25519 (ECDH) encryption subkey: gpg's `future-default`.
    Curve25519,
    /// A single RSA key that signs and encrypts (no subkey).
    RsaPrimaryEncrypts,
    /// A single RSA key that only signs: nothing to encrypt to.
    RsaSignOnly,
    /// Made in 2020 with a Curve25519 encryption subkey that expired a day later.
    ExpiredSubkey,
    /// A Curve25519 key whose primary key carries its revocation.
    Revoked,
}

impl Operator {
    fn new(name: &str, kind: Kind) -> Operator {
        let home = tempfile::Builder::new().prefix("gpg").tempdir_in("/tmp").unwrap();
        let uid = format!("{name} <{name}@example.com>");
        match kind {
            Kind::RsaSubkey => {
                gpg_ok(home.path(), &["--quick-gen-key", &uid, "rsa2048", "sign,cert", "never"]);
            }
            Kind::Curve25519 => {
                gpg_ok(home.path(), &["--quick-gen-key", &uid, "future-default", "default", "never"]);
            }
            Kind::RsaPrimaryEncrypts => {
                gpg_ok(home.path(), &["--quick-gen-key", &uid, "rsa2048", "sign,cert,encr", "never"]);
            }
            Kind::RsaSignOnly => {
                gpg_ok(home.path(), &["--quick-gen-key", &uid, "rsa2048", "sign,cert", "never"]);
            }
            Kind::ExpiredSubkey => {
                let then = ["--faked-system-time", "20200101T000000"];
                gpg_ok(home.path(), &[&then[..], &["--quick-gen-key", &uid, "ed25519", "sign,cert", "never"]].concat());
            }
            Kind::Revoked => {
                gpg_ok(home.path(), &["--quick-gen-key", &uid, "future-default", "default", "never"]);
            }
        }
        let listing = gpg_ok(home.path(), &["--with-colons", "--list-keys", &uid]);
        let fingerprint = listing
            .lines()
            .find(|l| l.starts_with("fpr:"))
            .and_then(|l| l.split(':').nth(9))
            .unwrap()
            .to_ascii_lowercase();
        match kind {
            Kind::RsaSubkey => {
                gpg_ok(home.path(), &["--quick-add-key", &fingerprint, "rsa2048", "encr", "never"]);
            }
            Kind::ExpiredSubkey => {
                gpg_ok(
                    home.path(),
                    &[
                        "--faked-system-time",
                        "20200101T000000",
                        "--quick-add-key",
                        &fingerprint,
                        "cv25519",
                        "encr",
                        "1d",
                    ],
                );
            }
            Kind::Revoked => {
                // gpg keeps a revocation certificate for every new key, each line guarded by ':'.
                let cert = home.path().join("openpgp-revocs.d").join(format!("{}.rev", fingerprint.to_uppercase()));
                let text = std::fs::read_to_string(&cert).unwrap();
                let unguarded: String = text.lines().map(|l| format!("{}\n", l.trim_start_matches(':'))).collect();
                let o = gpg(home.path(), &["--import"], Some(unguarded.as_bytes()));
                assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            }
            _ => {}
        }
        let binary = gpg(home.path(), &["--export", &fingerprint], None).stdout;
        assert!(!binary.is_empty());
        let armored = gpg(home.path(), &["--armor", "--export", &fingerprint], None).stdout;
        let binary_file = home.path().join(format!("{name}.gpg"));
        let armored_file = home.path().join(format!("{name}.asc"));
        std::fs::write(&binary_file, &binary).unwrap();
        std::fs::write(&armored_file, &armored).unwrap();
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode(&binary);
        Operator { home, fingerprint, b64, binary_file, armored_file }
    }

    /// `base64 -d | gpg --decrypt`: what an operator does with what they were handed.
    fn decrypt_b64(&self, b64: &str) -> Result<String, String> {
        use base64::Engine;
        let msg = base64::engine::general_purpose::STANDARD.decode(b64.trim()).map_err(|e| e.to_string())?;
        let o = gpg(self.home.path(), &["--decrypt"], Some(&msg));
        if o.status.success() {
            Ok(String::from_utf8(o.stdout).unwrap())
        } else {
            Err(String::from_utf8_lossy(&o.stderr).to_string())
        }
    }

    fn decrypt(&self, b64: &str) -> String {
        self.decrypt_b64(b64).unwrap_or_else(|e| panic!("gpg could not decrypt for {}: {e}", self.fingerprint))
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        // The gpg-agent this home started.
        let _ = Command::new("gpgconf")
            .env("GNUPGHOME", self.home.path())
            .args(["--kill", "all"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

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

#[test]
fn init_with_pgp_keys_encrypts_each_share_to_its_operator_and_the_decrypted_shares_unseal() {
    let ops = [
        Operator::new("rsa", Kind::RsaSubkey),
        Operator::new("curve", Kind::Curve25519),
        Operator::new("rsaprimary", Kind::RsaPrimaryEncrypts),
    ];
    let dir = tempfile::tempdir().unwrap();
    let s = start_with_legacy_ceremonies(dir.path());
    let (st, v) = put(
        &s.addr,
        "sys/init",
        None,
        &json!({
            "secret_shares": 3, "secret_threshold": 2,
            "pgp_keys": ops.iter().map(|o| o.b64.clone()).collect::<Vec<_>>(),
            "root_token_pgp_key": ops[1].b64,
        }),
    );
    assert_eq!(st, 200, "{v}");
    let (hex_keys, b64_keys) = (strings(&v["keys"]), strings(&v["keys_base64"]));
    assert_eq!(b64_keys.len(), 3);
    // `keys` is the same encrypted message as `keys_base64`, in hex, as OpenBao answers.
    for (h, b) in hex_keys.iter().zip(&b64_keys) {
        assert_eq!(h, &b64_to_hex(b));
    }
    // Each share decrypts for its operator only; the plaintext is the share in hex.
    let mut shares = vec![];
    for (i, op) in ops.iter().enumerate() {
        let share = op.decrypt(&b64_keys[i]);
        assert_eq!(share.len(), 66, "a 33-byte share in hex: {share:?}");
        assert!(share.chars().all(|c| c.is_ascii_hexdigit()));
        let other = &ops[(i + 1) % 3];
        assert!(other.decrypt_b64(&b64_keys[i]).is_err(), "share {i} must not decrypt for another operator");
        shares.push(share);
    }
    let root = ops[1].decrypt(v["root_token"].as_str().unwrap());
    assert!(root.starts_with("s."), "{root}");
    assert!(ops[0].decrypt_b64(v["root_token"].as_str().unwrap()).is_err());

    unseal(&s.addr, &shares[1..]);
    token_works(&s.addr, &root);
}

#[test]
fn rekey_with_pgp_keys_and_backup_stores_encrypted_shares_that_unseal_after_retrieval() {
    let ops = [Operator::new("a", Kind::RsaSubkey), Operator::new("b", Kind::Curve25519)];
    let dir = tempfile::tempdir().unwrap();
    let s = start_with_legacy_ceremonies(dir.path());
    let (keys, root) = init_unseal(&s.addr);

    // No backup yet: 400 with OpenBao's words; a token is needed (no sudo).
    let (st, v) = get(&s.addr, "sys/rekey/backup", Some(&root));
    assert_eq!(st, 400, "{v}");
    assert_eq!(v["errors"][0], "no backed-up keys found");
    assert_eq!(get(&s.addr, "sys/rekey/backup", None).0, 403);

    let pgp: Vec<String> = ops.iter().map(|o| o.b64.clone()).collect();
    let (st, v) = put(
        &s.addr,
        "sys/rekey/init",
        None,
        &json!({ "secret_shares": 2, "secret_threshold": 2, "pgp_keys": pgp, "backup": true }),
    );
    assert_eq!(st, 200, "{v}");
    let fps: Vec<String> = ops.iter().map(|o| o.fingerprint.clone()).collect();
    assert_eq!(strings(&v["pgp_fingerprints"]), fps, "{v}");
    assert_eq!(v["backup"], true);
    let nonce = v["nonce"].as_str().unwrap().to_string();
    let (_, status) = get(&s.addr, "sys/rekey/init", None);
    assert_eq!(strings(&status["pgp_fingerprints"]), fps);

    let mut done = Value::Null;
    for k in &keys[..3] {
        let (st, v) = put(&s.addr, "sys/rekey/update", None, &json!({ "key": k, "nonce": nonce }));
        assert_eq!(st, 200, "{v}");
        done = v;
    }
    assert_eq!(done["complete"], true, "{done}");
    assert_eq!(done["backup"], true);
    assert_eq!(strings(&done["pgp_fingerprints"]), fps);
    let new_b64 = strings(&done["keys_base64"]);

    // The backup: fingerprint → the encrypted shares, hex and base64, with the rekey's nonce.
    let (st, b) = get(&s.addr, "sys/rekey/backup", Some(&root));
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["data"]["nonce"], nonce.as_str());
    assert_eq!(b["nonce"], nonce.as_str(), "also at the top level, as OpenBao answers");
    let mut from_backup = vec![];
    for (i, op) in ops.iter().enumerate() {
        let hexes = strings(&b["data"]["keys"][&op.fingerprint]);
        let b64s = strings(&b["data"]["keys_base64"][&op.fingerprint]);
        assert_eq!(b64s, vec![new_b64[i].clone()]);
        assert_eq!(hexes, vec![b64_to_hex(&new_b64[i])]);
        from_backup.push(op.decrypt(&b64s[0]));
    }
    // The same backup through the newer path.
    let (st, b2) = get(&s.addr, "sys/rotate/root/backup", Some(&root));
    assert_eq!((st, &b2["data"]), (200, &b["data"]));

    // The old keys no longer unseal; the decrypted backed-up shares do.
    seal(&s.addr, &root);
    let (st, v) = put(&s.addr, "sys/unseal", None, &json!({ "key": keys[0] }));
    assert_eq!((st, &v["progress"]), (200, &json!(1)), "{v}");
    let (st, v) = put(&s.addr, "sys/unseal", None, &json!({ "key": keys[1] }));
    assert_eq!(st, 400, "two old shares must not unseal after the rekey: {v}");
    unseal(&s.addr, &from_backup);
    token_works(&s.addr, &root);

    let (st, _) = http(&s.addr, "DELETE", "/v1/sys/rekey/backup", &[("X-Vault-Token", &root)], b"");
    assert_eq!(st, 204);
    assert_eq!(get(&s.addr, "sys/rekey/backup", Some(&root)).0, 400);
}

#[test]
fn generate_root_with_pgp_key_returns_a_token_only_the_key_holder_can_read() {
    let op = Operator::new("gr", Kind::Curve25519);
    let stranger = Operator::new("stranger", Kind::RsaSubkey);
    let dir = tempfile::tempdir().unwrap();
    let s = start_with_legacy_ceremonies(dir.path());
    let (keys, _root) = init_unseal(&s.addr);

    let (st, v) = put(&s.addr, "sys/generate-root/attempt", None, &json!({ "pgp_key": op.b64 }));
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["pgp_fingerprint"], op.fingerprint.as_str());
    assert_eq!(v["otp"], "", "no OTP with a PGP key");
    let nonce = v["nonce"].as_str().unwrap().to_string();
    let (_, status) = get(&s.addr, "sys/generate-root/attempt", None);
    assert_eq!(status["pgp_fingerprint"], op.fingerprint.as_str());

    let mut done = Value::Null;
    for k in &keys[..3] {
        let (st, v) = put(&s.addr, "sys/generate-root/update", None, &json!({ "key": k, "nonce": nonce }));
        assert_eq!(st, 200, "{v}");
        done = v;
    }
    assert_eq!(done["complete"], true, "{done}");
    let encoded = done["encoded_token"].as_str().unwrap();
    assert!(stranger.decrypt_b64(encoded).is_err());
    let token = op.decrypt(encoded);
    assert!(token.starts_with("s."), "{token}");
    token_works(&s.addr, &token);
}

#[test]
fn bad_pgp_input_gets_a_400_naming_the_problem_and_changes_nothing() {
    let good = Operator::new("good", Kind::Curve25519);
    let sign_only = Operator::new("signonly", Kind::RsaSignOnly);
    let expired = Operator::new("expired", Kind::ExpiredSubkey);
    let revoked = Operator::new("revoked", Kind::Revoked);
    let dir = tempfile::tempdir().unwrap();
    let s = start_with_legacy_ceremonies(dir.path());
    let init = |body: Value| put(&s.addr, "sys/init", None, &body);

    let cases = [
        (json!({"secret_shares": 1, "secret_threshold": 1, "pgp_keys": ["aGVsbG8="]}), "not an OpenPGP public key"),
        (json!({"secret_shares": 1, "secret_threshold": 1, "pgp_keys": ["!!!"]}), "error decoding given PGP key"),
        (json!({"secret_shares": 2, "secret_threshold": 2, "pgp_keys": [good.b64]}), "count mismatch"),
        (json!({"secret_shares": 1, "secret_threshold": 1, "pgp_keys": [sign_only.b64]}), "no valid encryption key"),
        (json!({"secret_shares": 1, "secret_threshold": 1, "pgp_keys": [expired.b64]}), "no valid encryption key"),
        (json!({"secret_shares": 1, "secret_threshold": 1, "pgp_keys": [revoked.b64]}), "no valid encryption key"),
        (json!({"secret_shares": 1, "secret_threshold": 1, "pgp_keys": ["keybase:someone"]}), "keybase"),
        (json!({"secret_shares": 1, "secret_threshold": 1, "root_token_pgp_key": "aGVsbG8="}), "root_token_pgp_key"),
        (
            json!({"secret_shares": 1, "secret_threshold": 1, "recovery_pgp_keys": [good.b64]}),
            "recovery_pgp_keys applies only with an auto-unseal seal",
        ),
    ];
    for (body, want) in cases {
        let (st, v) = init(body.clone());
        assert_eq!(st, 400, "{body} → {v}");
        let msg = v["errors"][0].as_str().unwrap_or_default();
        assert!(msg.contains(want), "{body}: {msg:?} should contain {want:?}");
    }
    // Unlike OpenBao (which initialises, then fails on a bad root_token_pgp_key), nothing was
    // initialised by any of these.
    assert_eq!(get(&s.addr, "sys/init", None).1["initialized"], false);

    let (keys, _root) = init_unseal(&s.addr);
    let _ = keys;
    for (body, want) in [
        (json!({"secret_shares": 3, "secret_threshold": 2, "pgp_keys": [good.b64]}), "count mismatch"),
        (json!({"secret_shares": 1, "secret_threshold": 1, "backup": true}), "backup requires pgp_keys"),
    ] {
        let (st, v) = put(&s.addr, "sys/rekey/init", None, &body);
        assert_eq!(st, 400, "{v}");
        assert!(v["errors"][0].as_str().unwrap_or_default().contains(want), "{v}");
    }
    assert_eq!(get(&s.addr, "sys/rekey/init", None).1["started"], false);
    let (st, v) = put(
        &s.addr,
        "sys/generate-root/attempt",
        None,
        &json!({"pgp_key": good.b64, "otp": "abcdefghijklmnopqrstuvwxyz"}),
    );
    assert_eq!(st, 400, "{v}");
    assert!(v["errors"][0].as_str().unwrap().contains("either otp or pgp_key"), "{v}");
    let (st, v) = put(&s.addr, "sys/generate-root/attempt", None, &json!({"pgp_key": sign_only.b64}));
    assert_eq!(st, 400, "{v}");
    assert!(v["errors"][0].as_str().unwrap().contains("pgp_key"), "{v}");
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
