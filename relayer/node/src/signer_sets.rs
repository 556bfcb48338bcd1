//! The signer sets a node knows, as the contract holds them: read at start (the version
//! governing the oldest epoch of the catch-up window and every later one), then polled for new
//! versions while the node runs, so a rotation is followed without a restart. The driver hands
//! each new version to the protocol engine and tells the network whom to dial and admit; the
//! API answers `/v1/signer-set` and `/v1/status` with the version governing the running epoch.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use nym_rewards::msg::{Member, SignerSetResponse};

use crate::chain::{self, Chain, ChainError};

/// Every signer-set version the node has read, by version.
#[derive(Debug, Clone, Default)]
pub struct KnownSets {
    by_version: BTreeMap<u32, SignerSetResponse>,
}

/// The known sets, shared by the driver (which adds) and the API (which reads).
#[derive(Debug, Clone, Default)]
pub struct SharedSets(Arc<RwLock<KnownSets>>);

impl SharedSets {
    /// Shares `sets`.
    pub fn new(sets: impl IntoIterator<Item = SignerSetResponse>) -> Self {
        let mut known = KnownSets::default();
        for set in sets {
            known.insert(set);
        }
        Self(Arc::new(RwLock::new(known)))
    }

    /// Reads the sets (a poisoned lock still holds plain data).
    pub fn read(&self) -> RwLockReadGuard<'_, KnownSets> {
        self.0
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, KnownSets> {
        self.0
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Adds `set`; false when its version was known.
    pub fn insert(&self, set: SignerSetResponse) -> bool {
        self.write().insert(set)
    }
}

impl KnownSets {
    /// Adds `set`; false when its version was known (the contract never changes one).
    pub fn insert(&mut self, set: SignerSetResponse) -> bool {
        if self.by_version.contains_key(&set.version) {
            return false;
        }
        self.by_version.insert(set.version, set);
        true
    }

    /// The newest version known.
    pub fn latest_version(&self) -> Option<u32> {
        self.by_version.keys().next_back().copied()
    }

    /// The newest version known.
    pub fn latest(&self) -> Option<&SignerSetResponse> {
        self.by_version.values().next_back()
    }

    /// The first version scheduled after `epoch`, if any.
    pub fn next_after(&self, epoch: u64) -> Option<&SignerSetResponse> {
        self.by_version
            .values()
            .find(|set| set.effective_from_epoch > epoch)
    }

    /// The version governing `epoch`: the newest whose first epoch is at or before it.
    pub fn governing(&self, epoch: u64) -> Option<&SignerSetResponse> {
        self.by_version
            .values()
            .rev()
            .find(|set| set.effective_from_epoch <= epoch)
    }

    /// The newest entry of the member with ed25519 `key` (its API and network addresses may
    /// change from one version to the next).
    pub fn member(&self, key: &[u8; 32]) -> Option<&Member> {
        self.by_version.values().rev().find_map(|set| {
            set.members
                .iter()
                .find(|member| member.ed25519_pubkey.as_slice() == key)
        })
    }
}

/// The index of ed25519 `key` in `set`, if it is a member.
pub fn member_index(set: &SignerSetResponse, key: &[u8; 32]) -> Option<u16> {
    let position = set
        .members
        .iter()
        .position(|member| member.ed25519_pubkey.as_slice() == key)?;
    u16::try_from(position).ok()
}

/// The sets a node starting with its window at `window_start` needs: the one governing that
/// epoch and every later version, scheduled ones included.
pub async fn read_for_window(
    chain: &dyn Chain,
    window_start: u64,
) -> Result<Vec<SignerSetResponse>, ChainError> {
    let first = chain::signer_set_for_epoch(chain, window_start).await?;
    let mut later = newer_than(chain, first.version).await?;
    later.insert(0, first);
    Ok(later)
}

/// The versions after `known` the contract holds, oldest first.
pub async fn newer_than(
    chain: &dyn Chain,
    known: u32,
) -> Result<Vec<SignerSetResponse>, ChainError> {
    let latest = chain::config(chain).await?.latest_signer_set_version;
    let mut sets = Vec::new();
    for version in known.saturating_add(1)..=latest {
        sets.push(chain::signer_set(chain, Some(version)).await?);
    }
    Ok(sets)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cosmwasm_std::{Addr, HexBinary};

    fn set(version: u32, from: u64, keys: &[u8]) -> SignerSetResponse {
        SignerSetResponse {
            version,
            effective_from_epoch: from,
            threshold: 1,
            members: keys
                .iter()
                .map(|&key| Member {
                    ed25519_pubkey: HexBinary::from(vec![key; 32]),
                    address: Addr::unchecked(format!("wasm1m{key}")),
                    api_url: format!("http://{key}.v{version}"),
                    p2p_multiaddr: format!("/memory/{key}"),
                })
                .collect(),
        }
    }

    #[test]
    fn the_governing_version_and_the_newest_member_entry_are_found() {
        let sets = SharedSets::new([set(1, 0, &[1, 2]), set(2, 5, &[2, 3])]);
        assert!(
            !sets.insert(set(2, 9, &[9])),
            "a known version is kept as read"
        );
        let known = sets.read();
        assert_eq!(known.governing(4).map(|s| s.version), Some(1));
        assert_eq!(known.governing(5).map(|s| s.version), Some(2));
        assert_eq!(known.latest_version(), Some(2));
        assert_eq!(known.member(&[2; 32]).unwrap().api_url, "http://2.v2");
        assert_eq!(known.member(&[1; 32]).unwrap().api_url, "http://1.v1");
        assert!(known.member(&[7; 32]).is_none());
        assert_eq!(member_index(&set(2, 5, &[2, 3]), &[3; 32]), Some(1));
    }
}
