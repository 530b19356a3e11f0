//! Durations as the estate writes them (`90s`, `30m`, `1h30m`, `1w`) and as the core uses them:
//! a plain count of milliseconds, since the core has no clock. Guards one invariant: what
//! `format_duration` writes, `parse_duration` reads back to the same number. Weeks are read
//! (an on-call shift is `1w`) but never written, so that what was written as `7d` stays `7d`.

use serde::de::{self, Deserializer, Visitor};
use serde::ser::Serializer;
use std::fmt;

/// Units from largest to smallest, so formatting can pick the largest exact one.
const UNITS: [(&str, i64); 5] = [
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

/// Read only: `format_duration` writes days, never weeks.
const WEEK: (&str, i64) = ("w", 7 * 86_400_000);

/// Parses `30m`, `1h`, `90s`, `500ms`, `2d`, `1w` or a sum of them such as `1h30m` into
/// milliseconds.
pub fn parse_duration(text: &str) -> Result<i64, String> {
    let invalid = || {
        format!(
            "invalid duration `{text}`: expected a number followed by a unit (ms, s, m, h, d, w), \
             e.g. `30m`"
        )
    };
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(invalid());
    }
    if rest.chars().all(|c| c.is_ascii_digit()) {
        return Err(missing_unit(rest));
    }
    let mut total: i64 = 0;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(invalid());
        }
        let number: i64 = rest[..digits].parse().map_err(|_| invalid())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let (_, factor) = UNITS
            .iter()
            .chain(std::iter::once(&WEEK))
            .find(|(name, _)| *name == unit)
            .ok_or_else(invalid)?;
        total = number
            .checked_mul(*factor)
            .and_then(|ms| total.checked_add(ms))
            .ok_or_else(|| format!("duration `{text}` is too long"))?;
    }
    Ok(total)
}

/// A bare number is refused rather than guessed at: `30` could mean seconds or minutes.
fn missing_unit(number: &str) -> String {
    format!("invalid duration `{number}`: a unit is required (ms, s, m, h, d, w), e.g. `{number}m`")
}

/// Writes milliseconds with the largest unit that divides them exactly: 5_400_000 is `90m`.
pub fn format_duration(ms: i64) -> String {
    if ms == 0 {
        return "0s".to_string();
    }
    let (unit, factor) = UNITS
        .iter()
        .find(|(_, factor)| ms % factor == 0)
        .expect("invariant: the last unit divides every number");
    format!("{}{unit}", ms / factor)
}

/// `#[serde(with = "duration")]` for an `i64` of milliseconds written as duration text.
pub fn serialize<S: Serializer>(ms: &i64, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&format_duration(*ms))
}

pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    struct DurationVisitor;

    impl Visitor<'_> for DurationVisitor {
        type Value = i64;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a duration such as `30m`")
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<i64, E> {
            parse_duration(text).map_err(E::custom)
        }

        fn visit_u64<E: de::Error>(self, value: u64) -> Result<i64, E> {
            Err(E::custom(missing_unit(&value.to_string())))
        }

        fn visit_i64<E: de::Error>(self, value: i64) -> Result<i64, E> {
            Err(E::custom(missing_unit(&value.to_string())))
        }
    }

    deserializer.deserialize_str(DurationVisitor)
}

/// `#[serde(with = "duration::option")]` for an `Option<i64>` of milliseconds; pair it with
/// `default` and `skip_serializing_if = "Option::is_none"`.
pub mod option {
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(ms: &Option<i64>, serializer: S) -> Result<S::Ok, S::Error> {
        match ms {
            Some(ms) => super::serialize(ms, serializer),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<i64>, D::Error> {
        super::deserialize(deserializer).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_single_and_compound_units() {
        assert_eq!(parse_duration("90s"), Ok(90_000));
        assert_eq!(parse_duration("30m"), Ok(1_800_000));
        assert_eq!(parse_duration("1h"), Ok(3_600_000));
        assert_eq!(parse_duration("1h30m"), Ok(5_400_000));
        assert_eq!(parse_duration("250ms"), Ok(250));
        assert_eq!(parse_duration("2d"), Ok(172_800_000));
        assert_eq!(parse_duration("1w"), Ok(604_800_000));
        assert_eq!(format_duration(604_800_000), "7d");
    }

    #[test]
    fn refuses_missing_units_signs_and_overflow() {
        for text in ["", "30", "m", "-5m", "1.5h", "5 m", "3y"] {
            assert!(parse_duration(text).is_err(), "{text:?} was accepted");
        }
        assert_eq!(
            parse_duration("99999999999999999d"),
            Err("duration `99999999999999999d` is too long".to_string())
        );
    }

    #[test]
    fn formats_with_the_largest_exact_unit_and_reads_back() {
        for (ms, text) in [
            (0, "0s"),
            (90_000, "90s"),
            (5_400_000, "90m"),
            (3_600_000, "1h"),
            (1_500, "1500ms"),
        ] {
            assert_eq!(format_duration(ms), text);
            assert_eq!(parse_duration(text), Ok(ms));
        }
    }
}
