//! The cryptographic operations, all from aws-lc-rs except SHA-3 (RustCrypto `sha3`/`hmac`,
//! which aws-lc-rs does not offer for HMAC or at 224 bits). Byte layouts follow OpenBao's so
//! ciphertexts and signatures move between the two servers.

use crate::der;
use crate::keys::{curve, KeyEntry, KeyType, Secret};
use aws_lc_rs::{aead, digest, signature};
use coffer_sdk::{LogicalError, Result};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use zeroize::Zeroizing;

/// AEAD nonce length (96 bits for AES-GCM and ChaCha20-Poly1305).
pub const NONCE_LEN: usize = 12;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashAlg {
    Sha1,
    Sha2_224,
    Sha2_256,
    Sha2_384,
    Sha2_512,
    Sha3_224,
    Sha3_256,
    Sha3_384,
    Sha3_512,
    /// Signing only: the input is used as is (RSA PKCS#1 v1.5 without a DigestInfo).
    None,
}

impl HashAlg {
    pub fn parse(s: &str) -> Option<HashAlg> {
        Some(match s {
            "sha1" => HashAlg::Sha1,
            "sha2-224" => HashAlg::Sha2_224,
            "sha2-256" => HashAlg::Sha2_256,
            "sha2-384" => HashAlg::Sha2_384,
            "sha2-512" => HashAlg::Sha2_512,
            "sha3-224" => HashAlg::Sha3_224,
            "sha3-256" => HashAlg::Sha3_256,
            "sha3-384" => HashAlg::Sha3_384,
            "sha3-512" => HashAlg::Sha3_512,
            "none" => HashAlg::None,
            _ => return None,
        })
    }

    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        use sha3::Digest;
        let aws = |alg: &'static digest::Algorithm| digest::digest(alg, data).as_ref().to_vec();
        match self {
            HashAlg::Sha1 => aws(&digest::SHA1_FOR_LEGACY_USE_ONLY),
            HashAlg::Sha2_224 => aws(&digest::SHA224),
            HashAlg::Sha2_256 => aws(&digest::SHA256),
            HashAlg::Sha2_384 => aws(&digest::SHA384),
            HashAlg::Sha2_512 => aws(&digest::SHA512),
            HashAlg::Sha3_224 => sha3::Sha3_224::digest(data).to_vec(),
            HashAlg::Sha3_256 => sha3::Sha3_256::digest(data).to_vec(),
            HashAlg::Sha3_384 => sha3::Sha3_384::digest(data).to_vec(),
            HashAlg::Sha3_512 => sha3::Sha3_512::digest(data).to_vec(),
            HashAlg::None => data.to_vec(),
        }
    }

    /// HMAC of `data` under `key`; `None` for the pseudo-algorithm `none`.
    pub fn hmac(self, key: &[u8], data: &[u8]) -> Option<Vec<u8>> {
        use aws_lc_rs::hmac as h;
        use hmac::Mac;
        let aws = |alg: h::Algorithm| h::sign(&h::Key::new(alg, key), data).as_ref().to_vec();
        macro_rules! rc {
            ($t:ty) => {{
                let mut m = <hmac::Hmac<$t> as Mac>::new_from_slice(key).ok()?;
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }};
        }
        Some(match self {
            HashAlg::Sha1 => aws(h::HMAC_SHA1_FOR_LEGACY_USE_ONLY),
            HashAlg::Sha2_224 => aws(h::HMAC_SHA224),
            HashAlg::Sha2_256 => aws(h::HMAC_SHA256),
            HashAlg::Sha2_384 => aws(h::HMAC_SHA384),
            HashAlg::Sha2_512 => aws(h::HMAC_SHA512),
            HashAlg::Sha3_224 => rc!(sha3::Sha3_224),
            HashAlg::Sha3_256 => rc!(sha3::Sha3_256),
            HashAlg::Sha3_384 => rc!(sha3::Sha3_384),
            HashAlg::Sha3_512 => rc!(sha3::Sha3_512),
            HashAlg::None => return None,
        })
    }

    /// The aws-lc-rs digest for RSA signatures (SHA-2 256/384/512 only).
    fn rsa_digest(self) -> Option<&'static digest::Algorithm> {
        match self {
            HashAlg::Sha2_256 => Some(&digest::SHA256),
            HashAlg::Sha2_384 => Some(&digest::SHA384),
            HashAlg::Sha2_512 => Some(&digest::SHA512),
            _ => None,
        }
    }
}

