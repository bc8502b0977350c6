//! The server's parts, built from its configuration: the core (with its plugin launcher and
//! seals), the dev-mode defaults and first mount, and each listener's socket settings, request
//! options and router state.

use crate::error::StartError;
use coffer_barrier::Barrier;
use coffer_config::{Listener, ServerConfig, StorageConfig};
use coffer_core::{Core, CoreConfig};
use coffer_http::{AppState, ListenerConfig, RequestOptions, DEFAULT_MAX_REQUEST_SIZE};
use coffer_physical::Storage;
use coffer_sdk::database::DatabaseResolver;
use std::sync::Arc;
use zeroize::Zeroizing;

/// Opens the configured storage (`inmem`, `file` or `postgresql`).
pub async fn open_storage(cfg: &StorageConfig) -> Result<Arc<dyn Storage>, StartError> {
    match cfg.kind.as_str() {
        "postgresql" => {
            let o = coffer_storage_postgresql::PgOptions::from_map(&cfg.options, |k| std::env::var(k).ok())?;
            Ok(Arc::new(coffer_storage_postgresql::PgStorage::open(o).await?))
        }
        "inmem" => Ok(Arc::new(coffer_storage_inmem::InmemStorage::new())),
        "file" => {
            let path = cfg.options.get("path").ok_or(StartError::FilePath)?;
            coffer_storage_file::FileStorage::open(path)
                .map(|s| Arc::new(s) as Arc<dyn Storage>)
                .map_err(|source| StartError::File { path: path.clone(), source })
        }
        other => Err(StartError::UnknownStorage(other.to_string())),
    }
}

/// The core's settings from the server configuration (unset ones take the core's defaults).
/// Declared plugins are not among them: the server adds them once it has checked their files
/// ([`crate::declared_plugins::prepare`]).
pub fn core_config(cfg: &ServerConfig) -> CoreConfig {
    let defaults = CoreConfig::default();
    CoreConfig {
        default_lease_ttl: cfg.default_lease_ttl.unwrap_or(defaults.default_lease_ttl),
        max_lease_ttl: cfg.max_lease_ttl.unwrap_or(defaults.max_lease_ttl),
        cluster_name: cfg.cluster_name.clone(),
        api_addr: cfg.api_addr.clone(),
        cluster_addr: cfg.cluster_addr.clone(),
        audit: cfg
            .audit
            .iter()
            .map(|a| coffer_core::DeclaredAudit {
                device_type: a.device_type.clone(),
                path: a.path.clone(),
                description: a.description.clone(),
                local: a.local,
                options: a.options.clone(),
            })
            .collect(),
        plugin_directory: cfg.plugin_directory.clone(),
        declared_plugins: Vec::new(),
        raw_storage_endpoint: cfg.raw_storage_endpoint,
        sanitized: Some(cfg.sanitized()),
    }
}

/// A core over `barrier` as the server builds it: its settings from `cfg`, the registry of
/// builtin engines and auth methods, its metrics described, external plugins launched by
/// [`PluginHost`]. Not started: the caller may attach
/// log control or HA first, then calls [`start_core`].
pub fn new_core(barrier: Arc<Barrier>, cfg: &ServerConfig) -> Arc<Core> {
    new_core_with_plugins(barrier, cfg, Vec::new())
}

/// As [`new_core`], with the declared plugins to register at unseal.
pub fn new_core_with_plugins(
    barrier: Arc<Barrier>,
    cfg: &ServerConfig,
    declared: Vec<coffer_core::catalog::CatalogEntry>,
) -> Arc<Core> {
    let databases = Arc::new(ServerDatabases::default());
    let core = Core::new(
        barrier,
        CoreConfig { declared_plugins: declared, ..core_config(cfg) },
        coffer_builtins::registry_with_databases(databases.clone()),
    );
    databases.bind(&core);
    coffer_core::metrics::describe();
    core.set_plugin_launcher(Arc::new(PluginHost));
    core.set_snapshot_s3(Arc::new(crate::snapshot_s3::Connector));
    core
}

