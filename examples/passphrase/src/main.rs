#![forbid(unsafe_code)]
//! The passphrase engine as a plugin binary: register it in a server's plugin catalog
//! (`bao plugin register -sha256=… -version=v0.1.0 secret <name>`) and mount it.
//!
//! It is a multiplexed plugin: one process serves every mount of it, with a backend per mount
//! (made by the factory below at the mount's `Setup`), each reaching only its own storage.

use coffer_plugin::{BackendKind, ServeOptions};
use coffer_sdk::framework;
use std::sync::Arc;

fn main() {
    let opts = ServeOptions { version: format!("v{}", env!("CARGO_PKG_VERSION")), kind: BackendKind::Secret };
    coffer_plugin::serve_multiplexed(
        |_mount| Ok(Arc::new(framework::Backend::new(coffer_plugin_example::Passphrase::new())) as _),
        opts,
    )
}
