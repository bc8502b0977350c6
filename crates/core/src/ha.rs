//! High availability: several servers share one storage; the one holding the HA lock is active,
//! the others are standbys.
//!
//! A standby has combined the unseal key (it keeps the key-encryption key in memory) but holds
//! no `Active` state: it serves no mount, token or policy, so it can never answer from a stale
//! cache. Its HTTP layer forwards client requests to the active node over the cluster
//! connection (or redirects clients there; decision 0027). When it takes the lock it reloads
//! the keyring with the key it kept (another node may have rotated it) and runs the ordinary
//! post-unseal setup from storage; when it loses the lock (its lock connection died) or steps
//! down, it drops that state at once. The lock itself is the storage backend's business: the
//! server hands the core an [`HaBackend`] (the core knows no storage backend).
//! See docs/decisions/0009-postgresql-ha-advisory-lock.md.

use crate::{Core, Result};
use async_trait::async_trait;
use coffer_crypto::Key;
use coffer_sdk::{ErrorKind, LogicalError};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, SystemTime};

/// How often a standby tries to take the lock (and refreshes who the leader is).
pub const RETRY_EVERY: Duration = Duration::from_millis(250);
/// After `sys/step-down`, how long the node leaves the lock to the others.
pub const STEP_DOWN_WAIT: Duration = Duration::from_secs(3);

/// The active node, as the lock's record names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderInfo {
    pub identity: String,
    pub api_addr: String,
    /// Where standbys forward requests (`cluster_addr`); empty when the active node does not
    /// take forwarded requests (`disable_clustering`), and standbys then redirect.
    pub cluster_addr: String,
    pub since: SystemTime,
}

impl LeaderInfo {
    /// The lock record's value: what the active node advertises. Its `api_addr` alone when it
    /// has no cluster address (the form older records have), else a JSON object.
    pub fn advertisement(api_addr: &str, cluster_addr: Option<&str>) -> String {
        match cluster_addr.filter(|c| !c.is_empty()) {
            None => api_addr.to_string(),
            Some(c) => serde_json::json!({ "api_addr": api_addr, "cluster_addr": c }).to_string(),
        }
    }

    /// Reads a lock record's value as [`LeaderInfo::advertisement`] wrote it.
    pub fn from_record(identity: String, value: &str, since: SystemTime) -> LeaderInfo {
        if value.starts_with('{') {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(value) {
                let field = |k: &str| v[k].as_str().unwrap_or_default().to_string();
                return LeaderInfo {
                    identity,
                    api_addr: field("api_addr"),
                    cluster_addr: field("cluster_addr"),
                    since,
                };
            }
        }
        LeaderInfo { identity, api_addr: value.to_string(), cluster_addr: String::new(), since }
    }
}

/// Where the cluster's forwarding CA (certificate and key, decision 0027) is kept, behind the
/// barrier: every unsealed node can read it, only the active node writes it.
const CLUSTER_CA_PATH: &str = "core/cluster/forwarding-ca";

/// One attempt at the lock.
pub enum Acquire {
    /// The lock is ours until the guard reports it lost or is released.
    Held(Box<dyn HaGuard>),
    /// Another node holds it (or nobody does, for the moment).
    Standby(Option<LeaderInfo>),
}

/// The error of an HA lock implementation, with its cause (the storage's own error type,
/// which the core does not know).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The HA lock of a shared storage.
#[async_trait]
pub trait HaBackend: Send + Sync + 'static {
    /// `advertisement` is what the lock's record says of the holder ([`LeaderInfo::advertisement`]:
    /// its api_addr and cluster_addr); `echo` is what a standby records about itself (JSON:
    /// api_addr, cluster_addr, hostname, version).
    async fn try_acquire(
        &self,
        identity: &str,
        advertisement: &str,
        echo: &str,
    ) -> std::result::Result<Acquire, BoxError>;
    /// Who holds the lock now, without contending for it.
    async fn leader(&self) -> std::result::Result<Option<LeaderInfo>, BoxError>;
    /// The standbys heard from within `within`: (identity, echo, when).
    async fn standbys(&self, within: Duration) -> std::result::Result<Vec<(String, String, SystemTime)>, BoxError>;
}

/// A held lock.
#[async_trait]
pub trait HaGuard: Send + 'static {
    /// Resolves when the lock is lost.
    async fn lost(&mut self);
    /// Gives the lock up now.
    async fn release(self: Box<Self>);
}

