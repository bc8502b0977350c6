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
    // A second CA key: OpenBao 2.x adds it as another issuer; Coffer has one key per mount and
    // refuses (docs/ssh.md).
    let o = t.run(&["write", "ssh-client-signer/config/ca", "generate_signing_key=true", "key_type=ssh-ed25519"]);
    match t.name {
        "coffer" => assert!(o.status.code() == Some(2) && out(&o).contains("already configured"), "{}", out(&o)),
        _ => assert!(o.status.success(), "{}: {}", t.name, out(&o)),
    }
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

fn issuers_flow(t: &Target) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    t.ok(&["secrets", "enable", "ssh"]);
    let first = t.data(&["write", "ssh/config/ca", "key_type=ssh-ed25519"]);
    let second = t.data(&["write", "ssh/issuers/import/second", "generate_signing_key=true", "key_type=ssh-ed25519"]);
    assert_eq!(second["issuer_name"], "second", "{}: {second}", t.name);
    let (_, list) = http(&t.addr, "GET", "/v1/ssh/issuers?list=true", &[("X-Vault-Token", "root")], b"");
    let list = json(&list)["data"].clone();
    assert_eq!(list["keys"].as_array().map(Vec::len), Some(2), "{}: {list}", t.name);
    let sid = s_(&second["issuer_id"]);
    assert_eq!(list["key_info"][&sid]["is_default"], false, "{}: the first key stays the default: {list}", t.name);
    let (st, body) = http(&t.addr, "GET", "/v1/ssh/issuer/second/public_key", &[], b"");
    assert_eq!((st, body.trim()), (200, s_(&second["public_key"]).trim()), "{}: no token needed", t.name);
    let read = t.data(&["read", "ssh/issuer/second"]);
    assert_eq!(read["issuer_id"], second["issuer_id"], "{}: {read}", t.name);
    t.refused(&["write", "ssh/issuers/import/third", "private_key=not a key"], "a private key that is not one");

    // A role naming the second issuer: its certificates are signed by the second key.
    t.ok(&[
        "write",
        "ssh/roles/u",
        "key_type=ca",
        "allow_user_certificates=true",
        "allowed_users=*",
        "issuer_ref=second",
    ]);
    assert_eq!(t.data(&["read", "ssh/roles/u"])["issuer_ref"], "second", "{}", t.name);
    let user = keygen(d, "user");
    let signed = t.data(&["write", "ssh/sign/u", &format!("public_key=@{user}.pub"), "valid_principals=alice"]);
    let cert = format!("{user}-cert.pub");
    std::fs::write(&cert, s_(&signed["signed_key"])).unwrap();
    let o = Command::new("ssh-keygen").args(["-L", "-f", &cert]).output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    let fp2 = fingerprint(d, "second.pub", &s_(&second["public_key"]));
    let fp1 = fingerprint(d, "first.pub", &s_(&first["public_key"]));
    assert!(!fp2.is_empty() && text.contains(&fp2) && !text.contains(&fp1), "{}: signed by second: {text}", t.name);

    // The default issuer moves: public_key follows it.
    t.ok(&["write", "ssh/config/issuers", "default=second"]);
    let (_, body) = http(&t.addr, "GET", "/v1/ssh/public_key", &[], b"");
    assert_eq!(body.trim(), s_(&second["public_key"]).trim(), "{}: public_key is the default issuer's", t.name);
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
