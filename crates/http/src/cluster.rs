//! Request forwarding between the nodes of an HA cluster (decision 0027).
//!
//! A standby sends each client request it cannot serve itself to the active node over one
//! HTTP/2 connection, TLS 1.3 with certificates on both sides, to the `cluster_addr` the active
//! node advertises in the HA lock's record. Both certificates are issued, in memory, by the
//! cluster's CA, whose certificate and key the first active node generates and stores behind
//! the barrier: only a node that can read the barrier (an unsealed member of this cluster) can
//! present one, and each side accepts only a peer chained to that CA.
//!
//! The forwarded request is the client's own (method, path and query, headers, body) plus two
//! headers only a cluster peer is believed on: the client's address as the standby saw it (after
//! its listener's `x_forwarded_for_*` rules) and the client's TLS certificate chain. The active
//! node serves it through the same handler as its API listeners and the answer goes back as it
//! is, streamed.

use crate::{error_response, AppState, ClientCertificate, PeerAddr};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use coffer_core::Core;
use http_body_util::Full;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};
use tokio::net::TcpListener;
use tokio::sync::watch;
use zeroize::Zeroizing;

/// The name both sides' certificates carry and the standby asks for (the address it dials is
/// the advertised `cluster_addr`, whatever name that uses).
const CLUSTER_SERVER_NAME: &str = "cluster.coffer.internal";
/// The client's address as the standby saw it (`ip:port`).
const FORWARDED_CLIENT: &str = "x-coffer-forwarded-client";
/// One header per certificate of the client's TLS chain, leaf first (base64 DER).
const FORWARDED_CERT: &str = "x-coffer-forwarded-client-cert";
/// `true` when the standby's listener verified that chain against its `tls_client_ca_file`.
const FORWARDED_CERT_VERIFIED: &str = "x-coffer-forwarded-client-cert-verified";
/// On an answer from a node that is no longer active: the request was not served.
const NOT_ACTIVE: &str = "x-coffer-not-active";
/// How long a standby keeps trying to reach an active node for one request (while a failover
/// runs, or while the new active node sets up), before answering 503.
const FORWARD_PATIENCE: Duration = Duration::from_secs(15);
/// … but only this long while the lock names no active node at all (the database is out of
/// reach, or every node is sealed): a failover names the new node well within it.
const LEADERLESS_PATIENCE: Duration = Duration::from_secs(5);
/// Leaf certificates live this long (in memory only) and are issued again a day before.
const LEAF_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);

