//! KV v2 behaviour through the Backend trait, over an in-process storage view and a controllable
//! clock. Expected shapes and messages were taken from OpenBao 2.7.2's answers.
use coffer_builtin_kv::{KvV1, KvV2};
use coffer_sdk::framework;
use coffer_sdk::{Backend, ErrorKind, LogicalError, Operation, Request, Response, StorageView};
use serde_json::{json, Map, Value};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use coffer_sdk::testing::MapView;

/// 2026-11-26T11:45:53.230674231Z
const T0: i64 = 1_795_693_553_230_674_231;
const SEC: i64 = 1_000_000_000;

struct Kv {
    kv: framework::Backend<KvV2>,
    s: Arc<MapView>,
    clock: Arc<AtomicI64>,
}

impl Kv {
    fn new() -> Kv {
        Self::over(Arc::new(MapView::default()))
    }
    fn over(s: Arc<MapView>) -> Kv {
        let clock = Arc::new(AtomicI64::new(T0));
        let c = clock.clone();
        Kv { kv: framework::Backend::new(KvV2::with_clock(move || c.load(Ordering::SeqCst))), s, clock }
    }
    fn advance(&self, secs: i64) {
        self.clock.fetch_add(secs * SEC, Ordering::SeqCst);
    }
    fn req(&self, op: Operation, path: &str, data: Value) -> Request {
        Request {
            operation: op,
            path: path.into(),
            data: data.as_object().cloned().unwrap_or_default(),
            mount_point: "kv2/".into(),
            storage: self.s.clone(),
            system: coffer_sdk::SystemInfo { default_lease_ttl: 2764800, max_lease_ttl: 2764800 },
            remote_addr: None,
            services: None,
            client_certs: None,
            display_name: String::new(),
            entity_id: String::new(),
        }
    }
    async fn call(
        &self,
        op: Operation,
        path: &str,
        data: Value,
    ) -> std::result::Result<Option<Response>, LogicalError> {
        self.kv.handle_request(self.req(op, path, data)).await
    }
    /// A call that must answer with data.
    async fn ok(&self, op: Operation, path: &str, data: Value) -> Value {
        match self.call(op, path, data).await {
            Ok(Some(r)) => Value::Object(r.data.unwrap_or_default()),
            other => panic!("{op:?} {path}: expected data, got {other:?}"),
        }
    }
    /// A call that must answer 204 (no content).
    async fn none(&self, op: Operation, path: &str, data: Value) {
        match self.call(op, path, data).await {
            Ok(None) => {}
            other => panic!("{op:?} {path}: expected no content, got {other:?}"),
        }
    }
    async fn err(&self, op: Operation, path: &str, data: Value) -> LogicalError {
        match self.call(op, path, data).await {
            Err(e) => e,
            other => panic!("{op:?} {path}: expected an error, got {other:?}"),
        }
    }
    async fn put(&self, path: &str, data: Value) -> Value {
        self.ok(Operation::Update, &format!("data/{path}"), json!({ "data": data })).await
    }
    /// The readable data of the latest version: None when missing, deleted or destroyed (a
    /// deleted version answers 404 with its metadata only).
    async fn get(&self, path: &str) -> Option<Value> {
        self.call(Operation::Read, &format!("data/{path}"), json!({}))
            .await
            .unwrap()
            .filter(|r| r.status == coffer_sdk::ResponseStatus::Ok)
            .map(|r| Value::Object(r.data.unwrap_or_default()))
    }
    async fn get_version(&self, path: &str, v: u64) -> Option<Value> {
        self.call(Operation::Read, &format!("data/{path}"), json!({ "version": v.to_string() }))
            .await
            .unwrap()
            .filter(|r| r.status == coffer_sdk::ResponseStatus::Ok)
            .map(|r| Value::Object(r.data.unwrap_or_default()))
    }
    async fn meta(&self, path: &str) -> Value {
        self.ok(Operation::Read, &format!("metadata/{path}"), json!({})).await
    }
}

fn bad(e: &LogicalError, msg: &str) {
    assert_eq!(e.kind, ErrorKind::BadRequest, "{e:?}");
    assert!(e.messages.iter().any(|m| m.contains(msg)), "expected {msg:?} in {:?}", e.messages);
}

