//! rsigma measured on the documents and rules of `vigie bench sigma`, the same way: rule
//! loading timed as start-up, then every event evaluated on one thread, with the documents
//! prepared in chunks before the clock runs for the chunk.
//!
//! Usage: `rsigma-bench --rules DIR [--rules DIR…] --events FILE.jsonl [--expected FILE.tsv]`
//!
//! - The rules: every `*.yml`/`*.yaml` file below each directory, parsed with
//!   `rsigma_parser::parse_sigma_yaml`, compiled into one `rsigma_eval::Engine` with
//!   `add_rules` (the batched path rsigma recommends for large sets), then filters applied.
//! - The events: the JSON lines `vigie bench sigma --write-events` wrote, in the evtx_dump
//!   layout. rsigma looks fields up by their flat name (`Image`) or a dotted path, so each
//!   document is flattened first, as EVTX tools hand records to Sigma engines: the top-level
//!   keys, `Event.EventData`, `Event.System` (`#text` unwrapped, `#attributes` as
//!   `Provider_Name`, `TimeCreated_SystemTime`…) and the children of `Event.UserData`.
//!   Flattening is preparation, untimed, like JSON parsing.
//! - Two passes over each chunk, timed apart (their order alternates per chunk): `evaluate`
//!   (rsigma's default, its witness candidate index, no logsource), and `evaluate_pruned` with
//!   the logsource each Windows event implies (product `windows`; the service of its channel;
//!   the category of its Sysmon id, Security 4688 or PowerShell's logs), derived inside the
//!   timed loop. That is rsigma's conflict-based pruning, what `--logsource-routing` does with
//!   the `product`/`service`/`category` fields of an event.
//! - `--expected`: the regression samples' rules (`index<TAB>rule id<TAB>sample file`, first
//!   cycle); a sample is hit when one of its events fires its rule.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rsigma_eval::{Engine, JsonEvent};
use rsigma_parser::{LogSource, SigmaCollection, parse_sigma_yaml};
use serde_json::{Map, Value, json};

const CHUNK: usize = 10_000;

struct Args {
    rules: Vec<PathBuf>,
    events: PathBuf,
    expected: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut rules = Vec::new();
    let (mut events, mut expected) = (None, None);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--rules" => rules.push(PathBuf::from(value()?)),
            "--events" => events = Some(PathBuf::from(value()?)),
            "--expected" => expected = Some(PathBuf::from(value()?)),
            _ => return Err(format!("unknown argument {arg}")),
        }
    }
    if rules.is_empty() {
        return Err("--rules DIR is required".into());
    }
    Ok(Args {
        rules,
        events: events.ok_or("--events FILE.jsonl is required")?,
        expected,
    })
}

fn main() {
    let args = match parse_args() {
        Ok(args) => args,
        Err(problem) => {
            eprintln!(
                "error: {problem}\nusage: rsigma-bench --rules DIR [--rules DIR…] --events FILE.jsonl [--expected FILE.tsv]"
            );
            std::process::exit(2);
        }
    };
    if let Err(problem) = run(args) {
        eprintln!("error: {problem}");
        std::process::exit(1);
    }
}

/// Resident and peak memory of this process, in KiB.
fn memory_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn rule_files(dir: &Path, found: &mut Vec<PathBuf>) -> Result<(), String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.is_dir() {
            rule_files(&path, found)?;
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yml" | "yaml")
        ) {
            found.push(path);
        }
    }
    Ok(())
}

/// What loading the rules gave.
struct Loaded {
    engine: Engine,
    files: usize,
    parse_errors: usize,
    compile_errors: usize,
    correlations: usize,
    filters: usize,
}

fn load(dirs: &[PathBuf]) -> Result<Loaded, String> {
    let mut paths = Vec::new();
    for dir in dirs {
        rule_files(dir, &mut paths)?;
    }
    paths.sort();
    let mut collection = SigmaCollection::new();
    let mut parse_errors = 0;
    for path in &paths {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        match parse_sigma_yaml(&text) {
            Ok(parsed) => {
                parse_errors += parsed.errors.len();
                collection.rules.extend(parsed.rules);
                collection.correlations.extend(parsed.correlations);
                collection.filters.extend(parsed.filters);
            }
            Err(_) => parse_errors += 1,
        }
    }
    let mut engine = Engine::new();
    let compile_errors = engine.add_rules(&collection.rules).len();
    for filter in &collection.filters {
        engine
            .apply_filter(filter)
            .map_err(|e| format!("filter {}: {e}", filter.title))?;
    }
    Ok(Loaded {
        engine,
        files: paths.len(),
        parse_errors,
        compile_errors,
        correlations: collection.correlations.len(),
        filters: collection.filters.len(),
    })
}

