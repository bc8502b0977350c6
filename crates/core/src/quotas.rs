//! Resource quotas: the `sys/quotas/…` endpoints, their storage behind the barrier, and the
//! checks the request pipeline makes (rate limits before anything else, lease counts before a
//! request that may make a lease). Matching and counting are `coffer-quota`'s.

use crate::error::barrier_err;
use crate::system_paths::{QuotaKind, SysRoute};
use crate::{Active, Core, CoreResponse, Result};
use coffer_barrier::SecureStorage;
use coffer_quota::{LeaseCountQuota, QuotaConfig, QuotaError, RateLimitQuota, RateVerdict, Scope, Target};
use coffer_sdk::{ErrorKind, LogicalError, Operation};
use serde_json::{json, Map, Value};
use std::net::IpAddr;
use std::sync::Arc;

const CONFIG_PATH: &str = "core/quotas/config";
/// The longest a rate-limit refusal is held before it is sent ([`RateCheck::tarpit`]).
pub const MAX_TARPIT: std::time::Duration = std::time::Duration::from_secs(1);
const RATE_PREFIX: &str = "core/quotas/rate-limit/";
const LEASE_PREFIX: &str = "core/quotas/lease-count/";

fn quota_err(e: QuotaError) -> LogicalError {
    LogicalError::bad_request(e.to_string())
}

fn invalid(field: &str) -> LogicalError {
    LogicalError::bad_request(format!("'{field}' is invalid"))
}

/// A rate-limit check's verdict and whether its headers go out.
#[derive(Debug, Clone)]
pub struct RateCheck {
    pub verdict: RateVerdict,
    /// `enable_rate_limit_response_headers`.
    pub headers: bool,
    /// `enable_rate_limit_audit_logging`.
    pub audit: bool,
}

impl RateCheck {
    /// How long a refusal is held before it is sent: until the client's budget refills, at
    /// most [`MAX_TARPIT`]. A client that honours `Retry-After` never notices; one that
    /// retries at once, on a keep-alive connection, sends at most a request per connection
    /// per this long instead of as many as the server can refuse — so refusing it does not
    /// take the CPU other clients need.
    pub fn tarpit(&self) -> std::time::Duration {
        self.verdict.reset.min(MAX_TARPIT)
    }

    /// The headers to send: `X-Ratelimit-*` always, `Retry-After` with a refusal.
    pub fn header_pairs(&self) -> Vec<(&'static str, String)> {
        if !self.headers {
            return Vec::new();
        }
        let v = &self.verdict;
        let mut h = vec![
            ("x-ratelimit-limit", v.limit.to_string()),
            ("x-ratelimit-remaining", v.remaining.to_string()),
            ("x-ratelimit-reset", v.reset_secs.to_string()),
        ];
        if !v.allowed {
            h.push(("retry-after", v.reset_secs.to_string()));
        }
        h
    }
}

/// The mount serving `path` (with its trailing `/`), the core's own trees included: the
/// metrics' mount label, which resolves exactly that.
fn mount_of(active: &Active, path: &str) -> Option<String> {
    let router = active.router.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    match crate::metrics::mount_label(Some(&router), path.trim_start_matches('/')) {
        "unmounted/" => None,
        m => Some(m.to_string()),
    }
}

fn is_auth_mount(mount: &str) -> bool {
    mount.starts_with("auth/")
}

impl Core {
    /// Checks a request against the rate-limit quotas before it is read further. `None`: no
    /// quota applies (none defined, sealed, none matches, exempt).
    pub fn check_rate_quota(&self, path: &str, client: Option<IpAddr>) -> Option<RateCheck> {
        if !self.quotas.any_rate() {
            return None;
        }
        let active = self.active()?;
        let path = path.trim_start_matches('/');
        let mount = mount_of(&active, path).unwrap_or_default();
        let client = client.unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
        let verdict = self.quotas.check_rate(Target { path, mount: &mount }, client, std::time::Instant::now())?;
        if !verdict.allowed {
            crate::metrics::quota_violation("rate-limit", &verdict.quota);
        }
        let (headers, audit) = self.quotas.rate_limit_flags();
        Some(RateCheck { verdict, headers, audit })
    }

