//! `vigie hunt`: run Sigma rules over files taken from a machine (EVTX logs, JSON exports) and
//! list every rule that fires, the way an analyst uses Hayabusa on a seized disk. Nothing is
//! stored and no incident is opened: the hunt reads files and writes matches.
//!
//! Logsource: each event is tested only against the rules its logsource admits
//! (`vigie_core::rule::detect::EventLogSource`): an EVTX record, or a JSON event in the
//! evtx_dump layout, is a Windows event whose channel and event id imply a category (Sysmon's
//! ids, Security 4688, PowerShell's script and module logs) and a service; a rule for another
//! product, category or service is not evaluated on it. JSON events that state nothing get
//! every rule. The mapping is the built-in logsource map, after the operator's
//! (`--logsource-map FILE`, docs/logsources.md) when one is given.
//!
//! Tuned for a client (`--estate DIR`, `--client ID`, `--sigma-filters DIR`, see `tuning`): the
//! rules are compiled as `vigie serve` compiles them for that client — `expand` placeholders
//! with its values, its filters and those for every client — and every event read is that
//! client's, so the hunt matches what serve would have alerted on for it. Without an estate,
//! rules with placeholders are rejected and no filter applies.
//!
//! The estate is serve's: the files of `--estate` and the clients and assets created through
//! the API, read from serve's store as serve resolves it (`--database`, `--data-dir`, the
//! config file; `EstateStore`). The store is only read, never created or migrated: when none
//! is named and the default data directory holds no database, the estate is its files alone,
//! and stderr says so.
//!
//! Invariant: one bad record, value or file never stops the hunt; it is counted and reported on
//! stderr at the end. Only a path or rule directory named on the command line that cannot be
//! read, or tuning that cannot be applied (an estate that does not load, a named store that
//! does not open, an unknown client, a rejected filter of the client's), is an error.

mod output;
mod source;
mod tuning;

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::ValueEnum;
use serde_json::Value;

use vigie_core::rule::detect::DetectionSet;
use vigie_core::rule::sigma::{CompiledRule, SigmaLevel, load_rules};

pub use output::{HuntFormat, HuntMatch, MatchWriter};
pub use source::{FileKind, Location, discover_files, read_events};
pub use tuning::EstateStore;

use crate::rule::{DetectionSources, located, read_detection};

/// Arguments of `vigie hunt`.
#[derive(Debug, Clone, clap::Args)]
pub struct HuntArgs {
    /// Files or directories to hunt in; directories are searched recursively for `*.evtx`,
    /// `*.json`, `*.jsonl` and `*.ndjson`.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Directory of Sigma rules, read recursively; may be given several times.
    #[arg(long = "rules", value_name = "DIR", required = true)]
    pub rules: Vec<PathBuf>,
    /// Output format on stdout.
    #[arg(long, value_enum, default_value_t = HuntFormat::Table)]
    pub format: HuntFormat,
    /// Only run rules of this level or above (rules without a level count as informational).
    #[arg(long, value_enum, default_value_t = MinLevel::Informational)]
    pub min_level: MinLevel,
    /// List every rejected rule with its reason.
    #[arg(short, long)]
    pub verbose: bool,
    /// A logsource map (YAML, docs/logsources.md) consulted before the built-in one: which
    /// Sigma product, category and service events stand for.
    #[arg(long = "logsource-map", value_name = "FILE")]
    pub logsource_map: Option<PathBuf>,
    /// An estate directory: hunt with the tuning `vigie serve` applies to one of its clients
    /// (placeholder values, filters), every event being that client's. The clients and assets
    /// created through serve's API are read from its store (see the store options).
    #[arg(long, value_name = "DIR")]
    pub estate: Option<PathBuf>,
    /// The client of the estate whose tuning applies, from the files or created through the
    /// API; needed when the estate has several.
    #[arg(long, value_name = "ID", requires = "estate")]
    pub client: Option<String>,
    /// A directory of Sigma filters, as `vigie serve --sigma-filters` reads it: its files tune
    /// every client, those of `DIR/<client-id>/` that client.
    #[arg(long = "sigma-filters", value_name = "DIR", requires = "estate")]
    pub sigma_filters: Option<PathBuf>,
}

/// `--min-level`, the Sigma levels as the command line spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MinLevel {
    Informational,
    Low,
    Medium,
    High,
    Critical,
}

impl MinLevel {
    fn sigma(self) -> SigmaLevel {
        match self {
            MinLevel::Informational => SigmaLevel::Informational,
            MinLevel::Low => SigmaLevel::Low,
            MinLevel::Medium => SigmaLevel::Medium,
            MinLevel::High => SigmaLevel::High,
            MinLevel::Critical => SigmaLevel::Critical,
        }
    }
}

/// Counts shown by the progress line and the summary.
#[derive(Debug, Default)]
struct HuntCounts {
    files: u64,
    events: u64,
    matches: u64,
    per_level: [u64; 6],
}

