//! Perfdata as the native probes write it: `label=value[UOM];[warn];[crit];[min];[max]`, per
//! the Monitoring Plugins guidelines, trailing empty fields dropped (`time=0.012s;0.5;1;0`).
//! Invariant: what `vigie_core::check::parse_perfdata` reads back is what was measured, with
//! the check's thresholds in the unit of the value: a check states latencies in milliseconds,
//! the perfdata gives seconds as `check_tcp` and `check_http` do, so its ranges are divided by
//! 1000 on the way out.

use vigie_core::check::{CheckState, Range, Thresholds, evaluate_thresholds};

/// One perfdata item.
#[derive(Debug, Clone, PartialEq)]
pub struct PerfItem {
    pub label: String,
    /// `None` is written `U`: the value could not be determined.
    pub value: Option<f64>,
    pub uom: &'static str,
    pub warn: Option<Range>,
    pub crit: Option<Range>,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

impl PerfItem {
    pub fn new(label: &str, value: Option<f64>, uom: &'static str) -> Self {
        PerfItem {
            label: label.to_owned(),
            value,
            uom,
            warn: None,
            crit: None,
            min: None,
            max: None,
        }
    }

    /// The check's thresholds, each bound divided by `divisor` (1000 from milliseconds to
    /// seconds, 1 when the value is in the thresholds' unit).
    pub fn thresholds(mut self, thresholds: &Thresholds, divisor: f64) -> Self {
        self.warn = thresholds.warning.map(|range| scale(range, divisor));
        self.crit = thresholds.critical.map(|range| scale(range, divisor));
        self
    }

    pub fn min(mut self, min: f64) -> Self {
        self.min = Some(min);
        self
    }

    pub fn max(mut self, max: f64) -> Self {
        self.max = Some(max);
        self
    }
}

/// The state of `value` against a check's thresholds: CRITICAL if the critical range alerts,
/// else WARNING if the warning range does, else OK.
pub fn evaluate(value: f64, thresholds: &Thresholds) -> CheckState {
    evaluate_thresholds(
        value,
        thresholds.warning.as_ref(),
        thresholds.critical.as_ref(),
    )
}

/// The items, space-separated.
pub fn format_perfdata(items: &[PerfItem]) -> String {
    items.iter().map(format_item).collect::<Vec<_>>().join(" ")
}

fn format_item(item: &PerfItem) -> String {
    let value = match item.value {
        Some(value) => format!("{}{}", format_number(value, 6), item.uom),
        None => "U".to_owned(),
    };
    let mut fields = vec![
        value,
        item.warn.map(|r| r.to_string()).unwrap_or_default(),
        item.crit.map(|r| r.to_string()).unwrap_or_default(),
        item.min.map(|n| format_number(n, 6)).unwrap_or_default(),
        item.max.map(|n| format_number(n, 6)).unwrap_or_default(),
    ];
    while fields.len() > 1 && fields.last().is_some_and(String::is_empty) {
        fields.pop();
    }
    format!("{}={}", quote_label(&item.label), fields.join(";"))
}

/// Labels with spaces, `=` or quotes are quoted, a quote doubled inside.
fn quote_label(label: &str) -> String {
    if label.contains([' ', '=', '\'']) {
        format!("'{}'", label.replace('\'', "''"))
    } else {
        label.to_owned()
    }
}

/// A number with at most `decimals` decimals and no trailing zeros: `0.012`, `612`, `0.000071`.
pub fn format_number(value: f64, decimals: usize) -> String {
    let text = format!("{value:.decimals$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        &text
    };
    match text {
        "-0" => "0".to_owned(),
        other => other.to_owned(),
    }
}

fn scale(range: Range, divisor: f64) -> Range {
    Range {
        start: range.start / divisor,
        end: range.end / divisor,
        alert_inside: range.alert_inside,
    }
}

#[cfg(test)]
mod tests {
    use vigie_core::check::{PerfValue, parse_perfdata, parse_range};

