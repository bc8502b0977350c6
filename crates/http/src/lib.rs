//! Coffer's HTTP layer: Vault's wire conventions in one place.
//!
//! - `/v1/<path>` with GET (LIST when `?list=true`), LIST, POST ≡ PUT, PATCH, DELETE, HEAD for health;
//! - the token from `X-Vault-Token` or `Authorization: Bearer`;
//! - bodies as JSON objects (or forms), `null` as empty, a size limit answered with 413;
//! - every response as the standard envelope or a raw body, errors as `{"errors":[…]}`;
//! - the only place that knows HTTP status codes ([`status_for`]).
#![forbid(unsafe_code)]

mod cluster;
mod listener;
mod options;
mod ui;

pub use axum::http::{HeaderName, HeaderValue};
pub use cluster::{Cluster, ClusterError};
pub use listener::{serve, serve_router, ClientCertificate, ListenerConfig, ListenerError, TlsVersion};
pub use options::{CustomHeaders, ForwardedFor, RequestOptions, DEFAULT_MAX_JSON_MEMORY, DEFAULT_MAX_JSON_STRINGS};
pub use ui::CONTENT_SECURITY_POLICY;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::Response;
use axum::Router;
use coffer_core::{BodyShape, Core, CoreRequest, CoreResponse, ErrorKind};
use coffer_sdk::{LogicalError, Operation};
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// Default `max_request_size`: 32 MiB, as OpenBao.
pub const DEFAULT_MAX_REQUEST_SIZE: usize = 32 * 1024 * 1024;

/// The client's socket address, attached to each request by the listener.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub std::net::SocketAddr);

#[derive(Clone)]
pub struct AppState {
    pub core: Arc<Core>,
    pub max_request_size: usize,
    /// `ui = true` in the config: the web UI is served at `/ui/` and `/` redirects there.
    pub ui: bool,
    /// `telemetry { unauthenticated_metrics_access = true }` in the listener.
    pub unauthenticated_metrics: bool,
    /// The listener's per-request options (forwarded-for, timeouts, JSON limits, headers, …).
    pub options: Arc<RequestOptions>,
    /// On an HA node: forwards what a standby cannot serve to the active node (decision 0027).
    /// `None`: a standby redirects instead.
    pub cluster: Option<Arc<Cluster>>,
}

/// Builds the router for one listener.
pub fn router(state: AppState) -> Router {
    Router::new().fallback(options::handle_outer).with_state(state)
}

