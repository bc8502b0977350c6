//! `sys/metrics`: the process-wide metrics registry as Prometheus text or Vault's JSON, with
//! the gauges computed at scrape time (unsealed, stored tokens, active leases).

use crate::{CoreResponse, Result};
use coffer_barrier::{Barrier, SecureStorage};
use coffer_metrics::global;
use coffer_sdk::{LogicalError, Operation};
use serde_json::{Map, Value};

/// Refreshes the gauges that are computed at scrape time.
async fn refresh_gauges(barrier: &Barrier, sealed: bool) {
    let r = global();
    r.set_gauge("coffer_core_unsealed", &[], if sealed { 0.0 } else { 1.0 });
    if sealed {
        return;
    }
    if let Ok(ids) = barrier.list("sys/token/id/").await {
        r.set_gauge("coffer_tokens", &[], ids.len() as f64);
    }
    let mut leases = 0usize;
    if let Ok(buckets) = barrier.list("sys/expire/time/").await {
        for b in buckets {
            if let Ok(k) = barrier.list(&format!("sys/expire/time/{b}")).await {
                leases += k.len();
            }
        }
    }
    r.set_gauge("coffer_leases", &[], leases as f64);
}

/// The Prometheus text of every metric (also served without a token when the listener allows
/// it).
pub async fn prometheus(barrier: &Barrier, sealed: bool) -> String {
    refresh_gauges(barrier, sealed).await;
    global().render_prometheus()
}

/// `sys/metrics` (`format`: `prometheus`, `json` or empty for JSON).
pub(crate) async fn handle(
    barrier: &Barrier,
    sealed: bool,
    op: Operation,
    d: &Map<String, Value>,
) -> Result<CoreResponse> {
    if op != Operation::Read {
        return Err(LogicalError::unsupported_operation());
    }
    match d.get("format").and_then(Value::as_str).unwrap_or("") {
        "prometheus" => {
            let text = prometheus(barrier, sealed).await;
            Ok(CoreResponse {
                raw_body: Some(("text/plain; version=0.0.4".into(), text.into_bytes())),
                ..Default::default()
            })
        }
        "" | "json" => {
            refresh_gauges(barrier, sealed).await;
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
