//! Seal migration as Vault documents it, driven by the real `bao operator unseal -migrate`:
//! Shamir → pkcs11 (new seal stanza), pkcs11 → Shamir and transit → Shamir (old stanza kept
//! with `disabled = "true"`). Data written before the migration is read after it, and after a
//! further restart.

mod common;
mod seal_common;

use common::{bao_path, cli, http, init_unseal, json, out, unseal};
use seal_common::*;
use std::time::Duration;

/// `bao operator unseal -migrate KEY` for each key; the last output.
fn bao_unseal_migrate(bao: &str, addr: &str, keys: &[String]) -> String {
    let mut last = String::new();
    for k in keys {
        let o = cli(bao, addr, None, &["operator", "unseal", "-migrate", k]);
        last = out(&o);
        assert!(o.status.success(), "bao operator unseal -migrate: {last}");
    }
    last
}

#[test]
fn migrate_shamir_to_pkcs11_with_bao_operator_unseal_migrate() {
    let Some(bao) = bao_path() else { return };
    let Some(hsm) = softhsm() else { return };
    let conf = hsm.conf.display().to_string();
    let env = [("SOFTHSM2_CONF", conf.as_str()), ("VAULT_HSM_PIN", PIN)];
    let dir = tempfile::tempdir().unwrap();

    let config = write_config(dir.path(), "");
    let mut s = start(&config, &env);
    let (keys, root) = init_unseal(&s.addr);
    write_proof(&s.addr, &root, "from the shamir days");
    s.kill9();

    // The new seal's stanza is added; Shamir needs no stanza of its own.
    let config = write_config(dir.path(), &hsm.stanza("migrated-kek", true, ""));
    let s = start(&config, &env);
    let st = seal_status(&s.addr);
    assert_eq!((st["sealed"].as_bool(), st["migration"].as_bool()), (Some(true), Some(true)), "{st}");
    let status = out(&cli(&bao, &s.addr, None, &["status"]));
    assert!(status.contains("Seal Migration in Progress"), "bao status shows the migration: {status}");
    // A key without -migrate is refused while a migration is pending.
    let o = cli(&bao, &s.addr, None, &["operator", "unseal", &keys[0]]);
    assert!(!o.status.success() && out(&o).contains("migrat"), "unseal without -migrate: {}", out(&o));

    bao_unseal_migrate(&bao, &s.addr, &keys[..3]);
    wait_sealed(&s, false, Duration::from_secs(5));
    let st = seal_status(&s.addr);
    assert_eq!(st["type"], "pkcs11", "{st}");
    assert_eq!((st["recovery_seal"].as_bool(), st["migration"].as_bool()), (Some(true), Some(false)), "{st}");
    assert_eq!((st["t"].clone(), st["n"].clone()), (3.into(), 5.into()), "the old shares became recovery shares: {st}");
    assert_eq!(read_proof(&s.addr, &root), "from the shamir days");
    drop(s);

    // Restarted, it unseals itself through the HSM.
    let s = start(&config, &env);
    wait_sealed(&s, false, Duration::from_secs(10));
    assert_eq!(read_proof(&s.addr, &root), "from the shamir days");

    // The old unseal keys are now recovery keys: sealed by hand, they unseal it again.
    let (c, b) = http(&s.addr, "PUT", "/v1/sys/seal", &[("X-Vault-Token", &root)], b"");
    assert!(c == 200 || c == 204, "{b}");
    unseal(&s.addr, &keys[2..5]);
    assert_eq!(read_proof(&s.addr, &root), "from the shamir days");
}

#[test]
fn migrate_pkcs11_to_shamir_with_the_old_stanza_disabled() {
    let Some(bao) = bao_path() else { return };
    let Some(hsm) = softhsm() else { return };
    let conf = hsm.conf.display().to_string();
    let env = [("SOFTHSM2_CONF", conf.as_str()), ("VAULT_HSM_PIN", PIN)];
    let dir = tempfile::tempdir().unwrap();

    let config = write_config(dir.path(), &hsm.stanza("kek", true, ""));
    let mut s = start(&config, &env);
    let (recovery, root) = init_recovery(&s.addr, 3, 2);
    write_proof(&s.addr, &root, "from the HSM days");
    s.kill9();

    let config = write_config(dir.path(), &hsm.stanza("kek", false, "  disabled = \"true\"\n"));
    let mut s = start(&config, &env);
    let st = seal_status(&s.addr);
    assert_eq!((st["sealed"].as_bool(), st["migration"].as_bool()), (Some(true), Some(true)), "{st}");
    assert_eq!(st["t"], 2, "the recovery threshold is asked for: {st}");
    // A wrong recovery key set is refused and the server stays sealed.
    let other = init_other_recovery_key();
    let o = cli(&bao, &s.addr, None, &["operator", "unseal", "-migrate", &other[0]]);
    let _ = o;
    let o = cli(&bao, &s.addr, None, &["operator", "unseal", "-migrate", &other[1]]);
    assert!(!o.status.success(), "wrong recovery keys must fail: {}", out(&o));
    assert_eq!(seal_status(&s.addr)["sealed"], true);

    bao_unseal_migrate(&bao, &s.addr, &recovery[..2]);
    wait_sealed(&s, false, Duration::from_secs(5));
    let st = seal_status(&s.addr);
    assert_eq!((st["type"].as_str(), st["recovery_seal"].as_bool()), (Some("shamir"), Some(false)), "{st}");
    assert_eq!((st["t"].clone(), st["n"].clone()), (2.into(), 3.into()), "{st}");
    assert_eq!(read_proof(&s.addr, &root), "from the HSM days");
    s.kill9();

    // Now a Shamir server: restarted it stays sealed; the recovery keys are its unseal keys.
    let config = write_config(dir.path(), "");
    let s = start(&config, &env);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(seal_status(&s.addr)["sealed"], true);
    unseal(&s.addr, &recovery[1..3]);
    assert_eq!(read_proof(&s.addr, &root), "from the HSM days");
}

