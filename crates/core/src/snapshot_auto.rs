//! Automatic snapshots (`sys/storage/snapshot-auto/…`, also under `sys/storage/raft/`, the
//! paths and field names of Vault Enterprise's automated snapshots): named configurations,
//! stored behind the barrier, each with an interval, a destination (a local directory, or an
//! S3-compatible bucket through the [`S3Connector`] the binary injects) and a retention count.
//! Only the active node takes them: a task ticks every second, takes each due snapshot
//! ([`Core::take_snapshot`]'s file), writes it, then deletes the oldest of that configuration's
//! files beyond `retain`. Each attempt's outcome is kept in memory and behind the barrier
//! (`…/status/<name>`), so a node that becomes active knows when the last one was taken.

use crate::{Core, CoreResponse, Result};
use async_trait::async_trait;
use coffer_barrier::SecureStorage;
use coffer_sdk::field::{parse_bool, parse_duration, parse_int, parse_string};
use coffer_sdk::{LogicalError, Operation};
use coffer_system_paths::AutoSnapshotOp;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use zeroize::Zeroize;

/// A failure of a destination, with its cause (which never quotes a credential).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

const CONFIG_PREFIX: &str = "core/snapshot-auto/config/";
const STATUS_PREFIX: &str = "core/snapshot-auto/status/";
/// `file_prefix` when none is given.
pub const DEFAULT_FILE_PREFIX: &str = "coffer-snapshot";
/// Seconds between two reloads of the configurations from storage (an API write on this node
/// reloads at once; this catches writes through another node and restores).
const RELOAD_EVERY: u64 = 10;

/// The storage types Vault documents that this server does not build, refused by name.
const NOT_BUILT: &[&str] = &["azure-blob", "google-gcs"];
/// Fields of those types: declared so that giving one is refused by name, never ignored.
const NOT_BUILT_FIELDS: &[&str] = &[
    "google_gcs_bucket",
    "google_service_account_key",
    "google_endpoint",
    "google_disable_tls",
    "azure_container_name",
    "azure_account_name",
    "azure_account_key",
    "azure_blob_environment",
    "azure_endpoint",
];
/// The fields of `storage_type=aws-s3`.
const AWS_FIELDS: &[&str] = &[
    "aws_s3_bucket",
    "aws_s3_region",
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "aws_s3_endpoint",
    "aws_s3_disable_tls",
    "aws_s3_force_path_style",
    "aws_s3_enable_kms",
    "aws_s3_server_side_encryption",
    "aws_s3_kms_key",
];

/// One named configuration, as stored (behind the barrier, so the S3 secret key is encrypted at
/// rest). `Debug` never shows the secret key or the session token.
#[derive(Clone, Serialize, Deserialize)]
pub struct AutoConfig {
    /// Seconds between snapshots.
    pub interval: u64,
    /// How many of this configuration's snapshots to keep.
    pub retain: u64,
    /// `local`: the directory; `aws-s3`: the key prefix in the bucket.
    pub path_prefix: String,
    /// Snapshot names start with this (then `-<unix nanoseconds>.snap`).
    pub file_prefix: String,
    /// `local` or `aws-s3`.
    pub storage_type: String,
    /// `local`: the most bytes this configuration's snapshots may take (0: no limit).
    #[serde(default)]
    pub local_max_space: u64,
    #[serde(default)]
    pub aws_s3_bucket: String,
    #[serde(default)]
    pub aws_s3_region: String,
    #[serde(default)]
    pub aws_access_key_id: String,
    #[serde(default)]
    pub aws_secret_access_key: String,
    #[serde(default)]
    pub aws_session_token: String,
    #[serde(default)]
    pub aws_s3_endpoint: String,
    #[serde(default)]
    pub aws_s3_disable_tls: bool,
    #[serde(default)]
    pub aws_s3_force_path_style: bool,
    #[serde(default)]
    pub aws_s3_enable_kms: bool,
    #[serde(default)]
    pub aws_s3_server_side_encryption: bool,
    #[serde(default)]
    pub aws_s3_kms_key: String,
}

impl Default for AutoConfig {
    /// A new configuration before its fields: `retain` 1 and the default `file_prefix`.
    fn default() -> Self {
        AutoConfig {
            interval: 0,
            retain: 1,
            path_prefix: String::new(),
            file_prefix: DEFAULT_FILE_PREFIX.into(),
            storage_type: String::new(),
            local_max_space: 0,
            aws_s3_bucket: String::new(),
            aws_s3_region: String::new(),
            aws_access_key_id: String::new(),
            aws_secret_access_key: String::new(),
            aws_session_token: String::new(),
            aws_s3_endpoint: String::new(),
            aws_s3_disable_tls: false,
            aws_s3_force_path_style: false,
            aws_s3_enable_kms: false,
            aws_s3_server_side_encryption: false,
            aws_s3_kms_key: String::new(),
        }
    }
}

