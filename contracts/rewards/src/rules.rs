//! The rules every party applies, written once: the contract enforces them, the relayer's
//! protocol, simulator and auditor call these same functions and constants.

/// Most members a signer set may have (signer indices fit in a u16, and gas stays bounded).
pub const MAX_MEMBERS: usize = 256;
/// Most signatures one `ed25519_batch_verify` takes in the VM (cosmwasm-crypto's
/// `MAX_COUNT_ED25519_BATCH`): a full set's signatures are verified in one batch.
pub const VM_ED25519_BATCH_MAX: usize = 256;
const _: () = assert!(MAX_MEMBERS <= VM_ED25519_BATCH_MAX);
/// Uptime of 100 % in basis points: the largest value a reward may carry.
pub const MAX_UPTIME_BP: u16 = 10_000;
/// Highest `max_mixnodes_per_epoch` accepted, to keep one submission within block gas.
pub const MAX_MIXNODES_CAP: u32 = 20_000;

/// The default threshold `floor(2n/3) + 1`: the smallest t with 3t > n. It tolerates
/// f = floor((n-1)/3) faulty members both ways: t > f means every certified block was checked
/// by an honest member, and t <= n - f keeps epochs live with f members down. A higher t buys
/// nothing in safety and costs liveness.
pub fn default_threshold(members: usize) -> usize {
    2 * members / 3 + 1
}

/// Whether `threshold` satisfies `3t > n` and `1 <= t <= n` for `members` = n.
pub fn threshold_is_valid(threshold: usize, members: usize) -> bool {
    threshold >= 1 && threshold <= members && 3 * threshold > members
}

/// f = floor((n-1)/3): the faulty members a set of n tolerates.
pub fn faulty_tolerated(members: usize) -> usize {
    members.saturating_sub(1) / 3
}

/// Whether a signer set of `members` is within `1..=MAX_MEMBERS`.
pub fn member_count_is_valid(members: usize) -> bool {
    (1..=MAX_MEMBERS).contains(&members)
}

/// Longest minimum rotation delay the admin may set, in epochs.
pub const MAX_ROTATION_DELAY_EPOCHS: u64 = 1_000;
/// How far past its earliest allowed epoch a rotation may be scheduled: a typo cannot lock
/// rotations for longer than this.
pub const MAX_ROTATION_HORIZON_EPOCHS: u64 = 1_000;

/// Largest stored signer set, in bytes of its JSON: the VM refuses to write a storage value
/// above 128 KiB, so a set of 256 members with endpoints near their length limit (about
/// 175 KB) must be refused with a clear error at registration, not fail in the VM.
pub const MAX_SIGNER_SET_BYTES: usize = 128 * 1024;

/// Epochs per `Epochs` page: default and most.
pub const DEFAULT_EPOCHS_PAGE: u32 = 10;
/// See [`DEFAULT_EPOCHS_PAGE`].
pub const MAX_EPOCHS_PAGE: u32 = 30;
/// Epochs one `MixnodeRewards` page scans: default and most.
pub const DEFAULT_MIXNODE_SCAN: u32 = 10;
/// See [`DEFAULT_MIXNODE_SCAN`].
pub const MAX_MIXNODE_SCAN: u32 = 20;
/// Stored bytes one `MixnodeRewards` page may read before it stops early (its
/// `next_start_after` resumes after the last epoch read). A v2 epoch costs one chunk (at most
/// ~7 KB), so a full page stays below it; an epoch migrated from v1 is read whole (6 bytes per
/// mixnode, 120 KB at the cap), and without the budget a page of those would exceed wasmd's
/// default query gas limit.
pub const MIXNODE_SCAN_READ_BUDGET: usize = 192 * 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_threshold_is_two_thirds_plus_one_and_valid() {
        let expected = [
            (1, 1),
            (2, 2),
            (3, 3),
            (4, 3),
            (7, 5),
            (10, 7),
            (100, 67),
            (256, 171),
        ];
        for (members, threshold) in expected {
            assert_eq!(default_threshold(members), threshold, "n = {members}");
            assert!(threshold_is_valid(threshold, members), "n = {members}");
        }
    }

    #[test]
    fn thresholds_outside_the_rule_are_invalid() {
        for (threshold, members) in [(0, 4), (1, 4), (5, 4), (2, 6), (1, 3)] {
            assert!(
                !threshold_is_valid(threshold, members),
                "t={threshold} n={members}"
            );
        }
        assert!(threshold_is_valid(4, 4));
    }

    #[test]
    fn f_is_the_largest_with_3f_below_n() {
        for n in 1..=MAX_MEMBERS {
            let f = faulty_tolerated(n);
            assert!(3 * f < n && 3 * (f + 1) >= n, "n = {n}");
        }
        assert!(!member_count_is_valid(0) && !member_count_is_valid(MAX_MEMBERS + 1));
    }
}
