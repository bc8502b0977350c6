//! userpass behaviour through the Backend trait, over an in-process storage view.
use coffer_builtin_userpass::UserPass;
use coffer_sdk::framework;
use coffer_sdk::{Backend, ErrorKind, LogicalError, Operation, Request, Response};
use serde_json::{json, Value};
use std::net::IpAddr;
use std::sync::Arc;

use coffer_sdk::testing::MapView;

struct Env {
    b: framework::Backend<UserPass>,
    s: Arc<MapView>,
}

impl Env {
    fn new() -> Self {
        Env { b: framework::Backend::new(UserPass::new()), s: Arc::new(MapView::default()) }
    }
    fn req(&self, op: Operation, path: &str, data: Value, addr: Option<&str>) -> Request {
        Request {
            operation: op,
            path: path.into(),
            data: data.as_object().cloned().unwrap_or_default(),
            mount_point: "auth/userpass/".into(),
            storage: self.s.clone(),
            system: coffer_sdk::SystemInfo { default_lease_ttl: 2764800, max_lease_ttl: 2764800 },
            remote_addr: addr.map(|a| a.parse::<IpAddr>().unwrap()),
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
        self.b.handle_request(self.req(op, path, data, Some("127.0.0.1"))).await
    }
    async fn login_from(
        &self,
        user: &str,
        password: &str,
        addr: Option<&str>,
    ) -> std::result::Result<Response, LogicalError> {
        let r = self
            .b
            .handle_request(self.req(
                Operation::Update,
                &format!("login/{user}"),
                json!({ "password": password }),
                addr,
            ))
            .await?;
        Ok(r.expect("a login answers with a response"))
    }
    async fn login(&self, user: &str, password: &str) -> std::result::Result<Response, LogicalError> {
        self.login_from(user, password, Some("127.0.0.1")).await
    }
    async fn read_user(&self, user: &str) -> Option<serde_json::Map<String, Value>> {
        self.call(Operation::Read, &format!("users/{user}"), json!({})).await.unwrap().map(|r| r.data.unwrap())
    }
}

#[tokio::test]
async fn user_crud_round_trip_and_reads_never_show_the_password() {
    let e = Env::new();
    assert!(e
        .call(
            Operation::Create,
            "users/bob",
            json!({"password": "hunter2", "token_policies": "a,b", "token_ttl": "1h"})
        )
        .await
        .unwrap()
        .is_none());
    let d = e.read_user("bob").await.expect("bob exists");
    assert_eq!(d["token_policies"], json!(["a", "b"]));
    assert_eq!(d["token_ttl"], json!(3600));
    assert_eq!(d["token_type"], json!("default"));
    assert_eq!(d["token_bound_cidrs"], json!([]));
    assert!(!d.contains_key("password") && !d.contains_key("password_hash"));
    let shown = serde_json::to_string(&d).unwrap();
    assert!(!shown.contains("hunter2") && !shown.contains("argon2"), "neither password nor hash is returned");

    let l = e.call(Operation::List, "users/", json!({})).await.unwrap().unwrap();
    assert_eq!(l.data.unwrap()["keys"], json!(["bob"]));

    // An update without a password keeps the old one.
    e.call(Operation::Update, "users/bob", json!({"token_max_ttl": "2h"})).await.unwrap();
    assert_eq!(e.read_user("bob").await.unwrap()["token_max_ttl"], json!(7200));
    assert_eq!(e.read_user("bob").await.unwrap()["token_ttl"], json!(3600), "unset fields are kept");
    e.login("bob", "hunter2").await.expect("password unchanged by an update without one");

    e.call(Operation::Delete, "users/bob", json!({})).await.unwrap();
    assert!(e.read_user("bob").await.is_none());
    assert!(e.call(Operation::List, "users", json!({})).await.unwrap().is_none(), "empty list is a 404");
    assert!(e.login("bob", "hunter2").await.is_err());
}

#[tokio::test]
async fn creating_a_user_without_a_password_is_refused() {
    let e = Env::new();
    for body in [json!({"token_policies": "a"}), json!({"password": ""})] {
        let err = e.call(Operation::Create, "users/alice", body).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::BadRequest);
        assert_eq!(err.messages, vec!["must provide either password or password_hash"]);
    }
    assert!(e.read_user("alice").await.is_none());
}

#[tokio::test]
async fn usernames_are_case_insensitive() {
    let e = Env::new();
    e.call(Operation::Create, "users/Bob", json!({"password": "x"})).await.unwrap();
    assert!(e.read_user("BOB").await.is_some());
    let keys = e.call(Operation::List, "users", json!({})).await.unwrap().unwrap().data.unwrap();
    assert_eq!(keys["keys"], json!(["bob"]));
    let auth = e.login("bOb", "x").await.unwrap().auth.unwrap();
    assert_eq!(auth.metadata["username"], json!("bob"));
}

