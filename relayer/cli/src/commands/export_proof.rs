//! `relayer export-proof`: a self-contained proof bundle of an epoch from a node's API.

use std::path::PathBuf;

use anyhow::Context;
use relayer_auditor::signer_set_hash;
use relayer_node::http;

use super::api_args::ApiArgs;

/// Arguments of `relayer export-proof`.
#[derive(clap::Args)]
#[command(
    after_help = "Example:\n  relayer export-proof --epoch 120 --api https://node0.example.org:8000 --out epoch-120.json"
)]
pub struct Args {
    /// The epoch.
    #[arg(long)]
    epoch: u64,
    #[command(flatten)]
    api: ApiArgs,
    /// Write the bundle here (default: stdout).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Writes the bundle and prints the signer-set hash to pin.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let bundle = http::export_bundle(&args.api.client()?, &args.api.api, args.epoch)
        .await
        .context("exporting the proof bundle")?;
    let json = serde_json::to_string_pretty(&bundle)? + "\n";
    let hash = signer_set_hash(&bundle.chain_id, &bundle.contract, &bundle.signer_set);
    match &args.out {
        Some(path) => {
            std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
        None => print!("{json}"),
    }
    eprintln!(
        "epoch {}: {} rewards, {} signatures; signer set v{} hash {} (pin it out of band)",
        bundle.epoch,
        bundle.rewards.len(),
        bundle.signatures.len(),
        bundle.signer_set.version,
        hex::encode(hash)
    );
    Ok(())
}
