//! One simulated run: the fault plan drawn from the seed, the event loop on the virtual
//! clock, and the simulated node driver (network, store, chain calls, official data) around
//! each protocol instance.

use std::collections::{BTreeMap, BTreeSet};
use std::panic::AssertUnwindSafe;

use nym_rewards::msg::{EpochClock, MixnodeReward};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use relayer_protocol::{
    Action, Certificate, Hash, Input, Keypair, MemberIndex, Message, PersistRecord, Protocol,
    ProtocolConfig, RestoredState, SignatureCheck, Timer, default_observation_threshold,
    echo_digest, faulty_tolerated, verify_signature,
};
use sha2::{Digest, Sha256};

use crate::adversary::{Adversary, Behaviour, Target};
use crate::chain::{SIM_CHAIN_ID, SimChain};
use crate::config::{FaultProfile, PlantedBug, SimConfig, SimError};
use crate::invariants::{Checker, OfficialData};
use crate::report::{MessageStats, SimReport};
use crate::scheduler::Scheduler;

const GENESIS_MS: u64 = 1_700_000_000_000;
const EPOCH_MS: u64 = 10_000;
const GRACE_MS: u64 = 200;
const SLOT_MS: u64 = 500;
const RESEND_MS: u64 = 1_000;
const CATCH_UP_EPOCHS: u64 = 3;
/// An epoch must be final this long after it ended (plus any partition time in between).
const LIVENESS_BOUND_MS: u64 = 2 * EPOCH_MS;
const ADVERSARY_TICK_MS: u64 = 700;
/// Latest moment after an epoch's end at which a node's metrics close it.
const EPOCH_END_JITTER_MS: u64 = 100;

/// How the network behaves in a profile.
struct NetworkModel {
    delay_ms: (u64, u64),
    drop: f64,
    duplicate: f64,
    chain_delay_ms: (u64, u64),
}

impl NetworkModel {
    fn for_profile(profile: FaultProfile) -> Self {
        match profile {
            FaultProfile::None => Self {
                delay_ms: (1, 5),
                drop: 0.0,
                duplicate: 0.0,
                chain_delay_ms: (5, 10),
            },
            FaultProfile::Network | FaultProfile::All => Self {
                delay_ms: (1, 80),
                drop: 0.05,
                duplicate: 0.03,
                chain_delay_ms: (5, 60),
            },
            FaultProfile::Crash | FaultProfile::Byzantine => Self {
                delay_ms: (1, 20),
                drop: 0.0,
                duplicate: 0.0,
                chain_delay_ms: (5, 30),
            },
        }
    }
}

enum ChainCall {
    Query(u64),
    Submit(Certificate),
}

enum Event {
    EpochEnd {
        node: usize,
        epoch: u64,
    },
    Deliver {
        to: usize,
        from: usize,
        message: Message,
    },
    Timer {
        node: usize,
        incarnation: u32,
        timer: Timer,
    },
    Persisted {
        node: usize,
        incarnation: u32,
        id: u64,
        record: PersistRecord,
    },
    ChainCall {
        node: usize,
        incarnation: u32,
        call: ChainCall,
    },
    ChainReply {
        node: usize,
        incarnation: u32,
        input: Input,
    },
    Crash {
        node: usize,
    },
    Restart {
        node: usize,
    },
    Partition {
        side: Vec<bool>,
    },
    Heal,
    AdversaryTick {
        node: usize,
    },
    Deadline {
        epoch: u64,
    },
}

impl Event {
    /// A compact identity of the event for the trace hash.
    fn trace_key(&self) -> [u64; 3] {
        match self {
            Event::EpochEnd { node, epoch } => [0, *node as u64, *epoch],
            Event::Deliver { to, from, message } => {
                [1, (*to as u64) << 16 | *from as u64, message.epoch()]
            }
            Event::Timer { node, .. } => [2, *node as u64, 0],
            Event::Persisted { node, id, .. } => [3, *node as u64, *id],
            Event::ChainCall { node, .. } => [4, *node as u64, 0],
            Event::ChainReply { node, .. } => [5, *node as u64, 0],
            Event::Crash { node } => [6, *node as u64, 0],
            Event::Restart { node } => [7, *node as u64, 0],
            Event::Partition { .. } => [8, 0, 0],
            Event::Heal => [9, 0, 0],
            Event::AdversaryTick { node } => [10, *node as u64, 0],
            Event::Deadline { epoch } => [11, *epoch, 0],
        }
    }
}

