//! One simulated run: the world around the production node cores. It owns the virtual clock,
//! the network (module `network`), the chain, the faults (module `faults`) and the honest
//! measurements; it carries out what each node's protocol asks (module `effects`) and checks
//! the invariants as events happen. Every decision a node makes is production code.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::panic::AssertUnwindSafe;

use nym_rewards::msg::{EpochClock, MixnodeReward};
use nym_rewards::rules::{MAX_UPTIME_BP, default_threshold};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use relayer_protocol::wire::Codec;
use relayer_protocol::{
    Action, ChainContext, Input, Keypair, MemberIndex, ProtocolConfig, Signer, SignerSet,
    default_observation_threshold,
};
use sha2::{Digest, Sha256};

use crate::adversary::Adversary;
use crate::chain::{SIM_CHAIN_ID, SimChain};
use crate::config::{SimConfig, SimError};
use crate::events::Event;
use crate::faults::{FaultPlan, NetworkModel};
use crate::invariants::Checker;
use crate::node::SimNode;
use crate::report::{MessageStats, SimReport, WorkStats};
use crate::rotation::RotationStep;
use crate::scheduler::Scheduler;
use crate::wan::Wan;

pub(crate) const GENESIS_MS: u64 = 1_700_000_000_000;
pub(crate) const EPOCH_MS: u64 = 10_000;
const GRACE_MS: u64 = 200;
const SLOT_MS: u64 = 500;
const RESEND_MS: u64 = 1_000;
const CATCH_UP_EPOCHS: u64 = 3;
/// An epoch must be final this long after it ended (plus any partition time in between).
pub(crate) const LIVENESS_BOUND_MS: u64 = 2 * EPOCH_MS;
const ADVERSARY_TICK_MS: u64 = 700;
/// Longest a node takes to read its measurements of an ended epoch.
pub(crate) const MEASURE_DELAY_MS: u64 = 100;
/// How long a (re)started node gets to catch up on the epochs of its window before it must
/// hold their official data: ten re-send rounds, so failing writes (one in five) and chain
/// reads (one in ten) do not make a false alarm.
const RECOVERY_MS: u64 = 10 * RESEND_MS;

/// The epoch clock every run uses.
pub(crate) const CLOCK: EpochClock = EpochClock {
    genesis_time: GENESIS_MS / 1_000,
    epoch_length_secs: EPOCH_MS / 1_000,
};

/// End of `epoch` on the run's clock, ms.
pub(crate) fn epoch_end_ms(epoch: u64) -> u64 {
    CLOCK.epoch_end_ms(epoch)
}

/// Deterministic 64-bit mixing (splitmix64), for per-(node, epoch) random streams.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

pub(crate) struct World {
    pub(crate) config: SimConfig,
    pub(crate) rng: ChaCha8Rng,
    pub(crate) protocol_config: ProtocolConfig,
    /// The nodes' wire encoding, to count the bytes each message costs.
    pub(crate) codec: Codec,
    pub(crate) network: NetworkModel,
    /// The wide-area model, when the run asks for one (it replaces the profile's delays).
    pub(crate) wan: Option<Wan>,
    /// When the contract accepted each epoch, and when the last node stored its official
    /// data (virtual ms).
    pub(crate) accepted_at: BTreeMap<u64, u64>,
    pub(crate) stored_at: BTreeMap<u64, u64>,
    pub(crate) plan: FaultPlan,
    pub(crate) nodes: Vec<SimNode>,
    /// Node index of each node's key.
    pub(crate) node_of_key: HashMap<[u8; 32], usize>,
    /// The versions the admin schedules after the first (none unless the run rotates).
    pub(crate) rotation: Vec<RotationStep>,
    pub(crate) scheduler: Scheduler<Event>,
    pub(crate) chain: SimChain,
    pub(crate) partition: Option<Vec<bool>>,
    pub(crate) checker: Checker,
    pub(crate) messages: MessageStats,
    pub(crate) faults: BTreeMap<String, u64>,
    pub(crate) chain_txs: u64,
    /// Epochs for which the targeted crash after an echo already happened.
    pub(crate) crashed_after_echo: std::collections::BTreeSet<u64>,
    /// The node the targeted crash took down, until it restarts.
    pub(crate) targeted_down: Option<usize>,
    /// Nodes without measurements, per epoch (at most f).
    pub(crate) missing_measurements: BTreeMap<u64, usize>,
    /// Epochs whose deadline has passed with the epoch on chain.
    settled_deadlines: std::collections::BTreeSet<u64>,
    trace: Sha256,
}

