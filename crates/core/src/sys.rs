//! The system backend (`sys/…`): seal ceremonies, mounts, key rotation, host and cluster info.

use crate::mounts::{backend_for, is_protected_mount_path, normalize_mount_path, MountConfig, MountEntry, Router};
use crate::system_paths::SysRoute;
use crate::{Active, Core, CoreRequest, CoreResponse, Result};
use coffer_barrier::SecureStorage;
use coffer_sdk::field::{parse_bool, parse_duration, parse_int, parse_string, parse_string_slice};
use coffer_sdk::{ErrorKind, LogicalError, Operation};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn no_content() -> CoreResponse {
    CoreResponse::default()
}

/// A TTL given to tune or mount: "system" or empty means 0 (inherit).
fn ttl_field(name: &str, v: Option<&Value>) -> Result<Option<i64>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        // The CLI sends "" for "not given"; "system" resets to the system value.
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) if s == "system" => Ok(Some(0)),
        Some(v) => {
            let n = parse_duration(name, v)?;
            if n < 0 {
                return Err(LogicalError::bad_request(format!("{name} must not be negative")));
            }
            Ok(Some(n))
        }
    }
}

fn string_map(name: &str, v: &Value) -> Result<BTreeMap<String, String>> {
    let Value::Object(m) = v else {
        return Err(LogicalError::bad_request(format!("{name} must be a map of strings")));
    };
    m.iter().map(|(k, v)| Ok((k.clone(), parse_string(name, v)?))).collect()
}

impl Core {
    /// Paths served without a token, some of them while sealed. `None`: not one of them.
    pub(crate) async fn handle_unauthenticated(&self, req: &CoreRequest, path: &str) -> Result<Option<CoreResponse>> {
        use Operation::*;
        let op = req.operation;
        // OpenBao serves these two outside its router: any other method (LIST included) is a
        // bare 405 with an empty error list.
        if matches!(path.trim_end_matches('/'), "sys/seal-status" | "sys/leader") && (op != Read || path.ends_with('/'))
        {
            return Err(LogicalError::with_messages(ErrorKind::UnsupportedOperation, vec![]));
        }
        let rel = path.strip_prefix("sys/").unwrap_or("");
        let Some((route, spec)) = crate::system_paths::sys_paths().find(rel) else { return Ok(None) };
        if !spec.flags.unauthenticated {
            return Ok(None);
        }
        // The handlers read the row's coerced fields, never the raw body.
        let Some(routed) = crate::system_paths::route_sys(rel, op, &req.data)? else { return Ok(None) };
        let d = &routed.fields;
        let resp = match route {
            SysRoute::SealStatus => match op {
                Read => CoreResponse::raw(self.seal_status().await?),
                _ => return Err(LogicalError::unsupported_operation()),
            },
            SysRoute::Init => match op {
                Read => CoreResponse::raw(obj(json!({
                    "initialized": self.barrier.is_initialized().await.map_err(crate::error::barrier_err)?
                }))),
                Update | Create => self.initialize(d).await?,
                _ => return Err(LogicalError::unsupported_operation()),
            },
            SysRoute::Unseal => match op {
                Update | Create => self.unseal(d).await?,
                _ => return Err(LogicalError::unsupported_operation()),
            },
            SysRoute::Leader => match op {
                Read => CoreResponse::raw(self.leader_status()),
                _ => return Err(LogicalError::unsupported_operation()),
            },
            // With a token the lookup is an ordinary request (audited, ACL-checked); without
            // one the wrapping token in the body is its own credential.
            SysRoute::Wrapping if matches!(op, Update | Create) && d.contains_key("token") => {
                let active = self.active().ok_or_else(LogicalError::sealed)?;
                self.handle_wrapping(&active, op, "lookup", d, "", None).await?
            }
            SysRoute::GenerateRoot(step) => {
                if self.is_sealed() {
                    return Err(LogicalError::sealed());
                }
                self.generate_root(op, step.as_str(), d).await?
            }
            SysRoute::Rekey(step) => self.rekey(op, step.as_str(), d).await?,
            SysRoute::RekeyRecovery(step) => self.rekey_target(op, step.as_str(), d, true).await?,
            // Without a token the document lists nothing, as OpenBao's does.
            SysRoute::OpenApi if req.token.as_deref().unwrap_or("").is_empty() && matches!(op, Read | Update) => {
                if self.is_sealed() {
                    return Err(LogicalError::sealed());
                }
                CoreResponse::raw(crate::openapi::empty_document())
            }
            SysRoute::UiMounts if req.token.as_deref().unwrap_or("").is_empty() => {
                // Without a token only mounts marked unauth-visible are shown.
                let active = self.active().ok_or_else(LogicalError::sealed)?;
                self.ui_mounts(&active, path, None).await?
            }
            _ => return Ok(None),
        };
        let mut resp = resp;
        resp.warn_ignored(&routed.ignored);
        Ok(Some(resp))
    }

