//! The PostgreSQL HA lock, handed to the core as its `HaBackend` (the core knows no storage
//! backend). The `HaBackend` contract still reports errors as text: the PostgreSQL errors are
//! rendered (with their causes) here.

use coffer_core::ha::{Acquire, HaBackend, HaGuard, LeaderInfo};
use coffer_storage_postgresql::{HaLock, LockHeld};

pub struct PgHa(pub HaLock);

#[async_trait::async_trait]
impl HaBackend for PgHa {
    async fn try_acquire(&self, identity: &str, api_addr: &str, echo: &str) -> Result<Acquire, String> {
        Ok(match self.0.try_acquire(identity, api_addr, echo).await.map_err(|e| e.to_string())? {
            Ok(held) => Acquire::Held(Box::new(PgGuard(held))),
            Err(leader) => Acquire::Standby(leader.map(|l| LeaderInfo {
                identity: l.identity,
                api_addr: l.api_addr,
                since: l.since,
            })),
        })
    }

    async fn leader(&self) -> Result<Option<LeaderInfo>, String> {
        Ok(self.0.leader().await.map_err(|e| e.to_string())?.map(|l| LeaderInfo {
            identity: l.identity,
            api_addr: l.api_addr,
            since: l.since,
        }))
    }

    async fn standbys(
        &self,
        within: std::time::Duration,
    ) -> Result<Vec<(String, String, std::time::SystemTime)>, String> {
        self.0.standbys(within).await.map_err(|e| e.to_string())
    }
}

struct PgGuard(LockHeld);

#[async_trait::async_trait]
impl HaGuard for PgGuard {
    async fn lost(&mut self) {
        self.0.lost().await
    }
    async fn release(self: Box<Self>) {
        self.0.release().await
    }
}
