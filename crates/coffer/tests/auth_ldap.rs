//! The ldap auth method against a real OpenLDAP `slapd` the test starts on free ports with a
//! temporary configuration and database: users, nested groups, plain LDAP, StartTLS and LDAPS,
//! a failover URL list, a server that is down, and user names full of LDAP filter syntax.
//! (OpenBao 2.7 ships no ldap auth method and its CLI has no `-method=ldap`: logins go through
//! `coffer login -method=ldap` and the HTTP API.)
mod common;
mod python;
use common::*;
use serde_json::{json as j, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BASE: &str = "dc=example,dc=com";
const ADMIN: &str = "cn=admin,dc=example,dc=com";

fn slapd_bin() -> Option<PathBuf> {
    let p = PathBuf::from("/usr/sbin/slapd");
    if p.exists() && Path::new("/usr/bin/ldapadd").exists() {
        return Some(p);
    }
    assert!(std::env::var("CI").is_err(), "slapd and ldap-utils are required (scripts/test installs them)");
    eprintln!("SKIPPED: slapd/ldap-utils not installed (apt-get install slapd ldap-utils)");
    None
}

/// A running slapd; killed on drop.
struct Slapd {
    child: Child,
    dir: tempfile::TempDir,
    ldap: u16,
    ldaps: u16,
}

impl Drop for Slapd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Slapd {
    fn start(slapd: &Path) -> Slapd {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("db")).unwrap();
        let o = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1"])
            .args(["-subj", "/CN=ldap.test", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
            .args(["-addext", "basicConstraints=critical,CA:false"])
            .arg("-keyout")
            .arg(d.join("server.key"))
            .arg("-out")
            .arg(d.join("server.pem"))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", out(&o));
        // Another self-signed certificate: a CA the server's certificate does not chain to.
        let o = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1"])
            .args(["-subj", "/CN=other", "-addext", "basicConstraints=critical,CA:true"])
            .arg("-keyout")
            .arg(d.join("other.key"))
            .arg("-out")
            .arg(d.join("other.pem"))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", out(&o));
        let conf = format!(
            "include /etc/ldap/schema/core.schema\ninclude /etc/ldap/schema/cosine.schema\n\
             include /etc/ldap/schema/inetorgperson.schema\ninclude /etc/ldap/schema/nis.schema\n\
             pidfile {d}/slapd.pid\nmodulepath /usr/lib/ldap\nmoduleload back_mdb\n\
             TLSCertificateFile {d}/server.pem\nTLSCertificateKeyFile {d}/server.key\n\
             database mdb\nmaxsize 10485760\nsuffix \"{BASE}\"\nrootdn \"{ADMIN}\"\nrootpw adminpw\n\
             directory {d}/db\n\
             access to attrs=userPassword by self read by anonymous auth by * none\naccess to * by * read\n",
            d = d.display()
        );
        std::fs::write(d.join("slapd.conf"), conf).unwrap();
        let (ldap, ldaps) = (free_port(), free_port());
        let log = std::fs::File::create(d.join("slapd.log")).unwrap();
        let child = Command::new(slapd)
            .arg("-f")
            .arg(d.join("slapd.conf"))
            .args(["-h", &format!("ldap://127.0.0.1:{ldap}/ ldaps://127.0.0.1:{ldaps}/"), "-d", "0"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start slapd");
        let s = Slapd { child, dir, ldap, ldaps };
        let deadline = Instant::now() + Duration::from_secs(15);
        while std::net::TcpStream::connect(("127.0.0.1", ldap)).is_err() {
            assert!(Instant::now() < deadline, "slapd did not start: {}", s.log());
            std::thread::sleep(Duration::from_millis(100));
        }
        s.add(&data_ldif());
        s
    }
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("slapd.log")).unwrap_or_default()
    }
    fn pem(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap()
    }
    fn add(&self, ldif: &str) {
        self.apply("ldapadd", ldif);
    }
    fn modify(&self, ldif: &str) {
        self.apply("ldapmodify", ldif);
    }
    fn apply(&self, tool: &str, ldif: &str) {
        let f = self.dir.path().join("change.ldif");
        std::fs::write(&f, ldif).unwrap();
        let o = Command::new(tool)
            .args(["-x", "-H", &format!("ldap://127.0.0.1:{}", self.ldap), "-D", ADMIN, "-w", "adminpw", "-f"])
            .arg(&f)
            .output()
            .unwrap();
        assert!(o.status.success(), "{tool}: {}", out(&o));
    }
}

fn person(uid: &str, pw: &str) -> String {
    format!("dn: uid={uid},ou=people,{BASE}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\nsn: {uid}\nuserPassword: {pw}\n\n")
}

fn group(cn: &str, members: &[&str]) -> String {
    let mut s = format!("dn: cn={cn},ou=groups,{BASE}\nobjectClass: groupOfNames\ncn: {cn}\n");
    for m in members {
        s.push_str(&format!("member: {m}\n"));
    }
    s + "\n"
}

/// alice ∈ devs ⊂ engineering ⊂ company; bob ∈ ops; "star*" is a real user whose name is
/// filter syntax.
fn data_ldif() -> String {
    let mut s = format!(
        "dn: {BASE}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n\n\
         dn: ou=people,{BASE}\nobjectClass: organizationalUnit\nou: people\n\n\
         dn: ou=groups,{BASE}\nobjectClass: organizationalUnit\nou: groups\n\n"
    );
    s += &person("alice", "alicepw");
    s += &person("bob", "bobpw");
    s += &format!("dn: uid=star*,ou=people,{BASE}\nobjectClass: inetOrgPerson\nuid: star*\ncn: star\nsn: star\nuserPassword: starpw\n\n");
    s += &group("devs", &[&format!("uid=alice,ou=people,{BASE}")]);
    s += &group("engineering", &[&format!("cn=devs,ou=groups,{BASE}")]);
    s += &group("company", &[&format!("cn=engineering,ou=groups,{BASE}")]);
    s += &group("ops", &[&format!("uid=bob,ou=people,{BASE}")]);
    s
}

fn api(addr: &str, token: &str, method: &str, path: &str, body: Value) -> (u16, Value) {
    let body = if body.is_null() { vec![] } else { body.to_string().into_bytes() };
    let (code, text) = http(addr, method, &format!("/v1/{path}"), &[("X-Vault-Token", token)], &body);
    (code, if text.trim().is_empty() { Value::Null } else { json(&text) })
}

fn ok(addr: &str, method: &str, path: &str, body: Value) -> Value {
    let (code, v) = api(addr, "root", method, path, body);
    assert!((200..300).contains(&code), "{method} {path}: {code} {v}");
    v
}

fn base_config(s: &Slapd) -> Value {
    j!({
        "url": format!("ldap://127.0.0.1:{}", s.ldap),
        "userdn": format!("ou=people,{BASE}"),
        "userattr": "uid",
        "groupdn": format!("ou=groups,{BASE}"),
        "groupfilter": "(member={{.UserDN}})",
    })
}

fn login(addr: &str, user: &str, pw: &str) -> (u16, Value) {
    let path = format!(
        "auth/ldap/login/{}",
        user.replace('%', "%25").replace('\\', "%5C").replace('*', "%2A").replace('(', "%28").replace(')', "%29")
    );
    api(addr, "", "POST", &path, j!({ "password": pw }))
}

#[test]
fn ldap_login_resolves_nested_groups_into_policies_and_group_aliases() {
    let Some(slapd) = slapd_bin() else { return };
    let s = Slapd::start(&slapd);
    let c = Server::start_dev("root");
    let a = c.addr.as_str();
    ok(a, "POST", "sys/auth/ldap", j!({"type": "ldap"}));
    let mut cfg = base_config(&s);
    cfg["token_policies"] = j!("base");
    cfg["token_ttl"] = j!("30m");
    ok(a, "POST", "auth/ldap/config", cfg);
    ok(a, "POST", "auth/ldap/groups/Engineering", j!({"policies": "eng"}));
    ok(a, "POST", "auth/ldap/groups/company", j!({"policies": ["all"]}));
    ok(a, "POST", "auth/ldap/groups/ops", j!({"policies": "ops"}));
    ok(a, "POST", "auth/ldap/users/alice", j!({"policies": "alice-p", "groups": "extra"}));
    ok(a, "POST", "auth/ldap/groups/extra", j!({"policies": "extra-p"}));
    let groups = ok(a, "LIST", "auth/ldap/groups", Value::Null);
    assert_eq!(groups["data"]["keys"], j!(["company", "engineering", "extra", "ops"]), "{groups}");
    let user = ok(a, "GET", "auth/ldap/users/alice", Value::Null);
    assert_eq!(user["data"], j!({"groups": ["extra"], "policies": ["alice-p"]}), "{user}");

    // An external group bound to the LDAP group "engineering" through a group alias.
    let accessor = ok(a, "GET", "sys/auth", Value::Null)["data"]["ldap/"]["accessor"].as_str().unwrap().to_string();
    let g = ok(a, "POST", "identity/group", j!({"name": "eng-ext", "type": "external", "policies": "from-group"}));
    let gid = g["data"]["id"].as_str().unwrap().to_string();
    ok(a, "POST", "identity/group-alias", j!({"name": "engineering", "mount_accessor": accessor, "canonical_id": gid}));

    // The real CLI: coffer login -method=ldap.
    let o = cli(
        coffer_bin(),
        a,
        None,
        &["login", "-method=ldap", "-format=json", "-no-store", "username=alice", "password=alicepw"],
    );
    assert!(o.status.success(), "{}", out(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let auth = &v["auth"];
    let mut policies: Vec<String> = serde_json::from_value(auth["token_policies"].clone()).unwrap();
    policies.sort();
    assert_eq!(policies, ["alice-p", "all", "base", "default", "eng", "extra-p"], "nested groups resolved: {v}");
    assert_eq!(auth["metadata"]["username"], "alice", "{v}");
    assert_eq!(auth["lease_duration"], 1800, "token_ttl honoured: {v}");
    assert_eq!(auth["identity_policies"], j!(["from-group"]), "the external group's policy: {v}");
    let entity = auth["entity_id"].as_str().unwrap();
    let e = ok(a, "GET", &format!("identity/entity/id/{entity}"), Value::Null);
    assert_eq!(e["data"]["aliases"][0]["name"], "alice", "{e}");
    assert_eq!(e["data"]["aliases"][0]["mount_type"], "ldap", "{e}");
    assert!(e["data"]["group_ids"].as_array().unwrap().iter().any(|x| x == &j!(gid)), "{e}");

    // bob: only ops; not in the external group.
    let (code, v) = login(a, "bob", "bobpw");
    assert_eq!(code, 200, "{v}");
    let mut policies: Vec<String> = serde_json::from_value(v["auth"]["token_policies"].clone()).unwrap();
    policies.sort();
    assert_eq!(policies, ["base", "default", "ops"], "{v}");

    // case_sensitive_names=false: "ALICE" is alice (the directory matches case-insensitively).
    let (code, v) = login(a, "ALICE", "alicepw");
    assert_eq!(code, 200, "{v}");
    assert!(v["auth"]["token_policies"].as_array().unwrap().contains(&j!("alice-p")), "{v}");
    // The entity alias is the directory's spelling (userattr), unless username_as_alias.
    let e = ok(a, "GET", &format!("identity/entity/id/{}", v["auth"]["entity_id"].as_str().unwrap()), Value::Null);
    assert_eq!(e["data"]["aliases"][0]["name"], "alice", "{e}");
    ok(a, "POST", "auth/ldap/config", j!({"username_as_alias": true}));
    let (_, v) = login(a, "ALICE", "alicepw");
    let e = ok(a, "GET", &format!("identity/entity/id/{}", v["auth"]["entity_id"].as_str().unwrap()), Value::Null);
    assert_eq!(e["data"]["aliases"][0]["name"], "ALICE", "{e}");
}

#[test]
fn ldap_token_renewal_binds_again_and_refuses_changed_policies_or_passwords() {
    let Some(slapd) = slapd_bin() else { return };
    let s = Slapd::start(&slapd);
    let c = Server::start_dev("root");
    let a = c.addr.as_str();
    ok(a, "POST", "sys/auth/ldap", j!({"type": "ldap"}));
    ok(a, "POST", "auth/ldap/config", base_config(&s));
    ok(a, "POST", "auth/ldap/groups/ops", j!({"policies": "ops"}));
    let (code, v) = login(a, "bob", "bobpw");
    assert_eq!(code, 200, "{v}");
    let token = v["auth"]["client_token"].as_str().unwrap().to_string();

    // Unchanged directory and mappings: the renewal binds again and is granted.
    let (code, v) = api(a, &token, "POST", "auth/token/renew-self", j!({"increment": "10m"}));
    assert_eq!(code, 200, "{v}");
    // What the login kept for that (the password) is never shown.
    let (code, v) = api(a, &token, "GET", "auth/token/lookup-self", Value::Null);
    assert_eq!(code, 200, "{v}");
    assert!(!v.to_string().contains("bobpw"), "lookup leaks the kept password: {v}");

    // A changed mapping: the token would now earn other policies, so it is not renewed.
    ok(a, "POST", "auth/ldap/groups/ops", j!({"policies": "ops,more"}));
    let (code, v) = api(a, &token, "POST", "auth/token/renew-self", Value::Null);
    assert_eq!(code, 400, "{v}");
    assert_eq!(v["errors"][0], "policies have changed, not renewing", "{v}");
    ok(a, "POST", "auth/ldap/groups/ops", j!({"policies": "ops"}));
    let (code, v) = api(a, &token, "POST", "auth/token/renew-self", Value::Null);
    assert_eq!(code, 200, "mapping restored: {v}");

    // The directory changed bob's password: the kept one no longer binds.
    s.modify(&format!(
        "dn: uid=bob,ou=people,{BASE}\nchangetype: modify\nreplace: userPassword\nuserPassword: newpw\n"
    ));
    let (code, v) = api(a, &token, "POST", "auth/token/renew-self", Value::Null);
    assert_eq!(code, 400, "{v}");
    assert_eq!(v["errors"][0], "ldap operation failed: invalid username or password", "{v}");
    // The token itself still works until it expires; only its renewal is refused.
    let (code, _) = api(a, &token, "GET", "auth/token/lookup-self", Value::Null);
    assert_eq!(code, 200);
}

#[test]
fn ldap_wrong_password_unknown_user_and_injected_names_get_one_answer() {
    let Some(slapd) = slapd_bin() else { return };
    let s = Slapd::start(&slapd);
    let c = Server::start_dev("root");
    let a = c.addr.as_str();
    ok(a, "POST", "sys/auth/ldap", j!({"type": "ldap"}));
    // Both ways of finding the user: a DN built from the name, and a search as binddn.
    for discover in [false, true] {
        let mut cfg = base_config(&s);
        if discover {
            cfg["binddn"] = j!(ADMIN);
            cfg["bindpass"] = j!("adminpw");
            cfg["discoverdn"] = j!(true);
        }
        ok(a, "POST", "auth/ldap/config", cfg);
        let read = ok(a, "GET", "auth/ldap/config", Value::Null);
        assert!(read["data"].get("bindpass").is_none() && !read.to_string().contains("adminpw"), "{read}");
        let (code, v) = login(a, "alice", "alicepw");
        assert_eq!(code, 200, "discoverdn={discover}: {v}");
        let (code, wrong) = login(a, "alice", "nope");
        assert_eq!(code, 400, "{wrong}");
        assert_eq!(wrong["errors"], j!(["ldap operation failed: invalid username or password"]));
        for user in ["nobody", "*", "al*", "alice)(uid=*", "*)(|(uid=*", "alice,ou=people", "uid=alice", "\\2a"] {
            let (code, v) = login(a, user, "alicepw");
            assert_eq!((code, &v), (400, &wrong), "discoverdn={discover} {user:?} must look like a wrong password");
        }
        // A user whose name is filter syntax logs in as herself, literally.
        let (code, v) = login(a, "star*", "starpw");
        assert_eq!(code, 200, "discoverdn={discover}: {v}");
        assert_eq!(v["auth"]["metadata"]["username"], "star*", "{v}");
        let (code, v) = login(a, "alice", "");
        assert_eq!(code, 400, "{v}");
        assert!(v.to_string().contains("passwordless binds are being denied"), "{v}");
    }
    // The server down: its own answer, which names no user and no credential.
    let port = free_port();
    ok(a, "POST", "auth/ldap/config", j!({"url": format!("ldap://127.0.0.1:{port}"), "connection_timeout": "2s"}));
    let (code, v) = login(a, "alice", "alicepw");
    assert_eq!(code, 503, "{v}");
    assert_eq!(v["errors"], j!(["ldap operation failed: could not reach any LDAP server"]));
    let (code2, v2) = login(a, "nobody", "x");
    assert_eq!((code2, v2), (code, v), "down is down, whoever asks");
}

#[test]
fn ldap_starttls_ldaps_failover_and_certificate_checks() {
    let Some(slapd) = slapd_bin() else { return };
    let s = Slapd::start(&slapd);
    let c = Server::start_dev("root");
    let a = c.addr.as_str();
    ok(a, "POST", "sys/auth/ldap", j!({"type": "ldap"}));
    let closed = free_port();
    let with = |extra: Value| {
        let mut cfg = base_config(&s);
        for (k, v) in extra.as_object().unwrap() {
            cfg[k] = v.clone();
        }
        ok(a, "POST", "auth/ldap/config", cfg);
        login(a, "alice", "alicepw")
    };
    let ca = s.pem("server.pem");
    // LDAPS, after a first URL that refuses connections.
    let urls = format!("ldap://127.0.0.1:{closed},ldaps://127.0.0.1:{}", s.ldaps);
    let (code, v) = with(j!({"url": urls, "certificate": ca}));
    assert_eq!(code, 200, "failover to LDAPS: {v}");
    // StartTLS on the plain port.
    let (code, v) = with(j!({"starttls": true, "certificate": ca}));
    assert_eq!(code, 200, "StartTLS: {v}");
    // A CA the server's certificate does not chain to: the TLS handshake fails, no server.
    let (code, v) = with(j!({"url": format!("ldaps://127.0.0.1:{}", s.ldaps), "certificate": s.pem("other.pem")}));
    assert_eq!(code, 503, "an untrusted server certificate was accepted: {v}");
    let (code, v) = with(j!({"starttls": true, "certificate": s.pem("other.pem")}));
    assert_eq!(code, 503, "StartTLS with an untrusted certificate: {v}");
    // insecure_tls skips the check (for tests only).
    let (code, v) =
        with(j!({"url": format!("ldaps://127.0.0.1:{}", s.ldaps), "insecure_tls": true, "certificate": ""}));
    assert_eq!(code, 200, "insecure_tls: {v}");
}

#[test]
fn ldap_bad_configuration_gets_clear_400s() {
    let c = Server::start_dev("root");
    let a = c.addr.as_str();
    ok(a, "POST", "sys/auth/ldap", j!({"type": "ldap"}));
    let (code, v) = login(a, "alice", "pw");
    assert_eq!(code, 400, "not configured yet: {v}");
    for (body, want) in [
        (j!({"url": "http://ldap.example"}), "must start with ldap:// or ldaps://"),
        (j!({"groupfilter": "(member={{.Password}})"}), "invalid groupfilter"),
        (j!({"userfilter": "({{.UserAttr}}={{.Username}"}), "invalid userfilter"),
        (j!({"use_token_groups": true}), "use_token_groups is not supported"),
        (j!({"client_tls_cert": "x"}), "client_tls_cert is not supported"),
        (j!({"certificate": "not a certificate"}), "failed to parse certificate"),
        (j!({"request_timeout": "-5s"}), "request_timeout"),
        (j!({"token_type": "batch", "token_num_uses": 3}), "token_type"),
    ] {
        let (code, v) = api(a, "root", "POST", "auth/ldap/config", body.clone());
        assert_eq!(code, 400, "{body}: {v}");
        assert!(v.to_string().contains(want), "{body}: {v}");
    }
    let (code, _) = api(a, "root", "GET", "auth/ldap/config", Value::Null);
    assert_eq!(code, 404, "nothing was stored");
}

#[test]
fn hvac_ldap_flows_pass_on_coffer() {
    let Some(slapd) = slapd_bin() else { return };
    if !python::ensure("hvac", "hvac") {
        return;
    }
    let s = Slapd::start(&slapd);
    let c = Server::start_dev("root");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/clients/hvac_ldap_flows.py");
    let o = Command::new("python3")
        .arg(&script)
        .env("VAULT_ADDR", c.url())
        .env("VAULT_TOKEN", "root")
        .env("LDAP_URL", format!("ldap://127.0.0.1:{}", s.ldap))
        .output()
        .unwrap();
    assert!(o.status.success() && out(&o).contains("3 passed, 0 failed"), "hvac ldap flows:\n{}", out(&o));
}
