//! The credential types a role issues, as OpenBao's engine has them: a generated password (the
//! default), an RSA key pair whose public half the plugin installs for the user
//! (`rsa_private_key`), or a client certificate the engine issues from a CA the role holds and
//! whose subject the plugin creates the user for (`client_certificate`).
//!
//! The engine makes the key material; whether a database takes it is the plugin's to say (the
//! built-in PostgreSQL and MySQL plugins support passwords only and refuse the others, as
//! OpenBao's do). `credential_config` is checked when the role is written: every key is acted
//! on or refused by name.

use coffer_sdk::database::{render_username_template, CredentialType, UsernameMetadata};
use coffer_sdk::{LogicalError, Result};
use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, Issuer, KeyPair, KeyUsagePurpose,
    RsaKeySize, SignatureAlgorithm,
};
use serde_json::{json, Map, Value};
use zeroize::Zeroizing;

fn bad(msg: impl Into<String>) -> LogicalError {
    LogicalError::bad_request(msg)
}

fn invalid(msg: impl std::fmt::Display) -> LogicalError {
    bad(format!("credential_config validation failed: {msg}"))
}

/// An integer option given as a number or a numeric string.
fn int_opt(cfg: &Map<String, Value>, key: &str) -> Result<Option<i64>> {
    match cfg.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(|| invalid(format!("invalid {key}"))),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|e| invalid(format!("invalid {key} {s:?}: {e}"))),
        Some(_) => Err(invalid(format!("invalid {key}"))),
    }
}

fn str_opt<'a>(cfg: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>> {
    match cfg.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(invalid(format!("{key} must be a string"))),
    }
}

fn refuse_unknown(cfg: &Map<String, Value>, known: &[&str], kind: &str) -> Result<()> {
    match cfg.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => {
            Err(invalid(format!("unknown option {k:?} for credential_type {kind:?} (known: {})", known.join(", "))))
        }
        None => Ok(()),
    }
}

fn rsa_size(bits: i64) -> Result<RsaKeySize> {
    match bits {
        2048 => Ok(RsaKeySize::_2048),
        3072 => Ok(RsaKeySize::_3072),
        4096 => Ok(RsaKeySize::_4096),
        other => Err(invalid(format!("invalid key_bits {other}: RSA keys are 2048, 3072 or 4096 bits"))),
    }
}

/// Checks `credential_config` for `kind` and returns it as it is stored and read back, with the
/// defaults filled in (`rsa_private_key`: `key_bits` 2048, `format` pkcs8).
pub(crate) fn validate(kind: CredentialType, cfg: &Map<String, Value>) -> Result<Map<String, Value>> {
    match kind {
        CredentialType::Password => {
            refuse_unknown(cfg, &["password_policy"], "password")?;
            let mut out = Map::new();
            if let Some(p) = str_opt(cfg, "password_policy")? {
                out.insert("password_policy".into(), json!(p));
            }
            Ok(out)
        }
        CredentialType::RsaPrivateKey => {
            refuse_unknown(cfg, &["key_bits", "format"], "rsa_private_key")?;
            let bits = int_opt(cfg, "key_bits")?.unwrap_or(2048);
            rsa_size(bits)?;
            let format = str_opt(cfg, "format")?.unwrap_or("pkcs8");
            if format != "pkcs8" {
                return Err(invalid(format!("invalid format {format:?}: only pkcs8 is supported")));
            }
            Ok(serde_json::from_value(json!({ "key_bits": bits, "format": "pkcs8" })).unwrap_or_default())
        }
        CredentialType::ClientCertificate => {
            refuse_unknown(
                cfg,
                &["key_type", "key_bits", "signature_bits", "common_name_template", "ca_cert", "ca_private_key"],
                "client_certificate",
            )?;
            let key_type = str_opt(cfg, "key_type")?.unwrap_or_default();
            let bits = int_opt(cfg, "key_bits")?;
            let bits = match key_type {
                "rsa" => {
                    let b = bits.unwrap_or(2048);
                    rsa_size(b)?;
                    b
                }
                "ec" => {
                    let b = bits.unwrap_or(256);
                    ec_alg(b)?;
                    b
                }
                "ed25519" => {
                    if bits.is_some_and(|b| b != 0) {
                        return Err(invalid("key_bits does not apply to ed25519 keys"));
                    }
                    0
                }
                _ => return Err(invalid("invalid key_type")),
            };
            let sig_bits = int_opt(cfg, "signature_bits")?;
            if let Some(b) = sig_bits {
                if ![256, 384, 512].contains(&b) {
                    return Err(invalid(format!("invalid signature_bits {b}: 256, 384 or 512")));
                }
            }
            let template =
                str_opt(cfg, "common_name_template")?.ok_or_else(|| invalid("common_name_template is required"))?;
            render_username_template(template, &UsernameMetadata::default())
                .map_err(|e| invalid(format!("invalid common_name_template: {}", e.messages.join("; "))))?;
            let ca_cert = str_opt(cfg, "ca_cert")?.ok_or_else(|| invalid("ca_cert is required"))?;
            let ca_key = str_opt(cfg, "ca_private_key")?.ok_or_else(|| invalid("ca_private_key is required"))?;
            let mut out: Map<String, Value> = serde_json::from_value(json!({
                "key_type": key_type,
                "key_bits": bits,
                "common_name_template": template,
                "ca_cert": ca_cert,
                "ca_private_key": ca_key,
            }))
            .unwrap_or_default();
            if let Some(b) = sig_bits {
                out.insert("signature_bits".into(), json!(b));
            }
            // Parsed now, so a bad CA fails the role and not the first `creds`.
            ca_issuer(&out)?;
            Ok(out)
        }
        other => Err(bad(format!("unsupported credential_type {:?}", other.as_str()))),
    }
}