fn aead_alg(t: KeyType) -> &'static aead::Algorithm {
    match t {
        KeyType::Aes128Gcm96 => &aead::AES_128_GCM,
        KeyType::ChaCha20Poly1305 => &aead::CHACHA20_POLY1305,
        _ => &aead::AES_256_GCM,
    }
}

fn aead_key(t: KeyType, key: &[u8]) -> Result<aead::LessSafeKey> {
    let unbound = aead::UnboundKey::new(aead_alg(t), key)
        .map_err(|cause| LogicalError::internal("could not derive enc key, length not correct").with_source(cause))?;
    Ok(aead::LessSafeKey::new(unbound))
}

/// Seals `plaintext`; the output is nonce || ciphertext || tag, as OpenBao lays it out.
pub fn aead_seal(t: KeyType, key: &[u8], nonce: &[u8], plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
    let k = aead_key(t, key)?;
    let n = aead::Nonce::try_assume_unique_for_key(nonce)
        .map_err(|cause| LogicalError::internal("bad nonce length").with_source(cause))?;
    let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + 16);
    out.extend_from_slice(nonce);
    let mut body = plaintext.to_vec();
    k.seal_in_place_append_tag(n, aead::Aad::from(aad), &mut body)
        .map_err(|cause| LogicalError::internal("encryption failed").with_source(cause))?;
    out.extend_from_slice(&body);
    Ok(out)
}

/// Opens nonce || ciphertext || tag. Errors carry Go's wording.
pub fn aead_open(t: KeyType, key: &[u8], data: &[u8], aad: &[u8]) -> Result<Secret> {
    if data.len() < NONCE_LEN {
        return Err(LogicalError::bad_request("invalid ciphertext length"));
    }
    let k = aead_key(t, key)?;
    let n = aead::Nonce::try_assume_unique_for_key(&data[..NONCE_LEN])
        .map_err(|cause| LogicalError::internal("bad nonce length").with_source(cause))?;
    let mut body = Zeroizing::new(data[NONCE_LEN..].to_vec());
    let failed = || {
        LogicalError::bad_request(if t == KeyType::ChaCha20Poly1305 {
            "chacha20poly1305: message authentication failed"
        } else {
            "cipher: message authentication failed"
        })
    };
    // drop-cause: a failed open is opaque on purpose (no decryption oracle).
    let len = k.open_in_place(n, aead::Aad::from(aad), &mut body).map_err(|_| failed())?.len();
    body.truncate(len);
    Ok(body)
}

/// The convergent nonce: HMAC-SHA256(hmac key, plaintext), first 12 bytes.
pub fn convergent_nonce(hmac_key: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let k = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, hmac_key);
    aws_lc_rs::hmac::sign(&k, plaintext).as_ref()[..NONCE_LEN].to_vec()
}

/// RSA-OAEP with SHA-256 and MGF1-SHA-256, no label.
pub fn rsa_encrypt(e: &KeyEntry, plaintext: &[u8]) -> Result<Vec<u8>> {
    use aws_lc_rs::rsa::{OaepPublicEncryptingKey, PublicEncryptingKey, OAEP_SHA256_MGF1SHA256};
    let spki = e.rsa_spki()?;
    let pk = PublicEncryptingKey::from_der(&spki)
        .map_err(|cause| LogicalError::internal("stored RSA key is invalid").with_source(cause))?;
    let oaep = OaepPublicEncryptingKey::new(pk)
        .map_err(|cause| LogicalError::internal("stored RSA key is invalid").with_source(cause))?;
    if plaintext.len() > oaep.max_plaintext_size(&OAEP_SHA256_MGF1SHA256) {
        return Err(LogicalError::bad_request(
            "failed to RSA encrypt the plaintext: crypto/rsa: message too long for RSA key size",
        ));
    }
    let mut out = vec![0u8; oaep.ciphertext_size()];
    let n = oaep
        .encrypt(&OAEP_SHA256_MGF1SHA256, plaintext, &mut out, None)
        .map_err(|cause| LogicalError::internal("failed to RSA encrypt the plaintext").with_source(cause))?
        .len();
    out.truncate(n);
    Ok(out)
}