    use super::*;

    fn thresholds(warning: &str, critical: &str) -> Thresholds {
        Thresholds {
            warning: Some(parse_range(warning).unwrap()),
            critical: Some(parse_range(critical).unwrap()),
        }
    }

    #[test]
    fn writes_seconds_with_thresholds_converted_from_milliseconds() {
        let item = PerfItem::new("time", Some(0.012), "s")
            .thresholds(&thresholds("500", "1000"), 1000.0)
            .min(0.0);
        assert_eq!(format_perfdata(&[item]), "time=0.012s;0.5;1;0");
    }

    #[test]
    fn drops_trailing_empty_fields_and_keeps_inner_ones() {
        let items = [
            PerfItem::new("size", Some(612.0), "B").min(0.0),
            PerfItem::new("pl", Some(0.0), "%").min(0.0).max(100.0),
            PerfItem::new("days_left", Some(29.0), "").thresholds(&thresholds("30:", "7:"), 1.0),
            PerfItem::new("rta", None, "ms"),
        ];
        assert_eq!(
            format_perfdata(&items),
            "size=612B;;;0 pl=0%;;;0;100 days_left=29;30:;7: rta=U"
        );
    }

    #[test]
    fn numbers_keep_six_decimals_at_most() {
        assert_eq!(format_number(0.000071, 6), "0.000071");
        assert_eq!(format_number(0.0000004, 6), "0");
        assert_eq!(format_number(-0.0000004, 6), "0");
        assert_eq!(format_number(1.5, 6), "1.5");
        assert_eq!(format_number(10.0, 6), "10");
        assert_eq!(format_number(-3.0, 6), "-3");
        assert_eq!(format_number(12.3456, 1), "12.3");
    }

    #[test]
    fn odd_labels_are_quoted() {
        let item = PerfItem::new("it's time", Some(1.0), "s");
        assert_eq!(format_perfdata(&[item]), "'it''s time'=1s");
    }

    #[test]
    fn what_is_written_reads_back_the_same() {
        let items = [
            PerfItem::new("time", Some(0.000312), "s")
                .thresholds(&thresholds("~:250", "@1000:2000"), 1000.0)
                .min(0.0)
                .max(10.0),
            PerfItem::new("rta", Some(0.045), "ms").thresholds(&thresholds("200", "500"), 1.0),
        ];
        let parsed: Vec<PerfValue> = parse_perfdata(&format_perfdata(&items))
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0].label, "time");
        assert_eq!(parsed[0].value, Some(0.000312));
        assert_eq!(parsed[0].uom, "s");
        assert_eq!(parsed[0].warn, Some(parse_range("~:0.25").unwrap()));
        assert_eq!(parsed[0].crit, Some(parse_range("@1:2").unwrap()));
        assert_eq!((parsed[0].min, parsed[0].max), (Some(0.0), Some(10.0)));
        assert_eq!(parsed[1].warn, Some(parse_range("200").unwrap()));
        assert_eq!(parsed[1].crit, Some(parse_range("500").unwrap()));
    }

    #[test]
    fn thresholds_evaluate_as_plugins_do() {
        let latency = thresholds("500", "1000");
        assert_eq!(evaluate(12.0, &latency), CheckState::Ok);
        assert_eq!(evaluate(500.0, &latency), CheckState::Ok);
        assert_eq!(evaluate(500.1, &latency), CheckState::Warning);
        assert_eq!(evaluate(1000.1, &latency), CheckState::Critical);
        // Days left: alert below the range start.
        let days = thresholds("30:", "7:");
        assert_eq!(evaluate(90.0, &days), CheckState::Ok);
        assert_eq!(evaluate(29.0, &days), CheckState::Warning);
        assert_eq!(evaluate(6.0, &days), CheckState::Critical);
        assert_eq!(evaluate(-2.0, &days), CheckState::Critical);
        assert_eq!(evaluate(1e9, &Thresholds::default()), CheckState::Ok);
    }
}
