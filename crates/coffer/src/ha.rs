//! The PostgreSQL HA lock, handed to the core as its `HaBackend` (the core knows no storage
//! backend). The PostgreSQL errors reach the core boxed, with their causes.

use coffer_core::ha::{Acquire, BoxError, HaBackend, HaGuard, LeaderInfo};
use coffer_storage_postgresql::{HaLock, LockHeld};

pub struct PgHa(pub HaLock);

#[async_trait::async_trait]
impl HaBackend for PgHa {
    async fn try_acquire(&self, identity: &str, api_addr: &str, echo: &str) -> Result<Acquire, BoxError> {
        Ok(match self.0.try_acquire(identity, api_addr, echo).await? {
            Ok(held) => Acquire::Held(Box::new(PgGuard(held))),
            Err(leader) => Acquire::Standby(leader.map(|l| LeaderInfo {
                identity: l.identity,
                api_addr: l.api_addr,
                since: l.since,
            })),
        })
    }

    async fn leader(&self) -> Result<Option<LeaderInfo>, BoxError> {
        Ok(self.0.leader().await?.map(|l| LeaderInfo { identity: l.identity, api_addr: l.api_addr, since: l.since }))
    }

    async fn standbys(
        &self,
        within: std::time::Duration,
    ) -> Result<Vec<(String, String, std::time::SystemTime)>, BoxError> {
        Ok(self.0.standbys(within).await?)
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
