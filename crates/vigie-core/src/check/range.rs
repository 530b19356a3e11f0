//! Nagios threshold ranges, `[@][start:][end]`, exactly as the Monitoring Plugins guidelines
//! define them: `start` defaults to 0, a missing `end` is +∞, `~` is −∞, endpoints are inclusive,
//! and `@` inverts the alert (alert inside instead of outside). The invariant guarded here is
//! `start <= end`: a range that could never be satisfied is refused when parsed, not at alert
//! time.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::state::CheckState;

/// A parsed threshold range. `start` may be `f64::NEG_INFINITY` (`~`) and `end`
/// `f64::INFINITY` (omitted); `start <= end` always holds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Range {
    pub start: f64,
    pub end: f64,
    /// `@` prefix: alert when the value is inside `[start, end]` rather than outside.
    pub alert_inside: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    #[error("empty range")]
    Empty,
    #[error("invalid number {text:?} in range")]
    InvalidNumber { text: String },
    #[error("range start {start} is greater than its end {end}")]
    StartAfterEnd { start: String, end: String },
}

/// Parses `[@][start:][end]`. Surrounding whitespace is ignored; anything else that is not a
/// plain decimal number (scientific notation tolerated), `~` as a start, or empty where the
/// guidelines allow it, is an error.
pub fn parse_range(text: &str) -> Result<Range, RangeError> {
    let text = text.trim();
    let (alert_inside, body) = match text.strip_prefix('@') {
        Some(rest) => (true, rest.trim_start()),
        None => (false, text),
    };
    if body.is_empty() {
        return Err(RangeError::Empty);
    }
    let (start, end) = match body.split_once(':') {
        Some((start, end)) => {
            let start = match start.trim() {
                "" => 0.0,
                "~" => f64::NEG_INFINITY,
                other => parse_number(other)?,
            };
            let end = match end.trim() {
                "" => f64::INFINITY,
                other => parse_number(other)?,
            };
            (start, end)
        }
        None => (0.0, parse_number(body)?),
    };
    if start > end {
        return Err(RangeError::StartAfterEnd {
            start: format_bound(start),
            end: format_bound(end),
        });
    }
    Ok(Range {
        start,
        end,
        alert_inside,
    })
}

/// A finite decimal number as plugins write it. `f64::from_str` alone would also take `inf`,
/// `NaN` or `infinity`, which are not numbers in a threshold.
pub(crate) fn parse_number(text: &str) -> Result<f64, RangeError> {
    let invalid = || RangeError::InvalidNumber {
        text: text.to_owned(),
    };
    let well_formed = !text.is_empty()
        && text.chars().any(|c| c.is_ascii_digit())
        && text
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E'));
    if !well_formed {
        return Err(invalid());
    }
    text.parse::<f64>()
        .ok()
        .filter(|n| n.is_finite())
        .ok_or_else(invalid)
}

fn format_bound(bound: f64) -> String {
    if bound == f64::NEG_INFINITY {
        "~".to_owned()
    } else if bound == f64::INFINITY {
        "∞".to_owned()
    } else {
        bound.to_string()
    }
}

impl Range {
    /// Whether `value` raises an alert for this range. NaN is inside no range, so it alerts
    /// against a plain range and not against an `@` one.
    pub fn alerts(&self, value: f64) -> bool {
        let inside = value >= self.start && value <= self.end;
        inside == self.alert_inside
    }
}

/// Writes the range back in the guidelines' syntax, shortest form (`10`, `10:`, `~:10`, `@10:20`).
impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.alert_inside {
            f.write_str("@")?;
        }
        match (self.start, self.end) {
            (start, end) if start == 0.0 && end.is_finite() => write!(f, "{end}"),
            (start, end) => {
                if start == f64::NEG_INFINITY {
                    f.write_str("~:")?;
                } else {
                    write!(f, "{start}:")?;
                }
                if end.is_finite() {
                    write!(f, "{end}")?;
                }
                Ok(())
            }
        }
    }
}

