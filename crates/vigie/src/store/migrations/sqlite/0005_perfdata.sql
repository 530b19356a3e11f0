-- Vigie schema v5, SQLite dialect: performance data as time series. A series is one label of
-- one check in one unit (a changed unit starts a new series); its raw points keep the
-- thresholds and limits as the plugin gave them; roll-ups keep per bucket what merges exactly
-- (min, max, sum, count, last). Retention deletes by series and time, so both point tables
-- are clustered on (series, time).
CREATE TABLE perfdata_series (
    id INTEGER PRIMARY KEY,
    check_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    label TEXT NOT NULL,
    unit TEXT NOT NULL,
    UNIQUE (check_id, label, unit)
);
CREATE TABLE perfdata_points (
    series_id INTEGER NOT NULL,
    time_ms INTEGER NOT NULL,
    value REAL NOT NULL,
    warn TEXT,
    crit TEXT,
    min_value REAL,
    max_value REAL,
    PRIMARY KEY (series_id, time_ms)
) WITHOUT ROWID;
CREATE TABLE perfdata_rollups (
    series_id INTEGER NOT NULL,
    step_ms INTEGER NOT NULL,
    bucket_ms INTEGER NOT NULL,
    min_value REAL NOT NULL,
    max_value REAL NOT NULL,
    sum_value REAL NOT NULL,
    count_value INTEGER NOT NULL,
    last_value REAL NOT NULL,
    last_ms INTEGER NOT NULL,
    PRIMARY KEY (series_id, step_ms, bucket_ms)
) WITHOUT ROWID;
-- Per roll-up step: every bucket before `done_until_ms` is built.
CREATE TABLE perfdata_rollup_state (
    step_ms INTEGER PRIMARY KEY,
    done_until_ms INTEGER NOT NULL
);
