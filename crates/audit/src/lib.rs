//! The audit broker: every request and response that passes the router is written, as one
//! JSON line in Vault's audit format, to each enabled device. Secrets (tokens, accessors
//! unless `hmac_accessor=false`, every string in request and response data) are replaced by
//! `hmac-sha256:<hex>` under a per-device salt kept in the barrier, unless `log_raw=true`.
//!
//! Fail closed: when devices are enabled and none records an entry, the request fails (500)
//! and nothing is returned. A device that blocks counts as failed after `write_timeout`.
//!
//! The broker knows nothing of the core: a request, its token and its response come in as
//! the plain data of [`AuditRecord`], [`AuditToken`] and [`AuditResponse`]. Errors are
//! [`AuditError`]; `From<AuditError> for LogicalError` gives the client-facing messages.

#![forbid(unsafe_code)]

use coffer_barrier::{Barrier, BarrierError, SecureStorage};
use coffer_sdk::LogicalError;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

pub const AUDIT_TABLE_PATH: &str = "core/audit";
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);

/// One audit device as configured.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AuditConfig {
    /// Ends with `/`.
    pub path: String,
    #[serde(rename = "type")]
    pub device_type: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    #[serde(default)]
    pub local: bool,
    pub uuid: String,
    /// Declared in the server configuration (not stored in the table).
    #[serde(skip)]
    pub declared: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AuditTable {
    pub entries: Vec<AuditConfig>,
}

enum Sink {
    Discard,
    Stdout,
    File { path: String, mode: u32, file: Mutex<Option<std::fs::File>> },
    Socket { address: String, kind: String, conn: Mutex<Option<SocketConn>> },
    Syslog { socket_path: String, facility: u8, tag: String },
}

enum SocketConn {
    Tcp(std::net::TcpStream),
    Udp(std::net::UdpSocket),
    Unix(std::os::unix::net::UnixStream),
}

/// Why a device could not be set up or could not write.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceError {
    #[error("option {0:?} is not supported: audit filtering is not built, every device records every request")]
    Unsupported(String),
    #[error("unknown option {option:?} (supported: {supported})")]
    UnknownOption { option: String, supported: String },
    #[error("file_path is required")]
    FilePathRequired,
    #[error("invalid mode {0:?}: an octal file mode such as \"0600\"")]
    InvalidMode(String),
    #[error("address is required")]
    AddressRequired,
    #[error("unsupported socket_type {0:?}")]
    SocketType(String),
    #[error("invalid facility {0}")]
    Facility(String),
    #[error("invalid facility {facility}")]
    FacilityNumber { facility: String, source: std::num::ParseIntError },
    #[error("unknown audit device type {0:?} (supported: file, socket, syslog)")]
    UnknownType(String),
    #[error("cannot open {path:?}: {source}")]
    Open { path: String, source: std::io::Error },
    #[error("cannot set the mode of {path:?}: {source}")]
    Mode { path: String, source: std::io::Error },
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("file not open")]
    NotOpen,
    #[error("not connected")]
    NotConnected,
}