/// Two key shares of some other key (valid encoding, wrong key).
fn init_other_recovery_key() -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let s = common::Server::start_file(dir.path());
    let (st, body) = http(&s.addr, "PUT", "/v1/sys/init", &[], br#"{"secret_shares":3,"secret_threshold":2}"#);
    assert_eq!(st, 200, "{body}");
    json(&body)["keys_base64"].as_array().unwrap().iter().map(|k| k.as_str().unwrap().to_string()).collect()
}

#[test]
fn migrate_transit_to_shamir_against_openbao_dev() {
    let Some(bao) = bao_path() else { return };
    let work = tempfile::tempdir().unwrap();
    let dev = bao_dev(&bao, work.path(), "bao-root");
    transit_key(&dev.addr, "bao-root", "coffer-unseal");
    let dir = tempfile::tempdir().unwrap();
    let stanza = transit_stanza(&dev.addr, "bao-root", "coffer-unseal");

    let config = write_config(dir.path(), &stanza);
    let mut s = start(&config, &[]);
    let (recovery, root) = init_recovery(&s.addr, 1, 1);
    write_proof(&s.addr, &root, "from the transit days");
    s.kill9();

    let disabled = stanza.replacen("seal \"transit\" {\n", "seal \"transit\" {\n  disabled = \"true\"\n", 1);
    let config = write_config(dir.path(), &disabled);
    let mut s = start(&config, &[]);
    assert_eq!(seal_status(&s.addr)["migration"], true);
    bao_unseal_migrate(&bao, &s.addr, &recovery);
    wait_sealed(&s, false, Duration::from_secs(5));
    assert_eq!(seal_status(&s.addr)["type"], "shamir");
    assert_eq!(read_proof(&s.addr, &root), "from the transit days");
    s.kill9();

    // The transit server is no longer needed.
    drop(dev);
    let config = write_config(dir.path(), "");
    let s = start(&config, &[]);
    unseal(&s.addr, &recovery);
    assert_eq!(read_proof(&s.addr, &root), "from the transit days");
}

#[test]
fn migrate_shamir_to_transit_against_a_second_coffer() {
    let Some(bao) = bao_path() else { return };
    let transit = common::Server::start_dev("dev-root");
    transit_key(&transit.addr, "dev-root", "coffer-unseal");
    let dir = tempfile::tempdir().unwrap();
    let mut s = start(&write_config(dir.path(), ""), &[]);
    let (keys, root) = init_unseal(&s.addr);
    write_proof(&s.addr, &root, "shamir then transit");
    s.kill9();

    let config = write_config(dir.path(), &transit_stanza(&transit.addr, "dev-root", "coffer-unseal"));
    let mut s = start(&config, &[]);
    assert_eq!(seal_status(&s.addr)["migration"], true);
    bao_unseal_migrate(&bao, &s.addr, &keys[1..4]);
    wait_sealed(&s, false, Duration::from_secs(5));
    assert_eq!(seal_status(&s.addr)["type"], "transit");
    s.kill9();
    let s = start(&config, &[]);
    wait_sealed(&s, false, Duration::from_secs(10));
    assert_eq!(read_proof(&s.addr, &root), "shamir then transit");
}

#[test]
fn migrate_pkcs11_to_transit_keeps_the_recovery_keys() {
    let Some(bao) = bao_path() else { return };
    let Some(hsm) = softhsm() else { return };
    let conf = hsm.conf.display().to_string();
    let env = [("SOFTHSM2_CONF", conf.as_str()), ("VAULT_HSM_PIN", PIN)];
    let transit = common::Server::start_dev("dev-root");
    transit_key(&transit.addr, "dev-root", "coffer-unseal");
    let dir = tempfile::tempdir().unwrap();

    let mut s = start(&write_config(dir.path(), &hsm.stanza("kek", true, "")), &env);
    let (recovery, root) = init_recovery(&s.addr, 3, 2);
    write_proof(&s.addr, &root, "HSM then transit");
    s.kill9();

    // The new seal enabled, the old one kept disabled.
    let both = format!(
        "{}{}",
        transit_stanza(&transit.addr, "dev-root", "coffer-unseal"),
        hsm.stanza("kek", false, "  disabled = \"true\"\n")
    );
    let config = write_config(dir.path(), &both);
    let mut s = start(&config, &env);
    let st = seal_status(&s.addr);
    assert_eq!((st["migration"].as_bool(), st["t"].as_u64()), (Some(true), Some(2)), "{st}");
    bao_unseal_migrate(&bao, &s.addr, &recovery[..2]);
    wait_sealed(&s, false, Duration::from_secs(5));
    let st = seal_status(&s.addr);
    assert_eq!((st["type"].as_str(), st["n"].as_u64()), (Some("transit"), Some(3)), "{st}");
    s.kill9();

    // Only the transit stanza now: it unseals itself, and the same recovery keys still work.
    let config = write_config(dir.path(), &transit_stanza(&transit.addr, "dev-root", "coffer-unseal"));
    let s = start(&config, &[]);
    wait_sealed(&s, false, Duration::from_secs(10));
    assert_eq!(read_proof(&s.addr, &root), "HSM then transit");
    let (c, b) = http(&s.addr, "PUT", "/v1/sys/seal", &[("X-Vault-Token", &root)], b"");
    assert!(c == 200 || c == 204, "{b}");
    unseal(&s.addr, &recovery[1..3]);
    assert_eq!(read_proof(&s.addr, &root), "HSM then transit");
}
