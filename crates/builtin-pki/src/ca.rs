//! The certificate work of the PKI engine, on rcgen (building and signing) and x509-parser
//! (reading): key generation, self-signed roots, CSRs, issuing, CRLs, and the facts the engine
//! stores about a certificate. No storage here.

use coffer_sdk::LogicalError;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CertificateSigningRequestParams,
    CrlDistributionPoint, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair,
    KeyUsagePurpose, RevokedCertParams, SanType, SerialNumber,
};
use std::net::IpAddr;
use time::OffsetDateTime;
use zeroize::Zeroizing;

pub type Result<T> = std::result::Result<T, LogicalError>;

fn bad(msg: impl Into<String>) -> LogicalError {
    LogicalError::bad_request(msg)
}

/// A key type and size as the API names them (`rsa` 2048, `ec` 256, `ed25519`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySpec {
    Rsa(u32),
    Ec(u32),
    Ed25519,
}

impl KeySpec {
    /// `key_type` and `key_bits` (0: the type's default), refused with OpenBao's wording.
    pub fn parse(key_type: &str, bits: i64) -> Result<KeySpec> {
        match key_type {
            "rsa" => match bits {
                0 | 2048 => Ok(KeySpec::Rsa(2048)),
                3072 => Ok(KeySpec::Rsa(3072)),
                4096 => Ok(KeySpec::Rsa(4096)),
                b => Err(bad(format!("unsupported bit length for RSA key: {b}"))),
            },
            "ec" => match bits {
                0 | 256 => Ok(KeySpec::Ec(256)),
                384 => Ok(KeySpec::Ec(384)),
                521 => Ok(KeySpec::Ec(521)),
                b => Err(bad(format!("unsupported bit length for EC key: {b}"))),
            },
            "ed25519" => Ok(KeySpec::Ed25519),
            "any" => Err(bad("key_type \"any\" is only allowed on roles, not for generating keys")),
            other => Err(bad(format!("unknown key type: {other}"))),
        }
    }

    pub fn type_name(self) -> &'static str {
        match self {
            KeySpec::Rsa(_) => "rsa",
            KeySpec::Ec(_) => "ec",
            KeySpec::Ed25519 => "ed25519",
        }
    }

    pub fn bits(self) -> u32 {
        match self {
            KeySpec::Rsa(b) | KeySpec::Ec(b) => b,
            KeySpec::Ed25519 => 0,
        }
    }

    fn algorithm(self) -> &'static rcgen::SignatureAlgorithm {
        match self {
            KeySpec::Rsa(_) => &rcgen::PKCS_RSA_SHA256,
            KeySpec::Ec(384) => &rcgen::PKCS_ECDSA_P384_SHA384,
            KeySpec::Ec(521) => &rcgen::PKCS_ECDSA_P521_SHA512,
            KeySpec::Ec(_) => &rcgen::PKCS_ECDSA_P256_SHA256,
            KeySpec::Ed25519 => &rcgen::PKCS_ED25519,
        }
    }

    /// A new key pair.
    pub fn generate(self) -> Result<KeyPair> {
        let r = match self {
            KeySpec::Rsa(bits) => {
                let size = match bits {
                    3072 => rcgen::RsaKeySize::_3072,
                    4096 => rcgen::RsaKeySize::_4096,
                    _ => rcgen::RsaKeySize::_2048,
                };
                KeyPair::generate_rsa_for(self.algorithm(), size)
            }
            _ => KeyPair::generate_for(self.algorithm()),
        };
        r.map_err(|e| LogicalError::internal("key generation failed").with_source(e))
    }
}

