//! `relayer verify-proof`: a proof bundle against a pinned signer-set hash (certified, not
//! proven accepted) or the chain (its signer set and its record of the epoch: accepted).

use std::path::PathBuf;

use anyhow::Context;
use relayer_auditor::{ChainContext, ProofBundle, Report, TrustAnchor};
use relayer_node::chain::{self, Chain};

use crate::exit::UsageError;

/// Arguments of `relayer verify-proof`.
#[derive(clap::Args)]
#[command(
    after_help = "Example:\n  relayer verify-proof epoch-120.json --signer-set-hash 332dbfc1...\n  relayer verify-proof epoch-120.json --node https://rpc.nyx.example.org:443 --contract n1..."
)]
pub struct Args {
    /// The bundle file.
    file: PathBuf,
    /// Trust a pinned signer-set hash (hex), obtained out of band.
    #[arg(long, conflicts_with_all = ["node", "contract"])]
    signer_set_hash: Option<String>,
    /// Trust the chain: CometBFT RPC URL (with --contract).
    #[arg(long, requires = "contract")]
    node: Option<String>,
    /// Trust the chain: contract address (with --node).
    #[arg(long, requires = "node")]
    contract: Option<String>,
}

fn parse_hash(text: &str) -> anyhow::Result<[u8; 32]> {
    let bytes = hex::decode(text.trim()).context("--signer-set-hash is not hex")?;
    <[u8; 32]>::try_from(bytes.as_slice())
        .map_err(|_| anyhow::anyhow!("--signer-set-hash must be 32 bytes, got {}", bytes.len()))
}

/// The chain as a trust anchor: the contract's signer set of the bundle's version and its
/// record of the bundle's epoch.
async fn chain_anchor(
    node: &str,
    contract: &str,
    bundle: &ProofBundle,
) -> anyhow::Result<TrustAnchor> {
    let chain = super::connect_for_queries(node, contract).await?;
    let signer_set = chain::signer_set(&chain, Some(bundle.signer_set.version))
        .await
        .context("reading the signer set from the contract")?;
    let record = chain::epoch_record(&chain, bundle.epoch)
        .await
        .context("reading the contract's record")?
        .with_context(|| {
            format!(
                "epoch {} is not stored on chain, so the bundle cannot be proven accepted",
                bundle.epoch
            )
        })?;
    Ok(TrustAnchor::Chain {
        chain: ChainContext {
            chain_id: chain.chain_id().to_string(),
            contract: chain.contract().to_string(),
        },
        signer_set,
        record: Box::new(record),
    })
}

/// Verifies the bundle against the anchor given on the command line.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))?;
    let bundle: ProofBundle = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a proof bundle", args.file.display()))?;
    let anchor = match (&args.signer_set_hash, &args.node, &args.contract) {
        (Some(hash), None, None) => TrustAnchor::SignerSetHash(parse_hash(hash)?),
        (None, Some(node), Some(contract)) => chain_anchor(node, contract, &bundle).await?,
        _ => {
            return Err(UsageError(
                "give a trust anchor: --signer-set-hash HEX, or --node URL --contract ADDR".into(),
            )
            .into());
        }
    };
    super::verify::print_outcome(
        &format!("epoch {}", bundle.epoch),
        &Report::of_bundle(&bundle, &anchor),
    )
    .context("the proof bundle does not verify")
}
