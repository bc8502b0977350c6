//! The core's side of the system backend: the handlers live in `coffer-system`, which reaches
//! the core only through [`coffer_system::SystemCore`]; this module implements it over the
//! core's state for one request (decision 0026).

use crate::mounts::{MountEntry, MountTable, AUTH_TABLE_PATH, MOUNT_TABLE_PATH};
use crate::{error, Active, Core, CoreRequest, CoreResponse, Result};
use coffer_acl::Acl;
use coffer_audit::AuditBroker;
use coffer_barrier::{Barrier, SecureStorage};
use coffer_sdk::framework::FieldData;
use coffer_sdk::{LogicalError, Operation};
use coffer_system::logging::LogControl;
use coffer_system::policy_store::PolicyStore;
use coffer_system::runtime::InFlight;
use coffer_system::{MountTableKind, SystemCore};
use coffer_system_paths::LeaseOp;
use serde_json::{Map, Value};
use std::sync::{Arc, PoisonError};

pub(crate) use coffer_system::hostname;

/// The core as the system backend sees it while serving one request: the core, and its
/// unsealed state when there is one.
pub(crate) struct SysCtx<'a> {
    core: &'a Core,
    active: Option<Arc<Active>>,
}

impl SysCtx<'_> {
    fn active(&self) -> Result<&Arc<Active>> {
        self.active.as_ref().ok_or_else(LogicalError::sealed)
    }
}