/// The key type and size of a stored key pair.
pub fn spec_of(key: &KeyPair) -> KeySpec {
    let alg = key.algorithm();
    if alg == &rcgen::PKCS_ED25519 {
        KeySpec::Ed25519
    } else if alg == &rcgen::PKCS_ECDSA_P384_SHA384 {
        KeySpec::Ec(384)
    } else if alg == &rcgen::PKCS_ECDSA_P521_SHA512 {
        KeySpec::Ec(521)
    } else if alg == &rcgen::PKCS_ECDSA_P256_SHA256 {
        KeySpec::Ec(256)
    } else {
        let bits = match key.public_key_raw().len() {
            n if n > 500 => 4096,
            n if n > 380 => 3072,
            _ => 2048,
        };
        KeySpec::Rsa(bits)
    }
}

/// A stored private key (PKCS#8 PEM) back as a key pair.
pub fn load_key(pem: &str) -> Result<KeyPair> {
    // drop-cause: the error of a private-key parse could describe the key material.
    KeyPair::from_pem(pem).map_err(|_| LogicalError::internal("a stored private key cannot be read"))
}

/// A private key the operator gave (`pem_bundle`, `revoke-with-key`).
pub fn parse_key(pem: &str) -> Result<KeyPair> {
    // drop-cause: the parse error could quote the operator's key material.
    KeyPair::from_pem(pem).map_err(|_| bad("the private key is not a PEM private key (PKCS#8, PKCS#1 or SEC1)"))
}

/// The private key in PEM, for `exported` answers and storage.
pub fn key_pem(key: &KeyPair) -> Zeroizing<String> {
    Zeroizing::new(key.serialize_pem())
}

/// Subject and names of a certificate to make.
#[derive(Debug, Default, Clone)]
pub struct Subject {
    pub common_name: String,
    pub organization: Vec<String>,
    pub ou: Vec<String>,
    pub country: Vec<String>,
    pub locality: Vec<String>,
    pub province: Vec<String>,
    pub street_address: Vec<String>,
    pub postal_code: Vec<String>,
    pub serial_number: String,
    pub dns_names: Vec<String>,
    pub emails: Vec<String>,
    pub ips: Vec<IpAddr>,
    pub uris: Vec<String>,
}

impl Subject {
    /// Refuses what cannot be encoded: a subject serialNumber outside PrintableString.
    pub fn check(&self) -> Result<()> {
        if !self.serial_number.is_empty()
            && rcgen::string::PrintableString::try_from(self.serial_number.clone()).is_err()
        {
            return Err(bad("serial_number may hold letters, digits, spaces and '()+,-./:=? only"));
        }
        Ok(())
    }

    fn distinguished_name(&self) -> DistinguishedName {
        let mut dn = DistinguishedName::new();
        for c in &self.country {
            dn.push(DnType::CountryName, c.as_str());
        }
        for p in &self.province {
            dn.push(DnType::StateOrProvinceName, p.as_str());
        }
        for l in &self.locality {
            dn.push(DnType::LocalityName, l.as_str());
        }
        for o in &self.organization {
            dn.push(DnType::OrganizationName, o.as_str());
        }
        for u in &self.ou {
            dn.push(DnType::OrganizationalUnitName, u.as_str());
        }
        for a in &self.street_address {
            dn.push(DnType::CustomDnType(vec![2, 5, 4, 9]), a.as_str());
        }
        for p in &self.postal_code {
            dn.push(DnType::CustomDnType(vec![2, 5, 4, 17]), p.as_str());
        }
        // Validated as a PrintableString when the request is read (`Subject::check`).
        if let Ok(sn) = rcgen::string::PrintableString::try_from(self.serial_number.clone()) {
            if !self.serial_number.is_empty() {
                dn.push(DnType::CustomDnType(vec![2, 5, 4, 5]), rcgen::DnValue::PrintableString(sn));
            }
        }
        if !self.common_name.is_empty() {
            dn.push(DnType::CommonName, self.common_name.as_str());
        }
        dn
    }

