//! A bad configuration file stops `coffer server` with its file and line. (Bad requests, which
//! need no process, are checked in-process: crates/testing/tests/api/bad_input.rs.)
mod common;
use common::*;

#[test]
fn bad_configuration_is_refused_with_the_line_number() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.hcl");
    std::fs::write(&cfg, "storage \"inmem\" {}\nlistener \"tcp\" {\n  address = \"127.0.0.1:0\"\n  tls_disable = true\n}\nbogus_stanza = 1\n").unwrap();
    let o = std::process::Command::new(coffer_bin())
        .args(["server", &format!("-config={}", cfg.display())])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("bad.hcl:6") && err.contains("bogus_stanza"), "{err}");
}
