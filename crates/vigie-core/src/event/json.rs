//! The ingest JSON form of an event: only `client` and `message` are required; `time`
//! defaults to the reception time and `severity` to info; every other top-level key is kept
//! in `fields`. Each problem names the field, so a rejected batch can say what and where.

use serde_json::{Map, Value};

use super::{Event, Severity, parse_rfc3339_ms};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field `{field}`: {problem}")]
pub struct EventError {
    pub field: String,
    pub problem: String,
}

impl EventError {
    fn new(field: &str, problem: impl Into<String>) -> EventError {
        EventError {
            field: field.to_owned(),
            problem: problem.into(),
        }
    }
}

fn take_string(object: &mut Map<String, Value>, field: &str) -> Result<Option<String>, EventError> {
    match object.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(other) => Err(EventError::new(
            field,
            format!("expected a string, found {}", kind_of(&other)),
        )),
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Turns one ingest JSON value into an `Event`. `now_ms` is the reception time, used when
/// the event has no `time`; `default_source` names the channel it came through.
pub fn event_from_json(
    value: Value,
    now_ms: i64,
    default_source: &str,
) -> Result<Event, EventError> {
    let Value::Object(mut object) = value else {
        return Err(EventError::new(
            "",
            format!("an event must be a JSON object, found {}", kind_of(&value)),
        ));
    };
    let client = take_string(&mut object, "client")?
        .filter(|c| !c.trim().is_empty())
        .ok_or_else(|| EventError::new("client", "is required"))?;
    let message = take_string(&mut object, "message")?
        .ok_or_else(|| EventError::new("message", "is required"))?;
    let time_ms = match object.remove("time") {
        None | Some(Value::Null) => now_ms,
        Some(Value::String(text)) => parse_rfc3339_ms(&text).ok_or_else(|| {
            EventError::new("time", format!("{text:?} is not an RFC 3339 timestamp"))
        })?,
        Some(Value::Number(number)) => number
            .as_i64()
            .ok_or_else(|| EventError::new("time", "a number must be whole epoch milliseconds"))?,
        Some(other) => {
            return Err(EventError::new(
                "time",
                format!(
                    "expected an RFC 3339 string or epoch milliseconds, found {}",
                    kind_of(&other)
                ),
            ));
        }
    };
    let severity = match object.remove("severity") {
        None | Some(Value::Null) => Severity::Info,
        Some(Value::String(text)) => Severity::parse(&text).ok_or_else(|| {
            EventError::new(
                "severity",
                format!("{text:?} is not one of debug, info, notice, warning, error, critical, alert, emergency"),
            )
        })?,
        Some(Value::Number(number)) => number
            .as_u64()
            .and_then(|code| u8::try_from(code).ok())
            .and_then(Severity::from_syslog)
            .ok_or_else(|| EventError::new("severity", "a number must be a syslog severity 0 to 7"))?,
        Some(other) => {
            return Err(EventError::new(
                "severity",
                format!("expected a string, found {}", kind_of(&other)),
            ));
        }
    };
    let asset = take_string(&mut object, "asset")?;
    let source = take_string(&mut object, "source")?.unwrap_or_else(|| default_source.to_owned());
    let kind = take_string(&mut object, "kind")?.unwrap_or_else(|| "log".to_owned());
    let raw = take_string(&mut object, "raw")?;
    let mut fields = match object.remove("fields") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(fields)) => fields,
        Some(other) => {
            return Err(EventError::new(
                "fields",
                format!("expected an object, found {}", kind_of(&other)),
            ));
        }
    };
    // Whatever else the sender put at the top level is kept beside the explicit fields.
    for (key, value) in object {
        fields.entry(key).or_insert(value);
    }
    Ok(Event {
        time_ms,
        client,
        asset,
        source,
        kind,
        severity,
        message,
        fields,
        raw,
        unparsed: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(input: Value) -> Result<Event, String> {
        event_from_json(input, 1_000, "http").map_err(|e| e.to_string())
    }

    #[test]
    fn needs_only_client_and_message() {
        let event = check(json!({"client": "acme", "message": "disk full"})).unwrap();
        assert_eq!(event.time_ms, 1_000);
        assert_eq!(event.severity, Severity::Info);
        assert_eq!(event.source, "http");
        assert_eq!(event.kind, "log");
        assert!(event.fields.is_empty());
    }

    #[test]
    fn keeps_every_other_field() {
        let event = check(json!({
            "client": "acme", "message": "m", "severity": "ERR", "asset": "srv-1",
            "time": "2026-11-27T10:15:00Z", "user": "bob", "fields": {"pid": 42}
        }))
        .unwrap();
        assert_eq!(event.severity, Severity::Error);
        assert_eq!(event.asset.as_deref(), Some("srv-1"));
        assert_eq!(event.time_ms, 1_795_774_500_000);
        assert_eq!(event.fields["user"], json!("bob"));
        assert_eq!(event.fields["pid"], json!(42));
    }

    #[test]
    fn names_the_field_at_fault() {
        assert_eq!(
            check(json!({"message": "m"})).unwrap_err(),
            "field `client`: is required"
        );
        assert_eq!(
            check(json!({"client": "a"})).unwrap_err(),
            "field `message`: is required"
        );
        assert_eq!(
            check(json!({"client": "a", "message": "m", "time": "noon"})).unwrap_err(),
            "field `time`: \"noon\" is not an RFC 3339 timestamp"
        );
        assert_eq!(
            check(json!({"client": "a", "message": "m", "severity": "loud"})).unwrap_err(),
            "field `severity`: \"loud\" is not one of debug, info, notice, warning, error, critical, alert, emergency"
        );
        assert_eq!(
            check(json!({"client": 3, "message": "m"})).unwrap_err(),
            "field `client`: expected a string, found a number"
        );
        assert_eq!(
            check(json!([1])).unwrap_err(),
            "field ``: an event must be a JSON object, found an array"
        );
    }

    #[test]
    fn accepts_syslog_numeric_severity_and_epoch_time() {
        let event =
            check(json!({"client": "a", "message": "m", "severity": 2, "time": 5})).unwrap();
        assert_eq!(event.severity, Severity::Critical);
        assert_eq!(event.time_ms, 5);
    }
}
