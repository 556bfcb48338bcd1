//! The protocol without sockets: a small in-memory network of real state machines, plus
//! byzantine inputs crafted by hand. Every rule of `docs/design.md` ("The protocol") has a
//! test here, and so do finalization, catch-up and backoff.

#![allow(clippy::unwrap_used)] // test code

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use cosmwasm_std::{Addr, HexBinary, Timestamp};
use nym_rewards::msg::{EpochClock, EpochRewardsResponse, SignerSignature};
use relayer_protocol::{
    Action, Block, Certificate, ChainContext, Echo, FetchFailed, Input, Keypair, Message,
    MixnodeReward, Observation, ObservationRef, OfficialEpoch, OfficialSource, PersistRecord,
    Protocol, ProtocolConfig, Rejection, RestoredState, SignatureCheck, Signer, SignerSet,
    StoredDecision, SubmitPolicy, Timer, echo_digest, observation_digest, submission_rank,
    verify_signature,
};

const EPOCH_SECS: u64 = 10;
/// Just after epoch 0 ended.
const T0: u64 = EPOCH_SECS * 1_000 + 5;

/// The members' keys, listed in epoch 0's rank order: member i has rank i in epoch 0, so
/// members 0..=f propose it at once and member 0 submits first.
fn keys(n: usize) -> Vec<Keypair> {
    let keys: Vec<Keypair> = (0..n)
        .map(|i| Keypair::from_seed(&[i as u8 + 1; 32]))
        .collect();
    let publics: Vec<[u8; 32]> = keys.iter().map(Keypair::public).collect();
    let mut ranked: Vec<(usize, Keypair)> = keys
        .into_iter()
        .map(|key| (submission_rank(0, &key.public(), &publics), key))
        .collect();
    ranked.sort_by_key(|(rank, _)| *rank);
    ranked.into_iter().map(|(_, key)| key).collect()
}

fn address(index: usize) -> String {
    format!("wasm1member{index}")
}

fn config(n: usize, policy: SubmitPolicy) -> ProtocolConfig {
    ProtocolConfig {
        chain: ChainContext {
            chain_id: "testing".into(),
            contract: "wasm1contract".into(),
        },
        signer_set: SignerSet {
            version: 1,
            effective_from_epoch: 0,
            threshold: relayer_protocol::default_threshold(n),
            members: keys(n)
                .iter()
                .enumerate()
                .map(|(i, key)| Signer {
                    key: key.public(),
                    address: address(i),
                })
                .collect(),
        },
        observation_threshold: relayer_protocol::default_observation_threshold(n),
        mixnodes: vec![1, 2, 3, 4],
        clock: EpochClock {
            genesis_time: 0,
            epoch_length_secs: EPOCH_SECS,
        },
        observation_grace_ms: 200,
        submit_slot_ms: 1_000,
        resend_interval_ms: 5_000,
        policy,
        catch_up_epochs: 2,
    }
}

/// A version-1 decision as a store restores it.
fn stored_decision(epoch: u64, proposer: u16, data_hash: [u8; 32]) -> StoredDecision {
    StoredDecision {
        epoch,
        signer_set_version: 1,
        proposer,
        data_hash,
    }
}

fn values(seed: u16) -> Vec<MixnodeReward> {
    (1..=4u32)
        .map(|mix_id| MixnodeReward {
            mix_id,
            uptime_bp: (seed * 100 + mix_id as u16 * 7) % 10_001,
        })
        .collect()
}

fn node(n: usize, index: usize, policy: SubmitPolicy) -> Protocol {
    Protocol::new(
        config(n, policy),
        keys(n)[index].clone(),
        RestoredState::default(),
    )
    .unwrap()
}

fn signed_observation(
    n: usize,
    author: usize,
    epoch: u64,
    vals: Vec<MixnodeReward>,
) -> Observation {
    let config = config(n, SubmitPolicy::Race);
    let digest = observation_digest(&config, epoch, &vals);
    Observation {
        epoch,
        signer_set_version: 1,
        author: author as u16,
        signature: keys(n)[author].sign(&digest),
        values: vals,
    }
}

fn reference(n: usize, observation: &Observation) -> ObservationRef {
    ObservationRef {
        author: observation.author,
        digest: observation_digest(
            &config(n, SubmitPolicy::Race),
            observation.epoch,
            &observation.values,
        ),
    }
}

/// The contract's record of `certificate` submitted by member `winner`.
fn record_of(certificate: &Certificate, winner: usize) -> EpochRewardsResponse {
    EpochRewardsResponse {
        epoch: certificate.epoch,
        signer_set_version: certificate.signer_set_version,
        data_hash: HexBinary::from(certificate.data_hash),
        rewards: certificate.rewards.clone(),
        signatures: certificate
            .signatures
            .iter()
            .map(|(index, signature)| SignerSignature {
                index: *index,
                signature: HexBinary::from(signature.clone()),
            })
            .collect(),
        submitter: Addr::unchecked(address(winner)),
        height: 100 + certificate.epoch,
        time: Timestamp::from_seconds(1),
    }
}

/// Feeds `node` its measurements of `epoch` (`None`: it has none).
fn feed_measured(
    node: &mut Protocol,
    now: u64,
    epoch: u64,
    values: Option<Vec<MixnodeReward>>,
) -> Vec<Action> {
    node.handle(now, Input::Measured { epoch, values })
}

/// Feeds `node` its measurements of `epoch` and acknowledges the write of its observation,
/// which is sent only once stored; returns every action.
fn measured(node: &mut Protocol, now: u64, epoch: u64, vals: Vec<MixnodeReward>) -> Vec<Action> {
    let mut actions = feed_measured(node, now, epoch, Some(vals));
    let stored = actions.iter().find_map(|action| match action {
        Action::Persist {
            id,
            record: PersistRecord::OwnObservation { .. },
        } => Some(*id),
        _ => None,
    });
    if let Some(id) = stored {
        actions.extend(node.handle(now, Input::Persisted { id }));
    }
    actions
}

/// Delivers `message` from member `from` to `node` at `now`.
fn receive(node: &mut Protocol, now: u64, from: u16, message: Message) -> Vec<Action> {
    node.handle(now, Input::Message { from, message })
}

/// The id of the first persist action, if any.
fn persist_id(actions: &[Action]) -> Option<u64> {
    actions.iter().find_map(|action| match action {
        Action::Persist { id, .. } => Some(*id),
        _ => None,
    })
}

