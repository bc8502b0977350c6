//! The identity API in-process, through the full router: what OpenBao 2.7.2 answered when the
//! same requests were sent to it (recorded in docs/reference/openbao-observed.md §17) — group
//! types and group aliases, membership cycles, entity merges that either fully happen or leave
//! everything as it was, batch deletes, lookups, and templated policies following a token's
//! entity from one request to the next. (hvac drives the same API against both servers in
//! crates/coffer/tests/client_libraries.rs; templated ACL statuses are in the differential
//! corpus, tests/acl-corpus.)
use coffer_testing::TestCore;
use serde_json::{json, Value};

async fn call(c: &TestCore, method: &str, path: &str, body: Value) -> (u16, Value) {
    let r = c.request(method, path, Some("root"), (!body.is_null()).then_some(&body)).await;
    let v = if r.body.trim().is_empty() { Value::Null } else { r.json() };
    (r.status, v)
}

async fn ok(c: &TestCore, method: &str, path: &str, body: Value) -> Value {
    let (st, v) = call(c, method, path, body).await;
    assert!(st == 200 || st == 204, "{method} {path}: {st} {v}");
    v
}

async fn refused(c: &TestCore, path: &str, body: Value, needle: &str) {
    let (st, v) = call(c, "POST", path, body).await;
    assert_eq!(st, 400, "{path}: {v}");
    assert!(v["errors"][0].as_str().unwrap_or("").contains(needle), "{path}: {v}");
}

fn sorted(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = serde_json::from_value(v.clone()).unwrap_or_default();
    out.sort();
    out
}

async fn userpass(c: &TestCore, path: &str) -> String {
    ok(c, "POST", &format!("sys/auth/{path}"), json!({"type": "userpass"})).await;
    let v = ok(c, "GET", "sys/auth", Value::Null).await;
    v["data"][format!("{path}/")]["accessor"].as_str().expect("accessor").to_string()
}

