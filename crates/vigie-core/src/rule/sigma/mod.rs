//! Sigma v2.1 detection rules: parsing (`parse`, `condition`), value modifiers (`modifier`,
//! `pattern`), compilation and evaluation (`eval`), and the loader that turns rule files into a
//! `RuleSet`. Invariant: a rule is either compiled with every feature it uses supported, or
//! rejected with a reason; nothing is silently dropped.

mod condition;
mod eval;
mod modifier;
mod parse;
mod pattern;
mod yaml;

use std::collections::HashMap;

pub use condition::{Condition, parse_condition};
pub use eval::{CompiledRule, DefaultFieldSource, FieldSource};
pub use parse::{
    DetectionItem, LogSource, NamedSearch, RuleError, Search, SigmaLevel, SigmaRule, SigmaValue,
};

use condition::identifier_matches;
use eval::{CompiledCondition, CompiledSearch};
use parse::Document;

/// Why a rule (or a YAML document of a rule file) was not loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub path: String,
    pub line: Option<usize>,
    pub rule_id: Option<String>,
    pub reason: String,
}

/// The rules loaded from a set of files, and every rule that could not be.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    pub rules: Vec<CompiledRule>,
    pub rejected: Vec<Rejection>,
}

/// Parses every document of a Sigma YAML text into rules (correlations and filters are reported
/// as not yet supported).
pub fn parse_rules(text: &str) -> Vec<Result<SigmaRule, (Option<String>, RuleError)>> {
    let documents = match yaml::parse_documents(text) {
        Ok(documents) => documents,
        Err((line, reason)) => return vec![Err((None, RuleError { line, reason }))],
    };
    documents
        .iter()
        .filter(|doc| doc.value != yaml::NodeValue::Null)
        .map(|doc| match parse::parse_document(doc) {
            Ok(Document::Rule(rule)) => Ok(*rule),
            Ok(Document::Correlation { id, line }) => Err((
                id,
                RuleError {
                    line: (line > 0).then_some(line),
                    reason: "not yet supported: correlation rule".to_owned(),
                },
            )),
            Ok(Document::Filter { id, line }) => Err((
                id,
                RuleError {
                    line: (line > 0).then_some(line),
                    reason: "not yet supported: filter rule".to_owned(),
                },
            )),
            Err(error) => Err((parse::document_id(doc), error)),
        })
        .collect()
}

/// Compiles a parsed rule; `placeholders` resolves `%name%` for the `expand` modifier.
pub fn compile_rule(
    rule: SigmaRule,
    path: &str,
    placeholders: &HashMap<String, Vec<String>>,
) -> Result<CompiledRule, RuleError> {
    let mut searches = Vec::with_capacity(rule.searches.len());
    for named in &rule.searches {
        let maps = match &named.search {
            Search::Maps(maps) => maps
                .iter()
                .map(|items| {
                    items
                        .iter()
                        .map(|item| {
                            modifier::compile_item(item, placeholders).map_err(|reason| RuleError {
                                line: (item.line > 0).then_some(item.line),
                                reason: format!("search `{}`, {reason}", named.name),
                            })
                        })
                        .collect::<Result<Vec<_>, _>>()
                })
                .collect::<Result<Vec<_>, _>>()?,
            Search::Keywords(values) => {
                let item = DetectionItem {
                    field: None,
                    modifiers: Vec::new(),
                    values: values.clone(),
                    line: named.line,
                };
                vec![vec![modifier::compile_item(&item, placeholders).map_err(
                    |reason| RuleError {
                        line: (named.line > 0).then_some(named.line),
                        reason: format!("search `{}`, {reason}", named.name),
                    },
                )?]]
            }
        };
        searches.push(CompiledSearch {
            name: named.name.clone(),
            maps,
        });
    }
    let condition_error = |reason: String| RuleError {
        line: (rule.condition_line > 0).then_some(rule.condition_line),
        reason,
    };
    let mut conditions = Vec::with_capacity(rule.conditions.len());
    for text in &rule.conditions {
        let parsed = parse_condition(text).map_err(condition_error)?;
        conditions.push(resolve_condition(&parsed, &searches).map_err(condition_error)?);
    }
    let condition = match conditions.len() {
        0 => return Err(condition_error("condition: empty list".to_owned())),
        1 => conditions.remove(0),
        _ => CompiledCondition::Or(conditions),
    };
    Ok(CompiledRule {
        rule,
        path: path.to_owned(),
        searches,
        condition,
    })
}

fn resolve_condition(
    condition: &Condition,
    searches: &[CompiledSearch],
) -> Result<CompiledCondition, String> {
    let matching = |pattern: &Option<String>| -> Result<Vec<CompiledCondition>, String> {
        let found: Vec<CompiledCondition> = searches
            .iter()
            .enumerate()
            .filter(|(_, s)| match pattern {
                None => !s.name.starts_with('_'),
                Some(p) => identifier_matches(p, &s.name),
            })
            .map(|(i, _)| CompiledCondition::Search(i))
            .collect();
        if found.is_empty() {
            return Err(match pattern {
                None => "condition: `them` matches no search identifier".to_owned(),
                Some(p) => format!("condition: pattern `{p}` matches no search identifier"),
            });
        }
        Ok(found)
    };
    Ok(match condition {
        Condition::Search(name) => searches
            .iter()
            .position(|s| &s.name == name)
            .map(CompiledCondition::Search)
            .ok_or_else(|| format!("condition: undefined search identifier `{name}`"))?,
        Condition::Not(inner) => {
            CompiledCondition::Not(Box::new(resolve_condition(inner, searches)?))
        }
        Condition::And(terms) => CompiledCondition::And(
            terms
                .iter()
                .map(|t| resolve_condition(t, searches))
                .collect::<Result<_, _>>()?,
        ),
        Condition::Or(terms) => CompiledCondition::Or(
            terms
                .iter()
                .map(|t| resolve_condition(t, searches))
                .collect::<Result<_, _>>()?,
        ),
        Condition::AnyOf(pattern) => CompiledCondition::Or(matching(pattern)?),
        Condition::AllOf(pattern) => CompiledCondition::And(matching(pattern)?),
    })
}

/// Loads every rule of every `(path, text)` file. Each document that cannot be supported is
/// listed in `rejected` with its reason; the others are compiled.
pub fn load_rules(
    files: &[(String, String)],
    placeholders: &HashMap<String, Vec<String>>,
) -> RuleSet {
    let mut set = RuleSet::default();
    for (path, text) in files {
        for parsed in parse_rules(text) {
            let outcome = parsed.and_then(|rule| {
                let id = rule.id.clone();
                compile_rule(rule, path, placeholders).map_err(|error| (id, error))
            });
            match outcome {
                Ok(rule) => set.rules.push(rule),
                Err((rule_id, error)) => set.rejected.push(Rejection {
                    path: path.clone(),
                    line: error.line,
                    rule_id,
                    reason: error.reason,
                }),
            }
        }
    }
    set
}

#[cfg(test)]
pub(crate) fn base64_for_tests(bytes: &[u8]) -> String {
    modifier::base64_encode(bytes)
}

#[cfg(test)]
pub(crate) fn base64_offsets_for_tests(bytes: &[u8]) -> Vec<String> {
    modifier::base64_offsets(bytes)
}
