//! System endpoints of access control: `sys/policy`, `sys/policies/acl`, `sys/capabilities*`,
//! `sys/internal/ui/resultant-acl`, and auth mounts (`sys/auth`).

use crate::mount_table::{normalize_mount_path, MountConfig, MountEntry};
use crate::services::{MountTableKind, SystemCore};
use crate::{obj, CoreResponse, Result};
use coffer_acl::Acl;
use coffer_barrier::SecureStorage;
use coffer_sdk::field::{parse_bool, parse_duration, parse_int, parse_string, parse_string_slice};
use coffer_sdk::{LogicalError, Operation};
use coffer_system_paths::SysRoute;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

fn paths_of(d: &Map<String, Value>) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for k in ["paths", "path"] {
        if let Some(v) = d.get(k).filter(|v| !v.is_null()) {
            out.extend(parse_string_slice(k, v)?);
        }
    }
    if out.is_empty() {
        return Err(LogicalError::bad_request("missing paths"));
    }
    Ok(out.into_iter().map(|p| p.trim_start_matches('/').to_string()).collect())
}

fn caps_response(acl: &coffer_acl::Acl, paths: &[String]) -> CoreResponse {
    let mut m = Map::new();
    for p in paths {
        m.insert(p.clone(), json!(acl.capabilities(p)));
    }
    if paths.len() == 1 {
        m.insert("capabilities".into(), json!(acl.capabilities(&paths[0])));
    }
    CoreResponse::legacy(m)
}

