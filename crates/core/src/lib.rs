//! Coffer's core: seal state, initialisation, the mount table and router, the token store and
//! the system backend. It knows nothing of HTTP: it takes logical requests and returns logical
//! responses or [`LogicalError`]s whose kind the HTTP layer maps to a status.
#![forbid(unsafe_code)]

pub mod error;
pub mod mounts;
mod seal_ops;
mod sys;
pub mod token;

use crate::mounts::{MountEntry, MountTable, PrefixView, Route, Router};
use crate::token::TokenStore;
use coffer_barrier::Barrier;
use coffer_sdk::{LogicalError, Operation};
use coffer_seal::SealConfig;
use serde_json::{Map, Value};
use std::sync::{Arc, RwLock};

pub use coffer_sdk::ErrorKind;

/// The OpenBao API version Coffer answers as, and Coffer's own version.
pub const COMPAT_VERSION: &str = "2.7.2";
pub fn version_string() -> String {
    format!("{COMPAT_VERSION}+coffer.{}", env!("CARGO_PKG_VERSION"))
}
pub const BUILD_DATE: &str = "2026-11-26T00:00:00Z";

/// Settings the core takes from the server configuration.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// Seconds. Vault's default is 768h.
    pub default_lease_ttl: i64,
    pub max_lease_ttl: i64,
    pub cluster_name: Option<String>,
    pub api_addr: Option<String>,
    pub cluster_addr: Option<String>,
}

impl Default for CoreConfig {
    fn default() -> Self {
        CoreConfig {
            default_lease_ttl: 768 * 3600,
            max_lease_ttl: 768 * 3600,
            cluster_name: None,
            api_addr: None,
            cluster_addr: None,
        }
    }
}

/// A request as the core sees it: path without the `/v1/` prefix.
#[derive(Clone)]
pub struct CoreRequest {
    pub operation: Operation,
    pub path: String,
    pub data: Map<String, Value>,
    pub token: Option<String>,
}

/// How the HTTP layer should shape the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BodyShape {
    /// The standard envelope.
    #[default]
    Envelope,
    /// The envelope with `data`'s keys also at the top level (older sys endpoints).
    EnvelopeAndTopLevel,
    /// `data` alone is the body (sys/init, sys/seal-status, …).
    Raw,
}

#[derive(Clone, Default)]
pub struct CoreResponse {
    pub data: Option<Map<String, Value>>,
    pub warnings: Vec<String>,
    pub auth: Option<coffer_api::Auth>,
    pub lease_id: String,
    pub lease_duration: i64,
    pub renewable: bool,
    pub mount_type: String,
    pub shape: BodyShape,
}

impl CoreResponse {
    pub fn raw(data: Map<String, Value>) -> Self {
        CoreResponse { data: Some(data), shape: BodyShape::Raw, ..Default::default() }
    }
    pub fn data(data: Map<String, Value>) -> Self {
        CoreResponse { data: Some(data), ..Default::default() }
    }
    pub fn legacy(data: Map<String, Value>) -> Self {
        CoreResponse { data: Some(data), shape: BodyShape::EnvelopeAndTopLevel, ..Default::default() }
    }
}

/// Debug output names fields and keys, never the token or the values.
impl std::fmt::Debug for CoreRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoreRequest")
            .field("operation", &self.operation)
            .field("path", &self.path)
            .field("data_keys", &self.data.keys().collect::<Vec<_>>())
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl std::fmt::Debug for CoreResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoreResponse")
            .field("data_keys", &self.data.as_ref().map(|d| d.keys().collect::<Vec<_>>()))
            .field("auth", &self.auth.as_ref().map(|_| "<redacted>"))
            .field("shape", &self.shape)
            .finish_non_exhaustive()
    }
}

pub type Result<T> = std::result::Result<T, LogicalError>;

/// Identity of the cluster, created at first unseal.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ClusterInfo {
    pub name: String,
    pub id: String,
}

/// Everything that exists only while unsealed.
pub struct Active {
    pub router: RwLock<Arc<Router>>,
    pub mounts: tokio::sync::Mutex<MountTable>,
    pub tokens: TokenStore,
    pub cluster: ClusterInfo,
    pub remounts: RwLock<std::collections::HashMap<String, Value>>,
}

