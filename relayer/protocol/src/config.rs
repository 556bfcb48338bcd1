//! What a protocol instance must know: the signer set, thresholds, the mixnode set, the epoch
//! clock and its timing, all validated against the rules of DESIGN section 0.

use nym_rewards::msg::EpochClock;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// How certified blocks reach the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SubmitPolicy {
    /// One member per slot, in a per-epoch rank order; each queries the chain first.
    #[default]
    Staggered,
    /// Every member submits as soon as it holds a certificate.
    Race,
}

impl SubmitPolicy {
    /// The lowercase name used in configs, on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            SubmitPolicy::Staggered => "staggered",
            SubmitPolicy::Race => "race",
        }
    }
}

/// A policy name that is neither `staggered` nor `race`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown policy {0:?}: expected staggered or race")]
pub struct UnknownPolicy(pub String);

impl std::str::FromStr for SubmitPolicy {
    type Err = UnknownPolicy;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        [SubmitPolicy::Staggered, SubmitPolicy::Race]
            .into_iter()
            .find(|policy| policy.name() == text)
            .ok_or_else(|| UnknownPolicy(text.to_string()))
    }
}

/// Configuration of one protocol instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolConfig {
    /// Chain id, bound into every signature.
    pub chain_id: String,
    /// Contract address, bound into every signature.
    pub contract_addr: String,
    /// Signer-set version in force.
    pub signer_set_version: u32,
    /// ed25519 public keys of the members, in signer-index order.
    pub members: Vec<[u8; 32]>,
    /// Signatures needed for a certificate (the contract's threshold t).
    pub threshold: usize,
    /// Observations needed for a block (k).
    pub observation_threshold: usize,
    /// The mixnode set every observation covers, ascending.
    pub mixnodes: Vec<u32>,
    /// The contract's epoch clock.
    pub clock: EpochClock,
    /// How long to wait for more observations once `k` are held.
    pub observation_grace_ms: u64,
    /// Spacing of staggered submission slots.
    pub submit_slot_ms: u64,
    /// How often unfinished epochs are re-sent and re-queried.
    pub resend_interval_ms: u64,
    /// Submission policy.
    pub policy: SubmitPolicy,
    /// How many past epochs a node still works on (after a restart or a partition).
    pub catch_up_epochs: u64,
}

