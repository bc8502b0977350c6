//! The expiration manager's store: the leases of dynamic secrets and of service tokens, and
//! the indexes that find them. The core decides what revoking a lease means (telling the
//! backend that issued it, or revoking the token) and when the sweeper runs; this crate keeps
//! the entries, in the barrier, and nothing per lease in memory:
//! - `sys/expire/id/<lease id>`: the lease (its id is the issuing path plus a random suffix,
//!   so `sys/leases/lookup/<prefix>` lists like a directory);
//! - `sys/expire/time/<minute>/<escaped id>`: a time index the sweeper walks in order, so it
//!   only ever reads the leases that are due;
//! - `sys/expire/token/<token hash>/<escaped id>`: leases to revoke with their token.
#![forbid(unsafe_code)]

use coffer_barrier::{Barrier, BarrierError, SecureStorage};
use coffer_crypto::CryptoError;
use coffer_sdk::LogicalError;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::sync::Arc;

const ID: &str = "sys/expire/id/";
const TIME: &str = "sys/expire/time/";
const BY_TOKEN: &str = "sys/expire/token/";

/// One lease, as stored under `sys/expire/id/<id>`.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Lease {
    /// The lease id: the issuing path, `/`, a random suffix (or the token hash).
    pub id: String,
    /// Request path that issued it (relative to the API root).
    pub path: String,
    /// When it was issued (Unix seconds).
    pub issue_time: i64,
    /// When it expires (Unix seconds).
    pub expire_time: i64,
    /// The latest it may be renewed to (Unix seconds).
    pub max_expire: i64,
    /// When it was last renewed (Unix seconds; 0: never).
    #[serde(default)]
    pub last_renewal: i64,
    /// Whether it may be renewed.
    pub renewable: bool,
    /// The TTL it was issued with (seconds).
    pub ttl: i64,
    /// Storage hash of the token that obtained it (empty for token leases).
    #[serde(default)]
    pub token_hash: String,
    /// For token leases: the token's storage hash; revoking the lease revokes the token.
    #[serde(default)]
    pub revokes_token: Option<String>,
    /// What the issuing backend needs to revoke or renew the secret.
    #[serde(default)]
    pub internal: Map<String, Value>,
    /// Failed revocation attempts so far (the backend refused or could not reach its system).
    #[serde(default)]
    pub revoke_failures: u32,
    /// With failures: no new attempt before this time (Unix seconds), doubling up to 5 minutes.
    #[serde(default)]
    pub next_revoke_attempt: i64,
}

impl Lease {
    /// The lease of a secret a backend returned at `path`, for the token whose storage hash is
    /// `token_hash`: its TTL is the secret's (else the mount's default), capped by the secret's
    /// maximum and the mount's; its id is the path with a random suffix.
    pub fn for_secret(
        path: &str,
        token_hash: &str,
        secret: &coffer_sdk::SecretLease,
        mount_default: i64,
        mount_max: i64,
        now: i64,
    ) -> Result<Lease> {
        let suffix = coffer_crypto::random_base62(24)?;
        let max = if secret.max_ttl > 0 { secret.max_ttl.min(mount_max) } else { mount_max };
        let ttl = if secret.ttl > 0 { secret.ttl.min(max) } else { mount_default.min(max) };
        Ok(Lease {
            id: format!("{}/{suffix}", path.trim_end_matches('/')),
            path: path.to_string(),
            issue_time: now,
            expire_time: now + ttl,
            max_expire: now + max,
            renewable: secret.renewable,
            ttl,
            token_hash: token_hash.to_string(),
            internal: secret.internal.clone(),
            ..Default::default()
        })
    }

    /// The id of the lease of the service token with storage hash `token_hash` created at
    /// `path`.
    pub fn token_lease_id(path: &str, token_hash: &str) -> String {
        format!("{}/{token_hash}", path.trim_end_matches('/'))
    }