/// Runs one simulation and reports what happened.
pub fn run(config: &SimConfig) -> Result<SimReport, SimError> {
    config.validate()?;
    let mut world = World::new(config.clone())?;
    let end_ms = world.schedule()?;
    while let Some(event) = world.scheduler.next_until(end_ms) {
        world.trace.update(world.scheduler.now_ms().to_be_bytes());
        for word in event.trace_key() {
            world.trace.update(word.to_be_bytes());
        }
        world.handle(event);
    }
    Ok(world.report(end_ms))
}

impl World {
    fn new(config: SimConfig) -> Result<Self, SimError> {
        let n = config.nodes;
        let keys: Vec<Keypair> = (0..config.total_nodes())
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
        let threshold = default_threshold(n);
        let chain = SimChain::new(&publics, n, threshold, CLOCK, config.mixnodes, GENESIS_MS)?;
        let members = publics[..n]
            .iter()
            .enumerate()
            .map(|(i, key)| {
                let address = chain.member_address(i).map(ToString::to_string);
                Ok(Signer {
                    key: *key,
                    address: address.ok_or_else(|| SimError::Chain(format!("no member {i}")))?,
                })
            })
            .collect::<Result<Vec<_>, SimError>>()?;
        let protocol_config = ProtocolConfig {
            chain: ChainContext {
                chain_id: SIM_CHAIN_ID.into(),
                contract: chain.contract().to_string(),
            },
            signer_set: SignerSet {
                version: 1,
                effective_from_epoch: 0,
                threshold,
                members,
            },
            observation_threshold: default_observation_threshold(n),
            mixnodes: (1..=config.mixnodes as u32).collect(),
            clock: CLOCK,
            observation_grace_ms: GRACE_MS,
            submit_slot_ms: SLOT_MS,
            resend_interval_ms: RESEND_MS,
            policy: config.policy,
            catch_up_epochs: CATCH_UP_EPOCHS,
        };
        let node_of_key = publics
            .iter()
            .enumerate()
            .map(|(node, key)| (*key, node))
            .collect();
        let rotation = if config.rotate {
            crate::rotation::plan(n)
        } else {
            Vec::new()
        };
        let nodes = keys
            .into_iter()
            .enumerate()
            .map(|(i, key)| SimNode::new(i, key))
            .collect::<Result<Vec<_>, _>>()?;
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let plan = FaultPlan::draw(&config, &mut rng);
        Ok(Self {
            rng,
            network: NetworkModel::for_profile(config.faults),
            wan: config.wan.then(|| Wan::new(config.total_nodes())),
            accepted_at: BTreeMap::new(),
            stored_at: BTreeMap::new(),
            plan,
            config,
            codec: Codec::new(&protocol_config.mixnodes),
            protocol_config,
            nodes,
            node_of_key,
            rotation,
            scheduler: Scheduler::new(GENESIS_MS),
            chain,
            partition: None,
            checker: Checker::default(),
            messages: MessageStats::default(),
            faults: BTreeMap::new(),
            chain_txs: 0,
            crashed_after_echo: std::collections::BTreeSet::new(),
            targeted_down: None,
            missing_measurements: BTreeMap::new(),
            settled_deadlines: std::collections::BTreeSet::new(),
            trace: Sha256::new(),
        })
    }

    /// Starts the nodes, schedules the faults and liveness deadlines; returns when the run
    /// ends.
    fn schedule(&mut self) -> Result<u64, SimError> {
        let byzantine: Vec<_> = self.plan.byzantine.iter().map(|(&n, &b)| (n, b)).collect();
        for (node, behaviour) in byzantine {
            let me = node as MemberIndex;
            let key = self.nodes[node].key.clone();
            self.nodes[node].adversary = Some(Adversary::new(
                behaviour,
                me,
                key,
                self.protocol_config.clone(),
            ));
            self.count_fault(&format!("byzantine_{behaviour}"));
            if behaviour.ticks() {
                self.scheduler.at(
                    GENESIS_MS + ADVERSARY_TICK_MS,
                    Event::AdversaryTick { node },
                );
            }
        }
        for node in 0..self.nodes.len() {
            self.start_node(node)?;
        }
        self.schedule_rotations();
        for &(node, at, restart) in &self.plan.crashes {
            self.scheduler.at(at, Event::Crash { node, clean: false });
            self.scheduler.at(restart, Event::Restart { node });
        }
        for (start, heal, side) in &self.plan.partitions {
            self.scheduler
                .at(*start, Event::Partition { side: side.clone() });
            self.scheduler.at(*heal, Event::Heal);
        }
        let mut end_ms = 0;
        for epoch in 0..self.config.epochs {
            let deadline = self.plan.deadline(epoch);
            self.scheduler.at(deadline, Event::Deadline { epoch });
            end_ms = end_ms.max(deadline);
        }
        Ok(end_ms)
    }

