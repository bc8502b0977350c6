//! gRPC over unix sockets (or TCP, which go-plugin also allows) with optional TLS: an incoming
//! connection stream for tonic servers and a connector for tonic channels.

use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ServerConfig};
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixListener, UnixStream};
use tokio::sync::mpsc;
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::Connected;
use tonic::transport::{Channel, Endpoint};

/// Messages may be large (storage entries, lists); the protocol's peers lift gRPC's 4 MiB
/// default too.
pub(crate) const MAX_MESSAGE: usize = 256 * 1024 * 1024;

pub(crate) trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// One accepted (and, with TLS, handshaken) connection.
pub(crate) struct ServerIo(Box<dyn Io>);

impl Connected for ServerIo {
    type ConnectInfo = ();
    fn connect_info(&self) {}
}

impl AsyncRead for ServerIo {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for ServerIo {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }
}

/// Accepts connections on `listener`, runs each TLS handshake in its own task (a slow or
/// hostile peer cannot hold up the others) and yields the ready connections. The accept loop
/// ends when the returned stream is dropped.
pub(crate) fn incoming(
    listener: UnixListener,
    tls: Option<Arc<ServerConfig>>,
) -> ReceiverStream<Result<ServerIo, io::Error>> {
    let (tx, rx) = mpsc::channel(16);
    let acceptor = tls.map(TlsAcceptor::from);
    tokio::spawn(async move {
        loop {
            let stream = tokio::select! {
                r = listener.accept() => r,
                _ = tx.closed() => return,
            };
            let stream = match stream {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "plugin transport: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let tx = tx.clone();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let io: Box<dyn Io> = match acceptor {
                    None => Box::new(stream),
                    Some(a) => match tokio::time::timeout(Duration::from_secs(10), a.accept(stream)).await {
                        Ok(Ok(s)) => Box::new(s),
                        Ok(Err(e)) => {
                            tracing::warn!(error = %e, "plugin transport: TLS handshake refused");
                            return;
                        }
                        Err(_) => {
                            tracing::warn!("plugin transport: TLS handshake timed out");
                            return;
                        }
                    },
                };
                let _ = tx.send(Ok(ServerIo(io))).await;
            });
        }
    });
    ReceiverStream::new(rx)
}

/// Where a peer listens.
#[derive(Debug, Clone)]
pub(crate) enum Addr {
    Unix(PathBuf),
    Tcp(String),
}

impl Addr {
    /// `None` for a network type other than `unix` and `tcp`.
    pub(crate) fn parse(network: &str, address: &str) -> Option<Addr> {
        match network {
            "unix" => Some(Addr::Unix(PathBuf::from(address))),
            "tcp" => Some(Addr::Tcp(address.to_string())),
            _ => None,
        }
    }
}

async fn dial(addr: Addr, tls: Option<Arc<ClientConfig>>) -> io::Result<TokioIo<Box<dyn Io>>> {
    let plain: Box<dyn Io> = match &addr {
        Addr::Unix(p) => Box::new(UnixStream::connect(p).await?),
        Addr::Tcp(a) => {
            let s = TcpStream::connect(a).await?;
            s.set_nodelay(true)?;
            Box::new(s)
        }
    };
    let io: Box<dyn Io> = match tls {
        None => plain,
        Some(cfg) => {
            let name = ServerName::try_from("localhost").map_err(|e| io::Error::other(e.to_string()))?;
            Box::new(TlsConnector::from(cfg).connect(name, plain).await?)
        }
    };
    Ok(TokioIo::new(io))
}

/// A gRPC channel to `addr`, connected now; tonic reconnects through the same connector if the
/// connection drops.
pub(crate) async fn channel(addr: Addr, tls: Option<Arc<ClientConfig>>) -> Result<Channel, tonic::transport::Error> {
    Endpoint::from_static("http://localhost")
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .connect_with_connector(tower::service_fn(move |_| dial(addr.clone(), tls.clone())))
        .await
}
