//! Finalization: once the contract holds an epoch, this member stores its official copy, and
//! only then is the epoch done. The winner stores the contract's record; a loser fetches the
//! winner's copy, keeps it only if it is certified by the signer set and is what the contract
//! accepted ([`crate::verify`]), and otherwise stores the contract's copy. A failed write is
//! retried at every re-send round; the epoch is never dropped. The node and the simulator
//! both run this code: they only carry out its [`Action`]s.

use nym_rewards::msg::EpochRewardsResponse;

use crate::MixnodeReward;
use crate::action::{Action, PersistRecord, Rejection};
use crate::input::FetchFailed;
use crate::machine::{EpochState, Out, Pending, Protocol};
use crate::messages::Message;
use crate::official::{OfficialEpoch, OfficialSource};
use crate::planted::PlantedBug;

/// Where the finalization of an on-chain epoch stands.
#[derive(Debug, Clone)]
pub(crate) enum Finalizing {
    /// Waiting for the winner's copy.
    Fetching { record: Box<EpochRewardsResponse> },
    /// Writing the official copy.
    Storing {
        /// What is being written, kept to retry the write if it fails.
        record: Box<PersistRecord>,
    },
    /// The write failed; the next re-send round writes it again (the copy is already
    /// verified: nothing is read or fetched again).
    Stalled {
        /// What to write.
        record: Box<PersistRecord>,
    },
}

impl Protocol {
    /// The answer to a chain read.
    pub(crate) fn on_chain_record(
        &mut self,
        now_ms: u64,
        epoch: u64,
        record: Option<EpochRewardsResponse>,
        out: &mut Out,
    ) {
        match record {
            // This member's own submission is in flight: its outcome brings the record with
            // the transaction, so a read that overtakes it is not taken (the epoch would be
            // stored as won without its transaction reference).
            Some(_)
                if self
                    .epochs
                    .get(&epoch)
                    .is_some_and(|state| state.submission.in_flight()) => {}
            Some(record) => self.on_on_chain(epoch, record, None, out),
            None => self.on_not_on_chain(now_ms, epoch, out),
        }
    }

    /// The contract holds `record` for `epoch`: stop working on the epoch and store its
    /// official copy, from the record (this member won) or from the winner.
    pub(crate) fn on_on_chain(
        &mut self,
        epoch: u64,
        record: EpochRewardsResponse,
        tx_ref: Option<String>,
        out: &mut Out,
    ) {
        if record.epoch != epoch {
            out.push(Action::Rejected {
                from: None,
                reason: Rejection::RecordForAnotherEpoch {
                    asked: epoch,
                    got: record.epoch,
                },
            });
            return;
        }
        let busy = matches!(
            self.finalizing.get(&epoch),
            Some(Finalizing::Fetching { .. } | Finalizing::Storing { .. })
        );
        if self.is_final(epoch) || busy {
            return;
        }
        let state = self.epochs.remove(&epoch);
        let own_address = &self.config.signer_set.members[usize::from(self.me)].address;
        if record.submitter.as_str() == own_address {
            // The others learn it now rather than at their next re-send round.
            out.push(Action::Broadcast {
                message: Message::Accepted { epoch },
            });
            let official = OfficialEpoch::from(&record);
            return self.store_official(epoch, official, OfficialSource::Own, tx_ref, out);
        }
        if let Some(rewards) = state.and_then(|state| self.own_aggregate_of(state, &record)) {
            let mut official = OfficialEpoch::from(&record);
            official.rewards = rewards;
            return self.store_official(epoch, official, OfficialSource::Aggregate, None, out);
        }
        // The winner's copy can be checked only under the set this member holds.
        let winner = (record.signer_set_version == self.config.signer_set.version)
            .then(|| {
                self.config
                    .signer_set
                    .index_of_address(record.submitter.as_str())
            })
            .flatten();
        match winner {
            Some(from) => {
                out.push(Action::FetchOfficial { epoch, from });
                self.finalizing.insert(
                    epoch,
                    Finalizing::Fetching {
                        record: Box::new(record),
                    },
                );
            }
            None => self.store_from_contract(epoch, &record, out),
        }
    }

