//! A process-wide metrics registry with the two renderings Coffer needs: Prometheus text
//! (`sys/metrics?format=prometheus`) and Vault's JSON (`Gauges`/`Counters`/`Samples`).
//!
//! Recording is lock-light and allocation-free: a metric is found by a hash of its name and
//! labels (compared in place, nothing is built to look it up) in a read-locked map and updated
//! with atomics; only the first sight of a new label set takes the write lock.
#![forbid(unsafe_code)]

use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

/// Histogram bucket bounds, in seconds.
pub const BUCKETS: [f64; 12] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0];

type Key = (String, Vec<(String, String)>);

#[derive(Default)]
struct Histogram {
    /// Observations per bucket (not cumulative).
    buckets: [AtomicU64; 12],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

/// One counter of a registry (see [`Registry::counter`]).
#[derive(Clone)]
pub struct CounterHandle(Arc<AtomicU64>);

impl CounterHandle {
    pub fn incr(&self, by: u64) {
        self.0.fetch_add(by, Ordering::Relaxed);
    }
}

/// One histogram of a registry (see [`Registry::histogram`]).
#[derive(Clone)]
pub struct HistogramHandle(Arc<Histogram>);

impl HistogramHandle {
    pub fn observe(&self, d: std::time::Duration) {
        let h = &self.0;
        // Each observation counts in its own bucket only; rendering makes them cumulative.
        let secs = d.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            h.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        h.count.fetch_add(1, Ordering::Relaxed);
        h.sum_nanos.fetch_add(d.as_nanos().min(u64::MAX as u128) as u64, Ordering::Relaxed);
    }
}

#[derive(Default)]
pub struct Registry {
    counters: Family<AtomicU64>,
    gauges: Family<AtomicU64>,
    histograms: Family<Histogram>,
    help: RwLock<BTreeMap<String, String>>,
}

/// The process-wide registry.
pub fn global() -> &'static Registry {
    static R: OnceLock<Registry> = OnceLock::new();
    R.get_or_init(Registry::default)
}

type Slot<T> = (Key, Arc<T>);

/// The metrics of one kind, by hash of (name, labels); a bucket holds the (rare) collisions.
struct Family<T> {
    /// Labels are mount paths and operation names (bounded sets), so a fast hasher is safe.
    hasher: foldhash::fast::RandomState,
    map: RwLock<HashMap<u64, Vec<Slot<T>>>>,
}

impl<T> Default for Family<T> {
    fn default() -> Self {
        Family { hasher: Default::default(), map: Default::default() }
    }
}

fn same(k: &Key, name: &str, labels: &[(&str, &str)]) -> bool {
    k.0 == name && k.1.len() == labels.len() && k.1.iter().zip(labels).all(|((a, b), (c, d))| a == c && b == d)
}

impl<T: Default> Family<T> {
    fn hash(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        let mut h = self.hasher.build_hasher();
        name.hash(&mut h);
        for (k, v) in labels {
            k.hash(&mut h);
            v.hash(&mut h);
        }
        h.finish()
    }

    fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<Arc<T>> {
        let h = self.hash(name, labels);
        if let Some(v) = self.map.read().ok()?.get(&h).and_then(|b| b.iter().find(|(k, _)| same(k, name, labels))) {
            return Some(v.1.clone());
        }
        let mut map = self.map.write().ok()?;
        let bucket = map.entry(h).or_default();
        if let Some((_, v)) = bucket.iter().find(|(k, _)| same(k, name, labels)) {
            return Some(v.clone());
        }
        let v = Arc::new(T::default());
        bucket.push((key(name, labels), v.clone()));
        Some(v)
    }

    /// Every metric, sorted by name and labels (for rendering).
    fn sorted(&self) -> Vec<Slot<T>> {
        let mut all: Vec<Slot<T>> =
            self.map.read().map(|m| m.values().flatten().cloned().collect()).unwrap_or_default();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }
}

