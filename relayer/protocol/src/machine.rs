//! The state machine: [`Protocol::handle`] maps `(now, Input)` to `Vec<Action>`.

use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest, Sha256};

use crate::aggregate::{AggregateError, lower_median, validate_values};
use crate::crypto::{Keypair, SignatureCheck, echo_digest, observation_digest, verify_signature};
use crate::messages::{Block, Certificate, Echo, Message, Observation, ObservationRef};
use crate::schedule::{submission_rank, submission_slot_ms};
use crate::{Hash, MemberIndex, MixnodeReward, ProtocolConfig, SubmitPolicy};

/// Everything that can happen to a protocol instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// An epoch ended; `values` are this member's per-mixnode averages for it.
    EpochEnded {
        /// The epoch.
        epoch: u64,
        /// Averages in basis points, one per configured mixnode, ascending.
        values: Vec<MixnodeReward>,
    },
    /// A message from an authenticated member.
    Message {
        /// Sender, as the transport authenticated it.
        from: MemberIndex,
        /// The message.
        message: Message,
    },
    /// A timer set by [`Action::SetTimer`] fired.
    Timer(Timer),
    /// The store durably holds the record of [`Action::Persist`] with this id.
    Persisted {
        /// The persist id.
        id: u64,
    },
    /// Answer to [`Action::QueryChain`]: whether the epoch is stored on chain.
    ChainStatus {
        /// The epoch.
        epoch: u64,
        /// Stored on chain (by anyone).
        on_chain: bool,
    },
    /// Outcome of [`Action::Submit`], decided by re-querying the contract.
    SubmitOutcome {
        /// The epoch.
        epoch: u64,
        /// Stored on chain (by this member or another).
        on_chain: bool,
    },
}

/// Timers the protocol sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Timer {
    /// The grace period for more observations of an epoch is over.
    Grace {
        /// The epoch.
        epoch: u64,
    },
    /// This member's staggered submission slot for an epoch has come.
    SubmitSlot {
        /// The epoch.
        epoch: u64,
    },
    /// Re-send what unfinished epochs need.
    Resend,
}

/// Records that must be durable before dependent messages are sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PersistRecord {
    /// This member signs `data_hash` for `proposer`'s block of `epoch`, and never another.
    EchoDecision {
        /// The epoch.
        epoch: u64,
        /// The proposer (possibly this member).
        proposer: MemberIndex,
        /// What is signed.
        data_hash: Hash,
    },
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send to one member.
    Send {
        /// Recipient.
        to: MemberIndex,
        /// The message.
        message: Message,
    },
    /// Send to every other member.
    Broadcast {
        /// The message.
        message: Message,
    },
    /// Persist, then answer with [`Input::Persisted`].
    Persist {
        /// Id to acknowledge.
        id: u64,
        /// The record.
        record: PersistRecord,
    },
    /// Fire [`Input::Timer`] at `at_ms` (same clock as `now_ms`).
    SetTimer {
        /// When.
        at_ms: u64,
        /// Which.
        timer: Timer,
    },
    /// Ask the chain whether the epoch is stored; answer with [`Input::ChainStatus`].
    QueryChain {
        /// The epoch.
        epoch: u64,
    },
    /// Submit the certificate; answer with [`Input::SubmitOutcome`].
    Submit {
        /// What to submit.
        certificate: Certificate,
    },
    /// This member's block is certified (for storage and metrics).
    Certified {
        /// The certificate.
        certificate: Certificate,
    },
    /// An input was refused (for logs and metrics).
    Rejected {
        /// Sender, when it came from a member.
        from: Option<MemberIndex>,
        /// Why.
        reason: Rejection,
    },
}

/// Why an input was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// The sender index is not in the signer set.
    NotAMember,
    /// A block whose proposer is not its sender.
    WrongSender,
    /// An epoch outside the working window (old replays, far future).
    EpochOutOfWindow {
        /// The epoch.
        epoch: u64,
    },
    /// Another signer-set version.
    WrongVersion {
        /// The version in the message.
        version: u32,
    },
    /// An observation author outside the signer set.
    UnknownAuthor {
        /// The index.
        author: MemberIndex,
    },
    /// Observation values that are unusable.
    InvalidValues(AggregateError),
    /// A signature that does not verify.
    BadSignature {
        /// Whose signature.
        signer: MemberIndex,
    },
    /// A second, different observation by the same author (excluded from blocks).
    Equivocation {
        /// The author.
        author: MemberIndex,
    },
    /// A block with fewer distinct authors than the observation threshold.
    TooFewAuthors {
        /// Distinct authors.
        got: usize,
        /// k.
        need: usize,
    },
    /// A block whose authors are not strictly ascending.
    UnsortedAuthors,
    /// A block whose claimed data hash does not match the recomputed aggregate.
    AggregateMismatch,
    /// A second block of a proposer whose other block this member already echoed.
    ConflictingBlock {
        /// The proposer.
        proposer: MemberIndex,
    },
    /// An echo for a block this member did not propose.
    UnknownBlock,
    /// This member's own values do not cover the mixnode set.
    InvalidOwnValues(AggregateError),
}