    fn sans(&self) -> Result<Vec<SanType>> {
        let ia5 = |s: &str| {
            rcgen::string::Ia5String::try_from(s.to_string())
                .map_err(|e| bad(format!("{s:?} is not a valid name for a certificate")).with_source(e))
        };
        let mut out = Vec::new();
        for d in &self.dns_names {
            out.push(SanType::DnsName(ia5(d)?));
        }
        for e in &self.emails {
            out.push(SanType::Rfc822Name(ia5(e)?));
        }
        for ip in &self.ips {
            out.push(SanType::IpAddress(*ip));
        }
        for u in &self.uris {
            out.push(SanType::URI(ia5(u)?));
        }
        Ok(out)
    }
}

/// What a certificate is for.
#[derive(Debug, Clone)]
pub enum Usage {
    /// A CA: `max_path_length` (-1: no limit).
    Ca { max_path_length: i64 },
    /// An end-entity certificate with these key usages and extended key usages.
    Leaf { key_usages: Vec<KeyUsagePurpose>, ext_key_usages: Vec<ExtendedKeyUsagePurpose> },
}

/// The AIA and CRL distribution point URLs (`config/urls`).
#[derive(Debug, Default, Clone)]
pub struct Urls {
    pub issuing_certificates: Vec<String>,
    pub crl_distribution_points: Vec<String>,
    pub ocsp_servers: Vec<String>,
}

/// The parameters of a certificate to sign.
pub fn params(
    subject: &Subject,
    usage: &Usage,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    urls: &Urls,
) -> Result<CertificateParams> {
    let mut p = CertificateParams::default();
    p.distinguished_name = subject.distinguished_name();
    p.subject_alt_names = subject.sans()?;
    p.not_before = not_before;
    p.not_after = not_after;
    p.serial_number = Some(new_serial()?);
    p.key_identifier_method = KeyIdMethod::Sha256;
    p.use_authority_key_identifier_extension = true;
    match usage {
        Usage::Ca { max_path_length } => {
            p.is_ca = if *max_path_length < 0 {
                IsCa::Ca(BasicConstraints::Unconstrained)
            } else {
                IsCa::Ca(BasicConstraints::Constrained(u8::try_from(*max_path_length).unwrap_or(u8::MAX)))
            };
            p.key_usages =
                vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        }
        Usage::Leaf { key_usages, ext_key_usages } => {
            p.is_ca = IsCa::NoCa;
            p.key_usages = key_usages.clone();
            p.extended_key_usages = ext_key_usages.clone();
        }
    }
    if !urls.crl_distribution_points.is_empty() {
        p.crl_distribution_points = vec![CrlDistributionPoint { uris: urls.crl_distribution_points.clone() }];
    }
    if !urls.issuing_certificates.is_empty() || !urls.ocsp_servers.is_empty() {
        p.custom_extensions.push(authority_info_access(&urls.ocsp_servers, &urls.issuing_certificates));
    }
    Ok(p)
}

/// The Authority Information Access extension (RFC 5280 4.2.2.1): an OCSP access description
/// per OCSP URL, then a caIssuers one per issuing-certificate URL.
fn authority_info_access(ocsp: &[String], issuers: &[String]) -> rcgen::CustomExtension {
    let ocsp_oid = yasna::models::ObjectIdentifier::from_slice(&[1, 3, 6, 1, 5, 5, 7, 48, 1]);
    let ca_issuers = yasna::models::ObjectIdentifier::from_slice(&[1, 3, 6, 1, 5, 5, 7, 48, 2]);
    let der = yasna::construct_der(|w| {
        w.write_sequence(|w| {
            for (oid, u) in ocsp.iter().map(|u| (&ocsp_oid, u)).chain(issuers.iter().map(|u| (&ca_issuers, u))) {
                w.next().write_sequence(|w| {
                    w.next().write_oid(oid);
                    w.next().write_tagged_implicit(yasna::Tag::context(6), |w| w.write_ia5_string(u));
                });
            }
        })
    });
    rcgen::CustomExtension::from_oid_content(&[1, 3, 6, 1, 5, 5, 7, 1, 1], der)
}

