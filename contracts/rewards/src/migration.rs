//! State migration to this version. From v1 (0.1.x): each signer set gains the submission view
//! ([`crate::state::SIGNER_KEYS`], [`crate::state::SIGNER_INDEX`]) and the config the rotation
//! delay (0). Stored epochs are not rewritten, which would cost gas without bound: they stay
//! in v1's fixed-width records, which [`crate::epochs`] still reads, so their query answers do
//! not change. Member keys are checked as v2 checks them at registration. Running it on v2
//! state changes nothing.

use cosmwasm_std::{Order, StdResult, Storage};

use crate::error::ContractError;
use crate::signer_set::{save_submission_view, validate_member_key};
use crate::state::{CONFIG, SIGNER_SETS};

/// Brings older state to this version's layout; returns the number of signer sets indexed.
/// v1 checked only the length of member keys: a stored key that v2 refuses (small order,
/// torsion, non-canonical, off the curve) fails the migration rather than keep a member whose
/// signatures could be forged. Keys made by any ed25519 signer always pass.
pub fn migrate_state(storage: &mut dyn Storage) -> Result<usize, ContractError> {
    // v1's config has no rotation delay; it loads as 0 and is saved in the v2 form.
    let config = CONFIG.load(storage)?;
    CONFIG.save(storage, &config)?;
    let sets = SIGNER_SETS
        .range(storage, None, None, Order::Ascending)
        .map(|entry| entry.map(|(_, set)| set))
        .collect::<StdResult<Vec<_>>>()?;
    for set in &sets {
        for (index, member) in set.members.iter().enumerate() {
            validate_member_key(index, &member.ed25519_pubkey).map_err(|err| {
                ContractError::MigrateInvalidMemberKey {
                    version: set.version,
                    reason: err.to_string(),
                }
            })?;
        }
        save_submission_view(storage, set)?;
    }
    Ok(sets.len())
}
