//! Seals protect the key-encryption key (KEK) that wraps the barrier's root key.
//!
//! The Shamir seal splits the KEK into shares held by operators; unsealing collects a threshold
//! of them. Auto-unseal seals (HSM, transit) implement the same [`Seal`] contract later.
#![forbid(unsafe_code)]

use coffer_crypto::Key;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// Key lengths accepted as an unseal share: a 16–32 byte key plus the share's identifier byte.
pub const SHARE_MIN_LEN: usize = 16;
pub const SHARE_MAX_LEN: usize = 33;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
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
}

/// The persisted seal parameters (`core/seal-config`). Not secret.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SealConfig {
    #[serde(rename = "type")]
    pub seal_type: String,
    pub secret_shares: u32,
    pub secret_threshold: u32,
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
        Ok(SealConfig { seal_type: "shamir".into(), secret_shares, secret_threshold })
    }
}

/// What every seal provides to the core.
pub trait Seal: Send + Sync {
    /// `shamir`, `pkcs11`, `transit`, …
    fn seal_type(&self) -> &'static str;
    /// Whether the server can unseal itself without operator key shares.
    fn auto_unseal(&self) -> bool;
}

/// One key share, zeroized on drop.
pub type Share = Zeroizing<Vec<u8>>;

/// The Shamir seal: the KEK is split among operators.
#[derive(Debug, Default)]
pub struct ShamirSeal;

impl Seal for ShamirSeal {
    fn seal_type(&self) -> &'static str {
        "shamir"
    }
    fn auto_unseal(&self) -> bool {
        false
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
        assert_eq!(c.add(&hex(&shares[4])).err(), Some(SealError::DuplicateShare));
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
        let mut c = ShareCollector::new(2);
        assert_eq!(c.add("not-a-key!").err(), Some(SealError::BadEncoding));
        assert_eq!(c.add("abcd").err(), Some(SealError::BadEncoding));
    }
}
