//! The mount table and the router that maps a request path to a mounted backend.

use crate::error::barrier_err;
use async_trait::async_trait;
use coffer_barrier::{Barrier, SecureStorage};
use coffer_sdk::registry::BackendRegistry;
use coffer_sdk::{Backend, LogicalError, StorageView};
use std::collections::BTreeMap;
use std::sync::Arc;

// The mount table itself (entries, their rendering, the persisted tables) belongs to the
// system backend (`coffer-system`); the router over it is the core's.
pub use coffer_system::mount_table::{
    is_protected_mount_path, normalize_mount_path, token_mount_entry, MountConfig, MountEntry, MountTable,
    AUTH_TABLE_PATH, MOUNT_TABLE_PATH,
};

/// A backend's storage view: the mount's prefix inside the barrier.
pub struct PrefixView {
    pub barrier: Arc<Barrier>,
    pub prefix: String,
}

#[async_trait]
impl StorageView for PrefixView {
    async fn get(&self, key: &str) -> coffer_sdk::Result<Option<Vec<u8>>> {
        Ok(self.barrier.get(&format!("{}{key}", self.prefix)).await.map_err(barrier_err)?.map(|v| v.to_vec()))
    }
    async fn put(&self, key: &str, value: &[u8]) -> coffer_sdk::Result<()> {
        self.barrier.put(&format!("{}{key}", self.prefix), value).await.map_err(barrier_err)
    }
    async fn delete(&self, key: &str) -> coffer_sdk::Result<()> {
        self.barrier.delete(&format!("{}{key}", self.prefix)).await.map_err(barrier_err)
    }
    async fn list(&self, prefix: &str) -> coffer_sdk::Result<Vec<String>> {
        self.barrier.list(&format!("{}{prefix}", self.prefix)).await.map_err(barrier_err)
    }
}

/// A mounted backend ready to serve.
pub struct Route {
    /// The request-path prefix it serves: `kv/` or `auth/userpass/`.
    pub prefix: String,
    pub is_auth: bool,
    pub entry: MountEntry,
    pub backend: Arc<dyn Backend>,
    pub view: Arc<PrefixView>,
}

impl Route {
    /// The flags of `rest` (a path below the mount) as the backend declares them. A plugin
    /// mount declares its special paths once its process runs, so it is started first.
    pub async fn path_flags(&self, rest: &str) -> Result<coffer_sdk::framework::PathFlags, LogicalError> {
        if self.backend.backend_type() == "plugin" {
            self.backend.ensure_started().await?;
        }
        Ok(self.backend.path_flags(rest))
    }
}

/// Routes are kept longest path first so the first prefix match is the most specific.
#[derive(Default)]
pub struct Router {
    pub routes: Vec<Arc<Route>>,
}

impl Router {
    pub fn new(mut routes: Vec<Arc<Route>>) -> Self {
        routes.sort_by_key(|r| std::cmp::Reverse(r.prefix.len()));
        Router { routes }
    }

    /// The mount serving `path` and the path relative to it.
    pub fn resolve<'a>(&'a self, path: &'a str) -> Option<(&'a Arc<Route>, &'a str)> {
        for r in &self.routes {
            let mp = r.prefix.as_str();
            if let Some(rest) = path.strip_prefix(mp) {
                return Some((r, rest));
            }
            if path.len() + 1 == mp.len() && mp.starts_with(path) {
                return Some((r, ""));
            }
        }
        None
    }
}

/// Builds the backend for a mount type, or explains why it cannot.
pub fn backend_for(registry: &BackendRegistry, entry: &MountEntry) -> Result<Arc<dyn Backend>, LogicalError> {
    let none = BTreeMap::new();
    registry.build(&entry.mount_type, entry.options.as_ref().unwrap_or(&none)).unwrap_or_else(|| {
        Err(LogicalError::bad_request(format!("plugin not found in the catalog: {}", entry.mount_type)))
    })
}
