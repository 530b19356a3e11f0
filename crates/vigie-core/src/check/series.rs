//! Performance data as time series: the resolutions Vigie keeps (raw points, 5-minute and
//! 1-hour roll-ups, RRD-like), their retention, bucket arithmetic, the aggregation of points
//! into roll-ups, and the resolution a graph is read at. Pure: times are epoch milliseconds
//! given by the caller.
//!
//! Invariants: a bucket is `[start, start + step)` with `start` a multiple of the step from the
//! epoch (UTC), so hourly buckets start on the hour and a 5-minute bucket lies in exactly one
//! hour; a roll-up of roll-ups equals the roll-up of the points they cover (min of the minima,
//! max of the maxima, sums and counts added, the last value of the latest point).

use serde::Serialize;

pub const FIVE_MINUTES_MS: i64 = 300_000;
pub const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;

/// At most this many points per series in a graph read at `auto` step.
pub const MAX_AUTO_POINTS: i64 = 2_000;

/// What is stored: raw points, or the roll-ups of one step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Resolution {
    Raw,
    FiveMinutes,
    Hourly,
}

impl Resolution {
    /// The bucket length of a roll-up; `None` for raw points.
    pub fn step_ms(self) -> Option<i64> {
        match self {
            Resolution::Raw => None,
            Resolution::FiveMinutes => Some(FIVE_MINUTES_MS),
            Resolution::Hourly => Some(HOUR_MS),
        }
    }

    /// As the API writes it: `raw`, `5m`, `1h`.
    pub fn as_str(self) -> &'static str {
        match self {
            Resolution::Raw => "raw",
            Resolution::FiveMinutes => "5m",
            Resolution::Hourly => "1h",
        }
    }
}

/// How long each resolution is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    pub raw_ms: i64,
    pub five_minutes_ms: i64,
    pub hourly_ms: i64,
}

impl Default for Retention {
    /// Raw points 2 days, 5-minute roll-ups 30 days, hourly roll-ups 400 days.
    fn default() -> Self {
        Retention {
            raw_ms: 2 * DAY_MS,
            five_minutes_ms: 30 * DAY_MS,
            hourly_ms: 400 * DAY_MS,
        }
    }
}

impl Retention {
    pub fn of(&self, resolution: Resolution) -> i64 {
        match resolution {
            Resolution::Raw => self.raw_ms,
            Resolution::FiveMinutes => self.five_minutes_ms,
            Resolution::Hourly => self.hourly_ms,
        }
    }

    /// Every problem, each naming its key under `prefix` (`perfdata.retention`). Roll-ups are
    /// built from the resolution below them, so that one must outlive a bucket and the time
    /// the periodic task takes to reach it; and a coarser resolution is kept at least as long.
    pub fn problems(&self, prefix: &str) -> Vec<String> {
        let mut problems = Vec::new();
        let keys = [
            (
                "raw",
                self.raw_ms,
                HOUR_MS,
                "the 5-minute roll-ups are built from raw points",
            ),
            (
                "five_minutes",
                self.five_minutes_ms,
                2 * HOUR_MS,
                "the hourly roll-ups are built from the 5-minute ones",
            ),
            (
                "hourly",
                self.hourly_ms,
                HOUR_MS,
                "an hourly bucket lasts an hour",
            ),
        ];
        for (key, ms, least, why) in keys {
            if ms < least {
                problems.push(format!(
                    "{prefix}.{key}: must be at least {} ({why})",
                    crate::estate::format_duration(least)
                ));
            }
        }
        for ((fine, fine_ms), (coarse, coarse_ms)) in [
            (("raw", self.raw_ms), ("five_minutes", self.five_minutes_ms)),
            (
                ("five_minutes", self.five_minutes_ms),
                ("hourly", self.hourly_ms),
            ),
        ] {
            if coarse_ms < fine_ms {
                problems.push(format!(
                    "{prefix}.{coarse}: {} is shorter than {fine} ({}): a coarser resolution is kept at least as long",
                    crate::estate::format_duration(coarse_ms),
                    crate::estate::format_duration(fine_ms)
                ));
            }
        }
        problems
    }
}

/// The start of the bucket of `step_ms` (> 0) that holds `time_ms`, before the epoch too.
pub fn bucket_start(time_ms: i64, step_ms: i64) -> i64 {
    time_ms.div_euclid(step_ms) * step_ms
}

/// One bucket of a series: enough to merge it into a coarser one exactly.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Rollup {
    pub bucket_ms: i64,
    pub min: f64,
    pub max: f64,
    pub sum: f64,
    pub count: i64,
    /// The value of the latest point, and its time.
    pub last: f64,
    pub last_ms: i64,
}

