//! The policy store: named ACL policies in the barrier, compiled once, and a cache of merged
//! ACLs per policy set so a request's check costs one hash lookup plus rule matching.

use crate::error::barrier_err;
use crate::policy::{self, Acl, Policy, StoredPolicy};
use coffer_barrier::{Barrier, SecureStorage};
use coffer_sdk::LogicalError;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

const PREFIX: &str = "sys/policy/";

pub struct PolicyStore {
    barrier: Arc<Barrier>,
    policies: RwLock<HashMap<String, Arc<Policy>>>,
    acls: RwLock<HashMap<Vec<String>, Arc<Acl>, foldhash::fast::RandomState>>,
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
        let store =
            PolicyStore { barrier, policies: RwLock::new(HashMap::new()), acls: RwLock::new(HashMap::default()) };
        let names = store.barrier.list(PREFIX).await.map_err(barrier_err)?;
        for n in names {
            let Some(raw) = store.barrier.get(&format!("{PREFIX}{n}")).await.map_err(barrier_err)? else { continue };
            let sp: StoredPolicy =
                serde_json::from_slice(&raw).map_err(|_| LogicalError::internal("stored policy is unreadable"))?;
            match policy::parse(&sp.name, &sp.policy) {
                Ok(p) => {
                    store.policies.write().map_err(lock_err)?.insert(sp.name.clone(), Arc::new(p));
                }
                Err(e) => tracing::error!(policy = %sp.name, error = %e, "stored policy no longer parses; ignored"),
            }
        }
        if !store.policies.read().map_err(lock_err)?.contains_key("default") {
            store.set("default", policy::DEFAULT_POLICY).await?;
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

    pub async fn set(&self, name: &str, text: &str) -> Result<(), LogicalError> {
        let name = normalize_name(name)?;
        if name == "root" {
            return Err(LogicalError::bad_request("cannot update \"root\" policy"));
        }
        let parsed = policy::parse(&name, text)?;
        let raw = serde_json::to_vec(&StoredPolicy { name: name.clone(), policy: text.to_string() })
            .map_err(|e| LogicalError::internal(e.to_string()))?;
        self.barrier.put(&format!("{PREFIX}{name}"), &raw).await.map_err(barrier_err)?;
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
        self.barrier.delete(&format!("{PREFIX}{name}")).await.map_err(barrier_err)?;
        self.policies.write().map_err(lock_err)?.remove(&name);
        self.acls.write().map_err(lock_err)?.clear();
        Ok(())
    }

    /// The merged ACL of a set of policy names (unknown names grant nothing).
    pub fn acl(&self, names: &[String]) -> Arc<Acl> {
        let mut key: Vec<String> = names.to_vec();
        key.sort();
        key.dedup();
        if let Some(a) = self.acls.read().ok().and_then(|c| c.get(&key).cloned()) {
            return a;
        }
        let mut ps: Vec<Arc<Policy>> = Vec::with_capacity(key.len());
        for n in &key {
            if n == "root" {
                ps.push(Arc::new(Policy { name: "root".into(), raw: String::new(), rules: vec![] }));
            } else if n == crate::wrapping::WRAPPING_POLICY {
                if let Ok(p) = policy::parse(n, crate::wrapping::WRAPPING_POLICY_TEXT) {
                    ps.push(Arc::new(p));
                }
            } else if let Some(p) = self.get(n) {
                ps.push(p);
            }
        }
        let acl = Arc::new(Acl::new(&ps));
        if let Ok(mut c) = self.acls.write() {
            if c.len() > 10_000 {
                c.clear();
            }
            c.insert(key, acl.clone());
        }
        acl
    }
}

/// Paths that need `sudo` on top of the operation's capability.
pub fn is_sudo_path(path: &str) -> bool {
    const EXACT: &[&str] = &[
        "sys/audit",
        "sys/raw",
        "sys/rotate",
        "sys/rotate/keyring",
        "sys/seal",
        "sys/step-down",
        "sys/remount",
        "sys/leases",
        "auth/token/accessors/",
        "auth/token/accessors",
        "auth/token/revoke-orphan",
    ];
    const PREFIX: &[&str] = &[
        "sys/audit/",
        "sys/raw/",
        "sys/auth/",
        "sys/plugins/catalog/",
        "sys/revoke-prefix/",
        "sys/revoke-force/",
        "sys/leases/revoke-prefix/",
        "sys/leases/revoke-force/",
        "sys/leases/lookup/",
        "sys/config/",
        "sys/internal/inspect/",
        "auth/token/revoke-orphan/",
    ];
    EXACT.contains(&path) || PREFIX.iter().any(|p| path.starts_with(p))
}
