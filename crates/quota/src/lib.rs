//! Resource quotas, as OpenBao's `sys/quotas/*` defines them: rate-limit quotas (a request
//! budget per client address, refilled every interval, with an optional block after the
//! budget is spent) and lease-count quotas (a ceiling on live leases). A quota applies to the
//! whole server, to one mount, or to a path under a mount (a trailing `*` makes it a prefix);
//! when several match a request, the most specific one alone applies.
//!
//! Pure: no I/O, no clock of its own (callers pass `Instant`s), no storage. The core keeps the
//! quota definitions behind the barrier, compiles them here with its mount table, asks
//! [`Quotas::check_rate`] before routing a request and [`Quotas::lease_quota`] before
//! registering a lease.
#![forbid(unsafe_code)]

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// Why a quota definition is refused.
#[derive(Debug, thiserror::Error, PartialEq)]
#[non_exhaustive]
pub enum QuotaError {
    #[error("quota name must not be empty")]
    EmptyName,
    #[error("quota name {0:?} may contain only letters, digits, '-', '_' and '.'")]
    BadName(String),
    #[error("invalid rate {0}: the rate must be positive")]
    BadRate(f64),
    #[error("invalid interval: it must be at least 1s")]
    BadInterval,
    #[error("max_leases must be positive")]
    BadMaxLeases,
    #[error("invalid mount path {0:?}: no mount serves it")]
    NoMount(String),
    #[error("a '*' may only end a path after its mount, in {0:?}")]
    BadGlob(String),
    #[error("Mount path {0:?} is not a valid auth method and therefore unsuitable for use with role-based quotas")]
    RoleNeedsAuthMount(String),
    #[error("Mount path {0:?} does not support use with role-based quotas")]
    RoleUnsupported(String),
    #[error("quota rule with similar properties exists under the name {0:?}")]
    Duplicate(String),
}

/// `sys/quotas/config`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct QuotaConfig {
    #[serde(default)]
    pub enable_rate_limit_audit_logging: bool,
    #[serde(default)]
    pub enable_rate_limit_response_headers: bool,
    #[serde(default)]
    pub rate_limit_exempt_paths: Vec<String>,
}

/// A rate-limit quota as stored (`sys/quotas/rate-limit/<name>`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RateLimitQuota {
    pub name: String,
    /// `""` (the whole server), a mount (`secret/`, `auth/userpass/`) or a path under one.
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub role: String,
    /// Requests allowed per interval, per client address.
    pub rate: f64,
    /// Seconds.
    pub interval: u64,
    /// Seconds a client that spent its budget is refused for; 0: until the interval ends.
    #[serde(default)]
    pub block_interval: u64,
}

/// A lease-count quota as stored (`sys/quotas/lease-count/<name>`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LeaseCountQuota {
    pub name: String,
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub role: String,
    pub max_leases: u64,
}

impl QuotaConfig {
    /// The configuration before any write: the paths an operator needs to get a locked-out
    /// server back are exempt, as in OpenBao.
    pub fn initial() -> Self {
        QuotaConfig {
            enable_rate_limit_audit_logging: false,
            enable_rate_limit_response_headers: false,
            rate_limit_exempt_paths: [
                "sys/generate-recovery-token/attempt",
                "sys/generate-recovery-token/update",
                "sys/generate-root/attempt",
                "sys/generate-root/update",
                "sys/health",
                "sys/seal-status",
                "sys/unseal",
            ]
            .map(String::from)
            .to_vec(),
        }
    }
}

/// Checks a quota's `role`: a role-scoped quota needs an auth mount whose method resolves
/// roles, and no method here does yet, so a role is refused with OpenBao's words for a mount
/// that cannot resolve one. `auth_mount` is the mount of the quota's path when it is an auth
/// method's.
pub fn check_role(role: &str, path: &str, auth_mount: Option<&str>) -> Result<(), QuotaError> {
    if role.is_empty() {
        return Ok(());
    }
    match auth_mount {
        None => Err(QuotaError::RoleNeedsAuthMount(path.to_string())),
        Some(m) => Err(QuotaError::RoleUnsupported(m.to_string())),
    }
}

