//! Uptime sampling: every interval one batch of samples (0..=100 %) is written to SQLite (on
//! the sampler's own connection), from an operator's report ([`crate::sample_source`]) or from
//! the artificial generator standing in for real mixnode measurements. Seeded: each mixnode has a reliability shared by all
//! nodes (from the seed), and each node adds its own deterministic noise (from the seed and
//! its name), so honest observations are close but not identical.

use std::sync::Arc;
use std::time::Duration;

use nym_rewards::msg::EpochClock;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use relayer_store::Sample;
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use crate::config::SamplingSection;
use crate::db::Db;
use crate::now_ms;
use crate::sample_source::{read_report, samples_from};

/// Produces sample batches.
#[derive(Debug)]
pub struct UptimeGenerator {
    mixnodes: Vec<u32>,
    reliability: Vec<u8>,
    rng: StdRng,
}

fn seed_bytes(parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

impl UptimeGenerator {
    /// A generator for `mixnodes`, with the shared `seed` and this node's `node_name`.
    pub fn new(mixnodes: Vec<u32>, seed: u64, node_name: &str) -> Self {
        let mut shared = StdRng::from_seed(seed_bytes(&[b"shared", &seed.to_be_bytes()]));
        let reliability = mixnodes
            .iter()
            .map(|_| shared.gen_range(40..=100))
            .collect();
        let rng = StdRng::from_seed(seed_bytes(&[
            b"node",
            &seed.to_be_bytes(),
            node_name.as_bytes(),
        ]));
        Self {
            mixnodes,
            reliability,
            rng,
        }
    }

    /// One sample per mixnode at `at_ms`, assigned to `epoch`.
    pub fn batch(&mut self, epoch: u64, at_ms: u64) -> Vec<Sample> {
        self.mixnodes
            .iter()
            .zip(&self.reliability)
            .map(|(&mix_id, &reliability)| {
                let noise: i16 = self.rng.gen_range(-10..=10);
                let uptime_pct = (i16::from(reliability) + noise).clamp(0, 100) as u8;
                Sample {
                    epoch,
                    mix_id,
                    at_ms,
                    uptime_pct,
                }
            })
            .collect()
    }
}

/// Samples every `settings.interval_ms` until shutdown, and prunes raw samples older than
/// the retention window (the per-epoch running sums stay).
pub async fn run_sampler(
    mixnodes: Vec<u32>,
    node_name: String,
    db: Arc<Db>,
    clock: EpochClock,
    settings: SamplingSection,
    client: reqwest::Client,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut sorted = mixnodes.clone();
    sorted.sort_unstable();
    let mut generator = UptimeGenerator::new(mixnodes, settings.seed, &node_name);
    let mut tick = tokio::time::interval(Duration::from_millis(settings.interval_ms));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut pruned_before = 0;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        let at_ms = now_ms();
        let Some(epoch) = clock.epoch_at_ms(at_ms) else {
            continue;
        };
        let batch = match read_report(&settings.source, &client).await {
            None => generator.batch(epoch, at_ms),
            Some(Ok(report)) => match samples_from(&report, &sorted, epoch, at_ms) {
                Ok(batch) => batch,
                Err(err) => {
                    tracing::warn!(node = %node_name, source = %settings.source, "uptime report refused: {err}");
                    continue;
                }
            },
            Some(Err(err)) => {
                tracing::warn!(node = %node_name, source = %settings.source, "no uptime report: {err}");
                continue;
            }
        };
        if let Err(err) = db.sampler(move |store| store.insert_samples(&batch)).await {
            tracing::error!(node = %node_name, "storing samples: {err}");
        }
        let keep_from = epoch.saturating_sub(settings.retention_epochs);
        if keep_from > pruned_before {
            if let Err(err) = db
                .sampler(move |store| store.prune_samples_before(keep_from))
                .await
            {
                tracing::error!(node = %node_name, "pruning samples: {err}");
            }
            pruned_before = keep_from;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generator_is_seeded_and_in_range() {
        let mut a = UptimeGenerator::new(vec![1, 2, 3], 7, "node0");
        let mut b = UptimeGenerator::new(vec![1, 2, 3], 7, "node0");
        let mut c = UptimeGenerator::new(vec![1, 2, 3], 7, "node1");
        let (first, second) = (a.batch(1, 10), b.batch(1, 10));
        assert_eq!(first, second, "same seed, same samples");
        assert!(first.iter().all(|s| s.uptime_pct <= 100 && s.epoch == 1));
        let third = c.batch(1, 10);
        for (x, y) in first.iter().zip(&third) {
            assert!(
                (i16::from(x.uptime_pct) - i16::from(y.uptime_pct)).abs() <= 20,
                "nodes agree roughly"
            );
        }
    }
}