impl Drop for AutoConfig {
    fn drop(&mut self) {
        self.aws_secret_access_key.zeroize();
        self.aws_session_token.zeroize();
    }
}

impl std::fmt::Debug for AutoConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AutoConfig")
            .field("interval", &self.interval)
            .field("retain", &self.retain)
            .field("path_prefix", &self.path_prefix)
            .field("file_prefix", &self.file_prefix)
            .field("storage_type", &self.storage_type)
            .field("aws_s3_bucket", &self.aws_s3_bucket)
            .finish_non_exhaustive()
    }
}

impl AutoConfig {
    /// What a read shows: every field but the secret key and the session token.
    fn to_json(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("interval".into(), self.interval.into());
        m.insert("retain".into(), self.retain.into());
        m.insert("path_prefix".into(), self.path_prefix.clone().into());
        m.insert("file_prefix".into(), self.file_prefix.clone().into());
        m.insert("storage_type".into(), self.storage_type.clone().into());
        if self.storage_type == "local" {
            m.insert("local_max_space".into(), self.local_max_space.into());
        } else {
            m.insert("aws_s3_bucket".into(), self.aws_s3_bucket.clone().into());
            m.insert("aws_s3_region".into(), self.aws_s3_region.clone().into());
            m.insert("aws_access_key_id".into(), self.aws_access_key_id.clone().into());
            m.insert("aws_s3_endpoint".into(), self.aws_s3_endpoint.clone().into());
            m.insert("aws_s3_disable_tls".into(), self.aws_s3_disable_tls.into());
            m.insert("aws_s3_force_path_style".into(), self.aws_s3_force_path_style.into());
            m.insert("aws_s3_enable_kms".into(), self.aws_s3_enable_kms.into());
            m.insert("aws_s3_server_side_encryption".into(), self.aws_s3_server_side_encryption.into());
            m.insert("aws_s3_kms_key".into(), self.aws_s3_kms_key.clone().into());
        }
        m
    }

    /// This configuration's key prefix in its bucket, without leading or trailing `/`.
    pub fn s3_key_prefix(&self) -> &str {
        self.path_prefix.trim_matches('/')
    }
}

/// One snapshot file at a destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSnapshot {
    /// The file or object name, without the directory or key prefix.
    pub name: String,
    pub size: u64,
}

/// Where one configuration's snapshots go.
#[async_trait]
pub trait SnapshotDestination: Send + Sync {
    /// The URL a status gives for `name` (`file:///dir/name`, `s3://bucket/prefix/name`).
    fn url_of(&self, name: &str) -> String;
    /// Writes a whole snapshot, complete or not at all.
    async fn put(&self, name: &str, bytes: Vec<u8>) -> std::result::Result<(), BoxError>;
    /// The files whose names start with `file_prefix`.
    async fn list(&self, file_prefix: &str) -> std::result::Result<Vec<StoredSnapshot>, BoxError>;
    async fn delete(&self, name: &str) -> std::result::Result<(), BoxError>;
}

/// Opens S3 destinations: the binary provides it (the core does no HTTP).
pub trait S3Connector: Send + Sync {
    fn open(&self, config: &AutoConfig) -> std::result::Result<Arc<dyn SnapshotDestination>, BoxError>;
}

/// What `…/status/<name>` shows (Vault's fields, times in RFC 3339), plus the size of the last
/// snapshot and how many attempts in a row failed.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct AutoStatus {
    /// The attempt under way, or the last one (Unix nanoseconds; 0: none yet).
    pub snapshot_start: i128,
    pub snapshot_url: String,
    /// The last finished attempt.
    pub last_snapshot_start: i128,
    pub last_snapshot_end: i128,
    /// Empty when it succeeded.
    pub last_snapshot_error: String,
    pub last_snapshot_url: String,
    /// Bytes written by the last successful attempt.
    pub last_snapshot_size: u64,
    pub consecutive_errors: u64,
}

