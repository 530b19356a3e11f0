//! The ingest JSON form of an event: only `client` and `message` are required; `time`
//! defaults to the reception time and `severity` to info; every other top-level key is kept
//! in `fields`. Each problem names the field, so a rejected batch can say what and where.

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
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

/// The top-level keys an event's JSON names; every other key goes to `fields`.
const KNOWN_KEYS: [&str; 9] = [
    "client", "message", "time", "severity", "asset", "source", "kind", "raw", "fields",
];

/// An event's known keys, each as found (or absent), and every other top-level key in order.
#[derive(Default)]
struct Parts {
    known: [Option<Value>; KNOWN_KEYS.len()],
    others: Map<String, Value>,
}

/// The index of `name` in [`KNOWN_KEYS`].
fn known_key(name: &str) -> Option<usize> {
    KNOWN_KEYS.iter().position(|known| *known == name)
}

impl Parts {
    fn put(&mut self, key: Key, value: Value) {
        match key {
            Key::Known(index) => self.known[index] = Some(value),
            Key::Other(name) => {
                self.others.insert(name, value);
            }
        }
    }

    fn take(&mut self, key: &str) -> Option<Value> {
        self.known[known_key(key)?].take()
    }

    fn string(&mut self, field: &str) -> Result<Option<String>, EventError> {
        match self.take(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => Ok(Some(text)),
            Some(other) => Err(EventError::new(
                field,
                format!("expected a string, found {}", kind_of(&other)),
            )),
        }
    }
}

/// Turns one ingest JSON value into an `Event`. `now_ms` is the reception time, used when
/// the event has no `time`; `default_source` names the channel it came through.
pub fn event_from_json(
    value: Value,
    now_ms: i64,
    default_source: &str,
) -> Result<Event, EventError> {
    let Value::Object(object) = value else {
        return Err(EventError::new(
            "",
            format!("an event must be a JSON object, found {}", kind_of(&value)),
        ));
    };
    let mut parts = Parts::default();
    for (name, value) in object {
        let key = known_key(&name).map_or(Key::Other(name), Key::Known);
        parts.put(key, value);
    }
    event_from_parts(parts, now_ms, default_source)
}

/// Why one line of ingest JSON is not an event.
#[derive(Debug, thiserror::Error)]
pub enum LineError {
    /// The text is not JSON.
    #[error("not JSON: {0}")]
    Syntax(#[from] serde_json::Error),
    /// It is JSON but not a valid event.
    #[error(transparent)]
    Event(#[from] EventError),
}

/// Reads one event from its JSON text, as [`event_from_json`] would from the parsed value,
/// without building the intermediate value: the known keys are read in place and only the
/// other keys become `fields` entries.
pub fn event_from_json_slice(
    text: &[u8],
    now_ms: i64,
    default_source: &str,
) -> Result<Event, LineError> {
    let mut reader = serde_json::Deserializer::from_slice(text);
    let parts = PartsSeed.deserialize(&mut reader)?;
    reader.end()?;
    Ok(event_from_parts(parts?, now_ms, default_source)?)
}

/// Reads a JSON array of events from its text: the array's syntax is checked whole, and each
/// element is an event or the reason it is not one, in order.
pub fn events_from_json_array(
    text: &[u8],
    now_ms: i64,
    default_source: &str,
) -> Result<Vec<Result<Event, EventError>>, serde_json::Error> {
    let mut reader = serde_json::Deserializer::from_slice(text);
    let elements = reader.deserialize_seq(ArrayVisitor)?;
    reader.end()?;
    Ok(elements
        .into_iter()
        .map(|parts| event_from_parts(parts?, now_ms, default_source))
        .collect())
}

/// Deserializes one event's parts; a JSON value that is not an object is reported as an
/// [`EventError`] (the text itself was fine), not as a syntax error.
struct PartsSeed;

impl<'de> DeserializeSeed<'de> for PartsSeed {
    type Value = Result<Parts, EventError>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(PartsVisitor)
    }
}

struct PartsVisitor;

fn not_an_object(found: &str) -> Result<Parts, EventError> {
    Err(EventError::new(
        "",
        format!("an event must be a JSON object, found {found}"),
    ))
}

impl<'de> Visitor<'de> for PartsVisitor {
    type Value = Result<Parts, EventError>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut parts = Parts::default();
        while let Some(key) = map.next_key_seed(KeySeed)? {
            parts.put(key, map.next_value()?);
        }
        Ok(Ok(parts))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(not_an_object("an array"))
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(not_an_object("null"))
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(not_an_object("a boolean"))
    }

    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(not_an_object("a number"))
    }

    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(not_an_object("a number"))
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(not_an_object("a number"))
    }

    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(not_an_object("a string"))
    }
}

struct ArrayVisitor;

impl<'de> Visitor<'de> for ArrayVisitor {
    type Value = Vec<Result<Parts, EventError>>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON array of events")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(parts) = seq.next_element_seed(PartsSeed)? {
            out.push(parts);
        }
        Ok(out)
    }
}

/// A top-level key: one of [`KNOWN_KEYS`] by its index (no allocation), or another name.
enum Key {
    Known(usize),
    Other(String),
}

struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Key;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Key, D::Error> {
        deserializer.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl Visitor<'_> for KeyVisitor {
    type Value = Key;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E>(self, key: &str) -> Result<Key, E> {
        Ok(known_key(key).map_or_else(|| Key::Other(key.to_owned()), Key::Known))
    }
}

