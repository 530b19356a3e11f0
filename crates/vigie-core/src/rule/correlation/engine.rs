//! The correlation engine: pure state fed with base-rule matches (`observe`), time as a
//! parameter. Each group (correlation, client, group-by values) keeps the entries of the last
//! `timespan`: a sliding window, never fixed buckets.
//!
//! When a correlation fires: a condition that can only become true as entries arrive (every
//! criterion `gt` or `gte`, or any metric type: sum, mean, percentile) is checked each time an
//! entry arrives, over the window of `timespan` ending at that entry. A condition with an upper
//! bound on a count (`lt`, `lte`, `eq`, `neq`, or a range, on `event_count`, `value_count`,
//! `temporal*`) would hold at the first event, so it is checked once, when the window opened by
//! the group's first entry closes (time passes `first + timespan`, seen by `observe` or
//! `advance`). Either way, when it holds one `CorrelationMatch` is emitted and the group's state
//! is dropped: the next match of that group needs a fresh set of entries (at most one match per
//! window per group; 250 events with `gte: 100` fire twice, not 151 times).
//!
//! Time: `now` is the newest time seen; an entry older than `now - timespan` is ignored, as
//! it can no longer share a window with anything held. An event without every group-by field
//! (or without a usable `condition.field`) does not take part in the correlation.
//!
//! Bounds: at most `max_groups` live groups (the group with the oldest last entry is evicted
//! and counted) and `max_events_per_group` entries per group (the oldest are dropped). Groups
//! whose window has passed are pruned as time advances.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};

use serde_json::Value;

use super::rule::{CompareOp, CorrelationKind, CorrelationRule};
use crate::rule::sigma::{DefaultFieldSource, FieldSource, RuleSet, SigmaLevel};

/// Bounds on the engine's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CorrelationLimits {
    /// Live groups across all correlations and clients.
    pub max_groups: usize,
    /// Entries kept in one group's window; beyond, the oldest are dropped.
    pub max_events_per_group: usize,
}

impl Default for CorrelationLimits {
    fn default() -> Self {
        CorrelationLimits {
            max_groups: 100_000,
            max_events_per_group: 10_000,
        }
    }
}

/// A correlation whose condition held for one group.
#[derive(Debug, Clone, PartialEq)]
pub struct CorrelationMatch {
    pub correlation_id: Option<String>,
    pub correlation_name: Option<String>,
    pub title: String,
    pub level: Option<SigmaLevel>,
    pub author: Option<String>,
    pub tags: Vec<String>,
    pub client: String,
    /// `(group-by field, value)` in `group-by` order.
    pub group: Vec<(String, String)>,
    /// The count, sum, mean or percentile that satisfied the condition.
    pub value: f64,
    pub first_ms: i64,
    pub last_ms: i64,
}

/// A correlation with its references resolved to keys.
#[derive(Debug)]
struct Compiled {
    rule: CorrelationRule,
    /// Per group-by entry and per position in `rules`: the event field to read.
    group_fields: Vec<Vec<String>>,
    /// Key of the correlation itself, for chaining.
    key: usize,
    /// Checked when the window closes rather than when an entry arrives.
    at_close: bool,
}

#[derive(Debug, Clone, PartialEq)]
enum Measure {
    None,
    Text(String),
    Number(f64),
}

#[derive(Debug)]
struct Entry {
    time: i64,
    seq: u64,
    /// Position in the correlation's `rules` of the rule that matched.
    position: usize,
    measure: Measure,
}

type GroupKey = (usize, String, Vec<String>);

#[derive(Debug)]
struct Group {
    key: GroupKey,
    /// Sorted by time, then arrival.
    entries: VecDeque<Entry>,
    last_ms: i64,
    /// When the group is pruned (or, checked at close, evaluated).
    expiry_ms: i64,
}

/// An observation waiting to be fed: client, key of the rule or correlation, event, time.
type Pending<'e> = (String, usize, Cow<'e, Value>, i64);

/// Pure correlation state over the base-rule matches it observes.
#[derive(Debug)]
pub struct CorrelationEngine {
    correlations: Vec<Compiled>,
    /// Rule or correlation id/name → key.
    keys: HashMap<String, usize>,
    /// Key → (correlation index, position in its `rules`).
    listeners: HashMap<usize, Vec<(usize, usize)>>,
    limits: CorrelationLimits,
    group_ids: HashMap<GroupKey, u64>,
    groups: HashMap<u64, Group>,
    /// `(last_ms, group)`, to find the stalest group.
    by_last: BTreeSet<(i64, u64)>,
    /// `(expiry_ms, group)`, to prune expired groups.
    by_expiry: BTreeSet<(i64, u64)>,
    next_group: u64,
    next_seq: u64,
    now_ms: i64,
    evicted: u64,
}

