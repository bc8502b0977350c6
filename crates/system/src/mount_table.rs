//! The mount tables (secret engines in `core/mounts`, auth methods in `core/auth`): their
//! entries, how `sys/mounts` and `sys/auth` render them, and their persistence in the barrier.

use coffer_barrier::logical_error as barrier_err;
use coffer_barrier::{Barrier, SecureStorage};
use coffer_sdk::LogicalError;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

pub const MOUNT_TABLE_PATH: &str = "core/mounts";
pub const AUTH_TABLE_PATH: &str = "core/auth";

/// Per-mount tunables. Zero TTLs mean "use the system value".
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct MountConfig {
    #[serde(default)]
    pub default_lease_ttl: i64,
    #[serde(default)]
    pub max_lease_ttl: i64,
    #[serde(default)]
    pub force_no_cache: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listing_visibility: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audit_non_hmac_request_keys: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audit_non_hmac_response_keys: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub passthrough_request_headers: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_response_headers: Vec<String>,
}

/// One row of the mount table.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MountEntry {
    /// Always ends with `/`.
    pub path: String,
    #[serde(rename = "type")]
    pub mount_type: String,
    #[serde(default)]
    pub description: String,
    pub uuid: String,
    pub accessor: String,
    #[serde(default)]
    pub config: MountConfig,
    #[serde(default)]
    pub options: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub local: bool,
    #[serde(default)]
    pub seal_wrap: bool,
    #[serde(default)]
    pub external_entropy_access: bool,
    #[serde(default)]
    pub plugin_version: String,
}

impl MountEntry {
    /// Where the mount's data lives, below the barrier.
    pub fn storage_prefix(&self) -> String {
        format!("logical/{}/", self.uuid)
    }

    /// Where an auth mount's data lives, below the barrier.
    pub fn auth_storage_prefix(&self) -> String {
        format!("auth/{}/", self.uuid)
    }

    /// The mount as `sys/mounts` shows it.
    pub fn to_json(&self) -> Value {
        let mut cfg = Map::new();
        cfg.insert("default_lease_ttl".into(), self.config.default_lease_ttl.into());
        cfg.insert("max_lease_ttl".into(), self.config.max_lease_ttl.into());
        cfg.insert("force_no_cache".into(), self.config.force_no_cache.into());
        if let Some(v) = &self.config.listing_visibility {
            cfg.insert("listing_visibility".into(), v.clone().into());
        }
        for (k, v) in [
            ("audit_non_hmac_request_keys", &self.config.audit_non_hmac_request_keys),
            ("audit_non_hmac_response_keys", &self.config.audit_non_hmac_response_keys),
            ("passthrough_request_headers", &self.config.passthrough_request_headers),
            ("allowed_response_headers", &self.config.allowed_response_headers),
        ] {
            if !v.is_empty() {
                cfg.insert(k.into(), Value::from(v.clone()));
            }
        }
        // Options as the operator set them: `{}` when none (the built-in token mount alone shows
        // null), without the plugin pins the core keeps there for itself.
        let options = match (&self.options, self.mount_type.as_str()) {
            (None, "token") => Value::Null,
            (o, _) => Value::Object(
                o.iter()
                    .flatten()
                    .filter(|(k, _)| !matches!(k.as_str(), "plugin_sha256" | "plugin_command"))
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect(),
            ),
        };
        let mut v = serde_json::json!({
            "accessor": self.accessor,
            "config": cfg,
            "description": self.description,
            "external_entropy_access": self.external_entropy_access,
            "local": self.local,
            "options": options,
            "plugin_version": self.plugin_version,
            "running_plugin_version": self.running_version(),
            "running_sha256": self.running_sha256(),
            "seal_wrap": self.seal_wrap,
            "type": self.mount_type,
            "uuid": self.uuid,
        });
        // OpenBao marks every builtin plugin it runs as supported (not the token store).
        if self.running_sha256().is_empty() && self.mount_type != "token" {
            v["deprecation_status"] = "supported".into();
        }
        v
    }

