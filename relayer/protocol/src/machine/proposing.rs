//! Proposing: who may propose when (the per-epoch proposer groups, and group 0's lead and its
//! backups), the proposal over the observations held, its aggregate computed once per
//! observation set, and this member's submission slot.

use super::*;

impl Protocol {
    /// This member's rank in `epoch`'s order (submission slot and proposer group).
    pub(super) fn rank(&self, epoch: u64) -> usize {
        submission_rank(epoch, &self.key.public(), self.config.signer_set.keys())
    }

    /// Whether this member's proposer group may propose for `epoch` at `now_ms`: the first
    /// f + 1 ranks at once, later groups only once the earlier groups' submission slots passed
    /// without the epoch reaching the chain (checked at the re-send rounds).
    pub(super) fn may_propose(&self, now_ms: u64, epoch: u64) -> bool {
        self.may_propose_at_rank(now_ms, epoch, self.rank(epoch))
    }

    /// [`Self::may_propose`] for this member's `rank` in `epoch`'s order.
    fn may_propose_at_rank(&self, now_ms: u64, epoch: u64, rank: usize) -> bool {
        let from_ms = proposing_from_ms(
            self.config.epoch_end_ms(epoch),
            rank,
            self.proposer_group_size(),
            self.config.submit_slot_ms,
        );
        now_ms >= from_ms
    }

    /// Members per proposer group: f + 1, so every group holds an honest member.
    fn proposer_group_size(&self) -> usize {
        faulty_tolerated(self.config.n()) + 1
    }

    pub(super) fn maybe_propose(&mut self, now_ms: u64, epoch: u64, out: &mut Out) {
        if self.abstains_from_proposing(epoch) {
            return; // a lost run may have proposed another block of it
        }
        let k = self.config.observation_threshold;
        let n = self.config.n();
        let Some(state) = self.epochs.get(&epoch) else {
            return;
        };
        if state.proposing.started() {
            return;
        }
        let usable = state.usable_observations();
        if usable < k {
            return;
        }
        let rank = self.rank(epoch);
        if !self.may_propose_at_rank(now_ms, epoch, rank) {
            return;
        }
        let Some(state) = self.epochs.get_mut(&epoch) else {
            return;
        };
        match state.proposing {
            Proposing::Gathering if usable < n => {
                state.proposing = Proposing::Grace;
                out.push(Action::SetTimer {
                    at_ms: now_ms + self.config.observation_grace_ms,
                    timer: Timer::Grace { epoch },
                });
            }
            Proposing::Gathering => self.end_grace(now_ms, epoch, rank, out),
            Proposing::Grace if usable == n => self.end_grace(now_ms, epoch, rank, out),
            _ => {}
        }
        if self
            .epochs
            .get(&epoch)
            .is_some_and(|state| matches!(state.proposing, Proposing::Due))
        {
            self.propose(epoch, out);
        }
    }

    /// The grace period is over (or every observation is held): the member proposes now, or,
    /// as a backup of the lead, stands by for `max(slot, time since the epoch end)`, at most
    /// the `f + 1` slots after which group 1 may propose anyway (a node catching up on an old
    /// epoch does not wait for as long as it was away). The lead had as long as this member to
    /// gather observations; it gets as long again, and at least one submission slot, to have
    /// its block echoed.
    pub(super) fn end_grace(&mut self, now_ms: u64, epoch: u64, rank: usize, out: &mut Out) {
        // One that signed its block in an earlier run sends it again at once: nothing new.
        let backup = is_backup_proposer(rank, self.proposer_group_size())
            && self.echo_decision(epoch, self.me).is_none();
        let slot = self.config.submit_slot_ms;
        let since_end = now_ms.saturating_sub(self.config.epoch_end_ms(epoch));
        let longest = slot.saturating_mul(self.proposer_group_size() as u64);
        let wait_ms = since_end.clamp(slot, longest.max(slot));
        let lead_echoed = self.lead_echoed(epoch);
        let Some(state) = self.epochs.get_mut(&epoch) else {
            return;
        };
        if !matches!(state.proposing, Proposing::Gathering | Proposing::Grace) {
            return;
        }
        if !backup {
            state.proposing = Proposing::Due;
            return;
        }
        // The lead's block already echoed: the lead gets the extended wait from now.
        let extended = lead_echoed;
        let until_ms = now_ms.saturating_add(wait_ms.saturating_mul(if extended { 2 } else { 1 }));
        state.proposing = Proposing::Standby {
            until_ms,
            wait_ms,
            extended,
        };
        out.push(Action::SetTimer {
            at_ms: until_ms,
            timer: Timer::Standby { epoch },
        });
    }

    /// Whether this member stored a decision to echo the lead's block of `epoch`.
    fn lead_echoed(&self, epoch: u64) -> bool {
        lead_position(epoch, self.config.signer_set.keys())
            .and_then(|position| MemberIndex::try_from(position).ok())
            .is_some_and(|lead| self.echo_decision(epoch, lead).is_some())
    }

