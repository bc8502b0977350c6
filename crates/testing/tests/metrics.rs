//! A device declared in the configuration records requests and cannot be removed through the
//! API; the Prometheus metrics answer without a token when the listener allows it, and parse
//! with the reference parser. In a test binary of its own: the metrics registry is process-wide,
//! and no other test here seals a core, so `coffer_core_unsealed` stays 1.
use coffer_testing::{json, TestCore};
use std::io::Read;

#[tokio::test]
async fn declared_audit_device_and_prometheus_metrics_without_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("declared.log");
    let config = format!(
        "storage \"inmem\" {{}}\nlistener \"tcp\" {{\n  address = \"127.0.0.1:8200\"\n  tls_disable = true\n  telemetry {{\n    unauthenticated_metrics_access = true\n  }}\n}}\naudit \"file\" \"declared\" {{\n  options {{\n    file_path = \"{}\"\n  }}\n}}\n",
        log.display()
    );
    let mut c = TestCore::builder().uninitialized().config(&config).start().await;
    let (_, root_token) = c.init_unseal().await;
    let t = [("X-Vault-Token", root_token.as_str())];
    assert_eq!(c.http("POST", "/v1/sys/mounts/kv", &t, br#"{"type":"kv"}"#).await.0, 204);
    assert_eq!(c.http("PUT", "/v1/kv/a", &t, br#"{"x":"1"}"#).await.0, 204);
    let mut text = String::new();
    std::fs::File::open(&log).unwrap().read_to_string(&mut text).unwrap();
    assert!(text.contains("\"path\":\"kv/a\""), "the declared device records requests");
    let (st, _) = c.http("DELETE", "/v1/sys/audit/declared", &t, b"").await;
    assert_eq!(st, 400, "declared devices are not removed through the API");

    let (st, metrics) = c.http("GET", "/v1/sys/metrics?format=prometheus", &[], b"").await;
    assert_eq!(st, 200);
    assert!(metrics.contains("coffer_requests_total{mount=\"kv/\",operation=\"update\",outcome=\"ok\"}"), "{metrics}");
    assert!(metrics.contains("coffer_core_unsealed 1"));
    // Validate the exposition format with the reference Python parser.
    let ensure = std::process::Command::new("python3").args(["-c", "import prometheus_client"]).status().unwrap();
    if !ensure.success() {
        let _ = std::process::Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", "prometheus-client"])
            .status();
    }
    let f = dir.path().join("m.txt");
    std::fs::write(&f, &metrics).unwrap();
    let o = std::process::Command::new("python3")
        .arg("-c")
        .arg("import sys\nfrom prometheus_client.parser import text_string_to_metric_families as p\nfams=list(p(open(sys.argv[1]).read()))\nprint(len(fams))")
        .arg(&f)
        .output()
        .unwrap();
    assert!(o.status.success(), "prometheus parser rejected the output: {}", String::from_utf8_lossy(&o.stderr));
    let n: usize = String::from_utf8_lossy(&o.stdout).trim().parse().unwrap();
    assert!(n >= 5, "metric families parsed: {n}");
    let (st, j) = c.http("GET", "/v1/sys/metrics", &t, b"").await;
    assert_eq!(st, 200);
    assert!(json(&j)["Counters"].is_array(), "JSON format by default");
}
