//! OCSP checks of a client certificate at login, for trusted entries with `ocsp_enabled`.
//!
//! The request (RFC 6960, one CertID hashed with SHA-1, as OpenSSL and OpenBao send it) is
//! POSTed to each responder in turn: the entry's `ocsp_servers_override`, else the OCSP URLs
//! of the certificate's Authority Information Access extension. An answer counts only when it
//! is signed by the certificate's issuer, by a responder certificate that issuer (or one of
//! `ocsp_ca_certificates`) issued for OCSP signing, or by one of `ocsp_ca_certificates`; when
//! it names the certificate; and when it is current (`thisUpdate` not in the future nor older
//! than `ocsp_this_update_max_age`, `nextUpdate` not past). Encoding and decoding are
//! `x509-ocsp`/`der`; signatures are checked by `rustls-webpki` on aws-lc-rs; SHA-1 (the
//! CertID hash every responder understands, not a signature) by aws-lc-rs.

use der::asn1::{Null, OctetString};
use der::{Decode, Encode};
use rustls_pki_types::{CertificateDer, SignatureVerificationAlgorithm};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::AlgorithmIdentifierOwned;
use x509_ocsp::{BasicOcspResponse, CertId, CertStatus, OcspRequest, OcspResponse, OcspResponseStatus};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;

const SHA1: der::oid::ObjectIdentifier = der::oid::ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
const BASIC_RESPONSE: der::oid::ObjectIdentifier = der::oid::ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.1");
const OCSP_SIGNING: &str = "1.3.6.1.5.5.7.3.9";
/// The most bytes read from a responder.
const MAX_RESPONSE: u64 = 1 << 20;

/// An entry's OCSP settings, as `certs/<name>` stores them.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq)]
pub(crate) struct Settings {
    #[serde(default)]
    pub enabled: bool,
    /// PEM: further certificates that may sign answers or issue the responder's certificate.
    #[serde(default)]
    pub ca_certificates: String,
    #[serde(default)]
    pub servers_override: Vec<String>,
    #[serde(default)]
    pub fail_open: bool,
    #[serde(default)]
    pub query_all_servers: bool,
    /// Retries after a failed request to one responder (4 unless set: five attempts).
    #[serde(default = "default_retries")]
    pub max_retries: u32,
    /// Seconds; 0: any `thisUpdate` in the past is fine.
    #[serde(default)]
    pub this_update_max_age: i64,
}

fn default_retries() -> u32 {
    4
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            enabled: false,
            ca_certificates: String::new(),
            servers_override: vec![],
            fail_open: false,
            query_all_servers: false,
            max_retries: default_retries(),
            this_update_max_age: 0,
        }
    }
}

/// Why one responder gave no usable answer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Problem {
    #[error("POST {url}: {source} (gave up after {attempts} attempt(s))")]
    Transport { url: String, attempts: u32, source: Box<ureq::Error> },
    #[error("POST {url}: the responder answered HTTP {status} (gave up after {attempts} attempt(s))")]
    Status { url: String, status: u16, attempts: u32 },
    #[error("POST {url}: reading the answer: {source}")]
    Read { url: String, source: Box<ureq::Error> },
    #[error("the OCSP request task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("{what}: {source}")]
    Decode { what: &'static str, source: der::Error },
    #[error("{0}")]
    Answer(&'static str),
}

/// What the responders said about a certificate.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Verdict {
    Good,
    Revoked,
    /// No usable answer (unknown status, responders unreachable, bad answers): why.
    Undetermined(String),
}

/// Answers kept until their `nextUpdate` (or a minute), shared by the mount's entries.
pub(crate) struct Cache {
    capacity: Mutex<usize>,
    answers: Mutex<HashMap<Vec<u8>, (Verdict, SystemTime)>>,
}

impl Cache {
    pub fn new(capacity: usize) -> Self {
        Cache { capacity: Mutex::new(capacity.max(1)), answers: Mutex::new(HashMap::new()) }
    }

    /// Sets how many answers are kept (`config`'s `ocsp_cache_size`; at least 1). A change
    /// empties the cache.
    pub fn set_capacity(&self, n: usize) {
        let n = n.max(1);
        let changed = self.capacity.lock().map(|mut c| std::mem::replace(&mut *c, n) != n).unwrap_or(false);
        if changed {
            if let Ok(mut a) = self.answers.lock() {
                a.clear();
            }
        }
    }

