//! Token and mount answers as OpenBao gives them, in-process through the full router: warnings
//! for ignored parameters, missing policies and capped TTLs; the fields of a token role read;
//! renewal without an increment; mount tuning (KV upgrades, listing_visibility) and password
//! policy answers. (Access control through the real `bao` CLI: crates/coffer/tests/e2e_access.rs.)
use coffer_testing::{json, TestCore};

/// One request as root; returns (status, JSON body or null).
async fn call(c: &TestCore, method: &str, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
    let b = if body.is_null() { Vec::new() } else { body.to_string().into_bytes() };
    let (st, text) = c.http(method, &format!("/v1/{path}"), &[("X-Vault-Token", "root")], &b).await;
    (st, if text.trim().is_empty() { serde_json::Value::Null } else { json(&text) })
}

#[tokio::test]
async fn token_create_warns_about_ignored_parameters_missing_policies_and_a_capped_default_ttl() {
    let s = &TestCore::new().await;
    call(
        s,
        "PUT",
        "sys/policies/acl/p-read",
        serde_json::json!({"policy": "path \"x/*\" { capabilities = [\"read\"] }"}),
    )
    .await;
    let (st, r) = call(
        s,
        "POST",
        "auth/token/create",
        serde_json::json!({"policies": ["p-read", "zz", "nope"], "zeta": 1, "alpha": 2}),
    )
    .await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(
        r["warnings"],
        serde_json::json!([
            "Policy \"nope\" does not exist",
            "Policy \"zz\" does not exist",
            "Endpoint ignored these unrecognized parameters: [alpha zeta]"
        ])
    );
    let (_, r) =
        call(s, "POST", "auth/token/create", serde_json::json!({"policies": ["p-read"], "explicit_max_ttl": "1.5h"}))
            .await;
    assert_eq!(
        r["warnings"],
        serde_json::json!([
            "TTL of \"768h\" exceeded the effective max_ttl of \"1h30m\"; TTL value is capped accordingly"
        ])
    );
    assert_eq!(r["auth"]["lease_duration"], 5400);
    // A lookup with an unknown query parameter names it too; a 204 answer carries nothing.
    let (_, r) = call(s, "GET", "auth/token/lookup-self?foo=1", serde_json::Value::Null).await;
    assert_eq!(r["warnings"], serde_json::json!(["Endpoint ignored these unrecognized parameters: [foo]"]));
    let (st, _) = call(s, "POST", "auth/token/roles/r1", serde_json::json!({"foo": 1})).await;
    assert_eq!(st, 204);
    // And a builtin backend through the SDK's path table (transit key creation).
    call(s, "POST", "sys/mounts/transit", serde_json::json!({"type": "transit"})).await;
    let (_, r) = call(s, "POST", "transit/keys/k1", serde_json::json!({"foo": 1})).await;
    assert_eq!(r["warnings"], serde_json::json!(["Endpoint ignored these unrecognized parameters: [foo]"]));
    // renewable given as null reads as false, as in OpenBao.
    let (_, r) =
        call(s, "POST", "auth/token/create", serde_json::json!({"policies": ["p-read"], "renewable": null})).await;
    assert_eq!(r["auth"]["renewable"], false);
}

