//! Where the events of a hunt come from: the files named on the command line (directories
//! searched recursively) and the events each one holds, EVTX records rendered as evtx_dump
//! renders them (`{"Event": {"System": …, "EventData": …}}`) or JSON values. Invariant: a record
//! or value that cannot be read is counted and reported, never fatal; only a path the analyst
//! named and that cannot be read stops the hunt.

use std::cell::Cell;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use anyhow::{Context, Result};
use serde_json::Value;

/// How the events of a file are read, chosen from its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// Windows event log, read through the evtx crate.
    Evtx,
    /// One JSON value, an array of them, or several back to back (`*.json`).
    Json,
    /// One JSON object per line (`*.jsonl`, `*.ndjson`): a bad line is skipped, not fatal.
    JsonLines,
}

impl FileKind {
    fn of(path: &Path) -> Option<FileKind> {
        let extension = path.extension()?.to_str()?.to_ascii_lowercase();
        match extension.as_str() {
            "evtx" => Some(FileKind::Evtx),
            "json" => Some(FileKind::Json),
            "jsonl" | "ndjson" => Some(FileKind::JsonLines),
            _ => None,
        }
    }
}

/// Every file to hunt in below `paths`, in path order per named path. A file named explicitly
/// is taken whatever its extension (read as JSON lines unless it is `.evtx` or `.json`).
pub fn discover_files(paths: &[PathBuf]) -> Result<Vec<(PathBuf, FileKind)>> {
    let mut files = Vec::new();
    for path in paths {
        let metadata =
            std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
        if !metadata.is_dir() {
            File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
            let kind = FileKind::of(path).unwrap_or(FileKind::JsonLines);
            files.push((path.clone(), kind));
            continue;
        }
        let mut found = Vec::new();
        let mut pending = vec![path.clone()];
        while let Some(folder) = pending.pop() {
            let entries = std::fs::read_dir(&folder)
                .with_context(|| format!("cannot read directory {}", folder.display()))?;
            for entry in entries {
                let entry =
                    entry.with_context(|| format!("cannot read directory {}", folder.display()))?;
                let path = entry.path();
                // `file_type` does not follow symlinks: a link loop on a seized disk cannot
                // make the walk endless.
                let file_type = entry
                    .file_type()
                    .with_context(|| format!("cannot read {}", path.display()))?;
                if file_type.is_dir() {
                    pending.push(path);
                } else if let Some(kind) = FileKind::of(&path) {
                    found.push((path, kind));
                }
            }
        }
        found.sort_by(|a, b| a.0.cmp(&b.0));
        files.extend(found);
    }
    Ok(files)
}

/// Where an event sits in its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// An EVTX record, by its `EventRecordID`.
    Record(u64),
    /// A JSON value starting on this line (1-based); `item` is its 1-based index when the line
    /// opens a top-level array.
    Line { line: u64, item: Option<u64> },
}

/// What reading one file gave besides its events.
#[derive(Debug, Default)]
pub struct ReadProblems {
    /// Records or values that could not be parsed.
    pub failed: u64,
    /// The first few reasons, for the report.
    pub reasons: Vec<String>,
}

const KEPT_REASONS: usize = 3;

impl ReadProblems {
    fn record(&mut self, reason: String) {
        self.failed += 1;
        if self.reasons.len() < KEPT_REASONS {
            self.reasons.push(reason);
        }
    }
}

/// Reads every event of `path` and hands it to `visit`, which may add to it (the client a
/// tuned hunt attributes events to) before testing it. An error is returned only when the file
/// cannot be opened at all (or is no EVTX file); bad records are counted in the result.
pub fn read_events(
    path: &Path,
    kind: FileKind,
    visit: &mut dyn FnMut(Location, &mut Value),
) -> Result<ReadProblems> {
    match kind {
        FileKind::Evtx => read_evtx(path, visit),
        FileKind::Json => read_json_stream(path, visit),
        FileKind::JsonLines => read_json_lines(path, visit),
    }
}

fn read_evtx(path: &Path, visit: &mut dyn FnMut(Location, &mut Value)) -> Result<ReadProblems> {
    let mut parser = evtx::EvtxParser::from_path(path)
        .with_context(|| format!("cannot read {} as EVTX", path.display()))?;
    let mut problems = ReadProblems::default();
    for record in parser.records_json_value() {
        match record {
            Ok(mut record) => visit(Location::Record(record.event_record_id), &mut record.data),
            Err(error) => problems.record(error.to_string()),
        }
    }
    Ok(problems)
}

fn read_json_lines(
    path: &Path,
    visit: &mut dyn FnMut(Location, &mut Value),
) -> Result<ReadProblems> {
    let file = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut problems = ReadProblems::default();
    for (index, line) in BufReader::new(file).lines().enumerate() {
        let number = index as u64 + 1;
        let line = match line {
            Ok(line) => line,
            Err(error) => {
                problems.record(format!("line {number}: {error}"));
                // A read error (or invalid UTF-8 past which `lines` cannot resync) ends the file.
                break;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(&line) {
            Ok(value) => visit_value(value, number, visit),
            Err(error) => problems.record(format!("line {number}: {error}")),
        }
    }
    Ok(problems)
}

/// A `.json` file: one value, an array, or values back to back (pretty-printed evtx_dump
/// output is the latter). A syntax error ends the file, since a stream cannot resync.
fn read_json_stream(
    path: &Path,
    visit: &mut dyn FnMut(Location, &mut Value),
) -> Result<ReadProblems> {
    let file = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let lines = Rc::new(LineState::default());
    let reader = LineCountingReader {
        inner: BufReader::new(file),
        state: Rc::clone(&lines),
    };
    let mut problems = ReadProblems::default();
    for value in serde_json::Deserializer::from_reader(reader).into_iter::<Value>() {
        let start = lines.value_start.get();
        lines.awaiting_start.set(true);
        match value {
            Ok(value) => visit_value(value, start, visit),
            Err(error) => {
                problems.record(error.to_string());
                break;
            }
        }
    }
    Ok(problems)
}

/// Hands out an object, or each element of an array, as an event.
fn visit_value(value: Value, line: u64, visit: &mut dyn FnMut(Location, &mut Value)) {
    match value {
        Value::Array(mut items) => {
            for (index, item) in items.iter_mut().enumerate() {
                let item_number = Some(index as u64 + 1);
                visit(
                    Location::Line {
                        line,
                        item: item_number,
                    },
                    item,
                );
            }
        }
        mut value => visit(Location::Line { line, item: None }, &mut value),
    }
}

/// Shared between the reader and the loop over values: serde_json reads byte by byte, so the
/// first non-blank byte after a value is where the next one starts.
#[derive(Debug)]
struct LineState {
    line: Cell<u64>,
    value_start: Cell<u64>,
    awaiting_start: Cell<bool>,
}

impl Default for LineState {
    fn default() -> Self {
        LineState {
            line: Cell::new(1),
            value_start: Cell::new(1),
            awaiting_start: Cell::new(true),
        }
    }
}

struct LineCountingReader<R> {
    inner: R,
    state: Rc<LineState>,
}

impl<R: Read> Read for LineCountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let count = self.inner.read(buf)?;
        for &byte in &buf[..count] {
            if self.state.awaiting_start.get() && !byte.is_ascii_whitespace() {
                self.state.value_start.set(self.state.line.get());
                self.state.awaiting_start.set(false);
            }
            if byte == b'\n' {
                self.state.line.set(self.state.line.get() + 1);
            }
        }
        Ok(count)
    }
}
