//! `vigie bench perfdata`: the perfdata store on this machine, through the same `Store` calls
//! the supervision runtime and the API make.
//!
//! 1. **Writes.** `--checks` checks with `--labels` labels each report a result per round for
//!    `--rounds` rounds; each round's points are written as the perfdata writer does, in
//!    transactions of at most `--batch` points (multi-row `VALUES`). Points per second over
//!    the whole run, against the 10,000 points/s that 100,000 hosts × 10 services × 3 labels
//!    every 5 minutes need.
//! 2. **Roll-ups.** One maintenance run over what was written (5-minute and hourly roll-ups,
//!    retention): raw points rolled up per second.
//! 3. **A 30-day graph.** One check with `--labels` labels and a point a minute for 30 days
//!    (raw points older than the raw retention are deleted by the maintenance, as in
//!    production), then `GET …/perfdata?step=auto` over the 30 days as the store answers it:
//!    median and worst of `--queries` reads.

use std::time::Instant;

use anyhow::{Result, ensure};
use vigie_core::check::series::{FIVE_MINUTES_MS, Retention, Step};

use crate::store::perfdata::{PerfdataPoint, SeriesIds};
use crate::store::{Scope, Store, scratch};
use crate::supervision::perfdata::maintain_perfdata;

const DAY_MS: i64 = 86_400_000;
/// What 100,000 hosts × 10 services × 3 labels every 5 minutes write.
const TARGET_POINTS_PER_SECOND: f64 = 10_000.0;

/// Arguments of `vigie bench perfdata`.
#[derive(Debug, Clone, clap::Args)]
pub struct PerfdataBenchArgs {
    /// Checks reporting perfdata each round.
    #[arg(long, default_value = "20000")]
    checks: usize,
    /// Labels per result.
    #[arg(long, default_value = "3")]
    labels: usize,
    /// Rounds of results (one result per check per round, 5 minutes apart).
    #[arg(long, default_value = "5")]
    rounds: usize,
    /// Points per transaction, at most.
    #[arg(long, default_value = "10000")]
    batch: usize,
    /// Reads of the 30-day graph timed.
    #[arg(long, default_value = "20")]
    queries: usize,
    /// Database URL; defaults to SQLite in a fresh temporary directory.
    #[arg(long)]
    database: Option<String>,
}

pub async fn run(args: PerfdataBenchArgs) -> Result<()> {
    ensure!(
        args.checks > 0 && args.labels > 0 && args.rounds > 0 && args.batch > 0,
        "--checks, --labels, --rounds and --batch must be more than 0"
    );
    let scratch = scratch::sqlite();
    let url = args.database.clone().unwrap_or_else(|| scratch.url.clone());
    let store = Store::open(&url).await?;
    println!(
        "vigie bench perfdata: {:?} store, {} checks × {} labels × {} rounds, {} points per transaction",
        store.engine(),
        args.checks,
        args.labels,
        args.rounds,
        args.batch
    );
    let now = crate::clock::now_ms();
    let start_ms = now - (args.rounds as i64) * FIVE_MINUTES_MS;

    // 1. Writes.
    let mut ids = SeriesIds::default();
    let mut written = 0usize;
    let mut first_round = None;
    let started = Instant::now();
    for round in 0..args.rounds {
        let round_started = Instant::now();
        let time_ms = start_ms + round as i64 * FIVE_MINUTES_MS;
        let points: Vec<PerfdataPoint> = (0..args.checks)
            .flat_map(|check| (0..args.labels).map(move |label| bench_point(check, label, time_ms)))
            .collect();
        for chunk in points.chunks(args.batch) {
            store.put_perfdata(&mut ids, chunk).await?;
        }
        written += points.len();
        if round == 0 {
            first_round = Some(round_started.elapsed());
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let rate = written as f64 / elapsed;
    println!(
        "  writes:   {written} points in {elapsed:.2} s = {rate:.0} points/s (first round, creating {} series: {:.2} s)",
        args.checks * args.labels,
        first_round.map_or(0.0, |d| d.as_secs_f64())
    );
    println!(
        "            target 100,000 hosts × 10 services × 3 labels / 5 min = {TARGET_POINTS_PER_SECOND:.0} points/s: {} ({:.1}×)",
        if rate >= TARGET_POINTS_PER_SECOND {
            "met"
        } else {
            "NOT met"
        },
        rate / TARGET_POINTS_PER_SECOND
    );

    // 2. Roll-ups.
    let started = Instant::now();
    let report = maintain_perfdata(&store, &Retention::default(), now, i64::MAX).await?;
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "  roll-ups: {} roll-ups from {written} points in {elapsed:.2} s = {:.0} points/s rolled up",
        report.rollups,
        written as f64 / elapsed
    );

    // 3. A 30-day graph of one check.
    let check = "bench:graph:ping";
    let minutes = 30 * 24 * 60;
    let from = now - 30 * DAY_MS;
    let points: Vec<PerfdataPoint> = (0..minutes)
        .flat_map(|minute| {
            (0..args.labels).map(move |label| PerfdataPoint {
                check_id: check.to_owned(),
                ..bench_point(0, label, from + minute as i64 * 60_000)
            })
        })
        .collect();
    for chunk in points.chunks(args.batch) {
        store.put_perfdata(&mut ids, chunk).await?;
    }
    let long = Retention {
        raw_ms: 31 * DAY_MS,
        ..Retention::default()
    };
    let started = Instant::now();
    // Written behind the roll-ups already built: rebuilt as late points are.
    maintain_perfdata(&store, &long, now, from).await?;
    let rollup_secs = started.elapsed().as_secs_f64();
    // Then the raw points beyond the default 2 days go, as they would have.
    maintain_perfdata(&store, &Retention::default(), now, i64::MAX).await?;
    let mut times = Vec::with_capacity(args.queries);
    let mut shown = (String::new(), 0usize);
    for _ in 0..args.queries.max(1) {
        let started = Instant::now();
        let graph = store
            .perfdata_graph(
                &Scope::Client("bench".into()),
                check,
                None,
                from,
                now,
                Step::Auto,
                &Retention::default(),
                now,
            )
            .await?;
        times.push(started.elapsed().as_secs_f64() * 1_000.0);
        ensure!(graph.len() == args.labels, "the graph has every label");
        shown = (
            graph[0].resolution.clone(),
            graph.iter().map(|s| s.points.len()).sum(),
        );
    }
    times.sort_by(f64::total_cmp);
    println!(
        "  graph:    30 days × {} labels of one check at auto step ({} buckets, {} points in all): median {:.1} ms, worst {:.1} ms over {} reads (its roll-up from {} raw points: {:.2} s)",
        args.labels,
        shown.0,
        shown.1,
        times[times.len() / 2],
        times[times.len() - 1],
        times.len(),
        points.len(),
        rollup_secs
    );
    store.close().await;
    Ok(())
}

fn bench_point(check: usize, label: usize, time_ms: i64) -> PerfdataPoint {
    PerfdataPoint {
        check_id: format!("bench:host{}:svc{}", check / 10, check % 10),
        client: "bench".to_owned(),
        label: ["rta", "pl", "size", "load1", "time"][label % 5].to_owned()
            + &"x".repeat(label / 5),
        unit: "ms".to_owned(),
        time_ms,
        value: ((check * 31 + label * 7) as i64 + time_ms / 60_000 % 97) as f64 / 10.0,
        warn: Some("100".to_owned()),
        crit: Some("200".to_owned()),
        min: Some(0.0),
        max: None,
    }
}
