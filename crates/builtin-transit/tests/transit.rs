//! Transit behaviour through the Backend trait, over an in-process storage view.
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use coffer_builtin_transit::Transit;
use coffer_sdk::framework;
use coffer_sdk::{Backend, ErrorKind, LogicalError, Operation, Request};
use serde_json::{json, Map, Value};
use std::sync::Arc;

use coffer_sdk::testing::MapView;

struct T {
    b: framework::Backend<Transit>,
    s: Arc<MapView>,
}

impl T {
    fn new() -> T {
        T { b: framework::Backend::new(Transit::new()), s: Arc::new(MapView::default()) }
    }

    async fn call(
        &self,
        op: Operation,
        path: &str,
        data: Value,
    ) -> std::result::Result<Option<Map<String, Value>>, LogicalError> {
        let req = Request {
            operation: op,
            path: path.into(),
            data: data.as_object().cloned().unwrap_or_default(),
            mount_point: "transit/".into(),
            storage: self.s.clone(),
            system: coffer_sdk::SystemInfo::default(),
            remote_addr: None,
            services: None,
            client_certs: None,
            display_name: String::new(),
            entity_id: String::new(),
        };
        self.b.handle_request(req).await.map(|r| r.and_then(|r| r.data))
    }

    async fn write(&self, path: &str, data: Value) -> Map<String, Value> {
        match self.call(Operation::Update, path, data).await {
            Ok(d) => d.unwrap_or_default(),
            Err(e) => panic!("write {path}: {e}"),
        }
    }

    async fn write_err(&self, path: &str, data: Value) -> LogicalError {
        match self.call(Operation::Update, path, data).await {
            Ok(d) => panic!("write {path} should fail, got {d:?}"),
            Err(e) => e,
        }
    }

    async fn read(&self, path: &str) -> Option<Map<String, Value>> {
        self.call(Operation::Read, path, json!({})).await.unwrap()
    }

    async fn create(&self, name: &str, body: Value) -> Map<String, Value> {
        self.write(&format!("keys/{name}"), body).await
    }

    async fn encrypt(&self, name: &str, plaintext: &[u8], extra: Value) -> String {
        let mut body = json!({"plaintext": B64.encode(plaintext)});
        merge(&mut body, extra);
        self.write(&format!("encrypt/{name}"), body).await["ciphertext"].as_str().unwrap().to_string()
    }

    async fn decrypt(&self, name: &str, ciphertext: &str, extra: Value) -> std::result::Result<Vec<u8>, LogicalError> {
        let mut body = json!({"ciphertext": ciphertext});
        merge(&mut body, extra);
        let d = self.call(Operation::Update, &format!("decrypt/{name}"), body).await?.unwrap();
        Ok(B64.decode(d["plaintext"].as_str().unwrap()).unwrap())
    }
}

fn merge(into: &mut Value, extra: Value) {
    if let (Some(a), Value::Object(b)) = (into.as_object_mut(), extra) {
        a.extend(b);
    }
}

fn b64(s: &str) -> String {
    B64.encode(s)
}

fn regex_like_bare_number(doc: &str, field: &str) -> bool {
    let values: Vec<&str> = doc.split(field).skip(1).filter(|rest| !rest.starts_with("null")).collect();
    !values.is_empty() && values.iter().all(|rest| rest.len() > 40 && rest[..40].bytes().all(|b| b.is_ascii_digit()))
}

const ENCRYPTION_TYPES: [&str; 6] =
    ["aes128-gcm96", "aes256-gcm96", "chacha20-poly1305", "rsa-2048", "rsa-3072", "rsa-4096"];

#[tokio::test]
async fn every_encryption_type_round_trips_with_the_vault_prefix_and_nonce_first_layout() {
    let t = T::new();
    for ty in ENCRYPTION_TYPES {
        let k = t.create(ty, json!({"type": ty})).await;
        assert_eq!(k["type"], ty);
        assert_eq!(k["supports_encryption"], true);
        let pt = format!("secret for {ty}");
        let ct = t.encrypt(ty, pt.as_bytes(), json!({})).await;
        assert!(ct.starts_with("vault:v1:"), "{ct}");
        let raw = B64.decode(&ct["vault:v1:".len()..]).unwrap();
        if ty.starts_with("rsa") {
            let bits: usize = ty[4..].parse().unwrap();
            assert_eq!(raw.len(), bits / 8, "RSA-OAEP ciphertext is one modulus long");
        } else {
            assert_eq!(raw.len(), 12 + pt.len() + 16, "96-bit nonce, ciphertext, 128-bit tag");
        }
        assert_eq!(t.decrypt(ty, &ct, json!({})).await.unwrap(), pt.as_bytes());
        let again = t.encrypt(ty, pt.as_bytes(), json!({})).await;
        assert_ne!(again, ct, "random nonces make every ciphertext different");
    }
}

#[tokio::test]
async fn key_read_matches_openbaos_shape() {
    let t = T::new();
    t.create("sym", json!({})).await;
    let k = t.read("keys/sym").await.unwrap();
    let mut fields: Vec<&str> = k.keys().map(String::as_str).collect();
    fields.sort();
    assert_eq!(
        fields,
        [
            "allow_plaintext_backup",
            "auto_rotate_period",
            "deletion_allowed",
            "derived",
            "exportable",
            "imported_key",
            "keys",
            "latest_version",
            "min_available_version",
            "min_decryption_version",
            "min_encryption_version",
            "name",
            "soft_deleted",
            "supports_decryption",
            "supports_derivation",
            "supports_encryption",
            "supports_signing",
            "type"
        ]
    );
    assert_eq!(k["type"], "aes256-gcm96", "the default type");
    assert!(k["keys"]["1"].is_i64(), "symmetric versions map to their creation time");
    t.create("ec", json!({"type": "ecdsa-p384"})).await;
    let k = t.read("keys/ec").await.unwrap();
    let v1 = &k["keys"]["1"];
    assert_eq!(v1["name"], "P-384");
    assert!(v1["public_key"].as_str().unwrap().starts_with("-----BEGIN PUBLIC KEY-----\n"));
    assert!(v1["creation_time"].as_str().unwrap().ends_with('Z'));
    t.create("mac", json!({"type": "hmac", "key_size": 64})).await;
    let k = t.read("keys/mac").await.unwrap();
    assert_eq!(k["key_size"], 64);
    assert!(k.get("keys").is_none(), "OpenBao shows no versions for HMAC keys");
    assert!(t.read("keys/absent").await.is_none(), "unknown key reads as 404");
    let list = t.call(Operation::List, "keys/", json!({})).await.unwrap().unwrap();
    assert_eq!(list["keys"], json!(["ec", "mac", "sym"]));
}