/// The name of an existing quota with the same path and role as `path`/`role` (other than
/// `name` itself): OpenBao refuses two quotas of one kind on the same target.
pub fn duplicate_of<'a>(
    existing: impl IntoIterator<Item = (&'a str, &'a str, &'a str)>,
    name: &str,
    path: &str,
    role: &str,
) -> Option<String> {
    existing.into_iter().find(|(n, p, r)| *n != name && *p == path && *r == role).map(|(n, _, _)| n.to_string())
}

/// Checks a quota's name.
pub fn validate_name(name: &str) -> Result<(), QuotaError> {
    if name.is_empty() {
        return Err(QuotaError::EmptyName);
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) {
        return Err(QuotaError::BadName(name.to_string()));
    }
    Ok(())
}

impl RateLimitQuota {
    /// Checks the numbers and the role (the path is checked by [`Scope::resolve`]).
    pub fn validate(&self) -> Result<(), QuotaError> {
        validate_name(&self.name)?;
        if !(self.rate.is_finite() && self.rate > 0.0) {
            return Err(QuotaError::BadRate(self.rate));
        }
        if self.interval == 0 {
            return Err(QuotaError::BadInterval);
        }
        Ok(())
    }

    /// The whole budget of one interval, as a count of requests (`rate` rounded down, at
    /// least one).
    pub fn budget(&self) -> u64 {
        (self.rate.floor() as u64).max(1)
    }
}

impl LeaseCountQuota {
    pub fn validate(&self) -> Result<(), QuotaError> {
        validate_name(&self.name)?;
        if self.max_leases == 0 {
            return Err(QuotaError::BadMaxLeases);
        }
        Ok(())
    }
}

/// What a quota's `path` covers, resolved against the mount table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// `""`: every request.
    Global,
    /// Every request to this mount (its path with a trailing `/`).
    Mount(String),
    /// One path under a mount, or every path starting with `prefix` when `glob`.
    Path { mount: String, prefix: String, glob: bool },
}

impl Scope {
    /// Resolves a quota's `path`; `mount_of` answers the mount (with its trailing `/`) that
    /// serves a path, if any.
    pub fn resolve(path: &str, mount_of: impl Fn(&str) -> Option<String>) -> Result<Scope, QuotaError> {
        let path = path.trim_start_matches('/');
        if path.is_empty() {
            return Ok(Scope::Global);
        }
        let (body, glob) = match path.strip_suffix('*') {
            Some(b) => (b, true),
            None => (path, false),
        };
        if body.contains('*') {
            return Err(QuotaError::BadGlob(path.to_string()));
        }
        let mount = mount_of(body).ok_or_else(|| QuotaError::NoMount(path.to_string()))?;
        let trimmed = body.trim_end_matches('/');
        if trimmed == mount.trim_end_matches('/') {
            if glob {
                return Err(QuotaError::BadGlob(path.to_string()));
            }
            return Ok(Scope::Mount(mount));
        }
        let prefix = if glob { body.to_string() } else { trimmed.to_string() };
        Ok(Scope::Path { mount, prefix, glob })
    }

    /// The path as stored and read back: a mount's path ends with `/` (`kv` is kept as `kv/`),
    /// any other path as written.
    pub fn stored_path(&self, written: &str) -> String {
        match self {
            Scope::Global => String::new(),
            Scope::Mount(m) => m.clone(),
            Scope::Path { .. } => written.trim_start_matches('/').to_string(),
        }
    }

    /// How specific: a larger number wins.
    fn rank(&self) -> (u8, usize) {
        match self {
            Scope::Global => (0, 0),
            Scope::Mount(_) => (1, 0),
            Scope::Path { prefix, glob, .. } => (2, prefix.len() * 2 + usize::from(!glob)),
        }
    }

    fn matches(&self, path: &str, mount: &str) -> bool {
        match self {
            Scope::Global => true,
            Scope::Mount(m) => m == mount,
            Scope::Path { mount: m, prefix, glob } => {
                m == mount
                    && if *glob { path.starts_with(prefix.as_str()) } else { path.trim_end_matches('/') == prefix }
            }
        }
    }

    /// The mount this scope belongs to, if any.
    pub fn mount(&self) -> Option<&str> {
        match self {
            Scope::Global => None,
            Scope::Mount(m) | Scope::Path { mount: m, .. } => Some(m),
        }
    }
}

/// One client's budget under one rate-limit quota: a fixed window that starts with the
/// client's first request and refills completely when it ends.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    window_start: Instant,
    used: u64,
    blocked_until: Option<Instant>,
}