#[tokio::test]
async fn writes_create_numbered_versions_readable_by_version() {
    let kv = Kv::new();
    let w1 = kv.put("app/db", json!({"user": "u1", "n": 1})).await;
    assert_eq!(kv.meta("app/db").await["created_time"], w1["created_time"], "key and first version share the time");
    assert_eq!(
        w1,
        json!({"created_time": "2026-11-26T11:45:53.230674231Z", "custom_metadata": null, "deletion_time": "",
               "destroyed": false, "version": 1})
    );
    kv.advance(1);
    assert_eq!(kv.put("app/db", json!({"user": "u2"})).await["version"], 2);

    let latest = kv.get("app/db").await.unwrap();
    assert_eq!(latest["data"], json!({"user": "u2"}));
    assert_eq!(latest["metadata"]["version"], 2);
    assert_eq!(latest["metadata"]["created_time"], "2026-11-26T11:45:54.230674231Z");
    let keys: Vec<&String> = latest["metadata"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["created_time", "custom_metadata", "deletion_time", "destroyed", "version"]);

    assert_eq!(kv.get_version("app/db", 1).await.unwrap()["data"], json!({"user": "u1", "n": 1}));
    assert_eq!(kv.get_version("app/db", 0).await.unwrap()["metadata"]["version"], 2, "version 0 is the latest");
    assert!(kv.get_version("app/db", 9).await.is_none(), "unknown version: plain 404");
    assert!(kv.get("nope").await.is_none(), "unknown key: plain 404");

    let e = kv.err(Operation::Read, "data/app/db", json!({"version": "abc"})).await;
    assert_eq!(e.kind, ErrorKind::BadRequest);
    bad(&kv.err(Operation::Update, "data/x", json!({"a": 1})).await, "no data provided");
    // An empty secret is a valid version, like OpenBao.
    assert_eq!(kv.put("empty", json!({})).await["version"], 1);
}

#[tokio::test]
async fn cas_write_succeeds_on_match_and_fails_on_mismatch() {
    let kv = Kv::new();
    let cas = |n: Value| json!({"data": {"a": 1}, "options": {"cas": n}});
    assert_eq!(kv.ok(Operation::Update, "data/k", cas(json!(0))).await["version"], 1, "cas 0 creates");
    bad(
        &kv.err(Operation::Update, "data/k", cas(json!(0))).await,
        "check-and-set parameter did not match the current version",
    );
    bad(&kv.err(Operation::Update, "data/k", cas(json!(2))).await, "did not match");
    bad(&kv.err(Operation::Update, "data/k", cas(json!(-1))).await, "did not match");
    assert_eq!(kv.ok(Operation::Update, "data/k", cas(json!("1"))).await["version"], 2, "numeric strings count");
    bad(&kv.err(Operation::Update, "data/k", cas(json!("x"))).await, "error parsing check-and-set parameter");
    assert_eq!(kv.meta("k").await["current_version"], 2);
}

#[tokio::test]
async fn cas_required_by_mount_or_key_rejects_writes_without_cas() {
    let kv = Kv::new();
    kv.none(Operation::Update, "config", json!({"cas_required": true})).await;
    bad(
        &kv.err(Operation::Update, "data/k", json!({"data": {"a": 1}})).await,
        "check-and-set parameter required for this call",
    );
    kv.ok(Operation::Update, "data/k", json!({"data": {"a": 1}, "options": {"cas": 0}})).await;
    // Turning it off on the key while the mount mandates it only earns a warning.
    let r = kv.call(Operation::Update, "metadata/k", json!({"cas_required": false})).await.unwrap().unwrap();
    assert!(r.data.is_none());
    assert_eq!(
        r.warnings,
        ["\"cas_required\" set to false, but is mandated by backend config. This value will be ignored."]
    );
    bad(&kv.err(Operation::Update, "data/k", json!({"data": {"a": 2}})).await, "required");

    kv.none(Operation::Update, "config", json!({"cas_required": false})).await;
    kv.put("k", json!({"a": 2})).await;
    kv.none(Operation::Update, "metadata/k", json!({"cas_required": true})).await;
    bad(&kv.err(Operation::Update, "data/k", json!({"data": {"a": 3}})).await, "required");
    bad(&kv.err(Operation::Patch, "data/k", json!({"data": {"a": 3}})).await, "required");
    kv.ok(Operation::Patch, "data/k", json!({"data": {"a": 3}, "options": {"cas": 2}})).await;
    kv.put("other", json!({"a": 1})).await;
}