/// What enabling a device can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    #[error("audit device {path}: {source}")]
    Device { path: String, source: DeviceError },
    #[error("unknown format {0:?} (json or jsonx)")]
    UnknownFormat(String),
    #[error(transparent)]
    Storage(#[from] BarrierError),
    #[error(transparent)]
    Crypto(#[from] coffer_crypto::CryptoError),
}

/// A device's configuration is the client's mistake (400); storage failures map as everywhere
/// in the core (details logged, a generic message returned); the rest are internal errors.
impl From<AuditError> for LogicalError {
    fn from(e: AuditError) -> Self {
        match e {
            AuditError::Device { .. } | AuditError::UnknownFormat(_) => {
                LogicalError::bad_request(e.to_string()).with_source(e)
            }
            AuditError::Storage(b) => coffer_barrier::logical_error(b),
            other => LogicalError::internal(other.to_string()).with_source(other),
        }
    }
}

/// The options each device type acts on; anything else is refused when the device is enabled.
fn check_options(c: &AuditConfig) -> Result<(), DeviceError> {
    const COMMON: &[&str] = &["format", "prefix", "log_raw", "hmac_accessor", "elide_list_responses"];
    let own: &[&str] = match c.device_type.as_str() {
        "file" => &["file_path", "path", "mode"],
        "socket" => &["address", "socket_type", "write_timeout"],
        "syslog" => &["facility", "tag", "socket_path"],
        _ => &[],
    };
    for k in c.options.keys() {
        match k.as_str() {
            "filter" | "fallback" => return Err(DeviceError::Unsupported(k.clone())),
            k if COMMON.contains(&k) || own.contains(&k) => {}
            other => {
                let mut known: Vec<&str> = COMMON.iter().chain(own).copied().collect();
                known.sort_unstable();
                return Err(DeviceError::UnknownOption { option: other.to_string(), supported: known.join(", ") });
            }
        }
    }
    Ok(())
}

impl Sink {
    fn from_config(c: &AuditConfig) -> Result<Sink, DeviceError> {
        check_options(c)?;
        let opt = |k: &str| c.options.get(k).cloned().unwrap_or_default();
        match c.device_type.as_str() {
            "file" => {
                let p = {
                    let fp = opt("file_path");
                    if fp.is_empty() {
                        opt("path")
                    } else {
                        fp
                    }
                };
                match p.as_str() {
                    "" => Err(DeviceError::FilePathRequired),
                    "discard" => Ok(Sink::Discard),
                    "stdout" => Ok(Sink::Stdout),
                    path => {
                        let mode = match c.options.get("mode") {
                            Some(m) => u32::from_str_radix(m.trim_start_matches("0o"), 8)
                                .ok()
                                .filter(|m| *m <= 0o777)
                                .ok_or_else(|| DeviceError::InvalidMode(m.clone()))?,
                            None => 0o600,
                        };
                        let s = Sink::File { path: path.to_string(), mode, file: Mutex::new(None) };
                        s.open_file()?;
                        Ok(s)
                    }
                }
            }
            "socket" => {
                let address = opt("address");
                if address.is_empty() {
                    return Err(DeviceError::AddressRequired);
                }
                let kind = match opt("socket_type").as_str() {
                    "" | "tcp" => "tcp",
                    "udp" => "udp",
                    "unix" => "unix",
                    other => return Err(DeviceError::SocketType(other.to_string())),
                };
                Ok(Sink::Socket { address, kind: kind.into(), conn: Mutex::new(None) })
            }
            "syslog" => {
                let facility = match opt("facility").to_uppercase().as_str() {
                    "" | "AUTH" => 4,
                    "KERN" => 0,
                    "USER" => 1,
                    "DAEMON" => 3,
                    "SYSLOG" => 5,
                    "AUTHPRIV" => 10,
                    f if f.starts_with("LOCAL") => {
                        16 + f[5..]
                            .parse::<u8>()
                            .map_err(|source| DeviceError::FacilityNumber { facility: f.to_string(), source })?
                            .min(7)
                    }
                    f => return Err(DeviceError::Facility(f.to_string())),
                };
                let tag = if opt("tag").is_empty() { "coffer".to_string() } else { opt("tag") };
                let socket_path =
                    if opt("socket_path").is_empty() { "/dev/log".to_string() } else { opt("socket_path") };
                Ok(Sink::Syslog { socket_path, facility, tag })
            }
            other => Err(DeviceError::UnknownType(other.to_string())),
        }
    }

    fn open_file(&self) -> Result<(), DeviceError> {
        if let Sink::File { path, mode, file } = self {
            use std::os::unix::fs::OpenOptionsExt;
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .mode(if *mode == 0 { 0o600 } else { *mode })
                .open(path)
                .map_err(|source| DeviceError::Open { path: path.clone(), source })?;
            // As OpenBao: the file gets `mode` whatever the umask or its earlier mode; "0000"
            // leaves the permissions of an existing file alone.
            if *mode != 0 {
                use std::os::unix::fs::PermissionsExt;
                f.set_permissions(std::fs::Permissions::from_mode(*mode))
                    .map_err(|source| DeviceError::Mode { path: path.clone(), source })?;
            }
            *file.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(f);
        }
        Ok(())
    }

    /// Reopens the file (log rotation on SIGHUP).
    fn reopen(&self) -> Result<(), DeviceError> {
        self.open_file()
    }

    fn write_line(&self, line: &[u8]) -> Result<(), DeviceError> {
        match self {
            Sink::Discard => Ok(()),
            Sink::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(line).and_then(|_| out.flush()).map_err(DeviceError::from)
            }
            Sink::File { file, .. } => {
                let mut g = file.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                let f = g.as_mut().ok_or(DeviceError::NotOpen)?;
                // One write per entry; the OS appends it atomically for O_APPEND.
                f.write_all(line).map_err(DeviceError::from)
            }
            Sink::Socket { address, kind, conn } => {
                let mut g = conn.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                for attempt in 0..2 {
                    if g.is_none() {
                        *g = Some(match kind.as_str() {
                            "tcp" => {
                                let s = std::net::TcpStream::connect(address.as_str())?;
                                s.set_write_timeout(Some(DEFAULT_TIMEOUT))?;
                                SocketConn::Tcp(s)
                            }
                            "udp" => {
                                let s = std::net::UdpSocket::bind("0.0.0.0:0")?;
                                s.connect(address.as_str())?;
                                SocketConn::Udp(s)
                            }
                            _ => {
                                let s = std::os::unix::net::UnixStream::connect(address)?;
                                s.set_write_timeout(Some(DEFAULT_TIMEOUT))?;
                                SocketConn::Unix(s)
                            }
                        });
                    }
                    let r = match g.as_mut() {
                        Some(SocketConn::Tcp(s)) => s.write_all(line).map_err(DeviceError::from),
                        Some(SocketConn::Udp(s)) => s.send(line).map(|_| ()).map_err(DeviceError::from),
                        Some(SocketConn::Unix(s)) => s.write_all(line).map_err(DeviceError::from),
                        None => Err(DeviceError::NotConnected),
                    };
                    match r {
                        Ok(()) => return Ok(()),
                        Err(e) if attempt == 1 => return Err(e),
                        Err(_) => *g = None,
                    }
                }
                Err(DeviceError::NotConnected)
            }
            Sink::Syslog { socket_path, facility, tag } => {
                let pri = facility * 8 + 6;
                let mut msg = format!("<{pri}>{tag}: ").into_bytes();
                msg.extend_from_slice(line.strip_suffix(b"\n").unwrap_or(line));
                let s = std::os::unix::net::UnixDatagram::unbound()?;
                s.send_to(&msg, socket_path).map(|_| ()).map_err(DeviceError::from)
            }
        }
    }
}

