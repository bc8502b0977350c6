//! The SSH engine in CA mode, driven by the real `bao` CLI against Coffer and against OpenBao
//! alike, its certificates checked by the real OpenSSH: `ssh-keygen -L` reads what was signed,
//! and an `sshd` started here on a loopback port that trusts only the CA (TrustedUserCAKeys)
//! lets in a user certificate for its principal and refuses one for another principal and an
//! expired one. Names, cert types and extensions outside the role are refused.
mod common;
use common::*;
use serde_json::Value;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Target<'a> {
    name: &'a str,
    bao: &'a str,
    addr: String,
}

impl Target<'_> {
    fn run(&self, args: &[&str]) -> std::process::Output {
        cli(self.bao, &self.addr, Some("root"), args)
    }

    fn data(&self, args: &[&str]) -> Value {
        let mut all = vec![args[0], "-format=json"];
        all.extend_from_slice(&args[1..]);
        let o = self.run(&all);
        assert!(o.status.success(), "{}: bao {args:?} failed:\n{}", self.name, out(&o));
        json(&String::from_utf8_lossy(&o.stdout))["data"].clone()
    }

    fn ok(&self, args: &[&str]) {
        let o = self.run(args);
        assert!(o.status.success(), "{}: bao {args:?} failed:\n{}", self.name, out(&o));
    }

    fn refused(&self, args: &[&str], why: &str) {
        let o = self.run(args);
        assert_eq!(o.status.code(), Some(2), "{}: {why}: {}", self.name, out(&o));
        assert!(out(&o).contains("Code: 400"), "{}: {why}: {}", self.name, out(&o));
    }
}

fn keygen(dir: &Path, name: &str) -> String {
    let path = dir.join(name);
    let o = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&path)
        .output()
        .expect("ssh-keygen");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    path.display().to_string()
}

