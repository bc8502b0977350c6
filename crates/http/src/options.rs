//! A listener's per-request options: the client address from `X-Forwarded-For`, CORS,
//! custom response headers, the body read (size limit, read timeout, JSON complexity limits)
//! and the legacy unauthenticated ceremonies.

use crate::{error_response, AppState, BadRequest, PeerAddr};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::Response;
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// `x_forwarded_for_*`: the client address comes from the header when the peer is trusted.
#[derive(Debug, Clone)]
pub struct ForwardedFor {
    /// (network, prefix length) pairs.
    pub authorized: Vec<(IpAddr, u8)>,
    pub hop_skips: usize,
    pub reject_not_authorized: bool,
    pub reject_not_present: bool,
}

fn in_cidr(net: IpAddr, prefix: u8, ip: IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    };
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(a)) => {
            let m = if prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(prefix.min(32))) };
            u32::from(n) & m == u32::from(a) & m
        }
        (IpAddr::V6(n), IpAddr::V6(a)) => {
            let m = if prefix == 0 { 0 } else { u128::MAX << (128 - u32::from(prefix.min(128))) };
            u128::from(n) & m == u128::from(a) & m
        }
        _ => false,
    }
}

impl ForwardedFor {
    /// The client address for a request from `peer`, or the 400 answer OpenBao gives.
    fn client(&self, peer: SocketAddr, headers: &HeaderMap) -> Result<SocketAddr, BadRequest> {
        let values: Vec<&str> = headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()).collect();
        if values.is_empty() {
            if self.reject_not_present {
                return Err(BadRequest::ForwardedForMissing);
            }
            return Ok(peer);
        }
        if !self.authorized.iter().any(|(n, p)| in_cidr(*n, *p, peer.ip())) {
            if self.reject_not_authorized {
                return Err(BadRequest::ForwardedForNotAuthorized);
            }
            return Ok(peer);
        }
        // Several headers read as one list, in order; the rightmost entry is the nearest hop.
        let chain: Vec<&str> = values.iter().flat_map(|v| v.split(',')).map(str::trim).collect();
        if self.hop_skips >= chain.len() {
            return Err(BadRequest::ForwardedForTooShort { hop_skips: self.hop_skips, chain: chain.len() });
        }
        let entry = chain[chain.len() - 1 - self.hop_skips];
        // An address, or an address with a port (`1.2.3.4:5`, `[::1]:5`).
        let ip = entry
            .parse::<IpAddr>()
            .ok()
            .or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
            .ok_or_else(|| BadRequest::ForwardedForNotAnIp(entry.to_string()))?;
        Ok(SocketAddr::new(ip, peer.port()))
    }
}

/// `custom_response_headers`: per header name, the most specific entry wins (an exact status,
/// then its class `4xx`, then `default`).
#[derive(Debug, Clone, Default)]
pub struct CustomHeaders {
    pub default: Vec<(HeaderName, HeaderValue)>,
    /// Index 1 to 5: `1xx` … `5xx`.
    pub class: [Vec<(HeaderName, HeaderValue)>; 6],
    pub exact: Vec<(u16, Vec<(HeaderName, HeaderValue)>)>,
}

impl CustomHeaders {
    /// OpenBao's default: `Strict-Transport-Security` on every answer, unless the operator
    /// configured that header under `default`.
    pub fn with_openbao_defaults(mut self) -> Self {
        if !self.default.iter().any(|(n, _)| n == header::STRICT_TRANSPORT_SECURITY) {
            self.default.insert(
                0,
                (header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000; includeSubDomains")),
            );
        }
        self
    }

    fn apply(&self, r: &mut Response) {
        let code = r.status().as_u16();
        let h = r.headers_mut();
        for (n, v) in &self.default {
            h.insert(n.clone(), v.clone());
        }
        if let Some(c) = self.class.get(usize::from(code / 100)) {
            for (n, v) in c {
                h.insert(n.clone(), v.clone());
            }
        }
        if let Some((_, e)) = self.exact.iter().find(|(c, _)| *c == code) {
            for (n, v) in e {
                h.insert(n.clone(), v.clone());
            }
        }
    }
}

/// Default `max_request_json_strings`, as OpenBao: object keys plus string values.
pub const DEFAULT_MAX_JSON_STRINGS: usize = 1000;
/// Default `max_request_json_memory`, as OpenBao (32.5 MiB of estimated parsed size).
pub const DEFAULT_MAX_JSON_MEMORY: usize = 34_078_720;

/// A listener's options that act on each request.
#[derive(Debug, Clone, Default)]
pub struct RequestOptions {
    pub forwarded_for: Option<ForwardedFor>,
    /// `max_request_duration`: past it the client gets 503 (the request still completes).
    pub max_request_duration: Option<Duration>,
    /// `http_read_timeout`, applied to reading the body.
    pub read_timeout: Option<Duration>,
    pub disable_unauthed_generate_root: bool,
    pub disable_unauthed_rekey: bool,
    pub max_json_memory: Option<usize>,
    pub max_json_strings: Option<usize>,
    pub headers: CustomHeaders,
}

impl RequestOptions {
    /// Defaults as OpenBao 2.x: the legacy unauthenticated ceremonies off, HSTS sent, the
    /// JSON complexity limits on.
    pub fn openbao_defaults() -> RequestOptions {
        RequestOptions {
            disable_unauthed_generate_root: true,
            disable_unauthed_rekey: true,
            max_json_memory: Some(DEFAULT_MAX_JSON_MEMORY),
            max_json_strings: Some(DEFAULT_MAX_JSON_STRINGS),
            headers: CustomHeaders::default().with_openbao_defaults(),
            ..Default::default()
        }
    }

