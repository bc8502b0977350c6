//! The `listener "tcp" { … }` stanza: every option is either acted on (parsed into
//! [`Listener`]) or refused with an error naming it and its line.

use crate::{as_bool, as_duration, as_string, ConfigError, Invalid};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// A TLS protocol version rustls can speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    Tls12,
    Tls13,
}

/// One entry of `x_forwarded_for_authorized_addrs`: an address and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    /// `10.0.0.0/8`, `2001:db8::/32`, or a bare address (a /32 or /128).
    pub fn parse(s: &str) -> Option<Cidr> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a.trim().parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            None => max,
            Some(p) => p.trim().parse::<u8>().ok().filter(|p| *p <= max)?,
        };
        Some(Cidr { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        // An IPv4 peer seen through an IPv6 socket (::ffff:a.b.c.d) counts as IPv4.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = if self.prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(self.prefix)) };
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = if self.prefix == 0 { 0 } else { u128::MAX << (128 - u32::from(self.prefix)) };
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// `x_forwarded_for_*`: trust the header from these peers.
#[derive(Debug, Clone, PartialEq)]
pub struct ForwardedFor {
    pub authorized: Vec<Cidr>,
    pub hop_skips: usize,
    pub reject_not_authorized: bool,
    pub reject_not_present: bool,
}

/// `custom_response_headers`: header name → values (joined with "; " on the wire), per status
/// match.
pub type CustomHeaders = BTreeMap<StatusMatch, Vec<(String, Vec<String>)>>;

/// Which responses a `custom_response_headers` entry applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum StatusMatch {
    Default,
    /// `"4xx"`: the class digit.
    Class(u16),
    Exact(u16),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Listener {
    pub kind: String,
    pub address: String,
    pub tls_disable: bool,
    pub tls_cert_file: Option<String>,
    pub tls_key_file: Option<String>,
    pub max_request_size: Option<usize>,
    /// `telemetry { unauthenticated_metrics_access = true }` inside the listener.
    pub unauthenticated_metrics_access: bool,
    pub tls_min_version: TlsVersion,
    pub tls_max_version: TlsVersion,
    /// Go-style suite names, checked against those rustls implements.
    pub tls_cipher_suites: Vec<String>,
    pub tls_require_and_verify_client_cert: bool,
    pub tls_client_ca_file: Option<String>,
    pub tls_disable_client_certs: bool,
    pub x_forwarded_for: Option<ForwardedFor>,
    /// Seconds; `None`: no limit (a value of 0 or less in the file).
    pub max_request_duration: Option<u64>,
    pub http_read_header_timeout: Option<u64>,
    pub http_read_timeout: Option<u64>,
    pub http_idle_timeout: Option<u64>,
    /// Legacy unauthenticated `sys/generate-root/*` answer 405 when true (OpenBao 2.x default).
    pub disable_unauthed_generate_root_endpoints: bool,
    /// Legacy unauthenticated `sys/rekey/*` and `sys/rekey-recovery-key/*` likewise.
    pub disable_unauthed_rekey_endpoints: bool,
    pub max_request_json_memory: Option<usize>,
    pub max_request_json_strings: Option<usize>,
    pub custom_response_headers: CustomHeaders,
    /// `cluster_address`: where this listener's cluster port (forwarded requests from HA
    /// standbys) binds; `None`: the listener's address with its port plus one.
    pub cluster_address: Option<String>,
}

impl Listener {
    /// A listener on `address` with every option at its default.
    pub fn tcp(address: &str) -> Listener {
        Listener {
            kind: "tcp".into(),
            address: address.into(),
            tls_disable: false,
            tls_cert_file: None,
            tls_key_file: None,
            max_request_size: None,
            unauthenticated_metrics_access: false,
            tls_min_version: TlsVersion::Tls12,
            tls_max_version: TlsVersion::Tls13,
            tls_cipher_suites: Vec::new(),
            tls_require_and_verify_client_cert: false,
            tls_client_ca_file: None,
            tls_disable_client_certs: false,
            x_forwarded_for: None,
            max_request_duration: Some(90),
            http_read_header_timeout: Some(10),
            http_read_timeout: Some(30),
            http_idle_timeout: Some(300),
            disable_unauthed_generate_root_endpoints: true,
            disable_unauthed_rekey_endpoints: true,
            max_request_json_memory: None,
            max_request_json_strings: None,
            custom_response_headers: BTreeMap::new(),
            cluster_address: None,
        }
    }
}

/// TLS 1.2 suites rustls (aws-lc-rs) implements, by their Go/IANA names (Go's short
/// ChaCha20 spellings included).
pub const TLS12_SUITES: &[&str] = &[
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
];

/// TLS 1.3 suites (Go does not let them be chosen; Coffer restricts TLS 1.3 to the named
/// ones when any is named).
pub const TLS13_SUITES: &[&str] = &["TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"];

/// Suites Go knows that rustls deliberately does not implement (RSA key exchange, CBC, RC4,
/// 3DES).
fn is_known_unsupported_suite(name: &str) -> bool {
    name.starts_with("TLS_RSA_WITH_") || name.contains("_CBC_") || name.contains("RC4") || name.contains("3DES")
}

fn tls_version(option: &str, v: &Value) -> Result<TlsVersion, Invalid> {
    let s = as_string(v).unwrap_or_default();
    match s.as_str() {
        "tls12" => Ok(TlsVersion::Tls12),
        "tls13" => Ok(TlsVersion::Tls13),
        "tls10" | "tls11" => Err(Invalid(format!(
            "listener {option} {s:?} is refused: TLS 1.0 and 1.1 are not implemented by rustls (use \"tls12\" or \"tls13\")"
        ))),
        _ => Err(Invalid(format!("listener {option} {s:?} is not supported (use \"tls12\" or \"tls13\")"))),
    }
}

/// A list given as a JSON/HCL list or as a comma-separated string.
fn string_list(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::Array(a) => a.iter().map(as_string).collect::<Option<Vec<_>>>(),
        other => {
            as_string(other).map(|s| s.split(',').map(|p| p.trim().to_string()).filter(|p| !p.is_empty()).collect())
        }
    }
}

fn seconds(option: &str, v: &Value) -> Result<Option<u64>, Invalid> {
    let n = as_duration(v).ok_or_else(|| Invalid(format!("listener {option}: {v} is not a duration")))?;
    Ok(if n <= 0 { None } else { Some(n as u64) })
}

fn positive(option: &str, v: &Value) -> Result<Option<usize>, Invalid> {
    let n = as_string(v)
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or_else(|| Invalid(format!("listener {option}: {v} is not an integer")))?;
    Ok(if n <= 0 { None } else { Some(n as usize) })
}

fn status_match(k: &str) -> Option<StatusMatch> {
    if k == "default" {
        return Some(StatusMatch::Default);
    }
    let b = k.as_bytes();
    if b.len() == 3 && (b'1'..=b'5').contains(&b[0]) && &k[1..] == "xx" {
        return Some(StatusMatch::Class(u16::from(b[0] - b'0')));
    }
    k.parse::<u16>().ok().filter(|c| (100..=599).contains(c)).map(StatusMatch::Exact)
}

/// A valid HTTP header name (RFC 9110 token characters).
fn is_header_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|c| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c))
}