/// What a restarted member recovers from its store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RestoredState {
    /// `(epoch, proposer, data_hash)` echo decisions.
    pub echo_decisions: Vec<(u64, MemberIndex, Hash)>,
    /// Epochs known to be on chain.
    pub final_epochs: Vec<u64>,
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
}

#[derive(Debug, Clone)]
struct Proposal {
    block: Block,
    rewards: Vec<MixnodeReward>,
    echoes: BTreeMap<MemberIndex, Vec<u8>>,
    certificate: Option<Certificate>,
}

#[derive(Debug, Default)]
struct EpochState {
    /// First valid observation per author, with its digest (computed once).
    observations: BTreeMap<MemberIndex, (Hash, Observation)>,
    /// Other valid observations (equivocations), by reference.
    alternates: BTreeMap<ObservationRef, Observation>,
    equivocators: BTreeSet<MemberIndex>,
    /// Aggregate and its data hash, by hash of the observation set.
    aggregates: BTreeMap<Hash, (Vec<MixnodeReward>, Hash)>,
    own: Option<Observation>,
    grace_armed: bool,
    grace_over: bool,
    proposing: bool,
    proposal: Option<Proposal>,
    /// Blocks waiting for observations fetched from their proposer.
    parked: BTreeMap<MemberIndex, Block>,
    slot_reached: bool,
    submit_in_flight: bool,
}

#[derive(Debug, Clone)]
enum Pending {
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
}

/// One member's protocol instance.
#[derive(Debug)]
pub struct Protocol {
    config: ProtocolConfig,
    me: MemberIndex,
    key: Keypair,
    epochs: BTreeMap<u64, EpochState>,
    echo_decisions: BTreeMap<(u64, MemberIndex), Hash>,
    pending: BTreeMap<u64, Pending>,
    next_persist_id: u64,
    final_epochs: BTreeSet<u64>,
    metrics: ProtocolMetrics,
    resend_armed: bool,
}

/// Collects actions while handling one input.
#[derive(Default)]
struct Out(Vec<Action>);

impl Out {
    fn push(&mut self, action: Action) {
        self.0.push(action);
    }
}

