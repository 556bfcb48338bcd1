//! The state machine: [`Protocol::handle`] maps `(now, Input)` to `Vec<Action>`. This module
//! holds the member's state and dispatches each input to the handlers, written by concern in
//! its submodules: `observing`, `proposing`, `checking` (others' blocks), `certifying`
//! (echoes, certificate, submission) and `resending`; an epoch's phases are the enums of
//! `phase`; finalization is in `crate::finality`.

mod certifying;
mod checking;
mod observing;
mod phase;
mod proposing;
mod resending;

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
use crate::schedule::{
    is_backup_proposer, lead_position, proposing_from_ms, submission_rank, submission_slot_ms,
};
use crate::{Hash, MemberIndex, MixnodeReward, ProtocolConfig, SubmitPolicy};
use nym_rewards::rules::faulty_tolerated;
use phase::{Proposing, Submission};

/// An echo decision as the store holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredDecision {
    /// The epoch.
    pub epoch: u64,
    /// The signer-set version it was made under; 0 for a decision stored before versions were
    /// recorded, which belongs to the version governing its epoch.
    pub signer_set_version: u32,
    /// The proposer's index in that version.
    pub proposer: MemberIndex,
    /// What was signed.
    pub data_hash: Hash,
}

/// What a restarted member recovers from its store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RestoredState {
    /// Echo decisions (this member's own blocks included).
    pub echo_decisions: Vec<StoredDecision>,
    /// Epochs known to be on chain.
    pub final_epochs: Vec<u64>,
    /// This member's own signed observations, as first sent.
    pub own_observations: Vec<Observation>,
    /// Set when the store may not hold every signature this member made (the last run did
    /// not stop cleanly: a crash, or a copy restored from a backup taken while it ran): the
    /// restart time. For epochs that began before it and are not final, the member signs
    /// nothing new (no observation, block or echo it has not stored), since a lost run may
    /// have signed others; what the store holds is sent again as it was.
    pub unaccounted_before_ms: Option<u64>,
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

impl ProtocolMetrics {
    /// Adds `other`'s counts to these (the counters of several instances as one).
    pub fn add(&mut self, other: &ProtocolMetrics) {
        self.signature_verifications += other.signature_verifications;
        self.signatures_created += other.signatures_created;
        self.observations_accepted += other.observations_accepted;
        self.blocks_proposed += other.blocks_proposed;
        self.echoes_sent += other.echoes_sent;
        self.certificates += other.certificates;
        self.aggregates_computed += other.aggregates_computed;
        self.rejections += other.rejections;
        self.epochs_final += other.epochs_final;
        self.official_from_contract += other.official_from_contract;
        self.official_store_failures += other.official_store_failures;
    }
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
    /// Where this member's own block stands.
    pub(crate) proposing: Proposing,
    /// Blocks waiting for observations fetched from their proposer.
    parked: BTreeMap<MemberIndex, Block>,
    /// The references of the first block of another proposer this member checked and decided
    /// to echo: its own proposal, if it makes one later, takes them.
    echoed_refs: Option<Vec<ObservationRef>>,
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
    /// Where this member's submission stands (slot, flight, backoff).
    pub(crate) submission: Submission,
}

impl EpochState {
    pub(crate) fn certificate(&self) -> Option<&Certificate> {
        self.proposing.proposal()?.certificate.as_ref()
    }

    /// The first observations held of authors who did not equivocate (with their digests):
    /// what a proposal can use.
    pub(crate) fn usable(&self) -> impl Iterator<Item = (&MemberIndex, &(Hash, Observation))> {
        self.observations
            .iter()
            .filter(|(author, _)| !self.equivocators.contains(author))
    }