/// The plugin convention: CRITICAL if the critical range alerts, else WARNING if the warning
/// range alerts, else OK. A missing range never alerts.
pub fn evaluate_thresholds(value: f64, warn: Option<&Range>, crit: Option<&Range>) -> CheckState {
    if crit.is_some_and(|range| range.alerts(value)) {
        CheckState::Critical
    } else if warn.is_some_and(|range| range.alerts(value)) {
        CheckState::Warning
    } else {
        CheckState::Ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INF: f64 = f64::INFINITY;
    const NEG_INF: f64 = f64::NEG_INFINITY;

    /// One row of the guidelines' table: the range, then values and whether each alerts.
    fn check(range: &str, expect: &[(f64, bool)]) {
        let parsed = parse_range(range).unwrap_or_else(|e| panic!("{range}: {e}"));
        for &(value, alerts) in expect {
            assert_eq!(parsed.alerts(value), alerts, "range {range}, value {value}");
        }
    }

    #[test]
    fn follows_the_guidelines_table() {
        // `10`: alert if x < 0 or x > 10.
        check(
            "10",
            &[
                (-0.1, true),
                (0.0, false),
                (5.0, false),
                (10.0, false),
                (10.1, true),
            ],
        );
        // `10:`: alert if x < 10.
        check("10:", &[(9.9, true), (10.0, false), (1e9, false)]);
        // `~:10`: alert if x > 10.
        check("~:10", &[(-1e9, false), (10.0, false), (10.1, true)]);
        // `10:20`: alert if x < 10 or x > 20.
        check(
            "10:20",
            &[
                (9.9, true),
                (10.0, false),
                (15.0, false),
                (20.0, false),
                (20.1, true),
            ],
        );
        // `@10:20`: alert if 10 <= x <= 20.
        check(
            "@10:20",
            &[
                (9.9, false),
                (10.0, true),
                (15.0, true),
                (20.0, true),
                (20.1, false),
            ],
        );
    }

    #[test]
    fn parses_bounds_per_the_rules() {
        let cases: &[(&str, f64, f64, bool)] = &[
            ("10", 0.0, 10.0, false),
            ("10:", 10.0, INF, false),
            ("~:10", NEG_INF, 10.0, false),
            ("10:20", 10.0, 20.0, false),
            ("@10:20", 10.0, 20.0, true),
            (":5", 0.0, 5.0, false),
            ("~:", NEG_INF, INF, false),
            ("-5:-1", -5.0, -1.0, false),
            ("0.5:1.5", 0.5, 1.5, false),
            (" 1e3 ", 0.0, 1000.0, false),
            ("@~:0", NEG_INF, 0.0, true),
        ];
        for &(text, start, end, alert_inside) in cases {
            assert_eq!(
                parse_range(text),
                Ok(Range {
                    start,
                    end,
                    alert_inside
                }),
                "{text}"
            );
        }
    }

    #[test]
    fn refuses_empty_reversed_and_malformed_ranges() {
        assert_eq!(parse_range(""), Err(RangeError::Empty));
        assert_eq!(parse_range("@"), Err(RangeError::Empty));
        assert_eq!(
            parse_range("20:10"),
            Err(RangeError::StartAfterEnd {
                start: "20".to_owned(),
                end: "10".to_owned()
            })
        );
        // A bare number is an end with start 0, so a negative one is reversed.
        assert!(matches!(
            parse_range("-1"),
            Err(RangeError::StartAfterEnd { .. })
        ));
        for bad in ["abc", "1:abc", "inf", "NaN", "~", "1,5", "10:20:30", "--"] {
            assert!(
                matches!(parse_range(bad), Err(RangeError::InvalidNumber { .. })),
                "{bad} should be an invalid number"
            );
        }
    }

    #[test]
    fn writes_ranges_back_in_their_shortest_form() {
        for text in ["10", "10:", "~:10", "10:20", "@10:20", "~:", "@0.5:1.5"] {
            assert_eq!(parse_range(text).unwrap().to_string(), text);
        }
    }

    #[test]
    fn critical_wins_over_warning() {
        let warn = parse_range("80").unwrap();
        let crit = parse_range("90").unwrap();
        let cases = [
            (50.0, CheckState::Ok),
            (80.0, CheckState::Ok),
            (85.0, CheckState::Warning),
            (95.0, CheckState::Critical),
            (-1.0, CheckState::Critical),
        ];
        for (value, expect) in cases {
            assert_eq!(
                evaluate_thresholds(value, Some(&warn), Some(&crit)),
                expect,
                "{value}"
            );
        }
        assert_eq!(evaluate_thresholds(1e9, None, None), CheckState::Ok);
        assert_eq!(
            evaluate_thresholds(1e9, Some(&warn), None),
            CheckState::Warning
        );
    }

    #[test]
    fn nan_alerts_outside_ranges_only() {
        let plain = parse_range("10").unwrap();
        let inside = parse_range("@10").unwrap();
        assert!(plain.alerts(f64::NAN));
        assert!(!inside.alerts(f64::NAN));
    }
}