fn rfc3339(nanos: i128) -> String {
    if nanos == 0 {
        return String::new();
    }
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|d| d.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

impl AutoStatus {
    fn to_json(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("snapshot_start".into(), rfc3339(self.snapshot_start).into());
        m.insert("snapshot_url".into(), self.snapshot_url.clone().into());
        m.insert("last_snapshot_start".into(), rfc3339(self.last_snapshot_start).into());
        m.insert("last_snapshot_end".into(), rfc3339(self.last_snapshot_end).into());
        m.insert("last_snapshot_error".into(), self.last_snapshot_error.clone().into());
        m.insert("last_snapshot_url".into(), self.last_snapshot_url.clone().into());
        m.insert("last_snapshot_size".into(), self.last_snapshot_size.into());
        m.insert("consecutive_errors".into(), self.consecutive_errors.into());
        m
    }
}

fn now_nanos() -> i128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as i128).unwrap_or(0)
}

/// One configuration as the scheduler holds it.
struct Slot {
    config: Arc<AutoConfig>,
    status: AutoStatus,
    running: bool,
    /// When the next snapshot is due (Unix nanoseconds).
    due: i128,
}

/// The scheduler's state and the injected S3 connector.
#[derive(Default)]
pub(crate) struct AutoState {
    s3: RwLock<Option<Arc<dyn S3Connector>>>,
    slots: Mutex<BTreeMap<String, Slot>>,
    /// Reload the configurations at the next tick.
    dirty: std::sync::atomic::AtomicBool,
    /// The unsealed state the slots were loaded for (a new one reloads them).
    loaded_for: Mutex<Weak<crate::Active>>,
}

fn invalid(msg: impl Into<String>) -> LogicalError {
    LogicalError::bad_request(msg)
}

fn config_key(name: &str) -> String {
    format!("{CONFIG_PREFIX}{name}")
}

