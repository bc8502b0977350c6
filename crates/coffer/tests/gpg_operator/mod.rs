//! Operators with real GnuPG keys, for the PGP share tests (crates/coffer/tests/pgp_shares.rs,
//! spawned servers and CLIs; crates/testing/tests/api/pgp_shares.rs, in-process): throwaway
//! keys made by `gpg --quick-gen-key`, each operator in a GnuPG home of their own.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// One operator's GnuPG home with one key pair.
pub struct Operator {
    pub home: tempfile::TempDir,
    pub fingerprint: String,
    /// base64 of the binary public key, as `pgp_keys` takes it.
    pub b64: String,
    /// The public key exported in binary and armored form.
    pub binary_file: PathBuf,
    pub armored_file: PathBuf,
}

pub fn gpg(home: &Path, args: &[&str], stdin: Option<&[u8]>) -> std::process::Output {
    let mut c = Command::new("gpg");
    c.env("GNUPGHOME", home)
        .args(["--batch", "--no-tty", "--quiet", "--pinentry-mode", "loopback", "--passphrase", ""])
        .args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("gpg must be installed (Debian package gnupg; scripts/test installs it)");
    if let Some(input) = stdin {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(input).unwrap();
    }
    child.wait_with_output().unwrap()
}

pub fn gpg_ok(home: &Path, args: &[&str]) -> String {
    let o = gpg(home, args, None);
    assert!(o.status.success(), "gpg {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// The kinds of key an operator may bring.
#[derive(Clone, Copy)]
pub enum Kind {
    /// RSA primary key (sign, certify) with an RSA encryption subkey.
    RsaSubkey,
    /// Ed25519 primary with a Curve25519 (ECDH) encryption subkey: gpg's `future-default`.
    Curve25519,
    /// A single RSA key that signs and encrypts (no subkey).
    RsaPrimaryEncrypts,
    /// A single RSA key that only signs: nothing to encrypt to.
    RsaSignOnly,
    /// Made in 2020 with a Curve25519 encryption subkey that expired a day later.
    ExpiredSubkey,
    /// A Curve25519 key whose primary key carries its revocation.
    Revoked,
}

impl Operator {
    pub fn new(name: &str, kind: Kind) -> Operator {
        let home = tempfile::Builder::new().prefix("gpg").tempdir_in("/tmp").unwrap();
        let uid = format!("{name} <{name}@example.com>");
        match kind {
            Kind::RsaSubkey => {
                gpg_ok(home.path(), &["--quick-gen-key", &uid, "rsa2048", "sign,cert", "never"]);
            }
            Kind::Curve25519 => {
                gpg_ok(home.path(), &["--quick-gen-key", &uid, "future-default", "default", "never"]);
            }
            Kind::RsaPrimaryEncrypts => {
                gpg_ok(home.path(), &["--quick-gen-key", &uid, "rsa2048", "sign,cert,encr", "never"]);
            }
            Kind::RsaSignOnly => {
                gpg_ok(home.path(), &["--quick-gen-key", &uid, "rsa2048", "sign,cert", "never"]);
            }
            Kind::ExpiredSubkey => {
                let then = ["--faked-system-time", "20200101T000000"];
                gpg_ok(home.path(), &[&then[..], &["--quick-gen-key", &uid, "ed25519", "sign,cert", "never"]].concat());
            }
            Kind::Revoked => {
                gpg_ok(home.path(), &["--quick-gen-key", &uid, "future-default", "default", "never"]);
            }
        }
        let listing = gpg_ok(home.path(), &["--with-colons", "--list-keys", &uid]);
        let fingerprint = listing
            .lines()
            .find(|l| l.starts_with("fpr:"))
            .and_then(|l| l.split(':').nth(9))
            .unwrap()
            .to_ascii_lowercase();
        match kind {
            Kind::RsaSubkey => {
                gpg_ok(home.path(), &["--quick-add-key", &fingerprint, "rsa2048", "encr", "never"]);
            }
            Kind::ExpiredSubkey => {
                gpg_ok(
                    home.path(),
                    &[
                        "--faked-system-time",
                        "20200101T000000",
                        "--quick-add-key",
                        &fingerprint,
                        "cv25519",
                        "encr",
                        "1d",
                    ],
                );
            }
            Kind::Revoked => {
                // gpg keeps a revocation certificate for every new key, each line guarded by ':'.
                let cert = home.path().join("openpgp-revocs.d").join(format!("{}.rev", fingerprint.to_uppercase()));
                let text = std::fs::read_to_string(&cert).unwrap();
                let unguarded: String = text.lines().map(|l| format!("{}\n", l.trim_start_matches(':'))).collect();
                let o = gpg(home.path(), &["--import"], Some(unguarded.as_bytes()));
                assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            }
            _ => {}
        }
        let binary = gpg(home.path(), &["--export", &fingerprint], None).stdout;
        assert!(!binary.is_empty());
        let armored = gpg(home.path(), &["--armor", "--export", &fingerprint], None).stdout;
        let binary_file = home.path().join(format!("{name}.gpg"));
        let armored_file = home.path().join(format!("{name}.asc"));
        std::fs::write(&binary_file, &binary).unwrap();
        std::fs::write(&armored_file, &armored).unwrap();
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode(&binary);
        Operator { home, fingerprint, b64, binary_file, armored_file }
    }

    /// `base64 -d | gpg --decrypt`: what an operator does with what they were handed.
    pub fn decrypt_b64(&self, b64: &str) -> Result<String, String> {
        use base64::Engine;
        let msg = base64::engine::general_purpose::STANDARD.decode(b64.trim()).map_err(|e| e.to_string())?;
        let o = gpg(self.home.path(), &["--decrypt"], Some(&msg));
        if o.status.success() {
            Ok(String::from_utf8(o.stdout).unwrap())
        } else {
            Err(String::from_utf8_lossy(&o.stderr).to_string())
        }
    }

    pub fn decrypt(&self, b64: &str) -> String {
        self.decrypt_b64(b64).unwrap_or_else(|e| panic!("gpg could not decrypt for {}: {e}", self.fingerprint))
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        // The gpg-agent this home started.
        let _ = Command::new("gpgconf")
            .env("GNUPGHOME", self.home.path())
            .args(["--kill", "all"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
