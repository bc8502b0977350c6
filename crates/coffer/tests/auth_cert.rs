//! The cert auth method end to end: a PKI made with `openssl` (root CA, intermediate, leaf
//! client certificates, a revoked one, an expired one, a server-only one, a stranger), a Coffer
//! with an HTTPS listener that requests client certificates, and logins through the real
//! `bao login -method=cert -client-cert=… -client-key=…`, `coffer login -method=cert` and hvac;
//! the same logins against a real OpenBao give the same answers.
mod common;
mod python;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pki/make_cert_auth_pki.sh");
        let o = Command::new("bash").arg(&script).current_dir(dir.path()).output().expect("bash");
        assert!(o.status.success(), "making the PKI failed: {}", out(&o));
        Pki { dir }
    }
    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }
    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap()
    }
}

/// A Coffer with a plain listener (for the operator) and an HTTPS one (for the logins).
struct Tls {
    _server: Server,
    plain: String,
    https: String,
    root: String,
}

fn start_coffer(pki: &Pki) -> Tls {
    let cfg = pki.dir.path().join("coffer.hcl");
    std::fs::write(
        &cfg,
        format!(
            "storage \"inmem\" {{}}\nlistener \"tcp\" {{\n  address = \"127.0.0.1:0\"\n  tls_disable = true\n}}\n\
             listener \"tcp\" {{\n  address = \"127.0.0.1:0\"\n  tls_cert_file = \"{}\"\n  tls_key_file = \"{}\"\n}}\n",
            pki.path("server.pem"),
            pki.path("server.key")
        ),
    )
    .unwrap();
    let server = Server::start_with_config(&cfg);
    let (plain, https) = (server.addrs[0].clone(), server.addrs[1].clone());
    let (_, root) = init_unseal(&plain);
    Tls { _server: server, plain, https, root }
}

/// A real OpenBao dev server with an extra HTTPS listener on `port`.
fn start_bao(bao: &str, pki: &Pki, port: u16) -> RealBao {
    let cfg = pki.dir.path().join("bao.hcl");
    std::fs::write(
        &cfg,
        format!(
            "listener \"tcp\" {{\n  address = \"127.0.0.1:{port}\"\n  tls_cert_file = \"{}\"\n  tls_key_file = \"{}\"\n}}\n",
            pki.path("server.pem"),
            pki.path("server.key")
        ),
    )
    .unwrap();
    RealBao::start_with(bao, &[&format!("-config={}", cfg.display())])
}

/// Runs a CLI (`bao` or `coffer`) against the HTTPS listener at `https`, trusting the test CA.
fn cli_tls(bin: &str, pki: &Pki, https: &str, token: Option<&str>, args: &[&str]) -> Output {
    let mut c = Command::new(bin);
    c.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", pki.dir.path())
        .env("BAO_ADDR", format!("https://{https}"))
        .env("VAULT_ADDR", format!("https://{https}"))
        .env("BAO_CACERT", pki.path("server.pem"))
        .env("VAULT_CACERT", pki.path("server.pem"));
    if let Some(t) = token {
        c.env("BAO_TOKEN", t);
    }
    c.output().expect("run CLI")
}

fn api(addr: &str, token: &str, method: &str, path: &str, body: Value) -> (u16, Value) {
    let body = if body.is_null() { vec![] } else { body.to_string().into_bytes() };
    let (code, text) = http(addr, method, &format!("/v1/{path}"), &[("X-Vault-Token", token)], &body);
    (code, if text.trim().is_empty() { Value::Null } else { json(&text) })
}

fn ok(addr: &str, token: &str, method: &str, path: &str, body: Value) -> Value {
    let (code, v) = api(addr, token, method, path, body);
    assert!((200..300).contains(&code), "{method} {path}: {code} {v}");
    v
}

