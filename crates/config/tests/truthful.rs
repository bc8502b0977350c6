//! Every configuration key a Vault or OpenBao user may write is acted on, refused with an
//! error that names it, or listed in `IGNORED_ON_PURPOSE` with its reason: none is accepted
//! and silently ignored. "Acted on" here means it changes the parsed configuration the server
//! runs from.
use coffer_config::{ignored_on_purpose, ServerConfig};

const BASE: &str =
    "storage \"inmem\" {}\nlistener \"tcp\" {\n  address = \"127.0.0.1:8200\"\n  tls_disable = true\n}\n";

/// Top-level keys from the Vault and OpenBao configuration documentation, with a value that is
/// not the default.
const TOP_LEVEL: &[(&str, &str)] = &[
    ("api_addr", "\"http://10.0.0.1:8200\""),
    ("cluster_addr", "\"https://10.0.0.1:8201\""),
    ("cluster_name", "\"prod\""),
    ("cache_size", "131072"),
    ("disable_cache", "true"),
    ("disable_mlock", "true"),
    ("plugin_directory", "\"/opt/plugins\""),
    ("plugin_tmpdir", "\"/tmp/p\""),
    ("plugin_file_uid", "1000"),
    ("plugin_file_permissions", "\"0750\""),
    ("plugin_auto_download", "true"),
    ("plugin_auto_register", "true"),
    ("plugin_download_behavior", "\"warn\""),
    ("plugin_download_max_size", "1048576"),
    ("default_lease_ttl", "\"1h\""),
    ("max_lease_ttl", "\"48h\""),
    ("default_max_request_duration", "\"30s\""),
    ("detect_deadlocks", "\"statelock\""),
    ("raw_storage_endpoint", "true"),
    ("introspection_endpoint", "true"),
    ("ui", "true"),
    ("pid_file", "\"/run/coffer.pid\""),
    ("enable_response_header_hostname", "true"),
    ("enable_response_header_raft_node_id", "true"),
    ("log_level", "\"debug\""),
    ("log_format", "\"json\""),
    ("log_file", "\"/var/log/coffer.log\""),
    ("log_rotate_duration", "\"24h\""),
    ("log_rotate_bytes", "1048576"),
    ("log_rotate_max_files", "3"),
    ("log_requests_level", "\"info\""),
    ("experiments", "[\"x\"]"),
    ("disable_clustering", "true"),
    ("disable_performance_standby", "true"),
    ("disable_sealwrap", "true"),
    ("disable_printable_check", "true"),
    ("disable_indexing", "true"),
    ("imprecise_lease_role_tracking", "true"),
    ("unsafe_allow_api_audit_creation", "true"),
    ("allow_audit_log_prefixing", "true"),
    ("license_path", "\"/etc/license\""),
    ("cluster_cipher_suites", "\"TLS_AES_128_GCM_SHA256\""),
    ("administrative_namespace_path", "\"admin/\""),
];

/// Top-level blocks, written out whole.
const BLOCKS: &[(&str, &str)] = &[
    ("service_registration", "service_registration \"consul\" {\n  address = \"127.0.0.1:8500\"\n}\n"),
    ("ha_storage", "ha_storage \"consul\" {\n  address = \"127.0.0.1:8500\"\n}\n"),
    ("user_lockout", "user_lockout \"all\" {\n  lockout_threshold = 5\n}\n"),
    ("entropy", "entropy \"seal\" {\n  mode = \"augmentation\"\n}\n"),
    ("kms_library", "kms_library \"pkcs11\" {\n  name = \"x\"\n  library = \"/x.so\"\n}\n"),
    ("telemetry disable_hostname", "telemetry {\n  disable_hostname = true\n}\n"),
    ("telemetry prometheus_retention_time", "telemetry {\n  prometheus_retention_time = \"30s\"\n}\n"),
    ("telemetry statsd_address", "telemetry {\n  statsd_address = \"127.0.0.1:8125\"\n}\n"),
    ("telemetry dogstatsd_addr", "telemetry {\n  dogstatsd_addr = \"127.0.0.1:8125\"\n}\n"),
    ("telemetry bogus", "telemetry {\n  bogus = 1\n}\n"),
    ("seal shamir option", "seal \"shamir\" {\n  bogus = \"1\"\n}\n"),
    ("seal awskms", "seal \"awskms\" {\n  region = \"us-east-1\"\n}\n"),
    ("plugin command", "plugin \"secret\" \"p\" {\n  command = \"p\"\n  version = \"v1.0.0\"\n  sha256sum = \"0000000000000000000000000000000000000000000000000000000000000000\"\n}\n"),
    ("plugin image", "plugin \"secret\" \"p\" {\n  image = \"ghcr.io/x/p\"\n  version = \"v1.0.0\"\n  binary_name = \"p\"\n  sha256sum = \"0000000000000000000000000000000000000000000000000000000000000000\"\n}\n"),
];

