//! The system backend and token roles read their rows' coerced fields, as OpenBao's framework
//! serves its paths (observed on `bao server -dev` 2.x): a parameter a row does not declare is
//! named in a warning on an answer with a body and not acted on; a declared one of the wrong
//! type is a 400 whatever the operation; raw answers (seal status, init, metrics) and empty
//! (204) or 202 answers carry no such warning.
use coffer_testing::{json, TestCore};
use serde_json::{json as j, Value};

const IGNORED: &str = "Endpoint ignored these unrecognized parameters: [bogus]";

/// One request as root; returns (status, JSON body or null).
async fn call(c: &TestCore, method: &str, path: &str, body: Value) -> (u16, Value) {
    let b = if body.is_null() { Vec::new() } else { body.to_string().into_bytes() };
    let (st, text) = c.http(method, &format!("/v1/{path}"), &[("X-Vault-Token", "root")], &b).await;
    (st, if text.trim().is_empty() { Value::Null } else { json(&text) })
}

fn warnings(body: &Value) -> Vec<String> {
    body["warnings"].as_array().into_iter().flatten().filter_map(Value::as_str).map(String::from).collect()
}

#[tokio::test]
async fn sys_answers_with_a_body_name_the_parameters_their_row_does_not_declare() {
    let c = &TestCore::new().await;
    for path in [
        "sys/mounts?bogus=1",
        "sys/mounts/secret?bogus=1",
        "sys/mounts/secret/tune?bogus=1",
        "sys/auth?bogus=1",
        "sys/policies/acl/default?bogus=1",
        "sys/key-status?bogus=1",
        "sys/internal/ui/mounts?bogus=1",
        "sys/config/state/sanitized?bogus=1",
    ] {
        let (st, r) = call(c, "GET", path, Value::Null).await;
        assert_eq!(st, 200, "{path}: {r}");
        assert_eq!(warnings(&r), vec![IGNORED], "{path}: {r}");
    }
    for (path, body) in [
        ("sys/tools/random", j!({"bogus": 1})),
        ("sys/tools/hash", j!({"input": "YQ==", "bogus": 1})),
        ("sys/capabilities-self", j!({"paths": ["secret/x"], "bogus": 1})),
    ] {
        let (st, r) = call(c, "POST", path, body).await;
        assert_eq!(st, 200, "{path}: {r}");
        assert_eq!(warnings(&r), vec![IGNORED], "{path}: {r}");
    }
    // Declared parameters are no cause for a warning.
    let (_, r) = call(c, "POST", "sys/tools/random", j!({"bytes": 8, "format": "hex"})).await;
    assert_eq!(r["data"]["random_bytes"].as_str().map(str::len), Some(16), "{r}");
    assert!(warnings(&r).is_empty(), "{r}");
}

#[tokio::test]
async fn raw_empty_and_accepted_sys_answers_carry_no_ignored_parameters_warning() {
    let c = &TestCore::new().await;
    // Raw bodies (no envelope to carry a warning).
    for path in ["sys/seal-status?bogus=1", "sys/init?bogus=1", "sys/leader?bogus=1"] {
        let (st, r) = call(c, "GET", path, Value::Null).await;
        assert_eq!(st, 200, "{path}: {r}");
        assert!(r.get("warnings").is_none(), "{path}: {r}");
    }
    // 204: nothing to add a warning to; the write is still done.
    let (st, r) =
        call(c, "POST", "sys/policies/acl/p1", j!({"policy": "path \"a\" {capabilities=[\"read\"]}", "bogus": 1}))
            .await;
    assert_eq!((st, r), (204, Value::Null));
    // 202, as OpenBao answers its background tidy.
    let (st, r) = call(c, "POST", "sys/leases/tidy", j!({"bogus": 1})).await;
    assert_eq!(st, 202, "{r}");
    assert!(!warnings(&r).iter().any(|w| w == IGNORED), "{r}");
}

#[tokio::test]
async fn a_declared_sys_parameter_of_the_wrong_type_is_refused_whatever_the_operation() {
    let c = &TestCore::new().await;
    for (method, path, body) in [
        ("GET", "sys/mounts/secret?local=notbool", Value::Null),
        ("POST", "sys/rotate/config", j!({"enabled": "notbool"})),
        ("POST", "sys/rotate/config", j!({"interval": "soon"})),
        ("POST", "sys/tools/random", j!({"bytes": "many"})),
        ("POST", "sys/policies/acl/p2", j!({"policy": "path \"a\" {capabilities=[\"read\"]}", "cas": "x"})),
    ] {
        let (st, r) = call(c, method, path, body).await;
        assert_eq!(st, 400, "{method} {path}: {r}");
    }
    // Nothing was changed by the refused write.
    assert_eq!(call(c, "GET", "sys/policies/acl/p2", Value::Null).await.0, 404);
}

