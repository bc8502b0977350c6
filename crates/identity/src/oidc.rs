//! Identity tokens and the OIDC provider: named signing keys (generation, rotation, JWKs),
//! signed JWTs, the claim templates of roles and scopes, and the persisted configuration
//! objects (keys, roles, scopes, assignments, clients, providers). The request handlers that
//! use them live in the core (`identity_oidc`).
//!
//! Private keys are PKCS#8 documents held in [`Zeroizing`] buffers; they are persisted through
//! the barrier only, and no type holding one implements `Debug`.

use crate::{IdentityError, Result};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use coffer_barrier::{Barrier, SecureStorage};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use zeroize::Zeroizing;

/// Where the OIDC objects live in the barrier.
pub const OIDC_PREFIX: &str = "identity/oidc/";

/// The signing algorithms a named key may use.
pub const ALGORITHMS: &[&str] = &["RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "EdDSA"];

/// Claims a template may not set.
pub const RESERVED_CLAIMS: &[&str] =
    &["iat", "aud", "exp", "iss", "sub", "namespace", "nonce", "auth_time", "at_hash", "c_hash"];

/// What key handling can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    #[error("unknown signing algorithm {0:?}")]
    UnknownAlgorithm(String),
    #[error("key generation failed")]
    Generate(#[source] aws_lc_rs::error::Unspecified),
    #[error("stored signing key is invalid")]
    Invalid(#[source] aws_lc_rs::error::KeyRejected),
    #[error("signing failed")]
    Sign(#[source] aws_lc_rs::error::Unspecified),
}

impl From<KeyError> for coffer_sdk::LogicalError {
    fn from(e: KeyError) -> Self {
        match e {
            KeyError::UnknownAlgorithm(_) => coffer_sdk::LogicalError::bad_request(e.to_string()),
            other => coffer_sdk::LogicalError::internal(other.to_string()).with_source(other),
        }
    }
}

/// One key pair of a named key: its id, algorithm, public key (for verification and the JWK)
/// and private key (PKCS#8).
#[derive(Clone, Serialize, Deserialize)]
pub struct KeyVersion {
    pub kid: String,
    pub alg: String,
    /// Public key bytes, base64: RSAPublicKey DER, an uncompressed EC point, or the Ed25519 key.
    pub public: String,
    /// PKCS#8, base64; empty for a retired version (only verification is left).
    #[serde(default, skip_serializing_if = "secret_empty", with = "secret_str")]
    pub private: Zeroizing<String>,
    /// When a retired version leaves the key set (unix seconds); 0 while in use.
    #[serde(default)]
    pub expires_at: i64,
}

fn secret_empty(s: &Zeroizing<String>) -> bool {
    s.is_empty()
}

/// Serde for secrets kept in [`Zeroizing`] strings.
mod secret_str {
    use serde::{Deserialize, Deserializer, Serializer};
    use zeroize::Zeroizing;

    pub fn serialize<S: Serializer>(v: &Zeroizing<String>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Zeroizing<String>, D::Error> {
        String::deserialize(d).map(Zeroizing::new)
    }
}

/// A named key (`identity/oidc/key/:name`).
#[derive(Clone, Serialize, Deserialize)]
pub struct NamedKey {
    pub name: String,
    pub algorithm: String,
    pub rotation_period: i64,
    pub verification_ttl: i64,
    pub allowed_client_ids: Vec<String>,
    /// When the next rotation is due (unix seconds).
    pub next_rotation: i64,
    /// The version that signs.
    pub current: KeyVersion,
    /// The version that will sign after the next rotation, published ahead of time.
    pub next: KeyVersion,
    /// Versions rotated out, published until their `expires_at`.
    #[serde(default)]
    pub retired: Vec<KeyVersion>,
}

impl NamedKey {
    pub fn new(
        name: &str,
        algorithm: &str,
        rotation_period: i64,
        verification_ttl: i64,
        now: i64,
    ) -> Result<Self, KeyError> {
        Ok(NamedKey {
            name: name.to_string(),
            algorithm: algorithm.to_string(),
            rotation_period,
            verification_ttl,
            allowed_client_ids: vec![],
            next_rotation: now + rotation_period,
            current: generate(algorithm)?,
            next: generate(algorithm)?,
            retired: vec![],
        })
    }

    /// Rotates: the current version is retired (published for `verification_ttl` more
    /// seconds), the published next version signs, a new next version is made.
    pub fn rotate(&mut self, verification_ttl: i64, now: i64) -> Result<(), KeyError> {
        let fresh = generate(&self.algorithm)?;
        let next = std::mem::replace(&mut self.next, fresh);
        let mut old = std::mem::replace(&mut self.current, next);
        old.private = Zeroizing::new(String::new());
        old.expires_at = now + verification_ttl;
        self.retired.push(old);
        self.next_rotation = now + self.rotation_period;
        self.prune(now);
        Ok(())
    }

    /// A new algorithm: both the signing and the next version are replaced (the old ones
    /// stay published for `verification_ttl`).
    pub fn change_algorithm(&mut self, algorithm: &str, now: i64) -> Result<(), KeyError> {
        self.algorithm = algorithm.to_string();
        let cur = std::mem::replace(&mut self.current, generate(algorithm)?);
        let nxt = std::mem::replace(&mut self.next, generate(algorithm)?);
        for mut v in [cur, nxt] {
            v.private = Zeroizing::new(String::new());
            v.expires_at = now + self.verification_ttl;
            self.retired.push(v);
        }
        Ok(())
    }

    /// Drops retired versions whose verification time is over. True when one was dropped.
    pub fn prune(&mut self, now: i64) -> bool {
        let before = self.retired.len();
        self.retired.retain(|v| v.expires_at > now);
        before != self.retired.len()
    }

    /// Every published version.
    pub fn versions(&self) -> impl Iterator<Item = &KeyVersion> {
        [&self.current, &self.next].into_iter().chain(self.retired.iter())
    }

    pub fn allows_client(&self, client_id: &str) -> bool {
        self.allowed_client_ids.iter().any(|c| c == "*" || c == client_id)
    }
}

fn rng_err(e: aws_lc_rs::error::Unspecified) -> KeyError {
    KeyError::Generate(e)
}

/// A fresh key pair for `alg`.
pub fn generate(alg: &str) -> Result<KeyVersion, KeyError> {
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::signature::{self as sig, KeyPair};
    let (public, private): (Vec<u8>, Zeroizing<Vec<u8>>) = match alg {
        "RS256" | "RS384" | "RS512" => {
            let kp = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).map_err(rng_err)?;
            let der = kp.as_der().map_err(rng_err)?;
            (kp.public_key().as_ref().to_vec(), Zeroizing::new(der.as_ref().to_vec()))
        }
        "ES256" | "ES384" | "ES512" => {
            let a = ec_signing(alg).ok_or_else(|| KeyError::UnknownAlgorithm(alg.into()))?;
            let kp = sig::EcdsaKeyPair::generate(a).map_err(rng_err)?;
            let doc = kp.to_pkcs8v1().map_err(rng_err)?;
            (kp.public_key().as_ref().to_vec(), Zeroizing::new(doc.as_ref().to_vec()))
        }
        "EdDSA" => {
            let kp = sig::Ed25519KeyPair::generate().map_err(rng_err)?;
            let doc = kp.to_pkcs8().map_err(rng_err)?;
            (kp.public_key().as_ref().to_vec(), Zeroizing::new(doc.as_ref().to_vec()))
        }
        other => return Err(KeyError::UnknownAlgorithm(other.into())),
    };
    Ok(KeyVersion {
        kid: uuid::Uuid::new_v4().to_string(),
        alg: alg.to_string(),
        public: STANDARD.encode(public),
        private: Zeroizing::new(STANDARD.encode(&*private)),
        expires_at: 0,
    })
}

fn ec_signing(alg: &str) -> Option<&'static aws_lc_rs::signature::EcdsaSigningAlgorithm> {
    use aws_lc_rs::signature as s;
    Some(match alg {
        "ES256" => &s::ECDSA_P256_SHA256_FIXED_SIGNING,
        "ES384" => &s::ECDSA_P384_SHA384_FIXED_SIGNING,
        "ES512" => &s::ECDSA_P521_SHA512_FIXED_SIGNING,
        _ => return None,
    })
}

fn decode_b64(s: &str) -> Option<Zeroizing<Vec<u8>>> {
    // drop-cause: the input may be key material.
    STANDARD.decode(s).ok().map(Zeroizing::new)
}

/// Signs `msg` with the version's private key.
pub fn sign(v: &KeyVersion, msg: &[u8]) -> Result<Vec<u8>, KeyError> {
    use aws_lc_rs::signature as s;
    let der = decode_b64(&v.private).ok_or(KeyError::Sign(aws_lc_rs::error::Unspecified))?;
    let rng = aws_lc_rs::rand::SystemRandom::new();
    match v.alg.as_str() {
        "RS256" | "RS384" | "RS512" => {
            let kp = aws_lc_rs::rsa::KeyPair::from_pkcs8(&der).map_err(KeyError::Invalid)?;
            let pad: &'static dyn s::RsaEncoding = match v.alg.as_str() {
                "RS256" => &s::RSA_PKCS1_SHA256,
                "RS384" => &s::RSA_PKCS1_SHA384,
                _ => &s::RSA_PKCS1_SHA512,
            };
            let mut out = vec![0u8; kp.public_modulus_len()];
            kp.sign(pad, &rng, msg, &mut out).map_err(KeyError::Sign)?;
            Ok(out)
        }
        "ES256" | "ES384" | "ES512" => {
            let a = ec_signing(&v.alg).ok_or_else(|| KeyError::UnknownAlgorithm(v.alg.clone()))?;
            let kp = s::EcdsaKeyPair::from_pkcs8(a, &der).map_err(KeyError::Invalid)?;
            Ok(kp.sign(&rng, msg).map_err(KeyError::Sign)?.as_ref().to_vec())
        }
        "EdDSA" => {
            let kp = s::Ed25519KeyPair::from_pkcs8(&der).map_err(KeyError::Invalid)?;
            Ok(kp.sign(msg).as_ref().to_vec())
        }
        other => Err(KeyError::UnknownAlgorithm(other.into())),
    }
}

/// Whether `sig` is the version's signature of `msg`.
pub fn verify(v: &KeyVersion, msg: &[u8], sig: &[u8]) -> bool {
    use aws_lc_rs::signature as s;
    let Some(public) = decode_b64(&v.public) else { return false };
    let alg: &'static dyn s::VerificationAlgorithm = match v.alg.as_str() {
        "RS256" => &s::RSA_PKCS1_2048_8192_SHA256,
        "RS384" => &s::RSA_PKCS1_2048_8192_SHA384,
        "RS512" => &s::RSA_PKCS1_2048_8192_SHA512,
        "ES256" => &s::ECDSA_P256_SHA256_FIXED,
        "ES384" => &s::ECDSA_P384_SHA384_FIXED,
        "ES512" => &s::ECDSA_P521_SHA512_FIXED,
        "EdDSA" => &s::ED25519,
        _ => return false,
    };
    s::UnparsedPublicKey::new(alg, &public[..]).verify(msg, sig).is_ok()
}

