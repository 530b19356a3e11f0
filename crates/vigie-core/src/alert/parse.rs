//! Loading a rule file: a YAML list of rules. The YAML is first read into a tree that keeps
//! every node's line, then each rule is checked field by field, so one pass reports every
//! problem of the file at once as `path:line: field `x`: problem`.

use std::collections::HashMap;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{MessageFormatter, Spanned, UserMessageFormatter};

use crate::event::Severity;

use super::{AlertRule, FieldMatch, FieldTest, ONE_TEST, default_fingerprint, template};

/// Parses and checks a rule file. `path` only names the file in messages. An empty file (or
/// one with only comments) holds no rules.
pub fn parse_rules(path: &str, text: &str) -> Result<Vec<AlertRule>, Vec<String>> {
    let root: Option<Node> = match serde_saphyr::from_str(text) {
        Ok(root) => root,
        Err(error) => return Err(vec![yaml_error(path, &error)]),
    };
    let Some(mut root) = root else {
        return Ok(Vec::new());
    };
    restore_scalar_text(&mut root, text);
    let mut problems = Problems {
        path,
        list: Vec::new(),
    };
    let items = match root.value {
        NodeValue::Null => return Ok(Vec::new()),
        NodeValue::List(items) => items,
        other => {
            problems.at(
                root.line,
                format!("expected a list of rules, found {}", other.describe()),
            );
            return Err(problems.list);
        }
    };

    let mut rules = Vec::with_capacity(items.len());
    let mut first_line_of_id: HashMap<String, u64> = HashMap::new();
    for item in items {
        let line = item.line;
        let Some(rule) = check_rule(item, &mut problems) else {
            continue;
        };
        if let Some(first) = first_line_of_id.get(&rule.id) {
            problems.field(
                line,
                "id",
                format!("duplicate rule id `{}` (first at line {first})", rule.id),
            );
            continue;
        }
        first_line_of_id.insert(rule.id.clone(), line);
        rules.push(rule);
    }
    if problems.list.is_empty() {
        Ok(rules)
    } else {
        Err(problems.list)
    }
}

/// The problems found so far, already worded for people.
struct Problems<'a> {
    path: &'a str,
    list: Vec<String>,
}

impl Problems<'_> {
    fn at(&mut self, line: u64, problem: impl fmt::Display) {
        self.list.push(format!("{}:{line}: {problem}", self.path));
    }

    fn field(&mut self, line: u64, field: &str, problem: impl fmt::Display) {
        self.list
            .push(format!("{}:{line}: field `{field}`: {problem}", self.path));
    }

    /// Whether a problem about `field` was reported since `since`: a bad `id` is not also
    /// "required".
    fn field_reported(&self, since: usize, field: &str) -> bool {
        let needle = format!("field `{field}`:");
        self.list[since..]
            .iter()
            .any(|problem| problem.contains(&needle))
    }
}

fn yaml_error(path: &str, error: &serde_saphyr::Error) -> String {
    let error = error.without_snippet();
    // One line per problem: the parser's text may carry line breaks of its own.
    let message = UserMessageFormatter
        .format_message(error)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    match error.location() {
        Some(location) if location.line() > 0 => {
            format!("{path}:{}: {message}", location.line())
        }
        _ => format!("{path}: {message}"),
    }
}

const RULE_FIELDS: &str = "`id`, `title`, `min_severity`, `matches`, `fingerprint`, `severity`";
const MATCH_FIELDS: &str = "`field`, `equals`, `contains`, `one_of`";

/// Checks one rule, reporting each problem; `None` if there was any.
fn check_rule(node: Node, problems: &mut Problems<'_>) -> Option<AlertRule> {
    let before = problems.list.len();
    let line = node.line;
    let entries = match node.value {
        NodeValue::Map(entries) => entries,
        other => {
            problems.at(
                line,
                format!("a rule must be a mapping, found {}", other.describe()),
            );
            return None;
        }
    };
    let mut id = None;
    let mut title = None;
    let mut min_severity = None;
    let mut severity = None;
    let mut matches = Vec::new();
    let mut fingerprint = None;
    for (key, key_line, value) in checked_keys(entries, problems) {
        match key.as_str() {
            "id" => id = text(&value, "id", problems),
            "title" => {
                title = text(&value, "title", problems).filter(|title| {
                    template::check(title)
                        .map_err(|problem| problems.field(value.line, "title", problem))
                        .is_ok()
                });
            }
            "min_severity" => min_severity = optional_severity(&value, "min_severity", problems),
            "severity" => severity = optional_severity(&value, "severity", problems),
            "matches" => matches = check_matches(value, problems),
            "fingerprint" => fingerprint = check_fingerprint(value, problems),
            _ => problems.field(
                key_line,
                &key,
                format!("unknown field, expected one of {RULE_FIELDS}"),
            ),
        }
    }
    if id.is_none() && !problems.field_reported(before, "id") {
        problems.field(line, "id", "is required");
    }
    if title.is_none() && !problems.field_reported(before, "title") {
        problems.field(line, "title", "is required");
    }
    if problems.list.len() > before {
        return None;
    }
    Some(AlertRule {
        id: id?,
        title: title?,
        min_severity,
        matches,
        fingerprint: fingerprint.unwrap_or_else(default_fingerprint),
        severity,
    })
}