/// The one place an event's known keys are checked and its `fields` assembled.
fn event_from_parts(
    mut parts: Parts,
    now_ms: i64,
    default_source: &str,
) -> Result<Event, EventError> {
    let client = parts
        .string("client")?
        .filter(|c| !c.trim().is_empty())
        .ok_or_else(|| EventError::new("client", "is required"))?;
    let message = parts
        .string("message")?
        .ok_or_else(|| EventError::new("message", "is required"))?;
    let time_ms = match parts.take("time") {
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
    let severity = match parts.take("severity") {
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
    let asset = parts.string("asset")?;
    let source = parts
        .string("source")?
        .unwrap_or_else(|| default_source.to_owned());
    let kind = parts.string("kind")?.unwrap_or_else(|| "log".to_owned());
    let raw = parts.string("raw")?;
    let mut fields = match parts.take("fields") {
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
    if fields.is_empty() {
        fields = parts.others;
    } else {
        for (key, value) in parts.others {
            fields.entry(key).or_insert(value);
        }
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

    /// The text path and the value path agree on events, on problems and on field order.
    #[test]
    fn reading_the_text_agrees_with_reading_the_value() {
        let lines = [
            r#"{"client":"acme","message":"m"}"#,
            r#"{"client":"acme","asset":"srv-1","severity":"error","source":"bench","kind":"auth","message":"sshd: ok","user":"svc1","seq":7}"#,
            r#"{"z":1,"client":"acme","message":"m","fields":{"pid":42,"user":"x"},"user":"top","a":[1,{"b":null}]}"#,
            r#"{"client":"acme","message":"first","message":"second","x":1,"x":2}"#,
            r#"{"client":"acme","message":"escaped key","kéy":"v"}"#,
            r#"{"client":"acme","message":"m","time":"2026-11-27T10:15:00Z","severity":2}"#,
            r#"{"client":"acme","message":"m","time":5,"raw":"<13>x","fields":null}"#,
            r#"{"client":"acme","message":"m","time":1.5}"#,
            r#"{"client":"acme","message":"m","time":"noon"}"#,
            r#"{"client":"acme","message":"m","severity":"loud"}"#,
            r#"{"client":"acme","message":"m","severity":9}"#,
            r#"{"client":3,"message":"m"}"#,
            r#"{"client":"  ","message":"m"}"#,
            r#"{"client":"acme"}"#,
            r#"{"client":"acme","message":"m","fields":[1]}"#,
            r#"{"client":"acme","message":"m","asset":{"id":1}}"#,
            r#"[1,2]"#,
            r#""text""#,
            r#"null"#,
            r#"true"#,
            r#"-4"#,
        ];
        for line in lines {
            let from_value = event_from_json(serde_json::from_str(line).unwrap(), 1_000, "http")
                .map_err(|e| e.to_string());
            let from_text =
                event_from_json_slice(line.as_bytes(), 1_000, "http").map_err(|e| e.to_string());
            assert_eq!(from_text, from_value, "{line}");
            if let (Ok(a), Ok(b)) = (&from_text, &from_value) {
                let keys = |e: &Event| e.fields.keys().cloned().collect::<Vec<_>>();
                assert_eq!(keys(a), keys(b), "{line}");
            }
        }
        let event = event_from_json_slice(lines[3].as_bytes(), 1_000, "http").unwrap();
        assert_eq!(event.message, "second", "the last of repeated keys wins");
        assert_eq!(event.fields["x"], json!(2));
        let event = event_from_json_slice(lines[4].as_bytes(), 1_000, "http").unwrap();
        assert_eq!(event.client, "acme");
        assert_eq!(event.fields["kéy"], json!("v"));
    }

    #[test]
    fn text_that_is_not_one_json_value_is_a_syntax_error() {
        for line in [
            r#"{"client":"acme","message":"m"} {}"#,
            r#"{"client":"acme","message":"m""#,
            r#"{"client":"acme","message":"m",}"#,
            r#"{client:"acme"}"#,
            "",
        ] {
            let error = event_from_json_slice(line.as_bytes(), 1_000, "http").unwrap_err();
            assert!(matches!(error, LineError::Syntax(_)), "{line}: {error}");
            assert!(error.to_string().starts_with("not JSON: "), "{error}");
        }
    }

    #[test]
    fn an_array_is_read_element_by_element() {
        let text = br#"[{"client":"a","message":"one"}, 7, {"client":"a"}, {"client":"a","message":"four","n":4}]"#;
        let read: Vec<Result<Event, String>> = events_from_json_array(text, 1_000, "http")
            .unwrap()
            .into_iter()
            .map(|r| r.map_err(|e| e.to_string()))
            .collect();
        assert_eq!(read.len(), 4);
        assert_eq!(read[0].as_ref().unwrap().message, "one");
        assert_eq!(
            read[1].as_ref().unwrap_err(),
            "field ``: an event must be a JSON object, found a number"
        );
        assert_eq!(
            read[2].as_ref().unwrap_err(),
            "field `message`: is required"
        );
        assert_eq!(read[3].as_ref().unwrap().fields["n"], json!(4));
        assert!(events_from_json_array(b"[{}", 1_000, "http").is_err());
        assert!(events_from_json_array(b"[] x", 1_000, "http").is_err());
        assert!(events_from_json_array(br#"{"client":"a"}"#, 1_000, "http").is_err());
    }
}