    /// The legacy unauthenticated `sys/generate-root/*`, `sys/rekey/*` and
    /// `sys/rekey-recovery-key/*` are switched off for this path.
    pub(crate) fn refuses_unauthed(&self, api_path: &str) -> bool {
        (self.disable_unauthed_generate_root && api_path.starts_with("sys/generate-root/"))
            || (self.disable_unauthed_rekey
                && (api_path.starts_with("sys/rekey/") || api_path.starts_with("sys/rekey-recovery-key/"))
                // The backups are authenticated paths: they stay served, as in OpenBao.
                && !matches!(api_path, "sys/rekey/backup" | "sys/rekey/recovery-key-backup"))
    }

    /// `max_request_json_strings` / `max_request_json_memory`, checked by one pass over the raw
    /// JSON before it is parsed, so a small body cannot expand into a large structure.
    pub(crate) fn check_json(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), BadRequest> {
        if self.max_json_memory.is_none() && self.max_json_strings.is_none() {
            return Ok(());
        }
        let is_form = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
        let first = body.iter().find(|b| !b.is_ascii_whitespace());
        if is_form && !matches!(first, Some(b'{') | Some(b'[')) {
            return Ok(());
        }
        let (strings, memory) = json_complexity(body);
        if self.max_json_strings.is_some_and(|m| strings > m) {
            return Err(BadRequest::JsonTooManyStrings);
        }
        if self.max_json_memory.is_some_and(|m| memory > m) {
            return Err(BadRequest::JsonTooLarge);
        }
        Ok(())
    }
}

/// (string tokens, estimated bytes once parsed) of a JSON text, costed as a Go decoder's
/// values are (which is what OpenBao's limit measures): a string 16 bytes plus its length, a
/// number 24, `true`/`false`/`null` 17, an array 40, an object 64 (its keys count as strings).
fn json_complexity(b: &[u8]) -> (usize, usize) {
    const STRING: usize = 16;
    const NUMBER: usize = 24;
    const LITERAL: usize = 17;
    const ARRAY: usize = 40;
    const OBJECT: usize = 64;
    let (mut strings, mut memory) = (0usize, 0usize);
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                let start = i;
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                strings += 1;
                memory += STRING + (i.min(b.len()) - start).saturating_sub(1);
            }
            b'{' => memory += OBJECT,
            b'[' => memory += ARRAY,
            b't' | b'f' | b'n' => {
                memory += LITERAL;
                while i + 1 < b.len() && b[i + 1].is_ascii_alphabetic() {
                    i += 1;
                }
            }
            b'-' | b'0'..=b'9' => {
                memory += NUMBER;
                while i + 1 < b.len() && matches!(b[i + 1], b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-') {
                    i += 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    (strings, memory)
}

/// Reads the request body within `limit`. Past the limit the rest of the body is read and
/// dropped (up to a bound) before the 413 goes out: closing a connection the client is still
/// writing to resets it, and the client would never see the answer (TLS made this visible).
pub(crate) async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    read_timeout: Option<Duration>,
) -> Result<Bytes, Response> {
    let too_large = || {
        let mut r = error_response(StatusCode::PAYLOAD_TOO_LARGE, &["http: request body too large".into()]);
        r.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        r
    };
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok());
    let expects_continue = headers
        .get(header::EXPECT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
    // The client waits for "100 Continue" before sending: answer now and it sends nothing.
    if expects_continue && declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let read = async {
        let mut body = body;
        let mut first: Option<Bytes> = None;
        let mut more: Option<BytesMut> = None;
        let mut len = 0usize;
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else { return Err(false) };
            let Ok(data) = frame.into_data() else { continue };
            len = len.saturating_add(data.len());
            if len > limit {
                drain(body, limit).await;
                return Err(true);
            }
            if let Some(m) = more.as_mut() {
                m.extend_from_slice(&data);
            } else if let Some(f) = first.take() {
                let mut m = BytesMut::with_capacity(f.len() + data.len());
                m.extend_from_slice(&f);
                m.extend_from_slice(&data);
                more = Some(m);
            } else {
                first = Some(data);
            }
        }
        Ok(match more {
            Some(m) => m.freeze(),
            None => first.unwrap_or_default(),
        })
    };
    let result = match read_timeout {
        Some(t) => match tokio::time::timeout(t, read).await {
            Ok(r) => r,
            Err(_) => {
                let mut r = error_response(StatusCode::REQUEST_TIMEOUT, &["timed out reading the request body".into()]);
                r.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
                return Err(r);
            }
        },
        None => read.await,
    };
    match result {
        Ok(b) => Ok(b),
        Err(true) => Err(too_large()),
        Err(false) => Err(error_response(StatusCode::BAD_REQUEST, &["failed to read request body".into()])),
    }
}

