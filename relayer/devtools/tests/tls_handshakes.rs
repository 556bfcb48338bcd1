//! The API's TLS listener under clients that stall their handshakes: one client (or network)
//! holds only its few handshake shares, so another client is served at once instead of after
//! the stalled handshakes time out.

#![allow(clippy::unwrap_used)] // test code

use std::net::{IpAddr, SocketAddr};

use relayer_devtools::pki::write_dev_pki;
use relayer_node::api::{ApiLimits, serve_router};
use relayer_node::tls::{self, HANDSHAKE_TIMEOUT, MAX_HANDSHAKES_PER_CLIENT};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpSocket, TcpStream};

/// A TCP connection to `server` from the loopback address `from`, which sends nothing.
async fn silent_connection(from: [u8; 4], server: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((from, 0))).unwrap();
    socket.connect(server).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_stalling_handshakes_does_not_block_other_clients() {
    let dir = tempfile::tempdir().unwrap();
    let pki = write_dev_pki(dir.path(), &["127.0.0.1"]).unwrap();
    let config = tls::server_config(&pki.cert, &pki.key).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let server = listener.local_addr().unwrap();
    let router = axum::Router::new().route("/", axum::routing::get(|| async { "ok" }));
    let (_stop, shutdown) = tokio::sync::watch::channel(false);
    let _serving = serve_router(
        listener,
        router,
        &ApiLimits::default(),
        Some(config),
        shutdown,
    )
    .unwrap();

    // 127.0.0.2 opens its share of handshakes and stalls them; one more is closed at once.
    let mut stalled = Vec::new();
    for _ in 0..MAX_HANDSHAKES_PER_CLIENT {
        stalled.push(silent_connection([127, 0, 0, 2], server).await);
    }
    let mut refused = silent_connection([127, 0, 0, 2], server).await;
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(HANDSHAKE_TIMEOUT / 2, refused.read(&mut byte))
        .await
        .expect("closed before its handshake could time out");
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "a third stalled handshake is closed: {read:?}"
    );

    // Another client is served while those handshakes are still stalled.
    let client = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(tls::extra_roots(&pki.ca).unwrap().remove(0))
        .local_address(IpAddr::from([127, 0, 0, 3]))
        .build()
        .unwrap();
    let answer = tokio::time::timeout(
        HANDSHAKE_TIMEOUT / 2,
        client.get(format!("https://{server}/")).send(),
    )
    .await
    .expect("served before the stalled handshakes time out")
    .unwrap();
    assert_eq!(answer.text().await.unwrap(), "ok");
    drop(stalled);
}
