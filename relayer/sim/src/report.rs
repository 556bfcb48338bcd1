//! The JSON report of a run: what was simulated, which faults were injected, how many
//! invariant checks ran, and every violation with the virtual time it happened at.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::adversary::Behaviour;
use crate::config::SimConfig;

/// Which invariant broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ViolationKind {
    /// An honest node stores official data that differs from the contract's.
    Agreement,
    /// An accepted value lies outside the range of honest observations.
    Validity,
    /// The contract accepted two submissions for one epoch.
    DoubleAcceptance,
    /// An honest node signed two different blocks of one proposer for one epoch.
    ConflictingEcho,
    /// An epoch was not final within its bound although at most f nodes were faulty.
    Liveness,
    /// An honest node that stayed up does not hold the official data of an accepted epoch by
    /// its deadline.
    OfficialMissing,
    /// An honest node computed more aggregates than one per proposer and epoch (plus its
    /// own proposals).
    UnboundedWork,
    /// A protocol instance panicked.
    Panic,
    /// An honest node's message has no wire encoding (a real node would drop it).
    Unencodable,
}

/// One broken invariant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// Which invariant.
    pub kind: ViolationKind,
    /// Virtual time, ms since the unix epoch.
    pub at_ms: u64,
    /// The epoch concerned.
    pub epoch: Option<u64>,
    /// The node concerned.
    pub node: Option<usize>,
    /// What was seen.
    pub detail: String,
}

/// Message counts of the simulated network.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageStats {
    /// Messages handed to the network.
    pub sent: u64,
    /// Messages a running node received.
    pub delivered: u64,
    /// Lost to drops, partitions or a crashed receiver.
    pub lost: u64,
    /// Inputs the protocol refused (all causes, byzantine ones included).
    pub rejected: u64,
    /// Bytes handed to the network, in the nodes' wire encoding, by the epoch the messages
    /// are about.
    pub bytes_by_epoch: BTreeMap<u64, u64>,
    /// Messages with no wire encoding, dropped as a node drops them (a byzantine member's
    /// garbage; an honest one's is a violation).
    pub unencodable: u64,
}

/// Work done by the honest members, counted from what they send and the counters they
/// export (a restarted node's counters start again from zero).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkStats {
    /// Distinct `(epoch, proposer)` blocks honest members sent.
    pub proposals: u64,
    /// Aggregates computed, summed over honest members.
    pub aggregates: u64,
    /// Most aggregates computed by one honest member.
    pub max_aggregates_at_a_node: u64,
    /// ed25519 verifications, summed over honest members.
    pub signature_verifications: u64,
}

/// How long epochs took, one entry per epoch on chain, in epoch order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Latency {
    /// From the epoch's end to the contract accepting it, ms.
    pub accepted_ms: Vec<u64>,
    /// From the epoch's end until the last node that stored its official data did, ms.
    pub stored_ms: Vec<u64>,
}

/// Everything a run produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimReport {
    /// The run.
    pub config: SimConfig,
    /// Byzantine members and their behaviour.
    pub byzantine: BTreeMap<usize, Behaviour>,
    /// Epochs simulated.
    pub epochs_simulated: u64,
    /// Epochs stored on chain by the end.
    pub epochs_final: u64,
    /// Epochs on chain per signer-set version that certified them.
    pub epochs_by_version: BTreeMap<u32, u64>,
    /// Submission transactions sent to the contract.
    pub chain_txs: u64,
    /// Faults injected, by kind.
    pub faults: BTreeMap<String, u64>,
    /// Network counts.
    pub messages: MessageStats,
    /// Honest members' work.
    pub work: WorkStats,
    /// How long epochs took.
    pub latency: Latency,
    /// Invariant checks performed.
    pub invariant_checks: u64,
    /// Broken invariants (empty on a good run).
    pub violations: Vec<Violation>,
    /// Virtual time simulated, ms.
    pub virtual_ms: u64,
    /// sha256 over every processed event: equal for equal seeds.
    pub trace_hash: String,
}

impl SimReport {
    /// Whether every invariant held.
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }
}