/// Maps an error kind to its HTTP status. The one place that knows status codes.
pub fn status_for(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
        ErrorKind::PermissionDenied => StatusCode::FORBIDDEN,
        ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorKind::NotFound | ErrorKind::UnsupportedPath => StatusCode::NOT_FOUND,
        ErrorKind::UnsupportedOperation => StatusCode::METHOD_NOT_ALLOWED,
        ErrorKind::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
        ErrorKind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::Sealed | ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

pub(crate) fn json_response(status: StatusCode, body: &impl serde::Serialize) -> Response {
    let mut bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    bytes.push(b'\n');
    let mut r = Response::new(Body::from(bytes));
    *r.status_mut() = status;
    set_common_headers(r.headers_mut());
    r
}

fn set_common_headers(h: &mut HeaderMap) {
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

pub fn error_response(status: StatusCode, messages: &[String]) -> Response {
    json_response(status, &json!({ "errors": messages }))
}

/// The causes kept under an error (not the error's own client-facing messages), outermost
/// first, for the server log.
fn cause_chain(e: &LogicalError) -> Option<String> {
    let mut next = std::error::Error::source(e);
    let mut parts = Vec::new();
    while let Some(cause) = next {
        parts.push(cause.to_string());
        next = cause.source();
    }
    (!parts.is_empty()).then(|| parts.join(": "))
}

fn logical_error(e: &LogicalError) -> Response {
    error_response(status_for(e.kind), &e.messages)
}

/// A 307 as Go's `http.Redirect` writes it (OpenBao's redirects): `Cache-Control: no-store`,
/// and for GET and HEAD an HTML content type with a short body naming the target (the body
/// is not sent for HEAD).
pub(crate) fn redirect(method: &Method, location: &str) -> Response {
    let html = method == Method::GET || method == Method::HEAD;
    let body = if method == Method::GET {
        Body::from(format!("<a href=\"{location}\">Temporary Redirect</a>.\n"))
    } else {
        Body::empty()
    };
    let mut r = Response::new(body);
    *r.status_mut() = StatusCode::TEMPORARY_REDIRECT;
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(location) {
        h.insert(header::LOCATION, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if html {
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    }
    r
}

/// A plain-text answer as Go's HTTP server writes its own refusals (`400 Bad Request: …`).
fn plain_response(status: StatusCode, text: &'static str) -> Response {
    let mut r = Response::new(Body::from(text));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    r.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}

/// Go's URL query parser refuses more than this many parameters (form bodies included).
const MAX_FORM_FIELDS: usize = 10_000;

/// `X-Vault-Index` names a state as OpenBao encodes it: base64 of
/// `v1:<cluster id>:<local index>:<replicated index>:<hmac>`. Coffer keeps no such states and
/// ignores one that decodes, but refuses (400) one that does not, as OpenBao does.
fn index_header_decodes(v: &[u8]) -> bool {
    use base64::Engine;
    let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(v) else { return false };
    let Ok(text) = std::str::from_utf8(&raw) else { return false };
    let parts: Vec<&str> = text.split(':').collect();
    parts.len() == 5 && parts[0] == "v1" && parts[2].parse::<u64>().is_ok() && parts[3].parse::<u64>().is_ok()
}

fn no_content() -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::NO_CONTENT;
    set_common_headers(r.headers_mut());
    r
}

fn token_from(headers: &HeaderMap) -> Option<String> {
    if let Some(t) = headers.get("x-vault-token").and_then(|v| v.to_str().ok()) {
        if !t.is_empty() {
            return Some(t.to_string());
        }
    }
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
}

/// `Authorization: Basic` credentials as OAuth clients send them (RFC 6749 2.3.1: the id and
/// secret form-encoded, then joined by a colon and base64-encoded).
fn basic_from(headers: &HeaderMap) -> Option<Box<(String, String)>> {
    use base64::Engine;
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let b64 = v.strip_prefix("Basic ").or_else(|| v.strip_prefix("basic "))?;
    // drop-cause: the header holds a secret.
    let raw = base64::engine::general_purpose::STANDARD.decode(b64.trim()).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (id, secret) = text.split_once(':')?;
    let dec = |s: &str| form_urlencoded(&format!("x={s}")).and_then(|mut v| v.pop()).map(|(_, v)| v);
    Some(Box::new((dec(id)?, dec(secret)?)))
}

/// The cleaned form of a path with `//`, `/./` or `/../` segments, or None when already clean.
fn clean_path(path: &str) -> Option<String> {
    // Only an empty segment (`//`) or a dot segment (`/.`, `/..`) makes a path unclean.
    if !path.contains("//") && !path.contains("/.") && path != "/" {
        return None;
    }
    let trailing = path.ends_with('/') && path.len() > 1;
    let mut out: Vec<&str> = Vec::new();
    let mut dirty = false;
    let segments = path.split('/').count();
    for (i, seg) in path.split('/').enumerate() {
        let last = i == segments - 1;
        match seg {
            "" if i == 0 || (last && trailing) => {}
            "" | "." => dirty = true,
            ".." => {
                dirty = true;
                out.pop();
            }
            s => out.push(s),
        }
    }
    if !dirty {
        return None;
    }
    let mut clean = format!("/{}", out.join("/"));
    if trailing && clean != "/" {
        clean.push('/');
    }
    Some(clean)
}

/// `%XX` sequences decoded (`+` stays a plus, as in a URL path). `None` for an escape that is
/// not two hex digits or a result that is not UTF-8: Go's URL parser refuses both, and so does
/// Coffer (400) rather than guessing.
fn percent_decode_path(p: &str) -> Option<String> {
    if !p.contains('%') {
        return Some(p.to_string());
    }
    let b = p.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let v = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())?;
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// Every `%` starts two hex digits.
fn escapes_well_formed(p: &str) -> bool {
    let b = p.as_bytes();
    b.iter()
        .enumerate()
        .all(|(i, &c)| c != b'%' || b.get(i + 1..i + 3).is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)))
}

fn query_pairs(q: Option<&str>) -> Vec<(String, String)> {
    q.map(|q| form_urlencoded(q).unwrap_or_else(|| lenient_pairs(q))).unwrap_or_default()
}

/// A query string with a malformed escape keeps the escape as written (Go's Query() drops
/// only the bad pair; reads stay lenient).
fn lenient_pairs(s: &str) -> Vec<(String, String)> {
    s.split('&').filter(|p| !p.is_empty()).filter_map(|p| form_urlencoded(p).and_then(|mut v| v.pop())).collect()
}

/// Decodes `a=b&c=d` (percent-decoding, `+` as space). `None` when an escape is malformed.
fn form_urlencoded(s: &str) -> Option<Vec<(String, String)>> {
    fn dec(s: &str) -> Option<String> {
        let b = s.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'+' => out.push(b' '),
                b'%' => {
                    let v = b
                        .get(i + 1..i + 3)
                        .and_then(|h| std::str::from_utf8(h).ok())
                        .and_then(|h| u8::from_str_radix(h, 16).ok())?;
                    out.push(v);
                    i += 2;
                }
                c => out.push(c),
            }
            i += 1;
        }
        Some(String::from_utf8_lossy(&out).into_owned())
    }
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => Some((dec(k)?, dec(v)?)),
            None => Some((dec(p)?, String::new())),
        })
        .collect()
}

fn bool_param(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "" | "1" | "t" | "true" => Some(true),
        "0" | "f" | "false" => Some(false),
        _ => None,
    }
}

/// Why a request is refused before it reaches the core (answered with 400 and this message).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BadRequest {
    #[error("failed to decode form input: not UTF-8")]
    FormNotUtf8(#[source] std::str::Utf8Error),
    #[error("error parsing form data")]
    FormTooManyFields,
    #[error("error parsing form data: malformed percent-escape")]
    FormPercentEscape,
    #[error("failed to decode JSON input: expected a JSON object, got {0}")]
    NotAnObject(&'static str),
    #[error("failed to decode JSON input: {0}")]
    Json(#[source] serde_json::Error),
    #[error("refused JSON input due to high complexity: exceeded maximum number of strings")]
    JsonTooManyStrings,
    #[error("refused JSON input due to high complexity: exceeded maximum estimated memory limits")]
    JsonTooLarge,
    #[error("missing x-forwarded-for header and configured to reject when not present")]
    ForwardedForMissing,
    #[error("client address not authorized for x-forwarded-for and configured to reject connection")]
    ForwardedForNotAuthorized,
    #[error(
        "malformed x-forwarded-for configuration or request, hops to skip ({hop_skips}) would skip before earliest chain link (chain length {chain})"
    )]
    ForwardedForTooShort { hop_skips: usize, chain: usize },
    #[error("malformed x-forwarded-for request: {0:?} is not an IP address")]
    ForwardedForNotAnIp(String),
}

