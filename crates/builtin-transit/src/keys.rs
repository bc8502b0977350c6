//! Named keys ("policies" in OpenBao's words): the key types, the per-key settings, the
//! versioned key material and how they are stored.
//!
//! Storage layout (inside the mount's storage view, which the barrier encrypts):
//! `policy/<name>` holds the settings, `version/<name>/<n>` one key version each, so an
//! operation reads only the version it uses.

use crate::der;
use aws_lc_rs::signature::{EcdsaKeyPair, EcdsaSigningAlgorithm, Ed25519KeyPair, KeyPair};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use coffer_sdk::{LogicalError, Result, StorageView};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

pub(crate) type Secret = Zeroizing<Vec<u8>>;

/// The key types, numbered as OpenBao numbers them in its backups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    Aes256Gcm96,
    EcdsaP256,
    Ed25519,
    Rsa2048,
    Rsa4096,
    ChaCha20Poly1305,
    EcdsaP384,
    EcdsaP521,
    Aes128Gcm96,
    Rsa3072,
    Hmac,
}

impl KeyType {
    pub const ALL: [KeyType; 11] = [
        KeyType::Aes256Gcm96,
        KeyType::EcdsaP256,
        KeyType::Ed25519,
        KeyType::Rsa2048,
        KeyType::Rsa4096,
        KeyType::ChaCha20Poly1305,
        KeyType::EcdsaP384,
        KeyType::EcdsaP521,
        KeyType::Aes128Gcm96,
        KeyType::Rsa3072,
        KeyType::Hmac,
    ];

    pub fn parse(s: &str) -> Option<KeyType> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            KeyType::Aes128Gcm96 => "aes128-gcm96",
            KeyType::Aes256Gcm96 => "aes256-gcm96",
            KeyType::ChaCha20Poly1305 => "chacha20-poly1305",
            KeyType::Ed25519 => "ed25519",
            KeyType::EcdsaP256 => "ecdsa-p256",
            KeyType::EcdsaP384 => "ecdsa-p384",
            KeyType::EcdsaP521 => "ecdsa-p521",
            KeyType::Rsa2048 => "rsa-2048",
            KeyType::Rsa3072 => "rsa-3072",
            KeyType::Rsa4096 => "rsa-4096",
            KeyType::Hmac => "hmac",
        }
    }

    /// OpenBao's numeric type in backups.
    pub fn openbao_id(self) -> i64 {
        Self::ALL.iter().position(|k| *k == self).unwrap_or(0) as i64
    }

    pub fn from_openbao_id(id: i64) -> Option<KeyType> {
        usize::try_from(id).ok().and_then(|i| Self::ALL.get(i).copied())
    }

    pub fn is_aead(self) -> bool {
        matches!(self, KeyType::Aes128Gcm96 | KeyType::Aes256Gcm96 | KeyType::ChaCha20Poly1305)
    }
    pub fn is_rsa(self) -> bool {
        matches!(self, KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096)
    }
    pub fn is_ecdsa(self) -> bool {
        matches!(self, KeyType::EcdsaP256 | KeyType::EcdsaP384 | KeyType::EcdsaP521)
    }
    pub fn encryption_supported(self) -> bool {
        self.is_aead() || self.is_rsa()
    }
    pub fn signing_supported(self) -> bool {
        self.is_ecdsa() || self.is_rsa() || self == KeyType::Ed25519
    }
    pub fn derivation_supported(self) -> bool {
        self.is_aead() || self == KeyType::Ed25519
    }
    /// Whether sign/verify hash the input first (everything but Ed25519).
    pub fn hashes_signature_input(self) -> bool {
        self.is_ecdsa() || self.is_rsa()
    }
    /// Symmetric key length in bytes.
    pub fn aead_key_len(self) -> usize {
        if self == KeyType::Aes128Gcm96 {
            16
        } else {
            32
        }
    }
    pub fn rsa_bits(self) -> usize {
        match self {
            KeyType::Rsa3072 => 3072,
            KeyType::Rsa4096 => 4096,
            _ => 2048,
        }
    }
}

