//! The few DER and PEM shapes transit reads and writes: PKCS#1, PKCS#8, SEC1 and
//! SubjectPublicKeyInfo for RSA, NIST curves and Ed25519. Buffers that may hold private key
//! material are `Zeroizing`.

use base64::Engine;
use zeroize::Zeroizing;

pub(crate) type Bytes = Zeroizing<Vec<u8>>;

/// 1.2.840.113549.1.1.1
pub(crate) const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
/// 1.2.840.10045.2.1
pub(crate) const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// 1.2.840.10045.3.1.7
pub(crate) const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// 1.3.132.0.34
pub(crate) const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
/// 1.3.132.0.35
pub(crate) const OID_P521: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x23];
/// 1.3.101.112
pub(crate) const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;
const OCTET_STRING: u8 = 0x04;
const NULL: u8 = 0x05;
const OID: u8 = 0x06;

pub(crate) fn tlv(tag: u8, content: &[u8]) -> Bytes {
    let mut out = Zeroizing::new(Vec::with_capacity(content.len() + 6));
    out.push(tag);
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let be = n.to_be_bytes();
        let skip = be.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (be.len() - skip) as u8);
        out.extend_from_slice(&be[skip..]);
    }
    out.extend_from_slice(content);
    out
}

pub(crate) fn seq(parts: &[&[u8]]) -> Bytes {
    let mut body = Zeroizing::new(Vec::new());
    for p in parts {
        body.extend_from_slice(p);
    }
    tlv(SEQUENCE, &body)
}

/// A non-negative INTEGER from big-endian magnitude bytes.
pub(crate) fn uint(be: &[u8]) -> Bytes {
    let start = be.iter().take_while(|b| **b == 0).count();
    let mag = &be[start..];
    let mut body = Zeroizing::new(Vec::with_capacity(mag.len() + 1));
    if mag.is_empty() || mag[0] & 0x80 != 0 {
        body.push(0);
    }
    body.extend_from_slice(mag);
    tlv(INTEGER, &body)
}

fn oid(o: &[u8]) -> Bytes {
    tlv(OID, o)
}

fn octets(b: &[u8]) -> Bytes {
    tlv(OCTET_STRING, b)
}

fn bits(b: &[u8]) -> Bytes {
    let mut body = Zeroizing::new(Vec::with_capacity(b.len() + 1));
    body.push(0);
    body.extend_from_slice(b);
    tlv(BIT_STRING, &body)
}

/// Reads TLVs from a DER buffer.
pub(crate) struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Reader { data }
    }

    pub(crate) fn read(&mut self) -> Option<(u8, &'a [u8])> {
        let d = self.data;
        if d.len() < 2 {
            return None;
        }
        let tag = d[0];
        let (len, hdr) = if d[1] < 0x80 {
            (d[1] as usize, 2)
        } else {
            let n = (d[1] & 0x7f) as usize;
            if n == 0 || n > 4 || d.len() < 2 + n {
                return None;
            }
            let mut len = 0usize;
            for b in &d[2..2 + n] {
                len = (len << 8) | *b as usize;
            }
            (len, 2 + n)
        };
        if d.len() < hdr + len {
            return None;
        }
        self.data = &d[hdr + len..];
        Some((tag, &d[hdr..hdr + len]))
    }

    pub(crate) fn expect(&mut self, tag: u8) -> Option<&'a [u8]> {
        match self.read()? {
            (t, c) if t == tag => Some(c),
            _ => None,
        }
    }

    /// An INTEGER's magnitude, without the sign byte.
    pub(crate) fn uint(&mut self) -> Option<&'a [u8]> {
        let c = self.expect(INTEGER)?;
        if c.first().is_some_and(|b| b & 0x80 != 0) {
            return None;
        }
        let start = c.iter().take_while(|b| **b == 0).count();
        Some(&c[start..])
    }
}

/// An RSA private key's components, big-endian magnitudes.
pub(crate) struct RsaParts {
    pub n: Bytes,
    pub e: Bytes,
    pub d: Bytes,
    pub p: Bytes,
    pub q: Bytes,
    pub dp: Bytes,
    pub dq: Bytes,
    pub qinv: Bytes,
}

/// Parses PKCS#1 `RSAPrivateKey` (two primes).
pub(crate) fn parse_rsa_private(der: &[u8]) -> Option<RsaParts> {
    let mut outer = Reader::new(der);
    let body = outer.expect(SEQUENCE)?;
    let mut r = Reader::new(body);
    let version = r.uint()?;
    if !version.is_empty() {
        return None;
    }
    let mut next = || r.uint().map(|v| Zeroizing::new(v.to_vec()));
    Some(RsaParts {
        n: next()?,
        e: next()?,
        d: next()?,
        p: next()?,
        q: next()?,
        dp: next()?,
        dq: next()?,
        qinv: next()?,
    })
}

