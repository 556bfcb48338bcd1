//! The one error type of the developer tooling library.

use std::time::Duration;

use relayer_node::StartError;
use relayer_node::chain::ChainError;
use relayer_node::cluster::ManifestError;
use relayer_node::keys::KeyError;
use relayer_node::net::NetError;
use relayer_store::StoreError;
use thiserror::Error;

/// Why a devnet, a cluster or a benchmark could not do its work.
#[derive(Debug, Error)]
pub enum DevError {
    /// A file or directory operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The chain failed.
    #[error("chain: {0}")]
    Chain(#[from] ChainError),
    /// A node did not start.
    #[error("starting a node: {0}")]
    Start(#[from] StartError),
    /// The network could not bind.
    #[error("{0}")]
    Net(#[from] NetError),
    /// A store read failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// A cluster manifest failed.
    #[error("{0}")]
    Manifest(#[from] ManifestError),
    /// A key could not be written.
    #[error("{0}")]
    Key(#[from] KeyError),
    /// A TLS file cannot be used.
    #[error("{0}")]
    Tls(#[from] relayer_node::tls::TlsError),
    /// A node's mixnode set.
    #[error("{0}")]
    MixnodeSet(#[from] relayer_node::mixnode_set::SetError),
    /// The browser auditor's files.
    #[error("{0}")]
    AuditorAssets(#[from] relayer_node::auditor_assets::AssetsError),
    /// A config could not be written.
    #[error("writing a node config: {0}")]
    Config(#[from] toml::ser::Error),
    /// A JSON report could not be written.
    #[error("encoding JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// An option out of range.
    #[error("{0}")]
    Invalid(String),
    /// An epoch did not become final in time.
    #[error("epoch {epoch} not final on every node within {waited:?}")]
    Timeout {
        /// The epoch.
        epoch: u64,
        /// How long it was waited for.
        waited: Duration,
    },
    /// An epoch expected on chain is not.
    #[error("epoch {0} is not on chain")]
    NotOnChain(u64),
    /// A node expected to hold an epoch does not.
    #[error("{node} holds no official data for epoch {epoch}")]
    Missing {
        /// The node.
        node: String,
        /// The epoch.
        epoch: u64,
    },
    /// A node stopped while it was waited for.
    #[error("{0} stopped")]
    Stopped(String),
    /// The process cannot open enough files.
    #[error("{0}")]
    Resources(String),
    /// A plot could not be drawn.
    #[error("plotting {path}: {reason}")]
    Plot {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
}

impl DevError {
    /// An I/O error with what was being done.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            what: what.into(),
            source,
        }
    }
}
