//! The PKCS#11 seal against a real SoftHSM2 token: recovery keys at init, auto-unseal at
//! start, recovery keys for generate-root and unsealing after a manual seal, and clear errors
//! for a wrong PIN or a missing key.

mod common;
mod seal_common;

use common::{bao_path, cli, http, json, out};
use seal_common::*;
use std::time::Duration;

#[test]
fn pkcs11_init_gives_recovery_keys_and_the_server_unseals_itself_after_restart() {
    let Some(hsm) = softhsm() else { return };
    let dir = tempfile::tempdir().unwrap();
    // The PIN comes from the environment (VAULT_HSM_PIN), not the file.
    let config = write_config(dir.path(), &hsm.stanza("coffer-kek", true, "  hmac_key_label = \"coffer-hmac\"\n"));
    let conf = hsm.conf.display().to_string();
    let env = [("SOFTHSM2_CONF", conf.as_str()), ("VAULT_HSM_PIN", PIN)];
    let mut s = start(&config, &env);

    let st = seal_status(&s.addr);
    assert_eq!(st["type"], "pkcs11", "{st}");
    assert_eq!(st["recovery_seal"], true, "{st}");
    assert_eq!(st["initialized"], false, "{st}");

    // Initialise with the real bao CLI when present, the way an operator would.
    let (recovery, root) = match bao_path() {
        Some(bao) => {
            let o = cli(
                &bao,
                &s.addr,
                None,
                &["operator", "init", "-recovery-shares=3", "-recovery-threshold=2", "-format=json"],
            );
            assert!(o.status.success(), "bao operator init: {}", out(&o));
            let v = json(&String::from_utf8_lossy(&o.stdout));
            assert_eq!(v["unseal_keys_b64"], serde_json::json!([]), "{v}");
            assert_eq!(v["recovery_keys_shares"], 3, "{v}");
            let keys: Vec<String> =
                v["recovery_keys_b64"].as_array().unwrap().iter().map(|k| k.as_str().unwrap().to_string()).collect();
            (keys, v["root_token"].as_str().unwrap().to_string())
        }
        None => init_recovery(&s.addr, 3, 2),
    };
    assert_eq!(recovery.len(), 3);
    // Initialising with an auto seal leaves the server unsealed.
    wait_sealed(&s, false, Duration::from_secs(5));
    let st = seal_status(&s.addr);
    assert_eq!((st["t"].clone(), st["n"].clone()), (2.into(), 3.into()), "t/n are the recovery threshold/shares: {st}");
    write_proof(&s.addr, &root, "kept in the HSM-sealed barrier");

    // Restart: the server unseals itself through the HSM, no key given.
    s.kill9();
    let s = start(&config, &env);
    let took = wait_sealed(&s, false, Duration::from_secs(10));
    eprintln!("auto-unseal with SoftHSM2 after start: {took:?} after the listener was up");
    if let Some(l) = s.log_text().lines().rfind(|l| l.contains("elapsed_ms")) {
        eprintln!("server log: {l}");
    }
    assert_eq!(read_proof(&s.addr, &root), "kept in the HSM-sealed barrier");
    let (_, status) = http(&s.addr, "GET", "/v1/sys/seal-status", &[], b"");
    let st = json(&status);
    assert_eq!((st["type"].as_str(), st["recovery_seal"].as_bool()), (Some("pkcs11"), Some(true)), "{st}");
    if let Some(bao) = bao_path() {
        let o = cli(&bao, &s.addr, None, &["status"]);
        let text = out(&o);
        assert!(text.contains("pkcs11") && text.contains("Recovery Seal Type"), "bao status: {text}");
    }

    // The PIN never reaches the log.
    assert!(!s.log_text().contains(PIN), "the HSM PIN appears in the server log");

    // Recovery keys authorise generate-root (sys/generate-root-token: the unauthenticated
    // sys/generate-root endpoints are off by default, as in OpenBao 2.x).
    let (st_code, body) =
        http(&s.addr, "PUT", "/v1/sys/generate-root-token/attempt", &[("X-Vault-Token", &root)], b"{}");
    assert_eq!(st_code, 200, "{body}");
    let g = json(&body)["data"].clone();
    assert_eq!(g["required"], 2, "generate-root needs the recovery threshold: {g}");
    let (nonce, otp) = (g["nonce"].as_str().unwrap().to_string(), g["otp"].as_str().unwrap().to_string());
    let mut last = serde_json::Value::Null;
    for k in &recovery[1..3] {
        let (c, b) = http(
            &s.addr,
            "PUT",
            "/v1/sys/generate-root-token/update",
            &[("X-Vault-Token", &root)],
            format!("{{\"key\":\"{k}\",\"nonce\":\"{nonce}\"}}").as_bytes(),
        );
        assert_eq!(c, 200, "{b}");
        last = json(&b)["data"].clone();
    }
    assert_eq!(last["complete"], true, "{last}");
    let encoded = last["encoded_token"].as_str().unwrap();
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD_NO_PAD.decode(encoded).unwrap();
    let new_root: String = raw.iter().zip(otp.bytes()).map(|(a, b)| (a ^ b) as char).collect();
    assert_eq!(read_proof(&s.addr, &new_root), "kept in the HSM-sealed barrier", "the generated root token works");

    // Sealed by hand, the recovery keys unseal it again (the HSM unwraps the key).
    let (c, b) = http(&s.addr, "PUT", "/v1/sys/seal", &[("X-Vault-Token", &root)], b"");
    assert!(c == 200 || c == 204, "{b}");
    wait_sealed(&s, true, Duration::from_secs(5));
    let (c, b) = http(&s.addr, "PUT", "/v1/sys/unseal", &[], format!("{{\"key\":\"{}\"}}", recovery[0]).as_bytes());
    assert_eq!(c, 200, "{b}");
    let (c, b) = http(&s.addr, "PUT", "/v1/sys/unseal", &[], format!("{{\"key\":\"{}\"}}", recovery[2]).as_bytes());
    assert_eq!(c, 200, "{b}");
    assert_eq!(json(&b)["sealed"], false, "{b}");
    assert_eq!(read_proof(&s.addr, &root), "kept in the HSM-sealed barrier");
}

