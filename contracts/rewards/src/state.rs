//! Storage layout. Per epoch, a small summary (read first by every submission, so the
//! duplicate rejection stays cheap), the packed reward stream in chunks ([`crate::packing`])
//! and the raw signature records ([`crate::records`]), instead of one storage write per
//! mixnode. Per signer-set version, besides the whole set, the threshold and keys in one raw
//! entry and an index from address to member: all a submission reads of the set.
//! Epochs stored by v1 keep their fixed-width records ([`EPOCH_REWARDS_V1`]); see
//! [`crate::migration`].

use cosmwasm_schema::cw_serde;
use cosmwasm_std::{Addr, Storage};
use cw_storage_plus::{Item, Map, PrimaryKey};

use crate::clock::EpochClock;
use crate::error::ContractError;
use crate::msg::{EpochSummary, Member, PendingDelay};
use crate::records::PUBKEY_LEN;

/// Contract-wide settings.
#[cw_serde]
pub struct Config {
    /// May rotate the signer set and hand over the role.
    pub admin: Addr,
    /// The epoch clock.
    pub clock: EpochClock,
    /// Most mixnodes per epoch.
    pub max_mixnodes_per_epoch: u32,
    /// Least number of epochs between a rotation and the first epoch the new set governs
    /// (absent in v1 state: 0).
    #[serde(default)]
    pub min_rotation_delay_epochs: u64,
    /// A lowered delay waiting for the current one to pass (absent in v1 state).
    #[serde(default)]
    pub pending_rotation_delay: Option<PendingDelay>,
}

impl Config {
    /// Applies a pending lower delay once `current_epoch` reaches it.
    pub fn settle_rotation_delay(&mut self, current_epoch: Option<u64>) {
        if let Some(pending) = self.pending_rotation_delay
            && current_epoch.is_some_and(|current| current >= pending.from_epoch)
        {
            self.min_rotation_delay_epochs = pending.delay_epochs;
            self.pending_rotation_delay = None;
        }
    }

    /// Sets the rotation delay: a higher one at once, a lower one only after the current delay
    /// has passed, so that lowering it cannot shorten the notice of a rotation.
    pub fn set_rotation_delay(&mut self, delay_epochs: u64, current_epoch: Option<u64>) {
        self.settle_rotation_delay(current_epoch);
        if delay_epochs >= self.min_rotation_delay_epochs {
            self.min_rotation_delay_epochs = delay_epochs;
            self.pending_rotation_delay = None;
        } else {
            self.pending_rotation_delay = Some(PendingDelay {
                delay_epochs,
                from_epoch: current_epoch
                    .unwrap_or(0)
                    .saturating_add(self.min_rotation_delay_epochs),
            });
        }
    }
}

/// A signer-set version.
#[cw_serde]
pub struct SignerSet {
    /// Version, from 1.
    pub version: u32,
    /// First epoch it governs.
    pub effective_from_epoch: u64,
    /// Signatures needed.
    pub threshold: u32,
    /// Members in signer-index order.
    pub members: Vec<Member>,
}

