//! The accept loop both mocks run: plain TCP (HTTP/1.1 and h2c with prior knowledge) or TLS
//! (ALPN `h2` / `http/1.1`), each connection served by hyper-util's auto builder until the
//! mock is shut down.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::tls::TlsError;

/// A TLS handshake that takes longer than this is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Concurrent HTTP/2 streams allowed per connection (APNs allows about 1000).
const MAX_CONCURRENT_STREAMS: u32 = 1000;

/// Why a mock could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The listening socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The certificate or the TLS configuration could not be built.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// A key given in the options is not a valid PEM key.
    #[error("invalid key in the options: {0}")]
    Key(#[from] jsonwebtoken::errors::Error),
}

/// What the accept loop knows about a connection, added to each of its requests.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ConnectionInfo {
    /// The client presented a TLS certificate that the server verified.
    pub client_certificate: bool,
}

/// The running listeners of one mock; dropping it stops them.
pub(crate) struct Listeners {
    cancel: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl Listeners {
    pub(crate) fn new() -> Self {
        Self {
            cancel: CancellationToken::new(),
            tasks: Vec::new(),
        }
    }

    /// Binds `addr` (port 0 picks a free port) and returns the listener with its address.
    pub(crate) async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), StartError> {
        let bind_error = |source| StartError::Bind { addr, source };
        let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
        let local = listener.local_addr().map_err(bind_error)?;
        Ok((listener, local))
    }

    /// Serves `app` on `listener`, over TLS when `tls` is given.
    pub(crate) fn spawn(&mut self, listener: TcpListener, tls: Option<TlsAcceptor>, app: Router) {
        let cancel = self.cancel.clone();
        self.tasks
            .push(tokio::spawn(accept_loop(listener, tls, app, cancel)));
    }

    /// Stops accepting, drops every open connection and waits until all tasks ended.
    pub(crate) async fn shutdown(&mut self) {
        self.cancel.cancel();
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
    }
}

impl Drop for Listeners {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    app: Router,
    cancel: CancellationToken,
) {
    let tls = tls.map(Arc::new);
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            () = cancel.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let task = serve_connection(stream, tls.clone(), app.clone(), cancel.clone());
                    connections.spawn(task);
                }
                Err(error) => {
                    // Usually out of file descriptors: back off instead of spinning.
                    tracing::warn!(%error, "mock accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
        while connections.try_join_next().is_some() {}
    }
    connections.shutdown().await;
}

async fn serve_connection(
    stream: TcpStream,
    tls: Option<Arc<TlsAcceptor>>,
    app: Router,
    cancel: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    let Some(acceptor) = tls else {
        serve_io(stream, app, ConnectionInfo::default(), cancel).await;
        return;
    };

    let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => {
            tracing::debug!(%error, "mock TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!("mock TLS handshake timed out");
            return;
        }
    };
    let client_certificate = stream
        .get_ref()
        .1
        .peer_certificates()
        .is_some_and(|c| !c.is_empty());
    serve_io(stream, app, ConnectionInfo { client_certificate }, cancel).await;
}

async fn serve_io<I>(io: I, app: Router, info: ConnectionInfo, cancel: CancellationToken)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = app.map_request(move |mut request: Request<Incoming>| {
        request.extensions_mut().insert(info);
        request
    });

    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http2()
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS);
    let connection = builder.serve_connection(TokioIo::new(io), TowerToHyperService::new(service));
    tokio::select! {
        result = connection => {
            if let Err(error) = result {
                tracing::debug!(error = %error, "mock connection ended with an error");
            }
        }
        () = cancel.cancelled() => {}
    }
}

/// The address a local client should dial for a listener bound to `addr`: an unspecified
/// address (`0.0.0.0`, `::`) becomes the matching loopback address.
pub(crate) fn connectable(addr: SocketAddr) -> SocketAddr {
    let ip = match addr.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => std::net::Ipv4Addr::LOCALHOST.into(),
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => std::net::Ipv6Addr::LOCALHOST.into(),
        ip => ip,
    };
    SocketAddr::new(ip, addr.port())
}
