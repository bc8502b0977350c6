//! Identity tokens and the OIDC provider (`identity/oidc/…`) in-process, through the full
//! router: the answers OpenBao 2.7.2 gave to the same requests (docs/reference/openbao-observed.md
//! §19), the references between keys, roles, scopes, assignments, clients and providers, lazy
//! rotation and persistence through a seal, and the authorization-code flow with PKCE. PyJWT and
//! Authlib check the same endpoints against the real binary and OpenBao
//! (crates/coffer/tests/client_libraries.rs, tests/clients/oidc_flows.py).
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use coffer_testing::TestCore;
use serde_json::{json, Value};

async fn call_as(c: &TestCore, token: Option<&str>, method: &str, path: &str, body: Value) -> (u16, Value) {
    let r = c.request(method, path, token, (!body.is_null()).then_some(&body)).await;
    let v = if r.body.trim().is_empty() { Value::Null } else { r.json() };
    (r.status, v)
}

async fn ok(c: &TestCore, method: &str, path: &str, body: Value) -> Value {
    let (st, v) = call_as(c, Some(&c.root_token), method, path, body).await;
    assert!(st == 200 || st == 204, "{method} {path}: {st} {v}");
    v
}

async fn refused(c: &TestCore, method: &str, path: &str, body: Value, needle: &str) {
    let (st, v) = call_as(c, Some(&c.root_token), method, path, body).await;
    assert_eq!(st, 400, "{method} {path}: {v}");
    assert!(v["errors"][0].as_str().unwrap_or("").contains(needle), "{method} {path}: {v}");
}