/// The version's public JWK.
pub fn jwk(v: &KeyVersion) -> Value {
    let b = |x: &[u8]| URL_SAFE_NO_PAD.encode(x);
    let Some(public) = decode_b64(&v.public) else { return Value::Null };
    let mut k = json!({ "use": "sig", "kid": v.kid, "alg": v.alg });
    match v.alg.as_str() {
        "RS256" | "RS384" | "RS512" => {
            let Some((n, e)) = rsa_parts(&public) else { return Value::Null };
            k["kty"] = "RSA".into();
            k["n"] = b(&n).into();
            k["e"] = b(&e).into();
        }
        "ES256" | "ES384" | "ES512" => {
            let (crv, len) = match v.alg.as_str() {
                "ES256" => ("P-256", 32),
                "ES384" => ("P-384", 48),
                _ => ("P-521", 66),
            };
            if public.len() != 1 + 2 * len {
                return Value::Null;
            }
            k["kty"] = "EC".into();
            k["crv"] = crv.into();
            k["x"] = b(&public[1..1 + len]).into();
            k["y"] = b(&public[1 + len..]).into();
        }
        _ => {
            k["kty"] = "OKP".into();
            k["crv"] = "Ed25519".into();
            k["x"] = b(&public).into();
        }
    }
    k
}

