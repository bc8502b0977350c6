//! Database plugins over version 5 of the database plugin protocol (`dbplugin.v5.Database`),
//! the protocol OpenBao's and Vault's `database` secrets engine speaks with external plugins.
//!
//! * **Plugin side** — [`serve_database`] serves a [`coffer_sdk::database::Database`] (made by a
//!   factory) as a plugin process that OpenBao, Vault and Coffer can register in their catalog
//!   as type `database` and name in `database/config/:name` (`plugin_name`).
//! * **Host side** — [`launch_database`] starts such a binary (any language, Go plugins built on
//!   OpenBao's or Vault's SDK included) and gives back a `Box<dyn Database>` speaking v5.
//!
//! The transport is the backend plugins' (go-plugin core protocol 1, gRPC over a unix socket
//! with automatic mutual TLS); only the magic cookie and the service differ. Database plugins
//! do not use the broker: the host serves them no storage.

use crate::host::{spawn_and_handshake, LaunchSpec, Spawned};
use crate::proto::dbplugin as pb;
use crate::proto::dbplugin::database_client::DatabaseClient;
use crate::proto::dbplugin::database_server::{self, DatabaseServer};
use crate::proto::logical::{self, plugin_version_client::PluginVersionClient, plugin_version_server};
use crate::proto::plugin::{
    self as gp, grpc_broker_server, grpc_controller_client, grpc_controller_server, grpc_stdio_server,
};
use crate::transport::{self, MAX_MESSAGE};
use crate::{tls, ConnectError, PluginError, APP_PROTOCOL_VERSION, CORE_PROTOCOL_VERSION, HEALTH_SERVICE};
use async_trait::async_trait;
use base64::Engine;
use coffer_sdk::database::{
    ChangeExpiration, ChangePassword, ChangePublicKey, CredentialType, Database, DeleteUserRequest, InitializeRequest,
    InitializeResponse, NewUserRequest, NewUserResponse, SecretString, Statements, UpdateUserRequest, UsernameMetadata,
};
use coffer_sdk::{ErrorKind, LogicalError};
use serde_json::{Map, Number, Value};
use std::io::Write;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::Stream;
use tonic::transport::{Channel, Server};
use tonic::{Request, Response, Status, Streaming};

/// The environment variable a database plugin must find, with [`DATABASE_MAGIC_COOKIE_VALUE`].
pub const DATABASE_MAGIC_COOKIE_KEY: &str = "VAULT_DATABASE_PLUGIN";
/// The value of [`DATABASE_MAGIC_COOKIE_KEY`] (a usability check, not a security measure).
pub const DATABASE_MAGIC_COOKIE_VALUE: &str = "926a0820-aea2-be28-51d6-83cdf00e8edb";

/// How long the host waits for RPCs of its own (start-up, `Type`, `Close`).
const HOST_RPC: Duration = Duration::from_secs(10);
/// How long a stopping plugin gets to exit.
const EXIT_GRACE: Duration = Duration::from_secs(2);

// ---- conversions ------------------------------------------------------------------------------

/// A JSON value as a protobuf `Value`.
fn value_to_proto(v: &Value) -> prost_types::Value {
    use prost_types::value::Kind;
    let kind = match v {
        Value::Null => Kind::NullValue(0),
        Value::Bool(b) => Kind::BoolValue(*b),
        Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(0.0)),
        Value::String(s) => Kind::StringValue(s.clone()),
        Value::Array(a) => Kind::ListValue(prost_types::ListValue { values: a.iter().map(value_to_proto).collect() }),
        Value::Object(o) => Kind::StructValue(map_to_struct(o)),
    };
    prost_types::Value { kind: Some(kind) }
}

/// A protobuf `Value` as JSON. Numbers are doubles on the wire; whole ones come back as
/// integers (`max_open_connections: 4`, not `4.0`).
fn value_from_proto(v: &prost_types::Value) -> Value {
    use prost_types::value::Kind;
    match &v.kind {
        None | Some(Kind::NullValue(_)) => Value::Null,
        Some(Kind::BoolValue(b)) => Value::Bool(*b),
        Some(Kind::NumberValue(n)) => {
            if n.fract() == 0.0 && n.abs() < 9.0e15 {
                // Exact: |n| < 2^53, so the cast loses nothing.
                #[allow(clippy::cast_possible_truncation)]
                let i = *n as i64;
                Value::Number(i.into())
            } else {
                Number::from_f64(*n).map(Value::Number).unwrap_or(Value::Null)
            }
        }
        Some(Kind::StringValue(s)) => Value::String(s.clone()),
        Some(Kind::ListValue(l)) => Value::Array(l.values.iter().map(value_from_proto).collect()),
        Some(Kind::StructValue(s)) => Value::Object(struct_to_map(s)),
    }
}

