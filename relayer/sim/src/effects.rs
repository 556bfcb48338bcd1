//! What the world does for each action a node's protocol returns: messages go to the network,
//! writes go to the node's real store (and may fail, as a disk may), measurements come from
//! the world's honest values, chain calls go to the real contract, and a loser's fetch is
//! answered from the winner's store (tampered if the winner is byzantine). The decisions
//! about these answers are the protocol's.

use nym_rewards::msg::SignerSignature;
use nym_rewards::rules::MAX_UPTIME_BP;
use rand::Rng;
use relayer_protocol::{
    Action, FetchFailed, Input, Keypair, MemberIndex, OfficialEpoch, PersistRecord, ProtocolConfig,
    echo_digest,
};

use crate::adversary::Target;
use crate::events::{ChainCall, Event};
use crate::world::{MEASURE_DELAY_MS, World};

impl World {
    pub(crate) fn perform(&mut self, node: usize, action: Action) {
        let incarnation = self.nodes[node].incarnation;
        match action {
            Action::Send { to, message } => {
                if let Some(to) = self.node_of_peer(node, to) {
                    self.send(node, Target::One(to as MemberIndex), message);
                }
            }
            Action::Broadcast { message } => self.send(node, Target::All, message),
            Action::Persist { id, record } => {
                let delay = self.rng.gen_range(1..=3);
                let event = Event::Persisted {
                    node,
                    incarnation,
                    id,
                    record,
                };
                self.scheduler.after(delay, event);
            }
            Action::SetTimer { at_ms, timer } => self.scheduler.at(
                at_ms,
                Event::Timer {
                    node,
                    incarnation,
                    timer,
                },
            ),
            Action::Measure { epoch } => {
                let delay = self.rng.gen_range(1..=MEASURE_DELAY_MS);
                let event = Event::Measured {
                    node,
                    incarnation,
                    epoch,
                };
                self.scheduler.after(delay, event);
            }
            Action::ReadChain { epoch } => self.chain_call(node, ChainCall::Read(epoch)),
            Action::Submit { certificate } => {
                let withheld = self.nodes[node]
                    .adversary
                    .as_ref()
                    .is_some_and(|adversary| adversary.withholds_certificates());
                if withheld {
                    self.count_fault("withheld_certificate");
                } else {
                    self.chain_call(node, ChainCall::Submit(certificate));
                }
            }
            Action::FetchOfficial { epoch, from } => {
                let Some(from) = self.node_of_peer(node, from) else {
                    return;
                };
                let delay = self.network_delay() * 2;
                let event = Event::Fetch {
                    node,
                    incarnation,
                    epoch,
                    winner: from,
                };
                self.scheduler.after(delay, event);
            }
            Action::Certified { .. } | Action::Final { .. } => {}
            Action::Rejected { .. } => self.messages.rejected += 1,
        }
    }

    pub(crate) fn on_measured(&mut self, node: usize, incarnation: u32, epoch: u64) {
        if !self.nodes[node].current(incarnation) {
            return;
        }
        let f = relayer_protocol::faulty_tolerated(self.config.nodes);
        let missing_so_far = self.missing_measurements.get(&epoch).copied().unwrap_or(0);
        let missing = self.plan.missing_measurement > 0.0
            && missing_so_far < f
            && self.rng.gen_bool(self.plan.missing_measurement);
        let values = if missing {
            self.count_fault("missing_measurement");
            *self.missing_measurements.entry(epoch).or_default() += 1;
            None
        } else {
            self.measurement(node, epoch)
        };
        self.feed(node, Input::Measured { epoch, values });
    }

    /// A write reaches the node's store. Official data may fail to be written (a disk
    /// fault); an echo decision is written as the store writes it (planted bugs included).
    pub(crate) fn on_persisted(
        &mut self,
        node: usize,
        incarnation: u32,
        id: u64,
        record: PersistRecord,
    ) {
        if !self.nodes[node].current(incarnation) {
            return; // crashed before the write completed: never acknowledged
        }
        // Disks fail writes of official data and of own observations (both are retried).
        let fault = match record {
            PersistRecord::Official { .. } => Some("official_write_failure"),
            PersistRecord::OwnObservation { .. } => Some("observation_write_failure"),
            PersistRecord::EchoDecision { .. } => None,
        };
        if let Some(fault) = fault
            .filter(|_| self.plan.write_failure > 0.0 && self.rng.gen_bool(self.plan.write_failure))
        {
            self.count_fault(fault);
            return self.feed(node, Input::PersistFailed { id });
        }
        let Some(store) = self.nodes[node].store.as_ref() else {
            return;
        };
        let written = store.persist(&record, self.scheduler.now_ms());
        match written {
            Ok(outcome) => {
                if let PersistRecord::Official { official, .. } = &record {
                    self.check_stored_official(node, official.epoch);
                    let now = self.now();
                    let last = self.stored_at.entry(official.epoch).or_default();
                    *last = (*last).max(now);
                }
                let input = if outcome.acknowledges(&record) {
                    Input::Persisted { id }
                } else {
                    Input::PersistFailed { id }
                };
                self.feed(node, input);
            }
            Err(err) => {
                let now = self.now();
                self.checker
                    .panicked(now, node, format!("store error: {err}"));
                self.feed(node, Input::PersistFailed { id });
            }
        }
    }