/// Names `<file_prefix>-<nanos>.snap` and the time in them; other files are never touched.
fn snapshot_time(file_prefix: &str, name: &str) -> Option<u128> {
    let digits = name.strip_prefix(file_prefix)?.strip_prefix('-')?.strip_suffix(".snap")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// This configuration's snapshots at its destination, newest first.
fn ours(file_prefix: &str, listed: Vec<StoredSnapshot>) -> Vec<StoredSnapshot> {
    let mut v: Vec<(u128, StoredSnapshot)> =
        listed.into_iter().filter_map(|s| snapshot_time(file_prefix, &s.name).map(|t| (t, s))).collect();
    v.sort_by_key(|e| std::cmp::Reverse(e.0));
    v.into_iter().map(|(_, s)| s).collect()
}

impl Core {
    /// Installs the S3 client (the server binary provides it). Without one, `aws-s3`
    /// configurations are refused.
    pub fn set_snapshot_s3(&self, c: Arc<dyn S3Connector>) {
        *self.auto_snapshots.s3.write().unwrap_or_else(PoisonError::into_inner) = Some(c);
    }

    fn destination(&self, c: &AutoConfig) -> std::result::Result<Arc<dyn SnapshotDestination>, BoxError> {
        match c.storage_type.as_str() {
            "local" => Ok(Arc::new(LocalDir { dir: std::path::PathBuf::from(&c.path_prefix) })),
            "aws-s3" => {
                let s3 = self.auto_snapshots.s3.read().unwrap_or_else(PoisonError::into_inner).clone();
                s3.ok_or("this server was built without S3 support")?.open(c)
            }
            other => Err(format!("storage_type {other:?} is not supported").into()),
        }
    }

    pub(crate) async fn handle_snapshot_auto(
        &self,
        op: Operation,
        what: AutoSnapshotOp,
        d: &Map<String, Value>,
    ) -> Result<CoreResponse> {
        let name = || -> Result<String> {
            let n = d.get("name").and_then(Value::as_str).unwrap_or_default();
            if n.is_empty() {
                return Err(invalid("a configuration name is required"));
            }
            Ok(n.to_string())
        };
        match (what, op) {
            (AutoSnapshotOp::ConfigList, Operation::List) => {
                let mut keys = self.barrier.list(CONFIG_PREFIX).await.map_err(crate::error::barrier_err)?;
                keys.retain(|k| !k.ends_with('/'));
                keys.sort();
                Ok(CoreResponse::data(Map::from_iter([("keys".to_string(), json!(keys))])))
            }
            (AutoSnapshotOp::Config, Operation::Read) => {
                let c = self.load_auto_config(&name()?).await?.ok_or_else(LogicalError::not_found)?;
                Ok(CoreResponse::data(c.to_json()))
            }
            (AutoSnapshotOp::Config, Operation::Update | Operation::Create) => {
                let name = name()?;
                let old = self.load_auto_config(&name).await?;
                let c = build_config(old.as_deref(), d)?;
                if c.storage_type == "aws-s3" {
                    // Checked now (endpoint, credentials), so a mistake shows at once, not at the
                    // first snapshot. No request is sent.
                    self.destination(&c).map_err(|e| invalid(format!("aws-s3: {e}")))?;
                }
                let raw = serde_json::to_vec(&c).map_err(|e| LogicalError::internal("encoding").with_source(e))?;
                self.barrier.put(&config_key(&name), &raw).await.map_err(crate::error::barrier_err)?;
                self.auto_snapshots.dirty.store(true, std::sync::atomic::Ordering::SeqCst);
                Ok(CoreResponse::default())
            }
            (AutoSnapshotOp::Config, Operation::Delete) => {
                let name = name()?;
                self.barrier
                    .transaction(vec![(config_key(&name), None), (format!("{STATUS_PREFIX}{name}"), None)])
                    .await
                    .map_err(crate::error::barrier_err)?;
                self.auto_snapshots.dirty.store(true, std::sync::atomic::Ordering::SeqCst);
                Ok(CoreResponse::default())
            }
            (AutoSnapshotOp::Status, Operation::Read) => {
                let name = name()?;
                if self.load_auto_config(&name).await?.is_none() {
                    return Err(LogicalError::not_found());
                }
                let held = {
                    let slots = self.auto_snapshots.slots.lock().unwrap_or_else(PoisonError::into_inner);
                    slots.get(&name).map(|s| s.status.clone())
                };
                let status = match held {
                    Some(s) => s,
                    None => self.load_auto_status(&name).await?.unwrap_or_default(),
                };
                Ok(CoreResponse::data(status.to_json()))
            }
            _ => Err(LogicalError::unsupported_operation()),
        }
    }

    async fn load_auto_config(&self, name: &str) -> Result<Option<Arc<AutoConfig>>> {
        let Some(raw) = self.barrier.get(&config_key(name)).await.map_err(crate::error::barrier_err)? else {
            return Ok(None);
        };
        let c: AutoConfig = serde_json::from_slice(&raw)
            .map_err(|e| LogicalError::internal("an automatic snapshot configuration is unreadable").with_source(e))?;
        Ok(Some(Arc::new(c)))
    }

    async fn load_auto_status(&self, name: &str) -> Result<Option<AutoStatus>> {
        let key = format!("{STATUS_PREFIX}{name}");
        let Some(raw) = self.barrier.get(&key).await.map_err(crate::error::barrier_err)? else { return Ok(None) };
        Ok(serde_json::from_slice(&raw).ok())
    }

    /// Starts the scheduler: every second, on the active node, each due configuration's
    /// snapshot is taken (in a task of its own, one at a time per configuration).
    pub fn spawn_auto_snapshots(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            let mut n: u64 = 0;
            loop {
                tick.tick().await;
                n += 1;
                let Some(core) = weak.upgrade() else { break };
                let Some(active) = core.active() else {
                    // Sealed or standby: nothing runs; a later activation reloads.
                    *core.auto_snapshots.loaded_for.lock().unwrap_or_else(PoisonError::into_inner) = Weak::new();
                    continue;
                };
                let fresh = {
                    let mut seen = core.auto_snapshots.loaded_for.lock().unwrap_or_else(PoisonError::into_inner);
                    let same = seen.upgrade().is_some_and(|a| Arc::ptr_eq(&a, &active));
                    *seen = Arc::downgrade(&active);
                    !same
                };
                let dirty = core.auto_snapshots.dirty.swap(false, std::sync::atomic::Ordering::SeqCst);
                if fresh || dirty || n.is_multiple_of(RELOAD_EVERY) {
                    if let Err(e) = core.reload_auto_snapshots().await {
                        tracing::warn!(error = %e, "automatic snapshots: reading the configurations failed");
                        continue;
                    }
                }
                let now = now_nanos();
                let due: Vec<(String, Arc<AutoConfig>)> = {
                    let mut slots = core.auto_snapshots.slots.lock().unwrap_or_else(PoisonError::into_inner);
                    slots
                        .iter_mut()
                        .filter(|(_, s)| !s.running && s.due <= now)
                        .map(|(name, s)| {
                            s.running = true;
                            (name.clone(), s.config.clone())
                        })
                        .collect()
                };
                for (name, config) in due {
                    let core = core.clone();
                    tokio::spawn(async move { core.run_auto_snapshot(name, config).await });
                }
            }
        });
    }

    /// Reads every configuration (and, for one not yet held, its last status) from storage.
    async fn reload_auto_snapshots(&self) -> Result<()> {
        let names: Vec<String> = self
            .barrier
            .list(CONFIG_PREFIX)
            .await
            .map_err(crate::error::barrier_err)?
            .into_iter()
            .filter(|k| !k.ends_with('/'))
            .collect();
        let mut loaded = BTreeMap::new();
        for name in names {
            let Some(config) = self.load_auto_config(&name).await? else { continue };
            let stored = self.load_auto_status(&name).await?;
            loaded.insert(name, (config, stored));
        }
        let now = now_nanos();
        let mut slots = self.auto_snapshots.slots.lock().unwrap_or_else(PoisonError::into_inner);
        slots.retain(|name, _| loaded.contains_key(name));
        for (name, (config, stored)) in loaded {
            let interval = i128::from(config.interval) * 1_000_000_000;
            match slots.get_mut(&name) {
                Some(s) => {
                    // The interval counts from the last attempt, or from when it was first seen.
                    let base = if s.status.snapshot_start > 0 {
                        s.status.snapshot_start
                    } else {
                        s.due - interval_of(&s.config)
                    };
                    s.due = base + interval;
                    s.config = config;
                }
                None => {
                    let status = stored.unwrap_or_default();
                    let base = if status.snapshot_start > 0 { status.snapshot_start } else { now };
                    slots.insert(name, Slot { config, status, running: false, due: base + interval });
                }
            }
        }
        Ok(())
    }

    /// One attempt: take, write, apply retention; record the outcome.
    async fn run_auto_snapshot(self: Arc<Self>, name: String, config: Arc<AutoConfig>) {
        let start = now_nanos();
        let file = format!("{}-{}.snap", config.file_prefix, start);
        let dest = self.destination(&config);
        let url = dest.as_ref().map(|d| d.url_of(&file)).unwrap_or_default();
        self.update_slot(&name, |s| {
            s.status.snapshot_start = start;
            s.status.snapshot_url = url.clone();
        });
        let outcome = match dest {
            Ok(dest) => self.write_auto_snapshot(&config, dest.as_ref(), &file).await,
            Err(e) => Err(AttemptError::Open(e)),
        };
        let end = now_nanos();
        let mut status = None;
        self.update_slot(&name, |s| {
            let st = &mut s.status;
            st.last_snapshot_start = start;
            st.last_snapshot_end = end;
            st.last_snapshot_url = url.clone();
            match &outcome {
                Ok(size) => {
                    st.last_snapshot_error.clear();
                    st.last_snapshot_size = *size;
                    st.consecutive_errors = 0;
                }
                Err(e) => {
                    st.last_snapshot_error = e.to_string();
                    st.consecutive_errors += 1;
                }
            }
            s.running = false;
            s.due = start + interval_of(&s.config);
            status = Some(st.clone());
        });
        match &outcome {
            Ok(size) => tracing::info!(config = %name, url = %url, bytes = size, "automatic snapshot written"),
            Err(e) => {
                tracing::warn!(config = %name, error = %e, "automatic snapshot failed; tried again after the interval")
            }
        }
        // Kept behind the barrier for the node that is active next; not while sealed or standby.
        if let (Some(status), Some(_)) = (status, self.active()) {
            if let Ok(raw) = serde_json::to_vec(&status) {
                if let Err(e) = self.barrier.put(&format!("{STATUS_PREFIX}{name}"), &raw).await {
                    tracing::warn!(config = %name, error = %e, "automatic snapshot: storing its status failed");
                }
            }
        }
    }

    fn update_slot(&self, name: &str, f: impl FnOnce(&mut Slot)) {
        let mut slots = self.auto_snapshots.slots.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(s) = slots.get_mut(name) {
            f(s);
        }
    }

    /// Takes the snapshot, checks the local allowance, writes it and deletes the oldest beyond
    /// `retain`. The error is the status's text: it names the step that failed.
    async fn write_auto_snapshot(
        &self,
        c: &AutoConfig,
        dest: &dyn SnapshotDestination,
        file: &str,
    ) -> std::result::Result<u64, AttemptError> {
        let (_, bytes) = self.barrier.snapshot(&crate::version_string()).await.map_err(AttemptError::Take)?;
        let size = bytes.len() as u64;
        let keep = usize::try_from(c.retain.max(1)).unwrap_or(usize::MAX);
        if c.storage_type == "local" && c.local_max_space > 0 {
            let existing = ours(&c.file_prefix, dest.list(&c.file_prefix).await.map_err(AttemptError::List)?);
            let kept: u64 = existing.iter().take(keep - 1).map(|s| s.size).sum();
            if kept + size > c.local_max_space {
                let count = existing.len().min(keep - 1);
                return Err(AttemptError::Space { size, count, kept, max: c.local_max_space });
            }
        }
        dest.put(file, bytes).await.map_err(|source| AttemptError::Write { url: dest.url_of(file), source })?;
        let existing = ours(&c.file_prefix, dest.list(&c.file_prefix).await.map_err(AttemptError::List)?);
        for old in existing.iter().skip(keep) {
            dest.delete(&old.name).await.map_err(|source| AttemptError::Delete { name: old.name.clone(), source })?;
        }
        Ok(size)
    }
}

