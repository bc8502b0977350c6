//! The JWT/OIDC auth method end to end: keys made by openssl, tokens signed by PyJWT
//! (tests/auth/jwt_tool.py), a JWKS served by the test, logins through HTTP, the real `bao`
//! CLI, hvac and `coffer login`; the same cases against a real OpenBao dev server; and the
//! OIDC code flow with `bao login -method=oidc` and `coffer login -method=oidc` against a
//! third-party OIDC provider from PyPI (oidc-provider-mock), its browser step played by headless
//! Chromium (and, for hvac's calls, by an HTTP client).
mod common;
mod python;
use common::*;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn tool_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/auth/jwt_tool.py")
}

fn tool(args: &[&str]) -> String {
    let o = Command::new("python3").arg(tool_path()).args(args).output().expect("python3");
    assert!(o.status.success(), "jwt_tool {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn openssl(dir: &Path, args: &[&str]) {
    let o = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl");
    assert!(o.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&o.stderr));
}

/// Keys for every algorithm family, made by openssl.
fn make_keys(dir: &Path) {
    openssl(dir, &["genrsa", "-out", "rsa.pem", "2048"]);
    openssl(dir, &["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ec256.pem"]);
    openssl(dir, &["ecparam", "-name", "secp384r1", "-genkey", "-noout", "-out", "ec384.pem"]);
    openssl(dir, &["genpkey", "-algorithm", "ed25519", "-out", "ed.pem"]);
    openssl(dir, &["genrsa", "-out", "other.pem", "2048"]);
    for k in ["rsa", "ec256", "ed", "other"] {
        openssl(dir, &["pkey", "-in", &format!("{k}.pem"), "-pubout", "-out", &format!("{k}.pub")]);
    }
}

