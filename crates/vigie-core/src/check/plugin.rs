//! The Monitoring Plugins output API: how a finished plugin (exit status and stdout) becomes a
//! check result. Guards three promises: only exit codes 0–3 mean what plugins say (any other
//! code, a signal, our timeout or a failed spawn is UNKNOWN, with the reason in the output);
//! output is never rejected (invalid UTF-8 is decoded lossily, more than 64 KiB is truncated
//! with a marker); no text is lost between output, long output and perfdata.
//!
//! # Splitting
//!
//! The guidelines' multi-line format:
//!
//! ```text
//! SERVICE STATUS: first line of output | first part of performance data
//! any number of subsequent lines of output, but note that buffers
//! may have a limited size | second part of performance data, which
//! may have continuation lines, too
//! ```
//!
//! - The first line up to `|` is the output; after it, perfdata.
//! - The following lines are long output until one holds a `|`: the text before it ends the
//!   long output; everything after it, and every later line, is perfdata (joined with spaces).
//!   A later line holding a `|` of its own gives its text before the `|` to the long output, as
//!   Icinga 2 reads every line that way.
//! - A `|` counts only when an `=` follows it somewhere in the remaining text (Icinga 2's guard):
//!   `OK - a|b` stays text rather than become output `OK - a` and an unparsable perfdata `b`.
//!
//! `\r\n` line ends are accepted; trailing blank lines are dropped.

use serde::{Deserialize, Serialize};

use super::perfdata::{PerfError, PerfValue, parse_perfdata};
use super::state::CheckState;

/// Beyond this many bytes of stdout, the rest is dropped (Nagios capped at 8 KiB; we are
/// more generous but a runaway plugin must not fill memory or the store).
pub const MAX_PLUGIN_OUTPUT_BYTES: usize = 64 * 1024;

/// How the plugin process ended, as the executor saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PluginExit {
    Code(i32),
    Signal(i32),
    TimedOut { after_ms: i64 },
    SpawnFailed(String),
}

/// A check result as the state machine takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginResult {
    pub state: CheckState,
    /// The first line: what notifications show.
    pub output: String,
    /// The following lines, `\n`-separated, empty when there are none.
    pub long_output: String,
    /// Raw perfdata text, the parts of every line joined with spaces; see `perf_values`.
    pub perfdata: String,
    /// Whether stdout was cut at `MAX_PLUGIN_OUTPUT_BYTES`.
    pub truncated: bool,
}

impl PluginResult {
    /// A result with only a state and a one-line output, as passive checks often send.
    pub fn new(state: CheckState, output: impl Into<String>) -> Self {
        PluginResult {
            state,
            output: output.into(),
            long_output: String::new(),
            perfdata: String::new(),
            truncated: false,
        }
    }

    pub fn perf_values(&self) -> Vec<Result<PerfValue, PerfError>> {
        parse_perfdata(&self.perfdata)
    }
}

/// Turns a finished plugin into a result; see the module documentation for the rules.
pub fn interpret_plugin_result(exit: PluginExit, stdout: &[u8]) -> PluginResult {
    let truncated = stdout.len() > MAX_PLUGIN_OUTPUT_BYTES;
    let kept = &stdout[..stdout.len().min(MAX_PLUGIN_OUTPUT_BYTES)];
    // Lossy decoding may end in a replacement character where the cut split a character;
    // that is the honest rendering of a cut.
    let text = String::from_utf8_lossy(kept);
    let (mut output, mut long_output, perfdata) = split_plugin_output(&text);

    if truncated {
        let marker = format!("[output truncated at {MAX_PLUGIN_OUTPUT_BYTES} bytes]");
        if long_output.is_empty() && !text.contains('\n') {
            output = format!("{output} {marker}");
        } else {
            if !long_output.is_empty() {
                long_output.push('\n');
            }
            long_output.push_str(&marker);
        }
    }

    let state = match &exit {
        PluginExit::Code(0) => CheckState::Ok,
        PluginExit::Code(1) => CheckState::Warning,
        PluginExit::Code(2) => CheckState::Critical,
        _ => CheckState::Unknown,
    };
    let reason = match &exit {
        PluginExit::Code(0..=3) => None,
        PluginExit::Code(code) => Some(format!("plugin exited with invalid code {code}")),
        PluginExit::Signal(signal) => Some(format!("plugin killed by signal {signal}")),
        PluginExit::TimedOut { after_ms } => Some(format!("plugin timed out after {after_ms} ms")),
        PluginExit::SpawnFailed(error) => Some(format!("plugin could not be started: {error}")),
    };
    output = match (reason, output.is_empty()) {
        (Some(reason), true) => format!("({reason})"),
        (Some(reason), false) => format!("({reason}) {output}"),
        (None, true) => "(no output returned from plugin)".to_owned(),
        (None, false) => output,
    };

    PluginResult {
        state,
        output,
        long_output,
        perfdata,
        truncated,
    }
}

