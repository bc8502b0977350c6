//! Response wrapping and cubbyhole.
//!
//! Any response can be wrapped (`X-Vault-Wrap-TTL`): it is stored in the cubbyhole of a new
//! single-use token whose only powers are to be unwrapped or looked up; the client gets
//! `wrap_info` instead of the data. Cubbyhole is per-token KV storage that disappears with
//! its token.

use crate::error::barrier_err;
use crate::mounts::PrefixView;
use crate::token::{now, TokenEntry};
use crate::{Active, Core, CoreResponse, Result};
use coffer_barrier::SecureStorage;
use coffer_sdk::{Backend, LogicalError, Operation};
use serde_json::{json, Map, Value};
use std::sync::Arc;

pub use coffer_system::policy_store::{WRAPPING_POLICY, WRAPPING_POLICY_TEXT};
const MAX_WRAP_TTL: i64 = 768 * 3600;

pub use coffer_token::cubbyhole_prefix;

fn rfc3339(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| d.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// A response as stored inside a wrapping token.
fn to_stored(r: &CoreResponse) -> Value {
    json!({
        "data": r.data,
        "auth": r.auth,
        "warnings": r.warnings,
        "lease_id": r.lease_id,
        "lease_duration": r.lease_duration,
        "renewable": r.renewable,
        "mount_type": r.mount_type,
    })
}

fn from_stored(v: &Value) -> CoreResponse {
    CoreResponse {
        data: v.get("data").and_then(Value::as_object).cloned(),
        auth: v.get("auth").filter(|a| !a.is_null()).and_then(|a| serde_json::from_value(a.clone()).ok()),
        warnings: v
            .get("warnings")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|w| w.as_str().map(str::to_string)).collect())
            .unwrap_or_default(),
        lease_id: v.get("lease_id").and_then(Value::as_str).unwrap_or("").to_string(),
        lease_duration: v.get("lease_duration").and_then(Value::as_i64).unwrap_or(0),
        renewable: v.get("renewable").and_then(Value::as_bool).unwrap_or(false),
        mount_type: v.get("mount_type").and_then(Value::as_str).unwrap_or("").to_string(),
        ..Default::default()
    }
}

impl Core {
    /// The backend behind `cubbyhole/`, from the registry, built on first use.
    fn cubbyhole_backend(&self) -> Result<Arc<dyn Backend>> {
        if let Some(b) = self.cubbyhole.get() {
            return Ok(b.clone());
        }
        let built = self
            .registry
            .build_core_backend("cubbyhole")
            .unwrap_or_else(|| Err(LogicalError::internal("this server has no cubbyhole backend")))?;
        Ok(self.cubbyhole.get_or_init(|| built).clone())
    }

    /// Serves `cubbyhole/…` for the calling token.
    pub(crate) async fn handle_cubbyhole(
        &self,
        active: &Active,
        token: &str,
        entry: &TokenEntry,
        op: Operation,
        rest: &str,
        data: Map<String, Value>,
    ) -> Result<CoreResponse> {
        if entry.token_type == "batch" {
            return Err(LogicalError::bad_request("cubbyhole is not available to batch tokens"));
        }
        let view = Arc::new(PrefixView {
            barrier: self.barrier.clone(),
            prefix: cubbyhole_prefix(&active.tokens.hash(token)),
        });
        let req = coffer_sdk::Request {
            operation: op,
            path: rest.to_string(),
            data,
            mount_point: "cubbyhole/".into(),
            storage: view,
            system: coffer_sdk::SystemInfo::default(),
            remote_addr: None,
            services: None,
            client_certs: None,
            display_name: String::new(),
            entity_id: String::new(),
        };
        let resp = self.cubbyhole_backend()?.handle_request(req).await?;
        match resp {
            None if matches!(op, Operation::Read | Operation::List) => Err(LogicalError::not_found()),
            None => Ok(CoreResponse { mount_type: "cubbyhole".into(), ..Default::default() }),
            Some(r) => Ok(CoreResponse {
                data: r.data,
                warnings: r.warnings,
                mount_type: "cubbyhole".into(),
                ..Default::default()
            }),
        }
    }

    /// Wraps `resp` into a new single-use token's cubbyhole.
    pub(crate) async fn wrap(
        &self,
        active: &Active,
        resp: &CoreResponse,
        ttl: i64,
        creation_path: &str,
    ) -> Result<CoreResponse> {
        if ttl <= 0 || ttl > MAX_WRAP_TTL {
            return Err(LogicalError::bad_request(format!("wrapping TTL must be between 1s and {MAX_WRAP_TTL}s")));
        }
        let entry = TokenEntry {
            policies: vec![WRAPPING_POLICY.into()],
            path: creation_path.to_string(),
            display_name: WRAPPING_POLICY.into(),
            num_uses: 1,
            creation_time: now(),
            ttl,
            expire_time: now() + ttl,
            orphan: true,
            token_type: "service".into(),
            ..Default::default()
        };
        let (token, entry) = active.tokens.create(entry, None).await?;
        self.register_token_lease(&active.tokens.hash(&token), &entry).await?;
        let raw = serde_json::to_vec(&to_stored(resp)).map_err(|e| LogicalError::internal(e.to_string()))?;
        self.barrier
            .put(&format!("{}response", cubbyhole_prefix(&active.tokens.hash(&token))), &raw)
            .await
            .map_err(barrier_err)?;
        let info = coffer_api::WrapInfo {
            token,
            accessor: entry.accessor.clone(),
            ttl,
            creation_time: rfc3339(entry.creation_time),
            creation_path: creation_path.to_string(),
            wrapped_accessor: resp.auth.as_ref().map(|a| a.accessor.clone()).filter(|a| !a.is_empty()),
        };
        Ok(CoreResponse { wrap_info: Some(info), ..Default::default() })
    }

