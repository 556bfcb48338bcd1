//! The invariants, checked as events happen: agreement, validity, one acceptance per epoch,
//! no conflicting echoes (across restarts too), liveness within a bound, and every honest
//! node holding the official data of every accepted epoch, and bounded work (aggregate
//! computations, from the counters a node exports as metrics). They look only at what a node
//! does (messages it sends, data it stores, work it reports), never at its internals, so a
//! bug shows by its harm.

use std::collections::BTreeMap;

use nym_rewards::msg::EpochRewardsResponse;
use relayer_protocol::{Hash, MemberIndex, Message, MixnodeReward, OfficialEpoch};

use crate::report::{Violation, ViolationKind};

#[derive(Default)]
pub(crate) struct Checker {
    checks: u64,
    violations: Vec<Violation>,
    /// `(node, epoch, proposer) -> data hash` of every echo (or own block) an honest node sent.
    signed: BTreeMap<(usize, u64, MemberIndex), Hash>,
    /// Per epoch and mixnode: the (min, max) of honest observations.
    honest_range: BTreeMap<u64, BTreeMap<u32, (u16, u16)>>,
    accepted: BTreeMap<u64, u32>,
}

impl Checker {
    fn violate(
        &mut self,
        kind: ViolationKind,
        at_ms: u64,
        epoch: Option<u64>,
        node: Option<usize>,
        detail: String,
    ) {
        self.violations.push(Violation {
            kind,
            at_ms,
            epoch,
            node,
            detail,
        });
    }

    /// An honest node measured `values` for `epoch`.
    pub(crate) fn honest_observation(&mut self, epoch: u64, values: &[MixnodeReward]) {
        let ranges = self.honest_range.entry(epoch).or_default();
        for value in values {
            let range = ranges
                .entry(value.mix_id)
                .or_insert((value.uptime_bp, value.uptime_bp));
            range.0 = range.0.min(value.uptime_bp);
            range.1 = range.1.max(value.uptime_bp);
        }
    }

    /// An honest node sends `message`: it must never sign two blocks of one proposer.
    pub(crate) fn honest_message(&mut self, at_ms: u64, node: usize, message: &Message) {
        let (epoch, proposer, data_hash) = match message {
            Message::Echo(echo) => (echo.epoch, echo.proposer, echo.data_hash),
            Message::Block(block) => (block.epoch, block.proposer, block.data_hash),
            Message::BlockDigest(digest) => (digest.epoch, digest.proposer, digest.data_hash),
            _ => return,
        };
        self.checks += 1;
        let held = *self
            .signed
            .entry((node, epoch, proposer))
            .or_insert(data_hash);
        if held != data_hash {
            self.violate(
                ViolationKind::ConflictingEcho,
                at_ms,
                Some(epoch),
                Some(node),
                format!(
                    "signed {} and then {} for proposer {proposer}",
                    hex::encode(held),
                    hex::encode(data_hash)
                ),
            );
        }
    }

    /// The contract accepted `rewards` for `epoch`.
    pub(crate) fn accepted(&mut self, at_ms: u64, epoch: u64, rewards: &[MixnodeReward]) {
        self.checks += 1;
        let count = self.accepted.entry(epoch).or_default();
        *count += 1;
        if *count > 1 {
            let detail = format!("{count} accepted submissions");
            self.violate(
                ViolationKind::DoubleAcceptance,
                at_ms,
                Some(epoch),
                None,
                detail,
            );
        }
        let ranges = self.honest_range.get(&epoch).cloned().unwrap_or_default();
        for reward in rewards {
            self.checks += 1;
            match ranges.get(&reward.mix_id) {
                Some(&(low, high)) if (low..=high).contains(&reward.uptime_bp) => {}
                range => self.violate(
                    ViolationKind::Validity,
                    at_ms,
                    Some(epoch),
                    None,
                    format!(
                        "mixnode {} got {} outside the honest range {range:?}",
                        reward.mix_id, reward.uptime_bp
                    ),
                ),
            }
        }
    }

    /// An honest node stored `stored` as the official data of the epoch the contract holds
    /// as `record`: the data must be the contract's.
    pub(crate) fn official(
        &mut self,
        at_ms: u64,
        node: usize,
        stored: &OfficialEpoch,
        record: &EpochRewardsResponse,
    ) {
        self.checks += 1;
        let official = OfficialEpoch::from(record);
        let same = *stored == official;
        if !same {
            self.violate(
                ViolationKind::Agreement,
                at_ms,
                Some(record.epoch),
                Some(node),
                "stored official data differs from the contract's".into(),
            );
        }
    }

