//! The chain as the node sees it: the [`Chain`] trait, implemented by [`wasmd`] (and, in
//! `relayer-devtools`, by an embedded chain running the real contract in cw-multi-test).
//! Outcomes are always decided by querying the contract, never by parsing error strings.

pub mod fees;
pub mod wasmd;

use std::time::Duration;

use async_trait::async_trait;
use nym_rewards::msg::{
    ConfigResponse, EpochRewardsResponse, ExecuteMsg, LatestEpochResponse, QueryMsg,
    SignerSetResponse,
};
use serde::de::DeserializeOwned;
use thiserror::Error;

use crate::keys::ChainAccount;

/// Chain failures.
#[derive(Debug, Error)]
pub enum ChainError {
    /// The chain cannot be reached.
    #[error("chain unavailable: {0}")]
    Unavailable(String),
    /// The transaction or query was refused (the text is informational only).
    #[error("refused by the chain: {0}")]
    Refused(String),
    /// An answer that does not decode.
    #[error("undecodable chain answer: {0}")]
    Decode(String),
    /// A transaction, its simulation or a query that the chain answered with an ABCI error.
    #[error("{0}")]
    Abci(AbciFailure),
}

impl ChainError {
    /// A refusal by the contract itself (codespace `wasm`), as when another member's
    /// submission of the epoch came first; anything else (funds, fees, gas, sequence,
    /// transport) is the operator's to fix.
    pub fn is_contract_refusal(&self) -> bool {
        matches!(self, ChainError::Abci(failure) if failure.codespace == "wasm")
    }
}

/// An ABCI error: what failed, the module and code, and the chain's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbciFailure {
    /// What was attempted (`submitting epoch 7`, `simulating`, a query path).
    pub what: String,
    /// The module the code belongs to (`sdk`, `wasm`, ...).
    pub codespace: String,
    /// The ABCI code.
    pub code: u32,
    /// The transaction, when one was included.
    pub tx_hash: Option<String>,
    /// The chain's log (informational only).
    pub log: String,
}

impl AbciFailure {
    /// The likely cause, read from the code (cosmos-sdk's registered errors).
    pub fn cause(&self) -> &'static str {
        match (self.codespace.as_str(), self.code) {
            ("sdk", 4) => "unauthorized (wrong chain id or signature)",
            ("sdk", 5) => "insufficient funds (fund the account)",
            ("sdk", 11) => "out of gas (raise chain.gas_multiplier)",
            ("sdk", 13) => "insufficient fee (raise chain.gas_price)",
            ("sdk", 32) => "wrong account sequence",
            ("sdk", 9) | ("sdk", 22) => "account not found (is it funded?)",
            ("wasm", _) => "refused by the contract",
            _ => "refused",
        }
    }
}

impl std::fmt::Display for AbciFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} failed: {} ({} code {}",
            self.what,
            self.cause(),
            self.codespace,
            self.code
        )?;
        if let Some(hash) = &self.tx_hash {
            write!(f, ", tx {hash}")?;
        }
        write!(f, "): {}", self.log)
    }
}

/// Reference to an included transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxRef {
    /// Transaction hash (or an embedded-chain reference).
    pub tx_hash: String,
    /// Block height.
    pub height: u64,
}

/// The chain's state as readiness needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainHealth {
    /// Latest block height.
    pub height: u64,
    /// Latest block time, unix seconds.
    pub block_time_secs: u64,
    /// Whether the node answering is still syncing.
    pub catching_up: bool,
    /// The account's balance in the fee denom (`None` where the chain has no fees).
    pub balance: Option<u128>,
}

/// What a node needs from the chain.
#[async_trait]
pub trait Chain: Send + Sync + 'static {
    /// Chain id (bound into signatures).
    fn chain_id(&self) -> &str;
    /// Contract address (bound into signatures).
    fn contract(&self) -> &str;
    /// A smart query; returns the JSON answer.
    async fn query_raw(&self, msg: &QueryMsg) -> Result<Vec<u8>, ChainError>;
    /// Latest block time, unix seconds.
    async fn latest_block_time(&self) -> Result<u64, ChainError>;
    /// Executes a contract message signed by `account`.
    async fn execute(&self, account: &ChainAccount, msg: &ExecuteMsg) -> Result<TxRef, ChainError>;
    /// Height, sync state and the balance of `address`.
    async fn health(&self, address: &str) -> Result<ChainHealth, ChainError>;
}

async fn query<T: DeserializeOwned>(chain: &dyn Chain, msg: &QueryMsg) -> Result<T, ChainError> {
    let bytes = chain.query_raw(msg).await?;
    serde_json::from_slice(&bytes).map_err(|err| ChainError::Decode(err.to_string()))
}

/// The contract's config.
pub async fn config(chain: &dyn Chain) -> Result<ConfigResponse, ChainError> {
    query(chain, &QueryMsg::Config {}).await
}

/// A signer set by version (latest when `None`).
pub async fn signer_set(
    chain: &dyn Chain,
    version: Option<u32>,
) -> Result<SignerSetResponse, ChainError> {
    query(chain, &QueryMsg::SignerSet { version }).await
}

/// The signer set governing `epoch`.
pub async fn signer_set_for_epoch(
    chain: &dyn Chain,
    epoch: u64,
) -> Result<SignerSetResponse, ChainError> {
    query(chain, &QueryMsg::SignerSetForEpoch { epoch }).await
}

/// The stored record of `epoch`, if any.
pub async fn epoch_record(
    chain: &dyn Chain,
    epoch: u64,
) -> Result<Option<EpochRewardsResponse>, ChainError> {
    query(chain, &QueryMsg::EpochRewards { epoch }).await
}

/// The running and latest stored epochs.
pub async fn latest_epoch(chain: &dyn Chain) -> Result<LatestEpochResponse, ChainError> {
    query(chain, &QueryMsg::LatestEpoch {}).await
}

/// Waits until the chain's block time has reached `unix_secs` (block time lags the wall
/// clock on a real chain), polling at most every `poll`.
pub async fn wait_for_block_time(
    chain: &dyn Chain,
    unix_secs: u64,
    poll: Duration,
) -> Result<(), ChainError> {
    loop {
        let now = chain.latest_block_time().await?;
        if now >= unix_secs {
            return Ok(());
        }
        let behind = Duration::from_secs(unix_secs - now);
        tokio::time::sleep(behind.min(poll)).await;
    }
}