#[tokio::test]
async fn patch_merges_like_rfc7386_and_null_removes_keys() {
    let kv = Kv::new();
    kv.put("p", json!({"a": 1, "arr": [1, 2], "o": {"x": 1, "y": {"z": 2}}})).await;
    let w =
        kv.ok(Operation::Patch, "data/p", json!({"data": {"a": null, "arr": [3], "o": {"y": null, "w": "new"}}})).await;
    assert_eq!(w["version"], 2);
    assert_eq!(kv.get("p").await.unwrap()["data"], json!({"arr": [3], "o": {"x": 1, "w": "new"}}));
    assert_eq!(kv.get_version("p", 1).await.unwrap()["data"]["a"], 1, "the old version is untouched");

    bad(&kv.err(Operation::Patch, "data/p", json!({"data": {"a": 1}, "options": {"cas": 1}})).await, "did not match");
    bad(&kv.err(Operation::Patch, "data/p", json!({"other": 1})).await, "no data provided");
    assert_eq!(kv.err(Operation::Patch, "data/missing", json!({"data": {"a": 1}})).await.kind, ErrorKind::NotFound);
    kv.none(Operation::Delete, "data/p", json!({})).await;
    let e = kv.err(Operation::Patch, "data/p", json!({"data": {"a": 1}})).await;
    assert_eq!(e.kind, ErrorKind::NotFound, "a deleted latest version cannot be patched");
}

#[tokio::test]
async fn soft_delete_hides_versions_until_undeleted_and_destroy_is_final() {
    let kv = Kv::new();
    for i in 1..=3 {
        kv.put("d", json!({ "i": i })).await;
    }
    kv.advance(1);
    kv.none(Operation::Delete, "data/d", json!({})).await;
    assert!(kv.get("d").await.is_none(), "latest (3) is soft-deleted");
    let raw = kv.call(Operation::Read, "data/d", json!({})).await.unwrap().expect("404 with metadata");
    assert_eq!(raw.status, coffer_sdk::ResponseStatus::Error(coffer_sdk::ErrorKind::NotFound));
    let body = raw.data.unwrap();
    assert!(body["data"].is_null() && body["metadata"]["version"] == 3, "{body:?}");
    assert_eq!(kv.meta("d").await["versions"]["3"]["deletion_time"], "2026-11-26T11:45:54.230674231Z");

    kv.none(Operation::Update, "delete/d", json!({"versions": [1, 2]})).await;
    assert!(kv.get_version("d", 1).await.is_none());
    kv.none(Operation::Update, "undelete/d", json!({"versions": "1,3"})).await;
    assert_eq!(kv.get("d").await.unwrap()["data"], json!({"i": 3}));
    assert_eq!(kv.get_version("d", 1).await.unwrap()["metadata"]["deletion_time"], "");
    assert!(kv.get_version("d", 2).await.is_none(), "version 2 stays deleted");

    kv.none(Operation::Update, "destroy/d", json!({"versions": [1]})).await;
    assert!(kv.get_version("d", 1).await.is_none());
    kv.none(Operation::Update, "undelete/d", json!({"versions": [1]})).await;
    assert!(kv.get_version("d", 1).await.is_none(), "undelete cannot bring back a destroyed version");
    let m = kv.meta("d").await;
    assert_eq!(m["versions"]["1"]["destroyed"], true);
    assert!(!kv.s.0.lock().unwrap().keys().any(|k| k.starts_with("versions/d/1")), "destroyed data is removed");

    bad(&kv.err(Operation::Update, "delete/d", json!({})).await, "No version number provided");
    bad(&kv.err(Operation::Update, "undelete/d", json!({})).await, "No version number provided");
    bad(&kv.err(Operation::Update, "destroy/d", json!({"versions": []})).await, "no version number provided");
    kv.none(Operation::Update, "destroy/nope", json!({"versions": [1]})).await;
    kv.none(Operation::Delete, "data/nope", json!({})).await;
}