/// (n, e) of a DER RSAPublicKey, leading zeros removed.
fn rsa_parts(der: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    fn tlv(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
        let tag = *b.first()?;
        let l0 = *b.get(1)? as usize;
        let (len, hdr) = if l0 < 0x80 {
            (l0, 2)
        } else {
            let n = l0 & 0x7f;
            let mut len = 0usize;
            for i in 0..n {
                len = (len << 8) | *b.get(2 + i)? as usize;
            }
            (len, 2 + n)
        };
        let body = b.get(hdr..hdr + len)?;
        Some((tag, body, b.get(hdr + len..)?))
    }
    let (t, seq, _) = tlv(der)?;
    if t != 0x30 {
        return None;
    }
    let (t1, n, rest) = tlv(seq)?;
    let (t2, e, _) = tlv(rest)?;
    if t1 != 2 || t2 != 2 {
        return None;
    }
    let strip = |x: &[u8]| {
        let i = x.iter().position(|&c| c != 0).unwrap_or(x.len().saturating_sub(1));
        x[i..].to_vec()
    };
    Some((strip(n), strip(e)))
}

/// A compact JWS of `claims` signed by the key's current version.
pub fn sign_jwt(v: &KeyVersion, claims: &Map<String, Value>) -> Result<String, KeyError> {
    let header = json!({ "alg": v.alg, "kid": v.kid });
    let h = URL_SAFE_NO_PAD.encode(header.to_string());
    let p = URL_SAFE_NO_PAD.encode(Value::Object(claims.clone()).to_string());
    let input = format!("{h}.{p}");
    let s = sign(v, input.as_bytes())?;
    Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(s)))
}

