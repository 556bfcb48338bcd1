//! Validation of signer sets (thresholds, member keys), how a set is stored, and lookup of the
//! version in force for an epoch.

use std::collections::BTreeSet;

use cosmwasm_std::{Api, Order, StdResult, Storage};
use curve25519_dalek::edwards::CompressedEdwardsY;
use cw_storage_plus::Bound;

use crate::error::ContractError;
use crate::msg::{Member, MemberInput};
use crate::records::PUBKEY_LEN;
use crate::rules::{self, MAX_MEMBERS, MAX_SIGNER_SET_BYTES};
use crate::state::{
    LATEST_SIGNER_SET, SIGNER_INDEX, SIGNER_KEYS, SIGNER_SET_BY_START, SIGNER_SETS, SignerKeys,
    SignerSet,
};

/// Longest api_url or p2p_multiaddr accepted.
pub const MAX_ENDPOINT_LEN: usize = 256;

/// Checks `3t > n` and `1 <= t <= n` ([`rules::threshold_is_valid`]).
pub fn validate_threshold(threshold: u32, members: usize) -> Result<(), ContractError> {
    if !rules::threshold_is_valid(threshold as usize, members) {
        return Err(ContractError::InvalidThreshold { threshold, members });
    }
    Ok(())
}

/// Validates members and threshold into a signer set of the given version.
pub fn build_signer_set(
    api: &dyn Api,
    version: u32,
    effective_from_epoch: u64,
    members: Vec<MemberInput>,
    threshold: Option<u32>,
) -> Result<SignerSet, ContractError> {
    if !rules::member_count_is_valid(members.len()) {
        return Err(ContractError::SignerSetSize {
            got: members.len(),
            max: MAX_MEMBERS,
        });
    }
    // At most MAX_MEMBERS, so the default threshold fits a u32.
    let threshold = threshold.unwrap_or(rules::default_threshold(members.len()) as u32);
    validate_threshold(threshold, members.len())?;

    let mut keys = BTreeSet::new();
    let mut addresses = BTreeSet::new();
    let mut validated = Vec::with_capacity(members.len());
    for (index, member) in members.into_iter().enumerate() {
        let member = validate_member(api, index, member)?;
        if !keys.insert(member.ed25519_pubkey.to_vec()) {
            return Err(ContractError::DuplicateMemberKey { index });
        }
        if !addresses.insert(member.address.clone()) {
            return Err(ContractError::DuplicateMemberAddress {
                index,
                address: member.address.to_string(),
            });
        }
        validated.push(member);
    }
    let set = SignerSet {
        version,
        effective_from_epoch,
        threshold,
        members: validated,
    };
    let bytes = cosmwasm_std::to_json_vec(&set)?.len();
    if bytes > MAX_SIGNER_SET_BYTES {
        return Err(ContractError::SignerSetTooLarge {
            bytes,
            max: MAX_SIGNER_SET_BYTES,
        });
    }
    Ok(set)
}

fn validate_member(
    api: &dyn Api,
    index: usize,
    member: MemberInput,
) -> Result<Member, ContractError> {
    validate_member_key(index, &member.ed25519_pubkey)?;
    let address =
        api.addr_validate(&member.address)
            .map_err(|_| ContractError::InvalidMemberAddress {
                index,
                address: member.address.clone(),
            })?;
    let api_url_ok =
        member.api_url.starts_with("http://") || member.api_url.starts_with("https://");
    if !api_url_ok || member.api_url.len() > MAX_ENDPOINT_LEN {
        return Err(ContractError::InvalidApiUrl {
            index,
            max_len: MAX_ENDPOINT_LEN,
        });
    }
    if !member.p2p_multiaddr.starts_with('/') || member.p2p_multiaddr.len() > MAX_ENDPOINT_LEN {
        return Err(ContractError::InvalidMultiaddr {
            index,
            max_len: MAX_ENDPOINT_LEN,
        });
    }
    Ok(Member {
        ed25519_pubkey: member.ed25519_pubkey,
        address,
        api_url: member.api_url,
        p2p_multiaddr: member.p2p_multiaddr,
    })
}

/// Refuses a member key that is not a canonical encoding of an ed25519 point in the prime-order
/// subgroup (what every signer's key is). ZIP-215 verification (the chain's) accepts such keys, and a
/// small-order key lets anyone forge that member's signature over any digest.
pub fn validate_member_key(index: usize, key: &[u8]) -> Result<(), ContractError> {
    let bytes: [u8; PUBKEY_LEN] = key.try_into().map_err(|_| ContractError::MemberKeyLength {
        index,
        len: key.len(),
    })?;
    let compressed = CompressedEdwardsY(bytes);
    let point = compressed
        .decompress()
        .ok_or(ContractError::MemberKeyNotOnCurve { index })?;
    if point.compress() != compressed {
        return Err(ContractError::MemberKeyNotCanonical { index });
    }
    if point.is_small_order() {
        return Err(ContractError::MemberKeySmallOrder { index });
    }
    if !point.is_torsion_free() {
        return Err(ContractError::MemberKeyMixedOrder { index });
    }
    Ok(())
}

