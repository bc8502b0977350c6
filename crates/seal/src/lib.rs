//! Seals protect the key-encryption key (KEK) that wraps the barrier's root key.
//!
//! The Shamir seal splits the KEK into shares held by operators; unsealing collects a threshold
//! of them. Auto-unseal seals (PKCS#11 HSM in `coffer-seal-pkcs11`, transit in
//! `coffer-seal-transit`) implement [`Seal::wrap`]/[`Seal::unwrap`]: the KEK is random, stored
//! wrapped by the seal's key, and operators hold *recovery* key shares instead.
#![forbid(unsafe_code)]

use async_trait::async_trait;
use coffer_crypto::Key;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// Key lengths accepted as an unseal share: a 16–32 byte key plus the share's identifier byte.
pub const SHARE_MIN_LEN: usize = 16;
pub const SHARE_MAX_LEN: usize = 33;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    #[error("{0}")]
    InvalidParameters(String),
    #[error("'key' must be a valid hex or base64 string")]
    BadEncoding,
    #[error("provided key is a duplicate of one already submitted")]
    DuplicateShare,
    #[error("failed to combine key shares: {0}")]
    Combine(String),
    /// The seal's device or server cannot be reached now; trying again later may succeed.
    #[error("{0}")]
    Unavailable(String),
    /// The seal is misconfigured (wrong PIN, missing key, bad option): retrying will not help.
    #[error("{0}")]
    Config(String),
    /// The seal answered but refused the operation (wrong key, tampered ciphertext).
    #[error("{0}")]
    Failed(String),
    #[error("the {0} seal does not wrap keys: it is unsealed with key shares")]
    Unsupported(&'static str),
    /// As [`SealError::Config`], keeping the cause (shown by `source()`, not in the message).
    #[error("{message}")]
    ConfigBecause {
        message: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// As [`SealError::Failed`], keeping the cause (shown by `source()`, not in the message).
    #[error("{message}")]
    FailedBecause {
        message: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl SealError {
    /// A misconfiguration, because of `source` (which must not carry key material).
    pub fn config_because(message: impl Into<String>, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        SealError::ConfigBecause { message: message.into(), source: Box::new(source) }
    }
    /// A refused operation, because of `source` (which must not carry key material).
    pub fn failed_because(message: impl Into<String>, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        SealError::FailedBecause { message: message.into(), source: Box::new(source) }
    }
    /// Whether trying again later may succeed (the device or server was unreachable).
    pub fn is_transient(&self) -> bool {
        matches!(self, SealError::Unavailable(_))
    }
}

/// The persisted seal parameters (`core/seal-config`). Not secret.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SealConfig {
    #[serde(rename = "type")]
    pub seal_type: String,
    pub secret_shares: u32,
    pub secret_threshold: u32,
    /// Recovery key shares of an auto-unseal seal (0 for Shamir).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub recovery_shares: u32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub recovery_threshold: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl SealConfig {
    pub fn shamir(secret_shares: u32, secret_threshold: u32) -> Result<Self, SealError> {
        if secret_shares < 1 {
            return Err(SealError::InvalidParameters("shares must be at least one".into()));
        }
        if secret_threshold < 1 {
            return Err(SealError::InvalidParameters("threshold must be at least one".into()));
        }
        if secret_shares > 1 && secret_threshold == 1 {
            return Err(SealError::InvalidParameters("threshold must be greater than one for multiple shares".into()));
        }
        if secret_shares > 255 {
            return Err(SealError::InvalidParameters("shares must be less than 256".into()));
        }
        if secret_threshold > secret_shares {
            return Err(SealError::InvalidParameters("threshold cannot be larger than shares".into()));
        }
        Ok(SealConfig {
            seal_type: "shamir".into(),
            secret_shares,
            secret_threshold,
            recovery_shares: 0,
            recovery_threshold: 0,
        })
    }

    /// An auto-unseal seal of `seal_type` with recovery key shares (validated like unseal shares).
    pub fn auto(seal_type: &str, recovery_shares: u32, recovery_threshold: u32) -> Result<Self, SealError> {
        let r = Self::shamir(recovery_shares, recovery_threshold).map_err(|e| match e {
            SealError::InvalidParameters(m) => SealError::InvalidParameters(format!("recovery {m}")),
            other => other,
        })?;
        Ok(SealConfig {
            seal_type: seal_type.to_string(),
            secret_shares: 1,
            secret_threshold: 1,
            recovery_shares: r.secret_shares,
            recovery_threshold: r.secret_threshold,
        })
    }

    /// Whether this is an auto-unseal seal, whose operators hold recovery keys.
    pub fn is_auto(&self) -> bool {
        self.seal_type != "shamir"
    }

    /// The shares operators hold: recovery shares for an auto seal, unseal shares for Shamir.
    pub fn operator_shares(&self) -> (u32, u32) {
        if self.is_auto() {
            (self.recovery_shares, self.recovery_threshold)
        } else {
            (self.secret_shares, self.secret_threshold)
        }
    }
}

/// What every seal provides to the core.
#[async_trait]
pub trait Seal: Send + Sync {
    /// `shamir`, `pkcs11`, `transit`, …
    fn seal_type(&self) -> &'static str;
    /// Whether the server can unseal itself without operator key shares.
    fn auto_unseal(&self) -> bool;
    /// Encrypts the key-encryption key under the seal's key. The blob is opaque to the core
    /// and stored unencrypted next to the wrapped root key.
    async fn wrap(&self, plaintext: &[u8]) -> Result<Vec<u8>, SealError>;
    /// Decrypts a blob made by [`Seal::wrap`].
    async fn unwrap(&self, blob: &[u8]) -> Result<Zeroizing<Vec<u8>>, SealError>;
}

/// One key share, zeroized on drop.
pub type Share = Zeroizing<Vec<u8>>;

/// The Shamir seal: the KEK is split among operators.
#[derive(Debug, Default)]
pub struct ShamirSeal;

#[async_trait]
impl Seal for ShamirSeal {
    fn seal_type(&self) -> &'static str {
        "shamir"
    }
    fn auto_unseal(&self) -> bool {
        false
    }
    async fn wrap(&self, _plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
        Err(SealError::Unsupported("shamir"))
    }
    async fn unwrap(&self, _blob: &[u8]) -> Result<Zeroizing<Vec<u8>>, SealError> {
        Err(SealError::Unsupported("shamir"))
    }
}

impl ShamirSeal {
    /// Creates a new KEK and splits it per `cfg`.
    pub fn new_key_shares(cfg: &SealConfig) -> Result<(Key, Vec<Share>), SealError> {
        let kek = Key::generate().map_err(|e| SealError::Combine(e.to_string()))?;
        let shares = coffer_crypto::split(kek.as_bytes(), cfg.secret_shares as usize, cfg.secret_threshold as usize)
            .map_err(|e| SealError::InvalidParameters(e.to_string()))?;
        Ok((kek, shares))
    }
}

/// Collects key shares towards a threshold: used by unseal, generate-root and rekey.
pub struct ShareCollector {
    threshold: usize,
    shares: Vec<Zeroizing<Vec<u8>>>,
}

impl ShareCollector {
    pub fn new(threshold: u32) -> Self {
        ShareCollector { threshold: threshold as usize, shares: Vec::new() }
    }

    pub fn progress(&self) -> u32 {
        self.shares.len() as u32
    }

    pub fn threshold(&self) -> u32 {
        self.threshold as u32
    }

    /// Decodes and adds a share given as hex or base64. Returns the combined KEK once the
    /// threshold is reached (the collector is then empty again).
    pub fn add(&mut self, encoded: &str) -> Result<Option<Key>, SealError> {
        let share =
            coffer_crypto::decode_key_input(encoded, SHARE_MIN_LEN, SHARE_MAX_LEN).ok_or(SealError::BadEncoding)?;
        if share.len() < SHARE_MIN_LEN || share.len() > SHARE_MAX_LEN {
            return Err(SealError::BadEncoding);
        }
        if self.shares.iter().any(|s| coffer_crypto::ct_eq(s, &share)) {
            return Err(SealError::DuplicateShare);
        }
        self.shares.push(share);
        if self.shares.len() < self.threshold {
            return Ok(None);
        }
        let shares = std::mem::take(&mut self.shares);
        let combined = coffer_crypto::combine(&shares).map_err(|e| SealError::Combine(e.to_string()))?;
        Key::from_slice(&combined).map(Some).map_err(|e| SealError::Combine(e.to_string()))
    }

    pub fn reset(&mut self) {
        self.shares.clear();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn old_seal_configs_without_recovery_fields_still_load() {
        let c: SealConfig =
            serde_json::from_str(r#"{"type":"shamir","secret_shares":5,"secret_threshold":3}"#).unwrap();
        assert_eq!(c, SealConfig::shamir(5, 3).unwrap());
        assert!(!c.is_auto());
        let a = SealConfig::auto("transit", 5, 3).unwrap();
        assert_eq!(a.operator_shares(), (5, 3));
        let back: SealConfig = serde_json::from_slice(&serde_json::to_vec(&a).unwrap()).unwrap();
        assert_eq!(back, a);
    }

    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn threshold_of_shares_rebuilds_the_kek() {
        let cfg = SealConfig::shamir(5, 3).unwrap();
        let (kek, shares) = ShamirSeal::new_key_shares(&cfg).unwrap();
        let mut c = ShareCollector::new(3);
        assert!(c.add(&hex(&shares[4])).unwrap().is_none());
        assert!(matches!(c.add(&hex(&shares[4])).err(), Some(SealError::DuplicateShare)));
        assert!(c.add(&hex(&shares[1])).unwrap().is_none());
        assert_eq!(c.progress(), 2);
        let got = c.add(&hex(&shares[2])).unwrap().unwrap();
        assert_eq!(got.as_bytes(), kek.as_bytes());
        assert_eq!(c.progress(), 0);
    }

    #[test]
    fn invalid_parameters_and_encodings_are_refused() {
        assert!(SealConfig::shamir(3, 4).is_err());
        assert!(SealConfig::shamir(3, 1).is_err());
        assert!(SealConfig::shamir(0, 0).is_err());
        assert!(SealConfig::shamir(1, 1).is_ok());
        assert!(SealConfig::auto("pkcs11", 3, 4).unwrap_err().to_string().starts_with("recovery"));
        let mut c = ShareCollector::new(2);
        assert!(matches!(c.add("not-a-key!").err(), Some(SealError::BadEncoding)));
        assert!(matches!(c.add("abcd").err(), Some(SealError::BadEncoding)));
    }
}
