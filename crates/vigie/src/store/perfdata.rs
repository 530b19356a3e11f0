//! Performance data as time series (migration 0005): series (one label of one check in one
//! unit), raw points, and 5-minute and hourly roll-ups, RRD-like. The supervision runtime's
//! perfdata writer inserts the points of each round in one transaction (multi-row `VALUES`);
//! its maintenance task builds the roll-ups of completed buckets and deletes what is older than
//! its retention, a chunk of series per transaction so that it never holds the writer long;
//! the API reads a check's series through the caller's `Scope`.
//!
//! Invariants: a point belongs to the series of its check, label and unit, and the series row
//! names the check's client, on which every read filters; a roll-up row holds what merges
//! exactly (min, max, sum, count, last and its time), so a graph merges buckets without
//! going back to the points; buckets past the stored roll-ups (not yet built) are computed
//! from the raw points when read, so a graph reaches the present at every resolution.

use std::collections::{HashMap, HashSet};

use anyhow::{Context, Result};
use sqlx::Row;
use sqlx::any::AnyRow;
use vigie_core::check::series::{
    FIVE_MINUTES_MS, MAX_AUTO_POINTS, Resolution, Retention, Rollup, Step, bucket_start, plan_auto,
    rollup_points, rollup_rollups, step_name,
};

use super::{Scope, SqlBuilder, Store, values_statement};

/// One value of one label of a check's result, with what the plugin gave beside it.
#[derive(Clone, Debug, PartialEq)]
pub struct PerfdataPoint {
    /// `client:asset:check`.
    pub check_id: String,
    pub client: String,
    pub label: String,
    /// As written (`ms`, `%`, `B`…), empty when there is none.
    pub unit: String,
    pub time_ms: i64,
    pub value: f64,
    /// The warning and critical ranges, as range text (`10`, `@5:10`…).
    pub warn: Option<String>,
    pub crit: Option<String>,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

/// A series as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct PerfdataSeries {
    pub id: i64,
    pub check_id: String,
    pub client: String,
    pub label: String,
    pub unit: String,
}

/// The series ids a writer already knows, so that a round's points are inserted without
/// asking for them. Bounded: forgotten whole when full, then asked again.
#[derive(Default)]
pub struct SeriesIds {
    /// By a 128-bit hash of (check, label, unit), as two halves (a `u128` would align the
    /// entries on 16 bytes): 24 bytes a series, where the names
    /// themselves took ~250 on a million series. Two series colliding on 128 bits of
    /// SipHash is not a risk at any estate's size.
    ids: HashMap<(u64, u64), i64>,
}

impl SeriesIds {
    fn key(check_id: &str, label: &str, unit: &str) -> (u64, u64) {
        use std::hash::{DefaultHasher, Hash, Hasher};
        let half = |seed: u8| {
            // `DefaultHasher::new` is keyed the same within a run, which is all this
            // in-memory map needs.
            let mut hasher = DefaultHasher::new();
            (seed, check_id, label, unit).hash(&mut hasher);
            hasher.finish()
        };
        (half(0), half(1))
    }

    fn get(&self, check_id: &str, label: &str, unit: &str) -> Option<i64> {
        self.ids.get(&Self::key(check_id, label, unit)).copied()
    }

    fn insert(&mut self, check_id: &str, label: &str, unit: &str, id: i64) {
        self.ids.insert(Self::key(check_id, label, unit), id);
    }

    fn len(&self) -> usize {
        self.ids.len()
    }

    fn clear(&mut self) {
        // Its capacity goes too: the map was full-sized.
        self.ids = HashMap::new();
    }
}

const SERIES_IDS_KEPT: usize = 2_000_000;

/// A series of a graph, at the resolution it was read.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesGraph {
    pub label: String,
    pub unit: String,
    /// `raw`, `5m`, `1h`, or a merged step (`25m`, `5h`) at `auto`.
    pub resolution: String,
    /// The bucket length; `None` for raw points.
    pub step_ms: Option<i64>,
    pub points: GraphPoints,
    /// More points than a graph returns were in the range: the first ones are returned.
    pub truncated: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub enum GraphPoints {
    Raw(Vec<(i64, f64)>),
    Rollups(Vec<Rollup>),
}

