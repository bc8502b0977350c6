//! Challenge validation (RFC 8555 section 8): `http-01` fetches the key authorization from
//! `http://<domain>/.well-known/acme-challenge/<token>` on port 80; `dns-01` asks for the TXT
//! records of `_acme-challenge.<domain>` (the configured `dns_resolver`, else the first
//! nameserver of /etc/resolv.conf) and looks for the key authorization's SHA-256, base64url.

use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Why a challenge did not validate (the detail the challenge's `error` shows).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Failure(String);

impl From<String> for Failure {
    fn from(s: String) -> Self {
        Failure(s)
    }
}

impl From<&str> for Failure {
    fn from(s: &str) -> Self {
        Failure(s.to_string())
    }
}

type VResult<T> = std::result::Result<T, Failure>;

/// The most of an http-01 answer read (the key authorization is under 200 bytes).
const MAX_BODY: usize = 8192;
const TIMEOUT: Duration = Duration::from_secs(10);

/// Whether `domain` answers the http-01 challenge `token` with `key_auth`; `Err` says why not.
pub async fn http01(domain: &str, token: &str, key_auth: &str) -> VResult<()> {
    let addrs: Vec<std::net::SocketAddr> = tokio::time::timeout(TIMEOUT, tokio::net::lookup_host((domain, 80)))
        .await
        // drop-cause: a timeout's Elapsed says nothing but that it elapsed.
        .map_err(|_| Failure(format!("resolving {domain} timed out")))?
        .map_err(|e| Failure(format!("cannot resolve {domain}: {e}")))?
        .collect();
    let mut last = format!("{domain} has no address");
    for addr in addrs {
        match tokio::time::timeout(TIMEOUT, fetch(addr, domain, token)).await {
            Ok(Ok(body)) => {
                // RFC 8555 section 8.3: whitespace around the body is tolerated.
                if body.trim() == key_auth {
                    return Ok(());
                }
                last = format!("the key authorization served at {addr} does not match");
            }
            Ok(Err(e)) => last = e.0,
            Err(_) => last = format!("fetching the challenge from {addr} timed out"),
        }
    }
    Err(Failure(last))
}

async fn fetch(addr: std::net::SocketAddr, domain: &str, token: &str) -> VResult<String> {
    let mut conn =
        tokio::net::TcpStream::connect(addr).await.map_err(|e| Failure(format!("cannot connect to {addr}: {e}")))?;
    let host = if domain.contains(':') { format!("[{domain}]") } else { domain.to_string() };
    let req = format!(
        "GET /.well-known/acme-challenge/{token} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: coffer-acme\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    conn.write_all(req.as_bytes()).await.map_err(|e| Failure(format!("cannot send to {addr}: {e}")))?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 2048];
    loop {
        let n = conn.read(&mut chunk).await.map_err(|e| Failure(format!("cannot read from {addr}: {e}")))?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > MAX_BODY {
            return Err("the challenge answer is too large".into());
        }
    }
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text.split_once("\r\n\r\n").ok_or("the challenge answer is not HTTP")?;
    let status = head.split_whitespace().nth(1).unwrap_or("");
    if status != "200" {
        return Err(format!("the challenge URL answered HTTP {status}").into());
    }
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    Ok(if chunked { dechunk(body) } else { body.to_string() })
}

fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16) else { break };
        if n == 0 || tail.len() < n {
            break;
        }
        out.push_str(&tail[..n]);
        rest = tail[n..].trim_start_matches("\r\n");
    }
    out
}

/// Whether `_acme-challenge.<domain>` has a TXT record equal to `digest` (the key
/// authorization's SHA-256, base64url).
pub async fn dns01(resolver: &str, domain: &str, digest: &str) -> VResult<()> {
    let server = if resolver.is_empty() {
        system_resolver().ok_or("no DNS resolver is configured")?
    } else {
        resolver.to_string()
    };
    let server = if server.parse::<std::net::SocketAddr>().is_ok() {
        server
    } else if let Ok(ip) = server.parse::<std::net::IpAddr>() {
        std::net::SocketAddr::new(ip, 53).to_string()
    } else {
        server
    };
    let name = format!("_acme-challenge.{}", domain.trim_start_matches("*."));
    let records = tokio::time::timeout(TIMEOUT, txt_query(&server, &name))
        .await
        // drop-cause: a timeout's Elapsed says nothing but that it elapsed.
        .map_err(|_| Failure(format!("the DNS query for {name} timed out")))??;
    if records.iter().any(|r| r == digest) {
        Ok(())
    } else if records.is_empty() {
        Err(format!("no TXT record at {name}").into())
    } else {
        Err(format!("no TXT record at {name} matches the key authorization").into())
    }
}

