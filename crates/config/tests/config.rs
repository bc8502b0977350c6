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

const SHA: &str = "9fdd8be7947e4a4caf7cce4f0e02695081b6c85178aa912df5d37be97363144c";

fn plugin_cfg(body: &str) -> Result<coffer_config::ServerConfig, String> {
    coffer_config::ServerConfig::parse(&format!("plugin \"secret\" \"aws\" {{\n{body}\n}}\n"), "p.hcl")
        .map_err(|e| e.to_string())
}

#[test]
fn plugin_stanzas_parse_in_hcl_and_json_alike() {
    let hcl = format!(
        "plugin_directory = \"/opt/p\"\nplugin_auto_download = true\nplugin_auto_register = \"true\"\n\
         plugin_download_behavior = \"warn\"\nplugin_download_max_size = 1000\n\
         plugin \"secret\" \"aws\" {{\n  url = \"https://example.com/aws\"\n  version = \"v1.0.0\"\n  \
         sha256sum = \"{}\"\n  binary_name = \"aws-bin\"\n  args = [\"-a\"]\n  env = [\"K=V\"]\n  \
         public_key = \"RWQ\"\n  signature = \"https://example.com/aws.minisig\"\n}}\n\
         plugin \"auth\" \"local\" {{\n  command = \"local-bin\"\n  version = \"1.2.3\"\n  sha256sum = \"{SHA}\"\n}}\n",
        SHA.to_uppercase()
    );
    let h = coffer_config::ServerConfig::parse(&hcl, "p.hcl").unwrap();
    let json = serde_json::json!({
        "plugin_directory": "/opt/p",
        "plugin_auto_download": true,
        "plugin_auto_register": true,
        "plugin_download_behavior": "warn",
        "plugin_download_max_size": 1000,
        "plugin": [
            { "secret": { "aws": {
                "url": "https://example.com/aws", "version": "v1.0.0", "sha256sum": SHA, "binary_name": "aws-bin",
                "args": ["-a"], "env": ["K=V"], "public_key": "RWQ", "signature": "https://example.com/aws.minisig",
            }}},
            { "auth": { "local": { "command": "local-bin", "version": "1.2.3", "sha256sum": SHA }}},
        ],
    });
    let j = coffer_config::ServerConfig::parse(&json.to_string(), "p.json").unwrap();
    for c in [&h, &j] {
        assert!(c.plugin_auto_download && c.plugin_auto_register);
        assert_eq!(c.plugin_download_warn, Some(true));
        assert_eq!(c.plugin_download_max_size, Some(1000));
        assert_eq!(c.plugins.len(), 2);
        let p = &c.plugins[0];
        assert_eq!((p.plugin_type.as_str(), p.name.as_str(), p.version.as_str()), ("secret", "aws", "v1.0.0"));
        assert_eq!(p.sha256sum, SHA, "lower-cased");
        assert_eq!(p.file_name(), "aws-bin");
        assert_eq!(p.args, vec!["-a"]);
        assert_eq!(p.env, vec!["K=V"]);
        assert_eq!(c.plugins[1].file_name(), "local-bin");
        assert_eq!(c.plugins[1].plugin_type, "auth");
    }
    // Without binary_name, a downloaded binary is saved as NAME-VERSION.
    let c = plugin_cfg(&format!("url = \"http://h/x\"\nversion = \"v2.0.0\"\nsha256sum = \"{SHA}\"")).unwrap();
    assert_eq!(c.plugins[0].file_name(), "aws-v2.0.0");
    assert!(!c.plugin_auto_download && !c.plugin_auto_register, "both default to false, as in OpenBao");
}

#[test]
fn plugin_stanzas_refuse_what_coffer_does_not_act_on_naming_the_stanza() {
    let ok = format!("version = \"v1.0.0\"\nsha256sum = \"{SHA}\"");
    let cases: &[(&str, &str)] = &[
        ("image = \"ghcr.io/openbao/aws\"\nbinary_name = \"aws\"", "OCI images are not supported"),
        ("url = \"https://h/x\"\nbogus = 1", "unknown plugin option \"bogus\""),
        ("url = \"https://h/x\"\ncommand = \"x\"", "command and url conflict"),
        ("command = \"x\"\nbinary_name = \"y\"", "binary_name applies to a downloaded binary"),
        ("", "one of command or url is required"),
        ("url = \"ftp://h/x\"", "must be an http:// or https:// URL"),
        ("command = \"../x\"", "must be a file name in the plugin directory"),
        ("url = \"https://h/x\"\nenv = [\"NOEQUALS\"]", "must be KEY=VALUE"),
        ("url = \"https://h/x\"\nsignature = \"https://h/x.minisig\"", "signature needs public_key"),
    ];
    for (body, want) in cases {
        let err = plugin_cfg(&format!("{ok}\n{body}")).unwrap_err();
        assert!(err.starts_with("p.hcl:1: plugin \"secret\" \"aws\": "), "{body}: {err}");
        assert!(err.contains(want), "{body}: {err}");
    }
    let err = plugin_cfg("url = \"https://h/x\"\nversion = \"v1.0.0\"").unwrap_err();
    assert!(err.contains("sha256sum is required"), "{err}");
    let err = plugin_cfg(&format!("url = \"https://h/x\"\nsha256sum = \"{SHA}\"")).unwrap_err();
    assert!(err.contains("version is required"), "{err}");
    let err = plugin_cfg(&format!("url = \"https://h/x\"\nversion = \"latest\"\nsha256sum = \"{SHA}\"")).unwrap_err();
    assert!(err.contains("not a semantic version"), "{err}");
    let err = coffer_config::ServerConfig::parse("plugin \"kms\" \"x\" {}\n", "p.hcl").unwrap_err().to_string();
    assert!(err.contains("unknown plugin type \"kms\""), "{err}");
    let two = format!("plugin \"secret\" \"a\" {{\nurl = \"https://h/a\"\n{ok}\n}}\n");
    let err = coffer_config::ServerConfig::parse(&format!("{two}{two}"), "p.hcl").unwrap_err().to_string();
    assert!(err.contains("must differ in version"), "{err}");
    let err = coffer_config::ServerConfig::parse("plugin_download_behavior = \"retry\"\n", "p.hcl").unwrap_err();
    assert!(err.to_string().contains("plugin_download_behavior"), "{err}");
}
