//! The OpenAPI document (`sys/internal/specs/openapi`) and path help (`?help=1`), in-process
//! through the full router: the document is valid OpenAPI 3 (checked with
//! openapi-spec-validator), has the paths and fields of every mounted engine and of the system.
//! (`bao path-help` against a spawned server: crates/coffer/tests/openapi.rs.)
use crate::python;
use coffer_testing::{json, TestCore};
use serde_json::Value;

const ROOT: &[(&str, &str)] = &[("X-Vault-Token", "root")];

async fn ok(c: &TestCore, method: &str, path: &str, body: &str) -> String {
    let (st, b) = c.http(method, path, ROOT, body.as_bytes()).await;
    assert!(st == 200 || st == 204, "{method} {path}: {st} {b}");
    b
}

async fn spec(c: &TestCore) -> Value {
    let (st, body) = c.http("GET", "/v1/sys/internal/specs/openapi", ROOT, b"").await;
    assert_eq!(st, 200, "{body}");
    json(&body)
}

/// The request body schema of an operation, following its `$ref`.
fn body_schema<'a>(doc: &'a Value, path: &str, method: &str) -> &'a Value {
    let op = &doc["paths"][path][method];
    let content = op["requestBody"]["content"].as_object().unwrap_or_else(|| panic!("{method} {path}: {op}"));
    let r = content.values().next().unwrap()["schema"]["$ref"].as_str().unwrap();
    &doc["components"]["schemas"][r.trim_start_matches("#/components/schemas/")]
}

fn props(schema: &Value) -> Vec<&str> {
    schema["properties"].as_object().map(|m| m.keys().map(String::as_str).collect()).unwrap_or_default()
}

