//! What many leases cost: creates N service tokens with a TTL (each holds a lease) on the
//! durable file backend, then measures resident memory and the time to unseal a fresh process
//! over the same storage. Usage:
//!   cargo run --release -p coffer-core --example lease_scale -- [N] [DIR]
use coffer_core::{Core, CoreConfig, CoreRequest};
use coffer_sdk::Operation;
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;

fn rss_mib() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|k| k.parse::<f64>().ok())
        .map(|k| k / 1024.0)
        .unwrap_or(0.0)
}

fn dir_bytes(p: &std::path::Path) -> u64 {
    std::fs::read_dir(p)
        .map(|d| d.filter_map(|e| e.ok()).filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum())
        .unwrap_or(0)
}

fn req(path: &str, op: Operation, data: serde_json::Value, token: &str) -> CoreRequest {
    CoreRequest {
        operation: op,
        path: path.into(),
        data: data.as_object().cloned().unwrap_or_default(),
        token: Some(token.into()),
        remote_addr: None,
        wrap_ttl: None,
        basic_auth: None,
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let dir = std::path::PathBuf::from(args.get(2).cloned().unwrap_or_else(|| "/var/tmp/coffer-lease-scale".into()));
    let phase = args.get(3).cloned().unwrap_or_else(|| "create".into());
    let open = || Arc::new(coffer_storage_file::FileStorage::open(&dir).unwrap()) as Arc<dyn coffer_physical::Storage>;
    let key_file = dir.with_extension("key");
    if phase == "open" {
        // A fresh process over the stored tokens and leases: unseal time and memory.
        let rss0 = rss_mib();
        let t = Instant::now();
        let core = Core::new(
            Arc::new(coffer_barrier::Barrier::new(open())),
            CoreConfig::default(),
            coffer_builtins::registry(),
        );
        let mut d = serde_json::Map::new();
        d.insert("key".into(), json!(std::fs::read_to_string(&key_file).unwrap()));
        core.unseal(&d).await.unwrap();
        assert!(!core.is_sealed());
        println!(
            "fresh process: opened and unsealed in {:.1} ms; RSS {rss0:.1} MiB before, {:.1} MiB after",
            t.elapsed().as_secs_f64() * 1e3,
            rss_mib()
        );
        let t = Instant::now();
        let due = core.expire_due().await.unwrap();
        println!(
            "one expiry sweep with nothing due: {:.2} ms (revoked {due}); RSS {:.1} MiB",
            t.elapsed().as_secs_f64() * 1e3,
            rss_mib()
        );
        return;
    }
    let _ = std::fs::remove_dir_all(&dir);

    let rss0 = rss_mib();
    let core =
        Core::new(Arc::new(coffer_barrier::Barrier::new(open())), CoreConfig::default(), coffer_builtins::registry());
    let (keys, root) = core.init_with(1, 1, Some("root"), true).await.unwrap();
    let rss_start = rss_mib();
    let t = Instant::now();
    let mut tasks = Vec::new();
    let per = n / 64;
    for _ in 0..64 {
        let core = core.clone();
        let root = root.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..per {
                core.handle(req(
                    "auth/token/create",
                    Operation::Update,
                    json!({"policies": ["default"], "ttl": "720h"}),
                    &root,
                ))
                .await
                .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let created = per * 64;
    let secs = t.elapsed().as_secs_f64();
    let rss_after = rss_mib();
    println!("created {created} service tokens with leases in {secs:.1}s ({:.0}/s)", created as f64 / secs);
    println!("RSS: {rss0:.1} MiB at start, {rss_start:.1} MiB unsealed, {rss_after:.1} MiB after (bounded token cache included)");
    drop(core);
    std::thread::sleep(std::time::Duration::from_millis(500));
    println!(
        "storage on disk: {:.1} MiB ({:.0} bytes per token+lease)",
        dir_bytes(&dir) as f64 / 1048576.0,
        dir_bytes(&dir) as f64 / created as f64
    );
    std::fs::write(&key_file, keys[0].iter().map(|b| format!("{b:02x}")).collect::<String>()).unwrap();
    println!("now run the 'open' phase in a new process");
}
