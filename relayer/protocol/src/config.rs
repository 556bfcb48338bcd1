//! What a protocol instance must know: the chain it signs for, the signer set, the observation
//! threshold, the mixnode set, the epoch clock and its timing, validated against the rules of
//! [`nym_rewards::rules`] (see `docs/design.md`, "Rules").

use nym_rewards::digest::DigestContext;
use nym_rewards::msg::EpochClock;
use nym_rewards::rules::faulty_tolerated;
use serde::{Deserialize, Serialize};
use strum::{IntoStaticStr, VariantArray};
use thiserror::Error;

use crate::signer_set::{SignerSet, SignerSetError};

/// How certified blocks reach the chain.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, IntoStaticStr, VariantArray,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum SubmitPolicy {
    /// One member per slot, in a per-epoch rank order; each queries the chain first.
    #[default]
    Staggered,
    /// Every member submits as soon as it holds a certificate.
    Race,
}

crate::derived_names!(SubmitPolicy, "policy");

/// The chain and contract every signature is bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainContext {
    /// Chain id.
    pub chain_id: String,
    /// Bech32 address of the rewards contract.
    pub contract: String,
}

impl ChainContext {
    /// The digest context of `epoch` under signer-set `version`.
    pub fn digest_context(&self, version: u32, epoch: u64) -> DigestContext<'_> {
        DigestContext {
            chain_id: &self.chain_id,
            contract_addr: &self.contract,
            signer_set_version: version,
            epoch,
        }
    }
}

/// Configuration of one protocol instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolConfig {
    /// Chain id and contract, bound into every signature.
    pub chain: ChainContext,
    /// The signer set in force.
    pub signer_set: SignerSet,
    /// Observations needed for a block (k).
    pub observation_threshold: usize,
    /// The mixnode set every observation covers, ascending.
    pub mixnodes: Vec<u32>,
    /// The contract's epoch clock.
    pub clock: EpochClock,
    /// How long to wait for more observations once `k` are held.
    pub observation_grace_ms: u64,
    /// Spacing of staggered submission slots (rank `r` submits `r` slots after it is
    /// certified) and of the later proposer groups (group `g` from `g (f + 1)` slots after
    /// the epoch end). Longer than two of the chain's block times (a submission waits for a
    /// block after the epoch end, then for the block including it) plus the time a
    /// transaction takes to be seen, so a later rank finds the earlier one's on chain.
    pub submit_slot_ms: u64,
    /// How often unfinished epochs are re-sent and re-queried; also the pause before a failed
    /// submission is retried.
    pub resend_interval_ms: u64,
    /// Submission policy.
    pub policy: SubmitPolicy,
    /// How many past epochs a node still works on (after a restart or a partition).
    pub catch_up_epochs: u64,
}