    /// This member's own aggregate with the record's data hash, if it computed one under the
    /// record's signer set (it checked that block and echoed it, or proposed it): the contract
    /// verified the signatures, so nothing needs fetching or verifying again.
    fn own_aggregate_of(
        &self,
        state: EpochState,
        record: &EpochRewardsResponse,
    ) -> Option<Vec<MixnodeReward>> {
        if record.signer_set_version != self.config.signer_set.version {
            return None;
        }
        state.into_aggregate(record.data_hash.as_slice())
    }

    /// The winner's copy (or why there is none) arrived.
    pub(crate) fn on_winner_copy(
        &mut self,
        epoch: u64,
        copy: Result<OfficialEpoch, FetchFailed>,
        out: &mut Out,
    ) {
        let Some(Finalizing::Fetching { record }) = self.finalizing.remove(&epoch) else {
            return;
        };
        let winner = self
            .config
            .signer_set
            .index_of_address(record.submitter.as_str());
        match copy {
            Ok(copy) => {
                let verified = if self.planted(PlantedBug::TrustWinnerCopy) {
                    Ok(())
                } else {
                    copy.verify(&self.config.chain, &self.config.signer_set, Some(&record))
                        .map(|_| ())
                };
                match verified {
                    Ok(()) => {
                        self.store_official(epoch, copy, OfficialSource::Peer, None, out);
                    }
                    Err(error) => {
                        out.push(Action::Rejected {
                            from: winner,
                            reason: Rejection::WinnerCopyInvalid { epoch, error },
                        });
                        self.store_from_contract(epoch, &record, out);
                    }
                }
            }
            Err(FetchFailed { reason }) => {
                out.push(Action::Rejected {
                    from: winner,
                    reason: Rejection::WinnerUnreachable { epoch, reason },
                });
                self.store_from_contract(epoch, &record, out);
            }
        }
    }

    fn store_from_contract(&mut self, epoch: u64, record: &EpochRewardsResponse, out: &mut Out) {
        self.metrics.official_from_contract += 1;
        let official = OfficialEpoch::from(record);
        self.store_official(epoch, official, OfficialSource::Contract, None, out);
    }

    fn store_official(
        &mut self,
        epoch: u64,
        official: OfficialEpoch,
        source: OfficialSource,
        tx_ref: Option<String>,
        out: &mut Out,
    ) {
        let record = PersistRecord::Official {
            official,
            source,
            tx_ref,
        };
        self.write_official(epoch, record, source, out);
    }

    fn write_official(
        &mut self,
        epoch: u64,
        record: PersistRecord,
        source: OfficialSource,
        out: &mut Out,
    ) {
        self.finalizing.insert(
            epoch,
            Finalizing::Storing {
                record: Box::new(record.clone()),
            },
        );
        self.persist(record, Pending::Official { epoch, source }, out);
    }

    /// The official copy is durable: the epoch is done.
    pub(crate) fn on_official_stored(&mut self, epoch: u64, source: OfficialSource, out: &mut Out) {
        self.finalizing.remove(&epoch);
        self.epochs.remove(&epoch);
        if self.final_epochs.insert(epoch) {
            self.metrics.epochs_final += 1;
            out.push(Action::Final { epoch, source });
        }
    }

    /// The write failed: keep the epoch and write again at the next re-send round.
    pub(crate) fn on_official_not_stored(&mut self, epoch: u64, out: &mut Out) {
        self.metrics.official_store_failures += 1;
        out.push(Action::Rejected {
            from: None,
            reason: Rejection::OfficialNotStored { epoch },
        });
        if self.planted(PlantedBug::DropFailedFinalization) {
            // The bug: the epoch counts as done although nothing was stored.
            self.finalizing.remove(&epoch);
            self.awaiting.remove(&epoch);
            self.final_epochs.insert(epoch);
            return;
        }
        if let Some(Finalizing::Storing { record }) = self.finalizing.remove(&epoch) {
            self.finalizing
                .insert(epoch, Finalizing::Stalled { record });
        }
    }

    /// Writes again every official copy whose write failed.
    pub(crate) fn retry_stalled_finality(&mut self, out: &mut Out) {
        let stalled: Vec<u64> = self
            .finalizing
            .iter()
            .filter(|(_, state)| matches!(state, Finalizing::Stalled { .. }))
            .map(|(&epoch, _)| epoch)
            .collect();
        for epoch in stalled {
            let Some(Finalizing::Stalled { record }) = self.finalizing.remove(&epoch) else {
                continue;
            };
            if let PersistRecord::Official { source, .. } = *record {
                self.write_official(epoch, *record, source, out);
            }
        }
    }
}
