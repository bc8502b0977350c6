#![forbid(unsafe_code)]
//! The TLS certificate auth method (`cert`): a client logs in with the certificate it presented
//! on its TLS connection.
//!
//! Operators register trusted certificates under `certs/<name>` — a CA (the client's chain must
//! lead to it) or a single non-CA certificate (the client must present exactly it) — with
//! constraints on the client certificate (common name, DNS/e-mail/URI SANs, organizational
//! units, required extensions), the metadata extensions copied into the token, and the shared
//! `token_*` settings. CRLs under `crls/<name>` revoke certificates; `config` sets
//! `disable_binding` and `enable_identity_alias_metadata`.
//!
//! Chains are verified with `rustls-webpki` (signatures, validity times, basic constraints,
//! name constraints, the clientAuth extended key usage when the certificate names usages, and
//! revocation by the signed CRLs of the chain's issuers); certificates and CRLs are read with
//! `x509-parser`. No cryptography is done here.
//!
//! Storage (the mount's own view): `cert/<name>` → [`CertEntry`], `crls/<name>` → [`CrlEntry`],
//! `config` → [`Config`].

use async_trait::async_trait;
use coffer_sdk::cache::GenCache;
use coffer_sdk::field::FieldType;
use coffer_sdk::framework::{FieldData, FieldSpec, Handler, PathFlags, PathSpec, Paths};
use coffer_sdk::tokenutil::{addr_in_cidrs, equivalent_policies, token_fields, TokenParams};
use coffer_sdk::{ErrorKind, LogicalError, LoginRenewal, Operation, Request, Response, Result};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, UnixTime};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::sync::OnceLock;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{GeneralName, ParsedExtension};

mod ocsp;

/// A certificate or CRL name as OpenBao accepts it: word characters, with `-` and `.` inside.
const NAME: &str = r"[A-Za-z0-9_](?:[A-Za-z0-9_.\-]*[A-Za-z0-9_])?";

/// The answer when no trusted certificate verifies the client's chain (expired, revoked,
/// unknown issuer, wrong key usage…): the same for every cause, as OpenBao.
const INVALID_CERT: &str = "invalid certificate or no client certificate supplied";
const NO_CERT: &str = "no client certificate found";
const NO_MATCH: &str = "no chain matching all constraints could be found for this login certificate";

/// OCSP answers kept per mount unless `config` sets `ocsp_cache_size`.
const DEFAULT_OCSP_CACHE: usize = 100;

/// The paths of the cert method, one variant per row of [`build_specs`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Config,
    CertList,
    Cert,
    CrlList,
    Crl,
    Login,
}

/// A trusted certificate and the constraints and token settings of the logins it admits.
#[derive(Clone, Serialize, Deserialize, Default)]
struct CertEntry {
    /// The PEM text as given (one or more certificates).
    certificate: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    allowed_names: Vec<String>,
    #[serde(default)]
    allowed_common_names: Vec<String>,
    #[serde(default)]
    allowed_dns_sans: Vec<String>,
    #[serde(default)]
    allowed_email_sans: Vec<String>,
    #[serde(default)]
    allowed_uri_sans: Vec<String>,
    #[serde(default)]
    allowed_organizational_units: Vec<String>,
    #[serde(default)]
    required_extensions: Vec<String>,
    #[serde(default)]
    allowed_metadata_extensions: Vec<String>,
    #[serde(default)]
    ocsp: ocsp::Settings,
    #[serde(flatten)]
    token: TokenParams,
}

/// A certificate revocation list as given (DER, hex-encoded for storage).
#[derive(Clone, Serialize, Deserialize)]
struct CrlEntry {
    der_hex: String,
}

/// The mount's settings.
#[derive(Clone, Serialize, Deserialize, Default)]
struct Config {
    #[serde(default)]
    disable_binding: bool,
    #[serde(default)]
    enable_identity_alias_metadata: bool,
    /// How many OCSP answers the mount keeps (0: the default, 100).
    #[serde(default)]
    ocsp_cache_size: i64,
}

/// Serve it wrapped in [`coffer_sdk::framework::Backend`].
pub struct Cert {
    paths: Paths<Route>,
    /// The decoded trusted certificates, CRLs and settings ([`TrustSet`]), kept between logins
    /// and dropped by every change to them.
    trust: GenCache<TrustSet>,
    /// OCSP answers, until their `nextUpdate`.
    ocsp: ocsp::Cache,
}

impl Default for Cert {
    fn default() -> Self {
        Self::new()
    }
}

impl Cert {
    pub fn new() -> Self {
        Cert {
            paths: Paths::new(specs_static().to_vec()),
            trust: GenCache::new(1),
            ocsp: ocsp::Cache::new(DEFAULT_OCSP_CACHE),
        }
    }
}

fn list_field(name: &'static str, help: &'static str) -> FieldSpec {
    FieldSpec::new(name, FieldType::CommaStringSlice, help)
}

