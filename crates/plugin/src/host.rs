//! The host side: start a plugin binary, speak the protocol with it, and present it as a
//! `coffer_sdk::Backend`.
//!
//! One [`PluginClient`] serves one mount: the storage view, TTLs and services of the requests it
//! forwards are what its brokered `Storage` and `SystemView` services answer the plugin with.

use crate::convert::{
    error_from_proto, json_string, now_timestamp, response_from_proto, to_nanos, to_secs, ERR_INVALID_REQUEST,
};
use crate::proto::logical;
use crate::proto::pb::{self, backend_client::BackendClient, storage_server, system_view_server};
use crate::proto::plugin::{
    self as gp, grpc_broker_client::GrpcBrokerClient, grpc_controller_client::GrpcControllerClient,
};
use crate::transport::{self, Addr, MAX_MESSAGE};
use crate::{
    tls, ConnectError, HandshakeError, PluginError, APP_PROTOCOL_VERSION, HEALTH_SERVICE, MAGIC_COOKIE_KEY,
    MAGIC_COOKIE_VALUE,
};
use async_trait::async_trait;
use base64::Engine;
use coffer_sdk::framework::PathSpec;
use coffer_sdk::{
    AuthResponse, Backend, LogicalError, LoginRenewal, Operation, Request, Response, StorageView, SystemInfo,
    SystemServices,
};
use rustls::pki_types::CertificateDer;
use serde_json::{Map, Value};
use std::collections::VecDeque;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Server};
use tonic::Status;

/// How long RPCs of the start-up sequence may take.
const STARTUP_RPC: Duration = Duration::from_secs(10);
/// How long a stopping plugin gets to exit after the controller's `Shutdown`.
const EXIT_GRACE: Duration = Duration::from_secs(2);
/// Lines of the plugin's stderr kept for error messages.
const STDERR_TAIL: usize = 20;

/// What to start, and how.
#[derive(Debug, Clone)]
pub struct LaunchSpec {
    /// For logs.
    pub name: String,
    /// The plugin binary.
    pub command: PathBuf,
    /// Arguments for the plugin process.
    pub args: Vec<String>,
    /// The plugin's whole environment apart from the protocol variables: nothing of the
    /// server's own environment is passed on.
    pub env: Vec<(String, String)>,
    /// The binary's SHA-256 in hex, checked before every start; empty = not checked.
    pub sha256: String,
    /// How long the plugin gets to print its handshake line.
    pub handshake_timeout: Duration,
    /// The server version told to the plugin (`BAO_VERSION`/`VAULT_VERSION`). Plugins built on
    /// OpenBao's or Vault's Go SDK fall back to net/rpc, which Coffer does not speak, when it
    /// is missing or older than 0.9.4.
    pub server_version: String,
}

impl LaunchSpec {
    /// Starting `command` with no arguments or environment, its SHA-256 unchecked, a 10 s handshake timeout.
    pub fn new(command: impl Into<PathBuf>) -> Self {
        let command = command.into();
        LaunchSpec {
            name: command.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
            command,
            args: vec![],
            env: vec![],
            sha256: String::new(),
            handshake_timeout: Duration::from_secs(10),
            server_version: "2.0.0".to_string(),
        }
    }
}

/// Starts the plugin at `command` with exactly `env` (plus the protocol's variables), after
/// checking its SHA-256 (hex; empty skips the check), and returns it as a backend.
pub async fn launch(
    command: &Path,
    args: &[String],
    env: &[(String, String)],
    expected_sha256: &str,
) -> Result<Arc<dyn Backend>, PluginError> {
    let spec = LaunchSpec {
        args: args.to_vec(),
        env: env.to_vec(),
        sha256: expected_sha256.to_string(),
        ..LaunchSpec::new(command)
    };
    Ok(Arc::new(PluginClient::start(spec).await?))
}

/// What the brokered `Storage` and `SystemView` services answer with: the mount's, as carried
/// by the latest request.
struct HostContext {
    storage: RwLock<Option<Arc<dyn StorageView>>>,
    system: RwLock<SystemInfo>,
    services: RwLock<Option<Arc<dyn SystemServices>>>,
    server_version: String,
}

impl HostContext {
    fn bind(&self, req: &Request) {
        let same =
            self.storage.read().map(|g| g.as_ref().is_some_and(|s| Arc::ptr_eq(s, &req.storage))).unwrap_or(false);
        if !same {
            if let Ok(mut g) = self.storage.write() {
                *g = Some(req.storage.clone());
            }
        }
        if self.system.read().map(|g| *g != req.system).unwrap_or(true) {
            if let Ok(mut g) = self.system.write() {
                *g = req.system;
            }
        }
        if let Some(s) = &req.services {
            let same = self.services.read().map(|g| g.as_ref().is_some_and(|c| Arc::ptr_eq(c, s))).unwrap_or(false);
            if !same {
                if let Ok(mut g) = self.services.write() {
                    *g = Some(s.clone());
                }
            }
        }
    }
    fn storage(&self) -> Option<Arc<dyn StorageView>> {
        self.storage.read().ok().and_then(|g| g.clone())
    }
    fn system(&self) -> SystemInfo {
        self.system.read().map(|g| *g).unwrap_or_default()
    }
    fn services(&self) -> Option<Arc<dyn SystemServices>> {
        self.services.read().ok().and_then(|g| g.clone())
    }
}

/// One running plugin process and its connections. A multiplexed plugin's process is shared
/// by all the mounts of its catalog entry ([`crate::mux`]); each mount attaches its own
/// brokered services to it ([`Attachment`]).
pub(crate) struct Instance {
    generation: u64,
    pid: u32,
    child: Mutex<Child>,
    channel: Channel,
    backend: BackendClient<Channel>,
    controller: GrpcControllerClient<Channel>,
    /// Whether the plugin answered `MultiplexingSupport` with yes: its calls then carry the
    /// mount's `multiplex_id`.
    multiplexed: bool,
    /// The broker stream (host → plugin announcements), shared by the mounts.
    broker_tx: mpsc::Sender<gp::ConnInfo>,
    /// TLS of the brokered servers the mounts start (pinned to the plugin's certificate).
    broker_tls: Option<Arc<rustls::ServerConfig>>,
    tasks: Vec<JoinHandle<()>>,
    /// The plugin's socket directory and the mounts' broker sockets; removed on drop.
    dir: tempfile::TempDir,
}

impl Instance {
    fn alive(&self) -> bool {
        self.child.lock().map(|mut c| matches!(c.try_wait(), Ok(None))).unwrap_or(false)
    }