/// Whether `path` (below `/v1/`) is an ACME new-nonce path of a mount (`pki/acme/new-nonce`,
/// `pki/roles/r/acme/new-nonce`, …), the one ACME resource that answers HEAD.
fn is_acme_nonce_path(path: &str) -> bool {
    let path = path.strip_prefix("/v1/").unwrap_or(path);
    path.ends_with("/acme/new-nonce") && !path.starts_with("sys/")
}

/// Whether the body is an OCSP request (`Content-Type: application/ocsp-request`).
fn is_ocsp_request(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.trim().eq_ignore_ascii_case("application/ocsp-request"))
}

/// A snapshot to restore: the file itself as the body, not JSON.
fn is_snapshot_upload(api_path: &str, bytes: &[u8]) -> bool {
    matches!(
        api_path,
        "sys/storage/raft/snapshot"
            | "sys/storage/raft/snapshot-force"
            | "sys/storage/snapshot"
            | "sys/storage/snapshot-force"
    ) && !bytes.is_empty()
        && bytes.first() != Some(&b'{')
}

/// A body that reaches the backend raw (a snapshot, an OCSP request), not parsed as JSON.
fn raw_body_request(api_path: &str, headers: &HeaderMap, bytes: &[u8]) -> bool {
    is_snapshot_upload(api_path, bytes) || is_ocsp_request(headers)
}

/// Parses a request body into the data map, the way Vault does.
fn parse_body(headers: &HeaderMap, body: &[u8]) -> Result<Map<String, Value>, BadRequest> {
    let trimmed = body.iter().position(|b| !b.is_ascii_whitespace()).map(|i| &body[i..]).unwrap_or(&[]);
    if trimmed.is_empty() {
        return Ok(Map::new());
    }
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    if is_form && trimmed[0] != b'{' && trimmed[0] != b'[' {
        let text = std::str::from_utf8(trimmed).map_err(BadRequest::FormNotUtf8)?;
        if text.bytes().filter(|&b| b == b'&').count() >= MAX_FORM_FIELDS {
            return Err(BadRequest::FormTooManyFields);
        }
        let pairs = form_urlencoded(text).ok_or(BadRequest::FormPercentEscape)?;
        // A repeated key keeps every value, joined with commas, as OpenBao reads a form.
        let mut data = Map::new();
        for (k, v) in pairs {
            match data.get_mut(&k) {
                Some(Value::String(prev)) => {
                    prev.push(',');
                    prev.push_str(&v);
                }
                _ => {
                    data.insert(k, Value::String(v));
                }
            }
        }
        return Ok(data);
    }
    match serde_json::from_slice::<Value>(trimmed) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(Value::Null) => Ok(Map::new()),
        Ok(other) => {
            let kind = match other {
                Value::Array(_) => "an array",
                Value::String(_) => "a string",
                Value::Number(_) => "a number",
                _ => "a boolean",
            };
            Err(BadRequest::NotAnObject(kind))
        }
        Err(e) => Err(BadRequest::Json(e)),
    }
}