    /// An auth mount as `sys/auth` shows it: the token type the mount issues is part of its
    /// `config` (typed clients require it), not of its options.
    pub fn to_auth_json(&self) -> Value {
        let mut v = self.to_json();
        let token_type = self
            .options
            .as_ref()
            .and_then(|o| o.get("token_type"))
            .cloned()
            .unwrap_or_else(|| "default-service".into());
        if let Some(Value::Object(o)) = v.get_mut("options") {
            o.remove("token_type");
        }
        v["config"]["token_type"] = token_type.into();
        v
    }

    /// The SHA-256 of the external plugin binary serving this mount (empty for builtins).
    pub fn running_sha256(&self) -> String {
        self.options.as_ref().and_then(|o| o.get("plugin_sha256")).cloned().unwrap_or_default()
    }

    /// What serves the mount: the external plugin's registered version, or this build.
    pub fn running_version(&self) -> String {
        if !self.running_sha256().is_empty() {
            return self.plugin_version.clone();
        }
        format!("v{}+builtin.coffer", env!("CARGO_PKG_VERSION"))
    }
}

/// The persisted table.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MountTable {
    pub entries: Vec<MountEntry>,
}

impl MountTable {
    pub async fn load(barrier: &Barrier) -> Result<Option<MountTable>, LogicalError> {
        Self::load_from(barrier, MOUNT_TABLE_PATH).await
    }

    pub async fn load_from(barrier: &Barrier, key: &str) -> Result<Option<MountTable>, LogicalError> {
        match barrier.get(key).await.map_err(barrier_err)? {
            None => Ok(None),
            Some(raw) => serde_json::from_slice(&raw)
                .map(Some)
                .map_err(|e| LogicalError::internal(format!("mount table is unreadable: {e}")).with_source(e)),
        }
    }

    pub async fn save(&self, barrier: &Barrier) -> Result<(), LogicalError> {
        self.save_to(barrier, MOUNT_TABLE_PATH).await
    }

    pub async fn save_to(&self, barrier: &Barrier, key: &str) -> Result<(), LogicalError> {
        let raw = serde_json::to_vec(self).map_err(|e| LogicalError::internal(e.to_string()).with_source(e))?;
        barrier.put(key, &raw).await.map_err(barrier_err)
    }

    pub fn find(&self, path: &str) -> Option<&MountEntry> {
        self.entries.iter().find(|e| e.path == path)
    }
}

/// Normalises a user-given mount path: no leading slash, exactly one trailing slash.
pub fn normalize_mount_path(p: &str) -> Result<String, LogicalError> {
    let p = p.trim().trim_start_matches('/');
    let p = p.trim_end_matches('/');
    if p.is_empty() {
        return Err(LogicalError::bad_request("mount path cannot be empty"));
    }
    if p.split('/').any(|s| s.is_empty() || s == "." || s == "..") || p.contains(['*', '+', '\0']) {
        return Err(LogicalError::bad_request(format!("invalid mount path {p:?}")));
    }
    Ok(format!("{p}/"))
}

/// Paths no user mount may take.
pub fn is_protected_mount_path(p: &str) -> bool {
    ["sys/", "auth/", "cubbyhole/", "identity/", "audit/"].iter().any(|r| p.starts_with(r) || r.starts_with(p))
}

/// The token auth mount every server has (`auth/token/`).
pub fn token_mount_entry() -> MountEntry {
    MountEntry {
        path: "token/".into(),
        mount_type: "token".into(),
        description: "token based credentials".into(),
        uuid: uuid::Uuid::new_v4().to_string(),
        accessor: format!("auth_token_{}", &uuid::Uuid::new_v4().simple().to_string()[..8]),
        config: MountConfig::default(),
        options: None,
        local: false,
        seal_wrap: false,
        external_entropy_access: false,
        plugin_version: String::new(),
    }
}
