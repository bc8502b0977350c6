//! In-process test harness: a [`TestCore`] is a Coffer core assembled exactly as `coffer server`
//! assembles it (through `coffer::assemble`: the same core settings, plugin launcher, seals and
//! listener request options), on in-memory storage (or files in a temporary directory),
//! initialised and unsealed with its root token at hand. Requests go through the full HTTP
//! router of `coffer_http::router` in-process (tower's `oneshot`): every wire convention,
//! header, status code and body is the server's, without a process, a port or a socket.
//!
//! What needs a process stays with a spawned server (crates/coffer/tests): the real `bao` and
//! `coffer` CLIs, TLS and socket-level behaviour (raw HTTP parsing, timeouts), signals, crashes,
//! PostgreSQL, PKCS#11 and plugins.
//!
//! A dev-dependency only: no production crate depends on this one (tests/architecture.rs).
#![forbid(unsafe_code)]

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request};
use coffer_barrier::Barrier;
use coffer_config::{ServerConfig, StorageConfig};
use coffer_core::Core;
use coffer_http::{AppState, PeerAddr};
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::Arc;
use tower::ServiceExt;

/// The root token of a [`TestCore`] unless [`Builder::root_token`] says otherwise (the token
/// the spawned dev servers of the older tests used).
pub const ROOT_TOKEN: &str = "root";

/// The client address requests appear to come from (the listener attaches the real one).
pub const DEFAULT_PEER: &str = "127.0.0.1:50000";

/// A core built as the server builds it, with the router of its (first) listener.
pub struct TestCore {
    /// The core itself, for what the HTTP API does not show.
    pub core: Arc<Core>,
    /// The root token; empty when the core was left uninitialised ([`Builder::uninitialized`]).
    pub root_token: String,
    /// The unseal key (base64), one share of threshold one; empty when uninitialised.
    pub unseal_key: String,
    /// The configuration the core was built from (after the dev defaults).
    pub config: ServerConfig,
    state: AppState,
    host: String,
    peer: SocketAddr,
    dir: Option<tempfile::TempDir>,
}

/// How to build a [`TestCore`]; [`TestCore::builder`].
#[must_use]
pub struct Builder {
    config: Option<String>,
    root_token: String,
    dev: bool,
    file_storage: bool,
    peer: SocketAddr,
}

impl Builder {
    /// Server configuration text (HCL or JSON, as in a `-config` file): its settings apply as
    /// they do for `coffer server -dev -config=…` (storage and listener default to the dev ones
    /// when it has none).
    pub fn config(mut self, text: &str) -> Self {
        self.config = Some(text.to_string());
        self
    }

    /// The root token's ID (default [`ROOT_TOKEN`]).
    pub fn root_token(mut self, id: &str) -> Self {
        self.root_token = id.to_string();
        self
    }

    /// Not a dev server: neither initialised nor unsealed, no `secret/` mount, no web UI unless
    /// the configuration enables it (the state of a fresh `coffer server -config=…`).
    pub fn uninitialized(mut self) -> Self {
        self.dev = false;
        self
    }

    /// `storage "file"` in a temporary directory (removed with the `TestCore`) instead of memory.
    pub fn file_storage(mut self) -> Self {
        self.file_storage = true;
        self
    }

    /// The client address requests come from (default [`DEFAULT_PEER`]).
    pub fn peer(mut self, addr: SocketAddr) -> Self {
        self.peer = addr;
        self
    }

