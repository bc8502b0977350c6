//! Transit interoperability with the real OpenBao: keys backed up on one server restore on the
//! other, and what one encrypts, signs or HMACs the other decrypts or verifies — for every key
//! type that can be backed up, both directions, plus derived and convergent keys. And the real
//! `bao` CLI encrypts and decrypts against Coffer.
mod common;
use common::*;
use serde_json::{json, Value};

/// One request with the root token; returns (status, JSON body or null).
fn call(addr: &str, method: &str, path: &str, body: Value) -> (u16, Value) {
    let raw = if body.is_null() { Vec::new() } else { body.to_string().into_bytes() };
    let (st, text) = http(addr, method, &format!("/v1/{path}"), &[("X-Vault-Token", "root")], &raw);
    (st, if text.trim().is_empty() { Value::Null } else { json(&text) })
}

fn ok(addr: &str, method: &str, path: &str, body: Value) -> Value {
    let (st, v) = call(addr, method, path, body);
    assert!(st == 200 || st == 204, "{method} {path} on {addr}: {st} {v}");
    v
}

fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// Both servers, each with transit mounted at transit/.
struct Pair {
    bao: RealBao,
    coffer: Server,
}

impl Pair {
    fn start() -> Option<Pair> {
        let bao = bao_path()?;
        let pair = Pair { bao: RealBao::start(&bao), coffer: Server::start_dev("root") };
        for addr in [&pair.bao.addr, &pair.coffer.addr] {
            ok(addr, "POST", "sys/mounts/transit", json!({"type": "transit"}));
        }
        Some(pair)
    }
}

const BACKUP_TYPES: [&str; 11] = [
    "aes128-gcm96",
    "aes256-gcm96",
    "chacha20-poly1305",
    "rsa-2048",
    "rsa-3072",
    "rsa-4096",
    "ed25519",
    "ecdsa-p256",
    "ecdsa-p384",
    "ecdsa-p521",
    "hmac",
];

/// Creates `name` on `src` (exportable, plaintext backup allowed), backs it up and restores
/// the backup into `dst`; returns the backup.
fn move_key(src: &str, dst: &str, name: &str, mut body: Value) -> String {
    body["exportable"] = true.into();
    body["allow_plaintext_backup"] = true.into();
    ok(src, "POST", &format!("transit/keys/{name}"), body);
    ok(src, "POST", &format!("transit/keys/{name}/rotate"), json!({}));
    let backup =
        ok(src, "GET", &format!("transit/backup/{name}"), Value::Null)["data"]["backup"].as_str().unwrap().to_string();
    let (st, v) = call(dst, "POST", &format!("transit/restore/{name}"), json!({"backup": backup}));
    assert_eq!(st, 204, "restore of {name} into {dst}: {v}");
    backup
}

/// The signing variants each key type supports on both servers.
fn sign_variants(ty: &str) -> Vec<Value> {
    let mut out = vec![];
    for m in ["asn1", "jws"] {
        if ty.starts_with("rsa") {
            for h in ["sha2-256", "sha2-384", "sha2-512"] {
                for (alg, salt) in [("pss", "auto"), ("pss", "hash"), ("pss", "32"), ("pkcs1v15", "auto")] {
                    out.push(json!({"hash_algorithm": h, "marshaling_algorithm": m, "signature_algorithm": alg, "salt_length": salt}));
                }
            }
        } else if ty.starts_with("ecdsa") {
            for h in
                ["sha1", "sha2-224", "sha2-256", "sha2-384", "sha2-512", "sha3-224", "sha3-256", "sha3-384", "sha3-512"]
            {
                out.push(json!({"hash_algorithm": h, "marshaling_algorithm": m}));
            }
        } else {
            out.push(json!({"marshaling_algorithm": m}));
        }
    }
    out
}