/// A configuration that breaks a rule.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    /// No members, or more than 256.
    #[error("the signer set needs 1 to 256 members, got {0}")]
    MemberCount(usize),
    /// Threshold outside `3t > n`, `t <= n`.
    #[error("threshold {threshold} breaks 3t > n and t <= n for n = {members}")]
    Threshold {
        /// t.
        threshold: usize,
        /// n.
        members: usize,
    },
    /// Observation threshold outside `2f+1 <= k <= n-f`.
    #[error("observation threshold {k} is outside {min}..={max} for n = {members}")]
    ObservationThreshold {
        /// k.
        k: usize,
        /// 2f+1.
        min: usize,
        /// n-f.
        max: usize,
        /// n.
        members: usize,
    },
    /// Mixnode set empty or not strictly ascending.
    #[error("the mixnode set must be non-empty and strictly ascending")]
    Mixnodes,
    /// A chain id or contract address too long for the digest's u16 length prefix.
    #[error("{0} is longer than 65535 bytes")]
    FieldTooLong(&'static str),
    /// A zero epoch length or interval.
    #[error("{0} must be positive")]
    ZeroDuration(&'static str),
}

/// f = floor((n-1)/3): faulty members tolerated.
pub fn faulty_tolerated(members: usize) -> usize {
    members.saturating_sub(1) / 3
}

/// The default observation threshold n - f.
pub fn default_observation_threshold(members: usize) -> usize {
    members - faulty_tolerated(members)
}

impl ProtocolConfig {
    /// Checks the rules; returns warnings that do not stop a node (e.g. `t > n - f`).
    pub fn validate(&self) -> Result<Vec<String>, ConfigError> {
        let n = self.members.len();
        if n == 0 || n > 256 {
            return Err(ConfigError::MemberCount(n));
        }
        let t = self.threshold;
        if t == 0 || t > n || 3 * t <= n {
            return Err(ConfigError::Threshold {
                threshold: t,
                members: n,
            });
        }
        let f = faulty_tolerated(n);
        let (min, max) = (2 * f + 1, n - f);
        let k = self.observation_threshold;
        if k < min || k > max {
            return Err(ConfigError::ObservationThreshold {
                k,
                min,
                max,
                members: n,
            });
        }
        if self.mixnodes.is_empty() || self.mixnodes.windows(2).any(|pair| pair[0] >= pair[1]) {
            return Err(ConfigError::Mixnodes);
        }
        if self.chain_id.len() > usize::from(u16::MAX) {
            return Err(ConfigError::FieldTooLong("chain_id"));
        }
        if self.contract_addr.len() > usize::from(u16::MAX) {
            return Err(ConfigError::FieldTooLong("contract_addr"));
        }
        if self.clock.epoch_length_secs == 0 {
            return Err(ConfigError::ZeroDuration("epoch_length_secs"));
        }
        if self.resend_interval_ms == 0 {
            return Err(ConfigError::ZeroDuration("resend_interval_ms"));
        }
        let mut warnings = Vec::new();
        if t > n - f {
            warnings.push(format!(
                "threshold {t} > n - f = {}: epochs stall if {f} members are down",
                n - f
            ));
        }
        Ok(warnings)
    }

    /// Number of members.
    pub fn n(&self) -> usize {
        self.members.len()
    }

    /// End of `epoch` in unix milliseconds.
    pub fn epoch_end_ms(&self, epoch: u64) -> u64 {
        let secs = self.clock.genesis_time.saturating_add(
            epoch
                .saturating_add(1)
                .saturating_mul(self.clock.epoch_length_secs),
        );
        secs.saturating_mul(1_000)
    }

    /// The epoch running at `now_ms`, `None` before genesis.
    pub fn epoch_at_ms(&self, now_ms: u64) -> Option<u64> {
        self.clock.epoch_at(now_ms / 1_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn config(n: usize) -> ProtocolConfig {
        ProtocolConfig {
            chain_id: "testing".into(),
            contract_addr: "wasm1contract".into(),
            signer_set_version: 1,
            members: (0..n).map(|i| [i as u8; 32]).collect(),
            threshold: 2 * n / 3 + 1,
            observation_threshold: default_observation_threshold(n),
            mixnodes: vec![1, 2, 3],
            clock: EpochClock {
                genesis_time: 0,
                epoch_length_secs: 10,
            },
            observation_grace_ms: 100,
            submit_slot_ms: 100,
            resend_interval_ms: 500,
            policy: SubmitPolicy::Staggered,
            catch_up_epochs: 3,
        }
    }

    #[test]
    fn policy_names_round_trip_and_match_serde() {
        for policy in [SubmitPolicy::Staggered, SubmitPolicy::Race] {
            assert_eq!(policy.name().parse::<SubmitPolicy>(), Ok(policy));
        }
        assert_eq!(
            "fast".parse::<SubmitPolicy>(),
            Err(UnknownPolicy("fast".into()))
        );
    }

    #[test]
    fn defaults_follow_the_rules() {
        for n in 1..=40 {
            let warnings = config(n).validate().unwrap();
            assert!(warnings.is_empty(), "n = {n}: {warnings:?}");
        }
        assert_eq!(default_observation_threshold(4), 3);
        assert_eq!(default_observation_threshold(10), 7);
    }

    #[test]
    fn out_of_range_thresholds_are_rejected() {
        let mut c = config(4);
        c.observation_threshold = 4;
        assert!(matches!(
            c.validate(),
            Err(ConfigError::ObservationThreshold { .. })
        ));
        c.observation_threshold = 2;
        assert!(matches!(
            c.validate(),
            Err(ConfigError::ObservationThreshold { .. })
        ));
        let mut c = config(4);
        c.threshold = 1;
        assert!(matches!(c.validate(), Err(ConfigError::Threshold { .. })));
        let mut c = config(4);
        c.threshold = 4;
        assert_eq!(c.validate().unwrap().len(), 1, "t > n - f warns");
        let mut c = config(4);
        c.mixnodes = vec![2, 1];
        assert_eq!(c.validate(), Err(ConfigError::Mixnodes));
    }
}
