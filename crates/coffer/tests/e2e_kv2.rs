//! KV version 2 driven by the real `bao` CLI against `coffer server -dev`: every `bao kv`
//! subcommand, the v1 → v2 upgrade by tuning, and a differential run of the same `-format=json`
//! commands against a real `bao server -dev`, comparing the JSON shapes of the answers.
mod common;
use common::*;
use serde_json::Value;
use std::time::{Duration, Instant};

/// Runs `bao args…` and returns stdout, failing the test on a non-zero exit.
fn bao_ok(bao: &str, addr: &str, args: &[&str]) -> String {
    let o = cli(bao, addr, Some("root"), args);
    assert!(o.status.success(), "bao {args:?} failed ({:?}):\n{}", o.status.code(), out(&o));
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn bao_json(bao: &str, addr: &str, args: &[&str]) -> Value {
    json(&bao_ok(bao, addr, args))
}

/// Runs `bao args…` and returns (exit code, combined output).
fn bao_rc(bao: &str, addr: &str, args: &[&str]) -> (i32, String) {
    let o = cli(bao, addr, Some("root"), args);
    (o.status.code().unwrap_or(-1), out(&o))
}

#[test]
fn bao_kv_subcommands_work_against_coffer() {
    let Some(bao) = bao_path() else { return };
    let server = Server::start_dev("root");
    let a = server.addr.as_str();
    let b = bao.as_str();

    bao_ok(b, a, &["secrets", "enable", "-version=2", "-path=kv2", "kv"]);
    let mounts = bao_json(b, a, &["secrets", "list", "-format=json"]);
    assert_eq!(mounts["kv2/"]["options"]["version"], "2", "{mounts}");

    // put, put -cas
    let w = bao_json(b, a, &["kv", "put", "-format=json", "kv2/app", "user=a", "pass=1"]);
    assert_eq!(w["data"]["version"], 1, "{w}");
    assert_eq!(w["data"]["deletion_time"], "");
    let w = bao_json(b, a, &["kv", "put", "-format=json", "-cas=1", "kv2/app", "user=b", "pass=2"]);
    assert_eq!(w["data"]["version"], 2);
    let (rc, o) = bao_rc(b, a, &["kv", "put", "-cas=1", "kv2/app", "user=c"]);
    assert_eq!(rc, 2, "{o}");
    assert!(o.contains("Code: 400") && o.contains("check-and-set parameter did not match the current version"), "{o}");

    // get, get -version, get -field
    let g = bao_json(b, a, &["kv", "get", "-format=json", "kv2/app"]);
    assert_eq!(g["data"]["data"], serde_json::json!({"user": "b", "pass": "2"}));
    assert_eq!(g["data"]["metadata"]["version"], 2);
    assert_eq!(bao_ok(b, a, &["kv", "get", "-version=1", "-field=user", "kv2/app"]), "a");
    assert_eq!(bao_ok(b, a, &["kv", "get", "-field=pass", "kv2/app"]), "2");
    let table = bao_ok(b, a, &["kv", "get", "kv2/app"]);
    assert!(table.contains("kv2/data/app") && table.contains("version            2"), "{table}");

    // patch (HTTP PATCH), patch -method=rw, patch -cas
    let p = bao_json(b, a, &["kv", "patch", "-format=json", "kv2/app", "extra=x"]);
    assert_eq!(p["data"]["version"], 3);
    bao_ok(b, a, &["kv", "patch", "-method=rw", "kv2/app", "more=y"]);
    let (rc, o) = bao_rc(b, a, &["kv", "patch", "-cas=1", "kv2/app", "no=1"]);
    assert_eq!(rc, 2, "{o}");
    let g = bao_json(b, a, &["kv", "get", "-format=json", "kv2/app"]);
    assert_eq!(g["data"]["data"], serde_json::json!({"user": "b", "pass": "2", "extra": "x", "more": "y"}));
    assert_eq!(g["data"]["metadata"]["version"], 4);

    // rollback writes version 1's data as version 5
    let r = bao_json(b, a, &["kv", "rollback", "-format=json", "-version=1", "kv2/app"]);
    assert_eq!(r["data"]["version"], 5, "{r}");
    assert_eq!(bao_ok(b, a, &["kv", "get", "-field=user", "kv2/app"]), "a");

    // list
    bao_ok(b, a, &["kv", "put", "kv2/dir/one", "a=1"]);
    bao_ok(b, a, &["kv", "put", "kv2/dir/sub/two", "b=2"]);
    assert_eq!(bao_json(b, a, &["kv", "list", "-format=json", "kv2/"]), serde_json::json!(["app", "dir/"]));
    assert_eq!(bao_json(b, a, &["kv", "list", "-format=json", "kv2/dir"]), serde_json::json!(["one", "sub/"]));
    let (rc, _) = bao_rc(b, a, &["kv", "list", "kv2/nope"]);
    assert_eq!(rc, 2);
    // Recursive listing: `bao kv scan`, and LIST with recursive=true over HTTP.
    assert_eq!(bao_json(b, a, &["kv", "scan", "-format=json", "kv2/dir"]), serde_json::json!(["one", "sub/two"]));
    let (st, body) = http(a, "GET", "/v1/kv2/metadata/?list=true&recursive=true", &[("X-Vault-Token", "root")], b"");
    assert_eq!(st, 200, "{body}");
    assert_eq!(json(&body)["data"]["keys"], serde_json::json!(["app", "dir/one", "dir/sub/two"]));
    let (st, body) = http(a, "LIST", "/v1/kv2/metadata/dir?recursive=true", &[("X-Vault-Token", "root")], b"");
    assert_eq!((st, json(&body)["data"]["keys"].clone()), (200, serde_json::json!(["one", "sub/two"])), "{body}");

    // delete (latest), undelete, destroy
    bao_ok(b, a, &["kv", "delete", "kv2/app"]);
    let (rc, o) = bao_rc(b, a, &["kv", "get", "kv2/app"]);
    // As with OpenBao: no data, the version's metadata (with its deletion_time), exit 0.
    assert_eq!(rc, 0, "{o}");
    assert!(
        o.contains("deletion_time") && !o.contains("== Data =="),
        "a soft-deleted latest version shows only metadata: {o}"
    );
    bao_ok(b, a, &["kv", "undelete", "-versions=5", "kv2/app"]);
    assert_eq!(bao_ok(b, a, &["kv", "get", "-field=user", "kv2/app"]), "a");
    bao_ok(b, a, &["kv", "delete", "-versions=2", "kv2/app"]);
    bao_ok(b, a, &["kv", "destroy", "-versions=1", "kv2/app"]);
    let (rc, o) = bao_rc(b, a, &["kv", "get", "-version=1", "kv2/app"]);
    assert_eq!(rc, 0, "{o}");
    assert!(
        o.contains("destroyed") && o.contains("true") && !o.contains("== Data =="),
        "a destroyed version shows only metadata: {o}"
    );
    let m = bao_json(b, a, &["kv", "metadata", "get", "-format=json", "kv2/app"]);
    assert_eq!(m["data"]["versions"]["1"]["destroyed"], true, "{m}");
    assert_ne!(m["data"]["versions"]["2"]["deletion_time"], "", "{m}");
    assert_eq!(m["data"]["current_version"], 5);

    // metadata put / patch / get / delete
    bao_ok(b, a, &["kv", "metadata", "put", "-max-versions=3", "-custom-metadata=owner=me", "kv2/app"]);
    bao_ok(b, a, &["kv", "metadata", "patch", "-custom-metadata=team=t", "-cas-required=true", "kv2/app"]);
    let m = bao_json(b, a, &["kv", "metadata", "get", "-format=json", "kv2/app"]);
    assert_eq!(m["data"]["custom_metadata"], serde_json::json!({"owner": "me", "team": "t"}), "{m}");
    assert_eq!((m["data"]["max_versions"].clone(), m["data"]["cas_required"].clone()), (3.into(), true.into()));
    let (rc, o) = bao_rc(b, a, &["kv", "put", "kv2/app", "x=1"]);
    assert!(rc == 2 && o.contains("check-and-set parameter required"), "{o}");
    bao_ok(b, a, &["kv", "put", "-cas=5", "kv2/app", "x=1"]);
    let m = bao_json(b, a, &["kv", "metadata", "get", "-format=json", "kv2/app"]);
    let kept: Vec<&String> = m["data"]["versions"].as_object().unwrap().keys().collect();
    assert_eq!(kept, ["4", "5", "6"], "max_versions=3 pruned the oldest on write");
    assert_eq!(m["data"]["oldest_version"], 4);
    bao_ok(b, a, &["kv", "metadata", "delete", "kv2/app"]);
    assert_eq!(bao_rc(b, a, &["kv", "get", "kv2/app"]).0, 2);
    assert_eq!(bao_rc(b, a, &["kv", "metadata", "get", "kv2/app"]).0, 2);

    // subkeys and config through the generic commands
    bao_ok(b, a, &["kv", "put", "kv2/nested", "a=1"]);
    let s = bao_json(b, a, &["read", "-format=json", "kv2/subkeys/nested"]);
    assert_eq!(s["data"]["subkeys"], serde_json::json!({"a": null}));
    bao_ok(b, a, &["write", "kv2/config", "max_versions=5", "delete_version_after=1h"]);
    let c = bao_json(b, a, &["read", "-format=json", "kv2/config"]);
    assert_eq!(c["data"]["delete_version_after"], "1h0m0s");

    // A KV v1 mount tuned to version 2 keeps its secrets as version 1.
    bao_ok(b, a, &["secrets", "enable", "-path=old", "kv"]);
    bao_ok(b, a, &["kv", "put", "old/a", "x=1"]);
    bao_ok(b, a, &["kv", "put", "old/deep/b", "y=2"]);
    bao_ok(b, a, &["secrets", "tune", "-options=version=2", "old"]);
    let g = bao_json(b, a, &["kv", "get", "-format=json", "old/a"]);
    assert_eq!(g["data"]["data"], serde_json::json!({"x": "1"}), "{g}");
    assert_eq!(g["data"]["metadata"]["version"], 1);
    assert_eq!(bao_ok(b, a, &["kv", "get", "-field=y", "old/deep/b"]), "2");
    let w = bao_json(b, a, &["kv", "put", "-format=json", "old/a", "x=2"]);
    assert_eq!(w["data"]["version"], 2);
    // enable-versioning is the CLI's name for the same tune.
    bao_ok(b, a, &["secrets", "enable", "-path=old2", "kv"]);
    bao_ok(b, a, &["kv", "put", "old2/k", "v=1"]);
    bao_ok(b, a, &["kv", "enable-versioning", "old2"]);
    assert_eq!(bao_json(b, a, &["kv", "get", "-format=json", "old2/k"])["data"]["metadata"]["version"], 1);
}

/// The type skeleton of a JSON value: every leaf replaced by its type name.
fn shape(v: &Value) -> Value {
    match v {
        Value::Null => "null".into(),
        Value::Bool(_) => "bool".into(),
        Value::Number(_) => "number".into(),
        Value::String(_) => "string".into(),
        Value::Array(a) => Value::Array(a.iter().map(shape).collect()),
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), shape(v))).collect()),
    }
}

