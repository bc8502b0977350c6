//! The identity store: entities, their aliases (one per auth mount and login name), and
//! internal groups (with member entities and member groups), kept in memory and persisted in
//! the barrier. The request pipeline asks it for the policies of an entity and of every group
//! that contains it, directly or through nested groups, and whether an entity is disabled;
//! logins find or create their entity here. The `identity/` request handlers live in the core.
//!
//! Errors are [`IdentityError`]; `From<IdentityError> for LogicalError` gives the
//! client-facing messages.

#![forbid(unsafe_code)]

pub mod oidc;

use coffer_barrier::{Barrier, BarrierError, SecureStorage};
use coffer_sdk::tokenutil::normalize_policies;
use coffer_sdk::LogicalError;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// What the identity store can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    #[error(transparent)]
    Storage(#[from] BarrierError),
    #[error(transparent)]
    Encode(#[from] serde_json::Error),
    #[error("identity entry is unreadable")]
    Unreadable(#[source] serde_json::Error),
}

/// Storage failures map as everywhere in the core (details logged, a generic message
/// returned); the rest are internal errors with their message.
impl From<IdentityError> for LogicalError {
    fn from(e: IdentityError) -> Self {
        match e {
            IdentityError::Storage(b) => coffer_barrier::logical_error(b),
            other => LogicalError::internal(other.to_string()).with_source(other),
        }
    }
}

type Result<T, E = IdentityError> = std::result::Result<T, E>;

pub const ENTITY: &str = "identity/store/entity/";
pub const ALIAS: &str = "identity/store/alias/";
pub const GROUP: &str = "identity/store/group/";
pub const GROUP_ALIAS: &str = "identity/store/group-alias/";

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Entity {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub policies: Vec<String>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    #[serde(default)]
    pub disabled: bool,
    /// Entities merged into this one (`identity/entity/merge`).
    #[serde(default)]
    pub merged_entity_ids: Vec<String>,
    pub creation_time: i64,
    pub last_update_time: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Alias {
    pub id: String,
    pub canonical_id: String,
    pub mount_accessor: String,
    #[serde(default)]
    pub mount_type: String,
    #[serde(default)]
    pub mount_path: String,
    pub name: String,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// Set by operators through the API; never by a login.
    #[serde(default)]
    pub custom_metadata: BTreeMap<String, String>,
    /// The entities this alias came from when it was moved by a merge.
    #[serde(default)]
    pub merged_from_canonical_ids: Vec<String>,
    pub creation_time: i64,
    pub last_update_time: i64,
}

/// Binds an external group to a group name that an auth mount reports at login.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct GroupAlias {
    pub id: String,
    /// The group's id.
    pub canonical_id: String,
    pub mount_accessor: String,
    #[serde(default)]
    pub mount_type: String,
    #[serde(default)]
    pub mount_path: String,
    pub name: String,
    pub creation_time: i64,
    pub last_update_time: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Group {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub policies: Vec<String>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    #[serde(default)]
    pub member_entity_ids: Vec<String>,
    #[serde(default)]
    pub member_group_ids: Vec<String>,
    /// `internal` (members set through the API) or `external` (members follow logins
    /// through the group's alias). Empty in records written before types existed: internal.
    #[serde(default, rename = "type")]
    pub kind: String,
    pub creation_time: i64,
    pub last_update_time: i64,
}

/// The identity store: everything is held in memory and written through to the barrier.
#[derive(Default)]
pub struct IdentityState {
    pub entities: BTreeMap<String, Entity>,
    pub aliases: BTreeMap<String, Alias>,
    pub groups: BTreeMap<String, Group>,
    pub group_aliases: BTreeMap<String, GroupAlias>,
}

impl IdentityState {
    /// The entity a token's entity id names: itself, or the entity it was merged into.
    pub fn entity(&self, id: &str) -> Option<&Entity> {
        if id.is_empty() {
            return None;
        }
        self.entities.get(id).or_else(|| self.entities.values().find(|e| e.merged_entity_ids.iter().any(|m| m == id)))
    }
}

impl Group {
    pub fn is_external(&self) -> bool {
        self.kind == "external"
    }
}

pub struct IdentityStore {
    barrier: Arc<Barrier>,
    pub state: tokio::sync::RwLock<IdentityState>,
    /// Identity tokens and the OIDC provider (keys, roles, clients, …).
    pub oidc: oidc::OidcStore,
    /// Bumped on every write: ACLs rendered from templated policies are cached per
    /// (entity, generation), so any identity change is seen by the next request.
    generation: std::sync::atomic::AtomicU64,
}

pub fn rfc3339(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| d.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

pub fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl IdentityStore {
    pub async fn load(barrier: Arc<Barrier>) -> Result<Self> {
        let mut st = IdentityState::default();
        for (prefix, kind) in [(ENTITY, 0), (ALIAS, 1), (GROUP, 2), (GROUP_ALIAS, 3)] {
            for k in barrier.list(prefix).await? {
                let Some(raw) = barrier.get(&format!("{prefix}{k}")).await? else { continue };
                let bad = IdentityError::Unreadable;
                match kind {
                    0 => {
                        let e: Entity = serde_json::from_slice(&raw).map_err(bad)?;
                        st.entities.insert(e.id.clone(), e);
                    }
                    1 => {
                        let a: Alias = serde_json::from_slice(&raw).map_err(bad)?;
                        st.aliases.insert(a.id.clone(), a);
                    }
                    2 => {
                        let g: Group = serde_json::from_slice(&raw).map_err(bad)?;
                        st.groups.insert(g.id.clone(), g);
                    }
                    _ => {
                        let a: GroupAlias = serde_json::from_slice(&raw).map_err(bad)?;
                        st.group_aliases.insert(a.id.clone(), a);
                    }
                }
            }
        }
        let oidc = oidc::OidcStore::load(barrier.clone()).await?;
        Ok(IdentityStore {
            barrier,
            oidc,
            state: tokio::sync::RwLock::new(st),
            generation: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// Persists one record (`prefix` is [`ENTITY`], [`ALIAS`], [`GROUP`] or [`GROUP_ALIAS`]).
    pub async fn put<T: Serialize>(&self, prefix: &str, id: &str, v: &T) -> Result<()> {
        let raw = serde_json::to_vec(v)?;
        self.bump();
        let r = self.barrier.put(&format!("{prefix}{id}"), &raw).await;
        self.bump();
        Ok(r?)
    }

    /// Deletes one record.
    pub async fn del(&self, prefix: &str, id: &str) -> Result<()> {
        self.bump();
        let r = self.barrier.delete(&format!("{prefix}{id}")).await;
        self.bump();
        Ok(r?)
    }

    fn bump(&self) {
        self.generation.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    /// Changes with every identity write (see the field).
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    /// What templated policies may use of an entity: its name, metadata, aliases and every
    /// group it belongs to. `None` for no entity, an unknown one or a disabled one.
    pub async fn facts_for(&self, entity_id: &str) -> Option<coffer_acl::IdentityFacts> {
        if entity_id.is_empty() {
            return None;
        }
        let st = self.state.read().await;
        let e = st.entity(entity_id).filter(|e| !e.disabled)?;
        let aliases = st
            .aliases
            .values()
            .filter(|a| a.canonical_id == e.id)
            .map(|a| coffer_acl::AliasFacts {
                mount_accessor: a.mount_accessor.clone(),
                id: a.id.clone(),
                name: a.name.clone(),
                metadata: a.metadata.clone(),
                custom_metadata: a.custom_metadata.clone(),
            })
            .collect();
        let groups = group_closure(&st, &e.id)
            .iter()
            .filter_map(|g| st.groups.get(g))
            .map(|g| coffer_acl::GroupFacts { id: g.id.clone(), name: g.name.clone(), metadata: g.metadata.clone() })
            .collect();
        Some(coffer_acl::IdentityFacts {
            entity_id: e.id.clone(),
            entity_name: e.name.clone(),
            entity_metadata: e.metadata.clone(),
            aliases,
            groups,
        })
    }

    /// After a login on `mount_accessor` that reported `group_names`: the entity becomes a
    /// member of exactly those external groups whose alias on this mount is in the list
    /// (joining new ones, leaving the ones no longer reported). Groups bound to other mounts
    /// are untouched.
    pub async fn sync_external_groups(
        &self,
        entity_id: &str,
        mount_accessor: &str,
        group_names: &[String],
    ) -> Result<()> {
        let mut st = self.state.write().await;
        let bound: Vec<(String, bool)> = st
            .group_aliases
            .values()
            .filter(|a| a.mount_accessor == mount_accessor)
            .map(|a| (a.canonical_id.clone(), group_names.iter().any(|n| n == &a.name)))
            .collect();
        for (gid, member) in bound {
            let Some(g) = st.groups.get(&gid) else { continue };
            let has = g.member_entity_ids.iter().any(|m| m == entity_id);
            if has == member {
                continue;
            }
            let mut g = g.clone();
            if member {
                g.member_entity_ids.push(entity_id.to_string());
            } else {
                g.member_entity_ids.retain(|m| m != entity_id);
            }
            g.last_update_time = time::OffsetDateTime::now_utc().unix_timestamp();
            self.put(GROUP, &g.id, &g).await?;
            st.groups.insert(g.id.clone(), g);
        }
        Ok(())
    }

    /// Policies from the entity and all groups containing it (directly or via nesting).
    pub async fn policies_for(&self, entity_id: &str) -> Vec<String> {
        if entity_id.is_empty() {
            return vec![];
        }
        let st = self.state.read().await;
        let Some(e) = st.entity(entity_id) else { return vec![] };
        if e.disabled {
            return vec![];
        }
        let mut out: Vec<String> = e.policies.clone();
        for g in group_closure(&st, &e.id) {
            if let Some(g) = st.groups.get(&g) {
                out.extend(g.policies.iter().cloned());
            }
        }
        normalize_policies(out)
    }

    /// Whether the entity is disabled (its tokens are refused).
    pub async fn is_disabled(&self, entity_id: &str) -> bool {
        !entity_id.is_empty() && self.state.read().await.entity(entity_id).is_some_and(|e| e.disabled)
    }

    /// Finds or creates the entity for a login's alias. Returns the entity id.
    pub async fn entity_for_login(
        &self,
        mount_accessor: &str,
        mount_type: &str,
        mount_path: &str,
        alias_name: &str,
        metadata: &Map<String, Value>,
    ) -> Result<String> {
        let mut st = self.state.write().await;
        if let Some(a) = st.aliases.values().find(|a| a.mount_accessor == mount_accessor && a.name == alias_name) {
            return Ok(a.canonical_id.clone());
        }
        let t = time::OffsetDateTime::now_utc().unix_timestamp();
        let eid = new_id();
        let entity = Entity {
            id: eid.clone(),
            name: format!("entity_{}", &eid[..8]),
            creation_time: t,
            last_update_time: t,
            ..Default::default()
        };
        let alias = Alias {
            id: new_id(),
            canonical_id: eid.clone(),
            mount_accessor: mount_accessor.into(),
            mount_type: mount_type.into(),
            mount_path: mount_path.into(),
            name: alias_name.into(),
            metadata: metadata.iter().filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string()))).collect(),
            creation_time: t,
            last_update_time: t,
            ..Default::default()
        };
        self.put(ENTITY, &eid, &entity).await?;
        self.put(ALIAS, &alias.id, &alias).await?;
        st.entities.insert(eid.clone(), entity);
        st.aliases.insert(alias.id.clone(), alias);
        Ok(eid)
    }
}

/// Ids of groups containing the entity, directly or through nested groups.
pub fn group_closure(st: &IdentityState, entity_id: &str) -> BTreeSet<String> {
    let mut found: BTreeSet<String> = st
        .groups
        .values()
        .filter(|g| g.member_entity_ids.iter().any(|m| m == entity_id))
        .map(|g| g.id.clone())
        .collect();
    loop {
        let more: Vec<String> = st
            .groups
            .values()
            .filter(|g| !found.contains(&g.id) && g.member_group_ids.iter().any(|m| found.contains(m)))
            .map(|g| g.id.clone())
            .collect();
        if more.is_empty() {
            return found;
        }
        found.extend(more);
    }
}

pub fn direct_groups(st: &IdentityState, entity_id: &str) -> Vec<String> {
    st.groups.values().filter(|g| g.member_entity_ids.iter().any(|m| m == entity_id)).map(|g| g.id.clone()).collect()
}

/// A map as OpenBao shows it: `null` when empty.
fn map_or_null(m: &BTreeMap<String, String>) -> Value {
    if m.is_empty() {
        Value::Null
    } else {
        json!(m)
    }
}

/// A list as OpenBao shows it: `null` when empty.
fn list_or_null(l: &[String]) -> Value {
    if l.is_empty() {
        Value::Null
    } else {
        json!(l)
    }
}

pub fn alias_json(a: &Alias) -> Value {
    json!({
        "id": a.id, "canonical_id": a.canonical_id, "mount_accessor": a.mount_accessor,
        "mount_type": a.mount_type, "mount_path": a.mount_path, "name": a.name,
        "metadata": map_or_null(&a.metadata), "creation_time": rfc3339(a.creation_time),
        "last_update_time": rfc3339(a.last_update_time), "local": false,
        "custom_metadata": map_or_null(&a.custom_metadata),
        "merged_from_canonical_ids": list_or_null(&a.merged_from_canonical_ids),
        "namespace_id": "root",
    })
}

pub fn group_alias_json(a: &GroupAlias) -> Value {
    json!({
        "id": a.id, "canonical_id": a.canonical_id, "mount_accessor": a.mount_accessor,
        "mount_type": a.mount_type, "mount_path": a.mount_path, "name": a.name,
        "metadata": null, "creation_time": rfc3339(a.creation_time),
        "last_update_time": rfc3339(a.last_update_time), "merged_from_canonical_ids": null,
    })
}

pub fn entity_json(st: &IdentityState, e: &Entity) -> Map<String, Value> {
    let aliases: Vec<Value> = st.aliases.values().filter(|a| a.canonical_id == e.id).map(alias_json).collect();
    let direct = direct_groups(st, &e.id);
    let all = group_closure(st, &e.id);
    let inherited: Vec<&String> = all.iter().filter(|g| !direct.contains(g)).collect();
    obj(json!({
        "aliases": aliases, "creation_time": rfc3339(e.creation_time), "direct_group_ids": direct,
        "disabled": e.disabled, "group_ids": all, "id": e.id, "inherited_group_ids": inherited,
        "last_update_time": rfc3339(e.last_update_time),
        "merged_entity_ids": list_or_null(&e.merged_entity_ids), "metadata": map_or_null(&e.metadata),
        "name": e.name, "namespace_id": "root", "policies": e.policies,
    }))
}

pub fn group_json(st: &IdentityState, g: &Group) -> Map<String, Value> {
    let parents: Vec<&String> =
        st.groups.values().filter(|p| p.member_group_ids.contains(&g.id)).map(|p| &p.id).collect();
    let alias = st.group_aliases.values().find(|a| a.canonical_id == g.id).map(group_alias_json);
    obj(json!({
        "alias": alias.unwrap_or_else(|| json!({})), "creation_time": rfc3339(g.creation_time), "id": g.id,
        "last_update_time": rfc3339(g.last_update_time), "member_entity_ids": list_or_null(&g.member_entity_ids),
        "member_group_ids": list_or_null(&g.member_group_ids), "metadata": map_or_null(&g.metadata), "modify_index": 0,
        "name": g.name, "namespace_id": "root",
        "parent_group_ids": if parents.is_empty() { Value::Null } else { json!(parents) },
        "policies": list_or_null(&g.policies),
        "type": if g.is_external() { "external" } else { "internal" },
    }))
}