pub(crate) async fn handle(State(st): State<AppState>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    // Chunked applied more than once (`Transfer-Encoding: chunked, chunked`) is refused, as
    // hyper refuses the other codings: 400 (Go answers 501, a server error, for a client's).
    if parts.headers.contains_key(header::TRANSFER_ENCODING)
        && parts
            .headers
            .get_all(header::TRANSFER_ENCODING)
            .iter()
            .flat_map(|v| v.as_bytes().split(|&b| b == b','))
            .filter(|t| t.trim_ascii().eq_ignore_ascii_case(b"chunked"))
            .count()
            > 1
    {
        return plain_response(StatusCode::BAD_REQUEST, "400 Bad Request: unsupported transfer encoding");
    }
    // RFC 9112: an HTTP/1.1 request carries exactly one Host header. Refused as Go's server
    // refuses it, in plain text before any handler.
    if parts.version == axum::http::Version::HTTP_11 {
        match parts.headers.get_all(header::HOST).iter().count() {
            1 => {}
            0 => return plain_response(StatusCode::BAD_REQUEST, "400 Bad Request: missing required Host header"),
            _ => return plain_response(StatusCode::BAD_REQUEST, "400 Bad Request"),
        }
    }
    // RFC 9110: an expectation the server cannot meet is refused.
    if let Some(e) = parts.headers.get(header::EXPECT) {
        if !e.as_bytes().eq_ignore_ascii_case(b"100-continue") {
            // As Go's server: a bare 417.
            let mut r = Response::new(Body::empty());
            *r.status_mut() = StatusCode::EXPECTATION_FAILED;
            r.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
            return r;
        }
    }
    // `OPTIONS *` asks about the server itself: an empty 200, as Go's server answers it.
    if parts.method == Method::OPTIONS && parts.uri.path() == "*" {
        let mut r = Response::new(Body::empty());
        r.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
        return r;
    }
    let path = parts.uri.path().to_string();
    if st.ui {
        if let Some(r) = ui::serve(&parts.method, &path, parts.uri.query()) {
            return r;
        }
    }
    let Some(api_path) = path.strip_prefix("/v1/").or(if path == "/v1" { Some("") } else { None }) else {
        return error_response(StatusCode::NOT_FOUND, &[]);
    };
    // Like Go's ServeMux: a path with empty or dot segments is redirected to its clean form.
    if let Some(clean) = clean_path(&path) {
        let loc = match parts.uri.query() {
            Some(q) => format!("{clean}?{q}"),
            None => clean,
        };
        return redirect(&parts.method, &loc);
    }
    // `/v1` alone names no path: a bare 404, as OpenBao.
    if path == "/v1" {
        return error_response(StatusCode::NOT_FOUND, &[]);
    }
    if parts.method == Method::PATCH {
        let ct = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        if !ct.starts_with("application/merge-patch+json") {
            return error_response(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                &[format!("PATCH requires Content-Type application/merge-patch+json, got {ct:?}")],
            );
        }
    }
    // Like Go's net/http (URL.Path), the API sees the percent-decoded path.
    let encoded = api_path.contains('%');
    // A malformed escape is refused as Go's server refuses it (plain text); one that decodes
    // to bytes that are not UTF-8 with a Vault-style error.
    let Some(api_path) = percent_decode_path(api_path) else {
        if !escapes_well_formed(api_path) {
            return plain_response(StatusCode::BAD_REQUEST, "400 Bad Request");
        }
        return error_response(
            StatusCode::BAD_REQUEST,
            &["invalid path: a percent-escape does not decode to UTF-8".into()],
        );
    };
    // Only decoding can have made a clean path dirty (`%2e%2e`): dot segments are refused. Empty
    // segments from `%2F%2F` pass, as OpenBao lets them through (an OCSP GET's base64 request
    // may hold `//`).
    if encoded && api_path.split('/').any(|seg| seg == "." || seg == "..") {
        return error_response(StatusCode::BAD_REQUEST, &["invalid path: dot segments after decoding".into()]);
    }
    // Control characters in the decoded path: a bare 400, as OpenBao answers them.
    if api_path.chars().any(char::is_control) {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::BAD_REQUEST;
        return r;
    }
    // Namespaces are not built: only the root namespace exists, and a request for any other is
    // refused as OpenBao refuses a namespace it does not have, never served from the root.
    if let Some(ns) = parts.headers.get("x-vault-namespace") {
        let ns = ns.to_str().unwrap_or("\u{fffd}").trim().trim_matches('/');
        if !ns.is_empty() && ns != "root" {
            return error_response(StatusCode::NOT_FOUND, &["namespace not found".into()]);
        }
    }
    if let Some(v) = parts.headers.get("x-vault-index") {
        if !index_header_decodes(v.as_bytes()) {
            return error_response(StatusCode::BAD_REQUEST, &["failed to decode \"X-Vault-Index\"".into()]);
        }
    }
    let query = query_pairs(parts.uri.query());
    // `?help=<anything>` asks for the path's help, whatever the method.
    let help = query.iter().any(|(k, v)| k == "help" && !v.is_empty());

    // Legacy unauthenticated ceremonies, off by default as in OpenBao 2.x.
    if st.options.refuses_unauthed(&api_path) {
        if st.core.is_sealed() {
            return error_response(StatusCode::SERVICE_UNAVAILABLE, &["Vault is sealed".into()]);
        }
        return error_response(StatusCode::METHOD_NOT_ALLOWED, &["unsupported operation".into()]);
    }

    // Read the body within the size limit (and `http_read_timeout`).
    let bytes = match options::read_body(&parts.headers, body, st.max_request_size, st.options.read_timeout).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    if api_path == "sys/health" && !help {
        return health(&st, &parts.method, &query).await;
    }
    // Tokenless metrics are each node's own (Prometheus scrapes every node): served here, on a
    // standby too, never forwarded to an active node that would refuse them for lack of a token.
    if api_path == "sys/metrics" && st.unauthenticated_metrics && token_from(&parts.headers).is_none() {
        if st.core.is_sealed() && !st.core.is_standby() {
            return error_response(StatusCode::SERVICE_UNAVAILABLE, &["Vault is sealed".into()]);
        }
        let text = st.core.metrics_prometheus().await;
        let mut r = Response::new(Body::from(text));
        r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"));
        return r;
    }
    // A standby serves itself only the paths whose rows say so (seal status, leader, …); it
    // forwards the others to the active node, or redirects the client there when the client
    // asks for it (`X-Vault-No-Request-Forwarding`) or the active node takes no forwarded
    // requests.
    if st.core.is_standby() && !st.core.path_flags(&api_path).standby {
        if parts.extensions.get::<cluster::ArrivedForwarded>().is_some() {
            return cluster::not_active();
        }
        let no_forwarding = parts.headers.get("x-vault-no-request-forwarding").is_some_and(|v| !v.is_empty());
        let Some(cluster) = st.cluster.as_ref().filter(|_| !no_forwarding) else {
            return standby_redirect(&st, &parts.uri);
        };
        // The JSON limits are this listener's to apply, before the request leaves.
        if !bytes.is_empty() && !raw_body_request(&api_path, &parts.headers, &bytes) {
            if let Err(e) = st.options.check_json(&parts.headers, &bytes) {
                return error_response(StatusCode::BAD_REQUEST, &[e.to_string()]);
            }
        }
        let forwarding = cluster.forward(&parts, bytes.clone());
        let outcome = match st.options.max_request_duration {
            None => forwarding.await,
            Some(limit) => match tokio::time::timeout(limit, forwarding).await {
                Ok(o) => o,
                Err(_) => {
                    return error_response(
                        StatusCode::SERVICE_UNAVAILABLE,
                        &["request exceeded the listener's max_request_duration".into()],
                    )
                }
            },
        };
        match outcome {
            cluster::Outcome::Answer(r) => return r,
            cluster::Outcome::Redirect => return standby_redirect(&st, &parts.uri),
            cluster::Outcome::ServeHere => {}
        }
    }
    // Rate-limit quotas, before anything else is done for the request (OpenBao's order).
    let client_ip = parts.extensions.get::<PeerAddr>().map(|p| p.0.ip());
    let quota = st.core.check_rate_quota(&api_path, client_ip);
    if let Some(q) = quota.as_ref().filter(|q| !q.verdict.allowed) {
        if q.audit {
            let op = match parts.method.as_str() {
                "GET" | "HEAD" => Operation::Read,
                "LIST" => Operation::List,
                "DELETE" => Operation::Delete,
                _ => Operation::Update,
            };
            st.core.audit_rate_refusal(op, &api_path, client_ip).await;
        }
        let mut r = error_response(
            StatusCode::TOO_MANY_REQUESTS,
            &[format!("request path {api_path:?}: rate limit quota exceeded")],
        );
        add_quota_headers(&mut r, q);
        // Held until the client's budget refills (at most a second): a client that retries at
        // once costs the server a sleeping task, not a stream of refusals (docs/quotas.md).
        tokio::time::sleep(q.tarpit()).await;
        return r;
    }

    let list_param = query.iter().find(|(k, _)| k == "list").and_then(|(_, v)| bool_param(v)).unwrap_or(false);
    let operation = match parts.method.as_str() {
        _ if help => Operation::Help,
        "GET" if list_param => Operation::List,
        "GET" => Operation::Read,
        "LIST" => Operation::List,
        "POST" | "PUT" => Operation::Update,
        "DELETE" => Operation::Delete,
        "PATCH" => Operation::Patch,
        // OpenBao hands OPTIONS to its core, which refuses it as internal (a CORS preflight is
        // answered before this point when CORS is enabled).
        // The two handlers OpenBao serves outside its router refuse it with a bare 405.
        "OPTIONS" if matches!(api_path.as_str(), "sys/seal-status" | "sys/leader") => {
            return error_response(StatusCode::METHOD_NOT_ALLOWED, &[])
        }
        "OPTIONS" => {
            return error_response(StatusCode::BAD_REQUEST, &["cannot handle internal-only request operation".into()])
        }
        // OpenBao hands HEAD to its router, where no handler takes it: 405 on a path something
        // serves, 404 on one nothing does. Other methods are a bare 405.
        // The wrapping paths check their wrapping token before the method: HEAD goes in as a
        // read (which changes nothing there) and whatever it would serve is a 405.
        "HEAD"
            if matches!(api_path.as_str(), "sys/wrapping/lookup" | "sys/wrapping/unwrap" | "sys/wrapping/rewrap") =>
        {
            Operation::Read
        }
        // ACME's new-nonce answers HEAD (RFC 8555 section 7.2): served as a read, sent without
        // its body and with 200 where the read answers 204.
        "HEAD" if is_acme_nonce_path(&api_path) => Operation::Read,
        "HEAD" if !st.core.serves_path(&api_path) => {
            return error_response(StatusCode::NOT_FOUND, &[format!("unsupported path: {api_path}")])
        }
        _ => return error_response(StatusCode::METHOD_NOT_ALLOWED, &[]),
    };

    let mut data = match operation {
        Operation::Read | Operation::List | Operation::Delete => Map::new(),
        // An OCSP request (RFC 6960, appendix A) is DER, not JSON: it reaches the backend as
        // Vault's raw-body key, base64, for the PKI engine's `ocsp` path to decode.
        // A snapshot to restore is the file itself, not JSON (`bao operator raft snapshot restore`).
        _ if is_snapshot_upload(&api_path, &bytes) => {
            use base64::Engine as _;
            let mut d = Map::new();
            d.insert("http_raw_body".into(), Value::String(base64::engine::general_purpose::STANDARD.encode(&bytes)));
            d
        }
        _ if is_ocsp_request(&parts.headers) => {
            use base64::Engine as _;
            let mut d = Map::new();
            d.insert("http_raw_body".into(), Value::String(base64::engine::general_purpose::STANDARD.encode(&bytes)));
            d
        }
        _ => match st.options.check_json(&parts.headers, &bytes).and_then(|()| parse_body(&parts.headers, &bytes)) {
            Ok(d) => d,
            Err(e) => return error_response(StatusCode::BAD_REQUEST, &[e.to_string()]),
        },
    };
    if matches!(operation, Operation::Read | Operation::List | Operation::Delete) {
        for (k, v) in query {
            if k != "list" {
                data.insert(k, Value::String(v));
            }
        }
    }
    let mut core_path = api_path;
    if operation == Operation::List && !core_path.is_empty() && !core_path.ends_with('/') {
        core_path.push('/');
    }
    let remote_addr = parts.extensions.get::<PeerAddr>().map(|p| p.0.ip());
    let wrap_ttl = match parts.headers.get("x-vault-wrap-ttl").and_then(|v| v.to_str().ok()) {
        None => None,
        Some(v) => match coffer_sdk::field::parse_duration_str(v) {
            Some(n) if n > 0 => Some(n),
            _ => return error_response(StatusCode::BAD_REQUEST, &[format!("invalid wrap TTL {v:?}")]),
        },
    };
    let _in_flight = st.core.in_flight().begin(coffer_core::sys_runtime::InFlightInfo {
        started: std::time::SystemTime::now(),
        client_remote_address: parts.extensions.get::<PeerAddr>().map(|p| p.0),
        request_path: path.clone(),
        request_method: parts.method.as_str().to_string(),
    });
    let client_certs = parts.extensions.get::<ClientCertificate>().map(|c| c.chain.clone());
    let creq = CoreRequest {
        operation,
        path: core_path,
        data,
        token: token_from(&parts.headers),
        remote_addr,
        wrap_ttl,
        basic_auth: basic_from(&parts.headers),
        client_certs,
    };
    let result = match st.options.max_request_duration {
        None => st.core.handle(creq).await,
        Some(limit) => {
            // Polled here; if time runs out the rest runs as its own task, so a request cut
            // off half-way never leaves a change half made.
            let core = st.core.clone();
            let mut fut = Box::pin(async move { core.handle(creq).await });
            match tokio::time::timeout(limit, &mut fut).await {
                Ok(r) => r,
                Err(_) => {
                    tokio::spawn(fut);
                    return error_response(
                        StatusCode::SERVICE_UNAVAILABLE,
                        &["request exceeded the listener's max_request_duration".into()],
                    );
                }
            }
        }
    };
    let mut out = match result {
        Ok(resp) if parts.method == Method::HEAD && is_acme_nonce_path(&path) => {
            let mut r = render(resp);
            if r.status() == StatusCode::NO_CONTENT {
                *r.status_mut() = StatusCode::OK;
            }
            r.headers_mut().remove(header::CONTENT_TYPE);
            *r.body_mut() = Body::empty();
            r
        }
        Ok(_) if parts.method == Method::HEAD => error_response(StatusCode::METHOD_NOT_ALLOWED, &[]),
        Ok(resp) => render(resp),
        Err(e) => {
            if e.kind == ErrorKind::Internal {
                match cause_chain(&e) {
                    Some(cause) => {
                        tracing::warn!(path = %path, cause = %cause, "request failed with an internal error")
                    }
                    None => tracing::warn!(path = %path, "request failed with an internal error"),
                }
            }
            logical_error(&e)
        }
    };
    if let Some(q) = &quota {
        add_quota_headers(&mut out, q);
    }
    out
}