/// `#text` of an EVTX element rendered as an object, else the value itself.
fn unwrap_text(value: &Value) -> &Value {
    value.get("#text").unwrap_or(value)
}

/// The evtx_dump layout flattened to the field names Sigma rules use.
fn flatten(document: Value) -> Value {
    let Value::Object(mut top) = document else {
        return document;
    };
    let Some(Value::Object(event)) = top.remove("Event") else {
        return Value::Object(top);
    };
    let mut flat = Map::new();
    // Lowest precedence first: UserData, System, EventData, then the document's own keys.
    if let Some(Value::Object(user_data)) = event.get("UserData") {
        for inner in user_data.values() {
            if let Value::Object(inner) = inner {
                for (key, value) in inner {
                    flat.insert(key.clone(), unwrap_text(value).clone());
                }
            }
        }
    }
    if let Some(Value::Object(system)) = event.get("System") {
        for (key, value) in system {
            if let Some(Value::Object(attributes)) = value.get("#attributes") {
                for (attribute, value) in attributes {
                    flat.insert(format!("{key}_{attribute}"), value.clone());
                }
            }
            match value {
                Value::Object(object) if !object.contains_key("#text") => {}
                _ => {
                    flat.insert(key.clone(), unwrap_text(value).clone());
                }
            }
        }
    }
    match event.get("EventData") {
        Some(Value::Object(data)) => {
            for (key, value) in data {
                let value = unwrap_text(value).clone();
                if key.contains(' ') {
                    flat.insert(key.replace(' ', ""), value.clone());
                }
                flat.insert(key.clone(), value);
            }
        }
        Some(other) if !other.is_null() => {
            flat.insert("EventData".into(), other.clone());
        }
        _ => {}
    }
    for (key, value) in top {
        flat.insert(key, value);
    }
    Value::Object(flat)
}

/// Sigma's Windows services and their channels.
const WINDOWS_SERVICES: &[(&str, &str)] = &[
    ("security", "Security"),
    ("system", "System"),
    ("application", "Application"),
    ("sysmon", "Microsoft-Windows-Sysmon/Operational"),
    ("powershell", "Microsoft-Windows-PowerShell/Operational"),
    ("powershell-classic", "Windows PowerShell"),
    (
        "windefend",
        "Microsoft-Windows-Windows Defender/Operational",
    ),
    (
        "taskscheduler",
        "Microsoft-Windows-TaskScheduler/Operational",
    ),
    ("wmi", "Microsoft-Windows-WMI-Activity/Operational"),
    (
        "codeintegrity-operational",
        "Microsoft-Windows-CodeIntegrity/Operational",
    ),
    ("bits-client", "Microsoft-Windows-Bits-Client/Operational"),
];

fn sysmon_category(id: i64, event: &Value) -> Option<&'static str> {
    Some(match id {
        1 => "process_creation",
        2 => "file_change",
        3 => "network_connection",
        4 | 16 => "sysmon_status",
        5 => "process_termination",
        6 => "driver_load",
        7 => "image_load",
        8 => "create_remote_thread",
        9 => "raw_access_thread",
        10 => "process_access",
        11 => "file_event",
        12 => {
            let deleted = event
                .get("EventType")
                .and_then(Value::as_str)
                .is_some_and(|t| t.contains("Delete"));
            if deleted {
                "registry_delete"
            } else {
                "registry_add"
            }
        }
        13 => "registry_set",
        14 => "registry_rename",
        15 => "create_stream_hash",
        17 | 18 => "pipe_created",
        19..=21 => "wmi_event",
        22 => "dns_query",
        23 | 26 => "file_delete",
        24 => "clipboard_capture",
        25 => "process_tampering",
        29 => "file_executable_detected",
        255 => "sysmon_error",
        _ => return None,
    })
}

/// The logsource a flattened Windows event implies: the same derivation as Vigie's
/// `EventLogSource` (channel and event id), given to rsigma as a `LogSource`.
fn windows_logsource(event: &Value) -> LogSource {
    let mut logsource = LogSource::default();
    let Some(channel) = event.get("Channel").and_then(Value::as_str) else {
        return logsource;
    };
    logsource.product = Some("windows".into());
    logsource.service = WINDOWS_SERVICES
        .iter()
        .find(|(_, c)| c.eq_ignore_ascii_case(channel))
        .map(|(service, _)| (*service).to_owned());
    let id = event.get("EventID").and_then(|id| {
        id.as_i64()
            .or_else(|| id.as_str().and_then(|s| s.trim().parse().ok()))
    });
    let category = match (logsource.service.as_deref(), id) {
        (Some("sysmon"), Some(id)) => sysmon_category(id, event),
        (Some("security"), Some(4688)) => Some("process_creation"),
        (Some("powershell"), Some(4104)) => Some("ps_script"),
        (Some("powershell"), Some(4103)) => Some("ps_module"),
        (Some("powershell-classic"), Some(400)) => Some("ps_classic_start"),
        (Some("powershell-classic"), Some(600)) => Some("ps_classic_provider_start"),
        (Some("powershell-classic"), Some(800)) => Some("ps_classic_script"),
        _ => None,
    };
    logsource.category = category.map(str::to_owned);
    logsource
}