/// A userpass login whose token has an entity and may ask for identity tokens: (token, entity id).
async fn user(c: &TestCore) -> (String, String) {
    ok(c, "POST", "sys/auth/up", json!({"type": "userpass"})).await;
    ok(
        c,
        "PUT",
        "sys/policy/oidc",
        json!({"policy": "path \"identity/oidc/token/*\" { capabilities = [\"read\"] }\npath \"identity/oidc/introspect\" { capabilities = [\"update\"] }\n"}),
    )
    .await;
    ok(c, "POST", "auth/up/users/alice", json!({"password": "pw", "policies": "default,oidc"})).await;
    let r = c.request("POST", "auth/up/login/alice", None, Some(&json!({"password": "pw"}))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let a = r.json()["auth"].clone();
    (a["client_token"].as_str().unwrap().to_string(), a["entity_id"].as_str().unwrap().to_string())
}

fn part(jwt: &str, i: usize) -> Value {
    let p = jwt.split('.').nth(i).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap()
}

async fn kids(c: &TestCore, path: &str) -> Vec<String> {
    let (st, v) = call_as(c, None, "GET", path, Value::Null).await;
    assert_eq!(st, 200, "{v}");
    v["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn keys_roles_and_identity_tokens_answer_as_openbao() {
    let c = &TestCore::new().await;
    let (ut, entity) = user(c).await;
    // The default key exists from the start, allowing every client.
    let d = ok(c, "GET", "identity/oidc/key/default", Value::Null).await;
    assert_eq!(
        d["data"],
        json!({"algorithm": "RS256", "allowed_client_ids": ["*"], "rotation_period": 86400, "verification_ttl": 86400})
    );
    ok(c, "POST", "identity/oidc/key/k1", json!({"algorithm": "ES256", "allowed_client_ids": ["*"]})).await;
    ok(c, "POST", "identity/oidc/key/k2", json!({"rotation_period": "1m", "verification_ttl": "1m"})).await;
    let k2 = ok(c, "GET", "identity/oidc/key/k2", Value::Null).await;
    assert_eq!(
        k2["data"],
        json!({"algorithm": "RS256", "allowed_client_ids": [], "rotation_period": 60, "verification_ttl": 60})
    );
    assert_eq!(ok(c, "LIST", "identity/oidc/key", Value::Null).await["data"]["keys"], json!(["default", "k1", "k2"]));
    refused(c, "POST", "identity/oidc/key/k3", json!({"algorithm": "HS256"}), "unknown signing algorithm \"HS256\"")
        .await;
    refused(c, "POST", "identity/oidc/key/k3", json!({"rotation_period": "10s"}), "at least one minute").await;
    refused(
        c,
        "POST",
        "identity/oidc/key/k3",
        json!({"rotation_period": "1h", "verification_ttl": "100h"}),
        "cannot be longer than 10x rotation_period",
    )
    .await;
    let (st, _) = call_as(c, Some(&c.root_token), "GET", "identity/oidc/key/k3", Value::Null).await;
    assert_eq!(st, 404, "a refused key was stored");

    // Roles.
    refused(c, "POST", "identity/oidc/role/r0", json!({}), "the key parameter is required").await;
    refused(c, "POST", "identity/oidc/role/r0", json!({"key": "nokey"}), "cannot find key \"nokey\"").await;
    refused(c, "POST", "identity/oidc/role/r0", json!({"key": "k1", "ttl": "48h"}), "verification_ttl").await;
    refused(
        c,
        "POST",
        "identity/oidc/role/r0",
        json!({"key": "k1", "template": "{\"a\": {{identity.entity.bogus}}}"}),
        "no value could be found",
    )
    .await;
    refused(
        c,
        "POST",
        "identity/oidc/role/r0",
        json!({"key": "k1", "template": "not json"}),
        "error parsing template JSON",
    )
    .await;
    refused(
        c,
        "POST",
        "identity/oidc/role/r0",
        json!({"key": "k1", "template": "{\"iss\": \"x\"}"}),
        "top level key \"iss\" not allowed",
    )
    .await;
    ok(
        c,
        "POST",
        "identity/oidc/role/r1",
        json!({"key": "k1", "ttl": "1h", "template": "{\"name\": {{identity.entity.name}}, \"groups\": {{identity.entity.groups.names}}}"}),
    )
    .await;
    let r1 = ok(c, "GET", "identity/oidc/role/r1", Value::Null).await["data"].clone();
    assert_eq!(r1["key"], "k1");
    assert_eq!(r1["ttl"], 3600);
    assert_eq!(r1["client_id"].as_str().unwrap().len(), 26, "{r1}");
    // A base64 template is stored decoded.
    ok(
        c,
        "POST",
        "identity/oidc/role/r2",
        json!({"key": "k1", "template": STANDARD.encode(r#"{"a":1}"#), "client_id": "mine"}),
    )
    .await;
    let r2 = ok(c, "GET", "identity/oidc/role/r2", Value::Null).await["data"].clone();
    assert_eq!((r2["template"].as_str(), r2["client_id"].as_str()), (Some(r#"{"a":1}"#), Some("mine")));
    assert_eq!(ok(c, "LIST", "identity/oidc/role", Value::Null).await["data"]["keys"], json!(["r1", "r2"]));

    // Tokens: only for a token with an entity, only where the key allows the role's client id.
    refused(c, "GET", "identity/oidc/token/r1", Value::Null, "no entity associated with the request's token").await;
    refused(c, "GET", "identity/oidc/token/none", Value::Null, "role \"none\" not found").await;
    let (st, v) = call_as(c, Some(&ut), "GET", "identity/oidc/token/r1", Value::Null).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["data"]["client_id"], r1["client_id"]);
    assert_eq!(v["data"]["ttl"], 3600);
    let jwt = v["data"]["token"].as_str().unwrap();
    let (h, claims) = (part(jwt, 0), part(jwt, 1));
    assert_eq!(h["alg"], "ES256");
    assert_eq!(claims["sub"], entity.as_str());
    assert_eq!(claims["aud"], r1["client_id"]);
    assert_eq!(claims["namespace"], "root");
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 3600);
    assert!(claims["iss"].as_str().unwrap().ends_with("/v1/identity/oidc"), "{claims}");
    assert!(claims["name"].is_string() && claims["groups"].is_null(), "{claims}");
    assert!(kids(c, "identity/oidc/.well-known/keys").await.contains(&h["kid"].as_str().unwrap().to_string()));
    ok(c, "POST", "identity/oidc/role/r3", json!({"key": "k2", "ttl": "30s"})).await;
    let (st, v) = call_as(c, Some(&ut), "GET", "identity/oidc/token/r3", Value::Null).await;
    assert_eq!(st, 400, "{v}");
    assert!(v["errors"][0].as_str().unwrap().contains("does not list the client ID of the role \"r3\""), "{v}");

    // Keys in use stay.
    refused(c, "DELETE", "identity/oidc/key/k1", Value::Null, "currently referenced by these roles: r1, r2").await;
    refused(c, "DELETE", "identity/oidc/key/default", Value::Null, "deletion of key \"default\" not allowed").await;
    ok(c, "DELETE", "identity/oidc/role/r3", Value::Null).await;
    ok(c, "DELETE", "identity/oidc/key/k2", Value::Null).await;
    ok(c, "DELETE", "identity/oidc/key/never-was", Value::Null).await;
    refused(c, "POST", "identity/oidc/key/nope/rotate", json!({}), "no named key found at \"nope\"").await;
}

#[tokio::test]
async fn the_issuer_is_validated_and_moves_discovery() {
    let c = &TestCore::new().await;
    for bad in ["https://example.com:8200/path", "notaurl", "ftp://example.com"] {
        refused(c, "POST", "identity/oidc/config", json!({"issuer": bad}), "invalid issuer").await;
    }
    let v = ok(c, "POST", "identity/oidc/config", json!({"issuer": "https://example.com:8200"})).await;
    assert!(v["warnings"][0].as_str().unwrap().contains("issuer"), "{v}");
    assert_eq!(ok(c, "GET", "identity/oidc/config", Value::Null).await["data"]["issuer"], "https://example.com:8200");
    let (st, d) = call_as(c, None, "GET", "identity/oidc/.well-known/openid-configuration", Value::Null).await;
    assert_eq!(st, 200);
    assert_eq!(d["issuer"], "https://example.com:8200/v1/identity/oidc");
    assert_eq!(d["jwks_uri"], "https://example.com:8200/v1/identity/oidc/.well-known/keys");
    assert_eq!(d["response_types_supported"], json!(["id_token"]));
    ok(c, "POST", "identity/oidc/config", json!({"issuer": ""})).await;
    assert_eq!(ok(c, "GET", "identity/oidc/config", Value::Null).await["data"]["issuer"], "");
}

#[tokio::test]
async fn introspection_says_active_or_why_not_and_refuses_a_missing_token() {
    let c = &TestCore::new().await;
    let (ut, _) = user(c).await;
    ok(c, "POST", "identity/oidc/key/k", json!({"algorithm": "EdDSA", "allowed_client_ids": ["*"]})).await;
    ok(c, "POST", "identity/oidc/role/r", json!({"key": "k", "ttl": "1h"})).await;
    let (_, v) = call_as(c, Some(&ut), "GET", "identity/oidc/token/r", Value::Null).await;
    let jwt = v["data"]["token"].as_str().unwrap().to_string();
    let intro = |body: Value| {
        let ut = ut.clone();
        async move { call_as(c, Some(&ut), "POST", "identity/oidc/introspect", body).await }
    };
    assert_eq!(intro(json!({"token": jwt})).await, (200, json!({"active": true})));
    let cid = v["data"]["client_id"].as_str().unwrap();
    assert_eq!(intro(json!({"token": jwt, "client_id": cid})).await, (200, json!({"active": true})));
    let (st, v) = intro(json!({"token": jwt, "client_id": "other"})).await;
    assert_eq!((st, &v["active"]), (200, &json!(false)));
    assert!(v["error"].as_str().unwrap().contains("audience"), "{v}");
    let (st, v) = intro(json!({"token": "abc"})).await;
    assert_eq!((st, &v["active"]), (200, &json!(false)));
    assert!(v["error"].as_str().unwrap().contains("three parts"), "{v}");
    // A changed payload no longer matches the signature.
    let mut p: Vec<String> = jwt.split('.').map(str::to_string).collect();
    p[1] = URL_SAFE_NO_PAD.encode(br#"{"sub":"someone-else","exp":99999999999}"#);
    let (st, v) = intro(json!({"token": p.join(".")})).await;
    assert_eq!((st, &v["active"]), (200, &json!(false)), "{v}");
    assert!(v["error"].as_str().unwrap().contains("signature"), "{v}");
    let (st, v) = intro(json!({})).await;
    assert_eq!(st, 400, "{v}");
    assert!(v["errors"][0].as_str().unwrap().contains("missing token"), "{v}");
}

#[tokio::test]
async fn rotation_signs_with_the_published_next_key_and_keeps_the_old_one() {
    let c = &TestCore::new().await;
    let (ut, _) = user(c).await;
    ok(c, "POST", "identity/oidc/key/k", json!({"algorithm": "RS384", "allowed_client_ids": ["*"]})).await;
    ok(c, "POST", "identity/oidc/role/r", json!({"key": "k", "ttl": "1h"})).await;
    let before = kids(c, "identity/oidc/.well-known/keys").await;
    assert_eq!(before.len(), 2, "the signing key and the next one: {before:?}");
    let (_, v) = call_as(c, Some(&ut), "GET", "identity/oidc/token/r", Value::Null).await;
    let kid1 = part(v["data"]["token"].as_str().unwrap(), 0)["kid"].as_str().unwrap().to_string();
    ok(c, "POST", "identity/oidc/key/k/rotate", json!({"verification_ttl": "1h"})).await;
    let (_, v) = call_as(c, Some(&ut), "GET", "identity/oidc/token/r", Value::Null).await;
    let kid2 = part(v["data"]["token"].as_str().unwrap(), 0)["kid"].as_str().unwrap().to_string();
    assert_ne!(kid1, kid2);
    assert!(before.contains(&kid2), "the new signing key was published before it signed");
    let after = kids(c, "identity/oidc/.well-known/keys").await;
    assert_eq!(after.len(), 3, "{after:?}");
    assert!(after.contains(&kid1), "the rotated-out key is still published");
}

#[tokio::test]
async fn a_due_rotation_happens_on_the_next_request_and_keys_survive_a_seal() {
    let mut c = TestCore::builder().config("raw_storage_endpoint = true\n").uninitialized().start().await;
    let (keys, _) = c.init_unseal().await;
    let c = &c;
    ok(c, "POST", "identity/oidc/key/k", json!({"algorithm": "ES384", "allowed_client_ids": ["*"]})).await;
    ok(c, "POST", "identity/oidc/role/r", json!({"key": "k"})).await;
    let published = kids(c, "identity/oidc/.well-known/keys").await;
    // Make the rotation due, behind the server's back, then seal and unseal.
    let raw = ok(c, "GET", "sys/raw/identity/oidc/key/k", Value::Null).await;
    let mut entry: Value = serde_json::from_str(raw["data"]["value"].as_str().unwrap()).unwrap();
    let (cur, next) =
        (entry["current"]["kid"].as_str().unwrap().to_string(), entry["next"]["kid"].as_str().unwrap().to_string());
    assert!(entry["current"]["private"].is_string(), "stored through the barrier with its private key");
    entry["next_rotation"] = json!(0);
    ok(c, "PUT", "sys/raw/identity/oidc/key/k", json!({"value": entry.to_string()})).await;
    ok(c, "PUT", "sys/seal", Value::Null).await;
    for k in &keys[..3] {
        let r = c.request("PUT", "sys/unseal", None, Some(&json!({"key": k}))).await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let now = kids(c, "identity/oidc/.well-known/keys").await;
    assert_eq!(published, vec![cur.clone(), next.clone()]);
    assert_eq!(now.len(), 3, "{now:?}");
    assert!(now.contains(&cur) && now.contains(&next), "{now:?}");
    let raw = ok(c, "GET", "sys/raw/identity/oidc/key/k", Value::Null).await;
    let entry: Value = serde_json::from_str(raw["data"]["value"].as_str().unwrap()).unwrap();
    assert_eq!(entry["current"]["kid"], next.as_str(), "the published next key signs now");
    assert!(entry["next_rotation"].as_i64().unwrap() > 0);
    assert!(entry["retired"][0]["private"].is_null(), "a retired key keeps no private part");
    assert_eq!(ok(c, "GET", "identity/oidc/role/r", Value::Null).await["data"]["key"], "k");
}

#[tokio::test]
async fn provider_objects_check_their_references() {
    let c = &TestCore::new().await;
    let (_, entity) = user(c).await;
    refused(c, "POST", "identity/oidc/scope/openid", json!({}), "reserved").await;
    refused(c, "POST", "identity/oidc/scope/s", json!({"template": "{\"a\": {{nope}}}"}), "no value could be found")
        .await;
    ok(
        c,
        "POST",
        "identity/oidc/scope/s",
        json!({"template": "{\"u\": {{identity.entity.name}}}", "description": "d"}),
    )
    .await;
    assert_eq!(
        ok(c, "GET", "identity/oidc/scope/s", Value::Null).await["data"],
        json!({"description": "d", "template": "{\"u\": {{identity.entity.name}}}"})
    );
    refused(c, "POST", "identity/oidc/assignment/a", json!({"entity_ids": ["no-such-entity"]}), "does not exist").await;
    ok(c, "POST", "identity/oidc/assignment/a", json!({"entity_ids": [entity]})).await;
    assert_eq!(
        ok(c, "GET", "identity/oidc/assignment/allow_all", Value::Null).await["data"],
        json!({"entity_ids": ["*"], "group_ids": ["*"]})
    );
    refused(
        c,
        "POST",
        "identity/oidc/client/c",
        json!({"assignments": ["nope"]}),
        "assignment \"nope\" does not exist",
    )
    .await;
    refused(c, "POST", "identity/oidc/client/c", json!({"key": "nope"}), "key \"nope\" does not exist").await;
    refused(c, "POST", "identity/oidc/client/c", json!({"client_type": "odd"}), "invalid client_type").await;
    refused(c, "POST", "identity/oidc/client/c", json!({"client_credentials": true}), "client_credentials").await;
    ok(c, "POST", "identity/oidc/key/pk", json!({"algorithm": "ES256"})).await;
    ok(
        c,
        "POST",
        "identity/oidc/client/c",
        json!({"assignments": ["a"], "redirect_uris": ["http://x/cb"], "key": "pk", "id_token_ttl": "30m"}),
    )
    .await;
    let cl = ok(c, "GET", "identity/oidc/client/c", Value::Null).await["data"].clone();
    assert_eq!(cl["client_type"], "confidential");
    assert_eq!(cl["client_id"].as_str().unwrap().len(), 32);
    assert!(cl["client_secret"].as_str().unwrap().starts_with("hvo_secret_"), "{cl}");
    assert_eq!((cl["id_token_ttl"].as_i64(), cl["access_token_ttl"].as_i64()), (Some(1800), Some(86400)));
    refused(c, "POST", "identity/oidc/client/c", json!({"client_type": "public"}), "client_type modification").await;
    refused(c, "POST", "identity/oidc/client/c", json!({"key": "default"}), "key modification").await;
    ok(c, "POST", "identity/oidc/client/pub", json!({"client_type": "public"})).await;
    assert!(ok(c, "GET", "identity/oidc/client/pub", Value::Null).await["data"].get("client_secret").is_none());
    refused(
        c,
        "POST",
        "identity/oidc/provider/p",
        json!({"scopes_supported": ["nope"]}),
        "scope \"nope\" does not exist",
    )
    .await;
    refused(c, "POST", "identity/oidc/provider/p", json!({"issuer": "http://x/y"}), "invalid issuer").await;
    ok(c, "POST", "identity/oidc/provider/p", json!({"scopes_supported": ["s"], "issuer": "https://idp.example:8200"}))
        .await;
    assert_eq!(
        ok(c, "GET", "identity/oidc/provider/p", Value::Null).await["data"],
        json!({"allowed_client_ids": [], "issuer": "https://idp.example:8200/v1/identity/oidc/provider/p", "scopes_supported": ["s"]})
    );
    let l = ok(c, "LIST", "identity/oidc/provider", Value::Null).await;
    assert_eq!(l["data"]["keys"], json!(["default", "p"]));
    // In use: refused.
    refused(c, "DELETE", "identity/oidc/scope/s", Value::Null, "referenced by these providers: p").await;
    refused(c, "DELETE", "identity/oidc/assignment/a", Value::Null, "referenced by these clients: c").await;
    refused(c, "DELETE", "identity/oidc/key/pk", Value::Null, "referenced by these clients: c").await;
    refused(c, "DELETE", "identity/oidc/provider/default", Value::Null, "not allowed").await;
    refused(c, "DELETE", "identity/oidc/assignment/allow_all", Value::Null, "not allowed").await;
    for p in ["client/c", "client/pub", "provider/p", "scope/s", "assignment/a", "key/pk"] {
        ok(c, "DELETE", &format!("identity/oidc/{p}"), Value::Null).await;
    }
    let (st, _) = call_as(c, Some(&c.root_token), "LIST", "identity/oidc/client", Value::Null).await;
    assert_eq!(st, 404);
}

#[tokio::test]
async fn the_authorization_code_flow_with_pkce_over_the_router() {
    let c = &TestCore::new().await;
    let (ut, entity) = user(c).await;
    ok(c, "POST", "identity/oidc/scope/user", json!({"template": "{\"username\": {{identity.entity.name}}}"})).await;
    ok(c, "POST", "identity/oidc/assignment/a", json!({"entity_ids": [entity]})).await;
    ok(
        c,
        "POST",
        "identity/oidc/client/app",
        json!({"assignments": ["a"], "redirect_uris": ["http://app/cb"], "access_token_ttl": "1h"}),
    )
    .await;
    ok(c, "POST", "identity/oidc/client/other", json!({"assignments": [], "redirect_uris": ["http://app/cb"]})).await;
    ok(
        c,
        "POST",
        "identity/oidc/provider/p",
        json!({"allowed_client_ids": ["*"], "scopes_supported": ["user"], "issuer": "https://idp.example"}),
    )
    .await;
    let app = ok(c, "GET", "identity/oidc/client/app", Value::Null).await["data"].clone();
    let other = ok(c, "GET", "identity/oidc/client/other", Value::Null).await["data"].clone();
    let (cid, secret) = (app["client_id"].as_str().unwrap(), app["client_secret"].as_str().unwrap());
    let verifier = "v".repeat(50);
    let challenge = URL_SAFE_NO_PAD.encode(coffer_crypto::sha256(verifier.as_bytes()));
    let q = |client: &str, scope: &str, redirect: &str, rtype: &str| {
        format!(
            "identity/oidc/provider/p/authorize?client_id={client}&scope={scope}&redirect_uri={redirect}&response_type={rtype}&state=st&nonce=n1&code_challenge={challenge}&code_challenge_method=S256"
        )
    };
    let authz = |token: String, path: String| async move { call_as(c, Some(&token), "GET", &path, Value::Null).await };
    let cases = [
        (q(cid, "user", "http://app/cb", "code"), "invalid_request"),
        (q(cid, "openid", "http://evil/cb", "code"), "invalid_redirect_uri"),
        (q(cid, "openid", "http://app/cb", "token"), "unsupported_response_type"),
        (q("nope", "openid", "http://app/cb", "code"), "invalid_client_id"),
        (q(other["client_id"].as_str().unwrap(), "openid", "http://app/cb", "code"), "access_denied"),
    ];
    for (path, error) in cases {
        let (st, v) = authz(ut.clone(), path.clone()).await;
        assert_eq!((st, v["error"].as_str(), v["state"].as_str()), (400, Some(error), Some("st")), "{path}: {v}");
    }
    // The root token has no entity.
    let (st, v) = authz(c.root_token.clone(), q(cid, "openid", "http://app/cb", "code")).await;
    assert_eq!((st, v["error"].as_str()), (400, Some("access_denied")), "{v}");
    // The default policy lets any token authorize.
    let (st, v) = authz(ut.clone(), q(cid, "openid+user", "http://app/cb", "code")).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["state"], "st");
    let code = v["code"].as_str().unwrap().to_string();

    // The token endpoint: no Coffer token, client_secret_basic.
    let basic = format!("Basic {}", STANDARD.encode(format!("{cid}:{secret}")));
    let form = |code: &str, verifier: &str| {
        format!("grant_type=authorization_code&code={code}&redirect_uri=http%3A%2F%2Fapp%2Fcb&code_verifier={verifier}")
    };
    let ct = ("Content-Type", "application/x-www-form-urlencoded");
    let r = c.send("POST", "/v1/identity/oidc/provider/p/token", &[ct], form(&code, &verifier)).await;
    assert_eq!((r.status, r.json()["error"].as_str()), (400, Some("invalid_request")), "no client: {}", r.body);
    let bad = format!("Basic {}", STANDARD.encode(format!("{cid}:wrong")));
    let r = c
        .send("POST", "/v1/identity/oidc/provider/p/token", &[ct, ("Authorization", &bad)], form(&code, &verifier))
        .await;
    assert_eq!((r.status, r.json()["error"].as_str()), (401, Some("invalid_client")), "{}", r.body);
    let r = c
        .send("POST", "/v1/identity/oidc/provider/p/token", &[ct, ("Authorization", &basic)], form(&code, &verifier))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let t = r.json();
    assert_eq!((t["token_type"].as_str(), t["expires_in"].as_i64()), (Some("Bearer"), Some(3600)));
    let idt = part(t["id_token"].as_str().unwrap(), 1);
    assert_eq!(idt["iss"], "https://idp.example/v1/identity/oidc/provider/p");
    assert_eq!(
        (idt["aud"].as_str(), idt["sub"].as_str(), idt["nonce"].as_str()),
        (Some(cid), Some(entity.as_str()), Some("n1"))
    );
    assert!(idt["username"].is_string() && idt["at_hash"].is_string() && idt["c_hash"].is_string(), "{idt}");
    // Spent.
    let r = c
        .send("POST", "/v1/identity/oidc/provider/p/token", &[ct, ("Authorization", &basic)], form(&code, &verifier))
        .await;
    assert_eq!((r.status, r.json()["error"].as_str()), (400, Some("invalid_grant")), "{}", r.body);
    // A wrong verifier fails and spends the code too.
    let (_, v) = authz(ut.clone(), q(cid, "openid", "http://app/cb", "code")).await;
    let code2 = v["code"].as_str().unwrap().to_string();
    let r = c
        .send(
            "POST",
            "/v1/identity/oidc/provider/p/token",
            &[ct, ("Authorization", &basic)],
            form(&code2, &"w".repeat(50)),
        )
        .await;
    assert_eq!(r.json()["error_description"], "invalid code_verifier for token exchange", "{}", r.body);
    let r = c
        .send("POST", "/v1/identity/oidc/provider/p/token", &[ct, ("Authorization", &basic)], form(&code2, &verifier))
        .await;
    assert_eq!(r.json()["error"], "invalid_grant", "{}", r.body);

    // userinfo with the access token.
    let at = format!("Bearer {}", t["access_token"].as_str().unwrap());
    for method in ["GET", "POST"] {
        let r = c.send(method, "/v1/identity/oidc/provider/p/userinfo", &[("Authorization", &at)], Vec::new()).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.json()["sub"], entity.as_str());
        assert_eq!(r.json()["username"], idt["username"]);
    }
    let r = c.send("GET", "/v1/identity/oidc/provider/default/userinfo", &[("Authorization", &at)], Vec::new()).await;
    assert_eq!((r.status, r.json()["error"].as_str()), (401, Some("invalid_token")), "another provider: {}", r.body);
    let r = c.send("GET", "/v1/identity/oidc/provider/p/userinfo", &[], Vec::new()).await;
    assert_eq!(r.status, 401, "{}", r.body);
    // The access token is no Coffer token.
    let (st, _) =
        call_as(c, Some(t["access_token"].as_str().unwrap()), "GET", "auth/token/lookup-self", Value::Null).await;
    assert_eq!(st, 403);

    // A client whose key does not list it gets a code but no tokens.
    ok(c, "POST", "identity/oidc/key/closed", json!({"algorithm": "ES256"})).await;
    ok(
        c,
        "POST",
        "identity/oidc/client/closed",
        json!({"key": "closed", "assignments": ["allow_all"], "redirect_uris": ["http://app/cb"]}),
    )
    .await;
    let closed = ok(c, "GET", "identity/oidc/client/closed", Value::Null).await["data"].clone();
    let ccid = closed["client_id"].as_str().unwrap();
    let (st, v) = authz(ut.clone(), format!("identity/oidc/provider/p/authorize?client_id={ccid}&scope=openid&redirect_uri=http://app/cb&response_type=code")).await;
    assert_eq!((st, v["state"].as_str()), (200, Some("")), "{v}");
    let cb = format!("Basic {}", STANDARD.encode(format!("{ccid}:{}", closed["client_secret"].as_str().unwrap())));
    let f = format!(
        "grant_type=authorization_code&code={}&redirect_uri=http%3A%2F%2Fapp%2Fcb",
        v["code"].as_str().unwrap()
    );
    let r = c.send("POST", "/v1/identity/oidc/provider/p/token", &[ct, ("Authorization", &cb)], f).await;
    assert_eq!(
        (r.status, r.json()["error_description"].as_str()),
        (401, Some("client is not authorized to use the key")),
        "{}",
        r.body
    );

    // Discovery.
    let (st, d) =
        call_as(c, None, "GET", "identity/oidc/provider/p/.well-known/openid-configuration", Value::Null).await;
    assert_eq!(st, 200);
    assert_eq!(d["token_endpoint"], "https://idp.example/v1/identity/oidc/provider/p/token");
    assert_eq!(d["authorization_endpoint"], "https://idp.example/ui/vault/identity/oidc/provider/p/authorize");
    assert_eq!(d["scopes_supported"], json!(["user", "openid"]));
    assert!(!kids(c, "identity/oidc/provider/p/.well-known/keys").await.is_empty());
}

#[tokio::test]
async fn only_the_discovery_token_and_userinfo_paths_are_open() {
    let c = &TestCore::new().await;
    for path in [
        "identity/oidc/.well-known/openid-configuration",
        "identity/oidc/.well-known/keys",
        "identity/oidc/provider/default/.well-known/openid-configuration",
        "identity/oidc/provider/default/.well-known/keys",
    ] {
        let (st, v) = call_as(c, None, "GET", path, Value::Null).await;
        assert_eq!(st, 200, "{path}: {v}");
    }
    for (method, path) in [
        ("GET", "identity/oidc/key/default"),
        ("GET", "identity/oidc/config"),
        ("GET", "identity/oidc/token/r"),
        ("POST", "identity/oidc/introspect"),
        ("GET", "identity/oidc/provider/default/authorize"),
    ] {
        let (st, _) = call_as(c, None, method, path, Value::Null).await;
        assert_eq!(st, 403, "{method} {path} without a token");
    }
    let (st, v) = call_as(c, None, "POST", "identity/oidc/provider/default/token", json!({})).await;
    assert_eq!((st, v["error"].as_str()), (400, Some("invalid_request")), "{v}");
}
