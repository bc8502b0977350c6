//! The TLS options of `listener "tcp"`, against real clients (curl, openssl s_client, the bao
//! CLI) and certificates made here with rcgen: client certificates required / verified if given
//! / requested / never asked for, protocol versions, cipher suites, and the 413 for an oversized
//! body over TLS.
mod common;
use common::*;
use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn p(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    fn s(&self, name: &str) -> String {
        self.p(name).display().to_string()
    }
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap()
}

fn leaf(dir: &Path, name: &str, issuer: &CertifiedIssuer<'static, KeyPair>, client: bool, expired: bool) {
    let sans = if client { vec![] } else { vec!["127.0.0.1".to_string(), "localhost".to_string()] };
    let mut p = CertificateParams::new(sans).unwrap();
    p.distinguished_name.push(DnType::CommonName, name);
    p.extended_key_usages =
        vec![if client { ExtendedKeyUsagePurpose::ClientAuth } else { ExtendedKeyUsagePurpose::ServerAuth }];
    if expired {
        p.not_before = date_time_ymd(2020, 1, 1);
        p.not_after = date_time_ymd(2020, 2, 1);
    }
    let k = KeyPair::generate().unwrap();
    let c = p.signed_by(&k, issuer).unwrap();
    std::fs::write(dir.join(format!("{name}.pem")), c.pem()).unwrap();
    std::fs::write(dir.join(format!("{name}-key.pem")), k.serialize_pem()).unwrap();
}

/// A server CA and certificate, a client CA with a good and an expired client certificate, and
/// a client certificate from another CA.
fn pki() -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let server_ca = ca("server CA");
    std::fs::write(d.join("server-ca.pem"), server_ca.pem()).unwrap();
    leaf(d, "server", &server_ca, false, false);
    let client_ca = ca("client CA");
    std::fs::write(d.join("client-ca.pem"), client_ca.pem()).unwrap();
    leaf(d, "good", &client_ca, true, false);
    leaf(d, "expired", &client_ca, true, true);
    let rogue = ca("rogue CA");
    leaf(d, "rogue", &rogue, true, false);
    Pki { dir }
}

/// Starts a server with one TLS listener carrying `extra` options.
fn start_tls(pki: &Pki, extra: &str) -> (Server, u16) {
    let cfg =
        tempfile::Builder::new().prefix("tls-").suffix(".hcl").tempfile_in(pki.dir.path()).unwrap().into_temp_path();
    let cfg = cfg.keep().unwrap();
    std::fs::write(
        &cfg,
        format!(
            "storage \"inmem\" {{}}\nlistener \"tcp\" {{\n  address = \"127.0.0.1:0\"\n  tls_cert_file = \"{}\"\n  tls_key_file = \"{}\"\n{extra}\n}}\n",
            pki.s("server.pem"),
            pki.s("server-key.pem")
        ),
    )
    .unwrap();
    let s = Server::start_with_config(&cfg);
    let port = s.addr.rsplit(':').next().unwrap().parse().unwrap();
    (s, port)
}

/// curl over TLS; returns (exit code, HTTP status or 0, body).
fn curl(pki: &Pki, port: u16, client: Option<&str>, extra: &[&str]) -> (i32, u16, String) {
    let mut c = Command::new("curl");
    c.args(["-sS", "--max-time", "20", "-o", "-", "-w", "\n%{http_code}", "--cacert"]).arg(pki.p("server-ca.pem"));
    if let Some(name) = client {
        c.arg("--cert").arg(pki.p(&format!("{name}.pem"))).arg("--key").arg(pki.p(&format!("{name}-key.pem")));
    }
    c.args(extra).arg(format!("https://127.0.0.1:{port}/v1/sys/health"));
    let o = c.output().expect("curl");
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (
        o.status.code().unwrap_or(-1),
        code.trim().parse().unwrap_or(0),
        format!("{body}{}", String::from_utf8_lossy(&o.stderr)),
    )
}

