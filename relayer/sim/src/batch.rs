//! Many seeded runs under a wall-time budget: what CI and the soak command run. Seeds are
//! consecutive; network sizes and policies cycle with the seed, so every run is reproducible
//! from its own [`SimConfig`].

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use relayer_protocol::{PlantedBug, SubmitPolicy};

use crate::config::{FaultProfile, SimConfig, SimError};
use crate::report::{Latency, SimReport, Violation};
use crate::world::run;

/// A batch of runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchConfig {
    /// Seed of the first run.
    pub first_seed: u64,
    /// Most runs.
    pub max_runs: u64,
    /// Stop starting runs after this much wall time.
    pub budget: Duration,
    /// Network sizes to cycle through.
    pub nodes: Vec<usize>,
    /// Epochs per run.
    pub epochs: u64,
    /// Mixnodes per epoch.
    pub mixnodes: usize,
    /// Fault profiles to cycle through.
    pub profiles: Vec<FaultProfile>,
    /// Policies to cycle through.
    pub policies: Vec<SubmitPolicy>,
    /// A planted bug for every run.
    pub planted_bug: Option<PlantedBug>,
    /// Rotate the signer set in every run (byzantine members follow each version).
    #[serde(default)]
    pub rotate: bool,
    /// Wide-area network delays in every run.
    #[serde(default)]
    pub wan: bool,
}

/// A failing run: its configuration (enough to reproduce it) and what broke.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedRun {
    /// The run, reproducible with `relayer sim` from these fields.
    pub config: SimConfig,
    /// What broke.
    pub violations: Vec<Violation>,
}

/// Totals of a batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchReport {
    /// What was run.
    pub batch: BatchConfig,
    /// Runs completed.
    pub runs: u64,
    /// Epochs simulated across runs.
    pub epochs_simulated: u64,
    /// Epochs final across runs.
    pub epochs_final: u64,
    /// Invariant checks across runs.
    pub invariant_checks: u64,
    /// Faults injected across runs.
    pub faults_injected: u64,
    /// Runs with violations.
    pub failed: Vec<FailedRun>,
    /// Latency percentiles over every epoch of the runs of each network size.
    pub latency_by_nodes: BTreeMap<usize, LatencySummary>,
    /// Wall time, seconds.
    pub wall_secs: f64,
}

impl BatchConfig {
    /// The `index`-th run of the batch.
    pub fn run_config(&self, index: u64) -> SimConfig {
        let pick = |len: usize| (index % len.max(1) as u64) as usize;
        let nodes = self.nodes.get(pick(self.nodes.len())).copied().unwrap_or(4);
        let faults = self
            .profiles
            .get(pick(self.profiles.len()))
            .copied()
            .unwrap_or(FaultProfile::All);
        // Policies advance once per full cycle of sizes, so every size meets every policy.
        let policy = self
            .policies
            .get((index / self.nodes.len().max(1) as u64) as usize % self.policies.len().max(1))
            .copied()
            .unwrap_or_default();
        SimConfig {
            seed: self.first_seed + index,
            nodes,
            epochs: self.epochs,
            mixnodes: self.mixnodes,
            faults,
            policy,
            planted_bug: self.planted_bug,
            behaviour: None,
            rotate: self.rotate,
            wan: self.wan,
        }
    }
}

/// Latency percentiles over the epochs of the runs of one network size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Epochs counted.
    pub epochs: usize,
    /// From the epoch's end to the contract accepting it: median, ms.
    pub accepted_p50_ms: u64,
    /// ... 95th percentile, ms.
    pub accepted_p95_ms: u64,
    /// From the epoch's end until the last node stored its official data: median, ms.
    pub stored_p50_ms: u64,
    /// ... 95th percentile, ms.
    pub stored_p95_ms: u64,
}

impl LatencySummary {
    /// The summary of `latencies`.
    pub fn of(latencies: &Latency) -> Self {
        Self {
            epochs: latencies.accepted_ms.len(),
            accepted_p50_ms: percentile(&latencies.accepted_ms, 50),
            accepted_p95_ms: percentile(&latencies.accepted_ms, 95),
            stored_p50_ms: percentile(&latencies.stored_ms, 50),
            stored_p95_ms: percentile(&latencies.stored_ms, 95),
        }
    }
}

/// The `p`-th percentile (nearest rank) of `values`, 0 when empty.
fn percentile(values: &[u64], p: usize) -> u64 {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    if sorted.is_empty() {
        return 0;
    }
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted[rank - 1]
}

/// Runs the batch, calling `progress` after every run.
pub fn run_batch(
    batch: &BatchConfig,
    mut progress: impl FnMut(&SimReport),
) -> Result<BatchReport, SimError> {
    let started = Instant::now();
    let mut report = BatchReport {
        batch: batch.clone(),
        runs: 0,
        epochs_simulated: 0,
        epochs_final: 0,
        invariant_checks: 0,
        faults_injected: 0,
        failed: Vec::new(),
        latency_by_nodes: BTreeMap::new(),
        wall_secs: 0.0,
    };
    let mut latencies: BTreeMap<usize, Latency> = BTreeMap::new();
    for index in 0..batch.max_runs {
        if started.elapsed() >= batch.budget {
            break;
        }
        let run_report = run(&batch.run_config(index))?;
        progress(&run_report);
        report.runs += 1;
        report.epochs_simulated += run_report.epochs_simulated;
        report.epochs_final += run_report.epochs_final;
        report.invariant_checks += run_report.invariant_checks;
        report.faults_injected += run_report.faults.values().sum::<u64>();
        let size = latencies.entry(run_report.config.nodes).or_default();
        size.accepted_ms
            .extend_from_slice(&run_report.latency.accepted_ms);
        size.stored_ms
            .extend_from_slice(&run_report.latency.stored_ms);
        if !run_report.passed() {
            report.failed.push(FailedRun {
                config: run_report.config.clone(),
                violations: run_report.violations.clone(),
            });
        }
    }
    report.latency_by_nodes = latencies
        .iter()
        .map(|(&nodes, latency)| (nodes, LatencySummary::of(latency)))
        .collect();
    report.wall_secs = started.elapsed().as_secs_f64();
    Ok(report)
}