    /// The lease as `sys/leases/lookup` shows it, `now` being the current Unix time.
    pub fn to_json(&self, now: i64) -> Map<String, Value> {
        let m = json!({
            "id": self.id,
            "issue_time": rfc3339(self.issue_time),
            "expire_time": rfc3339(self.expire_time),
            "last_renewal": rfc3339(self.last_renewal),
            "renewable": self.renewable,
            "ttl": (self.expire_time - now).max(0),
        });
        match m {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }
}

/// Why the lease store failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExpirationError {
    /// The barrier failed (sealed, storage error).
    #[error(transparent)]
    Storage(#[from] BarrierError),
    /// No randomness for a lease id.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// A lease could not be encoded.
    #[error("lease entry cannot be encoded")]
    Encode(#[source] serde_json::Error),
    /// A stored lease could not be read back.
    #[error("lease entry is unreadable")]
    Unreadable(#[source] serde_json::Error),
}

/// Storage failures map as everywhere in the core (details logged, a generic message
/// returned); the rest are internal errors with their message.
impl From<ExpirationError> for LogicalError {
    fn from(e: ExpirationError) -> Self {
        match e {
            ExpirationError::Storage(b) => coffer_barrier::logical_error(b),
            other => LogicalError::internal(other.to_string()).with_source(other),
        }
    }
}

type Result<T> = std::result::Result<T, ExpirationError>;

/// The expiry index bucket of a time: its minute, zero-padded so names sort numerically.
fn bucket(t: i64) -> String {
    bucket_name(t.max(0) / 60)
}

fn bucket_name(minute: i64) -> String {
    format!("{minute:012}")
}

fn escape(id: &str) -> String {
    hex::encode(id.as_bytes())
}

fn unescape(s: &str) -> Option<String> {
    hex::decode(s).ok().and_then(|b| String::from_utf8(b).ok())
}

fn rfc3339(t: i64) -> Value {
    if t == 0 {
        return Value::Null;
    }
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| d.format(&time::format_description::well_known::Rfc3339).ok())
        .map(Value::String)
        .unwrap_or(Value::Null)
}

/// An entry of one of the indexes (by due time, by token): its key, and the lease id it names
/// (`None` when the key is not one this store wrote).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    /// The key under the index's prefix.
    pub key: String,
    /// The lease it names.
    pub lease_id: Option<String>,
}

/// The leases in the barrier, with their indexes.
#[derive(Clone)]
pub struct LeaseStore {
    barrier: Arc<Barrier>,
}

impl LeaseStore {
    /// The store over `barrier`.
    pub fn new(barrier: Arc<Barrier>) -> Self {
        LeaseStore { barrier }
    }

    /// Stores `l` with its index entries, in one transaction; `old_expire` is the expiry the
    /// lease had before (a renewal), whose time index entry goes.
    pub async fn put(&self, l: &Lease, old_expire: Option<i64>) -> Result<()> {
        let raw = serde_json::to_vec(l).map_err(ExpirationError::Encode)?;
        let mut ops = vec![(format!("{ID}{}", l.id), Some(raw))];
        if let Some(old) = old_expire.filter(|o| *o != l.expire_time) {
            ops.push((format!("{TIME}{}/{}", bucket(old), escape(&l.id)), None));
        }
        ops.push((format!("{TIME}{}/{}", bucket(l.expire_time), escape(&l.id)), Some(Vec::new())));
        if !l.token_hash.is_empty() {
            ops.push((format!("{BY_TOKEN}{}/{}", l.token_hash, escape(&l.id)), Some(Vec::new())));
        }
        Ok(self.barrier.transaction(ops).await?)
    }

    /// The lease with id `id`. Ids come from clients: one that cannot be a storage key names
    /// no lease.
    pub async fn get(&self, id: &str) -> Result<Option<Lease>> {
        if id.is_empty() || id.contains("..") || id.contains('\0') {
            return Ok(None);
        }
        match self.barrier.get(&format!("{ID}{id}")).await? {
            Some(raw) => serde_json::from_slice(&raw).map(Some).map_err(ExpirationError::Unreadable),
            None => Ok(None),
        }
    }

