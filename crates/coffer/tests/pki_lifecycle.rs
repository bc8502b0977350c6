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

    /// Succeeds; stdout and stderr (where the CLI prints warnings).
    fn all(&self, args: &[&str]) -> String {
        let o = cli(self.bao, &self.addr, Some("root"), args);
        assert!(o.status.success(), "{}: bao {args:?} failed ({:?}):\n{}", self.name, o.status.code(), out(&o));
        out(&o)
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
    // Base64 may hold `//`: escaped, it reaches the responder (here as a malformed request).
    let (code, ct, _) = curl(d, &[&format!("{base}/ocsp/MEIw%2F%2FAAAA")], "slashes.der");
    assert_eq!((code, ct.as_str()), (400, "application/ocsp-response"), "{}: escaped //", t.name);
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

fn wait_tidy(t: &Target, mount: &str, want: &[&str]) -> Value {
    for _ in 0..100 {
        let st = t.data(&["read", &format!("{mount}/tidy-status")]);
        if want.iter().any(|w| st["state"] == *w) {
            return st;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    panic!("{}: tidy never reached {want:?}", t.name);
}

fn tidy_flow(t: &Target) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    t.ok(&["secrets", "enable", "pki"]);
    let root = t.data(&["write", "pki/root/generate/internal", "common_name=Tidy Root", "ttl=100h", "key_type=ec"]);
    let root_pem = write(d, "root.pem", s(&root["certificate"]));
    t.ok(&["write", "pki/roles/any", "allow_any_name=true"]);
    let st = t.data(&["read", "pki/tidy-status"]);
    assert_eq!(st["state"], "Inactive", "{}: {st}", t.name);

    // Two short-lived certificates (one revoked) and one that stays valid.
    let short = t.data(&["write", "pki/issue/any", "common_name=short.test", "ttl=2s"]);
    let revoked = t.data(&["write", "pki/issue/any", "common_name=revoked.test", "ttl=8s"]);
    t.ok(&["write", "pki/revoke", &format!("serial_number={}", s(&revoked["serial_number"]))]);
    let keep = t.data(&["write", "pki/issue/any", "common_name=keep.test", "ttl=1h"]);
    let crl = write(d, "before.pem", &t.ok(&["read", "-field=crl", "pki/issuer/default/crl"]));
    let (_, text) = tool(d, "openssl", &["crl", "-in", &crl, "-noout", "-text"]);
    let rev_hex = s(&revoked["serial_number"]).replace(':', "").to_uppercase();
    assert!(text.contains(&rev_hex), "{}: the revoked certificate is on the CRL first: {text}", t.name);
    // Past both expiries (and the 1s safety buffer below).
    std::thread::sleep(std::time::Duration::from_secs(10));

    // Bad input is refused before anything runs.
    for body in ["safety_buffer=0s", "acme_account_safety_buffer=0s"] {
        let o = cli(t.bao, &t.addr, Some("root"), &["write", "pki/tidy", "tidy_cert_store=true", body]);
        assert!(!o.status.success() && out(&o).contains("Code: 400"), "{}: {body}: {}", t.name, out(&o));
    }
    let st = t.data(&["read", "pki/tidy-status"]);
    assert_eq!(st["state"], "Inactive", "{}: nothing ran: {st}", t.name);

    let o = t.all(&["write", "pki/tidy", "tidy_cert_store=true", "tidy_revoked_certs=true", "safety_buffer=1s"]);
    assert!(o.contains("Tidy operation successfully started"), "{}: {o}", t.name);
    let st = wait_tidy(t, "pki", &["Finished"]);
    assert_eq!(st["cert_store_deleted_count"], 2, "{}: {st}", t.name);
    assert_eq!(st["revoked_cert_deleted_count"], 1, "{}: {st}", t.name);
    assert_eq!(st["safety_buffer"], 1, "{}: {st}", t.name);
    let listed = t.ok(&["list", "pki/certs"]);
    assert!(listed.contains(s(&keep["serial_number"])), "{}: the valid certificate stays: {listed}", t.name);
    for gone in [&short, &revoked] {
        assert!(!listed.contains(s(&gone["serial_number"])), "{}: expired ones are gone: {listed}", t.name);
    }
    // The CRL was rebuilt without the expired revoked certificate, and still verifies.
    let crl = write(d, "after.pem", &t.ok(&["read", "-field=crl", "pki/issuer/default/crl"]));
    let (ok, text) = tool(d, "openssl", &["crl", "-in", &crl, "-noout", "-text", "-CAfile", &root_pem]);
    assert!(ok && text.contains("verify OK"), "{}: {text}", t.name);
    assert!(!text.contains(&rev_hex), "{}: the expired revocation left the CRL: {text}", t.name);

    // A slow tidy (pause_duration) is cancelled between certificates.
    for i in 0..4 {
        t.ok(&["write", "pki/issue/any", &format!("common_name=c{i}.test"), "ttl=1h"]);
    }
    let o = t.all(&["write", "-force", "pki/tidy-cancel"]);
    assert!(o.contains("cannot be cancelled as none is currently running"), "{}: {o}", t.name);
    t.ok(&["write", "pki/tidy", "tidy_cert_store=true", "pause_duration=2s"]);
    std::thread::sleep(std::time::Duration::from_millis(500));
    t.ok(&["write", "-force", "pki/tidy-cancel"]);
    let st = wait_tidy(t, "pki", &["Cancelled"]);
    assert_eq!(st["cert_store_deleted_count"], 0, "{}: {st}", t.name);

    // generate_lease: the certificate gets a lease; revoking the lease revokes it.
    let o = t.all(&["write", "pki/roles/leased", "allow_any_name=true", "generate_lease=true"]);
    assert!(o.contains("generate_lease"), "{}: {o}", t.name);
    let issued = json(&t.ok(&["write", "-format=json", "pki/issue/leased", "common_name=leased.test", "ttl=10m"]));
    let lease = s(&issued["lease_id"]).to_string();
    assert!(lease.starts_with("pki/issue/leased/"), "{}: {issued}", t.name);
    let dur = issued["lease_duration"].as_i64().unwrap();
    assert!((590..=600).contains(&dur), "{}: the lease lasts as the certificate: {issued}", t.name);
    assert_eq!(issued["renewable"], false, "{}: {issued}", t.name);
    let serial = s(&issued["data"]["serial_number"]).to_string();
    let before = t.data(&["read", &format!("pki/cert/{serial}")]);
    assert_eq!(before["revocation_time"], 0, "{}: {before}", t.name);
    t.ok(&["lease", "revoke", "-sync", &lease]);
    let after = t.data(&["read", &format!("pki/cert/{serial}")]);
    assert!(after["revocation_time"].as_i64().is_some_and(|x| x > 0), "{}: revoked with its lease: {after}", t.name);
    let crl = write(d, "leased.pem", &t.ok(&["read", "-field=crl", "pki/issuer/default/crl"]));
    let (_, text) = tool(d, "openssl", &["crl", "-in", &crl, "-noout", "-text"]);
    assert!(text.contains(&serial.replace(':', "").to_uppercase()), "{}: on the CRL: {text}", t.name);
}

#[test]
fn tidy_removes_expired_certificates_and_crl_entries_can_be_cancelled_and_leases_revoke_certificates_on_coffer_and_openbao(
) {
    let Some(bao) = bao_path() else { return };
    let server = Server::start_dev("root");
    tidy_flow(&Target { name: "coffer", bao: &bao, addr: server.addr.clone() });
    let real = RealBao::start(&bao);
    tidy_flow(&Target { name: "openbao", bao: &bao, addr: real.addr.clone() });
}

/// Auto-tidy on Coffer (OpenBao's scheduler checks about once a minute, too slow for a test):
/// once `interval_duration` has passed, the mount's next request starts a tidy.
#[test]
fn auto_tidy_removes_expired_certificates_after_its_interval() {
    let Some(bao) = bao_path() else { return };
    let server = Server::start_dev("root");
    let t = Target { name: "coffer", bao: &bao, addr: server.addr.clone() };
    t.ok(&["secrets", "enable", "pki"]);
    t.ok(&["write", "pki/root/generate/internal", "common_name=Auto Root", "ttl=100h"]);
    t.ok(&["write", "pki/roles/any", "allow_any_name=true"]);
    let o = cli(&bao, &t.addr, Some("root"), &["write", "pki/config/auto-tidy", "enabled=true"]);
    assert!(out(&o).contains("no tidy operations"), "enabled without operations: {}", out(&o));
    let short = t.data(&["write", "pki/issue/any", "common_name=short.test", "ttl=1s"]);
    t.ok(&[
        "write",
        "pki/config/auto-tidy",
        "enabled=true",
        "interval_duration=3s",
        "tidy_cert_store=true",
        "safety_buffer=1s",
    ]);
    let cfg = t.data(&["read", "pki/config/auto-tidy"]);
    assert_eq!((cfg["enabled"].clone(), cfg["interval_duration"].clone()), (Value::Bool(true), 3.into()), "{cfg}");
    assert_eq!(t.data(&["read", "pki/tidy-status"])["state"], "Inactive", "not before the interval");
    std::thread::sleep(std::time::Duration::from_secs(4));
    let st = wait_tidy(&t, "pki", &["Finished"]);
    assert_eq!(st["cert_store_deleted_count"], 1, "{st}");
    assert!(st["last_auto_tidy_finished"].is_string(), "{st}");
    let listed = out(&cli(&bao, &t.addr, Some("root"), &["list", "pki/certs"]));
    assert!(!listed.contains(s(&short["serial_number"])), "{listed}");
}

/// The number after `label` in `openssl crl -text` output (`X509v3 CRL Number:` then a line).
fn crl_field(text: &str, label: &str) -> Option<u64> {
    let mut lines = text.lines();
    while let Some(l) = lines.next() {
        if l.contains(label) {
            return lines.next().and_then(|n| n.trim().parse().ok());
        }
    }
    None
}

fn delta_flow(t: &Target) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let base = format!("http://{}/v1/pki", t.addr);
    t.ok(&["secrets", "enable", "pki"]);
    let root = t.data(&["write", "pki/root/generate/internal", "common_name=Delta Root", "ttl=100h", "key_type=ec"]);
    let root_pem = write(d, "root.pem", s(&root["certificate"]));
    t.ok(&["write", "pki/roles/any", "allow_any_name=true"]);
    // Delta CRLs need auto_rebuild; refused alone, nothing stored.
    let o = cli(t.bao, &t.addr, Some("root"), &["write", "pki/config/crl", "enable_delta=true"]);
    assert!(out(&o).contains("Code: 400") && out(&o).contains("auto rebuild"), "{}: {}", t.name, out(&o));
    assert_eq!(t.data(&["read", "pki/config/crl"])["enable_delta"], false, "{}", t.name);
    t.ok(&["write", "pki/config/crl", "auto_rebuild=true", "enable_delta=true"]);
    let cfg = t.data(&["read", "pki/config/crl"]);
    assert_eq!((cfg["auto_rebuild"].clone(), cfg["enable_delta"].clone()), (true.into(), true.into()), "{}", t.name);

    let leaf = t.data(&["write", "pki/issue/any", "common_name=revoked.test", "ttl=1h"]);
    let leaf_pem = write(d, "leaf.pem", s(&leaf["certificate"]));
    let hex = s(&leaf["serial_number"]).replace(':', "").to_uppercase();
    t.ok(&["write", "pki/revoke", &format!("serial_number={}", s(&leaf["serial_number"]))]);
    t.ok(&["read", "pki/crl/rotate-delta"]);

    // The complete CRL waits for its rebuild; the delta CRL (DER and PEM, no token) has it.
    let (code, ct, full) = curl(d, &[&format!("{base}/crl/pem")], "full.pem");
    assert_eq!(code, 200, "{}: {ct}", t.name);
    let (ok, full_text) = tool(d, "openssl", &["crl", "-in", &full, "-noout", "-text", "-CAfile", &root_pem]);
    assert!(ok && full_text.contains("verify OK") && !full_text.contains(&hex), "{}: {full_text}", t.name);
    let (code, ct, delta_der) = curl(d, &[&format!("{base}/crl/delta")], "delta.der");
    assert_eq!((code, ct.as_str()), (200, "application/pkix-crl"), "{}", t.name);
    let (ok, text) =
        tool(d, "openssl", &["crl", "-inform", "DER", "-in", &delta_der, "-noout", "-text", "-CAfile", &root_pem]);
    assert!(ok && text.contains("verify OK"), "{}: the delta CRL is signed by the issuer: {text}", t.name);
    assert!(text.contains("Delta CRL Indicator: critical") && text.contains(&hex), "{}: {text}", t.name);
    assert_eq!(
        crl_field(&text, "Delta CRL Indicator"),
        crl_field(&full_text, "X509v3 CRL Number"),
        "{}: the delta names the complete CRL as its base",
        t.name
    );
    assert!(crl_field(&text, "X509v3 CRL Number") > crl_field(&full_text, "X509v3 CRL Number"), "{}", t.name);
    let (_, _, delta_pem) = curl(d, &[&format!("{base}/crl/delta/pem")], "delta.pem");
    let (_, _, issuer_delta) = curl(d, &[&format!("{base}/issuer/default/crl/delta/pem")], "issuer-delta.pem");
    // (OpenBao's issuer/…/crl/delta/pem ends with a newline, its crl/delta/pem without.)
    let read = |p: &str| std::fs::read_to_string(p).unwrap().trim_end().to_string();
    assert_eq!(read(&delta_pem), read(&issuer_delta), "{}: the same delta CRL at both paths", t.name);
    let json_delta = t.data(&["read", "pki/cert/delta-crl"]);
    assert!(s(&json_delta["certificate"]).contains("BEGIN X509 CRL"), "{}: {json_delta}", t.name);

    // OpenSSL, given both CRLs and told to use deltas, finds the certificate revoked; with the
    // complete CRL alone it does not.
    let (ok, text) = tool(
        d,
        "openssl",
        &[
            "verify",
            "-crl_check",
            "-use_deltas",
            "-CAfile",
            &root_pem,
            "-CRLfile",
            &full,
            "-CRLfile",
            &delta_pem,
            &leaf_pem,
        ],
    );
    assert!(!ok && text.contains("certificate revoked"), "{}: with the delta CRL: {text}", t.name);
    let (ok, text) = tool(d, "openssl", &["verify", "-crl_check", "-CAfile", &root_pem, "-CRLfile", &full, &leaf_pem]);
    assert!(ok, "{}: the complete CRL alone does not list it yet: {text}", t.name);

    // crl/rotate puts it on the complete CRL.
    t.ok(&["read", "pki/crl/rotate"]);
    let (_, _, full2) = curl(d, &[&format!("{base}/crl/pem")], "full2.pem");
    let (_, text) = tool(d, "openssl", &["crl", "-in", &full2, "-noout", "-text"]);
    assert!(text.contains(&hex), "{}: after crl/rotate: {text}", t.name);
}

#[test]
fn delta_crls_carry_revocations_until_the_complete_crl_is_rebuilt_and_openssl_uses_them_on_coffer_and_openbao() {
    let Some(bao) = bao_path() else { return };
    let server = Server::start_dev("root");
    delta_flow(&Target { name: "coffer", bao: &bao, addr: server.addr.clone() });
    let real = RealBao::start(&bao);
    delta_flow(&Target { name: "openbao", bao: &bao, addr: real.addr.clone() });
}

fn rotation_flow(t: &Target) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    t.ok(&["secrets", "enable", "pki"]);
    t.ok(&["secrets", "tune", "-max-lease-ttl=8760h", "pki"]);
    let old = t.data(&[
        "write",
        "pki/root/generate/internal",
        "common_name=Old Root",
        "ttl=4000h",
        "key_type=ec",
        "issuer_name=old",
    ]);
    let old_pem = write(d, "old.pem", s(&old["certificate"]));
    t.ok(&["write", "pki/roles/any", "allow_any_name=true", "issuer_ref=default"]);
    let before = t.data(&["write", "pki/issue/any", "common_name=before.test", "ttl=1h"]);
    let before_pem = write(d, "before.pem", s(&before["certificate"]));

    // root/rotate: a new root named next; the default issuer stays the old one.
    let new = t.data(&["write", "pki/root/rotate/internal", "common_name=New Root", "ttl=8000h", "key_type=ec"]);
    assert_eq!(new["issuer_name"], "next", "{}: {new}", t.name);
    let new_pem = write(d, "new.pem", s(&new["certificate"]));
    let cfg = t.data(&["read", "pki/config/issuers"]);
    assert_eq!(cfg["default"], old["issuer_id"], "{}: rotate leaves the default alone: {cfg}", t.name);
    // A bad reference is refused and changes nothing.
    let o = cli(t.bao, &t.addr, Some("root"), &["write", "pki/root/replace", "default=nosuch"]);
    assert!(out(&o).contains("Code: 400"), "{}: {}", t.name, out(&o));
    assert_eq!(t.data(&["read", "pki/config/issuers"])["default"], old["issuer_id"], "{}", t.name);

    // Cross-sign: a CSR with the new root's key and subject, signed by the old root, imported.
    let key_ref = format!("key_ref={}", s(&new["key_id"]));
    let csr = t.data(&["write", "pki/intermediate/cross-sign", "common_name=New Root", &key_ref]);
    assert_eq!(csr["key_id"], new["key_id"], "{}: the CSR carries the new root's key: {csr}", t.name);
    let csr_file = write(d, "cross.csr", s(&csr["csr"]));
    let cross = t.data(&[
        "write",
        "pki/issuer/old/sign-intermediate",
        &format!("csr=@{csr_file}"),
        "use_csr_values=true",
        "ttl=3000h",
    ]);
    let cross_pem = write(d, "cross.pem", s(&cross["certificate"]));
    let (ok, text) = tool(d, "openssl", &["x509", "-in", &cross_pem, "-noout", "-subject", "-issuer"]);
    assert!(
        ok && text.contains("subject=CN = New Root") && text.contains("issuer=CN = Old Root"),
        "{}: {text}",
        t.name
    );
    let set = t.data(&["write", "pki/intermediate/set-signed", &format!("certificate=@{cross_pem}")]);
    let imported = set["imported_issuers"].as_array().cloned().unwrap_or_default();
    assert_eq!(imported.len(), 1, "{}: the cross-signed certificate is a new issuer: {set}", t.name);
    let cross_issuer = t.data(&["read", &format!("pki/issuer/{}", s(&imported[0]))]);
    assert_eq!(cross_issuer["key_id"], new["key_id"], "{}: bound to the new root's key: {cross_issuer}", t.name);

    // root/replace: the new root becomes the default (default=next unless named).
    let rep = t.data(&["write", "-force", "pki/root/replace"]);
    assert_eq!(rep["default"], new["issuer_id"], "{}: {rep}", t.name);
    let after = t.data(&["write", "pki/issue/any", "common_name=after.test", "ttl=1h"]);
    let after_pem = write(d, "after.pem", s(&after["certificate"]));

    // Old and new trust anchors: the old certificate verifies under the old root; the new one
    // under the new root, and under the old root through the cross-signed certificate.
    let verify = |ca: &str, untrusted: Option<&str>, leaf: &str| {
        let mut args = vec!["verify", "-CAfile", ca];
        if let Some(u) = untrusted {
            args.extend(["-untrusted", u]);
        }
        args.push(leaf);
        tool(d, "openssl", &args)
    };
    let (ok, text) = verify(&old_pem, None, &before_pem);
    assert!(ok, "{}: before under the old root: {text}", t.name);
    let (ok, text) = verify(&new_pem, None, &after_pem);
    assert!(ok, "{}: after under the new root: {text}", t.name);
    let (ok, text) = verify(&old_pem, Some(&cross_pem), &after_pem);
    assert!(ok, "{}: after under the old root via the cross-signed certificate: {text}", t.name);
    let (ok, _) = verify(&old_pem, None, &after_pem);
    assert!(!ok, "{}: without the cross-signed certificate the old root cannot vouch for it", t.name);
}

