//! Where the keys that verify a JWT come from (configured PEM keys, a JWKS URL, an OIDC
//! discovery document), fetching over HTTPS with an optional CA, and the signature check.
//! All cryptography is jsonwebtoken's (on aws-lc-rs); nothing here computes a signature.

use coffer_sdk::{ErrorKind, LogicalError, Result};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a fetched JWKS or discovery document is trusted before it is fetched again (a
/// token whose `kid` is unknown triggers an earlier refresh, at most every [`MIN_REFRESH`]).
const KEYS_TTL: Duration = Duration::from_secs(3600);
const MIN_REFRESH: Duration = Duration::from_secs(5);

/// The asymmetric algorithms Coffer verifies. HS* (shared secrets) and `none` are never taken.
pub const SUPPORTED_ALGS: &[&str] = &["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"];

pub fn parse_alg(s: &str) -> Option<Algorithm> {
    Some(match s {
        "RS256" => Algorithm::RS256,
        "RS384" => Algorithm::RS384,
        "RS512" => Algorithm::RS512,
        "PS256" => Algorithm::PS256,
        "PS384" => Algorithm::PS384,
        "PS512" => Algorithm::PS512,
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        "EdDSA" => Algorithm::EdDSA,
        _ => return None,
    })
}

/// An HTTP client for the identity provider: TLS trusting `ca_pem` when given (else the
/// bundled web roots), 10 s timeouts, statuses returned rather than raised.
pub fn agent(ca_pem: &str, field: &str) -> Result<ureq::Agent> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let mut tls = ureq::tls::TlsConfig::builder();
    if !ca_pem.trim().is_empty() {
        let certs: Vec<_> = ureq::tls::parse_pem(ca_pem.as_bytes())
            .filter_map(|i| match i {
                Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                _ => None,
            })
            .collect();
        if certs.is_empty() {
            return Err(LogicalError::bad_request(format!("{field}: no PEM certificate found")));
        }
        tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&certs));
    }
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .tls_config(tls.build())
        .timeout_global(Some(Duration::from_secs(10)))
        .timeout_connect(Some(Duration::from_secs(5)))
        .build();
    Ok(ureq::Agent::new_with_config(config))
}

/// GETs a JSON document (blocking: call from `spawn_blocking`).
pub fn get_json(agent: &ureq::Agent, url: &str, what: &str) -> Result<Value> {
    let unavailable = |m: String| LogicalError::new(ErrorKind::BadRequest, m);
    let mut resp = agent
        .get(url)
        .header("Accept", "application/json")
        .call()
        .map_err(|e| unavailable(format!("error fetching {what} from {url}: {e}")).with_source(e))?;
    let status = resp.status().as_u16();
    if status != 200 {
        return Err(unavailable(format!("error fetching {what} from {url}: the server answered HTTP {status}")));
    }
    resp.body_mut()
        .with_config()
        .limit(1 << 20)
        .read_json::<Value>()
        .map_err(|e| unavailable(format!("error fetching {what} from {url}: not a JSON document: {e}")))
}

/// Runs blocking network I/O off the async workers.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|cause| LogicalError::internal("identity provider request task failed").with_source(cause))?
}

/// The OIDC discovery document's parts Coffer uses.
#[derive(Clone, Debug)]
pub struct Discovery {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
}

pub fn fetch_discovery(agent: &ureq::Agent, base: &str) -> Result<Discovery> {
    let url = format!("{}/.well-known/openid-configuration", base.trim_end_matches('/'));
    let doc = get_json(agent, &url, "the OIDC discovery document")?;
    let s = |k: &str| doc.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    let d = Discovery {
        issuer: s("issuer"),
        authorization_endpoint: s("authorization_endpoint"),
        token_endpoint: s("token_endpoint"),
        jwks_uri: s("jwks_uri"),
    };
    if d.issuer.is_empty() || d.jwks_uri.is_empty() {
        return Err(LogicalError::bad_request(format!(
            "the OIDC discovery document at {url} has no issuer or jwks_uri"
        )));
    }
    // As OIDC Discovery 1.0 §4.3 requires: the document's issuer is the URL it was found under.
    if d.issuer.trim_end_matches('/') != base.trim_end_matches('/') {
        return Err(LogicalError::bad_request(format!(
            "the OIDC discovery document's issuer {:?} does not match oidc_discovery_url {base:?}",
            d.issuer
        )));
    }
    Ok(d)
}