    /// Whether the process has exited, waiting up to `within` for it to.
    async fn exited_within(&self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if !self.alive() {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn kill_now(&self) {
        if let Ok(mut c) = self.child.lock() {
            let _ = c.start_kill();
            let _ = c.try_wait();
        }
    }

    /// Asks the plugin to clean up and exit; kills it if it does not within the grace period.
    /// (A multiplexed plugin's mounts were cleaned up one by one as they went away.)
    async fn stop(&self) {
        if self.alive() {
            if !self.multiplexed {
                let _ = tokio::time::timeout(EXIT_GRACE, self.backend.clone().cleanup(pb::Empty {})).await;
            }
            let _ = tokio::time::timeout(EXIT_GRACE, self.controller.clone().shutdown(gp::Empty {})).await;
            if self.exited_within(EXIT_GRACE).await {
                return;
            }
        }
        self.kill_now();
        self.exited_within(EXIT_GRACE).await;
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        // `kill_on_drop` ends the process if nothing else did.
    }
}

/// The gRPC metadata key naming the mount a call is for, on a multiplexed plugin.
pub(crate) const MULTIPLEX_ID_KEY: &str = "multiplex_id";

/// What a mount's calls carry: its `multiplex_id` when the process is multiplexed.
#[derive(Clone)]
pub(crate) struct Tag(Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>);

impl Tag {
    fn for_instance(inst: &Instance, mux_id: &str) -> Tag {
        Tag(if inst.multiplexed { mux_id.parse().ok() } else { None })
    }

    /// `msg` as a request carrying the mount's id.
    pub(crate) fn req<T>(&self, msg: T) -> tonic::Request<T> {
        let mut r = tonic::Request::new(msg);
        if let Some(v) = &self.0 {
            r.metadata_mut().insert(MULTIPLEX_ID_KEY, v.clone());
        }
        r
    }
}

/// One mount's presence in one plugin process: its brokered `Storage` and `SystemView` server
/// (announced on the process's broker) and the `Setup` that made the plugin create the
/// mount's backend. Dropping it stops the server.
struct Attachment {
    generation: u64,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    /// `Initialize` once per backend, when the mount's storage is known (the first request).
    initialized: tokio::sync::OnceCell<()>,
}

impl Drop for Attachment {
    fn drop(&mut self) {
        self.stop.send_replace(true);
        self.task.abort();
    }
}

/// Serves the mount's storage and system view to the plugin on a socket of its own, announces
/// it on the broker and calls `Setup` (tagged with the mount's id when multiplexed).
async fn attach(name: &str, inst: &Instance, ctx: &Arc<HostContext>, tag: &Tag) -> Result<Attachment, ConnectError> {
    let broker_id = BROKER_IDS.fetch_add(1, Ordering::Relaxed);
    let broker_sock = inst.dir.path().join(format!("broker-{broker_id}.sock"));
    let listener = tokio::net::UnixListener::bind(&broker_sock).map_err(ConnectError::BrokerListen)?;
    let (stop, mut stop_rx) = watch::channel(false);
    let router = Server::builder()
        .add_service(
            storage_server::StorageServer::new(HostStorage(ctx.clone()))
                .max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_MESSAGE),
        )
        .add_service(system_view_server::SystemViewServer::new(HostSystem(ctx.clone())));
    let tls = inst.broker_tls.clone();
    let task = tokio::spawn(async move {
        let _ = router
            .serve_with_incoming_shutdown(transport::incoming(listener, tls), async move {
                let _ = stop_rx.wait_for(|s| *s).await;
            })
            .await;
    });
    let attachment = Attachment { generation: inst.generation, stop, task, initialized: tokio::sync::OnceCell::new() };
    let info = gp::ConnInfo {
        service_id: broker_id,
        network: "unix".into(),
        address: broker_sock.display().to_string(),
        knock: None,
    };
    // drop-cause: a SendError holds only the unsent announcement (our own data, no reason).
    inst.broker_tx.send(info).await.map_err(|_| ConnectError::BrokerClosed)?;

    let setup = pb::SetupArgs { broker_id, config: Default::default(), backend_uuid: uuid::Uuid::new_v4().to_string() };
    match tokio::time::timeout(STARTUP_RPC, inst.backend.clone().setup(tag.req(setup))).await {
        Err(_) => Err(ConnectError::RpcTimeout { rpc: "Setup" }),
        Ok(Err(source)) => Err(ConnectError::Rpc { rpc: "Setup", source }),
        Ok(Ok(r)) => {
            let err = r.into_inner().err;
            if !err.is_empty() {
                return Err(ConnectError::Setup(err));
            }
            tracing::debug!(plugin = %name, pid = inst.pid, multiplexed = inst.multiplexed, "mount set up in the plugin");
            Ok(attachment)
        }
    }
}

/// The running process of a plugin, restarted when it dies: one per mount, or one shared by
/// all the mounts of a multiplexed plugin. Stopped when the last mount lets go of it.
pub(crate) struct Slot {
    spec: LaunchSpec,
    current: tokio::sync::RwLock<Option<Arc<Instance>>>,
    generation: AtomicU64,
    restarts: AtomicU64,
    closed: AtomicBool,
}

impl Slot {
    /// Starts the first process.
    pub(crate) async fn start(spec: LaunchSpec) -> Result<Arc<Slot>, PluginError> {
        let inst = start_instance(&spec, 1).await?;
        Ok(Arc::new(Slot {
            spec,
            current: tokio::sync::RwLock::new(Some(Arc::new(inst))),
            generation: AtomicU64::new(1),
            restarts: AtomicU64::new(0),
            closed: AtomicBool::new(false),
        }))
    }

    /// Whether the running process serves several mounts.
    pub(crate) async fn multiplexed(&self) -> bool {
        self.current.read().await.as_ref().is_some_and(|i| i.multiplexed)
    }

    /// The live process; a dead one is replaced first.
    async fn instance(&self) -> Result<Arc<Instance>, LogicalError> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(PluginError::Stopped.into());
        }
        let dead = {
            let g = self.current.read().await;
            match g.as_ref() {
                Some(i) if i.alive() => return Ok(i.clone()),
                Some(i) => i.generation,
                None => 0,
            }
        };
        self.restart(dead).await
    }

    /// Replaces the instance of generation `dead` (unless another request already did).
    async fn restart(&self, dead: u64) -> Result<Arc<Instance>, LogicalError> {
        let mut g = self.current.write().await;
        if self.closed.load(Ordering::SeqCst) {
            return Err(PluginError::Stopped.into());
        }
        if let Some(i) = g.as_ref() {
            if i.generation != dead && i.alive() {
                return Ok(i.clone());
            }
        }
        if let Some(old) = g.take() {
            old.kill_now();
        }
        let gen = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        let inst = Arc::new(start_instance(&self.spec, gen).await?);
        self.restarts.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(plugin = %self.spec.name, pid = inst.pid, "plugin process had exited; started a new one");
        *g = Some(inst.clone());
        Ok(inst)
    }

    pub(crate) fn is_open(&self) -> bool {
        !self.closed.load(Ordering::SeqCst)
    }

    async fn shutdown(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let inst = self.current.write().await.take();
        if let Some(i) = inst {
            i.stop().await;
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(inst) = self.current.get_mut().take() {
            match tokio::runtime::Handle::try_current() {
                Ok(h) => {
                    h.spawn(async move { inst.stop().await });
                }
                Err(_) => inst.kill_now(),
            }
        }
    }
}