    pub(crate) async fn handle_sys(
        &self,
        active: &Arc<Active>,
        op: Operation,
        route: SysRoute,
        path: &str,
        d: &Map<String, Value>,
        acl: Option<&coffer_acl::Acl>,
    ) -> Result<CoreResponse> {
        use Operation::*;
        match route {
            SysRoute::Seal => match op {
                Update | Create => {
                    self.seal_now().await?;
                    Ok(no_content())
                }
                _ => Err(LogicalError::unsupported_operation()),
            },
            SysRoute::Mounts => match op {
                Read => {
                    let table = active.mounts.lock().await;
                    let mut m = Map::new();
                    for e in &table.entries {
                        m.insert(e.path.clone(), e.to_json());
                    }
                    m.insert("sys/".into(), sys_mount_json());
                    m.insert(
                        "cubbyhole/".into(),
                        builtin_mount_json("cubbyhole", "per-token private secret storage", true),
                    );
                    m.insert("identity/".into(), builtin_mount_json("identity", "identity store", false));
                    Ok(CoreResponse::legacy(sorted(m)))
                }
                _ => Err(LogicalError::unsupported_operation()),
            },
            SysRoute::Remount => match op {
                Update | Create => self.remount(active, d).await,
                _ => Err(LogicalError::unsupported_operation()),
            },
            SysRoute::Rotate => match op {
                Update | Create => {
                    self.barrier.rotate().await.map_err(crate::error::barrier_err)?;
                    Ok(no_content())
                }
                _ => Err(LogicalError::unsupported_operation()),
            },
            SysRoute::KeyStatus => match op {
                Read => {
                    let s = self.barrier.key_status().map_err(crate::error::barrier_err)?;
                    Ok(CoreResponse::legacy(obj(json!({
                        "term": s.term, "install_time": s.install_time, "encryptions": s.encryptions,
                    }))))
                }
                _ => Err(LogicalError::unsupported_operation()),
            },
            SysRoute::RotateConfig => match op {
                Read => {
                    let c = self.barrier.rotation_config().map_err(crate::error::barrier_err)?;
                    Ok(CoreResponse::legacy(obj(json!({
                        "max_operations": c.max_operations,
                        "enabled": c.enabled,
                        "interval": if c.interval == 0 { json!(0) } else { json!(go_duration(c.interval)) },
                    }))))
                }
                Update | Create => {
                    let mut c = self.barrier.rotation_config().map_err(crate::error::barrier_err)?;
                    if let Some(v) = d.get("max_operations").filter(|v| !v.is_null()) {
                        let n = parse_int("max_operations", v)?;
                        if !(1_000_000..=3_865_470_566).contains(&n) {
                            return Err(LogicalError::bad_request(
                                "max_operations must be in the range [1000000,3865470566]",
                            ));
                        }
                        c.max_operations = n as u64;
                    }
                    if let Some(v) = d.get("interval").filter(|v| !v.is_null()) {
                        let n = parse_duration("interval", v)?;
                        if n != 0 && n < 24 * 3600 {
                            return Err(LogicalError::bad_request("interval must be greater or equal to 24h0m0s"));
                        }
                        c.interval = n.max(0) as u64;
                    }
                    if let Some(v) = d.get("enabled").filter(|v| !v.is_null()) {
                        c.enabled = parse_bool("enabled", v)?;
                    }
                    self.barrier.set_rotation_config(c).await.map_err(crate::error::barrier_err)?;
                    Ok(no_content())
                }
                _ => Err(LogicalError::unsupported_operation()),
            },
            SysRoute::HostInfo => match op {
                Read => Ok(CoreResponse::data(host_info())),
                _ => Err(LogicalError::unsupported_operation()),
            },
            SysRoute::HaStatus => match op {
                Read if self.ha_enabled() => {
                    let nodes = self.ha_nodes().await.unwrap_or_default();
                    Ok(CoreResponse::legacy(obj(json!({ "nodes": nodes }))))
                }
                Read => {
                    let host = hostname();
                    Ok(CoreResponse::legacy(obj(json!({
                        "nodes": [{
                            "hostname": host,
                            "api_address": self.config.api_addr.clone().unwrap_or_default(),
                            "cluster_address": self.config.cluster_addr.clone().unwrap_or_default(),
                            "active_node": true,
                            "last_echo": null,
                            "version": crate::version_string(),
                            "upgrade_version": crate::version_string(),
                            "redundancy_zone": "",
                        }]
                    }))))
                }
                _ => Err(LogicalError::unsupported_operation()),
            },
            SysRoute::Raw => self.handle_raw(op, path, d).await,
            SysRoute::Snapshot { force } => Box::pin(self.handle_snapshot(op, force, d)).await,
            SysRoute::SnapshotAuto(what) => Box::pin(self.handle_snapshot_auto(op, what, d)).await,
            SysRoute::Loggers
            | SysRoute::Monitor
            | SysRoute::InFlight
            | SysRoute::SanitizedConfig
            | SysRoute::Counters => self.handle_sys_runtime(active, op, path, d).await,
            SysRoute::Cors => self.handle_cors(op, d).await,
            SysRoute::StepDown => match op {
                Update | Create => {
                    self.step_down()?;
                    Ok(no_content())
                }
                _ => Err(LogicalError::unsupported_operation()),
            },
            SysRoute::GenerateRootToken(step) => {
                let mut r = self.generate_root(op, step.as_str(), d).await?;
                r.shape = crate::BodyShape::Envelope;
                Ok(r)
            }
            SysRoute::RekeyBackup => self.rekey_backup(op, false).await,
            SysRoute::RecoveryBackup => self.rekey_backup(op, true).await,
            SysRoute::RotateRecovery(step) => {
                let mut r = self.rekey_target(op, step.as_str(), d, true).await?;
                r.shape = crate::BodyShape::Envelope;
                Ok(r)
            }
            SysRoute::RotateRoot(step) => {
                let mut r = self.rekey(op, step.as_str(), d).await?;
                r.shape = crate::BodyShape::Envelope;
                Ok(r)
            }
            SysRoute::UiMounts => {
                if op != Read {
                    return Err(LogicalError::unsupported_operation());
                }
                self.ui_mounts(active, path, acl).await
            }
            SysRoute::RemountStatus => {
                if op != Read {
                    return Err(LogicalError::unsupported_operation());
                }
                let id = &path["sys/remount/status/".len()..];
                let st = active.remounts.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(id).cloned();
                match st {
                    Some(v) => Ok(CoreResponse::data(obj(json!({ "migration_id": id, "migration_info": v })))),
                    None => Err(LogicalError::not_found()),
                }
            }
            SysRoute::MountTune if path.starts_with("sys/mounts/auth/") => {
                // `bao auth tune` tunes auth mounts through the secret-mount path.
                let inner = format!("sys/auth/{}", &path["sys/mounts/auth/".len()..]);
                let active2 = active.clone();
                let ctx_acl = acl.cloned().unwrap_or_default();
                let ctx = crate::Ctx { acl: &ctx_acl };
                match self.handle_sys_acl(&active2, op, SysRoute::AuthTune, &inner, d, &ctx).await? {
                    Some(r) => Ok(r),
                    None => Err(LogicalError::new(ErrorKind::NotFound, "unsupported path")),
                }
            }
            SysRoute::Mount | SysRoute::MountTune => {
                let rest = &path["sys/mounts/".len()..];
                if rest.is_empty() {
                    return Err(LogicalError::new(ErrorKind::NotFound, "unsupported path"));
                }
                if let Some(mp) = rest.strip_suffix("/tune") {
                    return match op {
                        Read => self.read_tune(active, mp).await,
                        Update | Create => self.tune(active, mp, d).await,
                        _ => Err(LogicalError::unsupported_operation()),
                    };
                }
                match op {
                    Read => {
                        let mp = normalize_mount_path(rest)?;
                        let table = active.mounts.lock().await;
                        match table.find(&mp) {
                            Some(e) => Ok(CoreResponse::legacy(obj(e.to_json()))),
                            None if mp == "sys/" => Ok(CoreResponse::legacy(obj(sys_mount_json()))),
                            None => Err(LogicalError::bad_request(format!("No secret engine mount at {mp}"))),
                        }
                    }
                    Update | Create => self.mount(active, rest, d).await,
                    Delete => self.unmount(active, rest).await,
                    _ => Err(LogicalError::unsupported_operation()),
                }
            }
            // The status endpoints answer before routing (`handle_unauthenticated`, the HTTP
            // layer's health check): any other operation on them is not supported.
            SysRoute::SealStatus | SysRoute::Health | SysRoute::Init | SysRoute::Unseal | SysRoute::Leader => {
                Err(LogicalError::unsupported_operation())
            }
            // Served by `handle_sys_acl`, `handle_wrapping` or without a token: what reaches
            // here is an operation they do not take.
            _ => Err(LogicalError::unsupported_operation()),
        }
    }