/// A configuration that breaks a rule.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    /// The signer set breaks a rule.
    #[error("{0}")]
    SignerSet(#[from] SignerSetError),
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

/// The default observation threshold n - f.
pub fn default_observation_threshold(members: usize) -> usize {
    members - faulty_tolerated(members)
}

/// The observation threshold a signer set of `members` runs with: the operator's `fixed` one
/// if it fits (`2f + 1 <= k <= n - f`), else n - f.
pub fn observation_threshold_for(fixed: Option<usize>, members: usize) -> usize {
    let f = faulty_tolerated(members);
    fixed
        .filter(|k| (2 * f + 1..=members - f).contains(k))
        .unwrap_or_else(|| default_observation_threshold(members))
}

impl ProtocolConfig {
    /// Checks the rules; returns warnings that do not stop a node (e.g. `t > n - f`).
    pub fn validate(&self) -> Result<Vec<String>, ConfigError> {
        self.signer_set.validate()?;
        let n = self.n();
        let t = self.signer_set.threshold;
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
        if self.chain.chain_id.len() > usize::from(u16::MAX) {
            return Err(ConfigError::FieldTooLong("chain_id"));
        }
        if self.chain.contract.len() > usize::from(u16::MAX) {
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
        self.signer_set.n()
    }

    /// Signatures a certificate needs (t).
    pub fn threshold(&self) -> usize {
        self.signer_set.threshold
    }

    /// End of `epoch` in unix milliseconds.
    pub fn epoch_end_ms(&self, epoch: u64) -> u64 {
        self.clock.epoch_end_ms(epoch)
    }

    /// The epoch running at `now_ms`, `None` before genesis.
    pub fn epoch_at_ms(&self, now_ms: u64) -> Option<u64> {
        self.clock.epoch_at_ms(now_ms)
    }

    /// The oldest epoch still worked on at `now_ms`: the catch-up window, plus the running
    /// epoch's predecessor. A restarted node restores its records from here on.
    pub fn window_start(&self, now_ms: u64) -> u64 {
        self.epoch_at_ms(now_ms).map_or(0, |current| {
            current.saturating_sub(self.catch_up_epochs + 1)
        })
    }

    /// Whether `epoch` is worth working on at `now_ms`: ended or running, and no older than
    /// [`Self::window_start`].
    pub fn in_window(&self, now_ms: u64, epoch: u64) -> bool {
        self.epoch_at_ms(now_ms)
            .is_some_and(|current| epoch <= current && epoch >= self.window_start(now_ms))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::signer_set::Signer;
    use nym_rewards::rules::default_threshold;

    pub(crate) fn config(n: usize) -> ProtocolConfig {
        ProtocolConfig {
            chain: ChainContext {
                chain_id: "testing".into(),
                contract: "wasm1contract".into(),
            },
            signer_set: SignerSet {
                version: 1,
                effective_from_epoch: 0,
                threshold: default_threshold(n),
                members: (0..n)
                    .map(|i| Signer {
                        key: [i as u8; 32],
                        address: format!("wasm1member{i}"),
                    })
                    .collect(),
            },
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
    fn policy_names_are_derived_and_unknown_ones_are_errors() {
        for policy in [SubmitPolicy::Staggered, SubmitPolicy::Race] {
            assert_eq!(policy.to_string().parse::<SubmitPolicy>(), Ok(policy));
            let serde_name = serde_json::to_value(policy).unwrap();
            assert_eq!(serde_name.as_str(), Some(<&str>::from(policy)));
        }
        let err = "fast".parse::<SubmitPolicy>().unwrap_err();
        assert_eq!(err.expected, vec!["staggered", "race"]);
        assert_eq!(
            err.to_string(),
            "unknown policy \"fast\": expected one of staggered, race"
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
            Err(ConfigError::ObservationThreshold { k: 4, .. })
        ));
        c.observation_threshold = 2;
        assert!(matches!(
            c.validate(),
            Err(ConfigError::ObservationThreshold { k: 2, .. })
        ));
        let mut c = config(4);
        c.signer_set.threshold = 1;
        assert_eq!(
            c.validate(),
            Err(ConfigError::SignerSet(SignerSetError::Threshold {
                threshold: 1,
                members: 4
            }))
        );
        let mut c = config(4);
        c.signer_set.threshold = 4;
        assert_eq!(c.validate().unwrap().len(), 1, "t > n - f warns");
        let mut c = config(4);
        c.mixnodes = vec![2, 1];
        assert_eq!(c.validate(), Err(ConfigError::Mixnodes));
    }

    #[test]
    fn the_window_covers_the_catch_up_epochs_and_the_running_one() {
        let c = config(4);
        // Epoch 10 runs from 100 s; catch_up_epochs = 3.
        let now = 100_500;
        assert_eq!(c.window_start(now), 6);
        assert!(c.in_window(now, 6) && c.in_window(now, 10));
        assert!(!c.in_window(now, 5) && !c.in_window(now, 11));
        assert_eq!(c.window_start(0), 0);
    }
}