pub fn fetch_jwks(agent: &ureq::Agent, url: &str) -> Result<JwkSet> {
    let doc = get_json(agent, url, "the JWKS")?;
    serde_json::from_value(doc).map_err(|e| LogicalError::bad_request(format!("the JWKS at {url} is malformed: {e}")))
}

/// A fetched key set, kept per mount.
#[derive(Clone)]
pub struct CachedKeys {
    /// What it was fetched for (the JWKS URL), so a changed config fetches anew.
    pub source: String,
    pub fetched: Instant,
    pub set: Arc<JwkSet>,
}

impl CachedKeys {
    pub fn fresh(&self, source: &str) -> bool {
        self.source == source && self.fetched.elapsed() < KEYS_TTL
    }
    pub fn may_refresh(&self) -> bool {
        self.fetched.elapsed() >= MIN_REFRESH
    }
}

/// Verifies `jwt`'s signature with `key` under `alg` and returns its claims. Times, audience
/// and issuer are checked by the caller (with the role's leeways).
fn verify_with(jwt: &str, key: &DecodingKey, alg: Algorithm) -> Option<Map<String, Value>> {
    let mut v = Validation::new(alg);
    v.validate_exp = false;
    v.validate_nbf = false;
    v.validate_aud = false;
    v.required_spec_claims.clear();
    jsonwebtoken::decode::<Map<String, Value>>(jwt, key, &v).ok().map(|d| d.claims)
}

/// Decoding keys built from PEM text for `alg`'s family (PKIX/PKCS#1 public keys, or
/// certificates' keys are not accepted: give the public key).
pub fn pem_key_for(pem: &str, alg: Algorithm) -> Option<DecodingKey> {
    let b = pem.as_bytes();
    match alg {
        Algorithm::RS256
        | Algorithm::RS384
        | Algorithm::RS512
        | Algorithm::PS256
        | Algorithm::PS384
        | Algorithm::PS512 => DecodingKey::from_rsa_pem(b).ok(),
        Algorithm::ES256 | Algorithm::ES384 => DecodingKey::from_ec_pem(b).ok(),
        Algorithm::EdDSA => DecodingKey::from_ed_pem(b).ok(),
        _ => None,
    }
}

/// Checks that every configured PEM is a public key of a supported type.
pub fn check_pem(pem: &str) -> bool {
    [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA].into_iter().any(|a| pem_key_for(pem, a).is_some())
}

/// The configured PEM keys, decoded once per configuration for each key family (a login
/// then only verifies).
pub struct PemKeys {
    pub pems: Vec<String>,
    rsa: Vec<DecodingKey>,
    ec: Vec<DecodingKey>,
    ed: Vec<DecodingKey>,
}

impl PemKeys {
    pub fn new(pems: &[String]) -> Self {
        let all = |alg| pems.iter().filter_map(|p| pem_key_for(p, alg)).collect();
        PemKeys {
            pems: pems.to_vec(),
            rsa: all(Algorithm::RS256),
            ec: all(Algorithm::ES256),
            ed: all(Algorithm::EdDSA),
        }
    }

    pub fn verify(&self, jwt: &str, alg: Algorithm) -> Option<Map<String, Value>> {
        let keys = match alg {
            Algorithm::ES256 | Algorithm::ES384 => &self.ec,
            Algorithm::EdDSA => &self.ed,
            _ => &self.rsa,
        };
        keys.iter().find_map(|k| verify_with(jwt, k, alg))
    }
}

/// The JWK answer: `Err(true)` when no key has the token's `kid` (a refresh may help).
pub fn verify_with_jwks(
    jwt: &str,
    set: &JwkSet,
    kid: Option<&str>,
    alg: Algorithm,
) -> std::result::Result<Map<String, Value>, bool> {
    let candidates: Vec<_> = match kid {
        Some(k) => set.keys.iter().filter(|j| j.common.key_id.as_deref() == Some(k)).collect(),
        None => set.keys.iter().collect(),
    };
    if candidates.is_empty() {
        return Err(true);
    }
    for jwk in candidates {
        if let Ok(key) = DecodingKey::from_jwk(jwk) {
            if let Some(c) = verify_with(jwt, &key, alg) {
                return Ok(c);
            }
        }
    }
    Err(false)
}