/// `credential_config` as a read shows it: the CA's private key is never shown.
pub(crate) fn shown(cfg: &Map<String, Value>) -> Map<String, Value> {
    let mut out = cfg.clone();
    if out.contains_key("ca_private_key") {
        out.insert("ca_private_key".into(), json!("<redacted>"));
    }
    out
}

fn ec_alg(bits: i64) -> Result<&'static SignatureAlgorithm> {
    match bits {
        256 => Ok(&rcgen::PKCS_ECDSA_P256_SHA256),
        384 => Ok(&rcgen::PKCS_ECDSA_P384_SHA384),
        521 => Ok(&rcgen::PKCS_ECDSA_P521_SHA512),
        other => Err(invalid(format!("invalid key_bits {other}: EC keys are 256, 384 or 521 bits"))),
    }
}

/// The role's CA, ready to sign (its signature hash from `signature_bits` when it is RSA).
fn ca_issuer(cfg: &Map<String, Value>) -> Result<Issuer<'static, KeyPair>> {
    let cert = cfg.get("ca_cert").and_then(Value::as_str).unwrap_or_default();
    let key_pem = Zeroizing::new(cfg.get("ca_private_key").and_then(Value::as_str).unwrap_or_default().to_string());
    let key = KeyPair::from_pem(&key_pem).map_err(|e| invalid(format!("cannot read ca_private_key: {e}")))?;
    let sig = int_opt(cfg, "signature_bits")?;
    let key = if key.is_compatible(&rcgen::PKCS_RSA_SHA256) {
        let alg = match sig.unwrap_or(256) {
            384 => &rcgen::PKCS_RSA_SHA384,
            512 => &rcgen::PKCS_RSA_SHA512,
            _ => &rcgen::PKCS_RSA_SHA256,
        };
        KeyPair::from_pem_and_sign_algo(&key_pem, alg)
            .map_err(|e| invalid(format!("cannot read ca_private_key: {e}")))?
    } else {
        if sig.is_some() {
            return Err(invalid(
                "signature_bits applies to RSA CA keys only (an EC or Ed25519 CA signs with its curve's hash)",
            ));
        }
        key
    };
    let issuer = Issuer::from_ca_cert_pem(cert, key).map_err(|e| invalid(format!("cannot read ca_cert: {e}")))?;
    Ok(issuer)
}

/// What a role hands the plugin and, afterwards, the client.
pub(crate) enum Issued {
    /// An RSA key pair: the plugin installs `public_pem`; the client gets `private_pem`.
    Rsa { public_pem: String, private_pem: Zeroizing<String> },
    /// A certificate for `subject`.
    Certificate { subject: String, cert_pem: String, key_pem: Zeroizing<String>, key_type: String },
}

/// A new RSA key pair of the configured size (PKCS#8 private key, SubjectPublicKeyInfo public key).
pub(crate) fn new_rsa(cfg: &Map<String, Value>) -> Result<Issued> {
    let bits = int_opt(cfg, "key_bits")?.unwrap_or(2048);
    let key = KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rsa_size(bits)?)
        .map_err(|e| LogicalError::internal(format!("generating an RSA key failed: {e}")))?;
    Ok(Issued::Rsa { public_pem: key.public_key_pem(), private_pem: Zeroizing::new(key.serialize_pem()) })
}

