//! `relayer-dev migration-check`: migrates a v1 contract, fed as v1 was, to this code on a
//! real wasmd and checks that every old answer is unchanged and v2 submissions are accepted.

use std::path::PathBuf;

use relayer_devtools::wasmd::migration::check_migration;

use super::{ChainArgs, read};

/// Arguments of `relayer-dev migration-check`.
#[derive(clap::Args)]
#[command(
    after_help = "Example (a v1 contract built from its tag, migrated to this code):\n  relayer-dev migration-check --node http://127.0.0.1:26657 --cluster cluster \\\n    --v1-wasm target/v1/nym_rewards.wasm"
)]
pub struct Args {
    #[command(flatten)]
    chain: ChainArgs,
    /// The v1 wasm (`scripts/build-wasm-at.sh` builds it from its git commit).
    #[arg(long)]
    v1_wasm: PathBuf,
    /// This version's wasm.
    #[arg(long, default_value = "artifacts/nym_rewards.wasm")]
    wasm: PathBuf,
}

/// Runs the check and prints its report as JSON.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let admin = args.chain.admin()?;
    let report = check_migration(
        &args.chain.node,
        &admin,
        read(&args.v1_wasm)?,
        read(&args.wasm)?,
    )
    .await?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