fn rejections(actions: &[Action]) -> Vec<Rejection> {
    actions
        .iter()
        .filter_map(|action| match action {
            Action::Rejected { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .collect()
}

/// An in-memory network: instant delivery, immediate persist acks (unless told to fail), a
/// first-wins chain, and each node's stored official data served to losers.
struct Net {
    nodes: Vec<Protocol>,
    down: Vec<bool>,
    now: u64,
    queue: VecDeque<(usize, Input)>,
    timers: Vec<(u64, usize, Timer)>,
    chain: BTreeMap<u64, (usize, Certificate)>,
    submissions: Vec<(usize, u64)>,
    rejected: Vec<(usize, Rejection)>,
    persisted: Vec<(usize, u64, u16, [u8; 32])>,
    /// `(node, epoch) -> (copy, source)` of stored official data.
    official: BTreeMap<(usize, u64), (OfficialEpoch, OfficialSource)>,
    /// Nodes whose next official writes fail.
    failing_official_writes: BTreeMap<usize, usize>,
    /// Nodes that serve a tampered copy.
    tampering: BTreeSet<usize>,
    /// Nodes whose API is down.
    api_down: BTreeSet<usize>,
    /// Nodes without samples: their measurements are `None`.
    unmeasured: BTreeSet<usize>,
    finals: Vec<(usize, u64, OfficialSource)>,
}

impl Net {
    /// Nodes started a second before epoch 0 ends.
    fn new(n: usize, policy: SubmitPolicy) -> Self {
        let mut net = Self {
            nodes: (0..n).map(|i| node(n, i, policy)).collect(),
            down: vec![false; n],
            now: EPOCH_SECS * 1_000 - 1_000,
            queue: VecDeque::new(),
            timers: Vec::new(),
            chain: BTreeMap::new(),
            submissions: Vec::new(),
            rejected: Vec::new(),
            persisted: Vec::new(),
            official: BTreeMap::new(),
            failing_official_writes: BTreeMap::new(),
            tampering: BTreeSet::new(),
            api_down: BTreeSet::new(),
            unmeasured: BTreeSet::new(),
            finals: Vec::new(),
        };
        for i in 0..n {
            net.queue.push_back((i, Input::Start));
        }
        net.deliver();
        net
    }

    /// Brings a down node back, as a restart: it starts again on its state.
    fn restart(&mut self, i: usize) {
        self.down[i] = false;
        self.queue.push_back((i, Input::Start));
        self.deliver();
    }

    /// Runs until just after `epoch` ends: its epoch-end timers fire and nodes measure it.
    fn end_epoch(&mut self, epoch: u64) {
        self.run_until((epoch + 1) * EPOCH_SECS * 1_000 + 5);
    }

    fn deliver(&mut self) {
        while let Some((i, input)) = self.queue.pop_front() {
            if self.down[i] && input != Input::Start {
                continue;
            }
            let actions = self.nodes[i].handle(self.now, input);
            for action in actions {
                self.perform(i, action);
            }
        }
    }

    /// The contract's record of `epoch`, as the real contract answers it.
    fn record(&self, epoch: u64) -> Option<Box<EpochRewardsResponse>> {
        let (winner, certificate) = self.chain.get(&epoch)?;
        Some(Box::new(record_of(certificate, *winner)))
    }

    fn perform(&mut self, i: usize, action: Action) {
        let from = i as u16;
        match action {
            Action::Send { to, message } => self
                .queue
                .push_back((to as usize, Input::Message { from, message })),
            Action::Broadcast { message } => {
                for to in (0..self.nodes.len()).filter(|&to| to != i) {
                    self.queue.push_back((
                        to,
                        Input::Message {
                            from,
                            message: message.clone(),
                        },
                    ));
                }
            }
            Action::Persist { id, record } => match record {
                PersistRecord::OwnObservation { .. } => {
                    self.queue.push_back((i, Input::Persisted { id }))
                }
                PersistRecord::EchoDecision {
                    epoch,
                    proposer,
                    data_hash,
                    ..
                } => {
                    self.persisted.push((i, epoch, proposer, data_hash));
                    self.queue.push_back((i, Input::Persisted { id }));
                }
                PersistRecord::Official {
                    official, source, ..
                } => {
                    let failing = self.failing_official_writes.entry(i).or_default();
                    if *failing > 0 {
                        *failing -= 1;
                        self.queue.push_back((i, Input::PersistFailed { id }));
                    } else {
                        self.official
                            .entry((i, official.epoch))
                            .or_insert((official, source));
                        self.queue.push_back((i, Input::Persisted { id }));
                    }
                }
            },
            Action::SetTimer { at_ms, timer } => self.timers.push((at_ms, i, timer)),
            Action::Measure { epoch } => self.queue.push_back((
                i,
                Input::Measured {
                    epoch,
                    values: (!self.unmeasured.contains(&i)).then(|| values(i as u16)),
                },
            )),
            Action::ReadChain { epoch } => {
                let record = self.record(epoch);
                self.queue
                    .push_back((i, Input::ChainRecord { epoch, record }));
            }
            Action::Submit { certificate } => {
                let epoch = certificate.epoch;
                self.submissions.push((i, epoch));
                let won = !self.chain.contains_key(&epoch);
                self.chain.entry(epoch).or_insert((i, certificate));
                let record = self.record(epoch);
                let tx_ref = won.then(|| format!("tx-{i}-{epoch}"));
                self.queue.push_back((
                    i,
                    Input::Submitted {
                        epoch,
                        record,
                        tx_ref,
                    },
                ));
            }
            Action::FetchOfficial {
                epoch,
                from: winner,
            } => {
                let winner = usize::from(winner);
                let copy = match self.official.get(&(winner, epoch)) {
                    Some((copy, _)) if !self.api_down.contains(&winner) => {
                        let mut copy = copy.clone();
                        if self.tampering.contains(&winner) {
                            copy.rewards[0].uptime_bp ^= 1;
                        }
                        Ok(Box::new(copy))
                    }
                    _ => Err(FetchFailed {
                        reason: "unreachable".into(),
                    }),
                };
                self.queue.push_back((i, Input::WinnerCopy { epoch, copy }));
            }
            Action::Certified { .. } => {}
            Action::Final { epoch, source } => self.finals.push((i, epoch, source)),
            Action::Rejected { reason, .. } => self.rejected.push((i, reason)),
        }
    }

    /// Fires timers in time order until none is due before `until`.
    fn run_until(&mut self, until: u64) {
        self.deliver();
        loop {
            self.timers.sort();
            let Some(&(at, i, timer)) = self.timers.first().filter(|(at, ..)| *at <= until) else {
                break;
            };
            self.timers.remove(0);
            self.now = self.now.max(at);
            self.queue.push_back((i, Input::Timer(timer)));
            self.deliver();
        }
        self.now = self.now.max(until);
    }

    /// The official copy node `i` stored for `epoch`.
    fn stored(&self, i: usize, epoch: u64) -> Option<&(OfficialEpoch, OfficialSource)> {
        self.official.get(&(i, epoch))
    }
}

fn assert_certificate_verifies(n: usize, certificate: &Certificate) {
    let config = config(n, SubmitPolicy::Race);
    assert!(certificate.signatures.len() >= config.threshold());
    assert_eq!(
        certificate.data_hash,
        nym_rewards::digest::data_hash(&certificate.rewards)
    );
    let digest = echo_digest(&config, certificate.epoch, &certificate.data_hash);
    for (index, signature) in &certificate.signatures {
        assert_eq!(
            verify_signature(&digest, signature, config.signer_set.key(*index).unwrap()),
            SignatureCheck::Valid
        );
    }
}

#[test]
fn four_honest_nodes_certify_and_exactly_one_submission_lands_staggered() {
    let mut net = Net::new(4, SubmitPolicy::Staggered);
    net.end_epoch(0);
    net.run_until(T0 + 10_000);
    let (winner, certificate) = net.chain.get(&0).cloned().expect("epoch 0 on chain");
    assert_certificate_verifies(4, &certificate);
    let epoch0: Vec<usize> = net
        .submissions
        .iter()
        .filter(|(_, epoch)| *epoch == 0)
        .map(|(node, _)| *node)
        .collect();
    assert_eq!(
        epoch0,
        vec![winner],
        "staggered: one transaction, by rank 0"
    );
    // Lower median of the four observations, per mixnode.
    let mut expected = Vec::new();
    for position in 0..4 {
        let mut column: Vec<u16> = (0..4).map(|i| values(i)[position].uptime_bp).collect();
        column.sort_unstable();
        expected.push(MixnodeReward {
            mix_id: position as u32 + 1,
            uptime_bp: column[1],
        });
    }
    assert_eq!(certificate.rewards, expected);
    assert!(net.nodes.iter().all(|node| node.is_final(0)));
    assert!(net.rejected.is_empty(), "{:?}", net.rejected);
}

#[test]
fn race_policy_has_a_certified_backup_submit_at_once() {
    // Lead (node 0) silent: its backup (node 1, rank 1) proposes after its wait and, under
    // race, submits when certified, without waiting for its staggered slot.
    for (policy, expected) in [
        (SubmitPolicy::Race, vec![(1, 0)]),
        (SubmitPolicy::Staggered, vec![]),
    ] {
        let mut net = Net::new(4, policy);
        net.down[0] = true;
        net.end_epoch(0);
        let slot = config(4, policy).submit_slot_ms;
        // Grace (200 ms) then the backup's wait (1 s), just before its staggered slot.
        net.run_until(T0 + 200 + slot + slot / 2);
        assert_eq!(net.submissions, expected, "{policy:?}");
        let proposers: Vec<u64> = (1..4)
            .map(|i| net.nodes[i].metrics().blocks_proposed)
            .collect();
        assert_eq!(proposers, [1, 0, 0], "{policy:?}: the backup alone");
    }
}

#[test]
fn a_proposer_that_echoed_a_block_proposes_over_the_same_observations() {
    // Node 1 (rank 1, a proposer) holds authors 0-2 when node 0's block over authors 0, 1
    // and 3 arrives; author 3's observation completes both that block and node 1's own set of
    // four. It checks node 0's block first, then proposes over the same three references (not
    // its own four): the same data hash, and no second median anywhere.
    let (mut node1, _) = node1_holding(&[0, 1, 2]);
    let observations: Vec<Observation> = [0, 1, 3]
        .into_iter()
        .map(|a| signed_observation(4, a, 0, values(a as u16)))
        .collect();
    let block = honest_block(&observations);
    receive(&mut node1, T0, 0, Message::Block(block.clone()));
    let before = node1.metrics().aggregates_computed;
    let actions = give_observations(&mut node1, &[3]);
    assert_eq!(echo_decisions(&actions), [(0, block.data_hash)]);
    let stored = node1.handle(
        T0,
        Input::Persisted {
            id: persist_id(&actions).expect("echoed"),
        },
    );
    // A backup of the lead holding every observation stands by at once, for a slot; once its
    // echo of the lead's block is stored, for twice the slot from then. Then it proposes the
    // same block.
    assert_eq!(standby_until(&actions), Some(T0 + 1_000));
    assert_eq!(standby_until(&stored), Some(T0 + 2_000));
    let read = node1.handle(T0 + 2_000, Input::Timer(Timer::Standby { epoch: 0 }));
    assert_eq!(read, [Action::ReadChain { epoch: 0 }]);
    let actions = node1.handle(
        T0 + 2_000,
        Input::ChainRecord {
            epoch: 0,
            record: None,
        },
    );
    assert_eq!(echo_decisions(&actions), [(1, block.data_hash)]);
    let stored = node1.handle(
        T0 + 2_000,
        Input::Persisted {
            id: persist_id(&actions).expect("proposes"),
        },
    );
    let digest = broadcast_digest(stored);
    assert_eq!(digest.data_hash, block.data_hash);
    assert_eq!(digest.refs_hash, block.refs_hash());
    assert_eq!(
        node1.metrics().aggregates_computed,
        before + 1,
        "one median"
    );
}

#[test]
fn a_checked_block_referencing_an_equivocators_other_version_is_not_adopted() {
    // Node 1 holds authors 0 and 1, and two versions of author 2 (an equivocator). Node 0's
    // block references author 2's second version: node 1 checks and echoes it, but its own
    // proposal keeps to its own set (authors 0, 1, 3), whose versions it never drops.
    let (mut node1, observations) = node1_holding(&[0, 1, 2]);
    let other = version_of(2, 1);
    receive(&mut node1, T0, 2, Message::Observation(other.clone()));
    let block = block_of(0, &[&observations[0], &observations[1], &other]);
    let actions = receive(&mut node1, T0, 0, Message::Block(block.clone()));
    node1.handle(
        T0,
        Input::Persisted {
            id: persist_id(&actions).expect("echoed"),
        },
    );
    give_observations(&mut node1, &[3]);
    let digest = proposed_at_grace_end(&mut node1);
    let third = signed_observation(4, 3, 0, values(3));
    let expected = block_of(1, &[&observations[0], &observations[1], &third]);
    assert_eq!(digest.refs_hash, expected.refs_hash(), "its own set");
    assert_ne!(digest.refs_hash, block.refs_hash(), "not the echoed one");
}

#[test]
fn a_backup_proposes_only_after_its_wait_and_only_if_the_epoch_is_not_on_chain() {
    // n = 4: rank 0 leads, rank 1 backs it up. Both wait one grace period for the last
    // observation; then the lead proposes and the backup stands by for max(slot, time since
    // the epoch end) = 1 s.
    let slot = config(4, SubmitPolicy::Staggered).submit_slot_ms;
    for (member, standby) in [(0, None), (1, Some(T0 + 200 + slot))] {
        let mut node = node(4, member, SubmitPolicy::Staggered);
        let others: Vec<usize> = (0..3).filter(|&a| a != member).collect();
        measured(&mut node, T0, 0, values(member as u16));
        let actions = give_observations(&mut node, &others);
        assert!(
            actions.iter().any(|a| matches!(a, Action::SetTimer { at_ms, timer: Timer::Grace { epoch: 0 } } if *at_ms == T0 + 200)),
            "member {member}: {actions:?}"
        );
        let actions = node.handle(T0 + 200, Input::Timer(Timer::Grace { epoch: 0 }));
        assert_eq!(standby_until(&actions), standby, "member {member}");
        assert_eq!(persist_id(&actions).is_some(), member == 0, "{actions:?}");
    }
    // The backup's timer: a chain read; the epoch on chain means no block.
    let (mut backup, _) = node1_holding(&[0, 2, 3]);
    let until = standby_until(&backup.handle(T0 + 200, Input::Timer(Timer::Grace { epoch: 0 })))
        .expect("stands by");
    assert!(
        backup
            .handle(until - 1, Input::Timer(Timer::Standby { epoch: 0 }))
            .is_empty()
    );
    let read = backup.handle(until, Input::Timer(Timer::Standby { epoch: 0 }));
    assert_eq!(read, [Action::ReadChain { epoch: 0 }]);
    let certificate = Certificate {
        epoch: 0,
        signer_set_version: 1,
        data_hash: [7; 32],
        rewards: values(0),
        signatures: Vec::new(),
    };
    let on_chain = backup.handle(
        until,
        Input::ChainRecord {
            epoch: 0,
            record: Some(Box::new(record_of(&certificate, 0))),
        },
    );
    assert!(
        echo_decisions(&on_chain).is_empty() && backup.own_block(0).is_none(),
        "{on_chain:?}"
    );
}

/// Stores node 1's decision to echo `block` from `proposer` at `now`; returns the actions of
/// the write's acknowledgement.
fn echo_stored(node1: &mut Protocol, now: u64, block: &Block) -> Vec<Action> {
    let actions = receive(node1, now, block.proposer, Message::Block(block.clone()));
    assert_eq!(
        echo_decisions(&actions),
        [(block.proposer, block.data_hash)],
        "an echo, no block of its own"
    );
    node1.handle(
        now,
        Input::Persisted {
            id: persist_id(&actions).expect("echoed"),
        },
    )
}

#[test]
fn a_backup_that_echoed_the_leads_block_waits_twice_as_long_again_once() {
    // Node 1 (rank 1) stands by until T0 + 200 + 1 s. Member 3's valid block, echoed first,
    // moves nothing (a byzantine member's block must not keep a backup waiting while the lead
    // is silent); the lead's block, echoed at T0 + 700, moves the wait to T0 + 700 + 2 s, once.
    let (mut node1, honest) = node1_holding(&[0, 2, 3]);
    let until = standby_until(&node1.handle(T0 + 200, Input::Timer(Timer::Grace { epoch: 0 })));
    assert_eq!(until, Some(T0 + 1_200));
    let lead_block = block_of(0, &[&honest[0], &honest[1], &honest[2]]);
    let other = Block {
        proposer: 3,
        ..lead_block.clone()
    };
    assert_eq!(
        standby_until(&echo_stored(&mut node1, T0 + 300, &other)),
        None
    );
    assert_eq!(
        standby_until(&echo_stored(&mut node1, T0 + 700, &lead_block)),
        Some(T0 + 2_700)
    );
    assert!(
        node1
            .handle(T0 + 1_200, Input::Timer(Timer::Standby { epoch: 0 }))
            .is_empty()
    );
    assert_eq!(
        node1.handle(T0 + 2_700, Input::Timer(Timer::Standby { epoch: 0 })),
        [Action::ReadChain { epoch: 0 }]
    );
}

#[test]
fn a_backups_wait_is_capped_and_a_lost_standby_timer_ends_at_a_re_send_round() {
    // Catching up 15 s after the epoch end, a backup waits the f + 1 = 2 slots after which
    // group 1 may propose anyway, not 15 s.
    let (mut node1, _) = node1_holding(&[0, 2, 3]);
    let late = T0 + 15_000;
    let until = standby_until(&node1.handle(late, Input::Timer(Timer::Grace { epoch: 0 })));
    assert_eq!(until, Some(late + 2_000));
    // Its timer never fires (lost): the first re-send round after the wait ends it.
    let early_round = node1.handle(late + 1_000, Input::Timer(Timer::Resend));
    assert_eq!(persist_id(&early_round), None);
    let round = node1.handle(late + 2_000, Input::Timer(Timer::Resend));
    assert!(round.contains(&Action::ReadChain { epoch: 0 }), "{round:?}");
    let actions = node1.handle(
        late + 2_000,
        Input::ChainRecord {
            epoch: 0,
            record: None,
        },
    );
    assert!(
        echo_decisions(&actions)
            .iter()
            .any(|(proposer, _)| *proposer == 1),
        "proposes: {actions:?}"
    );
}

#[test]
fn a_restarted_proposer_re_proposes_its_decided_block_over_another_proposers_references() {
    // Node 1 decided on its own block over authors 0, 2 and 3, and echoed node 0's block with
    // the same hash, before a restart that lost the references. Back, it holds all four
    // observations (a different set, another hash), so it cannot propose; node 0's block,
    // echoed again from the stored decision, gives it the references.
    let three: Vec<Observation> = [0, 2, 3]
        .into_iter()
        .map(|a| signed_observation(4, a, 0, values(a as u16)))
        .collect();
    let decided = block_of(1, &three.iter().collect::<Vec<_>>());
    assert_ne!(decided.data_hash, node0_full_block().data_hash);
    let restored = RestoredState {
        echo_decisions: vec![
            stored_decision(0, 0, decided.data_hash),
            stored_decision(0, 1, decided.data_hash),
        ],
        ..RestoredState::default()
    };
    let mut node1 =
        Protocol::new(config(4, SubmitPolicy::Race), keys(4)[1].clone(), restored).unwrap();
    let proposes = |actions: &[Action]| {
        actions.iter().any(|a| {
            matches!(
                a,
                Action::Persist {
                    record: PersistRecord::EchoDecision { proposer: 1, .. },
                    ..
                }
            )
        })
    };
    assert!(!proposes(&give_observations(&mut node1, &[0, 1, 2, 3])));
    let node0_block = Block {
        proposer: 0,
        ..decided.clone()
    };
    receive(
        &mut node1,
        T0,
        0,
        Message::BlockDigest(node0_block.digest(4)),
    );
    let round = node1.handle(T0 + 5_000, Input::Timer(Timer::Resend));
    let again = round.iter().any(|a| {
        matches!(a, Action::Persist { record: PersistRecord::EchoDecision { proposer: 1, data_hash, .. }, .. } if *data_hash == decided.data_hash)
    });
    assert!(again, "{round:?}");
}

#[test]
fn only_the_lead_proposes_without_faults() {
    let mut net = Net::new(7, SubmitPolicy::Staggered);
    net.end_epoch(0);
    net.run_until(T0 + 9_000);
    assert!(net.chain.contains_key(&0));
    let proposers: Vec<usize> = (0..7)
        .filter(|&i| net.nodes[i].metrics().blocks_proposed > 0)
        .collect();
    // n = 7, f = 2: rank 0 of epoch 0 (members are listed in that order) leads; its block is
    // certified and on chain before its backups' wait is over.
    assert_eq!(proposers, [0]);
}

#[test]
fn a_later_rank_proposes_once_the_earlier_groups_slots_passed_without_the_epoch_on_chain() {
    // n = 4, f = 1: ranks 2 and 3 propose from rank 2's slot (2 slots after the epoch end),
    // checked at a re-send round, if the epoch is still not on chain.
    let mut node2 = node(4, 2, SubmitPolicy::Staggered);
    measured(&mut node2, T0, 0, values(2));
    give_observations(&mut node2, &[0, 1, 3]);
    let actions = node2.handle(T0 + 200, Input::Timer(Timer::Grace { epoch: 0 }));
    assert_eq!(
        persist_id(&actions),
        None,
        "rank 2 does not propose at once"
    );
    let slot = config(4, SubmitPolicy::Staggered).submit_slot_ms;
    let before = node2.handle(T0 + 2 * slot - 10, Input::Timer(Timer::Resend));
    assert!(
        !before.iter().any(|a| matches!(
            a,
            Action::Persist {
                record: PersistRecord::EchoDecision { .. },
                ..
            }
        )),
        "{before:?}"
    );
    let after = node2.handle(T0 + 2 * slot, Input::Timer(Timer::Resend));
    assert!(
        after.iter().any(|a| matches!(
            a,
            Action::Persist {
                record: PersistRecord::EchoDecision { proposer: 2, .. },
                ..
            }
        )),
        "{after:?}"
    );
}

#[test]
fn message_and_signature_work_is_quadratic() {
    let mut net = Net::new(7, SubmitPolicy::Staggered);
    net.end_epoch(0);
    net.run_until(T0 + 9_000); // before epoch 1 ends
    assert!(net.chain.contains_key(&0));
    let verifications: u64 = net
        .nodes
        .iter()
        .map(|n| n.metrics().signature_verifications)
        .sum();
    // n-1 observations and up to n-1 echoes verified per node: at most 2n(n-1).
    assert!(verifications <= 2 * 7 * 6, "{verifications}");
}

#[test]
fn one_silent_node_of_four_does_not_stop_the_epoch() {
    let mut net = Net::new(4, SubmitPolicy::Staggered);
    net.down[2] = true;
    net.end_epoch(0);
    net.run_until(T0 + 10_000);
    let (_, certificate) = net.chain.get(&0).cloned().expect("final with f = 1 silent");
    assert!(certificate.signatures.iter().all(|(index, _)| *index != 2));
}

#[test]
fn proposer_waits_the_grace_period_for_the_last_observation() {
    let mut node0 = node(4, 0, SubmitPolicy::Race);
    measured(&mut node0, T0, 0, values(0));
    for author in [1, 2] {
        let observation = signed_observation(4, author, 0, values(author as u16));
        let actions = receive(
            &mut node0,
            T0,
            author as u16,
            Message::Observation(observation),
        );
        if author == 2 {
            assert!(actions.iter().any(|a| matches!(a, Action::SetTimer { at_ms, timer: Timer::Grace { epoch: 0 } } if *at_ms == T0 + 200)), "{actions:?}");
            assert!(
                !actions.iter().any(|a| matches!(a, Action::Persist { .. })),
                "no block before the grace period"
            );
        }
    }
    let actions = node0.handle(T0 + 200, Input::Timer(Timer::Grace { epoch: 0 }));
    assert!(
        actions.iter().any(|a| matches!(a, Action::Persist { .. })),
        "{actions:?}"
    );
}

#[test]
fn echo_is_sent_only_after_the_decision_is_persisted() {
    let (mut node1, observations) = validator();
    let block = honest_block(&observations);
    let actions = receive(&mut node1, T0, 0, Message::Block(block.clone()));
    assert!(!actions.iter().any(|a| matches!(
        a,
        Action::Send {
            message: Message::Echo(_),
            ..
        }
    )));
    let id = persist_id(&actions).expect("persist first");
    let actions = node1.handle(T0, Input::Persisted { id });
    let echo = actions
        .iter()
        .find_map(|a| match a {
            Action::Send {
                to: 0,
                message: Message::Echo(echo),
            } => Some(echo.clone()),
            _ => None,
        })
        .expect("echo after the ack");
    assert_eq!(echo.data_hash, block.data_hash);
}

fn honest_block(observations: &[Observation]) -> Block {
    let columns: Vec<&[MixnodeReward]> = observations.iter().map(|o| o.values.as_slice()).collect();
    let aggregate = relayer_protocol::lower_median(&columns).unwrap();
    Block {
        epoch: 0,
        signer_set_version: 1,
        proposer: 0,
        observations: observations.iter().map(|o| reference(4, o)).collect(),
        data_hash: nym_rewards::digest::data_hash(&aggregate),
    }
}

/// Delivers `authors`' observations of epoch 0 (each from its author) to `node` at `T0`;
/// returns every action.
fn give_observations(node: &mut Protocol, authors: &[usize]) -> Vec<Action> {
    let mut actions = Vec::new();
    for &author in authors {
        let observation = signed_observation(4, author, 0, values(author as u16));
        actions.extend(receive(
            node,
            T0,
            author as u16,
            Message::Observation(observation),
        ));
    }
    actions
}

/// Ends `node`'s grace period for epoch 0 (at `T0 + 200`); a backup of the lead then stands
/// by until its timer fires and the chain (read then) does not hold the epoch. Acknowledges
/// the write of its proposal and returns the block digest it then broadcasts.
fn proposed_at_grace_end(node: &mut Protocol) -> relayer_protocol::BlockDigest {
    let mut now = T0 + 200;
    let mut actions = node.handle(now, Input::Timer(Timer::Grace { epoch: 0 }));
    if let Some(until) = standby_until(&actions) {
        now = until;
        let read = node.handle(now, Input::Timer(Timer::Standby { epoch: 0 }));
        assert!(read.contains(&Action::ReadChain { epoch: 0 }), "{read:?}");
        actions = node.handle(
            now,
            Input::ChainRecord {
                epoch: 0,
                record: None,
            },
        );
    }
    let id = persist_id(&actions).expect("proposes");
    broadcast_digest(node.handle(now, Input::Persisted { id }))
}

/// The block digest `actions` broadcast (a proposal sent once its decision is stored).
fn broadcast_digest(actions: Vec<Action>) -> relayer_protocol::BlockDigest {
    actions
        .into_iter()
        .find_map(|action| match action {
            Action::Broadcast {
                message: Message::BlockDigest(digest),
            } => Some(digest),
            _ => None,
        })
        .expect("its block is sent")
}

/// When a backup's standby timer for epoch 0 is set to fire, if `actions` set it.
fn standby_until(actions: &[Action]) -> Option<u64> {
    actions.iter().find_map(|action| match action {
        Action::SetTimer {
            at_ms,
            timer: Timer::Standby { epoch: 0 },
        } => Some(*at_ms),
        _ => None,
    })
}

/// Node 0's block over all four observations of epoch 0 (what [`proposer`] proposes).
fn node0_full_block() -> Block {
    let observations: Vec<Observation> = (0..4)
        .map(|a| signed_observation(4, a, 0, values(a as u16)))
        .collect();
    honest_block(&observations)
}

/// Node 1 holding the observations of authors 0..3 for epoch 0.
fn validator() -> (Protocol, Vec<Observation>) {
    node1_holding(&[0, 1, 2])
}

/// Node 1 holding the (accepted) observations of `authors` for epoch 0.
fn node1_holding(authors: &[usize]) -> (Protocol, Vec<Observation>) {
    let mut node1 = node(4, 1, SubmitPolicy::Race);
    let actions = give_observations(&mut node1, authors);
    assert!(rejections(&actions).is_empty(), "{actions:?}");
    let observations = authors
        .iter()
        .map(|&a| signed_observation(4, a, 0, values(a as u16)))
        .collect();
    (node1, observations)
}

#[test]
fn observation_with_a_bad_signature_is_rejected() {
    let mut node1 = node(4, 1, SubmitPolicy::Race);
    let mut observation = signed_observation(4, 0, 0, values(0));
    observation.signature[3] ^= 1;
    let actions = receive(&mut node1, T0, 0, Message::Observation(observation));
    assert_eq!(
        rejections(&actions),
        vec![Rejection::BadSignature { signer: 0 }]
    );
}

#[test]
fn signature_under_another_domain_tag_is_rejected() {
    let mut node1 = node(4, 1, SubmitPolicy::Race);
    let mut observation = signed_observation(4, 0, 0, values(0));
    // A valid echo-domain signature over the same values' data hash.
    let config = config(4, SubmitPolicy::Race);
    let echo_sig = keys(4)[0].sign(&echo_digest(
        &config,
        0,
        &nym_rewards::digest::data_hash(&observation.values),
    ));
    observation.signature = echo_sig;
    let actions = receive(&mut node1, T0, 0, Message::Observation(observation));
    assert_eq!(
        rejections(&actions),
        vec![Rejection::BadSignature { signer: 0 }]
    );
}

#[test]
fn non_members_are_rejected() {
    let mut node1 = node(4, 1, SubmitPolicy::Race);
    let observation = signed_observation(4, 0, 0, values(0));
    let actions = receive(&mut node1, T0, 9, Message::Observation(observation.clone()));
    assert_eq!(rejections(&actions), vec![Rejection::NotAMember]);
    let mut foreign = observation;
    foreign.author = 7;
    let actions = receive(&mut node1, T0, 0, Message::Observation(foreign));
    assert_eq!(
        rejections(&actions),
        vec![Rejection::UnknownAuthor { author: 7 }]
    );
}

#[test]
fn oversized_or_wrong_mixnode_sets_are_rejected() {
    let mut node1 = node(4, 1, SubmitPolicy::Race);
    let mut big = values(0);
    big.push(MixnodeReward {
        mix_id: 5,
        uptime_bp: 1,
    });
    let actions = receive(
        &mut node1,
        T0,
        0,
        Message::Observation(signed_observation(4, 0, 0, big)),
    );
    assert!(matches!(
        rejections(&actions)[..],
        [Rejection::InvalidValues(_)]
    ));
    let mut over = values(0);
    over[0].uptime_bp = 10_001;
    let actions = receive(
        &mut node1,
        T0,
        0,
        Message::Observation(signed_observation(4, 0, 0, over)),
    );
    assert!(matches!(
        rejections(&actions)[..],
        [Rejection::InvalidValues(_)]
    ));
}

#[test]
fn two_observations_from_one_author_are_detected_and_excluded() {
    let mut node0 = node(4, 0, SubmitPolicy::Race);
    measured(&mut node0, T0, 0, values(0));
    let first = signed_observation(4, 1, 0, values(1));
    let second = signed_observation(4, 1, 0, values(9));
    receive(&mut node0, T0, 1, Message::Observation(first));
    let actions = receive(&mut node0, T0, 1, Message::Observation(second));
    assert_eq!(
        rejections(&actions),
        vec![Rejection::Equivocation { author: 1 }]
    );
    for author in [2, 3] {
        node0.handle(
            T0,
            Input::Message {
                from: author as u16,
                message: Message::Observation(signed_observation(
                    4,
                    author,
                    0,
                    values(author as u16),
                )),
            },
        );
    }
    let digest = proposed_at_grace_end(&mut node0);
    let authors: Vec<u16> = (0..4)
        .filter(|&a| relayer_protocol::holds(&digest.authors, a))
        .collect();
    assert_eq!(
        authors,
        vec![0, 2, 3],
        "the equivocating author is excluded"
    );
}

#[test]
fn a_block_digest_is_rebuilt_from_held_observations_or_the_whole_block_is_asked_for() {
    let mut node0 = proposer();
    let block = node0_full_block();
    assert_eq!(node0.echo_decision(0, 0), Some(block.data_hash));
    let digest = Message::BlockDigest(block.digest(4));
    let echoes = |actions: &[Action]| {
        actions
            .iter()
            .filter(|a| {
                matches!(
                    a,
                    Action::Persist {
                        record: PersistRecord::EchoDecision { .. },
                        ..
                    }
                )
            })
            .count()
    };
    // A member holding all four observations rebuilds and checks the block.
    let (mut node1, _) = node1_holding(&[0, 1, 2, 3]);
    assert_eq!(echoes(&receive(&mut node1, T0, 0, digest.clone())), 1);
    // A member lacking one asks the proposer for the whole block, once per half interval.
    let (mut node2, _) = node1_holding(&[0, 1, 2]);
    let asked = |actions: &[Action]| {
        actions
            .iter()
            .filter(|a| {
                matches!(
                    a,
                    Action::Send {
                        to: 0,
                        message: Message::BlockRequest { epoch: 0 }
                    }
                )
            })
            .count()
    };
    assert_eq!(asked(&receive(&mut node2, T0, 0, digest.clone())), 1);
    assert_eq!(asked(&receive(&mut node2, T0 + 1, 0, digest.clone())), 0);
    assert_eq!(asked(&receive(&mut node2, T0 + 2_500, 0, digest)), 1);
    // The proposer answers with its whole block.
    let answer = receive(&mut node0, T0, 2, Message::BlockRequest { epoch: 0 });
    assert!(
        answer.iter().any(|a| matches!(a, Action::Send { to: 2, message: Message::Block(whole) } if whole.data_hash == block.data_hash)),
        "{answer:?}"
    );
    let again = receive(&mut node0, T0 + 1, 2, Message::BlockRequest { epoch: 0 });
    assert!(again.is_empty(), "{again:?}");
}

#[test]
fn block_with_too_few_authors_is_rejected() {
    let (mut node1, observations) = validator();
    let block = honest_block(&observations[..2]);
    let actions = receive(&mut node1, T0, 0, Message::Block(block));
    assert_eq!(
        rejections(&actions),
        vec![Rejection::TooFewAuthors { got: 2, need: 3 }]
    );
}

#[test]
fn block_with_a_repeated_author_is_rejected() {
    let (mut node1, observations) = validator();
    let mut block = honest_block(&observations);
    block.observations[1] = block.observations[0];
    let actions = receive(&mut node1, T0, 0, Message::Block(block));
    assert_eq!(rejections(&actions), vec![Rejection::UnsortedAuthors]);
}

#[test]
fn block_whose_aggregate_does_not_match_is_rejected() {
    let (mut node1, observations) = validator();
    let mut block = honest_block(&observations);
    block.data_hash[0] ^= 1;
    let actions = receive(&mut node1, T0, 0, Message::Block(block));
    assert_eq!(rejections(&actions), vec![Rejection::AggregateMismatch]);
}

#[test]
fn block_from_someone_other_than_its_proposer_is_rejected() {
    let (mut node1, observations) = validator();
    let block = honest_block(&observations);
    let actions = receive(&mut node1, T0, 2, Message::Block(block));
    assert_eq!(rejections(&actions), vec![Rejection::WrongSender]);
}

#[test]
fn wrong_version_and_old_epochs_are_rejected() {
    let (mut node1, observations) = validator();
    let mut block = honest_block(&observations);
    block.signer_set_version = 2;
    let actions = receive(&mut node1, T0, 0, Message::Block(block));
    assert_eq!(
        rejections(&actions),
        vec![Rejection::WrongVersion { version: 2 }]
    );
    // Replayed epoch-0 messages long after the catch-up window.
    let late = T0 + 10 * EPOCH_SECS * 1_000;
    let actions = receive(
        &mut node1,
        late,
        0,
        Message::Observation(observations[0].clone()),
    );
    assert_eq!(
        rejections(&actions),
        vec![Rejection::EpochOutOfWindow { epoch: 0 }]
    );
    // Messages for an epoch that has not started are refused too.
    let future = signed_observation(4, 0, 50, values(0));
    let actions = receive(&mut node1, T0, 0, Message::Observation(future));
    assert_eq!(
        rejections(&actions),
        vec![Rejection::EpochOutOfWindow { epoch: 50 }]
    );
}

#[test]
fn missing_observation_is_fetched_from_the_proposer() {
    let mut node1 = node(4, 1, SubmitPolicy::Race);
    let observations: Vec<Observation> = (0..3)
        .map(|a| signed_observation(4, a, 0, values(a as u16)))
        .collect();
    receive(
        &mut node1,
        T0,
        0,
        Message::Observation(observations[0].clone()),
    );
    let block = honest_block(&observations);
    let actions = receive(&mut node1, T0, 0, Message::Block(block));
    let requested: Vec<u16> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Send {
                to: 0,
                message: Message::ObservationRequest { reference, .. },
            } => Some(reference.author),
            _ => None,
        })
        .collect();
    assert_eq!(requested, vec![1, 2]);
    receive(
        &mut node1,
        T0,
        0,
        Message::Observation(observations[2].clone()),
    );
    // The proposer relays author 1's observation: signed by its author, so accepted.
    let actions = receive(
        &mut node1,
        T0,
        0,
        Message::Observation(observations[1].clone()),
    );
    assert!(
        actions.iter().any(|a| matches!(a, Action::Persist { .. })),
        "validated once complete: {actions:?}"
    );
}

#[test]
fn a_proposer_serves_only_what_its_block_references_and_not_twice_in_a_row() {
    let node0 = proposer();
    let mut node0 = node0;
    let block_ref = reference(4, &signed_observation(4, 2, 0, values(2)));
    let request = |reference| Message::ObservationRequest {
        epoch: 0,
        reference,
    };
    let served = |actions: &[Action]| {
        actions
            .iter()
            .filter(|a| {
                matches!(
                    a,
                    Action::Send {
                        message: Message::Observation(_),
                        ..
                    }
                )
            })
            .count()
    };
    assert_eq!(served(&receive(&mut node0, T0, 1, request(block_ref))), 1);
    assert_eq!(
        served(&receive(&mut node0, T0 + 1, 1, request(block_ref))),
        0,
        "asked again within half a re-send interval"
    );
    assert_eq!(
        served(&receive(&mut node0, T0 + 1, 3, request(block_ref))),
        1
    );
    assert_eq!(
        served(&receive(&mut node0, T0 + 2_500, 1, request(block_ref))),
        1
    );
    let unknown = ObservationRef {
        author: 2,
        digest: [7; 32],
    };
    assert_eq!(served(&receive(&mut node0, T0, 3, request(unknown))), 0);
}

/// The staggered slot counts from the member's certification, not from the epoch end: a
/// network certifying late (under load) would otherwise find several ranks' slots passed and
/// submit them all at once. Rank 0 reads the chain as soon as it is certified; rank 1 one
/// slot later. Neither has an observation of its own: a proposer still submits.
#[test]
fn a_staggered_slot_counts_from_the_members_certification() {
    let slot = config(4, SubmitPolicy::Staggered).submit_slot_ms;
    let certified_at = T0 + 5 * slot;
    for member in [0usize, 1] {
        let mut node = node(4, member, SubmitPolicy::Staggered);
        assert_eq!(
            rejections(&feed_measured(&mut node, T0, 0, None)),
            [Rejection::NoMeasurements { epoch: 0 }]
        );
        let others: Vec<usize> = (0..4).filter(|&i| i != member).collect();
        give_observations(&mut node, &others);
        let digest = proposed_at_grace_end(&mut node);
        let mut actions = Vec::new();
        for &echoer in &others[..2] {
            let echo = Echo {
                proposer: member as u16,
                ..echo_of(echoer, digest.data_hash)
            };
            actions = receive(&mut node, certified_at, echoer as u16, Message::Echo(echo));
        }
        assert!(
            node.certificate(0).is_some(),
            "member {member}: {actions:?}"
        );
        let slot_timer = actions.iter().find_map(|action| match action {
            Action::SetTimer {
                at_ms,
                timer: Timer::SubmitSlot { epoch: 0 },
            } => Some(*at_ms),
            _ => None,
        });
        let reads = actions
            .iter()
            .filter(|action| matches!(action, Action::ReadChain { epoch: 0 }))
            .count();
        match member {
            0 => assert_eq!((slot_timer, reads), (None, 1), "{actions:?}"),
            _ => assert_eq!(
                (slot_timer, reads),
                (Some(certified_at + slot), 0),
                "{actions:?}"
            ),
        }
    }
}

#[test]
fn a_block_sent_again_gets_the_same_echo_without_signing_again() {
    let block = node0_full_block();
    let (mut node1, _) = node1_holding(&[0, 1, 2, 3]);
    let actions = receive(&mut node1, T0, 0, Message::BlockDigest(block.digest(4)));
    node1.handle(
        T0,
        Input::Persisted {
            id: persist_id(&actions).unwrap(),
        },
    );
    let signed = node1.metrics().signatures_created;
    let echo = |actions: &[Action]| {
        actions.iter().find_map(|a| match a {
            Action::Send {
                to: 0,
                message: Message::Echo(echo),
            } => Some(echo.clone()),
            _ => None,
        })
    };
    let first = echo(&receive(
        &mut node1,
        T0 + 1,
        0,
        Message::BlockDigest(block.digest(4)),
    ));
    let second = echo(&receive(
        &mut node1,
        T0 + 2,
        0,
        Message::Block(block.clone()),
    ));
    assert!(first.is_some() && first == second);
    assert_eq!(
        node1.metrics().signatures_created,
        signed,
        "nothing signed again"
    );
}

#[test]
fn bitmaps_of_the_wrong_length_or_naming_non_members_are_refused() {
    let block = node0_full_block();
    let (mut node1, _) = node1_holding(&[0, 1, 2, 3]);
    for authors in [vec![0b1111, 0], vec![0b1_1111], vec![]] {
        let mut digest = block.digest(4);
        digest.authors = authors.clone();
        let actions = receive(&mut node1, T0, 0, Message::BlockDigest(digest));
        assert_eq!(rejections(&actions), [Rejection::BadBitmap], "{authors:?}");
        let holding = Message::Holding { epoch: 0, authors };
        assert_eq!(
            rejections(&receive(&mut node1, T0, 2, holding)),
            [Rejection::BadBitmap]
        );
    }
}

/// The echo decisions (proposer, data hash) `actions` persist, in order.
fn echo_decisions(actions: &[Action]) -> Vec<(u16, [u8; 32])> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Persist {
                record:
                    PersistRecord::EchoDecision {
                        proposer,
                        data_hash,
                        ..
                    },
                ..
            } => Some((*proposer, *data_hash)),
            _ => None,
        })
        .collect()
}