/// A mapping's entries with text keys, each with the key's line; other keys are reported and
/// dropped.
fn checked_keys(
    entries: Vec<(Node, Node)>,
    problems: &mut Problems<'_>,
) -> Vec<(String, u64, Node)> {
    entries
        .into_iter()
        .filter_map(|(key, value)| match key.value {
            NodeValue::Text(name) | NodeValue::Scalar(name) => Some((name, key.line, value)),
            other => {
                problems.at(
                    key.line,
                    format!("a key must be a name, found {}", other.describe()),
                );
                None
            }
        })
        .collect()
}

/// A scalar as text: strings as written, numbers and booleans as YAML read them. Empty or
/// blank text is a problem: every text field of a rule means something.
fn text(node: &Node, field: &str, problems: &mut Problems<'_>) -> Option<String> {
    let text = match &node.value {
        NodeValue::Text(text) | NodeValue::Scalar(text) => text.clone(),
        NodeValue::Map(_) if field == "title" => {
            problems.field(
                node.line,
                field,
                "expected text, found a mapping (quote a template that starts with `{`)",
            );
            return None;
        }
        other => {
            problems.field(
                node.line,
                field,
                format!("expected text, found {}", other.describe()),
            );
            return None;
        }
    };
    if text.trim().is_empty() {
        problems.field(node.line, field, "must not be empty");
        return None;
    }
    Some(text)
}

fn optional_severity(node: &Node, field: &str, problems: &mut Problems<'_>) -> Option<Severity> {
    if matches!(node.value, NodeValue::Null) {
        return None;
    }
    let name = text(node, field, problems)?;
    let severity = Severity::parse(&name);
    if severity.is_none() {
        let known: Vec<&str> = Severity::ALL.iter().map(|s| s.as_str()).collect();
        problems.field(
            node.line,
            field,
            format!(
                "unknown severity `{name}`, expected one of {}",
                known.join(", ")
            ),
        );
    }
    severity
}

fn check_matches(node: Node, problems: &mut Problems<'_>) -> Vec<FieldMatch> {
    let items = match node.value {
        NodeValue::Null => return Vec::new(),
        NodeValue::List(items) => items,
        other => {
            problems.field(
                node.line,
                "matches",
                format!("expected a list of conditions, found {}", other.describe()),
            );
            return Vec::new();
        }
    };
    let mut matches = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        let at = format!("matches[{index}]");
        let line = item.line;
        let entries = match item.value {
            NodeValue::Map(entries) => entries,
            other => {
                problems.field(
                    line,
                    &at,
                    format!("expected a mapping, found {}", other.describe()),
                );
                continue;
            }
        };
        let mut field = None;
        let mut tests = Vec::new();
        let mut bad = false;
        for (key, key_line, value) in checked_keys(entries, problems) {
            let name = format!("{at}.{key}");
            match key.as_str() {
                "field" => {
                    field = text(&value, &name, problems);
                    bad |= field.is_none();
                }
                "equals" => match text(&value, &name, problems) {
                    Some(expected) => tests.push(FieldTest::Equals(expected)),
                    None => bad = true,
                },
                "contains" => match text(&value, &name, problems) {
                    Some(needle) => tests.push(FieldTest::Contains(needle)),
                    None => bad = true,
                },
                "one_of" => match text_list(value, &name, problems) {
                    Some(texts) if texts.is_empty() => {
                        problems.field(key_line, &name, "must list at least one text");
                        bad = true;
                    }
                    Some(texts) => tests.push(FieldTest::OneOf(texts)),
                    None => bad = true,
                },
                _ => {
                    problems.field(
                        key_line,
                        &name,
                        format!("unknown field, expected one of {MATCH_FIELDS}"),
                    );
                    bad = true;
                }
            }
        }
        if field.is_none() && !bad {
            problems.field(line, &format!("{at}.field"), "is required");
            bad = true;
        }
        if tests.len() != 1 && !bad {
            problems.field(line, &at, ONE_TEST);
            bad = true;
        }
        if let (false, Some(field), Some(test)) = (bad, field, tests.pop()) {
            matches.push(FieldMatch { field, test });
        }
    }
    matches
}