    pub(crate) fn install_router(
        &self,
        active: &Active,
        table: &crate::mounts::MountTable,
        auth: &crate::mounts::MountTable,
    ) -> Result<()> {
        let router: Router = self.build_router(table, auth);
        *active.router.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(router);
        Ok(())
    }

    async fn mount(&self, active: &Active, raw_path: &str, d: &Map<String, Value>) -> Result<CoreResponse> {
        let path = normalize_mount_path(raw_path)?;
        let mount_type = match d.get("type") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            Some(Value::Null) | None => {
                return Err(LogicalError::bad_request("backend type must be specified as a string"))
            }
            Some(v) => {
                return Err(LogicalError::bad_request(format!(
                    "error converting input {v} for field \"type\": expected a string"
                )))
            }
        };
        if is_protected_mount_path(&path) {
            return Err(LogicalError::bad_request(format!("cannot mount '{mount_type}' at reserved path {path:?}")));
        }
        let mut config = MountConfig::default();
        if let Some(c) = d.get("config").filter(|v| !v.is_null()) {
            let Value::Object(c) = c else {
                return Err(LogicalError::bad_request("config must be a map"));
            };
            apply_config(&mut config, c)?;
            if config.default_lease_ttl > 0
                && config.max_lease_ttl > 0
                && config.default_lease_ttl > config.max_lease_ttl
            {
                return Err(LogicalError::bad_request("given default lease TTL greater than given max lease TTL"));
            }
        }
        let mut options = match d.get("options").filter(|v| !v.is_null()) {
            // As OpenBao reads options: null is "", true is "1", false is "0".
            Some(Value::Object(m)) => Some(string_map(
                "options",
                &Value::Object(
                    m.iter()
                        .map(|(k, v)| {
                            let v = match v {
                                Value::Null => Value::String(String::new()),
                                Value::Bool(b) => Value::String(if *b { "1" } else { "0" }.into()),
                                other => other.clone(),
                            };
                            (k.clone(), v)
                        })
                        .collect(),
                ),
            )?),
            Some(v) => Some(string_map("options", v)?),
            None => None,
        };
        if mount_type == "kv" {
            if let Some(v) = options.as_ref().and_then(|o| o.get("version")) {
                if !matches!(v.as_str(), "" | "1" | "2") {
                    return Err(LogicalError::bad_request(format!("invalid KV version {v:?}: 1 or 2")));
                }
            }
        }
        let mut mount_type = mount_type;
        if mount_type == "kv-v2" {
            mount_type = "kv".into();
            options.get_or_insert_with(BTreeMap::new).insert("version".into(), "2".into());
        }
        let description = match d.get("description") {
            Some(v) if !v.is_null() => parse_string("description", v)?,
            _ => String::new(),
        };
        let flag = |n: &str| -> Result<bool> {
            match d.get(n) {
                Some(v) if !v.is_null() => parse_bool(n, v),
                _ => Ok(false),
            }
        };
        refuse_unbuilt_mount_flags(d)?;
        let uuid = uuid::Uuid::new_v4().to_string();
        // `-plugin-name` mounts an external plugin under the name it has in the catalog.
        let mount_type = match d.get("plugin_name").and_then(Value::as_str).filter(|s| !s.is_empty()) {
            Some(n) if mount_type == "plugin" || mount_type == n => n.to_string(),
            _ => mount_type,
        };
        let mut entry = MountEntry {
            accessor: format!("{}_{}", mount_type.replace('-', "_"), &uuid::Uuid::new_v4().simple().to_string()[..8]),
            path: path.clone(),
            mount_type,
            description,
            uuid,
            config,
            options,
            local: flag("local")?,
            seal_wrap: false,
            external_entropy_access: false,
            plugin_version: d.get("plugin_version").and_then(Value::as_str).unwrap_or("").to_string(),
        };
        {
            let table = active.mounts.lock().await;
            if let Some(other) = table.entries.iter().find(|e| e.path.starts_with(&path) || path.starts_with(&e.path)) {
                return Err(LogicalError::bad_request(format!("path is already in use at {}", other.path)));
            }
        }
        // Builtins are checked; external plugins are verified and started before anything is stored.
        self.start_external(&mut entry, "secret").await?;
        let mut table = active.mounts.lock().await;
        if let Some(other) = table.entries.iter().find(|e| e.path.starts_with(&path) || path.starts_with(&e.path)) {
            return Err(LogicalError::bad_request(format!("path is already in use at {}", other.path)));
        }
        tracing::info!(path = %path, r#type = %entry.mount_type, "successful mount");
        table.entries.push(entry);
        table.save(&self.barrier).await?;
        self.install_router(active, &table, &*active.auth_mounts.lock().await)?;
        Ok(no_content())
    }

