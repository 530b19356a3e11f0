//! `vigie bench correlation`: the correlation engine alone — no server, no store, no base-rule
//! matching — on one thread, with a correlation of Vigie's pack and a deterministic stream
//! spread over many group keys. The stream's stamps span half the correlation's timespan, so
//! every key stays live to the end: what is measured is the cost of many open windows, and the
//! memory each holds (RSS of the process before and after the stream, over the live groups).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use clap::ValueEnum;
use serde_json::{Map, Value};
use vigie_core::rule::correlation::{CorrelationEngine, CorrelationLimits};
use vigie_core::rule::sigma::load_rules;

use super::memory_kib;

/// Which correlation the stream feeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CorrelationBenchKind {
    /// The pack's mass file renaming: `event_count` per `asset`, 1 minute, `gte: 100`.
    #[value(name = "event_count")]
    EventCount,
    /// The pack's spam wave: `value_count` of `recipient` per `sender`, 5 minutes, `gte: 50`.
    #[value(name = "value_count")]
    ValueCount,
    /// A remote logon then the PsExec service on one `Computer` within 10 minutes (the
    /// pack's two lateral-movement rules).
    #[value(name = "temporal")]
    Temporal,
}

const MASS_RENAME: &str = include_str!("../../../../rules/vigie/ransomware_mass_rename.yml");
const SPAM_WAVE: &str = include_str!("../../../../rules/vigie/spam_wave.yml");
const REMOTE_LOGON: &str =
    include_str!("../../../../rules/vigie/lateral_movement_remote_logon.yml");
const PSEXEC: &str = include_str!("../../../../rules/vigie/lateral_movement_psexec_service.yml");
const LOGON_THEN_PSEXEC: &str = "title: Remote logon then PsExec on one host
id: 07fa5243-822a-47a6-bc04-aa8be5c0cad9
correlation:
  type: temporal
  rules:
    - 3b70ac56-25ab-46f7-9dda-6b3855b79194
    - bfed62ef-cf95-4438-ab62-c0e35eb7b6a1
  group-by:
    - Computer
  timespan: 10m
level: high
";

/// Clients the keys are spread over (the client is part of every group key).
const CLIENTS: usize = 100;
/// The pipeline ticks every 15 s; the stream ticks every this many events.
const TICK_EVERY_EVENTS: u64 = 10_000;
/// Distinct recipients per sender in the `value_count` stream (under the rule's 50).
const RECIPIENTS_PER_SENDER: u64 = 20;
/// One event in this many is the second rule of the `temporal` pair.
const SECOND_RULE_ONE_IN: u64 = 100;

