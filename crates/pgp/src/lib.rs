//! OpenPGP for the operator ceremonies: key shares, recovery shares and root tokens encrypted
//! to the operators' public keys, so that only the holder of the matching private key (with
//! `gpg --decrypt`) can read them. Built on rpgp (`pgp`, pure Rust; decision 0015).
//!
//! A public key arrives as base64 of the binary (not armored) OpenPGP certificate, as Vault's
//! `pgp_keys` carry it. [`PublicKey::parse_base64`] checks it once, up front, and picks the key
//! that encrypts: the newest valid subkey flagged for encryption, else the primary key when it
//! is flagged (or, unflagged, its algorithm can encrypt). [`PublicKey::encrypt`] makes a binary
//! OpenPGP message (PKESK v3 + SEIPD v1 with AES-256), which GnuPG 2.2 and later decrypt.
#![forbid(unsafe_code)]

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use pgp::composed::{Deserializable, MessageBuilder, SignedPublicKey};
use pgp::crypto::sym::SymmetricKeyAlgorithm;
use pgp::packet::{Signature, SignatureType};
use pgp::types::KeyDetails;
use rand::rngs::OsRng;

/// Why a public key cannot be used, or encryption failed. Messages name the problem and never
/// carry plaintext.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PgpError {
    #[error("error decoding given PGP key: {0}")]
    Decode(String),
    #[error("error parsing given PGP key: {0}")]
    Parse(String),
    #[error("cannot encrypt to the PGP key {0}: it has no valid encryption key (subkey)")]
    NoEncryptionKey(String),
    #[error("PGP encryption failed: {0}")]
    Encrypt(String),
}

/// Which key of the certificate encrypts.
#[derive(Clone, Copy)]
enum Recipient {
    Primary,
    Subkey(usize),
}

/// An operator's OpenPGP public key, checked and ready to encrypt to.
#[derive(Clone)]
pub struct PublicKey {
    cert: SignedPublicKey,
    recipient: Recipient,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublicKey").field("fingerprint", &self.fingerprint()).finish()
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Whether a key created at `created` with the expiry of `sig` has expired.
fn expired(created: u32, sig: &Signature, now: u64) -> bool {
    match sig.key_expiration_time() {
        Some(d) if d.as_secs() > 0 => u64::from(created) + u64::from(d.as_secs()) <= now,
        _ => false,
    }
}

fn sig_created(sig: &Signature) -> u32 {
    sig.created().map(|t| t.as_secs()).unwrap_or(0)
}

impl PublicKey {
    /// Parses base64 of a binary OpenPGP public key (certificate) and picks its encryption key.
    pub fn parse_base64(b64: &str) -> Result<Self, PgpError> {
        let compact: String = b64.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        let raw = B64.decode(compact.as_bytes()).map_err(|e| PgpError::Decode(e.to_string()))?;
        Self::parse_bytes(&raw)
    }

    /// Parses a binary OpenPGP public key (certificate) and picks its encryption key.
    pub fn parse_bytes(raw: &[u8]) -> Result<Self, PgpError> {
        if raw.is_empty() {
            return Err(PgpError::Parse("the key is empty".into()));
        }
        // An OpenPGP packet's first byte always has its high bit set; checking it first gives a
        // clear message for text, JSON or armor sent where the binary key belongs.
        if raw[0] & 0x80 == 0 {
            let hint = if raw.starts_with(b"-----BEGIN") {
                "it is ASCII-armored; send base64 of the binary key (gpg --export KEY | base64)"
            } else {
                "it is not an OpenPGP public key (the first packet tag byte does not have its high bit set)"
            };
            return Err(PgpError::Parse(hint.into()));
        }
        // Operators' input reaches the parser unauthenticated (sys/init): a parser bug must end
        // as a refused key, not a dropped connection.
        let parsed = std::panic::catch_unwind(|| SignedPublicKey::from_bytes(raw))
            // drop-cause: a panic payload is no error value; the panic hook has reported it.
            .map_err(|_| PgpError::Parse("the key could not be parsed".into()))?;
        let cert = parsed.map_err(|e| PgpError::Parse(e.to_string()))?;
        let recipient = pick_recipient(&cert, now_secs())
            .ok_or_else(|| PgpError::NoEncryptionKey(hex::encode(cert.fingerprint().as_bytes())))?;
        Ok(PublicKey { cert, recipient })
    }

    /// The primary key's fingerprint in lower-case hex, as Vault reports `pgp_fingerprints`.
    pub fn fingerprint(&self) -> String {
        hex::encode(self.cert.fingerprint().as_bytes())
    }

    /// Encrypts `plaintext` to this key: a binary OpenPGP message.
    pub fn encrypt(&self, plaintext: &[u8]) -> Result<Vec<u8>, PgpError> {
        let mut rng = OsRng;
        let mut builder =
            MessageBuilder::from_bytes("", plaintext.to_vec()).seipd_v1(rng, SymmetricKeyAlgorithm::AES256);
        let added = match self.recipient {
            Recipient::Primary => builder.encrypt_to_key(&mut rng, &self.cert.primary_key).map(|_| ()),
            Recipient::Subkey(i) => builder.encrypt_to_key(&mut rng, &self.cert.public_subkeys[i].key).map(|_| ()),
        };
        added.map_err(|e| PgpError::Encrypt(e.to_string()))?;
        builder.to_vec(rng).map_err(|e| PgpError::Encrypt(e.to_string()))
    }