    /// Forgets every answer (after any change to the mount's entries or settings).
    pub fn clear(&self) {
        if let Ok(mut a) = self.answers.lock() {
            a.clear();
        }
    }

    fn get(&self, key: &[u8]) -> Option<Verdict> {
        let a = self.answers.lock().ok()?;
        let (v, until) = a.get(key)?;
        (SystemTime::now() < *until).then(|| v.clone())
    }

    fn put(&self, key: Vec<u8>, v: Verdict, until: SystemTime) {
        let cap = self.capacity.lock().map(|c| *c).unwrap_or(1);
        if let Ok(mut a) = self.answers.lock() {
            if a.len() >= cap {
                let now = SystemTime::now();
                a.retain(|_, (_, u)| *u > now);
                if a.len() >= cap {
                    a.clear();
                }
            }
            a.insert(key, (v, until));
        }
    }
}

/// The certificate among `candidates` that issued `leaf` (its subject is the leaf's issuer and
/// its key verifies the leaf's signature).
pub(crate) fn find_issuer<'a>(
    leaf: &X509Certificate<'_>,
    candidates: impl Iterator<Item = &'a CertificateDer<'a>>,
) -> Option<CertificateDer<'a>> {
    for c in candidates {
        let Ok((_, parsed)) = X509Certificate::from_der(c.as_ref()) else { continue };
        if parsed.subject().as_raw() == leaf.issuer().as_raw() && signed_by(leaf, c) {
            return Some(c.clone());
        }
    }
    None
}

/// Whether `signer`'s key made `cert`'s signature.
fn signed_by(cert: &X509Certificate<'_>, signer: &CertificateDer<'_>) -> bool {
    let oid = cert.signature_algorithm.algorithm.to_id_string();
    verify_with(signer, &oid, cert.tbs_certificate.as_ref(), &cert.signature_value.data)
}

/// The verification algorithms a signature algorithm OID may stand for (the key decides
/// which one applies).
fn algorithms(oid: &str) -> Vec<&'static dyn SignatureVerificationAlgorithm> {
    use webpki::aws_lc_rs as a;
    match oid {
        "1.2.840.10045.4.3.2" => vec![a::ECDSA_P256_SHA256, a::ECDSA_P384_SHA256],
        "1.2.840.10045.4.3.3" => vec![a::ECDSA_P384_SHA384, a::ECDSA_P256_SHA384],
        "1.2.840.113549.1.1.11" => vec![a::RSA_PKCS1_2048_8192_SHA256],
        "1.2.840.113549.1.1.12" => vec![a::RSA_PKCS1_2048_8192_SHA384],
        "1.2.840.113549.1.1.13" => vec![a::RSA_PKCS1_2048_8192_SHA512],
        "1.3.101.112" => vec![a::ED25519],
        _ => vec![],
    }
}

fn verify_with(signer: &CertificateDer<'_>, alg_oid: &str, msg: &[u8], sig: &[u8]) -> bool {
    let Ok(ee) = webpki::EndEntityCert::try_from(signer) else { return false };
    algorithms(alg_oid).iter().any(|alg| ee.verify_signature(*alg, msg, sig).is_ok())
}

/// The CertID of `leaf` issued by `issuer` (SHA-1 of the issuer's name and key).
fn cert_id(leaf: &X509Certificate<'_>, issuer: &X509Certificate<'_>) -> Option<CertId> {
    let sha1 = |b: &[u8]| aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, b).as_ref().to_vec();
    Some(CertId {
        hash_algorithm: AlgorithmIdentifierOwned { oid: SHA1, parameters: Some(Null.into()) },
        issuer_name_hash: OctetString::new(sha1(issuer.subject().as_raw())).ok()?,
        issuer_key_hash: OctetString::new(sha1(&issuer.public_key().subject_public_key.data)).ok()?,
        serial_number: SerialNumber::new(leaf.raw_serial()).ok()?,
    })
}

/// The responders to ask: the override, else the certificate's AIA OCSP URLs.
fn responders(leaf: &X509Certificate<'_>, s: &Settings) -> Vec<String> {
    if !s.servers_override.is_empty() {
        return s.servers_override.clone();
    }
    let mut out = vec![];
    for ext in leaf.extensions() {
        if let ParsedExtension::AuthorityInfoAccess(aia) = ext.parsed_extension() {
            for d in &aia.accessdescs {
                if d.access_method.to_id_string() == "1.3.6.1.5.5.7.48.1" {
                    if let GeneralName::URI(u) = &d.access_location {
                        out.push(u.to_string());
                    }
                }
            }
        }
    }
    out
}

