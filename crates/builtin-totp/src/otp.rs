//! RFC 4226 (HOTP) and RFC 6238 (TOTP) codes, base32 secrets, and Go-style duration text.

use aws_lc_rs::hmac;
use data_encoding::{Encoding, Specification};
use std::sync::OnceLock;
use subtle::ConstantTimeEq;

/// The HMAC hash of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Sha1,
    Sha256,
    Sha512,
}

impl Algorithm {
    /// Parses the names OpenBao accepts (upper case only).
    pub fn parse(s: &str) -> Option<Algorithm> {
        match s {
            "SHA1" => Some(Algorithm::Sha1),
            "SHA256" => Some(Algorithm::Sha256),
            "SHA512" => Some(Algorithm::Sha512),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha1 => "SHA1",
            Algorithm::Sha256 => "SHA256",
            Algorithm::Sha512 => "SHA512",
        }
    }

    fn hmac(self) -> hmac::Algorithm {
        match self {
            Algorithm::Sha1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            Algorithm::Sha256 => hmac::HMAC_SHA256,
            Algorithm::Sha512 => hmac::HMAC_SHA512,
        }
    }
}

/// The HOTP value of `counter` (RFC 4226 §5.3), `digits` wide with leading zeros.
pub fn hotp(alg: Algorithm, key: &[u8], counter: u64, digits: u32) -> String {
    let k = hmac::Key::new(alg.hmac(), key);
    let tag = hmac::sign(&k, &counter.to_be_bytes());
    let mac = tag.as_ref();
    let offset = usize::from(mac[mac.len() - 1] & 0x0f);
    let bin = u32::from_be_bytes([mac[offset], mac[offset + 1], mac[offset + 2], mac[offset + 3]]) & 0x7fff_ffff;
    let value = u64::from(bin) % 10u64.pow(digits);
    format!("{value:0width$}", width = digits as usize)
}

/// The TOTP value at `unix` seconds (RFC 6238 §4, T0 = 0).
pub fn totp_at(alg: Algorithm, key: &[u8], unix: u64, period: u64, digits: u32) -> String {
    hotp(alg, key, unix / period.max(1), digits)
}

/// Whether `code` is the TOTP value of any time step within `skew` steps of `unix`.
/// Every candidate is computed and compared in constant time; no early exit.
pub fn validate(alg: Algorithm, key: &[u8], code: &str, unix: u64, period: u64, digits: u32, skew: u64) -> bool {
    let t = unix / period.max(1);
    let mut ok = subtle::Choice::from(0u8);
    for step in t.saturating_sub(skew)..=t.saturating_add(skew) {
        let want = hotp(alg, key, step, digits);
        ok |= want.as_bytes().ct_eq(code.as_bytes());
    }
    ok.into()
}

fn base32_nopad() -> &'static Encoding {
    static E: OnceLock<Encoding> = OnceLock::new();
    E.get_or_init(|| {
        let mut spec = Specification::new();
        spec.symbols.push_str("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567");
        // Like Go's decoder: unused low bits of the last symbol are not checked.
        spec.check_trailing_bits = false;
        spec.encoding().expect("valid base32 specification")
    })
}

/// Base32 without padding, as secrets appear in otpauth URLs.
pub fn base32_encode(bytes: &[u8]) -> String {
    base32_nopad().encode(bytes)
}

/// A base32 input that does not decode, in Go's wording: only the position, never the
/// offending character (the input is a key).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("illegal base32 data at input byte {at}")]
pub struct Base32Error {
    pub at: usize,
}

/// Decodes a base32 secret as OpenBao does: upper-cased, padded to a multiple of eight with
/// `=`, then strict RFC 4648 decoding. The error names the offending input byte.
pub fn base32_decode(input: &str) -> Result<Vec<u8>, Base32Error> {
    let mut s = input.to_ascii_uppercase().into_bytes();
    if !s.len().is_multiple_of(8) {
        s.resize(s.len() + 8 - s.len() % 8, b'=');
    }
    let illegal = |at: usize| Base32Error { at };
    let mut data_len = s.len();
    for (i, &c) in s.iter().enumerate() {
        if matches!(c, b'A'..=b'Z' | b'2'..=b'7') {
            continue;
        }
        if c != b'=' {
            return Err(illegal(i));
        }
        // Padding: after 2, 4, 5 or 7 symbols of a block, up to its end, and in the last block
        // only. The reported positions follow Go's decoder.
        let in_block = i % 8;
        if !matches!(in_block, 2 | 4 | 5 | 7) {
            return Err(illegal(i));
        }
        let block_end = i - in_block + 8;
        if let Some(k) = s[i + 1..block_end].iter().position(|&b| b != b'=') {
            return Err(illegal(i + k));
        }
        if block_end != s.len() {
            return Err(illegal(i));
        }
        data_len = i;
        break;
    }
    base32_nopad().decode(&s[..data_len]).map_err(|e| illegal(e.position))
}

/// A number of seconds as Go's `time.Duration` prints it ("30s", "1m0s", "1h1m40s").
pub fn go_duration(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    if h > 0 {
        format!("{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4226_appendix_d() {
        let key = b"12345678901234567890";
        let want = ["755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"];
        for (i, w) in want.iter().enumerate() {
            assert_eq!(hotp(Algorithm::Sha1, key, i as u64, 6), *w);
        }
    }

    #[test]
    fn base32_like_go() {
        assert_eq!(base32_decode("JBSWY3DPEHPK3PXP").unwrap(), b"Hello!\xde\xad\xbe\xef");
        assert_eq!(base32_decode("jbswy3dpehpk3pxp").unwrap(), b"Hello!\xde\xad\xbe\xef");
        assert!(base32_decode("JBSWY3DPEHPK3PX").is_ok());
        assert!(base32_decode("JBSWY3DPEHPK3PX=").is_ok());
        assert_eq!(
            base32_decode("JBSWY3DPEHPK3PXP====").unwrap_err().to_string(),
            "illegal base32 data at input byte 16"
        );
        assert_eq!(base32_decode("JBSWY3DPEHPK3PXPA").unwrap_err().to_string(), "illegal base32 data at input byte 17");
        assert_eq!(
            base32_decode("JBSWY3DPEHPK3PXPAB1").unwrap_err().to_string(),
            "illegal base32 data at input byte 18"
        );
        assert_eq!(
            base32_decode("JBSWY3DPEHPK3PXPABC").unwrap_err().to_string(),
            "illegal base32 data at input byte 19"
        );
        assert_eq!(
            base32_decode("JBSWY3DPEHPK3PXPABCDEF").unwrap_err().to_string(),
            "illegal base32 data at input byte 22"
        );
        assert_eq!(base32_decode("JB=SWY3D").unwrap_err().to_string(), "illegal base32 data at input byte 2");
        assert_eq!(base32_decode("JBSW Y3DP").unwrap_err().to_string(), "illegal base32 data at input byte 4");
        assert_eq!(base32_decode("notbase32!").unwrap_err().to_string(), "illegal base32 data at input byte 9");
        assert_eq!(base32_decode("AB======CDEFGHIJ").unwrap_err().to_string(), "illegal base32 data at input byte 2");
        assert_eq!(base32_decode("ABCDEFG=ABCDEFGH").unwrap_err().to_string(), "illegal base32 data at input byte 7");
        let k = [7u8, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
        assert_eq!(base32_decode(&base32_encode(&k)).unwrap(), k);
    }

    #[test]
    fn durations_print_like_go() {
        assert_eq!(go_duration(30), "30s");
        assert_eq!(go_duration(60), "1m0s");
        assert_eq!(go_duration(3700), "1h1m40s");
    }
}
