//! The KV secrets engine, version 2: every write of a secret creates a new version; versions can
//! be read back, soft-deleted and undeleted, or destroyed for good, and each key carries
//! metadata (version limits, check-and-set requirements, automatic deletion, custom metadata).
//!
//! Paths below the mount, as the Vault/OpenBao API names them:
//!
//! | path | operations |
//! |---|---|
//! | `config` | read, update: mount-wide `max_versions`, `cas_required`, `delete_version_after`, `metadata_cas_required` |
//! | `data/<key>` | read (`version`), create/update (`data`, `options.cas`), patch (JSON merge patch), delete (latest version) |
//! | `metadata/<key>` | read, list (`recursive`), create/update, patch, delete (all versions) |
//! | `delete/<key>`, `undelete/<key>`, `destroy/<key>` | update with `versions` |
//! | `subkeys/<key>` | read (`version`, `depth`): the secret's structure without its values |
//!
//! **Recursive listing.** `LIST metadata/<prefix>` with `recursive=true` (for example
//! `GET /v1/<mount>/metadata/app?list=true&recursive=true`) answers every key below the prefix
//! as a full path relative to it, sorted — `["a/b", "a/c/d", "e"]` — instead of one level of
//! names and `folder/` entries. Folders themselves are not listed. OpenBao offers the same
//! result through its `scan` operation; `bao kv scan` sends it as `GET …/metadata/<prefix>?scan=true`,
//! which this backend answers the same way (the ACL checks `read` there, not `scan`).
//!
//! Storage layout inside the mount's view:
//!
//! | key | content |
//! |---|---|
//! | `config` | the mount-wide settings |
//! | `meta/<key>` | the key's metadata and the list of its versions |
//! | `versions/<key>/<n>` | the data of version `n` (absent once destroyed or pruned) |
//! | `v2-upgraded` | marker: the mount's storage is in this layout |
//! | `v2-upgrade-staging` | only while upgrading from version 1: the entries being moved |
//!
//! **Upgrade from version 1.** A KV v1 mount tuned to `version=2` still holds its secrets at
//! their bare paths. The first request the backend sees checks the marker; without it, every
//! entry of the view becomes version 1 of its key (the upgrade runs under the backend's lock,
//! and a copy of the entries is staged first so an interrupted upgrade resumes safely).
//!
//! Times are nanoseconds since the epoch in storage and RFC 3339 (UTC, nanoseconds) in answers.

use crate::util::{go_duration, merge_patch, rfc3339_nanos, subkeys, system_now_nanos};
use async_trait::async_trait;
use coffer_sdk::cache::GenCache;
use coffer_sdk::field::{parse_int, FieldType};
use coffer_sdk::framework::{FieldData, FieldSpec, Handler, PathFlags, PathSpec, Paths};
use coffer_sdk::{ErrorKind, LogicalError, Operation, Request, Response, Result, StorageView};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

const CONFIG_KEY: &str = "config";
const MARKER_KEY: &str = "v2-upgraded";
const STAGING_KEY: &str = "v2-upgrade-staging";
/// Versions kept when neither the key nor the mount sets `max_versions`.
const DEFAULT_MAX_VERSIONS: u64 = 10;
const CUSTOM_METADATA_MAX_KEYS: usize = 64;
const CUSTOM_METADATA_MAX_KEY_LEN: usize = 128;
const CUSTOM_METADATA_MAX_VALUE_LEN: usize = 512;

/// The paths of KV version 2, one variant per row of [`path_table`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Config,
    Data,
    Metadata,
    Delete,
    Undelete,
    Destroy,
    Subkeys,
}

/// Mount-wide settings (`config`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Config {
    #[serde(default)]
    max_versions: u32,
    #[serde(default)]
    cas_required: bool,
    /// Seconds; 0 = never, negative = disabled.
    #[serde(default)]
    delete_version_after: i64,
    #[serde(default)]
    metadata_cas_required: bool,
}

/// One version as the key's metadata records it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct VersionMeta {
    created: i64,
    /// When the version is (or will be) treated as deleted.
    #[serde(default)]
    deletion: Option<i64>,
    #[serde(default)]
    destroyed: bool,
}

impl VersionMeta {
    fn is_gone(&self, now: i64) -> bool {
        self.destroyed || self.deletion.is_some_and(|t| t <= now)
    }
}

/// A key's metadata (`meta/<key>`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct KeyMeta {
    created: i64,
    updated: i64,
    #[serde(default)]
    current_version: u64,
    #[serde(default)]
    oldest_version: u64,
    #[serde(default)]
    max_versions: u32,
    #[serde(default)]
    cas_required: bool,
    #[serde(default)]
    delete_version_after: i64,
    #[serde(default)]
    metadata_cas_required: bool,
    #[serde(default)]
    current_metadata_version: u64,
    #[serde(default)]
    custom_metadata: BTreeMap<String, String>,
    #[serde(default)]
    versions: BTreeMap<u64, VersionMeta>,
}

impl KeyMeta {
    fn new(now: i64) -> Self {
        KeyMeta { created: now, updated: now, ..Default::default() }
    }

    fn custom_metadata_json(&self) -> Value {
        if self.custom_metadata.is_empty() {
            Value::Null
        } else {
            json!(self.custom_metadata)
        }
    }

