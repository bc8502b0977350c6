#![forbid(unsafe_code)]
#![warn(missing_docs)]
//! Both sides of Vault's and OpenBao's external backend-plugin protocol: HashiCorp go-plugin,
//! core protocol 1, application protocol 5, gRPC over a unix socket with automatic mutual TLS.
//!
//! * **Plugin side** — [`serve`] turns any [`coffer_sdk::Backend`] into a plugin binary that
//!   OpenBao, Vault or Coffer can register and mount: it checks the magic cookie, answers the
//!   handshake, serves the `Backend`, `PluginVersion`, broker, controller, stdio and health
//!   services, and reaches the host's `Storage` and `SystemView` back through the broker.
//! * **Host side** — [`launch`] / [`PluginClient`] start a plugin binary (any language, Go
//!   plugins built on OpenBao's or Vault's SDK included) with a clean environment, pin its
//!   certificate, serve it the mount's storage through the broker, and expose it as a
//!   [`coffer_sdk::Backend`]. A plugin process that dies is restarted on the next request.
//!
//! The wire definitions are Coffer's own `.proto` files (`proto/`), compiled at build time with
//! the pure-Rust `protox` compiler.
//!
//! A plugin binary serves one [`coffer_sdk::Backend`] — usually a path table wrapped in
//! [`coffer_sdk::framework::Backend`] — from its `main`:
//!
//! ```no_run
//! use coffer_plugin::{BackendKind, ServeOptions};
//! use coffer_sdk::framework::{self, FieldData, Handler, PathSpec, Paths};
//! use coffer_sdk::{Operation, Request, Response, Result};
//! use std::sync::Arc;
//!
//! #[derive(Clone, Copy)]
//! enum Route {
//!     Ping,
//! }
//!
//! struct Pinger(Paths<Route>);
//!
//! #[async_trait::async_trait]
//! impl Handler for Pinger {
//!     type Route = Route;
//!     fn backend_type(&self) -> &'static str {
//!         "pinger"
//!     }
//!     fn paths(&self) -> &Paths<Route> {
//!         &self.0
//!     }
//!     async fn handle(&self, _: Route, _: Request, _: FieldData) -> Result<Option<Response>> {
//!         Ok(Some(Response::data(serde_json::json!({ "pong": true }).as_object().cloned().unwrap())))
//!     }
//! }
//!
//! fn main() {
//!     let ping = PathSpec {
//!         pattern: "ping",
//!         operations: vec![(Operation::Read, "Answer with pong")],
//!         synopsis: "Liveness",
//!         description: "Answers with pong.",
//!         ..Default::default()
//!     };
//!     let backend = framework::Backend::new(Pinger(Paths::new(vec![(Route::Ping, ping)])));
//!     // The version must equal the one the binary is registered under in the catalog.
//!     let opts = ServeOptions { version: format!("v{}", env!("CARGO_PKG_VERSION")), kind: BackendKind::Secret };
//!     coffer_plugin::serve_with(Arc::new(backend), opts)
//! }
//! ```
//!
//! A plugin writes nothing to stdout but the handshake line; logs go to stderr, which the host
//! reads line by line. Started by hand (without the host's magic cookie) it says what it is
//! and exits.
//!
//! A host starts a binary, pinned by its SHA-256, and uses it as any other backend:
//!
//! ```no_run
//! # async fn host(path: &std::path::Path, sha256_hex: &str, request: coffer_sdk::Request)
//! #     -> Result<(), Box<dyn std::error::Error>> {
//! let backend = coffer_plugin::launch(path, &[], &[("SETTING".into(), "x".into())], sha256_hex).await?;
//! // The request's storage view is what the plugin reads and writes, through the broker.
//! let answer = backend.handle_request(request).await?;
//! # let _ = answer; Ok(()) }
//! ```
//!
//! Multiplexed plugins (one process for several mounts, as OpenBao negotiates it with the
//! `PluginMultiplexing` service and the `multiplex_id` call metadata) are supported on both
//! sides: [`serve_multiplexed`] makes a backend per mount, and [`launch_shared`] gives a new
//! mount the running process of a plugin that multiplexes (see the `mux` module).
//!
//! Not supported: go-plugin's multiplexed broker connections (`PLUGIN_MULTIPLEX_GRPC`, a
//! transport detail unrelated to mount multiplexing), net/rpc plugins (protocol 4 and older),
//! `PLUGIN_UNIX_SOCKET_GROUP`, and response wrapping or identity lookups requested by plugins
//! (answered as unavailable / unknown).