#[tokio::test]
async fn rotation_and_min_decryption_version_retire_old_ciphertexts() {
    let t = T::new();
    t.create("k", json!({})).await;
    let c1 = t.encrypt("k", b"one", json!({})).await;
    let k = t.write("keys/k/rotate", json!({})).await;
    assert_eq!(k["latest_version"], 2);
    let c2 = t.encrypt("k", b"two", json!({})).await;
    assert!(c2.starts_with("vault:v2:"));
    assert_eq!(t.decrypt("k", &c1, json!({})).await.unwrap(), b"one");
    let c1b = t.encrypt("k", b"old", json!({"key_version": 1})).await;
    assert!(c1b.starts_with("vault:v1:"), "an explicit older version still encrypts");

    let k = t.write("keys/k/config", json!({"min_decryption_version": 2})).await;
    assert_eq!(k["keys"].as_object().unwrap().keys().collect::<Vec<_>>(), ["2"]);
    let e = t.decrypt("k", &c1, json!({})).await.unwrap_err();
    assert_eq!(e.messages[0], "ciphertext or signature version is disallowed by policy (too old)");
    assert_eq!(t.decrypt("k", &c2, json!({})).await.unwrap(), b"two");

    let e = t.write_err("keys/k/config", json!({"min_decryption_version": 9})).await;
    assert_eq!(e.messages[0], "cannot set min decryption version of 9, latest key version is 2");
    let e = t.write_err("keys/k/config", json!({"min_encryption_version": 1})).await;
    assert!(e.messages[0].contains("must be greater than or equal to min decryption version"), "{e}");
    t.write("keys/k/config", json!({"min_encryption_version": 2})).await;
    let e = t.write_err("encrypt/k", json!({"plaintext": b64("x"), "key_version": 1})).await;
    assert_eq!(e.messages[0], "requested version for encryption is less than the minimum encryption key version");
    let e = t.decrypt("k", "vault:v7:AAAA", json!({})).await.unwrap_err();
    assert_eq!(e.messages[0], "invalid ciphertext: version is too new");
}

#[tokio::test]
async fn rewrap_moves_ciphertexts_to_the_latest_version() {
    let t = T::new();
    t.create("k", json!({})).await;
    let c1 = t.encrypt("k", b"payload", json!({})).await;
    t.write("keys/k/rotate", json!({})).await;
    t.write("keys/k/rotate", json!({})).await;
    let r = t.write("rewrap/k", json!({"ciphertext": c1})).await;
    assert_eq!(r["key_version"], 3);
    let c3 = r["ciphertext"].as_str().unwrap();
    assert!(c3.starts_with("vault:v3:"));
    assert_eq!(t.decrypt("k", c3, json!({})).await.unwrap(), b"payload");
    let r = t
        .write("rewrap/k", json!({"batch_input": [{"ciphertext": c1, "reference": "a"}, {"ciphertext": "bad"}]}))
        .await;
    let items = r["batch_results"].as_array().unwrap();
    assert!(items[0]["ciphertext"].as_str().unwrap().starts_with("vault:v3:"));
    assert_eq!(items[0]["reference"], "a");
    assert_eq!(items[1]["error"], "invalid ciphertext: no prefix");
}

