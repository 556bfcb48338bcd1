//! `relayer-dev bench`: runs the network benchmark and prints one line per case.

use std::path::PathBuf;

use relayer_devtools::bench::{BenchOptions, run_bench};
use relayer_protocol::SubmitPolicy;

/// Arguments of `relayer-dev bench`.
#[derive(clap::Args)]
#[command(
    after_help = "Example (what make bench-network runs, in a release build):\n  relayer-dev bench --sizes 4,16,64 --policies staggered,race --mixnodes 1000 --epochs 5 \\\n    --out bench/results"
)]
pub struct Args {
    /// Network sizes, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "4,16,64")]
    sizes: Vec<usize>,
    /// Policies, comma-separated (staggered, race).
    #[arg(long, value_delimiter = ',', default_value = "staggered,race")]
    policies: Vec<SubmitPolicy>,
    /// Mixnodes per epoch.
    #[arg(long, default_value_t = 1_000)]
    mixnodes: u32,
    /// Measured epochs per case (after one warm-up epoch).
    #[arg(long, default_value_t = 5)]
    epochs: u64,
    /// Sampling interval of the metrics generator.
    #[arg(long, default_value_t = 1_000)]
    metrics_interval_ms: u64,
    /// Output directory for network.json, latency.svg and messages.svg.
    #[arg(long, default_value = "bench/results")]
    out: PathBuf,
    /// Time between the embedded chain's blocks, comma-separated, one case each (0: instant
    /// blocks). The staggered slot spacing is twice this plus 300 ms, as an operator sets it
    /// (a submission waits for a block after the epoch end, then for the block including it).
    #[arg(long, value_delimiter = ',', default_value = "0")]
    block_ms: Vec<u64>,
    /// Concurrent clients flooding node 0's public API while epochs are measured.
    #[arg(long, default_value_t = 0)]
    api_flood: usize,
    /// Emulate a wide-area network: members over five regions, each message held back by the
    /// one-way delay between them (5-150 ms), in user space.
    #[arg(long)]
    wan: bool,
}

/// Runs the benchmark.
pub async fn run(args: Args) -> anyhow::Result<()> {
    if args.epochs == 0 {
        anyhow::bail!("--epochs must be at least 1");
    }
    let options = BenchOptions {
        sizes: args.sizes,
        policies: args.policies,
        mixnodes: args.mixnodes,
        epochs: args.epochs,
        metrics_interval_ms: args.metrics_interval_ms,
        out_dir: args.out,
        api_flood: args.api_flood,
        wan: args.wan,
        block_intervals_ms: args.block_ms,
    };
    let report = run_bench(&options).await?;
    for case in &report.cases {
        if let Some(error) = &case.error {
            println!("n={:<3} {}: FAILED: {error}", case.nodes, case.policy);
            continue;
        }
        let missed: Vec<&str> = case
            .targets
            .iter()
            .filter(|target| !target.met)
            .map(|target| target.name.as_str())
            .collect();
        println!(
            "n={:<3} {:<9} blocks {:>4} ms | accepted p50 {:>5} ms p95 {:>5} ms | all nodes p50 {:>5} ms | {:.2} txs, {:.0} msgs ({:.0} dropped), {:.0} KiB, {:.0} verifications, {:.0} medians, {:.2} CPU s per epoch{}",
            case.nodes,
            case.policy,
            case.block_ms,
            case.accepted_ms.p50,
            case.accepted_ms.p95,
            case.all_official_ms.p50,
            case.per_epoch.chain_txs,
            case.per_epoch.messages,
            case.per_epoch.messages_dropped,
            case.per_epoch.bytes / 1024.0,
            case.per_epoch.signature_verifications,
            case.per_epoch.aggregates,
            case.per_epoch.cpu_secs,
            if missed.is_empty() {
                String::new()
            } else {
                format!(" | MISSED: {}", missed.join(", "))
            }
        );
    }
    println!("wrote {}", options.out_dir.join("network.json").display());
    Ok(())
}
