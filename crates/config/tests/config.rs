//! Vault-style server configurations parse as Vault users write them.
use coffer_config::{ConfigError, ServerConfig};

#[test]
fn vault_hcl_with_old_spellings_parses() {
    let src = r#"
# a typical Vault config
backend "file" {
  path = "/var/lib/coffer"
}
listener "tcp" {
  address     = "0.0.0.0:8200"
  tls_disable = "true"
}
api_addr          = "http://127.0.0.1:8200"
cluster_addr      = "https://127.0.0.1:8201"
ui                = true
disable_mlock     = true
log_level         = "Info"
default_lease_ttl = "1h"
max_lease_ttl     = "720h"
"#;
    let c = ServerConfig::parse(src, "vault.hcl").unwrap();
    assert_eq!(c.storage.as_ref().unwrap().kind, "file");
    assert_eq!(c.storage.as_ref().unwrap().options["path"], "/var/lib/coffer");
    assert_eq!(c.listeners[0].address, "0.0.0.0:8200");
    assert!(c.listeners[0].tls_disable);
    assert!(c.ui && c.disable_mlock);
    assert_eq!(c.log_level.as_deref(), Some("info"));
    assert_eq!(c.default_lease_ttl, Some(3600));
    assert_eq!(c.max_lease_ttl, Some(720 * 3600));
}

#[test]
fn json_config_parses() {
    let src = r#"{
  "storage": {"file": {"path": "/data"}},
  "listener": [{"tcp": {"address": "127.0.0.1:8300", "tls_disable": true}}],
  "api_addr": "http://127.0.0.1:8300"
}"#;
    let c = ServerConfig::parse(src, "c.json").unwrap();
    assert_eq!(c.storage.unwrap().options["path"], "/data");
    assert_eq!(c.listeners[0].address, "127.0.0.1:8300");
}

#[test]
fn unknown_stanza_is_reported_with_its_line() {
    let src = "storage \"inmem\" {}\n\nfrobnicate = 1\n";
    let e = ServerConfig::parse(src, "x.hcl").unwrap_err();
    assert_eq!(
        e,
        ConfigError::AtLine {
            file: "x.hcl".into(),
            line: 3,
            msg: "unknown configuration stanza \"frobnicate\"".into()
        }
    );
}

#[test]
fn bad_values_are_reported_with_their_line() {
    let e = ServerConfig::parse("storage \"inmem\" {}\nlistener \"tcp\" {\n tls_disable = \"maybe\"\n}\n", "y.hcl")
        .unwrap_err();
    // A listener option's error names the option's own line, not the block's.
    assert!(matches!(e, ConfigError::AtLine { line: 3, .. }), "{e}");
    let e = ServerConfig::parse("storage \"consul\" {}\n", "z.hcl").unwrap_err();
    assert!(e.to_string().contains("z.hcl:1: unknown storage type \"consul\""), "{e}");
    let e = ServerConfig::parse("default_lease_ttl = \"soon\"\n", "d.hcl").unwrap_err();
    assert!(e.to_string().contains("d.hcl:1"), "{e}");
    let e = ServerConfig::parse("listener \"tcp\" {\n", "broken.hcl").unwrap_err();
    assert!(e.to_string().contains("invalid HCL"), "{e}");
}

#[test]
fn environment_overrides_prefer_bao_names() {
    let mut c = ServerConfig::parse("api_addr = \"http://a\"\n", "e.hcl").unwrap();
    c.apply_env(|k| match k {
        "VAULT_API_ADDR" => Some("http://vault".into()),
        "BAO_API_ADDR" => Some("http://bao".into()),
        "VAULT_LOG_LEVEL" => Some("DEBUG".into()),
        _ => None,
    });
    assert_eq!(c.api_addr.as_deref(), Some("http://bao"));
    assert_eq!(c.log_level.as_deref(), Some("debug"));
}

#[test]
fn audit_stanzas_and_listener_telemetry_parse() {
    let src = r#"
storage "inmem" {}
listener "tcp" {
  address = "127.0.0.1:8200"
  tls_disable = true
  telemetry {
    unauthenticated_metrics_access = true
  }
}
audit "file" "to-file" {
  description = "main log"
  options {
    file_path = "/var/log/coffer/audit.log"
    log_raw   = "false"
  }
}
audit "syslog" "sys" {}
"#;
    let c = ServerConfig::parse(src, "a.hcl").unwrap();
    assert!(c.listeners[0].unauthenticated_metrics_access);
    assert_eq!(c.audit.len(), 2);
    assert_eq!(c.audit[0].path, "to-file");
    assert_eq!(c.audit[0].options["file_path"], "/var/log/coffer/audit.log");
    assert_eq!(c.audit[1].device_type, "syslog");
    let e = ServerConfig::parse("audit \"tape\" \"x\" {}\n", "b.hcl").unwrap_err();
    assert!(e.to_string().contains("b.hcl:1") && e.to_string().contains("tape"), "{e}");
}
