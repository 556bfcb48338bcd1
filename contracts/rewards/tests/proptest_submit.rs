//! Random submissions against the real contract: never a panic, and state changes exactly when
//! the submission is valid.

mod common;

use common::*;
use cosmwasm_std::HexBinary;
use nym_rewards::msg::{MixnodeReward, SignerSignature};
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct RandomSubmission {
    epoch: u64,
    version: u32,
    submitter: usize,
    mix_ids: Vec<u32>,
    uptimes: Vec<u16>,
    signers: Vec<usize>,
    corrupt_signature: Option<usize>,
}

fn submission() -> impl Strategy<Value = RandomSubmission> {
    (
        0u64..4,
        prop_oneof![Just(1u32), 0u32..4],
        0usize..5,
        prop::collection::vec(0u32..60, 0..12),
        prop::collection::vec(prop_oneof![0u16..=10_000, 9_990u16..=u16::MAX], 12),
        prop::collection::vec(0usize..5, 0..6),
        prop::option::of(0usize..6),
    )
        .prop_map(
            |(epoch, version, submitter, mut mix_ids, uptimes, signers, corrupt)| {
                // Mostly sorted ids so that many cases get past validation.
                if epoch % 2 == 0 {
                    mix_ids.sort_unstable();
                }
                RandomSubmission {
                    epoch,
                    version,
                    submitter,
                    mix_ids,
                    uptimes,
                    signers,
                    corrupt_signature: corrupt,
                }
            },
        )
}

/// An independent statement of the acceptance rule (epochs 0..=2 have ended; 4 members,
/// threshold 3; member index 4 is an outsider).
fn expected_valid(s: &RandomSubmission, stored: bool) -> bool {
    let sorted = s.mix_ids.windows(2).all(|w| w[0] < w[1]);
    let uptimes_ok = s.uptimes[..s.mix_ids.len()].iter().all(|&u| u <= 10_000);
    let signers_ok = s.signers.windows(2).all(|w| w[0] < w[1])
        && s.signers.iter().all(|&i| i < 4)
        && s.signers.len() >= 3
        && s.corrupt_signature.is_none_or(|c| c >= s.signers.len());
    !stored
        && s.epoch <= 2
        && s.version == 1
        && s.submitter < 4
        && !s.mix_ids.is_empty()
        && s.mix_ids.len() <= MAX_MIXNODES as usize
        && sorted
        && uptimes_ok
        && signers_ok
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn random_submissions_never_panic_and_only_valid_ones_change_state(
        submissions in prop::collection::vec(submission(), 1..6)
    ) {
        let mut suite = Suite::new();
        let outsider = suite.app.api().addr_make("outsider");
        suite.end_epoch(2);
        for s in submissions {
            let rewards: Vec<MixnodeReward> = s
                .mix_ids
                .iter()
                .zip(&s.uptimes)
                .map(|(&mix_id, &uptime_bp)| MixnodeReward { mix_id, uptime_bp })
                .collect();
            let valid_signers: Vec<usize> = s.signers.iter().map(|&i| i.min(3)).collect();
            let mut signatures = suite.sign(1, s.epoch, &rewards, &valid_signers);
            for (signature, &claimed) in signatures.iter_mut().zip(&s.signers) {
                signature.index = claimed as u16;
            }
            if let Some(SignerSignature { signature, .. }) =
                s.corrupt_signature.and_then(|c| signatures.get_mut(c))
            {
                let mut bytes = signature.to_vec();
                bytes[0] ^= 0x80;
                *signature = HexBinary::from(bytes);
            }
            let sender = if s.submitter < 4 {
                suite.member(1, s.submitter).address.clone()
            } else {
                outsider.clone()
            };
            let before = suite.epoch(s.epoch);
            let result = suite.submit(&sender, s.epoch, s.version, rewards.clone(), signatures);
            let after = suite.epoch(s.epoch);
            // Signatures for an index claimed by a different member are invalid too.
            let remapped = s.signers.iter().any(|&i| i > 3);
            let expect_ok = expected_valid(&s, before.is_some()) && !remapped;
            prop_assert_eq!(result.is_ok(), expect_ok, "{:?}: {:?}", s, result.err());
            if expect_ok {
                let stored = after.expect("stored");
                prop_assert_eq!(stored.rewards, rewards);
                prop_assert_eq!(stored.submitter, sender);
            } else {
                prop_assert_eq!(before, after);
            }
        }
    }
}
