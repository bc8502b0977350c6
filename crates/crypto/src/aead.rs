//! AES-256-GCM with random 96-bit nonces (aws-lc-rs).

use crate::CryptoError;
use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

pub const KEY_LEN: usize = 32;
pub const NONCE_LEN: usize = 12;

/// A 256-bit symmetric key, zeroized on drop and never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Key([u8; KEY_LEN]);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(<redacted>)")
    }
}

impl Key {
    pub fn generate() -> Result<Self, CryptoError> {
        let mut k = [0u8; KEY_LEN];
        aws_lc_rs::rand::fill(&mut k).map_err(CryptoError::Random)?;
        Ok(Key(k))
    }

    pub fn from_slice(b: &[u8]) -> Result<Self, CryptoError> {
        if b.len() != KEY_LEN {
            return Err(CryptoError::KeyLength { expected: KEY_LEN, got: b.len() });
        }
        let mut k = [0u8; KEY_LEN];
        k.copy_from_slice(b);
        Ok(Key(k))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// Random bytes from the system CSPRNG.
pub fn random_bytes(n: usize) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let mut v = Zeroizing::new(vec![0u8; n]);
    aws_lc_rs::rand::fill(&mut v).map_err(CryptoError::Random)?;
    Ok(v)
}

fn less_safe(key: &Key) -> LessSafeKey {
    // The key length is fixed by the type, so construction cannot fail.
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key.0).expect("32-byte AES key"))
}

/// A key prepared for use (AES key schedule and GHASH tables computed once), for keys used
/// on every request such as the barrier's. Holds the expanded key: keep it no longer than the
/// key itself.
pub struct Cipher(LessSafeKey);

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cipher(<redacted>)")
    }
}

impl Cipher {
    pub fn new(key: &Key) -> Self {
        Cipher(less_safe(key))
    }

    /// Encrypts `plaintext`, binding `aad`. Output: nonce || ciphertext || tag.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).map_err(CryptoError::Random)?;
        let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + 16);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plaintext);
        let tag = self
            .0
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut out[NONCE_LEN..])
            .map_err(CryptoError::Encrypt)?;
        out.extend_from_slice(tag.as_ref());
        Ok(out)
    }

    /// Decrypts the output of [`Cipher::seal`] (or [`seal`]) under the same `aad`.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        if sealed.len() < NONCE_LEN + 16 {
            return Err(CryptoError::Truncated);
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&sealed[..NONCE_LEN]);
        let mut buf = Zeroizing::new(sealed[NONCE_LEN..].to_vec());
        let n = self
            .0
            .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut buf)
            // drop-cause: a failed open is opaque on purpose (no oracle); aws-lc says no more anyway.
            .map_err(|_| CryptoError::Authentication)?
            .len();
        buf.truncate(n);
        Ok(buf)
    }
}

/// Encrypts `plaintext`, binding `aad`. Output: nonce || ciphertext || tag.
pub fn seal(key: &Key, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
    Cipher::new(key).seal(aad, plaintext)
}

/// Decrypts the output of [`seal`] under the same `aad`.
pub fn open(key: &Key, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    Cipher::new(key).open(aad, sealed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper_detection() {
        let k = Key::generate().unwrap();
        let ct = seal(&k, b"path", b"secret").unwrap();
        assert_eq!(&**open(&k, b"path", &ct).unwrap(), b"secret");
        assert_eq!(open(&k, b"other", &ct), Err(CryptoError::Authentication));
        let mut bad = ct.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert_eq!(open(&k, b"path", &bad), Err(CryptoError::Authentication));
        assert_eq!(open(&k, b"path", &ct[..5]), Err(CryptoError::Truncated));
        let k2 = Key::generate().unwrap();
        assert_eq!(open(&k2, b"path", &ct), Err(CryptoError::Authentication));
    }

    #[test]
    fn debug_does_not_print_key() {
        let k = Key::from_slice(&[7u8; 32]).unwrap();
        assert_eq!(format!("{k:?}"), "Key(<redacted>)");
    }
}
