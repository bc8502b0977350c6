//! The one list of Coffer's builtin secrets engines and auth methods.
//!
//! [`registry()`] is what the `coffer` binary (and every test that builds a core) hands to
//! `coffer_core::Core::new`: mounting, the plugin catalog listing and the CLI's reserved
//! plugin names all read it. Adding a builtin means adding its crate here, nowhere else.
#![forbid(unsafe_code)]

use coffer_sdk::database::{Database, DatabaseResolver};
use coffer_sdk::framework::Backend as Framework;
use coffer_sdk::registry::{BackendKind, BackendRegistry, Builtin, MountOptions};
use coffer_sdk::{Backend, LogicalError, Result};
use std::sync::Arc;

/// The database plugins built into Coffer, by `plugin_name`: what the database engine resolves
/// a connection's plugin with. (Catalogued external database plugins come on top of it.)
pub struct BuiltinDatabases;

#[async_trait::async_trait]
impl DatabaseResolver for BuiltinDatabases {
    async fn resolve(&self, plugin_name: &str, plugin_version: &str) -> Result<Option<Box<dyn Database>>> {
        let builtin: Option<Box<dyn Database>> = match plugin_name {
            coffer_dbplugin_postgresql::PLUGIN_NAME => Some(Box::new(coffer_dbplugin_postgresql::PostgreSql::new())),
            coffer_dbplugin_mysql::PLUGIN_NAME => Some(Box::new(coffer_dbplugin_mysql::MySql::new())),
            _ => None,
        };
        if builtin.is_some() && !plugin_version.is_empty() && !plugin_version.ends_with("+builtin") {
            return Err(LogicalError::bad_request(format!(
                "{plugin_name} is built in: plugin_version {plugin_version:?} names no registered version (leave it empty)"
            )));
        }
        Ok(builtin)
    }
}

// Each builtin is a path table with typed routes (a `framework::Handler`), served through the
// generic `framework::Backend`.

/// KV: version 1 unless the mount's `version` option says 2.
fn kv(options: &MountOptions) -> Result<Arc<dyn Backend>> {
    match options.get("version").map(String::as_str).unwrap_or("1") {
        "" | "1" => Ok(Arc::new(Framework::new(coffer_builtin_kv::KvV1::new()))),
        "2" => Ok(Arc::new(Framework::new(coffer_builtin_kv::KvV2::new()))),
        other => Err(LogicalError::bad_request(format!("invalid KV version {other:?}"))),
    }
}

fn kv_v2(_: &MountOptions) -> Result<Arc<dyn Backend>> {
    Ok(Arc::new(Framework::new(coffer_builtin_kv::KvV2::new())))
}

fn kv_v1(_: &MountOptions) -> Result<Arc<dyn Backend>> {
    Ok(Arc::new(Framework::new(coffer_builtin_kv::KvV1::new())))
}

/// Every builtin: what users mount, and what the core serves itself. The database engine
/// finds plugins among [`BuiltinDatabases`] only; the server uses
/// [`builtins_with_databases`] to add its plugin catalog.
pub fn builtins() -> Vec<Builtin> {
    builtins_with_databases(Arc::new(BuiltinDatabases))
}

