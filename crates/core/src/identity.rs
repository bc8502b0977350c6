//! Identity: the `identity/` request handlers over the identity store (`coffer-identity`):
//! entities, their aliases (one per auth mount and login name), and internal groups.

use crate::token::now;
use crate::{Active, Core, CoreResponse, Result};
use coffer_identity::{alias_json, entity_json, group_json, new_id, obj, ALIAS, ENTITY, GROUP};
pub use coffer_identity::{Alias, Entity, Group, IdentityState, IdentityStore};
use coffer_sdk::field::{parse_bool, parse_string, parse_string_slice};
use coffer_sdk::tokenutil::normalize_policies;
use coffer_sdk::{ErrorKind, LogicalError, Operation};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};

fn str_map(name: &str, v: &Value) -> Result<BTreeMap<String, String>> {
    match v {
        Value::Object(m) => m.iter().map(|(k, v)| Ok((k.clone(), parse_string(name, v)?))).collect(),
        Value::Null => Ok(BTreeMap::new()),
        Value::String(s) if s.is_empty() => Ok(BTreeMap::new()),
        Value::Array(a) => a
            .iter()
            .map(|x| {
                let s = parse_string(name, x)?;
                let (k, v) = s
                    .split_once('=')
                    .ok_or_else(|| LogicalError::bad_request(format!("{name} entries must be key=value")))?;
                Ok((k.to_string(), v.to_string()))
            })
            .collect(),
        _ => Err(LogicalError::bad_request(format!("{name} must be a map of strings"))),
    }
}

fn opt<'a>(d: &'a Map<String, Value>, k: &str) -> Option<&'a Value> {
    d.get(k).filter(|v| !v.is_null())
}

impl Core {
    pub(crate) async fn identity_policies(&self, active: &Active, entity_id: &str) -> Result<Vec<String>> {
        Ok(active.identity.policies_for(entity_id).await)
    }

