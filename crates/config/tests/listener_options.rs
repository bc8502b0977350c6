//! Every `listener "tcp"` option is parsed into the listener or refused with an error naming it
//! and its line.
use coffer_config::{ServerConfig, StatusMatch, TlsVersion};

fn listener(body: &str) -> Result<coffer_config::Listener, String> {
    let src = format!("storage \"inmem\" {{}}\nlistener \"tcp\" {{\n  address = \"127.0.0.1:8200\"\n{body}\n}}\n");
    ServerConfig::parse(&src, "l.hcl").map(|c| c.listeners[0].clone()).map_err(|e| e.to_string())
}

#[test]
fn defaults_follow_openbao() {
    let l = listener("").unwrap();
    assert_eq!((l.tls_min_version, l.tls_max_version), (TlsVersion::Tls12, TlsVersion::Tls13));
    assert!(l.disable_unauthed_generate_root_endpoints && l.disable_unauthed_rekey_endpoints);
    assert_eq!(l.max_request_duration, Some(90));
    assert_eq!((l.http_read_header_timeout, l.http_read_timeout, l.http_idle_timeout), (Some(10), Some(30), Some(300)));
    assert!(l.x_forwarded_for.is_none() && l.custom_response_headers.is_empty());
}

#[test]
fn tls_versions_are_parsed_and_old_ones_refused_naming_rustls() {
    let l = listener("  tls_min_version = \"tls13\"").unwrap();
    assert_eq!(l.tls_min_version, TlsVersion::Tls13);
    let l = listener("  tls_max_version = \"tls12\"").unwrap();
    assert_eq!(l.tls_max_version, TlsVersion::Tls12);
    for old in ["tls10", "tls11"] {
        let e = listener(&format!("  tls_min_version = \"{old}\"")).unwrap_err();
        assert!(e.starts_with("l.hcl:4:") && e.contains("rustls") && e.contains(old), "{e}");
    }
    let e = listener("  tls_min_version = \"ssl3\"").unwrap_err();
    assert!(e.contains("tls_min_version") && e.contains("ssl3"), "{e}");
    let e = listener("  tls_min_version = \"tls13\"\n  tls_max_version = \"tls12\"").unwrap_err();
    assert!(e.contains("tls_max_version must be greater"), "{e}");
}

#[test]
fn cipher_suites_map_go_names_and_refuse_what_rustls_lacks() {
    let l = listener(
        "  tls_cipher_suites = \"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305\"",
    )
    .unwrap();
    assert_eq!(l.tls_cipher_suites.len(), 2);
    let l = listener("  tls_cipher_suites = [\"TLS_AES_256_GCM_SHA384\"]").unwrap();
    assert_eq!(l.tls_cipher_suites, vec!["TLS_AES_256_GCM_SHA384".to_string()]);
    let e = listener("  tls_cipher_suites = \"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_RSA_WITH_AES_128_CBC_SHA\"")
        .unwrap_err();
    assert!(e.starts_with("l.hcl:4:") && e.contains("TLS_RSA_WITH_AES_128_CBC_SHA") && e.contains("rustls"), "{e}");
    let e = listener("  tls_cipher_suites = \"TLS_MADE_UP\"").unwrap_err();
    assert!(e.contains("unknown") && e.contains("TLS_MADE_UP"), "{e}");
}

#[test]
fn client_certificate_options_parse_and_conflicts_are_refused() {
    let l = listener("  tls_require_and_verify_client_cert = true\n  tls_client_ca_file = \"/ca.pem\"").unwrap();
    assert!(l.tls_require_and_verify_client_cert);
    assert_eq!(l.tls_client_ca_file.as_deref(), Some("/ca.pem"));
    let l = listener("  tls_disable_client_certs = \"true\"").unwrap();
    assert!(l.tls_disable_client_certs);
    let e = listener("  tls_require_and_verify_client_cert = true\n  tls_client_ca_file = \"/ca.pem\"\n  tls_disable_client_certs = true")
        .unwrap_err();
    assert!(e.contains("mutually exclusive"), "{e}");
    let e = listener("  tls_require_and_verify_client_cert = true").unwrap_err();
    assert!(e.contains("needs tls_client_ca_file"), "{e}");
    let e = listener("  tls_require_and_verify_client_cert = maybe").unwrap_err();
    assert!(e.contains("tls_require_and_verify_client_cert"), "{e}");
}

#[test]
fn forwarded_for_takes_a_list_or_a_comma_string() {
    let l = listener("  x_forwarded_for_authorized_addrs = \"10.0.0.0/8, 127.0.0.1\"\n  x_forwarded_for_hop_skips = 1\n  x_forwarded_for_reject_not_present = true")
        .unwrap();
    let x = l.x_forwarded_for.unwrap();
    assert_eq!(x.authorized.len(), 2);
    assert!(x.authorized[0].contains("10.1.2.3".parse().unwrap()));
    assert!(x.authorized[1].contains("127.0.0.1".parse().unwrap()));
    assert!(!x.authorized[1].contains("127.0.0.2".parse().unwrap()));
    assert_eq!(x.hop_skips, 1);
    // OpenBao 2.7.2 (observed): both reject flags default to false.
    assert!(x.reject_not_present && !x.reject_not_authorized);
    let l = listener("  x_forwarded_for_authorized_addrs = [\"::1/128\", \"192.168.0.0/16\"]").unwrap();
    assert!(l.x_forwarded_for.unwrap().authorized[0].contains("::1".parse().unwrap()));
    let e = listener("  x_forwarded_for_authorized_addrs = \"10.0.0.0/33\"").unwrap_err();
    assert!(e.starts_with("l.hcl:4:") && e.contains("10.0.0.0/33"), "{e}");
    let e = listener("  x_forwarded_for_hop_skips = 2").unwrap_err();
    assert!(e.starts_with("l.hcl:4:") && e.contains("need x_forwarded_for_authorized_addrs"), "{e}");
    let e =
        listener("  x_forwarded_for_authorized_addrs = \"10.0.0.0/8\"\n  x_forwarded_for_hop_skips = -1").unwrap_err();
    assert!(e.starts_with("l.hcl:5:") && e.contains("hop_skips"), "{e}");
}