fn custom_headers(v: &Value) -> Result<CustomHeaders, Invalid> {
    let blocks = match v {
        Value::Array(a) => a.clone(),
        other => vec![other.clone()],
    };
    let mut out = CustomHeaders::new();
    for b in blocks {
        let Value::Object(codes) = b else {
            return Err(Invalid("listener custom_response_headers must be a block of status codes".into()));
        };
        for (code, headers) in codes {
            let m = status_match(&code).ok_or_else(|| Invalid(
                format!("listener custom_response_headers: invalid status code {code:?} (use \"default\", \"200\", \"4xx\", …)")
            ))?;
            let headers = match headers {
                Value::Array(a) if a.len() == 1 => a[0].clone(),
                other => other,
            };
            let Value::Object(hs) = headers else {
                return Err(Invalid(format!(
                    "listener custom_response_headers {code:?} must map header names to lists of values"
                )));
            };
            for (name, values) in hs {
                if !is_header_name(&name) {
                    return Err(Invalid(format!(
                        "listener custom_response_headers: {name:?} is not a valid header name"
                    )));
                }
                let values = string_list_strict(&values).ok_or_else(|| {
                    Invalid(format!("listener custom_response_headers {code:?} {name:?} must be a list of strings"))
                })?;
                if values.iter().any(|x| x.bytes().any(|c| c == b'\r' || c == b'\n' || c == 0)) {
                    return Err(Invalid(format!(
                        "listener custom_response_headers {code:?} {name:?}: a value holds a line break"
                    )));
                }
                out.entry(m).or_default().push((name, values));
            }
        }
    }
    Ok(out)
}

