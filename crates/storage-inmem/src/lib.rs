//! In-memory storage: for `-dev` servers and tests. Nothing survives a restart.
#![forbid(unsafe_code)]

use async_trait::async_trait;
use coffer_physical::{check_key, Storage, StorageError, TxnOp};
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::RwLock;

#[derive(Default)]
pub struct InmemStorage {
    map: RwLock<BTreeMap<String, Vec<u8>>>,
}

impl InmemStorage {
    pub fn new() -> Self {
        Self::default()
    }
}

fn poisoned<T>(_: T) -> StorageError {
    StorageError::Backend("in-memory storage lock poisoned".into())
}

#[async_trait]
impl Storage for InmemStorage {
    async fn export(&self) -> Result<Vec<(String, Vec<u8>)>, StorageError> {
        let map = self.map.read().map_err(poisoned)?;
        Ok(map.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
    }
    async fn replace_all(&self, entries: Vec<(String, Vec<u8>)>) -> Result<(), StorageError> {
        for (k, _) in &entries {
            check_key(k)?;
        }
        *self.map.write().map_err(poisoned)? = entries.into_iter().collect();
        Ok(())
    }
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        check_key(key)?;
        Ok(self.map.read().map_err(poisoned)?.get(key).cloned())
    }
    async fn put(&self, key: &str, value: Vec<u8>) -> Result<(), StorageError> {
        check_key(key)?;
        self.map.write().map_err(poisoned)?.insert(key.to_string(), value);
        Ok(())
    }
    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        check_key(key)?;
        self.map.write().map_err(poisoned)?.remove(key);
        Ok(())
    }
    async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        // Skip-scan: one ordered seek per child, so listing a folder costs O(children · log n)
        // however many keys sit below it (the lease index holds one key per token). A scan of
        // every key under the prefix held the lock, and the only worker, for tens of ms at 10^5.
        let map = self.map.read().map_err(poisoned)?;
        let mut out = Vec::new();
        let mut from = Bound::Included(prefix.to_string());
        while let Some((k, _)) = map.range::<str, _>((from.as_ref().map(String::as_str), Bound::Unbounded)).next() {
            let Some(rest) = k.strip_prefix(prefix) else { break };
            match rest.find('/') {
                Some(i) => {
                    out.push(rest[..=i].to_string());
                    // '0' is the character after '/': the first key past this folder is >= it.
                    from = Bound::Included(format!("{prefix}{}0", &rest[..i]));
                }
                None => {
                    if !rest.is_empty() {
                        out.push(rest.to_string());
                    }
                    from = Bound::Excluded(k.clone());
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
        let mut map = self.map.write().map_err(poisoned)?;
        for op in ops {
            match op {
                TxnOp::Put { key, value } => {
                    map.insert(key, value);
                }
                TxnOp::Delete { key } => {
                    map.remove(&key);
                }
            }
        }
        Ok(())
    }
    fn kind(&self) -> &'static str {
        "inmem"
    }
}
