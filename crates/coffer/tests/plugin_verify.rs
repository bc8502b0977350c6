//! `coffer plugin verify` runs the review checks on a real plugin binary and writes a Markdown
//! and a JSON report with pass/fail per criterion: the example plugin with its crate passes
//! every check it is given; the same binary judged against the wrong version, type or an
//! undocumented crate fails exactly those checks; a binary that is not a plugin fails the
//! handshake — all with exit code 2 and a report, never a crash.
//!
//! Every report written here validates against the documented JSON Schema
//! (docs/integration/verify-report.schema.json, checked with `scripts/check-verify-report`).
//!
//! The crate's own tests are not run here (`-skip-tests`): they would need cargo inside cargo.
//! scripts/test runs the full verify, tests on Coffer and OpenBao and special paths included,
//! on freshly scaffolded plugins.

mod common;

use common::{coffer_bin, out};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn example_binary() -> PathBuf {
    let b = Path::new(coffer_bin()).with_file_name("coffer-plugin-example");
    assert!(b.exists(), "build the workspace first (the example plugin binary is missing)");
    b
}

fn example_crate() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/passphrase")
}

fn verify(args: &[&str], out_dir: &Path) -> (Output, Value, String) {
    let o = Command::new(coffer_bin())
        .args(["plugin", "verify"])
        .arg(format!("-out={}", out_dir.display()))
        .args(args)
        .output()
        .unwrap();
    let json = std::fs::read_to_string(out_dir.join("verify-report.json"))
        .map(|t| serde_json::from_str(&t).expect("the JSON report parses"))
        .unwrap_or(Value::Null);
    let md = std::fs::read_to_string(out_dir.join("verify-report.md")).unwrap_or_default();
    if json != Value::Null {
        assert_valid_report(&out_dir.join("verify-report.json"));
    }
    (o, json, md)
}

/// The report validates against docs/integration/verify-report.schema.json, with the same
/// script a reviewer's tooling would use (python `jsonschema`).
fn assert_valid_report(report: &Path) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/check-verify-report");
    let o = Command::new("python3").arg(&script).arg(report).output().expect("python3");
    assert!(o.status.success(), "the report does not match the documented schema:\n{}", out(&o));
}

fn result(report: &Value, id: &str) -> String {
    report["checks"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["id"] == id))
        .map(|c| c["result"].as_str().unwrap_or("").to_string())
        .unwrap_or_else(|| panic!("no check {id} in {report}"))
}