/// What a node's store holds durably.
#[derive(Default)]
struct Store {
    echo_decisions: BTreeMap<(u64, MemberIndex), Hash>,
    official: BTreeMap<u64, OfficialData>,
}

struct SimNode {
    key: Keypair,
    protocol: Option<Protocol>,
    /// Bumped on every crash; events of an older incarnation are void.
    incarnation: u32,
    store: Store,
    adversary: Option<Adversary>,
    certificates: BTreeMap<u64, Certificate>,
}

/// Faults drawn from the seed before the run starts.
#[derive(Default)]
struct FaultPlan {
    byzantine: BTreeMap<usize, Behaviour>,
    /// `(node, crash at, restart at)`.
    crashes: Vec<(usize, u64, u64)>,
    /// `(start, heal, side)`.
    partitions: Vec<(u64, u64, Vec<bool>)>,
}

fn epoch_end_ms(epoch: u64) -> u64 {
    GENESIS_MS + (epoch + 1) * EPOCH_MS
}

fn epoch_at_ms(now_ms: u64) -> u64 {
    now_ms.saturating_sub(GENESIS_MS) / EPOCH_MS
}

impl FaultPlan {
    fn draw(config: &SimConfig, rng: &mut ChaCha8Rng) -> Self {
        let n = config.nodes;
        let f = faulty_tolerated(n);
        let mut plan = FaultPlan::default();
        if config.faults.byzantine() {
            let count = if config.faults == FaultProfile::All {
                rng.gen_range(0..=f)
            } else {
                f
            };
            let mut members: Vec<usize> = (0..n).collect();
            members.shuffle(rng);
            for node in members.into_iter().take(count) {
                let behaviour = *Behaviour::ALL.choose(rng).unwrap_or(&Behaviour::Flood);
                plan.byzantine.insert(node, behaviour);
            }
        }
        let last_end = epoch_end_ms(config.epochs - 1);
        if config.faults.crashes() {
            for epoch in 0..config.epochs {
                if !rng.gen_bool(0.6) {
                    continue;
                }
                let at = epoch_end_ms(epoch) - EPOCH_MS + rng.gen_range(0..EPOCH_MS);
                let restart = (at + rng.gen_range(1_000..=15_000)).min(last_end);
                let node = rng.gen_range(0..n);
                let overlapping = plan
                    .crashes
                    .iter()
                    .filter(|(_, start, end)| *start < restart && at < *end)
                    .count();
                let busy = plan
                    .crashes
                    .iter()
                    .any(|(other, start, end)| *other == node && *start < restart && at < *end);
                if at < restart
                    && !busy
                    && !plan.byzantine.contains_key(&node)
                    && plan.byzantine.len() + overlapping < f
                {
                    plan.crashes.push((node, at, restart));
                }
            }
        }
        if config.faults.network_faults() {
            let mut free_from = GENESIS_MS;
            for epoch in 0..config.epochs {
                if !rng.gen_bool(0.3) {
                    continue;
                }
                let start =
                    (epoch_end_ms(epoch) - EPOCH_MS + rng.gen_range(0..EPOCH_MS)).max(free_from);
                let heal = (start + rng.gen_range(500..=4_000)).min(last_end);
                if start >= heal {
                    continue;
                }
                let mut side: Vec<bool> = (0..n).map(|_| rng.gen_bool(0.5)).collect();
                side[0] = true;
                side[n - 1] = false;
                side.shuffle(rng);
                plan.partitions.push((start, heal, side));
                free_from = heal + 1;
            }
        }
        plan
    }

    /// When `epoch` must be final: the bound after its end, stretched by partition time.
    fn deadline(&self, epoch: u64) -> u64 {
        let from = epoch_end_ms(epoch);
        let mut until = from + LIVENESS_BOUND_MS;
        for (start, heal, _) in &self.partitions {
            if *start < until && *heal > from {
                until += heal - (*start).max(from);
            }
        }
        until
    }
}

/// Deterministic 64-bit mixing (splitmix64), for per-(node, epoch) random streams.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