#[test]
fn pkcs11_wrong_pin_keeps_the_server_sealed_with_a_clear_error() {
    let Some(hsm) = softhsm() else { return };
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &hsm.stanza("coffer-kek", true, ""));
    let conf = hsm.conf.display().to_string();
    let mut s = start(&config, &[("SOFTHSM2_CONF", conf.as_str()), ("VAULT_HSM_PIN", PIN)]);
    let (_, root) = init_recovery(&s.addr, 1, 1);
    write_proof(&s.addr, &root, "v");
    s.kill9();

    // BAO_HSM_PIN wins over VAULT_HSM_PIN: here it is the wrong one.
    let s = start(&config, &[("SOFTHSM2_CONF", conf.as_str()), ("VAULT_HSM_PIN", PIN), ("BAO_HSM_PIN", "not-the-pin")]);
    let err = wait_seal_error(&s, Duration::from_secs(10));
    assert!(err.contains("PIN"), "the error names the PIN: {err}");
    assert!(!err.contains("not-the-pin"), "the error must not echo the PIN: {err}");
    let st = seal_status(&s.addr);
    assert_eq!((st["sealed"].as_bool(), st["initialized"].as_bool()), (Some(true), Some(true)), "{st}");
    let (code, health) = http(&s.addr, "GET", "/v1/sys/health", &[], b"");
    assert_eq!(code, 503, "{health}");
    assert!(json(&health)["seal_error"].as_str().is_some_and(|e| e.contains("PIN")), "{health}");
    let (code, _) = http(&s.addr, "GET", "/v1/kv/proof", &[("X-Vault-Token", &root)], b"");
    assert_eq!(code, 503, "sealed: no data served");
    let log = s.log_text();
    assert!(log.contains("PIN") && !log.contains("not-the-pin"), "log names the PIN problem, not the PIN:\n{log}");
}

