//! JSON Web Signatures as ACME sends them (RFC 8555 section 6.2, RFC 7515 flattened JSON):
//! the protected header, the signature check against a JWK (ES256/ES384/ES512 on the NIST
//! curves, RS256, EdDSA on Ed25519) with aws-lc-rs, JWK thumbprints (RFC 7638) and the HMAC
//! of an external account binding (HS256).

use aws_lc_rs::signature::{self, UnparsedPublicKey};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{Map, Value};

/// Why a JWS was refused, as the ACME error type it answers with.
#[derive(Debug)]
pub struct JwsError {
    pub kind: &'static str,
    pub detail: String,
}

fn malformed(detail: impl Into<String>) -> JwsError {
    JwsError { kind: "malformed", detail: detail.into() }
}

pub fn b64d(s: &str, what: &str) -> Result<Vec<u8>, JwsError> {
    URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).map_err(|e| malformed(format!("{what} is not base64url: {e}")))
}

pub fn b64e(b: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(b)
}

/// A decoded flattened JWS; the signature is not checked yet.
pub struct Jws {
    pub header: Map<String, Value>,
    /// The payload bytes (empty for a POST-as-GET).
    pub payload: Vec<u8>,
    /// `protected.payload`, the signed input.
    signing_input: Vec<u8>,
    signature: Vec<u8>,
}

impl Jws {
    pub fn parse(protected: &str, payload: &str, signature: &str) -> Result<Jws, JwsError> {
        if protected.is_empty() || signature.is_empty() {
            return Err(malformed("the request is not a JWS: protected and signature are required"));
        }
        let header: Map<String, Value> = serde_json::from_slice(&b64d(protected, "protected")?)
            .map_err(|e| malformed(format!("the protected header is not a JSON object: {e}")))?;
        let payload_bytes = if payload.is_empty() { Vec::new() } else { b64d(payload, "payload")? };
        Ok(Jws {
            header,
            payload: payload_bytes,
            signing_input: format!("{protected}.{payload}").into_bytes(),
            signature: b64d(signature, "signature")?,
        })
    }

    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header.get(name).and_then(Value::as_str)
    }

    /// The payload as a JSON object; a POST-as-GET (empty payload) is an empty object.
    pub fn payload_json(&self) -> Result<Map<String, Value>, JwsError> {
        if self.payload.is_empty() {
            return Ok(Map::new());
        }
        serde_json::from_slice(&self.payload).map_err(|e| malformed(format!("the payload is not a JSON object: {e}")))
    }

    /// Checks the signature with `jwk` under the header's `alg`.
    pub fn verify(&self, jwk: &Map<String, Value>) -> Result<(), JwsError> {
        let alg = self.header_str("alg").unwrap_or("");
        verify_with(alg, jwk, &self.signing_input, &self.signature)
    }

    /// Checks an HS256 signature (an external account binding) with `key`.
    pub fn verify_hmac(&self, key: &[u8]) -> Result<(), JwsError> {
        if self.header_str("alg") != Some("HS256") {
            return Err(malformed("the external account binding must be signed with HS256"));
        }
        let k = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key);
        // drop-cause: aws-lc answers a failed check with Unspecified, which says nothing more.
        aws_lc_rs::hmac::verify(&k, &self.signing_input, &self.signature).map_err(|_| JwsError {
            kind: "unauthorized",
            detail: "the external account binding's MAC does not verify".into(),
        })
    }
}

fn field<'a>(jwk: &'a Map<String, Value>, name: &str) -> Result<&'a str, JwsError> {
    jwk.get(name).and_then(Value::as_str).ok_or_else(|| malformed(format!("the jwk has no {name}")))
}