    pub(crate) async fn handle_identity(
        &self,
        active: &Active,
        op: Operation,
        rest: &str,
        d: &Map<String, Value>,
    ) -> Result<CoreResponse> {
        use Operation::*;
        let store = &active.identity;
        let segs: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
        let write = matches!(op, Create | Update);
        let mut resp = match (segs.as_slice(), op) {
            (["entity"], _) if write => {
                let mut st = store.state.write().await;
                let id = opt(d, "id").and_then(Value::as_str).map(str::to_string);
                let existing = id.as_ref().and_then(|i| st.entities.get(i).cloned());
                let name = opt(d, "name").map(|v| parse_string("name", v)).transpose()?;
                let existing = existing
                    .or_else(|| name.as_ref().and_then(|n| st.entities.values().find(|e| &e.name == n).cloned()));
                let e = self.upsert_entity(&mut st, store, existing, d).await?;
                CoreResponse::data(obj(json!({ "id": e.id, "name": e.name, "aliases": null })))
            }
            (["entity", "id"] | ["entity", "name"], List) => {
                let st = store.state.read().await;
                let by_name = segs[1] == "name";
                let keys: Vec<String> =
                    st.entities.values().map(|e| if by_name { e.name.clone() } else { e.id.clone() }).collect();
                if keys.is_empty() {
                    return Err(LogicalError::not_found());
                }
                let mut info = Map::new();
                for e in st.entities.values() {
                    info.insert(
                        if by_name { e.name.clone() } else { e.id.clone() },
                        json!({ "name": e.name, "id": e.id }),
                    );
                }
                CoreResponse::data(obj(json!({ "keys": keys, "key_info": info })))
            }
            (["entity", kind @ ("id" | "name"), key], _) => {
                let mut st = store.state.write().await;
                let found = if *kind == "id" {
                    st.entities.get(*key).cloned()
                } else {
                    st.entities.values().find(|e| e.name == *key).cloned()
                };
                match op {
                    Read => match found {
                        Some(e) => CoreResponse::data(entity_json(&st, &e)),
                        None => return Err(LogicalError::not_found()),
                    },
                    Create | Update => {
                        if found.is_none() && *kind == "id" {
                            return Err(LogicalError::bad_request("entity not found from id"));
                        }
                        let mut d2 = d.clone();
                        if *kind == "name" {
                            d2.insert("name".into(), json!(key));
                        }
                        let e = self.upsert_entity(&mut st, store, found, &d2).await?;
                        CoreResponse::data(obj(json!({ "id": e.id, "name": e.name })))
                    }
                    Delete => {
                        if let Some(e) = found {
                            let alias_ids: Vec<String> =
                                st.aliases.values().filter(|a| a.canonical_id == e.id).map(|a| a.id.clone()).collect();
                            for a in alias_ids {
                                store.del(ALIAS, &a).await?;
                                st.aliases.remove(&a);
                            }
                            let groups: Vec<Group> =
                                st.groups.values().filter(|g| g.member_entity_ids.contains(&e.id)).cloned().collect();
                            for mut g in groups {
                                g.member_entity_ids.retain(|m| m != &e.id);
                                store.put(GROUP, &g.id, &g).await?;
                                st.groups.insert(g.id.clone(), g);
                            }
                            store.del(ENTITY, &e.id).await?;
                            st.entities.remove(&e.id);
                        }
                        CoreResponse::default()
                    }
                    _ => return Err(LogicalError::unsupported_operation()),
                }
            }
            (["entity-alias"], _) if write => {
                let mut st = store.state.write().await;
                let a = self.upsert_alias(active, &mut st, None, d).await?;
                CoreResponse::data(obj(json!({ "id": a.id, "canonical_id": a.canonical_id })))
            }
            (["entity-alias", "id"], List) => {
                let st = store.state.read().await;
                let keys: Vec<&String> = st.aliases.keys().collect();
                if keys.is_empty() {
                    return Err(LogicalError::not_found());
                }
                let mut info = Map::new();
                for a in st.aliases.values() {
                    info.insert(
                        a.id.clone(),
                        json!({ "canonical_id": a.canonical_id, "mount_accessor": a.mount_accessor, "name": a.name }),
                    );
                }
                CoreResponse::data(obj(json!({ "keys": keys, "key_info": info })))
            }
            (["entity-alias", "id", id], _) => {
                let mut st = store.state.write().await;
                let found = st.aliases.get(*id).cloned();
                match op {
                    Read => match found {
                        Some(a) => CoreResponse::data(obj(alias_json(&a))),
                        None => return Err(LogicalError::not_found()),
                    },
                    Create | Update => {
                        let Some(a) = found else { return Err(LogicalError::bad_request("entity alias not found")) };
                        let a = self.upsert_alias(active, &mut st, Some(a), d).await?;
                        CoreResponse::data(obj(json!({ "id": a.id, "canonical_id": a.canonical_id })))
                    }
                    Delete => {
                        if found.is_some() {
                            store.del(ALIAS, id).await?;
                            st.aliases.remove(*id);
                        }
                        CoreResponse::default()
                    }
                    _ => return Err(LogicalError::unsupported_operation()),
                }
            }
            (["group"], _) if write => {
                let mut st = store.state.write().await;
                let id = opt(d, "id").and_then(Value::as_str).map(str::to_string);
                let name = opt(d, "name").map(|v| parse_string("name", v)).transpose()?;
                let existing = id
                    .as_ref()
                    .and_then(|i| st.groups.get(i).cloned())
                    .or_else(|| name.as_ref().and_then(|n| st.groups.values().find(|g| &g.name == n).cloned()));
                let g = self.upsert_group(&mut st, store, existing, d).await?;
                CoreResponse::data(obj(json!({ "id": g.id, "name": g.name })))
            }
            (["group", "id"] | ["group", "name"], List) => {
                let st = store.state.read().await;
                let by_name = segs[1] == "name";
                let keys: Vec<String> =
                    st.groups.values().map(|g| if by_name { g.name.clone() } else { g.id.clone() }).collect();
                if keys.is_empty() {
                    return Err(LogicalError::not_found());
                }
                CoreResponse::data(obj(json!({ "keys": keys })))
            }
            (["group", kind @ ("id" | "name"), key], _) => {
                let mut st = store.state.write().await;
                let found = if *kind == "id" {
                    st.groups.get(*key).cloned()
                } else {
                    st.groups.values().find(|g| g.name == *key).cloned()
                };
                match op {
                    Read => match found {
                        Some(g) => CoreResponse::data(group_json(&st, &g)),
                        None => return Err(LogicalError::not_found()),
                    },
                    Create | Update => {
                        if found.is_none() && *kind == "id" {
                            return Err(LogicalError::bad_request("group not found from id"));
                        }
                        let mut d2 = d.clone();
                        if *kind == "name" {
                            d2.insert("name".into(), json!(key));
                        }
                        let g = self.upsert_group(&mut st, store, found, &d2).await?;
                        CoreResponse::data(obj(json!({ "id": g.id, "name": g.name })))
                    }
                    Delete => {
                        if let Some(g) = found {
                            let parents: Vec<Group> =
                                st.groups.values().filter(|p| p.member_group_ids.contains(&g.id)).cloned().collect();
                            for mut p in parents {
                                p.member_group_ids.retain(|m| m != &g.id);
                                store.put(GROUP, &p.id, &p).await?;
                                st.groups.insert(p.id.clone(), p);
                            }
                            store.del(GROUP, &g.id).await?;
                            st.groups.remove(&g.id);
                        }
                        CoreResponse::default()
                    }
                    _ => return Err(LogicalError::unsupported_operation()),
                }
            }
            (["lookup", "entity"], _) if write => {
                let st = store.state.read().await;
                let s = |k: &str| opt(d, k).and_then(Value::as_str).map(str::to_string);
                let found = if let Some(id) = s("id") {
                    st.entities.get(&id).cloned()
                } else if let Some(n) = s("name") {
                    st.entities.values().find(|e| e.name == n).cloned()
                } else if let Some(aid) = s("alias_id") {
                    st.aliases.get(&aid).and_then(|a| st.entities.get(&a.canonical_id).cloned())
                } else if let (Some(an), Some(acc)) = (s("alias_name"), s("alias_mount_accessor")) {
                    st.aliases
                        .values()
                        .find(|a| a.name == an && a.mount_accessor == acc)
                        .and_then(|a| st.entities.get(&a.canonical_id).cloned())
                } else {
                    return Err(LogicalError::bad_request(
                        "missing id, name, alias_id or alias_name and alias_mount_accessor",
                    ));
                };
                match found {
                    Some(e) => CoreResponse::data(entity_json(&st, &e)),
                    None => CoreResponse::default(),
                }
            }
            (["lookup", "group"], _) if write => {
                let st = store.state.read().await;
                let s = |k: &str| opt(d, k).and_then(Value::as_str).map(str::to_string);
                let found = if let Some(id) = s("id") {
                    st.groups.get(&id).cloned()
                } else if let Some(n) = s("name") {
                    st.groups.values().find(|g| g.name == n).cloned()
                } else {
                    return Err(LogicalError::bad_request("missing id or name"));
                };
                match found {
                    Some(g) => CoreResponse::data(group_json(&st, &g)),
                    None => CoreResponse::default(),
                }
            }
            _ => {
                return Err(LogicalError::new(ErrorKind::UnsupportedPath, format!("unsupported path: identity/{rest}")))
            }
        };
        resp.mount_type = "identity".into();
        Ok(resp)
    }

