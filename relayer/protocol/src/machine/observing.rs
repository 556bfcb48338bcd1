//! Observations: the epoch end and this member's own measurements, signed, stored and sent;
//! peers' observations checked and held (equivocations kept as evidence); and re-sending only
//! to the proposers that lack them (`Holding`) or the members that ask (`ObservationRequest`).

use super::*;

impl Protocol {
    /// Arms the re-send round and the next epoch end, and resumes the catch-up window: the
    /// recent ended epochs that are not final are measured again and looked up on chain.
    pub(super) fn on_start(&mut self, now_ms: u64, out: &mut Out) {
        out.push(Action::SetTimer {
            at_ms: now_ms + self.config.resend_interval_ms,
            timer: Timer::Resend,
        });
        let current = self.config.epoch_at_ms(now_ms);
        if let Some(current) = current {
            // Every ended epoch of the window (the same range the re-send rounds keep) that
            // this instance's signer set governs.
            for epoch in self.config.window_start(now_ms)..current {
                if self.governs(epoch) && !self.is_final(epoch) {
                    self.awaiting.insert(epoch);
                    out.push(Action::Measure { epoch });
                    out.push(Action::ReadChain { epoch });
                }
            }
        }
        let next = current
            .unwrap_or(0)
            .max(self.config.signer_set.effective_from_epoch);
        self.arm_epoch_end(next, out);
    }

    pub(super) fn on_epoch_end(&mut self, epoch: u64, out: &mut Out) {
        if !self.governs(epoch) {
            return;
        }
        if !self.is_final(epoch) {
            self.awaiting.insert(epoch);
        }
        out.push(Action::Measure { epoch });
        self.arm_epoch_end(epoch.saturating_add(1), out);
    }

    /// Arms `epoch`'s end, if this instance's signer set governs it.
    fn arm_epoch_end(&self, epoch: u64, out: &mut Out) {
        if self.governs(epoch) {
            out.push(Action::SetTimer {
                at_ms: self.config.epoch_end_ms(epoch),
                timer: Timer::EpochEnd { epoch },
            });
        }
    }

    /// Signs this member's averages of an ended epoch as its observation, stores it and sends
    /// it once stored; an observation already stored (before a restart) is sent as it was.
    pub(super) fn on_measured(
        &mut self,
        now_ms: u64,
        epoch: u64,
        values: Option<Vec<MixnodeReward>>,
        out: &mut Out,
    ) {
        if self.is_settled(epoch) || !self.works_on(now_ms, epoch) {
            return;
        }
        if let Some(own) = self.epochs.get(&epoch).and_then(|state| state.own.clone()) {
            return self.send_own(now_ms, own, out);
        }
        if self.abstains(epoch) {
            return; // a lost run may have signed another observation of it
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

    /// Sends this member's (stored) observation and takes it as its own: held, and a
    /// proposal considered.
    pub(super) fn send_own(&mut self, now_ms: u64, observation: Observation, out: &mut Out) {
        let epoch = observation.epoch;
        if !self.governs(epoch) {
            return; // the next version took the epoch over while the write was in flight
        }
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
        self.maybe_propose(now_ms, epoch, out);
    }

    pub(super) fn on_observation(
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

    /// A peer says whose observations of `epoch` it holds: if it lacks this member's, send it
    /// (see [`Self::serve`]).
    pub(super) fn on_holding(
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

    pub(super) fn on_observation_request(
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
            .proposing
            .proposal()
            .is_some_and(|proposal| proposal.block.observations.contains(&reference));
        if reference.author == me || in_own_block {
            self.serve(now_ms, epoch, from, reference, out);
        }
    }

    /// Sends the observation `reference` names to `to`, if held and not sent to it within the
    /// last half re-send interval.
    pub(super) fn serve(
        &mut self,
        now_ms: u64,
        epoch: u64,
        to: MemberIndex,
        reference: ObservationRef,
        out: &mut Out,
    ) {
        let pause = self.answer_pause_ms();
        let Some(state) = self.epochs.get_mut(&epoch) else {
            return;
        };
        if find_observation(state, &reference).is_none()
            || !pause_over(&mut state.served, (to, reference), now_ms, pause)
        {
            return;
        }
        // Copied only once it is certain to be sent.
        if let Some(observation) = find_observation(state, &reference) {
            out.push(Action::Send {
                to,
                message: Message::Observation(observation.clone()),
            });
        }
    }

    /// A member that may propose for `epoch`, has not yet, and holds fewer than k usable
    /// observations tells the others whose observations it holds, and each member it lacks
    /// answers with its own. Only proposers
    /// need every observation they can get; a member checking a block fetches what the block
    /// references from its proposer.
    pub(super) fn ask_for_missing_observations(&self, now_ms: u64, epoch: u64, out: &mut Out) {
        let state = self.epochs.get(&epoch);
        let proposed = state.is_some_and(|state| state.proposing.started());
        if proposed || !self.may_propose(now_ms, epoch) || self.abstains_from_proposing(epoch) {
            return;
        }
        // With k usable observations it can propose: more would only be re-sent to it while
        // the epoch's first sends are still under way (at n = 128, group 0's 43 members drew
        // thousands of observations each round).
        let usable = state.map_or(0, EpochState::usable_observations);
        if usable >= self.config.observation_threshold {
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
}