/// The block of `proposer` over `observations`, with its correct data hash.
fn block_of(proposer: u16, observations: &[&Observation]) -> Block {
    let owned: Vec<Observation> = observations.iter().map(|o| (*o).clone()).collect();
    Block {
        proposer,
        ..honest_block(&owned)
    }
}

/// A version of `author`'s observation for epoch 0 that differs by `version`.
fn version_of(author: usize, version: u16) -> Observation {
    signed_observation(4, author, 0, values(author as u16 * 10 + version))
}

#[test]
fn a_block_with_an_equivocators_third_version_is_fetched_and_echoed() {
    // Node 1 already holds two versions of author 3's observation; proposer 0 saw a third
    // one first and built its block on it. Node 1 must fetch and check it, not park the
    // block for good (the stall found in review).
    let (mut node1, honest) = node1_holding(&[0, 2]);
    receive(&mut node1, T0, 3, Message::Observation(version_of(3, 1)));
    let actions = receive(&mut node1, T0, 3, Message::Observation(version_of(3, 2)));
    assert_eq!(
        rejections(&actions),
        vec![Rejection::Equivocation { author: 3 }]
    );
    let third = version_of(3, 3);
    let block = block_of(0, &[&honest[0], &honest[1], &third]);
    let actions = receive(&mut node1, T0, 0, Message::Block(block));
    assert!(
        actions.iter().any(|a| matches!(a, Action::Send { to: 0, message: Message::ObservationRequest { reference, .. } } if reference.author == 3)),
        "the missing version is requested from the proposer: {actions:?}"
    );
    let actions = receive(&mut node1, T0, 0, Message::Observation(third));
    assert_eq!(
        rejections(&actions),
        vec![Rejection::Equivocation { author: 3 }]
    );
    assert!(
        actions.iter().any(|a| matches!(a, Action::Persist { .. })),
        "the block is checked once its version arrives: {actions:?}"
    );
}

