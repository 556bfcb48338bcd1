//! Transaction fees: the gas price (a decimal amount of the fee denom per unit of gas), the
//! multiplier over simulated gas, and the most gas a node will pay for. Fees are computed in
//! exact decimals, rounded up, so a nonzero price never yields a fee below the chain's minimum.

use std::fmt;
use std::str::FromStr;

use cosmrs::Denom;
use cosmwasm_std::{Decimal, Uint128};
use thiserror::Error;

/// A gas price as the chain's minimum-gas-prices spell it: `0.025unym`, `0stake`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GasPrice {
    /// Fee denom units per unit of gas.
    pub amount: Decimal,
    /// The fee denom.
    pub denom: Denom,
}

/// Why a fee setting was refused.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum FeeError {
    /// Not `<decimal><denom>`.
    #[error("gas price {0:?} must be a decimal followed by a denom, e.g. 0.025unym")]
    GasPrice(String),
    /// A denom the chain would refuse (cosmos-sdk: a letter, then 2-127 of `[a-zA-Z0-9/:._-]`).
    #[error("fee denom {0:?} is not a valid denom")]
    Denom(String),
    /// A multiplier below 1 or above 10.
    #[error("gas_multiplier must be within 1.0..=10.0, got {0}")]
    Multiplier(f64),
    /// A zero gas ceiling.
    #[error("max_gas must be positive")]
    MaxGas,
}

impl FromStr for GasPrice {
    type Err = FeeError;

    fn from_str(text: &str) -> Result<Self, FeeError> {
        let split = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| FeeError::GasPrice(text.to_string()))?;
        let (amount, denom) = text.split_at(split);
        let amount = Decimal::from_str(amount).map_err(|_| FeeError::GasPrice(text.to_string()))?;
        Ok(Self {
            amount,
            denom: parse_denom(denom)?,
        })
    }
}

impl fmt::Display for GasPrice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.amount, self.denom)
    }
}

crate::text_serde::serde_as_text!(GasPrice);

/// The cosmos-sdk denom rule: a letter, then 2 to 127 of letters, digits and `/:._-` (cosmrs
/// checks the length and the characters; the leading letter is checked here).
fn parse_denom(denom: &str) -> Result<Denom, FeeError> {
    let refused = || FeeError::Denom(denom.to_string());
    if !denom.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return Err(refused());
    }
    Denom::from_str(denom).map_err(|_| refused())
}

/// How a node prices and bounds its transactions.
#[derive(Debug, Clone, PartialEq)]
pub struct FeeSettings {
    /// Price per unit of gas; its denom is the fee denom.
    pub gas_price: GasPrice,
    /// Gas limit = simulated gas x this, plus a fixed margin.
    pub gas_multiplier: f64,
    /// A transaction needing more gas than this is refused before it is broadcast.
    pub max_gas: u64,
}

/// Default multiplier over simulated gas.
pub const DEFAULT_GAS_MULTIPLIER: f64 = 1.3;
/// Default ceiling: a submission at 5,000 mixnodes and n = 64 stays well below it.
pub const DEFAULT_MAX_GAS: u64 = 10_000_000;
/// Gas added to every simulated estimate (the signed transaction is a little larger than the
/// simulated one).
const GAS_MARGIN: u64 = 20_000;

impl Default for FeeSettings {
    fn default() -> Self {
        Self {
            gas_price: GasPrice {
                amount: Decimal::zero(),
                // A valid literal: never the empty default.
                denom: parse_denom("stake").unwrap_or_default(),
            },
            gas_multiplier: DEFAULT_GAS_MULTIPLIER,
            max_gas: DEFAULT_MAX_GAS,
        }
    }
}

impl FeeSettings {
    /// Checks the multiplier and the ceiling (the price was checked when parsed).
    pub fn validate(&self) -> Result<(), FeeError> {
        if !(1.0..=10.0).contains(&self.gas_multiplier) {
            return Err(FeeError::Multiplier(self.gas_multiplier));
        }
        if self.max_gas == 0 {
            return Err(FeeError::MaxGas);
        }
        Ok(())
    }

    /// The gas limit for a transaction that simulated at `simulated` gas.
    pub fn gas_limit(&self, simulated: u64) -> u64 {
        ((simulated as f64 * self.gas_multiplier).ceil() as u64).saturating_add(GAS_MARGIN)
    }

    /// The fee for `gas_limit` gas, rounded up to a whole unit of the denom.
    pub fn fee_amount(&self, gas_limit: u64) -> u128 {
        let fee = self
            .gas_price
            .amount
            .checked_mul(Decimal::from_ratio(gas_limit, 1u64))
            .map(|fee| fee.to_uint_ceil())
            .unwrap_or(Uint128::MAX);
        fee.u128()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gas_prices_parse_and_print_back() {
        let price: GasPrice = "0.025unym".parse().unwrap();
        assert_eq!(price.amount, Decimal::permille(25));
        assert_eq!(price.denom.as_ref(), "unym");
        assert_eq!(price.to_string(), "0.025unym");
        assert_eq!(
            "0stake".parse::<GasPrice>().unwrap().amount,
            Decimal::zero()
        );
        for bad in ["stake", "1.5", "", "0.1.2unym", "1u", "0.1 unym", "1uny m"] {
            assert!(bad.parse::<GasPrice>().is_err(), "{bad:?} was accepted");
        }
        assert!(
            "0.025ibc/27394FB092D2ECCD56123C74F36E4C1F926001CEADA9CA97EA622B25F41E5EB2"
                .parse::<GasPrice>()
                .is_ok()
        );
    }

    #[test]
    fn fees_round_up_and_limits_follow_the_multiplier() {
        let settings = FeeSettings {
            gas_price: "0.025unym".parse().unwrap(),
            gas_multiplier: 1.5,
            max_gas: 1_000_000,
        };
        assert_eq!(settings.fee_amount(200_000), 5_000);
        assert_eq!(settings.fee_amount(200_001), 5_001, "a fraction rounds up");
        assert_eq!(settings.gas_limit(100_000), 150_000 + GAS_MARGIN);
        assert_eq!(
            settings.gas_limit(u64::MAX),
            u64::MAX,
            "saturates, so max_gas refuses it"
        );
        assert_eq!(FeeSettings::default().fee_amount(u64::MAX), 0);
        settings.validate().unwrap();
        let low = FeeSettings {
            gas_multiplier: 0.9,
            ..settings.clone()
        };
        assert_eq!(low.validate(), Err(FeeError::Multiplier(0.9)));
        let none = FeeSettings {
            max_gas: 0,
            ..settings
        };
        assert_eq!(none.validate(), Err(FeeError::MaxGas));
    }
}
