#![forbid(unsafe_code)]
//! The cert auth method as an external plugin binary: register it in a server's plugin catalog
//! (`bao plugin register -sha256=… -command=coffer-plugin-cert auth cert-ext`) and enable it
//! (`bao auth enable -path=cert cert-ext`).
//!
//! The method reads the client's TLS certificates at login and consents to (or refuses) each
//! renewal of its tokens, so running it out of process shows that both cross the plugin
//! protocol: the certificates in the request's connection state, the renewal as a `renew`
//! operation carrying the token's auth.

use coffer_plugin::{BackendKind, ServeOptions};
use coffer_sdk::framework;
use std::sync::Arc;

fn main() {
    let opts = ServeOptions { version: format!("v{}", env!("CARGO_PKG_VERSION")), kind: BackendKind::Auth };
    coffer_plugin::serve_with(Arc::new(framework::Backend::new(coffer_builtin_cert::Cert::new())), opts)
}