impl GraphPoints {
    pub fn len(&self) -> usize {
        match self {
            GraphPoints::Raw(points) => points.len(),
            GraphPoints::Rollups(rollups) => rollups.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// At most this many points per series at a fixed step (`raw`, `5m`, `1h`).
pub const MAX_FIXED_POINTS: usize = 10_000;
/// Raw points read at most to compute the buckets not yet rolled up.
const MAX_TAIL_POINTS: i64 = 200_000;

// 7 columns × 1,000 rows: far below SQLite's 32,766 bound parameters and PostgreSQL's 65,535.
const POINT_ROWS_PER_STATEMENT: usize = 1_000;
// 9 columns × 1,000 rows.
const ROLLUP_ROWS_PER_STATEMENT: usize = 1_000;
// 4 columns × 500 rows.
const SERIES_ROWS_PER_STATEMENT: usize = 500;

impl Store {
    /// Writes points in one transaction, creating their series first when new. A point at
    /// the same time as a stored one of its series replaces it.
    pub async fn put_perfdata(&self, ids: &mut SeriesIds, points: &[PerfdataPoint]) -> Result<()> {
        if points.is_empty() {
            return Ok(());
        }
        self.resolve_series(ids, points).await?;
        // PostgreSQL refuses a statement that updates one row twice: the last point of a
        // series at one instant wins.
        let mut rows: HashMap<(i64, i64), &PerfdataPoint> = HashMap::with_capacity(points.len());
        for point in points {
            let Some(series) = ids.get(&point.check_id, &point.label, &point.unit) else {
                // Only when the bound emptied the map between resolving and here: cannot
                // happen within one call, but a point is never worth a panic.
                continue;
            };
            rows.insert((series, point.time_ms), point);
        }
        let rows: Vec<((i64, i64), &PerfdataPoint)> = rows.into_iter().collect();
        let mut tx = self
            .writer
            .begin()
            .await
            .context("cannot begin transaction")?;
        for chunk in rows.chunks(POINT_ROWS_PER_STATEMENT) {
            let mut sql = values_statement(
                self.engine,
                "INSERT INTO perfdata_points (series_id, time_ms, value, warn, crit, min_value, max_value) VALUES ",
                7,
                chunk.len(),
            );
            sql.push_str(
                " ON CONFLICT (series_id, time_ms) DO UPDATE SET value = excluded.value, \
                 warn = excluded.warn, crit = excluded.crit, min_value = excluded.min_value, \
                 max_value = excluded.max_value",
            );
            // Not kept prepared: sqlx's `Any` declares a NULL `f64` as `real` (float4) to
            // PostgreSQL, and a statement prepared with a NULL `min`/`max` would refuse the
            // next call's `double precision` in that place ("incorrect binary data format").
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(false);
            for ((series, time_ms), point) in chunk {
                query = query
                    .bind(*series)
                    .bind(*time_ms)
                    .bind(point.value)
                    .bind(point.warn.as_deref())
                    .bind(point.crit.as_deref())
                    .bind(point.min)
                    .bind(point.max);
            }
            query
                .execute(&mut *tx)
                .await
                .context("cannot insert perfdata points")?;
        }
        tx.commit().await.context("cannot commit perfdata points")?;
        Ok(())
    }

    /// Makes sure every point's series exists and its id is in `ids`.
    async fn resolve_series(&self, ids: &mut SeriesIds, points: &[PerfdataPoint]) -> Result<()> {
        let mut missing: Vec<&PerfdataPoint> = Vec::new();
        let mut seen = HashSet::new();
        for point in points {
            let key = (
                point.check_id.as_str(),
                point.label.as_str(),
                point.unit.as_str(),
            );
            let known = ids.get(key.0, key.1, key.2).is_some();
            if !known && seen.insert(key) {
                missing.push(point);
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        if ids.len() + missing.len() > SERIES_IDS_KEPT {
            ids.clear();
        }
        for chunk in missing.chunks(SERIES_ROWS_PER_STATEMENT) {
            let mut sql = values_statement(
                self.engine,
                "INSERT INTO perfdata_series (check_id, client_id, label, unit) VALUES ",
                4,
                chunk.len(),
            );
            sql.push_str(" ON CONFLICT (check_id, label, unit) DO NOTHING");
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for point in chunk {
                query = query
                    .bind(point.check_id.as_str())
                    .bind(point.client.as_str())
                    .bind(point.label.as_str())
                    .bind(point.unit.as_str());
            }
            query
                .execute(&self.writer)
                .await
                .context("cannot create perfdata series")?;
            let checks: Vec<String> = chunk
                .iter()
                .map(|point| point.check_id.clone())
                .collect::<HashSet<_>>()
                .into_iter()
                .collect();
            let mut select =
                SqlBuilder::new("SELECT id, check_id, label, unit FROM perfdata_series WHERE 1=1");
            select.and_in("check_id", checks);
            for row in select.fetch_all(&self.writer).await? {
                ids.insert(
                    &row.try_get::<String, _>("check_id")?,
                    &row.try_get::<String, _>("label")?,
                    &row.try_get::<String, _>("unit")?,
                    row.try_get::<i64, _>("id")?,
                );
            }
        }
        Ok(())
    }

    /// The series of a check the scope allows, one label or all, by label and unit.
    pub async fn perfdata_series(
        &self,
        scope: &Scope,
        check_id: &str,
        label: Option<&str>,
    ) -> Result<Vec<PerfdataSeries>> {
        let mut sql = SqlBuilder::new(
            "SELECT id, check_id, client_id, label, unit FROM perfdata_series WHERE 1=1",
        );
        sql.scope(scope);
        sql.and("check_id = ", check_id.to_owned());
        if let Some(label) = label {
            sql.and("label = ", label.to_owned());
        }
        sql.sql.push_str(" ORDER BY label, unit, id");
        sql.fetch_all(&self.readers)
            .await?
            .iter()
            .map(|row| {
                Ok(PerfdataSeries {
                    id: row.try_get("id")?,
                    check_id: row.try_get("check_id")?,
                    client: row.try_get("client_id")?,
                    label: row.try_get("label")?,
                    unit: row.try_get("unit")?,
                })
            })
            .collect()
    }

    /// Raw points of a series in `[from_ms, to_ms)`, in time order, at most `limit`.
    pub async fn perfdata_raw(
        &self,
        series_id: i64,
        from_ms: i64,
        to_ms: i64,
        limit: i64,
    ) -> Result<Vec<(i64, f64)>> {
        sqlx::query(
            "SELECT time_ms, value FROM perfdata_points WHERE series_id = $1 AND time_ms >= $2 \
             AND time_ms < $3 ORDER BY time_ms LIMIT $4",
        )
        .bind(series_id)
        .bind(from_ms)
        .bind(to_ms)
        .bind(limit)
        .fetch_all(&self.readers)
        .await?
        .iter()
        .map(|row| Ok((row.try_get("time_ms")?, row.try_get("value")?)))
        .collect()
    }

    /// Stored roll-ups of a series whose bucket starts in `[from_ms, to_ms)`, in time order.
    pub async fn perfdata_rollups(
        &self,
        series_id: i64,
        step_ms: i64,
        from_ms: i64,
        to_ms: i64,
        limit: i64,
    ) -> Result<Vec<Rollup>> {
        sqlx::query(
            "SELECT bucket_ms, min_value, max_value, sum_value, count_value, last_value, last_ms \
             FROM perfdata_rollups WHERE series_id = $1 AND step_ms = $2 AND bucket_ms >= $3 \
             AND bucket_ms < $4 ORDER BY bucket_ms LIMIT $5",
        )
        .bind(series_id)
        .bind(step_ms)
        .bind(from_ms)
        .bind(to_ms)
        .bind(limit)
        .fetch_all(&self.readers)
        .await?
        .iter()
        .map(rollup_row)
        .collect()
    }

    /// Until when the roll-ups of `step_ms` are built (every bucket before it), if ever.
    pub async fn perfdata_rolled_until(&self, step_ms: i64) -> Result<Option<i64>> {
        let row = sqlx::query("SELECT done_until_ms FROM perfdata_rollup_state WHERE step_ms = $1")
            .bind(step_ms)
            .fetch_optional(&self.readers)
            .await?;
        Ok(row.map(|row| row.try_get("done_until_ms")).transpose()?)
    }

    pub async fn set_perfdata_rolled_until(&self, step_ms: i64, until_ms: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO perfdata_rollup_state (step_ms, done_until_ms) VALUES ($1, $2) \
             ON CONFLICT (step_ms) DO UPDATE SET done_until_ms = excluded.done_until_ms",
        )
        .bind(step_ms)
        .bind(until_ms)
        .execute(&self.writer)
        .await
        .context("cannot record the perfdata roll-up progress")?;
        Ok(())
    }

    /// The highest series id (0 when there is none): maintenance walks `(0, max]` in chunks.
    pub async fn perfdata_max_series_id(&self) -> Result<i64> {
        let row = sqlx::query("SELECT COALESCE(MAX(id), 0) AS max_id FROM perfdata_series")
            .fetch_one(&self.readers)
            .await?;
        Ok(row.try_get("max_id")?)
    }

    /// Builds (or rebuilds) the roll-ups of `resolution` whose bucket starts in
    /// `[from_ms, to_ms)` (bucket-aligned) for the series with an id in `(after, up_to]`:
    /// 5-minute ones from the raw points, hourly ones from the 5-minute ones. One transaction;
    /// returns how many roll-ups were written.
    pub async fn rollup_perfdata(
        &self,
        resolution: Resolution,
        series: (i64, i64),
        from_ms: i64,
        to_ms: i64,
    ) -> Result<usize> {
        let Some(step_ms) = resolution.step_ms() else {
            anyhow::bail!("raw points are not rolled up");
        };
        let (after, up_to) = series;
        let mut built: Vec<(i64, Rollup)> = Vec::new();
        if resolution == Resolution::FiveMinutes {
            let rows = sqlx::query(
                "SELECT p.series_id, p.time_ms, p.value FROM perfdata_series s \
                 JOIN perfdata_points p ON p.series_id = s.id AND p.time_ms >= $3 AND p.time_ms < $4 \
                 WHERE s.id > $1 AND s.id <= $2 ORDER BY p.series_id, p.time_ms",
            )
            .bind(after)
            .bind(up_to)
            .bind(from_ms)
            .bind(to_ms)
            .fetch_all(&self.readers)
            .await
            .context("cannot read perfdata points to roll up")?;
            let mut current: Option<(i64, Vec<(i64, f64)>)> = None;
            for row in &rows {
                let series_id: i64 = row.try_get("series_id")?;
                let point = (row.try_get("time_ms")?, row.try_get("value")?);
                match &mut current {
                    Some((id, points)) if *id == series_id => points.push(point),
                    _ => {
                        if let Some((id, points)) = current.take() {
                            built.extend(
                                rollup_points(points, step_ms).into_iter().map(|r| (id, r)),
                            );
                        }
                        current = Some((series_id, vec![point]));
                    }
                }
            }
            if let Some((id, points)) = current {
                built.extend(rollup_points(points, step_ms).into_iter().map(|r| (id, r)));
            }
        } else {
            let rows = sqlx::query(
                "SELECT r.series_id, r.bucket_ms, r.min_value, r.max_value, r.sum_value, \
                 r.count_value, r.last_value, r.last_ms FROM perfdata_series s \
                 JOIN perfdata_rollups r ON r.series_id = s.id AND r.step_ms = $3 \
                 AND r.bucket_ms >= $4 AND r.bucket_ms < $5 \
                 WHERE s.id > $1 AND s.id <= $2 ORDER BY r.series_id, r.bucket_ms",
            )
            .bind(after)
            .bind(up_to)
            .bind(FIVE_MINUTES_MS)
            .bind(from_ms)
            .bind(to_ms)
            .fetch_all(&self.readers)
            .await
            .context("cannot read perfdata roll-ups to roll up")?;
            let mut current: Option<(i64, Vec<Rollup>)> = None;
            for row in &rows {
                let series_id: i64 = row.try_get("series_id")?;
                let rollup = rollup_row(row)?;
                match &mut current {
                    Some((id, rollups)) if *id == series_id => rollups.push(rollup),
                    _ => {
                        if let Some((id, rollups)) = current.take() {
                            built.extend(
                                rollup_rollups(rollups, step_ms)
                                    .into_iter()
                                    .map(|r| (id, r)),
                            );
                        }
                        current = Some((series_id, vec![rollup]));
                    }
                }
            }
            if let Some((id, rollups)) = current {
                built.extend(
                    rollup_rollups(rollups, step_ms)
                        .into_iter()
                        .map(|r| (id, r)),
                );
            }
        }
        if built.is_empty() {
            return Ok(0);
        }
        let mut tx = self
            .writer
            .begin()
            .await
            .context("cannot begin transaction")?;
        for chunk in built.chunks(ROLLUP_ROWS_PER_STATEMENT) {
            let mut sql = values_statement(
                self.engine,
                "INSERT INTO perfdata_rollups (series_id, step_ms, bucket_ms, min_value, max_value, \
                 sum_value, count_value, last_value, last_ms) VALUES ",
                9,
                chunk.len(),
            );
            sql.push_str(
                " ON CONFLICT (series_id, step_ms, bucket_ms) DO UPDATE SET \
                 min_value = excluded.min_value, max_value = excluded.max_value, \
                 sum_value = excluded.sum_value, count_value = excluded.count_value, \
                 last_value = excluded.last_value, last_ms = excluded.last_ms",
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (series_id, rollup) in chunk {
                query = query
                    .bind(*series_id)
                    .bind(step_ms)
                    .bind(rollup.bucket_ms)
                    .bind(rollup.min)
                    .bind(rollup.max)
                    .bind(rollup.sum)
                    .bind(rollup.count)
                    .bind(rollup.last)
                    .bind(rollup.last_ms);
            }
            query
                .execute(&mut *tx)
                .await
                .context("cannot write perfdata roll-ups")?;
        }
        tx.commit()
            .await
            .context("cannot commit perfdata roll-ups")?;
        Ok(built.len())
    }

    /// Deletes the points (or roll-ups) of `resolution` older than `before_ms` of the series
    /// with an id in `(after, up_to]`; returns how many rows went.
    pub async fn expire_perfdata(
        &self,
        resolution: Resolution,
        series: (i64, i64),
        before_ms: i64,
    ) -> Result<u64> {
        let (after, up_to) = series;
        let query = match resolution.step_ms() {
            None => sqlx::query(
                "DELETE FROM perfdata_points WHERE series_id IN \
                 (SELECT id FROM perfdata_series WHERE id > $1 AND id <= $2) AND time_ms < $3",
            )
            .bind(after)
            .bind(up_to)
            .bind(before_ms),
            Some(step_ms) => sqlx::query(
                "DELETE FROM perfdata_rollups WHERE series_id IN \
                 (SELECT id FROM perfdata_series WHERE id > $1 AND id <= $2) AND step_ms = $4 \
                 AND bucket_ms < $3",
            )
            .bind(after)
            .bind(up_to)
            .bind(before_ms)
            .bind(step_ms),
        };
        let done = query
            .execute(&self.writer)
            .await
            .context("cannot delete expired perfdata")?;
        Ok(done.rows_affected())
    }

    /// A check's series over `[from_ms, to_ms)` at `step`, as a graph reads them: through the
    /// scope (a check of another client has no series). `auto` reads raw points when they are
    /// kept over the whole range and few enough, else the finest roll-up kept, merged so that
    /// a series has at most `MAX_AUTO_POINTS` points.
    #[allow(clippy::too_many_arguments)]
    pub async fn perfdata_graph(
        &self,
        scope: &Scope,
        check_id: &str,
        label: Option<&str>,
        from_ms: i64,
        to_ms: i64,
        step: Step,
        retention: &Retention,
        now_ms: i64,
    ) -> Result<Vec<SeriesGraph>> {
        let series = self.perfdata_series(scope, check_id, label).await?;
        let mut graphs = Vec::with_capacity(series.len());
        let mut rolled: HashMap<i64, Option<i64>> = HashMap::new();
        for one in series {
            let graph = |resolution: String, step_ms, points: GraphPoints, truncated| SeriesGraph {
                label: one.label.clone(),
                unit: one.unit.clone(),
                resolution,
                step_ms,
                points,
                truncated,
            };
            let fixed_limit = MAX_FIXED_POINTS as i64 + 1;
            let found = match step {
                Step::Fixed(Resolution::Raw) => {
                    let mut points = self
                        .perfdata_raw(one.id, from_ms, to_ms, fixed_limit)
                        .await?;
                    let truncated = points.len() > MAX_FIXED_POINTS;
                    points.truncate(MAX_FIXED_POINTS);
                    graph("raw".into(), None, GraphPoints::Raw(points), truncated)
                }
                Step::Fixed(resolution) => {
                    let step_ms = resolution
                        .step_ms()
                        .expect("invariant: a roll-up has a step");
                    let mut rollups = self
                        .rollups_to_now(&mut rolled, one.id, resolution, from_ms, to_ms)
                        .await?;
                    let truncated = rollups.len() > MAX_FIXED_POINTS;
                    rollups.truncate(MAX_FIXED_POINTS);
                    graph(
                        resolution.as_str().into(),
                        Some(step_ms),
                        GraphPoints::Rollups(rollups),
                        truncated,
                    )
                }
                Step::Auto => {
                    let plan = plan_auto(from_ms, to_ms, now_ms, retention);
                    let mut raw = None;
                    if plan.try_raw {
                        let points = self
                            .perfdata_raw(one.id, from_ms, to_ms, MAX_AUTO_POINTS + 1)
                            .await?;
                        if points.len() as i64 <= MAX_AUTO_POINTS {
                            raw = Some(points);
                        }
                    }
                    match raw {
                        Some(points) => graph("raw".into(), None, GraphPoints::Raw(points), false),
                        None => {
                            let mut rollups = self
                                .rollups_to_now(&mut rolled, one.id, plan.rollup, from_ms, to_ms)
                                .await?;
                            if Some(plan.step_ms) != plan.rollup.step_ms() {
                                rollups = rollup_rollups(rollups, plan.step_ms);
                            }
                            let truncated = rollups.len() as i64 > MAX_AUTO_POINTS;
                            rollups.truncate(MAX_AUTO_POINTS as usize);
                            graph(
                                step_name(plan.step_ms),
                                Some(plan.step_ms),
                                GraphPoints::Rollups(rollups),
                                truncated,
                            )
                        }
                    }
                }
            };
            graphs.push(found);
        }
        Ok(graphs)
    }

    /// The roll-ups of a series over the buckets that meet `[from_ms, to_ms)`: those built,
    /// then those not yet built computed from the raw points.
    async fn rollups_to_now(
        &self,
        rolled: &mut HashMap<i64, Option<i64>>,
        series_id: i64,
        resolution: Resolution,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<Rollup>> {
        let step_ms = resolution
            .step_ms()
            .expect("invariant: a roll-up has a step");
        let done = match rolled.get(&step_ms) {
            Some(done) => *done,
            None => {
                let done = self.perfdata_rolled_until(step_ms).await?;
                rolled.insert(step_ms, done);
                done
            }
        };
        let start = bucket_start(from_ms, step_ms);
        let built_until = done.unwrap_or(i64::MIN).min(to_ms);
        let mut rollups = if built_until > start {
            self.perfdata_rollups(series_id, step_ms, start, built_until, i64::MAX)
                .await?
        } else {
            Vec::new()
        };
        let tail_from = start.max(built_until);
        if tail_from < to_ms {
            let points = self
                .perfdata_raw(series_id, tail_from, to_ms, MAX_TAIL_POINTS)
                .await?;
            rollups.extend(rollup_points(points, step_ms));
        }
        Ok(rollups)
    }
}

fn rollup_row(row: &AnyRow) -> Result<Rollup> {
    Ok(Rollup {
        bucket_ms: row.try_get("bucket_ms")?,
        min: row.try_get("min_value")?,
        max: row.try_get("max_value")?,
        sum: row.try_get("sum_value")?,
        count: row.try_get("count_value")?,
        last: row.try_get("last_value")?,
        last_ms: row.try_get("last_ms")?,
    })
}
