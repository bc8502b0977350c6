//! The client's TLS certificate chain reaches each request as a `ClientCertificate` extension
//! (for a future cert auth method), marked verified only when it was checked against the
//! listener's client CA. A real rustls client connects to a real listener.
use axum::extract::Request;
use coffer_http::{serve_router, ClientCertificate, ListenerConfig};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap()
}

fn leaf(issuer: &CertifiedIssuer<'static, KeyPair>, sans: Vec<String>, client: bool) -> (rcgen::Certificate, KeyPair) {
    let mut p = CertificateParams::new(sans).unwrap();
    p.extended_key_usages =
        vec![if client { ExtendedKeyUsagePurpose::ClientAuth } else { ExtendedKeyUsagePurpose::ServerAuth }];
    let k = KeyPair::generate().unwrap();
    (p.signed_by(&k, issuer).unwrap(), k)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Serves a router that answers with what the request carries; returns its answer to a client
/// presenting `client`.
async fn answer(client_ca_file: Option<&str>, client: Option<(CertificateDer<'static>, &KeyPair)>) -> String {
    let dir = tempfile::tempdir().unwrap();
    let server_ca = ca("server CA");
    let (server_cert, server_key) = leaf(&server_ca, vec!["127.0.0.1".into()], false);
    let cert_file = dir.path().join("server.pem");
    let key_file = dir.path().join("server-key.pem");
    std::fs::write(&cert_file, server_cert.pem()).unwrap();
    std::fs::write(&key_file, server_key.serialize_pem()).unwrap();
    let mut cfg = ListenerConfig::plain("127.0.0.1:0");
    cfg.tls_disable = false;
    cfg.tls_cert_file = Some(cert_file.display().to_string());
    cfg.tls_key_file = Some(key_file.display().to_string());
    cfg.tls_client_ca_file = client_ca_file.map(str::to_string);
    let app = axum::Router::new().fallback(|req: Request| async move {
        match req.extensions().get::<ClientCertificate>() {
            Some(c) => format!("chain={} verified={} leaf={}", c.chain.len(), c.verified, hex(&c.chain[0])),
            None => "none".to_string(),
        }
    });
    let (_stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (btx, brx) = tokio::sync::oneshot::channel();
    tokio::spawn(serve_router(cfg, app, stop_rx, btx));
    let addr = brx.await.unwrap();

    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(server_ca.der().clone()).unwrap();
    let b = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let cc = match client {
        Some((cert, key)) => b
            .with_client_auth_cert(vec![cert], PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())))
            .unwrap(),
        None => b.with_no_client_auth(),
    };
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(cc))
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
        .unwrap();
    tls.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut out = Vec::new();
    let _ = tls.read_to_end(&mut out).await;
    let text = String::from_utf8_lossy(&out).to_string();
    text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or(text)
}

#[tokio::test]
async fn a_certificate_checked_against_the_client_ca_reaches_the_request_as_verified() {
    let dir = tempfile::tempdir().unwrap();
    let client_ca = ca("client CA");
    let ca_file = dir.path().join("client-ca.pem");
    std::fs::write(&ca_file, client_ca.pem()).unwrap();
    let (cert, key) = leaf(&client_ca, vec![], true);
    let got = answer(Some(&ca_file.display().to_string()), Some((cert.der().clone(), &key))).await;
    assert_eq!(got, format!("chain=1 verified=true leaf={}", hex(cert.der())));
    // Verified-if-given: a client without a certificate gets through, with nothing attached.
    assert_eq!(answer(Some(&ca_file.display().to_string()), None).await, "none");
}

#[tokio::test]
async fn an_unchecked_certificate_is_attached_but_not_marked_verified() {
    // No client CA: the listener asks for a certificate and leaves judging it to later.
    let rogue = ca("anyone");
    let (cert, key) = leaf(&rogue, vec![], true);
    let got = answer(None, Some((cert.der().clone(), &key))).await;
    assert_eq!(got, format!("chain=1 verified=false leaf={}", hex(cert.der())));
}
