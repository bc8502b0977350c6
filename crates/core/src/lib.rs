//! Coffer's core: seal state, initialisation, the mount table and router, the token store and
//! the system backend. It knows nothing of HTTP: it takes logical requests and returns logical
//! responses or [`LogicalError`]s whose kind the HTTP layer maps to a status.
#![forbid(unsafe_code)]

pub use coffer_audit as audit;
mod autoseal;
pub mod catalog;
pub use coffer_system::cors;
pub mod error;
pub mod ha;
pub mod identity;
mod identity_oidc;
pub mod leases;
pub use coffer_system::logging;
pub mod metrics;
pub mod mounts;
mod openapi;
pub use openapi::path_templates;
mod drift_guard;
pub mod password;
mod periodic;
pub use coffer_system::policy_store;
pub mod quotas;
mod seal_ops;
mod snapshot;
pub mod snapshot_auto;
mod sys;
pub use coffer_system::runtime as sys_runtime;
use coffer_system_paths as system_paths;
pub use coffer_token as token;
mod token_api;
pub mod wrapping;

use crate::mounts::{MountEntry, MountTable, PrefixView, Route, Router};
use crate::token::TokenStore;
use coffer_barrier::Barrier;
use coffer_sdk::{LogicalError, Operation};
use coffer_seal::SealConfig;
use serde_json::{Map, Value};
use std::sync::{Arc, RwLock};

pub use coffer_sdk::ErrorKind;
pub use coffer_system::{version_string, BodyShape, CoreResponse, BUILD_DATE, COMPAT_VERSION};

/// The flags of a path of the core's own trees (`sys/…`, `auth/token/…`, `identity/…`,
/// `cubbyhole/…`) as its row declares them; `None` when no row serves the path (or it is not
/// in those trees).
pub fn system_path_flags(path: &str) -> Option<coffer_sdk::framework::PathFlags> {
    let (tree, rel) = system_paths::tree_of(path)?;
    tree.flags_for(rel)
}

/// Settings the core takes from the server configuration.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// Seconds. Vault's default is 768h.
    pub default_lease_ttl: i64,
    pub max_lease_ttl: i64,
    pub cluster_name: Option<String>,
    pub api_addr: Option<String>,
    pub cluster_addr: Option<String>,
    /// Audit devices declared in the server configuration.
    pub audit: Vec<DeclaredAudit>,
    /// Where external plugin binaries must live (`plugin_directory`).
    pub plugin_directory: Option<String>,
    /// Plugins declared in the server configuration, checked by the binary at start: written
    /// to the catalog at every unseal (`plugin_auto_register`).
    pub declared_plugins: Vec<catalog::CatalogEntry>,
    /// `raw_storage_endpoint = true`: serve `sys/raw/…`.
    pub raw_storage_endpoint: bool,
    /// The configuration without its secrets, as `sys/config/state/sanitized` shows it.
    pub sanitized: Option<Map<String, Value>>,
}

/// An audit device from the server configuration (`audit "file" "path" { … }`).
#[derive(Debug, Clone)]
pub struct DeclaredAudit {
    pub device_type: String,
    pub path: String,
    pub description: String,
    pub local: bool,
    pub options: std::collections::BTreeMap<String, String>,
}

