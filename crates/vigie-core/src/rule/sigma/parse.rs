//! From a YAML document to a `SigmaRule` (or a `SigmaFilter`, or a correlation): metadata,
//! logsource and the detection section with its field/modifier keys split but values not yet
//! compiled. Shapes the spec does not allow are rejected here, with the line of the offending
//! node.

use std::collections::BTreeMap;

use crate::rule::correlation::{
    CompareOp, CorrelationCondition, CorrelationKind, CorrelationRule, parse_timespan,
};
use crate::yaml::{Node, NodeValue};

/// A parse or compile failure of one rule, with the YAML line when known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct RuleError {
    pub line: Option<usize>,
    pub reason: String,
}

impl RuleError {
    pub(crate) fn at(node: &Node, reason: impl Into<String>) -> Self {
        RuleError {
            line: (node.line > 0).then_some(node.line),
            reason: reason.into(),
        }
    }
}

/// Severity of a rule, as the spec lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SigmaLevel {
    Informational,
    Low,
    Medium,
    High,
    Critical,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogSource {
    pub category: Option<String>,
    pub product: Option<String>,
    pub service: Option<String>,
    pub definition: Option<String>,
}

/// A scalar value of a detection item, as written in the rule.
#[derive(Debug, Clone, PartialEq)]
pub enum SigmaValue {
    String(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Null,
}

/// `field|mod1|mod2: values` (`field` is `None` for keyword items such as `'|all': [...]`).
#[derive(Debug, Clone, PartialEq)]
pub struct DetectionItem {
    pub field: Option<String>,
    pub modifiers: Vec<String>,
    pub values: Vec<SigmaValue>,
    pub line: usize,
}

/// The content of one search identifier.
#[derive(Debug, Clone, PartialEq)]
pub enum Search {
    /// Maps linked with OR; the items of one map are linked with AND.
    Maps(Vec<Vec<DetectionItem>>),
    /// Plain values searched across the whole event, linked with OR.
    Keywords(Vec<SigmaValue>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct NamedSearch {
    pub name: String,
    pub search: Search,
    pub line: usize,
}

/// A Sigma detection rule as written, not yet compiled.
#[derive(Debug, Clone, PartialEq)]
pub struct SigmaRule {
    pub title: String,
    pub id: Option<String>,
    pub name: Option<String>,
    pub status: Option<String>,
    pub level: Option<SigmaLevel>,
    pub description: Option<String>,
    pub author: Option<String>,
    pub date: Option<String>,
    pub modified: Option<String>,
    pub tags: Vec<String>,
    pub references: Vec<String>,
    pub falsepositives: Vec<String>,
    pub logsource: LogSource,
    pub searches: Vec<NamedSearch>,
    /// Condition strings, linked with OR.
    pub conditions: Vec<String>,
    /// Line of the `condition` key (for error reporting).
    pub condition_line: usize,
    /// Line where the document starts.
    pub line: usize,
}

/// Which rules a filter tunes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterTarget {
    /// `rules: any` (Sigma 2.2; `all` is read the same): every rule.
    Any,
    /// Rules by id or name.
    Rules(Vec<String>),
}

/// A Sigma filter document as written (the filters specification): searches and a condition
/// that must hold, beside the condition of each rule the filter targets, for a match to stand.
#[derive(Debug, Clone, PartialEq)]
pub struct SigmaFilter {
    pub title: String,
    pub id: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub author: Option<String>,
    pub date: Option<String>,
    pub modified: Option<String>,
    pub logsource: LogSource,
    pub target: FilterTarget,
    pub searches: Vec<NamedSearch>,
    /// Condition strings, linked with OR.
    pub conditions: Vec<String>,
    pub condition_line: usize,
    pub line: usize,
}

impl SigmaFilter {
    /// The filter's searches and condition as a rule with the filter's title, id and logsource:
    /// what the rule compiler turns into something to evaluate.
    pub fn as_rule(&self) -> SigmaRule {
        SigmaRule {
            title: self.title.clone(),
            id: self.id.clone(),
            name: self.name.clone(),
            status: None,
            level: None,
            description: self.description.clone(),
            author: self.author.clone(),
            date: self.date.clone(),
            modified: self.modified.clone(),
            tags: Vec::new(),
            references: Vec::new(),
            falsepositives: Vec::new(),
            logsource: self.logsource.clone(),
            searches: self.searches.clone(),
            conditions: self.conditions.clone(),
            condition_line: self.condition_line,
            line: self.line,
        }
    }
}

/// What a YAML document of a rule file holds.
#[derive(Debug)]
pub(crate) enum Document {
    Rule(Box<SigmaRule>),
    Correlation(Box<CorrelationRule>),
    Filter(Box<SigmaFilter>),
}

fn optional_text(doc: &Node, key: &str) -> Result<Option<String>, RuleError> {
    match doc.get(key) {
        None => Ok(None),
        Some(node) if node.value == NodeValue::Null => Ok(None),
        Some(node) => node.scalar_text().map(Some).ok_or_else(|| {
            RuleError::at(
                node,
                format!("`{key}` must be a string, found a {}", node.kind()),
            )
        }),
    }
}

fn text_list(doc: &Node, key: &str) -> Result<Vec<String>, RuleError> {
    match doc.get(key) {
        None => Ok(Vec::new()),
        Some(node) => match &node.value {
            NodeValue::Null => Ok(Vec::new()),
            NodeValue::Seq(items) => items
                .iter()
                .map(|item| {
                    item.scalar_text().ok_or_else(|| {
                        RuleError::at(
                            item,
                            format!("`{key}` items must be strings, found a {}", item.kind()),
                        )
                    })
                })
                .collect(),
            _ => node
                .scalar_text()
                .map(|t| vec![t])
                .ok_or_else(|| RuleError::at(node, format!("`{key}` must be a list of strings"))),
        },
    }
}

pub(crate) fn document_id(doc: &Node) -> Option<String> {
    doc.get("id").and_then(Node::scalar_text)
}

/// Classifies and parses one YAML document.
pub(crate) fn parse_document(doc: &Node) -> Result<Document, RuleError> {
    if !matches!(doc.value, NodeValue::Map(_)) {
        return Err(RuleError::at(
            doc,
            format!("a rule must be a map, found a {}", doc.kind()),
        ));
    }
    if let Some(section) = doc.get("correlation") {
        return parse_correlation(doc, section).map(|c| Document::Correlation(Box::new(c)));
    }
    if let Some(section) = doc.get("filter") {
        return parse_filter(doc, section).map(|f| Document::Filter(Box::new(f)));
    }
    parse_rule(doc).map(|rule| Document::Rule(Box::new(rule)))
}

fn parse_level(doc: &Node) -> Result<Option<SigmaLevel>, RuleError> {
    let Some(node) = doc.get("level") else {
        return Ok(None);
    };
    Ok(Some(match node.scalar_text().as_deref() {
        Some("informational") => SigmaLevel::Informational,
        Some("low") => SigmaLevel::Low,
        Some("medium") => SigmaLevel::Medium,
        Some("high") => SigmaLevel::High,
        Some("critical") => SigmaLevel::Critical,
        other => {
            return Err(RuleError::at(
                node,
                format!("unknown level `{}`", other.unwrap_or("(not a string)")),
            ));
        }
    }))
}

const CORRELATION_KEYS: [&str; 7] = [
    "type",
    "rules",
    "group-by",
    "timespan",
    "condition",
    "aliases",
    "generate",
];

/// Parses a `correlation:` document. References in `rules` and `aliases` are checked against
/// each other here and against the loaded rules by the loader.
fn parse_correlation(doc: &Node, section: &Node) -> Result<CorrelationRule, RuleError> {
    let title =
        optional_text(doc, "title")?.ok_or_else(|| RuleError::at(doc, "missing `title`"))?;
    let NodeValue::Map(entries) = &section.value else {
        return Err(RuleError::at(section, "`correlation` must be a map"));
    };
    for (key, _) in entries {
        let known = key
            .scalar_text()
            .is_some_and(|k| CORRELATION_KEYS.contains(&k.as_str()));
        if !known {
            return Err(RuleError::at(
                key,
                format!(
                    "correlation: unknown key `{}`",
                    key.scalar_text().unwrap_or_default()
                ),
            ));
        }
    }
    let type_name = optional_text(section, "type")?
        .ok_or_else(|| RuleError::at(section, "correlation: missing `type`"))?;
    let kind = CorrelationKind::from_name(&type_name).ok_or_else(|| {
        RuleError::at(
            section.get("type").unwrap_or(section),
            format!("correlation: unsupported type `{type_name}`"),
        )
    })?;
    let rules = text_list(section, "rules")?;
    if rules.is_empty() {
        return Err(RuleError::at(section, "correlation: missing `rules`"));
    }
    let group_by = text_list(section, "group-by")?;
    let timespan_node = section
        .get("timespan")
        .ok_or_else(|| RuleError::at(section, "correlation: missing `timespan`"))?;
    let timespan_ms = match &timespan_node.value {
        NodeValue::Str(text) => parse_timespan(text),
        _ => Err(format!(
            "invalid timespan: expected text such as `5m`, found a {}",
            timespan_node.kind()
        )),
    }
    .map_err(|reason| RuleError::at(timespan_node, format!("correlation: {reason}")))?;
    let condition = parse_correlation_condition(section, kind, rules.len())?;
    let aliases = parse_aliases(section, &rules, &group_by)?;
    // `generate` sits in the correlation section in the spec; some rules put it at the top.
    let generate = match section.get("generate").or_else(|| doc.get("generate")) {
        None => false,
        Some(node) => match node.value {
            NodeValue::Bool(b) => b,
            _ => {
                return Err(RuleError::at(
                    node,
                    "correlation: `generate` must be true or false",
                ));
            }
        },
    };
    Ok(CorrelationRule {
        title,
        id: optional_text(doc, "id")?,
        name: optional_text(doc, "name")?,
        status: optional_text(doc, "status")?,
        level: parse_level(doc)?,
        description: optional_text(doc, "description")?,
        author: optional_text(doc, "author")?,
        tags: text_list(doc, "tags")?,
        kind,
        rules,
        group_by,
        aliases,
        timespan_ms,
        condition,
        generate,
        path: String::new(),
        line: doc.line,
    })
}

fn parse_correlation_condition(
    section: &Node,
    kind: CorrelationKind,
    rule_count: usize,
) -> Result<CorrelationCondition, RuleError> {
    let Some(node) = section.get("condition") else {
        if matches!(
            kind,
            CorrelationKind::Temporal | CorrelationKind::TemporalOrdered
        ) {
            // Temporal correlations need every referenced rule by default.
            return Ok(CorrelationCondition {
                criteria: vec![(CompareOp::Gte, rule_count as f64)],
                field: None,
                percentile: None,
            });
        }
        return Err(RuleError::at(
            section,
            format!(
                "correlation: missing `condition` (required for {})",
                kind.name()
            ),
        ));
    };
    let NodeValue::Map(entries) = &node.value else {
        return Err(RuleError::at(
            node,
            "correlation: `condition` must be a map",
        ));
    };
    let mut condition = CorrelationCondition {
        criteria: Vec::new(),
        field: None,
        percentile: None,
    };
    for (key, value) in entries {
        let key_text = key.scalar_text().unwrap_or_default();
        let number = || match value.value {
            NodeValue::Int(i) => Ok(i as f64),
            NodeValue::Float(f) if f.is_finite() => Ok(f),
            _ => Err(RuleError::at(
                value,
                format!("correlation: `condition.{key_text}` must be a number"),
            )),
        };
        match key_text.as_str() {
            "field" => {
                condition.field = Some(value.scalar_text().ok_or_else(|| {
                    RuleError::at(value, "correlation: `condition.field` must be a string")
                })?);
            }
            "percentile" => {
                let p = number()?;
                if kind != CorrelationKind::ValuePercentile || !(0.0..=100.0).contains(&p) {
                    return Err(RuleError::at(
                        key,
                        "correlation: `condition.percentile` must be 0 to 100, for value_percentile only",
                    ));
                }
                condition.percentile = Some(p);
            }
            op => {
                let op = CompareOp::from_name(op).ok_or_else(|| {
                    RuleError::at(
                        key,
                        format!("correlation: unknown condition operator `{key_text}`"),
                    )
                })?;
                condition.criteria.push((op, number()?));
            }
        }
    }
    if condition.criteria.is_empty() {
        return Err(RuleError::at(
            node,
            "correlation: `condition` has no criterion (gt, gte, lt, lte, eq, neq)",
        ));
    }
    match (&condition.field, kind.needs_field()) {
        (None, true) => Err(RuleError::at(
            node,
            format!(
                "correlation: `condition.field` is required for {}",
                kind.name()
            ),
        )),
        (Some(_), false) => Err(RuleError::at(
            node,
            format!(
                "correlation: `condition.field` is not used by {}",
                kind.name()
            ),
        )),
        _ => Ok(condition),
    }
}

fn parse_aliases(
    section: &Node,
    rules: &[String],
    group_by: &[String],
) -> Result<BTreeMap<String, BTreeMap<String, String>>, RuleError> {
    let mut aliases = BTreeMap::new();
    let Some(node) = section.get("aliases") else {
        return Ok(aliases);
    };
    let NodeValue::Map(entries) = &node.value else {
        return Err(RuleError::at(node, "correlation: `aliases` must be a map"));
    };
    for (alias_key, mapping) in entries {
        let alias = alias_key.scalar_text().unwrap_or_default();
        if !group_by.contains(&alias) {
            return Err(RuleError::at(
                alias_key,
                format!("correlation: alias `{alias}` is not used in `group-by`"),
            ));
        }
        let NodeValue::Map(pairs) = &mapping.value else {
            return Err(RuleError::at(
                mapping,
                format!("correlation: alias `{alias}` must map rule names to fields"),
            ));
        };
        let mut fields = BTreeMap::new();
        for (rule_key, field) in pairs {
            let rule = rule_key.scalar_text().unwrap_or_default();
            if !rules.contains(&rule) {
                return Err(RuleError::at(
                    rule_key,
                    format!("correlation: alias `{alias}` names `{rule}`, which is not in `rules`"),
                ));
            }
            let field = field.scalar_text().ok_or_else(|| {
                RuleError::at(
                    field,
                    format!("correlation: alias `{alias}`: field must be a string"),
                )
            })?;
            fields.insert(rule, field);
        }
        aliases.insert(alias, fields);
    }
    Ok(aliases)
}

fn parse_logsource(doc: &Node) -> Result<LogSource, RuleError> {
    let logsource_node = doc
        .get("logsource")
        .ok_or_else(|| RuleError::at(doc, "missing `logsource`"))?;
    if !matches!(logsource_node.value, NodeValue::Map(_)) {
        return Err(RuleError::at(logsource_node, "`logsource` must be a map"));
    }
    Ok(LogSource {
        category: optional_text(logsource_node, "category")?,
        product: optional_text(logsource_node, "product")?,
        service: optional_text(logsource_node, "service")?,
        definition: optional_text(logsource_node, "definition")?,
    })
}

/// The searches and the condition of a `detection` (or `filter`) section.
struct Detection {
    searches: Vec<NamedSearch>,
    conditions: Vec<String>,
    condition_line: usize,
}

/// Reads the searches and the condition of `section` (named `section_name` in messages); the
/// keys of `skip` belong to the section itself, not to its searches.
fn parse_detection(
    section: &Node,
    section_name: &str,
    skip: &[&str],
) -> Result<Detection, RuleError> {
    let NodeValue::Map(entries) = &section.value else {
        return Err(RuleError::at(
            section,
            format!("`{section_name}` must be a map"),
        ));
    };
    let mut searches = Vec::new();
    let mut conditions = None;
    let mut condition_line = section.line;
    for (key, value) in entries {
        let Some(name) = key.scalar_text() else {
            return Err(RuleError::at(key, "search identifiers must be strings"));
        };
        if skip.contains(&name.as_str()) {
            continue;
        }
        if name == "condition" {
            condition_line = value.line;
            conditions = Some(match &value.value {
                NodeValue::Str(s) => vec![s.clone()],
                NodeValue::Seq(items) => items
                    .iter()
                    .map(|item| match &item.value {
                        NodeValue::Str(s) => Ok(s.clone()),
                        _ => Err(RuleError::at(item, "condition list items must be strings")),
                    })
                    .collect::<Result<_, _>>()?,
                _ => {
                    return Err(RuleError::at(
                        value,
                        "`condition` must be a string or a list of strings",
                    ));
                }
            });
            continue;
        }
        if name == "timeframe" {
            return Err(RuleError::at(
                key,
                "`timeframe` (sigma 1.0 aggregation) is not supported; use a correlation rule",
            ));
        }
        if name.is_empty()
            || name
                .chars()
                .any(|c| c.is_whitespace() || c == '(' || c == ')')
        {
            return Err(RuleError::at(
                key,
                format!("invalid search identifier `{name}`"),
            ));
        }
        searches.push(NamedSearch {
            search: parse_search(&name, value)?,
            name,
            line: key.line,
        });
    }
    let conditions = conditions
        .ok_or_else(|| RuleError::at(section, format!("missing `{section_name}.condition`")))?;
    Ok(Detection {
        searches,
        conditions,
        condition_line,
    })
}

fn parse_rule(doc: &Node) -> Result<SigmaRule, RuleError> {
    if let Some(action) = doc.get("action") {
        return Err(RuleError::at(
            action,
            "`action` multi-document rules (sigma 1.0 `action: global`) are not supported",
        ));
    }
    let title =
        optional_text(doc, "title")?.ok_or_else(|| RuleError::at(doc, "missing `title`"))?;
    let level = parse_level(doc)?;
    let logsource = parse_logsource(doc)?;
    let detection = doc
        .get("detection")
        .ok_or_else(|| RuleError::at(doc, "missing `detection`"))?;
    let Detection {
        searches,
        conditions,
        condition_line,
    } = parse_detection(detection, "detection", &[])?;
    Ok(SigmaRule {
        title,
        id: optional_text(doc, "id")?,
        name: optional_text(doc, "name")?,
        status: optional_text(doc, "status")?,
        level,
        description: optional_text(doc, "description")?,
        author: optional_text(doc, "author")?,
        date: optional_text(doc, "date")?,
        modified: optional_text(doc, "modified")?,
        tags: text_list(doc, "tags")?,
        references: text_list(doc, "references")?,
        falsepositives: text_list(doc, "falsepositives")?,
        logsource,
        searches,
        conditions,
        condition_line,
        line: doc.line,
    })
}

/// Parses a `filter:` document (the Sigma filters specification, with `rules: any` of 2.2).
fn parse_filter(doc: &Node, section: &Node) -> Result<SigmaFilter, RuleError> {
    let title = optional_text(doc, "title")?
        .ok_or_else(|| RuleError::at(doc, "filter: missing `title`"))?;
    let logsource = parse_logsource(doc).map_err(|e| RuleError {
        reason: format!("filter: {}", e.reason),
        ..e
    })?;
    if !matches!(section.value, NodeValue::Map(_)) {
        return Err(RuleError::at(section, "filter: `filter` must be a map"));
    }
    let rules = section.get("rules").ok_or_else(|| {
        RuleError::at(
            section,
            "filter: missing `filter.rules` (rule ids or names, or `any`)",
        )
    })?;
    let target = match &rules.value {
        NodeValue::Str(text)
            if text.eq_ignore_ascii_case("any") || text.eq_ignore_ascii_case("all") =>
        {
            FilterTarget::Any
        }
        NodeValue::Str(text) if !text.trim().is_empty() => FilterTarget::Rules(vec![text.clone()]),
        NodeValue::Seq(items) if items.is_empty() => {
            return Err(RuleError::at(
                rules,
                "filter: `filter.rules` is empty (write `any` to tune every rule)",
            ));
        }
        NodeValue::Seq(items) => FilterTarget::Rules(
            items
                .iter()
                .map(|item| match item.scalar_text() {
                    Some(text) if !text.trim().is_empty() => Ok(text),
                    _ => Err(RuleError::at(
                        item,
                        "filter: `filter.rules` items must be rule ids or names",
                    )),
                })
                .collect::<Result<_, _>>()?,
        ),
        _ => {
            return Err(RuleError::at(
                rules,
                format!(
                    "filter: `filter.rules` must be `any` or a list of rule ids or names, found a {}",
                    rules.kind()
                ),
            ));
        }
    };
    let Detection {
        searches,
        conditions,
        condition_line,
    } = parse_detection(section, "filter", &["rules"]).map_err(|e| RuleError {
        reason: format!("filter: {}", e.reason),
        ..e
    })?;
    if searches.is_empty() {
        return Err(RuleError::at(
            section,
            "filter: no search identifier under `filter` (a selection to test)",
        ));
    }
    Ok(SigmaFilter {
        title,
        id: optional_text(doc, "id")?,
        name: optional_text(doc, "name")?,
        description: optional_text(doc, "description")?,
        author: optional_text(doc, "author")?,
        date: optional_text(doc, "date")?,
        modified: optional_text(doc, "modified")?,
        logsource,
        target,
        searches,
        conditions,
        condition_line,
        line: doc.line,
    })
}

fn scalar_value(node: &Node, context: &str) -> Result<SigmaValue, RuleError> {
    Ok(match &node.value {
        NodeValue::Str(s) => SigmaValue::String(s.clone()),
        NodeValue::Int(i) => SigmaValue::Int(*i),
        NodeValue::Float(f) => SigmaValue::Float(*f),
        NodeValue::Bool(b) => SigmaValue::Bool(*b),
        NodeValue::Null => SigmaValue::Null,
        NodeValue::Seq(_) | NodeValue::Map(_) => {
            return Err(RuleError::at(
                node,
                format!("{context}: expected a plain value, found a {}", node.kind()),
            ));
        }
    })
}

fn parse_search(name: &str, node: &Node) -> Result<Search, RuleError> {
    match &node.value {
        NodeValue::Map(_) => Ok(Search::Maps(vec![parse_map(name, node)?])),
        NodeValue::Seq(items) if items.is_empty() => Err(RuleError::at(
            node,
            format!("search `{name}` is an empty list"),
        )),
        NodeValue::Seq(items) => {
            if items.iter().all(|i| matches!(i.value, NodeValue::Map(_))) {
                Ok(Search::Maps(
                    items
                        .iter()
                        .map(|i| parse_map(name, i))
                        .collect::<Result<_, _>>()?,
                ))
            } else if items
                .iter()
                .any(|i| matches!(i.value, NodeValue::Map(_) | NodeValue::Seq(_)))
            {
                Err(RuleError::at(
                    node,
                    format!("search `{name}` mixes maps and plain values in one list"),
                ))
            } else {
                Ok(Search::Keywords(
                    items
                        .iter()
                        .map(|i| scalar_value(i, &format!("search `{name}`")))
                        .collect::<Result<_, _>>()?,
                ))
            }
        }
        NodeValue::Str(_) | NodeValue::Int(_) | NodeValue::Float(_) => {
            Ok(Search::Keywords(vec![scalar_value(node, name)?]))
        }
        NodeValue::Null | NodeValue::Bool(_) => Err(RuleError::at(
            node,
            format!(
                "search `{name}` must be a map or a list, found a {}",
                node.kind()
            ),
        )),
    }
}

fn parse_map(name: &str, node: &Node) -> Result<Vec<DetectionItem>, RuleError> {
    let NodeValue::Map(entries) = &node.value else {
        return Err(RuleError::at(
            node,
            format!("search `{name}` must be a map"),
        ));
    };
    if entries.is_empty() {
        return Err(RuleError::at(
            node,
            format!("search `{name}` is an empty map"),
        ));
    }
    entries
        .iter()
        .map(|(key, value)| {
            let key_text = key.scalar_text().ok_or_else(|| {
                RuleError::at(key, format!("search `{name}`: field names must be strings"))
            })?;
            let mut parts = key_text.split('|');
            let field = parts.next().unwrap_or_default();
            let modifiers: Vec<String> = parts.map(str::to_owned).collect();
            let context = format!("search `{name}`, field `{key_text}`");
            let values = match &value.value {
                NodeValue::Seq(items) if items.is_empty() => {
                    return Err(RuleError::at(
                        value,
                        format!("{context}: empty list of values"),
                    ));
                }
                NodeValue::Seq(items) => items
                    .iter()
                    .map(|i| scalar_value(i, &context))
                    .collect::<Result<_, _>>()?,
                _ => vec![scalar_value(value, &context)?],
            };
            Ok(DetectionItem {
                field: (!field.is_empty()).then(|| field.to_owned()),
                modifiers,
                values,
                line: key.line,
            })
        })
        .collect()
}
