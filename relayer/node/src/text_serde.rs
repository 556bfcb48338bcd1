//! Config values that are text: a type with `Display` and `FromStr` is written as its text and
//! read back through `FromStr`, whose error names what is wrong ([`serde_as_text!`]).

/// Implements `Serialize` (the `Display` text) and `Deserialize` (a string through `FromStr`)
/// for a type.
macro_rules! serde_as_text {
    ($type:ty) => {
        impl serde::Serialize for $type {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $type {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                <String as serde::Deserialize>::deserialize(deserializer)?
                    .parse()
                    .map_err(serde::de::Error::custom)
            }
        }
    };
}

pub(crate) use serde_as_text;