/// One mount of a plugin presented as a [`Backend`]. Its process is restarted transparently
/// when it dies; a process of its own is stopped (controller `Shutdown`, then SIGKILL) by
/// [`PluginClient::shutdown`] or on drop, a shared one when its last mount goes.
pub struct PluginClient {
    slot: Arc<Slot>,
    ctx: Arc<HostContext>,
    /// The mount's id on a multiplexed process (sent only when the process multiplexes).
    mux_id: String,
    attached: tokio::sync::Mutex<Option<Arc<Attachment>>>,
    /// The root-protected and unauthenticated globs the plugin declared (`SpecialPaths`): the
    /// router reads a plugin's flags from them, as OpenBao does.
    special: coffer_sdk::framework::SpecialPaths,
    /// The plugin's path table as its help answer describes it (empty for plugins that do not,
    /// such as those built on the Go SDK).
    table: Vec<PathSpec>,
}

impl std::fmt::Debug for PluginClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginClient")
            .field("name", &self.slot.spec.name)
            .field("command", &self.slot.spec.command)
            .finish()
    }
}

enum CallError {
    Status(Status),
    Logical(LogicalError),
}

impl From<CallError> for LogicalError {
    fn from(e: CallError) -> Self {
        match e {
            CallError::Logical(e) => e,
            CallError::Status(s) => LogicalError::new(
                coffer_sdk::ErrorKind::Unavailable,
                format!("plugin call failed: {} ({:?}){}", s.message(), s.code(), broker_tls_hint(s.message())),
            ),
        }
    }
}

/// A hint for the error a plugin built on go-plugin before 1.4.4 returns when it dials the
/// services the host serves it through the broker: those releases check the host's
/// certificate against the system's CAs and the name "unused", so the TLS handshake always
/// fails under automatic mTLS (grpc-go reports it as an "authentication handshake failed").
fn broker_tls_hint(message: &str) -> &'static str {
    if message.contains("authentication handshake failed") && message.contains("x509") {
        "; the plugin could not verify the host's certificate when dialling its storage through the \
         broker: plugins built on go-plugin before 1.4.4 cannot use the broker under automatic mTLS, \
         rebuild the plugin with go-plugin 1.4.4 or later"
    } else {
        ""
    }
}

/// Errors after which the process may have died under the request.
fn maybe_transport(s: &Status) -> bool {
    matches!(s.code(), tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled | tonic::Code::Internal)
}

impl PluginClient {
    /// Starts the plugin in a process of its own and completes the handshake, the broker
    /// set-up and `Setup`. (To share a multiplexed plugin's process between mounts, use
    /// [`crate::launch_shared`].)
    pub async fn start(spec: LaunchSpec) -> Result<Self, PluginError> {
        let slot = Slot::start(spec).await?;
        Self::on_slot(slot).await
    }

    /// A new mount on the process of `slot`: attaches, `Setup`, reads the special paths and
    /// the path table. A failure leaves the process to its other mounts.
    pub(crate) async fn on_slot(slot: Arc<Slot>) -> Result<Self, PluginError> {
        let name = slot.spec.name.clone();
        let connect_err =
            |source: ConnectError| PluginError::Connect { path: name.clone(), source, stderr: String::new() };
        let ctx = Arc::new(HostContext {
            storage: RwLock::new(None),
            system: RwLock::new(SystemInfo::default()),
            services: RwLock::new(None),
            server_version: slot.spec.server_version.clone(),
        });
        let mut client = PluginClient {
            slot,
            ctx,
            mux_id: uuid::Uuid::new_v4().simple().to_string(),
            attached: tokio::sync::Mutex::new(None),
            special: Default::default(),
            table: Vec::new(),
        };
        let inst = client.slot.instance().await.map_err(|e| connect_err(ConnectError::Setup(e.to_string())))?;
        let tag = Tag::for_instance(&inst, &client.mux_id);
        let att = attach(&name, &inst, &client.ctx, &tag).await.map_err(connect_err)?;
        *client.attached.get_mut() = Some(Arc::new(att));
        let paths =
            match tokio::time::timeout(STARTUP_RPC, inst.backend.clone().special_paths(tag.req(pb::Empty {}))).await {
                Ok(Ok(r)) => r.into_inner().paths.unwrap_or_default(),
                Ok(Err(s)) => return Err(connect_err(ConnectError::SpecialPaths(s))),
                Err(_) => return Err(connect_err(ConnectError::RpcTimeout { rpc: "SpecialPaths" })),
            };
        client.special =
            coffer_sdk::framework::SpecialPaths { root: paths.root, unauthenticated: paths.unauthenticated };
        client.table = fetch_path_table(&inst, &tag).await;
        Ok(client)
    }

    /// The process id of the running plugin, if one runs.
    pub async fn pid(&self) -> Option<u32> {
        self.slot.current.read().await.as_ref().filter(|i| i.alive()).map(|i| i.pid)
    }

    /// Whether this mount shares a multiplexed plugin process.
    pub async fn multiplexed(&self) -> bool {
        self.slot.multiplexed().await
    }

    /// How many times the plugin was restarted after dying.
    pub fn restarts(&self) -> u64 {
        self.slot.restarts.load(Ordering::Relaxed)
    }

    /// The version the plugin reports (empty when unversioned).
    pub async fn version(&self) -> Result<String, LogicalError> {
        let v = self
            .call(|i, tag| async move {
                let mut c = logical::plugin_version_client::PluginVersionClient::new(i.channel.clone());
                match c.version(tag.req(logical::Empty {})).await {
                    Ok(r) => Ok(r.into_inner().plugin_version),
                    Err(s) if s.code() == tonic::Code::Unimplemented => Ok(String::new()),
                    Err(s) => Err(s),
                }
            })
            .await?;
        Ok(v)
    }