/// A block whose proposer went silent after sending it is not parked for good: at the
/// re-send round its missing observation is asked of the proposer and of the observation's
/// author, which serves its own, and the block is then checked.
#[test]
fn a_parked_blocks_missing_observation_is_pulled_from_its_author_too() {
    let (mut node1, honest) = node1_holding(&[0, 1]);
    let author_2 = signed_observation(4, 2, 0, values(2));
    let block = block_of(0, &[&honest[0], &honest[1], &author_2]);
    let actions = receive(&mut node1, T0, 0, Message::Block(block));
    assert_eq!(asked_for_author_2(&actions), [0], "first from the proposer");
    let round = node1.handle(T0 + 5_000, Input::Timer(Timer::Resend));
    assert_eq!(
        asked_for_author_2(&round),
        [0, 2],
        "then from the author as well"
    );
    // The author answers with its own observation: the block is checked and echoed.
    let mut author = node(4, 2, SubmitPolicy::Race);
    measured(&mut author, T0, 0, values(2));
    let request = Message::ObservationRequest {
        epoch: 0,
        reference: relayer_protocol::ObservationRef {
            author: 2,
            digest: observation_digest(&config(4, SubmitPolicy::Race), 0, &values(2)),
        },
    };
    let served: Vec<Observation> = receive(&mut author, T0 + 5_000, 1, request)
        .into_iter()
        .filter_map(|a| match a {
            Action::Send {
                to: 1,
                message: Message::Observation(observation),
            } => Some(observation),
            _ => None,
        })
        .collect();
    assert_eq!(served.len(), 1, "the author serves its own observation");
    let actions = receive(
        &mut node1,
        T0 + 5_000,
        2,
        Message::Observation(served[0].clone()),
    );
    assert!(
        actions.iter().any(|a| matches!(a, Action::Persist { .. })),
        "the block is checked once the observation arrives: {actions:?}"
    );
}