async fn login(c: &TestCore, mount: &str, user: &str) -> String {
    let r = c.request("POST", &format!("auth/{mount}/login/{user}"), None, Some(&json!({"password": "pw"}))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["auth"]["client_token"].as_str().expect("token").to_string()
}

#[tokio::test]
async fn external_groups_take_one_alias_and_internal_groups_none() {
    let c = &TestCore::new().await;
    let acc = userpass(c, "up").await;
    let ext = ok(c, "POST", "identity/group", json!({"name": "ext", "type": "external", "policies": ["gp"]})).await;
    let ext_id = ext["data"]["id"].as_str().unwrap().to_string();
    let int = ok(c, "POST", "identity/group", json!({"name": "int"})).await;
    let int_id = int["data"]["id"].as_str().unwrap().to_string();
    let a =
        ok(c, "POST", "identity/group-alias", json!({"name": "eng", "mount_accessor": acc, "canonical_id": ext_id}))
            .await;
    let alias_id = a["data"]["id"].as_str().unwrap().to_string();
    assert_eq!(a["data"]["canonical_id"], ext_id.as_str());
    refused(c, "identity/group-alias", json!({"name": "eng", "mount_accessor": acc}), "already in use").await;
    refused(c, "identity/group-alias", json!({"name": "x", "mount_accessor": acc, "canonical_id": int_id}), "external")
        .await;
    refused(c, "identity/group-alias", json!({"name": "x", "mount_accessor": "nope"}), "invalid mount accessor").await;
    refused(c, "identity/group", json!({"name": "ext", "type": "internal"}), "cannot be changed").await;
    refused(c, "identity/group/name/int", json!({"type": "external"}), "cannot be changed").await;
    refused(c, "identity/group/name/new", json!({"type": "bogus"}), "invalid group type").await;
    refused(c, "identity/group", json!({"name": "ext2", "type": "external", "member_entity_ids": ["x"]}), "external")
        .await;
    // Read shapes: the group shows its alias; lookups find it by alias name or id.
    let g = ok(c, "GET", "identity/group/name/ext", Value::Null).await;
    assert_eq!(g["data"]["type"], "external");
    assert_eq!(g["data"]["alias"]["id"], alias_id.as_str());
    assert_eq!(g["data"]["alias"]["mount_path"], "auth/up/");
    for q in [json!({"alias_name": "eng", "alias_mount_accessor": acc}), json!({"alias_id": alias_id})] {
        let l = ok(c, "POST", "identity/lookup/group", q).await;
        assert_eq!(l["data"]["id"], ext_id.as_str());
    }
    let (st, _) = call(c, "POST", "identity/lookup/group", json!({"name": "nope"})).await;
    assert_eq!(st, 204);
    refused(c, "identity/lookup/group", json!({}), "missing").await;
    // A second alias replaces the first; an alias without a group gets a new external group.
    ok(c, "POST", "identity/group-alias", json!({"name": "eng2", "mount_accessor": acc, "canonical_id": ext_id})).await;
    let (st, _) = call(c, "GET", &format!("identity/group-alias/id/{alias_id}"), Value::Null).await;
    assert_eq!(st, 404, "the replaced alias is gone");
    let fresh = ok(c, "POST", "identity/group-alias", json!({"name": "ops", "mount_accessor": acc})).await;
    let fresh_group = fresh["data"]["canonical_id"].as_str().unwrap().to_string();
    let g = ok(c, "GET", &format!("identity/group/id/{fresh_group}"), Value::Null).await;
    assert_eq!(g["data"]["type"], "external");
    let listed = ok(c, "LIST", "identity/group-alias/id", Value::Null).await;
    assert_eq!(listed["data"]["keys"].as_array().unwrap().len(), 2, "{listed}");
    // Deleting a group deletes its alias.
    ok(c, "DELETE", &format!("identity/group/id/{fresh_group}"), Value::Null).await;
    let listed = ok(c, "LIST", "identity/group-alias/id", Value::Null).await;
    assert_eq!(listed["data"]["keys"].as_array().unwrap().len(), 1, "{listed}");
}

#[tokio::test]
async fn group_membership_refuses_cycles_and_unknown_members_and_inherits_policies() {
    let c = &TestCore::new().await;
    let e = ok(c, "POST", "identity/entity", json!({"name": "e"})).await;
    let eid = e["data"]["id"].as_str().unwrap().to_string();
    let a = ok(c, "POST", "identity/group", json!({"name": "a", "policies": ["pa"], "member_entity_ids": [eid]})).await;
    let a_id = a["data"]["id"].as_str().unwrap().to_string();
    let b = ok(c, "POST", "identity/group", json!({"name": "b", "policies": ["pb"], "member_group_ids": [a_id]})).await;
    let b_id = b["data"]["id"].as_str().unwrap().to_string();
    let cc = ok(c, "POST", "identity/group", json!({"name": "c", "member_group_ids": [b_id]})).await;
    let c_id = cc["data"]["id"].as_str().unwrap().to_string();
    refused(c, "identity/group/name/a", json!({"member_group_ids": [c_id]}), "cyclic relationship").await;
    refused(c, "identity/group/name/a", json!({"member_group_ids": [a_id]}), "cyclic relationship").await;
    refused(c, "identity/group/name/a", json!({"member_group_ids": ["nope"]}), "invalid member group ID").await;
    refused(c, "identity/group/name/a", json!({"member_entity_ids": ["nope"]}), "invalid entity ID").await;
    let ent = ok(c, "GET", &format!("identity/entity/id/{eid}"), Value::Null).await;
    assert_eq!(ent["data"]["direct_group_ids"], json!([a_id]));
    let mut inherited: Vec<String> = serde_json::from_value(ent["data"]["inherited_group_ids"].clone()).unwrap();
    inherited.sort();
    let mut want = vec![b_id.clone(), c_id.clone()];
    want.sort();
    assert_eq!(inherited, want);
    // A token of the entity holds the policies of both groups.
    let acc = userpass(c, "up").await;
    ok(c, "POST", "auth/up/users/u", json!({"password": "pw"})).await;
    ok(c, "POST", "identity/entity-alias", json!({"name": "u", "mount_accessor": acc, "canonical_id": eid})).await;
    let t = login(c, "up", "u").await;
    let r = c.request("GET", "auth/token/lookup-self", Some(&t), None).await;
    assert_eq!(sorted(&r.json()["data"]["identity_policies"]), vec!["pa", "pb"], "{}", r.body);
}

#[tokio::test]
async fn a_refused_merge_changes_nothing_and_an_accepted_one_moves_aliases_groups_and_tokens() {
    let c = &TestCore::new().await;
    let acc = userpass(c, "up").await;
    let mk = |name: &'static str| async move {
        let v = ok(c, "POST", "identity/entity", json!({"name": name, "policies": [format!("{name}-p")]})).await;
        v["data"]["id"].as_str().unwrap().to_string()
    };
    let to = mk("to").await;
    let from = mk("from").await;
    let a_to = ok(c, "POST", "identity/entity-alias", json!({"name": "t", "mount_accessor": acc, "canonical_id": to}))
        .await["data"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    ok(c, "POST", "auth/up/users/f", json!({"password": "pw"})).await;
    let a_from =
        ok(c, "POST", "identity/entity-alias", json!({"name": "f", "mount_accessor": acc, "canonical_id": from})).await
            ["data"]["id"]
            .as_str()
            .unwrap()
            .to_string();
    let g =
        ok(c, "POST", "identity/group", json!({"name": "g", "policies": ["gp"], "member_entity_ids": [from]})).await;
    let g_id = g["data"]["id"].as_str().unwrap().to_string();
    let token_of_from = login(c, "up", "f").await;
    let before_to = ok(c, "GET", &format!("identity/entity/id/{to}"), Value::Null).await;
    let before_from = ok(c, "GET", &format!("identity/entity/id/{from}"), Value::Null).await;
    refused(c, "identity/entity/merge", json!({"from_entity_ids": [from]}), "missing entity id to merge to").await;
    refused(
        c,
        "identity/entity/merge",
        json!({"from_entity_ids": [from], "to_entity_id": "nope"}),
        "merge to is invalid",
    )
    .await;
    refused(c, "identity/entity/merge", json!({"from_entity_ids": [to], "to_entity_id": to}), "should not be present")
        .await;
    refused(
        c,
        "identity/entity/merge",
        json!({"from_entity_ids": [from, "nope"], "to_entity_id": to}),
        "merge from is invalid",
    )
    .await;
    refused(c, "identity/entity/merge", json!({"from_entity_ids": [from], "to_entity_id": to}), "same auth mount")
        .await;
    refused(
        c,
        "identity/entity/merge",
        json!({"from_entity_ids": [from], "to_entity_id": to, "conflicting_alias_ids_to_keep": ["unrelated"]}),
        "same auth mount",
    )
    .await;
    // Nothing moved.
    for (id, before) in [(&to, &before_to), (&from, &before_from)] {
        let now = ok(c, "GET", &format!("identity/entity/id/{id}"), Value::Null).await;
        assert_eq!(now["data"]["aliases"], before["data"]["aliases"]);
        assert_eq!(now["data"]["group_ids"], before["data"]["group_ids"]);
    }
    ok(
        c,
        "POST",
        "identity/entity/merge",
        json!({"from_entity_ids": [from], "to_entity_id": to, "conflicting_alias_ids_to_keep": [a_from], "force": true}),
    )
    .await;
    let merged = ok(c, "GET", &format!("identity/entity/id/{to}"), Value::Null).await;
    let aliases: Vec<&str> =
        merged["data"]["aliases"].as_array().unwrap().iter().map(|a| a["id"].as_str().unwrap()).collect();
    assert_eq!(aliases, vec![a_from.as_str()], "the kept alias moved, the other was dropped");
    assert_eq!(merged["data"]["aliases"][0]["merged_from_canonical_ids"], json!([from]));
    assert_eq!(merged["data"]["merged_entity_ids"], json!([from]));
    assert_eq!(merged["data"]["group_ids"], json!([g_id]));
    let (st, _) = call(c, "GET", &format!("identity/entity/id/{from}"), Value::Null).await;
    assert_eq!(st, 404);
    let (st, _) = call(c, "GET", &format!("identity/entity-alias/id/{a_to}"), Value::Null).await;
    assert_eq!(st, 404);
    // The merged entity's old token now carries the target entity's policies and groups.
    let r = c.request("GET", "auth/token/lookup-self", Some(&token_of_from), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(sorted(&r.json()["data"]["identity_policies"]), vec!["gp", "to-p"], "{}", r.body);
    // A new login through the moved alias lands on the target entity.
    let t = login(c, "up", "f").await;
    let r = c.request("GET", "auth/token/lookup-self", Some(&t), None).await;
    assert_eq!(r.json()["data"]["entity_id"], to.as_str());
}

#[tokio::test]
async fn batch_delete_removes_entities_with_their_aliases_and_skips_unknown_ids() {
    let c = &TestCore::new().await;
    let acc = userpass(c, "up").await;
    let mut ids = Vec::new();
    for n in ["b1", "b2", "b3"] {
        let v = ok(c, "POST", "identity/entity-alias", json!({"name": n, "mount_accessor": acc})).await;
        ids.push(v["data"]["canonical_id"].as_str().unwrap().to_string());
    }
    refused(c, "identity/entity/batch-delete", json!({}), "entity_ids").await;
    ok(c, "POST", "identity/entity/batch-delete", json!({"entity_ids": [ids[0], ids[1], "nope"]})).await;
    let listed = ok(c, "LIST", "identity/entity/id", Value::Null).await;
    assert_eq!(listed["data"]["keys"], json!([ids[2]]));
    let aliases = ok(c, "LIST", "identity/entity-alias/id", Value::Null).await;
    assert_eq!(aliases["data"]["keys"].as_array().unwrap().len(), 1);
    // ?list=true is a LIST.
    let listed = ok(c, "GET", "identity/entity/id?list=true", Value::Null).await;
    assert_eq!(listed["data"]["keys"], json!([ids[2]]));
}

#[tokio::test]
async fn templated_policies_follow_the_tokens_entity_and_never_widen() {
    let c = &TestCore::new().await;
    let acc = userpass(c, "up").await;
    ok(c, "POST", "sys/mounts/kv", json!({"type": "kv"})).await;
    let policy = format!(
        "path \"kv/{{{{identity.entity.name}}}}/*\" {{ capabilities = [\"create\", \"update\", \"read\"] }}\n\
         path \"kv/team/{{{{identity.entity.metadata.team}}}}\" {{ capabilities = [\"read\"] }}\n\
         path \"kv/login/{{{{identity.entity.aliases.{acc}.name}}}}\" {{ capabilities = [\"read\"] }}\n"
    );
    ok(c, "PUT", "sys/policies/acl/tpl", json!({"policy": policy})).await;
    // Unknown parameters and unbalanced braces are refused when the policy is written.
    for bad in [
        "path \"kv/{{identity.entity.bogus}}\" { capabilities = [\"read\"] }",
        "path \"kv/{{identity.entity.name}\" { capabilities = [\"read\"] }",
    ] {
        let (st, v) = call(c, "PUT", "sys/policies/acl/bad", json!({"policy": bad})).await;
        assert_eq!(st, 400, "{v}");
        assert!(v["errors"][0].as_str().unwrap().contains("policy templating"), "{v}");
    }
    ok(c, "POST", "auth/up/users/alice", json!({"password": "pw", "token_policies": ["tpl"]})).await;
    let eid = ok(c, "POST", "identity/entity", json!({"name": "alice-ent", "metadata": {"team": "red"}})).await["data"]
        ["id"]
        .as_str()
        .unwrap()
        .to_string();
    ok(c, "POST", "identity/entity-alias", json!({"name": "alice", "mount_accessor": acc, "canonical_id": eid})).await;
    for p in ["kv/team/red", "kv/team/blue", "kv/login/alice"] {
        ok(c, "PUT", p, json!({"k": "v"})).await;
    }
    let t = login(c, "up", "alice").await;
    let status = |method: &'static str, path: String| {
        let t = t.clone();
        async move {
            let body = json!({"k": "v"});
            c.request(method, &path, Some(&t), (method != "GET").then_some(&body)).await.status
        }
    };
    assert_eq!(status("PUT", "kv/alice-ent/x".into()).await, 204);
    assert_eq!(status("PUT", "kv/bob/x".into()).await, 403);
    assert_eq!(status("GET", "kv/team/red".into()).await, 200);
    assert_eq!(status("GET", "kv/team/blue".into()).await, 403);
    assert_eq!(status("GET", "kv/login/alice".into()).await, 200);
    // The default policy's templated paths: the token reads its own entity, no other.
    assert_eq!(status("GET", format!("identity/entity/id/{eid}")).await, 200);
    assert_eq!(status("GET", "identity/entity/name/alice-ent".into()).await, 200);
    assert_eq!(status("GET", "identity/entity/name/other".into()).await, 403);
    // Metadata and name changes apply to the next request of the same token.
    ok(c, "POST", &format!("identity/entity/id/{eid}"), json!({"metadata": {"team": "blue"}})).await;
    assert_eq!(status("GET", "kv/team/red".into()).await, 403);
    assert_eq!(status("GET", "kv/team/blue".into()).await, 200);
    // A value with glob characters never widens the path: the rule is dropped instead.
    ok(c, "POST", &format!("identity/entity/id/{eid}"), json!({"name": "a*", "metadata": {"team": "+"}})).await;
    assert_eq!(status("PUT", "kv/a*/x".into()).await, 403);
    assert_eq!(status("PUT", "kv/abc/x".into()).await, 403);
    assert_eq!(status("GET", "kv/team/x".into()).await, 403);
    assert_eq!(status("GET", "kv/login/alice".into()).await, 200, "the other templated paths still render");
    // A token without an entity gets nothing from templated paths.
    let plain = c.token(&["tpl"]).await;
    let r = c.request("GET", "kv/team/blue", Some(&plain), None).await;
    assert_eq!(r.status, 403);
}
