#![forbid(unsafe_code)]
//! The PKI secrets engine: a mount is a certificate authority with one or more issuers (a
//! generated or imported root, or an intermediate signed elsewhere), named keys, roles that
//! say which names may be certified, issuance (`issue/:role`: a new key and certificate),
//! signing of CSRs (`sign/:role`, `sign-verbatim`, `root/sign-intermediate`), revocation and
//! CRLs, an OCSP responder (`ocsp`); the CA certificates, CRLs and OCSP answers are public
//! (unauthenticated), in PEM and DER. The unified CRL and OCSP paths (`unified-crl…`,
//! `unified-ocsp`, on with `config/crl unified_crl`) answer what the others do: one cluster's
//! revocations are all of them.
//!
//! Storage (the mount's own view, JSON unless said):
//!
//! | key | content |
//! |---|---|
//! | `issuer/<id>` | name, certificate and chain (PEM), key id, CRL number |
//! | `key/<id>` | name, type, private key (PKCS#8 PEM) |
//! | `config/issuers`, `config/urls`, `config/crl` | default issuer; AIA/CRL URLs; CRL expiry |
//! | `role/<name>` | a role |
//! | `certs/<serial>` | an issued certificate (PEM), its issuer, its revocation time |
//! | `crl/<issuer id>` | the issuer's current complete CRL (DER, base64 in JSON), its number and times |
//! | `delta/<issuer id>` | the issuer's current delta CRL, likewise |

mod acme;
mod ca;
mod ocsp;
mod role;
mod tidy;

use async_trait::async_trait;
use ca::{CertFacts, KeySpec, Subject, Urls, Usage};
use coffer_sdk::field::FieldType;
use coffer_sdk::framework::{FieldData, FieldSpec, Handler, PathFlags, PathSpec, Paths};
use coffer_sdk::{LogicalError, Operation, Request, Response, Result, StorageView};
use role::Role;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::net::IpAddr;
use time::OffsetDateTime;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// The paths of the PKI engine, one variant per row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Root,
    RootGenerate,
    RootRotate,
    CrossSign,
    IntermediateGenerate,
    SignIntermediate,
    SetSigned,
    ConfigCa,
    Issuers,
    Issuer,
    IssuerRaw,
    IssuerCrl,
    ConfigIssuers,
    Keys,
    Key,
    Roles,
    Role,
    Issue,
    Sign,
    SignVerbatim,
    Certs,
    Cert,
    CertRaw,
    Ca,
    CaChain,
    Crl,
    Revoke,
    RevokeWithKey,
    CrlRotate,
    ConfigUrls,
    ConfigCrl,
    Ocsp,
    CrlDelta,
    CrlRotateDelta,
    Tidy,
    TidyStatus,
    TidyCancel,
    ConfigAutoTidy,
    ConfigAcme,
    ConfigCluster,
    AcmeNewEab,
    AcmeEabs,
    AcmeEab,
    Acme,
}

/// The CRL's default lifetime (OpenBao's `config/crl` expiry: 72h).
const DEFAULT_CRL_EXPIRY: i64 = 72 * 3600;

#[derive(Serialize, Deserialize, Clone)]
struct IssuerEntry {
    id: String,
    name: String,
    /// This issuer's certificate, PEM.
    certificate: String,
    /// The issuer's chain, this certificate first, then its issuers' (PEM each).
    ca_chain: Vec<String>,
    key_id: String,
    serial: String,
    not_after: i64,
    #[serde(default)]
    crl_number: u64,
}

#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
struct KeyEntry {
    id: String,
    name: String,
    key_type: String,
    key_bits: u32,
    private_key: String,
}

#[derive(Serialize, Deserialize, Default)]
struct IssuersConfig {
    default: String,
    /// A new issuer with a key (generated or rotated root, signed intermediate, imported bundle
    /// with its key) becomes the default.
    #[serde(default)]
    default_follows_latest_issuer: bool,
}

#[derive(Serialize, Deserialize, Default)]
struct UrlsConfig {
    issuing_certificates: Vec<String>,
    crl_distribution_points: Vec<String>,
    ocsp_servers: Vec<String>,
}

/// OCSP answers' default lifetime (OpenBao's `ocsp_expiry`: 12h).
const DEFAULT_OCSP_EXPIRY: i64 = 12 * 3600;

fn default_ocsp_expiry() -> i64 {
    DEFAULT_OCSP_EXPIRY
}

#[derive(Serialize, Deserialize)]
struct CrlConfig {
    expiry: i64,
    disable: bool,
    #[serde(default)]
    ocsp_disable: bool,
    /// How long an OCSP answer is valid (its nextUpdate); 0: no nextUpdate.
    #[serde(default = "default_ocsp_expiry")]
    ocsp_expiry: i64,
    /// Revocations leave the complete CRL alone (the delta CRL carries them); it is rebuilt
    /// once within `auto_rebuild_grace_period` of its nextUpdate.
    #[serde(default)]
    auto_rebuild: bool,
    #[serde(default = "default_grace")]
    auto_rebuild_grace_period: i64,
    #[serde(default)]
    enable_delta: bool,
    #[serde(default = "default_delta_interval")]
    delta_rebuild_interval: i64,
    /// The unified CRL and OCSP paths answer (`unified-crl…`, `unified-ocsp`). One cluster's
    /// unified CRL is its CRL: the same revocations, the same signed CRL.
    #[serde(default)]
    unified_crl: bool,
    /// Recorded as Vault has it (the existing paths answer with the unified CRL, which on one
    /// cluster is what they serve anyway); needs `unified_crl`.
    #[serde(default)]
    unified_crl_on_existing_paths: bool,
}

fn default_grace() -> i64 {
    12 * 3600
}

fn default_delta_interval() -> i64 {
    15 * 60
}

