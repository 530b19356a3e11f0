//! Sigma v2.1 detection rules: parsing (`parse`, `condition`), value modifiers (`modifier`,
//! `pattern`), compilation and evaluation (`eval`), filters (`filter`), and the loader that
//! turns rule files into a `RuleSet` (detection rules, the correlation rules that reference
//! them, and the filters that tune them). `load_rules` resolves `expand` placeholders from one
//! map; `load_rules_per_client` compiles a rule that uses them once per client that gives them
//! values (`clients`). Invariant: a rule is either compiled with every feature it uses
//! supported, or rejected with a reason; nothing is silently dropped — a rule that runs for
//! some clients only says so in a `Notice`.

mod clients;
mod condition;
mod engine;
mod eval;
mod filter;
mod index;
mod modifier;
mod parse;
mod pattern;
use crate::yaml;

#[cfg(test)]
mod filter_tests;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

pub use condition::{Condition, parse_condition};
pub use engine::{EngineStats, SigmaEngine};
pub use eval::{CompiledRule, DefaultFieldSource, FieldSource};
pub use filter::CompiledFilter;
pub use parse::{
    DetectionItem, FilterTarget, LogSource, NamedSearch, RuleError, Search, SigmaFilter,
    SigmaLevel, SigmaRule, SigmaValue,
};

use crate::rule::correlation::CorrelationRule;
use crate::rule::logsource::LogsourceMap;
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

/// Something worth knowing about a loaded rule or filter that is not a rejection: the clients
/// it does not run for, a filter directory of no known client…
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub path: String,
    pub line: Option<usize>,
    pub rule_id: Option<String>,
    pub message: String,
}

/// A rule that uses `expand` placeholders, compiled once per client that gives a value to each
/// of them: each copy applies to the events of its client only.
#[derive(Debug, Clone)]
pub struct PerClientRule {
    /// The rule as written, placeholders unresolved.
    pub rule: SigmaRule,
    pub path: String,
    /// The placeholder names the rule uses, in order of first use.
    pub placeholders: Vec<String>,
    /// `(client id, the rule compiled with that client's values)`, in client order.
    pub variants: Vec<(String, CompiledRule)>,
}

/// Placeholder values (`%name%` → values) per client id.
pub type ClientPlaceholders = BTreeMap<String, HashMap<String, Vec<String>>>;

/// A file of filter documents and the client it is scoped to (`None`: every client).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterFile {
    pub path: String,
    pub text: String,
    pub client: Option<String>,
}

/// The rules loaded from a set of files, and every rule that could not be.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    /// Rules that apply to every client's events.
    pub rules: Vec<CompiledRule>,
    /// Rules with placeholders, compiled per client (`load_rules_per_client` only).
    pub per_client: Vec<PerClientRule>,
    /// Correlation rules whose every reference resolved to a loaded rule or correlation.
    pub correlations: Vec<CorrelationRule>,
    /// Filters whose every reference resolved to a loaded rule, in file order (a filter with
    /// placeholders and no client scope comes once per client that gives them values).
    pub filters: Vec<CompiledFilter>,
    pub rejected: Vec<Rejection>,
    pub notices: Vec<Notice>,
    /// How events are given their logsource; the built-in map when `None` (see
    /// `DetectionSet::new`).
    pub logsource_map: Option<Arc<LogsourceMap>>,
}

type ParseFailure = (Option<String>, RuleError);
type ParseOutcome<T> = Result<T, ParseFailure>;

/// One non-empty YAML document of a rule file, parsed.
enum ParsedDocument {
    Rule(Result<SigmaRule, ParseFailure>),
    Correlation(Result<CorrelationRule, ParseFailure>),
    Filter(Result<SigmaFilter, ParseFailure>),
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
            Ok(Document::Filter(filter)) => ParsedDocument::Filter(Ok(*filter)),
            Err(error) if doc.get("correlation").is_some() => {
                ParsedDocument::Correlation(Err((parse::document_id(doc), error)))
            }
            Err(error) if doc.get("filter").is_some() => {
                ParsedDocument::Filter(Err((parse::document_id(doc), error)))
            }
            Err(error) => ParsedDocument::Rule(Err((parse::document_id(doc), error))),
        })
        .collect()
}

