//! AppRole behaviour through the Backend trait, over an in-process storage view.
use coffer_builtin_approle::AppRole;
use coffer_sdk::framework;
use coffer_sdk::{AuthResponse, Backend, ErrorKind, LogicalError, Operation, Request, Response};
use serde_json::{json, Map, Value};
use std::net::IpAddr;
use std::sync::Arc;

use coffer_sdk::testing::MapView;

type Res = std::result::Result<Option<Response>, LogicalError>;

#[derive(Clone)]
struct Env {
    b: Arc<framework::Backend<AppRole>>,
    s: Arc<MapView>,
}

impl Env {
    fn new() -> Self {
        Env { b: Arc::new(framework::Backend::new(AppRole::new())), s: Arc::new(MapView::default()) }
    }
    fn req(&self, op: Operation, path: &str, data: Value, addr: Option<&str>) -> Request {
        Request {
            operation: op,
            path: path.into(),
            data: data.as_object().cloned().unwrap_or_default(),
            mount_point: "auth/approle/".into(),
            storage: self.s.clone(),
            system: coffer_sdk::SystemInfo { default_lease_ttl: 2764800, max_lease_ttl: 2764800 },
            remote_addr: addr.map(|a| a.parse::<IpAddr>().unwrap()),
            services: None,
            client_certs: None,
            display_name: String::new(),
            entity_id: String::new(),
        }
    }
    async fn call(&self, op: Operation, path: &str, data: Value) -> Res {
        self.b.handle_request(self.req(op, path, data, Some("127.0.0.1"))).await
    }
    async fn data(&self, op: Operation, path: &str, data: Value) -> Map<String, Value> {
        self.call(op, path, data).await.unwrap().expect("a response").data.expect("data")
    }
    async fn role_id(&self, role: &str) -> String {
        self.data(Operation::Read, &format!("role/{role}/role-id"), json!({})).await["role_id"]
            .as_str()
            .unwrap()
            .to_string()
    }
    /// Generates a secret ID; returns (secret_id, accessor).
    async fn secret(&self, role: &str, body: Value) -> (String, String) {
        let d = self.data(Operation::Update, &format!("role/{role}/secret-id"), body).await;
        (d["secret_id"].as_str().unwrap().into(), d["secret_id_accessor"].as_str().unwrap().into())
    }
    async fn login_from(
        &self,
        role_id: &str,
        secret_id: &str,
        addr: Option<&str>,
    ) -> std::result::Result<AuthResponse, LogicalError> {
        let r = self
            .b
            .handle_request(self.req(
                Operation::Update,
                "login",
                json!({"role_id": role_id, "secret_id": secret_id}),
                addr,
            ))
            .await?;
        Ok(r.expect("login answers").auth.expect("login returns auth"))
    }
    async fn login(&self, role_id: &str, secret_id: &str) -> std::result::Result<AuthResponse, LogicalError> {
        self.login_from(role_id, secret_id, Some("127.0.0.1")).await
    }
    async fn lookup(&self, role: &str, secret_id: &str) -> Option<Map<String, Value>> {
        self.call(Operation::Update, &format!("role/{role}/secret-id/lookup"), json!({ "secret_id": secret_id }))
            .await
            .unwrap()
            .map(|r| r.data.unwrap())
    }
    async fn accessors(&self, role: &str) -> Vec<String> {
        match self.call(Operation::List, &format!("role/{role}/secret-id/"), json!({})).await.unwrap() {
            None => vec![],
            Some(r) => serde_json::from_value(r.data.unwrap()["keys"].clone()).unwrap(),
        }
    }
    fn storage_dump(&self) -> String {
        let m = self.s.0.lock().unwrap();
        m.iter().map(|(k, v)| format!("{k}={}\n", String::from_utf8_lossy(v))).collect()
    }
}

fn is_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.iter().map(|p| p.len()).collect::<Vec<_>>() == vec![8, 4, 4, 4, 12]
        && parts.iter().all(|p| p.chars().all(|c| c.is_ascii_hexdigit()))
}

fn is_rfc3339(s: &str) -> bool {
    s.len() >= 20 && s.ends_with('Z') && s.as_bytes()[4] == b'-' && s.as_bytes()[10] == b'T'
}

