//! Where an epoch's rewards live and how they are read back. A v2 epoch keeps the packed stream
//! it was submitted with ([`crate::packing`]), cut into chunks of [`CHUNK_RECORDS`] records with
//! an index of the id before each chunk, so one mixnode's lookup reads one chunk however large
//! the epoch. An epoch stored by v1 keeps its fixed-width records. Both read back as the
//! fixed-width records the data hash covers.

use cosmwasm_std::Storage;

use crate::error::ContractError;
use crate::packing::{MAX_RECORD_LEN, PackingError, Unpacker};
use crate::records::{REWARD_RECORD_LEN, find_reward, push_reward};
use crate::rules::{MAX_MIXNODE_SCAN, MAX_MIXNODES_CAP, MIXNODE_SCAN_READ_BUDGET};
use crate::state::{CHUNK_RECORDS, EPOCH_CHUNK_INDEX, EPOCH_REWARD_CHUNKS, EPOCH_REWARDS_V1};

// Chunk numbers are u16 keys: the mixnode cap must stay far below what they can number.
const _: () = assert!((MAX_MIXNODES_CAP as usize).div_ceil(CHUNK_RECORDS) < u16::MAX as usize);
// A full `MixnodeRewards` page of v2 epochs (one chunk and the index each) fits the read
// budget: only epochs migrated from v1 cut a page short.
const _: () = assert!(
    MAX_MIXNODE_SCAN as usize
        * (CHUNK_RECORDS * MAX_RECORD_LEN
            + 4 * (MAX_MIXNODES_CAP as usize).div_ceil(CHUNK_RECORDS))
        <= MIXNODE_SCAN_READ_BUDGET
);

/// A submission's packed rewards, decoded and checked.
pub struct UnpackedRewards {
    /// The fixed-width records the data hash covers.
    pub records: Vec<u8>,
    /// Number of mixnodes.
    pub count: u32,
    /// For each chunk after the first: its byte offset in the stream and the id before it.
    chunk_starts: Vec<(usize, u32)>,
}

/// Decodes a submitted stream of at most `max` records, noting where each chunk starts.
pub fn unpack_submission(packed: &[u8], max: u32) -> Result<UnpackedRewards, PackingError> {
    if packed.is_empty() {
        return Err(PackingError::Empty);
    }
    let max_len = max as usize * MAX_RECORD_LEN;
    if packed.len() > max_len {
        return Err(PackingError::TooLong {
            len: packed.len(),
            max_len,
        });
    }
    let mut records = Vec::with_capacity((packed.len() * 3).min(max as usize * REWARD_RECORD_LEN));
    let mut chunk_starts = Vec::new();
    let mut previous = 0u32;
    let mut count = 0u32;
    for item in Unpacker::new(packed, None, max) {
        let unpacked = item?;
        if count > 0 && (count as usize).is_multiple_of(CHUNK_RECORDS) {
            chunk_starts.push((unpacked.offset, previous));
        }
        push_reward(&mut records, &unpacked.reward);
        previous = unpacked.reward.mix_id;
        count += 1;
    }
    Ok(UnpackedRewards {
        records,
        count,
        chunk_starts,
    })
}

/// Stores a checked stream: its chunks and, past one chunk, the index.
pub fn save_rewards(
    storage: &mut dyn Storage,
    epoch: u64,
    packed: &[u8],
    unpacked: &UnpackedRewards,
) {
    let mut bounds: Vec<usize> = vec![0];
    bounds.extend(unpacked.chunk_starts.iter().map(|&(offset, _)| offset));
    bounds.push(packed.len());
    for (chunk, window) in bounds.windows(2).enumerate() {
        // At most MAX_MIXNODES_CAP / CHUNK_RECORDS chunks, far below u16::MAX.
        let chunk = u16::try_from(chunk).unwrap_or(u16::MAX);
        EPOCH_REWARD_CHUNKS.save(storage, (epoch, chunk), &packed[window[0]..window[1]]);
    }
    if !unpacked.chunk_starts.is_empty() {
        let index: Vec<u8> = unpacked
            .chunk_starts
            .iter()
            .flat_map(|&(_, previous)| previous.to_be_bytes())
            .collect();
        EPOCH_CHUNK_INDEX.save(storage, epoch, &index);
    }
}

/// The fixed-width records of a stored epoch.
pub fn load_records(storage: &dyn Storage, epoch: u64) -> Result<Vec<u8>, ContractError> {
    let Some(first) = EPOCH_REWARD_CHUNKS.may_load(storage, (epoch, 0)) else {
        return EPOCH_REWARDS_V1
            .may_load(storage, epoch)
            .ok_or(ContractError::CorruptEpoch { epoch });
    };
    let (befores, _) = chunk_index(storage, epoch)?;
    let mut records = Vec::with_capacity(first.len() * 3 * (befores.len() + 1));
    decode_chunk(&first, None, epoch, &mut records)?;
    for (chunk, &before) in befores.iter().enumerate() {
        let key = (epoch, u16::try_from(chunk + 1).unwrap_or(u16::MAX));
        let bytes = EPOCH_REWARD_CHUNKS
            .may_load(storage, key)
            .ok_or(ContractError::CorruptEpoch { epoch })?;
        decode_chunk(&bytes, Some(before), epoch, &mut records)?;
    }
    Ok(records)
}

/// One mixnode's value in one epoch, and the stored bytes read to find it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lookup {
    /// The uptime, if the epoch holds the mixnode.
    pub uptime_bp: Option<u16>,
    /// Stored value bytes read (the index and one chunk; a v1 epoch's whole record blob).
    pub bytes_read: usize,
}

