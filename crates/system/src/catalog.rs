//! The plugin catalog (`sys/plugins/catalog/…`): external plugin binaries registered by type,
//! name and version, pinned by SHA-256 and confined to `plugin_directory`. The entries and
//! their endpoints are here; launching a plugin (verifying the binary again, starting the
//! process) is the core's.

use crate::services::SystemCore;
use crate::{obj, CoreResponse, Result};
use coffer_barrier::logical_error as barrier_err;
use coffer_barrier::{Barrier, SecureStorage};
use coffer_sdk::field::{parse_string, parse_string_slice};
use coffer_sdk::framework::FieldData;
use coffer_sdk::{LogicalError, Operation};
use coffer_system_paths::CatalogOp;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};

const PREFIX: &str = "core/plugin-catalog/";
/// The plugin types the catalog holds.
pub const TYPES: &[&str] = &["secret", "auth", "database"];

/// A registered plugin binary.
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

/// The configured `plugin_directory`, or why external plugins are disabled.
pub fn plugin_dir(configured: Option<String>) -> Result<PathBuf> {
    configured
        .map(PathBuf::from)
        .ok_or_else(|| LogicalError::bad_request("no plugin_directory is configured; external plugins are disabled"))
}

/// The catalog entry of type `ty` and `name` (`version` empty: the unversioned entry, else the
/// highest version). `None`: not registered.
pub async fn get(barrier: &Barrier, ty: &str, name: &str, version: &str) -> Result<Option<CatalogEntry>> {
    if !version.is_empty() {
        return match barrier.get(&key(ty, name, version)).await.map_err(barrier_err)? {
            Some(raw) => Ok(serde_json::from_slice(&raw).ok()),
            None => Ok(None),
        };
    }
    // No version asked: the unversioned entry, else the highest version.
    let versions = barrier.list(&format!("{PREFIX}{ty}/{name}/")).await.map_err(barrier_err)?;
    let pick = if versions.iter().any(|v| v == "_") {
        Some("_".to_string())
    } else {
        versions.into_iter().max_by_key(|v| version_order(v))
    };
    match pick {
        Some(v) => match barrier.get(&format!("{PREFIX}{ty}/{name}/{v}")).await.map_err(barrier_err)? {
            Some(raw) => Ok(serde_json::from_slice(&raw).ok()),
            None => Ok(None),
        },
        None => Ok(None),
    }
}

/// Writes the plugins declared in the server configuration to the catalog (at every unseal;
/// the binary checked their files at start). An entry already stored as declared is left as it
/// is.
pub async fn register_declared(barrier: &Barrier, declared: &[CatalogEntry]) -> Result<()> {
    for e in declared {
        let k = key(&e.plugin_type, &e.name, &e.version);
        let stored = barrier.get(&k).await.map_err(barrier_err)?;
        if stored.as_deref().and_then(|raw| serde_json::from_slice::<CatalogEntry>(raw).ok()).as_ref() == Some(e) {
            continue;
        }
        tracing::info!(name = %e.name, r#type = %e.plugin_type, version = %e.version, sha256 = %e.sha256, "registering declared plugin");
        let raw = serde_json::to_vec(e).map_err(|err| LogicalError::internal(err.to_string()).with_source(err))?;
        barrier.put(&k, &raw).await.map_err(barrier_err)?;
    }
    Ok(())
}

/// `sys/plugins/catalog…` and `sys/plugins/reload/backend`.
pub(crate) async fn handle_catalog<S: SystemCore>(
    s: &S,
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
            let sub = [ty, name].iter().filter(|s| !s.is_empty()).copied().collect::<Vec<_>>().join("/");
            return Err(LogicalError::unsupported_path(&format!("sys/plugins/catalog/{sub}")));
        }
    };
    match (segs.as_slice(), op) {
        ([], Read | List) => {
            let mut out = Map::new();
            let mut detailed = Vec::new();
            for ty in TYPES {
                let mut names: Vec<String> = s.builtin_plugin_names(ty);
                for n in &names {
                    detailed.push(json!({ "name": n, "type": ty, "builtin": true, "version": format!("v{}+builtin.coffer", env!("CARGO_PKG_VERSION")), "deprecation_status": "supported" }));
                }
                for n in s.barrier().list(&format!("{PREFIX}{ty}/")).await.map_err(barrier_err)? {
                    let n = n.trim_end_matches('/').to_string();
                    for v in s.barrier().list(&format!("{PREFIX}{ty}/{n}/")).await.map_err(barrier_err)? {
                        if let Some(raw) =
                            s.barrier().get(&format!("{PREFIX}{ty}/{n}/{v}")).await.map_err(barrier_err)?
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
            let mut names: Vec<String> = s
                .barrier()
                .list(&format!("{PREFIX}{ty}/"))
                .await
                .map_err(barrier_err)?
                .into_iter()
                .map(|n| n.trim_end_matches('/').to_string())
                .collect();
            names.extend(s.builtin_plugin_names(ty));
            names.sort();
            names.dedup();
            Ok(CoreResponse::data(obj(json!({ "keys": names }))))
        }
        ([ty, name], _) if TYPES.contains(ty) => {
            let version = d.get("version").and_then(Value::as_str).unwrap_or("").trim_start_matches('=').to_string();
            match op {
                Read => match get(s.barrier(), ty, name, &version).await? {
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
                    let dir = plugin_dir(s.plugin_directory())?;
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
                    let raw =
                        serde_json::to_vec(&e).map_err(|e| LogicalError::internal(e.to_string()).with_source(e))?;
                    s.barrier().put(&key(ty, name, &version), &raw).await.map_err(barrier_err)?;
                    Ok(CoreResponse::default())
                }
                Delete => {
                    s.barrier().delete(&key(ty, name, &version)).await.map_err(barrier_err)?;
                    Ok(CoreResponse::default())
                }
                _ => Err(LogicalError::unsupported_operation()),
            }
        }
        _ => Err(LogicalError::unsupported_path(&format!("sys/plugins/catalog/{}", segs.join("/")))),
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
