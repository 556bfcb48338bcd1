//! The relayer node: a thin tokio runtime around the pure `relayer-protocol` state machine.
//! It owns networking (libp2p), storage (SQLite), the chain (embedded cw-multi-test or wasmd)
//! and the HTTP API, and performs the actions the protocol asks for.

pub mod api;
pub mod audit;
pub mod bench;
pub mod chain;
pub mod cluster;
pub mod config;
pub mod dashboard;
pub mod deploy;
pub mod devnet;
pub mod keys;
pub mod metrics;
pub mod metrics_gen;
pub mod net;
pub mod node;
pub mod official;
pub mod proof;
pub mod store;
pub mod wire;

/// Milliseconds since the unix epoch by the wall clock.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}