/// openssl s_client with extra flags; true when the handshake completed.
/// `openssl s_client` sending one HTTP request and waiting for the server to answer or close:
/// under TLS 1.3 the client finishes its side of the handshake before the server has checked
/// the client's certificate, so only an answer (or the server's alert) tells the outcome.
fn s_client(pki: &Pki, port: u16, args: &[&str]) -> (bool, String) {
    use std::io::Write;
    let mut child = Command::new("openssl")
        .args(["s_client", "-ign_eof", "-connect", &format!("127.0.0.1:{port}"), "-CAfile", &pki.s("server-ca.pem")])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl");
    let _ = child.stdin.take().unwrap().write_all(
        format!("GET /v1/sys/health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    let o = child.wait_with_output().expect("openssl");
    let text = out(&o);
    let ok = text.contains("Verify return code: 0 (ok)") && text.contains("HTTP/1.1 ") && !text.contains("alert");
    (ok, text)
}

fn bao_status(bao: &str, pki: &Pki, port: u16, client: Option<&str>) -> Output {
    let mut c = Command::new(bao);
    c.args(["status"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", pki.dir.path())
        .env("VAULT_ADDR", format!("https://127.0.0.1:{port}"))
        .env("VAULT_CACERT", pki.p("server-ca.pem"));
    if let Some(name) = client {
        c.env("VAULT_CLIENT_CERT", pki.p(&format!("{name}.pem")))
            .env("VAULT_CLIENT_KEY", pki.p(&format!("{name}-key.pem")));
    }
    c.output().unwrap()
}

#[test]
fn required_client_certs_admit_only_valid_certs_from_the_client_ca() {
    let pki = pki();
    let extra =
        format!("  tls_require_and_verify_client_cert = true\n  tls_client_ca_file = \"{}\"", pki.s("client-ca.pem"));
    let (_s, port) = start_tls(&pki, &extra);
    // The server is not initialised: sys/health answers 501 once TLS lets the request through.
    let (rc, code, text) = curl(&pki, port, Some("good"), &[]);
    assert_eq!((rc, code), (0, 501), "good client certificate: {text}");
    for (who, why) in [(None, "no certificate"), (Some("rogue"), "another CA"), (Some("expired"), "expired")] {
        let (rc, code, text) = curl(&pki, port, who, &[]);
        assert!(rc != 0 && code == 0, "{why} must fail the handshake: rc {rc}, status {code}: {text}");
    }
    let (ok, text) = s_client(&pki, port, &["-cert", &pki.s("expired.pem"), "-key", &pki.s("expired-key.pem")]);
    assert!(!ok, "openssl with an expired certificate: {text}");
    assert!(text.to_ascii_lowercase().contains("certificate expired") || text.contains("alert"), "{text}");

    // Both CLIs present the certificate from VAULT_CLIENT_CERT/VAULT_CLIENT_KEY.
    let mut clis = vec![coffer_bin().to_string()];
    clis.extend(bao_path());
    for cli in &clis {
        let o = bao_status(cli, &pki, port, Some("good"));
        assert_eq!(o.status.code(), Some(2), "{cli} status with a client certificate: {}", out(&o));
        assert!(out(&o).contains("Initialized        false"), "{}", out(&o));
        let o = bao_status(cli, &pki, port, None);
        assert_eq!(o.status.code(), Some(1), "{cli} status without a client certificate: {}", out(&o));
    }
}

#[test]
fn a_client_ca_alone_verifies_a_presented_cert_but_admits_clients_without_one() {
    let pki = pki();
    let (_s, port) = start_tls(&pki, &format!("  tls_client_ca_file = \"{}\"", pki.s("client-ca.pem")));
    assert_eq!(curl(&pki, port, None, &[]).1, 501, "no certificate is fine");
    assert_eq!(curl(&pki, port, Some("good"), &[]).1, 501, "a good certificate is fine");
    let (rc, code, text) = curl(&pki, port, Some("rogue"), &[]);
    assert!(rc != 0 && code == 0, "a certificate from another CA is refused: {text}");
    let (rc, code, _) = curl(&pki, port, Some("expired"), &[]);
    assert!(rc != 0 && code == 0, "an expired certificate is refused");
}

#[test]
fn by_default_a_client_cert_is_requested_but_not_checked_and_disabling_stops_the_request() {
    let pki = pki();
    // OpenBao's default: ask for a certificate, leave judging it to an auth method.
    let (_s, port) = start_tls(&pki, "");
    assert_eq!(curl(&pki, port, Some("rogue"), &[]).1, 501);
    assert_eq!(curl(&pki, port, None, &[]).1, 501);
    let (ok, text) = s_client(&pki, port, &["-tls1_2"]);
    assert!(ok && text.contains("Client Certificate Types"), "a certificate is requested: {text}");

    let (_s2, port2) = start_tls(&pki, "  tls_disable_client_certs = true");
    let (ok, text) = s_client(&pki, port2, &["-tls1_2"]);
    assert!(ok && !text.contains("Client Certificate Types"), "no certificate is requested: {text}");
    assert_eq!(curl(&pki, port2, Some("rogue"), &[]).1, 501, "a certificate nobody asked for is ignored");
}

#[test]
fn tls_min_version_13_refuses_a_tls12_only_client_and_max_12_refuses_tls13() {
    let pki = pki();
    let (_s, port) = start_tls(&pki, "  tls_min_version = \"tls13\"");
    let (rc, code, text) = curl(&pki, port, None, &["--tls-max", "1.2"]);
    assert!(rc != 0 && code == 0, "a TLS 1.2-only curl must fail: {text}");
    let (ok, text) = s_client(&pki, port, &["-tls1_2"]);
    assert!(!ok, "openssl -tls1_2 must fail: {text}");
    let (ok, text) = s_client(&pki, port, &["-tls1_3"]);
    assert!(ok && text.contains("TLSv1.3"), "{text}");

    let (_s2, port2) = start_tls(&pki, "  tls_max_version = \"tls12\"");
    let (ok, text) = s_client(&pki, port2, &["-tls1_3"]);
    assert!(!ok, "openssl -tls1_3 must fail against tls_max_version = tls12: {text}");
    let (ok, text) = s_client(&pki, port2, &["-tls1_2"]);
    assert!(ok && text.contains("TLSv1.2"), "{text}");
}

#[test]
fn tls_cipher_suites_limit_tls12_to_the_named_suites() {
    let pki = pki();
    // rcgen's keys are ECDSA P-256, so the ECDSA suites apply.
    let (_s, port) = start_tls(&pki, "  tls_cipher_suites = \"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384\"");
    let (ok, text) = s_client(&pki, port, &["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"]);
    assert!(!ok, "a suite not named must not be negotiated: {text}");
    let (ok, text) = s_client(&pki, port, &["-tls1_2", "-cipher", "ECDHE-ECDSA-AES256-GCM-SHA384"]);
    assert!(ok && text.contains("ECDHE-ECDSA-AES256-GCM-SHA384"), "{text}");
    // TLS 1.3 keeps its suites when none is named (as Go does).
    assert!(s_client(&pki, port, &["-tls1_3"]).0);
}

#[test]
fn listener_tls_errors_stop_the_server_naming_the_option_and_line() {
    let dir = tempfile::tempdir().unwrap();
    for (opt, needle) in [
        ("tls_min_version = \"tls10\"", "rustls"),
        ("tls_cipher_suites = \"TLS_RSA_WITH_AES_128_CBC_SHA\"", "TLS_RSA_WITH_AES_128_CBC_SHA"),
        ("proxy_protocol_behavior = \"use_always\"", "proxy_protocol_behavior"),
    ] {
        let cfg = dir.path().join("bad.hcl");
        std::fs::write(
            &cfg,
            format!("storage \"inmem\" {{}}\nlistener \"tcp\" {{\n  address = \"127.0.0.1:0\"\n  {opt}\n}}\n"),
        )
        .unwrap();
        let o = Command::new(coffer_bin()).args(["server", &format!("-config={}", cfg.display())]).output().unwrap();
        assert_eq!(o.status.code(), Some(1), "{opt}");
        let text = out(&o);
        assert!(text.contains("bad.hcl:4:") && text.contains(needle), "{opt}: {text}");
    }
}

#[test]
fn an_oversized_body_over_tls_gets_a_413_with_an_error_body() {
    let pki = pki();
    let (_s, port) = start_tls(&pki, "  max_request_size = 1024");
    let big = pki.p("big.json");
    std::fs::write(&big, format!("{{\"data\":\"{}\"}}", "x".repeat(4 * 1024 * 1024))).unwrap();
    // With and without `Expect: 100-continue` (curl sends it for large bodies).
    for expect in [None, Some("Expect:")] {
        let mut c = Command::new("curl");
        c.args(["-sS", "--max-time", "30", "-o", "-", "-w", "\n%{http_code}", "-X", "PUT", "--cacert"])
            .arg(pki.p("server-ca.pem"))
            .arg("--data-binary")
            .arg(format!("@{}", big.display()));
        if let Some(h) = expect {
            c.args(["-H", h]);
        }
        let o = c.arg(format!("https://127.0.0.1:{port}/v1/secret/x")).output().unwrap();
        let text = String::from_utf8_lossy(&o.stdout).to_string();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", ""));
        assert_eq!(code.trim(), "413", "expect header {expect:?}: {}", out(&o));
        assert_eq!(json(body)["errors"][0], "http: request body too large", "{body}");
    }
}

#[test]
fn dev_server_with_a_config_listener_keeps_its_dev_listener_as_openbao_does() {
    let pki = pki();
    let cfg = pki.p("dev-tls.hcl");
    std::fs::write(
        &cfg,
        format!(
            "listener \"tcp\" {{\n  address = \"127.0.0.1:0\"\n  tls_cert_file = \"{}\"\n  tls_key_file = \"{}\"\n}}\n",
            pki.s("server.pem"),
            pki.s("server-key.pem")
        ),
    )
    .unwrap();
    let s = Server::start_dev_with("root", &[&format!("-config={}", cfg.display())]);
    assert_eq!(s.addrs.len(), 2, "the dev listener and the configured one: {:?}", s.addrs);
    // The dev listener (plain HTTP, first) and the configured HTTPS one both serve.
    let (st, _) = http(&s.addrs[0], "GET", "/v1/sys/health", &[], b"");
    assert_eq!(st, 200);
    let port: u16 = s.addrs[1].rsplit(':').next().unwrap().parse().unwrap();
    let (rc, code, body) = curl(&pki, port, None, &[]);
    assert_eq!((rc, code), (0, 200), "{body}");
}