fn build_specs() -> Vec<(Route, PathSpec)> {
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    let mut cert_fields = vec![
        FieldSpec::new("name", FieldType::String, "The name of the trusted certificate"),
        FieldSpec::new(
            "certificate",
            FieldType::String,
            "PEM certificate(s): a CA the client's chain must lead to, or the exact client certificate",
        ),
        FieldSpec::new("display_name", FieldType::String, "The display name of issued tokens (default: the name)"),
        list_field("allowed_names", "Deprecated: globs matched against the common name, DNS and e-mail SANs"),
        list_field("allowed_common_names", "Globs the client certificate's common name must match"),
        list_field("allowed_dns_sans", "Globs one of the client certificate's DNS SANs must match"),
        list_field("allowed_email_sans", "Globs one of the client certificate's e-mail SANs must match"),
        list_field("allowed_uri_sans", "Globs one of the client certificate's URI SANs must match"),
        list_field("allowed_organizational_units", "Globs one of the certificate's organizational units must match"),
        list_field("required_extensions", "oid:glob pairs: extensions the client certificate must carry"),
        list_field("allowed_metadata_extensions", "OIDs of extensions whose values are copied into the metadata"),
        FieldSpec::new(
            "ocsp_enabled",
            FieldType::Bool,
            "Check the client certificate with its OCSP responders at login",
        ),
        FieldSpec::new(
            "ocsp_ca_certificates",
            FieldType::String,
            "PEM certificates that may sign OCSP answers or issue the responder's certificate",
        ),
        list_field("ocsp_servers_override", "OCSP responder URLs to ask instead of the certificate's AIA ones"),
        FieldSpec::new(
            "ocsp_fail_open",
            FieldType::Bool,
            "Log in when no OCSP answer can be had (unknown status, responders down); revoked still fails",
        ),
        FieldSpec::new(
            "ocsp_query_all_servers",
            FieldType::Bool,
            "Ask every responder; the certificate is good only when all of them say so",
        ),
        FieldSpec::new("ocsp_max_retries", FieldType::Int, "Retries after a failed request to one responder (4)"),
        FieldSpec::new(
            "ocsp_this_update_max_age",
            FieldType::DurationSecond,
            "Refuse OCSP answers whose thisUpdate is older than this (0: no limit)",
        ),
    ];
    cert_fields.extend(token_fields());
    vec![
        (
            Route::Config,
            PathSpec {
                flags: PathFlags::NORMAL,
                pattern: "config",
                fields: vec![
                    FieldSpec::new(
                        "disable_binding",
                        FieldType::Bool,
                        "Renew tokens without checking the renewing client's certificate",
                    ),
                    FieldSpec::new(
                        "enable_identity_alias_metadata",
                        FieldType::Bool,
                        "Copy the metadata extensions into the identity alias's metadata",
                    ),
                    FieldSpec::new("ocsp_cache_size", FieldType::Int, "How many OCSP answers to keep (0: 100)"),
                ],
                operations: vec![
                    (Operation::Update, "Configure the method"),
                    (Operation::Read, "Read the configuration"),
                ],
                passthrough: false,
                synopsis: "Configure the cert auth method",
                description: "Whether renewals must present the login's certificate, and whether the identity \
                              alias carries the certificate's metadata extensions.",
            },
        ),
        (
            Route::CertList,
            PathSpec {
                flags: PathFlags::NORMAL,
                pattern: "certs/?",
                fields: vec![],
                operations: vec![(Operation::List, "List the trusted certificates")],
                passthrough: false,
                synopsis: "List trusted certificates",
                description: "Lists the names of the trusted certificates of this mount.",
            },
        ),
        (
            Route::Cert,
            PathSpec {
                flags: PathFlags::NORMAL,
                pattern: leak(format!("certs/(?P<name>{NAME})")),
                fields: cert_fields,
                operations: vec![
                    (Operation::Create, "Trust a certificate"),
                    (Operation::Update, "Change a trusted certificate's settings"),
                    (Operation::Read, "Read a trusted certificate"),
                    (Operation::Delete, "Stop trusting a certificate"),
                ],
                passthrough: false,
                synopsis: "Manage trusted certificates",
                description: "A CA certificate admits the clients whose chain leads to it; a non-CA certificate \
                              admits the client presenting exactly it. The allowed_* and required_extensions \
                              constraints narrow the admitted client certificates; the token_* settings shape \
                              the tokens of their logins.",
            },
        ),
        (
            Route::CrlList,
            PathSpec {
                flags: PathFlags::NORMAL,
                pattern: "crls/?",
                fields: vec![],
                operations: vec![(Operation::List, "List the CRLs")],
                passthrough: false,
                synopsis: "List CRLs",
                description: "Lists the names of the certificate revocation lists of this mount.",
            },
        ),
        (
            Route::Crl,
            PathSpec {
                flags: PathFlags::NORMAL,
                pattern: leak(format!("crls/(?P<name>{NAME})")),
                fields: vec![
                    FieldSpec::new("name", FieldType::String, "The name of the CRL"),
                    FieldSpec::new("crl", FieldType::String, "The CRL, PEM or DER"),
                    FieldSpec::new("url", FieldType::String, "Not supported: give the CRL itself in crl"),
                ],
                operations: vec![
                    (Operation::Update, "Store a CRL"),
                    (Operation::Read, "Read a CRL's revoked serial numbers"),
                    (Operation::Delete, "Delete a CRL"),
                ],
                passthrough: false,
                synopsis: "Manage certificate revocation lists",
                description: "A CRL signed by the issuer of a certificate in a client's chain revokes it: logins \
                              and renewals with a revoked certificate are refused.",
            },
        ),
        (
            Route::Login,
            PathSpec {
                flags: PathFlags::NORMAL.unauthenticated(),
                pattern: "login",
                fields: vec![FieldSpec::new(
                    "name",
                    FieldType::String,
                    "Only try this trusted certificate (default: every one, in name order)",
                )],
                operations: vec![(Operation::Update, "Log in with the TLS client certificate")],
                passthrough: false,
                synopsis: "Log in with a client certificate",
                description: "Verifies the certificate chain the client presented on its TLS connection against the \
                              trusted certificates and returns a token with the settings of the first that admits it.",
            },
        ),
    ]
}

