//! Many seeded runs under a wall-time budget: what CI and the soak command run. Seeds are
//! consecutive; network sizes and policies cycle with the seed, so every run is reproducible
//! from its own [`SimConfig`].

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use relayer_protocol::{PlantedBug, SubmitPolicy};

use crate::config::{FaultProfile, SimConfig, SimError};
use crate::report::{SimReport, Violation};
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
    /// Rotate the signer set in every run whose profile has no byzantine members.
    #[serde(default)]
    pub rotate: bool,
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
            rotate: self.rotate && SimConfig::may_rotate(faults),
        }
    }
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
        wall_secs: 0.0,
    };
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
        if !run_report.passed() {
            report.failed.push(FailedRun {
                config: run_report.config.clone(),
                violations: run_report.violations.clone(),
            });
        }
    }
    report.wall_secs = started.elapsed().as_secs_f64();
    Ok(report)
}
