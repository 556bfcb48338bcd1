//! `relayer verify-code`: is the code behind a contract the wasm I built? Compares the sha256
//! wasmd recorded for the contract's code with a local artifact's (`make wasm` writes the
//! expected one to `artifacts/checksums.txt`). Exit 0 when they match, 1 when they differ.

use std::path::PathBuf;

use anyhow::Context;
use sha2::{Digest, Sha256};

/// Arguments of `relayer verify-code`.
#[derive(clap::Args)]
#[command(
    after_help = "Example:\n  relayer verify-code --node http://127.0.0.1:26657 --contract wasm1... \\\n    --wasm artifacts/nym_rewards.wasm"
)]
pub struct Args {
    /// CometBFT RPC URL.
    #[arg(long)]
    node: String,
    /// Contract address.
    #[arg(long)]
    contract: String,
    /// The local artifact.
    #[arg(long, default_value = "artifacts/nym_rewards.wasm")]
    wasm: PathBuf,
}

/// Prints both hashes and fails unless they are equal.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let wasm =
        std::fs::read(&args.wasm).with_context(|| format!("reading {}", args.wasm.display()))?;
    let local = hex::encode(Sha256::digest(&wasm));
    let chain = super::connect_for_queries(&args.node, &args.contract).await?;
    let (code_id, on_chain) = chain
        .code_hash()
        .await
        .context("reading the contract's code info")?;
    let on_chain = hex::encode(on_chain);
    println!(
        "contract {} runs code {code_id}, sha256 {on_chain}",
        args.contract
    );
    println!("{} sha256 {local}", args.wasm.display());
    if on_chain == local {
        println!("the contract runs this artifact");
        Ok(())
    } else {
        anyhow::bail!("the contract runs other code than {}", args.wasm.display())
    }
}