/// Every builtin, the database engine finding connections' plugins with `databases`.
pub fn builtins_with_databases(databases: Arc<dyn DatabaseResolver>) -> Vec<Builtin> {
    use BackendKind::{Auth, Secret};
    let database = move |_: &MountOptions| -> Result<Arc<dyn Backend>> {
        Ok(Arc::new(Framework::new(coffer_builtin_database::DatabaseEngine::new(databases.clone()))))
    };
    vec![
        Builtin::mountable(Secret, "kv", kv),
        // Older names of KV, accepted as mount types and not listed, as OpenBao does.
        Builtin::mountable(Secret, "generic", kv).unlisted(),
        Builtin::mountable(Secret, "kv-v2", kv_v2).unlisted(),
        Builtin::mountable(Secret, "transit", |_| Ok(Arc::new(Framework::new(coffer_builtin_transit::Transit::new())))),
        Builtin::mountable(Secret, "totp", |_| Ok(Arc::new(Framework::new(coffer_builtin_totp::Totp::new())))),
        Builtin::mountable(Secret, "pki", |_| Ok(Arc::new(Framework::new(coffer_builtin_pki::Pki::new())))),
        Builtin::mountable(Secret, "database", database),
        Builtin::mountable(Secret, "ssh", |_| Ok(Arc::new(Framework::new(coffer_builtin_ssh::Ssh::new())))),
        Builtin::mountable(Auth, "userpass", |_| {
            Ok(Arc::new(Framework::new(coffer_builtin_userpass::UserPass::new())))
        }),
        Builtin::mountable(Auth, "approle", |_| Ok(Arc::new(Framework::new(coffer_builtin_approle::AppRole::new())))),
        Builtin::mountable(Auth, "cert", |_| Ok(Arc::new(Framework::new(coffer_builtin_cert::Cert::new())))),
        Builtin::mountable(Auth, "ldap", |_| Ok(Arc::new(Framework::new(coffer_builtin_ldap::Ldap::new())))),
        // One backend under two names, as OpenBao mounts it: `oidc` for browser logins.
        Builtin::mountable(Auth, "jwt", |_| Ok(Arc::new(Framework::new(coffer_builtin_jwt::Jwt::with_type("jwt"))))),
        Builtin::mountable(Auth, "oidc", |_| Ok(Arc::new(Framework::new(coffer_builtin_jwt::Jwt::with_type("oidc"))))),
        Builtin::mountable(Auth, "kubernetes", |_| {
            Ok(Arc::new(Framework::new(coffer_builtin_kubernetes::Kubernetes::new())))
        }),
        // Per-token storage: the core serves `cubbyhole/` with a KV version 1 backend.
        Builtin::served_by_core(Secret, "cubbyhole").backed_by(kv_v1),
        Builtin::served_by_core(Secret, "identity"),
        Builtin::served_by_core(Secret, "system").unlisted(),
        Builtin::served_by_core(Auth, "token"),
    ]
}

/// The registry of [`builtins()`].
pub fn registry() -> BackendRegistry {
    registry_with_databases(Arc::new(BuiltinDatabases))
}

/// The registry of [`builtins_with_databases`].
pub fn registry_with_databases(databases: Arc<dyn DatabaseResolver>) -> BackendRegistry {
    // The list above is fixed; `the_builtin_names_are_unique` proves it makes a registry.
    BackendRegistry::new(builtins_with_databases(databases)).expect("builtin names are unique")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_names_are_unique() {
        assert!(BackendRegistry::new(builtins()).is_ok());
    }

    #[test]
    fn the_catalog_lists_what_openbao_lists_as_builtin() {
        let r = registry();
        assert_eq!(
            r.listed_names(BackendKind::Secret),
            ["cubbyhole", "database", "identity", "kv", "pki", "ssh", "totp", "transit"]
        );
        assert_eq!(
            r.listed_names(BackendKind::Auth),
            ["approle", "cert", "jwt", "kubernetes", "ldap", "oidc", "token", "userpass"]
        );
    }

    #[test]
    fn kv_mounts_follow_the_version_option() {
        let r = registry();
        let mut o = MountOptions::new();
        assert_eq!(r.build("kv", &o).unwrap().unwrap().backend_type(), "kv");
        o.insert("version".into(), "2".into());
        assert!(r.build("kv", &o).unwrap().is_ok());
        o.insert("version".into(), "3".into());
        let Some(Err(e)) = r.build("kv", &o) else { panic!("KV version 3 was accepted") };
        assert!(e.to_string().contains("invalid KV version"), "{e}");
    }

    #[test]
    fn core_served_backends_are_not_user_mountable() {
        let r = registry();
        for name in ["cubbyhole", "identity", "system", "token"] {
            assert!(r.build(name, &MountOptions::new()).is_none(), "{name} could be mounted");
            assert!(r.is_builtin(name));
        }
        assert!(r.build_core_backend("cubbyhole").is_some_and(|b| b.is_ok()));
        assert!(r.build("no-such-engine", &MountOptions::new()).is_none());
    }
}
