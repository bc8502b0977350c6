//! The expiration manager: leases of dynamic secrets and of service tokens.
//!
//! Everything lives in storage, nothing per lease in memory:
//! - `sys/expire/id/<lease id>`: the lease (its id is the issuing path plus a random suffix,
//!   so `sys/leases/lookup/<prefix>` lists like a directory);
//! - `sys/expire/time/<minute>/<escaped id>`: a time index the sweeper walks in order, so it
//!   only ever reads the leases that are due;
//! - `sys/expire/token/<token hash>/<escaped id>`: leases to revoke with their token.

use crate::error::barrier_err;
use crate::system_paths::LeaseOp;
use crate::token::now;
use crate::{Active, Core, CoreResponse, Result};
use coffer_barrier::SecureStorage;
use coffer_sdk::field::{parse_bool, parse_duration};
use coffer_sdk::framework::FieldData;
use coffer_sdk::{LogicalError, Operation};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

const ID: &str = "sys/expire/id/";
const TIME: &str = "sys/expire/time/";
const BY_TOKEN: &str = "sys/expire/token/";

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Lease {
    pub id: String,
    /// Request path that issued it (relative to the API root).
    pub path: String,
    pub issue_time: i64,
    pub expire_time: i64,
    pub max_expire: i64,
    #[serde(default)]
    pub last_renewal: i64,
    pub renewable: bool,
    pub ttl: i64,
    /// Storage hash of the token that obtained it (empty for token leases).
    #[serde(default)]
    pub token_hash: String,
    /// For token leases: the token's storage hash; revoking the lease revokes the token.
    #[serde(default)]
    pub revokes_token: Option<String>,
    #[serde(default)]
    pub internal: Map<String, Value>,
}

/// The expiry index bucket of a time: its minute, zero-padded so names sort numerically.
fn bucket(t: i64) -> String {
    bucket_name(t.max(0) / 60)
}

fn bucket_name(minute: i64) -> String {
    format!("{minute:012}")
}

fn escape(id: &str) -> String {
    hex::encode(id.as_bytes())
}

fn unescape(s: &str) -> Option<String> {
    hex::decode(s).ok().and_then(|b| String::from_utf8(b).ok())
}

fn rfc3339(t: i64) -> Value {
    if t == 0 {
        return Value::Null;
    }
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| d.format(&time::format_description::well_known::Rfc3339).ok())
        .map(Value::String)
        .unwrap_or(Value::Null)
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

impl Core {
    async fn put_lease(&self, l: &Lease, old_expire: Option<i64>) -> Result<()> {
        let raw = serde_json::to_vec(l).map_err(|e| LogicalError::internal(e.to_string()))?;
        let mut ops = vec![(format!("{ID}{}", l.id), Some(raw))];
        if let Some(old) = old_expire.filter(|o| *o != l.expire_time) {
            ops.push((format!("{TIME}{}/{}", bucket(old), escape(&l.id)), None));
        }
        ops.push((format!("{TIME}{}/{}", bucket(l.expire_time), escape(&l.id)), Some(Vec::new())));
        if !l.token_hash.is_empty() {
            ops.push((format!("{BY_TOKEN}{}/{}", l.token_hash, escape(&l.id)), Some(Vec::new())));
        }
        self.barrier.transaction(ops).await.map_err(barrier_err)
    }

    pub(crate) async fn get_lease(&self, id: &str) -> Result<Option<Lease>> {
        // Ids come from clients: one that cannot be a storage key names no lease.
        if id.is_empty() || id.contains("..") || id.contains('\0') {
            return Ok(None);
        }
        match self.barrier.get(&format!("{ID}{id}")).await.map_err(barrier_err)? {
            Some(raw) => serde_json::from_slice(&raw)
                .map(Some)
                .map_err(|e| LogicalError::internal("lease entry is unreadable").with_source(e)),
            None => Ok(None),
        }
    }

