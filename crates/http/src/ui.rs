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

/// Where an OIDC provider sends the browser back after a UI login:
/// `/ui/vault/auth/<mount>/oidc/callback?state=…&code=…`, the address OpenBao's and Vault's UIs
/// use, so a role's `allowed_redirect_uris` carries over. The UI routes by the URL's fragment, so
/// the answer is a redirect to `/ui/#/oidc/callback/<mount>?<the provider's query>`. Only
/// URL-safe characters pass (a browser percent-encodes the rest), so nothing the provider or
/// an attacker puts in the query can break out of the Location header or the redirect's HTML.
fn oidc_callback(method: &Method, rest: &str, query: Option<&str>) -> Option<Response> {
    let mount = rest.strip_prefix("vault/auth/")?.strip_suffix("/oidc/callback")?;
    let safe =
        |s: &str, extra: &str| s.chars().all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c) || extra.contains(c));
    let query = query.unwrap_or("");
    if mount.is_empty() || !safe(mount, "/") || !safe(query, "%&=+") {
        return Some(with_status(StatusCode::BAD_REQUEST, Body::from("malformed OIDC callback address\n")));
    }
    Some(crate::redirect(method, &format!("/ui/#/oidc/callback/{mount}?{query}")))
}

/// The answer for a UI path (`/`, `/ui`, `/ui/…`), or None when the path is not the UI's.
pub(crate) fn serve(method: &Method, path: &str, query: Option<&str>) -> Option<Response> {
    let rest = match path {
        "/" | "/ui" => return Some(crate::redirect(method, "/ui/")),
        p => p.strip_prefix("/ui/")?,
    };
    if method != Method::GET && method != Method::HEAD {
        return Some(with_status(StatusCode::METHOD_NOT_ALLOWED, Body::empty()));
    }
    if let Some(r) = oidc_callback(method, rest, query) {
        return Some(r);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oidc_callbacks_go_to_the_ui_route_with_the_providers_query() {
        let r = serve(&Method::GET, "/ui/vault/auth/corp/oidc/oidc/callback", Some("state=st_1&code=a%2Fb")).unwrap();
        assert_eq!(r.status(), StatusCode::TEMPORARY_REDIRECT);
        assert_eq!(r.headers()[header::LOCATION], "/ui/#/oidc/callback/corp/oidc?state=st_1&code=a%2Fb");
    }

    #[test]
    fn oidc_callbacks_with_markup_or_odd_mounts_are_refused() {
        for (path, q) in [
            ("/ui/vault/auth/oidc/oidc/callback", Some("state=\"><b>x")),
            ("/ui/vault/auth/a<b/oidc/callback", Some("state=1")),
            ("/ui/vault/auth//oidc/callback", Some("state=1")),
            ("/ui/vault/auth/oidc/oidc/callback", Some("state=1#frag")),
        ] {
            let r = serve(&Method::GET, path, q).unwrap();
            assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{path} {q:?}");
        }
    }
}
