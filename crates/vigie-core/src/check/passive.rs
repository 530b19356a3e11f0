//! Passive check results in the formats existing senders use, parsed into one shape: the
//! Nagios external command line (`PROCESS_SERVICE_CHECK_RESULT`, `PROCESS_HOST_CHECK_RESULT`,
//! what send_nsca, Centreon and scripts write), NRDP's JSON (`checkresults`), and the body of
//! Icinga 2's `POST /v1/actions/process-check-result`. Each problem says which field and why;
//! a batch reports every bad item with its position.

use serde_json::Value;

use super::plugin::{PluginExit, PluginResult, interpret_plugin_result};
use super::state::CheckState;

/// One result for a host (`service: None`) or one of its services.
#[derive(Debug, Clone, PartialEq)]
pub struct PassiveResult {
    pub host: String,
    pub service: Option<String>,
    pub result: PluginResult,
    /// When the check ran, if the sender said (epoch ms).
    pub time_ms: Option<i64>,
    /// Icinga's `ttl`: the next result is expected within this long.
    pub ttl_ms: Option<i64>,
    pub source: Option<String>,
}

/// A host's code: 0 UP, 1 DOWN, 2 UNREACHABLE (Nagios); Vigie works out unreachability from
/// the parents itself, so 2 counts as DOWN here.
fn host_state(code: i64) -> Result<CheckState, String> {
    match code {
        0 => Ok(CheckState::Ok),
        1 | 2 => Ok(CheckState::Critical),
        other => Err(format!(
            "host state {other}: expected 0 (UP), 1 (DOWN) or 2"
        )),
    }
}

fn service_state(code: i64) -> Result<CheckState, String> {
    match code {
        0 => Ok(CheckState::Ok),
        1 => Ok(CheckState::Warning),
        2 => Ok(CheckState::Critical),
        3 => Ok(CheckState::Unknown),
        other => Err(format!("state {other}: expected 0 to 3")),
    }
}

/// `output|perfdata` text with its state: split as a plugin's output is.
fn result_of(state: CheckState, text: &str) -> PluginResult {
    let code = match state {
        CheckState::Ok => 0,
        CheckState::Warning => 1,
        CheckState::Critical => 2,
        CheckState::Unknown => 3,
    };
    let mut result = interpret_plugin_result(PluginExit::Code(code), text.as_bytes());
    result.state = state;
    result
}

/// One external command line, with or without its `[epoch] ` prefix.
pub fn parse_external_command(line: &str) -> Result<PassiveResult, String> {
    let line = line.trim_end_matches(['\r', '\n']);
    let (time_ms, command) = match line.strip_prefix('[') {
        Some(rest) => {
            let (epoch, command) = rest
                .split_once(']')
                .ok_or("`[` without `]` before the command")?;
            let seconds: i64 = epoch
                .trim()
                .parse()
                .map_err(|_| format!("timestamp `{epoch}` is not a number of seconds"))?;
            (Some(seconds.saturating_mul(1000)), command.trim_start())
        }
        None => (None, line),
    };
    let (name, arguments) = command.split_once(';').unwrap_or((command, ""));
    match name {
        "PROCESS_SERVICE_CHECK_RESULT" => {
            let mut parts = arguments.splitn(4, ';');
            let (Some(host), Some(service), Some(code), Some(output)) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return Err(
                    "PROCESS_SERVICE_CHECK_RESULT needs host;service;return_code;output".into(),
                );
            };
            let code: i64 = code
                .trim()
                .parse()
                .map_err(|_| format!("return_code `{code}` is not a number"))?;
            Ok(PassiveResult {
                host: non_empty(host, "host")?,
                service: Some(non_empty(service, "service")?),
                result: result_of(service_state(code)?, output),
                time_ms,
                ttl_ms: None,
                source: None,
            })
        }
        "PROCESS_HOST_CHECK_RESULT" => {
            let mut parts = arguments.splitn(3, ';');
            let (Some(host), Some(code), Some(output)) = (parts.next(), parts.next(), parts.next())
            else {
                return Err("PROCESS_HOST_CHECK_RESULT needs host;status_code;output".into());
            };
            let code: i64 = code
                .trim()
                .parse()
                .map_err(|_| format!("status_code `{code}` is not a number"))?;
            Ok(PassiveResult {
                host: non_empty(host, "host")?,
                service: None,
                result: result_of(host_state(code)?, output),
                time_ms,
                ttl_ms: None,
                source: None,
            })
        }
        other => Err(format!(
            "command `{other}` is not supported: PROCESS_SERVICE_CHECK_RESULT or PROCESS_HOST_CHECK_RESULT"
        )),
    }
}

fn non_empty(text: &str, field: &str) -> Result<String, String> {
    let text = text.trim();
    if text.is_empty() {
        Err(format!("{field} is empty"))
    } else {
        Ok(text.to_owned())
    }
}

fn integer(value: &Value) -> Option<i64> {
    value
        .as_i64()
        .or_else(|| {
            value
                .as_f64()
                .filter(|f| f.fract() == 0.0)
                .map(|f| f as i64)
        })
        .or_else(|| value.as_str().and_then(|s| s.trim().parse().ok()))
}

