//! The barrier: every entry is encrypted with AES-256-GCM under the active term of a keyring
//! before it reaches physical storage, and authenticated (bound to its key path) when read back.
//!
//! Layout in physical storage:
//! - `core/root-key`: the root key, encrypted under the key-encryption key the seal provides;
//! - `core/keyring`: the keyring (terms, rotation policy), encrypted under the root key;
//! - `core/seal-config`: the seal parameters (shares, threshold) — not secret, readable sealed;
//! - `core/seal-wrapped-kek`: with an auto-unseal seal, the KEK wrapped by the seal's key;
//! - everything else: `[2][term: u32 BE][nonce][ciphertext][tag]`, AAD = the key path.
//!
//! This crate is the only one that holds plaintext and the physical store together.
#![forbid(unsafe_code)]

use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use coffer_crypto::Key;
use coffer_physical::{Storage, StorageError, TxnOp};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, PoisonError, RwLock};
use zeroize::{Zeroize, Zeroizing};

pub const KEYRING_PATH: &str = "core/keyring";
pub const ROOT_KEY_PATH: &str = "core/root-key";
pub const SEAL_CONFIG_PATH: &str = "core/seal-config";
/// The key-encryption key wrapped by an auto-unseal seal (HSM, transit); absent with Shamir.
pub const SEAL_WRAPPED_KEK_PATH: &str = "core/seal-wrapped-kek";
const ENTRY_VERSION: u8 = 2;
const HEADER_LEN: usize = 5;
/// Persist the encryption count at least this often.
const COUNT_CHECKPOINT: u64 = 100_000;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BarrierError {
    #[error("Vault is sealed")]
    Sealed,
    #[error("barrier is not initialized")]
    NotInitialized,
    #[error("barrier is already initialized")]
    AlreadyInitialized,
    #[error("the unseal key is not valid for this barrier")]
    WrongKey,
    #[error("entry {0:?} failed authentication or is corrupt")]
    Corrupt(String),
    #[error("entry {0:?} uses unknown key term {1}")]
    UnknownTerm(String, u32),
    #[error("path {0:?} is reserved for the barrier")]
    Reserved(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("crypto failure: {0}")]
    Crypto(#[from] coffer_crypto::CryptoError),
    #[error("encoding the keyring failed: {0}")]
    Encode(#[source] serde_json::Error),
    /// A snapshot without the barrier's own entries.
    #[error("the snapshot holds no {0}: it is not a snapshot of an initialised server")]
    SnapshotIncomplete(&'static str),
    /// A snapshot whose keys are not this server's (restore it with force).
    #[error(
        "the snapshot was taken from a server with other keys: restore it with force, then unseal with that server's unseal keys"
    )]
    SnapshotKeys,
    /// Bytes that are not a whole, unaltered snapshot.
    #[error("cannot restore: {0}")]
    SnapshotFile(#[from] coffer_physical::snapshot::SnapshotError),
}

/// What a snapshot file says about itself.
pub use coffer_physical::snapshot::Header as SnapshotHeader;

/// What a snapshot restore left behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restored {
    /// The snapshot opens with this server's keys: its keyring is loaded, the barrier stays
    /// unsealed (the caller rebuilds its state from storage).
    Unsealed,
    /// Forced, with other keys: the barrier is sealed; the snapshot's unseal keys open it.
    Sealed,
}

/// Automatic rotation policy (`sys/rotate/config`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RotationConfig {
    pub max_operations: u64,
    /// Seconds; 0 disables time-based rotation.
    pub interval: u64,
    pub enabled: bool,
}

impl Default for RotationConfig {
    fn default() -> Self {
        // Same default as Vault: well below the 2^32 random-nonce bound for AES-GCM.
        RotationConfig { max_operations: 3_865_470_566, interval: 0, enabled: true }
    }
}

#[derive(Serialize, Deserialize)]
struct StoredTerm {
    term: u32,
    key: String,
    install_time: String,
    #[serde(default)]
    encryptions: u64,
}

#[derive(Serialize, Deserialize)]
struct StoredKeyring {
    active_term: u32,
    terms: Vec<StoredTerm>,
    #[serde(default)]
    rotation: RotationConfig,
}