    /// Builds, starts and (unless [`Builder::uninitialized`]) initialises and unseals the core.
    /// Panics with the reason when any step fails: a test harness has no one to return to.
    pub async fn start(self) -> TestCore {
        let mut cfg = match &self.config {
            Some(text) => ServerConfig::parse(text, "test.hcl").unwrap_or_else(|e| panic!("test configuration: {e}")),
            None => ServerConfig::default(),
        };
        let dir = self.file_storage.then(|| tempfile::Builder::new().prefix("coffer-test-").tempdir().unwrap());
        if let Some(d) = &dir {
            let mut options = std::collections::BTreeMap::new();
            options.insert("path".to_string(), d.path().join("data").display().to_string());
            cfg.storage = Some(StorageConfig { kind: "file".into(), options });
        }
        if self.dev {
            // A dev server keeps its own listener first (as `server -dev -config=…`); requests
            // here are served as the configuration's listener would serve them (its options),
            // so that one goes first when the configuration names one.
            let configured = std::mem::take(&mut cfg.listeners);
            coffer::assemble::apply_dev_defaults(&mut cfg, "127.0.0.1:8200", None);
            if !configured.is_empty() {
                cfg.listeners = configured;
            }
        } else {
            if cfg.storage.is_none() {
                cfg.storage = Some(StorageConfig { kind: "inmem".into(), options: Default::default() });
            }
            if cfg.listeners.is_empty() {
                cfg.listeners.push(coffer_config::Listener {
                    tls_disable: true,
                    ..coffer_config::Listener::tcp("127.0.0.1:8200")
                });
            }
        }
        let storage_cfg = cfg.storage.as_ref().unwrap_or_else(|| unreachable!("storage was defaulted above"));
        let storage = coffer::assemble::open_storage(storage_cfg).await.unwrap_or_else(|e| panic!("storage: {e}"));
        let core = coffer::assemble::new_core(Arc::new(Barrier::new(storage)), &cfg);
        coffer::assemble::start_core(&core, &mut cfg).unwrap_or_else(|e| panic!("{e}"));
        let (root_token, unseal_key) = if self.dev {
            let (key, root) =
                coffer::assemble::init_dev(&core, Some(&self.root_token)).await.unwrap_or_else(|e| panic!("{e}"));
            use base64::Engine;
            (root, base64::engine::general_purpose::STANDARD.encode(&key[..]))
        } else {
            (String::new(), String::new())
        };
        let listener = cfg.listeners[0].clone();
        let (lc, state) =
            coffer::assemble::listener_state(&core, &cfg, &listener).unwrap_or_else(|e| panic!("listener: {e}"));
        TestCore { core, root_token, unseal_key, config: cfg, state, host: lc.address, peer: self.peer, dir }
    }
}

