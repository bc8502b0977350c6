//! Durable embedded storage (`storage "file"`), on redb.
//!
//! Every acknowledged write is on stable storage: each commit is fsynced before any caller is
//! answered. Writes go through one writer thread that commits whatever is queued together
//! (group commit): under concurrency many writers share one fsync. Reads run directly against
//! the latest committed snapshot and never wait for the writer.
#![forbid(unsafe_code)]

use async_trait::async_trait;
use coffer_physical::{check_key, Storage, StorageError, TxnOp};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use tokio::sync::oneshot;

const ENTRIES: TableDefinition<&str, &[u8]> = TableDefinition::new("entries");
/// redb page cache.
const CACHE_BYTES: usize = 64 * 1024 * 1024;
/// Most operations folded into one commit.
const MAX_BATCH: usize = 512;

struct WriteJob {
    ops: Vec<TxnOp>,
    done: oneshot::Sender<Result<(), StorageError>>,
}

pub struct FileStorage {
    db: Arc<Database>,
    writer: Option<mpsc::Sender<WriteJob>>,
    /// Joined on drop, so the database is closed cleanly before the process exits.
    writer_thread: Option<std::thread::JoinHandle<()>>,
    path: PathBuf,
    repaired: bool,
}

impl Drop for FileStorage {
    /// Stops the writer (it finishes what is queued) and waits for it: redb marks the file
    /// cleanly closed when the last handle goes, and a file not closed cleanly is repaired —
    /// read in full — at the next open.
    fn drop(&mut self) {
        drop(self.writer.take());
        if let Some(t) = self.writer_thread.take() {
            let _ = t.join();
        }
    }
}

fn set_mode(p: &Path, mode: u32) -> Result<(), StorageError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
        .map_err(|e| StorageError::unavailable(format!("cannot set the permissions of {}", p.display()), e))
}

fn backend_err(e: impl Into<redb::Error>) -> StorageError {
    StorageError::backend("redb", e.into())
}

impl FileStorage {
    /// Opens (creating if needed) the store in directory `dir`.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, StorageError> {
        let dir = dir.as_ref();
        // Owner-only, whatever the umask: the directory when this call creates it, the file always.
        if !dir.exists() {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| StorageError::unavailable(format!("cannot create {}", dir.display()), e))?;
            set_mode(dir, 0o700)?;
        }
        let path = dir.join("coffer.redb");
        // A bounded page cache keeps memory flat however much is stored.
        let repaired = Arc::new(AtomicBool::new(false));
        let flag = repaired.clone();
        let started = std::time::Instant::now();
        let db = redb::Builder::new()
            .set_cache_size(CACHE_BYTES)
            .set_repair_callback(move |_| flag.store(true, Ordering::Relaxed))
            .create(&path)
            .map_err(|e| StorageError::unavailable(format!("cannot open {}", path.display()), e))?;
        set_mode(&path, 0o600)?;
        let repaired = repaired.load(Ordering::Relaxed);
        if repaired {
            tracing::warn!(
                path = %path.display(),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "the store was not closed cleanly (crash or kill); it was checked and repaired"
            );
        }
        {
            let txn = db.begin_write().map_err(backend_err)?;
            txn.open_table(ENTRIES).map_err(backend_err)?;
            txn.commit().map_err(backend_err)?;
        }
        let db = Arc::new(db);
        let (tx, rx) = mpsc::channel::<WriteJob>();
        let wdb = db.clone();
        let writer_thread = std::thread::Builder::new()
            .name("coffer-storage-writer".into())
            .spawn(move || writer_loop(wdb, rx))
            .map_err(|e| StorageError::unavailable("cannot start the storage writer thread", e))?;
        Ok(FileStorage { db, writer: Some(tx), writer_thread: Some(writer_thread), path, repaired })
    }

    /// Whether opening found the file not cleanly closed and had to repair it.
    pub fn was_repaired(&self) -> bool {
        self.repaired
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn submit(&self, ops: Vec<TxnOp>) -> Result<(), StorageError> {
        let (done, rx) = oneshot::channel();
        self.writer
            .as_ref()
            .ok_or_else(|| StorageError::Unavailable("storage writer stopped".into()))?
            .send(WriteJob { ops, done })
            // drop-cause: a SendError holds only the unsent job (our own data, no reason).
            .map_err(|_| StorageError::Unavailable("storage writer stopped".into()))?;
        rx.await.map_err(|e| StorageError::unavailable("storage writer stopped", e))?
    }
}

