//! Why the server (or `operator migrate`) could not start: each cause kept, printed once by
//! the command that failed.

use coffer_physical::StorageError;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    #[error(transparent)]
    Postgres(#[from] coffer_storage_postgresql::PgError),
    /// A declared plugin (`plugin "type" "name" { … }`) that cannot be installed or trusted;
    /// the message names the stanza and what did not match.
    #[error("{0}")]
    Plugin(String),
    #[error("storage {0:?} does not support ha_enabled")]
    NoHa(String),
    #[error("storage \"file\" needs a path")]
    FilePath,
    #[error("cannot open storage \"file\" at {path:?}: {source}")]
    File {
        path: String,
        #[source]
        source: StorageError,
    },
    #[error("unknown storage type {0:?}")]
    UnknownStorage(String),
    #[error(transparent)]
    Seal(#[from] coffer_seal::SealError),
    #[error("unknown seal type {0:?}")]
    UnknownSeal(String),
    #[error(transparent)]
    TooManySeals(#[from] coffer_config::TooManySeals),
    #[error("listener custom_response_headers: {name:?} is not a header name")]
    HeaderName {
        name: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("listener custom_response_headers: the value of {name:?} is not a header value")]
    HeaderValue {
        name: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("cannot open log_file {path:?}: {source}")]
    LogFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    LogLevel(#[source] coffer_core::logging::LogControlError),
    #[error("log level: {0}")]
    LogFilter(#[source] tracing_subscriber::filter::ParseError),
    #[error("cannot install the log: {0}")]
    LogInstall(#[source] tracing_subscriber::util::TryInitError),
    #[error(transparent)]
    Logical(#[from] coffer_sdk::LogicalError),
    #[error("seal configuration: {0}")]
    SealConfiguration(#[source] Box<StartError>),
    #[error("dev initialisation failed: {0}")]
    DevInit(#[source] coffer_sdk::LogicalError),
    #[error("dev setup failed: {0}")]
    DevSetup(#[source] Box<StartError>),
}

/// Why `operator migrate` stopped. `side` is "source" or "destination".
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MigrateError {
    #[error("{side}: listing {prefix:?}: {source}")]
    List {
        side: &'static str,
        prefix: String,
        #[source]
        source: StorageError,
    },
    #[error("{side}: reading {key:?}: {source}")]
    Read {
        side: &'static str,
        key: String,
        #[source]
        source: StorageError,
    },
    #[error("destination: writing {key:?}: {source}")]
    Write {
        key: String,
        #[source]
        source: StorageError,
    },
    #[error("destination: reading {key:?} back: {source}")]
    ReadBack {
        key: String,
        #[source]
        source: StorageError,
    },
    #[error("destination: {0:?} reads back different bytes")]
    Mismatch(String),
    #[error(
        "the destination already holds an initialised Coffer (core/seal-config is present); \
         refusing to overwrite it (pass -force to copy anyway)"
    )]
    Initialised,
    #[error("a copy task failed: {0}")]
    Task(#[source] tokio::task::JoinError),
    #[error("the copy was stopped: {0}")]
    Closed(#[source] tokio::sync::AcquireError),
}
