//! The token store (the part the foundation needs: root tokens and lookup).
//!
//! Tokens are never stored in plaintext: an entry lives under the HMAC-SHA-256 of the token,
//! keyed by a per-cluster salt kept in the barrier. Lookups are cached in memory.

use crate::error::barrier_err;
use coffer_barrier::{Barrier, SecureStorage};
use coffer_sdk::LogicalError;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use zeroize::Zeroizing;

const SALT_PATH: &str = "sys/token/salt";
const ID_PREFIX: &str = "sys/token/id/";
const ACCESSOR_PREFIX: &str = "sys/token/accessor/";
/// Service token prefix (OpenBao 2.x: `s.`), followed by 24 base62 characters.
pub const SERVICE_TOKEN_PREFIX: &str = "s.";
pub const TOKEN_RANDOM_LEN: usize = 24;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TokenEntry {
    pub accessor: String,
    pub policies: Vec<String>,
    pub path: String,
    #[serde(default)]
    pub meta: Option<Map<String, Value>>,
    pub display_name: String,
    #[serde(default)]
    pub num_uses: i64,
    /// Unix seconds.
    pub creation_time: i64,
    #[serde(default)]
    pub ttl: i64,
    #[serde(default)]
    pub explicit_max_ttl: i64,
    #[serde(default)]
    pub orphan: bool,
    #[serde(default)]
    pub entity_id: String,
    #[serde(default = "service")]
    pub token_type: String,
}

fn service() -> String {
    "service".into()
}

impl TokenEntry {
    pub fn is_root(&self) -> bool {
        self.policies.iter().any(|p| p == "root")
    }

    /// The `data` of a lookup response. `id` is empty for lookups by accessor.
    pub fn lookup_data(&self, id: &str) -> Map<String, Value> {
        let v = json!({
            "accessor": self.accessor,
            "creation_time": self.creation_time,
            "creation_ttl": self.ttl,
            "display_name": self.display_name,
            "entity_id": self.entity_id,
            "expire_time": Value::Null,
            "explicit_max_ttl": self.explicit_max_ttl,
            "id": id,
            "meta": self.meta,
            "num_uses": self.num_uses,
            "orphan": self.orphan,
            "path": self.path,
            "policies": self.policies,
            "ttl": 0,
            "type": self.token_type,
        });
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }
}

pub struct TokenStore {
    barrier: Arc<Barrier>,
    salt: Zeroizing<Vec<u8>>,
    cache: RwLock<HashMap<String, Arc<TokenEntry>>>,
}

/// Generates a fresh service token in OpenBao's format.
pub fn generate_token() -> Result<String, LogicalError> {
    let r = coffer_crypto::random_base62(TOKEN_RANDOM_LEN).map_err(|e| LogicalError::internal(e.to_string()))?;
    Ok(format!("{SERVICE_TOKEN_PREFIX}{r}"))
}

impl TokenStore {
    /// Loads the store, creating its salt on first use.
    pub async fn load(barrier: Arc<Barrier>) -> Result<Self, LogicalError> {
        let salt = match barrier.get(SALT_PATH).await.map_err(barrier_err)? {
            Some(s) => s,
            None => {
                let s = coffer_crypto::random_bytes(32).map_err(|e| LogicalError::internal(e.to_string()))?;
                barrier.put(SALT_PATH, &s).await.map_err(barrier_err)?;
                s
            }
        };
        Ok(TokenStore { barrier, salt, cache: RwLock::new(HashMap::new()) })
    }

    fn hash(&self, value: &str) -> String {
        hex::encode(coffer_crypto::hmac_sha256(&self.salt, value.as_bytes()))
    }

    /// Creates a root token. `id` lets `-dev-root-token-id` choose it.
    pub async fn create_root(&self, id: Option<&str>) -> Result<(String, TokenEntry), LogicalError> {
        let token = match id {
            Some(t) if !t.is_empty() => t.to_string(),
            _ => generate_token()?,
        };
        let accessor =
            coffer_crypto::random_base62(TOKEN_RANDOM_LEN).map_err(|e| LogicalError::internal(e.to_string()))?;
        let entry = TokenEntry {
            accessor,
            policies: vec!["root".into()],
            path: "auth/token/root".into(),
            meta: None,
            display_name: "root".into(),
            num_uses: 0,
            creation_time: time::OffsetDateTime::now_utc().unix_timestamp(),
            ttl: 0,
            explicit_max_ttl: 0,
            orphan: true,
            entity_id: String::new(),
            token_type: "service".into(),
        };
        self.store(&token, &entry).await?;
        Ok((token, entry))
    }

    async fn store(&self, token: &str, entry: &TokenEntry) -> Result<(), LogicalError> {
        let h = self.hash(token);
        let raw = serde_json::to_vec(entry).map_err(|e| LogicalError::internal(e.to_string()))?;
        self.barrier
            .transaction(vec![
                (format!("{ID_PREFIX}{h}"), Some(raw)),
                (format!("{ACCESSOR_PREFIX}{}", self.hash(&entry.accessor)), Some(h.clone().into_bytes())),
            ])
            .await
            .map_err(barrier_err)?;
        self.cache
            .write()
            .map_err(|_| LogicalError::internal("token cache poisoned"))?
            .insert(h, Arc::new(entry.clone()));
        Ok(())
    }

    /// Finds a token's entry. Unknown tokens give `None`.
    pub async fn lookup(&self, token: &str) -> Result<Option<Arc<TokenEntry>>, LogicalError> {
        if token.is_empty() || token.len() > 512 {
            return Ok(None);
        }
        let h = self.hash(token);
        if let Some(e) = self.cache.read().map_err(|_| LogicalError::internal("token cache poisoned"))?.get(&h) {
            return Ok(Some(e.clone()));
        }
        let Some(raw) = self.barrier.get(&format!("{ID_PREFIX}{h}")).await.map_err(barrier_err)? else {
            return Ok(None);
        };
        let entry: TokenEntry =
            serde_json::from_slice(&raw).map_err(|_| LogicalError::internal("token entry is unreadable"))?;
        let entry = Arc::new(entry);
        self.cache.write().map_err(|_| LogicalError::internal("token cache poisoned"))?.insert(h, entry.clone());
        Ok(Some(entry))
    }

    /// Revokes a token (used for the previous dev root token and by later token APIs).
    pub async fn revoke(&self, token: &str) -> Result<(), LogicalError> {
        let h = self.hash(token);
        if let Some(e) = self.lookup(token).await? {
            self.barrier
                .transaction(vec![
                    (format!("{ID_PREFIX}{h}"), None),
                    (format!("{ACCESSOR_PREFIX}{}", self.hash(&e.accessor)), None),
                ])
                .await
                .map_err(barrier_err)?;
        }
        self.cache.write().map_err(|_| LogicalError::internal("token cache poisoned"))?.remove(&h);
        Ok(())
    }
}