/// Splits decoded stdout into (output, long output, perfdata).
fn split_plugin_output(text: &str) -> (String, String, String) {
    let mut lines: Vec<&str> = text
        .split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line))
        .collect();
    while lines.last().is_some_and(|line| line.trim().is_empty()) {
        lines.pop();
    }
    let mut perf_parts: Vec<&str> = Vec::new();
    let mut long_lines: Vec<&str> = Vec::new();
    let mut output = "";
    let mut in_perfdata = false;
    for (index, line) in lines.iter().enumerate() {
        let rest_has_equals = || lines[index + 1..].iter().any(|later| later.contains('='));
        let split = line
            .find('|')
            .filter(|&bar| line[bar + 1..].contains('=') || rest_has_equals());
        let (text, perf) = match split {
            Some(bar) => (Some(&line[..bar]), Some(&line[bar + 1..])),
            None if in_perfdata => (None, Some(*line)),
            None => (Some(*line), None),
        };
        if index == 0 {
            output = text.unwrap_or_default();
        } else if let Some(text) = text {
            long_lines.push(text);
        }
        if let Some(perf) = perf {
            // The first line's perfdata ends with its line; the long output's runs to the end.
            in_perfdata |= index > 0;
            let perf = perf.trim();
            if !perf.is_empty() {
                perf_parts.push(perf);
            }
        }
    }
    (
        output.trim_end().to_owned(),
        trim_block(&long_lines),
        perf_parts.join(" "),
    )
}