impl Drop for StoredKeyring {
    fn drop(&mut self) {
        for t in &mut self.terms {
            t.key.zeroize();
        }
    }
}

struct Term {
    term: u32,
    key: Key,
    /// `key` prepared once: every storage operation uses it.
    cipher: coffer_crypto::Cipher,
    install_time: time::OffsetDateTime,
}

impl Term {
    fn new(term: u32, key: Key, install_time: time::OffsetDateTime) -> Term {
        Term { term, cipher: coffer_crypto::Cipher::new(&key), key, install_time }
    }
}

struct Keyring {
    root: Key,
    terms: Vec<Term>,
    active: u32,
    /// Encryptions with the active term persisted in the keyring so far.
    base_count: u64,
    rotation: RotationConfig,
}

impl Keyring {
    fn term(&self, t: u32) -> Option<&Term> {
        self.terms.iter().find(|x| x.term == t)
    }
    fn active(&self) -> &Term {
        self.term(self.active).expect("active term present in keyring")
    }
}

/// Status of the active key term (`sys/key-status`).
#[derive(Debug, Clone, Serialize)]
pub struct KeyStatus {
    pub term: u32,
    pub install_time: String,
    pub encryptions: u64,
}

pub struct Barrier {
    storage: Arc<dyn Storage>,
    /// Replaced whole under the lock, never edited in place: a panic elsewhere cannot leave it
    /// half-written, so a poisoned lock is recovered (`PoisonError::into_inner`), not an error.
    keyring: RwLock<Option<Arc<Keyring>>>,
    /// Encryptions with the active term since the keyring was last persisted.
    pending_count: AtomicU64,
    rotating: AtomicBool,
    rotate_lock: tokio::sync::Mutex<()>,
}

fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// What a snapshot's sealed checksums are bound to (never a storage key).
const SNAPSHOT_SUMS_KEY: &str = "snapshot/SHA256SUMS";

fn reserved(key: &str) -> bool {
    key == KEYRING_PATH || key == ROOT_KEY_PATH || key == SEAL_CONFIG_PATH || key == SEAL_WRAPPED_KEK_PATH
}

impl Barrier {
    pub fn new(storage: Arc<dyn Storage>) -> Self {
        Barrier {
            storage,
            keyring: RwLock::new(None),
            pending_count: AtomicU64::new(0),
            rotating: AtomicBool::new(false),
            rotate_lock: tokio::sync::Mutex::new(()),
        }
    }