    /// How many authors a proposal can use (see [`Self::usable`]).
    pub(crate) fn usable_observations(&self) -> usize {
        self.usable().count()
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
    /// The signer sets name more distinct keys than a [`crate::PeerIndex`] can count.
    #[error("the signer sets name more than 65536 distinct keys")]
    RosterFull,
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
    /// See [`RestoredState::unaccounted_before_ms`].
    unaccounted_before_ms: Option<u64>,
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
    /// The first epoch of the next signer-set version, once one is known: from there on the
    /// epochs are another instance's (see [`crate::Engine`]).
    until_epoch: Option<u64>,
    #[cfg(feature = "planted-bugs")]
    pub(crate) planted: Option<PlantedBug>,
}

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
            // This version's decisions, and those stored before versions were recorded.
            echo_decisions: restored
                .echo_decisions
                .into_iter()
                .filter(|decision| {
                    decision.signer_set_version == 0 || decision.signer_set_version == version
                })
                .map(|decision| ((decision.epoch, decision.proposer), decision.data_hash))
                .collect(),
            echo_signatures: BTreeMap::new(),
            pending: BTreeMap::new(),
            next_persist_id: 0,
            final_epochs: restored.final_epochs.into_iter().collect(),
            unaccounted_before_ms: restored.unaccounted_before_ms,
            awaiting: BTreeSet::new(),
            finalizing: BTreeMap::new(),
            remeasure: BTreeSet::new(),
            metrics: ProtocolMetrics::default(),
            until_epoch: None,
            #[cfg(feature = "planted-bugs")]
            planted: None,
        })
    }

    /// Whether this instance's signer set governs `epoch`: from its `effective_from_epoch`
    /// up to, not including, the first epoch of the next version.
    pub fn governs(&self, epoch: u64) -> bool {
        epoch >= self.config.signer_set.effective_from_epoch
            && self.until_epoch.is_none_or(|until| epoch < until)
    }

    /// The next signer-set version governs from `until_epoch`: this instance forgets what it
    /// holds of those epochs and works on them no more.
    pub fn end_before(&mut self, until_epoch: u64) {
        self.until_epoch = Some(until_epoch);
        self.epochs.retain(|&epoch, _| epoch < until_epoch);
        self.awaiting.retain(|&epoch| epoch < until_epoch);
        self.remeasure.retain(|&epoch| epoch < until_epoch);
    }

    /// Whether `epoch` is worth working on at `now_ms`: in the window and governed by this
    /// instance's signer set.
    pub(crate) fn works_on(&self, now_ms: u64, epoch: u64) -> bool {
        self.governs(epoch) && self.config.in_window(now_ms, epoch)
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
        Some(&self.epochs.get(&epoch)?.proposing.proposal()?.block)
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

    /// Whether this member signs nothing new for `epoch`: it began before a restart whose
    /// store may not account for every signature made (see
    /// [`RestoredState::unaccounted_before_ms`]).
    pub fn abstains(&self, epoch: u64) -> bool {
        // The running epoch too: a member whose clock ran ahead may have echoed one of its
        // blocks before this member's own end of it.
        self.unaccounted_before_ms
            .and_then(|restart| self.config.epoch_at_ms(restart))
            .is_some_and(|running| epoch <= running)
    }

    /// Whether this member must not propose for `epoch`: it abstains from it and proposed
    /// nothing before (a stored own block may be proposed again).
    pub(crate) fn abstains_from_proposing(&self, epoch: u64) -> bool {
        self.abstains(epoch) && self.echo_decision(epoch, self.me).is_none()
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

    fn on_message(&mut self, now_ms: u64, from: MemberIndex, message: Message, out: &mut Out) {
        if usize::from(from) >= self.config.n() {
            out.push(Action::Rejected {
                from: Some(from),
                reason: Rejection::NotAMember,
            });
            return;
        }
        let epoch = message.epoch();
        if !self.works_on(now_ms, epoch) {
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
            Message::Echo(echo) => self.on_echo(now_ms, from, echo, out),
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

    pub(crate) fn persist(&mut self, record: PersistRecord, pending: Pending, out: &mut Out) {
        let id = self.next_persist_id;
        self.next_persist_id += 1;
        self.pending.insert(id, pending);
        out.push(Action::Persist { id, record });
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
                // Nothing more is sent for an epoch the next version took over meanwhile.
                if self.governs(epoch) {
                    self.send_echo(epoch, proposer, data_hash, out);
                    self.extend_standby(now_ms, epoch, proposer, out);
                }
            }
            Some(Pending::OwnBlock {
                epoch,
                block,
                rewards,
            }) => {
                if self.governs(epoch) {
                    self.on_own_block_stored(now_ms, epoch, block, rewards, out)
                } else {
                    self.echo_decisions
                        .insert((epoch, self.me), block.data_hash);
                }
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
                    state.proposing = Proposing::Due;
                }
            }
            Some(Pending::Official { epoch, .. }) => self.on_official_not_stored(epoch, out),
            Some(Pending::Echo { .. }) | None => {}
        }
    }

    fn on_timer(&mut self, now_ms: u64, timer: Timer, out: &mut Out) {
        match timer {
            Timer::EpochEnd { epoch } => self.on_epoch_end(epoch, out),
            Timer::Grace { epoch } => {
                if self
                    .epochs
                    .get(&epoch)
                    .is_some_and(|state| matches!(state.proposing, Proposing::Grace))
                {
                    self.end_grace(now_ms, epoch, self.rank(epoch), out);
                }
                self.maybe_propose(now_ms, epoch, out);
            }
            Timer::Standby { epoch } => self.on_standby_over(now_ms, epoch, out),
            Timer::SubmitSlot { epoch } => {
                let Some(state) = self.epochs.get_mut(&epoch) else {
                    return;
                };
                state.submission.reach_slot();
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
}

impl Protocol {
    /// The least time between two answers of one kind to one peer (observations served,
    /// whole blocks served or asked for): half a re-send interval, so a peer asking once per
    /// round is always answered, and one asking faster is not.
    pub(super) fn answer_pause_ms(&self) -> u64 {
        self.config.resend_interval_ms / 2
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
