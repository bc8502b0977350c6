//! Identity as an operator drives it with the real `bao` CLI, the same commands against the
//! real `coffer server` and a real OpenBao dev server: a userpass login makes an entity, the
//! entity is renamed, a templated policy written once gives each user their own KV subtree,
//! nested groups pass their policies down, an external group is bound with a group alias,
//! lookups find both, and a merge (refused until the clashing alias to keep is named) moves a
//! second entity's alias.
mod common;
use common::*;
use serde_json::Value;

struct Target<'a> {
    name: &'a str,
    bao: &'a str,
    addr: String,
}

impl Target<'_> {
    fn run(&self, token: Option<&str>, args: &[&str]) -> std::process::Output {
        cli(self.bao, &self.addr, token, args)
    }

    fn ok(&self, token: Option<&str>, args: &[&str]) -> String {
        let o = self.run(token, args);
        assert!(o.status.success(), "{}: bao {args:?} failed ({:?}):\n{}", self.name, o.status.code(), out(&o));
        String::from_utf8_lossy(&o.stdout).to_string()
    }

    fn json(&self, token: Option<&str>, args: &[&str]) -> Value {
        let mut all = vec![args[0], "-format=json"];
        all.extend_from_slice(&args[1..]);
        json(&self.ok(token, &all))
    }

    fn login(&self, user: &str) -> String {
        let v = self.json(None, &["write", &format!("auth/people/login/{user}"), "password=pw"]);
        v["auth"]["client_token"].as_str().unwrap().to_string()
    }
}

fn drive(t: &Target) {
    let root = Some("root");
    t.ok(root, &["auth", "enable", "-path=people", "userpass"]);
    t.ok(root, &["secrets", "enable", "-path=kv1", "kv"]);
    let acc = t.json(root, &["read", "sys/auth"])["data"]["people/"]["accessor"].as_str().unwrap().to_string();
    for u in ["alice", "bob"] {
        t.ok(root, &["write", &format!("auth/people/users/{u}"), "password=pw", "token_policies=own"]);
    }
    let dir = tempfile::tempdir().unwrap();
    let pol = dir.path().join("own.hcl");
    std::fs::write(
        &pol,
        "path \"kv1/users/{{identity.entity.name}}/*\" {\n  capabilities = [\"create\", \"read\", \"update\"]\n}\n",
    )
    .unwrap();
    t.ok(root, &["policy", "write", "own", pol.to_str().unwrap()]);
    std::fs::write(&pol, "path \"kv1/shared/*\" {\n  capabilities = [\"read\", \"create\", \"update\"]\n}\n").unwrap();
    t.ok(root, &["policy", "write", "shared", pol.to_str().unwrap()]);

    // The first login makes the entity; renaming it changes what the templated path grants.
    let alice = t.login("alice");
    let found =
        t.json(root, &["write", "identity/lookup/entity", "alias_name=alice", &format!("alias_mount_accessor={acc}")]);
    let alice_id = found["data"]["id"].as_str().unwrap().to_string();
    t.ok(root, &["write", &format!("identity/entity/id/{alice_id}"), "name=alice", "metadata=team=red"]);
    t.ok(Some(&alice), &["write", "kv1/users/alice/note", "v=1"]);
    let o = t.run(Some(&alice), &["write", "kv1/users/bob/note", "v=1"]);
    assert_eq!(o.status.code(), Some(2), "{}: another user's subtree: {}", t.name, out(&o));
    assert!(out(&o).contains("permission denied"), "{}: {}", t.name, out(&o));
    let listed = t.ok(root, &["list", "identity/entity/id"]);
    assert!(listed.contains(&alice_id), "{}: {listed}", t.name);
    let by_name = t.json(root, &["read", "identity/entity/name/alice"]);
    assert_eq!(by_name["data"]["aliases"][0]["name"], "alice", "{}", t.name);
    // The default policy lets a user read their own entity.
    t.ok(Some(&alice), &["read", &format!("identity/entity/id/{alice_id}")]);

    // Nested groups: alice is in sre, sre is in platform, platform grants `shared`.
    let sre = t.json(root, &["write", "identity/group", "name=sre", &format!("member_entity_ids={alice_id}")]);
    let sre_id = sre["data"]["id"].as_str().unwrap().to_string();
    t.ok(root, &["write", "identity/group", "name=platform", "policies=shared", &format!("member_group_ids={sre_id}")]);
    t.ok(Some(&alice), &["write", "kv1/shared/x", "v=1"]);
    let e = t.json(root, &["read", &format!("identity/entity/id/{alice_id}")]);
    assert_eq!(e["data"]["group_ids"].as_array().map(Vec::len), Some(2), "{}: {e}", t.name);
    let o = t.run(root, &["write", &format!("identity/group/id/{sre_id}"), "member_group_ids=nonexistent"]);
    assert_eq!(o.status.code(), Some(2), "{}: unknown member group: {}", t.name, out(&o));

    // An external group bound to the mount's group name, found by lookup.
    let ext = t.json(root, &["write", "identity/group", "name=directory-admins", "type=external"]);
    let ext_id = ext["data"]["id"].as_str().unwrap().to_string();
    t.ok(
        root,
        &[
            "write",
            "identity/group-alias",
            "name=admins",
            &format!("mount_accessor={acc}"),
            &format!("canonical_id={ext_id}"),
        ],
    );
    let g = t.json(root, &["write", "identity/lookup/group", "name=directory-admins"]);
    assert_eq!(g["data"]["alias"]["name"], "admins", "{}: {g}", t.name);
    let o = t.run(root, &["write", &format!("identity/group/id/{ext_id}"), "type=internal"]);
    assert_eq!(o.status.code(), Some(2), "{}: a group's type is fixed: {}", t.name, out(&o));

    // Merge bob's entity into alice's: his alias moves, his entity is gone.
    t.login("bob");
    let bob =
        t.json(root, &["write", "identity/lookup/entity", "alias_name=bob", &format!("alias_mount_accessor={acc}")]);
    let bob_id = bob["data"]["id"].as_str().unwrap().to_string();
    let bob_alias = bob["data"]["aliases"][0]["id"].as_str().unwrap().to_string();
    let merge =
        ["write", "identity/entity/merge", &format!("from_entity_ids={bob_id}"), &format!("to_entity_id={alice_id}")];
    // Both have an alias on people/: refused until the alias to keep is named.
    let o = t.run(root, &merge);
    assert_eq!(o.status.code(), Some(2), "{}: a merge with clashing aliases: {}", t.name, out(&o));
    let keep = format!("conflicting_alias_ids_to_keep={bob_alias}");
    let mut merge = merge.to_vec();
    merge.push(&keep);
    t.ok(root, &merge);
    let merged =
        t.json(root, &["write", "identity/lookup/entity", "alias_name=bob", &format!("alias_mount_accessor={acc}")]);
    assert_eq!(merged["data"]["id"], alice_id.as_str(), "{}: {merged}", t.name);
}

#[test]
fn bao_cli_drives_entities_groups_aliases_merges_and_templated_policies_on_coffer_and_openbao() {
    let Some(bao) = bao_path() else { return };
    let server = Server::start_dev("root");
    drive(&Target { name: "coffer", bao: &bao, addr: server.addr.clone() });
    let real = RealBao::start(&bao);
    drive(&Target { name: "openbao", bao: &bao, addr: real.addr.clone() });
}
