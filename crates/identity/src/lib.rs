//! The identity store: entities, their aliases (one per auth mount and login name), and
//! internal groups (with member entities and member groups), kept in memory and persisted in
//! the barrier. The request pipeline asks it for the policies of an entity and of every group
//! that contains it, directly or through nested groups, and whether an entity is disabled;
//! logins find or create their entity here. The `identity/` request handlers live in the core.
//!
//! Errors are [`IdentityError`]; `From<IdentityError> for LogicalError` gives the
//! client-facing messages.

#![forbid(unsafe_code)]

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
    pub creation_time: i64,
    pub last_update_time: i64,
}

/// The identity store: everything is held in memory and written through to the barrier.
#[derive(Default)]
pub struct IdentityState {
    pub entities: BTreeMap<String, Entity>,
    pub aliases: BTreeMap<String, Alias>,
    pub groups: BTreeMap<String, Group>,
}

pub struct IdentityStore {
    barrier: Arc<Barrier>,
    pub state: tokio::sync::RwLock<IdentityState>,
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
        for (prefix, kind) in [(ENTITY, 0), (ALIAS, 1), (GROUP, 2)] {
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
                    _ => {
                        let g: Group = serde_json::from_slice(&raw).map_err(bad)?;
                        st.groups.insert(g.id.clone(), g);
                    }
                }
            }
        }
        Ok(IdentityStore { barrier, state: tokio::sync::RwLock::new(st) })
    }

    /// Persists one record (`prefix` is [`ENTITY`], [`ALIAS`] or [`GROUP`]).
    pub async fn put<T: Serialize>(&self, prefix: &str, id: &str, v: &T) -> Result<()> {
        let raw = serde_json::to_vec(v)?;
        Ok(self.barrier.put(&format!("{prefix}{id}"), &raw).await?)
    }

    /// Deletes one record.
    pub async fn del(&self, prefix: &str, id: &str) -> Result<()> {
        Ok(self.barrier.delete(&format!("{prefix}{id}")).await?)
    }

    /// Policies from the entity and all groups containing it (directly or via nesting).
    pub async fn policies_for(&self, entity_id: &str) -> Vec<String> {
        if entity_id.is_empty() {
            return vec![];
        }
        let st = self.state.read().await;
        let Some(e) = st.entities.get(entity_id) else { return vec![] };
        if e.disabled {
            return vec![];
        }
        let mut out: Vec<String> = e.policies.clone();
        for g in group_closure(&st, entity_id) {
            if let Some(g) = st.groups.get(&g) {
                out.extend(g.policies.iter().cloned());
            }
        }
        normalize_policies(out)
    }

    /// Whether the entity is disabled (its tokens are refused).
    pub async fn is_disabled(&self, entity_id: &str) -> bool {
        !entity_id.is_empty() && self.state.read().await.entities.get(entity_id).is_some_and(|e| e.disabled)
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

pub fn alias_json(a: &Alias) -> Value {
    json!({
        "id": a.id, "canonical_id": a.canonical_id, "mount_accessor": a.mount_accessor,
        "mount_type": a.mount_type, "mount_path": a.mount_path, "name": a.name,
        "metadata": a.metadata, "creation_time": rfc3339(a.creation_time),
        "last_update_time": rfc3339(a.last_update_time), "local": false,
        "custom_metadata": {}, "merged_from_canonical_ids": null,
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
        "last_update_time": rfc3339(e.last_update_time), "merged_entity_ids": null, "metadata": e.metadata,
        "name": e.name, "namespace_id": "root", "policies": e.policies,
    }))
}

pub fn group_json(st: &IdentityState, g: &Group) -> Map<String, Value> {
    let parents: Vec<&String> =
        st.groups.values().filter(|p| p.member_group_ids.contains(&g.id)).map(|p| &p.id).collect();
    obj(json!({
        "alias": {}, "creation_time": rfc3339(g.creation_time), "id": g.id,
        "last_update_time": rfc3339(g.last_update_time), "member_entity_ids": g.member_entity_ids,
        "member_group_ids": g.member_group_ids, "metadata": g.metadata, "modify_index": 0,
        "name": g.name, "namespace_id": "root", "parent_group_ids": parents, "policies": g.policies,
        "type": "internal",
    }))
}
