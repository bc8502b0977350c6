//! TLS to PostgreSQL with rustls, as libpq's `sslmode` asks: `require` encrypts without checking
//! the server (unless `sslrootcert` is given, which makes it `verify-ca`, as libpq does),
//! `verify-ca` checks the chain, `verify-full` the chain and the host name; `prefer` (libpq's
//! default) and `allow` try TLS and fall back to a plain connection when the server offers
//! none; `disable` never encrypts. Roots are `sslrootcert` (a PEM file) or, without it, the
//! Mozilla roots of `webpki-roots`. `sslcert` and `sslkey` (PEM files) present a client
//! certificate. Used by the PostgreSQL storage backend and the PostgreSQL database plugin.
//!
//! Written here rather than taken from a crate: the published rustls adapters for
//! tokio-postgres offer only full verification, and libpq's `require` / `verify-ca` modes need
//! the chain-without-name and no-check verifiers below (docs/decisions/0024).
#![forbid(unsafe_code)]

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, Error as TlsError, RootCertStore, SignatureScheme};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::config::SslMode;
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect};

/// The connection-string options this crate takes (tokio-postgres knows only `sslmode`).
pub const TLS_OPTIONS: &[&str] = &["sslmode", "sslrootcert", "sslcert", "sslkey", "sslinline"];

