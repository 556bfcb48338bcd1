//! Deterministic simulation of whole relayer networks, running the production node core.
//!
//! Each simulated member is the production [`relayer_protocol::Engine`] (one protocol instance
//! per signer-set version: consensus, finalization, catch-up, verification) over the
//! production SQLite store
//! ([`relayer_store`], in memory). What stays here is the world only: a virtual clock, a
//! network that loses, delays, duplicates, reorders and partitions (or a wide-area model,
//! [`wan`]), signer-set rotations in the contract, crashes and restarts,
//! failing disks, byzantine members ([`Behaviour`]), and the real rewards contract in
//! cw-multi-test on virtual block time. Invariants ([`ViolationKind`]) are checked as events
//! happen, from what nodes do, and a run is reproduced exactly by its seed
//! ([`SimReport::trace_hash`] proves it). Bugs planted in the production code (feature
//! `planted-bugs`) must be found by seed.

mod adversary;
mod batch;
mod chain;
mod config;
mod effects;
mod events;
mod faults;
mod invariants;
mod network;
mod node;
mod report;
mod rotation;
mod scheduler;
pub mod wan;
mod world;

pub use adversary::Behaviour;
pub use batch::LatencySummary;
pub use batch::{BatchConfig, BatchReport, FailedRun, run_batch};
pub use config::{FaultProfile, SimConfig, SimError};
pub use relayer_protocol::PlantedBug;
pub use report::{Latency, SimReport, Violation, ViolationKind, WorkStats};
pub use world::run;
