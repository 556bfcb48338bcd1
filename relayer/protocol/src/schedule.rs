//! The per-epoch schedule: each epoch ranks members by `sha256(epoch || key)`. The member of
//! rank `r` submits `r * submit_slot` after it is certified (staggered submission), and proposes in
//! groups of `f + 1` ranks: group 0 at once, each later group from the slot of its first rank
//! counted from the epoch end (not from anyone's certification, which peers could misreport),
//! if the member has not seen the epoch on chain by then (its last chain read). Within group 0
//! rank 0 leads: the others are its backups and propose only if the epoch is not on chain
//! after a wait (see `machine/proposing.rs`). Ranks rotate per epoch, so no member pays every
//! epoch's fee, only one transaction per epoch is expected, and without faults one block is
//! proposed (at most `f + 1`: group 0 holds an honest member, since at most `f` are faulty).

use sha2::{Digest, Sha256};

/// Rank of `key` among `members` for `epoch` (0 = first to submit).
pub fn submission_rank<'a>(
    epoch: u64,
    key: &[u8; 32],
    members: impl IntoIterator<Item = &'a [u8; 32]>,
) -> usize {
    let own = rank_score(epoch, key);
    members
        .into_iter()
        .filter(|member| *member != key)
        .filter(|member| (rank_score(epoch, member), *member) < (own, key))
        .count()
}

/// The slot of `rank` counted from `from_ms`: `from_ms + rank * slot_ms`. Submission counts
/// from the member's certification, the proposer groups from the epoch end.
pub fn submission_slot_ms(from_ms: u64, rank: usize, slot_ms: u64) -> u64 {
    from_ms.saturating_add((rank as u64).saturating_mul(slot_ms))
}

/// From when the member of `rank` may propose: ranks come in groups of `group_size` (f + 1);
/// group 0 proposes at the epoch end, a later group from the submission slot of its first rank.
pub fn proposing_from_ms(epoch_end_ms: u64, rank: usize, group_size: usize, slot_ms: u64) -> u64 {
    let first_of_group = rank - rank % group_size.max(1);
    submission_slot_ms(epoch_end_ms, first_of_group, slot_ms)
}

/// The position in `members` of `epoch`'s lead (rank 0), if there are members: the one with
/// the least `sha256(epoch || key)` (ties, impossible between distinct keys, by key).
pub fn lead_position<'a>(
    epoch: u64,
    members: impl IntoIterator<Item = &'a [u8; 32]>,
) -> Option<usize> {
    members
        .into_iter()
        .enumerate()
        .min_by_key(|(_, key)| (rank_score(epoch, key), **key))
        .map(|(position, _)| position)
}

fn rank_score(epoch: u64, member: &[u8; 32]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(epoch.to_be_bytes());
    hasher.update(member);
    hasher.finalize().into()
}

/// Whether the member of `rank` is a backup of the epoch's lead (rank 0): the rest of
/// proposer group 0, which proposes only once the lead had its time.
pub fn is_backup_proposer(rank: usize, group_size: usize) -> bool {
    rank > 0 && rank < group_size
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_are_a_permutation_that_changes_with_the_epoch() {
        let members: Vec<[u8; 32]> = (0..7u8).map(|i| [i; 32]).collect();
        let mut seen_first = std::collections::BTreeSet::new();
        for epoch in 0..40 {
            let mut ranks: Vec<usize> = members
                .iter()
                .map(|key| submission_rank(epoch, key, &members))
                .collect();
            let first = ranks.iter().position(|&r| r == 0).unwrap();
            seen_first.insert(first);
            assert_eq!(lead_position(epoch, &members), Some(first));
            ranks.sort_unstable();
            assert_eq!(ranks, (0..7).collect::<Vec<_>>());
        }
        assert!(seen_first.len() > 3, "rank 0 rotates among members");
    }

    #[test]
    fn proposers_come_in_groups_of_f_plus_one() {
        // n = 7, f = 2: ranks 0-2 at the epoch end, 3-5 from rank 3's slot, 6 from rank 6's.
        let from: Vec<u64> = (0..7)
            .map(|rank| proposing_from_ms(1_000, rank, 3, 250))
            .collect();
        assert_eq!(from, [1_000, 1_000, 1_000, 1_750, 1_750, 1_750, 2_500]);
        assert_eq!(
            proposing_from_ms(1_000, 5, 0, 250),
            2_250,
            "a zero group is one rank"
        );
    }

    #[test]
    fn the_rest_of_group_0_backs_up_the_lead() {
        let backups: Vec<usize> = (0..7).filter(|&rank| is_backup_proposer(rank, 3)).collect();
        assert_eq!(backups, [1, 2], "n = 7, f = 2");
        assert!(
            !is_backup_proposer(0, 1) && !is_backup_proposer(1, 1),
            "f = 0: no backups"
        );
    }

    #[test]
    fn slots_are_spaced() {
        assert_eq!(submission_slot_ms(1_000, 0, 250), 1_000);
        assert_eq!(submission_slot_ms(1_000, 3, 250), 1_750);
        assert_eq!(submission_slot_ms(u64::MAX, 3, 250), u64::MAX);
    }
}