#[test]
fn timeouts_and_limits_parse() {
    let l = listener("  max_request_duration = \"5s\"\n  http_read_header_timeout = \"2s\"\n  http_idle_timeout = \"1m\"\n  http_read_timeout = 0\n  max_request_json_memory = 1024\n  max_request_json_strings = 10")
        .unwrap();
    assert_eq!(l.max_request_duration, Some(5));
    assert_eq!(l.http_read_header_timeout, Some(2));
    assert_eq!(l.http_idle_timeout, Some(60));
    assert_eq!(l.http_read_timeout, None);
    assert_eq!((l.max_request_json_memory, l.max_request_json_strings), (Some(1024), Some(10)));
    let e = listener("  max_request_duration = \"soon\"").unwrap_err();
    assert!(e.contains("max_request_duration"), "{e}");
    let e = listener("  http_write_timeout = \"5s\"").unwrap_err();
    assert!(e.starts_with("l.hcl:4:") && e.contains("http_write_timeout"), "{e}");
    assert!(listener("  http_write_timeout = 0").is_ok());
    let e = listener("  max_request_json_strings = \"many\"").unwrap_err();
    assert!(e.contains("max_request_json_strings"), "{e}");
}

#[test]
fn unauthed_ceremony_switches_parse() {
    let l =
        listener("  disable_unauthed_generate_root_endpoints = false\n  disable_unauthed_rekey_endpoints = \"false\"")
            .unwrap();
    assert!(!l.disable_unauthed_generate_root_endpoints && !l.disable_unauthed_rekey_endpoints);
}

#[test]
fn custom_response_headers_take_openbao_shape() {
    let l = listener(
        "  custom_response_headers {\n    \"default\" = { \"X-A\" = [\"a\", \"b\"] },\n    \"4xx\" = { \"X-B\" = [\"four\"] }\n    \"404\" = { \"X-C\" = [\"nf\"] }\n  }",
    )
    .unwrap();
    let h = &l.custom_response_headers;
    assert_eq!(h[&StatusMatch::Default], vec![("X-A".to_string(), vec!["a".to_string(), "b".to_string()])]);
    assert!(h.contains_key(&StatusMatch::Class(4)) && h.contains_key(&StatusMatch::Exact(404)));
    let e = listener("  custom_response_headers {\n    \"abc\" = { \"X-A\" = [\"a\"] }\n  }").unwrap_err();
    assert!(e.starts_with("l.hcl:4:") && e.contains("invalid status code") && e.contains("abc"), "{e}");
    let e = listener("  custom_response_headers {\n    default = { \"Bad Header\" = [\"a\"] }\n  }").unwrap_err();
    assert!(e.contains("not a valid header name"), "{e}");
    // The HCL 2 spelling works too.
    let l = listener("  custom_response_headers = {\n    \"2xx\" = { \"X-D\" = [\"ok\"] }\n  }").unwrap();
    assert!(l.custom_response_headers.contains_key(&StatusMatch::Class(2)));
}

#[test]
fn custom_response_headers_parse_from_json() {
    let src = r#"{"storage":{"inmem":{}},"listener":{"tcp":{"address":"127.0.0.1:1","custom_response_headers":{"default":{"X-A":["a"]},"2xx":{"X-B":["b"]}}}}}"#;
    let c = ServerConfig::parse(src, "l.json").unwrap();
    assert!(c.listeners[0].custom_response_headers.contains_key(&StatusMatch::Class(2)));
}

#[test]
fn options_coffer_cannot_honour_are_refused_with_their_line() {
    for (opt, val, needle) in [
        ("proxy_protocol_behavior", "\"use_always\"", "PROXY protocol"),
        ("profiling", "{\n    unauthenticated_pprof_access = true\n  }", "pprof"),
        ("cors", "{}", "sys/config/cors"),
        ("unauthenticated_metrics_access", "true", "telemetry"),
    ] {
        let e = listener(&format!("  {opt} = {val}")).unwrap_err();
        let e2 = if opt == "profiling" || opt == "cors" {
            listener(&format!("  {opt} {val}")).unwrap_err()
        } else {
            e.clone()
        };
        for e in [e, e2] {
            assert!(e.starts_with("l.hcl:4:") && e.contains(opt) && e.contains(needle), "{opt}: {e}");
        }
    }
    let e = listener("  frobnicate = 1").unwrap_err();
    assert!(e.contains("unknown listener option \"frobnicate\""), "{e}");
}

#[test]
fn cluster_address_is_read_and_a_malformed_one_refused() {
    let c = ServerConfig::parse(
        "storage \"inmem\" {}\nlistener \"tcp\" {\n  cluster_address = \"127.0.0.1:8201\"\n}\n",
        "l.hcl",
    )
    .unwrap();
    assert_eq!(c.listeners[0].cluster_address.as_deref(), Some("127.0.0.1:8201"));
    assert!(!coffer_config::ignored_on_purpose("listener", "cluster_address"), "acted on, not ignored");
    let e = listener("  cluster_address = \"127.0.0.1\"").unwrap_err();
    assert!(e.contains("cluster_address \"127.0.0.1\" must be host:port"), "{e}");
}
