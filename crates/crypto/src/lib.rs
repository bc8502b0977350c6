//! Cryptographic building blocks for Coffer, all from well-kept crates:
//! AES-256-GCM and random from aws-lc-rs, Shamir secret sharing over GF(256) from vsss-rs,
//! constant-time comparison from subtle. Nothing here is hand-rolled cryptography.
#![forbid(unsafe_code)]

mod aead;
mod shamir;

pub use aead::{open, random_bytes, seal, Cipher, Key, KEY_LEN, NONCE_LEN};
pub use shamir::{combine, split};

use zeroize::Zeroizing;

/// Errors from the crypto layer. They never carry key material.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CryptoError {
    #[error("message authentication failed")]
    Authentication,
    #[error("ciphertext is too short")]
    Truncated,
    #[error("invalid key length: expected {expected} bytes, got {got}")]
    KeyLength { expected: usize, got: usize },
    #[error("{0}")]
    Shamir(String),
    #[error("random number generator failed")]
    Random(#[source] aws_lc_rs::error::Unspecified),
    #[error("encryption failed")]
    Encrypt(#[source] aws_lc_rs::error::Unspecified),
}

/// Constant-time equality for secrets (tokens, keys, digests).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// SHA-256 of the input.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// An HMAC-SHA-256 key prepared once (the inner and outer pads computed up front), for hot
/// paths such as hashing every request's token.
pub struct HmacKey(aws_lc_rs::hmac::Key);

impl std::fmt::Debug for HmacKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HmacKey(<redacted>)")
    }
}

impl HmacKey {
    pub fn new(key: &[u8]) -> Self {
        HmacKey(aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key))
    }

    pub fn sign(&self, data: &[u8]) -> [u8; 32] {
        let tag = aws_lc_rs::hmac::sign(&self.0, data);
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }
}

/// A digest by Vault's algorithm name (`sha2-256`, `sha3-512`, …); None for unknown names.
pub fn digest(algorithm: &str, data: &[u8]) -> Option<Vec<u8>> {
    use aws_lc_rs::digest as d;
    let alg = match algorithm {
        "sha2-224" => &d::SHA224,
        "sha2-256" => &d::SHA256,
        "sha2-384" => &d::SHA384,
        "sha2-512" => &d::SHA512,
        "sha3-256" => &d::SHA3_256,
        "sha3-384" => &d::SHA3_384,
        "sha3-512" => &d::SHA3_512,
        _ => return None,
    };
    Some(d::digest(alg, data).as_ref().to_vec())
}

/// HMAC-SHA-256 of `data` under `key`.
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let k = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key);
    let tag = aws_lc_rs::hmac::sign(&k, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(tag.as_ref());
    out
}

/// Decodes a key given by a user the way Vault does: hex when it decodes to a plausible key
/// length (`min..=max` bytes), otherwise standard base64.
pub fn decode_key_input(s: &str, min: usize, max: usize) -> Option<Zeroizing<Vec<u8>>> {
    use base64::Engine;
    let s = s.trim();
    if let Ok(b) = hex::decode(s) {
        if (min..=max).contains(&b.len()) {
            return Some(Zeroizing::new(b));
        }
    }
    base64::engine::general_purpose::STANDARD.decode(s).ok().filter(|b| !b.is_empty()).map(Zeroizing::new)
}

/// Random alphanumeric (base62) string of `len` characters, unbiased.
pub fn random_base62(len: usize) -> Result<String, CryptoError> {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut out = String::with_capacity(len);
    while out.len() < len {
        let buf = random_bytes(len * 2)?;
        for b in buf.iter() {
            // 248 = 62 * 4: reject above to keep the distribution uniform.
            if *b < 248 {
                out.push(ALPHABET[(*b % 62) as usize] as char);
                if out.len() == len {
                    break;
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ct_eq_compares_content_and_length() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"abcd"));
    }

    #[test]
    fn prepared_hmac_key_matches_one_shot_hmac() {
        assert_eq!(HmacKey::new(b"salt").sign(b"token"), hmac_sha256(b"salt", b"token"));
    }

    #[test]
    fn base62_has_requested_length_and_alphabet() {
        let s = random_base62(24).unwrap();
        assert_eq!(s.len(), 24);
        assert!(s.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(s, random_base62(24).unwrap());
    }

    #[test]
    fn key_input_accepts_base64_and_hex() {
        assert_eq!(&**decode_key_input("AAEC", 3, 3).unwrap(), &[0u8, 1, 2]);
        assert_eq!(&**decode_key_input("0a0b0c", 1, 3).unwrap(), &[10u8, 11, 12]);
        // Valid hex of an implausible length falls back to base64.
        assert_eq!(decode_key_input("0a0b", 3, 3).unwrap().len(), 3);
        assert!(decode_key_input("not a key!", 1, 64).is_none());
    }
}
