//! A small cache of decoded storage entries for backends (KV v2 metadata, transit keys), safe
//! against the race between a reader filling it and a writer changing the entry.
//!
//! The contract: only requests that do not change an entry read through the cache; a change
//! reads storage directly, writes, and then calls [`GenCache::forget`] (or
//! [`GenCache::clear`]) before it answers. Every forget bumps a generation counter; a reader
//! notes the generation before it reads storage and its value is only kept if no change
//! completed in between, so a value read before a change never outlives it in the cache.
//!
//! The cache is bounded: when it holds `capacity` entries it is emptied and refills with what
//! is used. Values are shared (`Arc`); a value holding key material must wipe itself on drop.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

/// A bounded, generation-checked cache of shared values keyed by storage key (see the module
/// documentation for the contract).
pub struct GenCache<V> {
    capacity: AtomicUsize,
    inner: RwLock<Inner<V>>,
}

struct Inner<V> {
    generation: u64,
    /// foldhash with a per-process random seed, as hashbrown uses by default.
    map: HashMap<String, Arc<V>, foldhash::fast::RandomState>,
}

impl<V: Send + Sync + 'static> GenCache<V> {
    /// An empty cache holding at most `capacity` entries (at least 1).
    pub fn new(capacity: usize) -> Self {
        GenCache {
            capacity: AtomicUsize::new(capacity.max(1)),
            inner: RwLock::new(Inner { generation: 0, map: HashMap::default() }),
        }
    }

    /// The most entries the cache holds.
    pub fn capacity(&self) -> usize {
        self.capacity.load(Ordering::Relaxed)
    }

    /// Changes the most entries the cache holds (at least 1); a cache holding more is emptied.
    pub fn set_capacity(&self, capacity: usize) {
        let capacity = capacity.max(1);
        self.capacity.store(capacity, Ordering::Relaxed);
        if let Ok(mut inner) = self.inner.write() {
            if inner.map.len() > capacity {
                drop_elsewhere(std::mem::take(&mut inner.map));
            }
        }
    }

    /// The generation to pass to [`GenCache::put`] for a value about to be read from storage.
    pub fn generation(&self) -> u64 {
        // A poisoned lock yields a generation no put will match: nothing is cached.
        self.inner.read().map(|i| i.generation).unwrap_or(u64::MAX)
    }

    /// The cached value for `key`, if any.
    pub fn get(&self, key: &str) -> Option<Arc<V>> {
        self.inner.read().ok()?.map.get(key).cloned()
    }

    /// Keeps `value` unless a change completed since `generation` was taken.
    pub fn put(&self, generation: u64, key: &str, value: Arc<V>) {
        let Ok(mut inner) = self.inner.write() else { return };
        if inner.generation != generation {
            return;
        }
        if inner.map.len() >= self.capacity() && !inner.map.contains_key(key) {
            drop_elsewhere(std::mem::take(&mut inner.map));
        }
        inner.map.insert(key.to_string(), value);
    }

    /// The cached value of `key`, or what `load` reads from storage (kept for later reads
    /// unless a change completed meanwhile). `load` must not have started yet: futures are
    /// lazy, so the generation noted here precedes its storage read.
    pub async fn get_or_load<E>(
        &self,
        key: &str,
        load: impl std::future::Future<Output = Result<Option<V>, E>>,
    ) -> Result<Option<Arc<V>>, E> {
        if let Some(v) = self.get(key) {
            return Ok(Some(v));
        }
        let generation = self.generation();
        let Some(v) = load.await? else { return Ok(None) };
        let v = Arc::new(v);
        self.put(generation, key, v.clone());
        Ok(Some(v))
    }

    /// Forgets one entry after a change to it.
    pub fn forget(&self, key: &str) {
        if let Ok(mut inner) = self.inner.write() {
            inner.generation = inner.generation.wrapping_add(1);
            inner.map.remove(key);
        }
    }

    /// Forgets everything after a change that may touch any entry.
    pub fn clear(&self) {
        if let Ok(mut inner) = self.inner.write() {
            inner.generation = inner.generation.wrapping_add(1);
            inner.map.clear();
        }
    }
}

/// Drops a large value (a full cache) on a short-lived thread of its own: freeing tens of
/// thousands of entries takes milliseconds, which would otherwise stall the request that
/// happened to fill the cache, and every request queued behind it on the same worker.
pub fn drop_elsewhere<T: Send + 'static>(value: T) {
    // When no thread can be started, the closure, and the value with it, is dropped right here.
    let _ = std::thread::Builder::new().name("coffer-cache-drop".into()).spawn(move || drop(value));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_read_before_a_change_is_not_kept_after_it() {
        let c = GenCache::new(8);
        let g = c.generation();
        c.forget("k"); // a change completed while the reader was reading storage
        c.put(g, "k", Arc::new(1));
        assert!(c.get("k").is_none(), "a stale value must not be cached");
        let g = c.generation();
        c.put(g, "k", Arc::new(2));
        assert_eq!(c.get("k").as_deref(), Some(&2));
        c.forget("k");
        assert!(c.get("k").is_none(), "a change forgets the entry");
    }

    #[test]
    fn a_change_to_another_entry_keeps_the_rest_and_clear_drops_all() {
        let c = GenCache::new(8);
        let g = c.generation();
        c.put(g, "a", Arc::new(1));
        c.put(g, "b", Arc::new(2));
        c.forget("a");
        assert!(c.get("a").is_none());
        assert_eq!(c.get("b").as_deref(), Some(&2));
        c.clear();
        assert!(c.get("b").is_none());
    }

    #[test]
    fn the_cache_stays_within_its_capacity() {
        let c = GenCache::new(2);
        let g = c.generation();
        for (i, k) in ["a", "b", "c"].into_iter().enumerate() {
            c.put(g, k, Arc::new(i));
        }
        assert!(c.get("a").is_none() && c.get("b").is_none(), "emptied when full");
        assert_eq!(c.get("c").as_deref(), Some(&2));
    }

    #[test]
    fn a_lower_capacity_applies_at_once_and_bounds_later_puts() {
        let c = GenCache::new(8);
        let g = c.generation();
        for (i, k) in ["a", "b", "c"].into_iter().enumerate() {
            c.put(g, k, Arc::new(i));
        }
        c.set_capacity(2);
        assert_eq!(c.capacity(), 2);
        assert!(c.get("a").is_none() && c.get("c").is_none(), "emptied: it held more than the new capacity");
        let g = c.generation();
        for (i, k) in ["a", "b", "c"].into_iter().enumerate() {
            c.put(g, k, Arc::new(i));
        }
        assert!(c.get("a").is_none() && c.get("b").is_none());
        assert_eq!(c.get("c").as_deref(), Some(&2));
    }
}
