//! The system backend (`sys/…`): seal ceremonies, mounts, key rotation, host and cluster info.

use crate::mount_table::{is_protected_mount_path, normalize_mount_path, MountConfig, MountEntry};
use crate::services::{MountTableKind, SystemCore};
use crate::{obj, BodyShape, CoreResponse, Result};
use coffer_acl::Acl;
use coffer_barrier::SecureStorage;
use coffer_sdk::field::{parse_bool, parse_duration, parse_int, parse_string, parse_string_slice};
use coffer_sdk::{ErrorKind, LogicalError, Operation};
use coffer_system_paths::SysRoute;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

fn no_content() -> CoreResponse {
    CoreResponse::default()
}

fn barrier_err(e: coffer_barrier::BarrierError) -> LogicalError {
    coffer_barrier::logical_error(e)
}

/// Effective (default, max) lease TTLs of a mount, given the server's (`system`).
pub fn mount_ttls(system: (i64, i64), e: &MountEntry) -> (i64, i64) {
    let max = if e.config.max_lease_ttl > 0 { e.config.max_lease_ttl } else { system.1 };
    let def = if e.config.default_lease_ttl > 0 { e.config.default_lease_ttl } else { system.0 };
    (def.min(max), max)
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

/// Paths served without a token, some of them while sealed. `None`: not one of them.
/// `has_token`: the request carries a token (then the OpenAPI document and the UI's mount
/// listing are ordinary requests, ACL-checked).
pub async fn handle_unauthenticated<S: SystemCore>(
    s: &S,
    op: Operation,
    path: &str,
    data: &Map<String, Value>,
    has_token: bool,
) -> Result<Option<CoreResponse>> {
    use Operation::*;
    // OpenBao serves these two outside its router: any other method (LIST included) is a
    // bare 405 with an empty error list.
    if matches!(path.trim_end_matches('/'), "sys/seal-status" | "sys/leader") && (op != Read || path.ends_with('/')) {
        return Err(LogicalError::with_messages(ErrorKind::UnsupportedOperation, vec![]));
    }
    let rel = path.strip_prefix("sys/").unwrap_or("");
    let Some((route, spec)) = coffer_system_paths::sys_paths().find(rel) else { return Ok(None) };
    if !spec.flags.unauthenticated {
        return Ok(None);
    }
    // The handlers read the row's coerced fields, never the raw body.
    let Some(routed) = coffer_system_paths::route_sys(rel, op, data)? else { return Ok(None) };
    let d = &routed.fields;
    let resp = match route {
        SysRoute::SealStatus => match op {
            Read => CoreResponse::raw(s.seal_status().await?),
            _ => return Err(LogicalError::unsupported_operation()),
        },
        SysRoute::Init => match op {
            Read => CoreResponse::raw(obj(json!({ "initialized": s.is_initialized().await? }))),
            Update | Create => s.initialize(d).await?,
            _ => return Err(LogicalError::unsupported_operation()),
        },
        SysRoute::Unseal => match op {
            Update | Create => s.unseal(d).await?,
            _ => return Err(LogicalError::unsupported_operation()),
        },
        SysRoute::Leader => match op {
            Read => CoreResponse::raw(s.leader_status()),
            _ => return Err(LogicalError::unsupported_operation()),
        },
        // With a token the lookup is an ordinary request (audited, ACL-checked); without
        // one the wrapping token in the body is its own credential.
        SysRoute::Wrapping if matches!(op, Update | Create) && d.contains_key("token") => {
            s.wrapping_lookup(op, d).await?
        }
        SysRoute::GenerateRoot(step) => {
            if s.is_sealed() {
                return Err(LogicalError::sealed());
            }
            s.generate_root(op, step.as_str(), d).await?
        }
        SysRoute::Rekey(step) => s.rekey(op, step.as_str(), d, false).await?,
        SysRoute::RekeyRecovery(step) => s.rekey(op, step.as_str(), d, true).await?,
        // Without a token the document lists nothing, as OpenBao's does.
        SysRoute::OpenApi if !has_token && matches!(op, Read | Update) => {
            if s.is_sealed() {
                return Err(LogicalError::sealed());
            }
            s.openapi_document(None)?
        }
        // Without a token only mounts marked unauth-visible are shown.
        SysRoute::UiMounts if !has_token => ui_mounts(s, path, None).await?,
        _ => return Ok(None),
    };
    let mut resp = resp;
    resp.warn_ignored(&routed.ignored);
    Ok(Some(resp))
}

/// `sys/…` with a token the pipeline has authorised (`acl`: its ACL): route → coerce the
/// row's fields → call. The handlers read the coerced fields, never the raw body.
pub async fn handle<S: SystemCore>(
    s: &S,
    op: Operation,
    path: &str,
    data: &Map<String, Value>,
    acl: &Acl,
) -> Result<CoreResponse> {
    let rel = path.strip_prefix("sys/").unwrap_or("");
    let Some(routed) = coffer_system_paths::route_sys(rel, op, data)? else {
        return Err(LogicalError::new(ErrorKind::NotFound, "unsupported path"));
    };
    let (route, d) = (routed.route, &routed.fields);
    let mut r = match Box::pin(crate::sys_acl::handle_sys_acl(s, op, route, path, d, acl)).await? {
        Some(r) => r,
        None => Box::pin(handle_sys(s, op, route, path, d, acl)).await?,
    };
    r.warn_ignored(&routed.ignored);
    Ok(r)
}

async fn handle_sys<S: SystemCore>(
    s: &S,
    op: Operation,
    route: SysRoute,
    path: &str,
    d: &Map<String, Value>,
    acl: &Acl,
) -> Result<CoreResponse> {
    use Operation::*;
    match route {
        SysRoute::Seal => match op {
            Update | Create => {
                s.seal().await?;
                Ok(no_content())
            }
            _ => Err(LogicalError::unsupported_operation()),
        },
        SysRoute::Mounts => match op {
            Read => {
                let (secret, _) = s.mount_tables().await?;
                let mut m = Map::new();
                for e in &secret {
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
            Update | Create => remount(s, d).await,
            _ => Err(LogicalError::unsupported_operation()),
        },
        SysRoute::Rotate => match op {
            Update | Create => {
                s.barrier().rotate().await.map_err(barrier_err)?;
                Ok(no_content())
            }
            _ => Err(LogicalError::unsupported_operation()),
        },
        SysRoute::KeyStatus => match op {
            Read => {
                let k = s.barrier().key_status().map_err(barrier_err)?;
                Ok(CoreResponse::legacy(obj(json!({
                    "term": k.term, "install_time": k.install_time, "encryptions": k.encryptions,
                }))))
            }
            _ => Err(LogicalError::unsupported_operation()),
        },
        SysRoute::RotateConfig => match op {
            Read => {
                let c = s.barrier().rotation_config().map_err(barrier_err)?;
                Ok(CoreResponse::legacy(obj(json!({
                    "max_operations": c.max_operations,
                    "enabled": c.enabled,
                    "interval": if c.interval == 0 { json!(0) } else { json!(go_duration(c.interval)) },
                }))))
            }
            Update | Create => {
                let mut c = s.barrier().rotation_config().map_err(barrier_err)?;
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
                s.barrier().set_rotation_config(c).await.map_err(barrier_err)?;
                Ok(no_content())
            }
            _ => Err(LogicalError::unsupported_operation()),
        },
        SysRoute::HostInfo => match op {
            Read => Ok(CoreResponse::data(host_info())),
            _ => Err(LogicalError::unsupported_operation()),
        },
        SysRoute::HaStatus => match op {
            Read if s.ha_enabled() => {
                let nodes = s.ha_nodes().await.unwrap_or_default();
                Ok(CoreResponse::legacy(obj(json!({ "nodes": nodes }))))
            }
            Read => {
                let (api_address, cluster_address) = s.node_addresses();
                Ok(CoreResponse::legacy(obj(json!({
                    "nodes": [{
                        "hostname": hostname(),
                        "api_address": api_address,
                        "cluster_address": cluster_address,
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
        SysRoute::Raw => crate::raw::handle_raw(s, op, path, d).await,
        SysRoute::Snapshot { force } => Box::pin(s.snapshot(op, force, d)).await,
        SysRoute::SnapshotAuto(what) => Box::pin(s.snapshot_auto(op, what, d)).await,
        SysRoute::QuotaConfig | SysRoute::Quotas(_) | SysRoute::Quota(_) => Box::pin(s.quotas(op, route, d)).await,
        SysRoute::Loggers | SysRoute::Monitor | SysRoute::InFlight | SysRoute::SanitizedConfig | SysRoute::Counters => {
            crate::runtime::handle_runtime(s, op, path, d).await
        }
        SysRoute::Cors => s.cors().handle(s.barrier(), op, d).await,
        SysRoute::StepDown => match op {
            Update | Create => {
                s.step_down()?;
                Ok(no_content())
            }
            _ => Err(LogicalError::unsupported_operation()),
        },
        SysRoute::GenerateRootToken(step) => {
            let mut r = s.generate_root(op, step.as_str(), d).await?;
            r.shape = BodyShape::Envelope;
            Ok(r)
        }
        SysRoute::RekeyBackup => s.rekey_backup(op, false).await,
        SysRoute::RecoveryBackup => s.rekey_backup(op, true).await,
        SysRoute::RotateRecovery(step) => {
            let mut r = s.rekey(op, step.as_str(), d, true).await?;
            r.shape = BodyShape::Envelope;
            Ok(r)
        }
        SysRoute::RotateRoot(step) => {
            let mut r = s.rekey(op, step.as_str(), d, false).await?;
            r.shape = BodyShape::Envelope;
            Ok(r)
        }
        SysRoute::UiMounts => {
            if op != Read {
                return Err(LogicalError::unsupported_operation());
            }
            ui_mounts(s, path, Some(acl)).await
        }
        SysRoute::RemountStatus => {
            if op != Read {
                return Err(LogicalError::unsupported_operation());
            }
            let id = &path["sys/remount/status/".len()..];
            match s.remount_status(id) {
                Some(v) => Ok(CoreResponse::data(obj(json!({ "migration_id": id, "migration_info": v })))),
                None => Err(LogicalError::not_found()),
            }
        }
        SysRoute::MountTune if path.starts_with("sys/mounts/auth/") => {
            // `bao auth tune` tunes auth mounts through the secret-mount path.
            let inner = format!("sys/auth/{}", &path["sys/mounts/auth/".len()..]);
            match Box::pin(crate::sys_acl::handle_sys_acl(s, op, SysRoute::AuthTune, &inner, d, acl)).await? {
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
                    Read => read_tune(s, mp).await,
                    Update | Create => tune(s, mp, d).await,
                    _ => Err(LogicalError::unsupported_operation()),
                };
            }
            match op {
                Read => {
                    let mp = normalize_mount_path(rest)?;
                    let (secret, _) = s.mount_tables().await?;
                    match secret.iter().find(|e| e.path == mp) {
                        Some(e) => Ok(CoreResponse::legacy(obj(e.to_json()))),
                        None if mp == "sys/" => Ok(CoreResponse::legacy(obj(sys_mount_json()))),
                        None => Err(LogicalError::bad_request(format!("No secret engine mount at {mp}"))),
                    }
                }
                Update | Create => mount(s, rest, d).await,
                Delete => unmount(s, rest).await,
                _ => Err(LogicalError::unsupported_operation()),
            }
        }
        // The status endpoints answer before routing (`handle_unauthenticated`, the HTTP
        // layer's health check): any other operation on them is not supported.
        SysRoute::SealStatus | SysRoute::Health | SysRoute::Init | SysRoute::Unseal | SysRoute::Leader => {
            Err(LogicalError::unsupported_operation())
        }
        // Served by `handle_sys_acl`, the core's response wrapping or without a token: what
        // reaches here is an operation they do not take.
        _ => Err(LogicalError::unsupported_operation()),
    }
}

/// Whether a mount at `path` would overlap `other` (one is a prefix of the other).
fn overlaps(path: &str, other: &str) -> bool {
    other.starts_with(path) || path.starts_with(other)
}

async fn mount<S: SystemCore>(s: &S, raw_path: &str, d: &Map<String, Value>) -> Result<CoreResponse> {
    let path = normalize_mount_path(raw_path)?;
    let mount_type = match d.get("type") {
        Some(Value::String(t)) if !t.is_empty() => t.clone(),
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
        if config.default_lease_ttl > 0 && config.max_lease_ttl > 0 && config.default_lease_ttl > config.max_lease_ttl {
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
    let mount_type = match d.get("plugin_name").and_then(Value::as_str).filter(|n| !n.is_empty()) {
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
        let (secret, _) = s.mount_tables().await?;
        if let Some(other) = secret.iter().find(|e| overlaps(&path, &e.path)) {
            return Err(LogicalError::bad_request(format!("path is already in use at {}", other.path)));
        }
    }
    // Builtins are checked; external plugins are verified and started before anything is stored.
    s.start_external(&mut entry, "secret").await?;
    s.edit_mount_table(MountTableKind::Secret, |table| {
        if let Some(other) = table.entries.iter().find(|e| overlaps(&path, &e.path)) {
            return Err(LogicalError::bad_request(format!("path is already in use at {}", other.path)));
        }
        tracing::info!(path = %path, r#type = %entry.mount_type, "successful mount");
        table.entries.push(entry);
        Ok(((), true))
    })
    .await?;
    Ok(no_content())
}

async fn unmount<S: SystemCore>(s: &S, raw_path: &str) -> Result<CoreResponse> {
    let path = normalize_mount_path(raw_path)?;
    if is_protected_mount_path(&path) {
        return Err(LogicalError::bad_request(format!("cannot unmount {path:?}")));
    }
    let removed = s
        .edit_mount_table(MountTableKind::Secret, |table| {
            // Vault treats unmounting a missing path as success.
            Ok(match table.entries.iter().position(|e| e.path == path) {
                Some(idx) => (Some(table.entries.remove(idx)), true),
                None => (None, false),
            })
        })
        .await?;
    let Some(entry) = removed else { return Ok(no_content()) };
    s.forget_plugin(&entry.uuid);
    delete_prefix(s, &entry.storage_prefix()).await?;
    s.mount_removed(&path).await?;
    tracing::info!(path = %path, "successfully unmounted");
    Ok(no_content())
}

/// Removes every entry under `prefix` (the data of an unmounted engine or auth method).
pub(crate) async fn delete_prefix<S: SystemCore>(s: &S, prefix: &str) -> Result<()> {
    let barrier = s.barrier();
    let mut stack = vec![prefix.to_string()];
    while let Some(p) = stack.pop() {
        for k in barrier.list(&p).await.map_err(barrier_err)? {
            let full = format!("{p}{k}");
            if k.ends_with('/') {
                stack.push(full);
            } else {
                barrier.delete(&full).await.map_err(barrier_err)?;
            }
        }
    }
    Ok(())
}

async fn remount<S: SystemCore>(s: &S, d: &Map<String, Value>) -> Result<CoreResponse> {
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
    s.edit_mount_table(MountTableKind::Secret, |table| {
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
        Ok(((), true))
    })
    .await?;
    let id = uuid::Uuid::new_v4().to_string();
    s.record_remount(&id, json!({ "source_mount": from, "target_mount": to, "status": "success" }));
    let mut r = CoreResponse::legacy(obj(json!({ "migration_id": id })));
    r.warnings.push(
        "Mount move has been queued. Progress will be reported in the server log, tagged with the returned migration_id"
            .to_string(),
    );
    Ok(r)
}

async fn read_tune<S: SystemCore>(s: &S, raw: &str) -> Result<CoreResponse> {
    let path = normalize_mount_path(raw)?;
    let (secret, _) = s.mount_tables().await?;
    let (def, max, e) = match secret.into_iter().find(|e| e.path == path) {
        Some(e) => {
            let (d, m) = mount_ttls(s.system_ttls(), &e);
            (d, m, Some(e))
        }
        None if path == "sys/" => {
            let (d, m) = s.system_ttls();
            (d, m, None)
        }
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

async fn tune<S: SystemCore>(s: &S, raw: &str, d: &Map<String, Value>) -> Result<CoreResponse> {
    let path = normalize_mount_path(raw)?;
    let system = s.system_ttls();
    let warnings = s
        .edit_mount_table(MountTableKind::Secret, |table| {
            let Some(idx) = table.entries.iter().position(|e| e.path == path) else {
                return Err(LogicalError::bad_request(format!("cannot tune {path:?}: no mount at this path")));
            };
            let mut e = table.entries[idx].clone();
            apply_config(&mut e.config, d)?;
            let (_, max) = mount_ttls(system, &e);
            if e.config.default_lease_ttl > 0 && e.config.default_lease_ttl > max {
                return Err(LogicalError::bad_request(
                    "default lease TTL cannot be greater than the maximum lease TTL",
                ));
            }
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
                let old = version(e.options.as_ref().and_then(|o| o.get("version")).filter(|v| !v.is_empty()))
                    .unwrap_or(unset);
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
            s.check_backend(&e)?;
            table.entries[idx] = e;
            Ok((warnings, true))
        })
        .await?;
    Ok(CoreResponse { warnings, ..no_content() })
}

async fn ui_mounts<S: SystemCore>(s: &S, path: &str, acl: Option<&Acl>) -> Result<CoreResponse> {
    let authenticated = acl.is_some();
    let (table, auth_table) = s.mount_tables().await?;
    let visible_at = |e: &MountEntry, prefix: &str| match acl {
        Some(a) => a.grants_under(prefix),
        None => e.config.listing_visibility.as_deref() == Some("unauth"),
    };
    let visible = |e: &MountEntry| visible_at(e, &e.path);
    if let Some(rest) = path.strip_prefix("sys/internal/ui/mounts/") {
        let target = rest.trim_start_matches('/');
        return match s.resolve_mount(target) {
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
    for e in table.iter().filter(|e| visible(e)) {
        secret.insert(e.path.clone(), e.to_json());
    }
    if authenticated {
        secret.insert("sys/".into(), sys_mount_json());
    }
    let mut auth = Map::new();
    for e in auth_table.iter().filter(|e| visible_at(e, &format!("auth/{}", e.path))) {
        auth.insert(e.path.clone(), e.to_auth_json());
    }
    Ok(CoreResponse::data(obj(json!({ "secret": sorted(secret), "auth": sorted(auth) }))))
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

/// The host's name (`/proc/sys/kernel/hostname`, empty when unreadable).
pub fn hostname() -> String {
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

/// `sys/host-info`: the host as `/proc` describes it.
pub fn host_info() -> Map<String, Value> {
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
