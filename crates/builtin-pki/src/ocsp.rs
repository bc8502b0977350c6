//! OCSP (RFC 6960): reading a request and building the signed answer, with yasna for the
//! ASN.1 and the issuer's key (rcgen on aws-lc-rs) for the signature. No storage here: the
//! engine finds the issuer and the certificate's status and hands them in.

use crate::ca;
use coffer_sdk::LogicalError;
use rcgen::KeyPair;
use time::OffsetDateTime;
use yasna::models::{GeneralizedTime, ObjectIdentifier};
use yasna::Tag;

type Result<T> = std::result::Result<T, LogicalError>;

/// `OCSPResponseStatus` values (RFC 6960 §4.2.1) the engine answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorStatus {
    /// 1: the request could not be read.
    Malformed,
    /// 6: the responder will not answer (OCSP disabled, no issuer to sign with).
    Unauthorized,
}

/// A certificate's status in an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertStatus {
    Good,
    /// Revoked at this Unix time.
    Revoked(i64),
    Unknown,
}

/// The hash algorithms a request may use for its CertID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HashAlg {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl HashAlg {
    fn from_oid(oid: &ObjectIdentifier) -> Option<HashAlg> {
        match oid.components().as_slice() {
            [1, 3, 14, 3, 2, 26] => Some(HashAlg::Sha1),
            [2, 16, 840, 1, 101, 3, 4, 2, 1] => Some(HashAlg::Sha256),
            [2, 16, 840, 1, 101, 3, 4, 2, 2] => Some(HashAlg::Sha384),
            [2, 16, 840, 1, 101, 3, 4, 2, 3] => Some(HashAlg::Sha512),
            _ => None,
        }
    }

    fn digest(self, data: &[u8]) -> Vec<u8> {
        use aws_lc_rs::digest;
        let alg = match self {
            HashAlg::Sha1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
            HashAlg::Sha256 => &digest::SHA256,
            HashAlg::Sha384 => &digest::SHA384,
            HashAlg::Sha512 => &digest::SHA512,
        };
        digest::digest(alg, data).as_ref().to_vec()
    }
}

/// The one certificate a request asks about (the first of its list, as OpenBao answers).
#[derive(Debug, Clone)]
pub struct CertId {
    /// The CertID as the client encoded it, echoed in the answer.
    der: Vec<u8>,
    hash: HashAlg,
    name_hash: Vec<u8>,
    key_hash: Vec<u8>,
    /// The serial's content octets (as x509-parser's `raw_serial`).
    pub serial: Vec<u8>,
}

impl CertId {
    /// Whether the CA certificate (PEM) is the issuer this CertID names: the hash of its
    /// subject and of its public key (RFC 6960 §4.1.1).
    pub fn names_issuer(&self, issuer_pem: &str) -> bool {
        let Ok(der) = ca::pem_to_der(issuer_pem) else { return false };
        let Ok((_, c)) = x509_parser::parse_x509_certificate(&der) else { return false };
        self.hash.digest(c.subject().as_raw()) == self.name_hash
            && self.hash.digest(&c.public_key().subject_public_key.data) == self.key_hash
    }
}

/// The elements of a DER SEQUENCE, each as its full encoding.
fn elements(der: &[u8]) -> Option<Vec<Vec<u8>>> {
    yasna::parse_der(der, |r| {
        r.read_sequence(|r| {
            let mut v = Vec::new();
            while let Some(e) = r.read_optional(|r| r.read_der())? {
                v.push(e);
            }
            Ok(v)
        })
    })
    .ok()
}

fn tag_of(der: &[u8]) -> Option<Tag> {
    yasna::parse_der(der, |r| r.read_tagged_der()).ok().map(|t| t.tag())
}

