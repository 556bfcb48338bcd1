//! A TLS-terminating TCP proxy for tests and the e2e run: https in front of a plain service
//! (wasmd's RPC), with a throwaway CA's certificate, so the clients' https paths run against
//! a real chain. Never for a real network, where the RPC provider terminates TLS.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use relayer_node::tls::ServerConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

/// Time a client has to complete its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts TLS on `listener` and relays each connection's bytes to `upstream`, until the
/// listener fails.
pub async fn run_tls_proxy(
    listener: TcpListener,
    upstream: SocketAddr,
    config: Arc<ServerConfig>,
) -> std::io::Result<()> {
    let acceptor = TlsAcceptor::from(config);
    loop {
        let (stream, client) = listener.accept().await?;
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let mut tls =
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(tls)) => tls,
                    _ => return tracing::debug!(%client, "TLS handshake failed"),
                };
            match TcpStream::connect(upstream).await {
                Ok(mut plain) => {
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                }
                Err(err) => tracing::warn!(%upstream, "proxy upstream unreachable: {err}"),
            }
        });
    }
}
