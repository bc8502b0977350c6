//! The plugin side: what a plugin binary's `main` runs.

use crate::convert::{
    auth_from_proto, error_to_proto, json_object, operation_from_str, response_to_proto, secret_from_proto,
    secret_to_proto, to_secs, ERR_INTERNAL, ERR_UNSUPPORTED_OPERATION,
};
use crate::host::MULTIPLEX_ID_KEY;
use crate::proto::logical::{self, plugin_version_server};
use crate::proto::multiplexing::{plugin_multiplexing_server, MultiplexingSupportRequest, MultiplexingSupportResponse};
use crate::proto::pb::{self, backend_server, storage_client::StorageClient, system_view_client::SystemViewClient};
use crate::proto::plugin::{self as gp, grpc_broker_server, grpc_controller_server, grpc_stdio_server, ConnInfo};
use crate::transport::{self, Addr, MAX_MESSAGE};
use crate::{tls, APP_PROTOCOL_VERSION, CORE_PROTOCOL_VERSION, HEALTH_SERVICE, MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE};
use async_trait::async_trait;
use base64::Engine;
use coffer_sdk::{
    Backend, ErrorKind, LogicalError, LoginRenewal, Operation, SecretLease, StorageView, SystemInfo, SystemServices,
};
use rustls::ClientConfig;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::io::Write;
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::Stream;
use tonic::transport::{Channel, Server};
use tonic::{Request, Response, Status, Streaming};

/// Whether the backend is a secrets engine or an auth method (the `Type` the host checks
/// against the kind of mount).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackendKind {
    #[default]
    /// A secrets engine (the default).
    Secret,
    /// An auth method.
    Auth,
}

/// How a plugin presents itself.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// The plugin's version (`v1.2.3`), reported through `PluginVersion`; hosts compare it
    /// with the version it was registered under. Empty = unversioned.
    pub version: String,
    /// Secrets engine or auth method: must match the kind of mount it is enabled as.
    pub kind: BackendKind,
}

/// How long a plugin waits for the host to announce a brokered connection.
const BROKER_WAIT: Duration = Duration::from_secs(5);
/// How long the mount's lease TTLs are reused before asking the host again.
const TTL_CACHE: Duration = Duration::from_secs(1);

/// Makes the backend of one mount of a multiplexed plugin ([`serve_multiplexed`]): called at
/// each mount's `Setup`, with what the host said about the mount.
pub type BackendFactory = Arc<dyn Fn(&MountConfig) -> coffer_sdk::Result<Arc<dyn Backend>> + Send + Sync>;

/// What a host tells a plugin about one mount when it sets it up.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct MountConfig {
    /// The mount's configuration as the host passes it (OpenBao sends `plugin_name`,
    /// `plugin_type`, `plugin_version` and the mount's options; Coffer sends none).
    pub config: HashMap<String, String>,
    /// The id the host gave this backend.
    pub backend_uuid: String,
    /// The mount's `multiplex_id` (None when the host did not multiplex this process).
    pub multiplex_id: Option<String>,
}

/// Where the backends of the process come from.
enum Source {
    /// One backend, for the one mount a plugin process serves.
    One(Arc<dyn Backend>),
    /// A backend per mount, made at its `Setup`.
    PerMount(BackendFactory),
}

/// Serves `backend` as an unversioned secrets-engine plugin. Never returns: the process
/// exits when the host shuts it down (or with status 1 when it was not started by a host).
pub fn serve(backend: Arc<dyn Backend>) -> ! {
    serve_with(backend, ServeOptions::default())
}

/// [`serve`] with options.
pub fn serve_with(backend: Arc<dyn Backend>, opts: ServeOptions) -> ! {
    serve_source(Source::One(backend), opts)
}

/// Serves a multiplexed plugin: one process for every mount of it. The host learns that the
/// plugin multiplexes (`PluginMultiplexing`), tags each mount's calls with the mount's
/// `multiplex_id`, and `factory` makes one backend per mount at its `Setup`, reaching that
/// mount's storage only. A host that does not multiplex starts a process per mount, each
/// with one backend from `factory`; so does OpenBao when the plugin is opted out.
///
/// ```rust,ignore
/// fn main() {
///     let opts = coffer_plugin::ServeOptions { version: "v0.1.0".into(), ..Default::default() };
///     coffer_plugin::serve_multiplexed(|_mount| Ok(std::sync::Arc::new(MyBackend::new()) as _), opts)
/// }
/// ```
pub fn serve_multiplexed<F>(factory: F, opts: ServeOptions) -> !
where
    F: Fn(&MountConfig) -> coffer_sdk::Result<Arc<dyn Backend>> + Send + Sync + 'static,
{
    serve_source(Source::PerMount(Arc::new(factory)), opts)
}

