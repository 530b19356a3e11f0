//! Performance data as plugins print it after `|`: space-separated
//! `'label'=value[UOM];[warn];[crit];[min];[max]` items, per the Monitoring Plugins guidelines
//! plus Icinga 2's superset (more units, the check_multi `::` label prefix). The invariant:
//! one malformed item is one error in the list and never costs the items around it.
//!
//! Units are kept as written in `uom`; `unit_of` tells which unit it is, with the factor to its
//! base unit, for the units the guidelines and Icinga 2 know. An unknown unit is not an error
//! (plugins print `rpm`, `Hz`, `dB`…): its value is kept with no base unit.

use serde::{Deserialize, Serialize};

use super::range::{Range, RangeError, parse_number, parse_range};

/// One parsed item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PerfValue {
    pub label: String,
    /// `None` when the plugin printed `U` (the value could not be determined).
    pub value: Option<f64>,
    /// The unit as written (`ms`, `%`, `KiB`, `c`…), empty when there is none.
    pub uom: String,
    pub warn: Option<Range>,
    pub crit: Option<Range>,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

impl PerfValue {
    /// `c`: a continuous counter, whose rate is what matters.
    pub fn is_counter(&self) -> bool {
        self.uom == "c"
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PerfError {
    #[error("perfdata item {item:?} has no '=' after its label")]
    MissingEquals { item: String },
    #[error("perfdata item {item:?} has an empty label")]
    EmptyLabel { item: String },
    #[error("perfdata item {item:?} has an unterminated quoted label")]
    UnterminatedQuote { item: String },
    #[error("perfdata item {item:?} has no value")]
    MissingValue { item: String },
    #[error("perfdata item {item:?} has an invalid value")]
    InvalidValue { item: String },
    #[error("perfdata item {item:?} has an invalid {field} threshold: {source}")]
    InvalidThreshold {
        item: String,
        field: &'static str,
        source: RangeError,
    },
    #[error("perfdata item {item:?} has an invalid {field}")]
    InvalidLimit { item: String, field: &'static str },
    #[error("perfdata item {item:?} has more than five ';'-separated fields")]
    TooManyFields { item: String },
}

/// A unit the guidelines or Icinga 2 know: `value * factor` is in `base` (`seconds`, `bytes`…).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UnitOfMeasure {
    pub factor: f64,
    pub base: &'static str,
}

/// Parses every item of a perfdata text. Items are separated by whitespace (a quoted label may
/// hold spaces); the result has one entry per item, in order.
pub fn parse_perfdata(text: &str) -> Vec<Result<PerfValue, PerfError>> {
    let mut items = Vec::new();
    let mut rest = text.trim_start();
    // check_multi: a label `check::metric` makes `check` the prefix of the unprefixed labels
    // that follow it, as Icinga 2 does.
    let mut multi_prefix: Option<String> = None;
    while !rest.is_empty() {
        let (item, after) = split_item(rest);
        rest = after.trim_start();
        let parsed = parse_item(item).map(|mut value| {
            if let Some((prefix, _)) = value.label.rsplit_once("::") {
                multi_prefix = Some(prefix.to_owned());
            } else if let Some(prefix) = &multi_prefix {
                value.label = format!("{prefix}::{}", value.label);
            }
            value
        });
        items.push(parsed);
    }
    items
}

/// Cuts the first item off `text` (which starts on a non-space): up to the first whitespace
/// that is not inside a quoted label.
fn split_item(text: &str) -> (&str, &str) {
    let mut in_quote = false;
    let mut label_done = false;
    for (index, c) in text.char_indices() {
        match c {
            '\'' if !label_done => in_quote = !in_quote,
            '=' if !in_quote => label_done = true,
            c if c.is_whitespace() && !in_quote => return (&text[..index], &text[index..]),
            _ => {}
        }
    }
    (text, "")
}

fn parse_item(item: &str) -> Result<PerfValue, PerfError> {
    let (label, data) = split_label(item)?;
    let fields: Vec<&str> = data.split(';').collect();
    if fields.len() > 5 && fields[5..].iter().any(|f| !f.is_empty()) {
        return Err(PerfError::TooManyFields {
            item: item.to_owned(),
        });
    }
    let (value, uom) = split_value(item, fields[0])?;
    let field = |index: usize| fields.get(index).copied().filter(|f| !f.is_empty());
    let threshold = |index: usize, name: &'static str| {
        field(index)
            .map(|text| {
                parse_range(text).map_err(|source| PerfError::InvalidThreshold {
                    item: item.to_owned(),
                    field: name,
                    source,
                })
            })
            .transpose()
    };
    let limit = |index: usize, name: &'static str| {
        field(index)
            .map(|text| {
                // Some plugins repeat the unit on min and max (`0MB`); tolerate that one.
                let number = text.strip_suffix(uom.as_str()).filter(|_| !uom.is_empty());
                parse_number(number.unwrap_or(text)).map_err(|_| PerfError::InvalidLimit {
                    item: item.to_owned(),
                    field: name,
                })
            })
            .transpose()
    };
    Ok(PerfValue {
        label,
        value,
        warn: threshold(1, "warning")?,
        crit: threshold(2, "critical")?,
        min: limit(3, "minimum")?,
        max: limit(4, "maximum")?,
        uom,
    })
}