/// Why the cluster's credentials or a forwarded request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    #[error("the cluster CA is not readable: {0}")]
    Storage(#[source] coffer_sdk::LogicalError),
    #[error("no cluster CA has been created yet (no node has been active with forwarding)")]
    NoCa,
    #[error("the stored cluster CA is malformed")]
    Malformed,
    #[error("the stored cluster CA certificate is not PEM: {0}")]
    Pem(#[source] rustls::pki_types::pem::Error),
    #[error("cannot make a cluster certificate: {0}")]
    Certificate(#[source] rcgen::Error),
    #[error("cluster TLS setup failed: {0}")]
    Tls(#[source] rustls::Error),
    #[error("cannot reach the active node's cluster address {addr}: {source}")]
    Connect {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("HTTP/2 to the active node's cluster address {addr} failed: {source}")]
    Http {
        addr: String,
        #[source]
        source: hyper::Error,
    },
    #[error("cannot bind the cluster listener on {address}: {source}")]
    Bind {
        address: String,
        #[source]
        source: std::io::Error,
    },
}

/// The cluster CA as stored behind the barrier.
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredCa {
    ca_cert_pem: String,
    ca_key_pem: String,
}

impl Drop for StoredCa {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.ca_key_pem);
    }
}

/// This node's credentials: the CA to check peers against and its own leaf certificate.
struct Identity {
    server: Arc<rustls::ServerConfig>,
    client: Arc<rustls::ClientConfig>,
    renew_after: SystemTime,
}

fn ca_params() -> rcgen::CertificateParams {
    let mut p = rcgen::CertificateParams::default();
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::OrganizationName, "Coffer");
    dn.push(rcgen::DnType::CommonName, "Coffer cluster CA");
    p.distinguished_name = dn;
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    p.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
    p
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

impl StoredCa {
    fn generate() -> Result<StoredCa, ClusterError> {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(ClusterError::Certificate)?;
        let mut p = ca_params();
        let now = time::OffsetDateTime::now_utc();
        p.not_before = now - time::Duration::minutes(5);
        p.not_after = now + time::Duration::days(3650);
        let cert = p.self_signed(&key).map_err(ClusterError::Certificate)?;
        Ok(StoredCa { ca_cert_pem: cert.pem(), ca_key_pem: key.serialize_pem() })
    }

    /// Issues this node's leaf (server and client authentication) and builds both TLS sides.
    fn identity(&self, node: &str) -> Result<Identity, ClusterError> {
        let ca_key = rcgen::KeyPair::from_pem(&self.ca_key_pem).map_err(ClusterError::Certificate)?;
        let ca_der = CertificateDer::from_pem_slice(self.ca_cert_pem.as_bytes()).map_err(ClusterError::Pem)?;
        let issuer = rcgen::Issuer::new(ca_params(), ca_key);
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(ClusterError::Certificate)?;
        let mut p =
            rcgen::CertificateParams::new(vec![CLUSTER_SERVER_NAME.to_string()]).map_err(ClusterError::Certificate)?;
        p.distinguished_name.push(rcgen::DnType::CommonName, node);
        p.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages =
            vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth, rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let now = time::OffsetDateTime::now_utc();
        p.not_before = now - time::Duration::minutes(5);
        p.not_after = now + time::Duration::try_from(LEAF_LIFETIME).unwrap_or(time::Duration::days(30));
        let leaf = p.signed_by(&key, &issuer).map_err(ClusterError::Certificate)?;
        let chain = vec![leaf.der().clone()];
        let private = Zeroizing::new(key.serialize_der());
        let private = || -> Result<PrivateKeyDer<'static>, ClusterError> {
            Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(private.to_vec())))
        };

        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca_der).map_err(ClusterError::Tls)?;
        let roots = Arc::new(roots);
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(roots.clone(), provider())
            .build()
            .map_err(|e| ClusterError::Tls(rustls::Error::General(e.to_string())))?;
        let mut server = rustls::ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(ClusterError::Tls)?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain.clone(), private()?)
            .map_err(ClusterError::Tls)?;
        server.alpn_protocols = vec![b"h2".to_vec()];
        let mut client = rustls::ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(ClusterError::Tls)?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, private()?)
            .map_err(ClusterError::Tls)?;
        client.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Identity {
            server: Arc::new(server),
            client: Arc::new(client),
            renew_after: SystemTime::now() + LEAF_LIFETIME - Duration::from_secs(24 * 3600),
        })
    }
}

/// The standby's connection to the active node it last forwarded to.
struct LeaderConn {
    leader: String,
    addr: String,
    send: hyper::client::conn::http2::SendRequest<Full<Bytes>>,
}

/// A node's part in request forwarding: its credentials, and (on a standby) its connection to
/// the active node.
pub struct Cluster {
    core: Arc<Core>,
    identity: RwLock<Option<Arc<Identity>>>,
    loading: tokio::sync::Mutex<()>,
    conn: tokio::sync::Mutex<Option<LeaderConn>>,
    /// When this node last asked the lock who leads (at most every 50 ms, however many
    /// requests are waiting for a failover).
    refreshed: std::sync::Mutex<Option<Instant>>,
}

/// What became of a request a standby was asked to forward.
pub(crate) enum Outcome {
    /// The active node's answer (or the error to give the client).
    Answer(Response),
    /// The active node takes no forwarded requests (no cluster address advertised): redirect.
    Redirect,
    /// This node became active meanwhile: serve the request here.
    ServeHere,
}

/// Marks a request that arrived over the cluster listener (it is never forwarded again).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ArrivedForwarded;

impl Cluster {
    pub fn new(core: Arc<Core>) -> Arc<Cluster> {
        Arc::new(Cluster {
            core,
            identity: RwLock::new(None),
            loading: tokio::sync::Mutex::new(()),
            conn: tokio::sync::Mutex::new(None),
            refreshed: std::sync::Mutex::new(None),
        })
    }

    fn cached(&self) -> Option<Arc<Identity>> {
        let id = self.identity.read().ok()?.clone()?;
        (SystemTime::now() < id.renew_after).then_some(id)
    }