    /// What the plugin says it is: `secret` or `auth` (the Backend service's `Type`).
    pub async fn backend_kind(&self) -> Result<&'static str, LogicalError> {
        let t = self
            .call(|i, tag| async move {
                let mut c = i.backend.clone();
                c.r#type(tag.req(pb::Empty {})).await.map(|r| r.into_inner().r#type)
            })
            .await?;
        Ok(match t {
            1 => "secret",
            2 => "auth",
            _ => "unknown",
        })
    }

    /// Stops the plugin (Cleanup, controller Shutdown, SIGKILL after a grace period). Later
    /// requests fail with [`PluginError::Stopped`]. On a shared process this stops it for
    /// every mount.
    pub async fn shutdown(&self) {
        self.attached.lock().await.take();
        self.slot.shutdown().await;
    }

    /// Ends this mount: `Cleanup` of its backend in a shared process, and the process itself
    /// when no other mount uses it (awaited, unlike a drop).
    pub async fn close(self) {
        if let Some(att) = self.attached.lock().await.take() {
            let inst = self.slot.current.read().await.clone();
            if let Some(inst) = inst.filter(|i| i.multiplexed && i.alive() && i.generation == att.generation) {
                cleanup_mount(&inst, &self.mux_id).await;
            }
        }
        let slot = self.slot.clone();
        drop(self);
        if Arc::strong_count(&slot) == 1 {
            slot.shutdown().await;
        }
    }

    /// The mount's attachment to `inst`, made (with `Setup`) when the process is new to it.
    async fn attachment(&self, inst: &Arc<Instance>) -> Result<(Arc<Attachment>, Tag), CallError> {
        let tag = Tag::for_instance(inst, &self.mux_id);
        let mut g = self.attached.lock().await;
        if let Some(a) = g.as_ref() {
            if a.generation == inst.generation {
                return Ok((a.clone(), tag));
            }
        }
        g.take();
        let att = attach(&self.slot.spec.name, inst, &self.ctx, &tag).await.map_err(|e| match e {
            ConnectError::Rpc { source, .. } => CallError::Status(source),
            other => CallError::Logical(
                PluginError::Connect { path: self.slot.spec.name.clone(), source: other, stderr: String::new() }.into(),
            ),
        })?;
        let att = Arc::new(att);
        *g = Some(att.clone());
        Ok((att, tag))
    }

    /// `Initialize` once per backend, when the mount's storage is known (the first request).
    async fn ensure_initialized(&self, inst: &Instance, att: &Attachment, tag: &Tag) -> Result<(), CallError> {
        att.initialized
            .get_or_try_init(|| async {
                match inst.backend.clone().initialize(tag.req(pb::InitializeArgs {})).await {
                    Ok(r) => match r.into_inner().err {
                        Some(e) => Err(CallError::Logical(error_from_proto(&e))),
                        None => Ok(()),
                    },
                    Err(s) if s.code() == tonic::Code::Unimplemented => Ok(()),
                    Err(s) => Err(CallError::Status(s)),
                }
            })
            .await
            .map(|_| ())
    }

    async fn try_call<T, F, Fut>(&self, inst: &Arc<Instance>, f: &F) -> Result<T, CallError>
    where
        F: Fn(Arc<Instance>, Tag) -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        let (att, tag) = self.attachment(inst).await?;
        self.ensure_initialized(inst, &att, &tag).await?;
        f(inst.clone(), tag).await.map_err(CallError::Status)
    }

    /// Runs `f` against the live instance; when the call fails because the process died, starts
    /// a new one and runs `f` once more (as OpenBao does).
    async fn call<T, F, Fut>(&self, f: F) -> Result<T, LogicalError>
    where
        F: Fn(Arc<Instance>, Tag) -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        let inst = self.slot.instance().await?;
        match self.try_call(&inst, &f).await {
            Ok(v) => Ok(v),
            Err(CallError::Status(s))
                if maybe_transport(&s) && inst.exited_within(Duration::from_millis(500)).await =>
            {
                let inst = self.slot.restart(inst.generation).await?;
                Ok(self.try_call(&inst, &f).await?)
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn handle(&self, preq: pb::Request) -> Result<pb::HandleRequestReply, LogicalError> {
        self.call(|i, tag| {
            let mut c = i.backend.clone();
            let args = pb::HandleRequestArgs { storage_id: 0, request: Some(preq.clone()) };
            async move { c.handle_request(tag.req(args)).await.map(|r| r.into_inner()) }
        })
        .await
    }
}

impl Drop for PluginClient {
    /// A mount of a multiplexed process asks the plugin to drop its backend (`Cleanup` with
    /// its id); the process itself stops when its last mount is gone (`Slot`'s drop). The
    /// cleanup holds the process, not the slot, so a mount started meanwhile never joins a
    /// process that is on its way out.
    fn drop(&mut self) {
        let Some(att) = self.attached.get_mut().take() else { return };
        if Arc::strong_count(&self.slot) == 1 {
            return;
        }
        let inst = self.slot.current.try_read().ok().and_then(|g| g.clone());
        let Some(inst) = inst.filter(|i| i.multiplexed && i.generation == att.generation) else { return };
        let id = self.mux_id.clone();
        if let Ok(h) = tokio::runtime::Handle::try_current() {
            h.spawn(async move {
                if inst.alive() {
                    cleanup_mount(&inst, &id).await;
                }
                drop(att);
            });
        }
    }
}

/// Asks a multiplexed plugin to drop the backend of the mount `mux_id`.
async fn cleanup_mount(inst: &Instance, mux_id: &str) {
    let tag = Tag::for_instance(inst, mux_id);
    match tokio::time::timeout(EXIT_GRACE, inst.backend.clone().cleanup(tag.req(pb::Empty {}))).await {
        Ok(Ok(_)) => tracing::debug!(pid = inst.pid, "mount cleaned up in the shared plugin process"),
        Ok(Err(s)) => tracing::debug!(pid = inst.pid, "Cleanup of a mount failed: {s}"),
        Err(_) => tracing::debug!(pid = inst.pid, "Cleanup of a mount timed out"),
    }
}

/// Asks a fresh instance for help on its root and reads the path table from the answer.
async fn fetch_path_table(inst: &Instance, tag: &Tag) -> Vec<PathSpec> {
    let help = pb::Request { id: uuid::Uuid::new_v4().to_string(), operation: "help".into(), ..Default::default() };
    let args = pb::HandleRequestArgs { storage_id: 0, request: Some(help) };
    let reply = match tokio::time::timeout(STARTUP_RPC, inst.backend.clone().handle_request(tag.req(args))).await {
        Ok(Ok(r)) => r.into_inner(),
        _ => return Vec::new(),
    };
    let data: Option<Value> = reply.response.and_then(|r| serde_json::from_str(&r.data).ok());
    match data.as_ref().and_then(|d| d.get("paths")) {
        Some(p) => coffer_sdk::framework::paths_from_description(p).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "the plugin's path table cannot be read; help and OpenAPI will not list its paths");
            Vec::new()
        }),
        None => Vec::new(),
    }
}

