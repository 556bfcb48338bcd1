//! Durations in the node config: a `*_ms` field takes a number of milliseconds or a string
//! with a unit (`"500ms"`, `"2s"`, `"1m"`, `"1h"`), and is written back as milliseconds.
//! Use with `#[serde(deserialize_with = "crate::duration_ms::deserialize")]`.

use serde::de::{self, Deserializer, Visitor};

/// Milliseconds from `"<whole number><unit>"` with unit `ms`, `s`, `m` or `h`.
pub fn parse(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like \"500ms\" or \"2s\""))?;
    let scale = match unit.trim() {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        other => {
            return Err(format!(
                "unit {other:?} in {text:?}: use ms, s, m or h (or a plain number of milliseconds)"
            ));
        }
    };
    number
        .checked_mul(scale)
        .ok_or_else(|| format!("{text:?} is too long"))
}

struct MillisOrText;

impl Visitor<'_> for MillisOrText {
    type Value = u64;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("milliseconds, or a duration such as \"500ms\" or \"2s\"")
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<u64, E> {
        Ok(value)
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<u64, E> {
        u64::try_from(value).map_err(|_| E::custom("a duration cannot be negative"))
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<u64, E> {
        parse(text).map_err(E::custom)
    }
}

/// Deserializes milliseconds or a duration string.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    deserializer.deserialize_any(MillisOrText)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse("500ms"), Ok(500));
        assert_eq!(parse("2s"), Ok(2_000));
        assert_eq!(parse("1m"), Ok(60_000));
        assert_eq!(parse("1h"), Ok(3_600_000));
        for bad in ["", "s", "1.5s", "2 days", "-1s", "99999999999999999999h"] {
            assert!(parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
