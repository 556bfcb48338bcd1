//! `relayer config check`: everything wrong with a node's config, named at once: values out of
//! range, key files missing, unreadable, readable by others or invalid, TLS files that do not
//! load, a data directory that cannot be created, no contract, and an operator's monitor whose
//! mixnode set or uptime report cannot be read. Only the monitor is contacted, never the chain.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use relayer_node::config::{NodeConfig, default_config_path};
use relayer_node::keys::{ChainAccount, read_secret};
use relayer_node::mixnode_set;
use relayer_node::sample_source::{SampleSource, read_report};
use relayer_node::{http, tls};

use crate::exit::UsageError;

/// Arguments of `relayer config`.
#[derive(clap::Args)]
#[command(after_help = "Example:\n  relayer config check --config ~/.relayer/config.toml")]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(Subcommand)]
enum What {
    /// Check a config and the files it names; exit 0 when nothing is wrong, 2 otherwise.
    #[command(after_help = "Example:\n  relayer config check --config ~/.relayer/config.toml")]
    Check {
        /// The config (default: `config.toml` in `RELAYER_HOME` or `~/.relayer`).
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

/// Runs the subcommand.
pub async fn run(args: Args) -> anyhow::Result<()> {
    match args.what {
        What::Check { config } => check(&config.unwrap_or_else(default_config_path)).await,
    }
}

async fn check(path: &Path) -> anyhow::Result<()> {
    let config = NodeConfig::read(path)?;
    let mut problems = problems(&config);
    problems.extend(monitor_problems(&config).await);
    if problems.is_empty() {
        println!("{}: OK", path.display());
        return Ok(());
    }
    for problem in &problems {
        println!("{}: {problem}", path.display());
    }
    Err(UsageError(format!(
        "{} problem(s) in {}",
        problems.len(),
        path.display()
    ))
    .into())
}

/// Every problem of `config` and of the files it names.
fn problems(config: &NodeConfig) -> Vec<String> {
    let mut problems: Vec<String> = config.problems().iter().map(ToString::to_string).collect();
    if config.chain.contract.is_empty() {
        problems.push("chain.contract is empty (relayer deploy fills it in)".into());
    }
    if let Err(err) = read_secret(&config.node.ed25519_key_file) {
        problems.push(format!("node.ed25519_key_file: {err}"));
    }
    if let Err(err) =
        ChainAccount::from_file(&config.node.chain_key_file, &config.chain.account_prefix)
    {
        problems.push(format!("node.chain_key_file: {err}"));
    }
    if let (Some(cert), Some(key)) = (&config.tls.cert_file, &config.tls.key_file)
        && let Err(err) = tls::server_config(cert, key)
    {
        problems.push(format!("tls: {err}"));
    }
    if let Some(ca) = &config.tls.extra_ca_file
        && let Err(err) = tls::extra_roots(ca)
    {
        problems.push(format!("tls.extra_ca_file: {err}"));
    }
    if let Err(err) = std::fs::create_dir_all(&config.node.data_dir) {
        problems.push(format!(
            "node.data_dir {}: {err}",
            config.node.data_dir.display()
        ));
    }
    problems
}

/// Problems reading the operator's monitor: its mixnode set and one uptime report.
async fn monitor_problems(config: &NodeConfig) -> Vec<String> {
    let sampling = &config.sampling;
    if sampling.mixnode_set.is_none() && sampling.source == SampleSource::Generator {
        return Vec::new();
    }
    let Ok(client) = http::client_with_ca(config.tls.extra_ca_file.as_deref()) else {
        return Vec::new(); // the CA's problem is named above
    };
    let mut problems = Vec::new();
    if let Err(err) = mixnode_set::load(sampling, &client).await {
        problems.push(format!("sampling.mixnode_set: {err}"));
    }
    if let Some(Err(err)) = read_report(&sampling.source, &client).await {
        problems.push(format!("sampling.source: {err}"));
    }
    problems
}
