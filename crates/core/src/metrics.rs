//! What the core records, and `sys/metrics`.

use crate::{Core, CoreResponse, Result};
use coffer_barrier::SecureStorage;
use coffer_metrics::global;
use coffer_sdk::{LogicalError, Operation};
use serde_json::{Map, Value};
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
}

pub fn audit_result(ok: bool) {
    if ok {
        global().incr("coffer_audit_log_total", &[], 1);
    } else {
        global().incr("coffer_audit_log_failures_total", &[], 1);
    }
}

/// The mount label of a request path: `kv/`, `auth/userpass/`, `sys/`, … (borrowed from the
/// path when it has the slash; requests record it, so it does not allocate).
pub fn mount_label(path: &str) -> std::borrow::Cow<'_, str> {
    use std::borrow::Cow;
    let first = path.find('/');
    let end = match (first, path.split('/').next()) {
        (Some(i), Some("auth")) => path[i + 1..].find('/').map(|j| i + 1 + j),
        (Some(i), _) => Some(i),
        (None, _) => None,
    };
    match end {
        Some(e) => Cow::Borrowed(&path[..=e]),
        None if path.starts_with("auth/") || path == "auth" => Cow::Owned(format!("{}/", path.trim_end_matches('/'))),
        None => Cow::Owned(format!("{path}/")),
    }
}

pub fn request(path: &str, op: Operation, ok: bool, d: Duration) {
    let mount = mount_label(path);
    global().incr(
        "coffer_requests_total",
        &[("mount", &mount), ("operation", op.as_str()), ("outcome", if ok { "ok" } else { "error" })],
        1,
    );
    global().observe("coffer_request_duration_seconds", &[("mount", &mount), ("operation", op.as_str())], d);
}

impl Core {
    /// Refreshes the gauges that are computed at scrape time.
    async fn refresh_gauges(&self) {
        let r = global();
        r.set_gauge("coffer_core_unsealed", &[], if self.is_sealed() { 0.0 } else { 1.0 });
        if self.is_sealed() {
            return;
        }
        if let Ok(ids) = self.barrier.list("sys/token/id/").await {
            r.set_gauge("coffer_tokens", &[], ids.len() as f64);
        }
        let mut leases = 0usize;
        if let Ok(buckets) = self.barrier.list("sys/expire/time/").await {
            for b in buckets {
                if let Ok(k) = self.barrier.list(&format!("sys/expire/time/{b}")).await {
                    leases += k.len();
                }
            }
        }
        r.set_gauge("coffer_leases", &[], leases as f64);
    }

    /// The Prometheus text of every metric (also served without a token when the listener
    /// allows it).
    pub async fn metrics_prometheus(&self) -> String {
        self.refresh_gauges().await;
        global().render_prometheus()
    }

    pub(crate) async fn handle_metrics(&self, op: Operation, d: &Map<String, Value>) -> Result<CoreResponse> {
        if op != Operation::Read {
            return Err(LogicalError::unsupported_operation());
        }
        match d.get("format").and_then(Value::as_str).unwrap_or("") {
            "prometheus" => {
                let text = self.metrics_prometheus().await;
                Ok(CoreResponse {
                    raw_body: Some(("text/plain; version=0.0.4".into(), text.into_bytes())),
                    ..Default::default()
                })
            }
            "" | "json" => {
                self.refresh_gauges().await;
                let ts = time::OffsetDateTime::now_utc()
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default();
                let Value::Object(m) = global().render_json(&ts) else { return Err(LogicalError::internal("metrics")) };
                Ok(CoreResponse {
                    raw_body: Some(("application/json".into(), serde_json::to_vec(&m).unwrap_or_default())),
                    ..Default::default()
                })
            }
            other => Err(LogicalError::bad_request(format!("unknown metrics format {other:?}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::mount_label;

    #[test]
    fn mount_labels_name_the_mount_of_a_path() {
        assert_eq!(mount_label("kv2/data/a/b"), "kv2/");
        assert_eq!(mount_label("auth/userpass/login/bob"), "auth/userpass/");
        assert_eq!(mount_label("auth/userpass"), "auth/userpass/");
        assert_eq!(mount_label("sys/health"), "sys/");
        assert_eq!(mount_label("transit"), "transit/");
        assert_eq!(mount_label(""), "/");
    }
}
