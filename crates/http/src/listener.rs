//! TCP listeners, with TLS through rustls (aws-lc-rs provider) when configured: protocol
//! versions, cipher suites, client certificates (requested, verified if given, or required),
//! the header-read and idle timeouts.

use crate::{router, AppState};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme, SupportedCipherSuite};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// A TLS protocol version rustls speaks (it has no TLS 1.0 or 1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    Tls12,
    Tls13,
}

#[derive(Debug, Clone)]
pub struct ListenerConfig {
    pub address: String,
    pub tls_disable: bool,
    pub tls_cert_file: Option<String>,
    pub tls_key_file: Option<String>,
    pub max_request_size: usize,
    pub tls_min_version: TlsVersion,
    pub tls_max_version: TlsVersion,
    /// Go-style suite names (`TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256`); empty: rustls' defaults.
    pub tls_cipher_suites: Vec<String>,
    pub tls_require_and_verify_client_cert: bool,
    pub tls_client_ca_file: Option<String>,
    pub tls_disable_client_certs: bool,
    pub http_read_header_timeout: Option<Duration>,
    pub http_idle_timeout: Option<Duration>,
}

impl ListenerConfig {
    /// A plain-HTTP listener with default timeouts (for tests and the dev server).
    pub fn plain(address: &str) -> ListenerConfig {
        ListenerConfig {
            address: address.into(),
            tls_disable: true,
            tls_cert_file: None,
            tls_key_file: None,
            max_request_size: crate::DEFAULT_MAX_REQUEST_SIZE,
            tls_min_version: TlsVersion::Tls12,
            tls_max_version: TlsVersion::Tls13,
            tls_cipher_suites: Vec::new(),
            tls_require_and_verify_client_cert: false,
            tls_client_ca_file: None,
            tls_disable_client_certs: false,
            http_read_header_timeout: Some(Duration::from_secs(10)),
            http_idle_timeout: Some(Duration::from_secs(300)),
        }
    }
}

/// The client's TLS certificate chain (leaf first, DER), attached to each request of the
/// connection. `verified`: it chains to `tls_client_ca_file`; otherwise the client only proved
/// it holds the key (OpenBao's default: request a certificate, leave checking to an auth method).
#[derive(Debug, Clone)]
pub struct ClientCertificate {
    pub chain: Arc<Vec<Vec<u8>>>,
    pub verified: bool,
}

/// How the listener treats client certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientCerts {
    /// `tls_disable_client_certs`: never asked for.
    Disabled,
    /// Default: asked for, not checked against a CA.
    Requested,
    /// `tls_client_ca_file` alone: asked for, must chain to the CA when given.
    VerifiedIfGiven,
    /// `tls_require_and_verify_client_cert`: must be given and chain to the CA.
    Required,
}

fn client_cert_mode(cfg: &ListenerConfig) -> ClientCerts {
    if cfg.tls_disable_client_certs {
        ClientCerts::Disabled
    } else if cfg.tls_require_and_verify_client_cert {
        ClientCerts::Required
    } else if cfg.tls_client_ca_file.is_some() {
        ClientCerts::VerifiedIfGiven
    } else {
        ClientCerts::Requested
    }
}

/// The rustls suite for a Go/IANA name.
fn suite_by_name(name: &str) -> Option<SupportedCipherSuite> {
    use rustls::crypto::aws_lc_rs::cipher_suite as cs;
    Some(match name {
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256" => cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384" => cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256" | "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305" => {
            cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
        }
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" => cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384" => cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256" | "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305" => {
            cs::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
        }
        "TLS_AES_128_GCM_SHA256" => cs::TLS13_AES_128_GCM_SHA256,
        "TLS_AES_256_GCM_SHA384" => cs::TLS13_AES_256_GCM_SHA384,
        "TLS_CHACHA20_POLY1305_SHA256" => cs::TLS13_CHACHA20_POLY1305_SHA256,
        _ => return None,
    })
}