impl Rollup {
    pub fn of_point(bucket_ms: i64, time_ms: i64, value: f64) -> Rollup {
        Rollup {
            bucket_ms,
            min: value,
            max: value,
            sum: value,
            count: 1,
            last: value,
            last_ms: time_ms,
        }
    }

    pub fn avg(&self) -> f64 {
        if self.count == 0 {
            return f64::NAN;
        }
        self.sum / self.count as f64
    }

    /// Adds another bucket's (or point's) aggregate to this one; the later `last` wins, and
    /// on a tie the one merged in (the later arrival).
    pub fn merge(&mut self, other: &Rollup) {
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.sum += other.sum;
        self.count += other.count;
        if other.last_ms >= self.last_ms {
            self.last = other.last;
            self.last_ms = other.last_ms;
        }
    }
}

/// Rolls points `(time_ms, value)` up into buckets of `step_ms`, in bucket order. Points may
/// come in any order; non-finite values are left out.
pub fn rollup_points(points: impl IntoIterator<Item = (i64, f64)>, step_ms: i64) -> Vec<Rollup> {
    rollup_rollups(
        points
            .into_iter()
            .filter(|(_, value)| value.is_finite())
            .map(|(time_ms, value)| {
                Rollup::of_point(bucket_start(time_ms, step_ms), time_ms, value)
            }),
        step_ms,
    )
}

/// Merges roll-ups into buckets of `step_ms` (a multiple of theirs), in bucket order.
pub fn rollup_rollups(rollups: impl IntoIterator<Item = Rollup>, step_ms: i64) -> Vec<Rollup> {
    let mut buckets: std::collections::BTreeMap<i64, Rollup> = std::collections::BTreeMap::new();
    for rollup in rollups {
        let bucket_ms = bucket_start(rollup.bucket_ms, step_ms);
        buckets
            .entry(bucket_ms)
            .and_modify(|bucket| bucket.merge(&rollup))
            .or_insert(Rollup {
                bucket_ms,
                ..rollup
            });
    }
    buckets.into_values().collect()
}

/// The step a graph asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Fixed(Resolution),
    /// The finest resolution retained over the whole range, buckets merged so that a series
    /// has at most `MAX_AUTO_POINTS` points.
    Auto,
}

impl Step {
    /// `raw`, `5m`, `1h` or `auto`.
    pub fn parse(text: &str) -> Option<Step> {
        match text {
            "raw" => Some(Step::Fixed(Resolution::Raw)),
            "5m" => Some(Step::Fixed(Resolution::FiveMinutes)),
            "1h" => Some(Step::Fixed(Resolution::Hourly)),
            "auto" => Some(Step::Auto),
            _ => None,
        }
    }
}

/// How to read a graph of `[from_ms, to_ms)` at `auto` step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AutoPlan {
    /// Raw points are still kept over the whole range: read them when a series has at most
    /// `MAX_AUTO_POINTS` of them, else fall back to `rollup`.
    pub try_raw: bool,
    /// The roll-up resolution to read, and the step its buckets are merged into (a multiple
    /// of its own).
    pub rollup: Resolution,
    pub step_ms: i64,
}

/// The finest resolution retained over the whole of `[from_ms, to_ms)` at `now_ms` (hourly
/// when none is: the coarsest shows what is left), merged into as few multiples of its step
/// as keep the points under `MAX_AUTO_POINTS`.
pub fn plan_auto(from_ms: i64, to_ms: i64, now_ms: i64, retention: &Retention) -> AutoPlan {
    let retained = |resolution| from_ms >= now_ms.saturating_sub(retention.of(resolution));
    let rollup = if retained(Resolution::FiveMinutes) {
        Resolution::FiveMinutes
    } else {
        Resolution::Hourly
    };
    let base = rollup.step_ms().expect("invariant: a roll-up has a step");
    let span = to_ms.saturating_sub(from_ms).max(1);
    let buckets = span.div_euclid(base) + i64::from(span.rem_euclid(base) != 0) + 1;
    let factor = (buckets + MAX_AUTO_POINTS - 1) / MAX_AUTO_POINTS;
    AutoPlan {
        try_raw: retained(Resolution::Raw),
        rollup,
        step_ms: base.saturating_mul(factor.max(1)),
    }
}

