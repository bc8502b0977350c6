//! Automatic mutual TLS as go-plugin does it: each side makes a throwaway self-signed ECDSA
//! certificate, the host passes its certificate to the plugin in `PLUGIN_CLIENT_CERT`, the
//! plugin returns its own in the handshake line, and each side accepts exactly the other's
//! certificate (pinned, no CA chain). ALPN is `h2` (gRPC peers insist on it).

use crate::PluginError;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme};
use std::sync::Arc;

/// A certificate and its private key.
pub(crate) struct Identity {
    pub cert: CertificateDer<'static>,
    key: PrivatePkcs8KeyDer<'static>,
    pub cert_pem: String,
}

impl Identity {
    fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(self.key.clone_key())
    }
}

fn tls_err(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> PluginError {
    PluginError::Tls(e.into())
}

/// The system's random generator failed while making a certificate serial.
#[derive(Debug, thiserror::Error)]
#[error("no randomness for the certificate serial")]
struct NoRandomness(#[source] aws_lc_rs::error::Unspecified);

pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// A self-signed ECDSA P-521 certificate for `localhost`, usable as server, client and (for Go's
/// verifier, which treats a pinned certificate as a root) as its own CA.
pub(crate) fn generate_identity() -> Result<Identity, PluginError> {
    use rcgen::{
        BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
        KeyUsagePurpose, SerialNumber,
    };
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P521_SHA512).map_err(tls_err)?;
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).map_err(tls_err)?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "localhost");
    dn.push(DnType::OrganizationName, "Coffer");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
        KeyUsagePurpose::KeyAgreement,
        KeyUsagePurpose::KeyCertSign,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
    let mut serial = [0u8; 16];
    aws_lc_rs::rand::fill(&mut serial).map_err(|e| tls_err(NoRandomness(e)))?;
    serial[0] &= 0x7f;
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::seconds(30);
    params.not_after = now + time::Duration::days(3650);
    let cert = params.self_signed(&key).map_err(tls_err)?;
    Ok(Identity { cert: cert.der().clone(), cert_pem: cert.pem(), key: PrivatePkcs8KeyDer::from(key.serialize_der()) })
}

/// The first certificate of a PEM text (what `PLUGIN_CLIENT_CERT` carries).
pub(crate) fn parse_pem_cert(pem: &str) -> Result<CertificateDer<'static>, PluginError> {
    CertificateDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| tls_err(format!("PLUGIN_CLIENT_CERT is not a PEM certificate: {e}")))
}

/// Accepts exactly one peer certificate; handshake signatures are checked with the provider's
/// algorithms (aws-lc-rs: P-256, P-384 and P-521 ECDSA, RSA, Ed25519).
#[derive(Debug)]
struct Pinned {
    cert: CertificateDer<'static>,
    algs: WebPkiSupportedAlgorithms,
}

impl Pinned {
    fn check(&self, presented: &CertificateDer<'_>) -> Result<(), rustls::Error> {
        if presented.as_ref() == self.cert.as_ref() {
            Ok(())
        } else {
            Err(rustls::Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure))
        }
    }
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.check(end_entity).map(|_| ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

impl ClientCertVerifier for Pinned {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }
    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.check(end_entity).map(|_| ClientCertVerified::assertion())
    }
    fn client_auth_mandatory(&self) -> bool {
        true
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

fn pinned(peer: &CertificateDer<'static>, provider: &CryptoProvider) -> Arc<Pinned> {
    Arc::new(Pinned { cert: peer.clone(), algs: provider.signature_verification_algorithms })
}

/// Server side: our certificate, the peer's certificate required and pinned, ALPN h2.
pub(crate) fn server_config(me: &Identity, peer: &CertificateDer<'static>) -> Result<Arc<ServerConfig>, PluginError> {
    let provider = provider();
    let mut cfg = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(tls_err)?
        .with_client_cert_verifier(pinned(peer, &provider))
        .with_single_cert(vec![me.cert.clone()], me.key())
        .map_err(tls_err)?;
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(cfg))
}

/// Client side: the peer's certificate pinned, our certificate presented, ALPN h2.
pub(crate) fn client_config(me: &Identity, peer: &CertificateDer<'static>) -> Result<Arc<ClientConfig>, PluginError> {
    let provider = provider();
    let mut cfg = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(tls_err)?
        .dangerous()
        .with_custom_certificate_verifier(pinned(peer, &provider))
        .with_client_auth_cert(vec![me.cert.clone()], me.key())
        .map_err(tls_err)?;
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(cfg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_round_trips_through_pem_and_builds_configs() {
        let a = generate_identity().unwrap();
        let b = generate_identity().unwrap();
        assert_ne!(a.cert.as_ref(), b.cert.as_ref());
        assert_eq!(parse_pem_cert(&a.cert_pem).unwrap().as_ref(), a.cert.as_ref());
        server_config(&a, &b.cert).unwrap();
        client_config(&b, &a.cert).unwrap();
        assert!(parse_pem_cert("not a certificate").is_err());
    }
}