fn verify_with(alg: &str, jwk: &Map<String, Value>, msg: &[u8], sig: &[u8]) -> Result<(), JwsError> {
    let kty = field(jwk, "kty")?;
    let bad_sig = || JwsError { kind: "malformed", detail: "the JWS signature does not verify".into() };
    match (alg, kty) {
        ("ES256" | "ES384" | "ES512", "EC") => {
            let (crv, algo, len): (&str, &'static signature::EcdsaVerificationAlgorithm, usize) = match alg {
                "ES256" => ("P-256", &signature::ECDSA_P256_SHA256_FIXED, 32),
                "ES384" => ("P-384", &signature::ECDSA_P384_SHA384_FIXED, 48),
                _ => ("P-521", &signature::ECDSA_P521_SHA512_FIXED, 66),
            };
            if field(jwk, "crv")? != crv {
                return Err(JwsError { kind: "badSignatureAlgorithm", detail: format!("{alg} needs a {crv} key") });
            }
            let x = b64d(field(jwk, "x")?, "the jwk's x")?;
            let y = b64d(field(jwk, "y")?, "the jwk's y")?;
            if x.len() != len || y.len() != len {
                return Err(JwsError {
                    kind: "badPublicKey",
                    detail: "the jwk's coordinates have the wrong size".into(),
                });
            }
            let mut point = vec![4u8];
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            // drop-cause: aws-lc answers a failed check with Unspecified, which says nothing more.
            UnparsedPublicKey::new(algo, point).verify(msg, sig).map_err(|_| bad_sig())
        }
        ("RS256", "RSA") => {
            let n = b64d(field(jwk, "n")?, "the jwk's n")?;
            let e = b64d(field(jwk, "e")?, "the jwk's e")?;
            let bits = n.iter().skip_while(|b| **b == 0).count() * 8;
            if bits < 2048 {
                return Err(JwsError {
                    kind: "badPublicKey",
                    detail: "RSA account keys must have 2048 bits or more".into(),
                });
            }
            signature::RsaPublicKeyComponents { n: &n, e: &e }
                .verify(&signature::RSA_PKCS1_2048_8192_SHA256, msg, sig)
                // drop-cause: aws-lc answers a failed check with Unspecified, which says nothing more.
                .map_err(|_| bad_sig())
        }
        ("EdDSA", "OKP") => {
            if field(jwk, "crv")? != "Ed25519" {
                return Err(JwsError { kind: "badSignatureAlgorithm", detail: "EdDSA keys must be Ed25519".into() });
            }
            let x = b64d(field(jwk, "x")?, "the jwk's x")?;
            // drop-cause: aws-lc answers a failed check with Unspecified, which says nothing more.
            UnparsedPublicKey::new(&signature::ED25519, x).verify(msg, sig).map_err(|_| bad_sig())
        }
        ("ES256" | "ES384" | "ES512" | "RS256" | "EdDSA", _) => {
            Err(JwsError { kind: "badPublicKey", detail: format!("a {kty} key cannot sign with {alg}") })
        }
        _ => Err(JwsError {
            kind: "badSignatureAlgorithm",
            detail: format!("unsupported JWS algorithm {alg:?}: use ES256, ES384, ES512, RS256 or EdDSA"),
        }),
    }
}

/// The JWK's public members in RFC 7638's canonical order; refuses a JWK with private parts.
pub fn canonical_jwk(jwk: &Map<String, Value>) -> Result<String, JwsError> {
    if jwk.contains_key("d") || jwk.contains_key("p") {
        return Err(JwsError { kind: "badPublicKey", detail: "the jwk carries a private key".into() });
    }
    let members: &[&str] = match field(jwk, "kty")? {
        "EC" => &["crv", "kty", "x", "y"],
        "RSA" => &["e", "kty", "n"],
        "OKP" => &["crv", "kty", "x"],
        other => return Err(JwsError { kind: "badPublicKey", detail: format!("unsupported key type {other:?}") }),
    };
    let mut out = Map::new();
    for m in members {
        out.insert((*m).to_string(), Value::String(field(jwk, m)?.to_string()));
    }
    // serde_json's map keeps keys sorted, which is the canonical order.
    Ok(Value::Object(out).to_string())
}

/// The JWK thumbprint (SHA-256, base64url), the key authorization's second half.
pub fn thumbprint(jwk: &Map<String, Value>) -> Result<String, JwsError> {
    let c = canonical_jwk(jwk)?;
    Ok(b64e(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, c.as_bytes()).as_ref()))
}

/// Whether `jwk` is the key of a certificate's SubjectPublicKeyInfo (DER), compared by the
/// key's raw parts: a revocation signed with the certificate's own key.
pub fn jwk_matches_spki(jwk: &Map<String, Value>, spki_der: &[u8]) -> bool {
    use x509_parser::prelude::FromDer as _;
    let Ok((_, spki)) = x509_parser::x509::SubjectPublicKeyInfo::from_der(spki_der) else { return false };
    let key = spki.subject_public_key.data.as_ref();
    match jwk.get("kty").and_then(Value::as_str) {
        Some("EC") => {
            let (Ok(x), Ok(y)) = (
                b64d(jwk.get("x").and_then(Value::as_str).unwrap_or(""), "x"),
                b64d(jwk.get("y").and_then(Value::as_str).unwrap_or(""), "y"),
            ) else {
                return false;
            };
            key.len() == 1 + x.len() + y.len()
                && key[0] == 4
                && key[1..=x.len()] == x[..]
                && key[1 + x.len()..] == y[..]
        }
        Some("OKP") => b64d(jwk.get("x").and_then(Value::as_str).unwrap_or(""), "x").is_ok_and(|x| x == key),
        Some("RSA") => {
            let Ok(n) = b64d(jwk.get("n").and_then(Value::as_str).unwrap_or(""), "n") else { return false };
            let n = n.iter().skip_while(|b| **b == 0).copied().collect::<Vec<u8>>();
            // RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }
            yasna::parse_der(key, |r| {
                r.read_sequence(|r| {
                    let (m, _) = r.next().read_bigint_bytes()?;
                    let _e = r.next().read_bigint_bytes()?;
                    Ok(m.into_iter().skip_while(|b| *b == 0).collect::<Vec<u8>>())
                })
            })
            .is_ok_and(|m| m == n)
        }
        _ => false,
    }
}
