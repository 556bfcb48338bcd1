//! Certifying and submitting: this member's block collects echoes into a certificate, which
//! is submitted by the policy (staggered slot or race), retried with backoff, and the winner's
//! `Accepted` hint makes the others read the chain at once.

use super::*;

/// A failed submission's backoff doubles at most this many times (up to 16 re-send
/// intervals).
const SUBMIT_BACKOFF_DOUBLINGS: u32 = 4;

impl Protocol {
    pub(super) fn on_echo(&mut self, now_ms: u64, from: MemberIndex, echo: Echo, out: &mut Out) {
        let me = self.me;
        let known = self
            .epochs
            .get(&echo.epoch)
            .and_then(|state| state.proposing.proposal())
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
            .and_then(|state| state.proposing.proposal_mut())
        {
            proposal.echoes.insert(from, echo.signature);
        }
        self.check_certificate(now_ms, echo.epoch, out);
    }

    /// Forms the certificate once t echoes are held, and submits it by the policy: at once
    /// (race), or at this member's staggered slot, counted from the certification.
    pub(super) fn check_certificate(&mut self, now_ms: u64, epoch: u64, out: &mut Out) {
        let threshold = self.config.threshold();
        let version = self.config.signer_set.version;
        let Some(state) = self.epochs.get_mut(&epoch) else {
            return;
        };
        let Some(proposal) = state.proposing.proposal_mut() else {
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
            SubmitPolicy::Staggered => self.arm_submit_slot(now_ms, epoch, out),
        }
    }

    /// Arms this member's staggered submission slot for `epoch`, counted from its
    /// certification (`now_ms`, never before the epoch end): rank `r` waits `r` slots. Slots
    /// counted from the epoch end passed while a loaded network was still certifying, so the
    /// first ranks all submitted at once (3.6 transactions per epoch at n = 64); counted from
    /// certification, which the first proposers reach within moments of each other, the
    /// earlier rank's transaction has landed before the next slot. Rank 0 reads the chain at
    /// once.
    fn arm_submit_slot(&mut self, now_ms: u64, epoch: u64, out: &mut Out) {
        let from_ms = now_ms.max(self.config.epoch_end_ms(epoch));
        let at_ms = submission_slot_ms(from_ms, self.rank(epoch), self.config.submit_slot_ms);
        let Some(state) = self.epochs.get_mut(&epoch) else {
            return;
        };
        if at_ms <= now_ms {
            state.submission.reach_slot();
            out.push(Action::ReadChain { epoch });
        } else {
            out.push(Action::SetTimer {
                at_ms,
                timer: Timer::SubmitSlot { epoch },
            });
        }
    }

    pub(crate) fn submit(&mut self, epoch: u64, out: &mut Out) {
        let Some(state) = self.epochs.get_mut(&epoch) else {
            return;
        };
        if state.submission.in_flight() {
            return;
        }
        let Some(certificate) = state.certificate().cloned() else {
            return;
        };
        state.submission = Submission::InFlight {
            failures: state.submission.failures(),
        };
        out.push(Action::Submit { certificate });
    }

    /// The epoch is not on chain: a backup whose wait is over proposes; submit if this
    /// member holds a certificate, may submit now (its staggered slot has come, or the race
    /// policy) and is not backing off.
    pub(crate) fn on_not_on_chain(&mut self, now_ms: u64, epoch: u64, out: &mut Out) {
        self.propose_unless_on_chain(now_ms, epoch, out);
        let race = self.config.policy == SubmitPolicy::Race;
        let Some(state) = self.epochs.get(&epoch) else {
            return;
        };
        if state.certificate().is_some() && state.submission.may_submit(race, now_ms) {
            self.submit(epoch, out);
        }
    }

    /// The outcome of this member's submission.
    pub(super) fn on_submitted(
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
        // Only the outcome of this member's own submission in flight moves its submission
        // (a stale outcome still carries the record, taken below).
        if let Some(state) = self
            .epochs
            .get_mut(&epoch)
            .filter(|state| state.submission.in_flight())
        {
            let failures = state.submission.failures();
            if record.is_none() {
                // Back off, doubling per failure up to a cap: a chain that refuses or is
                // down is not hammered.
                let failures = failures.saturating_add(1);
                let factor = 1u64 << (failures - 1).min(SUBMIT_BACKOFF_DOUBLINGS);
                let retry_at = now_ms + self.config.resend_interval_ms * factor;
                state.submission = Submission::Open {
                    not_before_ms: retry_at,
                    failures,
                };
                out.push(Action::SetTimer {
                    at_ms: retry_at,
                    timer: Timer::SubmitRetry { epoch },
                });
            } else {
                state.submission = Submission::Open {
                    not_before_ms: 0,
                    failures,
                };
            }
        }
        if let Some(record) = record {
            self.on_on_chain(epoch, record, tx_ref, out);
        }
    }

    /// A peer says its submission of `epoch` was accepted: read the chain now (once per
    /// hinting peer and epoch; the hint is not taken as fact).
    pub(super) fn on_accepted(
        &mut self,
        now_ms: u64,
        from: MemberIndex,
        epoch: u64,
        out: &mut Out,
    ) {
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
}
