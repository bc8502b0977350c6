//! The server's log, as the system backend exposes it: `sys/loggers` (each logger's level,
//! changed at run time) and `sys/monitor` (the log streamed to a client). The core only
//! defines the contract; the `coffer` binary, which owns the log subscriber, implements it
//! and injects it with [`crate::Core::set_log_control`].

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Why a log control request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LogControlError {
    #[error("invalid level provided: unknown log level: {0}")]
    UnknownLevel(String),
    #[error("logger {0:?} not found")]
    UnknownLogger(String),
    #[error("unknown log format {0:?}: \"standard\" or \"json\"")]
    UnknownFormat(String),
}

/// Lines of the log for one `sys/monitor` client, each ending in a newline. Dropping it ends
/// the subscription.
#[derive(Clone, Default)]
pub struct LogStream(pub Arc<Mutex<Option<tokio::sync::mpsc::Receiver<String>>>>);

impl LogStream {
    pub fn new(rx: tokio::sync::mpsc::Receiver<String>) -> Self {
        LogStream(Arc::new(Mutex::new(Some(rx))))
    }

    /// The receiver, once.
    pub fn take(&self) -> Option<tokio::sync::mpsc::Receiver<String>> {
        self.0.lock().ok()?.take()
    }
}

impl std::fmt::Debug for LogStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LogStream")
    }
}

/// What the system backend may do with the server's log.
pub trait LogControl: Send + Sync {
    /// Every logger and its current level (`trace`, `debug`, `info`, `warn`, `error`).
    fn levels(&self) -> BTreeMap<String, String>;
    /// Sets one logger's level, or every logger's (`None`).
    fn set_level(&self, logger: Option<&str>, level: &str) -> Result<(), LogControlError>;
    /// Returns one logger, or every logger, to the level the server was started with.
    fn reset(&self, logger: Option<&str>) -> Result<(), LogControlError>;
    /// Streams log lines at `level` or above, as text (`standard`) or JSON.
    fn subscribe(&self, level: &str, format: &str) -> Result<LogStream, LogControlError>;
}
