//! `max_request_duration`: a request still running when the time is up is answered 503, and
//! still completes (a change is never left half made). Storage is the in-memory backend
//! behind a delay the test turns on, so the core is slow for real.
use coffer_barrier::Barrier;
use coffer_core::{Core, CoreConfig};
use coffer_http::{serve, AppState, ListenerConfig, RequestOptions, DEFAULT_MAX_REQUEST_SIZE};
use coffer_physical::{Storage, StorageError, TxnOp};
use coffer_storage_inmem::InmemStorage;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Delayed {
    inner: InmemStorage,
    delay_ms: Arc<AtomicU64>,
}

impl Delayed {
    async fn wait(&self) {
        let ms = self.delay_ms.load(Ordering::Relaxed);
        if ms > 0 {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
    }
}

#[async_trait::async_trait]
impl Storage for Delayed {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        self.wait().await;
        self.inner.get(key).await
    }
    async fn put(&self, key: &str, value: Vec<u8>) -> Result<(), StorageError> {
        self.wait().await;
        self.inner.put(key, value).await
    }
    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        self.wait().await;
        self.inner.delete(key).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        self.wait().await;
        self.inner.list(prefix).await
    }
    async fn transaction(&self, ops: Vec<TxnOp>) -> Result<(), StorageError> {
        self.wait().await;
        self.inner.transaction(ops).await
    }
    fn kind(&self) -> &'static str {
        "inmem"
    }
}

async fn request(addr: std::net::SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nX-Vault-Token: root\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_past_max_request_duration_gets_503_and_still_completes() {
    let delay_ms = Arc::new(AtomicU64::new(0));
    let storage = Arc::new(Delayed { inner: InmemStorage::new(), delay_ms: delay_ms.clone() });
    let core = Core::new(Arc::new(Barrier::new(storage)), CoreConfig::default(), coffer_builtins::registry());
    core.init_with(1, 1, Some("root"), true).await.unwrap();
    let options =
        RequestOptions { max_request_duration: Some(Duration::from_millis(300)), ..RequestOptions::openbao_defaults() };
    let state = AppState {
        core,
        max_request_size: DEFAULT_MAX_REQUEST_SIZE,
        ui: false,
        unauthenticated_metrics: false,
        options: Arc::new(options),
        cluster: None,
    };
    let (_stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (btx, brx) = tokio::sync::oneshot::channel();
    tokio::spawn(serve(ListenerConfig::plain("127.0.0.1:0"), state, stop_rx, btx));
    let addr = brx.await.unwrap();
    assert_eq!(request(addr, "POST", "/v1/sys/mounts/kv", r#"{"type":"kv"}"#).await.0, 204);

    // Every storage call now takes a second: the write outlives the 300 ms budget.
    delay_ms.store(1000, Ordering::Relaxed);
    let start = Instant::now();
    let (status, body) = request(addr, "PUT", "/v1/kv/slow", r#"{"v":"written"}"#).await;
    let took = start.elapsed();
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("max_request_duration"), "{body}");
    assert!(took < Duration::from_millis(900), "answered after {took:?}");

    // It was not cut off: once storage is fast again the value is there.
    delay_ms.store(0, Ordering::Relaxed);
    let mut found = String::new();
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (s, b) = request(addr, "GET", "/v1/kv/slow", "").await;
        if s == 200 {
            found = b;
            break;
        }
    }
    assert!(found.contains("\"v\":\"written\""), "the write completed after the 503: {found:?}");
}