/// Why an attempt failed: the status's `last_snapshot_error` is its text, naming the step.
#[derive(Debug, thiserror::Error)]
enum AttemptError {
    #[error("the destination cannot be opened: {0}")]
    Open(#[source] BoxError),
    #[error("taking the snapshot failed: {0}")]
    Take(#[source] coffer_barrier::BarrierError),
    #[error("listing the destination failed: {0}")]
    List(#[source] BoxError),
    #[error(
        "local_max_space exceeded: this snapshot ({size} bytes) and the {count} kept beside it ({kept} bytes) \
         need more than local_max_space ({max} bytes)"
    )]
    Space { size: u64, count: usize, kept: u64, max: u64 },
    #[error("writing {url} failed: {source}")]
    Write {
        url: String,
        #[source]
        source: BoxError,
    },
    #[error("the snapshot was written, but deleting the old {name} failed: {source}")]
    Delete {
        name: String,
        #[source]
        source: BoxError,
    },
}

fn interval_of(c: &AutoConfig) -> i128 {
    i128::from(c.interval) * 1_000_000_000
}

/// A configuration from a create/update request over the stored one (fields not given keep
/// their value; a change of `storage_type` drops the other type's fields). Every field is
/// acted on or refused by name.
fn build_config(old: Option<&AutoConfig>, d: &Map<String, Value>) -> Result<AutoConfig> {
    let given = |k: &str| d.get(k).filter(|v| !v.is_null());
    for f in NOT_BUILT_FIELDS {
        if given(f).is_some() {
            return Err(invalid(format!(
                "{f} belongs to a storage type this server does not build (it writes to local and aws-s3)"
            )));
        }
    }
    let mut c = old.cloned().unwrap_or_default();
    if let Some(v) = given("storage_type") {
        let t = parse_string("storage_type", v)?;
        if NOT_BUILT.contains(&t.as_str()) {
            return Err(invalid(format!(
                "storage_type {t:?} is not supported by this server: use \"local\" or \"aws-s3\""
            )));
        }
        if t != "local" && t != "aws-s3" {
            return Err(invalid(format!("storage_type must be \"local\" or \"aws-s3\", not {t:?}")));
        }
        if t != c.storage_type {
            // The other type's fields go; the common ones stay.
            c.local_max_space = 0;
            for s in [
                &mut c.aws_s3_bucket,
                &mut c.aws_s3_region,
                &mut c.aws_access_key_id,
                &mut c.aws_secret_access_key,
                &mut c.aws_session_token,
                &mut c.aws_s3_endpoint,
                &mut c.aws_s3_kms_key,
            ] {
                s.zeroize();
                s.clear();
            }
            c.aws_s3_disable_tls = false;
            c.aws_s3_force_path_style = false;
            c.aws_s3_enable_kms = false;
            c.aws_s3_server_side_encryption = false;
            c.storage_type = t;
        }
    }
    if c.storage_type.is_empty() {
        return Err(invalid("storage_type is required (\"local\" or \"aws-s3\")"));
    }
    if let Some(v) = given("interval") {
        let n = parse_duration("interval", v)?;
        if n < 1 {
            return Err(invalid("interval must be at least one second"));
        }
        c.interval = n as u64;
    }
    if c.interval == 0 {
        return Err(invalid("interval is required (seconds, or a duration such as \"24h\")"));
    }
    if let Some(v) = given("retain") {
        let n = parse_int("retain", v)?;
        if n < 1 {
            return Err(invalid("retain must be at least 1"));
        }
        c.retain = n as u64;
    }
    if let Some(v) = given("path_prefix") {
        c.path_prefix = parse_string("path_prefix", v)?;
    }
    if let Some(v) = given("file_prefix") {
        let p = parse_string("file_prefix", v)?;
        if p.is_empty() || p.contains('/') || p.contains('\\') {
            return Err(invalid("file_prefix must be a non-empty name without '/'"));
        }
        c.file_prefix = p;
    }
    let local = c.storage_type == "local";
    if local {
        if let Some(f) = AWS_FIELDS.iter().find(|f| given(f).is_some()) {
            return Err(invalid(format!("{f} applies to storage_type \"aws-s3\", not \"local\"")));
        }
        if let Some(v) = given("local_max_space") {
            let n = parse_int("local_max_space", v)?;
            if n < 0 {
                return Err(invalid("local_max_space must not be negative (0: no limit)"));
            }
            c.local_max_space = n as u64;
        }
        if c.path_prefix.is_empty() {
            return Err(invalid("path_prefix is required: the directory to write the snapshots in"));
        }
        if !std::path::Path::new(&c.path_prefix).is_absolute() {
            return Err(invalid(format!("path_prefix {:?} must be an absolute directory path", c.path_prefix)));
        }
    } else {
        if given("local_max_space").is_some() {
            return Err(invalid("local_max_space applies to storage_type \"local\", not \"aws-s3\""));
        }
        let s = |k: &str| given(k).map(|v| parse_string(k, v)).transpose();
        let b = |k: &str| given(k).map(|v| parse_bool(k, v)).transpose();
        if let Some(v) = s("aws_s3_bucket")? {
            c.aws_s3_bucket = v;
        }
        if let Some(v) = s("aws_s3_region")? {
            c.aws_s3_region = v;
        }
        if let Some(v) = s("aws_access_key_id")? {
            c.aws_access_key_id = v;
        }
        if let Some(v) = s("aws_secret_access_key")? {
            c.aws_secret_access_key = v;
        }
        if let Some(v) = s("aws_session_token")? {
            c.aws_session_token = v;
        }
        if let Some(v) = s("aws_s3_endpoint")? {
            c.aws_s3_endpoint = v;
        }
        if let Some(v) = s("aws_s3_kms_key")? {
            c.aws_s3_kms_key = v;
        }
        if let Some(v) = b("aws_s3_disable_tls")? {
            c.aws_s3_disable_tls = v;
        }
        if let Some(v) = b("aws_s3_force_path_style")? {
            c.aws_s3_force_path_style = v;
        }
        if let Some(v) = b("aws_s3_enable_kms")? {
            c.aws_s3_enable_kms = v;
        }
        if let Some(v) = b("aws_s3_server_side_encryption")? {
            c.aws_s3_server_side_encryption = v;
        }
        if c.aws_s3_bucket.is_empty() {
            return Err(invalid("aws_s3_bucket is required for storage_type \"aws-s3\""));
        }
        if c.aws_s3_region.is_empty() {
            return Err(invalid("aws_s3_region is required for storage_type \"aws-s3\""));
        }
        if c.aws_access_key_id.is_empty() != c.aws_secret_access_key.is_empty() {
            return Err(invalid(
                "aws_access_key_id and aws_secret_access_key are given together (or neither, to use the \
                 server's AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)",
            ));
        }
        if !c.aws_session_token.is_empty() && c.aws_access_key_id.is_empty() {
            return Err(invalid("aws_session_token needs aws_access_key_id and aws_secret_access_key"));
        }
        if c.aws_s3_enable_kms && c.aws_s3_server_side_encryption {
            return Err(invalid("aws_s3_server_side_encryption cannot be used with aws_s3_enable_kms"));
        }
        if !c.aws_s3_kms_key.is_empty() && !c.aws_s3_enable_kms {
            return Err(invalid("aws_s3_kms_key needs aws_s3_enable_kms=true"));
        }
    }
    Ok(c)
}

/// `storage_type=local`: files in a directory. Each is written as `<name>.partial`, synced,
/// then renamed into place, so a listed snapshot is always whole.
struct LocalDir {
    dir: std::path::PathBuf,
}

#[async_trait]
impl SnapshotDestination for LocalDir {
    fn url_of(&self, name: &str) -> String {
        format!("file://{}", self.dir.join(name).display())
    }