fn specs_static() -> &'static [(Route, PathSpec)] {
    static P: OnceLock<Vec<(Route, PathSpec)>> = OnceLock::new();
    P.get_or_init(build_specs)
}

// ----- storage -----

async fn load<T: for<'de> Deserialize<'de>>(req: &Request, key: &str) -> Result<Option<T>> {
    match req.storage.get(key).await? {
        None => Ok(None),
        Some(raw) => serde_json::from_slice(&raw)
            .map(Some)
            .map_err(|e| LogicalError::internal(format!("stored entry {key:?} is malformed")).with_source(e)),
    }
}

async fn save<T: Serialize>(req: &Request, key: &str, v: &T) -> Result<()> {
    let bytes = serde_json::to_vec(v)
        .map_err(|e| LogicalError::internal(format!("cannot encode entry {key:?}")).with_source(e))?;
    req.storage.put(key, &bytes).await
}

async fn load_config(req: &Request) -> Result<Config> {
    Ok(load(req, "config").await?.unwrap_or_default())
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

/// Bytes as OpenBao shows key identifiers: lower-case hex pairs joined by `:`.
fn hex_colons(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect::<Vec<_>>().join(":")
}

fn strings(f: &FieldData, name: &str) -> Option<Vec<String>> {
    match f.get(name)? {
        Value::Array(a) => Some(a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect()),
        Value::String(s) if s.is_empty() => Some(vec![]),
        Value::String(s) => Some(s.split(',').map(|x| x.trim().to_string()).filter(|x| !x.is_empty()).collect()),
        _ => None,
    }
}

// ----- certificates -----

/// The DER certificates of a PEM text; a clear 400 when there are none or one is malformed.
fn parse_pem_certs(pem: &str, field: &str) -> Result<Vec<CertificateDer<'static>>> {
    let mut out = vec![];
    for item in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        let der = item.map_err(|e| {
            LogicalError::bad_request(format!("failed to parse {field}: not a PEM certificate")).with_source(e)
        })?;
        if let Err(e) = x509_parser::parse_x509_certificate(&der) {
            return Err(
                LogicalError::bad_request(format!("failed to parse {field}: malformed certificate")).with_source(e)
            );
        }
        out.push(der);
    }
    if out.is_empty() {
        return Err(LogicalError::bad_request(format!("failed to parse {field}: no PEM certificate found")));
    }
    Ok(out)
}

fn parse(der: &[u8]) -> Result<X509Certificate<'_>> {
    x509_parser::parse_x509_certificate(der)
        .map(|(_, c)| c)
        .map_err(|e| LogicalError::bad_request(INVALID_CERT).with_source(e))
}

use coffer_sdk::strutil::glob_match as glob;

/// An extension's value read as an ASN.1 string (UTF8String, IA5String, PrintableString, …),
/// as OpenBao reads it; empty when it is not one.
fn extension_string(value: &[u8]) -> String {
    match x509_parser::der_parser::parse_der(value) {
        Ok((_, obj)) => obj.as_str().map(str::to_string).unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// What the constraints and the token are made from: the client's leaf certificate.
struct Leaf {
    common_name: String,
    dns: Vec<String>,
    emails: Vec<String>,
    uris: Vec<String>,
    ous: Vec<String>,
    /// OID (dotted) → value as a string.
    extensions: Vec<(String, String)>,
    serial: String,
    skid: Vec<u8>,
    akid: Vec<u8>,
}

fn read_leaf(c: &X509Certificate<'_>) -> Leaf {
    let common_name = c.subject().iter_common_name().next().and_then(|a| a.as_str().ok()).unwrap_or("").to_string();
    let ous = c.subject().iter_organizational_unit().filter_map(|a| a.as_str().ok().map(str::to_string)).collect();
    let (mut dns, mut emails, mut uris) = (vec![], vec![], vec![]);
    if let Ok(Some(san)) = c.subject_alternative_name() {
        for n in &san.value.general_names {
            match n {
                GeneralName::DNSName(d) => dns.push(d.to_string()),
                GeneralName::RFC822Name(e) => emails.push(e.to_string()),
                GeneralName::URI(u) => uris.push(u.to_string()),
                _ => {}
            }
        }
    }
    let (mut skid, mut akid) = (vec![], vec![]);
    for ext in c.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(k) => skid = k.0.to_vec(),
            ParsedExtension::AuthorityKeyIdentifier(a) => {
                if let Some(k) = &a.key_identifier {
                    akid = k.0.to_vec();
                }
            }
            _ => {}
        }
    }
    let extensions = c.extensions().iter().map(|e| (e.oid.to_id_string(), extension_string(e.value))).collect();
    Leaf { common_name, dns, emails, uris, ous, extensions, serial: c.serial.to_string(), skid, akid }
}

