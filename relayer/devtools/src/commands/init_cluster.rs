//! `relayer-dev init-cluster`: keys, node configs and `cluster.json` for a local wasmd.

use std::path::PathBuf;

use relayer_devtools::cluster::{ClusterFees, ClusterOptions, init_cluster};
use relayer_node::chain::fees::GasPrice;
use relayer_node::keys::DEFAULT_ACCOUNT_PREFIX;

/// Arguments of `relayer-dev init-cluster`.
#[derive(clap::Args)]
#[command(
    after_help = "Example (keys, configs and the signer set for a local wasmd; then relayer deploy):\n  relayer-dev init-cluster --nodes 4 --out cluster --rpc http://127.0.0.1:26657 \\\n    --chain-id testing --mixnodes 100 --tls"
)]
pub struct Args {
    /// Members.
    #[arg(long)]
    nodes: usize,
    /// Nodes beyond the members, with keys and configs but in no signer set yet (for a
    /// rotation to add).
    #[arg(long, default_value_t = 0)]
    joining: usize,
    /// Output directory (must not exist or be empty).
    #[arg(long)]
    out: PathBuf,
    /// CometBFT RPC URL of the chain.
    #[arg(long, default_value = "http://127.0.0.1:26657")]
    rpc: String,
    /// Chain id.
    #[arg(long, default_value = "testing")]
    chain_id: String,
    /// First p2p port.
    #[arg(long, default_value_t = 27_000)]
    p2p_base_port: u16,
    /// First HTTP port.
    #[arg(long, default_value_t = 28_000)]
    http_base_port: u16,
    /// Mixnodes measured.
    #[arg(long, default_value_t = 100)]
    mixnodes: u32,
    /// Bech32 prefix of the accounts (`n` on a Nyx-like chain).
    #[arg(long, default_value = DEFAULT_ACCOUNT_PREFIX)]
    account_prefix: String,
    /// Gas price the nodes pay, with its denom (e.g. `0.025unym`).
    #[arg(long, default_value = "0stake")]
    gas_price: GasPrice,
    /// Serve the APIs over https with a throwaway CA (written under `tls/`; trust `tls/ca.pem`).
    #[arg(long)]
    tls: bool,
}

/// Writes the cluster and prints its members.
pub fn run(args: Args) -> anyhow::Result<()> {
    let manifest = init_cluster(&ClusterOptions {
        nodes: args.nodes,
        joining: args.joining,
        out: args.out.clone(),
        p2p_base_port: args.p2p_base_port,
        http_base_port: args.http_base_port,
        rpc: args.rpc,
        chain_id: args.chain_id,
        mixnodes: args.mixnodes,
        fees: ClusterFees {
            account_prefix: args.account_prefix,
            gas_price: args.gas_price,
        },
        tls: args.tls,
    })?;
    println!(
        "cluster of {} nodes written to {}",
        manifest.members.len(),
        args.out.display()
    );
    println!("admin account: {}", manifest.admin);
    for member in &manifest.members {
        println!(
            "  {} api {} p2p {}",
            member.address, member.api_url, member.p2p_multiaddr
        );
    }
    for node in &manifest.joining {
        println!(
            "  {} api {} p2p {} (joining: in no signer set yet)",
            node.address, node.api_url, node.p2p_multiaddr
        );
    }
    Ok(())
}
