//! The plugin catalog (`sys/plugins/catalog/…`): external plugin binaries registered by type,
//! name and version, pinned by SHA-256 and confined to `plugin_directory`.
//!
//! The core launches nothing itself: a [`PluginLauncher`] (the gRPC plugin host, injected by
//! the server binary) turns a verified [`PluginSpec`] into a `Backend`. The binary's digest is
//! checked again before every launch, so a replaced file is refused.

use crate::{Active, Core, CoreResponse, Result};
use coffer_sdk::field::parse_string_slice;
use coffer_sdk::registry::BackendKind;
use coffer_sdk::{Backend, LogicalError};
use serde_json::{json, Map, Value};
use std::path::PathBuf;
use std::sync::Arc;

// The entries and their endpoints belong to the system backend (`coffer-system`).
pub use coffer_system::catalog::{file_sha256, resolve_command, CatalogEntry, TYPES};

/// Everything a launcher needs: the resolved binary, its pinned digest, args and env.
#[derive(Debug, Clone)]
pub struct PluginSpec {
    pub name: String,
    pub path: PathBuf,
    pub sha256: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub version: String,
    /// `secret` or `auth`: what the plugin must report itself to be.
    pub kind: String,
}

/// Starts a plugin process and speaks the plugin protocol with it.
#[async_trait::async_trait]
pub trait PluginLauncher: Send + Sync {
    async fn launch(&self, spec: &PluginSpec) -> std::result::Result<Arc<dyn Backend>, crate::ha::BoxError>;

    /// Starts a database plugin (catalog type `database`) and speaks the database plugin
    /// protocol with it. A launcher without that protocol refuses.
    async fn launch_database(
        &self,
        spec: &PluginSpec,
    ) -> std::result::Result<Box<dyn coffer_sdk::database::Database>, crate::ha::BoxError> {
        Err(format!("this server cannot run the external database plugin {:?}", spec.name).into())
    }
}

impl Core {
    fn plugin_dir(&self) -> Result<PathBuf> {
        coffer_system::catalog::plugin_dir(self.config.plugin_directory.clone())
    }

    pub(crate) async fn catalog_get(&self, ty: &str, name: &str, version: &str) -> Result<Option<CatalogEntry>> {
        coffer_system::catalog::get(&self.barrier, ty, name, version).await
    }

    /// Verifies a catalog entry's binary (location and digest): what a launcher starts.
    fn verified_spec(&self, e: &CatalogEntry) -> Result<PluginSpec> {
        let dir = self.plugin_dir()?;
        let path = resolve_command(&dir, &e.command)?;
        let actual = file_sha256(&path)?;
        if !coffer_crypto::ct_eq(actual.as_bytes(), e.sha256.to_lowercase().as_bytes()) {
            return Err(LogicalError::bad_request(format!(
                "plugin {:?}: the binary's SHA-256 {actual} does not match the catalog's {}",
                e.name, e.sha256
            )));
        }
        let env =
            e.env.iter().filter_map(|kv| kv.split_once('=').map(|(k, v)| (k.to_string(), v.to_string()))).collect();
        Ok(PluginSpec {
            name: e.name.clone(),
            path,
            sha256: actual,
            args: e.args.clone(),
            env,
            version: e.version.clone(),
            kind: e.plugin_type.clone(),
        })
    }

    fn launcher(&self) -> Result<Arc<dyn PluginLauncher>> {
        self.plugin_launcher
            .read()
            .ok()
            .and_then(|l| l.clone())
            .ok_or_else(|| LogicalError::internal("no plugin launcher is available in this server"))
    }

    /// Verifies a catalog entry's binary (location and digest) and launches it.
    pub(crate) async fn launch_plugin(&self, e: &CatalogEntry) -> Result<Arc<dyn Backend>> {
        let spec = self.verified_spec(e)?;
        self.launcher()?
            .launch(&spec)
            .await
            .map_err(|m| LogicalError::bad_request(format!("plugin {:?} failed to start: {m}", e.name)))
    }

    /// The external database plugin `name` (catalog type `database`; `version` empty for the
    /// unversioned entry, else the highest version), verified and started: what the database
    /// engine falls back to when no built-in plugin has that name. `None` when the catalog
    /// has no such entry.
    pub async fn resolve_database_plugin(
        &self,
        name: &str,
        version: &str,
    ) -> Result<Option<Box<dyn coffer_sdk::database::Database>>> {
        let Some(e) = self.catalog_get("database", name, version).await? else {
            return Ok(None);
        };
        let spec = self.verified_spec(&e)?;
        let db = self
            .launcher()?
            .launch_database(&spec)
            .await
            .map_err(|m| LogicalError::bad_request(format!("database plugin {name:?} failed to start: {m}")))?;
        Ok(Some(db))
    }

    /// The builtins the catalog lists for type `ty` (from the injected registry), sorted.
    pub(crate) fn builtin_names(&self, ty: &str) -> Vec<String> {
        BackendKind::from_name(ty)
            .map(|k| self.registry.listed_names(k).into_iter().map(str::to_string).collect())
            .unwrap_or_default()
    }
}

impl Core {
    /// Writes the plugins declared in the server configuration to the catalog (at every
    /// unseal; the binary checked their files at start). An entry already stored as declared
    /// is left as it is.
    pub(crate) async fn register_declared_plugins(&self) -> Result<()> {
        coffer_system::catalog::register_declared(&self.barrier, &self.config.declared_plugins).await
    }

