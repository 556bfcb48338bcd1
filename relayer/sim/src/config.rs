//! What a run simulates: network size, epochs, fault profile, submission policy, and an
//! optional planted bug (to prove the invariants catch one).

use relayer_protocol::{PlantedBug, SubmitPolicy};

use crate::adversary::Behaviour;
use crate::rotation::{EXTRA_NODES, LAST_SWITCH};
use serde::{Deserialize, Serialize};
use strum::{IntoStaticStr, VariantArray};
use thiserror::Error;

/// Which faults a run injects.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    IntoStaticStr,
    VariantArray,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum FaultProfile {
    /// Short, reliable delays only.
    None,
    /// Delays, drops, duplicates, reordering and healing partitions.
    Network,
    /// Crashes and restarts (at most f nodes down at once) and failing writes of official
    /// data, on a mildly delayed network.
    Crash,
    /// f byzantine members (any behaviour) on a mildly delayed network.
    Byzantine,
    /// One equivocating proposer, and (when f allows one more faulty member) an honest node
    /// crashed between its echo of the equivocator's block and the epoch's finality, which the
    /// equivocator then greets with its other block.
    Equivocation,
    /// Everything: network faults, failing writes, and crashed plus byzantine members never
    /// more than f.
    All,
    /// Crashes and restarts with no bound on how many members are down or abstaining at once
    /// (at least one stays up), on a mildly delayed network: beyond f only safety is promised,
    /// so the liveness deadline is not checked and an epoch never certified is counted as
    /// `epoch_lost` instead.
    Outage,
}

relayer_protocol::derived_names!(FaultProfile, "fault profile");

impl FaultProfile {
    /// Every profile, mildest first.
    pub const ALL: &'static [FaultProfile] = FaultProfile::VARIANTS;

    pub(crate) fn network_faults(self) -> bool {
        matches!(self, FaultProfile::Network | FaultProfile::All)
    }

    pub(crate) fn crashes(self) -> bool {
        matches!(
            self,
            FaultProfile::Crash | FaultProfile::All | FaultProfile::Outage
        )
    }

    /// Whether epochs must be final by their deadline: faulty members stay within f.
    pub(crate) fn liveness(self) -> bool {
        self != FaultProfile::Outage
    }

    pub(crate) fn byzantine(self) -> bool {
        matches!(self, FaultProfile::Byzantine | FaultProfile::All)
    }

    pub(crate) fn disk_faults(self) -> bool {
        matches!(self, FaultProfile::Crash | FaultProfile::All)
    }

    pub(crate) fn crash_after_echo(self) -> bool {
        matches!(self, FaultProfile::Equivocation | FaultProfile::All)
    }
}

/// One simulated run, reproducible from these fields alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimConfig {
    /// Seed of every random choice.
    pub seed: u64,
    /// Members of the first signer set (4 to 256, or 254 with `rotate`).
    pub nodes: usize,
    /// Epochs to simulate.
    pub epochs: u64,
    /// Mixnodes per epoch.
    pub mixnodes: usize,
    /// Faults to inject.
    pub faults: FaultProfile,
    /// Submission policy of every member.
    pub policy: SubmitPolicy,
    /// A bug planted in the production code, for testing the simulator itself (needs the
    /// `planted-bugs` feature).
    pub planted_bug: Option<PlantedBug>,
    /// The behaviour of every byzantine member (drawn per member when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub behaviour: Option<Behaviour>,
    /// Rotate the signer set while running: a member added, one removed, one replaced, the
    /// threshold changing with the size (needs at least 9 epochs; no byzantine profiles).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rotate: bool,
    /// Delays of a wide-area network (five regions, 5-150 ms one way with jitter, FIFO links
    /// of 100 Mbit/s) instead of the profile's uniform ones.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub wan: bool,
}

/// A run that cannot start.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SimError {
    /// A size outside what the simulator supports.
    #[error("{what} must be in {min}..={max}, got {got}")]
    OutOfRange {
        /// Which field.
        what: &'static str,
        /// Lower bound.
        min: u64,
        /// Upper bound.
        max: u64,
        /// The value.
        got: u64,
    },
    /// A planted bug was asked for in a build without the `planted-bugs` feature.
    #[error("planted bug {0} needs a build with the `planted-bugs` feature (debug builds only)")]
    PlantedBugsUnavailable(PlantedBug),
    /// The contract refused to instantiate (a simulator bug).
    #[error("the contract refused to instantiate: {0}")]
    Chain(String),
    /// A node's protocol instance or store could not be created (a simulator bug).
    #[error("node {node}: {reason}")]
    Node {
        /// The node.
        node: usize,
        /// Why.
        reason: String,
    },
}

fn check_range(what: &'static str, got: u64, min: u64, max: u64) -> Result<(), SimError> {
    if (min..=max).contains(&got) {
        Ok(())
    } else {
        Err(SimError::OutOfRange {
            what,
            min,
            max,
            got,
        })
    }
}

impl SimConfig {
    /// A run with 8 mixnodes and the staggered policy.
    pub fn new(seed: u64, nodes: usize, epochs: u64, faults: FaultProfile) -> Self {
        Self {
            seed,
            nodes,
            epochs,
            mixnodes: 8,
            faults,
            policy: SubmitPolicy::Staggered,
            planted_bug: None,
            behaviour: None,
            rotate: false,
            wan: false,
        }
    }

    /// Every node of the run: the first version's members, and those joining later.
    pub fn total_nodes(&self) -> usize {
        self.nodes + if self.rotate { EXTRA_NODES } else { 0 }
    }

    /// Checks the sizes, and that a planted bug can be planted in this build.
    pub fn validate(&self) -> Result<(), SimError> {
        if let Some(bug) = self
            .planted_bug
            .filter(|_| !relayer_protocol::PLANTED_BUGS_AVAILABLE)
        {
            return Err(SimError::PlantedBugsUnavailable(bug));
        }
        let extra = self.total_nodes() - self.nodes;
        check_range(
            "nodes",
            self.nodes as u64,
            4,
            (nym_rewards::rules::MAX_MEMBERS - extra) as u64,
        )?;
        check_range("epochs", self.epochs, 1, 100_000)?;
        if self.rotate {
            check_range("epochs", self.epochs, LAST_SWITCH + 2, 100_000)?;
        }
        check_range("mixnodes", self.mixnodes as u64, 1, 1_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_names_are_derived_and_unknown_ones_are_errors() {
        for &profile in FaultProfile::ALL {
            let name = serde_json::to_value(profile).unwrap();
            assert_eq!(name.as_str().unwrap().parse::<FaultProfile>(), Ok(profile));
            assert_eq!(profile.to_string(), name.as_str().unwrap());
        }
        let err = "chaos".parse::<FaultProfile>().unwrap_err();
        assert_eq!(err.kind, "fault profile");
        assert_eq!(
            "trust-winner-copy".parse::<PlantedBug>(),
            Ok(PlantedBug::TrustWinnerCopy)
        );
        assert!("".parse::<PlantedBug>().is_err());
    }

    #[test]
    fn sizes_are_checked() {
        assert!(
            SimConfig::new(1, 4, 3, FaultProfile::All)
                .validate()
                .is_ok()
        );
        let err = SimConfig::new(1, 3, 3, FaultProfile::All).validate();
        assert!(matches!(
            err,
            Err(SimError::OutOfRange { what: "nodes", .. })
        ));
        let err = SimConfig::new(1, 4, 0, FaultProfile::All).validate();
        assert!(matches!(
            err,
            Err(SimError::OutOfRange { what: "epochs", .. })
        ));
    }
}
