//! The simulator on whole networks: reproducibility, a clean fault-free run, the CI budget
//! of seeded faulty runs (zero violations), and planted bugs it must find by seed.

#![allow(clippy::unwrap_used)] // test code

use std::collections::BTreeSet;
use std::time::Duration;

use relayer_protocol::{
    Block, Message, MixnodeReward, Observation, ObservationRef, SubmitPolicy, wire::Codec,
};
use relayer_sim::{BatchConfig, Behaviour, FaultProfile, SimConfig, run, run_batch};

#[test]
fn a_seed_reproduces_its_run_exactly() {
    let config = SimConfig::new(7, 4, 3, FaultProfile::All);
    let first = run(&config).unwrap();
    let second = run(&config).unwrap();
    assert_eq!(first, second);
    let other = run(&SimConfig::new(8, 4, 3, FaultProfile::All)).unwrap();
    assert_ne!(first.trace_hash, other.trace_hash);
}

#[test]
fn a_fault_free_network_finalises_every_epoch_with_one_tx_each() {
    for nodes in [4, 7, 10] {
        let report = run(&SimConfig::new(1, nodes, 4, FaultProfile::None)).unwrap();
        assert!(report.passed(), "{:#?}", report.violations);
        assert_eq!(report.epochs_final, 4, "n = {nodes}");
        assert_eq!(
            report.chain_txs, 4,
            "staggered: one tx per epoch, n = {nodes}"
        );
        assert!(report.invariant_checks > 0);
    }
}

/// The signer set rotates three times while the network runs (a member added, one removed,
/// one replaced; the threshold follows each size) under each profile without byzantine
/// members, nodes reading some versions only after their first epoch ended: no epoch is lost, each is certified by the version governing it, and every member
/// of that version holds its official data (the deadline checks).
#[test]
fn the_network_follows_signer_set_rotations_without_losing_an_epoch() {
    let epochs = 10;
    let mut learned_late = 0;
    for (seed, nodes, faults) in [
        (1, 4, FaultProfile::None),
        (2, 7, FaultProfile::None),
        (3, 4, FaultProfile::Network),
        (4, 7, FaultProfile::Crash),
        (5, 4, FaultProfile::Crash),
    ] {
        let config = SimConfig {
            rotate: true,
            ..SimConfig::new(seed, nodes, epochs, faults)
        };
        let report = run(&config).unwrap();
        let context = format!("seed {seed}, n = {nodes}, {faults}");
        assert!(report.passed(), "{context}: {:#?}", report.violations);
        assert_eq!(report.faults.get("rotation"), Some(&3), "{context}");
        assert_eq!(report.epochs_final, epochs, "{context}");
        // Version 1 governs epochs 0-2, version 2 epochs 3-4, version 3 epochs 5-6, version 4
        // the rest.
        let expected = [(1, 3), (2, 2), (3, 2), (4, epochs - 7)]
            .into_iter()
            .collect();
        assert_eq!(report.epochs_by_version, expected, "{context}");
        learned_late += report
            .faults
            .get("version_learned_late")
            .copied()
            .unwrap_or(0);
    }
    assert!(
        learned_late > 0,
        "some node read a version only after its first epoch ended"
    );
}

/// Every byzantine behaviour while the signer set rotates: an adversary acts under the
/// version governing each epoch it sends for (signer index, members, threshold, version), so
/// it stays as dangerous after a switch; no epoch is lost and no invariant breaks.
#[test]
fn byzantine_members_stay_harmless_across_signer_set_rotations() {
    let epochs = 10;
    for (run_index, &behaviour) in Behaviour::ALL.iter().enumerate() {
        for (seed, nodes) in [(run_index as u64 * 2 + 1, 4), (run_index as u64 * 2 + 2, 7)] {
            let config = SimConfig {
                rotate: true,
                behaviour: Some(behaviour),
                ..SimConfig::new(seed, nodes, epochs, FaultProfile::Byzantine)
            };
            let report = run(&config).unwrap();
            let context = format!("{behaviour}, seed {seed}, n = {nodes}");
            assert!(report.passed(), "{context}: {:#?}", report.violations);
            assert_eq!(report.faults.get("rotation"), Some(&3), "{context}");
            assert_eq!(report.epochs_final, epochs, "{context}");
            // Every adversary is a member of version 2 at least (the plan removes node 1 from
            // version 3 and replaces node 2 in version 4).
            assert!(
                report.faults.contains_key("adversary_under_later_version"),
                "{context}: the adversary acted under a later version: {:?}",
                report.faults
            );
        }
    }
}

