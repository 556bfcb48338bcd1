//! Developer tooling, kept out of the operator's binary: whole networks in one process on an
//! embedded chain (the real contract in cw-multi-test), clusters of keys and configs for a
//! local wasmd, the network benchmark, and gas and migration checks against a real wasmd.
//! The `relayer-dev` binary exposes them, and the simulator, one file per command.

pub mod bench;
pub mod browser;
pub mod browser_audit;
pub mod cluster;
pub mod devnet;
pub mod embedded_chain;
mod error;
pub mod help_check;
pub mod pki;
pub mod tls_proxy;
pub mod wasmd;

pub use error::DevError;