/// A random positive 20-byte serial, as RFC 5280 allows at most.
fn new_serial() -> Result<SerialNumber> {
    let mut b = [0u8; 19];
    getrandom(&mut b)?;
    let mut v = Vec::with_capacity(20);
    v.push(0x01 | (b[0] & 0x3f));
    v.extend_from_slice(&b[1..]);
    Ok(SerialNumber::from_slice(&v))
}

fn getrandom(buf: &mut [u8]) -> Result<()> {
    aws_lc_rs::rand::fill(buf).map_err(|e| LogicalError::internal("the random generator failed").with_source(e))
}

/// A self-signed CA certificate.
pub fn self_signed(params: &CertificateParams, key: &KeyPair) -> Result<String> {
    params.self_signed(key).map(|c| c.pem()).map_err(|e| LogicalError::internal("signing failed").with_source(e))
}

/// A certificate for `subject_key`, signed by the issuer (its certificate and key).
pub fn sign(
    params: &CertificateParams,
    subject_key: &impl rcgen::PublicKeyData,
    issuer_pem: &str,
    issuer_key: &KeyPair,
) -> Result<String> {
    let issuer = Issuer::from_ca_cert_pem(issuer_pem, issuer_key)
        .map_err(|e| LogicalError::internal("the issuer's certificate cannot be read").with_source(e))?;
    params
        .signed_by(subject_key, &issuer)
        .map(|c| c.pem())
        .map_err(|e| LogicalError::internal("signing failed").with_source(e))
}

/// A CSR, its signature checked.
pub fn parse_csr(pem: &str) -> Result<CertificateSigningRequestParams> {
    CertificateSigningRequestParams::from_pem(pem.trim()).map_err(|e| match e {
        rcgen::Error::InvalidCertificationRequestSignature => {
            bad("the CSR's signature does not verify: it was not made with the key it carries").with_source(e)
        }
        rcgen::Error::UnsupportedExtension => {
            bad("the CSR asks for an extension this engine does not copy").with_source(e)
        }
        _ => bad("the csr is not a PEM certificate signing request").with_source(e),
    })
}

/// A CSR for a new key (intermediate/generate).
pub fn csr(subject: &Subject, key: &KeyPair) -> Result<String> {
    let mut p = CertificateParams::default();
    p.distinguished_name = subject.distinguished_name();
    p.subject_alt_names = subject.sans()?;
    p.serialize_request(key)
        .and_then(|c| c.pem())
        .map_err(|e| LogicalError::internal("making the CSR failed").with_source(e))
}

/// One revoked certificate on a CRL.
pub struct Revoked {
    pub serial: Vec<u8>,
    pub time: OffsetDateTime,
}

