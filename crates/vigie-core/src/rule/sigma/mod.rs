//! Sigma v2.1 detection rules: parsing (`parse`, `condition`), value modifiers (`modifier`,
//! `pattern`), compilation and evaluation (`eval`), and the loader that turns rule files into a
//! `RuleSet` (detection rules and the correlation rules that reference them). Invariant: a rule
//! is either compiled with every feature it uses supported, or rejected with a reason; nothing is
//! silently dropped.

mod condition;
mod engine;
mod eval;
mod index;
mod modifier;
mod parse;
mod pattern;
mod yaml;

use std::collections::HashMap;

pub use condition::{Condition, parse_condition};
pub use engine::{EngineStats, SigmaEngine};
pub use eval::{CompiledRule, DefaultFieldSource, FieldSource};
pub use parse::{
    DetectionItem, LogSource, NamedSearch, RuleError, Search, SigmaLevel, SigmaRule, SigmaValue,
};

use crate::rule::correlation::CorrelationRule;
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
    /// Correlation rules whose every reference resolved to a loaded rule or correlation.
    pub correlations: Vec<CorrelationRule>,
    pub rejected: Vec<Rejection>,
}

type ParseFailure = (Option<String>, RuleError);
type ParseOutcome<T> = Result<T, ParseFailure>;

/// One non-empty YAML document of a rule file, parsed.
enum ParsedDocument {
    Rule(Result<SigmaRule, ParseFailure>),
    Correlation(Result<CorrelationRule, ParseFailure>),
    Filter(ParseFailure),
}

fn parse_text(text: &str) -> Vec<ParsedDocument> {
    let documents = match yaml::parse_documents(text) {
        Ok(documents) => documents,
        Err((line, reason)) => {
            return vec![ParsedDocument::Rule(Err((
                None,
                RuleError { line, reason },
            )))];
        }
    };
    documents
        .iter()
        .filter(|doc| doc.value != yaml::NodeValue::Null)
        .map(|doc| match parse::parse_document(doc) {
            Ok(Document::Rule(rule)) => ParsedDocument::Rule(Ok(*rule)),
            Ok(Document::Correlation(correlation)) => ParsedDocument::Correlation(Ok(*correlation)),
            Ok(Document::Filter { id, line }) => ParsedDocument::Filter((
                id,
                RuleError {
                    line: (line > 0).then_some(line),
                    reason: "not yet supported: filter rule".to_owned(),
                },
            )),
            Err(error) if doc.get("correlation").is_some() => {
                ParsedDocument::Correlation(Err((parse::document_id(doc), error)))
            }
            Err(error) => ParsedDocument::Rule(Err((parse::document_id(doc), error))),
        })
        .collect()
}

/// Parses every document of a Sigma YAML text into rules. Correlation documents are reported as
/// errors here (with their own parse error when they have one): `parse_rules_and_correlations`
/// and `load_rules` return them. Filters are not yet supported.
pub fn parse_rules(text: &str) -> Vec<Result<SigmaRule, (Option<String>, RuleError)>> {
    parse_text(text)
        .into_iter()
        .map(|parsed| match parsed {
            ParsedDocument::Rule(rule) => rule,
            ParsedDocument::Correlation(Ok(correlation)) => Err((
                correlation.id,
                RuleError {
                    line: (correlation.line > 0).then_some(correlation.line),
                    reason: "correlation rule: use `parse_rules_and_correlations`".to_owned(),
                },
            )),
            ParsedDocument::Correlation(Err(failure)) | ParsedDocument::Filter(failure) => {
                Err(failure)
            }
        })
        .collect()
}