/// A JSON object as a protobuf `Struct` (the connection configuration's wire form).
pub(crate) fn map_to_struct(m: &Map<String, Value>) -> prost_types::Struct {
    prost_types::Struct { fields: m.iter().map(|(k, v)| (k.clone(), value_to_proto(v))).collect() }
}

/// A protobuf `Struct` as a JSON object.
pub(crate) fn struct_to_map(s: &prost_types::Struct) -> Map<String, Value> {
    s.fields.iter().map(|(k, v)| (k.clone(), value_from_proto(v))).collect()
}

/// A time as a protobuf `Timestamp`.
fn time_to_proto(t: SystemTime) -> prost_types::Timestamp {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => prost_types::Timestamp {
            seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
        },
        Err(_) => prost_types::Timestamp { seconds: 0, nanos: 0 },
    }
}

/// A protobuf `Timestamp` as a time; `None` for an absent one and for anything before 1970:
/// Go hosts send their zero time (0001-01-01) for "no expiry".
fn time_from_proto(t: Option<&prost_types::Timestamp>) -> Option<SystemTime> {
    let t = t?;
    if t.seconds <= 0 {
        return None;
    }
    let secs = u64::try_from(t.seconds).ok()?;
    let nanos = u32::try_from(t.nanos).unwrap_or(0);
    UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
}

fn statements_to_proto(s: &Statements) -> Option<pb::Statements> {
    Some(pb::Statements { commands: s.commands.clone() })
}

fn statements_from_proto(s: Option<pb::Statements>) -> Statements {
    Statements { commands: s.map(|s| s.commands).unwrap_or_default() }
}

/// A plugin's error as a gRPC status. The message is the plugin's own (which the SDK requires
/// to be free of secrets); bad input is `InvalidArgument`, everything else `Internal`, as Go
/// plugins answer.
fn status_from_error(what: &str, e: &LogicalError) -> Status {
    let msg = format!("{what}: {e}");
    match e.kind {
        ErrorKind::BadRequest => Status::invalid_argument(msg),
        ErrorKind::Unavailable | ErrorKind::Sealed => Status::unavailable(msg),
        _ => Status::internal(msg),
    }
}

/// A plugin's gRPC status as an SDK error the engine shows to the client.
fn error_from_status(s: &Status) -> LogicalError {
    let msg = s.message().to_string();
    match s.code() {
        tonic::Code::InvalidArgument => LogicalError::bad_request(msg),
        tonic::Code::Unavailable | tonic::Code::Cancelled => LogicalError::new(
            ErrorKind::Unavailable,
            if msg.is_empty() { "the database plugin is unavailable".into() } else { msg },
        ),
        tonic::Code::Unimplemented => {
            LogicalError::internal(format!("the database plugin does not implement this call: {msg}"))
        }
        _ => LogicalError::internal(msg),
    }
}

// ---- plugin side --------------------------------------------------------------------------------

/// How a database plugin presents itself.
#[derive(Debug, Clone, Default)]
pub struct DatabaseServeOptions {
    /// The plugin's version (`v1.2.3`), reported through `PluginVersion`; hosts compare it
    /// with the version it was registered under. Empty = unversioned.
    pub version: String,
}