/// NRDP's `JSONDATA`: `{"checkresults": [{"checkresult": {"type": "service"|"host"},
/// "hostname", "servicename", "state", "output"}, …]}`. Every bad item is reported with its
/// position; good items are returned only when none is bad (a batch is taken whole or not).
pub fn parse_nrdp(body: &Value) -> Result<Vec<PassiveResult>, Vec<String>> {
    let Some(items) = body.get("checkresults").and_then(Value::as_array) else {
        return Err(vec!["`checkresults` must be a list".into()]);
    };
    let mut results = Vec::with_capacity(items.len());
    let mut problems = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let parsed = (|| -> Result<PassiveResult, String> {
            let kind = item
                .pointer("/checkresult/type")
                .and_then(Value::as_str)
                .unwrap_or(if item.get("servicename").is_some() {
                    "service"
                } else {
                    "host"
                });
            let host = item
                .get("hostname")
                .and_then(Value::as_str)
                .ok_or("`hostname` is missing")?;
            let code = item
                .get("state")
                .and_then(integer)
                .ok_or("`state` is missing or not a number")?;
            let output = item.get("output").and_then(Value::as_str).unwrap_or("");
            let (service, state) = match kind {
                "service" => (
                    Some(non_empty(
                        item.get("servicename")
                            .and_then(Value::as_str)
                            .ok_or("`servicename` is missing")?,
                        "servicename",
                    )?),
                    service_state(code)?,
                ),
                "host" => (None, host_state(code)?),
                other => return Err(format!("checkresult type `{other}`: host or service")),
            };
            Ok(PassiveResult {
                host: non_empty(host, "hostname")?,
                service,
                result: result_of(state, output),
                time_ms: None,
                ttl_ms: None,
                source: None,
            })
        })();
        match parsed {
            Ok(result) => results.push(result),
            Err(problem) => problems.push(format!("checkresults[{index}]: {problem}")),
        }
    }
    if problems.is_empty() {
        Ok(results)
    } else {
        Err(problems)
    }
}

/// The object an Icinga `process-check-result` names: by the `host`/`service` URL parameters
/// (`service=host!name`) or a `filter` of the shapes Icinga's documentation uses:
/// `host.name=="h"` or `host.name=="h" && service.name=="s"`.
fn icinga_target(
    body: &Value,
    host: Option<&str>,
    service: Option<&str>,
) -> Result<(String, Option<String>), String> {
    if let Some(full) = service.or_else(|| body.get("service").and_then(Value::as_str)) {
        let (h, s) = full
            .split_once('!')
            .ok_or_else(|| format!("service `{full}`: expected host!service"))?;
        return Ok((non_empty(h, "host")?, Some(non_empty(s, "service")?)));
    }
    if let Some(h) = host.or_else(|| body.get("host").and_then(Value::as_str)) {
        return Ok((non_empty(h, "host")?, None));
    }
    let filter = body
        .get("filter")
        .and_then(Value::as_str)
        .ok_or("name the object: `host`, `service` (host!service) or `filter`")?;
    let mut host = None;
    let mut service = None;
    for clause in filter.split("&&") {
        let (left, right) = clause.split_once("==").ok_or_else(|| {
            format!("filter `{filter}`: only `name==\"value\"` clauses joined by && are understood")
        })?;
        let value = right.trim().trim_matches('"').to_owned();
        match left.trim() {
            "host.name" => host = Some(value),
            "service.name" => service = Some(value),
            other => {
                return Err(format!(
                    "filter: `{other}` is not understood (host.name, service.name)"
                ));
            }
        }
    }
    let host = host.ok_or("filter: `host.name` is missing")?;
    Ok((non_empty(&host, "host.name")?, service))
}

/// The body of Icinga 2's `POST /v1/actions/process-check-result` (plus its `host`/`service`
/// URL parameters, if any).
pub fn parse_icinga(
    body: &Value,
    host: Option<&str>,
    service: Option<&str>,
) -> Result<PassiveResult, String> {
    let (host, service) = icinga_target(body, host, service)?;
    let code = body
        .get("exit_status")
        .and_then(integer)
        .ok_or("`exit_status` is required (a number)")?;
    let output = body
        .get("plugin_output")
        .and_then(Value::as_str)
        .ok_or("`plugin_output` is required (a string)")?;
    let state = if service.is_some() {
        service_state(code)?
    } else {
        host_state(code)?
    };
    let mut result = result_of(state, output);
    // Icinga: plugin_output does not carry the perfdata; it comes apart.
    result.perfdata = match body.get("performance_data") {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" "),
        Some(Value::String(text)) => text.clone(),
        _ => result.perfdata,
    };
    let seconds = |key: &str| {
        body.get(key)
            .and_then(Value::as_f64)
            .map(|s| (s * 1000.0) as i64)
    };
    Ok(PassiveResult {
        host,
        service,
        result,
        time_ms: seconds("execution_end").or_else(|| seconds("execution_start")),
        ttl_ms: seconds("ttl"),
        source: body
            .get("check_source")
            .and_then(Value::as_str)
            .map(str::to_owned),
    })
}

#[cfg(test)]
#[path = "passive_tests.rs"]
mod tests;