/// The database engine's plugins in the server: the built-in ones, then the plugin catalog's
/// entries of type `database` (external plugins speaking the database plugin protocol v5). A
/// `plugin_version` naming a registered version goes to the catalog first, as in OpenBao, so a
/// catalogued version of a built-in name is found.
#[derive(Default)]
pub struct ServerDatabases {
    core: std::sync::OnceLock<std::sync::Weak<Core>>,
}

impl ServerDatabases {
    fn bind(&self, core: &Arc<Core>) {
        let _ = self.core.set(Arc::downgrade(core));
    }
}

#[async_trait::async_trait]
impl DatabaseResolver for ServerDatabases {
    async fn resolve(
        &self,
        plugin_name: &str,
        plugin_version: &str,
    ) -> coffer_sdk::Result<Option<Box<dyn coffer_sdk::database::Database>>> {
        let core = self.core.get().and_then(std::sync::Weak::upgrade);
        let versioned = !plugin_version.is_empty() && !plugin_version.ends_with("+builtin");
        if versioned {
            if let Some(core) = &core {
                if let Some(db) = core.resolve_database_plugin(plugin_name, plugin_version).await? {
                    return Ok(Some(db));
                }
            }
        }
        if let Some(db) = coffer_builtins::BuiltinDatabases.resolve(plugin_name, plugin_version).await? {
            return Ok(Some(db));
        }
        match &core {
            Some(core) if !versioned => core.resolve_database_plugin(plugin_name, plugin_version).await,
            _ => Ok(None),
        }
    }
}

/// Starts the core's background work and installs the configured seals (Shamir when none is
/// configured), which starts auto-unsealing.
pub fn start_core(core: &Arc<Core>, cfg: &mut ServerConfig) -> Result<(), StartError> {
    core.spawn_background();
    crate::seals::install(core, cfg).map_err(|e| StartError::SealConfiguration(Box::new(e)))
}

/// What `-dev` changes in the configuration: in-memory storage unless one is configured, a
/// plain-HTTP listener at `listen_address` unless one is configured, the web UI, and the
/// plugin directory when given.
pub fn apply_dev_defaults(cfg: &mut ServerConfig, listen_address: &str, plugin_dir: Option<&str>) {
    if cfg.storage.is_none() {
        cfg.storage = Some(StorageConfig { kind: "inmem".into(), options: Default::default() });
    }
    // As OpenBao: the dev listener is always there (first), beside any the configuration adds.
    cfg.listeners.insert(0, Listener { tls_disable: true, ..Listener::tcp(listen_address) });
    cfg.ui = true;
    if let Some(dir) = plugin_dir {
        cfg.plugin_directory = Some(dir.to_string());
    }
}

/// Initialises a dev server (one key share, threshold one, `root_token_id` as the root token
/// when given), leaves it unsealed and mounts `secret/`. Returns the unseal key and root token.
pub async fn init_dev(core: &Core, root_token_id: Option<&str>) -> Result<(Zeroizing<Vec<u8>>, String), StartError> {
    let (keys, root) = core.init_with(1, 1, root_token_id, true).await.map_err(StartError::DevInit)?;
    dev_mounts(core, &root).await.map_err(|e| StartError::DevSetup(Box::new(e)))?;
    let key = keys.into_iter().next().unwrap_or_default();
    Ok((key, root))
}

/// A listener's socket settings and the router state of its requests.
pub fn listener_state(
    core: &Arc<Core>,
    cfg: &ServerConfig,
    l: &Listener,
) -> Result<(ListenerConfig, AppState), StartError> {
    let (lc, options) = listener_settings(l)?;
    let state = AppState {
        core: core.clone(),
        max_request_size: lc.max_request_size,
        ui: cfg.ui,
        unauthenticated_metrics: l.unauthenticated_metrics_access,
        options: Arc::new(options),
        cluster: None,
    };
    Ok((lc, state))
}

