//! `relayer-dev bench`: headless devnets on loopback for several network sizes and both
//! submission policies. Per epoch it measures the latency from the epoch end to the contract
//! accepting (block time) and to every node holding official data, and from the nodes' own
//! counters the chain transactions, messages and bytes sent, signature verifications, median
//! computations and the process CPU time. Optionally it floods one node's public API while it
//! measures, to show what API traffic costs the protocol. Results go to JSON and SVG plots.

mod flood;
pub(crate) mod plot;
mod system;

use std::path::PathBuf;
use std::time::Duration;

use relayer_node::chain;
use relayer_node::metrics::NodeMetrics;
use relayer_protocol::SubmitPolicy;
use serde::{Deserialize, Serialize};

use crate::DevError;
use crate::devnet::{Devnet, DevnetOptions};

pub use flood::FloodStats;

pub use system::{cpu_seconds, raise_open_files_limit};

/// What to measure.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Network sizes.
    pub sizes: Vec<usize>,
    /// Policies.
    pub policies: Vec<SubmitPolicy>,
    /// Mixnodes per epoch.
    pub mixnodes: u32,
    /// Measured epochs per case (after one warm-up epoch).
    pub epochs: u64,
    /// Sampling interval of the generator, fixed so it does not compete with the protocol.
    pub metrics_interval_ms: u64,
    /// Where `network.json` and the plots go.
    pub out_dir: PathBuf,
    /// Concurrent clients flooding node 0's API during the measured epochs (0: none).
    pub api_flood: usize,
    /// Emulate a wide-area network on the real stack (see `DevnetOptions::wan`).
    pub wan: bool,
    /// Time between the embedded chain's blocks, one case each (0: instant blocks).
    pub block_intervals_ms: Vec<u64>,
}

impl BenchOptions {
    /// Every (size, policy, block interval) combination, in that nesting order; instant
    /// blocks when no interval is given.
    pub fn cases(&self) -> Vec<Case> {
        let intervals = if self.block_intervals_ms.is_empty() {
            vec![0]
        } else {
            self.block_intervals_ms.clone()
        };
        let mut cases = Vec::new();
        for &nodes in &self.sizes {
            for &policy in &self.policies {
                for &block_ms in &intervals {
                    cases.push(Case {
                        nodes,
                        policy,
                        block_ms,
                    });
                }
            }
        }
        cases
    }
}

/// Nearest-rank percentiles of a sample, ms.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Median.
    pub p50: u64,
    /// 95th percentile.
    pub p95: u64,
    /// Largest.
    pub max: u64,
}

impl Percentiles {
    /// Of `samples` (empty: zeros).
    pub fn of(samples: &[u64]) -> Self {
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        let rank = |p: f64| -> u64 {
            if sorted.is_empty() {
                return 0;
            }
            let index = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
            sorted[index]
        };
        Self {
            p50: rank(0.50),
            p95: rank(0.95),
            max: sorted.last().copied().unwrap_or(0),
        }
    }
}

/// One target of the issue, checked against a measurement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetCheck {
    /// What is measured.
    pub name: String,
    /// The bound.
    pub target: f64,
    /// The measurement.
    pub measured: f64,
    /// Whether the measurement is within the bound.
    pub met: bool,
}

/// Network-wide counts per epoch, averaged over the measured epochs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PerEpoch {
    /// Submission transactions.
    pub chain_txs: f64,
    /// Messages sent by all nodes.
    pub messages: f64,
    /// Messages dropped by all nodes (full or expired outbound queues, rate limits, links
    /// down): each costs a re-send round.
    #[serde(default)]
    pub messages_dropped: f64,
    /// Bytes sent by all nodes.
    pub bytes: f64,
    /// ed25519 verifications by all nodes.
    pub signature_verifications: f64,
    /// Lower-median aggregates computed by all nodes.
    pub aggregates: f64,
    /// CPU seconds of the whole process (all nodes, chain, generators).
    pub cpu_secs: f64,
}