struct Device {
    config: AuditConfig,
    sink: Sink,
    salt: coffer_crypto::HmacKey,
    log_raw: bool,
    hmac_accessor: bool,
    prefix: String,
    jsonx: bool,
    elide_list_responses: bool,
    timeout: Duration,
}

impl Device {
    fn hash(&self, s: &str) -> String {
        format!("hmac-sha256:{}", hex::encode(self.salt.sign(s.as_bytes())))
    }
}

/// What the broker records of the token a request came with.
#[derive(Clone, Copy)]
pub struct AuditToken<'a> {
    pub accessor: &'a str,
    pub display_name: &'a str,
    pub policies: &'a [String],
    pub meta: Option<&'a Map<String, Value>>,
    pub entity_id: &'a str,
    pub token_type: &'a str,
    /// The TTL the token was created with (seconds).
    pub ttl: i64,
    /// Unix seconds.
    pub creation_time: i64,
}

/// What the broker records of a response.
#[derive(Clone, Copy)]
pub struct AuditResponse<'a> {
    pub data: Option<&'a Map<String, Value>>,
    pub auth: Option<&'a coffer_api::Auth>,
    pub wrap_info: Option<&'a coffer_api::WrapInfo>,
    pub lease_id: &'a str,
    pub warnings: &'a [String],
}

