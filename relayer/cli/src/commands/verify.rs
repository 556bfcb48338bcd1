//! `relayer verify`: the auditor check of one node's copy of an epoch against the chain.

use anyhow::Context;
use relayer_auditor::{ChainContext, audit_copy};
use relayer_node::chain::{self, Chain};
use relayer_node::http;

use super::api_args::ApiArgs;

/// Arguments of `relayer verify`.
#[derive(clap::Args)]
#[command(
    after_help = "Example:\n  relayer verify --epoch 120 --api https://node0.example.org:8000 \\\n    --node https://rpc.nyx.example.org:443 --contract n1..."
)]
pub struct Args {
    /// The epoch.
    #[arg(long)]
    epoch: u64,
    #[command(flatten)]
    api: ApiArgs,
    /// CometBFT RPC URL of the chain.
    #[arg(long)]
    node: String,
    /// Contract address.
    #[arg(long)]
    contract: String,
}

/// Fetches the node's copy, the contract's record and signer set, and checks the copy.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let Args {
        epoch,
        api: api_args,
        node,
        contract,
    } = args;
    let chain = super::connect_for_queries(&node, &contract).await?;
    let record = chain::epoch_record(&chain, epoch)
        .await
        .context("reading the contract's record")?
        .with_context(|| format!("epoch {epoch} is not stored on chain"))?;
    let set = chain::signer_set(&chain, Some(record.signer_set_version))
        .await
        .context("reading the signer set")?;
    let ApiArgs { api, .. } = &api_args;
    let copy = http::fetch_epoch(&api_args.client()?, api, epoch)
        .await
        .with_context(|| format!("fetching epoch {epoch} from {api}"))?;
    let context = ChainContext {
        chain_id: chain.chain_id().to_string(),
        contract: chain.contract().to_string(),
    };
    match audit_copy(&context, &set, &record, &copy) {
        Ok(verdict) => {
            println!("epoch {epoch} at {api}: OK, {}", verdict.describe());
            Ok(())
        }
        Err(err) => {
            println!("epoch {epoch} at {api}: FAILED: {err}");
            anyhow::bail!("the auditor check failed")
        }
    }
}