#[tokio::test]
async fn token_role_reads_show_the_fields_openbao_shows() {
    let s = &TestCore::new().await;
    call(s, "POST", "auth/token/roles/r1", serde_json::json!({"allowed_policies": "a"})).await;
    let (_, r) = call(s, "GET", "auth/token/roles/r1", serde_json::Value::Null).await;
    let d = r["data"].as_object().unwrap();
    let mut keys: Vec<&str> = d.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "allowed_entity_aliases",
            "allowed_policies",
            "allowed_policies_glob",
            "disallowed_policies",
            "disallowed_policies_glob",
            "explicit_max_ttl",
            "name",
            "orphan",
            "path_suffix",
            "period",
            "renewable",
            "token_explicit_max_ttl",
            "token_no_default_policy",
            "token_period",
            "token_type"
        ]
    );
    assert_eq!(d["allowed_entity_aliases"], serde_json::Value::Null);
    assert_eq!(d["token_type"], "default-service");
    // token_period is not the deprecated period; period shows only what was given as period.
    call(
        s,
        "POST",
        "auth/token/roles/r2",
        serde_json::json!({"token_period": "1h", "allowed_entity_aliases": [], "token_bound_cidrs": "10.0.0.0/8"}),
    )
    .await;
    let (_, r) = call(s, "GET", "auth/token/roles/r2", serde_json::Value::Null).await;
    assert_eq!(
        (r["data"]["period"].clone(), r["data"]["token_period"].clone()),
        (serde_json::json!(0), serde_json::json!(3600))
    );
    assert_eq!(r["data"]["allowed_entity_aliases"], serde_json::json!([]));
    assert_eq!(r["data"]["token_bound_cidrs"], serde_json::json!(["10.0.0.0/8"]));
    call(s, "POST", "auth/token/roles/r3", serde_json::json!({"period": "1h", "explicit_max_ttl": "2h"})).await;
    let (_, r) = call(s, "GET", "auth/token/roles/r3", serde_json::Value::Null).await;
    for k in ["period", "token_period"] {
        assert_eq!(r["data"][k], 3600, "{k}");
    }
    for k in ["explicit_max_ttl", "token_explicit_max_ttl"] {
        assert_eq!(r["data"][k], 7200, "{k}");
    }
    call(s, "POST", "auth/token/roles/r3", serde_json::json!({"token_period": "2h"})).await;
    let (_, r) = call(s, "GET", "auth/token/roles/r3", serde_json::Value::Null).await;
    assert_eq!(
        (r["data"]["period"].clone(), r["data"]["token_period"].clone()),
        (serde_json::json!(0), serde_json::json!(7200))
    );
}

#[tokio::test]
async fn token_renewal_without_increment_asks_for_the_earlier_increment_again() {
    let s = &TestCore::new().await;
    let (_, r) = call(s, "POST", "auth/token/create", serde_json::json!({"policies": ["default"], "ttl": "1h"})).await;
    let (t, acc) =
        (r["auth"]["client_token"].as_str().unwrap().to_string(), r["auth"]["accessor"].as_str().unwrap().to_string());
    let (_, r) = call(s, "POST", "auth/token/renew", serde_json::json!({"token": t, "increment": "30m"})).await;
    assert_eq!(r["auth"]["lease_duration"], 1800);
    let (_, r) = call(s, "POST", "auth/token/renew", serde_json::json!({"token": t})).await;
    assert_eq!(r["auth"]["lease_duration"], 1800, "{r}");
    let (_, r) = call(s, "POST", "auth/token/renew-accessor", serde_json::json!({"accessor": acc})).await;
    assert_eq!(r["auth"]["lease_duration"], 1800, "{r}");
    let (_, r) = call(s, "POST", "auth/token/renew", serde_json::json!({"token": t, "increment": "40m"})).await;
    assert_eq!(r["auth"]["lease_duration"], 2400);
}

#[tokio::test]
async fn mount_tuning_and_password_policy_answers_read_as_openbao_does() {
    let s = &TestCore::new().await;
    let (st, r) = call(s, "GET", "sys/policies/password/nope", serde_json::Value::Null).await;
    assert_eq!((st, r["errors"].clone()), (404, serde_json::json!(["policy does not exist"])));
    call(s, "POST", "sys/mounts/upg", serde_json::json!({"type": "kv", "options": {"version": "1"}})).await;
    let (st, r) = call(s, "POST", "sys/mounts/upg/tune", serde_json::json!({"options": {"version": "2"}})).await;
    assert_eq!(st, 200, "{r}");
    assert!(r["warnings"][0].as_str().unwrap().starts_with("Upgrading mount from version 1 to version 2."), "{r}");
    let (st, _) = call(s, "POST", "sys/mounts/upg/tune", serde_json::json!({"options": {"version": "2"}})).await;
    assert_eq!(st, 204, "the same version is no upgrade");
    let (st, r) = call(s, "POST", "sys/mounts/upg/tune", serde_json::json!({"options": {"version": "1"}})).await;
    assert_eq!((st, r["errors"].clone()), (400, serde_json::json!(["cannot downgrade mount from version 2"])));
    // listing_visibility: null resets it, and a tune read shows it only when set.
    call(s, "POST", "sys/mounts/upg/tune", serde_json::json!({"listing_visibility": "hidden"})).await;
    let (_, r) = call(s, "GET", "sys/mounts/upg/tune", serde_json::Value::Null).await;
    assert_eq!(r["data"]["listing_visibility"], "hidden");
    call(s, "POST", "sys/mounts/upg/tune", serde_json::json!({"listing_visibility": null})).await;
    let (_, r) = call(s, "GET", "sys/mounts/upg/tune", serde_json::Value::Null).await;
    assert!(r["data"].get("listing_visibility").is_none(), "{r}");
    let (_, r) = call(s, "GET", "sys/auth/token/tune", serde_json::Value::Null).await;
    assert!(r["data"].get("listing_visibility").is_none(), "{r}");
    let (_, r) = call(s, "GET", "sys/mounts/sys/tune", serde_json::Value::Null).await;
    assert_eq!(r["data"]["passthrough_request_headers"], serde_json::json!(["Accept"]));
}