fn render(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

impl CorrelationEngine {
    /// Builds the engine from correlations and the `(id, name)` of every base rule, so that a
    /// correlation referring to a rule by name hears matches reported by id and vice versa.
    /// References that resolve to nothing are ignored (`load_rules` rejects them).
    pub fn new(
        correlations: Vec<CorrelationRule>,
        rules: impl IntoIterator<Item = (Option<String>, Option<String>)>,
        limits: CorrelationLimits,
    ) -> Self {
        let mut keys = HashMap::new();
        let mut next_key = 0;
        for (id, name) in rules {
            for reference in [id, name].into_iter().flatten() {
                keys.entry(reference).or_insert(next_key);
            }
            next_key += 1;
        }
        let mut compiled = Vec::with_capacity(correlations.len());
        for rule in correlations {
            let key = next_key;
            next_key += 1;
            for reference in [&rule.id, &rule.name].into_iter().flatten() {
                keys.entry(reference.clone()).or_insert(key);
            }
            let group_fields = rule
                .group_by
                .iter()
                .map(|field| {
                    rule.rules
                        .iter()
                        .map(|reference| {
                            rule.aliases
                                .get(field)
                                .and_then(|by_rule| by_rule.get(reference))
                                .unwrap_or(field)
                                .clone()
                        })
                        .collect()
                })
                .collect();
            let counts = matches!(
                rule.kind,
                CorrelationKind::EventCount
                    | CorrelationKind::ValueCount
                    | CorrelationKind::Temporal
                    | CorrelationKind::TemporalOrdered
            );
            let at_close = counts
                && rule
                    .condition
                    .criteria
                    .iter()
                    .any(|(op, _)| !matches!(op, CompareOp::Gt | CompareOp::Gte));
            compiled.push(Compiled {
                rule,
                group_fields,
                key,
                at_close,
            });
        }
        let mut listeners: HashMap<usize, Vec<(usize, usize)>> = HashMap::new();
        for (index, correlation) in compiled.iter().enumerate() {
            let mut seen = HashSet::new();
            for (position, reference) in correlation.rule.rules.iter().enumerate() {
                if let Some(&key) = keys.get(reference) {
                    // A rule listed twice fills its first position only.
                    if seen.insert(key) {
                        listeners.entry(key).or_default().push((index, position));
                    }
                }
            }
        }
        CorrelationEngine {
            correlations: compiled,
            keys,
            listeners,
            limits,
            group_ids: HashMap::new(),
            groups: HashMap::new(),
            by_last: BTreeSet::new(),
            by_expiry: BTreeSet::new(),
            next_group: 0,
            next_seq: 0,
            now_ms: i64::MIN,
            evicted: 0,
        }
    }

    /// Builds the engine from a loaded rule set.
    pub fn from_rule_set(set: &RuleSet, limits: CorrelationLimits) -> Self {
        Self::new(
            set.correlations.clone(),
            set.rules
                .iter()
                .map(|compiled| (compiled.rule.id.clone(), compiled.rule.name.clone())),
            limits,
        )
    }

    /// Records that base rule `rule_ref` (its id or name) matched `event` of `client` at
    /// `time_ms`, after moving time to `time_ms` (see `advance`); returns the correlations that
    /// fire, chained ones after the correlation that fed them.
    pub fn observe(
        &mut self,
        client: &str,
        rule_ref: &str,
        event: &Value,
        time_ms: i64,
    ) -> Vec<CorrelationMatch> {
        let mut matches = self.advance(time_ms);
        if let Some(&key) = self.keys.get(rule_ref) {
            let mut queue = VecDeque::new();
            queue.push_back((client.to_owned(), key, Cow::Borrowed(event), time_ms));
            self.run_queue(queue, &mut matches);
        }
        matches
    }

    /// Moves time forward (never back) and prunes the groups whose window has passed; returns
    /// the correlations checked at close whose condition held. Call it on a tick so that such
    /// correlations fire without waiting for the next event.
    pub fn advance(&mut self, now_ms: i64) -> Vec<CorrelationMatch> {
        self.now_ms = self.now_ms.max(now_ms);
        let mut matches = Vec::new();
        let mut queue = VecDeque::new();
        while let Some(&(expiry, id)) = self.by_expiry.first() {
            if expiry >= self.now_ms {
                break;
            }
            let group = self
                .remove_group(id)
                .expect("invariant: indexed groups are live");
            let index = group.key.0;
            let correlation = &self.correlations[index];
            if !correlation.at_close {
                continue;
            }
            let Some(value) = measure_window(correlation, &group.entries) else {
                continue;
            };
            if correlation.rule.condition.holds(value) {
                let found = self.build_match(index, group, value);
                self.chain(index, &found, &mut queue);
                matches.push(found);
            }
        }
        self.run_queue(queue, &mut matches);
        matches
    }

    /// Groups currently holding state.
    pub fn live_groups(&self) -> usize {
        self.groups.len()
    }

    /// Groups evicted because `max_groups` was reached.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    fn run_queue(&mut self, mut queue: VecDeque<Pending<'_>>, matches: &mut Vec<CorrelationMatch>) {
        while let Some((client, key, event, time)) = queue.pop_front() {
            let targets = self.listeners.get(&key).cloned().unwrap_or_default();
            for (index, position) in targets {
                if let Some(found) = self.feed(index, position, &client, &event, time) {
                    self.chain(index, &found, &mut queue);
                    matches.push(found);
                }
            }
        }
    }

    /// Queues a match of correlation `index` for the correlations that reference it, as an
    /// event holding the match's group-by values.
    fn chain(&self, index: usize, found: &CorrelationMatch, queue: &mut VecDeque<Pending<'_>>) {
        let key = self.correlations[index].key;
        if !self.listeners.contains_key(&key) {
            return;
        }
        let event: serde_json::Map<String, Value> = found
            .group
            .iter()
            .map(|(field, value)| (field.clone(), Value::String(value.clone())))
            .collect();
        queue.push_back((
            found.client.clone(),
            key,
            Cow::Owned(Value::Object(event)),
            found.last_ms,
        ));
    }

    fn remove_group(&mut self, id: u64) -> Option<Group> {
        let group = self.groups.remove(&id)?;
        self.by_last.remove(&(group.last_ms, id));
        self.by_expiry.remove(&(group.expiry_ms, id));
        self.group_ids.remove(&group.key);
        Some(group)
    }

    fn feed(
        &mut self,
        index: usize,
        position: usize,
        client: &str,
        event: &Value,
        time: i64,
    ) -> Option<CorrelationMatch> {
        let correlation = &self.correlations[index];
        let span = correlation.rule.timespan_ms;
        if time.saturating_add(span) < self.now_ms {
            // Too late to share a window with anything still held.
            return None;
        }
        let values = correlation
            .group_fields
            .iter()
            .map(|fields| {
                DefaultFieldSource
                    .field(event, &fields[position])
                    .map(render)
            })
            .collect::<Option<Vec<String>>>()?;
        let kind = correlation.rule.kind;
        let measure = match &correlation.rule.condition.field {
            Some(field) if kind.needs_field() => {
                let value = DefaultFieldSource.field(event, field)?;
                if kind == CorrelationKind::ValueCount {
                    Measure::Text(render(value))
                } else {
                    Measure::Number(number(value)?)
                }
            }
            _ => Measure::None,
        };
        let at_close = correlation.at_close;
        let key: GroupKey = (index, client.to_owned(), values);
        let id = match self.group_ids.get(&key) {
            Some(&id) => id,
            None => self.create_group(key),
        };
        let seq = self.next_seq;
        self.next_seq += 1;
        let max_events = self.limits.max_events_per_group.max(1);
        let group = self
            .groups
            .get_mut(&id)
            .expect("invariant: group ids point at live groups");
        let at = group.entries.partition_point(|e| e.time <= time);
        group.entries.insert(
            at,
            Entry {
                time,
                seq,
                position,
                measure,
            },
        );
        while group.entries.len() > max_events {
            group.entries.pop_front();
        }
        if !at_close {
            let newest = group.entries.back().map_or(time, |e| e.time);
            while group
                .entries
                .front()
                .is_some_and(|e| e.time < newest.saturating_sub(span))
            {
                group.entries.pop_front();
            }
        }
        let (old_last, old_expiry) = (group.last_ms, group.expiry_ms);
        group.last_ms = old_last.max(time);
        let start = if at_close {
            group.entries.front().map_or(time, |e| e.time)
        } else {
            group.last_ms
        };
        group.expiry_ms = start.saturating_add(span);
        let (new_last, new_expiry) = (group.last_ms, group.expiry_ms);
        self.by_last.remove(&(old_last, id));
        self.by_last.insert((new_last, id));
        self.by_expiry.remove(&(old_expiry, id));
        self.by_expiry.insert((new_expiry, id));
        if at_close {
            return None;
        }
        let correlation = &self.correlations[index];
        let value = measure_window(correlation, &self.groups[&id].entries)?;
        if !correlation.rule.condition.holds(value) {
            return None;
        }
        let group = self
            .remove_group(id)
            .expect("invariant: the group just fed is live");
        Some(self.build_match(index, group, value))
    }

    fn build_match(&self, index: usize, group: Group, value: f64) -> CorrelationMatch {
        let rule = &self.correlations[index].rule;
        CorrelationMatch {
            correlation_id: rule.id.clone(),
            correlation_name: rule.name.clone(),
            title: rule.title.clone(),
            level: rule.level,
            author: rule.author.clone(),
            tags: rule.tags.clone(),
            client: group.key.1,
            group: rule.group_by.iter().cloned().zip(group.key.2).collect(),
            value,
            first_ms: group.entries.front().map_or(group.last_ms, |e| e.time),
            last_ms: group.entries.back().map_or(group.last_ms, |e| e.time),
        }
    }

    fn create_group(&mut self, key: GroupKey) -> u64 {
        if self.groups.len() >= self.limits.max_groups.max(1)
            && let Some(&(_, stalest)) = self.by_last.first()
        {
            self.remove_group(stalest);
            self.evicted += 1;
        }
        let id = self.next_group;
        self.next_group += 1;
        // A new group has no time yet; `feed` sets it right after.
        self.by_last.insert((i64::MIN, id));
        self.by_expiry.insert((i64::MIN, id));
        self.group_ids.insert(key.clone(), id);
        self.groups.insert(
            id,
            Group {
                key,
                entries: VecDeque::new(),
                last_ms: i64::MIN,
                expiry_ms: i64::MIN,
            },
        );
        id
    }
}