/// The correlation, the base rules the stream reports, and the fields of its documents.
struct Workload {
    files: Vec<(String, String)>,
    /// The base rules the stream reports, by id or name; the second only for `temporal`.
    rules: [&'static str; 2],
    /// The group-by field.
    key_field: &'static str,
    /// `value_count`'s field.
    value_field: Option<&'static str>,
}

fn workload(kind: CorrelationBenchKind) -> Workload {
    let file = |name: &str, text: &str| (name.to_owned(), text.to_owned());
    match kind {
        CorrelationBenchKind::EventCount => Workload {
            files: vec![file("ransomware_mass_rename.yml", MASS_RENAME)],
            rules: ["vigie_file_renamed", "vigie_file_renamed"],
            key_field: "asset",
            value_field: None,
        },
        CorrelationBenchKind::ValueCount => Workload {
            files: vec![file("spam_wave.yml", SPAM_WAVE)],
            rules: ["vigie_mail_sent", "vigie_mail_sent"],
            key_field: "sender",
            value_field: Some("recipient"),
        },
        CorrelationBenchKind::Temporal => Workload {
            files: vec![
                file("lateral_movement_remote_logon.yml", REMOTE_LOGON),
                file("lateral_movement_psexec_service.yml", PSEXEC),
                file("logon_then_psexec.yml", LOGON_THEN_PSEXEC),
            ],
            rules: [
                "3b70ac56-25ab-46f7-9dda-6b3855b79194",
                "bfed62ef-cf95-4438-ab62-c0e35eb7b6a1",
            ],
            key_field: "Computer",
            value_field: None,
        },
    }
}

/// A well-mixed, reproducible 64-bit value of `i` (splitmix64's finaliser).
fn mix(i: u64) -> u64 {
    let mut z = i.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Overwrites the text of `document[field]` without allocating once it has grown.
fn set_text(document: &mut Map<String, Value>, field: &str, text: std::fmt::Arguments<'_>) {
    if let Some(Value::String(slot)) = document.get_mut(field) {
        slot.clear();
        let _ = slot.write_fmt(text);
    }
}

pub async fn run(keys: usize, events: u64, kind: CorrelationBenchKind) -> Result<()> {
    tokio::task::spawn_blocking(move || measure(keys, events, kind))
        .await
        .context("the correlation bench panicked")?
}

fn measure(keys: usize, events: u64, kind: CorrelationBenchKind) -> Result<()> {
    ensure!(keys > 0 && events > 0, "keys and events must be positive");
    let workload = workload(kind);
    let set = load_rules(&workload.files, &HashMap::new());
    ensure!(
        set.rejected.is_empty(),
        "bench rules rejected: {:?}",
        set.rejected
    );
    let correlation = set
        .correlations
        .last()
        .context("the bench rules hold no correlation")?;
    let (title, span) = (correlation.title.clone(), correlation.timespan_ms);
    let limits = CorrelationLimits::default();
    let mut engine = CorrelationEngine::from_rule_set(&set, limits);
    let clients: Vec<String> = (0..CLIENTS.min(keys))
        .map(|c| format!("client-{c:03}"))
        .collect();
    let mut document = Map::new();
    document.insert(workload.key_field.to_owned(), Value::String(String::new()));
    if let Some(field) = workload.value_field {
        document.insert(field.to_owned(), Value::String(String::new()));
    }
    let mut document = Value::Object(document);
    // Stamps from an arbitrary start over half the timespan: no window closes during the run.
    let start_ms: i64 = 1_795_774_500_000;
    let stride = (span / 2) as f64 / events as f64;

    let (rss_before, _) = memory_kib();
    let mut matches = 0u64;
    let started = Instant::now();
    for i in 0..events {
        let h = mix(i);
        let key = (h % keys as u64) as usize;
        let client = &clients[key % clients.len()];
        let fields = document
            .as_object_mut()
            .expect("invariant: the document is an object");
        set_text(fields, workload.key_field, format_args!("host-{key:06}"));
        if let Some(field) = workload.value_field {
            let recipient = (h >> 32) % RECIPIENTS_PER_SENDER;
            set_text(fields, field, format_args!("user{recipient}@example.org"));
        }
        let rule = if (h >> 40).is_multiple_of(SECOND_RULE_ONE_IN) {
            workload.rules[1]
        } else {
            workload.rules[0]
        };
        let time = start_ms + (i as f64 * stride) as i64;
        matches += engine.observe(client, rule, &document, time).len() as u64;
        if (i + 1).is_multiple_of(TICK_EVERY_EVENTS) {
            matches += engine.advance(time).len() as u64;
        }
    }
    let elapsed = started.elapsed();
    let (rss_after, peak) = memory_kib();
    let live = engine.live_groups();
    let rate = events as f64 / elapsed.as_secs_f64();
    println!(
        "vigie bench correlation: {} `{title}`, {events} events over {keys} group keys ({} clients), one thread",
        match kind {
            CorrelationBenchKind::EventCount => "event_count",
            CorrelationBenchKind::ValueCount => "value_count",
            CorrelationBenchKind::Temporal => "temporal",
        },
        clients.len(),
    );
    println!(
        "  {:.2} s: {rate:.0} events/s ({:.2} µs per event); {matches} matches",
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e6 / events as f64
    );
    println!(
        "  live groups at the end: {live} (cap {}); evicted: {}",
        limits.max_groups,
        engine.evicted()
    );
    println!(
        "  memory: RSS {} MiB before the stream, {} MiB after, peak {} MiB; {:.0} bytes per live group",
        rss_before / 1024,
        rss_after / 1024,
        peak / 1024,
        rss_after.saturating_sub(rss_before) as f64 * 1024.0 / live.max(1) as f64
    );
    Ok(())
}