/// What the broker needs to know of a request and its outcome.
pub struct AuditRecord<'a> {
    pub id: &'a str,
    pub operation: &'a str,
    pub path: &'a str,
    pub data: &'a Map<String, Value>,
    pub remote_addr: Option<std::net::IpAddr>,
    pub client_token: &'a str,
    pub token: Option<AuditToken<'a>>,
    pub mount_type: &'a str,
    pub mount_accessor: &'a str,
    pub non_hmac_request_keys: &'a [String],
    pub non_hmac_response_keys: &'a [String],
    pub wrap_ttl: Option<i64>,
}

#[derive(Default)]
pub struct AuditBroker {
    devices: RwLock<Vec<Arc<Device>>>,
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

fn hash_values(d: &Device, v: &Value, skip: &[String]) -> Value {
    match v {
        Value::String(s) => Value::String(d.hash(s)),
        Value::Array(a) => Value::Array(a.iter().map(|x| hash_values(d, x, &[])).collect()),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| (k.clone(), if skip.contains(k) { x.clone() } else { hash_values(d, x, &[]) }))
                .collect(),
        ),
        other => other.clone(),
    }
}

impl AuditBroker {
    pub fn enabled(&self) -> bool {
        !self.devices.read().unwrap_or_else(std::sync::PoisonError::into_inner).is_empty()
    }