fn serve_source(source: Source, opts: ServeOptions) -> ! {
    if std::env::var(MAGIC_COOKIE_KEY).ok().as_deref() != Some(MAGIC_COOKIE_VALUE) {
        eprintln!(
            "This binary is a plugin for Coffer (or OpenBao/Vault). It is not meant to be run directly:\n\
             register it in the server's plugin catalog and mount it; the server starts it when needed."
        );
        std::process::exit(1);
    }
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("plugin: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let code = match rt.block_on(run(source, opts)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("plugin: {e}");
            1
        }
    };
    rt.shutdown_timeout(Duration::from_secs(1));
    std::process::exit(code)
}

/// Why a plugin process could not serve (printed to stderr before it exits with status 1).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum ServeError {
    #[error("{0}")]
    Tls(#[source] crate::PluginError),
    #[error("cannot create the socket directory in {dir}: {source}")]
    SocketDir {
        dir: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot listen on {path}: {source}")]
    Listen {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write the handshake: {0}")]
    Handshake(#[source] std::io::Error),
    #[error("gRPC server: {0}")]
    Grpc(#[source] tonic::transport::Error),
}

async fn run(source: Source, opts: ServeOptions) -> Result<(), ServeError> {
    // Automatic mTLS when the host offers its certificate; plaintext otherwise (a host in
    // metadata mode without TLS), exactly as go-plugin does.
    let host_cert = std::env::var("PLUGIN_CLIENT_CERT").ok().filter(|s| !s.trim().is_empty());
    let (server_tls, client_tls, cert_field) = match host_cert {
        Some(pem) => {
            let host = tls::parse_pem_cert(&pem).map_err(ServeError::Tls)?;
            let me = tls::generate_identity().map_err(ServeError::Tls)?;
            let field = base64::engine::general_purpose::STANDARD_NO_PAD.encode(me.cert.as_ref());
            (
                Some(tls::server_config(&me, &host).map_err(ServeError::Tls)?),
                Some(tls::client_config(&me, &host).map_err(ServeError::Tls)?),
                field,
            )
        }
        None => (None, None, String::new()),
    };
    let base = std::env::var_os("PLUGIN_UNIX_SOCKET_DIR").filter(|d| !d.is_empty()).map(std::path::PathBuf::from);
    let base = base.unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::Builder::new()
        .prefix("plugin")
        .tempdir_in(&base)
        .map_err(|source| ServeError::SocketDir { dir: base.display().to_string(), source })?;
    let sock = dir.path().join("plugin.sock");
    let listener = tokio::net::UnixListener::bind(&sock)
        .map_err(|source| ServeError::Listen { path: sock.display().to_string(), source })?;

    let (shutdown, _) = watch::channel(false);
    let state = Arc::new(PluginState::new(source, opts, client_tls, shutdown));

    let (health, health_svc) = tonic_health::server::health_reporter();
    health.set_service_status(HEALTH_SERVICE, tonic_health::ServingStatus::Serving).await;
    let router = Server::builder()
        .add_service(
            backend_server::BackendServer::new(Svc(state.clone()))
                .max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_MESSAGE),
        )
        .add_service(plugin_version_server::PluginVersionServer::new(Svc(state.clone())))
        .add_service(grpc_broker_server::GrpcBrokerServer::new(Svc(state.clone())))
        .add_service(grpc_controller_server::GrpcControllerServer::new(Svc(state.clone())))
        .add_service(grpc_stdio_server::GrpcStdioServer::new(Svc(state.clone())))
        .add_service(plugin_multiplexing_server::PluginMultiplexingServer::new(Svc(state.clone())))
        .add_service(health_svc);

    // The handshake line; nothing else may be written to stdout.
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{CORE_PROTOCOL_VERSION}|{APP_PROTOCOL_VERSION}|unix|{}|grpc|{cert_field}", sock.display())
            .and_then(|_| out.flush())
            .map_err(ServeError::Handshake)?;
    }

    watch_signals_and_parent(&state.shutdown);
    let mut stop = state.shutdown.subscribe();
    let mut stop2 = state.shutdown.subscribe();
    let served = router.serve_with_incoming_shutdown(transport::incoming(listener, server_tls), async move {
        let _ = stop.wait_for(|s| *s).await;
    });
    tokio::select! {
        r = served => r.map_err(ServeError::Grpc)?,
        // Streams the host keeps open (the broker's) must not hold the exit back: go-plugin
        // hosts kill a plugin that has not exited 2 s after `Shutdown`.
        _ = async move {
            let _ = stop2.wait_for(|s| *s).await;
            tokio::time::sleep(Duration::from_millis(300)).await;
        } => {}
    }
    drop(dir);
    Ok(())
}

/// Interrupts are the terminal's, not ours (the host stops us through the controller);
/// SIGTERM and the host going away set `shutdown`.
pub(crate) fn watch_signals_and_parent(shutdown: &watch::Sender<bool>) {
    use tokio::signal::unix::{signal, SignalKind};
    if let Ok(mut int) = signal(SignalKind::interrupt()) {
        tokio::spawn(async move { while int.recv().await.is_some() {} });
    }
    if let Ok(mut term) = signal(SignalKind::terminate()) {
        let s = shutdown.clone();
        tokio::spawn(async move {
            if term.recv().await.is_some() {
                s.send_replace(true);
            }
        });
    }
    let s = shutdown.clone();
    tokio::spawn(async move {
        let parent = std::os::unix::process::parent_id();
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if std::os::unix::process::parent_id() != parent {
                tracing::warn!("plugin host went away; exiting");
                s.send_replace(true);
                return;
            }
        }
    });
}

struct PluginState {
    source: Source,
    opts: ServeOptions,
    /// For dialling the host's brokered services (None: plaintext host).
    host_tls: Option<Arc<ClientConfig>>,
    /// Connection announcements received from the host, by service id.
    broker: watch::Sender<HashMap<u32, ConnInfo>>,
    /// The set-up mounts, by `multiplex_id` ("" for a host that sends none).
    mounts: RwLock<HashMap<String, Arc<Mounted>>>,
    shutdown: watch::Sender<bool>,
}

/// One mount's backend and its host services (storage, system view) reached through the
/// broker connection announced for its `Setup`.
struct Mounted {
    backend: Arc<dyn Backend>,
    link: Arc<HostLink>,
}

/// The host's services, reached through the broker after `Setup`.
struct HostLink {
    storage: StorageClient<Channel>,
    system: SystemViewClient<Channel>,
    ttls: Mutex<Option<(Instant, SystemInfo)>>,
}

impl HostLink {
    fn new(ch: Channel) -> Self {
        HostLink {
            storage: StorageClient::new(ch.clone())
                .max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_MESSAGE),
            system: SystemViewClient::new(ch),
            ttls: Mutex::new(None),
        }
    }

    /// The mount's lease TTLs (cached briefly: they change only when the mount is tuned).
    async fn system_info(&self) -> SystemInfo {
        if let Ok(g) = self.ttls.lock() {
            if let Some((at, info)) = *g {
                if at.elapsed() < TTL_CACHE {
                    return info;
                }
            }
        }
        let mut a = self.system.clone();
        let mut b = self.system.clone();
        let (def, max) = tokio::join!(a.default_lease_ttl(pb::Empty {}), b.max_lease_ttl(pb::Empty {}));
        let info = SystemInfo {
            default_lease_ttl: def.map(|r| to_secs(r.into_inner().ttl)).unwrap_or(0),
            max_lease_ttl: max.map(|r| to_secs(r.into_inner().ttl)).unwrap_or(0),
        };
        if let Ok(mut g) = self.ttls.lock() {
            *g = Some((Instant::now(), info));
        }
        info
    }
}

