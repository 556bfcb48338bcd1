//! The state machine: [`Protocol::handle`] maps `(now, Input)` to `Vec<Action>`.

use std::collections::{BTreeMap, BTreeSet};

use thiserror::Error;

use crate::action::{Action, PersistRecord, Rejection};
use crate::aggregate::{lower_median, validate_values};
use crate::config::ConfigError;
use crate::crypto::{Keypair, SignatureCheck, echo_digest, observation_digest, verify_signature};
use crate::finality::Finalizing;
use crate::input::{Input, Timer};
use crate::messages::{
    Block, BlockDigest, Certificate, Echo, Message, Observation, ObservationRef, holding_bitmap,
    holds, refs_hash,
};
use crate::official::OfficialSource;
use crate::planted::PlantedBug;
use crate::schedule::{proposing_from_ms, submission_rank, submission_slot_ms};
use crate::{Hash, MemberIndex, MixnodeReward, ProtocolConfig, SubmitPolicy};
use nym_rewards::rules::faulty_tolerated;

/// What a restarted member recovers from its store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RestoredState {
    /// `(epoch, proposer, data_hash)` echo decisions.
    pub echo_decisions: Vec<(u64, MemberIndex, Hash)>,
    /// Epochs known to be on chain.
    pub final_epochs: Vec<u64>,
    /// This member's own signed observations, as first sent.
    pub own_observations: Vec<Observation>,
}

/// Counters for metrics and benchmarks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProtocolMetrics {
    /// ed25519 verifications performed.
    pub signature_verifications: u64,
    /// Signatures made.
    pub signatures_created: u64,
    /// Observations accepted.
    pub observations_accepted: u64,
    /// Blocks proposed.
    pub blocks_proposed: u64,
    /// Echoes sent.
    pub echoes_sent: u64,
    /// Certificates formed.
    pub certificates: u64,
    /// Aggregates computed (cache misses).
    pub aggregates_computed: u64,
    /// Inputs refused.
    pub rejections: u64,
    /// Epochs whose official data this member stored.
    pub epochs_final: u64,
    /// Official copies taken from the contract because the winner's failed or was missing.
    pub official_from_contract: u64,
    /// Writes of official data that failed (each retried).
    pub official_store_failures: u64,
}

#[derive(Debug, Clone)]
pub(crate) struct Proposal {
    pub(crate) block: Block,
    pub(crate) rewards: Vec<MixnodeReward>,
    pub(crate) echoes: BTreeMap<MemberIndex, Vec<u8>>,
    pub(crate) certificate: Option<Certificate>,
}

#[derive(Debug, Default)]
pub(crate) struct EpochState {
    /// First valid observation per author, with its digest (computed once).
    observations: BTreeMap<MemberIndex, (Hash, Observation)>,
    /// Other valid observations (equivocations), by reference: per author, every version a
    /// parked block references and at most one other (the evidence). One parked block per
    /// proposer bounds them at n + 1 per author, whatever an equivocator sends.
    alternates: BTreeMap<ObservationRef, Observation>,
    equivocators: BTreeSet<MemberIndex>,
    /// Aggregate and its data hash, by hash of the observation set: computed at most once
    /// per proposer (and for this member's own proposals), so bounded by n + 1.
    aggregates: BTreeMap<Hash, (Vec<MixnodeReward>, Hash)>,
    /// Proposers whose block's claimed data hash did not match its aggregate: their further
    /// blocks of the epoch are refused without computing anything.
    refuted: BTreeSet<MemberIndex>,
    own: Option<Observation>,
    grace_armed: bool,
    grace_over: bool,
    proposing: bool,
    pub(crate) proposal: Option<Proposal>,
    /// Blocks waiting for observations fetched from their proposer.
    parked: BTreeMap<MemberIndex, Block>,
    /// When this member last sent each peer each observation in answer to a `Holding` or an
    /// `ObservationRequest`: at most once per half re-send interval per (peer, observation),
    /// so small messages cannot draw large answers without bound. Bounded by n x (n + 1).
    served: BTreeMap<(MemberIndex, ObservationRef), u64>,
    /// Members whose `Accepted` hint was followed (one chain read per hinting member).
    hinted: BTreeSet<MemberIndex>,
    /// When this member last sent each peer its whole block, and last asked each proposer for
    /// its whole block: at most once per half re-send interval each.
    blocks_served: BTreeMap<MemberIndex, u64>,
    blocks_requested: BTreeMap<MemberIndex, u64>,
    pub(crate) slot_reached: bool,
    pub(crate) submit_in_flight: bool,
    /// After a failed submission, no new one before this time (backoff).
    pub(crate) submit_not_before_ms: u64,
    /// Failed submissions so far: the backoff doubles with each, up to a cap.
    pub(crate) submit_failures: u32,
}

impl EpochState {
    pub(crate) fn certificate(&self) -> Option<&Certificate> {
        self.proposal.as_ref()?.certificate.as_ref()
    }

    /// The aggregate computed in this epoch whose data hash is `data_hash`, if any.
    pub(crate) fn into_aggregate(self, data_hash: &[u8]) -> Option<Vec<MixnodeReward>> {
        self.aggregates
            .into_values()
            .find(|(_, hash)| hash.as_slice() == data_hash)
            .map(|(rewards, _)| rewards)
    }

    /// Whether a parked block references `reference`.
    fn parked_block_needs(&self, reference: &ObservationRef) -> bool {
        self.parked
            .values()
            .any(|block| block.observations.contains(reference))
    }

