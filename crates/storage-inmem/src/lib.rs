//! In-memory storage: for `-dev` servers and tests. Nothing survives a restart.
#![forbid(unsafe_code)]

use async_trait::async_trait;
use coffer_physical::{check_key, children_of, Storage, StorageError, TxnOp};
use std::collections::BTreeMap;
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
        let map = self.map.read().map_err(poisoned)?;
        let keys = map.range(prefix.to_string()..).map(|(k, _)| k.as_str()).take_while(|k| k.starts_with(prefix));
        Ok(children_of(prefix, keys))
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