#[test]
fn the_example_plugin_passes_every_check_and_the_report_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let crate_dir = example_crate();
    let (o, report, md) = verify(
        &[
            "-type=secret",
            "-version=v0.1.0",
            &format!("-crate={}", crate_dir.display()),
            "-skip-tests",
            example_binary().to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    assert_eq!(report["passed"], true, "{report}");
    assert_eq!(report["version"], "v0.1.0");
    assert_eq!(report["sha256"].as_str().map(str::len), Some(64));
    for id in [
        "binary",
        "handshake",
        "startup_time",
        "version",
        "type",
        "path_table",
        "path_docs",
        "robustness",
        "memory",
        "shutdown",
        "special_paths",
        "docs",
    ] {
        assert_eq!(result(&report, id), "pass", "{id}: {report}");
    }
    assert_eq!(result(&report, "tests"), "skip");
    assert_eq!(result(&report, "tests_openbao"), "skip");
    assert_eq!(report["schema_version"], 1);
    let rss = report["checks"].as_array().unwrap().iter().find(|c| c["id"] == "memory").unwrap()["measured"]["rss_kib"]
        .as_u64()
        .unwrap();
    assert!(rss > 1000, "a measured resident size: {rss} KiB");
    assert!(md.contains("# Plugin review report: coffer-plugin-example") && md.contains("**PASSED**"), "{md}");
    assert!(out(&o).contains("PASSED: 14 checks, 0 failed"), "{}", out(&o));
}

#[test]
fn wrong_expectations_and_missing_docs_fail_exactly_their_checks() {
    let dir = tempfile::tempdir().unwrap();
    let bare = tempfile::tempdir().unwrap();
    std::fs::write(bare.path().join("Cargo.toml"), "[package]\nname = \"x\"\nversion = \"0.1.0\"\n").unwrap();
    let (o, report, md) = verify(
        &[
            "-type=auth",
            "-version=v9.9.9",
            &format!("-crate={}", bare.path().display()),
            "-skip-tests",
            example_binary().to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    assert_eq!(report["passed"], false);
    assert_eq!(result(&report, "type"), "fail");
    assert_eq!(result(&report, "version"), "fail");
    assert_eq!(result(&report, "docs"), "fail");
    assert_eq!(result(&report, "robustness"), "pass", "the binary itself is fine");
    assert!(md.contains("README.md is missing") && md.contains("**FAILED**"), "{md}");
}

#[test]
fn a_binary_that_is_not_a_plugin_fails_the_handshake_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("not-a-plugin");
    std::fs::write(&fake, "#!/bin/sh\necho hello\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (o, report, _) = verify(&[fake.to_str().unwrap()], &dir.path().join("r"));
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    assert_eq!(result(&report, "binary"), "pass");
    assert_eq!(result(&report, "handshake"), "fail");
    assert!(!out(&o).contains("panicked"), "{}", out(&o));

    let (o, report, _) = verify(&[dir.path().join("missing").to_str().unwrap()], &dir.path().join("r2"));
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    assert_eq!(result(&report, "binary"), "fail");
    let o = Command::new(coffer_bin()).args(["plugin", "verify", "-type=kv", "x"]).output().unwrap();
    assert_eq!(o.status.code(), Some(1), "bad flags are a usage error: {}", out(&o));
}

/// The schema check can fail: a report with a check result outside pass/fail/skip, or without
/// its schema version, is refused by the same script.
#[test]
fn a_report_that_breaks_the_documented_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_, report, _) = verify(&["-skip-tests", example_binary().to_str().unwrap()], dir.path());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/check-verify-report");
    for (what, broken) in [
        ("an unknown result", {
            let mut r = report.clone();
            r["checks"][0]["result"] = "maybe".into();
            r
        }),
        ("no schema version", {
            let mut r = report.clone();
            r.as_object_mut().unwrap().remove("schema_version");
            r
        }),
    ] {
        let f = dir.path().join("broken.json");
        std::fs::write(&f, serde_json::to_string(&broken).unwrap()).unwrap();
        let o = Command::new("python3").arg(&script).arg(&f).output().unwrap();
        assert_eq!(o.status.code(), Some(1), "{what} must be refused: {}", out(&o));
    }
}

#[test]
fn a_database_plugin_is_verified_over_the_database_protocol_with_a_real_round_trip() {
    let bin = Path::new(coffer_bin()).with_file_name("postgresql-database-plugin");
    assert!(bin.exists(), "build the workspace first (the postgresql-database-plugin binary is missing)");
    let dir = tempfile::tempdir().unwrap();
    let version = format!("-version=v{}", env!("CARGO_PKG_VERSION"));
    let bin_arg = bin.display().to_string();

    // Without a connection: everything but the round trip, which is skipped.
    let (o, report, md) = verify(&["-type=database", &version, &bin_arg], dir.path());
    assert_eq!(o.status.code(), Some(0), "{}\n{md}", out(&o));
    for id in ["handshake", "startup_time", "version", "type", "robustness", "memory", "shutdown"] {
        assert_eq!(result(&report, id), "pass", "{id}: {report}");
    }
    assert_eq!(result(&report, "round_trip"), "skip");
    assert_eq!(result(&report, "special_paths"), "skip");
    // A wrong version fails exactly that check.
    let (o, report, _) = verify(&["-type=database", "-version=v9.9.9", &bin_arg], dir.path());
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(result(&report, "version"), "fail");
    assert_eq!(result(&report, "handshake"), "pass");

    // With the PostgreSQL server of the tests: a real user created, changed and dropped.
    let Some(url) = common::pg_url() else { return };
    let rest = url.split_once("://").unwrap().1;
    let (cred, hostpart) = rest.rsplit_once('@').unwrap();
    let (user, pass) = cred.split_once(':').unwrap();
    let cfg = serde_json::json!({
        "connection_url": format!("postgres://{{{{username}}}}:{{{{password}}}}@{hostpart}"),
        "username": user,
        "password": pass,
    })
    .to_string();
    let create = "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';";
    let (o, report, md) = verify(
        &["-type=database", &version, &format!("-db-config={cfg}"), &format!("-db-statement={create}"), &bin_arg],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(0), "{}\n{md}", out(&o));
    assert_eq!(result(&report, "round_trip"), "pass", "{report}");
    assert!(!md.contains(pass), "the report never shows the connection's password");
}