fn system_resolver() -> Option<String> {
    let conf = std::fs::read_to_string("/etc/resolv.conf").ok()?;
    conf.lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .map(|s| s.trim().to_string())
        .find(|s| !s.is_empty())
}

async fn txt_query(server: &str, name: &str) -> VResult<Vec<String>> {
    let mut id = [0u8; 2];
    // drop-cause: aws-lc's Unspecified says nothing more.
    aws_lc_rs::rand::fill(&mut id).map_err(|_| Failure::from("the random generator failed"))?;
    let mut q = Vec::with_capacity(64);
    q.extend_from_slice(&id);
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]); // RD; one question
    for label in name.trim_end_matches('.').split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(format!("{name} is not a valid DNS name").into());
        }
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 16, 0, 1]); // root; TXT; IN
    let bind = if server.starts_with('[') { "[::]:0" } else { "0.0.0.0:0" };
    let sock =
        tokio::net::UdpSocket::bind(bind).await.map_err(|e| Failure(format!("cannot open a UDP socket: {e}")))?;
    sock.connect(server).await.map_err(|e| Failure(format!("cannot reach the resolver {server}: {e}")))?;
    sock.send(&q).await.map_err(|e| Failure(format!("cannot query {server}: {e}")))?;
    let mut buf = vec![0u8; 4096];
    loop {
        let n = sock.recv(&mut buf).await.map_err(|e| Failure(format!("no answer from {server}: {e}")))?;
        let a = &buf[..n];
        if a.len() < 12 || a[0..2] != id {
            continue;
        }
        return parse_txt_answer(a);
    }
}

fn skip_name(a: &[u8], mut i: usize) -> Option<usize> {
    loop {
        let l = *a.get(i)? as usize;
        if l == 0 {
            return Some(i + 1);
        }
        if l & 0xC0 == 0xC0 {
            return Some(i + 2);
        }
        i += 1 + l;
    }
}

fn parse_txt_answer(a: &[u8]) -> VResult<Vec<String>> {
    let malformed = || Failure::from("the resolver's answer is malformed");
    let rcode = a[3] & 0x0F;
    if rcode == 3 {
        return Ok(Vec::new());
    }
    if rcode != 0 {
        return Err(format!("the resolver answered with error code {rcode}").into());
    }
    let qd = u16::from_be_bytes([a[4], a[5]]) as usize;
    let an = u16::from_be_bytes([a[6], a[7]]) as usize;
    let mut i = 12;
    for _ in 0..qd {
        i = skip_name(a, i).ok_or_else(malformed)? + 4;
    }
    let mut out = Vec::new();
    for _ in 0..an {
        i = skip_name(a, i).ok_or_else(malformed)?;
        let head = a.get(i..i + 10).ok_or_else(malformed)?;
        let ty = u16::from_be_bytes([head[0], head[1]]);
        let len = u16::from_be_bytes([head[8], head[9]]) as usize;
        i += 10;
        let data = a.get(i..i + len).ok_or_else(malformed)?;
        i += len;
        if ty != 16 {
            continue;
        }
        // A TXT record is one or more character strings, joined.
        let mut text = Vec::new();
        let mut j = 0;
        while j < data.len() {
            let l = data[j] as usize;
            text.extend_from_slice(data.get(j + 1..j + 1 + l).ok_or_else(malformed)?);
            j += 1 + l;
        }
        out.push(String::from_utf8_lossy(&text).into_owned());
    }
    Ok(out)
}

