//! Names of enum variants as strings, derived once (strum's `IntoStaticStr` and
//! `VariantArray`, with the same casing as serde) and parsed by one function, so configs,
//! command lines, reports and the API agree, and an unknown name is an error, never a default.

use strum::VariantArray;
use thiserror::Error;

/// A name that is not one of an enum's variants.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown {kind} {got:?}: expected one of {}", expected.join(", "))]
pub struct UnknownName {
    /// What was being named (e.g. `policy`).
    pub kind: &'static str,
    /// The text given.
    pub got: String,
    /// Every accepted name.
    pub expected: Vec<&'static str>,
}

/// The variant of `T` whose derived name is `text`.
pub fn parse_variant<T>(kind: &'static str, text: &str) -> Result<T, UnknownName>
where
    T: VariantArray + Copy + Into<&'static str>,
{
    T::VARIANTS
        .iter()
        .copied()
        .find(|variant| Into::<&'static str>::into(*variant) == text)
        .ok_or_else(|| UnknownName {
            kind,
            got: text.to_string(),
            expected: T::VARIANTS
                .iter()
                .map(|variant| (*variant).into())
                .collect(),
        })
}

/// Implements `FromStr` and `Display` for an enum through its derived names.
#[macro_export]
macro_rules! derived_names {
    ($type:ty, $kind:literal) => {
        impl ::std::str::FromStr for $type {
            type Err = $crate::UnknownName;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                $crate::parse_variant($kind, text)
            }
        }

        impl ::std::fmt::Display for $type {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str((*self).into())
            }
        }
    };
}
