//! `relayer admin`: the contract admin's transactions. For now one: scheduling the next signer
//! set from the members' entries; running nodes follow it without a restart.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Subcommand;
use nym_rewards::msg::{ConfigResponse, ExecuteMsg, MemberInput, QueryMsg};
use relayer_node::chain::Chain;

use super::chain_args::SigningChainArgs;

/// Arguments of `relayer admin`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(Subcommand)]
enum What {
    /// Schedule the next signer-set version; it governs from `--effective-from-epoch` on.
    #[command(
        after_help = "Example:\n  relayer admin schedule-signer-set --node http://127.0.0.1:26657 \\\n    --contract wasm1... --admin-key keys/admin.secp256k1 \\\n    --members members.json --threshold 4 --effective-from-epoch 120"
    )]
    ScheduleSignerSet(Schedule),
}

/// Arguments of `relayer admin schedule-signer-set`.
#[derive(clap::Args)]
struct Schedule {
    #[command(flatten)]
    chain: SigningChainArgs,
    /// Contract address.
    #[arg(long)]
    contract: String,
    /// The admin's secp256k1 key file.
    #[arg(long)]
    admin_key: PathBuf,
    /// JSON array of the members' entries (`ed25519_pubkey`, `address`, `api_url`,
    /// `p2p_multiaddr`), in signer-index order.
    #[arg(long)]
    members: PathBuf,
    /// Signatures needed (default floor(2n/3) + 1).
    #[arg(long)]
    threshold: Option<u32>,
    /// First epoch the new set governs (after the running one, and no sooner than the
    /// contract's rotation delay allows).
    #[arg(long)]
    effective_from_epoch: u64,
}

/// Runs the admin command.
pub async fn run(args: Args) -> anyhow::Result<()> {
    match args.what {
        What::ScheduleSignerSet(schedule) => schedule_signer_set(schedule).await,
    }
}

async fn schedule_signer_set(args: Schedule) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.members)
        .with_context(|| format!("reading {}", args.members.display()))?;
    let members: Vec<MemberInput> = serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not a JSON array of member entries",
            args.members.display()
        )
    })?;
    if members.is_empty() {
        bail!("{} names no member", args.members.display());
    }
    let admin = args.chain.account(&args.admin_key)?;
    let chain = args.chain.connect(&args.contract).await?;
    let count = members.len();
    let msg = ExecuteMsg::UpdateSignerSet {
        members,
        threshold: args.threshold,
        effective_from_epoch: args.effective_from_epoch,
    };
    let tx = chain
        .execute(&admin, &msg)
        .await
        .context("the contract refused the signer set")?;
    let config: ConfigResponse = serde_json::from_slice(
        &chain
            .query_raw(&QueryMsg::Config {})
            .await
            .context("reading the contract's config")?,
    )?;
    println!(
        "{}",
        serde_json::json!({
            "version": config.latest_signer_set_version,
            "effective_from_epoch": args.effective_from_epoch,
            "members": count,
            "tx": tx.tx_hash,
        })
    );
    Ok(())
}
