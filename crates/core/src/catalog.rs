//! The plugin catalog (`sys/plugins/catalog/…`): external plugin binaries registered by type,
//! name and version, pinned by SHA-256 and confined to `plugin_directory`.
//!
//! The core launches nothing itself: a [`PluginLauncher`] (the gRPC plugin host, injected by
//! the server binary) turns a verified [`PluginSpec`] into a `Backend`. The binary's digest is
//! checked again before every launch, so a replaced file is refused.

use crate::error::barrier_err;
use crate::system_paths::CatalogOp;
use crate::{Active, Core, CoreResponse, Result};
use coffer_barrier::SecureStorage;
use coffer_sdk::field::{parse_string, parse_string_slice};
use coffer_sdk::framework::FieldData;
use coffer_sdk::registry::BackendKind;
use coffer_sdk::{Backend, LogicalError, Operation};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const PREFIX: &str = "core/plugin-catalog/";
pub const TYPES: &[&str] = &["secret", "auth", "database"];

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CatalogEntry {
    pub name: String,
    #[serde(rename = "type")]
    pub plugin_type: String,
    pub command: String,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub env: Vec<String>,
    pub sha256: String,
    #[serde(default)]
    pub version: String,
    /// Registered from a `plugin` stanza of the server configuration (OpenBao's
    /// `declarative`), not through the API.
    #[serde(default)]
    pub declarative: bool,
}

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

/// Orders versions as semantic versions (`v1.10.0` after `v1.9.2`, a pre-release before its
/// release); text that is not a version sorts before every version, by its text.
fn version_order(v: &str) -> (bool, Vec<u64>, bool, String) {
    let core_and_pre = v.trim_start_matches('v').split('+').next().unwrap_or("");
    let (core, pre) = match core_and_pre.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (core_and_pre, None),
    };
    let nums: Option<Vec<u64>> = core.split('.').map(|n| n.parse().ok()).collect();
    match nums {
        Some(n) if !n.is_empty() => (true, n, pre.is_none(), pre.unwrap_or("").to_string()),
        _ => (false, vec![], false, v.to_string()),
    }
}

fn key(ty: &str, name: &str, version: &str) -> String {
    let v = if version.is_empty() { "_" } else { version };
    format!("{PREFIX}{ty}/{name}/{v}")
}

/// Resolves `command` inside `dir`, refusing anything that escapes it.
pub fn resolve_command(dir: &Path, command: &str) -> Result<PathBuf> {
    if command.is_empty() {
        return Err(LogicalError::bad_request("command is required"));
    }
    let rel = Path::new(command);
    if rel.is_absolute() || rel.components().any(|c| !matches!(c, std::path::Component::Normal(_))) {
        return Err(LogicalError::bad_request(format!(
            "command {command:?} must be a file name inside the plugin directory (no absolute paths or '..')"
        )));
    }
    let base =
        dir.canonicalize().map_err(|e| LogicalError::bad_request(format!("plugin directory is not usable: {e}")))?;
    let full = base.join(rel);
    let real = full.canonicalize().map_err(|e| {
        LogicalError::bad_request(format!("plugin command {command:?} not found in the plugin directory"))
            .with_source(e)
    })?;
    if !real.starts_with(&base) {
        return Err(LogicalError::bad_request(format!(
            "plugin command {command:?} resolves outside the plugin directory"
        )));
    }
    if !real.is_file() {
        return Err(LogicalError::bad_request(format!("plugin command {command:?} is not a file")));
    }
    Ok(real)
}

/// SHA-256 of a file, hex.
pub fn file_sha256(path: &Path) -> Result<String> {
    let bytes =
        std::fs::read(path).map_err(|e| LogicalError::bad_request(format!("cannot read plugin binary: {e}")))?;
    Ok(hex::encode(coffer_crypto::sha256(&bytes)))
}

impl Core {
    fn plugin_dir(&self) -> Result<PathBuf> {
        self.config.plugin_directory.clone().map(PathBuf::from).ok_or_else(|| {
            LogicalError::bad_request("no plugin_directory is configured; external plugins are disabled")
        })
    }