#[tokio::test]
async fn batches_report_results_and_errors_per_item_in_order() {
    let t = T::new();
    t.create("k", json!({})).await;
    let r = t
        .write(
            "encrypt/k",
            json!({"batch_input": [
                {"plaintext": b64("a"), "reference": "first"},
                {"plaintext": "!!"},
                {"plaintext": b64("c"), "key_version": "1"}
            ]}),
        )
        .await;
    let items = r["batch_results"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(items[0]["reference"], "first");
    assert_eq!(items[0]["key_version"], 1);
    assert_eq!(items[1]["error"], "illegal base64 data at input byte 0");
    let c0 = items[0]["ciphertext"].as_str().unwrap();
    let c2 = items[2]["ciphertext"].as_str().unwrap();
    let r = t.write("decrypt/k", json!({"batch_input": [{"ciphertext": c0}, {"ciphertext": "vault:v1:AAAA"}, {"ciphertext": c2, "reference": "z"}]})).await;
    let items = r["batch_results"].as_array().unwrap();
    assert_eq!(items[0]["plaintext"], b64("a"));
    assert_eq!(items[1]["error"], "invalid ciphertext length");
    assert_eq!(items[2]["plaintext"], b64("c"));
    assert_eq!(items[2]["reference"], "z");
    let e = t.write_err("encrypt/k", json!({"batch_input": []})).await;
    assert_eq!(e.messages[0], "missing batch input to process");
    let e = t
        .write_err("encrypt/k", json!({"batch_input": [{"plaintext": "", "context": b64("c")}, {"plaintext": ""}]}))
        .await;
    assert_eq!(e.messages[0], "context should be set either in all the request blocks or in none");
}

#[tokio::test]
async fn derived_keys_need_a_context_and_keep_contexts_apart() {
    let t = T::new();
    let k = t.create("d", json!({"derived": true})).await;
    assert_eq!(k["kdf"], "hkdf_sha256");
    let e = t.write_err("encrypt/d", json!({"plaintext": b64("x")})).await;
    assert!(e.messages[0].starts_with("missing 'context' for key derivation"), "{e}");
    let ct = t.encrypt("d", b"tenant data", json!({"context": b64("tenant-a")})).await;
    assert_eq!(t.decrypt("d", &ct, json!({"context": b64("tenant-a")})).await.unwrap(), b"tenant data");
    let e = t.decrypt("d", &ct, json!({"context": b64("tenant-b")})).await.unwrap_err();
    assert_eq!(e.messages[0], "cipher: message authentication failed");
}

#[tokio::test]
async fn convergent_encryption_is_deterministic_per_context() {
    let t = T::new();
    let e = t.write_err("keys/c", json!({"convergent_encryption": true})).await;
    assert_eq!(e.messages[0], "convergent encryption requires derivation to be enabled");
    for ty in ["aes128-gcm96", "aes256-gcm96", "chacha20-poly1305"] {
        let name = format!("c-{ty}");
        let k = t.create(&name, json!({"type": ty, "derived": true, "convergent_encryption": true})).await;
        assert_eq!(k["convergent_encryption"], true);
        assert_eq!(k["convergent_encryption_version"], -1);
        let a = t.encrypt(&name, b"same", json!({"context": b64("ctx")})).await;
        let b = t.encrypt(&name, b"same", json!({"context": b64("ctx")})).await;
        let c = t.encrypt(&name, b"same", json!({"context": b64("other")})).await;
        let d = t.encrypt(&name, b"diff", json!({"context": b64("ctx")})).await;
        assert_eq!(a, b, "{ty}: same plaintext and context give the same ciphertext");
        assert_ne!(a, c);
        assert_ne!(a, d);
        assert_eq!(t.decrypt(&name, &a, json!({"context": b64("ctx")})).await.unwrap(), b"same");
    }
    let e = t
        .write_err(
            "encrypt/c-aes256-gcm96",
            json!({"plaintext": b64("x"), "context": b64("c"), "nonce": b64("123456789012")}),
        )
        .await;
    assert_eq!(e.messages[0], "nonce provided when not allowed");
}

#[tokio::test]
async fn encrypt_creates_a_missing_key_only_on_create() {
    let t = T::new();
    let e = t.write_err("encrypt/new", json!({"plaintext": b64("x")})).await;
    assert_eq!(e.messages[0], "encryption key not found");
    let r = t
        .call(Operation::Create, "encrypt/new", json!({"plaintext": b64("x"), "type": "chacha20-poly1305"}))
        .await
        .unwrap()
        .unwrap();
    let ct = r["ciphertext"].as_str().unwrap();
    assert_eq!(t.read("keys/new").await.unwrap()["type"], "chacha20-poly1305");
    assert_eq!(t.decrypt("new", ct, json!({})).await.unwrap(), b"x");
    t.write("config/keys", json!({"disable_upsert": true})).await;
    let e = t.call(Operation::Create, "encrypt/other", json!({"plaintext": b64("x")})).await.unwrap_err();
    assert_eq!(e.messages[0], "encryption key not found");
}

#[tokio::test]
async fn associated_data_is_authenticated_for_aead_types_only() {
    let t = T::new();
    t.create("k", json!({})).await;
    let ct = t.encrypt("k", b"with aad", json!({"associated_data": b64("header")})).await;
    assert_eq!(t.decrypt("k", &ct, json!({"associated_data": b64("header")})).await.unwrap(), b"with aad");
    let e = t.decrypt("k", &ct, json!({"associated_data": b64("other")})).await.unwrap_err();
    assert_eq!(e.messages[0], "cipher: message authentication failed");
    assert!(t.decrypt("k", &ct, json!({})).await.is_err());
    t.create("r", json!({"type": "rsa-2048"})).await;
    let e = t.write_err("encrypt/r", json!({"plaintext": b64("x"), "associated_data": b64("h")})).await;
    assert_eq!(e.messages[0], "'[0].associated_data' provided for non-AEAD cipher suite rsa-2048");
}

#[tokio::test]
async fn datakeys_come_plaintext_or_wrapped_and_unwrap_with_decrypt() {
    let t = T::new();
    t.create("k", json!({})).await;
    for bits in [128, 256, 512] {
        let r = t.write("datakey/plaintext/k", json!({"bits": bits})).await;
        let plain = B64.decode(r["plaintext"].as_str().unwrap()).unwrap();
        assert_eq!(plain.len() * 8, bits);
        assert_eq!(t.decrypt("k", r["ciphertext"].as_str().unwrap(), json!({})).await.unwrap(), plain);
    }
    let r = t.write("datakey/wrapped/k", json!({})).await;
    assert!(r.get("plaintext").is_none());
    assert_eq!(t.decrypt("k", r["ciphertext"].as_str().unwrap(), json!({})).await.unwrap().len(), 32);
    assert_eq!(
        t.write_err("datakey/other/k", json!({})).await.messages[0],
        "Invalid path, must be 'plaintext' or 'wrapped'"
    );
    assert_eq!(t.write_err("datakey/plaintext/k", json!({"bits": 100})).await.messages[0], "invalid bit length");
    assert_eq!(t.write_err("datakey/plaintext/none", json!({})).await.messages[0], "encryption key not found");
}

#[tokio::test]
async fn hmac_and_verify_with_every_algorithm() {
    let t = T::new();
    t.create("k", json!({})).await;
    t.create("mac", json!({"type": "hmac", "key_size": 48})).await;
    let lens = [
        ("sha1", 20),
        ("sha2-224", 28),
        ("sha2-256", 32),
        ("sha2-384", 48),
        ("sha2-512", 64),
        ("sha3-224", 28),
        ("sha3-256", 32),
        ("sha3-384", 48),
        ("sha3-512", 64),
    ];
    for key in ["k", "mac"] {
        for (alg, len) in lens {
            let h = t.write(&format!("hmac/{key}/{alg}"), json!({"input": b64("data")})).await["hmac"]
                .as_str()
                .unwrap()
                .to_string();
            assert!(h.starts_with("vault:v1:"));
            assert_eq!(B64.decode(&h[9..]).unwrap().len(), len, "{alg}");
            let ok = t.write(&format!("verify/{key}/{alg}"), json!({"input": b64("data"), "hmac": h})).await;
            assert_eq!(ok["valid"], true, "{key} {alg}");
            let bad = t.write(&format!("verify/{key}/{alg}"), json!({"input": b64("Data"), "hmac": h})).await;
            assert_eq!(bad["valid"], false);
        }
    }
    let h = t.write("hmac/k", json!({"algorithm": "sha2-512", "input": b64("x")})).await["hmac"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(B64.decode(&h[9..]).unwrap().len(), 64, "the body algorithm field works too");
    let r = t.write("hmac/k", json!({"batch_input": [{"input": b64("a")}, {"input": "!"}]})).await;
    assert!(r["batch_results"][0]["hmac"].is_string());
    assert!(r["batch_results"][1]["error"].as_str().unwrap().starts_with("unable to decode input as base64"));
    let e = t.write_err("hmac/k/md5", json!({"input": b64("x")})).await;
    assert_eq!(e.messages[0], "unsupported algorithm \"md5\"");
    assert_eq!(t.write_err("hmac/none", json!({"input": b64("x")})).await.messages[0], "encryption key not found");
    let e = t.write_err("verify/k", json!({"input": b64("x")})).await;
    assert_eq!(e.messages[0], "neither a 'signature' nor an 'hmac' were given to verify");
}

async fn sign(t: &T, key: &str, body: Value) -> String {
    t.write(&format!("sign/{key}"), body).await["signature"].as_str().unwrap().to_string()
}

async fn valid(t: &T, key: &str, body: Value) -> bool {
    t.write(&format!("verify/{key}"), body).await["valid"].as_bool().unwrap()
}

#[tokio::test]
async fn ecdsa_signs_and_verifies_with_every_hash_and_marshaling() {
    let t = T::new();
    let hashes =
        ["sha1", "sha2-224", "sha2-256", "sha2-384", "sha2-512", "sha3-224", "sha3-256", "sha3-384", "sha3-512"];
    for ty in ["ecdsa-p256", "ecdsa-p384", "ecdsa-p521"] {
        t.create(ty, json!({"type": ty})).await;
        for h in hashes {
            for m in ["asn1", "jws"] {
                let body = json!({"input": b64("message"), "hash_algorithm": h, "marshaling_algorithm": m});
                let sig = sign(&t, ty, body.clone()).await;
                assert!(sig.starts_with("vault:v1:"));
                if m == "jws" {
                    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&sig[9..]).unwrap();
                    let len = match ty {
                        "ecdsa-p256" => 64,
                        "ecdsa-p384" => 96,
                        _ => 132,
                    };
                    assert_eq!(raw.len(), len, "JWS signatures are r||s at the curve size");
                }
                let mut v = body.clone();
                v["signature"] = sig.clone().into();
                assert!(valid(&t, ty, v.clone()).await, "{ty} {h} {m}");
                v["input"] = b64("messagE").into();
                assert!(!valid(&t, ty, v).await, "{ty} {h} {m}: altered input");
            }
        }
        // Prehashed input signs the digest as given.
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, b"message");
        let sig = sign(&t, ty, json!({"input": B64.encode(digest.as_ref()), "prehashed": true})).await;
        assert!(
            valid(&t, ty, json!({"input": b64("message"), "signature": sig})).await,
            "{ty}: prehashed equals hashed"
        );
    }
}

