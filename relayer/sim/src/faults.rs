//! The faults of a run, drawn from its seed before it starts: how the network behaves,
//! which members are byzantine and how, who crashes when, which partitions happen, how often
//! writes of official data fail, and whether the targeted crash between echo and finality is
//! armed. Crashed plus byzantine members never exceed f.

use std::collections::BTreeMap;

use rand::Rng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use relayer_protocol::faulty_tolerated;

use crate::adversary::Behaviour;
use crate::config::{FaultProfile, SimConfig};
use crate::world::{EPOCH_MS, GENESIS_MS, LIVENESS_BOUND_MS, epoch_end_ms};

/// How the network and the chain connection behave in a profile.
pub(crate) struct NetworkModel {
    pub(crate) delay_ms: (u64, u64),
    pub(crate) drop: f64,
    pub(crate) duplicate: f64,
    pub(crate) chain_delay_ms: (u64, u64),
}

impl NetworkModel {
    pub(crate) fn for_profile(profile: FaultProfile) -> Self {
        match profile {
            FaultProfile::None => Self {
                delay_ms: (1, 5),
                drop: 0.0,
                duplicate: 0.0,
                chain_delay_ms: (5, 10),
            },
            FaultProfile::Network | FaultProfile::All => Self {
                delay_ms: (1, 80),
                drop: 0.05,
                duplicate: 0.03,
                chain_delay_ms: (5, 60),
            },
            FaultProfile::Crash
            | FaultProfile::Byzantine
            | FaultProfile::Equivocation
            | FaultProfile::Outage => Self {
                delay_ms: (1, 20),
                drop: 0.0,
                duplicate: 0.0,
                chain_delay_ms: (5, 30),
            },
        }
    }
}

/// Faults drawn from the seed before the run starts.
#[derive(Default)]
pub(crate) struct FaultPlan {
    pub(crate) byzantine: BTreeMap<usize, Behaviour>,
    /// `(node, crash at, restart at)`.
    pub(crate) crashes: Vec<(usize, u64, u64)>,
    /// `(start, heal, side)`.
    pub(crate) partitions: Vec<(u64, u64, Vec<bool>)>,
    /// Probability that a write of official data or of an own observation fails (a full or
    /// failing disk).
    pub(crate) write_failure: f64,
    /// Probability that a chain read gets no answer (an RPC error or timeout).
    pub(crate) chain_read_failure: f64,
    /// Probability that a node has no measurements of an ended epoch (no samples). Such a
    /// node cannot observe the epoch, so it counts against f: only profiles without crashed
    /// or byzantine members have it, at most f nodes per epoch.
    pub(crate) missing_measurement: f64,
    /// Crash an honest node right after it echoes an equivocator's block (once per epoch,
    /// when crashed plus byzantine members stay within f).
    pub(crate) crash_after_echo: bool,
}

impl FaultPlan {
    pub(crate) fn draw(config: &SimConfig, rng: &mut ChaCha8Rng) -> Self {
        let n = config.nodes;
        let f = faulty_tolerated(n);
        let mut plan = FaultPlan::default();
        if config.faults == FaultProfile::Equivocation {
            plan.byzantine
                .insert(rng.gen_range(0..n), Behaviour::Equivocate);
        }
        if config.faults.byzantine() {
            let count = if config.faults == FaultProfile::All {
                rng.gen_range(0..=f)
            } else {
                f
            };
            let mut members: Vec<usize> = (0..n).collect();
            members.shuffle(rng);
            for node in members.into_iter().take(count) {
                let drawn = *Behaviour::ALL.choose(rng).unwrap_or(&Behaviour::Flood);
                let behaviour = config.behaviour.unwrap_or(drawn);
                plan.byzantine.insert(node, behaviour);
            }
        }
        if config.faults.disk_faults() {
            plan.write_failure = 0.2;
        }
        if config.faults.network_faults() {
            plan.chain_read_failure = 0.1;
        }
        if config.faults == FaultProfile::Network {
            plan.missing_measurement = 0.1;
        }
        plan.crash_after_echo = config.faults.crash_after_echo()
            && plan
                .byzantine
                .values()
                .any(|behaviour| *behaviour == Behaviour::Equivocate);
        let last_end = epoch_end_ms(config.epochs - 1);
        if config.faults.crashes() {
            plan.draw_crashes(config, f, last_end, rng);
        }
        if config.faults.network_faults() {
            plan.draw_partitions(config, last_end, rng);
        }
        plan
    }

