//! `relayer export-proof`, `relayer verify-proof` and `relayer status`: the auditor's and
//! operator's commands against a node's API (and the chain, for the trust anchor).

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use relayer::api::NodeStatus;
use relayer::audit::fetch_json;
use relayer::chain::wasmd::WasmdChain;
use relayer::proof::{
    ProofBundle, TrustAnchor, chain_anchor, export_bundle, signer_set_hash, verify_bundle,
};

/// Arguments of `relayer export-proof`.
#[derive(Args)]
pub struct ExportProofArgs {
    /// The epoch.
    #[arg(long)]
    epoch: u64,
    /// The node's API URL.
    #[arg(long)]
    api: String,
    /// Write the bundle here (default: stdout).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Arguments of `relayer verify-proof`.
#[derive(Args)]
pub struct VerifyProofArgs {
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

/// Arguments of `relayer status`.
#[derive(Args)]
pub struct StatusArgs {
    /// The node's API URL.
    #[arg(long)]
    api: String,
}

/// Writes the proof bundle of an epoch fetched from a node.
pub async fn export_proof(args: ExportProofArgs) -> anyhow::Result<()> {
    let bundle = export_bundle(&reqwest::Client::new(), &args.api, args.epoch)
        .await
        .map_err(anyhow::Error::msg)
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

fn parse_hash(text: &str) -> anyhow::Result<[u8; 32]> {
    let bytes = hex::decode(text.trim()).context("--signer-set-hash is not hex")?;
    <[u8; 32]>::try_from(bytes.as_slice())
        .map_err(|_| anyhow::anyhow!("--signer-set-hash must be 32 bytes, got {}", bytes.len()))
}

/// Verifies a bundle against the anchor given on the command line.
pub async fn verify_proof(args: VerifyProofArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))?;
    let bundle: ProofBundle = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a proof bundle", args.file.display()))?;
    let anchor = match (&args.signer_set_hash, &args.node, &args.contract) {
        (Some(hash), None, None) => TrustAnchor::SignerSetHash(parse_hash(hash)?),
        (None, Some(node), Some(contract)) => {
            let chain = WasmdChain::connect(node, None, contract, "0stake").await?;
            chain_anchor(&chain, bundle.signer_set.version)
                .await
                .context("reading the signer set from the contract")?
        }
        _ => bail!("give a trust anchor: --signer-set-hash HEX, or --node URL --contract ADDR"),
    };
    let verdict = verify_bundle(&bundle, &anchor);
    if verdict.passed() {
        println!(
            "epoch {}: OK ({} valid signatures, threshold {})",
            bundle.epoch, verdict.valid_signatures, verdict.threshold
        );
        return Ok(());
    }
    println!("epoch {}: FAILED", bundle.epoch);
    for failure in &verdict.failures {
        println!("  - {failure}");
    }
    bail!("the proof bundle does not verify")
}

/// Prints a readable summary of a node.
pub async fn status(args: StatusArgs) -> anyhow::Result<()> {
    let base = args.api.trim_end_matches('/');
    let status: NodeStatus = fetch_json(&reqwest::Client::new(), &format!("{base}/v1/status"))
        .await
        .map_err(anyhow::Error::msg)?;
    let or_none = |epoch: Option<u64>| epoch.map_or_else(|| "none".into(), |e| e.to_string());
    let submissions = status.submissions;
    println!(
        "node        {} (member {})",
        status.name, status.member_index
    );
    println!("peer id     {}", status.peer_id);
    println!("account     {}", status.address);
    println!(
        "chain       {} contract {}",
        status.chain_id, status.contract
    );
    println!(
        "signer set  v{}: {} members, threshold {}, observation threshold {}, policy {}",
        status.signer_set_version,
        status.members,
        status.threshold,
        status.observation_threshold,
        status.policy
    );
    println!(
        "peers       {} of {} connected",
        status.connected_peers,
        status.members.saturating_sub(1)
    );
    println!(
        "epochs      running {}, last official {}",
        or_none(status.current_epoch),
        or_none(status.last_official_epoch)
    );
    println!(
        "submissions {} attempted, {} accepted, {} lost to another member, {} failed",
        submissions.attempted, submissions.accepted, submissions.lost, submissions.failed
    );
    Ok(())
}