    async fn put(&self, name: &str, bytes: Vec<u8>) -> std::result::Result<(), BoxError> {
        let dir = self.dir.clone();
        let name = name.to_string();
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            use std::io::Write;
            let mut b = std::fs::DirBuilder::new();
            b.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
            b.create(&dir)?;
            let partial = dir.join(format!("{name}.partial"));
            let written = (|| {
                let mut opts = std::fs::OpenOptions::new();
                opts.write(true).create(true).truncate(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
                let mut f = opts.open(&partial)?;
                f.write_all(&bytes)?;
                f.sync_all()?;
                std::fs::rename(&partial, dir.join(&name))?;
                std::fs::File::open(&dir)?.sync_all()
            })();
            if written.is_err() {
                let _ = std::fs::remove_file(&partial);
            }
            written
        })
        .await??;
        Ok(())
    }

    async fn list(&self, file_prefix: &str) -> std::result::Result<Vec<StoredSnapshot>, BoxError> {
        let dir = self.dir.clone();
        let prefix = file_prefix.to_string();
        let v = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<StoredSnapshot>> {
            let mut out = Vec::new();
            let entries = match std::fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
                Err(e) => return Err(e),
            };
            for e in entries {
                let e = e?;
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with(&prefix) && e.file_type()?.is_file() {
                    out.push(StoredSnapshot { name, size: e.metadata()?.len() });
                }
            }
            Ok(out)
        })
        .await??;
        Ok(v)
    }

    async fn delete(&self, name: &str) -> std::result::Result<(), BoxError> {
        match tokio::fs::remove_file(self.dir.join(name)).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn configurations_are_checked_field_by_field() {
        let c =
            build_config(None, &req(json!({"interval": 3, "storage_type": "local", "path_prefix": "/tmp/s"}))).unwrap();
        assert_eq!((c.retain, c.file_prefix.as_str(), c.local_max_space), (1, DEFAULT_FILE_PREFIX, 0));
        let err = |v: Value| build_config(None, &req(v)).unwrap_err().to_string();
        assert!(
            err(json!({"interval": 3, "storage_type": "google-gcs", "path_prefix": "/x"})).contains("not supported")
        );
        assert!(err(json!({"interval": 3, "storage_type": "local", "path_prefix": "/x", "azure_account_key": "k"}))
            .contains("azure_account_key"));
        assert!(err(json!({"interval": 3, "storage_type": "local", "path_prefix": "/x", "aws_s3_bucket": "b"}))
            .contains("aws_s3_bucket applies"));
        assert!(err(json!({"interval": 3, "storage_type": "local", "path_prefix": "rel"})).contains("absolute"));
        assert!(err(json!({"storage_type": "local", "path_prefix": "/x"})).contains("interval is required"));
        assert!(err(json!({"interval": 3, "storage_type": "aws-s3", "aws_s3_region": "r"})).contains("aws_s3_bucket"));
        assert!(err(json!({"interval": 3, "storage_type": "aws-s3", "aws_s3_bucket": "b", "aws_s3_region": "r",
            "aws_access_key_id": "a"}))
        .contains("together"));
        assert!(err(json!({"interval": 3, "storage_type": "aws-s3", "aws_s3_bucket": "b", "aws_s3_region": "r",
            "aws_s3_enable_kms": true, "aws_s3_server_side_encryption": true}))
        .contains("cannot be used"));
        // An update keeps what it does not give; a secret is never in the read-back.
        let s3 = build_config(
            None,
            &req(json!({"interval": "1h", "storage_type": "aws-s3", "aws_s3_bucket": "b", "aws_s3_region": "r",
                "aws_access_key_id": "AKID", "aws_secret_access_key": "shh", "path_prefix": "p/"})),
        )
        .unwrap();
        assert_eq!(s3.interval, 3600);
        let s3 = build_config(Some(&s3), &req(json!({"retain": 4}))).unwrap();
        assert_eq!((s3.retain, s3.aws_secret_access_key.as_str(), s3.s3_key_prefix()), (4, "shh", "p"));
        let shown = Value::Object(s3.to_json()).to_string();
        assert!(!shown.contains("shh") && !shown.contains("aws_secret_access_key"), "{shown}");
        assert!(!format!("{s3:?}").contains("shh"));
    }

    #[test]
    fn retention_knows_only_this_configurations_files_newest_first() {
        let f = |n: &str| StoredSnapshot { name: n.into(), size: 1 };
        let listed = vec![
            f("daily-10.snap"),
            f("daily-9.snap"),
            f("daily-100.snap"),
            f("daily-x.snap"),
            f("daily-11.snap.partial"),
            f("dailyplus-50.snap"),
            f("notes.txt"),
        ];
        let names: Vec<String> = ours("daily", listed).into_iter().map(|s| s.name).collect();
        assert_eq!(names, ["daily-100.snap", "daily-10.snap", "daily-9.snap"]);
    }
}
