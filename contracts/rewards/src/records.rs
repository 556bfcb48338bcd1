//! Fixed-width encodings of what the contract stores per epoch: reward records
//! (`u32_be(mix_id) || u16_be(uptime_bp)`, ascending by mix id, the exact bytes the data hash
//! covers) and signature records (`u16_be(index) || signature[64]`).

use cosmwasm_std::HexBinary;

use crate::msg::{MixnodeReward, SignerSignature};

/// Bytes of one reward record.
pub const REWARD_RECORD_LEN: usize = 6;
/// Bytes of one signature record.
pub const SIGNATURE_RECORD_LEN: usize = 2 + SIGNATURE_LEN;
/// Bytes of an ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;
/// Bytes of an ed25519 public key.
pub const PUBKEY_LEN: usize = 32;

/// Encodes rewards in the order given (callers keep them ascending by mix id).
pub fn encode_rewards(rewards: &[MixnodeReward]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rewards.len() * REWARD_RECORD_LEN);
    for reward in rewards {
        push_reward(&mut out, reward);
    }
    out
}

/// Appends one reward's record to `out`.
pub fn push_reward(out: &mut Vec<u8>, reward: &MixnodeReward) {
    out.extend_from_slice(&reward.mix_id.to_be_bytes());
    out.extend_from_slice(&reward.uptime_bp.to_be_bytes());
}

/// Decodes reward records; trailing bytes that do not fill a record are ignored.
pub fn decode_rewards(bytes: &[u8]) -> Vec<MixnodeReward> {
    bytes
        .chunks_exact(REWARD_RECORD_LEN)
        .map(decode_reward)
        .collect()
}

fn decode_reward(record: &[u8]) -> MixnodeReward {
    MixnodeReward {
        mix_id: u32::from_be_bytes([record[0], record[1], record[2], record[3]]),
        uptime_bp: u16::from_be_bytes([record[4], record[5]]),
    }
}

/// Binary search for `mix_id` in ascending reward records; returns its uptime.
pub fn find_reward(bytes: &[u8], mix_id: u32) -> Option<u16> {
    let count = bytes.len() / REWARD_RECORD_LEN;
    let (mut low, mut high) = (0usize, count);
    while low < high {
        let mid = low + (high - low) / 2;
        let record = decode_reward(&bytes[mid * REWARD_RECORD_LEN..(mid + 1) * REWARD_RECORD_LEN]);
        match record.mix_id.cmp(&mix_id) {
            std::cmp::Ordering::Equal => return Some(record.uptime_bp),
            std::cmp::Ordering::Less => low = mid + 1,
            std::cmp::Ordering::Greater => high = mid,
        }
    }
    None
}

/// Encodes signatures whose lengths were already checked to be [`SIGNATURE_LEN`].
pub fn encode_signatures(signatures: &[SignerSignature]) -> Vec<u8> {
    let mut out = Vec::with_capacity(signatures.len() * SIGNATURE_RECORD_LEN);
    for signature in signatures {
        out.extend_from_slice(&signature.index.to_be_bytes());
        out.extend_from_slice(signature.signature.as_slice());
    }
    out
}

/// Decodes signature records.
pub fn decode_signatures(bytes: &[u8]) -> Vec<SignerSignature> {
    bytes
        .chunks_exact(SIGNATURE_RECORD_LEN)
        .map(|record| SignerSignature {
            index: u16::from_be_bytes([record[0], record[1]]),
            signature: HexBinary::from(&record[2..]),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewards(ids: &[u32]) -> Vec<MixnodeReward> {
        ids.iter()
            .map(|&mix_id| MixnodeReward {
                mix_id,
                uptime_bp: (mix_id % 10_001) as u16,
            })
            .collect()
    }

    #[test]
    fn reward_records_round_trip_and_are_big_endian() {
        let input = vec![MixnodeReward {
            mix_id: 0x0102_0304,
            uptime_bp: 0x0506,
        }];
        let bytes = encode_rewards(&input);
        assert_eq!(bytes, vec![1, 2, 3, 4, 5, 6]);
        assert_eq!(decode_rewards(&bytes), input);
    }

    #[test]
    fn binary_search_finds_every_record_and_nothing_else() {
        let input = rewards(&[1, 5, 9, 200, 70_000, u32::MAX]);
        let bytes = encode_rewards(&input);
        for reward in &input {
            assert_eq!(find_reward(&bytes, reward.mix_id), Some(reward.uptime_bp));
        }
        for absent in [0, 2, 10, 199, 201, 69_999, u32::MAX - 1] {
            assert_eq!(find_reward(&bytes, absent), None);
        }
        assert_eq!(find_reward(&[], 1), None);
    }

    #[test]
    fn signature_records_round_trip() {
        let input = vec![
            SignerSignature {
                index: 0,
                signature: HexBinary::from(vec![7u8; SIGNATURE_LEN]),
            },
            SignerSignature {
                index: 255,
                signature: HexBinary::from(vec![9u8; SIGNATURE_LEN]),
            },
        ];
        let bytes = encode_signatures(&input);
        assert_eq!(bytes.len(), 2 * SIGNATURE_RECORD_LEN);
        assert_eq!(decode_signatures(&bytes), input);
    }
}