#[test]
fn pkcs11_missing_key_with_generate_key_false_is_a_clear_error() {
    let Some(hsm) = softhsm() else { return };
    let conf = hsm.conf.display().to_string();
    let env = [("SOFTHSM2_CONF", conf.as_str()), ("VAULT_HSM_PIN", PIN)];

    // Fresh token, no key, generate_key = false: init is refused and nothing is written.
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &hsm.stanza("absent-key", false, ""));
    let s = start(&config, &env);
    let (code, body) = http(&s.addr, "PUT", "/v1/sys/init", &[], br#"{"recovery_shares":1,"recovery_threshold":1}"#);
    assert!(code >= 400, "init must fail: {code} {body}");
    assert!(body.contains("absent-key") && body.contains("generate_key"), "clear error: {body}");
    let st = seal_status(&s.addr);
    assert_eq!((st["initialized"].as_bool(), st["sealed"].as_bool()), (Some(false), Some(true)), "{st}");
    drop(s);

    // Initialised with one key, restarted naming a key that is not there: sealed, clear error.
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &hsm.stanza("real-key", true, ""));
    let mut s = start(&config, &env);
    init_recovery(&s.addr, 1, 1);
    s.kill9();
    let config = write_config(dir.path(), &hsm.stanza("renamed-key", false, ""));
    let s = start(&config, &env);
    let err = wait_seal_error(&s, Duration::from_secs(10));
    assert!(err.contains("renamed-key") && err.contains("not found"), "clear error: {err}");
    assert_eq!(seal_status(&s.addr)["sealed"], true);
}

#[test]
fn recovery_keys_are_rekeyed_with_bao_operator_rekey_target_recovery() {
    let Some(bao) = bao_path() else { return };
    let Some(hsm) = softhsm() else { return };
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &hsm.stanza("kek", true, ""));
    // `bao operator rekey` calls the legacy unauthenticated sys/rekey-recovery-key/*, which a
    // listener serves only when told to (as on OpenBao 2.x).
    let text = std::fs::read_to_string(&config).unwrap();
    let text =
        text.replacen("tls_disable = true\n", "tls_disable = true\n  disable_unauthed_rekey_endpoints = false\n", 1);
    std::fs::write(&config, text).unwrap();
    let conf = hsm.conf.display().to_string();
    let s = start(&config, &[("SOFTHSM2_CONF", conf.as_str()), ("VAULT_HSM_PIN", PIN)]);
    let (old, root) = init_recovery(&s.addr, 3, 2);
    write_proof(&s.addr, &root, "v");

    let o = cli(
        &bao,
        &s.addr,
        None,
        &["operator", "rekey", "-target=recovery", "-init", "-key-shares=2", "-key-threshold=2", "-format=json"],
    );
    assert!(o.status.success(), "rekey init: {}", out(&o));
    let nonce = json(&String::from_utf8_lossy(&o.stdout))["nonce"].as_str().unwrap().to_string();
    let mut last = serde_json::Value::Null;
    for k in &old[..2] {
        let o = cli(
            &bao,
            &s.addr,
            None,
            &["operator", "rekey", "-target=recovery", &format!("-nonce={nonce}"), "-format=json", k],
        );
        assert!(o.status.success(), "rekey update: {}", out(&o));
        last = json(&String::from_utf8_lossy(&o.stdout));
    }
    assert_eq!(last["complete"], true, "{last}");
    let new: Vec<String> =
        last["keys_base64"].as_array().unwrap().iter().map(|k| k.as_str().unwrap().to_string()).collect();
    assert_eq!(new.len(), 2);
    let st = seal_status(&s.addr);
    assert_eq!((st["t"].clone(), st["n"].clone()), (2.into(), 2.into()), "{st}");

    // Sealed by hand: the old recovery keys no longer open it, the new ones do.
    let (c, b) = http(&s.addr, "PUT", "/v1/sys/seal", &[("X-Vault-Token", &root)], b"");
    assert!(c == 200 || c == 204, "{b}");
    for k in &old[..2] {
        http(&s.addr, "PUT", "/v1/sys/unseal", &[], format!("{{\"key\":\"{k}\"}}").as_bytes());
    }
    assert_eq!(seal_status(&s.addr)["sealed"], true, "old recovery keys must not unseal");
    common::unseal(&s.addr, &new);
    assert_eq!(read_proof(&s.addr, &root), "v");
}