/// `bao login -method=cert` with `leaf`'s certificate file and key (`-format=json`).
fn bao_login(bao: &str, pki: &Pki, https: &str, cert_file: &str, key: &str, extra: &[&str]) -> (bool, Value, String) {
    let mut args = vec![
        "login".to_string(),
        "-method=cert".to_string(),
        "-no-store".to_string(),
        "-format=json".to_string(),
        format!("-client-cert={}", pki.path(cert_file)),
        format!("-client-key={}", pki.path(key)),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = cli_tls(bao, pki, https, None, &a);
    let text = out(&o);
    let v = if o.status.success() { serde_json::from_slice(&o.stdout).unwrap_or(Value::Null) } else { Value::Null };
    (o.status.success(), v, text)
}

/// Trusts the intermediate CA as `payments`: OU payments only, with metadata extension 1.2.3.4.5.
fn configure(addr: &str, token: &str, pki: &Pki) {
    configure_as(addr, token, pki, "cert");
}

/// [`configure`] with the method mounted from `mount_type` (a catalogued plugin's name).
fn configure_as(addr: &str, token: &str, pki: &Pki, mount_type: &str) {
    ok(addr, token, "POST", "sys/auth/cert", serde_json::json!({ "type": mount_type }));
    ok(
        addr,
        token,
        "POST",
        "sys/policy/pay",
        serde_json::json!({"policy": "path \"secret/*\" { capabilities = [\"read\"] }"}),
    );
    ok(
        addr,
        token,
        "POST",
        "auth/cert/certs/payments",
        serde_json::json!({
            "certificate": pki.read("inter.pem"),
            "allowed_organizational_units": "payments",
            "display_name": "web",
            "token_policies": "pay",
            "token_ttl": "1h",
        }),
    );
}

#[test]
fn bao_cli_cert_logins_admit_only_valid_unrevoked_certificates_that_meet_the_constraints() {
    let Some(bao) = bao_path() else { return };
    let pki = Pki::new();
    let c = start_coffer(&pki);
    configure(&c.plain, &c.root, &pki);

    // A leaf of the trusted intermediate, sent with or without its chain.
    for file in ["alice-chain.pem", "alice.pem"] {
        let (success, v, text) = bao_login(&bao, &pki, &c.https, file, "alice.key", &[]);
        assert!(success, "{file}: {text}");
        let auth = &v["auth"];
        assert_eq!(auth["policies"], serde_json::json!(["default", "pay"]), "{v}");
        assert_eq!(auth["lease_duration"], 3600, "token_ttl is honoured: {v}");
        let m = &auth["metadata"];
        assert_eq!((m["cert_name"].as_str(), m["common_name"].as_str()), (Some("payments"), Some("alice")), "{v}");
        assert!(m["serial_number"].as_str().is_some_and(|s| s.parse::<u64>().is_ok()), "{v}");
        assert!(m["subject_key_id"].as_str().is_some_and(|s| s.len() == 59 && s.contains(':')), "{v}");
        // The entity alias is the certificate's common name.
        let token = auth["client_token"].as_str().unwrap();
        let look = ok(&c.plain, token, "GET", "auth/token/lookup-self", Value::Null);
        assert_eq!(look["data"]["display_name"], "cert-web", "{look}");
        let entity = look["data"]["entity_id"].as_str().unwrap().to_string();
        let e = ok(&c.plain, &c.root, "GET", &format!("identity/entity/id/{entity}"), Value::Null);
        assert_eq!(e["data"]["aliases"][0]["name"], "alice", "{e}");
        assert_eq!(e["data"]["aliases"][0]["mount_type"], "cert", "{e}");
    }

    // Another OU: verified, but no trusted certificate's constraints admit it.
    let (success, _, text) = bao_login(&bao, &pki, &c.https, "carol.pem", "carol.key", &[]);
    assert!(!success && text.contains("Code: 400") && text.contains("no chain matching all constraints"), "{text}");
    // Expired, server-auth only, self-signed stranger: one answer, a 400.
    for (cert, key) in [("old.pem", "old.key"), ("srv.pem", "srv.key"), ("stranger.pem", "stranger.key")] {
        let (success, _, text) = bao_login(&bao, &pki, &c.https, cert, key, &[]);
        assert!(!success && text.contains("Code: 400"), "{cert}: {text}");
        assert!(text.contains("invalid certificate or no client certificate supplied"), "{cert}: {text}");
    }
    // No certificate at all.
    let o = cli_tls(&bao, &pki, &c.https, None, &["login", "-method=cert", "-no-store"]);
    assert!(!o.status.success() && out(&o).contains("no client certificate found"), "{}", out(&o));
    // Over plain HTTP there is no certificate either.
    let (code, v) = api(&c.plain, "", "POST", "auth/cert/login", serde_json::json!({}));
    assert_eq!(code, 400, "{v}");

    // bob logs in until the intermediate's CRL revokes him.
    let (success, _, text) = bao_login(&bao, &pki, &c.https, "bob.pem", "bob.key", &[]);
    assert!(success, "{text}");
    ok(&c.plain, &c.root, "POST", "auth/cert/crls/inter", serde_json::json!({"crl": pki.read("inter.crl.pem")}));
    let crl = ok(&c.plain, &c.root, "GET", "auth/cert/crls/inter", Value::Null);
    assert_eq!(crl["data"]["serials"].as_object().map(|m| m.len()), Some(1), "{crl}");
    let (success, _, text) = bao_login(&bao, &pki, &c.https, "bob.pem", "bob.key", &[]);
    assert!(!success && text.contains("Code: 400"), "a revoked certificate logged in: {text}");
    let (success, _, text) = bao_login(&bao, &pki, &c.https, "alice.pem", "alice.key", &[]);
    assert!(success, "the CRL revoked only bob: {text}");
    ok(&c.plain, &c.root, "DELETE", "auth/cert/crls/inter", Value::Null);
    let (success, _, text) = bao_login(&bao, &pki, &c.https, "bob.pem", "bob.key", &[]);
    assert!(success, "deleting the CRL lifts the revocation: {text}");

    // Trusting the root instead: the chain must then be complete (the client sends the
    // intermediate), unless another trusted entry supplies it.
    ok(&c.plain, &c.root, "DELETE", "auth/cert/certs/payments", Value::Null);
    ok(&c.plain, &c.root, "POST", "auth/cert/certs/root", serde_json::json!({"certificate": pki.read("root.pem")}));
    let (success, v, text) = bao_login(&bao, &pki, &c.https, "alice-chain.pem", "alice.key", &[]);
    assert!(success && v["auth"]["metadata"]["cert_name"] == "root", "{text}");
    let (success, _, text) = bao_login(&bao, &pki, &c.https, "alice.pem", "alice.key", &[]);
    assert!(!success && text.contains("invalid certificate"), "a broken chain logged in: {text}");

    // A non-CA certificate trusted directly admits exactly that certificate; `name` restricts
    // the login to one trusted certificate.
    ok(
        &c.plain,
        &c.root,
        "POST",
        "auth/cert/certs/carol-only",
        serde_json::json!({"certificate": pki.read("carol.pem")}),
    );
    let (success, v, text) = bao_login(&bao, &pki, &c.https, "carol.pem", "carol.key", &["name=carol-only"]);
    assert!(success && v["auth"]["metadata"]["cert_name"] == "carol-only", "{text}");
    let (success, _, text) = bao_login(&bao, &pki, &c.https, "alice-chain.pem", "alice.key", &["name=carol-only"]);
    assert!(!success && text.contains("Code: 400"), "{text}");
    let keys = ok(&c.plain, &c.root, "LIST", "auth/cert/certs", Value::Null);
    assert_eq!(keys["data"]["keys"], serde_json::json!(["carol-only", "root"]), "{keys}");
}

#[test]
fn cert_renewal_needs_the_certificate_the_token_logged_in_with() {
    let Some(bao) = bao_path() else { return };
    let pki = Pki::new();
    let c = start_coffer(&pki);
    configure(&c.plain, &c.root, &pki);
    let (success, v, text) = bao_login(&bao, &pki, &c.https, "alice.pem", "alice.key", &[]);
    assert!(success, "{text}");
    let token = v["auth"]["client_token"].as_str().unwrap().to_string();
    let renew = |cert: Option<(&str, &str)>| {
        let mut args = vec!["token".to_string(), "renew".to_string()];
        if let Some((c, k)) = cert {
            args.push(format!("-client-cert={}", pki.path(c)));
            args.push(format!("-client-key={}", pki.path(k)));
        }
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        cli_tls(&bao, &pki, &c.https, Some(&token), &a)
    };
    let o = renew(Some(("alice.pem", "alice.key")));
    assert!(o.status.success(), "{}", out(&o));
    let o = renew(Some(("bob.pem", "bob.key")));
    assert!(!o.status.success() && out(&o).contains("Code: 400"), "another certificate renewed: {}", out(&o));
    assert!(out(&o).contains("client identity during renewal not matching"), "{}", out(&o));
    let o = renew(None);
    assert!(!o.status.success() && out(&o).contains("no client certificate found"), "{}", out(&o));
    // disable_binding: the renewing client need not present the certificate…
    ok(&c.plain, &c.root, "POST", "auth/cert/config", serde_json::json!({"disable_binding": true}));
    let cfg = ok(&c.plain, &c.root, "GET", "auth/cert/config", Value::Null);
    assert_eq!(cfg["data"]["disable_binding"], true, "{cfg}");
    let o = renew(None);
    assert!(o.status.success(), "{}", out(&o));
    // …but a trusted certificate whose policies changed no longer renews its tokens.
    ok(&c.plain, &c.root, "POST", "auth/cert/certs/payments", serde_json::json!({"token_policies": "other"}));
    let o = renew(None);
    assert!(!o.status.success() && out(&o).contains("policies have changed"), "{}", out(&o));
}

#[test]
fn cert_constraints_metadata_extensions_and_token_fields_are_honoured() {
    let Some(bao) = bao_path() else { return };
    let pki = Pki::new();
    let c = start_coffer(&pki);
    ok(&c.plain, &c.root, "POST", "sys/auth/cert", serde_json::json!({"type": "cert"}));
    let inter = pki.read("inter.pem");
    let role = |name: &str, extra: Value| {
        let mut body = serde_json::json!({"certificate": inter});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        ok(&c.plain, &c.root, "POST", &format!("auth/cert/certs/{name}"), body);
    };
    let login = |name: &str| bao_login(&bao, &pki, &c.https, "alice.pem", "alice.key", &[&format!("name={name}")]);
    let admitted = |name: &str| login(name).0;
    role("dns", serde_json::json!({"allowed_dns_sans": "*.example.com"}));
    role("dns-no", serde_json::json!({"allowed_dns_sans": "*.example.org"}));
    role("email", serde_json::json!({"allowed_email_sans": "alice@*"}));
    role("uri", serde_json::json!({"allowed_uri_sans": "spiffe://example/*"}));
    role("uri-no", serde_json::json!({"allowed_uri_sans": "spiffe://other/*"}));
    role("cn", serde_json::json!({"allowed_common_names": "ali*"}));
    role("cn-no", serde_json::json!({"allowed_common_names": "bob"}));
    role("ext", serde_json::json!({"required_extensions": "1.2.3.4.5:team-*"}));
    role("ext-no", serde_json::json!({"required_extensions": ["1.2.3.4.5:team-bob"]}));
    role("ext-missing", serde_json::json!({"required_extensions": "1.2.3.4.6:*"}));
    for (name, want) in [
        ("dns", true),
        ("dns-no", false),
        ("email", true),
        ("uri", true),
        ("uri-no", false),
        ("cn", true),
        ("cn-no", false),
        ("ext", true),
        ("ext-no", false),
        ("ext-missing", false),
    ] {
        assert_eq!(admitted(name), want, "{name}: {}", login(name).2);
    }

    // Metadata extensions go into the token's metadata, and into the alias's with
    // enable_identity_alias_metadata.
    role("meta", serde_json::json!({"allowed_metadata_extensions": "1.2.3.4.5", "token_no_default_policy": true}));
    ok(&c.plain, &c.root, "POST", "auth/cert/config", serde_json::json!({"enable_identity_alias_metadata": true}));
    let (success, v, text) = login("meta");
    assert!(success, "{text}");
    assert_eq!(v["auth"]["metadata"]["1-2-3-4-5"], "team-alice", "{v}");
    assert_eq!(v["auth"]["policies"], serde_json::json!([]), "token_no_default_policy left no policy: {v}");
    let entity = v["auth"]["entity_id"].as_str().unwrap();
    let e = ok(&c.plain, &c.root, "GET", &format!("identity/entity/id/{entity}"), Value::Null);
    assert_eq!(e["data"]["aliases"][0]["metadata"]["1-2-3-4-5"], "team-alice", "{e}");

    // token_bound_cidrs elsewhere: refused; batch tokens: issued as batch.
    role("cidr", serde_json::json!({"token_bound_cidrs": "10.0.0.0/8"}));
    let (success, _, text) = login("cidr");
    assert!(!success && text.contains("Code: 403"), "{text}");
    role("batch", serde_json::json!({"token_type": "batch"}));
    let (success, v, text) = login("batch");
    assert!(success && v["auth"]["renewable"] == false, "{text}");
    assert!(v["auth"]["client_token"].as_str().is_some_and(|t| t.starts_with("b.")), "{v}");
}

#[test]
fn cert_bad_input_gets_clear_400s() {
    let pki = Pki::new();
    let c = start_coffer(&pki);
    ok(&c.plain, &c.root, "POST", "sys/auth/cert", serde_json::json!({"type": "cert"}));
    let inter = pki.read("inter.pem");
    let bad = |path: &str, body: Value, want: &str| {
        let (code, v) = api(&c.plain, &c.root, "POST", path, body.clone());
        assert_eq!(code, 400, "{path} {body}: {v}");
        assert!(v.to_string().contains(want), "{path} {body}: {v}");
    };
    bad("auth/cert/certs/x", serde_json::json!({}), "must provide certificate");
    bad("auth/cert/certs/x", serde_json::json!({"certificate": "not pem"}), "failed to parse certificate");
    let mangled = inter.replacen("MII", "MIX", 1);
    bad("auth/cert/certs/x", serde_json::json!({"certificate": mangled}), "failed to parse certificate");
    bad(
        "auth/cert/certs/x",
        serde_json::json!({"certificate": inter, "ocsp_servers_override": "ldap://ocsp"}),
        "invalid ocsp_servers_override entry",
    );
    bad(
        "auth/cert/certs/x",
        serde_json::json!({"certificate": inter, "ocsp_ca_certificates": "not pem"}),
        "ocsp_ca_certificates",
    );
    bad("auth/cert/certs/x", serde_json::json!({"certificate": inter, "ocsp_max_retries": -1}), "ocsp_max_retries");
    bad("auth/cert/certs/x", serde_json::json!({"certificate": inter, "required_extensions": "1.2.3"}), "oid");
    bad("auth/cert/certs/x", serde_json::json!({"certificate": inter, "token_ttl": "soon"}), "token_ttl");
    bad("auth/cert/config", serde_json::json!({"ocsp_cache_size": -1}), "ocsp_cache_size must be between");
    bad("auth/cert/crls/x", serde_json::json!({"crl": "garbage"}), "failed to parse crl");
    bad("auth/cert/crls/x", serde_json::json!({"url": "http://crl.example/x.crl"}), "url is not supported");
    let (code, _) = api(&c.plain, &c.root, "GET", "auth/cert/certs/x", Value::Null);
    assert_eq!(code, 404, "nothing was stored");
}

#[test]
fn coffer_cli_logs_in_with_a_client_certificate() {
    let pki = Pki::new();
    let c = start_coffer(&pki);
    configure(&c.plain, &c.root, &pki);
    let cert = format!("-client-cert={}", pki.path("alice-chain.pem"));
    let key = format!("-client-key={}", pki.path("alice.key"));
    let o = cli_tls(coffer_bin(), &pki, &c.https, None, &["login", "-method=cert", &cert, &key, "-token-only"]);
    assert!(o.status.success(), "{}", out(&o));
    let token = String::from_utf8_lossy(&o.stdout).trim().to_string();
    let look = ok(&c.plain, &token, "GET", "auth/token/lookup-self", Value::Null);
    assert_eq!(look["data"]["meta"]["common_name"], "alice", "{look}");
    let o = cli_tls(coffer_bin(), &pki, &c.https, None, &["login", "-method=cert", "-no-store"]);
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    assert!(out(&o).contains("no client certificate found"), "{}", out(&o));
    let o = cli_tls(coffer_bin(), &pki, &c.https, None, &["login", "-method=cert", &cert, "-no-store"]);
    assert!(!o.status.success() && out(&o).contains("must be set together"), "{}", out(&o));
}

#[test]
fn hvac_cert_flows_pass_on_coffer_and_on_openbao() {
    let Some(bao) = bao_path() else { return };
    if !python::ensure("hvac", "hvac") {
        return;
    }
    let pki = Pki::new();
    let c = start_coffer(&pki);
    let port = free_port();
    let real = start_bao(&bao, &pki, port);
    let real_https = format!("127.0.0.1:{port}");
    for (name, plain, https, token) in [
        ("Coffer", c.plain.as_str(), c.https.as_str(), c.root.as_str()),
        ("OpenBao", real.addr.as_str(), real_https.as_str(), "root"),
    ] {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/clients/hvac_cert_flows.py");
        let o = Command::new("python3")
            .arg(&script)
            .env("VAULT_ADDR", format!("https://{https}"))
            .env("VAULT_TOKEN", token)
            .env("COFFER_PLAIN_ADDR", format!("http://{plain}"))
            .env("PKI_DIR", pki.dir.path())
            .output()
            .unwrap();
        assert!(o.status.success() && out(&o).contains("0 failed"), "hvac cert flows on {name}:\n{}", out(&o));
    }
}

#[test]
fn cert_logins_answer_as_openbao_does() {
    let Some(bao) = bao_path() else { return };
    let pki = Pki::new();
    let c = start_coffer(&pki);
    let port = free_port();
    let real = start_bao(&bao, &pki, port);
    let real_https = format!("127.0.0.1:{port}");
    configure(&c.plain, &c.root, &pki);
    configure(&real.addr, "root", &pki);
    let mut answers = vec![];
    for https in [c.https.as_str(), real_https.as_str()] {
        let mut seen = vec![];
        for (cert, key) in
            [("alice-chain.pem", "alice.key"), ("carol.pem", "carol.key"), ("stranger.pem", "stranger.key")]
        {
            let (success, v, text) = bao_login(&bao, &pki, https, cert, key, &[]);
            let mut meta = v["auth"]["metadata"].clone();
            if let Some(m) = meta.as_object_mut() {
                m.remove("serial_number");
            }
            let code = text.split("Code: ").nth(1).map(|s| s[..3].to_string());
            seen.push(format!("{cert}: {success} {code:?} {meta} {:?}", v["auth"]["policies"]));
        }
        answers.push(seen);
    }
    assert_eq!(answers[0], answers[1], "Coffer (left) and OpenBao (right) differ");
}

#[test]
fn cert_method_as_an_external_plugin_sees_client_certificates_and_rules_on_renewals() {
    let Some(bao) = bao_path() else { return };
    let built = Path::new(coffer_bin()).with_file_name("coffer-plugin-cert");
    assert!(built.exists(), "build the workspace first ({} is missing)", built.display());
    let pki = Pki::new();
    let plugins = pki.dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(&built, plugins.join("coffer-plugin-cert")).unwrap();
    let sha = sha256_hex(&plugins.join("coffer-plugin-cert"));

    // Coffer: the same two listeners as `start_coffer`, and the plugin directory.
    let cfg = pki.dir.path().join("coffer-plugins.hcl");
    std::fs::write(
        &cfg,
        format!(
            "storage \"inmem\" {{}}\nplugin_directory = \"{}\"\n\
             listener \"tcp\" {{\n  address = \"127.0.0.1:0\"\n  tls_disable = true\n}}\n\
             listener \"tcp\" {{\n  address = \"127.0.0.1:0\"\n  tls_cert_file = \"{}\"\n  tls_key_file = \"{}\"\n}}\n",
            plugins.display(),
            pki.path("server.pem"),
            pki.path("server.key")
        ),
    )
    .unwrap();
    let server = Server::start_with_config(&cfg);
    let (plain, https) = (server.addrs[0].clone(), server.addrs[1].clone());
    let (_, root) = init_unseal(&plain);
    // OpenBao: its HTTPS listener from a config file, the plugin directory from the dev flag.
    let port = free_port();
    let bao_cfg = pki.dir.path().join("bao-plugins.hcl");
    std::fs::write(
        &bao_cfg,
        format!(
            "listener \"tcp\" {{\n  address = \"127.0.0.1:{port}\"\n  tls_cert_file = \"{}\"\n  tls_key_file = \"{}\"\n}}\n",
            pki.path("server.pem"),
            pki.path("server.key")
        ),
    )
    .unwrap();
    let real = RealBao::start_with(
        &bao,
        &[&format!("-config={}", bao_cfg.display()), &format!("-dev-plugin-dir={}", plugins.display())],
    );
    let real_https = format!("127.0.0.1:{port}");

    for (name, plain, https, token) in [
        ("Coffer", plain.as_str(), https.as_str(), root.as_str()),
        ("OpenBao", real.addr.as_str(), real_https.as_str(), "root"),
    ] {
        ok(
            plain,
            token,
            "POST",
            "sys/plugins/catalog/auth/cert-ext",
            serde_json::json!({"sha256": sha, "command": "coffer-plugin-cert"}),
        );
        configure_as(plain, token, &pki, "cert-ext");
        // The login reads the certificate the client presented to the server, forwarded to
        // the plugin process in the request's connection state.
        let (success, v, text) = bao_login(&bao, &pki, https, "alice.pem", "alice.key", &[]);
        assert!(success, "{name}: {text}");
        assert!(v["auth"]["policies"].as_array().unwrap().contains(&Value::from("pay")), "{name}: {v}");
        let (success, _, text) = bao_login(&bao, &pki, https, "stranger.pem", "stranger.key", &[]);
        assert!(!success, "{name}: an untrusted certificate logged in: {text}");
        // Renewals go to the plugin, which wants the certificate the token logged in with.
        let token = v["auth"]["client_token"].as_str().unwrap().to_string();
        let renew = |cert: Option<(&str, &str)>| {
            let mut args = vec!["token".to_string(), "renew".to_string()];
            if let Some((c, k)) = cert {
                args.push(format!("-client-cert={}", pki.path(c)));
                args.push(format!("-client-key={}", pki.path(k)));
            }
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            cli_tls(&bao, &pki, https, Some(&token), &a)
        };
        let o = renew(Some(("alice.pem", "alice.key")));
        assert!(o.status.success(), "{name}: {}", out(&o));
        let o = renew(Some(("bob.pem", "bob.key")));
        assert!(
            !o.status.success() && out(&o).contains("client identity during renewal not matching"),
            "{name}: another certificate renewed: {}",
            out(&o)
        );
        let o = renew(None);
        assert!(
            !o.status.success() && out(&o).contains("no client certificate found"),
            "{name}: renewed without a certificate: {}",
            out(&o)
        );
    }
}

/// `openssl ocsp` answering for the test intermediate from its `openssl ca` database (bob is
/// revoked there), signed by `signer` (`inter` for the issuer itself); killed on drop.
struct Responder {
    child: std::process::Child,
    url: String,
}

impl Drop for Responder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_responder(pki: &Pki, signer: &str) -> Responder {
    let port = free_port();
    let log = pki.dir.path().join(format!("ocsp-{port}.log"));
    let child = Command::new("openssl")
        .args(["ocsp", "-index", "index.txt", "-port", &port.to_string(), "-CA", "inter.pem", "-ndays", "1"])
        .args(["-rsigner", &format!("{signer}.pem"), "-rkey", &format!("{signer}.key")])
        .current_dir(pki.dir.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("openssl ocsp");
    // Ready when it says so: a probe connection that closes without a request would leave
    // the single-threaded responder stuck on it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !std::fs::read_to_string(&log).unwrap_or_default().contains("waiting for OCSP client connections") {
        assert!(std::time::Instant::now() < deadline, "openssl ocsp did not start");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    Responder { child, url: format!("http://127.0.0.1:{port}") }
}

#[test]
fn cert_ocsp_checks_refuse_revoked_and_unknown_certificates_as_openbao_does() {
    let Some(bao) = bao_path() else { return };
    let pki = Pki::new();
    // dave: issued by the intermediate outside its database, so the responder answers unknown.
    let d = pki.dir.path();
    let sh = |args: &[&str]| {
        let o = Command::new("openssl").args(args).current_dir(d).output().unwrap();
        assert!(o.status.success(), "openssl {args:?}: {}", out(&o));
    };
    sh(&["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
        .iter()
        .copied()
        .chain(["-subj", "/CN=dave/OU=payments", "-keyout", "dave.key", "-out", "dave.csr"])
        .collect::<Vec<_>>());
    sh(&["x509", "-req", "-in", "dave.csr", "-CA", "inter.pem", "-CAkey", "inter.key", "-set_serial", "0x2222"]
        .iter()
        .copied()
        .chain(["-days", "2", "-extfile", "alice.ext", "-out", "dave.pem"])
        .collect::<Vec<_>>());
    let good = start_responder(&pki, "inter");
    // A responder signing with a key the intermediate never authorised (the server's).
    let rogue = start_responder(&pki, "server");
    let dead = format!("http://127.0.0.1:{}", free_port());

    let c = start_coffer(&pki);
    let port = free_port();
    let real = start_bao(&bao, &pki, port);
    let real_https = format!("127.0.0.1:{port}");
    let mut answers = vec![];
    for (addr, token, https) in
        [(c.plain.as_str(), c.root.as_str(), c.https.as_str()), (&real.addr, "root", &real_https)]
    {
        configure(addr, token, &pki);
        let set = |extra: Value| {
            let mut body = serde_json::json!({"ocsp_enabled": true});
            for (k, v) in extra.as_object().unwrap() {
                body[k] = v.clone();
            }
            ok(addr, token, "POST", "auth/cert/certs/payments", body);
        };
        let mut seen = vec![];
        let mut login = |label: &str, cert: &str, key: &str| {
            let (success, _, text) = bao_login(&bao, &pki, https, cert, key, &[]);
            let first = text.lines().find(|l| l.starts_with("* ")).unwrap_or("").to_string();
            let first = first.split("; additionally").next().unwrap_or("").to_string();
            seen.push(format!("{label}: {success} {first}"));
        };
        set(serde_json::json!({"ocsp_servers_override": [good.url]}));
        let e = ok(addr, token, "GET", "auth/cert/certs/payments", Value::Null);
        assert_eq!(e["data"]["ocsp_enabled"], true, "{e}");
        assert_eq!(e["data"]["ocsp_servers_override"], serde_json::json!([good.url]), "{e}");
        login("good", "alice.pem", "alice.key");
        login("revoked", "bob.pem", "bob.key");
        login("unknown", "dave.pem", "dave.key");
        set(serde_json::json!({"ocsp_servers_override": [rogue.url], "ocsp_max_retries": 0}));
        login("unauthorised signer", "alice.pem", "alice.key");
        set(serde_json::json!({"ocsp_servers_override": [dead], "ocsp_max_retries": 1}));
        login("responder down", "alice.pem", "alice.key");
        answers.push(seen);
    }
    // An answer signed by a certificate never authorised for OCSP signing: OpenBao 2.7.2
    // takes it, Coffer does not (RFC 6960 §4.2.2.2; a deliberate difference, see
    // docs/auth-cert.md). Every other answer is the same on both.
    let unauthorised =
        |a: &Vec<String>| a.iter().filter(|l| !l.starts_with("unauthorised")).cloned().collect::<Vec<_>>();
    assert_eq!(unauthorised(&answers[0]), unauthorised(&answers[1]), "Coffer (left) and OpenBao (right) differ");
    assert!(answers[0][0].starts_with("good: true"), "{:?}", answers[0]);
    for a in &answers[0][1..] {
        assert!(a.contains(": false * no chain matching all constraints"), "{a}");
    }

    // ocsp_fail_open: no answer (down, unknown) lets the login through; revoked never does.
    // (OpenBao 2.7.2 refuses these too despite the flag: a deliberate difference, see
    // docs/auth-cert.md.)
    ok(
        &c.plain,
        &c.root,
        "POST",
        "auth/cert/certs/payments",
        serde_json::json!({"ocsp_fail_open": true, "ocsp_servers_override": [dead], "ocsp_max_retries": 0}),
    );
    let (success, _, text) = bao_login(&bao, &pki, &c.https, "alice.pem", "alice.key", &[]);
    assert!(success, "fail open with the responder down: {text}");
    ok(&c.plain, &c.root, "POST", "auth/cert/certs/payments", serde_json::json!({"ocsp_servers_override": [good.url]}));
    let (success, _, text) = bao_login(&bao, &pki, &c.https, "dave.pem", "dave.key", &[]);
    assert!(success, "fail open with an unknown status: {text}");
    let (success, _, text) = bao_login(&bao, &pki, &c.https, "bob.pem", "bob.key", &[]);
    assert!(!success, "fail open let a revoked certificate in: {text}");
    // Bad settings are refused by name.
    let (code, v) = api(
        &c.plain,
        &c.root,
        "POST",
        "auth/cert/certs/payments",
        serde_json::json!({"ocsp_servers_override": ["ftp://x"]}),
    );
    assert_eq!(code, 400, "{v}");
    assert!(v["errors"][0].as_str().unwrap().contains("ocsp_servers_override"), "{v}");
}