    /// A backup standing by has stored its decision to echo `proposer`'s block. If that is the
    /// lead, it now needs time to gather echoes and submit: the wait ends `2 x wait` from now,
    /// once. Another proposer's block moves nothing, so a byzantine member's valid block
    /// cannot keep an honest backup waiting while the lead is silent.
    pub(super) fn extend_standby(
        &mut self,
        now_ms: u64,
        epoch: u64,
        proposer: MemberIndex,
        out: &mut Out,
    ) {
        let lead = lead_position(epoch, self.config.signer_set.keys());
        if lead != Some(usize::from(proposer)) {
            return;
        }
        let Some(state) = self.epochs.get_mut(&epoch) else {
            return;
        };
        if let Proposing::Standby {
            until_ms,
            wait_ms,
            extended: false,
        } = state.proposing
        {
            let until_ms = until_ms.max(now_ms.saturating_add(wait_ms.saturating_mul(2)));
            state.proposing = Proposing::Standby {
                until_ms,
                wait_ms,
                extended: true,
            };
            out.push(Action::SetTimer {
                at_ms: until_ms,
                timer: Timer::Standby { epoch },
            });
        }
    }

    /// A backup's wait may be over: read the chain; if the epoch is not there, it proposes
    /// (see [`Self::on_not_on_chain`]). A timer armed before the wait was extended finds it
    /// not over and does nothing.
    pub(super) fn on_standby_over(&mut self, now_ms: u64, epoch: u64, out: &mut Out) {
        let Some(state) = self.epochs.get_mut(&epoch) else {
            return;
        };
        if let Proposing::Standby { until_ms, .. } = state.proposing
            && now_ms >= until_ms
        {
            state.proposing = Proposing::CheckingChain;
            out.push(Action::ReadChain { epoch });
        }
    }

    /// The chain does not hold `epoch`: a backup that was checking proposes.
    pub(super) fn propose_unless_on_chain(&mut self, now_ms: u64, epoch: u64, out: &mut Out) {
        if let Some(state) = self.epochs.get_mut(&epoch)
            && matches!(state.proposing, Proposing::CheckingChain)
        {
            state.proposing = Proposing::Due;
            self.maybe_propose(now_ms, epoch, out);
        }
    }

    pub(super) fn propose(&mut self, epoch: u64, out: &mut Out) {
        let me = self.me;
        let Some(state) = self.epochs.get(&epoch) else {
            return;
        };
        let own = own_refs(state);
        // A block this member already checked and echoed is proposed again over the same
        // observations: every member then has its aggregate cached (one median per epoch, not
        // one per proposer, whatever subsets the proposers held), and the echo signature too.
        // Only a set of first-held versions of non-equivocators (a subset of its own): those
        // are never dropped, so this member can always serve them, and members rebuild such
        // blocks from digests. Validity is that of any block a member echoes (at least k
        // checked observations).
        let refs = match state
            .echoed_refs
            .as_ref()
            .filter(|refs| adoptable(refs, &own))
        {
            Some(echoed) => echoed.clone(),
            None => own,
        };
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
            state.proposing = Proposing::Storing;
        }
        let record = PersistRecord::EchoDecision {
            epoch,
            signer_set_version: self.config.signer_set.version,
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

    /// A proposer still in its grace period that has just decided to echo another proposer's
    /// block proposes at once when it can adopt that block: at the end of its grace it would
    /// propose the same one (the first block it echoed), and every moment it waits is one in
    /// which members may give up on that block and compute another median (n = 128 computed
    /// 41 per member and epoch).
    pub(super) fn propose_adopting_early(&mut self, epoch: u64, out: &mut Out) {
        let Some(state) = self.epochs.get(&epoch) else {
            return;
        };
        if !matches!(state.proposing, Proposing::Grace)
            || is_backup_proposer(self.rank(epoch), self.proposer_group_size())
        {
            return; // a backup stands by instead (see `end_grace`)
        }
        let own = own_refs(state);
        if state
            .echoed_refs
            .as_ref()
            .is_some_and(|refs| adoptable(refs, &own))
        {
            self.propose(epoch, out);
        }
    }

    /// The decision to sign this member's own block is durable: broadcast the block and
    /// count its own echo.
    pub(super) fn on_own_block_stored(
        &mut self,
        now_ms: u64,
        epoch: u64,
        block: Block,
        rewards: Vec<MixnodeReward>,
        out: &mut Out,
    ) {
        self.echo_decisions
            .insert((epoch, self.me), block.data_hash);
        let own_signature = self.echo_signature(epoch, block.data_hash);
        self.metrics.blocks_proposed += 1;
        out.push(Action::Broadcast {
            message: Message::BlockDigest(block.digest(self.config.n())),
        });
        if let Some(state) = self.epochs.get_mut(&epoch) {
            let mut echoes = BTreeMap::new();
            echoes.insert(self.me, own_signature);
            state.proposing = Proposing::Proposed(Box::new(Proposal {
                block,
                rewards,
                echoes,
                certificate: None,
            }));
        }
        self.check_certificate(now_ms, epoch, out);
    }

    /// Looks up the observations of `refs` and returns their aggregate and its data hash,
    /// computing it once per observation set.
    pub(super) fn aggregate(
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
}

/// The references of the observations this member holds first-hand from non-equivocators: a
/// proposal's own set.
fn own_refs(state: &EpochState) -> Vec<ObservationRef> {
    state
        .usable()
        .map(|(&author, (digest, _))| ObservationRef {
            author,
            digest: *digest,
        })
        .collect()
}

/// Whether a block over `refs` can be proposed again by this member: all of them are in its
/// `own` set (never dropped, so it can serve them).
fn adoptable(refs: &[ObservationRef], own: &[ObservationRef]) -> bool {
    refs.iter().all(|reference| own.contains(reference))
}
