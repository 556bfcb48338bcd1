//! What a run simulates: network size, epochs, fault profile, submission policy, and an
//! optional planted bug (to prove the invariants catch one).

use std::str::FromStr;

use relayer_protocol::SubmitPolicy;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Which faults a run injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FaultProfile {
    /// Short, reliable delays only.
    None,
    /// Delays, drops, duplicates, reordering and healing partitions.
    Network,
    /// Crashes and restarts (at most f nodes down at once) on a mildly delayed network.
    Crash,
    /// f byzantine members on a mildly delayed network.
    Byzantine,
    /// Everything: network faults, and crashed plus byzantine members never more than f.
    All,
}

impl FaultProfile {
    /// Every profile, mildest first.
    pub const ALL: [FaultProfile; 5] = [
        FaultProfile::None,
        FaultProfile::Network,
        FaultProfile::Crash,
        FaultProfile::Byzantine,
        FaultProfile::All,
    ];

    pub(crate) fn network_faults(self) -> bool {
        matches!(self, FaultProfile::Network | FaultProfile::All)
    }

    pub(crate) fn crashes(self) -> bool {
        matches!(self, FaultProfile::Crash | FaultProfile::All)
    }

    pub(crate) fn byzantine(self) -> bool {
        matches!(self, FaultProfile::Byzantine | FaultProfile::All)
    }
}

impl FromStr for FaultProfile {
    type Err = SimError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "none" => Ok(FaultProfile::None),
            "network" => Ok(FaultProfile::Network),
            "crash" => Ok(FaultProfile::Crash),
            "byzantine" => Ok(FaultProfile::Byzantine),
            "all" => Ok(FaultProfile::All),
            other => Err(SimError::UnknownProfile(other.to_string())),
        }
    }
}

/// A deliberate bug in the simulated node driver, for testing that the simulator finds bugs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PlantedBug {
    /// The store forgets acknowledged echo decisions on restart (a missing fsync).
    ForgetEchoDecisions,
    /// Losers store the winner's copy of the official data without verifying it.
    TrustWinnerCopy,
}

impl FromStr for PlantedBug {
    type Err = SimError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "forget-echo-decisions" => Ok(PlantedBug::ForgetEchoDecisions),
            "trust-winner-copy" => Ok(PlantedBug::TrustWinnerCopy),
            other => Err(SimError::UnknownBug(other.to_string())),
        }
    }
}

/// One simulated run, reproducible from these fields alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimConfig {
    /// Seed of every random choice.
    pub seed: u64,
    /// Members (4 to 64).
    pub nodes: usize,
    /// Epochs to simulate.
    pub epochs: u64,
    /// Mixnodes per epoch.
    pub mixnodes: usize,
    /// Faults to inject.
    pub faults: FaultProfile,
    /// Submission policy of every member.
    pub policy: SubmitPolicy,
    /// A planted bug, for testing the simulator itself.
    pub planted_bug: Option<PlantedBug>,
}

/// A run that cannot start.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SimError {
    /// Unknown `--faults` value.
    #[error("unknown fault profile {0:?}: expected none, network, crash, byzantine or all")]
    UnknownProfile(String),
    /// Unknown `--planted-bug` value.
    #[error("unknown planted bug {0:?}: expected forget-echo-decisions or trust-winner-copy")]
    UnknownBug(String),
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
    /// The contract refused to instantiate (a simulator bug).
    #[error("the contract refused to instantiate: {0}")]
    Chain(String),
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
        }
    }

    /// Checks the sizes.
    pub fn validate(&self) -> Result<(), SimError> {
        check_range("nodes", self.nodes as u64, 4, 64)?;
        check_range("epochs", self.epochs, 1, 100_000)?;
        check_range("mixnodes", self.mixnodes as u64, 1, 1_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_and_bugs_parse_and_bad_names_are_errors() {
        for profile in FaultProfile::ALL {
            let name = serde_json::to_value(profile).unwrap();
            assert_eq!(name.as_str().unwrap().parse::<FaultProfile>(), Ok(profile));
        }
        assert!(matches!(
            "chaos".parse::<FaultProfile>(),
            Err(SimError::UnknownProfile(_))
        ));
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
