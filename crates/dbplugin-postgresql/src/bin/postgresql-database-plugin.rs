//! The built-in PostgreSQL database plugin as an external plugin binary: the same code Coffer
//! runs in-process, served over the database plugin protocol v5 so OpenBao, Vault or another
//! Coffer can run it from their plugin catalog (type `database`).
#![forbid(unsafe_code)]

fn main() {
    let opts = coffer_plugin::DatabaseServeOptions { version: format!("v{}", env!("CARGO_PKG_VERSION")) };
    coffer_plugin::serve_database(|| Box::new(coffer_dbplugin_postgresql::PostgreSql::new()) as _, opts)
}
