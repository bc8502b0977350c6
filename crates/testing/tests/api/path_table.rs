//! The path-table invariants of the core's own trees (`sys/`, `auth/token/`, `identity/`,
//! `cubbyhole/`), in-process: every path the OpenAPI document lists reaches a handler for every
//! operation it lists, and has help. Since the router serves a path only when a row names it,
//! and the document is made from the same rows, this also proves every served path is
//! documented.
use coffer_testing::{json, TestCore};
use serde_json::Value;

const TREES: &[&str] = &["/sys/", "/auth/token/", "/identity/", "/cubbyhole/"];

/// Raw storage and the legacy unauthenticated ceremonies are served only when configured: the
/// walk turns them on so their rows are reached too.
const CONFIG: &str = "raw_storage_endpoint = true\n\
listener \"tcp\" {\n  address = \"127.0.0.1:8200\"\n  tls_disable = true\n\
  disable_unauthed_rekey_endpoints = false\n  disable_unauthed_generate_root_endpoints = false\n}\n";

/// A concrete path for an OpenAPI template: each parameter gets a value its pattern accepts.
fn concrete(template: &str) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        let j = rest[i..].find('}').map(|j| i + j).expect("closed parameter");
        out.push_str(match &rest[i + 1..j] {
            "urlbytes" => "16",
            "source" => "platform",
            "type" => "secret",
            "kind" => "tokens",
            "operation" => "init",
            "urlalgorithm" => "sha2-256",
            _ => "probe",
        });
        rest = &rest[j + 1..];
    }
    out.push_str(rest);
    out
}

/// Requests that would end the test core's usefulness (seal it, revoke the root token) or
/// never end (the log stream).
fn skipped(method: &str, path: &str) -> bool {
    matches!(
        (method, path),
        ("POST", "/sys/seal" | "/sys/step-down" | "/auth/token/revoke-self") | ("GET", "/sys/monitor")
    )
}

async fn documented(c: &TestCore) -> Vec<(String, Value)> {
    let doc = c.read("sys/internal/specs/openapi").await;
    assert_eq!(doc.status, 200, "{}", doc.body);
    let paths = doc.json()["paths"].as_object().expect("paths").clone();
    paths.into_iter().filter(|(p, _)| TREES.iter().any(|t| p.starts_with(t))).collect()
}

#[tokio::test]
async fn every_documented_system_operation_reaches_a_handler() {
    let c = TestCore::builder().config(CONFIG).start().await;
    let root = [("X-Vault-Token", c.root_token.as_str())];
    let paths = documented(&c).await;
    assert!(paths.len() > 100, "only {} system paths documented", paths.len());
    let mut unreached = Vec::new();
    let mut sent = 0;
    for (template, item) in &paths {
        let path = concrete(template);
        for method in ["get", "post", "patch", "delete"] {
            let Some(op) = item.get(method) else { continue };
            let method = method.to_uppercase();
            if skipped(&method, &path) {
                continue;
            }
            // A list-only read is sent as LIST.
            let list_only = op["parameters"]
                .as_array()
                .is_some_and(|ps| ps.iter().any(|p| p["name"] == "list" && p["required"] == true));
            let verb = if list_only { "LIST" } else { method.as_str() };
            let patch = [root[0], ("Content-Type", "application/merge-patch+json")];
            let headers: &[(&str, &str)] = if method == "PATCH" { &patch } else { &root };
            let (st, body) = c.http(verb, &format!("/v1{path}"), headers, b"{}").await;
            sent += 1;
            if st == 405 || (st == 404 && body.contains("unsupported path")) {
                unreached.push(format!("{verb} {path}: {st} {body}"));
            }
        }
    }
    assert!(sent > 150, "only {sent} requests sent");
    assert!(unreached.is_empty(), "documented but not served:\n{}", unreached.join("\n"));
    // The core is still unsealed and the root token still works after the walk.
    let me = c.read("auth/token/lookup-self").await;
    assert_eq!(me.status, 200, "{}", me.body);
}

#[tokio::test]
async fn every_documented_system_path_has_help() {
    let c = TestCore::builder().config(CONFIG).start().await;
    let root = [("X-Vault-Token", c.root_token.as_str())];
    let mut missing = Vec::new();
    for (template, _) in documented(&c).await {
        let path = concrete(&template);
        let (st, body) = c.http("GET", &format!("/v1{path}?help=1"), &root, b"").await;
        let help = if st == 200 { json(&body)["help"].as_str().unwrap_or("").to_string() } else { String::new() };
        if help.trim().is_empty() {
            missing.push(format!("{path}: {st} {body}"));
        }
    }
    assert!(missing.is_empty(), "documented paths without help:\n{}", missing.join("\n"));
}

#[tokio::test]
async fn a_system_path_no_row_names_is_not_served() {
    let c = TestCore::new().await;
    let root = [("X-Vault-Token", c.root_token.as_str())];
    for path in ["/v1/sys/generate-root-token/bogus", "/v1/sys/nope", "/v1/auth/token/nope", "/v1/identity/nope"] {
        let (st, body) = c.http("GET", path, &root, b"").await;
        assert_eq!(st, 404, "{path}: {body}");
    }
}
