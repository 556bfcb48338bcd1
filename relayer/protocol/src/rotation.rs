//! One member across signer-set versions: each epoch runs under the version in force for it.
//!
//! [`Engine`] keeps one [`Protocol`] instance per signer-set version this member belongs to.
//! Each instance governs the epochs from its set's `effective_from_epoch` up to the next
//! version's, so pre-switch epochs are still certified and submitted under their own version
//! while the new set runs the epochs after the switch. The engine routes every input to the
//! instance of its epoch and translates member indices, which differ between versions, to and
//! from one roster of peers: every key of every version it learned, in order of first
//! appearance, never reordered. A version learned while running starts its instance at once;
//! an instance whose epochs all left the catch-up window is retired, and the peers only it
//! needed leave [`Engine::active_peers`]. A version this member cannot work under (it breaks a
//! rule, or the roster is full) still ends the previous version's epochs: the member abstains
//! from its epochs rather than signing them under another version. Node and simulator both
//! drive this type.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::action::{Action, Rejection};
use crate::config::observation_threshold_for;
use crate::crypto::Keypair;
use crate::input::{Input, Timer};
use crate::machine::{NewError, Protocol, ProtocolMetrics, RestoredState};
use crate::messages::Message;
#[cfg(feature = "planted-bugs")]
use crate::planted::PlantedBug;
use crate::signer_set::SignerSet;
use crate::{MemberIndex, ProtocolConfig};

/// A peer's position in the engine's roster; what [`Engine`]'s inputs and actions name
/// peers by (a [`MemberIndex`] is a position in one version's set).
pub type PeerIndex = u16;

/// One signer-set version as the engine routes it.
#[derive(Debug)]
struct Version {
    set: SignerSet,
    /// Roster position of each member, in signer-index order.
    peers: Vec<PeerIndex>,
    /// Signer index of each roster position that is a member.
    members: BTreeMap<PeerIndex, MemberIndex>,
}

/// A member of every signer-set version it belongs to (see the module documentation).
#[derive(Debug)]
pub struct Engine {
    /// Everything but the signer set and the observation threshold, shared by the instances.
    template: ProtocolConfig,
    /// The observation threshold the operator set; `None` takes `n - f` of each version.
    observation_threshold: Option<usize>,
    key: Keypair,
    versions: BTreeMap<u32, Version>,
    instances: BTreeMap<u32, Protocol>,
    /// See [`RestoredState::unaccounted_before_ms`]; given to instances started later too.
    unaccounted_before_ms: Option<u64>,
    roster: Vec<[u8; 32]>,
    /// Engine persist id to (version, the instance's persist id).
    persist_ids: BTreeMap<u64, (u32, u64)>,
    next_persist_id: u64,
    /// Epoch-end timers armed: an instance learning its range late may arm an epoch end its
    /// successor also arms, and one timer must come of it.
    epoch_ends: BTreeSet<u64>,
    /// The instance that armed each pending epoch timer (grace, slot, retry), with its time:
    /// a timer fires back to its instance, never to a successor that took the epoch over.
    timer_owners: BTreeMap<Timer, Vec<(u64, u32)>>,
    /// The instances whose submissions of each epoch are in flight, oldest first: an outcome
    /// goes back to the instance that submitted.
    submit_owners: BTreeMap<u64, VecDeque<u32>>,
    started: bool,
    /// Counters of retired instances and of inputs refused by the engine itself.
    own_metrics: ProtocolMetrics,
    /// Bumped whenever [`Self::active_peers`] may have changed.
    peers_generation: u64,
    /// What the driver should tell the operator (settings a version overrides).
    notes: Vec<String>,
    #[cfg(feature = "planted-bugs")]
    planted: Option<PlantedBug>,
}

