//! The artificial uptime generator standing in for real mixnode measurements: every interval
//! it makes one sample (0..=100 %) per mixnode and writes the batch to SQLite. Seeded: each
//! mixnode has a reliability shared by all nodes (from the seed), and each node adds its own
//! deterministic noise (from the seed and its name), so honest observations are close but not
//! identical.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sha2::{Digest, Sha256};

use crate::store::Sample;

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