    /// [`encrypt`](Self::encrypt), base64-encoded.
    pub fn encrypt_base64(&self, plaintext: &[u8]) -> Result<String, PgpError> {
        Ok(B64.encode(self.encrypt(plaintext)?))
    }
}

/// Parses every key of `keys` (base64), in order; the error names the position of a bad key.
pub fn parse_keys(keys: &[String]) -> Result<Vec<PublicKey>, PgpError> {
    keys.iter()
        .enumerate()
        .map(|(i, k)| {
            PublicKey::parse_base64(k).map_err(|e| match e {
                PgpError::Decode(m) => PgpError::Decode(format!("key {}: {m}", i + 1)),
                PgpError::Parse(m) => PgpError::Parse(format!("key {}: {m}", i + 1)),
                other => other,
            })
        })
        .collect()
}

/// The newest valid encryption subkey, else the primary key if it may encrypt.
fn pick_recipient(cert: &SignedPublicKey, now: u64) -> Option<Recipient> {
    if cert.details.revocation_signatures.iter().any(|s| s.verify_key(&cert.primary_key).is_ok()) {
        return None;
    }
    let mut best: Option<(u32, usize)> = None;
    for (i, sub) in cert.public_subkeys.iter().enumerate() {
        if !sub.key.algorithm().can_encrypt() {
            continue;
        }
        let valid = |s: &&Signature| s.verify_subkey_binding(&cert.primary_key, &sub.key).is_ok();
        let revoked = sub.signatures.iter().filter(valid).any(|s| s.typ() == Some(SignatureType::SubkeyRevocation));
        if revoked {
            continue;
        }
        let Some(binding) = sub
            .signatures
            .iter()
            .filter(valid)
            .filter(|s| s.typ() == Some(SignatureType::SubkeyBinding))
            .max_by_key(|s| sig_created(s))
        else {
            continue;
        };
        let flags = binding.key_flags();
        if !(flags.encrypt_comms() || flags.encrypt_storage()) {
            continue;
        }
        let created = sub.key.created_at().as_secs();
        if expired(created, binding, now) {
            continue;
        }
        if best.is_none_or(|(c, _)| created > c) {
            best = Some((created, i));
        }
    }
    if let Some((_, i)) = best {
        return Some(Recipient::Subkey(i));
    }
    // The primary key: its flags and expiry are on the newest valid self-certification.
    if !cert.primary_key.algorithm().can_encrypt() {
        return None;
    }
    let self_sig = cert
        .details
        .users
        .iter()
        .flat_map(|u| u.signatures.iter().map(move |s| (u, s)))
        .filter(|(u, s)| {
            s.is_certification() && s.verify_certification(&cert.primary_key, pgp::types::Tag::UserId, &u.id).is_ok()
        })
        .map(|(_, s)| s)
        .max_by_key(|s| sig_created(s))?;
    let flags = self_sig.key_flags();
    let flagged = flags.encrypt_comms() || flags.encrypt_storage();
    let unflagged = !(flags.certify() || flags.sign() || flags.authentication() || flagged);
    if (flagged || unflagged) && !expired(cert.primary_key.created_at().as_secs(), self_sig, now) {
        Some(Recipient::Primary)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `gpg --quick-gen-key 'Carol <carol@example.com>' future-default`, exported: Ed25519
    /// primary 32E9…EA63, Curve25519 encryption subkey EA2D6C77E0CE7366.
    const CAROL: &str = "mDMEaxYKihYJKwYBBAHaRw8BAQdAA++FkPgEvuxMAFKMg3IgFMskyXwGqppK7ynEYmTaQ5e0GUNhcm9sIDxjYXJvbEBleGFtcGxlLmNvbT6IkAQTFggAOBYhBDLp/+vnu49osmAdl+d7g6Du0OpjBQJrFgqKAhsDBQsJCAcCBhUKCQgLAgQWAgMBAh4BAheAAAoJEOd7g6Du0OpjUtoBANvt7h0J+ljf7mLONSlOpnCKugpFQwGuSFC8xko7M04kAP44Yz/PzEt/WabdB4u0+o5geVBe5KtQpIClqn7xbC5CBbg4BGsWCooSCisGAQQBl1UBBQEBB0AGCsOQuxkt0V/58XsZmTYEG/lbXcaAKp+gqmUa1IfZOQMBCAeIeAQYFggAIBYhBDLp/+vnu49osmAdl+d7g6Du0OpjBQJrFgqKAhsMAAoJEOd7g6Du0OpjBiQBAMEGlHb0gxeaqyHBq7ed5m7t0mohlcK0s39syu0NrOa2AQCpo8e0PujUnldnSLUJoKamIwH+DXfBVp3QS7pvMvHRBQ==";
    /// `gpg --quick-gen-key 'Alice <alice@example.com>' rsa2048`: one RSA key that signs and
    /// certifies, nothing that encrypts.
    const ALICE_SIGN_ONLY: &str = "mQENBGsWCooBCACpvtLdJon3zxVzJz4SL/I/PVhWNjaLxNEOfI9KY++L2xQ5RG81XOhzoCp4DF/eaiPuDB1CRkMO+yrGf+EBYOSembWkoyrd2h9qbRyIYOVCsT4mK5RMGh75460S6eP2u7InjT10msjoyzVxZ7VXL7Kau4TIE67e8aHsXa4cbLDyqEL1cDW5j8LtFIk4Ls0iyKul02cbTavcd7t2sdYpqprx/G+1VERTFSdeuRexDSU5xrwfLAURo8Z4LMYj298620gD+T0tfamEFkARRWZDGZXanzwZrkAI8Gb6lZ6aQQxAcWZLNTIxdhdWZ4kR5/XFqkVVJNHc+63PjQjcRtUGV+MZABEBAAG0GUFsaWNlIDxhbGljZUBleGFtcGxlLmNvbT6JAU4EEwEKADgWIQTTaz6h4WEU/sBYp2o/NlPAyfLg9QUCaxYKigIbAwULCQgHAgYVCgkICwIEFgIDAQIeAQIXgAAKCRA/NlPAyfLg9TMCCACocNsiyMtkesmA4qZGwa31W4L7kF/9A+Sg/Zy64JZLu2qms+1Wo0bxZxUedRNTsdeZpsnaY4QXRKDvkH1zia/Ser5MEANtktYk9q1tkXH8RK0cs+fCxwgwAnMdiGvlsH6oQPHn9lf73g3Gcb60LON8Oq3/OPPDmvgvMWcuozjnoc5xOEeO5Q1aI4O7XcoSAWVVoKEzsUWP4ny9g+p505EUB3A9983jGPMDmLcyumhxRDoclDIVlSFHFOo+ajjJlfEFeiAQ/babwK1rcJLyJevhkFc77uY9AgUeSlFSthQKN3TjaCNvaogVCgwKCz6R9v3+4hwNJId0kOLpuChEJ6tC";

    #[test]
    fn curve25519_key_encrypts_to_its_subkey_and_reports_the_primary_fingerprint() {
        let k = PublicKey::parse_base64(CAROL).unwrap();
        assert_eq!(k.fingerprint(), "32e9ffebe7bb8f68b2601d97e77b83a0eed0ea63");
        let msg = k.encrypt(b"share").unwrap();
        // A new-format PKESK packet (tag 1), version 3, to the subkey's key id, ECDH (18).
        assert_eq!(msg[0], 0xc1);
        let body = &msg[2..];
        assert_eq!(body[0], 3);
        assert_eq!(hex::encode(&body[1..9]), "ea2d6c77e0ce7366");
        assert_eq!(body[9], 18);
        assert!(!msg.windows(5).any(|w| w == b"share"), "the plaintext must not appear");
        assert_ne!(k.encrypt(b"share").unwrap(), msg, "a fresh session key each time");
    }

    #[test]
    fn sign_only_key_is_refused_naming_its_fingerprint() {
        let e = PublicKey::parse_base64(ALICE_SIGN_ONLY).unwrap_err();
        assert_eq!(e, PgpError::NoEncryptionKey("d36b3ea1e16114fec058a76a3f3653c0c9f2e0f5".into()));
    }

    #[test]
    fn truncated_or_altered_keys_are_refused_not_panicked_on() {
        let raw = B64.decode(CAROL).unwrap();
        for len in 0..raw.len() - 1 {
            assert!(PublicKey::parse_bytes(&raw[..len]).is_err(), "prefix {len} accepted");
        }
        for i in 0..raw.len() {
            let mut bad = raw.clone();
            bad[i] ^= 0x41;
            // Either refused, or (a flipped bit in an unsigned field) still a usable key.
            if let Ok(k) = PublicKey::parse_bytes(&bad) {
                k.encrypt(b"x").unwrap();
            }
        }
    }

    #[test]
    fn text_is_refused_as_not_openpgp() {
        let e = PublicKey::parse_base64(&B64.encode("hello")).unwrap_err();
        assert!(matches!(e, PgpError::Parse(ref m) if m.contains("not an OpenPGP public key")), "{e}");
    }

    #[test]
    fn armor_is_refused_with_a_hint() {
        let e = PublicKey::parse_base64(&B64.encode("-----BEGIN PGP PUBLIC KEY BLOCK-----\n")).unwrap_err();
        assert!(e.to_string().contains("ASCII-armored"), "{e}");
    }

    #[test]
    fn bad_base64_is_a_decode_error_naming_the_key() {
        let e = parse_keys(&["!!!".into()]).unwrap_err();
        assert!(matches!(e, PgpError::Decode(ref m) if m.starts_with("key 1:")), "{e}");
    }
}
