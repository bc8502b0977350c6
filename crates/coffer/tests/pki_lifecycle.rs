//! The PKI engine's certificate-status and lifecycle features as an operator and a relying
//! party use them: the real `bao` CLI configures the real `coffer server` and a real OpenBao
//! dev server alike, and the independent tools check the results — `openssl ocsp` asks the
//! OCSP responder (POST, and GET with curl) about good, revoked and foreign certificates and
//! verifies the signed answers.
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
    fn ok(&self, args: &[&str]) -> String {
        let o = cli(self.bao, &self.addr, Some("root"), args);
        assert!(o.status.success(), "{}: bao {args:?} failed ({:?}):\n{}", self.name, o.status.code(), out(&o));
        String::from_utf8_lossy(&o.stdout).to_string()
    }

    fn data(&self, args: &[&str]) -> Value {
        let mut all = vec![args[0], "-format=json"];
        all.extend_from_slice(&args[1..]);
        json(&self.ok(&all))["data"].clone()
    }
}

fn tool(dir: &Path, prog: &str, args: &[&str]) -> (bool, String) {
    let o = Command::new(prog).args(args).current_dir(dir).stdin(Stdio::null()).output().expect("run tool");
    (o.status.success(), format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    std::fs::write(dir.join(name), format!("{}\n", text.trim_end())).unwrap();
    dir.join(name).display().to_string()
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

/// `openssl ocsp` asking `url` about a certificate (`-cert f` or `-serial n`) of `issuer`: its output.
fn ocsp_query(d: &Path, issuer: &str, cert_args: &[&str], url: &str, extra: &[&str]) -> String {
    let mut args = vec!["ocsp", "-issuer", issuer, "-url", url, "-CAfile", issuer];
    args.extend_from_slice(extra);
    args.extend_from_slice(cert_args);
    tool(d, "openssl", &args).1
}

/// curl a binary answer: (HTTP status, content type, body file).
fn curl(d: &Path, args: &[&str], out_name: &str) -> (u16, String, String) {
    let out_file = d.join(out_name).display().to_string();
    let mut all = vec!["-s", "-o", &out_file, "-w", "%{http_code} %{content_type}"];
    all.extend_from_slice(args);
    let (_, text) = tool(d, "curl", &all);
    let mut it = text.splitn(2, ' ');
    let code = it.next().and_then(|c| c.parse().ok()).unwrap_or(0);
    (code, it.next().unwrap_or("").to_string(), out_file)
}

fn ocsp_flow(t: &Target) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let base = format!("http://{}/v1/pki", t.addr);
    t.ok(&["secrets", "enable", "pki"]);
    t.ok(&["secrets", "tune", "-max-lease-ttl=87600h", "pki"]);
    let root = t.data(&["write", "pki/root/generate/internal", "common_name=OCSP Root", "ttl=8760h", "key_type=ec"]);
    let root_pem = write(d, "root.pem", s(&root["certificate"]));
    t.ok(&["write", "pki/config/urls", &format!("ocsp_servers={base}/ocsp")]);
    t.ok(&["write", "pki/roles/web", "allowed_domains=example.com", "allow_subdomains=true", "max_ttl=72h"]);
    let good = t.data(&["write", "pki/issue/web", "common_name=good.example.com", "ttl=1h"]);
    let good_pem = write(d, "good.pem", s(&good["certificate"]));
    let bad = t.data(&["write", "pki/issue/web", "common_name=revoked.example.com", "ttl=1h"]);
    let bad_pem = write(d, "bad.pem", s(&bad["certificate"]));
    t.ok(&["write", "pki/revoke", &format!("serial_number={}", s(&bad["serial_number"]))]);

    // The issued certificate names the responder (AIA), and the responder answers there.
    let (ok, uri) = tool(d, "openssl", &["x509", "-in", &good_pem, "-noout", "-ocsp_uri"]);
    assert!(ok && uri.trim() == format!("{base}/ocsp"), "{}: the OCSP URL in the certificate: {uri}", t.name);
    let text = ocsp_query(d, &root_pem, &["-cert", &good_pem], uri.trim(), &[]);
    assert!(text.contains("Response verify OK"), "{}: the answer is signed by the issuer: {text}", t.name);
    assert!(text.contains("good.pem: good"), "{}: an unrevoked certificate is good: {text}", t.name);
    assert!(text.contains("Next Update:"), "{}: {text}", t.name);
    let text = ocsp_query(d, &root_pem, &["-cert", &bad_pem], uri.trim(), &["-sha256"]);
    assert!(text.contains("Response verify OK"), "{}: {text}", t.name);
    assert!(text.contains("bad.pem: revoked") && text.contains("Revocation Time"), "{}: revoked: {text}", t.name);
    // A serial this issuer never issued: OpenBao answers good (it only knows revocations).
    let text = ocsp_query(d, &root_pem, &["-serial", "0x1234"], uri.trim(), &[]);
    assert!(text.contains("Response verify OK") && text.contains("0x1234: good"), "{}: {text}", t.name);
    // An issuer that is not this mount's: never good, never revoked.
    let (ok, text) = tool(
        d,
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "other.key",
            "-out",
            "other.pem",
            "-subj",
            "/CN=Other CA",
            "-days",
            "2",
        ],
    );
    assert!(ok, "{text}");
    let text = ocsp_query(d, "other.pem", &["-serial", "0x1234"], uri.trim(), &[]);
    assert!(text.contains("OCSP") || text.contains("0x1234"), "{}: {text}", t.name);
    assert!(!text.contains(": good") && !text.contains(": revoked"), "{}: a foreign issuer's serial: {text}", t.name);

    // GET with the request in the path, no token.
    let (ok, text) = tool(d, "openssl", &["ocsp", "-issuer", &root_pem, "-cert", &bad_pem, "-reqout", "req.der"]);
    assert!(ok, "{text}");
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(std::fs::read(d.join("req.der")).unwrap());
    let escaped = b64.replace('+', "%2B").replace('/', "%2F").replace('=', "%3D");
    let (code, ct, file) = curl(d, &[&format!("{base}/ocsp/{escaped}")], "get.der");
    assert_eq!((code, ct.as_str()), (200, "application/ocsp-response"), "{}: GET", t.name);
    let (ok, text) =
        tool(d, "openssl", &["ocsp", "-respin", &file, "-resp_text", "-CAfile", &root_pem, "-verify_other", &root_pem]);
    assert!(ok && text.contains("Cert Status: revoked") && text.contains("Response verify OK"), "{}: {text}", t.name);

    // Not an OCSP request: malformedRequest (1), 400, still DER.
    let (code, ct, file) = curl(
        d,
        &[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/ocsp-request",
            "--data-binary",
            "garbage",
            &format!("{base}/ocsp"),
        ],
        "malformed.der",
    );
    assert_eq!((code, ct.as_str()), (400, "application/ocsp-response"), "{}: malformed", t.name);
    assert_eq!(std::fs::read(&file).unwrap(), [0x30, 0x03, 0x0a, 0x01, 0x01], "{}: malformedRequest", t.name);
    // `ocsp` without a request takes no GET.
    let (code, _, _) = curl(d, &[&format!("{base}/ocsp")], "get-bare.txt");
    assert_eq!(code, 405, "{}: GET ocsp alone", t.name);

    // No nextUpdate with ocsp_expiry=0; unauthorized (6), 401, with ocsp_disable.
    t.ok(&["write", "pki/config/crl", "ocsp_expiry=0"]);
    let text = ocsp_query(d, &root_pem, &["-cert", &good_pem], uri.trim(), &[]);
    assert!(text.contains("good.pem: good") && !text.contains("Next Update"), "{}: {text}", t.name);
    t.ok(&["write", "pki/config/crl", "ocsp_disable=true"]);
    let crl = t.data(&["read", "pki/config/crl"]);
    assert_eq!(crl["ocsp_disable"], Value::Bool(true), "{}: {crl}", t.name);
    assert_eq!(crl["ocsp_expiry"], "0", "{}: the other setting kept: {crl}", t.name);
    let (code, _, file) = curl(
        d,
        &[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/ocsp-request",
            "--data-binary",
            "@req.der",
            &format!("{base}/ocsp"),
        ],
        "disabled.der",
    );
    assert_eq!(code, 401, "{}: OCSP disabled", t.name);
    assert_eq!(std::fs::read(&file).unwrap(), [0x30, 0x03, 0x0a, 0x01, 0x06], "{}: unauthorized", t.name);

    // An RSA issuer's answers (SHA-256 with RSA) verify too.
    t.ok(&["secrets", "enable", "-path=pki_rsa", "pki"]);
    let rsa = t.data(&["write", "pki_rsa/root/generate/internal", "common_name=RSA Root", "ttl=100h", "key_type=rsa"]);
    let rsa_pem = write(d, "rsa.pem", s(&rsa["certificate"]));
    t.ok(&["write", "pki_rsa/roles/any", "allow_any_name=true"]);
    let leaf = t.data(&["write", "pki_rsa/issue/any", "common_name=rsa-leaf.test", "ttl=1h"]);
    let leaf_pem = write(d, "rsa-leaf.pem", s(&leaf["certificate"]));
    let text = ocsp_query(d, &rsa_pem, &["-cert", &leaf_pem], &format!("http://{}/v1/pki_rsa/ocsp", t.addr), &[]);
    assert!(text.contains("Response verify OK") && text.contains("rsa-leaf.pem: good"), "{}: {text}", t.name);
}