/// The requests for author 2's observation among `actions`, by recipient.
fn asked_for_author_2(actions: &[Action]) -> Vec<u16> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send {
                to,
                message: Message::ObservationRequest { reference, .. },
            } if reference.author == 2 => Some(*to),
            _ => None,
        })
        .collect()
}

/// Two parked blocks naming the same missing observation make one request to its author per
/// round (the author answers once anyway), and a block for an epoch still running is asked
/// of its proposer only: no honest proposer sends one, so a byzantine one cannot have this
/// member pester honest authors with made-up references.
#[test]
fn a_missing_observation_is_asked_of_its_author_once_a_round_and_only_once_ended() {
    let (mut node1, honest) = node1_holding(&[0, 1]);
    let author_2 = signed_observation(4, 2, 0, values(2));
    receive(
        &mut node1,
        T0,
        0,
        Message::Block(block_of(0, &[&honest[0], &honest[1], &author_2])),
    );
    // Rank 3 proposes once group 1's turn has come (two slots after the end).
    receive(
        &mut node1,
        T0 + 2_000,
        3,
        Message::Block(block_of(3, &[&honest[0], &honest[1], &author_2])),
    );
    let round = node1.handle(T0 + 5_000, Input::Timer(Timer::Resend));
    assert_eq!(asked_for_author_2(&round), [0, 2, 3]);

    // Epoch 1 is running at T0: its block is parked, but only its proposer is asked.
    let mut node1 = node(4, 1, SubmitPolicy::Race);
    let running: Vec<Observation> = [0u16, 1, 2]
        .iter()
        .map(|&a| signed_observation(4, usize::from(a), 1, values(a)))
        .collect();
    receive(&mut node1, T0, 0, Message::Observation(running[0].clone()));
    receive(&mut node1, T0, 1, Message::Observation(running[1].clone()));
    let block = Block {
        epoch: 1,
        ..honest_block(&running)
    };
    let first = receive(&mut node1, T0, 0, Message::Block(block));
    assert_eq!(
        asked_for_author_2(&first),
        [0],
        "parked, asked of its proposer"
    );
    let round = node1.handle(T0 + 5_000, Input::Timer(Timer::Resend));
    assert_eq!(
        asked_for_author_2(&round),
        [0],
        "never of the author while running"
    );
}