    pub(crate) async fn catalog_get(&self, ty: &str, name: &str, version: &str) -> Result<Option<CatalogEntry>> {
        if !version.is_empty() {
            return match self.barrier.get(&key(ty, name, version)).await.map_err(barrier_err)? {
                Some(raw) => Ok(serde_json::from_slice(&raw).ok()),
                None => Ok(None),
            };
        }
        // No version asked: the unversioned entry, else the highest version.
        let versions = self.barrier.list(&format!("{PREFIX}{ty}/{name}/")).await.map_err(barrier_err)?;
        let pick = if versions.iter().any(|v| v == "_") {
            Some("_".to_string())
        } else {
            versions.into_iter().max_by_key(|v| version_order(v))
        };
        match pick {
            Some(v) => match self.barrier.get(&format!("{PREFIX}{ty}/{name}/{v}")).await.map_err(barrier_err)? {
                Some(raw) => Ok(serde_json::from_slice(&raw).ok()),
                None => Ok(None),
            },
            None => Ok(None),
        }
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
    fn builtin_names(&self, ty: &str) -> Vec<String> {
        BackendKind::from_name(ty)
            .map(|k| self.registry.listed_names(k).into_iter().map(str::to_string).collect())
            .unwrap_or_default()
    }

    /// `sys/plugins/catalog…` and `sys/plugins/reload/backend`.
    pub(crate) async fn handle_catalog(
        &self,
        active: &Active,
        op: Operation,
        route: CatalogOp,
        url: &FieldData,
        d: &Map<String, Value>,
    ) -> Result<CoreResponse> {
        use Operation::*;
        // The row's URL fields: `type` and `name` (a name is one segment, as it always was).
        let (ty, name) = (url.str("type").unwrap_or(""), url.str("name").unwrap_or(""));
        let segs: Vec<&str> = match route {
            CatalogOp::All => vec![],
            CatalogOp::OfType => vec![ty],
            CatalogOp::Entry if !name.contains('/') => vec![ty, name],
            CatalogOp::Entry | CatalogOp::ByName => {
                let _ = active;
                let sub = [ty, name].iter().filter(|s| !s.is_empty()).copied().collect::<Vec<_>>().join("/");
                return Err(LogicalError::unsupported_path(&format!("sys/plugins/catalog/{sub}")));
            }
        };
        match (segs.as_slice(), op) {
            ([], Read | List) => {
                let mut out = Map::new();
                let mut detailed = Vec::new();
                for ty in TYPES {
                    let mut names: Vec<String> = self.builtin_names(ty);
                    for n in &names {
                        detailed.push(json!({ "name": n, "type": ty, "builtin": true, "version": format!("v{}+builtin.coffer", env!("CARGO_PKG_VERSION")), "deprecation_status": "supported" }));
                    }
                    for n in self.barrier.list(&format!("{PREFIX}{ty}/")).await.map_err(barrier_err)? {
                        let n = n.trim_end_matches('/').to_string();
                        for v in self.barrier.list(&format!("{PREFIX}{ty}/{n}/")).await.map_err(barrier_err)? {
                            if let Some(raw) =
                                self.barrier.get(&format!("{PREFIX}{ty}/{n}/{v}")).await.map_err(barrier_err)?
                            {
                                if let Ok(e) = serde_json::from_slice::<CatalogEntry>(&raw) {
                                    detailed.push(json!({ "name": e.name, "type": ty, "builtin": false, "version": e.version, "sha256": e.sha256, "command": e.command }));
                                }
                            }
                        }
                        if !names.contains(&n) {
                            names.push(n);
                        }
                    }
                    names.sort();
                    out.insert(ty.to_string(), json!(names));
                }
                out.insert("detailed".into(), Value::Array(detailed));
                Ok(CoreResponse::data(out))
            }
            ([ty], List | Read) if TYPES.contains(ty) => {
                let mut names: Vec<String> = self
                    .barrier
                    .list(&format!("{PREFIX}{ty}/"))
                    .await
                    .map_err(barrier_err)?
                    .into_iter()
                    .map(|n| n.trim_end_matches('/').to_string())
                    .collect();
                names.extend(self.builtin_names(ty));
                names.sort();
                names.dedup();
                Ok(CoreResponse::data(obj(json!({ "keys": names }))))
            }
            ([ty, name], _) if TYPES.contains(ty) => {
                let version =
                    d.get("version").and_then(Value::as_str).unwrap_or("").trim_start_matches('=').to_string();
                match op {
                    Read => match self.catalog_get(ty, name, &version).await? {
                        Some(e) => Ok(CoreResponse::data(obj(json!({
                            "name": e.name, "type": ty, "command": e.command, "args": e.args, "sha256": e.sha256,
                            "builtin": false, "version": e.version, "deprecation_status": "",
                            "declarative": e.declarative, "oci": false,
                        })))),
                        None => Err(LogicalError::not_found()),
                    },
                    Create | Update => {
                        let sha = d.get("sha256").and_then(Value::as_str).unwrap_or("").to_lowercase();
                        if sha.len() != 64 || !sha.chars().all(|c| c.is_ascii_hexdigit()) {
                            return Err(LogicalError::bad_request("sha256 must be 64 hex characters"));
                        }
                        let command = d
                            .get("command")
                            .map(|v| parse_string("command", v))
                            .transpose()?
                            .unwrap_or_else(|| name.to_string());
                        let args = d
                            .get("args")
                            .filter(|v| !v.is_null())
                            .map(|v| parse_string_slice("args", v))
                            .transpose()?
                            .unwrap_or_default();
                        let env = d
                            .get("env")
                            .filter(|v| !v.is_null())
                            .map(|v| parse_string_slice("env", v))
                            .transpose()?
                            .unwrap_or_default();
                        for kv in &env {
                            if !kv.contains('=') {
                                return Err(LogicalError::bad_request(format!("env entry {kv:?} must be KEY=VALUE")));
                            }
                        }
                        let dir = self.plugin_dir()?;
                        let path = resolve_command(&dir, &command)?;
                        let actual = file_sha256(&path)?;
                        if actual != sha {
                            return Err(LogicalError::bad_request(format!(
                                "the binary's SHA-256 {actual} does not match the given sha256 {sha}"
                            )));
                        }
                        let e = CatalogEntry {
                            name: name.to_string(),
                            plugin_type: ty.to_string(),
                            command,
                            args,
                            env,
                            sha256: sha,
                            version: version.clone(),
                            declarative: false,
                        };
                        let raw = serde_json::to_vec(&e).map_err(|e| LogicalError::internal(e.to_string()))?;
                        self.barrier.put(&key(ty, name, &version), &raw).await.map_err(barrier_err)?;
                        Ok(CoreResponse::default())
                    }
                    Delete => {
                        self.barrier.delete(&key(ty, name, &version)).await.map_err(barrier_err)?;
                        Ok(CoreResponse::default())
                    }
                    _ => Err(LogicalError::unsupported_operation()),
                }
            }
            _ => Err(LogicalError::unsupported_path(&format!("sys/plugins/catalog/{}", segs.join("/")))),
        }
    }
}

impl Core {
    /// Writes the plugins declared in the server configuration to the catalog (at every
    /// unseal; the binary checked their files at start). An entry already stored as declared
    /// is left as it is.
    pub(crate) async fn register_declared_plugins(&self) -> Result<()> {
        for e in &self.config.declared_plugins {
            let k = key(&e.plugin_type, &e.name, &e.version);
            let stored = self.barrier.get(&k).await.map_err(barrier_err)?;
            if stored.as_deref().and_then(|raw| serde_json::from_slice::<CatalogEntry>(raw).ok()).as_ref() == Some(e) {
                continue;
            }
            tracing::info!(name = %e.name, r#type = %e.plugin_type, version = %e.version, sha256 = %e.sha256, "registering declared plugin");
            let raw = serde_json::to_vec(e).map_err(|err| LogicalError::internal(err.to_string()))?;
            self.barrier.put(&k, &raw).await.map_err(barrier_err)?;
        }
        Ok(())
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

#[cfg(test)]
mod tests {
    #[test]
    fn versions_order_semantically() {
        let mut v = vec!["v1.9.2", "v1.10.0", "v1.10.0-rc1", "v0.1.0", "latest"];
        v.sort_by_key(|x| super::version_order(x));
        assert_eq!(v, ["latest", "v0.1.0", "v1.9.2", "v1.10.0-rc1", "v1.10.0"]);
    }
    use super::*;

    #[test]
    fn commands_are_confined_to_the_plugin_directory() {
        let dir = std::env::temp_dir().join(format!("coffer-catalog-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("good"), b"#!/bin/sh\n").unwrap();
        assert!(resolve_command(&dir, "good").is_ok());
        assert!(resolve_command(&dir, "../etc/passwd").is_err());
        assert!(resolve_command(&dir, "/bin/sh").is_err());
        assert!(resolve_command(&dir, "missing").is_err());
        let _ = std::os::unix::fs::symlink("/bin/sh", dir.join("escape"));
        assert!(resolve_command(&dir, "escape").is_err(), "a symlink out of the directory is refused");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
