//! Sigma filters (the filters specification, with `rules: any` of 2.2): environment-specific
//! tuning written once for many rules. A filter names the rules it tunes, a logsource and a
//! condition over its own searches; a match of a targeted rule on an event the filter's
//! logsource admits stands only if the filter's condition holds for that event too — the
//! filter's condition is ANDed with the rule's, as pySigma does when it converts them. Write
//! `condition: not selection` to drop what `selection` describes.
//!
//! In Vigie a filter also has a scope: every client, or one client (the files below
//! `--sigma-filters DIR/<client-id>/`), so one client's false positives are tuned away without
//! touching another's detections. Invariant: a filter only ever removes matches; it never adds
//! one, and a filter scoped to a client never changes what another client's events match.

use serde_json::Value;

use super::eval::CompiledRule;
use super::parse::{FilterTarget, LogSource, SigmaRule};

/// A filter ready to apply: its condition compiled as a rule (with the filter's title, id,
/// logsource and file), the rules it targets and the client it is scoped to.
#[derive(Debug, Clone)]
pub struct CompiledFilter {
    /// The client whose events it tunes; `None`: every client's.
    pub client: Option<String>,
    pub target: FilterTarget,
    pub condition: CompiledRule,
}

impl CompiledFilter {
    pub fn title(&self) -> &str {
        &self.condition.rule.title
    }

    pub fn id(&self) -> Option<&str> {
        self.condition.rule.id.as_deref()
    }

    /// The file the filter came from.
    pub fn path(&self) -> &str {
        &self.condition.path
    }

    pub fn line(&self) -> usize {
        self.condition.rule.line
    }

    /// The logsource of the events the filter applies to.
    pub fn logsource(&self) -> &LogSource {
        &self.condition.rule.logsource
    }

    /// Whether the filter tunes `rule` (by its id or name, or every rule for `any`).
    pub fn targets(&self, rule: &SigmaRule) -> bool {
        match &self.target {
            FilterTarget::Any => true,
            FilterTarget::Rules(references) => references.iter().any(|reference| {
                rule.id.as_deref() == Some(reference.as_str())
                    || rule.name.as_deref() == Some(reference.as_str())
            }),
        }
    }

    /// Whether the filter applies to an event of `client` (its scope, not its logsource).
    pub fn applies_to_client(&self, client: Option<&str>) -> bool {
        match &self.client {
            None => true,
            Some(own) => client == Some(own.as_str()),
        }
    }

    /// Whether the filter's condition holds for `document`: when it does not, the match of a
    /// targeted rule on that document is dropped.
    pub fn holds(&self, document: &Value) -> bool {
        self.condition.matches(document)
    }
}