/// Over the WAN model (five regions, 5-150 ms one way, FIFO links), with and without network
/// faults: every epoch is final, and each takes at least a cross-region round trip (the
/// observations, the block and its echoes cross it) but stays well inside the liveness bound.
#[test]
fn a_wide_area_network_finalises_every_epoch_within_its_delays() {
    for (seed, faults) in [(1, FaultProfile::None), (2, FaultProfile::Network)] {
        let config = SimConfig {
            wan: true,
            ..SimConfig::new(seed, 16, 4, faults)
        };
        let report = run(&config).unwrap();
        assert!(report.passed(), "{faults}: {:#?}", report.violations);
        assert_eq!(report.epochs_final, 4, "{faults}");
        let latency = relayer_sim::LatencySummary::of(&report.latency);
        assert_eq!(latency.epochs, 4, "{faults}");
        assert!(
            (100..5_000).contains(&latency.accepted_p50_ms),
            "{faults}: {latency:?}"
        );
        assert!(
            latency.stored_p95_ms >= latency.accepted_p50_ms,
            "{latency:?}"
        );
    }
}

/// Protocol v2's work bounds, counted at n = 64 and M = 1000 without faults: one proposal per
/// epoch (the lead's: its backups' wait ends after the epoch is on chain; the bound is
/// f + 1), at most one aggregate per proposer and epoch at each node, one transaction per
/// epoch, and the bytes on the wire per epoch.
#[test]
fn at_n_64_only_the_lead_proposes_and_each_aggregate_is_computed_once() {
    let epochs = 3;
    let config = SimConfig {
        mixnodes: 1_000,
        ..SimConfig::new(1, 64, epochs, FaultProfile::None)
    };
    let report = run(&config).unwrap();
    assert!(report.passed(), "{:#?}", report.violations);
    assert_eq!(report.epochs_final, epochs);
    let f_plus_one = relayer_protocol::faulty_tolerated(64) as u64 + 1;
    let work = &report.work;
    eprintln!("n = 64: {work:?}, {:?}", report.messages);
    assert_eq!(work.proposals, epochs, "the lead alone: {work:?}");
    assert!(
        work.max_aggregates_at_a_node <= work.proposals,
        "one aggregate per proposer and epoch at each node: {work:?}"
    );
    assert_eq!(report.chain_txs, epochs, "one transaction per epoch");
    // Each observation crosses the wire once per recipient, and each block digest once:
    // nothing is re-sent in full (one re-send round of observations would double the bytes),
    // and the epoch fits the 10 MB target.
    let (n, f_plus_one) = (64u64, f_plus_one);
    let once = n * (n - 1) * encoded_observation_bytes(1_000)
        + f_plus_one * (n - 1) * encoded_block_digest_bytes(64);
    for epoch in 0..epochs {
        let bytes = report.messages.bytes_by_epoch[&epoch];
        eprintln!(
            "epoch {epoch}: {:.2} MB on the wire (sending each once: {:.2} MB)",
            bytes as f64 / 1e6,
            once as f64 / 1e6
        );
        assert!(bytes * 10 <= once * 12, "epoch {epoch}: {bytes} bytes");
        assert!(bytes <= 10_000_000, "epoch {epoch}: {bytes} bytes");
    }
}

fn encoded_observation_bytes(mixnodes: u32) -> u64 {
    let observation = Message::Observation(Observation {
        epoch: 1,
        signer_set_version: 1,
        author: 63,
        values: (1..=mixnodes)
            .map(|mix_id| MixnodeReward {
                mix_id,
                uptime_bp: 5_000,
            })
            .collect(),
        signature: vec![0; 64],
    });
    let set: Vec<u32> = (1..=mixnodes).collect();
    Codec::new(&set).encode(&observation).unwrap().len() as u64
}