pub fn rsa_decrypt(e: &KeyEntry, ciphertext: &[u8]) -> Result<Secret> {
    use aws_lc_rs::rsa::{OaepPrivateDecryptingKey, PrivateDecryptingKey, OAEP_SHA256_MGF1SHA256};
    let pkcs1 = e.rsa.as_ref().ok_or_else(|| {
        LogicalError::bad_request("cannot decrypt ciphertext, key version does not have a private counterpart")
    })?;
    let sk = PrivateDecryptingKey::from_pkcs8(&der::rsa_pkcs8(pkcs1))
        .map_err(|cause| LogicalError::internal("stored RSA key is invalid").with_source(cause))?;
    let oaep = OaepPrivateDecryptingKey::new(sk)
        .map_err(|cause| LogicalError::internal("stored RSA key is invalid").with_source(cause))?;
    let mut out = Zeroizing::new(vec![0u8; oaep.min_output_size()]);
    let n = oaep
        .decrypt(&OAEP_SHA256_MGF1SHA256, ciphertext, &mut out, None)
        // drop-cause: a failed RSA decryption is opaque on purpose (no padding oracle).
        .map_err(|_| LogicalError::bad_request("failed to RSA decrypt the ciphertext: crypto/rsa: decryption error"))?
        .len();
    out.truncate(n);
    Ok(out)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marshaling {
    Asn1,
    Jws,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RsaScheme {
    Pss,
    Pkcs1v15,
}

/// PSS salt length as OpenBao's API names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaltLength {
    /// Signing: as long as possible; verifying: either the maximum or the hash length.
    Auto,
    Hash,
    Bytes(usize),
}

impl SaltLength {
    pub fn parse(s: &str) -> Result<SaltLength> {
        match s.to_ascii_lowercase().as_str() {
            "auto" | "" => Ok(SaltLength::Auto),
            "hash" => Ok(SaltLength::Hash),
            other => match other.parse::<i64>() {
                Ok(-1) => Ok(SaltLength::Hash),
                Ok(0) => Ok(SaltLength::Auto),
                Ok(n) if n > 0 => Ok(SaltLength::Bytes(n as usize)),
                Ok(n) => Err(LogicalError::bad_request(format!("salt length is invalid: {n}"))),
                Err(e) => {
                    Err(LogicalError::bad_request(format!("salt length neither 'auto', 'hash', nor an int: {s}"))
                        .with_source(e))
                }
            },
        }
    }
}

pub struct SignOptions {
    pub hash: HashAlg,
    pub scheme: RsaScheme,
    pub salt: SaltLength,
    pub marshaling: Marshaling,
}

/// ECDSA takes the digest as an integer truncated to the group order (Go's hashToInt); this
/// re-expresses any hash as a digest of the length the curve's aws-lc-rs algorithm expects.
fn ecdsa_digest(t: KeyType, hash: &[u8]) -> Result<digest::Digest> {
    let c = curve(t).ok_or_else(|| LogicalError::internal("not an ECDSA key"))?;
    let order_bytes = c.order_bits.div_ceil(8);
    let h = if hash.len() > order_bytes { &hash[..order_bytes] } else { hash };
    let excess = (h.len() * 8).saturating_sub(c.order_bits);
    let mut v = h.to_vec();
    if excess > 0 {
        // Shift right by `excess` bits (only P-521 with inputs over 65 bytes).
        let mut carry = 0u8;
        for b in v.iter_mut() {
            let nb = (*b >> excess) | carry;
            carry = *b << (8 - excess);
            *b = nb;
        }
    }
    let start = v.iter().take_while(|b| **b == 0).count();
    let mag = &v[start..];
    let out_len = c.digest.output_len();
    if mag.len() > out_len {
        return Err(LogicalError::bad_request("input is too long to sign with this curve"));
    }
    let mut padded = vec![0u8; out_len];
    padded[out_len - mag.len()..].copy_from_slice(mag);
    digest::Digest::import_less_safe(&padded, c.digest)
        .map_err(|cause| LogicalError::internal("digest").with_source(cause))
}

type SignCache = Mutex<HashMap<(usize, usize), &'static signature::RsaSignatureEncoding>>;
type VerifyCache = Mutex<HashMap<(usize, usize), &'static signature::RsaParameters>>;

fn hash_index(alg: &'static digest::Algorithm) -> usize {
    if alg == &digest::SHA384 {
        1
    } else if alg == &digest::SHA512 {
        2
    } else {
        0
    }
}

/// A PSS signing encoding with an explicit salt length. aws-lc-rs wants `'static` parameters;
/// each (hash, salt) pair is built once and kept (at most 3 hashes × a few hundred lengths).
fn pss_sign_encoding(alg: &'static digest::Algorithm, salt: usize) -> &'static signature::RsaSignatureEncoding {
    static CACHE: OnceLock<SignCache> = OnceLock::new();
    let idx = hash_index(alg);
    let mut m = CACHE.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
    m.entry((idx, salt)).or_insert_with(|| {
        let base = [signature::RSA_PSS_SHA256, signature::RSA_PSS_SHA384, signature::RSA_PSS_SHA512];
        let [a, b, c] = base;
        let chosen = match idx {
            1 => b,
            2 => c,
            _ => a,
        };
        Box::leak(Box::new(chosen.with_pss_salt_length(signature::RsaPssSaltLength::Custom(salt as u16))))
    })
}

fn pss_verify_params(alg: &'static digest::Algorithm, salt: usize) -> &'static signature::RsaParameters {
    static CACHE: OnceLock<VerifyCache> = OnceLock::new();
    let idx = hash_index(alg);
    let mut m = CACHE.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
    m.entry((idx, salt)).or_insert_with(|| {
        let chosen = match idx {
            1 => signature::RSA_PSS_2048_8192_SHA384,
            2 => signature::RSA_PSS_2048_8192_SHA512,
            _ => signature::RSA_PSS_2048_8192_SHA256,
        };
        Box::leak(Box::new(chosen.with_pss_salt_length(signature::RsaPssSaltLength::Custom(salt as u16))))
    })
}

/// emLen - hLen - 2, with emLen = ceil((modBits - 1) / 8).
fn max_pss_salt(modulus_bits: usize, hash_len: usize) -> usize {
    ((modulus_bits + 6) / 8).saturating_sub(2 + hash_len)
}

fn bit_len(be: &[u8]) -> usize {
    let start = be.iter().take_while(|b| **b == 0).count();
    match be.get(start) {
        Some(b) => (be.len() - start) * 8 - b.leading_zeros() as usize,
        None => 0,
    }
}

fn rsa_hash(opts: &SignOptions) -> Result<&'static digest::Algorithm> {
    opts.hash.rsa_digest().ok_or_else(|| {
        LogicalError::bad_request(
            "unsupported hash algorithm for RSA keys in this server; use sha2-256, sha2-384 or sha2-512".to_string(),
        )
    })
}

/// Signs: `input` is the digest for ECDSA and RSA, the message for Ed25519.
pub fn sign(
    t: KeyType,
    e: &KeyEntry,
    ed_key: Option<&signature::Ed25519KeyPair>,
    input: &[u8],
    opts: &SignOptions,
) -> Result<Vec<u8>> {
    match t {
        KeyType::Ed25519 => {
            let owned;
            let kp = match ed_key {
                Some(k) => k,
                None => {
                    owned = e.ed25519_keypair()?;
                    &owned
                }
            };
            Ok(kp.sign(input).as_ref().to_vec())
        }
        _ if t.is_ecdsa() => {
            let kp = e.ecdsa_keypair(t, opts.marshaling == Marshaling::Jws)?;
            let d = ecdsa_digest(t, input)?;
            kp.sign_digest(&d)
                .map(|s| s.as_ref().to_vec())
                .map_err(|cause| LogicalError::internal("signing failed").with_source(cause))
        }
        _ if t.is_rsa() => {
            let alg = rsa_hash(opts)?;
            let d = digest::Digest::import_less_safe(input, alg).map_err(|cause| {
                LogicalError::bad_request("prehashed input length does not match the hash algorithm").with_source(cause)
            })?;
            let kp = e.rsa_keypair()?;
            let bits = e.rsa.as_ref().and_then(|k| der::rsa_public_parts(k)).map(|(n, _)| bit_len(&n)).unwrap_or(0);
            let enc: &'static signature::RsaSignatureEncoding = match opts.scheme {
                RsaScheme::Pkcs1v15 => match hash_index(alg) {
                    1 => &signature::RSA_PKCS1_SHA384,
                    2 => &signature::RSA_PKCS1_SHA512,
                    _ => &signature::RSA_PKCS1_SHA256,
                },
                RsaScheme::Pss => {
                    let max = max_pss_salt(bits, alg.output_len());
                    let salt = match opts.salt {
                        SaltLength::Auto => max,
                        SaltLength::Hash => alg.output_len(),
                        SaltLength::Bytes(n) if n <= max => n,
                        SaltLength::Bytes(n) => {
                            return Err(LogicalError::bad_request(format!("requested salt length {n} is invalid")))
                        }
                    };
                    pss_sign_encoding(alg, salt)
                }
            };
            let mut sig = vec![0u8; kp.public_modulus_len()];
            kp.sign_digest(enc, &d, &mut sig)
                .map_err(|cause| LogicalError::internal("signing failed").with_source(cause))?;
            Ok(sig)
        }
        _ => Err(LogicalError::bad_request(format!("key type {} does not support signing", t.as_str()))),
    }
}

/// Verifies a signature; `public` is the raw Ed25519 key when derived.
pub fn verify(
    t: KeyType,
    e: &KeyEntry,
    ed_public: Option<&[u8]>,
    input: &[u8],
    sig: &[u8],
    opts: &SignOptions,
) -> Result<bool> {
    match t {
        KeyType::Ed25519 => {
            let public = match ed_public {
                Some(p) => p.to_vec(),
                None => e.ed25519_public()?,
            };
            Ok(signature::UnparsedPublicKey::new(&signature::ED25519, &public).verify(input, sig).is_ok())
        }
        _ if t.is_ecdsa() => {
            let c = curve(t).ok_or_else(|| LogicalError::internal("curve"))?;
            let point =
                e.ec_point(&c).ok_or_else(|| LogicalError::internal("ECDSA key version has no public point"))?;
            let d = ecdsa_digest(t, input)?;
            let sig = match opts.marshaling {
                Marshaling::Asn1 => sig.to_vec(),
                Marshaling::Jws => {
                    // r || s, each half of the signature, re-padded to the curve length.
                    if sig.is_empty() || !sig.len().is_multiple_of(2) || sig.len() / 2 > c.len {
                        return Ok(false);
                    }
                    let (r, s) = sig.split_at(sig.len() / 2);
                    let mut fixed = crate::keys::pad(r, c.len).to_vec();
                    fixed.extend_from_slice(&crate::keys::pad(s, c.len));
                    fixed
                }
            };
            let alg = if opts.marshaling == Marshaling::Jws { c.verify_fixed } else { c.verify_asn1 };
            Ok(signature::UnparsedPublicKey::new(alg, &point).verify_digest(&d, &sig).is_ok())
        }
        _ if t.is_rsa() => {
            let alg = rsa_hash(opts)?;
            let Ok(d) = digest::Digest::import_less_safe(input, alg) else {
                return Ok(false);
            };
            let spki = e.rsa_spki()?;
            let bits = e.rsa.as_ref().and_then(|k| der::rsa_public_parts(k)).map(|(n, _)| bit_len(&n)).unwrap_or(0);
            let candidates: Vec<&'static signature::RsaParameters> = match opts.scheme {
                RsaScheme::Pkcs1v15 => vec![match hash_index(alg) {
                    1 => &signature::RSA_PKCS1_2048_8192_SHA384,
                    2 => &signature::RSA_PKCS1_2048_8192_SHA512,
                    _ => &signature::RSA_PKCS1_2048_8192_SHA256,
                }],
                RsaScheme::Pss => {
                    let max = max_pss_salt(bits, alg.output_len());
                    match opts.salt {
                        SaltLength::Auto => vec![pss_verify_params(alg, max), pss_verify_params(alg, alg.output_len())],
                        SaltLength::Hash => vec![pss_verify_params(alg, alg.output_len())],
                        SaltLength::Bytes(n) if n <= max => vec![pss_verify_params(alg, n)],
                        SaltLength::Bytes(n) => {
                            return Err(LogicalError::bad_request(format!("requested salt length {n} is invalid")))
                        }
                    }
                }
            };
            Ok(candidates
                .into_iter()
                .any(|p| signature::UnparsedPublicKey::new(p, &spki).verify_digest(&d, sig).is_ok()))
        }
        _ => Err(LogicalError::bad_request(format!("key type {} does not support verification", t.as_str()))),
    }
}