#[tokio::test]
async fn metadata_crud_merge_and_custom_metadata_limits() {
    let kv = Kv::new();
    kv.none(Operation::Update, "metadata/m", json!({})).await;
    assert!(kv.call(Operation::Read, "metadata/m", json!({})).await.unwrap().is_none(), "no fields: nothing created");

    kv.none(
        Operation::Update,
        "metadata/m",
        json!({"max_versions": 3, "cas_required": true, "delete_version_after": "1h", "custom_metadata": {"owner": "me", "n": 1}}),
    )
    .await;
    let m = kv.meta("m").await;
    let keys: Vec<&String> = m.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "cas_required",
            "created_time",
            "current_metadata_version",
            "current_version",
            "custom_metadata",
            "delete_version_after",
            "max_versions",
            "metadata_cas_required",
            "oldest_version",
            "updated_time",
            "versions"
        ]
    );
    assert_eq!(m["delete_version_after"], "1h0m0s");
    assert_eq!(m["custom_metadata"], json!({"n": "1", "owner": "me"}));
    assert_eq!(m["current_metadata_version"], 1);
    assert_eq!(m["versions"], json!({}));

    // Update keeps the fields it does not name; patch merges custom_metadata.
    kv.none(Operation::Update, "metadata/m", json!({"delete_version_after": "30m"})).await;
    kv.none(Operation::Patch, "metadata/m", json!({"custom_metadata": {"owner": null, "x": "y"}, "max_versions": 5}))
        .await;
    let m = kv.meta("m").await;
    assert_eq!((m["cas_required"].clone(), m["max_versions"].clone()), (json!(true), json!(5)));
    assert_eq!(m["delete_version_after"], "30m0s");
    assert_eq!(m["custom_metadata"], json!({"n": "1", "x": "y"}));
    assert_eq!(m["current_metadata_version"], 3);
    assert_eq!(kv.err(Operation::Patch, "metadata/none", json!({"max_versions": 1})).await.kind, ErrorKind::NotFound);

    let many: Map<String, Value> = (0..65).map(|i| (format!("k{i}"), json!("v"))).collect();
    bad(
        &kv.err(Operation::Update, "metadata/m", json!({ "custom_metadata": many })).await,
        "at most 64 keys, provided 65",
    );
    let long_key = "k".repeat(129);
    bad(&kv.err(Operation::Update, "metadata/m", json!({"custom_metadata": {long_key: "v"}})).await, "length of key");
    bad(&kv.err(Operation::Update, "metadata/m", json!({"custom_metadata": {"k": "v".repeat(513)}})).await, "is 513");
    bad(&kv.err(Operation::Update, "metadata/m", json!({"custom_metadata": {"k": ""}})).await, "length of value");
    bad(
        &kv.err(Operation::Update, "metadata/m", json!({"custom_metadata": {"k": {"a": 1}}})).await,
        "must be a string",
    );
    bad(&kv.err(Operation::Update, "metadata/m", json!({"delete_version_after": "-1s"})).await, "negative");
    let ok: Map<String, Value> = (0..64).map(|i| (format!("k{i}"), json!("v".repeat(512)))).collect();
    kv.none(Operation::Update, "metadata/m", json!({ "custom_metadata": ok })).await;
    kv.none(Operation::Update, "metadata/m", json!({"custom_metadata": {}})).await;
    assert_eq!(kv.meta("m").await["custom_metadata"], Value::Null, "empty custom_metadata shows as null");

    // custom_metadata is carried into every version's metadata block.
    kv.none(Operation::Update, "metadata/m", json!({"custom_metadata": {"team": "a"}})).await;
    let w = kv.ok(Operation::Update, "data/m", json!({"data": {"a": 1}, "options": {"cas": 0}})).await;
    assert_eq!(w["custom_metadata"], json!({"team": "a"}));

    kv.none(Operation::Delete, "metadata/m", json!({})).await;
    assert!(kv.call(Operation::Read, "metadata/m", json!({})).await.unwrap().is_none());
    assert!(kv.get("m").await.is_none());
    assert!(kv.s.0.lock().unwrap().keys().all(|k| !k.contains("/m")), "every version is gone");
}

#[tokio::test]
async fn metadata_cas_guards_metadata_writes() {
    let kv = Kv::new();
    kv.none(Operation::Update, "metadata/mc", json!({"metadata_cas_required": true})).await;
    bad(
        &kv.err(Operation::Update, "metadata/mc", json!({"max_versions": 3})).await,
        "metadata check-and-set parameter required",
    );
    bad(
        &kv.err(Operation::Update, "metadata/mc", json!({"max_versions": 3, "metadata_cas": 5})).await,
        "metadata check-and-set parameter does not match the current version",
    );
    kv.none(Operation::Update, "metadata/mc", json!({"max_versions": 3, "metadata_cas": 1})).await;
    bad(
        &kv.err(Operation::Update, "metadata/new", json!({"max_versions": 3, "metadata_cas": 1})).await,
        "metadata_cas must be 0 when creating new metadata",
    );
}