fn encoded_block_digest_bytes(authors: u16) -> u64 {
    let block = Block {
        epoch: 1,
        signer_set_version: 1,
        proposer: 0,
        observations: (0..authors)
            .map(|author| ObservationRef {
                author,
                digest: [0; 32],
            })
            .collect(),
        data_hash: [0; 32],
    };
    let digest = Message::BlockDigest(block.digest(usize::from(authors)));
    Codec::new(&[1]).encode(&digest).unwrap().len() as u64
}

/// The adversaries of the protocol-v2 review, each a deterministic regression test: per
/// recipient observation versions (two per send, more on every re-send), a proposer flooding
/// blocks over other observation subsets with right and wrong hashes, a proposer that
/// withholds its certificate, and one proposing out of turn (a made-up block for the running
/// epoch, a valid one it never certifies for the last ended epoch: honest members echo it, and
/// it must not keep the lead's backups standing by). No epoch may stall, no honest node may do more than one
/// aggregate per proposer and epoch, and every other invariant holds.
#[test]
fn protocol_v2_adversaries_neither_stall_an_epoch_nor_inflate_work() {
    let mut out_of_turn_echoes = 0;
    for behaviour in [
        Behaviour::EquivocateObservations,
        Behaviour::FloodBlocks,
        Behaviour::WithholdCertificate,
        Behaviour::SplitObservations,
        Behaviour::OutOfTurnBlocks,
    ] {
        for nodes in [4, 7] {
            for seed in 1..=6 {
                let config = SimConfig {
                    behaviour: Some(behaviour),
                    ..SimConfig::new(seed, nodes, 4, FaultProfile::Byzantine)
                };
                let report = run(&config).unwrap();
                assert!(
                    report.passed(),
                    "{behaviour:?}, n = {nodes}, seed {seed}: {:#?}",
                    report.violations
                );
                assert_eq!(report.epochs_final, 4);
                assert!(report.byzantine.values().all(|b| *b == behaviour));
                if behaviour == Behaviour::OutOfTurnBlocks {
                    out_of_turn_echoes += report
                        .faults
                        .get("echo_of_out_of_turn_block")
                        .copied()
                        .unwrap_or(0);
                }
            }
        }
    }
    assert!(
        out_of_turn_echoes > 0,
        "honest members never echoed a block proposed out of turn"
    );
}