impl CertEntry {
    /// Whether the leaf meets every constraint of this entry.
    fn admits(&self, l: &Leaf) -> bool {
        let any = |globs: &[String], values: &[String], fold: bool| {
            globs.is_empty()
                || globs.iter().any(|g| {
                    values.iter().any(|v| if fold { glob(&g.to_lowercase(), &v.to_lowercase()) } else { glob(g, v) })
                })
        };
        let cn = std::slice::from_ref(&l.common_name);
        let names_ok = self.allowed_names.is_empty()
            || self.allowed_names.iter().any(|g| {
                glob(g, &l.common_name)
                    || l.dns.iter().chain(&l.emails).any(|v| glob(&g.to_lowercase(), &v.to_lowercase()))
            });
        names_ok
            && any(&self.allowed_common_names, cn, false)
            && any(&self.allowed_dns_sans, &l.dns, true)
            && any(&self.allowed_email_sans, &l.emails, true)
            && any(&self.allowed_uri_sans, &l.uris, false)
            && any(&self.allowed_organizational_units, &l.ous, false)
            && self.required_extensions.iter().all(|r| {
                let Some((oid, want)) = r.split_once(':') else { return false };
                l.extensions.iter().any(|(o, v)| o == oid.trim() && glob(want, v))
            })
    }

    /// The metadata extensions of the leaf this entry copies into the token.
    fn metadata_extensions(&self, l: &Leaf) -> Map<String, Value> {
        let mut m = Map::new();
        for (oid, v) in &l.extensions {
            if self.allowed_metadata_extensions.iter().any(|a| a.trim() == oid) {
                m.insert(oid.replace('.', "-"), Value::String(v.clone()));
            }
        }
        m
    }
}

/// The CRLs of the mount, parsed for webpki (signature checked against the issuer in the chain).
async fn load_crls(req: &Request) -> Result<Vec<webpki::CertRevocationList<'static>>> {
    let mut out = vec![];
    for name in req.storage.list("crls/").await? {
        let Some(e) = load::<CrlEntry>(req, &format!("crls/{name}")).await? else { continue };
        let der =
            unhex(&e.der_hex).ok_or_else(|| LogicalError::internal(format!("stored CRL {name:?} is malformed")))?;
        let crl = webpki::OwnedCertRevocationList::from_der(&der)
            .map_err(|e| LogicalError::internal(format!("stored CRL {name:?} is malformed")).with_source(e))?;
        out.push(webpki::CertRevocationList::Owned(crl));
    }
    Ok(out)
}

/// A login that verified: the entry that admitted it and what the token is made from.
struct Verified {
    name: String,
    entry: CertEntry,
    leaf: Leaf,
}

fn now() -> UnixTime {
    UnixTime::now()
}

/// What a login checks a client chain against, decoded from the mount's storage once and
/// shared until an entry, a CRL or the settings change.
struct TrustSet {
    config: Config,
    /// In name order.
    entries: Vec<Trusted>,
    crls: Vec<webpki::CertRevocationList<'static>>,
}

/// One `certs/<name>` entry with its certificates decoded.
struct Trusted {
    name: String,
    entry: CertEntry,
    certs: Vec<CertificateDer<'static>>,
    /// The certificates that are CAs: trust anchors, and intermediates for other entries.
    cas: Vec<CertificateDer<'static>>,
    anchors: Vec<rustls_pki_types::TrustAnchor<'static>>,
}

const TRUST_KEY: &str = "trust";

async fn load_trust(req: &Request) -> Result<Option<TrustSet>> {
    let mut names = req.storage.list("cert/").await?;
    names.sort();
    let mut entries = vec![];
    for name in names {
        if let Some(entry) = load::<CertEntry>(req, &format!("cert/{name}")).await? {
            let certs = parse_pem_certs(&entry.certificate, "certificate")?;
            let cas: Vec<CertificateDer<'static>> =
                certs.iter().filter(|c| parse(c).is_ok_and(|p| p.is_ca())).cloned().collect();
            let anchors =
                cas.iter().filter_map(|c| webpki::anchor_from_trusted_cert(c).ok().map(|a| a.to_owned())).collect();
            entries.push(Trusted { name, entry, certs, cas, anchors });
        }
    }
    Ok(Some(TrustSet { config: load_config(req).await?, entries, crls: load_crls(req).await? }))
}

impl Cert {
    /// The mount's [`TrustSet`], from the cache or storage.
    async fn trust(&self, req: &Request) -> Result<std::sync::Arc<TrustSet>> {
        self.trust
            .get_or_load(TRUST_KEY, load_trust(req))
            .await?
            .ok_or_else(|| LogicalError::internal("the trusted certificates could not be read"))
    }
}

