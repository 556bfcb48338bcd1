//! The packed reward stream: how `SubmitEpoch` carries rewards and how the contract stores
//! them, about 2 bytes per mixnode when ids are dense (a third of the fixed-width records the
//! data hash covers, see [`crate::records`]). The signed bytes do not change: the contract
//! expands the stream into the canonical records and hashes those.
//!
//! ```text
//! stream = record*
//! record = u16_be(code << 14 | uptime_bp) [ leb128(gap - 3) if code == 3 ]
//! mix_id = (previous mix_id + 1, or 0 for the first record) + gap, gap = code when code < 3
//! ```
//!
//! Ids ascend strictly by construction, so unsorted or repeated ids cannot be expressed. The
//! encoding is canonical (one stream per reward list): a gap below 3 must use its inline code,
//! and the LEB128 gap must be minimal. Anything else, a cut-off record, an id past `u32::MAX`,
//! an uptime above 10000 bp or more records than allowed, is a typed [`PackingError`].

use thiserror::Error;

use crate::msg::MixnodeReward;
use crate::rules::MAX_UPTIME_BP;

/// The largest gap an inline code carries; larger gaps follow as LEB128.
const INLINE_GAPS: u32 = 3;
/// Bits of the uptime field.
const UPTIME_BITS: u32 = 14;
const UPTIME_MASK: u16 = (1 << UPTIME_BITS) - 1;
/// Longest LEB128 encoding of a `u32`.
const MAX_LEB128_LEN: usize = 5;
/// Longest record: the word and a full LEB128 gap.
pub const MAX_RECORD_LEN: usize = 2 + MAX_LEB128_LEN;

/// Why a packed reward stream is refused.
#[derive(Error, Debug, Clone, PartialEq, Eq)]
pub enum PackingError {
    /// The stream holds no record.
    #[error("packed rewards are empty")]
    Empty,
    /// The stream ends inside a record.
    #[error("packed rewards end inside the record at byte {offset}")]
    Truncated {
        /// Where the cut-off record starts.
        offset: usize,
    },
    /// A gap encoded in more bytes than it needs.
    #[error("the record at byte {offset} encodes its id gap non-minimally")]
    NonCanonicalGap {
        /// Where the record starts.
        offset: usize,
    },
    /// An id beyond `u32::MAX`.
    #[error("the record at position {position} has a mixnode id beyond u32::MAX")]
    IdOverflow {
        /// Record position.
        position: usize,
    },
    /// Uptime above 100 %.
    #[error("uptime of mixnode {mix_id} is {uptime_bp} basis points; at most 10000")]
    UptimeOutOfRange {
        /// The mixnode.
        mix_id: u32,
        /// The uptime given.
        uptime_bp: u16,
    },
    /// More bytes than the allowed records could take; refused before decoding.
    #[error("packed rewards are {len} bytes; {max_len} at most")]
    TooLong {
        /// Bytes given.
        len: usize,
        /// Most bytes the maximum number of records can take.
        max_len: usize,
    },
    /// More records than allowed; decoding stops at the first one too many.
    #[error("more than {max} mixnodes in one epoch")]
    TooMany {
        /// The maximum.
        max: u32,
    },
}

/// Packs rewards given strictly ascending by mix id with uptimes of at most 10000 bp (what the
/// relayer's aggregate always is). Out-of-order input yields a stream that does not decode to it.
pub fn pack_rewards(rewards: &[MixnodeReward]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rewards.len() * 2);
    let mut next = 0u32;
    for reward in rewards {
        let gap = reward.mix_id.wrapping_sub(next);
        let code = gap.min(INLINE_GAPS) as u16;
        out.extend_from_slice(
            &(code << UPTIME_BITS | (reward.uptime_bp & UPTIME_MASK)).to_be_bytes(),
        );
        if gap >= INLINE_GAPS {
            write_leb128(&mut out, gap - INLINE_GAPS);
        }
        next = reward.mix_id.wrapping_add(1);
    }
    out
}

