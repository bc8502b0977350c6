#![forbid(unsafe_code)]
//! The passphrase engine as a plugin binary: register it in a server's plugin catalog
//! (`bao plugin register -sha256=… -version=v0.1.0 secret <name>`) and mount it.

use coffer_plugin::{BackendKind, ServeOptions};
use coffer_sdk::framework;
use std::sync::Arc;

fn main() {
    let opts = ServeOptions { version: format!("v{}", env!("CARGO_PKG_VERSION")), kind: BackendKind::Secret };
    let backend = framework::Backend::new(coffer_plugin_example::Passphrase::new());
    coffer_plugin::serve_with(Arc::new(backend), opts)
}