/// Why TLS to PostgreSQL cannot be set up as asked. Messages name the option and the file,
/// never a key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgTlsError {
    /// `sslmode` is not one of libpq's.
    #[error("invalid sslmode {0:?} (disable, allow, prefer, require, verify-ca or verify-full)")]
    Mode(String),
    /// A file named by an option cannot be read.
    #[error("cannot read {option} {path:?}: {source}")]
    Read {
        /// The option (`sslrootcert`, `sslcert`, `sslkey`).
        option: &'static str,
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A file holds no usable PEM certificate or key.
    #[error("{option} {path:?} holds no {what}")]
    Empty {
        /// The option.
        option: &'static str,
        /// The file.
        path: String,
        /// What was looked for.
        what: &'static str,
    },
    /// A root certificate was refused.
    #[error("sslrootcert holds a bad certificate: {0}")]
    BadRoot(#[source] TlsError),
    /// One of `sslcert` and `sslkey` without the other.
    #[error("sslcert and sslkey go together: {0} is missing")]
    HalfClientCert(&'static str),
    /// An option this crate does not act on.
    #[error("{0} is not supported (give the certificate and key as files with sslcert and sslkey)")]
    Unsupported(&'static str),
    /// rustls refused the configuration (a key that does not match its certificate, …).
    #[error("TLS setup failed: {0}")]
    Setup(#[source] TlsError),
}

/// How much of the server's certificate is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verify {
    /// Nothing (`sslmode=require` or `prefer` without `sslrootcert`).
    None,
    /// The chain, not the name (`verify-ca`).
    Chain,
    /// The chain and the name (`verify-full`).
    Full,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// A client certificate and its key, to present to the server.
pub struct ClientCert {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl std::fmt::Debug for ClientCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCert").field("certificates", &self.chain.len()).finish_non_exhaustive()
    }
}

fn read(option: &'static str, path: &str) -> Result<Vec<u8>, PgTlsError> {
    std::fs::read(path).map_err(|source| PgTlsError::Read { option, path: path.to_string(), source })
}

fn certs_of(option: &'static str, path: &str, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, PgTlsError> {
    let mut r = pem;
    let certs: Vec<_> = rustls_pemfile::certs(&mut r).filter_map(Result::ok).collect();
    if certs.is_empty() {
        return Err(PgTlsError::Empty { option, path: path.to_string(), what: "PEM certificate" });
    }
    Ok(certs)
}

/// The rustls client configuration for `verify` with roots from `root_pem` (or webpki-roots),
/// presenting `client` when given.
pub fn client_config(
    verify: Verify,
    root_pem: Option<(&str, &[u8])>,
    client: Option<ClientCert>,
) -> Result<ClientConfig, PgTlsError> {
    let mut roots = RootCertStore::empty();
    match root_pem {
        Some((path, pem)) => {
            for c in certs_of("sslrootcert", path, pem)? {
                roots.add(c).map_err(PgTlsError::BadRoot)?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(PgTlsError::Setup)?;
    let roots = Arc::new(roots);
    let webpki = rustls::client::WebPkiServerVerifier::builder_with_provider(roots.clone(), provider())
        .build()
        .map_err(|e| PgTlsError::Setup(TlsError::General(e.to_string())))?;
    let builder = match verify {
        Verify::Full => builder.with_root_certificates(roots),
        Verify::Chain => {
            builder.dangerous().with_custom_certificate_verifier(Arc::new(Lenient { inner: webpki, check_chain: true }))
        }
        Verify::None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Lenient { inner: webpki, check_chain: false })),
    };
    match client {
        Some(c) => builder.with_client_auth_cert(c.chain, c.key).map_err(PgTlsError::Setup),
        None => Ok(builder.with_no_client_auth()),
    }
}

/// Splits the TLS options (which tokio-postgres does not take, but for `sslmode`) out of a
/// connection string, a URL (`postgres://…?sslmode=…`) or a `key=value` string.
pub fn split_tls_options(conn: &str) -> (String, Vec<(String, String)>) {
    let mut taken = vec![];
    if conn.starts_with("postgres://") || conn.starts_with("postgresql://") {
        let Some((base, query)) = conn.split_once('?') else { return (conn.to_string(), taken) };
        let mut kept = vec![];
        for pair in query.split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            if TLS_OPTIONS.contains(&k) {
                taken.push((k.to_string(), percent_decode(v)));
            } else {
                kept.push(pair);
            }
        }
        let s = if kept.is_empty() { base.to_string() } else { format!("{base}?{}", kept.join("&")) };
        (s, taken)
    } else {
        let mut kept = vec![];
        for word in conn.split_whitespace() {
            match word.split_once('=') {
                Some((k, v)) if TLS_OPTIONS.contains(&k.trim()) => {
                    taken.push((k.trim().to_string(), v.trim_matches('\'').to_string()))
                }
                _ => kept.push(word),
            }
        }
        (kept.join(" "), taken)
    }
}

fn percent_decode(v: &str) -> String {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Some(x) = std::str::from_utf8(&b[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(x);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What the TLS options of a connection string ask for: the `sslmode` to give tokio-postgres and
/// the connector (`None`: `sslmode=disable`, never TLS).
pub struct TlsChoice {
    /// For `tokio_postgres::Config::ssl_mode`.
    pub ssl_mode: SslMode,
    /// The connector; `None` only for `disable`.
    pub connector: Option<MakeRustls>,
    /// The mode as given (or `prefer`, libpq's default).
    pub mode: String,
}

/// Reads the TLS options split off by [`split_tls_options`] (files included).
pub fn choose(options: &[(String, String)]) -> Result<TlsChoice, PgTlsError> {
    let opt = |k: &str| options.iter().rev().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    if opt("sslinline").is_some() {
        return Err(PgTlsError::Unsupported("sslinline"));
    }
    let root = match opt("sslrootcert") {
        Some(path) => Some((path.to_string(), read("sslrootcert", path)?)),
        None => None,
    };
    let client = match (opt("sslcert"), opt("sslkey")) {
        (None, None) => None,
        (Some(_), None) => return Err(PgTlsError::HalfClientCert("sslkey")),
        (None, Some(_)) => return Err(PgTlsError::HalfClientCert("sslcert")),
        (Some(cert), Some(key)) => {
            let chain = certs_of("sslcert", cert, &read("sslcert", cert)?)?;
            let pem = read("sslkey", key)?;
            let mut r = pem.as_slice();
            let key_der = rustls_pemfile::private_key(&mut r).ok().flatten().ok_or_else(|| PgTlsError::Empty {
                option: "sslkey",
                path: key.to_string(),
                what: "PEM private key",
            })?;
            Some(ClientCert { chain, key: key_der })
        }
    };
    let mode = opt("sslmode").unwrap_or("prefer").to_string();
    let verify = match (mode.as_str(), root.is_some()) {
        ("disable", _) => None,
        ("allow" | "prefer" | "require", false) => Some(Verify::None),
        ("allow" | "prefer" | "require", true) | ("verify-ca", _) => Some(Verify::Chain),
        ("verify-full", _) => Some(Verify::Full),
        (other, _) => return Err(PgTlsError::Mode(other.to_string())),
    };
    let ssl_mode = match mode.as_str() {
        "disable" => SslMode::Disable,
        "allow" | "prefer" => SslMode::Prefer,
        _ => SslMode::Require,
    };
    let connector = match verify {
        None => None,
        Some(v) => Some(MakeRustls(Arc::new(client_config(
            v,
            root.as_ref().map(|(p, pem)| (p.as_str(), pem.as_slice())),
            client,
        )?))),
    };
    Ok(TlsChoice { ssl_mode, connector, mode })
}

/// A verifier that checks the chain but not the name (`check_chain`), or nothing but the
/// handshake signatures.
#[derive(Debug)]
struct Lenient {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
    check_chain: bool,
}

impl ServerCertVerifier for Lenient {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, TlsError> {
        if !self.check_chain {
            return Ok(ServerCertVerified::assertion());
        }
        match self.inner.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Ok(v) => Ok(v),
            Err(TlsError::InvalidCertificate(rustls::CertificateError::NotValidForName))
            | Err(TlsError::InvalidCertificate(rustls::CertificateError::NotValidForNameContext { .. })) => {
                Ok(ServerCertVerified::assertion())
            }
            Err(e) => Err(e),
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// tokio-postgres's TLS hook over rustls.
#[derive(Clone)]
pub struct MakeRustls(pub Arc<ClientConfig>);

impl<S> MakeTlsConnect<S> for MakeRustls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type TlsConnect = RustlsConnect;
    type Error = io::Error;

    fn make_tls_connect(&mut self, domain: &str) -> io::Result<RustlsConnect> {
        let name = ServerName::try_from(domain.to_string())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("bad server name {domain:?}: {e}")))?;
        Ok(RustlsConnect { config: self.0.clone(), name })
    }
}

/// One TLS connection attempt.
pub struct RustlsConnect {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
}

impl<S> TlsConnect<S> for RustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<RustlsStream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let s = tokio_rustls::TlsConnector::from(self.config).connect(self.name, stream).await?;
            Ok(RustlsStream(Box::new(s)))
        })
    }
}

/// The encrypted stream.
pub struct RustlsStream<S>(Box<tokio_rustls::client::TlsStream<S>>);

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for RustlsStream<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for RustlsStream<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> tokio_postgres::tls::TlsStream for RustlsStream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_options_are_split_from_urls_and_key_value_strings() {
        let (rest, opts) = split_tls_options(
            "postgres://u:p@h:5/db?sslmode=verify-full&application_name=x&sslrootcert=%2Ftmp%2Fca.pem",
        );
        assert_eq!(rest, "postgres://u:p@h:5/db?application_name=x");
        assert_eq!(opts, vec![("sslmode".into(), "verify-full".into()), ("sslrootcert".into(), "/tmp/ca.pem".into())]);
        let (rest, opts) = split_tls_options("host=h dbname=d sslmode=require sslcert='/c.pem'");
        assert_eq!(rest, "host=h dbname=d");
        assert_eq!(opts, vec![("sslmode".into(), "require".into()), ("sslcert".into(), "/c.pem".into())]);
    }

    #[test]
    fn modes_are_libpqs_and_bad_options_are_named() {
        let c = choose(&[]).unwrap();
        assert_eq!((c.mode.as_str(), c.connector.is_some()), ("prefer", true), "libpq's default tries TLS");
        assert!(choose(&[("sslmode".into(), "disable".into())]).unwrap().connector.is_none());
        let e = choose(&[("sslmode".into(), "sometimes".into())]).err().unwrap().to_string();
        assert!(e.contains("invalid sslmode \"sometimes\""), "{e}");
        let e = choose(&[("sslcert".into(), "/x".into())]).err().unwrap().to_string();
        assert!(e.contains("sslkey is missing"), "{e}");
        let e = choose(&[("sslrootcert".into(), "/nonexistent/ca.pem".into())]).err().unwrap().to_string();
        assert!(e.contains("cannot read sslrootcert \"/nonexistent/ca.pem\""), "{e}");
        let e = choose(&[("sslinline".into(), "1".into())]).err().unwrap().to_string();
        assert!(e.contains("sslinline is not supported"), "{e}");
    }
}