    /// The physical backend's configured type (`file`, `inmem`, …).
    pub fn storage_kind(&self) -> &'static str {
        self.storage.kind()
    }

    fn current(&self) -> Result<Arc<Keyring>, BarrierError> {
        self.keyring.read().unwrap_or_else(PoisonError::into_inner).clone().ok_or(BarrierError::Sealed)
    }

    pub fn is_sealed(&self) -> bool {
        self.keyring.read().map(|k| k.is_none()).unwrap_or(true)
    }

    pub async fn is_initialized(&self) -> Result<bool, BarrierError> {
        Ok(self.storage.get(KEYRING_PATH).await?.is_some())
    }

    /// Reads the (unencrypted, non-secret) seal configuration.
    pub async fn seal_config(&self) -> Result<Option<Vec<u8>>, BarrierError> {
        Ok(self.storage.get(SEAL_CONFIG_PATH).await?)
    }

    /// Creates a fresh root key and keyring, the root key wrapped under `kek`. Returns sealed.
    pub async fn initialize(&self, kek: &Key, seal_config: Vec<u8>) -> Result<(), BarrierError> {
        self.initialize_with(kek, seal_config, None).await
    }

    /// The KEK as wrapped by an auto-unseal seal, when there is one (readable sealed).
    pub async fn wrapped_kek(&self) -> Result<Option<Vec<u8>>, BarrierError> {
        Ok(self.storage.get(SEAL_WRAPPED_KEK_PATH).await?)
    }

    /// [`Barrier::initialize`], also storing the KEK as an auto-unseal seal wrapped it.
    pub async fn initialize_with(
        &self,
        kek: &Key,
        seal_config: Vec<u8>,
        wrapped_kek: Option<Vec<u8>>,
    ) -> Result<(), BarrierError> {
        if self.is_initialized().await? {
            return Err(BarrierError::AlreadyInitialized);
        }
        let root = Key::generate().map_err(BarrierError::Crypto)?;
        let ring = Keyring {
            root: root.clone(),
            terms: vec![Term::new(1, Key::generate().map_err(BarrierError::Crypto)?, now())],
            active: 1,
            base_count: 0,
            rotation: RotationConfig::default(),
        };
        let wrapped_root =
            coffer_crypto::seal(kek, ROOT_KEY_PATH.as_bytes(), root.as_bytes()).map_err(BarrierError::Crypto)?;
        let ring_blob = encode_keyring(&ring, 0)?;
        // One atomic write: a crash never leaves a half-initialized barrier.
        let mut ops = vec![
            TxnOp::Put { key: SEAL_CONFIG_PATH.into(), value: seal_config },
            TxnOp::Put { key: ROOT_KEY_PATH.into(), value: wrapped_root },
            TxnOp::Put { key: KEYRING_PATH.into(), value: ring_blob },
        ];
        if let Some(w) = wrapped_kek {
            ops.push(TxnOp::Put { key: SEAL_WRAPPED_KEK_PATH.into(), value: w });
        }
        self.storage.transaction(ops).await?;
        Ok(())
    }

    async fn unwrap_root(&self, kek: &Key) -> Result<Key, BarrierError> {
        let wrapped = self.storage.get(ROOT_KEY_PATH).await?.ok_or(BarrierError::NotInitialized)?;
        // drop-cause: a wrong key and a tampered root key look the same, on purpose (no oracle).
        let root = coffer_crypto::open(kek, ROOT_KEY_PATH.as_bytes(), &wrapped).map_err(|_| BarrierError::WrongKey)?;
        Key::from_slice(&root).map_err(BarrierError::Crypto)
    }

    /// Checks `kek` against the stored root key without unsealing.
    pub async fn verify_kek(&self, kek: &Key) -> Result<(), BarrierError> {
        self.unwrap_root(kek).await.map(|_| ())
    }

    /// Unseals with the key-encryption key the seal reconstructed.
    pub async fn unseal(&self, kek: &Key) -> Result<(), BarrierError> {
        let root = self.unwrap_root(kek).await?;
        let blob = self.storage.get(KEYRING_PATH).await?.ok_or(BarrierError::NotInitialized)?;
        let ring = decode_keyring(&root, &blob)?;
        self.pending_count.store(0, Ordering::SeqCst);
        *self.keyring.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(ring));
        Ok(())
    }

    /// Persists the encryption count now (an HA active node does it before giving up its lock:
    /// afterwards its writes are refused).
    pub async fn checkpoint(&self) -> Result<(), BarrierError> {
        self.persist_keyring().await
    }

    /// Persists the encryption count, then drops every key from memory.
    pub async fn seal(&self) {
        let _ = self.persist_keyring().await;
        if let Ok(mut k) = self.keyring.write() {
            *k = None;
        }
    }

    /// Re-wraps the root key under a new key-encryption key (rekey). Requires unsealed.
    pub async fn rewrap_root(&self, new_kek: &Key, seal_config: Vec<u8>) -> Result<(), BarrierError> {
        let ring = self.current()?;
        let wrapped = coffer_crypto::seal(new_kek, ROOT_KEY_PATH.as_bytes(), ring.root.as_bytes())
            .map_err(BarrierError::Crypto)?;
        self.storage
            .transaction(vec![
                TxnOp::Put { key: ROOT_KEY_PATH.into(), value: wrapped },
                TxnOp::Put { key: SEAL_CONFIG_PATH.into(), value: seal_config },
            ])
            .await?;
        Ok(())
    }

    /// Seal migration: re-wraps the root key under `new_kek` and, in the same atomic write,
    /// stores the seal-wrapped KEK (moving to an auto-unseal seal) or removes it (to Shamir).
    /// Requires unsealed.
    pub async fn rewrap_root_for_seal(
        &self,
        new_kek: &Key,
        seal_config: Vec<u8>,
        wrapped_kek: Option<Vec<u8>>,
    ) -> Result<(), BarrierError> {
        let ring = self.current()?;
        let wrapped = coffer_crypto::seal(new_kek, ROOT_KEY_PATH.as_bytes(), ring.root.as_bytes())
            .map_err(BarrierError::Crypto)?;
        let kek_op = match wrapped_kek {
            Some(w) => TxnOp::Put { key: SEAL_WRAPPED_KEK_PATH.into(), value: w },
            None => TxnOp::Delete { key: SEAL_WRAPPED_KEK_PATH.into() },
        };
        self.storage
            .transaction(vec![
                TxnOp::Put { key: ROOT_KEY_PATH.into(), value: wrapped },
                TxnOp::Put { key: SEAL_CONFIG_PATH.into(), value: seal_config },
                kek_op,
            ])
            .await?;
        Ok(())
    }

    /// Writes the seal configuration and one encrypted entry in one atomic write (rekeying the
    /// recovery key of an auto seal: its new shares and the key itself). Requires unsealed.
    pub async fn put_seal_config_with(
        &self,
        seal_config: Vec<u8>,
        key: &str,
        value: &[u8],
    ) -> Result<(), BarrierError> {
        if reserved(key) {
            return Err(BarrierError::Reserved(key.into()));
        }
        let ring = self.current()?;
        let blob = self.encrypt(&ring, key, value)?;
        self.storage
            .transaction(vec![
                TxnOp::Put { key: SEAL_CONFIG_PATH.into(), value: seal_config },
                TxnOp::Put { key: key.into(), value: blob },
            ])
            .await?;
        Ok(())
    }

    async fn persist_keyring(&self) -> Result<(), BarrierError> {
        let ring = self.current()?;
        let pending = self.pending_count.load(Ordering::SeqCst);
        let blob = encode_keyring(&ring, pending)?;
        self.storage.put(KEYRING_PATH, blob).await?;
        Ok(())
    }

    /// Every physical entry as stored — ciphertext, the barrier's own entries included — at one
    /// point in time: a snapshot's content. Refused while sealed (a sealed server gives nothing).
    pub async fn export_physical(&self) -> Result<coffer_physical::Entries, BarrierError> {
        self.current()?;
        // The count of encryptions made with the active term goes with the keyring, so a
        // restored server never reuses nonce budget.
        self.persist_keyring().await?;
        Ok(self.storage.export().await?)
    }

    /// Replaces every physical entry with a snapshot's. Unless `force`, the snapshot must open
    /// with this server's root key (a snapshot of this server, or of one sharing its keys): its
    /// keyring is loaded at once. Forced, the barrier ends sealed without writing anything of
    /// its own over the snapshot's entries. Requires unsealed.
    pub async fn restore_physical(
        &self,
        entries: coffer_physical::Entries,
        force: bool,
    ) -> Result<Restored, BarrierError> {
        let ring = self.current()?;
        let find = |k: &str| entries.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
        let keyring_blob = find(KEYRING_PATH).ok_or(BarrierError::SnapshotIncomplete("keyring"))?;
        find(ROOT_KEY_PATH).ok_or(BarrierError::SnapshotIncomplete("root key"))?;
        find(SEAL_CONFIG_PATH).ok_or(BarrierError::SnapshotIncomplete("seal configuration"))?;
        let opened = decode_keyring(&ring.root, &keyring_blob).ok();
        if opened.is_none() && !force {
            return Err(BarrierError::SnapshotKeys);
        }
        let _guard = self.rotate_lock.lock().await;
        self.storage.replace_all(entries).await?;
        let mut slot = self.keyring.write().unwrap_or_else(PoisonError::into_inner);
        self.pending_count.store(0, Ordering::SeqCst);
        match opened {
            Some(new_ring) => {
                *slot = Some(Arc::new(new_ring));
                Ok(Restored::Unsealed)
            }
            None => {
                *slot = None;
                Ok(Restored::Sealed)
            }
        }
    }

    /// A snapshot file of the whole storage (`coffer_physical::snapshot`), saying it was taken by
    /// `version`. Its `SHA256SUMS.sealed` is sealed with the active key term.
    pub async fn snapshot(&self, version: &str) -> Result<(SnapshotHeader, Vec<u8>), BarrierError> {
        // The sealed checksums below are one more encryption: counted in the keyring the
        // snapshot carries.
        self.pending_count.fetch_add(1, Ordering::SeqCst);
        let exported = self.export_physical().await;
        self.pending_count.fetch_sub(1, Ordering::SeqCst);
        let entries = exported?;
        let ring = self.current()?;
        let header = SnapshotHeader {
            format: coffer_physical::snapshot::FORMAT,
            created: now().unix_timestamp(),
            backend: self.storage.kind().to_string(),
            version: version.to_string(),
            entries: entries.len() as u64,
        };
        let bytes = coffer_physical::snapshot::encode(&header, &entries, |sums| {
            self.encrypt(&ring, SNAPSHOT_SUMS_KEY, sums).map_err(|e| Box::new(e) as coffer_physical::BoxError)
        })?;
        Ok((header, bytes))
    }

    /// Checks a snapshot file and restores it ([`Self::restore_physical`]). Unless forced, its
    /// sealed checksums must open with this server's keyring as restored and match.
    pub async fn restore_snapshot(
        &self,
        bytes: &[u8],
        force: bool,
    ) -> Result<(SnapshotHeader, Restored), BarrierError> {
        let d = coffer_physical::snapshot::decode(bytes)?;
        if !force {
            let ring = self.current()?;
            let find = |k: &str| d.entries.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
            let blob = find(KEYRING_PATH).ok_or(BarrierError::SnapshotIncomplete("keyring"))?;
            // drop-cause: any failure to open the keyring means one thing here: other keys.
            let theirs = decode_keyring(&ring.root, &blob).map_err(|_| BarrierError::SnapshotKeys)?;
            let opened = self.decrypt(&theirs, SNAPSHOT_SUMS_KEY, &d.sealed_sums);
            // drop-cause: as above; a failed open is opaque on purpose.
            let opened = opened.map_err(|_| BarrierError::SnapshotKeys)?;
            if opened.as_slice() != d.sums.as_slice() {
                return Err(BarrierError::SnapshotKeys);
            }
        }
        let restored = self.restore_physical(d.entries, force).await?;
        Ok((d.header, restored))
    }

    /// Adds a new key term and makes it active. Returns the new term.
    pub async fn rotate(&self) -> Result<u32, BarrierError> {
        let _guard = self.rotate_lock.lock().await;
        let old = self.current()?;
        let new_term = old.active + 1;
        let mut terms: Vec<Term> = old.terms.iter().map(|t| Term::new(t.term, t.key.clone(), t.install_time)).collect();
        terms.push(Term::new(new_term, Key::generate().map_err(BarrierError::Crypto)?, now()));
        let ring =
            Keyring { root: old.root.clone(), terms, active: new_term, base_count: 0, rotation: old.rotation.clone() };
        let blob = encode_keyring(&ring, 0)?;
        self.storage.put(KEYRING_PATH, blob).await?;
        self.pending_count.store(0, Ordering::SeqCst);
        *self.keyring.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(ring));
        Ok(new_term)
    }

    pub fn key_status(&self) -> Result<KeyStatus, BarrierError> {
        let ring = self.current()?;
        let active = ring.active();
        Ok(KeyStatus {
            term: active.term,
            install_time: rfc3339(active.install_time),
            encryptions: ring.base_count + self.pending_count.load(Ordering::Relaxed),
        })
    }

    pub fn rotation_config(&self) -> Result<RotationConfig, BarrierError> {
        Ok(self.current()?.rotation.clone())
    }

    pub async fn set_rotation_config(&self, cfg: RotationConfig) -> Result<(), BarrierError> {
        let _guard = self.rotate_lock.lock().await;
        let old = self.current()?;
        let ring = Keyring {
            root: old.root.clone(),
            terms: old.terms.iter().map(|t| Term::new(t.term, t.key.clone(), t.install_time)).collect(),
            active: old.active,
            base_count: old.base_count,
            rotation: cfg,
        };
        let blob = encode_keyring(&ring, self.pending_count.load(Ordering::SeqCst))?;
        self.storage.put(KEYRING_PATH, blob).await?;
        *self.keyring.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(ring));
        Ok(())
    }

    /// Rotates when the policy asks for it (operation count or age). Called after writes and
    /// periodically by the core. Returns the new term when it rotated.
    pub async fn check_rotation(&self) -> Result<Option<u32>, BarrierError> {
        let ring = self.current()?;
        if !ring.rotation.enabled {
            return Ok(None);
        }
        let count = ring.base_count + self.pending_count.load(Ordering::Relaxed);
        let aged = ring.rotation.interval > 0
            && (now() - ring.active().install_time).whole_seconds() >= ring.rotation.interval as i64;
        if count >= ring.rotation.max_operations || aged {
            if self.rotating.swap(true, Ordering::SeqCst) {
                return Ok(None);
            }
            let r = self.rotate().await;
            self.rotating.store(false, Ordering::SeqCst);
            return r.map(Some);
        }
        if self.pending_count.load(Ordering::Relaxed) >= COUNT_CHECKPOINT {
            let _guard = self.rotate_lock.lock().await;
            let ring = self.current()?;
            let count = ring.base_count + self.pending_count.load(Ordering::SeqCst);
            let blob = encode_keyring(&ring, self.pending_count.swap(0, Ordering::SeqCst))?;
            self.storage.put(KEYRING_PATH, blob).await?;
            let mut new_ring = Keyring {
                root: ring.root.clone(),
                terms: ring.terms.iter().map(|t| Term::new(t.term, t.key.clone(), t.install_time)).collect(),
                active: ring.active,
                base_count: 0,
                rotation: ring.rotation.clone(),
            };
            new_ring.base_count = count;
            *self.keyring.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(new_ring));
        }
        Ok(None)
    }

    fn encrypt(&self, ring: &Keyring, key: &str, plaintext: &[u8]) -> Result<Vec<u8>, BarrierError> {
        let term = ring.active();
        let sealed = term.cipher.seal(key.as_bytes(), plaintext).map_err(BarrierError::Crypto)?;
        let mut out = Vec::with_capacity(HEADER_LEN + sealed.len());
        out.push(ENTRY_VERSION);
        out.extend_from_slice(&term.term.to_be_bytes());
        out.extend_from_slice(&sealed);
        self.pending_count.fetch_add(1, Ordering::Relaxed);
        Ok(out)
    }

    fn decrypt(&self, ring: &Keyring, key: &str, blob: &[u8]) -> Result<Zeroizing<Vec<u8>>, BarrierError> {
        if blob.len() < HEADER_LEN || blob[0] != ENTRY_VERSION {
            return Err(BarrierError::Corrupt(key.to_string()));
        }
        let t = u32::from_be_bytes([blob[1], blob[2], blob[3], blob[4]]);
        let term = ring.term(t).ok_or_else(|| BarrierError::UnknownTerm(key.to_string(), t))?;
        // drop-cause: a failed open is opaque on purpose (no decryption oracle).
        term.cipher.open(key.as_bytes(), &blob[HEADER_LEN..]).map_err(|_| BarrierError::Corrupt(key.to_string()))
    }
}