impl Engine {
    /// A member with `key` under the known signer sets (those governing the catch-up window
    /// and any scheduled after it), restoring each instance's part of `restored`. The
    /// configuration's own `signer_set` is ignored. A version it cannot work under is kept
    /// as a range it abstains from, with a note ([`Self::take_notes`]). Feed [`Input::Start`]
    /// next.
    pub fn new(
        template: ProtocolConfig,
        observation_threshold: Option<usize>,
        key: Keypair,
        restored: RestoredState,
        sets: Vec<SignerSet>,
    ) -> Result<Self, NewError> {
        let mut engine = Self {
            unaccounted_before_ms: restored.unaccounted_before_ms,
            template,
            observation_threshold,
            key,
            versions: BTreeMap::new(),
            instances: BTreeMap::new(),
            roster: Vec::new(),
            persist_ids: BTreeMap::new(),
            next_persist_id: 0,
            epoch_ends: BTreeSet::new(),
            timer_owners: BTreeMap::new(),
            submit_owners: BTreeMap::new(),
            started: false,
            own_metrics: ProtocolMetrics::default(),
            peers_generation: 0,
            notes: Vec::new(),
            #[cfg(feature = "planted-bugs")]
            planted: None,
        };
        for set in sets {
            if let Err(err) = engine.add_version(set.clone()) {
                engine.abstain(set, &err);
            }
        }
        let versions: Vec<u32> = engine.versions.keys().copied().collect();
        for version in versions {
            let part = engine.restored_part(&restored, version);
            if let Err(err) = engine.start_instance(version, part)
                && let Some(set) = engine.versions.get(&version).map(|v| v.set.clone())
            {
                engine.abstain(set, &err);
            }
        }
        engine.set_ranges();
        Ok(engine)
    }

    /// Keeps `set` known, so that it ends the previous version's epochs, without an instance
    /// or peers: this member abstains from its epochs. Said in a note.
    fn abstain(&mut self, set: SignerSet, err: &NewError) {
        self.notes.push(format!(
            "cannot work under signer set version {}: {err}; abstaining from its epochs",
            set.version
        ));
        self.instances.remove(&set.version);
        self.versions.insert(
            set.version,
            Version {
                set,
                peers: Vec::new(),
                members: BTreeMap::new(),
            },
        );
    }

    /// Learns a signer-set version (read from the contract), starting its instance when this
    /// member belongs to it. A version already known is ignored: the contract never changes
    /// one. A version this member cannot work under is an error, but it is still known: it
    /// ends the previous version's epochs, and this member abstains from its own.
    pub fn learn(&mut self, now_ms: u64, set: SignerSet) -> Result<Vec<Action>, NewError> {
        let version = set.version;
        if self.versions.contains_key(&version) {
            return Ok(Vec::new());
        }
        self.peers_generation += 1;
        let added = self.add_version(set.clone());
        // A version learned while running: nothing of it was stored, but an unclean restart
        // still holds for its epochs.
        let restored = RestoredState {
            unaccounted_before_ms: self.unaccounted_before_ms,
            ..RestoredState::default()
        };
        if let Err(err) = added.and_then(|()| self.start_instance(version, restored)) {
            self.abstain(set, &err);
            self.set_ranges();
            return Err(err);
        }
        self.set_ranges();
        let mut out = Vec::new();
        if self.started
            && let Some(instance) = self.instances.get_mut(&version)
        {
            let actions = instance.handle(now_ms, Input::Start);
            self.translate(version, actions, &mut out);
        }
        Ok(out)
    }