/// What `src` produces with key `name`, `dst` must open or accept; returns how many checks ran.
fn check_crypto(src: &str, dst: &str, name: &str, ty: &str) -> usize {
    let mut checks = 0;
    let msg = b64("interop message");
    // A version-1 ciphertext proves older versions travel too.
    if ty.starts_with("aes") || ty.starts_with("chacha") || ty.starts_with("rsa") {
        let mut extras = vec![json!({}), json!({"key_version": 1})];
        if !ty.starts_with("rsa") {
            extras.push(json!({"associated_data": b64("header")}));
        }
        for extra in extras {
            let mut body = json!({"plaintext": msg});
            body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            let ct = ok(src, "POST", &format!("transit/encrypt/{name}"), body.clone())["data"]["ciphertext"].clone();
            let mut dbody = json!({"ciphertext": ct});
            if let Some(ad) = body.get("associated_data") {
                dbody["associated_data"] = ad.clone();
            }
            let out = ok(dst, "POST", &format!("transit/decrypt/{name}"), dbody);
            assert_eq!(out["data"]["plaintext"], msg, "{name}: {src} encrypted {body}, {dst} decrypted");
            checks += 1;
        }
    }
    if ty.starts_with("rsa") || ty.starts_with("ecdsa") || ty == "ed25519" {
        for variant in sign_variants(ty) {
            let mut body = variant.clone();
            body["input"] = msg.clone().into();
            let sig = ok(src, "POST", &format!("transit/sign/{name}"), body.clone())["data"]["signature"].clone();
            body["signature"] = sig;
            let v = ok(dst, "POST", &format!("transit/verify/{name}"), body.clone());
            assert_eq!(v["data"]["valid"], true, "{name}: {src} signed with {variant}, {dst} must verify");
            body["input"] = b64("another message").into();
            let v = ok(dst, "POST", &format!("transit/verify/{name}"), body);
            assert_eq!(v["data"]["valid"], false, "{name}: a signature over other input must fail");
            checks += 1;
        }
    }
    // Every type carries an HMAC key: both servers compute the same HMAC.
    for alg in ["sha2-256", "sha2-512", "sha3-256"] {
        let a = ok(src, "POST", &format!("transit/hmac/{name}/{alg}"), json!({"input": msg}))["data"]["hmac"].clone();
        let b = ok(dst, "POST", &format!("transit/hmac/{name}/{alg}"), json!({"input": msg}))["data"]["hmac"].clone();
        assert_eq!(a, b, "{name}: HMAC-{alg}");
        let v = ok(dst, "POST", &format!("transit/verify/{name}/{alg}"), json!({"input": msg, "hmac": a}));
        assert_eq!(v["data"]["valid"], true);
        checks += 1;
    }
    checks
}

/// Both servers show the restored key alike: same fields, versions and public keys.
fn check_reads_agree(a: &str, b: &str, name: &str) {
    let ka = ok(a, "GET", &format!("transit/keys/{name}"), Value::Null)["data"].clone();
    let kb = ok(b, "GET", &format!("transit/keys/{name}"), Value::Null)["data"].clone();
    let fields = |k: &Value| {
        let mut f: Vec<String> = k.as_object().unwrap().keys().filter(|k| *k != "restore_info").cloned().collect();
        f.sort();
        f
    };
    assert_eq!(fields(&ka), fields(&kb), "{name}: key read fields");
    for f in ["type", "latest_version", "min_decryption_version", "exportable", "derived", "supports_signing", "keys"] {
        assert_eq!(ka[f], kb[f], "{name}: {f}");
    }
}

fn interop(src: &str, dst: &str, prefix: &str) {
    let mut checks = 0;
    for ty in BACKUP_TYPES {
        let name = format!("{prefix}-{ty}");
        let mut body = json!({"type": ty});
        if ty == "hmac" {
            body["key_size"] = 32.into();
        }
        move_key(src, dst, &name, body);
        check_reads_agree(src, dst, &name);
        checks += check_crypto(src, dst, &name, ty);
    }
    // Derived keys (HKDF-SHA256) and convergent encryption: byte-identical results.
    let ctx = b64("tenant-42");
    for ty in ["aes128-gcm96", "aes256-gcm96", "chacha20-poly1305"] {
        let name = format!("{prefix}-conv-{ty}");
        move_key(src, dst, &name, json!({"type": ty, "derived": true, "convergent_encryption": true}));
        let body = json!({"plaintext": b64("same every time"), "context": ctx});
        let a = ok(src, "POST", &format!("transit/encrypt/{name}"), body.clone())["data"]["ciphertext"].clone();
        let b = ok(dst, "POST", &format!("transit/encrypt/{name}"), body)["data"]["ciphertext"].clone();
        assert_eq!(a, b, "{name}: convergent ciphertexts are identical on both servers");
        let out = ok(dst, "POST", &format!("transit/decrypt/{name}"), json!({"ciphertext": a, "context": ctx}));
        assert_eq!(out["data"]["plaintext"], b64("same every time"));
        checks += 1;
    }
    let name = format!("{prefix}-derived-ed25519");
    move_key(src, dst, &name, json!({"type": "ed25519", "derived": true}));
    let body = json!({"input": b64("signed per context"), "context": ctx});
    let a = ok(src, "POST", &format!("transit/sign/{name}"), body.clone())["data"].clone();
    let b = ok(dst, "POST", &format!("transit/sign/{name}"), body.clone())["data"].clone();
    assert_eq!(a["public_key"], b["public_key"], "derived Ed25519 public keys agree");
    assert_eq!(a["signature"], b["signature"], "Ed25519 is deterministic: identical signatures");
    let mut v = body.clone();
    v["signature"] = a["signature"].clone();
    assert_eq!(ok(dst, "POST", &format!("transit/verify/{name}"), v)["data"]["valid"], true);
    let name = format!("{prefix}-derived-aes");
    move_key(src, dst, &name, json!({"type": "aes256-gcm96", "derived": true}));
    let ct = ok(src, "POST", &format!("transit/encrypt/{name}"), json!({"plaintext": b64("d"), "context": ctx}))
        ["data"]["ciphertext"]
        .clone();
    let out = ok(dst, "POST", &format!("transit/decrypt/{name}"), json!({"ciphertext": ct, "context": ctx}));
    assert_eq!(out["data"]["plaintext"], b64("d"));
    assert!(checks > 100, "ran {checks} checks");
}