pub(crate) struct HaState {
    backend: Arc<dyn HaBackend>,
    core: Weak<Core>,
    pub(crate) identity: String,
    api_addr: String,
    /// The address this node advertises for forwarded requests while active.
    cluster_addr: Option<String>,
    /// The key-encryption key, held while unsealed (standby or active).
    kek: Mutex<Option<Key>>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    step_down: tokio::sync::Notify,
    leader: RwLock<Option<LeaderInfo>>,
    pub(crate) active_since: RwLock<Option<SystemTime>>,
}

impl Core {
    /// Makes this server one of an HA cluster: after unsealing it is a standby until it takes
    /// the lock. `api_addr` is where clients are redirected when this node is active;
    /// `cluster_addr`, when set, is where standbys forward requests to it (its cluster
    /// listener), advertised in the lock's record.
    pub fn enable_ha(self: &Arc<Self>, backend: Arc<dyn HaBackend>, api_addr: String, cluster_addr: Option<String>) {
        let st = HaState {
            backend,
            core: Arc::downgrade(self),
            identity: uuid::Uuid::new_v4().to_string(),
            api_addr,
            cluster_addr: cluster_addr.filter(|c| !c.is_empty()),
            kek: Mutex::new(None),
            task: Mutex::new(None),
            step_down: tokio::sync::Notify::new(),
            leader: RwLock::new(None),
            active_since: RwLock::new(None),
        };
        let _ = self.ha.set(st);
    }

    pub fn ha_enabled(&self) -> bool {
        self.ha.get().is_some()
    }

    /// Unsealed, but another node is (or may become) active.
    pub fn is_standby(&self) -> bool {
        self.ha.get().is_some_and(|h| h.kek.lock().is_ok_and(|k| k.is_some())) && self.active().is_none()
    }

    /// Sealed in the sense of `sys/seal-status`: the unseal key has not been combined.
    pub(crate) fn barrier_sealed(&self) -> bool {
        self.is_sealed() && !self.is_standby()
    }

    /// The error for a request this node cannot serve because it is a standby.
    pub(crate) fn standby_error() -> LogicalError {
        LogicalError::new(ErrorKind::Unavailable, "this node is a standby: send the request to the active node")
    }

    /// On a standby: the active node's `api_addr`, if one is known.
    pub fn leader_api_addr(&self) -> Option<String> {
        let h = self.ha.get()?;
        h.leader.read().ok()?.as_ref().map(|l| l.api_addr.clone()).filter(|a| !a.is_empty())
    }

    /// On a standby: the active node as last read from the lock's record, if one is known.
    pub fn leader_info(&self) -> Option<LeaderInfo> {
        let h = self.ha.get()?;
        h.leader.read().ok()?.clone()
    }

    /// On a standby: reads who holds the lock now instead of waiting for the next poll (a
    /// standby that cannot reach the leader it knew asks, so that forwarding follows a
    /// failover at once).
    pub async fn refresh_leader(&self) {
        let Some(h) = self.ha.get() else { return };
        if self.active().is_some() {
            return;
        }
        if let Ok(leader) = h.backend.leader().await {
            if self.active().is_none() {
                self.set_leader(leader);
            }
        }
    }

    /// This node's identity in the HA lock's records.
    pub fn ha_identity(&self) -> Option<String> {
        self.ha.get().map(|h| h.identity.clone())
    }

    /// The cluster address this node advertises while active (None: it takes no forwarded
    /// requests).
    pub fn ha_cluster_addr(&self) -> Option<String> {
        self.ha.get().and_then(|h| h.cluster_addr.clone())
    }

    /// The cluster's forwarding CA as stored behind the barrier (opaque to the core), read on
    /// an active node or a standby. A standby whose keyring predates the entry's key term
    /// reloads its keyring (a read: a standby writes nothing) and reads again.
    pub async fn cluster_ca(&self) -> Result<Option<zeroize::Zeroizing<Vec<u8>>>> {
        use coffer_barrier::SecureStorage;
        match self.barrier.get(CLUSTER_CA_PATH).await {
            Err(coffer_barrier::BarrierError::UnknownTerm(..)) => {
                let kek = self
                    .ha
                    .get()
                    .and_then(|h| h.kek.lock().ok().and_then(|k| k.clone()))
                    .ok_or_else(LogicalError::sealed)?;
                self.barrier.unseal(&kek).await.map_err(crate::error::barrier_err)?;
                self.barrier.get(CLUSTER_CA_PATH).await.map_err(crate::error::barrier_err)
            }
            r => r.map_err(crate::error::barrier_err),
        }
    }