/// A proposer in its grace period that decides to echo an earlier proposer's block over
/// observations it holds proposes that block's set at once, not at the end of its grace (it
/// would propose the same set then; waiting only lets the others give up on the block). A
/// backup of the lead does not: it stands by.
#[test]
fn a_proposer_in_its_grace_period_adopts_a_checked_block_at_once() {
    let (mut node1, honest) = node1_holding(&[0, 2, 3]);
    let block = block_of(0, &[&honest[0], &honest[1], &honest[2]]);
    let actions = receive(&mut node1, T0 + 50, 0, Message::Block(block.clone()));
    assert_eq!(
        echo_decisions(&actions),
        [(0, block.data_hash)],
        "the backup"
    );
    // n = 4: rank 2 proposes from its group's start, two slots after the epoch end.
    let mut node2 = node(4, 2, SubmitPolicy::Race);
    give_observations(&mut node2, &[0, 2, 3]);
    let group_start = T0 + 2 * config(4, SubmitPolicy::Race).submit_slot_ms;
    let round = node2.handle(group_start, Input::Timer(Timer::Resend));
    assert!(
        round.iter().any(|a| matches!(
            a,
            Action::SetTimer {
                timer: Timer::Grace { epoch: 0 },
                ..
            }
        )),
        "{round:?}"
    );
    let actions = receive(
        &mut node2,
        group_start + 50,
        0,
        Message::Block(block.clone()),
    );
    assert_eq!(
        echo_decisions(&actions),
        [(0, block.data_hash), (2, block.data_hash)],
        "the echo of proposer 0's block, then this member's own block over the same set"
    );
}

#[test]
fn an_equivocator_cannot_make_a_member_hold_unbounded_versions() {
    // A byzantine proposer (author 3 too) sends block after block, each over a new version
    // of its own observation; each replaces the last parked block, so versions no parked
    // block needs are dropped (one kept as evidence).
    let (mut node1, honest) = node1_holding(&[0, 2]);
    receive(&mut node1, T0, 3, Message::Observation(version_of(3, 0)));
    for version in 1..40 {
        let alternate = version_of(3, version);
        let mut block = block_of(3, &[&honest[0], &honest[1], &alternate]);
        block.data_hash[0] ^= 1; // never echoed: the versions stay needed only while parked
        receive(&mut node1, T0, 3, Message::Block(block));
        receive(&mut node1, T0, 3, Message::Observation(alternate));
        assert!(
            node1.held_observations(0) <= 2 + 1 + 2,
            "version {version}: {} held",
            node1.held_observations(0)
        );
    }
}

#[test]
fn a_second_unfinished_block_of_a_proposer_refutes_it_instead_of_drawing_requests() {
    let (mut node1, observations) = validator();
    let requests = |actions: &[Action]| {
        actions
            .iter()
            .filter(|a| {
                matches!(
                    a,
                    Action::Send {
                        message: Message::ObservationRequest { .. },
                        ..
                    }
                )
            })
            .count()
    };
    let unknown = |version: u16| version_of(3, version);
    let first = block_of(0, &[&observations[0], &observations[1], &unknown(1)]);
    assert_eq!(
        requests(&receive(&mut node1, T0, 0, Message::Block(first.clone()))),
        1
    );
    // The same block again draws nothing new (re-send rounds ask again).
    assert_eq!(
        requests(&receive(&mut node1, T0, 0, Message::Block(first))),
        0
    );
    // Another block of the proposer: refuted, nothing requested, then everything refused.
    let second = block_of(0, &[&observations[0], &observations[2], &unknown(2)]);
    let actions = receive(&mut node1, T0, 0, Message::Block(second));
    assert_eq!(requests(&actions), 0);
    assert_eq!(
        rejections(&actions),
        vec![Rejection::ConflictingBlock { proposer: 0 }]
    );
    for version in 3..10 {
        let next = block_of(0, &[&observations[0], &observations[1], &unknown(version)]);
        let actions = receive(&mut node1, T0, 0, Message::Block(next));
        assert_eq!(requests(&actions), 0);
        assert_eq!(rejections(&actions), vec![Rejection::AggregateMismatch]);
    }
}

#[test]
fn a_proposer_whose_hash_did_not_match_gets_no_second_aggregate() {
    let (mut node1, observations) = validator();
    let extra = signed_observation(4, 3, 0, values(3));
    receive(&mut node1, T0, 3, Message::Observation(extra.clone()));
    let before = node1.metrics().aggregates_computed;
    let mut wrong = honest_block(&observations);
    wrong.data_hash[0] ^= 1;
    let actions = receive(&mut node1, T0, 0, Message::Block(wrong));
    assert_eq!(rejections(&actions), vec![Rejection::AggregateMismatch]);
    assert_eq!(node1.metrics().aggregates_computed, before + 1);
    // Other subsets, right or wrong hash: refused without computing.
    for subset in [
        [&observations[0], &observations[1], &extra],
        [&observations[0], &observations[2], &extra],
    ] {
        let right = block_of(0, &subset);
        let actions = receive(&mut node1, T0, 0, Message::Block(right));
        assert_eq!(rejections(&actions), vec![Rejection::AggregateMismatch]);
    }
    assert_eq!(node1.metrics().aggregates_computed, before + 1);
    // Another proposer's honest block is still checked and echoed.
    let other = block_of(2, &[&observations[0], &observations[1], &extra]);
    let actions = receive(&mut node1, T0, 2, Message::Block(other));
    assert!(actions.iter().any(|a| matches!(a, Action::Persist { .. })));
}

#[test]
fn a_second_block_of_the_same_proposer_gets_no_echo_even_after_a_restart() {
    let (mut node1, observations) = validator();
    let block = honest_block(&observations);
    let actions = receive(&mut node1, T0, 0, Message::Block(block.clone()));
    let id = persist_id(&actions).unwrap();
    node1.handle(T0, Input::Persisted { id });
    let decided = node1.echo_decision(0, 0).expect("decided");

    // Restart: a fresh instance restored from the store.
    let restored = RestoredState {
        echo_decisions: vec![stored_decision(0, 0, decided)],
        ..RestoredState::default()
    };
    let mut node1 =
        Protocol::new(config(4, SubmitPolicy::Race), keys(4)[1].clone(), restored).unwrap();
    let observations: Vec<Observation> = (0..4)
        .map(|a| signed_observation(4, a, 0, values(a as u16 + 20)))
        .collect();
    for observation in &observations {
        receive(
            &mut node1,
            T0,
            observation.author,
            Message::Observation(observation.clone()),
        );
    }
    let other = honest_block(&observations[1..]);
    let mut other = Block {
        proposer: 0,
        ..other
    };
    other.observations = observations[..3].iter().map(|o| reference(4, o)).collect();
    let columns: Vec<&[MixnodeReward]> = observations[..3]
        .iter()
        .map(|o| o.values.as_slice())
        .collect();
    other.data_hash =
        nym_rewards::digest::data_hash(&relayer_protocol::lower_median(&columns).unwrap());
    assert_ne!(other.data_hash, decided);
    let actions = receive(&mut node1, T0, 0, Message::Block(other));
    assert_eq!(
        rejections(&actions),
        vec![Rejection::ConflictingBlock { proposer: 0 }]
    );
    assert!(!actions.iter().any(|a| matches!(
        a,
        Action::Persist { .. }
            | Action::Send {
                message: Message::Echo(_),
                ..
            }
    )));
    // The block it did echo gets the same echo again (idempotent resend).
    let actions = receive(&mut node1, T0, 0, Message::Block(block));
    assert!(actions.iter().any(|a| matches!(a, Action::Send { message: Message::Echo(echo), .. } if echo.data_hash == decided)));
}

/// Node 0 with all four observations of epoch 0, its block proposed and persisted.
fn proposer() -> Protocol {
    let mut node0 = node(4, 0, SubmitPolicy::Race);
    measured(&mut node0, T0, 0, values(0));
    let mut proposed = None;
    for author in 1..4 {
        let observation = signed_observation(4, author, 0, values(author as u16));
        let actions = receive(
            &mut node0,
            T0,
            author as u16,
            Message::Observation(observation),
        );
        proposed = proposed.or(persist_id(&actions));
    }
    node0.handle(
        T0,
        Input::Persisted {
            id: proposed.expect("proposes with all observations"),
        },
    );
    node0
}

/// Member `member`'s echo of node 0's block with `data_hash` for epoch 0.
fn echo_of(member: usize, data_hash: [u8; 32]) -> Echo {
    let config = config(4, SubmitPolicy::Race);
    Echo {
        epoch: 0,
        proposer: 0,
        data_hash,
        signature: keys(4)[member].sign(&echo_digest(&config, 0, &data_hash)),
    }
}

/// [`proposer`] with its block certified by the echoes of members 1 and 2, and the
/// certificate it submitted at once (race policy).
fn certified_proposer() -> (Protocol, Certificate) {
    let mut node0 = proposer();
    let data_hash = node0.echo_decision(0, 0).expect("proposed");
    let mut submitted = None;
    for member in [1, 2] {
        let echo = Message::Echo(echo_of(member, data_hash));
        for action in receive(&mut node0, T0, member as u16, echo) {
            if let Action::Submit { certificate } = action {
                submitted = Some(certificate);
            }
        }
    }
    let certificate = submitted.expect("race: submits once certified");
    (node0, certificate)
}

#[test]
fn echo_for_an_unknown_block_is_rejected() {
    let mut node0 = proposer();
    let forged = Echo {
        epoch: 0,
        proposer: 0,
        data_hash: [7; 32],
        signature: vec![0; 64],
    };
    let actions = receive(&mut node0, T0, 1, Message::Echo(forged));
    assert_eq!(rejections(&actions), vec![Rejection::UnknownBlock]);
}

#[test]
fn echo_with_a_bad_signature_is_rejected() {
    let mut node0 = proposer();
    let data_hash = node0.echo_decision(0, 0).expect("proposed");
    // A valid signature by member 2 presented as member 3's, and garbage.
    let config = config(4, SubmitPolicy::Race);
    let other = keys(4)[2].sign(&echo_digest(&config, 0, &data_hash));
    for signature in [other, vec![1; 64], vec![1; 10]] {
        let bad = Echo {
            epoch: 0,
            proposer: 0,
            data_hash,
            signature,
        };
        let actions = receive(&mut node0, T0, 3, Message::Echo(bad));
        assert_eq!(
            rejections(&actions),
            vec![Rejection::BadSignature { signer: 3 }]
        );
    }
    assert!(node0.certificate(0).is_none());
}