#[tokio::test]
async fn rsa_signs_with_pss_and_pkcs1v15_over_sha2() {
    let t = T::new();
    for ty in ["rsa-2048", "rsa-3072"] {
        t.create(ty, json!({"type": ty})).await;
        for h in ["sha2-256", "sha2-384", "sha2-512"] {
            for (alg, salts) in [("pss", vec!["auto", "hash", "20"]), ("pkcs1v15", vec!["auto"])] {
                for salt in salts {
                    for m in ["asn1", "jws"] {
                        let body = json!({"input": b64("msg"), "hash_algorithm": h, "signature_algorithm": alg, "salt_length": salt, "marshaling_algorithm": m});
                        let sig = sign(&t, ty, body.clone()).await;
                        let mut v = body.clone();
                        v["signature"] = sig.into();
                        assert!(valid(&t, ty, v.clone()).await, "{ty} {h} {alg} {salt} {m}");
                        v["input"] = b64("Msg").into();
                        assert!(!valid(&t, ty, v).await);
                    }
                }
            }
        }
    }
    // Default PSS salt is the maximum length; verification with "auto" also accepts hash-length salts.
    let sig = sign(&t, "rsa-2048", json!({"input": b64("m"), "salt_length": "hash"})).await;
    assert!(valid(&t, "rsa-2048", json!({"input": b64("m"), "signature": sig})).await);
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA384, b"m");
    let sig = sign(
        &t,
        "rsa-2048",
        json!({"input": B64.encode(digest.as_ref()), "prehashed": true, "hash_algorithm": "sha2-384"}),
    )
    .await;
    assert!(valid(&t, "rsa-2048", json!({"input": b64("m"), "signature": sig, "hash_algorithm": "sha2-384"})).await);
    let e = t.write_err("sign/rsa-2048", json!({"input": b64("m"), "salt_length": "999"})).await;
    assert_eq!(e.messages[0], "requested salt length 999 is invalid");
    let e = t.write_err("sign/rsa-2048", json!({"input": b64("m"), "hash_algorithm": "none"})).await;
    assert_eq!(e.messages[0], "hash_algorithm=none requires both prehashed=true and signature_algorithm=pkcs1v15");
}