impl Protocol {
    /// A member with `key`, which must be in `config.members` (returns `None` otherwise).
    pub fn new(config: ProtocolConfig, key: Keypair, restored: RestoredState) -> Option<Self> {
        let me = config
            .members
            .iter()
            .position(|member| *member == key.public())?;
        let me = MemberIndex::try_from(me).ok()?;
        Some(Self {
            config,
            me,
            key,
            epochs: BTreeMap::new(),
            echo_decisions: restored
                .echo_decisions
                .into_iter()
                .map(|(epoch, proposer, hash)| ((epoch, proposer), hash))
                .collect(),
            pending: BTreeMap::new(),
            next_persist_id: 0,
            final_epochs: restored.final_epochs.into_iter().collect(),
            metrics: ProtocolMetrics::default(),
            resend_armed: false,
        })
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

    /// Whether the epoch is known to be on chain.
    pub fn is_final(&self, epoch: u64) -> bool {
        self.final_epochs.contains(&epoch)
    }

    /// The certificate of this member's block for `epoch`, if it has one.
    pub fn certificate(&self, epoch: u64) -> Option<&Certificate> {
        self.epochs
            .get(&epoch)?
            .proposal
            .as_ref()?
            .certificate
            .as_ref()
    }

    /// The data hash this member decided to sign for `proposer`'s block of `epoch`.
    pub fn echo_decision(&self, epoch: u64, proposer: MemberIndex) -> Option<Hash> {
        self.echo_decisions.get(&(epoch, proposer)).copied()
    }

    /// Handles one input at `now_ms` and returns what to do.
    pub fn handle(&mut self, now_ms: u64, input: Input) -> Vec<Action> {
        let mut out = Out::default();
        match input {
            Input::EpochEnded { epoch, values } => {
                self.on_epoch_ended(now_ms, epoch, values, &mut out)
            }
            Input::Message { from, message } => self.on_message(now_ms, from, message, &mut out),
            Input::Timer(timer) => self.on_timer(now_ms, timer, &mut out),
            Input::Persisted { id } => self.on_persisted(id, &mut out),
            Input::ChainStatus { epoch, on_chain } => {
                self.on_chain_status(epoch, on_chain, false, &mut out)
            }
            Input::SubmitOutcome { epoch, on_chain } => {
                self.on_chain_status(epoch, on_chain, true, &mut out)
            }
        }
        self.metrics.rejections += out
            .0
            .iter()
            .filter(|action| matches!(action, Action::Rejected { .. }))
            .count() as u64;
        out.0
    }

    /// Whether `epoch` is worth working on at `now_ms`: ended or running, and no older than
    /// the catch-up window.
    fn in_window(&self, now_ms: u64, epoch: u64) -> bool {
        match self.config.epoch_at_ms(now_ms) {
            Some(current) => epoch <= current && current - epoch <= self.config.catch_up_epochs + 1,
            None => false,
        }
    }

    fn on_epoch_ended(
        &mut self,
        now_ms: u64,
        epoch: u64,
        values: Vec<MixnodeReward>,
        out: &mut Out,
    ) {
        if self.is_final(epoch) || !self.in_window(now_ms, epoch) {
            return;
        }
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
            signer_set_version: self.config.signer_set_version,
            author: self.me,
            signature: self.key.sign(&digest),
            values,
        };
        out.push(Action::Broadcast {
            message: Message::Observation(observation.clone()),
        });
        let me = self.me;
        let state = self.epochs.entry(epoch).or_default();
        state.own = Some(observation.clone());
        if let std::collections::btree_map::Entry::Vacant(slot) = state.observations.entry(me) {
            slot.insert((digest, observation));
            self.metrics.observations_accepted += 1;
        }
        if self.config.policy == SubmitPolicy::Staggered {
            let rank = submission_rank(epoch, &self.key.public(), &self.config.members);
            let at_ms = submission_slot_ms(
                self.config.epoch_end_ms(epoch),
                rank,
                self.config.submit_slot_ms,
            );
            out.push(Action::SetTimer {
                at_ms,
                timer: Timer::SubmitSlot { epoch },
            });
        }
        if !self.resend_armed {
            self.resend_armed = true;
            out.push(Action::SetTimer {
                at_ms: now_ms + self.config.resend_interval_ms,
                timer: Timer::Resend,
            });
        }
        self.maybe_propose(now_ms, epoch, out);
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
        if !self.in_window(now_ms, epoch) {
            out.push(Action::Rejected {
                from: Some(from),
                reason: Rejection::EpochOutOfWindow { epoch },
            });
            return;
        }
        if self.is_final(epoch) {
            return;
        }
        if let Some(version) = message
            .signer_set_version()
            .filter(|&version| version != self.config.signer_set_version)
        {
            return Self::reject(out, from, Rejection::WrongVersion { version });
        }
        match message {
            Message::Observation(observation) => {
                self.on_observation(now_ms, from, observation, out)
            }
            Message::Send(block) => self.on_send(from, block, out),
            Message::Echo(echo) => self.on_echo(from, echo, out),
            Message::ObservationRequest { epoch, reference } => {
                self.on_observation_request(from, epoch, reference, out)
            }
        }
    }

    fn reject(out: &mut Out, from: MemberIndex, reason: Rejection) {
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
        let Some(author_key) = self.config.members.get(usize::from(author)).copied() else {
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
            // Bounded: at most one alternate per author is kept.
            if !state.alternates.keys().any(|held| held.author == author) {
                state.alternates.insert(reference, observation);
            }
            Self::reject(out, from, Rejection::Equivocation { author });
        } else {
            state.observations.insert(author, (digest, observation));
            self.metrics.observations_accepted += 1;
        }
        self.retry_parked(epoch, out);
        self.maybe_propose(now_ms, epoch, out);
    }

