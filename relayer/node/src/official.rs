//! Finishing an epoch once it is on chain: the winner stores its own data; a loser reads the
//! submitter from the contract, fetches the data from the winner's API, verifies it against
//! the contract's record and signer set, and stores it. If the winner cannot be reached or
//! serves bad data, the loser takes the data from the contract and logs why.

use std::time::Duration;

use nym_rewards::msg::EpochRewardsResponse;

use crate::audit::{fetch_epoch, verify_official};
use crate::chain::{self, Chain};
use crate::store::{OfficialEpoch, OfficialSource, Store, StoreError};

/// How often and how long a loser tries the winner before falling back to the contract.
const FETCH_ATTEMPTS: u32 = 6;
const FETCH_RETRY: Duration = Duration::from_millis(250);

/// Everything finalization needs.
pub struct Finalizer<'a> {
    /// The node's store.
    pub store: &'a Store,
    /// The chain.
    pub chain: &'a dyn Chain,
    /// HTTP client for peers' APIs.
    pub http: &'a reqwest::Client,
    /// This node's chain address.
    pub address: &'a str,
}

/// What finalization did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finalized {
    /// Official data was already stored.
    AlreadyStored,
    /// Stored now, from this source.
    Stored(OfficialSource),
}

/// Errors that leave the epoch unfinished (retried later).
#[derive(Debug, thiserror::Error)]
pub enum FinalizeError {
    /// The chain could not be read.
    #[error("{0}")]
    Chain(#[from] chain::ChainError),
    /// The store failed.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// The contract's own record does not verify (should never happen).
    #[error("the contract's record of epoch {epoch} does not verify: {failures:?}")]
    Unverifiable {
        /// The epoch.
        epoch: u64,
        /// What failed.
        failures: Vec<String>,
    },
}

fn from_record(
    record: &EpochRewardsResponse,
    source: OfficialSource,
    tx_ref: Option<String>,
) -> OfficialEpoch {
    OfficialEpoch {
        epoch: record.epoch,
        signer_set_version: record.signer_set_version,
        data_hash: record.data_hash.clone(),
        rewards: record.rewards.clone(),
        signatures: record.signatures.clone(),
        submitter: record.submitter.to_string(),
        height: record.height,
        source,
        tx_ref,
    }
}

impl Finalizer<'_> {
    /// Stores the official data of an epoch the contract holds as `record`.
    pub async fn finalize(
        &self,
        record: &EpochRewardsResponse,
        tx_ref: Option<String>,
        now_ms: impl Fn() -> u64,
    ) -> Result<Finalized, FinalizeError> {
        let epoch = record.epoch;
        if self.store.official(epoch)?.is_some() {
            return Ok(Finalized::AlreadyStored);
        }
        let set = chain::signer_set(self.chain, Some(record.signer_set_version)).await?;
        let official = if record.submitter.as_str() == self.address {
            from_record(record, OfficialSource::Own, tx_ref)
        } else {
            match self.fetch_from_winner(record, &set).await {
                Ok(data) => OfficialEpoch {
                    source: OfficialSource::Peer,
                    tx_ref: None,
                    ..data
                },
                Err(why) => {
                    tracing::warn!(epoch, "taking epoch {epoch} from the contract: {why}");
                    from_record(record, OfficialSource::Contract, None)
                }
            }
        };
        let (_, failures) = verify_official(
            &official,
            record,
            &set,
            self.chain.chain_id(),
            self.chain.contract(),
        );
        if !failures.is_empty() {
            return Err(FinalizeError::Unverifiable { epoch, failures });
        }
        let source = official.source;
        if self.store.save_official(&official, now_ms())? {
            Ok(Finalized::Stored(source))
        } else {
            Ok(Finalized::AlreadyStored)
        }
    }

    async fn fetch_from_winner(
        &self,
        record: &EpochRewardsResponse,
        set: &nym_rewards::msg::SignerSetResponse,
    ) -> Result<OfficialEpoch, String> {
        let winner = set
            .members
            .iter()
            .find(|member| member.address == record.submitter)
            .ok_or_else(|| {
                format!(
                    "submitter {} is not in signer set {}",
                    record.submitter, set.version
                )
            })?;
        let mut last_error = String::new();
        for attempt in 0..FETCH_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(FETCH_RETRY).await;
            }
            match fetch_epoch(self.http, &winner.api_url, record.epoch).await {
                Ok(data) => {
                    let (_, failures) = verify_official(
                        &data,
                        record,
                        set,
                        self.chain.chain_id(),
                        self.chain.contract(),
                    );
                    if failures.is_empty() {
                        return Ok(data);
                    }
                    return Err(format!(
                        "the winner's data does not verify: {}",
                        failures.join("; ")
                    ));
                }
                Err(err) => last_error = err,
            }
        }
        Err(format!(
            "winner {} unreachable after {FETCH_ATTEMPTS} attempts: {last_error}",
            winner.api_url
        ))
    }
}