/// Listener options from the Vault and OpenBao documentation, with a value that is not the
/// default (file paths only need to parse: they are read when the listener starts).
const LISTENER: &[(&str, &str)] = &[
    ("cluster_address", "\"127.0.0.1:8201\""),
    ("tls_min_version", "\"tls13\""),
    ("tls_max_version", "\"tls12\""),
    ("tls_cipher_suites", "\"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256\""),
    ("tls_require_and_verify_client_cert", "true"),
    ("tls_client_ca_file", "\"/etc/ca.pem\""),
    ("tls_disable_client_certs", "true"),
    ("tls_prefer_server_cipher_suites", "true"),
    ("proxy_protocol_behavior", "\"use_always\""),
    ("proxy_protocol_authorized_addrs", "\"10.0.0.0/8\""),
    ("x_forwarded_for_authorized_addrs", "\"10.0.0.0/8\""),
    ("x_forwarded_for_hop_skips", "1"),
    ("x_forwarded_for_reject_not_authorized", "false"),
    ("x_forwarded_for_reject_not_present", "false"),
    ("max_request_size", "1024"),
    ("max_request_duration", "\"10s\""),
    ("http_read_timeout", "\"10s\""),
    ("http_write_timeout", "\"10s\""),
    ("http_idle_timeout", "\"10s\""),
    ("http_read_header_timeout", "\"15s\""),
    ("max_request_json_memory", "1024"),
    ("max_request_json_strings", "10"),
    ("disable_unauthed_generate_root_endpoints", "false"),
    ("disable_unauthed_rekey_endpoints", "false"),
    ("redact_addresses", "true"),
    ("redact_cluster_name", "true"),
    ("redact_version", "true"),
    ("disable_request_limiter", "true"),
    ("chroot_namespace", "\"team-a\""),
];

/// What the parser did with a key: `Err` when it was refused without being named, or
/// accepted without changing anything and without being on the list.
fn check(scope: &str, name: &str, base_src: &str, with_src: &str, silent: &mut Vec<String>) {
    let key = name.rsplit(' ').next().unwrap_or(name);
    let mut base = ServerConfig::parse(base_src, "base.hcl").expect("the base configuration parses");
    match ServerConfig::parse(with_src, "t.hcl") {
        Err(e) if e.to_string().contains(key) => {}
        Err(e) => silent.push(format!("{name}: refused, but the error does not name it: {e}")),
        Ok(mut c) => {
            c.warnings.clear();
            base.warnings.clear();
            if c == base && !ignored_on_purpose(scope, key) {
                silent.push(format!("{name}: accepted, changes nothing, and is not in IGNORED_ON_PURPOSE"));
            }
        }
    }
}

#[test]
fn no_configuration_key_is_accepted_and_silently_ignored() {
    let mut silent = Vec::new();
    for (k, v) in TOP_LEVEL {
        check("", k, BASE, &format!("{BASE}{k} = {v}\n"), &mut silent);
    }
    for (name, block) in BLOCKS {
        let scope = if name.starts_with("telemetry") { "telemetry" } else { "" };
        check(scope, name, BASE, &format!("{BASE}{block}"), &mut silent);
    }
    // Each option in a second listener, compared with the same listener without it.
    let second = "listener \"tcp\" {\n  address = \"127.0.0.1:8300\"\n  tls_disable = true\n";
    for (k, v) in LISTENER {
        let without = format!("{BASE}{second}}}\n");
        let with = format!("{BASE}{second}  {k} = {v}\n}}\n");
        check("listener", &format!("listener {k}"), &without, &with, &mut silent);
    }
    assert!(silent.is_empty(), "configuration keys silently ignored:\n{}", silent.join("\n"));
}

#[test]
fn every_key_ignored_on_purpose_is_accepted_and_has_a_reason() {
    for (scope, key, reason) in coffer_config::IGNORED_ON_PURPOSE {
        assert!(reason.len() > 20, "{scope} {key}: the reason must say why");
        let extra = match *scope {
            "" => format!("{key} = true\n"),
            "telemetry" => format!("telemetry {{\n  {key} = \"1\"\n}}\n"),
            "listener" => {
                format!("listener \"tcp\" {{\n  address = \"127.0.0.1:8300\"\n  {key} = \"127.0.0.1:8301\"\n}}\n")
            }
            other => panic!("unknown scope {other}"),
        };
        let extra = if *key == "cache_size" { "cache_size = 1024\n".to_string() } else { extra };
        ServerConfig::parse(&format!("{BASE}{extra}"), "t.hcl").unwrap_or_else(|e| panic!("{scope} {key}: {e}"));
    }
}

#[test]
fn refusals_name_the_file_and_line() {
    let err = ServerConfig::parse(&format!("{BASE}\nservice_registration \"consul\" {{}}\n"), "srv.hcl").unwrap_err();
    let msg = err.to_string();
    assert!(msg.starts_with("srv.hcl:7:"), "{msg}");
    assert!(msg.contains("service_registration") && msg.contains("not supported"), "{msg}");
}