#[tokio::test]
async fn mount_tune_ttls_are_text_as_openbao_types_them_and_a_null_listing_visibility_unsets() {
    let c = &TestCore::new().await;
    let tune = "sys/mounts/secret/tune";
    assert_eq!(call(c, "POST", tune, j!({"default_lease_ttl": "1h", "max_lease_ttl": 7200})).await.0, 204);
    let (_, r) = call(c, "GET", tune, Value::Null).await;
    assert_eq!((r["data"]["default_lease_ttl"].clone(), r["data"]["max_lease_ttl"].clone()), (j!(3600), j!(7200)));
    // "system" goes back to the server's values.
    assert_eq!(call(c, "POST", tune, j!({"default_lease_ttl": "system", "max_lease_ttl": "system"})).await.0, 204);
    let (_, r) = call(c, "GET", tune, Value::Null).await;
    assert_ne!(r["data"]["max_lease_ttl"], j!(7200), "{r}");
    assert_eq!(call(c, "POST", tune, j!({"listing_visibility": "unauth"})).await.0, 204);
    assert_eq!(call(c, "GET", tune, Value::Null).await.1["data"]["listing_visibility"], "unauth");
    assert_eq!(call(c, "POST", tune, j!({"listing_visibility": null})).await.0, 204);
    assert!(call(c, "GET", tune, Value::Null).await.1["data"].get("listing_visibility").is_none());
}

#[tokio::test]
async fn a_token_role_write_does_not_act_on_the_token_fields_its_row_does_not_declare() {
    let c = &TestCore::new().await;
    // OpenBao's token roles take no token_ttl, token_max_ttl, token_policies (nor their
    // old names ttl, max_ttl, policies) and no token_strictly_bind_ip.
    let (st, r) = call(
        c,
        "POST",
        "auth/token/roles/r1",
        j!({"token_ttl": "1h", "token_max_ttl": "2h", "token_policies": "extra", "policies": "other",
            "token_strictly_bind_ip": true, "orphan": true}),
    )
    .await;
    assert_eq!((st, r), (204, Value::Null));
    let (st, r) = call(c, "POST", "auth/token/create/r1", j!({"policies": ["default"]})).await;
    assert_eq!(st, 200, "{r}");
    let auth = &r["auth"];
    assert_eq!(auth["policies"], j!(["default"]), "{r}");
    assert_ne!(auth["lease_duration"], j!(3600), "token_ttl acted on: {r}");
    // The declared field of the same write was acted on.
    assert_eq!(auth["orphan"], true, "{r}");
}

#[tokio::test]
async fn a_token_role_write_warns_when_a_deprecated_name_comes_with_its_new_one() {
    let c = &TestCore::new().await;
    let (st, r) = call(
        c,
        "POST",
        "auth/token/roles/r2",
        j!({"token_period": "1h", "period": "2h", "token_bound_cidrs": "10.0.0.0/8", "bound_cidrs": "10.1.0.0/16",
            "token_explicit_max_ttl": "1h", "explicit_max_ttl": "2h", "bogus": 1}),
    )
    .await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(
        warnings(&r),
        vec![
            "Both 'token_period' and deprecated 'period' value supplied, ignoring the deprecated value",
            "Both 'token_bound_cidrs' and deprecated 'bound_cidrs' value supplied, ignoring the deprecated value",
            "Both 'token_explicit_max_ttl' and deprecated 'explicit_max_ttl' value supplied, ignoring the deprecated \
             value",
            IGNORED,
        ]
    );
    let (_, r) = call(c, "GET", "auth/token/roles/r2", Value::Null).await;
    let d = &r["data"];
    assert_eq!((d["token_period"].clone(), d["token_explicit_max_ttl"].clone()), (j!(3600), j!(3600)), "{r}");
    assert_eq!(d["token_bound_cidrs"], j!(["10.0.0.0/8"]), "{r}");
    assert!(d.get("bound_cidrs").is_none(), "{r}");
    // Given under the old name alone, it shows under both (and a use limit shows once set).
    call(c, "POST", "auth/token/roles/r3", j!({"bound_cidrs": "10.1.0.0/16", "token_num_uses": 3})).await;
    let (_, r) = call(c, "GET", "auth/token/roles/r3", Value::Null).await;
    assert_eq!((r["data"]["bound_cidrs"].clone(), r["data"]["token_num_uses"].clone()), (j!(["10.1.0.0/16"]), j!(3)));
}

#[tokio::test]
async fn token_answers_name_ignored_parameters_on_early_answers_but_not_on_the_tidy_202() {
    let c = &TestCore::new().await;
    let (st, r) = call(c, "POST", "auth/token/revoke-accessor", j!({"accessor": "nope", "bogus": 1})).await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(warnings(&r), vec!["No token found with this accessor", IGNORED]);
    let (st, r) = call(c, "POST", "auth/token/lookup", j!({"bogus": 1})).await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(warnings(&r), vec![IGNORED], "looking up the caller's own token: {r}");
    let (st, r) = call(c, "POST", "auth/token/tidy", j!({"bogus": 1})).await;
    assert_eq!(st, 202, "{r}");
    assert!(!warnings(&r).iter().any(|w| w == IGNORED), "{r}");
}

#[tokio::test]
async fn identity_oidc_answers_name_the_parameters_their_row_does_not_declare() {
    let c = &TestCore::new().await;
    assert_eq!(call(c, "POST", "identity/oidc/key/k1", j!({"bogus": 1})).await.0, 204);
    for path in ["identity/oidc/config?bogus=1", "identity/oidc/key/k1?bogus=1"] {
        let (st, r) = call(c, "GET", path, Value::Null).await;
        assert_eq!(st, 200, "{path}: {r}");
        assert_eq!(warnings(&r), vec![IGNORED], "{path}: {r}");
    }
}