#[tokio::test]
async fn max_versions_prunes_the_oldest_versions_on_write() {
    let kv = Kv::new();
    kv.none(Operation::Update, "metadata/mv", json!({"max_versions": 2})).await;
    for i in 1..=4 {
        kv.put("mv", json!({ "i": i })).await;
    }
    let m = kv.meta("mv").await;
    assert_eq!(m["versions"].as_object().unwrap().keys().collect::<Vec<_>>(), ["3", "4"]);
    assert_eq!((m["oldest_version"].clone(), m["current_version"].clone()), (json!(3), json!(4)));
    assert!(kv.get_version("mv", 1).await.is_none());
    assert!(!kv.s.0.lock().unwrap().contains_key("versions/mv/1"), "pruned data is removed");

    // Lowering the limit prunes on the next write, not before.
    kv.none(Operation::Update, "metadata/mv", json!({"max_versions": 1})).await;
    assert_eq!(kv.meta("mv").await["versions"].as_object().unwrap().len(), 2);
    kv.put("mv", json!({"i": 5})).await;
    assert_eq!(kv.meta("mv").await["oldest_version"], 5);

    // The mount's setting applies to keys without one; unset, ten versions are kept.
    kv.none(Operation::Update, "config", json!({"max_versions": 3})).await;
    for i in 1..=5 {
        kv.put("cfg", json!({ "i": i })).await;
    }
    assert_eq!(kv.meta("cfg").await["versions"].as_object().unwrap().len(), 3);
    kv.none(Operation::Update, "config", json!({"max_versions": 0})).await;
    for i in 1..=12 {
        kv.put("dflt", json!({ "i": i })).await;
    }
    let m = kv.meta("dflt").await;
    assert_eq!(m["versions"].as_object().unwrap().len(), 10);
    assert_eq!(m["versions"].as_object().unwrap().keys().next().unwrap(), "10", "keys sort as strings, like Go");
    assert_eq!(m["oldest_version"], 3);
    // A key without pruning keeps oldest_version 0, as OpenBao shows it.
    assert_eq!(kv.meta("cfg").await["max_versions"], 0);
}

#[tokio::test]
async fn delete_version_after_sets_deletion_time_and_expires_versions() {
    let kv = Kv::new();
    kv.none(Operation::Update, "metadata/e", json!({"delete_version_after": "10s"})).await;
    let w = kv.put("e", json!({"a": 1})).await;
    assert_eq!(w["deletion_time"], "2026-11-26T11:46:03.230674231Z");
    assert_eq!(kv.get("e").await.unwrap()["data"], json!({"a": 1}), "still readable before the deadline");
    kv.advance(11);
    assert!(kv.get("e").await.is_none(), "expired version reads as deleted");
    assert!(kv
        .call(Operation::Read, "subkeys/e", json!({}))
        .await
        .unwrap()
        .is_none_or(|r| r.status != coffer_sdk::ResponseStatus::Ok));
    // Undelete restarts the clock from now.
    kv.none(Operation::Update, "undelete/e", json!({"versions": [1]})).await;
    let r = kv.get("e").await.unwrap();
    assert_eq!(r["metadata"]["deletion_time"], "2026-11-26T11:46:14.230674231Z");

    // The shorter of the mount's and the key's delay wins.
    kv.none(Operation::Update, "config", json!({"delete_version_after": "5s"})).await;
    assert_eq!(kv.ok(Operation::Read, "config", json!({})).await["delete_version_after"], "5s");
    let w = kv.put("e", json!({"a": 2})).await;
    assert_eq!(w["deletion_time"], "2026-11-26T11:46:09.230674231Z");
    let w = kv.put("plain", json!({"a": 2})).await;
    assert_eq!(w["deletion_time"], "2026-11-26T11:46:09.230674231Z");
}