/// A merged step as the API writes it: `5m`, `25m`, `1h`, `5h`.
pub fn step_name(step_ms: i64) -> String {
    crate::estate::format_duration(step_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_start_on_multiples_of_their_step_before_the_epoch_too() {
        assert_eq!(bucket_start(0, FIVE_MINUTES_MS), 0);
        assert_eq!(bucket_start(299_999, FIVE_MINUTES_MS), 0);
        assert_eq!(bucket_start(300_000, FIVE_MINUTES_MS), 300_000);
        assert_eq!(bucket_start(-1, FIVE_MINUTES_MS), -300_000);
        // 2026-01-01T10:59:59.999Z is in the 10:00 hour.
        let ten = 1_767_261_600_000;
        assert_eq!(bucket_start(ten + HOUR_MS - 1, HOUR_MS), ten);
        // A 5-minute bucket lies in the hour of its start.
        for minute in 0..60 {
            let five = bucket_start(ten + minute * 60_000, FIVE_MINUTES_MS);
            assert_eq!(bucket_start(five, HOUR_MS), ten);
        }
    }

    #[test]
    fn a_rollup_keeps_min_max_avg_and_the_last_value_by_time() {
        let t = 1_767_261_600_000;
        // Out of order: the last value is the latest point's, not the last given.
        let rollups = rollup_points(
            [
                (t + 240_000, 4.0),
                (t, 10.0),
                (t + 60_000, -2.0),
                (t + 300_000, 7.0),
            ],
            FIVE_MINUTES_MS,
        );
        assert_eq!(rollups.len(), 2);
        let first = rollups[0];
        assert_eq!((first.bucket_ms, first.min, first.max), (t, -2.0, 10.0));
        assert_eq!((first.sum, first.count, first.avg()), (12.0, 3, 4.0));
        assert_eq!((first.last, first.last_ms), (4.0, t + 240_000));
        assert_eq!(rollups[1].bucket_ms, t + 300_000);
        assert_eq!(rollups[1].last, 7.0);
    }

    #[test]
    fn a_rollup_of_rollups_equals_the_rollup_of_their_points() {
        let t = 1_767_261_600_000;
        let points: Vec<(i64, f64)> = (0..120)
            .map(|i| (t + i * 30_000, ((i * 37) % 11) as f64 - 3.5))
            .collect();
        let direct = rollup_points(points.iter().copied(), HOUR_MS);
        let via_five = rollup_rollups(
            rollup_points(points.iter().copied(), FIVE_MINUTES_MS),
            HOUR_MS,
        );
        assert_eq!(direct, via_five);
        assert_eq!(direct.len(), 1);
        assert_eq!(direct[0].count, 120);
    }

    #[test]
    fn non_finite_values_are_left_out() {
        let rollups = rollup_points(
            [(0, f64::NAN), (1, f64::INFINITY), (2, 1.0)],
            FIVE_MINUTES_MS,
        );
        assert_eq!(rollups.len(), 1);
        assert_eq!(rollups[0].count, 1);
    }

    #[test]
    fn auto_picks_the_finest_retained_resolution_and_caps_the_points() {
        let retention = Retention::default();
        let now = 1_767_261_600_000;
        // The last hour: raw points are kept; 5-minute roll-ups as the fallback, 13 buckets.
        let plan = plan_auto(now - HOUR_MS, now, now, &retention);
        assert_eq!(
            plan,
            AutoPlan {
                try_raw: true,
                rollup: Resolution::FiveMinutes,
                step_ms: FIVE_MINUTES_MS
            }
        );
        // A week: raw is gone for most of it; 5-minute buckets would be 2,017, so 10 minutes.
        let plan = plan_auto(now - 7 * DAY_MS, now, now, &retention);
        assert!(!plan.try_raw);
        assert_eq!(plan.rollup, Resolution::FiveMinutes);
        assert_eq!(plan.step_ms, 2 * FIVE_MINUTES_MS);
        // 30 days: still 5-minute roll-ups, merged to 25 minutes (1,729 points).
        let plan = plan_auto(now - 30 * DAY_MS, now, now, &retention);
        assert_eq!(plan.rollup, Resolution::FiveMinutes);
        assert_eq!(plan.step_ms, 5 * FIVE_MINUTES_MS);
        assert!((30 * DAY_MS) / plan.step_ms < MAX_AUTO_POINTS);
        // A range older than the 5-minute retention: hourly.
        let plan = plan_auto(now - 40 * DAY_MS, now - 39 * DAY_MS, now, &retention);
        assert_eq!(plan.rollup, Resolution::Hourly);
        assert_eq!(plan.step_ms, HOUR_MS);
        // 400 days of hourly buckets are 9,601: merged to 5 hours.
        let plan = plan_auto(now - 400 * DAY_MS, now, now, &retention);
        assert_eq!(plan.step_ms, 5 * HOUR_MS);
        assert_eq!(step_name(plan.step_ms), "5h");
    }

    #[test]
    fn retention_reports_every_problem_with_its_key() {
        assert!(
            Retention::default()
                .problems("perfdata.retention")
                .is_empty()
        );
        let problems = Retention {
            raw_ms: 60_000,
            five_minutes_ms: 30 * DAY_MS,
            hourly_ms: DAY_MS,
        }
        .problems("perfdata.retention");
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].starts_with("perfdata.retention.raw: must be at least 1h"));
        assert!(
            problems[1]
                .starts_with("perfdata.retention.hourly: 1d is shorter than five_minutes (30d)")
        );
    }
}