#[async_trait::async_trait]
impl SystemCore for SysCtx<'_> {
    fn barrier(&self) -> &Barrier {
        &self.core.barrier
    }
    fn policies(&self) -> Result<&PolicyStore> {
        Ok(&self.active()?.policies)
    }
    fn audit(&self) -> Result<&AuditBroker> {
        Ok(&self.active()?.audit)
    }
    fn system_ttls(&self) -> (i64, i64) {
        (self.core.config.default_lease_ttl, self.core.config.max_lease_ttl)
    }
    fn node_addresses(&self) -> (String, String) {
        let c = &self.core.config;
        (c.api_addr.clone().unwrap_or_default(), c.cluster_addr.clone().unwrap_or_default())
    }
    fn sanitized_config(&self) -> Option<Map<String, Value>> {
        self.core.config.sanitized.clone()
    }
    fn log_control(&self) -> Result<Arc<dyn LogControl>> {
        self.core.log_control()
    }
    fn in_flight(&self) -> &InFlight {
        &self.core.in_flight
    }
    fn is_sealed(&self) -> bool {
        self.core.is_sealed()
    }
    fn raw_storage_endpoint(&self) -> bool {
        self.core.config.raw_storage_endpoint
    }
    fn plugin_directory(&self) -> Option<String> {
        self.core.config.plugin_directory.clone()
    }
    fn builtin_plugin_names(&self, plugin_type: &str) -> Vec<String> {
        self.core.builtin_names(plugin_type)
    }
    fn cors(&self) -> &coffer_system::cors::CorsState {
        &self.core.cors
    }

    async fn seal_status(&self) -> Result<Map<String, Value>> {
        self.core.seal_status().await
    }
    async fn is_initialized(&self) -> Result<bool> {
        self.core.barrier.is_initialized().await.map_err(error::barrier_err)
    }
    async fn initialize(&self, d: &Map<String, Value>) -> Result<CoreResponse> {
        self.core.initialize(d).await
    }
    async fn unseal(&self, d: &Map<String, Value>) -> Result<CoreResponse> {
        self.core.unseal(d).await
    }
    async fn seal(&self) -> Result<()> {
        self.core.seal_now().await
    }
    async fn generate_root(&self, op: Operation, step: &str, d: &Map<String, Value>) -> Result<CoreResponse> {
        self.core.generate_root(op, step, d).await
    }
    async fn rekey(&self, op: Operation, step: &str, d: &Map<String, Value>, recovery: bool) -> Result<CoreResponse> {
        self.core.rekey_target(op, step, d, recovery).await
    }
    async fn rekey_backup(&self, op: Operation, recovery: bool) -> Result<CoreResponse> {
        self.core.rekey_backup(op, recovery).await
    }
    fn leader_status(&self) -> Map<String, Value> {
        self.core.leader_status()
    }
    fn ha_enabled(&self) -> bool {
        self.core.ha_enabled()
    }
    async fn ha_nodes(&self) -> Option<Vec<Value>> {
        self.core.ha_nodes().await
    }
    fn step_down(&self) -> Result<()> {
        self.core.step_down()
    }

    async fn quotas(
        &self,
        op: Operation,
        route: coffer_system_paths::SysRoute,
        d: &Map<String, Value>,
    ) -> Result<CoreResponse> {
        let active = self.active()?.clone();
        self.core.handle_quotas(&active, op, route, d).await
    }
    async fn mount_removed(&self, mount: &str) -> Result<()> {
        let active = self.active()?.clone();
        self.core.quotas_mount_removed(&active, mount).await
    }
    async fn snapshot_auto(
        &self,
        op: Operation,
        what: coffer_system_paths::AutoSnapshotOp,
        d: &Map<String, Value>,
    ) -> Result<CoreResponse> {
        self.core.handle_snapshot_auto(op, what, d).await
    }
    async fn snapshot(&self, op: Operation, force: bool, d: &Map<String, Value>) -> Result<CoreResponse> {
        self.core.handle_snapshot(op, force, d).await
    }
    async fn leases(
        &self,
        op: Operation,
        lease_op: LeaseOp,
        path: &str,
        url: &FieldData,
        d: &Map<String, Value>,
    ) -> Result<CoreResponse> {
        self.core.handle_leases(self.active()?, op, lease_op, path, url, d).await
    }
    async fn reload_plugins(&self, d: &Map<String, Value>) -> Result<CoreResponse> {
        self.core.reload_plugins(self.active()?, d).await
    }
    async fn wrapping_lookup(&self, op: Operation, d: &Map<String, Value>) -> Result<CoreResponse> {
        self.core.handle_wrapping(self.active()?, op, "lookup", d, "", None).await
    }
    fn openapi_document(&self, acl: Option<&Acl>) -> Result<CoreResponse> {
        match acl {
            None => Ok(CoreResponse::raw(crate::openapi::empty_document())),
            Some(acl) => self.core.openapi_document(self.active()?, acl),
        }
    }

    async fn acl_of_token(&self, token: &str) -> Result<Option<Arc<Acl>>> {
        let active = self.active()?;
        let Some(e) = active.tokens.lookup(token).await? else { return Ok(None) };
        Ok(Some(self.core.acl_for_entry(active, &e).await))
    }
    async fn acl_of_accessor(&self, accessor: &str) -> Result<Option<Arc<Acl>>> {
        let active = self.active()?;
        let Some((_, e)) = active.tokens.lookup_accessor(accessor).await? else { return Ok(None) };
        Ok(Some(self.core.acl_for_entry(active, &e).await))
    }
    async fn revoke_tokens_of_mount(&self, accessor: &str) -> Result<()> {
        self.active()?.tokens.revoke_by_mount(accessor).await?;
        Ok(())
    }
    async fn token_count(&self) -> Result<usize> {
        Ok(self.core.barrier.list(crate::token::ID_PREFIX).await.map_err(error::barrier_err)?.len())
    }
    async fn entity_count(&self) -> Result<usize> {
        Ok(self.active()?.identity.state.read().await.entities.len())
    }

    async fn mount_tables(&self) -> Result<(Vec<MountEntry>, Vec<MountEntry>)> {
        let active = self.active()?;
        let secret = active.mounts.lock().await;
        let auth = active.auth_mounts.lock().await;
        Ok((secret.entries.clone(), auth.entries.clone()))
    }
    async fn edit_mount_table<R, F>(&self, kind: MountTableKind, edit: F) -> Result<R>
    where
        R: Send,
        F: FnOnce(&mut MountTable) -> Result<(R, bool)> + Send,
    {
        let active = self.active()?;
        // Lock order: secret mounts before auth mounts.
        let mut secret = active.mounts.lock().await;
        let mut auth = active.auth_mounts.lock().await;
        let (table, key) = match kind {
            MountTableKind::Auth => (&mut *auth, AUTH_TABLE_PATH),
            _ => (&mut *secret, MOUNT_TABLE_PATH),
        };
        let (r, changed) = edit(table)?;
        if changed {
            table.save_to(&self.core.barrier, key).await?;
            self.core.install_router(active, &secret, &auth)?;
        }
        Ok(r)
    }
    fn resolve_mount(&self, path: &str) -> Option<(MountEntry, String)> {
        let active = self.active.as_ref()?;
        let router = active.router.read().unwrap_or_else(PoisonError::into_inner).clone();
        router.resolve(path).map(|(r, _)| (r.entry.clone(), r.prefix.clone()))
    }
    fn remount_status(&self, id: &str) -> Option<Value> {
        self.active.as_ref()?.remounts.read().unwrap_or_else(PoisonError::into_inner).get(id).cloned()
    }
    fn record_remount(&self, id: &str, status: Value) {
        if let Some(a) = &self.active {
            a.remounts.write().unwrap_or_else(PoisonError::into_inner).insert(id.to_string(), status);
        }
    }
    async fn start_external(&self, entry: &mut MountEntry, kind: &str) -> Result<()> {
        self.core.start_external(entry, kind).await
    }
    fn check_backend(&self, entry: &MountEntry) -> Result<()> {
        crate::mounts::backend_for(&self.core.registry, entry).map(|_| ())
    }
    fn forget_plugin(&self, uuid: &str) {
        if let Ok(mut p) = self.core.plugins.write() {
            p.remove(uuid);
        }
    }
}