    /// This node's credentials: issued from the stored CA; the active node creates the CA
    /// when there is none yet.
    async fn identity(&self) -> Result<Arc<Identity>, ClusterError> {
        if let Some(id) = self.cached() {
            return Ok(id);
        }
        let _one = self.loading.lock().await;
        if let Some(id) = self.cached() {
            return Ok(id);
        }
        let ca = match self.core.cluster_ca().await.map_err(ClusterError::Storage)? {
            // drop-cause: the entry holds the CA's key; a decoding error may quote it.
            Some(raw) => serde_json::from_slice::<StoredCa>(&raw).map_err(|_| ClusterError::Malformed)?,
            None if self.core.active().is_some() => {
                let ca = StoredCa::generate()?;
                // drop-cause: serialising two strings cannot fail; an error would quote the key.
                let raw = Zeroizing::new(serde_json::to_vec(&ca).map_err(|_| ClusterError::Malformed)?);
                self.core.store_cluster_ca(&raw).await.map_err(ClusterError::Storage)?;
                tracing::info!("created the cluster CA for request forwarding");
                ca
            }
            None => return Err(ClusterError::NoCa),
        };
        let node = self.core.ha_identity().unwrap_or_else(|| "coffer".into());
        let id = Arc::new(ca.identity(&node)?);
        if let Ok(mut slot) = self.identity.write() {
            *slot = Some(id.clone());
        }
        Ok(id)
    }

    fn forget_identity(&self) {
        if let Ok(mut slot) = self.identity.write() {
            *slot = None;
        }
    }

