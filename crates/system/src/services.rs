//! What the system backend needs from the core: [`SystemCore`].

use crate::cors::CorsState;
use crate::logging::LogControl;
use crate::mount_table::{MountEntry, MountTable};
use crate::policy_store::PolicyStore;
use crate::runtime::InFlight;
use crate::{CoreResponse, Result};
use coffer_acl::Acl;
use coffer_audit::AuditBroker;
use coffer_barrier::Barrier;
use coffer_sdk::framework::FieldData;
use coffer_sdk::Operation;
use coffer_system_paths::LeaseOp;
use serde_json::{Map, Value};
use std::sync::Arc;

/// Which mount table an edit changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MountTableKind {
    /// Secret engines (`core/mounts`, `sys/mounts`).
    Secret,
    /// Auth methods (`core/auth`, `sys/auth`).
    Auth,
}

/// The services the system backend's handlers take from the core. The core implements it
/// over its state for one request; every method is either state the handlers read or an
/// operation whose I/O the core owns (the ceremonies, the router, the token store, the
/// subsystems still served by the core: snapshots, leases, plugin
/// reloads, response wrapping, the OpenAPI document).
///
/// Methods that need the unsealed state answer `LogicalError::sealed()` without it.
#[async_trait::async_trait]
pub trait SystemCore: Send + Sync {
    // ----- state the handlers read -----

    /// The barrier (key rotation, key status, the storage of audit and mount tables).
    fn barrier(&self) -> &Barrier;
    /// The ACL policies.
    fn policies(&self) -> Result<&PolicyStore>;
    /// The audit devices.
    fn audit(&self) -> Result<&AuditBroker>;
    /// The server's default and maximum lease TTLs (seconds).
    fn system_ttls(&self) -> (i64, i64);
    /// The configured `api_addr` and `cluster_addr` ("" when unset).
    fn node_addresses(&self) -> (String, String);
    /// The configuration without its secrets (`sys/config/state/sanitized`).
    fn sanitized_config(&self) -> Option<Map<String, Value>>;
    /// What `sys/loggers` and `sys/monitor` act on; an error when the server does not control
    /// its log.
    fn log_control(&self) -> Result<Arc<dyn LogControl>>;
    /// The requests being served.
    fn in_flight(&self) -> &InFlight;
    /// Whether the server is sealed.
    fn is_sealed(&self) -> bool;
    /// Whether `sys/raw` is served (`raw_storage_endpoint = true`).
    fn raw_storage_endpoint(&self) -> bool;
    /// The configured `plugin_directory` (`None`: external plugins are disabled).
    fn plugin_directory(&self) -> Option<String>;
    /// The builtin plugins the catalog lists for a type (`secret`, `auth`, `database`), sorted.
    fn builtin_plugin_names(&self, plugin_type: &str) -> Vec<String>;
    /// The CORS configuration in force (`sys/config/cors` changes it).
    fn cors(&self) -> &CorsState;

    // ----- seal and ceremonies (the core does their I/O) -----

    /// `sys/seal-status`.
    async fn seal_status(&self) -> Result<Map<String, Value>>;
    /// Whether the barrier has been initialised.
    async fn is_initialized(&self) -> Result<bool>;
    /// `sys/init` (write).
    async fn initialize(&self, d: &Map<String, Value>) -> Result<CoreResponse>;
    /// `sys/unseal`.
    async fn unseal(&self, d: &Map<String, Value>) -> Result<CoreResponse>;
    /// `sys/seal`.
    async fn seal(&self) -> Result<()>;
    /// A step of root token generation (`attempt`, `update`, `decode`, …).
    async fn generate_root(&self, op: Operation, step: &str, d: &Map<String, Value>) -> Result<CoreResponse>;
    /// A step of the rekey of the unseal keys (`recovery` false) or the recovery keys.
    async fn rekey(&self, op: Operation, step: &str, d: &Map<String, Value>, recovery: bool) -> Result<CoreResponse>;
    /// `sys/rekey/backup` or `sys/rekey/recovery-key-backup`.
    async fn rekey_backup(&self, op: Operation, recovery: bool) -> Result<CoreResponse>;
    /// `sys/leader`.
    fn leader_status(&self) -> Map<String, Value>;
    /// Whether the server runs in an HA cluster.
    fn ha_enabled(&self) -> bool;
    /// `sys/ha-status`'s nodes on the active node of a cluster.
    async fn ha_nodes(&self) -> Option<Vec<Value>>;
    /// `sys/step-down`.
    fn step_down(&self) -> Result<()>;