/// The count, sum, mean or percentile of a window, as the correlation's type defines it.
fn measure_window(correlation: &Compiled, entries: &VecDeque<Entry>) -> Option<f64> {
    let numbers = || {
        entries.iter().filter_map(|e| match e.measure {
            Measure::Number(n) => Some(n),
            _ => None,
        })
    };
    Some(match correlation.rule.kind {
        CorrelationKind::EventCount => entries.len() as f64,
        CorrelationKind::ValueCount => entries
            .iter()
            .filter_map(|e| match &e.measure {
                Measure::Text(t) => Some(t.as_str()),
                _ => None,
            })
            .collect::<HashSet<_>>()
            .len() as f64,
        CorrelationKind::Temporal => entries
            .iter()
            .map(|e| e.position)
            .collect::<HashSet<_>>()
            .len() as f64,
        CorrelationKind::TemporalOrdered => longest_ordered_prefix(entries) as f64,
        CorrelationKind::ValueSum => numbers().sum(),
        CorrelationKind::ValueAvg => {
            let count = numbers().count();
            if count == 0 {
                return None;
            }
            numbers().sum::<f64>() / count as f64
        }
        CorrelationKind::ValuePercentile => {
            let mut sorted: Vec<f64> = numbers().collect();
            if sorted.is_empty() {
                return None;
            }
            sorted.sort_by(f64::total_cmp);
            let percentile = correlation.rule.condition.percentile.unwrap_or(50.0);
            // Nearest rank: the smallest value with at least `percentile`% of values at or below.
            let rank = (percentile / 100.0 * sorted.len() as f64).ceil() as usize;
            sorted[rank.clamp(1, sorted.len()) - 1]
        }
    })
}

/// How many of the correlation's rules, from the first, matched in the listed order within the
/// window (entries are sorted by time, ties by arrival).
fn longest_ordered_prefix(entries: &VecDeque<Entry>) -> usize {
    let mut best = 0;
    for (start, entry) in entries.iter().enumerate() {
        if entry.position != 0 {
            continue;
        }
        let mut next = 1;
        let mut last_seq_time = (entry.time, entry.seq);
        for later in entries.iter().skip(start + 1) {
            if later.position == next && (later.time, later.seq) > last_seq_time {
                next += 1;
                last_seq_time = (later.time, later.seq);
            }
        }
        best = best.max(next);
    }
    best
}
