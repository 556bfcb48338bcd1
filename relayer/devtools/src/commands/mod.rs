//! The commands of `relayer-dev`, one module each.

mod bench;
mod devnet;
mod init_cluster;
mod sim;

use clap::Subcommand;

/// Every command.
#[derive(Subcommand)]
pub enum Command {
    /// Run N nodes and the contract on an embedded chain in this process.
    Devnet(devnet::Args),
    /// Create keys, node configs and the signer set of a cluster for a local wasmd.
    InitCluster(init_cluster::Args),
    /// Benchmark epochs on headless loopback devnets (latency, txs, messages, CPU).
    Bench(bench::Args),
    /// Run the deterministic simulator (virtual clock, seeded faults, invariants).
    Sim(sim::Args),
}

impl Command {
    /// Runs the command.
    pub async fn run(self) -> anyhow::Result<()> {
        match self {
            Command::Devnet(args) => devnet::run(args).await,
            Command::InitCluster(args) => init_cluster::run(args),
            Command::Bench(args) => bench::run(args).await,
            Command::Sim(args) => sim::run(args),
        }
    }
}