/// Settings.
pub const CONFIG: Item<Config> = Item::new("config");
/// Signer sets by version, whole (for queries and rotations).
pub const SIGNER_SETS: Map<u32, SignerSet> = Map::new("signer_sets");
/// Per version, what a submission needs of it in one read: `u32_be(threshold)` followed by
/// the members' 32-byte ed25519 keys in index order (see [`SignerKeys`]).
pub const SIGNER_KEYS: RawBytesMap<u32> = RawBytesMap::new("signer_keys");
/// Per version and member address, the member's index: the sender check without the set.
pub const SIGNER_INDEX: Map<(u32, &Addr), u16> = Map::new("signer_index");
/// Version by first epoch governed, to find the version in force for an epoch.
pub const SIGNER_SET_BY_START: Map<u64, u32> = Map::new("signer_set_by_start");
/// The newest version (possibly not yet in force).
pub const LATEST_SIGNER_SET: Item<u32> = Item::new("latest_signer_set");
/// Summary per stored epoch.
pub const EPOCH_SUMMARIES: Map<u64, EpochSummary> = Map::new("epochs");
/// v1 layout: fixed-width reward records per epoch (epochs stored before the migration to v2).
pub const EPOCH_REWARDS_V1: RawBytesMap<u64> = RawBytesMap::new("epoch_rewards");
/// Packed reward stream per epoch, cut into chunks of [`CHUNK_RECORDS`] records (see
/// [`crate::packing`]), so that one mixnode's lookup reads one chunk.
pub const EPOCH_REWARD_CHUNKS: RawBytesMap<(u64, u16)> = RawBytesMap::new("reward_chunks");
/// Per epoch with more than one chunk: `u32_be` id of the record before each chunk after the
/// first (chunk `k + 1` decodes from entry `k`).
pub const EPOCH_CHUNK_INDEX: RawBytesMap<u64> = RawBytesMap::new("chunk_index");
/// Raw signature records per stored epoch.
pub const EPOCH_SIGNATURES: RawBytesMap<u64> = RawBytesMap::new("epoch_signatures");

/// Records per stored chunk of an epoch's packed rewards (about 2 KB when ids are dense).
pub const CHUNK_RECORDS: usize = 1_024;

/// A map to raw bytes, stored without JSON (and its base64 overhead), under the same key
/// layout as a cw-storage-plus `Map<K, _>`.
pub struct RawBytesMap<K> {
    keys: Map<K, ()>,
}

impl<'a, K: PrimaryKey<'a>> RawBytesMap<K> {
    /// A map under `namespace`.
    pub const fn new(namespace: &'static str) -> Self {
        Self {
            keys: Map::new(namespace),
        }
    }

    /// The storage key of `key`.
    pub fn storage_key(&self, key: K) -> Vec<u8> {
        self.keys.key(key).to_vec()
    }

    /// Stores `value` under `key`.
    pub fn save(&self, storage: &mut dyn Storage, key: K, value: &[u8]) {
        storage.set(&self.keys.key(key), value);
    }

    /// Loads the value under `key`.
    pub fn may_load(&self, storage: &dyn Storage, key: K) -> Option<Vec<u8>> {
        storage.get(&self.keys.key(key))
    }
}

/// A signer-set version as a submission reads it (decoded [`SIGNER_KEYS`] bytes).
pub struct SignerKeys {
    bytes: Vec<u8>,
}

impl SignerKeys {
    /// Encodes a set's threshold and keys.
    pub fn encode(set: &SignerSet) -> Vec<u8> {
        let mut out = Vec::with_capacity(4 + set.members.len() * PUBKEY_LEN);
        out.extend_from_slice(&set.threshold.to_be_bytes());
        for member in &set.members {
            out.extend_from_slice(member.ed25519_pubkey.as_slice());
        }
        out
    }

    /// Loads the keys of `version`.
    pub fn load(storage: &dyn Storage, version: u32) -> Result<Self, ContractError> {
        let bytes = SIGNER_KEYS
            .may_load(storage, version)
            .filter(|bytes| bytes.len() >= 4 && (bytes.len() - 4) % PUBKEY_LEN == 0)
            .ok_or(ContractError::UnknownSignerSetVersion { version })?;
        Ok(Self { bytes })
    }

    /// Signatures needed.
    pub fn threshold(&self) -> u32 {
        u32::from_be_bytes([self.bytes[0], self.bytes[1], self.bytes[2], self.bytes[3]])
    }

    /// Number of members.
    pub fn members(&self) -> usize {
        (self.bytes.len() - 4) / PUBKEY_LEN
    }

    /// The key of member `index`, if there is one.
    pub fn key(&self, index: u16) -> Option<&[u8]> {
        let start = 4 + usize::from(index) * PUBKEY_LEN;
        self.bytes.get(start..start + PUBKEY_LEN)
    }
}