/// A list of strings (a single string is a one-element list; no comma splitting).
fn string_list_strict(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::Array(a) => a.iter().map(as_string).collect(),
        other => as_string(other).map(|s| vec![s]),
    }
}

/// OpenBao (HCL 1) writes `custom_response_headers { "default" = { … } }`: a block whose
/// attribute names are quoted, which HCL 2 does not allow. As an object expression
/// (`custom_response_headers = { … }`) it parses; the rewrite keeps every line where it was.
pub(crate) fn hcl1_compat(src: &str) -> std::borrow::Cow<'_, str> {
    if !src.contains("custom_response_headers") {
        return std::borrow::Cow::Borrowed(src);
    }
    let mut out = String::with_capacity(src.len() + 8);
    for line in src.split_inclusive('\n') {
        let t = line.trim_start();
        match t.strip_prefix("custom_response_headers") {
            Some(rest) if rest.trim_start().starts_with('{') => {
                out.push_str(&line[..line.len() - t.len()]);
                out.push_str("custom_response_headers = ");
                out.push_str(rest.trim_start());
            }
            _ => out.push_str(line),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// The line of `option` inside the block that starts at `block_line` (the block's line when
/// it cannot be found).
fn option_line(src: &str, block_line: usize, option: &str) -> usize {
    let quoted = format!("\"{option}\"");
    for (i, l) in src.lines().enumerate().skip(block_line.saturating_sub(1)) {
        let t = l.trim_start();
        for key in [option, quoted.as_str()] {
            if let Some(rest) = t.strip_prefix(key) {
                if rest.trim_start().starts_with(['=', ':', '{']) {
                    return i + 1;
                }
            }
        }
    }
    block_line
}

/// Parses the body of one `listener "tcp"` block.
pub(crate) fn parse(
    kind: String,
    body: &Map<String, Value>,
    src: &str,
    file: &str,
    block_line: usize,
) -> Result<Listener, ConfigError> {
    let mut l = Listener::tcp("127.0.0.1:8200");
    l.kind = kind;
    let mut xff_addrs: Option<Vec<Cidr>> = None;
    let (mut hop_skips, mut reject_na, mut reject_np) = (0usize, false, false);
    let mut xff_other_line = None;
    for (k, v) in body {
        let line = option_line(src, block_line, k);
        let at = |msg: String| ConfigError::AtLine { file: file.to_string(), line, msg };
        let boolean = |v: &Value| as_bool(v).ok_or_else(|| at(format!("listener {k}: {v} is not a boolean")));
        match k.as_str() {
            "address" => l.address = as_string(v).ok_or_else(|| at("listener address must be a string".into()))?,
            "tls_disable" => l.tls_disable = boolean(v)?,
            "tls_cert_file" => l.tls_cert_file = as_string(v),
            "tls_key_file" => l.tls_key_file = as_string(v),
            "max_request_size" => {
                let n = as_string(v)
                    .and_then(|s| s.parse::<i64>().ok())
                    .ok_or_else(|| at(format!("listener max_request_size: {v} is not an integer")))?;
                // Vault: 0 means the default, negative means no limit.
                l.max_request_size = match n {
                    0 => None,
                    n if n < 0 => Some(usize::MAX),
                    n => Some(n as usize),
                };
            }
            "telemetry" => {
                let blocks = match v {
                    Value::Array(a) => a.clone(),
                    other => vec![other.clone()],
                };
                for b in blocks {
                    if let Some(x) = b.get("unauthenticated_metrics_access") {
                        l.unauthenticated_metrics_access = as_bool(x).ok_or_else(|| {
                            at(format!("listener telemetry unauthenticated_metrics_access: {x} is not a boolean"))
                        })?;
                    }
                }
            }
            "tls_min_version" => l.tls_min_version = tls_version(k, v).map_err(|e| at(e.0))?,
            "tls_max_version" => l.tls_max_version = tls_version(k, v).map_err(|e| at(e.0))?,
            "tls_cipher_suites" => {
                let names = string_list(v).ok_or_else(|| at("listener tls_cipher_suites must be a list of names".into()))?;
                let unsupported: Vec<&String> = names
                    .iter()
                    .filter(|n| !TLS12_SUITES.contains(&n.as_str()) && !TLS13_SUITES.contains(&n.as_str()))
                    .collect();
                if !unsupported.is_empty() {
                    let (known, unknown): (Vec<&String>, Vec<&String>) =
                        unsupported.into_iter().partition(|n| is_known_unsupported_suite(n));
                    let mut parts = Vec::new();
                    if !known.is_empty() {
                        parts.push(format!("not implemented by rustls (no RSA key exchange, CBC, RC4 or 3DES): {known:?}"));
                    }
                    if !unknown.is_empty() {
                        parts.push(format!("unknown: {unknown:?}"));
                    }
                    return Err(at(format!(
                        "listener tls_cipher_suites: {}; supported: {}",
                        parts.join("; "),
                        TLS12_SUITES.iter().chain(TLS13_SUITES).copied().collect::<Vec<_>>().join(", ")
                    )));
                }
                if names.is_empty() {
                    return Err(at("listener tls_cipher_suites is empty".into()));
                }
                l.tls_cipher_suites = names;
            }
            "tls_require_and_verify_client_cert" => l.tls_require_and_verify_client_cert = boolean(v)?,
            "tls_client_ca_file" => l.tls_client_ca_file = as_string(v).filter(|s| !s.is_empty()),
            "tls_disable_client_certs" => l.tls_disable_client_certs = boolean(v)?,
            "x_forwarded_for_authorized_addrs" => {
                let list = string_list(v)
                    .ok_or_else(|| at("listener x_forwarded_for_authorized_addrs must be a list of CIDRs".into()))?;
                let mut cidrs = Vec::new();
                for s in &list {
                    cidrs.push(Cidr::parse(s).ok_or_else(|| {
                        at(format!("listener x_forwarded_for_authorized_addrs: {s:?} is not an address or CIDR"))
                    })?);
                }
                if cidrs.is_empty() {
                    return Err(at("listener x_forwarded_for_authorized_addrs is empty".into()));
                }
                xff_addrs = Some(cidrs);
            }
            "x_forwarded_for_hop_skips" => {
                hop_skips = as_string(v).and_then(|s| s.parse::<usize>().ok()).ok_or_else(|| {
                    at(format!("listener x_forwarded_for_hop_skips: {v} is not a non-negative integer"))
                })?;
                xff_other_line.get_or_insert((line, k.clone()));
            }
            "x_forwarded_for_reject_not_authorized" => {
                reject_na = boolean(v)?;
                xff_other_line.get_or_insert((line, k.clone()));
            }
            "x_forwarded_for_reject_not_present" => {
                reject_np = boolean(v)?;
                xff_other_line.get_or_insert((line, k.clone()));
            }
            "max_request_duration" => l.max_request_duration = seconds(k, v).map_err(|e| at(e.0))?,
            "http_read_header_timeout" => l.http_read_header_timeout = seconds(k, v).map_err(|e| at(e.0))?,
            "http_read_timeout" => l.http_read_timeout = seconds(k, v).map_err(|e| at(e.0))?,
            "http_idle_timeout" => l.http_idle_timeout = seconds(k, v).map_err(|e| at(e.0))?,
            "http_write_timeout" => {
                if seconds(k, v).map_err(|e| at(e.0))?.is_some() {
                    return Err(at(
                        "listener http_write_timeout is not supported: only 0 (no write timeout, the default) is accepted"
                            .into(),
                    ));
                }
            }
            "disable_unauthed_generate_root_endpoints" => l.disable_unauthed_generate_root_endpoints = boolean(v)?,
            "disable_unauthed_rekey_endpoints" => l.disable_unauthed_rekey_endpoints = boolean(v)?,
            "max_request_json_memory" => l.max_request_json_memory = positive(k, v).map_err(|e| at(e.0))?,
            "max_request_json_strings" => l.max_request_json_strings = positive(k, v).map_err(|e| at(e.0))?,
            "custom_response_headers" => l.custom_response_headers = custom_headers(v).map_err(|e| at(e.0))?,
            "cluster_address" => {
                let a = as_string(v).unwrap_or_default();
                let port_ok = a.rsplit_once(':').is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok());
                if !port_ok {
                    return Err(at(format!("listener cluster_address {a:?} must be host:port")));
                }
                l.cluster_address = Some(a);
            }
            // Listed in IGNORED_ON_PURPOSE with its reason.
            k if crate::ignored_on_purpose("listener", k) => {}
            "proxy_protocol_behavior" | "proxy_protocol_authorized_addrs" => {
                return Err(at(format!(
                    "listener option {k:?} is not supported: Coffer does not speak the PROXY protocol (use x_forwarded_for_authorized_addrs behind an HTTP proxy)"
                )))
            }
            "profiling" => {
                return Err(at(
                    "listener option \"profiling\" is not supported: Coffer has no pprof endpoints".into(),
                ))
            }
            "cors" => {
                return Err(at(
                    "listener option \"cors\" is not supported: configure CORS at runtime with `bao write sys/config/cors` (see docs/cors.md)"
                        .into(),
                ))
            }
            "unauthenticated_metrics_access" => {
                return Err(at(
                    "listener option \"unauthenticated_metrics_access\" belongs in a telemetry block: telemetry { unauthenticated_metrics_access = true }"
                        .into(),
                ))
            }
            other => return Err(at(format!("unknown listener option {other:?}"))),
        }
    }
    let at_block = |msg: String| ConfigError::AtLine { file: file.to_string(), line: block_line, msg };
    if l.tls_min_version > l.tls_max_version {
        return Err(at_block("listener tls_max_version must be greater than or equal to tls_min_version".into()));
    }
    if l.tls_require_and_verify_client_cert && l.tls_disable_client_certs {
        return Err(at_block(
            "listener tls_disable_client_certs and tls_require_and_verify_client_cert are mutually exclusive".into(),
        ));
    }
    if l.tls_require_and_verify_client_cert && l.tls_client_ca_file.is_none() && !l.tls_disable {
        return Err(at_block(
            "listener tls_require_and_verify_client_cert needs tls_client_ca_file: Coffer verifies client certificates against that CA only, never the public web PKI".into(),
        ));
    }
    match xff_addrs {
        Some(authorized) => {
            l.x_forwarded_for = Some(ForwardedFor {
                authorized,
                hop_skips,
                reject_not_authorized: reject_na,
                reject_not_present: reject_np,
            })
        }
        None => {
            if let Some((line, xff_other_key)) = xff_other_line {
                return Err(ConfigError::AtLine {
                    file: file.to_string(),
                    line,
                    msg: format!(
                        "listener {xff_other_key}: x_forwarded_for_* options need x_forwarded_for_authorized_addrs"
                    ),
                });
            }
        }
    }
    Ok(l)
}