/// Reads an `OCSPRequest` (DER) and returns the CertID of its first request; `None` when
/// it is not a well-formed request.
pub fn parse_request(der: &[u8]) -> Option<CertId> {
    let outer = elements(der)?;
    let tbs = elements(outer.first()?)?;
    // version [0], requestorName [1] (both optional), then the requestList.
    let list = tbs.iter().find(|e| tag_of(e) == Some(yasna::tags::TAG_SEQUENCE))?;
    let requests = elements(list)?;
    let first = elements(requests.first()?)?;
    let cert_id = first.first()?.clone();
    let (hash, name_hash, key_hash, serial) = yasna::parse_der(&cert_id, |r| {
        r.read_sequence(|r| {
            let oid = r.next().read_sequence(|r| {
                let oid = r.next().read_oid()?;
                // Parameters: absent or NULL.
                r.read_optional(|r| r.read_null())?;
                Ok(oid)
            })?;
            let name = r.next().read_bytes()?;
            let key = r.next().read_bytes()?;
            let serial = r.next().read_tagged_der()?;
            Ok((oid, name, key, serial))
        })
    })
    .ok()?;
    if serial.tag() != yasna::tags::TAG_INTEGER || serial.value().is_empty() {
        return None;
    }
    Some(CertId { der: cert_id, hash: HashAlg::from_oid(&hash)?, name_hash, key_hash, serial: serial.value().to_vec() })
}

/// An answer that carries only a status (malformed request, unauthorized).
pub fn error_response(status: ErrorStatus) -> Vec<u8> {
    let code = match status {
        ErrorStatus::Malformed => 1,
        ErrorStatus::Unauthorized => 6,
    };
    yasna::construct_der(|w| w.write_sequence(|w| w.next().write_enum(code)))
}

fn gtime(t: i64) -> GeneralizedTime {
    GeneralizedTime::from_datetime(OffsetDateTime::from_unix_timestamp(t).unwrap_or(OffsetDateTime::UNIX_EPOCH))
}

/// A successful answer about `id`, signed by the issuer (`signer_pem`, its key `key`); the
/// responder is named by the issuer's subject, as OpenBao names it.
pub fn response(
    signer_pem: &str,
    key: &KeyPair,
    id: &CertId,
    status: CertStatus,
    now: i64,
    next_update: Option<i64>,
) -> Result<Vec<u8>> {
    let der = ca::pem_to_der(signer_pem)?;
    let (_, c) = x509_parser::parse_x509_certificate(&der)
        .map_err(|e| LogicalError::internal("the issuer's certificate cannot be read").with_source(e))?;
    let subject = c.subject().as_raw().to_vec();
    let tbs = yasna::construct_der(|w| {
        w.write_sequence(|w| {
            // version v1 is the default, left out; responderID byName [1].
            w.next().write_tagged(Tag::context(1), |w| w.write_der(&subject));
            w.next().write_generalized_time(&gtime(now));
            w.next().write_sequence(|w| {
                w.next().write_sequence(|w| {
                    w.next().write_der(&id.der);
                    match status {
                        CertStatus::Good => w.next().write_tagged_implicit(Tag::context(0), |w| w.write_null()),
                        CertStatus::Unknown => w.next().write_tagged_implicit(Tag::context(2), |w| w.write_null()),
                        CertStatus::Revoked(at) => w.next().write_tagged_implicit(Tag::context(1), |w| {
                            w.write_sequence(|w| w.next().write_generalized_time(&gtime(at)))
                        }),
                    }
                    w.next().write_generalized_time(&gtime(now));
                    if let Some(n) = next_update {
                        w.next().write_tagged(Tag::context(0), |w| w.write_generalized_time(&gtime(n)));
                    }
                })
            });
        })
    });
    let spec = ca::spec_of(key);
    let sig = rcgen::SigningKey::sign(key, &tbs)
        .map_err(|e| LogicalError::internal("signing the OCSP answer failed").with_source(e))?;
    let basic = yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_der(&tbs);
            ca::write_sig_alg(w.next(), spec);
            w.next().write_bitvec_bytes(&sig, sig.len() * 8);
        })
    });
    Ok(yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_enum(0);
            w.next().write_tagged(Tag::context(0), |w| {
                w.write_sequence(|w| {
                    w.next().write_oid(&ObjectIdentifier::from_slice(&[1, 3, 6, 1, 5, 5, 7, 48, 1, 1]));
                    w.next().write_bytes(&basic);
                })
            });
        })
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_not_a_request() {
        assert!(parse_request(b"garbage").is_none());
        assert!(parse_request(&[0x30, 0x00]).is_none());
    }

    #[test]
    fn error_answers_carry_only_the_status() {
        assert_eq!(error_response(ErrorStatus::Malformed), vec![0x30, 0x03, 0x0a, 0x01, 0x01]);
        assert_eq!(error_response(ErrorStatus::Unauthorized), vec![0x30, 0x03, 0x0a, 0x01, 0x06]);
    }
}
