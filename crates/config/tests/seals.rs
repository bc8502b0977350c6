//! `seal` stanzas: the three types, Vault's string booleans for `disabled`, the migration pair,
//! and `VAULT_SEAL_TYPE`.

use coffer_config::ServerConfig;

#[test]
fn seal_stanzas_keep_their_options_and_a_disabled_one_is_the_migration_source() {
    let src = r#"
seal "pkcs11" {
  lib = "/usr/lib/softhsm/libsofthsm2.so"
  slot = "0"
  pin = "1234"
  key_label = "k"
  disabled = "true"
}
seal "transit" {
  address = "http://127.0.0.1:8200"
  key_name = "autounseal"
  mount_path = "transit/"
}
"#;
    let c = ServerConfig::parse(src, "c.hcl").unwrap();
    assert_eq!(c.seals.len(), 2);
    let (enabled, disabled) = c.seal_pair().unwrap();
    assert_eq!(enabled.unwrap().kind, "transit");
    let old = disabled.unwrap();
    assert_eq!((old.kind.as_str(), old.disabled), ("pkcs11", true));
    assert_eq!(old.options.get("key_label").map(String::as_str), Some("k"));
    // Debug shows option names, never values (the PIN).
    let dbg = format!("{old:?}");
    assert!(dbg.contains("pin") && !dbg.contains("1234"), "{dbg}");
}

#[test]
fn two_enabled_seals_or_an_unknown_type_are_refused() {
    let two = "seal \"pkcs11\" {\n  lib = \"x\"\n}\nseal \"transit\" {\n  address = \"x\"\n}\n";
    let c = ServerConfig::parse(two, "c.hcl").unwrap();
    assert!(c.seal_pair().unwrap_err().to_string().contains("at most one enabled seal"));
    let e = ServerConfig::parse("seal \"awskms\" {\n  region = \"x\"\n}\n", "c.hcl").unwrap_err();
    assert!(e.to_string().contains("awskms") && e.to_string().contains("pkcs11"), "{e}");
    // An explicit shamir stanza is the default seal.
    let c = ServerConfig::parse("seal \"shamir\" {\n}\n", "c.hcl").unwrap();
    assert!(c.seal_pair().unwrap().0.is_none());
}

#[test]
fn vault_seal_type_declares_a_seal_configured_by_variables() {
    let mut c = ServerConfig::parse("ui = true\n", "c.hcl").unwrap();
    c.apply_env(|k| (k == "VAULT_SEAL_TYPE").then(|| "pkcs11".to_string()));
    assert_eq!(c.seal_pair().unwrap().0.map(|s| s.kind.as_str()), Some("pkcs11"));
}