/// State of the health endpoint, for the HTTP layer to pick a status.
#[derive(Debug, Clone)]
pub struct Health {
    pub initialized: bool,
    pub sealed: bool,
    pub standby: bool,
    pub cluster: Option<ClusterInfo>,
}

pub struct Core {
    pub(crate) barrier: Arc<Barrier>,
    pub(crate) config: CoreConfig,
    pub(crate) active: RwLock<Option<Arc<Active>>>,
    pub(crate) seal: tokio::sync::Mutex<seal_ops::SealState>,
    pub(crate) seal_config: RwLock<Option<SealConfig>>,
}

impl Core {
    pub fn new(barrier: Arc<Barrier>, config: CoreConfig) -> Arc<Self> {
        Arc::new(Core {
            barrier,
            config,
            active: RwLock::new(None),
            seal: tokio::sync::Mutex::new(seal_ops::SealState::default()),
            seal_config: RwLock::new(None),
        })
    }

    pub fn config(&self) -> &CoreConfig {
        &self.config
    }

    pub fn active(&self) -> Option<Arc<Active>> {
        self.active.read().ok().and_then(|a| a.clone())
    }

    pub fn is_sealed(&self) -> bool {
        self.active().is_none()
    }

    pub async fn health(&self) -> Health {
        let initialized = self.barrier.is_initialized().await.unwrap_or(false);
        let active = self.active();
        Health { initialized, sealed: active.is_none(), standby: false, cluster: active.map(|a| a.cluster.clone()) }
    }