struct World {
    config: SimConfig,
    rng: ChaCha8Rng,
    protocol_config: ProtocolConfig,
    network: NetworkModel,
    nodes: Vec<SimNode>,
    scheduler: Scheduler<Event>,
    chain: SimChain,
    partition: Option<Vec<bool>>,
    checker: Checker,
    messages: MessageStats,
    faults: BTreeMap<String, u64>,
    chain_txs: u64,
    trace: Sha256,
}

/// Runs one simulation and reports what happened.
pub fn run(config: &SimConfig) -> Result<SimReport, SimError> {
    config.validate()?;
    let mut world = World::new(config.clone())?;
    let plan = FaultPlan::draw(config, &mut world.rng);
    let end_ms = world.schedule(&plan);
    while let Some(event) = world.scheduler.next_until(end_ms) {
        world.trace.update(world.scheduler.now_ms().to_be_bytes());
        for word in event.trace_key() {
            world.trace.update(word.to_be_bytes());
        }
        world.handle(event);
    }
    Ok(world.report(plan, end_ms))
}

impl World {
    fn new(config: SimConfig) -> Result<Self, SimError> {
        let n = config.nodes;
        let keys: Vec<Keypair> = (0..n)
            .map(|i| {
                let seed: [u8; 32] = Sha256::new()
                    .chain_update(config.seed.to_be_bytes())
                    .chain_update((i as u64).to_be_bytes())
                    .finalize()
                    .into();
                Keypair::from_seed(&seed)
            })
            .collect();
        let publics: Vec<[u8; 32]> = keys.iter().map(Keypair::public).collect();
        let threshold = 2 * n / 3 + 1;
        let clock = EpochClock {
            genesis_time: GENESIS_MS / 1_000,
            epoch_length_secs: EPOCH_MS / 1_000,
        };
        let chain = SimChain::new(&publics, threshold, clock, config.mixnodes, GENESIS_MS)?;
        let protocol_config = ProtocolConfig {
            chain_id: SIM_CHAIN_ID.into(),
            contract_addr: chain.contract().to_string(),
            signer_set_version: 1,
            members: publics,
            threshold,
            observation_threshold: default_observation_threshold(n),
            mixnodes: (1..=config.mixnodes as u32).collect(),
            clock,
            observation_grace_ms: GRACE_MS,
            submit_slot_ms: SLOT_MS,
            resend_interval_ms: RESEND_MS,
            policy: config.policy,
            catch_up_epochs: CATCH_UP_EPOCHS,
        };
        let nodes = keys
            .into_iter()
            .map(|key| SimNode {
                protocol: Protocol::new(
                    protocol_config.clone(),
                    key.clone(),
                    RestoredState::default(),
                ),
                key,
                incarnation: 0,
                store: Store::default(),
                adversary: None,
                certificates: BTreeMap::new(),
            })
            .collect();
        Ok(Self {
            rng: ChaCha8Rng::seed_from_u64(config.seed),
            network: NetworkModel::for_profile(config.faults),
            config,
            protocol_config,
            nodes,
            scheduler: Scheduler::new(GENESIS_MS),
            chain,
            partition: None,
            checker: Checker::default(),
            messages: MessageStats::default(),
            faults: BTreeMap::new(),
            chain_txs: 0,
            trace: Sha256::new(),
        })
    }

    /// Schedules epochs, faults and liveness deadlines; returns when the run ends.
    fn schedule(&mut self, plan: &FaultPlan) -> u64 {
        for (&node, &behaviour) in &plan.byzantine {
            let me = node as MemberIndex;
            self.nodes[node].adversary =
                Some(Adversary::new(behaviour, me, self.protocol_config.clone()));
            self.count_fault(&format!("byzantine_{}", behaviour_name(behaviour)));
            if behaviour.ticks() {
                self.scheduler.at(
                    GENESIS_MS + ADVERSARY_TICK_MS,
                    Event::AdversaryTick { node },
                );
            }
        }
        for epoch in 0..self.config.epochs {
            for node in 0..self.config.nodes {
                let jitter = self.rng.gen_range(1..=EPOCH_END_JITTER_MS);
                self.scheduler.at(
                    epoch_end_ms(epoch) + jitter,
                    Event::EpochEnd { node, epoch },
                );
            }
        }
        for &(node, at, restart) in &plan.crashes {
            self.scheduler.at(at, Event::Crash { node });
            self.scheduler.at(restart, Event::Restart { node });
        }
        for (start, heal, side) in &plan.partitions {
            self.scheduler
                .at(*start, Event::Partition { side: side.clone() });
            self.scheduler.at(*heal, Event::Heal);
        }
        let mut end_ms = 0;
        for epoch in 0..self.config.epochs {
            let deadline = plan.deadline(epoch);
            self.scheduler.at(deadline, Event::Deadline { epoch });
            end_ms = end_ms.max(deadline);
        }
        end_ms
    }

