//! The PKI engine as an operator drives it with the real `bao` CLI, against the real `coffer
//! server` and a real OpenBao dev server alike, every certificate and CRL checked by OpenSSL:
//! a root, an intermediate signed by it and imported with set-signed, a role, certificates
//! issued (EC, RSA, Ed25519) and signed from an OpenSSL CSR, `openssl verify` of each chain,
//! names outside the role and forged CSRs refused, a revocation that `openssl verify
//! -crl_check` then reports from the CRL served without a token, and a TLS handshake
//! (`openssl s_server`/`s_client`) with an issued server certificate.
mod common;
use common::*;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};

struct Target<'a> {
    name: &'a str,
    bao: &'a str,
    addr: String,
}

impl Target<'_> {
    fn run(&self, args: &[&str]) -> std::process::Output {
        cli(self.bao, &self.addr, Some("root"), args)
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(o.status.success(), "{}: bao {args:?} failed ({:?}):\n{}", self.name, o.status.code(), out(&o));
        String::from_utf8_lossy(&o.stdout).to_string()
    }

    fn data(&self, args: &[&str]) -> Value {
        let mut all = vec![args[0], "-format=json"];
        all.extend_from_slice(&args[1..]);
        json(&self.ok(&all))["data"].clone()
    }

    fn refused(&self, args: &[&str], why: &str) -> String {
        let o = self.run(args);
        assert_eq!(o.status.code(), Some(2), "{}: {why}: bao {args:?}:\n{}", self.name, out(&o));
        assert!(out(&o).contains("Code: 400"), "{}: {why}: {}", self.name, out(&o));
        out(&o)
    }
}