    /// Registers a lease for a secret a backend returned; returns (lease id, ttl).
    pub(crate) async fn register_secret_lease(
        &self,
        path: &str,
        token_hash: &str,
        secret: &coffer_sdk::SecretLease,
        mount_default: i64,
        mount_max: i64,
    ) -> Result<(String, i64)> {
        let suffix = coffer_crypto::random_base62(24).map_err(|e| LogicalError::internal(e.to_string()))?;
        let id = format!("{}/{suffix}", path.trim_end_matches('/'));
        let max = if secret.max_ttl > 0 { secret.max_ttl.min(mount_max) } else { mount_max };
        let ttl = if secret.ttl > 0 { secret.ttl.min(max) } else { mount_default.min(max) };
        let t = now();
        let lease = Lease {
            id: id.clone(),
            path: path.to_string(),
            issue_time: t,
            expire_time: t + ttl,
            max_expire: t + max,
            renewable: secret.renewable,
            ttl,
            token_hash: token_hash.to_string(),
            internal: secret.internal.clone(),
            ..Default::default()
        };
        self.put_lease(&lease, None).await?;
        Ok((id, ttl))
    }

    /// Registers the lease of a service token with a TTL (`auth/<mount>/…/<hash>`).
    pub(crate) async fn register_token_lease(&self, token_hash: &str, e: &crate::token::TokenEntry) -> Result<()> {
        if e.expire_time == 0 || e.token_type == "batch" {
            return Ok(());
        }
        let lease = Lease {
            id: format!("{}/{token_hash}", e.path.trim_end_matches('/')),
            path: e.path.clone(),
            issue_time: e.creation_time,
            expire_time: e.expire_time,
            max_expire: e.creation_time + if e.max_ttl > 0 { e.max_ttl } else { self.config.max_lease_ttl },
            renewable: e.renewable,
            ttl: e.ttl,
            revokes_token: Some(token_hash.to_string()),
            ..Default::default()
        };
        self.put_lease(&lease, None).await
    }

    /// Moves a token lease's expiry after a renewal.
    pub(crate) async fn touch_token_lease(&self, token_hash: &str, e: &crate::token::TokenEntry) -> Result<()> {
        let id = format!("{}/{token_hash}", e.path.trim_end_matches('/'));
        if let Some(mut l) = self.get_lease(&id).await? {
            let old = l.expire_time;
            l.expire_time = e.expire_time;
            l.last_renewal = now();
            self.put_lease(&l, Some(old)).await?;
        }
        Ok(())
    }

    /// Revokes one lease: the backend is told (unless `force` ignores its error), then the
    /// lease's entries go.
    pub(crate) async fn revoke_lease(&self, active: &Active, l: &Lease, force: bool) -> Result<()> {
        if let Some(h) = &l.revokes_token {
            active.tokens.revoke_hash(h, true).await?;
        } else {
            let router = active.router.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
            if let Some((route, rest)) = router.resolve(&l.path) {
                let req = self.backend_request(route, rest, Operation::Delete, Map::new(), None);
                if let Err(e) = route.backend.revoke_secret(&req, &l.internal).await {
                    if !force {
                        return Err(LogicalError::bad_request(format!("failed to revoke lease {}: {e}", l.id)));
                    }
                    tracing::warn!(lease = %l.id, error = %e, "backend failed to revoke; lease removed (force)");
                }
            }
        }
        let mut ops =
            vec![(format!("{ID}{}", l.id), None), (format!("{TIME}{}/{}", bucket(l.expire_time), escape(&l.id)), None)];
        if !l.token_hash.is_empty() {
            ops.push((format!("{BY_TOKEN}{}/{}", l.token_hash, escape(&l.id)), None));
        }
        self.barrier.transaction(ops).await.map_err(barrier_err)
    }

