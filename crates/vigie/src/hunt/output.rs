//! How the matches of a hunt are written: an aligned table, JSON lines or CSV on stdout. Each
//! match names its rule's author, which the Detection Rule License of SigmaHQ rules requires
//! wherever a rule's result is shown.

use std::io::{self, Write};

use clap::ValueEnum;
use serde_json::{Map, Value};
use vigie_core::rule::sigma::SigmaLevel;

use super::source::Location;

/// The output formats of `vigie hunt`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HuntFormat {
    /// Aligned columns, sorted by event time, once the hunt is over.
    Table,
    /// One JSON object per match and line, as matches come.
    Json,
    /// Comma-separated values with a header, as matches come.
    Csv,
}

/// One rule firing on one event.
#[derive(Debug, Clone, PartialEq)]
pub struct HuntMatch {
    pub file: String,
    pub location: Location,
    pub time: Option<String>,
    pub computer: Option<String>,
    pub event_id: Option<String>,
    pub rule_id: Option<String>,
    pub title: String,
    pub level: Option<SigmaLevel>,
    pub author: Option<String>,
}

pub fn level_name(level: Option<SigmaLevel>) -> &'static str {
    match level {
        None => "",
        Some(SigmaLevel::Informational) => "informational",
        Some(SigmaLevel::Low) => "low",
        Some(SigmaLevel::Medium) => "medium",
        Some(SigmaLevel::High) => "high",
        Some(SigmaLevel::Critical) => "critical",
    }
}

impl HuntMatch {
    /// `record` for EVTX, `line` (and `item` inside a top-level array) for JSON.
    fn location_fields(&self) -> (Option<u64>, Option<u64>, Option<u64>) {
        match self.location {
            Location::Record(record) => (Some(record), None, None),
            Location::Line { line, item } => (None, Some(line), item),
        }
    }

    fn location_text(&self) -> String {
        match self.location {
            Location::Record(record) => format!("#{record}"),
            Location::Line { line, item: None } => format!("line {line}"),
            Location::Line {
                line,
                item: Some(item),
            } => format!("line {line}[{item}]"),
        }
    }

    pub fn to_json(&self) -> Value {
        let mut object = Map::new();
        let (record, line, item) = self.location_fields();
        let mut put = |key: &str, value: Value| {
            if !value.is_null() {
                object.insert(key.to_owned(), value);
            }
        };
        put("file", self.file.clone().into());
        put("record", record.into());
        put("line", line.into());
        put("item", item.into());
        put("time", self.time.clone().into());
        put("computer", self.computer.clone().into());
        put("event_id", self.event_id.clone().into());
        put("rule_id", self.rule_id.clone().into());
        put("title", self.title.clone().into());
        put("level", level_name(self.level).into());
        put("author", self.author.clone().into());
        Value::Object(object)
    }
}

/// Writes matches in one format; `finish` flushes what the table kept back.
pub struct MatchWriter<W: Write> {
    format: HuntFormat,
    out: W,
    kept: Vec<HuntMatch>,
    header_written: bool,
}

const CSV_HEADER: [&str; 11] = [
    "file", "record", "line", "item", "time", "computer", "event_id", "rule_id", "title", "level",
    "author",
];

impl<W: Write> MatchWriter<W> {
    pub fn new(format: HuntFormat, out: W) -> Self {
        MatchWriter {
            format,
            out,
            kept: Vec::new(),
            header_written: false,
        }
    }

    pub fn write(&mut self, found: HuntMatch) -> io::Result<()> {
        match self.format {
            HuntFormat::Table => {
                self.kept.push(found);
                Ok(())
            }
            HuntFormat::Json => writeln!(self.out, "{}", found.to_json()),
            HuntFormat::Csv => {
                self.write_csv_header()?;
                let (record, line, item) = found.location_fields();
                let number = |n: Option<u64>| n.map(|n| n.to_string()).unwrap_or_default();
                let text = |s: &Option<String>| s.clone().unwrap_or_default();
                let fields = [
                    found.file.clone(),
                    number(record),
                    number(line),
                    number(item),
                    text(&found.time),
                    text(&found.computer),
                    text(&found.event_id),
                    text(&found.rule_id),
                    found.title.clone(),
                    level_name(found.level).to_owned(),
                    text(&found.author),
                ];
                write_csv_row(&mut self.out, fields.iter().map(String::as_str))
            }
        }
    }

    fn write_csv_header(&mut self) -> io::Result<()> {
        if !self.header_written {
            self.header_written = true;
            write_csv_row(&mut self.out, CSV_HEADER.into_iter())?;
        }
        Ok(())
    }

    /// Writes the table (sorted by time, then file and place) or the CSV header of an empty
    /// result, and flushes.
    pub fn finish(mut self) -> io::Result<()> {
        match self.format {
            HuntFormat::Table => {
                let mut kept = std::mem::take(&mut self.kept);
                kept.sort_by(|a, b| {
                    (&a.time, &a.file, a.location_text()).cmp(&(
                        &b.time,
                        &b.file,
                        b.location_text(),
                    ))
                });
                write_table(&mut self.out, &kept)?;
            }
            HuntFormat::Csv => self.write_csv_header()?,
            HuntFormat::Json => {}
        }
        self.out.flush()
    }
}

/// RFC 4180: a field holding a comma, a quote or a line break is quoted, quotes doubled.
fn write_csv_row<'a>(
    out: &mut impl Write,
    fields: impl Iterator<Item = &'a str>,
) -> io::Result<()> {
    let mut line = String::new();
    for (index, field) in fields.enumerate() {
        if index > 0 {
            line.push(',');
        }
        if field.contains([',', '"', '\n', '\r']) {
            line.push('"');
            line.push_str(&field.replace('"', "\"\""));
            line.push('"');
        } else {
            line.push_str(field);
        }
    }
    line.push_str("\r\n");
    out.write_all(line.as_bytes())
}

fn write_table(out: &mut impl Write, matches: &[HuntMatch]) -> io::Result<()> {
    if matches.is_empty() {
        return Ok(());
    }
    let header = [
        "TIME", "LEVEL", "COMPUTER", "EVENT", "RULE ID", "TITLE", "AUTHOR", "FILE", "WHERE",
    ];
    let text = |s: &Option<String>| s.clone().unwrap_or_else(|| "-".to_owned());
    let rows: Vec<[String; 9]> = matches
        .iter()
        .map(|m| {
            [
                text(&m.time),
                level_name(m.level).to_owned(),
                text(&m.computer),
                text(&m.event_id),
                text(&m.rule_id),
                // A title is one line in a table, whatever the rule wrote.
                m.title.replace(['\n', '\r', '\t'], " "),
                text(&m.author).replace(['\n', '\r', '\t'], " "),
                m.file.clone(),
                m.location_text(),
            ]
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut write_row = |cells: &[&str]| -> io::Result<()> {
        let mut line = String::new();
        for (index, cell) in cells.iter().enumerate() {
            if index + 1 == cells.len() {
                line.push_str(cell);
            } else {
                line.push_str(cell);
                let pad = widths[index] - cell.chars().count() + 2;
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        line.push('\n');
        out.write_all(line.as_bytes())
    };
    write_row(&header)?;
    for row in &rows {
        let cells: Vec<&str> = row.iter().map(String::as_str).collect();
        write_row(&cells)?;
    }
    Ok(())
}
