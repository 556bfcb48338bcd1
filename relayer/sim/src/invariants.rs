//! The invariants, checked as events happen: agreement, validity, one acceptance per epoch,
//! no conflicting echoes (across restarts too), liveness within a bound, durability of
//! acknowledged records.

use std::collections::BTreeMap;

use relayer_protocol::{Hash, MemberIndex, Message, MixnodeReward, RestoredState};

use crate::report::{Violation, ViolationKind};

/// Official data as a node stores it, or as the contract holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OfficialData {
    pub(crate) rewards: Vec<MixnodeReward>,
    pub(crate) data_hash: Hash,
    pub(crate) signatures: Vec<(MemberIndex, Vec<u8>)>,
}

#[derive(Default)]
pub(crate) struct Checker {
    checks: u64,
    violations: Vec<Violation>,
    /// `(node, epoch, proposer) -> data hash` of every echo (or own block) an honest node sent.
    signed: BTreeMap<(usize, u64, MemberIndex), Hash>,
    /// Per epoch and mixnode: the (min, max) of honest observations.
    honest_range: BTreeMap<u64, BTreeMap<u32, (u16, u16)>>,
    accepted: BTreeMap<u64, u32>,
    acknowledged: BTreeMap<usize, BTreeMap<(u64, MemberIndex), Hash>>,
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
            Message::Send(block) => (block.epoch, block.proposer, block.data_hash),
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

    /// `node`'s store acknowledged an echo decision.
    pub(crate) fn acknowledged(&mut self, node: usize, epoch: u64, proposer: u16, hash: Hash) {
        self.acknowledged
            .entry(node)
            .or_default()
            .insert((epoch, proposer), hash);
    }

    /// `node` restarts with `restored`: every acknowledged decision must be back.
    pub(crate) fn restarted(&mut self, at_ms: u64, node: usize, restored: &RestoredState) {
        let acknowledged = self.acknowledged.get(&node).cloned().unwrap_or_default();
        for ((epoch, proposer), hash) in acknowledged {
            self.checks += 1;
            if !restored.echo_decisions.contains(&(epoch, proposer, hash)) {
                self.violate(
                    ViolationKind::LostAcknowledged,
                    at_ms,
                    Some(epoch),
                    Some(node),
                    format!("echo decision for proposer {proposer} lost across a restart"),
                );
            }
        }
    }

    /// An honest node stored `stored` as official; the contract holds `record`.
    pub(crate) fn official(
        &mut self,
        at_ms: u64,
        node: usize,
        epoch: u64,
        stored: &OfficialData,
        record: &OfficialData,
    ) {
        self.checks += 1;
        if stored != record {
            self.violate(
                ViolationKind::Agreement,
                at_ms,
                Some(epoch),
                Some(node),
                "stored official data differs from the contract's".into(),
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

    /// A protocol instance panicked.
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
    fn lost_acknowledged_decisions_are_violations() {
        let mut checker = Checker::default();
        checker.acknowledged(2, 5, 1, [4; 32]);
        checker.restarted(
            1,
            2,
            &RestoredState {
                echo_decisions: vec![(5, 1, [4; 32])],
                final_epochs: vec![],
            },
        );
        assert!(checker.violations.is_empty());
        checker.restarted(2, 2, &RestoredState::default());
        assert_eq!(checker.violations[0].kind, ViolationKind::LostAcknowledged);
    }
}