/// Lists where two shapes differ, as `path: openbao vs coffer`.
fn shape_diff(path: &str, want: &Value, got: &Value, out: &mut Vec<String>) {
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => {
            for (k, wv) in w {
                match g.get(k) {
                    Some(gv) => shape_diff(&format!("{path}.{k}"), wv, gv, out),
                    None => out.push(format!("{path}.{k}: missing in coffer (openbao: {wv})")),
                }
            }
            for k in g.keys().filter(|k| !w.contains_key(*k)) {
                out.push(format!("{path}.{k}: only in coffer ({})", g[k]));
            }
        }
        (Value::Array(w), Value::Array(g)) if w.len() == g.len() => {
            for (i, (wv, gv)) in w.iter().zip(g).enumerate() {
                shape_diff(&format!("{path}[{i}]"), wv, gv, out);
            }
        }
        _ if want != got => out.push(format!("{path}: openbao {want} vs coffer {got}")),
        _ => {}
    }
}

/// What one step printed: its exit code and, when stdout is JSON, that JSON's shape.
#[derive(Debug)]
struct Outcome {
    rc: i32,
    shape: Option<Value>,
    text: String,
}

fn run_step(bao: &str, addr: &str, args: &[&str]) -> Outcome {
    let o = cli(bao, addr, Some("root"), args);
    let stdout = String::from_utf8_lossy(&o.stdout).to_string();
    Outcome {
        rc: o.status.code().unwrap_or(-1),
        shape: serde_json::from_str::<Value>(&stdout).ok().map(|v| shape(&v)),
        text: out(&o),
    }
}