/// Why a JWT is not valid (the `error` of an inactive introspection).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum JwtError {
    #[error("error parsing token: compact JWS format must have three parts")]
    Parts,
    #[error("error parsing token: {0} is not valid base64url")]
    Base64(&'static str),
    #[error("error parsing token: the {0} is not a JSON object")]
    Json(&'static str),
    #[error("unable to validate the token signature")]
    Signature,
    #[error("error validating claims: token is expired (exp)")]
    Expired,
    #[error("error validating claims: token used before issued (iat)")]
    NotYetValid,
    #[error("error validating claims: invalid audience claim (aud)")]
    Audience,
}

/// Parses and checks a compact JWS against `keys` (any published version): signature, `exp`,
/// `iat`, and the audience when `client_id` is given. Returns the claims.
pub fn verify_jwt<'a>(
    token: &str,
    keys: impl Iterator<Item = &'a KeyVersion>,
    client_id: Option<&str>,
    now: i64,
) -> Result<Map<String, Value>, JwtError> {
    let parts: Vec<&str> = token.trim().split('.').collect();
    if parts.len() != 3 {
        return Err(JwtError::Parts);
    }
    // drop-cause: the decoders' errors may quote the token; a client sees the variant.
    let dec = |s: &str, what| URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).map_err(|_| JwtError::Base64(what));
    let json = |b: &[u8], what| -> Result<Map<String, Value>, JwtError> {
        // drop-cause: serde's message may quote the token's content.
        serde_json::from_slice(b).map_err(|_| JwtError::Json(what))
    };
    let header = json(&dec(parts[0], "header")?, "header")?;
    let claims = json(&dec(parts[1], "payload")?, "payload")?;
    let sig = dec(parts[2], "signature")?;
    let kid = header.get("kid").and_then(Value::as_str);
    let alg = header.get("alg").and_then(Value::as_str);
    let input = format!("{}.{}", parts[0], parts[1]);
    let ok = keys
        .filter(|k| kid.is_none_or(|kid| kid == k.kid) && alg == Some(k.alg.as_str()))
        .any(|k| verify(k, input.as_bytes(), &sig));
    if !ok {
        return Err(JwtError::Signature);
    }
    const LEEWAY: i64 = 60;
    if claims.get("exp").and_then(Value::as_i64).is_some_and(|e| e + LEEWAY < now) {
        return Err(JwtError::Expired);
    }
    if claims.get("iat").and_then(Value::as_i64).is_some_and(|i| i > now + LEEWAY) {
        return Err(JwtError::NotYetValid);
    }
    if let Some(cid) = client_id {
        let aud_ok = match claims.get("aud") {
            Some(Value::String(a)) => a == cid,
            Some(Value::Array(a)) => a.iter().any(|x| x.as_str() == Some(cid)),
            _ => false,
        };
        if !aud_ok {
            return Err(JwtError::Audience);
        }
    }
    Ok(claims)
}