/// The result of one (size, policy) case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseResult {
    /// Members.
    pub nodes: usize,
    /// Policy.
    pub policy: SubmitPolicy,
    /// Mixnodes.
    pub mixnodes: u32,
    /// Epoch length used.
    pub epoch_secs: u64,
    /// Whether the links had the emulated wide-area delays (the targets are for loopback).
    #[serde(default)]
    pub wan: bool,
    /// Time between the chain's blocks (0: instant blocks).
    #[serde(default)]
    pub block_ms: u64,
    /// Staggered slot spacing used.
    #[serde(default)]
    pub submit_slot_ms: u64,
    /// Measured epochs.
    pub epochs: u64,
    /// Epoch end -> contract accepts (block time).
    pub accepted_ms: Percentiles,
    /// Epoch end -> every node holds official data.
    pub all_official_ms: Percentiles,
    /// Counts per epoch.
    pub per_epoch: PerEpoch,
    /// n^2, for reference beside the message counts.
    pub n_squared: u64,
    /// The issue's targets for this case.
    pub targets: Vec<TargetCheck>,
    /// The API flood during the measured epochs, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_flood: Option<FloodStats>,
    /// Why the case produced no measurement, when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl CaseResult {
    /// A case that could not be measured, and why.
    fn failed(options: &BenchOptions, case: Case, error: String) -> Self {
        Self {
            nodes: case.nodes,
            policy: case.policy,
            mixnodes: options.mixnodes,
            epoch_secs: epoch_secs_for(case.nodes),
            wan: options.wan,
            block_ms: case.block_ms,
            submit_slot_ms: submit_slot_ms_for(case.block_ms),
            epochs: 0,
            accepted_ms: Percentiles::default(),
            all_official_ms: Percentiles::default(),
            per_epoch: PerEpoch::default(),
            n_squared: (case.nodes * case.nodes) as u64,
            targets: Vec::new(),
            api_flood: None,
            error: Some(error),
        }
    }
}

/// Everything one `relayer bench` run measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchReport {
    /// Unix seconds.
    pub generated_at: u64,
    /// Logical CPUs of the machine.
    pub cpus: usize,
    /// One entry per (size, policy).
    pub cases: Vec<CaseResult>,
}

/// Sum of the counters of every running node.
#[derive(Debug, Clone, Copy, Default)]
struct Totals {
    messages: u64,
    dropped: u64,
    bytes: u64,
    chain_txs: u64,
    verifications: u64,
    aggregates: u64,
    cpu_secs: f64,
}

impl Totals {
    fn read(devnet: &Devnet) -> Self {
        let mut totals = Totals {
            cpu_secs: cpu_seconds(),
            ..Totals::default()
        };
        for node in devnet.running() {
            let protocol = node.metrics.protocol();
            totals.messages += NodeMetrics::get(&node.metrics.messages_sent);
            totals.dropped += NodeMetrics::get(&node.metrics.messages_dropped);
            totals.bytes += NodeMetrics::get(&node.metrics.bytes_sent);
            totals.chain_txs += NodeMetrics::get(&node.metrics.chain_txs);
            totals.verifications += protocol.signature_verifications;
            totals.aggregates += protocol.aggregates_computed;
        }
        totals
    }

    fn per_epoch(self, before: Totals, epochs: u64) -> PerEpoch {
        let per = |after: u64, before: u64| after.saturating_sub(before) as f64 / epochs as f64;
        PerEpoch {
            chain_txs: per(self.chain_txs, before.chain_txs),
            messages: per(self.messages, before.messages),
            messages_dropped: per(self.dropped, before.dropped),
            bytes: per(self.bytes, before.bytes),
            signature_verifications: per(self.verifications, before.verifications),
            aggregates: per(self.aggregates, before.aggregates),
            cpu_secs: (self.cpu_secs - before.cpu_secs) / epochs as f64,
        }
    }
}

/// One (size, policy, block interval) combination.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    /// Members.
    pub nodes: usize,
    /// Submission policy.
    pub policy: SubmitPolicy,
    /// Time between the chain's blocks (0: instant).
    pub block_ms: u64,
}