fn encode_keyring(ring: &Keyring, pending: u64) -> Result<Vec<u8>, BarrierError> {
    let stored = StoredKeyring {
        active_term: ring.active,
        terms: ring
            .terms
            .iter()
            .map(|t| StoredTerm {
                term: t.term,
                key: B64.encode(t.key.as_bytes()),
                install_time: rfc3339(t.install_time),
                encryptions: if t.term == ring.active { ring.base_count + pending } else { 0 },
            })
            .collect(),
        rotation: ring.rotation.clone(),
    };
    let json = Zeroizing::new(serde_json::to_vec(&stored).map_err(BarrierError::Encode)?);
    coffer_crypto::seal(&ring.root, KEYRING_PATH.as_bytes(), &json).map_err(BarrierError::Crypto)
}

fn decode_keyring(root: &Key, blob: &[u8]) -> Result<Keyring, BarrierError> {
    let json = coffer_crypto::open(root, KEYRING_PATH.as_bytes(), blob)
        // drop-cause: a failed open is opaque on purpose (no decryption oracle).
        .map_err(|_| BarrierError::Corrupt(KEYRING_PATH.into()))?;
    let stored: StoredKeyring =
        // drop-cause: the keyring holds key material, which a JSON error could quote.
        serde_json::from_slice(&json).map_err(|_| BarrierError::Corrupt(KEYRING_PATH.into()))?;
    let mut terms = Vec::with_capacity(stored.terms.len());
    let mut base_count = 0;
    for t in &stored.terms {
        // drop-cause: a base64 error names the offending byte of key material.
        let raw = Zeroizing::new(B64.decode(&t.key).map_err(|_| BarrierError::Corrupt(KEYRING_PATH.into()))?);
        let install_time = time::OffsetDateTime::parse(&t.install_time, &time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|_| now());
        if t.term == stored.active_term {
            base_count = t.encryptions;
        }
        terms.push(Term::new(t.term, Key::from_slice(&raw).map_err(BarrierError::Crypto)?, install_time));
    }
    if !terms.iter().any(|t| t.term == stored.active_term) {
        return Err(BarrierError::Corrupt(KEYRING_PATH.into()));
    }
    Ok(Keyring { root: root.clone(), terms, active: stored.active_term, base_count, rotation: stored.rotation.clone() })
}

