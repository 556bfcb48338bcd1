//! Observation values and their lower-median aggregate.

use nym_rewards::rules::MAX_UPTIME_BP;
use thiserror::Error;

use crate::MixnodeReward;

/// Why observation values are unusable.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AggregateError {
    /// The values do not cover exactly the configured mixnode set, in order.
    #[error("values do not cover exactly the {expected} configured mixnodes in order")]
    WrongMixnodeSet {
        /// Size of the configured set.
        expected: usize,
    },
    /// An uptime above 10000 basis points.
    #[error("uptime {uptime_bp} of mixnode {mix_id} is above 10000 basis points")]
    UptimeOutOfRange {
        /// The mixnode.
        mix_id: u32,
        /// The value.
        uptime_bp: u16,
    },
    /// Nothing to aggregate.
    #[error("no observations to aggregate")]
    Empty,
}

/// Checks that `values` cover exactly `mixnodes` (ascending) with uptimes within
/// [`MAX_UPTIME_BP`].
pub fn validate_values(values: &[MixnodeReward], mixnodes: &[u32]) -> Result<(), AggregateError> {
    if values.len() != mixnodes.len()
        || values
            .iter()
            .zip(mixnodes)
            .any(|(value, &id)| value.mix_id != id)
    {
        return Err(AggregateError::WrongMixnodeSet {
            expected: mixnodes.len(),
        });
    }
    match values.iter().find(|value| value.uptime_bp > MAX_UPTIME_BP) {
        Some(value) => Err(AggregateError::UptimeOutOfRange {
            mix_id: value.mix_id,
            uptime_bp: value.uptime_bp,
        }),
        None => Ok(()),
    }
}

/// Per-mixnode lower median (index `(k-1)/2` after sorting) of `k` validated observations
/// over the same mixnode set, so every member computes byte-identical aggregates.
pub fn lower_median(
    observations: &[&[MixnodeReward]],
) -> Result<Vec<MixnodeReward>, AggregateError> {
    let first = observations.first().ok_or(AggregateError::Empty)?;
    let mut column = Vec::with_capacity(observations.len());
    let mut out = Vec::with_capacity(first.len());
    for (position, reward) in first.iter().enumerate() {
        column.clear();
        for observation in observations {
            let value = observation
                .get(position)
                .filter(|value| value.mix_id == reward.mix_id)
                .ok_or(AggregateError::WrongMixnodeSet {
                    expected: first.len(),
                })?;
            column.push(value.uptime_bp);
        }
        // Selection, not a full sort: the element a sort would put at the lower-median index
        // (n = 128 spent a fifth of its CPU sorting columns).
        let index = (column.len() - 1) / 2;
        let (_, median, _) = column.select_nth_unstable(index);
        out.push(MixnodeReward {
            mix_id: reward.mix_id,
            uptime_bp: *median,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(values: &[u16]) -> Vec<MixnodeReward> {
        values
            .iter()
            .enumerate()
            .map(|(i, &uptime_bp)| MixnodeReward {
                mix_id: i as u32 + 1,
                uptime_bp,
            })
            .collect()
    }

    #[test]
    fn lower_median_takes_index_k_minus_1_over_2() {
        let a = obs(&[10, 0, 500]);
        let b = obs(&[30, 10_000, 100]);
        let c = obs(&[20, 5, 300]);
        let d = obs(&[40, 7, 200]);
        let median = lower_median(&[&a, &b, &c, &d]).unwrap();
        // Sorted columns: [10,20,30,40] -> 20; [0,5,7,10000] -> 5; [100,200,300,500] -> 200.
        assert_eq!(median, obs(&[20, 5, 200]));
        let median = lower_median(&[&a, &b, &c]).unwrap();
        assert_eq!(median, obs(&[20, 5, 300]));
    }

    #[test]
    fn median_is_order_independent() {
        let a = obs(&[1, 9]);
        let b = obs(&[5, 2]);
        let c = obs(&[3, 7]);
        assert_eq!(lower_median(&[&a, &b, &c]), lower_median(&[&c, &a, &b]));
    }

    proptest::proptest! {
        /// Selection picks exactly what sorting each column would put at index (k-1)/2.
        #[test]
        fn selection_equals_the_sorted_columns_median(
            columns in proptest::collection::vec(
                proptest::collection::vec(0u16..=10_000, 1..40),
                1..8,
            ),
            k in 1usize..40,
        ) {
            let mixnodes = columns.len();
            let observations: Vec<Vec<MixnodeReward>> = (0..k)
                .map(|i| {
                    let row: Vec<u16> = columns
                        .iter()
                        .map(|column| column[i % column.len()])
                        .collect();
                    obs(&row)
                })
                .collect();
            let refs: Vec<&[MixnodeReward]> = observations.iter().map(Vec::as_slice).collect();
            let median = lower_median(&refs).unwrap();
            for (position, reward) in median.iter().enumerate().take(mixnodes) {
                let mut column: Vec<u16> =
                    observations.iter().map(|o| o[position].uptime_bp).collect();
                column.sort_unstable();
                proptest::prop_assert_eq!(reward.uptime_bp, column[(k - 1) / 2]);
            }
        }
    }

    #[test]
    fn mismatched_sets_are_errors() {
        let a = obs(&[1, 2]);
        let b = obs(&[1]);
        assert!(lower_median(&[&a, &b]).is_err());
        assert_eq!(lower_median(&[]), Err(AggregateError::Empty));
        assert!(validate_values(&a, &[1, 2]).is_ok());
        assert!(validate_values(&a, &[1, 3]).is_err());
        assert!(validate_values(&obs(&[10_001]), &[1]).is_err());
    }
}
