//! The Kubernetes auth method end to end. No cluster can run here: the one stand-in for the
//! API server is tests/auth/k8s_tokenreview.py, which answers TokenReviews (and namespace
//! reads) over HTTPS as the Kubernetes API documents them, checking real service-account JWTs
//! signed with an RSA key made by openssl. Logins go through HTTP, hvac's
//! `client.auth.kubernetes`, `bao write` and `coffer login -method=kubernetes`.
mod common;
mod python;
use common::*;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

fn auth_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/auth")
}

fn openssl(dir: &Path, args: &[&str]) {
    let o = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl");
    assert!(o.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&o.stderr));
}

fn sign(dir: &Path, key: &str, claims: &Value) -> String {
    let o = Command::new("python3")
        .arg(auth_dir().join("jwt_tool.py"))
        .args(["sign", dir.join(key).to_str().unwrap(), "RS256", "", &claims.to_string()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// A legacy (secret-based) service-account token's claims.
fn legacy(ns: &str, name: &str, uid: &str) -> Value {
    json!({
        "iss": "kubernetes/serviceaccount",
        "kubernetes.io/serviceaccount/namespace": ns,
        "kubernetes.io/serviceaccount/secret.name": format!("{name}-token-abcde"),
        "kubernetes.io/serviceaccount/service-account.name": name,
        "kubernetes.io/serviceaccount/service-account.uid": uid,
        "sub": format!("system:serviceaccount:{ns}:{name}"),
    })
}

/// A projected (bound) token's claims, with an audience and expiry.
fn projected(ns: &str, name: &str, uid: &str, aud: &str) -> Value {
    json!({
        "aud": [aud], "exp": "now+600", "iat": "now", "nbf": "now",
        "iss": "https://kubernetes.default.svc.cluster.local",
        "kubernetes.io": {"namespace": ns, "serviceaccount": {"name": name, "uid": uid}},
        "sub": format!("system:serviceaccount:{ns}:{name}"),
    })
}

struct ApiServer {
    child: Child,
    port: u16,
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Cluster {
    dir: tempfile::TempDir,
    api: ApiServer,
    ca: String,
    reviewer: String,
}

fn cluster() -> Option<Cluster> {
    if !python::ensure("jwt", "PyJWT") || !python::ensure("cryptography", "cryptography") {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The cluster's CA, the API server's serving certificate it signs, and the cluster's
    // service-account signing key.
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
            "/CN=test-cluster-ca",
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
            "/CN=kube-apiserver",
        ],
    );
    std::fs::write(
        d.join("srv.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
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
    openssl(d, &["genrsa", "-out", "sa.key", "2048"]);
    openssl(d, &["rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub"]);
    openssl(d, &["genrsa", "-out", "rogue.key", "2048"]);
    let reviewer = sign(d, "sa.key", &legacy("kube-system", "coffer-reviewer", "uid-reviewer"));
    let forbidden = sign(d, "sa.key", &legacy("default", "nobody", "uid-nobody"));
    let mut child = Command::new("python3")
        .arg(auth_dir().join("k8s_tokenreview.py"))
        .args(["--cert", "srv.pem", "--key", "srv.key", "--sa-key", "sa.pub", "--reviewer", &reviewer])
        .args(["--forbidden-reviewer", &forbidden, "--deleted", "apps/deleted-sa"])
        .args(["--namespace", "team-a=stage=prod,team=a", "--namespace", "team-b=stage=dev"])
        .current_dir(d)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let port = line.trim().strip_prefix("listening on ").and_then(|p| p.parse().ok()).expect("stand-in port");
    let ca = std::fs::read_to_string(d.join("ca.pem")).unwrap();
    Some(Cluster { dir, api: ApiServer { child, port }, ca, reviewer })
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

fn login(addr: &str, role: &str, jwt: &str) -> (u16, Value) {
    let body = serde_json::to_vec(&json!({"role": role, "jwt": jwt})).unwrap();
    let (st, text) = http(addr, "PUT", "/v1/auth/kubernetes/login", &[], &body);
    (st, json(&text))
}

fn error_of(v: &Value) -> String {
    v["errors"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("; "))
        .unwrap_or_default()
}

fn configure(addr: &str, c: &Cluster) {
    ok(addr, "POST", "sys/auth/kubernetes", json!({"type": "kubernetes"}));
    ok(
        addr,
        "PUT",
        "auth/kubernetes/config",
        json!({"kubernetes_host": format!("https://127.0.0.1:{}", c.api.port), "kubernetes_ca_cert": c.ca,
               "token_reviewer_jwt": c.reviewer, "disable_local_ca_jwt": true}),
    );
}

#[test]
fn kubernetes_logins_are_checked_by_a_tokenreview_and_the_role() {
    let Some(c) = cluster() else { return };
    let d = c.dir.path();
    let s = Server::start_dev("root");
    let a = s.addr.as_str();
    configure(a, &c);
    let cfg = ok(a, "GET", "auth/kubernetes/config", Value::Null);
    assert_eq!(cfg["data"]["token_reviewer_jwt_set"], true);
    assert!(cfg["data"].get("token_reviewer_jwt").is_none(), "the reviewer JWT is never returned: {cfg}");
    ok(
        a,
        "PUT",
        "auth/kubernetes/role/apps",
        json!({
        "bound_service_account_names": "web-*,deleted-sa", "bound_service_account_namespaces": "apps",
        "token_policies": "app", "token_ttl": "5m"}),
    );
    ok(
        a,
        "PUT",
        "auth/kubernetes/role/aud",
        json!({
        "bound_service_account_names": "*", "bound_service_account_namespaces": "apps",
        "audience": "coffer", "alias_name_source": "serviceaccount_name"}),
    );
    ok(
        a,
        "PUT",
        "auth/kubernetes/role/prod",
        json!({
        "bound_service_account_names": "*",
        "bound_service_account_namespace_selector": r#"{"matchLabels":{"stage":"prod"}}"#}),
    );
    let role = ok(a, "GET", "auth/kubernetes/role/apps", Value::Null);
    assert_eq!(role["data"]["bound_service_account_names"], json!(["web-*", "deleted-sa"]));
    assert_eq!(role["data"]["alias_name_source"], "serviceaccount_uid");

    // Authenticated: the alias is the service account's uid; metadata names it.
    let (st, v) = login(a, "apps", &sign(d, "sa.key", &legacy("apps", "web-1", "uid-web-1")));
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["auth"]["metadata"]["service_account_name"], "web-1");
    assert_eq!(v["auth"]["metadata"]["service_account_namespace"], "apps");
    assert_eq!(v["auth"]["metadata"]["service_account_uid"], "uid-web-1");
    assert_eq!(v["auth"]["lease_duration"], 300);
    assert!(v["auth"]["policies"].as_array().unwrap().contains(&json!("app")));
    let eid = v["auth"]["entity_id"].as_str().unwrap();
    let ent = ok(a, "GET", &format!("identity/entity/id/{eid}"), Value::Null);
    assert_eq!(ent["data"]["aliases"][0]["name"], "uid-web-1", "{ent}");

    // A projected token with the role's audience; the alias is namespace/name.
    let (st, v) = login(a, "aud", &sign(d, "sa.key", &projected("apps", "api", "uid-api", "coffer")));
    assert_eq!(st, 200, "{v}");
    let eid = v["auth"]["entity_id"].as_str().unwrap();
    let ent = ok(a, "GET", &format!("identity/entity/id/{eid}"), Value::Null);
    assert_eq!(ent["data"]["aliases"][0]["name"], "apps/api", "{ent}");

    // The namespace label selector, read from the API server.
    assert_eq!(login(a, "prod", &sign(d, "sa.key", &legacy("team-a", "x", "u-x"))).0, 200);
    let (st, v) = login(a, "prod", &sign(d, "sa.key", &legacy("team-b", "x", "u-x2")));
    assert_eq!((st, error_of(&v).contains("namespace not authorized")), (403, true), "{v}");

    for (what, role, token, status, want) in [
        (
            "signed by another key",
            "apps",
            sign(d, "rogue.key", &legacy("apps", "web-1", "u")),
            403,
            "service account unauthorized",
        ),
        ("deleted service account", "apps", sign(d, "sa.key", &legacy("apps", "deleted-sa", "u")), 403, "not found"),
        (
            "wrong audience",
            "aud",
            sign(d, "sa.key", &projected("apps", "api", "u", "someone-else")),
            403,
            "invalid for the target audiences",
        ),
        (
            "name not bound",
            "apps",
            sign(d, "sa.key", &legacy("apps", "db", "u")),
            403,
            "service account name not authorized",
        ),
        (
            "namespace not bound",
            "apps",
            sign(d, "sa.key", &legacy("other", "web-1", "u")),
            403,
            "namespace not authorized",
        ),
        ("not a JWT", "apps", "garbage".to_string(), 403, "not a JSON Web Token"),
        ("unknown role", "nope", sign(d, "sa.key", &legacy("apps", "web-1", "u")), 400, "invalid role name"),
        ("no jwt", "apps", String::new(), 400, "missing jwt"),
    ] {
        let (st, v) = login(a, role, &token);
        assert_eq!(st, status, "{what}: {v}");
        assert!(error_of(&v).contains(want), "{what}: want {want:?} in {v}");
    }

    // Bad settings: refused with a message naming them.
    for (body, want) in [
        (json!({"bound_service_account_namespaces": "a"}), "bound_service_account_names"),
        (json!({"bound_service_account_names": "a"}), "bound_service_account_namespaces"),
        (json!({"bound_service_account_names": "*,a", "bound_service_account_namespaces": "a"}), "can not mix"),
        (
            json!({"bound_service_account_names": "a", "bound_service_account_namespace_selector": "stage: prod"}),
            "JSON",
        ),
        (
            json!({"bound_service_account_names": "a", "bound_service_account_namespaces": "a", "alias_name_source": "x"}),
            "alias_name_source",
        ),
    ] {
        let (st, v) = call(a, "PUT", "auth/kubernetes/role/bad", &body);
        assert_eq!(st, 400, "{body}: {v}");
        assert!(error_of(&v).contains(want), "{body}: {v}");
    }
    // pem_keys: a token signed by another key is refused before any review.
    let mut cfg = json!({"kubernetes_host": format!("https://127.0.0.1:{}", c.api.port), "kubernetes_ca_cert": c.ca,
        "token_reviewer_jwt": c.reviewer, "disable_local_ca_jwt": true,
        "pem_keys": [std::fs::read_to_string(d.join("sa.pub")).unwrap()]});
    ok(a, "PUT", "auth/kubernetes/config", cfg.clone());
    assert_eq!(login(a, "apps", &sign(d, "sa.key", &legacy("apps", "web-1", "uid-web-1"))).0, 200);
    let (st, v) = login(a, "apps", &sign(d, "rogue.key", &legacy("apps", "web-1", "uid-web-1")));
    assert_eq!(st, 403, "{v}");
    assert!(error_of(&v).contains("pem_keys"), "{v}");
    // Issuer validation: legacy tokens carry kubernetes/serviceaccount, the default issuer.
    cfg["pem_keys"] = json!([]);
    cfg["disable_iss_validation"] = json!(false);
    ok(a, "PUT", "auth/kubernetes/config", cfg.clone());
    assert_eq!(login(a, "apps", &sign(d, "sa.key", &legacy("apps", "web-1", "uid-web-1"))).0, 200);
    let (st, v) = login(a, "aud", &sign(d, "sa.key", &projected("apps", "api", "uid-api", "coffer")));
    assert_eq!(st, 403, "{v}");
    assert!(error_of(&v).contains("invalid issuer"), "{v}");
    cfg["issuer"] = json!("https://kubernetes.default.svc.cluster.local");
    ok(a, "PUT", "auth/kubernetes/config", cfg);
    assert_eq!(login(a, "aud", &sign(d, "sa.key", &projected("apps", "api", "uid-api", "coffer"))).0, 200);

    let (st, v) = call(
        a,
        "PUT",
        "auth/kubernetes/config",
        &json!({"kubernetes_host": "https://127.0.0.1:1", "disable_local_ca_jwt": true}),
    );
    assert_eq!(st, 400);
    assert!(error_of(&v).contains("kubernetes_ca_cert"), "{v}");
}

/// The same stand-in, settings and tokens against OpenBao's kubernetes method and Coffer's: the
/// same statuses and metadata (this also shows the stand-in answers what OpenBao expects).
#[test]
fn kubernetes_logins_are_answered_as_openbao_answers_them() {
    let Some(bao) = bao_path() else { return };
    let Some(c) = cluster() else { return };
    let d = c.dir.path();
    let coffer = Server::start_dev("root");
    let real = RealBao::start(&bao);
    let tokens: Vec<(&str, &str, String)> = vec![
        ("legacy", "apps", sign(d, "sa.key", &legacy("apps", "web-1", "uid-web-1"))),
        ("projected-with-audience", "aud", sign(d, "sa.key", &projected("apps", "api", "uid-api", "coffer"))),
        ("other-key", "apps", sign(d, "rogue.key", &legacy("apps", "web-1", "uid-web-1"))),
        ("deleted", "apps", sign(d, "sa.key", &legacy("apps", "deleted-sa", "uid-d"))),
        ("wrong-audience", "aud", sign(d, "sa.key", &projected("apps", "api", "uid-api", "other"))),
        ("name-not-bound", "apps", sign(d, "sa.key", &legacy("apps", "db", "uid-db"))),
        ("namespace-not-bound", "apps", sign(d, "sa.key", &legacy("kube-system", "web-1", "uid-k"))),
        ("unknown-role", "nope", sign(d, "sa.key", &legacy("apps", "web-1", "uid-web-1"))),
    ];
    let mut seen = Vec::new();
    for addr in [&coffer.addr, &real.addr] {
        configure(addr, &c);
        ok(
            addr,
            "PUT",
            "auth/kubernetes/role/apps",
            json!({
            "bound_service_account_names": "web-*,deleted-sa", "bound_service_account_namespaces": "apps"}),
        );
        ok(
            addr,
            "PUT",
            "auth/kubernetes/role/aud",
            json!({
            "bound_service_account_names": "*", "bound_service_account_namespaces": "apps", "audience": "coffer"}),
        );
        let mut answers = Vec::new();
        for (name, role, token) in &tokens {
            let (st, v) = login(addr, role, token);
            answers.push((name.to_string(), st, if st == 200 { v["auth"]["metadata"].clone() } else { Value::Null }));
        }
        for path in ["auth/kubernetes/role/apps", "auth/kubernetes/role/aud", "auth/kubernetes/config"] {
            let keys: Vec<String> =
                ok(addr, "GET", path, Value::Null)["data"].as_object().unwrap().keys().cloned().collect();
            answers.push((format!("{path} fields {keys:?}"), 200, Value::Null));
        }
        seen.push(answers);
    }
    assert_eq!(seen[0], seen[1], "Coffer (left) and OpenBao (right) differ");
}

#[test]
fn kubernetes_api_server_down_or_refusing_the_reviewer_gives_clear_errors() {
    let Some(c) = cluster() else { return };
    let d = c.dir.path();
    let s = Server::start_dev("root");
    let a = s.addr.as_str();
    configure(a, &c);
    ok(
        a,
        "PUT",
        "auth/kubernetes/role/apps",
        json!({"bound_service_account_names": "web", "bound_service_account_namespaces": "apps"}),
    );
    let token = sign(d, "sa.key", &legacy("apps", "web", "uid-web"));
    assert_eq!(login(a, "apps", &token).0, 200);

    // The reviewer's own token refused by the API server (401): the message says what to fix.
    let mut cfg = json!({"kubernetes_host": format!("https://127.0.0.1:{}", c.api.port), "kubernetes_ca_cert": c.ca,
        "token_reviewer_jwt": sign(d, "rogue.key", &legacy("kube-system", "r", "u")), "disable_local_ca_jwt": true});
    ok(a, "PUT", "auth/kubernetes/config", cfg.clone());
    let (st, v) = login(a, "apps", &token);
    assert_eq!(st, 403, "{v}");
    assert!(error_of(&v).contains("HTTP 401") && error_of(&v).contains("token_reviewer_jwt"), "{v}");

    // Without a reviewer JWT the client's own token creates its review (not allowed here: 401).
    cfg["token_reviewer_jwt"] = json!("");
    ok(a, "PUT", "auth/kubernetes/config", cfg.clone());
    assert_eq!(login(a, "apps", &token).0, 403);

    // A CA that did not issue the API server's certificate: TLS fails, named as unreachable.
    let dir2 = tempfile::tempdir().unwrap();
    openssl(
        dir2.path(),
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "k",
            "-out",
            "c.pem",
            "-subj",
            "/CN=other",
            "-days",
            "1",
        ],
    );
    cfg["token_reviewer_jwt"] = json!(c.reviewer);
    cfg["kubernetes_ca_cert"] = json!(std::fs::read_to_string(dir2.path().join("c.pem")).unwrap());
    ok(a, "PUT", "auth/kubernetes/config", cfg.clone());
    let (st, v) = login(a, "apps", &token);
    assert_eq!(st, 503, "{v}");
    assert!(error_of(&v).contains("could not reach the Kubernetes API server"), "{v}");

    // The API server down.
    let port = c.api.port;
    drop(c.api);
    cfg["kubernetes_ca_cert"] = json!(c.ca);
    ok(a, "PUT", "auth/kubernetes/config", cfg);
    let (st, v) = login(a, "apps", &token);
    assert_eq!(st, 503, "{v}");
    assert!(
        error_of(&v).contains(&format!("could not reach the Kubernetes API server at https://127.0.0.1:{port}")),
        "{v}"
    );
}

#[test]
fn kubernetes_logins_through_hvac_bao_and_coffer_login() {
    let Some(bao) = bao_path() else { return };
    if !python::ensure("hvac", "hvac") {
        return;
    }
    let Some(c) = cluster() else { return };
    let d = c.dir.path();
    let s = Server::start_dev("root");
    let a = s.addr.as_str();
    let token = sign(d, "sa.key", &legacy("apps", "web", "uid-web"));
    let script = r#"
import hvac, os
c = hvac.Client(url=os.environ["VAULT_ADDR"], token="root")
c.sys.enable_auth_method("kubernetes")
c.auth.kubernetes.configure(kubernetes_host=os.environ["HOST"], kubernetes_ca_cert=os.environ["CA"],
    token_reviewer_jwt=os.environ["REVIEWER"], disable_local_ca_jwt=True)
assert c.auth.kubernetes.read_config()["kubernetes_host"] == os.environ["HOST"]
c.auth.kubernetes.create_role("apps", bound_service_account_names=["web"], bound_service_account_namespaces=["apps"],
    policies=["app"], alias_name_source="serviceaccount_name")
assert c.auth.kubernetes.read_role("apps")["bound_service_account_names"] == ["web"]
assert "apps" in c.auth.kubernetes.list_roles()["keys"]
u = hvac.Client(url=os.environ["VAULT_ADDR"])
r = u.auth.kubernetes.login("apps", os.environ["JWT"])
assert "app" in r["auth"]["policies"], r
assert u.is_authenticated()
print("hvac ok")
"#;
    let o = Command::new("python3")
        .args(["-c", script])
        .env("VAULT_ADDR", format!("http://{a}"))
        .env("HOST", format!("https://127.0.0.1:{}", c.api.port))
        .env("CA", &c.ca)
        .env("REVIEWER", &c.reviewer)
        .env("JWT", &token)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&o.stdout).contains("hvac ok"), "{}", out(&o));

    let o =
        cli(&bao, a, None, &["write", "-format=json", "auth/kubernetes/login", "role=apps", &format!("jwt={token}")]);
    assert!(o.status.success(), "{}", out(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["auth"]["metadata"]["service_account_name"], "web");

    let o = cli(
        coffer_bin(),
        a,
        None,
        &["login", "-method=kubernetes", "-no-store", "-format=json", "role=apps", &format!("jwt={token}")],
    );
    assert!(o.status.success(), "{}", out(&o));
    let o = cli(coffer_bin(), a, None, &["login", "-method=kubernetes", "-no-store", "role=apps", "jwt=x.y.z"]);
    assert!(!o.status.success() && out(&o).contains("Error authenticating"), "{}", out(&o));
}