/// The plaintext view of storage that everything above the barrier uses.
#[async_trait]
pub trait SecureStorage: Send + Sync {
    async fn get(&self, key: &str) -> Result<Option<Zeroizing<Vec<u8>>>, BarrierError>;
    async fn put(&self, key: &str, value: &[u8]) -> Result<(), BarrierError>;
    async fn delete(&self, key: &str) -> Result<(), BarrierError>;
    async fn list(&self, prefix: &str) -> Result<Vec<String>, BarrierError>;
    /// Atomically applies puts (`Some`) and deletes (`None`).
    async fn transaction(&self, ops: Vec<(String, Option<Vec<u8>>)>) -> Result<(), BarrierError>;
}

/// The storage and barrier timing histograms of one operation, looked up once.
struct OpTimers {
    storage: Option<coffer_metrics::HistogramHandle>,
    barrier: Option<coffer_metrics::HistogramHandle>,
}

/// The timed operations (the hot ones: every request reads or writes).
#[derive(Clone, Copy)]
enum TimedOp {
    Get,
    Put,
}

fn timers(op: TimedOp) -> &'static OpTimers {
    static TIMERS: [OnceLock<OpTimers>; 2] = [OnceLock::new(), OnceLock::new()];
    let name = match op {
        TimedOp::Get => "get",
        TimedOp::Put => "put",
    };
    TIMERS[op as usize].get_or_init(|| {
        let r = coffer_metrics::global();
        OpTimers {
            storage: r.histogram("coffer_storage_op_duration_seconds", &[("op", name)]),
            barrier: r.histogram("coffer_barrier_op_duration_seconds", &[("op", name)]),
        }
    })
}