/// Counts of one evaluation mode.
#[derive(Default)]
struct Pass {
    elapsed: Duration,
    matches: u64,
    fired: HashSet<String>,
    /// Rule ids fired by each first-cycle event that has an expected rule.
    first_cycle: HashMap<usize, Vec<String>>,
}

impl Pass {
    fn record(&mut self, index: usize, results: Vec<rsigma_eval::EvaluationResult>, keep: bool) {
        self.matches += results.len() as u64;
        for result in results {
            let id = result.header.rule_id.unwrap_or(result.header.rule_title);
            if keep {
                self.first_cycle.entry(index).or_default().push(id.clone());
            }
            self.fired.insert(id);
        }
    }
}

/// `index<TAB>rule id<TAB>sample` lines.
fn read_expected(path: &Path) -> Result<Vec<(usize, String, String)>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|line| {
            let mut parts = line.splitn(3, '\t');
            let index = parts.next().and_then(|i| i.parse().ok());
            match (index, parts.next(), parts.next()) {
                (Some(index), Some(rule), Some(sample)) => {
                    Ok((index, rule.to_owned(), sample.to_owned()))
                }
                _ => Err(format!("{}: bad line {line:?}", path.display())),
            }
        })
        .collect()
}

/// Samples hit, EVTX and JSON apart, and the totals.
fn recall(expected: &[(usize, String, String)], pass: &Pass) -> Value {
    let mut samples: HashMap<&str, (bool, &str)> = HashMap::new();
    for (index, rule, sample) in expected {
        let hit = pass
            .first_cycle
            .get(index)
            .is_some_and(|ids| ids.iter().any(|id| id == rule));
        let entry = samples.entry(sample.as_str()).or_insert((false, rule));
        entry.0 |= hit;
    }
    let count = |extension: &str, hit_only: bool| {
        samples
            .iter()
            .filter(|(sample, (hit, _))| sample.ends_with(extension) && (*hit || !hit_only))
            .count()
    };
    let mut missed: Vec<String> = samples
        .iter()
        .filter(|(sample, (hit, _))| !hit && sample.ends_with(".evtx"))
        .map(|(sample, (_, rule))| format!("{sample} ({rule})"))
        .collect();
    missed.sort();
    json!({"evtx": count(".evtx", true), "evtx_total": count(".evtx", false),
        "json": count(".json", true), "json_total": count(".json", false),
        "missed_evtx": missed})
}