fn openssl(dir: &Path, args: &[&str]) -> (bool, String) {
    let o = Command::new("openssl").args(args).current_dir(dir).stdin(Stdio::null()).output().expect("run openssl");
    (o.status.success(), format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
}

/// Writes a PEM file, ending it with a newline (OpenBao's PEM fields have none, so files
/// concatenated later would run two blocks together).
fn write(dir: &Path, name: &str, text: &str) -> String {
    std::fs::write(dir.join(name), format!("{}\n", text.trim_end())).unwrap();
    dir.join(name).display().to_string()
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

fn drive(t: &Target) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    t.ok(&["secrets", "enable", "pki"]);
    t.ok(&["secrets", "enable", "-path=pki_int", "pki"]);
    t.ok(&["secrets", "tune", "-max-lease-ttl=87600h", "pki"]);
    t.ok(&["secrets", "tune", "-max-lease-ttl=43800h", "pki_int"]);

    // A root, and its certificate public at ca/pem (no token).
    let root = t.data(&[
        "write",
        "pki/root/generate/internal",
        "common_name=Coffer Test Root",
        "ttl=87600h",
        "key_type=ec",
        "issuer_name=root-2026",
    ]);
    let root_pem = write(d, "root.pem", s(&root["certificate"]));
    assert!(root["private_key"].is_null(), "{}: internal keys stay inside", t.name);
    let (st, body) = http(&t.addr, "GET", "/v1/pki/ca/pem", &[], b"");
    assert_eq!(st, 200, "{}: ca/pem without a token: {body}", t.name);
    assert_eq!(body.trim(), s(&root["certificate"]).trim(), "{}: ca/pem is the root", t.name);
    let (ok, text) = openssl(d, &["x509", "-in", &root_pem, "-noout", "-subject", "-ext", "basicConstraints"]);
    assert!(ok && text.contains("Coffer Test Root") && text.contains("CA:TRUE"), "{}: {text}", t.name);

    // An intermediate: CSR here, signed by the root, imported back.
    let csr = t.data(&[
        "write",
        "pki_int/intermediate/generate/internal",
        "common_name=Coffer Test Intermediate",
        "key_type=rsa",
    ]);
    let csr_file = write(d, "int.csr", s(&csr["csr"]));
    let signed =
        t.data(&["write", "pki/root/sign-intermediate", &format!("csr=@{csr_file}"), "format=pem", "ttl=43800h"]);
    let int_pem = write(d, "int.pem", s(&signed["certificate"]));
    let set = t.data(&["write", "pki_int/intermediate/set-signed", &format!("certificate=@{int_pem}")]);
    assert!(set["imported_issuers"].as_array().is_some_and(|a| a.len() == 1), "{}: {set}", t.name);
    let (ok, text) = openssl(d, &["verify", "-CAfile", &root_pem, &int_pem]);
    assert!(ok, "{}: the intermediate verifies against the root: {text}", t.name);
    // A CSR whose signature was tampered with is refused.
    let forged = s(&csr["csr"]).replacen("MII", "MIJ", 1);
    let forged_file = write(d, "forged.csr", &forged);
    t.refused(&["write", "pki/root/sign-intermediate", &format!("csr=@{forged_file}"), "ttl=1h"], "a forged CSR");
    t.refused(&["write", "pki/root/sign-intermediate", "csr=not a csr", "ttl=1h"], "garbage PEM");

    // A role, and certificates under it.
    t.ok(&[
        "write",
        "pki_int/roles/web",
        "allowed_domains=example.com",
        "allow_subdomains=true",
        "max_ttl=72h",
        "key_type=ec",
    ]);
    let leaf =
        t.data(&["write", "pki_int/issue/web", "common_name=app.example.com", "alt_names=api.example.com", "ttl=24h"]);
    let leaf_pem = write(d, "leaf.pem", s(&leaf["certificate"]));
    let key_pem = write(d, "leaf.key", s(&leaf["private_key"]));
    let (ok, text) = openssl(d, &["verify", "-CAfile", &root_pem, "-untrusted", &int_pem, &leaf_pem]);
    assert!(ok, "{}: the leaf verifies through the intermediate: {text}", t.name);
    let (ok, text) = openssl(d, &["x509", "-in", &leaf_pem, "-noout", "-ext", "subjectAltName,extendedKeyUsage"]);
    assert!(
        ok && text.contains("DNS:app.example.com")
            && text.contains("DNS:api.example.com")
            && text.contains("TLS Web Server Authentication"),
        "{}: {text}",
        t.name
    );
    t.refused(&["write", "pki_int/issue/web", "common_name=evil.org"], "a name outside the role");
    let capped = t.run(&["write", "pki_int/issue/web", "common_name=app.example.com", "ttl=100h"]);
    assert!(
        capped.status.success() && out(&capped).contains("is longer than permitted maxTTL"),
        "{}: a TTL over the role's max_ttl is capped, with a warning: {}",
        t.name,
        out(&capped)
    );
    t.refused(&["write", "pki_int/roles/bad", "key_type=dsa"], "an unsupported key type");

    for (kind, args) in [("rsa", ["key_type=rsa", "key_bits=2048"]), ("ed25519", ["key_type=ed25519", "key_bits=0"])] {
        let mut w = vec![
            "write",
            "pki_int/roles/web-other",
            "allowed_domains=example.com",
            "allow_subdomains=true",
            "max_ttl=72h",
        ];
        w.extend(args);
        t.ok(&w);
        let c = t.data(&["write", "pki_int/issue/web-other", "common_name=other.example.com"]);
        let p = write(d, &format!("{kind}.pem"), s(&c["certificate"]));
        let (ok, text) = openssl(d, &["verify", "-CAfile", &root_pem, "-untrusted", &int_pem, &p]);
        assert!(ok, "{}: a {kind} leaf verifies: {text}", t.name);
        assert_eq!(c["private_key_type"], kind, "{}", t.name);
    }

    // A CSR made by OpenSSL, signed under the role.
    let (ok, text) = openssl(
        d,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "client.key",
            "-out",
            "client.csr",
            "-subj",
            "/CN=client.example.com",
        ],
    );
    assert!(ok, "{text}");
    let signed = t.data(&["write", "pki_int/sign/web", &format!("csr=@{}", d.join("client.csr").display()), "ttl=1h"]);
    let client_pem = write(d, "client.pem", s(&signed["certificate"]));
    let (ok, text) = openssl(d, &["verify", "-CAfile", &root_pem, "-untrusted", &int_pem, &client_pem]);
    assert!(ok, "{}: the signed CSR verifies: {text}", t.name);

    // A TLS handshake with the issued server certificate.
    let port = free_port();
    let mut server = Command::new("openssl")
        .args([
            "s_server",
            "-accept",
            &port.to_string(),
            "-cert",
            &leaf_pem,
            "-cert_chain",
            &int_pem,
            "-key",
            &key_pem,
            "-naccept",
            "1",
            "-quiet",
        ])
        .current_dir(d)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl s_server");
    std::thread::sleep(std::time::Duration::from_millis(700));
    let client = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-servername",
            "app.example.com",
            "-verify_hostname",
            "app.example.com",
            "-CAfile",
            &root_pem,
            "-verify_return_error",
            "-brief",
        ])
        .current_dir(d)
        .stdin(Stdio::null())
        .output()
        .expect("openssl s_client");
    let _ = server.kill();
    let _ = server.wait();
    let text = format!("{}{}", String::from_utf8_lossy(&client.stdout), String::from_utf8_lossy(&client.stderr));
    assert!(text.contains("Verification: OK"), "{}: TLS handshake with the issued certificate: {text}", t.name);

    // Revocation: the CRL, served without a token, lists the serial, and openssl refuses the leaf.
    let serial = s(&leaf["serial_number"]).to_string();
    let listed = t.ok(&["list", "pki_int/certs"]);
    assert!(listed.contains(&serial), "{}: {listed}", t.name);
    let rev = t.data(&["write", "pki_int/revoke", &format!("serial_number={serial}")]);
    assert!(rev["revocation_time"].as_i64().is_some_and(|x| x > 0), "{}: {rev}", t.name);
    let (st, crl) = http(&t.addr, "GET", "/v1/pki_int/crl/pem", &[], b"");
    assert_eq!(st, 200, "{}: crl/pem without a token: {crl}", t.name);
    let crl_pem = write(d, "crl.pem", &crl);
    let (ok, text) = openssl(d, &["crl", "-in", &crl_pem, "-noout", "-text", "-CAfile", &int_pem]);
    let hex = serial.replace(':', "").to_uppercase();
    assert!(
        ok && text.contains("verify OK") && text.contains(&hex),
        "{}: the CRL is signed by the intermediate and lists {hex}:\n{text}",
        t.name
    );
    let both = write(
        d,
        "cas.pem",
        &format!("{}{}", std::fs::read_to_string(&root_pem).unwrap(), std::fs::read_to_string(&int_pem).unwrap()),
    );
    let root_crl = http(&t.addr, "GET", "/v1/pki/crl/pem", &[], b"").1;
    let crls = write(d, "crls.pem", &format!("{crl}\n{root_crl}"));
    let (ok, text) = openssl(d, &["verify", "-crl_check_all", "-CRLfile", &crls, "-CAfile", &both, &leaf_pem]);
    assert!(!ok && text.contains("certificate revoked"), "{}: openssl sees the revocation: {text}", t.name);
    let (ok, text) = openssl(d, &["verify", "-crl_check_all", "-CRLfile", &crls, "-CAfile", &both, &client_pem]);
    assert!(ok, "{}: an unrevoked certificate still verifies with the CRLs: {text}", t.name);
    let cert = t.data(&["read", &format!("pki_int/cert/{serial}")]);
    assert!(cert["revocation_time"].as_i64().is_some_and(|x| x > 0), "{}: {cert}", t.name);
}

#[test]
fn bao_cli_runs_a_two_tier_ca_whose_certificates_crls_and_tls_openssl_accepts_on_coffer_and_openbao() {
    let Some(bao) = bao_path() else { return };
    let server = Server::start_dev("root");
    drive(&Target { name: "coffer", bao: &bao, addr: server.addr.clone() });
    let real = RealBao::start(&bao);
    drive(&Target { name: "openbao", bao: &bao, addr: real.addr.clone() });
}
