//! `relayer query`: the contract's queries, printed as JSON.

use clap::Subcommand;
use nym_rewards::msg::QueryMsg;
use relayer_node::chain::Chain;

/// Arguments of `relayer query`.
#[derive(clap::Args)]
#[command(
    after_help = "Example:\n  relayer query --node http://127.0.0.1:26657 --contract n1... epoch 120\n  relayer query --node http://127.0.0.1:26657 --contract n1... mixnode 7 --limit 24"
)]
pub struct Args {
    /// CometBFT RPC URL.
    #[arg(long)]
    node: String,
    /// Contract address.
    #[arg(long)]
    contract: String,
    #[command(subcommand)]
    what: What,
}

#[derive(Subcommand)]
enum What {
    /// Admin, clock, limits.
    #[command(
        after_help = "Example:\n  relayer query --node http://127.0.0.1:26657 --contract n1... config"
    )]
    Config,
    /// A signer set (latest when no version is given).
    #[command(
        after_help = "Example:\n  relayer query --node http://127.0.0.1:26657 --contract n1... signers --version 2"
    )]
    Signers {
        /// Version.
        #[arg(long)]
        version: Option<u32>,
    },
    /// The stored data of an epoch.
    #[command(
        after_help = "Example:\n  relayer query --node http://127.0.0.1:26657 --contract n1... epoch 120"
    )]
    Epoch {
        /// The epoch.
        epoch: u64,
    },
    /// The running and the latest stored epoch.
    #[command(
        after_help = "Example:\n  relayer query --node http://127.0.0.1:26657 --contract n1... latest"
    )]
    Latest,
    /// A mixnode's uptime across stored epochs, one page (pass the answer's
    /// `next_start_after` as `--start-after` for the next).
    #[command(
        after_help = "Example:\n  relayer query --node http://127.0.0.1:26657 --contract n1... mixnode 7 --start-after 100 --limit 24"
    )]
    Mixnode {
        /// The mixnode.
        id: u32,
        /// Only epochs after this one.
        #[arg(long)]
        start_after: Option<u64>,
        /// Epochs to scan (the contract caps it, and stops early on epochs migrated from v1).
        #[arg(long)]
        limit: Option<u32>,
    },
}

/// Runs the query and prints the answer.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let chain = super::connect_for_queries(&args.node, &args.contract).await?;
    let msg = match args.what {
        What::Config => QueryMsg::Config {},
        What::Signers { version } => QueryMsg::SignerSet { version },
        What::Epoch { epoch } => QueryMsg::EpochRewards { epoch },
        What::Latest => QueryMsg::LatestEpoch {},
        What::Mixnode {
            id,
            start_after,
            limit,
        } => QueryMsg::MixnodeRewards {
            mix_id: id,
            start_after,
            limit,
        },
    };
    let answer: serde_json::Value = serde_json::from_slice(&chain.query_raw(&msg).await?)?;
    println!("{}", serde_json::to_string_pretty(&answer)?);
    Ok(())
}
