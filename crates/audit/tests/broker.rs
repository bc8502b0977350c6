//! The audit broker on a real (in-memory) barrier, writing to a real file.

use coffer_audit::{AuditBroker, AuditConfig, AuditError, AuditRecord, AuditResponse, AuditToken};
use coffer_barrier::Barrier;
use coffer_crypto::Key;
use coffer_sdk::{ErrorKind, LogicalError};
use coffer_storage_inmem::InmemStorage;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

async fn barrier() -> Arc<Barrier> {
    let b = Barrier::new(Arc::new(InmemStorage::new()));
    let kek = Key::generate().unwrap();
    b.initialize(&kek, b"{}".to_vec()).await.unwrap();
    b.unseal(&kek).await.unwrap();
    Arc::new(b)
}

fn device(path: &str, ty: &str, options: &[(&str, &str)]) -> AuditConfig {
    AuditConfig {
        path: path.into(),
        device_type: ty.into(),
        description: String::new(),
        options: options.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>(),
        local: false,
        uuid: format!("uuid-{path}"),
        declared: false,
    }
}

fn logical(e: AuditError) -> (ErrorKind, Vec<String>) {
    let l = LogicalError::from(e);
    (l.kind, l.messages)
}

#[tokio::test]
async fn refused_device_settings_are_bad_requests_naming_the_device_and_the_option() {
    let b = barrier().await;
    let broker = AuditBroker::default();
    let cases = [
        (device("x/", "nope", &[]), "audit device x/: unknown audit device type \"nope\" (supported: file, socket, syslog)"),
        (device("f/", "file", &[]), "audit device f/: file_path is required"),
        (
            device("f/", "file", &[("file_path", "discard"), ("filter", "x")]),
            "audit device f/: option \"filter\" is not supported: audit filtering is not built, every device records every request",
        ),
        (
            device("s/", "socket", &[("address", "127.0.0.1:1"), ("colour", "red")]),
            "audit device s/: unknown option \"colour\" (supported: address, elide_list_responses, format, hmac_accessor, log_raw, prefix, socket_type, write_timeout)",
        ),
        (device("f/", "file", &[("file_path", "discard"), ("format", "xml")]), "unknown format \"xml\" (json or jsonx)"),
    ];
    for (c, msg) in cases {
        let err = broker.add(&b, c).await.unwrap_err();
        assert_eq!(logical(err), (ErrorKind::BadRequest, vec![msg.to_string()]));
    }
    assert!(!broker.enabled());
}

#[tokio::test]
async fn a_file_device_records_hmacs_of_secrets_never_the_secrets() {
    let b = barrier().await;
    let broker = AuditBroker::default();
    let file = std::env::temp_dir().join(format!("coffer-audit-test-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&file);
    broker.add(&b, device("file/", "file", &[("file_path", file.to_str().unwrap())])).await.unwrap();
    let policies = vec!["default".to_string()];
    let data: Map<String, Value> = [("password".to_string(), json!("hunter2"))].into_iter().collect();
    let record = AuditRecord {
        id: "req-1",
        operation: "update",
        path: "kv/secret",
        data: &data,
        remote_addr: None,
        client_token: "s.sometoken",
        token: Some(AuditToken {
            accessor: "acc123",
            display_name: "token",
            policies: &policies,
            meta: None,
            entity_id: "",
            token_type: "service",
            ttl: 60,
            creation_time: 0,
        }),
        mount_type: "kv",
        mount_accessor: "kv_1",
        non_hmac_request_keys: &[],
        non_hmac_response_keys: &[],
        wrap_ttl: None,
    };
    broker.log("request", &record, None, "").await.unwrap();
    let resp_data: Map<String, Value> = [("value".to_string(), json!("topsecret"))].into_iter().collect();
    let warnings = vec!["careful".to_string()];
    let resp = AuditResponse { data: Some(&resp_data), auth: None, wrap_info: None, lease_id: "", warnings: &warnings };
    broker.log("response", &record, Some(&resp), "").await.unwrap();
    let text = std::fs::read_to_string(&file).unwrap();
    let _ = std::fs::remove_file(&file);
    for secret in ["s.sometoken", "hunter2", "topsecret", "acc123"] {
        assert!(!text.contains(secret), "{secret} leaked into the audit log: {text}");
    }
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    let token_hash = broker.hash_for("file/", "s.sometoken").unwrap();
    assert_eq!(lines[0]["type"], "request");
    assert_eq!(lines[0]["auth"]["client_token"], json!(token_hash));
    assert_eq!(lines[0]["request"]["data"]["password"], json!(broker.hash_for("file/", "hunter2").unwrap()));
    assert_eq!(lines[1]["response"]["data"]["value"], json!(broker.hash_for("file/", "topsecret").unwrap()));
    assert_eq!(lines[1]["response"]["warnings"], json!(["careful"]));
    // The salt is kept in the barrier: a broker built again hashes the same way.
    let again = AuditBroker::default();
    again.add(&b, device("file/", "file", &[("file_path", "discard")])).await.unwrap();
    assert_eq!(again.hash_for("file/", "s.sometoken").unwrap(), token_hash);
}
