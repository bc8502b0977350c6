//! The passphrase engine called directly (no plugin process), and its binary run by hand.

use coffer_plugin_example::Passphrase;
use coffer_sdk::testing::MapView as Mem;
use coffer_sdk::{Backend, ErrorKind, Operation, Request, SystemInfo};
use serde_json::{json, Map, Value};
use std::sync::Arc;

fn req(storage: &Arc<Mem>, op: Operation, path: &str, data: Value) -> Request {
    Request {
        operation: op,
        path: path.to_string(),
        data: data.as_object().cloned().unwrap_or_else(Map::new),
        mount_point: "pp/".into(),
        storage: storage.clone(),
        system: SystemInfo::default(),
        remote_addr: None,
        services: None,
        client_certs: None,
        display_name: String::new(),
        entity_id: String::new(),
    }
}

#[tokio::test]
async fn issues_records_and_leases_passphrases() {
    let b = coffer_sdk::framework::Backend::new(Passphrase::new());
    let s = Arc::new(Mem::default());
    b.handle_request(req(&s, Operation::Update, "config", json!({"words": 4, "separator": ".", "ttl": "1m"})))
        .await
        .unwrap();
    let r = b.handle_request(req(&s, Operation::Read, "gen", json!({}))).await.unwrap().unwrap();
    let d = r.data.unwrap();
    let phrase = d["passphrase"].as_str().unwrap();
    assert_eq!(phrase.split('.').count(), 4, "{phrase}");
    let lease = r.secret.expect("a ttl makes a lease");
    assert_eq!(lease.ttl, 60);
    let id = d["id"].as_str().unwrap().to_string();
    let list = b.handle_request(req(&s, Operation::List, "issued/", json!({}))).await.unwrap().unwrap();
    assert_eq!(list.data.unwrap()["keys"], json!([id.clone()]));
    let rec = b.handle_request(req(&s, Operation::Read, &format!("issued/{id}"), json!({}))).await.unwrap().unwrap();
    assert_eq!(rec.data.unwrap()["passphrase"], json!(phrase));
    b.revoke_secret(&req(&s, Operation::Delete, "", json!({})), &lease.internal).await.unwrap();
    let gone = b.handle_request(req(&s, Operation::Read, &format!("issued/{id}"), json!({}))).await.unwrap_err();
    assert_eq!(gone.kind, ErrorKind::NotFound);

    let e = b.handle_request(req(&s, Operation::Update, "gen", json!({"words": 99}))).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadRequest);
    let e = b.handle_request(req(&s, Operation::Read, "nope", json!({}))).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::UnsupportedPath);
    let e = b.handle_request(req(&s, Operation::Delete, "gen", json!({}))).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::UnsupportedOperation);
}

#[test]
fn the_binary_refuses_to_run_without_a_host() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_coffer-plugin-example"))
        .env_remove("VAULT_BACKEND_PLUGIN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not meant to be run directly"));
}