/// Mounts the engines the fuzz and document tests use; the optional ones only when this
/// build knows their type. Returns the secret mounts and auth mounts made.
async fn mount_engines(c: &TestCore) -> (Vec<&'static str>, Vec<&'static str>) {
    let mut secrets = vec!["kv", "kv2"];
    ok(c, "POST", "/v1/sys/mounts/kv", r#"{"type":"kv"}"#).await;
    ok(c, "POST", "/v1/sys/mounts/kv2", r#"{"type":"kv-v2"}"#).await;
    for ty in ["transit", "totp"] {
        let (st, _) =
            c.http("POST", &format!("/v1/sys/mounts/{ty}"), ROOT, format!(r#"{{"type":"{ty}"}}"#).as_bytes()).await;
        if st == 204 || st == 200 {
            secrets.push(ty);
        }
    }
    ok(c, "POST", "/v1/sys/auth/userpass", r#"{"type":"userpass"}"#).await;
    ok(c, "POST", "/v1/sys/auth/approle", r#"{"type":"approle"}"#).await;
    (secrets, vec!["userpass", "approle"])
}

#[tokio::test]
async fn document_is_valid_openapi_with_every_mount_and_its_fields() {
    let c = &TestCore::new().await;
    let (secrets, auths) = mount_engines(c).await;
    let doc = spec(c).await;

    assert_eq!(doc["openapi"], "3.0.2");
    assert_eq!(doc["info"]["title"], "Coffer");
    assert!(doc["info"]["version"].as_str().unwrap().contains("coffer"));
    let paths = doc["paths"].as_object().unwrap();

    // Every mount in the tables has its paths, below its mount point.
    let mounts = json(&ok(c, "GET", "/v1/sys/mounts", "").await);
    let auth = json(&ok(c, "GET", "/v1/sys/auth", "").await);
    let mut prefixes: Vec<String> = mounts["data"].as_object().unwrap().keys().map(|k| format!("/{k}")).collect();
    prefixes.extend(auth["data"].as_object().unwrap().keys().map(|k| format!("/auth/{k}")));
    for p in &prefixes {
        assert!(paths.keys().any(|k| k.starts_with(p.as_str())), "no path below {p}: {:?}", paths.keys());
    }
    for m in &secrets {
        assert!(prefixes.contains(&format!("/{m}/")), "{m} not mounted");
    }
    for m in &auths {
        assert!(prefixes.contains(&format!("/auth/{m}/")), "{m} not enabled");
    }

    // Regex groups became parameters, declared with the field's description.
    for p in ["/kv/{path}", "/kv2/data/{path}", "/kv2/metadata/{path}", "/auth/userpass/users/{username}"] {
        let params = doc["paths"][p]["parameters"].as_array().unwrap_or_else(|| panic!("{p} missing"));
        assert!(params.iter().all(|x| x["in"] == "path" && x["required"] == true), "{p}: {params:?}");
    }
    let kv2 = &doc["paths"]["/kv2/data/{path}"];
    for m in ["get", "post", "patch", "delete"] {
        assert!(kv2[m].is_object(), "kv2 data lacks {m}");
    }
    assert!(kv2["patch"]["requestBody"]["content"]["application/merge-patch+json"].is_object());
    let fields = props(body_schema(&doc, "/kv2/data/{path}", "post"));
    assert!(fields.contains(&"data") && fields.contains(&"options"), "{fields:?}");
    assert!(!fields.contains(&"path"), "URL parameters are not body fields");
    let user = body_schema(&doc, "/auth/userpass/users/{username}", "post");
    assert_eq!(user["properties"]["token_policies"]["type"], "array");
    assert_eq!(user["properties"]["token_ttl"]["type"], "integer");
    assert!(props(user).contains(&"password"));
    assert!(props(body_schema(&doc, "/auth/approle/role/{role_name}", "post")).contains(&"secret_id_ttl"));
    assert_eq!(doc["paths"]["/auth/userpass/login/{username}"]["x-vault-unauthenticated"], true);

    // List-only paths: GET with a required list=true; read-and-list paths: an optional one.
    let list = &doc["paths"]["/auth/userpass/users"]["get"]["parameters"][0];
    assert_eq!((list["name"].as_str(), list["required"].as_bool()), (Some("list"), Some(true)));
    let kvget = &doc["paths"]["/kv/{path}"]["get"]["parameters"][0];
    assert_eq!((kvget["name"].as_str(), kvget["required"].as_bool()), (Some("list"), None));

    // The hand-written system table.
    for p in [
        "/sys/seal-status",
        "/sys/health",
        "/sys/mounts",
        "/sys/mounts/{path}",
        "/sys/mounts/{path}/tune",
        "/sys/auth/{path}",
        "/sys/policies/acl/{name}",
        "/sys/policy",
        "/sys/capabilities-self",
        "/sys/leases/lookup",
        "/sys/wrapping/unwrap",
        "/sys/tools/hash",
        "/auth/token/create",
        "/auth/token/roles/{role_name}",
        "/identity/entity",
        "/cubbyhole/{path}",
    ] {
        assert!(paths.contains_key(p), "{p} missing");
    }
    let mount = body_schema(&doc, "/sys/mounts/{path}", "post");
    assert_eq!(mount["required"], serde_json::json!(["type"]));
    assert_eq!(doc["paths"]["/sys/seal"]["x-vault-sudo"], true);
    assert_eq!(doc["paths"]["/sys/seal-status"]["x-vault-unauthenticated"], true);
    assert_eq!(body_schema(&doc, "/auth/token/create", "post")["properties"]["policies"]["type"], "array");

    // Operation ids are unique (the validator does not check that).
    let mut ids = std::collections::BTreeSet::new();
    for item in paths.values() {
        for (m, op) in item.as_object().unwrap() {
            if let Some(id) = op.get("operationId").and_then(Value::as_str) {
                assert!(ids.insert(id.to_string()), "duplicate operationId {id} ({m})");
            }
        }
    }

    // generic_mount_paths is accepted (and ignored). Without a token the document is served,
    // as OpenBao serves it, but lists no path.
    let (st, body) = c.http("GET", "/v1/sys/internal/specs/openapi?generic_mount_paths=true", ROOT, b"").await;
    assert_eq!(st, 200);
    assert_eq!(json(&body)["paths"].as_object().unwrap().len(), paths.len());
    let (st, body) = c.http("GET", "/v1/sys/internal/specs/openapi", &[], b"").await;
    assert_eq!(st, 200, "{body}");
    let anonymous = json(&body);
    assert_eq!(anonymous["openapi"], doc["openapi"]);
    assert!(anonymous["paths"].as_object().unwrap().is_empty(), "{body}");

    // Valid OpenAPI 3, by an independent validator.
    if !python::ensure("openapi_spec_validator", "openapi-spec-validator") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, serde_json::to_vec(&doc).unwrap()).unwrap();
    let o = std::process::Command::new("python3")
        .args([
            "-c",
            "import json, sys\nfrom openapi_spec_validator import validate\nvalidate(json.load(open(sys.argv[1])))\nprint('valid')",
        ])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "openapi-spec-validator refused the document:\n{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

#[tokio::test]
async fn path_help_answers_for_system_and_backend_paths() {
    let c = &TestCore::new().await;
    ok(c, "POST", "/v1/sys/mounts/kv", r#"{"type":"kv"}"#).await;

    // Raw: help text and the path's OpenAPI fragment, relative to the mount.
    let v = json(&ok(c, "GET", "/v1/kv/foo?help=1", "").await);
    assert!(v["help"].as_str().unwrap().contains("ttl"), "{v}");
    assert!(v["openapi"]["paths"]["/{path}"]["post"].is_object(), "{v}");
    let v = json(&ok(c, "GET", "/v1/sys/mounts/kv?help=1", "").await);
    assert!(v["openapi"]["paths"]["/mounts/{path}"]["post"].is_object(), "{v}");
    // Help wins over the method and over sys/health's own handler.
    let v = json(&ok(c, "POST", "/v1/kv/foo?help=1", r#"{"a":"b"}"#).await);
    assert!(v["help"].is_string());
    assert_eq!(c.http("GET", "/v1/kv/foo", ROOT, b"").await.0, 404, "the help request wrote nothing");
    assert!(json(&ok(c, "GET", "/v1/sys/health?help=1", "").await)["help"].as_str().unwrap().contains("standbyok"));
    // The mount itself: an overview of its paths.
    assert!(json(&ok(c, "GET", "/v1/kv/?help=1", "").await)["help"].as_str().unwrap().contains("## PATHS"));

    // Any valid token may ask; no token may not; unknown paths are 404.
    let t = json(&ok(c, "POST", "/v1/auth/token/create", r#"{"policies":["default"]}"#).await)["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(c.http("GET", "/v1/kv/foo?help=1", &[("X-Vault-Token", &t)], b"").await.0, 200);
    assert_eq!(c.http("GET", "/v1/kv/foo?help=1", &[], b"").await.0, 403);
    assert_eq!(c.http("GET", "/v1/sys/nope?help=1", ROOT, b"").await.0, 404);
    assert_eq!(c.http("GET", "/v1/nomount/x?help=1", ROOT, b"").await.0, 404);
}
