//! The running core as an operator inspects it, in-process through the full router: the
//! requests in flight, the configuration without its secrets, the counters, and the options
//! audit devices refuse or honour. (What needs the process, monitor streams, log and pid files,
//! signals, start-up refusals, stays in crates/coffer/tests/runtime_endpoints.rs.)
use coffer_testing::{json, TestCore};

#[tokio::test]
async fn in_flight_requests_sanitized_configuration_and_counters() {
    let mut c = TestCore::builder().uninitialized().file_storage().start().await;
    let (_, root) = c.init_unseal().await;
    let h: &[(&str, &str)] = &[("X-Vault-Token", &root)];
    let (st, b) = c.http("GET", "/v1/sys/in-flight-req", h, b"").await;
    assert_eq!(st, 200, "{b}");
    let v = json(&b);
    let me: Vec<_> = v.as_object().unwrap().values().collect();
    assert_eq!(me.len(), 1, "only this request is in flight: {b}");
    assert_eq!(
        (me[0]["request_path"].as_str(), me[0]["request_method"].as_str()),
        (Some("/v1/sys/in-flight-req"), Some("GET"))
    );
    assert_eq!(me[0]["client_remote_address"].as_str(), Some(coffer_testing::DEFAULT_PEER), "the client's address");

    let (st, b) = c.http("GET", "/v1/sys/config/state/sanitized", h, b"").await;
    assert_eq!(st, 200, "{b}");
    let cfg = &json(&b)["data"];
    assert_eq!(cfg["storage"]["type"], "file");
    assert_eq!(cfg["listeners"][0]["config"]["address"], c.config.listeners[0].address.as_str());
    let data = c.dir().unwrap().join("data").display().to_string();
    assert!(!b.contains(&data), "storage options are not shown: {b}");

    let (_, b) = c.http("GET", "/v1/sys/internal/counters/tokens", h, b"").await;
    assert_eq!(json(&b)["data"]["counters"]["service_tokens"]["total"], 1, "the root token: {b}");
}

#[tokio::test]
async fn audit_devices_refuse_filtering_and_unknown_options_and_honour_mode() {
    use std::os::unix::fs::PermissionsExt;
    let c = TestCore::new().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("audit.log");
    for (opts, word) in [
        (format!(r#"{{"file_path":"{}","filter":"operation == \"read\""}}"#, file.display()), "filter"),
        (format!(r#"{{"file_path":"{}","fallback":"true"}}"#, file.display()), "fallback"),
        (format!(r#"{{"file_path":"{}","bogus":"1"}}"#, file.display()), "bogus"),
    ] {
        let body = format!(r#"{{"type":"file","options":{opts}}}"#);
        let (st, b) = c.http("PUT", "/v1/sys/audit/f", &[("X-Vault-Token", "root")], body.as_bytes()).await;
        assert!(st == 400 && b.contains(word), "{word}: {st} {b}");
    }
    assert!(!file.exists(), "nothing was enabled");
    let body = format!(
        r#"{{"type":"file","options":{{"file_path":"{}","mode":"0640","elide_list_responses":"true"}}}}"#,
        file.display()
    );
    assert_eq!(c.http("PUT", "/v1/sys/audit/f", &[("X-Vault-Token", "root")], body.as_bytes()).await.0, 204);
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o640);

    // elide_list_responses: a list answer's keys are recorded as their count.
    for k in ["a", "b", "c"] {
        assert_eq!(
            c.http("POST", &format!("/v1/secret/data/{k}"), &[("X-Vault-Token", "root")], br#"{"data":{"v":"1"}}"#)
                .await
                .0,
            200
        );
    }
    assert_eq!(c.http("LIST", "/v1/secret/metadata/", &[("X-Vault-Token", "root")], b"").await.0, 200);
    let log = std::fs::read_to_string(&file).unwrap();
    let listed = log
        .lines()
        .map(json)
        .find(|e| e["type"] == "response" && e["request"]["operation"] == "list")
        .unwrap_or_else(|| panic!("no list response in the audit log:\n{log}"));
    assert_eq!(listed["response"]["data"]["keys"], 3, "{listed}");
}