    async fn unmount(&self, active: &Active, raw_path: &str) -> Result<CoreResponse> {
        let path = normalize_mount_path(raw_path)?;
        if is_protected_mount_path(&path) {
            return Err(LogicalError::bad_request(format!("cannot unmount {path:?}")));
        }
        let mut table = active.mounts.lock().await;
        let Some(idx) = table.entries.iter().position(|e| e.path == path) else {
            // Vault treats unmounting a missing path as success.
            return Ok(no_content());
        };
        let entry = table.entries.remove(idx);
        table.save(&self.barrier).await?;
        if let Ok(mut p) = self.plugins.write() {
            p.remove(&entry.uuid);
        }
        self.install_router(active, &table, &*active.auth_mounts.lock().await)?;
        drop(table);
        self.delete_prefix(&entry.storage_prefix()).await?;
        tracing::info!(path = %path, "successfully unmounted");
        Ok(no_content())
    }

    pub(crate) async fn delete_prefix_pub(&self, prefix: &str) -> Result<()> {
        self.delete_prefix(prefix).await
    }

    /// Removes every entry under `prefix` (the data of an unmounted engine).
    async fn delete_prefix(&self, prefix: &str) -> Result<()> {
        let mut stack = vec![prefix.to_string()];
        while let Some(p) = stack.pop() {
            for k in self.barrier.list(&p).await.map_err(crate::error::barrier_err)? {
                let full = format!("{p}{k}");
                if k.ends_with('/') {
                    stack.push(full);
                } else {
                    self.barrier.delete(&full).await.map_err(crate::error::barrier_err)?;
                }
            }
        }
        Ok(())
    }

