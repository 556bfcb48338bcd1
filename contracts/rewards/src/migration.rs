//! State migration to this version. From v1 (0.1.x): each signer set gains the submission view
//! ([`crate::state::SIGNER_KEYS`], [`crate::state::SIGNER_INDEX`]) and the config the rotation
//! delay (0). Stored epochs are not rewritten, which would cost gas without bound: they stay
//! in v1's fixed-width records, which [`crate::epochs`] still reads, so their query answers do
//! not change. Running it on v2 state changes nothing.

use cosmwasm_std::{Order, StdResult, Storage};

use crate::signer_set::save_submission_view;
use crate::state::{CONFIG, SIGNER_SETS};

/// Brings older state to this version's layout; returns the number of signer sets indexed.
pub fn migrate_state(storage: &mut dyn Storage) -> StdResult<usize> {
    // v1's config has no rotation delay; it loads as 0 and is saved in the v2 form.
    let config = CONFIG.load(storage)?;
    CONFIG.save(storage, &config)?;
    let sets = SIGNER_SETS
        .range(storage, None, None, Order::Ascending)
        .map(|entry| entry.map(|(_, set)| set))
        .collect::<StdResult<Vec<_>>>()?;
    for set in &sets {
        save_submission_view(storage, set)?;
    }
    Ok(sets.len())
}