    /// `sys/plugins/reload/backend`: restarts the running instances of a plugin (or of the
    /// given mounts); the next request starts them again, verified.
    pub(crate) async fn reload_plugins(&self, active: &Active, d: &Map<String, Value>) -> Result<CoreResponse> {
        let plugin = d.get("plugin").and_then(Value::as_str).unwrap_or("").to_string();
        let mounts: Vec<String> = match d.get("mounts").filter(|v| !v.is_null()) {
            Some(v) => {
                parse_string_slice("mounts", v)?.into_iter().map(|m| format!("{}/", m.trim_matches('/'))).collect()
            }
            None => vec![],
        };
        if plugin.is_empty() == mounts.is_empty() {
            return Err(LogicalError::bad_request("exactly one of 'plugin' or 'mounts' must be set"));
        }
        let secrets = active.mounts.lock().await;
        let auths = active.auth_mounts.lock().await;
        let mut n = 0;
        for e in secrets.entries.iter().chain(auths.entries.iter()) {
            let hit = if plugin.is_empty() {
                mounts.contains(&e.path) || mounts.contains(&format!("auth/{}", e.path))
            } else {
                e.mount_type == plugin
            };
            if hit {
                if let Ok(mut p) = self.plugins.write() {
                    p.remove(&e.uuid);
                }
                n += 1;
            }
        }
        self.install_router(active, &secrets, &auths)?;
        let mut r = CoreResponse::data(obj(json!({ "reload_id": uuid::Uuid::new_v4().to_string() })));
        r.warnings.push(format!("{n} mount(s) will restart their plugin on the next request"));
        Ok(r)
    }
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// A plugin mounted before this process started: verified and launched on first use.
pub struct LazyPlugin {
    pub entry: CatalogEntry,
    pub dir: Option<PathBuf>,
    pub launcher: Option<Arc<dyn PluginLauncher>>,
    inner: tokio::sync::OnceCell<Arc<dyn Backend>>,
}

impl LazyPlugin {
    pub fn new(entry: CatalogEntry, dir: Option<PathBuf>, launcher: Option<Arc<dyn PluginLauncher>>) -> Self {
        LazyPlugin { entry, dir, launcher, inner: tokio::sync::OnceCell::new() }
    }

    async fn get(&self) -> Result<&Arc<dyn Backend>> {
        self.inner
            .get_or_try_init(|| async {
                let dir =
                    self.dir.clone().ok_or_else(|| LogicalError::internal("no plugin_directory is configured"))?;
                let path = resolve_command(&dir, &self.entry.command)?;
                let actual = file_sha256(&path)?;
                if !coffer_crypto::ct_eq(actual.as_bytes(), self.entry.sha256.as_bytes()) {
                    return Err(LogicalError::internal(format!(
                        "plugin {:?}: binary digest changed; refusing to launch",
                        self.entry.name
                    )));
                }
                let launcher =
                    self.launcher.clone().ok_or_else(|| LogicalError::internal("no plugin launcher available"))?;
                let env = self
                    .entry
                    .env
                    .iter()
                    .filter_map(|kv| kv.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
                    .collect();
                let spec = PluginSpec {
                    name: self.entry.name.clone(),
                    path,
                    sha256: actual,
                    args: self.entry.args.clone(),
                    env,
                    version: self.entry.version.clone(),
                    kind: self.entry.plugin_type.clone(),
                };
                launcher
                    .launch(&spec)
                    .await
                    .map_err(|m| LogicalError::internal(format!("plugin {:?} failed to start: {m}", self.entry.name)))
            })
            .await
    }
}

#[async_trait::async_trait]
impl Backend for LazyPlugin {
    fn backend_type(&self) -> &'static str {
        "plugin"
    }
    fn paths(&self) -> &[coffer_sdk::framework::PathSpec] {
        match self.inner.get() {
            Some(b) => b.paths(),
            None => &[],
        }
    }
    async fn handle_request(&self, req: coffer_sdk::Request) -> coffer_sdk::Result<Option<coffer_sdk::Response>> {
        self.get().await?.handle_request(req).await
    }
    /// Asked once the plugin runs (the core starts a plugin mount before asking); a plugin
    /// not started yet has no unauthenticated paths and every path counts as root-protected.
    fn path_flags(&self, path: &str) -> coffer_sdk::framework::PathFlags {
        match self.inner.get() {
            Some(b) => b.path_flags(path),
            None => coffer_sdk::framework::PathFlags::NORMAL.sudo(),
        }
    }
    fn special_paths(&self) -> coffer_sdk::framework::SpecialPaths {
        match self.inner.get() {
            Some(b) => b.special_paths(),
            None => Default::default(),
        }
    }
    async fn exists(&self, req: &coffer_sdk::Request) -> coffer_sdk::Result<Option<bool>> {
        self.get().await?.exists(req).await
    }
    async fn ensure_started(&self) -> coffer_sdk::Result<()> {
        self.get().await.map(|_| ())
    }
    async fn revoke_secret(&self, req: &coffer_sdk::Request, internal: &Map<String, Value>) -> coffer_sdk::Result<()> {
        self.get().await?.revoke_secret(req, internal).await
    }
    async fn renew_secret(
        &self,
        req: &coffer_sdk::Request,
        internal: &Map<String, Value>,
        ttl: i64,
    ) -> coffer_sdk::Result<i64> {
        self.get().await?.renew_secret(req, internal, ttl).await
    }
}