    /// A ready HTTP/2 sender to `leader`'s cluster address: the open connection when it still
    /// goes there, else a new one.
    async fn sender(
        &self,
        leader: &coffer_core::ha::LeaderInfo,
    ) -> Result<hyper::client::conn::http2::SendRequest<Full<Bytes>>, ClusterError> {
        let addr = dial_address(&leader.cluster_addr);
        let mut slot = self.conn.lock().await;
        if let Some(c) = slot.as_ref() {
            if c.leader == leader.identity && c.addr == addr && !c.send.is_closed() {
                return Ok(c.send.clone());
            }
        }
        *slot = None;
        let id = self.identity().await?;
        let connect = async {
            let tcp = tokio::net::TcpStream::connect(&addr).await?;
            let _ = tcp.set_nodelay(true);
            let name = ServerName::try_from(CLUSTER_SERVER_NAME).map_err(std::io::Error::other)?;
            tokio_rustls::TlsConnector::from(id.client.clone()).connect(name, tcp).await
        };
        let connected = tokio::time::timeout(Duration::from_secs(3), connect).await;
        let tls = match connected {
            Ok(Ok(s)) => s,
            Ok(Err(source)) => {
                // A handshake refused for our certificate may mean a CA we read before a
                // restore: read it again next time.
                if source.kind() == std::io::ErrorKind::InvalidData {
                    self.forget_identity();
                }
                return Err(ClusterError::Connect { addr, source });
            }
            Err(_) => {
                return Err(ClusterError::Connect { addr, source: std::io::ErrorKind::TimedOut.into() });
            }
        };
        let mut builder = hyper::client::conn::http2::Builder::new(TokioExecutor::new());
        builder
            .timer(TokioTimer::new())
            .keep_alive_interval(Duration::from_secs(5))
            .keep_alive_timeout(Duration::from_secs(5))
            .keep_alive_while_idle(true);
        let (send, conn) = builder
            .handshake(TokioIo::new(tls))
            .await
            .map_err(|source| ClusterError::Http { addr: addr.clone(), source })?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "cluster connection to the active node ended");
            }
        });
        *slot = Some(LeaderConn { leader: leader.identity.clone(), addr, send: send.clone() });
        Ok(send)
    }

    /// The leader this node knew cannot be reached: read the lock's record now.
    async fn refresh_leader(&self) {
        let due = match self.refreshed.lock() {
            Ok(mut last) if last.is_none_or(|t| t.elapsed() >= Duration::from_millis(50)) => {
                *last = Some(Instant::now());
                true
            }
            _ => false,
        };
        if due {
            self.core.refresh_leader().await;
        }
    }

    async fn drop_conn(&self) {
        *self.conn.lock().await = None;
    }

    /// Forwards one request (its body already read) to the active node. Retries while no
    /// active node can be reached (a failover), never after the request went out unless the
    /// answer says it was not served.
    pub(crate) async fn forward(&self, parts: &axum::http::request::Parts, body: Bytes) -> Outcome {
        let started = Instant::now();
        let mut leaderless_since: Option<Instant> = None;
        let mut last_error: Option<String> = None;
        loop {
            if !self.core.is_standby() {
                if self.core.active().is_some() {
                    return Outcome::ServeHere;
                }
                return Outcome::Answer(error_response(StatusCode::SERVICE_UNAVAILABLE, &["Vault is sealed".into()]));
            }
            let leader = self.core.leader_info();
            match &leader {
                Some(l) if l.cluster_addr.is_empty() && !l.api_addr.is_empty() => return Outcome::Redirect,
                _ => {}
            }
            if leader.is_some() {
                leaderless_since = None;
            }
            if let Some(leader) = leader.filter(|l| !l.cluster_addr.is_empty()) {
                match self.sender(&leader).await {
                    Ok(mut send) => {
                        let req = forwarded_request(parts, body.clone());
                        match send.try_send_request(req).await {
                            Ok(resp) if resp.headers().contains_key(NOT_ACTIVE) => {
                                last_error = Some("the node named in the lock is no longer active".into());
                                self.drop_conn().await;
                                self.refresh_leader().await;
                            }
                            Ok(resp) => return Outcome::Answer(resp.map(Body::new)),
                            Err(mut e) => {
                                self.drop_conn().await;
                                if e.take_message().is_none() {
                                    // Sent, and no answer came back: whether it was served is
                                    // unknown, so it is not sent again.
                                    tracing::warn!(error = %e.error(), "the active node did not answer a forwarded request");
                                    return Outcome::Answer(error_response(
                                        StatusCode::SERVICE_UNAVAILABLE,
                                        &["the active node did not answer the forwarded request; it may or may not have been applied".into()],
                                    ));
                                }
                                last_error = Some(e.error().to_string());
                                self.refresh_leader().await;
                            }
                        }
                    }
                    Err(e) => {
                        last_error = Some(e.to_string());
                        self.refresh_leader().await;
                    }
                }
            } else {
                last_error.get_or_insert_with(|| "no active node is known".into());
                leaderless_since.get_or_insert_with(Instant::now);
                self.refresh_leader().await;
            }
            let leaderless_too_long = leaderless_since.is_some_and(|t| t.elapsed() >= LEADERLESS_PATIENCE);
            if started.elapsed() >= FORWARD_PATIENCE || leaderless_too_long {
                let why = last_error.unwrap_or_default();
                tracing::warn!(error = %why, "cannot forward a request to the active node");
                return Outcome::Answer(error_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &[format!("cannot forward the request to the active node: {why}")],
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The state forwarded requests are served with on the active node: the standby already
    /// applied its listener's options (size and JSON limits, client address, CORS, headers, the
    /// legacy ceremony switches), so none is applied again.
    fn serving_state(self: &Arc<Self>) -> AppState {
        AppState {
            core: self.core.clone(),
            max_request_size: usize::MAX,
            ui: false,
            unauthenticated_metrics: false,
            options: Arc::new(crate::RequestOptions::default()),
            cluster: None,
        }
    }

    /// Binds the cluster listener on `address` and serves forwarded requests until `shutdown`.
    /// Connections are accepted only while this node has its credentials (unsealed), and only
    /// from peers whose certificate chains to the cluster CA.
    pub async fn serve(
        self: Arc<Self>,
        address: String,
        mut shutdown: watch::Receiver<bool>,
        bound: tokio::sync::oneshot::Sender<SocketAddr>,
    ) -> Result<(), ClusterError> {
        let listener = TcpListener::bind(&address)
            .await
            .map_err(|source| ClusterError::Bind { address: address.clone(), source })?;
        let local = listener.local_addr().map_err(|source| ClusterError::Bind { address: address.clone(), source })?;
        let _ = bound.send(local);
        let app = axum::Router::new().fallback(serve_forwarded).with_state(self.serving_state());
        // A node that becomes active gets its credentials at once (creating the CA the first
        // time): the standbys need the CA for their own certificates before they can connect.
        let warm = {
            let me = self.clone();
            tokio::spawn(async move {
                let mut last_error = String::new();
                loop {
                    if me.core.active().is_some() && me.cached().is_none() {
                        if let Err(e) = me.identity().await {
                            let text = e.to_string();
                            if text != last_error {
                                tracing::warn!(error = %text, "cannot set up the cluster credentials");
                                last_error = text;
                            }
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            })
        };
        loop {
            let (stream, peer) = tokio::select! {
                r = listener.accept() => match r {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!(error = %e, "cluster listener: accept failed");
                        continue;
                    }
                },
                _ = shutdown.changed() => break,
            };
            let _ = stream.set_nodelay(true);
            let (me, app) = (self.clone(), app.clone());
            tokio::spawn(async move {
                let hello = tokio_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), stream);
                let Ok(Ok(start)) = tokio::time::timeout(Duration::from_secs(10), hello).await else { return };
                let id = match me.identity().await {
                    Ok(id) => id,
                    Err(e) => {
                        tracing::debug!(%peer, error = %e, "cluster listener: no credentials yet; connection dropped");
                        return;
                    }
                };
                let tls =
                    match tokio::time::timeout(Duration::from_secs(10), start.into_stream(id.server.clone())).await {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            tracing::warn!(%peer, error = %e, "cluster listener: TLS handshake refused");
                            return;
                        }
                        Err(_) => return,
                    };
                let svc = hyper_util::service::TowerToHyperService::new(app);
                let conn = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .timer(TokioTimer::new())
                    .keep_alive_interval(Duration::from_secs(10))
                    .keep_alive_timeout(Duration::from_secs(10))
                    .serve_connection(TokioIo::new(tls), svc);
                if let Err(e) = conn.await {
                    tracing::debug!(%peer, error = %e, "cluster connection ended with an error");
                }
            });
        }
        warm.abort();
        Ok(())
    }
}

/// `host:port` of an advertised cluster address (`https://host:port`, scheme ignored).
fn dial_address(cluster_addr: &str) -> String {
    let a = cluster_addr.split_once("://").map(|(_, rest)| rest).unwrap_or(cluster_addr);
    a.split('/').next().unwrap_or(a).to_string()
}

/// Request headers that describe one hop, not the request.
fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "transfer-encoding"
            | "upgrade"
            | "te"
            | "host"
            | "content-length"
            | "expect"
            | "trailer"
            | FORWARDED_CLIENT
            | FORWARDED_CERT
            | FORWARDED_CERT_VERIFIED
    )
}

