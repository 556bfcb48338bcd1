//! Command line: `devnet`, `init-cluster`, `keygen`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use relayer::cluster::{ClusterOptions, init_cluster};
use relayer::devnet::{Devnet, DevnetOptions};
use relayer_protocol::SubmitPolicy;

#[derive(Parser)]
#[command(
    name = "relayer",
    version,
    about = "Nym-API rewarding relayer: threshold-signed epoch rewards"
)]
struct Cli {
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Human, global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum Policy {
    Staggered,
    Race,
}

impl From<Policy> for SubmitPolicy {
    fn from(policy: Policy) -> Self {
        match policy {
            Policy::Staggered => SubmitPolicy::Staggered,
            Policy::Race => SubmitPolicy::Race,
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run N nodes and the contract on an embedded chain in this process.
    Devnet {
        /// Members.
        #[arg(long, default_value_t = 4)]
        nodes: usize,
        /// Mixnodes measured.
        #[arg(long, default_value_t = 100)]
        mixnodes: u32,
        /// Epoch length in seconds.
        #[arg(long, default_value_t = 5)]
        epoch_secs: u64,
        /// Exit 0 after this many epochs are final on all nodes (default: run until Ctrl-C).
        #[arg(long)]
        epochs: Option<u64>,
        /// Submission policy.
        #[arg(long, value_enum, default_value_t = Policy::Staggered)]
        policy: Policy,
        /// Write a JSON summary of the final epochs here.
        #[arg(long)]
        summary: Option<PathBuf>,
        /// Directory for the nodes' databases (default: a temporary directory).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Sampling interval of the generator.
        #[arg(long, default_value_t = 200)]
        metrics_interval_ms: u64,
    },
    /// Create keys, node configs and the signer set of a cluster.
    InitCluster {
        /// Members.
        #[arg(long)]
        nodes: usize,
        /// Output directory.
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
    },
    /// Print a fresh ed25519 public key and write its secret to a file (mode 0600).
    Keygen {
        /// Secret key file to create.
        #[arg(long)]
        out: PathBuf,
    },
}

/// Runs the command line.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,libp2p=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Devnet {
            nodes,
            mixnodes,
            epoch_secs,
            epochs,
            policy,
            summary,
            data_dir,
            metrics_interval_ms,
        } => {
            let temp;
            let data_dir = match data_dir {
                Some(dir) => dir,
                None => {
                    temp = tempfile::tempdir().context("creating a temporary directory")?;
                    temp.path().to_path_buf()
                }
            };
            let mut options = DevnetOptions::new(nodes, data_dir);
            options.mixnodes = mixnodes;
            options.epoch_secs = epoch_secs;
            options.policy = policy.into();
            options.metrics_interval_ms = metrics_interval_ms;
            run_devnet(options, epochs, summary).await
        }
        Command::InitCluster {
            nodes,
            out,
            rpc,
            chain_id,
            p2p_base_port,
            http_base_port,
            mixnodes,
        } => {
            let manifest = init_cluster(&ClusterOptions {
                nodes,
                out: out.clone(),
                p2p_base_port,
                http_base_port,
                rpc,
                chain_id,
                mixnodes,
            })?;
            println!(
                "cluster of {} nodes written to {}",
                manifest.members.len(),
                out.display()
            );
            println!("admin account: {}", manifest.admin);
            for member in &manifest.members {
                println!(
                    "  {} api {} p2p {}",
                    member.address, member.api_url, member.p2p_multiaddr
                );
            }
            Ok(())
        }
        Command::Keygen { out } => {
            let secret = relayer::keys::random_secret();
            relayer::keys::write_secret(&out, &secret)?;
            println!(
                "{}",
                hex::encode(relayer_protocol::Keypair::from_seed(&secret).public())
            );
            Ok(())
        }
    }
}

async fn run_devnet(
    options: DevnetOptions,
    epochs: Option<u64>,
    summary: Option<PathBuf>,
) -> anyhow::Result<()> {
    let epoch_secs = options.epoch_secs;
    let devnet = Devnet::start(options).await?;
    println!(
        "devnet: {} nodes, contract {} on the embedded chain, epochs of {epoch_secs}s",
        devnet.size(),
        devnet.contract()
    );
    for i in 0..devnet.size() {
        if let Some(url) = devnet.node(i).and_then(|node| node.api_url.clone()) {
            println!("  node{i}: {url}/v1/status");
        }
    }
    let first = devnet.current_epoch();
    let timeout = Duration::from_secs(epoch_secs * 6 + 30);
    let mut reports = Vec::new();
    let mut epoch = first;
    let result = loop {
        if epochs.is_some_and(|wanted| reports.len() as u64 >= wanted) {
            break Ok(());
        }
        let report = tokio::select! {
            report = devnet.wait_for_final(epoch, timeout) => report,
            _ = shutdown_signal() => break Ok(()),
        };
        match report {
            Ok(report) => {
                println!(
                    "epoch {} final: winner {} signers {:?} txs {} latency {} ms official on {}/{} nodes audit {}",
                    report.epoch,
                    report.submitter_name,
                    report.signer_indices,
                    report.txs_submitted,
                    report.latency_ms,
                    report.nodes_with_official_data,
                    devnet.size(),
                    if report.auditor_verified {
                        "ok"
                    } else {
                        "FAILED"
                    }
                );
                for failure in &report.audit_failures {
                    println!("    audit: {failure}");
                }
                reports.push(report);
                epoch += 1;
            }
            Err(err) => break Err(err),
        }
    };
    devnet.stop().await;
    if let Some(path) = summary {
        let text = serde_json::to_string_pretty(&serde_json::json!({ "epochs": reports }))?;
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    result?;
    if reports.iter().any(|report| !report.auditor_verified) {
        anyhow::bail!("the auditor check failed for some epochs");
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => return ctrl_c.await.unwrap_or(()),
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
