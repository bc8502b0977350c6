//! The expiration manager: leases of dynamic secrets and of service tokens. The lease store
//! and its indexes are `coffer-expiration`; here is what revoking a lease means (the backend
//! that issued the secret is told, or the token is revoked), the sweeper, and the
//! `sys/leases/…` endpoints.

use crate::system_paths::LeaseOp;
use crate::token::now;
use crate::{Active, Core, CoreResponse, Result};
pub use coffer_expiration::Lease;
use coffer_sdk::field::{parse_bool, parse_duration};
use coffer_sdk::framework::FieldData;
use coffer_sdk::{LogicalError, Operation};
use serde_json::{json, Map, Value};

/// The longest wait between two attempts to revoke a lease whose backend keeps failing.
const MAX_REVOKE_BACKOFF: i64 = 300;

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

impl Core {
    async fn put_lease(&self, l: &Lease, old_expire: Option<i64>) -> Result<()> {
        Ok(self.leases.put(l, old_expire).await?)
    }

    pub(crate) async fn get_lease(&self, id: &str) -> Result<Option<Lease>> {
        Ok(self.leases.get(id).await?)
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
        let lease = Lease::for_secret(path, token_hash, secret, mount_default, mount_max, now())?;
        self.put_lease(&lease, None).await?;
        self.count_lease(path);
        Ok((lease.id, lease.ttl))
    }

    /// Registers the lease of a service token with a TTL (`auth/<mount>/…/<hash>`).
    pub(crate) async fn register_token_lease(&self, token_hash: &str, e: &crate::token::TokenEntry) -> Result<()> {
        if e.expire_time == 0 || e.token_type == "batch" {
            return Ok(());
        }
        let lease = Lease {
            id: Lease::token_lease_id(&e.path, token_hash),
            path: e.path.clone(),
            issue_time: e.creation_time,
            expire_time: e.expire_time,
            max_expire: e.creation_time + if e.max_ttl > 0 { e.max_ttl } else { self.config.max_lease_ttl },
            renewable: e.renewable,
            ttl: e.ttl,
            revokes_token: Some(token_hash.to_string()),
            ..Default::default()
        };
        self.put_lease(&lease, None).await?;
        self.count_lease(&e.path);
        Ok(())
    }

    /// Moves a token lease's expiry after a renewal.
    pub(crate) async fn touch_token_lease(&self, token_hash: &str, e: &crate::token::TokenEntry) -> Result<()> {
        let id = Lease::token_lease_id(&e.path, token_hash);
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
        self.leases.remove(l).await?;
        self.release_lease_quota(&l.path);
        Ok(())
    }

    /// Records a failed revocation: the lease stays, due now, and the sweeper tries again after
    /// a delay that doubles with each failure (1 s, 2 s, 4 s, … up to 5 minutes).
    async fn revocation_failed(&self, l: &Lease, e: &LogicalError) -> Result<()> {
        let mut l = l.clone();
        let t = now();
        l.revoke_failures = l.revoke_failures.saturating_add(1);
        let delay = (1i64 << l.revoke_failures.saturating_sub(1).min(9)).min(MAX_REVOKE_BACKOFF);
        l.next_revoke_attempt = t + delay;
        let old = l.expire_time;
        l.expire_time = l.expire_time.min(t);
        tracing::warn!(lease = %l.id, error = %e, attempts = l.revoke_failures, retry_in_secs = delay,
            "lease revocation failed; the lease stays and is retried");
        self.put_lease(&l, Some(old)).await
    }

    /// Revokes the leases of tokens revoked since the last call (token tree revocations).
    pub(crate) async fn drain_token_revocations(&self, active: &Active) -> Result<()> {
        for revoked in active.tokens.take_revoked() {
            let h = revoked.hash;
            // The token's own lease goes with it (its lease-count quota gets the room back).
            if !revoked.path.is_empty() {
                if let Some(own) = self.get_lease(&Lease::token_lease_id(&revoked.path, &h)).await? {
                    self.leases.remove(&own).await?;
                    self.release_lease_quota(&own.path);
                }
            }
            for entry in self.leases.of_token(&h).await? {
                if let Some(id) = &entry.lease_id {
                    if let Some(l) = self.get_lease(id).await? {
                        // A secret the backend cannot revoke now is not forgotten: its lease
                        // becomes due and the sweeper retries it.
                        if let Err(e) = self.revoke_lease(active, &l, false).await {
                            self.revocation_failed(&l, &e).await?;
                        }
                    }
                }
                self.leases.forget_of_token(&h, &entry).await?;
            }
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
        let buckets = self.leases.due_minutes(from, current).await?;
        let mut n = 0;
        let mut unfinished = None;
        for b in buckets {
            for entry in self.leases.due_in(b).await? {
                let Some(id) = entry.lease_id.clone() else { continue };
                match self.get_lease(&id).await? {
                    Some(l) if l.expire_time <= t && l.next_revoke_attempt > t => {
                        unfinished.get_or_insert(b);
                    }
                    Some(l) if l.expire_time <= t => {
                        if let Err(e) = self.revoke_lease(&active, &l, false).await {
                            self.revocation_failed(&l, &e).await?;
                            unfinished.get_or_insert(b.min(t.max(0) / 60));
                            continue;
                        }
                        n += 1;
                    }
                    Some(_) => {}
                    None => self.leases.forget_due(b, &entry).await?,
                }
            }
        }
        // The current minute is never finished: more of its leases come due within it.
        *active.sweep_next.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some(unfinished.unwrap_or(current).min(current));
        self.drain_token_revocations(&active).await?;
        Ok(n)
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
                    Some(l) => Ok(CoreResponse::data(l.to_json(now()))),
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
                let keys = self.leases.list(&prefix).await?;
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
                for id in self.leases.ids_under(prefix).await? {
                    if let Some(l) = self.get_lease(&id).await? {
                        self.revoke_lease(active, &l, force).await?;
                    }
                }
                self.drain_token_revocations(active).await?;
                Ok(CoreResponse::default())
            }
            LeaseOp::Tidy if write => {
                // Drop index entries whose lease is gone.
                let removed = self.leases.tidy().await?;
                // 202 Accepted, as OpenBao answers its (background) tidy, and as the token
                // store's tidy does.
                let mut r = CoreResponse { status: coffer_sdk::ResponseStatus::Accepted, ..Default::default() };
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