fn forwarded_request(parts: &axum::http::request::Parts, body: Bytes) -> hyper::Request<Full<Bytes>> {
    let pq = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let uri = format!("https://{CLUSTER_SERVER_NAME}{pq}");
    let mut req = hyper::Request::new(Full::new(body));
    *req.method_mut() = parts.method.clone();
    *req.uri_mut() = uri.parse().unwrap_or_default();
    let h = req.headers_mut();
    for (name, value) in &parts.headers {
        if !hop_by_hop(name) {
            h.append(name.clone(), value.clone());
        }
    }
    if let Some(peer) = parts.extensions.get::<PeerAddr>() {
        if let Ok(v) = HeaderValue::from_str(&peer.0.to_string()) {
            h.insert(FORWARDED_CLIENT, v);
        }
    }
    if let Some(c) = parts.extensions.get::<ClientCertificate>() {
        use base64::Engine;
        for der in c.chain.iter() {
            if let Ok(v) = HeaderValue::from_str(&base64::engine::general_purpose::STANDARD.encode(der)) {
                h.append(FORWARDED_CERT, v);
            }
        }
        h.insert(FORWARDED_CERT_VERIFIED, HeaderValue::from_static(if c.verified { "true" } else { "false" }));
    }
    req
}

/// The client's address and certificate chain from a forwarded request's headers.
fn forwarded_client(headers: &HeaderMap) -> (Option<SocketAddr>, Option<ClientCertificate>) {
    use base64::Engine;
    let peer = headers.get(FORWARDED_CLIENT).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    let chain: Vec<Vec<u8>> = headers
        .get_all(FORWARDED_CERT)
        .iter()
        .filter_map(|v| base64::engine::general_purpose::STANDARD.decode(v.as_bytes()).ok())
        .collect();
    let certs = (!chain.is_empty()).then(|| ClientCertificate {
        chain: Arc::new(chain),
        verified: headers.get(FORWARDED_CERT_VERIFIED).is_some_and(|v| v == "true"),
    });
    (peer, certs)
}

/// On the active node: a request a standby forwarded, served as if its client had sent it here.
async fn serve_forwarded(State(st): State<AppState>, mut req: Request) -> Response {
    if st.core.active().is_none() {
        return not_active();
    }
    let (peer, certs) = forwarded_client(req.headers());
    let ext = req.extensions_mut();
    ext.insert(ArrivedForwarded);
    match peer {
        Some(p) => {
            ext.insert(PeerAddr(p));
        }
        None => {
            ext.remove::<PeerAddr>();
        }
    }
    if let Some(c) = certs {
        ext.insert(c);
    }
    for name in [FORWARDED_CLIENT, FORWARDED_CERT, FORWARDED_CERT_VERIFIED] {
        req.headers_mut().remove(name);
    }
    crate::handle(State(st), req).await
}