/// `at_hash`/`c_hash`: the left half of the hash of `value` (the hash the algorithm uses).
pub fn half_hash(alg: &str, value: &str) -> String {
    use aws_lc_rs::digest;
    let d = match alg {
        "RS384" | "ES384" => digest::digest(&digest::SHA384, value.as_bytes()),
        "RS512" | "ES512" | "EdDSA" => digest::digest(&digest::SHA512, value.as_bytes()),
        _ => digest::digest(&digest::SHA256, value.as_bytes()),
    };
    let b = d.as_ref();
    URL_SAFE_NO_PAD.encode(&b[..b.len() / 2])
}

/// A role (`identity/oidc/role/:name`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Role {
    pub name: String,
    pub key: String,
    pub template: String,
    pub ttl: i64,
    pub client_id: String,
}

/// A scope (`identity/oidc/scope/:name`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Scope {
    pub name: String,
    pub template: String,
    pub description: String,
}

/// An assignment (`identity/oidc/assignment/:name`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Assignment {
    pub name: String,
    pub entity_ids: Vec<String>,
    pub group_ids: Vec<String>,
}

/// A client of the provider (`identity/oidc/client/:name`).
#[derive(Clone, Serialize, Deserialize)]
pub struct Client {
    pub name: String,
    pub client_id: String,
    /// Empty for a public client.
    #[serde(default, with = "secret_str")]
    pub client_secret: Zeroizing<String>,
    pub client_type: String,
    pub redirect_uris: Vec<String>,
    pub assignments: Vec<String>,
    pub key: String,
    pub id_token_ttl: i64,
    pub access_token_ttl: i64,
}

/// A provider (`identity/oidc/provider/:name`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Provider {
    pub name: String,
    /// The configured issuer (scheme, host, port) or empty for the default.
    pub issuer: String,
    pub allowed_client_ids: Vec<String>,
    pub scopes_supported: Vec<String>,
}

/// An authorization code waiting for its exchange (kept in memory, minutes at most).
#[derive(Clone)]
pub struct AuthCode {
    pub provider: String,
    pub client_id: String,
    pub entity_id: String,
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    pub nonce: String,
    pub code_challenge: String,
    pub code_challenge_method: String,
    pub auth_time: i64,
    pub expires_at: i64,
}