#[test]
fn root_rotation_cross_signing_and_replace_keep_old_and_new_chains_verifying_on_coffer_and_openbao() {
    let Some(bao) = bao_path() else { return };
    let server = Server::start_dev("root");
    rotation_flow(&Target { name: "coffer", bao: &bao, addr: server.addr.clone() });
    let real = RealBao::start(&bao);
    rotation_flow(&Target { name: "openbao", bao: &bao, addr: real.addr.clone() });
}

fn follows_flow(t: &Target) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    t.ok(&["secrets", "enable", "pki"]);
    t.ok(&["secrets", "tune", "-max-lease-ttl=8760h", "pki"]);
    let first = t.data(&["write", "pki/root/generate/internal", "common_name=First Root", "ttl=4000h", "key_type=ec"]);
    let first_pem = write(d, "first.pem", s(&first["certificate"]));
    let cfg = t.data(&["read", "pki/config/issuers"]);
    assert_eq!(cfg["default_follows_latest_issuer"], false, "{}: off by default: {cfg}", t.name);
    // A write must name the default, even one that only sets the flag.
    let o = cli(t.bao, &t.addr, Some("root"), &["write", "pki/config/issuers", "default_follows_latest_issuer=true"]);
    assert!(
        out(&o).contains("Code: 400") && out(&o).contains("Invalid issuer specification"),
        "{}: {}",
        t.name,
        out(&o)
    );
    let fid = s(&first["issuer_id"]).to_string();
    let cfg = t.data(&["write", "pki/config/issuers", &format!("default={fid}"), "default_follows_latest_issuer=true"]);
    assert_eq!(cfg["default_follows_latest_issuer"], true, "{}: {cfg}", t.name);
    t.ok(&["write", "pki/roles/any", "allow_any_name=true"]);

    // root/rotate: the new root becomes the default, and issues.
    let rotated =
        t.data(&["write", "pki/root/rotate/internal", "common_name=Rotated Root", "ttl=4000h", "key_type=ec"]);
    let rotated_pem = write(d, "rotated.pem", s(&rotated["certificate"]));
    assert_eq!(t.data(&["read", "pki/config/issuers"])["default"], rotated["issuer_id"], "{}", t.name);
    let leaf = t.data(&["write", "pki/issue/any", "common_name=leaf.test", "ttl=1h"]);
    let leaf_pem = write(d, "leaf.pem", s(&leaf["certificate"]));
    let (ok, text) = tool(d, "openssl", &["verify", "-CAfile", &rotated_pem, &leaf_pem]);
    assert!(ok, "{}: issued by the rotated root: {text}", t.name);
    let (ok, _) = tool(d, "openssl", &["verify", "-CAfile", &first_pem, &leaf_pem]);
    assert!(!ok, "{}: not by the first root", t.name);
    // A later write without the flag keeps it.
    let cfg = t.data(&["write", "pki/config/issuers", &format!("default={fid}")]);
    assert_eq!(
        (cfg["default"].clone(), cfg["default_follows_latest_issuer"].clone()),
        (first["issuer_id"].clone(), true.into()),
        "{}",
        t.name
    );

    // Importing a certificate without its key does not move the default; with its key it does.
    let gen = |name: &str| {
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
                &format!("{name}.key"),
                "-out",
                &format!("{name}.pem"),
                "-subj",
                &format!("/CN={name}"),
                "-days",
                "30",
            ],
        );
        assert!(ok, "{text}");
    };
    gen("keyless");
    let imp =
        t.data(&["write", "pki/issuers/import/cert", &format!("pem_bundle=@{}", d.join("keyless.pem").display())]);
    assert_eq!(imp["imported_issuers"].as_array().map(Vec::len), Some(1), "{}: {imp}", t.name);
    assert_eq!(
        t.data(&["read", "pki/config/issuers"])["default"],
        first["issuer_id"],
        "{}: a key-less issuer is not made the default",
        t.name
    );
    gen("withkey");
    let bundle = format!(
        "{}{}",
        std::fs::read_to_string(d.join("withkey.pem")).unwrap(),
        std::fs::read_to_string(d.join("withkey.key")).unwrap()
    );
    let bundle_file = write(d, "bundle.pem", &bundle);
    let imp = t.data(&["write", "pki/issuers/import/bundle", &format!("pem_bundle=@{bundle_file}")]);
    let new_id = imp["imported_issuers"][0].clone();
    assert_eq!(
        t.data(&["read", "pki/config/issuers"])["default"],
        new_id,
        "{}: an issuer with its key is: {imp}",
        t.name
    );

    // A signed intermediate set here becomes the default too.
    let csr = t.data(&["write", "pki/intermediate/generate/internal", "common_name=Inter", "key_type=ec"]);
    let csr_file = write(d, "inter.csr", s(&csr["csr"]));
    let signed =
        t.data(&["write", &format!("pki/issuer/{fid}/sign-intermediate"), &format!("csr=@{csr_file}"), "ttl=100h"]);
    let inter_file = write(d, "inter.pem", s(&signed["certificate"]));
    let set = t.data(&["write", "pki/intermediate/set-signed", &format!("certificate=@{inter_file}")]);
    let inter_id = set["imported_issuers"][0].clone();
    assert_eq!(t.data(&["read", "pki/config/issuers"])["default"], inter_id, "{}: {set}", t.name);
    let leaf = t.data(&["write", "pki/issue/any", "common_name=under-inter.test", "ttl=1h"]);
    let leaf_pem = write(d, "leaf2.pem", s(&leaf["certificate"]));
    let (ok, text) = tool(d, "openssl", &["verify", "-CAfile", &first_pem, "-untrusted", &inter_file, &leaf_pem]);
    assert!(ok, "{}: issued by the intermediate: {text}", t.name);

    // Off again: rotation leaves the default where it is.
    t.ok(&["write", "pki/config/issuers", &format!("default={fid}"), "default_follows_latest_issuer=false"]);
    t.ok(&["write", "pki/root/rotate/internal", "common_name=Third Root", "ttl=100h", "key_type=ec"]);
    assert_eq!(t.data(&["read", "pki/config/issuers"])["default"], first["issuer_id"], "{}", t.name);
    // Deleting the default issuer warns, and names the roles that used it; an unknown one is
    // already gone.
    let hdr = [("X-Vault-Token", "root")];
    let (st, body) = http(&t.addr, "DELETE", "/v1/pki/issuer/nonexistent", &hdr, b"");
    assert!(st == 200 || st == 204, "{}: {st} {body}", t.name);
    let (st, body) = http(&t.addr, "DELETE", &format!("/v1/pki/issuer/{fid}"), &hdr, b"");
    let warnings = json(&body)["warnings"].to_string();
    assert!(
        st == 200
            && warnings.contains("this was configured as the default issuer")
            && warnings.contains("1 roles reference default"),
        "{}: {st} {body}",
        t.name
    );
    assert_eq!(t.data(&["read", "pki/config/issuers"])["default"], "", "{}", t.name);
    // Deleting everything keeps the setting.
    let inter = s(&inter_id).to_string();
    t.ok(&["write", "pki/config/issuers", &format!("default={inter}"), "default_follows_latest_issuer=true"]);
    t.ok(&["delete", "pki/root"]);
    let cfg = t.data(&["read", "pki/config/issuers"]);
    assert_eq!(
        (cfg["default"].clone(), cfg["default_follows_latest_issuer"].clone()),
        ("".into(), true.into()),
        "{}",
        t.name
    );
}