/// The acmeIdentifier extension of a tls-alpn-01 certificate (RFC 8737 section 6.1).
const ACME_IDENTIFIER_OID: &str = "1.3.6.1.5.5.7.1.31";

/// Whether `domain` answers a TLS connection on port 443 offering only the `acme-tls/1`
/// protocol with a certificate for `domain` alone whose critical acmeIdentifier extension
/// holds `digest` (the key authorization's SHA-256), proving the key in a TLS 1.3 handshake.
pub async fn tls_alpn01(domain: &str, digest: &[u8]) -> VResult<()> {
    let addrs: Vec<std::net::SocketAddr> = tokio::time::timeout(TIMEOUT, tokio::net::lookup_host((domain, 443)))
        .await
        // drop-cause: a timeout's Elapsed says nothing but that it elapsed.
        .map_err(|_| Failure(format!("resolving {domain} timed out")))?
        .map_err(|e| Failure(format!("cannot resolve {domain}: {e}")))?
        .collect();
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| Failure(format!("TLS setup failed: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(std::sync::Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"acme-tls/1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let name = rustls::pki_types::ServerName::try_from(domain.to_string())
        .map_err(|e| Failure(format!("{domain} is not a TLS server name: {e}")))?;
    let mut last = format!("{domain} has no address");
    for addr in addrs {
        let attempt = async {
            let tcp = tokio::net::TcpStream::connect(addr)
                .await
                .map_err(|e| Failure(format!("cannot connect to {addr}: {e}")))?;
            let tls = connector
                .connect(name.clone(), tcp)
                .await
                .map_err(|e| Failure(format!("the TLS handshake with {addr} failed: {e}")))?;
            let (_, conn) = tls.get_ref();
            if conn.alpn_protocol() != Some(b"acme-tls/1".as_slice()) {
                return Err(Failure(format!("{addr} did not negotiate the acme-tls/1 protocol")));
            }
            let cert = conn
                .peer_certificates()
                .and_then(|c| c.first())
                .ok_or_else(|| Failure(format!("{addr} sent no certificate")))?;
            check_alpn_certificate(cert.as_ref(), domain, digest)
        };
        match tokio::time::timeout(TIMEOUT, attempt).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) => last = e.0,
            Err(_) => last = format!("the TLS connection to {addr} timed out"),
        }
    }
    Err(Failure(last))
}

fn check_alpn_certificate(der: &[u8], domain: &str, digest: &[u8]) -> VResult<()> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| Failure(format!("the tls-alpn-01 certificate cannot be parsed: {e}")))?;
    let names: Vec<String> = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|s| s.value.general_names.iter().map(|n| format!("{n}")).collect())
        .unwrap_or_default();
    if names != [format!("DNSName({domain})")] {
        return Err(Failure(format!("the tls-alpn-01 certificate must name {domain} and nothing else")));
    }
    let ext = cert
        .extensions()
        .iter()
        .find(|e| e.oid.to_id_string() == ACME_IDENTIFIER_OID)
        .ok_or_else(|| Failure::from("the tls-alpn-01 certificate has no acmeIdentifier extension"))?;
    if !ext.critical {
        return Err(Failure::from("the acmeIdentifier extension must be critical"));
    }
    let mut want = vec![0x04, 0x20];
    want.extend_from_slice(digest);
    if ext.value != want.as_slice() {
        return Err(Failure::from("the acmeIdentifier extension does not hold the key authorization's digest"));
    }
    Ok(())
}

/// Accepts any certificate (tls-alpn-01 certificates are self-signed and checked above) but
/// still checks the handshake signature against its key, read without webpki (which refuses
/// the critical acmeIdentifier extension).
#[derive(Debug)]
struct AnyCertificate(std::sync::Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &rustls::pki_types::CertificateDer<'_>,
        _dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("tls-alpn-01 needs TLS 1.3".into()))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref())
            .map_err(|e| rustls::Error::General(format!("the certificate cannot be parsed: {e}")))?;
        let spki = rustls::pki_types::SubjectPublicKeyInfoDer::from(parsed.tbs_certificate.subject_pki.raw);
        rustls::crypto::verify_tls13_signature_with_raw_key(
            message,
            &spki,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
