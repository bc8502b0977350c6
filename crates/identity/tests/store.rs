//! The identity store on a real (in-memory) barrier.

use coffer_barrier::Barrier;
use coffer_crypto::Key;
use coffer_identity::{Entity, Group, IdentityStore, ENTITY, GROUP};
use coffer_storage_inmem::InmemStorage;
use serde_json::{json, Map, Value};
use std::sync::Arc;

async fn barrier() -> Arc<Barrier> {
    let b = Barrier::new(Arc::new(InmemStorage::new()));
    let kek = Key::generate().unwrap();
    b.initialize(&kek, b"{}".to_vec()).await.unwrap();
    b.unseal(&kek).await.unwrap();
    Arc::new(b)
}

fn meta(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

#[tokio::test]
async fn a_login_finds_the_same_entity_again_and_it_survives_a_reload() {
    let b = barrier().await;
    let store = IdentityStore::load(b.clone()).await.unwrap();
    let m = meta(json!({ "team": "a", "n": 1 }));
    let id = store.entity_for_login("auth_userpass_1", "userpass", "auth/userpass/", "alice", &m).await.unwrap();
    let again = store.entity_for_login("auth_userpass_1", "userpass", "auth/userpass/", "alice", &m).await.unwrap();
    assert_eq!(id, again);
    let other = store.entity_for_login("auth_approle_2", "approle", "auth/approle/", "alice", &m).await.unwrap();
    assert_ne!(id, other, "an alias is per mount");
    let reloaded = IdentityStore::load(b).await.unwrap();
    let st = reloaded.state.read().await;
    assert_eq!(st.entities.len(), 2);
    let alias = st.aliases.values().find(|a| a.canonical_id == id).unwrap();
    assert_eq!(alias.metadata.get("team").map(String::as_str), Some("a"));
    assert!(!alias.metadata.contains_key("n"), "only string metadata is kept");
}

#[tokio::test]
async fn policies_come_from_the_entity_and_every_group_containing_it_until_it_is_disabled() {
    let store = IdentityStore::load(barrier().await).await.unwrap();
    let e = Entity { id: "e1".into(), name: "e".into(), policies: vec!["own".into()], ..Default::default() };
    let inner = Group {
        id: "g1".into(),
        name: "inner".into(),
        policies: vec!["inner".into()],
        member_entity_ids: vec!["e1".into()],
        ..Default::default()
    };
    let outer = Group {
        id: "g2".into(),
        name: "outer".into(),
        policies: vec!["outer".into(), "own".into()],
        member_group_ids: vec!["g1".into()],
        ..Default::default()
    };
    store.put(ENTITY, &e.id, &e).await.unwrap();
    store.put(GROUP, &inner.id, &inner).await.unwrap();
    store.put(GROUP, &outer.id, &outer).await.unwrap();
    {
        let mut st = store.state.write().await;
        st.entities.insert(e.id.clone(), e.clone());
        st.groups.insert(inner.id.clone(), inner);
        st.groups.insert(outer.id.clone(), outer);
    }
    assert_eq!(store.policies_for("e1").await, ["own", "inner", "outer"], "the entity's own first, each once");
    assert!(store.policies_for("").await.is_empty() && store.policies_for("nobody").await.is_empty());
    assert!(!store.is_disabled("e1").await);
    store.state.write().await.entities.get_mut("e1").unwrap().disabled = true;
    assert!(store.is_disabled("e1").await);
    assert!(store.policies_for("e1").await.is_empty(), "a disabled entity grants nothing");
}

/// External group membership follows what each login reports: joining the groups whose alias
/// on the login's mount is reported, leaving those no longer reported, and never touching groups
/// bound to another mount. The templating facts see the result, and the generation moves.
#[tokio::test]
async fn logins_sync_external_groups_of_their_mount_only_and_templates_see_them() {
    use coffer_identity::{GroupAlias, GROUP_ALIAS};
    let b = barrier().await;
    let store = IdentityStore::load(b.clone()).await.unwrap();
    let id = store.entity_for_login("acc_a", "jwt", "auth/jwt/", "alice", &Map::new()).await.unwrap();
    {
        let mut st = store.state.write().await;
        for (gid, name, acc, alias) in [
            ("g-eng", "eng", "acc_a", "engineers"),
            ("g-ops", "ops", "acc_a", "operators"),
            ("g-ldap", "ldap", "acc_b", "engineers"),
        ] {
            let g = Group { id: gid.into(), name: name.into(), kind: "external".into(), ..Default::default() };
            store.put(GROUP, gid, &g).await.unwrap();
            st.groups.insert(gid.into(), g);
            let a = GroupAlias {
                id: format!("a-{gid}"),
                canonical_id: gid.into(),
                mount_accessor: acc.into(),
                name: alias.into(),
                ..Default::default()
            };
            store.put(GROUP_ALIAS, &a.id, &a).await.unwrap();
            st.group_aliases.insert(a.id.clone(), a);
        }
    }
    let before = store.generation();
    store
        .sync_external_groups(&id, "acc_a", &["engineers".into(), "operators".into(), "unknown".into()])
        .await
        .unwrap();
    assert!(store.generation() > before, "a membership change moves the generation");
    let names = |f: &coffer_acl::IdentityFacts| {
        let mut n: Vec<String> = f.groups.iter().map(|g| g.name.clone()).collect();
        n.sort();
        n
    };
    assert_eq!(names(&store.facts_for(&id).await.unwrap()), vec!["eng", "ops"]);
    store.sync_external_groups(&id, "acc_a", &["operators".into()]).await.unwrap();
    assert_eq!(names(&store.facts_for(&id).await.unwrap()), vec!["ops"], "left eng, never joined ldap (other mount)");
    // Membership survives a reload.
    let reloaded = IdentityStore::load(b).await.unwrap();
    let st = reloaded.state.read().await;
    assert_eq!(st.groups["g-ops"].member_entity_ids, vec![id.clone()]);
    assert!(st.groups["g-eng"].member_entity_ids.is_empty());
    assert_eq!(st.group_aliases.len(), 3);
}