fn rpc_err(what: &str, s: Status) -> LogicalError {
    LogicalError::internal(format!("host {what} failed: {}", s.message()))
}

/// The mount's storage, in the host, through the broker.
struct GrpcStorage(StorageClient<Channel>);

#[async_trait]
impl StorageView for GrpcStorage {
    async fn get(&self, key: &str) -> coffer_sdk::Result<Option<Vec<u8>>> {
        let r = self
            .0
            .clone()
            .get(pb::StorageGetArgs { key: key.to_string() })
            .await
            .map_err(|s| rpc_err("storage get", s))?;
        let r = r.into_inner();
        if !r.err.is_empty() {
            return Err(LogicalError::internal(r.err));
        }
        Ok(r.entry.map(|e| e.value))
    }
    async fn put(&self, key: &str, value: &[u8]) -> coffer_sdk::Result<()> {
        let entry = pb::StorageEntry { key: key.to_string(), value: value.to_vec(), seal_wrap: false };
        let r = self
            .0
            .clone()
            .put(pb::StoragePutArgs { entry: Some(entry) })
            .await
            .map_err(|s| rpc_err("storage put", s))?;
        let r = r.into_inner();
        if !r.err.is_empty() {
            return Err(LogicalError::internal(r.err));
        }
        Ok(())
    }
    async fn delete(&self, key: &str) -> coffer_sdk::Result<()> {
        let r = self
            .0
            .clone()
            .delete(pb::StorageDeleteArgs { key: key.to_string() })
            .await
            .map_err(|s| rpc_err("storage delete", s))?;
        let r = r.into_inner();
        if !r.err.is_empty() {
            return Err(LogicalError::internal(r.err));
        }
        Ok(())
    }
    async fn list(&self, prefix: &str) -> coffer_sdk::Result<Vec<String>> {
        let r = self
            .0
            .clone()
            .list(pb::StorageListArgs { prefix: prefix.to_string() })
            .await
            .map_err(|s| rpc_err("storage list", s))?;
        let r = r.into_inner();
        if !r.err.is_empty() {
            return Err(LogicalError::internal(r.err));
        }
        Ok(r.keys)
    }
}