    async fn remount(&self, active: &Active, d: &Map<String, Value>) -> Result<CoreResponse> {
        let from = d.get("from").and_then(Value::as_str).unwrap_or("");
        let to = d.get("to").and_then(Value::as_str).unwrap_or("");
        if from.is_empty() || to.is_empty() {
            return Err(LogicalError::bad_request("both 'from' and 'to' path must be specified as a string"));
        }
        let from = normalize_mount_path(from)?;
        let to = normalize_mount_path(to)?;
        if is_protected_mount_path(&from) || is_protected_mount_path(&to) {
            return Err(LogicalError::bad_request(format!(
                "cannot remount {:?}",
                if is_protected_mount_path(&from) { &from } else { &to }
            )));
        }
        let mut table = active.mounts.lock().await;
        let Some(idx) = table.entries.iter().position(|e| e.path == from) else {
            return Err(LogicalError::bad_request(format!("no matching mount at {from:?}")));
        };
        if let Some(other) =
            table.entries.iter().find(|e| e.path != from && (e.path.starts_with(&to) || to.starts_with(&e.path)))
        {
            return Err(LogicalError::bad_request(format!("path already in use at {:?}", other.path)));
        }
        // Data lives under the mount's UUID, so moving a mount is a table update.
        table.entries[idx].path = to.clone();
        table.save(&self.barrier).await?;
        self.install_router(active, &table, &*active.auth_mounts.lock().await)?;
        let id = uuid::Uuid::new_v4().to_string();
        active
            .remounts
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id.clone(), json!({ "source_mount": from, "target_mount": to, "status": "success" }));
        let mut r = CoreResponse::legacy(obj(json!({ "migration_id": id })));
        r.warnings.push(
            "Mount move has been queued. Progress will be reported in the server log, tagged with the returned migration_id"
                .to_string(),
        );
        Ok(r)
    }

    async fn read_tune(&self, active: &Active, raw: &str) -> Result<CoreResponse> {
        let path = normalize_mount_path(raw)?;
        let table = active.mounts.lock().await;
        let (def, max, e) = match table.find(&path) {
            Some(e) => {
                let (d, m) = self.mount_ttls(e);
                (d, m, Some(e.clone()))
            }
            None if path == "sys/" => (self.config.default_lease_ttl, self.config.max_lease_ttl, None),
            None => return Err(LogicalError::bad_request(format!("cannot fetch sysview for path {path:?}"))),
        };
        let mut m = obj(json!({
            "default_lease_ttl": def,
            "max_lease_ttl": max,
            "force_no_cache": e.as_ref().map(|e| e.config.force_no_cache).unwrap_or(false),
            "description": e.as_ref().map(|e| e.description.clone()).unwrap_or_else(|| "system endpoints used for control, policy and debugging".into()),
        }));
        if e.is_none() {
            // As the sys/ entry of sys/mounts shows it.
            m.insert("passthrough_request_headers".into(), json!(["Accept"]));
        }
        if let Some(e) = &e {
            if let Some(o) = &e.options {
                m.insert("options".into(), json!(o));
            }
            if let Some(v) = &e.config.listing_visibility {
                m.insert("listing_visibility".into(), v.clone().into());
            }
            for (k, v) in [
                ("audit_non_hmac_request_keys", &e.config.audit_non_hmac_request_keys),
                ("audit_non_hmac_response_keys", &e.config.audit_non_hmac_response_keys),
                ("passthrough_request_headers", &e.config.passthrough_request_headers),
                ("allowed_response_headers", &e.config.allowed_response_headers),
            ] {
                if !v.is_empty() {
                    m.insert(k.into(), json!(v));
                }
            }
        }
        Ok(CoreResponse::legacy(m))
    }

    async fn tune(&self, active: &Active, raw: &str, d: &Map<String, Value>) -> Result<CoreResponse> {
        let path = normalize_mount_path(raw)?;
        let mut table = active.mounts.lock().await;
        let Some(idx) = table.entries.iter().position(|e| e.path == path) else {
            return Err(LogicalError::bad_request(format!("cannot tune {path:?}: no mount at this path")));
        };
        let mut e = table.entries[idx].clone();
        apply_config(&mut e.config, d)?;
        let (def, max) = self.mount_ttls(&e);
        if e.config.default_lease_ttl > 0 && e.config.default_lease_ttl > max {
            return Err(LogicalError::bad_request("default lease TTL cannot be greater than the maximum lease TTL"));
        }
        let _ = def;
        // A mount's maximum may exceed the system's (a CA mount that issues ten-year roots):
        // OpenBao accepts it, and the mount's own value then applies.
        if let Some(v) = d.get("description").filter(|v| !v.is_null()) {
            e.description = parse_string("description", v)?;
        }
        let mut warnings = vec![];
        if let Some(v) = d.get("options").filter(|v| !v.is_null()) {
            let new = string_map("options", v)?;
            // A version change is an upgrade (announced, as OpenBao does); a lower one is refused.
            let version = |o: Option<&String>| o.and_then(|v| v.parse::<i64>().ok());
            // A KV mount without a version is version 1.
            let unset = if e.mount_type == "kv" { 1 } else { 0 };
            let old =
                version(e.options.as_ref().and_then(|o| o.get("version")).filter(|v| !v.is_empty())).unwrap_or(unset);
            if let Some(newv) = version(new.get("version")) {
                if newv < old {
                    return Err(LogicalError::bad_request(format!("cannot downgrade mount from version {old}")));
                }
                if newv != old {
                    warnings.push(format!(
                        "Upgrading mount from version {old} to version {newv}. This mount will be unavailable for a \
                         brief period and will resume service shortly."
                    ));
                }
            }
            let opts = e.options.get_or_insert_with(BTreeMap::new);
            for (k, v) in new {
                opts.insert(k, v);
            }
        }
        if let Some(v) = d.get("plugin_version").and_then(Value::as_str) {
            e.plugin_version = v.to_string();
        }
        backend_for(&self.registry, &e)?;
        table.entries[idx] = e;
        table.save(&self.barrier).await?;
        self.install_router(active, &table, &*active.auth_mounts.lock().await)?;
        Ok(CoreResponse { warnings, ..no_content() })
    }

    async fn ui_mounts(&self, active: &Active, path: &str, acl: Option<&coffer_acl::Acl>) -> Result<CoreResponse> {
        let authenticated = acl.is_some();
        let table = active.mounts.lock().await;
        let auth_table = active.auth_mounts.lock().await;
        let visible_at = |e: &MountEntry, prefix: &str| match acl {
            Some(a) => a.grants_under(prefix),
            None => e.config.listing_visibility.as_deref() == Some("unauth"),
        };
        let visible = |e: &MountEntry| visible_at(e, &e.path);
        if let Some(rest) = path.strip_prefix("sys/internal/ui/mounts/") {
            let router = active.router.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
            let target = rest.trim_start_matches('/');
            let found = router.resolve(target).map(|(r, _)| (r.entry.clone(), r.prefix.clone()));
            return match found {
                Some((e, prefix)) if visible_at(&e, &prefix) => {
                    let mut m = obj(e.to_json());
                    m.insert("path".into(), e.path.clone().into());
                    Ok(CoreResponse::data(m))
                }
                Some(_) if !authenticated => Err(LogicalError::permission_denied()),
                Some((e, _)) => Err(LogicalError::new(
                    ErrorKind::PermissionDenied,
                    format!(
                        "preflight capability check returned 403, please ensure client's policies grant access to path \"{}\"",
                        e.path
                    ),
                )),
                _ => Err(LogicalError::new(
                    ErrorKind::PermissionDenied,
                    format!(
                        "preflight capability check returned 403, please ensure client's policies grant access to path \"{}/\"",
                        target.split('/').next().unwrap_or("")
                    ),
                )),
            };
        }
        let mut secret = Map::new();
        for e in table.entries.iter().filter(|e| visible(e)) {
            secret.insert(e.path.clone(), e.to_json());
        }
        if authenticated {
            secret.insert("sys/".into(), sys_mount_json());
        }
        let mut auth = Map::new();
        for e in auth_table.entries.iter().filter(|e| visible_at(e, &format!("auth/{}", e.path))) {
            auth.insert(e.path.clone(), e.to_auth_json());
        }
        Ok(CoreResponse::data(obj(json!({ "secret": sorted(secret), "auth": sorted(auth) }))))
    }
}

