//! `coffer server`: loads the configuration, opens storage, builds the core and serves the
//! listeners until SIGINT/SIGTERM.

use crate::error::StartError;
use clap::Parser;
use coffer_barrier::Barrier;
use coffer_config::{Listener, ServerConfig, StorageConfig};
use coffer_core::{Core, CoreConfig};
use coffer_http::{AppState, ListenerConfig, RequestOptions, DEFAULT_MAX_REQUEST_SIZE};
use coffer_physical::Storage;
use std::sync::Arc;

#[derive(Parser, Debug)]
#[command(name = "coffer server", about = "Run a Coffer server")]
struct Args {
    /// Configuration file or directory (HCL or JSON); may be repeated.
    #[arg(long = "config")]
    config: Vec<String>,
    /// Start an unsealed, in-memory development server.
    #[arg(long)]
    dev: bool,
    /// Root token ID for the dev server.
    #[arg(long = "dev-root-token-id", env = "VAULT_DEV_ROOT_TOKEN_ID")]
    dev_root_token_id: Option<String>,
    /// Listen address for the dev server.
    #[arg(long = "dev-listen-address", env = "VAULT_DEV_LISTEN_ADDRESS", default_value = "127.0.0.1:8200")]
    dev_listen_address: String,
    /// Plugin directory for the dev server.
    #[arg(long = "dev-plugin-dir")]
    dev_plugin_dir: Option<String>,
    /// Do not write the dev root token to ~/.vault-token.
    #[arg(long = "dev-no-store-token")]
    dev_no_store_token: bool,
    /// Log level (trace, debug, info, warn, error).
    #[arg(long = "log-level")]
    log_level: Option<String>,
    /// Log format (standard or json).
    #[arg(long = "log-format")]
    log_format: Option<String>,
}

/// Go-style flags (`-dev`, `-config=x`) become clap's long flags.
pub fn normalize_flags(args: &[String]) -> Vec<String> {
    args.iter()
        .map(|a| if a.starts_with('-') && !a.starts_with("--") && a.len() > 2 { format!("-{a}") } else { a.clone() })
        .collect()
}

/// Writes owner-only (0600) whatever the umask: a file created with that mode, and an existing
/// one tightened to it.
pub(crate) fn open_owner_only(path: &std::path::Path, append: bool) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut o = std::fs::OpenOptions::new();
    o.create(true).mode(0o600);
    if append {
        o.append(true);
    } else {
        o.write(true).truncate(true);
    }
    let f = o.open(path)?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    Ok(f)
}

/// Opens the storage, and its HA lock when the stanza enables HA.
async fn open_storage_ha(
    cfg: &StorageConfig,
) -> Result<(Arc<dyn Storage>, Option<Arc<dyn coffer_core::ha::HaBackend>>), StartError> {
    if cfg.kind == "postgresql" {
        let o = coffer_storage_postgresql::PgOptions::from_map(&cfg.options, |k| std::env::var(k).ok())?;
        let s = coffer_storage_postgresql::PgStorage::open(o).await?;
        let ha = s
            .options()
            .ha_enabled
            .then(|| Arc::new(crate::ha::PgHa(s.ha_lock())) as Arc<dyn coffer_core::ha::HaBackend>);
        return Ok((Arc::new(s), ha));
    }
    if cfg.options.get("ha_enabled").is_some_and(|v| v == "true") {
        return Err(StartError::NoHa(cfg.kind.clone()));
    }
    Ok((open_storage(cfg).await?, None))
}

