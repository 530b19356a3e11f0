//! The priority matrix: impact (how much of the business is hit) crossed with urgency (how bad
//! the signal says it is) gives P1–P5. Guards one invariant: the matrix is symmetric and
//! monotonic, so raising either axis never lowers the priority.

use serde::{Deserialize, Serialize};

use crate::event::Severity;

use super::model::{Level, Priority};

/// The ITIL-style matrix:
///
/// | impact \ urgency | high | medium | low |
/// |------------------|------|--------|-----|
/// | high             | P1   | P2     | P3  |
/// | medium           | P2   | P3     | P4  |
/// | low              | P3   | P4     | P5  |
pub fn priority(impact: Level, urgency: Level) -> Priority {
    match (impact, urgency) {
        (Level::High, Level::High) => Priority::P1,
        (Level::High, Level::Medium) | (Level::Medium, Level::High) => Priority::P2,
        (Level::High, Level::Low) | (Level::Medium, Level::Medium) | (Level::Low, Level::High) => {
            Priority::P3
        }
        (Level::Medium, Level::Low) | (Level::Low, Level::Medium) => Priority::P4,
        (Level::Low, Level::Low) => Priority::P5,
    }
}

/// A priority matrix: rows are impact (high, medium, low), columns urgency (high, medium, low).
/// `Matrix::default()` is the ITIL matrix of `priority`; a client's contract may set another
/// (the estate checks it is monotonic).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Matrix(pub [[Priority; 3]; 3]);

impl Default for Matrix {
    fn default() -> Self {
        let levels = [Level::High, Level::Medium, Level::Low];
        Matrix(levels.map(|impact| levels.map(|urgency| priority(impact, urgency))))
    }
}

impl Matrix {
    pub fn get(&self, impact: Level, urgency: Level) -> Priority {
        self.0[level_index(impact)][level_index(urgency)]
    }
}

fn level_index(level: Level) -> usize {
    match level {
        Level::High => 0,
        Level::Medium => 1,
        Level::Low => 2,
    }
}

/// An asset's criticality (1–5, from the estate) as impact. An asset the estate does not know,
/// or an alert without asset, counts as medium: unknown is not the same as unimportant.
pub fn impact_from_criticality(criticality: Option<u8>) -> Level {
    match criticality {
        Some(4..) => Level::High,
        None | Some(3) => Level::Medium,
        Some(_) => Level::Low,
    }
}

/// The alert's severity as urgency: critical or worse is high, error is medium, the rest low.
pub fn urgency_from_severity(severity: Severity) -> Level {
    match severity {
        Severity::Critical | Severity::Alert | Severity::Emergency => Level::High,
        Severity::Error => Level::Medium,
        Severity::Debug | Severity::Info | Severity::Notice | Severity::Warning => Level::Low,
    }
}

/// The more severe of two levels. `Level` orders `High` first (like `Priority` orders P1
/// first), so "more severe" is the smaller one: this name keeps call sites from reading `min`
/// where they mean "raise".
pub(crate) fn higher_level(a: Level, b: Level) -> Level {
    a.min(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrix_gives_every_cell() {
        use Level::{High, Low, Medium};
        let cells = [
            (High, High, Priority::P1),
            (High, Medium, Priority::P2),
            (High, Low, Priority::P3),
            (Medium, High, Priority::P2),
            (Medium, Medium, Priority::P3),
            (Medium, Low, Priority::P4),
            (Low, High, Priority::P3),
            (Low, Medium, Priority::P4),
            (Low, Low, Priority::P5),
        ];
        for (impact, urgency, expected) in cells {
            assert_eq!(
                priority(impact, urgency),
                expected,
                "impact {impact:?}, urgency {urgency:?}"
            );
        }
    }

    #[test]
    fn raising_an_axis_never_lowers_the_priority() {
        let levels = [Level::Low, Level::Medium, Level::High];
        for pair in levels.windows(2) {
            let (lower, raised) = (pair[0], pair[1]);
            for other in levels {
                assert!(priority(raised, other) < priority(lower, other));
                assert!(priority(other, raised) < priority(other, lower));
            }
        }
    }

    #[test]
    fn default_matrix_is_the_itil_one() {
        let levels = [Level::High, Level::Medium, Level::Low];
        for impact in levels {
            for urgency in levels {
                assert_eq!(
                    Matrix::default().get(impact, urgency),
                    priority(impact, urgency)
                );
            }
        }
    }

    #[test]
    fn criticality_maps_to_impact() {
        assert_eq!(impact_from_criticality(Some(5)), Level::High);
        assert_eq!(impact_from_criticality(Some(4)), Level::High);
        assert_eq!(impact_from_criticality(Some(3)), Level::Medium);
        assert_eq!(impact_from_criticality(None), Level::Medium);
        assert_eq!(impact_from_criticality(Some(2)), Level::Low);
        assert_eq!(impact_from_criticality(Some(1)), Level::Low);
        // Out of the 1–5 scale: treated by the nearest end rather than rejected.
        assert_eq!(impact_from_criticality(Some(0)), Level::Low);
        assert_eq!(impact_from_criticality(Some(9)), Level::High);
    }

    #[test]
    fn severity_maps_to_urgency() {
        let expected = [
            (Severity::Debug, Level::Low),
            (Severity::Info, Level::Low),
            (Severity::Notice, Level::Low),
            (Severity::Warning, Level::Low),
            (Severity::Error, Level::Medium),
            (Severity::Critical, Level::High),
            (Severity::Alert, Level::High),
            (Severity::Emergency, Level::High),
        ];
        for (severity, level) in expected {
            assert_eq!(urgency_from_severity(severity), level, "{severity:?}");
        }
    }

    #[test]
    fn higher_level_prefers_high() {
        assert_eq!(higher_level(Level::Low, Level::High), Level::High);
        assert_eq!(higher_level(Level::Medium, Level::Low), Level::Medium);
        assert_eq!(higher_level(Level::Medium, Level::Medium), Level::Medium);
    }
}
