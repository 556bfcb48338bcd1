//! The relayer node runtime: a thin tokio layer around the pure `relayer-protocol` state
//! machine. It owns networking (libp2p), storage (SQLite through `relayer-store`), the chain
//! (wasmd over cosmrs, or any [`chain::Chain`]) and the HTTP API, and carries out the actions
//! the protocol asks for. Developer tooling (devnets, the embedded chain, benchmarks, the
//! simulator) lives in `relayer-devtools`, outside the operator's binary.

pub mod api;
pub mod auditor_assets;
pub mod chain;
pub mod cluster;
pub mod config;
pub mod connections;
pub mod dashboard;
pub mod db;
mod driver;
pub mod duration_ms;
pub mod health;
pub mod http;
pub mod inbox;
pub mod keys;
mod limits;
pub mod metrics;
pub mod mixnode_set;
pub mod monitor;
pub mod net;
pub mod outbox;
pub mod peer_streams;
pub mod process;
pub mod runtime;
pub mod sample_source;
pub mod sampling;
pub mod signer_sets;
pub mod stream_behaviour;
mod text_serde;
pub mod tls;

pub use runtime::{NodeSettings, RunningNode, StartError, start_node};

/// Milliseconds since the unix epoch by the wall clock.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}
