//! The re-send round: prune what left the window, read the chain for unfinished epochs, ask
//! for missing observations, re-send unfinished blocks and observation requests, retry
//! proposals, measurements and stalled finalization.

use super::*;

impl Protocol {
    pub(super) fn on_resend(&mut self, now_ms: u64, out: &mut Out) {
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
        // A standby whose timer was lost (a clock stepping back between firing and handling)
        // still ends.
        let standing_by: Vec<u64> = self
            .epochs
            .iter()
            .filter(|(_, state)| matches!(state.proposing, Proposing::Standby { .. }))
            .map(|(&epoch, _)| epoch)
            .collect();
        for epoch in standing_by {
            self.on_standby_over(now_ms, epoch, out);
        }
        for epoch in unknown {
            out.push(Action::ReadChain { epoch });
            self.ask_for_missing_observations(now_ms, epoch, out);
        }
        for (&epoch, state) in &self.epochs {
            if let Some(proposal) = state
                .proposing
                .proposal()
                .filter(|p| p.certificate.is_none())
            {
                out.push(Action::Broadcast {
                    message: Message::BlockDigest(proposal.block.digest(self.config.n())),
                });
            }
            // A parked block's missing observations are asked of its proposer again, and,
            // once the epoch has ended, of their authors (each serves its own): a proposer
            // that went down after sending its digest, or that withholds, leaves an honest
            // block to be finished from them. Each (peer, reference) is asked once per round
            // however many parked blocks name it, and a block for a running epoch (no honest
            // proposer sends one) cannot make this member pester honest authors with it.
            let mut requests = BTreeSet::new();
            for (&proposer, block) in &state.parked {
                for reference in &block.observations {
                    if find_observation(state, reference).is_some() {
                        continue;
                    }
                    let author = reference.author;
                    let from_author = (epoch < current && author != proposer && author != self.me)
                        .then_some(author);
                    for to in std::iter::once(proposer).chain(from_author) {
                        requests.insert((to, *reference));
                    }
                }
            }
            for (to, reference) in requests {
                out.push(Action::Send {
                    to,
                    message: Message::ObservationRequest { epoch, reference },
                });
            }
        }
        let unproposed: Vec<u64> = self
            .epochs
            .iter()
            .filter(|(_, state)| !state.proposing.started())
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