/// Asks the responders about `leaf` (issued by `issuer`).
pub(crate) async fn check(leaf_der: &[u8], issuer_der: &[u8], s: &Settings, cache: &Cache) -> Verdict {
    let (Ok((_, leaf)), Ok((_, issuer))) = (X509Certificate::from_der(leaf_der), X509Certificate::from_der(issuer_der))
    else {
        return Verdict::Undetermined("the certificate or its issuer could not be read".into());
    };
    let serial = leaf.raw_serial_as_string();
    let Some(id) = cert_id(&leaf, &issuer) else {
        return Verdict::Undetermined(format!("no OCSP request can be made for serial number {serial}"));
    };
    let Ok(key) = id.to_der() else {
        return Verdict::Undetermined(format!("no OCSP request can be made for serial number {serial}"));
    };
    if let Some(v) = cache.get(&key) {
        return v;
    }
    let urls = responders(&leaf, s);
    if urls.is_empty() {
        return Verdict::Undetermined(format!("no OCSP server is known for serial number {serial}"));
    }
    let request = OcspRequest {
        tbs_request: x509_ocsp::TbsRequest {
            version: x509_ocsp::Version::V1,
            requestor_name: None,
            request_list: vec![x509_ocsp::Request { req_cert: id.clone(), single_request_extensions: None }],
            request_extensions: None,
        },
        optional_signature: None,
    };
    let Ok(body) = request.to_der() else {
        return Verdict::Undetermined(format!("no OCSP request can be made for serial number {serial}"));
    };
    let extra_cas: Vec<CertificateDer<'static>> = if s.ca_certificates.trim().is_empty() {
        vec![]
    } else {
        use rustls_pki_types::pem::PemObject;
        CertificateDer::pem_slice_iter(s.ca_certificates.as_bytes()).filter_map(|c| c.ok()).collect()
    };
    let issuer_cert = CertificateDer::from(issuer_der.to_vec());
    let mut problems = vec![];
    let mut answers = vec![];
    for url in &urls {
        match ask(url, &body, s.max_retries).await {
            Err(why) => problems.push(why.to_string()),
            Ok(raw) => match judge(&raw, &id, &issuer_cert, &extra_cas, s) {
                Ok(answer) => {
                    answers.push(answer);
                    if !s.query_all_servers {
                        break;
                    }
                }
                Err(why) => problems.push(format!("{url}: {why}")),
            },
        }
    }
    let verdict = if answers.iter().any(|(v, _)| *v == Verdict::Revoked) {
        Verdict::Revoked
    } else if answers.iter().any(|(v, _)| *v == Verdict::Good)
        && (!s.query_all_servers || answers.len() == urls.len() && answers.iter().all(|(v, _)| *v == Verdict::Good))
    {
        Verdict::Good
    } else if answers.iter().any(|(v, _)| matches!(v, Verdict::Undetermined(_))) {
        Verdict::Undetermined(format!("unknown OCSP status for the certificate with serial number {serial}"))
    } else {
        Verdict::Undetermined(problems.join("; "))
    };
    if verdict == Verdict::Good || verdict == Verdict::Revoked {
        let until = answers.iter().map(|(_, u)| *u).min().unwrap_or_else(SystemTime::now);
        cache.put(key, verdict.clone(), until);
    }
    verdict
}

/// POSTs the request to `url`, retrying `retries` times after transport failures.
async fn ask(url: &str, body: &[u8], retries: u32) -> Result<Vec<u8>, Problem> {
    let (url, body) = (url.to_string(), body.to_vec());
    tokio::task::spawn_blocking(move || {
        let agent = ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(5)))
                .timeout_connect(Some(Duration::from_secs(2)))
                .build(),
        );
        let attempts = retries + 1;
        let mut last = Problem::Answer("no attempt was made");
        for attempt in 0..attempts {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(50u64 << attempt.min(4)));
            }
            match agent.post(&url).header("Content-Type", "application/ocsp-request").send(&body[..]) {
                Err(e) => last = Problem::Transport { url: url.clone(), attempts, source: Box::new(e) },
                Ok(mut resp) => {
                    let status = resp.status().as_u16();
                    if status != 200 {
                        last = Problem::Status { url: url.clone(), status, attempts };
                        continue;
                    }
                    return resp
                        .body_mut()
                        .with_config()
                        .limit(MAX_RESPONSE)
                        .read_to_vec()
                        .map_err(|e| Problem::Read { url: url.clone(), source: Box::new(e) });
                }
            }
        }
        Err(last)
    })
    .await?
}