/// Why a listener could not be set up or serve. Messages name the option and the file, never
/// key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ListenerError {
    #[error("listener: {0} is required unless tls_disable = true")]
    Required(&'static str),
    #[error("listener: cannot read {what} {path:?}: {source}")]
    Read {
        what: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("listener: {what} {path:?} is not PEM: {source}")]
    NotPem {
        what: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("listener: no certificate found in {what} {path:?}")]
    NoCertificate { what: &'static str, path: String },
    #[error("listener: no private key found in {0:?}")]
    NoPrivateKey(String),
    #[error("listener: tls_cipher_suites: {0:?} is not implemented by rustls")]
    CipherSuite(String),
    #[error("listener: tls_max_version must be greater than or equal to tls_min_version")]
    VersionRange,
    #[error("listener: TLS setup failed (versions and cipher suites do not fit together): {0}")]
    Protocols(#[source] rustls::Error),
    #[error(
        "listener: tls_require_and_verify_client_cert needs tls_client_ca_file (the CA client certificates must chain to)"
    )]
    ClientCaRequired,
    #[error("listener: tls_client_ca_file {path:?}: {source}")]
    ClientCa {
        path: String,
        #[source]
        source: rustls::Error,
    },
    #[error("listener: client certificate verification setup failed: {0}")]
    ClientVerifier(#[source] rustls::server::VerifierBuilderError),
    #[error("listener: certificate and key do not match or are unsupported: {0}")]
    CertificateAndKey(#[source] rustls::Error),
    #[error("listener: cannot bind {address}: {source}")]
    Bind {
        address: String,
        #[source]
        source: std::io::Error,
    },
    #[error("listener: cannot read the bound address: {0}")]
    LocalAddr(#[source] std::io::Error),
}

fn read_pem_certs(path: &str, what: &'static str) -> Result<Vec<CertificateDer<'static>>, ListenerError> {
    let pem = std::fs::read(path).map_err(|source| ListenerError::Read { what, path: path.to_string(), source })?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut &pem[..])
        .collect::<Result<_, _>>()
        .map_err(|source| ListenerError::NotPem { what, path: path.to_string(), source })?;
    if certs.is_empty() {
        return Err(ListenerError::NoCertificate { what, path: path.to_string() });
    }
    Ok(certs)
}

/// Asks for a client certificate and accepts any, once the client proved it holds the key
/// (the handshake signature is still checked).
#[derive(Debug)]
struct AnyClientCert(rustls::crypto::WebPkiSupportedAlgorithms);

impl ClientCertVerifier for AnyClientCert {
    fn client_auth_mandatory(&self) -> bool {
        false
    }
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }
    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

pub(crate) fn tls_config(cfg: &ListenerConfig) -> Result<Arc<rustls::ServerConfig>, ListenerError> {
    let cert_path = cfg.tls_cert_file.as_deref().ok_or(ListenerError::Required("tls_cert_file"))?;
    let key_path = cfg.tls_key_file.as_deref().ok_or(ListenerError::Required("tls_key_file"))?;
    let certs = read_pem_certs(cert_path, "tls_cert_file")?;
    let key_pem = std::fs::read(key_path).map_err(|source| ListenerError::Read {
        what: "tls_key_file",
        path: key_path.to_string(),
        source,
    })?;
    let key = rustls_pemfile::private_key(&mut &key_pem[..])
        .map_err(|source| ListenerError::NotPem { what: "tls_key_file", path: key_path.to_string(), source })?
        .ok_or_else(|| ListenerError::NoPrivateKey(key_path.to_string()))?;

    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    if !cfg.tls_cipher_suites.is_empty() {
        let mut suites = Vec::new();
        for name in &cfg.tls_cipher_suites {
            let s = suite_by_name(name).ok_or_else(|| ListenerError::CipherSuite(name.clone()))?;
            if !suites.iter().any(|x: &SupportedCipherSuite| x.suite() == s.suite()) {
                suites.push(s);
            }
        }
        // As in Go, naming only TLS 1.2 suites leaves TLS 1.3's (all of them AEADs) alone.
        if !suites.iter().any(|s| s.version() == &rustls::version::TLS13) {
            suites.extend(provider.cipher_suites.iter().filter(|s| s.version() == &rustls::version::TLS13).copied());
        }
        provider.cipher_suites = suites;
    }
    let mut versions = Vec::new();
    if cfg.tls_min_version <= TlsVersion::Tls12 && cfg.tls_max_version >= TlsVersion::Tls12 {
        versions.push(&rustls::version::TLS12);
    }
    if cfg.tls_max_version >= TlsVersion::Tls13 {
        versions.push(&rustls::version::TLS13);
    }
    if versions.is_empty() {
        return Err(ListenerError::VersionRange);
    }
    let provider = Arc::new(provider);
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(ListenerError::Protocols)?;
    let mode = client_cert_mode(cfg);
    let builder = match mode {
        ClientCerts::Disabled => builder.with_no_client_auth(),
        ClientCerts::Requested => {
            builder.with_client_cert_verifier(Arc::new(AnyClientCert(provider.signature_verification_algorithms)))
        }
        ClientCerts::VerifiedIfGiven | ClientCerts::Required => {
            let ca = cfg.tls_client_ca_file.as_deref().ok_or(ListenerError::ClientCaRequired)?;
            let mut roots = rustls::RootCertStore::empty();
            for c in read_pem_certs(ca, "tls_client_ca_file")? {
                roots.add(c).map_err(|source| ListenerError::ClientCa { path: ca.to_string(), source })?;
            }
            let b = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
            let b = if mode == ClientCerts::Required { b } else { b.allow_unauthenticated() };
            builder.with_client_cert_verifier(b.build().map_err(ListenerError::ClientVerifier)?)
        }
    };
    let mut sc = builder.with_single_cert(certs, key).map_err(ListenerError::CertificateAndKey)?;
    sc.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(sc))
}

/// Counts the time of the last byte read or written, for `http_idle_timeout`.
struct Tracked<T> {
    inner: T,
    last: Arc<AtomicU64>,
    start: Instant,
}

impl<T> Tracked<T> {
    fn touch(&self) {
        self.last.store(self.start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Tracked<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.touch();
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Tracked<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Serves one connection; with an idle timeout, a connection without traffic for that long
/// is shut down gracefully (a request still being answered finishes first).
async fn serve_conn<T>(
    io: T,
    svc: axum::Router,
    header_timeout: Option<Duration>,
    idle: Option<Duration>,
    peer: SocketAddr,
) where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = Builder::new(TokioExecutor::new());
    // half_close: a client that shuts its sending side right after its request (as `nc -N`
    // does) still gets the answer, as from Go's server.
    builder.http1().timer(TokioTimer::new()).header_read_timeout(header_timeout).half_close(true);
    let svc = TowerToHyperService::new(svc);
    let last = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let io = Tracked { inner: io, last: last.clone(), start };
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), svc);
    tokio::pin!(conn);
    let result = match idle {
        None => conn.await,
        Some(idle) => {
            let tick = (idle / 4).clamp(Duration::from_millis(50), Duration::from_secs(5));
            let mut closing = false;
            loop {
                tokio::select! {
                    r = conn.as_mut() => break r,
                    _ = tokio::time::sleep(tick), if !closing => {
                        let quiet = start.elapsed().saturating_sub(Duration::from_millis(last.load(Ordering::Relaxed)));
                        if quiet >= idle {
                            closing = true;
                            conn.as_mut().graceful_shutdown();
                        }
                    }
                }
            }
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

/// Binds and serves until `shutdown` turns true. Returns the bound address through `bound`.
pub async fn serve(
    cfg: ListenerConfig,
    state: AppState,
    shutdown: watch::Receiver<bool>,
    bound: tokio::sync::oneshot::Sender<SocketAddr>,
) -> Result<(), ListenerError> {
    serve_router(cfg, router(state), shutdown, bound).await
}

/// [`serve`] with any router (tests use one that echoes the request's extensions).
pub async fn serve_router(
    cfg: ListenerConfig,
    app: axum::Router,
    mut shutdown: watch::Receiver<bool>,
    bound: tokio::sync::oneshot::Sender<SocketAddr>,
) -> Result<(), ListenerError> {
    let tls = if cfg.tls_disable { None } else { Some(tokio_rustls::TlsAcceptor::from(tls_config(&cfg)?)) };
    let verified = matches!(client_cert_mode(&cfg), ClientCerts::VerifiedIfGiven | ClientCerts::Required);
    let listener = TcpListener::bind(&cfg.address)
        .await
        .map_err(|source| ListenerError::Bind { address: cfg.address.clone(), source })?;
    let addr = listener.local_addr().map_err(ListenerError::LocalAddr)?;
    let _ = bound.send(addr);
    let (header_timeout, idle) = (cfg.http_read_header_timeout, cfg.http_idle_timeout);
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone().layer(axum::Extension(crate::PeerAddr(peer)));
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                None => serve_conn(stream, app, header_timeout, idle, peer).await,
                Some(acc) => {
                    // The handshake gets the header timeout too, so a silent client cannot hold a slot.
                    let hs = acc.accept(stream);
                    let hs = match header_timeout {
                        Some(t) => match tokio::time::timeout(t, hs).await {
                            Ok(r) => r,
                            Err(_) => {
                                tracing::debug!(%peer, "TLS handshake timed out");
                                return;
                            }
                        },
                        None => hs.await,
                    };
                    match hs {
                        Ok(s) => {
                            let chain =
                                s.get_ref().1.peer_certificates().map(|c| c.iter().map(|d| d.to_vec()).collect());
                            let app = match chain {
                                Some(chain) => {
                                    app.layer(axum::Extension(ClientCertificate { chain: Arc::new(chain), verified }))
                                }
                                None => app,
                            };
                            serve_conn(s, app, header_timeout, idle, peer).await
                        }
                        Err(e) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                    }
                }
            }
        });
    }
    Ok(())
}