/// Verifies the client's chain against the trusted certificates (only `only`, when given):
/// the first entry, in name order, whose certificate admits the chain and whose constraints
/// the leaf meets.
fn verify<'t>(req: &Request, trust: &'t TrustSet, only: Option<&str>) -> Result<Candidates<'t>> {
    let chain: Vec<CertificateDer<'_>> = match &req.client_certs {
        Some(c) if !c.is_empty() => c.iter().map(|d| CertificateDer::from(d.as_slice())).collect(),
        _ => return Err(LogicalError::bad_request(NO_CERT)),
    };
    let leaf_der = &chain[0];
    let leaf_cert = parse(leaf_der)?;
    let leaf = read_leaf(&leaf_cert);

    let entries: Vec<&Trusted> = match only {
        Some(n) if !n.is_empty() => trust.entries.iter().filter(|t| t.name == n).collect(),
        _ => trust.entries.iter().collect(),
    };
    let crls = &trust.crls;
    let crl_refs: Vec<&webpki::CertRevocationList<'_>> = crls.iter().collect();
    let revocation = if crl_refs.is_empty() {
        None
    } else {
        // Certificates no stored CRL speaks for are accepted (OpenBao checks the CRLs it has).
        webpki::RevocationOptionsBuilder::new(&crl_refs).ok().map(|b| {
            b.with_depth(webpki::RevocationCheckDepth::Chain)
                .with_status_policy(webpki::UnknownStatusPolicy::Allow)
                .build()
        })
    };
    // Other trusted CA certificates may complete a chain the client sent without its
    // intermediates (a root entry admits a leaf of an intermediate another entry trusts).
    let mut intermediates: Vec<CertificateDer<'_>> = chain[1..].to_vec();
    for t in &entries {
        intermediates.extend(t.cas.iter().map(|c| CertificateDer::from(c.as_ref())));
    }
    let ee = webpki::EndEntityCert::try_from(leaf_der)
        .map_err(|e| LogicalError::bad_request(INVALID_CERT).with_source(e))?;
    let mut verified_any = false;
    let mut found = vec![];
    for t in entries {
        let mut ok = false;
        if !t.anchors.is_empty() {
            ok = ee
                .verify_for_usage(
                    webpki::ALL_VERIFICATION_ALGS,
                    &t.anchors,
                    &intermediates,
                    now(),
                    webpki::KeyUsage::client_auth(),
                    revocation,
                    None,
                )
                .is_ok();
        }
        if !ok {
            // A non-CA certificate admits the client presenting exactly it, while it is valid
            // and not revoked by a CRL of its issuer.
            ok = t
                .certs
                .iter()
                .any(|c| c.as_ref() == leaf_der.as_ref() && !leaf_cert.is_ca() && leaf_cert.validity().is_valid())
                && !revoked_by_issuer(&leaf_cert, crls);
        }
        if !ok {
            continue;
        }
        verified_any = true;
        if t.entry.admits(&leaf) {
            // The issuer an OCSP request names: from the client's chain or the trusted entries.
            let issuer = if t.entry.ocsp.enabled {
                let pool = chain[1..].iter().chain(trust.entries.iter().flat_map(|e| e.certs.iter()));
                ocsp::find_issuer(&leaf_cert, pool).map(|c| c.as_ref().to_vec())
            } else {
                None
            };
            found.push((t, issuer));
        }
    }
    if found.is_empty() {
        return Err(LogicalError::bad_request(if verified_any { NO_MATCH } else { INVALID_CERT }));
    }
    Ok(Candidates { found, leaf, leaf_der: leaf_der.as_ref().to_vec() })
}

/// The trusted entries (in name order) that verified a client's chain and whose constraints
/// its certificate meets, each with the certificate's issuer when the entry checks OCSP.
struct Candidates<'t> {
    found: Vec<(&'t Trusted, Option<Vec<u8>>)>,
    leaf: Leaf,
    leaf_der: Vec<u8>,
}

impl Cert {
    /// The first candidate entry whose OCSP check (when it has one) does not refuse the
    /// certificate: revoked fails the entry; no answer fails it unless `ocsp_fail_open`.
    async fn admit(&self, req: &Request, trust: &TrustSet, only: Option<&str>) -> Result<Verified> {
        let Candidates { found, leaf, leaf_der } = verify(req, trust, only)?;
        let mut problems = vec![];
        for (t, issuer) in found {
            if t.entry.ocsp.enabled {
                let size = trust.config.ocsp_cache_size;
                self.ocsp.set_capacity(if size > 0 { size as usize } else { DEFAULT_OCSP_CACHE });
                let verdict = match issuer {
                    Some(i) => ocsp::check(&leaf_der, &i, &t.entry.ocsp, &self.ocsp).await,
                    None => ocsp::Verdict::Undetermined(format!(
                        "the issuer of the certificate with serial number {} is not at hand for OCSP",
                        leaf.serial
                    )),
                };
                match verdict {
                    ocsp::Verdict::Good => {}
                    ocsp::Verdict::Revoked => continue,
                    ocsp::Verdict::Undetermined(_) if t.entry.ocsp.fail_open => {}
                    ocsp::Verdict::Undetermined(why) => {
                        problems.push(why);
                        continue;
                    }
                }
            }
            return Ok(Verified { name: t.name.clone(), entry: t.entry.clone(), leaf });
        }
        Err(LogicalError::bad_request(if problems.is_empty() {
            NO_MATCH.to_string()
        } else {
            format!("{NO_MATCH}; additionally got errors during verification: {}", problems.join("; "))
        }))
    }
}

