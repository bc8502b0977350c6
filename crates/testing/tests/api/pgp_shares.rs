//! PGP-encrypted key shares and root tokens over HTTP, in-process, with real GnuPG (each
//! operator a GnuPG home of their own, so a share decrypts only for the operator it was
//! encrypted to): init, rekey with backup, generate-root, and bad keys refused. The core runs
//! on file storage with the legacy unauthenticated ceremonies on, as operators of older
//! deployments drive them. (The `bao` and `coffer` CLIs, and the transit seal's recovery keys:
//! crates/coffer/tests/pgp_shares.rs.)

use crate::gpg_operator::{Kind, Operator};
use coffer_testing::TestCore;
use serde_json::{json, Value};

const LEGACY: &str = "listener \"tcp\" {\n  address = \"127.0.0.1:8200\"\n  tls_disable = true\n  \
                      disable_unauthed_rekey_endpoints = false\n  disable_unauthed_generate_root_endpoints = false\n}\n";

async fn fresh() -> TestCore {
    TestCore::builder().uninitialized().file_storage().config(LEGACY).start().await
}

async fn put(c: &TestCore, path: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
    let headers: Vec<(&str, &str)> = token.map(|t| vec![("X-Vault-Token", t)]).unwrap_or_default();
    let (st, text) = c.http("PUT", &format!("/v1/{path}"), &headers, body.to_string().as_bytes()).await;
    (st, if text.trim().is_empty() { Value::Null } else { coffer_testing::json(&text) })
}

async fn get(c: &TestCore, path: &str, token: Option<&str>) -> (u16, Value) {
    let headers: Vec<(&str, &str)> = token.map(|t| vec![("X-Vault-Token", t)]).unwrap_or_default();
    let (st, text) = c.http("GET", &format!("/v1/{path}"), &headers, b"").await;
    (st, if text.trim().is_empty() { Value::Null } else { coffer_testing::json(&text) })
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().unwrap_or_else(|| panic!("not a list: {v}")).iter().map(|x| x.as_str().unwrap().to_string()).collect()
}

fn b64_to_hex(b64: &str) -> String {
    use base64::Engine;
    hex::encode(base64::engine::general_purpose::STANDARD.decode(b64).unwrap())
}

async fn token_works(c: &TestCore, token: &str) {
    let (st, v) = get(c, "auth/token/lookup-self", Some(token)).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["data"]["policies"], json!(["root"]), "{v}");
}

async fn unseal(c: &TestCore, keys: &[String]) {
    for k in keys {
        let (st, v) = put(c, "sys/unseal", None, &json!({ "key": k })).await;
        assert_eq!(st, 200, "unseal: {v}");
    }
    assert_eq!(get(c, "sys/seal-status", None).await.1["sealed"], false);
}

#[tokio::test]
async fn init_with_pgp_keys_encrypts_each_share_to_its_operator_and_the_decrypted_shares_unseal() {
    let ops = [
        Operator::new("rsa", Kind::RsaSubkey),
        Operator::new("curve", Kind::Curve25519),
        Operator::new("rsaprimary", Kind::RsaPrimaryEncrypts),
    ];
    let c = &fresh().await;
    let (st, v) = put(
        c,
        "sys/init",
        None,
        &json!({
            "secret_shares": 3, "secret_threshold": 2,
            "pgp_keys": ops.iter().map(|o| o.b64.clone()).collect::<Vec<_>>(),
            "root_token_pgp_key": ops[1].b64,
        }),
    )
    .await;
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

    unseal(c, &shares[1..]).await;
    token_works(c, &root).await;
}