fn timed(h: &Option<coffer_metrics::HistogramHandle>, started: std::time::Instant) {
    if let Some(h) = h {
        h.observe(started.elapsed());
    }
}

#[async_trait]
impl SecureStorage for Barrier {
    async fn get(&self, key: &str) -> Result<Option<Zeroizing<Vec<u8>>>, BarrierError> {
        if reserved(key) {
            return Err(BarrierError::Reserved(key.into()));
        }
        let t0 = std::time::Instant::now();
        let ring = self.current()?;
        let raw = self.storage.get(key).await?;
        timed(&timers(TimedOp::Get).storage, t0);
        let out = match raw {
            None => Ok(None),
            Some(blob) => self.decrypt(&ring, key, &blob).map(Some),
        };
        timed(&timers(TimedOp::Get).barrier, t0);
        out
    }

    async fn put(&self, key: &str, value: &[u8]) -> Result<(), BarrierError> {
        if reserved(key) {
            return Err(BarrierError::Reserved(key.into()));
        }
        let t0 = std::time::Instant::now();
        let ring = self.current()?;
        let blob = self.encrypt(&ring, key, value)?;
        let t1 = std::time::Instant::now();
        self.storage.put(key, blob).await?;
        timed(&timers(TimedOp::Put).storage, t1);
        self.after_write(&ring).await;
        timed(&timers(TimedOp::Put).barrier, t0);
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), BarrierError> {
        if reserved(key) {
            return Err(BarrierError::Reserved(key.into()));
        }
        self.current()?;
        Ok(self.storage.delete(key).await?)
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, BarrierError> {
        self.current()?;
        let mut keys = self.storage.list(prefix).await?;
        if prefix == "core/" {
            keys.retain(|k| !reserved(&format!("core/{k}")));
        }
        Ok(keys)
    }

    async fn transaction(&self, ops: Vec<(String, Option<Vec<u8>>)>) -> Result<(), BarrierError> {
        let ring = self.current()?;
        let mut phys = Vec::with_capacity(ops.len());
        for (key, value) in ops {
            if reserved(&key) {
                return Err(BarrierError::Reserved(key));
            }
            phys.push(match value {
                Some(mut v) => {
                    let blob = self.encrypt(&ring, &key, &v)?;
                    v.zeroize();
                    TxnOp::Put { key, value: blob }
                }
                None => TxnOp::Delete { key },
            });
        }
        self.storage.transaction(phys).await?;
        self.after_write(&ring).await;
        Ok(())
    }
}

impl Barrier {
    async fn after_write(&self, ring: &Keyring) {
        let pending = self.pending_count.load(Ordering::Relaxed);
        if ring.rotation.enabled && ring.base_count + pending >= ring.rotation.max_operations
            || pending >= COUNT_CHECKPOINT
        {
            let _ = self.check_rotation().await;
        }
    }
}

/// The barrier's errors as a client sees them, in one place for every crate that stores
/// through the barrier: sealed (503), or a generic internal error whose details go to the log
/// and never to the client.
pub fn logical_error(e: BarrierError) -> coffer_sdk::LogicalError {
    use coffer_sdk::{ErrorKind, LogicalError};
    match e {
        BarrierError::Sealed => LogicalError::sealed(),
        e @ (BarrierError::SnapshotIncomplete(_) | BarrierError::SnapshotKeys | BarrierError::SnapshotFile(_)) => {
            LogicalError::bad_request(e.to_string())
        }
        // Fencing (decision 0025): the write was not applied and the node is stepping down;
        // the client may send it again, to the active node.
        BarrierError::Storage(coffer_physical::StorageError::Fenced(m)) => {
            tracing::warn!(error = %m, "write refused by the HA fence");
            LogicalError::new(
                ErrorKind::Unavailable,
                "this node is no longer the active node: the write was refused and not applied; send it to the active node",
            )
        }
        // The storage cannot be reached or has no room (PostgreSQL down, a full disk): 503. A
        // cause (which names hosts and users) stays in the log; a plain message is the
        // backend's own description of the condition, written for the client.
        BarrierError::Storage(coffer_physical::StorageError::UnavailableBecause { context, source }) => {
            tracing::error!(error = %source, context = %context, "storage unavailable");
            LogicalError::new(ErrorKind::Unavailable, "storage backend unavailable (the server's log has the cause)")
        }
        BarrierError::Storage(coffer_physical::StorageError::Unavailable(m)) => {
            tracing::error!(error = %m, "storage unavailable");
            LogicalError::new(ErrorKind::Unavailable, format!("storage backend unavailable: {m}"))
        }
        BarrierError::Storage(s) => {
            tracing::error!(error = %s, "storage failure");
            LogicalError::new(ErrorKind::Internal, "internal error: storage backend failure")
        }
        other => {
            tracing::error!(error = %other, "barrier failure");
            LogicalError::internal("internal error")
        }
    }
}
