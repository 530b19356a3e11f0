//! Silences and inhibition, as Alertmanager users know them.
//!
//! A matcher is `name=value`, `name!=value`, `name=~regex` or `name!~regex` (the regex anchored
//! to the whole value, as Alertmanager's are); a missing label matches as the empty string. A
//! silence mutes every alert all its matchers match, between its start and end, and carries
//! its author and comment. An inhibition rule mutes the alerts its target matchers match
//! while an alert its source matchers match is firing, if both have the same values for the
//! `equal` labels (a missing label on both sides counts as equal, as in Alertmanager).
//! Muting is for the notifications of *firing* alerts only: a resolution is always told.

use std::collections::BTreeMap;

use regex::Regex;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MatchOp {
    Equal,
    NotEqual,
    Regex,
    NotRegex,
}

/// One label matcher.
#[derive(Debug, Clone)]
pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
    regex: Option<Regex>,
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Matcher) -> bool {
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

impl Matcher {
    /// Parses `name=value`, `name!=value`, `name=~re`, `name!~re` (value optionally quoted).
    pub fn parse(text: &str) -> Result<Matcher, String> {
        let text = text.trim();
        let (position, op, width) = ["!=", "=~", "!~", "="]
            .iter()
            .filter_map(|token| text.find(token).map(|p| (p, *token)))
            .min_by_key(|(p, token)| (*p, std::cmp::Reverse(token.len())))
            .map(|(p, token)| {
                let op = match token {
                    "!=" => MatchOp::NotEqual,
                    "=~" => MatchOp::Regex,
                    "!~" => MatchOp::NotRegex,
                    _ => MatchOp::Equal,
                };
                (p, op, token.len())
            })
            .ok_or_else(|| format!("matcher `{text}`: expected name=value, !=, =~ or !~"))?;
        let name = text[..position].trim();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("matcher `{text}`: `{name}` is not a label name"));
        }
        let raw = text[position + width..].trim();
        let value = raw
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(raw)
            .to_owned();
        let regex = match op {
            MatchOp::Regex | MatchOp::NotRegex => Some(
                Regex::new(&format!("^(?:{value})$"))
                    .map_err(|e| format!("matcher `{text}`: bad regex: {e}"))?,
            ),
            _ => None,
        };
        Ok(Matcher {
            name: name.to_owned(),
            op,
            value,
            regex,
        })
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(&self.name).map_or("", String::as_str);
        match (self.op, &self.regex) {
            (MatchOp::Equal, _) => value == self.value,
            (MatchOp::NotEqual, _) => value != self.value,
            (MatchOp::Regex, Some(re)) => re.is_match(value),
            (MatchOp::NotRegex, Some(re)) => !re.is_match(value),
            (MatchOp::Regex | MatchOp::NotRegex, None) => false,
        }
    }
}

fn all_match(matchers: &[Matcher], labels: &BTreeMap<String, String>) -> bool {
    matchers.iter().all(|m| m.matches(labels))
}

#[derive(Debug, Clone, PartialEq)]
pub struct Silence {
    pub id: String,
    pub matchers: Vec<Matcher>,
    pub starts_at_ms: i64,
    pub ends_at_ms: i64,
    pub created_by: String,
    pub comment: String,
}

impl Silence {
    /// A silence needs at least one matcher (one that matches everything is refused, as
    /// Alertmanager refuses it), an author, a comment, and an end after its start.
    pub fn validate(&self) -> Result<(), String> {
        if self.matchers.is_empty() {
            return Err("a silence needs at least one matcher".into());
        }
        if self.matchers.iter().all(|m| m.matches(&BTreeMap::new())) {
            return Err("these matchers match every alert: name at least one label value".into());
        }
        if self.created_by.trim().is_empty() {
            return Err("createdBy is required".into());
        }
        if self.comment.trim().is_empty() {
            return Err("comment is required".into());
        }
        if self.ends_at_ms <= self.starts_at_ms {
            return Err("endsAt must be after startsAt".into());
        }
        Ok(())
    }

    pub fn is_active(&self, now_ms: i64) -> bool {
        self.starts_at_ms <= now_ms && now_ms < self.ends_at_ms
    }