    /// Holds another version of an author's observation if a parked block needs it (so the
    /// block can be checked, however many versions the author signed) or if it is the
    /// author's first alternate; then drops the author's versions no parked block needs,
    /// keeping one as evidence.
    fn hold_alternate(&mut self, reference: ObservationRef, observation: Observation) {
        let author = reference.author;
        let has_evidence = self
            .alternates
            .keys()
            .any(|held| held.author == author && !self.parked_block_needs(held));
        if !self.parked_block_needs(&reference) && has_evidence {
            return;
        }
        self.alternates.insert(reference, observation);
        let mut evidence_kept = false;
        let unneeded: Vec<ObservationRef> = self
            .alternates
            .keys()
            .filter(|held| held.author == author && !self.parked_block_needs(held))
            .copied()
            .collect();
        for held in unneeded {
            if evidence_kept {
                self.alternates.remove(&held);
            }
            evidence_kept = true;
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Pending {
    OwnObservation {
        observation: Observation,
    },
    Echo {
        epoch: u64,
        proposer: MemberIndex,
        data_hash: Hash,
    },
    OwnBlock {
        epoch: u64,
        block: Block,
        rewards: Vec<MixnodeReward>,
    },
    Official {
        epoch: u64,
        source: OfficialSource,
    },
}

/// Why a protocol instance cannot be created.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NewError {
    /// The configuration breaks a rule.
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// The key is not in the signer set.
    #[error("key {key} is not in signer set version {version}")]
    NotAMember {
        /// The key (hex).
        key: String,
        /// The set's version.
        version: u32,
    },
}

/// One member's protocol instance.
#[derive(Debug)]
pub struct Protocol {
    pub(crate) config: ProtocolConfig,
    pub(crate) me: MemberIndex,
    key: Keypair,
    pub(crate) epochs: BTreeMap<u64, EpochState>,
    echo_decisions: BTreeMap<(u64, MemberIndex), Hash>,
    /// This member's echo signature per `(epoch, data hash)`, made once: a proposer sending
    /// its block again gets the same echo without another signing.
    echo_signatures: BTreeMap<(u64, Hash), Vec<u8>>,
    pending: BTreeMap<u64, Pending>,
    next_persist_id: u64,
    /// Epochs whose official data is stored.
    pub(crate) final_epochs: BTreeSet<u64>,
    /// Ended epochs in the window whose official data is not stored yet, whether or not this
    /// member measured or saw anything of them: each re-send round reads the chain for them.
    pub(crate) awaiting: BTreeSet<u64>,
    /// Epochs on chain whose official data is being stored.
    pub(crate) finalizing: BTreeMap<u64, Finalizing>,
    /// Epochs whose own observation could not be stored: measured again at the next re-send
    /// round.
    remeasure: BTreeSet<u64>,
    pub(crate) metrics: ProtocolMetrics,
    #[cfg(feature = "planted-bugs")]
    pub(crate) planted: Option<PlantedBug>,
}

/// A failed submission's backoff doubles at most this many times (up to 16 re-send
/// intervals).
const SUBMIT_BACKOFF_DOUBLINGS: u32 = 4;

/// Collects actions while handling one input.
#[derive(Default)]
pub(crate) struct Out(Vec<Action>);

impl Out {
    pub(crate) fn push(&mut self, action: Action) {
        self.0.push(action);
    }
}

impl Protocol {
    /// A member with `key`, which must be in the configured signer set. Feed
    /// [`Input::Start`] next.
    pub fn new(
        config: ProtocolConfig,
        key: Keypair,
        restored: RestoredState,
    ) -> Result<Self, NewError> {
        config.validate()?;
        let me = config
            .signer_set
            .index_of_key(&key.public())
            .ok_or_else(|| NewError::NotAMember {
                key: hex::encode(key.public()),
                version: config.signer_set.version,
            })?;
        let mut epochs: BTreeMap<u64, EpochState> = BTreeMap::new();
        // Only observations this member signed under this signer set (a store written under
        // another key or version has nothing to resend).
        let version = config.signer_set.version;
        for observation in restored.own_observations {
            if observation.author == me && observation.signer_set_version == version {
                let epoch = observation.epoch;
                epochs.entry(epoch).or_default().own = Some(observation);
            }
        }
        Ok(Self {
            config,
            me,
            key,
            epochs,
            echo_decisions: restored
                .echo_decisions
                .into_iter()
                .map(|(epoch, proposer, hash)| ((epoch, proposer), hash))
                .collect(),
            echo_signatures: BTreeMap::new(),
            pending: BTreeMap::new(),
            next_persist_id: 0,
            final_epochs: restored.final_epochs.into_iter().collect(),
            awaiting: BTreeSet::new(),
            finalizing: BTreeMap::new(),
            remeasure: BTreeSet::new(),
            metrics: ProtocolMetrics::default(),
            #[cfg(feature = "planted-bugs")]
            planted: None,
        })
    }

    /// Switches on a planted bug (tests only; see [`PlantedBug`]).
    #[cfg(feature = "planted-bugs")]
    pub fn plant(&mut self, bug: PlantedBug) {
        self.planted = Some(bug);
    }

    /// Whether `bug` is planted in this instance.
    pub(crate) fn planted(&self, bug: PlantedBug) -> bool {
        #[cfg(feature = "planted-bugs")]
        {
            self.planted == Some(bug)
        }
        #[cfg(not(feature = "planted-bugs"))]
        {
            let _ = bug;
            false
        }
    }

    /// This member's index.
    pub fn me(&self) -> MemberIndex {
        self.me
    }

    /// The configuration.
    pub fn config(&self) -> &ProtocolConfig {
        &self.config
    }

    /// Counters so far.
    pub fn metrics(&self) -> &ProtocolMetrics {
        &self.metrics
    }

    /// Whether the epoch's official data is stored.
    pub fn is_final(&self, epoch: u64) -> bool {
        self.final_epochs.contains(&epoch)
    }

    /// Whether the epoch is known to be on chain (final, or its official data being stored):
    /// nothing more is signed or sent for it.
    pub fn is_settled(&self, epoch: u64) -> bool {
        self.is_final(epoch) || self.finalizing.contains_key(&epoch)
    }

    /// This member's block for `epoch`, if it proposed one.
    pub fn own_block(&self, epoch: u64) -> Option<&Block> {
        Some(&self.epochs.get(&epoch)?.proposal.as_ref()?.block)
    }

    /// The certificate of this member's block for `epoch`, if it has one.
    pub fn certificate(&self, epoch: u64) -> Option<&Certificate> {
        self.epochs.get(&epoch)?.certificate()
    }

    /// Observations held for `epoch`, every version counted (a gauge of the memory an
    /// equivocator can make this member spend).
    pub fn held_observations(&self, epoch: u64) -> usize {
        self.epochs
            .get(&epoch)
            .map_or(0, |state| state.observations.len() + state.alternates.len())
    }

    /// The data hash this member decided to sign for `proposer`'s block of `epoch`.
    pub fn echo_decision(&self, epoch: u64, proposer: MemberIndex) -> Option<Hash> {
        self.echo_decisions.get(&(epoch, proposer)).copied()
    }

    /// Handles one input at `now_ms` and returns what to do.
    pub fn handle(&mut self, now_ms: u64, input: Input) -> Vec<Action> {
        let mut out = Out::default();
        match input {
            Input::Start => self.on_start(now_ms, &mut out),
            Input::Measured { epoch, values } => self.on_measured(now_ms, epoch, values, &mut out),
            Input::Message { from, message } => self.on_message(now_ms, from, message, &mut out),
            Input::Timer(timer) => self.on_timer(now_ms, timer, &mut out),
            Input::Persisted { id } => self.on_persisted(now_ms, id, &mut out),
            Input::PersistFailed { id } => self.on_persist_failed(id, &mut out),
            Input::ChainRecord { epoch, record } => {
                self.on_chain_record(now_ms, epoch, record.map(|record| *record), &mut out)
            }
            Input::Submitted {
                epoch,
                record,
                tx_ref,
            } => self.on_submitted(
                now_ms,
                epoch,
                record.map(|record| *record),
                tx_ref,
                &mut out,
            ),
            Input::WinnerCopy { epoch, copy } => {
                self.on_winner_copy(epoch, copy.map(|copy| *copy), &mut out)
            }
        }
        self.metrics.rejections += out
            .0
            .iter()
            .filter(|action| matches!(action, Action::Rejected { .. }))
            .count() as u64;
        out.0
    }

    /// Arms the re-send round and the next epoch end, and resumes the catch-up window: the
    /// recent ended epochs that are not final are measured again and looked up on chain.
    fn on_start(&mut self, now_ms: u64, out: &mut Out) {
        out.push(Action::SetTimer {
            at_ms: now_ms + self.config.resend_interval_ms,
            timer: Timer::Resend,
        });
        let current = self.config.epoch_at_ms(now_ms);
        if let Some(current) = current {
            // Every ended epoch of the window (the same range the re-send rounds keep).
            for epoch in self.config.window_start(now_ms)..current {
                if !self.is_final(epoch) {
                    self.awaiting.insert(epoch);
                    out.push(Action::Measure { epoch });
                    out.push(Action::ReadChain { epoch });
                }
            }
        }
        let next = current.unwrap_or(0);
        out.push(Action::SetTimer {
            at_ms: self.config.epoch_end_ms(next),
            timer: Timer::EpochEnd { epoch: next },
        });
    }

    fn on_epoch_end(&mut self, epoch: u64, out: &mut Out) {
        if !self.is_final(epoch) {
            self.awaiting.insert(epoch);
        }
        out.push(Action::Measure { epoch });
        let next = epoch.saturating_add(1);
        out.push(Action::SetTimer {
            at_ms: self.config.epoch_end_ms(next),
            timer: Timer::EpochEnd { epoch: next },
        });
    }

    /// Signs this member's averages of an ended epoch as its observation, stores it and sends
    /// it once stored; an observation already stored (before a restart) is sent as it was.
    fn on_measured(
        &mut self,
        now_ms: u64,
        epoch: u64,
        values: Option<Vec<MixnodeReward>>,
        out: &mut Out,
    ) {
        if self.is_settled(epoch) || !self.config.in_window(now_ms, epoch) {
            return;
        }
        if let Some(own) = self.epochs.get(&epoch).and_then(|state| state.own.clone()) {
            return self.send_own(now_ms, own, out);
        }
        let storing = self.pending.values().any(
            |pending| matches!(pending, Pending::OwnObservation { observation } if observation.epoch == epoch),
        );
        if storing {
            return;
        }
        let Some(values) = values else {
            out.push(Action::Rejected {
                from: None,
                reason: Rejection::NoMeasurements { epoch },
            });
            return;
        };
        if let Err(err) = validate_values(&values, &self.config.mixnodes) {
            out.push(Action::Rejected {
                from: None,
                reason: Rejection::InvalidOwnValues(err),
            });
            return;
        }
        let digest = observation_digest(&self.config, epoch, &values);
        self.metrics.signatures_created += 1;
        let observation = Observation {
            epoch,
            signer_set_version: self.config.signer_set.version,
            author: self.me,
            signature: self.key.sign(&digest),
            values,
        };
        let record = PersistRecord::OwnObservation {
            observation: observation.clone(),
        };
        self.persist(record, Pending::OwnObservation { observation }, out);
    }

    /// Sends this member's (stored) observation and takes it as its own: held, the
    /// submission slot armed, a proposal considered.
    fn send_own(&mut self, now_ms: u64, observation: Observation, out: &mut Out) {
        let epoch = observation.epoch;
        out.push(Action::Broadcast {
            message: Message::Observation(observation.clone()),
        });
        let me = self.me;
        let digest = observation_digest(&self.config, epoch, &observation.values);
        let state = self.epochs.entry(epoch).or_default();
        state.own = Some(observation.clone());
        if let std::collections::btree_map::Entry::Vacant(slot) = state.observations.entry(me) {
            slot.insert((digest, observation));
            self.metrics.observations_accepted += 1;
        }
        self.arm_submit_slot(epoch, out);
        self.maybe_propose(now_ms, epoch, out);
    }

    /// Arms this member's staggered submission slot for `epoch` (when it sends its
    /// observation, and when it proposes: a proposer without an observation of its own must
    /// still submit its certificate). Arming it twice only reads the chain once more.
    fn arm_submit_slot(&self, epoch: u64, out: &mut Out) {
        if self.config.policy != SubmitPolicy::Staggered {
            return;
        }
        let at_ms = submission_slot_ms(
            self.config.epoch_end_ms(epoch),
            self.rank(epoch),
            self.config.submit_slot_ms,
        );
        out.push(Action::SetTimer {
            at_ms,
            timer: Timer::SubmitSlot { epoch },
        });
    }

    fn on_message(&mut self, now_ms: u64, from: MemberIndex, message: Message, out: &mut Out) {
        if usize::from(from) >= self.config.n() {
            out.push(Action::Rejected {
                from: Some(from),
                reason: Rejection::NotAMember,
            });
            return;
        }
        let epoch = message.epoch();
        if !self.config.in_window(now_ms, epoch) {
            out.push(Action::Rejected {
                from: Some(from),
                reason: Rejection::EpochOutOfWindow { epoch },
            });
            return;
        }
        if self.is_settled(epoch) {
            return;
        }
        if let Some(version) = message
            .signer_set_version()
            .filter(|&version| version != self.config.signer_set.version)
        {
            return Self::reject(out, from, Rejection::WrongVersion { version });
        }
        match message {
            Message::Observation(observation) => {
                self.on_observation(now_ms, from, observation, out)
            }
            Message::Block(block) => self.on_send(from, block, out),
            Message::BlockDigest(digest) => self.on_block_digest(now_ms, from, digest, out),
            Message::BlockRequest { epoch } => self.on_block_request(now_ms, from, epoch, out),
            Message::Echo(echo) => self.on_echo(from, echo, out),
            Message::ObservationRequest { epoch, reference } => {
                self.on_observation_request(from, epoch, reference, now_ms, out)
            }
            Message::Holding { epoch, authors } => {
                self.on_holding(now_ms, from, epoch, &authors, out)
            }
            Message::Accepted { epoch } => self.on_accepted(now_ms, from, epoch, out),
        }
    }

    pub(crate) fn reject(out: &mut Out, from: MemberIndex, reason: Rejection) {
        out.push(Action::Rejected {
            from: Some(from),
            reason,
        });
    }

    fn on_observation(
        &mut self,
        now_ms: u64,
        from: MemberIndex,
        observation: Observation,
        out: &mut Out,
    ) {
        let author = observation.author;
        let Some(author_key) = self.config.signer_set.key(author).copied() else {
            return Self::reject(out, from, Rejection::UnknownAuthor { author });
        };
        if let Err(err) = validate_values(&observation.values, &self.config.mixnodes) {
            return Self::reject(out, from, Rejection::InvalidValues(err));
        }
        let epoch = observation.epoch;
        let digest = observation_digest(&self.config, epoch, &observation.values);
        let reference = ObservationRef { author, digest };
        let state = self.epochs.entry(epoch).or_default();
        let first = state.observations.get(&author).map(|(held, _)| *held);
        if first == Some(digest) || state.alternates.contains_key(&reference) {
            return; // already verified and held
        }
        self.metrics.signature_verifications += 1;
        if verify_signature(&digest, &observation.signature, &author_key) == SignatureCheck::Invalid
        {
            return Self::reject(out, from, Rejection::BadSignature { signer: author });
        }
        let state = self.epochs.entry(epoch).or_default();
        if first.is_some() {
            state.equivocators.insert(author);
            state.hold_alternate(reference, observation);
            Self::reject(out, from, Rejection::Equivocation { author });
        } else {
            state.observations.insert(author, (digest, observation));
            self.metrics.observations_accepted += 1;
        }
        self.retry_parked(epoch, out);
        self.maybe_propose(now_ms, epoch, out);
    }

    /// This member's rank in `epoch`'s order (submission slot and proposer group).
    fn rank(&self, epoch: u64) -> usize {
        submission_rank(epoch, &self.key.public(), self.config.signer_set.keys())
    }

    /// Whether this member's proposer group may propose for `epoch` at `now_ms`: the first
    /// f + 1 ranks at once, later groups only once the earlier groups' submission slots passed
    /// without the epoch reaching the chain (checked at the re-send rounds).
    fn may_propose(&self, now_ms: u64, epoch: u64) -> bool {
        let group_size = faulty_tolerated(self.config.n()) + 1;
        let from_ms = proposing_from_ms(
            self.config.epoch_end_ms(epoch),
            self.rank(epoch),
            group_size,
            self.config.submit_slot_ms,
        );
        now_ms >= from_ms
    }

    fn maybe_propose(&mut self, now_ms: u64, epoch: u64, out: &mut Out) {
        let k = self.config.observation_threshold;
        let n = self.config.n();
        let grace = self.config.observation_grace_ms;
        let Some(state) = self.epochs.get(&epoch) else {
            return;
        };
        if state.proposal.is_some() || state.proposing {
            return;
        }
        if !self.may_propose(now_ms, epoch) {
            return;
        }
        let Some(state) = self.epochs.get_mut(&epoch) else {
            return;
        };
        let usable = state
            .observations
            .keys()
            .filter(|author| !state.equivocators.contains(author))
            .count();
        if usable < k {
            return;
        }
        if usable < n && !state.grace_over {
            if !state.grace_armed {
                state.grace_armed = true;
                out.push(Action::SetTimer {
                    at_ms: now_ms + grace,
                    timer: Timer::Grace { epoch },
                });
            }
            return;
        }
        self.propose(epoch, out);
    }

    fn propose(&mut self, epoch: u64, out: &mut Out) {
        let me = self.me;
        let Some(state) = self.epochs.get(&epoch) else {
            return;
        };
        let refs: Vec<ObservationRef> = state
            .observations
            .iter()
            .filter(|(author, _)| !state.equivocators.contains(author))
            .map(|(&author, (digest, _))| ObservationRef {
                author,
                digest: *digest,
            })
            .collect();
        let Some((rewards, data_hash)) = self.aggregate(epoch, &refs) else {
            return;
        };
        if self
            .echo_decision(epoch, me)
            .is_some_and(|decided| decided != data_hash)
        {
            return; // signed another block of its own before a restart; never a second one
        }
        let block = Block {
            epoch,
            signer_set_version: self.config.signer_set.version,
            proposer: me,
            observations: refs,
            data_hash,
        };
        if let Some(state) = self.epochs.get_mut(&epoch) {
            state.proposing = true;
        }
        let record = PersistRecord::EchoDecision {
            epoch,
            proposer: me,
            data_hash,
        };
        let pending = Pending::OwnBlock {
            epoch,
            block,
            rewards,
        };
        self.persist(record, pending, out);
    }

    pub(crate) fn persist(&mut self, record: PersistRecord, pending: Pending, out: &mut Out) {
        let id = self.next_persist_id;
        self.next_persist_id += 1;
        self.pending.insert(id, pending);
        out.push(Action::Persist { id, record });
    }

    /// Looks up the observations of `refs` and returns their aggregate and its data hash,
    /// computing it once per observation set.
    fn aggregate(
        &mut self,
        epoch: u64,
        refs: &[ObservationRef],
    ) -> Option<(Vec<MixnodeReward>, Hash)> {
        let set_hash = refs_hash(refs);
        let state = self.epochs.get_mut(&epoch)?;
        if let Some(cached) = state.aggregates.get(&set_hash) {
            return Some(cached.clone());
        }
        let mut columns: Vec<&[MixnodeReward]> = Vec::with_capacity(refs.len());
        for reference in refs {
            columns.push(find_observation(state, reference)?.values.as_slice());
        }
        let rewards = lower_median(&columns).ok()?;
        let data_hash = nym_rewards::digest::data_hash(&rewards);
        self.metrics.aggregates_computed += 1;
        state
            .aggregates
            .insert(set_hash, (rewards.clone(), data_hash));
        Some((rewards, data_hash))
    }

    /// Answers a block of `from` with `data_hash` that needs no checking: echoed again if
    /// this member already decided on it, refused if it decided on another or refuted the
    /// proposer. Returns whether it answered.
    fn answer_known_block(
        &mut self,
        epoch: u64,
        from: MemberIndex,
        data_hash: Hash,
        out: &mut Out,
    ) -> bool {
        if let Some(decided) = self.echo_decision(epoch, from) {
            if decided == data_hash {
                self.send_echo(epoch, from, decided, out);
            } else {
                Self::reject(out, from, Rejection::ConflictingBlock { proposer: from });
            }
            return true;
        }
        if self
            .epochs
            .get(&epoch)
            .is_some_and(|state| state.refuted.contains(&from))
        {
            Self::reject(out, from, Rejection::AggregateMismatch);
            return true;
        }
        false
    }

    /// A proposer's block digest: rebuilt from the observations held and checked as a block,
    /// or, when it cannot be rebuilt, the whole block is asked for.
    fn on_block_digest(
        &mut self,
        now_ms: u64,
        from: MemberIndex,
        digest: BlockDigest,
        out: &mut Out,
    ) {
        if digest.proposer != from {
            return Self::reject(out, from, Rejection::WrongSender);
        }
        if !self.canonical_bitmap(&digest.authors) {
            return Self::reject(out, from, Rejection::BadBitmap);
        }
        if self.answer_known_block(digest.epoch, from, digest.data_hash, out) {
            return;
        }
        // The whole block is parked, waiting for observations it references: those are
        // requested at each re-send round, the block need not come again.
        let parked = self
            .epochs
            .get(&digest.epoch)
            .and_then(|state| state.parked.get(&from))
            .is_some_and(|block| {
                block.data_hash == digest.data_hash && block.refs_hash() == digest.refs_hash
            });
        if parked {
            return;
        }
        match self.rebuild(&digest) {
            Some(block) => self.on_send(from, block, out),
            None => self.request_block(now_ms, digest.epoch, from, out),
        }
    }

    /// Whether `bitmap` is an authors bitmap of this signer set: `ceil(n / 8)` bytes, no bit
    /// at or past n.
    fn canonical_bitmap(&self, bitmap: &[u8]) -> bool {
        let n = self.config.n();
        bitmap.len() == n.div_ceil(8)
            && (n..bitmap.len() * 8).all(|bit| !holds(bitmap, bit as MemberIndex))
    }

    /// The block `digest` names, from the first observation held of each author it names, if
    /// that gives its references hash.
    fn rebuild(&self, digest: &BlockDigest) -> Option<Block> {
        let state = self.epochs.get(&digest.epoch)?;
        let observations = (0..self.config.n() as MemberIndex)
            .filter(|&author| holds(&digest.authors, author))
            .map(|author| {
                let (held, _) = state.observations.get(&author)?;
                Some(ObservationRef {
                    author,
                    digest: *held,
                })
            })
            .collect::<Option<Vec<ObservationRef>>>()?;
        (refs_hash(&observations) == digest.refs_hash).then_some(Block {
            epoch: digest.epoch,
            signer_set_version: digest.signer_set_version,
            proposer: digest.proposer,
            observations,
            data_hash: digest.data_hash,
        })
    }

    /// Asks `proposer` for its whole block of `epoch` (at most once per half re-send interval).
    fn request_block(&mut self, now_ms: u64, epoch: u64, proposer: MemberIndex, out: &mut Out) {
        let pause = self.config.resend_interval_ms / 2;
        let state = self.epochs.entry(epoch).or_default();
        if !pause_over(&mut state.blocks_requested, proposer, now_ms, pause) {
            return;
        }
        out.push(Action::Send {
            to: proposer,
            message: Message::BlockRequest { epoch },
        });
    }

    /// A member asks for this member's whole block of `epoch` (sent at most once per half
    /// re-send interval per asker).
    fn on_block_request(&mut self, now_ms: u64, from: MemberIndex, epoch: u64, out: &mut Out) {
        let pause = self.config.resend_interval_ms / 2;
        let Some(state) = self.epochs.get_mut(&epoch) else {
            return;
        };
        if state.proposal.is_none() || !pause_over(&mut state.blocks_served, from, now_ms, pause) {
            return;
        }
        if let Some(proposal) = state.proposal.as_ref() {
            out.push(Action::Send {
                to: from,
                message: Message::Block(proposal.block.clone()),
            });
        }
    }

    fn on_send(&mut self, from: MemberIndex, block: Block, out: &mut Out) {
        if block.proposer != from {
            return Self::reject(out, from, Rejection::WrongSender);
        }
        let epoch = block.epoch;
        if self.answer_known_block(epoch, from, block.data_hash, out) {
            return;
        }
        let already_pending = self.pending.values().any(|pending| {
            matches!(pending, Pending::Echo { epoch: e, proposer, .. } if *e == epoch && *proposer == from)
        });
        if already_pending {
            return;
        }
        let k = self.config.observation_threshold;
        if block.observations.len() < k {
            return Self::reject(
                out,
                from,
                Rejection::TooFewAuthors {
                    got: block.observations.len(),
                    need: k,
                },
            );
        }
        if block
            .observations
            .windows(2)
            .any(|pair| pair[0].author >= pair[1].author)
        {
            return Self::reject(out, from, Rejection::UnsortedAuthors);
        }
        if let Some(last) = block
            .observations
            .last()
            .filter(|last| usize::from(last.author) >= self.config.n())
        {
            return Self::reject(
                out,
                from,
                Rejection::UnknownAuthor {
                    author: last.author,
                },
            );
        }
        let state = self.epochs.entry(epoch).or_default();
        let missing: Vec<ObservationRef> = block
            .observations
            .iter()
            .filter(|reference| find_observation(state, reference).is_none())
            .copied()
            .collect();
        if !missing.is_empty() {
            match state.parked.get(&from) {
                // An honest proposer has one block per epoch: a second one with another hash
                // refutes it (no more requests for its blocks, whatever they reference).
                Some(parked) if parked.data_hash != block.data_hash => {
                    state.refuted.insert(from);
                    state.parked.remove(&from);
                    return Self::reject(out, from, Rejection::ConflictingBlock { proposer: from });
                }
                // The same block again: its missing observations were requested already (and
                // are requested again at each re-send round).
                Some(parked) if *parked == block => return,
                _ => {}
            }
            for reference in missing {
                out.push(Action::Send {
                    to: from,
                    message: Message::ObservationRequest { epoch, reference },
                });
            }
            state.parked.insert(from, block);
            return;
        }
        state.parked.remove(&from);
        match self.aggregate(epoch, &block.observations) {
            Some((_, data_hash)) if data_hash == block.data_hash => {
                let record = PersistRecord::EchoDecision {
                    epoch,
                    proposer: from,
                    data_hash,
                };
                self.persist(
                    record,
                    Pending::Echo {
                        epoch,
                        proposer: from,
                        data_hash,
                    },
                    out,
                );
            }
            _ => {
                // An honest proposer's hash always matches (the aggregate is deterministic):
                // this proposer gets no second computation in this epoch.
                if let Some(state) = self.epochs.get_mut(&epoch) {
                    state.refuted.insert(from);
                    state.parked.remove(&from);
                }
                Self::reject(out, from, Rejection::AggregateMismatch)
            }
        }
    }

    fn retry_parked(&mut self, epoch: u64, out: &mut Out) {
        let Some(state) = self.epochs.get(&epoch) else {
            return;
        };
        let ready: Vec<Block> = state
            .parked
            .values()
            .filter(|block| {
                block
                    .observations
                    .iter()
                    .all(|reference| find_observation(state, reference).is_some())
            })
            .cloned()
            .collect();
        for block in ready {
            self.on_send(block.proposer, block, out);
        }
    }

    /// This member's signature over `epoch`'s digest of `data_hash`, signed once.
    fn echo_signature(&mut self, epoch: u64, data_hash: Hash) -> Vec<u8> {
        if let Some(signature) = self.echo_signatures.get(&(epoch, data_hash)) {
            return signature.clone();
        }
        let signature = self.key.sign(&echo_digest(&self.config, epoch, &data_hash));
        self.metrics.signatures_created += 1;
        self.echo_signatures
            .insert((epoch, data_hash), signature.clone());
        signature
    }

    fn send_echo(&mut self, epoch: u64, proposer: MemberIndex, data_hash: Hash, out: &mut Out) {
        let signature = self.echo_signature(epoch, data_hash);
        self.metrics.echoes_sent += 1;
        out.push(Action::Send {
            to: proposer,
            message: Message::Echo(Echo {
                epoch,
                proposer,
                data_hash,
                signature,
            }),
        });
    }

    fn on_persisted(&mut self, now_ms: u64, id: u64, out: &mut Out) {
        match self.pending.remove(&id) {
            Some(Pending::OwnObservation { observation }) => {
                self.send_own(now_ms, observation, out)
            }
            Some(Pending::Echo {
                epoch,
                proposer,
                data_hash,
            }) => {
                self.echo_decisions.insert((epoch, proposer), data_hash);
                self.send_echo(epoch, proposer, data_hash, out);
            }
            Some(Pending::OwnBlock {
                epoch,
                block,
                rewards,
            }) => {
                self.echo_decisions
                    .insert((epoch, self.me), block.data_hash);
                let own_signature = self.echo_signature(epoch, block.data_hash);
                self.metrics.blocks_proposed += 1;
                self.arm_submit_slot(epoch, out);
                out.push(Action::Broadcast {
                    message: Message::BlockDigest(block.digest(self.config.n())),
                });
                if let Some(state) = self.epochs.get_mut(&epoch) {
                    state.proposing = false;
                    let mut echoes = BTreeMap::new();
                    echoes.insert(self.me, own_signature);
                    state.proposal = Some(Proposal {
                        block,
                        rewards,
                        echoes,
                        certificate: None,
                    });
                }
                self.check_certificate(epoch, out);
            }
            Some(Pending::Official { epoch, source }) => {
                self.on_official_stored(epoch, source, out)
            }
            None => {}
        }
    }

    /// A failed write leaves no decision behind: an own observation is not sent (measured
    /// again at the next re-send round), an echo is not sent, an own block not proposed
    /// (retried at the next re-send round), official data is retried.
    fn on_persist_failed(&mut self, id: u64, out: &mut Out) {
        match self.pending.remove(&id) {
            Some(Pending::OwnObservation { observation }) => {
                self.remeasure.insert(observation.epoch);
            }
            Some(Pending::OwnBlock { epoch, .. }) => {
                if let Some(state) = self.epochs.get_mut(&epoch) {
                    state.proposing = false;
                }
            }
            Some(Pending::Official { epoch, .. }) => self.on_official_not_stored(epoch, out),
            Some(Pending::Echo { .. }) | None => {}
        }
    }

    fn on_echo(&mut self, from: MemberIndex, echo: Echo, out: &mut Out) {
        let me = self.me;
        let known = self
            .epochs
            .get(&echo.epoch)
            .and_then(|state| state.proposal.as_ref())
            .filter(|proposal| echo.proposer == me && proposal.block.data_hash == echo.data_hash);
        let Some(proposal) = known else {
            return Self::reject(out, from, Rejection::UnknownBlock);
        };
        // Once t echoes formed the certificate, later ones are not even verified.
        if proposal.echoes.contains_key(&from) || proposal.certificate.is_some() {
            return;
        }
        let digest = echo_digest(&self.config, echo.epoch, &echo.data_hash);
        let Some(key) = self.config.signer_set.key(from).copied() else {
            return Self::reject(out, from, Rejection::NotAMember);
        };
        self.metrics.signature_verifications += 1;
        if verify_signature(&digest, &echo.signature, &key) == SignatureCheck::Invalid {
            return Self::reject(out, from, Rejection::BadSignature { signer: from });
        }
        if let Some(proposal) = self
            .epochs
            .get_mut(&echo.epoch)
            .and_then(|state| state.proposal.as_mut())
        {
            proposal.echoes.insert(from, echo.signature);
        }
        self.check_certificate(echo.epoch, out);
    }

    fn check_certificate(&mut self, epoch: u64, out: &mut Out) {
        let threshold = self.config.threshold();
        let version = self.config.signer_set.version;
        let Some(state) = self.epochs.get_mut(&epoch) else {
            return;
        };
        let Some(proposal) = state.proposal.as_mut() else {
            return;
        };
        if proposal.certificate.is_some() || proposal.echoes.len() < threshold {
            return;
        }
        let certificate = Certificate {
            epoch,
            signer_set_version: version,
            rewards: proposal.rewards.clone(),
            data_hash: proposal.block.data_hash,
            signatures: proposal
                .echoes
                .iter()
                .map(|(&index, sig)| (index, sig.clone()))
                .collect(),
        };
        proposal.certificate = Some(certificate.clone());
        self.metrics.certificates += 1;
        out.push(Action::Certified { certificate });
        match self.config.policy {
            SubmitPolicy::Race => self.submit(epoch, out),
            SubmitPolicy::Staggered if state.slot_reached => out.push(Action::ReadChain { epoch }),
            SubmitPolicy::Staggered => {}
        }
    }

    pub(crate) fn submit(&mut self, epoch: u64, out: &mut Out) {
        let Some(state) = self.epochs.get_mut(&epoch) else {
            return;
        };
        if state.submit_in_flight {
            return;
        }
        let Some(certificate) = state.proposal.as_ref().and_then(|p| p.certificate.clone()) else {
            return;
        };
        state.submit_in_flight = true;
        out.push(Action::Submit { certificate });
    }

    fn on_observation_request(
        &mut self,
        from: MemberIndex,
        epoch: u64,
        reference: ObservationRef,
        now_ms: u64,
        out: &mut Out,
    ) {
        // Only this member's own observation and those its own block references are served:
        // a member asks a block's proposer for what the block references.
        let me = self.me;
        let Some(state) = self.epochs.get(&epoch) else {
            return;
        };
        let in_own_block = state
            .proposal
            .as_ref()
            .is_some_and(|proposal| proposal.block.observations.contains(&reference));
        if reference.author == me || in_own_block {
            self.serve(now_ms, epoch, from, reference, out);
        }
    }

    /// Sends the observation `reference` names to `to`, if held and not sent to it within the
    /// last half re-send interval.
    fn serve(
        &mut self,
        now_ms: u64,
        epoch: u64,
        to: MemberIndex,
        reference: ObservationRef,
        out: &mut Out,
    ) {
        let pause = self.config.resend_interval_ms / 2;
        let Some(state) = self.epochs.get_mut(&epoch) else {
            return;
        };
        let Some(observation) = find_observation(state, &reference).cloned() else {
            return;
        };
        if !pause_over(&mut state.served, (to, reference), now_ms, pause) {
            return;
        }
        out.push(Action::Send {
            to,
            message: Message::Observation(observation),
        });
    }

    /// A member that may propose for `epoch` and has not yet tells the others whose
    /// observations it holds, and each member it lacks answers with its own. Only proposers
    /// need every observation they can get; a member checking a block fetches what the block
    /// references from its proposer.
    fn ask_for_missing_observations(&self, now_ms: u64, epoch: u64, out: &mut Out) {
        let state = self.epochs.get(&epoch);
        let proposed = state.is_some_and(|state| state.proposal.is_some() || state.proposing);
        if proposed || !self.may_propose(now_ms, epoch) {
            return;
        }
        let n = self.config.n();
        let held = state.map_or_else(
            || holding_bitmap(n, []),
            |state| holding_bitmap(n, state.observations.keys().copied()),
        );
        out.push(Action::Broadcast {
            message: Message::Holding {
                epoch,
                authors: held,
            },
        });
    }

    /// A peer says whose observations of `epoch` it holds: if it lacks this member's, send it
    /// (see [`Self::serve`]).
    fn on_holding(
        &mut self,
        now_ms: u64,
        from: MemberIndex,
        epoch: u64,
        authors: &[u8],
        out: &mut Out,
    ) {
        let me = self.me;
        if !self.canonical_bitmap(authors) {
            return Self::reject(out, from, Rejection::BadBitmap);
        }
        if holds(authors, me) {
            return;
        }
        let own = self
            .epochs
            .get(&epoch)
            .and_then(|state| state.observations.get(&me))
            .map(|(digest, _)| ObservationRef {
                author: me,
                digest: *digest,
            });
        if let Some(reference) = own {
            self.serve(now_ms, epoch, from, reference, out);
        }
    }

    /// A peer says its submission of `epoch` was accepted: read the chain now (once per
    /// hinting peer and epoch; the hint is not taken as fact).
    fn on_accepted(&mut self, now_ms: u64, from: MemberIndex, epoch: u64, out: &mut Out) {
        let ended = self
            .config
            .epoch_at_ms(now_ms)
            .is_some_and(|current| epoch < current);
        if !ended {
            return;
        }
        if self.epochs.entry(epoch).or_default().hinted.insert(from) {
            out.push(Action::ReadChain { epoch });
        }
    }

    /// The epoch is not on chain: submit if this member holds a certificate, may submit
    /// now (its staggered slot has come, or the race policy) and is not backing off.
    pub(crate) fn on_not_on_chain(&mut self, now_ms: u64, epoch: u64, out: &mut Out) {
        let policy = self.config.policy;
        let Some(state) = self.epochs.get(&epoch) else {
            return;
        };
        let eligible = match policy {
            SubmitPolicy::Race => true,
            SubmitPolicy::Staggered => state.slot_reached,
        };
        if state.certificate().is_some() && eligible && now_ms >= state.submit_not_before_ms {
            self.submit(epoch, out);
        }
    }

    /// The outcome of this member's submission.
    fn on_submitted(
        &mut self,
        now_ms: u64,
        epoch: u64,
        record: Option<nym_rewards::msg::EpochRewardsResponse>,
        tx_ref: Option<String>,
        out: &mut Out,
    ) {
        // A record of another epoch is a failed read, not an outcome.
        let record = match record {
            Some(record) if record.epoch != epoch => {
                out.push(Action::Rejected {
                    from: None,
                    reason: Rejection::RecordForAnotherEpoch {
                        asked: epoch,
                        got: record.epoch,
                    },
                });
                None
            }
            record => record,
        };
        if let Some(state) = self.epochs.get_mut(&epoch) {
            state.submit_in_flight = false;
            if record.is_none() {
                // Back off, doubling per failure up to a cap: a chain that refuses or is
                // down is not hammered.
                state.submit_failures = state.submit_failures.saturating_add(1);
                let factor = 1u64 << (state.submit_failures - 1).min(SUBMIT_BACKOFF_DOUBLINGS);
                let retry_at = now_ms + self.config.resend_interval_ms * factor;
                state.submit_not_before_ms = retry_at;
                out.push(Action::SetTimer {
                    at_ms: retry_at,
                    timer: Timer::SubmitRetry { epoch },
                });
            }
        }
        if let Some(record) = record {
            self.on_on_chain(epoch, record, tx_ref, out);
        }
    }

    fn on_timer(&mut self, now_ms: u64, timer: Timer, out: &mut Out) {
        match timer {
            Timer::EpochEnd { epoch } => self.on_epoch_end(epoch, out),
            Timer::Grace { epoch } => {
                if let Some(state) = self.epochs.get_mut(&epoch) {
                    state.grace_over = true;
                }
                self.maybe_propose(now_ms, epoch, out);
            }
            Timer::SubmitSlot { epoch } => {
                let Some(state) = self.epochs.get_mut(&epoch) else {
                    return;
                };
                state.slot_reached = true;
                if state.certificate().is_some() {
                    out.push(Action::ReadChain { epoch });
                }
            }
            Timer::SubmitRetry { epoch } => {
                if self.certificate(epoch).is_some() && !self.is_settled(epoch) {
                    out.push(Action::ReadChain { epoch });
                }
            }
            Timer::Resend => self.on_resend(now_ms, out),
        }
    }

    fn on_resend(&mut self, now_ms: u64, out: &mut Out) {
        let window_start = self.config.window_start(now_ms);
        self.epochs.retain(|&epoch, _| epoch >= window_start);
        self.echo_decisions
            .retain(|&(epoch, _), _| epoch >= window_start);
        self.echo_signatures
            .retain(|&(epoch, _), _| epoch >= window_start);
        self.final_epochs.retain(|&epoch| epoch >= window_start);
        self.awaiting
            .retain(|&epoch| epoch >= window_start && !self.final_epochs.contains(&epoch));
        // Epochs being finalized are never pruned: their official data is retried until it is
        // stored (section 5 of docs/design.md).
        let current = self.config.epoch_at_ms(now_ms).unwrap_or(0);
        let ended_with_state = self.epochs.keys().copied().filter(|&epoch| epoch < current);
        let unknown: BTreeSet<u64> = self
            .awaiting
            .iter()
            .copied()
            .chain(ended_with_state)
            .filter(|&epoch| !self.is_settled(epoch))
            .collect();
        for epoch in unknown {
            out.push(Action::ReadChain { epoch });
            self.ask_for_missing_observations(now_ms, epoch, out);
        }
        for (&epoch, state) in &self.epochs {
            if let Some(proposal) = state.proposal.as_ref().filter(|p| p.certificate.is_none()) {
                out.push(Action::Broadcast {
                    message: Message::BlockDigest(proposal.block.digest(self.config.n())),
                });
            }
            for (&proposer, block) in &state.parked {
                for reference in &block.observations {
                    if find_observation(state, reference).is_none() {
                        out.push(Action::Send {
                            to: proposer,
                            message: Message::ObservationRequest {
                                epoch,
                                reference: *reference,
                            },
                        });
                    }
                }
            }
        }
        let unproposed: Vec<u64> = self
            .epochs
            .iter()
            .filter(|(_, state)| state.proposal.is_none() && !state.proposing)
            .map(|(&epoch, _)| epoch)
            .collect();
        for epoch in unproposed {
            self.maybe_propose(now_ms, epoch, out);
        }
        for epoch in std::mem::take(&mut self.remeasure) {
            if epoch >= window_start && !self.is_settled(epoch) {
                out.push(Action::Measure { epoch });
            }
        }
        self.retry_stalled_finality(out);
        out.push(Action::SetTimer {
            at_ms: now_ms + self.config.resend_interval_ms,
            timer: Timer::Resend,
        });
    }
}

/// Whether `pause_ms` has passed since `key`'s last time in `last_at` (or it has none); if
/// so, records `now_ms` as its last time.
fn pause_over<K: Ord>(last_at: &mut BTreeMap<K, u64>, key: K, now_ms: u64, pause_ms: u64) -> bool {
    if last_at
        .get(&key)
        .is_some_and(|&last| now_ms < last.saturating_add(pause_ms))
    {
        return false;
    }
    last_at.insert(key, now_ms);
    true
}

fn find_observation<'a>(
    state: &'a EpochState,
    reference: &ObservationRef,
) -> Option<&'a Observation> {
    state
        .observations
        .get(&reference.author)
        .filter(|(digest, _)| *digest == reference.digest)
        .map(|(_, observation)| observation)
        .or_else(|| state.alternates.get(reference))
}