#[tokio::test]
async fn role_crud_round_trip_reads_like_openbao() {
    let e = Env::new();
    assert!(e
        .call(Operation::Create, "role/Web", json!({"token_policies": "a,b", "token_ttl": "1h"}))
        .await
        .unwrap()
        .is_none());
    let d = e.data(Operation::Read, "role/web", json!({})).await;
    assert_eq!(d["bind_secret_id"], json!(true));
    assert_eq!(d["local_secret_ids"], json!(false));
    assert_eq!(d["secret_id_bound_cidrs"], Value::Null, "unset CIDRs read as null");
    assert_eq!(d["secret_id_num_uses"], json!(0));
    assert_eq!(d["secret_id_ttl"], json!(0));
    assert_eq!(d["token_policies"], json!(["a", "b"]));
    assert_eq!(d["token_ttl"], json!(3600));
    assert_eq!(d["token_type"], json!("default"));
    assert!(!d.contains_key("role_id"), "the role ID is read from its own path");

    e.call(
        Operation::Update,
        "role/WEB",
        json!({"secret_id_ttl": "10m", "secret_id_num_uses": 5, "secret_id_bound_cidrs": ["10.0.0.0/8"]}),
    )
    .await
    .unwrap();
    let d = e.data(Operation::Read, "role/web", json!({})).await;
    assert_eq!((d["secret_id_ttl"].clone(), d["secret_id_num_uses"].clone()), (json!(600), json!(5)));
    assert_eq!(d["secret_id_bound_cidrs"], json!(["10.0.0.0/8"]));
    assert_eq!(d["token_ttl"], json!(3600), "unset fields are kept");

    assert_eq!(e.data(Operation::List, "role/", json!({})).await["keys"], json!(["web"]));
    e.call(Operation::Delete, "role/web", json!({})).await.unwrap();
    assert!(e.call(Operation::Read, "role/web", json!({})).await.unwrap().is_none());
    assert!(e.call(Operation::List, "role", json!({})).await.unwrap().is_none(), "empty list is a 404");
    assert!(e.call(Operation::Delete, "role/web", json!({})).await.unwrap().is_none(), "deleting twice is fine");
}

#[tokio::test]
async fn role_settings_are_validated() {
    let e = Env::new();
    let bad = |body: Value| {
        let e = e.clone();
        async move { e.call(Operation::Create, "role/r", body).await.unwrap_err() }
    };
    assert_eq!(bad(json!({"secret_id_num_uses": -1})).await.messages, vec!["secret_id_num_uses cannot be negative"]);
    assert_eq!(bad(json!({"secret_id_ttl": -1})).await.kind, ErrorKind::BadRequest);
    assert_eq!(bad(json!({"secret_id_bound_cidrs": "nope"})).await.kind, ErrorKind::BadRequest);
    assert_eq!(bad(json!({"token_type": "batch", "token_num_uses": 2})).await.kind, ErrorKind::BadRequest);
    let err = bad(json!({"bind_secret_id": false})).await;
    assert_eq!(err.messages, vec!["at least one constraint should be enabled on the role"]);
    assert!(e.call(Operation::Read, "role/r", json!({})).await.unwrap().is_none(), "nothing stored");

    e.call(Operation::Create, "role/r", json!({"local_secret_ids": true})).await.unwrap();
    assert_eq!(e.data(Operation::Read, "role/r", json!({})).await["local_secret_ids"], json!(true));
    let err = e.call(Operation::Update, "role/r", json!({"local_secret_ids": false})).await.unwrap_err();
    assert_eq!(err.messages, vec!["local_secret_ids can only be modified during role creation"]);
}

#[tokio::test]
async fn generated_ids_are_uuids_and_login_returns_auth_from_the_role() {
    let e = Env::new();
    e.call(
        Operation::Create,
        "role/web",
        json!({"token_policies": "dev", "token_ttl": 600, "token_bound_cidrs": "10.0.0.0/8"}),
    )
    .await
    .unwrap();
    let role_id = e.role_id("web").await;
    assert!(is_uuid(&role_id), "{role_id}");
    let d = e.data(Operation::Update, "role/web/secret-id", json!({"metadata": "{\"team\":\"blue\"}"})).await;
    let sid = d["secret_id"].as_str().unwrap();
    assert!(is_uuid(sid) && is_uuid(d["secret_id_accessor"].as_str().unwrap()));
    assert_eq!((d["secret_id_num_uses"].clone(), d["secret_id_ttl"].clone()), (json!(0), json!(0)));

    // token_bound_cidrs bind the token, not the login (as in OpenBao).
    let a = e.login(&role_id, sid).await.unwrap();
    // No name of its own: the token is named after the mount alone, as OpenBao names it.
    assert_eq!(a.display_name, "");
    assert_eq!(a.alias_name.as_deref(), Some(role_id.as_str()));
    assert_eq!(Value::Object(a.metadata), json!({"team": "blue", "role_name": "web"}));
    assert_eq!(a.alias_metadata["role_name"], json!("web"));
    assert_eq!(a.policies, vec!["dev"]);
    assert_eq!(a.ttl, 600);
    assert_eq!(a.bound_cidrs, vec!["10.0.0.0/8"]);
    e.login(&role_id, sid).await.expect("unlimited uses");
}