    /// Stores the cluster's forwarding CA (on the active node only: a standby's writes are
    /// refused by the fence anyway).
    pub async fn store_cluster_ca(&self, value: &[u8]) -> Result<()> {
        use coffer_barrier::SecureStorage;
        if self.active().is_none() {
            return Err(Self::standby_error());
        }
        self.barrier.put(CLUSTER_CA_PATH, value).await.map_err(crate::error::barrier_err)
    }

    /// `sys/leader`.
    pub(crate) fn leader_status(&self) -> serde_json::Map<String, serde_json::Value> {
        use serde_json::json;
        let Some(h) = self.ha.get() else {
            return obj(json!({ "ha_enabled": false }));
        };
        if self.is_sealed() && !self.is_standby() {
            return obj(json!({ "ha_enabled": true, "is_self": false, "leader_address": "" }));
        }
        if self.active().is_some() {
            let since = h.active_since.read().ok().and_then(|s| *s).unwrap_or_else(SystemTime::now);
            return obj(json!({
                "ha_enabled": true,
                "is_self": true,
                "active_time": rfc3339(since),
                "leader_address": h.api_addr,
                "leader_cluster_address": h.cluster_addr.clone().unwrap_or_default(),
                "performance_standby": false,
            }));
        }
        let mut m = obj(json!({ "ha_enabled": true, "is_self": false, "performance_standby": false }));
        if let Some(l) = h.leader.read().ok().and_then(|l| l.clone()) {
            m.insert("leader_address".into(), l.api_addr.into());
            m.insert("leader_cluster_address".into(), l.cluster_addr.into());
        }
        m
    }

