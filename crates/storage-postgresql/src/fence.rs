//! Fencing of the HA active node's writes (decision 0025).
//!
//! Taking the HA lock increments a generation stored in the lock's row of the HA table
//! (`ha_key = 'core/lock'`), and the node keeps the value it wrote. While it holds the lock,
//! every write of its storage is one statement that first takes a `FOR SHARE` row lock on that
//! row *where the generation is still the node's*, and writes only if it found it. A node that
//! took the lock since has incremented the generation (an `UPDATE` of that row, which waits for
//! every `FOR SHARE` holder and is waited for by every later one), so a stale node's write
//! matches no row, changes nothing and fails; and every write that passed the check committed
//! before the new holder's increment did, so the new holder reads it when it sets up.
//!
//! A node that has never held the lock writes unfenced (`sys/init` runs before any node can be
//! active); one that held it and lost it (or stepped down) refuses every write until it takes
//! the lock again.

use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// What this node's writes are fenced with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fence {
    /// The node has never held the HA lock (or HA is off): writes are not fenced.
    Open,
    /// The node holds the lock with this generation: writes check it.
    Held(i64),
    /// The node held the lock with this generation and lost or released it: writes are refused.
    Lost(i64),
}

/// The fence state shared by a storage and its HA lock.
#[derive(Default)]
pub(crate) struct FenceCell {
    inner: Mutex<FenceInner>,
}

#[derive(Default)]
struct FenceInner {
    fence: Option<(i64, bool)>,
    /// Told when a write finds the generation stale, so the node steps down.
    on_stale: Option<Arc<watch::Sender<bool>>>,
}

impl FenceCell {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(FenceCell::default())
    }

    pub(crate) fn get(&self) -> Fence {
        let g = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match g.fence {
            None => Fence::Open,
            Some((n, true)) => Fence::Held(n),
            Some((n, false)) => Fence::Lost(n),
        }
    }

    /// The lock was taken with `generation`; `lost` is the holder's "lock lost" signal.
    pub(crate) fn hold(&self, generation: i64, lost: Arc<watch::Sender<bool>>) {
        let mut g = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        g.fence = Some((generation, true));
        g.on_stale = Some(lost);
    }

    /// The lock of `generation` is gone (lost, released or found stale): refuse writes from now
    /// on, and tell the holder. A later generation's hold is left alone.
    pub(crate) fn lose(&self, generation: i64) {
        let mut g = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if g.fence == Some((generation, true)) {
            g.fence = Some((generation, false));
            if let Some(tx) = g.on_stale.take() {
                let _ = tx.send(true);
            }
        }
    }
}

/// The error of a write refused by the fence: it was not applied.
pub(crate) fn refused(generation: i64, why: &str) -> coffer_physical::StorageError {
    coffer_physical::StorageError::Fenced(format!(
        "not applied: this node's HA lock (generation {generation}) {why}; this node is no longer the active node"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn losing_a_generation_refuses_writes_and_tells_the_holder_once() {
        let cell = FenceCell::new();
        assert_eq!(cell.get(), Fence::Open);
        let (tx, mut rx) = watch::channel(false);
        cell.hold(3, Arc::new(tx));
        assert_eq!(cell.get(), Fence::Held(3));
        cell.lose(2);
        assert_eq!(cell.get(), Fence::Held(3), "an older generation's loss does not touch a newer hold");
        assert!(!*rx.borrow_and_update());
        cell.lose(3);
        assert_eq!(cell.get(), Fence::Lost(3));
        assert!(*rx.borrow_and_update());
    }
}