#[test]
fn pkcs11_token_absent_at_start_keeps_the_server_sealed_until_it_appears() {
    let Some(hsm) = softhsm() else { return };
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &hsm.stanza("kek", true, ""));
    let conf = hsm.conf.display().to_string();
    let env = [("SOFTHSM2_CONF", conf.as_str()), ("VAULT_HSM_PIN", PIN)];
    let mut s = start(&config, &env);
    let (_, root) = init_recovery(&s.addr, 1, 1);
    write_proof(&s.addr, &root, "behind the HSM");
    s.kill9();

    // The token is taken away (SoftHSM2 keeps each token in a directory of the token store).
    let tokens = hsm.dir.path().join("tokens");
    let away = hsm.dir.path().join("away");
    std::fs::rename(&tokens, &away).unwrap();
    std::fs::create_dir_all(&tokens).unwrap();
    let s = start(&config, &env);
    let err = wait_seal_error(&s, Duration::from_secs(10));
    assert!(err.contains("HSM unavailable") && err.contains(TOKEN_LABEL), "clear error: {err}");
    assert_eq!(seal_status(&s.addr)["sealed"], true);

    // The token comes back: the background retry unseals the server, no operator needed.
    std::fs::remove_dir_all(&tokens).unwrap();
    std::fs::rename(&away, &tokens).unwrap();
    let took = wait_sealed(&s, false, Duration::from_secs(15));
    eprintln!("unsealed {took:?} after the token returned");
    assert_eq!(read_proof(&s.addr, &root), "behind the HSM");
}

#[test]
fn a_pkcs11_sealed_server_started_without_its_seal_stanza_says_what_is_wrong() {
    let Some(hsm) = softhsm() else { return };
    let dir = tempfile::tempdir().unwrap();
    let conf = hsm.conf.display().to_string();
    let env = [("SOFTHSM2_CONF", conf.as_str()), ("VAULT_HSM_PIN", PIN)];
    let config = write_config(dir.path(), &hsm.stanza("kek", true, ""));
    let mut s = start(&config, &env);
    let (recovery, _) = init_recovery(&s.addr, 1, 1);
    s.kill9();

    let config = write_config(dir.path(), "");
    let s = start(&config, &env);
    let st = seal_status(&s.addr);
    let err = st["seal_error"].as_str().unwrap_or_default();
    assert!(err.contains("pkcs11") && err.contains("disabled"), "names the stored seal and the fix: {st}");
    let (code, body) =
        http(&s.addr, "PUT", "/v1/sys/unseal", &[], format!("{{\"key\":\"{}\"}}", recovery[0]).as_bytes());
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("pkcs11"), "{body}");
}

/// The slot number SoftHSM2 gave the test token (`softhsm2-util --show-slots`).
fn token_slot(hsm: &SoftHsm) -> String {
    let o = std::process::Command::new("softhsm2-util")
        .arg("--show-slots")
        .env("SOFTHSM2_CONF", &hsm.conf)
        .output()
        .expect("softhsm2-util --show-slots");
    let text = String::from_utf8_lossy(&o.stdout);
    let mut slot = None;
    for line in text.lines() {
        if let Some(n) = line.strip_prefix("Slot ") {
            slot = Some(n.trim().to_string());
        }
        if line.trim().starts_with("Label:") && line.contains(TOKEN_LABEL) {
            return slot.expect("a slot line before the label");
        }
    }
    panic!("token {TOKEN_LABEL} not in:\n{text}");
}

#[test]
fn pkcs11_seal_configured_by_vault_variables_alone_with_a_slot_number() {
    let Some(hsm) = softhsm() else { return };
    let slot = token_slot(&hsm);
    let dir = tempfile::tempdir().unwrap();
    // No seal stanza: VAULT_SEAL_TYPE and the VAULT_HSM_* variables declare it.
    let config = write_config(dir.path(), "");
    let conf = hsm.conf.display().to_string();
    let env = [
        ("SOFTHSM2_CONF", conf.as_str()),
        ("VAULT_SEAL_TYPE", "pkcs11"),
        ("VAULT_HSM_LIB", hsm.lib.as_str()),
        ("VAULT_HSM_SLOT", slot.as_str()),
        ("VAULT_HSM_PIN", PIN),
        ("VAULT_HSM_KEY_LABEL", "env-kek"),
        ("VAULT_HSM_GENERATE_KEY", "true"),
    ];
    let mut s = start(&config, &env);
    assert_eq!(seal_status(&s.addr)["type"], "pkcs11");
    let (_, root) = init_recovery(&s.addr, 1, 1);
    write_proof(&s.addr, &root, "by slot");
    s.kill9();
    let s = start(&config, &env);
    wait_sealed(&s, false, Duration::from_secs(10));
    assert_eq!(read_proof(&s.addr, &root), "by slot");
}