    /// By `epoch`'s deadline an honest node that has been up long enough to catch up on it
    /// must hold its official data.
    pub(crate) fn official_held(&mut self, at_ms: u64, epoch: u64, node: usize, held: bool) {
        self.checks += 1;
        if !held {
            self.violate(
                ViolationKind::OfficialMissing,
                at_ms,
                Some(epoch),
                Some(node),
                "no official data stored by the deadline".into(),
            );
        }
    }

    /// `epoch`'s liveness deadline has passed; it must be on chain.
    pub(crate) fn deadline(&mut self, at_ms: u64, epoch: u64, on_chain: bool) {
        self.checks += 1;
        if !on_chain {
            self.violate(
                ViolationKind::Liveness,
                at_ms,
                Some(epoch),
                None,
                "not final by its deadline".into(),
            );
        }
    }

    /// An honest node's aggregate computations since its start against the bound: one per
    /// proposer (itself included) per epoch it has handled.
    pub(crate) fn work(&mut self, at_ms: u64, node: usize, aggregates: u64, bound: u64) {
        self.checks += 1;
        if aggregates > bound {
            self.violate(
                ViolationKind::UnboundedWork,
                at_ms,
                None,
                Some(node),
                format!("{aggregates} aggregates computed, bound {bound}"),
            );
        }
    }

    /// A protocol instance panicked.
    /// Distinct `(epoch, proposer)` blocks honest members signed: the signed blocks whose
    /// signer is their proposer (a member never sends an echo of its own block).
    pub(crate) fn honest_proposals(&self) -> u64 {
        self.signed
            .keys()
            .filter(|(node, _, proposer)| *node == usize::from(*proposer))
            .count() as u64
    }

    /// An honest node's message could not be encoded.
    pub(crate) fn unencodable(&mut self, at_ms: u64, node: usize, epoch: u64, detail: String) {
        self.violate(
            ViolationKind::Unencodable,
            at_ms,
            Some(epoch),
            Some(node),
            detail,
        );
    }

    pub(crate) fn panicked(&mut self, at_ms: u64, node: usize, detail: String) {
        self.violate(ViolationKind::Panic, at_ms, None, Some(node), detail);
    }

    pub(crate) fn finish(self) -> (u64, Vec<Violation>) {
        (self.checks, self.violations)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use relayer_protocol::Echo;

    fn echo(proposer: u16, hash: u8) -> Message {
        Message::Echo(Echo {
            epoch: 3,
            proposer,
            data_hash: [hash; 32],
            signature: vec![],
        })
    }

    #[test]
    fn a_second_different_echo_is_a_violation() {
        let mut checker = Checker::default();
        checker.honest_message(1, 0, &echo(2, 1));
        checker.honest_message(2, 0, &echo(2, 1));
        checker.honest_message(3, 0, &echo(1, 7));
        checker.honest_message(3, 1, &echo(2, 9));
        assert!(checker.violations.is_empty());
        checker.honest_message(4, 0, &echo(2, 9));
        let (_, violations) = checker.finish();
        assert_eq!(violations.len(), 1);
        assert_eq!(violations[0].kind, ViolationKind::ConflictingEcho);
    }

    #[test]
    fn values_outside_the_honest_range_and_double_acceptance_are_violations() {
        let mut checker = Checker::default();
        let value = |uptime_bp| MixnodeReward {
            mix_id: 1,
            uptime_bp,
        };
        checker.honest_observation(0, &[value(10)]);
        checker.honest_observation(0, &[value(30)]);
        checker.accepted(1, 0, &[value(20)]);
        assert!(checker.violations.is_empty());
        checker.accepted(2, 0, &[value(31)]);
        let kinds: Vec<_> = checker.violations.iter().map(|v| v.kind).collect();
        assert_eq!(
            kinds,
            [ViolationKind::DoubleAcceptance, ViolationKind::Validity]
        );
    }

    #[test]
    fn official_data_other_than_the_contracts_is_an_agreement_violation() {
        use cosmwasm_std::{Addr, HexBinary, Timestamp};
        let record = EpochRewardsResponse {
            epoch: 2,
            signer_set_version: 1,
            data_hash: HexBinary::from(vec![1; 32]),
            rewards: vec![MixnodeReward {
                mix_id: 1,
                uptime_bp: 5,
            }],
            signatures: vec![],
            submitter: Addr::unchecked("n1a"),
            height: 3,
            time: Timestamp::from_seconds(1),
        };
        let mut checker = Checker::default();
        let good = OfficialEpoch::from(&record);
        checker.official(1, 0, &good, &record);
        assert!(checker.violations.is_empty());
        let mut tampered = good.clone();
        tampered.rewards[0].uptime_bp += 1;
        checker.official(2, 1, &tampered, &record);
        checker.official_held(3, 2, 3, false);
        let kinds: Vec<_> = checker.violations.iter().map(|v| v.kind).collect();
        assert_eq!(
            kinds,
            [ViolationKind::Agreement, ViolationKind::OfficialMissing]
        );
    }
}