mod convert;
mod database;
mod host;
mod mux;
mod serve;
mod tls;
mod transport;

pub use database::{
    launch_database, serve_database, DatabasePluginClient, DatabaseServeOptions, DATABASE_MAGIC_COOKIE_KEY,
    DATABASE_MAGIC_COOKIE_VALUE,
};
pub use host::{launch, sha256_hex as sha256_file, LaunchSpec, PluginClient};
pub use mux::{launch_shared, OPT_OUT_VARS as MULTIPLEXING_OPT_OUT_VARS};
pub use serve::{serve, serve_multiplexed, serve_with, BackendFactory, BackendKind, MountConfig, ServeOptions};

/// The generated protocol messages, clients and servers.
#[allow(clippy::all, clippy::pedantic, missing_docs, unreachable_pub)]
pub mod proto {
    /// `pb`: the backend, storage and system-view services.
    pub mod pb {
        include!(concat!(env!("OUT_DIR"), "/pb.rs"));
    }
    /// `logical`: identity objects and the plugin version service.
    pub mod logical {
        include!(concat!(env!("OUT_DIR"), "/logical.rs"));
    }
    /// `plugin`: go-plugin's broker, controller and stdio services.
    pub mod plugin {
        include!(concat!(env!("OUT_DIR"), "/plugin.rs"));
    }
    /// `dbplugin.v5`: the database plugin service (protocol version 5).
    pub mod dbplugin {
        include!(concat!(env!("OUT_DIR"), "/dbplugin.v5.rs"));
    }
    /// `pluginutil.multiplexing`: whether one plugin process may serve several mounts.
    pub mod multiplexing {
        include!(concat!(env!("OUT_DIR"), "/pluginutil.multiplexing.rs"));
    }
}

/// The environment variable a backend plugin must find, with [`MAGIC_COOKIE_VALUE`].
pub const MAGIC_COOKIE_KEY: &str = "VAULT_BACKEND_PLUGIN";
/// The value of [`MAGIC_COOKIE_KEY`] (a usability check, not a security measure).
pub const MAGIC_COOKIE_VALUE: &str = "6669da05-b1c8-4f49-97d9-c8e5bed98e20";
/// go-plugin's core protocol version (first field of the handshake line).
pub const CORE_PROTOCOL_VERSION: u32 = 1;
/// The backend-plugin application protocol version spoken here (second field).
pub const APP_PROTOCOL_VERSION: u32 = 5;
/// The gRPC health service name go-plugin hosts check.
pub const HEALTH_SERVICE: &str = "plugin";

/// Errors of the host side: starting, handshaking with and talking to a plugin process.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PluginError {
    /// The binary's SHA-256 is not the expected one, or the binary cannot be read.
    #[error("plugin binary {path}: {message}")]
    Binary {
        /// The binary's path.
        path: String,
        /// What is wrong with it.
        message: String,
    },
    /// The process could not be started.
    #[error("cannot start plugin {path}: {source}")]
    Spawn {
        /// The plugin's name or path.
        path: String,
        #[source]
        /// Why it could not be started.
        source: std::io::Error,
    },
    /// The process did not complete go-plugin's handshake. `stderr` is the tail of what it
    /// printed (empty or starting with "; stderr: ").
    #[error("plugin {path} failed the handshake: {source}{stderr}")]
    Handshake {
        /// The plugin's name or path.
        path: String,
        #[source]
        /// What was wrong with the handshake.
        source: HandshakeError,
        /// The tail of the plugin's stderr.
        stderr: String,
    },
    /// The handshake succeeded but the gRPC connection or setup failed.
    #[error("plugin {path}: {source}{stderr}")]
    Connect {
        /// The plugin's name or path.
        path: String,
        #[source]
        /// What failed.
        source: ConnectError,
        /// The tail of the plugin's stderr.
        stderr: String,
    },
    /// TLS material could not be created or parsed.
    #[error("plugin TLS: {0}")]
    Tls(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The client was shut down.
    #[error("the plugin has been stopped")]
    Stopped,
}