    pub fn mutes(&self, labels: &BTreeMap<String, String>, now_ms: i64) -> bool {
        self.is_active(now_ms) && all_match(&self.matchers, labels)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct InhibitRule {
    pub source: Vec<Matcher>,
    pub target: Vec<Matcher>,
    pub equal: Vec<String>,
}

impl InhibitRule {
    /// Whether `target` is muted by one of the `firing` alerts (an alert never inhibits
    /// itself).
    pub fn inhibits(
        &self,
        target: &BTreeMap<String, String>,
        firing: &[&BTreeMap<String, String>],
    ) -> bool {
        all_match(&self.target, target)
            && firing.iter().any(|source| {
                !std::ptr::eq(*source, target)
                    && *source != target
                    && all_match(&self.source, source)
                    && self
                        .equal
                        .iter()
                        .all(|label| source.get(label) == target.get(label))
            })
    }
}

/// Why an alert's notification is held back, if it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Muted {
    Silenced { silence: String },
    Inhibited,
}

/// Whether a firing alert's notification is held back at `now`.
pub fn muted(
    labels: &BTreeMap<String, String>,
    silences: &[Silence],
    inhibit_rules: &[InhibitRule],
    firing: &[&BTreeMap<String, String>],
    now_ms: i64,
) -> Option<Muted> {
    if let Some(silence) = silences.iter().find(|s| s.mutes(labels, now_ms)) {
        return Some(Muted::Silenced {
            silence: silence.id.clone(),
        });
    }
    inhibit_rules
        .iter()
        .any(|rule| rule.inhibits(labels, firing))
        .then_some(Muted::Inhibited)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn matchers_as_alertmanager_writes_them() {
        let alert = labels(&[
            ("alertname", "HostDown"),
            ("client", "acme"),
            ("site", "lyon"),
        ]);
        for (text, expected) in [
            ("client=acme", true),
            ("client=\"acme\"", true),
            ("client!=acme", false),
            ("site=~ly.*", true),
            ("site=~yon", false),
            ("site!~paris|nantes", true),
            ("team=", true),
            ("team!=", false),
        ] {
            assert_eq!(
                Matcher::parse(text).unwrap().matches(&alert),
                expected,
                "{text}"
            );
        }
        for bad in ["client", "=acme", "cli ent=a", "site=~("] {
            assert!(Matcher::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_silence_mutes_while_active_and_must_say_who_and_why() {
        let silence = Silence {
            id: "s1".into(),
            matchers: vec![
                Matcher::parse("client=acme").unwrap(),
                Matcher::parse("site=lyon").unwrap(),
            ],
            starts_at_ms: 100,
            ends_at_ms: 200,
            created_by: "ops@msp".into(),
            comment: "Lyon plant maintenance".into(),
        };
        assert!(silence.validate().is_ok());
        let alert = labels(&[("client", "acme"), ("site", "lyon")]);
        assert!(!silence.mutes(&alert, 99));
        assert!(silence.mutes(&alert, 150));
        assert!(!silence.mutes(&alert, 200));
        assert!(!silence.mutes(&labels(&[("client", "acme"), ("site", "paris")]), 150));
        let everything = Silence {
            matchers: vec![Matcher::parse("site=~.*").unwrap()],
            ..silence.clone()
        };
        assert!(everything.validate().unwrap_err().contains("every alert"));
        let anonymous = Silence {
            created_by: " ".into(),
            ..silence
        };
        assert!(anonymous.validate().unwrap_err().contains("createdBy"));
    }

    #[test]
    fn a_firing_router_inhibits_the_hosts_behind_it_on_the_same_site_only() {
        let rule = InhibitRule {
            source: vec![Matcher::parse("alertname=RouterDown").unwrap()],
            target: vec![Matcher::parse("alertname=HostDown").unwrap()],
            equal: vec!["client".into(), "site".into()],
        };
        let router = labels(&[
            ("alertname", "RouterDown"),
            ("client", "acme"),
            ("site", "lyon"),
        ]);
        let host = labels(&[
            ("alertname", "HostDown"),
            ("client", "acme"),
            ("site", "lyon"),
        ]);
        let elsewhere = labels(&[
            ("alertname", "HostDown"),
            ("client", "acme"),
            ("site", "paris"),
        ]);
        let other_client = labels(&[
            ("alertname", "HostDown"),
            ("client", "bellevue"),
            ("site", "lyon"),
        ]);
        let firing = [&router, &host, &elsewhere];
        let rules = std::slice::from_ref(&rule);
        assert_eq!(muted(&host, &[], rules, &firing, 0), Some(Muted::Inhibited));
        assert_eq!(muted(&elsewhere, &[], rules, &firing, 0), None);
        assert_eq!(muted(&other_client, &[], rules, &firing, 0), None);
        assert_eq!(muted(&router, &[], rules, &firing, 0), None);
        // once the router is no longer firing, nothing is inhibited
        assert_eq!(muted(&host, &[], rules, &[&host], 0), None);
    }
}