    // ----- subsystems the core serves -----

    /// `sys/quotas/…` (`route` is one of the quota routes; `d` its coerced fields).
    async fn quotas(
        &self,
        op: Operation,
        route: coffer_system_paths::SysRoute,
        d: &Map<String, Value>,
    ) -> Result<CoreResponse>;
    /// A mount (`secret/`, `auth/userpass/`) was disabled: what the core keeps about it
    /// elsewhere (its quotas) goes too.
    async fn mount_removed(&self, mount: &str) -> Result<()>;
    /// `sys/storage/(raft/)snapshot-auto/…`: automatic snapshots.
    async fn snapshot_auto(
        &self,
        op: Operation,
        what: coffer_system_paths::AutoSnapshotOp,
        d: &Map<String, Value>,
    ) -> Result<CoreResponse>;
    /// `sys/storage/raft/snapshot` (`force`: `snapshot-force`).
    async fn snapshot(&self, op: Operation, force: bool, d: &Map<String, Value>) -> Result<CoreResponse>;
    /// `sys/leases/…` and `sys/renew`, `sys/revoke*`.
    async fn leases(
        &self,
        op: Operation,
        lease_op: LeaseOp,
        path: &str,
        url: &FieldData,
        d: &Map<String, Value>,
    ) -> Result<CoreResponse>;
    /// `sys/plugins/reload/backend`.
    async fn reload_plugins(&self, d: &Map<String, Value>) -> Result<CoreResponse>;
    /// `sys/wrapping/lookup` with the wrapping token in the body, without a token of its own.
    async fn wrapping_lookup(&self, op: Operation, d: &Map<String, Value>) -> Result<CoreResponse>;
    /// `sys/internal/specs/openapi`: the document for `acl`, or without a token (`None`) the
    /// document that lists nothing.
    fn openapi_document(&self, acl: Option<&Acl>) -> Result<CoreResponse>;

    // ----- tokens and identity -----

    /// The ACL of a token (`None`: no such token).
    async fn acl_of_token(&self, token: &str) -> Result<Option<Arc<Acl>>>;
    /// The ACL of the token with this accessor (`None`: no such token).
    async fn acl_of_accessor(&self, accessor: &str) -> Result<Option<Arc<Acl>>>;
    /// Revokes every token an auth mount issued (the mount is being disabled).
    async fn revoke_tokens_of_mount(&self, accessor: &str) -> Result<()>;
    /// How many service tokens are stored.
    async fn token_count(&self) -> Result<usize>;
    /// How many identity entities there are.
    async fn entity_count(&self) -> Result<usize>;

    // ----- mount tables and router -----

    /// Both tables as they are now: (secret engines, auth methods).
    async fn mount_tables(&self) -> Result<(Vec<MountEntry>, Vec<MountEntry>)>;
    /// Changes one mount table: `edit` runs with the tables locked (secret before auth) and
    /// returns its result and whether it changed the table; a changed table is stored and the
    /// router rebuilt before the locks are released. Nothing is stored when `edit` fails.
    async fn edit_mount_table<R, F>(&self, kind: MountTableKind, edit: F) -> Result<R>
    where
        R: Send,
        F: FnOnce(&mut MountTable) -> Result<(R, bool)> + Send;
    /// The mount serving `path` (entry, request prefix: `kv/`, `auth/userpass/`).
    fn resolve_mount(&self, path: &str) -> Option<(MountEntry, String)>;
    /// A finished remount's status, by migration id.
    fn remount_status(&self, id: &str) -> Option<Value>;
    /// Records a remount's status under its migration id.
    fn record_remount(&self, id: &str, status: Value);
    /// For a new mount: checks a builtin type, or finds an external plugin in the catalog,
    /// verifies and starts it (pinning its digest in the entry's options). `kind`: `secret`
    /// or `auth`.
    async fn start_external(&self, entry: &mut MountEntry, kind: &str) -> Result<()>;
    /// Whether a mount entry can be served (a tune must not make it unservable).
    fn check_backend(&self, entry: &MountEntry) -> Result<()>;
    /// Stops and forgets the external plugin instance of an unmounted mount.
    fn forget_plugin(&self, uuid: &str);
}
