//! Server configuration in Vault's HCL or JSON form, with Vault's spellings (`backend` for
//! `storage`, string booleans, Go durations) and environment overrides. Errors name the line.
#![forbid(unsafe_code)]

use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::Path;

mod listener;
pub use listener::{Cidr, ForwardedFor, Listener, StatusMatch, TlsVersion, TLS12_SUITES, TLS13_SUITES};

/// What is wrong with one setting, before the file and line are attached: a message for the
/// operator (these checks have no underlying cause to keep).
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct Invalid(pub String);

/// More seals are configured than a server can use.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error(
    "at most one enabled seal and one disabled seal (for a migration) may be configured; found {enabled} enabled, {disabled} disabled"
)]
pub struct TooManySeals {
    pub enabled: usize,
    pub disabled: usize,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("{file}: {msg}")]
    Invalid { file: String, msg: String },
    #[error("{file}:{line}: {msg}")]
    AtLine { file: String, line: usize, msg: String },
}

/// An `audit "type" "path" { … }` stanza.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditDecl {
    pub device_type: String,
    pub path: String,
    pub description: String,
    pub local: bool,
    pub options: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StorageConfig {
    pub kind: String,
    pub options: BTreeMap<String, String>,
}

/// A `seal "type" { … }` stanza. Options stay strings; the seal crates read them (the PIN and
/// token are secret, so `Debug` prints option names only).
#[derive(Clone, PartialEq)]
pub struct SealDecl {
    pub kind: String,
    /// `disabled = "true"`: the old seal during a seal migration.
    pub disabled: bool,
    pub options: BTreeMap<String, String>,
}

impl std::fmt::Debug for SealDecl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealDecl")
            .field("kind", &self.kind)
            .field("disabled", &self.disabled)
            .field("options", &self.options.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// A `plugin "type" "name" { … }` stanza (OpenBao's declarative plugins): a binary already in
/// the plugin directory (`command`), or one downloaded from `url` (Coffer's addition to
/// OpenBao's keys), pinned by `sha256sum` and optionally by a minisign signature.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginDecl {
    /// `secret`, `auth` or `database`.
    pub plugin_type: String,
    pub name: String,
    pub version: String,
    /// Lower-case hex.
    pub sha256sum: String,
    /// A binary placed in the plugin directory by hand: its file name there.
    pub command: Option<String>,
    /// Where to download the binary (`http://` or `https://`).
    pub url: Option<String>,
    /// The downloaded file's name in the plugin directory (default `NAME-VERSION`).
    pub binary_name: Option<String>,
    pub args: Vec<String>,
    pub env: Vec<String>,
    /// The detached minisign signature: a URL, or an absolute path (default: the binary's URL
    /// or file with `.minisig` appended, when `public_key` is set).
    pub signature: Option<String>,
    /// The trusted minisign public key (base64, or the two lines of a `minisign.pub` file).
    pub public_key: Option<String>,
    /// Where the stanza is, for messages: `file:line`.
    pub at: String,
}

impl PluginDecl {
    /// The binary's file name in the plugin directory.
    pub fn file_name(&self) -> String {
        match (&self.command, &self.binary_name) {
            (Some(c), _) => c.clone(),
            (None, Some(b)) => b.clone(),
            (None, None) => format!("{}-{}", self.name, self.version),
        }
    }

    /// `plugin "secret" "name" (version v1.0.0, file:line)`, for messages.
    pub fn label(&self) -> String {
        format!("plugin {:?} {:?} (version {}, {})", self.plugin_type, self.name, self.version, self.at)
    }
}

/// `plugin_download_max_size` when unset: 512 MiB, OpenBao's default.
pub const DEFAULT_PLUGIN_DOWNLOAD_MAX_SIZE: u64 = 512 << 20;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ServerConfig {
    /// Declared seals (at most one enabled, plus a disabled one while migrating).
    pub seals: Vec<SealDecl>,
    pub listeners: Vec<Listener>,
    pub storage: Option<StorageConfig>,
    pub api_addr: Option<String>,
    pub cluster_addr: Option<String>,
    pub cluster_name: Option<String>,
    /// `disable_clustering = true`: this node, when active, takes no forwarded requests (no
    /// cluster listener, no cluster address advertised): standbys redirect clients to it.
    pub disable_clustering: bool,
    pub ui: bool,
    pub log_level: Option<String>,
    pub log_format: Option<String>,
    pub disable_mlock: bool,
    /// `raw_storage_endpoint = true` enables `sys/raw`.
    pub raw_storage_endpoint: bool,
    pub plugin_directory: Option<String>,
    /// Declared plugins (`plugin "type" "name" { … }`), in file order.
    pub plugins: Vec<PluginDecl>,
    /// `plugin_auto_download`: download the declared plugins' binaries at start (default false,
    /// as in OpenBao).
    pub plugin_auto_download: bool,
    /// `plugin_auto_register`: register the declared plugins in the catalog at unseal
    /// (default false, as in OpenBao).
    pub plugin_auto_register: bool,
    /// `plugin_download_behavior = "warn"`: a failed download is logged and the server starts
    /// without that plugin (default `"fail"`: the server does not start).
    pub plugin_download_warn: Option<bool>,
    /// `plugin_download_max_size`: the largest binary a download may be, in bytes.
    pub plugin_download_max_size: Option<u64>,
    /// Seconds.
    pub default_lease_ttl: Option<i64>,
    pub max_lease_ttl: Option<i64>,
    /// Declared audit devices, in file order.
    pub audit: Vec<AuditDecl>,
    /// `pid_file`: the server writes its process id there while it runs.
    pub pid_file: Option<String>,
    /// `log_file`: the server's log goes to this file (appended, owner-only) instead of stderr.
    pub log_file: Option<String>,
    /// Notes about the configuration, for the server to log.
    pub warnings: Vec<String>,
}