/// The long output lines, without the trailing spaces that preceded a `|`.
fn trim_block(lines: &[&str]) -> String {
    let trimmed: Vec<&str> = lines.iter().map(|line| line.trim_end()).collect();
    trimmed.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(exit: PluginExit, stdout: &str, expect: (CheckState, &str, &str, &str)) {
        let result = interpret_plugin_result(exit, stdout.as_bytes());
        assert_eq!(
            (
                result.state,
                result.output.as_str(),
                result.long_output.as_str(),
                result.perfdata.as_str()
            ),
            expect,
            "{stdout:?}"
        );
    }

    #[test]
    fn maps_exit_codes_zero_to_three() {
        let cases = [
            (0, CheckState::Ok),
            (1, CheckState::Warning),
            (2, CheckState::Critical),
            (3, CheckState::Unknown),
        ];
        for (code, state) in cases {
            check(PluginExit::Code(code), "X\n", (state, "X", "", ""));
        }
    }

    #[test]
    fn anything_else_is_unknown_with_the_reason() {
        check(
            PluginExit::Code(138),
            "OK - all good\n",
            (
                CheckState::Unknown,
                "(plugin exited with invalid code 138) OK - all good",
                "",
                "",
            ),
        );
        check(
            PluginExit::Code(-1),
            "",
            (
                CheckState::Unknown,
                "(plugin exited with invalid code -1)",
                "",
                "",
            ),
        );
        check(
            PluginExit::Signal(9),
            "partial|a=1",
            (
                CheckState::Unknown,
                "(plugin killed by signal 9) partial",
                "",
                "a=1",
            ),
        );
        check(
            PluginExit::TimedOut { after_ms: 10_000 },
            "",
            (
                CheckState::Unknown,
                "(plugin timed out after 10000 ms)",
                "",
                "",
            ),
        );
        check(
            PluginExit::SpawnFailed("no such file or directory".to_owned()),
            "",
            (
                CheckState::Unknown,
                "(plugin could not be started: no such file or directory)",
                "",
                "",
            ),
        );
    }

    #[test]
    fn says_when_a_plugin_printed_nothing() {
        check(
            PluginExit::Code(0),
            "\n\n",
            (CheckState::Ok, "(no output returned from plugin)", "", ""),
        );
    }

    #[test]
    fn splits_the_guidelines_multi_line_example() {
        let stdout = "DISK OK - free space: / 3326 MB (56%); | /=2643MB;5948;5958;0;5968\n\
                      / 15272 MB (77%);\n\
                      /boot 68 MB (69%);\n\
                      /home 69357 MB (27%);\n\
                      /var/log 819 MB (84%); | /boot=68MB;88;93;0;98\n\
                      /home=69357MB;253404;253409;0;253414 \n\
                      /var/log=818MB;970;975;0;980\n";
        check(
            PluginExit::Code(0),
            stdout,
            (
                CheckState::Ok,
                "DISK OK - free space: / 3326 MB (56%);",
                "/ 15272 MB (77%);\n/boot 68 MB (69%);\n/home 69357 MB (27%);\n/var/log 819 MB (84%);",
                "/=2643MB;5948;5958;0;5968 /boot=68MB;88;93;0;98 \
                 /home=69357MB;253404;253409;0;253414 /var/log=818MB;970;975;0;980",
            ),
        );
    }

    #[test]
    fn reads_every_line_with_a_bar_as_icinga_does() {
        check(
            PluginExit::Code(1),
            "WARN first|a=1\r\nsecond | b=2\r\nthird | c=3\r\n",
            (
                CheckState::Warning,
                "WARN first",
                "second\nthird",
                "a=1 b=2 c=3",
            ),
        );
    }

    #[test]
    fn keeps_a_bar_with_no_perfdata_after_it_as_text() {
        check(
            PluginExit::Code(0),
            "OK - a|b\nline two | more\n",
            (CheckState::Ok, "OK - a|b", "line two | more", ""),
        );
    }

    #[test]
    fn long_output_without_perfdata() {
        check(
            PluginExit::Code(2),
            "CRITICAL - 2 of 3 down\nweb-1 down\nweb-2 down\n",
            (
                CheckState::Critical,
                "CRITICAL - 2 of 3 down",
                "web-1 down\nweb-2 down",
                "",
            ),
        );
    }

    #[test]
    fn decodes_invalid_utf8_lossily() {
        let result = interpret_plugin_result(PluginExit::Code(0), b"OK caf\xe9 | t=1s\n");
        assert_eq!(result.output, "OK caf\u{fffd}");
        assert_eq!(result.perfdata, "t=1s");
    }

    #[test]
    fn truncates_a_runaway_first_line_with_a_marker() {
        let stdout = "x".repeat(MAX_PLUGIN_OUTPUT_BYTES + 10);
        let result = interpret_plugin_result(PluginExit::Code(0), stdout.as_bytes());
        assert!(result.truncated);
        assert_eq!(result.output.len(), MAX_PLUGIN_OUTPUT_BYTES + 34);
        assert!(
            result
                .output
                .ends_with("x [output truncated at 65536 bytes]")
        );
    }

    #[test]
    fn truncates_runaway_long_output_with_a_marker_line() {
        let mut stdout = String::from("OK - many lines\n");
        while stdout.len() <= MAX_PLUGIN_OUTPUT_BYTES {
            stdout.push_str("line of long output\n");
        }
        let result = interpret_plugin_result(PluginExit::Code(0), stdout.as_bytes());
        assert!(result.truncated);
        assert_eq!(result.output, "OK - many lines");
        assert!(
            result
                .long_output
                .ends_with("\n[output truncated at 65536 bytes]")
        );
        assert!(result.long_output.len() <= MAX_PLUGIN_OUTPUT_BYTES + 40);
        let small = interpret_plugin_result(PluginExit::Code(0), b"OK\n");
        assert!(!small.truncated);
    }
}