#[test]
fn default_follows_latest_issuer_moves_the_default_to_new_keyed_issuers_on_coffer_and_openbao() {
    let Some(bao) = bao_path() else { return };
    let server = Server::start_dev("root");
    follows_flow(&Target { name: "coffer", bao: &bao, addr: server.addr.clone() });
    let real = RealBao::start(&bao);
    follows_flow(&Target { name: "openbao", bao: &bao, addr: real.addr.clone() });
}

/// `openssl crl` on a CRL file (DER or PEM), checked against `ca`: (verified, text).
fn crl_text(d: &Path, file: &str, der: bool, ca: &str) -> (bool, String) {
    let mut args = vec!["crl", "-in", file, "-noout", "-text", "-CAfile", ca];
    if der {
        args.extend(["-inform", "DER"]);
    }
    let (ok, text) = tool(d, "openssl", &args);
    (ok && text.contains("verify OK"), text)
}

fn unified_flow(t: &Target) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let base = format!("http://{}/v1/pki", t.addr);
    t.ok(&["secrets", "enable", "pki"]);
    let root = t.data(&["write", "pki/root/generate/internal", "common_name=Unified Root", "ttl=100h", "key_type=ec"]);
    let root_pem = write(d, "root.pem", s(&root["certificate"]));
    t.ok(&["write", "pki/roles/any", "allow_any_name=true"]);
    let good = t.data(&["write", "pki/issue/any", "common_name=good.test", "ttl=1h"]);
    let good_pem = write(d, "good.pem", s(&good["certificate"]));
    let bad = t.data(&["write", "pki/issue/any", "common_name=bad.test", "ttl=1h"]);
    let bad_pem = write(d, "bad.pem", s(&bad["certificate"]));
    let bad_hex = s(&bad["serial_number"]).replace(':', "").to_uppercase();
    t.ok(&["write", "pki/revoke", &format!("serial_number={}", s(&bad["serial_number"]))]);
    let unified_ocsp = format!("{base}/unified-ocsp");

    // Off by default: the unified CRLs answer an error, unified OCSP "unauthorized".
    for p in
        ["unified-crl", "unified-crl/pem", "unified-crl/delta", "issuer/default/unified-crl/der", "cert/unified-crl"]
    {
        let (code, _, file) = curl(d, &[&format!("{base}/{p}")], "off.txt");
        let body = std::fs::read_to_string(&file).unwrap_or_default();
        assert!(code == 400 && body.contains("unified CRLs are not enabled"), "{}: {p}: {code} {body}", t.name);
    }
    let (ok, text) = tool(d, "openssl", &["ocsp", "-issuer", &root_pem, "-cert", &good_pem, "-reqout", "good-req.der"]);
    assert!(ok, "{text}");
    let post = ["-X", "POST", "-H", "Content-Type: application/ocsp-request", "--data-binary", "@good-req.der"];
    let (code, _, file) = curl(d, &[&post[..], &[unified_ocsp.as_str()]].concat(), "off.der");
    assert_eq!(code, 401, "{}: unified OCSP while off", t.name);
    assert_eq!(std::fs::read(&file).unwrap(), [0x30, 0x03, 0x0a, 0x01, 0x06], "{}: unauthorized", t.name);
    let o = cli(t.bao, &t.addr, Some("root"), &["write", "pki/config/crl", "unified_crl_on_existing_paths=true"]);
    assert!(out(&o).contains("Code: 400") && out(&o).contains("unified_crl is disabled"), "{}: {}", t.name, out(&o));
    let o = cli(t.bao, &t.addr, Some("root"), &["write", "pki/config/crl", "cross_cluster_revocation=true"]);
    assert!(out(&o).contains("Code: 400") && out(&o).contains("cross_cluster_revocation"), "{}: {}", t.name, out(&o));

    let cfg = t.data(&["write", "pki/config/crl", "unified_crl=true", "auto_rebuild=true", "enable_delta=true"]);
    assert_eq!(cfg["unified_crl"], true, "{}: the write answers the settings: {cfg}", t.name);
    let cfg = t.data(&["read", "pki/config/crl"]);
    assert_eq!(
        (
            cfg["unified_crl"].clone(),
            cfg["unified_crl_on_existing_paths"].clone(),
            cfg["cross_cluster_revocation"].clone()
        ),
        (true.into(), false.into(), false.into()),
        "{}: {cfg}",
        t.name
    );
    // A revocation after auto_rebuild: on the delta CRLs until the complete ones are rebuilt.
    let late = t.data(&["write", "pki/issue/any", "common_name=late.test", "ttl=1h"]);
    let late_hex = s(&late["serial_number"]).replace(':', "").to_uppercase();
    t.ok(&["write", "pki/revoke", &format!("serial_number={}", s(&late["serial_number"]))]);

    // The unified CRLs, no token: signed by the issuer (openssl checks), listing this cluster's
    // revocations, the same CRL as the mount's.
    let (code, ct, der) = curl(d, &[&format!("{base}/unified-crl")], "unified.der");
    assert_eq!((code, ct.as_str()), (200, "application/pkix-crl"), "{}", t.name);
    let (ok, text) = crl_text(d, &der, true, &root_pem);
    assert!(ok && text.contains(&bad_hex), "{}: unified CRL: {text}", t.name);
    let (code, _, pem) = curl(d, &[&format!("{base}/unified-crl/pem")], "unified.pem");
    let (ok, text) = crl_text(d, &pem, false, &root_pem);
    assert!(code == 200 && ok && text.contains(&bad_hex), "{}: unified CRL PEM: {text}", t.name);
    let (_, _, local) = curl(d, &[&format!("{base}/crl/pem")], "local.pem");
    assert_eq!(std::fs::read(&pem).unwrap(), std::fs::read(&local).unwrap(), "{}: one cluster: the same CRL", t.name);
    for (p, der) in [
        ("unified-crl/delta", true),
        ("unified-crl/delta/pem", false),
        ("issuer/default/unified-crl/delta/der", true),
        ("issuer/default/unified-crl/delta/pem", false),
    ] {
        let (code, _, file) = curl(d, &[&format!("{base}/{p}")], "delta.out");
        let (ok, text) = crl_text(d, &file, der, &root_pem);
        assert!(
            code == 200 && ok && text.contains("Delta CRL Indicator") && text.contains(&late_hex),
            "{}: {p}: {text}",
            t.name
        );
    }
    for (p, der) in [("issuer/default/unified-crl/der", true), ("issuer/default/unified-crl/pem", false)] {
        let (code, _, file) = curl(d, &[&format!("{base}/{p}")], "issuer.out");
        let (ok, text) = crl_text(d, &file, der, &root_pem);
        assert!(code == 200 && ok && text.contains(&bad_hex), "{}: {p}: {text}", t.name);
    }
    let json_crl = t.data(&["read", "pki/issuer/default/unified-crl"]);
    assert!(s(&json_crl["crl"]).contains("BEGIN X509 CRL"), "{}: {json_crl}", t.name);
    let json_crl = t.data(&["read", "pki/cert/unified-delta-crl"]);
    assert!(s(&json_crl["certificate"]).contains("BEGIN X509 CRL"), "{}: {json_crl}", t.name);

    // Unified OCSP, POST and GET, no token: good and revoked, signed by the issuer.
    let text = ocsp_query(d, &root_pem, &["-cert", &good_pem], &unified_ocsp, &[]);
    assert!(text.contains("Response verify OK") && text.contains("good.pem: good"), "{}: {text}", t.name);
    let text = ocsp_query(d, &root_pem, &["-cert", &bad_pem], &unified_ocsp, &[]);
    assert!(text.contains("Response verify OK") && text.contains("bad.pem: revoked"), "{}: {text}", t.name);
    let (ok, text) = tool(d, "openssl", &["ocsp", "-issuer", &root_pem, "-cert", &bad_pem, "-reqout", "req.der"]);
    assert!(ok, "{text}");
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(std::fs::read(d.join("req.der")).unwrap());
    let escaped = b64.replace('+', "%2B").replace('/', "%2F").replace('=', "%3D");
    let (code, ct, file) = curl(d, &[&format!("{unified_ocsp}/{escaped}")], "get.der");
    assert_eq!((code, ct.as_str()), (200, "application/ocsp-response"), "{}: GET", t.name);
    let (ok, text) =
        tool(d, "openssl", &["ocsp", "-respin", &file, "-resp_text", "-CAfile", &root_pem, "-verify_other", &root_pem]);
    assert!(ok && text.contains("Cert Status: revoked") && text.contains("Response verify OK"), "{}: {text}", t.name);

    // unified_crl_on_existing_paths: accepted now, and unified_crl cannot be turned off under it.
    let cfg = t.data(&["write", "pki/config/crl", "unified_crl_on_existing_paths=true"]);
    assert_eq!(cfg["unified_crl_on_existing_paths"], true, "{}: {cfg}", t.name);
    let (code, _, file) = curl(d, &[&format!("{base}/crl")], "existing.der");
    let (ok, text) = crl_text(d, &file, true, &root_pem);
    assert!(code == 200 && ok && text.contains(&bad_hex), "{}: {text}", t.name);
    let o = cli(t.bao, &t.addr, Some("root"), &["write", "pki/config/crl", "unified_crl=false"]);
    assert!(out(&o).contains("Code: 400"), "{}: {}", t.name, out(&o));
    t.ok(&["write", "pki/config/crl", "unified_crl=false", "unified_crl_on_existing_paths=false"]);
    let (code, _, _) = curl(d, &[&format!("{base}/unified-crl")], "off-again.txt");
    assert_eq!(code, 400, "{}: off again", t.name);
}

/// OpenBao 2.x has no unified CRL or OCSP (Vault Enterprise features it removed): the paths are
/// unknown (404 with a token) and config/crl ignores the keys with a warning. Coffer serves
/// them for its one cluster (docs/pki.md).
#[test]
fn unified_crl_and_ocsp_paths_answer_when_enabled_and_openssl_verifies_them() {
    let Some(bao) = bao_path() else { return };
    let server = Server::start_dev("root");
    unified_flow(&Target { name: "coffer", bao: &bao, addr: server.addr.clone() });

    let real = RealBao::start(&bao);
    let t = Target { name: "openbao", bao: &bao, addr: real.addr.clone() };
    t.ok(&["secrets", "enable", "pki"]);
    t.ok(&["write", "pki/root/generate/internal", "common_name=R", "ttl=10h"]);
    let (st, body) = http(&t.addr, "GET", "/v1/pki/unified-crl", &[("X-Vault-Token", "root")], b"");
    assert!(st == 404 && body.contains("unsupported path"), "openbao: {st} {body}");
    let text = t.all(&["write", "pki/config/crl", "unified_crl=true"]);
    assert!(text.contains("ignored these unrecognized parameters"), "openbao: {text}");
}
