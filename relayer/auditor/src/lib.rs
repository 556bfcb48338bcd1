//! The auditor library: everything a third party needs to check an epoch's reward data
//! without trusting the node that served it, and nothing else (no async runtime, no
//! networking, no storage; it builds for WebAssembly).
//!
//! - [`audit_copy`]: a node's copy of an epoch against the contract's record and signer set
//!   (what `relayer verify` does once it has fetched the three);
//! - proof bundles ([`ProofBundle`], [`verify_bundle`], [`signer_set_hash`]): an epoch's data,
//!   signatures and signer set in one file, checked against a trust anchor the auditor picks.
//!
//! - [`Report`]: what a front end shows of either check (the verdict or the failed check by
//!   name, the digest, each signature, each mixnode);
//! - [`comet_rpc`]: contract queries over CometBFT's RPC as URLs and JSON answers, for front
//!   ends without a Cosmos SDK client (the browser).
//!
//! Both run the protocol crate's two checks (certified, accepted), the same code the nodes
//! run when a loser checks the winner's copy.

mod audit;
mod bundle;
pub mod comet_rpc;
#[cfg(test)]
mod fixtures;
mod report;

pub use audit::{AuditError, audit_copy, check_deployment};
pub use bundle::{
    BundleError, PROOF_FORMAT, ProofBundle, SIGNER_SET_DOMAIN, TrustAnchor, signer_set_hash,
    verify_bundle,
};
pub use relayer_protocol::{
    Certified, ChainContext, NotAccepted, NotCertified, OfficialEpoch, Verdict, VerifyError,
};
pub use report::{MixnodeCheck, Outcome, Report, SignatureCheck};