#[test]
fn openssl_ocsp_gets_signed_good_revoked_and_error_answers_from_coffer_and_openbao() {
    let Some(bao) = bao_path() else { return };
    let server = Server::start_dev("root");
    ocsp_flow(&Target { name: "coffer", bao: &bao, addr: server.addr.clone() });
    let real = RealBao::start(&bao);
    ocsp_flow(&Target { name: "openbao", bao: &bao, addr: real.addr.clone() });
}

/// OpenBao answers an Ed25519 issuer's OCSP requests with a 500 (2.7.2); Coffer signs them.
#[test]
fn openssl_ocsp_verifies_answers_signed_by_an_ed25519_issuer() {
    let Some(bao) = bao_path() else { return };
    let server = Server::start_dev("root");
    let t = Target { name: "coffer", bao: &bao, addr: server.addr.clone() };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    t.ok(&["secrets", "enable", "pki"]);
    let root = t.data(&["write", "pki/root/generate/internal", "common_name=Ed Root", "ttl=100h", "key_type=ed25519"]);
    let root_pem = write(d, "root.pem", s(&root["certificate"]));
    t.ok(&["write", "pki/roles/any", "allow_any_name=true", "key_type=ed25519"]);
    let leaf = t.data(&["write", "pki/issue/any", "common_name=ed-leaf.test", "ttl=1h"]);
    let leaf_pem = write(d, "leaf.pem", s(&leaf["certificate"]));
    t.ok(&["write", "pki/revoke", &format!("serial_number={}", s(&leaf["serial_number"]))]);
    let text = ocsp_query(d, &root_pem, &["-cert", &leaf_pem], &format!("http://{}/v1/pki/ocsp", t.addr), &[]);
    assert!(text.contains("Response verify OK") && text.contains("leaf.pem: revoked"), "{text}");
}
