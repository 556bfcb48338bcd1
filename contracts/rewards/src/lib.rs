//! `nym-rewards`: a CosmWasm contract that stores, once per epoch, the mixnode reward data that a
//! threshold of the signer set (the Nym-API instances) signed with ed25519.
//!
//! Built with the `library` feature it exports no wasm entry points, so other crates (the relayer)
//! can link it: its messages, its state types, the contract functions (to run the real contract
//! in cw-multi-test) and, above all, the canonical digest in [`digest`], the one implementation
//! of the bytes every signer signs.

pub mod clock;
pub mod contract;
pub mod digest;
pub mod epochs;
pub mod error;
pub mod migration;
pub mod msg;
pub mod packing;
pub mod records;
pub mod rules;
pub mod signer_set;
pub mod state;

pub use crate::error::ContractError;

/// Contract name recorded with cw2.
pub const CONTRACT_NAME: &str = "crates.io:nym-rewards";
/// Contract version recorded with cw2.
pub const CONTRACT_VERSION: &str = env!("CARGO_PKG_VERSION");