    /// Removes the lease and its index entries, in one transaction (after the core revoked
    /// what it leased).
    pub async fn remove(&self, l: &Lease) -> Result<()> {
        let mut ops =
            vec![(format!("{ID}{}", l.id), None), (format!("{TIME}{}/{}", bucket(l.expire_time), escape(&l.id)), None)];
        if !l.token_hash.is_empty() {
            ops.push((format!("{BY_TOKEN}{}/{}", l.token_hash, escape(&l.id)), None));
        }
        Ok(self.barrier.transaction(ops).await?)
    }

    /// The names one level below `prefix` (lease ids and `sub/` prefixes), as
    /// `sys/leases/lookup/<prefix>` lists them.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        Ok(self.barrier.list(&format!("{ID}{prefix}")).await?)
    }

    /// Every lease id under `prefix` (depth first), the lease named `prefix` itself included.
    pub async fn ids_under(&self, prefix: &str) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let start = prefix.trim_start_matches('/');
        if let Some(l) = self.get(start.trim_end_matches('/')).await? {
            out.push(l.id);
        }
        let mut stack =
            vec![if start.is_empty() || start.ends_with('/') { start.to_string() } else { format!("{start}/") }];
        while let Some(p) = stack.pop() {
            for k in self.barrier.list(&format!("{ID}{p}")).await? {
                if k.ends_with('/') {
                    stack.push(format!("{p}{k}"));
                } else {
                    out.push(format!("{p}{k}"));
                }
            }
        }
        Ok(out)
    }

    /// The leases obtained by the token with storage hash `token_hash`.
    pub async fn of_token(&self, token_hash: &str) -> Result<Vec<IndexEntry>> {
        let keys = self.barrier.list(&format!("{BY_TOKEN}{token_hash}/")).await?;
        Ok(keys.into_iter().map(|key| IndexEntry { lease_id: unescape(&key), key }).collect())
    }

    /// Drops one entry of a token's index (once its lease is revoked).
    pub async fn forget_of_token(&self, token_hash: &str, entry: &IndexEntry) -> Result<()> {
        Ok(self.barrier.delete(&format!("{BY_TOKEN}{token_hash}/{}", entry.key)).await?)
    }

    /// The minutes that have leases due at or before `current` (a minute, Unix time / 60):
    /// with `from`, the minutes from there on (the sweeper's own bookmark), without it every
    /// minute in the time index up to `current`.
    pub async fn due_minutes(&self, from: Option<i64>, current: i64) -> Result<Vec<i64>> {
        if let Some(first) = from {
            return Ok((first.min(current)..=current).collect());
        }
        let mut all = Vec::new();
        for b in self.barrier.list(TIME).await? {
            match b.trim_end_matches('/').parse::<i64>() {
                Ok(n) if n <= current => all.push(n),
                Ok(_) => break,
                Err(_) => continue,
            }
        }
        Ok(all)
    }

    /// The time index entries of one minute.
    pub async fn due_in(&self, minute: i64) -> Result<Vec<IndexEntry>> {
        let keys = self.barrier.list(&format!("{TIME}{}/", bucket_name(minute))).await?;
        Ok(keys.into_iter().map(|key| IndexEntry { lease_id: unescape(&key), key }).collect())
    }

    /// Drops one time index entry whose lease is gone.
    pub async fn forget_due(&self, minute: i64, entry: &IndexEntry) -> Result<()> {
        Ok(self.barrier.delete(&format!("{TIME}{}/{}", bucket_name(minute), entry.key)).await?)
    }

    /// Drops the time index entries whose lease is gone (or that name none); returns how many.
    pub async fn tidy(&self) -> Result<usize> {
        let mut removed = 0;
        for b in self.barrier.list(TIME).await? {
            for k in self.barrier.list(&format!("{TIME}{b}")).await? {
                let stale = match unescape(&k) {
                    Some(id) => self.get(&id).await?.is_none(),
                    None => true,
                };
                if stale {
                    self.barrier.delete(&format!("{TIME}{b}{k}")).await?;
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }
}