/// Steps run in the same order against both servers. A step marked `retry` is repeated until
/// it succeeds (OpenBao upgrades a tuned v1 mount in the background).
const STEPS: &[(&[&str], bool)] = &[
    (&["secrets", "enable", "-version=2", "-path=kv2", "kv"], false),
    (&["kv", "put", "-format=json", "kv2/app", "user=a", "pass=1"], false),
    (&["kv", "put", "-format=json", "-cas=1", "kv2/app", "user=b", "pass=2"], false),
    (&["kv", "put", "-format=json", "-cas=1", "kv2/app", "user=c"], false),
    (&["kv", "get", "-format=json", "kv2/app"], false),
    (&["kv", "get", "-format=json", "-version=1", "kv2/app"], false),
    (&["kv", "get", "-format=json", "-field=user", "kv2/app"], false),
    (&["kv", "get", "-format=json", "-version=9", "kv2/app"], false),
    (&["kv", "get", "-format=json", "kv2/nope"], false),
    (&["kv", "patch", "-format=json", "kv2/app", "extra=x"], false),
    (&["kv", "patch", "-format=json", "-method=rw", "kv2/app", "more=y"], false),
    (&["kv", "patch", "-format=json", "-cas=1", "kv2/app", "no=1"], false),
    (&["kv", "patch", "-format=json", "kv2/nope", "a=1"], false),
    (&["kv", "rollback", "-format=json", "-version=1", "kv2/app"], false),
    (&["kv", "put", "-format=json", "kv2/dir/one", "a=1"], false),
    (&["kv", "put", "-format=json", "kv2/dir/sub/two", "b=2"], false),
    (&["kv", "list", "-format=json", "kv2/"], false),
    (&["kv", "list", "-format=json", "kv2/dir"], false),
    (&["kv", "list", "-format=json", "kv2/nope"], false),
    (&["kv", "scan", "-format=json", "kv2/dir"], false),
    (&["kv", "delete", "-format=json", "-versions=1", "kv2/app"], false),
    (&["kv", "metadata", "get", "-format=json", "kv2/app"], false),
    (&["kv", "undelete", "-format=json", "-versions=1", "kv2/app"], false),
    (&["kv", "destroy", "-format=json", "-versions=2", "kv2/app"], false),
    (&["kv", "get", "-format=json", "-version=1", "kv2/app"], false),
    (&["kv", "metadata", "put", "-format=json", "-max-versions=3", "-custom-metadata=owner=me", "kv2/app"], false),
    (&["kv", "metadata", "patch", "-format=json", "-custom-metadata=team=t", "kv2/app"], false),
    (&["kv", "metadata", "put", "-format=json", "-delete-version-after=1h", "kv2/app"], false),
    (&["kv", "put", "-format=json", "kv2/app", "after=1"], false),
    (&["kv", "metadata", "get", "-format=json", "kv2/app"], false),
    (&["kv", "metadata", "get", "-format=json", "kv2/nope"], false),
    (&["read", "-format=json", "kv2/subkeys/app"], false),
    (&["read", "-format=json", "kv2/subkeys/app", "depth=1"], false),
    (&["read", "-format=json", "kv2/config"], false),
    (
        &["write", "-format=json", "kv2/config", "max_versions=5", "cas_required=false", "delete_version_after=2h"],
        false,
    ),
    (&["read", "-format=json", "kv2/config"], false),
    (&["kv", "metadata", "delete", "kv2/app"], false),
    (&["kv", "get", "-format=json", "kv2/app"], false),
    (&["kv", "metadata", "get", "-format=json", "kv2/app"], false),
    (&["secrets", "enable", "-path=old", "kv"], false),
    (&["kv", "put", "old/a", "x=1"], false),
    (&["secrets", "tune", "-options=version=2", "old"], false),
    (&["kv", "get", "-format=json", "old/a"], true),
    (&["kv", "metadata", "get", "-format=json", "old/a"], true),
    (&["kv", "put", "-format=json", "old/a", "x=2"], true),
];

