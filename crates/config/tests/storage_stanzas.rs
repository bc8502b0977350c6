//! The PostgreSQL storage stanza with Vault's option names (string booleans and numbers),
//! `raw_storage_endpoint`, and the migration file's `storage_source`/`storage_destination`, in
//! HCL and JSON.
use coffer_config::{MigrationConfig, ServerConfig};

#[test]
fn postgresql_stanza_with_vault_options_parses() {
    let src = r#"
storage "postgresql" {
  connection_url       = "postgres://vault:secret@db:5432/vault"
  table                = "vault_kv"
  ha_enabled           = "true"
  ha_table             = "vault_ha"
  max_parallel         = 16
  max_idle_connections = "4"
}
listener "tcp" {
  address = "127.0.0.1:8200"
}
raw_storage_endpoint = true
"#;
    let c = ServerConfig::parse(src, "pg.hcl").unwrap();
    let s = c.storage.unwrap();
    assert_eq!(s.kind, "postgresql");
    assert_eq!(s.options["ha_enabled"], "true");
    assert_eq!(s.options["max_parallel"], "16");
    assert_eq!(s.options["table"], "vault_kv");
    assert!(c.raw_storage_endpoint);
    assert!(c.warnings.iter().all(|w| !w.contains("raw_storage_endpoint")), "no longer inert");
    let c = ServerConfig::parse("storage \"inmem\" {}\n", "x.hcl").unwrap();
    assert!(!c.raw_storage_endpoint, "off by default");
}

#[test]
fn migration_config_in_hcl_and_json() {
    let hcl = r#"
storage_source "file" {
  path = "/var/lib/coffer"
}
storage_destination "postgresql" {
  connection_url = "postgres://u:p@db/coffer"
}
cluster_addr = "https://127.0.0.1:8201"
"#;
    let m = MigrationConfig::parse(hcl, "migrate.hcl").unwrap();
    assert_eq!(m.source.kind, "file");
    assert_eq!(m.source.options["path"], "/var/lib/coffer");
    assert_eq!(m.destination.kind, "postgresql");
    let json = r#"{"storage_source": {"postgresql": {"connection_url": "postgres://db/x"}},
                  "storage_destination": {"file": {"path": "/tmp/x"}}}"#;
    let m = MigrationConfig::parse(json, "migrate.json").unwrap();
    assert_eq!((m.source.kind.as_str(), m.destination.kind.as_str()), ("postgresql", "file"));
    let e = MigrationConfig::parse("storage_source \"inmem\" {}\n", "m.hcl").unwrap_err();
    assert!(e.to_string().contains("missing storage_destination"), "{e}");
    let e =
        MigrationConfig::parse("storage_source \"inmem\" {}\nstorage_destination \"file\" {}\n", "m.hcl").unwrap_err();
    assert!(e.to_string().contains("needs a path"), "{e}");
    let e = MigrationConfig::parse("storage \"inmem\" {}\n", "m.hcl").unwrap_err();
    assert!(e.to_string().contains("unknown migration stanza \"storage\""), "{e}");
}