fn apply_config(c: &mut MountConfig, d: &Map<String, Value>) -> Result<()> {
    if let Some(v) = ttl_field("default_lease_ttl", d.get("default_lease_ttl"))? {
        c.default_lease_ttl = v;
    }
    if let Some(v) = ttl_field("max_lease_ttl", d.get("max_lease_ttl"))? {
        c.max_lease_ttl = v;
    }
    if let Some(v) = d.get("force_no_cache").filter(|v| !v.is_null()) {
        c.force_no_cache = parse_bool("force_no_cache", v)?;
    }
    if d.get("listing_visibility").is_some_and(Value::is_null) {
        // As OpenBao: an explicit null resets it.
        c.listing_visibility = None;
    }
    if let Some(v) = d.get("listing_visibility").filter(|v| !v.is_null()) {
        let s = parse_string("listing_visibility", v)?;
        match s.as_str() {
            "" | "hidden" | "unauth" => c.listing_visibility = if s.is_empty() { None } else { Some(s) },
            _ => return Err(LogicalError::bad_request("listing_visibility must be \"\", \"hidden\" or \"unauth\"")),
        }
    }
    for (name, slot) in [
        ("audit_non_hmac_request_keys", &mut c.audit_non_hmac_request_keys),
        ("audit_non_hmac_response_keys", &mut c.audit_non_hmac_response_keys),
        ("allowed_response_headers", &mut c.allowed_response_headers),
    ] {
        if let Some(v) = d.get(name).filter(|v| !v.is_null()) {
            *slot = parse_string_slice(name, v)?;
        }
    }
    refuse_header_settings(d)?;
    Ok(())
}