#[tokio::test]
async fn config_defaults_updates_and_openbao_wrapping() {
    let kv = Kv::new();
    assert_eq!(
        kv.ok(Operation::Read, "config", json!({})).await,
        json!({"cas_required": false, "delete_version_after": "0s", "max_versions": 0, "metadata_cas_required": false})
    );
    kv.none(Operation::Update, "config", json!({"delete_version_after": "1h", "max_versions": 7})).await;
    kv.none(Operation::Update, "config", json!({"cas_required": "true"})).await;
    let c = kv.ok(Operation::Read, "config", json!({})).await;
    assert_eq!((c["delete_version_after"].clone(), c["max_versions"].clone()), (json!("1h0m0s"), json!(7)));
    assert_eq!(c["cas_required"], true);
    kv.none(Operation::Update, "config", json!({"max_versions": -1, "delete_version_after": "-5s"})).await;
    let c = kv.ok(Operation::Read, "config", json!({})).await;
    assert_eq!((c["max_versions"].clone(), c["delete_version_after"].clone()), (json!(4294967295u32), json!("-1s")));
    assert_eq!(kv.err(Operation::Delete, "config", json!({})).await.kind, ErrorKind::UnsupportedOperation);
}

#[tokio::test]
async fn subkeys_show_structure_with_null_leaves() {
    let kv = Kv::new();
    kv.put("s", json!({"a": 1, "arr": [1], "e": {}, "o": {"x": 1, "y": {"z": 2}}})).await;
    let r = kv.ok(Operation::Read, "subkeys/s", json!({})).await;
    assert_eq!(r["subkeys"], json!({"a": null, "arr": null, "e": null, "o": {"x": null, "y": {"z": null}}}));
    assert_eq!(r["metadata"]["version"], 1);
    let r = kv.ok(Operation::Read, "subkeys/s", json!({"depth": "1"})).await;
    assert_eq!(r["subkeys"], json!({"a": null, "arr": null, "e": null, "o": null}));
    kv.put("s", json!({"b": 2})).await;
    let r = kv.ok(Operation::Read, "subkeys/s", json!({"version": "1", "depth": "2"})).await;
    assert_eq!(r["subkeys"]["o"], json!({"x": null, "y": null}));
    assert!(kv.call(Operation::Read, "subkeys/none", json!({})).await.unwrap().is_none());
    assert_eq!(kv.err(Operation::Update, "subkeys/s", json!({})).await.kind, ErrorKind::UnsupportedOperation);
}

#[tokio::test]
async fn list_one_level_or_recursive_full_paths() {
    let kv = Kv::new();
    for p in ["l/a/b", "l/a/c/d", "l/e", "l/a/c/f/g", "top"] {
        kv.put(p, json!({"x": 1})).await;
    }
    let keys = |v: Value| v["keys"].clone();
    assert_eq!(keys(kv.ok(Operation::List, "metadata/l/", json!({})).await), json!(["a/", "e"]));
    assert_eq!(keys(kv.ok(Operation::List, "metadata/", json!({})).await), json!(["l/", "top"]));
    assert_eq!(
        keys(kv.ok(Operation::List, "metadata/l/", json!({"recursive": "true"})).await),
        json!(["a/b", "a/c/d", "a/c/f/g", "e"])
    );
    assert_eq!(
        keys(kv.ok(Operation::List, "metadata/", json!({"recursive": true})).await),
        json!(["l/a/b", "l/a/c/d", "l/a/c/f/g", "l/e", "top"])
    );
    assert_eq!(
        keys(kv.ok(Operation::List, "metadata/l/a/c", json!({"recursive": "true"})).await),
        json!(["d", "f/g"]),
        "a prefix without its trailing slash works too"
    );
    assert!(kv.call(Operation::List, "metadata/nope/", json!({"recursive": "true"})).await.unwrap().is_none());
    // `bao kv scan` reads with scan=true and gets the recursive listing.
    assert_eq!(
        keys(kv.ok(Operation::Read, "metadata/l", json!({"scan": "true"})).await),
        json!(["a/b", "a/c/d", "a/c/f/g", "e"])
    );
    kv.none(Operation::Delete, "metadata/l/e", json!({})).await;
    assert_eq!(keys(kv.ok(Operation::List, "metadata/l/", json!({})).await), json!(["a/"]));
    assert_eq!(kv.err(Operation::List, "data/l/", json!({})).await.kind, ErrorKind::UnsupportedOperation);
}

