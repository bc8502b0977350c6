#![forbid(unsafe_code)]
//! The passphrase engine served the plain way: one backend, so the host starts one process
//! per mount. (The default binary multiplexes; this one shows and tests the other mode.)

use coffer_plugin::{BackendKind, ServeOptions};
use coffer_sdk::framework;
use std::sync::Arc;

fn main() {
    let opts = ServeOptions { version: format!("v{}", env!("CARGO_PKG_VERSION")), kind: BackendKind::Secret };
    let backend = framework::Backend::new(coffer_plugin_example::Passphrase::new());
    coffer_plugin::serve_with(Arc::new(backend), opts)
}