/// Reads and drops what is left of a body: at most 64 MiB beyond the limit, for at most 10 s.
async fn drain(mut body: Body, limit: usize) {
    let budget = limit.saturating_add(64 * 1024 * 1024);
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        let mut seen = 0usize;
        while let Some(Ok(frame)) = body.frame().await {
            if let Ok(d) = frame.into_data() {
                seen = seen.saturating_add(d.len());
                if seen > budget {
                    break;
                }
            }
        }
    })
    .await;
}

/// Methods a CORS preflight may ask for (OpenBao's list, with PATCH, which Coffer serves, in
/// place of SCAN, which it does not).
const CORS_METHODS: &str = "DELETE,GET,OPTIONS,POST,PUT,LIST,PATCH";

/// Every request of a listener passes here: the client address, CORS, then the handler, then
/// the custom headers on whatever answer comes back.
pub(crate) async fn handle_outer(State(st): State<AppState>, mut req: Request) -> Response {
    let mut resp = outer(&st, &mut req).await;
    st.options.headers.apply(&mut resp);
    resp
}

async fn outer(st: &AppState, req: &mut Request) -> Response {
    if let Some(xff) = &st.options.forwarded_for {
        if let Some(peer) = req.extensions().get::<PeerAddr>().map(|p| p.0) {
            match xff.client(peer, req.headers()) {
                Ok(client) => {
                    req.extensions_mut().insert(PeerAddr(client));
                }
                Err(e) => return error_response(StatusCode::BAD_REQUEST, &[e.to_string()]),
            }
        }
    }
    // CORS applies only to requests that carry an Origin (browsers); the CLI never pays for it.
    let origin = req.headers().get(header::ORIGIN).cloned();
    let cors = match &origin {
        Some(_) => st.core.cors_config(),
        None => None,
    };
    let (Some(origin), Some(cors)) = (origin, cors) else {
        return crate::handle(State(st.clone()), take(req)).await;
    };
    // Browsers send Origin on same-origin writes too (the web UI at /ui/): those are not
    // cross-origin and pass as if CORS were off.
    let host = req.headers().get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    let same_origin = origin
        .to_str()
        .ok()
        .and_then(|o| o.strip_prefix("http://").or_else(|| o.strip_prefix("https://")))
        .is_some_and(|o| !host.is_empty() && o.eq_ignore_ascii_case(host));
    if same_origin {
        return crate::handle(State(st.clone()), take(req)).await;
    }
    if !origin.to_str().is_ok_and(|o| cors.allows_origin(o)) {
        return error_response(StatusCode::FORBIDDEN, &["origin not allowed".into()]);
    }
    let cors_headers = |r: &mut Response| {
        let h = r.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
        if cors.allow_credentials {
            h.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
        }
    };
    if req.method() == Method::OPTIONS {
        let wanted =
            req.headers().get(header::ACCESS_CONTROL_REQUEST_METHOD).and_then(|v| v.to_str().ok()).unwrap_or("");
        if !CORS_METHODS.split(',').any(|m| m == wanted) {
            let mut r = Response::new(Body::empty());
            *r.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
            r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            return r;
        }
        let mut r = Response::new(Body::empty());
        r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        cors_headers(&mut r);
        let h = r.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(CORS_METHODS));
        if let Ok(v) = HeaderValue::from_str(&cors.allowed_headers.join(",")) {
            h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, v);
        }
        h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("300"));
        return r;
    }
    let mut r = crate::handle(State(st.clone()), take(req)).await;
    cors_headers(&mut r);
    r
}