/// One top-level item, from either syntax.
struct Item {
    key: String,
    labels: Vec<String>,
    value: Value,
    line: usize,
}

/// Settings Coffer accepts and deliberately does not act on, each with the reason (`scope` is
/// `""` for a top-level key, or the stanza: `"listener"`, `"telemetry"`). Every other key this
/// parser accepts changes what the server does; anything else is refused with its file and
/// line. `tests/truthful.rs` fails when a key is accepted, changes nothing, and is not here.
pub const IGNORED_ON_PURPOSE: &[(&str, &str, &str)] = &[
    ("", "disable_mlock", "Coffer never locks memory with mlock (OpenBao 2.x dropped it too and only warns); keys in memory are zeroized, and swap is the operating system's to disable or encrypt"),
    ("", "disable_cache", "Coffer keeps no cache of physical storage entries; its caches of decoded entries are emptied by every write that changes them"),
    ("", "cache_size", "Coffer keeps no cache of physical storage entries (see disable_cache)"),
    ("", "disable_performance_standby", "Coffer has no performance standbys"),
    ("", "disable_sealwrap", "Coffer has no seal wrapping of entries"),
    ("telemetry", "disable_hostname", "Coffer's metric names never carry the host name"),
    ("telemetry", "prometheus_retention_time", "Coffer's registry keeps every series for the life of the process; sys/metrics always serves Prometheus text"),
    ("telemetry", "usage_gauge_period", "Coffer computes its gauges when sys/metrics is read, not on a timer"),
    ("telemetry", "maximum_gauge_cardinality", "Coffer's gauges are labelled only by mount, never by client input"),
];

/// Whether `key` (in `scope`) is accepted and deliberately ignored.
pub fn ignored_on_purpose(scope: &str, key: &str) -> bool {
    IGNORED_ON_PURPOSE.iter().any(|(s, k, _)| *s == scope && *k == key)
}

/// Top-level settings Vault or OpenBao know and Coffer refuses, with what to do instead.
const REFUSED_TOP_LEVEL: &[(&str, &str)] = &[
    ("service_registration", "service registration (Consul, Kubernetes) is not built; supported: none"),
    ("ha_storage", "a separate HA storage is not built: set ha_enabled = \"true\" in storage \"postgresql\""),
    ("ha_backend", "a separate HA storage is not built: set ha_enabled = \"true\" in storage \"postgresql\""),
    (
        "log_rotate_duration",
        "log rotation is not built: rotate log_file with logrotate's copytruncate, or log to stderr",
    ),
    ("log_rotate_bytes", "log rotation is not built: rotate log_file with logrotate's copytruncate, or log to stderr"),
    (
        "log_rotate_max_files",
        "log rotation is not built: rotate log_file with logrotate's copytruncate, or log to stderr",
    ),
    ("enable_response_header_hostname", "the X-Vault-Hostname header is not built"),
    ("enable_response_header_raft_node_id", "Coffer has no raft storage"),
    ("disable_printable_check", "Coffer always refuses non-printable characters in paths"),
    ("plugin_file_uid", "plugin file ownership checks are not built: the catalog pins every plugin by SHA-256 instead"),
    (
        "plugin_file_permissions",
        "plugin file permission checks are not built: the catalog pins every plugin by SHA-256 instead",
    ),
    ("introspection_endpoint", "the introspection endpoint is not built"),
    ("imprecise_lease_role_tracking", "lease role tracking is not built"),
    ("license_path", "Coffer needs no licence"),
    ("entropy", "external entropy augmentation is not built"),
    ("kms_library", "KMS libraries are not built: use seal \"pkcs11\" { lib = … }"),
    ("user_lockout", "user lockout is not built"),
];

/// The `telemetry { … }` keys that name a metrics sink Coffer does not have.
const TELEMETRY_SINKS: &[&str] = &[
    "statsite_address",
    "statsd_address",
    "dogstatsd_addr",
    "dogstatsd_tags",
    "circonus_api_token",
    "circonus_api_app",
    "circonus_api_url",
    "circonus_submission_interval",
    "circonus_submission_url",
    "circonus_check_id",
    "circonus_check_force_metric_activation",
    "circonus_check_instance_id",
    "circonus_check_search_tag",
    "circonus_check_display_name",
    "circonus_check_tags",
    "circonus_broker_id",
    "circonus_broker_select_tag",
    "stackdriver_project_id",
    "stackdriver_location",
    "stackdriver_namespace",
    "stackdriver_debug_logs",
];