fn filter_not_a_rule(filter: SigmaFilter) -> ParseFailure {
    (
        filter.id,
        RuleError {
            line: (filter.line > 0).then_some(filter.line),
            reason: "filter document: `load_rules` loads it with the rules it tunes".to_owned(),
        },
    )
}

/// Parses every document of a Sigma YAML text into rules. Correlation and filter documents are
/// reported as errors here (with their own parse error when they have one):
/// `parse_rules_and_correlations` and `load_rules` return correlations, `load_rules` filters.
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
            ParsedDocument::Filter(Ok(filter)) => Err(filter_not_a_rule(filter)),
            ParsedDocument::Correlation(Err(failure)) | ParsedDocument::Filter(Err(failure)) => {
                Err(failure)
            }
        })
        .collect()
}

/// Parses every document of a Sigma YAML text: detection rules (and filter documents, reported
/// as errors: `load_rules` loads them) in the first list, correlation rules in the second.
/// References between them are not checked here (`load_rules` does).
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
            ParsedDocument::Filter(Ok(filter)) => rules.push(Err(filter_not_a_rule(filter))),
            ParsedDocument::Filter(Err(failure)) => rules.push(Err(failure)),
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

/// Loads every rule of every `(path, text)` file, `expand` placeholders resolved from
/// `placeholders`. Each document that cannot be supported is listed in `rejected` with its
/// reason; the others are compiled. Correlations may reference rules and correlations of any
/// file; a correlation whose reference is unknown, rejected, or part of a cycle is rejected
/// (these rejections come after the per-document ones). Filter documents among the rules tune
/// every client's events; a filter whose reference is unknown or rejected is rejected (after
/// the correlations).
pub fn load_rules(
    files: &[(String, String)],
    placeholders: &HashMap<String, Vec<String>>,
) -> RuleSet {
    load(files, &[], Placeholders::Global(placeholders))
}

/// `load_rules` for an estate of clients: a rule that uses `expand` placeholders is compiled
/// once per client of `clients` that gives a value to each of them, and that copy applies to
/// that client's events only; the clients without values are named once in a `Notice` (the
/// rule does not run for them). Rules without placeholders are compiled once, for everyone.
/// `filter_files` hold filter documents only, each file scoped to a client or to all of them.
pub fn load_rules_per_client(
    files: &[(String, String)],
    filter_files: &[FilterFile],
    clients: &ClientPlaceholders,
) -> RuleSet {
    load(files, filter_files, Placeholders::PerClient(clients))
}