#[tokio::test]
async fn mounts_of_the_wrong_kind_or_of_the_cores_own_trees_are_refused_as_openbao_refuses_them() {
    let s = &TestCore::new().await;
    // (path, body, message) as OpenBao 2.x answers them, all 400.
    let cases = [
        ("sys/mounts/up", "userpass", "plugin not found in the catalog: userpass"),
        ("sys/mounts/ar", "approle", "plugin not found in the catalog: approle"),
        ("sys/auth/kv", "kv", "plugin not found in the catalog: kv"),
        ("sys/auth/tr", "transit", "plugin not found in the catalog: transit"),
        ("sys/mounts/system", "system", "mount type of \"system\" is not mountable"),
        ("sys/mounts/token2", "token", "mount type of \"token\" is not mountable"),
        ("sys/mounts/identity2", "identity", "mount type of \"identity\" is not mountable"),
        ("sys/mounts/cub2", "cubbyhole", "mount type of \"cubbyhole\" is not mountable"),
        ("sys/auth/system2", "system", "plugin not found in the catalog: system"),
        ("sys/auth/cub2", "cubbyhole", "plugin not found in the catalog: cubbyhole"),
        ("sys/auth/token2", "token", "token credential backend cannot be instantiated"),
    ];
    for (path, ty, msg) in cases {
        let (st, r) = call(s, "POST", path, serde_json::json!({ "type": ty })).await;
        assert_eq!((st, r["errors"][0].as_str()), (400, Some(msg)), "{path} type={ty}: {r}");
    }
    // The right kinds still mount.
    for (path, ty) in [("sys/mounts/kv1", "kv"), ("sys/mounts/kv2", "kv-v2"), ("sys/auth/up", "userpass")] {
        let (st, r) = call(s, "POST", path, serde_json::json!({ "type": ty })).await;
        assert_eq!(st, 204, "{path} type={ty}: {r}");
    }
}

#[tokio::test]
async fn token_metadata_takes_pairs_as_openbao_takes_them() {
    let s = &TestCore::new().await;
    // A map, `k=v` text (values trimmed) or a list of `k=v`; blank text or a pair without `=`
    // is refused with OpenBao's words.
    for (meta, want) in [
        (serde_json::json!({"a": "b"}), serde_json::json!({"a": "b"})),
        (serde_json::json!("a= b , c=d"), serde_json::json!({"a": "b", "c": "d"})),
        (serde_json::json!(["a=b"]), serde_json::json!({"a": "b"})),
    ] {
        let (st, r) = call(s, "POST", "auth/token/create", serde_json::json!({ "meta": meta })).await;
        assert_eq!((st, &r["auth"]["metadata"]), (200, &want), "{meta}: {r}");
    }
    for (meta, index) in [(serde_json::json!(""), 0), (serde_json::json!("a=b,novalue"), 1), (serde_json::json!(3), 0)]
    {
        let (st, r) = call(s, "POST", "auth/token/create", serde_json::json!({ "meta": meta })).await;
        assert_eq!(st, 400, "{meta}: {r}");
        assert_eq!(
            r["errors"][0],
            format!(
                "Field validation failed: error converting input for field \"meta\": invalid key pair at index {index} \
                 in field \"meta\""
            ),
            "{meta}"
        );
    }
}