/// Parses every document of a Sigma YAML text: detection rules (and filter documents, reported
/// as not yet supported) in the first list, correlation rules in the second. References between
/// them are not checked here (`load_rules` does).
pub fn parse_rules_and_correlations(
    text: &str,
) -> (
    Vec<ParseOutcome<SigmaRule>>,
    Vec<ParseOutcome<CorrelationRule>>,
) {
    let mut rules = Vec::new();
    let mut correlations = Vec::new();
    for parsed in parse_text(text) {
        match parsed {
            ParsedDocument::Rule(rule) => rules.push(rule),
            ParsedDocument::Correlation(correlation) => correlations.push(correlation),
            ParsedDocument::Filter(failure) => rules.push(Err(failure)),
        }
    }
    (rules, correlations)
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
/// listed in `rejected` with its reason; the others are compiled. Correlations may reference
/// rules and correlations of any file; a correlation whose reference is unknown, rejected, or
/// part of a cycle is rejected (these rejections come after the per-document ones).
pub fn load_rules(
    files: &[(String, String)],
    placeholders: &HashMap<String, Vec<String>>,
) -> RuleSet {
    let mut set = RuleSet::default();
    let mut correlations = Vec::new();
    for (path, text) in files {
        for parsed in parse_text(text) {
            let outcome = match parsed {
                ParsedDocument::Rule(parsed) => parsed.and_then(|rule| {
                    let id = rule.id.clone();
                    compile_rule(rule, path, placeholders)
                        .map(|rule| set.rules.push(rule))
                        .map_err(|error| (id, error))
                }),
                ParsedDocument::Correlation(parsed) => parsed.map(|mut correlation| {
                    correlation.path = path.clone();
                    correlations.push(correlation);
                }),
                ParsedDocument::Filter(failure) => Err(failure),
            };
            if let Err((rule_id, error)) = outcome {
                set.rejected.push(Rejection {
                    path: path.clone(),
                    line: error.line,
                    rule_id,
                    reason: error.reason,
                });
            }
        }
    }
    let (accepted, rejected) = resolve_correlations(&set, correlations);
    set.correlations = accepted;
    set.rejected.extend(rejected);
    set
}

/// Where a correlation's reference points.
#[derive(Clone, Copy)]
enum Target {
    Rule,
    Correlation(usize),
}

/// Checks every reference of every correlation; returns the correlations kept, in input order,
/// and the rejections of the others.
fn resolve_correlations(
    set: &RuleSet,
    correlations: Vec<CorrelationRule>,
) -> (Vec<CorrelationRule>, Vec<Rejection>) {
    let is_rule = |reference: &str| {
        set.rules.iter().any(|compiled| {
            compiled.rule.id.as_deref() == Some(reference)
                || compiled.rule.name.as_deref() == Some(reference)
        })
    };
    // `Ok(targets)` or `Err(reason)` per correlation, before chains are followed.
    let mut resolved: Vec<Result<Vec<Target>, String>> = correlations
        .iter()
        .map(|correlation| {
            correlation
                .rules
                .iter()
                .map(|reference| {
                    if is_rule(reference) {
                        return Ok(Target::Rule);
                    }
                    if let Some(index) = correlations.iter().position(|c| c.is_called(reference)) {
                        return Ok(Target::Correlation(index));
                    }
                    let was_rejected = set
                        .rejected
                        .iter()
                        .any(|r| r.rule_id.as_deref() == Some(reference.as_str()));
                    Err(if was_rejected {
                        format!("correlation: references rule `{reference}`, which was rejected")
                    } else {
                        format!("correlation: references unknown rule `{reference}`")
                    })
                })
                .collect()
        })
        .collect();
    // The spec makes a correlation's `name` unique; ids must be too, or references are ambiguous.
    for (index, correlation) in correlations.iter().enumerate() {
        let taken = [&correlation.id, &correlation.name]
            .into_iter()
            .flatten()
            .find(|reference| {
                is_rule(reference)
                    || correlations[..index]
                        .iter()
                        .any(|earlier| earlier.is_called(reference))
            });
        if let Some(reference) = taken {
            resolved[index] = Err(format!(
                "correlation: id or name `{reference}` is already used by another rule"
            ));
        }
    }
    // Follow chains: a correlation stands only if every correlation it references stands.
    // `state`: 0 unvisited, 1 on the current path, 2 done.
    fn visit(
        index: usize,
        correlations: &[CorrelationRule],
        resolved: &mut [Result<Vec<Target>, String>],
        state: &mut [u8],
    ) {
        if state[index] != 0 {
            return;
        }
        state[index] = 1;
        let targets = match &resolved[index] {
            Ok(targets) => targets.clone(),
            Err(_) => Vec::new(),
        };
        for (position, target) in targets.iter().enumerate() {
            let Target::Correlation(next) = *target else {
                continue;
            };
            let reference = &correlations[index].rules[position];
            let failure = if state[next] == 1 {
                Some(format!(
                    "correlation: chain through `{reference}` forms a cycle"
                ))
            } else {
                visit(next, correlations, resolved, state);
                resolved[next].is_err().then(|| {
                    format!("correlation: references correlation `{reference}`, which was rejected")
                })
            };
            if let Some(reason) = failure {
                if resolved[index].is_ok() {
                    resolved[index] = Err(reason);
                }
                break;
            }
        }
        state[index] = 2;
    }
    let mut state = vec![0u8; correlations.len()];
    for index in 0..correlations.len() {
        visit(index, &correlations, &mut resolved, &mut state);
    }
    let mut accepted = Vec::new();
    let mut rejected = Vec::new();
    for (correlation, outcome) in correlations.into_iter().zip(resolved) {
        match outcome {
            Ok(_) => accepted.push(correlation),
            Err(reason) => rejected.push(Rejection {
                path: correlation.path.clone(),
                line: (correlation.line > 0).then_some(correlation.line),
                rule_id: correlation.id.clone(),
                reason,
            }),
        }
    }
    (accepted, rejected)
}

impl RuleSet {
    /// Whether a matched rule raises an alert by itself: not when a correlation references it
    /// without `generate: true` (the spec's default: only the correlation alerts).
    pub fn alerts_alone(&self, rule: &CompiledRule) -> bool {
        !self.correlations.iter().any(|correlation| {
            !correlation.generate
                && correlation.rules.iter().any(|reference| {
                    rule.rule.id.as_deref() == Some(reference.as_str())
                        || rule.rule.name.as_deref() == Some(reference.as_str())
                })
        })
    }
}

#[cfg(test)]
pub(crate) fn base64_for_tests(bytes: &[u8]) -> String {
    modifier::base64_encode(bytes)
}

#[cfg(test)]
pub(crate) fn base64_offsets_for_tests(bytes: &[u8]) -> Vec<String> {
    modifier::base64_offsets(bytes)
}