/// An sshd on a loopback port trusting user certificates of `ca_pub` only.
struct Sshd {
    child: Child,
    port: u16,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sshd(dir: &Path, ca_pub: &str) -> Option<Sshd> {
    let bin = Path::new("/usr/sbin/sshd");
    if !bin.exists() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("sshd is required (apt-get install openssh-server)");
        }
        eprintln!("SKIPPED: no /usr/sbin/sshd");
        return None;
    }
    let _ = std::fs::create_dir_all("/run/sshd");
    let host_key = keygen(dir, "host_key");
    let ca = dir.join("trusted_ca.pub");
    std::fs::write(&ca, ca_pub).unwrap();
    let port = free_port();
    let cfg = dir.join("sshd_config");
    std::fs::write(
        &cfg,
        format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {host_key}\nTrustedUserCAKeys {}\n\
             AuthorizedKeysFile none\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
             UsePAM no\nStrictModes no\nPermitRootLogin yes\nPidFile {}\nLogLevel VERBOSE\n",
            ca.display(),
            dir.join("sshd.pid").display()
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.join("sshd.log")).unwrap();
    let child = Command::new(bin)
        .args(["-D", "-e", "-f"])
        .arg(&cfg)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("start sshd");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "sshd did not listen: {}",
            std::fs::read_to_string(dir.join("sshd.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Some(Sshd { child, port })
}

/// `ssh root@127.0.0.1 echo in` with a key and its certificate; (exit code, output).
fn ssh_login(port: u16, key: &str, cert: &str) -> (Option<i32>, String) {
    let o = Command::new("ssh")
        .args([
            "-F",
            "/dev/null",
            "-i",
            key,
            "-o",
            &format!("CertificateFile={cert}"),
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=5",
            "-p",
            &port.to_string(),
            "root@127.0.0.1",
            "echo",
            "logged-in",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("ssh");
    (o.status.code(), format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
}

fn drive(t: &Target) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    t.ok(&["secrets", "enable", "-path=ssh-client-signer", "ssh"]);
    let ca = t.data(&["write", "ssh-client-signer/config/ca", "generate_signing_key=true", "key_type=ssh-ed25519"]);
    let ca_pub = ca["public_key"].as_str().unwrap().trim().to_string();
    assert!(ca_pub.starts_with("ssh-ed25519 "), "{}: {ca_pub}", t.name);
    let (st, body) = http(&t.addr, "GET", "/v1/ssh-client-signer/public_key", &[], b"");
    assert_eq!((st, body.trim()), (200, ca_pub.as_str()), "{}: public_key without a token", t.name);

    // Maps go as JSON bodies: bao sends `key={…}` as a string, which OpenBao does not convert.
    let root_hdr = [("X-Vault-Token", "root")];
    let (st, body) = http(
        &t.addr,
        "POST",
        "/v1/ssh-client-signer/roles/users",
        &root_hdr,
        br#"{"key_type":"ca","allow_user_certificates":true,"allowed_users":"root,alice",
            "allowed_extensions":"permit-pty,permit-port-forwarding","default_extensions":{"permit-pty":""},
            "ttl":"30m","max_ttl":"1h"}"#,
    );
    assert!(st == 200 || st == 204, "{}: role: {st} {body}", t.name);
    let user = keygen(d, "user");
    let pubkey = format!("public_key=@{user}.pub");
    let signed = t.data(&["write", "ssh-client-signer/sign/users", &pubkey, "valid_principals=root"]);
    let cert = format!("{user}-cert.pub");
    std::fs::write(&cert, signed["signed_key"].as_str().unwrap()).unwrap();
    let o = Command::new("ssh-keygen").args(["-L", "-f", &cert]).output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        o.status.success() && text.contains("ssh-ed25519-cert-v01@openssh.com user certificate"),
        "{}: {text}",
        t.name
    );
    assert!(text.contains("permit-pty") && text.contains("root"), "{}: principals and extensions: {text}", t.name);
    let ca_fp = Command::new("ssh-keygen")
        .args(["-l", "-f", "/dev/stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(ca_pub.as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    let fp = String::from_utf8_lossy(&ca_fp.stdout).split_whitespace().nth(1).unwrap_or("").to_string();
    assert!(!fp.is_empty() && text.contains(&fp), "{}: signed by the CA {fp}: {text}", t.name);

    t.refused(
        &["write", "ssh-client-signer/sign/users", &pubkey, "valid_principals=mallory"],
        "a principal outside the role",
    );
    t.refused(
        &["write", "ssh-client-signer/sign/users", &pubkey, "valid_principals=root", "cert_type=host"],
        "a host certificate from a user role",
    );
    let body = serde_json::json!({"public_key": std::fs::read_to_string(format!("{user}.pub")).unwrap(),
        "valid_principals": "root", "extensions": {"permit-X11-forwarding": ""}});
    let (st, text) = http(&t.addr, "POST", "/v1/ssh-client-signer/sign/users", &root_hdr, body.to_string().as_bytes());
    assert_eq!(st, 400, "{}: an extension outside the role: {text}", t.name);
    t.refused(
        &["write", "ssh-client-signer/sign/users", "public_key=not a key", "valid_principals=root"],
        "a malformed public key",
    );

    // The real sshd: the certificate for root logs in; one for alice does not; an expired one does not.
    let Some(server) = sshd(d, &ca_pub) else { return };
    let (code, text) = ssh_login(server.port, &user, &cert);
    assert!(code == Some(0) && text.contains("logged-in"), "{}: login with the signed certificate: {text}", t.name);
    let other = keygen(d, "other");
    let alice = t.data(&[
        "write",
        "ssh-client-signer/sign/users",
        &format!("public_key=@{other}.pub"),
        "valid_principals=alice",
    ]);
    let alice_cert = format!("{other}-cert.pub");
    std::fs::write(&alice_cert, alice["signed_key"].as_str().unwrap()).unwrap();
    let (code, text) = ssh_login(server.port, &other, &alice_cert);
    assert!(
        code != Some(0) && !text.contains("logged-in"),
        "{}: a certificate for alice is no login as root: {text}",
        t.name
    );
    let short = keygen(d, "short");
    t.ok(&[
        "write",
        "ssh-client-signer/roles/brief",
        "key_type=ca",
        "allow_user_certificates=true",
        "allowed_users=root",
        "not_before_duration=0s",
        "ttl=1s",
        "max_ttl=1s",
    ]);
    let brief = t.data(&[
        "write",
        "ssh-client-signer/sign/brief",
        &format!("public_key=@{short}.pub"),
        "valid_principals=root",
    ]);
    let brief_cert = format!("{short}-cert.pub");
    std::fs::write(&brief_cert, brief["signed_key"].as_str().unwrap()).unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let (code, text) = ssh_login(server.port, &short, &brief_cert);
    assert!(code != Some(0) && !text.contains("logged-in"), "{}: an expired certificate: {text}", t.name);
    // A second CA key: OpenBao 2.3+ adds it as another issuer and makes it the default, so
    // `public_key` moves to it.
    let again = t.data(&["write", "ssh-client-signer/config/ca", "generate_signing_key=true", "key_type=ssh-ed25519"]);
    assert_ne!(again["issuer_id"], ca["issuer_id"], "{}: a new issuer: {again}", t.name);
    let (_, body) = http(&t.addr, "GET", "/v1/ssh-client-signer/public_key", &[], b"");
    assert_eq!(body.trim(), s_(&again["public_key"]).trim(), "{}: the new key is the default", t.name);
}

#[test]
fn bao_cli_signs_ssh_user_certificates_that_openssh_accepts_and_refuses_as_their_role_says_on_coffer_and_openbao() {
    let Some(bao) = bao_path() else { return };
    let server = Server::start_dev("root");
    drive(&Target { name: "coffer", bao: &bao, addr: server.addr.clone() });
    let real = RealBao::start(&bao);
    drive(&Target { name: "openbao", bao: &bao, addr: real.addr.clone() });
}

/// The SHA-256 fingerprint `ssh-keygen -l` gives an OpenSSH public key.
fn fingerprint(d: &Path, name: &str, public: &str) -> String {
    let path = d.join(name);
    std::fs::write(&path, format!("{}\n", public.trim())).unwrap();
    let o = Command::new("ssh-keygen").args(["-l", "-f"]).arg(&path).output().unwrap();
    String::from_utf8_lossy(&o.stdout).split_whitespace().nth(1).unwrap_or("").to_string()
}

/// Signs `user`'s public key with role `role` as principal root; the certificate's path and
/// the answer.
fn sign_root(t: &Target, role: &str, user: &str, suffix: &str) -> (String, Value) {
    let signed =
        t.data(&["write", &format!("ssh/sign/{role}"), &format!("public_key=@{user}.pub"), "valid_principals=root"]);
    let cert = format!("{user}-{suffix}-cert.pub");
    std::fs::write(&cert, s_(&signed["signed_key"])).unwrap();
    (cert, signed)
}

fn issuers_flow(t: &Target) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let root_hdr = [("X-Vault-Token", "root")];
    t.ok(&["secrets", "enable", "ssh"]);
    // Nothing configured: the unauthenticated key and the default answer 400 with OpenBao's words.
    let (st, body) = http(&t.addr, "GET", "/v1/ssh/public_key", &[], b"");
    assert_eq!(st, 400, "{}: {body}", t.name);
    assert!(body.contains("no default issuer currently configured"), "{}: {body}", t.name);
    let (st, _) = http(&t.addr, "GET", "/v1/ssh/issuers?list=true", &root_hdr, b"");
    assert_eq!(st, 404, "{}: no issuers to list", t.name);

    let first = t.data(&["write", "ssh/config/ca", "key_type=ssh-ed25519"]);
    assert_eq!(first["issuer_name"], "", "{}: {first}", t.name);
    assert!(s_(&first["public_key"]).ends_with('\n'), "{}: {first}", t.name);
    let second = t.data(&["write", "ssh/issuers/import/second", "generate_signing_key=true", "key_type=ssh-ed25519"]);
    assert_eq!(second["issuer_name"], "second", "{}: {second}", t.name);
    let (_, list) = http(&t.addr, "GET", "/v1/ssh/issuers?list=true", &root_hdr, b"");
    let list = json(&list)["data"].clone();
    assert_eq!(list["keys"].as_array().map(Vec::len), Some(2), "{}: {list}", t.name);
    let fid = s_(&first["issuer_id"]);
    let sid = s_(&second["issuer_id"]);
    assert_eq!(list["key_info"][&sid]["is_default"], false, "{}: the first key stays the default: {list}", t.name);
    assert_eq!(list["key_info"][&fid]["is_default"], true, "{}: {list}", t.name);
    assert_eq!(list["key_info"][&sid]["public_key"], second["public_key"], "{}: {list}", t.name);
    let (st, body) = http(&t.addr, "GET", "/v1/ssh/issuer/second/public_key", &[], b"");
    assert_eq!((st, body.trim()), (200, s_(&second["public_key"]).trim()), "{}: no token needed", t.name);
    let (st, body) = http(&t.addr, "GET", &format!("/v1/ssh/issuer/{fid}/public_key"), &[], b"");
    assert_eq!((st, body.trim()), (200, s_(&first["public_key"]).trim()), "{}: by id, no token", t.name);
    let (st, _) = http(&t.addr, "GET", "/v1/ssh/issuer/second", &[], b"");
    assert_eq!(st, 403, "{}: reading the issuer itself needs a token", t.name);
    let read = t.data(&["read", "ssh/issuer/second"]);
    assert_eq!(read["issuer_id"], second["issuer_id"], "{}: {read}", t.name);
    assert_eq!(
        t.data(&["read", "ssh/config/ca"])["issuer_id"],
        first["issuer_id"],
        "{}: config/ca reads the default",
        t.name
    );
    assert_eq!(t.data(&["read", "ssh/config/issuers"])["default"], first["issuer_id"], "{}", t.name);

    t.refused(
        &["write", "ssh/issuers/import/third", "private_key=not a key", "public_key=not one either"],
        "a private key that is not one",
    );
    t.refused(&["write", "ssh/issuers/import/third", "public_key=ssh-ed25519 AAAA"], "a public key alone");
    t.refused(&["write", "ssh/issuers/import/second", "key_type=ssh-ed25519"], "a name in use");
    t.refused(&["write", "ssh/issuers/import/default", "key_type=ssh-ed25519"], "the reserved name default");
    // An unknown default: 400 here; OpenBao answers 500 (docs/reference/openbao-observed.md).
    let (st, body) = http(&t.addr, "POST", "/v1/ssh/config/issuers", &root_hdr, br#"{"default":"nonexistent"}"#);
    let want = if t.name == "coffer" { 400 } else { 500 };
    assert!(st == want && body.contains("unable to find issuer for reference: nonexistent"), "{}: {st} {body}", t.name);
    let (st, body) = http(&t.addr, "POST", "/v1/ssh/config/issuers", &root_hdr, br#"{"default":""}"#);
    assert_eq!(st, 400, "{}: an empty default: {body}", t.name);

    // A role naming the second issuer: its certificates are signed by the second key; a role
    // without issuer_ref signs with the default (first) key.
    for (role, iref) in [("u", "issuer_ref=second"), ("plain", "default_user=root")] {
        t.ok(&[
            "write",
            &format!("ssh/roles/{role}"),
            "key_type=ca",
            "allow_user_certificates=true",
            "allowed_users=*",
            iref,
        ]);
    }
    assert_eq!(t.data(&["read", "ssh/roles/u"])["issuer_ref"], "second", "{}", t.name);
    assert_eq!(t.data(&["read", "ssh/roles/plain"])["issuer_ref"], "default", "{}", t.name);
    let user = keygen(d, "user");
    let (cert2, signed) = sign_root(t, "u", &user, "second");
    assert_eq!(signed["issuer_id"], second["issuer_id"], "{}: {signed}", t.name);
    let (cert1, signed) = sign_root(t, "plain", &user, "first");
    assert_eq!(signed["issuer_id"], first["issuer_id"], "{}: {signed}", t.name);
    let fp2 = fingerprint(d, "second.pub", &s_(&second["public_key"]));
    let fp1 = fingerprint(d, "first.pub", &s_(&first["public_key"]));
    for (cert, want, other) in [(&cert2, &fp2, &fp1), (&cert1, &fp1, &fp2)] {
        let o = Command::new("ssh-keygen").args(["-L", "-f", cert]).output().unwrap();
        let text = String::from_utf8_lossy(&o.stdout).to_string();
        assert!(
            !want.is_empty() && text.contains(want.as_str()) && !text.contains(other.as_str()),
            "{}: signed by {want}: {text}",
            t.name
        );
    }

    // sshd trusting only the second issuer lets in its certificate and not the first's; one
    // trusting only the first, the other way round.
    let second_dir = d.join("sshd-second");
    let first_dir = d.join("sshd-first");
    std::fs::create_dir_all(&second_dir).unwrap();
    std::fs::create_dir_all(&first_dir).unwrap();
    if let Some(server) = sshd(&second_dir, &s_(&second["public_key"])) {
        let (code, text) = ssh_login(server.port, &user, &cert2);
        assert!(
            code == Some(0) && text.contains("logged-in"),
            "{}: second issuer's certificate under its key: {text}",
            t.name
        );
        let (code, text) = ssh_login(server.port, &user, &cert1);
        assert!(
            code != Some(0) && !text.contains("logged-in"),
            "{}: the first issuer's certificate under the second's key: {text}",
            t.name
        );
        drop(server);
        let server = sshd(&first_dir, &s_(&first["public_key"])).expect("sshd");
        let (code, text) = ssh_login(server.port, &user, &cert1);
        assert!(
            code == Some(0) && text.contains("logged-in"),
            "{}: first issuer's certificate under its key: {text}",
            t.name
        );
        let (code, text) = ssh_login(server.port, &user, &cert2);
        assert!(
            code != Some(0) && !text.contains("logged-in"),
            "{}: the second issuer's certificate under the first's key: {text}",
            t.name
        );
    }

    // The default issuer moves: public_key and roles without issuer_ref follow it.
    t.ok(&["write", "ssh/config/issuers", "default=second"]);
    let (_, body) = http(&t.addr, "GET", "/v1/ssh/public_key", &[], b"");
    assert_eq!(body.trim(), s_(&second["public_key"]).trim(), "{}: public_key is the default issuer's", t.name);
    let (_, signed) = sign_root(t, "plain", &user, "moved");
    assert_eq!(signed["issuer_id"], second["issuer_id"], "{}: {signed}", t.name);

    // Renaming: a write without issuer_name clears the name (as OpenBao does).
    let renamed = t.data(&["write", &format!("ssh/issuer/{fid}"), "issuer_name=primary"]);
    assert_eq!(renamed["issuer_name"], "primary", "{}: {renamed}", t.name);
    t.refused(&["write", "ssh/issuer/primary", "issuer_name=second"], "a name in use");
    t.refused(&["write", "ssh/issuer/primary", "issuer_name=bad name!"], "a name with a space");

    // Deleting the default issuer: warned about, with the roles that named it; those roles
    // then cannot sign until a default is chosen again.
    let (st, body) = http(&t.addr, "DELETE", "/v1/ssh/issuer/second", &root_hdr, b"");
    assert_eq!(st, 200, "{}: {body}", t.name);
    let warnings = json(&body)["warnings"].to_string();
    assert!(
        warnings.contains("this was configured as the default issuer")
            && warnings.contains("1 roles reference 'default'")
            && warnings.contains("1 roles reference 'second'"),
        "{}: {warnings}",
        t.name
    );
    let o = t.run(&["write", "ssh/sign/plain", &format!("public_key=@{user}.pub"), "valid_principals=root"]);
    assert!(out(&o).contains("no default issuer currently configured"), "{}: {}", t.name, out(&o));
    let o = t.run(&["write", "ssh/sign/u", &format!("public_key=@{user}.pub"), "valid_principals=root"]);
    assert!(out(&o).contains("unable to find issuer for reference: second"), "{}: {}", t.name, out(&o));
    let (st, _) = http(&t.addr, "DELETE", "/v1/ssh/issuer/second", &root_hdr, b"");
    assert_eq!(st, 204, "{}: deleting what is gone", t.name);

    // An imported key that set_default makes the default; then config/ca's delete removes all.
    let ca = keygen(d, "imported_ca");
    let imported = t.data(&[
        "write",
        "ssh/issuers/import",
        &format!("private_key=@{ca}"),
        &format!("public_key=@{ca}.pub"),
        "set_default=true",
    ]);
    assert_eq!(t.data(&["read", "ssh/config/issuers"])["default"], imported["issuer_id"], "{}", t.name);
    let (_, signed) = sign_root(t, "plain", &user, "imported");
    assert_eq!(signed["issuer_id"], imported["issuer_id"], "{}: {signed}", t.name);
    let (st, body) = http(&t.addr, "DELETE", "/v1/ssh/config/ca", &root_hdr, b"");
    assert!(st == 200 && body.contains("Deleted 2 issuers"), "{}: {st} {body}", t.name);
    let (st, _) = http(&t.addr, "GET", "/v1/ssh/issuers?list=true", &root_hdr, b"");
    assert_eq!(st, 404, "{}: every issuer is gone", t.name);
}

fn s_(v: &Value) -> String {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}")).to_string()
}

#[test]
fn ssh_issuers_sign_with_the_role_s_issuer_and_the_default_issuer_serves_public_key_on_coffer_and_openbao() {
    let Some(bao) = bao_path() else { return };
    let server = Server::start_dev("root");
    issuers_flow(&Target { name: "coffer", bao: &bao, addr: server.addr.clone() });
    let real = RealBao::start(&bao);
    issuers_flow(&Target { name: "openbao", bao: &bao, addr: real.addr.clone() });
}

/// Identity templates in roles, as OpenBao renders them from the caller's entity: a userpass
/// user gets a certificate for their own login name only (allowed_users and default_user
/// templated), with an extension carrying it; the key id names the caller.
fn templates_flow(t: &Target) -> String {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "tpl");
    t.ok(&["secrets", "enable", "ssh"]);
    t.ok(&["write", "ssh/config/ca", "generate_signing_key=true"]);
    t.ok(&["auth", "enable", "userpass"]);
    let acc = t.data(&["read", "sys/auth/userpass"])["accessor"].as_str().unwrap().to_string();
    let policy = dir.path().join("p.hcl");
    std::fs::write(&policy, "path \"ssh/sign/*\" { capabilities = [\"update\"] }\n").unwrap();
    t.ok(&["policy", "write", "signer", policy.to_str().unwrap()]);
    t.ok(&["write", "auth/userpass/users/bob", "password=pw", "policies=signer"]);
    let alias = format!("{{{{identity.entity.aliases.{acc}.name}}}}");
    let role = serde_json::json!({
        "key_type": "ca", "allow_user_certificates": true, "ttl": "1h",
        "allowed_users": format!("{alias},static"), "allowed_users_template": true,
        "default_user": alias, "default_user_template": true,
        "default_extensions": { "login@example.com": alias }, "default_extensions_template": true,
    });
    let role_file = dir.path().join("role.json");
    std::fs::write(&role_file, role.to_string()).unwrap();
    t.ok(&["write", "ssh/roles/tpl", &format!("@{}", role_file.display())]);
    let read = t.data(&["read", "ssh/roles/tpl"]);
    assert_eq!(read["allowed_users_template"], true, "{}", t.name);
    assert_eq!(read["default_user"], serde_json::json!(alias), "{}: the template is stored as written", t.name);

    let login = cli(t.bao, &t.addr, None, &["login", "-method=userpass", "-token-only", "username=bob", "password=pw"]);
    assert!(login.status.success(), "{}", out(&login));
    let bob = String::from_utf8_lossy(&login.stdout).trim().to_string();
    let as_bob = |args: &[&str]| cli(t.bao, &t.addr, Some(&bob), args);
    let o = as_bob(&["write", "-field=signed_key", "ssh/sign/tpl", &format!("public_key=@{key}.pub")]);
    assert!(o.status.success(), "{}: {}", t.name, out(&o));
    let cert = dir.path().join("tpl-cert.pub");
    std::fs::write(&cert, String::from_utf8_lossy(&o.stdout).trim()).unwrap();
    let shown = Command::new("ssh-keygen").arg("-Lf").arg(&cert).output().unwrap();
    let shown = String::from_utf8_lossy(&shown.stdout).to_string();
    let principals: Vec<&str> = shown
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("Principals:"))
        .skip(1)
        .take_while(|l| !l.trim_start().starts_with("Critical Options:"))
        .map(str::trim)
        .collect();
    assert_eq!(principals, ["bob"], "{}: the default user rendered from the entity:\n{shown}", t.name);
    assert!(shown.contains("login@example.com"), "{}: the templated extension:\n{shown}", t.name);
    assert!(shown.contains("Key ID: \"vault-userpass-bob-"), "{}: the caller's display name:\n{shown}", t.name);
    // Another user's name is not bob's to ask for; the untemplated entry still is.
    let o = as_bob(&["write", "ssh/sign/tpl", &format!("public_key=@{key}.pub"), "valid_principals=alice"]);
    assert!(out(&o).contains("alice is not a valid value for valid_principals"), "{}: {}", t.name, out(&o));
    let o = as_bob(&["write", "ssh/sign/tpl", &format!("public_key=@{key}.pub"), "valid_principals=static"]);
    assert!(o.status.success(), "{}: {}", t.name, out(&o));
    shown
}

#[test]
fn ssh_role_identity_templates_render_from_the_callers_entity_on_coffer_and_openbao() {
    let Some(bao) = bao_path() else { return };
    let server = Server::start_dev("root");
    let coffer = Target { name: "coffer", bao: &bao, addr: server.addr.clone() };
    templates_flow(&coffer);
    // Coffer only: the root token has no entity, so the templated default renders to nothing
    // and no principal is given (OpenBao signs the unrendered template text as the principal).
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "root");
    coffer.refused(&["write", "ssh/sign/tpl", &format!("public_key=@{key}.pub")], "no entity: no default principal");
    // Coffer only: a template naming an unknown parameter is refused when the role is written
    // (OpenBao 2.7 stores it and signs its text unrendered).
    coffer.refused(
        &[
            "write",
            "ssh/roles/bad",
            "key_type=ca",
            "allow_user_certificates=true",
            "allowed_users={{identity.entity.nope}}",
            "allowed_users_template=true",
        ],
        "an unknown template parameter",
    );
    let real = RealBao::start(&bao);
    templates_flow(&Target { name: "openbao", bao: &bao, addr: real.addr.clone() });
}