#[test]
fn echoes_past_the_threshold_are_not_verified() {
    // Own echo + members 1 and 2: t = 3 forms the certificate.
    let (mut node0, certificate) = certified_proposer();
    assert!(node0.certificate(0).is_some());
    let verified = node0.metrics().signature_verifications;
    let actions = receive(
        &mut node0,
        T0,
        3,
        Message::Echo(echo_of(3, certificate.data_hash)),
    );
    assert!(actions.is_empty(), "{actions:?}");
    assert_eq!(node0.metrics().signature_verifications, verified);
}

#[test]
fn an_observation_is_sent_only_once_stored_and_resent_unchanged_after_a_restart() {
    let mut node0 = node(4, 0, SubmitPolicy::Race);
    let actions = feed_measured(&mut node0, T0, 0, Some(values(0)));
    let sent = |actions: &[Action]| {
        actions
            .iter()
            .filter_map(|action| match action {
                Action::Broadcast {
                    message: Message::Observation(observation),
                } => Some(observation.clone()),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    assert!(
        sent(&actions).is_empty(),
        "nothing sent before it is stored"
    );
    let (id, stored) = actions
        .iter()
        .find_map(|action| match action {
            Action::Persist {
                id,
                record: PersistRecord::OwnObservation { observation },
            } => Some((*id, observation.clone())),
            _ => None,
        })
        .expect("the observation is stored first");
    assert_eq!(
        sent(&node0.handle(T0, Input::Persisted { id })),
        vec![stored.clone()]
    );
    // Restarted with the store's copy: measurements that now differ do not make a second
    // version; the stored bytes are sent again.
    let restored = RestoredState {
        own_observations: vec![stored.clone()],
        ..RestoredState::default()
    };
    let mut node0 =
        Protocol::new(config(4, SubmitPolicy::Race), keys(4)[0].clone(), restored).unwrap();
    let actions = feed_measured(&mut node0, T0 + 1_000, 0, Some(values(7)));
    assert_eq!(sent(&actions), vec![stored]);
    assert!(
        !actions.iter().any(|a| matches!(a, Action::Persist { .. })),
        "nothing new is signed: {actions:?}"
    );
}

#[test]
fn a_failed_write_of_the_own_observation_sends_nothing_and_measures_again() {
    let mut node0 = node(4, 0, SubmitPolicy::Race);
    let actions = feed_measured(&mut node0, T0, 0, Some(values(0)));
    let id = persist_id(&actions).unwrap();
    let actions = node0.handle(T0, Input::PersistFailed { id });
    assert!(actions.is_empty(), "{actions:?}");
    let actions = node0.handle(T0 + 5_000, Input::Timer(Timer::Resend));
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::Measure { epoch: 0 })),
        "measured again at the next re-send round: {actions:?}"
    );
}

#[test]
fn invalid_own_values_are_reported_not_signed() {
    let mut node0 = node(4, 0, SubmitPolicy::Race);
    let actions = feed_measured(&mut node0, T0, 0, Some(values(0)[..2].to_vec()));
    assert!(matches!(
        rejections(&actions)[..],
        [Rejection::InvalidOwnValues(_)]
    ));
    assert_eq!(node0.metrics().signatures_created, 0);
}

#[test]
fn staggered_node_submits_only_at_its_slot_after_querying() {
    let mut net = Net::new(4, SubmitPolicy::Staggered);
    net.end_epoch(0);
    net.deliver();
    // Everyone is certified; nobody has submitted before slots fire... except rank 0, whose
    // slot is the epoch end itself (already past).
    net.run_until(T0);
    assert!(net.submissions.len() <= 1);
    net.run_until(T0 + 5_000);
    assert_eq!(
        net.submissions.len(),
        1,
        "later ranks find the epoch on chain and stay quiet"
    );
}

// ---------------------------------------------------------------- finalization (node core)

#[test]
fn the_winner_stores_its_record_echoers_their_aggregate_and_others_the_winners_copy() {
    let mut net = Net::new(4, SubmitPolicy::Staggered);
    net.down[3] = true;
    net.end_epoch(0);
    net.run_until(T0 + 1_000);
    // Node 3 missed the epoch; back, it learns the winner from the chain and fetches.
    net.restart(3);
    net.run_until(T0 + 10_000);
    let (winner, _) = net.chain.get(&0).cloned().expect("on chain");
    assert_eq!(winner, 0, "rank 0 submits first");
    let record = OfficialEpoch::from(net.record(0).unwrap().as_ref());
    let sources = [
        OfficialSource::Own,
        OfficialSource::Aggregate,
        OfficialSource::Aggregate,
        OfficialSource::Peer,
    ];
    for (i, expected) in sources.into_iter().enumerate() {
        let (copy, source) = net.stored(i, 0).expect("every node stores the epoch");
        assert_eq!(copy, &record, "node {i} holds the contract's data");
        assert_eq!(*source, expected, "node {i}");
        assert!(net.nodes[i].is_final(0));
    }
    let finals: BTreeSet<usize> = net.finals.iter().map(|(i, ..)| *i).collect();
    assert_eq!(finals.len(), 4, "every node reports the epoch final once");
}

#[test]
fn the_winner_tells_the_others_so_they_read_the_chain_at_once() {
    let mut net = Net::new(4, SubmitPolicy::Staggered);
    net.end_epoch(0);
    // No re-send round has run yet (the first is 5 s after the start): the hint did it.
    net.run_until(T0 + 1_000);
    assert!((0..4).all(|i| net.nodes[i].is_final(0)));
    // A hint is followed once per hinting member and epoch, and only for ended epochs.
    let mut node1 = node(4, 1, SubmitPolicy::Staggered);
    let reads = |actions: &[Action]| {
        actions
            .iter()
            .filter(|a| matches!(a, Action::ReadChain { .. }))
            .count()
    };
    let hint = || Message::Accepted { epoch: 0 };
    assert_eq!(reads(&receive(&mut node1, T0, 0, hint())), 1);
    assert_eq!(reads(&receive(&mut node1, T0, 0, hint())), 0);
    assert_eq!(reads(&receive(&mut node1, T0, 2, hint())), 1);
    let running = Message::Accepted { epoch: 1 };
    assert_eq!(reads(&receive(&mut node1, T0, 0, running)), 0);
}

#[test]
fn an_observation_is_re_sent_only_to_a_member_that_lacks_it() {
    let mut node0 = node(4, 0, SubmitPolicy::Staggered);
    measured(&mut node0, T0, 0, values(0));
    let sent_own = |actions: &[Action]| {
        actions
            .iter()
            .filter(|a| matches!(a, Action::Send { message: Message::Observation(o), .. } if o.author == 0))
            .count()
    };
    let holding = |authors: &[u16]| Message::Holding {
        epoch: 0,
        authors: relayer_protocol::holding_bitmap(4, authors.iter().copied()),
    };
    assert_eq!(sent_own(&receive(&mut node0, T0, 1, holding(&[0, 1]))), 0);
    assert_eq!(sent_own(&receive(&mut node0, T0, 1, holding(&[1]))), 1);
    // At most once per re-send interval per peer, however often it asks.
    assert_eq!(sent_own(&receive(&mut node0, T0 + 10, 1, holding(&[1]))), 0);
    assert_eq!(sent_own(&receive(&mut node0, T0 + 10, 2, holding(&[]))), 1);
    assert_eq!(
        sent_own(&receive(&mut node0, T0 + 5_000, 1, holding(&[1]))),
        1
    );
    // A re-send round sends what this member holds, not its observation.
    let round = node0.handle(T0 + 5_000, Input::Timer(Timer::Resend));
    assert!(!round.iter().any(|a| matches!(
        a,
        Action::Broadcast {
            message: Message::Observation(_)
        }
    )));
    let asks = |actions: &[Action]| {
        actions.iter().any(|a| {
            matches!(
                a,
                Action::Broadcast {
                    message: Message::Holding { .. }
                }
            )
        })
    };
    assert!(round.iter().any(|a| matches!(a, Action::Broadcast { message: Message::Holding { epoch: 0, authors } } if relayer_protocol::holds(authors, 0))));
    // With k = 3 usable observations it can propose: it asks for no more.
    give_observations(&mut node0, &[1, 2]);
    assert!(!asks(
        &node0.handle(T0 + 10_000, Input::Timer(Timer::Resend))
    ));
}

#[test]
fn a_read_overtaking_the_own_submission_waits_for_its_outcome_and_tx() {
    // Found in CI: a re-send round's chain read returned the record of this member's own
    // submission before the submission's result, and the epoch was stored as won without
    // its transaction.
    let (mut node0, certificate) = certified_proposer();
    let record = record_of(&certificate, 0);
    let actions = node0.handle(
        T0 + 100,
        Input::ChainRecord {
            epoch: 0,
            record: Some(Box::new(record.clone())),
        },
    );
    assert!(
        !actions.iter().any(|a| matches!(a, Action::Persist { .. })),
        "{actions:?}"
    );
    let actions = node0.handle(
        T0 + 200,
        Input::Submitted {
            epoch: 0,
            record: Some(Box::new(record)),
            tx_ref: Some("ABC".into()),
        },
    );
    let stored = actions.iter().find_map(|a| match a {
        Action::Persist {
            record: PersistRecord::Official { source, tx_ref, .. },
            ..
        } => Some((*source, tx_ref.clone())),
        _ => None,
    });
    assert_eq!(stored, Some((OfficialSource::Own, Some("ABC".to_string()))));
}

#[test]
fn a_tampered_or_unreachable_winner_copy_is_replaced_by_the_contracts() {
    for tampered in [true, false] {
        let mut net = Net::new(4, SubmitPolicy::Race);
        // Whoever wins serves a tampered copy, or none.
        let all: BTreeSet<usize> = (0..4).collect();
        if tampered {
            net.tampering = all;
        } else {
            net.api_down = all;
        }
        // Node 3 misses the epoch, so it has no aggregate of its own and fetches.
        net.down[3] = true;
        net.end_epoch(0);
        net.run_until(T0 + 1_000);
        net.restart(3);
        net.run_until(T0 + 10_000);
        let record = OfficialEpoch::from(net.record(0).unwrap().as_ref());
        assert_eq!(
            net.stored(3, 0),
            Some(&(record.clone(), OfficialSource::Contract)),
        );
        let fallbacks = net
            .rejected
            .iter()
            .filter(|(_, reason)| {
                if tampered {
                    matches!(reason, Rejection::WinnerCopyInvalid { epoch: 0, .. })
                } else {
                    matches!(reason, Rejection::WinnerUnreachable { epoch: 0, .. })
                }
            })
            .count();
        assert_eq!(fallbacks, 1, "the fetching member says why it fell back");
    }
}