#[tokio::test]
async fn v1_entries_become_version_1_on_first_request() {
    let s = Arc::new(MapView::default());
    let v1 = framework::Backend::new(KvV1::new());
    for (p, d) in [
        ("a", json!({"x": "1"})),
        ("d/e", json!({"y": "2"})),
        ("meta/tricky", json!({"z": "3"})),
        ("tricky", json!({"t": "5"})),
        ("config", json!({"c": "4"})),
    ] {
        let r = Request {
            operation: Operation::Update,
            path: p.into(),
            data: d.as_object().cloned().unwrap(),
            mount_point: "old/".into(),
            storage: s.clone(),
            system: Default::default(),
            remote_addr: None,
            services: None,
            client_certs: None,
            display_name: String::new(),
            entity_id: String::new(),
        };
        v1.handle_request(r).await.unwrap();
    }
    let kv = Kv::over(s.clone());
    let r = kv.get("a").await.expect("upgraded");
    assert_eq!(r["data"], json!({"x": "1"}));
    assert_eq!(r["metadata"]["version"], 1);
    assert_eq!(kv.get("d/e").await.unwrap()["data"], json!({"y": "2"}));
    assert_eq!(kv.get("meta/tricky").await.unwrap()["data"], json!({"z": "3"}), "names that look like the layout");
    assert_eq!(kv.get("tricky").await.unwrap()["data"], json!({"t": "5"}));
    assert_eq!(kv.get("config").await.unwrap()["data"], json!({"c": "4"}));
    let m = kv.meta("d/e").await;
    assert_eq!((m["current_version"].clone(), m["oldest_version"].clone()), (json!(1), json!(1)));
    assert_eq!(
        kv.ok(Operation::List, "metadata/", json!({"recursive": "true"})).await["keys"],
        json!(["a", "config", "d/e", "meta/tricky", "tricky"])
    );
    assert!(!s.0.lock().unwrap().contains_key("a"), "bare entries are moved, not copied");
    assert!(!s.0.lock().unwrap().contains_key("v2-upgrade-staging"));

    // Writes continue the history; a second backend on the same storage does not upgrade again.
    assert_eq!(kv.put("a", json!({"x": "2"})).await["version"], 2);
    let again = Kv::over(s.clone());
    assert_eq!(again.get("a").await.unwrap()["metadata"]["version"], 2);
    assert_eq!(again.meta("a").await["versions"].as_object().unwrap().len(), 2);
}

#[tokio::test]
async fn interrupted_upgrade_resumes_from_the_staged_copy() {
    let s = Arc::new(MapView::default());
    // As if the process died after staging and deleting the bare entry.
    let staged = json!({"coffer_kv_v2_upgrade": [["k", {"v": "1"}]]});
    s.put("v2-upgrade-staging", staged.to_string().as_bytes()).await.unwrap();
    let kv = Kv::over(s.clone());
    assert_eq!(kv.get("k").await.unwrap()["data"], json!({"v": "1"}));
    assert!(!s.0.lock().unwrap().contains_key("v2-upgrade-staging"));
}

#[tokio::test]
async fn paths_outside_the_layout_are_404_with_a_hint() {
    let kv = Kv::new();
    // As OpenBao: a 404 answer whose warning carries the hint (not an error body).
    let hint = |op: Operation, path: &'static str, data: Value| {
        let kv = &kv;
        async move {
            let r = kv.call(op, path, data).await.expect("an answer").expect("a response");
            assert_eq!(r.status, coffer_sdk::ResponseStatus::Error(ErrorKind::NotFound), "{op:?} {path}");
            assert!(r.data.is_none());
            r.warnings.join(" ")
        }
    };
    let w = hint(Operation::Read, "foo", json!({})).await;
    assert!(w.contains("Invalid path for a versioned K/V secrets engine") && w.contains("'bao kv get'"), "{w}");
    assert!(hint(Operation::Update, "foo", json!({"a": 1})).await.contains("'bao kv put'"));
    assert!(hint(Operation::List, "", json!({})).await.contains("'bao kv list'"));
}

#[tokio::test]
async fn exists_is_true_once_the_key_has_metadata() {
    let kv = Kv::new();
    assert_eq!(kv.kv.exists(&kv.req(Operation::Update, "data/x", json!({}))).await.unwrap(), Some(false));
    kv.put("x", json!({"a": 1})).await;
    assert_eq!(kv.kv.exists(&kv.req(Operation::Update, "data/x", json!({}))).await.unwrap(), Some(true));
    assert_eq!(kv.kv.exists(&kv.req(Operation::Update, "metadata/x", json!({}))).await.unwrap(), Some(true));
    assert_eq!(kv.kv.exists(&kv.req(Operation::Update, "config", json!({}))).await.unwrap(), None);
    assert_eq!(kv.kv.backend_type(), "kv");
    assert!(kv.kv.paths().iter().all(|p| p.fields.iter().all(|f| !f.description.is_empty())));
}
