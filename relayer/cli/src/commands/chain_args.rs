//! The options of every command that signs transactions: where the chain is, how its
//! addresses are spelled, and how fees are paid (the same settings as a node config's
//! `[chain]` section).

use std::path::Path;

use relayer_node::chain::ChainError;
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
        connect(&self.node, self.chain_id.as_deref(), contract, self.fees()).await
    }

    /// The account whose secret is in `path`, spelled with this chain's prefix.
    pub fn account(&self, path: &Path) -> anyhow::Result<ChainAccount> {
        Ok(ChainAccount::from_file(path, &self.account_prefix)?)
    }
}

/// Connects to the chain at `node`, trusting `RELAYER_CA_CERT` beside the system's roots for
/// an https RPC: unreachable stays a chain error (exit 3); a refusal at connection (a bad URL,
/// another chain id, fee settings out of range, an unusable CA) is a usage error (2).
pub async fn connect(
    node: &str,
    chain_id: Option<&str>,
    contract: &str,
    fees: FeeSettings,
) -> anyhow::Result<WasmdChain> {
    let extra_ca = std::env::var_os("RELAYER_CA_CERT").map(std::path::PathBuf::from);
    match WasmdChain::connect_trusting(node, chain_id, contract, fees, extra_ca.as_deref()).await {
        Ok(chain) => Ok(chain),
        Err(ChainError::Refused(why)) => Err(crate::exit::UsageError(why).into()),
        Err(err) => {
            Err(anyhow::Error::new(err).context(format!("connecting to the chain at {node}")))
        }
    }
}