#[tokio::test]
async fn ed25519_signs_plain_and_derived() {
    let t = T::new();
    t.create("ed", json!({"type": "ed25519"})).await;
    for m in ["asn1", "jws"] {
        let sig = sign(&t, "ed", json!({"input": b64("hi"), "marshaling_algorithm": m})).await;
        assert!(valid(&t, "ed", json!({"input": b64("hi"), "signature": sig, "marshaling_algorithm": m})).await);
        assert!(!valid(&t, "ed", json!({"input": b64("ho"), "signature": sig, "marshaling_algorithm": m})).await);
    }
    t.create("edd", json!({"type": "ed25519", "derived": true})).await;
    let r = t.write("sign/edd", json!({"input": b64("hi"), "context": b64("alice")})).await;
    let sig = r["signature"].as_str().unwrap();
    let public = r["public_key"].as_str().unwrap();
    let read = t.call(Operation::Read, "keys/edd", json!({"context": b64("alice")})).await.unwrap().unwrap();
    assert_eq!(read["keys"]["1"]["public_key"], public, "the derived public key is shown for the context");
    assert!(valid(&t, "edd", json!({"input": b64("hi"), "signature": sig, "context": b64("alice")})).await);
    assert!(!valid(&t, "edd", json!({"input": b64("hi"), "signature": sig, "context": b64("bob")})).await);
    let r = t
        .write("sign/edd", json!({"batch_input": [{"input": b64("a"), "context": b64("x"), "reference": "r1"}]}))
        .await;
    assert_eq!(r["batch_results"][0]["reference"], "r1");
    assert!(r["batch_results"][0]["publickey"].is_string());
}

#[tokio::test]
async fn signing_and_encryption_refuse_the_wrong_key_types() {
    let t = T::new();
    t.create("aes", json!({})).await;
    t.create("ed", json!({"type": "ed25519"})).await;
    t.create("mac", json!({"type": "hmac", "key_size": 32})).await;
    assert_eq!(
        t.write_err("sign/aes", json!({"input": b64("x")})).await.messages[0],
        "key type aes256-gcm96 does not support signing"
    );
    assert_eq!(
        t.write_err("encrypt/ed", json!({"plaintext": b64("x")})).await.messages[0],
        "message encryption not supported for key type ed25519"
    );
    assert_eq!(
        t.write_err("encrypt/mac", json!({"plaintext": b64("x")})).await.messages[0],
        "message encryption not supported for key type hmac"
    );
    assert_eq!(t.write_err("sign/none", json!({"input": b64("x")})).await.messages[0], "signing key not found");
    assert_eq!(
        t.write_err("decrypt/none", json!({"ciphertext": "vault:v1:AAAA"})).await.messages[0],
        "encryption key not found"
    );
    let e = t.write_err("keys/bad", json!({"type": "aes512-ocb"})).await;
    assert_eq!((e.kind, e.messages[0].as_str()), (ErrorKind::BadRequest, "unknown key type aes512-ocb"));
    assert_eq!(
        t.write_err("keys/bad", json!({"type": "ecdsa-p256", "derived": true})).await.messages[0],
        "key derivation and convergent encryption not supported for keys of type ecdsa-p256"
    );
    assert_eq!(
        t.write_err("keys/bad", json!({"key_size": 32})).await.messages[0],
        "key_size is not valid for algorithm aes256-gcm96"
    );
    assert_eq!(
        t.write_err("keys/bad", json!({"auto_rotate_period": "10m"})).await.messages[0],
        "auto rotate period must be 0 to disable or at least an hour"
    );
}

#[tokio::test]
async fn tampered_ciphertexts_fail_authentication() {
    let t = T::new();
    for ty in ["aes128-gcm96", "aes256-gcm96", "chacha20-poly1305", "rsa-2048"] {
        t.create(ty, json!({"type": ty})).await;
        let ct = t.encrypt(ty, b"integrity matters", json!({})).await;
        let mut raw = B64.decode(&ct[9..]).unwrap();
        let i = raw.len() - 5;
        raw[i] ^= 1;
        let tampered = format!("vault:v1:{}", B64.encode(&raw));
        let e = t.decrypt(ty, &tampered, json!({})).await.unwrap_err();
        let want = match ty {
            "chacha20-poly1305" => "chacha20poly1305: message authentication failed",
            "rsa-2048" => "failed to RSA decrypt the ciphertext: crypto/rsa: decryption error",
            _ => "cipher: message authentication failed",
        };
        assert_eq!((e.kind, e.messages[0].as_str()), (ErrorKind::BadRequest, want));
    }
    let e = t.decrypt("aes256-gcm96", "garbage", json!({})).await.unwrap_err();
    assert_eq!(e.messages[0], "invalid ciphertext: no prefix");
    let e = t.decrypt("aes256-gcm96", "vault:v1:!!!", json!({})).await.unwrap_err();
    assert_eq!(e.messages[0], "invalid ciphertext: could not decode base64");
}

