//! The options of every command that signs transactions: where the chain is, how its
//! addresses are spelled, and how fees are paid (the same settings as a node config's
//! `[chain]` section).

use std::path::Path;

use anyhow::Context;
use relayer_node::chain::fees::{DEFAULT_GAS_MULTIPLIER, DEFAULT_MAX_GAS, FeeSettings, GasPrice};
use relayer_node::chain::wasmd::WasmdChain;
use relayer_node::keys::{ChainAccount, DEFAULT_ACCOUNT_PREFIX};

/// Chain and fee options of a signing command.
#[derive(Debug, Clone, clap::Args)]
pub struct SigningChainArgs {
    /// CometBFT RPC URL.
    #[arg(long)]
    pub node: String,
    /// Expected chain id.
    #[arg(long)]
    pub chain_id: Option<String>,
    /// Bech32 prefix of account addresses (`n` on Nyx).
    #[arg(long, default_value = DEFAULT_ACCOUNT_PREFIX)]
    pub account_prefix: String,
    /// Price per unit of gas with its denom, e.g. `0.025unym`.
    #[arg(long, default_value = "0stake")]
    pub gas_price: GasPrice,
    /// Gas limit = simulated gas x this.
    #[arg(long, default_value_t = DEFAULT_GAS_MULTIPLIER)]
    pub gas_multiplier: f64,
    /// Refuse a transaction needing more gas than this.
    #[arg(long, default_value_t = DEFAULT_MAX_GAS)]
    pub max_gas: u64,
}

impl SigningChainArgs {
    /// The fee settings.
    pub fn fees(&self) -> FeeSettings {
        FeeSettings {
            gas_price: self.gas_price.clone(),
            gas_multiplier: self.gas_multiplier,
            max_gas: self.max_gas,
        }
    }

    /// Connects, pointing the handle at `contract` (empty before instantiation).
    pub async fn connect(&self, contract: &str) -> anyhow::Result<WasmdChain> {
        WasmdChain::connect(&self.node, self.chain_id.as_deref(), contract, self.fees())
            .await
            .with_context(|| format!("connecting to the chain at {}", self.node))
    }

    /// The account whose secret is in `path`, spelled with this chain's prefix.
    pub fn account(&self, path: &Path) -> anyhow::Result<ChainAccount> {
        Ok(ChainAccount::from_file(path, &self.account_prefix)?)
    }
}
