//! The token store.
//!
//! Service tokens are persisted under the HMAC-SHA-256 of the token (keyed by a per-cluster
//! salt in the barrier) — never in plaintext — with an accessor index and a parent → child
//! index so revoking a parent revokes its tree. Batch tokens are not persisted: the entry is
//! sealed (AES-256-GCM, key in the barrier) into the token itself. Lookups are cached.
//!
//! Errors are [`TokenError`]; the core turns them into logical errors through the
//! `From<TokenError> for LogicalError` below (the client-facing messages and kinds).

#![forbid(unsafe_code)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use coffer_barrier::{Barrier, BarrierError, SecureStorage};
use coffer_crypto::CryptoError;
use coffer_sdk::LogicalError;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use zeroize::Zeroizing;

const SALT_PATH: &str = "sys/token/salt";
/// Most token entries kept in the lookup cache; past it the cache starts over, so memory
/// stays bounded whatever the number of stored tokens.
const CACHE_MAX: usize = 50_000;
const BATCH_KEY_PATH: &str = "sys/token/batch-key";
pub const ID_PREFIX: &str = "sys/token/id/";
const ACCESSOR_PREFIX: &str = "sys/token/accessor/";
const PARENT_PREFIX: &str = "sys/token/parent/";
pub const ROLE_PREFIX: &str = "sys/token/roles/";
/// Service token prefix (OpenBao 2.x: `s.`), followed by 24 base62 characters.
pub const SERVICE_TOKEN_PREFIX: &str = "s.";
pub const BATCH_TOKEN_PREFIX: &str = "b.";
pub const TOKEN_RANDOM_LEN: usize = 24;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct TokenEntry {
    #[serde(default)]
    pub accessor: String,
    pub policies: Vec<String>,
    pub path: String,
    #[serde(default)]
    pub meta: Option<Map<String, Value>>,
    pub display_name: String,
    /// Remaining uses; 0 = unlimited.
    #[serde(default)]
    pub num_uses: i64,
    /// Unix seconds.
    pub creation_time: i64,
    /// The TTL the token was created with (seconds; 0 = no expiry).
    #[serde(default)]
    pub ttl: i64,
    /// Unix seconds; 0 = never.
    #[serde(default)]
    pub expire_time: i64,
    #[serde(default)]
    pub explicit_max_ttl: i64,
    #[serde(default)]
    pub period: i64,
    #[serde(default)]
    pub renewable: bool,
    #[serde(default)]
    pub orphan: bool,
    /// Storage hash of the parent token.
    #[serde(default)]
    pub parent: Option<String>,
    #[serde(default)]
    pub entity_id: String,
    #[serde(default = "service")]
    pub token_type: String,
    #[serde(default)]
    pub role: String,
    #[serde(default)]
    pub bound_cidrs: Vec<String>,
    #[serde(default)]
    pub last_renewal_time: i64,
    /// The increment of the last renewal that asked for one: a later renewal without an
    /// increment asks for it again (OpenBao keeps it with the token's lease); 0 = the TTL.
    #[serde(default)]
    pub last_increment: i64,
    /// Issuing mount's max TTL at creation (seconds; 0 = the system's).
    #[serde(default)]
    pub max_ttl: i64,
    /// The mount accessor of the auth method that issued it.
    #[serde(default)]
    pub mount_accessor: String,
    /// What the issuing auth method keeps for its renewals (`AuthResponse::internal_data`):
    /// never shown in lookups; absent for tokens not issued by such a login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internal: Option<InternalData>,
}

/// An auth method's renewal data kept with a token: serialised as the bare object, and never
/// printed by `Debug` (it may hold a credential, e.g. LDAP's password for re-binding).
#[derive(Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(transparent)]
pub struct InternalData(pub Map<String, Value>);

impl std::fmt::Debug for InternalData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InternalData").field("keys", &self.0.keys().collect::<Vec<_>>()).finish()
    }
}

