//! Backends' background work (OpenBao's `PeriodicFunc`): every few seconds, on an active and
//! unsealed node, each mounted backend's [`coffer_sdk::Backend::periodic`] is called with a
//! request on its mount's storage. The database engine rotates static roles' passwords here.
//! Calls run one after the other; a failing backend is logged and asked again next time.

use crate::Core;
use coffer_sdk::Operation;
use serde_json::Map;

/// Seconds between two rounds of periodic calls.
pub const PERIOD_SECS: u64 = 5;

impl Core {
    /// Calls every mounted backend's periodic function once. Plugins that have not started are
    /// not started for it (their default is to do nothing).
    pub async fn run_periodic(&self) {
        let Some(active) = self.active() else { return };
        let router = active.router.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        for route in router.routes.iter() {
            if route.backend.backend_type() == "plugin" {
                continue;
            }
            let req = self.backend_request(route, "", Operation::Update, Map::new(), None);
            if let Err(e) = route.backend.periodic(&req).await {
                tracing::warn!(mount = %route.prefix, error = %e, "periodic function failed; retried at the next tick");
            }
        }
    }
}