/// What was wrong with the plugin's handshake line (or with waiting for it).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    #[error("no stdout pipe")]
    /// The process was started without a stdout pipe.
    NoStdout,
    #[error("the plugin exited before completing the handshake (closed its stdout{status})")]
    /// The process closed its stdout before the handshake line.
    Exited {
        /// `, status …` when the exit status is known, else empty.
        status: String,
    },
    #[error("cannot read the plugin's stdout: {0}")]
    /// Reading the plugin's stdout failed.
    Read(#[source] std::io::Error),
    #[error("no handshake line within {0:?}")]
    /// No handshake line within the handshake timeout.
    Timeout(std::time::Duration),
    #[error(
        "unexpected output instead of the handshake line: {0:?} (expected CORE|APP|NETWORK|ADDRESS|PROTOCOL|CERT)"
    )]
    /// The first line is not a handshake line.
    Unexpected(String),
    #[error("unsupported go-plugin core protocol version {0:?} (expected 1)")]
    /// The core protocol version is not 1.
    CoreProtocol(String),
    #[error(
        "the plugin speaks protocol version {0:?}; Coffer speaks version {version} \
         (is it a backend plugin built for a recent OpenBao/Vault SDK?)",
        version = APP_PROTOCOL_VERSION
    )]
    /// The application protocol version is not 5.
    AppProtocol(String),
    #[error("unknown network type {0:?}")]
    /// The network is neither `unix` nor `tcp`.
    Network(String),
    #[error("the plugin speaks {0:?}; only gRPC plugins are supported")]
    /// The plugin speaks net/rpc, not gRPC.
    NotGrpc(String),
    #[error("the plugin returned no certificate: it does not support automatic mTLS")]
    /// The handshake carries no certificate (no automatic mTLS).
    NoCertificate,
    #[error("the plugin's certificate in the handshake is not base64")]
    /// The handshake's certificate is not base64.
    CertificateEncoding(#[source] base64::DecodeError),
}

/// What failed after the handshake: connecting, the health check, the broker, `Setup`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    #[error("{0}")]
    /// The TLS configuration for the connection could not be made.
    Tls(#[source] Box<PluginError>),
    #[error("connecting to the plugin timed out")]
    /// Connecting took too long.
    Timeout,
    #[error("cannot connect to the plugin at {address}: {source}")]
    /// The gRPC channel could not be opened.
    Channel {
        /// Where the plugin listens.
        address: String,
        #[source]
        /// Why the channel failed.
        source: tonic::transport::Error,
    },
    #[error("the plugin's health check timed out")]
    /// The health check did not answer in time.
    HealthTimeout,
    #[error("the plugin is unreachable: {0}")]
    /// The health check failed.
    Unreachable(#[source] tonic::Status),
    #[error("cannot listen for the broker: {0}")]
    /// The host could not listen for the broker's connections.
    BrokerListen(#[source] std::io::Error),
    #[error("the broker stream closed")]
    /// The plugin closed the broker stream.
    BrokerClosed,
    #[error("{rpc} timed out")]
    /// An RPC during setup did not answer in time.
    RpcTimeout {
        /// The RPC's name.
        rpc: &'static str,
    },
    #[error("{rpc} failed: {}", .source.message())]
    /// An RPC during setup failed.
    Rpc {
        /// The RPC's name.
        rpc: &'static str,
        #[source]
        /// The gRPC status it failed with.
        source: tonic::Status,
    },
    /// The plugin answered `Setup` with an error of its own.
    #[error("Setup failed: {0}")]
    Setup(String),
    #[error("SpecialPaths: {0}")]
    /// The plugin's `SpecialPaths` answer failed.
    SpecialPaths(#[source] tonic::Status),
}

impl From<PluginError> for coffer_sdk::LogicalError {
    fn from(e: PluginError) -> Self {
        coffer_sdk::LogicalError::new(coffer_sdk::ErrorKind::Unavailable, e.to_string())
    }
}