/// An access token of the provider (kept in memory, by SHA-256 of the token).
#[derive(Clone)]
pub struct AccessToken {
    pub provider: String,
    pub client_id: String,
    pub entity_id: String,
    pub scopes: Vec<String>,
    pub expires_at: i64,
}

/// The OIDC objects, persisted under [`OIDC_PREFIX`].
#[derive(Default)]
pub struct OidcState {
    /// `identity/oidc/config`'s issuer ("" = the server's API address).
    pub issuer: String,
    pub keys: BTreeMap<String, NamedKey>,
    pub roles: BTreeMap<String, Role>,
    pub scopes: BTreeMap<String, Scope>,
    pub assignments: BTreeMap<String, Assignment>,
    pub clients: BTreeMap<String, Client>,
    pub providers: BTreeMap<String, Provider>,
    pub codes: HashMap<String, AuthCode>,
    pub access_tokens: HashMap<String, AccessToken>,
    /// Whether the defaults (`default` key, `allow_all` assignment, `default` provider) exist.
    pub defaults_made: bool,
}

/// The kinds of persisted objects, with their storage folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Key,
    Role,
    Scope,
    Assignment,
    Client,
    Provider,
}

impl Kind {
    pub fn folder(self) -> &'static str {
        match self {
            Kind::Key => "key",
            Kind::Role => "role",
            Kind::Scope => "scope",
            Kind::Assignment => "assignment",
            Kind::Client => "client",
            Kind::Provider => "provider",
        }
    }
}

/// The OIDC state and its persistence.
pub struct OidcStore {
    barrier: Arc<Barrier>,
    pub state: tokio::sync::Mutex<OidcState>,
}

impl OidcStore {
    pub async fn load(barrier: Arc<Barrier>) -> Result<Self> {
        let mut st = OidcState::default();
        let bad = IdentityError::Unreadable;
        if let Some(raw) = barrier.get(&format!("{OIDC_PREFIX}config")).await? {
            let v: Value = serde_json::from_slice(&raw).map_err(bad)?;
            st.issuer = v.get("issuer").and_then(Value::as_str).unwrap_or_default().to_string();
        }
        for kind in [Kind::Key, Kind::Role, Kind::Scope, Kind::Assignment, Kind::Client, Kind::Provider] {
            let prefix = format!("{OIDC_PREFIX}{}/", kind.folder());
            for k in barrier.list(&prefix).await? {
                let Some(raw) = barrier.get(&format!("{prefix}{k}")).await? else { continue };
                let raw = Zeroizing::new(raw);
                match kind {
                    Kind::Key => {
                        let v: NamedKey = serde_json::from_slice(&raw).map_err(bad)?;
                        st.keys.insert(v.name.clone(), v);
                    }
                    Kind::Role => {
                        let v: Role = serde_json::from_slice(&raw).map_err(bad)?;
                        st.roles.insert(v.name.clone(), v);
                    }
                    Kind::Scope => {
                        let v: Scope = serde_json::from_slice(&raw).map_err(bad)?;
                        st.scopes.insert(v.name.clone(), v);
                    }
                    Kind::Assignment => {
                        let v: Assignment = serde_json::from_slice(&raw).map_err(bad)?;
                        st.assignments.insert(v.name.clone(), v);
                    }
                    Kind::Client => {
                        let v: Client = serde_json::from_slice(&raw).map_err(bad)?;
                        st.clients.insert(v.name.clone(), v);
                    }
                    Kind::Provider => {
                        let v: Provider = serde_json::from_slice(&raw).map_err(bad)?;
                        st.providers.insert(v.name.clone(), v);
                    }
                }
            }
        }
        Ok(OidcStore { barrier, state: tokio::sync::Mutex::new(st) })
    }

    /// Persists one object.
    pub async fn put<T: Serialize>(&self, kind: Kind, name: &str, v: &T) -> Result<()> {
        let raw = Zeroizing::new(serde_json::to_vec(v)?);
        Ok(self.barrier.put(&format!("{OIDC_PREFIX}{}/{name}", kind.folder()), &raw).await?)
    }