/// `None` when `path` is not one of these endpoints.
pub(crate) async fn handle_sys_acl<S: SystemCore>(
    s: &S,
    op: Operation,
    route: SysRoute,
    path: &str,
    d: &Map<String, Value>,
    acl: &Acl,
) -> Result<Option<CoreResponse>> {
    use Operation::*;
    let write = matches!(op, Create | Update);
    let resp = match route {
        SysRoute::LegacyPolicies if matches!(op, Read | List) => {
            let mut names = s.policies()?.list();
            names.push("root".into());
            names.sort();
            CoreResponse::legacy(obj(json!({ "keys": names, "policies": names })))
        }
        SysRoute::AclPolicies if op == List => {
            let mut names = s.policies()?.list();
            names.push("root".into());
            names.sort();
            CoreResponse::data(obj(json!({ "keys": names })))
        }
        SysRoute::LegacyPolicy | SysRoute::AclPolicy => {
            let legacy = route == SysRoute::LegacyPolicy;
            let name = path.trim_start_matches("sys/policy/").trim_start_matches("sys/policies/acl/").to_lowercase();
            match op {
                // As OpenBao: a LIST below a policy name lists nothing; the old path answers
                // an empty `policies`, the new one 404.
                List if legacy => CoreResponse::legacy(obj(json!({ "policies": null }))),
                List => return Err(LogicalError::not_found()),
                // PATCH of a policy (sys/policies/acl only): it must exist; a new text
                // replaces the old one.
                Patch if legacy => return Err(LogicalError::unsupported_operation()),
                Patch if s.policies()?.get(&name).is_none() => {
                    return Err(LogicalError::bad_request("policy not found"))
                }
                Patch if d.get("policy").is_none_or(Value::is_null) => CoreResponse::default(),
                Read => {
                    let text_key = if legacy { "rules" } else { "policy" };
                    let mut m = obj(json!({
                        "name": name,
                        "allow_slashes_in_identity_templates": false,
                        "allow_wildcards_in_identity_templates": false,
                    }));
                    if name == "root" {
                        m.insert(text_key.into(), "".into());
                        m.insert("version".into(), 0.into());
                        m.insert("cas_required".into(), false.into());
                    } else {
                        let (Some(pol), Some(meta)) = (s.policies()?.get(&name), s.policies()?.meta(&name)) else {
                            return Err(LogicalError::not_found());
                        };
                        m.insert(text_key.into(), pol.raw.clone().into());
                        m.insert("version".into(), meta.version.into());
                        m.insert("cas_required".into(), meta.cas_required.into());
                        if !meta.modified.is_empty() {
                            m.insert("modified".into(), meta.modified.into());
                        }
                    }
                    if legacy {
                        CoreResponse::legacy(m)
                    } else {
                        CoreResponse::data(m)
                    }
                }
                Create | Update | Patch => {
                    // `rules` is the old name, taken (with a warning) only by the old sys/policy path.
                    let rules = legacy.then(|| d.get("rules").filter(|v| !v.is_null())).flatten();
                    let text = d
                        .get("policy")
                        .filter(|v| !v.is_null())
                        .or(rules)
                        .map(|v| parse_string("policy", v))
                        .transpose()?
                        .unwrap_or_default();
                    if text.trim().is_empty() {
                        return Err(LogicalError::bad_request("'policy' parameter not supplied or empty"));
                    }
                    for k in ["allow_slashes_in_identity_templates", "allow_wildcards_in_identity_templates"] {
                        if let Some(v) = d.get(k).filter(|v| !v.is_null()) {
                            if parse_bool(k, v)? {
                                return Err(LogicalError::bad_request(format!(
                                    "{k}: templated policy paths are not supported by this server yet"
                                )));
                            }
                        }
                    }
                    let check = crate::policy_store::WriteCheck {
                        cas: d.get("cas").filter(|v| !v.is_null()).map(|v| parse_int("cas", v)).transpose()?,
                        cas_required: d
                            .get("cas_required")
                            .filter(|v| !v.is_null())
                            .map(|v| parse_bool("cas_required", v))
                            .transpose()?,
                    };
                    s.policies()?.set(&name, &text, check).await?;
                    let mut r = CoreResponse::default();
                    if rules.is_some() && d.get("policy").is_none_or(Value::is_null) {
                        r.warnings.push("'rules' is deprecated, please use 'policy' instead".into());
                    }
                    r
                }
                Delete => {
                    s.policies()?.delete(&name).await?;
                    CoreResponse::default()
                }
                _ => return Err(LogicalError::unsupported_operation()),
            }
        }
        SysRoute::CapabilitiesSelf if write => caps_response(acl, &paths_of(d)?),
        SysRoute::Capabilities if write => {
            let t = d.get("token").and_then(Value::as_str).unwrap_or("");
            let Some(acl) = s.acl_of_token(t).await? else {
                return Err(LogicalError::bad_request("invalid token"));
            };
            caps_response(&acl, &paths_of(d)?)
        }
        SysRoute::CapabilitiesAccessor if write => {
            let a = d.get("accessor").and_then(Value::as_str).unwrap_or("");
            let Some(acl) = s.acl_of_accessor(a).await? else {
                return Err(LogicalError::bad_request("invalid accessor"));
            };
            caps_response(&acl, &paths_of(d)?)
        }
        SysRoute::CapabilitiesSelf | SysRoute::Capabilities | SysRoute::CapabilitiesAccessor => {
            return Err(LogicalError::unsupported_operation())
        }
        SysRoute::PasswordPolicies | SysRoute::PasswordPolicy | SysRoute::PasswordGenerate => {
            let rest = path.trim_start_matches("sys/policies/password").trim_start_matches('/');
            crate::password::handle(s.barrier(), op, rest, d).await?
        }
        SysRoute::Random => {
            let rest = path.strip_prefix("sys/tools/random").or_else(|| path.strip_prefix("sys/random"));
            crate::tools::random(op, rest.unwrap_or(""), d)?
        }
        SysRoute::Hash => crate::tools::hash(op, &path["sys/tools/hash".len()..], d)?,
        SysRoute::Leases(lease_op) => s.leases(op, lease_op, path, &url_fields(path)?, d).await?,
        SysRoute::Metrics => crate::metrics::handle(s.barrier(), s.is_sealed(), op, d).await?,
        SysRoute::Reload if write => s.reload_plugins(d).await?,
        SysRoute::Catalog(catalog_op) => {
            crate::catalog::handle_catalog(s, op, catalog_op, &url_fields(path)?, d).await?
        }
        SysRoute::AuditList if op == Read => {
            let mut m = Map::new();
            for c in s.audit()?.list() {
                m.insert(
                        c.path.clone(),
                        json!({ "type": c.device_type, "description": c.description, "options": c.options, "local": c.local, "path": c.path }),
                    );
            }
            CoreResponse::legacy(m)
        }
        SysRoute::Audit => {
            let raw = &path["sys/audit/".len()..];
            let apath = normalize_mount_path(raw)?;
            match op {
                Create | Update => {
                    let ty = d.get("type").and_then(Value::as_str).unwrap_or("").to_string();
                    if ty.is_empty() {
                        return Err(LogicalError::bad_request("audit device type must be specified"));
                    }
                    if s.audit()?.list().iter().any(|c| c.path == apath) {
                        return Err(LogicalError::bad_request(format!("path already in use: {apath}")));
                    }
                    let mut options = BTreeMap::new();
                    if let Some(Value::Object(o)) = d.get("options") {
                        for (k, v) in o {
                            options.insert(k.clone(), parse_string("options", v)?);
                        }
                    }
                    let c = coffer_audit::AuditConfig {
                        path: apath,
                        device_type: ty,
                        description: d.get("description").and_then(Value::as_str).unwrap_or("").to_string(),
                        options,
                        local: d
                            .get("local")
                            .filter(|v| !v.is_null())
                            .map(|v| parse_bool("local", v))
                            .transpose()?
                            .unwrap_or(false),
                        uuid: uuid::Uuid::new_v4().to_string(),
                        declared: false,
                    };
                    s.audit()?.add(s.barrier(), c).await?;
                    save_audit_table(s).await?;
                    CoreResponse::default()
                }
                Delete => {
                    if s.audit()?.list().iter().any(|c| c.path == apath && c.declared) {
                        return Err(LogicalError::bad_request(
                            "audit devices declared in the configuration cannot be disabled through the API",
                        ));
                    }
                    if s.audit()?.remove(&apath) {
                        save_audit_table(s).await?;
                    }
                    CoreResponse::default()
                }
                _ => return Err(LogicalError::unsupported_operation()),
            }
        }
        SysRoute::AuditHash if write => {
            let apath = normalize_mount_path(&path["sys/audit-hash/".len()..])?;
            let input =
                d.get("input").and_then(Value::as_str).ok_or_else(|| LogicalError::bad_request("missing input"))?;
            match s.audit()?.hash_for(&apath, input) {
                Some(h) => CoreResponse::legacy(obj(json!({ "hash": h }))),
                None => return Err(LogicalError::bad_request(format!("unknown audit backend {apath}"))),
            }
        }
        SysRoute::ResultantAcl if op == Read => CoreResponse::data(acl.resultant()),
        SysRoute::OpenApi if matches!(op, Read | Update) => s.openapi_document(Some(acl))?,
        SysRoute::Auths if op == Read => {
            let (_, auth) = s.mount_tables().await?;
            let mut m = Map::new();
            for e in &auth {
                m.insert(e.path.clone(), e.to_auth_json());
            }
            CoreResponse::legacy(m)
        }
        // `sys/auth/` (a LIST of sys/auth) names no mount: no path of the table.
        SysRoute::Auth | SysRoute::AuthTune => {
            let rest = &path["sys/auth/".len()..];
            if let Some(mp) = rest.strip_suffix("/tune") {
                return match op {
                    Read => auth_tune_read(s, mp).await.map(Some),
                    Create | Update => auth_tune(s, mp, d).await.map(Some),
                    _ => Err(LogicalError::unsupported_operation()),
                };
            }
            match op {
                Read => {
                    let mp = normalize_mount_path(rest)?;
                    let (_, auth) = s.mount_tables().await?;
                    match auth.iter().find(|e| e.path == mp) {
                        Some(e) => CoreResponse::legacy(obj(e.to_auth_json())),
                        None => return Err(LogicalError::bad_request(format!("No auth engine at auth/{mp}"))),
                    }
                }
                Create | Update => enable_auth(s, rest, d).await?,
                Delete => disable_auth(s, rest).await?,
                _ => return Err(LogicalError::unsupported_operation()),
            }
        }
        _ => return Ok(None),
    };
    Ok(Some(resp))
}