/// Whether a CRL from the certificate's issuer lists its serial number (for a directly trusted
/// certificate, whose issuer is not at hand to check the CRL's signature).
fn revoked_by_issuer(c: &X509Certificate<'_>, crls: &[webpki::CertRevocationList<'_>]) -> bool {
    crls.iter().any(|crl| {
        crl.issuer() == strip_sequence(c.issuer().as_raw()) && matches!(crl.find_serial(c.raw_serial()), Ok(Some(_)))
    })
}

/// The contents of a DER SEQUENCE (webpki keeps names without their outer tag and length).
fn strip_sequence(der: &[u8]) -> &[u8] {
    if der.len() < 2 || der[0] != 0x30 {
        return der;
    }
    let (len_bytes, len) = if der[1] & 0x80 == 0 {
        (1, der[1] as usize)
    } else {
        let n = (der[1] & 0x7f) as usize;
        if der.len() < 2 + n {
            return der;
        }
        (1 + n, der[2..2 + n].iter().fold(0usize, |a, b| (a << 8) | *b as usize))
    };
    der.get(1 + len_bytes..1 + len_bytes + len).unwrap_or(der)
}

// ----- handlers -----

fn cert_key(name: &str) -> String {
    format!("cert/{name}")
}

fn cert_json(e: &CertEntry) -> Map<String, Value> {
    // Empty lists read as null, as OpenBao shows them.
    let list = |v: &Vec<String>| if v.is_empty() { Value::Null } else { json!(v) };
    let mut out = Map::new();
    out.insert("certificate".into(), json!(e.certificate));
    out.insert("display_name".into(), json!(e.display_name));
    for (k, v) in [
        ("allowed_names", &e.allowed_names),
        ("allowed_common_names", &e.allowed_common_names),
        ("allowed_dns_sans", &e.allowed_dns_sans),
        ("allowed_email_sans", &e.allowed_email_sans),
        ("allowed_uri_sans", &e.allowed_uri_sans),
        ("allowed_organizational_units", &e.allowed_organizational_units),
        ("required_extensions", &e.required_extensions),
        ("allowed_metadata_extensions", &e.allowed_metadata_extensions),
    ] {
        out.insert(k.into(), list(v));
    }
    out.insert("ocsp_enabled".into(), json!(e.ocsp.enabled));
    out.insert("ocsp_ca_certificates".into(), json!(e.ocsp.ca_certificates));
    out.insert("ocsp_servers_override".into(), list(&e.ocsp.servers_override));
    out.insert("ocsp_fail_open".into(), json!(e.ocsp.fail_open));
    out.insert("ocsp_query_all_servers".into(), json!(e.ocsp.query_all_servers));
    e.token.to_response(&mut out);
    out
}

/// The OCSP options of a `certs/<name>` write, over what the entry had.
fn apply_ocsp(o: &mut ocsp::Settings, f: &FieldData) -> Result<()> {
    if let Some(b) = f.bool("ocsp_enabled") {
        o.enabled = b;
    }
    if let Some(pem) = f.str("ocsp_ca_certificates") {
        if !pem.trim().is_empty() {
            parse_pem_certs(pem, "ocsp_ca_certificates")?;
        }
        o.ca_certificates = pem.to_string();
    }
    if let Some(urls) = strings(f, "ocsp_servers_override") {
        for u in &urls {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                return Err(LogicalError::bad_request(format!(
                    "invalid ocsp_servers_override entry {u:?}: an http:// or https:// URL is expected"
                )));
            }
        }
        o.servers_override = urls;
    }
    if let Some(b) = f.bool("ocsp_fail_open") {
        o.fail_open = b;
    }
    if let Some(b) = f.bool("ocsp_query_all_servers") {
        o.query_all_servers = b;
    }
    if let Some(n) = f.int("ocsp_max_retries") {
        o.max_retries = u32::try_from(n)
            .ok()
            .filter(|n| *n <= 100)
            .ok_or_else(|| LogicalError::bad_request("ocsp_max_retries must be between 0 and 100"))?;
    }
    if let Some(n) = f.int("ocsp_this_update_max_age") {
        if n < 0 {
            return Err(LogicalError::bad_request("ocsp_this_update_max_age must not be negative"));
        }
        o.this_update_max_age = n;
    }
    Ok(())
}

async fn write_cert(req: &Request, name: &str, f: &FieldData) -> Result<Option<Response>> {
    let existing: Option<CertEntry> = load(req, &cert_key(name)).await?;
    let mut e = existing.clone().unwrap_or_default();
    if existing.is_none() {
        e.token = TokenParams::default();
    }
    match f.str("certificate") {
        Some(pem) if !pem.trim().is_empty() => {
            parse_pem_certs(pem, "certificate")?;
            e.certificate = pem.to_string();
        }
        _ if existing.is_none() => return Err(LogicalError::bad_request("must provide certificate")),
        _ => {}
    }
    if let Some(d) = f.str("display_name") {
        e.display_name = d.to_string();
    }
    for (field, slot) in [
        ("allowed_names", &mut e.allowed_names),
        ("allowed_common_names", &mut e.allowed_common_names),
        ("allowed_dns_sans", &mut e.allowed_dns_sans),
        ("allowed_email_sans", &mut e.allowed_email_sans),
        ("allowed_uri_sans", &mut e.allowed_uri_sans),
        ("allowed_organizational_units", &mut e.allowed_organizational_units),
        ("required_extensions", &mut e.required_extensions),
        ("allowed_metadata_extensions", &mut e.allowed_metadata_extensions),
    ] {
        if let Some(v) = strings(f, field) {
            *slot = v;
        }
    }
    for r in &e.required_extensions {
        if !r.contains(':') {
            return Err(LogicalError::bad_request(format!(
                "invalid required_extensions entry {r:?}: expected <oid>:<value glob>"
            )));
        }
    }
    apply_ocsp(&mut e.ocsp, f)?;
    e.token.update_from(&req.data)?;
    if e.token.token_type == "batch" && e.token.token_num_uses > 0 {
        return Err(LogicalError::bad_request(
            "'token_type' cannot be 'batch' or 'default_batch' when set to generate tokens with limited use count",
        ));
    }
    save(req, &cert_key(name), &e).await?;
    Ok(None)
}