/// Finds `mix_id` in `epoch`, reading the chunk index and the one chunk that may hold it (a v1
/// epoch: its whole fixed-width blob).
pub fn find_uptime(
    storage: &dyn Storage,
    epoch: u64,
    mix_id: u32,
) -> Result<Lookup, ContractError> {
    let (befores, index_bytes) = chunk_index(storage, epoch)?;
    // Chunk k > 0 holds the ids after befores[k - 1]; the first chunk everything before.
    let chunk = befores.partition_point(|&before| before < mix_id);
    let key = (epoch, u16::try_from(chunk).unwrap_or(u16::MAX));
    let Some(bytes) = EPOCH_REWARD_CHUNKS.may_load(storage, key) else {
        // An epoch without chunks is one v1 stored; a missing later chunk is corruption.
        if chunk > 0 {
            return Err(ContractError::CorruptEpoch { epoch });
        }
        let records = EPOCH_REWARDS_V1.may_load(storage, epoch);
        return Ok(Lookup {
            uptime_bp: records
                .as_deref()
                .and_then(|records| find_reward(records, mix_id)),
            bytes_read: records.map_or(0, |records| records.len()),
        });
    };
    let bytes_read = index_bytes + bytes.len();
    let after = chunk.checked_sub(1).map(|index| befores[index]);
    for item in Unpacker::new(&bytes, after, CHUNK_RECORDS as u32) {
        let reward = item
            .map_err(|_| ContractError::CorruptEpoch { epoch })?
            .reward;
        if reward.mix_id >= mix_id {
            return Ok(Lookup {
                uptime_bp: (reward.mix_id == mix_id).then_some(reward.uptime_bp),
                bytes_read,
            });
        }
    }
    Ok(Lookup {
        uptime_bp: None,
        bytes_read,
    })
}

/// The ids before each chunk after the first, and the stored bytes they took.
fn chunk_index(storage: &dyn Storage, epoch: u64) -> Result<(Vec<u32>, usize), ContractError> {
    let bytes = EPOCH_CHUNK_INDEX
        .may_load(storage, epoch)
        .unwrap_or_default();
    if !bytes.len().is_multiple_of(4) {
        return Err(ContractError::CorruptEpoch { epoch });
    }
    let befores = bytes
        .chunks_exact(4)
        .map(|entry| u32::from_be_bytes([entry[0], entry[1], entry[2], entry[3]]))
        .collect();
    Ok((befores, bytes.len()))
}

fn decode_chunk(
    bytes: &[u8],
    after: Option<u32>,
    epoch: u64,
    records: &mut Vec<u8>,
) -> Result<(), ContractError> {
    for item in Unpacker::new(bytes, after, CHUNK_RECORDS as u32) {
        let reward = item
            .map_err(|_| ContractError::CorruptEpoch { epoch })?
            .reward;
        push_reward(records, &reward);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::MixnodeReward;
    use crate::packing::pack_rewards;
    use crate::records::encode_rewards;
    use cosmwasm_std::testing::MockStorage;

    fn sparse_rewards(count: u32) -> Vec<MixnodeReward> {
        (0..count)
            .map(|i| MixnodeReward {
                mix_id: 5 + i * 3 + i % 7 * 200,
                uptime_bp: (i * 37 % 10_001) as u16,
            })
            .scan(0u32, |last, mut reward| {
                reward.mix_id = reward.mix_id.max(*last + 1);
                *last = reward.mix_id;
                Some(reward)
            })
            .collect()
    }

    #[test]
    fn a_multi_chunk_epoch_reads_back_whole_and_by_mixnode() {
        let rewards = sparse_rewards(CHUNK_RECORDS as u32 * 3 + 17);
        let packed = pack_rewards(&rewards);
        let unpacked = unpack_submission(&packed, 20_000).unwrap();
        assert_eq!(unpacked.records, encode_rewards(&rewards));
        assert_eq!(unpacked.chunk_starts.len(), 3);
        let mut storage = MockStorage::new();
        save_rewards(&mut storage, 7, &packed, &unpacked);
        assert_eq!(load_records(&storage, 7).unwrap(), unpacked.records);
        for reward in rewards.iter().step_by(97).chain(rewards.last()) {
            assert_eq!(
                find_uptime(&storage, 7, reward.mix_id).unwrap().uptime_bp,
                Some(reward.uptime_bp)
            );
        }
        // Ids at and around every chunk boundary, present or not.
        for chunk in 1..4 {
            let boundary = rewards[chunk * CHUNK_RECORDS - 1].mix_id;
            for id in boundary - 1..=boundary + 2 {
                let expected = rewards.iter().find(|r| r.mix_id == id).map(|r| r.uptime_bp);
                assert_eq!(
                    find_uptime(&storage, 7, id).unwrap().uptime_bp,
                    expected,
                    "id {id}"
                );
            }
        }
        assert_eq!(find_uptime(&storage, 7, 0).unwrap().uptime_bp, None);
        assert_eq!(find_uptime(&storage, 7, u32::MAX).unwrap().uptime_bp, None);
    }

    #[test]
    fn a_v1_epoch_reads_from_its_fixed_width_records() {
        let rewards = sparse_rewards(50);
        let mut storage = MockStorage::new();
        EPOCH_REWARDS_V1.save(&mut storage, 3, &encode_rewards(&rewards));
        assert_eq!(load_records(&storage, 3).unwrap(), encode_rewards(&rewards));
        assert_eq!(
            find_uptime(&storage, 3, rewards[10].mix_id).unwrap(),
            Lookup {
                uptime_bp: Some(rewards[10].uptime_bp),
                bytes_read: 50 * REWARD_RECORD_LEN,
            }
        );
        assert_eq!(
            load_records(&storage, 4),
            Err(ContractError::CorruptEpoch { epoch: 4 })
        );
    }
}