/// `X-Ratelimit-*` (and `Retry-After` on a refusal), when `sys/quotas/config` asks for them.
fn add_quota_headers(r: &mut Response, q: &coffer_core::quotas::RateCheck) {
    for (name, value) in q.header_pairs() {
        if let Ok(v) = HeaderValue::from_str(&value) {
            r.headers_mut().insert(name, v);
        }
    }
}

/// The lines of a log stream as a chunked body, until the server or the client ends it.
struct LinesBody(tokio::sync::mpsc::Receiver<String>);

impl hyper::body::Body for LinesBody {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<bytes::Bytes>, Self::Error>>> {
        self.0.poll_recv(cx).map(|line| line.map(|l| Ok(hyper::body::Frame::data(bytes::Bytes::from(l)))))
    }
}

fn render(resp: CoreResponse) -> Response {
    if let Some(rx) = resp.stream.as_ref().and_then(|s| s.take()) {
        let mut r = Response::new(Body::new(LinesBody(rx)));
        r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return r;
    }
    if let Some((ct, body)) = resp.raw_body {
        let mut r = Response::new(Body::from(body));
        *r.status_mut() = match (resp.raw_status_code.and_then(|c| StatusCode::from_u16(c).ok()), resp.status) {
            (Some(code), _) => code,
            (None, coffer_sdk::ResponseStatus::Ok) => StatusCode::OK,
            (None, coffer_sdk::ResponseStatus::Accepted) => StatusCode::ACCEPTED,
            (None, coffer_sdk::ResponseStatus::Error(kind)) => status_for(kind),
        };
        set_common_headers(r.headers_mut());
        match HeaderValue::from_str(&ct) {
            Ok(v) if !ct.is_empty() => {
                r.headers_mut().insert(header::CONTENT_TYPE, v);
            }
            _ => {
                r.headers_mut().remove(header::CONTENT_TYPE);
            }
        }
        for (name, value) in resp.raw_headers.iter().flat_map(|h| h.iter()) {
            if let (Ok(n), Ok(v)) = (header::HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value)) {
                r.headers_mut().append(n, v);
            }
        }
        return r;
    }
    match resp.shape {
        BodyShape::Raw => match resp.data {
            Some(d) => json_response(
                match resp.status {
                    coffer_sdk::ResponseStatus::Error(kind) => status_for(kind),
                    coffer_sdk::ResponseStatus::Accepted => StatusCode::ACCEPTED,
                    coffer_sdk::ResponseStatus::Ok => StatusCode::OK,
                },
                &Value::Object(d),
            ),
            None => no_content(),
        },
        shape => {
            if resp.data.is_none()
                && resp.auth.is_none()
                && resp.warnings.is_empty()
                && resp.wrap_info.is_none()
                && resp.lease_id.is_empty()
            {
                return no_content();
            }
            let status = match resp.status {
                coffer_sdk::ResponseStatus::Ok => StatusCode::OK,
                coffer_sdk::ResponseStatus::Accepted => StatusCode::ACCEPTED,
                coffer_sdk::ResponseStatus::Error(kind) => status_for(kind),
            };
            let request_id = uuid::Uuid::new_v4().to_string();
            if shape == BodyShape::Envelope {
                // Serialised straight from the response's own values: no intermediate map.
                return json_response(
                    status,
                    &coffer_api::Envelope {
                        request_id,
                        lease_id: resp.lease_id,
                        renewable: resp.renewable,
                        lease_duration: resp.lease_duration,
                        data: resp.data,
                        wrap_info: resp.wrap_info,
                        warnings: if resp.warnings.is_empty() { None } else { Some(resp.warnings) },
                        auth: resp.auth,
                    },
                );
            }
            let mut body = Map::new();
            if let Some(d) = &resp.data {
                for (k, v) in d {
                    body.insert(k.clone(), v.clone());
                }
            }
            body.insert("request_id".into(), request_id.into());
            body.insert("lease_id".into(), resp.lease_id.into());
            body.insert("renewable".into(), resp.renewable.into());
            body.insert("lease_duration".into(), resp.lease_duration.into());
            body.insert("data".into(), resp.data.map(Value::Object).unwrap_or(Value::Null));
            body.insert(
                "wrap_info".into(),
                resp.wrap_info.map(|w| serde_json::to_value(w).unwrap_or(Value::Null)).unwrap_or(Value::Null),
            );
            body.insert(
                "warnings".into(),
                if resp.warnings.is_empty() { Value::Null } else { Value::from(resp.warnings) },
            );
            body.insert(
                "auth".into(),
                resp.auth.map(|a| serde_json::to_value(a).unwrap_or(Value::Null)).unwrap_or(Value::Null),
            );
            json_response(status, &Value::Object(body))
        }
    }
}

