//! Checking others' blocks: digests rebuilt from the observations held or the whole block
//! fetched, every rule of a block, blocks parked for missing observations, and the echo (its
//! decision persisted first, its signature made once).

use super::*;

impl Protocol {
    /// Answers a block of `from` with `data_hash` that needs no checking: echoed again if
    /// this member already decided on it, refused if it decided on another or refuted the
    /// proposer. Returns whether it answered.
    pub(super) fn answer_known_block(
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

    /// If `block` (another proposer's) has the data hash of this member's own decided block,
    /// whose references a restart lost, they are taken as the ones to adopt, so this member
    /// can propose that block again (the same hash is the same aggregate, whatever the set).
    fn remember_own_decisions_refs(&mut self, block: &Block) {
        if self.echo_decision(block.epoch, self.me) != Some(block.data_hash) {
            return;
        }
        if let Some(state) = self.epochs.get_mut(&block.epoch)
            && state.proposing.proposal().is_none()
        {
            state
                .echoed_refs
                .get_or_insert_with(|| block.observations.clone());
        }
    }

    /// A proposer's block digest: rebuilt from the observations held and checked as a block,
    /// or, when it cannot be rebuilt, the whole block is asked for.
    pub(super) fn on_block_digest(
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
        let rebuilt = self.rebuild(&digest);
        if let Some(block) = &rebuilt {
            self.remember_own_decisions_refs(block);
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
        match rebuilt {
            Some(block) => self.on_send(from, block, out),
            None => self.request_block(now_ms, digest.epoch, from, out),
        }
    }

    /// Whether `bitmap` is an authors bitmap of this signer set: `ceil(n / 8)` bytes, no bit
    /// at or past n.
    pub(super) fn canonical_bitmap(&self, bitmap: &[u8]) -> bool {
        let n = self.config.n();
        bitmap.len() == n.div_ceil(8)
            && (n..bitmap.len() * 8).all(|bit| !holds(bitmap, bit as MemberIndex))
    }

    /// The block `digest` names, from the first observation held of each author it names, if
    /// that gives its references hash.
    pub(super) fn rebuild(&self, digest: &BlockDigest) -> Option<Block> {
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
    pub(super) fn request_block(
        &mut self,
        now_ms: u64,
        epoch: u64,
        proposer: MemberIndex,
        out: &mut Out,
    ) {
        let pause = self.answer_pause_ms();
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
    pub(super) fn on_block_request(
        &mut self,
        now_ms: u64,
        from: MemberIndex,
        epoch: u64,
        out: &mut Out,
    ) {
        let pause = self.answer_pause_ms();
        let Some(state) = self.epochs.get_mut(&epoch) else {
            return;
        };
        let Some(proposal) = state.proposing.proposal() else {
            return;
        };
        if pause_over(&mut state.blocks_served, from, now_ms, pause) {
            out.push(Action::Send {
                to: from,
                message: Message::Block(proposal.block.clone()),
            });
        }
    }

    pub(super) fn on_send(&mut self, from: MemberIndex, block: Block, out: &mut Out) {
        if block.proposer != from {
            return Self::reject(out, from, Rejection::WrongSender);
        }
        let epoch = block.epoch;
        self.remember_own_decisions_refs(&block);
        if self.answer_known_block(epoch, from, block.data_hash, out) {
            return;
        }
        if self.abstains(epoch) {
            return; // a lost run may have echoed another block of this proposer
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
                if let Some(state) = self.epochs.get_mut(&epoch) {
                    state
                        .echoed_refs
                        .get_or_insert_with(|| block.observations.clone());
                }
                let record = PersistRecord::EchoDecision {
                    epoch,
                    signer_set_version: self.config.signer_set.version,
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
                self.propose_adopting_early(epoch, out);
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

    pub(super) fn retry_parked(&mut self, epoch: u64, out: &mut Out) {
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
    pub(super) fn echo_signature(&mut self, epoch: u64, data_hash: Hash) -> Vec<u8> {
        if let Some(signature) = self.echo_signatures.get(&(epoch, data_hash)) {
            return signature.clone();
        }
        let signature = self.key.sign(&echo_digest(&self.config, epoch, &data_hash));
        self.metrics.signatures_created += 1;
        self.echo_signatures
            .insert((epoch, data_hash), signature.clone());
        signature
    }

    pub(super) fn send_echo(
        &mut self,
        epoch: u64,
        proposer: MemberIndex,
        data_hash: Hash,
        out: &mut Out,
    ) {
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
}
