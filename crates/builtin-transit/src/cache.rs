//! The key cache: decoded key settings and key versions kept between requests, so an
//! encryption does not read, decrypt and parse its key from storage three times (the ACL's
//! existence check, the settings, the version).
//!
//! Only operations that do not change keys read through the cache; every change reads storage
//! directly, under the backend's write lock, and calls [`KeyCache::invalidate`] once it is
//! written. A generation counter closes the race between the two: a reader notes the
//! generation before it reads storage and its result is only kept if no change was completed
//! in between, so a value read before a change can never outlive it in the cache.
//!
//! Entries hold key material; it is wiped when the last `Arc` goes (`Secret` is `Zeroizing`).

use crate::keys::{KeyEntry, Policy};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// Entries kept at most (settings and versions each); the cache is emptied when it is full.
const MAX_ENTRIES: usize = 4096;

#[derive(Default)]
pub struct KeyCache {
    inner: RwLock<Inner>,
}

#[derive(Default)]
struct Inner {
    generation: u64,
    policies: HashMap<String, Arc<Policy>>,
    /// Versions by key name, then version number.
    entries: HashMap<String, HashMap<i64, Arc<KeyEntry>>>,
    entry_count: usize,
}

impl KeyCache {
    /// The generation to pass to `put_*` for a value about to be read from storage.
    pub fn generation(&self) -> u64 {
        self.inner.read().map(|i| i.generation).unwrap_or(u64::MAX)
    }

    pub fn policy(&self, name: &str) -> Option<Arc<Policy>> {
        self.inner.read().ok()?.policies.get(name).cloned()
    }

    pub fn entry(&self, name: &str, version: i64) -> Option<Arc<KeyEntry>> {
        self.inner.read().ok()?.entries.get(name)?.get(&version).cloned()
    }

    pub fn put_policy(&self, generation: u64, p: Arc<Policy>) {
        if let Ok(mut inner) = self.inner.write() {
            if inner.generation != generation {
                return;
            }
            if inner.policies.len() >= MAX_ENTRIES {
                inner.policies.clear();
            }
            inner.policies.insert(p.name.clone(), p);
        }
    }

    pub fn put_entry(&self, generation: u64, name: &str, version: i64, e: Arc<KeyEntry>) {
        if let Ok(mut inner) = self.inner.write() {
            if inner.generation != generation {
                return;
            }
            if inner.entry_count >= MAX_ENTRIES {
                inner.entries.clear();
                inner.entry_count = 0;
            }
            if inner.entries.entry(name.to_string()).or_default().insert(version, e).is_none() {
                inner.entry_count += 1;
            }
        }
    }

    /// Forgets everything; called after every change to any key.
    pub fn invalidate(&self) {
        if let Ok(mut inner) = self.inner.write() {
            inner.generation = inner.generation.wrapping_add(1);
            inner.policies.clear();
            inner.entries.clear();
            inner.entry_count = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KeyType;

    #[test]
    fn a_value_read_before_a_change_is_not_kept_after_it() {
        let c = KeyCache::default();
        let g = c.generation();
        c.invalidate(); // a change completed while the reader was reading storage
        c.put_policy(g, Arc::new(Policy::new("k", KeyType::Aes256Gcm96)));
        assert!(c.policy("k").is_none(), "stale settings must not be cached");
        let g = c.generation();
        c.put_policy(g, Arc::new(Policy::new("k", KeyType::Aes256Gcm96)));
        assert!(c.policy("k").is_some());
        c.invalidate();
        assert!(c.policy("k").is_none(), "a change empties the cache");
    }

    #[test]
    fn versions_are_kept_per_key_and_version() {
        let c = KeyCache::default();
        let g = c.generation();
        c.put_entry(g, "a", 1, Arc::new(KeyEntry::default()));
        assert!(c.entry("a", 1).is_some());
        assert!(c.entry("a", 2).is_none());
        assert!(c.entry("b", 1).is_none());
    }
}