#[derive(Debug)]
struct RateRule {
    quota: RateLimitQuota,
    scope: Scope,
    budget: u64,
    interval: Duration,
    block: Duration,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

/// The answer of a rate-limit check that found a quota.
#[derive(Debug, Clone, PartialEq)]
pub struct RateVerdict {
    /// The quota's name.
    pub quota: String,
    pub allowed: bool,
    /// `X-RateLimit-Limit`.
    pub limit: u64,
    /// `X-RateLimit-Remaining`.
    pub remaining: u64,
    /// Seconds until the client's budget refills (or its block ends), rounded up:
    /// `X-RateLimit-Reset`, and `Retry-After` when refused.
    pub reset_secs: u64,
    /// The same, exactly.
    pub reset: Duration,
}

/// A lease-count quota with its live count.
#[derive(Debug)]
pub struct LeaseCounter {
    pub quota: LeaseCountQuota,
    pub scope: Scope,
    count: AtomicU64,
}

impl LeaseCounter {
    /// Leases counted now.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Acquire)
    }

    /// Takes one lease from the budget, or says the quota is full.
    pub fn try_take(&self) -> bool {
        self.count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| (c < self.quota.max_leases).then_some(c + 1))
            .is_ok()
    }

    /// Counts one more, even past the maximum (a lease made by a request let in before the
    /// quota filled).
    pub fn add_one(&self) {
        self.count.fetch_add(1, Ordering::AcqRel);
    }

    /// Gives one back (a lease revoked or expired).
    pub fn give_back(&self) {
        let _ = self.count.fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| Some(c.saturating_sub(1)));
    }

    /// Sets the count (after counting the leases in storage).
    pub fn set_count(&self, n: u64) {
        self.count.store(n, Ordering::Release);
    }
}

#[derive(Debug, Default)]
struct Compiled {
    rate: Vec<RateRule>,
    lease: Vec<Arc<LeaseCounter>>,
    config: QuotaConfig,
}

/// The quotas in force, compiled for matching. Cheap when none is defined: one atomic load.
#[derive(Debug, Default)]
pub struct Quotas {
    any_rate: AtomicBool,
    any_lease: AtomicBool,
    compiled: RwLock<Arc<Compiled>>,
}

/// A path relative to its request's mount, with the mount, as the router resolved it.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The request path without `/v1/` (`secret/data/x`, `auth/userpass/login/bob`).
    pub path: &'a str,
    /// The mount serving it, with a trailing `/` (`secret/`, `auth/userpass/`); `""` for
    /// none.
    pub mount: &'a str,
}

impl Quotas {
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces every quota. Buckets of rate-limit quotas whose definition did not change
    /// are kept (a client's spent budget survives an unrelated edit); lease counters start
    /// at the counts `count_leases` gives for each lease-count quota's scope.
    pub fn install(
        &self,
        config: QuotaConfig,
        rate: Vec<(RateLimitQuota, Scope)>,
        lease: Vec<(LeaseCountQuota, Scope)>,
        count_leases: impl Fn(&LeaseCountQuota, &Scope) -> u64,
    ) {
        let old = self.compiled.read().unwrap_or_else(|e| e.into_inner()).clone();
        let rate: Vec<RateRule> = rate
            .into_iter()
            .map(|(q, scope)| {
                let buckets = old
                    .rate
                    .iter()
                    .find(|r| r.quota == q && r.scope == scope)
                    .map(|r| r.buckets.lock().unwrap_or_else(|e| e.into_inner()).clone())
                    .unwrap_or_default();
                RateRule {
                    budget: q.budget(),
                    interval: Duration::from_secs(q.interval),
                    block: Duration::from_secs(q.block_interval),
                    quota: q,
                    scope,
                    buckets: Mutex::new(buckets),
                }
            })
            .collect();
        let lease: Vec<Arc<LeaseCounter>> = lease
            .into_iter()
            .map(|(q, scope)| {
                let n = count_leases(&q, &scope);
                Arc::new(LeaseCounter { quota: q, scope, count: AtomicU64::new(n) })
            })
            .collect();
        self.any_rate.store(!rate.is_empty(), Ordering::Release);
        self.any_lease.store(!lease.is_empty(), Ordering::Release);
        *self.compiled.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(Compiled { rate, lease, config });
    }