impl Serialize for KeyType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for KeyType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        KeyType::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("unknown key type {s}")))
    }
}

/// When a backup or restore happened, and the latest version then.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EventInfo {
    pub time: String,
    pub version: i64,
}

/// A named key's settings. No key material here.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Policy {
    pub name: String,
    #[serde(rename = "type")]
    pub key_type: KeyType,
    pub derived: bool,
    /// 0: HMAC-SHA256 counter mode (legacy), 1: HKDF-SHA256.
    pub kdf: i64,
    pub convergent_encryption: bool,
    /// The policy-wide convergent version (-1 when every version carries its own).
    pub convergent_version: i64,
    pub exportable: bool,
    pub allow_plaintext_backup: bool,
    pub deletion_allowed: bool,
    pub min_decryption_version: i64,
    pub min_encryption_version: i64,
    pub min_available_version: i64,
    pub latest_version: i64,
    /// Seconds; 0 disables automatic rotation.
    pub auto_rotate_period: i64,
    /// HMAC keys only: key length in bytes.
    #[serde(default)]
    pub key_size: i64,
    #[serde(default)]
    pub backup_info: Option<EventInfo>,
    #[serde(default)]
    pub restore_info: Option<EventInfo>,
    #[serde(default)]
    pub imported: bool,
}

/// Newest convergent-encryption scheme: the nonce is an HMAC of the plaintext.
pub const CONVERGENT_VERSION: i64 = 3;

impl Policy {
    pub fn new(name: &str, key_type: KeyType) -> Policy {
        Policy {
            name: name.to_string(),
            key_type,
            derived: false,
            kdf: 0,
            convergent_encryption: false,
            convergent_version: 0,
            exportable: false,
            allow_plaintext_backup: false,
            deletion_allowed: false,
            min_decryption_version: 1,
            min_encryption_version: 0,
            min_available_version: 0,
            latest_version: 0,
            auto_rotate_period: 0,
            key_size: 0,
            backup_info: None,
            restore_info: None,
            imported: false,
        }
    }

    /// The convergent scheme a version uses (0 when not convergent).
    pub fn convergent_version_of(&self, entry: &KeyEntry) -> i64 {
        if !self.convergent_encryption {
            return 0;
        }
        if entry.convergent_version != 0 {
            return entry.convergent_version;
        }
        if self.convergent_version == 0 {
            1
        } else {
            self.convergent_version
        }
    }
}

/// One key version's material, as stored. Byte fields are base64 in JSON.
#[derive(Default, Serialize, Deserialize)]
pub struct KeyEntry {
    /// Symmetric key, HMAC key (type hmac) or Ed25519 seed||public (64 bytes, as Go keeps it).
    #[serde(default, with = "b64opt", skip_serializing_if = "Option::is_none")]
    pub key: Option<Secret>,
    /// The per-version HMAC key every type carries (the `hmac` endpoint).
    #[serde(default, with = "b64opt", skip_serializing_if = "Option::is_none")]
    pub hmac_key: Option<Secret>,
    /// Creation time, RFC 3339 with nanoseconds.
    pub time: String,
    /// Creation time, Unix seconds.
    pub creation_time: i64,
    /// ECDSA private scalar and public point coordinates, big-endian.
    #[serde(default, with = "b64opt", skip_serializing_if = "Option::is_none")]
    pub ec_d: Option<Secret>,
    #[serde(default, with = "b64opt", skip_serializing_if = "Option::is_none")]
    pub ec_x: Option<Secret>,
    #[serde(default, with = "b64opt", skip_serializing_if = "Option::is_none")]
    pub ec_y: Option<Secret>,
    /// RSA private key, PKCS#1 DER.
    #[serde(default, with = "b64opt", skip_serializing_if = "Option::is_none")]
    pub rsa: Option<Secret>,
    /// PEM (ECDSA) or base64 (Ed25519) public key; empty for symmetric and RSA keys.
    #[serde(default)]
    pub public_key: String,
    #[serde(default)]
    pub convergent_version: i64,
}