    /// Starts background work that lives with the process (automatic key rotation checks).
    pub fn spawn_background(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(10));
            loop {
                tick.tick().await;
                let Some(core) = weak.upgrade() else { break };
                if !core.is_sealed() {
                    if let Err(e) = core.barrier.check_rotation().await {
                        tracing::warn!(error = %e, "automatic key rotation check failed");
                    }
                }
            }
        });
    }

    /// Builds the unsealed state: mount table, router, token store.
    pub(crate) async fn post_unseal(&self) -> Result<Arc<Active>> {
        use coffer_barrier::SecureStorage;
        let cluster = match self.barrier.get("core/cluster").await.map_err(error::barrier_err)? {
            Some(raw) => serde_json::from_slice(&raw).map_err(|_| LogicalError::internal("cluster info unreadable"))?,
            None => {
                let id = uuid::Uuid::new_v4().to_string();
                let name = self.config.cluster_name.clone().unwrap_or_else(|| format!("vault-cluster-{}", &id[..8]));
                let info = ClusterInfo { name, id };
                let raw = serde_json::to_vec(&info).map_err(|e| LogicalError::internal(e.to_string()))?;
                self.barrier.put("core/cluster", &raw).await.map_err(error::barrier_err)?;
                info
            }
        };
        let table = match MountTable::load(&self.barrier).await? {
            Some(t) => t,
            None => {
                let t = MountTable::default();
                t.save(&self.barrier).await?;
                t
            }
        };
        let router = self.build_router(&table);
        let tokens = TokenStore::load(self.barrier.clone()).await?;
        Ok(Arc::new(Active {
            router: RwLock::new(Arc::new(router)),
            mounts: tokio::sync::Mutex::new(table),
            tokens,
            cluster,
            remounts: RwLock::new(Default::default()),
        }))
    }

    pub(crate) fn build_router(&self, table: &MountTable) -> Router {
        let mut routes = Vec::new();
        for e in &table.entries {
            match mounts::backend_for(e) {
                Ok(backend) => routes.push(Arc::new(Route {
                    entry: e.clone(),
                    backend,
                    view: Arc::new(PrefixView { barrier: self.barrier.clone(), prefix: e.storage_prefix() }),
                })),
                Err(err) => tracing::error!(mount = %e.path, error = %err, "mount cannot be served"),
            }
        }
        Router::new(routes)
    }

    /// Effective (default, max) lease TTLs of a mount.
    pub fn mount_ttls(&self, e: &MountEntry) -> (i64, i64) {
        let max = if e.config.max_lease_ttl > 0 { e.config.max_lease_ttl } else { self.config.max_lease_ttl };
        let def =
            if e.config.default_lease_ttl > 0 { e.config.default_lease_ttl } else { self.config.default_lease_ttl };
        (def.min(max), max)
    }

    /// Handles one logical request.
    pub async fn handle(&self, req: CoreRequest) -> Result<CoreResponse> {
        let path = req.path.trim_start_matches('/').to_string();
        if let Some(resp) = self.handle_unauthenticated(&req, &path).await? {
            return Ok(resp);
        }
        let active = self.active().ok_or_else(LogicalError::sealed)?;
        if matches!(req.operation, Operation::Create | Operation::Update) && path.ends_with('/') {
            return Err(LogicalError::bad_request("cannot write to a path ending in '/'"));
        }
        let token = req.token.as_deref().unwrap_or("");
        let entry = if token.is_empty() { None } else { active.tokens.lookup(token).await? };
        let Some(entry) = entry else {
            return Err(LogicalError::permission_denied());
        };
        let is_lookup_self = path == "auth/token/lookup-self";
        if !entry.is_root() && !is_lookup_self {
            // Only the root policy exists so far: everything else is denied.
            return Err(LogicalError::permission_denied());
        }
        if path == "sys" || path.starts_with("sys/") {
            return self.handle_sys(&active, &req, &path).await;
        }
        if let Some(rest) = path.strip_prefix("auth/token/") {
            return self.handle_token(&active, &req, rest, token, &entry).await;
        }
        self.handle_logical(&active, req, &path).await
    }

    async fn handle_logical(&self, active: &Active, req: CoreRequest, path: &str) -> Result<CoreResponse> {
        let router = active.router.read().map_err(|_| LogicalError::internal("router lock poisoned"))?.clone();
        let Some((route, rest)) = router.resolve(path) else {
            return Err(LogicalError::new(
                ErrorKind::NotFound,
                format!("no handler for route \"{path}\". route entry not found."),
            ));
        };
        let (def, max) = self.mount_ttls(&route.entry);
        let sreq = coffer_sdk::Request {
            operation: req.operation,
            path: rest.to_string(),
            data: req.data,
            mount_point: route.entry.path.clone(),
            storage: route.view.clone(),
            system: coffer_sdk::SystemInfo { default_lease_ttl: def, max_lease_ttl: max },
            remote_addr: None,
            services: None,
        };
        let resp = route.backend.handle_request(sreq).await?;
        let mount_type = route.entry.mount_type.clone();
        match resp {
            None => match req.operation {
                Operation::Read | Operation::List => Err(LogicalError::not_found()),
                _ => Ok(CoreResponse { mount_type, ..Default::default() }),
            },
            Some(r) => Ok(CoreResponse {
                data: r.data,
                warnings: r.warnings,
                lease_duration: r.lease_duration.unwrap_or(0),
                mount_type,
                ..Default::default()
            }),
        }
    }

    async fn handle_token(
        &self,
        active: &Active,
        req: &CoreRequest,
        rest: &str,
        token: &str,
        entry: &token::TokenEntry,
    ) -> Result<CoreResponse> {
        let mut resp = match (rest, req.operation) {
            ("lookup-self", Operation::Read | Operation::Update) => CoreResponse::data(entry.lookup_data(token)),
            ("lookup", Operation::Update | Operation::Create) => {
                let t = req.data.get("token").and_then(Value::as_str).unwrap_or("");
                if t.is_empty() {
                    return Err(LogicalError::bad_request("missing token to look up"));
                }
                match active.tokens.lookup(t).await? {
                    Some(e) => CoreResponse::data(e.lookup_data(t)),
                    None => return Err(LogicalError::bad_request("bad token")),
                }
            }
            ("lookup-self" | "lookup", _) => return Err(LogicalError::unsupported_operation()),
            _ => return Err(LogicalError::unsupported_path(&format!("auth/token/{rest}"))),
        };
        resp.mount_type = "token".into();
        Ok(resp)
    }
}
