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
//! A node that has not yet contended for the lock writes unfenced (`sys/init` runs before any
//! node is unsealed, so before any can be active). Once it contends it is a standby, and a
//! standby refuses every write until it takes the lock (its keyring and caches may be stale:
//! sealing a standby must not write them back); so does a node that held the lock and lost it
//! or stepped down.

use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// What this node's writes are fenced with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fence {
    /// The node has not contended for the HA lock (or HA is off): writes are not fenced.
    Open,
    /// The node contends for the lock, or held it and lost or gave it up (`Some` generation):
    /// writes are refused.
    Standby(Option<i64>),
    /// The node holds the lock with this generation: writes check it.
    Held(i64),
}

/// The fence state shared by a storage and its HA lock.
pub(crate) struct FenceCell {
    inner: Mutex<FenceInner>,
}

struct FenceInner {
    fence: Fence,
    /// Told when a write finds the generation stale, so the node steps down.
    on_stale: Option<Arc<watch::Sender<bool>>>,
}

impl FenceCell {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(FenceCell { inner: Mutex::new(FenceInner { fence: Fence::Open, on_stale: None }) })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FenceInner> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn get(&self) -> Fence {
        self.lock().fence
    }

    /// The node contends for the lock: from now on it writes only while it holds it.
    pub(crate) fn contend(&self) {
        let mut g = self.lock();
        if g.fence == Fence::Open {
            g.fence = Fence::Standby(None);
        }
    }

    /// The lock was taken with `generation`; `lost` is the holder's "lock lost" signal.
    pub(crate) fn hold(&self, generation: i64, lost: Arc<watch::Sender<bool>>) {
        let mut g = self.lock();
        g.fence = Fence::Held(generation);
        g.on_stale = Some(lost);
    }

    /// The lock of `generation` is gone (lost, released or found stale): refuse writes from now
    /// on, and tell the holder. A later generation's hold is left alone.
    pub(crate) fn lose(&self, generation: i64) {
        let mut g = self.lock();
        if g.fence == Fence::Held(generation) {
            g.fence = Fence::Standby(Some(generation));
            if let Some(tx) = g.on_stale.take() {
                let _ = tx.send(true);
            }
        }
    }
}

/// The error of a write refused by the fence: it was not applied.
pub(crate) fn refused(why: &str) -> coffer_physical::StorageError {
    coffer_physical::StorageError::Fenced(format!("not applied: {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn losing_a_generation_refuses_writes_and_tells_the_holder_once() {
        let cell = FenceCell::new();
        assert_eq!(cell.get(), Fence::Open);
        cell.contend();
        assert_eq!(cell.get(), Fence::Standby(None));
        let (tx, mut rx) = watch::channel(false);
        cell.hold(3, Arc::new(tx));
        assert_eq!(cell.get(), Fence::Held(3));
        cell.lose(2);
        assert_eq!(cell.get(), Fence::Held(3), "an older generation's loss does not touch a newer hold");
        assert!(!*rx.borrow_and_update());
        cell.lose(3);
        assert_eq!(cell.get(), Fence::Standby(Some(3)));
        assert!(*rx.borrow_and_update());
        cell.contend();
        assert_eq!(cell.get(), Fence::Standby(Some(3)), "contending again does not open the fence");
    }
}