    /// Records a request refused by a rate-limit quota, when the configuration asks for it.
    pub async fn audit_rate_refusal(&self, op: Operation, path: &str, client: Option<IpAddr>) {
        let Some(active) = self.active() else { return };
        if !active.audit.enabled() {
            return;
        }
        let id = uuid::Uuid::new_v4().to_string();
        let data = Map::new();
        let record = crate::audit::AuditRecord {
            id: &id,
            operation: op.as_str(),
            path,
            data: &data,
            remote_addr: client,
            client_token: "",
            token: None,
            mount_type: "",
            mount_accessor: "",
            non_hmac_request_keys: &[],
            non_hmac_response_keys: &[],
            wrap_ttl: None,
        };
        let err = format!("request path {path:?}: rate limit quota exceeded");
        let _ = active.audit.log("request", &record, None, "").await;
        let _ = active.audit.log("response", &record, None, &err).await;
    }

    /// Refuses a request that could make a lease where a lease-count quota is full (root
    /// tokens are never limited).
    pub(crate) fn check_lease_quota(&self, active: &Active, path: &str, root: bool) -> Result<()> {
        if root || !self.quotas.any_lease() {
            return Ok(());
        }
        let mount = mount_of(active, path).unwrap_or_default();
        if let Some(c) = self.quotas.lease_quota(Target { path, mount: &mount }) {
            if c.count() >= c.quota.max_leases {
                crate::metrics::quota_violation("lease-count", &c.quota.name);
                return Err(LogicalError::new(ErrorKind::RateLimited, "lease count quota exceeded"));
            }
        }
        Ok(())
    }

    /// Counts a new lease made at `path` against its lease-count quota. Requests were let in
    /// by [`Core::check_lease_quota`]; leases made by requests racing past a nearly full quota
    /// are still counted (the count may pass the maximum by the requests in flight, and new
    /// ones are refused until it is back under).
    pub(crate) fn count_lease(&self, path: &str) {
        if !self.quotas.any_lease() {
            return;
        }
        let Some(active) = self.active() else { return };
        let mount = mount_of(&active, path).unwrap_or_default();
        if let Some(c) = self.quotas.lease_quota(Target { path, mount: &mount }) {
            c.add_one();
        }
    }

    /// A lease made at `path` is gone: its quota gets the room back.
    pub(crate) fn release_lease_quota(&self, path: &str) {
        if !self.quotas.any_lease() {
            return;
        }
        let Some(active) = self.active() else { return };
        let mount = mount_of(&active, path).unwrap_or_default();
        if let Some(c) = self.quotas.lease_quota(Target { path, mount: &mount }) {
            c.give_back();
        }
    }

    /// Loads the quotas from storage and installs them (at unseal, and after every change).
    pub(crate) async fn load_quotas(&self, active: &Active) -> Result<()> {
        let config = match self.barrier.get(CONFIG_PATH).await.map_err(barrier_err)? {
            Some(raw) => serde_json::from_slice(&raw)
                .map_err(|e| LogicalError::internal("quota configuration unreadable").with_source(e))?,
            None => QuotaConfig::initial(),
        };
        let rate: Vec<RateLimitQuota> = self.read_quotas(RATE_PREFIX).await?;
        let lease: Vec<LeaseCountQuota> = self.read_quotas(LEASE_PREFIX).await?;
        let resolve = |path: &str| Scope::resolve(path, |p| mount_of(active, p));
        // A quota whose mount has gone matches nothing until its path is served again.
        let rate: Vec<_> = rate.into_iter().filter_map(|q| resolve(&q.path).ok().map(|s| (q, s))).collect();
        let lease: Vec<_> = lease.into_iter().filter_map(|q| resolve(&q.path).ok().map(|s| (q, s))).collect();
        let mut counts = std::collections::HashMap::new();
        for (q, s) in &lease {
            counts.insert(q.name.clone(), self.count_leases(s).await?);
        }
        self.quotas.install(config, rate, lease, |q, _| counts.get(&q.name).copied().unwrap_or(0));
        Ok(())
    }

    async fn count_leases(&self, scope: &Scope) -> Result<u64> {
        let ids = match scope {
            Scope::Global => self.leases.ids_under("").await?,
            Scope::Mount(m) => self.leases.ids_under(m).await?,
            Scope::Path { prefix, glob: true, .. } => self.leases.ids_under(prefix).await?,
            Scope::Path { prefix, glob: false, .. } => self.leases.ids_under(&format!("{prefix}/")).await?,
        };
        Ok(ids.len() as u64)
    }

    async fn read_quotas<T: serde::de::DeserializeOwned>(&self, prefix: &str) -> Result<Vec<T>> {
        let mut out = Vec::new();
        for name in self.barrier.list(prefix).await.map_err(barrier_err)? {
            if let Some(raw) = self.barrier.get(&format!("{prefix}{name}")).await.map_err(barrier_err)? {
                out.push(
                    serde_json::from_slice(&raw)
                        .map_err(|e| LogicalError::internal("quota unreadable").with_source(e))?,
                );
            }
        }
        Ok(out)
    }