pub(crate) async fn open_storage(cfg: &StorageConfig) -> Result<Arc<dyn Storage>, StartError> {
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

pub fn main(raw: &[String]) -> i32 {
    let mut argv = vec!["coffer server".to_string()];
    argv.extend(normalize_flags(raw));
    let args = match Args::try_parse_from(argv) {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 1 } else { 0 };
        }
    };
    let mut cfg = if args.config.is_empty() {
        if !args.dev {
            eprintln!("Error: no configuration given: pass -config=FILE, or -dev for a development server");
            return 1;
        }
        ServerConfig::default()
    } else {
        match ServerConfig::load(&args.config) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("Error loading configuration: {e}");
                return 1;
            }
        }
    };
    cfg.apply_env(|k| std::env::var(k).ok());
    if args.dev {
        if cfg.storage.is_none() {
            cfg.storage = Some(StorageConfig { kind: "inmem".into(), options: Default::default() });
        }
        if cfg.listeners.is_empty() {
            cfg.listeners.push(Listener { tls_disable: true, ..Listener::tcp(&args.dev_listen_address) });
        }
        cfg.ui = true;
        if args.dev_plugin_dir.is_some() {
            cfg.plugin_directory = args.dev_plugin_dir.clone();
        }
    }
    let Some(storage_cfg) = cfg.storage.clone() else {
        eprintln!("Error: the configuration has no storage stanza (e.g. storage \"file\" {{ path = \"…\" }})");
        return 1;
    };
    if cfg.listeners.is_empty() {
        eprintln!("Error: the configuration has no listener stanza (e.g. listener \"tcp\" {{ address = \"127.0.0.1:8200\" }})");
        return 1;
    }
    let level = args.log_level.clone().or(cfg.log_level.clone()).unwrap_or_else(|| "info".into());
    let format = args.log_format.clone().or(cfg.log_format.clone()).unwrap_or_else(|| "standard".into());
    let log_file = match cfg.log_file.as_deref().map(|p| {
        open_owner_only(std::path::Path::new(p), true)
            .map_err(|source| StartError::LogFile { path: p.to_string(), source })
    }) {
        None => None,
        Some(Ok(f)) => Some(f),
        Some(Err(e)) => {
            eprintln!("Error: {e}");
            return 1;
        }
    };
    let logs = match crate::logging::Logs::init(&level, format == "json", log_file) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("Error: {e}");
            return 1;
        }
    };
    for w in &cfg.warnings {
        tracing::warn!("{w}");
    }
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("Error: cannot start the runtime: {e}");
            return 1;
        }
    };
    rt.block_on(run(args, cfg, storage_cfg, logs))
}

async fn run(args: Args, mut cfg: ServerConfig, storage_cfg: StorageConfig, logs: Arc<crate::logging::Logs>) -> i32 {
    let (storage, ha) = match open_storage_ha(&storage_cfg).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("Error: {e}");
            return 1;
        }
    };
    let barrier = Arc::new(Barrier::new(storage));
    let defaults = CoreConfig::default();
    let core = Core::new(
        barrier,
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
            raw_storage_endpoint: cfg.raw_storage_endpoint,
            sanitized: Some(cfg.sanitized()),
        },
        coffer_builtins::registry(),
    );
    core.set_log_control(logs);
    if let Some(ha) = ha {
        let Some(api_addr) = cfg.api_addr.clone().filter(|a| !a.is_empty()) else {
            eprintln!("Error: ha_enabled needs api_addr: the address standbys redirect clients to");
            return 1;
        };
        core.enable_ha(ha, api_addr);
    }
    coffer_core::metrics::describe();
    core.set_plugin_launcher(Arc::new(PluginHost));
    core.spawn_background();
    if let Err(e) = crate::seals::install(&core, &mut cfg) {
        eprintln!("Error: seal configuration: {e}");
        return 1;
    }

    // A dev server is initialised, unsealed and has its mounts before any listener answers, so
    // its first healthy sys/health means ready.
    let dev_secrets = if args.dev {
        let root_id = args.dev_root_token_id.clone();
        match core.init_with(1, 1, root_id.as_deref(), true).await {
            Ok((keys, root)) => {
                if let Err(e) = dev_mounts(&core, &root).await {
                    eprintln!("Error: dev setup failed: {e}");
                    return 1;
                }
                if !args.dev_no_store_token {
                    if let Some(home) = std::env::var_os("HOME") {
                        let path = std::path::Path::new(&home).join(".vault-token");
                        let written = open_owner_only(&path, false).and_then(|mut f| {
                            use std::io::Write;
                            f.write_all(root.as_bytes())
                        });
                        if let Err(e) = written {
                            tracing::warn!(path = %path.display(), error = %e, "cannot store the dev root token");
                        }
                    }
                }
                Some((keys.first().map(|k| base64_std(k)).unwrap_or_default(), root))
            }
            Err(e) => {
                eprintln!("Error: dev initialisation failed: {e}");
                return 1;
            }
        }
    } else {
        None
    };

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut addrs = Vec::new();
    for l in &cfg.listeners {
        let (lc, options) = match listener_settings(l) {
            Ok(x) => x,
            Err(e) => {
                eprintln!("Error: {e}");
                return 1;
            }
        };
        let state = AppState {
            core: core.clone(),
            max_request_size: lc.max_request_size,
            ui: cfg.ui,
            unauthenticated_metrics: l.unauthenticated_metrics_access,
            options: Arc::new(options),
        };
        let (btx, brx) = tokio::sync::oneshot::channel();
        let rx = stop_rx.clone();
        let tls = !lc.tls_disable;
        tokio::spawn(async move {
            if let Err(e) = coffer_http::serve(lc, state, rx, btx).await {
                eprintln!("Error: {e}");
                std::process::exit(1);
            }
        });
        match brx.await {
            Ok(a) => addrs.push((a, tls)),
            Err(_) => {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                return 1;
            }
        }
    }

    println!("==> Coffer server configuration:\n");
    println!("             Storage: {}", storage_cfg.kind);
    for (a, tls) in &addrs {
        println!("            Listener: tcp (addr: \"{a}\", tls: \"{}\")", if *tls { "enabled" } else { "disabled" });
    }
    println!(
        "             Version: Coffer {} (OpenBao API {})",
        env!("CARGO_PKG_VERSION"),
        coffer_core::COMPAT_VERSION
    );
    println!();

    if let Some((key_b64, root)) = dev_secrets {
        let addr = addrs.first().map(|(a, _)| a.to_string()).unwrap_or_default();
        println!("WARNING! dev mode is enabled! In this mode, Coffer runs entirely in-memory");
        println!("and starts unsealed with a single unseal key. Never use it in production.\n");
        println!("You may need to set the following environment variables:\n");
        println!("    $ export VAULT_ADDR='http://{addr}'");
        println!("    $ export BAO_ADDR='http://{addr}'\n");
        println!("The unseal key and root token are displayed below in case you want to");
        println!("seal/unseal the server or re-authenticate.\n");
        println!("Unseal Key: {key_b64}");
        println!("Root Token: {root}\n");
    }
    println!("==> Coffer server started! Log data will stream in below:\n");
    let pid_file = cfg.pid_file.clone();
    if let Some(p) = &pid_file {
        if let Err(e) = std::fs::write(p, format!("{}\n", std::process::id())) {
            eprintln!("Error: cannot write pid_file {p:?}: {e}");
            return 1;
        }
    }
    use std::io::Write;
    let _ = std::io::stdout().flush();

    // SIGHUP reopens file audit devices (log rotation).
    if let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        let c = core.clone();
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                tracing::info!("SIGHUP: reopening audit devices");
                c.reopen_audit();
            }
        });
    }
    wait_for_signal().await;
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    let _ = core.seal_now().await;
    if let Some(p) = &pid_file {
        let _ = std::fs::remove_file(p);
    }
    0
}

