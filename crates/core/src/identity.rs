//! Identity: the `identity/` request handlers over the identity store (`coffer-identity`):
//! entities and their aliases (one per auth mount), internal and external groups, group
//! aliases (which bind an external group to a group name an auth mount reports), merges and
//! lookups. Each row of `system_paths::identity_paths` has its own [`IdentityRoute`].

use crate::system_paths::{identity_paths, IdentityRoute};
use crate::token::now;
use crate::{Active, Core, CoreResponse, Result};
use coffer_identity::{
    alias_json, entity_json, group_alias_json, group_json, new_id, obj, ALIAS, ENTITY, GROUP, GROUP_ALIAS,
};
pub use coffer_identity::{Alias, Entity, Group, GroupAlias, IdentityState, IdentityStore};
use coffer_sdk::field::{parse_bool, parse_string, parse_string_slice};
use coffer_sdk::framework::FieldData;
use coffer_sdk::tokenutil::normalize_policies;
use coffer_sdk::{LogicalError, Operation};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};

fn str_map(name: &str, v: &Value) -> Result<BTreeMap<String, String>> {
    let pair = |s: &str| -> Result<(String, String)> {
        let (k, v) =
            s.split_once('=').ok_or_else(|| LogicalError::bad_request(format!("{name} entries must be key=value")))?;
        Ok((k.to_string(), v.to_string()))
    };
    match v {
        Value::Object(m) => m.iter().map(|(k, v)| Ok((k.clone(), parse_string(name, v)?))).collect(),
        Value::Null => Ok(BTreeMap::new()),
        Value::String(s) if s.is_empty() => Ok(BTreeMap::new()),
        Value::String(s) => s.split(',').map(|p| pair(p.trim())).collect(),
        Value::Array(a) => a.iter().map(|x| pair(&parse_string(name, x)?)).collect(),
        _ => Err(LogicalError::bad_request(format!("{name} must be a map of strings"))),
    }
}

fn opt<'a>(d: &'a Map<String, Value>, k: &str) -> Option<&'a Value> {
    d.get(k).filter(|v| !v.is_null())
}

fn opt_str(d: &Map<String, Value>, k: &str) -> Result<Option<String>> {
    opt(d, k).map(|v| parse_string(k, v)).transpose().map(|s| s.filter(|s| !s.is_empty()))
}

fn list(keys: Vec<String>, info: Map<String, Value>) -> Result<CoreResponse> {
    if keys.is_empty() {
        return Err(LogicalError::not_found());
    }
    Ok(CoreResponse::data(obj(json!({ "keys": keys, "key_info": info }))))
}

fn ids(id: &str, canonical_id: &str) -> CoreResponse {
    CoreResponse::data(obj(json!({ "id": id, "canonical_id": canonical_id })))
}