    /// Handles one input at `now_ms`; peers in inputs and actions are [`PeerIndex`]es.
    pub fn handle(&mut self, now_ms: u64, input: Input) -> Vec<Action> {
        let mut out = Vec::new();
        match input {
            Input::Start => {
                self.started = true;
                self.feed_all(now_ms, Input::Start, &mut out);
            }
            Input::Timer(Timer::Resend) => {
                self.retire(now_ms);
                self.feed_all(now_ms, Input::Timer(Timer::Resend), &mut out);
            }
            Input::Timer(timer) => {
                if let Timer::EpochEnd { epoch } = timer {
                    self.epoch_ends.remove(&epoch);
                }
                if let Some(epoch) = timer.epoch() {
                    let owner = self.take_timer_owner(&timer);
                    self.feed_owner(now_ms, epoch, owner, Input::Timer(timer), &mut out);
                }
            }
            Input::Submitted { epoch, .. } => {
                let owner = self
                    .submit_owners
                    .get_mut(&epoch)
                    .and_then(VecDeque::pop_front);
                if self
                    .submit_owners
                    .get(&epoch)
                    .is_some_and(VecDeque::is_empty)
                {
                    self.submit_owners.remove(&epoch);
                }
                self.feed_owner(now_ms, epoch, owner, input, &mut out);
            }
            Input::Message { from, message } => self.on_message(now_ms, from, message, &mut out),
            Input::Persisted { id } => {
                if let Some((version, id)) = self.persist_ids.remove(&id) {
                    self.feed_version(now_ms, version, Input::Persisted { id }, &mut out);
                }
            }
            Input::PersistFailed { id } => {
                if let Some((version, id)) = self.persist_ids.remove(&id) {
                    self.feed_version(now_ms, version, Input::PersistFailed { id }, &mut out);
                }
            }
            Input::Measured { epoch, .. }
            | Input::ChainRecord { epoch, .. }
            | Input::WinnerCopy { epoch, .. } => self.feed_epoch(now_ms, epoch, input, &mut out),
        }
        out
    }

    /// The settings every instance shares (the signer set and the observation threshold in
    /// it are the first version's; each instance has its own).
    pub fn settings(&self) -> &ProtocolConfig {
        &self.template
    }

    /// This member's ed25519 public key.
    pub fn key(&self) -> [u8; 32] {
        self.key.public()
    }

    /// The roster: every peer's ed25519 key, by [`PeerIndex`].
    pub fn roster(&self) -> &[[u8; 32]] {
        &self.roster
    }

    /// The roster position of `key`.
    pub fn peer_of_key(&self, key: &[u8; 32]) -> Option<PeerIndex> {
        let position = self.roster.iter().position(|known| known == key)?;
        PeerIndex::try_from(position).ok()
    }

    /// The peers this member works with: the members of every version it has an instance of
    /// (itself excluded). The others need not be connected.
    pub fn active_peers(&self) -> BTreeSet<PeerIndex> {
        let me = self.peer_of_key(&self.key.public());
        self.instances
            .keys()
            .filter_map(|version| self.versions.get(version))
            .flat_map(|version| version.peers.iter().copied())
            .filter(|&peer| Some(peer) != me)
            .collect()
    }

    /// Whether `peer` is among [`Self::active_peers`] (what a node's allow list admits).
    pub fn admits(&self, peer: PeerIndex) -> bool {
        self.instances
            .keys()
            .filter_map(|version| self.versions.get(version))
            .any(|version| version.members.contains_key(&peer))
    }

    /// Who a broadcast of a message of `epoch` goes to: the other members of the version
    /// governing it, if this member is one of them.
    pub fn recipients(&self, epoch: u64) -> Vec<PeerIndex> {
        let me = self.peer_of_key(&self.key.public());
        self.version_for(epoch)
            .filter(|version| self.instances.contains_key(version))
            .and_then(|version| self.versions.get(&version))
            .map_or_else(Vec::new, |version| {
                version
                    .peers
                    .iter()
                    .copied()
                    .filter(|&peer| Some(peer) != me)
                    .collect()
            })
    }

    /// A counter that changes whenever [`Self::active_peers`] may have (a version learned or
    /// retired): the driver tells its network when it moves.
    pub fn peers_generation(&self) -> u64 {
        self.peers_generation
    }