#[test]
fn a_failed_official_write_keeps_the_epoch_until_a_retry_stores_it() {
    let mut net = Net::new(4, SubmitPolicy::Staggered);
    net.failing_official_writes.insert(2, 2);
    net.end_epoch(0);
    net.run_until(T0 + 2_000);
    assert!(net.chain.contains_key(&0));
    assert!(net.stored(2, 0).is_none(), "both writes so far failed");
    assert!(!net.nodes[2].is_final(0), "the epoch is not dropped");
    assert!(net.nodes[2].is_settled(0), "it is known to be on chain");
    // The re-send rounds read the chain again and retry until the write succeeds.
    net.run_until(T0 + 20_000);
    assert!(net.stored(2, 0).is_some());
    assert!(net.nodes[2].is_final(0));
    assert_eq!(net.nodes[2].metrics().official_store_failures, 2);
}

#[test]
fn a_failed_submission_is_retried_only_after_the_backoff() {
    let (mut node0, _) = certified_proposer();
    let config = config(4, SubmitPolicy::Race);
    let failed = node0.handle(
        T0 + 10,
        Input::Submitted {
            epoch: 0,
            record: None,
            tx_ref: None,
        },
    );
    let is_submit = |actions: &[Action]| actions.iter().any(|a| matches!(a, Action::Submit { .. }));
    assert!(!is_submit(&failed), "no immediate resubmission");
    let retry_at = submit_retry_at(&failed, 0);
    assert_eq!(retry_at, T0 + 10 + config.resend_interval_ms);
    // A chain read in the meantime (a re-send round) does not resubmit either.
    let early = node0.handle(
        T0 + 20,
        Input::ChainRecord {
            epoch: 0,
            record: None,
        },
    );
    assert!(!is_submit(&early));
    let timer = node0.handle(retry_at, Input::Timer(Timer::SubmitRetry { epoch: 0 }));
    assert!(timer.contains(&Action::ReadChain { epoch: 0 }));
    let retried = node0.handle(
        retry_at,
        Input::ChainRecord {
            epoch: 0,
            record: None,
        },
    );
    assert!(is_submit(&retried), "submits again after the backoff");
}

#[test]
fn start_resumes_recent_unfinished_epochs_and_arms_the_epoch_clock() {
    // At epoch 5 with catch_up_epochs = 2 the window starts at epoch 2: epochs 2, 3 and 4 are
    // resumed unless final.
    let now = 5 * EPOCH_SECS * 1_000 + 300;
    let restored = RestoredState {
        final_epochs: vec![4],
        ..RestoredState::default()
    };
    let mut node0 = Protocol::new(
        config(4, SubmitPolicy::Staggered),
        keys(4)[0].clone(),
        restored,
    )
    .unwrap();
    let actions = node0.handle(now, Input::Start);
    for epoch in [2, 3] {
        assert!(actions.contains(&Action::Measure { epoch }));
        assert!(actions.contains(&Action::ReadChain { epoch }));
    }
    assert!(
        !actions.contains(&Action::Measure { epoch: 4 }),
        "epoch 4 is final"
    );
    assert!(
        !actions.contains(&Action::Measure { epoch: 1 }),
        "outside the window"
    );
    assert!(actions.contains(&Action::SetTimer {
        at_ms: 6 * EPOCH_SECS * 1_000,
        timer: Timer::EpochEnd { epoch: 5 },
    }));
    assert!(actions.iter().any(|a| matches!(
        a,
        Action::SetTimer {
            timer: Timer::Resend,
            ..
        }
    )));
    let ended = node0.handle(
        6 * EPOCH_SECS * 1_000,
        Input::Timer(Timer::EpochEnd { epoch: 5 }),
    );
    assert_eq!(
        ended,
        vec![
            Action::Measure { epoch: 5 },
            Action::SetTimer {
                at_ms: 7 * EPOCH_SECS * 1_000,
                timer: Timer::EpochEnd { epoch: 6 },
            },
        ]
    );
    let none = feed_measured(&mut node0, 6 * EPOCH_SECS * 1_000, 5, None);
    assert_eq!(
        rejections(&none),
        vec![Rejection::NoMeasurements { epoch: 5 }]
    );
}

#[test]
fn a_key_outside_the_signer_set_is_refused() {
    let stranger = Keypair::from_seed(&[200; 32]);
    let err = Protocol::new(
        config(4, SubmitPolicy::Race),
        stranger,
        RestoredState::default(),
    )
    .unwrap_err();
    assert!(matches!(
        err,
        relayer_protocol::NewError::NotAMember { version: 1, .. }
    ));
}

#[test]
fn an_epoch_this_member_has_no_measurements_of_is_still_finalized() {
    // Node 3 has no samples for epoch 0: it signs nothing, yet it checks and echoes the
    // others' block and stores the official data.
    let mut net = Net::new(4, SubmitPolicy::Staggered);
    net.unmeasured.insert(3);
    net.end_epoch(0);
    net.run_until(T0 + 2_000);
    assert!(net.chain.contains_key(&0), "three members certify it");
    assert!(
        net.rejected
            .contains(&(3, Rejection::NoMeasurements { epoch: 0 }))
    );
    assert!(net.nodes[3].is_final(0));
    assert_eq!(net.stored(3, 0).unwrap().1, OfficialSource::Aggregate);
}

#[test]
fn a_submission_answered_with_another_epochs_record_backs_off_exponentially() {
    let (mut node0, _) = certified_proposer();
    let config = config(4, SubmitPolicy::Race);
    // A record for epoch 7 answers the submission of epoch 0: a failed read, not an outcome.
    let mut wrong = Net::new(4, SubmitPolicy::Race);
    wrong.chain.insert(
        7,
        (
            1,
            Certificate {
                epoch: 7,
                signer_set_version: 1,
                rewards: values(1),
                data_hash: [0; 32],
                signatures: vec![],
            },
        ),
    );
    let mut now = T0 + 10;
    let mut waits = Vec::new();
    for _ in 0..6 {
        let actions = node0.handle(
            now,
            Input::Submitted {
                epoch: 0,
                record: wrong.record(7),
                tx_ref: None,
            },
        );
        assert!(
            rejections(&actions).contains(&Rejection::RecordForAnotherEpoch { asked: 0, got: 7 })
        );
        assert!(!node0.is_settled(0));
        let retry_at = submit_retry_at(&actions, 0);
        waits.push(retry_at - now);
        node0.handle(retry_at, Input::Timer(Timer::SubmitRetry { epoch: 0 }));
        let resubmit = node0.handle(
            retry_at,
            Input::ChainRecord {
                epoch: 0,
                record: None,
            },
        );
        assert!(resubmit.iter().any(|a| matches!(a, Action::Submit { .. })));
        now = retry_at;
    }
    let interval = config.resend_interval_ms;
    assert_eq!(
        waits,
        vec![
            interval,
            2 * interval,
            4 * interval,
            8 * interval,
            16 * interval,
            16 * interval
        ],
        "doubling up to a cap"
    );
}

/// When the submission retry timer of `epoch` among `actions` fires.
fn submit_retry_at(actions: &[Action], epoch: u64) -> u64 {
    actions
        .iter()
        .find_map(|action| match action {
            Action::SetTimer {
                at_ms,
                timer: Timer::SubmitRetry { epoch: timer_epoch },
            } if *timer_epoch == epoch => Some(*at_ms),
            _ => None,
        })
        .expect("a retry timer")
}

/// A member restarted from a store that may not hold all it signed (the last run did not stop
/// cleanly, at `T0`): epoch 0 ended before, epoch 1 was running, epoch 2 began after.
fn restarted_uncleanly(index: usize, restored: RestoredState) -> Protocol {
    let restored = RestoredState {
        unaccounted_before_ms: Some(T0),
        ..restored
    };
    Protocol::new(
        config(4, SubmitPolicy::Race),
        keys(4)[index].clone(),
        restored,
    )
    .unwrap()
}

/// Whether `actions` sign or send anything of this member's own: a write of a new
/// observation, block or echo decision, or an observation, block or echo sent.
fn signs_anything(actions: &[Action]) -> bool {
    actions.iter().any(|action| match action {
        Action::Persist { .. } => true,
        Action::Send { message, .. } | Action::Broadcast { message } => matches!(
            message,
            Message::Observation(_)
                | Message::Block(_)
                | Message::BlockDigest(_)
                | Message::Echo(_)
        ),
        _ => false,
    })
}

#[test]
fn after_an_unclean_restart_nothing_new_is_signed_for_epochs_that_began_before_it() {
    // Node 0 neither observes nor proposes epoch 0, though it holds k observations.
    let mut node0 = restarted_uncleanly(0, RestoredState::default());
    assert!(node0.abstains(0) && node0.abstains(1) && !node0.abstains(2));
    let mut actions = feed_measured(&mut node0, T0, 0, Some(values(0)));
    actions.extend(give_observations(&mut node0, &[1, 2, 3]));
    actions.extend(node0.handle(T0 + 200, Input::Timer(Timer::Grace { epoch: 0 })));
    assert!(!signs_anything(&actions), "{actions:?}");

    // Node 1 echoes no block of epoch 0 it had not decided.
    let mut node1 = restarted_uncleanly(1, RestoredState::default());
    give_observations(&mut node1, &[0, 2, 3]);
    let observations: Vec<Observation> = [0, 2, 3]
        .iter()
        .map(|&a| signed_observation(4, a, 0, values(a as u16)))
        .collect();
    let block = honest_block(&observations);
    let actions = receive(&mut node1, T0, 0, Message::Block(block.clone()));
    assert!(!signs_anything(&actions), "{actions:?}");

    // What the store holds is sent again as it was: the stored observation, and the echo of
    // the block it had decided.
    let own = signed_observation(4, 1, 0, values(1));
    let mut node1 = restarted_uncleanly(
        1,
        RestoredState {
            own_observations: vec![own.clone()],
            echo_decisions: vec![stored_decision(0, 0, block.data_hash)],
            ..RestoredState::default()
        },
    );
    let actions = feed_measured(&mut node1, T0, 0, Some(values(99)));
    assert!(
        actions.iter().any(|action| matches!(
            action,
            Action::Broadcast { message: Message::Observation(sent) } if *sent == own
        )),
        "{actions:?}"
    );
    give_observations(&mut node1, &[0, 2, 3]);
    let actions = receive(&mut node1, T0, 0, Message::Block(block.clone()));
    assert!(
        actions.iter().any(|action| matches!(
            action,
            Action::Send { message: Message::Echo(echo), .. } if echo.data_hash == block.data_hash
        )),
        "{actions:?}"
    );

    // Epoch 2 began after the restart: worked on as usual.
    let next = T0 + 2 * EPOCH_SECS * 1_000;
    let actions = measured(&mut node1, next, 2, values(1));
    assert!(
        actions.iter().any(|action| matches!(
            action,
            Action::Broadcast { message: Message::Observation(sent) } if sent.epoch == 2
        )),
        "{actions:?}"
    );
}