impl Default for CoreConfig {
    fn default() -> Self {
        CoreConfig {
            default_lease_ttl: 768 * 3600,
            max_lease_ttl: 768 * 3600,
            cluster_name: None,
            api_addr: None,
            cluster_addr: None,
            audit: Vec::new(),
            plugin_directory: None,
            declared_plugins: Vec::new(),
            raw_storage_endpoint: false,
            sanitized: None,
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
    /// The client's address (for CIDR-bound tokens and credentials).
    pub remote_addr: Option<std::net::IpAddr>,
    /// `X-Vault-Wrap-TTL`: wrap the response for this many seconds.
    pub wrap_ttl: Option<i64>,
    /// `Authorization: Basic` credentials (client id, secret), which the OIDC provider's
    /// token endpoint takes from its clients (`client_secret_basic`).
    pub basic_auth: Option<Box<(String, String)>>,
    /// The client's TLS certificate chain (leaf first, DER), when it presented one: handed to
    /// the backend (cert auth logins and renewals verify it).
    pub client_certs: Option<Arc<Vec<Vec<u8>>>>,
}

/// The trees the core serves itself: never a mounted backend's unauthenticated path.
fn is_core_tree(path: &str) -> bool {
    ["sys/", "auth/token/", "identity/", "cubbyhole/"].iter().any(|p| path.starts_with(p))
}

/// A raw answer's extras: its exact status code and its headers (`http_headers`: name to a
/// string or a list of strings), kept only when the mount's `allowed_response_headers` names
/// them (case-insensitively).
fn raw_extras(d: &Map<String, Value>, allowed: &[String]) -> (Option<u16>, Vec<(String, String)>) {
    let code = d.get("http_status_code").and_then(Value::as_u64).and_then(|c| u16::try_from(c).ok());
    let mut headers = Vec::new();
    if let Some(Value::Object(h)) = d.get("http_headers") {
        for (name, v) in h {
            if !allowed.iter().any(|a| a.eq_ignore_ascii_case(name)) {
                continue;
            }
            let values: Vec<&str> = match v {
                Value::String(s) => vec![s.as_str()],
                Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            headers.extend(values.into_iter().map(|x| (name.clone(), x.to_string())));
        }
    }
    (code, headers)
}

/// A backend's answer with Vault's raw-answer keys (`http_content_type`, `http_raw_body` —
/// bytes, or a string that is base64 when it decodes as such —, `http_status_code`), as PKI's
/// certificate and CRL paths and plugins answer: the body goes out as is. Other answers pass
/// through unchanged.
#[allow(clippy::type_complexity)]
fn raw_answer(
    data: Option<Map<String, Value>>,
    status: coffer_sdk::ResponseStatus,
) -> Result<(Option<Map<String, Value>>, Option<(String, Vec<u8>)>, coffer_sdk::ResponseStatus)> {
    use base64::Engine as _;
    let Some(mut d) = data else { return Ok((None, None, status)) };
    let Some(ct) = d.get("http_content_type").and_then(Value::as_str).map(str::to_string) else {
        return Ok((Some(d), None, status));
    };
    let body = match d.remove("http_raw_body") {
        Some(Value::String(s)) => {
            base64::engine::general_purpose::STANDARD.decode(&s).unwrap_or_else(|_| s.into_bytes())
        }
        Some(Value::Array(a)) => a
            .iter()
            .map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
            .collect::<Option<Vec<u8>>>()
            .ok_or_else(|| LogicalError::internal("http_raw_body is not a byte array"))?,
        _ => Vec::new(),
    };
    let status = match d.get("http_status_code").and_then(Value::as_u64) {
        Some(404) => coffer_sdk::ResponseStatus::Error(coffer_sdk::ErrorKind::NotFound),
        Some(400) => coffer_sdk::ResponseStatus::Error(coffer_sdk::ErrorKind::BadRequest),
        Some(401) => coffer_sdk::ResponseStatus::Error(coffer_sdk::ErrorKind::Unauthorized),
        Some(500) => coffer_sdk::ResponseStatus::Error(coffer_sdk::ErrorKind::Internal),
        _ => status,
    };
    Ok((None, Some((ct, body)), status))
}

/// Debug output names fields and keys, never the token or the values.
impl std::fmt::Debug for CoreRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoreRequest")
            .field("operation", &self.operation)
            .field("path", &self.path)
            .field("data_keys", &self.data.keys().collect::<Vec<_>>())
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("basic_auth", &self.basic_auth.as_ref().map(|b| (&b.0, "<redacted>")))
            .finish()
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
    /// Lock order: `mounts` before `auth_mounts`.
    pub mounts: tokio::sync::Mutex<MountTable>,
    pub auth_mounts: tokio::sync::Mutex<MountTable>,
    pub tokens: TokenStore,
    pub policies: policy_store::PolicyStore,
    pub identity: identity::IdentityStore,
    pub audit: audit::AuditBroker,

    pub cluster: ClusterInfo,
    pub remounts: RwLock<std::collections::HashMap<String, Value>>,
    /// The first expiry bucket (minute) the lease sweeper has not finished; `None` until the
    /// first sweep after unseal, which lists every bucket once (`leases::expire_due`).
    pub(crate) sweep_next: std::sync::Mutex<Option<i64>>,
}

/// State of the health endpoint, for the HTTP layer to pick a status.
#[derive(Debug, Clone)]
pub struct Health {
    pub initialized: bool,
    pub sealed: bool,
    pub standby: bool,
    pub cluster: Option<ClusterInfo>,
    /// The seal in use (`shamir`, `pkcs11`, `transit`) and whether operators hold recovery keys.
    pub seal_type: String,
    pub recovery_seal: bool,
    /// Why an auto seal could not unseal the server (unreachable HSM/transit server, …).
    pub seal_error: Option<String>,
}

pub struct Core {
    pub(crate) barrier: Arc<Barrier>,
    /// The leases and their indexes (`coffer-expiration`; the expiration manager is `leases`).
    pub(crate) leases: coffer_expiration::LeaseStore,
    pub(crate) config: CoreConfig,
    pub(crate) active: RwLock<Option<Arc<Active>>>,
    pub(crate) seal: tokio::sync::Mutex<seal_ops::SealState>,
    pub(crate) seal_config: RwLock<Option<SealConfig>>,
    /// The configured auto seal and the old seal of a migration (`autoseal`).
    pub(crate) seals: RwLock<autoseal::Seals>,
    pub(crate) services: Arc<password::Services>,
    /// The resource quotas in force (`quotas`; installed at unseal and on every change).
    pub(crate) quotas: Arc<coffer_quota::Quotas>,
    pub(crate) plugin_launcher: RwLock<Option<Arc<dyn catalog::PluginLauncher>>>,
    /// Running external plugin instances, by mount UUID.
    pub(crate) plugins: RwLock<std::collections::HashMap<String, Arc<dyn coffer_sdk::Backend>>>,
    /// Set when the server runs in an HA cluster (`ha.rs`).
    pub(crate) ha: std::sync::OnceLock<ha::HaState>,
    /// What `sys/loggers` and `sys/monitor` act on, injected by the binary.
    pub(crate) log_control: RwLock<Option<Arc<dyn logging::LogControl>>>,
    /// Requests being served (`sys/in-flight-req`).
    pub(crate) in_flight: Arc<sys_runtime::InFlight>,
    /// `sys/config/cors`, consulted by the HTTP layer (`cors`).
    pub(crate) cors: cors::CorsState,
    /// The builtin engines and auth methods, injected by the binary.
    pub(crate) registry: coffer_sdk::registry::BackendRegistry,
    /// The registry's cubbyhole backend, built on first use (`wrapping`).
    pub(crate) cubbyhole: std::sync::OnceLock<Arc<dyn coffer_sdk::Backend>>,
    /// Without `api_addr` configured: the first listener's address once it is bound (the
    /// identity token and OIDC provider issuers default to it).
    pub(crate) listener_api_addr: std::sync::OnceLock<String>,
    /// Automatic snapshots: the scheduler's state and the injected S3 client (`snapshot_auto`).
    pub(crate) auto_snapshots: snapshot_auto::AutoState,
}

impl Core {
    /// Records the first listener's bound address (`http://127.0.0.1:8200`), used where the
    /// server names itself when no `api_addr` is configured. Later calls change nothing.
    pub fn set_listener_api_addr(&self, addr: String) {
        let _ = self.listener_api_addr.set(addr);
    }

    /// A sealed core over `barrier`. `registry` is the one list of builtin engines and auth
    /// methods (`coffer_builtins::registry()` for the standard set): mounting and the plugin
    /// catalog read it.
    pub fn new(
        barrier: Arc<Barrier>,
        config: CoreConfig,
        registry: coffer_sdk::registry::BackendRegistry,
    ) -> Arc<Self> {
        Arc::new(Core {
            config,
            active: RwLock::new(None),
            seal: tokio::sync::Mutex::new(seal_ops::SealState::default()),
            seal_config: RwLock::new(None),
            seals: RwLock::new(Default::default()),
            services: Arc::new(password::Services::new(barrier.clone())),
            quotas: Default::default(),
            leases: coffer_expiration::LeaseStore::new(barrier.clone()),
            plugin_launcher: RwLock::new(None),
            plugins: RwLock::new(Default::default()),
            ha: std::sync::OnceLock::new(),
            log_control: RwLock::new(None),
            in_flight: Default::default(),
            cors: Default::default(),
            registry,
            cubbyhole: std::sync::OnceLock::new(),
            listener_api_addr: std::sync::OnceLock::new(),
            auto_snapshots: Default::default(),
            barrier,
        })
    }

    fn lazy_plugin(&self, e: &MountEntry, is_auth: bool) -> catalog::LazyPlugin {
        let o = e.options.clone().unwrap_or_default();
        let entry = catalog::CatalogEntry {
            name: e.mount_type.clone(),
            plugin_type: if is_auth { "auth".into() } else { "secret".into() },
            command: o.get("plugin_command").cloned().unwrap_or_else(|| e.mount_type.clone()),
            args: vec![],
            env: vec![],
            sha256: o.get("plugin_sha256").cloned().unwrap_or_default(),
            version: e.plugin_version.clone(),
            declarative: false,
        };
        let launcher = self.plugin_launcher.read().ok().and_then(|l| l.clone());
        catalog::LazyPlugin::new(entry, self.config.plugin_directory.clone().map(Into::into), launcher)
    }

    /// For a mount of a non-builtin type: finds the plugin in the catalog, verifies and starts
    /// it. The instance is kept by mount UUID; the digest is pinned in the mount's options.
    pub(crate) async fn start_external(&self, e: &mut MountEntry, catalog_type: &str) -> Result<()> {
        // A builtin mounts only as its own kind, and the trees the core serves itself not at
        // all, as OpenBao refuses them (a wrong-kind name is looked up in the catalog, where it
        // is not). Only new mounts are checked: stored ones keep being served (decision 0023).
        match self.registry.get(&e.mount_type) {
            Some(b) if b.is_served_by_core() && catalog_type == "secret" => {
                return Err(LogicalError::bad_request(format!("mount type of \"{}\" is not mountable", e.mount_type)));
            }
            Some(b)
                if !b.is_served_by_core()
                    && b.kind().as_str() == catalog_type
                    && mounts::backend_for(&self.registry, e).is_ok() =>
            {
                return Ok(());
            }
            _ => {}
        }
        let Some(c) = self.catalog_get(catalog_type, &e.mount_type, &e.plugin_version).await? else {
            return Err(LogicalError::bad_request(format!("plugin not found in the catalog: {}", e.mount_type)));
        };
        let backend = self.launch_plugin(&c).await?;
        let o = e.options.get_or_insert_with(Default::default);
        o.insert("plugin_sha256".into(), c.sha256.clone());
        o.insert("plugin_command".into(), c.command.clone());
        if e.plugin_version.is_empty() {
            e.plugin_version = c.version.clone();
        }
        self.plugins.write().unwrap_or_else(std::sync::PoisonError::into_inner).insert(e.uuid.clone(), backend);
        Ok(())
    }

    /// Installs the external plugin host (the server binary provides it).
    pub fn set_plugin_launcher(&self, l: Arc<dyn catalog::PluginLauncher>) {
        if let Ok(mut g) = self.plugin_launcher.write() {
            *g = Some(l);
        }
    }

    /// The builtin engines and auth methods this core was built with.
    pub fn registry(&self) -> &coffer_sdk::registry::BackendRegistry {
        &self.registry
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
        let standby = self.is_standby();
        let seal_type = match self.load_seal_config().await {
            Ok(Some(c)) => c.seal_type,
            _ => self.configured_seal_type().to_string(),
        };
        Health {
            initialized,
            sealed: active.is_none() && !standby,
            standby,
            cluster: active.map(|a| a.cluster.clone()),
            recovery_seal: seal_type != "shamir",
            seal_type,
            seal_error: self.seal_error(),
        }
    }

    /// Starts background work that lives with the process (automatic key rotation checks).
    pub fn spawn_background(self: &Arc<Self>) {
        self.spawn_auto_snapshots();
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
            let mut n: u64 = 0;
            loop {
                tick.tick().await;
                n += 1;
                let Some(core) = weak.upgrade() else { break };
                if core.is_sealed() {
                    continue;
                }
                if let Err(e) = core.expire_due().await {
                    tracing::warn!(error = %e, "lease expiry sweep failed");
                }
                if n.is_multiple_of(periodic::PERIOD_SECS) {
                    core.run_periodic().await;
                }
                if n.is_multiple_of(30) {
                    // Rate-limit budgets of clients gone quiet.
                    core.quotas.purge(std::time::Instant::now());
                }
                if n.is_multiple_of(10) {
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
            Some(raw) => serde_json::from_slice(&raw)
                .map_err(|e| LogicalError::internal("cluster info unreadable").with_source(e))?,
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
        let auth = match MountTable::load_from(&self.barrier, mounts::AUTH_TABLE_PATH).await? {
            Some(t) => t,
            None => {
                let t = MountTable { entries: vec![mounts::token_mount_entry()] };
                t.save_to(&self.barrier, mounts::AUTH_TABLE_PATH).await?;
                t
            }
        };
        let router = self.build_router(&table, &auth);
        self.load_cors().await?;
        let tokens = TokenStore::load(self.barrier.clone()).await?;
        let policies = policy_store::PolicyStore::load(self.barrier.clone()).await?;
        let identity = identity::IdentityStore::load(self.barrier.clone()).await?;
        let audit = audit::AuditBroker::default();
        let audit_table: audit::AuditTable =
            match self.barrier.get(audit::AUDIT_TABLE_PATH).await.map_err(error::barrier_err)? {
                Some(raw) => serde_json::from_slice(&raw)
                    .map_err(|e| LogicalError::internal("audit table unreadable").with_source(e))?,
                None => audit::AuditTable::default(),
            };
        for c in audit_table.entries {
            audit.add(&self.barrier, c).await?;
        }
        for d in &self.config.audit {
            let path = format!("{}/", d.path.trim_matches('/'));
            let c = audit::AuditConfig {
                uuid: format!("declared-{}", hex::encode(&path)),
                path,
                device_type: d.device_type.clone(),
                description: d.description.clone(),
                options: d.options.clone(),
                local: d.local,
                declared: true,
            };
            audit.add(&self.barrier, c).await?;
        }
        self.register_declared_plugins().await?;
        let active = Arc::new(Active {
            router: RwLock::new(Arc::new(router)),
            mounts: tokio::sync::Mutex::new(table),
            auth_mounts: tokio::sync::Mutex::new(auth),
            tokens,
            policies,
            identity,
            audit,
            cluster,
            remounts: RwLock::new(Default::default()),
            sweep_next: std::sync::Mutex::new(None),
        });
        self.services.set_active(&active);
        self.load_quotas(&active).await?;
        Ok(active)
    }

    pub(crate) fn build_router(&self, table: &MountTable, auth: &MountTable) -> Router {
        let mut routes = Vec::new();
        for (is_auth, t) in [(false, table), (true, auth)] {
            for e in &t.entries {
                if is_auth && e.mount_type == "token" {
                    continue;
                }
                let running = self.plugins.read().ok().and_then(|p| p.get(&e.uuid).cloned());
                let built = match running {
                    Some(b) => Ok(b),
                    None => match mounts::backend_for(&self.registry, e) {
                        Err(_) if e.options.as_ref().is_some_and(|o| o.contains_key("plugin_sha256")) => {
                            Ok(Arc::new(self.lazy_plugin(e, is_auth)) as Arc<dyn coffer_sdk::Backend>)
                        }
                        other => other,
                    },
                };
                match built {
                    Ok(backend) => routes.push(Arc::new(Route {
                        prefix: if is_auth { format!("auth/{}", e.path) } else { e.path.clone() },
                        is_auth,
                        entry: e.clone(),
                        backend,
                        view: Arc::new(PrefixView {
                            barrier: self.barrier.clone(),
                            prefix: if is_auth { e.auth_storage_prefix() } else { e.storage_prefix() },
                        }),
                    })),
                    Err(err) => tracing::error!(mount = %e.path, error = %err, "mount cannot be served"),
                }
            }
        }
        Router::new(routes)
    }

    /// Effective (default, max) lease TTLs of a mount.
    pub fn mount_ttls(&self, e: &MountEntry) -> (i64, i64) {
        coffer_system::mount_ttls((self.config.default_lease_ttl, self.config.max_lease_ttl), e)
    }

    /// Whether some handler serves `path`, whatever the operation: a method no handler
    /// takes (HEAD) is refused with 405 on such a path and 404 elsewhere, as OpenBao's router
    /// does. Sealed or standby: every path counts as served.
    pub fn serves_path(&self, path: &str) -> bool {
        let Some(active) = self.active() else { return true };
        if let Some((tree, rel)) = system_paths::tree_of(path) {
            return tree.flags_for(rel).is_some();
        }
        active.router.read().map(|r| r.resolve(path).is_some()).unwrap_or(true)
    }

    /// The flags of the path (`sys/…`, a mount's path …) as its row declares them: what an HA
    /// standby serves itself, what needs no token. Paths no row serves get the normal flags.
    pub fn path_flags(&self, path: &str) -> coffer_sdk::framework::PathFlags {
        let path = path.trim_start_matches('/');
        if let Some((tree, rel)) = system_paths::tree_of(path) {
            return tree.flags_for(rel).unwrap_or_default();
        }
        let router = self.active().and_then(|a| a.router.read().ok().map(|r| r.clone()));
        match router.as_ref().and_then(|r| r.resolve(path)) {
            Some((route, rest)) => route.backend.path_flags(rest),
            None => Default::default(),
        }
    }

    /// Handles one logical request: audit, authenticate, authorize against the token's ACL,
    /// dispatch, audit the outcome.
    pub async fn handle(&self, req: CoreRequest) -> Result<CoreResponse> {
        let path = req.path.trim_start_matches('/').to_string();
        // Cold branches are boxed so that their state is not part of every request's future
        // (which axum moves into a box per request): see tests/future_size.rs.
        if req.operation == Operation::Help {
            return Box::pin(self.handle_help(&req, &path)).await;
        }
        // The row's `audited` flag is the one place that decides whether audit devices see a
        // request: an audited row is recorded whenever they can record it (unsealed, devices
        // enabled), with or without a token (OpenBao records the ceremonies, the OpenAPI
        // document, a wrapping token's lookup); the status endpoints that answer while sealed
        // (seal-status, health, init, unseal, leader) are flagged not audited and never are.
        let active = self.active();
        let audit_to = match &active {
            Some(a) if a.audit.enabled() && self.path_flags(&path).audited => Some(a.clone()),
            _ => None,
        };
        if audit_to.is_none() && path.starts_with("sys/") {
            if let Some(resp) = Box::pin(self.handle_unauthenticated(&req, &path)).await? {
                return Ok(resp);
            }
        }
        let active =
            active.ok_or_else(|| if self.is_standby() { Self::standby_error() } else { LogicalError::sealed() })?;
        let started = std::time::Instant::now();
        let result = if audit_to.is_some() {
            Box::pin(self.handle_audited(&active, &req, &path)).await
        } else {
            self.handle_routed(&active, &req, &path, false).await
        };
        let router = active.router.read().ok().map(|r| r.clone());
        metrics::request(router.as_deref(), &path, req.operation, result.is_ok(), started.elapsed());
        result
    }

    /// Mount details for the audit record of `path`: (type, accessor, non-HMAC request
    /// keys, non-HMAC response keys).
    fn audit_mount_info(&self, active: &Active, path: &str) -> (String, String, Vec<String>, Vec<String>) {
        if path.starts_with("sys/") {
            return ("system".into(), "system_coffer00".into(), vec![], vec![]);
        }
        if path.starts_with("auth/token/") {
            return ("token".into(), String::new(), vec![], vec![]);
        }
        let router = match active.router.read() {
            Ok(r) => r.clone(),
            Err(_) => return Default::default(),
        };
        match router.resolve(path) {
            Some((r, _)) => (
                r.entry.mount_type.clone(),
                r.entry.accessor.clone(),
                r.entry.config.audit_non_hmac_request_keys.clone(),
                r.entry.config.audit_non_hmac_response_keys.clone(),
            ),
            None => Default::default(),
        }
    }

    async fn handle_audited(&self, active: &Arc<Active>, req: &CoreRequest, path: &str) -> Result<CoreResponse> {
        let token = req.token.as_deref().unwrap_or("");
        let entry = if token.is_empty() { None } else { active.tokens.lookup(token).await.ok().flatten() };
        let (mount_type, mount_accessor, non_hmac_req, non_hmac_resp) = self.audit_mount_info(active, path);
        let id = uuid::Uuid::new_v4().to_string();
        let record = audit::AuditRecord {
            id: &id,
            operation: req.operation.as_str(),
            path,
            data: &req.data,
            remote_addr: req.remote_addr,
            client_token: token,
            token: entry.as_deref().map(|t| audit::AuditToken {
                accessor: &t.accessor,
                display_name: &t.display_name,
                policies: &t.policies,
                meta: t.meta.as_ref(),
                entity_id: &t.entity_id,
                token_type: &t.token_type,
                ttl: t.ttl,
                creation_time: t.creation_time,
            }),
            mount_type: &mount_type,
            mount_accessor: &mount_accessor,
            non_hmac_request_keys: &non_hmac_req,
            non_hmac_response_keys: &non_hmac_resp,
            wrap_ttl: req.wrap_ttl,
        };
        let unrecorded = || LogicalError::internal("internal error: no audit device could record the request");
        if active.audit.log("request", &record, None, "").await.is_err() {
            return Err(unrecorded());
        }
        // Inside the audit stage: the `sys/` rows served without a token too.
        let result = self.handle_routed(active, req, path, true).await;
        let (resp, err) = match &result {
            Ok(r) => (
                Some(audit::AuditResponse {
                    data: r.data.as_ref(),
                    auth: r.auth.as_ref(),
                    wrap_info: r.wrap_info.as_ref(),
                    lease_id: &r.lease_id,
                    warnings: &r.warnings,
                }),
                String::new(),
            ),
            Err(e) => (None, e.to_string()),
        };
        if active.audit.log("response", &record, resp.as_ref(), &err).await.is_err() {
            // Fail closed: nothing leaves that was not recorded.
            return Err(unrecorded());
        }
        result
    }

    /// Reopens file audit devices (SIGHUP, for log rotation).
    pub fn reopen_audit(&self) {
        if let Some(a) = self.active() {
            a.audit.reopen();
        }
    }

    /// Authenticates, authorises and dispatches; `open_sys` first serves the `sys/` rows that
    /// need no token (when the caller has not already tried them outside the audit stage).
    async fn handle_routed(
        &self,
        active: &Arc<Active>,
        req: &CoreRequest,
        path: &str,
        open_sys: bool,
    ) -> Result<CoreResponse> {
        let path = path.to_string();
        let active = active.clone();
        if open_sys && path.starts_with("sys/") {
            if let Some(resp) = Box::pin(self.handle_unauthenticated(req, &path)).await? {
                return Ok(resp);
            }
        }
        // Unauthenticated rows of mounted backends: logins, and public paths of secrets engines
        // (a CA's certificate and CRL). The core's own trees declare theirs in coffer-system-paths.
        if !is_core_tree(&path) {
            if let Some(resp) = Box::pin(self.handle_login(&active, req, &path)).await? {
                // A login answer is wrapped like any other when the client asks for it.
                return match req.wrap_ttl {
                    Some(ttl) if resp.data.is_some() || resp.auth.is_some() => {
                        Box::pin(self.wrap(&active, &resp, ttl, &path)).await
                    }
                    _ => Ok(resp),
                };
            }
        }
        if path.starts_with("identity/oidc/") && system_paths::identity_flags(&path[9..]).unauthenticated {
            return Box::pin(self.handle_identity_open(&active, req, &path[9..])).await;
        }
        let token = req.token.as_deref().unwrap_or("");
        if let Some(sub @ ("unwrap" | "lookup" | "rewrap")) = path.strip_prefix("sys/wrapping/") {
            if let Some(resp) =
                Box::pin(self.check_wrapping_token(&active, req.operation, sub, &req.data, token)).await?
            {
                return Ok(resp);
            }
        }
        let entry = if token.is_empty() { None } else { active.tokens.lookup(token).await? };
        let Some(entry) = entry else {
            return Err(LogicalError::permission_denied());
        };
        if !coffer_sdk::tokenutil::addr_in_cidrs(req.remote_addr, &entry.bound_cidrs)
            || active.identity.is_disabled(&entry.entity_id).await
        {
            return Err(LogicalError::permission_denied());
        }
        if matches!(req.operation, Operation::Create | Operation::Update | Operation::Patch) && path.ends_with('/') {
            return Err(LogicalError::bad_request("cannot write to a path ending in '/'"));
        }
        let acl = self.acl_for_entry(&active, &entry).await;

        // Writes to a backend path are "create" when the target does not exist yet.
        let router = active.router.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        let system = system_paths::tree_of(&path);
        let target = if system.is_some() || path == "sys" {
            None
        } else {
            router.resolve(&path).map(|(r, rest)| (r.clone(), rest.to_string()))
        };
        // Root-protected paths need `sudo` besides the operation's capability: the row that
        // serves the path says so (a mount's backend, or the core's own trees).
        // (A root token may do everything: its requests skip the lookup.)
        let sudo = !acl.root
            && match (&system, &target) {
                (Some((tree, rel)), _) => tree.flags_for(rel).is_some_and(|f| f.sudo),
                (None, Some((route, rest))) => route.path_flags(rest).await?.sudo,
                (None, None) => false,
            };
        let mut op = req.operation;
        let sreq = target
            .as_ref()
            .map(|(route, rest)| self.backend_request(route, rest, op, req.data.clone(), req.remote_addr))
            .map(|mut r| {
                r.client_certs = req.client_certs.clone();
                r.display_name = entry.display_name.clone();
                r.entity_id = entry.entity_id.clone();
                r
            });
        if op == Operation::Update {
            if let (Some((route, _)), Some(sreq)) = (&target, &sreq) {
                if route.backend.exists(sreq).await? == Some(false) {
                    op = Operation::Create;
                }
            }
        }
        // The UI's mount listing is open to every valid token; it shows only what the ACL grants.
        let ui_listing = path == "sys/internal/ui/mounts" || path.starts_with("sys/internal/ui/mounts/");
        let decision = if ui_listing && op == Operation::Read {
            coffer_acl::Decision { allowed: true, sudo: false, caps: 0, reason: None }
        } else {
            acl.allow(op, &path, &req.data, sudo)
        };
        if !decision.allowed {
            return Err(match decision.reason {
                Some(r) => LogicalError::new(ErrorKind::PermissionDenied, format!("permission denied: {r}")),
                None => LogicalError::permission_denied(),
            });
        }
        if !acl.wrapping_allows(&path, op == Operation::List, req.wrap_ttl) {
            return Err(LogicalError::permission_denied());
        }
        // A request that may make a lease, where a lease-count quota is full.
        if matches!(op, Operation::Read | Operation::Update | Operation::Create | Operation::Patch)
            && (target.is_some() || path.starts_with("auth/token/create"))
        {
            self.check_lease_quota(&active, &path, acl.root)?;
        }
        // A wrapping token presented as the request's own token to unwrap, look up or rewrap
        // itself is not spent by the request: the handler revokes it when it is unwrapped.
        let wrapping_itself = entry.policies.iter().any(|p| p == wrapping::WRAPPING_POLICY)
            && matches!(path.as_str(), "sys/wrapping/unwrap" | "sys/wrapping/lookup" | "sys/wrapping/rewrap")
            && req.data.get("token").and_then(Value::as_str).is_none_or(str::is_empty);
        let revoke_after = if wrapping_itself { None } else { active.tokens.use_token(token, &entry).await? };
        let result =
            Box::pin(self.dispatch_authorized(&active, req, &path, op, token, &entry, &acl, &decision, target, sreq))
                .await;
        if let Some(h) = revoke_after {
            Box::pin(active.tokens.revoke_hash(&h, true)).await?;
        }
        if active.tokens.has_revoked() {
            Box::pin(self.drain_token_revocations(&active)).await?;
        }
        let resp = result?;
        match req.wrap_ttl {
            Some(ttl) if (resp.data.is_some() || resp.auth.is_some()) && resp.wrap_info.is_none() => {
                Box::pin(self.wrap(&active, &resp, ttl, &path)).await
            }
            _ => Ok(resp),
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn dispatch_authorized(
        &self,
        active: &Arc<Active>,
        req: &CoreRequest,
        path: &str,
        op: Operation,
        token: &str,
        entry: &token::TokenEntry,
        acl: &coffer_acl::Acl,
        decision: &coffer_acl::Decision,
        target: Option<(Arc<Route>, String)>,
        sreq: Option<coffer_sdk::Request>,
    ) -> Result<CoreResponse> {
        let path = path.to_string();
        if path == "cubbyhole" || path.starts_with("cubbyhole/") {
            let rest = path.trim_start_matches("cubbyhole").trim_start_matches('/');
            return Box::pin(self.handle_cubbyhole(active, token, entry, op, rest, req.data.clone())).await;
        }
        if let Some(sub) = path.strip_prefix("sys/wrapping/") {
            // `wrap` wraps the whole body; the others read their row's coerced fields.
            let routed = system_paths::route_sys(&path[4..], op, &req.data)?;
            let (d, ignored) = match routed {
                Some(r) if sub != "wrap" => (r.fields, r.ignored),
                _ => (req.data.clone(), vec![]),
            };
            let mut r = Box::pin(self.handle_wrapping(active, op, sub, &d, token, req.wrap_ttl)).await?;
            r.warn_ignored(&ignored);
            return Ok(r);
        }

        if let Some(rest) = path.strip_prefix("auth/token/") {
            // Route → coerce the row's fields → call, as a framework backend is served.
            let routed = system_paths::token_paths().route(op, rest, &req.data).map_err(|e| {
                if e.kind == ErrorKind::UnsupportedPath {
                    LogicalError::unsupported_path(&path)
                } else {
                    e
                }
            })?;
            let caller = token_api::Caller {
                token,
                entry,
                decision,
                remote_addr: req.remote_addr,
                client_certs: req.client_certs.clone(),
            };
            return Box::pin(self.handle_token(active, op, routed, &req.data, &caller)).await;
        }
        if let Some(rest) = path.strip_prefix("identity/") {
            if system_paths::identity_paths().find(rest).is_none() {
                return Err(LogicalError::unsupported_path(&path));
            }
            return Box::pin(self.handle_identity(active, op, rest, &req.data, Some(entry))).await;
        }
        if path == "sys" || path.starts_with("sys/") {
            // Its own boxed future: the routed fields live there, not in every request's future.
            return Box::pin(self.serve_sys(active, op, &path, &req.data, acl)).await;
        }
        let (Some((route, _)), Some(mut sreq)) = (target, sreq) else {
            return Err(LogicalError::new(
                ErrorKind::NotFound,
                format!("no handler for route \"{path}\". route entry not found."),
            ));
        };
        sreq.operation = op;
        self.dispatch(active, &route, sreq, op, Some(token)).await
    }

    /// The logical request a backend sees for `rest` below `route`.
    pub(crate) fn backend_request(
        &self,
        route: &Route,
        rest: &str,
        op: Operation,
        data: Map<String, Value>,
        remote_addr: Option<std::net::IpAddr>,
    ) -> coffer_sdk::Request {
        let (def, max) = self.mount_ttls(&route.entry);
        coffer_sdk::Request {
            operation: op,
            path: rest.to_string(),
            data,
            mount_point: route.prefix.clone(),
            storage: route.view.clone(),
            system: coffer_sdk::SystemInfo { default_lease_ttl: def, max_lease_ttl: max },
            remote_addr,
            services: Some(self.services.clone()),
            client_certs: None,
            display_name: String::new(),
            entity_id: String::new(),
        }
    }

    async fn dispatch(
        &self,
        active: &Active,
        route: &Route,
        sreq: coffer_sdk::Request,
        op: Operation,
        token: Option<&str>,
    ) -> Result<CoreResponse> {
        let mount_type = route.entry.mount_type.clone();
        let rest = sreq.path.clone();
        let remote = sreq.remote_addr;
        let resp = route.backend.handle_request(sreq).await?;
        match resp {
            None => match op {
                Operation::Read | Operation::List => Err(LogicalError::not_found()),
                _ => Ok(CoreResponse { mount_type, ..Default::default() }),
            },
            Some(r) => {
                if let Some(auth) = r.auth {
                    let _ = remote;
                    return Box::pin(self.mint_login_token(active, route, &rest, auth, r.warnings)).await;
                }
                let (raw_status_code, raw_headers) = match &r.data {
                    Some(d) if d.contains_key("http_content_type") => {
                        raw_extras(d, &route.entry.config.allowed_response_headers)
                    }
                    _ => (None, Vec::new()),
                };
                let (data, raw_body, status) = raw_answer(r.data, r.status)?;
                let mut out = CoreResponse {
                    data,
                    warnings: r.warnings,
                    lease_duration: r.lease_duration.unwrap_or(0),
                    mount_type,
                    status,
                    raw_body,
                    raw_status_code,
                    raw_headers: (!raw_headers.is_empty()).then(|| Box::new(raw_headers)),
                    ..Default::default()
                };
                if let Some(secret) = r.secret {
                    let (def, max) = self.mount_ttls(&route.entry);
                    let path = format!("{}{}", route.prefix, rest);
                    // Hashed only here: most responses carry no lease.
                    let token_hash = token.map(|t| active.tokens.hash(t)).unwrap_or_default();
                    let (id, ttl) = Box::pin(self.register_secret_lease(&path, &token_hash, &secret, def, max)).await?;
                    out.lease_id = id;
                    out.lease_duration = ttl;
                    out.renewable = secret.renewable;
                }
                Ok(out)
            }
        }
    }

    /// Serves unauthenticated backend paths (logins, a CA's public certificate). `None`: not
    /// such a path.
    async fn handle_login(&self, active: &Active, req: &CoreRequest, path: &str) -> Result<Option<CoreResponse>> {
        if is_core_tree(path) {
            return Ok(None);
        }
        let router = active.router.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        let Some((route, rest)) = router.resolve(path) else { return Ok(None) };
        if !route.path_flags(rest).await?.unauthenticated {
            return Ok(None);
        }
        if route.is_auth {
            self.check_lease_quota(active, path, false)?;
        }
        let route = route.clone();
        let mut sreq = self.backend_request(&route, rest, req.operation, req.data.clone(), req.remote_addr);
        sreq.client_certs = req.client_certs.clone();
        self.dispatch(active, &route, sreq, req.operation, None).await.map(Some)
    }

    /// Mints the token a login earned.
    async fn mint_login_token(
        &self,
        active: &Active,
        route: &Route,
        rest: &str,
        auth: coffer_sdk::AuthResponse,
        warnings: Vec<String>,
    ) -> Result<CoreResponse> {
        let mount = &route.entry;
        let mut policies = coffer_sdk::tokenutil::normalize_policies(auth.policies.clone());
        if !auth.no_default_policy && !policies.iter().any(|p| p == "default") {
            policies.push("default".into());
        }
        policies.retain(|p| p != "root");
        let entity_id = match &auth.alias_name {
            Some(alias) if !alias.is_empty() => {
                let id = active
                    .identity
                    .entity_for_login(&mount.accessor, &mount.mount_type, &route.prefix, alias, &auth.alias_metadata)
                    .await?;
                active.identity.sync_external_groups(&id, &mount.accessor, &auth.group_aliases).await?;
                id
            }
            _ => String::new(),
        };
        let mount_token_type = mount.options.as_ref().and_then(|o| o.get("token_type")).cloned().unwrap_or_default();
        let token_type = match (auth.token_type.as_str(), mount_token_type.as_str()) {
            ("batch", _) | ("default" | "", "default-batch" | "batch") => "batch",
            _ => "service",
        };
        let prefix = route.prefix.trim_start_matches("auth/").trim_end_matches('/').replace('/', "-");
        let shown = auth.display_name.strip_prefix(&format!("{}-", mount.mount_type)).unwrap_or(&auth.display_name);
        let mut meta = Map::new();
        for (k, v) in &auth.metadata {
            meta.insert(k.clone(), v.clone());
        }
        let (def, mount_max) = self.mount_ttls(mount);
        let mut entry = token::TokenEntry {
            policies,
            path: format!("{}{}", route.prefix, rest),
            meta: if meta.is_empty() { None } else { Some(meta) },
            // The mount's path, then the method's own name for the login when it gives one.
            display_name: if shown.is_empty() { prefix.clone() } else { format!("{prefix}-{shown}") },
            num_uses: auth.num_uses,
            creation_time: token::now(),
            explicit_max_ttl: auth.explicit_max_ttl,
            period: auth.period,
            renewable: token_type != "batch" && auth.renewable,
            orphan: true,
            entity_id,
            token_type: token_type.into(),
            bound_cidrs: auth.bound_cidrs.clone(),
            mount_accessor: mount.accessor.clone(),
            // Batch tokens are handed to the client: they keep nothing for renewals.
            internal: (token_type != "batch" && !auth.internal_data.is_empty())
                .then(|| token::InternalData(auth.internal_data.clone())),
            ..Default::default()
        };
        let max = if auth.max_ttl > 0 { auth.max_ttl.min(mount_max) } else { mount_max };
        let ttl = if auth.ttl > 0 { auth.ttl } else { def };
        let mut warnings = warnings;
        warnings.extend(self.apply_ttls(&mut entry, ttl, max));
        let (token, entry) = active.tokens.create(entry, None).await?;
        self.register_token_lease(&active.tokens.hash(&token), &entry).await?;
        let ip = self.identity_policies(active, &entry.entity_id).await?;
        Ok(CoreResponse { auth: Some(self.auth_block(&token, &entry, &ip)), warnings, ..Default::default() })
    }
}