/// The URL field `name` of a routed request.
fn url(fields: &FieldData, name: &str) -> String {
    fields.str(name).unwrap_or_default().to_string()
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
        caller: Option<&crate::token::TokenEntry>,
    ) -> Result<CoreResponse> {
        use IdentityRoute as R;
        use Operation::*;
        let routed = identity_paths().route(op, rest, d)?;
        if routed.route.is_oidc() {
            let mut r = Box::pin(self.handle_oidc(active, op, routed.route, &routed.fields, d, caller)).await?;
            r.warn_ignored(&routed.ignored);
            return Ok(r);
        }
        let f = &routed.fields;
        // The handlers below read the row's fields as the router coerced them: what the request
        // set of what the row declares, nothing else (undeclared parameters are only named in
        // the ignored-parameters warning).
        let coerced: Map<String, Value> = routed
            .spec
            .fields
            .iter()
            .filter(|field| f.is_set(field.name))
            .filter_map(|field| f.get(field.name).map(|v| (field.name.to_string(), v.clone())))
            .collect();
        let d = &coerced;
        let store = &active.identity;
        let mut resp = match routed.route {
            R::Entity => {
                let mut st = store.state.write().await;
                let name = opt_str(d, "name")?;
                let existing = match opt_str(d, "id")? {
                    Some(id) => Some(
                        st.entities
                            .get(&id)
                            .cloned()
                            .ok_or_else(|| LogicalError::bad_request("entity not found from id"))?,
                    ),
                    None => name.as_ref().and_then(|n| st.entities.values().find(|e| &e.name == n).cloned()),
                };
                let created = existing.is_none();
                let e = upsert_entity(&mut st, store, existing, d).await?;
                if created {
                    CoreResponse::data(obj(json!({ "id": e.id, "name": e.name, "aliases": null })))
                } else {
                    CoreResponse::default()
                }
            }
            R::EntityIds | R::EntityNames => {
                let st = store.state.read().await;
                let by_name = routed.route == R::EntityNames;
                let mut keys = Vec::new();
                let mut info = Map::new();
                for e in st.entities.values() {
                    let key = if by_name { e.name.clone() } else { e.id.clone() };
                    let aliases: Vec<Value> = st
                        .aliases
                        .values()
                        .filter(|a| a.canonical_id == e.id)
                        .map(|a| {
                            json!({ "id": a.id, "mount_accessor": a.mount_accessor, "mount_path": a.mount_path,
                                    "mount_type": a.mount_type, "name": a.name })
                        })
                        .collect();
                    let mut i = json!({ "name": e.name, "id": e.id });
                    if !aliases.is_empty() {
                        i["aliases"] = json!(aliases);
                    }
                    info.insert(key.clone(), i);
                    keys.push(key);
                }
                keys.sort();
                list(keys, info)?
            }
            R::EntityById | R::EntityByName => {
                let by_name = routed.route == R::EntityByName;
                let key = url(f, if by_name { "name" } else { "id" });
                let mut st = store.state.write().await;
                let found = if by_name {
                    st.entities.values().find(|e| e.name == key).cloned()
                } else {
                    st.entities.get(&key).cloned()
                };
                match op {
                    Read => match found {
                        Some(e) => CoreResponse::data(entity_json(&st, &e)),
                        None => return Err(LogicalError::not_found()),
                    },
                    Create | Update => {
                        if found.is_none() && !by_name {
                            return Err(LogicalError::bad_request("entity not found from id"));
                        }
                        let mut d2 = d.clone();
                        if by_name {
                            d2.insert("name".into(), json!(key));
                        }
                        let created = found.is_none();
                        let e = upsert_entity(&mut st, store, found, &d2).await?;
                        if created {
                            CoreResponse::data(obj(json!({ "id": e.id, "name": e.name })))
                        } else {
                            CoreResponse::default()
                        }
                    }
                    Delete => {
                        if let Some(e) = found {
                            delete_entity(&mut st, store, &e.id).await?;
                        }
                        CoreResponse::default()
                    }
                    _ => return Err(LogicalError::unsupported_operation()),
                }
            }
            R::EntityBatchDelete => {
                let wanted = match opt(d, "entity_ids") {
                    Some(v) => parse_string_slice("entity_ids", v)?,
                    None => return Err(LogicalError::bad_request("missing entity_ids to delete")),
                };
                let mut st = store.state.write().await;
                for id in wanted {
                    if st.entities.contains_key(&id) {
                        delete_entity(&mut st, store, &id).await?;
                    }
                }
                CoreResponse::default()
            }
            R::EntityMerge => {
                let mut st = store.state.write().await;
                self.merge_entities(&mut st, store, d).await?
            }
            R::EntityAlias => {
                let mut st = store.state.write().await;
                let existing = match opt_str(d, "id")? {
                    Some(id) => Some(
                        st.aliases
                            .get(&id)
                            .cloned()
                            .ok_or_else(|| LogicalError::bad_request("entity alias not found"))?,
                    ),
                    None => None,
                };
                let a = self.upsert_alias(active, &mut st, existing, d).await?;
                ids(&a.id, &a.canonical_id)
            }
            R::EntityAliasIds => {
                let st = store.state.read().await;
                let mut info = Map::new();
                for a in st.aliases.values() {
                    info.insert(
                        a.id.clone(),
                        json!({ "canonical_id": a.canonical_id, "custom_metadata": a.custom_metadata,
                                "local": false, "metadata": a.metadata, "mount_accessor": a.mount_accessor,
                                "mount_path": a.mount_path, "mount_type": a.mount_type, "name": a.name }),
                    );
                }
                list(st.aliases.keys().cloned().collect(), info)?
            }
            R::EntityAliasById => {
                let id = url(f, "id");
                let mut st = store.state.write().await;
                let found = st.aliases.get(&id).cloned();
                match op {
                    Read => match found {
                        Some(a) => CoreResponse::data(obj(alias_json(&a))),
                        None => return Err(LogicalError::not_found()),
                    },
                    Create | Update => {
                        let Some(a) = found else { return Err(LogicalError::bad_request("entity alias not found")) };
                        let a = self.upsert_alias(active, &mut st, Some(a), d).await?;
                        ids(&a.id, &a.canonical_id)
                    }
                    Delete => {
                        if found.is_some() {
                            store.del(ALIAS, &id).await?;
                            st.aliases.remove(&id);
                        }
                        CoreResponse::default()
                    }
                    _ => return Err(LogicalError::unsupported_operation()),
                }
            }
            R::Group => {
                let mut st = store.state.write().await;
                let name = opt_str(d, "name")?;
                let existing = match opt_str(d, "id")? {
                    Some(id) => Some(
                        st.groups
                            .get(&id)
                            .cloned()
                            .ok_or_else(|| LogicalError::bad_request("group not found from id"))?,
                    ),
                    None => name.as_ref().and_then(|n| st.groups.values().find(|g| &g.name == n).cloned()),
                };
                let created = existing.is_none();
                let g = upsert_group(&mut st, store, existing, d).await?;
                if created {
                    CoreResponse::data(obj(json!({ "id": g.id, "name": g.name })))
                } else {
                    CoreResponse::default()
                }
            }
            R::GroupIds | R::GroupNames => {
                let st = store.state.read().await;
                let by_name = routed.route == R::GroupNames;
                let mut keys = Vec::new();
                let mut info = Map::new();
                for g in st.groups.values() {
                    let key = if by_name { g.name.clone() } else { g.id.clone() };
                    let parents = st.groups.values().filter(|p| p.member_group_ids.contains(&g.id)).count();
                    let mut i = json!({ "name": g.name, "num_member_entities": g.member_entity_ids.len(),
                                        "num_parent_groups": parents });
                    if let Some(a) = st.group_aliases.values().find(|a| a.canonical_id == g.id) {
                        i["alias"] = json!({ "id": a.id, "mount_accessor": a.mount_accessor,
                                             "mount_path": a.mount_path, "mount_type": a.mount_type, "name": a.name });
                    }
                    if !by_name {
                        info.insert(key.clone(), i);
                    }
                    keys.push(key);
                }
                keys.sort();
                if by_name {
                    if keys.is_empty() {
                        return Err(LogicalError::not_found());
                    }
                    CoreResponse::data(obj(json!({ "keys": keys })))
                } else {
                    list(keys, info)?
                }
            }
            R::GroupById | R::GroupByName => {
                let by_name = routed.route == R::GroupByName;
                let key = url(f, if by_name { "name" } else { "id" });
                let mut st = store.state.write().await;
                let found = if by_name {
                    st.groups.values().find(|g| g.name == key).cloned()
                } else {
                    st.groups.get(&key).cloned()
                };
                match op {
                    Read => match found {
                        Some(g) => CoreResponse::data(group_json(&st, &g)),
                        None => return Err(LogicalError::not_found()),
                    },
                    Create | Update => {
                        if found.is_none() && !by_name {
                            return Err(LogicalError::bad_request("group not found from id"));
                        }
                        let mut d2 = d.clone();
                        if by_name {
                            d2.insert("name".into(), json!(key));
                        }
                        let created = found.is_none();
                        let g = upsert_group(&mut st, store, found, &d2).await?;
                        if created {
                            CoreResponse::data(obj(json!({ "id": g.id, "name": g.name })))
                        } else {
                            CoreResponse::default()
                        }
                    }
                    Delete => {
                        if let Some(g) = found {
                            delete_group(&mut st, store, &g.id).await?;
                        }
                        CoreResponse::default()
                    }
                    _ => return Err(LogicalError::unsupported_operation()),
                }
            }
            R::GroupAlias => {
                let mut st = store.state.write().await;
                let existing = match opt_str(d, "id")? {
                    Some(id) => Some(
                        st.group_aliases
                            .get(&id)
                            .cloned()
                            .ok_or_else(|| LogicalError::bad_request("group alias not found"))?,
                    ),
                    None => None,
                };
                let a = self.upsert_group_alias(active, &mut st, existing, d).await?;
                ids(&a.id, &a.canonical_id)
            }
            R::GroupAliasIds => {
                let st = store.state.read().await;
                let mut info = Map::new();
                for a in st.group_aliases.values() {
                    info.insert(
                        a.id.clone(),
                        json!({ "canonical_id": a.canonical_id, "custom_metadata": null, "local": false,
                                "metadata": null, "mount_accessor": a.mount_accessor, "mount_path": a.mount_path,
                                "mount_type": a.mount_type, "name": a.name }),
                    );
                }
                list(st.group_aliases.keys().cloned().collect(), info)?
            }
            R::GroupAliasById => {
                let id = url(f, "id");
                let mut st = store.state.write().await;
                let found = st.group_aliases.get(&id).cloned();
                match op {
                    Read => match found {
                        Some(a) => {
                            let mut m = obj(group_alias_json(&a));
                            m.insert("namespace_id".into(), json!("root"));
                            CoreResponse::data(m)
                        }
                        None => return Err(LogicalError::not_found()),
                    },
                    Create | Update => {
                        let Some(a) = found else { return Err(LogicalError::bad_request("group alias not found")) };
                        let a = self.upsert_group_alias(active, &mut st, Some(a), d).await?;
                        ids(&a.id, &a.canonical_id)
                    }
                    Delete => {
                        if found.is_some() {
                            store.del(GROUP_ALIAS, &id).await?;
                            st.group_aliases.remove(&id);
                        }
                        CoreResponse::default()
                    }
                    _ => return Err(LogicalError::unsupported_operation()),
                }
            }
            R::LookupEntity => {
                let st = store.state.read().await;
                let found = if let Some(id) = opt_str(d, "id")? {
                    st.entities.get(&id).cloned()
                } else if let Some(n) = opt_str(d, "name")? {
                    st.entities.values().find(|e| e.name == n).cloned()
                } else if let Some(aid) = opt_str(d, "alias_id")? {
                    st.aliases.get(&aid).and_then(|a| st.entities.get(&a.canonical_id).cloned())
                } else if let (Some(an), Some(acc)) = (opt_str(d, "alias_name")?, opt_str(d, "alias_mount_accessor")?) {
                    st.aliases
                        .values()
                        .find(|a| a.name == an && a.mount_accessor == acc)
                        .and_then(|a| st.entities.get(&a.canonical_id).cloned())
                } else {
                    return Err(LogicalError::bad_request(
                        "missing id, name, alias_id, or alias_name and alias_mount_accessor",
                    ));
                };
                match found {
                    Some(e) => CoreResponse::data(entity_json(&st, &e)),
                    None => CoreResponse::default(),
                }
            }
            R::LookupGroup => {
                let st = store.state.read().await;
                let found = if let Some(id) = opt_str(d, "id")? {
                    st.groups.get(&id).cloned()
                } else if let Some(n) = opt_str(d, "name")? {
                    st.groups.values().find(|g| g.name == n).cloned()
                } else if let Some(aid) = opt_str(d, "alias_id")? {
                    st.group_aliases.get(&aid).and_then(|a| st.groups.get(&a.canonical_id).cloned())
                } else if let (Some(an), Some(acc)) = (opt_str(d, "alias_name")?, opt_str(d, "alias_mount_accessor")?) {
                    st.group_aliases
                        .values()
                        .find(|a| a.name == an && a.mount_accessor == acc)
                        .and_then(|a| st.groups.get(&a.canonical_id).cloned())
                } else {
                    return Err(LogicalError::bad_request(
                        "missing id, name, alias_id, or alias_name and alias_mount_accessor",
                    ));
                };
                match found {
                    Some(g) => CoreResponse::data(group_json(&st, &g)),
                    None => CoreResponse::default(),
                }
            }
            // Served by `handle_oidc` above.
            R::OidcConfig
            | R::OidcKeys
            | R::OidcKey
            | R::OidcKeyRotate
            | R::OidcRoles
            | R::OidcRole
            | R::OidcToken
            | R::OidcIntrospect
            | R::OidcWellKnownConfig
            | R::OidcWellKnownKeys
            | R::OidcScopes
            | R::OidcScope
            | R::OidcAssignments
            | R::OidcAssignment
            | R::OidcClients
            | R::OidcClient
            | R::OidcProviders
            | R::OidcProvider
            | R::ProviderWellKnownConfig
            | R::ProviderWellKnownKeys
            | R::ProviderAuthorize
            | R::ProviderToken
            | R::ProviderUserinfo => return Err(LogicalError::unsupported_path(rest)),
        };
        resp.mount_type = "identity".into();
        resp.warn_ignored(&routed.ignored);
        Ok(resp)
    }

    /// `identity/entity/merge`: every check runs before anything is written, so a refused
    /// merge leaves all entities as they were.
    async fn merge_entities(
        &self,
        st: &mut IdentityState,
        store: &IdentityStore,
        d: &Map<String, Value>,
    ) -> Result<CoreResponse> {
        let to_id =
            opt_str(d, "to_entity_id")?.ok_or_else(|| LogicalError::bad_request("missing entity id to merge to"))?;
        let from_ids = match opt(d, "from_entity_ids") {
            Some(v) => parse_string_slice("from_entity_ids", v)?,
            None => vec![],
        };
        if from_ids.is_empty() {
            return Err(LogicalError::bad_request("missing entity ids to merge from"));
        }
        let keep = match opt(d, "conflicting_alias_ids_to_keep") {
            Some(v) => parse_string_slice("conflicting_alias_ids_to_keep", v)?,
            None => vec![],
        };
        // `force` governs conflicting MFA secrets, which Coffer's entities do not hold: there is
        // nothing for it to decide, but a malformed value is still refused.
        if let Some(v) = opt(d, "force") {
            parse_bool("force", v)?;
        }
        let Some(mut to) = st.entities.get(&to_id).cloned() else {
            return Err(LogicalError::bad_request("entity id to merge to is invalid"));
        };
        if from_ids.contains(&to_id) {
            return Err(LogicalError::bad_request("to_entity_id should not be present in from_entity_ids"));
        }
        for id in &from_ids {
            if !st.entities.contains_key(id) {
                return Err(LogicalError::bad_request(format!("entity id to merge from is invalid: {id:?}")));
            }
        }
        // An entity holds one alias per auth mount: clashing aliases need an explicit choice.
        let to_aliases: Vec<Alias> = st.aliases.values().filter(|a| a.canonical_id == to_id).cloned().collect();
        let mut drop_aliases: Vec<String> = Vec::new();
        let mut clashes: Vec<String> = Vec::new();
        for from in &from_ids {
            for fa in st.aliases.values().filter(|a| &a.canonical_id == from) {
                let Some(ta) = to_aliases.iter().find(|t| t.mount_accessor == fa.mount_accessor) else { continue };
                let resolved = if from_ids.len() == 1 && keep.contains(&fa.id) {
                    Some(ta.id.clone())
                } else if from_ids.len() == 1 && keep.contains(&ta.id) {
                    Some(fa.id.clone())
                } else {
                    None
                };
                match resolved {
                    Some(dropped) => drop_aliases.push(dropped),
                    None => clashes.push(format!(
                        "mount accessor {}: alias {} of entity {} and alias {} of entity {}",
                        fa.mount_accessor, ta.id, to_id, fa.id, from
                    )),
                }
            }
        }
        if !clashes.is_empty() {
            return Err(LogicalError::bad_request(format!(
                "the target entity and an entity to merge have aliases on the same auth mount; merge one \
                 entity at a time and name the alias to keep in conflicting_alias_ids_to_keep ({})",
                clashes.join("; ")
            )));
        }
        let t = now();
        for id in &drop_aliases {
            store.del(ALIAS, id).await?;
            st.aliases.remove(id);
        }
        for from in &from_ids {
            let moved: Vec<Alias> = st.aliases.values().filter(|a| &a.canonical_id == from).cloned().collect();
            for mut a in moved {
                a.canonical_id = to_id.clone();
                a.merged_from_canonical_ids.push(from.clone());
                a.last_update_time = t;
                store.put(ALIAS, &a.id, &a).await?;
                st.aliases.insert(a.id.clone(), a);
            }
            let groups: Vec<Group> =
                st.groups.values().filter(|g| g.member_entity_ids.contains(from)).cloned().collect();
            for mut g in groups {
                g.member_entity_ids.retain(|m| m != from);
                if !g.member_entity_ids.contains(&to_id) {
                    g.member_entity_ids.push(to_id.clone());
                }
                store.put(GROUP, &g.id, &g).await?;
                st.groups.insert(g.id.clone(), g);
            }
            if let Some(old) = st.entities.get(from) {
                to.merged_entity_ids.extend(old.merged_entity_ids.iter().cloned());
            }
            to.merged_entity_ids.push(from.clone());
        }
        to.last_update_time = t;
        store.put(ENTITY, &to.id, &to).await?;
        st.entities.insert(to.id.clone(), to);
        for from in &from_ids {
            store.del(ENTITY, from).await?;
            st.entities.remove(from);
        }
        Ok(CoreResponse::default())
    }

    async fn upsert_alias(
        &self,
        active: &Active,
        st: &mut IdentityState,
        existing: Option<Alias>,
        d: &Map<String, Value>,
    ) -> Result<Alias> {
        let t = now();
        let name = opt_str(d, "name")?;
        let accessor = opt_str(d, "mount_accessor")?;
        let canonical = opt_str(d, "canonical_id")?;
        // A new alias whose name is already taken on its mount updates that alias (and may
        // move it to another entity), as OpenBao does.
        let existing = existing.or_else(|| match (&name, &accessor) {
            (Some(n), Some(acc)) => st.aliases.values().find(|a| &a.name == n && &a.mount_accessor == acc).cloned(),
            _ => None,
        });
        let mut a = existing.unwrap_or(Alias { id: new_id(), creation_time: t, ..Default::default() });
        if let Some(n) = name {
            a.name = n;
        }
        if let Some(acc) = accessor {
            a.mount_accessor = acc;
        }
        if let Some(v) = opt(d, "custom_metadata") {
            a.custom_metadata = str_map("custom_metadata", v)?;
        }
        if let Some(v) = opt(d, "metadata") {
            a.metadata = str_map("metadata", v)?;
        }
        if a.name.is_empty() {
            return Err(LogicalError::bad_request("missing alias name"));
        }
        if a.mount_accessor.is_empty() {
            return Err(LogicalError::bad_request("missing mount_accessor"));
        }
        let Some(mount) = self.auth_mount_by_accessor(active, &a.mount_accessor).await else {
            return Err(LogicalError::bad_request(format!("invalid mount accessor {:?}", a.mount_accessor)));
        };
        let mut new_entity = None;
        match canonical {
            Some(c) => {
                if !st.entities.contains_key(&c) {
                    return Err(LogicalError::bad_request("invalid canonical ID"));
                }
                a.canonical_id = c;
            }
            None if a.canonical_id.is_empty() => {
                // No entity named: the alias gets a new one.
                let id = new_id();
                new_entity = Some(Entity {
                    name: format!("entity_{}", &id[..8]),
                    id,
                    creation_time: t,
                    last_update_time: t,
                    ..Default::default()
                });
            }
            None => {}
        }
        if let Some(e) = &new_entity {
            a.canonical_id = e.id.clone();
        }
        if st
            .aliases
            .values()
            .any(|x| x.id != a.id && x.mount_accessor == a.mount_accessor && x.canonical_id == a.canonical_id)
        {
            return Err(LogicalError::bad_request("the entity already has an alias on this auth mount"));
        }
        a.mount_type = mount.mount_type.clone();
        a.mount_path = format!("auth/{}", mount.path);
        a.last_update_time = t;
        if let Some(e) = new_entity {
            active.identity.put(ENTITY, &e.id, &e).await?;
            st.entities.insert(e.id.clone(), e);
        }
        active.identity.put(ALIAS, &a.id, &a).await?;
        st.aliases.insert(a.id.clone(), a.clone());
        Ok(a)
    }

    async fn upsert_group_alias(
        &self,
        active: &Active,
        st: &mut IdentityState,
        existing: Option<GroupAlias>,
        d: &Map<String, Value>,
    ) -> Result<GroupAlias> {
        let t = now();
        let mut a = existing.unwrap_or(GroupAlias { id: new_id(), creation_time: t, ..Default::default() });
        if let Some(n) = opt_str(d, "name")? {
            a.name = n;
        }
        if let Some(acc) = opt_str(d, "mount_accessor")? {
            a.mount_accessor = acc;
        }
        if a.name.is_empty() {
            return Err(LogicalError::bad_request("missing alias name"));
        }
        if a.mount_accessor.is_empty() {
            return Err(LogicalError::bad_request("missing mount_accessor"));
        }
        let Some(mount) = self.auth_mount_by_accessor(active, &a.mount_accessor).await else {
            return Err(LogicalError::bad_request(format!("invalid mount accessor {:?}", a.mount_accessor)));
        };
        if st.group_aliases.values().any(|x| x.id != a.id && x.mount_accessor == a.mount_accessor && x.name == a.name) {
            return Err(LogicalError::bad_request("combination of mount and group alias name is already in use"));
        }
        let mut new_group = None;
        match opt_str(d, "canonical_id")? {
            Some(c) => {
                let Some(g) = st.groups.get(&c) else { return Err(LogicalError::bad_request("invalid canonical ID")) };
                if !g.is_external() {
                    return Err(LogicalError::bad_request("an alias can only be set on an external group"));
                }
                a.canonical_id = c;
            }
            None if a.canonical_id.is_empty() => {
                // No group named: the alias gets a new external group.
                let id = new_id();
                new_group = Some(Group {
                    name: format!("group_{}", &id[..8]),
                    id,
                    kind: "external".into(),
                    creation_time: t,
                    last_update_time: t,
                    ..Default::default()
                });
            }
            None => {}
        }
        if let Some(g) = &new_group {
            a.canonical_id = g.id.clone();
        }
        a.mount_type = mount.mount_type.clone();
        a.mount_path = format!("auth/{}", mount.path);
        a.last_update_time = t;
        let store = &active.identity;
        if let Some(g) = new_group {
            store.put(GROUP, &g.id, &g).await?;
            st.groups.insert(g.id.clone(), g);
        }
        // A group has one alias: setting another replaces it.
        let replaced: Vec<String> = st
            .group_aliases
            .values()
            .filter(|x| x.id != a.id && x.canonical_id == a.canonical_id)
            .map(|x| x.id.clone())
            .collect();
        for id in replaced {
            store.del(GROUP_ALIAS, &id).await?;
            st.group_aliases.remove(&id);
        }
        store.put(GROUP_ALIAS, &a.id, &a).await?;
        st.group_aliases.insert(a.id.clone(), a.clone());
        Ok(a)
    }
}

