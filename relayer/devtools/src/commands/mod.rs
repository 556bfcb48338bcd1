//! The commands of `relayer-dev`, one module each.

mod bench;
mod bench_wasmd;
mod browser_audit;
mod devnet;
mod init_cluster;
mod migration_check;
mod sim;
mod tls_proxy;

use std::path::PathBuf;

use clap::Subcommand;
use relayer_node::keys::ChainAccount;

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
    /// Measure the contract's gas on a real wasmd (submissions for n x M, duplicates, queries).
    BenchWasmd(bench_wasmd::Args),
    /// Migrate a v1 contract to this code on a real wasmd and compare every answer.
    MigrationCheck(migration_check::Args),
    /// Serve TLS in front of a plain local service (the e2e's https RPC).
    TlsProxy(tls_proxy::Args),
    /// The browser auditor in headless Chromium against a real chain, beside `relayer verify`.
    BrowserAudit(browser_audit::Args),
}

/// The chain and the paying account of the commands that run against a local wasmd.
#[derive(clap::Args)]
struct ChainArgs {
    /// CometBFT RPC URL.
    #[arg(long)]
    node: String,
    /// Cluster directory whose admin key pays (`keys/admin.secp256k1`, funded by
    /// `scripts/localnet.sh start CLUSTER`).
    #[arg(long)]
    cluster: PathBuf,
}

/// A file's bytes, or an error naming it.
fn read(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).map_err(|err| anyhow::anyhow!("reading {}: {err}", path.display()))
}

impl ChainArgs {
    fn admin(&self) -> anyhow::Result<ChainAccount> {
        Ok(ChainAccount::from_file(
            &self.cluster.join("keys/admin.secp256k1"),
            relayer_node::keys::DEFAULT_ACCOUNT_PREFIX,
        )?)
    }
}

impl Command {
    /// Runs the command.
    pub async fn run(self) -> anyhow::Result<()> {
        match self {
            Command::Devnet(args) => devnet::run(args).await,
            Command::InitCluster(args) => init_cluster::run(args),
            Command::TlsProxy(args) => tls_proxy::run(args).await,
            Command::Bench(args) => bench::run(args).await,
            Command::Sim(args) => sim::run(args),
            Command::BenchWasmd(args) => bench_wasmd::run(args).await,
            Command::MigrationCheck(args) => migration_check::run(args).await,
            Command::BrowserAudit(args) => browser_audit::run(args).await,
        }
    }
}