/// Seal wrapping and external entropy are not built: a mount asking for them is refused rather
/// than stored and shown as if in force (OpenBao accepts both and acts on neither).
pub(crate) fn refuse_unbuilt_mount_flags(d: &Map<String, Value>) -> Result<()> {
    for name in ["seal_wrap", "external_entropy_access"] {
        if let Some(v) = d.get(name).filter(|v| !v.is_null()) {
            if parse_bool(name, v)? {
                return Err(LogicalError::bad_request(format!(
                    "{name} is not supported by this server: entries are protected by the barrier alone"
                )));
            }
        }
    }
    Ok(())
}

/// Backends see no request headers: a mount asking for them is refused rather than stored and
/// never honoured. (Response headers a backend sets in a raw answer — ACME's `Replay-Nonce` —
/// go out when `allowed_response_headers` names them.)
pub(crate) fn refuse_header_settings(d: &Map<String, Value>) -> Result<()> {
    for name in ["passthrough_request_headers"] {
        if let Some(v) = d.get(name).filter(|v| !v.is_null()) {
            if !parse_string_slice(name, v)?.is_empty() {
                return Err(LogicalError::bad_request(format!(
                    "{name} is not supported by this server: backends receive no request headers"
                )));
            }
        }
    }
    Ok(())
}