/// Password policies of the host, through the broker.
struct HostServices(SystemViewClient<Channel>);

#[async_trait]
impl SystemServices for HostServices {
    async fn generate_password(&self, policy: &str) -> coffer_sdk::Result<String> {
        let r = self
            .0
            .clone()
            .generate_password_from_policy(pb::GeneratePasswordFromPolicyRequest { policy_name: policy.to_string() })
            .await
            .map_err(|s| match s.code() {
                tonic::Code::InvalidArgument | tonic::Code::NotFound => LogicalError::bad_request(s.message()),
                _ => LogicalError::bad_request(format!(
                    "cannot generate a password from policy {policy:?}: {}",
                    s.message()
                )),
            })?;
        Ok(r.into_inner().password)
    }
}

fn reply(response: Option<pb::Response>, err: Option<pb::ProtoError>) -> pb::HandleRequestReply {
    pb::HandleRequestReply { response, err }
}

/// The certificates the client presented over TLS, as the host forwards them (leaf first).
fn client_certs(req: &pb::Request) -> Option<Arc<Vec<Vec<u8>>>> {
    let chain = req.connection.as_ref()?.connection_state.as_ref()?.peer_certificates.as_ref()?;
    let certs: Vec<Vec<u8>> = chain.certificates.iter().map(|c| c.asn1_data.clone()).collect();
    (!certs.is_empty()).then(|| Arc::new(certs))
}

fn internal(msg: impl Into<String>) -> pb::ProtoError {
    pb::ProtoError { err_type: ERR_INTERNAL, err_msg: msg.into(), err_code: 0 }
}

impl PluginState {
    fn new(
        source: Source,
        opts: ServeOptions,
        host_tls: Option<Arc<ClientConfig>>,
        shutdown: watch::Sender<bool>,
    ) -> Self {
        PluginState {
            source,
            opts,
            host_tls,
            broker: watch::channel(HashMap::new()).0,
            mounts: RwLock::new(HashMap::new()),
            shutdown,
        }
    }

    fn multiplexing(&self) -> bool {
        matches!(self.source, Source::PerMount(_))
    }

    /// The mount a call is for: its `multiplex_id` when this plugin multiplexes and the host
    /// sent one, "" otherwise.
    fn mount_id<T>(&self, r: &Request<T>) -> String {
        if !self.multiplexing() {
            return String::new();
        }
        r.metadata().get(MULTIPLEX_ID_KEY).and_then(|v| v.to_str().ok()).unwrap_or("").to_string()
    }

    fn mounted(&self, id: &str) -> Option<Arc<Mounted>> {
        self.mounts.read().ok().and_then(|g| g.get(id).cloned())
    }

    /// The paths of the backend of `id`, or of any mount's (help before `Setup`, or from a
    /// host that does not tag it): every backend of a plugin has the same table.
    fn any_backend(&self, id: &str) -> Option<Arc<dyn Backend>> {
        if let Source::One(b) = &self.source {
            return Some(b.clone());
        }
        let g = self.mounts.read().ok()?;
        g.get(id).or_else(|| g.values().next()).map(|m| m.backend.clone())
    }

    async fn sdk_request(
        &self,
        op: Operation,
        req: &pb::Request,
        link: &HostLink,
    ) -> Result<coffer_sdk::Request, LogicalError> {
        Ok(coffer_sdk::Request {
            operation: op,
            path: req.path.clone(),
            data: json_object(&req.data)?,
            mount_point: req.mount_point.clone(),
            storage: Arc::new(GrpcStorage(link.storage.clone())),
            system: link.system_info().await,
            remote_addr: req.connection.as_ref().and_then(|c| c.remote_addr.parse().ok()),
            services: Some(Arc::new(HostServices(link.system.clone()))),
            client_certs: client_certs(req),
            display_name: req.display_name.clone(),
            entity_id: req.entity_id.clone(),
        })
    }