/// `'it''s'=5` → (`it's`, `5`); `load1=0.5` → (`load1`, `0.5`).
fn split_label(item: &str) -> Result<(String, &str), PerfError> {
    let owned = || item.to_owned();
    if let Some(quoted) = item.strip_prefix('\'') {
        let mut label = String::new();
        let mut chars = quoted.char_indices().peekable();
        while let Some((index, c)) = chars.next() {
            if c != '\'' {
                label.push(c);
                continue;
            }
            if let Some((_, '\'')) = chars.peek() {
                label.push('\'');
                chars.next();
                continue;
            }
            let after = &quoted[index + 1..];
            let Some(data) = after.strip_prefix('=') else {
                return Err(PerfError::MissingEquals { item: owned() });
            };
            if label.trim().is_empty() {
                return Err(PerfError::EmptyLabel { item: owned() });
            }
            return Ok((label, data));
        }
        return Err(PerfError::UnterminatedQuote { item: owned() });
    }
    let Some((label, data)) = item.split_once('=') else {
        return Err(PerfError::MissingEquals { item: owned() });
    };
    if label.is_empty() {
        return Err(PerfError::EmptyLabel { item: owned() });
    }
    Ok((label.to_owned(), data))
}

/// `0.897ms` → (0.897, `ms`); `U` → (None, ``); `1e3` and `+.5` are tolerated.
fn split_value(item: &str, field: &str) -> Result<(Option<f64>, String), PerfError> {
    if field.is_empty() {
        return Err(PerfError::MissingValue {
            item: item.to_owned(),
        });
    }
    if field == "U" {
        return Ok((None, String::new()));
    }
    let bytes = field.as_bytes();
    let mut end = 0;
    if matches!(bytes.first(), Some(b'+' | b'-')) {
        end += 1;
    }
    let digits_start = end;
    while end < bytes.len() && (bytes[end].is_ascii_digit() || bytes[end] == b'.') {
        end += 1;
    }
    let mantissa = &field[digits_start..end];
    if !mantissa.bytes().any(|b| b.is_ascii_digit()) || mantissa.matches('.').count() > 1 {
        return Err(PerfError::InvalidValue {
            item: item.to_owned(),
        });
    }
    // An exponent only when digits follow, so that a unit starting with `e`/`E` stays a unit.
    if matches!(bytes.get(end), Some(b'e' | b'E')) {
        let mut exponent_end = end + 1;
        if matches!(bytes.get(exponent_end), Some(b'+' | b'-')) {
            exponent_end += 1;
        }
        let digits = bytes[exponent_end..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if digits > 0 {
            end = exponent_end + digits;
        }
    }
    let (number, uom) = field.split_at(end);
    let invalid = || PerfError::InvalidValue {
        item: item.to_owned(),
    };
    if uom.contains(|c: char| c.is_ascii_digit() || c == ',' || c.is_whitespace()) {
        return Err(invalid());
    }
    let value = number
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(invalid)?;
    Ok((Some(value), uom.to_owned()))
}

/// What unit `uom` is, per the guidelines and Icinga 2: case-sensitive data (`b`/`B` with
/// `k`…`Y` prefixes, `i` for powers of 1024: `KiB`), `%`, `c`, `C` (°C), energy (`A`, `O`, `V`,
/// `W` with `n`…`Y` prefixes, `As`/`Wh` with s/m/h); case-insensitive time (`ns`…`d`), mass,
/// volume and a few others. `None` for a unit neither knows.
pub fn unit_of(uom: &str) -> Option<UnitOfMeasure> {
    let unit = |factor: f64, base: &'static str| Some(UnitOfMeasure { factor, base });
    match uom {
        "" | "c" => return unit(1.0, ""),
        "%" => return unit(1.0, "percent"),
        "C" => return unit(1.0, "degrees-celsius"),
        "b" => return unit(1.0, "bits"),
        "B" => return unit(1.0, "bytes"),
        _ => {}
    }
    if let Some(found) = data_unit(uom).or_else(|| energy_unit(uom)) {
        return Some(found);
    }
    let (factor, base) = match uom.to_ascii_lowercase().as_str() {
        "ns" => (1e-9, "seconds"),
        "us" => (1e-6, "seconds"),
        "ms" => (1e-3, "seconds"),
        "s" => (1.0, "seconds"),
        "m" => (60.0, "seconds"),
        "h" => (3600.0, "seconds"),
        "d" => (86400.0, "seconds"),
        "ng" => (1e-9, "grams"),
        "ug" => (1e-6, "grams"),
        "mg" => (1e-3, "grams"),
        "g" => (1.0, "grams"),
        "kg" => (1e3, "grams"),
        "t" => (1e6, "grams"),
        "ml" => (1e-3, "liters"),
        "l" => (1.0, "liters"),
        "hl" => (100.0, "liters"),
        "packets" => (1.0, "packets"),
        "lm" => (1.0, "lumens"),
        "dbm" => (1.0, "decibel-milliwatts"),
        "f" => (1.0, "degrees-fahrenheit"),
        "k" => (1.0, "degrees-kelvin"),
        _ => return None,
    };
    unit(factor, base)
}

/// Powers for the data prefixes `k`…`Y`, either case.
fn data_power(prefix: char) -> Option<i32> {
    let power = match prefix.to_ascii_lowercase() {
        'k' => 1,
        'm' => 2,
        'g' => 3,
        't' => 4,
        'p' => 5,
        'e' => 6,
        'z' => 7,
        'y' => 8,
        _ => return None,
    };
    Some(power)
}

/// `KB`, `kb`, `MiB`, `GIb`…: 1000- or 1024-based bits and bytes.
fn data_unit(uom: &str) -> Option<UnitOfMeasure> {
    let mut chars = uom.chars();
    let power = data_power(chars.next()?)?;
    let rest = chars.as_str();
    let (base_factor, base_char) = match rest.strip_prefix(['i', 'I']) {
        Some(base) => (1024.0_f64, base),
        None => (1000.0_f64, rest),
    };
    let base = match base_char {
        "b" => "bits",
        "B" => "bytes",
        _ => return None,
    };
    Some(UnitOfMeasure {
        factor: base_factor.powi(power),
        base,
    })
}

/// Amperes, ohms, volts, watts with SI prefixes (`mA`, `kW`), and ampere-seconds / watt-hours
/// with a time suffix (`As`, `kWh`, `mAh`). Prefixes and base letters never overlap, so the
/// unprefixed reading is tried first.
fn energy_unit(uom: &str) -> Option<UnitOfMeasure> {
    energy_base(uom, 0).or_else(|| {
        let mut chars = uom.chars();
        let power = match chars.next()? {
            'n' | 'N' => -3,
            'u' | 'U' => -2,
            'm' => -1,
            c => data_power(c)?,
        };
        energy_base(chars.as_str(), power)
    })
}

fn energy_base(rest: &str, power: i32) -> Option<UnitOfMeasure> {
    let prefix_factor = 1000.0_f64.powi(power);
    let simple = match rest {
        "a" | "A" => Some("amperes"),
        "o" | "O" => Some("ohms"),
        "v" | "V" => Some("volts"),
        "w" | "W" => Some("watts"),
        _ => None,
    };
    if let Some(base) = simple {
        return Some(UnitOfMeasure {
            factor: prefix_factor,
            base,
        });
    }
    let mut chars = rest.chars();
    let (base, base_factor) = match chars.next()? {
        'a' | 'A' => ("ampere-seconds", 1.0),
        'w' | 'W' => ("watt-hours", 3600.0),
        _ => return None,
    };
    let time_factor = match chars.as_str() {
        "s" | "S" => 1.0,
        "m" | "M" => 60.0,
        "h" | "H" => 3600.0,
        _ => return None,
    };
    Some(UnitOfMeasure {
        factor: prefix_factor * time_factor / base_factor,
        base,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(text: &str) -> Option<Range> {
        Some(parse_range(text).unwrap())
    }

    fn value(label: &str, value: Option<f64>, uom: &str) -> PerfValue {
        PerfValue {
            label: label.to_owned(),
            value,
            uom: uom.to_owned(),
            warn: None,
            crit: None,
            min: None,
            max: None,
        }
    }

    fn check(text: &str, expect: Vec<Result<PerfValue, PerfError>>) {
        assert_eq!(parse_perfdata(text), expect, "{text}");
    }

    #[test]
    fn parses_the_reference_vectors() {
        check("'a b'=1;;;;", vec![Ok(value("a b", Some(1.0), ""))]);
        check("'it''s'=5", vec![Ok(value("it's", Some(5.0), ""))]);
        check(
            "load1=0.5;~:5;@10:20;0;",
            vec![Ok(PerfValue {
                warn: range("~:5"),
                crit: range("@10:20"),
                min: Some(0.0),
                ..value("load1", Some(0.5), "")
            })],
        );
        check(
            "rta=0.897ms;20;40;;",
            vec![Ok(PerfValue {
                warn: range("20"),
                crit: range("40"),
                ..value("rta", Some(0.897), "ms")
            })],
        );
        check(
            "time=0.27s;;;0.000000 size=20156B;;;0",
            vec![
                Ok(PerfValue {
                    min: Some(0.0),
                    ..value("time", Some(0.27), "s")
                }),
                Ok(PerfValue {
                    min: Some(0.0),
                    ..value("size", Some(20156.0), "B")
                }),
            ],
        );
        check("x=1e3", vec![Ok(value("x", Some(1000.0), ""))]);
    }

    #[test]
    fn parses_the_guidelines_units_and_unknown_values() {
        check(
            "a=1 b=2s c=3ms d=4us e=5% f=6B g=7KB h=8MB i=9TB j=10c k=U",
            vec![
                Ok(value("a", Some(1.0), "")),
                Ok(value("b", Some(2.0), "s")),
                Ok(value("c", Some(3.0), "ms")),
                Ok(value("d", Some(4.0), "us")),
                Ok(value("e", Some(5.0), "%")),
                Ok(value("f", Some(6.0), "B")),
                Ok(value("g", Some(7.0), "KB")),
                Ok(value("h", Some(8.0), "MB")),
                Ok(value("i", Some(9.0), "TB")),
                Ok(value("j", Some(10.0), "c")),
                Ok(value("k", None, "")),
            ],
        );
        assert!(parse_perfdata("j=10c")[0].as_ref().unwrap().is_counter());
    }

    #[test]
    fn one_bad_item_does_not_spoil_the_others() {
        check(
            "ok=1 novalue= =3 bad=abc good=2;5;10",
            vec![
                Ok(value("ok", Some(1.0), "")),
                Err(PerfError::MissingValue {
                    item: "novalue=".to_owned(),
                }),
                Err(PerfError::EmptyLabel {
                    item: "=3".to_owned(),
                }),
                Err(PerfError::InvalidValue {
                    item: "bad=abc".to_owned(),
                }),
                Ok(PerfValue {
                    warn: range("5"),
                    crit: range("10"),
                    ..value("good", Some(2.0), "")
                }),
            ],
        );
    }

    #[test]
    fn reports_each_kind_of_malformed_item() {
        let errors: Vec<String> =
            parse_perfdata("noequals 'open=1 x=1;20:10 y=1;;;zero z=1;;;;;6 w=1,5 v=1..2")
                .into_iter()
                .map(|r| r.map(|v| v.label).unwrap_or_else(|e| e.to_string()))
                .collect();
        assert_eq!(
            errors,
            [
                "perfdata item \"noequals\" has no '=' after its label",
                "perfdata item \"'open=1 x=1;20:10 y=1;;;zero z=1;;;;;6 w=1,5 v=1..2\" has an unterminated quoted label",
            ]
        );
        let errors: Vec<String> =
            parse_perfdata("x=1;20:10 y=1;;;zero z=1;;;;;6 w=1,5 v=1..2 'q'x=1")
                .into_iter()
                .map(|r| r.map(|v| v.label).unwrap_or_else(|e| e.to_string()))
                .collect();
        assert_eq!(
            errors,
            [
                "perfdata item \"x=1;20:10\" has an invalid warning threshold: range start 20 is greater than its end 10",
                "perfdata item \"y=1;;;zero\" has an invalid minimum",
                "perfdata item \"z=1;;;;;6\" has more than five ';'-separated fields",
                "perfdata item \"w=1,5\" has an invalid value",
                "perfdata item \"v=1..2\" has an invalid value",
                "perfdata item \"'q'x=1\" has no '=' after its label",
            ]
        );
    }

    #[test]
    fn keeps_labels_with_equals_and_spaces_when_quoted() {
        check(
            "'/ (root)'=12MB;;;0;100 'a=b'=1",
            vec![
                Ok(PerfValue {
                    min: Some(0.0),
                    max: Some(100.0),
                    ..value("/ (root)", Some(12.0), "MB")
                }),
                Ok(value("a=b", Some(1.0), "")),
            ],
        );
    }

    #[test]
    fn tolerates_extra_spaces_trailing_semicolons_and_units_on_limits() {
        check(
            "  a=1;;;;;   b=-2.5KiB;;;0KiB;10KiB  ",
            vec![
                Ok(value("a", Some(1.0), "")),
                Ok(PerfValue {
                    min: Some(0.0),
                    max: Some(10.0),
                    ..value("b", Some(-2.5), "KiB")
                }),
            ],
        );
        check("", vec![]);
    }

    #[test]
    fn carries_the_check_multi_prefix_to_following_labels() {
        let labels: Vec<String> = parse_perfdata(
            "check_multi::check_multi::plugins=2 time=0.5 'load::check_load::load1'=0.1 load5=0.2",
        )
        .into_iter()
        .map(|r| r.unwrap().label)
        .collect();
        assert_eq!(
            labels,
            [
                "check_multi::check_multi::plugins",
                "check_multi::check_multi::time",
                "load::check_load::load1",
                "load::check_load::load5",
            ]
        );
    }

    #[test]
    fn knows_the_guidelines_and_icinga_units() {
        let cases: &[(&str, f64, &str)] = &[
            ("", 1.0, ""),
            ("%", 1.0, "percent"),
            ("s", 1.0, "seconds"),
            ("ms", 1e-3, "seconds"),
            ("us", 1e-6, "seconds"),
            ("MS", 1e-3, "seconds"),
            ("d", 86400.0, "seconds"),
            ("B", 1.0, "bytes"),
            ("KB", 1e3, "bytes"),
            ("MB", 1e6, "bytes"),
            ("TB", 1e12, "bytes"),
            ("KiB", 1024.0, "bytes"),
            ("Mib", 1024.0 * 1024.0, "bits"),
            ("kb", 1e3, "bits"),
            ("c", 1.0, ""),
            ("C", 1.0, "degrees-celsius"),
            ("mA", 1e-3, "amperes"),
            ("kW", 1e3, "watts"),
            ("V", 1.0, "volts"),
            ("O", 1.0, "ohms"),
            ("kWh", 1e3, "watt-hours"),
            ("Wh", 1.0, "watt-hours"),
            ("As", 1.0, "ampere-seconds"),
            ("mAh", 3.6, "ampere-seconds"),
            ("dBm", 1.0, "decibel-milliwatts"),
            ("packets", 1.0, "packets"),
            ("kg", 1e3, "grams"),
            ("ml", 1e-3, "liters"),
        ];
        for &(uom, factor, base) in cases {
            let found = unit_of(uom).unwrap_or_else(|| panic!("{uom} should be known"));
            assert_eq!(found.base, base, "{uom}");
            assert!(
                (found.factor - factor).abs() <= factor * 1e-12,
                "{uom}: {} != {factor}",
                found.factor
            );
        }
        for unknown in ["rpm", "Hz", "°C", "xB", "KiBs"] {
            assert_eq!(unit_of(unknown), None, "{unknown}");
        }
    }
}