/// The answer of a node asked to serve a forwarded request while it is not active: the
/// standby that sent it tries the node the lock names now.
pub(crate) fn not_active() -> Response {
    let mut r = error_response(StatusCode::SERVICE_UNAVAILABLE, &["this node is no longer the active node".into()]);
    r.headers_mut().insert(NOT_ACTIVE, HeaderValue::from_static("1"));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_addresses_dial_host_and_port_whatever_the_scheme() {
        assert_eq!(dial_address("https://10.0.0.1:8201"), "10.0.0.1:8201");
        assert_eq!(dial_address("http://node-a:8201/"), "node-a:8201");
        assert_eq!(dial_address("node-a:8201"), "node-a:8201");
    }

    #[test]
    fn the_client_address_and_certificates_cross_as_headers_and_clients_cannot_forge_them() {
        let mut req = Request::new(Body::empty());
        *req.uri_mut() = "/v1/secret/x?list=true".parse().unwrap();
        req.headers_mut().insert(FORWARDED_CLIENT, HeaderValue::from_static("6.6.6.6:1"));
        req.headers_mut().insert("x-vault-token", HeaderValue::from_static("t"));
        req.headers_mut().insert(header::HOST, HeaderValue::from_static("lb:8200"));
        req.extensions_mut().insert(PeerAddr("10.1.2.3:4567".parse().unwrap()));
        req.extensions_mut().insert(ClientCertificate { chain: Arc::new(vec![vec![1, 2, 3]]), verified: true });
        let (parts, _) = req.into_parts();
        let fwd = forwarded_request(&parts, Bytes::from_static(b"{}"));
        assert_eq!(fwd.uri().path_and_query().unwrap().as_str(), "/v1/secret/x?list=true");
        assert_eq!(fwd.headers()["x-vault-token"], "t");
        assert!(!fwd.headers().contains_key(header::HOST));
        assert_eq!(fwd.headers().get_all(FORWARDED_CLIENT).iter().count(), 1, "the client's own copy is dropped");
        let (peer, certs) = forwarded_client(fwd.headers());
        assert_eq!(peer, Some("10.1.2.3:4567".parse().unwrap()));
        let certs = certs.unwrap();
        assert_eq!(*certs.chain, vec![vec![1, 2, 3]]);
        assert!(certs.verified);
    }

    #[test]
    fn leaves_issued_from_one_stored_ca_trust_each_other_and_not_another_cas() {
        let ca = StoredCa::generate().unwrap();
        let other = StoredCa::generate().unwrap();
        let a = ca.identity("a").unwrap();
        let b = ca.identity("b").unwrap();
        let stranger = other.identity("x").unwrap();
        let handshake = |client: &Identity, server: &Identity| -> Result<(), rustls::Error> {
            let name = ServerName::try_from(CLUSTER_SERVER_NAME).unwrap();
            let mut c = rustls::ClientConnection::new(client.client.clone(), name)?;
            let mut s = rustls::ServerConnection::new(server.server.clone())?;
            for _ in 0..10 {
                let mut buf = Vec::new();
                while c.wants_write() {
                    c.write_tls(&mut buf).unwrap();
                }
                let mut rd = &buf[..];
                while !rd.is_empty() {
                    s.read_tls(&mut rd).unwrap();
                }
                s.process_new_packets()?;
                let mut buf = Vec::new();
                while s.wants_write() {
                    s.write_tls(&mut buf).unwrap();
                }
                let mut rd = &buf[..];
                while !rd.is_empty() {
                    c.read_tls(&mut rd).unwrap();
                }
                c.process_new_packets()?;
                if !c.is_handshaking() && !s.is_handshaking() {
                    return Ok(());
                }
            }
            Err(rustls::Error::General("handshake did not finish".into()))
        };
        handshake(&a, &b).expect("two members of one cluster");
        handshake(&b, &a).expect("either way round");
        assert!(handshake(&stranger, &a).is_err(), "a client from another CA is refused");
        assert!(handshake(&a, &stranger).is_err(), "a server from another CA is refused");
    }
}