/// Runs the hunt; the exit code is success whenever the hunt ran, matches or not. `store` is
/// where a tuned hunt (`--estate`) reads the estate objects created through the API (`None`:
/// the estate is its files alone); it is closed once read. Only that read awaits: the hunt
/// then runs without yielding, on the command line's `block_on` thread, which no task shares.
pub async fn run(args: HuntArgs, store: Option<EstateStore>) -> Result<ExitCode> {
    let started = Instant::now();
    let files = discover_files(&args.paths)?;
    for dir in &args.rules {
        if !dir.is_dir() {
            // `read_rule_dir` would say the same; checking here names the directory plainly.
            std::fs::read_dir(dir)
                .with_context(|| format!("cannot read rule directory {}", dir.display()))?;
        }
    }
    let detection = read_detection(&DetectionSources {
        rules: args.rules.clone(),
        filters: args.sigma_filters.clone(),
        logsource_map: args.logsource_map.clone(),
    })?;
    if let (Some(path), Some((_, entries))) = (&args.logsource_map, &detection.logsource_map) {
        eprintln!(
            "logsource map: {entries} entries from {}, then the built-in ones",
            path.display()
        );
    }
    let (mut set, client) = match &args.estate {
        None => {
            let mut set = load_rules(&detection.rules, &HashMap::new());
            // As before tuning existed: filter documents among the rules are not applied.
            set.filters.clear();
            set.logsource_map = detection.logsource_map.map(|(map, _)| map);
            eprintln!(
                "{} rules loaded, {} rejected in {:.2} s",
                set.rules.len(),
                set.rejected.len(),
                started.elapsed().as_secs_f64()
            );
            (set, None)
        }
        Some(estate_dir) => {
            let estate = tuning::read_estate_with_api_objects(estate_dir, store).await?;
            let client = tuning::pick_client(&estate, estate_dir, args.client.as_deref())?;
            let (set, outcome) = tuning::compile_for_client(detection, &estate, &client)?;
            for notice in &set.notices {
                eprintln!(
                    "{}",
                    located(
                        &notice.path,
                        notice.line,
                        notice.rule_id.as_deref(),
                        &format!("notice: {}", notice.message)
                    )
                );
            }
            let not_for_client = match outcome.not_for_client {
                0 => String::new(),
                n => format!(" ({n} with placeholders do not run for it)"),
            };
            let filters = match args.sigma_filters {
                Some(_) => format!(", {} filters", set.filter_count()),
                None => String::new(),
            };
            eprintln!(
                "{} rules loaded for client `{client}`{not_for_client}, {} rejected{filters} \
                 in {:.2} s",
                set.rules.len() + set.per_client.len(),
                set.rejected.len(),
                started.elapsed().as_secs_f64()
            );
            (set, Some(client))
        }
    };
    if args.verbose {
        for rejection in &set.rejected {
            let line = rejection.line.map(|l| format!(":{l}")).unwrap_or_default();
            let id = rejection
                .rule_id
                .as_deref()
                .map(|id| format!(" rule {id}:"))
                .unwrap_or_default();
            eprintln!("  {}{line}:{id} {}", rejection.path, rejection.reason);
        }
    } else if !set.rejected.is_empty() {
        eprintln!("  (run with --verbose to list the rejected rules and why)");
    }

    let min_level = args.min_level.sigma();
    let kept = |level: Option<SigmaLevel>| level.unwrap_or(SigmaLevel::Informational) >= min_level;
    set.rules.retain(|compiled| kept(compiled.rule.level));
    set.per_client
        .retain(|per_client| kept(per_client.rule.level));
    if args.min_level != MinLevel::Informational {
        eprintln!(
            "{} rules at level {} or above",
            set.rules.len() + set.per_client.len(),
            output::level_name(Some(min_level))
        );
    }

    // The set serve evaluates events with: it keeps a client's copies of a rule to that
    // client's events and applies the filters scoped to the event's client.
    let engine = DetectionSet::new(set);
    let hunt_started = Instant::now();
    let stdout = std::io::stdout().lock();
    let mut writer = MatchWriter::new(args.format, std::io::BufWriter::new(stdout));
    let mut counts = HuntCounts::default();
    let mut progress = Progress::new(std::io::stderr().is_terminal());
    let mut unreadable: Vec<String> = Vec::new();
    let mut bad_records: Vec<(String, source::ReadProblems)> = Vec::new();
    let mut write_error: Option<std::io::Error> = None;

    for (path, kind) in &files {
        let file = path.display().to_string();
        counts.files += 1;
        let outcome = read_events(path, *kind, &mut |location, event| {
            counts.events += 1;
            if write_error.is_some() {
                return;
            }
            // Serve's event document gives the event's client the same way, over any field.
            if let (Some(client), Value::Object(fields)) = (&client, &mut *event) {
                fields.insert("client".to_owned(), Value::String(client.clone()));
            }
            for index in engine.matching_document(event) {
                let Some(rule) = engine.rules().get(index as usize) else {
                    continue;
                };
                let found = describe_match(&file, location, event, rule);
                counts.matches += 1;
                counts.per_level[level_index(found.level)] += 1;
                if let Err(error) = writer.write(found) {
                    write_error = Some(error);
                    return;
                }
            }
            progress.update(&counts);
        });
        if let Some(error) = write_error.take() {
            progress.clear();
            return Err(error).context("cannot write the matches");
        }
        match outcome {
            Ok(problems) if problems.failed > 0 => bad_records.push((file, problems)),
            Ok(_) => {}
            Err(error) => unreadable.push(format!("{error:#}")),
        }
        progress.update(&counts);
    }
    progress.clear();
    writer.finish().context("cannot write the matches")?;

    for problem in &unreadable {
        eprintln!("warning: {problem}");
    }
    for (file, problems) in &bad_records {
        eprintln!(
            "warning: {file}: skipped {} unreadable record(s): {}",
            problems.failed,
            problems.reasons.join("; ")
        );
    }
    eprintln!("{}", summary(&counts, hunt_started.elapsed()));
    let failed_records: u64 = bad_records.iter().map(|(_, p)| p.failed).sum();
    if !unreadable.is_empty() || failed_records > 0 {
        eprintln!(
            "skipped: {} unreadable file(s), {failed_records} unreadable record(s)",
            unreadable.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn level_index(level: Option<SigmaLevel>) -> usize {
    match level {
        None => 0,
        Some(SigmaLevel::Informational) => 1,
        Some(SigmaLevel::Low) => 2,
        Some(SigmaLevel::Medium) => 3,
        Some(SigmaLevel::High) => 4,
        Some(SigmaLevel::Critical) => 5,
    }
}

fn describe_match(file: &str, location: Location, event: &Value, rule: &CompiledRule) -> HuntMatch {
    let system = event
        .pointer("/Event/System")
        .or_else(|| event.pointer("/System"));
    let time = system
        .and_then(|s| s.pointer("/TimeCreated/#attributes/SystemTime"))
        .or_else(|| event.get("@timestamp"))
        .or_else(|| event.get("timestamp"))
        .and_then(scalar_text);
    let computer = system.and_then(|s| s.get("Computer")).and_then(scalar_text);
    let event_id = system.and_then(|s| s.get("EventID")).and_then(|id| {
        // With qualifiers, evtx renders `{"#attributes": {"Qualifiers": …}, "#text": 4625}`.
        scalar_text(id.get("#text").unwrap_or(id))
    });
    HuntMatch {
        file: file.to_owned(),
        location,
        time,
        computer,
        event_id,
        rule_id: rule.rule.id.clone(),
        title: rule.rule.title.clone(),
        level: rule.rule.level,
        author: rule.rule.author.clone(),
    }
}

fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn summary(counts: &HuntCounts, elapsed: Duration) -> String {
    let seconds = elapsed.as_secs_f64();
    let rate = if seconds > 0.0 {
        counts.events as f64 / seconds
    } else {
        0.0
    };
    let names = [
        "no level",
        "informational",
        "low",
        "medium",
        "high",
        "critical",
    ];
    let per_level: Vec<String> = counts
        .per_level
        .iter()
        .zip(names)
        .rev()
        .filter(|(n, _)| **n > 0)
        .map(|(n, name)| format!("{n} {name}"))
        .collect();
    let per_level = if per_level.is_empty() {
        String::new()
    } else {
        format!(" ({})", per_level.join(", "))
    };
    format!(
        "{} files, {} events, {} matches{per_level} in {seconds:.2} s, {rate:.0} events/s",
        counts.files, counts.events, counts.matches
    )
}

/// A self-rewriting line on stderr, at most every 200 ms, only when stderr is a terminal.
struct Progress {
    enabled: bool,
    last: Option<Instant>,
    shown: bool,
}

const PROGRESS_EVERY: Duration = Duration::from_millis(200);

impl Progress {
    fn new(enabled: bool) -> Self {
        Progress {
            enabled,
            last: None,
            shown: false,
        }
    }

    fn update(&mut self, counts: &HuntCounts) {
        if !self.enabled {
            return;
        }
        let now = Instant::now();
        if self.last.is_some_and(|last| now - last < PROGRESS_EVERY) {
            return;
        }
        self.last = Some(now);
        self.shown = true;
        let mut stderr = std::io::stderr().lock();
        // The trailing clear-to-end-of-line erases a longer previous text.
        let _ = write!(
            stderr,
            "\r{} files, {} events, {} matches\x1b[K",
            counts.files, counts.events, counts.matches
        );
        let _ = stderr.flush();
    }

    fn clear(&mut self) {
        if self.shown {
            let _ = write!(std::io::stderr().lock(), "\r\x1b[K");
            self.shown = false;
        }
    }
}
