//! Test support for backend authors: an in-memory [`StorageView`].

use crate::{Result, StorageView};
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// An in-memory storage view. The map is public so tests can inspect what a backend stored.
#[derive(Default)]
pub struct MapView(pub Mutex<BTreeMap<String, Vec<u8>>>);

#[async_trait]
impl StorageView for MapView {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.0.lock().unwrap_or_else(|e| e.into_inner()).get(key).cloned())
    }
    async fn put(&self, key: &str, value: &[u8]) -> Result<()> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).insert(key.into(), value.to_vec());
        Ok(())
    }
    async fn delete(&self, key: &str) -> Result<()> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
        Ok(())
    }
    /// Immediate children of `prefix`, sorted, folders once with a trailing `/`.
    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<String> = m
            .range(prefix.to_string()..)
            .map(|(k, _)| k)
            .take_while(|k| k.starts_with(prefix))
            .filter_map(|k| k.strip_prefix(prefix))
            .filter(|r| !r.is_empty())
            .map(|r| match r.find('/') {
                Some(i) => r[..=i].to_string(),
                None => r.to_string(),
            })
            .collect();
        out.dedup();
        Ok(out)
    }
}
