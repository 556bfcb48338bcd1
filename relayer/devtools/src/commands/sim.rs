//! `relayer-dev sim`: runs the deterministic simulator for one seed or a batch of seeds,
//! prints one line per run and the seed of every failing run, and writes the JSON report.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use relayer_protocol::SubmitPolicy;
use relayer_sim::{BatchConfig, FaultProfile, LatencySummary, PlantedBug, SimReport, run_batch};

/// Arguments of `relayer-dev sim`.
#[derive(clap::Args)]
#[command(
    after_help = "Example (a seeded batch of faulty runs; a failing seed replays alone with --seeds 1):\n  relayer-dev sim --seed 1 --seeds 200 --nodes 4,7,10 --epochs 10"
)]
pub struct Args {
    /// Seed of the (first) run.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Runs, with consecutive seeds.
    #[arg(long, default_value_t = 1)]
    seeds: u64,
    /// Members; a comma-separated list cycles through sizes.
    #[arg(long, value_delimiter = ',', default_value = "4")]
    nodes: Vec<usize>,
    /// Epochs per run.
    #[arg(long, default_value_t = 10)]
    epochs: u64,
    /// Mixnodes per epoch.
    #[arg(long, default_value_t = 8)]
    mixnodes: usize,
    /// Fault profiles (none, network, crash, byzantine, all); a list cycles.
    #[arg(long, value_delimiter = ',', default_value = "all")]
    faults: Vec<FaultProfile>,
    /// Submission policies (staggered, race); a list cycles.
    #[arg(long, value_delimiter = ',', default_value = "staggered")]
    policy: Vec<SubmitPolicy>,
    /// Plant a bug in the production code to see the simulator catch it
    /// (trust-winner-copy, forget-echo-decisions, drop-failed-finalization); needs a build
    /// with the `planted-bugs` feature.
    #[arg(long)]
    planted_bug: Option<PlantedBug>,
    /// Rotate the signer set while running (a member added, one removed, one replaced) in
    /// every run (byzantine members act under each version); needs at least 9 epochs.
    #[arg(long)]
    rotate: bool,
    /// Wide-area delays: members over five regions, 5-150 ms one way with lognormal jitter,
    /// FIFO links of 100 Mbit/s (the batch report gives p50/p95 latency per network size).
    #[arg(long)]
    wan: bool,
    /// Stop starting new runs after this many seconds.
    #[arg(long)]
    budget_secs: Option<u64>,
    /// Print only failing runs (and the totals).
    #[arg(long)]
    quiet: bool,
    /// Write the JSON report here instead of stdout.
    #[arg(long)]
    report: Option<PathBuf>,
}

fn summary_line(run: &SimReport) -> String {
    let config = &run.config;
    let head = format!(
        "seed {} n={} {} {}",
        config.seed, config.nodes, config.faults, config.policy
    );
    if run.passed() {
        let latency = LatencySummary::of(&run.latency);
        format!(
            "{head}: ok, {}/{} epochs final, {} txs, {} checks, {} faults, accepted p50 {} ms, all stored p50 {} ms",
            run.epochs_final,
            run.epochs_simulated,
            run.chain_txs,
            run.invariant_checks,
            run.faults.values().sum::<u64>(),
            latency.accepted_p50_ms,
            latency.stored_p50_ms,
        )
    } else {
        let kinds: Vec<String> = run
            .violations
            .iter()
            .map(|violation| format!("{:?}", violation.kind))
            .collect();
        format!("{head}: FAILED {}", kinds.join(", "))
    }
}

/// Runs the simulator; fails when any run breaks an invariant.
pub fn run(args: Args) -> anyhow::Result<()> {
    let batch = BatchConfig {
        first_seed: args.seed,
        max_runs: args.seeds.max(1),
        budget: args.budget_secs.map_or(Duration::MAX, Duration::from_secs),
        nodes: args.nodes,
        epochs: args.epochs,
        mixnodes: args.mixnodes,
        profiles: args.faults,
        policies: args.policy,
        planted_bug: args.planted_bug,
        rotate: args.rotate,
        wan: args.wan,
    };
    let mut single = None;
    let report = run_batch(&batch, |run| {
        if !args.quiet || !run.passed() {
            eprintln!("{}", summary_line(run));
        }
        single = Some(run.clone());
    })?;
    let json = match (args.seeds, single) {
        (1, Some(run)) => serde_json::to_string_pretty(&run)?,
        _ => serde_json::to_string_pretty(&report)?,
    };
    match &args.report {
        Some(path) => std::fs::write(path, json + "\n")
            .with_context(|| format!("writing {}", path.display()))?,
        None => println!("{json}"),
    }
    eprintln!(
        "{} runs, {} epochs, {} invariant checks, {} faults injected, {} failed, {:.1} s",
        report.runs,
        report.epochs_simulated,
        report.invariant_checks,
        report.faults_injected,
        report.failed.len(),
        report.wall_secs
    );
    if report.failed.is_empty() {
        return Ok(());
    }
    for failed in &report.failed {
        let config = &failed.config;
        eprintln!(
            "reproduce: relayer-dev sim --seed {} --nodes {} --epochs {} --mixnodes {} --faults {} --policy {}{}",
            config.seed,
            config.nodes,
            config.epochs,
            config.mixnodes,
            config.faults,
            config.policy,
            config
                .planted_bug
                .map(|bug| format!(" --planted-bug {bug}"))
                .unwrap_or_default()
        );
    }
    anyhow::bail!("{} run(s) broke an invariant", report.failed.len())
}