fn sorted(m: Map<String, Value>) -> Map<String, Value> {
    let mut v: Vec<_> = m.into_iter().collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v.into_iter().collect()
}

fn builtin_mount_json(ty: &str, description: &str, local: bool) -> Value {
    json!({
        "accessor": format!("{ty}_coffer00"),
        "config": { "default_lease_ttl": 0, "max_lease_ttl": 0, "force_no_cache": false },
        "description": description,
        "external_entropy_access": false,
        "local": local,
        "options": null,
        "plugin_version": "",
        "running_plugin_version": format!("v{}+builtin.coffer", env!("CARGO_PKG_VERSION")),
        "running_sha256": "",
        "seal_wrap": false,
        "type": ty,
        "uuid": format!("00000000-0000-0000-0000-00000000{:04}", ty.len()),
    })
}

fn sys_mount_json() -> Value {
    json!({
        "accessor": "system_coffer00",
        "config": { "default_lease_ttl": 0, "max_lease_ttl": 0, "force_no_cache": false, "passthrough_request_headers": ["Accept"] },
        "description": "system endpoints used for control, policy and debugging",
        "external_entropy_access": false,
        "local": false,
        "options": null,
        "plugin_version": "",
        "running_plugin_version": format!("v{}+builtin.coffer", env!("CARGO_PKG_VERSION")),
        "running_sha256": "",
        "seal_wrap": true,
        "type": "system",
        "uuid": "00000000-0000-0000-0000-000000000000",
    })
}

/// Formats seconds as Go's time.Duration does ("24h0m0s").
fn go_duration(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    if h > 0 {
        format!("{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|s| s.trim().to_string()).unwrap_or_default()
}

fn meminfo() -> Map<String, Value> {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let get = |k: &str| -> u64 {
        text.lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse::<u64>().ok())
            .map(|kb| kb * 1024)
            .unwrap_or(0)
    };
    let total = get("MemTotal:");
    let available = get("MemAvailable:");
    let free = get("MemFree:");
    let used = total.saturating_sub(available);
    obj(json!({
        "total": total, "available": available, "free": free, "used": used,
        "usedPercent": if total > 0 { used as f64 * 100.0 / total as f64 } else { 0.0 },
    }))
}

fn host_info() -> Map<String, Value> {
    let uptime = std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|x| x.parse::<f64>().ok()))
        .unwrap_or(0.0) as u64;
    let now = time::OffsetDateTime::now_utc();
    let kernel =
        std::fs::read_to_string("/proc/sys/kernel/osrelease").map(|s| s.trim().to_string()).unwrap_or_default();
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    obj(json!({
        "cpu": (0..cpus).map(|i| json!({ "cpu": i })).collect::<Vec<_>>(),
        "cpu_times": [],
        "disk": [],
        "host": {
            "hostname": hostname(),
            "os": std::env::consts::OS,
            "platform": std::env::consts::OS,
            "kernelVersion": kernel,
            "kernelArch": std::env::consts::ARCH,
            "uptime": uptime,
            "bootTime": (now.unix_timestamp() as u64).saturating_sub(uptime),
        },
        "memory": meminfo(),
        "timestamp": now.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
    }))
}