#[tokio::test]
async fn rekey_with_pgp_keys_and_backup_stores_encrypted_shares_that_unseal_after_retrieval() {
    let ops = [Operator::new("a", Kind::RsaSubkey), Operator::new("b", Kind::Curve25519)];
    let mut core = fresh().await;
    let (keys, root) = core.init_unseal().await;
    let c = &core;

    // No backup yet: 400 with OpenBao's words; a token is needed (no sudo).
    let (st, v) = get(c, "sys/rekey/backup", Some(&root)).await;
    assert_eq!(st, 400, "{v}");
    assert_eq!(v["errors"][0], "no backed-up keys found");
    assert_eq!(get(c, "sys/rekey/backup", None).await.0, 403);

    let pgp: Vec<String> = ops.iter().map(|o| o.b64.clone()).collect();
    let (st, v) = put(
        c,
        "sys/rekey/init",
        None,
        &json!({ "secret_shares": 2, "secret_threshold": 2, "pgp_keys": pgp, "backup": true }),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let fps: Vec<String> = ops.iter().map(|o| o.fingerprint.clone()).collect();
    assert_eq!(strings(&v["pgp_fingerprints"]), fps, "{v}");
    assert_eq!(v["backup"], true);
    let nonce = v["nonce"].as_str().unwrap().to_string();
    let (_, status) = get(c, "sys/rekey/init", None).await;
    assert_eq!(strings(&status["pgp_fingerprints"]), fps);

    let mut done = Value::Null;
    for k in &keys[..3] {
        let (st, v) = put(c, "sys/rekey/update", None, &json!({ "key": k, "nonce": nonce })).await;
        assert_eq!(st, 200, "{v}");
        done = v;
    }
    assert_eq!(done["complete"], true, "{done}");
    assert_eq!(done["backup"], true);
    assert_eq!(strings(&done["pgp_fingerprints"]), fps);
    let new_b64 = strings(&done["keys_base64"]);

    // The backup: fingerprint → the encrypted shares, hex and base64, with the rekey's nonce.
    let (st, b) = get(c, "sys/rekey/backup", Some(&root)).await;
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
    let (st, b2) = get(c, "sys/rotate/root/backup", Some(&root)).await;
    assert_eq!((st, &b2["data"]), (200, &b["data"]));

    // The old keys no longer unseal; the decrypted backed-up shares do.
    let (st, v) = put(c, "sys/seal", Some(&root), &json!({})).await;
    assert_eq!(st, 204, "{v}");
    let (st, v) = put(c, "sys/unseal", None, &json!({ "key": keys[0] })).await;
    assert_eq!((st, &v["progress"]), (200, &json!(1)), "{v}");
    let (st, v) = put(c, "sys/unseal", None, &json!({ "key": keys[1] })).await;
    assert_eq!(st, 400, "two old shares must not unseal after the rekey: {v}");
    unseal(c, &from_backup).await;
    token_works(c, &root).await;

    let (st, _) = c.http("DELETE", "/v1/sys/rekey/backup", &[("X-Vault-Token", &root)], b"").await;
    assert_eq!(st, 204);
    assert_eq!(get(c, "sys/rekey/backup", Some(&root)).await.0, 400);
}

#[tokio::test]
async fn generate_root_with_pgp_key_returns_a_token_only_the_key_holder_can_read() {
    let op = Operator::new("gr", Kind::Curve25519);
    let stranger = Operator::new("stranger", Kind::RsaSubkey);
    let mut core = fresh().await;
    let (keys, _root) = core.init_unseal().await;
    let c = &core;

    let (st, v) = put(c, "sys/generate-root/attempt", None, &json!({ "pgp_key": op.b64 })).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["pgp_fingerprint"], op.fingerprint.as_str());
    assert_eq!(v["otp"], "", "no OTP with a PGP key");
    let nonce = v["nonce"].as_str().unwrap().to_string();
    let (_, status) = get(c, "sys/generate-root/attempt", None).await;
    assert_eq!(status["pgp_fingerprint"], op.fingerprint.as_str());

    let mut done = Value::Null;
    for k in &keys[..3] {
        let (st, v) = put(c, "sys/generate-root/update", None, &json!({ "key": k, "nonce": nonce })).await;
        assert_eq!(st, 200, "{v}");
        done = v;
    }
    assert_eq!(done["complete"], true, "{done}");
    let encoded = done["encoded_token"].as_str().unwrap();
    assert!(stranger.decrypt_b64(encoded).is_err());
    let token = op.decrypt(encoded);
    assert!(token.starts_with("s."), "{token}");
    token_works(c, &token).await;
}

#[tokio::test]
async fn bad_pgp_input_gets_a_400_naming_the_problem_and_changes_nothing() {
    let good = Operator::new("good", Kind::Curve25519);
    let sign_only = Operator::new("signonly", Kind::RsaSignOnly);
    let expired = Operator::new("expired", Kind::ExpiredSubkey);
    let revoked = Operator::new("revoked", Kind::Revoked);
    let mut core = fresh().await;

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
        let (st, v) = put(&core, "sys/init", None, &body).await;
        assert_eq!(st, 400, "{body} → {v}");
        let msg = v["errors"][0].as_str().unwrap_or_default();
        assert!(msg.contains(want), "{body}: {msg:?} should contain {want:?}");
    }
    // Unlike OpenBao (which initialises, then fails on a bad root_token_pgp_key), nothing was
    // initialised by any of these.
    assert_eq!(get(&core, "sys/init", None).await.1["initialized"], false);

    core.init_unseal().await;
    let c = &core;
    for (body, want) in [
        (json!({"secret_shares": 3, "secret_threshold": 2, "pgp_keys": [good.b64]}), "count mismatch"),
        (json!({"secret_shares": 1, "secret_threshold": 1, "backup": true}), "backup requires pgp_keys"),
    ] {
        let (st, v) = put(c, "sys/rekey/init", None, &body).await;
        assert_eq!(st, 400, "{v}");
        assert!(v["errors"][0].as_str().unwrap_or_default().contains(want), "{v}");
    }
    assert_eq!(get(c, "sys/rekey/init", None).await.1["started"], false);
    let (st, v) =
        put(c, "sys/generate-root/attempt", None, &json!({"pgp_key": good.b64, "otp": "abcdefghijklmnopqrstuvwxyz"}))
            .await;
    assert_eq!(st, 400, "{v}");
    assert!(v["errors"][0].as_str().unwrap().contains("either otp or pgp_key"), "{v}");
    let (st, v) = put(c, "sys/generate-root/attempt", None, &json!({"pgp_key": sign_only.b64})).await;
    assert_eq!(st, 400, "{v}");
    assert!(v["errors"][0].as_str().unwrap().contains("pgp_key"), "{v}");
}
