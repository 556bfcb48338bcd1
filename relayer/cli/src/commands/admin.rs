//! `relayer admin`: the contract admin's transactions: scheduling the next signer set from the
//! entries operators sent (`relayer member-entry`), which running nodes follow without a
//! restart; changing the contract's limits; and migrating the contract to new code.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Subcommand;
use nym_rewards::msg::{ConfigResponse, ExecuteMsg, MemberInput, MigrateMsg, QueryMsg};
use relayer_node::chain::{self, Chain};
use sha2::{Digest, Sha256};

use crate::exit::UsageError;

use relayer_node::chain::wasmd::WasmdChain;
use relayer_node::keys::ChainAccount;

use super::chain_args::SigningChainArgs;

/// Arguments of `relayer admin`.
#[derive(clap::Args)]
#[command(
    after_help = "Example:\n  relayer admin schedule-signer-set --node http://127.0.0.1:26657 --contract n1... \\\n    --admin-key admin.secp256k1 --entry op0.json --entry op1.json --entry op2.json \\\n    --entry op3.json --effective-from-epoch 120"
)]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(Subcommand)]
enum What {
    /// Schedule the next signer-set version; it governs from `--effective-from-epoch` on.
    #[command(
        after_help = "Example (each entry as an operator's `relayer member-entry` printed it):\n  relayer admin schedule-signer-set --node http://127.0.0.1:26657 \\\n    --contract wasm1... --admin-key keys/admin.secp256k1 --entry op0.json --entry op1.json \\\n    --entry op2.json --entry op3.json --threshold 3 --effective-from-epoch 120"
    )]
    ScheduleSignerSet(Schedule),
    /// Change the contract's limits; absent flags keep their value.
    #[command(
        after_help = "Example:\n  relayer admin update-config --node http://127.0.0.1:26657 --contract wasm1... \\\n    --admin-key keys/admin.secp256k1 --max-mixnodes 8000"
    )]
    UpdateConfig(UpdateConfig),
    /// Store new contract code and migrate the contract to it (the admin must be the
    /// contract's wasmd admin).
    #[command(
        after_help = "Example:\n  relayer admin migrate --node http://127.0.0.1:26657 --contract wasm1... \\\n    --admin-key keys/admin.secp256k1 --wasm artifacts/nym_rewards.wasm"
    )]
    Migrate(Migrate),
}

/// The contract an admin command acts on, and the admin's key.
#[derive(clap::Args)]
struct AdminTarget {
    #[command(flatten)]
    chain: SigningChainArgs,
    /// Contract address.
    #[arg(long)]
    contract: String,
    /// The admin's secp256k1 key file.
    #[arg(long)]
    admin_key: PathBuf,
}

impl AdminTarget {
    /// The admin's account and a handle on the contract.
    async fn connect(&self) -> anyhow::Result<(ChainAccount, WasmdChain)> {
        let admin = self.chain.account(&self.admin_key)?;
        let chain = self.chain.connect(&self.contract).await?;
        Ok((admin, chain))
    }
}

/// Arguments of `relayer admin update-config`.
#[derive(clap::Args)]
struct UpdateConfig {
    #[command(flatten)]
    admin: AdminTarget,
    /// Most mixnodes one epoch may carry.
    #[arg(long)]
    max_mixnodes: Option<u32>,
    /// Least number of epochs between a rotation and the first epoch the new set governs.
    #[arg(long)]
    min_rotation_delay_epochs: Option<u64>,
}

/// Arguments of `relayer admin migrate`.
#[derive(clap::Args)]
struct Migrate {
    #[command(flatten)]
    admin: AdminTarget,
    /// The new code.
    #[arg(long, default_value = "artifacts/nym_rewards.wasm")]
    wasm: PathBuf,
}

/// Arguments of `relayer admin schedule-signer-set`.
#[derive(clap::Args)]
struct Schedule {
    #[command(flatten)]
    admin: AdminTarget,
    /// JSON array of the members' entries (`ed25519_pubkey`, `address`, `api_url`,
    /// `p2p_multiaddr`), in signer-index order.
    #[arg(long, required_unless_present = "entry", conflicts_with = "entry")]
    members: Option<PathBuf>,
    /// One member's entry as `relayer member-entry` printed it; repeat it for every member,
    /// in signer-index order.
    #[arg(long)]
    entry: Vec<PathBuf>,
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
        What::UpdateConfig(update) => update_config(update).await,
        What::Migrate(migrate) => migrate_contract(migrate).await,
    }
}

/// The members from `--members` (one array) or `--entry` (one file each).
fn read_members(args: &Schedule) -> anyhow::Result<Vec<MemberInput>> {
    let read = |path: &PathBuf| {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
    };
    let members = match &args.members {
        Some(path) => serde_json::from_str(&read(path)?)
            .with_context(|| format!("{} is not a JSON array of member entries", path.display()))?,
        None => args
            .entry
            .iter()
            .map(|path| {
                serde_json::from_str(&read(path)?)
                    .with_context(|| format!("{} is not a member entry", path.display()))
            })
            .collect::<anyhow::Result<Vec<MemberInput>>>()?,
    };
    if members.is_empty() {
        bail!("no member entries given");
    }
    Ok(members)
}

async fn update_config(args: UpdateConfig) -> anyhow::Result<()> {
    if args.max_mixnodes.is_none() && args.min_rotation_delay_epochs.is_none() {
        return Err(UsageError(
            "nothing to change: give --max-mixnodes or --min-rotation-delay-epochs".into(),
        )
        .into());
    }
    let (admin, chain) = args.admin.connect().await?;
    let msg = ExecuteMsg::UpdateConfig {
        max_mixnodes_per_epoch: args.max_mixnodes,
        min_rotation_delay_epochs: args.min_rotation_delay_epochs,
    };
    let tx = chain
        .execute(&admin, &msg)
        .await
        .context("the contract refused the change")?;
    let config = chain::config(&chain)
        .await
        .context("reading the contract's config")?;
    println!(
        "{}",
        serde_json::json!({
            "max_mixnodes_per_epoch": config.max_mixnodes_per_epoch,
            "min_rotation_delay_epochs": config.min_rotation_delay_epochs,
            "tx": tx.tx_hash,
        })
    );
    Ok(())
}

async fn migrate_contract(args: Migrate) -> anyhow::Result<()> {
    let wasm =
        std::fs::read(&args.wasm).with_context(|| format!("reading {}", args.wasm.display()))?;
    let sha256 = hex::encode(Sha256::digest(&wasm));
    let (admin, chain) = args.admin.connect().await?;
    eprintln!("admin: storing {} (sha256 {sha256})", args.wasm.display());
    let (code_id, _) = chain
        .store_code(&admin, wasm)
        .await
        .context("storing the new code")?;
    let tx = chain
        .migrate(&admin, code_id, serde_json::to_vec(&MigrateMsg {})?)
        .await
        .context("migrating the contract")?;
    println!(
        "{}",
        serde_json::json!({
            "code_id": code_id,
            "sha256": sha256,
            "tx": tx.hash,
        })
    );
    Ok(())
}

async fn schedule_signer_set(args: Schedule) -> anyhow::Result<()> {
    let members = read_members(&args)?;
    let (admin, chain) = args.admin.connect().await?;
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