/// Reads and checks one responder's answer about `id`: the verdict and until when it holds.
fn judge(
    raw: &[u8],
    id: &CertId,
    issuer: &CertificateDer<'_>,
    extra_cas: &[CertificateDer<'_>],
    s: &Settings,
) -> Result<(Verdict, SystemTime), Problem> {
    let decode = |what| move |source| Problem::Decode { what, source };
    let resp = OcspResponse::from_der(raw).map_err(decode("the answer is not an OCSP response"))?;
    if resp.response_status != OcspResponseStatus::Successful {
        return Err(Problem::Answer("the responder did not answer successful"));
    }
    let bytes = resp.response_bytes.ok_or(Problem::Answer("the answer carries no response"))?;
    if bytes.response_type != BASIC_RESPONSE {
        return Err(Problem::Answer("the answer is not a basic OCSP response"));
    }
    let basic = BasicOcspResponse::from_der(bytes.response.as_bytes())
        .map_err(decode("the basic OCSP response is malformed"))?;
    let tbs = basic.tbs_response_data.to_der().map_err(decode("the response data is malformed"))?;
    let alg = basic.signature_algorithm.oid.to_string();
    let sig = basic.signature.raw_bytes();
    if !signed_by_trusted(&tbs, &alg, sig, &basic, issuer, extra_cas) {
        return Err(Problem::Answer("the answer is not signed by the issuer or an authorised responder"));
    }
    let single = basic
        .tbs_response_data
        .responses
        .iter()
        .find(|r| {
            r.cert_id.serial_number == id.serial_number
                && r.cert_id.issuer_key_hash == id.issuer_key_hash
                && r.cert_id.issuer_name_hash == id.issuer_name_hash
        })
        .ok_or(Problem::Answer("the answer does not name the certificate"))?;
    let now = SystemTime::now();
    let this_update = single.this_update.0.to_system_time();
    if this_update > now + Duration::from_secs(60) {
        return Err(Problem::Answer("the answer's thisUpdate is in the future"));
    }
    if s.this_update_max_age > 0
        && now.duration_since(this_update).unwrap_or_default() > Duration::from_secs(s.this_update_max_age as u64)
    {
        return Err(Problem::Answer("the answer's thisUpdate is older than ocsp_this_update_max_age"));
    }
    let until = match &single.next_update {
        Some(n) if n.0.to_system_time() < now => {
            return Err(Problem::Answer("the answer is stale (nextUpdate has passed)"))
        }
        Some(n) => n.0.to_system_time(),
        None => now + Duration::from_secs(60),
    };
    let verdict = match single.cert_status {
        CertStatus::Good(_) => Verdict::Good,
        CertStatus::Revoked(_) => Verdict::Revoked,
        CertStatus::Unknown(_) => Verdict::Undetermined("unknown".into()),
    };
    Ok((verdict, until))
}

/// Whether the answer's signature is the issuer's, an extra CA's, or that of a responder
/// certificate included in the answer, valid now, issued for OCSP signing by the issuer or an
/// extra CA.
fn signed_by_trusted(
    tbs: &[u8],
    alg: &str,
    sig: &[u8],
    basic: &BasicOcspResponse,
    issuer: &CertificateDer<'_>,
    extra_cas: &[CertificateDer<'_>],
) -> bool {
    let authorities: Vec<&CertificateDer<'_>> = std::iter::once(issuer).chain(extra_cas.iter()).collect();
    if authorities.iter().any(|a| verify_with(a, alg, tbs, sig)) {
        return true;
    }
    for c in basic.certs.iter().flatten() {
        let Ok(der) = c.to_der() else { continue };
        let Ok((_, responder)) = X509Certificate::from_der(&der) else { continue };
        let for_ocsp =
            responder.extended_key_usage().ok().flatten().is_some_and(|e| {
                e.value.ocsp_signing || e.value.other.iter().any(|o| o.to_id_string() == OCSP_SIGNING)
            });
        if !for_ocsp || !responder.validity().is_valid() {
            continue;
        }
        if authorities.iter().any(|a| signed_by(&responder, a))
            && verify_with(&CertificateDer::from(der.as_slice()), alg, tbs, sig)
        {
            return true;
        }
    }
    false
}