    /// Notes for the operator since the last call (settings a version overrides).
    pub fn take_notes(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notes)
    }

    /// The signer set governing `epoch`, among those known.
    pub fn signer_set(&self, epoch: u64) -> Option<&SignerSet> {
        Some(&self.versions.get(&self.version_for(epoch)?)?.set)
    }

    /// The signer sets known, by version.
    pub fn signer_sets(&self) -> impl Iterator<Item = &SignerSet> {
        self.versions.values().map(|version| &version.set)
    }

    /// The protocol instance working on `epoch`, if this member belongs to its signer set.
    pub fn instance(&self, epoch: u64) -> Option<&Protocol> {
        self.instances.get(&self.version_for(epoch)?)
    }

    /// The newest signer-set version known.
    pub fn latest_version(&self) -> Option<u32> {
        self.versions.keys().next_back().copied()
    }

    /// Whether the epoch's official data is stored.
    pub fn is_final(&self, epoch: u64) -> bool {
        self.instance(epoch)
            .is_some_and(|instance| instance.is_final(epoch))
    }

    /// Counters of every instance, retired ones included.
    pub fn metrics(&self) -> ProtocolMetrics {
        let mut metrics = self.own_metrics.clone();
        for instance in self.instances.values() {
            metrics.add(instance.metrics());
        }
        metrics
    }

    /// Switches on a planted bug in every instance, present and future (tests only).
    #[cfg(feature = "planted-bugs")]
    pub fn plant(&mut self, bug: PlantedBug) {
        self.planted = Some(bug);
        for instance in self.instances.values_mut() {
            instance.plant(bug);
        }
    }

    /// The newest version whose first epoch is at or before `epoch`.
    fn version_for(&self, epoch: u64) -> Option<u32> {
        self.versions
            .iter()
            .rev()
            .find(|(_, version)| version.set.effective_from_epoch <= epoch)
            .map(|(&number, _)| number)
    }

    /// The protocol configuration of `set`: the operator's observation threshold if it fits
    /// the set's size (`2f + 1 <= k <= n - f`), else `n - f`, with a note saying so.
    fn config_for(&self, set: SignerSet) -> (ProtocolConfig, Option<String>) {
        let n = set.n();
        let k = observation_threshold_for(self.observation_threshold, n);
        let note = self
            .observation_threshold
            .filter(|&fixed| fixed != k)
            .map(|fixed| {
                format!(
                    "observation threshold {fixed} does not fit signer set version {} (n = {n}); it runs with {k}",
                    set.version
                )
            });
        let config = ProtocolConfig {
            signer_set: set,
            observation_threshold: k,
            ..self.template.clone()
        };
        (config, note)
    }

    /// Validates `set` and adds its members to the roster.
    fn add_version(&mut self, set: SignerSet) -> Result<(), NewError> {
        let (config, note) = self.config_for(set.clone());
        for warning in config.validate()? {
            self.notes
                .push(format!("signer set version {}: {warning}", set.version));
        }
        self.notes.extend(note);
        let mut peers = Vec::with_capacity(set.n());
        let mut members = BTreeMap::new();
        for (member, key) in set.keys().enumerate() {
            let peer = match self.peer_of_key(key) {
                Some(peer) => peer,
                None => {
                    let peer =
                        PeerIndex::try_from(self.roster.len()).map_err(|_| NewError::RosterFull)?;
                    self.roster.push(*key);
                    peer
                }
            };
            peers.push(peer);
            // Member counts are validated to fit a MemberIndex.
            members.insert(peer, member as MemberIndex);
        }
        self.versions.insert(
            set.version,
            Version {
                set,
                peers,
                members,
            },
        );
        Ok(())
    }

    /// Creates the instance of `version` if this member belongs to it.
    fn start_instance(&mut self, version: u32, restored: RestoredState) -> Result<(), NewError> {
        let Some(set) = self.versions.get(&version).map(|v| v.set.clone()) else {
            return Ok(());
        };
        if set.index_of_key(&self.key.public()).is_none() {
            return Ok(());
        }
        #[allow(unused_mut)]
        let mut instance = Protocol::new(self.config_for(set).0, self.key.clone(), restored)?;
        #[cfg(feature = "planted-bugs")]
        if let Some(bug) = self.planted {
            instance.plant(bug);
        }
        self.instances.insert(version, instance);
        Ok(())
    }

    /// Tells every instance where the next version takes over.
    fn set_ranges(&mut self) {
        let starts: Vec<(u32, u64)> = self
            .versions
            .iter()
            .map(|(&number, version)| (number, version.set.effective_from_epoch))
            .collect();
        for (&version, instance) in &mut self.instances {
            if let Some(&(_, next_start)) = starts.iter().find(|(number, _)| *number > version) {
                instance.end_before(next_start);
            }
        }
    }

    /// What of `restored` belongs to `version`'s epochs (own observations are sorted by the
    /// instance itself, by the version they were signed under).
    fn restored_part(&self, restored: &RestoredState, version: u32) -> RestoredState {
        let governed = |epoch: u64| self.version_for(epoch) == Some(version);
        RestoredState {
            echo_decisions: restored
                .echo_decisions
                .iter()
                .filter(|decision| match decision.signer_set_version {
                    0 => governed(decision.epoch),
                    made_under => made_under == version,
                })
                .copied()
                .collect(),
            final_epochs: restored
                .final_epochs
                .iter()
                .copied()
                .filter(|&epoch| governed(epoch))
                .collect(),
            own_observations: restored
                .own_observations
                .iter()
                .filter(|observation| observation.signer_set_version == version)
                .cloned()
                .collect(),
            unaccounted_before_ms: restored.unaccounted_before_ms,
        }
    }

    /// Retires the instances whose epochs all left the window (none being finalized) and
    /// forgets the versions before them.
    fn retire(&mut self, now_ms: u64) {
        let window_start = self.template.window_start(now_ms);
        let Some(oldest_needed) = self.version_for(window_start) else {
            return;
        };
        let old: Vec<u32> = self
            .versions
            .range(..oldest_needed)
            .map(|(&v, _)| v)
            .collect();
        for version in old {
            if let Some(instance) = self.instances.get(&version) {
                if !instance.finalizing.is_empty() {
                    continue;
                }
                self.own_metrics.add(instance.metrics());
                self.instances.remove(&version);
                self.peers_generation += 1;
            }
            self.versions.remove(&version);
        }
    }

    fn feed_all(&mut self, now_ms: u64, input: Input, out: &mut Vec<Action>) {
        let versions: Vec<u32> = self.instances.keys().copied().collect();
        for version in versions {
            self.feed_version(now_ms, version, input.clone(), out);
        }
        if matches!(input, Input::Start | Input::Timer(Timer::Resend)) {
            // One re-send round for all instances, whichever exist.
            out.push(Action::SetTimer {
                at_ms: now_ms.saturating_add(self.template.resend_interval_ms),
                timer: Timer::Resend,
            });
        }
    }

    /// The instance that armed `timer` first among those pending (timers fire in time order).
    fn take_timer_owner(&mut self, timer: &Timer) -> Option<u32> {
        let owners = self.timer_owners.get_mut(timer)?;
        let earliest = owners
            .iter()
            .enumerate()
            .min_by_key(|(_, (at_ms, _))| *at_ms)
            .map(|(position, _)| position)?;
        let (_, version) = owners.swap_remove(earliest);
        if owners.is_empty() {
            self.timer_owners.remove(timer);
        }
        Some(version)
    }

    /// Feeds `input` of `epoch` to the instance that caused it, if it still governs the epoch
    /// (else nobody: a successor that took the epoch over has its own); to the governing
    /// instance when no owner is known.
    fn feed_owner(
        &mut self,
        now_ms: u64,
        epoch: u64,
        owner: Option<u32>,
        input: Input,
        out: &mut Vec<Action>,
    ) {
        match owner {
            Some(version) => {
                let governs = self
                    .instances
                    .get(&version)
                    .is_some_and(|instance| instance.governs(epoch));
                if governs {
                    self.feed_version(now_ms, version, input, out);
                }
            }
            None => self.feed_epoch(now_ms, epoch, input, out),
        }
    }

    fn feed_epoch(&mut self, now_ms: u64, epoch: u64, input: Input, out: &mut Vec<Action>) {
        if let Some(version) = self.version_for(epoch) {
            self.feed_version(now_ms, version, input, out);
        }
    }

    fn feed_version(&mut self, now_ms: u64, version: u32, input: Input, out: &mut Vec<Action>) {
        if let Some(instance) = self.instances.get_mut(&version) {
            let actions = instance.handle(now_ms, input);
            self.translate(version, actions, out);
        }
    }

    fn on_message(
        &mut self,
        now_ms: u64,
        from: PeerIndex,
        message: Message,
        out: &mut Vec<Action>,
    ) {
        let epoch = message.epoch();
        let version = self
            .version_for(epoch)
            .filter(|version| self.instances.contains_key(version));
        let Some(version) = version else {
            return self.refuse(from, Rejection::EpochOutOfWindow { epoch }, out);
        };
        let member = self
            .versions
            .get(&version)
            .and_then(|v| v.members.get(&from).copied());
        let Some(member) = member else {
            return self.refuse(from, Rejection::NotAMember, out);
        };
        self.feed_version(
            now_ms,
            version,
            Input::Message {
                from: member,
                message,
            },
            out,
        );
    }

    fn refuse(&mut self, from: PeerIndex, reason: Rejection, out: &mut Vec<Action>) {
        self.own_metrics.rejections += 1;
        out.push(Action::Rejected {
            from: Some(from),
            reason,
        });
    }

    /// An instance's actions with its member indices made roster positions, its persist ids
    /// made the engine's, its re-send timer left to the engine and each epoch end armed once.
    fn translate(&mut self, version: u32, actions: Vec<Action>, out: &mut Vec<Action>) {
        let peers = self
            .versions
            .get(&version)
            .map(|v| v.peers.clone())
            .unwrap_or_default();
        let peer = |member: MemberIndex| peers.get(usize::from(member)).copied();
        for action in actions {
            match action {
                Action::Send { to, message } => {
                    if let Some(to) = peer(to) {
                        out.push(Action::Send { to, message });
                    }
                }
                Action::FetchOfficial { epoch, from } => {
                    if let Some(from) = peer(from) {
                        out.push(Action::FetchOfficial { epoch, from });
                    }
                }
                Action::Rejected { from, reason } => out.push(Action::Rejected {
                    from: from.and_then(peer),
                    reason,
                }),
                Action::Persist { id, record } => {
                    let engine_id = self.next_persist_id;
                    self.next_persist_id += 1;
                    self.persist_ids.insert(engine_id, (version, id));
                    out.push(Action::Persist {
                        id: engine_id,
                        record,
                    });
                }
                Action::SetTimer {
                    timer: Timer::Resend,
                    ..
                } => {}
                Action::SetTimer {
                    at_ms,
                    timer: Timer::EpochEnd { epoch },
                } => {
                    if self.epoch_ends.insert(epoch) {
                        out.push(Action::SetTimer {
                            at_ms,
                            timer: Timer::EpochEnd { epoch },
                        });
                    }
                }
                Action::SetTimer { at_ms, timer } => {
                    self.timer_owners
                        .entry(timer)
                        .or_default()
                        .push((at_ms, version));
                    out.push(Action::SetTimer { at_ms, timer });
                }
                Action::Submit { certificate } => {
                    self.submit_owners
                        .entry(certificate.epoch)
                        .or_default()
                        .push_back(version);
                    out.push(Action::Submit { certificate });
                }
                other => out.push(other),
            }
        }
    }
}