#[tokio::test]
async fn login_success_returns_auth_built_from_the_user_settings() {
    let e = Env::new();
    e.call(
        Operation::Create,
        "users/bob",
        json!({"password": "pw", "token_policies": ["dev", "ops"], "token_ttl": 600, "token_max_ttl": "1h", "token_num_uses": 3}),
    )
    .await
    .unwrap();
    let r = e.login("bob", "pw").await.unwrap();
    assert!(r.data.is_none());
    let a = r.auth.expect("login returns auth");
    assert_eq!(a.policies, vec!["dev", "ops"]);
    assert_eq!(a.display_name, "userpass-bob");
    assert_eq!(a.alias_name.as_deref(), Some("bob"));
    assert_eq!(Value::Object(a.metadata), json!({"username": "bob"}));
    assert_eq!((a.ttl, a.max_ttl, a.num_uses), (600, 3600, 3));
    assert!(a.renewable);
}

#[tokio::test]
async fn wrong_password_and_unknown_user_give_the_identical_error() {
    let e = Env::new();
    e.call(Operation::Create, "users/bob", json!({"password": "right"})).await.unwrap();
    let wrong = e.login("bob", "wrong").await.unwrap_err();
    let unknown = e.login("nobody", "wrong").await.unwrap_err();
    assert_eq!(wrong, unknown);
    assert_eq!(wrong.kind, ErrorKind::BadRequest);
    assert_eq!(wrong.messages, vec!["invalid username or password"]);
}

#[tokio::test]
async fn login_without_a_password_is_refused() {
    let e = Env::new();
    e.call(Operation::Create, "users/bob", json!({"password": "right"})).await.unwrap();
    let err = e.b.handle_request(e.req(Operation::Update, "login/bob", json!({}), None)).await.unwrap_err();
    assert_eq!(err.messages, vec!["missing password"]);
    assert!(e.login("bob", "").await.is_err());
}

#[tokio::test]
async fn login_from_outside_bound_cidrs_is_refused_like_a_wrong_password() {
    let e = Env::new();
    e.call(Operation::Create, "users/bob", json!({"password": "pw", "token_bound_cidrs": "10.0.0.0/8, 192.168.1.7"}))
        .await
        .unwrap();
    let ok = e.login_from("bob", "pw", Some("10.20.30.40")).await.unwrap().auth.unwrap();
    assert_eq!(ok.bound_cidrs, vec!["10.0.0.0/8", "192.168.1.7"], "the token is bound too");
    e.login_from("bob", "pw", Some("192.168.1.7")).await.unwrap();
    let wrong_pw = e.login_from("bob", "nope", Some("10.0.0.1")).await.unwrap_err();
    for addr in [Some("192.168.1.8"), Some("::1"), None] {
        let err = e.login_from("bob", "pw", addr).await.unwrap_err();
        assert_eq!(err, wrong_pw, "refusal from {addr:?} must look like a wrong password");
    }
}

#[tokio::test]
async fn password_endpoint_replaces_the_password() {
    let e = Env::new();
    e.call(Operation::Create, "users/bob", json!({"password": "old", "token_policies": "p"})).await.unwrap();
    e.call(Operation::Update, "users/bob/password", json!({"password": "new"})).await.unwrap();
    assert!(e.login("bob", "old").await.is_err());
    e.login("bob", "new").await.unwrap();
    assert_eq!(e.read_user("bob").await.unwrap()["token_policies"], json!(["p"]), "settings kept");

    let err = e.call(Operation::Update, "users/bob/password", json!({})).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadRequest);
    let err = e.call(Operation::Update, "users/ghost/password", json!({"password": "x"})).await.unwrap_err();
    assert_eq!(err.messages, vec!["username does not exist"]);
    assert!(e.read_user("ghost").await.is_none(), "the password endpoint creates no user");
}