    /// OpenBao checks the wrapping token of `sys/wrapping/{lookup,unwrap,rewrap}` before
    /// anything else, whatever the method: the `token` parameter, or else the request's own
    /// token. Not a wrapping token → 400. A lookup is then served to anyone holding the
    /// wrapping token (GET or POST, no other token needed); `None` lets unwrap and rewrap go
    /// on through the ACL.
    pub(crate) async fn check_wrapping_token(
        &self,
        active: &Active,
        op: Operation,
        sub: &str,
        d: &Map<String, Value>,
        caller: &str,
    ) -> Result<Option<CoreResponse>> {
        let given = d.get("token").and_then(Value::as_str).filter(|t| !t.is_empty());
        let Some(token) = given.or(Some(caller).filter(|t| !t.is_empty())) else {
            return Err(LogicalError::new(
                coffer_sdk::ErrorKind::PermissionDenied,
                "error validating wrapping token: token is empty",
            ));
        };
        self.wrapping_entry(active, token).await?;
        if sub != "lookup" {
            return Ok(None);
        }
        match op {
            Operation::Read | Operation::Update | Operation::Create => {
                let mut d = Map::new();
                d.insert("token".into(), Value::String(token.to_string()));
                self.handle_wrapping(active, Operation::Update, "lookup", &d, "", None).await.map(Some)
            }
            _ => Err(LogicalError::unsupported_operation()),
        }
    }

    async fn wrapping_entry(&self, active: &Active, token: &str) -> Result<Arc<TokenEntry>> {
        match active.tokens.lookup(token).await? {
            Some(e) if e.policies.iter().any(|p| p == WRAPPING_POLICY) => Ok(e),
            _ => Err(LogicalError::bad_request("wrapping token is not valid or does not exist")),
        }
    }

    /// `sys/wrapping/{wrap,unwrap,lookup,rewrap}`. `caller` is the request's token.
    pub(crate) async fn handle_wrapping(
        &self,
        active: &Active,
        op: Operation,
        sub: &str,
        d: &Map<String, Value>,
        caller: &str,
        wrap_ttl: Option<i64>,
    ) -> Result<CoreResponse> {
        // An unknown sub-path (`sys/wrapping/lookup/` from a LIST included) is no path at all.
        if !matches!(sub, "wrap" | "unwrap" | "lookup" | "rewrap") {
            return Err(LogicalError::unsupported_path(&format!("sys/wrapping/{sub}")));
        }
        if !matches!(op, Operation::Update | Operation::Create) {
            return Err(LogicalError::unsupported_operation());
        }
        let given = d.get("token").and_then(Value::as_str).filter(|t| !t.is_empty()).map(str::to_string);
        match sub {
            "wrap" => {
                // As OpenBao: the TTL comes from X-Vault-Wrap-TTL (the CLI sends 5m by default);
                // an empty body wraps an empty object.
                let Some(ttl) = wrap_ttl else {
                    return Err(LogicalError::bad_request("endpoint requires response wrapping to be used"));
                };
                let inner = CoreResponse::data(d.clone());
                self.wrap(active, &inner, ttl, "sys/wrapping/wrap").await
            }
            "unwrap" | "rewrap" => {
                let token = given.unwrap_or_else(|| caller.to_string());
                let entry = self.wrapping_entry(active, &token).await?;
                let key = format!("{}response", cubbyhole_prefix(&active.tokens.hash(&token)));
                let raw = self.barrier.get(&key).await.map_err(barrier_err)?;
                // Single use: the wrapping token goes whatever happens next.
                active.tokens.revoke(&token, true).await?;
                let Some(raw) = raw else {
                    return Err(LogicalError::bad_request("wrapping token is not valid or does not exist"));
                };
                let v: Value = serde_json::from_slice(&raw)
                    // drop-cause: a JSON error can quote the wrapped response, which holds secrets.
                    .map_err(|_| LogicalError::internal("wrapped response is unreadable"))?;
                let inner = from_stored(&v);
                if sub == "rewrap" {
                    return self.wrap(active, &inner, entry.ttl, &entry.path).await;
                }
                // Wrapped data from sys/wrapping/wrap comes back as the data itself.
                Ok(inner)
            }
            "lookup" => {
                let token = given.unwrap_or_else(|| caller.to_string());
                let e = self.wrapping_entry(active, &token).await?;
                Ok(CoreResponse::data(obj(json!({
                    "creation_path": e.path,
                    "creation_time": rfc3339(e.creation_time),
                    "creation_ttl": e.ttl,
                }))))
            }
            _ => Err(LogicalError::unsupported_path(&format!("sys/wrapping/{sub}"))),
        }
    }
}