/// Staggered slot spacing for a chain whose blocks are `block_ms` apart: two block times plus
/// 300 ms, so the next rank finds the earlier rank's transaction on chain. A submission waits
/// for a block after the epoch end (the contract refuses an epoch its block time has not
/// ended), then for the block that includes it: with one block time per slot, rank 1 still
/// submitted (2 transactions per epoch at 1 s and 5 s blocks).
pub fn submit_slot_ms_for(block_ms: u64) -> u64 {
    2 * block_ms + 300
}

/// Epoch length for `n` members: long enough that an epoch's work ends before the next.
pub fn epoch_secs_for(nodes: usize) -> u64 {
    (nodes as u64 / 8).max(3)
}

/// Re-send interval for `n` members: a round of n^2 observation re-sends must not start
/// before the first round has been delivered (at n = 64 a 1 s interval re-sent 24 MB a second
/// and the epoch never caught up).
pub fn resend_interval_ms_for(nodes: usize) -> u64 {
    (nodes as u64 * 50).max(1_000)
}

fn target(name: &str, bound: f64, measured: f64) -> TargetCheck {
    TargetCheck {
        name: name.to_string(),
        target: bound,
        measured,
        met: measured <= bound,
    }
}

/// The protocol-v2 issue's loopback targets: p50 and p95 epoch end to acceptance (n = 16, 64,
/// 128), bytes per epoch (n = 64), staggered transactions per epoch, and the last node
/// holding official data within 100 ms of acceptance (p50, n <= 64). Latency targets are for
/// instant blocks; a chain with block times adds them.
fn targets_for(result: &CaseResult) -> Vec<TargetCheck> {
    let mut targets = Vec::new();
    if result.wan {
        return targets; // the targets are loopback ones
    }
    let latency_bounds = match result.nodes {
        16 => Some((60.0, 120.0)),
        64 => Some((600.0, 1_000.0)),
        128 => Some((2_000.0, 3_500.0)),
        _ => None,
    };
    if let (Some((p50, p95)), 0) = (latency_bounds, result.block_ms) {
        let accepted = &result.accepted_ms;
        targets.push(target(
            "p50 epoch end -> accepted, ms",
            p50,
            accepted.p50 as f64,
        ));
        targets.push(target(
            "p95 epoch end -> accepted, ms",
            p95,
            accepted.p95 as f64,
        ));
    }
    if result.nodes == 64 {
        targets.push(target("MB per epoch", 10.0, result.per_epoch.bytes / 1e6));
    }
    if result.nodes <= 64 {
        let after = result
            .all_official_ms
            .p50
            .saturating_sub(result.accepted_ms.p50);
        targets.push(target(
            "p50 acceptance -> every node holds the data, ms",
            100.0,
            after as f64,
        ));
    }
    if result.policy == SubmitPolicy::Staggered {
        targets.push(target(
            "chain txs per epoch (staggered)",
            1.05,
            result.per_epoch.chain_txs,
        ));
    }
    targets
}