/// A configured listener as the HTTP layer takes it: the socket and TLS side, and the options
/// applied to each request.
pub fn listener_settings(l: &Listener) -> Result<(ListenerConfig, RequestOptions), StartError> {
    use coffer_config::{StatusMatch, TlsVersion};
    use coffer_http::{CustomHeaders, ForwardedFor};
    use std::time::Duration;
    let version = |v: TlsVersion| match v {
        TlsVersion::Tls12 => coffer_http::TlsVersion::Tls12,
        TlsVersion::Tls13 => coffer_http::TlsVersion::Tls13,
    };
    let secs = |s: Option<u64>| s.map(Duration::from_secs);
    let lc = ListenerConfig {
        address: l.address.clone(),
        tls_disable: l.tls_disable,
        tls_cert_file: l.tls_cert_file.clone(),
        tls_key_file: l.tls_key_file.clone(),
        max_request_size: l.max_request_size.unwrap_or(DEFAULT_MAX_REQUEST_SIZE),
        tls_min_version: version(l.tls_min_version),
        tls_max_version: version(l.tls_max_version),
        tls_cipher_suites: l.tls_cipher_suites.clone(),
        tls_require_and_verify_client_cert: l.tls_require_and_verify_client_cert,
        tls_client_ca_file: l.tls_client_ca_file.clone(),
        tls_disable_client_certs: l.tls_disable_client_certs,
        http_read_header_timeout: secs(l.http_read_header_timeout),
        http_idle_timeout: secs(l.http_idle_timeout),
    };
    let mut headers = CustomHeaders::default();
    for (m, list) in &l.custom_response_headers {
        let mut pairs = Vec::new();
        for (name, values) in list {
            let n = coffer_http::HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| StartError::HeaderName { name: name.clone(), source: Box::new(e) })?;
            let v = coffer_http::HeaderValue::from_str(&values.join("; "))
                .map_err(|e| StartError::HeaderValue { name: name.clone(), source: Box::new(e) })?;
            pairs.push((n, v));
        }
        match m {
            StatusMatch::Default => headers.default.extend(pairs),
            StatusMatch::Class(c) => headers.class[usize::from(*c)].extend(pairs),
            StatusMatch::Exact(c) => headers.exact.push((*c, pairs)),
        }
    }
    let options = RequestOptions {
        forwarded_for: l.x_forwarded_for.as_ref().map(|x| ForwardedFor {
            authorized: x.authorized.iter().map(|c| (c.addr, c.prefix)).collect(),
            hop_skips: x.hop_skips,
            reject_not_authorized: x.reject_not_authorized,
            reject_not_present: x.reject_not_present,
        }),
        max_request_duration: secs(l.max_request_duration),
        read_timeout: secs(l.http_read_timeout),
        disable_unauthed_generate_root: l.disable_unauthed_generate_root_endpoints,
        disable_unauthed_rekey: l.disable_unauthed_rekey_endpoints,
        max_json_memory: l.max_request_json_memory.or(Some(coffer_http::DEFAULT_MAX_JSON_MEMORY)),
        max_json_strings: l.max_request_json_strings.or(Some(coffer_http::DEFAULT_MAX_JSON_STRINGS)),
        headers: headers.with_openbao_defaults(),
    };
    Ok((lc, options))
}

/// The dev server mounts `secret/` as KV version 2, as OpenBao's dev server does.
pub async fn dev_mounts(core: &Core, root: &str) -> Result<(), StartError> {
    let mut data = serde_json::Map::new();
    data.insert("type".into(), "kv".into());
    data.insert("options".into(), serde_json::json!({ "version": "2" }));
    data.insert("description".into(), "key/value secret storage".into());
    core.handle(coffer_core::CoreRequest {
        operation: coffer_sdk::Operation::Update,
        path: "sys/mounts/secret".into(),
        data,
        token: Some(root.to_string()),
        remote_addr: None,
        wrap_ttl: None,
        basic_auth: None,
        client_certs: None,
    })
    .await
    .map(|_| ())
    .map_err(StartError::from)
}

/// Runs external plugins over the Vault plugin protocol (go-plugin, gRPC, AutoMTLS).
pub struct PluginHost;