fn run(args: Args) -> Result<(), String> {
    let (rss_before, _) = memory_kib();
    let started = Instant::now();
    let loaded = load(&args.rules)?;
    let startup = started.elapsed();
    let (rss_rules, _) = memory_kib();
    let engine = &loaded.engine;

    let expected = match &args.expected {
        Some(path) => read_expected(path)?,
        None => Vec::new(),
    };
    let wanted: HashSet<usize> = expected.iter().map(|(i, _, _)| *i).collect();

    let file = File::open(&args.events)
        .map_err(|e| format!("cannot read {}: {e}", args.events.display()))?;
    let mut lines = BufReader::new(file).lines();
    let (mut plain, mut routed) = (Pass::default(), Pass::default());
    let mut done = 0usize;
    let mut chunk: Vec<Value> = Vec::with_capacity(CHUNK);
    let mut chunk_number = 0u64;
    // RSS once the first chunk is ready, before any evaluation: the rules plus the documents.
    let mut rss_documents = 0;
    loop {
        chunk.clear();
        for line in lines.by_ref() {
            let line = line.map_err(|e| format!("cannot read the events: {e}"))?;
            if line.trim().is_empty() {
                continue;
            }
            let value: Value = serde_json::from_str(&line)
                .map_err(|e| format!("event {}: {e}", done + chunk.len() + 1))?;
            chunk.push(flatten(value));
            if chunk.len() == CHUNK {
                break;
            }
        }
        if chunk.is_empty() {
            break;
        }
        if chunk_number == 0 {
            rss_documents = memory_kib().0;
        }
        let run_plain = |pass: &mut Pass| {
            let clock = Instant::now();
            for (offset, document) in chunk.iter().enumerate() {
                let results = engine.evaluate(&JsonEvent::borrow(document));
                let index = done + offset;
                pass.record(index, results, wanted.contains(&index));
            }
            pass.elapsed += clock.elapsed();
        };
        let run_routed = |pass: &mut Pass| {
            let clock = Instant::now();
            for (offset, document) in chunk.iter().enumerate() {
                let logsource = windows_logsource(document);
                let results = engine.evaluate_pruned(&JsonEvent::borrow(document), &logsource);
                let index = done + offset;
                pass.record(index, results, wanted.contains(&index));
            }
            pass.elapsed += clock.elapsed();
        };
        if chunk_number.is_multiple_of(2) {
            run_plain(&mut plain);
            run_routed(&mut routed);
        } else {
            run_routed(&mut routed);
            run_plain(&mut plain);
        }
        chunk_number += 1;
        done += chunk.len();
    }
    let (_, peak) = memory_kib();
    if done == 0 {
        return Err(format!("no events in {}", args.events.display()));
    }

    let loaded_rules = engine.rule_count();
    println!("rsigma-bench (rsigma-eval 0.23): {done} events, one thread");
    println!(
        "  rules: {} files, {loaded_rules} rules loaded ({} correlations not loaded: Engine runs \
         detection rules only, {} filters applied), {} parse errors, {} compile errors; \
         start-up {:.2} s",
        loaded.files,
        loaded.correlations,
        loaded.filters,
        loaded.parse_errors,
        loaded.compile_errors,
        startup.as_secs_f64()
    );
    let mut modes = Vec::new();
    for (name, pass) in [("default", &plain), ("logsource routing", &routed)] {
        let rate = done as f64 / pass.elapsed.as_secs_f64();
        println!(
            "  {name}: {done} events in {:.2} s: {rate:.0} events/s; {} matches, {} distinct rules fired",
            pass.elapsed.as_secs_f64(),
            pass.matches,
            pass.fired.len()
        );
        let recall = if expected.is_empty() {
            Value::Null
        } else {
            let recall = recall(&expected, pass);
            println!(
                "    recall: {}/{} EVTX samples fire their own rule, {}/{} of their JSON twins",
                recall["evtx"], recall["evtx_total"], recall["json"], recall["json_total"]
            );
            for sample in recall["missed_evtx"].as_array().into_iter().flatten() {
                println!("      missed: {}", sample.as_str().unwrap_or_default());
            }
            recall
        };
        modes.push(json!({
            "mode": name,
            "seconds": pass.elapsed.as_secs_f64(),
            "events_per_s": rate,
            "matches": pass.matches,
            "distinct_rules": pass.fired.len(),
            "recall": recall,
        }));
    }
    println!(
        "  memory: RSS {} MiB before loading, {} MiB with the rules loaded, {} MiB with the \
         first {CHUNK} documents prepared, peak {} MiB",
        rss_before / 1024,
        rss_rules / 1024,
        rss_documents / 1024,
        peak / 1024
    );
    let summary = json!({
        "engine": "rsigma",
        "events": done,
        "rule_files": loaded.files,
        "rules_loaded": loaded_rules,
        "parse_errors": loaded.parse_errors,
        "compile_errors": loaded.compile_errors,
        "startup_s": startup.as_secs_f64(),
        "rss_rules_mib": rss_rules / 1024,
        "rss_documents_mib": rss_documents / 1024,
        "peak_rss_mib": peak / 1024,
        "modes": modes,
    });
    println!("summary: {summary}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flattening_gives_the_names_sigma_rules_use() {
        let record = json!({"Event": {
            "#attributes": {"xmlns": "x"},
            "System": {
                "Provider": {"#attributes": {"Name": "Microsoft-Windows-Sysmon", "Guid": "G"}},
                "EventID": {"#text": 1, "#attributes": {"Qualifiers": 0}},
                "Channel": "Microsoft-Windows-Sysmon/Operational",
                "Computer": "ws-1"
            },
            "EventData": {"Image": "C:\\Windows\\System32\\cmd.exe", "Source Name": "s"},
            "UserData": {"Inner": {"Param": "p"}}
        }});
        let flat = flatten(record);
        assert_eq!(flat["Provider_Name"], "Microsoft-Windows-Sysmon");
        assert_eq!(flat["EventID"], 1);
        assert_eq!(flat["EventID_Qualifiers"], 0);
        assert_eq!(flat["Image"], "C:\\Windows\\System32\\cmd.exe");
        assert_eq!(flat["SourceName"], "s");
        assert_eq!(flat["Param"], "p");
        let logsource = windows_logsource(&flat);
        assert_eq!(logsource.product.as_deref(), Some("windows"));
        assert_eq!(logsource.service.as_deref(), Some("sysmon"));
        assert_eq!(logsource.category.as_deref(), Some("process_creation"));
    }
}
