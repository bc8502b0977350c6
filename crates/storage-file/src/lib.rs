//! Durable embedded storage (`storage "file"`), on redb.
//!
//! Every acknowledged write is on stable storage: each commit is fsynced before any caller is
//! answered. Writes go through one writer thread that commits whatever is queued together
//! (group commit): under concurrency many writers share one fsync. Reads run directly against
//! the latest committed snapshot and never wait for the writer.
//!
//! An I/O error in a commit (a full disk) makes redb refuse every later operation until the
//! file is closed and opened again: the writer then reopens it (redb checks and repairs it), at
//! once and again before each write while that fails, so the store recovers without a restart
//! once the cause is gone. A full disk is reported as "unavailable: no space left".
#![forbid(unsafe_code)]

use async_trait::async_trait;
use coffer_physical::{check_key, Storage, StorageError, TxnOp};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};
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

/// The open database, replaced when an I/O error forces a reopen (`None` while that fails).
struct Handle {
    path: PathBuf,
    current: RwLock<Option<Arc<Database>>>,
}

impl Handle {
    fn get(&self) -> Result<Arc<Database>, StorageError> {
        self.current.read().unwrap_or_else(PoisonError::into_inner).clone().ok_or_else(|| {
            StorageError::Unavailable(
                "the store could not be reopened after an I/O error (is the disk full?); retried at the next write"
                    .into(),
            )
        })
    }

    /// Closes the database (once no reader holds it) and opens it again.
    fn reopen(&self) -> Result<(), StorageError> {
        let old = self.current.write().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(mut old) = old {
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                match Arc::try_unwrap(old) {
                    Ok(db) => {
                        drop(db);
                        break;
                    }
                    Err(still) if Instant::now() < deadline => {
                        old = still;
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    Err(still) => {
                        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Some(still);
                        return Err(StorageError::Unavailable("readers kept the store open; reopen postponed".into()));
                    }
                }
            }
        }
        let (db, _) = open_db(&self.path)?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(db));
        tracing::warn!(path = %self.path.display(), "the store was reopened after an I/O error");
        Ok(())
    }
}

/// Opens (creating) the redb file with the page cache and the repair callback; whether it was
/// repaired.
fn open_db(path: &Path) -> Result<(Database, bool), StorageError> {
    let repaired = Arc::new(AtomicBool::new(false));
    let flag = repaired.clone();
    let started = std::time::Instant::now();
    let db = redb::Builder::new()
        .set_cache_size(CACHE_BYTES)
        .set_repair_callback(move |_| flag.store(true, Ordering::Relaxed))
        .create(path)
        .map_err(|e| StorageError::unavailable(format!("cannot open {}", path.display()), e))?;
    let repaired = repaired.load(Ordering::Relaxed);
    if repaired {
        tracing::warn!(
            path = %path.display(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "the store was not closed cleanly (crash, kill or I/O error); it was checked and repaired"
        );
    }
    Ok((db, repaired))
}

pub struct FileStorage {
    db: Arc<Handle>,
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
        let (db, repaired) = open_db(&path)?;
        set_mode(&path, 0o600)?;
        {
            let txn = db.begin_write().map_err(backend_err)?;
            txn.open_table(ENTRIES).map_err(backend_err)?;
            txn.commit().map_err(backend_err)?;
        }
        let db = Arc::new(Handle { path: path.clone(), current: RwLock::new(Some(Arc::new(db))) });
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

/// Why a batch was not committed.
enum Failed {
    Commit(Arc<redb::Error>),
    /// The store is closed (a reopen failed): the reason.
    Closed(String),
}

/// Whether a failed commit left redb refusing everything until a reopen (an I/O error).
fn needs_reopen(e: &redb::Error) -> bool {
    matches!(e, redb::Error::Io(_) | redb::Error::PreviousIo)
}

/// A commit's error as callers see it: a full disk is "unavailable", said plainly (the I/O
/// error itself, with the file's path, was logged by the writer).
fn commit_error(e: &Arc<redb::Error>) -> StorageError {
    let full = matches!(&**e, redb::Error::Io(io) if io.kind() == std::io::ErrorKind::StorageFull);
    if full {
        StorageError::Unavailable("no space left on the storage device".into())
    } else {
        StorageError::backend("commit failed", Arc::clone(e))
    }
}

fn writer_loop(handle: Arc<Handle>, rx: mpsc::Receiver<WriteJob>) {
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
        // A store left closed by a failed reopen is opened again before each batch.
        let db = match handle.get() {
            Ok(db) => Ok(db),
            Err(_) => handle.reopen().and_then(|()| handle.get()),
        };
        let result: Result<(), Failed> = match db {
            Ok(db) => commit(&db, &batch).map_err(|e| {
                tracing::error!(error = %e, "storage commit failed");
                drop(db);
                if needs_reopen(&e) {
                    if let Err(r) = handle.reopen() {
                        tracing::error!(error = %r, "reopening the store after an I/O error failed; retried at the next write");
                    }
                }
                Failed::Commit(Arc::new(e))
            }),
            Err(e) => Err(Failed::Closed(e.to_string())),
        };
        for job in batch {
            let r = match &result {
                Ok(()) => Ok(()),
                Err(Failed::Commit(e)) => Err(commit_error(e)),
                Err(Failed::Closed(m)) => Err(StorageError::Unavailable(m.clone())),
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
        let db = self.db.get()?;
        let txn = db.begin_read().map_err(backend_err)?;
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
        let db = self.db.get()?;
        let txn = db.begin_read().map_err(backend_err)?;
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
        let db = self.db.get()?;
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
