//! Serving the embedded web UI (`coffer-ui`) at `/ui/`, with strict security headers.

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;

/// The policy on every UI response: only this origin's own files, no inline code or styles,
/// no framing, no plugins, no foreign form targets.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

fn security_headers(h: &mut HeaderMap) {
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    h.insert("permissions-policy", HeaderValue::from_static("camera=(), microphone=(), geolocation=()"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
}

fn with_status(status: StatusCode, body: Body) -> Response {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    security_headers(r.headers_mut());
    r
}

/// The answer for a UI path (`/`, `/ui`, `/ui/…`), or None when the path is not the UI's.
pub(crate) fn serve(method: &Method, path: &str) -> Option<Response> {
    let rest = match path {
        "/" | "/ui" => return Some(crate::redirect(method, "/ui/")),
        p => p.strip_prefix("/ui/")?,
    };
    if method != Method::GET && method != Method::HEAD {
        return Some(with_status(StatusCode::METHOD_NOT_ALLOWED, Body::empty()));
    }
    let Some(asset) = coffer_ui::asset(rest) else {
        let mut r = with_status(StatusCode::NOT_FOUND, Body::from("404 page not found\n"));
        r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
        return Some(r);
    };
    let body = if method == Method::HEAD { Body::empty() } else { Body::from(asset.bytes) };
    let mut r = with_status(StatusCode::OK, body);
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    Some(r)
}