async fn delete_entity(st: &mut IdentityState, store: &IdentityStore, id: &str) -> Result<()> {
    let alias_ids: Vec<String> = st.aliases.values().filter(|a| a.canonical_id == id).map(|a| a.id.clone()).collect();
    for a in alias_ids {
        store.del(ALIAS, &a).await?;
        st.aliases.remove(&a);
    }
    let groups: Vec<Group> =
        st.groups.values().filter(|g| g.member_entity_ids.iter().any(|m| m == id)).cloned().collect();
    for mut g in groups {
        g.member_entity_ids.retain(|m| m != id);
        store.put(GROUP, &g.id, &g).await?;
        st.groups.insert(g.id.clone(), g);
    }
    store.del(ENTITY, id).await?;
    st.entities.remove(id);
    Ok(())
}

async fn delete_group(st: &mut IdentityState, store: &IdentityStore, id: &str) -> Result<()> {
    let parents: Vec<Group> =
        st.groups.values().filter(|p| p.member_group_ids.iter().any(|m| m == id)).cloned().collect();
    for mut p in parents {
        p.member_group_ids.retain(|m| m != id);
        store.put(GROUP, &p.id, &p).await?;
        st.groups.insert(p.id.clone(), p);
    }
    let aliases: Vec<String> =
        st.group_aliases.values().filter(|a| a.canonical_id == id).map(|a| a.id.clone()).collect();
    for a in aliases {
        store.del(GROUP_ALIAS, &a).await?;
        st.group_aliases.remove(&a);
    }
    store.del(GROUP, id).await?;
    st.groups.remove(id);
    Ok(())
}