fn proto_request(req: &Request, operation: &str) -> pb::Request {
    pb::Request {
        id: uuid::Uuid::new_v4().to_string(),
        operation: operation.to_string(),
        path: req.path.clone(),
        data: json_string(&req.data),
        mount_point: req.mount_point.clone(),
        connection: connection(req),
        display_name: req.display_name.clone(),
        entity_id: req.entity_id.clone(),
        ..Default::default()
    }
}

/// The client's connection as the protocol carries it: its address and, when it presented
/// certificates over TLS, those certificates (a cert auth method reads them).
fn connection(req: &Request) -> Option<pb::Connection> {
    let certs = req.client_certs.as_ref().filter(|c| !c.is_empty());
    if req.remote_addr.is_none() && certs.is_none() {
        return None;
    }
    Some(pb::Connection {
        remote_addr: req.remote_addr.map(|a| a.to_string()).unwrap_or_default(),
        remote_port: 0,
        connection_state: certs.map(|chain| pb::ConnectionState {
            handshake_complete: true,
            peer_certificates: Some(pb::CertificateChain {
                certificates: chain.iter().map(|der| pb::Certificate { asn1_data: der.clone() }).collect(),
            }),
            ..Default::default()
        }),
    })
}

fn proto_secret(internal: &Map<String, Value>, ttl: i64) -> pb::Secret {
    pb::Secret {
        lease_options: Some(pb::LeaseOptions {
            ttl: to_nanos(ttl),
            renewable: true,
            increment: to_nanos(ttl),
            issue_time: Some(now_timestamp()),
            max_ttl: 0,
        }),
        internal_data: json_string(internal),
        lease_id: String::new(),
    }
}

/// The protocol's error, preferring the `{"error": …}` a Go backend puts beside an
/// invalid-request error.
fn reply_error(reply: &pb::HandleRequestReply) -> Option<LogicalError> {
    let e = reply.err.as_ref()?;
    if e.err_type == ERR_INVALID_REQUEST {
        if let Some(Err(msg)) = reply.response.as_ref().map(response_from_proto) {
            return Some(msg);
        }
    }
    Some(error_from_proto(e))
}

#[async_trait]
impl Backend for PluginClient {
    fn backend_type(&self) -> &'static str {
        "plugin"
    }

    /// The plugin's path table, for help and the OpenAPI document; requests are routed by
    /// mount prefix and the plugin routes them itself.
    fn paths(&self) -> &[PathSpec] {
        &self.table
    }

    fn path_flags(&self, path: &str) -> coffer_sdk::framework::PathFlags {
        self.special.flags_for(path)
    }

    fn special_paths(&self) -> coffer_sdk::framework::SpecialPaths {
        self.special.clone()
    }

    async fn handle_request(&self, req: Request) -> coffer_sdk::Result<Option<Response>> {
        self.ctx.bind(&req);
        let reply = self.handle(proto_request(&req, req.operation.as_str())).await?;
        if let Some(e) = reply_error(&reply) {
            // Data beside a status error (a Go backend's response plus coded error).
            if let Some(Ok(mut r)) = reply.response.as_ref().map(response_from_proto) {
                if r.data.as_ref().is_some_and(|d| !d.is_empty()) && e.kind != coffer_sdk::ErrorKind::BadRequest {
                    r.status = coffer_sdk::ResponseStatus::Error(e.kind);
                    return Ok(Some(r));
                }
            }
            return Err(e);
        }
        match &reply.response {
            None if req.operation == Operation::Read => Err(LogicalError::not_found()),
            None => Ok(None),
            Some(r) => response_from_proto(r).map(Some),
        }
    }

    async fn exists(&self, req: &Request) -> coffer_sdk::Result<Option<bool>> {
        self.ctx.bind(req);
        let preq = proto_request(req, req.operation.as_str());
        let reply = self
            .call(|i, tag| {
                let mut c = i.backend.clone();
                let args = pb::HandleExistenceCheckArgs { storage_id: 0, request: Some(preq.clone()) };
                async move { c.handle_existence_check(tag.req(args)).await.map(|r| r.into_inner()) }
            })
            .await?;
        if let Some(e) = &reply.err {
            return Err(error_from_proto(e));
        }
        Ok(reply.check_found.then_some(reply.exists))
    }

    async fn revoke_secret(&self, req: &Request, internal: &Map<String, Value>) -> coffer_sdk::Result<()> {
        self.ctx.bind(req);
        let mut preq = proto_request(req, "revoke");
        preq.secret = Some(proto_secret(internal, 0));
        let reply = self.handle(preq).await?;
        match reply_error(&reply) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    async fn renew_login(&self, req: &Request, login: &LoginRenewal) -> coffer_sdk::Result<()> {
        self.ctx.bind(req);
        let mut preq = proto_request(req, "renew");
        preq.path = login.path.clone();
        let auth = AuthResponse {
            policies: login.policies.clone(),
            metadata: login.metadata.clone(),
            internal_data: login.internal_data.clone(),
            renewable: true,
            ..Default::default()
        };
        preq.auth = Some(crate::convert::auth_to_proto(&auth));
        let reply = self.handle(preq).await?;
        if let Some(e) = reply_error(&reply) {
            // The plugin refuses the renewal (its method re-checked the login and it no longer holds).
            return Err(e);
        }
        // A Go backend refuses with an `{"error": …}` answer and no protocol error.
        match reply.response.as_ref().map(response_from_proto) {
            Some(Err(e)) => Err(e),
            _ => Ok(()),
        }
    }

    async fn renew_secret(&self, req: &Request, internal: &Map<String, Value>, ttl: i64) -> coffer_sdk::Result<i64> {
        self.ctx.bind(req);
        let mut preq = proto_request(req, "renew");
        preq.secret = Some(proto_secret(internal, ttl));
        let reply = self.handle(preq).await?;
        if let Some(e) = reply_error(&reply) {
            return Err(e);
        }
        let granted = reply.response.as_ref().and_then(|r| r.secret.as_ref()).and_then(|s| s.lease_options.as_ref());
        Ok(granted.map(|lo| to_secs(lo.ttl)).filter(|t| *t > 0).unwrap_or(ttl))
    }
}

// ---- starting a process -------------------------------------------------------------------

/// The SHA-256 of a file in lower-case hex, as catalogs pin it.
pub fn sha256_hex(path: &Path) -> Result<String, PluginError> {
    let bytes = std::fs::read(path)
        .map_err(|e| PluginError::Binary { path: path.display().to_string(), message: format!("cannot read: {e}") })?;
    Ok(hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &bytes).as_ref()))
}

/// The parsed handshake line.
#[derive(Debug)]
pub(crate) struct Handshake {
    pub(crate) addr: Addr,
    pub(crate) cert: CertificateDer<'static>,
}

fn shorten(s: &str) -> String {
    let s = s.trim();
    if s.chars().count() > 120 {
        format!("{}…", s.chars().take(120).collect::<String>())
    } else {
        s.to_string()
    }
}

