//! A `listener "tcp"` with `tls_cert_file`/`tls_key_file` serves HTTPS through rustls, and the
//! real `bao` CLI talks to it when given the CA (and refuses when not).
mod common;
use common::*;
use std::process::Command;

#[test]
fn tls_listener_serves_the_bao_cli() {
    let Some(bao) = bao_path() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let o = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1"])
        .args(["-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl");
    assert!(o.status.success(), "openssl: {}", String::from_utf8_lossy(&o.stderr));
    let cfg = dir.path().join("tls.hcl");
    std::fs::write(
        &cfg,
        format!(
            "storage \"inmem\" {{}}\nlistener \"tcp\" {{\n  address = \"127.0.0.1:0\"\n  tls_cert_file = \"{}\"\n  tls_key_file = \"{}\"\n}}\n",
            cert.display(),
            key.display()
        ),
    )
    .unwrap();
    let server = Server::start_with_config(&cfg);
    let port = server.addr.rsplit(':').next().unwrap().to_string();
    let run = |extra: &[&str]| {
        Command::new(&bao)
            .args(["status"])
            .args(extra)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", dir.path())
            .env("BAO_ADDR", format!("https://127.0.0.1:{port}"))
            .output()
            .unwrap()
    };
    let o = run(&[&format!("-ca-cert={}", cert.display())]);
    // Uninitialised server: status answers over TLS and exits 2.
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    assert!(out(&o).contains("Initialized        false"), "{}", out(&o));
    let o = run(&[]);
    assert_eq!(o.status.code(), Some(1), "an unknown CA must be refused: {}", out(&o));
    assert!(out(&o).contains("certificate"), "{}", out(&o));
}

#[test]
fn tls_listener_with_missing_files_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad-tls.hcl");
    std::fs::write(
        &cfg,
        "storage \"inmem\" {}\nlistener \"tcp\" {\n  address = \"127.0.0.1:0\"\n  tls_cert_file = \"/nonexistent/cert.pem\"\n  tls_key_file = \"/nonexistent/key.pem\"\n}\n",
    )
    .unwrap();
    let o = Command::new(coffer_bin()).args(["server", &format!("-config={}", cfg.display())]).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(text.contains("cannot read tls_cert_file"), "{text}");
}