fn check_fingerprint(node: Node, problems: &mut Problems<'_>) -> Option<Vec<String>> {
    if matches!(node.value, NodeValue::Null) {
        return None;
    }
    text_list(node, "fingerprint", problems)
}

/// A list of texts; each bad item is reported with its index.
fn text_list(node: Node, field: &str, problems: &mut Problems<'_>) -> Option<Vec<String>> {
    let items = match node.value {
        NodeValue::List(items) => items,
        other => {
            problems.field(
                node.line,
                field,
                format!("expected a list, found {}", other.describe()),
            );
            return None;
        }
    };
    let before = problems.list.len();
    let texts: Vec<String> = items
        .iter()
        .enumerate()
        .filter_map(|(index, item)| text(item, &format!("{field}[{index}]"), problems))
        .collect();
    (problems.list.len() == before).then_some(texts)
}

/// A YAML node, the line it starts on, and the bytes of the source that define it.
struct Node {
    line: u64,
    source: Option<(usize, usize)>,
    value: NodeValue,
}

/// YAML reads `y`, `on` or `1.50` as a boolean or a number; a rule means the text as written.
/// Numbers and booleans get their source text back.
fn restore_scalar_text(node: &mut Node, source: &str) {
    match &mut node.value {
        NodeValue::Scalar(text) => {
            if let Some(written) = node
                .source
                .and_then(|(start, len)| source.get(start..start.checked_add(len)?))
            {
                written.clone_into(text);
            }
        }
        NodeValue::List(items) => {
            for item in items {
                restore_scalar_text(item, source);
            }
        }
        NodeValue::Map(entries) => {
            for (key, value) in entries {
                restore_scalar_text(key, source);
                restore_scalar_text(value, source);
            }
        }
        NodeValue::Null | NodeValue::Text(_) => {}
    }
}

enum NodeValue {
    Null,
    /// A string, as written.
    Text(String),
    /// A number or boolean, as text.
    Scalar(String),
    List(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

impl NodeValue {
    fn describe(&self) -> &'static str {
        match self {
            NodeValue::Null => "nothing",
            NodeValue::Text(_) => "text",
            NodeValue::Scalar(_) => "a number or boolean",
            NodeValue::List(_) => "a list",
            NodeValue::Map(_) => "a mapping",
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<NodeValue>::deserialize(deserializer)?;
        // `defined`: for an alias, the anchored value rather than the `*name` token.
        let span = spanned.defined.span();
        let source = span
            .byte_offset()
            .zip(span.byte_len())
            .and_then(|(start, len)| {
                Some((usize::try_from(start).ok()?, usize::try_from(len).ok()?))
            });
        Ok(Node {
            line: spanned.referenced.line(),
            source,
            value: spanned.value,
        })
    }
}

impl<'de> Deserialize<'de> for NodeValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = NodeValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<NodeValue, E> {
        Ok(NodeValue::Scalar(value.to_string()))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<NodeValue, E> {
        Ok(NodeValue::Scalar(value.to_string()))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<NodeValue, E> {
        Ok(NodeValue::Scalar(value.to_string()))
    }

    fn visit_i128<E: de::Error>(self, value: i128) -> Result<NodeValue, E> {
        Ok(NodeValue::Scalar(value.to_string()))
    }

    fn visit_u128<E: de::Error>(self, value: u128) -> Result<NodeValue, E> {
        Ok(NodeValue::Scalar(value.to_string()))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<NodeValue, E> {
        Ok(NodeValue::Scalar(value.to_string()))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<NodeValue, E> {
        Ok(NodeValue::Text(value.to_owned()))
    }

    fn visit_string<E: de::Error>(self, value: String) -> Result<NodeValue, E> {
        Ok(NodeValue::Text(value))
    }

    fn visit_unit<E: de::Error>(self) -> Result<NodeValue, E> {
        Ok(NodeValue::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<NodeValue, E> {
        Ok(NodeValue::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<NodeValue, D::Error> {
        NodeValue::deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<NodeValue, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(NodeValue::List(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<NodeValue, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry::<Node, Node>()? {
            entries.push(entry);
        }
        Ok(NodeValue::Map(entries))
    }
}
