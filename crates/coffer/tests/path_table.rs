//! The path-table invariants of the core's own trees (`sys/`, `auth/token/`, `identity/`,
//! `cubbyhole/`): every path the OpenAPI document lists reaches a handler for every operation
//! it lists, and has help. Since the router serves a path only when a row names it, and the
//! document is made from the same rows, this also proves every served path is documented.
mod common;
use common::*;
use serde_json::Value;

const ROOT: &[(&str, &str)] = &[("X-Vault-Token", "root")];
const TREES: &[&str] = &["/sys/", "/auth/token/", "/identity/", "/cubbyhole/"];

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

/// Requests that would end the test server's usefulness (seal it, revoke the root token) or
/// never end (the log stream); raw storage and the legacy unauthenticated ceremonies, which a
/// server refuses until its configuration turns them on (`raw_storage_endpoint`, the listener's
/// `disable_unauthed_*` options: see `raw_storage.rs` and `pgp_shares.rs` for them served).
fn skipped(method: &str, path: &str) -> bool {
    matches!(
        (method, path),
        ("POST", "/sys/seal" | "/sys/step-down" | "/auth/token/revoke-self") | ("GET", "/sys/monitor")
    ) || ["/sys/raw", "/sys/generate-root/", "/sys/rekey/", "/sys/rekey-recovery-key/"]
        .iter()
        .any(|p| path.starts_with(p) && !path.ends_with("backup"))
}

fn documented(addr: &str) -> Vec<(String, Value)> {
    let (st, body) = http(addr, "GET", "/v1/sys/internal/specs/openapi", ROOT, b"");
    assert_eq!(st, 200, "{body}");
    let doc = json(&body);
    let paths = doc["paths"].as_object().expect("paths").clone();
    paths.into_iter().filter(|(p, _)| TREES.iter().any(|t| p.starts_with(t))).collect()
}

#[test]
fn every_documented_system_operation_reaches_a_handler() {
    let s = Server::start_dev("root");
    let addr = s.addr.as_str();
    let paths = documented(addr);
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
            let headers: &[(&str, &str)] = if method == "PATCH" {
                &[("X-Vault-Token", "root"), ("Content-Type", "application/merge-patch+json")]
            } else {
                ROOT
            };
            let (st, body) = http(addr, verb, &format!("/v1{path}"), headers, b"{}");
            sent += 1;
            if st == 405 || (st == 404 && body.contains("unsupported path")) {
                unreached.push(format!("{verb} {path}: {st} {body}"));
            }
        }
    }
    assert!(sent > 150, "only {sent} requests sent");
    assert!(unreached.is_empty(), "documented but not served:\n{}", unreached.join("\n"));
    // The server is still unsealed and the root token still works after the walk.
    let (st, body) = http(addr, "GET", "/v1/auth/token/lookup-self", ROOT, b"");
    assert_eq!(st, 200, "{body}");
}

#[test]
fn every_documented_system_path_has_help() {
    let s = Server::start_dev("root");
    let addr = s.addr.as_str();
    let mut missing = Vec::new();
    for (template, _) in documented(addr) {
        let path = concrete(&template);
        if ["/sys/generate-root/", "/sys/rekey/", "/sys/rekey-recovery-key/"].iter().any(|p| path.starts_with(p)) {
            continue; // refused by the listener before help is looked up (see `skipped`)
        }
        let (st, body) = http(addr, "GET", &format!("/v1{path}?help=1"), ROOT, b"");
        let help = if st == 200 { json(&body)["help"].as_str().unwrap_or("").to_string() } else { String::new() };
        if help.trim().is_empty() {
            missing.push(format!("{path}: {st} {body}"));
        }
    }
    assert!(missing.is_empty(), "documented paths without help:\n{}", missing.join("\n"));
}

#[test]
fn a_system_path_no_row_names_is_not_served() {
    let s = Server::start_dev("root");
    let addr = s.addr.as_str();
    for path in ["/v1/sys/generate-root-token/bogus", "/v1/sys/nope", "/v1/auth/token/nope", "/v1/identity/nope"] {
        let (st, body) = http(addr, "GET", path, ROOT, b"");
        assert_eq!(st, 404, "{path}: {body}");
    }
}
