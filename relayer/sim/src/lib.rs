//! Deterministic simulation of whole relayer networks.
//!
//! N real [`relayer_protocol::Protocol`] state machines run in one thread on a virtual clock.
//! Everything around them is simulated from one seed: message delays, drops, duplicates and
//! reordering, partitions that heal, crashes and restarts (a restarted node gets back exactly
//! what its store acknowledged), and byzantine members ([`Behaviour`]). The chain is the real
//! rewards contract in cw-multi-test on virtual block time, so first-wins and signature checks
//! are the contract's own. Invariants ([`ViolationKind`]) are checked as events happen, and a
//! run is reproduced exactly by its seed ([`SimReport::trace_hash`] proves it).

mod adversary;
mod batch;
mod chain;
mod config;
mod invariants;
mod report;
mod scheduler;
mod world;

pub use adversary::Behaviour;
pub use batch::{BatchConfig, BatchReport, run_batch};
pub use config::{FaultProfile, PlantedBug, SimConfig, SimError};
pub use report::{SimReport, Violation, ViolationKind};
pub use world::run;