fn key(name: &str, labels: &[(&str, &str)]) -> Key {
    (name.to_string(), labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
}

impl Registry {
    pub fn describe(&self, name: &str, help: &str) {
        if let Ok(mut h) = self.help.write() {
            h.entry(name.to_string()).or_insert_with(|| help.to_string());
        }
    }

    pub fn incr(&self, name: &str, labels: &[(&str, &str)], by: u64) {
        if let Some(c) = self.counters.get(name, labels) {
            c.fetch_add(by, Ordering::Relaxed);
        }
    }

    pub fn set_gauge(&self, name: &str, labels: &[(&str, &str)], value: f64) {
        if let Some(g) = self.gauges.get(name, labels) {
            g.store(value.to_bits(), Ordering::Relaxed);
        }
    }

    pub fn observe(&self, name: &str, labels: &[(&str, &str)], d: std::time::Duration) {
        if let Some(h) = self.histogram(name, labels) {
            h.observe(d);
        }
    }

    /// A counter to add to without looking it up each time (for hot paths).
    pub fn counter(&self, name: &str, labels: &[(&str, &str)]) -> Option<CounterHandle> {
        self.counters.get(name, labels).map(CounterHandle)
    }

    /// A histogram to record into without looking it up each time (for hot paths).
    pub fn histogram(&self, name: &str, labels: &[(&str, &str)]) -> Option<HistogramHandle> {
        self.histograms.get(name, labels).map(HistogramHandle)
    }

    /// Prometheus text exposition format 0.0.4.
    pub fn render_prometheus(&self) -> String {
        fn labels(l: &[(String, String)], extra: Option<(&str, String)>) -> String {
            let mut parts: Vec<String> = l
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")))
                .collect();
            if let Some((k, v)) = extra {
                parts.push(format!("{k}=\"{v}\""));
            }
            if parts.is_empty() {
                String::new()
            } else {
                format!("{{{}}}", parts.join(","))
            }
        }
        let help = self.help.read().map(|h| h.clone()).unwrap_or_default();
        let mut out = String::new();
        let header = |out: &mut String, name: &str, ty: &str, last: &mut String| {
            if last != name {
                out.push_str(&format!(
                    "# HELP {name} {}\n# TYPE {name} {ty}\n",
                    help.get(name).map(String::as_str).unwrap_or(name)
                ));
                *last = name.to_string();
            }
        };
        let mut last = String::new();
        {
            for ((name, l), v) in self.counters.sorted().iter() {
                header(&mut out, name, "counter", &mut last);
                out.push_str(&format!("{name}{} {}\n", labels(l, None), v.load(Ordering::Relaxed)));
            }
        }
        {
            for ((name, l), v) in self.gauges.sorted().iter() {
                header(&mut out, name, "gauge", &mut last);
                out.push_str(&format!("{name}{} {}\n", labels(l, None), f64::from_bits(v.load(Ordering::Relaxed))));
            }
        }
        {
            for ((name, l), v) in self.histograms.sorted().iter() {
                header(&mut out, name, "histogram", &mut last);
                let mut cumulative = 0;
                for (i, b) in BUCKETS.iter().enumerate() {
                    cumulative += v.buckets[i].load(Ordering::Relaxed);
                    out.push_str(&format!("{name}_bucket{} {cumulative}\n", labels(l, Some(("le", b.to_string())))));
                }
                let count = v.count.load(Ordering::Relaxed);
                out.push_str(&format!("{name}_bucket{} {count}\n", labels(l, Some(("le", "+Inf".into())))));
                out.push_str(&format!(
                    "{name}_sum{} {}\n",
                    labels(l, None),
                    v.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9
                ));
                out.push_str(&format!("{name}_count{} {count}\n", labels(l, None)));
            }
        }
        out
    }

    /// Vault's JSON metrics shape (go-metrics' in-memory sink).
    pub fn render_json(&self, timestamp: &str) -> Value {
        let lbl = |l: &[(String, String)]| -> Value {
            l.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect()
        };
        let counters: Vec<Value> = self
            .counters
            .sorted()
            .iter()
            .map(|((n, l), v)| {
                let x = v.load(Ordering::Relaxed);
                json!({"Name": n, "Count": x, "Sum": x, "Min": 1, "Max": 1, "Mean": 1, "Stddev": 0, "Rate": x, "Labels": lbl(l)})
            })
            .collect();
        let gauges: Vec<Value> = self
            .gauges
            .sorted()
            .iter()
            .map(|((n, l), v)| json!({"Name": n, "Value": f64::from_bits(v.load(Ordering::Relaxed)), "Labels": lbl(l)}))
            .collect();
        let samples: Vec<Value> = self
            .histograms
            .sorted()
            .iter()
            .map(|((n, l), v)| {
                let count = v.count.load(Ordering::Relaxed);
                let sum_ms = v.sum_nanos.load(Ordering::Relaxed) as f64 / 1e6;
                let mean = if count > 0 { sum_ms / count as f64 } else { 0.0 };
                json!({"Name": n, "Count": count, "Sum": sum_ms, "Mean": mean, "Rate": sum_ms, "Labels": lbl(l)})
            })
            .collect();
        json!({ "Timestamp": timestamp, "Gauges": gauges, "Counters": counters, "Points": [], "Samples": samples })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_gauges_and_histograms() {
        let r = Registry::default();
        r.describe("req_total", "Requests");
        r.incr("req_total", &[("mount", "kv/"), ("op", "read")], 2);
        r.set_gauge("unsealed", &[], 1.0);
        r.observe("latency_seconds", &[("op", "read")], std::time::Duration::from_micros(300));
        let text = r.render_prometheus();
        assert!(text.contains("# TYPE req_total counter"));
        assert!(text.contains("req_total{mount=\"kv/\",op=\"read\"} 2"));
        assert!(text.contains("unsealed 1"));
        assert!(text.contains("latency_seconds_bucket{op=\"read\",le=\"0.0005\"} 1"));
        assert!(text.contains("latency_seconds_bucket{op=\"read\",le=\"0.00025\"} 0"));
        assert!(text.contains("latency_seconds_count{op=\"read\"} 1"));
        let j = r.render_json("t");
        assert_eq!(j["Counters"][0]["Count"], 2);
        assert_eq!(j["Gauges"][0]["Value"], 1.0);
    }
}
