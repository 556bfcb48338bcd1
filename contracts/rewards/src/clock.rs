//! The epoch clock: epoch `e` covers `[genesis + e * length, genesis + (e + 1) * length)` in
//! unix seconds.

use cosmwasm_schema::cw_serde;

use crate::error::ContractError;

/// When epochs start and how long they last.
#[cw_serde]
#[derive(Copy, Eq)]
pub struct EpochClock {
    /// Start of epoch 0, unix seconds.
    pub genesis_time: u64,
    /// Length of every epoch in seconds (at least 1).
    pub epoch_length_secs: u64,
}

impl EpochClock {
    /// Checks that the clock can express epochs at all.
    pub fn validate(&self) -> Result<(), ContractError> {
        if self.epoch_length_secs == 0 {
            return Err(ContractError::ZeroEpochLength);
        }
        Ok(())
    }

    /// Unix second at which `epoch` starts.
    pub fn epoch_start(&self, epoch: u64) -> Result<u64, ContractError> {
        epoch
            .checked_mul(self.epoch_length_secs)
            .and_then(|offset| offset.checked_add(self.genesis_time))
            .ok_or(ContractError::EpochOutOfRange { epoch })
    }

    /// Unix second at which `epoch` ends (the start of the next one).
    pub fn epoch_end(&self, epoch: u64) -> Result<u64, ContractError> {
        let next = epoch
            .checked_add(1)
            .ok_or(ContractError::EpochOutOfRange { epoch })?;
        self.epoch_start(next)
    }

    /// The epoch running at unix second `now`, `None` before genesis.
    pub fn epoch_at(&self, now: u64) -> Option<u64> {
        now.checked_sub(self.genesis_time)
            .map(|elapsed| elapsed / self.epoch_length_secs.max(1))
    }

    /// End of `epoch` in unix milliseconds, saturating at `u64::MAX` (for off-chain timers).
    pub fn epoch_end_ms(&self, epoch: u64) -> u64 {
        self.epoch_end(epoch)
            .map_or(u64::MAX, |secs| secs.saturating_mul(1_000))
    }

    /// The epoch running at unix millisecond `now_ms`, `None` before genesis.
    pub fn epoch_at_ms(&self, now_ms: u64) -> Option<u64> {
        self.epoch_at(now_ms / 1_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLOCK: EpochClock = EpochClock {
        genesis_time: 1_000,
        epoch_length_secs: 60,
    };

    #[test]
    fn epochs_tile_time_from_genesis() {
        assert_eq!(CLOCK.epoch_start(0).unwrap(), 1_000);
        assert_eq!(CLOCK.epoch_end(0).unwrap(), 1_060);
        assert_eq!(CLOCK.epoch_at(999), None);
        assert_eq!(CLOCK.epoch_at(1_000), Some(0));
        assert_eq!(CLOCK.epoch_at(1_059), Some(0));
        assert_eq!(CLOCK.epoch_at(1_060), Some(1));
    }

    #[test]
    fn overflow_is_an_error_not_a_panic() {
        assert!(matches!(
            CLOCK.epoch_end(u64::MAX),
            Err(ContractError::EpochOutOfRange { epoch: u64::MAX })
        ));
        assert!(CLOCK.epoch_start(u64::MAX / 2).is_err());
        assert_eq!(CLOCK.epoch_end_ms(u64::MAX), u64::MAX);
    }

    #[test]
    fn millisecond_forms_agree_with_seconds() {
        assert_eq!(CLOCK.epoch_end_ms(0), 1_060_000);
        assert_eq!(CLOCK.epoch_at_ms(1_059_999), Some(0));
        assert_eq!(CLOCK.epoch_at_ms(1_060_000), Some(1));
        assert_eq!(CLOCK.epoch_at_ms(999_999), None);
    }

    #[test]
    fn zero_length_is_rejected() {
        let clock = EpochClock {
            genesis_time: 0,
            epoch_length_secs: 0,
        };
        assert_eq!(clock.validate(), Err(ContractError::ZeroEpochLength));
    }
}
