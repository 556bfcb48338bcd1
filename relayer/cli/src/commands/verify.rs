//! `relayer verify`: the auditor check of one node's copy of an epoch against the chain, and
//! of the node's own account of its chain and contract (its `/v1/status`).

use anyhow::Context;
use relayer_auditor::{ChainContext, Outcome, Report};
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
    let client = api_args.client()?;
    let status = http::fetch_status(&client, api)
        .await
        .with_context(|| format!("fetching the status of {api}"))?;
    let copy = http::fetch_epoch(&client, api, epoch)
        .await
        .with_context(|| format!("fetching epoch {epoch} from {api}"))?;
    let audited = ChainContext {
        chain_id: chain.chain_id().to_string(),
        contract: chain.contract().to_string(),
    };
    let node = ChainContext {
        chain_id: status.chain_id,
        contract: status.contract,
    };
    let report = Report::of_copy(&audited, &node, &set, &record, &copy);
    print_outcome(&format!("epoch {epoch} at {api}"), &report)
}

/// Prints a report's outcome as `OK, <verdict>` or `FAILED [<check>]: <why>` (the check's
/// name is the one the browser auditor shows) and fails on the latter.
pub fn print_outcome(what: &str, report: &Report) -> anyhow::Result<()> {
    match &report.outcome {
        Outcome::Verified { summary, .. } => {
            println!("{what}: OK, {summary}");
            Ok(())
        }
        Outcome::Failed { check, error } => {
            println!("{what}: FAILED [{check}]: {error}");
            anyhow::bail!("the auditor check failed")
        }
    }
}
