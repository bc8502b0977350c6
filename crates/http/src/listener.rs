//! TCP listeners, with TLS through rustls (aws-lc-rs provider) when configured.

use crate::{router, AppState};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;

#[derive(Debug, Clone)]
pub struct ListenerConfig {
    pub address: String,
    pub tls_disable: bool,
    pub tls_cert_file: Option<String>,
    pub tls_key_file: Option<String>,
    pub max_request_size: usize,
}

fn tls_config(cfg: &ListenerConfig) -> Result<Arc<rustls::ServerConfig>, String> {
    let cert_path =
        cfg.tls_cert_file.as_deref().ok_or("listener: tls_cert_file is required unless tls_disable = true")?;
    let key_path = cfg.tls_key_file.as_deref().ok_or("listener: tls_key_file is required unless tls_disable = true")?;
    let cert_pem =
        std::fs::read(cert_path).map_err(|e| format!("listener: cannot read tls_cert_file {cert_path:?}: {e}"))?;
    let key_pem =
        std::fs::read(key_path).map_err(|e| format!("listener: cannot read tls_key_file {key_path:?}: {e}"))?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut &cert_pem[..])
        .collect::<Result<_, _>>()
        .map_err(|e| format!("listener: tls_cert_file {cert_path:?} is not PEM: {e}"))?;
    if certs.is_empty() {
        return Err(format!("listener: no certificate found in {cert_path:?}"));
    }
    let key = rustls_pemfile::private_key(&mut &key_pem[..])
        .map_err(|e| format!("listener: tls_key_file {key_path:?} is not PEM: {e}"))?
        .ok_or_else(|| format!("listener: no private key found in {key_path:?}"))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut sc = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("listener: TLS setup failed: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("listener: certificate and key do not match or are unsupported: {e}"))?;
    sc.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(sc))
}

/// Binds and serves until `shutdown` turns true. Returns the bound address through `bound`.
pub async fn serve(
    cfg: ListenerConfig,
    state: AppState,
    mut shutdown: watch::Receiver<bool>,
    bound: tokio::sync::oneshot::Sender<SocketAddr>,
) -> Result<(), String> {
    let tls = if cfg.tls_disable { None } else { Some(tokio_rustls::TlsAcceptor::from(tls_config(&cfg)?)) };
    let listener =
        TcpListener::bind(&cfg.address).await.map_err(|e| format!("listener: cannot bind {}: {e}", cfg.address))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let _ = bound.send(addr);
    let app = router(state);
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
        let svc = TowerToHyperService::new(app.clone().layer(axum::Extension(crate::PeerAddr(peer))));
        let tls = tls.clone();
        tokio::spawn(async move {
            let builder = Builder::new(TokioExecutor::new());
            let result = match tls {
                None => builder.serve_connection_with_upgrades(TokioIo::new(stream), svc).await,
                Some(acc) => match acc.accept(stream).await {
                    Ok(s) => builder.serve_connection_with_upgrades(TokioIo::new(s), svc).await,
                    Err(e) => {
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        return;
                    }
                },
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    Ok(())
}