    pub fn list(&self) -> Vec<AuditConfig> {
        self.devices
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|x| x.config.clone())
            .collect()
    }

    /// Builds a device (loading or creating its salt) and adds it.
    pub async fn add(&self, barrier: &Barrier, config: AuditConfig) -> Result<(), AuditError> {
        let sink =
            Sink::from_config(&config).map_err(|source| AuditError::Device { path: config.path.clone(), source })?;
        let salt_key = format!("audit/{}/salt", config.uuid);
        let salt = match barrier.get(&salt_key).await? {
            Some(s) => s,
            None => {
                let s = coffer_crypto::random_bytes(32)?;
                barrier.put(&salt_key, &s).await?;
                s
            }
        };
        let b = |k: &str, def: bool| match config.options.get(k).map(|s| s.to_lowercase()) {
            Some(v) => matches!(v.as_str(), "true" | "1" | "t"),
            None => def,
        };
        let timeout = config
            .options
            .get("write_timeout")
            .and_then(|t| coffer_sdk::field::parse_duration_str(t))
            .filter(|s| *s > 0)
            .map(|s| Duration::from_secs(s as u64))
            .unwrap_or(DEFAULT_TIMEOUT);
        let format = config.options.get("format").cloned().unwrap_or_else(|| "json".into());
        if format != "json" && format != "jsonx" {
            return Err(AuditError::UnknownFormat(format));
        }
        let dev = Device {
            sink,
            salt: coffer_crypto::HmacKey::new(&salt),
            log_raw: b("log_raw", false),
            hmac_accessor: b("hmac_accessor", true),
            prefix: config.options.get("prefix").cloned().unwrap_or_default(),
            jsonx: format == "jsonx",
            elide_list_responses: b("elide_list_responses", false),
            timeout,
            config,
        };
        let mut devs = self.devices.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        devs.retain(|d| d.config.path != dev.config.path);
        devs.push(Arc::new(dev));
        Ok(())
    }

    pub fn remove(&self, path: &str) -> bool {
        let mut d = self.devices.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        let before = d.len();
        d.retain(|x| x.config.path != path);
        d.len() != before
    }

    /// `sys/audit-hash/<path>`: the digest a device would log for `input`.
    pub fn hash_for(&self, path: &str, input: &str) -> Option<String> {
        let d = self.devices.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        d.iter().find(|x| x.config.path == path).map(|x| x.hash(input))
    }

    /// Reopens file devices (SIGHUP).
    pub fn reopen(&self) {
        for dev in self.devices.read().unwrap_or_else(std::sync::PoisonError::into_inner).iter() {
            if let Err(e) = dev.sink.reopen() {
                tracing::error!(device = %dev.config.path, error = %e, "audit device could not be reopened");
            }
        }
    }

    fn entry(d: &Device, kind: &str, r: &AuditRecord<'_>, resp: Option<&AuditResponse<'_>>, error: &str) -> Value {
        let h = |s: &str| if d.log_raw || s.is_empty() { s.to_string() } else { d.hash(s) };
        let ha = |s: &str| if d.log_raw || !d.hmac_accessor || s.is_empty() { s.to_string() } else { d.hash(s) };
        let auth = match r.token {
            Some(t) => json!({
                "client_token": h(r.client_token),
                "accessor": ha(t.accessor),
                "display_name": t.display_name,
                "policies": t.policies,
                "token_policies": t.policies,
                "metadata": t.meta,
                "entity_id": t.entity_id,
                "token_type": t.token_type,
                "token_ttl": t.ttl,
                "token_issue_time": time::OffsetDateTime::from_unix_timestamp(t.creation_time).ok()
                    .and_then(|x| x.format(&time::format_description::well_known::Rfc3339).ok()).unwrap_or_default(),
            }),
            None => json!({}),
        };
        let data = if d.log_raw {
            Value::Object(r.data.clone())
        } else {
            hash_values(d, &Value::Object(r.data.clone()), r.non_hmac_request_keys)
        };
        let (ip, port) = (r.remote_addr.map(|a| a.to_string()).unwrap_or_default(), 0);
        let mut request = json!({
            "id": r.id,
            "operation": r.operation,
            "mount_type": r.mount_type,
            "mount_accessor": r.mount_accessor,
            "client_token": h(r.client_token),
            "client_token_accessor": r.token.map(|t| ha(t.accessor)).unwrap_or_default(),
            "namespace": { "id": "root" },
            "path": r.path,
            "data": if r.data.is_empty() { Value::Null } else { data },
            "remote_address": ip,
            "remote_port": port,
        });
        if let Some(w) = r.wrap_ttl {
            request["wrap_ttl"] = json!(w);
        }
        let mut e = json!({ "time": now_rfc3339(), "type": kind, "auth": auth, "request": request });
        if let Some(resp) = resp {
            let elided;
            let mut rdata = resp.data;
            if d.elide_list_responses && r.operation == "list" {
                if let Some(m) = rdata {
                    // The keys and key_info of a list answer become their counts.
                    let mut m = m.clone();
                    for k in ["keys", "key_info"] {
                        let n = match m.get(k) {
                            Some(Value::Array(a)) => a.len(),
                            Some(Value::Object(o)) => o.len(),
                            _ => continue,
                        };
                        m.insert(k.into(), json!(n));
                    }
                    elided = m;
                    rdata = Some(&elided);
                }
            }
            let rdata = rdata.map(|m| {
                if d.log_raw {
                    Value::Object(m.clone())
                } else {
                    hash_values(d, &Value::Object(m.clone()), r.non_hmac_response_keys)
                }
            });
            let mut out = json!({ "mount_type": r.mount_type, "mount_accessor": r.mount_accessor });
            if let Some(v) = rdata {
                out["data"] = v;
            }
            if let Some(a) = resp.auth {
                out["auth"] = json!({
                    "client_token": h(&a.client_token), "accessor": ha(&a.accessor), "display_name": "",
                    "policies": a.policies, "token_policies": a.token_policies, "metadata": a.metadata,
                    "entity_id": a.entity_id, "token_type": a.token_type, "token_ttl": a.lease_duration,
                });
            }
            if let Some(w) = resp.wrap_info {
                out["wrap_info"] = json!({
                    "token": h(&w.token), "accessor": ha(&w.accessor), "ttl": w.ttl,
                    "creation_time": w.creation_time, "creation_path": w.creation_path,
                });
            }
            if !resp.lease_id.is_empty() {
                out["secret"] = json!({ "lease_id": resp.lease_id });
            }
            if !resp.warnings.is_empty() {
                out["warnings"] = json!(resp.warnings);
            }
            e["response"] = out;
        }
        if !error.is_empty() {
            e["error"] = Value::String(error.to_string());
        }
        e
    }

    fn encode(d: &Device, v: &Value) -> Vec<u8> {
        let mut s = d.prefix.clone().into_bytes();
        if d.jsonx {
            s.extend_from_slice(to_jsonx(v).as_bytes());
        } else {
            s.extend_from_slice(serde_json::to_string(v).unwrap_or_default().as_bytes());
        }
        s.push(b'\n');
        s
    }

    /// Writes one entry to every device, each within its timeout. Ok when at least one device
    /// recorded it (or none is enabled).
    pub async fn log(
        &self,
        kind: &str,
        r: &AuditRecord<'_>,
        resp: Option<&AuditResponse<'_>>,
        error: &str,
    ) -> Result<(), Unrecorded> {
        let devs: Vec<Arc<Device>> = self.devices.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        if devs.is_empty() {
            return Ok(());
        }
        let mut ok = 0;
        let mut tasks = Vec::with_capacity(devs.len());
        for d in devs {
            let line = Self::encode(&d, &Self::entry(&d, kind, r, resp, error));
            let timeout = d.timeout;
            let dd = d.clone();
            let task = tokio::task::spawn_blocking(move || dd.sink.write_line(&line));
            tasks.push((d, tokio::time::timeout(timeout, task)));
        }
        for (d, t) in tasks {
            match t.await {
                Ok(Ok(Ok(()))) => ok += 1,
                Ok(Ok(Err(e))) => tracing::error!(device = %d.config.path, error = %e, "audit device failed"),
                Ok(Err(_)) => tracing::error!(device = %d.config.path, "audit device task failed"),
                Err(_) => tracing::error!(device = %d.config.path, "audit device timed out"),
            }
        }
        record_result(ok > 0);
        if ok > 0 {
            Ok(())
        } else {
            Err(Unrecorded)
        }
    }
}