    fn current(&self) -> Arc<Compiled> {
        self.compiled.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Whether any rate-limit quota is defined (one atomic load).
    pub fn any_rate(&self) -> bool {
        self.any_rate.load(Ordering::Acquire)
    }

    /// Whether any lease-count quota is defined (one atomic load).
    pub fn any_lease(&self) -> bool {
        self.any_lease.load(Ordering::Acquire)
    }

    /// (`enable_rate_limit_response_headers`, `enable_rate_limit_audit_logging`).
    pub fn rate_limit_flags(&self) -> (bool, bool) {
        let c = self.current();
        (c.config.enable_rate_limit_response_headers, c.config.enable_rate_limit_audit_logging)
    }

    /// `sys/quotas/config` as installed.
    pub fn config(&self) -> QuotaConfig {
        self.current().config.clone()
    }

    /// Checks a request against the most specific rate-limit quota matching it, spending one
    /// request of the client's budget when allowed. `None`: no quota applies (none defined,
    /// none matches, or the path is exempt).
    pub fn check_rate(&self, target: Target<'_>, client: IpAddr, now: Instant) -> Option<RateVerdict> {
        if !self.any_rate.load(Ordering::Acquire) {
            return None;
        }
        let c = self.current();
        if c.config.rate_limit_exempt_paths.iter().any(|p| exempt(p, target.path)) {
            return None;
        }
        let rule =
            c.rate.iter().filter(|r| r.scope.matches(target.path, target.mount)).max_by_key(|r| r.scope.rank())?;
        Some(rule.take(client, now))
    }

    /// The lease-count quota governing leases made at `target`, if any.
    pub fn lease_quota(&self, target: Target<'_>) -> Option<Arc<LeaseCounter>> {
        if !self.any_lease.load(Ordering::Acquire) {
            return None;
        }
        let c = self.current();
        c.lease.iter().filter(|l| l.scope.matches(target.path, target.mount)).max_by_key(|l| l.scope.rank()).cloned()
    }

    /// Every lease-count quota with its live count (for reads of the quota).
    pub fn lease_counters(&self) -> Vec<Arc<LeaseCounter>> {
        self.current().lease.clone()
    }

    /// Forgets the buckets of clients whose window ended and who are not blocked, so memory
    /// follows the clients seen in the last interval, not every client ever seen.
    pub fn purge(&self, now: Instant) -> usize {
        let c = self.current();
        let mut removed = 0;
        for r in &c.rate {
            let mut b = r.buckets.lock().unwrap_or_else(|e| e.into_inner());
            let before = b.len();
            b.retain(|_, k| {
                now.saturating_duration_since(k.window_start) < r.interval || k.blocked_until.is_some_and(|u| u > now)
            });
            removed += before - b.len();
        }
        removed
    }
}

fn exempt(pattern: &str, path: &str) -> bool {
    let pattern = pattern.trim_start_matches('/');
    match pattern.strip_suffix('*') {
        Some(prefix) => path.starts_with(prefix),
        None => path.trim_end_matches('/') == pattern.trim_end_matches('/'),
    }
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

impl RateRule {
    fn take(&self, client: IpAddr, now: Instant) -> RateVerdict {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let b = buckets.entry(client).or_insert(Bucket { window_start: now, used: 0, blocked_until: None });
        if let Some(until) = b.blocked_until {
            if until > now {
                return self.verdict(false, 0, until - now);
            }
            b.blocked_until = None;
            *b = Bucket { window_start: now, used: 0, blocked_until: None };
        }
        let elapsed = now.saturating_duration_since(b.window_start);
        if elapsed >= self.interval {
            // Windows are aligned on the first one, as a clock tick would be.
            let n = elapsed.as_nanos() / self.interval.as_nanos().max(1);
            let step = self.interval.saturating_mul(u32::try_from(n).unwrap_or(u32::MAX));
            b.window_start += step;
            b.used = 0;
        }
        let reset = (b.window_start + self.interval).saturating_duration_since(now);
        if b.used < self.budget {
            b.used += 1;
            return self.verdict(true, self.budget - b.used, reset);
        }
        if !self.block.is_zero() {
            b.blocked_until = Some(now + self.block);
            return self.verdict(false, 0, self.block);
        }
        self.verdict(false, 0, reset)
    }

    fn verdict(&self, allowed: bool, remaining: u64, reset: Duration) -> RateVerdict {
        RateVerdict {
            quota: self.quota.name.clone(),
            allowed,
            limit: self.budget,
            remaining,
            reset_secs: ceil_secs(reset),
            reset,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mounts(p: &str) -> Option<String> {
        ["secret/", "auth/userpass/", "transit/"]
            .iter()
            .find(|m| p.starts_with(**m) || format!("{p}/") == **m)
            .map(|m| m.to_string())
    }

    fn rl(name: &str, path: &str, rate: f64, interval: u64, block: u64) -> (RateLimitQuota, Scope) {
        let q = RateLimitQuota {
            name: name.into(),
            path: path.into(),
            role: String::new(),
            rate,
            interval,
            block_interval: block,
        };
        q.validate().unwrap();
        let s = Scope::resolve(path, mounts).unwrap();
        (q, s)
    }

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    fn t<'a>(path: &'a str, mount: &'a str) -> Target<'a> {
        Target { path, mount }
    }

    #[test]
    fn a_path_resolves_to_global_mount_or_path_scope() {
        assert_eq!(Scope::resolve("", mounts).unwrap(), Scope::Global);
        assert_eq!(Scope::resolve("secret", mounts).unwrap(), Scope::Mount("secret/".into()));
        assert_eq!(Scope::resolve("secret/", mounts).unwrap(), Scope::Mount("secret/".into()));
        assert_eq!(
            Scope::resolve("secret/data/a/*", mounts).unwrap(),
            Scope::Path { mount: "secret/".into(), prefix: "secret/data/a/".into(), glob: true }
        );
        assert_eq!(Scope::resolve("nope/x", mounts), Err(QuotaError::NoMount("nope/x".into())));
        assert!(matches!(Scope::resolve("secret/*/x", mounts), Err(QuotaError::BadGlob(_))));
        assert!(matches!(Scope::resolve("secret/*", mounts), Err(QuotaError::BadGlob(_))));
    }

    #[test]
    fn no_quota_means_no_verdict() {
        let q = Quotas::new();
        assert_eq!(q.check_rate(t("secret/x", "secret/"), A, Instant::now()), None);
    }

    #[test]
    fn budget_is_per_client_and_refills_after_the_interval() {
        let q = Quotas::new();
        q.install(QuotaConfig::default(), vec![rl("g", "", 2.0, 10, 0)], vec![], |_, _| 0);
        let now = Instant::now();
        let v1 = q.check_rate(t("secret/x", "secret/"), A, now).unwrap();
        assert!(v1.allowed);
        assert_eq!((v1.limit, v1.remaining, v1.reset_secs), (2, 1, 10));
        assert!(q.check_rate(t("secret/x", "secret/"), A, now).unwrap().allowed);
        let refused = q.check_rate(t("secret/x", "secret/"), A, now + Duration::from_secs(3)).unwrap();
        assert!(!refused.allowed);
        assert_eq!(refused.reset_secs, 7);
        // Another client has its own budget.
        assert!(q.check_rate(t("secret/x", "secret/"), B, now).unwrap().allowed);
        // The next window refills.
        assert!(q.check_rate(t("secret/x", "secret/"), A, now + Duration::from_secs(10)).unwrap().allowed);
    }

    #[test]
    fn block_interval_refuses_past_the_window() {
        let q = Quotas::new();
        q.install(QuotaConfig::default(), vec![rl("g", "", 1.0, 1, 30)], vec![], |_, _| 0);
        let now = Instant::now();
        assert!(q.check_rate(t("a", ""), A, now).unwrap().allowed);
        let v = q.check_rate(t("a", ""), A, now).unwrap();
        assert!(!v.allowed);
        assert_eq!(v.reset_secs, 30);
        let later = q.check_rate(t("a", ""), A, now + Duration::from_secs(5)).unwrap();
        assert!(!later.allowed, "still blocked after the 1 s window");
        assert_eq!(later.reset_secs, 25);
        assert!(q.check_rate(t("a", ""), A, now + Duration::from_secs(31)).unwrap().allowed);
    }

    #[test]
    fn the_most_specific_quota_alone_applies() {
        let q = Quotas::new();
        q.install(
            QuotaConfig::default(),
            vec![
                rl("global", "", 100.0, 1, 0),
                rl("mount", "secret", 50.0, 1, 0),
                rl("glob", "secret/data/team/*", 5.0, 1, 0),
                rl("exact", "secret/data/team/one", 1.0, 1, 0),
            ],
            vec![],
            |_, _| 0,
        );
        let now = Instant::now();
        let name = |p: &str, m: &str| q.check_rate(t(p, m), A, now).unwrap().quota;
        assert_eq!(name("transit/encrypt/k", "transit/"), "global");
        assert_eq!(name("secret/data/other", "secret/"), "mount");
        assert_eq!(name("secret/data/team/two", "secret/"), "glob");
        assert_eq!(name("secret/data/team/one", "secret/"), "exact");
    }

    #[test]
    fn exempt_paths_are_never_limited() {
        let q = Quotas::new();
        let config = QuotaConfig {
            rate_limit_exempt_paths: vec!["sys/health".into(), "sys/internal/*".into()],
            ..Default::default()
        };
        q.install(config, vec![rl("g", "", 1.0, 60, 0)], vec![], |_, _| 0);
        let now = Instant::now();
        for _ in 0..5 {
            assert_eq!(q.check_rate(t("sys/health", "sys/"), A, now), None);
            assert_eq!(q.check_rate(t("sys/internal/ui/mounts", "sys/"), A, now), None);
        }
        assert!(q.check_rate(t("sys/mounts", "sys/"), A, now).unwrap().allowed);
        assert!(!q.check_rate(t("sys/mounts", "sys/"), A, now).unwrap().allowed);
    }

    #[test]
    fn an_unrelated_edit_keeps_spent_budgets() {
        let q = Quotas::new();
        let g = rl("g", "", 1.0, 60, 0);
        q.install(QuotaConfig::default(), vec![g.clone()], vec![], |_, _| 0);
        let now = Instant::now();
        assert!(q.check_rate(t("a", ""), A, now).unwrap().allowed);
        q.install(QuotaConfig::default(), vec![g, rl("m", "secret", 9.0, 1, 0)], vec![], |_, _| 0);
        assert!(!q.check_rate(t("a", ""), A, now).unwrap().allowed);
    }

    #[test]
    fn purge_forgets_idle_clients_only() {
        let q = Quotas::new();
        q.install(QuotaConfig::default(), vec![rl("g", "", 1.0, 10, 100)], vec![], |_, _| 0);
        let now = Instant::now();
        q.check_rate(t("a", ""), A, now);
        q.check_rate(t("a", ""), B, now);
        q.check_rate(t("a", ""), B, now); // B is now blocked for 100 s
        assert_eq!(q.purge(now + Duration::from_secs(11)), 1);
        assert!(!q.check_rate(t("a", ""), B, now + Duration::from_secs(12)).unwrap().allowed);
    }

    #[test]
    fn lease_counter_refuses_past_max_and_frees_on_give_back() {
        let q = Quotas::new();
        let lq = LeaseCountQuota { name: "l".into(), path: "secret".into(), role: String::new(), max_leases: 2 };
        lq.validate().unwrap();
        let scope = Scope::resolve("secret", mounts).unwrap();
        q.install(QuotaConfig::default(), vec![], vec![(lq, scope)], |_, _| 1);
        assert!(q.lease_quota(t("transit/x", "transit/")).is_none());
        let c = q.lease_quota(t("secret/creds/x", "secret/")).unwrap();
        assert_eq!(c.count(), 1);
        assert!(c.try_take());
        assert!(!c.try_take());
        c.give_back();
        assert!(c.try_take());
    }

    #[test]
    fn bad_definitions_are_refused_by_name() {
        let mut q = rl("g", "", 1.0, 1, 0).0;
        q.rate = 0.0;
        assert_eq!(q.validate(), Err(QuotaError::BadRate(0.0)));
        q.rate = 1.0;
        q.interval = 0;
        assert_eq!(q.validate(), Err(QuotaError::BadInterval));
        assert!(matches!(check_role("r", "", None), Err(QuotaError::RoleNeedsAuthMount(_))));
        assert!(matches!(check_role("r", "auth/token/", Some("auth/token/")), Err(QuotaError::RoleUnsupported(_))));
        assert_eq!(duplicate_of([("a", "secret/", ""), ("b", "kv/", "")], "c", "secret/", ""), Some("a".to_string()));
        assert_eq!(duplicate_of([("a", "secret/", "")], "a", "secret/", ""), None);
        assert!(matches!(validate_name("a/b"), Err(QuotaError::BadName(_))));
    }
}