fn take(req: &mut Request) -> Request {
    std::mem::replace(req, Request::new(Body::empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xff(auth: &str, hops: usize, na: bool, np: bool) -> ForwardedFor {
        let (a, p) = auth.split_once('/').unwrap();
        ForwardedFor {
            authorized: vec![(a.parse().unwrap(), p.parse().unwrap())],
            hop_skips: hops,
            reject_not_authorized: na,
            reject_not_present: np,
        }
    }

    fn hdrs(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn forwarded_for_picks_the_hop_like_openbao() {
        let peer: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let x = xff("127.0.0.0/8", 0, true, true);
        assert_eq!(x.client(peer, &hdrs(&["1.2.3.4, 5.6.7.8"])).unwrap().to_string(), "5.6.7.8:4000");
        let x1 = xff("127.0.0.1/32", 1, true, true);
        assert_eq!(x1.client(peer, &hdrs(&["1.2.3.4, 5.6.7.8"])).unwrap().ip().to_string(), "1.2.3.4");
        // Several headers are one list.
        assert_eq!(x1.client(peer, &hdrs(&["1.2.3.4", "9.9.9.9, 8.8.8.8"])).unwrap().ip().to_string(), "9.9.9.9");
        assert!(x1.client(peer, &hdrs(&["1.2.3.4"])).unwrap_err().to_string().contains("hops to skip (1)"));
        assert!(x.client(peer, &hdrs(&[])).unwrap_err().to_string().starts_with("missing x-forwarded-for"));
        let outside = xff("10.0.0.0/8", 0, true, false);
        assert!(outside
            .client(peer, &hdrs(&["1.2.3.4"]))
            .unwrap_err()
            .to_string()
            .starts_with("client address not authorized"));
        assert_eq!(outside.client(peer, &hdrs(&[])).unwrap(), peer);
        let lenient = xff("10.0.0.0/8", 0, false, false);
        assert_eq!(lenient.client(peer, &hdrs(&["1.2.3.4"])).unwrap(), peer);
        assert!(x.client(peer, &hdrs(&["notanip"])).unwrap_err().to_string().contains("not an IP address"));
        assert_eq!(x.client(peer, &hdrs(&["[::1]:80"])).unwrap().ip().to_string(), "::1");
    }

    #[test]
    fn json_complexity_counts_strings_and_estimates_memory() {
        assert_eq!(json_complexity(br#"{"data":{"a":"b"}}"#).0, 3);
        assert_eq!(json_complexity(br#"{"data":{"a":1,"c":2}}"#).0, 3);
        assert_eq!(json_complexity(br#"{"a":"b\"c"}"#).0, 2);
        let (_, small) = json_complexity(br#"{"a":"b"}"#);
        assert_eq!(small, 64 + 17 + 17);
        let (_, big) = json_complexity(br#"{"a":[1,22,-3.5e+2,4]}"#);
        assert_eq!(big, 64 + 17 + 40 + 4 * 24);
        assert_eq!(json_complexity(br#"[true,false,null]"#).1, 40 + 3 * 17);
    }

    #[test]
    fn json_limits_are_on_by_default_with_openbaos_values() {
        let o = RequestOptions::openbao_defaults();
        let h = HeaderMap::new();
        // 1000 strings pass, 1001 do not (the key counts).
        let body = |n: usize| format!("{{\"a\":[{}\"x\"]}}", "\"x\",".repeat(n - 2));
        assert!(o.check_json(&h, body(1000).as_bytes()).is_ok());
        assert!(o.check_json(&h, body(1001).as_bytes()).unwrap_err().to_string().contains("maximum number of strings"));
        // OpenBao accepts an array of 1,419,939 numbers and refuses one more.
        let nums = |n: usize| format!("{{\"a\":[{}1]}}", "1,".repeat(n - 1));
        assert!(o.check_json(&h, nums(1_400_000).as_bytes()).is_ok());
        assert!(o.check_json(&h, nums(1_420_000).as_bytes()).unwrap_err().to_string().contains("estimated memory"));
    }

    #[test]
    fn custom_headers_most_specific_wins() {
        let v = |s: &'static str| HeaderValue::from_static(s);
        let n = HeaderName::from_static("x-a");
        let mut c = CustomHeaders { default: vec![(n.clone(), v("def"))], ..Default::default() };
        c.class[4] = vec![(n.clone(), v("4xx"))];
        c.exact = vec![(404, vec![(n.clone(), v("404"))])];
        let c = c.with_openbao_defaults();
        for (code, want) in [(404, "404"), (403, "4xx"), (200, "def")] {
            let mut r = Response::new(Body::empty());
            *r.status_mut() = StatusCode::from_u16(code).unwrap();
            c.apply(&mut r);
            assert_eq!(r.headers()["x-a"], want);
            assert!(r.headers().contains_key(header::STRICT_TRANSPORT_SECURITY));
        }
    }
}