    /// Deletes one object.
    pub async fn del(&self, kind: Kind, name: &str) -> Result<()> {
        Ok(self.barrier.delete(&format!("{OIDC_PREFIX}{}/{name}", kind.folder())).await?)
    }

    /// Persists the issuer.
    pub async fn put_config(&self, issuer: &str) -> Result<()> {
        let raw = serde_json::to_vec(&json!({ "issuer": issuer }))?;
        Ok(self.barrier.put(&format!("{OIDC_PREFIX}config"), &raw).await?)
    }
}

/// What a claim template may refer to: the entity, its aliases and groups.
pub use coffer_acl::IdentityFacts;

/// Why a template was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum TemplateError {
    #[error("error parsing template: no value could be found for one of the template directives")]
    Unknown,
    #[error("error parsing template: unbalanced template braces")]
    Braces,
    #[error("error parsing template JSON: {0}")]
    Json(String),
    #[error("template must be a JSON object")]
    NotObject,
    #[error("top level key {0:?} not allowed. Restricted keys: iat, aud, exp, iss, sub, namespace, nonce, auth_time, at_hash, c_hash")]
    Reserved(String),
}

/// The template as given: JSON text, or base64 of it.
pub fn decode_template(t: &str) -> String {
    let t = t.trim();
    if t.is_empty() || t.starts_with('{') {
        return t.to_string();
    }
    match STANDARD.decode(t).ok().and_then(|b| String::from_utf8(b).ok()) {
        Some(s) => s,
        None => t.to_string(),
    }
}

/// The JSON value of one parameter for `facts` (`None`: not a parameter we know).
fn param_value(p: &str, f: &IdentityFacts, now: i64) -> Option<Value> {
    let str_map =
        |m: &BTreeMap<String, String>| Value::Object(m.iter().map(|(k, v)| (k.clone(), v.clone().into())).collect());
    if let Some(rest) = p.strip_prefix("time.now") {
        if rest.is_empty() {
            return Some(now.into());
        }
        let (sign, d) = if let Some(d) = rest.strip_prefix(".plus.") {
            (1, d)
        } else if let Some(d) = rest.strip_prefix(".minus.") {
            (-1, d)
        } else {
            return None;
        };
        let secs = coffer_sdk::field::parse_duration_str(d)?;
        return Some((now + sign * secs).into());
    }
    let e = p.strip_prefix("identity.entity.")?;
    Some(match e {
        "id" => f.entity_id.clone().into(),
        "name" => f.entity_name.clone().into(),
        "metadata" => str_map(&f.entity_metadata),
        "groups.ids" => groups(f, |g| g.id.clone()),
        "groups.names" => groups(f, |g| g.name.clone()),
        _ => {
            if let Some(k) = e.strip_prefix("metadata.") {
                return Some(f.entity_metadata.get(k).cloned().unwrap_or_default().into());
            }
            let a = e.strip_prefix("aliases.")?;
            let (acc, field) = a.split_once('.')?;
            let alias = f.aliases.iter().find(|x| x.mount_accessor == acc);
            let empty = BTreeMap::new();
            match field {
                "id" => alias.map(|x| x.id.clone()).unwrap_or_default().into(),
                "name" => alias.map(|x| x.name.clone()).unwrap_or_default().into(),
                "metadata" => str_map(alias.map_or(&empty, |x| &x.metadata)),
                "custom_metadata" => str_map(alias.map_or(&empty, |x| &x.custom_metadata)),
                _ => {
                    if let Some(k) = field.strip_prefix("metadata.") {
                        alias.and_then(|x| x.metadata.get(k).cloned()).unwrap_or_default().into()
                    } else if let Some(k) = field.strip_prefix("custom_metadata.") {
                        alias.and_then(|x| x.custom_metadata.get(k).cloned()).unwrap_or_default().into()
                    } else {
                        return None;
                    }
                }
            }
        }
    })
}

