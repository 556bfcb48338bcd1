//! The commands of `relayer`, one module each.

mod admin;
mod api_args;
mod chain_args;
mod config;
mod deploy;
mod export_proof;
mod health_check;
mod keygen;
mod keys;
mod member_entry;
mod query;
mod run;
mod status;
mod verify;
mod verify_code;
mod verify_proof;

use clap::Subcommand;

/// Every command.
#[derive(Subcommand)]
pub enum Command {
    /// Run one node against a wasmd chain, until SIGINT or SIGTERM.
    Run(run::Args),
    /// Store the contract on a wasmd chain and instantiate it with a cluster's signer set.
    Deploy(deploy::Args),
    /// Query the contract and print JSON.
    Query(query::Args),
    /// The contract admin's transactions (scheduling a signer-set rotation).
    Admin(admin::Args),
    /// The auditor check: a node's data for an epoch against the chain (exit 0 when it passes).
    Verify(verify::Args),
    /// Write a self-contained proof bundle of an epoch, fetched from a node.
    ExportProof(export_proof::Args),
    /// Verify a proof bundle against a pinned signer-set hash or the chain.
    VerifyProof(verify_proof::Args),
    /// Compare the contract's on-chain code hash with a local wasm artifact.
    VerifyCode(verify_code::Args),
    /// A readable summary of a node: peers, epochs, submissions.
    Status(status::Args),
    /// A node's readiness (exit 0 ready, 1 not ready, 3 unreachable), for scripts and systemd.
    HealthCheck(health_check::Args),
    /// Print a fresh ed25519 public key and write its secret to a file (mode 0600).
    Keygen(keygen::Args),
    /// An operator's own keys: create, restore from a mnemonic, import, show.
    Keys(keys::Args),
    /// Print the JSON entry to send the admin to join the signer set.
    MemberEntry(member_entry::Args),
    /// Check a node config and the files it names.
    Config(config::Args),
}

impl Command {
    /// Runs the command.
    pub async fn run(self) -> anyhow::Result<()> {
        match self {
            Command::Run(args) => run::run(args).await,
            Command::Deploy(args) => deploy::run(args).await,
            Command::Query(args) => query::run(args).await,
            Command::Admin(args) => admin::run(args).await,
            Command::Verify(args) => verify::run(args).await,
            Command::ExportProof(args) => export_proof::run(args).await,
            Command::VerifyProof(args) => verify_proof::run(args).await,
            Command::VerifyCode(args) => verify_code::run(args).await,
            Command::Status(args) => status::run(args).await,
            Command::HealthCheck(args) => health_check::run(args).await,
            Command::Keygen(args) => keygen::run(args),
            Command::Keys(args) => keys::run(args),
            Command::MemberEntry(args) => member_entry::run(args),
            Command::Config(args) => config::run(args).await,
        }
    }
}

/// Connects to a wasmd node's RPC for queries (no account needed).
async fn connect_for_queries(
    node: &str,
    contract: &str,
) -> anyhow::Result<relayer_node::chain::wasmd::WasmdChain> {
    chain_args::connect(
        node,
        None,
        contract,
        relayer_node::chain::fees::FeeSettings::default(),
    )
    .await
}