#[test]
fn openbao_keys_restore_into_coffer_and_coffer_opens_what_openbao_made() {
    let Some(p) = Pair::start() else { return };
    interop(&p.bao.addr, &p.coffer.addr, "o2c");
}

#[test]
fn coffer_keys_restore_into_openbao_and_openbao_opens_what_coffer_made() {
    let Some(p) = Pair::start() else { return };
    interop(&p.coffer.addr, &p.bao.addr, "c2o");
}

#[test]
fn both_servers_refuse_the_same_bad_requests_with_the_same_words() {
    let Some(p) = Pair::start() else { return };
    for addr in [&p.bao.addr, &p.coffer.addr] {
        ok(addr, "POST", "transit/keys/k", json!({}));
        ok(addr, "POST", "transit/keys/ed", json!({"type": "ed25519"}));
    }
    let ct = ok(&p.coffer.addr, "POST", "transit/encrypt/k", json!({"plaintext": b64("x")}))["data"]["ciphertext"]
        .as_str()
        .unwrap()
        .to_string();
    let tampered = format!("{}A", &ct[..ct.len() - 1]);
    let cases: Vec<(&str, Value)> = vec![
        ("transit/decrypt/absent", json!({"ciphertext": ct})),
        ("transit/decrypt/k", json!({"ciphertext": "vault:v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"})),
        ("transit/decrypt/k", json!({"ciphertext": "garbage"})),
        ("transit/decrypt/k", json!({"ciphertext": "vault:v9:AAAA"})),
        ("transit/encrypt/k", json!({"plaintext": "!!"})),
        ("transit/encrypt/ed", json!({"plaintext": b64("x")})),
        ("transit/sign/k", json!({"input": b64("x")})),
        ("transit/keys/bad", json!({"type": "aes512"})),
        ("transit/keys/bad", json!({"convergent_encryption": true})),
        ("transit/datakey/plaintext/k", json!({"bits": 100})),
        ("transit/hash/sha2-256", json!({"input": b64("x"), "format": "x"})),
        ("transit/verify/k", json!({"input": b64("x")})),
    ];
    for (path, body) in cases {
        let (sb, vb) = call(&p.bao.addr, "POST", path, body.clone());
        let (sc, vc) = call(&p.coffer.addr, "POST", path, body.clone());
        assert_eq!((sc, &vc["errors"]), (sb, &vb["errors"]), "POST {path} {body}");
    }
    // The tampered ciphertext was made by Coffer; OpenBao cannot know the key, so only Coffer.
    let (st, v) = call(&p.coffer.addr, "POST", "transit/decrypt/k", json!({"ciphertext": tampered}));
    assert_eq!((st, v["errors"][0].as_str().unwrap()), (400, "cipher: message authentication failed"));
}

#[test]
fn bao_cli_encrypts_and_decrypts_against_coffer() {
    let Some(bao) = bao_path() else { return };
    let s = Server::start_dev("root");
    let run = |args: &[&str]| {
        let o = cli(&bao, &s.addr, Some("root"), args);
        assert!(o.status.success(), "bao {args:?}: {}", out(&o));
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    run(&["secrets", "enable", "transit"]);
    run(&["write", "-f", "transit/keys/app"]);
    let plaintext = b64("hello from the bao CLI");
    let ct = run(&["write", "-field=ciphertext", "transit/encrypt/app", &format!("plaintext={plaintext}")]);
    assert!(ct.starts_with("vault:v1:"), "{ct}");
    let back = run(&["write", "-field=plaintext", "transit/decrypt/app", &format!("ciphertext={ct}")]);
    assert_eq!(back, plaintext);
    run(&["write", "-f", "transit/keys/app/rotate"]);
    let rewrapped = run(&["write", "-field=ciphertext", "transit/rewrap/app", &format!("ciphertext={ct}")]);
    assert!(rewrapped.starts_with("vault:v2:"), "{rewrapped}");
    let read = run(&["read", "-format=json", "transit/keys/app"]);
    assert_eq!(json(&read)["data"]["latest_version"], 2);
    let listed = run(&["list", "-format=json", "transit/keys"]);
    assert_eq!(json(&listed), json!(["app"]));
}