async fn write_crl(req: &Request, name: &str, f: &FieldData) -> Result<Option<Response>> {
    if f.str("url").is_some_and(|u| !u.is_empty()) {
        return Err(LogicalError::bad_request("url is not supported: fetch the CRL and write it in the crl parameter"));
    }
    let text = f.str("crl").filter(|s| !s.trim().is_empty()).ok_or_else(|| LogicalError::bad_request("missing crl"))?;
    let der: Vec<u8> = if text.contains("-----BEGIN") {
        CertificateRevocationListDer::from_pem_slice(text.as_bytes())
            .map_err(|e| LogicalError::bad_request("failed to parse crl: not a PEM X509 CRL").with_source(e))?
            .to_vec()
    } else {
        text.as_bytes().to_vec()
    };
    x509_parser::parse_x509_crl(&der)
        .map_err(|e| LogicalError::bad_request("failed to parse crl: malformed CRL").with_source(e))?;
    webpki::OwnedCertRevocationList::from_der(&der)
        .map_err(|e| LogicalError::bad_request("failed to parse crl: malformed CRL").with_source(e))?;
    save(req, &format!("crls/{name}"), &CrlEntry { der_hex: hex(&der) }).await?;
    Ok(None)
}

async fn read_crl(req: &Request, name: &str) -> Result<Option<Response>> {
    let Some(e) = load::<CrlEntry>(req, &format!("crls/{name}")).await? else { return Ok(None) };
    let der = unhex(&e.der_hex).ok_or_else(|| LogicalError::internal(format!("stored CRL {name:?} is malformed")))?;
    let (_, crl) = x509_parser::parse_x509_crl(&der)
        .map_err(|e| LogicalError::internal(format!("stored CRL {name:?} is malformed")).with_source(e))?;
    let mut serials = Map::new();
    for r in crl.iter_revoked_certificates() {
        serials.insert(r.user_certificate.to_string(), json!({}));
    }
    let mut out = Map::new();
    out.insert("serials".into(), Value::Object(serials));
    Ok(Some(Response::data(out)))
}

async fn login(backend: &Cert, req: &Request, trust: &TrustSet, f: &FieldData) -> Result<Option<Response>> {
    let v = backend.admit(req, trust, f.str("name")).await?;
    if !addr_in_cidrs(req.remote_addr, &v.entry.token.token_bound_cidrs) {
        return Err(LogicalError::new(ErrorKind::PermissionDenied, "permission denied"));
    }
    let config = &trust.config;
    let display = if v.entry.display_name.is_empty() { v.name.clone() } else { v.entry.display_name.clone() };
    let mut auth = v.entry.token.to_auth(&display, &v.leaf.common_name, req.remote_addr);
    let ext = v.entry.metadata_extensions(&v.leaf);
    let mut meta = Map::new();
    meta.insert("cert_name".into(), Value::String(v.name.clone()));
    meta.insert("common_name".into(), Value::String(v.leaf.common_name.clone()));
    meta.insert("serial_number".into(), Value::String(v.leaf.serial.clone()));
    meta.insert("subject_key_id".into(), Value::String(hex_colons(&v.leaf.skid)));
    meta.insert("authority_key_id".into(), Value::String(hex_colons(&v.leaf.akid)));
    for (k, val) in &ext {
        meta.insert(k.clone(), val.clone());
    }
    auth.metadata = meta;
    if config.enable_identity_alias_metadata {
        auth.alias_metadata = ext;
    }
    Ok(Some(Response { auth: Some(auth), ..Default::default() }))
}

async fn renew(backend: &Cert, req: &Request, trust: &TrustSet, login: &LoginRenewal) -> Result<()> {
    let meta = |k: &str| login.metadata.get(k).and_then(Value::as_str).unwrap_or("");
    let config = &trust.config;
    let name = meta("cert_name");
    let Some(entry) = load::<CertEntry>(req, &cert_key(name)).await? else {
        return Err(LogicalError::bad_request(
            "the trusted certificate this token logged in with no longer exists, not renewing",
        ));
    };
    if !equivalent_policies(&entry.token.token_policies, &login.policies) {
        return Err(LogicalError::bad_request("policies have changed, not renewing"));
    }
    if config.disable_binding {
        return Ok(());
    }
    let v = backend.admit(req, trust, None).await?;
    let same_cert = v.leaf.serial == meta("serial_number") && hex_colons(&v.leaf.akid) == meta("authority_key_id");
    let same_key = !v.leaf.skid.is_empty()
        && hex_colons(&v.leaf.skid) == meta("subject_key_id")
        && hex_colons(&v.leaf.akid) == meta("authority_key_id");
    if !(same_cert || same_key) {
        return Err(LogicalError::bad_request(
            "client identity during renewal not matching client identity used during login",
        ));
    }
    Ok(())
}

