//! A plugin built with Coffer's SDK is documented in `sys/internal/specs/openapi` by both
//! servers: Coffer documents it from the path table the plugin's help answer carries, real
//! OpenBao from the OpenAPI document in the same answer (`openapi`), which it merges under
//! the mount's path. The plugin is mounted twice (one process serves both mounts): Coffer
//! names every operation after its full path, OpenBao leaves the plugin's unnamed.
mod common;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn install(plugins: &Path) -> PathBuf {
    let built = Path::new(coffer_bin()).with_file_name("coffer-plugin-example");
    assert!(built.exists(), "build the workspace first ({} is missing)", built.display());
    let bin = plugins.join("passphrase");
    std::fs::copy(&built, &bin).unwrap();
    bin
}

/// Registers the plugin, mounts it at `pp/` and `pq/`, and returns the server's OpenAPI document.
fn document_with_plugin(addr: &str, bin: &Path) -> Value {
    let t = [("X-Vault-Token", "root")];
    let body = format!(r#"{{"sha256":"{}","command":"passphrase"}}"#, sha256_hex(bin));
    let (st, b) = http(addr, "PUT", "/v1/sys/plugins/catalog/secret/passphrase", &t, body.as_bytes());
    assert_eq!(st, 204, "{b}");
    for mount in ["pp", "pq"] {
        let (st, b) = http(addr, "POST", &format!("/v1/sys/mounts/{mount}"), &t, br#"{"type":"passphrase"}"#);
        assert_eq!(st, 204, "{b}");
    }
    let (st, b) = http(addr, "GET", "/v1/sys/internal/specs/openapi", &t, b"");
    assert_eq!(st, 200, "{b}");
    json(&b)
}

/// The request body schema of `op`, following a `$ref` into the document's components.
fn body_schema<'a>(doc: &'a Value, op: &'a Value) -> &'a Value {
    let schema = &op["requestBody"]["content"]["application/json"]["schema"];
    match schema["$ref"].as_str() {
        Some(r) => &doc["components"]["schemas"][r.strip_prefix("#/components/schemas/").unwrap()],
        None => schema,
    }
}

/// The plugin's paths, operations and parameters, as the passphrase engine declares them.
fn assert_documents_the_plugin(server: &str, doc: &Value) {
    let paths = doc["paths"].as_object().unwrap();
    let config = &paths.get("/pp/config").unwrap_or_else(|| {
        panic!(
            "{server}: /pp/config missing; plugin paths: {:?}",
            paths.keys().filter(|k| k.starts_with("/pp")).collect::<Vec<_>>()
        )
    });
    assert!(config["get"].is_object() && config["post"].is_object(), "{server}: {config}");
    let schema = body_schema(doc, &config["post"]);
    assert_eq!(schema["properties"]["words"]["type"], "integer", "{server}: {schema}");
    assert_eq!(schema["properties"]["separator"]["type"], "string", "{server}: {schema}");

    let gen = &paths["/pp/gen"];
    assert!(gen["get"].is_object() && gen["post"].is_object(), "{server}: {gen}");

    let issued = &paths["/pp/issued/{id}"];
    assert!(issued["get"].is_object() && issued["delete"].is_object(), "{server}: {issued}");
    assert!(issued["post"].is_null(), "{server}: no write on issued/{{id}}: {issued}");
    let p = &issued["parameters"][0];
    assert_eq!((p["name"].as_str(), p["in"].as_str()), (Some("id"), Some("path")), "{server}: {issued}");

    let list = &paths["/pp/issued"];
    assert!(list["get"].is_object(), "{server}: the list operation: {list}");

    // The plugin's operations under its two mounts (one process serves both) repeat no
    // operationId: the plugin's fragment names none, since ids in it would be the same for
    // every mount. OpenBao lists them without one (observed on 2.7.2, whose own documents do
    // repeat ids: `generate-root-token`, and `kv-read-config` for each kv mount).
    let ops = |prefix: &str| -> Vec<(String, Value)> {
        let mut v = Vec::new();
        for (path, item) in paths.iter().filter(|(k, _)| k.starts_with(prefix)) {
            for m in ["get", "post", "patch", "delete"] {
                if item[m].is_object() {
                    v.push((format!("{m} {path}"), item[m]["operationId"].clone()));
                }
            }
        }
        v
    };
    let (pp, pq) = (ops("/pp/"), ops("/pq/"));
    assert_eq!(pp.len(), pq.len(), "{server}: both mounts are documented alike");
    let mut ids = std::collections::BTreeSet::new();
    for (op, id) in pp.iter().chain(&pq) {
        if let Some(id) = id.as_str() {
            assert!(ids.insert(id.to_string()), "{server}: operationId {id} ({op}) repeated");
        }
    }
}

/// Coffer names every operation after its full path, so its ids are unique in the whole
/// document and a plugin's differ from one mount to the other.
fn assert_coffer_names_every_operation_once(doc: &Value) {
    let mut ids = std::collections::BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for m in ["get", "post", "patch", "delete"] {
            if item[m].is_object() {
                let id = item[m]["operationId"].as_str().unwrap_or_else(|| panic!("{m} {path} has no operationId"));
                assert!(ids.insert(id.to_string()), "operationId {id} repeated ({m} {path})");
            }
        }
    }
    assert_eq!(doc["paths"]["/pp/config"]["post"]["operationId"], "write-pp-config");
    assert_eq!(doc["paths"]["/pq/config"]["post"]["operationId"], "write-pq-config");
    assert_eq!(doc["paths"]["/pq/issued/{id}"]["delete"]["operationId"], "delete-pq-issued-id");
}

#[test]
fn a_plugin_mounted_twice_is_in_the_openapi_document_of_coffer_and_of_openbao_without_repeated_operation_ids() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let bin = install(&plugins);

    let s = Server::start_dev_logging_to(
        "root",
        &[&format!("-dev-plugin-dir={}", plugins.display())],
        &dir.path().join("dev.log"),
    );
    let doc = document_with_plugin(&s.addr, &bin);
    assert_documents_the_plugin("coffer", &doc);
    assert_coffer_names_every_operation_once(&doc);
    drop(s);

    let Some(bao) = bao_path() else { return };
    let real = RealBao::start_with(&bao, &[&format!("-dev-plugin-dir={}", plugins.canonicalize().unwrap().display())]);
    assert_documents_the_plugin("openbao", &document_with_plugin(&real.addr, &bin));
}
