//! `coffer operator migrate -config=FILE`: copies every entry, as stored (ciphertext, byte for
//! byte), from `storage_source` to `storage_destination`. Works between any two backends. Both
//! servers must be stopped; a destination that already holds `core/seal-config` (an
//! initialised Coffer) is refused unless `-force` is given.

use clap::Parser;
use coffer::error::MigrateError;
use coffer_physical::Storage;
use std::sync::Arc;

#[derive(Parser, Debug)]
#[command(name = "coffer operator migrate", about = "Copy all stored entries from one storage backend to another")]
struct Args {
    /// Migration configuration: storage_source "…" { … } and storage_destination "…" { … }.
    #[arg(long = "config")]
    config: String,
    /// Copy even when the destination already holds an initialised Coffer (core/seal-config);
    /// its entries with the same keys are overwritten.
    #[arg(long)]
    force: bool,
    /// Only copy keys that sort at or after this prefix (to resume an interrupted migration).
    #[arg(long)]
    start: Option<String>,
}

/// Every key of `s`, depth first, in sorted order.
async fn all_keys(s: &dyn Storage, side: &'static str) -> Result<Vec<String>, MigrateError> {
    let mut out = Vec::new();
    let mut stack = vec![String::new()];
    while let Some(prefix) = stack.pop() {
        let children =
            s.list(&prefix).await.map_err(|source| MigrateError::List { side, prefix: prefix.clone(), source })?;
        for c in children.into_iter().rev() {
            let full = format!("{prefix}{c}");
            if full.ends_with('/') {
                stack.push(full.clone());
                // A key may itself end in '/': it is listed as a folder, so check it too.
                if s.get(&full)
                    .await
                    .map_err(|source| MigrateError::Read { side, key: full.clone(), source })?
                    .is_some()
                {
                    out.push(full);
                }
            } else {
                out.push(full);
            }
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Copies every entry of `src` to `dst`; returns the number copied. `dst` is read back and
/// compared for each entry.
pub async fn copy_all(
    src: Arc<dyn Storage>,
    dst: Arc<dyn Storage>,
    start: Option<&str>,
    force: bool,
) -> Result<usize, MigrateError> {
    if !force {
        let read = dst.get("core/seal-config").await;
        let side = "destination";
        if read.map_err(|source| MigrateError::Read { side, key: "core/seal-config".into(), source })?.is_some() {
            return Err(MigrateError::Initialised);
        }
    }
    let keys = all_keys(&*src, "source").await?;
    let keys: Vec<String> = keys.into_iter().filter(|k| start.is_none_or(|s| k.as_str() >= s)).collect();
    let total = keys.len();
    let sem = Arc::new(tokio::sync::Semaphore::new(16));
    let mut tasks = tokio::task::JoinSet::new();
    for key in keys {
        let (src, dst, sem) = (src.clone(), dst.clone(), sem.clone());
        tasks.spawn(async move {
            let _permit = sem.acquire_owned().await.map_err(MigrateError::Closed)?;
            let read = src.get(&key).await;
            let Some(value) = read.map_err(|source| MigrateError::Read { side: "source", key: key.clone(), source })?
            else {
                return Ok::<(), MigrateError>(());
            };
            dst.put(&key, value.clone()).await.map_err(|source| MigrateError::Write { key: key.clone(), source })?;
            let back = dst.get(&key).await.map_err(|source| MigrateError::ReadBack { key: key.clone(), source })?;
            if back.as_deref() != Some(&value[..]) {
                return Err(MigrateError::Mismatch(key));
            }
            Ok(())
        });
    }
    let mut first_err = None;
    while let Some(r) = tasks.join_next().await {
        let r = r.map_err(MigrateError::Task).and_then(|x| x);
        if let Err(e) = r {
            first_err.get_or_insert(e);
            tasks.abort_all();
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(total),
    }
}

pub fn main(raw: &[String]) -> i32 {
    let mut argv = vec!["coffer operator migrate".to_string()];
    argv.extend(crate::server::normalize_flags(raw));
    let args = match Args::try_parse_from(argv) {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 1 } else { 0 };
        }
    };
    let cfg = match coffer_config::MigrationConfig::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("Error loading migration configuration: {e}");
            return 1;
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("Error: cannot start the runtime: {e}");
            return 1;
        }
    };
    rt.block_on(async {
        let src = match crate::server::open_storage(&cfg.source).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("Error: storage_source: {e}");
                return 1;
            }
        };
        let dst = match crate::server::open_storage(&cfg.destination).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("Error: storage_destination: {e}");
                return 1;
            }
        };
        let started = std::time::Instant::now();
        match copy_all(src, dst, args.start.as_deref(), args.force).await {
            Ok(n) => {
                println!(
                    "Success! All of the keys have been migrated ({n} entries from {:?} to {:?} in {:.1}s).",
                    cfg.source.kind,
                    cfg.destination.kind,
                    started.elapsed().as_secs_f64()
                );
                0
            }
            Err(e) => {
                eprintln!("Error migrating: {e}");
                2
            }
        }
    })
}