async fn upsert_entity(
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
    if let Some(n) = opt_str(d, "name")? {
        if st.entities.values().any(|x| x.name == n && x.id != e.id) {
            return Err(LogicalError::bad_request(format!("entity name {n:?} is already in use")));
        }
        e.name = n;
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

async fn upsert_group(
    st: &mut IdentityState,
    store: &IdentityStore,
    existing: Option<Group>,
    d: &Map<String, Value>,
) -> Result<Group> {
    let t = now();
    let created = existing.is_none();
    let mut g = existing.unwrap_or_else(|| {
        let id = new_id();
        Group {
            name: format!("group_{}", &id[..8]),
            id,
            creation_time: t,
            kind: "internal".into(),
            ..Default::default()
        }
    });
    if let Some(ty) = opt_str(d, "type")? {
        if ty != "internal" && ty != "external" {
            return Err(LogicalError::bad_request(format!("invalid group type {ty:?}")));
        }
        let current = if g.is_external() { "external" } else { "internal" };
        if !created && ty != current {
            return Err(LogicalError::bad_request("group type cannot be changed"));
        }
        g.kind = ty;
    }
    if let Some(n) = opt_str(d, "name")? {
        if st.groups.values().any(|x| x.name == n && x.id != g.id) {
            return Err(LogicalError::bad_request(format!("group name {n:?} is already in use")));
        }
        g.name = n;
    }
    if let Some(v) = opt(d, "policies") {
        g.policies = normalize_policies(parse_string_slice("policies", v)?);
    }
    if let Some(v) = opt(d, "metadata") {
        g.metadata = str_map("metadata", v)?;
    }
    if let Some(v) = opt(d, "member_entity_ids") {
        let ids = parse_string_slice("member_entity_ids", v)?;
        if g.is_external() {
            if !ids.is_empty() {
                return Err(LogicalError::bad_request(
                    "member entities of an external group follow logins and can't be set",
                ));
            }
        } else {
            for i in &ids {
                if !st.entities.contains_key(i) {
                    return Err(LogicalError::bad_request(format!("invalid entity ID {i:?}")));
                }
            }
            g.member_entity_ids = ids;
        }
    }
    if let Some(v) = opt(d, "member_group_ids") {
        let ids = parse_string_slice("member_group_ids", v)?;
        for i in &ids {
            if !st.groups.contains_key(i) {
                return Err(LogicalError::bad_request(format!("invalid member group ID {i:?}")));
            }
            // Refuse cycles: the new member must not (transitively) contain this group.
            let mut stack = vec![i.clone()];
            let mut seen = BTreeSet::new();
            while let Some(c) = stack.pop() {
                if c == g.id {
                    return Err(LogicalError::bad_request(format!(
                        "cyclic relationship detected for member group ID {i:?}"
                    )));
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
