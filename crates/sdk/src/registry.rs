//! The builtin backends a server knows by name: the one list that mounting, the plugin
//! catalog (`sys/plugins/catalog`) and the CLI's reserved plugin names all read.
//!
//! The core depends on no builtin crate: the `coffer` binary builds a [`BackendRegistry`] from
//! them (`coffer_builtins::registry()`) and hands it to the core. An entry is either mounted by
//! users through its [`BackendFactory`] (`kv`, `transit`, `userpass`, …) or served by the core at
//! a fixed path (`token`, `cubbyhole`, `identity`, `system`); a core-served entry may still name
//! the backend that implements it (cubbyhole is per-token KV version 1 storage).

use crate::{Backend, Result};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// Secrets engine or auth method, as the plugin catalog names them (`secret`, `auth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BackendKind {
    /// A secrets engine (mounted under `sys/mounts`).
    Secret,
    /// An auth method (mounted under `sys/auth`).
    Auth,
}

impl BackendKind {
    /// The catalog's name for the kind.
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Secret => "secret",
            BackendKind::Auth => "auth",
        }
    }

    /// The kind the catalog calls `name` (`secret`, `auth`).
    pub fn from_name(name: &str) -> Option<BackendKind> {
        match name {
            "secret" => Some(BackendKind::Secret),
            "auth" => Some(BackendKind::Auth),
            _ => None,
        }
    }
}

/// The options a mount was created or tuned with (`options` of `sys/mounts`), e.g. KV's
/// `version`.
pub type MountOptions = BTreeMap<String, String>;

/// Builds a fresh backend instance for a mount. Refuses options it cannot honour
/// (a bad request naming the option).
pub type BackendFactory = Arc<dyn Fn(&MountOptions) -> Result<Arc<dyn Backend>> + Send + Sync>;

/// One builtin engine or auth method.
#[derive(Clone)]
pub struct Builtin {
    name: &'static str,
    kind: BackendKind,
    factory: Option<BackendFactory>,
    served_by_core: bool,
    listed: bool,
}

impl fmt::Debug for Builtin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builtin")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("factory", &self.factory.is_some())
            .field("served_by_core", &self.served_by_core)
            .field("listed", &self.listed)
            .finish()
    }
}

impl Builtin {
    /// An engine or method users mount by `name`; `factory` builds each mount's instance.
    pub fn mountable(
        kind: BackendKind,
        name: &'static str,
        factory: impl Fn(&MountOptions) -> Result<Arc<dyn Backend>> + Send + Sync + 'static,
    ) -> Builtin {
        Builtin { name, kind, factory: Some(Arc::new(factory)), served_by_core: false, listed: true }
    }

    /// A backend the core itself serves at a fixed path (`token`, `identity`, `system`, …):
    /// not mountable by users, but its name is taken.
    pub fn served_by_core(kind: BackendKind, name: &'static str) -> Builtin {
        Builtin { name, kind, factory: None, served_by_core: true, listed: true }
    }

    /// For a core-served entry: the backend that implements it (built once, with no options).
    pub fn backed_by(
        mut self,
        factory: impl Fn(&MountOptions) -> Result<Arc<dyn Backend>> + Send + Sync + 'static,
    ) -> Builtin {
        self.factory = Some(Arc::new(factory));
        self
    }

    /// Left out of the catalog listing: an alias (`generic`, `kv-v2`) or an internal backend
    /// (`system`). The name stays taken.
    pub fn unlisted(mut self) -> Builtin {
        self.listed = false;
        self
    }

    /// The type name it is mounted by.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Secrets engine or auth method.
    pub fn kind(&self) -> BackendKind {
        self.kind
    }

    /// Whether the core serves it itself (`system`, `token`, `cubbyhole`, `identity`) rather than a mount's backend instance.
    pub fn is_served_by_core(&self) -> bool {
        self.served_by_core
    }

    /// Whether `sys/plugins/catalog` lists it.
    pub fn is_listed(&self) -> bool {
        self.listed
    }
}

/// Why a set of builtins does not make a registry.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    #[error("builtin backend name {0:?} is registered twice")]
    /// Two builtins share a name.
    DuplicateName(&'static str),
}

/// The builtin engines and auth methods of a server (see the module documentation).
/// Cheap to clone.
#[derive(Clone, Default)]
pub struct BackendRegistry {
    entries: Arc<Vec<Builtin>>,
}