/// Runs one case: a devnet of `nodes`, one warm-up epoch, then `epochs` measured ones.
pub async fn run_case(options: &BenchOptions, case: Case) -> Result<CaseResult, DevError> {
    let Case {
        nodes,
        policy,
        block_ms,
    } = case;
    let dir =
        tempfile::tempdir().map_err(|err| DevError::io("creating a temporary directory", err))?;
    // At least two blocks per epoch, so an epoch's transaction lands before the next ends.
    let epoch_secs = epoch_secs_for(nodes).max(2 * block_ms.div_ceil(1_000));
    let mut devnet_options = DevnetOptions::new(nodes, dir.path().to_path_buf());
    devnet_options.mixnodes = options.mixnodes;
    devnet_options.epoch_secs = epoch_secs;
    devnet_options.policy = policy;
    devnet_options.metrics_interval_ms = options.metrics_interval_ms;
    devnet_options.resend_interval_ms = resend_interval_ms_for(nodes);
    devnet_options.wan = options.wan;
    devnet_options.block_interval_ms = block_ms;
    devnet_options.submit_slot_ms = submit_slot_ms_for(block_ms);
    let devnet = Devnet::start(devnet_options).await?;
    let timeout = Duration::from_secs(epoch_secs * 4 + 10);
    let warm_up = devnet.current_epoch() + 1;
    tracing::info!(
        nodes,
        ?policy,
        block_ms,
        "warming up until epoch {warm_up} is final"
    );
    devnet.wait_until_stored(warm_up, timeout).await?;
    let flood = match (
        options.api_flood,
        devnet.node(0).and_then(|n| n.api_url.clone()),
    ) {
        (clients, Some(url)) if clients > 0 => Some(flood::Flood::start(&url, clients)),
        _ => None,
    };
    let before = Totals::read(&devnet);
    let mut accepted = Vec::new();
    let mut all_official = Vec::new();
    for epoch in warm_up + 1..=warm_up + options.epochs {
        devnet.wait_until_stored(epoch, timeout).await?;
        let (accepted_ms, all_ms) = epoch_latency(&devnet, epoch).await?;
        tracing::info!(nodes, ?policy, epoch, accepted_ms, all_ms, "epoch final");
        accepted.push(accepted_ms);
        all_official.push(all_ms);
    }
    let per_epoch = Totals::read(&devnet).per_epoch(before, options.epochs);
    let api_flood = match flood {
        Some(flood) => Some(flood.stop().await),
        None => None,
    };
    devnet.stop().await;
    let mut result = CaseResult {
        nodes,
        policy,
        mixnodes: options.mixnodes,
        epoch_secs,
        wan: options.wan,
        block_ms,
        submit_slot_ms: submit_slot_ms_for(block_ms),
        epochs: options.epochs,
        accepted_ms: Percentiles::of(&accepted),
        all_official_ms: Percentiles::of(&all_official),
        per_epoch,
        n_squared: (nodes * nodes) as u64,
        targets: Vec::new(),
        api_flood,
        error: None,
    };
    result.targets = targets_for(&result);
    Ok(result)
}

/// (epoch end -> accepted by block time, epoch end -> last node stored), ms.
async fn epoch_latency(devnet: &Devnet, epoch: u64) -> Result<(u64, u64), DevError> {
    let record = chain::epoch_record(devnet.chain.as_ref(), epoch)
        .await?
        .ok_or(DevError::NotOnChain(epoch))?;
    let end_ms = devnet.clock.epoch_end_ms(epoch);
    let accepted_ms = (record.time.nanos() / 1_000_000).saturating_sub(end_ms);
    let mut last_stored = 0;
    for node in devnet.running() {
        let stored = node
            .store
            .official_stored_at(epoch)?
            .ok_or_else(|| DevError::Missing {
                node: node.name.clone(),
                epoch,
            })?;
        last_stored = last_stored.max(stored);
    }
    Ok((accepted_ms, last_stored.saturating_sub(end_ms)))
}

/// Runs every case, writes `network.json` and the plots into `out_dir`.
pub async fn run_bench(options: &BenchOptions) -> Result<BenchReport, DevError> {
    let largest = options.sizes.iter().copied().max().unwrap_or(0);
    raise_open_files_limit(open_files_needed(largest))?;
    let mut cases = Vec::new();
    for case in options.cases() {
        let result = match run_case(options, case).await {
            Ok(result) => result,
            Err(err) => {
                tracing::error!(?case, "case failed: {err}");
                CaseResult::failed(options, case, err.to_string())
            }
        };
        cases.push(result);
    }
    let report = BenchReport {
        generated_at: relayer_node::now_ms() / 1_000,
        cpus: std::thread::available_parallelism().map_or(1, usize::from),
        cases,
    };
    std::fs::create_dir_all(&options.out_dir)
        .map_err(|err| DevError::io(format!("creating {}", options.out_dir.display()), err))?;
    let json_path = options.out_dir.join("network.json");
    std::fs::write(&json_path, serde_json::to_string_pretty(&report)? + "\n")
        .map_err(|err| DevError::io(format!("writing {}", json_path.display()), err))?;
    plot::latency(&report, &options.out_dir.join("latency.svg"))?;
    plot::work(&report, &options.out_dir.join("messages.svg"))?;
    Ok(report)
}