#[tokio::test]
async fn export_follows_the_exportable_flag_and_key_type() {
    let t = T::new();
    t.create("locked", json!({})).await;
    let e = t.call(Operation::Read, "export/encryption-key/locked", json!({})).await.unwrap_err();
    assert_eq!(e.messages[0], "private key material is not exportable");
    let e = t.call(Operation::Read, "export/hmac-key/locked", json!({})).await.unwrap_err();
    assert_eq!(e.messages[0], "private key material is not exportable");

    t.create("aes", json!({"exportable": true})).await;
    t.write("keys/aes/rotate", json!({})).await;
    let all = t.read("export/encryption-key/aes").await.unwrap();
    assert_eq!(all["keys"].as_object().unwrap().len(), 2);
    assert_eq!(B64.decode(all["keys"]["2"].as_str().unwrap()).unwrap().len(), 32);
    let latest = t.read("export/encryption-key/aes/latest").await.unwrap();
    assert_eq!(latest["keys"].as_object().unwrap().keys().collect::<Vec<_>>(), ["2"]);
    assert!(t.read("export/hmac-key/aes/1").await.unwrap()["keys"]["1"].is_string());
    let e = t.call(Operation::Read, "export/signing-key/aes", json!({})).await.unwrap_err();
    assert_eq!(e.messages[0], "signing not supported for the key");
    let e = t.call(Operation::Read, "export/encryption-key/aes/9", json!({})).await.unwrap_err();
    assert_eq!(e.messages[0], "version does not exist or cannot be found");
    let e = t.call(Operation::Read, "export/bogus/aes", json!({})).await.unwrap_err();
    assert_eq!(e.messages[0], "invalid export type: bogus");
    assert!(t.read("export/encryption-key/absent").await.is_none());

    t.create("ec", json!({"type": "ecdsa-p256"})).await;
    let public = t.read("export/public-key/ec").await.unwrap();
    assert!(
        public["keys"]["1"].as_str().unwrap().starts_with("-----BEGIN PUBLIC KEY-----"),
        "public keys export without exportable"
    );
    t.write("keys/ec/config", json!({"exportable": true})).await;
    let private = t.read("export/signing-key/ec").await.unwrap();
    assert!(private["keys"]["1"].as_str().unwrap().starts_with("-----BEGIN EC PRIVATE KEY-----"));
    let k = t.write("keys/ec/config", json!({"exportable": false})).await;
    assert_eq!(k["exportable"], true, "exportable cannot be withdrawn");

    t.create("rsa", json!({"type": "rsa-2048", "exportable": true})).await;
    let k = t.read("export/encryption-key/rsa").await.unwrap();
    assert!(k["keys"]["1"].as_str().unwrap().starts_with("-----BEGIN RSA PRIVATE KEY-----"));
    t.create("ed", json!({"type": "ed25519", "exportable": true})).await;
    let k = t.read("export/signing-key/ed").await.unwrap();
    assert_eq!(B64.decode(k["keys"]["1"].as_str().unwrap()).unwrap().len(), 64, "seed || public, as Go keeps it");
}

