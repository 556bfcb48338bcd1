//! Command line: `devnet`, `init-cluster`, `deploy`, `run`, `query`, `verify`, `export-proof`,
//! `verify-proof`, `status`, `bench`, `sim`, `keygen`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use nym_rewards::msg::QueryMsg;
use relayer::chain::Chain;
use relayer::chain::wasmd::WasmdChain;
use relayer::cluster::{ClusterOptions, init_cluster};
use relayer::config::NodeConfig;
use relayer::deploy::{DeployOptions, deploy};
use relayer::devnet::{Devnet, DevnetOptions};
use relayer::keys::{ChainAccount, read_secret};
use relayer::net::BoundNet;
use relayer::node::{NodeSettings, start_node};
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
    /// Run one node against a wasmd chain, until SIGINT or SIGTERM.
    Run {
        /// Node config (TOML) from `relayer init-cluster`.
        #[arg(long)]
        config: PathBuf,
    },
    /// Store the contract on a wasmd chain and instantiate it with a cluster's signer set.
    Deploy {
        /// CometBFT RPC URL.
        #[arg(long)]
        node: String,
        /// Expected chain id.
        #[arg(long)]
        chain_id: Option<String>,
        /// The contract's wasm.
        #[arg(long, default_value = "artifacts/nym_rewards.wasm")]
        wasm: PathBuf,
        /// Cluster directory.
        #[arg(long)]
        cluster: PathBuf,
        /// Epoch length in seconds.
        #[arg(long, default_value_t = 60)]
        epoch_secs: u64,
        /// Most mixnodes per epoch.
        #[arg(long, default_value_t = 5_000)]
        max_mixnodes: u32,
        /// Signature threshold (default floor(2n/3)+1).
        #[arg(long)]
        threshold: Option<u32>,
    },
    /// Query the contract and print JSON.
    Query {
        /// CometBFT RPC URL.
        #[arg(long)]
        node: String,
        /// Contract address.
        #[arg(long)]
        contract: String,
        #[command(subcommand)]
        what: QueryWhat,
    },
    /// The auditor check: a node's data for an epoch against the chain (exit 0 when it passes).
    Verify {
        /// The epoch.
        #[arg(long)]
        epoch: u64,
        /// The node's API URL.
        #[arg(long)]
        api: String,
        /// CometBFT RPC URL.
        #[arg(long)]
        node: String,
        /// Contract address.
        #[arg(long)]
        contract: String,
    },
    /// Write a self-contained proof bundle of an epoch, fetched from a node.
    ExportProof(crate::proof_cli::ExportProofArgs),
    /// Verify a proof bundle against a pinned signer-set hash or the chain.
    VerifyProof(crate::proof_cli::VerifyProofArgs),
    /// A readable summary of a node: peers, epochs, submissions.
    Status(crate::proof_cli::StatusArgs),
    /// Benchmark epochs on headless loopback devnets (latency, txs, messages, CPU).
    Bench(crate::bench_cli::BenchArgs),
    /// Run the deterministic simulator (virtual clock, seeded faults, invariants).
    Sim(crate::sim_cli::SimArgs),
    /// Print a fresh ed25519 public key and write its secret to a file (mode 0600).
    Keygen {
        /// Secret key file to create.
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum QueryWhat {
    /// Admin, clock, limits.
    Config,
    /// A signer set (latest when no version is given).
    Signers {
        /// Version.
        #[arg(long)]
        version: Option<u32>,
    },
    /// The stored data of an epoch.
    Epoch {
        /// The epoch.
        epoch: u64,
    },
    /// The running and the latest stored epoch.
    Latest,
    /// A mixnode's uptime across stored epochs.
    Mixnode {
        /// The mixnode.
        id: u32,
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
        Command::Run { config } => run_node(&config).await,
        Command::Deploy {
            node,
            chain_id,
            wasm,
            cluster,
            epoch_secs,
            max_mixnodes,
            threshold,
        } => {
            let options = DeployOptions {
                node,
                chain_id,
                wasm,
                cluster,
                epoch_secs,
                max_mixnodes,
                threshold,
            };
            let deployment = deploy(&options).await?;
            println!("{}", serde_json::to_string_pretty(&deployment)?);
            Ok(())
        }
        Command::Query {
            node,
            contract,
            what,
        } => {
            let chain = WasmdChain::connect(&node, None, &contract, "0stake").await?;
            let msg = match what {
                QueryWhat::Config => QueryMsg::Config {},
                QueryWhat::Signers { version } => QueryMsg::SignerSet { version },
                QueryWhat::Epoch { epoch } => QueryMsg::EpochRewards { epoch },
                QueryWhat::Latest => QueryMsg::LatestEpoch {},
                QueryWhat::Mixnode { id } => QueryMsg::MixnodeRewards {
                    mix_id: id,
                    start_after: None,
                    limit: None,
                },
            };
            let answer: serde_json::Value = serde_json::from_slice(&chain.query_raw(&msg).await?)?;
            println!("{}", serde_json::to_string_pretty(&answer)?);
            Ok(())
        }
        Command::Verify {
            epoch,
            api,
            node,
            contract,
        } => {
            let chain = WasmdChain::connect(&node, None, &contract, "0stake").await?;
            let report =
                relayer::audit::audit_node(&reqwest::Client::new(), &chain, &api, epoch).await;
            if report.passed() {
                println!(
                    "epoch {epoch} at {api}: OK ({} valid signatures, threshold {})",
                    report.valid_signatures, report.threshold
                );
                Ok(())
            } else {
                println!("epoch {epoch} at {api}: FAILED");
                for failure in &report.failures {
                    println!("  - {failure}");
                }
                anyhow::bail!("the auditor check failed")
            }
        }
        Command::ExportProof(args) => crate::proof_cli::export_proof(args).await,
        Command::VerifyProof(args) => crate::proof_cli::verify_proof(args).await,
        Command::Status(args) => crate::proof_cli::status(args).await,
        Command::Sim(args) => crate::sim_cli::run_sim(args),
        Command::Bench(args) => crate::bench_cli::run_bench_command(args).await,
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
            println!("  node{i}: dashboard {url}/  status {url}/v1/status  API docs {url}/docs/");
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
        let ends_in = devnet
            .clock
            .epoch_end(epoch)
            .map(|end| (end * 1_000).saturating_sub(relayer::now_ms()))
            .unwrap_or(0);
        eprintln!(
            "waiting for epoch {epoch} (ends in {:.1} s, then signing and submission)...",
            ends_in as f64 / 1_000.0
        );
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

/// Connects to the chain, retrying with backoff while it is down.
async fn connect_with_retry(config: &NodeConfig) -> anyhow::Result<WasmdChain> {
    let mut delay = Duration::from_millis(500);
    for attempt in 1..=12 {
        match WasmdChain::connect(
            &config.chain.rpc,
            Some(&config.chain.chain_id),
            &config.chain.contract,
            &config.chain.gas_price,
        )
        .await
        {
            Ok(chain) => return Ok(chain),
            Err(err @ relayer::chain::ChainError::Unavailable(_)) => {
                tracing::warn!(
                    "chain not reachable (attempt {attempt}): {err}; retrying in {delay:?}"
                );
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
            Err(err) => return Err(err.into()),
        }
    }
    anyhow::bail!("chain {} unreachable; giving up", config.chain.rpc)
}

async fn run_node(path: &std::path::Path) -> anyhow::Result<()> {
    let config = NodeConfig::load(path)?;
    if config.chain.contract.is_empty() {
        anyhow::bail!(
            "{} names no contract; run `relayer deploy` first",
            path.display()
        );
    }
    let ed25519_secret = read_secret(&config.node.ed25519_key_file)?;
    let account = ChainAccount::from_file(&config.node.chain_key_file)?;
    std::fs::create_dir_all(&config.node.data_dir)
        .with_context(|| format!("creating {}", config.node.data_dir.display()))?;
    let chain = connect_with_retry(&config).await?;
    let net = BoundNet::bind(ed25519_secret, &config.node.p2p_listen).await?;
    let http = std::net::TcpListener::bind(config.node.http_listen).with_context(|| {
        format!(
            "cannot serve the API on {} (port taken?)",
            config.node.http_listen
        )
    })?;
    let node = start_node(NodeSettings {
        name: config.node.name.clone(),
        ed25519_secret,
        account,
        db_path: config.node.data_dir.join("node.sqlite"),
        http: Some(http),
        net,
        metrics: config.metrics.clone(),
        protocol: config.protocol.clone(),
        chain: std::sync::Arc::new(chain),
    })
    .await?;
    println!(
        "{} running: API {}",
        node.name,
        node.api_url.clone().unwrap_or_default()
    );
    shutdown_signal().await;
    tracing::info!("shutting down");
    node.stop().await;
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