fn write_leb128(out: &mut Vec<u8>, mut value: u32) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// One decoded record and where it started in the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unpacked {
    /// Byte offset of the record.
    pub offset: usize,
    /// The reward.
    pub reward: MixnodeReward,
}

/// Decodes a packed stream record by record. `after` is the id before the stream's first
/// record (`None` at the start of an epoch's stream; a stored chunk passes the id that
/// precedes it). Yields at most `max` records, then [`PackingError::TooMany`].
pub struct Unpacker<'a> {
    bytes: &'a [u8],
    offset: usize,
    next: u64,
    position: usize,
    max: u32,
    failed: bool,
}

impl<'a> Unpacker<'a> {
    /// A decoder over `bytes`.
    pub fn new(bytes: &'a [u8], after: Option<u32>, max: u32) -> Self {
        Self {
            bytes,
            offset: 0,
            next: after.map_or(0, |id| u64::from(id) + 1),
            position: 0,
            max,
            failed: false,
        }
    }

    fn record(&mut self) -> Result<Unpacked, PackingError> {
        let start = self.offset;
        if self.position >= self.max as usize {
            return Err(PackingError::TooMany { max: self.max });
        }
        let word = match self.bytes.get(start..start + 2) {
            Some(&[high, low]) => u16::from_be_bytes([high, low]),
            _ => return Err(PackingError::Truncated { offset: start }),
        };
        self.offset += 2;
        let code = u32::from(word >> UPTIME_BITS);
        let gap = if code < INLINE_GAPS {
            u64::from(code)
        } else {
            u64::from(self.read_leb128(start)?) + u64::from(INLINE_GAPS)
        };
        let mix_id = u32::try_from(self.next + gap).map_err(|_| PackingError::IdOverflow {
            position: self.position,
        })?;
        let uptime_bp = word & UPTIME_MASK;
        if uptime_bp > MAX_UPTIME_BP {
            return Err(PackingError::UptimeOutOfRange { mix_id, uptime_bp });
        }
        self.next = u64::from(mix_id) + 1;
        self.position += 1;
        Ok(Unpacked {
            offset: start,
            reward: MixnodeReward { mix_id, uptime_bp },
        })
    }

    fn read_leb128(&mut self, record: usize) -> Result<u32, PackingError> {
        let mut value = 0u64;
        for index in 0..MAX_LEB128_LEN {
            let Some(&byte) = self.bytes.get(self.offset) else {
                return Err(PackingError::Truncated { offset: record });
            };
            self.offset += 1;
            value |= u64::from(byte & 0x7f) << (7 * index);
            if byte & 0x80 == 0 {
                // A zero final byte after the first one adds nothing: not minimal.
                if index > 0 && byte == 0 {
                    return Err(PackingError::NonCanonicalGap { offset: record });
                }
                return u32::try_from(value).map_err(|_| PackingError::IdOverflow {
                    position: self.position,
                });
            }
        }
        Err(PackingError::NonCanonicalGap { offset: record })
    }
}

impl Iterator for Unpacker<'_> {
    type Item = Result<Unpacked, PackingError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.offset >= self.bytes.len() {
            return None;
        }
        let item = self.record();
        self.failed = item.is_err();
        Some(item)
    }
}