impl Cert {
    async fn dispatch(&self, route: Route, req: Request, f: FieldData) -> Result<Option<Response>> {
        let name = f.str("name").unwrap_or_default().to_lowercase();
        match (route, req.operation) {
            (Route::Config, Operation::Read) => {
                let c = load_config(&req).await?;
                let out = json!({
                    "disable_binding": c.disable_binding,
                    "enable_identity_alias_metadata": c.enable_identity_alias_metadata,
                    "ocsp_cache_size": c.ocsp_cache_size,
                });
                Ok(Some(Response::data(out.as_object().cloned().unwrap_or_default())))
            }
            (Route::Config, _) => {
                let mut c = load_config(&req).await?;
                if let Some(n) = f.int("ocsp_cache_size") {
                    if !(0..=1_000_000).contains(&n) {
                        return Err(LogicalError::bad_request("ocsp_cache_size must be between 0 and 1000000"));
                    }
                    c.ocsp_cache_size = n;
                }
                if let Some(b) = f.bool("disable_binding") {
                    c.disable_binding = b;
                }
                if let Some(b) = f.bool("enable_identity_alias_metadata") {
                    c.enable_identity_alias_metadata = b;
                }
                save(&req, "config", &c).await?;
                Ok(None)
            }
            (Route::CertList, _) => {
                let keys = req.storage.list("cert/").await?;
                Ok(if keys.is_empty() { None } else { Some(Response::list(keys)) })
            }
            (Route::Cert, Operation::Read) => {
                Ok(load::<CertEntry>(&req, &cert_key(&name)).await?.map(|e| Response::data(cert_json(&e))))
            }
            (Route::Cert, Operation::Delete) => {
                req.storage.delete(&cert_key(&name)).await?;
                Ok(None)
            }
            (Route::Cert, _) => write_cert(&req, &name, &f).await,
            (Route::CrlList, _) => {
                let keys = req.storage.list("crls/").await?;
                Ok(if keys.is_empty() { None } else { Some(Response::list(keys)) })
            }
            (Route::Crl, Operation::Read) => read_crl(&req, &name).await,
            (Route::Crl, Operation::Delete) => {
                req.storage.delete(&format!("crls/{name}")).await?;
                Ok(None)
            }
            (Route::Crl, _) => write_crl(&req, &name, &f).await,
            (Route::Login, _) => login(self, &req, &*self.trust(&req).await?, &f).await,
        }
    }
}

#[async_trait]
impl Handler for Cert {
    type Route = Route;

    fn backend_type(&self) -> &'static str {
        "cert"
    }

    fn paths(&self) -> &Paths<Route> {
        &self.paths
    }

    async fn handle(&self, route: Route, req: Request, f: FieldData) -> Result<Option<Response>> {
        let changes = matches!(route, Route::Config | Route::Cert | Route::Crl)
            && !matches!(req.operation, Operation::Read | Operation::List);
        let out = self.dispatch(route, req, f).await;
        if changes {
            // After the write (success or not), before the answer: no later login uses what
            // was decoded before it.
            self.trust.clear();
            self.ocsp.clear();
        }
        out
    }

    async fn exists(&self, route: Route, req: &Request, f: &FieldData) -> Result<Option<bool>> {
        let name = f.str("name").unwrap_or_default().to_lowercase();
        match route {
            Route::Cert => Ok(Some(req.storage.get(&cert_key(&name)).await?.is_some())),
            _ => Ok(None),
        }
    }

    async fn renew_login(&self, req: &Request, login: &LoginRenewal) -> Result<()> {
        renew(self, req, &*self.trust(req).await?, login).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_as_go_glob_does() {
        assert!(glob("*", ""));
        assert!(glob("web*", "web1.example.com"));
        assert!(glob("*.example.com", "a.example.com"));
        assert!(!glob("*.example.com", "example.com"));
        assert!(glob("a*b*c", "aXbYc"));
        assert!(!glob("a*b*c", "aXcYb"));
        assert!(glob("exact", "exact") && !glob("exact", "exactly"));
        assert!(!glob("ab*ba", "aba"), "prefix and suffix may not overlap");
    }

    #[test]
    fn hex_round_trips_and_rejects_junk() {
        assert_eq!(unhex(&hex(&[0, 1, 0xfe])), Some(vec![0, 1, 0xfe]));
        assert_eq!(unhex("0"), None);
        assert_eq!(unhex("zz"), None);
        assert_eq!(hex_colons(&[0xab, 0x01]), "ab:01");
    }

    #[test]
    fn der_sequence_contents_are_found_for_short_and_long_lengths() {
        assert_eq!(strip_sequence(&[0x30, 2, 5, 6]), &[5, 6]);
        let mut long = vec![0x30, 0x81, 0x80];
        long.extend(std::iter::repeat_n(7u8, 0x80));
        assert_eq!(strip_sequence(&long).len(), 0x80);
        assert_eq!(strip_sequence(&[0x31, 1, 1]), &[0x31, 1, 1]);
    }
}