/// File descriptors `nodes` members in one process need: one libp2p connection per pair
/// (two ends, both in this process; a second one dialled at the same moment is closed, see
/// `relayer_node::connections`), then per node its databases (7 connections, each holding the
/// file and its WAL, and the shared memory), two listeners and HTTP connections, and headroom.
/// Measured at n = 64: 4,032 connection ends and 15 database files per node.
pub fn open_files_needed(nodes: usize) -> u64 {
    let nodes = nodes as u64;
    nodes * nodes.saturating_sub(1) + 24 * nodes + 512
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        assert_eq!(Percentiles::of(&[]), Percentiles::default());
        let p = Percentiles::of(&[5, 1, 4, 2, 3]);
        assert_eq!((p.p50, p.p95, p.max), (3, 5, 5));
        let samples: Vec<u64> = (1..=100).collect();
        let p = Percentiles::of(&samples);
        assert_eq!((p.p50, p.p95, p.max), (50, 95, 100));
    }

    #[test]
    fn targets_follow_the_issue() {
        let mut result = CaseResult {
            nodes: 64,
            policy: SubmitPolicy::Staggered,
            mixnodes: 1_000,
            epoch_secs: 8,
            wan: false,
            block_ms: 0,
            submit_slot_ms: 300,
            epochs: 5,
            accepted_ms: Percentiles {
                p50: 590,
                p95: 1_200,
                max: 1_300,
            },
            all_official_ms: Percentiles {
                p50: 650,
                ..Percentiles::default()
            },
            per_epoch: PerEpoch {
                chain_txs: 1.2,
                bytes: 9e6,
                ..PerEpoch::default()
            },
            n_squared: 4_096,
            targets: vec![],
            api_flood: None,
            error: None,
        };
        let checks = |result: &CaseResult| -> Vec<(String, bool)> {
            targets_for(result)
                .into_iter()
                .map(|t| (t.name, t.met))
                .collect()
        };
        let named = |pairs: &[(&str, bool)]| -> Vec<(String, bool)> {
            pairs.iter().map(|(n, m)| (n.to_string(), *m)).collect()
        };
        assert_eq!(
            checks(&result),
            named(&[
                ("p50 epoch end -> accepted, ms", true),
                ("p95 epoch end -> accepted, ms", false),
                ("MB per epoch", true),
                ("p50 acceptance -> every node holds the data, ms", true),
                ("chain txs per epoch (staggered)", false),
            ])
        );
        result.block_ms = 1_000;
        result.policy = SubmitPolicy::Race;
        assert_eq!(
            checks(&result),
            named(&[
                ("MB per epoch", true),
                ("p50 acceptance -> every node holds the data, ms", true),
            ]),
            "latency targets are for instant blocks, the tx target for staggered"
        );
        result.wan = true;
        assert!(checks(&result).is_empty(), "the targets are loopback ones");
    }

    #[test]
    fn cases_nest_sizes_policies_and_block_intervals() {
        let options = BenchOptions {
            sizes: vec![4, 16],
            policies: vec![SubmitPolicy::Staggered],
            mixnodes: 10,
            epochs: 1,
            metrics_interval_ms: 1_000,
            out_dir: PathBuf::new(),
            api_flood: 0,
            wan: false,
            block_intervals_ms: vec![0, 5_000],
        };
        let cases: Vec<(usize, u64)> = options
            .cases()
            .iter()
            .map(|c| (c.nodes, c.block_ms))
            .collect();
        assert_eq!(cases, [(4, 0), (4, 5_000), (16, 0), (16, 5_000)]);
        assert_eq!(submit_slot_ms_for(5_000), 10_300);
    }
}
