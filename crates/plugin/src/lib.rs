#![forbid(unsafe_code)]
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
//! A plugin binary:
//!
//! ```rust,ignore
//! fn main() {
//!     let opts = coffer_plugin::ServeOptions { version: "v0.1.0".into(), ..Default::default() };
//!     coffer_plugin::serve_with(std::sync::Arc::new(MyBackend::new()), opts)
//! }
//! ```
//!
//! A plugin writes nothing to stdout but the handshake line; logs go to stderr, which the host
//! reads line by line.
//!
//! A host:
//!
//! ```rust,ignore
//! let backend = coffer_plugin::launch(&path, &[], &[("SETTING".into(), "x".into())], &sha256_hex).await?;
//! backend.handle_request(request).await?; // the request's storage view is what the plugin sees
//! ```
//!
//! Not supported: the multiplexed broker (`PLUGIN_MULTIPLEX_GRPC`, one process for several
//! mounts), net/rpc plugins (protocol 4 and older), `PLUGIN_UNIX_SOCKET_GROUP`, and response
//! wrapping or identity lookups requested by plugins (answered as unavailable / unknown).

mod convert;
mod host;
mod serve;
mod tls;
mod transport;

pub use host::{launch, sha256_hex as sha256_file, LaunchSpec, PluginClient};
pub use serve::{serve, serve_with, BackendKind, ServeOptions};

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
    Binary { path: String, message: String },
    /// The process could not be started.
    #[error("cannot start plugin {path}: {source}")]
    Spawn {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The process did not complete go-plugin's handshake. `stderr` is the tail of what it
    /// printed (empty or starting with "; stderr: ").
    #[error("plugin {path} failed the handshake: {source}{stderr}")]
    Handshake {
        path: String,
        #[source]
        source: HandshakeError,
        stderr: String,
    },
    /// The handshake succeeded but the gRPC connection or setup failed.
    #[error("plugin {path}: {source}{stderr}")]
    Connect {
        path: String,
        #[source]
        source: ConnectError,
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
    NoStdout,
    #[error("the plugin exited before completing the handshake (closed its stdout{status})")]
    Exited { status: String },
    #[error("cannot read the plugin's stdout: {0}")]
    Read(#[source] std::io::Error),
    #[error("no handshake line within {0:?}")]
    Timeout(std::time::Duration),
    #[error(
        "unexpected output instead of the handshake line: {0:?} (expected CORE|APP|NETWORK|ADDRESS|PROTOCOL|CERT)"
    )]
    Unexpected(String),
    #[error("unsupported go-plugin core protocol version {0:?} (expected 1)")]
    CoreProtocol(String),
    #[error(
        "the plugin speaks protocol version {0:?}; Coffer speaks version {version} \
         (is it a backend plugin built for a recent OpenBao/Vault SDK?)",
        version = APP_PROTOCOL_VERSION
    )]
    AppProtocol(String),
    #[error("unknown network type {0:?}")]
    Network(String),
    #[error("the plugin speaks {0:?}; only gRPC plugins are supported")]
    NotGrpc(String),
    #[error("the plugin returned no certificate: it does not support automatic mTLS")]
    NoCertificate,
    #[error("the plugin's certificate in the handshake is not base64")]
    CertificateEncoding(#[source] base64::DecodeError),
}

/// What failed after the handshake: connecting, the health check, the broker, `Setup`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    #[error("{0}")]
    Tls(#[source] Box<PluginError>),
    #[error("connecting to the plugin timed out")]
    Timeout,
    #[error("cannot connect to the plugin at {address}: {source}")]
    Channel {
        address: String,
        #[source]
        source: tonic::transport::Error,
    },
    #[error("the plugin's health check timed out")]
    HealthTimeout,
    #[error("the plugin is unreachable: {0}")]
    Unreachable(#[source] tonic::Status),
    #[error("cannot listen for the broker: {0}")]
    BrokerListen(#[source] std::io::Error),
    #[error("the broker stream closed")]
    BrokerClosed,
    #[error("{rpc} timed out")]
    RpcTimeout { rpc: &'static str },
    #[error("{rpc} failed: {}", .source.message())]
    Rpc {
        rpc: &'static str,
        #[source]
        source: tonic::Status,
    },
    /// The plugin answered `Setup` with an error of its own.
    #[error("Setup failed: {0}")]
    Setup(String),
    #[error("SpecialPaths: {0}")]
    SpecialPaths(#[source] tonic::Status),
}

impl From<PluginError> for coffer_sdk::LogicalError {
    fn from(e: PluginError) -> Self {
        coffer_sdk::LogicalError::new(coffer_sdk::ErrorKind::Unavailable, e.to_string())
    }
}