/// Where `expand` placeholders take their values from.
#[derive(Clone, Copy)]
enum Placeholders<'a> {
    /// One map for every rule: a rule that uses a placeholder it lacks is rejected.
    Global(&'a HashMap<String, Vec<String>>),
    /// Per client.
    PerClient(&'a ClientPlaceholders),
}

/// A filter document waiting for the rules to be loaded (its references are checked against
/// them), with its file and scope.
struct PendingFilter {
    filter: SigmaFilter,
    path: String,
    client: Option<String>,
}

fn load(
    files: &[(String, String)],
    filter_files: &[FilterFile],
    placeholders: Placeholders<'_>,
) -> RuleSet {
    let mut set = RuleSet::default();
    let mut correlations = Vec::new();
    let mut filters = Vec::new();
    let reject = |set: &mut RuleSet, path: &str, (rule_id, error): ParseFailure| {
        set.rejected.push(Rejection {
            path: path.to_owned(),
            line: error.line,
            rule_id,
            reason: error.reason,
        });
    };
    for ((path, _), parsed_file) in files.iter().zip(parse_files(files)) {
        for parsed in parsed_file {
            match parsed {
                ParsedDocument::Rule(Ok(rule)) => add_rule(&mut set, rule, path, placeholders),
                ParsedDocument::Correlation(Ok(mut correlation)) => {
                    correlation.path = path.clone();
                    correlations.push(correlation);
                }
                ParsedDocument::Filter(Ok(filter)) => filters.push(PendingFilter {
                    filter,
                    path: path.clone(),
                    client: None,
                }),
                ParsedDocument::Rule(Err(failure))
                | ParsedDocument::Correlation(Err(failure))
                | ParsedDocument::Filter(Err(failure)) => reject(&mut set, path, failure),
            }
        }
    }
    for file in filter_files {
        for parsed in parse_text(&file.text) {
            let not_a_filter = |id: Option<String>, line: usize| {
                (
                    id,
                    RuleError {
                        line: (line > 0).then_some(line),
                        reason: "not a filter: a filter directory holds filter documents only"
                            .to_owned(),
                    },
                )
            };
            match parsed {
                ParsedDocument::Filter(Ok(filter)) => filters.push(PendingFilter {
                    filter,
                    path: file.path.clone(),
                    client: file.client.clone(),
                }),
                ParsedDocument::Rule(Ok(rule)) => {
                    reject(&mut set, &file.path, not_a_filter(rule.id, rule.line));
                }
                ParsedDocument::Correlation(Ok(correlation)) => reject(
                    &mut set,
                    &file.path,
                    not_a_filter(correlation.id, correlation.line),
                ),
                ParsedDocument::Rule(Err(failure))
                | ParsedDocument::Correlation(Err(failure))
                | ParsedDocument::Filter(Err(failure)) => reject(&mut set, &file.path, failure),
            }
        }
    }
    let (accepted, rejected) = resolve_correlations(&set, correlations);
    set.correlations = accepted;
    set.rejected.extend(rejected);
    for pending in filters {
        add_filter(&mut set, pending, placeholders);
    }
    set
}

/// Rule files below this many are parsed on the calling thread.
const PARALLEL_FILES: usize = 64;

/// The documents of every file, in file order. YAML parsing is most of loading a large rule
/// set (the SigmaHQ corpus: about 3,700 files), so the files are parsed on every core, each
/// thread a contiguous share of them.
fn parse_files(files: &[(String, String)]) -> Vec<Vec<ParsedDocument>> {
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    if threads < 2 || files.len() < PARALLEL_FILES {
        return files.iter().map(|(_, text)| parse_text(text)).collect();
    }
    let share = files.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let parts: Vec<_> = files
            .chunks(share)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|(_, text)| parse_text(text))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        parts
            .into_iter()
            .flat_map(|part| {
                part.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}

/// Compiles one parsed rule into `set`: once for everyone, or once per client.
fn add_rule(set: &mut RuleSet, rule: SigmaRule, path: &str, placeholders: Placeholders<'_>) {
    let names = clients::placeholders_of(&rule);
    let clients = match placeholders {
        Placeholders::PerClient(clients) if !names.is_empty() => clients,
        Placeholders::PerClient(_) => {
            return compile_into(set, rule, path, &HashMap::new());
        }
        Placeholders::Global(map) => return compile_into(set, rule, path, map),
    };
    let outcome = clients::compile_per_client(&rule, path, &names, clients, "rule");
    set.rejected.extend(outcome.rejected);
    set.notices.extend(outcome.notice);
    if outcome.loaded {
        set.per_client.push(PerClientRule {
            rule,
            path: path.to_owned(),
            placeholders: names,
            variants: outcome.variants,
        });
    }
}

fn compile_into(
    set: &mut RuleSet,
    rule: SigmaRule,
    path: &str,
    placeholders: &HashMap<String, Vec<String>>,
) {
    let id = rule.id.clone();
    match compile_rule(rule, path, placeholders) {
        Ok(compiled) => set.rules.push(compiled),
        Err(error) => set.rejected.push(Rejection {
            path: path.to_owned(),
            line: error.line,
            rule_id: id,
            reason: error.reason,
        }),
    }
}

/// Checks a filter's references against the loaded rules, then compiles it for its scope:
/// one client (with that client's placeholder values), or every client — once for all, or,
/// when it uses placeholders, once per client that gives them values.
fn add_filter(set: &mut RuleSet, pending: PendingFilter, placeholders: Placeholders<'_>) {
    let PendingFilter {
        filter,
        path,
        client,
    } = pending;
    let rejection = |reason: String| Rejection {
        path: path.clone(),
        line: (filter.line > 0).then_some(filter.line),
        rule_id: filter.id.clone(),
        reason,
    };
    if let FilterTarget::Rules(references) = &filter.target
        && let Some(problem) = references
            .iter()
            .find_map(|reference| filter_reference_problem(set, reference))
    {
        set.rejected.push(rejection(problem));
        return;
    }
    let rule = filter.as_rule();
    let names = clients::placeholders_of(&rule);
    let empty = HashMap::new();
    // A client's own filter is compiled for that client alone, like a rule for one client.
    let own: ClientPlaceholders;
    let placeholders = match (&client, placeholders) {
        (Some(client), Placeholders::PerClient(clients)) => {
            let values = clients.get(client).cloned().unwrap_or_default();
            own = ClientPlaceholders::from([(client.clone(), values)]);
            Placeholders::PerClient(&own)
        }
        (_, placeholders) => placeholders,
    };
    let compiled = match placeholders {
        Placeholders::PerClient(clients) if !names.is_empty() => {
            let outcome = clients::compile_per_client(&rule, &path, &names, clients, "filter");
            set.rejected.extend(outcome.rejected);
            set.notices.extend(outcome.notice);
            Ok(outcome
                .variants
                .into_iter()
                .map(|(client, compiled)| (Some(client), compiled))
                .collect())
        }
        Placeholders::PerClient(_) => {
            compile_rule(rule, &path, &empty).map(|compiled| vec![(client.clone(), compiled)])
        }
        Placeholders::Global(map) => {
            compile_rule(rule, &path, map).map(|compiled| vec![(client.clone(), compiled)])
        }
    };
    let compiled = match compiled {
        Ok(compiled) => compiled,
        Err(error) => {
            let mut rejected = rejection(format!("filter: {}", error.reason));
            rejected.line = error.line.or(rejected.line);
            set.rejected.push(rejected);
            return;
        }
    };
    set.filters.extend(
        compiled
            .into_iter()
            .map(|(client, condition)| CompiledFilter {
                client,
                target: filter.target.clone(),
                condition,
            }),
    );
}

/// Why a filter cannot reference `reference`, if it cannot.
fn filter_reference_problem(set: &RuleSet, reference: &str) -> Option<String> {
    if is_loaded_rule(set, reference) {
        return None;
    }
    if set.correlations.iter().any(|c| c.is_called(reference)) {
        return Some(format!(
            "filter: `{reference}` is a correlation rule; filters tune detection rules"
        ));
    }
    let was_rejected = set
        .rejected
        .iter()
        .any(|r| r.rule_id.as_deref() == Some(reference));
    Some(if was_rejected {
        format!("filter: references rule `{reference}`, which was rejected")
    } else {
        format!("filter: references unknown rule `{reference}`")
    })
}

/// Whether a loaded detection rule (for every client or per client) has this id or name.
fn is_loaded_rule(set: &RuleSet, reference: &str) -> bool {
    let called = |rule: &SigmaRule| {
        rule.id.as_deref() == Some(reference) || rule.name.as_deref() == Some(reference)
    };
    set.rules.iter().any(|compiled| called(&compiled.rule))
        || set
            .per_client
            .iter()
            .any(|per_client| called(&per_client.rule))
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
    let is_rule = |reference: &str| is_loaded_rule(set, reference);
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
    /// The rules loaded: for every client, per client (counted once), and correlations.
    pub fn loaded(&self) -> usize {
        self.rules.len() + self.per_client.len() + self.correlations.len()
    }

    /// The filter documents loaded (a filter compiled for several clients counts once).
    pub fn filter_count(&self) -> usize {
        let mut seen: Vec<(&str, usize)> = self
            .filters
            .iter()
            .map(|filter| (filter.path(), filter.line()))
            .collect();
        seen.sort_unstable();
        seen.dedup();
        seen.len()
    }

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
