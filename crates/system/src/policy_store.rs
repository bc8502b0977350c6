//! The policy store: named ACL policies in the barrier, compiled once, and a cache of merged
//! ACLs per policy set so a request's check costs one hash lookup plus rule matching.

use coffer_acl::{Acl, Policy};
use coffer_barrier::logical_error as barrier_err;
use coffer_barrier::{Barrier, SecureStorage};
use coffer_sdk::LogicalError;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

const PREFIX: &str = "sys/policy/";

/// The built-in policy of response-wrapping tokens (never stored).
pub const WRAPPING_POLICY: &str = "response-wrapping";

/// The built-in policy of wrapping tokens: unwrap and look themselves up, nothing else.
pub const WRAPPING_POLICY_TEXT: &str = r#"path "sys/wrapping/unwrap" { capabilities = ["update"] }
path "sys/wrapping/lookup" { capabilities = ["update"] }
path "sys/wrapping/rewrap" { capabilities = ["update"] }
"#;

fn rfc3339_now() -> String {
    time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// A policy's check-and-set state, as `sys/policies/acl/<name>` shows it.
#[derive(Debug, Clone, Default)]
pub struct PolicyMeta {
    pub version: u64,
    pub modified: String,
    pub cas_required: bool,
}

/// What a write asks for beyond the text: `cas` (the version it replaces; 0 or -1: the policy
/// must not exist yet) and `cas_required` (from now on every change must give `cas`).
#[derive(Debug, Clone, Copy, Default)]
pub struct WriteCheck {
    pub cas: Option<i64>,
    pub cas_required: Option<bool>,
}

/// A policy as the barrier holds it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredPolicy {
    pub name: String,
    pub policy: String,
    /// Check-and-set version: 1 for the first write, one more for each change (0: written by a
    /// version of Coffer that did not count, read as 1).
    #[serde(default)]
    pub version: u64,
    /// RFC 3339 time of the last write ("" when unknown).
    #[serde(default)]
    pub modified: String,
    /// Every change must name the version it replaces (`cas`).
    #[serde(default)]
    pub cas_required: bool,
}

pub struct PolicyStore {
    barrier: Arc<Barrier>,
    policies: RwLock<HashMap<String, Arc<Policy>>>,
    meta: RwLock<HashMap<String, PolicyMeta>>,
    /// Serialises writes and deletes (check-and-set).
    write_lock: tokio::sync::Mutex<()>,
    /// Merged ACLs by sorted policy names (plus, for templated policies, the identity they
    /// were rendered for), each with whether any of its policies is templated.
    acls: RwLock<AclCache>,
}

/// Sorted policy names (and identity) → (ACL, whether a policy of it is templated).
type AclCache = HashMap<Vec<String>, (Arc<Acl>, bool), foldhash::fast::RandomState>;

/// What [`PolicyStore::token_acl`] found.
pub enum AclLookup {
    Ready(Arc<Acl>),
    /// A templated policy is involved and the ACL for this identity is not cached: build
    /// the identity's facts and call [`PolicyStore::templated_acl`] with this key.
    NeedsFacts(Vec<String>),
}

fn lock_err<T>(_: T) -> LogicalError {
    LogicalError::internal("policy store lock poisoned")
}

/// Normalises and validates a policy name.
pub fn normalize_name(name: &str) -> Result<String, LogicalError> {
    let n = name.trim().to_lowercase();
    if n.is_empty() {
        return Err(LogicalError::bad_request("policy name must not be empty"));
    }
    if n.contains(['/', '\0', '*', '+']) || n.len() > 512 {
        return Err(LogicalError::bad_request(format!("invalid policy name {name:?}")));
    }
    Ok(n)
}

impl PolicyStore {
    pub async fn load(barrier: Arc<Barrier>) -> Result<Self, LogicalError> {
        let store = PolicyStore {
            barrier,
            policies: RwLock::new(HashMap::new()),
            meta: RwLock::new(HashMap::new()),
            write_lock: tokio::sync::Mutex::new(()),
            acls: RwLock::new(HashMap::default()),
        };
        let names = store.barrier.list(PREFIX).await.map_err(barrier_err)?;
        for n in names {
            let Some(raw) = store.barrier.get(&format!("{PREFIX}{n}")).await.map_err(barrier_err)? else { continue };
            let sp: StoredPolicy = serde_json::from_slice(&raw)
                .map_err(|e| LogicalError::internal("stored policy is unreadable").with_source(e))?;
            match coffer_acl::parse(&sp.name, &sp.policy) {
                Ok(p) => {
                    store.policies.write().map_err(lock_err)?.insert(sp.name.clone(), Arc::new(p));
                    store.meta.write().map_err(lock_err)?.insert(
                        sp.name.clone(),
                        PolicyMeta { version: sp.version.max(1), modified: sp.modified, cas_required: sp.cas_required },
                    );
                }
                Err(e) => tracing::error!(policy = %sp.name, error = %e, "stored policy no longer parses; ignored"),
            }
        }
        if !store.policies.read().map_err(lock_err)?.contains_key("default") {
            store.set("default", coffer_acl::DEFAULT_POLICY, WriteCheck::default()).await?;
        }
        Ok(store)
    }

    pub fn get(&self, name: &str) -> Option<Arc<Policy>> {
        self.policies.read().ok()?.get(name).cloned()
    }

    /// Names of stored policies (not including `root`), sorted.
    pub fn list(&self) -> Vec<String> {
        let mut v: Vec<String> = self.policies.read().map(|p| p.keys().cloned().collect()).unwrap_or_default();
        v.sort();
        v
    }

