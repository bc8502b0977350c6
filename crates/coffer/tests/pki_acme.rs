//! The PKI engine's ACME server end to end: the real certbot (from PyPI) obtains a certificate
//! over an HTTPS listener with an http-01 challenge it answers on 127.0.0.1:80 (standalone),
//! `openssl verify` checks it against the mount's root, certbot revokes it and the engine
//! lists it revoked; the same certbot run against a real OpenBao passes too. Bad input (a
//! made-up nonce, a broken signature, an order for a name the role forbids, a new account
//! without the external account binding the configuration requires) is sent by a small
//! JWS-signing client (tests/acme/probe.py): ACME problem documents, nothing stored.
mod common;
mod python;
use common::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Port 80 is shared by every test that binds it: an exclusive flock on
/// /var/tmp/port80.lock is held while certbot serves there (released when dropped).
fn lock_port80() -> std::fs::File {
    let f = std::fs::OpenOptions::new().create(true).append(true).open("/var/tmp/port80.lock").unwrap();
    f.lock().expect("flock /var/tmp/port80.lock");
    f
}

fn certbot() -> Option<String> {
    if !python::ensure("certbot", "certbot") {
        return None;
    }
    let found = Command::new("sh").args(["-c", "command -v certbot"]).output().ok().filter(|o| o.status.success());
    found.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
}

fn sh(dir: &Path, cmd: &str) -> String {
    let o = Command::new("bash").args(["-c", cmd]).current_dir(dir).output().unwrap();
    assert!(o.status.success(), "{cmd}: {}", out(&o));
    out(&o)
}

/// A TLS certificate for the listeners (localhost, 127.0.0.1) that certbot is told to trust.
fn listener_cert(dir: &Path) -> PathBuf {
    sh(
        dir,
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
         -addext subjectAltName=IP:127.0.0.1,DNS:localhost -keyout tls.key -out tls.pem 2>&1",
    );
    dir.join("tls.pem")
}

struct Coffer {
    _server: Server,
    plain: String,
    https: String,
    token: String,
}

fn start_coffer(dir: &Path) -> Coffer {
    let cfg = dir.join("coffer.hcl");
    std::fs::write(
        &cfg,
        format!(
            "storage \"inmem\" {{}}\nlistener \"tcp\" {{\n  address = \"127.0.0.1:0\"\n  tls_disable = true\n}}\n\
             listener \"tcp\" {{\n  address = \"127.0.0.1:0\"\n  tls_cert_file = \"{0}/tls.pem\"\n  tls_key_file = \"{0}/tls.key\"\n}}\n",
            dir.display()
        ),
    )
    .unwrap();
    let server = Server::start_with_config(&cfg);
    let (plain, https) = (server.addrs[0].clone(), server.addrs[1].clone());
    let (_, token) = init_unseal(&plain);
    Coffer { _server: server, plain, https, token }
}

