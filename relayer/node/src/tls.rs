//! TLS for the node's HTTP API and for every HTTP client: rustls with the ring provider.
//! Servers load a PEM certificate chain and key; clients trust the system's roots plus an
//! operator's extra CA. The server finishes handshakes off the accept loop, each within
//! [`HANDSHAKE_TIMEOUT`] and holding its connection slot of [`GuardedListener`] and one of its
//! client's few handshake shares, so a client that stalls handshakes costs slots of its own
//! share, never the listener or the other clients.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use thiserror::Error;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
pub use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::server::TlsStream;

use crate::limits::{ClientAddr, GuardedListener, GuardedStream, Shares};

/// Time a client has to complete its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in progress at once; a connection past it is closed at once. A handshake's
/// work (a key exchange and a signature) takes about a millisecond, so this bounds the
/// clients that stall theirs more than the CPU: stalling all of them takes 16 networks.
pub const MAX_HANDSHAKES: usize = 64;
/// Handshakes in progress per client (IPv4 address or IPv6 /64); a further connection from
/// it is closed at once, so one client stalling handshakes holds 2 of [`MAX_HANDSHAKES`].
pub const MAX_HANDSHAKES_PER_CLIENT: usize = 2;
/// Handshakes in progress per network (IPv4 /24 or IPv6 /48).
pub const MAX_HANDSHAKES_PER_NETWORK: usize = 4;

/// A TLS file that cannot be used.
#[derive(Debug, Error)]
pub enum TlsError {
    /// Cannot read the file.
    #[error("TLS file {path}: {reason}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
    /// A private key readable by group or others.
    #[error(
        "TLS key {path} has mode {mode:o}; it must not be readable by group or others (chmod 600)"
    )]
    KeyPermissions {
        /// The key file.
        path: PathBuf,
        /// Its mode.
        mode: u32,
    },
    /// No certificate in a PEM file that should hold some.
    #[error("TLS file {0} holds no PEM certificate")]
    NoCertificate(PathBuf),
    /// The key does not fit the certificate, or rustls refuses the pair.
    #[error("TLS certificate {cert} and key {key}: {reason}")]
    Pair {
        /// The certificate chain.
        cert: PathBuf,
        /// The key.
        key: PathBuf,
        /// What rustls said.
        reason: String,
    },
    /// The HTTP client cannot be built with this CA.
    #[error("HTTP client with CA {path}: {reason}")]
    Client {
        /// The CA file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
}

fn read_error(path: &Path) -> impl Fn(rustls_pki_types::pem::Error) -> TlsError + '_ {
    move |err| TlsError::Read {
        path: path.to_path_buf(),
        reason: err.to_string(),
    }
}

/// The certificates of a PEM file (at least one).
pub fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certificates = CertificateDer::pem_file_iter(path)
        .map_err(read_error(path))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(read_error(path))?;
    if certificates.is_empty() {
        return Err(TlsError::NoCertificate(path.to_path_buf()));
    }
    Ok(certificates)
}

/// A server configuration from a PEM certificate chain and a PEM private key.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let chain = read_certificates(cert)?;
    let exposed = crate::keys::exposed_mode(key).map_err(|err| TlsError::Read {
        path: key.to_path_buf(),
        reason: err.to_string(),
    })?;
    if let Some(mode) = exposed {
        return Err(TlsError::KeyPermissions {
            path: key.to_path_buf(),
            mode,
        });
    }
    let private = PrivateKeyDer::from_pem_file(key).map_err(read_error(key))?;
    let config = ServerConfig::builder_with_provider(Arc::new(
        tokio_rustls::rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .and_then(|builder| {
        builder
            .with_no_client_auth()
            .with_single_cert(chain, private)
    })
    .map_err(|err| TlsError::Pair {
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
        reason: err.to_string(),
    })?;
    Ok(Arc::new(config))
}

/// The certificates of `extra_ca` as reqwest takes them.
pub fn extra_roots(extra_ca: &Path) -> Result<Vec<reqwest::Certificate>, TlsError> {
    read_certificates(extra_ca)?
        .iter()
        .map(|der| {
            reqwest::Certificate::from_der(der).map_err(|err| TlsError::Client {
                path: extra_ca.to_path_buf(),
                reason: err.to_string(),
            })
        })
        .collect()
}

/// An API listener that serves TLS over the connection limits of [`GuardedListener`].
pub struct TlsListener {
    local_addr: SocketAddr,
    ready: mpsc::Receiver<(TlsStream<GuardedStream>, SocketAddr)>,
    handshakes: JoinHandle<()>,
}

impl TlsListener {
    /// Accepts on `inner` and completes handshakes with `config` in their own tasks.
    pub fn new(mut inner: GuardedListener, config: Arc<ServerConfig>) -> std::io::Result<Self> {
        let local_addr = Listener::local_addr(&inner)?;
        let acceptor = TlsAcceptor::from(config);
        // Completed handshakes wait here for the server; their number is bounded by the
        // listener's connection cap, since each holds its slot.
        let (done, ready) = mpsc::channel(64);
        let in_progress = Arc::new(tokio::sync::Semaphore::new(MAX_HANDSHAKES));
        let shares = Shares::new(MAX_HANDSHAKES_PER_CLIENT, MAX_HANDSHAKES_PER_NETWORK);
        let handshakes = tokio::spawn(async move {
            loop {
                // Accepted first, so the loop never stops: a connection with no room is closed
                // at once (the stream dropped) rather than left in the backlog.
                let (stream, addr) = Listener::accept(&mut inner).await;
                let Some(share) = shares.admit(addr.ip()) else {
                    tracing::debug!(%addr, "closed: its client or network has its handshakes in progress");
                    continue;
                };
                let Ok(permit) = in_progress.clone().try_acquire_owned() else {
                    tracing::debug!(%addr, "closed: {MAX_HANDSHAKES} handshakes in progress");
                    continue;
                };
                let acceptor = acceptor.clone();
                let done = done.clone();
                tokio::spawn(async move {
                    let _held = (permit, share);
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = done.send((tls, addr)).await;
                        }
                        Ok(Err(err)) => tracing::debug!(%addr, "TLS handshake failed: {err}"),
                        Err(_) => tracing::debug!(%addr, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(Self {
            local_addr,
            ready,
            handshakes,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.handshakes.abort();
    }
}

impl Listener for TlsListener {
    type Io = TlsStream<GuardedStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, SocketAddr) {
        match self.ready.recv().await {
            Some(accepted) => accepted,
            // The handshake task never ends while the listener lives.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local_addr)
    }
}

impl Connected<IncomingStream<'_, TlsListener>> for ClientAddr {
    fn connect_info(stream: IncomingStream<'_, TlsListener>) -> Self {
        ClientAddr(*stream.remote_addr())
    }
}