    async fn handle(&self, id: &str, req: pb::Request) -> pb::HandleRequestReply {
        let op = match req.operation.as_str() {
            // Coffer backends keep no write-ahead log: nothing to roll back.
            "rollback" => return reply(None, None),
            "revoke" | "renew" => None,
            other => match operation_from_str(other) {
                Some(op) => Some(op),
                // `resolve-path`, `resolve-role`, `alias-lookahead`, …: the protocol's typed
                // answer lets the host fall back.
                None => {
                    let e = pb::ProtoError {
                        err_type: ERR_UNSUPPORTED_OPERATION,
                        err_msg: "unsupported operation".into(),
                        err_code: 0,
                    };
                    return reply(None, Some(e));
                }
            },
        };
        if op == Some(Operation::Help) {
            if let Some(b) = self.any_backend(id) {
                return reply(Some(help_response(b.paths(), &req.path, &self.opts)), None);
            }
        }
        let Some(m) = self.mounted(id) else {
            return reply(None, Some(internal("plugin backend is not set up")));
        };
        let Some(op) = op else {
            return match req.operation.as_str() {
                "revoke" => self.revoke(&req, &m).await,
                // A token issued by one of this method's logins is being renewed.
                _ if req.secret.is_none() && req.auth.is_some() => self.renew_login(&req, &m).await,
                _ => self.renew(&req, &m).await,
            };
        };
        let sreq = match self.sdk_request(op, &req, &m.link).await {
            Ok(r) => r,
            Err(e) => return reply(None, Some(error_to_proto(&e))),
        };
        match m.backend.handle_request(sreq).await {
            // Data answered with an error status (Coffer's `status`): both travel, as Go
            // backends return a response beside a coded error. (An Accepted status does not
            // cross the protocol: the host answers 200.)
            Ok(Some(resp)) => match resp.status {
                coffer_sdk::ResponseStatus::Error(kind) => {
                    let err = error_to_proto(&LogicalError::with_messages(kind, vec![]));
                    reply(Some(response_to_proto(&resp)), Some(err))
                }
                _ => reply(Some(response_to_proto(&resp)), None),
            },
            Ok(None) => reply(None, None),
            // The protocol's "not found" is a read or list without a response.
            Err(e) if e.kind == ErrorKind::NotFound && matches!(op, Operation::Read | Operation::List) => {
                reply(None, None)
            }
            Err(e) => reply(None, Some(error_to_proto(&e))),
        }
    }

    fn lease_of(req: &pb::Request) -> Result<SecretLease, LogicalError> {
        match &req.secret {
            Some(s) => secret_from_proto(s),
            None => Err(LogicalError::bad_request("request has no secret")),
        }
    }

    async fn revoke(&self, req: &pb::Request, m: &Mounted) -> pb::HandleRequestReply {
        let result = async {
            let lease = Self::lease_of(req)?;
            let sreq = self.sdk_request(Operation::Delete, req, &m.link).await?;
            m.backend.revoke_secret(&sreq, &lease.internal).await
        }
        .await;
        match result {
            Ok(()) => reply(None, None),
            Err(e) => reply(None, Some(error_to_proto(&e))),
        }
    }

    /// Asks the backend whether a token from one of its logins may be renewed; on consent the
    /// token's auth goes back unchanged, so the host applies its own TTL rules.
    async fn renew_login(&self, req: &pb::Request, m: &Mounted) -> pb::HandleRequestReply {
        let Some(auth) = req.auth.as_ref() else {
            return reply(None, Some(internal("request has no auth")));
        };
        let result = async {
            let kept = auth_from_proto(auth)?;
            let login = LoginRenewal {
                metadata: kept.metadata,
                policies: kept.policies,
                path: req.path.clone(),
                internal_data: kept.internal_data,
            };
            let sreq = self.sdk_request(Operation::Update, req, &m.link).await?;
            m.backend.renew_login(&sreq, &login).await
        }
        .await;
        match result {
            Ok(()) => {
                reply(Some(pb::Response { auth: Some(auth.clone()), data: "null".into(), ..Default::default() }), None)
            }
            Err(e) => reply(None, Some(error_to_proto(&e))),
        }
    }

    async fn renew(&self, req: &pb::Request, m: &Mounted) -> pb::HandleRequestReply {
        let result = async {
            let lease = Self::lease_of(req)?;
            let lo = req.secret.as_ref().and_then(|s| s.lease_options).unwrap_or_default();
            let proposed = if lo.increment > 0 { to_secs(lo.increment) } else { lease.ttl };
            let sreq = self.sdk_request(Operation::Update, req, &m.link).await?;
            let ttl = m.backend.renew_secret(&sreq, &lease.internal, proposed).await?;
            Ok::<_, LogicalError>(SecretLease { ttl, ..lease })
        }
        .await;
        match result {
            Ok(lease) => {
                let resp =
                    pb::Response { secret: Some(secret_to_proto(&lease)), data: "null".into(), ..Default::default() };
                reply(Some(resp), None)
            }
            Err(e) => reply(None, Some(error_to_proto(&e))),
        }
    }
}