fn api(addr: &str, token: &str, method: &str, path: &str, body: Value) -> (u16, Value) {
    let b = body.to_string();
    let (st, text) = http(addr, method, &format!("/v1/{path}"), &[("X-Vault-Token", token)], b.as_bytes());
    (st, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn ok(addr: &str, token: &str, method: &str, path: &str, body: Value) -> Value {
    let (st, v) = api(addr, token, method, path, body);
    assert!((200..300).contains(&st), "{method} {path}: {st} {v}");
    v
}

/// Mounts `pki` with a root, the ACME response headers allowed, config/cluster pointing at
/// the HTTPS listener and ACME enabled; returns the root certificate (PEM).
fn setup_pki(plain: &str, token: &str, https: &str) -> String {
    ok(plain, token, "POST", "sys/mounts/pki", json!({"type": "pki"}));
    ok(
        plain,
        token,
        "POST",
        "sys/mounts/pki/tune",
        json!({"max_lease_ttl": "87600h", "allowed_response_headers": ["Last-Modified", "Location", "Replay-Nonce", "Link"]}),
    );
    let root = ok(
        plain,
        token,
        "POST",
        "pki/root/generate/internal",
        json!({"common_name": "ACME Test Root", "key_type": "ec", "ttl": "8760h"}),
    );
    ok(plain, token, "POST", "pki/config/cluster", json!({"path": format!("https://{https}/v1/pki")}));
    ok(plain, token, "POST", "pki/config/acme", json!({"enabled": true}));
    root["data"]["certificate"].as_str().unwrap().to_string()
}

/// certbot certonly --standalone against `directory`; the certificate's path.
fn certbot_obtain(certbot: &str, dir: &Path, ca: &Path, directory: &str, domain: &str) -> (bool, String, PathBuf) {
    let work = dir.join("certbot");
    let mut c = Command::new(certbot);
    c.args([
        "certonly",
        "--standalone",
        "--non-interactive",
        "--agree-tos",
        "--register-unsafely-without-email",
        "--no-random-sleep-on-renew",
        "--http-01-address",
        "127.0.0.1",
        "--http-01-port",
        "80",
        "--server",
        directory,
        "-d",
        domain,
        "--config-dir",
    ])
    .arg(work.join("config"))
    .arg("--work-dir")
    .arg(work.join("work"))
    .arg("--logs-dir")
    .arg(work.join("logs"))
    .env("REQUESTS_CA_BUNDLE", ca);
    let (status, text) = run_bounded(&mut c, &dir.join("certbot.out"), Duration::from_secs(180));
    let ok = status.is_some_and(|s| s.success());
    (ok, text, work.join("config/live").join(domain))
}

fn certbot_revoke(certbot: &str, dir: &Path, ca: &Path, directory: &str, cert: &Path) -> (bool, String) {
    let work = dir.join("certbot");
    let mut c = Command::new(certbot);
    c.args(["revoke", "--non-interactive", "--no-delete-after-revoke", "--server", directory, "--cert-path"])
        .arg(cert)
        .arg("--config-dir")
        .arg(work.join("config"))
        .arg("--work-dir")
        .arg(work.join("work"))
        .arg("--logs-dir")
        .arg(work.join("logs"))
        .env("REQUESTS_CA_BUNDLE", ca);
    let (status, text) = run_bounded(&mut c, &dir.join("revoke.out"), Duration::from_secs(120));
    (status.is_some_and(|s| s.success()), text)
}

fn openssl_verify(dir: &Path, root_pem: &str, cert: &Path) -> String {
    std::fs::write(dir.join("root.pem"), root_pem).unwrap();
    sh(dir, &format!("openssl verify -CAfile root.pem {}", cert.display()))
}

fn serial_of(dir: &Path, cert: &Path) -> String {
    let s = sh(dir, &format!("openssl x509 -noout -serial -in {}", cert.display()));
    let hex = s.trim().trim_start_matches("serial=").to_ascii_lowercase();
    let hex = if hex.len() % 2 == 1 { format!("0{hex}") } else { hex };
    hex.as_bytes().chunks(2).map(|c| String::from_utf8_lossy(c).into_owned()).collect::<Vec<_>>().join(":")
}

#[test]
fn certbot_obtains_an_http01_certificate_that_openssl_verifies_and_revokes_it() {
    let Some(certbot) = certbot() else { return };
    let dir = tempfile::tempdir().unwrap();
    let ca = listener_cert(dir.path());
    let c = start_coffer(dir.path());
    let root = setup_pki(&c.plain, &c.token, &c.https);
    let directory = format!("https://{}/v1/pki/acme/directory", c.https);

    let _port80 = lock_port80();
    let (ok_, text, live) = certbot_obtain(&certbot, dir.path(), &ca, &directory, "localhost");
    assert!(ok_, "certbot failed against Coffer:\n{text}");
    let verified = openssl_verify(dir.path(), &root, &live.join("cert.pem"));
    assert!(verified.contains(": OK"), "{verified}");
    let text = sh(dir.path(), &format!("openssl x509 -noout -text -in {}", live.join("cert.pem").display()));
    assert!(text.contains("DNS:localhost"), "{text}");
    assert!(text.contains("TLS Web Server Authentication"), "{text}");

    // The engine lists it; certbot revokes it (signed by the account) and the engine agrees.
    let serial = serial_of(dir.path(), &live.join("cert.pem"));
    let listed = ok(&c.plain, &c.token, "LIST", "pki/certs", json!({}));
    assert!(listed["data"]["keys"].as_array().unwrap().iter().any(|k| k == &json!(serial)), "{listed}");
    let (revoked, text) = certbot_revoke(&certbot, dir.path(), &ca, &directory, &live.join("cert.pem"));
    assert!(revoked, "certbot revoke failed:\n{text}");
    let cert = ok(&c.plain, &c.token, "GET", &format!("pki/cert/{serial}"), json!({}));
    assert!(cert["data"]["revocation_time"].as_i64().unwrap_or(0) > 0, "{cert}");
}

/// The same certbot runs against a real OpenBao (with its own HTTPS listener): the reference
/// for the http-01 flow above and for the dns-01 wildcard with an EAB key below.
#[test]
fn certbot_flow_passes_on_openbao_too() {
    let Some(bao) = bao_path() else { return };
    let Some(certbot) = certbot() else { return };
    let dir = tempfile::tempdir().unwrap();
    let ca = listener_cert(dir.path());
    let port = free_port();
    let cfg = dir.path().join("bao.hcl");
    std::fs::write(
        &cfg,
        format!(
            "listener \"tcp\" {{\n  address = \"127.0.0.1:{port}\"\n  tls_cert_file = \"{0}/tls.pem\"\n  tls_key_file = \"{0}/tls.key\"\n}}\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let b = RealBao::start_with(&bao, &[&format!("-config={}", cfg.display())]);
    let https = format!("127.0.0.1:{port}");
    let root = setup_pki(&b.addr, "root", &https);
    let port80 = lock_port80();
    let (ok_, text, live) =
        certbot_obtain(&certbot, dir.path(), &ca, &format!("https://{https}/v1/pki/acme/directory"), "localhost");
    assert!(ok_, "certbot failed against OpenBao:\n{text}");
    let verified = openssl_verify(dir.path(), &root, &live.join("cert.pem"));
    assert!(verified.contains(": OK"), "{verified}");
    drop(port80);
    certbot_dns01_with_eab(&certbot, dir.path(), &ca, &b.addr, "root", &https, &root);
}

fn probe(dir: &Path, ca: &Path, directory: &str, args: &[&str]) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/acme/probe.py");
    let o = Command::new("python3")
        .arg(&script)
        .arg(directory)
        .args(args)
        .env("REQUESTS_CA_BUNDLE", ca)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "probe {args:?}: {}", out(&o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|_| panic!("probe output: {}", out(&o)))
}

fn assert_problem(r: &Value, status: u64, kind: &str) {
    assert_eq!(r["status"], json!(status), "{r}");
    assert_eq!(r["content_type"], json!("application/problem+json"), "{r}");
    assert_eq!(r["type"], json!(format!("urn:ietf:params:acme:error:{kind}")), "{r}");
    assert!(!r["detail"].as_str().unwrap_or("").is_empty(), "{r}");
}

#[test]
fn acme_bad_nonce_bad_signature_forbidden_names_and_missing_eab_are_refused_and_store_nothing() {
    // certbot brings the `requests` and `cryptography` packages the probe uses.
    if certbot().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ca = listener_cert(dir.path());
    let c = start_coffer(dir.path());
    setup_pki(&c.plain, &c.token, &c.https);
    let (p, t) = (&c.plain, &c.token);
    let directory = format!("https://{}/v1/pki/acme/directory", c.https);

    let r = probe(dir.path(), &ca, &directory, &["bad-nonce"]);
    assert_problem(&r["result"], 400, "badNonce");
    assert_eq!(r["stored"], json!(false), "{r}");

    let r = probe(dir.path(), &ca, &directory, &["reused-nonce"]);
    assert_eq!(r["first"]["status"], json!(201), "{r}");
    assert_problem(&r["result"], 400, "badNonce");

    // Account keys: ES384, ES512, EdDSA and RS256 (2048 bits) are accepted; a 1024-bit RSA key
    // and an HMAC algorithm are refused.
    let r = probe(dir.path(), &ca, &directory, &["algs"]);
    for alg in ["ES384", "ES512", "EdDSA", "RS256"] {
        assert_eq!(r[alg]["status"], json!(201), "{alg}: {r}");
    }
    assert_problem(&r["RS256-1024"], 400, "badPublicKey");
    assert_problem(&r["HS256"], 400, "badSignatureAlgorithm");

    let r = probe(dir.path(), &ca, &directory, &["bad-signature"]);
    assert_problem(&r["result"], 400, "malformed");
    assert_eq!(r["stored"], json!(false), "{r}");

    // A role's directory refuses names the role does not allow, before any authorization.
    ok(p, t, "POST", "pki/roles/web", json!({"allowed_domains": ["example.com"], "allow_subdomains": true}));
    let role_dir = format!("https://{}/v1/pki/roles/web/acme/directory", c.https);
    let r = probe(dir.path(), &ca, &role_dir, &["forbidden-name", "www.example.org"]);
    assert_eq!(r["account"]["status"], json!(201), "{r}");
    assert_problem(&r["result"], 400, "rejectedIdentifier");
    assert_eq!(r["orders"], json!([]), "{r}");
    let r = probe(dir.path(), &ca, &role_dir, &["forbidden-name", "www.example.com"]);
    assert_eq!(r["result"]["status"], json!(201), "an allowed name is ordered: {r}");
    assert_eq!(r["orders"].as_array().map(Vec::len), Some(1), "{r}");

    // A role ACME may not use.
    ok(p, t, "POST", "pki/roles/other", json!({"allow_any_name": true}));
    ok(p, t, "POST", "pki/config/acme", json!({"allowed_roles": ["web"]}));
    let (st, body) = http(&c.plain, "GET", "/v1/pki/roles/other/acme/directory", &[], b"");
    assert_eq!(st, 403, "{body}");
    assert!(body.contains("urn:ietf:params:acme:error:unauthorized"), "{body}");

    // External account binding required: refused without one, accepted with one, used once.
    ok(p, t, "POST", "pki/config/acme", json!({"eab_policy": "new-account-required"}));
    let r = probe(dir.path(), &ca, &directory, &["eab-missing"]);
    assert_eq!(r["directory"]["meta"]["externalAccountRequired"], json!(true), "{r}");
    assert_problem(&r["result"], 401, "externalAccountRequired");
    assert_eq!(r["stored"], json!(false), "{r}");
    let eab = ok(p, t, "POST", "pki/acme/new-eab", json!({}));
    let (kid, key) = (eab["data"]["id"].as_str().unwrap(), eab["data"]["key"].as_str().unwrap());
    assert_eq!(eab["data"]["acme_directory"], json!("acme/directory"), "{eab}");
    let listed = ok(p, t, "LIST", "pki/eab", json!({}));
    assert_eq!(listed["data"]["keys"], json!([kid]), "{listed}");
    let r = probe(dir.path(), &ca, &directory, &["eab-bound", kid, key]);
    assert_eq!(r["result"]["status"], json!(201), "{r}");
    assert_eq!(r["stored"], json!(true), "{r}");
    let (st, _) = api(p, t, "LIST", "pki/eab", json!({}));
    assert_eq!(st, 404, "the key is used up");
    // A key of another directory does not bind here.
    let eab = ok(p, t, "POST", "pki/roles/web/acme/new-eab", json!({}));
    let r = probe(
        dir.path(),
        &ca,
        &directory,
        &["eab-bound", eab["data"]["id"].as_str().unwrap(), eab["data"]["key"].as_str().unwrap()],
    );
    assert_problem(&r["result"], 403, "unauthorized");
    assert_eq!(r["stored"], json!(false), "{r}");

    // tidy_acme: the seven accounts without orders (reused-nonce's, the four of the algorithm
    // checks, the first forbidden-name one, the EAB-bound one) are revoked once idle past
    // acme_account_safety_buffer, then deleted a buffer later; the account with an order stays.
    std::thread::sleep(Duration::from_secs(2));
    let status = tidy_acme(p, t);
    assert_eq!(status["acme_account_revoked_count"], json!(7), "{status}");
    assert_eq!(status["acme_account_deleted_count"], json!(0), "{status}");
    assert_eq!(status["total_acme_account_count"], json!(8), "{status}");
    assert_eq!(status["acme_orders_deleted_count"], json!(0), "{status}");
    std::thread::sleep(Duration::from_secs(2));
    let status = tidy_acme(p, t);
    assert_eq!(status["acme_account_deleted_count"], json!(7), "{status}");
    assert_eq!(status["total_acme_account_count"], json!(1), "{status}");

    // An account belongs to its directory: its kid is refused in another one, where its key
    // finds no account (as OpenBao).
    ok(p, t, "POST", "pki/config/acme", json!({"eab_policy": "not-required"}));
    let r = probe(dir.path(), &ca, &directory, &["cross-directory", &role_dir]);
    assert_eq!(r["account"]["status"], json!(201), "{r}");
    assert_problem(&r["result"], 400, "malformed");
    assert_eq!(r["exists_there"], json!(false), "{r}");
    assert_eq!(r["exists_here"], json!(true), "{r}");
}

fn tidy_acme(p: &str, t: &str) -> Value {
    ok(p, t, "POST", "pki/tidy", json!({"tidy_acme": true, "acme_account_safety_buffer": "1s"}));
    for _ in 0..100 {
        let s = ok(p, t, "GET", "pki/tidy-status", json!({}));
        if s["data"]["state"] == json!("Finished") {
            assert_eq!(s["data"]["tidy_acme"], json!(true), "{s}");
            return s["data"].clone();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("the tidy did not finish");
}

#[test]
fn acme_config_refuses_bad_values_by_name_and_needs_the_cluster_path() {
    let s = Server::start_dev("root");
    let a = s.addr.clone();
    ok(&a, "root", "POST", "sys/mounts/pki", json!({"type": "pki"}));
    let (st, v) = api(&a, "root", "POST", "pki/config/acme", json!({"enabled": true}));
    assert_eq!(st, 400, "{v}");
    assert!(v.to_string().contains("config/cluster"), "{v}");
    let (st, _) = http(&a, "GET", "/v1/pki/acme/directory", &[], b"");
    assert_eq!(st, 404, "disabled ACME serves no directory");
    ok(&a, "root", "POST", "pki/config/cluster", json!({"path": "https://ca.example:8200/v1/pki"}));
    for (body, needle) in [
        (json!({"eab_policy": "bogus"}), "eab_policy"),
        (json!({"default_directory_policy": "external-policy"}), "external-policy"),
        (json!({"default_directory_policy": "role:nope"}), "nope"),
        (json!({"allowed_roles": ["nope"]}), "nope"),
        (json!({"dns_resolver": "1.1.1.1"}), "dns_resolver"),
    ] {
        let (st, v) = api(&a, "root", "POST", "pki/config/acme", body.clone());
        assert_eq!(st, 400, "{body}: {v}");
        assert!(v.to_string().contains(needle), "{body}: {v}");
    }
    let (st, v) = api(&a, "root", "POST", "pki/config/cluster", json!({"path": "notaurl"}));
    assert_eq!(st, 400, "{v}");
    let v = ok(&a, "root", "GET", "pki/config/acme", json!({}));
    assert_eq!(
        v["data"],
        json!({"enabled": false, "allowed_issuers": ["*"], "allowed_roles": ["*"], "allow_role_ext_key_usage": false,
               "default_directory_policy": "sign-verbatim", "dns_resolver": "", "eab_policy": "not-required"}),
        "nothing refused was kept"
    );
    // Enabled, with a root: the directory's URLs are absolute, under config/cluster's path;
    // new-nonce answers HEAD with 200 and GET with 204, with a nonce once the header is allowed.
    ok(&a, "root", "POST", "pki/root/generate/internal", json!({"common_name": "r", "key_type": "ec"}));
    ok(&a, "root", "POST", "pki/config/acme", json!({"enabled": true}));
    let (st, body) = http(&a, "GET", "/v1/pki/roles/none/acme/directory", &[], b"");
    assert_eq!(st, 400, "{body}");
    let (st, body) = http(&a, "GET", "/v1/pki/issuer/default/acme/directory", &[], b"");
    assert_eq!(st, 200, "{body}");
    assert_eq!(json(&body)["newOrder"], json!("https://ca.example:8200/v1/pki/issuer/default/acme/new-order"));
    let nonce = |method: &str| {
        let mut s = std::net::TcpStream::connect(&a).unwrap();
        use std::io::{Read, Write};
        write!(s, "{method} /v1/pki/acme/new-nonce HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
        let mut t = String::new();
        let _ = s.read_to_string(&mut t);
        t
    };
    let head = nonce("HEAD");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(!head.to_ascii_lowercase().contains("replay-nonce"), "not allowed yet: {head}");
    ok(&a, "root", "POST", "sys/mounts/pki/tune", json!({"allowed_response_headers": ["Replay-Nonce", "Link"]}));
    let head = nonce("HEAD");
    assert!(head.to_ascii_lowercase().contains("replay-nonce: "), "{head}");
    let get = nonce("GET");
    assert!(get.starts_with("HTTP/1.1 204"), "{get}");
    assert!(get.to_ascii_lowercase().contains("replay-nonce: "), "{get}");
}

/// A challenge nobody answers (nothing on port 80) is retried as OpenBao retries it (after 5,
/// 10, … 30 seconds), then the challenge, its authorization and the order are invalid, with
/// the reason in the challenge.
#[test]
fn acme_unanswered_http01_challenge_is_retried_then_invalid() {
    if certbot().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ca = listener_cert(dir.path());
    let c = start_coffer(dir.path());
    setup_pki(&c.plain, &c.token, &c.https);
    let directory = format!("https://{}/v1/pki/acme/directory", c.https);
    let _port80 = lock_port80();
    let r = probe(dir.path(), &ca, &directory, &["http01-unanswered"]);
    assert_eq!(r["challenge"]["status"], json!(200), "{r}");
    assert_eq!(r["challenge"]["body"]["status"], json!("processing"), "{r}");
    assert_eq!(r["authz"]["status"], json!("invalid"), "{r}");
    let ch = r["authz"]["challenges"].as_array().unwrap().iter().find(|c| c["type"] == "http-01").unwrap().clone();
    assert_eq!(ch["status"], json!("invalid"), "{r}");
    assert_eq!(ch["error"]["type"], json!("urn:ietf:params:acme:error:incorrectResponse"), "{r}");
    assert!(ch["error"]["detail"].as_str().unwrap().contains(":80"), "{r}");
    assert_eq!(r["order"]["status"], json!("invalid"), "{r}");
    let secs = r["seconds"].as_u64().unwrap();
    assert!((95..=140).contains(&secs), "invalid after {secs} s, not after the retries: {r}");
}

/// dns-01 end to end: certbot's manual mode writes the TXT value through its auth hook into a
/// small DNS server (tests/acme/dns_server.py) that `config/acme` `dns_resolver` points at;
/// its account is bound to an EAB key the configuration requires; a wildcard and its base
/// name are certified, and `openssl verify` accepts the certificate.
#[test]
fn certbot_obtains_a_wildcard_certificate_over_dns01_with_an_external_account_binding() {
    let Some(certbot) = certbot() else { return };
    let dir = tempfile::tempdir().unwrap();
    let ca = listener_cert(dir.path());
    let c = start_coffer(dir.path());
    let root = setup_pki(&c.plain, &c.token, &c.https);
    certbot_dns01_with_eab(&certbot, dir.path(), &ca, &c.plain, &c.token, &c.https, &root);
}

/// certbot --manual dns-01 with an EAB key, for a wildcard and its base name, against the
/// server at `plain` (operator) / `https` (ACME).
fn certbot_dns01_with_eab(certbot: &str, dir: &Path, ca: &Path, plain: &str, token: &str, https: &str, root: &str) {
    let records = dir.join("records");
    std::fs::create_dir_all(&records).unwrap();
    let mut dns = start_dns(&records);
    let port = dns.1.clone();
    // New accounts need an external account binding: certbot gets it with --eab-kid/--eab-hmac-key.
    ok(
        plain,
        token,
        "POST",
        "pki/config/acme",
        json!({"dns_resolver": format!("127.0.0.1:{port}"), "eab_policy": "new-account-required"}),
    );
    let eab = ok(plain, token, "POST", "pki/acme/new-eab", json!({}));
    let (eab_kid, eab_key) = (eab["data"]["id"].as_str().unwrap(), eab["data"]["key"].as_str().unwrap());
    let hook = dir.join("hook.sh");
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\necho \"$CERTBOT_VALIDATION\" >> {}/_acme-challenge.\"$CERTBOT_DOMAIN\"\n",
            records.display()
        ),
    )
    .unwrap();
    sh(dir, "chmod +x hook.sh");
    let work = dir.join("certbot-dns");
    let mut cmd = Command::new(certbot);
    cmd.args([
        "certonly",
        "--manual",
        "--preferred-challenges",
        "dns",
        "--non-interactive",
        "--agree-tos",
        "--register-unsafely-without-email",
        "--manual-auth-hook",
    ])
    .arg(&hook)
    .args(["--server", &format!("https://{https}/v1/pki/acme/directory"), "-d", "*.acme.test", "-d", "acme.test"])
    .args(["--eab-kid", eab_kid, "--eab-hmac-key", eab_key])
    .arg("--config-dir")
    .arg(work.join("config"))
    .arg("--work-dir")
    .arg(work.join("work"))
    .arg("--logs-dir")
    .arg(work.join("logs"))
    .env("REQUESTS_CA_BUNDLE", ca);
    let (status, text) = run_bounded(&mut cmd, &dir.join("certbot-dns.out"), Duration::from_secs(180));
    let _ = dns.0.kill();
    let _ = dns.0.wait();
    assert!(status.is_some_and(|s| s.success()), "certbot dns-01 failed:\n{text}");
    let cert = work.join("config/live/acme.test/cert.pem");
    let verified = openssl_verify(dir, root, &cert);
    assert!(verified.contains(": OK"), "{verified}");
    let text = sh(dir, &format!("openssl x509 -noout -ext subjectAltName -in {}", cert.display()));
    assert!(text.contains("DNS:*.acme.test") && text.contains("DNS:acme.test"), "{text}");
    let (st, _) = api(plain, token, "LIST", "pki/eab", json!({}));
    assert_eq!(st, 404, "the EAB key was used");
}

/// The rest of an account's life, with a client that signs its own requests: contact update,
/// dns-01 validation through the test DNS server, finalize refused early and with a CSR
/// naming more than the order, the certificate downloaded, revoked with the certificate's own
/// key (a stranger's key refused, a second revocation `alreadyRevoked`, the engine agreeing),
/// key roll-over (the old key no longer finds the account, the new one does) and deactivation.
#[test]
fn acme_account_lifecycle_revocation_by_certificate_key_and_key_rollover() {
    if certbot().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ca = listener_cert(dir.path());
    let c = start_coffer(dir.path());
    let root = setup_pki(&c.plain, &c.token, &c.https);
    let records = dir.path().join("records");
    std::fs::create_dir_all(&records).unwrap();
    let mut dns = start_dns(&records);
    ok(&c.plain, &c.token, "POST", "pki/config/acme", json!({"dns_resolver": format!("127.0.0.1:{}", dns.1)}));
    let directory = format!("https://{}/v1/pki/acme/directory", c.https);
    let r = probe(dir.path(), &ca, &directory, &["lifecycle", records.to_str().unwrap(), "probe.acme.test"]);
    let _ = dns.0.kill();
    let _ = dns.0.wait();
    assert_eq!(r["account"]["body"]["contact"], json!(["mailto:ops@example.com"]), "{r}");
    assert_eq!(r["contact_update"]["body"]["contact"], json!(["mailto:pki@example.com"]), "{r}");
    assert_problem(&r["bad_contact"], 400, "unsupportedContact");
    assert_eq!(r["order"]["status"], json!(201), "{r}");
    assert_problem(&r["early_finalize"], 403, "orderNotReady");
    assert_eq!(r["authz"]["status"], json!("valid"), "{r}");
    assert_problem(&r["wrong_csr"], 400, "badCSR");
    assert_eq!(r["finalize"]["body"]["status"], json!("valid"), "{r}");
    assert_eq!(r["cert_status"], json!(200), "{r}");
    assert_eq!(r["cert_type"], json!("application/pem-certificate-chain"), "{r}");
    std::fs::write(dir.path().join("leaf.pem"), r["pem"].as_str().unwrap()).unwrap();
    let verified = openssl_verify(dir.path(), &root, &dir.path().join("leaf.pem"));
    assert!(verified.contains(": OK"), "{verified}");
    assert_problem(&r["revoke_by_stranger"], 403, "unauthorized");
    assert_eq!(r["revoke"]["status"], json!(200), "{r}");
    assert_problem(&r["revoke_again"], 400, "alreadyRevoked");
    let serial = serial_of(dir.path(), &dir.path().join("leaf.pem"));
    let cert = ok(&c.plain, &c.token, "GET", &format!("pki/cert/{serial}"), json!({}));
    assert!(cert["data"]["revocation_time"].as_i64().unwrap_or(0) > 0, "{cert}");
    assert_eq!(r["key_change"]["status"], json!(200), "{r}");
    assert_eq!(r["old_key_exists"], json!(false), "{r}");
    assert_eq!(r["new_key_exists"], json!(true), "{r}");
    assert_eq!(r["deactivate"]["body"]["status"], json!("deactivated"), "{r}");
    assert_problem(&r["after_deactivate"], 403, "unauthorized");
}

/// The test DNS server: the child and its UDP port; killed when dropped, so a failing test
/// leaves no server behind (an orphan would also keep whatever file descriptors the test
/// process had, such as a build lock).
struct Dns(std::process::Child, String);

impl Drop for Dns {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts tests/acme/dns_server.py over `records`.
fn start_dns(records: &Path) -> Dns {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/acme/dns_server.py");
    let mut dns = Command::new("python3")
        .arg(&script)
        .arg(records)
        .stdout(std::process::Stdio::piped())
        .stdin(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let port = {
        use std::io::BufRead;
        let mut line = String::new();
        std::io::BufReader::new(dns.stdout.take().unwrap()).read_line(&mut line).unwrap();
        line.trim().to_string()
    };
    Dns(dns, port)
}

/// tls-alpn-01 (RFC 8737): `openssl s_server` on 127.0.0.1:443 answers the acme-tls/1
/// protocol with a certificate made by `openssl req` carrying the critical acmeIdentifier
/// extension; the authorization becomes valid.
#[test]
fn acme_tls_alpn01_challenge_is_validated_against_openssl_s_server() {
    if certbot().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ca = listener_cert(dir.path());
    let c = start_coffer(dir.path());
    setup_pki(&c.plain, &c.token, &c.https);
    let directory = format!("https://{}/v1/pki/acme/directory", c.https);
    // Port 443 is shared like port 80.
    let lock = std::fs::OpenOptions::new().create(true).append(true).open("/var/tmp/port443.lock").unwrap();
    lock.lock().expect("flock /var/tmp/port443.lock");
    let r = probe(dir.path(), &ca, &directory, &["tls-alpn", "good"]);
    assert_eq!(r["offered"], json!(["dns-01", "http-01", "tls-alpn-01"]), "{r}");
    assert_eq!(r["challenge"]["status"], json!(200), "{r}");
    assert_eq!(r["authz"]["status"], json!("valid"), "{r}");
}
