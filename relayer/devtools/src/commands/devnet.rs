//! `relayer-dev devnet`: N nodes and the contract on the embedded chain in this process, with
//! one line per final epoch (and a JSON summary on request).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use relayer_devtools::devnet::{Devnet, DevnetOptions};
use relayer_protocol::SubmitPolicy;

/// Arguments of `relayer-dev devnet`.
#[derive(clap::Args)]
#[command(
    after_help = "Example (the README's demo; add --epochs 3 --summary out.json to stop and report):\n  relayer-dev devnet --nodes 4 --mixnodes 100 --epoch-secs 5"
)]
pub struct Args {
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
    /// Submission policy (staggered, race).
    #[arg(long, default_value = "staggered")]
    policy: SubmitPolicy,
    /// Write a JSON summary of the final epochs here.
    #[arg(long)]
    summary: Option<PathBuf>,
    /// Directory for the nodes' databases (default: a temporary directory).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Sampling interval of the uptime generator.
    #[arg(long, default_value_t = 200)]
    metrics_interval_ms: u64,
}

/// Runs the devnet.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let temp;
    let data_dir = match args.data_dir {
        Some(dir) => dir,
        None => {
            temp = tempfile::tempdir().context("creating a temporary directory")?;
            temp.path().to_path_buf()
        }
    };
    let mut options = DevnetOptions::new(args.nodes, data_dir);
    options.mixnodes = args.mixnodes;
    options.epoch_secs = args.epoch_secs;
    options.policy = args.policy;
    options.metrics_interval_ms = args.metrics_interval_ms;
    run_devnet(options, args.epochs, args.summary).await
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
            .epoch_end_ms(epoch)
            .saturating_sub(relayer_node::now_ms());
        eprintln!(
            "waiting for epoch {epoch} (ends in {:.1} s, then signing and submission)...",
            ends_in as f64 / 1_000.0
        );
        let report = tokio::select! {
            report = devnet.wait_for_final(epoch, timeout) => report,
            _ = tokio::signal::ctrl_c() => break Ok(()),
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
