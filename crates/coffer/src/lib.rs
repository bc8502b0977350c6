//! How `coffer server` assembles a server from its configuration, as a library: the binary and
//! the in-process test harness (`coffer-testing`) build the core, its seals, its plugin launcher
//! and each listener's request options through these same functions, so a test drives what the
//! server runs.
#![forbid(unsafe_code)]

pub mod assemble;
pub mod declared_plugins;
pub mod error;
pub mod seals;
pub mod snapshot_s3;