    /// Every lease id under `prefix` (depth first).
    async fn lease_ids_under(&self, prefix: &str) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let start = prefix.trim_start_matches('/');
        if let Some(l) = self.get_lease(start.trim_end_matches('/')).await? {
            out.push(l.id);
        }
        let mut stack =
            vec![if start.is_empty() || start.ends_with('/') { start.to_string() } else { format!("{start}/") }];
        while let Some(p) = stack.pop() {
            for k in self.barrier.list(&format!("{ID}{p}")).await.map_err(barrier_err)? {
                if k.ends_with('/') {
                    stack.push(format!("{p}{k}"));
                } else {
                    out.push(format!("{p}{k}"));
                }
            }
        }
        Ok(out)
    }

    /// Revokes the leases of tokens revoked since the last call (token tree revocations).
    pub(crate) async fn drain_token_revocations(&self, active: &Active) -> Result<()> {
        for h in active.tokens.take_revoked() {
            for k in self.barrier.list(&format!("{BY_TOKEN}{h}/")).await.map_err(barrier_err)? {
                if let Some(id) = unescape(&k) {
                    if let Some(l) = self.get_lease(&id).await? {
                        self.revoke_lease(active, &l, true).await?;
                    }
                }
                self.barrier.delete(&format!("{BY_TOKEN}{h}/{k}")).await.map_err(barrier_err)?;
            }
            // The token's own lease, if any, is no longer needed.
        }
        Ok(())
    }

    /// Revokes every lease that is due. Returns how many.
    ///
    /// Buckets are minutes. The first sweep after unseal lists every bucket; later sweeps only
    /// look at the buckets from the first one not yet finished up to the current minute, so a
    /// sweep costs what is due, not what is stored (with 10^5 token leases, listing the whole
    /// index every second stalled requests for tens of ms). A bucket with a lease whose
    /// revocation failed stays unfinished and is retried.
    pub async fn expire_due(&self) -> Result<usize> {
        let Some(active) = self.active() else { return Ok(0) };
        let t = now();
        let current = t.max(0) / 60;
        let from = *active.sweep_next.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let buckets: Vec<i64> = match from {
            Some(first) => (first.min(current)..=current).collect(),
            None => {
                let mut all = Vec::new();
                for b in self.barrier.list(TIME).await.map_err(barrier_err)? {
                    match b.trim_end_matches('/').parse::<i64>() {
                        Ok(n) if n <= current => all.push(n),
                        Ok(_) => break,
                        Err(_) => continue,
                    }
                }
                all
            }
        };
        let mut n = 0;
        let mut unfinished = None;
        for b in buckets {
            let b_name = bucket_name(b);
            for k in self.barrier.list(&format!("{TIME}{b_name}/")).await.map_err(barrier_err)? {
                let Some(id) = unescape(&k) else { continue };
                match self.get_lease(&id).await? {
                    Some(l) if l.expire_time <= t => {
                        if let Err(e) = self.revoke_lease(&active, &l, false).await {
                            tracing::warn!(lease = %id, error = %e, "lease revocation failed; will retry");
                            unfinished.get_or_insert(b);
                            continue;
                        }
                        n += 1;
                    }
                    Some(_) => {}
                    None => self.barrier.delete(&format!("{TIME}{b_name}/{k}")).await.map_err(barrier_err)?,
                }
            }
        }
        // The current minute is never finished: more of its leases come due within it.
        *active.sweep_next.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some(unfinished.unwrap_or(current).min(current));
        self.drain_token_revocations(&active).await?;
        Ok(n)
    }

    fn lease_json(l: &Lease) -> Map<String, Value> {
        let t = now();
        obj(json!({
            "id": l.id,
            "issue_time": rfc3339(l.issue_time),
            "expire_time": rfc3339(l.expire_time),
            "last_renewal": rfc3339(l.last_renewal),
            "renewable": l.renewable,
            "ttl": (l.expire_time - t).max(0),
        }))
    }

    /// `sys/leases/…`, `sys/renew`, `sys/revoke…` (legacy).
    pub(crate) async fn handle_leases(
        &self,
        active: &Active,
        op: Operation,
        route: LeaseOp,
        path: &str,
        url: &FieldData,
        d: &Map<String, Value>,
    ) -> Result<CoreResponse> {
        use Operation::*;
        let write = matches!(op, Update | Create);
        // The lease id from the body, else from the URL (`sys/leases/renew/<id>`).
        let lease_id = |d: &Map<String, Value>| -> String {
            d.get("lease_id")
                .and_then(Value::as_str)
                .map(str::to_string)
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| url.str("url_lease_id").unwrap_or("").trim_start_matches('/').to_string())
        };
        match route {
            LeaseOp::Lookup if write => {
                let id = lease_id(d);
                match self.get_lease(&id).await? {
                    Some(l) => Ok(CoreResponse::data(Self::lease_json(&l))),
                    None => Err(LogicalError::bad_request("invalid lease")),
                }
            }
            LeaseOp::Lookup | LeaseOp::LookupList => {
                if op != List {
                    return Err(LogicalError::unsupported_operation());
                }
                // The row's pattern leaves a trailing slash out of the prefix; the listing keeps it.
                let mut prefix = url.str("prefix").unwrap_or("").trim_start_matches('/').to_string();
                if !prefix.is_empty() && path.ends_with('/') {
                    prefix.push('/');
                }
                let keys = self.barrier.list(&format!("{ID}{prefix}")).await.map_err(barrier_err)?;
                if keys.is_empty() {
                    return Err(LogicalError::not_found());
                }
                Ok(CoreResponse::data(obj(json!({ "keys": keys }))))
            }
            LeaseOp::Renew if write => {
                let id = lease_id(d);
                let Some(mut l) = self.get_lease(&id).await? else {
                    return Err(LogicalError::bad_request("lease not found"));
                };
                // As OpenBao: a token's lease is renewed by renewing the token (auth/token/renew).
                if l.revokes_token.is_some() {
                    return Err(LogicalError::bad_request("tokens cannot be renewed through this endpoint"));
                }
                if !l.renewable {
                    return Err(LogicalError::bad_request("lease is not renewable"));
                }
                let inc = match d.get("increment").filter(|v| !v.is_null()) {
                    Some(v) => parse_duration("increment", v)?.max(0),
                    None => l.ttl,
                };
                let t = now();
                let mut ttl = inc.min(l.max_expire - t).max(0);
                let router = active.router.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
                if let Some((route, rest)) = router.resolve(&l.path) {
                    let req = self.backend_request(route, rest, Update, Map::new(), None);
                    ttl = route.backend.renew_secret(&req, &l.internal, ttl).await?.min(ttl);
                }
                let old = l.expire_time;
                l.expire_time = t + ttl;
                l.last_renewal = t;
                self.put_lease(&l, Some(old)).await?;
                Ok(CoreResponse { lease_id: l.id, lease_duration: ttl, renewable: true, ..Default::default() })
            }
            LeaseOp::Revoke if write => {
                let id = lease_id(d);
                if let Some(l) = self.get_lease(&id).await? {
                    self.revoke_lease(active, &l, false).await?;
                }
                self.drain_token_revocations(active).await?;
                Ok(CoreResponse::default())
            }
            LeaseOp::RevokePrefix | LeaseOp::RevokeForce if write => {
                let force = route == LeaseOp::RevokeForce;
                let prefix = url.str("prefix").unwrap_or("");
                if prefix.is_empty() {
                    return Err(LogicalError::bad_request("a prefix is required"));
                }
                let sync = match d.get("sync").filter(|v| !v.is_null()) {
                    Some(v) => parse_bool("sync", v)?,
                    None => true,
                };
                let _ = sync;
                for id in self.lease_ids_under(prefix).await? {
                    if let Some(l) = self.get_lease(&id).await? {
                        self.revoke_lease(active, &l, force).await?;
                    }
                }
                self.drain_token_revocations(active).await?;
                Ok(CoreResponse::default())
            }
            LeaseOp::Tidy if write => {
                // Drop index entries whose lease is gone, and leases of tokens that are gone.
                let mut removed = 0;
                for b in self.barrier.list(TIME).await.map_err(barrier_err)? {
                    for k in self.barrier.list(&format!("{TIME}{b}")).await.map_err(barrier_err)? {
                        let stale = match unescape(&k) {
                            Some(id) => self.get_lease(&id).await?.is_none(),
                            None => true,
                        };
                        if stale {
                            self.barrier.delete(&format!("{TIME}{b}{k}")).await.map_err(barrier_err)?;
                            removed += 1;
                        }
                    }
                }
                let mut r = CoreResponse::default();
                r.warnings.push(format!("Tidy operation completed; removed {removed} stale index entries"));
                Ok(r)
            }
            // An operation the endpoint does not serve: 404 naming the path, as it always was.
            _ => {
                let sub = path.strip_prefix("sys/leases/").or_else(|| path.strip_prefix("sys/")).unwrap_or(path);
                Err(LogicalError::unsupported_path(&format!("sys/leases/{sub}")))
            }
        }
    }
}