#[tokio::test]
async fn backup_and_restore_round_trip_every_type() {
    let t = T::new();
    let all = [
        "aes128-gcm96",
        "aes256-gcm96",
        "chacha20-poly1305",
        "ed25519",
        "ecdsa-p256",
        "ecdsa-p384",
        "ecdsa-p521",
        "rsa-2048",
        "rsa-3072",
        "rsa-4096",
        "hmac",
    ];
    for ty in all {
        let mut body = json!({"type": ty, "exportable": true, "allow_plaintext_backup": true});
        if ty == "hmac" {
            body["key_size"] = 32.into();
        }
        t.create(ty, body).await;
        t.write(&format!("keys/{ty}/rotate"), json!({})).await;
        let (ct, sig, mac) = match ty {
            _ if ty.starts_with("aes") || ty.starts_with("chacha") || ty.starts_with("rsa") => {
                (Some(t.encrypt(ty, b"kept", json!({"key_version": 1})).await), None, None)
            }
            "hmac" => (
                None,
                None,
                Some(
                    t.write(&format!("hmac/{ty}"), json!({"input": b64("kept")})).await["hmac"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                ),
            ),
            _ => (None, Some(sign(&t, ty, json!({"input": b64("kept")})).await), None),
        };
        let sig = match (ty.starts_with("rsa"), sig) {
            (true, _) => Some(sign(&t, ty, json!({"input": b64("kept")})).await),
            (_, s) => s,
        };
        let backup = t.read(&format!("backup/{ty}")).await.unwrap()["backup"].as_str().unwrap().to_string();
        // Big integers (ECDSA, RSA) are bare JSON numbers, as Go writes them: check the text.
        let doc = String::from_utf8(B64.decode(&backup).unwrap()).unwrap();
        assert!(doc.starts_with(&format!("{{\"policy\":{{\"name\":\"{ty}\"")), "{ty}");
        assert!(doc.contains("\"latest_version\":2,\"archive_version\":2"), "{ty}");
        assert!(doc.contains(
            "\"archived_keys\":{\"keys\":[{\"key\":null,\"hmac_key\":null,\"time\":\"0001-01-01T00:00:00Z\""
        ));
        if ty.starts_with("ecdsa") {
            assert!(regex_like_bare_number(&doc, "\"ec_d\":"), "EC scalars are decimal numbers");
        }
        if ty.starts_with("rsa") {
            assert!(regex_like_bare_number(&doc, "\"N\":"), "RSA moduli are decimal numbers");
        }

        let restored = format!("{ty}-copy");
        t.write(&format!("restore/{restored}"), json!({"backup": backup})).await;
        let k = t.read(&format!("keys/{restored}")).await.unwrap();
        assert_eq!(k["type"], ty);
        assert_eq!(k["latest_version"], 2);
        assert!(k["restore_info"]["time"].is_string());
        if let Some(ct) = ct {
            assert_eq!(t.decrypt(&restored, &ct, json!({})).await.unwrap(), b"kept", "{ty}");
        }
        if let Some(sig) = sig {
            assert!(valid(&t, &restored, json!({"input": b64("kept"), "signature": sig})).await, "{ty}");
        }
        if let Some(mac) = mac {
            assert!(t.write(&format!("verify/{restored}"), json!({"input": b64("kept"), "hmac": mac})).await["valid"]
                .as_bool()
                .unwrap());
        }
        let e = t.write_err(&format!("restore/{restored}"), json!({"backup": backup})).await;
        assert_eq!(e.messages[0], format!("key \"{restored}\" already exists"));
        t.write(&format!("restore/{restored}"), json!({"backup": backup, "force": true})).await;
    }
    t.create("plain", json!({"exportable": true})).await;
    let e = t.call(Operation::Read, "backup/plain", json!({})).await.unwrap_err();
    assert_eq!(e.messages[0], "plaintext backup is disallowed on the policy");
    assert_eq!(t.write_err("restore", json!({})).await.messages[0], "'backup' must be supplied");
}

#[tokio::test]
async fn trim_deletes_versions_below_min_available() {
    let t = T::new();
    t.create("k", json!({})).await;
    let mut cts = vec![];
    for _ in 0..4 {
        cts.push(t.encrypt("k", b"v", json!({})).await);
        t.write("keys/k/rotate", json!({})).await;
    }
    let e = t.write_err("keys/k/trim", json!({"min_available_version": 2})).await;
    assert_eq!(e.messages[0], "minimum available version cannot be set when minimum encryption version is not set");
    t.write("keys/k/config", json!({"min_decryption_version": 3, "min_encryption_version": 4})).await;
    let e = t.write_err("keys/k/trim", json!({"min_available_version": 4})).await;
    assert_eq!(e.messages[0], "minimum available version cannot be greater than minimum decryption version");
    let k = t.write("keys/k/trim", json!({"min_available_version": 3})).await;
    assert_eq!(k["min_available_version"], 3);
    let e = t.write_err("keys/k/trim", json!({"min_available_version": 2})).await;
    assert_eq!(e.messages[0], "minimum available version cannot be decremented");
    let e = t.write_err("keys/k/config", json!({"min_decryption_version": 1})).await;
    assert_eq!(e.messages[0], "min decryption version should not be less then min available version");
    let stored: Vec<String> = t.s.0.lock().unwrap().keys().filter(|k| k.starts_with("version/k/")).cloned().collect();
    assert_eq!(stored, ["version/k/3", "version/k/4", "version/k/5"], "trimmed versions are gone from storage");
    assert_eq!(t.decrypt("k", &cts[2], json!({})).await.unwrap(), b"v");
}

#[tokio::test]
async fn deletion_needs_deletion_allowed_and_removes_every_version() {
    let t = T::new();
    t.create("k", json!({})).await;
    t.write("keys/k/rotate", json!({})).await;
    let e = t.call(Operation::Delete, "keys/k", json!({})).await.unwrap_err();
    assert_eq!(e.messages[0], "error deleting policy k: deletion is not allowed for this key");
    t.write("keys/k/config", json!({"deletion_allowed": true})).await;
    t.call(Operation::Delete, "keys/k", json!({})).await.unwrap();
    assert!(t.read("keys/k").await.is_none());
    assert!(t.s.0.lock().unwrap().is_empty(), "no key material is left behind");
}

#[tokio::test]
async fn stored_key_material_is_never_in_responses_except_export_and_backup() {
    let t = T::new();
    t.create("k", json!({"exportable": true})).await;
    let key = t.read("export/encryption-key/k").await.unwrap()["keys"]["1"].as_str().unwrap().to_string();
    let hmac_key = t.read("export/hmac-key/k").await.unwrap()["keys"]["1"].as_str().unwrap().to_string();
    for path in ["keys/k"] {
        let body = serde_json::to_string(&t.read(path).await.unwrap()).unwrap();
        assert!(!body.contains(&key) && !body.contains(&hmac_key), "{path} leaks key material");
    }
    let rotated = serde_json::to_string(&t.write("keys/k/rotate", json!({})).await).unwrap();
    assert!(!rotated.contains(&key));
}

#[tokio::test]
async fn keys_rotate_automatically_once_their_period_has_passed() {
    let t = T::new();
    t.create("k", json!({"auto_rotate_period": "1h"})).await;
    t.encrypt("k", b"x", json!({})).await;
    assert_eq!(t.read("keys/k").await.unwrap()["latest_version"], 1, "not due yet");
    {
        // Age version 1 by two hours.
        let mut m = t.s.0.lock().unwrap();
        let raw = m.get_mut("version/k/1").unwrap();
        let mut v: Value = serde_json::from_slice(raw).unwrap();
        v["time"] = "2000-01-01T00:00:00Z".into();
        *raw = serde_json::to_vec(&v).unwrap();
    }
    // The aged version is seen by a backend that reads storage afresh (the running one keeps
    // decoded keys cached, and it never changes a stored version's time itself).
    let t = T { b: framework::Backend::new(Transit::new()), s: t.s.clone() };
    let ct = t.encrypt("k", b"x", json!({})).await;
    assert!(ct.starts_with("vault:v2:"), "{ct}");
    assert_eq!(t.read("keys/k").await.unwrap()["latest_version"], 2, "the rotation is visible at once");
}

#[tokio::test]
async fn key_changes_are_seen_by_the_next_operation_despite_the_key_cache() {
    let t = T::new();
    t.create("k", json!({})).await;
    let v1 = t.encrypt("k", b"secret", json!({})).await;
    assert!(v1.starts_with("vault:v1:"));
    t.write("keys/k/rotate", json!({})).await;
    assert!(t.encrypt("k", b"x", json!({})).await.starts_with("vault:v2:"), "rotation is seen at once");
    t.write("keys/k/config", json!({"min_decryption_version": 2})).await;
    let e = t.write_err("decrypt/k", json!({"ciphertext": v1})).await;
    assert!(e.messages[0].contains("too old"), "{:?}", e.messages);
    t.write("keys/k/config", json!({"min_decryption_version": 1, "deletion_allowed": true})).await;
    assert_eq!(t.write("decrypt/k", json!({"ciphertext": v1})).await["plaintext"], b64("secret"));
    t.call(Operation::Delete, "keys/k", json!({})).await.unwrap();
    let e = t.write_err("decrypt/k", json!({"ciphertext": v1})).await;
    assert!(!e.messages.is_empty(), "a deleted key cannot decrypt");
    // An encrypt-create after the delete makes a fresh key, version 1 again.
    t.create("k", json!({})).await;
    let fresh = t.encrypt("k", b"x", json!({})).await;
    assert!(fresh.starts_with("vault:v1:"));
    // The old ciphertext names version 1 too, but the cached old key must not open it.
    t.write_err("decrypt/k", json!({"ciphertext": v1})).await;
}

#[tokio::test]
async fn hash_and_random_match_openbao() {
    let t = T::new();
    let r = t.write("hash", json!({"input": b64("hello")})).await;
    assert_eq!(r["sum"], "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
    let r = t.write("hash/sha3-224", json!({"input": b64("hello")})).await;
    assert_eq!(r["sum"], "b87f88c72702fff1748e58b87e9141a42c0dbedc29a78cb0d4a5cd81");
    let r = t.write("hash/sha2-512", json!({"input": b64("hello"), "format": "base64"})).await;
    assert_eq!(B64.decode(r["sum"].as_str().unwrap()).unwrap().len(), 64);
    assert_eq!(t.write_err("hash/sha1", json!({"input": b64("x")})).await.messages[0], "unsupported algorithm sha1");
    assert_eq!(
        t.write_err("hash", json!({"input": b64("x"), "format": "x"})).await.messages[0],
        "unsupported encoding format x; must be \"hex\" or \"base64\""
    );
    assert_eq!(B64.decode(t.write("random", json!({})).await["random_bytes"].as_str().unwrap()).unwrap().len(), 32);
    assert_eq!(t.write("random/16", json!({"format": "hex"})).await["random_bytes"].as_str().unwrap().len(), 32);
    assert_eq!(
        B64.decode(t.write("random/platform/8", json!({})).await["random_bytes"].as_str().unwrap()).unwrap().len(),
        8
    );
    assert!(
        t.write_err("random/bogus/8", json!({})).await.messages[0].starts_with("unsupported entropy source \"bogus\"")
    );
    assert_eq!(t.write_err("random/0", json!({})).await.messages[0], "bytes cannot be less than 1");
}

/// `cargo test --release -p coffer-builtin-transit --test transit -- --ignored --nocapture`
#[tokio::test]
#[ignore]
async fn encrypt_latency_1kib_aes256_gcm96() {
    let t = T::new();
    t.create("bench", json!({})).await;
    let pt = B64.encode([7u8; 1024]);
    for _ in 0..200 {
        t.write("encrypt/bench", json!({"plaintext": pt})).await;
    }
    let n = 5000;
    let start = std::time::Instant::now();
    for _ in 0..n {
        t.write("encrypt/bench", json!({"plaintext": pt})).await;
    }
    let per = start.elapsed() / n;
    println!("encrypt 1 KiB aes256-gcm96 in-process: {per:?} per request ({n} requests)");
}

#[tokio::test]
async fn cache_config_reads_writes_and_refuses_sizes_below_ten() {
    let t = T::new();
    assert_eq!(t.read("cache-config").await.unwrap()["size"], json!(0));
    assert_eq!(t.write("cache-config", json!({"size": 20})).await["size"], json!(20));
    assert_eq!(t.read("cache-config").await.unwrap()["size"], json!(20));
    for bad in [json!(5), json!(-1)] {
        let e = t.write_err("cache-config", json!({ "size": bad })).await;
        assert_eq!(e.kind, ErrorKind::BadRequest);
        assert_eq!(e.messages, vec!["size must be 0 or a value greater or equal to 10".to_string()]);
    }
    assert_eq!(t.write_err("cache-config", json!({"size": "abc"})).await.kind, ErrorKind::BadRequest);
    assert_eq!(t.read("cache-config").await.unwrap()["size"], json!(20), "a refused size changes nothing");
    // A write without a size sets 0, as OpenBao does.
    assert_eq!(t.write("cache-config", json!({})).await["size"], json!(0));
    // The setting is stored with the mount: a new instance over the same storage reads it.
    t.write("cache-config", json!({"size": 30})).await;
    let again = T { b: framework::Backend::new(Transit::new()), s: t.s.clone() };
    assert_eq!(again.read("cache-config").await.unwrap()["size"], json!(30));
}

/// The ACL's create-or-update question: only `encrypt/<name>` has an existence check (an
/// encrypt to a missing key creates it), answered from the key's presence although the path
/// has no read to route the check by.
#[tokio::test]
async fn only_encrypt_writes_have_an_existence_check_answered_by_the_key() {
    let t = T::new();
    let probe = |path: &str| Request {
        operation: Operation::Update,
        path: path.into(),
        data: Map::new(),
        mount_point: "transit/".into(),
        storage: t.s.clone(),
        system: coffer_sdk::SystemInfo::default(),
        remote_addr: None,
        services: None,
        client_certs: None,
        display_name: String::new(),
        entity_id: String::new(),
    };
    assert_eq!(t.b.exists(&probe("encrypt/k")).await.unwrap(), Some(false));
    t.create("k", json!({})).await;
    assert_eq!(t.b.exists(&probe("encrypt/k")).await.unwrap(), Some(true));
    assert_eq!(t.b.exists(&probe("encrypt/other")).await.unwrap(), Some(false));
    for path in ["keys/k", "decrypt/k", "encrypt/k/x", "nothing"] {
        assert_eq!(t.b.exists(&probe(path)).await.unwrap(), None, "{path}");
    }
}