#[tokio::test]
async fn wrong_role_id_or_secret_id_gives_invalid_role_or_secret_id() {
    let e = Env::new();
    e.call(Operation::Create, "role/web", json!({})).await.unwrap();
    let role_id = e.role_id("web").await;
    let (sid, _) = e.secret("web", json!({})).await;
    let wrong_secret = e.login(&role_id, "not-the-secret").await.unwrap_err();
    let wrong_role = e.login("not-the-role", &sid).await.unwrap_err();
    assert_eq!(wrong_secret, wrong_role);
    assert_eq!(wrong_secret.kind, ErrorKind::BadRequest);
    assert_eq!(wrong_secret.messages, vec!["invalid role or secret ID"]);

    let r = e.b.handle_request(e.req(Operation::Update, "login", json!({"role_id": role_id}), None)).await;
    assert_eq!(r.unwrap_err().messages, vec!["missing secret_id"]);
    let r = e.b.handle_request(e.req(Operation::Update, "login", json!({"secret_id": sid}), None)).await;
    assert_eq!(r.unwrap_err().messages, vec!["missing role_id"]);
}

#[tokio::test]
async fn secret_ids_are_stored_only_as_keyed_hmacs() {
    let e = Env::new();
    e.call(Operation::Create, "role/web", json!({})).await.unwrap();
    let (sid, acc) = e.secret("web", json!({})).await;
    e.data(Operation::Update, "role/web/custom-secret-id", json!({"secret_id": "my-custom-secret"})).await;
    let dump = e.storage_dump();
    assert!(!dump.contains(&sid) && !dump.contains("my-custom-secret"), "no secret ID in keys or values");
    assert!(!dump.contains(&format!("accessor/{acc}")), "accessors are indexed by HMAC too");
    let salt = e.s.0.lock().unwrap().get("salt").cloned().expect("salt created on first use");
    assert_eq!(serde_json::from_slice::<Value>(&salt).unwrap()["salt"].as_str().unwrap().len(), 64);
    // A second mount has its own salt, so the same secret ID is stored under another name.
    let other = Env::new();
    other.call(Operation::Create, "role/web", json!({})).await.unwrap();
    other.data(Operation::Update, "role/web/custom-secret-id", json!({"secret_id": "my-custom-secret"})).await;
    let names = |env: &Env| -> Vec<String> {
        env.s.0.lock().unwrap().keys().filter(|k| k.starts_with("secret_id/")).cloned().collect()
    };
    assert!(names(&other).iter().all(|k| !names(&e).contains(k)));
}

#[tokio::test]
async fn secret_id_past_its_ttl_is_refused_and_deleted() {
    let e = Env::new();
    e.call(Operation::Create, "role/web", json!({})).await.unwrap();
    let role_id = e.role_id("web").await;
    let (sid, acc) = e.secret("web", json!({"ttl": "1s"})).await;
    let info = e.lookup("web", &sid).await.unwrap();
    assert_eq!(info["secret_id_ttl"], json!(1));
    assert_ne!(info["expiration_time"], info["creation_time"]);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert!(e.lookup("web", &sid).await.is_none(), "an expired secret ID is not shown");
    let err = e.login(&role_id, &sid).await.unwrap_err();
    assert_eq!(err.messages, vec!["invalid role or secret ID"]);
    assert!(e.accessors("web").await.is_empty(), "the refused login deleted it");
    let r = e.call(Operation::Update, "role/web/secret-id-accessor/lookup", json!({"secret_id_accessor": acc})).await;
    assert_eq!(
        r.unwrap().unwrap().status,
        coffer_sdk::ResponseStatus::Error(ErrorKind::NotFound),
        "its accessor went with it"
    );
}

