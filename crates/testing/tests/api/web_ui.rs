//! The web UI, in-process through the full router: served at `/ui/` with strict security
//! headers when `ui = true`, absent otherwise. (The browser tests in `tests/ui/` drive the UI
//! itself.)
use coffer_testing::{Response, TestCore};

async fn start(ui: bool) -> TestCore {
    TestCore::builder()
        .uninitialized()
        .file_storage()
        .config(&format!("disable_mlock = true\nui = {ui}\n"))
        .start()
        .await
}

async fn fetch(c: &TestCore, method: &str, path: &str) -> Response {
    c.send(method, path, &[], Vec::new()).await
}

#[tokio::test]
async fn ui_is_served_with_strict_security_headers() {
    let c = start(true).await;
    for path in ["/ui/", "/ui/js/app.js", "/ui/app.css"] {
        let r = fetch(&c, "GET", path).await;
        assert_eq!(r.status, 200, "{path}");
        assert!(!r.body.is_empty(), "{path} is empty");
        let csp = r.header("content-security-policy").unwrap_or_else(|| panic!("{path}: no CSP"));
        for directive in [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "frame-ancestors 'none'",
            "object-src 'none'",
        ] {
            assert!(csp.contains(directive), "{path}: CSP {csp:?} lacks {directive}");
        }
        assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "{path}: {csp}");
        assert_eq!(r.header("x-frame-options"), Some("DENY"), "{path}");
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"), "{path}");
    }
    let r = fetch(&c, "GET", "/ui/").await;
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    assert!(r.body.contains("<script type=\"module\" src=\"js/app.js\">"), "{}", r.body);
    let r = fetch(&c, "GET", "/ui/js/app.js").await;
    assert!(r.header("content-type").unwrap().starts_with("text/javascript"));

    // `/` leads to the UI; unknown files and other methods are refused, still with the headers.
    let r = fetch(&c, "GET", "/").await;
    assert_eq!((r.status, r.header("location")), (307, Some("/ui/")));
    let r = fetch(&c, "GET", "/ui/../Cargo.toml").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.header("x-frame-options"), Some("DENY"));
    assert_eq!(fetch(&c, "GET", "/ui/nothing.js").await.status, 404);
    assert_eq!(fetch(&c, "POST", "/ui/").await.status, 405);
    // The API is unaffected.
    assert_eq!(fetch(&c, "GET", "/v1/sys/seal-status").await.status, 200);
}

#[tokio::test]
async fn ui_is_absent_when_off() {
    let c = start(false).await;
    for path in ["/ui/", "/ui/js/app.js", "/ui", "/"] {
        let r = fetch(&c, "GET", path).await;
        assert_eq!(r.status, 404, "{path} must be 404 with ui = false");
        assert!(r.header("location").is_none(), "{path} redirects");
    }
    assert_eq!(fetch(&c, "GET", "/v1/sys/seal-status").await.status, 200);
}