async fn enable_auth<S: SystemCore>(s: &S, raw: &str, d: &Map<String, Value>) -> Result<CoreResponse> {
    let path = normalize_mount_path(raw)?;
    let ty = match d.get("type") {
        Some(Value::String(t)) if !t.is_empty() => t.clone(),
        _ => return Err(LogicalError::bad_request("backend type must be specified as a string")),
    };
    if ty == "token" || path == "token/" {
        return Err(LogicalError::bad_request("token credential backend cannot be instantiated"));
    }
    crate::sys::refuse_unbuilt_mount_flags(d)?;
    let mut config = MountConfig::default();
    let mut options: Option<BTreeMap<String, String>> = None;
    if let Some(Value::Object(c)) = d.get("config") {
        apply_auth_config(&mut config, &mut options, c)?;
    }
    if let Some(Value::Object(o)) = d.get("options") {
        let opts = options.get_or_insert_with(BTreeMap::new);
        for (k, v) in o {
            opts.insert(k.clone(), parse_string("options", v)?);
        }
    }
    let uuid = uuid::Uuid::new_v4().to_string();
    let ty = match d.get("plugin_name").and_then(Value::as_str).filter(|n| !n.is_empty()) {
        Some(n) if ty == "plugin" || ty == n => n.to_string(),
        _ => ty,
    };
    let mut entry = MountEntry {
        accessor: format!("auth_{}_{}", ty.replace('-', "_"), &uuid::Uuid::new_v4().simple().to_string()[..8]),
        path: path.clone(),
        mount_type: ty,
        description: d.get("description").and_then(Value::as_str).unwrap_or("").to_string(),
        uuid,
        config,
        options,
        local: d.get("local").filter(|v| !v.is_null()).map(|v| parse_bool("local", v)).transpose()?.unwrap_or(false),
        seal_wrap: false,
        external_entropy_access: false,
        plugin_version: d.get("plugin_version").and_then(Value::as_str).unwrap_or("").to_string(),
    };
    s.start_external(&mut entry, "auth").await?;
    s.edit_mount_table(MountTableKind::Auth, |t| {
        if let Some(o) = t.entries.iter().find(|e| e.path.starts_with(&path) || path.starts_with(&e.path)) {
            return Err(LogicalError::bad_request(format!("path is already in use at auth/{}", o.path)));
        }
        tracing::info!(path = %format!("auth/{path}"), r#type = %entry.mount_type, "enabled credential backend");
        t.entries.push(entry);
        Ok(((), true))
    })
    .await?;
    Ok(CoreResponse::default())
}

async fn disable_auth<S: SystemCore>(s: &S, raw: &str) -> Result<CoreResponse> {
    let path = normalize_mount_path(raw)?;
    if path == "token/" {
        return Err(LogicalError::bad_request("token credential backend cannot be disabled"));
    }
    let removed = s
        .edit_mount_table(MountTableKind::Auth, |t| {
            Ok(match t.entries.iter().position(|e| e.path == path) {
                Some(i) => (Some(t.entries.remove(i)), true),
                None => (None, false),
            })
        })
        .await?;
    let Some(e) = removed else { return Ok(CoreResponse::default()) };
    s.revoke_tokens_of_mount(&e.accessor).await?;
    crate::sys::delete_prefix(s, &e.auth_storage_prefix()).await?;
    s.mount_removed(&format!("auth/{path}")).await?;
    tracing::info!(path = %format!("auth/{path}"), "disabled credential backend");
    Ok(CoreResponse::default())
}

async fn auth_tune_read<S: SystemCore>(s: &S, raw: &str) -> Result<CoreResponse> {
    let path = normalize_mount_path(raw)?;
    let (_, auth) = s.mount_tables().await?;
    let Some(e) = auth.iter().find(|e| e.path == path) else {
        return Err(LogicalError::bad_request(format!("cannot fetch sysview for path \"auth/{path}\"")));
    };
    let (def, max) = crate::sys::mount_ttls(s.system_ttls(), e);
    let token_type =
        e.options.as_ref().and_then(|o| o.get("token_type")).cloned().unwrap_or_else(|| "default-service".into());
    let mut m = obj(json!({
        "default_lease_ttl": def, "max_lease_ttl": max, "force_no_cache": false,
        "description": e.description, "token_type": token_type,
    }));
    // As OpenBao: only when set.
    if let Some(v) = e.config.listing_visibility.as_ref().filter(|v| !v.is_empty()) {
        m.insert("listing_visibility".into(), json!(v));
    }
    Ok(CoreResponse::legacy(m))
}

async fn auth_tune<S: SystemCore>(s: &S, raw: &str, d: &Map<String, Value>) -> Result<CoreResponse> {
    let path = normalize_mount_path(raw)?;
    s.edit_mount_table(MountTableKind::Auth, |t| {
        let Some(i) = t.entries.iter().position(|e| e.path == path) else {
            return Err(LogicalError::bad_request(format!("cannot tune auth/{path}: no mount at this path")));
        };
        let mut e = t.entries[i].clone();
        let mut options = e.options.take();
        apply_auth_config(&mut e.config, &mut options, d)?;
        e.options = options;
        if let Some(v) = d.get("description").filter(|v| !v.is_null()) {
            e.description = parse_string("description", v)?;
        }
        t.entries[i] = e;
        Ok(((), true))
    })
    .await?;
    Ok(CoreResponse::default())
}

/// Stores the audit device table (the devices enabled through the API; declared ones are not
/// stored).
async fn save_audit_table<S: SystemCore>(s: &S) -> Result<()> {
    let t = coffer_audit::AuditTable { entries: s.audit()?.list().into_iter().filter(|c| !c.declared).collect() };
    let raw = serde_json::to_vec(&t).map_err(|e| LogicalError::internal(e.to_string()).with_source(e))?;
    s.barrier().put(coffer_audit::AUDIT_TABLE_PATH, &raw).await.map_err(coffer_barrier::logical_error)
}

fn apply_auth_config(
    c: &mut MountConfig,
    options: &mut Option<BTreeMap<String, String>>,
    d: &Map<String, Value>,
) -> Result<()> {
    for (k, slot) in [("default_lease_ttl", &mut c.default_lease_ttl), ("max_lease_ttl", &mut c.max_lease_ttl)] {
        match d.get(k) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if s.is_empty() => {}
            Some(Value::String(s)) if s == "system" => *slot = 0,
            Some(v) => *slot = parse_duration(k, v)?.max(0),
        }
    }
    if let Some(v) = d.get("listing_visibility").filter(|v| !v.is_null()) {
        let s = parse_string("listing_visibility", v)?;
        c.listing_visibility = if s.is_empty() { None } else { Some(s) };
    }
    if let Some(v) = d.get("token_type").filter(|v| !v.is_null()) {
        let s = parse_string("token_type", v)?;
        match s.as_str() {
            "" => {}
            "default-service" | "default-batch" | "service" | "batch" => {
                options.get_or_insert_with(BTreeMap::new).insert("token_type".into(), s);
            }
            other => return Err(LogicalError::bad_request(format!("invalid token_type {other:?}"))),
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
    crate::sys::refuse_header_settings(d)?;
    Ok(())
}

/// The fields the URL of a `sys/` path carries, as its row names them.
fn url_fields(path: &str) -> Result<coffer_sdk::framework::FieldData> {
    let rel = path.strip_prefix("sys/").unwrap_or(path);
    coffer_system_paths::sys_paths().match_url(rel).map(|(_, f)| f).ok_or_else(|| LogicalError::unsupported_path(path))
}
