//! Measures durable (fsynced) write throughput of the `file` backend on this machine:
//! one writer (every write its own commit) and 16 concurrent writers (group commit).
//! Usage: cargo run --release -p coffer-storage-file --example fsync_rate -- [DIR] [SECONDS]
use coffer_physical::Storage;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let base = args.get(1).cloned().unwrap_or_else(|| "/var/tmp/coffer-fsync-bench".into());
    let secs: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(5);
    for writers in [1usize, 16] {
        let dir = format!("{base}/w{writers}");
        let _ = std::fs::remove_dir_all(&dir);
        let s = Arc::new(coffer_storage_file::FileStorage::open(&dir).expect("open"));
        let deadline = Instant::now() + Duration::from_secs(secs);
        let start = Instant::now();
        let mut tasks = Vec::new();
        for w in 0..writers {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                let mut n = 0u64;
                let value = vec![0x5Au8; 256];
                while Instant::now() < deadline {
                    s.put(&format!("bench/{w}/{n}"), value.clone()).await.expect("put");
                    n += 1;
                }
                n
            }));
        }
        let mut total = 0;
        for t in tasks {
            total += t.await.unwrap();
        }
        let el = start.elapsed().as_secs_f64();
        println!(
            "file backend (redb), {writers:>2} writer(s): {total} fsynced puts in {el:.1}s = {:.0} puts/s",
            total as f64 / el
        );
        drop(s);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