/// Saves a validated set: whole, as threshold and keys, and as an address index; schedules it
/// from its first epoch and makes it the latest version.
pub fn save_signer_set(storage: &mut dyn Storage, set: &SignerSet) -> StdResult<()> {
    SIGNER_SETS.save(storage, set.version, set)?;
    save_submission_view(storage, set)?;
    SIGNER_SET_BY_START.save(storage, set.effective_from_epoch, &set.version)?;
    LATEST_SIGNER_SET.save(storage, &set.version)
}

/// Writes what a submission reads of `set` ([`SIGNER_KEYS`], [`SIGNER_INDEX`]).
pub fn save_submission_view(storage: &mut dyn Storage, set: &SignerSet) -> StdResult<()> {
    SIGNER_KEYS.save(storage, set.version, &SignerKeys::encode(set));
    for (index, member) in set.members.iter().enumerate() {
        // At most MAX_MEMBERS members, far below u16::MAX.
        let index = u16::try_from(index).unwrap_or(u16::MAX);
        SIGNER_INDEX.save(storage, (set.version, &member.address), &index)?;
    }
    Ok(())
}

/// The version in force for `epoch`: the newest whose first epoch is <= `epoch`.
pub fn version_for_epoch(storage: &dyn Storage, epoch: u64) -> StdResult<u32> {
    Ok(SIGNER_SET_BY_START
        .range(
            storage,
            None,
            Some(Bound::inclusive(epoch)),
            Order::Descending,
        )
        .next()
        .transpose()?
        .map(|(_, version)| version)
        // Version 1 starts at epoch 0, so some version always governs.
        .unwrap_or(1))
}

/// The signer set in force for `epoch`: the newest version whose first epoch is <= `epoch`.
pub fn signer_set_for_epoch(storage: &dyn Storage, epoch: u64) -> Result<SignerSet, ContractError> {
    load_signer_set(storage, version_for_epoch(storage, epoch)?)
}

/// Loads one version.
pub fn load_signer_set(storage: &dyn Storage, version: u32) -> Result<SignerSet, ContractError> {
    SIGNER_SETS
        .may_load(storage, version)?
        .ok_or(ContractError::UnknownSignerSetVersion { version })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_outside_the_rule_are_rejected_with_their_values() {
        for (threshold, members) in [(0, 4), (1, 4), (5, 4), (2, 6), (1, 3)] {
            assert_eq!(
                validate_threshold(threshold, members),
                Err(ContractError::InvalidThreshold { threshold, members })
            );
        }
        assert_eq!(validate_threshold(4, 4), Ok(()));
    }
}

#[cfg(test)]
mod key_tests {
    use super::*;
    use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};

    #[test]
    fn every_small_order_point_is_refused() {
        for point in EIGHT_TORSION {
            assert_eq!(
                validate_member_key(3, point.compress().as_bytes()),
                Err(ContractError::MemberKeySmallOrder { index: 3 })
            );
        }
    }

    #[test]
    fn a_mixed_order_point_passes_but_not_its_non_canonical_encodings() {
        // The base point plus a torsion point: not small-order, but no signer makes such a key.
        let mixed = ED25519_BASEPOINT_POINT + EIGHT_TORSION[1];
        assert_eq!(
            validate_member_key(0, mixed.compress().as_bytes()),
            Err(ContractError::MemberKeyMixedOrder { index: 0 })
        );
        assert_eq!(
            validate_member_key(0, ED25519_BASEPOINT_POINT.compress().as_bytes()),
            Ok(())
        );
        // y + p, which the field reduces back to y: the same point, a second encoding.
        // (Any y < 19 has an encoding y + p below 2^255.)
        let mut found = false;
        for y in 2u8..19 {
            let mut canonical = [0u8; 32];
            canonical[0] = y;
            if CompressedEdwardsY(canonical).decompress().is_none() {
                continue;
            }
            let mut non_canonical = [0xffu8; 32];
            non_canonical[0] = 0xed + y;
            non_canonical[31] = 0x7f;
            let point = CompressedEdwardsY(non_canonical).decompress();
            assert!(point.is_some(), "y + p decodes for y = {y}");
            assert_eq!(
                validate_member_key(1, &non_canonical),
                Err(ContractError::MemberKeyNotCanonical { index: 1 })
            );
            found = true;
        }
        assert!(found, "some y below 19 is on the curve");
    }

    #[test]
    fn bytes_off_the_curve_or_of_the_wrong_length_are_refused() {
        let mut off_curve = None;
        for y in 2u8..=255 {
            let mut bytes = [0u8; 32];
            bytes[0] = y;
            if CompressedEdwardsY(bytes).decompress().is_none() {
                off_curve = Some(bytes);
                break;
            }
        }
        let off_curve = off_curve.expect("some small y is off the curve");
        assert_eq!(
            validate_member_key(2, &off_curve),
            Err(ContractError::MemberKeyNotOnCurve { index: 2 })
        );
        assert_eq!(
            validate_member_key(2, &[1u8; 31]),
            Err(ContractError::MemberKeyLength { index: 2, len: 31 })
        );
    }
}