fn writer_loop(db: Arc<Database>, rx: mpsc::Receiver<WriteJob>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        let mut n = batch[0].ops.len();
        while n < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => {
                    n += job.ops.len();
                    batch.push(job);
                }
                Err(_) => break,
            }
        }
        let result = commit(&db, &batch).map_err(Arc::new);
        if let Err(e) = &result {
            tracing::error!(error = %e, "storage commit failed");
        }
        for job in batch {
            let r = match &result {
                Ok(()) => Ok(()),
                Err(e) => Err(StorageError::backend("commit failed", Arc::clone(e))),
            };
            let _ = job.done.send(r);
        }
    }
}

fn commit(db: &Database, batch: &[WriteJob]) -> Result<(), redb::Error> {
    let txn = db.begin_write()?;
    {
        let mut table = txn.open_table(ENTRIES)?;
        for job in batch {
            for op in &job.ops {
                match op {
                    TxnOp::Put { key, value } => {
                        table.insert(key.as_str(), value.as_slice())?;
                    }
                    TxnOp::Delete { key } => {
                        table.remove(key.as_str())?;
                    }
                }
            }
        }
    }
    // Durability::Immediate (the default): fsync before commit returns.
    Ok(txn.commit()?)
}

#[async_trait]
impl Storage for FileStorage {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        check_key(key)?;
        let txn = self.db.begin_read().map_err(backend_err)?;
        let table = txn.open_table(ENTRIES).map_err(backend_err)?;
        Ok(table.get(key).map_err(backend_err)?.map(|v| v.value().to_vec()))
    }

    async fn put(&self, key: &str, value: Vec<u8>) -> Result<(), StorageError> {
        check_key(key)?;
        self.submit(vec![TxnOp::Put { key: key.to_string(), value }]).await
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        check_key(key)?;
        self.submit(vec![TxnOp::Delete { key: key.to_string() }]).await
    }

    /// Immediate children only: after a "folder" child the scan jumps past everything below
    /// it, so listing costs one lookup per child, not one per descendant.
    async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        let txn = self.db.begin_read().map_err(backend_err)?;
        let table = txn.open_table(ENTRIES).map_err(backend_err)?;
        let mut out = Vec::new();
        let mut start = prefix.to_string();
        loop {
            let mut iter = table.range(start.as_str()..).map_err(backend_err)?;
            let Some(item) = iter.next() else { break };
            let (k, _) = item.map_err(backend_err)?;
            let k = k.value();
            let Some(rest) = k.strip_prefix(prefix) else { break };
            if rest.is_empty() {
                start = format!("{k}\0");
                continue;
            }
            match rest.find('/') {
                Some(i) => {
                    let folder = &rest[..=i];
                    out.push(folder.to_string());
                    // '0' is the character after '/': the next key outside this folder.
                    start = format!("{prefix}{}0", &rest[..i]);
                }
                None => {
                    out.push(rest.to_string());
                    start = format!("{k}\0");
                }
            }
        }
        Ok(out)
    }

    async fn transaction(&self, ops: Vec<TxnOp>) -> Result<(), StorageError> {
        for op in &ops {
            match op {
                TxnOp::Put { key, .. } | TxnOp::Delete { key } => check_key(key)?,
            }
        }
        self.submit(ops).await
    }

    fn kind(&self) -> &'static str {
        "file"
    }

    /// One read transaction: redb's snapshot isolation gives one point in time while writes go on.
    async fn export(&self) -> Result<Vec<(String, Vec<u8>)>, StorageError> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || {
            let txn = db.begin_read().map_err(backend_err)?;
            let table = txn.open_table(ENTRIES).map_err(backend_err)?;
            let mut out = Vec::new();
            for item in table.iter().map_err(backend_err)? {
                let (k, v) = item.map_err(backend_err)?;
                out.push((k.value().to_string(), v.value().to_vec()));
            }
            Ok(out)
        })
        .await
        .map_err(|e| StorageError::backend("snapshot export task", e))?
    }
}