/// Serves `body` as JSON to every request, on a port of its own (the test's JWKS endpoint).
fn serve_json(body: String) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let body = body.clone();
            std::thread::spawn(move || {
                let mut s = s;
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut line = String::new();
                while r.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let _ = write!(
                    s,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    addr
}

fn call(addr: &str, method: &str, path: &str, body: &Value) -> (u16, Value) {
    let b = if body.is_null() { Vec::new() } else { serde_json::to_vec(body).unwrap() };
    let (st, text) = http(addr, method, &format!("/v1/{path}"), &[("X-Vault-Token", "root")], &b);
    (st, if text.trim().is_empty() { Value::Null } else { json(&text) })
}

fn ok(addr: &str, method: &str, path: &str, body: Value) -> Value {
    let (st, v) = call(addr, method, path, &body);
    assert!(st == 200 || st == 204, "{method} {path}: {st} {v}");
    v
}

fn login(addr: &str, mount: &str, role: &str, jwt: &str) -> (u16, Value) {
    let (st, text) = http(
        addr,
        "PUT",
        &format!("/v1/auth/{mount}/login"),
        &[],
        serde_json::to_vec(&json!({"role": role, "jwt": jwt})).unwrap().as_slice(),
    );
    (st, json(&text))
}

fn error_of(v: &Value) -> String {
    v["errors"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("; "))
        .unwrap_or_default()
}

const ISS: &str = "https://idp.test";

fn claims(extra: Value) -> String {
    let mut c = json!({
        "iss": ISS, "sub": "alice", "aud": ["coffer", "other"], "iat": "now", "exp": "now+300",
        "dept": "ops-eu", "groups": ["admins", "devs"], "email": "alice@example.test", "team": "blue",
    });
    for (k, v) in extra.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    c.to_string()
}

fn sign(dir: &Path, key: &str, alg: &str, extra: Value) -> String {
    tool(&["sign", dir.join(format!("{key}.pem")).to_str().unwrap(), alg, key, &claims(extra)])
}

fn role_body() -> Value {
    json!({
        "role_type": "jwt", "user_claim": "sub", "bound_audiences": "coffer",
        "bound_claims_type": "glob", "bound_claims": {"dept": ["eng", "ops-*"]},
        "claim_mappings": {"email": "mail", "team": "team"}, "groups_claim": "groups",
        "token_policies": "p1,p2", "token_ttl": "10m",
    })
}

#[test]
fn jwt_logins_verify_every_asymmetric_algorithm_from_a_jwks_and_create_aliases_and_groups() {
    if !python::ensure("jwt", "PyJWT") || !python::ensure("cryptography", "cryptography") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    make_keys(dir.path());
    let p = |k: &str| dir.path().join(format!("{k}.pem")).to_string_lossy().to_string();
    let jwks = tool(&["jwks", &p("rsa"), &p("ec256"), &p("ec384"), &p("ed")]);
    let jwks_addr = serve_json(jwks);
    let s = Server::start_dev("root");
    let a = s.addr.as_str();
    ok(a, "POST", "sys/auth/jwt", json!({"type": "jwt"}));
    ok(a, "PUT", "auth/jwt/config", json!({"jwks_url": format!("http://{jwks_addr}/keys"), "bound_issuer": ISS}));
    let cfg = ok(a, "GET", "auth/jwt/config", Value::Null);
    assert_eq!(cfg["data"]["jwks_url"], format!("http://{jwks_addr}/keys"));
    ok(a, "PUT", "auth/jwt/role/r1", role_body());
    let role = ok(a, "GET", "auth/jwt/role/r1", Value::Null);
    assert_eq!(role["data"]["bound_claims"], json!({"dept": ["eng", "ops-*"]}));
    assert_eq!(role["data"]["token_ttl"], 600);
    assert_eq!(role["data"]["verbose_oidc_logging"], false, "verbose logging is off by default");

    // An external group with an alias on this mount for the "admins" group claim.
    let accessor = ok(a, "GET", "sys/auth", Value::Null)["data"]["jwt/"]["accessor"].as_str().unwrap().to_string();
    let group = ok(a, "PUT", "identity/group", json!({"name": "admins-ext", "type": "external", "policies": "gp"}));
    let gid = group["data"]["id"].as_str().unwrap().to_string();
    ok(a, "PUT", "identity/group-alias", json!({"name": "admins", "mount_accessor": accessor, "canonical_id": gid}));

    for (key, alg) in [
        ("rsa", "RS256"),
        ("rsa", "RS384"),
        ("rsa", "RS512"),
        ("rsa", "PS256"),
        ("rsa", "PS384"),
        ("rsa", "PS512"),
        ("ec256", "ES256"),
        ("ec384", "ES384"),
        ("ed", "EdDSA"),
    ] {
        let (st, v) = login(a, "jwt", "r1", &sign(dir.path(), key, alg, json!({})));
        assert_eq!(st, 200, "{alg}: {v}");
        let auth = &v["auth"];
        assert_eq!(auth["metadata"], json!({"mail": "alice@example.test", "team": "blue", "role": "r1"}), "{alg}");
        assert_eq!(auth["lease_duration"], 600);
        let pol: Vec<&str> = auth["policies"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
        assert!(pol.contains(&"p1") && pol.contains(&"p2") && pol.contains(&"default"), "{pol:?}");
        assert!(auth["identity_policies"].as_array().is_some_and(|p| p.contains(&json!("gp"))), "group policy: {auth}");
    }
    // One entity alias, named by the user claim, with the mapped metadata.
    let aliases = ok(a, "LIST", "identity/entity-alias/id", Value::Null);
    let ids = aliases["data"]["keys"].as_array().unwrap();
    assert_eq!(ids.len(), 1, "{aliases}");
    let alias = ok(a, "GET", &format!("identity/entity-alias/id/{}", ids[0].as_str().unwrap()), Value::Null);
    assert_eq!(alias["data"]["name"], "alice");
    assert_eq!(alias["data"]["mount_type"], "jwt");
    assert_eq!(alias["data"]["metadata"]["mail"], "alice@example.test");
    let g = ok(a, "GET", &format!("identity/group/id/{gid}"), Value::Null);
    assert_eq!(g["data"]["member_entity_ids"].as_array().map(Vec::len), Some(1), "{g}");
    // verbose_oidc_logging: off by default (nothing logged), on logs the claims, not the token.
    let token = sign(dir.path(), "rsa", "RS256", json!({}));
    assert!(!s.log_text().contains("jwt login claims"), "claims logged without verbose_oidc_logging");
    ok(a, "PUT", "auth/jwt/role/r1", json!({"verbose_oidc_logging": true}));
    assert_eq!(login(a, "jwt", "r1", &token).0, 200);
    let log = s.log_text();
    assert!(log.contains("jwt login claims") && log.contains("alice@example.test"), "{log}");
    assert!(!log.contains(&token), "the token itself was logged");
    ok(a, "PUT", "auth/jwt/role/r1", json!({"verbose_oidc_logging": false}));
    // Leaving the group claim's "admins" takes the entity out of the external group.
    let (st, v) = login(a, "jwt", "r1", &sign(dir.path(), "rsa", "RS256", json!({"groups": ["devs"]})));
    assert_eq!(st, 200, "{v}");
    let g = ok(a, "GET", &format!("identity/group/id/{gid}"), Value::Null);
    assert!(g["data"]["member_entity_ids"].as_array().is_none_or(Vec::is_empty), "{g}");
}

/// Config and role writes answered as OpenBao answers them (400 with a message naming the
/// problem), and every refusal of a bad token a clear 400.
#[test]
fn jwt_bad_tokens_and_bad_settings_get_clear_4xx_answers() {
    if !python::ensure("jwt", "PyJWT") || !python::ensure("cryptography", "cryptography") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    make_keys(dir.path());
    let pubkey = std::fs::read_to_string(dir.path().join("rsa.pub")).unwrap();
    let ecpub = std::fs::read_to_string(dir.path().join("ec256.pub")).unwrap();
    let s = Server::start_dev("root");
    let a = s.addr.as_str();
    ok(a, "POST", "sys/auth/jwt", json!({"type": "jwt"}));
    for (body, want) in [
        (json!({}), "exactly one of"),
        (json!({"jwt_validation_pubkeys": [pubkey.clone()], "jwks_url": "http://127.0.0.1:1/k"}), "exactly one of"),
        (json!({"jwt_validation_pubkeys": ["not a key"]}), "error parsing public key"),
        (json!({"jwt_validation_pubkeys": [pubkey.clone()], "jwt_supported_algs": ["HS256"]}), "jwt_supported_algs"),
        (json!({"jwks_url": "http://127.0.0.1:1/keys"}), "error checking jwks URL"),
        (json!({"oidc_discovery_url": "http://127.0.0.1:1"}), "error checking oidc discovery URL"),
        (
            json!({"jwt_validation_pubkeys": [pubkey.clone()], "provider_config": {"provider": "azure"}}),
            "provider_config",
        ),
    ] {
        let (st, v) = call(a, "PUT", "auth/jwt/config", &body);
        assert_eq!(st, 400, "{body}: {v}");
        assert!(error_of(&v).contains(want), "{body}: {v}");
    }
    ok(a, "PUT", "auth/jwt/config", json!({"jwt_validation_pubkeys": [pubkey.clone(), ecpub], "bound_issuer": ISS}));
    for (body, want) in [
        (json!({"user_claim": "sub"}), "allowed_redirect_uris"),
        (json!({"role_type": "jwt", "user_claim": "sub"}), "at least one bound constraint"),
        (json!({"role_type": "jwt", "bound_audiences": "x"}), "user claim"),
        (json!({"role_type": "sso", "user_claim": "sub", "bound_audiences": "x"}), "role_type"),
        (
            json!({"role_type": "jwt", "user_claim": "sub", "bound_audiences": "x", "bound_claims_type": "regex"}),
            "bound_claims_type",
        ),
        (
            json!({"role_type": "jwt", "user_claim": "sub", "bound_audiences": "x", "callback_mode": "device"}),
            "callback_mode",
        ),
        (
            json!({"role_type": "jwt", "user_claim": "sub", "bound_audiences": "x", "bound_claims": {"a": {"b": 1}}}),
            "bound_claims",
        ),
    ] {
        let (st, v) = call(a, "PUT", "auth/jwt/role/bad", &body);
        assert_eq!(st, 400, "{body}: {v}");
        assert!(error_of(&v).contains(want), "{body}: {v}");
    }
    ok(a, "PUT", "auth/jwt/role/r1", role_body());
    ok(
        a,
        "PUT",
        "auth/jwt/role/strict",
        json!({"role_type": "jwt", "user_claim": "sub", "bound_subject": "alice",
        "expiration_leeway": -1, "clock_skew_leeway": -1, "not_before_leeway": -1}),
    );
    ok(
        a,
        "PUT",
        "auth/jwt/role/sso",
        json!({"user_claim": "sub", "allowed_redirect_uris": "http://localhost:8250/oidc/callback"}),
    );
    let good = sign(dir.path(), "rsa", "RS256", json!({}));
    assert_eq!(login(a, "jwt", "r1", &good).0, 200);
    let tampered = {
        let mut parts: Vec<String> = good.split('.').map(str::to_string).collect();
        let mut sig = parts[2].clone().into_bytes();
        sig[5] = if sig[5] == b'A' { b'B' } else { b'A' };
        parts[2] = String::from_utf8(sig).unwrap();
        parts.join(".")
    };
    let d = dir.path();
    let cases: Vec<(&str, String, &str, &str)> = vec![
        ("unsigned", tool(&["none", &claims(json!({}))]), "r1", "alg \"none\""),
        ("HS256 keyed with the public key", tool(&["hs256", &pubkey, &claims(json!({}))]), "r1", "shared secret"),
        ("tampered signature", tampered, "r1", "no known key"),
        ("unknown key", sign(d, "other", "RS256", json!({})), "r1", "no known key"),
        ("not a JWT", "abc.def".into(), "r1", "three dot-separated parts"),
        ("expired", sign(d, "rsa", "RS256", json!({"exp": "now-400", "iat": "now-900"})), "r1", "token is expired"),
        ("not yet valid", sign(d, "rsa", "RS256", json!({"nbf": "now+600"})), "r1", "not yet valid"),
        ("issued in the future", sign(d, "rsa", "RS256", json!({"iat": "now+600"})), "r1", "issued at"),
        ("no times", sign(d, "rsa", "RS256", json!({"iat": null, "exp": null})), "r1", "no issued at"),
        ("wrong audience", sign(d, "rsa", "RS256", json!({"aud": "nope"})), "r1", "invalid audience"),
        ("wrong issuer", sign(d, "rsa", "RS256", json!({"iss": "https://evil.test"})), "r1", "invalid issuer"),
        (
            "bound claim",
            sign(d, "rsa", "RS256", json!({"dept": "sales"})),
            "r1",
            "does not match any associated bound claim",
        ),
        ("missing bound claim", sign(d, "rsa", "RS256", json!({"dept": null})), "r1", "\"dept\""),
        ("no user claim", sign(d, "rsa", "RS256", json!({"sub": null})), "r1", "claim \"sub\" not found"),
        ("no groups claim", sign(d, "rsa", "RS256", json!({"groups": null})), "r1", "\"groups\" claim not found"),
        (
            "mapped claim not a string",
            sign(d, "rsa", "RS256", json!({"team": 7})),
            "r1",
            "error converting claim 'team' to string",
        ),
        ("user claim not a string", sign(d, "rsa", "RS256", json!({"sub": 5})), "r1", "\"sub\""),
        ("audience without bound audiences", sign(d, "rsa", "RS256", json!({})), "strict", "no audiences bound"),
        ("subject", sign(d, "rsa", "RS256", json!({"sub": "bob", "aud": null})), "strict", "invalid subject"),
        ("no leeway", sign(d, "rsa", "RS256", json!({"aud": null, "exp": "now-2"})), "strict", "token is expired"),
        ("oidc role", good.clone(), "sso", "oidc role_type is not allowed"),
        ("unknown role", good.clone(), "nope", "could not be found"),
        ("no token", String::new(), "r1", "missing token"),
    ];
    for (what, token, role, want) in cases {
        let (st, v) = login(a, "jwt", role, &token);
        assert_eq!(st, 400, "{what}: {v}");
        assert!(error_of(&v).contains(want), "{what}: want {want:?} in {v}");
    }
    // The default leeway: 60 s of clock skew, as in OpenBao; a set expiration_leeway adds to it.
    assert_eq!(login(a, "jwt", "r1", &sign(d, "rsa", "RS256", json!({"exp": "now-40"}))).0, 200);
    assert_eq!(login(a, "jwt", "r1", &sign(d, "rsa", "RS256", json!({"exp": "now-100"}))).0, 400);
    let mut lenient = role_body();
    lenient["expiration_leeway"] = json!(300);
    ok(a, "PUT", "auth/jwt/role/lenient", lenient);
    assert_eq!(login(a, "jwt", "lenient", &sign(d, "rsa", "RS256", json!({"exp": "now-100"}))).0, 200);
    // ES256 with the configured EC public key.
    assert_eq!(login(a, "jwt", "r1", &sign(d, "ec256", "ES256", json!({}))).0, 200);
    // Token fields: a batch-token role gets batch tokens.
    let mut batch = role_body();
    batch["token_type"] = json!("batch");
    ok(a, "PUT", "auth/jwt/role/batch", batch);
    let (st, v) = login(a, "jwt", "batch", &good);
    assert_eq!((st, v["auth"]["token_type"].as_str()), (200, Some("batch")), "{v}");
    // JSON pointers: a nested bound claim and a nested user claim.
    ok(
        a,
        "PUT",
        "auth/jwt/role/nested",
        json!({"role_type": "jwt", "user_claim": "/profile/login",
        "user_claim_json_pointer": true, "bound_claims": {"/org/team": "blue"}}),
    );
    let nested = json!({"aud": null, "org": {"team": "blue"}, "profile": {"login": "al"}});
    let (st, v) = login(a, "jwt", "nested", &sign(d, "rsa", "RS256", nested));
    assert_eq!(st, 200, "{v}");
    let eid = v["auth"]["entity_id"].as_str().unwrap();
    let ent = ok(a, "GET", &format!("identity/entity/id/{eid}"), Value::Null);
    assert!(ent["data"]["aliases"].as_array().unwrap().iter().any(|x| x["name"] == "al"), "{ent}");
    let (st, _) = login(
        a,
        "jwt",
        "nested",
        &sign(d, "rsa", "RS256", json!({"aud": null, "org": {"team": "red"}, "profile": {"login": "al"}})),
    );
    assert_eq!(st, 400);
    // The token can be renewed like any login's.
    let token = v["auth"]["client_token"].as_str().unwrap().to_string();
    let (st, body) = http(a, "PUT", "/v1/auth/token/renew-self", &[("X-Vault-Token", token.as_str())], b"{}");
    assert_eq!(st, 200, "{body}");
    // default_role and jwt_supported_algs from the config.
    ok(
        a,
        "PUT",
        "auth/jwt/config",
        json!({"jwt_validation_pubkeys": [pubkey.clone()], "bound_issuer": ISS,
        "default_role": "r1", "jwt_supported_algs": ["RS256"]}),
    );
    assert_eq!(login(a, "jwt", "", &good).0, 200, "default_role");
    let (st, v) = login(a, "jwt", "r1", &sign(d, "rsa", "PS256", json!({})));
    assert_eq!(st, 400);
    assert!(error_of(&v).contains("jwt_supported_algs"), "{v}");
    // A CIDR-bound role refuses other addresses.
    let mut cidr = role_body();
    cidr["token_bound_cidrs"] = json!("10.0.0.0/8");
    ok(a, "PUT", "auth/jwt/role/cidr", cidr);
    assert_eq!(login(a, "jwt", "cidr", &good).0, 403);
}

/// The same settings and tokens against OpenBao's jwt method and Coffer's: the same answers
/// (status, and the gist of each message).
#[test]
fn jwt_logins_are_answered_as_openbao_answers_them() {
    let Some(bao) = bao_path() else { return };
    if !python::ensure("jwt", "PyJWT") || !python::ensure("cryptography", "cryptography") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    make_keys(dir.path());
    let d = dir.path();
    let pubkey = std::fs::read_to_string(d.join("rsa.pub")).unwrap();
    let ecpub = std::fs::read_to_string(d.join("ec256.pub")).unwrap();
    let edpub = std::fs::read_to_string(d.join("ed.pub")).unwrap();
    let coffer = Server::start_dev("root");
    let real = RealBao::start(&bao);
    let tokens: Vec<(&str, String)> = vec![
        ("rs256", sign(d, "rsa", "RS256", json!({}))),
        ("ps256", sign(d, "rsa", "PS256", json!({}))),
        ("es256", sign(d, "ec256", "ES256", json!({}))),
        ("eddsa", sign(d, "ed", "EdDSA", json!({}))),
        ("expired-within-skew", sign(d, "rsa", "RS256", json!({"exp": "now-40"}))),
        ("expired-beyond-skew", sign(d, "rsa", "RS256", json!({"exp": "now-100"}))),
        ("iat-within-skew", sign(d, "rsa", "RS256", json!({"iat": "now+30"}))),
        ("expired", sign(d, "rsa", "RS256", json!({"exp": "now-400", "iat": "now-900"}))),
        ("nbf-future", sign(d, "rsa", "RS256", json!({"nbf": "now+600"}))),
        ("wrong-aud", sign(d, "rsa", "RS256", json!({"aud": "nope"}))),
        ("wrong-iss", sign(d, "rsa", "RS256", json!({"iss": "x"}))),
        ("bound-claim", sign(d, "rsa", "RS256", json!({"dept": "sales"}))),
        ("no-sub", sign(d, "rsa", "RS256", json!({"sub": null}))),
        ("no-groups", sign(d, "rsa", "RS256", json!({"groups": null}))),
        ("team-number", sign(d, "rsa", "RS256", json!({"team": 7}))),
        ("sub-number", sign(d, "rsa", "RS256", json!({"sub": 5}))),
        ("aud-list-one-match", sign(d, "rsa", "RS256", json!({"aud": ["x", "coffer"]}))),
        ("bound-claim-list", sign(d, "rsa", "RS256", json!({"dept": ["sales", "ops-x"]}))),
        ("unknown-key", sign(d, "other", "RS256", json!({}))),
        ("none", tool(&["none", &claims(json!({}))])),
    ];
    let mut seen = Vec::new();
    for addr in [&coffer.addr, &real.addr] {
        ok(addr, "POST", "sys/auth/jwt", json!({"type": "jwt"}));
        ok(
            addr,
            "PUT",
            "auth/jwt/config",
            json!({"jwt_validation_pubkeys": [pubkey, ecpub, edpub], "bound_issuer": ISS}),
        );
        ok(addr, "PUT", "auth/jwt/role/r1", role_body());
        let mut answers = Vec::new();
        for (name, t) in &tokens {
            let (st, v) = login(addr, "jwt", "r1", t);
            answers.push((name.to_string(), st, if st == 200 { v["auth"]["metadata"].clone() } else { Value::Null }));
        }
        let (st, _) = login(addr, "jwt", "nope", &tokens[0].1);
        answers.push(("unknown-role".into(), st, Value::Null));
        // What a read of the role and of the config shows: the same fields.
        for path in ["auth/jwt/role/r1", "auth/jwt/config"] {
            let keys: Vec<String> =
                ok(addr, "GET", path, Value::Null)["data"].as_object().unwrap().keys().cloned().collect();
            answers.push((format!("{path} fields {keys:?}"), 200, Value::Null));
        }
        seen.push(answers);
    }
    assert_eq!(seen[0], seen[1], "Coffer (left) and OpenBao (right) differ");
}

/// `bao write auth/jwt/login`, hvac's `client.auth.jwt` calls and `coffer login -method=jwt`.
#[test]
fn jwt_logins_through_bao_hvac_and_coffer_login() {
    let Some(bao) = bao_path() else { return };
    if !python::ensure("jwt", "PyJWT")
        || !python::ensure("cryptography", "cryptography")
        || !python::ensure("hvac", "hvac")
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    make_keys(dir.path());
    let pubkey = std::fs::read_to_string(dir.path().join("rsa.pub")).unwrap();
    let s = Server::start_dev("root");
    let a = s.addr.as_str();
    let token = sign(dir.path(), "rsa", "RS256", json!({}));

    // hvac configures, writes and reads the role, and logs in.
    let script = r#"
import hvac, json, os, sys
c = hvac.Client(url=os.environ["VAULT_ADDR"], token="root")
c.sys.enable_auth_method("jwt", path="jwt")
c.auth.jwt.configure(jwt_validation_pubkeys=[os.environ["PUBKEY"]], bound_issuer="https://idp.test")
assert c.auth.jwt.read_config()["data"]["bound_issuer"] == "https://idp.test"
c.auth.jwt.create_role("r1", role_type="jwt", user_claim="sub", bound_audiences=["coffer"],
    allowed_redirect_uris=[], groups_claim="groups", bound_claims_type="glob",
    bound_claims={"dept": ["ops-*"]}, token_policies=["p1"], path="jwt")
role = c.auth.jwt.read_role("r1", path="jwt")["data"]
assert role["bound_audiences"] == ["coffer"], role
assert "r1" in c.auth.jwt.list_roles(path="jwt")["data"]["keys"]
login = hvac.Client(url=os.environ["VAULT_ADDR"])
r = login.auth.jwt.jwt_login(role="r1", jwt=os.environ["JWT"], path="jwt")
assert "p1" in r["auth"]["policies"], r
assert login.is_authenticated()
c.auth.jwt.delete_role("r1", path="jwt")
print("hvac ok")
"#;
    let o = Command::new("python3")
        .args(["-c", script])
        .env("VAULT_ADDR", format!("http://{a}"))
        .env("PUBKEY", &pubkey)
        .env("JWT", &token)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&o.stdout).contains("hvac ok"), "{}", out(&o));

    ok(a, "PUT", "auth/jwt/role/r1", role_body());
    let o = cli(&bao, a, None, &["write", "-format=json", "auth/jwt/login", "role=r1", &format!("jwt={token}")]);
    assert!(o.status.success(), "{}", out(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["auth"]["metadata"]["role"], "r1");

    let o = cli(
        coffer_bin(),
        a,
        None,
        &["login", "-method=jwt", "-no-store", "-format=json", "role=r1", &format!("jwt={token}")],
    );
    assert!(o.status.success(), "{}", out(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["auth"]["client_token"].as_str().is_some_and(|t| !t.is_empty()), "{v}");
    let o = cli(coffer_bin(), a, None, &["login", "-method=jwt", "-no-store", "role=r1", "jwt=abc"]);
    assert!(!o.status.success() && out(&o).contains("three dot-separated parts"), "{}", out(&o));
}

/// A third-party OIDC provider (oidc-provider-mock, from PyPI) running here (or any server the
/// test started); killed on drop.
struct Provider {
    child: std::process::Child,
    url: String,
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_provider() -> Option<Provider> {
    if !python::ensure("oidc_provider_mock", "oidc-provider-mock") {
        return None;
    }
    let port = free_port();
    let user = json!({"sub": "alice", "email": "alice@example.test", "groups": ["admins", "devs"], "dept": "ops-eu"});
    let child = Command::new("python3")
        .args([
            "-W",
            "ignore",
            "-m",
            "oidc_provider_mock",
            "--port",
            &port.to_string(),
            "--user-claims",
            &user.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start oidc-provider-mock");
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let addr = format!("127.0.0.1:{port}");
    while http(&addr, "GET", "/.well-known/openid-configuration", &[], b"").0 != 200 {
        assert!(Instant::now() < deadline, "oidc-provider-mock did not start");
        std::thread::sleep(Duration::from_millis(200));
    }
    Some(Provider { child, url })
}

/// The browser's part: the user picks "alice" on the provider's authorization page (a form
/// POST to the same URL), and the browser follows the redirect to the CLI's listener.
fn browser_step(auth_url: &str) -> String {
    let rest = auth_url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let (st, page) = http(host, "GET", &format!("/{path}"), &[], b"");
    assert_eq!(st, 200, "authorization page: {page}");
    let raw = {
        let mut s = std::net::TcpStream::connect(host).unwrap();
        let body = "sub=alice";
        write!(
            s,
            "POST /{path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    };
    let location = raw
        .lines()
        .find_map(|l| l.strip_prefix("Location: ").or_else(|| l.strip_prefix("location: ")))
        .unwrap_or_else(|| panic!("no redirect from the provider: {raw}"))
        .trim()
        .to_string();
    location
}

fn get_url(url: &str) -> (u16, String) {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let host = host.replace("localhost", "127.0.0.1");
    http(&host, "GET", &format!("/{path}"), &[], b"")
}

fn setup_oidc(addr: &str, provider: &Provider, cb_port: u16) {
    ok(addr, "POST", "sys/auth/oidc", json!({"type": "oidc"}));
    ok(
        addr,
        "PUT",
        "auth/oidc/config",
        json!({"oidc_discovery_url": provider.url, "oidc_client_id": "coffer-client",
               "oidc_client_secret": "s3cret", "default_role": "people"}),
    );
    ok(
        addr,
        "PUT",
        "auth/oidc/role/people",
        json!({"user_claim": "sub", "groups_claim": "groups", "claim_mappings": {"email": "mail"},
               "allowed_redirect_uris": [format!("http://localhost:{cb_port}/oidc/callback")],
               "bound_claims": {"dept": "ops-eu"}, "oidc_scopes": "email", "token_policies": "web"}),
    );
}

/// The browser: headless Chromium (tests/auth/oidc_browser.mjs, on tests/ui's
/// playwright-core) picks the user on the provider's page and follows the redirect to the
/// CLI's listener. Returns whether it got there and what it saw.
fn chromium_step(auth_url: &str) -> (bool, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/auth/oidc_browser.mjs");
    let o = Command::new("node").arg(script).args([auth_url, "alice"]).output().expect("node");
    let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    (o.status.success() && text.contains("final URL: http://localhost:"), text)
}

/// Whether headless Chromium and playwright-core are there (tests/ui's `npm ci` is run when
/// its modules are missing). Without them the test fails when COFFER_REQUIRE_BAO is set (CI)
/// and is skipped otherwise.
fn chromium_ready() -> bool {
    // Two browser tests may ask at once: one `npm ci` at a time in tests/ui.
    static INSTALL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = INSTALL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let ui = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/ui");
    if !ui.join("node_modules/playwright-core").exists() {
        let _ =
            Command::new("npm").args(["ci", "--no-audit", "--no-fund", "--loglevel=error"]).current_dir(&ui).status();
    }
    let ready = Path::new("/usr/bin/chromium").exists() && ui.join("node_modules/playwright-core").exists();
    if !ready {
        assert!(
            !std::env::var("COFFER_REQUIRE_BAO").is_ok_and(|v| !v.is_empty() && v != "0"),
            "headless Chromium and tests/ui's playwright-core are required"
        );
        eprintln!("SKIPPED: /usr/bin/chromium or tests/ui/node_modules/playwright-core missing");
    }
    ready
}

/// Runs `<cli> login -method=oidc` and plays the browser (Chromium, or the HTTP client of
/// [`browser_step`]); returns the CLI's output.
fn cli_oidc_login(bin: &str, addr: &str, cb_port: u16, chromium: bool) -> (bool, String) {
    let home = tempfile::tempdir().unwrap();
    let mut child = Command::new(bin)
        .args(["login", "-method=oidc", "-path=oidc", "-format=json", "-no-store"])
        .args([format!("port={cb_port}"), "skip_browser=true".into(), "role=people".into()])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .env("BAO_ADDR", format!("http://{addr}"))
        .env("VAULT_ADDR", format!("http://{addr}"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    let url = loop {
        let mut line = String::new();
        if err.read_line(&mut line).unwrap_or(0) == 0 {
            let _ = child.wait();
            panic!("{bin} login printed no URL: {seen}");
        }
        seen.push_str(&line);
        if let Some(u) = line.trim().strip_prefix("http") {
            break format!("http{u}");
        }
    };
    let (browser_ok, page) = if chromium {
        chromium_step(&url)
    } else {
        let callback = browser_step(&url);
        assert!(callback.starts_with(&format!("http://localhost:{cb_port}/oidc/callback?")), "{callback}");
        let (st, page) = get_url(&callback);
        (st == 200, page)
    };
    let o = child.wait_with_output().unwrap();
    let mut rest = String::new();
    let _ = err.read_to_string(&mut rest);
    let text = format!("{}{seen}{rest}", String::from_utf8_lossy(&o.stdout));
    (o.status.success() && browser_ok, format!("{text}\n[browser: {page}]"))
}

#[test]
fn oidc_login_with_the_bao_and_coffer_clis_through_a_real_provider() {
    let Some(bao) = bao_path() else { return };
    let Some(provider) = start_provider() else { return };
    if !chromium_ready() {
        return;
    }
    let s = Server::start_dev("root");
    // The same provider, role and CLIs against a real OpenBao: the flow the test plays is the
    // one OpenBao expects too.
    let real = RealBao::start(&bao);
    let cb_port = free_port();
    for (server, addr) in [("Coffer", &s.addr), ("OpenBao", &real.addr)] {
        setup_oidc(addr, &provider, cb_port);
        for bin in [bao.as_str(), coffer_bin()] {
            let (okay, text) = cli_oidc_login(bin, addr, cb_port, true);
            assert!(okay, "{bin} against {server}: {text}");
            let start = text.find('{').unwrap();
            let v: Value =
                serde_json::Deserializer::from_str(&text[start..]).into_iter::<Value>().next().unwrap().unwrap();
            assert_eq!(v["auth"]["metadata"]["mail"], "alice@example.test", "{bin} against {server}: {v}");
            assert_eq!(v["auth"]["metadata"]["role"], "people", "{bin} against {server}: {v}");
            assert!(v["auth"]["policies"].as_array().unwrap().contains(&json!("web")), "{v}");
        }
        // An unknown (or already used) state is refused.
        let (st, v) = call(addr, "GET", "auth/oidc/oidc/callback?state=nope&code=x", &Value::Null);
        assert_eq!(st, 400, "{server}: {v}");
        assert!(error_of(&v).contains("Expired or missing OAuth state"), "{server}: {v}");
    }
}

#[test]
fn web_ui_logs_in_through_the_oidc_provider_and_back() {
    let Some(provider) = start_provider() else { return };
    if !chromium_ready() {
        return;
    }
    let s = Server::start_dev("root");
    let a = s.addr.as_str();
    setup_oidc(a, &provider, free_port());
    // The address OpenBao's UI uses for the provider's redirect, allowed on the role, and the
    // mount listed on the login page.
    let redirect = format!("http://{a}/ui/vault/auth/oidc/oidc/callback");
    ok(a, "POST", "auth/oidc/role/people", json!({ "allowed_redirect_uris": [redirect] }));
    ok(a, "POST", "sys/auth/oidc/tune", json!({"listing_visibility": "unauth"}));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/auth/oidc_ui_login.mjs");
    let o =
        Command::new("node").arg(script).args([&format!("http://{a}/ui/"), "oidc", "alice"]).output().expect("node");
    let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "the UI's OIDC login: {text}");
    assert!(text.contains(&format!("provider page: {}", provider.url)), "the browser went to the provider: {text}");
    let token = text.lines().find_map(|l| l.strip_prefix("token: ")).unwrap_or_else(|| panic!("{text}")).trim();
    // The session's token is alice's, from the role.
    let (st, text) = http(a, "GET", "/v1/auth/token/lookup-self", &[("X-Vault-Token", token)], b"");
    assert_eq!(st, 200, "{text}");
    let v = json(&text);
    assert!(v["data"]["policies"].as_array().unwrap().contains(&json!("web")), "{v}");
    assert_eq!(v["data"]["meta"]["mail"], "alice@example.test", "{v}");
    // A callback address carrying markup is refused before it reaches the page.
    let (st, _) = http(a, "GET", "/ui/vault/auth/oidc/oidc/callback?state=%22%3E<b>", &[], b"");
    assert_eq!(st, 400);
}

/// hvac's OIDC calls (auth_url, then the callback with the code), and what OpenBao requires
/// of the redirect URI and the role.
#[test]
fn oidc_auth_url_and_callback_through_hvac_check_state_nonce_and_redirects() {
    if !python::ensure("hvac", "hvac") {
        return;
    }
    let Some(provider) = start_provider() else { return };
    let s = Server::start_dev("root");
    let a = s.addr.as_str();
    let cb_port = free_port();
    setup_oidc(a, &provider, cb_port);
    let redirect = format!("http://localhost:{cb_port}/oidc/callback");
    // Unlisted redirect URIs are refused; a loopback one on another port is taken (RFC 8252).
    let (st, v) =
        call(a, "PUT", "auth/oidc/oidc/auth_url", &json!({"role": "people", "redirect_uri": "http://evil.test/cb"}));
    assert_eq!(st, 400, "{v}");
    assert!(error_of(&v).contains("redirect_uri"), "{v}");
    let (st, _) =
        call(a, "PUT", "auth/oidc/oidc/auth_url", &json!({"redirect_uri": "http://127.0.0.1:1/oidc/callback"}));
    assert_eq!(st, 200);

    let script = r#"
import hvac, os, sys, urllib.parse
c = hvac.Client(url=os.environ["VAULT_ADDR"])
r = c.auth.oidc.oidc_authorization_url_request(role="people", redirect_uri=os.environ["REDIRECT"], path="oidc")
url = r["data"]["auth_url"]
q = urllib.parse.parse_qs(urllib.parse.urlparse(url).query)
assert q["code_challenge_method"] == ["S256"] and q["nonce"] and q["state"], q
assert q["scope"] == ["openid email"], q
print(url)
sys.stdout.flush()
callback = sys.stdin.readline().strip()
cq = urllib.parse.parse_qs(urllib.parse.urlparse(callback).query)
r = c.auth.oidc.oidc_callback(code=cq["code"][0], state=cq["state"][0], path="oidc", nonce="")
print("token", r["auth"]["client_token"][:2], r["auth"]["metadata"]["role"])
try:
    c.auth.oidc.oidc_callback(code=cq["code"][0], state=cq["state"][0], path="oidc", nonce="")
    print("replay accepted")
except hvac.exceptions.InvalidRequest as e:
    print("replay refused:", e)
"#;
    let mut child = Command::new("python3")
        .args(["-c", script])
        .env("VAULT_ADDR", format!("http://{a}"))
        .env("REDIRECT", &redirect)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut url = String::new();
    stdout.read_line(&mut url).unwrap();
    assert!(url.starts_with("http"), "hvac printed {url:?}");
    let callback = browser_step(url.trim());
    writeln!(child.stdin.as_mut().unwrap(), "{callback}").unwrap();
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(rest.contains("token") && rest.contains("people"), "{rest}{}", String::from_utf8_lossy(&o.stderr));
    assert!(rest.contains("replay refused") && rest.contains("Expired or missing OAuth state"), "{rest}");
}

/// A JWKS served over HTTPS by a server whose certificate a CA made by openssl signed: without
/// `jwks_ca_pem` the configuration is refused (the certificate is not trusted), with it logins
/// verify against the fetched keys.
#[test]
fn jwks_over_https_needs_and_uses_jwks_ca_pem() {
    if !python::ensure("jwt", "PyJWT") || !python::ensure("cryptography", "cryptography") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    make_keys(d);
    openssl(
        d,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-subj",
            "/CN=idp-ca",
            "-days",
            "2",
        ],
    );
    openssl(
        d,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "srv.key",
            "-out",
            "srv.csr",
            "-subj",
            "/CN=idp",
        ],
    );
    std::fs::write(d.join("srv.ext"), "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n").unwrap();
    openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            "srv.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "srv.pem",
            "-days",
            "2",
            "-extfile",
            "srv.ext",
        ],
    );
    std::fs::write(d.join("keys"), tool(&["jwks", d.join("rsa.pem").to_str().unwrap()])).unwrap();
    let server = r#"
import http.server, ssl, sys
h = http.server.SimpleHTTPRequestHandler
h.log_message = lambda *a: None
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), h)
c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
c.load_cert_chain("srv.pem", "srv.key")
s.socket = c.wrap_socket(s.socket, server_side=True)
print(s.server_address[1], flush=True)
s.serve_forever()
"#;
    let mut child = Command::new("python3").args(["-c", server]).current_dir(d).stdout(Stdio::piped()).spawn().unwrap();
    let mut port = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut port).unwrap();
    let url = format!("https://127.0.0.1:{}/keys", port.trim());
    let _idp = Provider { child, url: url.clone() }; // killed on drop
    let s = Server::start_dev("root");
    let a = s.addr.as_str();
    ok(a, "POST", "sys/auth/jwt", json!({"type": "jwt"}));
    let (st, v) = call(a, "PUT", "auth/jwt/config", &json!({"jwks_url": url, "bound_issuer": ISS}));
    assert_eq!(st, 400, "{v}");
    assert!(error_of(&v).contains("error checking jwks URL"), "{v}");
    let ca = std::fs::read_to_string(d.join("ca.pem")).unwrap();
    ok(a, "PUT", "auth/jwt/config", json!({"jwks_url": url, "jwks_ca_pem": ca, "bound_issuer": ISS}));
    ok(a, "PUT", "auth/jwt/role/r1", role_body());
    let (st, v) = login(a, "jwt", "r1", &sign(d, "rsa", "RS256", json!({})));
    assert_eq!(st, 200, "{v}");
}

/// `coffer login -method=oidc` and `bao login -method=oidc` against Coffer's own OIDC provider
/// (identity/oidc/provider/*) on the same server: the user signs in at the provider with a
/// userpass token (the browser's part: the authorization request sent to the provider's API
/// endpoint with that token, then the redirect to the CLI's listener), and the OIDC login's
/// alias is the user's entity id, the ID token's `sub`.
#[test]
fn oidc_login_against_coffers_own_identity_oidc_provider() {
    let Some(bao) = bao_path() else { return };
    let s = Server::start_dev("root");
    let a = s.addr.as_str();
    let cb_port = free_port();
    let redirect = format!("http://localhost:{cb_port}/oidc/callback");
    // The user, with an entity.
    ok(a, "POST", "sys/auth/userpass", json!({"type": "userpass"}));
    ok(a, "PUT", "auth/userpass/users/alice", json!({"password": "pw-alice-123"}));
    let (st, text) = http(a, "PUT", "/v1/auth/userpass/login/alice", &[], br#"{"password":"pw-alice-123"}"#);
    assert_eq!(st, 200, "{text}");
    let user = json(&text);
    let user_token = user["auth"]["client_token"].as_str().unwrap().to_string();
    let entity = user["auth"]["entity_id"].as_str().unwrap().to_string();
    // The provider side: a client allowed to sign with the default key, a provider.
    ok(a, "PUT", "identity/oidc/key/default", json!({"allowed_client_ids": "*"}));
    ok(a, "PUT", "identity/oidc/client/coffer-cli", json!({"redirect_uris": [redirect], "assignments": "allow_all"}));
    let client = ok(a, "GET", "identity/oidc/client/coffer-cli", Value::Null);
    let (client_id, secret) = (
        client["data"]["client_id"].as_str().unwrap().to_string(),
        client["data"]["client_secret"].as_str().unwrap().to_string(),
    );
    ok(a, "PUT", "identity/oidc/provider/corp", json!({"allowed_client_ids": "*", "issuer": format!("http://{a}")}));
    // The relying side: an oidc mount trusting that provider.
    ok(a, "POST", "sys/auth/oidc", json!({"type": "oidc"}));
    ok(
        a,
        "PUT",
        "auth/oidc/config",
        json!({
        "oidc_discovery_url": format!("http://{a}/v1/identity/oidc/provider/corp"),
        "oidc_client_id": client_id, "oidc_client_secret": secret, "default_role": "people"}),
    );
    ok(
        a,
        "PUT",
        "auth/oidc/role/people",
        json!({"user_claim": "sub", "allowed_redirect_uris": [redirect],
        "token_policies": "web"}),
    );

    for bin in [coffer_bin(), bao.as_str()] {
        let home = tempfile::tempdir().unwrap();
        let mut child = Command::new(bin)
            .args([
                "login",
                "-method=oidc",
                "-format=json",
                "-no-store",
                &format!("port={cb_port}"),
                "skip_browser=true",
            ])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", home.path())
            .env("BAO_ADDR", format!("http://{a}"))
            .env("VAULT_ADDR", format!("http://{a}"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let url = loop {
            let mut line = String::new();
            assert!(err.read_line(&mut line).unwrap_or(0) > 0, "{bin} printed no URL");
            if let Some(u) = line.trim().strip_prefix("http") {
                break format!("http{u}");
            }
        };
        // The authorization request, sent to the provider's API endpoint with the user's token.
        let query = url.split_once('?').unwrap().1;
        let (st, text) = http(
            a,
            "GET",
            &format!("/v1/identity/oidc/provider/corp/authorize?{query}"),
            &[("X-Vault-Token", user_token.as_str())],
            b"",
        );
        assert_eq!(st, 200, "authorize: {text}");
        let v = json(&text);
        let back = format!("{redirect}?code={}&state={}", v["code"].as_str().unwrap(), v["state"].as_str().unwrap());
        let (st, page) = get_url(&back);
        let o = child.wait_with_output().unwrap();
        let out_text = String::from_utf8_lossy(&o.stdout).to_string();
        assert!(o.status.success() && st == 200, "{bin}: {out_text} [browser: {st} {page}]");
        let login: Value = serde_json::from_str(&out_text).unwrap_or_else(|e| panic!("{bin}: {e}: {out_text}"));
        assert!(login["auth"]["policies"].as_array().unwrap().contains(&json!("web")), "{login}");
        let eid = login["auth"]["entity_id"].as_str().unwrap();
        let ent = ok(a, "GET", &format!("identity/entity/id/{eid}"), Value::Null);
        let aliases = ent["data"]["aliases"].as_array().unwrap();
        assert!(aliases.iter().any(|x| x["name"] == entity.as_str() && x["mount_type"] == "oidc"), "{ent}");
    }
}