fn parse_handshake(line: &str) -> Result<Handshake, HandshakeError> {
    let parts: Vec<&str> = line.trim().split('|').collect();
    if parts.len() < 4 {
        return Err(HandshakeError::Unexpected(shorten(line)));
    }
    if parts[0] != "1" {
        return Err(HandshakeError::CoreProtocol(shorten(parts[0])));
    }
    if parts[1] != APP_PROTOCOL_VERSION.to_string() {
        return Err(HandshakeError::AppProtocol(shorten(parts[1])));
    }
    let addr = Addr::parse(parts[2], parts[3]).ok_or_else(|| HandshakeError::Network(parts[2].to_string()))?;
    let protocol = parts.get(4).copied().unwrap_or("netrpc");
    if protocol != "grpc" {
        return Err(HandshakeError::NotGrpc(shorten(protocol)));
    }
    let field = parts.get(5).copied().unwrap_or("").trim();
    if field.is_empty() {
        return Err(HandshakeError::NoCertificate);
    }
    let der = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(field)
        .or_else(|_| base64::engine::general_purpose::STANDARD.decode(field))
        .map_err(HandshakeError::CertificateEncoding)?;
    Ok(Handshake { addr, cert: CertificateDer::from(der) })
}

pub(crate) type Tail = Arc<Mutex<VecDeque<String>>>;

fn tail_text(t: &Tail) -> String {
    match t.lock() {
        Ok(g) if !g.is_empty() => format!("; stderr: {}", g.iter().cloned().collect::<Vec<_>>().join(" | ")),
        _ => String::new(),
    }
}

/// Logs the plugin's output lines, keeping the last few for error messages.
fn drain<R: tokio::io::AsyncRead + Unpin + Send + 'static>(
    name: String,
    stream: &'static str,
    r: R,
    tail: Option<Tail>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut lines = BufReader::new(r).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            tracing::debug!(plugin = %name, stream, "{line}");
            if let Some(t) = &tail {
                if let Ok(mut g) = t.lock() {
                    if g.len() == STDERR_TAIL {
                        g.pop_front();
                    }
                    g.push_back(shorten(&line));
                }
            }
        }
    })
}

async fn kill_and_reap(child: &mut Child) {
    let _ = child.start_kill();
    let _ = tokio::time::timeout(EXIT_GRACE, child.wait()).await;
}

static BROKER_IDS: AtomicU32 = AtomicU32::new(1);

/// A started plugin process that has printed a valid handshake line.
pub(crate) struct Spawned {
    pub(crate) child: Child,
    pub(crate) pid: u32,
    pub(crate) identity: tls::Identity,
    /// The plugin's socket directory (`PLUGIN_UNIX_SOCKET_DIR`); removed on drop.
    pub(crate) dir: tempfile::TempDir,
    pub(crate) handshake: Handshake,
    /// The stdout/stderr drains.
    pub(crate) tasks: Vec<JoinHandle<()>>,
    pub(crate) tail: Tail,
}

impl Spawned {
    /// The tail of the plugin's stderr, for error messages.
    pub(crate) fn stderr_tail(&self) -> String {
        tail_text(&self.tail)
    }
    /// Kills the process and stops the drains (after a failure past the handshake).
    pub(crate) async fn abandon(mut self) {
        kill_and_reap(&mut self.child).await;
        for t in self.tasks {
            t.abort();
        }
    }
}

/// Checks the binary's digest, starts it with a clean environment plus the protocol's
/// variables and the magic cookie `cookie` (key, value), and reads its handshake line. On any
/// failure the process is killed and reaped before the error is returned.
pub(crate) async fn spawn_and_handshake(spec: &LaunchSpec, cookie: (&str, &str)) -> Result<Spawned, PluginError> {
    let name = spec.name.clone();
    if !spec.sha256.is_empty() {
        let actual = sha256_hex(&spec.command)?;
        if !actual.eq_ignore_ascii_case(spec.sha256.trim()) {
            return Err(PluginError::Binary {
                path: spec.command.display().to_string(),
                message: format!("SHA-256 is {actual}, expected {}", spec.sha256.trim()),
            });
        }
    }
    let identity = tls::generate_identity()?;
    let dir = tempfile::Builder::new()
        .prefix("coffer-plugin-")
        .tempdir()
        .map_err(|e| PluginError::Spawn { path: spec.command.display().to_string(), source: e })?;

    let mut cmd = Command::new(&spec.command);
    cmd.args(&spec.args)
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env(cookie.0, cookie.1)
        .env("PLUGIN_PROTOCOL_VERSIONS", APP_PROTOCOL_VERSION.to_string())
        .env("PLUGIN_MIN_PORT", "10000")
        .env("PLUGIN_MAX_PORT", "25000")
        .env("PLUGIN_CLIENT_CERT", &identity.cert_pem)
        .env("PLUGIN_UNIX_SOCKET_DIR", dir.path())
        .env("BAO_PLUGIN_AUTOMTLS_ENABLED", "true")
        .env("VAULT_PLUGIN_AUTOMTLS_ENABLED", "true")
        .env("BAO_PLUGIN_METADATA_MODE", "false")
        .env("VAULT_PLUGIN_METADATA_MODE", "false")
        .env("BAO_VERSION", &spec.server_version)
        .env("VAULT_VERSION", &spec.server_version)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child =
        cmd.spawn().map_err(|e| PluginError::Spawn { path: spec.command.display().to_string(), source: e })?;
    let pid = child.id().unwrap_or(0);
    let tail: Tail = Arc::new(Mutex::new(VecDeque::new()));
    let mut tasks = Vec::new();
    let stderr_task = child.stderr.take().map(|e| drain(name.clone(), "stderr", e, Some(tail.clone())));

    let fail = |source: HandshakeError, stderr: String| PluginError::Handshake {
        path: spec.command.display().to_string(),
        source,
        stderr,
    };
    let stdout = child.stdout.take().ok_or_else(|| fail(HandshakeError::NoStdout, String::new()))?;
    let mut lines = BufReader::new(stdout).lines();
    let line = match tokio::time::timeout(spec.handshake_timeout, lines.next_line()).await {
        Ok(Ok(Some(line))) => Ok(line),
        Ok(Ok(None)) => {
            let status = tokio::time::timeout(Duration::from_secs(1), child.wait()).await;
            let status = match status {
                Ok(Ok(s)) => format!(", {s}"),
                _ => String::new(),
            };
            Err(HandshakeError::Exited { status })
        }
        Ok(Err(e)) => Err(HandshakeError::Read(e)),
        Err(_) => Err(HandshakeError::Timeout(spec.handshake_timeout)),
    };
    let handshake = line.and_then(|l| parse_handshake(&l));
    let handshake = match handshake {
        Ok(h) => h,
        Err(e) => {
            kill_and_reap(&mut child).await;
            if let Some(t) = stderr_task {
                let _ = tokio::time::timeout(Duration::from_millis(500), t).await;
            }
            return Err(fail(e, tail_text(&tail)));
        }
    };
    tasks.push(drain(name.clone(), "stdout", lines.into_inner().into_inner(), None));
    tasks.extend(stderr_task);
    Ok(Spawned { child, pid, identity, dir, handshake, tasks, tail })
}