/// A configured listener as the HTTP layer takes it: the socket and TLS side, and the options
/// applied to each request.
fn listener_settings(l: &Listener) -> Result<(ListenerConfig, RequestOptions), StartError> {
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

fn base64_std(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// The dev server mounts `secret/` as KV version 2, as OpenBao's dev server does.
async fn dev_mounts(core: &Core, root: &str) -> Result<(), StartError> {
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
    })
    .await
    .map(|_| ())
    .map_err(StartError::from)
}

async fn wait_for_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {},
    }
}

/// Runs external plugins over the Vault plugin protocol (go-plugin, gRPC, AutoMTLS).
struct PluginHost;

#[async_trait::async_trait]
impl coffer_core::catalog::PluginLauncher for PluginHost {
    async fn launch(&self, spec: &coffer_core::catalog::PluginSpec) -> Result<Arc<dyn coffer_sdk::Backend>, String> {
        let launch = coffer_plugin::LaunchSpec {
            name: spec.name.clone(),
            args: spec.args.clone(),
            env: spec.env.clone(),
            sha256: spec.sha256.clone(),
            ..coffer_plugin::LaunchSpec::new(&spec.path)
        };
        // The launcher contract (coffer_core::catalog::PluginLauncher) still takes text.
        let client = coffer_plugin::PluginClient::start(launch).await.map_err(|e| e.to_string())?;
        // OpenBao refuses a plugin whose own type is not the one it is registered and mounted as.
        if let Ok(actual) = client.backend_kind().await {
            if !spec.kind.is_empty() && actual != spec.kind && actual != "unknown" {
                client.shutdown().await;
                return Err(format!(
                    "the plugin reports type {actual:?} but is registered as {:?}: register it under its own type",
                    spec.kind
                ));
            }
        }
        Ok(Arc::new(client))
    }
}
