//! `relayer deploy`: stores the wasm on a wasmd chain and instantiates it with a cluster's
//! signer set (cosmrs `MsgStoreCode` and `MsgInstantiateContract`, gas from simulation), then
//! writes the contract address into the cluster's node configs and `deployment.json`.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use nym_rewards::msg::{EpochClock, InstantiateMsg};
use serde::Serialize;
use sha2::{Digest, Sha256};

use relayer_node::chain::{Chain, ChainError};
use relayer_node::cluster::read_manifest;
use relayer_node::config::NodeConfig;

use super::chain_args::SigningChainArgs;

/// Arguments of `relayer deploy`.
#[derive(Debug, Clone, clap::Args)]
#[command(
    after_help = "Example:\n  relayer deploy --node http://127.0.0.1:26657 --chain-id testing \\\n    --wasm artifacts/nym_rewards.wasm --cluster cluster --epoch-secs 3600 \\\n    --account-prefix n --gas-price 0.025unym"
)]
pub struct Args {
    #[command(flatten)]
    chain: SigningChainArgs,
    /// The contract's wasm.
    #[arg(long, default_value = "artifacts/nym_rewards.wasm")]
    wasm: PathBuf,
    /// Cluster directory (from `relayer-dev init-cluster`).
    #[arg(long)]
    cluster: PathBuf,
    /// Epoch length in seconds.
    #[arg(long, default_value_t = 60)]
    epoch_secs: u64,
    /// Most mixnodes per epoch.
    #[arg(long, default_value_t = 5_000)]
    max_mixnodes: u32,
    /// Signature threshold (default floor(2n/3)+1).
    #[arg(long)]
    threshold: Option<u32>,
    /// Least number of epochs between a signer-set rotation and its first epoch (default 0).
    #[arg(long)]
    min_rotation_delay_epochs: Option<u64>,
}

/// Deploys and prints the deployment as JSON.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let deployment = deploy(&args).await?;
    println!("{}", serde_json::to_string_pretty(&deployment)?);
    Ok(())
}

/// The result, also written to `deployment.json` in the cluster directory.
#[derive(Debug, Clone, Serialize)]
struct Deployment {
    /// Chain id.
    pub chain_id: String,
    /// Code id of the stored wasm.
    pub code_id: u64,
    /// Contract address.
    pub contract: String,
    /// Gas used by the store transaction.
    pub store_gas_used: u64,
    /// Gas used by the instantiate transaction.
    pub instantiate_gas_used: u64,
    /// Genesis time of the epoch clock.
    pub genesis_time: u64,
    /// sha256 of the stored wasm (compare with `relayer verify-code`).
    pub wasm_sha256: String,
}

/// Prints the build record `make wasm` left beside the artifact (`checksums.txt`: the hash
/// and the toolchain that built it), and warns when the artifact is not the one recorded.
fn print_recorded_checksums(wasm: &Path, sha256: &str) {
    let record = wasm.with_file_name("checksums.txt");
    let Ok(text) = std::fs::read_to_string(&record) else {
        eprintln!("deploy: no {} beside the artifact", record.display());
        return;
    };
    for line in text.lines() {
        eprintln!("deploy: {}: {line}", record.display());
    }
    if !text.lines().any(|line| line.starts_with(sha256)) {
        eprintln!(
            "deploy: WARNING: {} does not record this artifact's hash; it was rebuilt or changed since",
            record.display()
        );
    }
}

fn chain_context(err: ChainError, node: &str) -> anyhow::Error {
    let unreachable = matches!(err, ChainError::Unavailable(_));
    let err = anyhow::Error::new(err);
    if unreachable {
        err.context(format!("chain node {node} is down or unreachable"))
    } else {
        err
    }
}

/// Stores and instantiates the contract; updates the cluster's configs.
async fn deploy(options: &Args) -> anyhow::Result<Deployment> {
    let manifest = read_manifest(&options.cluster)?;
    let admin = options
        .chain
        .account(&options.cluster.join("keys/admin.secp256k1"))?;
    let wasm = std::fs::read(&options.wasm)
        .with_context(|| format!("reading {}", options.wasm.display()))?;
    let wasm_sha256 = hex::encode(Sha256::digest(&wasm));
    eprintln!("deploy: {} sha256 {wasm_sha256}", options.wasm.display());
    print_recorded_checksums(&options.wasm, &wasm_sha256);
    let chain = options.chain.connect("").await?;
    eprintln!(
        "deploy: storing {} ({} bytes)...",
        options.wasm.display(),
        wasm.len()
    );
    let (code_id, stored) = chain
        .store_code(&admin, wasm)
        .await
        .map_err(|err| chain_context(err, &options.chain.node))?;
    let store_gas_used = stored.gas_used;
    eprintln!("deploy: code id {code_id} (gas {store_gas_used})");

    let genesis_time = chain
        .latest_block_time()
        .await
        .map_err(|err| chain_context(err, &options.chain.node))?;
    let msg = InstantiateMsg {
        admin: Some(admin.address().to_string()),
        clock: EpochClock {
            genesis_time,
            epoch_length_secs: options.epoch_secs,
        },
        members: manifest.members.clone(),
        threshold: options.threshold,
        max_mixnodes_per_epoch: options.max_mixnodes,
        min_rotation_delay_epochs: options.min_rotation_delay_epochs,
    };
    let (contract, instantiated) = chain
        .instantiate(&admin, code_id, serde_json::to_vec(&msg)?, "nym-rewards")
        .await
        .map_err(|err| chain_context(err, &options.chain.node))?;
    eprintln!(
        "deploy: contract {contract} (gas {})",
        instantiated.gas_used
    );
    let deployment = Deployment {
        chain_id: chain.chain_id().to_string(),
        code_id,
        contract: contract.clone(),
        store_gas_used,
        instantiate_gas_used: instantiated.gas_used,
        genesis_time,
        wasm_sha256,
    };
    for config in &manifest.configs {
        set_contract(
            &options.cluster.join(config),
            &contract,
            chain.chain_id(),
            &options.chain.node,
        )?;
    }
    std::fs::write(
        options.cluster.join("deployment.json"),
        serde_json::to_string_pretty(&deployment)?,
    )
    .context("writing deployment.json")?;
    Ok(deployment)
}

fn set_contract(path: &Path, contract: &str, chain_id: &str, rpc: &str) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut config =
        NodeConfig::parse(&text).with_context(|| format!("parsing {}", path.display()))?;
    if config.chain.chain_id != chain_id {
        bail!(
            "{} is for chain {}, not {chain_id}",
            path.display(),
            config.chain.chain_id
        );
    }
    config.chain.contract = contract.to_string();
    config.chain.rpc = rpc.to_string();
    std::fs::write(path, config.to_toml()?).with_context(|| format!("writing {}", path.display()))
}