/// Encodes PKCS#1 `RSAPrivateKey`.
pub(crate) fn rsa_private(p: &RsaParts) -> Bytes {
    seq(&[
        &uint(&[0]),
        &uint(&p.n),
        &uint(&p.e),
        &uint(&p.d),
        &uint(&p.p),
        &uint(&p.q),
        &uint(&p.dp),
        &uint(&p.dq),
        &uint(&p.qinv),
    ])
}

/// Returns (n, e) of a PKCS#1 private key.
pub(crate) fn rsa_public_parts(pkcs1: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut outer = Reader::new(pkcs1);
    let mut r = Reader::new(outer.expect(SEQUENCE)?);
    r.uint()?;
    Some((r.uint()?.to_vec(), r.uint()?.to_vec()))
}

pub(crate) fn rsa_spki(n: &[u8], e: &[u8]) -> Vec<u8> {
    let key = seq(&[&uint(n), &uint(e)]);
    seq(&[&seq(&[&oid(OID_RSA), &[NULL, 0]]), &bits(&key)]).to_vec()
}

pub(crate) fn rsa_pkcs8(pkcs1: &[u8]) -> Bytes {
    seq(&[&uint(&[0]), &seq(&[&oid(OID_RSA), &[NULL, 0]]), &octets(pkcs1)])
}

/// The private key inside a PKCS#8 `PrivateKeyInfo`.
pub(crate) fn pkcs8_inner(pkcs8: &[u8]) -> Option<Bytes> {
    let mut outer = Reader::new(pkcs8);
    let mut r = Reader::new(outer.expect(SEQUENCE)?);
    r.uint()?;
    r.expect(SEQUENCE)?;
    Some(Zeroizing::new(r.expect(OCTET_STRING)?.to_vec()))
}

pub(crate) fn ec_spki(curve_oid: &[u8], point: &[u8]) -> Vec<u8> {
    seq(&[&seq(&[&oid(OID_EC_PUBLIC_KEY), &oid(curve_oid)]), &bits(point)]).to_vec()
}

/// SEC1 `ECPrivateKey`; the curve parameters are included unless the key goes inside PKCS#8.
pub(crate) fn ec_private(curve_oid: &[u8], d: &[u8], point: &[u8], with_params: bool) -> Bytes {
    let params = tlv(0xa0, &oid(curve_oid));
    let public = tlv(0xa1, &bits(point));
    if with_params {
        seq(&[&uint(&[1]), &octets(d), &params, &public])
    } else {
        seq(&[&uint(&[1]), &octets(d), &public])
    }
}

pub(crate) fn ec_pkcs8(curve_oid: &[u8], d: &[u8], point: &[u8]) -> Bytes {
    let inner = ec_private(curve_oid, d, point, false);
    seq(&[&uint(&[0]), &seq(&[&oid(OID_EC_PUBLIC_KEY), &oid(curve_oid)]), &octets(&inner)])
}

pub(crate) fn ed25519_spki(public: &[u8]) -> Vec<u8> {
    seq(&[&seq(&[&oid(OID_ED25519)]), &bits(public)]).to_vec()
}

pub(crate) fn ed25519_pkcs8(seed: &[u8]) -> Bytes {
    seq(&[&uint(&[0]), &seq(&[&oid(OID_ED25519)]), &octets(&octets(seed))])
}

/// PEM with 64-column lines and a trailing newline.
pub(crate) fn pem(label: &str, der: &[u8]) -> Zeroizing<String> {
    let b64 = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(der));
    let mut out = Zeroizing::new(String::with_capacity(b64.len() + b64.len() / 64 + 64));
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_get_a_sign_byte_only_when_needed() {
        assert_eq!(uint(&[0x00, 0x7f]).as_slice(), &[2, 1, 0x7f]);
        assert_eq!(uint(&[0x80]).as_slice(), &[2, 2, 0, 0x80]);
        assert_eq!(uint(&[]).as_slice(), &[2, 1, 0]);
        let mut r = Reader::new(&[2, 2, 0, 0x80]);
        assert_eq!(r.uint().unwrap(), &[0x80]);
    }

    #[test]
    fn long_lengths_round_trip() {
        let content = vec![7u8; 300];
        let enc = tlv(OCTET_STRING, &content);
        assert_eq!(&enc[..4], &[4, 0x82, 0x01, 0x2c]);
        let mut r = Reader::new(&enc);
        assert_eq!(r.expect(OCTET_STRING).unwrap(), content.as_slice());
        assert!(r.read().is_none());
    }
}