/// A CRL signed by the issuer, in DER.
pub fn crl(
    issuer_pem: &str,
    issuer_key: &KeyPair,
    number: u64,
    revoked: &[Revoked],
    expiry_secs: i64,
) -> Result<Vec<u8>> {
    let issuer = Issuer::from_ca_cert_pem(issuer_pem, issuer_key)
        .map_err(|e| LogicalError::internal("the issuer's certificate cannot be read").with_source(e))?;
    let now = OffsetDateTime::now_utc();
    let p = CertificateRevocationListParams {
        this_update: now,
        next_update: now + time::Duration::seconds(expiry_secs.max(60)),
        crl_number: SerialNumber::from_slice(&number.to_be_bytes()),
        issuing_distribution_point: None,
        revoked_certs: revoked
            .iter()
            .map(|r| RevokedCertParams {
                serial_number: SerialNumber::from_slice(&r.serial),
                revocation_time: r.time,
                reason_code: None,
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: KeyIdMethod::Sha256,
    };
    p.signed_by(&issuer)
        .map(|c| c.der().to_vec())
        .map_err(|e| LogicalError::internal("signing the CRL failed").with_source(e))
}

/// Writes the AlgorithmIdentifier of the signatures a key of `spec` makes (as rcgen signs).
pub fn write_sig_alg(w: yasna::DERWriter, spec: KeySpec) {
    w.write_sequence(|w| {
        let oid: &[u64] = match spec {
            KeySpec::Rsa(_) => &[1, 2, 840, 113549, 1, 1, 11],
            KeySpec::Ec(384) => &[1, 2, 840, 10045, 4, 3, 3],
            KeySpec::Ec(521) => &[1, 2, 840, 10045, 4, 3, 4],
            KeySpec::Ec(_) => &[1, 2, 840, 10045, 4, 3, 2],
            KeySpec::Ed25519 => &[1, 3, 101, 112],
        };
        w.next().write_oid(&yasna::models::ObjectIdentifier::from_slice(oid));
        if matches!(spec, KeySpec::Rsa(_)) {
            w.next().write_null();
        }
    })
}

/// A delta CRL (RFC 5280 §5.2.4): the revocations since the complete CRL numbered
/// `base_number`, marked by the critical Delta CRL Indicator. rcgen builds no delta CRLs, so
/// the TBSCertList is written with yasna, in rcgen's layout (version 2, AKI, CRL number), and
/// signed with the issuer's key.
pub fn delta_crl(
    issuer_pem: &str,
    issuer_key: &KeyPair,
    number: u64,
    base_number: u64,
    revoked: &[Revoked],
    expiry_secs: i64,
) -> Result<Vec<u8>> {
    use yasna::models::{ObjectIdentifier, UTCTime};
    let der = pem_to_der(issuer_pem)?;
    let (_, c) = x509_parser::parse_x509_certificate(&der)
        .map_err(|e| LogicalError::internal("the issuer's certificate cannot be read").with_source(e))?;
    let subject = c.subject().as_raw().to_vec();
    let ski = c.extensions().iter().find_map(|e| match e.parsed_extension() {
        x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0.to_vec()),
        _ => None,
    });
    let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let next = now + time::Duration::seconds(expiry_secs.max(60));
    let spec = spec_of(issuer_key);
    let ext = |w: yasna::DERWriter, oid: &[u64], critical: bool, value: Vec<u8>| {
        w.write_sequence(|w| {
            w.next().write_oid(&ObjectIdentifier::from_slice(oid));
            if critical {
                w.next().write_bool(true);
            }
            w.next().write_bytes(&value);
        })
    };
    let int = |n: u64| yasna::construct_der(|w| w.write_u64(n));
    let tbs = yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_u8(1);
            write_sig_alg(w.next(), spec);
            w.next().write_der(&subject);
            w.next().write_utctime(&UTCTime::from_datetime(now));
            w.next().write_utctime(&UTCTime::from_datetime(next));
            if !revoked.is_empty() {
                w.next().write_sequence(|w| {
                    for r in revoked {
                        w.next().write_sequence(|w| {
                            w.next().write_bigint_bytes(&r.serial, true);
                            w.next().write_utctime(&UTCTime::from_datetime(r.time));
                        });
                    }
                });
            }
            w.next().write_tagged(yasna::Tag::context(0), |w| {
                w.write_sequence(|w| {
                    if let Some(k) = &ski {
                        let aki = yasna::construct_der(|w| {
                            w.write_sequence(|w| {
                                w.next().write_tagged_implicit(yasna::Tag::context(0), |w| w.write_bytes(k))
                            })
                        });
                        ext(w.next(), &[2, 5, 29, 35], false, aki);
                    }
                    ext(w.next(), &[2, 5, 29, 20], false, int(number));
                    ext(w.next(), &[2, 5, 29, 27], true, int(base_number));
                })
            });
        })
    });
    let sig = rcgen::SigningKey::sign(issuer_key, &tbs)
        .map_err(|e| LogicalError::internal("signing the delta CRL failed").with_source(e))?;
    Ok(yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_der(&tbs);
            write_sig_alg(w.next(), spec);
            w.next().write_bitvec_bytes(&sig, sig.len() * 8);
        })
    }))
}