    async fn store<T: serde::Serialize>(&self, key: &str, v: &T) -> Result<()> {
        let raw = serde_json::to_vec(v).map_err(|e| LogicalError::internal("quota unwritable").with_source(e))?;
        self.barrier.put(key, &raw).await.map_err(barrier_err)
    }

    /// Forgets the quotas of a mount that is disabled, as OpenBao does.
    pub(crate) async fn quotas_mount_removed(&self, active: &Active, mount: &str) -> Result<()> {
        let mut changed = false;
        for (prefix, paths) in [
            (
                RATE_PREFIX,
                self.read_quotas::<RateLimitQuota>(RATE_PREFIX)
                    .await?
                    .into_iter()
                    .map(|q| (q.name, q.path))
                    .collect::<Vec<_>>(),
            ),
            (
                LEASE_PREFIX,
                self.read_quotas::<LeaseCountQuota>(LEASE_PREFIX)
                    .await?
                    .into_iter()
                    .map(|q| (q.name, q.path))
                    .collect(),
            ),
        ] {
            for (name, path) in paths {
                if !path.is_empty() && (path.starts_with(mount) || format!("{}/", path.trim_end_matches('/')) == mount)
                {
                    self.barrier.delete(&format!("{prefix}{name}")).await.map_err(barrier_err)?;
                    changed = true;
                }
            }
        }
        if changed {
            self.load_quotas(active).await?;
        }
        Ok(())
    }