fn line_of(src: &str, key: &str, nth: usize) -> usize {
    let mut seen = 0;
    for (i, l) in src.lines().enumerate() {
        let t = l.trim_start();
        if let Some(rest) = t.strip_prefix(key) {
            if rest.starts_with([' ', '\t', '=', '"', '{']) || rest.is_empty() {
                if seen == nth {
                    return i + 1;
                }
                seen += 1;
            }
        }
    }
    0
}

fn hcl_items(src: &str, file: &str) -> Result<Vec<Item>, ConfigError> {
    let body: hcl::Body = hcl::parse(&listener::hcl1_compat(src)).map_err(|e| {
        let msg = e.to_string();
        ConfigError::Invalid { file: file.to_string(), msg: format!("invalid HCL: {msg}") }
    })?;
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut items = Vec::new();
    for s in body.into_iter() {
        let (key, labels, value) = match s {
            hcl::Structure::Attribute(a) => {
                let v = serde_json::to_value(&a.expr).unwrap_or(Value::Null);
                (a.key.to_string(), vec![], v)
            }
            hcl::Structure::Block(b) => {
                let labels = b.labels.iter().map(|l| l.as_str().to_string()).collect();
                let v: Value = hcl::from_body(b.body).unwrap_or(Value::Null);
                (b.identifier.to_string(), labels, v)
            }
        };
        let n = counts.entry(key.clone()).or_insert(0);
        let line = line_of(src, &key, *n);
        *n += 1;
        items.push(Item { key, labels, value, line });
    }
    Ok(items)
}

fn json_items(src: &str, file: &str) -> Result<Vec<Item>, ConfigError> {
    let v: Value = serde_json::from_str(src).map_err(|e| ConfigError::AtLine {
        file: file.to_string(),
        line: e.line(),
        msg: format!("invalid JSON: {e}"),
    })?;
    let Value::Object(top) = v else {
        return Err(ConfigError::Invalid { file: file.into(), msg: "top level must be a JSON object".into() });
    };
    let mut items = Vec::new();
    for (key, value) in top {
        let line = line_of(src, &format!("\"{key}\""), 0);
        let is_block = matches!(
            key.as_str(),
            "listener"
                | "storage"
                | "backend"
                | "ha_storage"
                | "ha_backend"
                | "seal"
                | "audit"
                | "storage_source"
                | "storage_destination"
        );
        if key == "audit" || key == "plugin" {
            // [{"file": {"name": {...}}}] or {"file": {"name": {...}}}
            let list = match value {
                Value::Array(a) => a,
                other => vec![other],
            };
            for entry in list {
                let Value::Object(types) = entry else {
                    return Err(ConfigError::AtLine {
                        file: file.into(),
                        line,
                        msg: format!("{key} must be an object"),
                    });
                };
                for (ty, paths) in types {
                    let Value::Object(paths) = paths else {
                        return Err(ConfigError::AtLine {
                            file: file.into(),
                            line,
                            msg: format!("{key} entries must be objects"),
                        });
                    };
                    for (path, body) in paths {
                        items.push(Item { key: key.clone(), labels: vec![ty.clone(), path], value: body, line });
                    }
                }
            }
            continue;
        }
        if !is_block {
            items.push(Item { key, labels: vec![], value, line });
            continue;
        }
        let list = match value {
            Value::Array(a) => a,
            other => vec![other],
        };
        for entry in list {
            let Value::Object(m) = entry else {
                return Err(ConfigError::AtLine { file: file.into(), line, msg: format!("{key} must be an object") });
            };
            for (label, body) in m {
                items.push(Item { key: key.clone(), labels: vec![label], value: body, line });
            }
        }
    }
    Ok(items)
}

fn as_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn as_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "1" | "t" | "true" => Some(true),
            "0" | "f" | "false" | "" => Some(false),
            _ => None,
        },
        Value::Number(n) => n.as_i64().map(|i| i != 0),
        _ => None,
    }
}

fn as_duration(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => coffer_sdk::field::parse_duration_str(s),
        _ => None,
    }
}

fn block_body(item: &Item, file: &str) -> Result<Map<String, Value>, ConfigError> {
    match &item.value {
        Value::Object(m) => Ok(m.clone()),
        _ => Err(ConfigError::AtLine {
            file: file.into(),
            line: item.line,
            msg: format!("{} must be a block", item.key),
        }),
    }
}

/// A `storage "type" { … }` block (also `storage_source` / `storage_destination`).
fn storage_stanza(item: &Item, name: &str) -> Result<StorageConfig, ConfigError> {
    let at = |msg: String| ConfigError::AtLine { file: name.to_string(), line: item.line, msg };
    let kind = item.labels.first().cloned().unwrap_or_default();
    let body = block_body(item, name)?;
    let mut options = BTreeMap::new();
    for (k, v) in body {
        options.insert(k.clone(), as_string(&v).ok_or_else(|| at(format!("storage option {k:?} must be a string")))?);
    }
    match kind.as_str() {
        "file" => {
            if options.get("path").is_none_or(|p| p.is_empty()) {
                return Err(at("storage \"file\" needs a path".into()));
            }
            if let Some(k) = options.keys().find(|k| *k != "path") {
                return Err(at(format!("unknown storage \"file\" option {k:?} (supported: \"path\")")));
            }
        }
        "inmem" => {
            if let Some(k) = options.keys().next() {
                return Err(at(format!("unknown storage \"inmem\" option {k:?} (it takes none)")));
            }
        }
        // The PostgreSQL backend checks its own options when it is opened (PgOptions::from_map).
        "postgresql" => {}
        other => {
            return Err(at(format!("unknown storage type {other:?} (supported: \"file\", \"inmem\", \"postgresql\")")))
        }
    }
    Ok(StorageConfig { kind, options })
}