    fn draw_crashes(&mut self, config: &SimConfig, f: usize, last_end: u64, rng: &mut ChaCha8Rng) {
        for epoch in 0..config.epochs {
            if !rng.gen_bool(0.6) {
                continue;
            }
            let at = epoch_end_ms(epoch) - EPOCH_MS + rng.gen_range(0..EPOCH_MS);
            let restart = (at + rng.gen_range(1_000..=15_000)).min(last_end);
            let node = rng.gen_range(0..config.nodes);
            let overlapping = self
                .crashes
                .iter()
                .filter(|(_, start, end)| *start < restart && at < *end)
                .count();
            let busy = self
                .crashes
                .iter()
                .any(|(other, start, end)| *other == node && *start < restart && at < *end);
            // The targeted crash may take one more member down at any time: keep room for it.
            let reserved = usize::from(self.crash_after_echo);
            // Within f, unless the profile goes beyond it (then one member stays up).
            let limit = if config.faults.liveness() {
                f
            } else {
                config.nodes - 1
            };
            if at < restart
                && !busy
                && !self.byzantine.contains_key(&node)
                && self.byzantine.len() + overlapping + reserved < limit
            {
                self.crashes.push((node, at, restart));
            }
        }
    }

    fn draw_partitions(&mut self, config: &SimConfig, last_end: u64, rng: &mut ChaCha8Rng) {
        let n = config.total_nodes();
        let mut free_from = GENESIS_MS;
        for epoch in 0..config.epochs {
            if !rng.gen_bool(0.3) {
                continue;
            }
            let start =
                (epoch_end_ms(epoch) - EPOCH_MS + rng.gen_range(0..EPOCH_MS)).max(free_from);
            let heal = (start + rng.gen_range(500..=4_000)).min(last_end);
            if start >= heal {
                continue;
            }
            let mut side: Vec<bool> = (0..n).map(|_| rng.gen_bool(0.5)).collect();
            side[0] = true;
            side[n - 1] = false;
            side.shuffle(rng);
            self.partitions.push((start, heal, side));
            free_from = heal + 1;
        }
    }

    /// When `epoch` must be final: the bound after its end, stretched by partition time.
    pub(crate) fn deadline(&self, epoch: u64) -> u64 {
        let from = epoch_end_ms(epoch);
        let mut until = from + LIVENESS_BOUND_MS;
        for (start, heal, _) in &self.partitions {
            if *start < until && *heal > from {
                until += heal - (*start).max(from);
            }
        }
        until
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn crashed_plus_byzantine_members_never_exceed_f() {
        for seed in 0..300 {
            for nodes in [4, 7, 10] {
                for profile in [FaultProfile::All, FaultProfile::Equivocation] {
                    let config = SimConfig::new(seed, nodes, 8, profile);
                    let plan = FaultPlan::draw(&config, &mut ChaCha8Rng::seed_from_u64(seed));
                    let f = faulty_tolerated(nodes);
                    let reserved = usize::from(plan.crash_after_echo);
                    assert!(plan.byzantine.len() <= f);
                    for &(node, at, restart) in &plan.crashes {
                        assert!(at < restart && !plan.byzantine.contains_key(&node));
                        let down = plan
                            .crashes
                            .iter()
                            .filter(|(_, start, end)| *start <= at && at < *end)
                            .count();
                        assert!(
                            plan.byzantine.len() + down + reserved <= f,
                            "seed {seed}, n = {nodes}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn the_equivocation_profile_arms_the_targeted_crash() {
        let plan = FaultPlan::draw(
            &SimConfig::new(3, 7, 4, FaultProfile::Equivocation),
            &mut ChaCha8Rng::seed_from_u64(3),
        );
        assert_eq!(
            plan.byzantine.values().copied().collect::<Vec<_>>(),
            vec![Behaviour::Equivocate]
        );
        assert!(plan.crash_after_echo);
        assert!(plan.crashes.is_empty() && plan.partitions.is_empty());
    }

    #[test]
    fn partitions_stretch_the_liveness_deadline() {
        let end = epoch_end_ms(2);
        let mut plan = FaultPlan::default();
        assert_eq!(plan.deadline(2), end + LIVENESS_BOUND_MS);
        plan.partitions
            .push((end - 500, end + 1_500, vec![true, false]));
        plan.partitions
            .push((end + 5_000, end + 6_000, vec![true, false]));
        assert_eq!(plan.deadline(2), end + LIVENESS_BOUND_MS + 1_500 + 1_000);
    }
}
