#![forbid(unsafe_code)]
//! The example database plugin's binary: serves [`coffer_database_plugin_example::Postgres`]
//! over the database plugin protocol v5 (register it as type `database`).

fn main() {
    let opts = coffer_plugin::DatabaseServeOptions { version: format!("v{}", env!("CARGO_PKG_VERSION")) };
    coffer_plugin::serve_database(|| Box::new(coffer_database_plugin_example::Postgres::default()) as _, opts)
}