fn service() -> String {
    "service".into()
}

pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// The current time in RFC 3339 with nanoseconds, as Go prints a `time.Time`.
pub fn rfc3339_now() -> String {
    time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

fn rfc3339(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| d.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

impl TokenEntry {
    pub fn is_root(&self) -> bool {
        self.policies.iter().any(|p| p == "root")
    }

    pub fn is_expired(&self, at: i64) -> bool {
        (self.expire_time > 0 && self.expire_time <= at) || self.num_uses < 0
    }

    /// Remaining TTL in seconds (0 when the token never expires).
    pub fn remaining(&self, at: i64) -> i64 {
        if self.expire_time == 0 {
            0
        } else {
            (self.expire_time - at).max(0)
        }
    }

    /// The `data` of a lookup response. `id` is empty for lookups by accessor.
    pub fn lookup_data(&self, id: &str, identity_policies: &[String]) -> Map<String, Value> {
        let at = now();
        let mut m = json!({
            "accessor": self.accessor,
            "creation_time": self.creation_time,
            "creation_ttl": self.ttl,
            "display_name": self.display_name,
            "entity_id": self.entity_id,
            "expire_time": if self.expire_time == 0 { Value::Null } else { Value::String(rfc3339(self.expire_time)) },
            "explicit_max_ttl": self.explicit_max_ttl,
            "id": id,
            "issue_time": rfc3339(self.creation_time),
            "meta": self.meta,
            "num_uses": self.num_uses,
            "orphan": self.orphan,
            "path": self.path,
            "policies": self.policies,
            "renewable": self.renewable,
            "ttl": self.remaining(at),
            "type": self.token_type,
        });
        if let Value::Object(o) = &mut m {
            if self.period > 0 {
                o.insert("period".into(), json!(self.period));
            }
            if !self.role.is_empty() {
                o.insert("role".into(), json!(self.role));
            }
            if self.last_renewal_time > 0 {
                o.insert("last_renewal_time".into(), json!(self.last_renewal_time));
                o.insert("last_renewal".into(), json!(rfc3339(self.last_renewal_time)));
            }
            if !self.bound_cidrs.is_empty() {
                o.insert("bound_cidrs".into(), json!(self.bound_cidrs));
            }
            if !identity_policies.is_empty() {
                o.insert("identity_policies".into(), json!(identity_policies));
            }
        }
        match m {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }
}

/// A role for `auth/token/create/<role>`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct TokenRole {
    pub name: String,
    #[serde(default)]
    pub allowed_policies: Vec<String>,
    #[serde(default)]
    pub disallowed_policies: Vec<String>,
    #[serde(default)]
    pub allowed_policies_glob: Vec<String>,
    #[serde(default)]
    pub disallowed_policies_glob: Vec<String>,
    #[serde(default)]
    pub orphan: bool,
    #[serde(default = "yes")]
    pub renewable: bool,
    #[serde(default)]
    pub path_suffix: String,
    /// `None` until set (a read shows null, as OpenBao's does).
    #[serde(default)]
    pub allowed_entity_aliases: Option<Vec<String>>,
    /// The deprecated `explicit_max_ttl` and `period` as last given (0 once the `token_`
    /// names replaced them): a read shows both spellings with their own values, as OpenBao does.
    #[serde(default)]
    pub legacy_explicit_max_ttl: i64,
    #[serde(default)]
    pub legacy_period: i64,
    #[serde(default)]
    pub token: coffer_sdk::tokenutil::TokenParams,
}

fn yes() -> bool {
    true
}

pub struct TokenStore {
    barrier: Arc<Barrier>,
    /// Hashes of tokens revoked since the core last drained them (to revoke their leases).
    revoked: std::sync::Mutex<Vec<Revoked>>,
    salt: coffer_crypto::HmacKey,
    batch_key: coffer_crypto::Key,
    /// Keyed by token HMAC (not chosen by clients), so a fast hasher is safe here.
    cache: RwLock<HashMap<String, Arc<TokenEntry>, foldhash::fast::RandomState>>,
}

/// A token revoked since the core last asked ([`TokenStore::take_revoked`]): its leases, and
/// its own lease, are for the core to revoke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revoked {
    /// The token's storage hash.
    pub hash: String,
    /// The path it was created at (`auth/userpass/login/bob`), which names its own lease;
    /// empty when its entry was already gone.
    pub path: String,
}

/// What the token store can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    #[error(transparent)]
    Storage(#[from] BarrierError),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error(transparent)]
    Encode(#[from] serde_json::Error),
    #[error("token entry is unreadable")]
    UnreadableEntry(#[source] serde_json::Error),
    #[error("token role is unreadable")]
    UnreadableRole(#[source] serde_json::Error),
    #[error("cannot create a token with a duplicate ID")]
    DuplicateId,
    #[error("batch tokens cannot be revoked")]
    BatchNotRevocable,
}

/// The client's mistakes are 400s; storage failures map as everywhere in the core (details
/// logged, a generic message returned); the rest are internal errors with their message.
impl From<TokenError> for LogicalError {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::Storage(b) => coffer_barrier::logical_error(b),
            TokenError::DuplicateId | TokenError::BatchNotRevocable => LogicalError::bad_request(e.to_string()),
            other => LogicalError::internal(other.to_string()).with_source(other),
        }
    }
}

type Result<T, E = TokenError> = std::result::Result<T, E>;

/// Where a token's cubbyhole lives (by the token's storage hash); it goes with the token.
pub fn cubbyhole_prefix(token_hash: &str) -> String {
    format!("cubbyhole/{token_hash}/")
}

/// Generates a fresh service token in OpenBao's format.
pub fn generate_token() -> Result<String> {
    let r = coffer_crypto::random_base62(TOKEN_RANDOM_LEN)?;
    Ok(format!("{SERVICE_TOKEN_PREFIX}{r}"))
}

impl TokenStore {
    /// Loads the store, creating its salt and batch key on first use.
    pub async fn load(barrier: Arc<Barrier>) -> Result<Self> {
        let mut secrets = Vec::new();
        for path in [SALT_PATH, BATCH_KEY_PATH] {
            let v = match barrier.get(path).await? {
                Some(s) => s,
                None => {
                    let s = coffer_crypto::random_bytes(32)?;
                    barrier.put(path, &s).await?;
                    s
                }
            };
            secrets.push(v);
        }
        let batch_key = coffer_crypto::Key::from_slice(&secrets[1])?;
        let salt = coffer_crypto::HmacKey::new(&secrets[0]);
        Ok(TokenStore { barrier, revoked: Default::default(), salt, batch_key, cache: RwLock::new(HashMap::default()) })
    }

    fn cache_insert(&self, h: String, e: Arc<TokenEntry>) -> Result<()> {
        let mut c = self.cache.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if c.len() >= CACHE_MAX {
            coffer_sdk::cache::drop_elsewhere(std::mem::take(&mut *c));
        }
        c.insert(h, e);
        Ok(())
    }

    pub fn hash(&self, value: &str) -> String {
        hex::encode(self.salt.sign(value.as_bytes()))
    }

    /// Creates a root token. `id` lets `-dev-root-token-id` choose it.
    pub async fn create_root(&self, id: Option<&str>) -> Result<(String, TokenEntry)> {
        // A root token with a chosen ID (the dev server's `-dev-root-token-id`) is made as
        // OpenBao makes it, through the token store's create path: clients see it as `token`
        // (the database engine puts that name in the users it creates).
        let chosen = id.is_some_and(|t| !t.is_empty());
        let entry = TokenEntry {
            policies: vec!["root".into()],
            path: if chosen { "auth/token/create" } else { "auth/token/root" }.into(),
            display_name: if chosen { "token" } else { "root" }.into(),
            creation_time: now(),
            orphan: true,
            token_type: "service".into(),
            ..Default::default()
        };
        self.create(entry, id).await
    }

    /// Persists a new token (or seals a batch token); returns the token and its entry.
    pub async fn create(&self, mut entry: TokenEntry, id: Option<&str>) -> Result<(String, TokenEntry)> {
        // OpenBao keeps a token's policies sorted, and clients see them in that order.
        entry.policies.sort();
        entry.policies.dedup();
        if entry.token_type == "batch" {
            entry.accessor.clear();
            let plain = Zeroizing::new(serde_json::to_vec(&entry)?);
            let sealed = coffer_crypto::seal(&self.batch_key, b"batch-token", &plain)?;
            return Ok((format!("{BATCH_TOKEN_PREFIX}{}", B64URL.encode(sealed)), entry));
        }
        let token = match id {
            Some(t) if !t.is_empty() => {
                if self.lookup_raw(t).await?.is_some() {
                    return Err(TokenError::DuplicateId);
                }
                t.to_string()
            }
            _ => generate_token()?,
        };
        entry.accessor = coffer_crypto::random_base62(TOKEN_RANDOM_LEN)?;
        let h = self.hash(&token);
        let mut ops = vec![
            (format!("{ID_PREFIX}{h}"), Some(serde_json::to_vec(&entry)?)),
            (format!("{ACCESSOR_PREFIX}{}", self.hash(&entry.accessor)), Some(h.clone().into_bytes())),
        ];
        if let Some(p) = &entry.parent {
            ops.push((format!("{PARENT_PREFIX}{p}/{h}"), Some(Vec::new())));
        }
        self.barrier.transaction(ops).await?;
        self.cache_insert(h, Arc::new(entry.clone()))?;
        Ok((token, entry))
    }

    async fn lookup_raw(&self, token: &str) -> Result<Option<Arc<TokenEntry>>> {
        if let Some(rest) = token.strip_prefix(BATCH_TOKEN_PREFIX) {
            let Ok(blob) = B64URL.decode(rest) else { return Ok(None) };
            let Ok(plain) = coffer_crypto::open(&self.batch_key, b"batch-token", &blob) else { return Ok(None) };
            return Ok(serde_json::from_slice::<TokenEntry>(&plain).ok().map(Arc::new));
        }
        self.lookup_hash(&self.hash(token)).await
    }

    async fn lookup_hash(&self, h: &str) -> Result<Option<Arc<TokenEntry>>> {
        if let Some(e) = self.cache.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(h) {
            return Ok(Some(e.clone()));
        }
        let Some(raw) = self.barrier.get(&format!("{ID_PREFIX}{h}")).await? else {
            return Ok(None);
        };
        let entry: TokenEntry = serde_json::from_slice(&raw).map_err(TokenError::UnreadableEntry)?;
        let entry = Arc::new(entry);
        self.cache_insert(h.to_string(), entry.clone())?;
        Ok(Some(entry))
    }

    /// Finds a live token's entry. Unknown, expired or used-up tokens give `None`; expired
    /// service tokens are revoked on the way.
    pub async fn lookup(&self, token: &str) -> Result<Option<Arc<TokenEntry>>> {
        if token.is_empty() || token.len() > 4096 {
            return Ok(None);
        }
        let Some(e) = self.lookup_raw(token).await? else { return Ok(None) };
        if e.is_expired(now()) {
            if e.token_type != "batch" {
                // Boxed: the revocation's state would otherwise be part of every lookup.
                Box::pin(self.revoke_hash(&self.hash(token), true)).await?;
            }
            return Ok(None);
        }
        Ok(Some(e))
    }

    /// Storage hash of a token's accessor target, or None.
    pub async fn hash_for_accessor(&self, accessor: &str) -> Result<Option<String>> {
        if accessor.is_empty() {
            return Ok(None);
        }
        let v = self.barrier.get(&format!("{ACCESSOR_PREFIX}{}", self.hash(accessor))).await?;
        Ok(v.map(|b| String::from_utf8_lossy(&b).into_owned()))
    }

    pub async fn lookup_accessor(&self, accessor: &str) -> Result<Option<(String, Arc<TokenEntry>)>> {
        let Some(h) = self.hash_for_accessor(accessor).await? else { return Ok(None) };
        let Some(e) = self.lookup_hash(&h).await? else { return Ok(None) };
        if e.is_expired(now()) {
            self.revoke_hash(&h, true).await?;
            return Ok(None);
        }
        Ok(Some((h, e)))
    }

    /// Counts one use of a token with a use limit. On its last use the token must be revoked
    /// after the request (as Vault does): the hash to revoke is returned.
    pub async fn use_token(&self, token: &str, entry: &TokenEntry) -> Result<Option<String>> {
        if entry.num_uses == 0 || entry.token_type == "batch" {
            return Ok(None);
        }
        let h = self.hash(token);
        let mut e = entry.clone();
        e.num_uses -= 1;
        if e.num_uses <= 0 {
            // Mark it spent now so no concurrent request can use it; revoke after.
            e.num_uses = -1;
            e.expire_time = now();
            self.save(&h, &e).await?;
            return Ok(Some(h));
        }
        self.save(&h, &e).await?;
        Ok(None)
    }

    pub async fn save(&self, h: &str, e: &TokenEntry) -> Result<()> {
        self.barrier.put(&format!("{ID_PREFIX}{h}"), &serde_json::to_vec(e)?).await?;
        self.cache_insert(h.to_string(), Arc::new(e.clone()))?;
        Ok(())
    }

    /// Revokes by token. `tree`: children too (otherwise they become orphans).
    pub async fn revoke(&self, token: &str, tree: bool) -> Result<()> {
        if token.starts_with(BATCH_TOKEN_PREFIX) {
            return Err(TokenError::BatchNotRevocable);
        }
        self.revoke_hash(&self.hash(token), tree).await
    }

    /// Revokes a token by storage hash, depth-first through its children.
    pub async fn revoke_hash(&self, h: &str, tree: bool) -> Result<()> {
        let mut stack = vec![h.to_string()];
        let mut order = Vec::new();
        while let Some(cur) = stack.pop() {
            let children = self.barrier.list(&format!("{PARENT_PREFIX}{cur}/")).await?;
            if tree {
                stack.extend(children.iter().map(|c| c.trim_end_matches('/').to_string()));
            } else {
                for c in &children {
                    if let Some(ce) = self.lookup_hash(c).await? {
                        let mut ce = (*ce).clone();
                        ce.parent = None;
                        ce.orphan = true;
                        self.save(c, &ce).await?;
                    }
                    self.barrier.delete(&format!("{PARENT_PREFIX}{cur}/{c}")).await?;
                }
            }
            order.push(cur);
        }
        for cur in order.into_iter().rev() {
            let entry = self.lookup_hash(&cur).await?;
            let mut ops: Vec<(String, Option<Vec<u8>>)> = vec![(format!("{ID_PREFIX}{cur}"), None)];
            if let Some(e) = &entry {
                if !e.accessor.is_empty() {
                    ops.push((format!("{ACCESSOR_PREFIX}{}", self.hash(&e.accessor)), None));
                }
                if let Some(p) = &e.parent {
                    ops.push((format!("{PARENT_PREFIX}{p}/{cur}"), None));
                }
            }
            for c in self.barrier.list(&format!("{PARENT_PREFIX}{cur}/")).await? {
                ops.push((format!("{PARENT_PREFIX}{cur}/{c}"), None));
            }
            self.barrier.transaction(ops).await?;
            self.delete_tree(&cubbyhole_prefix(&cur)).await?;
            let path = entry.as_ref().map(|e| e.path.clone()).unwrap_or_default();
            self.revoked
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(Revoked { hash: cur.clone(), path });
            self.cache.write().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&cur);
        }
        Ok(())
    }

    /// Revokes every token issued by the auth mount with this accessor (on disable).
    pub async fn revoke_by_mount(&self, mount_accessor: &str) -> Result<usize> {
        let mut n = 0;
        for h in self.barrier.list(ID_PREFIX).await? {
            if let Some(e) = self.lookup_hash(&h).await? {
                if e.mount_accessor == mount_accessor {
                    self.revoke_hash(&h, true).await?;
                    n += 1;
                }
            }
        }
        Ok(n)
    }

    /// Takes the hashes of tokens revoked since the last call.
    /// Whether any revoked token's leases still wait to be revoked.
    pub fn has_revoked(&self) -> bool {
        !self.revoked.lock().unwrap_or_else(std::sync::PoisonError::into_inner).is_empty()
    }

    pub fn take_revoked(&self) -> Vec<Revoked> {
        std::mem::take(&mut *self.revoked.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// A token's entry by storage hash (for lease renewal).
    pub async fn entry_by_hash(&self, h: &str) -> Result<Option<TokenEntry>> {
        Ok(self.lookup_hash(h).await?.map(|e| (*e).clone()))
    }

    /// Deletes every entry below `prefix` (a revoked token's cubbyhole).
    async fn delete_tree(&self, prefix: &str) -> Result<()> {
        let mut stack = vec![prefix.to_string()];
        while let Some(p) = stack.pop() {
            for k in self.barrier.list(&p).await? {
                let full = format!("{p}{k}");
                if k.ends_with('/') {
                    stack.push(full);
                } else {
                    self.barrier.delete(&full).await?;
                }
            }
        }
        Ok(())
    }

    /// All accessors (for `auth/token/accessors`).
    pub async fn accessors(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for k in self.barrier.list(ACCESSOR_PREFIX).await? {
            let Some(h) = self.barrier.get(&format!("{ACCESSOR_PREFIX}{k}")).await? else {
                continue;
            };
            let h = String::from_utf8_lossy(&h).into_owned();
            if let Some(e) = self.lookup_hash(&h).await? {
                out.push(e.accessor.clone());
            }
        }
        out.sort();
        Ok(out)
    }

    /// Removes expired tokens and index entries that point nowhere.
    pub async fn tidy(&self) -> Result<usize> {
        let at = now();
        let mut removed = 0;
        for h in self.barrier.list(ID_PREFIX).await? {
            if let Some(e) = self.lookup_hash(&h).await? {
                if e.is_expired(at) {
                    self.revoke_hash(&h, true).await?;
                    removed += 1;
                }
            }
        }
        for k in self.barrier.list(ACCESSOR_PREFIX).await? {
            let path = format!("{ACCESSOR_PREFIX}{k}");
            if let Some(h) = self.barrier.get(&path).await? {
                if self.lookup_hash(&String::from_utf8_lossy(&h)).await?.is_none() {
                    self.barrier.delete(&path).await?;
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }

    pub async fn role(&self, name: &str) -> Result<Option<TokenRole>> {
        let Some(raw) = self.barrier.get(&format!("{ROLE_PREFIX}{name}")).await? else {
            return Ok(None);
        };
        serde_json::from_slice(&raw).map(Some).map_err(TokenError::UnreadableRole)
    }

    pub async fn put_role(&self, role: &TokenRole) -> Result<()> {
        self.barrier
            .put(&format!("{ROLE_PREFIX}{}", role.name), &serde_json::to_vec(role)?)
            .await
            .map_err(TokenError::from)
    }

    pub async fn delete_role(&self, name: &str) -> Result<()> {
        self.barrier.delete(&format!("{ROLE_PREFIX}{name}")).await.map_err(TokenError::from)
    }

    pub async fn roles(&self) -> Result<Vec<String>> {
        self.barrier.list(ROLE_PREFIX).await.map_err(TokenError::from)
    }
}