/// Starts one backend plugin process. On any failure the process is killed and reaped before
/// the error is returned.
async fn start_instance(spec: &LaunchSpec, generation: u64) -> Result<Instance, PluginError> {
    let sp = spawn_and_handshake(spec, (MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE)).await?;
    let hs = Handshake { addr: sp.handshake.addr.clone(), cert: sp.handshake.cert.clone() };
    match connect(spec, &sp.identity, hs).await {
        Ok(parts) => {
            let Spawned { child, pid, dir, mut tasks, .. } = sp;
            tasks.extend(parts.tasks);
            Ok(Instance {
                generation,
                pid,
                child: Mutex::new(child),
                channel: parts.channel,
                backend: parts.backend,
                controller: parts.controller,
                multiplexed: parts.multiplexed,
                broker_tx: parts.broker_tx,
                broker_tls: Some(parts.broker_tls),
                tasks,
                dir,
            })
        }
        Err(source) => {
            let stderr = sp.stderr_tail();
            sp.abandon().await;
            Err(PluginError::Connect { path: spec.command.display().to_string(), source, stderr })
        }
    }
}

struct Connected {
    channel: Channel,
    backend: BackendClient<Channel>,
    controller: GrpcControllerClient<Channel>,
    multiplexed: bool,
    broker_tx: mpsc::Sender<gp::ConnInfo>,
    broker_tls: Arc<rustls::ServerConfig>,
    tasks: Vec<JoinHandle<()>>,
}

/// After the handshake: TLS connection, health check, broker stream, and whether the plugin
/// multiplexes. (Each mount then attaches its brokered services and calls `Setup`: [`attach`].)
async fn connect(spec: &LaunchSpec, identity: &tls::Identity, hs: Handshake) -> Result<Connected, ConnectError> {
    let client_tls = tls::client_config(identity, &hs.cert).map_err(|e| ConnectError::Tls(Box::new(e)))?;
    let ch = tokio::time::timeout(STARTUP_RPC, transport::channel(hs.addr.clone(), Some(client_tls)))
        .await
        // drop-cause: an elapsed timeout says nothing more than the message does.
        .map_err(|_| ConnectError::Timeout)?
        .map_err(|source| ConnectError::Channel { address: format!("{:?}", hs.addr), source })?;

    let mut health = tonic_health::pb::health_client::HealthClient::new(ch.clone());
    let check = tonic_health::pb::HealthCheckRequest { service: HEALTH_SERVICE.to_string() };
    match tokio::time::timeout(STARTUP_RPC, health.check(check)).await {
        Err(_) => return Err(ConnectError::HealthTimeout),
        Ok(Err(s)) if s.code() == tonic::Code::Unavailable => return Err(ConnectError::Unreachable(s)),
        Ok(Err(s)) => tracing::debug!(plugin = %spec.name, "health check not answered: {s}"),
        Ok(Ok(_)) => {}
    }

    let mut tasks = Vec::new();
    // The broker stream: announcements of the services we serve the plugin.
    let (broker_tx, broker_rx) = mpsc::channel::<gp::ConnInfo>(8);
    let mut broker_client = GrpcBrokerClient::new(ch.clone());
    let name = spec.name.clone();
    tasks.push(tokio::spawn(async move {
        // A Go plugin sends response headers only with its first announcement, so this call
        // is not awaited in line.
        match broker_client.start_stream(ReceiverStream::new(broker_rx)).await {
            Ok(resp) => {
                let mut inbound = resp.into_inner();
                while let Ok(Some(info)) = inbound.message().await {
                    tracing::debug!(plugin = %name, id = info.service_id, "plugin announced a brokered service (unused)");
                }
            }
            Err(s) => tracing::debug!(plugin = %name, "broker stream ended: {s}"),
        }
    }));
    let broker_tls = tls::server_config(identity, &hs.cert).map_err(|e| ConnectError::Tls(Box::new(e)))?;
    let multiplexed = crate::mux::multiplexing_supported(&ch, &spec.name).await?;
    let backend =
        BackendClient::new(ch.clone()).max_decoding_message_size(MAX_MESSAGE).max_encoding_message_size(MAX_MESSAGE);
    Ok(Connected {
        controller: GrpcControllerClient::new(ch.clone()),
        channel: ch,
        backend,
        multiplexed,
        broker_tx,
        broker_tls,
        tasks,
    })
}

// ---- what the host serves the plugin ------------------------------------------------------

const NO_STORAGE: &str = "missing storage implementation: no request has reached this mount yet";

struct HostStorage(Arc<HostContext>);

#[async_trait]
impl storage_server::Storage for HostStorage {
    async fn list(
        &self,
        r: tonic::Request<pb::StorageListArgs>,
    ) -> Result<tonic::Response<pb::StorageListReply>, Status> {
        let Some(s) = self.0.storage() else {
            return Ok(tonic::Response::new(pb::StorageListReply { keys: vec![], err: NO_STORAGE.into() }));
        };
        let out = match s.list(&r.into_inner().prefix).await {
            Ok(keys) => pb::StorageListReply { keys, err: String::new() },
            Err(e) => pb::StorageListReply { keys: vec![], err: e.to_string() },
        };
        Ok(tonic::Response::new(out))
    }

    async fn get(&self, r: tonic::Request<pb::StorageGetArgs>) -> Result<tonic::Response<pb::StorageGetReply>, Status> {
        let Some(s) = self.0.storage() else {
            return Ok(tonic::Response::new(pb::StorageGetReply { entry: None, err: NO_STORAGE.into() }));
        };
        let key = r.into_inner().key;
        let out = match s.get(&key).await {
            Ok(v) => pb::StorageGetReply {
                entry: v.map(|value| pb::StorageEntry { key, value, seal_wrap: false }),
                err: String::new(),
            },
            Err(e) => pb::StorageGetReply { entry: None, err: e.to_string() },
        };
        Ok(tonic::Response::new(out))
    }