    async fn upsert_entity(
        &self,
        st: &mut IdentityState,
        store: &IdentityStore,
        existing: Option<Entity>,
        d: &Map<String, Value>,
    ) -> Result<Entity> {
        let t = now();
        let mut e = existing.unwrap_or_else(|| {
            let id = new_id();
            Entity { name: format!("entity_{}", &id[..8]), id, creation_time: t, ..Default::default() }
        });
        if let Some(v) = opt(d, "name") {
            let n = parse_string("name", v)?;
            if !n.is_empty() {
                if st.entities.values().any(|x| x.name == n && x.id != e.id) {
                    return Err(LogicalError::bad_request(format!("entity name {n:?} is already in use")));
                }
                e.name = n;
            }
        }
        if let Some(v) = opt(d, "policies") {
            e.policies = normalize_policies(parse_string_slice("policies", v)?);
        }
        if let Some(v) = opt(d, "metadata") {
            e.metadata = str_map("metadata", v)?;
        }
        if let Some(v) = opt(d, "disabled") {
            e.disabled = parse_bool("disabled", v)?;
        }
        e.last_update_time = t;
        store.put(ENTITY, &e.id, &e).await?;
        st.entities.insert(e.id.clone(), e.clone());
        Ok(e)
    }

    async fn upsert_alias(
        &self,
        active: &Active,
        st: &mut IdentityState,
        existing: Option<Alias>,
        d: &Map<String, Value>,
    ) -> Result<Alias> {
        let t = now();
        let mut a = existing.unwrap_or(Alias { id: new_id(), creation_time: t, ..Default::default() });
        if let Some(v) = opt(d, "name") {
            a.name = parse_string("name", v)?;
        }
        if let Some(v) = opt(d, "canonical_id") {
            a.canonical_id = parse_string("canonical_id", v)?;
        }
        if let Some(v) = opt(d, "mount_accessor") {
            a.mount_accessor = parse_string("mount_accessor", v)?;
        }
        if let Some(v) = opt(d, "metadata") {
            a.metadata = str_map("metadata", v)?;
        }
        if a.name.is_empty() || a.canonical_id.is_empty() || a.mount_accessor.is_empty() {
            return Err(LogicalError::bad_request("name, canonical_id and mount_accessor are required"));
        }
        if !st.entities.contains_key(&a.canonical_id) {
            return Err(LogicalError::bad_request("invalid canonical ID: entity not found"));
        }
        let Some(mount) = self.auth_mount_by_accessor(active, &a.mount_accessor).await else {
            return Err(LogicalError::bad_request("invalid mount accessor"));
        };
        a.mount_type = mount.mount_type.clone();
        a.mount_path = format!("auth/{}", mount.path);
        if st.aliases.values().any(|x| x.id != a.id && x.mount_accessor == a.mount_accessor && x.name == a.name) {
            return Err(LogicalError::bad_request("alias already exists for requested entity and mount accessor"));
        }
        a.last_update_time = t;
        active.identity.put(ALIAS, &a.id, &a).await?;
        st.aliases.insert(a.id.clone(), a.clone());
        Ok(a)
    }