mod b64opt {
    use super::Secret;
    use base64::engine::general_purpose::STANDARD as B64;
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};
    use zeroize::Zeroizing;

    pub fn serialize<S: Serializer>(v: &Option<Secret>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(b) => s.serialize_str(&Zeroizing::new(B64.encode(b.as_slice()))),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Secret>, D::Error> {
        let s: Option<Zeroizing<String>> = Option::deserialize(d)?;
        match s {
            None => Ok(None),
            Some(s) => B64.decode(s.as_bytes()).map(|v| Some(Zeroizing::new(v))).map_err(serde::de::Error::custom),
        }
    }
}

/// The current time as (RFC 3339 with nanoseconds, Unix seconds).
pub fn now() -> (String, i64) {
    let t = time::OffsetDateTime::now_utc();
    let s = t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
    (s, t.unix_timestamp())
}

/// Parses an RFC 3339 time to Unix seconds.
pub fn parse_time(s: &str) -> Option<i64> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok().map(|t| t.unix_timestamp())
}

pub(crate) fn random(n: usize) -> Result<Secret> {
    let mut buf = Zeroizing::new(vec![0u8; n]);
    aws_lc_rs::rand::fill(&mut buf)
        .map_err(|cause| LogicalError::internal("random number generator failed").with_source(cause))?;
    Ok(buf)
}

fn internal(msg: &str) -> LogicalError {
    LogicalError::internal(msg.to_string())
}

/// Curve facts for an ECDSA key type.
pub(crate) struct Curve {
    pub oid: &'static [u8],
    /// Field element (and scalar) length in bytes.
    pub len: usize,
    pub name: &'static str,
    /// Fixed (r||s) and ASN.1 signing algorithms whose digest length is the one `sign_digest` takes.
    pub fixed: &'static EcdsaSigningAlgorithm,
    pub asn1: &'static EcdsaSigningAlgorithm,
    pub verify_fixed: &'static aws_lc_rs::signature::EcdsaVerificationAlgorithm,
    pub verify_asn1: &'static aws_lc_rs::signature::EcdsaVerificationAlgorithm,
    pub digest: &'static aws_lc_rs::digest::Algorithm,
    pub order_bits: usize,
}

pub(crate) fn curve(t: KeyType) -> Option<Curve> {
    use aws_lc_rs::{digest, signature as s};
    Some(match t {
        KeyType::EcdsaP256 => Curve {
            oid: der::OID_P256,
            len: 32,
            name: "P-256",
            fixed: &s::ECDSA_P256_SHA256_FIXED_SIGNING,
            asn1: &s::ECDSA_P256_SHA256_ASN1_SIGNING,
            verify_fixed: &s::ECDSA_P256_SHA256_FIXED,
            verify_asn1: &s::ECDSA_P256_SHA256_ASN1,
            digest: &digest::SHA256,
            order_bits: 256,
        },
        KeyType::EcdsaP384 => Curve {
            oid: der::OID_P384,
            len: 48,
            name: "P-384",
            fixed: &s::ECDSA_P384_SHA384_FIXED_SIGNING,
            asn1: &s::ECDSA_P384_SHA384_ASN1_SIGNING,
            verify_fixed: &s::ECDSA_P384_SHA384_FIXED,
            verify_asn1: &s::ECDSA_P384_SHA384_ASN1,
            digest: &digest::SHA384,
            order_bits: 384,
        },
        KeyType::EcdsaP521 => Curve {
            oid: der::OID_P521,
            len: 66,
            name: "P-521",
            fixed: &s::ECDSA_P521_SHA512_FIXED_SIGNING,
            asn1: &s::ECDSA_P521_SHA512_ASN1_SIGNING,
            verify_fixed: &s::ECDSA_P521_SHA512_FIXED,
            verify_asn1: &s::ECDSA_P521_SHA512_ASN1,
            digest: &digest::SHA512,
            order_bits: 521,
        },
        _ => return None,
    })
}