/// Help built from the backend's path table: the text (`help`), the OpenAPI document of the
/// path asked about, or of every path for help on the mount itself (`openapi`, mount-relative
/// paths: OpenBao merges it into `sys/internal/specs/openapi` under the mount), and the table
/// itself (`paths`, which Coffer routes and documents by).
fn help_response(paths: &[coffer_sdk::framework::PathSpec], path: &str, opts: &ServeOptions) -> pb::Response {
    let spec = paths
        .iter()
        .find(|p| regex::Regex::new(&format!("^(?:{})$", p.pattern)).map(|re| re.is_match(path)).unwrap_or(false));
    let text = match spec {
        Some(p) => {
            let mut t = format!("Request:        {path}\nMatching Route: ^{}$\n\n{}\n", p.pattern, p.synopsis);
            if !p.fields.is_empty() {
                t.push_str("\n## PARAMETERS\n");
                for f in &p.fields {
                    t.push_str(&format!("\n{} ({})\n    {}\n", f.name, f.ty.openapi_type(), f.description));
                }
            }
            t.push_str(&format!("\n## DESCRIPTION\n\n{}\n", p.description));
            t
        }
        None => {
            let mut t = String::from("## PATHS\n\nThe following paths are supported by this backend:\n");
            for p in paths {
                t.push_str(&format!("\n    ^{}$\n        {}\n", p.pattern, p.synopsis));
            }
            t
        }
    };
    let mut data = Map::new();
    data.insert("help".into(), Value::String(text));
    let tag = match opts.kind {
        BackendKind::Secret => "secrets",
        BackendKind::Auth => "auth",
    };
    let info = serde_json::json!({
        "title": "Plugin",
        "description": "The paths of a backend plugin, relative to its mount.",
        "version": opts.version,
    });
    let documented = match spec {
        Some(p) => std::slice::from_ref(p),
        None => paths,
    };
    data.insert("openapi".into(), Value::Object(coffer_sdk::openapi::backend_document(documented, tag, info)));
    data.insert("see_also".into(), Value::Null);
    // The whole table, so a host or `coffer plugin verify` can document and route by it.
    data.insert("paths".into(), coffer_sdk::framework::describe_paths(paths));
    pb::Response { data: serde_json::to_string(&data).unwrap_or_default(), ..Default::default() }
}

/// The gRPC services, all over the shared state.
#[derive(Clone)]
struct Svc(Arc<PluginState>);

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// A stream that sends nothing and ends when the plugin shuts down.
fn quiet_stream<T: Send + 'static>(state: &PluginState) -> BoxStream<T> {
    let (tx, rx) = mpsc::channel::<Result<T, Status>>(1);
    let mut stop = state.shutdown.subscribe();
    tokio::spawn(async move {
        let _ = stop.wait_for(|s| *s).await;
        drop(tx);
    });
    Box::pin(ReceiverStream::new(rx))
}

#[async_trait]
impl backend_server::Backend for Svc {
    async fn handle_request(
        &self,
        request: Request<pb::HandleRequestArgs>,
    ) -> Result<Response<pb::HandleRequestReply>, Status> {
        let id = self.0.mount_id(&request);
        let req = request.into_inner().request.unwrap_or_default();
        Ok(Response::new(self.0.handle(&id, req).await))
    }

    async fn special_paths(&self, request: Request<pb::Empty>) -> Result<Response<pb::SpecialPathsReply>, Status> {
        let id = self.0.mount_id(&request);
        let Some(backend) = self.0.any_backend(&id) else {
            return Err(Status::failed_precondition("plugin backend is not set up"));
        };
        let special = backend.special_paths();
        Ok(Response::new(pb::SpecialPathsReply {
            paths: Some(pb::Paths {
                root: special.root,
                unauthenticated: special.unauthenticated,
                ..Default::default()
            }),
        }))
    }

    async fn handle_existence_check(
        &self,
        request: Request<pb::HandleExistenceCheckArgs>,
    ) -> Result<Response<pb::HandleExistenceCheckReply>, Status> {
        let id = self.0.mount_id(&request);
        let req = request.into_inner().request.unwrap_or_default();
        let mut out = pb::HandleExistenceCheckReply::default();
        let Some(m) = self.0.mounted(&id) else {
            out.err = Some(internal("plugin backend is not set up"));
            return Ok(Response::new(out));
        };
        let Some(op) = operation_from_str(&req.operation) else {
            return Ok(Response::new(out));
        };
        let result = async {
            let sreq = self.0.sdk_request(op, &req, &m.link).await?;
            m.backend.exists(&sreq).await
        }
        .await;
        match result {
            Ok(Some(exists)) => {
                out.check_found = true;
                out.exists = exists;
            }
            Ok(None) => {}
            Err(e) => out.err = Some(error_to_proto(&e)),
        }
        Ok(Response::new(out))
    }

    /// Drops the backend of the mount (and its host connection).
    async fn cleanup(&self, request: Request<pb::Empty>) -> Result<Response<pb::Empty>, Status> {
        let id = self.0.mount_id(&request);
        if let Ok(mut g) = self.0.mounts.write() {
            g.remove(&id);
        }
        Ok(Response::new(pb::Empty {}))
    }

    async fn invalidate_key(&self, _: Request<pb::InvalidateKeyArgs>) -> Result<Response<pb::Empty>, Status> {
        Ok(Response::new(pb::Empty {}))
    }

