//! The signer set as the relayer works with it: version, threshold, and each member's
//! ed25519 key and chain address in signer-index order. Built from the contract's answer, which
//! is the one source of truth; only what signing, verifying and finalizing need is kept.

use nym_rewards::msg::SignerSetResponse;
use nym_rewards::rules;
use thiserror::Error;

use crate::MemberIndex;

/// One member: its signing key and the chain account that submits for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signer {
    /// ed25519 public key.
    pub key: [u8; 32],
    /// Chain address (bech32).
    pub address: String,
}

/// A signer-set version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignerSet {
    /// Version, from 1.
    pub version: u32,
    /// First epoch it governs.
    pub effective_from_epoch: u64,
    /// Signatures a certificate needs (t).
    pub threshold: usize,
    /// Members in signer-index order.
    pub members: Vec<Signer>,
}

/// A signer set that breaks a rule of [`nym_rewards::rules`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SignerSetError {
    /// A key that is not 32 bytes.
    #[error("member {index}: ed25519 key is {len} bytes, expected 32")]
    KeyLength {
        /// The member.
        index: usize,
        /// Its length.
        len: usize,
    },
    /// No members, or more than [`rules::MAX_MEMBERS`].
    #[error("the signer set needs 1 to {max} members, got {0}", max = rules::MAX_MEMBERS)]
    MemberCount(usize),
    /// A threshold outside `3t > n`, `t <= n`.
    #[error("threshold {threshold} breaks 3t > n and t <= n for n = {members}")]
    Threshold {
        /// t.
        threshold: usize,
        /// n.
        members: usize,
    },
}

impl SignerSet {
    /// Checks the member count and the threshold rule.
    pub fn validate(&self) -> Result<(), SignerSetError> {
        let n = self.members.len();
        if !rules::member_count_is_valid(n) {
            return Err(SignerSetError::MemberCount(n));
        }
        if !rules::threshold_is_valid(self.threshold, n) {
            return Err(SignerSetError::Threshold {
                threshold: self.threshold,
                members: n,
            });
        }
        Ok(())
    }

    /// Number of members (n).
    pub fn n(&self) -> usize {
        self.members.len()
    }

    /// The key of member `index`.
    pub fn key(&self, index: MemberIndex) -> Option<&[u8; 32]> {
        self.members
            .get(usize::from(index))
            .map(|member| &member.key)
    }

    /// The index of the member with `key`.
    pub fn index_of_key(&self, key: &[u8; 32]) -> Option<MemberIndex> {
        let position = self.members.iter().position(|member| member.key == *key)?;
        MemberIndex::try_from(position).ok()
    }

    /// The index of the member whose chain account is `address`.
    pub fn index_of_address(&self, address: &str) -> Option<MemberIndex> {
        let position = self
            .members
            .iter()
            .position(|member| member.address == address)?;
        MemberIndex::try_from(position).ok()
    }

    /// The members' keys in index order.
    pub fn keys(&self) -> impl Iterator<Item = &[u8; 32]> {
        self.members.iter().map(|member| &member.key)
    }
}

impl TryFrom<&SignerSetResponse> for SignerSet {
    type Error = SignerSetError;

    fn try_from(set: &SignerSetResponse) -> Result<Self, Self::Error> {
        let members = set
            .members
            .iter()
            .enumerate()
            .map(|(index, member)| {
                let key = <[u8; 32]>::try_from(member.ed25519_pubkey.as_slice()).map_err(|_| {
                    SignerSetError::KeyLength {
                        index,
                        len: member.ed25519_pubkey.len(),
                    }
                })?;
                Ok(Signer {
                    key,
                    address: member.address.to_string(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let set = SignerSet {
            version: set.version,
            effective_from_epoch: set.effective_from_epoch,
            threshold: set.threshold as usize,
            members,
        };
        set.validate()?;
        Ok(set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cosmwasm_std::{Addr, HexBinary};
    use nym_rewards::msg::Member;

    fn response(keys: &[Vec<u8>], threshold: u32) -> SignerSetResponse {
        SignerSetResponse {
            version: 2,
            effective_from_epoch: 5,
            threshold,
            members: keys
                .iter()
                .enumerate()
                .map(|(i, key)| Member {
                    ed25519_pubkey: HexBinary::from(key.clone()),
                    address: Addr::unchecked(format!("n1member{i}")),
                    api_url: "http://x".into(),
                    p2p_multiaddr: "/ip4/127.0.0.1/tcp/1".into(),
                })
                .collect(),
        }
    }

    #[test]
    fn the_contracts_answer_converts_and_lookups_work() {
        let keys: Vec<Vec<u8>> = (0..4u8).map(|i| vec![i; 32]).collect();
        let set = SignerSet::try_from(&response(&keys, 3)).unwrap();
        assert_eq!((set.version, set.threshold, set.n()), (2, 3, 4));
        assert_eq!(set.index_of_key(&[2; 32]), Some(2));
        assert_eq!(set.index_of_address("n1member3"), Some(3));
        assert_eq!(set.index_of_address("n1other"), None);
        assert_eq!(set.key(9), None);
    }

    #[test]
    fn malformed_sets_are_typed_errors() {
        let mut keys: Vec<Vec<u8>> = (0..4u8).map(|i| vec![i; 32]).collect();
        assert_eq!(
            SignerSet::try_from(&response(&keys, 1)),
            Err(SignerSetError::Threshold {
                threshold: 1,
                members: 4
            })
        );
        keys[1].pop();
        assert_eq!(
            SignerSet::try_from(&response(&keys, 3)),
            Err(SignerSetError::KeyLength { index: 1, len: 31 })
        );
        assert_eq!(
            SignerSet::try_from(&response(&[], 1)),
            Err(SignerSetError::MemberCount(0))
        );
    }
}