    async fn upsert_group(
        &self,
        st: &mut IdentityState,
        store: &IdentityStore,
        existing: Option<Group>,
        d: &Map<String, Value>,
    ) -> Result<Group> {
        let t = now();
        let mut g = existing.unwrap_or_else(|| {
            let id = new_id();
            Group { name: format!("group_{}", &id[..8]), id, creation_time: t, ..Default::default() }
        });
        if let Some(v) = opt(d, "type") {
            let ty = parse_string("type", v)?;
            if !ty.is_empty() && ty != "internal" {
                return Err(LogicalError::bad_request("only internal groups are supported"));
            }
        }
        if let Some(v) = opt(d, "name") {
            let n = parse_string("name", v)?;
            if !n.is_empty() {
                if st.groups.values().any(|x| x.name == n && x.id != g.id) {
                    return Err(LogicalError::bad_request(format!("group name {n:?} is already in use")));
                }
                g.name = n;
            }
        }
        if let Some(v) = opt(d, "policies") {
            g.policies = normalize_policies(parse_string_slice("policies", v)?);
        }
        if let Some(v) = opt(d, "metadata") {
            g.metadata = str_map("metadata", v)?;
        }
        if let Some(v) = opt(d, "member_entity_ids") {
            let ids = parse_string_slice("member_entity_ids", v)?;
            for i in &ids {
                if !st.entities.contains_key(i) {
                    return Err(LogicalError::bad_request(format!("entity {i:?} does not exist")));
                }
            }
            g.member_entity_ids = ids;
        }
        if let Some(v) = opt(d, "member_group_ids") {
            let ids = parse_string_slice("member_group_ids", v)?;
            for i in &ids {
                if !st.groups.contains_key(i) || i == &g.id {
                    return Err(LogicalError::bad_request(format!(
                        "group {i:?} does not exist or is the group itself"
                    )));
                }
                // Refuse cycles: the new member must not (transitively) contain this group.
                let mut stack = vec![i.clone()];
                let mut seen = BTreeSet::new();
                while let Some(c) = stack.pop() {
                    if c == g.id {
                        return Err(LogicalError::bad_request("member group would create a cycle"));
                    }
                    if seen.insert(c.clone()) {
                        if let Some(cg) = st.groups.get(&c) {
                            stack.extend(cg.member_group_ids.iter().cloned());
                        }
                    }
                }
            }
            g.member_group_ids = ids;
        }
        g.last_update_time = t;
        store.put(GROUP, &g.id, &g).await?;
        st.groups.insert(g.id.clone(), g.clone());
        Ok(g)
    }
}
