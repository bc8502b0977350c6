//! KV v1 behaviour through the Backend trait, over an in-process storage view.
use coffer_builtin_kv::KvV1;
use coffer_sdk::framework;
use coffer_sdk::{Backend, Operation, Request};
use serde_json::{json, Map, Value};
use std::sync::Arc;

use coffer_sdk::testing::MapView;

fn req(op: Operation, path: &str, data: Value, s: &Arc<MapView>) -> Request {
    Request {
        operation: op,
        path: path.into(),
        data: data.as_object().cloned().unwrap_or_default(),
        mount_point: "kv/".into(),
        storage: s.clone(),
        system: coffer_sdk::SystemInfo { default_lease_ttl: 2764800, max_lease_ttl: 2764800 },
        remote_addr: None,
        services: None,
        client_certs: None,
        display_name: String::new(),
        entity_id: String::new(),
    }
}

#[tokio::test]
async fn write_read_list_delete_round_trip() {
    let kv = framework::Backend::new(KvV1::new());
    let s = Arc::new(MapView::default());
    assert!(kv
        .handle_request(req(Operation::Update, "app/db", json!({"user":"u","n":1}), &s))
        .await
        .unwrap()
        .is_none());
    let r = kv.handle_request(req(Operation::Read, "app/db", json!({}), &s)).await.unwrap().unwrap();
    assert_eq!(r.lease_duration, Some(2764800), "mount default TTL is advertised");
    assert_eq!(r.lease_duration, Some(2764800), "mount default TTL is advertised");
    assert_eq!(Value::Object(r.data.unwrap()), json!({"user":"u","n":1}));
    let l = kv.handle_request(req(Operation::List, "app", json!({}), &s)).await.unwrap().unwrap();
    assert_eq!(l.data.unwrap()["keys"], json!(["db"]));
    kv.handle_request(req(Operation::Delete, "app/db", json!({}), &s)).await.unwrap();
    assert!(kv.handle_request(req(Operation::Read, "app/db", json!({}), &s)).await.unwrap().is_none());
    assert!(kv.handle_request(req(Operation::List, "app/", json!({}), &s)).await.unwrap().is_none());
}

#[tokio::test]
async fn empty_write_is_a_bad_request() {
    let kv = framework::Backend::new(KvV1::new());
    let s = Arc::new(MapView::default());
    let e = kv.handle_request(req(Operation::Update, "x", Value::Object(Map::new()), &s)).await.unwrap_err();
    assert_eq!(e.kind, coffer_sdk::ErrorKind::BadRequest);
}