    /// `sys/ha-status` on the active node: itself, then the standbys heard from in the last
    /// 10 seconds.
    pub(crate) async fn ha_nodes(&self) -> Option<Vec<serde_json::Value>> {
        use serde_json::json;
        let h = self.ha.get()?;
        let mut nodes = vec![json!({
            "hostname": crate::sys::hostname(),
            "api_address": h.api_addr,
            "cluster_address": h.cluster_addr.clone().unwrap_or_default(),
            "active_node": true,
            "last_echo": null,
            "version": crate::version_string(),
            "upgrade_version": crate::version_string(),
            "redundancy_zone": "",
        })];
        let standbys = match h.backend.standbys(Duration::from_secs(10)).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list HA standbys");
                Vec::new()
            }
        };
        for (identity, echo, when) in standbys {
            if identity == h.identity {
                continue;
            }
            let e: serde_json::Value = serde_json::from_str(&echo).unwrap_or_default();
            nodes.push(json!({
                "hostname": e["hostname"].as_str().unwrap_or(""),
                "api_address": e["api_addr"].as_str().unwrap_or(""),
                "cluster_address": e["cluster_addr"].as_str().unwrap_or(""),
                "active_node": false,
                "last_echo": rfc3339(when),
                "version": e["version"].as_str().unwrap_or(""),
                "upgrade_version": e["version"].as_str().unwrap_or(""),
                "redundancy_zone": "",
            }));
        }
        Some(nodes)
    }

    /// After the unseal key was combined and checked: become a standby and start contending
    /// for the lock.
    pub(crate) fn enter_standby(&self, kek: Key) {
        let Some(h) = self.ha.get() else { return };
        if let Ok(mut k) = h.kek.lock() {
            *k = Some(kek);
        }
        let weak = h.core.clone();
        let task = tokio::spawn(async move { ha_loop(weak).await });
        if let Ok(mut t) = h.task.lock() {
            if let Some(old) = t.replace(task) {
                old.abort();
            }
        }
        tracing::info!("unsealed as a standby: waiting for the HA lock");
    }

    /// On sealing: stop contending, drop the lock (by ending its task, waited for so that it
    /// cannot install an active state afterwards) and the key.
    pub(crate) async fn leave_ha(&self) {
        let Some(h) = self.ha.get() else { return };
        let task = h.task.lock().ok().and_then(|mut t| t.take());
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
        if let Ok(mut k) = h.kek.lock() {
            *k = None;
        }
        if let Ok(mut s) = h.active_since.write() {
            *s = None;
        }
    }

    /// After a rekey on this (active) node: keep the new key for the next time it becomes active.
    pub(crate) fn ha_rekeyed(&self, kek: &Key) {
        if let Some(h) = self.ha.get() {
            if let Ok(mut k) = h.kek.lock() {
                if k.is_some() {
                    *k = Some(kek.clone());
                }
            }
        }
    }

    /// `sys/step-down`: give the lock to another node.
    pub(crate) fn step_down(&self) -> Result<()> {
        match self.ha.get() {
            Some(h) if self.active().is_some() => {
                h.step_down.notify_one();
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn set_leader(&self, leader: Option<LeaderInfo>) {
        if let Some(h) = self.ha.get() {
            if let Ok(mut l) = h.leader.write() {
                *l = leader;
            }
        }
    }

    fn drop_active(&self) {
        if let Ok(mut a) = self.active.write() {
            *a = None;
        }
        self.set_leader(None);
        if let Some(h) = self.ha.get() {
            if let Ok(mut s) = h.active_since.write() {
                *s = None;
            }
        }
    }

    /// With the lock held: reload the keyring and build the active state from storage.
    async fn become_active(&self) -> Result<()> {
        let h = self.ha.get().ok_or_else(|| LogicalError::internal("HA not enabled"))?;
        let kek = h.kek.lock().ok().and_then(|k| k.clone()).ok_or_else(LogicalError::sealed)?;
        self.barrier.unseal(&kek).await.map_err(crate::error::barrier_err)?;
        let active = self.post_unseal().await?;
        *self.active.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(active);
        if let Ok(mut s) = h.active_since.write() {
            *s = Some(SystemTime::now());
        }
        if let Ok(mut l) = h.leader.write() {
            *l = Some(LeaderInfo {
                identity: h.identity.clone(),
                api_addr: h.api_addr.clone(),
                cluster_addr: h.cluster_addr.clone().unwrap_or_default(),
                since: SystemTime::now(),
            });
        }
        Ok(())
    }
}

fn obj(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    match v {
        serde_json::Value::Object(m) => m,
        _ => serde_json::Map::new(),
    }
}

fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    time::OffsetDateTime::from_unix_timestamp_nanos(secs as i128)
        .ok()
        .and_then(|d| d.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

async fn ha_loop(weak: Weak<Core>) {
    let mut last_err: Option<String> = None;
    loop {
        let Some(core) = weak.upgrade() else { return };
        let Some(h) = core.ha.get() else { return };
        let (backend, identity, api_addr) = (h.backend.clone(), h.identity.clone(), h.api_addr.clone());
        let cluster_addr = h.cluster_addr.clone();
        drop(core);
        let advertisement = LeaderInfo::advertisement(&api_addr, cluster_addr.as_deref());
        let echo = serde_json::json!({
            "api_addr": api_addr,
            "cluster_addr": cluster_addr.unwrap_or_default(),
            "hostname": crate::sys::hostname(),
            "version": crate::version_string(),
        })
        .to_string();
        match backend.try_acquire(&identity, &advertisement, &echo).await {
            Ok(Acquire::Held(mut guard)) => {
                last_err = None;
                let Some(core) = weak.upgrade() else { return };
                let started = std::time::Instant::now();
                if let Err(e) = core.become_active().await {
                    tracing::error!(error = %e, "took the HA lock but could not become active; giving it up");
                    core.drop_active();
                    guard.release().await;
                    drop(core);
                    tokio::time::sleep(STEP_DOWN_WAIT).await;
                    continue;
                }
                tracing::info!(
                    setup_ms = started.elapsed().as_millis() as u64,
                    "acquired the HA lock: this node is now active"
                );
                let Some(h) = core.ha.get() else { return };
                let stepped_down = tokio::select! {
                    _ = guard.lost() => false,
                    _ = h.step_down.notified() => true,
                };
                core.drop_active();
                if stepped_down {
                    tracing::info!("stepping down: this node is now a standby");
                    guard.release().await;
                    drop(core);
                    // Leave the lock to the others for a while, but keep learning who leads.
                    let until = tokio::time::Instant::now() + STEP_DOWN_WAIT;
                    while tokio::time::Instant::now() < until {
                        let leader = backend.leader().await.ok().flatten();
                        let Some(core) = weak.upgrade() else { return };
                        core.set_leader(leader);
                        drop(core);
                        tokio::time::sleep(RETRY_EVERY).await;
                    }
                } else {
                    tracing::error!("lost the HA lock: this node is now a standby");
                    drop(guard);
                    drop(core);
                }
            }
            Ok(Acquire::Standby(leader)) => {
                last_err = None;
                if let Some(core) = weak.upgrade() {
                    core.set_leader(leader);
                }
                tokio::time::sleep(RETRY_EVERY).await;
            }
            Err(e) => {
                // Logged once per distinct failure, not every retry.
                let text = e.to_string();
                if last_err.as_deref() != Some(text.as_str()) {
                    tracing::warn!(error = %e, "HA lock unavailable; retrying");
                    last_err = Some(text);
                }
                if let Some(core) = weak.upgrade() {
                    core.set_leader(None);
                }
                tokio::time::sleep(RETRY_EVERY).await;
            }
        }
    }
}
