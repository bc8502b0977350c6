//! Shamir secret sharing over GF(256), through vsss-rs.
//!
//! A share is `[x, y_1 … y_n]`: one identifier byte followed by one byte per secret byte.
//! With a single share the secret is handed out whole, as Vault does.

use crate::CryptoError;
use core::convert::Infallible;
use zeroize::Zeroizing;

/// The system CSPRNG (aws-lc-rs) in the shape vsss-rs asks for.
struct SystemRng;

impl rand_core::TryRng for SystemRng {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        // A failing system RNG leaves no safe way to continue.
        aws_lc_rs::rand::fill(dst).expect("system random number generator failed");
        Ok(())
    }
}
impl rand_core::TryCryptoRng for SystemRng {}

/// Splits `secret` into `shares` parts of which any `threshold` recover it.
pub fn split(secret: &[u8], shares: usize, threshold: usize) -> Result<Vec<Zeroizing<Vec<u8>>>, CryptoError> {
    if shares == 0 || threshold == 0 || threshold > shares || shares > 255 {
        return Err(CryptoError::Shamir(format!("invalid share parameters: {shares} shares, threshold {threshold}")));
    }
    if shares == 1 {
        return Ok(vec![Zeroizing::new(secret.to_vec())]);
    }
    if threshold < 2 {
        return Err(CryptoError::Shamir("threshold must be at least 2 when splitting into more than one share".into()));
    }
    let parts = vsss_rs::Gf256::split_array(threshold, shares, secret, SystemRng)
        .map_err(|e| CryptoError::Shamir(format!("split failed: {e:?}")))?;
    Ok(parts.into_iter().map(Zeroizing::new).collect())
}

/// Recovers the secret from shares produced by [`split`].
pub fn combine(parts: &[Zeroizing<Vec<u8>>]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    if parts.len() == 1 {
        return Ok(parts[0].clone());
    }
    let first = parts.first().map(|p| p.len()).unwrap_or(0);
    if first < 2 || parts.iter().any(|p| p.len() != first) {
        return Err(CryptoError::Shamir("shares have mismatched lengths".into()));
    }
    let mut ids: Vec<u8> = parts.iter().map(|p| p[0]).collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.len() != parts.len() || ids.contains(&0) {
        return Err(CryptoError::Shamir("duplicate or invalid share identifiers".into()));
    }
    let raw: Vec<Vec<u8>> = parts.iter().map(|p| p.to_vec()).collect();
    let out = vsss_rs::Gf256::combine_array(&raw)
        .map(Zeroizing::new)
        .map_err(|e| CryptoError::Shamir(format!("combine failed: {e:?}")));
    for mut r in raw {
        zeroize::Zeroize::zeroize(&mut r);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_threshold_subset_recovers_the_secret() {
        let secret = [42u8; 32];
        let parts = split(&secret, 5, 3).unwrap();
        assert_eq!(parts.len(), 5);
        assert!(parts.iter().all(|p| p.len() == 33));
        for combo in [[0, 1, 2], [4, 2, 0], [1, 3, 4]] {
            let subset: Vec<_> = combo.iter().map(|i| parts[*i].clone()).collect();
            assert_eq!(&**combine(&subset).unwrap(), &secret);
        }
    }

    #[test]
    fn fewer_than_threshold_does_not_recover() {
        let secret = [7u8; 32];
        let parts = split(&secret, 5, 3).unwrap();
        let got = combine(&parts[..2]).unwrap();
        assert_ne!(&**got, &secret);
    }

    #[test]
    fn single_share_is_the_secret() {
        let parts = split(&[1, 2, 3], 1, 1).unwrap();
        assert_eq!(&**parts[0], &[1, 2, 3]);
        assert_eq!(&**combine(&parts).unwrap(), &[1, 2, 3]);
    }

    #[test]
    fn bad_parameters_are_refused() {
        assert!(split(&[1], 3, 4).is_err());
        assert!(split(&[1], 0, 0).is_err());
        assert!(split(&[1], 300, 2).is_err());
        assert!(split(&[1], 3, 1).is_err());
        let parts = split(&[1, 2], 3, 2).unwrap();
        assert!(combine(&[parts[0].clone(), parts[0].clone()]).is_err());
    }
}
