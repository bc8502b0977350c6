//! The PostgreSQL HA lock, handed to the core as its `HaBackend` (the core knows no storage
//! backend). The PostgreSQL errors reach the core boxed, with their causes.

use coffer_core::ha::{Acquire, BoxError, HaBackend, HaGuard, LeaderInfo};
use coffer_storage_postgresql::{HaLock, LockHeld};

pub struct PgHa(pub HaLock);

#[async_trait::async_trait]
impl HaBackend for PgHa {
    /// The lock row's `ha_value` holds the advertisement (the api_addr, or a JSON object with
    /// the api_addr and the cluster_addr): the PostgreSQL crate stores and returns it as is.
    async fn try_acquire(&self, identity: &str, advertisement: &str, echo: &str) -> Result<Acquire, BoxError> {
        Ok(match self.0.try_acquire(identity, advertisement, echo).await? {
            Ok(held) => Acquire::Held(Box::new(PgGuard(held))),
            Err(leader) => Acquire::Standby(leader.map(|l| LeaderInfo::from_record(l.identity, &l.api_addr, l.since))),
        })
    }

    async fn leader(&self) -> Result<Option<LeaderInfo>, BoxError> {
        Ok(self.0.leader().await?.map(|l| LeaderInfo::from_record(l.identity, &l.api_addr, l.since)))
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