    /// The per-version metadata block returned by writes and reads of `data/`.
    fn version_json(&self, n: u64, v: &VersionMeta) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("created_time".into(), rfc3339_nanos(v.created).into());
        m.insert("custom_metadata".into(), self.custom_metadata_json());
        m.insert("deletion_time".into(), v.deletion.map(rfc3339_nanos).unwrap_or_default().into());
        m.insert("destroyed".into(), v.destroyed.into());
        m.insert("version".into(), n.into());
        m
    }

    /// The whole metadata as `metadata/<key>` answers it (keys in the order OpenBao sorts them).
    fn to_json(&self) -> Map<String, Value> {
        let mut versions: Vec<(String, &VersionMeta)> = self.versions.iter().map(|(n, v)| (n.to_string(), v)).collect();
        versions.sort_by(|a, b| a.0.cmp(&b.0));
        let versions: Map<String, Value> = versions
            .into_iter()
            .map(|(n, v)| {
                let deletion = v.deletion.map(rfc3339_nanos).unwrap_or_default();
                (n, json!({"created_time": rfc3339_nanos(v.created), "deletion_time": deletion, "destroyed": v.destroyed}))
            })
            .collect();
        let mut m = Map::new();
        m.insert("cas_required".into(), self.cas_required.into());
        m.insert("created_time".into(), rfc3339_nanos(self.created).into());
        m.insert("current_metadata_version".into(), self.current_metadata_version.into());
        m.insert("current_version".into(), self.current_version.into());
        m.insert("custom_metadata".into(), self.custom_metadata_json());
        m.insert("delete_version_after".into(), go_duration(self.delete_version_after).into());
        m.insert("max_versions".into(), self.max_versions.into());
        m.insert("metadata_cas_required".into(), self.metadata_cas_required.into());
        m.insert("oldest_version".into(), self.oldest_version.into());
        m.insert("updated_time".into(), rfc3339_nanos(self.updated).into());
        m.insert("versions".into(), Value::Object(versions));
        m
    }
}

/// Staged copy of the version-1 entries while an upgrade is in progress.
#[derive(Serialize, Deserialize)]
struct Staging {
    coffer_kv_v2_upgrade: Vec<(String, Map<String, Value>)>,
}

/// The marker's content.
#[derive(Serialize, Deserialize)]
struct Marker {
    coffer_kv_v2_upgraded: i64,
}

fn meta_key(path: &str) -> String {
    format!("meta/{path}")
}

fn version_key(path: &str, n: u64) -> String {
    format!("versions/{path}/{n}")
}

async fn get_json<T: DeserializeOwned>(s: &dyn StorageView, key: &str) -> Result<Option<T>> {
    match s.get(key).await? {
        None => Ok(None),
        Some(raw) => serde_json::from_slice(&raw)
            .map(Some)
            // drop-cause: the entry holds secret data, which a JSON error could quote.
            .map_err(|_| LogicalError::internal(format!("stored entry {key:?} is unreadable"))),
    }
}

async fn put_json<T: Serialize>(s: &dyn StorageView, key: &str, v: &T) -> Result<()> {
    let raw = serde_json::to_vec(v).map_err(|e| LogicalError::internal(e.to_string()))?;
    s.put(key, &raw).await
}

