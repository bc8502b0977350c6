//! What the core records, and `sys/metrics`.

use crate::mounts::Router;
use crate::Core;
use coffer_metrics::global;
use coffer_sdk::Operation;
use std::time::Duration;

pub fn describe() {
    let r = global();
    r.describe("coffer_requests_total", "Requests handled, by mount, operation and outcome");
    r.describe("coffer_request_duration_seconds", "Request handling time in the core, by mount and operation");
    r.describe("coffer_audit_log_failures_total", "Audit entries no enabled device could record");
    r.describe("coffer_audit_log_total", "Audit entries recorded by at least one device");
    r.describe("coffer_core_unsealed", "1 when the server is unsealed");
    r.describe("coffer_tokens", "Stored service tokens");
    r.describe("coffer_leases", "Active leases");
    r.describe("coffer_barrier_op_duration_seconds", "Barrier operation time (encryption included), by operation");
    r.describe("coffer_storage_op_duration_seconds", "Physical storage operation time, by operation");
    r.describe("coffer_quota_violations_total", "Requests refused by a resource quota, by quota type and name");
}

/// A request refused by a quota (its name is an operator's, so the series stay bounded).
pub fn quota_violation(kind: &str, name: &str) {
    global().incr("coffer_quota_violations_total", &[("type", kind), ("quota", name)], 1);
}

/// Request paths served by the core itself, labelled by their area.
const SYSTEM_AREAS: [&str; 4] = ["sys/", "auth/token/", "identity/", "cubbyhole/"];

/// The mount label of a request: the mount that served it (`kv/`, `auth/userpass/`,
/// `team/a/`), the core's own area (`sys/`, `auth/token/`, …), or `unmounted/`. Never a string
/// the client chose, so the number of series is bounded by the mounts (a label per first path
/// segment let any client grow the registry without end).
pub fn mount_label<'a>(router: Option<&'a Router>, path: &'a str) -> &'a str {
    if let Some(area) = SYSTEM_AREAS.iter().find(|a| path.starts_with(*a) || path == &a[..a.len() - 1]) {
        return area;
    }
    match router.and_then(|r| r.resolve(path)) {
        Some((route, _)) => &route.prefix,
        None => "unmounted/",
    }
}

pub fn request(router: Option<&Router>, path: &str, op: Operation, ok: bool, d: Duration) {
    let mount = mount_label(router, path);
    with_request_handles(mount, op, |h| {
        if ok { &h.ok } else { &h.error }.incr(1);
        h.duration.observe(d);
    });
}

/// The series one (mount, operation) pair records into.
struct RequestHandles {
    ok: coffer_metrics::CounterHandle,
    error: coffer_metrics::CounterHandle,
    duration: coffer_metrics::HistogramHandle,
}

/// The handles of the few (mount, operation) pairs a worker thread served last, so a request
/// records its metrics without looking its series up in the registry.
fn with_request_handles(mount: &str, op: Operation, record: impl FnOnce(&RequestHandles)) {
    use std::cell::RefCell;
    const RECENT: usize = 8;
    thread_local! {
        static CACHE: RefCell<Vec<(String, Operation, RequestHandles)>> = const { RefCell::new(Vec::new()) };
    }
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if let Some(i) = c.iter().position(|(m, o, _)| *o == op && m == mount) {
            if i > 0 {
                let hit = c.remove(i);
                c.insert(0, hit);
            }
            return record(&c[0].2);
        }
        let r = global();
        let labels = |outcome| [("mount", mount), ("operation", op.as_str()), ("outcome", outcome)];
        let (Some(ok), Some(error), Some(duration)) = (
            r.counter("coffer_requests_total", &labels("ok")),
            r.counter("coffer_requests_total", &labels("error")),
            r.histogram("coffer_request_duration_seconds", &[("mount", mount), ("operation", op.as_str())]),
        ) else {
            return;
        };
        c.insert(0, (mount.to_string(), op, RequestHandles { ok, error, duration }));
        c.truncate(RECENT);
        record(&c[0].2);
    })
}

impl Core {
    /// The Prometheus text of every metric (also served without a token when the listener
    /// allows it).
    pub async fn metrics_prometheus(&self) -> String {
        // A standby's barrier is open (it reads the shared storage): its gauges are real.
        coffer_system::metrics::prometheus(&self.barrier, self.barrier_sealed()).await
    }
}

#[cfg(test)]
mod tests {
    use super::mount_label;

    #[test]
    fn mount_labels_are_the_core_areas_or_unmounted_never_client_text() {
        assert_eq!(mount_label(None, "sys/health"), "sys/");
        assert_eq!(mount_label(None, "auth/token/create"), "auth/token/");
        assert_eq!(mount_label(None, "identity/entity"), "identity/");
        assert_eq!(mount_label(None, "sys"), "sys/");
        assert_eq!(mount_label(None, "made-up-by-a-client/x"), "unmounted/");
        assert_eq!(mount_label(None, "auth/nope/login"), "unmounted/");
        assert_eq!(mount_label(Some(&Default::default()), "kv/x"), "unmounted/");
    }
}