/// Left-pads big-endian bytes to `len` (Go's big.Int drops leading zeros).
pub(crate) fn pad(be: &[u8], len: usize) -> Secret {
    let start = be.iter().take_while(|b| **b == 0).count();
    let mag = &be[start..];
    let mut out = Zeroizing::new(vec![0u8; len.max(mag.len())]);
    let off = out.len() - mag.len();
    out[off..].copy_from_slice(mag);
    out
}

impl KeyEntry {
    /// Generates a fresh version of `policy`'s type.
    pub fn generate(policy: &Policy) -> Result<KeyEntry> {
        let (time, creation_time) = now();
        let mut e = KeyEntry { time, creation_time, hmac_key: Some(random(32)?), ..Default::default() };
        let t = policy.key_type;
        match t {
            _ if t.is_aead() => e.key = Some(random(t.aead_key_len())?),
            KeyType::Hmac => {
                let k = random(policy.key_size as usize)?;
                e.hmac_key = Some(k.clone());
                e.key = Some(k);
            }
            KeyType::Ed25519 => {
                let seed = random(32)?;
                let kp = Ed25519KeyPair::from_seed_unchecked(&seed)
                    .map_err(|cause| internal("Ed25519 key generation").with_source(cause))?;
                let public = kp.public_key().as_ref().to_vec();
                let mut key = Zeroizing::new(Vec::with_capacity(64));
                key.extend_from_slice(&seed);
                key.extend_from_slice(&public);
                e.key = Some(key);
                e.public_key = B64.encode(&public);
            }
            _ if t.is_ecdsa() => {
                let c = curve(t).ok_or_else(|| internal("curve"))?;
                let kp = EcdsaKeyPair::generate(c.asn1)
                    .map_err(|cause| internal("ECDSA key generation failed").with_source(cause))?;
                let d = {
                    use aws_lc_rs::encoding::{AsBigEndian, EcPrivateKeyBin};
                    let bin: EcPrivateKeyBin =
                        kp.private_key().as_be_bytes().map_err(|cause| internal("ECDSA key").with_source(cause))?;
                    Zeroizing::new(bin.as_ref().to_vec())
                };
                let point = kp.public_key().as_ref();
                if point.len() != 1 + 2 * c.len || point[0] != 4 {
                    return Err(internal("unexpected ECDSA public key encoding"));
                }
                e.ec_x = Some(Zeroizing::new(point[1..1 + c.len].to_vec()));
                e.ec_y = Some(Zeroizing::new(point[1 + c.len..].to_vec()));
                e.ec_d = Some(d);
                e.public_key = der::pem("PUBLIC KEY", &der::ec_spki(c.oid, point)).to_string();
            }
            _ if t.is_rsa() => {
                use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
                let size = match t.rsa_bits() {
                    3072 => aws_lc_rs::rsa::KeySize::Rsa3072,
                    4096 => aws_lc_rs::rsa::KeySize::Rsa4096,
                    _ => aws_lc_rs::rsa::KeySize::Rsa2048,
                };
                let kp = aws_lc_rs::rsa::KeyPair::generate(size)
                    .map_err(|cause| internal("RSA key generation failed").with_source(cause))?;
                let pkcs8: Pkcs8V1Der = kp.as_der().map_err(|cause| internal("RSA key encoding").with_source(cause))?;
                e.rsa = Some(der::pkcs8_inner(pkcs8.as_ref()).ok_or_else(|| internal("RSA key encoding"))?);
            }
            _ => return Err(internal("unsupported key type")),
        }
        if policy.convergent_encryption && (policy.convergent_version == -1 || policy.convergent_version > 1) {
            e.convergent_version = CONVERGENT_VERSION;
        }
        Ok(e)
    }

    /// The uncompressed public point 04||X||Y.
    pub fn ec_point(&self, c: &Curve) -> Option<Vec<u8>> {
        let (x, y) = (self.ec_x.as_ref()?, self.ec_y.as_ref()?);
        let mut p = vec![4u8];
        p.extend_from_slice(&pad(x, c.len));
        p.extend_from_slice(&pad(y, c.len));
        Some(p)
    }