#[tokio::test]
async fn policies_endpoint_changes_only_the_policies() {
    let e = Env::new();
    e.call(Operation::Create, "users/bob", json!({"password": "pw", "token_ttl": 60, "token_policies": "a"}))
        .await
        .unwrap();
    e.call(Operation::Update, "users/bob/policies", json!({"policies": "P1, p2", "token_ttl": 999})).await.unwrap();
    let d = e.read_user("bob").await.unwrap();
    assert_eq!(d["token_policies"], json!(["p1", "p2"]));
    assert_eq!(d["token_ttl"], json!(60), "other token fields are not touched here");
    e.call(Operation::Update, "users/bob/policies", json!({"token_policies": "x"})).await.unwrap();
    assert_eq!(e.login("bob", "pw").await.unwrap().auth.unwrap().policies, vec!["x"]);
    let err = e.call(Operation::Update, "users/ghost/policies", json!({"token_policies": "x"})).await.unwrap_err();
    assert_eq!(err.messages, vec!["username does not exist"]);
}

#[tokio::test]
async fn storage_holds_an_argon2id_hash_never_the_password() {
    let e = Env::new();
    e.call(Operation::Create, "users/bob", json!({"password": "s3cret-pw"})).await.unwrap();
    let raw = String::from_utf8(e.s.0.lock().unwrap().get("user/bob").cloned().unwrap()).unwrap();
    assert!(!raw.contains("s3cret-pw"));
    assert!(raw.contains("$argon2id$v=19$m=19456,t=2,p=1$"), "{raw}");
    e.call(Operation::Create, "users/eve", json!({"password": "s3cret-pw"})).await.unwrap();
    let raw2 = String::from_utf8(e.s.0.lock().unwrap().get("user/eve").cloned().unwrap()).unwrap();
    let hash = |s: &str| serde_json::from_str::<Value>(s).unwrap()["password_hash"].clone();
    assert_ne!(hash(&raw), hash(&raw2), "salts differ");
}

#[tokio::test]
async fn exists_tells_create_from_update() {
    let e = Env::new();
    let probe = |p: &str| e.req(Operation::Create, p, json!({}), None);
    assert_eq!(e.b.exists(&probe("users/bob")).await.unwrap(), Some(false));
    e.call(Operation::Create, "users/bob", json!({"password": "pw"})).await.unwrap();
    assert_eq!(e.b.exists(&probe("users/BOB")).await.unwrap(), Some(true));
    assert_eq!(e.b.exists(&probe("login/bob")).await.unwrap(), None);
}

#[tokio::test]
async fn only_login_is_unauthenticated_and_bad_names_are_unsupported_paths() {
    let e = Env::new();
    assert!(e.b.path_flags("login/alice").unauthenticated);
    assert!(!e.b.path_flags("users/alice").unauthenticated);
    assert_eq!(e.b.backend_type(), "userpass");
    let err = e.call(Operation::Create, "users/a@b", json!({"password": "x"})).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::UnsupportedPath);
    let err = e.call(Operation::Read, "login/bob", json!({})).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::UnsupportedOperation);
    e.call(Operation::Create, "users/a.b-c_d", json!({"password": "x"})).await.unwrap();
    assert!(e.b.paths().iter().all(|p| !p.synopsis.is_empty() && p.fields.iter().all(|f| !f.description.is_empty())));
}

#[tokio::test]
async fn batch_tokens_with_a_use_limit_are_refused() {
    let e = Env::new();
    let err = e
        .call(Operation::Create, "users/bob", json!({"password": "x", "token_type": "batch", "token_num_uses": 2}))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadRequest);
    assert!(e.read_user("bob").await.is_none());
}

/// Measures login time; run with
/// `cargo test --release -p coffer-builtin-userpass login_timing -- --ignored --nocapture`.
#[tokio::test]
#[ignore]
async fn login_timing_is_the_same_for_unknown_users_and_wrong_passwords() {
    let e = Env::new();
    e.call(Operation::Create, "users/bob", json!({"password": "right"})).await.unwrap();
    for _ in 0..3 {
        let _ = e.login("nobody", "warm-up").await;
    }
    let cases = [("bob", "right"), ("bob", "wrong"), ("nobody", "wrong")];
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); cases.len()];
    for _ in 0..30 {
        for (i, (user, pw)) in cases.iter().enumerate() {
            let t = std::time::Instant::now();
            let _ = e.login(user, pw).await;
            samples[i].push(t.elapsed().as_secs_f64());
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[v.len() / 2]
    };
    let m: Vec<f64> = samples.iter_mut().map(median).collect();
    for ((user, pw), t) in cases.iter().zip(&m) {
        println!("login {user}/{pw}: median {:.1} ms", t * 1e3);
    }
    let (ok, wrong, unknown) = (m[0], m[1], m[2]);
    assert!(unknown > wrong * 0.8 && unknown < wrong * 1.25, "unknown {unknown} vs wrong {wrong}");
    assert!(ok > wrong * 0.8 && ok < wrong * 1.25, "success {ok} vs wrong {wrong}");
}