/// Raw API requests run against both servers after the CLI steps: (method, path, body, whether
/// the body's shape is compared). Status codes are always compared. The bodies not compared are
/// 404s where OpenBao answers with a response body (a deleted version's metadata, a hint for
/// paths outside the versioned layout, an empty body for a patch of a missing key) and Coffer,
/// whose SDK has no "404 with data" answer, sends `{"errors":[…]}`.
const HTTP_STEPS: &[(&str, &str, &str, bool)] = &[
    ("POST", "/v1/kv2/data/h", r#"{"data":{"a":1,"o":{"x":1}}}"#, true),
    ("POST", "/v1/kv2/data/h", r#"{"data":{"a":2},"options":{"cas":0}}"#, true),
    ("POST", "/v1/kv2/data/h", r#"{"data":{"a":2},"options":{"cas":"x"}}"#, true),
    ("POST", "/v1/kv2/data/h", r#"{"nodata":1}"#, true),
    ("GET", "/v1/kv2/data/h?version=1", "", true),
    ("GET", "/v1/kv2/data/h?version=abc", "", true),
    ("GET", "/v1/kv2/data/nope", "", true),
    ("LIST", "/v1/kv2/data/h", "", true),
    ("DELETE", "/v1/kv2/config", "", true),
    ("PUT", "/v1/kv2/subkeys/h", "{}", true),
    ("GET", "/v1/kv2/subkeys/h?depth=1", "", true),
    ("GET", "/v1/kv2/subkeys/nope", "", true),
    ("PATCH", "/v1/kv2/data/h", r#"{"data":{"a":null,"b":[1]}}"#, true),
    ("PATCH", "/v1/kv2/data/h", "{}", true),
    ("POST", "/v1/kv2/metadata/h", r#"{"custom_metadata":{"k":""}}"#, true),
    ("POST", "/v1/kv2/metadata/h", r#"{"delete_version_after":"-1s"}"#, true),
    ("POST", "/v1/kv2/metadata/h", r#"{"max_versions":2,"custom_metadata":{"a":"b"}}"#, true),
    ("PATCH", "/v1/kv2/metadata/h", r#"{"custom_metadata":{"a":null,"c":"d"}}"#, true),
    ("PATCH", "/v1/kv2/metadata/nope", r#"{"max_versions":1}"#, false),
    ("POST", "/v1/kv2/config", r#"{"cas_required":true}"#, true),
    ("POST", "/v1/kv2/metadata/h", r#"{"cas_required":false}"#, true),
    ("POST", "/v1/kv2/data/h", r#"{"data":{"a":1}}"#, true),
    ("POST", "/v1/kv2/config", r#"{"cas_required":false,"max_versions":-1}"#, true),
    ("GET", "/v1/kv2/config", "", true),
    ("POST", "/v1/kv2/delete/h", "{}", true),
    ("POST", "/v1/kv2/undelete/h", "{}", true),
    ("POST", "/v1/kv2/destroy/h", r#"{"versions":[]}"#, true),
    ("POST", "/v1/kv2/delete/nope", r#"{"versions":[1]}"#, true),
    ("GET", "/v1/kv2/metadata/h", "", true),
    ("DELETE", "/v1/kv2/data/h", "", true),
    ("GET", "/v1/kv2/data/h", "", false),
    ("GET", "/v1/kv2/subkeys/h", "", false),
    ("PATCH", "/v1/kv2/data/h", r#"{"data":{"z":1}}"#, false),
    ("PATCH", "/v1/kv2/data/nope", r#"{"data":{"z":1}}"#, false),
    ("GET", "/v1/kv2/foo", "", false),
    ("POST", "/v1/kv2/destroy/h", r#"{"versions":[2]}"#, true),
    ("GET", "/v1/kv2/data/h?version=2", "", false),
    ("DELETE", "/v1/kv2/metadata/h", "", true),
    ("GET", "/v1/kv2/metadata/h", "", true),
    ("GET", "/v1/kv2/metadata/?list=true", "", true),
    ("LIST", "/v1/kv2/metadata/nope", "", true),
    ("POST", "/v1/kv2/metadata/mc", r#"{"metadata_cas_required":true}"#, true),
    ("POST", "/v1/kv2/metadata/mc", r#"{"max_versions":3}"#, true),
    ("POST", "/v1/kv2/metadata/mc", r#"{"max_versions":3,"metadata_cas":7}"#, true),
    ("POST", "/v1/kv2/metadata/mc", r#"{"max_versions":3,"metadata_cas":1}"#, true),
    ("POST", "/v1/kv2/metadata/mc2", r#"{"max_versions":3,"metadata_cas":1}"#, true),
];

fn http_steps(real: &str, coffer: &str, problems: &mut Vec<String>) {
    for (method, path, body, compare_body) in HTTP_STEPS {
        let mut headers = vec![("X-Vault-Token", "root")];
        if *method == "PATCH" {
            headers.push(("Content-Type", "application/merge-patch+json"));
        } else if !body.is_empty() {
            headers.push(("Content-Type", "application/json"));
        }
        let (ws, wb) = http(real, method, path, &headers, body.as_bytes());
        let (gs, gb) = http(coffer, method, path, &headers, body.as_bytes());
        if ws != gs {
            problems.push(format!(
                "{method} {path} {body}: status openbao {ws} vs coffer {gs}\n  openbao: {wb}\n  coffer:  {gb}"
            ));
            continue;
        }
        if !compare_body {
            continue;
        }
        let parse = |b: &str| if b.trim().is_empty() { Value::Null } else { shape(&json(b)) };
        let mut diffs = Vec::new();
        shape_diff("$", &parse(&wb), &parse(&gb), &mut diffs);
        if !diffs.is_empty() {
            problems.push(format!("{method} {path} {body}: body shapes differ:\n  {}", diffs.join("\n  ")));
        }
    }
}

#[test]
fn bao_kv_json_shapes_match_a_real_openbao() {
    let Some(bao) = bao_path() else { return };
    let real = RealBao::start(&bao);
    let coffer = Server::start_dev("root");
    let mut problems = Vec::new();
    for (args, retry) in STEPS {
        let run = |addr: &str| {
            let deadline = Instant::now() + Duration::from_secs(if *retry { 15 } else { 0 });
            loop {
                let o = run_step(&bao, addr, args);
                if o.rc == 0 || Instant::now() >= deadline {
                    return o;
                }
                std::thread::sleep(Duration::from_millis(250));
            }
        };
        let want = run(&real.addr);
        let got = run(&coffer.addr);
        if want.rc != got.rc {
            problems.push(format!(
                "bao {args:?}: exit code openbao {} vs coffer {}\n  openbao: {}\n  coffer:  {}",
                want.rc,
                got.rc,
                want.text.trim(),
                got.text.trim()
            ));
            continue;
        }
        match (&want.shape, &got.shape) {
            (Some(w), Some(g)) => {
                let mut diffs = Vec::new();
                shape_diff("$", w, g, &mut diffs);
                if !diffs.is_empty() {
                    problems.push(format!("bao {args:?}: JSON shapes differ:\n  {}", diffs.join("\n  ")));
                }
            }
            (None, None) => {}
            _ => problems.push(format!(
                "bao {args:?}: only one side printed JSON\n  openbao: {}\n  coffer:  {}",
                want.text.trim(),
                got.text.trim()
            )),
        }
    }
    http_steps(&real.addr, &coffer.addr, &mut problems);
    assert!(problems.is_empty(), "Coffer differs from OpenBao:\n{}", problems.join("\n"));
}