    /// Agreement, on what an honest node's store now holds for `epoch`.
    fn check_stored_official(&mut self, node: usize, epoch: u64) {
        if self.nodes[node].adversary.is_some() {
            return;
        }
        let stored = self.nodes[node].official(epoch);
        if let (Some(stored), Some((record, _))) = (stored, self.chain.record(epoch)) {
            let now = self.now();
            self.checker.official(now, node, &stored.official, &record);
        }
    }

    fn chain_delay(&mut self) -> u64 {
        let (low, high) = self.network.chain_delay_ms;
        self.rng.gen_range(low..=high)
    }

    fn chain_call(&mut self, node: usize, call: ChainCall) {
        let incarnation = self.nodes[node].incarnation;
        let delay = self.chain_delay();
        self.scheduler.after(
            delay,
            Event::ChainCall {
                node,
                incarnation,
                call,
            },
        );
    }

    pub(crate) fn on_chain_call(&mut self, node: usize, incarnation: u32, call: ChainCall) {
        let now = self.now();
        let input = match call {
            ChainCall::Read(epoch) => {
                if !self.nodes[node].current(incarnation) {
                    return;
                }
                if self.plan.chain_read_failure > 0.0
                    && self.rng.gen_bool(self.plan.chain_read_failure)
                {
                    // The node's RPC fails: no answer; the protocol reads again later.
                    self.count_fault("chain_read_failure");
                    return;
                }
                let record = self.chain.record(epoch).map(|(record, _)| Box::new(record));
                Input::ChainRecord { epoch, record }
            }
            ChainCall::Submit(certificate) => {
                // A broadcast transaction lands even if its sender crashed meanwhile.
                self.chain_txs += 1;
                let epoch = certificate.epoch;
                let tx_ref = self.chain.submit(now, node, &certificate);
                if tx_ref.is_some() {
                    self.checker.accepted(now, epoch, &certificate.rewards);
                    self.accepted_at.insert(epoch, now);
                }
                let record = self.chain.record(epoch).map(|(record, _)| Box::new(record));
                Input::Submitted {
                    epoch,
                    record,
                    tx_ref,
                }
            }
        };
        let delay = self.chain_delay();
        self.scheduler.after(
            delay,
            Event::ChainReply {
                node,
                incarnation,
                input,
            },
        );
    }

    /// A loser's fetch of the winner's copy: what the winner's API serves, which is nothing
    /// when it is down or cut off, and a tampered copy when it is byzantine (each tampering
    /// needs one of the two checks to be caught: rewards under the record's data hash need
    /// the certification check; another height, submitter or signature set the acceptance
    /// check).
    pub(crate) fn on_fetch(&mut self, node: usize, incarnation: u32, epoch: u64, winner: usize) {
        if !self.nodes[node].current(incarnation) {
            return;
        }
        let tampering = self.rng.gen_range(0..4u8);
        let served = self.nodes.get(winner).and_then(|server| {
            if server.engine.is_none() || self.partitioned(node, winner) {
                return None;
            }
            let mut copy = server.official(epoch)?.official;
            if server.adversary.is_some() {
                let own = (winner as MemberIndex, &server.key);
                tamper(&mut copy, tampering, own, &self.protocol_config);
            }
            Some(copy)
        });
        if served.is_some() && self.nodes[winner].adversary.is_some() {
            self.count_fault("tampered_winner_copy");
        }
        let copy = served.map(Box::new).ok_or_else(|| FetchFailed {
            reason: format!("member {winner} does not answer for epoch {epoch}"),
        });
        self.feed(node, Input::WinnerCopy { epoch, copy });
    }
}

/// A byzantine winner's change to its copy, by `kind`: rewards under the record's hash
/// (certification catches it), another height or submitter, or another valid signature set
/// (only the acceptance check catches those).
fn tamper(
    copy: &mut OfficialEpoch,
    kind: u8,
    (index, key): (MemberIndex, &Keypair),
    config: &ProtocolConfig,
) {
    match kind {
        0 => {
            if let Some(first) = copy.rewards.first_mut() {
                first.uptime_bp = (first.uptime_bp + 1) % (MAX_UPTIME_BP + 1);
            }
        }
        1 => copy.height += 1,
        2 => copy.submitter.push('x'),
        _ => resign(copy, index, key, config),
    }
}

/// Replaces one signature by the winner's own valid one (when it is not a signer already):
/// still t valid signatures, but not the ones the contract stored.
fn resign(copy: &mut OfficialEpoch, index: MemberIndex, key: &Keypair, config: &ProtocolConfig) {
    if copy
        .signatures
        .iter()
        .any(|signature| signature.index == index)
    {
        copy.signatures.pop();
        return;
    }
    let Ok(data_hash) = <[u8; 32]>::try_from(copy.data_hash.as_slice()) else {
        return;
    };
    let signature = key.sign(&echo_digest(config, copy.epoch, &data_hash));
    copy.signatures.remove(0);
    copy.signatures.push(SignerSignature {
        index,
        signature: signature.into(),
    });
    copy.signatures.sort_by_key(|signature| signature.index);
}
