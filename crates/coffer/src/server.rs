//! `coffer server`: loads the configuration, opens storage, builds the core and serves the
//! listeners until SIGINT/SIGTERM.

use clap::Parser;
use coffer::error::StartError;
use coffer_barrier::Barrier;
use coffer_config::{ServerConfig, StorageConfig};
use coffer_physical::Storage;
use std::sync::Arc;

pub(crate) use coffer::assemble::open_storage;

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
        coffer::assemble::apply_dev_defaults(&mut cfg, &args.dev_listen_address, args.dev_plugin_dir.as_deref());
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
    // Declared plugins are downloaded and checked before anything else starts.
    let declared = match coffer::declared_plugins::prepare(&cfg) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("Error: {e}");
            return 1;
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("Error: cannot start the runtime: {e}");
            return 1;
        }
    };
    rt.block_on(run(args, cfg, storage_cfg, logs, declared))
}

async fn run(
    args: Args,
    mut cfg: ServerConfig,
    storage_cfg: StorageConfig,
    logs: Arc<crate::logging::Logs>,
    declared: Vec<coffer_core::catalog::CatalogEntry>,
) -> i32 {
    let (storage, ha) = match open_storage_ha(&storage_cfg).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("Error: {e}");
            return 1;
        }
    };
    let barrier = Arc::new(Barrier::new(storage));
    let core = coffer::assemble::new_core_with_plugins(barrier, &cfg, declared);
    core.set_log_control(logs);
    let mut cluster: Option<Arc<coffer_http::Cluster>> = None;
    let mut cluster_binds = Vec::new();
    if let Some(ha) = ha {
        let Some(api_addr) = cfg.api_addr.clone().filter(|a| !a.is_empty()) else {
            eprintln!("Error: ha_enabled needs api_addr: the address standbys redirect clients to");
            return 1;
        };
        let (advertised, binds) = coffer::assemble::cluster_settings(&cfg, &api_addr);
        core.enable_ha(ha, api_addr, advertised);
        cluster = Some(coffer_http::Cluster::new(core.clone()));
        cluster_binds = binds;
    } else if cfg.cluster_addr.is_some()
        || cfg.disable_clustering
        || cfg.listeners.iter().any(|l| l.cluster_address.is_some())
    {
        tracing::warn!(
            "cluster_addr, disable_clustering and listener cluster_address only matter with HA storage (ha_enabled = \"true\"); this server runs alone"
        );
    }
    if let Err(e) = coffer::assemble::start_core(&core, &mut cfg) {
        eprintln!("Error: {e}");
        return 1;
    }

    // A dev server is initialised, unsealed and has its mounts before any listener answers, so
    // its first healthy sys/health means ready.
    let dev_secrets = if args.dev {
        let root_id = args.dev_root_token_id.clone();
        match coffer::assemble::init_dev(&core, root_id.as_deref()).await {
            Ok((key, root)) => {
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
                Some((base64_std(&key), root))
            }
            Err(e) => {
                eprintln!("Error: {e}");
                return 1;
            }
        }
    } else {
        None
    };

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut addrs = Vec::new();
    for l in &cfg.listeners {
        let (lc, mut state) = match coffer::assemble::listener_state(&core, &cfg, l) {
            Ok(x) => x,
            Err(e) => {
                eprintln!("Error: {e}");
                return 1;
            }
        };
        state.cluster = cluster.clone();
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
            Ok(a) => {
                // Without api_addr the server names itself by its first listener (as OpenBao).
                core.set_listener_api_addr(format!("{}://{a}", if tls { "https" } else { "http" }));
                addrs.push((a, tls))
            }
            Err(_) => {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                return 1;
            }
        }
    }

    // The cluster listeners: forwarded requests from standbys, served while this node is active.
    let mut cluster_addrs = Vec::new();
    if let Some(cluster) = &cluster {
        for address in cluster_binds {
            let (btx, brx) = tokio::sync::oneshot::channel();
            let (c, rx) = (cluster.clone(), stop_rx.clone());
            tokio::spawn(async move {
                if let Err(e) = c.serve(address, rx, btx).await {
                    eprintln!("Error: {e}");
                    std::process::exit(1);
                }
            });
            match brx.await {
                Ok(a) => cluster_addrs.push(a),
                Err(_) => {
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                    return 1;
                }
            }
        }
    }

    println!("==> Coffer server configuration:\n");
    println!("             Storage: {}", storage_cfg.kind);
    for (a, tls) in &addrs {
        println!("            Listener: tcp (addr: \"{a}\", tls: \"{}\")", if *tls { "enabled" } else { "disabled" });
    }
    for a in &cluster_addrs {
        println!("    Cluster listener: tcp (addr: \"{a}\", mutual TLS with the cluster CA)");
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

fn base64_std(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

async fn wait_for_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {},
    }
}