    /// The check-and-set state of a stored policy.
    pub fn meta(&self, name: &str) -> Option<PolicyMeta> {
        self.meta.read().ok()?.get(name).cloned()
    }

    pub async fn set(&self, name: &str, text: &str, check: WriteCheck) -> Result<(), LogicalError> {
        let name = normalize_name(name)?;
        if name == "root" {
            return Err(LogicalError::bad_request("cannot update \"root\" policy"));
        }
        let parsed = coffer_acl::parse(&name, text)?;
        // One writer at a time, so that a check-and-set compares against the version it replaces.
        let _writing = self.write_lock.lock().await;
        let old = self.meta(&name);
        let current = old.as_ref().map(|m| m.version).unwrap_or(0);
        let cas_required = check.cas_required.unwrap_or(old.as_ref().is_some_and(|m| m.cas_required));
        match check.cas {
            None if cas_required || old.as_ref().is_some_and(|m| m.cas_required) => {
                return Err(LogicalError::bad_request("check-and-set parameter required for this call"));
            }
            None => {}
            Some(-1) if old.is_some() => {
                return Err(LogicalError::bad_request("check-and-set parameter set to -1 on existing entry"));
            }
            Some(-1) => {}
            Some(c) if c < 0 || c as u64 != current => {
                return Err(LogicalError::bad_request(format!(
                    "check-and-set parameter {c} did not match the current version {current}"
                )));
            }
            Some(_) => {}
        }
        let meta = PolicyMeta { version: current + 1, modified: rfc3339_now(), cas_required };
        let raw = serde_json::to_vec(&StoredPolicy {
            name: name.clone(),
            policy: text.to_string(),
            version: meta.version,
            modified: meta.modified.clone(),
            cas_required,
        })
        .map_err(|e| LogicalError::internal(e.to_string()).with_source(e))?;
        self.barrier.put(&format!("{PREFIX}{name}"), &raw).await.map_err(barrier_err)?;
        self.meta.write().map_err(lock_err)?.insert(name.clone(), meta);
        self.policies.write().map_err(lock_err)?.insert(name, Arc::new(parsed));
        self.acls.write().map_err(lock_err)?.clear();
        Ok(())
    }

    pub async fn delete(&self, name: &str) -> Result<(), LogicalError> {
        let name = normalize_name(name)?;
        match name.as_str() {
            "root" => return Err(LogicalError::bad_request("cannot delete \"root\" policy")),
            "default" => return Err(LogicalError::bad_request("cannot delete \"default\" policy")),
            _ => {}
        }
        let _writing = self.write_lock.lock().await;
        self.barrier.delete(&format!("{PREFIX}{name}")).await.map_err(barrier_err)?;
        self.meta.write().map_err(lock_err)?.remove(&name);
        self.policies.write().map_err(lock_err)?.remove(&name);
        self.acls.write().map_err(lock_err)?.clear();
        Ok(())
    }

    /// The merged ACL of a set of policy names (unknown names grant nothing), for a token
    /// without identity: templated paths grant nothing.
    pub fn acl(&self, names: &[String]) -> Arc<Acl> {
        let key = Self::key(names);
        self.build(key, None).0
    }

    fn key(names: &[String]) -> Vec<String> {
        let mut key: Vec<String> = names.to_vec();
        key.sort();
        key.dedup();
        key
    }

    /// The ACL of a token's policies. `identity` is the token's entity id and the identity
    /// store's generation (`id@generation`) when it has an entity: templated policies are then
    /// rendered for it, cached per identity generation.
    pub fn token_acl(&self, names: &[String], identity: Option<String>) -> AclLookup {
        let key = Self::key(names);
        let (plain, templated) = self.build(key.clone(), None);
        let Some(identity) = identity.filter(|_| templated) else { return AclLookup::Ready(plain) };
        let mut key = key;
        // Policy names never contain NUL: this element cannot clash with a name.
        key.push(format!("\0identity:{identity}"));
        match self.acls.read().ok().and_then(|c| c.get(&key).map(|(a, _)| a.clone())) {
            Some(a) => AclLookup::Ready(a),
            None => AclLookup::NeedsFacts(key),
        }
    }

    /// Builds (and caches) the ACL for a key from [`AclLookup::NeedsFacts`].
    pub fn templated_acl(&self, key: Vec<String>, facts: Option<&coffer_acl::IdentityFacts>) -> Arc<Acl> {
        self.build(key, Some(facts)).0
    }

    fn build(&self, key: Vec<String>, facts: Option<Option<&coffer_acl::IdentityFacts>>) -> (Arc<Acl>, bool) {
        if let Some(hit) = self.acls.read().ok().and_then(|c| c.get(&key).cloned()) {
            return hit;
        }
        let mut ps: Vec<Arc<Policy>> = Vec::with_capacity(key.len());
        for n in &key {
            if n == "root" {
                ps.push(Arc::new(Policy { name: "root".into(), raw: String::new(), rules: vec![] }));
            } else if n == WRAPPING_POLICY {
                if let Ok(p) = coffer_acl::parse(n, WRAPPING_POLICY_TEXT) {
                    ps.push(Arc::new(p));
                }
            } else if let Some(p) = self.get(n) {
                ps.push(p);
            }
        }
        let templated = ps.iter().any(|p| p.is_templated());
        let acl = Arc::new(Acl::with_identity(&ps, facts.flatten()));
        if let Ok(mut c) = self.acls.write() {
            if c.len() > 10_000 {
                c.clear();
            }
            c.insert(key, (acl.clone(), templated));
        }
        (acl, templated)
    }
}