    pub fn ecdsa_keypair(&self, t: KeyType, fixed: bool) -> Result<EcdsaKeyPair> {
        let c = curve(t).ok_or_else(|| internal("not an ECDSA key"))?;
        let d = self.ec_d.as_ref().ok_or_else(|| LogicalError::bad_request("key version has no private part"))?;
        let point = self.ec_point(&c).ok_or_else(|| internal("ECDSA key version has no public point"))?;
        EcdsaKeyPair::from_private_key_and_public_key(if fixed { c.fixed } else { c.asn1 }, &pad(d, c.len), &point)
            .map_err(|cause| internal("stored ECDSA key is invalid").with_source(cause))
    }

    pub fn ed25519_keypair(&self) -> Result<Ed25519KeyPair> {
        let key = self.key.as_ref().ok_or_else(|| LogicalError::bad_request("key version has no private part"))?;
        if key.len() < 32 {
            return Err(internal("stored Ed25519 key is invalid"));
        }
        Ed25519KeyPair::from_seed_unchecked(&key[..32])
            .map_err(|cause| internal("stored Ed25519 key is invalid").with_source(cause))
    }

    pub fn ed25519_public(&self) -> Result<Vec<u8>> {
        if !self.public_key.is_empty() {
            return B64
                .decode(self.public_key.trim())
                .map_err(|cause| internal("stored Ed25519 public key is invalid").with_source(cause));
        }
        Ok(self.ed25519_keypair()?.public_key().as_ref().to_vec())
    }

    pub fn rsa_keypair(&self) -> Result<aws_lc_rs::rsa::KeyPair> {
        let der = self.rsa.as_ref().ok_or_else(|| LogicalError::bad_request("key version has no private part"))?;
        aws_lc_rs::rsa::KeyPair::from_der(der).map_err(|cause| internal("stored RSA key is invalid").with_source(cause))
    }

    /// SubjectPublicKeyInfo DER of an RSA version.
    pub fn rsa_spki(&self) -> Result<Vec<u8>> {
        let der = self.rsa.as_ref().ok_or_else(|| internal("RSA key version has no key"))?;
        let (n, e) = der::rsa_public_parts(der).ok_or_else(|| internal("stored RSA key is invalid"))?;
        Ok(der::rsa_spki(&n, &e))
    }

    /// The public key as `keys/<name>` shows it.
    pub fn formatted_public_key(&self, t: KeyType) -> Result<String> {
        if t.is_rsa() {
            return Ok(der::pem("PUBLIC KEY", &self.rsa_spki()?).to_string());
        }
        Ok(self.public_key.clone())
    }
}

/// Whether a name is acceptable (OpenBao's generic name pattern: word characters, '-', '.', '@').
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.' || c == '@')
        && !name.starts_with(['-', '.', '@'])
        && !name.ends_with(['-', '.', '@'])
}

fn policy_path(name: &str) -> String {
    format!("policy/{name}")
}

fn version_path(name: &str, version: i64) -> String {
    format!("version/{name}/{version}")
}

pub async fn load_policy(s: &dyn StorageView, name: &str) -> Result<Option<Policy>> {
    match s.get(&policy_path(name)).await? {
        None => Ok(None),
        Some(raw) => serde_json::from_slice(&raw)
            .map(Some)
            .map_err(|cause| internal("stored key settings are corrupt").with_source(cause)),
    }
}

pub async fn save_policy(s: &dyn StorageView, p: &Policy) -> Result<()> {
    let raw = serde_json::to_vec(p).map_err(|cause| internal("encoding key settings").with_source(cause))?;
    s.put(&policy_path(&p.name), &raw).await
}

pub async fn load_entry(s: &dyn StorageView, name: &str, version: i64) -> Result<Option<KeyEntry>> {
    match s.get(&version_path(name, version)).await? {
        None => Ok(None),
        Some(raw) => {
            let raw = Zeroizing::new(raw);
            // drop-cause: the entry holds key material, which a JSON error could quote.
            serde_json::from_slice(&raw).map(Some).map_err(|_| internal("stored key version is corrupt"))
        }
    }
}