impl Core {
    /// Paths served without a token, some of them while sealed. `None`: not one of them.
    pub(crate) async fn handle_unauthenticated(&self, req: &CoreRequest, path: &str) -> Result<Option<CoreResponse>> {
        let ctx = SysCtx { core: self, active: self.active() };
        let has_token = !req.token.as_deref().unwrap_or("").is_empty();
        coffer_system::handle_unauthenticated(&ctx, req.operation, path, &req.data, has_token).await
    }

    /// `sys/` with an authorised token (`acl`: its ACL).
    pub(crate) async fn serve_sys(
        &self,
        active: &Arc<Active>,
        op: Operation,
        path: &str,
        data: &Map<String, Value>,
        acl: &Acl,
    ) -> Result<CoreResponse> {
        let ctx = SysCtx { core: self, active: Some(active.clone()) };
        coffer_system::handle(&ctx, op, path, data, acl).await
    }

    /// Rebuilds the router from the mount tables.
    pub(crate) fn install_router(&self, active: &Active, table: &MountTable, auth: &MountTable) -> Result<()> {
        let router = self.build_router(table, auth);
        *active.router.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(router);
        Ok(())
    }

    /// The ACL of a token: its own policies and its entity's (with the entity's groups'),
    /// templated paths rendered for its entity.
    pub(crate) async fn acl_for_entry(&self, active: &Active, e: &crate::token::TokenEntry) -> Arc<Acl> {
        let mut names = e.policies.clone();
        names.extend(active.identity.policies_for(&e.entity_id).await);
        let identity = (!e.entity_id.is_empty()).then(|| format!("{}@{}", e.entity_id, active.identity.generation()));
        match active.policies.token_acl(&names, identity) {
            crate::policy_store::AclLookup::Ready(acl) => acl,
            crate::policy_store::AclLookup::NeedsFacts(key) => {
                let facts = active.identity.facts_for(&e.entity_id).await;
                active.policies.templated_acl(key, facts.as_ref())
            }
        }
    }

    pub(crate) async fn auth_mount_by_accessor(&self, active: &Active, accessor: &str) -> Option<MountEntry> {
        active.auth_mounts.lock().await.entries.iter().find(|e| e.accessor == accessor).cloned()
    }

    /// The CORS configuration while CORS is enabled (for the HTTP layer).
    pub fn cors_config(&self) -> Option<Arc<coffer_system::cors::CorsConfig>> {
        self.cors.get()
    }

    /// Reads the stored CORS configuration (at unseal).
    pub(crate) async fn load_cors(&self) -> Result<()> {
        self.cors.load(&self.barrier).await
    }

    /// Installs what `sys/loggers` and `sys/monitor` act on (the binary owns the log).
    pub fn set_log_control(&self, c: Arc<dyn LogControl>) {
        if let Ok(mut g) = self.log_control.write() {
            *g = Some(c);
        }
    }

    /// The table of requests being served (the HTTP layer records each request in it).
    pub fn in_flight(&self) -> &Arc<InFlight> {
        &self.in_flight
    }

    fn log_control(&self) -> Result<Arc<dyn LogControl>> {
        self.log_control
            .read()
            .ok()
            .and_then(|c| c.clone())
            .ok_or_else(|| LogicalError::new(crate::ErrorKind::Unavailable, "this server does not control its log"))
    }
}