/// Serves the database plugin `factory` makes, over protocol v5. Never returns: the process
/// exits when the host shuts it down (or with status 1 when it was not started by a host).
///
/// The factory runs once, for the connection the host opens on this process (OpenBao and Coffer
/// start one process per `database/config/:name`); a `Close` drops that value, and a later
/// `Initialize` gets a fresh one.
///
/// ```rust,ignore
/// fn main() {
///     let opts = coffer_plugin::DatabaseServeOptions { version: format!("v{}", env!("CARGO_PKG_VERSION")) };
///     coffer_plugin::serve_database(|| Box::new(MyDatabase::default()) as _, opts)
/// }
/// ```
pub fn serve_database<F>(factory: F, opts: DatabaseServeOptions) -> !
where
    F: Fn() -> Box<dyn Database> + Send + Sync + 'static,
{
    if std::env::var(DATABASE_MAGIC_COOKIE_KEY).ok().as_deref() != Some(DATABASE_MAGIC_COOKIE_VALUE) {
        eprintln!(
            "This binary is a database plugin for Coffer (or OpenBao/Vault). It is not meant to be run directly:\n\
             register it in the server's plugin catalog as type database and name it in a database/config \
             connection's plugin_name; the server starts it when needed."
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
    let code = match rt.block_on(run_database(Arc::new(factory), opts)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("plugin: {e}");
            1
        }
    };
    rt.shutdown_timeout(Duration::from_secs(1));
    std::process::exit(code)
}

type Factory = Arc<dyn Fn() -> Box<dyn Database> + Send + Sync>;

/// The plugin process's state: the one connection's database, made on first use.
struct DbState {
    factory: Factory,
    current: Mutex<Option<Arc<dyn Database>>>,
    version: String,
    shutdown: watch::Sender<bool>,
}

impl DbState {
    fn get_or_create(&self) -> Arc<dyn Database> {
        let mut g = self.current.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        g.get_or_insert_with(|| Arc::from((self.factory)())).clone()
    }
    fn get(&self) -> Result<Arc<dyn Database>, Status> {
        self.current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
            .ok_or_else(|| Status::failed_precondition("the database plugin has not been initialized"))
    }
}

#[derive(Clone)]
struct DbSvc(Arc<DbState>);

#[async_trait]
impl database_server::Database for DbSvc {
    async fn initialize(
        &self,
        request: Request<pb::InitializeRequest>,
    ) -> Result<Response<pb::InitializeResponse>, Status> {
        let r = request.into_inner();
        let req = InitializeRequest {
            config: r.config_data.as_ref().map(struct_to_map).unwrap_or_default(),
            verify_connection: r.verify_connection,
        };
        let db = self.0.get_or_create();
        let out = db.initialize(req).await.map_err(|e| status_from_error("failed to initialize", &e))?;
        Ok(Response::new(pb::InitializeResponse { config_data: Some(map_to_struct(&out.config)) }))
    }

    async fn new_user(&self, request: Request<pb::NewUserRequest>) -> Result<Response<pb::NewUserResponse>, Status> {
        let r = request.into_inner();
        let Some(names) = r.username_config else {
            return Err(Status::invalid_argument("missing username config"));
        };
        let credential_type = CredentialType::from_wire(r.credential_type)
            .ok_or_else(|| Status::invalid_argument(format!("unknown credential type {}", r.credential_type)))?;
        let req = NewUserRequest {
            username_config: UsernameMetadata { display_name: names.display_name, role_name: names.role_name },
            credential_type,
            password: (!r.password.is_empty()).then(|| SecretString::new(r.password)),
            public_key: (!r.public_key.is_empty()).then_some(r.public_key),
            subject: (!r.subject.is_empty()).then_some(r.subject),
            expiration: time_from_proto(r.expiration.as_ref()),
            statements: statements_from_proto(r.statements),
            rollback_statements: statements_from_proto(r.rollback_statements),
        };
        let db = self.0.get()?;
        let out = db.new_user(req).await.map_err(|e| status_from_error("unable to create new user", &e))?;
        Ok(Response::new(pb::NewUserResponse { username: out.username }))
    }

    async fn update_user(
        &self,
        request: Request<pb::UpdateUserRequest>,
    ) -> Result<Response<pb::UpdateUserResponse>, Status> {
        let r = request.into_inner();
        if r.username.is_empty() {
            return Err(Status::invalid_argument("no username provided"));
        }
        let credential_type = CredentialType::from_wire(r.credential_type)
            .ok_or_else(|| Status::invalid_argument(format!("unknown credential type {}", r.credential_type)))?;
        let password = r.password.filter(|p| !p.new_password.is_empty()).map(|p| ChangePassword {
            new_password: SecretString::new(p.new_password),
            statements: statements_from_proto(p.statements),
        });
        let public_key = r.public_key.filter(|p| !p.new_public_key.is_empty()).map(|p| ChangePublicKey {
            new_public_key: p.new_public_key,
            statements: statements_from_proto(p.statements),
        });
        let expiration = r.expiration.and_then(|e| {
            time_from_proto(e.new_expiration.as_ref())
                .map(|t| ChangeExpiration { new_expiration: t, statements: statements_from_proto(e.statements) })
        });
        if password.is_none() && public_key.is_none() && expiration.is_none() {
            return Err(Status::invalid_argument("update user request has no changes"));
        }
        let req = UpdateUserRequest { username: r.username, credential_type, password, public_key, expiration };
        let db = self.0.get()?;
        db.update_user(req).await.map_err(|e| status_from_error("unable to update user", &e))?;
        Ok(Response::new(pb::UpdateUserResponse {}))
    }

    async fn delete_user(
        &self,
        request: Request<pb::DeleteUserRequest>,
    ) -> Result<Response<pb::DeleteUserResponse>, Status> {
        let r = request.into_inner();
        if r.username.is_empty() {
            return Err(Status::invalid_argument("no username provided"));
        }
        let req = DeleteUserRequest { username: r.username, statements: statements_from_proto(r.statements) };
        let db = self.0.get()?;
        db.delete_user(req).await.map_err(|e| status_from_error("unable to delete user", &e))?;
        Ok(Response::new(pb::DeleteUserResponse {}))
    }

    async fn r#type(&self, _: Request<pb::Empty>) -> Result<Response<pb::TypeResponse>, Status> {
        Ok(Response::new(pb::TypeResponse { r#type: self.0.get_or_create().type_name() }))
    }

    async fn close(&self, _: Request<pb::Empty>) -> Result<Response<pb::Empty>, Status> {
        let db = self.0.current.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        if let Some(db) = db {
            db.close().await.map_err(|e| status_from_error("unable to close database plugin", &e))?;
        }
        Ok(Response::new(pb::Empty {}))
    }
}

#[async_trait]
impl plugin_version_server::PluginVersion for DbSvc {
    async fn version(&self, _: Request<logical::Empty>) -> Result<Response<logical::VersionReply>, Status> {
        Ok(Response::new(logical::VersionReply { plugin_version: self.0.version.clone() }))
    }
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// A stream that sends nothing and ends when the plugin shuts down.
fn quiet_stream<T: Send + 'static>(stop: &watch::Sender<bool>) -> BoxStream<T> {
    let (tx, rx) = mpsc::channel::<Result<T, Status>>(1);
    let mut stop = stop.subscribe();
    tokio::spawn(async move {
        let _ = stop.wait_for(|s| *s).await;
        drop(tx);
    });
    Box::pin(ReceiverStream::new(rx))
}

/// go-plugin hosts open the broker stream on every plugin; a database plugin has nothing to
/// dial back, so announcements are read and ignored.
#[async_trait]
impl grpc_broker_server::GrpcBroker for DbSvc {
    type StartStreamStream = BoxStream<gp::ConnInfo>;

    async fn start_stream(
        &self,
        request: Request<Streaming<gp::ConnInfo>>,
    ) -> Result<Response<Self::StartStreamStream>, Status> {
        let mut inbound = request.into_inner();
        tokio::spawn(async move { while let Ok(Some(_)) = inbound.message().await {} });
        Ok(Response::new(quiet_stream(&self.0.shutdown)))
    }
}

#[async_trait]
impl grpc_controller_server::GrpcController for DbSvc {
    async fn shutdown(&self, _: Request<gp::Empty>) -> Result<Response<gp::Empty>, Status> {
        self.0.shutdown.send_replace(true);
        Ok(Response::new(gp::Empty {}))
    }
}

#[async_trait]
impl grpc_stdio_server::GrpcStdio for DbSvc {
    type StreamStdioStream = BoxStream<gp::StdioData>;

    async fn stream_stdio(&self, _: Request<()>) -> Result<Response<Self::StreamStdioStream>, Status> {
        Ok(Response::new(quiet_stream(&self.0.shutdown)))
    }
}

async fn run_database(factory: Factory, opts: DatabaseServeOptions) -> Result<(), crate::serve::ServeError> {
    use crate::serve::ServeError;
    let host_cert = std::env::var("PLUGIN_CLIENT_CERT").ok().filter(|s| !s.trim().is_empty());
    let (server_tls, cert_field) = match host_cert {
        Some(pem) => {
            let host = tls::parse_pem_cert(&pem).map_err(ServeError::Tls)?;
            let me = tls::generate_identity().map_err(ServeError::Tls)?;
            let field = base64::engine::general_purpose::STANDARD_NO_PAD.encode(me.cert.as_ref());
            (Some(tls::server_config(&me, &host).map_err(ServeError::Tls)?), field)
        }
        None => (None, String::new()),
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
    let state =
        Arc::new(DbState { factory, current: Mutex::new(None), version: opts.version, shutdown: shutdown.clone() });
    let (health, health_svc) = tonic_health::server::health_reporter();
    health.set_service_status(HEALTH_SERVICE, tonic_health::ServingStatus::Serving).await;
    let svc = DbSvc(state.clone());
    let router = Server::builder()
        .add_service(
            DatabaseServer::new(svc.clone())
                .max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_MESSAGE),
        )
        .add_service(plugin_version_server::PluginVersionServer::new(svc.clone()))
        .add_service(grpc_broker_server::GrpcBrokerServer::new(svc.clone()))
        .add_service(grpc_controller_server::GrpcControllerServer::new(svc.clone()))
        .add_service(grpc_stdio_server::GrpcStdioServer::new(svc))
        .add_service(health_svc);
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{CORE_PROTOCOL_VERSION}|{APP_PROTOCOL_VERSION}|unix|{}|grpc|{cert_field}", sock.display())
            .and_then(|_| out.flush())
            .map_err(ServeError::Handshake)?;
    }
    crate::serve::watch_signals_and_parent(&shutdown);
    let mut stop = shutdown.subscribe();
    let mut stop2 = shutdown.subscribe();
    let served = router.serve_with_incoming_shutdown(transport::incoming(listener, server_tls), async move {
        let _ = stop.wait_for(|s| *s).await;
    });
    tokio::select! {
        r = served => r.map_err(ServeError::Grpc)?,
        _ = async move {
            let _ = stop2.wait_for(|s| *s).await;
            tokio::time::sleep(Duration::from_millis(300)).await;
        } => {}
    }
    // Close the connection if the host stopped us without `Close`, so pooled database
    // sessions end cleanly.
    let db = state.current.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
    if let Some(db) = db {
        let _ = tokio::time::timeout(Duration::from_secs(2), db.close()).await;
    }
    drop(dir);
    Ok(())
}

// ---- host side ----------------------------------------------------------------------------------

/// Starts the database plugin described by `spec` (digest check, clean environment, database
/// cookie, automatic mTLS), checks it answers `Type`, and returns it as a [`Database`] speaking
/// protocol v5. The process is stopped by [`Database::close`] (or when the value is dropped);
/// one that dies is started again on the next call, and initialized again with the last
/// configuration it was given, as OpenBao re-creates a crashed database plugin.
pub async fn launch_database(spec: LaunchSpec) -> Result<DatabasePluginClient, PluginError> {
    let (proc, type_name) = start_proc(&spec).await?;
    Ok(DatabasePluginClient {
        name: spec.name.clone(),
        spec,
        type_name,
        current: tokio::sync::RwLock::new(Arc::new(proc)),
        last_config: Mutex::new(None),
        restarts: std::sync::atomic::AtomicU64::new(0),
        closed: std::sync::atomic::AtomicBool::new(false),
    })
}

/// One running plugin process.
struct Proc {
    pid: u32,
    client: DatabaseClient<Channel>,
    channel: Channel,
    child: tokio::sync::Mutex<Option<tokio::process::Child>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Drop for Proc {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        // `kill_on_drop` ends the process if `stop` did not.
    }
}

impl Proc {
    async fn alive(&self) -> bool {
        let mut g = self.child.lock().await;
        g.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Stops the process: the controller's `Shutdown`, then SIGKILL after a grace period.
    async fn stop(&self) {
        let mut g = self.child.lock().await;
        let Some(mut child) = g.take() else { return };
        if matches!(child.try_wait(), Ok(None)) {
            let mut ctl = grpc_controller_client::GrpcControllerClient::new(self.channel.clone());
            let _ = tokio::time::timeout(EXIT_GRACE, ctl.shutdown(gp::Empty {})).await;
        }
        if tokio::time::timeout(EXIT_GRACE, child.wait()).await.is_err() {
            let _ = child.start_kill();
            let _ = tokio::time::timeout(EXIT_GRACE, child.wait()).await;
        }
    }
}

async fn start_proc(spec: &LaunchSpec) -> Result<(Proc, String), PluginError> {
    let sp = spawn_and_handshake(spec, (DATABASE_MAGIC_COOKIE_KEY, DATABASE_MAGIC_COOKIE_VALUE)).await?;
    match connect_database(spec, &sp).await {
        Ok((channel, type_name)) => {
            let Spawned { child, pid, dir, tasks, .. } = sp;
            tracing::debug!(plugin = %spec.name, pid, %type_name, "database plugin started");
            let proc = Proc {
                pid,
                client: DatabaseClient::new(channel.clone())
                    .max_decoding_message_size(MAX_MESSAGE)
                    .max_encoding_message_size(MAX_MESSAGE),
                channel,
                child: tokio::sync::Mutex::new(Some(child)),
                tasks,
                _dir: dir,
            };
            Ok((proc, type_name))
        }
        Err(source) => {
            let stderr = sp.stderr_tail();
            sp.abandon().await;
            Err(PluginError::Connect { path: spec.command.display().to_string(), source, stderr })
        }
    }
}

async fn connect_database(spec: &LaunchSpec, sp: &Spawned) -> Result<(Channel, String), ConnectError> {
    let client_tls =
        tls::client_config(&sp.identity, &sp.handshake.cert).map_err(|e| ConnectError::Tls(Box::new(e)))?;
    let ch = tokio::time::timeout(HOST_RPC, transport::channel(sp.handshake.addr.clone(), Some(client_tls)))
        .await
        // drop-cause: an elapsed timeout says nothing more than the message does.
        .map_err(|_| ConnectError::Timeout)?
        .map_err(|source| ConnectError::Channel { address: format!("{:?}", sp.handshake.addr), source })?;
    let mut health = tonic_health::pb::health_client::HealthClient::new(ch.clone());
    let check = tonic_health::pb::HealthCheckRequest { service: HEALTH_SERVICE.to_string() };
    match tokio::time::timeout(HOST_RPC, health.check(check)).await {
        Err(_) => return Err(ConnectError::HealthTimeout),
        Ok(Err(s)) if s.code() == tonic::Code::Unavailable => return Err(ConnectError::Unreachable(s)),
        Ok(Err(s)) => tracing::debug!(plugin = %spec.name, "health check not answered: {s}"),
        Ok(Ok(_)) => {}
    }
    let mut db = DatabaseClient::new(ch.clone());
    let t = match tokio::time::timeout(HOST_RPC, db.r#type(pb::Empty {})).await {
        Err(_) => return Err(ConnectError::RpcTimeout { rpc: "Type" }),
        Ok(Err(source)) => return Err(ConnectError::Rpc { rpc: "Type", source }),
        Ok(Ok(r)) => r.into_inner().r#type,
    };
    Ok((ch, t))
}

/// A database plugin process, as a [`Database`] (see [`launch_database`]).
pub struct DatabasePluginClient {
    name: String,
    spec: LaunchSpec,
    type_name: String,
    current: tokio::sync::RwLock<Arc<Proc>>,
    /// The configuration of the last successful `Initialize`, to initialize a restarted process.
    last_config: Mutex<Option<Map<String, Value>>>,
    restarts: std::sync::atomic::AtomicU64,
    closed: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for DatabasePluginClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabasePluginClient").field("name", &self.name).finish_non_exhaustive()
    }
}

impl DatabasePluginClient {
    /// The running plugin process's id.
    pub async fn pid(&self) -> u32 {
        self.current.read().await.pid
    }

    /// How many times the process was started again after it died.
    pub fn restarts(&self) -> u64 {
        self.restarts.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The version the plugin reports (`PluginVersion`; empty when it reports none).
    pub async fn version(&self) -> Result<String, LogicalError> {
        let ch = self.current.read().await.channel.clone();
        let mut c = PluginVersionClient::new(ch);
        match tokio::time::timeout(HOST_RPC, c.version(logical::Empty {})).await {
            Err(_) => Err(LogicalError::new(ErrorKind::Unavailable, "the plugin's Version call timed out")),
            Ok(Err(s)) if s.code() == tonic::Code::Unimplemented => Ok(String::new()),
            Ok(Err(s)) => Err(error_from_status(&s)),
            Ok(Ok(r)) => Ok(r.into_inner().plugin_version),
        }
    }

    /// Whether the process is running.
    pub async fn alive(&self) -> bool {
        let p = self.current.read().await.clone();
        p.alive().await
    }

    /// Starts a new process in place of `dead` (unless another call already did) and
    /// initializes it with the last configuration.
    async fn restart(&self, dead: &Arc<Proc>) -> Result<Arc<Proc>, LogicalError> {
        let mut g = self.current.write().await;
        if self.closed.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(LogicalError::new(ErrorKind::Unavailable, "the database plugin has been closed"));
        }
        if !Arc::ptr_eq(&g, dead) {
            return Ok(g.clone());
        }
        let (proc, _) = start_proc(&self.spec).await.map_err(LogicalError::from)?;
        let config = self.last_config.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        if let Some(config) = config {
            let msg = pb::InitializeRequest { config_data: Some(map_to_struct(&config)), verify_connection: false };
            proc.client.clone().initialize(msg).await.map_err(|s| error_from_status(&s))?;
        }
        self.restarts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::warn!(plugin = %self.name, pid = proc.pid, "database plugin process had exited; started a new one");
        let proc = Arc::new(proc);
        let old = std::mem::replace(&mut *g, proc.clone());
        old.stop().await;
        Ok(proc)
    }

    /// Runs `f` on the plugin; when the call fails because the process has died, starts it
    /// again and retries once.
    async fn call<T, F, Fut>(&self, f: F) -> Result<T, LogicalError>
    where
        F: Fn(DatabaseClient<Channel>) -> Fut,
        Fut: std::future::Future<Output = Result<T, Status>>,
    {
        if self.closed.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(LogicalError::new(ErrorKind::Unavailable, "the database plugin has been closed"));
        }
        let proc = self.current.read().await.clone();
        let proc = if proc.alive().await { proc } else { self.restart(&proc).await? };
        match f(proc.client.clone()).await {
            Ok(t) => Ok(t),
            Err(s) => {
                // A killed process closes its sockets a moment before it can be reaped: after a
                // transport failure, give it that moment before deciding it is still alive. (A
                // status the plugin itself answered carries no local cause: no wait for those.)
                if std::error::Error::source(&s).is_some() {
                    for _ in 0..40 {
                        if !proc.alive().await {
                            break;
                        }
                        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
                    }
                }
                if proc.alive().await {
                    return Err(error_from_status(&s));
                }
                tracing::debug!(plugin = %self.name, "database plugin call failed with the process gone: {s}");
                let fresh = self.restart(&proc).await?;
                f(fresh.client.clone()).await.map_err(|s| error_from_status(&s))
            }
        }
    }
}

#[async_trait]
impl Database for DatabasePluginClient {
    fn type_name(&self) -> String {
        self.type_name.clone()
    }

    async fn initialize(&self, req: InitializeRequest) -> coffer_sdk::Result<InitializeResponse> {
        let msg = pb::InitializeRequest {
            config_data: Some(map_to_struct(&req.config)),
            verify_connection: req.verify_connection,
        };
        let r = self
            .call(|mut c| {
                let m = msg.clone();
                async move { c.initialize(m).await.map(tonic::Response::into_inner) }
            })
            .await?;
        *self.last_config.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(req.config);
        Ok(InitializeResponse { config: r.config_data.as_ref().map(struct_to_map).unwrap_or_default() })
    }

    async fn new_user(&self, req: NewUserRequest) -> coffer_sdk::Result<NewUserResponse> {
        match req.credential_type {
            CredentialType::Password if req.password.is_none() => {
                return Err(LogicalError::internal("missing password credential"))
            }
            CredentialType::RsaPrivateKey if req.public_key.is_none() => {
                return Err(LogicalError::internal("missing public key credential"))
            }
            CredentialType::ClientCertificate if req.subject.is_none() => {
                return Err(LogicalError::internal("missing certificate subject"))
            }
            _ => {}
        }
        let msg = pb::NewUserRequest {
            username_config: Some(pb::UsernameConfig {
                display_name: req.username_config.display_name,
                role_name: req.username_config.role_name,
            }),
            password: req.password.map(|p| p.expose().to_string()).unwrap_or_default(),
            expiration: req.expiration.map(time_to_proto),
            statements: statements_to_proto(&req.statements),
            rollback_statements: statements_to_proto(&req.rollback_statements),
            credential_type: req.credential_type.wire(),
            public_key: req.public_key.unwrap_or_default(),
            subject: req.subject.unwrap_or_default(),
        };
        let r = self
            .call(|mut c| {
                let m = msg.clone();
                async move { c.new_user(m).await.map(tonic::Response::into_inner) }
            })
            .await?;
        Ok(NewUserResponse { username: r.username })
    }

    async fn update_user(&self, req: UpdateUserRequest) -> coffer_sdk::Result<()> {
        if req.username.is_empty() {
            return Err(LogicalError::internal("missing username"));
        }
        let msg = pb::UpdateUserRequest {
            username: req.username,
            password: req.password.map(|p| pb::ChangePassword {
                new_password: p.new_password.expose().to_string(),
                statements: statements_to_proto(&p.statements),
            }),
            expiration: req.expiration.map(|e| pb::ChangeExpiration {
                new_expiration: Some(time_to_proto(e.new_expiration)),
                statements: statements_to_proto(&e.statements),
            }),
            public_key: req.public_key.map(|p| pb::ChangePublicKey {
                new_public_key: p.new_public_key,
                statements: statements_to_proto(&p.statements),
            }),
            credential_type: req.credential_type.wire(),
        };
        self.call(|mut c| {
            let m = msg.clone();
            async move { c.update_user(m).await.map(|_| ()) }
        })
        .await
    }

    async fn delete_user(&self, req: DeleteUserRequest) -> coffer_sdk::Result<()> {
        if req.username.is_empty() {
            return Err(LogicalError::internal("missing username"));
        }
        let msg = pb::DeleteUserRequest { username: req.username, statements: statements_to_proto(&req.statements) };
        self.call(|mut c| {
            let m = msg.clone();
            async move { c.delete_user(m).await.map(|_| ()) }
        })
        .await
    }

    /// Closes the plugin's connection and stops its process; later calls are refused.
    async fn close(&self) -> coffer_sdk::Result<()> {
        self.closed.store(true, std::sync::atomic::Ordering::SeqCst);
        let proc = self.current.read().await.clone();
        let closed = if proc.alive().await {
            match tokio::time::timeout(HOST_RPC, proc.client.clone().close(pb::Empty {})).await {
                Err(_) => Err(LogicalError::new(ErrorKind::Unavailable, "the plugin's Close call timed out")),
                Ok(Err(s)) => Err(error_from_status(&s)),
                Ok(Ok(_)) => Ok(()),
            }
        } else {
            Ok(())
        };
        proc.stop().await;
        closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn configuration_round_trips_through_a_protobuf_struct_with_whole_numbers_kept_whole() {
        let cfg = json!({
            "connection_url": "postgres://{{username}}:{{password}}@localhost/db",
            "max_open_connections": 4,
            "ratio": 0.5,
            "verify": true,
            "allowed_roles": ["a", "b"],
            "nested": {"x": null},
        });
        let m = cfg.as_object().unwrap().clone();
        assert_eq!(Value::Object(struct_to_map(&map_to_struct(&m))), cfg);
    }

    #[test]
    fn a_go_zero_time_or_a_missing_timestamp_is_no_expiry() {
        let go_zero = prost_types::Timestamp { seconds: -62_135_596_800, nanos: 0 };
        assert_eq!(time_from_proto(Some(&go_zero)), None);
        assert_eq!(time_from_proto(None), None);
        let t = UNIX_EPOCH + Duration::from_secs(1_900_000_000);
        assert_eq!(time_from_proto(Some(&time_to_proto(t))), Some(t));
    }

    #[test]
    fn plugin_errors_keep_their_kind_across_the_wire() {
        let bad = status_from_error("unable to create new user", &LogicalError::bad_request("no such role"));
        assert_eq!(bad.code(), tonic::Code::InvalidArgument);
        let back = error_from_status(&bad);
        assert_eq!(back.kind, ErrorKind::BadRequest);
        assert!(back.to_string().contains("no such role"));
        assert_eq!(error_from_status(&Status::internal("boom")).kind, ErrorKind::Internal);
    }
}