/// No enabled device recorded the entry: the request must fail (fail closed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no audit device could record the request")]
pub struct Unrecorded;

/// Counts an entry as recorded (by at least one device) or not.
fn record_result(ok: bool) {
    let r = coffer_metrics::global();
    if ok {
        r.incr("coffer_audit_log_total", &[], 1);
    } else {
        r.incr("coffer_audit_log_failures_total", &[], 1);
    }
}

/// JSON to the XML form Vault's `jsonx` format uses.
fn to_jsonx(v: &Value) -> String {
    fn esc(s: &str) -> String {
        s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
    }
    fn node(name: Option<&str>, v: &Value, out: &mut String) {
        let attr = name.map(|n| format!(" name=\"{}\"", esc(n))).unwrap_or_default();
        match v {
            Value::Null => out.push_str(&format!("<json:null{attr}/>")),
            Value::Bool(b) => out.push_str(&format!("<json:boolean{attr}>{b}</json:boolean>")),
            Value::Number(n) => out.push_str(&format!("<json:number{attr}>{n}</json:number>")),
            Value::String(s) => out.push_str(&format!("<json:string{attr}>{}</json:string>", esc(s))),
            Value::Array(a) => {
                out.push_str(&format!("<json:array{attr}>"));
                for x in a {
                    node(None, x, out);
                }
                out.push_str("</json:array>");
            }
            Value::Object(m) => {
                out.push_str(&format!("<json:object{attr}>"));
                for (k, x) in m {
                    node(Some(k), x, out);
                }
                out.push_str("</json:object>");
            }
        }
    }
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    node(None, v, &mut out);
    out.replacen("<json:object>", "<json:object xmlns:json=\"http://www.datapower.com/schemas/json\">", 1)
}