/// A new client certificate from the role's CA: a fresh key, the common name from the template,
/// valid for `ttl` seconds (from 30 s ago, for clocks a little behind).
pub(crate) fn new_certificate(cfg: &Map<String, Value>, meta: &UsernameMetadata, ttl: i64) -> Result<Issued> {
    let issuer = ca_issuer(cfg)?;
    let key_type = cfg.get("key_type").and_then(Value::as_str).unwrap_or_default().to_string();
    let bits = int_opt(cfg, "key_bits")?.unwrap_or(0);
    let gen = |e: rcgen::Error| LogicalError::internal(format!("generating the certificate's key failed: {e}"));
    let key = match key_type.as_str() {
        "rsa" => KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rsa_size(bits)?).map_err(gen)?,
        "ec" => KeyPair::generate_for(ec_alg(bits)?).map_err(gen)?,
        _ => KeyPair::generate_for(&rcgen::PKCS_ED25519).map_err(gen)?,
    };
    let template = cfg.get("common_name_template").and_then(Value::as_str).unwrap_or_default();
    let cn = render_username_template(template, meta)?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn.clone());
    params.distinguished_name = dn;
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::seconds(30);
    params.not_after = now + time::Duration::seconds(ttl.max(1));
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    let mut serial = [0u8; 16];
    getrandom::fill(&mut serial).map_err(|e| LogicalError::internal(format!("no randomness: {e}")))?;
    serial[0] &= 0x7f;
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
    let cert = params
        .signed_by(&key, &issuer)
        .map_err(|e| LogicalError::internal(format!("signing the certificate failed: {e}")))?;
    Ok(Issued::Certificate {
        subject: format!("CN={cn}"),
        cert_pem: cert.pem(),
        key_pem: Zeroizing::new(key.serialize_pem()),
        key_type,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(v: Value) -> Map<String, Value> {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn rsa_config_takes_openbaos_defaults_and_refuses_what_it_cannot_do() {
        let c = validate(CredentialType::RsaPrivateKey, &Map::new()).unwrap();
        assert_eq!(Value::Object(c), json!({"key_bits": 2048, "format": "pkcs8"}));
        let c = validate(CredentialType::RsaPrivateKey, &m(json!({"key_bits": "4096"}))).unwrap();
        assert_eq!(c["key_bits"], 4096);
        for bad in [json!({"key_bits": 1024}), json!({"format": "pkcs1"}), json!({"colour": "red"})] {
            let e = validate(CredentialType::RsaPrivateKey, &m(bad.clone())).unwrap_err();
            let msg = e.messages.join("; ");
            assert!(msg.starts_with("credential_config validation failed"), "{bad}: {msg}");
        }
        let e = validate(CredentialType::ClientCertificate, &Map::new()).unwrap_err();
        assert_eq!(e.messages.join("; "), "credential_config validation failed: invalid key_type", "OpenBao's words");
    }

    #[test]
    fn an_rsa_credential_is_a_matching_pkcs8_key_pair() {
        let Issued::Rsa { public_pem, private_pem } = new_rsa(&m(json!({"key_bits": 2048}))).unwrap() else {
            panic!("an RSA pair")
        };
        assert!(private_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        assert!(public_pem.starts_with("-----BEGIN PUBLIC KEY-----"));
        let reread = KeyPair::from_pem(&private_pem).unwrap();
        assert_eq!(reread.public_key_pem(), public_pem, "the client's private key belongs to the installed public key");
    }

    #[test]
    fn a_client_certificate_is_signed_by_the_roles_ca_for_the_templated_name() {
        let ca_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, "db ca");
        let ca = p.self_signed(&ca_key).unwrap();
        let cfg = validate(
            CredentialType::ClientCertificate,
            &m(json!({
                "key_type": "ec", "common_name_template": "{{.RoleName}}-{{.DisplayName}}",
                "ca_cert": ca.pem(), "ca_private_key": ca_key.serialize_pem(),
            })),
        )
        .unwrap();
        assert_eq!(shown(&cfg)["ca_private_key"], "<redacted>");
        let meta = UsernameMetadata { display_name: "token".into(), role_name: "app".into() };
        let Issued::Certificate { subject, cert_pem, key_pem, key_type } = new_certificate(&cfg, &meta, 600).unwrap()
        else {
            panic!("a certificate")
        };
        assert_eq!((subject.as_str(), key_type.as_str()), ("CN=app-token", "ec"));
        // openssl checks the chain and the client-auth purpose.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
        std::fs::write(dir.path().join("leaf.pem"), &cert_pem).unwrap();
        let o = std::process::Command::new("openssl")
            .args(["verify", "-purpose", "sslclient", "-CAfile", "ca.pem", "leaf.pem"])
            .current_dir(dir.path())
            .output()
            .expect("openssl");
        assert!(o.status.success(), "openssl verify: {}", String::from_utf8_lossy(&o.stderr));
        let der = pem_body(&cert_pem);
        let (_, x) = x509_parser::parse_x509_certificate(&der).unwrap();
        assert_eq!(x.subject().to_string(), "CN=app-token");
        let life = x.validity().not_after.timestamp() - x.validity().not_before.timestamp();
        assert_eq!(life, 630, "the lease's TTL plus the 30 s back-dating");
        let key = KeyPair::from_pem(&key_pem).unwrap();
        assert_eq!(key.public_key_raw(), x.public_key().subject_public_key.data.as_ref());
        // signature_bits is for RSA CAs only: refused with an EC CA, not ignored.
        let mut with_sig = cfg.clone();
        with_sig.insert("signature_bits".into(), json!(384));
        assert!(validate(CredentialType::ClientCertificate, &with_sig).is_err());
    }

    fn pem_body(pem: &str) -> Vec<u8> {
        use base64::Engine;
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        base64::engine::general_purpose::STANDARD.decode(body).unwrap()
    }
}
