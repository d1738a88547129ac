//! The accept loop: every connection is served by hyper directly, so each one
//! has bounded time before its request head is in (`HEADER_READ_TIMEOUT_SECONDS`).
//!
//! `axum::serve` gives no way to set hyper's `header_read_timeout`, and
//! hyper-util's protocol-sniffing `auto` builder waits without limit for the
//! first bytes of a connection; so a client that opens connections and sends
//! half a request head (slowloris) would hold them for ever. Here a plain
//! connection is HTTP/1.1 (with upgrades, for the proxy's websockets), and a
//! TLS connection is HTTP/2 or HTTP/1.1 as its ALPN says; the TLS handshake
//! has the same bound. The header-read deadline runs from the moment hyper
//! waits for a head — at connection start and again while a kept-alive
//! connection waits for its next request — until the whole head is parsed;
//! past it the connection is closed (a `408` when any byte of a head came).
//!
//! The client's address reaches handlers as axum's `ConnectInfo<SocketAddr>`.
//! Stopping: no new connections; open ones finish their current exchange
//! (HTTP/1.1 gets `Connection: close`, HTTP/2 a GOAWAY); the caller bounds how
//! long that may take.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::connect_info::IntoMakeServiceWithConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::Service;

/// How the listener serves: plain HTTP or TLS, and the head deadline.
#[derive(Clone)]
pub struct ServeConfig {
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// A request head (and, with TLS, the handshake) must arrive within this long.
    pub header_read_timeout: Duration,
}

/// Accept and serve until `shutdown` resolves, then wait until every
/// connection has finished its current exchange.
pub async fn serve(
    listener: TcpListener,
    config: ServeConfig,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut make: IntoMakeServiceWithConnectInfo<Router, SocketAddr> =
        router.into_make_service_with_connect_info::<SocketAddr>();
    let tls = config.tls.clone().map(tokio_rustls::TlsAcceptor::from);
    // Every connection task holds a receiver: `closed()` on the sender says they are all done.
    let (stopping, stop_seen) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: pause rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let service = match make.call(peer).await {
            Ok(service) => service,
            Err(never) => match never {},
        };
        let service = TowerToHyperService::new(service);
        let stop = stop_seen.clone();
        let tls = tls.clone();
        let head_timeout = config.header_read_timeout;
        tokio::spawn(async move {
            match tls {
                None => serve_http1(TokioIo::new(stream), service, head_timeout, stop).await,
                Some(acceptor) => {
                    let handshake =
                        tokio::time::timeout(head_timeout, acceptor.accept(stream)).await;
                    let stream = match handshake {
                        Ok(Ok(stream)) => stream,
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake timed out");
                            return;
                        }
                    };
                    let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
                    let io = TokioIo::new(stream);
                    if h2 {
                        serve_http2(io, service, stop).await
                    } else {
                        serve_http1(io, service, head_timeout, stop).await
                    }
                }
            }
        });
    }
    drop(stop_seen);
    let _ = stopping.send(true);
    stopping.closed().await;
    Ok(())
}

type Svc = TowerToHyperService<
    axum::middleware::AddExtension<Router, axum::extract::ConnectInfo<SocketAddr>>,
>;

async fn serve_http1<I>(io: TokioIo<I>, service: Svc, head_timeout: Duration, stop: Stop)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(head_timeout);
    let connection = builder.serve_connection(io, service).with_upgrades();
    until_stopped(connection, stop, |c| c.graceful_shutdown()).await;
}

async fn serve_http2<I>(io: TokioIo<I>, service: Svc, stop: Stop)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    builder.timer(TokioTimer::new());
    let connection = builder.serve_connection(io, service);
    until_stopped(connection, stop, |c| c.graceful_shutdown()).await;
}

type Stop = watch::Receiver<bool>;

/// Drive a connection; when a stop is asked, ask it to finish gracefully and drive it to the end.
async fn until_stopped<C, E>(
    connection: C,
    mut stop: Stop,
    graceful: impl FnOnce(std::pin::Pin<&mut C>),
) where
    C: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = async { let _ = stop.wait_for(|stopping| *stopping).await; } => {
            graceful(connection.as_mut());
            connection.await
        }
    };
    if let Err(e) = result {
        // A client that went away, or a head that did not come in time.
        tracing::debug!(error = %e, "connection ended with an error");
    }
}
