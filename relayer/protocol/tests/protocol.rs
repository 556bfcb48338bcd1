//! The protocol without sockets: a small in-memory network of real state machines, plus
//! byzantine inputs crafted by hand. Every rule of DESIGN section 1 has a test here.

use std::collections::{BTreeMap, VecDeque};

use nym_rewards::msg::EpochClock;
use relayer_protocol::{
    Action, Block, Certificate, Echo, Input, Keypair, Message, MixnodeReward, Observation,
    ObservationRef, Protocol, ProtocolConfig, Rejection, RestoredState, SignatureCheck,
    SubmitPolicy, Timer, echo_digest, observation_digest, verify_signature,
};

const EPOCH_SECS: u64 = 10;
/// Just after epoch 0 ended.
const T0: u64 = EPOCH_SECS * 1_000 + 5;

fn keys(n: usize) -> Vec<Keypair> {
    (0..n)
        .map(|i| Keypair::from_seed(&[i as u8 + 1; 32]))
        .collect()
}

fn config(n: usize, policy: SubmitPolicy) -> ProtocolConfig {
    ProtocolConfig {
        chain_id: "testing".into(),
        contract_addr: "wasm1contract".into(),
        signer_set_version: 1,
        members: keys(n).iter().map(Keypair::public).collect(),
        threshold: 2 * n / 3 + 1,
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

/// An in-memory network: instant delivery, immediate persist acks, a first-wins chain.
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
}

impl Net {
    fn new(n: usize, policy: SubmitPolicy) -> Self {
        Self {
            nodes: (0..n).map(|i| node(n, i, policy)).collect(),
            down: vec![false; n],
            now: T0,
            queue: VecDeque::new(),
            timers: Vec::new(),
            chain: BTreeMap::new(),
            submissions: Vec::new(),
            rejected: Vec::new(),
            persisted: Vec::new(),
        }
    }

    fn end_epoch(&mut self, epoch: u64) {
        for i in 0..self.nodes.len() {
            if !self.down[i] {
                self.queue.push_back((
                    i,
                    Input::EpochEnded {
                        epoch,
                        values: values(i as u16),
                    },
                ));
            }
        }
    }

    fn deliver(&mut self) {
        while let Some((i, input)) = self.queue.pop_front() {
            if self.down[i] {
                continue;
            }
            let actions = self.nodes[i].handle(self.now, input);
            for action in actions {
                self.perform(i, action);
            }
        }
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
            Action::Persist { id, record } => {
                let relayer_protocol::PersistRecord::EchoDecision {
                    epoch,
                    proposer,
                    data_hash,
                } = record;
                self.persisted.push((i, epoch, proposer, data_hash));
                self.queue.push_back((i, Input::Persisted { id }));
            }
            Action::SetTimer { at_ms, timer } => self.timers.push((at_ms, i, timer)),
            Action::QueryChain { epoch } => {
                let on_chain = self.chain.contains_key(&epoch);
                self.queue
                    .push_back((i, Input::ChainStatus { epoch, on_chain }));
            }
            Action::Submit { certificate } => {
                let epoch = certificate.epoch;
                self.submissions.push((i, epoch));
                self.chain.entry(epoch).or_insert((i, certificate));
                self.queue.push_back((
                    i,
                    Input::SubmitOutcome {
                        epoch,
                        on_chain: true,
                    },
                ));
            }
            Action::Certified { .. } => {}
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
}

fn assert_certificate_verifies(n: usize, certificate: &Certificate) {
    let config = config(n, SubmitPolicy::Race);
    assert!(certificate.signatures.len() >= config.threshold);
    assert_eq!(
        certificate.data_hash,
        nym_rewards::digest::data_hash(&certificate.rewards)
    );
    let digest = echo_digest(&config, certificate.epoch, &certificate.data_hash);
    for (index, signature) in &certificate.signatures {
        assert_eq!(
            verify_signature(&digest, signature, &config.members[*index as usize]),
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
    assert_eq!(
        net.submissions.len(),
        1,
        "staggered: one transaction, by rank 0"
    );
    assert_eq!(net.submissions[0].0, winner);
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
fn race_policy_has_everyone_submit() {
    let mut net = Net::new(4, SubmitPolicy::Race);
    net.end_epoch(0);
    net.run_until(T0 + 1_000);
    assert_eq!(net.submissions.len(), 4);
    assert_eq!(net.chain.len(), 1);
}

#[test]
fn message_and_signature_work_is_quadratic() {
    let mut net = Net::new(7, SubmitPolicy::Staggered);
    net.end_epoch(0);
    net.run_until(T0 + 20_000);
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
    node0.handle(
        T0,
        Input::EpochEnded {
            epoch: 0,
            values: values(0),
        },
    );
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
    let mut node1 = node(4, 1, SubmitPolicy::Race);
    let observations: Vec<Observation> = (0..3)
        .map(|a| signed_observation(4, a, 0, values(a as u16)))
        .collect();
    for observation in &observations {
        receive(
            &mut node1,
            T0,
            observation.author,
            Message::Observation(observation.clone()),
        );
    }
    let block = honest_block(&observations);
    let actions = receive(&mut node1, T0, 0, Message::Send(block.clone()));
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

/// Node 1 holding observations of authors 0..3 for epoch 0.
fn validator() -> (Protocol, Vec<Observation>) {
    let mut node1 = node(4, 1, SubmitPolicy::Race);
    let observations: Vec<Observation> = (0..3)
        .map(|a| signed_observation(4, a, 0, values(a as u16)))
        .collect();
    for observation in &observations {
        let actions = receive(
            &mut node1,
            T0,
            observation.author,
            Message::Observation(observation.clone()),
        );
        assert!(rejections(&actions).is_empty());
    }
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
    node0.handle(
        T0,
        Input::EpochEnded {
            epoch: 0,
            values: values(0),
        },
    );
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
    let actions = node0.handle(T0 + 200, Input::Timer(Timer::Grace { epoch: 0 }));
    let id = persist_id(&actions).expect("proposes");
    let actions = node0.handle(T0 + 200, Input::Persisted { id });
    let block = actions
        .iter()
        .find_map(|a| match a {
            Action::Broadcast {
                message: Message::Send(block),
            } => Some(block.clone()),
            _ => None,
        })
        .expect("block sent");
    let authors: Vec<u16> = block.observations.iter().map(|r| r.author).collect();
    assert_eq!(
        authors,
        vec![0, 2, 3],
        "the equivocating author is excluded"
    );
}

#[test]
fn block_with_too_few_authors_is_rejected() {
    let (mut node1, observations) = validator();
    let block = honest_block(&observations[..2]);
    let actions = receive(&mut node1, T0, 0, Message::Send(block));
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
    let actions = receive(&mut node1, T0, 0, Message::Send(block));
    assert_eq!(rejections(&actions), vec![Rejection::UnsortedAuthors]);
}

#[test]
fn block_whose_aggregate_does_not_match_is_rejected() {
    let (mut node1, observations) = validator();
    let mut block = honest_block(&observations);
    block.data_hash[0] ^= 1;
    let actions = receive(&mut node1, T0, 0, Message::Send(block));
    assert_eq!(rejections(&actions), vec![Rejection::AggregateMismatch]);
}

#[test]
fn block_from_someone_other_than_its_proposer_is_rejected() {
    let (mut node1, observations) = validator();
    let block = honest_block(&observations);
    let actions = receive(&mut node1, T0, 2, Message::Send(block));
    assert_eq!(rejections(&actions), vec![Rejection::WrongSender]);
}

#[test]
fn wrong_version_and_old_epochs_are_rejected() {
    let (mut node1, observations) = validator();
    let mut block = honest_block(&observations);
    block.signer_set_version = 2;
    let actions = receive(&mut node1, T0, 0, Message::Send(block));
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
    let actions = receive(&mut node1, T0, 0, Message::Send(block));
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
fn a_second_block_of_the_same_proposer_gets_no_echo_even_after_a_restart() {
    let (mut node1, observations) = validator();
    let block = honest_block(&observations);
    let actions = receive(&mut node1, T0, 0, Message::Send(block.clone()));
    let id = persist_id(&actions).unwrap();
    node1.handle(T0, Input::Persisted { id });
    let decided = node1.echo_decision(0, 0).expect("decided");

    // Restart: a fresh instance restored from the store.
    let restored = RestoredState {
        echo_decisions: vec![(0, 0, decided)],
        final_epochs: vec![],
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
    let actions = receive(&mut node1, T0, 0, Message::Send(other));
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
    let actions = receive(&mut node1, T0, 0, Message::Send(block));
    assert!(actions.iter().any(|a| matches!(a, Action::Send { message: Message::Echo(echo), .. } if echo.data_hash == decided)));
}

/// Node 0 with all four observations of epoch 0, its block proposed and persisted.
fn proposer() -> Protocol {
    let mut node0 = node(4, 0, SubmitPolicy::Race);
    node0.handle(
        T0,
        Input::EpochEnded {
            epoch: 0,
            values: values(0),
        },
    );
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
fn invalid_own_values_are_reported_not_signed() {
    let mut node0 = node(4, 0, SubmitPolicy::Race);
    let actions = node0.handle(
        T0,
        Input::EpochEnded {
            epoch: 0,
            values: values(0)[..2].to_vec(),
        },
    );
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