    async fn put(&self, r: tonic::Request<pb::StoragePutArgs>) -> Result<tonic::Response<pb::StoragePutReply>, Status> {
        let Some(s) = self.0.storage() else {
            return Ok(tonic::Response::new(pb::StoragePutReply { err: NO_STORAGE.into() }));
        };
        let Some(entry) = r.into_inner().entry else {
            return Ok(tonic::Response::new(pb::StoragePutReply { err: "no entry given".into() }));
        };
        let err = match s.put(&entry.key, &entry.value).await {
            Ok(()) => String::new(),
            Err(e) => e.to_string(),
        };
        Ok(tonic::Response::new(pb::StoragePutReply { err }))
    }

    async fn delete(
        &self,
        r: tonic::Request<pb::StorageDeleteArgs>,
    ) -> Result<tonic::Response<pb::StorageDeleteReply>, Status> {
        let Some(s) = self.0.storage() else {
            return Ok(tonic::Response::new(pb::StorageDeleteReply { err: NO_STORAGE.into() }));
        };
        let err = match s.delete(&r.into_inner().key).await {
            Ok(()) => String::new(),
            Err(e) => e.to_string(),
        };
        Ok(tonic::Response::new(pb::StorageDeleteReply { err }))
    }
}

struct HostSystem(Arc<HostContext>);

type Rsp<T> = Result<tonic::Response<T>, Status>;

fn ok<T>(t: T) -> Rsp<T> {
    Ok(tonic::Response::new(t))
}

#[async_trait]
impl system_view_server::SystemView for HostSystem {
    async fn default_lease_ttl(&self, _: tonic::Request<pb::Empty>) -> Rsp<pb::TtlReply> {
        ok(pb::TtlReply { ttl: to_nanos(self.0.system().default_lease_ttl) })
    }
    async fn max_lease_ttl(&self, _: tonic::Request<pb::Empty>) -> Rsp<pb::TtlReply> {
        ok(pb::TtlReply { ttl: to_nanos(self.0.system().max_lease_ttl) })
    }
    async fn tainted(&self, _: tonic::Request<pb::Empty>) -> Rsp<pb::TaintedReply> {
        ok(pb::TaintedReply { tainted: false })
    }
    async fn caching_disabled(&self, _: tonic::Request<pb::Empty>) -> Rsp<pb::CachingDisabledReply> {
        ok(pb::CachingDisabledReply { disabled: false })
    }
    async fn replication_state(&self, _: tonic::Request<pb::Empty>) -> Rsp<pb::ReplicationStateReply> {
        ok(pb::ReplicationStateReply { state: 0 })
    }
    async fn response_wrap_data(&self, _: tonic::Request<pb::ResponseWrapDataArgs>) -> Rsp<pb::ResponseWrapDataReply> {
        ok(pb::ResponseWrapDataReply {
            wrap_info: None,
            err: "response wrapping on behalf of plugins is not supported by Coffer".into(),
        })
    }
    async fn mlock_enabled(&self, _: tonic::Request<pb::Empty>) -> Rsp<pb::MlockEnabledReply> {
        ok(pb::MlockEnabledReply { enabled: false })
    }
    async fn local_mount(&self, _: tonic::Request<pb::Empty>) -> Rsp<pb::LocalMountReply> {
        ok(pb::LocalMountReply { local: false })
    }
    async fn entity_info(&self, _: tonic::Request<pb::EntityInfoArgs>) -> Rsp<pb::EntityInfoReply> {
        // Identity is not shared with plugins: "no such entity".
        ok(pb::EntityInfoReply { entity: None, err: String::new() })
    }
    async fn plugin_env(&self, _: tonic::Request<pb::Empty>) -> Rsp<pb::PluginEnvReply> {
        ok(pb::PluginEnvReply {
            plugin_environment: Some(logical::PluginEnvironment {
                vault_version: self.0.server_version.clone(),
                vault_version_prerelease: String::new(),
                vault_version_metadata: "coffer".into(),
            }),
            err: String::new(),
        })
    }
    async fn groups_for_entity(&self, _: tonic::Request<pb::EntityInfoArgs>) -> Rsp<pb::GroupsForEntityReply> {
        ok(pb::GroupsForEntityReply { groups: vec![], err: String::new() })
    }
    async fn generate_password_from_policy(
        &self,
        r: tonic::Request<pb::GeneratePasswordFromPolicyRequest>,
    ) -> Rsp<pb::GeneratePasswordFromPolicyReply> {
        let name = r.into_inner().policy_name;
        if name.is_empty() {
            return Err(Status::invalid_argument("no password policy specified"));
        }
        let Some(services) = self.0.services() else {
            return Err(Status::unavailable("password policies are not available to this mount"));
        };
        match services.generate_password(&name).await {
            Ok(password) => ok(pb::GeneratePasswordFromPolicyReply { password }),
            Err(e) => Err(Status::internal(format!("failed to generate password: {e}"))),
        }
    }
    async fn cluster_info(&self, _: tonic::Request<pb::Empty>) -> Rsp<pb::ClusterInfoReply> {
        ok(pb::ClusterInfoReply::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_tls_failures_of_old_go_plugin_get_a_hint_and_other_errors_do_not() {
        // What a go-plugin 1.0.1 plugin returns when its brokered Storage dial fails.
        let old = "connection error: desc = \"transport: authentication handshake failed: x509: certificate is \
                   valid for localhost, not unused\"";
        assert!(broker_tls_hint(old).contains("go-plugin 1.4.4"));
        assert_eq!(broker_tls_hint("connection refused"), "");
        assert_eq!(broker_tls_hint("x509: certificate has expired"), "");
        let e = LogicalError::from(CallError::Status(Status::unavailable(old)));
        assert!(e.messages.iter().any(|m| m.contains("go-plugin 1.4.4")), "{:?}", e.messages);
    }

    #[test]
    fn handshake_lines_are_checked_field_by_field() {
        let cert = base64::engine::general_purpose::STANDARD_NO_PAD.encode([0x30u8, 0x03, 0x02, 0x01, 0x01]);
        let ok = parse_handshake(&format!("1|5|unix|/tmp/x.sock|grpc|{cert}\n")).unwrap();
        assert!(matches!(ok.addr, Addr::Unix(ref p) if p == Path::new("/tmp/x.sock")));
        assert!(parse_handshake("hello world").unwrap_err().to_string().contains("unexpected output"));
        assert!(parse_handshake("2|5|unix|/x|grpc|").unwrap_err().to_string().contains("core protocol"));
        assert!(parse_handshake(&format!("1|4|unix|/x|grpc|{cert}"))
            .unwrap_err()
            .to_string()
            .contains("protocol version \"4\""));
        assert!(parse_handshake(&format!("1|5|unix|/x|netrpc|{cert}")).unwrap_err().to_string().contains("only gRPC"));
        assert!(parse_handshake("1|5|unix|/x|grpc|").unwrap_err().to_string().contains("automatic mTLS"));
        assert!(parse_handshake("1|5|pipe|/x|grpc|abc").unwrap_err().to_string().contains("network"));
    }
}