/// Decodes a whole stream of at most `max` records; an empty stream is an error.
pub fn unpack_rewards(bytes: &[u8], max: u32) -> Result<Vec<MixnodeReward>, PackingError> {
    if bytes.is_empty() {
        return Err(PackingError::Empty);
    }
    Unpacker::new(bytes, None, max)
        .map(|item| item.map(|unpacked| unpacked.reward))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reward(mix_id: u32, uptime_bp: u16) -> MixnodeReward {
        MixnodeReward { mix_id, uptime_bp }
    }

    #[test]
    fn dense_ids_take_two_bytes_and_round_trip() {
        let rewards: Vec<_> = (1..=1_000)
            .map(|id| reward(id, (id % 10_001) as u16))
            .collect();
        let packed = pack_rewards(&rewards);
        assert_eq!(packed.len(), 2_000);
        assert_eq!(unpack_rewards(&packed, 1_000), Ok(rewards));
    }

    #[test]
    fn gaps_of_every_size_round_trip() {
        let rewards = vec![
            reward(0, 0),
            reward(1, 10_000),
            reward(3, 1),
            reward(6, 2),
            reward(7 + 127 + 3, 3),
            reward(7 + 127 + 3 + 1 + 128 + 3, 4),
            reward(u32::MAX - 1, 5),
            reward(u32::MAX, 6),
        ];
        assert_eq!(unpack_rewards(&pack_rewards(&rewards), 100), Ok(rewards));
    }

    #[test]
    fn matches_the_documented_bytes() {
        // (1, 10000): gap 1, inline; (2, 9950): gap 0; (70000, 0): gap 69997 = 3 + 69994.
        let packed = pack_rewards(&[reward(1, 10_000), reward(2, 9_950), reward(70_000, 0)]);
        assert_eq!(hex::encode(&packed), "671026dec000eaa204");
    }

    #[test]
    fn a_cut_off_record_is_refused_with_its_offset() {
        let packed = pack_rewards(&[reward(1, 1), reward(500, 2)]);
        for cut in [1, 3, packed.len() - 1] {
            let offset = if cut < 2 { 0 } else { 2 };
            assert_eq!(
                unpack_rewards(&packed[..cut], 10),
                Err(PackingError::Truncated { offset })
            );
        }
        assert_eq!(unpack_rewards(&[], 10), Err(PackingError::Empty));
    }

    #[test]
    fn non_minimal_gaps_are_refused() {
        // Gap 3 + 0 written as two LEB128 bytes.
        assert_eq!(
            unpack_rewards(&[0xc0, 0x00, 0x80, 0x00], 10),
            Err(PackingError::NonCanonicalGap { offset: 0 })
        );
        // Six continuation bytes.
        assert_eq!(
            unpack_rewards(&[0xc0, 0x00, 0x81, 0x81, 0x81, 0x81, 0x81, 0x01], 10),
            Err(PackingError::NonCanonicalGap { offset: 0 })
        );
    }

    #[test]
    fn ids_past_u32_max_are_refused() {
        let mut packed = pack_rewards(&[reward(u32::MAX, 1)]);
        packed.extend_from_slice(&[0x00, 0x01]);
        assert_eq!(
            unpack_rewards(&packed, 10),
            Err(PackingError::IdOverflow { position: 1 })
        );
        // A 5-byte gap above u32::MAX.
        assert_eq!(
            unpack_rewards(&[0xc0, 0x00, 0xff, 0xff, 0xff, 0xff, 0x7f], 10),
            Err(PackingError::IdOverflow { position: 0 })
        );
    }

    #[test]
    fn uptime_above_10000_is_refused() {
        let word: u16 = 1 << 14 | 10_001;
        assert_eq!(
            unpack_rewards(&word.to_be_bytes(), 10),
            Err(PackingError::UptimeOutOfRange {
                mix_id: 1,
                uptime_bp: 10_001
            })
        );
    }

    #[test]
    fn decoding_stops_at_the_first_record_too_many() {
        let packed = pack_rewards(&[reward(1, 1), reward(2, 2), reward(3, 3)]);
        assert_eq!(
            unpack_rewards(&packed, 2),
            Err(PackingError::TooMany { max: 2 })
        );
    }

    #[test]
    fn a_chunk_decodes_from_the_id_before_it() {
        let rewards = [reward(10, 1), reward(11, 2), reward(20, 3)];
        let packed = pack_rewards(&rewards);
        let second = Unpacker::new(&packed, None, 10)
            .nth(1)
            .and_then(Result::ok)
            .map(|unpacked| unpacked.offset);
        assert_eq!(second, Some(3));
        let tail: Vec<_> = Unpacker::new(&packed[3..], Some(10), 10)
            .map(|item| item.map(|unpacked| unpacked.reward))
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(tail, rewards[1..]);
    }
}