/// Every key below `base` (recursively), as paths relative to it, sorted.
async fn list_recursive(s: &dyn StorageView, base: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut pending = vec![String::new()];
    while let Some(rel) = pending.pop() {
        for child in s.list(&format!("{base}{rel}")).await? {
            let full = format!("{rel}{child}");
            if child.ends_with('/') {
                pending.push(full);
            } else {
                out.push(full);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Go's multierror rendering, which OpenBao uses for validation failures.
fn multi_error(errs: &[String]) -> String {
    let head =
        if errs.len() == 1 { "1 error occurred:".to_string() } else { format!("{} errors occurred:", errs.len()) };
    let body: String = errs.iter().map(|e| format!("\n\t* {e}")).collect();
    format!("{head}{body}\n\n")
}

/// The 404 OpenBao gives for paths outside the versioned layout (such as `<mount>/foo`).
fn invalid_path(op: Operation) -> LogicalError {
    let verb = match op {
        Operation::Read => "get",
        Operation::List => "list",
        Operation::Delete => "delete",
        Operation::Patch => "patch",
        _ => "put",
    };
    LogicalError::new(
        ErrorKind::NotFound,
        format!(
            "Invalid path for a versioned K/V secrets engine. See the API docs for the appropriate API endpoints \
             to use. If using the OpenBao CLI, use 'bao kv {verb}' for this operation."
        ),
    )
}

/// The deletion delay for a new version: the shorter of the key's and the mount's, when set.
fn effective_delete_after(config: &Config, meta: &KeyMeta) -> i64 {
    match (meta.delete_version_after > 0, config.delete_version_after > 0) {
        (true, true) => meta.delete_version_after.min(config.delete_version_after),
        (true, false) => meta.delete_version_after,
        (false, true) => config.delete_version_after,
        (false, false) => 0,
    }
}

fn effective_max_versions(config: &Config, meta: &KeyMeta) -> u64 {
    if meta.max_versions > 0 {
        u64::from(meta.max_versions)
    } else if config.max_versions > 0 {
        u64::from(config.max_versions)
    } else {
        DEFAULT_MAX_VERSIONS
    }
}

fn deletion_for(now: i64, delay_secs: i64) -> Option<i64> {
    (delay_secs > 0).then(|| now.saturating_add(delay_secs.saturating_mul(1_000_000_000)))
}

/// `max_versions` is an unsigned 32-bit value in OpenBao; negative input wraps like a Go cast.
fn as_max_versions(v: i64) -> u32 {
    v as u32
}

fn check_cas(config: &Config, meta: Option<&KeyMeta>, cas: Option<i64>) -> Result<()> {
    let required = config.cas_required || meta.is_some_and(|m| m.cas_required);
    let current = meta.map_or(0, |m| m.current_version);
    match cas {
        None if required => Err(LogicalError::bad_request("check-and-set parameter required for this call")),
        Some(c) if u64::try_from(c).ok() != Some(current) => {
            Err(LogicalError::bad_request("check-and-set parameter did not match the current version"))
        }
        _ => Ok(()),
    }
}

/// The `cas` member of a write's `options`.
fn cas_option(fields: &FieldData) -> Result<Option<i64>> {
    let Some(Value::Object(opts)) = fields.get("options") else { return Ok(None) };
    match opts.get("cas") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => parse_int("cas", v)
            .map(Some)
            .map_err(|cause| LogicalError::bad_request("error parsing check-and-set parameter").with_source(cause)),
    }
}

/// The `data` of a write or patch: absent is an error, `null` counts as empty.
fn data_field(req: &Request, fields: &FieldData) -> Result<Map<String, Value>> {
    match (req.data.get("data"), fields.get("data")) {
        (None, _) => Err(LogicalError::bad_request("no data provided")),
        (Some(Value::Null), _) => Ok(Map::new()),
        (_, Some(Value::Object(m))) => Ok(m.clone()),
        _ => Err(LogicalError::bad_request("error converting input for field \"data\": expected a map")),
    }
}

/// The `versions` list of delete/undelete/destroy.
fn versions_field(fields: &FieldData, missing: &str) -> Result<Vec<u64>> {
    let list: Vec<String> = match fields.get("versions") {
        Some(Value::Array(a)) => a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
        _ => vec![],
    };
    if list.is_empty() {
        return Err(LogicalError::bad_request(missing));
    }
    let mut out = Vec::new();
    for s in list {
        let n: i64 = s.parse().map_err(|cause| {
            LogicalError::bad_request(format!(
                "error converting input {s:?} for field \"versions\": expected a list of integers"
            ))
            .with_source(cause)
        })?;
        if let Ok(n) = u64::try_from(n) {
            out.push(n);
        }
    }
    Ok(out)
}

/// Checks `custom_metadata` against OpenBao's limits; numbers and booleans become strings.
fn validate_custom_metadata(m: &Map<String, Value>) -> Result<BTreeMap<String, String>> {
    let mut errs = Vec::new();
    if m.len() > CUSTOM_METADATA_MAX_KEYS {
        errs.push(format!(
            "custom_metadata validation failed: payload must contain at most {CUSTOM_METADATA_MAX_KEYS} keys, provided {}",
            m.len()
        ));
    }
    let mut out = BTreeMap::new();
    for (k, v) in m {
        let value = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => {
                return Err(LogicalError::bad_request(format!(
                    "custom_metadata validation failed: the value of key {k:?} must be a string"
                )))
            }
        };
        if k.is_empty() || k.len() > CUSTOM_METADATA_MAX_KEY_LEN {
            errs.push(format!(
                "custom_metadata validation failed: length of key {k:?} is {} but must be 0 < len(key) <= {CUSTOM_METADATA_MAX_KEY_LEN}",
                k.len()
            ));
        }
        if value.is_empty() || value.len() > CUSTOM_METADATA_MAX_VALUE_LEN {
            errs.push(format!(
                "custom_metadata validation failed: length of value for key {k:?} is {} but must be 0 < len(value) <= {CUSTOM_METADATA_MAX_VALUE_LEN}",
                value.len()
            ));
        }
        out.insert(k.clone(), value);
    }
    if errs.is_empty() {
        Ok(out)
    } else {
        Err(LogicalError::bad_request(multi_error(&errs)))
    }
}

fn field_specs_common() -> FieldSpec {
    FieldSpec::new("path", FieldType::String, "Location of the secret, relative to the mount")
}

fn path_table() -> Paths<Route> {
    use Operation::*;
    Paths::new(vec![
        (
            Route::Config,
            PathSpec {
                flags: PathFlags::NORMAL,
                pattern: "config",
                fields: vec![
                    FieldSpec::new(
                        "max_versions",
                        FieldType::Int,
                        "How many versions each key keeps by default; 0 means 10. Older versions are removed on write.",
                    ),
                    FieldSpec::new(
                        "cas_required",
                        FieldType::Bool,
                        "When true, every write to data/ must carry options.cas",
                    ),
                    FieldSpec::new(
                        "delete_version_after",
                        FieldType::DurationSecond,
                        "Default lifetime of a new version before it counts as deleted; 0s keeps versions forever",
                    ),
                    FieldSpec::new(
                        "metadata_cas_required",
                        FieldType::Bool,
                        "When true, every write to metadata/ must carry metadata_cas",
                    ),
                ],
                operations: vec![(Read, "Show the mount's KV settings"), (Update, "Change the mount's KV settings")],
                passthrough: false,
                synopsis: "Mount-wide settings of the versioned KV store",
                description: "Defaults every key inherits unless its own metadata overrides them.",
            },
        ),
        (
            Route::Data,
            PathSpec {
                flags: PathFlags::NORMAL,
                pattern: "data/(?P<path>.*)",
                fields: vec![
                    field_specs_common(),
                    FieldSpec::new("version", FieldType::Int, "Which version to read; 0 or absent reads the latest"),
                    FieldSpec::new("data", FieldType::Map, "The secret's key/value pairs"),
                    FieldSpec::new(
                        "options",
                        FieldType::Map,
                        "Write options; cas: the version the write expects to replace",
                    ),
                ],
                operations: vec![
                    (Read, "Read a version of the secret"),
                    (Create, "Write a new version of the secret"),
                    (Update, "Write a new version of the secret"),
                    (Patch, "Merge a JSON merge patch into the latest version, writing a new version"),
                    (Delete, "Soft-delete the latest version"),
                ],
                passthrough: false,
                synopsis: "The versioned data of a secret",
                description: "Every write creates a version; reads return the latest or a chosen version.",
            },
        ),
        (
            Route::Metadata,
            PathSpec {
                flags: PathFlags::NORMAL,
                pattern: "metadata(?:/(?P<path>.*))?",
                fields: vec![
                field_specs_common(),
                FieldSpec::new("max_versions", FieldType::Int, "How many versions this key keeps; 0 uses the mount's"),
                FieldSpec::new("cas_required", FieldType::Bool, "When true, writes to this key must carry options.cas"),
                FieldSpec::new(
                    "delete_version_after",
                    FieldType::DurationSecond,
                    "Lifetime of new versions of this key; the shorter of this and the mount's applies",
                ),
                FieldSpec::new(
                    "custom_metadata",
                    FieldType::Map,
                    "Free-form string pairs stored with the key (at most 64; keys up to 128 bytes, values up to 512)",
                ),
                FieldSpec::new(
                    "metadata_cas_required",
                    FieldType::Bool,
                    "When true, metadata writes to this key must carry metadata_cas",
                ),
                FieldSpec::new(
                    "metadata_cas",
                    FieldType::Int,
                    "The metadata version this write expects to replace (0 when creating)",
                ),
                FieldSpec::new(
                    "recursive",
                    FieldType::Bool,
                    "With list: return every key below the prefix as a full relative path, not one level",
                ),
                FieldSpec::new(
                    "scan",
                    FieldType::Bool,
                    "With read (GET ?scan=true, as `bao kv scan` sends it): the same as a recursive list",
                ),
            ],
                operations: vec![
                    (Read, "Show the key's metadata and versions"),
                    (List, "List keys below a prefix; recursive=true lists the whole subtree"),
                    (Create, "Set the key's metadata"),
                    (Update, "Set the key's metadata"),
                    (Patch, "Merge changes into the key's metadata"),
                    (Delete, "Remove the key: every version and its metadata"),
                ],
                passthrough: false,
                synopsis: "Metadata and version history of a secret",
                description: "Settings per key, its versions' state, and listing of keys.",
            },
        ),
        (
            Route::Delete,
            PathSpec {
                flags: PathFlags::NORMAL,
                pattern: "delete/(?P<path>.+)",
                fields: vec![
                    field_specs_common(),
                    FieldSpec::new("versions", FieldType::CommaStringSlice, "The versions to soft-delete"),
                ],
                operations: vec![(Create, "Soft-delete versions"), (Update, "Soft-delete versions")],
                passthrough: false,
                synopsis: "Soft-delete versions of a secret",
                description: "Marks the versions deleted; undelete brings them back.",
            },
        ),
        (
            Route::Undelete,
            PathSpec {
                flags: PathFlags::NORMAL,
                pattern: "undelete/(?P<path>.+)",
                fields: vec![
                    field_specs_common(),
                    FieldSpec::new("versions", FieldType::CommaStringSlice, "The versions to restore"),
                ],
                operations: vec![(Create, "Restore soft-deleted versions"), (Update, "Restore soft-deleted versions")],
                passthrough: false,
                synopsis: "Restore soft-deleted versions of a secret",
                description: "Clears the deletion of versions that were not destroyed.",
            },
        ),
        (
            Route::Destroy,
            PathSpec {
                flags: PathFlags::NORMAL,
                pattern: "destroy/(?P<path>.+)",
                fields: vec![
                    field_specs_common(),
                    FieldSpec::new("versions", FieldType::CommaStringSlice, "The versions to destroy"),
                ],
                operations: vec![(Create, "Destroy versions"), (Update, "Destroy versions")],
                passthrough: false,
                synopsis: "Permanently remove versions of a secret",
                description: "Removes the versions' data for good; their metadata shows destroyed=true.",
            },
        ),
        (
            Route::Subkeys,
            PathSpec {
                flags: PathFlags::NORMAL,
                pattern: "subkeys/(?P<path>.+)",
                fields: vec![
                    field_specs_common(),
                    FieldSpec::new("version", FieldType::Int, "Which version to inspect; 0 or absent means the latest"),
                    FieldSpec::new("depth", FieldType::Int, "How many levels of nesting to show; 0 shows all"),
                ],
                operations: vec![(Read, "Show the secret's keys with values replaced by null")],
                passthrough: false,
                synopsis: "The structure of a secret without its values",
                description: "Lets a client see which keys a secret has without reading them.",
            },
        ),
    ])
}

/// The versioned KV secrets engine (`kv` with `version=2`, or `kv-v2`).
const KEY_LOCK_STRIPES: usize = 64;

/// Serve it wrapped in [`coffer_sdk::framework::Backend`].
pub struct KvV2 {
    paths: Paths<Route>,
    /// Serialises requests; the flag records that the storage layout has been checked.
    /// Guards the one-time v1 → v2 upgrade (the bool: done).
    lock: tokio::sync::Mutex<bool>,
    /// Set once the upgrade check has passed: later requests skip the mutex.
    upgraded: std::sync::atomic::AtomicBool,
    /// Writes to the same key are serialised by one of these stripes; different keys proceed
    /// in parallel (and share group commits in durable storage).
    key_locks: Vec<tokio::sync::Mutex<()>>,
    /// Decoded metadata of recently read keys, for reads (`read_meta`); every request that may
    /// change a key forgets its entry before answering (`handle_request`).
    meta_cache: GenCache<KeyMeta>,
    clock: Arc<dyn Fn() -> i64 + Send + Sync>,
}

/// Keys whose metadata is kept decoded at most.
const META_CACHE_CAPACITY: usize = 16_384;

impl Default for KvV2 {
    fn default() -> Self {
        Self::new()
    }
}

impl KvV2 {
    pub fn new() -> Self {
        Self::with_clock(system_now_nanos)
    }

    /// Runs the v1 → v2 upgrade check once; afterwards a single atomic load.
    async fn upgrade_once(&self, s: &dyn StorageView) -> Result<()> {
        use std::sync::atomic::Ordering;
        if self.upgraded.load(Ordering::Acquire) {
            return Ok(());
        }
        let mut checked = self.lock.lock().await;
        self.ensure_upgraded(&mut checked, s).await?;
        self.upgraded.store(true, Ordering::Release);
        Ok(())
    }

    fn key_lock(&self, path: &str) -> &tokio::sync::Mutex<()> {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        path.hash(&mut h);
        &self.key_locks[(h.finish() as usize) % self.key_locks.len()]
    }

    /// A backend reading the time (nanoseconds since the Unix epoch) from `clock`, for tests.
    pub fn with_clock(clock: impl Fn() -> i64 + Send + Sync + 'static) -> Self {
        KvV2 {
            paths: path_table(),
            lock: tokio::sync::Mutex::new(false),
            upgraded: std::sync::atomic::AtomicBool::new(false),
            key_locks: (0..KEY_LOCK_STRIPES).map(|_| tokio::sync::Mutex::new(())).collect(),
            meta_cache: GenCache::new(META_CACHE_CAPACITY),
            clock: Arc::new(clock),
        }
    }

    fn now(&self) -> i64 {
        (self.clock)()
    }

    /// Converts a version-1 layout into this one, once (see the module documentation).
    async fn ensure_upgraded(&self, checked: &mut bool, s: &dyn StorageView) -> Result<()> {
        if *checked {
            return Ok(());
        }
        // Storage errors propagate: only a readable marker or staging record counts, and a
        // failed read must never be mistaken for "not upgraded yet".
        if s.get(MARKER_KEY).await?.is_some_and(|raw| serde_json::from_slice::<Marker>(&raw).is_ok()) {
            *checked = true;
            return Ok(());
        }
        let now = self.now();
        let staged = s.get(STAGING_KEY).await?.and_then(|raw| serde_json::from_slice::<Staging>(&raw).ok());
        let entries = match staged {
            Some(st) => st.coffer_kv_v2_upgrade,
            None => {
                let mut entries = Vec::new();
                for key in list_recursive(s, "").await? {
                    // KvV1 stores JSON objects; anything else is not a secret and stays put.
                    let raw = s.get(&key).await?.unwrap_or_default();
                    if let Ok(Value::Object(data)) = serde_json::from_slice::<Value>(&raw) {
                        entries.push((key, data));
                    }
                }
                if !entries.is_empty() {
                    put_json(s, STAGING_KEY, &Staging { coffer_kv_v2_upgrade: entries.clone() }).await?;
                }
                entries
            }
        };
        // Remove the bare entries first: one of them may share a name with a new-layout key.
        for (key, _) in &entries {
            if key != STAGING_KEY {
                s.delete(key).await?;
            }
        }
        for (key, data) in &entries {
            put_json(s, &version_key(key, 1), data).await?;
            let mut meta = KeyMeta::new(now);
            meta.current_version = 1;
            meta.oldest_version = 1;
            meta.versions.insert(1, VersionMeta { created: now, deletion: None, destroyed: false });
            put_json(s, &meta_key(key), &meta).await?;
        }
        put_json(s, MARKER_KEY, &Marker { coffer_kv_v2_upgraded: now }).await?;
        if !entries.is_empty() {
            s.delete(STAGING_KEY).await?;
        }
        *checked = true;
        Ok(())
    }

    async fn load_config(s: &dyn StorageView) -> Result<Config> {
        Ok(get_json(s, CONFIG_KEY).await?.unwrap_or_default())
    }

    async fn load_meta(s: &dyn StorageView, path: &str) -> Result<Option<KeyMeta>> {
        if path.is_empty() {
            return Ok(None);
        }
        get_json(s, &meta_key(path)).await
    }

    /// A key's metadata for a request that does not change it: from the cache when an earlier
    /// read decoded it. Changes always read storage (`load_meta`) under the key's lock.
    async fn read_meta(&self, s: &dyn StorageView, path: &str) -> Result<Option<Arc<KeyMeta>>> {
        self.meta_cache.get_or_load(path, Self::load_meta(s, path)).await
    }

    /// Stores `data` as the next version of `path` (created at `now`), prunes versions beyond the limit and saves
    /// the metadata. Returns the version's metadata block.
    async fn write_version(
        &self,
        s: &dyn StorageView,
        config: &Config,
        meta: &mut KeyMeta,
        path: &str,
        data: &Map<String, Value>,
        now: i64,
    ) -> Result<Map<String, Value>> {
        let n = meta.current_version + 1;
        let vm = VersionMeta {
            created: now,
            deletion: deletion_for(now, effective_delete_after(config, meta)),
            destroyed: false,
        };
        // Data first: a crash leaves an unreferenced blob, never metadata without data.
        put_json(s, &version_key(path, n), data).await?;
        meta.versions.insert(n, vm.clone());
        meta.current_version = n;
        meta.updated = now;
        let max = effective_max_versions(config, meta);
        let mut pruned = Vec::new();
        while meta.versions.len() as u64 > max {
            let Some((&old, _)) = meta.versions.iter().next() else { break };
            meta.versions.remove(&old);
            pruned.push(old);
        }
        if !pruned.is_empty() {
            meta.oldest_version = meta.versions.keys().next().copied().unwrap_or(n);
        }
        put_json(s, &meta_key(path), meta).await?;
        for old in pruned {
            s.delete(&version_key(path, old)).await?;
        }
        Ok(meta.version_json(n, &vm))
    }

    /// The version a read asks for, if it exists and is neither deleted nor destroyed.
    fn readable_version(&self, meta: &KeyMeta, fields: &FieldData) -> Option<(u64, VersionMeta)> {
        let asked = fields.int("version").unwrap_or(0);
        let n = if asked > 0 { asked as u64 } else { meta.current_version };
        let vm = meta.versions.get(&n)?;
        (!vm.is_gone(self.now())).then(|| (n, vm.clone()))
    }

    async fn read_data(&self, s: &dyn StorageView, path: &str, fields: &FieldData) -> Result<Option<Response>> {
        let Some(meta) = self.read_meta(s, path).await? else { return Ok(None) };
        let Some((n, vm)) = self.readable_version(&meta, fields) else {
            // A deleted or destroyed version: 404, but with its metadata, as OpenBao answers.
            let asked = fields.int("version").unwrap_or(0);
            let n = if asked > 0 { asked as u64 } else { meta.current_version };
            let Some(vm) = meta.versions.get(&n) else { return Ok(None) };
            let mut out = Map::new();
            out.insert("data".into(), Value::Null);
            out.insert("metadata".into(), Value::Object(meta.version_json(n, vm)));
            let mut r = Response::data(out);
            r.status = coffer_sdk::ResponseStatus::Error(coffer_sdk::ErrorKind::NotFound);
            return Ok(Some(r));
        };
        let Some(data) = get_json::<Map<String, Value>>(s, &version_key(path, n)).await? else { return Ok(None) };
        let mut out = Map::new();
        out.insert("data".into(), Value::Object(data));
        out.insert("metadata".into(), Value::Object(meta.version_json(n, &vm)));
        Ok(Some(Response::data(out)))
    }

    async fn write_data(&self, req: &Request, path: &str, fields: &FieldData) -> Result<Option<Response>> {
        let s = &*req.storage;
        require_key(path)?;
        let data = data_field(req, fields)?;
        let cas = cas_option(fields)?;
        let config = Self::load_config(s).await?;
        let existing = Self::load_meta(s, path).await?;
        check_cas(&config, existing.as_ref(), cas)?;
        // A key created by this write shows the same created_time as its first version.
        let now = self.now();
        let mut meta = existing.unwrap_or_else(|| KeyMeta::new(now));
        let out = self.write_version(s, &config, &mut meta, path, &data, now).await?;
        Ok(Some(Response::data(out)))
    }

    async fn patch_data(&self, req: &Request, path: &str, fields: &FieldData) -> Result<Option<Response>> {
        let s = &*req.storage;
        let Some(mut meta) = Self::load_meta(s, path).await? else { return Err(LogicalError::not_found()) };
        let n = meta.current_version;
        match meta.versions.get(&n) {
            Some(vm) if !vm.is_gone(self.now()) => {}
            _ => return Err(LogicalError::not_found()),
        }
        let patch = data_field(req, fields)?;
        let cas = cas_option(fields)?;
        let config = Self::load_config(s).await?;
        check_cas(&config, Some(&meta), cas)?;
        let Some(current) = get_json::<Map<String, Value>>(s, &version_key(path, n)).await? else {
            return Err(LogicalError::not_found());
        };
        let mut merged = Value::Object(current);
        merge_patch(&mut merged, &Value::Object(patch));
        let Value::Object(merged) = merged else { return Err(LogicalError::internal("merge produced a non-object")) };
        let out = self.write_version(s, &config, &mut meta, path, &merged, self.now()).await?;
        Ok(Some(Response::data(out)))
    }

    /// Soft-deletes `versions` (the latest when `None`).
    async fn soft_delete(
        &self,
        s: &dyn StorageView,
        path: &str,
        versions: Option<Vec<u64>>,
    ) -> Result<Option<Response>> {
        let Some(mut meta) = Self::load_meta(s, path).await? else { return Ok(None) };
        let now = self.now();
        let versions = versions.unwrap_or_else(|| vec![meta.current_version]);
        let mut changed = false;
        for n in versions {
            if let Some(vm) = meta.versions.get_mut(&n) {
                if !vm.is_gone(now) {
                    vm.deletion = Some(now);
                    changed = true;
                }
            }
        }
        if changed {
            put_json(s, &meta_key(path), &meta).await?;
        }
        Ok(None)
    }

    async fn undelete(&self, s: &dyn StorageView, path: &str, versions: Vec<u64>) -> Result<Option<Response>> {
        let Some(mut meta) = Self::load_meta(s, path).await? else { return Ok(None) };
        let config = Self::load_config(s).await?;
        let now = self.now();
        let deletion = deletion_for(now, effective_delete_after(&config, &meta));
        let mut changed = false;
        for n in versions {
            if let Some(vm) = meta.versions.get_mut(&n) {
                if !vm.destroyed {
                    vm.deletion = deletion;
                    changed = true;
                }
            }
        }
        if changed {
            put_json(s, &meta_key(path), &meta).await?;
        }
        Ok(None)
    }

    async fn destroy(&self, s: &dyn StorageView, path: &str, versions: Vec<u64>) -> Result<Option<Response>> {
        let Some(mut meta) = Self::load_meta(s, path).await? else { return Ok(None) };
        let mut gone = Vec::new();
        for n in versions {
            if let Some(vm) = meta.versions.get_mut(&n) {
                if !vm.destroyed {
                    vm.destroyed = true;
                    gone.push(n);
                }
            }
        }
        if !gone.is_empty() {
            put_json(s, &meta_key(path), &meta).await?;
            for n in gone {
                s.delete(&version_key(path, n)).await?;
            }
        }
        Ok(None)
    }

    async fn subkeys(&self, s: &dyn StorageView, path: &str, fields: &FieldData) -> Result<Option<Response>> {
        let Some(meta) = Self::load_meta(s, path).await? else { return Ok(None) };
        let Some((n, vm)) = self.readable_version(&meta, fields) else { return Ok(None) };
        let Some(data) = get_json::<Map<String, Value>>(s, &version_key(path, n)).await? else { return Ok(None) };
        let mut out = Map::new();
        out.insert("metadata".into(), Value::Object(meta.version_json(n, &vm)));
        out.insert("subkeys".into(), Value::Object(subkeys(&data, fields.int("depth").unwrap_or(0))));
        Ok(Some(Response::data(out)))
    }

    /// Lists the keys below `path`: one level (names and `folder/`s), or with `recursive` the
    /// whole subtree as full relative paths. No keys: 404.
    async fn list_metadata(&self, s: &dyn StorageView, path: &str, recursive: bool) -> Result<Option<Response>> {
        let prefix =
            if path.is_empty() || path.ends_with('/') { meta_key(path) } else { meta_key(&format!("{path}/")) };
        let keys = if recursive { list_recursive(s, &prefix).await? } else { s.list(&prefix).await? };
        if keys.is_empty() {
            return Ok(None);
        }
        Ok(Some(Response::list(keys)))
    }

    async fn write_metadata(
        &self,
        s: &dyn StorageView,
        path: &str,
        f: &FieldData,
        patch: bool,
    ) -> Result<Option<Response>> {
        const SETTABLE: [&str; 5] =
            ["max_versions", "cas_required", "delete_version_after", "custom_metadata", "metadata_cas_required"];
        require_key(path)?;
        let existing = Self::load_meta(s, path).await?;
        if patch && existing.is_none() {
            return Err(LogicalError::not_found());
        }
        if !SETTABLE.iter().any(|n| f.is_set(n)) {
            return Ok(None);
        }
        let config = Self::load_config(s).await?;
        let cas_required = config.metadata_cas_required || existing.as_ref().is_some_and(|m| m.metadata_cas_required);
        let cas = if f.is_set("metadata_cas") { f.int("metadata_cas") } else { None };
        match (cas, &existing) {
            (None, _) if cas_required => {
                return Err(LogicalError::bad_request("metadata check-and-set parameter required for this call"))
            }
            (Some(c), None) if c != 0 => {
                return Err(LogicalError::bad_request("metadata_cas must be 0 when creating new metadata"))
            }
            (Some(c), Some(m)) if u64::try_from(c).ok() != Some(m.current_metadata_version) => {
                return Err(LogicalError::bad_request(
                    "metadata check-and-set parameter does not match the current version",
                ))
            }
            _ => {}
        }
        let now = self.now();
        let mut meta = existing.unwrap_or_else(|| KeyMeta::new(now));
        if let Some(d) = f.is_set("delete_version_after").then(|| f.int("delete_version_after")).flatten() {
            if d < 0 {
                return Err(LogicalError::bad_request(format!(
                    "error converting input for field \"delete_version_after\": cannot provide negative value '{d}'"
                )));
            }
            meta.delete_version_after = d;
        }
        if let Some(Value::Object(cm)) = f.is_set("custom_metadata").then(|| f.get("custom_metadata")).flatten() {
            let merged = if patch {
                let mut current: Value = json!(meta.custom_metadata);
                merge_patch(&mut current, &Value::Object(cm.clone()));
                current.as_object().cloned().unwrap_or_default()
            } else {
                cm.clone()
            };
            meta.custom_metadata = validate_custom_metadata(&merged)?;
        }
        if f.is_set("max_versions") {
            meta.max_versions = as_max_versions(f.int("max_versions").unwrap_or(0));
        }
        let mut warnings = Vec::new();
        if let Some(b) = f.is_set("cas_required").then(|| f.bool("cas_required")).flatten() {
            meta.cas_required = b;
            if !b && config.cas_required {
                warnings.push(
                    "\"cas_required\" set to false, but is mandated by backend config. This value will be ignored."
                        .to_string(),
                );
            }
        }
        if let Some(b) = f.is_set("metadata_cas_required").then(|| f.bool("metadata_cas_required")).flatten() {
            meta.metadata_cas_required = b;
        }
        meta.current_metadata_version += 1;
        meta.updated = now;
        put_json(s, &meta_key(path), &meta).await?;
        if warnings.is_empty() {
            return Ok(None);
        }
        Ok(Some(Response { warnings, ..Default::default() }))
    }

    async fn delete_metadata(&self, s: &dyn StorageView, path: &str) -> Result<Option<Response>> {
        let Some(meta) = Self::load_meta(s, path).await? else { return Ok(None) };
        for n in meta.versions.keys() {
            s.delete(&version_key(path, *n)).await?;
        }
        s.delete(&meta_key(path)).await?;
        Ok(None)
    }

    async fn read_config(&self, s: &dyn StorageView) -> Result<Option<Response>> {
        let c = Self::load_config(s).await?;
        let mut m = Map::new();
        m.insert("cas_required".into(), c.cas_required.into());
        m.insert("delete_version_after".into(), go_duration(c.delete_version_after).into());
        m.insert("max_versions".into(), c.max_versions.into());
        m.insert("metadata_cas_required".into(), c.metadata_cas_required.into());
        Ok(Some(Response::data(m)))
    }

    async fn write_config(&self, s: &dyn StorageView, f: &FieldData) -> Result<Option<Response>> {
        let mut c = Self::load_config(s).await?;
        if f.is_set("max_versions") {
            c.max_versions = as_max_versions(f.int("max_versions").unwrap_or(0));
        }
        if let Some(b) = f.is_set("cas_required").then(|| f.bool("cas_required")).flatten() {
            c.cas_required = b;
        }
        if let Some(d) = f.is_set("delete_version_after").then(|| f.int("delete_version_after")).flatten() {
            // A negative delay disables automatic deletion; OpenBao shows it as -1s.
            c.delete_version_after = d.max(-1);
        }
        if let Some(b) = f.is_set("metadata_cas_required").then(|| f.bool("metadata_cas_required")).flatten() {
            c.metadata_cas_required = b;
        }
        put_json(s, CONFIG_KEY, &c).await?;
        Ok(None)
    }
}

fn require_key(path: &str) -> Result<()> {
    if path.is_empty() || path.ends_with('/') {
        return Err(LogicalError::bad_request("cannot write to a path ending in '/'"));
    }
    Ok(())
}

#[async_trait]
impl Handler for KvV2 {
    type Route = Route;

    fn backend_type(&self) -> &'static str {
        "kv"
    }

    fn paths(&self) -> &Paths<Route> {
        &self.paths
    }

    async fn handle(&self, route: Route, req: Request, f: FieldData) -> Result<Option<Response>> {
        use Operation::*;
        let op = req.operation;
        let s = &*req.storage;
        self.upgrade_once(s).await?;
        let path = f.str("path").unwrap_or("");
        // Reads need no lock: a version's data is written before the metadata naming it.
        let _guard = match op {
            Read | List => None,
            _ => Some(self.key_lock(path).lock().await),
        };
        let result = self.route(&req, route, &f, path).await;
        if !matches!(op, Read | List) {
            // After the change, before the answer: no later read sees the old metadata.
            self.meta_cache.forget(path);
        }
        result
    }

    /// As OpenBao: a 404 whose answer carries the hint as a warning, not as an error.
    async fn unsupported_path(&self, req: &Request, _err: LogicalError) -> Result<Option<Response>> {
        Ok(Some(Response {
            warnings: invalid_path(req.operation).messages,
            status: coffer_sdk::ResponseStatus::Error(ErrorKind::NotFound),
            ..Default::default()
        }))
    }

    /// `data/<key>` and `metadata/<key>` exist when the key has metadata.
    async fn exists(&self, route: Route, req: &Request, f: &FieldData) -> Result<Option<bool>> {
        let (Route::Data | Route::Metadata, Some(path)) = (route, f.str("path")) else {
            return Ok(None);
        };
        self.upgrade_once(&*req.storage).await?;
        Ok(Some(self.read_meta(&*req.storage, path).await?.is_some()))
    }
}

impl KvV2 {
    async fn route(&self, req: &Request, route: Route, f: &FieldData, path: &str) -> Result<Option<Response>> {
        use Operation::*;
        let (s, op) = (&*req.storage, req.operation);
        match (route, op) {
            (Route::Config, Read) => self.read_config(s).await,
            (Route::Config, _) => self.write_config(s, f).await,
            (Route::Data, Read) => self.read_data(s, path, f).await,
            (Route::Data, Create | Update) => self.write_data(req, path, f).await,
            (Route::Data, Patch) => self.patch_data(req, path, f).await,
            (Route::Data, Delete) => self.soft_delete(s, path, None).await,
            (Route::Metadata, Read) if f.bool("scan").unwrap_or(false) => self.list_metadata(s, path, true).await,
            (Route::Metadata, Read) => match Self::load_meta(s, path).await? {
                Some(meta) => Ok(Some(Response::data(meta.to_json()))),
                None => Ok(None),
            },
            (Route::Metadata, List) => self.list_metadata(s, path, f.bool("recursive").unwrap_or(false)).await,
            (Route::Metadata, Create | Update) => self.write_metadata(s, path, f, false).await,
            (Route::Metadata, Patch) => self.write_metadata(s, path, f, true).await,
            (Route::Metadata, Delete) => self.delete_metadata(s, path).await,
            (Route::Delete, _) => {
                let versions = versions_field(f, "No version number provided")?;
                self.soft_delete(s, path, Some(versions)).await
            }
            (Route::Undelete, _) => {
                let versions = versions_field(f, "No version number provided")?;
                self.undelete(s, path, versions).await
            }
            (Route::Destroy, _) => {
                let versions = versions_field(f, "no version number provided")?;
                self.destroy(s, path, versions).await
            }
            (Route::Subkeys, _) => self.subkeys(s, path, f).await,
            _ => Err(LogicalError::unsupported_operation()),
        }
    }
}
