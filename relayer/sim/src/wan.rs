//! A wide-area network model: members spread over five regions, a one-way delay between each
//! pair of regions (5 ms inside one, up to 150 ms across the world) with lognormal jitter,
//! each link a FIFO pipe of limited bandwidth (a message waits for the ones before it on its
//! link, then takes its size over the bandwidth, then the propagation delay), and a message
//! never overtakes an earlier one on its link. Used instead of the fault profile's uniform
//! delays when a run asks for it (`SimConfig::wan`).

use std::collections::BTreeMap;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// The regions, in the order of [`ONE_WAY_MS`].
pub const REGIONS: [&str; 5] = [
    "eu-west",
    "eu-central",
    "us-east",
    "us-west",
    "ap-southeast",
];

/// Median one-way delay between regions, ms (symmetric).
const ONE_WAY_MS: [[f64; 5]; 5] = [
    [5.0, 12.0, 40.0, 70.0, 150.0],
    [12.0, 5.0, 48.0, 78.0, 140.0],
    [40.0, 48.0, 5.0, 32.0, 110.0],
    [70.0, 78.0, 32.0, 5.0, 85.0],
    [150.0, 140.0, 110.0, 85.0, 5.0],
];

/// Sigma of the lognormal jitter (about ±25 % at one sigma).
const JITTER_SIGMA: f64 = 0.25;
/// Bandwidth of each link, bytes per ms (100 Mbit/s).
const BYTES_PER_MS: f64 = 12_500.0;

/// The WAN of one run: each node's region and each link's queue.
pub(crate) struct Wan {
    regions: Vec<usize>,
    /// Per directed link: when its last message finished sending, and when it arrives.
    links: BTreeMap<(usize, usize), (u64, u64)>,
}

impl Wan {
    /// `nodes` nodes spread over the regions in turn (node i in region i mod 5).
    pub(crate) fn new(nodes: usize) -> Self {
        Self {
            regions: (0..nodes).map(region_of).collect(),
            links: BTreeMap::new(),
        }
    }

    /// When a message of `bytes` sent at `now_ms` from `from` reaches `to`: after the
    /// messages before it on the link, its transmission time and the propagation delay with
    /// jitter, and never before the previous message on the link arrives.
    pub(crate) fn arrival_ms(
        &mut self,
        rng: &mut ChaCha8Rng,
        now_ms: u64,
        from: usize,
        to: usize,
        bytes: usize,
    ) -> u64 {
        let region = |node: usize| self.regions.get(node).copied().unwrap_or(0);
        let base = ONE_WAY_MS[region(from)][region(to)];
        let propagation = (base * lognormal(rng, JITTER_SIGMA)).round() as u64;
        let transmission = (bytes as f64 / BYTES_PER_MS).ceil() as u64;
        let (free_at, last_arrival) = self.links.get(&(from, to)).copied().unwrap_or((0, 0));
        let sent_at = now_ms.max(free_at) + transmission;
        let arrival = (sent_at + propagation).max(last_arrival);
        self.links.insert((from, to), (sent_at, arrival));
        arrival
    }
}

/// The region of node `node` of a network: the regions in turn.
pub fn region_of(node: usize) -> usize {
    node % REGIONS.len()
}

/// The median one-way delay between nodes `a` and `b` of a network (by their regions): what
/// the network benchmark's WAN profile holds each message back by on the real stack.
pub fn median_one_way(a: usize, b: usize) -> std::time::Duration {
    let ms = ONE_WAY_MS[region_of(a)][region_of(b)];
    std::time::Duration::from_millis(ms as u64)
}

/// A lognormal factor with median 1: `exp(sigma * z)`, `z` standard normal (Box-Muller).
fn lognormal(rng: &mut ChaCha8Rng, sigma: f64) -> f64 {
    let u1: f64 = rng.gen_range(f64::EPSILON..1.0);
    let u2: f64 = rng.r#gen();
    let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
    (sigma * z).exp()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn the_delay_matrix_is_symmetric_and_within_5_to_150_ms() {
        for (a, row) in ONE_WAY_MS.iter().enumerate() {
            assert_eq!(row[a], 5.0);
            for (b, &delay) in row.iter().enumerate() {
                assert_eq!(delay, ONE_WAY_MS[b][a]);
                assert!((5.0..=150.0).contains(&delay));
            }
        }
    }

    #[test]
    fn a_link_delivers_in_order_and_large_messages_take_longer() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut wan = Wan::new(5);
        // Node 0 (eu-west) to node 4 (ap-southeast): about 150 ms each way.
        let mut last = 0;
        for _ in 0..1_000 {
            let arrival = wan.arrival_ms(&mut rng, 0, 0, 4, 100);
            assert!(arrival >= last, "FIFO per link");
            last = arrival;
        }
        // Back to back: a thousand 100-byte messages take at least their transmission time.
        assert!(last >= 1_000 / 125);
        let mut wan = Wan::new(5);
        let small = wan.arrival_ms(&mut ChaCha8Rng::seed_from_u64(2), 0, 0, 1, 1_000);
        let mut wan = Wan::new(5);
        let large = wan.arrival_ms(&mut ChaCha8Rng::seed_from_u64(2), 0, 0, 1, 10_000_000);
        assert_eq!(large - small, 800 - 1, "10 MB at 100 Mbit/s takes 800 ms");
        assert_eq!(Wan::new(8).regions[7], 2, "us-east");
    }

    #[test]
    fn jitter_has_median_one() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut factors: Vec<f64> = (0..10_001)
            .map(|_| lognormal(&mut rng, JITTER_SIGMA))
            .collect();
        factors.sort_by(f64::total_cmp);
        let median = factors[5_000];
        assert!((0.97..1.03).contains(&median), "{median}");
        assert!(factors[0] > 0.0);
    }
}