#[async_trait::async_trait]
impl coffer_core::catalog::PluginLauncher for PluginHost {
    async fn launch(
        &self,
        spec: &coffer_core::catalog::PluginSpec,
    ) -> Result<Arc<dyn coffer_sdk::Backend>, coffer_core::ha::BoxError> {
        let launch = coffer_plugin::LaunchSpec {
            name: spec.name.clone(),
            args: spec.args.clone(),
            env: spec.env.clone(),
            sha256: spec.sha256.clone(),
            ..coffer_plugin::LaunchSpec::new(&spec.path)
        };
        // A multiplexed plugin's running process is shared with the new mount.
        let client = coffer_plugin::launch_shared(launch).await?;
        // OpenBao refuses a plugin whose own type is not the one it is registered and mounted as.
        if let Ok(actual) = client.backend_kind().await {
            if !spec.kind.is_empty() && actual != spec.kind && actual != "unknown" {
                client.close().await;
                return Err(format!(
                    "the plugin reports type {actual:?} but is registered as {:?}: register it under its own type",
                    spec.kind
                )
                .into());
            }
        }
        Ok(Arc::new(client))
    }

    async fn launch_database(
        &self,
        spec: &coffer_core::catalog::PluginSpec,
    ) -> Result<Box<dyn coffer_sdk::database::Database>, coffer_core::ha::BoxError> {
        let launch = coffer_plugin::LaunchSpec {
            name: spec.name.clone(),
            args: spec.args.clone(),
            env: spec.env.clone(),
            sha256: spec.sha256.clone(),
            ..coffer_plugin::LaunchSpec::new(&spec.path)
        };
        Ok(Box::new(coffer_plugin::launch_database(launch).await?))
    }
}

/// Request forwarding on an HA node (decision 0027): the cluster address it advertises while
/// active, and the addresses its cluster listeners bind. Both empty with `disable_clustering`.
/// As OpenBao: `cluster_addr` defaults to the `api_addr`'s host with the port plus one (scheme
/// `https`), and a listener's `cluster_address` to its `address` with the port plus one.
pub fn cluster_settings(cfg: &ServerConfig, api_addr: &str) -> (Option<String>, Vec<String>) {
    if cfg.disable_clustering {
        return (None, Vec::new());
    }
    let advertised = cfg.cluster_addr.clone().filter(|a| !a.is_empty()).or_else(|| {
        let host_port = api_addr.split_once("://").map(|(_, r)| r).unwrap_or(api_addr);
        let host_port = host_port.split('/').next().unwrap_or(host_port);
        port_plus_one(host_port).map(|hp| format!("https://{hp}"))
    });
    let mut binds: Vec<String> = Vec::new();
    for l in cfg.listeners.iter().filter(|l| l.kind == "tcp") {
        if let Some(a) = l.cluster_address.clone().or_else(|| port_plus_one(&l.address)) {
            if !binds.contains(&a) {
                binds.push(a);
            }
        }
    }
    (advertised, binds)
}

/// `host:port` with the port plus one (None when there is no numeric port below 65535).
fn port_plus_one(host_port: &str) -> Option<String> {
    let (host, port) = host_port.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    Some(format!("{host}:{}", port.checked_add(1)?))
}

#[cfg(test)]
mod cluster_tests {
    use super::*;

    #[test]
    fn cluster_addresses_default_to_the_port_plus_one_and_disable_clustering_clears_them() {
        let mut cfg = ServerConfig::default();
        cfg.listeners.push(Listener::tcp("0.0.0.0:8200"));
        let mut second = Listener::tcp("10.0.0.5:9200");
        second.cluster_address = Some("10.0.0.5:9999".into());
        cfg.listeners.push(second);
        let (adv, binds) = cluster_settings(&cfg, "https://node-a.example:8200");
        assert_eq!(adv.as_deref(), Some("https://node-a.example:8201"));
        assert_eq!(binds, vec!["0.0.0.0:8201".to_string(), "10.0.0.5:9999".to_string()]);
        cfg.cluster_addr = Some("https://10.0.0.1:7000".into());
        assert_eq!(cluster_settings(&cfg, "http://x:1").0.as_deref(), Some("https://10.0.0.1:7000"));
        cfg.disable_clustering = true;
        assert_eq!(cluster_settings(&cfg, "http://x:1"), (None, Vec::new()));
    }
}