/// Loads a version that must exist.
pub async fn entry(s: &dyn StorageView, name: &str, version: i64) -> Result<KeyEntry> {
    load_entry(s, name, version).await?.ok_or_else(missing_version)
}

/// The error for a key version that a key's settings name but storage does not hold.
pub fn missing_version() -> LogicalError {
    LogicalError::bad_request("no such key version")
}

pub async fn save_entry(s: &dyn StorageView, name: &str, version: i64, e: &KeyEntry) -> Result<()> {
    let raw =
        Zeroizing::new(serde_json::to_vec(e).map_err(|cause| internal("encoding key version").with_source(cause))?);
    s.put(&version_path(name, version), &raw).await
}

pub async fn delete_entry(s: &dyn StorageView, name: &str, version: i64) -> Result<()> {
    s.delete(&version_path(name, version)).await
}

pub async fn delete_policy(s: &dyn StorageView, name: &str) -> Result<()> {
    s.delete(&policy_path(name)).await
}

/// Key names, sorted.
pub async fn list_policies(s: &dyn StorageView) -> Result<Vec<String>> {
    let mut names: Vec<String> = s.list("policy/").await?.into_iter().filter(|k| !k.ends_with('/')).collect();
    names.sort();
    Ok(names)
}

/// Adds a new latest version (create and rotate).
pub async fn rotate(s: &dyn StorageView, p: &mut Policy) -> Result<()> {
    let e = KeyEntry::generate(p)?;
    let v = p.latest_version + 1;
    save_entry(s, &p.name, v, &e).await?;
    p.latest_version = v;
    if p.min_decryption_version == 0 {
        p.min_decryption_version = 1;
    }
    save_policy(s, p).await
}

/// Derives the key for `context` from a version's key (HKDF-SHA256, or the legacy counter-mode
/// KDF), as OpenBao does: `num_bytes` of output.
pub fn derive(p: &Policy, e: &KeyEntry, context: &[u8], num_bytes: usize) -> Result<Secret> {
    if !p.key_type.derivation_supported() {
        return Err(LogicalError::bad_request(format!(
            "derivation not supported for key type {}",
            p.key_type.as_str()
        )));
    }
    if context.is_empty() {
        return Err(LogicalError::bad_request(
            "missing 'context' for key derivation; the key was created using a derived key, which means additional, \
             per-request information must be included in order to perform operations with the key",
        ));
    }
    let key = e.key.as_ref().ok_or_else(|| internal("key version has no key to derive from"))?;
    match p.kdf {
        0 => {
            // NIST SP 800-108 counter mode, HMAC-SHA256, 256 bits: one round, counter 0.
            let k = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key);
            let mut input = Zeroizing::new(Vec::with_capacity(context.len() + 8));
            input.extend_from_slice(&0u32.to_be_bytes());
            input.extend_from_slice(context);
            input.extend_from_slice(&256u32.to_be_bytes());
            Ok(Zeroizing::new(aws_lc_rs::hmac::sign(&k, &input).as_ref().to_vec()))
        }
        1 => {
            struct Len(usize);
            impl aws_lc_rs::hkdf::KeyType for Len {
                fn len(&self) -> usize {
                    self.0
                }
            }
            let prk = aws_lc_rs::hkdf::Salt::new(aws_lc_rs::hkdf::HKDF_SHA256, &[]).extract(key);
            let info = [context];
            let okm = prk
                .expand(&info, Len(num_bytes))
                .map_err(|cause| internal("key derivation failed").with_source(cause))?;
            let mut out = Zeroizing::new(vec![0u8; num_bytes]);
            okm.fill(&mut out).map_err(|cause| internal("key derivation failed").with_source(cause))?;
            Ok(out)
        }
        _ => Err(internal("unsupported key derivation mode")),
    }
}