    fn count_fault(&mut self, kind: &str) {
        *self.faults.entry(kind.to_string()).or_default() += 1;
    }

    fn now(&self) -> u64 {
        self.scheduler.now_ms()
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::EpochEnd { node, epoch } => self.on_epoch_end(node, epoch),
            Event::Deliver { to, from, message } => self.on_deliver(to, from, message),
            Event::Timer {
                node,
                incarnation,
                timer,
            } => {
                if self.current(node, incarnation) {
                    self.feed(node, Input::Timer(timer));
                }
            }
            Event::Persisted {
                node,
                incarnation,
                id,
                record,
            } => self.on_persisted(node, incarnation, id, record),
            Event::ChainCall {
                node,
                incarnation,
                call,
            } => self.on_chain_call(node, incarnation, call),
            Event::ChainReply {
                node,
                incarnation,
                input,
            } => self.on_chain_reply(node, incarnation, input),
            Event::Crash { node } => self.crash(node),
            Event::Restart { node } => self.restart(node),
            Event::Partition { side } => {
                self.count_fault("partition");
                self.partition = Some(side);
            }
            Event::Heal => self.partition = None,
            Event::AdversaryTick { node } => self.on_adversary_tick(node),
            Event::Deadline { epoch } => {
                let on_chain = self.chain.record(epoch).is_some();
                let now = self.now();
                self.checker.deadline(now, epoch, on_chain);
            }
        }
    }

    /// Whether `node` is up in the given incarnation.
    fn current(&self, node: usize, incarnation: u32) -> bool {
        let node = &self.nodes[node];
        node.protocol.is_some() && node.incarnation == incarnation
    }

    fn partitioned(&self, a: usize, b: usize) -> bool {
        self.partition
            .as_ref()
            .is_some_and(|side| side[a] != side[b])
    }

    /// Honest per-mixnode averages of `node` for `epoch`: a common base per mixnode plus
    /// the node's own measurement noise, a pure function of (seed, node, epoch).
    fn honest_values(&self, node: usize, epoch: u64) -> Vec<MixnodeReward> {
        let seed = self.config.seed;
        let mut base = ChaCha8Rng::seed_from_u64(mix(seed ^ mix(epoch)));
        let mut noise = ChaCha8Rng::seed_from_u64(mix(seed ^ mix(epoch) ^ mix(node as u64 + 1)));
        self.protocol_config
            .mixnodes
            .iter()
            .map(|&mix_id| {
                let center: i32 = base.gen_range(1_000..=9_000);
                let value = (center + noise.gen_range(-500..=500)).clamp(0, 10_000);
                MixnodeReward {
                    mix_id,
                    uptime_bp: value as u16,
                }
            })
            .collect()
    }

    fn epoch_ended_input(&mut self, node: usize, epoch: u64) -> Input {
        let honest = self.honest_values(node, epoch);
        let values = match &self.nodes[node].adversary {
            Some(adversary) => adversary.values(epoch, honest),
            None => {
                self.checker.honest_observation(epoch, &honest);
                honest
            }
        };
        Input::EpochEnded { epoch, values }
    }

    fn on_epoch_end(&mut self, node: usize, epoch: u64) {
        if self.nodes[node].protocol.is_none() {
            return;
        }
        let input = self.epoch_ended_input(node, epoch);
        self.feed(node, input);
    }

    fn on_deliver(&mut self, to: usize, from: usize, message: Message) {
        if self.nodes[to].protocol.is_none() || self.partitioned(from, to) {
            self.messages.lost += 1;
            return;
        }
        self.messages.delivered += 1;
        if let Some(adversary) = self.nodes[to].adversary.as_mut() {
            adversary.observe(&message);
        }
        let from = from as MemberIndex;
        self.feed(to, Input::Message { from, message });
    }

    fn on_persisted(&mut self, node: usize, incarnation: u32, id: u64, record: PersistRecord) {
        if !self.current(node, incarnation) {
            return; // crashed before the write completed: never acknowledged
        }
        let PersistRecord::EchoDecision {
            epoch,
            proposer,
            data_hash,
        } = record;
        self.nodes[node]
            .store
            .echo_decisions
            .insert((epoch, proposer), data_hash);
        if self.nodes[node].adversary.is_none() {
            self.checker.acknowledged(node, epoch, proposer, data_hash);
        }
        self.feed(node, Input::Persisted { id });
    }

    fn chain_delay(&mut self) -> u64 {
        let (low, high) = self.network.chain_delay_ms;
        self.rng.gen_range(low..=high)
    }

    fn on_chain_call(&mut self, node: usize, incarnation: u32, call: ChainCall) {
        let now = self.now();
        let input = match call {
            ChainCall::Query(epoch) => {
                if !self.current(node, incarnation) {
                    return;
                }
                let on_chain = self.chain.record(epoch).is_some();
                Input::ChainStatus { epoch, on_chain }
            }
            ChainCall::Submit(certificate) => {
                // A broadcast transaction lands even if its sender crashed meanwhile.
                self.chain_txs += 1;
                let epoch = certificate.epoch;
                if self.chain.submit(now, node, &certificate) {
                    self.checker.accepted(now, epoch, &certificate.rewards);
                }
                let on_chain = self.chain.record(epoch).is_some();
                Input::SubmitOutcome { epoch, on_chain }
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

    fn on_chain_reply(&mut self, node: usize, incarnation: u32, input: Input) {
        if !self.current(node, incarnation) {
            return;
        }
        if let Input::ChainStatus {
            epoch,
            on_chain: true,
        }
        | Input::SubmitOutcome {
            epoch,
            on_chain: true,
        } = input
        {
            self.finalize(node, epoch);
        }
        self.feed(node, input);
    }

    fn crash(&mut self, node: usize) {
        self.count_fault("crash");
        let node = &mut self.nodes[node];
        node.protocol = None;
        node.incarnation += 1;
        node.certificates.clear();
    }

    fn restart(&mut self, node: usize) {
        let now = self.now();
        let store = &self.nodes[node].store;
        let mut restored = RestoredState {
            echo_decisions: store
                .echo_decisions
                .iter()
                .map(|(&(epoch, proposer), &hash)| (epoch, proposer, hash))
                .collect(),
            final_epochs: store.official.keys().copied().collect(),
        };
        if self.config.planted_bug == Some(PlantedBug::ForgetEchoDecisions) {
            restored.echo_decisions.clear();
            self.nodes[node].store.echo_decisions.clear();
        }
        if self.nodes[node].adversary.is_none() {
            self.checker.restarted(now, node, &restored);
        }
        let key = self.nodes[node].key.clone();
        self.nodes[node].protocol = Protocol::new(self.protocol_config.clone(), key, restored);
        // Like the node's catch-up: measurements of recent unfinished epochs are on disk.
        let current = epoch_at_ms(now);
        let first = current.saturating_sub(CATCH_UP_EPOCHS);
        for epoch in first..current.min(self.config.epochs) {
            if !self.nodes[node].store.official.contains_key(&epoch) {
                let input = self.epoch_ended_input(node, epoch);
                self.feed(node, input);
            }
        }
    }

    fn on_adversary_tick(&mut self, node: usize) {
        let epoch = epoch_at_ms(self.now());
        if epoch > self.config.epochs + 2 {
            return;
        }
        if self.nodes[node].protocol.is_some() {
            let mut rng = ChaCha8Rng::seed_from_u64(self.rng.r#gen());
            let messages = match self.nodes[node].adversary.as_mut() {
                Some(adversary) => adversary.tick(&mut rng, epoch),
                None => vec![],
            };
            let kind = match self.nodes[node].adversary.as_ref().map(|a| a.behaviour) {
                Some(Behaviour::Replay) => "replayed_message",
                _ => "garbage_message",
            };
            for (target, message) in messages {
                self.count_fault(kind);
                self.transmit_to(node, target, message);
            }
        }
        self.scheduler
            .after(ADVERSARY_TICK_MS, Event::AdversaryTick { node });
    }

    /// Hands `input` to `node`'s protocol and performs the actions it returns.
    fn feed(&mut self, node: usize, input: Input) {
        let now = self.now();
        let Some(protocol) = self.nodes[node].protocol.as_mut() else {
            return;
        };
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| protocol.handle(now, input)));
        match outcome {
            Ok(actions) => {
                for action in actions {
                    self.perform(node, action);
                }
            }
            Err(panic) => {
                let detail = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "panic".into());
                self.checker.panicked(now, node, detail);
                self.crash(node);
            }
        }
    }

    fn perform(&mut self, node: usize, action: Action) {
        let incarnation = self.nodes[node].incarnation;
        match action {
            Action::Send { to, message } => self.send(node, Target::One(to), message),
            Action::Broadcast { message } => self.send(node, Target::All, message),
            Action::Persist { id, record } => {
                let delay = self.rng.gen_range(1..=3);
                self.scheduler.after(
                    delay,
                    Event::Persisted {
                        node,
                        incarnation,
                        id,
                        record,
                    },
                );
            }
            Action::SetTimer { at_ms, timer } => self.scheduler.at(
                at_ms,
                Event::Timer {
                    node,
                    incarnation,
                    timer,
                },
            ),
            Action::QueryChain { epoch } => self.chain_call(node, ChainCall::Query(epoch)),
            Action::Submit { certificate } => {
                self.nodes[node]
                    .certificates
                    .insert(certificate.epoch, certificate.clone());
                self.chain_call(node, ChainCall::Submit(certificate));
            }
            Action::Certified { certificate } => {
                self.nodes[node]
                    .certificates
                    .insert(certificate.epoch, certificate);
            }
            Action::Rejected { .. } => self.messages.rejected += 1,
        }
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

    /// Sends what the protocol asked for, through the adversary's hands if byzantine.
    fn send(&mut self, node: usize, target: Target, message: Message) {
        let outgoing = match self.nodes[node].adversary.as_mut() {
            Some(adversary) => adversary.rewrite(target, message),
            None => {
                let now = self.now();
                self.checker.honest_message(now, node, &message);
                vec![(target, message)]
            }
        };
        for (target, message) in outgoing {
            self.transmit_to(node, target, message);
        }
    }

    fn transmit_to(&mut self, from: usize, target: Target, message: Message) {
        match target {
            Target::One(to) => self.transmit(from, usize::from(to), message),
            Target::All => {
                for to in (0..self.config.nodes).filter(|&to| to != from) {
                    self.transmit(from, to, message.clone());
                }
            }
        }
    }

    /// One message onto the simulated wire: maybe lost, delayed, duplicated.
    fn transmit(&mut self, from: usize, to: usize, message: Message) {
        self.messages.sent += 1;
        if to >= self.config.nodes || self.partitioned(from, to) {
            self.messages.lost += 1;
            return;
        }
        if self.network.drop > 0.0 && self.rng.gen_bool(self.network.drop) {
            self.count_fault("drop");
            self.messages.lost += 1;
            return;
        }
        let (low, high) = self.network.delay_ms;
        if self.network.duplicate > 0.0 && self.rng.gen_bool(self.network.duplicate) {
            self.count_fault("duplicate");
            let delay = self.rng.gen_range(low..=high);
            let copy = message.clone();
            self.scheduler.after(
                delay,
                Event::Deliver {
                    to,
                    from,
                    message: copy,
                },
            );
        }
        let delay = self.rng.gen_range(low..=high);
        self.scheduler
            .after(delay, Event::Deliver { to, from, message });
    }

    /// Stores the official data of an on-chain epoch the way the node's finalizer does:
    /// the winner takes the record, losers fetch the winner's copy and verify it, falling
    /// back to the contract's.
    fn finalize(&mut self, node: usize, epoch: u64) {
        if self.nodes[node].store.official.contains_key(&epoch) {
            return;
        }
        let Some((record, winner)) = self.chain.record(epoch) else {
            return;
        };
        let stored = if winner == node {
            record.clone()
        } else {
            match self.served_copy(winner, epoch) {
                Some(copy)
                    if self.config.planted_bug == Some(PlantedBug::TrustWinnerCopy)
                        || self.verifies(epoch, &copy, &record) =>
                {
                    copy
                }
                _ => record.clone(),
            }
        };
        if self.nodes[node].adversary.is_none() {
            let now = self.now();
            self.checker.official(now, node, epoch, &stored, &record);
        }
        self.nodes[node].store.official.insert(epoch, stored);
    }

    /// What the winner's API serves for `epoch`: nothing when it is down, a tampered copy
    /// when it is byzantine.
    fn served_copy(&self, winner: usize, epoch: u64) -> Option<OfficialData> {
        let winner = &self.nodes[winner];
        winner.protocol.as_ref()?;
        let mut copy = winner.store.official.get(&epoch)?.clone();
        if winner.adversary.is_some()
            && let Some(first) = copy.rewards.first_mut()
        {
            first.uptime_bp = (first.uptime_bp + 1) % 10_001;
        }
        Some(copy)
    }

    /// The checks an honest loser makes on a fetched copy: its data hash matches its rewards
    /// and the contract's record, and a threshold of distinct members signed it.
    fn verifies(&self, epoch: u64, copy: &OfficialData, record: &OfficialData) -> bool {
        if nym_rewards::digest::data_hash(&copy.rewards) != copy.data_hash
            || copy.data_hash != record.data_hash
        {
            return false;
        }
        let digest = echo_digest(&self.protocol_config, epoch, &copy.data_hash);
        let signers: BTreeSet<MemberIndex> = copy
            .signatures
            .iter()
            .filter(|(index, signature)| {
                self.protocol_config
                    .members
                    .get(usize::from(*index))
                    .is_some_and(|key| {
                        verify_signature(&digest, signature, key) == SignatureCheck::Valid
                    })
            })
            .map(|(index, _)| *index)
            .collect();
        signers.len() >= self.protocol_config.threshold
    }

    fn report(mut self, plan: FaultPlan, end_ms: u64) -> SimReport {
        let epochs_final = (0..self.config.epochs)
            .filter(|&epoch| self.chain.record(epoch).is_some())
            .count() as u64;
        let (invariant_checks, violations) = std::mem::take(&mut self.checker).finish();
        SimReport {
            byzantine: plan.byzantine,
            epochs_simulated: self.config.epochs,
            epochs_final,
            chain_txs: self.chain_txs,
            faults: self.faults,
            messages: self.messages,
            invariant_checks,
            violations,
            virtual_ms: end_ms - GENESIS_MS,
            trace_hash: hex::encode(self.trace.finalize()),
            config: self.config,
        }
    }
}

fn behaviour_name(behaviour: Behaviour) -> String {
    serde_json::to_value(behaviour)
        .ok()
        .and_then(|value| value.as_str().map(str::to_string))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crashed_plus_byzantine_members_never_exceed_f() {
        for seed in 0..300 {
            for nodes in [4, 7, 10] {
                let config = SimConfig::new(seed, nodes, 8, FaultProfile::All);
                let plan = FaultPlan::draw(&config, &mut ChaCha8Rng::seed_from_u64(seed));
                let f = faulty_tolerated(nodes);
                for &(node, at, restart) in &plan.crashes {
                    assert!(at < restart && !plan.byzantine.contains_key(&node));
                    let down = plan
                        .crashes
                        .iter()
                        .filter(|(_, start, end)| *start <= at && at < *end)
                        .count();
                    assert!(plan.byzantine.len() + down <= f, "seed {seed}, n = {nodes}");
                }
            }
        }
    }

    #[test]
    fn partitions_stretch_the_liveness_deadline() {
        let end = epoch_end_ms(2);
        let mut plan = FaultPlan::default();
        assert_eq!(plan.deadline(2), end + LIVENESS_BOUND_MS);
        plan.partitions
            .push((end - 500, end + 1_500, vec![true, false]));
        plan.partitions
            .push((end + 5_000, end + 6_000, vec![true, false]));
        assert_eq!(plan.deadline(2), end + LIVENESS_BOUND_MS + 1_500 + 1_000);
    }
}