/// One response: status, headers and body text.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Response {
    /// The body as JSON; panics (showing the status and body) when it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}), status {}: {:?}", self.status, self.body))
    }

    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl TestCore {
    /// A dev server's equivalent (`coffer server -dev -dev-root-token-id=root`): in-memory,
    /// initialised, unsealed, `secret/` mounted as KV version 2, root token [`ROOT_TOKEN`].
    pub async fn new() -> TestCore {
        Self::builder().start().await
    }

    pub fn builder() -> Builder {
        Builder {
            config: None,
            root_token: ROOT_TOKEN.to_string(),
            dev: true,
            file_storage: false,
            peer: DEFAULT_PEER.parse().unwrap_or_else(|_| unreachable!("a valid socket address")),
        }
    }

    /// The temporary directory of [`Builder::file_storage`] (the store is in its `data/`).
    pub fn dir(&self) -> Option<&std::path::Path> {
        self.dir.as_ref().map(|d| d.path())
    }

    /// The router state of the listener, e.g. to build another router.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Sends one request through the full router: `method` (any token, e.g. `LIST`), `path`
    /// with its query (`/v1/…`), `headers`, and the raw body. As a client does, it sends
    /// `Host` (the listener address) and `Content-Length` unless `headers` has them.
    pub async fn send(&self, method: &str, path: &str, headers: &[(&str, &str)], body: impl Into<Vec<u8>>) -> Response {
        let body = body.into();
        let method = Method::from_bytes(method.as_bytes()).unwrap_or_else(|e| panic!("method {method:?}: {e}"));
        let mut req = Request::builder().method(method).uri(path);
        let has = |n: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(n));
        if !has("host") {
            req = req.header("host", &self.host);
        }
        if !has("content-length") {
            req = req.header("content-length", body.len());
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let mut req = req.body(Body::from(body)).unwrap_or_else(|e| panic!("request {path:?}: {e}"));
        req.extensions_mut().insert(PeerAddr(self.peer));
        let resp = coffer_http::router(self.state.clone()).oneshot(req).await.unwrap_or_else(|e| match e {});
        let (parts, body) = resp.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_else(|e| panic!("response body: {e}"));
        Response {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    /// The old harness's shape (`common::http`): status and body text.
    pub async fn http(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String) {
        let r = self.send(method, path, headers, body.to_vec()).await;
        (r.status, r.body)
    }

    /// A request to the logical `path` (below `/v1/`) with `token` and a JSON body.
    pub async fn request(&self, method: &str, path: &str, token: Option<&str>, body: Option<&Value>) -> Response {
        let url = format!("/v1/{}", path.trim_start_matches('/'));
        let mut headers = Vec::new();
        if let Some(t) = token {
            headers.push(("X-Vault-Token", t));
        }
        let body = match body {
            Some(v) => {
                headers.push(("Content-Type", "application/json"));
                serde_json::to_vec(v).unwrap_or_else(|e| panic!("body: {e}"))
            }
            None => Vec::new(),
        };
        self.send(method, &url, &headers, body).await
    }

    /// GET `path` with the root token.
    pub async fn read(&self, path: &str) -> Response {
        self.request("GET", path, Some(&self.root_token), None).await
    }

    /// PUT `body` to `path` with the root token.
    pub async fn write(&self, path: &str, body: Value) -> Response {
        self.request("PUT", path, Some(&self.root_token), Some(&body)).await
    }

    /// LIST `path` with the root token.
    pub async fn list(&self, path: &str) -> Response {
        self.request("LIST", path, Some(&self.root_token), None).await
    }

    /// DELETE `path` with the root token.
    pub async fn delete(&self, path: &str) -> Response {
        self.request("DELETE", path, Some(&self.root_token), None).await
    }

    /// Initialises over HTTP (`sys/init`, 5 shares, threshold 3) and unseals with three of the
    /// keys (`sys/unseal`), as an operator does a fresh server ([`Builder::uninitialized`]).
    /// Returns the keys (base64) and the root token, which becomes [`TestCore::root_token`].
    pub async fn init_unseal(&mut self) -> (Vec<String>, String) {
        let r = self.send("PUT", "/v1/sys/init", &[], br#"{"secret_shares":5,"secret_threshold":3}"#.to_vec()).await;
        assert_eq!(r.status, 200, "init: {}", r.body);
        let v = r.json();
        let keys: Vec<String> = v["keys_base64"]
            .as_array()
            .unwrap_or_else(|| panic!("no keys_base64: {}", r.body))
            .iter()
            .filter_map(|k| k.as_str().map(str::to_string))
            .collect();
        let root = v["root_token"].as_str().unwrap_or_else(|| panic!("no root_token: {}", r.body)).to_string();
        for k in &keys[..3] {
            let r = self.send("PUT", "/v1/sys/unseal", &[], format!("{{\"key\":\"{k}\"}}")).await;
            assert_eq!(r.status, 200, "unseal: {}", r.body);
        }
        let r = self.send("GET", "/v1/sys/seal-status", &[], Vec::new()).await;
        assert_eq!(r.json()["sealed"], false, "still sealed: {}", r.body);
        self.root_token = root.clone();
        (keys, root)
    }

    /// A child token of root with `policies`; returns its ID.
    pub async fn token(&self, policies: &[&str]) -> String {
        let r = self.write("auth/token/create", serde_json::json!({ "policies": policies })).await;
        assert_eq!(r.status, 200, "token create: {}", r.body);
        r.json()["auth"]["client_token"].as_str().unwrap_or_else(|| panic!("no client_token: {}", r.body)).to_string()
    }
}

/// Parses JSON text, panicking with the text when it is not JSON (as the spawned harness's `json`).
pub fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body:?}"))
}

/// Panics seen while a [`PanicWatch`] is alive: those of the current thread (where a
/// current-thread runtime also runs the core's tasks) and of tokio's runtime threads. A panic
/// inside a spawned task does not fail the request that caused it, so a test that must prove
/// "nothing panicked" looks here (as the spawned-server tests looked for "panicked" in the log).
pub struct PanicWatch {
    thread: String,
    from: usize,
}

type PanicRecord = (String, String);

fn panic_log() -> &'static std::sync::Mutex<Vec<PanicRecord>> {
    static LOG: std::sync::OnceLock<std::sync::Mutex<Vec<PanicRecord>>> = std::sync::OnceLock::new();
    LOG.get_or_init(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let thread = std::thread::current().name().unwrap_or("").to_string();
            if let Ok(mut log) = panic_log().lock() {
                log.push((thread, info.to_string()));
            }
            previous(info);
        }));
        std::sync::Mutex::new(Vec::new())
    })
}

impl PanicWatch {
    /// Starts watching (installing the recording hook the first time).
    pub fn start() -> PanicWatch {
        let from = panic_log().lock().map(|l| l.len()).unwrap_or_else(|e| e.into_inner().len());
        PanicWatch { thread: std::thread::current().name().unwrap_or("").to_string(), from }
    }

    /// The panic messages seen since [`PanicWatch::start`].
    pub fn seen(&self) -> Vec<String> {
        let log = panic_log().lock().unwrap_or_else(|e| e.into_inner());
        log.iter()
            .skip(self.from)
            .filter(|(t, _)| *t == self.thread || t.starts_with("tokio-"))
            .map(|(t, m)| format!("[{t}] {m}"))
            .collect()
    }
}