#[tokio::test]
async fn secret_id_num_uses_are_counted_down_and_exhausted() {
    let e = Env::new();
    e.call(Operation::Create, "role/web", json!({})).await.unwrap();
    let role_id = e.role_id("web").await;
    let (sid, _) = e.secret("web", json!({"num_uses": 2})).await;
    let before = e.lookup("web", &sid).await.unwrap();
    e.login(&role_id, &sid).await.unwrap();
    let after = e.lookup("web", &sid).await.unwrap();
    assert_eq!(after["secret_id_num_uses"], json!(1));
    assert_eq!(after["creation_time"], before["creation_time"]);
    e.login(&role_id, &sid).await.unwrap();
    assert!(e.lookup("web", &sid).await.is_none(), "the last use deleted it");
    assert_eq!(e.login(&role_id, &sid).await.unwrap_err().messages, vec!["invalid role or secret ID"]);
    assert!(e.accessors("web").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_logins_never_exceed_num_uses() {
    let e = Env::new();
    e.call(Operation::Create, "role/web", json!({})).await.unwrap();
    let role_id = e.role_id("web").await;
    let (sid, _) = e.secret("web", json!({"num_uses": 3})).await;
    let tasks: Vec<_> = (0..12)
        .map(|_| {
            let (e, r, s) = (e.clone(), role_id.clone(), sid.clone());
            tokio::spawn(async move { e.login(&r, &s).await.is_ok() })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        ok += usize::from(t.await.unwrap());
    }
    assert_eq!(ok, 3);
}

#[tokio::test]
async fn secret_id_options_are_bounded_by_the_role() {
    let e = Env::new();
    e.call(Operation::Create, "role/web", json!({"secret_id_ttl": "10m", "secret_id_num_uses": 5})).await.unwrap();
    let d = e.data(Operation::Update, "role/web/secret-id", json!({})).await;
    assert_eq!((d["secret_id_ttl"].clone(), d["secret_id_num_uses"].clone()), (json!(600), json!(5)), "role defaults");
    let d = e.data(Operation::Update, "role/web/secret-id", json!({"ttl": "5m", "num_uses": 3})).await;
    assert_eq!((d["secret_id_ttl"].clone(), d["secret_id_num_uses"].clone()), (json!(300), json!(3)));
    let err = |body: Value| {
        let e = e.clone();
        async move { e.call(Operation::Update, "role/web/secret-id", body).await.unwrap_err().messages }
    };
    assert_eq!(err(json!({"ttl": "1h"})).await, vec!["ttl cannot be longer than the role's secret_id_ttl"]);
    assert_eq!(
        err(json!({"num_uses": 10})).await,
        vec!["num_uses cannot be higher than the role's secret_id_num_uses"]
    );
    assert_eq!(err(json!({"num_uses": 0})).await, vec!["num_uses cannot be higher than the role's secret_id_num_uses"]);
    assert_eq!(err(json!({"num_uses": -1})).await, vec!["num_uses cannot be negative"]);
    assert_eq!(
        err(json!({"metadata": "notjson"})).await[0],
        "failed to parse metadata: failed to parse the input: invalid <key,value> format"
    );
    assert_eq!(err(json!({"metadata": "{\"a\":1}"})).await.len(), 1, "metadata values must be strings");

    e.call(Operation::Create, "role/nets", json!({"secret_id_bound_cidrs": "10.0.0.0/8"})).await.unwrap();
    let r = e.call(Operation::Update, "role/nets/secret-id", json!({"cidr_list": "192.168.0.0/16"})).await;
    assert!(r.unwrap_err().messages[0].starts_with("failed to verify subset relationship"));
    e.data(Operation::Update, "role/nets/secret-id", json!({"cidr_list": "10.1.0.0/16"})).await;

    let r = e.call(Operation::Update, "role/ghost/secret-id", json!({})).await.unwrap_err();
    assert_eq!((r.kind, r.messages), (ErrorKind::NotFound, vec!["role \"ghost\" does not exist".to_string()]));
}

#[tokio::test]
async fn custom_role_id_replaces_the_old_one_and_must_be_unique() {
    let e = Env::new();
    e.call(Operation::Create, "role/web", json!({})).await.unwrap();
    let old = e.role_id("web").await;
    let (sid, _) = e.secret("web", json!({})).await;
    e.call(Operation::Update, "role/web/role-id", json!({"role_id": "my-role-id"})).await.unwrap();
    assert_eq!(e.role_id("web").await, "my-role-id");
    e.login("my-role-id", &sid).await.expect("the custom role ID logs in");
    assert!(e.login(&old, &sid).await.is_err(), "the old role ID no longer does");

    e.call(Operation::Create, "role/other", json!({})).await.unwrap();
    let err = e.call(Operation::Update, "role/other/role-id", json!({"role_id": "my-role-id"})).await.unwrap_err();
    assert_eq!(err.messages, vec!["role_id already in use"]);
    let err = e.call(Operation::Create, "role/third", json!({"role_id": "my-role-id"})).await.unwrap_err();
    assert_eq!(err.messages, vec!["role_id already in use"]);
    e.call(Operation::Create, "role/fourth", json!({"role_id": "fourth-id"})).await.unwrap();
    assert_eq!(e.role_id("fourth").await, "fourth-id", "a role ID can be chosen at creation");

    let err = e.call(Operation::Update, "role/web/role-id", json!({})).await.unwrap_err();
    assert_eq!(err.messages, vec!["missing role_id"]);
    let err = e.call(Operation::Update, "role/ghost/role-id", json!({"role_id": "x"})).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::UnsupportedPath);
    assert!(e.call(Operation::Read, "role/ghost/role-id", json!({})).await.unwrap().is_none());
}

#[tokio::test]
async fn custom_secret_id_registers_once_per_role() {
    let e = Env::new();
    e.call(Operation::Create, "role/web", json!({})).await.unwrap();
    e.call(Operation::Create, "role/api", json!({})).await.unwrap();
    let d = e.data(Operation::Update, "role/web/custom-secret-id", json!({"secret_id": "s3cret", "num_uses": 1})).await;
    assert_eq!(d["secret_id"], json!("s3cret"));
    assert_eq!(d["secret_id_num_uses"], json!(1));
    let err = e.call(Operation::Update, "role/web/custom-secret-id", json!({"secret_id": "s3cret"})).await.unwrap_err();
    assert!(err.messages[0].contains("SecretID is already registered"));
    e.data(Operation::Update, "role/api/custom-secret-id", json!({"secret_id": "s3cret"})).await;
    let err = e.call(Operation::Update, "role/web/custom-secret-id", json!({})).await.unwrap_err();
    assert_eq!(err.messages, vec!["missing secret_id"]);
    let role_id = e.role_id("web").await;
    e.login(&role_id, "s3cret").await.unwrap();
}

#[tokio::test]
async fn lookup_by_value_and_by_accessor_agree() {
    let e = Env::new();
    e.call(Operation::Create, "role/web", json!({})).await.unwrap();
    let (sid, acc) = e
        .secret(
            "web",
            json!({"metadata": "{\"a\":\"b\"}", "cidr_list": "127.0.0.1/32,10.0.0.0/8", "ttl": "1h", "num_uses": 2}),
        )
        .await;
    let by_value = e.lookup("web", &sid).await.unwrap();
    let by_acc =
        e.data(Operation::Update, "role/web/secret-id-accessor/lookup", json!({"secret_id_accessor": acc})).await;
    assert_eq!(by_value, by_acc);
    assert_eq!(by_value["secret_id_accessor"], json!(acc));
    assert_eq!(by_value["metadata"], json!({"a": "b"}));
    assert_eq!(by_value["cidr_list"], json!(["127.0.0.1/32", "10.0.0.0/8"]));
    assert_eq!(by_value["token_bound_cidrs"], json!([]));
    assert_eq!((by_value["secret_id_num_uses"].clone(), by_value["secret_id_ttl"].clone()), (json!(2), json!(3600)));
    for k in ["creation_time", "expiration_time", "last_updated_time"] {
        assert!(is_rfc3339(by_value[k].as_str().unwrap()), "{k}: {}", by_value[k]);
    }
    assert!(!by_value.contains_key("secret_id"), "lookups never return the secret ID");

    let (forever, _) = e.secret("web", json!({})).await;
    assert_eq!(e.lookup("web", &forever).await.unwrap()["expiration_time"], json!("0001-01-01T00:00:00Z"));
    assert!(e.lookup("web", "unknown").await.is_none());
    let r =
        e.call(Operation::Update, "role/web/secret-id-accessor/lookup", json!({"secret_id_accessor": "nope"})).await;
    assert_eq!(r.unwrap().unwrap().status, coffer_sdk::ResponseStatus::Error(ErrorKind::NotFound));
    let err = e.call(Operation::Update, "role/web/secret-id/lookup", json!({})).await.unwrap_err();
    assert_eq!(err.messages, vec!["missing secret_id"]);
    let err = e.call(Operation::Update, "role/ghost/secret-id/lookup", json!({"secret_id": "x"})).await.unwrap_err();
    assert_eq!(err.messages, vec!["role \"ghost\" does not exist"]);
}

#[tokio::test]
async fn list_secret_ids_returns_their_accessors() {
    let e = Env::new();
    e.call(Operation::Create, "role/web", json!({})).await.unwrap();
    assert!(e.accessors("web").await.is_empty());
    let (_, a1) = e.secret("web", json!({})).await;
    let (_, a2) = e.secret("web", json!({})).await;
    let mut got = e.accessors("web").await;
    got.sort();
    let mut want = vec![a1, a2];
    want.sort();
    assert_eq!(got, want);
    let err = e.call(Operation::List, "role/ghost/secret-id/", json!({})).await.unwrap_err();
    assert_eq!(err.messages, vec!["role \"ghost\" does not exist"]);
}

#[tokio::test]
async fn destroy_by_value_and_by_accessor() {
    let e = Env::new();
    e.call(Operation::Create, "role/web", json!({})).await.unwrap();
    e.call(Operation::Create, "role/api", json!({})).await.unwrap();
    let role_id = e.role_id("web").await;
    let (s1, a1) = e.secret("web", json!({})).await;
    let (s2, a2) = e.secret("web", json!({})).await;

    assert!(e.call(Operation::Update, "role/web/secret-id/destroy", json!({"secret_id": s1})).await.unwrap().is_none());
    assert!(e.login(&role_id, &s1).await.is_err());
    assert_eq!(e.accessors("web").await, vec![a2.clone()]);
    assert!(
        e.call(Operation::Delete, "role/web/secret-id/destroy", json!({"secret_id": s1})).await.unwrap().is_none(),
        "destroying twice is fine"
    );
    let r = e.call(Operation::Update, "role/web/secret-id-accessor/lookup", json!({"secret_id_accessor": a1})).await;
    assert_eq!(
        r.unwrap().unwrap().status,
        coffer_sdk::ResponseStatus::Error(ErrorKind::NotFound),
        "its accessor is gone too"
    );

    let err = e.call(Operation::Update, "role/api/secret-id-accessor/destroy", json!({"secret_id_accessor": a2})).await;
    assert_eq!(err.unwrap_err().kind, ErrorKind::PermissionDenied, "another role's accessor is refused");
    e.login(&role_id, &s2).await.expect("still valid");
    e.call(Operation::Delete, "role/web/secret-id-accessor/destroy", json!({"secret_id_accessor": a2})).await.unwrap();
    assert!(e.login(&role_id, &s2).await.is_err());
    assert!(e.accessors("web").await.is_empty());
    let err = e.call(Operation::Update, "role/web/secret-id-accessor/destroy", json!({"secret_id_accessor": a2})).await;
    assert!(err.unwrap_err().messages[0].starts_with("failed to find accessor entry"));
}

#[tokio::test]
async fn cidr_restrictions_refuse_logins_without_consuming_uses() {
    let e = Env::new();
    e.call(Operation::Create, "role/web", json!({})).await.unwrap();
    let role_id = e.role_id("web").await;
    let (sid, _) = e.secret("web", json!({"cidr_list": "10.0.0.0/8", "num_uses": 2})).await;
    let err = e.login_from(&role_id, &sid, Some("127.0.0.1")).await.unwrap_err();
    assert_eq!(err.messages, vec!["source address \"127.0.0.1\" unauthorized by CIDR restrictions on the secret ID"]);
    assert!(e.login_from(&role_id, &sid, None).await.is_err(), "an unknown address is outside");
    assert_eq!(e.lookup("web", &sid).await.unwrap()["secret_id_num_uses"], json!(2));
    e.login_from(&role_id, &sid, Some("10.9.8.7")).await.unwrap();

    e.call(Operation::Create, "role/bound", json!({"secret_id_bound_cidrs": "192.168.0.0/16"})).await.unwrap();
    let bound_id = e.role_id("bound").await;
    let (bsid, _) = e.secret("bound", json!({"num_uses": 1})).await;
    let err = e.login_from(&bound_id, &bsid, Some("10.0.0.1")).await.unwrap_err();
    assert_eq!(err.messages, vec!["source address \"10.0.0.1\" unauthorized by CIDR restrictions on the role"]);
    assert!(e.lookup("bound", &bsid).await.is_some(), "a refused login does not consume the secret ID");
    let err = e.login_from(&bound_id, "wrong", Some("10.0.0.1")).await.unwrap_err();
    assert_eq!(err.messages, vec!["invalid role or secret ID"], "the secret ID is checked first");
    e.login_from(&bound_id, &bsid, Some("192.168.3.4")).await.unwrap();
}

#[tokio::test]
async fn role_without_bind_secret_id_logs_in_with_its_role_id_from_allowed_addresses() {
    let e = Env::new();
    e.call(Operation::Create, "role/m", json!({"bind_secret_id": false, "secret_id_bound_cidrs": "127.0.0.0/8"}))
        .await
        .unwrap();
    let role_id = e.role_id("m").await;
    let r = e.b.handle_request(e.req(Operation::Update, "login", json!({"role_id": role_id}), Some("127.0.0.9"))).await;
    assert_eq!(r.unwrap().unwrap().auth.unwrap().metadata["role_name"], json!("m"));
    e.login_from(&role_id, "ignored", Some("127.0.0.1")).await.expect("a secret ID is ignored");
    assert!(e.login_from(&role_id, "ignored", Some("10.0.0.1")).await.is_err());
    let err = e.call(Operation::Update, "role/m/secret-id", json!({})).await.unwrap_err();
    assert_eq!(err.messages, vec!["bind_secret_id is not set on the role"]);
}

#[tokio::test]
async fn tidy_removes_expired_secret_ids_only() {
    let e = Env::new();
    e.call(Operation::Create, "role/web", json!({})).await.unwrap();
    let role_id = e.role_id("web").await;
    let (_, a1) = e.secret("web", json!({"ttl": "1s"})).await;
    let (_, a2) = e.secret("web", json!({"ttl": "1s"})).await;
    let (keep, keep_acc) = e.secret("web", json!({})).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let mut listed = e.accessors("web").await;
    listed.sort();
    let mut all = vec![a1, a2, keep_acc.clone()];
    all.sort();
    assert_eq!(listed, all, "expired secret IDs stay listed until tidied");
    let r = e.call(Operation::Update, "tidy/secret-id", json!({})).await.unwrap().unwrap();
    assert!(r.warnings[0].starts_with("Tidy operation successfully started"));
    assert_eq!(e.accessors("web").await, vec![keep_acc]);
    let accessor_entries = e.s.0.lock().unwrap().keys().filter(|k| k.starts_with("accessor/")).count();
    assert_eq!(accessor_entries, 1, "the expired ones' accessors are gone");
    e.login(&role_id, &keep).await.unwrap();
    assert_eq!(
        e.call(Operation::Read, "tidy/secret-id", json!({})).await.unwrap_err().kind,
        ErrorKind::UnsupportedOperation
    );
}

#[tokio::test]
async fn deleting_a_role_deletes_its_secret_ids_and_role_id() {
    let e = Env::new();
    e.call(Operation::Create, "role/web", json!({})).await.unwrap();
    let role_id = e.role_id("web").await;
    let (sid, _) = e.secret("web", json!({})).await;
    e.call(Operation::Delete, "role/web", json!({})).await.unwrap();
    let left: Vec<String> = e.s.0.lock().unwrap().keys().filter(|k| *k != "salt").cloned().collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    e.call(Operation::Create, "role/web", json!({})).await.unwrap();
    assert!(e.login(&role_id, &sid).await.is_err());
    assert!(e.login(&e.role_id("web").await, &sid).await.is_err(), "a recreated role has none of the old secrets");
}

#[tokio::test]
async fn exists_unauthenticated_paths_and_path_help() {
    let e = Env::new();
    assert!(e.b.path_flags("login").unauthenticated);
    assert!(!e.b.path_flags("role").unauthenticated);
    assert_eq!(e.b.special_paths().unauthenticated, vec!["login".to_string()]);
    assert_eq!(e.b.backend_type(), "approle");
    let probe = |p: &str| e.req(Operation::Create, p, json!({}), None);
    assert_eq!(e.b.exists(&probe("role/web")).await.unwrap(), Some(false));
    e.call(Operation::Create, "role/web", json!({})).await.unwrap();
    assert_eq!(e.b.exists(&probe("role/WEB")).await.unwrap(), Some(true));
    assert_eq!(e.b.exists(&probe("role/web/secret-id")).await.unwrap(), None);
    assert_eq!(e.call(Operation::Create, "role/a@b", json!({})).await.unwrap_err().kind, ErrorKind::UnsupportedPath);
    assert!(e.b.paths().iter().all(|p| !p.synopsis.is_empty()
        && !p.description.is_empty()
        && p.fields.iter().all(|f| !f.description.is_empty())));
}

#[tokio::test]
async fn role_setting_endpoints_read_write_and_reset_one_setting() {
    let e = Env::new();
    e.call(Operation::Update, "role/app", json!({"token_policies": "a,b", "secret_id_ttl": "1h"})).await.unwrap();
    let d = e.data(Operation::Read, "role/app/policies", json!({})).await;
    assert_eq!(Value::Object(d), json!({"token_policies": ["a", "b"]}));
    assert_eq!(
        Value::Object(e.data(Operation::Read, "role/app/secret-id-ttl", json!({})).await),
        json!({"secret_id_ttl": 3600})
    );
    // A write changes only the endpoint's own setting: other fields in the body are ignored.
    let w = e.call(Operation::Update, "role/app/secret-id-ttl", json!({"secret_id_ttl": "2h", "token_ttl": 60})).await;
    assert_eq!(w.unwrap(), None);
    let role = e.data(Operation::Read, "role/app", json!({})).await;
    assert_eq!(role["secret_id_ttl"], json!(7200));
    assert_eq!(role["token_ttl"], json!(0));
    e.call(Operation::Update, "role/app/policies", json!({"token_policies": "default"})).await.unwrap();
    assert_eq!(e.data(Operation::Read, "role/app", json!({})).await["token_policies"], json!(["default"]));
    // DELETE resets the setting to its default.
    assert_eq!(e.call(Operation::Delete, "role/app/secret-id-ttl", json!({})).await.unwrap(), None);
    assert_eq!(e.data(Operation::Read, "role/app", json!({})).await["secret_id_ttl"], json!(0));
    // A missing role: read answers nothing, write is a 404, delete a no-op.
    assert_eq!(e.call(Operation::Read, "role/nope/policies", json!({})).await.unwrap(), None);
    let err = e.call(Operation::Update, "role/nope/policies", json!({"token_policies": "x"})).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound);
    assert_eq!(e.call(Operation::Delete, "role/nope/policies", json!({})).await.unwrap(), None);
    // local-secret-ids can only be read.
    assert_eq!(
        Value::Object(e.data(Operation::Read, "role/app/local-secret-ids", json!({})).await),
        json!({"local_secret_ids": false})
    );
    let err = e.call(Operation::Update, "role/app/local-secret-ids", json!({"local_secret_ids": true})).await;
    assert_eq!(err.unwrap_err().kind, ErrorKind::UnsupportedOperation);
}

#[tokio::test]
async fn secret_id_bound_cidrs_read_null_until_given_then_a_list_even_empty() {
    let e = Env::new();
    e.call(Operation::Update, "role/a", json!({})).await.unwrap();
    assert_eq!(e.data(Operation::Read, "role/a", json!({})).await["secret_id_bound_cidrs"], Value::Null);
    for given in [json!(""), json!(null), json!([])] {
        e.call(Operation::Delete, "role/b", json!({})).await.unwrap();
        e.call(Operation::Update, "role/b", json!({"secret_id_bound_cidrs": given})).await.unwrap();
        assert_eq!(e.data(Operation::Read, "role/b", json!({})).await["secret_id_bound_cidrs"], json!([]), "{given}");
    }
}

#[tokio::test]
async fn unknown_accessor_lookup_is_a_404_with_the_message_in_data_error() {
    let e = Env::new();
    e.call(Operation::Update, "role/app", json!({})).await.unwrap();
    let r = e
        .call(Operation::Update, "role/app/secret-id-accessor/lookup", json!({"secret_id_accessor": "nope"}))
        .await
        .unwrap()
        .expect("an answer with a body");
    assert_eq!(r.status, coffer_sdk::ResponseStatus::Error(ErrorKind::NotFound));
    assert_eq!(r.data.unwrap()["error"], json!("failed to find accessor entry for secret_id_accessor: \"nope\""));
}

#[tokio::test]
async fn unknown_parameters_are_named_in_a_warning_on_answers_with_a_body() {
    let e = Env::new();
    // A write answered with 204 stays without a body.
    assert_eq!(e.call(Operation::Update, "role/app", json!({"zeta": 1, "alpha": 2})).await.unwrap(), None);
    let r = e.call(Operation::Read, "role/app/role-id", json!({"x": "1"})).await.unwrap().unwrap();
    assert_eq!(r.warnings, vec!["Endpoint ignored these unrecognized parameters: [x]".to_string()]);
    let r = e.call(Operation::Update, "role/app/secret-id", json!({"zeta": 1, "alpha": 2})).await.unwrap().unwrap();
    assert_eq!(r.warnings, vec!["Endpoint ignored these unrecognized parameters: [alpha zeta]".to_string()]);
    let r = e.call(Operation::Read, "role/app", json!({})).await.unwrap().unwrap();
    assert!(r.warnings.is_empty());
}