    fn maybe_propose(&mut self, now_ms: u64, epoch: u64, out: &mut Out) {
        let k = self.config.observation_threshold;
        let n = self.config.n();
        let grace = self.config.observation_grace_ms;
        let Some(state) = self.epochs.get_mut(&epoch) else {
            return;
        };
        if state.proposal.is_some() || state.proposing {
            return;
        }
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
            signer_set_version: self.config.signer_set_version,
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

    fn persist(&mut self, record: PersistRecord, pending: Pending, out: &mut Out) {
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
        let mut hasher = Sha256::new();
        for reference in refs {
            hasher.update(reference.author.to_be_bytes());
            hasher.update(reference.digest);
        }
        let set_hash: Hash = hasher.finalize().into();
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

    fn on_send(&mut self, from: MemberIndex, block: Block, out: &mut Out) {
        if block.proposer != from {
            return Self::reject(out, from, Rejection::WrongSender);
        }
        let epoch = block.epoch;
        if let Some(decided) = self.echo_decision(epoch, from) {
            if decided == block.data_hash {
                self.send_echo(epoch, from, decided, out);
            } else {
                Self::reject(out, from, Rejection::ConflictingBlock { proposer: from });
            }
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
            _ => Self::reject(out, from, Rejection::AggregateMismatch),
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

    fn send_echo(&mut self, epoch: u64, proposer: MemberIndex, data_hash: Hash, out: &mut Out) {
        let signature = self.key.sign(&echo_digest(&self.config, epoch, &data_hash));
        self.metrics.signatures_created += 1;
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

    fn on_persisted(&mut self, id: u64, out: &mut Out) {
        match self.pending.remove(&id) {
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
                let own_signature =
                    self.key
                        .sign(&echo_digest(&self.config, epoch, &block.data_hash));
                self.metrics.signatures_created += 1;
                self.metrics.blocks_proposed += 1;
                out.push(Action::Broadcast {
                    message: Message::Send(block.clone()),
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
            None => {}
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
        if proposal.echoes.contains_key(&from) {
            return;
        }
        let digest = echo_digest(&self.config, echo.epoch, &echo.data_hash);
        let key = self.config.members[usize::from(from)];
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
        let threshold = self.config.threshold;
        let version = self.config.signer_set_version;
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
            SubmitPolicy::Staggered if state.slot_reached => out.push(Action::QueryChain { epoch }),
            SubmitPolicy::Staggered => {}
        }
    }

    fn submit(&mut self, epoch: u64, out: &mut Out) {
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
        out: &mut Out,
    ) {
        let Some(state) = self.epochs.get(&epoch) else {
            return;
        };
        if let Some(observation) = find_observation(state, &reference) {
            out.push(Action::Send {
                to: from,
                message: Message::Observation(observation.clone()),
            });
        }
    }

    fn on_chain_status(&mut self, epoch: u64, on_chain: bool, after_submit: bool, out: &mut Out) {
        if on_chain {
            self.final_epochs.insert(epoch);
            self.epochs.remove(&epoch);
            return;
        }
        let policy = self.config.policy;
        let Some(state) = self.epochs.get_mut(&epoch) else {
            return;
        };
        if after_submit {
            state.submit_in_flight = false;
        }
        let certified = state
            .proposal
            .as_ref()
            .is_some_and(|p| p.certificate.is_some());
        let eligible = match policy {
            SubmitPolicy::Race => true,
            SubmitPolicy::Staggered => state.slot_reached,
        };
        if certified && eligible {
            self.submit(epoch, out);
        }
    }

    fn on_timer(&mut self, now_ms: u64, timer: Timer, out: &mut Out) {
        match timer {
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
                if state
                    .proposal
                    .as_ref()
                    .is_some_and(|p| p.certificate.is_some())
                {
                    out.push(Action::QueryChain { epoch });
                }
            }
            Timer::Resend => self.on_resend(now_ms, out),
        }
    }

    fn on_resend(&mut self, now_ms: u64, out: &mut Out) {
        let window_start = self.config.epoch_at_ms(now_ms).map_or(0, |current| {
            current.saturating_sub(self.config.catch_up_epochs + 1)
        });
        self.epochs.retain(|&epoch, _| epoch >= window_start);
        self.echo_decisions
            .retain(|&(epoch, _), _| epoch >= window_start);
        self.final_epochs.retain(|&epoch| epoch >= window_start);
        for (&epoch, state) in &self.epochs {
            if let Some(own) = &state.own {
                out.push(Action::Broadcast {
                    message: Message::Observation(own.clone()),
                });
            }
            if let Some(proposal) = state.proposal.as_ref().filter(|p| p.certificate.is_none()) {
                out.push(Action::Broadcast {
                    message: Message::Send(proposal.block.clone()),
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
            out.push(Action::QueryChain { epoch });
        }
        out.push(Action::SetTimer {
            at_ms: now_ms + self.config.resend_interval_ms,
            timer: Timer::Resend,
        });
    }
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