    async fn setup(&self, request: Request<pb::SetupArgs>) -> Result<Response<pb::SetupReply>, Status> {
        let mount = self.0.mount_id(&request);
        let args = request.into_inner();
        let id = args.broker_id;
        let mut rx = self.0.broker.subscribe();
        let info = match tokio::time::timeout(BROKER_WAIT, rx.wait_for(|m| m.contains_key(&id))).await {
            Ok(Ok(m)) => m.get(&id).cloned(),
            _ => None,
        };
        let Some(info) = info else {
            let err = format!("timeout waiting for the host to announce broker connection {id}");
            return Ok(Response::new(pb::SetupReply { err }));
        };
        let Some(addr) = Addr::parse(&info.network, &info.address) else {
            let err = format!("unknown network type {:?}", info.network);
            return Ok(Response::new(pb::SetupReply { err }));
        };
        match transport::channel(addr, self.0.host_tls.clone()).await {
            Ok(ch) => {
                let backend = match &self.0.source {
                    Source::One(b) => b.clone(),
                    Source::PerMount(factory) => {
                        let cfg = MountConfig {
                            config: args.config,
                            backend_uuid: args.backend_uuid,
                            multiplex_id: (!mount.is_empty()).then(|| mount.clone()),
                        };
                        match factory(&cfg) {
                            Ok(b) => b,
                            Err(e) => return Ok(Response::new(pb::SetupReply { err: e.to_string() })),
                        }
                    }
                };
                let m = Arc::new(Mounted { backend, link: Arc::new(HostLink::new(ch)) });
                if let Ok(mut g) = self.0.mounts.write() {
                    g.insert(mount, m);
                }
                Ok(Response::new(pb::SetupReply { err: String::new() }))
            }
            Err(e) => Ok(Response::new(pb::SetupReply { err: format!("cannot reach the host's storage: {e}") })),
        }
    }

    async fn initialize(&self, _: Request<pb::InitializeArgs>) -> Result<Response<pb::InitializeReply>, Status> {
        Ok(Response::new(pb::InitializeReply { err: None }))
    }

