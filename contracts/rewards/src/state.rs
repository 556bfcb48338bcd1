//! Storage layout. Per epoch, a small summary (read first by every submission, so the
//! duplicate rejection stays cheap) and two raw fixed-width byte entries (rewards, signatures;
//! see [`crate::records`]) instead of one storage write per mixnode.

use cosmwasm_schema::cw_serde;
use cosmwasm_std::{Addr, Storage};
use cw_storage_plus::{Item, Map};

use crate::clock::EpochClock;
use crate::msg::{EpochSummary, Member};

/// Contract-wide settings.
#[cw_serde]
pub struct Config {
    /// May rotate the signer set and hand over the role.
    pub admin: Addr,
    /// The epoch clock.
    pub clock: EpochClock,
    /// Most mixnodes per epoch.
    pub max_mixnodes_per_epoch: u32,
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
/// Signer sets by version.
pub const SIGNER_SETS: Map<u32, SignerSet> = Map::new("signer_sets");
/// Version by first epoch governed, to find the version in force for an epoch.
pub const SIGNER_SET_BY_START: Map<u64, u32> = Map::new("signer_set_by_start");
/// The newest version (possibly not yet in force).
pub const LATEST_SIGNER_SET: Item<u32> = Item::new("latest_signer_set");
/// Summary per stored epoch.
pub const EPOCH_SUMMARIES: Map<u64, EpochSummary> = Map::new("epochs");
/// Raw reward records per stored epoch.
pub const EPOCH_REWARDS: RawBytesMap = RawBytesMap::new("epoch_rewards");
/// Raw signature records per stored epoch.
pub const EPOCH_SIGNATURES: RawBytesMap = RawBytesMap::new("epoch_signatures");

/// A map from epoch to raw bytes, stored without JSON (and its base64 overhead), under the same
/// key layout as a cw-storage-plus `Map<u64, _>`.
pub struct RawBytesMap {
    keys: Map<u64, ()>,
}

impl RawBytesMap {
    /// A map under `namespace`.
    pub const fn new(namespace: &'static str) -> Self {
        Self {
            keys: Map::new(namespace),
        }
    }

    /// Stores `value` under `epoch`.
    pub fn save(&self, storage: &mut dyn Storage, epoch: u64, value: &[u8]) {
        storage.set(&self.keys.key(epoch), value);
    }

    /// Loads the value under `epoch`.
    pub fn may_load(&self, storage: &dyn Storage, epoch: u64) -> Option<Vec<u8>> {
        storage.get(&self.keys.key(epoch))
    }
}