    pub(crate) fn count_fault(&mut self, kind: &str) {
        *self.faults.entry(kind.to_string()).or_default() += 1;
    }

    pub(crate) fn now(&self) -> u64 {
        self.scheduler.now_ms()
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Deliver { to, from, message } => self.on_deliver(to, from, message),
            Event::Timer {
                node,
                incarnation,
                timer,
            } => {
                if self.nodes[node].current(incarnation) {
                    self.feed(node, Input::Timer(timer));
                }
            }
            Event::Measured {
                node,
                incarnation,
                epoch,
            } => self.on_measured(node, incarnation, epoch),
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
            } => {
                if self.nodes[node].current(incarnation) {
                    self.feed(node, input);
                }
            }
            Event::Fetch {
                node,
                incarnation,
                epoch,
                winner,
            } => self.on_fetch(node, incarnation, epoch, winner),
            Event::Crash { node, clean } => self.planned_crash(node, clean),
            Event::Restart { node } => self.restart(node),
            Event::Partition { side } => {
                self.count_fault("partition");
                self.partition = Some(side);
            }
            Event::Heal => self.partition = None,
            Event::AdversaryTick { node } => self.on_adversary_tick(node),
            Event::Deadline { epoch } => self.on_deadline(epoch),
            Event::Rotate { step } => self.on_rotate(step),
            Event::SignerSetPoll { node, incarnation } => {
                self.on_signer_set_poll(node, incarnation)
            }
            Event::OfficialCheck {
                node,
                incarnation,
                epoch,
            } => {
                if self.nodes[node].current(incarnation) {
                    self.check_official_held(node, epoch);
                }
            }
        }
    }

    /// Opens the node's store, restores its protocol engine with the signer sets the
    /// contract holds for its window, and feeds it `Start`.
    fn start_node(&mut self, node: usize) -> Result<(), SimError> {
        let now = self.now();
        let planted = self.config.planted_bug;
        let honest = self.nodes[node].adversary.is_none();
        // Planted bugs live in honest nodes: a byzantine node is faulty anyway.
        let planted = planted.filter(|_| honest);
        let sets = self
            .chain
            .signer_sets_from(self.protocol_config.window_start(now));
        self.nodes[node].start(now, &self.protocol_config, sets, planted)?;
        self.feed(node, Input::Start);
        self.arm_signer_set_poll(node, true);
        Ok(())
    }

    pub(crate) fn crash(&mut self, node: usize, clean: bool) {
        if self.nodes[node].engine.is_none() {
            return;
        }
        self.count_fault(if clean { "clean_stop" } else { "crash" });
        let now = self.now();
        self.nodes[node].crash(clean.then_some(now));
    }

    fn restart(&mut self, node: usize) {
        if self.targeted_down == Some(node) {
            self.targeted_down = None;
        }
        if self.nodes[node].engine.is_some() {
            return; // its crash was skipped
        }
        if let Err(err) = self.start_node(node) {
            let now = self.now();
            self.checker
                .panicked(now, node, format!("restart failed: {err}"));
            return;
        }
        // Byzantine members see the restart (a reconnection) and may act on it.
        let member = node as MemberIndex;
        for other in 0..self.nodes.len() {
            let up = self.nodes[other].engine.is_some();
            let greetings = match self.nodes[other].adversary.as_mut() {
                Some(adversary) if up => adversary.peer_restarted(member),
                _ => continue,
            };
            for (target, message) in greetings {
                self.count_fault("equivocation_after_restart");
                self.transmit_to(other, target, message);
            }
        }
    }

    /// Whether the targeted crash may take one more member down: one at a time (the plan
    /// reserved room for it beside the planned crashes), and crashed plus byzantine members
    /// stay within f.
    pub(crate) fn may_crash_one_more(&self) -> bool {
        self.targeted_down.is_none() && self.faulty_members().len() < self.tolerated()
    }

    fn tolerated(&self) -> usize {
        relayer_protocol::faulty_tolerated(self.config.nodes)
    }

    /// The members that cannot help certify some epoch not yet on chain: byzantine ones, those
    /// down, and those abstaining from such an epoch after a crash (the production engine's
    /// `abstains`: an unclean restart signs nothing new for the epochs that began before it).
    fn faulty_members(&self) -> BTreeSet<usize> {
        let current = CLOCK.epoch_at_ms(self.now()).unwrap_or(0);
        (0..self.nodes.len())
            .filter(|&node| {
                let sim = &self.nodes[node];
                let Some(engine) = sim.engine.as_ref() else {
                    return true;
                };
                sim.adversary.is_some()
                    || (0..=current).any(|epoch| {
                        self.chain.record(epoch).is_none()
                            && engine
                                .instance(epoch)
                                .is_some_and(|instance| instance.abstains(epoch))
                    })
            })
            .collect()
    }

    /// A planned crash or stop, skipped when it would take the faulty members (abstaining
    /// ones counted) past f: the liveness bound holds only within it.
    /// A profile without liveness (`Outage`) crashes anyway, and counts it as `beyond_f`.
    fn planned_crash(&mut self, node: usize, clean: bool) {
        let mut faulty = self.faulty_members();
        faulty.insert(node);
        if faulty.len() > self.tolerated() {
            if self.config.faults.liveness() {
                self.count_fault("crash_skipped");
                return;
            }
            self.count_fault("beyond_f");
        }
        self.crash(node, clean);
    }

    fn on_adversary_tick(&mut self, node: usize) {
        let epoch = CLOCK.epoch_at_ms(self.now()).unwrap_or(0);
        if epoch > self.config.epochs + 2 {
            return;
        }
        if self.nodes[node].engine.is_some() {
            self.steer_adversary(node, epoch);
            let mut rng = ChaCha8Rng::seed_from_u64(self.rng.r#gen());
            let mut messages = match self.nodes[node].adversary.as_mut() {
                Some(adversary) => adversary.tick(&mut rng, epoch),
                None => vec![],
            };
            // An out-of-turn block for the epoch before, under that epoch's version.
            let out_of_turn = self.nodes[node]
                .adversary
                .as_ref()
                .is_some_and(Adversary::proposes_out_of_turn);
            if let Some(ended) = epoch.checked_sub(1).filter(|_| out_of_turn) {
                self.steer_adversary(node, ended);
                if let Some(adversary) = self.nodes[node].adversary.as_mut() {
                    messages.extend(adversary.out_of_turn_block(ended));
                }
            }
            let kind = match self.nodes[node].adversary.as_ref().map(|a| a.behaviour) {
                Some(crate::Behaviour::Replay) => "replayed_message",
                Some(crate::Behaviour::OutOfTurnBlocks) => "out_of_turn_block",
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

    /// The epoch's deadline: it must be on chain, and every honest node must hold its official
    /// data: now if it has been up long enough, else once it has had time to recover (nodes
    /// that were down are checked after their restart), unless the epoch was outside its
    /// window when it started.
    fn on_deadline(&mut self, epoch: u64) {
        let now = self.now();
        let on_chain = self.chain.record(epoch).is_some();
        if self.config.faults.liveness() {
            self.checker.deadline(now, epoch, on_chain);
        } else if !on_chain {
            // Beyond f only safety is promised: an epoch not final by its deadline is lost.
            self.count_fault("epoch_lost");
        }
        if !on_chain {
            return;
        }
        self.settled_deadlines.insert(epoch);
        self.check_work(now);
        for node in 0..self.nodes.len() {
            let sim = &self.nodes[node];
            let in_window = epoch >= self.protocol_config.window_start(sim.up_since);
            let member = self.is_member(node, epoch);
            if sim.adversary.is_some() || sim.engine.is_none() || !in_window || !member {
                continue;
            }
            if sim.up_since + RECOVERY_MS <= now {
                self.check_official_held(node, epoch);
            } else {
                self.check_official_later(node, epoch);
            }
        }
    }

    /// Bounded work for every honest node that is up: at most one aggregate per proposer
    /// (itself included) for each ended epoch of the run it has handled since its start, its
    /// catch-up window included, whatever byzantine proposers send.
    fn check_work(&mut self, now: u64) {
        // The largest version's size bounds every version's proposers.
        let n = self.nodes.len() as u64;
        let ended = CLOCK.epoch_at_ms(now).unwrap_or(0).min(self.config.epochs);
        for node in 0..self.nodes.len() {
            let sim = &self.nodes[node];
            let (Some(protocol), None) = (sim.engine.as_ref(), sim.adversary.as_ref()) else {
                continue;
            };
            let handled = ended - self.protocol_config.window_start(sim.up_since).min(ended);
            let aggregates = protocol.metrics().aggregates_computed;
            self.checker.work(now, node, aggregates, handled * n);
        }
    }

    /// Liveness for one node: it must hold `epoch`'s official data now.
    fn check_official_held(&mut self, node: usize, epoch: u64) {
        let now = self.now();
        let held = self.nodes[node].official(epoch).is_some();
        self.checker.official_held(now, epoch, node, held);
    }

    /// Schedules the official-data check of an honest, up `node` for `epoch` once it has had
    /// time to recover since its start.
    fn check_official_later(&mut self, node: usize, epoch: u64) {
        let sim = &self.nodes[node];
        if sim.adversary.is_some() || sim.engine.is_none() {
            return;
        }
        let event = Event::OfficialCheck {
            node,
            incarnation: sim.incarnation,
            epoch,
        };
        self.scheduler.at(sim.up_since + RECOVERY_MS, event);
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
                let value =
                    (center + noise.gen_range(-500..=500)).clamp(0, i32::from(MAX_UPTIME_BP));
                MixnodeReward {
                    mix_id,
                    uptime_bp: value as u16,
                }
            })
            .collect()
    }

    /// What `node` measured for `epoch`: honest values (recorded for the validity check), an
    /// adversary's lie, or nothing for epochs past the run.
    pub(crate) fn measurement(&mut self, node: usize, epoch: u64) -> Option<Vec<MixnodeReward>> {
        if epoch >= self.config.epochs {
            return None;
        }
        let honest = self.honest_values(node, epoch);
        Some(match &self.nodes[node].adversary {
            Some(adversary) => adversary.values(epoch, honest),
            None => {
                self.checker.honest_observation(epoch, &honest);
                honest
            }
        })
    }

    /// Hands `input` to `node`'s protocol and performs the actions it returns.
    pub(crate) fn feed(&mut self, node: usize, input: Input) {
        let now = self.now();
        let Some(engine) = self.nodes[node].engine.as_mut() else {
            return;
        };
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| engine.handle(now, input)));
        match outcome {
            Ok(actions) => self.perform_all(node, actions),
            Err(panic) => {
                let detail = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "panic".into());
                self.checker.panicked(now, node, detail);
                self.crash(node, false);
            }
        }
    }

    /// Performs what `node`'s engine asked for.
    pub(crate) fn perform_all(&mut self, node: usize, actions: Vec<Action>) {
        for action in actions {
            self.perform(node, action);
        }
    }

    /// The honest members' work so far.
    fn work_stats(&self) -> WorkStats {
        let honest = self
            .nodes
            .iter()
            .filter(|sim| sim.adversary.is_none())
            .filter_map(|sim| sim.engine.as_ref().map(|engine| engine.metrics()));
        let mut work = WorkStats {
            proposals: self.checker.honest_proposals(),
            ..WorkStats::default()
        };
        for metrics in honest {
            work.aggregates += metrics.aggregates_computed;
            work.max_aggregates_at_a_node = work
                .max_aggregates_at_a_node
                .max(metrics.aggregates_computed);
            work.signature_verifications += metrics.signature_verifications;
        }
        work
    }

    fn report(mut self, end_ms: u64) -> SimReport {
        let mut epochs_by_version: BTreeMap<u32, u64> = BTreeMap::new();
        for (record, _) in (0..self.config.epochs).filter_map(|epoch| self.chain.record(epoch)) {
            *epochs_by_version
                .entry(record.signer_set_version)
                .or_default() += 1;
        }
        let epochs_final = epochs_by_version.values().sum();
        let since_end = |times: &BTreeMap<u64, u64>| -> Vec<u64> {
            times
                .iter()
                .filter(|(epoch, _)| **epoch < self.config.epochs)
                .map(|(&epoch, &at)| at.saturating_sub(epoch_end_ms(epoch)))
                .collect()
        };
        let latency = crate::report::Latency {
            accepted_ms: since_end(&self.accepted_at),
            stored_ms: since_end(&self.stored_at),
        };
        // Before the checker is taken: it counts the proposals.
        let work = self.work_stats();
        let (invariant_checks, violations) = std::mem::take(&mut self.checker).finish();
        SimReport {
            byzantine: std::mem::take(&mut self.plan.byzantine),
            epochs_simulated: self.config.epochs,
            epochs_final,
            epochs_by_version,
            chain_txs: self.chain_txs,
            work,
            latency,
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