    /// `sys/quotas/…`.
    pub(crate) async fn handle_quotas(
        &self,
        active: &Arc<Active>,
        op: Operation,
        route: SysRoute,
        d: &Map<String, Value>,
    ) -> Result<CoreResponse> {
        use Operation::*;
        match (route, op) {
            (SysRoute::QuotaConfig, Read) => {
                let c = self.quotas.config();
                Ok(crate::CoreResponse { data: Some(config_json(&c)), ..Default::default() })
            }
            (SysRoute::QuotaConfig, Update | Create) => {
                let flag = |k: &str| d.get(k).and_then(Value::as_bool).unwrap_or(false);
                let exempt = match d.get("rate_limit_exempt_paths") {
                    Some(Value::Array(a)) => {
                        a.iter().filter_map(Value::as_str).map(|s| s.trim_start_matches('/').to_string()).collect()
                    }
                    _ => Vec::new(),
                };
                let c = QuotaConfig {
                    enable_rate_limit_audit_logging: flag("enable_rate_limit_audit_logging"),
                    enable_rate_limit_response_headers: flag("enable_rate_limit_response_headers"),
                    rate_limit_exempt_paths: exempt,
                };
                self.store(CONFIG_PATH, &c).await?;
                self.load_quotas(active).await?;
                Ok(CoreResponse::default())
            }
            (SysRoute::Quotas(kind), List | Read) => {
                let mut keys = self.barrier.list(prefix_of(kind)).await.map_err(barrier_err)?;
                keys.sort();
                if keys.is_empty() {
                    return Err(LogicalError::not_found());
                }
                Ok(CoreResponse { data: Some(obj(json!({ "keys": keys }))), ..Default::default() })
            }
            (SysRoute::Quota(kind), Read) => {
                let name = d.get("name").and_then(Value::as_str).unwrap_or_default();
                let key = format!("{}{name}", prefix_of(kind));
                let Some(raw) = self.barrier.get(&key).await.map_err(barrier_err)? else {
                    return Err(LogicalError::not_found());
                };
                let v: Value = serde_json::from_slice(&raw)
                    .map_err(|e| LogicalError::internal("quota unreadable").with_source(e))?;
                let mut m = obj(v);
                m.insert("type".into(), json!(kind.as_str()));
                m.insert("inheritable".into(), json!(m.get("path").and_then(Value::as_str).is_none_or(str::is_empty)));
                if kind == QuotaKind::LeaseCount {
                    let count = self
                        .quotas
                        .lease_counters()
                        .iter()
                        .find(|c| c.quota.name == name)
                        .map(|c| c.count())
                        .unwrap_or(0);
                    m.insert("counter".into(), json!(count));
                }
                m.entry("role").or_insert(json!(""));
                // Go writes a whole float without a fraction: `"rate": 2`, not `2.0`.
                if let Some(r) = m.get("rate").and_then(Value::as_f64).filter(|r| r.fract() == 0.0 && r.abs() < 1e15) {
                    m.insert("rate".into(), json!(r as i64));
                }
                Ok(CoreResponse { data: Some(m), ..Default::default() })
            }
            (SysRoute::Quota(kind), Update | Create) => {
                let name = d.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
                coffer_quota::validate_name(&name).map_err(quota_err)?;
                let written = d.get("path").and_then(Value::as_str).unwrap_or_default().to_string();
                let role = d.get("role").and_then(Value::as_str).unwrap_or_default().to_string();
                let scope = Scope::resolve(&written, |p| mount_of(active, p)).map_err(|e| match e {
                    QuotaError::NoMount(p) => LogicalError::bad_request(format!("invalid mount path {p:?}")),
                    other => quota_err(other),
                })?;
                let path = scope.stored_path(&written);
                coffer_quota::check_role(&role, &path, scope.mount().filter(|m| is_auth_mount(m)))
                    .map_err(quota_err)?;
                if d.get("inheritable").and_then(Value::as_bool) == Some(true) && !path.is_empty() {
                    return Err(LogicalError::bad_request(
                        "inheritable may only be set on a namespace's quota, and this server has only the root \
                         namespace",
                    ));
                }
                let existing: Vec<(String, String, String)> = match kind {
                    QuotaKind::RateLimit => self
                        .read_quotas::<RateLimitQuota>(RATE_PREFIX)
                        .await?
                        .into_iter()
                        .map(|q| (q.name, q.path, q.role))
                        .collect(),
                    QuotaKind::LeaseCount => self
                        .read_quotas::<LeaseCountQuota>(LEASE_PREFIX)
                        .await?
                        .into_iter()
                        .map(|q| (q.name, q.path, q.role))
                        .collect(),
                };
                if let Some(other) = coffer_quota::duplicate_of(
                    existing.iter().map(|(n, p, r)| (n.as_str(), p.as_str(), r.as_str())),
                    &name,
                    &path,
                    &role,
                ) {
                    return Err(quota_err(QuotaError::Duplicate(other)));
                }
                let key = format!("{}{name}", prefix_of(kind));
                match kind {
                    QuotaKind::RateLimit => {
                        let rate = match d.get("rate") {
                            Some(Value::Number(n)) => n.as_f64(),
                            Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
                            _ => None,
                        }
                        .filter(|r| r.is_finite() && *r > 0.0)
                        .ok_or_else(|| invalid("rate"))?;
                        let interval = d.get("interval").and_then(Value::as_i64).unwrap_or(0);
                        let block = d.get("block_interval").and_then(Value::as_i64).unwrap_or(0);
                        if interval < 0 {
                            return Err(invalid("interval"));
                        }
                        if block < 0 {
                            return Err(invalid("block_interval"));
                        }
                        let q = RateLimitQuota {
                            name,
                            path,
                            role,
                            rate,
                            interval: if interval == 0 { 1 } else { interval as u64 },
                            block_interval: block as u64,
                        };
                        q.validate().map_err(quota_err)?;
                        self.store(&key, &q).await?;
                    }
                    QuotaKind::LeaseCount => {
                        let max = d.get("max_leases").and_then(Value::as_i64).unwrap_or(0);
                        if max <= 0 {
                            return Err(invalid("max_leases"));
                        }
                        let q = LeaseCountQuota { name, path, role, max_leases: max as u64 };
                        q.validate().map_err(quota_err)?;
                        self.store(&key, &q).await?;
                    }
                }
                self.load_quotas(active).await?;
                Ok(CoreResponse::default())
            }
            (SysRoute::Quota(kind), Delete) => {
                let name = d.get("name").and_then(Value::as_str).unwrap_or_default();
                self.barrier.delete(&format!("{}{name}", prefix_of(kind))).await.map_err(barrier_err)?;
                self.load_quotas(active).await?;
                Ok(CoreResponse::default())
            }
            _ => Err(LogicalError::unsupported_operation()),
        }
    }
}

fn prefix_of(kind: QuotaKind) -> &'static str {
    match kind {
        QuotaKind::RateLimit => RATE_PREFIX,
        QuotaKind::LeaseCount => LEASE_PREFIX,
    }
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn config_json(c: &QuotaConfig) -> Map<String, Value> {
    let mut exempt = c.rate_limit_exempt_paths.clone();
    exempt.sort();
    obj(json!({
        "enable_rate_limit_audit_logging": c.enable_rate_limit_audit_logging,
        "enable_rate_limit_response_headers": c.enable_rate_limit_response_headers,
        "rate_limit_exempt_paths": exempt,
    }))
}