/// What the engine reads from a certificate.
#[derive(Debug, Clone)]
pub struct CertFacts {
    pub serial: Vec<u8>,
    pub not_after: i64,
    pub is_ca: bool,
    pub subject: String,
    pub issuer: String,
    /// The SubjectPublicKeyInfo, DER: matches a certificate to its key.
    pub spki: Vec<u8>,
    pub self_signed: bool,
}

/// Splits a PEM bundle into its certificates and its private keys (PEM texts).
pub fn split_bundle(bundle: &str) -> Result<(Vec<String>, Vec<Zeroizing<String>>)> {
    let items = pem_items(bundle)?;
    let mut certs = Vec::new();
    let mut keys = Vec::new();
    for (tag, text) in items {
        match tag.as_str() {
            "CERTIFICATE" => certs.push(text.to_string()),
            t if t.ends_with("PRIVATE KEY") => keys.push(text),
            "EC PARAMETERS" => {}
            other => return Err(bad(format!("unexpected PEM block in the bundle: {other}"))),
        }
    }
    Ok((certs, keys))
}

fn pem_items(bundle: &str) -> Result<Vec<(String, Zeroizing<String>)>> {
    let mut out = Vec::new();
    let mut rest = bundle;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = &rest[start + 11..];
        let tag_end = after.find("-----").ok_or_else(|| bad("malformed PEM: a BEGIN line is not closed"))?;
        let tag = after[..tag_end].to_string();
        let end_marker = format!("-----END {tag}-----");
        let end =
            rest[start..].find(&end_marker).ok_or_else(|| bad(format!("malformed PEM: no END line for {tag}")))?;
        let block = &rest[start..start + end + end_marker.len()];
        out.push((tag, Zeroizing::new(format!("{block}\n"))));
        rest = &rest[start + end + end_marker.len()..];
    }
    if out.is_empty() {
        return Err(bad("no PEM data found"));
    }
    Ok(out)
}

/// Reads a certificate in PEM.
pub fn cert_facts(pem: &str) -> Result<CertFacts> {
    let der = pem_to_der(pem)?;
    let (_, c) = x509_parser::parse_x509_certificate(&der)
        .map_err(|e| bad("the certificate cannot be parsed").with_source(e))?;
    let is_ca = c.basic_constraints().ok().flatten().is_some_and(|b| b.value.ca);
    Ok(CertFacts {
        serial: c.raw_serial().to_vec(),
        not_after: c.validity().not_after.timestamp(),
        is_ca,
        subject: c.subject().to_string(),
        issuer: c.issuer().to_string(),
        spki: c.public_key().raw.to_vec(),
        self_signed: c.subject().as_raw() == c.issuer().as_raw(),
    })
}

/// The SubjectPublicKeyInfo of a key pair, DER.
pub fn key_spki(key: &KeyPair) -> Vec<u8> {
    rcgen::PublicKeyData::subject_public_key_info(key)
}

/// The DER of the first PEM certificate in `pem`.
pub fn pem_to_der(pem: &str) -> Result<Vec<u8>> {
    let (_, p) = x509_parser::pem::parse_x509_pem(pem.trim().as_bytes())
        .map_err(|e| bad("the certificate is not PEM").with_source(e))?;
    if p.label != "CERTIFICATE" {
        return Err(bad(format!("expected a CERTIFICATE PEM block, found {}", p.label)));
    }
    Ok(p.contents)
}

/// `01:ab:…`, as the API shows serials.
pub fn serial_colons(serial: &[u8]) -> String {
    serial.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

/// A serial as a client gives it (`01:ab`, `01-ab`, `01ab`) back as bytes.
pub fn parse_serial(s: &str) -> Result<Vec<u8>> {
    let hex: String = s.chars().filter(|c| *c != ':' && *c != '-').collect();
    if hex.is_empty() || hex.len() > 80 {
        return Err(bad(format!("invalid serial number: {s:?}")));
    }
    hex::decode(&hex).map_err(|e| bad(format!("invalid serial number: {s:?}")).with_source(e))
}

/// PEM of DER bytes with a label.
pub fn to_pem(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or(""));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}