/// On an HA standby: 307 to the same path on the active node (`bao` follows it), or 503 when no
/// active node is known.
fn standby_redirect(st: &AppState, uri: &axum::http::Uri) -> Response {
    let Some(leader) = st.core.leader_api_addr() else {
        return error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &["local node not active but active cluster node not found".into()],
        );
    };
    let loc = format!("{}{}", leader.trim_end_matches('/'), uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"));
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::TEMPORARY_REDIRECT;
    if let Ok(v) = HeaderValue::from_str(&loc) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    set_common_headers(r.headers_mut());
    r
}

/// `sys/health`: the status code tells the state; query parameters may override each code.
async fn health(st: &AppState, method: &Method, query: &[(String, String)]) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return error_response(StatusCode::METHOD_NOT_ALLOWED, &[]);
    }
    let param = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let code = |name: &str, default: u16| -> Result<u16, ()> {
        match param(name) {
            None => Ok(default),
            // A 1xx code cannot end a response: refused like any other code that is not one.
            Some(v) => v.parse::<u16>().ok().filter(|c| (200..=599).contains(c)).ok_or(()),
        }
    };
    let h = st.core.health().await;
    let standbyok = match param("standbyok").map(bool_param) {
        None => false,
        Some(Some(b)) => b,
        // As OpenBao: a bare 400.
        Some(None) => return error_response(StatusCode::BAD_REQUEST, &[]),
    };
    let chosen = if !h.initialized {
        code("uninitcode", 501)
    } else if h.sealed {
        code("sealedcode", 503)
    } else if h.standby && !standbyok {
        code("standbycode", 429)
    } else {
        code("activecode", 200)
    };
    let Ok(status) = chosen.map(|c| StatusCode::from_u16(c).unwrap_or(StatusCode::OK)) else {
        // As OpenBao: a bare 400.
        return error_response(StatusCode::BAD_REQUEST, &[]);
    };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let mode = if h.sealed || !h.initialized { "unknown" } else { "disabled" };
    let mut body = json!({
        "initialized": h.initialized,
        "sealed": h.sealed,
        "standby": h.sealed || h.standby,
        "replication_performance_mode": mode,
        "replication_dr_mode": mode,
        "server_time_utc": now,
        "version": coffer_core::version_string(),
    });
    if let Some(e) = h.seal_error {
        body["seal_error"] = e.into();
    }
    if let Some(c) = h.cluster {
        body["cluster_name"] = c.name.into();
        body["cluster_id"] = c.id.into();
    }
    if method == Method::HEAD || status == StatusCode::NO_CONTENT {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = status;
        set_common_headers(r.headers_mut());
        return r;
    }
    json_response(status, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn internal_errors_log_their_kept_causes_but_answer_only_the_message() {
        let disk = std::io::Error::other("disk full");
        let e = LogicalError::internal("internal error")
            .with_source(coffer_physical_free_cause::Wrapped { what: "commit failed", source: disk });
        assert_eq!(cause_chain(&e).as_deref(), Some("commit failed: disk full"));
        assert_eq!(cause_chain(&LogicalError::internal("x")), None);
        let r = logical_error(&e);
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(r.into_body(), usize::MAX).await.expect("a body");
        let body: Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(body, json!({"errors": ["internal error"]}), "the client sees the message, not the cause");
    }

    /// A two-level cause, as a storage error wrapping an I/O error is.
    mod coffer_physical_free_cause {
        #[derive(Debug)]
        pub struct Wrapped {
            pub what: &'static str,
            pub source: std::io::Error,
        }
        impl std::fmt::Display for Wrapped {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.what)
            }
        }
        impl std::error::Error for Wrapped {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.source)
            }
        }
    }

    #[test]
    fn bodies_parse_like_vault() {
        let h = HeaderMap::new();
        assert!(parse_body(&h, b"").unwrap().is_empty());
        assert!(parse_body(&h, b"null").unwrap().is_empty());
        assert_eq!(parse_body(&h, b" {\"a\":1}").unwrap()["a"], json!(1));
        assert!(parse_body(&h, b"[1,2]").unwrap_err().to_string().contains("expected a JSON object"));
        assert!(parse_body(&h, b"{\"a\":").unwrap_err().to_string().starts_with("failed to decode JSON input"));
        let mut form = HeaderMap::new();
        form.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-www-form-urlencoded"));
        assert_eq!(parse_body(&form, b"a=b%20c&d=").unwrap()["a"], json!("b c"));
    }

    #[test]
    fn paths_are_cleaned_like_go() {
        assert_eq!(clean_path("/v1/secret/foo"), None);
        assert_eq!(clean_path("/v1/secret/"), None);
        assert_eq!(clean_path("/v1/secret//foo").as_deref(), Some("/v1/secret/foo"));
        assert_eq!(clean_path("/v1/./secret/x/../foo/").as_deref(), Some("/v1/secret/foo/"));
    }

    #[test]
    fn paths_are_percent_decoded_and_bad_escapes_refused() {
        assert_eq!(percent_decode_path("secret/data/a%20b").as_deref(), Some("secret/data/a b"));
        assert_eq!(percent_decode_path("kv/%3Cimg%3E%2Fx+y").as_deref(), Some("kv/<img>/x+y"));
        assert_eq!(percent_decode_path("kv/%zz"), None);
        assert_eq!(percent_decode_path("kv/%4"), None);
        assert_eq!(percent_decode_path("kv/%FF%FE"), None, "not UTF-8");
        assert_eq!(percent_decode_path("kv/%C3%A9").as_deref(), Some("kv/é"));
        assert!(escapes_well_formed("kv/%C3%A9%ff") && !escapes_well_formed("kv/%zz") && !escapes_well_formed("kv/%4"));
    }

    #[test]
    fn forms_join_repeated_keys_and_refuse_bad_escapes() {
        let mut form = HeaderMap::new();
        form.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-www-form-urlencoded"));
        assert_eq!(parse_body(&form, b"a=1&a=2").unwrap()["a"], json!("1,2"));
        assert!(parse_body(&form, b"a=%ZZ").unwrap_err().to_string().contains("error parsing form data"));
    }

    #[test]
    fn forms_of_more_than_10000_fields_are_refused_as_go_refuses_them() {
        let mut form = HeaderMap::new();
        form.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-www-form-urlencoded"));
        let body = |n: usize| (0..n).map(|i| format!("k{i}=v")).collect::<Vec<_>>().join("&");
        assert_eq!(parse_body(&form, body(10_000).as_bytes()).unwrap().len(), 10_000);
        assert_eq!(parse_body(&form, body(10_001).as_bytes()).unwrap_err().to_string(), "error parsing form data");
    }

    #[test]
    fn index_headers_must_decode_as_openbao_states() {
        use base64::Engine;
        let enc = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        assert!(index_header_decodes(enc("v1:cluster:12:34:hmac").as_bytes()));
        assert!(!index_header_decodes(b"junk"), "base64, but not a state");
        assert!(!index_header_decodes(b"%%%"));
        assert!(!index_header_decodes(enc("v1:cluster:x:34:hmac").as_bytes()));
        assert!(!index_header_decodes(enc("v2:cluster:1:2:hmac").as_bytes()));
    }

    #[test]
    fn redirects_carry_no_store_and_html_only_for_get_and_head() {
        let r = redirect(&Method::GET, "/ui/");
        assert_eq!(r.status(), StatusCode::TEMPORARY_REDIRECT);
        assert_eq!(r.headers()[header::LOCATION], "/ui/");
        assert_eq!(r.headers()[header::CACHE_CONTROL], "no-store");
        assert_eq!(r.headers()[header::CONTENT_TYPE], "text/html; charset=utf-8");
        assert_eq!(redirect(&Method::HEAD, "/x").headers()[header::CONTENT_TYPE], "text/html; charset=utf-8");
        let put = redirect(&Method::PUT, "/x");
        assert_eq!(put.headers()[header::CACHE_CONTROL], "no-store");
        assert!(!put.headers().contains_key(header::CONTENT_TYPE));
    }

    #[test]
    fn tokens_come_from_either_header() {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer abc"));
        assert_eq!(token_from(&h).as_deref(), Some("abc"));
        h.insert("x-vault-token", HeaderValue::from_static("xyz"));
        assert_eq!(token_from(&h).as_deref(), Some("xyz"));
    }
}