/// Wall-time budget of the CI batch, from `SIM_BUDGET_SECS` (default 150 s).
fn budget() -> Duration {
    let secs = std::env::var("SIM_BUDGET_SECS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(150);
    Duration::from_secs(secs)
}

#[test]
fn an_outage_beyond_f_keeps_safety_and_counts_lost_epochs() {
    // More than f members down or abstaining at once: no liveness is promised, every safety
    // invariant still holds, and what could not be certified is reported, not hidden.
    let mut beyond_f = 0;
    let mut lost = 0;
    for seed in 1..=12 {
        let report = run(&SimConfig::new(seed, 4, 6, FaultProfile::Outage)).unwrap();
        assert!(
            report.violations.is_empty(),
            "seed {seed}: {:?}",
            report.violations
        );
        beyond_f += report.faults.get("beyond_f").copied().unwrap_or(0);
        lost += report.faults.get("epoch_lost").copied().unwrap_or(0);
    }
    assert!(beyond_f > 0, "no run took the faulty members past f");
    eprintln!("outage: {beyond_f} crashes beyond f, {lost} epochs lost, no violation");
}

#[test]
fn ci_budget_of_seeded_faulty_runs_has_no_violations() {
    let batch = BatchConfig {
        first_seed: 1,
        max_runs: 100_000,
        budget: budget(),
        nodes: vec![4, 7, 10],
        epochs: 4,
        mixnodes: 8,
        profiles: FaultProfile::ALL.to_vec(),
        policies: vec![SubmitPolicy::Staggered, SubmitPolicy::Race],
        planted_bug: None,
        rotate: false,
        wan: false,
    };
    let mut behaviours = BTreeSet::new();
    let mut fault_kinds = BTreeSet::new();
    let mut lost = 0;
    let report = run_batch(&batch, |run| {
        behaviours.extend(run.byzantine.values().copied());
        fault_kinds.extend(run.faults.keys().cloned());
        lost += run.faults.get("epoch_lost").copied().unwrap_or(0);
    })
    .unwrap();
    eprintln!(
        "simulated {} runs, {} epochs, {} invariant checks, {} faults in {:.1} s",
        report.runs,
        report.epochs_simulated,
        report.invariant_checks,
        report.faults_injected,
        report.wall_secs
    );
    assert!(
        report.failed.is_empty(),
        "failing runs (reproduce with `relayer sim`):\n{}",
        serde_json::to_string_pretty(&report.failed).unwrap()
    );
    assert!(
        report.runs >= 30,
        "only {} runs fit the budget",
        report.runs
    );
    // Only the outage profile (faulty members past f) may lose an epoch, and counts each.
    assert_eq!(report.epochs_final + lost, report.epochs_simulated);
    for kind in [
        "drop",
        "duplicate",
        "partition",
        "crash",
        "official_write_failure",
        "crash_after_echo",
        "equivocation_after_restart",
        "chain_read_failure",
        "missing_measurement",
        "tampered_winner_copy",
    ] {
        assert!(fault_kinds.contains(kind), "no {kind} injected");
    }
    assert_eq!(
        behaviours,
        Behaviour::ALL.iter().copied().collect(),
        "every byzantine behaviour ran"
    );
}

#[cfg(not(feature = "planted-bugs"))]
#[test]
fn a_planted_bug_is_refused_by_a_build_without_the_feature() {
    let config = SimConfig {
        planted_bug: Some(relayer_sim::PlantedBug::TrustWinnerCopy),
        ..SimConfig::new(1, 4, 2, FaultProfile::Byzantine)
    };
    assert_eq!(
        run(&config),
        Err(relayer_sim::SimError::PlantedBugsUnavailable(
            relayer_sim::PlantedBug::TrustWinnerCopy
        ))
    );
}

/// The bugs planted in production code (`relayer-protocol`, `relayer-store`) must be found
/// by seed, by their visible harm.
#[cfg(feature = "planted-bugs")]
mod planted {
    use super::*;
    use relayer_sim::{PlantedBug, ViolationKind};

    /// Searches seeds for the first run of `base` with `bug` planted that breaks `expected`,
    /// then checks the seed reproduces it exactly and that the same run without the bug is
    /// clean.
    fn found_by_seed(base: SimConfig, bug: PlantedBug, expected: ViolationKind) {
        let found = (0..200).find_map(|seed| {
            let config = SimConfig {
                seed,
                planted_bug: Some(bug),
                ..base.clone()
            };
            let report = run(&config).unwrap();
            report
                .violations
                .iter()
                .any(|violation| violation.kind == expected)
                .then_some((config, report))
        });
        let (config, report) = found.unwrap_or_else(|| panic!("{bug:?} went unnoticed"));
        let first = report
            .violations
            .iter()
            .find(|violation| violation.kind == expected);
        eprintln!("{bug:?} found by seed {}: {first:?}", config.seed);
        let replay = run(&config).unwrap();
        assert_eq!(
            replay.violations, report.violations,
            "the seed reproduces it"
        );
        assert_eq!(replay.trace_hash, report.trace_hash);
        let clean = run(&SimConfig {
            planted_bug: None,
            ..config
        })
        .unwrap();
        assert!(clean.passed(), "{:#?}", clean.violations);
    }

    #[test]
    fn a_loser_storing_the_winners_copy_unverified_is_caught() {
        found_by_seed(
            SimConfig::new(0, 4, 4, FaultProfile::All),
            PlantedBug::TrustWinnerCopy,
            ViolationKind::Agreement,
        );
    }

    #[test]
    fn a_store_forgetting_echo_decisions_is_caught_by_a_second_echo_after_a_restart() {
        found_by_seed(
            SimConfig::new(0, 7, 4, FaultProfile::Equivocation),
            PlantedBug::ForgetEchoDecisions,
            ViolationKind::ConflictingEcho,
        );
    }

    #[test]
    fn a_failed_finalization_that_drops_the_epoch_is_caught() {
        found_by_seed(
            SimConfig::new(0, 4, 4, FaultProfile::Crash),
            PlantedBug::DropFailedFinalization,
            ViolationKind::OfficialMissing,
        );
    }
}
