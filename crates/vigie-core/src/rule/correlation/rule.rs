//! The parsed form of a Sigma v2.1 correlation rule (`correlation:` document). Parsing from YAML
//! lives in `sigma::parse`; reference resolution (every `rules` entry names a loaded rule or
//! correlation, no cycles) happens in `sigma::load_rules`. Invariant: a `CorrelationRule` that
//! reaches the engine has a positive timespan and a non-empty condition.

use std::collections::BTreeMap;

use crate::rule::sigma::SigmaLevel;

/// The correlation types of the spec (2.1.0, including the metric types).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CorrelationKind {
    /// Number of events of the referenced rules in the window.
    EventCount,
    /// Number of distinct values of `condition.field` in the window.
    ValueCount,
    /// Number of distinct referenced rules seen in the window, in any order.
    Temporal,
    /// Like `Temporal`, but the rules must match in the order of `rules`.
    TemporalOrdered,
    /// Sum of the numeric `condition.field` in the window.
    ValueSum,
    /// Mean of the numeric `condition.field` in the window.
    ValueAvg,
    /// Percentile (`condition.percentile`, default 50) of the numeric `condition.field`.
    ValuePercentile,
}

impl CorrelationKind {
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "event_count" => Self::EventCount,
            "value_count" => Self::ValueCount,
            "temporal" => Self::Temporal,
            "temporal_ordered" => Self::TemporalOrdered,
            "value_sum" => Self::ValueSum,
            "value_avg" => Self::ValueAvg,
            "value_percentile" => Self::ValuePercentile,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::EventCount => "event_count",
            Self::ValueCount => "value_count",
            Self::Temporal => "temporal",
            Self::TemporalOrdered => "temporal_ordered",
            Self::ValueSum => "value_sum",
            Self::ValueAvg => "value_avg",
            Self::ValuePercentile => "value_percentile",
        }
    }

    /// Whether `condition.field` is required (and allowed).
    pub fn needs_field(self) -> bool {
        matches!(
            self,
            Self::ValueCount | Self::ValueSum | Self::ValueAvg | Self::ValuePercentile
        )
    }

    /// Whether the referenced rules must match in the listed order.
    pub fn ordered(self) -> bool {
        self == Self::TemporalOrdered
    }
}

/// A comparison operator of a correlation condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Gt,
    Gte,
    Lt,
    Lte,
    Eq,
    Neq,
}

impl CompareOp {
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "gt" => Self::Gt,
            "gte" => Self::Gte,
            "lt" => Self::Lt,
            "lte" => Self::Lte,
            "eq" => Self::Eq,
            "neq" => Self::Neq,
            _ => return None,
        })
    }

    pub fn holds(self, left: f64, right: f64) -> bool {
        match self {
            Self::Gt => left > right,
            Self::Gte => left >= right,
            Self::Lt => left < right,
            Self::Lte => left <= right,
            Self::Eq => left == right,
            Self::Neq => left != right,
        }
    }
}

/// `condition:` of a correlation: one criterion, or a range such as `{gt: 100, lte: 200}`
/// (criteria linked with AND), plus the field the value types aggregate.
#[derive(Debug, Clone, PartialEq)]
pub struct CorrelationCondition {
    pub criteria: Vec<(CompareOp, f64)>,
    pub field: Option<String>,
    /// For `value_percentile` only: which percentile (0–100) of the field; 50 when omitted.
    pub percentile: Option<f64>,
}

impl CorrelationCondition {
    pub fn holds(&self, value: f64) -> bool {
        self.criteria
            .iter()
            .all(|(op, bound)| op.holds(value, *bound))
    }
}

/// A Sigma correlation rule as written (references not yet resolved).
#[derive(Debug, Clone, PartialEq)]
pub struct CorrelationRule {
    pub title: String,
    pub id: Option<String>,
    pub name: Option<String>,
    pub status: Option<String>,
    pub level: Option<SigmaLevel>,
    pub description: Option<String>,
    pub author: Option<String>,
    pub tags: Vec<String>,
    pub kind: CorrelationKind,
    /// Referenced rules or correlations, by `id` or `name`.
    pub rules: Vec<String>,
    pub group_by: Vec<String>,
    /// `alias → (rule reference → field of that rule's events)`.
    pub aliases: BTreeMap<String, BTreeMap<String, String>>,
    pub timespan_ms: i64,
    pub condition: CorrelationCondition,
    /// `generate: true`: the referenced rules also alert on their own.
    pub generate: bool,
    /// The file the correlation came from (set by the loader, empty when parsed alone).
    pub path: String,
    /// Line where the document starts.
    pub line: usize,
}

impl CorrelationRule {
    /// Whether `reference` (an id or a name) designates this correlation.
    pub fn is_called(&self, reference: &str) -> bool {
        self.id.as_deref() == Some(reference) || self.name.as_deref() == Some(reference)
    }
}

/// Parses a timespan `number + lowercase unit` (`30s`, `5m`, `1h`, `7d`) into milliseconds.
pub fn parse_timespan(text: &str) -> Result<i64, String> {
    let bad = || format!("invalid timespan `{text}`: expected a number and one of s, m, h, d");
    let unit = text.chars().last().ok_or_else(bad)?;
    let digits = &text[..text.len() - unit.len_utf8()];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let factor: i64 = match unit {
        's' => 1_000,
        'm' => 60_000,
        'h' => 3_600_000,
        'd' => 86_400_000,
        _ => return Err(bad()),
    };
    let number: i64 = digits.parse().map_err(|_| bad())?;
    if number == 0 {
        return Err(format!("invalid timespan `{text}`: must be positive"));
    }
    number
        .checked_mul(factor)
        .ok_or_else(|| format!("invalid timespan `{text}`: too large"))
}