impl fmt::Debug for BackendRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.entries.iter()).finish()
    }
}

impl BackendRegistry {
    /// A registry of `builtins`; each name may appear once (whatever its kind: a mount type
    /// names one backend).
    pub fn new(builtins: Vec<Builtin>) -> std::result::Result<BackendRegistry, RegistryError> {
        let mut seen = std::collections::BTreeSet::new();
        for b in &builtins {
            if !seen.insert(b.name) {
                return Err(RegistryError::DuplicateName(b.name));
            }
        }
        Ok(BackendRegistry { entries: Arc::new(builtins) })
    }

    /// Every entry, in registration order.
    pub fn entries(&self) -> impl Iterator<Item = &Builtin> {
        self.entries.iter()
    }

    /// The builtin called `name`, if any.
    pub fn get(&self, name: &str) -> Option<&Builtin> {
        self.entries.iter().find(|b| b.name == name)
    }

    /// Whether `name` is a builtin's (a plugin by that name would be hidden).
    pub fn is_builtin(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// The names `sys/plugins/catalog` lists for `kind`, sorted.
    pub fn listed_names(&self, kind: BackendKind) -> Vec<&'static str> {
        let mut v: Vec<&'static str> =
            self.entries.iter().filter(|b| b.kind == kind && b.listed).map(|b| b.name).collect();
        v.sort_unstable();
        v
    }

    /// Every builtin name, aliases and core-served ones included, sorted.
    pub fn names(&self) -> Vec<&'static str> {
        let mut v: Vec<&'static str> = self.entries.iter().map(|b| b.name).collect();
        v.sort_unstable();
        v
    }

    /// A new instance for a user mount of type `name`; `None` when no mountable builtin has
    /// that name (a plugin from the catalog may).
    pub fn build(&self, name: &str, options: &MountOptions) -> Option<Result<Arc<dyn Backend>>> {
        let b = self.get(name).filter(|b| !b.served_by_core)?;
        b.factory.as_ref().map(|f| f(options))
    }

    /// The implementation of the core-served entry `name` (cubbyhole), built with no options;
    /// `None` when the registry gives it none.
    pub fn build_core_backend(&self, name: &str) -> Option<Result<Arc<dyn Backend>>> {
        let b = self.get(name).filter(|b| b.served_by_core)?;
        b.factory.as_ref().map(|f| f(&MountOptions::new()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LogicalError;

    fn refuse(_: &MountOptions) -> Result<Arc<dyn Backend>> {
        Err(LogicalError::bad_request("factory called"))
    }

    #[test]
    fn a_name_is_registered_once_whatever_its_kind() {
        let r = BackendRegistry::new(vec![
            Builtin::mountable(BackendKind::Secret, "x", refuse),
            Builtin::mountable(BackendKind::Auth, "x", refuse),
        ]);
        assert!(matches!(r, Err(RegistryError::DuplicateName("x"))), "{r:?}");
    }

    #[test]
    fn listing_mounting_and_core_backends_follow_each_entry() {
        let r = BackendRegistry::new(vec![
            Builtin::mountable(BackendKind::Secret, "b", refuse),
            Builtin::mountable(BackendKind::Secret, "a", refuse).unlisted(),
            Builtin::served_by_core(BackendKind::Auth, "t"),
            Builtin::served_by_core(BackendKind::Secret, "c").backed_by(refuse),
        ])
        .unwrap();
        assert_eq!(r.listed_names(BackendKind::Secret), ["b", "c"]);
        assert_eq!(r.listed_names(BackendKind::Auth), ["t"]);
        assert_eq!(r.names(), ["a", "b", "c", "t"]);
        // Mountable entries reach their factory (which refuses here); core-served ones do not.
        assert!(matches!(r.build("a", &MountOptions::new()), Some(Err(_))));
        assert!(r.build("c", &MountOptions::new()).is_none());
        assert!(r.build("t", &MountOptions::new()).is_none());
        assert!(r.build("nope", &MountOptions::new()).is_none());
        assert!(matches!(r.build_core_backend("c"), Some(Err(_))));
        assert!(r.build_core_backend("t").is_none());
        assert!(r.build_core_backend("b").is_none());
    }
}