    async fn r#type(&self, _: Request<pb::Empty>) -> Result<Response<pb::TypeReply>, Status> {
        let t = match self.0.opts.kind {
            BackendKind::Secret => 1,
            BackendKind::Auth => 2,
        };
        Ok(Response::new(pb::TypeReply { r#type: t }))
    }
}

#[async_trait]
impl plugin_version_server::PluginVersion for Svc {
    async fn version(&self, _: Request<logical::Empty>) -> Result<Response<logical::VersionReply>, Status> {
        Ok(Response::new(logical::VersionReply { plugin_version: self.0.opts.version.clone() }))
    }
}

#[async_trait]
impl grpc_broker_server::GrpcBroker for Svc {
    type StartStreamStream = BoxStream<ConnInfo>;

    async fn start_stream(
        &self,
        request: Request<Streaming<ConnInfo>>,
    ) -> Result<Response<Self::StartStreamStream>, Status> {
        let mut inbound = request.into_inner();
        let state = self.0.clone();
        tokio::spawn(async move {
            while let Ok(Some(info)) = inbound.message().await {
                if info.knock.as_ref().is_some_and(|k| k.knock) {
                    tracing::warn!("host uses the multiplexed broker, which this plugin did not offer");
                    continue;
                }
                state.broker.send_modify(|m| {
                    m.insert(info.service_id, info);
                });
            }
        });
        Ok(Response::new(quiet_stream(&self.0)))
    }
}

/// Tells the host whether this process serves several mounts.
#[async_trait]
impl plugin_multiplexing_server::PluginMultiplexing for Svc {
    async fn multiplexing_support(
        &self,
        _: Request<MultiplexingSupportRequest>,
    ) -> Result<Response<MultiplexingSupportResponse>, Status> {
        Ok(Response::new(MultiplexingSupportResponse { supported: self.0.multiplexing() }))
    }
}

#[async_trait]
impl grpc_controller_server::GrpcController for Svc {
    async fn shutdown(&self, _: Request<gp::Empty>) -> Result<Response<gp::Empty>, Status> {
        self.0.shutdown.send_replace(true);
        Ok(Response::new(gp::Empty {}))
    }
}

#[async_trait]
impl grpc_stdio_server::GrpcStdio for Svc {
    type StreamStdioStream = BoxStream<gp::StdioData>;

    async fn stream_stdio(&self, _: Request<()>) -> Result<Response<Self::StreamStdioStream>, Status> {
        // The plugin writes nothing to stdout after the handshake; stderr goes to the host's
        // pipe directly.
        Ok(Response::new(quiet_stream(&self.0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::to_nanos;
    use coffer_sdk::field::FieldType;
    use coffer_sdk::framework::{FieldSpec, PathFlags, PathSpec};

    #[test]
    fn help_names_the_matching_path_and_its_fields() {
        let paths = vec![PathSpec {
            flags: PathFlags::NORMAL,
            pattern: "config",
            fields: vec![FieldSpec::new("words", FieldType::Int, "how many words")],
            operations: vec![(Operation::Read, "read")],
            passthrough: false,
            synopsis: "Configure it",
            description: "Long text.",
        }];
        let r = help_response(&paths, "config", &ServeOptions::default());
        let data = json_object(&r.data).unwrap();
        let help = data["help"].as_str().unwrap();
        assert!(help.contains("Configure it") && help.contains("words (integer)") && help.contains("Long text."));
        let all = json_object(&help_response(&paths, "", &ServeOptions::default()).data).unwrap();
        assert!(all["help"].as_str().unwrap().contains("^config$"));
        // OpenBao builds its OpenAPI document from this key.
        assert_eq!(all["openapi"]["paths"]["/config"]["get"]["summary"], "read");
    }

    struct Nothing;

    #[async_trait]
    impl Backend for Nothing {
        fn backend_type(&self) -> &'static str {
            "nothing"
        }
        fn paths(&self) -> &[PathSpec] {
            &[]
        }
        async fn handle_request(&self, _: coffer_sdk::Request) -> coffer_sdk::Result<Option<coffer_sdk::Response>> {
            Ok(None)
        }
    }

    #[tokio::test]
    async fn host_only_operations_get_clean_answers() {
        let state =
            PluginState::new(Source::One(Arc::new(Nothing)), ServeOptions::default(), None, watch::channel(false).0);
        let op = |o: &str| pb::Request { operation: o.into(), path: "x".into(), ..Default::default() };
        let r = state.handle("", op("rollback")).await;
        assert!(r.err.is_none() && r.response.is_none());
        for unknown in ["resolve-path", "resolve-role", "alias-lookahead", "scan"] {
            let r = state.handle("", op(unknown)).await;
            assert_eq!(r.err.map(|e| e.err_type), Some(ERR_UNSUPPORTED_OPERATION), "{unknown}");
        }
        let r = state.handle("", op("read")).await;
        assert!(r.err.unwrap().err_msg.contains("not set up"));
    }

    fn tagged(id: &str) -> Request<pb::Empty> {
        let mut r = Request::new(pb::Empty {});
        r.metadata_mut().insert(MULTIPLEX_ID_KEY, id.parse().unwrap());
        r
    }

    fn mounted(backend: Arc<dyn Backend>) -> Arc<Mounted> {
        let ch = tonic::transport::Endpoint::from_static("http://127.0.0.1:9").connect_lazy();
        Arc::new(Mounted { backend, link: Arc::new(HostLink::new(ch)) })
    }

    #[tokio::test]
    async fn a_multiplexed_plugin_keeps_a_backend_per_mount_id_and_cleans_up_only_the_one_named() {
        let factory: BackendFactory = Arc::new(|_: &MountConfig| Ok(Arc::new(Nothing) as Arc<dyn Backend>));
        let state = Arc::new(PluginState::new(
            Source::PerMount(factory),
            ServeOptions::default(),
            None,
            watch::channel(false).0,
        ));
        let svc = Svc(state.clone());
        assert!(
            plugin_multiplexing_server::PluginMultiplexing::multiplexing_support(
                &svc,
                Request::new(MultiplexingSupportRequest {})
            )
            .await
            .unwrap()
            .into_inner()
            .supported
        );
        assert_eq!(state.mount_id(&tagged("mount-a")), "mount-a");
        assert_eq!(state.mount_id(&Request::new(pb::Empty {})), "", "untagged calls are the single mount's");
        for id in ["mount-a", "mount-b"] {
            state.mounts.write().unwrap().insert(id.to_string(), mounted(Arc::new(Nothing)));
        }
        backend_server::Backend::cleanup(&svc, tagged("mount-a")).await.unwrap();
        assert!(state.mounted("mount-a").is_none(), "the disabled mount's backend is dropped");
        assert!(state.mounted("mount-b").is_some(), "the other mount keeps its backend");
        let r = state.handle("mount-a", pb::Request { operation: "read".into(), ..Default::default() }).await;
        assert!(r.err.unwrap().err_msg.contains("not set up"), "a call for a cleaned-up mount is refused");
    }

    #[tokio::test]
    async fn a_plain_plugin_says_it_does_not_multiplex_and_ignores_mount_ids() {
        let state = Arc::new(PluginState::new(
            Source::One(Arc::new(Nothing)),
            ServeOptions::default(),
            None,
            watch::channel(false).0,
        ));
        let svc = Svc(state.clone());
        let r = plugin_multiplexing_server::PluginMultiplexing::multiplexing_support(
            &svc,
            Request::new(MultiplexingSupportRequest {}),
        )
        .await
        .unwrap();
        assert!(!r.into_inner().supported);
        assert_eq!(state.mount_id(&tagged("mount-a")), "");
    }

    #[test]
    fn ttl_conversion_is_nanoseconds() {
        assert_eq!(to_nanos(2), 2_000_000_000);
        assert_eq!(to_secs(to_nanos(3600)), 3600);
    }
}