/// Plugin names usable as catalog, file and URL names: letters, digits, `-`, `_`, `.`, starting
/// with a letter or digit.
fn plugin_name_ok(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 128
        && n.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && n.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// `v1.2.3`, `1.2.3-rc.1+build.5`.
fn semver_ok(v: &str) -> bool {
    let core = v.strip_prefix('v').unwrap_or(v);
    let (core, build) = core.split_once('+').map_or((core, None), |(a, b)| (a, Some(b)));
    let (core, pre) = core.split_once('-').map_or((core, None), |(a, b)| (a, Some(b)));
    let nums: Vec<&str> = core.split('.').collect();
    nums.len() == 3
        && nums.iter().all(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
        && [pre, build].into_iter().flatten().all(|x| {
            !x.is_empty()
                && x.split('.').all(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        })
}

/// The keys a `plugin` stanza takes: OpenBao's, and Coffer's `url`, `signature`, `public_key`.
const PLUGIN_KEYS: &str =
    "command, url, version, sha256sum, binary_name, args, env, signature, public_key (image is refused)";

/// A `plugin "type" "name" { … }` stanza, every key checked.
fn plugin_stanza(item: &Item, file: &str) -> Result<PluginDecl, ConfigError> {
    let (Some(ty), Some(name)) = (item.labels.first(), item.labels.get(1)) else {
        return Err(ConfigError::AtLine {
            file: file.into(),
            line: item.line,
            msg: "plugin needs a type and a name: plugin \"secret\" \"name\" { … }".into(),
        });
    };
    let at = |msg: String| ConfigError::AtLine {
        file: file.to_string(),
        line: item.line,
        msg: format!("plugin {ty:?} {name:?}: {msg}"),
    };
    if !["secret", "auth", "database"].contains(&ty.as_str()) {
        return Err(at(format!("unknown plugin type {ty:?} (supported: \"secret\", \"auth\", \"database\")")));
    }
    if !plugin_name_ok(name) {
        return Err(at("the name must be letters, digits, '-', '_' and '.', starting with a letter or digit".into()));
    }
    let mut d = PluginDecl {
        plugin_type: ty.clone(),
        name: name.clone(),
        version: String::new(),
        sha256sum: String::new(),
        command: None,
        url: None,
        binary_name: None,
        args: vec![],
        env: vec![],
        signature: None,
        public_key: None,
        at: format!("{file}:{}", item.line),
    };
    let string = |k: &str, v: &Value| -> Result<String, ConfigError> {
        as_string(v).filter(|s| !s.is_empty()).ok_or_else(|| at(format!("{k} must be a non-empty string")))
    };
    let list = |k: &str, v: &Value| -> Result<Vec<String>, ConfigError> {
        match v {
            Value::Array(a) => {
                a.iter().map(|x| as_string(x).ok_or_else(|| at(format!("{k} must be a list of strings")))).collect()
            }
            _ => Err(at(format!("{k} must be a list of strings"))),
        }
    };
    for (k, v) in block_body(item, file)? {
        match k.as_str() {
            "version" => d.version = string(&k, &v)?,
            "sha256sum" => d.sha256sum = string(&k, &v)?.to_ascii_lowercase(),
            "command" => d.command = Some(string(&k, &v)?),
            "url" => d.url = Some(string(&k, &v)?),
            "binary_name" => d.binary_name = Some(string(&k, &v)?),
            "args" => d.args = list(&k, &v)?,
            "env" => d.env = list(&k, &v)?,
            "signature" => d.signature = Some(string(&k, &v)?),
            "public_key" => d.public_key = Some(string(&k, &v)?),
            "image" => {
                return Err(at(
                    "image: OCI images are not supported by Coffer; publish the binary at an https:// URL and \
                     declare it with url and sha256sum"
                        .into(),
                ))
            }
            other => return Err(at(format!("unknown plugin option {other:?} (supported: {PLUGIN_KEYS})"))),
        }
    }
    if d.version.is_empty() {
        return Err(at("version is required (a semantic version such as v1.2.3)".into()));
    }
    if !semver_ok(&d.version) {
        return Err(at(format!("version {:?} is not a semantic version such as v1.2.3", d.version)));
    }
    if d.sha256sum.len() != 64 || !d.sha256sum.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(at("sha256sum is required: the binary's SHA-256, as 64 hexadecimal characters".into()));
    }
    match (&d.command, &d.url) {
        (Some(_), Some(_)) => {
            return Err(at("command and url conflict: name the downloaded file with binary_name".into()))
        }
        (None, None) => return Err(at("one of command or url is required".into())),
        (Some(_), None) if d.binary_name.is_some() => {
            return Err(at(
                "binary_name applies to a downloaded binary (url); with command, command names the file".into()
            ))
        }
        _ => {}
    }
    if let Some(u) = &d.url {
        let lower = u.to_ascii_lowercase();
        if !(lower.starts_with("https://") || lower.starts_with("http://")) {
            return Err(at(format!("url {u:?} must be an http:// or https:// URL")));
        }
    }
    for f in [&d.command, &d.binary_name].into_iter().flatten() {
        if !plugin_name_ok(f) {
            return Err(at(format!(
                "{f:?} must be a file name in the plugin directory (letters, digits, '-', '_', '.'; no '/')"
            )));
        }
    }
    if let Some(kv) = d.env.iter().find(|kv| !kv.contains('=')) {
        return Err(at(format!("env entry {kv:?} must be KEY=VALUE")));
    }
    if let Some(sig) = &d.signature {
        if d.public_key.is_none() {
            return Err(at("signature needs public_key: the key the signature must verify with".into()));
        }
        let lower = sig.to_ascii_lowercase();
        if !(lower.starts_with("https://") || lower.starts_with("http://") || sig.starts_with('/')) {
            return Err(at(format!("signature {sig:?} must be an http(s):// URL or an absolute file path")));
        }
    }
    Ok(d)
}

/// The configuration of `coffer operator migrate`: `storage_source "type" { … }` and
/// `storage_destination "type" { … }`, as Vault writes it.
#[derive(Debug, Clone, PartialEq)]
pub struct MigrationConfig {
    pub source: StorageConfig,
    pub destination: StorageConfig,
}

impl MigrationConfig {
    pub fn parse(src: &str, name: &str) -> Result<MigrationConfig, ConfigError> {
        let is_json = name.ends_with(".json") || src.trim_start().starts_with('{');
        let items = if is_json { json_items(src, name)? } else { hcl_items(src, name)? };
        let (mut source, mut destination) = (None, None);
        for item in &items {
            let at = |msg: String| ConfigError::AtLine { file: name.to_string(), line: item.line, msg };
            let slot = match item.key.as_str() {
                "storage_source" => &mut source,
                "storage_destination" => &mut destination,
                "cluster_addr" | "api_addr" => continue,
                other => return Err(at(format!("unknown migration stanza {other:?}"))),
            };
            if slot.is_some() {
                return Err(at(format!("only one {} stanza is allowed", item.key)));
            }
            *slot = Some(storage_stanza(item, name)?);
        }
        let missing = |what: &str| ConfigError::Invalid { file: name.into(), msg: format!("missing {what} stanza") };
        Ok(MigrationConfig {
            source: source.ok_or_else(|| missing("storage_source"))?,
            destination: destination.ok_or_else(|| missing("storage_destination"))?,
        })
    }

    pub fn load(path: impl AsRef<Path>) -> Result<MigrationConfig, ConfigError> {
        let name = path.as_ref().display().to_string();
        let src = std::fs::read_to_string(path.as_ref())
            .map_err(|e| ConfigError::Invalid { file: name.clone(), msg: format!("cannot read: {e}") })?;
        Self::parse(&src, &name)
    }
}

impl ServerConfig {
    /// Parses one file's text; `name` decides the syntax (`.json` or HCL) and labels errors.
    pub fn parse(src: &str, name: &str) -> Result<ServerConfig, ConfigError> {
        let is_json = name.ends_with(".json") || src.trim_start().starts_with('{');
        let items = if is_json { json_items(src, name)? } else { hcl_items(src, name)? };
        let mut c = ServerConfig::default();
        for item in &items {
            let at = |msg: String| ConfigError::AtLine { file: name.to_string(), line: item.line, msg };
            let key = item.key.as_str();
            match key {
                "listener" => {
                    let kind = item.labels.first().cloned().unwrap_or_default();
                    if kind != "tcp" {
                        return Err(at(format!("unsupported listener type {kind:?} (supported: \"tcp\")")));
                    }
                    let body = block_body(item, name)?;
                    let l = listener::parse(kind, &body, src, name, item.line)?;
                    c.listeners.push(l);
                }
                "storage" | "backend" => {
                    if c.storage.is_some() {
                        return Err(at("only one storage stanza is allowed".into()));
                    }
                    c.storage = Some(storage_stanza(item, name)?);
                }
                "audit" => {
                    let (Some(ty), Some(path)) = (item.labels.first(), item.labels.get(1)) else {
                        return Err(at("audit needs a type and a path: audit \"file\" \"name\" { … }".into()));
                    };
                    let body = block_body(item, name)?;
                    let mut decl = AuditDecl {
                        device_type: ty.clone(),
                        path: path.clone(),
                        description: String::new(),
                        local: false,
                        options: BTreeMap::new(),
                    };
                    for (k, v) in &body {
                        match k.as_str() {
                            "description" => decl.description = as_string(v).unwrap_or_default(),
                            "local" => {
                                decl.local =
                                    as_bool(v).ok_or_else(|| at(format!("audit local: {v} is not a boolean")))?
                            }
                            "options" => {
                                let blocks = match v {
                                    Value::Array(a) => a.clone(),
                                    other => vec![other.clone()],
                                };
                                for b in blocks {
                                    let Value::Object(m) = b else {
                                        return Err(at("audit options must be a block".into()));
                                    };
                                    for (ok, ov) in m {
                                        let sv = as_string(&ov)
                                            .ok_or_else(|| at(format!("audit option {ok:?} must be a string")))?;
                                        decl.options.insert(ok, sv);
                                    }
                                }
                            }
                            other => return Err(at(format!("unknown audit setting {other:?}"))),
                        }
                    }
                    if !["file", "socket", "syslog"].contains(&ty.as_str()) {
                        return Err(at(format!("unknown audit device type {ty:?} (supported: file, socket, syslog)")));
                    }
                    if c.audit.iter().any(|a| a.path == decl.path) {
                        return Err(at(format!("two audit stanzas share the path {:?}", decl.path)));
                    }
                    c.audit.push(decl);
                }
                "seal" => {
                    let kind = item.labels.first().cloned().unwrap_or_default();
                    if !["shamir", "pkcs11", "transit"].contains(&kind.as_str()) {
                        return Err(at(format!(
                            "seal type {kind:?} is not supported (supported: \"shamir\", \"pkcs11\", \"transit\")"
                        )));
                    }
                    let mut decl = SealDecl { kind, disabled: false, options: BTreeMap::new() };
                    for (k, v) in block_body(item, name)? {
                        let sv = as_string(&v).ok_or_else(|| at(format!("seal option {k:?} must be a string")))?;
                        if k == "disabled" {
                            decl.disabled =
                                as_bool(&v).ok_or_else(|| at(format!("seal disabled: {v} is not a boolean")))?;
                        }
                        decl.options.insert(k, sv);
                    }
                    if decl.kind == "shamir" {
                        if let Some(k) = decl.options.keys().find(|k| *k != "disabled") {
                            return Err(at(format!(
                                "unknown seal \"shamir\" option {k:?} (the Shamir seal takes only \"disabled\")"
                            )));
                        }
                    }
                    c.seals.push(decl);
                }
                "plugin" => {
                    let decl = plugin_stanza(item, name)?;
                    if c.plugins
                        .iter()
                        .any(|p| p.plugin_type == decl.plugin_type && p.name == decl.name && p.version == decl.version)
                    {
                        return Err(at(format!(
                            "two plugin stanzas declare {:?} {:?} version {}: blocks of one type and name must differ in version",
                            decl.plugin_type, decl.name, decl.version
                        )));
                    }
                    c.plugins.push(decl);
                }
                "plugin_auto_download" => {
                    c.plugin_auto_download = as_bool(&item.value)
                        .ok_or_else(|| at(format!("plugin_auto_download: {} is not a boolean", item.value)))?
                }
                "plugin_auto_register" => {
                    c.plugin_auto_register = as_bool(&item.value)
                        .ok_or_else(|| at(format!("plugin_auto_register: {} is not a boolean", item.value)))?
                }
                "plugin_download_behavior" => {
                    c.plugin_download_warn = match as_string(&item.value).as_deref() {
                        Some("fail") => Some(false),
                        Some("warn") => Some(true),
                        _ => {
                            return Err(at(format!(
                                "plugin_download_behavior {} must be \"fail\" or \"warn\"",
                                item.value
                            )))
                        }
                    }
                }
                "plugin_download_max_size" => {
                    let n = match &item.value {
                        Value::Number(n) => n.as_u64(),
                        Value::String(s) => s.parse::<u64>().ok(),
                        _ => None,
                    };
                    c.plugin_download_max_size = Some(n.filter(|n| *n > 0).ok_or_else(|| {
                        at(format!("plugin_download_max_size: {} is not a positive number of bytes", item.value))
                    })?)
                }
                "api_addr" => c.api_addr = as_string(&item.value),
                "plugin_directory" => c.plugin_directory = as_string(&item.value),
                "cluster_addr" => c.cluster_addr = as_string(&item.value),
                "cluster_name" => c.cluster_name = as_string(&item.value),
                "disable_clustering" => {
                    c.disable_clustering = as_bool(&item.value)
                        .ok_or_else(|| at(format!("disable_clustering: {} is not a boolean", item.value)))?
                }
                "ui" => {
                    c.ui = as_bool(&item.value).ok_or_else(|| at(format!("ui: {} is not a boolean", item.value)))?
                }
                "log_level" => {
                    let l = as_string(&item.value).unwrap_or_default().to_ascii_lowercase();
                    if !["trace", "debug", "info", "warn", "warning", "error", "err", "off"].contains(&l.as_str()) {
                        return Err(at(format!("log_level {l:?} is not one of trace, debug, info, warn, error")));
                    }
                    c.log_level = Some(l);
                }
                "log_format" => {
                    let f = as_string(&item.value).unwrap_or_default();
                    if !["standard", "json", ""].contains(&f.as_str()) {
                        return Err(at(format!("log_format {f:?} must be \"standard\" or \"json\"")));
                    }
                    c.log_format = Some(f);
                }
                "raw_storage_endpoint" => {
                    c.raw_storage_endpoint = as_bool(&item.value)
                        .ok_or_else(|| at(format!("raw_storage_endpoint: {} is not a boolean", item.value)))?
                }
                "disable_mlock" => {
                    c.disable_mlock = as_bool(&item.value)
                        .ok_or_else(|| at(format!("disable_mlock: {} is not a boolean", item.value)))?
                }
                "default_lease_ttl" => {
                    c.default_lease_ttl = Some(
                        as_duration(&item.value)
                            .ok_or_else(|| at(format!("default_lease_ttl: {} is not a duration", item.value)))?,
                    )
                }
                "max_lease_ttl" => {
                    c.max_lease_ttl = Some(
                        as_duration(&item.value)
                            .ok_or_else(|| at(format!("max_lease_ttl: {} is not a duration", item.value)))?,
                    )
                }
                "pid_file" => {
                    c.pid_file = Some(
                        as_string(&item.value)
                            .filter(|p| !p.is_empty())
                            .ok_or_else(|| at("pid_file must be a non-empty path".into()))?,
                    )
                }
                "log_file" => {
                    c.log_file = Some(
                        as_string(&item.value)
                            .filter(|p| !p.is_empty())
                            .ok_or_else(|| at("log_file must be a non-empty path".into()))?,
                    )
                }
                "telemetry" => {
                    let blocks = match &item.value {
                        Value::Array(a) => a.clone(),
                        other => vec![other.clone()],
                    };
                    for b in blocks {
                        let Value::Object(m) = b else { return Err(at("telemetry must be a block".into())) };
                        for k in m.keys() {
                            if TELEMETRY_SINKS.contains(&k.as_str()) {
                                return Err(at(format!(
                                    "telemetry {k:?}: this metrics sink is not built (supported: Prometheus text and JSON at sys/metrics)"
                                )));
                            }
                            if !ignored_on_purpose("telemetry", k) {
                                return Err(at(format!("unknown telemetry option {k:?}")));
                            }
                        }
                    }
                }
                k if ignored_on_purpose("", k) => {}
                k if REFUSED_TOP_LEVEL.iter().any(|(r, _)| *r == k) => {
                    let why = REFUSED_TOP_LEVEL.iter().find(|(r, _)| *r == k).map(|(_, w)| *w).unwrap_or_default();
                    return Err(at(format!("{k:?} is not supported: {why}")));
                }
                other => return Err(at(format!("unknown configuration stanza {other:?}"))),
            }
        }
        if let (Some(d), Some(m)) = (c.default_lease_ttl, c.max_lease_ttl) {
            if d > m {
                return Err(ConfigError::Invalid {
                    file: name.into(),
                    msg: "default_lease_ttl cannot be greater than max_lease_ttl".into(),
                });
            }
        }
        Ok(c)
    }

    /// Loads and merges one or more files (later files override scalar settings).
    pub fn load(paths: &[impl AsRef<Path>]) -> Result<ServerConfig, ConfigError> {
        let mut merged = ServerConfig::default();
        for p in paths {
            let p = p.as_ref();
            let files: Vec<std::path::PathBuf> = if p.is_dir() {
                let mut v: Vec<_> = std::fs::read_dir(p)
                    .map_err(|e| ConfigError::Invalid { file: p.display().to_string(), msg: e.to_string() })?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|f| f.extension().is_some_and(|x| x == "hcl" || x == "json"))
                    .collect();
                v.sort();
                v
            } else {
                vec![p.to_path_buf()]
            };
            for f in files {
                let name = f.display().to_string();
                let src = std::fs::read_to_string(&f)
                    .map_err(|e| ConfigError::Invalid { file: name.clone(), msg: format!("cannot read: {e}") })?;
                let c = ServerConfig::parse(&src, &name)?;
                merged.merge(c);
            }
        }
        Ok(merged)
    }

    fn merge(&mut self, o: ServerConfig) {
        self.listeners.extend(o.listeners);
        self.audit.extend(o.audit);
        self.plugins.extend(o.plugins);
        self.plugin_auto_download |= o.plugin_auto_download;
        self.plugin_auto_register |= o.plugin_auto_register;
        self.seals.extend(o.seals);
        if o.storage.is_some() {
            self.storage = o.storage;
        }
        macro_rules! take {
            ($($f:ident),*) => { $( if o.$f.is_some() { self.$f = o.$f; } )* };
        }
        take!(
            api_addr,
            cluster_addr,
            cluster_name,
            log_level,
            log_format,
            default_lease_ttl,
            max_lease_ttl,
            plugin_directory,
            plugin_download_warn,
            plugin_download_max_size,
            pid_file,
            log_file
        );
        self.ui |= o.ui;
        self.disable_mlock |= o.disable_mlock;
        self.disable_clustering |= o.disable_clustering;
        self.raw_storage_endpoint |= o.raw_storage_endpoint;
        self.warnings.extend(o.warnings);
    }

    /// The configuration as `sys/config/state/sanitized` shows it: every setting, no secret
    /// (storage options such as `connection_url` and seal options such as `pin` or `token` are
    /// left out; only the types are shown).
    pub fn sanitized(&self) -> Map<String, Value> {
        let listeners: Vec<Value> = self
            .listeners
            .iter()
            .map(|l| {
                let mut c = Map::new();
                c.insert("address".into(), l.address.clone().into());
                c.insert("tls_disable".into(), l.tls_disable.into());
                if let Some(f) = &l.tls_cert_file {
                    c.insert("tls_cert_file".into(), f.clone().into());
                }
                if let Some(n) = l.max_request_size {
                    c.insert("max_request_size".into(), (n.min(i64::MAX as usize) as i64).into());
                }
                serde_json::json!({ "type": l.kind, "config": c })
            })
            .collect();
        let seals: Vec<Value> = if self.seals.is_empty() {
            vec![serde_json::json!({ "type": "shamir", "disabled": false })]
        } else {
            self.seals.iter().map(|s| serde_json::json!({ "type": s.kind, "disabled": s.disabled })).collect()
        };
        let storage = self.storage.as_ref().map(|s| {
            let mut m = Map::new();
            m.insert("type".into(), s.kind.clone().into());
            m.insert("cluster_addr".into(), self.cluster_addr.clone().unwrap_or_default().into());
            m.insert("redirect_addr".into(), self.api_addr.clone().unwrap_or_default().into());
            m.insert("disable_clustering".into(), self.disable_clustering.into());
            if let Some(ha) = s.options.get("ha_enabled") {
                m.insert("ha_enabled".into(), (ha == "true").into());
            }
            Value::Object(m)
        });
        let audit: Vec<Value> = self
            .audit
            .iter()
            .map(|a| serde_json::json!({ "type": a.device_type, "path": a.path, "local": a.local }))
            .collect();
        let mut m = Map::new();
        let s = |v: &Option<String>| Value::from(v.clone().unwrap_or_default());
        m.insert("api_addr".into(), s(&self.api_addr));
        m.insert("cluster_addr".into(), s(&self.cluster_addr));
        m.insert("cluster_name".into(), s(&self.cluster_name));
        m.insert("default_lease_ttl".into(), self.default_lease_ttl.unwrap_or(0).into());
        m.insert("max_lease_ttl".into(), self.max_lease_ttl.unwrap_or(0).into());
        m.insert("enable_ui".into(), self.ui.into());
        m.insert("log_level".into(), s(&self.log_level));
        m.insert("log_format".into(), s(&self.log_format));
        m.insert("log_file".into(), s(&self.log_file));
        m.insert("pid_file".into(), s(&self.pid_file));
        m.insert("plugin_directory".into(), s(&self.plugin_directory));
        m.insert("plugin_auto_download".into(), self.plugin_auto_download.into());
        m.insert("plugin_auto_register".into(), self.plugin_auto_register.into());
        m.insert(
            "plugin_download_behavior".into(),
            if self.plugin_download_warn == Some(true) { "warn" } else { "fail" }.into(),
        );
        m.insert(
            "plugin_download_max_size".into(),
            self.plugin_download_max_size.unwrap_or(DEFAULT_PLUGIN_DOWNLOAD_MAX_SIZE).into(),
        );
        let plugins: Vec<Value> = self
            .plugins
            .iter()
            .map(|p| {
                serde_json::json!({
                    "type": p.plugin_type, "name": p.name, "version": p.version, "sha256sum": p.sha256sum,
                    "command": p.command, "url": p.url, "binary_name": p.binary_name,
                    "signed": p.public_key.is_some(),
                })
            })
            .collect();
        m.insert("plugins".into(), plugins.into());
        m.insert("raw_storage_endpoint".into(), self.raw_storage_endpoint.into());
        m.insert("listeners".into(), listeners.into());
        m.insert("seals".into(), seals.into());
        m.insert("storage".into(), storage.unwrap_or(Value::Null));
        m.insert("audit".into(), audit.into());
        m
    }

    /// Applies `BAO_*` / `VAULT_*` environment overrides (BAO_ wins), given a lookup function.
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) {
        let var = |n: &str| get(&format!("BAO_{n}")).or_else(|| get(&format!("VAULT_{n}"))).filter(|v| !v.is_empty());
        if let Some(v) = var("API_ADDR") {
            self.api_addr = Some(v);
        }
        if let Some(v) = var("CLUSTER_ADDR") {
            self.cluster_addr = Some(v);
        }
        if let Some(v) = var("LOG_LEVEL") {
            self.log_level = Some(v.to_ascii_lowercase());
        }
        if let Some(v) = var("LOG_FORMAT") {
            self.log_format = Some(v);
        }
        if let Some(v) = var("DISABLE_MLOCK").and_then(|v| as_bool(&Value::String(v))) {
            self.disable_mlock = v;
        }
        // VAULT_SEAL_TYPE declares a seal configured entirely by its own variables.
        if let Some(v) = var("SEAL_TYPE") {
            if self.seals.iter().all(|s| s.disabled) {
                self.seals.push(SealDecl { kind: v, disabled: false, options: BTreeMap::new() });
            }
        }
    }

    /// The enabled seal and the disabled one (the old seal of a migration), checked: at most
    /// one of each. `None` for the enabled seal means Shamir.
    pub fn seal_pair(&self) -> Result<(Option<&SealDecl>, Option<&SealDecl>), TooManySeals> {
        let enabled: Vec<&SealDecl> = self.seals.iter().filter(|s| !s.disabled).collect();
        let disabled: Vec<&SealDecl> = self.seals.iter().filter(|s| s.disabled).collect();
        if enabled.len() > 1 || disabled.len() > 1 {
            return Err(TooManySeals { enabled: enabled.len(), disabled: disabled.len() });
        }
        let enabled = enabled.first().copied().filter(|s| s.kind != "shamir");
        Ok((enabled, disabled.first().copied()))
    }
}