fn groups(f: &IdentityFacts, pick: impl Fn(&coffer_acl::GroupFacts) -> String) -> Value {
    if f.groups.is_empty() {
        return Value::Null;
    }
    let mut v: Vec<String> = f.groups.iter().map(pick).collect();
    v.sort();
    v.into()
}

/// Renders a (decoded) template into claims. Empty template: no claims.
pub fn render_template(template: &str, f: &IdentityFacts, now: i64) -> Result<Map<String, Value>, TemplateError> {
    if template.trim().is_empty() {
        return Ok(Map::new());
    }
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let j = after.find("}}").ok_or(TemplateError::Braces)?;
        let p = after[..j].trim();
        let v = param_value(p, f, now).ok_or(TemplateError::Unknown)?;
        out.push_str(&v.to_string());
        rest = &after[j + 2..];
    }
    out.push_str(rest);
    let v: Value = serde_json::from_str(&out).map_err(|e| TemplateError::Json(e.to_string()))?;
    let Value::Object(m) = v else { return Err(TemplateError::NotObject) };
    if let Some(k) = m.keys().find(|k| RESERVED_CLAIMS.contains(&k.as_str())) {
        return Err(TemplateError::Reserved(k.clone()));
    }
    Ok(m)
}

/// Checks a template when it is written: known parameters, valid JSON, no reserved claim.
pub fn validate_template(template: &str) -> Result<(), TemplateError> {
    render_template(template, &IdentityFacts::default(), 0).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_algorithm_signs_and_verifies_and_makes_a_jwk() {
        for alg in ALGORITHMS {
            let v = generate(alg).unwrap();
            let s = sign(&v, b"msg").unwrap();
            assert!(verify(&v, b"msg", &s), "{alg}");
            assert!(!verify(&v, b"other", &s), "{alg}");
            let k = jwk(&v);
            assert_eq!(k["alg"], *alg);
            assert!(k.get("kty").is_some(), "{alg}: {k}");
        }
    }

    #[test]
    fn a_jwt_verifies_until_it_expires_and_checks_the_audience() {
        let v = generate("ES256").unwrap();
        let claims = json!({"aud": "c1", "exp": 1000, "iat": 900}).as_object().unwrap().clone();
        let t = sign_jwt(&v, &claims).unwrap();
        assert!(verify_jwt(&t, [&v].into_iter(), Some("c1"), 950).is_ok());
        assert_eq!(verify_jwt(&t, [&v].into_iter(), Some("c2"), 950), Err(JwtError::Audience));
        assert_eq!(verify_jwt(&t, [&v].into_iter(), None, 2000), Err(JwtError::Expired));
        assert_eq!(verify_jwt("a.b", [&v].into_iter(), None, 950), Err(JwtError::Parts));
        let other = generate("ES256").unwrap();
        assert_eq!(verify_jwt(&t, [&other].into_iter(), None, 950), Err(JwtError::Signature));
    }

    #[test]
    fn templates_render_json_values_and_refuse_unknown_parameters_and_reserved_claims() {
        let f = IdentityFacts { entity_id: "e1".into(), entity_name: "alice".into(), ..Default::default() };
        let m = render_template(r#"{"n": {{identity.entity.name}}, "g": {{identity.entity.groups.names}}}"#, &f, 5)
            .unwrap();
        assert_eq!(Value::Object(m), json!({"n": "alice", "g": null}));
        assert_eq!(validate_template(r#"{"a": {{identity.entity.bogus}}}"#), Err(TemplateError::Unknown));
        assert!(matches!(validate_template(r#"{"iss": 1}"#), Err(TemplateError::Reserved(_))));
        assert!(matches!(validate_template("not json"), Err(TemplateError::Json(_))));
        assert_eq!(decode_template("eyJhIjoxfQ=="), r#"{"a":1}"#);
    }
}