/// Splits `vault:v<N>:<payload>`. `what` names the value in errors ("ciphertext", "signature").
pub fn split_versioned<'a>(value: &'a str, what: &str) -> Result<(i64, &'a str)> {
    let bad = |msg: String| LogicalError::bad_request(msg);
    let rest = value.strip_prefix("vault:v").ok_or_else(|| bad(format!("invalid {what}: no prefix")))?;
    let (ver, payload) = rest.split_once(':').ok_or_else(|| bad(format!("invalid {what}: wrong number of fields")))?;
    let ver: i64 =
        ver.parse().map_err(|e| bad(format!("invalid {what}: version number could not be decoded")).with_source(e))?;
    Ok((ver, payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versioned_values_split_like_openbao() {
        assert_eq!(split_versioned("vault:v3:abc", "ciphertext").unwrap(), (3, "abc"));
        assert_eq!(split_versioned("nope", "ciphertext").unwrap_err().to_string(), "invalid ciphertext: no prefix");
        assert_eq!(
            split_versioned("vault:v3", "signature").unwrap_err().to_string(),
            "invalid signature: wrong number of fields"
        );
        assert!(split_versioned("vault:vx:a", "ciphertext").unwrap_err().to_string().contains("could not be decoded"));
    }

    #[test]
    fn salt_lengths_parse_like_openbao() {
        assert_eq!(SaltLength::parse("auto").unwrap(), SaltLength::Auto);
        assert_eq!(SaltLength::parse("HASH").unwrap(), SaltLength::Hash);
        assert_eq!(SaltLength::parse("-1").unwrap(), SaltLength::Hash);
        assert_eq!(SaltLength::parse("0").unwrap(), SaltLength::Auto);
        assert_eq!(SaltLength::parse("20").unwrap(), SaltLength::Bytes(20));
        assert!(SaltLength::parse("-2").is_err());
        assert!(SaltLength::parse("x").is_err());
    }

    #[test]
    fn known_digests_and_hmacs() {
        assert_eq!(
            hex::encode(HashAlg::Sha2_256.digest(b"hello")),
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(
            hex::encode(HashAlg::Sha3_224.digest(b"hello")),
            "b87f88c72702fff1748e58b87e9141a42c0dbedc29a78cb0d4a5cd81"
        );
        // RFC 4231 test case 2.
        let mac = HashAlg::Sha2_256.hmac(b"Jefe", b"what do ya want for nothing?").unwrap();
        assert_eq!(hex::encode(mac), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    }
}