impl Default for CrlConfig {
    fn default() -> Self {
        CrlConfig {
            expiry: DEFAULT_CRL_EXPIRY,
            disable: false,
            ocsp_disable: false,
            ocsp_expiry: DEFAULT_OCSP_EXPIRY,
            auto_rebuild: false,
            auto_rebuild_grace_period: default_grace(),
            enable_delta: false,
            delta_rebuild_interval: default_delta_interval(),
            unified_crl: false,
            unified_crl_on_existing_paths: false,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct CertEntry {
    certificate: String,
    issuer_id: String,
    not_after: i64,
    /// Unix seconds; 0 while not revoked.
    revocation_time: i64,
}

#[derive(Serialize, Deserialize)]
struct CrlEntry {
    der_b64: String,
    /// Its CRL number (0 in entries written before numbers were kept).
    #[serde(default)]
    number: u64,
    /// Unix seconds.
    #[serde(default)]
    this_update: i64,
    #[serde(default)]
    next_update: i64,
    /// A complete CRL's revoked serials (storage keys), which its delta CRLs leave out.
    #[serde(default)]
    serials: Vec<String>,
}

fn bad(msg: impl Into<String>) -> LogicalError {
    LogicalError::bad_request(msg)
}

async fn get_json<T: for<'de> Deserialize<'de>>(s: &dyn StorageView, key: &str) -> Result<Option<T>> {
    match s.get(key).await? {
        None => Ok(None),
        Some(raw) => serde_json::from_slice(&raw)
            .map(Some)
            // drop-cause: entries may hold private keys, which a JSON error could quote.
            .map_err(|_| LogicalError::internal(format!("stored entry at {key:?} is malformed"))),
    }
}

async fn put_json<T: Serialize>(s: &dyn StorageView, key: &str, v: &T) -> Result<()> {
    let bytes = Zeroizing::new(serde_json::to_vec(v).map_err(|e| LogicalError::internal(e.to_string()))?);
    s.put(key, &bytes).await
}

fn strings(f: &FieldData, name: &str) -> Vec<String> {
    match f.get(name) {
        Some(Value::Array(a)) => {
            a.iter().filter_map(|v| v.as_str().map(str::to_string)).filter(|s| !s.is_empty()).collect()
        }
        _ => Vec::new(),
    }
}

fn rfc3339(t: i64) -> String {
    OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| d.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// A raw answer (PEM or DER) as Vault's data keys carry it; the core sends it as the body.
fn raw(content_type: &str, body: Vec<u8>) -> Response {
    use base64::Engine as _;
    let mut d = Map::new();
    d.insert("http_content_type".into(), json!(content_type));
    d.insert("http_raw_body".into(), json!(base64::engine::general_purpose::STANDARD.encode(body)));
    d.insert("http_status_code".into(), json!(200));
    Response::data(d)
}

fn name_field(name: &'static str, d: &'static str) -> FieldSpec {
    FieldSpec::new(name, FieldType::String, d)
}

fn subject_fields() -> Vec<FieldSpec> {
    vec![
        name_field("common_name", "The common name of the certificate"),
        FieldSpec::new(
            "alt_names",
            FieldType::CommaStringSlice,
            "DNS names and email addresses for the subject alternative names",
        ),
        FieldSpec::new("ip_sans", FieldType::CommaStringSlice, "IP addresses for the subject alternative names"),
        FieldSpec::new("uri_sans", FieldType::CommaStringSlice, "URIs for the subject alternative names"),
        FieldSpec::new("other_sans", FieldType::CommaStringSlice, "Other names (refused: not supported)"),
        FieldSpec::new("ttl", FieldType::DurationSecond, "Requested lifetime of the certificate"),
        FieldSpec::new("not_after", FieldType::String, "Exact expiry (RFC 3339), instead of ttl"),
        FieldSpec::new("format", FieldType::String, "pem, der or pem_bundle").default(json!("pem")),
        FieldSpec::new("private_key_format", FieldType::String, "der, pem or pkcs8 (pem is PKCS#8 here)")
            .default(json!("der")),
        FieldSpec::new("exclude_cn_from_sans", FieldType::Bool, "Leave the common name out of the SANs")
            .default(json!(false)),
        FieldSpec::new("ou", FieldType::CommaStringSlice, "Organizational units"),
        FieldSpec::new("organization", FieldType::CommaStringSlice, "Organizations"),
        FieldSpec::new("country", FieldType::CommaStringSlice, "Countries"),
        FieldSpec::new("locality", FieldType::CommaStringSlice, "Localities"),
        FieldSpec::new("province", FieldType::CommaStringSlice, "Provinces"),
        FieldSpec::new("street_address", FieldType::CommaStringSlice, "Street addresses"),
        FieldSpec::new("postal_code", FieldType::CommaStringSlice, "Postal codes"),
        FieldSpec::new("serial_number", FieldType::String, "The subject's serialNumber attribute"),
        FieldSpec::new("remove_roots_from_chain", FieldType::Bool, "Leave self-signed roots out of ca_chain")
            .default(json!(false)),
    ]
}

fn ca_fields() -> Vec<FieldSpec> {
    let mut v = subject_fields();
    v.extend([
        FieldSpec::new("key_type", FieldType::String, "rsa, ec or ed25519").default(json!("rsa")),
        FieldSpec::new(
            "key_bits",
            FieldType::Int,
            "Key size: 2048/3072/4096 (rsa), 256/384/521 (ec); 0 for the default",
        )
        .default(json!(0)),
        FieldSpec::new("key_name", FieldType::String, "Name of the new key"),
        FieldSpec::new("key_ref", FieldType::String, "An existing key to use (with the existing type)"),
        FieldSpec::new("issuer_name", FieldType::String, "Name of the new issuer"),
        FieldSpec::new("max_path_length", FieldType::Int, "Maximum path length of the CA; -1 for none")
            .default(json!(-1)),
        FieldSpec::new(
            "signature_bits",
            FieldType::Int,
            "Refused unless 0 or 256: signatures use SHA-256 (SHA-384/512 for P-384/P-521)",
        )
        .default(json!(0)),
        FieldSpec::new("not_before_duration", FieldType::DurationSecond, "Backdating of NotBefore").default(json!(30)),
        FieldSpec::new(
            "permitted_dns_domains",
            FieldType::CommaStringSlice,
            "Refused: name constraints are not supported yet",
        ),
        FieldSpec::new("use_pss", FieldType::Bool, "Refused when true: PSS signatures are not supported yet")
            .default(json!(false)),
        FieldSpec::new("managed_key_name", FieldType::String, "Refused: managed keys are not supported"),
        FieldSpec::new("managed_key_id", FieldType::String, "Refused: managed keys are not supported"),
        FieldSpec::new(
            "add_basic_constraints",
            FieldType::Bool,
            "For CSRs: accepted, basic constraints are added by the signer",
        )
        .default(json!(false)),
    ]);
    v
}

fn signing_fields() -> Vec<FieldSpec> {
    let mut v = subject_fields();
    v.extend([
        FieldSpec::new("csr", FieldType::String, "The certificate signing request, PEM"),
        FieldSpec::new("role", FieldType::String, "The role"),
        FieldSpec::new("issuer_ref", FieldType::String, "The issuer to sign with (default: the default issuer)"),
        FieldSpec::new("use_csr_values", FieldType::Bool, "Take subject and names from the CSR").default(json!(false)),
        FieldSpec::new("max_path_length", FieldType::Int, "Maximum path length of a signed CA; -1 for none")
            .default(json!(-1)),
        FieldSpec::new("not_before_duration", FieldType::DurationSecond, "Backdating of NotBefore").default(json!(30)),
        FieldSpec::new("signature_bits", FieldType::Int, "Refused unless 0 or 256").default(json!(0)),
        FieldSpec::new("use_pss", FieldType::Bool, "Refused when true").default(json!(false)),
        FieldSpec::new("key_usage", FieldType::CommaStringSlice, "sign-verbatim: key usages"),
        FieldSpec::new("ext_key_usage", FieldType::CommaStringSlice, "sign-verbatim: extended key usages"),
        FieldSpec::new(
            "permitted_dns_domains",
            FieldType::CommaStringSlice,
            "Refused: name constraints are not supported yet",
        ),
        FieldSpec::new("user_ids", FieldType::CommaStringSlice, "Refused: user ids are not supported yet"),
    ]);
    v
}

fn row(
    pattern: &'static str,
    fields: Vec<FieldSpec>,
    ops: Vec<(Operation, &'static str)>,
    synopsis: &'static str,
) -> PathSpec {
    PathSpec {
        flags: PathFlags::NORMAL,
        pattern,
        fields,
        operations: ops,
        passthrough: false,
        synopsis,
        description: synopsis,
    }
}

/// The `unified-` prefix of the unified CRL and OCSP paths (answered when `config/crl` has
/// `unified_crl`).
fn unified() -> FieldSpec {
    name_field("unified", "unified-: the unified CRL or OCSP (config/crl unified_crl)")
}

fn public(mut p: PathSpec) -> PathSpec {
    p.flags = PathFlags::NORMAL.unauthenticated();
    p
}

fn path_specs() -> Vec<(Route, PathSpec)> {
    let mut rows = engine_path_specs();
    rows.extend(acme::path_specs());
    rows
}

fn engine_path_specs() -> Vec<(Route, PathSpec)> {
    use Operation::{Create, Delete, List, Read, Update};
    let exported = || FieldSpec::new("exported", FieldType::String, "internal, exported, existing or kms");
    let iref = || name_field("issuer_ref", "An issuer's id or name, or default");
    let kref = || name_field("key_ref", "A key's id or name, or default");
    let mut gen = ca_fields();
    gen.push(exported());
    let sign = signing_fields();
    vec![
        (
            Route::Root,
            row(
                r"root",
                vec![],
                vec![(Delete, "Delete every issuer and key of the mount")],
                "Delete the CA: every issuer and key (issued certificates stay listed)",
            ),
        ),
        (
            Route::RootGenerate,
            row(
                r"(?:issuers/generate/root|root/generate)/(?P<exported>internal|exported|existing|kms)",
                gen.clone(),
                vec![(Create, "Generate a root CA"), (Update, "Generate a root CA")],
                "Generate a self-signed root CA",
            ),
        ),
        (
            Route::RootRotate,
            row(
                r"root/rotate/(?P<exported>internal|exported|existing|kms)",
                gen.clone(),
                vec![(Create, "Generate the next root CA"), (Update, "Generate the next root CA")],
                "Generate a new root (named next) without changing the default issuer",
            ),
        ),
        (
            Route::CrossSign,
            row(
                r"intermediate/cross-sign",
                gen.clone(),
                vec![(Create, "A CSR for an existing key"), (Update, "A CSR for an existing key")],
                "A CSR with an existing issuer's key (key_ref, default: the default issuer's), for another CA to cross-sign",
            ),
        ),
        (
            Route::IntermediateGenerate,
            row(
                r"(?:issuers/generate/intermediate|intermediate/generate)/(?P<exported>internal|exported|existing|kms)",
                gen,
                vec![(Create, "Generate a key and a CSR for an intermediate CA"), (Update, "Generate a key and a CSR")],
                "Generate an intermediate CA's key and CSR",
            ),
        ),
        (
            Route::SignIntermediate,
            row(
                r"(?:root/sign-intermediate|issuer/(?P<issuer_ref>[A-Za-z0-9_\-]+)/sign-intermediate)",
                signing_fields(),
                vec![(Create, "Sign an intermediate CA's CSR"), (Update, "Sign an intermediate CA's CSR")],
                "Sign an intermediate CA",
            ),
        ),
        (
            Route::SetSigned,
            row(
                r"intermediate/set-signed",
                vec![FieldSpec::new(
                    "certificate",
                    FieldType::String,
                    "The signed certificate, and optionally its chain, PEM",
                )],
                vec![
                    (Create, "Import the signed intermediate certificate"),
                    (Update, "Import the signed intermediate certificate"),
                ],
                "Import a signed intermediate",
            ),
        ),
        (
            Route::ConfigCa,
            row(
                r"(?:config/ca|issuers/import/(?:bundle|cert))",
                vec![FieldSpec::new("pem_bundle", FieldType::String, "Certificates and optionally their keys, PEM")],
                vec![(Create, "Import issuers and keys"), (Update, "Import issuers and keys")],
                "Import CA certificates and keys",
            ),
        ),
        (Route::Issuers, row(r"issuers/?", vec![], vec![(List, "List the issuers")], "List issuers")),
        (
            Route::Issuer,
            row(
                concat!(r"issuer/", r"(?P<issuer_ref>[A-Za-z0-9_\-]+)"),
                vec![
                    iref(),
                    name_field("issuer_name", "A new name for the issuer"),
                    FieldSpec::new("leaf_not_after_behavior", FieldType::String, "err (the only behaviour supported)")
                        .default(json!("err")),
                ],
                vec![(Read, "Read an issuer"), (Update, "Rename an issuer"), (Delete, "Delete an issuer")],
                "An issuer",
            ),
        ),
        (
            Route::IssuerRaw,
            public(row(
                r"issuer/(?P<issuer_ref>[A-Za-z0-9_\-]+)/(?P<fmt>json|pem|der)",
                vec![iref(), name_field("fmt", "json, pem or der")],
                vec![(Read, "The issuer's certificate")],
                "An issuer's certificate",
            )),
        ),
        (
            Route::IssuerCrl,
            public(row(
                r"issuer/(?P<issuer_ref>[A-Za-z0-9_\-]+)/(?P<unified>unified-)?crl(?:/(?P<delta>delta))?(?:/(?P<fmt>pem|der))?",
                vec![iref(), name_field("fmt", "pem or der"), name_field("delta", "delta: the delta CRL"), unified()],
                vec![(Read, "The issuer's CRL")],
                "An issuer's CRL",
            )),
        ),
        (
            Route::ConfigIssuers,
            row(
                r"(?:config/issuers|root/replace)",
                vec![
                    name_field("default", "The default issuer (id or name)"),
                    FieldSpec::new(
                        "default_follows_latest_issuer",
                        FieldType::Bool,
                        "New issuers with a key (generated, rotated, signed or imported) become the default",
                    )
                    .default(json!(false)),
                ],
                vec![(Read, "Read the default issuer"), (Update, "Set the default issuer")],
                "The default issuer",
            ),
        ),
        (Route::Keys, row(r"keys/?", vec![], vec![(List, "List the keys")], "List keys")),
        (
            Route::Key,
            row(
                r"key/(?P<key_ref>[A-Za-z0-9_\-]+)",
                vec![kref(), name_field("key_name", "A new name for the key")],
                vec![
                    (Read, "Read a key (never its private part)"),
                    (Update, "Rename a key"),
                    (Delete, "Delete an unused key"),
                ],
                "A key",
            ),
        ),
        (Route::Roles, row(r"roles/?", vec![], vec![(List, "List the roles")], "List roles")),
        (
            Route::Role,
            row(
                concat!("roles/", r"(?P<role>\w(?:[\w.\-]*\w)?)"),
                role::fields(),
                vec![
                    (Create, "Create a role"),
                    (Update, "Update a role"),
                    (Read, "Read a role"),
                    (Delete, "Delete a role"),
                ],
                "A role",
            ),
        ),
        (
            Route::Issue,
            row(
                r"(?:issue|issuer/(?P<issuer_ref>[A-Za-z0-9_\-]+)/issue)/(?P<role>\w(?:[\w.\-]*\w)?)",
                sign.clone(),
                vec![(Create, "Issue a key and certificate"), (Update, "Issue a key and certificate")],
                "Issue a certificate with a new key",
            ),
        ),
        (
            Route::Sign,
            row(
                r"(?:sign|issuer/(?P<issuer_ref>[A-Za-z0-9_\-]+)/sign)/(?P<role>\w(?:[\w.\-]*\w)?)",
                sign.clone(),
                vec![(Create, "Sign a CSR"), (Update, "Sign a CSR")],
                "Sign a CSR under a role",
            ),
        ),
        (
            Route::SignVerbatim,
            row(
                r"(?:sign-verbatim|issuer/(?P<issuer_ref>[A-Za-z0-9_\-]+)/sign-verbatim)(?:/(?P<role>\w(?:[\w.\-]*\w)?))?",
                sign,
                vec![(Create, "Sign a CSR as it is"), (Update, "Sign a CSR as it is")],
                "Sign a CSR verbatim (sudo)",
            ),
        ),
        (
            Route::Certs,
            row(r"certs/?", vec![], vec![(List, "List issued certificates by serial")], "List certificates"),
        ),
        (
            Route::Cert,
            public(row(
                r"cert/(?P<serial>[0-9A-Fa-f:\-]+|ca|ca_chain|crl|delta-crl|unified-crl|unified-delta-crl)",
                vec![name_field(
                    "serial",
                    "A serial number, or ca, ca_chain, crl, delta-crl, unified-crl, unified-delta-crl",
                )],
                vec![(Read, "Read a certificate")],
                "A certificate",
            )),
        ),
        (
            Route::CertRaw,
            public(row(
                r"cert/(?P<serial>[0-9A-Fa-f:\-]+|ca|ca_chain|crl|delta-crl|unified-crl|unified-delta-crl)/raw(?:/(?P<fmt>pem))?",
                vec![name_field("serial", "A serial number"), name_field("fmt", "pem")],
                vec![(Read, "A certificate, DER or PEM")],
                "A certificate, raw",
            )),
        ),
        (
            Route::Ca,
            public(row(
                r"ca(?:/(?P<fmt>pem))?",
                vec![name_field("fmt", "pem")],
                vec![(Read, "The default issuer's certificate")],
                "The CA certificate",
            )),
        ),
        (
            Route::CaChain,
            public(row(
                r"(?:ca_chain|cert/ca_chain/raw)",
                vec![],
                vec![(Read, "The default issuer's chain, PEM")],
                "The CA chain",
            )),
        ),
        (
            Route::Crl,
            public(row(
                r"(?P<unified>unified-)?crl(?:/(?P<fmt>pem))?",
                vec![name_field("fmt", "pem"), unified()],
                vec![(Read, "The default issuer's CRL")],
                "The CRL",
            )),
        ),
        (
            Route::Revoke,
            row(
                r"revoke",
                vec![
                    name_field("serial_number", "Serial of the certificate to revoke"),
                    name_field("certificate", "The certificate to revoke, PEM"),
                ],
                vec![(Create, "Revoke a certificate"), (Update, "Revoke a certificate")],
                "Revoke",
            ),
        ),
        (
            Route::RevokeWithKey,
            row(
                r"revoke-with-key",
                vec![
                    name_field("serial_number", "Serial of the certificate to revoke"),
                    name_field("certificate", "The certificate to revoke, PEM"),
                    name_field("private_key", "The certificate's private key, PEM"),
                ],
                vec![
                    (Create, "Revoke a certificate, proving its key"),
                    (Update, "Revoke a certificate, proving its key"),
                ],
                "Revoke with the private key",
            ),
        ),
        (Route::CrlRotate, row(r"crl/rotate", vec![], vec![(Read, "Rebuild the CRLs")], "Rebuild CRLs")),
        (
            Route::CrlRotateDelta,
            row(r"crl/rotate-delta", vec![], vec![(Read, "Rebuild the delta CRLs")], "Rebuild delta CRLs"),
        ),
        (
            Route::CrlDelta,
            public(row(
                r"(?P<unified>unified-)?crl/delta(?:/(?P<fmt>pem))?",
                vec![name_field("fmt", "pem"), unified()],
                vec![(Read, "The default issuer's delta CRL")],
                "The delta CRL",
            )),
        ),
        (
            Route::ConfigUrls,
            row(
                r"config/urls",
                vec![
                    FieldSpec::new("issuing_certificates", FieldType::CommaStringSlice, "AIA issuing-certificate URLs"),
                    FieldSpec::new(
                        "crl_distribution_points",
                        FieldType::CommaStringSlice,
                        "CRL distribution point URLs",
                    ),
                    FieldSpec::new(
                        "ocsp_servers",
                        FieldType::CommaStringSlice,
                        "OCSP responder URLs (the AIA extension), e.g. <api>/v1/<mount>/ocsp",
                    ),
                    FieldSpec::new("enable_templating", FieldType::Bool, "Refused when true").default(json!(false)),
                ],
                vec![(Read, "Read the URLs"), (Update, "Set the URLs")],
                "URLs put in issued certificates",
            ),
        ),
        (
            Route::ConfigCrl,
            row(
                r"config/crl",
                vec![
                    FieldSpec::new("expiry", FieldType::DurationSecond, "How long a CRL is valid")
                        .default(json!("72h")),
                    FieldSpec::new("disable", FieldType::Bool, "Refused when true: CRLs are always built")
                        .default(json!(false)),
                    FieldSpec::new(
                        "auto_rebuild",
                        FieldType::Bool,
                        "Revocations no longer rebuild the complete CRL; it is rebuilt before it expires",
                    )
                    .default(json!(false)),
                    FieldSpec::new(
                        "auto_rebuild_grace_period",
                        FieldType::DurationSecond,
                        "With auto_rebuild: how long before its nextUpdate the complete CRL is rebuilt",
                    )
                    .default(json!("12h")),
                    FieldSpec::new("enable_delta", FieldType::Bool, "Keep a delta CRL (needs auto_rebuild)")
                        .default(json!(false)),
                    FieldSpec::new(
                        "delta_rebuild_interval",
                        FieldType::DurationSecond,
                        "Longest time before a revocation is on the delta CRL (Coffer: at once)",
                    )
                    .default(json!("15m")),
                    FieldSpec::new("ocsp_disable", FieldType::Bool, "Answer OCSP requests with unauthorized")
                        .default(json!(false)),
                    FieldSpec::new(
                        "ocsp_expiry",
                        FieldType::DurationSecond,
                        "How long an OCSP answer is valid (nextUpdate); 0 for no nextUpdate",
                    )
                    .default(json!("12h")),
                    FieldSpec::new("unified_crl", FieldType::Bool, "Serve the unified CRL and OCSP paths")
                        .default(json!(false)),
                    FieldSpec::new(
                        "unified_crl_on_existing_paths",
                        FieldType::Bool,
                        "The existing CRL and OCSP paths answer as the unified ones (needs unified_crl)",
                    )
                    .default(json!(false)),
                    FieldSpec::new(
                        "cross_cluster_revocation",
                        FieldType::Bool,
                        "Refused when true: Coffer is one cluster, with no other to queue revocations for",
                    )
                    .default(json!(false)),
                ],
                vec![(Read, "Read the CRL settings"), (Update, "Set the CRL settings")],
                "CRL settings",
            ),
        ),
        (
            Route::Ocsp,
            public(row(
                r"(?P<unified>unified-)?ocsp(?:/(?P<req>.+))?",
                vec![
                    unified(),
                    name_field("req", "The OCSP request, DER in base64 (GET)"),
                    FieldSpec::new(
                        "http_raw_body",
                        FieldType::String,
                        "The OCSP request of a POST with Content-Type application/ocsp-request (set by the server)",
                    ),
                ],
                vec![(Read, "Answer an OCSP request given in the path"), (Update, "Answer an OCSP request")],
                "The OCSP responder (RFC 6960)",
            )),
        ),
        (
            Route::Tidy,
            row(
                r"tidy",
                tidy::tidy_fields(false),
                vec![(Create, "Start a tidy"), (Update, "Start a tidy")],
                "Tidy the certificate store, revoked certificates and issuers",
            ),
        ),
        (Route::TidyStatus, row(r"tidy-status", vec![], vec![(Read, "The last tidy's status")], "Tidy status")),
        (
            Route::TidyCancel,
            row(
                r"tidy-cancel",
                vec![],
                vec![(Create, "Cancel the running tidy"), (Update, "Cancel the running tidy")],
                "Cancel a tidy",
            ),
        ),
        (
            Route::ConfigAutoTidy,
            row(
                r"config/auto-tidy",
                tidy::tidy_fields(true),
                vec![(Read, "Read the auto-tidy settings"), (Update, "Set the auto-tidy settings")],
                "Automatic tidy",
            ),
        ),
    ]
}

/// The PKI secrets engine; serve it wrapped in [`coffer_sdk::framework::Backend`]. Clones
/// share everything (a background tidy holds one).
#[derive(Clone)]
pub struct Pki {
    paths: std::sync::Arc<Paths<Route>>,
    /// Serialises writes that read-modify-write shared entries (CRL numbers, the default issuer).
    lock: std::sync::Arc<tokio::sync::Mutex<()>>,
    tidy: std::sync::Arc<tidy::TidyState>,
    /// The ACME server's nonces and lock.
    acme: std::sync::Arc<acme::State>,
}

impl Default for Pki {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Handler for Pki {
    type Route = Route;

    fn backend_type(&self) -> &'static str {
        "pki"
    }

    fn paths(&self) -> &Paths<Route> {
        &self.paths
    }

    async fn handle(&self, route: Route, req: Request, fields: FieldData) -> Result<Option<Response>> {
        // Also on the mount's traffic, so a due auto-tidy starts at once when requests come.
        self.auto_tidy_tick(&req.storage).await?;
        self.dispatch(route, &req, &fields).await
    }

    /// The core's periodic call: starts an automatic tidy when one is due, traffic or not.
    async fn periodic(&self, req: &Request) -> Result<()> {
        self.auto_tidy_tick(&req.storage).await
    }

    async fn revoke_secret(&self, req: &Request, internal: &Map<String, Value>) -> Result<()> {
        self.revoke_leased(req.storage.as_ref(), internal).await
    }

    async fn renew_secret(&self, _req: &Request, _internal: &Map<String, Value>, _ttl: i64) -> Result<i64> {
        Err(bad("lease is not renewable"))
    }
}

impl Pki {
    pub fn new() -> Self {
        Pki {
            paths: std::sync::Arc::new(Paths::new(path_specs())),
            lock: std::sync::Arc::new(tokio::sync::Mutex::new(())),
            tidy: std::sync::Arc::default(),
            acme: std::sync::Arc::default(),
        }
    }

    async fn dispatch(&self, route: Route, req: &Request, f: &FieldData) -> Result<Option<Response>> {
        let s = req.storage.as_ref();
        let op = req.operation;
        match route {
            Route::Root => {
                let _g = self.lock.lock().await;
                for id in s.list("issuer/").await? {
                    s.delete(&format!("issuer/{id}")).await?;
                    s.delete(&format!("crl/{id}")).await?;
                    s.delete(&format!("delta/{id}")).await?;
                }
                for id in s.list("key/").await? {
                    s.delete(&format!("key/{id}")).await?;
                }
                // No default any more; default_follows_latest_issuer stays (as in OpenBao).
                let mut cfg = get_json::<IssuersConfig>(s, "config/issuers").await?.unwrap_or_default();
                cfg.default = String::new();
                put_json(s, "config/issuers", &cfg).await?;
                let warnings = vec!["DELETE /root deletes all keys and issuers; prefer DELETE /key/:key_ref and \
                                     DELETE /issuer/:issuer_ref to remove one at a time."
                    .to_string()];
                Ok(Some(Response { warnings, ..Response::default() }))
            }
            Route::RootGenerate => self.generate_root(req, f, false).await.map(Some),
            Route::RootRotate => self.generate_root(req, f, true).await.map(Some),
            Route::IntermediateGenerate => {
                self.generate_intermediate(s, f, f.str("exported").unwrap_or("internal")).await.map(Some)
            }
            Route::CrossSign => self.generate_intermediate(s, f, "cross-sign").await.map(Some),
            Route::SignIntermediate => self.sign_intermediate(req, f).await.map(Some),
            Route::SetSigned => {
                let cert = f.str("certificate").unwrap_or("");
                if cert.trim().is_empty() {
                    return Err(bad("the certificate field is required"));
                }
                self.import(s, cert, false).await.map(Some)
            }
            Route::ConfigCa => {
                let bundle = f.str("pem_bundle").unwrap_or("");
                if bundle.trim().is_empty() {
                    return Err(bad("the pem_bundle field is required"));
                }
                self.import(s, bundle, true).await.map(Some)
            }
            Route::Issuers => self.list_issuers(s).await,
            Route::Issuer => match op {
                Operation::Read => Ok(Some(Response::data(issuer_data(
                    &self.issuer(s, f.str("issuer_ref").unwrap_or("default")).await?,
                )))),
                Operation::Delete => self.delete_issuer(s, f.str("issuer_ref").unwrap_or("")).await.map(Some),
                _ => self.update_issuer(s, f).await.map(Some),
            },
            Route::IssuerRaw => {
                let i = self.issuer(s, f.str("issuer_ref").unwrap_or("default")).await?;
                match f.str("fmt").unwrap_or("json") {
                    "pem" => Ok(Some(raw("application/pem-certificate-chain", i.certificate.clone().into_bytes()))),
                    "der" => Ok(Some(raw("application/pkix-cert", ca::pem_to_der(&i.certificate)?))),
                    _ => {
                        let mut d = Map::new();
                        d.insert("certificate".into(), json!(i.certificate));
                        d.insert("ca_chain".into(), json!(i.ca_chain));
                        d.insert("issuer_id".into(), json!(i.id));
                        d.insert("issuer_name".into(), json!(i.name));
                        Ok(Some(Response::data(d)))
                    }
                }
            }
            Route::IssuerCrl => {
                self.unified_gate(s, f).await?;
                let i = self.issuer(s, f.str("issuer_ref").unwrap_or("default")).await?;
                if f.str("delta").is_some_and(|d| !d.is_empty()) {
                    return self.delta_answer(s, &i, f.str("fmt")).await.map(Some);
                }
                self.crl_answer(s, &i, f.str("fmt")).await.map(Some)
            }
            Route::CrlDelta => {
                self.unified_gate(s, f).await?;
                let i = self.issuer(s, "default").await?;
                self.delta_answer(s, &i, f.str("fmt").map(|_| "pem").or(Some("der"))).await.map(Some)
            }
            Route::CrlRotateDelta => {
                let mut r = Response::data(Map::from_iter([("success".to_string(), json!(true))]));
                if !self.crl_config(s).await?.enable_delta {
                    r.warnings
                        .push("requested rebuild of delta CRL when delta CRL is not enabled; this is a no-op".into());
                    return Ok(Some(r));
                }
                let _g = self.lock.lock().await;
                for id in s.list("issuer/").await? {
                    if let Some(i) = get_json::<IssuerEntry>(s, &format!("issuer/{id}")).await? {
                        if !i.key_id.is_empty() {
                            self.rebuild_delta(s, &i.id).await?;
                        }
                    }
                }
                Ok(Some(r))
            }
            Route::ConfigIssuers => self.config_issuers(s, op, f, req.path.starts_with("root/replace")).await,
            Route::Keys => self.list_keys(s).await,
            Route::Key => self.key_route(s, op, f).await,
            Route::Roles => {
                let keys = s.list("role/").await?;
                Ok((!keys.is_empty()).then(|| Response::list(keys)))
            }
            Route::Role => {
                let name = f.str("role").unwrap_or("");
                match op {
                    Operation::Read => {
                        Ok(get_json::<Role>(s, &format!("role/{name}")).await?.map(|r| Response::data(r.to_data())))
                    }
                    Operation::Delete => s.delete(&format!("role/{name}")).await.map(|_| None),
                    _ => {
                        let existing = get_json::<Role>(s, &format!("role/{name}")).await?;
                        let role = Role::from_fields(existing, f, req.system.max_lease_ttl)?;
                        put_json(s, &format!("role/{name}"), &role).await?;
                        let mut r = Response::data(role.to_data());
                        if role.generate_lease {
                            r.warnings.push("it is encouraged to disable generate_lease and rely on PKI's native capabilities when possible; a lease per certificate weighs on the server with large numbers of certificates".into());
                        }
                        Ok(Some(r))
                    }
                }
            }
            Route::Issue | Route::Sign | Route::SignVerbatim => self.issue(req, route, f).await.map(Some),
            Route::Certs => {
                let keys: Vec<String> = s.list("certs/").await?.into_iter().map(|k| k.replace('-', ":")).collect();
                Ok((!keys.is_empty()).then(|| Response::list(keys)))
            }
            Route::Cert | Route::CertRaw => self.read_cert(s, route, f).await,
            Route::Ca => {
                let i = self.issuer(s, "default").await?;
                match f.str("fmt") {
                    Some("pem") => {
                        Ok(Some(raw("application/pem-certificate-chain", i.certificate.clone().into_bytes())))
                    }
                    _ => Ok(Some(raw("application/pkix-cert", ca::pem_to_der(&i.certificate)?))),
                }
            }
            Route::CaChain => {
                let i = self.issuer(s, "default").await?;
                Ok(Some(raw("application/pem-certificate-chain", i.ca_chain.concat().into_bytes())))
            }
            Route::Crl => {
                self.unified_gate(s, f).await?;
                let i = self.issuer(s, "default").await?;
                self.crl_answer(s, &i, f.str("fmt").map(|_| "pem").or(Some("der"))).await.map(Some)
            }
            Route::Revoke | Route::RevokeWithKey => self.revoke(s, route, f).await.map(Some),
            Route::CrlRotate => {
                let _g = self.lock.lock().await;
                for id in s.list("issuer/").await? {
                    if let Some(i) = get_json::<IssuerEntry>(s, &format!("issuer/{id}")).await? {
                        self.rebuild_crl(s, i).await?;
                    }
                }
                let mut d = Map::new();
                d.insert("success".into(), json!(true));
                Ok(Some(Response::data(d)))
            }
            Route::ConfigUrls => self.config_urls(s, op, f).await,
            Route::ConfigCrl => self.config_crl(s, op, f).await,
            // A GET names the request in the path; `ocsp` alone only takes a POST.
            Route::Ocsp if op == Operation::Read && f.str("req").unwrap_or("").is_empty() => {
                Err(LogicalError::unsupported_operation())
            }
            Route::Ocsp => self.ocsp(s, f).await.map(Some),
            Route::Tidy => self.tidy(req, f).await.map(Some),
            Route::TidyStatus => Ok(Some(self.tidy_status())),
            Route::TidyCancel => Ok(Some(self.tidy_cancel())),
            Route::ConfigAutoTidy => self.config_auto_tidy(s, op, f).await.map(Some),
            Route::ConfigAcme
            | Route::ConfigCluster
            | Route::AcmeNewEab
            | Route::AcmeEabs
            | Route::AcmeEab
            | Route::Acme => acme::handle(self, route, req, f).await,
        }
    }

    // --- issuers and keys -------------------------------------------------------------------

    /// An issuer by id, name or `default`.
    async fn issuer(&self, s: &dyn StorageView, reference: &str) -> Result<IssuerEntry> {
        let reference = if reference.is_empty() { "default" } else { reference };
        if reference == "default" {
            let cfg = get_json::<IssuersConfig>(s, "config/issuers").await?.unwrap_or_default();
            if cfg.default.is_empty() {
                return Err(bad("no default issuer currently configured"));
            }
            return get_json(s, &format!("issuer/{}", cfg.default))
                .await?
                .ok_or_else(|| bad("no default issuer currently configured"));
        }
        if let Some(i) = get_json::<IssuerEntry>(s, &format!("issuer/{reference}")).await? {
            return Ok(i);
        }
        for id in s.list("issuer/").await? {
            if let Some(i) = get_json::<IssuerEntry>(s, &format!("issuer/{id}")).await? {
                if i.name == reference {
                    return Ok(i);
                }
            }
        }
        Err(bad(format!("unable to find PKI issuer for reference: {reference}")))
    }

    async fn key(&self, s: &dyn StorageView, reference: &str) -> Result<KeyEntry> {
        if let Some(k) = get_json::<KeyEntry>(s, &format!("key/{reference}")).await? {
            return Ok(k);
        }
        if reference == "default" {
            let i = self.issuer(s, "default").await?;
            return get_json(s, &format!("key/{}", i.key_id))
                .await?
                .ok_or_else(|| bad("the default issuer has no key"));
        }
        for id in s.list("key/").await? {
            if let Some(k) = get_json::<KeyEntry>(s, &format!("key/{id}")).await? {
                if k.name == reference {
                    return Ok(k);
                }
            }
        }
        Err(bad(format!("unable to find PKI key for reference: {reference}")))
    }

    async fn check_name_free(&self, s: &dyn StorageView, prefix: &str, name: &str) -> Result<()> {
        if name.is_empty() {
            return Ok(());
        }
        if name == "default" {
            return Err(bad("reserved name: default"));
        }
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            return Err(bad(format!("invalid name {name:?}: letters, digits, '-' and '_' only")));
        }
        for id in s.list(prefix).await? {
            let v: Option<Value> = get_json(s, &format!("{prefix}{id}")).await?;
            if v.as_ref().and_then(|v| v["name"].as_str()) == Some(name) {
                return Err(bad(format!("name {name:?} is already in use")));
            }
        }
        Ok(())
    }

    /// A new key, or the existing one `key_ref` names (`existing`).
    async fn key_for_new_ca(
        &self,
        s: &dyn StorageView,
        f: &FieldData,
        mode: &str,
    ) -> Result<(KeyEntry, rcgen::KeyPair, bool)> {
        match mode {
            "kms" => Err(bad("managed keys (kms) are not supported")),
            "existing" | "cross-sign" => {
                let r = match f.str("key_ref").filter(|r| !r.is_empty()) {
                    Some(r) => r,
                    None if mode == "cross-sign" => "default",
                    None => return Err(bad("key_ref is required with existing")),
                };
                let k = self.key(s, r).await?;
                let pair = ca::load_key(&k.private_key)?;
                Ok((k, pair, false))
            }
            _ => {
                let spec = KeySpec::parse(f.str("key_type").unwrap_or("rsa"), f.int("key_bits").unwrap_or(0))?;
                let key_name = f.str("key_name").unwrap_or("").to_string();
                self.check_name_free(s, "key/", &key_name).await?;
                let pair = spec.generate()?;
                let k = KeyEntry {
                    id: uuid::Uuid::new_v4().to_string(),
                    name: key_name,
                    key_type: spec.type_name().to_string(),
                    key_bits: spec.bits(),
                    private_key: ca::key_pem(&pair).to_string(),
                };
                Ok((k, pair, true))
            }
        }
    }

    fn refuse_unsupported(f: &FieldData) -> Result<()> {
        if !strings(f, "other_sans").is_empty() {
            return Err(bad("other_sans is not supported yet"));
        }
        if !strings(f, "permitted_dns_domains").is_empty() {
            return Err(bad("permitted_dns_domains (name constraints) is not supported yet"));
        }
        if f.bool("use_pss").unwrap_or(false) {
            return Err(bad("use_pss is not supported yet"));
        }
        if !matches!(f.int("signature_bits").unwrap_or(0), 0 | 256) {
            return Err(bad("signature_bits other than 256 is not supported yet"));
        }
        for k in ["managed_key_name", "managed_key_id"] {
            if f.str(k).is_some_and(|v| !v.is_empty()) {
                return Err(bad(format!("{k}: managed keys are not supported")));
            }
        }
        if !strings(f, "user_ids").is_empty() {
            return Err(bad("user_ids is not supported yet"));
        }
        match f.str("format").unwrap_or("pem") {
            "pem" | "der" | "pem_bundle" => {}
            other => return Err(bad(format!("unknown format {other:?}: pem, der or pem_bundle"))),
        }
        match f.str("private_key_format").unwrap_or("der") {
            "" | "der" | "pem" | "pkcs8" => {}
            other => return Err(bad(format!("unknown private_key_format {other:?}"))),
        }
        Ok(())
    }

    fn subject_from(f: &FieldData) -> Result<Subject> {
        let cn = f.str("common_name").unwrap_or("").trim().to_string();
        let mut sub = Subject {
            common_name: cn.clone(),
            organization: strings(f, "organization"),
            ou: strings(f, "ou"),
            country: strings(f, "country"),
            locality: strings(f, "locality"),
            province: strings(f, "province"),
            street_address: strings(f, "street_address"),
            postal_code: strings(f, "postal_code"),
            serial_number: f.str("serial_number").unwrap_or("").to_string(),
            ..Subject::default()
        };
        let mut names = strings(f, "alt_names");
        if !cn.is_empty() && !f.bool("exclude_cn_from_sans").unwrap_or(false) && !names.contains(&cn) {
            names.insert(0, cn);
        }
        for n in names {
            if n.contains('@') {
                sub.emails.push(n);
            } else if let Ok(ip) = n.parse::<IpAddr>() {
                sub.ips.push(ip);
            } else {
                sub.dns_names.push(n);
            }
        }
        for ip in strings(f, "ip_sans") {
            let parsed = ip
                .parse::<IpAddr>()
                .map_err(|e| bad(format!("the value {ip:?} is not a valid IP address")).with_source(e))?;
            if !sub.ips.contains(&parsed) {
                sub.ips.push(parsed);
            }
        }
        sub.uris = strings(f, "uri_sans");
        sub.check()?;
        Ok(sub)
    }

    /// NotBefore and NotAfter for a certificate: `not_after` or `ttl` (else `default_ttl`),
    /// at most `max_ttl`, and never past the issuer's own expiry.
    fn validity(
        f: &FieldData,
        default_ttl: i64,
        max_ttl: i64,
        issuer_not_after: Option<i64>,
        warnings: &mut Vec<String>,
    ) -> Result<(OffsetDateTime, OffsetDateTime)> {
        let now = OffsetDateTime::now_utc();
        let backdate = f.int("not_before_duration").unwrap_or(30).max(0);
        let not_after = match f.str("not_after").filter(|s| !s.is_empty()) {
            Some(s) => OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                .map_err(|e| bad(format!("not_after {s:?} is not an RFC 3339 time")).with_source(e))?,
            None => {
                let mut ttl = f.int("ttl").filter(|t| *t > 0).unwrap_or(default_ttl);
                if max_ttl > 0 && ttl > max_ttl {
                    // As OpenBao: capped, with a warning, not refused.
                    warnings.push(format!(
                        "TTL {:?} is longer than permitted maxTTL {:?}, so maxTTL is being used",
                        go_duration(ttl),
                        go_duration(max_ttl)
                    ));
                    ttl = max_ttl;
                }
                now + time::Duration::seconds(ttl)
            }
        };
        if not_after <= now {
            return Err(bad("the requested expiry is in the past"));
        }
        if let Some(limit) = issuer_not_after {
            if not_after.unix_timestamp() > limit {
                return Err(bad(format!(
                    "cannot satisfy request, as TTL would result in notAfter of {} that is beyond the expiration of the CA certificate at {}",
                    rfc3339(not_after.unix_timestamp()),
                    rfc3339(limit)
                )));
            }
        }
        Ok((now - time::Duration::seconds(backdate), not_after))
    }

    async fn urls(&self, s: &dyn StorageView) -> Result<Urls> {
        let u = get_json::<UrlsConfig>(s, "config/urls").await?.unwrap_or_default();
        Ok(Urls {
            issuing_certificates: u.issuing_certificates,
            crl_distribution_points: u.crl_distribution_points,
            ocsp_servers: u.ocsp_servers,
        })
    }

    /// Stores a new issuer; makes it the default when there is none, or when it has a key and
    /// `config/issuers` says `default_follows_latest_issuer`.
    async fn store_issuer(
        &self,
        s: &dyn StorageView,
        name: String,
        certificate: String,
        chain: Vec<String>,
        key_id: &str,
    ) -> Result<IssuerEntry> {
        let facts = ca::cert_facts(&certificate)?;
        let entry = IssuerEntry {
            id: uuid::Uuid::new_v4().to_string(),
            name,
            ca_chain: chain,
            certificate,
            key_id: key_id.to_string(),
            serial: ca::serial_colons(&facts.serial),
            not_after: facts.not_after,
            crl_number: 0,
        };
        put_json(s, &format!("issuer/{}", entry.id), &entry).await?;
        let mut cfg = get_json::<IssuersConfig>(s, "config/issuers").await?.unwrap_or_default();
        let default_ok = !cfg.default.is_empty() && s.get(&format!("issuer/{}", cfg.default)).await?.is_some();
        if !default_ok || (cfg.default_follows_latest_issuer && !key_id.is_empty()) {
            cfg.default = entry.id.clone();
            put_json(s, "config/issuers", &cfg).await?;
        }
        if !key_id.is_empty() {
            self.rebuild_crl(s, entry.clone()).await?;
        }
        get_json(s, &format!("issuer/{}", entry.id)).await?.ok_or_else(|| LogicalError::internal("issuer vanished"))
    }

    /// `root/generate` and `root/rotate` (`rotate`: named `next` when that name is free, as
    /// OpenBao names it; the default issuer never changes, `root/replace` switches it).
    async fn generate_root(&self, req: &Request, f: &FieldData, rotate: bool) -> Result<Response> {
        let s = req.storage.as_ref();
        Self::refuse_unsupported(f)?;
        let mode = f.str("exported").unwrap_or("internal");
        let sub = Self::subject_from(f)?;
        if sub.common_name.is_empty() {
            return Err(bad("the common_name field is required for a root certificate"));
        }
        let mut issuer_name = f.str("issuer_name").unwrap_or("").to_string();
        if rotate && issuer_name.is_empty() && self.check_name_free(s, "issuer/", "next").await.is_ok() {
            issuer_name = "next".into();
        }
        self.check_name_free(s, "issuer/", &issuer_name).await?;
        let _g = self.lock.lock().await;
        let (key, pair, new_key) = self.key_for_new_ca(s, f, mode).await?;
        let max = req.system.max_lease_ttl;
        let mut warnings = Vec::new();
        let (nb, na) = Self::validity(f, max, max, None, &mut warnings)?;
        let urls = self.urls(s).await?;
        let params =
            ca::params(&sub, &Usage::Ca { max_path_length: f.int("max_path_length").unwrap_or(-1) }, nb, na, &urls)?;
        let pem = ca::self_signed(&params, &pair)?;
        if new_key {
            put_json(s, &format!("key/{}", key.id), &key).await?;
        }
        let issuer = self.store_issuer(s, issuer_name, pem.clone(), vec![pem.clone()], &key.id).await?;
        let facts = ca::cert_facts(&pem)?;
        let mut d = Map::new();
        d.insert("certificate".into(), json!(pem));
        d.insert("issuing_ca".into(), json!(pem));
        d.insert("serial_number".into(), json!(issuer.serial));
        d.insert("expiration".into(), json!(facts.not_after));
        d.insert("issuer_id".into(), json!(issuer.id));
        d.insert("issuer_name".into(), json!(issuer.name));
        d.insert("key_id".into(), json!(key.id));
        d.insert("key_name".into(), json!(key.name));
        if mode == "exported" {
            d.insert("private_key".into(), json!(key.private_key));
            d.insert("private_key_type".into(), json!(key.key_type));
        }
        let mut r = Response::data(d);
        r.warnings = warnings;
        if self.issuer_count(s).await? > 1 {
            r.warnings.push("this mount has more than one issuer now; the default issuer was not changed".into());
        }
        Ok(r)
    }

    async fn issuer_count(&self, s: &dyn StorageView) -> Result<usize> {
        Ok(s.list("issuer/").await?.len())
    }

    /// `intermediate/generate/:exported`, and `intermediate/cross-sign` (mode `existing`, with
    /// `key_ref` defaulting to the default issuer's key).
    async fn generate_intermediate(&self, s: &dyn StorageView, f: &FieldData, mode: &str) -> Result<Response> {
        Self::refuse_unsupported(f)?;
        let sub = Self::subject_from(f)?;
        if sub.common_name.is_empty() {
            return Err(bad("the common_name field is required for an intermediate CSR"));
        }
        let (key, pair, new_key) = self.key_for_new_ca(s, f, mode).await?;
        let csr = ca::csr(&sub, &pair)?;
        if new_key {
            put_json(s, &format!("key/{}", key.id), &key).await?;
        }
        let mut d = Map::new();
        d.insert("csr".into(), json!(csr));
        d.insert("key_id".into(), json!(key.id));
        d.insert("key_type".into(), json!(key.key_type));
        if mode == "exported" {
            d.insert("private_key".into(), json!(key.private_key));
            d.insert("private_key_type".into(), json!(key.key_type));
        }
        Ok(Response::data(d))
    }

    async fn sign_intermediate(&self, req: &Request, f: &FieldData) -> Result<Response> {
        let s = req.storage.as_ref();
        Self::refuse_unsupported(f)?;
        let csr_pem = f.str("csr").unwrap_or("");
        if csr_pem.trim().is_empty() {
            return Err(bad("the csr field is required"));
        }
        let csr = ca::parse_csr(csr_pem)?;
        let issuer = self.issuer(s, f.str("issuer_ref").unwrap_or("default")).await?;
        let key = self.key(s, &issuer.key_id).await?;
        let ikey = ca::load_key(&key.private_key)?;
        let mut sub = Self::subject_from(f)?;
        if f.bool("use_csr_values").unwrap_or(false) || sub.common_name.is_empty() {
            let cn = csr.params.distinguished_name.get(&rcgen::DnType::CommonName).map(dn_text).unwrap_or_default();
            if sub.common_name.is_empty() {
                sub.common_name = cn;
            }
        }
        if sub.common_name.is_empty() {
            return Err(bad("the common_name field is required (or use_csr_values with a CSR that has one)"));
        }
        let max = req.system.max_lease_ttl;
        let mut warnings = Vec::new();
        let (nb, na) = Self::validity(f, max, max, Some(issuer.not_after), &mut warnings)?;
        let urls = self.urls(s).await?;
        let params =
            ca::params(&sub, &Usage::Ca { max_path_length: f.int("max_path_length").unwrap_or(-1) }, nb, na, &urls)?;
        let pem = ca::sign(&params, &csr.public_key, &issuer.certificate, &ikey)?;
        self.store_cert(s, &pem, &issuer.id).await?;
        let facts = ca::cert_facts(&pem)?;
        let mut chain = vec![pem.clone()];
        chain.extend(issuer.ca_chain.iter().cloned());
        let mut d = Map::new();
        d.insert("certificate".into(), json!(pem));
        d.insert("issuing_ca".into(), json!(issuer.certificate));
        d.insert("ca_chain".into(), json!(chain));
        d.insert("serial_number".into(), json!(ca::serial_colons(&facts.serial)));
        d.insert("expiration".into(), json!(facts.not_after));
        let mut r = Response::data(d);
        r.warnings = warnings;
        Ok(r)
    }

    /// Imports certificates (and with `config/ca`, keys): each CA certificate becomes an
    /// issuer, bound to the stored key whose public key it carries.
    async fn import(&self, s: &dyn StorageView, bundle: &str, keys_allowed: bool) -> Result<Response> {
        let (certs, keys) = ca::split_bundle(bundle)?;
        if !keys_allowed && !keys.is_empty() {
            return Err(bad("set-signed takes certificates only; import keys through config/ca"));
        }
        if certs.is_empty() {
            return Err(bad("the bundle holds no certificate"));
        }
        let _g = self.lock.lock().await;
        let mut imported_keys = Vec::new();
        for k in &keys {
            let pair = ca::parse_key(k)?;
            let spki = ca::key_spki(&pair);
            if self.key_by_spki(s, &spki).await?.is_some() {
                continue;
            }
            let spec = ca::spec_of(&pair);
            let entry = KeyEntry {
                id: uuid::Uuid::new_v4().to_string(),
                name: String::new(),
                key_type: spec.type_name().to_string(),
                key_bits: spec.bits(),
                private_key: ca::key_pem(&pair).to_string(),
            };
            put_json(s, &format!("key/{}", entry.id), &entry).await?;
            imported_keys.push(entry.id.clone());
        }
        let facts: Vec<CertFacts> = certs.iter().map(|c| ca::cert_facts(c)).collect::<Result<_>>()?;
        let mut imported = Vec::new();
        let mut mapping = Map::new();
        let mut existing_ids = Vec::new();
        for (i, (pem, fa)) in certs.iter().zip(&facts).enumerate() {
            if !fa.is_ca {
                return Err(bad(format!(
                    "certificate {} of the bundle ({}) is not a CA certificate",
                    i + 1,
                    fa.subject
                )));
            }
            if let Some(id) = self.issuer_by_serial(s, &ca::serial_colons(&fa.serial)).await? {
                existing_ids.push(id);
                continue;
            }
            let key_id = self.key_by_spki(s, &fa.spki).await?.unwrap_or_default();
            if i == 0 && key_id.is_empty() && !keys_allowed {
                return Err(bad(
                    "the certificate does not match any key of this mount (generate the intermediate's CSR here first)",
                ));
            }
            // The chain: this certificate, then the bundle's certificates that issued it.
            let mut chain = vec![pem.clone()];
            let mut cur = fa.issuer.clone();
            let mut guard = 0;
            while guard < 8 {
                guard += 1;
                match certs.iter().zip(&facts).find(|(_, f2)| f2.subject == cur && f2.serial != fa.serial) {
                    Some((p2, f2)) if !chain.contains(p2) => {
                        chain.push(p2.clone());
                        if f2.self_signed {
                            break;
                        }
                        cur = f2.issuer.clone();
                    }
                    _ => break,
                }
            }
            // Or the chain of an issuer of this mount that signed it.
            if chain.len() == 1 && !fa.self_signed {
                for id in s.list("issuer/").await? {
                    if let Some(parent) = get_json::<IssuerEntry>(s, &format!("issuer/{id}")).await? {
                        if ca::cert_facts(&parent.certificate)?.subject == fa.issuer {
                            chain.extend(parent.ca_chain.iter().cloned());
                            break;
                        }
                    }
                }
            }
            let entry = self.store_issuer(s, String::new(), pem.clone(), chain, &key_id).await?;
            mapping.insert(entry.id.clone(), json!(key_id));
            imported.push(entry.id);
        }
        let mut d = Map::new();
        d.insert("imported_issuers".into(), if imported.is_empty() { Value::Null } else { json!(imported) });
        d.insert("imported_keys".into(), if imported_keys.is_empty() { Value::Null } else { json!(imported_keys) });
        d.insert("mapping".into(), Value::Object(mapping));
        d.insert("existing_issuers".into(), if existing_ids.is_empty() { Value::Null } else { json!(existing_ids) });
        Ok(Response::data(d))
    }

    async fn key_by_spki(&self, s: &dyn StorageView, spki: &[u8]) -> Result<Option<String>> {
        for id in s.list("key/").await? {
            if let Some(k) = get_json::<KeyEntry>(s, &format!("key/{id}")).await? {
                if ca::key_spki(&ca::load_key(&k.private_key)?) == spki {
                    return Ok(Some(k.id.clone()));
                }
            }
        }
        Ok(None)
    }

    async fn issuer_by_serial(&self, s: &dyn StorageView, serial: &str) -> Result<Option<String>> {
        for id in s.list("issuer/").await? {
            if let Some(i) = get_json::<IssuerEntry>(s, &format!("issuer/{id}")).await? {
                if i.serial == serial {
                    return Ok(Some(i.id));
                }
            }
        }
        Ok(None)
    }

    async fn list_issuers(&self, s: &dyn StorageView) -> Result<Option<Response>> {
        let ids = s.list("issuer/").await?;
        if ids.is_empty() {
            return Ok(None);
        }
        let default = get_json::<IssuersConfig>(s, "config/issuers").await?.unwrap_or_default().default;
        let mut info = Map::new();
        for id in &ids {
            if let Some(i) = get_json::<IssuerEntry>(s, &format!("issuer/{id}")).await? {
                info.insert(
                    id.clone(),
                    json!({ "issuer_name": i.name, "is_default": *id == default,
                    "serial_number": i.serial, "key_id": i.key_id }),
                );
            }
        }
        let mut d = Map::new();
        d.insert("keys".into(), json!(ids));
        d.insert("key_info".into(), Value::Object(info));
        Ok(Some(Response::data(d)))
    }

    async fn update_issuer(&self, s: &dyn StorageView, f: &FieldData) -> Result<Response> {
        let _g = self.lock.lock().await;
        let mut i = self.issuer(s, f.str("issuer_ref").unwrap_or("")).await?;
        if f.str("leaf_not_after_behavior").is_some_and(|b| !b.is_empty() && b != "err") {
            return Err(bad("leaf_not_after_behavior: only err is supported"));
        }
        if let Some(n) = f.str("issuer_name") {
            if n != i.name {
                self.check_name_free(s, "issuer/", n).await?;
                i.name = n.to_string();
                put_json(s, &format!("issuer/{}", i.id), &i).await?;
            }
        }
        Ok(Response::data(issuer_data(&i)))
    }

    /// Deletes an issuer; warns, as OpenBao does, when it was the default and about roles still
    /// naming it. An issuer that cannot be found is deleted already (an empty answer).
    async fn delete_issuer(&self, s: &dyn StorageView, reference: &str) -> Result<Response> {
        let _g = self.lock.lock().await;
        let i = match self.issuer(s, reference).await {
            Ok(i) => i,
            Err(e) if e.kind == coffer_sdk::ErrorKind::BadRequest => return Ok(Response::default()),
            Err(e) => return Err(e),
        };
        let mut warnings = Vec::new();
        let mut names = vec![i.id.clone()];
        if !i.name.is_empty() {
            names.insert(0, i.name.clone());
        }
        s.delete(&format!("issuer/{}", i.id)).await?;
        s.delete(&format!("crl/{}", i.id)).await?;
        s.delete(&format!("delta/{}", i.id)).await?;
        let mut cfg = get_json::<IssuersConfig>(s, "config/issuers").await?.unwrap_or_default();
        let was_default = cfg.default == i.id;
        if was_default {
            cfg.default = String::new();
            put_json(s, "config/issuers", &cfg).await?;
        }
        let mut roles = Vec::new();
        for name in s.list("role/").await? {
            if let Some(r) = get_json::<Role>(s, &format!("role/{name}")).await? {
                roles.push(r.issuer_ref);
            }
        }
        let count = |n: &str| roles.iter().filter(|r| r.as_str() == n).count();
        for n in &names {
            if count(n) > 0 {
                warnings.push(format!("{} roles reference {n}", count(n)));
            }
        }
        if was_default {
            warnings.push(format!(
                "Deleted issuer {} (via issuer_ref {reference}); this was configured as the default issuer. \
                 Operations without an explicit issuer will not work until a new default is configured.",
                i.id
            ));
            if count("default") > 0 {
                warnings.push(format!("{} roles reference default", count("default")));
            }
        }
        Ok(Response { warnings, ..Response::default() })
    }

    /// `config/issuers`, and `root/replace` (whose `default` is `next` unless given).
    async fn config_issuers(
        &self,
        s: &dyn StorageView,
        op: Operation,
        f: &FieldData,
        replace: bool,
    ) -> Result<Option<Response>> {
        if op != Operation::Read {
            let _g = self.lock.lock().await;
            let r = match f.str("default").unwrap_or("") {
                "" if replace => "next",
                r => r,
            };
            // As OpenBao: every write names the default, even one that only sets the flag.
            if r.is_empty() || r == "default" {
                return Err(bad("Invalid issuer specification; must be non-empty and can't be 'default'."));
            }
            let i = self.issuer(s, r).await?;
            let mut cfg = get_json::<IssuersConfig>(s, "config/issuers").await?.unwrap_or_default();
            cfg.default = i.id.clone();
            if f.is_set("default_follows_latest_issuer") {
                cfg.default_follows_latest_issuer = f.bool("default_follows_latest_issuer").unwrap_or(false);
            }
            put_json(s, "config/issuers", &cfg).await?;
        }
        let cfg = get_json::<IssuersConfig>(s, "config/issuers").await?.unwrap_or_default();
        let mut d = Map::new();
        d.insert("default".into(), json!(cfg.default));
        d.insert("default_follows_latest_issuer".into(), json!(cfg.default_follows_latest_issuer));
        Ok(Some(Response::data(d)))
    }

    async fn list_keys(&self, s: &dyn StorageView) -> Result<Option<Response>> {
        let ids = s.list("key/").await?;
        if ids.is_empty() {
            return Ok(None);
        }
        let mut info = Map::new();
        for id in &ids {
            if let Some(k) = get_json::<KeyEntry>(s, &format!("key/{id}")).await? {
                info.insert(id.clone(), json!({ "key_name": k.name }));
            }
        }
        let mut d = Map::new();
        d.insert("keys".into(), json!(ids));
        d.insert("key_info".into(), Value::Object(info));
        Ok(Some(Response::data(d)))
    }

    async fn key_route(&self, s: &dyn StorageView, op: Operation, f: &FieldData) -> Result<Option<Response>> {
        let r = f.str("key_ref").unwrap_or("");
        let mut k = self.key(s, r).await?;
        match op {
            Operation::Delete => {
                for id in s.list("issuer/").await? {
                    if let Some(i) = get_json::<IssuerEntry>(s, &format!("issuer/{id}")).await? {
                        if i.key_id == k.id {
                            return Err(bad(format!("the key is in use by issuer {}; delete the issuer first", i.id)));
                        }
                    }
                }
                s.delete(&format!("key/{}", k.id)).await?;
                Ok(None)
            }
            Operation::Read => Ok(Some(Response::data(key_data(&k)))),
            _ => {
                if let Some(n) = f.str("key_name") {
                    if n != k.name {
                        self.check_name_free(s, "key/", n).await?;
                        k.name = n.to_string();
                        put_json(s, &format!("key/{}", k.id), &k).await?;
                    }
                }
                Ok(Some(Response::data(key_data(&k))))
            }
        }
    }

    // --- issuance ---------------------------------------------------------------------------

    async fn issue(&self, req: &Request, route: Route, f: &FieldData) -> Result<Response> {
        self.issue_with(req, route, f, None).await
    }

    /// Issues or signs; `role` stands in for the stored role when given (ACME narrows it).
    async fn issue_with(&self, req: &Request, route: Route, f: &FieldData, role: Option<Role>) -> Result<Response> {
        let s = req.storage.as_ref();
        Self::refuse_unsupported(f)?;
        let role_name = f.str("role").unwrap_or("");
        let role = if let Some(r) = role {
            r
        } else if route == Route::SignVerbatim && role_name.is_empty() {
            Role::verbatim()
        } else {
            get_json::<Role>(s, &format!("role/{role_name}"))
                .await?
                .ok_or_else(|| bad(format!("unknown role: {role_name}")))?
        };
        let issuer_ref = match f.str("issuer_ref").filter(|r| !r.is_empty()) {
            Some(r) => r.to_string(),
            None => role.issuer_ref.clone(),
        };
        let issuer = self.issuer(s, &issuer_ref).await?;
        if issuer.key_id.is_empty() {
            return Err(bad("the issuer has no key in this mount, so it cannot sign"));
        }
        let ikey = ca::load_key(&self.key(s, &issuer.key_id).await?.private_key)?;

        // The subject key: a new one (issue) or the CSR's.
        let (csr, new_key) = match route {
            Route::Issue => {
                let spec = role.key_spec()?;
                (None, Some(spec.generate()?))
            }
            _ => {
                let pem = f.str("csr").unwrap_or("");
                if pem.trim().is_empty() {
                    return Err(bad("the csr field is required"));
                }
                let csr = ca::parse_csr(pem)?;
                if route == Route::Sign {
                    role.check_csr_key(&csr)?;
                }
                (Some(csr), None)
            }
        };

        let mut sub = Self::subject_from(f)?;
        if let Some(csr) = &csr {
            let verbatim = route == Route::SignVerbatim;
            if verbatim || (role.use_csr_common_name && sub.common_name.is_empty()) {
                if let Some(cn) = csr.params.distinguished_name.get(&rcgen::DnType::CommonName) {
                    sub.common_name = dn_text(cn);
                }
            }
            if verbatim || role.use_csr_sans {
                for san in &csr.params.subject_alt_names {
                    match san {
                        rcgen::SanType::DnsName(n) if !sub.dns_names.iter().any(|d| d == n.as_str()) => {
                            sub.dns_names.push(n.to_string())
                        }
                        rcgen::SanType::Rfc822Name(n) if !sub.emails.iter().any(|d| d == n.as_str()) => {
                            sub.emails.push(n.to_string())
                        }
                        rcgen::SanType::IpAddress(ip) if !sub.ips.contains(ip) => sub.ips.push(*ip),
                        rcgen::SanType::URI(u) if !sub.uris.iter().any(|d| d == u.as_str()) => {
                            sub.uris.push(u.to_string())
                        }
                        _ => {}
                    }
                }
            }
            if !sub.common_name.is_empty()
                && !f.bool("exclude_cn_from_sans").unwrap_or(false)
                && !sub.common_name.contains(' ')
            {
                let cn = sub.common_name.clone();
                if cn.contains('@') {
                    if !sub.emails.contains(&cn) {
                        sub.emails.insert(0, cn);
                    }
                } else if let Ok(ip) = cn.parse::<IpAddr>() {
                    if !sub.ips.contains(&ip) {
                        sub.ips.insert(0, ip);
                    }
                } else if !sub.dns_names.contains(&cn) {
                    sub.dns_names.insert(0, cn);
                }
            }
        }
        if route != Route::SignVerbatim {
            role.apply_subject_defaults(&mut sub);
            role.check_names(&sub)?;
        }
        if sub.common_name.is_empty() && role.require_cn && route != Route::SignVerbatim {
            return Err(bad("the common_name field is required, or must be provided in a CSR with \"use_csr_common_name\" set to true, unless \"require_cn\" is set to false"));
        }

        let max_ttl = if role.max_ttl > 0 { role.max_ttl } else { req.system.max_lease_ttl };
        let default_ttl = if role.ttl > 0 { role.ttl.min(max_ttl) } else { req.system.default_lease_ttl.min(max_ttl) };
        let mut warnings = Vec::new();
        let (nb, na) = Self::validity(f, default_ttl, max_ttl, Some(issuer.not_after), &mut warnings)?;
        let nb = match role.not_before_duration {
            Some(d) if !f.is_set("not_before_duration") => OffsetDateTime::now_utc() - time::Duration::seconds(d),
            _ => nb,
        };
        let usage = if route == Route::SignVerbatim && role_name.is_empty() {
            role::usages_from(&strings(f, "key_usage"), &strings(f, "ext_key_usage"), true)?
        } else {
            role.usage()?
        };
        let urls = self.urls(s).await?;
        let params = ca::params(&sub, &usage, nb, na, &urls)?;
        let pem = match (&new_key, &csr) {
            (Some(k), _) => ca::sign(&params, k, &issuer.certificate, &ikey)?,
            (None, Some(c)) => ca::sign(&params, &c.public_key, &issuer.certificate, &ikey)?,
            (None, None) => return Err(LogicalError::internal("no subject key")),
        };
        let facts = ca::cert_facts(&pem)?;
        if !role.no_store {
            self.store_cert(s, &pem, &issuer.id).await?;
        }
        let mut chain = issuer.ca_chain.clone();
        if f.bool("remove_roots_from_chain").unwrap_or(false) {
            chain.retain(|c| ca::cert_facts(c).map(|x| !x.self_signed).unwrap_or(true));
        }
        let format = f.str("format").unwrap_or("pem");
        let mut d = Map::new();
        let show = |p: &str| -> Result<Value> {
            Ok(if format == "der" {
                use base64::Engine as _;
                json!(base64::engine::general_purpose::STANDARD.encode(ca::pem_to_der(p)?))
            } else {
                json!(p.trim_end())
            })
        };
        let mut cert_out = show(&pem)?;
        if format == "pem_bundle" {
            let mut bundle = String::new();
            if let Some(k) = &new_key {
                bundle.push_str(&ca::key_pem(k));
            }
            bundle.push_str(&pem);
            bundle.push_str(&issuer.certificate);
            cert_out = json!(bundle.trim_end());
        }
        d.insert("certificate".into(), cert_out);
        d.insert("issuing_ca".into(), show(&issuer.certificate)?);
        d.insert("ca_chain".into(), Value::Array(chain.iter().map(|c| show(c)).collect::<Result<Vec<_>>>()?));
        d.insert("serial_number".into(), json!(ca::serial_colons(&facts.serial)));
        d.insert("expiration".into(), json!(facts.not_after));
        if let Some(k) = &new_key {
            let pem = ca::key_pem(k);
            let value = if format == "der" {
                use base64::Engine as _;
                let der = Zeroizing::new(k.serialize_der());
                json!(base64::engine::general_purpose::STANDARD.encode(&*der))
            } else {
                json!(pem.trim_end())
            };
            d.insert("private_key".into(), value);
            d.insert("private_key_type".into(), json!(ca::spec_of(k).type_name()));
        }
        let mut r = Response::data(d);
        r.warnings = warnings;
        if role.generate_lease && route != Route::SignVerbatim {
            // The lease lasts as long as the certificate; revoking it revokes the certificate.
            let ttl = (facts.not_after - now()).max(1);
            let mut internal = Map::new();
            internal.insert("serial_number".into(), json!(ca::serial_colons(&facts.serial)));
            r.secret = Some(coffer_sdk::SecretLease { ttl, max_ttl: ttl, renewable: false, internal });
        }
        Ok(r)
    }

    /// A certificate's lease was revoked (or expired): the certificate is revoked.
    async fn revoke_leased(&self, s: &dyn StorageView, internal: &Map<String, Value>) -> Result<()> {
        let Some(serial) = internal.get("serial_number").and_then(Value::as_str) else { return Ok(()) };
        let key = format!("certs/{}", ca::serial_colons(&ca::parse_serial(serial)?).replace(':', "-"));
        let _g = self.lock.lock().await;
        // A certificate that was not stored (no_store) or was tidied away: nothing to record.
        let Some(c) = get_json::<CertEntry>(s, &key).await? else { return Ok(()) };
        self.mark_revoked(s, &key, c).await.map(|_| ())
    }

    async fn store_cert(&self, s: &dyn StorageView, pem: &str, issuer_id: &str) -> Result<()> {
        let facts = ca::cert_facts(pem)?;
        let key = format!("certs/{}", ca::serial_colons(&facts.serial).replace(':', "-"));
        put_json(
            s,
            &key,
            &CertEntry {
                certificate: pem.to_string(),
                issuer_id: issuer_id.to_string(),
                not_after: facts.not_after,
                revocation_time: 0,
            },
        )
        .await
    }

    async fn read_cert(&self, s: &dyn StorageView, route: Route, f: &FieldData) -> Result<Option<Response>> {
        let serial = f.str("serial").unwrap_or("");
        let (pem, revoked, issuer_id) = match serial {
            "ca" => {
                let i = self.issuer(s, "default").await?;
                (i.certificate.clone(), 0, i.id)
            }
            "ca_chain" => {
                let i = self.issuer(s, "default").await?;
                (i.ca_chain.concat(), 0, i.id)
            }
            "crl" | "delta-crl" | "unified-crl" | "unified-delta-crl" => {
                if serial.starts_with("unified-") && !self.crl_config(s).await?.unified_crl {
                    return Err(unified_disabled());
                }
                let i = self.issuer(s, "default").await?;
                let der = if serial.ends_with("delta-crl") {
                    self.current_delta(s, &i).await?
                } else {
                    self.current_crl(s, &i).await?
                };
                let pem = ca::to_pem("X509 CRL", &der);
                if route == Route::CertRaw {
                    return Ok(Some(if f.str("fmt") == Some("pem") {
                        raw("application/pem-certificate-chain", pem.into_bytes())
                    } else {
                        raw("application/pkix-crl", der)
                    }));
                }
                let mut d = Map::new();
                d.insert("certificate".into(), json!(pem));
                return Ok(Some(Response::data(d)));
            }
            other => {
                let bytes = ca::parse_serial(other)?;
                let key = format!("certs/{}", ca::serial_colons(&bytes).replace(':', "-"));
                let Some(c) = get_json::<CertEntry>(s, &key).await? else { return Ok(None) };
                (c.certificate, c.revocation_time, c.issuer_id)
            }
        };
        if route == Route::CertRaw {
            return Ok(Some(if f.str("fmt") == Some("pem") {
                raw("application/pem-certificate-chain", pem.into_bytes())
            } else {
                raw("application/pkix-cert", ca::pem_to_der(&pem)?)
            }));
        }
        let mut d = Map::new();
        d.insert("certificate".into(), json!(pem));
        d.insert("revocation_time".into(), json!(revoked));
        d.insert("revocation_time_rfc3339".into(), json!(if revoked > 0 { rfc3339(revoked) } else { String::new() }));
        d.insert("issuer_id".into(), json!(issuer_id));
        d.insert("ca_chain".into(), Value::Null);
        Ok(Some(Response::data(d)))
    }

    // --- revocation -------------------------------------------------------------------------

    async fn revoke(&self, s: &dyn StorageView, route: Route, f: &FieldData) -> Result<Response> {
        let serial_in = f.str("serial_number").unwrap_or("");
        let cert_in = f.str("certificate").unwrap_or("");
        let serial = match (serial_in.is_empty(), cert_in.trim().is_empty()) {
            (false, true) => ca::parse_serial(serial_in)?,
            (true, false) => ca::cert_facts(cert_in)?.serial,
            (false, false) => return Err(bad("give either serial_number or certificate, not both")),
            (true, true) => return Err(bad("the serial_number or certificate field is required")),
        };
        let colons = ca::serial_colons(&serial);
        let key = format!("certs/{}", colons.replace(':', "-"));
        let _g = self.lock.lock().await;
        let Some(c) = get_json::<CertEntry>(s, &key).await? else {
            return Err(bad(format!("certificate with serial {colons} not found")));
        };
        if !cert_in.trim().is_empty() && ca::pem_to_der(cert_in)? != ca::pem_to_der(&c.certificate)? {
            return Err(bad("the certificate does not match the one issued with that serial"));
        }
        if route == Route::RevokeWithKey {
            let pem = Zeroizing::new(f.str("private_key").unwrap_or("").to_string());
            if pem.trim().is_empty() {
                return Err(bad("the private_key field is required"));
            }
            let pair = ca::parse_key(&pem)?;
            if ca::key_spki(&pair) != ca::cert_facts(&c.certificate)?.spki {
                return Err(bad("the private key does not match the certificate"));
            }
        }
        if self.issuer_by_serial(s, &colons).await?.is_some() {
            return Err(bad("an issuer's own certificate cannot be revoked here; delete the issuer"));
        }
        self.mark_revoked(s, &key, c).await
    }

    /// Records the revocation of a stored certificate (under the engine's lock) and rebuilds its
    /// issuer's CRL; an expired certificate is left as it is (`state: expired`).
    async fn mark_revoked(&self, s: &dyn StorageView, key: &str, mut c: CertEntry) -> Result<Response> {
        let mut d = Map::new();
        if c.revocation_time == 0 {
            if c.not_after < now() {
                d.insert("state".into(), json!("expired"));
                return Ok(Response::data(d));
            }
            c.revocation_time = now();
            put_json(s, key, &c).await?;
            if let Some(i) = get_json::<IssuerEntry>(s, &format!("issuer/{}", c.issuer_id)).await? {
                let cfg = self.crl_config(s).await?;
                if !cfg.auto_rebuild {
                    self.rebuild_crl(s, i).await?;
                } else if cfg.enable_delta {
                    // The complete CRL waits for its rebuild; the delta carries the revocation now.
                    self.rebuild_delta(s, &i.id).await?;
                }
            }
        }
        d.insert("revocation_time".into(), json!(c.revocation_time));
        d.insert("revocation_time_rfc3339".into(), json!(rfc3339(c.revocation_time)));
        d.insert("state".into(), json!("revoked"));
        Ok(Response::data(d))
    }

    /// Rebuilds an issuer's complete CRL, and its delta CRL when delta CRLs are enabled.
    async fn rebuild_crl(&self, s: &dyn StorageView, issuer: IssuerEntry) -> Result<Vec<u8>> {
        let id = issuer.id.clone();
        let der = self.rebuild_full(s, issuer).await?;
        if self.crl_config(s).await?.enable_delta {
            self.rebuild_delta(s, &id).await?;
        }
        Ok(der)
    }

    /// Rebuilds an issuer's complete CRL from the revoked certificates it issued (next CRL number).
    async fn rebuild_full(&self, s: &dyn StorageView, mut issuer: IssuerEntry) -> Result<Vec<u8>> {
        if issuer.key_id.is_empty() {
            return Err(bad("the issuer has no key in this mount, so it cannot sign a CRL"));
        }
        let key = ca::load_key(&self.key(s, &issuer.key_id).await?.private_key)?;
        let mut revoked = Vec::new();
        let mut serials = Vec::new();
        for k in s.list("certs/").await? {
            if let Some(c) = get_json::<CertEntry>(s, &format!("certs/{k}")).await? {
                if c.revocation_time > 0 && c.issuer_id == issuer.id {
                    serials.push(k.clone());
                    revoked.push(ca::Revoked {
                        serial: ca::parse_serial(&k)?,
                        time: OffsetDateTime::from_unix_timestamp(c.revocation_time)
                            .unwrap_or(OffsetDateTime::UNIX_EPOCH),
                    });
                }
            }
        }
        let cfg = self.crl_config(s).await?;
        issuer.crl_number += 1;
        let t = now();
        let der = ca::crl(&issuer.certificate, &key, issuer.crl_number, &revoked, cfg.expiry)?;
        use base64::Engine as _;
        put_json(
            s,
            &format!("crl/{}", issuer.id),
            &CrlEntry {
                der_b64: base64::engine::general_purpose::STANDARD.encode(&der),
                number: issuer.crl_number,
                this_update: t,
                next_update: t + cfg.expiry.max(60),
                serials,
            },
        )
        .await?;
        put_json(s, &format!("issuer/{}", issuer.id), &issuer).await?;
        Ok(der)
    }

    /// Rebuilds an issuer's delta CRL: the revocations since its complete CRL was built, under
    /// the next CRL number, pointing at the complete CRL's number (callers hold the lock). A CRL
    /// stored before serials were kept counts as listing none (the delta may repeat entries).
    async fn rebuild_delta(&self, s: &dyn StorageView, issuer_id: &str) -> Result<Vec<u8>> {
        let Some(mut issuer) = get_json::<IssuerEntry>(s, &format!("issuer/{issuer_id}")).await? else {
            return Err(bad(format!("unable to find PKI issuer for reference: {issuer_id}")));
        };
        let base = match get_json::<CrlEntry>(s, &format!("crl/{issuer_id}")).await? {
            Some(b) if b.number > 0 => b,
            // No numbered complete CRL yet: build one first.
            _ => {
                self.rebuild_full(s, issuer.clone()).await?;
                issuer = get_json::<IssuerEntry>(s, &format!("issuer/{issuer_id}"))
                    .await?
                    .ok_or_else(|| LogicalError::internal("issuer vanished"))?;
                get_json::<CrlEntry>(s, &format!("crl/{issuer_id}"))
                    .await?
                    .ok_or_else(|| LogicalError::internal("CRL vanished"))?
            }
        };
        if issuer.key_id.is_empty() {
            return Err(bad("the issuer has no key in this mount, so it cannot sign a CRL"));
        }
        let key = ca::load_key(&self.key(s, &issuer.key_id).await?.private_key)?;
        let mut revoked = Vec::new();
        for k in s.list("certs/").await? {
            if let Some(c) = get_json::<CertEntry>(s, &format!("certs/{k}")).await? {
                if c.revocation_time > 0 && c.issuer_id == issuer.id && !base.serials.contains(&k) {
                    revoked.push(ca::Revoked {
                        serial: ca::parse_serial(&k)?,
                        time: OffsetDateTime::from_unix_timestamp(c.revocation_time)
                            .unwrap_or(OffsetDateTime::UNIX_EPOCH),
                    });
                }
            }
        }
        let cfg = self.crl_config(s).await?;
        issuer.crl_number += 1;
        let t = now();
        let der = ca::delta_crl(&issuer.certificate, &key, issuer.crl_number, base.number, &revoked, cfg.expiry)?;
        use base64::Engine as _;
        put_json(
            s,
            &format!("delta/{}", issuer.id),
            &CrlEntry {
                der_b64: base64::engine::general_purpose::STANDARD.encode(&der),
                number: issuer.crl_number,
                this_update: t,
                next_update: t + cfg.expiry.max(60),
                serials: Vec::new(),
            },
        )
        .await?;
        put_json(s, &format!("issuer/{}", issuer.id), &issuer).await?;
        Ok(der)
    }

    /// The issuer's delta CRL: the stored one, built now when there is none yet (OpenBao
    /// serves one even with delta CRLs disabled: then it lists nothing).
    async fn current_delta(&self, s: &dyn StorageView, issuer: &IssuerEntry) -> Result<Vec<u8>> {
        use base64::Engine as _;
        self.current_crl(s, issuer).await?;
        if let Some(c) = get_json::<CrlEntry>(s, &format!("delta/{}", issuer.id)).await? {
            if let Ok(der) = base64::engine::general_purpose::STANDARD.decode(&c.der_b64) {
                return Ok(der);
            }
        }
        let _g = self.lock.lock().await;
        self.rebuild_delta(s, &issuer.id).await
    }

    async fn delta_answer(&self, s: &dyn StorageView, issuer: &IssuerEntry, fmt: Option<&str>) -> Result<Response> {
        let der = self.current_delta(s, issuer).await?;
        Ok(match fmt {
            Some("pem") => raw("application/x-pem-file", ca::to_pem("X509 CRL", &der).into_bytes()),
            Some("der") => raw("application/pkix-crl", der),
            _ => {
                let mut d = Map::new();
                d.insert("crl".into(), json!(ca::to_pem("X509 CRL", &der)));
                Response::data(d)
            }
        })
    }

    /// The issuer's complete CRL; with `auto_rebuild`, rebuilt first once it is within the grace
    /// period of its nextUpdate (checked when a CRL is asked for).
    async fn current_crl(&self, s: &dyn StorageView, issuer: &IssuerEntry) -> Result<Vec<u8>> {
        use base64::Engine as _;
        let cfg = self.crl_config(s).await?;
        if let Some(c) = get_json::<CrlEntry>(s, &format!("crl/{}", issuer.id)).await? {
            let stale = cfg.auto_rebuild && c.next_update > 0 && now() >= c.next_update - cfg.auto_rebuild_grace_period;
            if let (false, Ok(der)) = (stale, base64::engine::general_purpose::STANDARD.decode(&c.der_b64)) {
                return Ok(der);
            }
        }
        let _g = self.lock.lock().await;
        self.rebuild_crl(s, issuer.clone()).await
    }

    async fn crl_answer(&self, s: &dyn StorageView, issuer: &IssuerEntry, fmt: Option<&str>) -> Result<Response> {
        let der = self.current_crl(s, issuer).await?;
        Ok(match fmt {
            Some("pem") => raw("application/x-pem-file", ca::to_pem("X509 CRL", &der).into_bytes()),
            Some("der") => raw("application/pkix-crl", der),
            _ => {
                let mut d = Map::new();
                d.insert("crl".into(), json!(ca::to_pem("X509 CRL", &der)));
                Response::data(d)
            }
        })
    }

    async fn crl_config(&self, s: &dyn StorageView) -> Result<CrlConfig> {
        Ok(get_json::<CrlConfig>(s, "config/crl").await?.unwrap_or_default())
    }

    /// A unified CRL path (`unified-` in it) answers only with `config/crl unified_crl=true`.
    async fn unified_gate(&self, s: &dyn StorageView, f: &FieldData) -> Result<()> {
        if f.str("unified").is_some_and(|u| !u.is_empty()) && !self.crl_config(s).await?.unified_crl {
            return Err(unified_disabled());
        }
        Ok(())
    }

    async fn config_crl(&self, s: &dyn StorageView, op: Operation, f: &FieldData) -> Result<Option<Response>> {
        if op != Operation::Read {
            let _g = self.lock.lock().await;
            let mut c = self.crl_config(s).await?;
            if f.bool("disable").unwrap_or(false) {
                return Err(bad("disable=true is not supported: Coffer always builds CRLs"));
            }
            if f.is_set("expiry") {
                let expiry = f.int("expiry").unwrap_or(DEFAULT_CRL_EXPIRY);
                if expiry <= 0 {
                    return Err(bad("expiry must be positive"));
                }
                c.expiry = expiry;
            }
            if f.is_set("ocsp_disable") {
                c.ocsp_disable = f.bool("ocsp_disable").unwrap_or(false);
            }
            if f.is_set("auto_rebuild") {
                c.auto_rebuild = f.bool("auto_rebuild").unwrap_or(false);
            }
            if f.is_set("enable_delta") {
                c.enable_delta = f.bool("enable_delta").unwrap_or(false);
            }
            for (k, slot) in [
                ("auto_rebuild_grace_period", &mut c.auto_rebuild_grace_period),
                ("delta_rebuild_interval", &mut c.delta_rebuild_interval),
            ] {
                if f.is_set(k) {
                    let v = f.int(k).unwrap_or(0);
                    if v <= 0 {
                        return Err(bad(format!("{k} must be positive")));
                    }
                    *slot = v;
                }
            }
            if c.auto_rebuild && c.auto_rebuild_grace_period >= c.expiry {
                return Err(bad("CRL auto-rebuilding grace period must be strictly shorter than CRL expiry"));
            }
            if c.enable_delta && !c.auto_rebuild {
                return Err(bad("Delta CRLs cannot be enabled when auto rebuilding is disabled as the complete CRL is always regenerated!"));
            }
            if f.is_set("ocsp_expiry") {
                let e = f.int("ocsp_expiry").unwrap_or(DEFAULT_OCSP_EXPIRY);
                if e < 0 {
                    return Err(bad("ocsp_expiry must be 0 or positive"));
                }
                c.ocsp_expiry = e;
            }
            if f.bool("cross_cluster_revocation").unwrap_or(false) {
                return Err(bad("cross_cluster_revocation=true is not supported: Coffer runs as one cluster, so \
                     every certificate of this mount is revoked here and there is no other cluster to queue for"));
            }
            if f.is_set("unified_crl") {
                c.unified_crl = f.bool("unified_crl").unwrap_or(false);
            }
            if f.is_set("unified_crl_on_existing_paths") {
                c.unified_crl_on_existing_paths = f.bool("unified_crl_on_existing_paths").unwrap_or(false);
            }
            if c.unified_crl_on_existing_paths && !c.unified_crl {
                return Err(bad("unified_crl_on_existing_paths cannot be enabled if unified_crl is disabled"));
            }
            put_json(s, "config/crl", &c).await?;
        }
        let c = self.crl_config(s).await?;
        let mut d = Map::new();
        d.insert("expiry".into(), json!(go_duration_short(c.expiry)));
        d.insert("disable".into(), json!(c.disable));
        d.insert("auto_rebuild".into(), json!(c.auto_rebuild));
        d.insert("auto_rebuild_grace_period".into(), json!(go_duration_short(c.auto_rebuild_grace_period)));
        d.insert("enable_delta".into(), json!(c.enable_delta));
        d.insert("delta_rebuild_interval".into(), json!(go_duration_short(c.delta_rebuild_interval)));
        d.insert("allow_expired_cert_revocation".into(), json!(false));
        d.insert("ocsp_disable".into(), json!(c.ocsp_disable));
        d.insert("ocsp_expiry".into(), json!(go_duration_short(c.ocsp_expiry)));
        d.insert("unified_crl".into(), json!(c.unified_crl));
        d.insert("unified_crl_on_existing_paths".into(), json!(c.unified_crl_on_existing_paths));
        d.insert("cross_cluster_revocation".into(), json!(false));
        Ok(Some(Response::data(d)))
    }

    /// The OCSP responder: the request from the path (GET, base64) or the body (POST); the
    /// answer is always DER (`application/ocsp-response`), an error status included.
    async fn ocsp(&self, s: &dyn StorageView, f: &FieldData) -> Result<Response> {
        use base64::Engine as _;
        let answer = |status: u16, body: Vec<u8>| {
            let mut r = raw("application/ocsp-response", body);
            if let Some(d) = r.data.as_mut() {
                d.insert("http_status_code".into(), json!(status));
            }
            r
        };
        let malformed = || answer(400, ocsp::error_response(ocsp::ErrorStatus::Malformed));
        let unauthorized = || answer(401, ocsp::error_response(ocsp::ErrorStatus::Unauthorized));
        let encoded = f.str("req").filter(|r| !r.is_empty()).or_else(|| f.str("http_raw_body")).unwrap_or("");
        let b64 = [
            &base64::engine::general_purpose::STANDARD,
            &base64::engine::general_purpose::STANDARD_NO_PAD,
            &base64::engine::general_purpose::URL_SAFE,
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        ];
        let Some(der) = b64.iter().find_map(|e| e.decode(encoded.trim()).ok()) else { return Ok(malformed()) };
        let Some(id) = ocsp::parse_request(&der) else { return Ok(malformed()) };
        let cfg = self.crl_config(s).await?;
        // `unified-ocsp` answers as `ocsp` (one cluster's revocations are all of them), once
        // unified_crl allows it.
        if cfg.ocsp_disable || (f.str("unified").is_some_and(|u| !u.is_empty()) && !cfg.unified_crl) {
            return Ok(unauthorized());
        }
        // The issuer the request names, if it is one of this mount's and can sign; otherwise
        // the answer is "unknown", signed by the default issuer.
        let mut signer = None;
        for iid in s.list("issuer/").await? {
            if let Some(i) = get_json::<IssuerEntry>(s, &format!("issuer/{iid}")).await? {
                if !i.key_id.is_empty() && id.names_issuer(&i.certificate) {
                    signer = Some(i);
                    break;
                }
            }
        }
        let status = match &signer {
            None => ocsp::CertStatus::Unknown,
            Some(i) => {
                let key = format!("certs/{}", ca::serial_colons(&id.serial).replace(':', "-"));
                match get_json::<CertEntry>(s, &key).await? {
                    Some(c) if c.revocation_time > 0 && c.issuer_id == i.id => {
                        ocsp::CertStatus::Revoked(c.revocation_time)
                    }
                    // As OpenBao: a serial the mount has no revocation for is good.
                    _ => ocsp::CertStatus::Good,
                }
            }
        };
        let signer = match signer {
            Some(i) => i,
            None => match self.issuer(s, "default").await {
                Ok(i) if !i.key_id.is_empty() => i,
                _ => return Ok(unauthorized()),
            },
        };
        let key = ca::load_key(&self.key(s, &signer.key_id).await?.private_key)?;
        let t = now();
        let next = (cfg.ocsp_expiry > 0).then(|| t + cfg.ocsp_expiry);
        Ok(answer(200, ocsp::response(&signer.certificate, &key, &id, status, t, next)?))
    }

    async fn config_urls(&self, s: &dyn StorageView, op: Operation, f: &FieldData) -> Result<Option<Response>> {
        if op != Operation::Read {
            if f.bool("enable_templating").unwrap_or(false) {
                return Err(bad("enable_templating is not supported yet"));
            }
            let mut u = get_json::<UrlsConfig>(s, "config/urls").await?.unwrap_or_default();
            for (k, slot) in [
                ("issuing_certificates", &mut u.issuing_certificates),
                ("crl_distribution_points", &mut u.crl_distribution_points),
                ("ocsp_servers", &mut u.ocsp_servers),
            ] {
                if f.is_set(k) {
                    let v = strings(f, k);
                    for url in &v {
                        if !(url.starts_with("http://") || url.starts_with("https://") || url.starts_with("ldap://")) {
                            return Err(bad(format!("invalid URL in {k}: {url:?}")));
                        }
                    }
                    *slot = v;
                }
            }
            put_json(s, "config/urls", &u).await?;
        }
        let u = get_json::<UrlsConfig>(s, "config/urls").await?.unwrap_or_default();
        let mut d = Map::new();
        d.insert("issuing_certificates".into(), json!(u.issuing_certificates));
        d.insert("crl_distribution_points".into(), json!(u.crl_distribution_points));
        d.insert("ocsp_servers".into(), json!(u.ocsp_servers));
        d.insert("enable_templating".into(), json!(false));
        Ok(Some(Response::data(d)))
    }
}

fn unified_disabled() -> LogicalError {
    bad("unified CRLs are not enabled on this mount (config/crl unified_crl=false)")
}

/// Seconds as OpenBao shows the CRL settings' durations (`72h`, `15m`, `30s`; `0` as given).
fn go_duration_short(secs: i64) -> String {
    if secs == 0 {
        "0".to_string()
    } else if secs % 3600 == 0 {
        format!("{}h", secs / 3600)
    } else if secs % 60 == 0 {
        format!("{}m", secs / 60)
    } else {
        format!("{secs}s")
    }
}

/// Seconds as Go prints a duration (`100h0m0s`), for OpenBao's wording.
fn go_duration(secs: i64) -> String {
    format!("{}h{}m{}s", secs / 3600, secs % 3600 / 60, secs % 60)
}

fn dn_text(v: &rcgen::DnValue) -> String {
    match v {
        rcgen::DnValue::PrintableString(s) => s.as_str().to_string(),
        rcgen::DnValue::Utf8String(s) => s.clone(),
        rcgen::DnValue::Ia5String(s) => s.as_str().to_string(),
        rcgen::DnValue::TeletexString(s) => s.as_str().to_string(),
        _ => String::new(),
    }
}

fn issuer_data(i: &IssuerEntry) -> Map<String, Value> {
    let mut d = Map::new();
    d.insert("issuer_id".into(), json!(i.id));
    d.insert("issuer_name".into(), json!(i.name));
    d.insert("key_id".into(), json!(i.key_id));
    d.insert("certificate".into(), json!(i.certificate));
    d.insert("ca_chain".into(), json!(i.ca_chain));
    d.insert("serial_number".into(), json!(i.serial));
    d.insert("leaf_not_after_behavior".into(), json!("err"));
    d.insert("usage".into(), json!("crl-signing,issuing-certificates,ocsp-signing,read-only"));
    d.insert("revoked".into(), json!(false));
    d
}

fn key_data(k: &KeyEntry) -> Map<String, Value> {
    let mut d = Map::new();
    d.insert("key_id".into(), json!(k.id));
    d.insert("key_name".into(), json!(k.name));
    d.insert("key_type".into(), json!(k.key_type));
    d
}
