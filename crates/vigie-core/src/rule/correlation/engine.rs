//! The correlation engine: pure state fed with base-rule matches (`observe`), time as a
//! parameter. Each group (correlation, client, group-by values) keeps the entries of the last
//! `timespan`: a sliding window, never fixed buckets.
//!
//! When a correlation fires depends on its condition (`Check`):
//!
//! - A condition that can only become true as entries arrive (every criterion `gt` or `gte`, or
//!   any metric type: sum, mean, percentile) is checked each time an entry arrives, over the
//!   window of `timespan` ending at that entry.
//! - An absence: an `event_count` whose every criterion is an upper bound (`lt`, `lte`, or
//!   `eq: 0`), such as `lt: 1` for a sensor gone silent. It can only come to hold by the passing
//!   of time, so it is checked by `advance` (the pipeline's tick), never when an event arrives,
//!   over the window `(now - timespan, now]` of the tick's `now`. A group becomes known with its
//!   first event and is not judged before it has been known for a full `timespan`, so `lt: 1`
//!   fires once `timespan` has passed since the group's last event. It fires once; the group is
//!   then disarmed until the condition stops holding, which only an arriving event can do: for
//!   `lt: 1` any new event re-arms it (a sensor that comes back and goes silent again fires
//!   again), for `lt: 5` five events within one `timespan`. `lt: 5` thus means "the count in
//!   the sliding window dropped under 5", checked on ticks, once per drop. A disarmed group
//!   whose window has emptied is forgotten (its next event makes it known anew).
//! - Any other upper bound on a count (`neq`, `eq` above 0, a range, or an upper bound on
//!   `value_count` or `temporal*`) would hold at the first event, so it is checked once, when
//!   the window opened by the group's first entry closes (time passes `first + timespan`, seen
//!   by `observe` or `advance`).
//!
//! Except for an absence, when the condition holds one `CorrelationMatch` is emitted and the
//! group's state is dropped: the next match of that group needs a fresh set of entries (at most
//! one match per window per group; 250 events with `gte: 100` fire twice, not 151 times).
//!
//! Time: `now` is the newest time seen; an entry older than `now - timespan` is ignored, as
//! it can no longer share a window with anything held. Absences go by the newest time given to
//! `advance` alone, so that one event stamped in the future cannot make every sensor look
//! silent. An event without every group-by field (or without a usable `condition.field`) does
//! not take part in the correlation.
//!
//! Bounds: at most `max_groups` live groups (the group with the oldest last entry is evicted
//! and counted; an evicted absence group is forgotten and does not fire) and
//! `max_events_per_group` entries per group (the oldest are dropped; an absence keeps only the
//! newest entries its bound needs: one for `lt: 1`). Groups whose window has passed are pruned
//! as time advances.

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
    /// The first and last entries of the window that satisfied the condition; for an absence,
    /// the group's last event and the tick that found its window low.
    pub first_ms: i64,
    pub last_ms: i64,
}

/// When a correlation's condition is checked (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    /// On each arriving entry, over the window ending at it.
    OnEntry,
    /// Once, when the window opened by the group's first entry closes.
    AtClose,
    /// By `advance`, over the window ending at the tick: an absence. `keep` is the smallest
    /// count at which the condition no longer holds, so the newest `keep` entries are all the
    /// group needs (0: the condition never holds).
    OnTick { keep: usize },
}

/// A correlation with its references resolved to keys.
#[derive(Debug)]
struct Compiled {
    rule: CorrelationRule,
    /// Per group-by entry and per position in `rules`: the event field to read.
    group_fields: Vec<Vec<String>>,
    /// Key of the correlation itself, for chaining.
    key: usize,
    check: Check,
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

/// What a group's window counts, kept up to date entry by entry so that measuring it does not
/// walk the window.
#[derive(Debug)]
enum Tally {
    None,
    /// `value_count`: how many entries of the window carry each value.
    Values(HashMap<String, u32>),
    /// `temporal*`: how many entries of the window each referenced rule has.
    Rules(Vec<u32>),
}

#[derive(Debug)]
struct Group {
    key: GroupKey,
    /// Sorted by time, then arrival.
    entries: VecDeque<Entry>,
    tally: Tally,
    last_ms: i64,
    /// When the group is pruned (or, checked at close, evaluated); for an absence, the first
    /// tick time at which it is due: to fire if armed, else to be forgotten.
    expiry_ms: i64,
    /// Absences only: the time of the event that made the group known.
    known_ms: i64,
    /// Absences only: whether the group may fire (false from its match until it re-arms).
    armed: bool,
    /// The times the group is filed under in `by_last` and in `by_expiry` (or `by_due`). They
    /// may lag behind `last_ms` and `expiry_ms`, never run ahead: a group whose filed time
    /// comes up is refiled under its real one, so that an arriving entry does not have to
    /// move it in the trees (a time that moves earlier is refiled at once).
    filed_last: i64,
    filed_expiry: i64,
}

impl Group {
    /// Inserts an entry in time order (after those of the same time) and tallies it.
    fn insert(&mut self, entry: Entry) {
        match (&mut self.tally, &entry.measure) {
            (Tally::Values(values), Measure::Text(text)) => match values.get_mut(text.as_str()) {
                Some(count) => *count += 1,
                None => {
                    values.insert(text.clone(), 1);
                }
            },
            (Tally::Rules(rules), _) => {
                if let Some(count) = rules.get_mut(entry.position) {
                    *count += 1;
                }
            }
            _ => {}
        }
        // Entries mostly arrive in time order: append without searching.
        let at = match self.entries.back() {
            Some(last) if last.time > entry.time => {
                self.entries.partition_point(|e| e.time <= entry.time)
            }
            _ => self.entries.len(),
        };
        self.entries.insert(at, entry);
    }

    /// Drops the oldest entry and untallies it.
    fn pop_oldest(&mut self) {
        let Some(entry) = self.entries.pop_front() else {
            return;
        };
        match (&mut self.tally, &entry.measure) {
            (Tally::Values(values), Measure::Text(text)) => {
                if let Some(count) = values.get_mut(text.as_str()) {
                    *count -= 1;
                    if *count == 0 {
                        values.remove(text.as_str());
                    }
                }
            }
            (Tally::Rules(rules), _) => {
                if let Some(count) = rules.get_mut(entry.position) {
                    *count -= 1;
                }
            }
            _ => {}
        }
    }
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
    /// `(filed_last, group)`, to find the stalest group.
    by_last: BTreeSet<(i64, u64)>,
    /// `(filed_expiry, group)`, to prune expired groups (absences excepted).
    by_expiry: BTreeSet<(i64, u64)>,
    /// `(filed_expiry, group)` of the absence groups, judged by `advance`.
    by_due: BTreeSet<(i64, u64)>,
    next_group: u64,
    next_seq: u64,
    now_ms: i64,
    /// The newest time given to `advance`: the clock absences go by.
    tick_ms: i64,
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
            let check = check_of(&rule, limits.max_events_per_group.max(1));
            compiled.push(Compiled {
                rule,
                group_fields,
                key,
                check,
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
            by_due: BTreeSet::new(),
            next_group: 0,
            next_seq: 0,
            now_ms: i64::MIN,
            tick_ms: i64::MIN,
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
    /// `time_ms`, after moving time to `time_ms` (as `advance` does, absences excepted: they
    /// are judged by `advance` only); returns the correlations that fire, chained ones after
    /// the correlation that fed them.
    pub fn observe(
        &mut self,
        client: &str,
        rule_ref: &str,
        event: &Value,
        time_ms: i64,
    ) -> Vec<CorrelationMatch> {
        let mut matches = self.pass_time(time_ms);
        if let Some(&key) = self.keys.get(rule_ref) {
            let mut queue = VecDeque::new();
            queue.push_back((client.to_owned(), key, Cow::Borrowed(event), time_ms));
            self.run_queue(queue, &mut matches);
        }
        matches
    }

    /// Moves time forward (never back) to `now_ms`, prunes the groups whose window has passed
    /// and judges the absences due at `now_ms`; returns the correlations checked at close or on
    /// the tick whose condition held. Call it on a tick, with the wall clock: absences fire
    /// only here, and correlations checked at close fire without waiting for the next event.
    pub fn advance(&mut self, now_ms: i64) -> Vec<CorrelationMatch> {
        let mut matches = self.pass_time(now_ms);
        self.tick_ms = self.tick_ms.max(now_ms);
        let mut queue = VecDeque::new();
        while let Some(&(filed, id)) = self.by_due.first() {
            if filed > self.tick_ms {
                break;
            }
            if self.groups[&id].expiry_ms > self.tick_ms {
                self.refile_expiry(id);
                continue;
            }
            if let Some((index, found)) = self.judge_absence(id) {
                self.chain(index, &found, &mut queue);
                matches.push(found);
            }
        }
        self.run_queue(queue, &mut matches);
        matches
    }

    /// Judges an absence group that is due at the tick: fires if armed and its window is low,
    /// then keeps it disarmed until its window empties (it is then forgotten).
    fn judge_absence(&mut self, id: u64) -> Option<(usize, CorrelationMatch)> {
        let tick = self.tick_ms;
        let group = self
            .groups
            .get(&id)
            .expect("invariant: indexed groups are live");
        let index = group.key.0;
        let correlation = &self.correlations[index];
        let span = correlation.rule.timespan_ms;
        let Check::OnTick { keep } = correlation.check else {
            unreachable!("invariant: only absences are due on ticks")
        };
        let newest = group.last_ms;
        let count = group
            .entries
            .iter()
            .filter(|e| e.time > tick.saturating_sub(span))
            .count();
        let holds = correlation.rule.condition.holds(count as f64);
        let found = (group.armed && holds)
            .then(|| self.build_match(index, &group.key, count as f64, newest, tick));
        let next = if group.armed && !holds {
            // Not low after all (cannot happen with a due time computed by `absence_due`).
            absence_due(group, keep, span)
        } else if newest.saturating_add(span) <= tick {
            self.remove_group(id);
            return found.map(|found| (index, found));
        } else {
            newest.saturating_add(span)
        };
        let group = self
            .groups
            .get_mut(&id)
            .expect("invariant: indexed groups are live");
        group.armed = group.armed && !holds;
        group.expiry_ms = next;
        self.refile_expiry(id);
        found.map(|found| (index, found))
    }

    /// Moves time forward (never back) and prunes the groups whose window has passed; returns
    /// the correlations checked at close whose condition held.
    fn pass_time(&mut self, now_ms: i64) -> Vec<CorrelationMatch> {
        self.now_ms = self.now_ms.max(now_ms);
        let mut matches = Vec::new();
        let mut queue = VecDeque::new();
        while let Some(&(filed, id)) = self.by_expiry.first() {
            if filed >= self.now_ms {
                break;
            }
            if self.groups[&id].expiry_ms >= self.now_ms {
                self.refile_expiry(id);
                continue;
            }
            let group = self
                .remove_group(id)
                .expect("invariant: indexed groups are live");
            let index = group.key.0;
            let correlation = &self.correlations[index];
            if correlation.check != Check::AtClose {
                continue;
            }
            let Some(value) = measure_window(correlation, &group) else {
                continue;
            };
            if correlation.rule.condition.holds(value) {
                let (first, last) = entry_span(&group);
                let found = self.build_match(index, &group.key, value, first, last);
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
        self.by_last.remove(&(group.filed_last, id));
        self.by_expiry.remove(&(group.filed_expiry, id));
        self.by_due.remove(&(group.filed_expiry, id));
        self.group_ids.remove(&group.key);
        Some(group)
    }

    /// Files a group under its real expiry (in `by_due` for an absence).
    fn refile_expiry(&mut self, id: u64) {
        let group = self
            .groups
            .get_mut(&id)
            .expect("invariant: filed groups are live");
        let (old, new) = (group.filed_expiry, group.expiry_ms);
        group.filed_expiry = new;
        let tree = match self.correlations[group.key.0].check {
            Check::OnTick { .. } => &mut self.by_due,
            _ => &mut self.by_expiry,
        };
        tree.remove(&(old, id));
        tree.insert((new, id));
    }

    /// Files a group under its real last time.
    fn refile_last(&mut self, id: u64) {
        let group = self
            .groups
            .get_mut(&id)
            .expect("invariant: filed groups are live");
        let (old, new) = (group.filed_last, group.last_ms);
        group.filed_last = new;
        self.by_last.remove(&(old, id));
        self.by_last.insert((new, id));
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
        let check = correlation.check;
        let late = match check {
            Check::OnTick { keep: 0 } => return None,
            // Already out of the window of the last tick: it says nothing about the present.
            Check::OnTick { .. } => time.saturating_add(span) <= self.tick_ms,
            // Too late to share a window with anything still held.
            _ => time.saturating_add(span) < self.now_ms,
        };
        if late {
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
        let key: GroupKey = (index, client.to_owned(), values);
        let (id, new) = match self.group_ids.get(&key) {
            Some(&id) => (id, false),
            None => (self.create_group(key, time), true),
        };
        let seq = self.next_seq;
        self.next_seq += 1;
        let max_events = match check {
            Check::OnTick { keep } => keep,
            _ => self.limits.max_events_per_group.max(1),
        };
        let group = self
            .groups
            .get_mut(&id)
            .expect("invariant: group ids point at live groups");
        group.insert(Entry {
            time,
            seq,
            position,
            measure,
        });
        while group.entries.len() > max_events {
            group.pop_oldest();
        }
        if check == Check::OnEntry {
            let newest = group.entries.back().map_or(time, |e| e.time);
            while group
                .entries
                .front()
                .is_some_and(|e| e.time < newest.saturating_sub(span))
            {
                group.pop_oldest();
            }
        }
        group.last_ms = group.last_ms.max(time);
        group.expiry_ms = match check {
            Check::OnEntry => group.last_ms.saturating_add(span),
            Check::AtClose => group
                .entries
                .front()
                .map_or(time, |e| e.time)
                .saturating_add(span),
            Check::OnTick { keep } => {
                // The condition stops holding, so a disarmed group re-arms, when `keep`
                // entries fit in one window.
                let full = group.entries.len() >= keep
                    && group.entries.front().map_or(i64::MIN, |e| e.time)
                        > group.last_ms.saturating_sub(span);
                group.armed |= full;
                if group.armed {
                    absence_due(group, keep, span)
                } else {
                    group.last_ms.saturating_add(span)
                }
            }
        };
        // Times that moved later stay filed under the earlier ones until those come up.
        let earlier = group.expiry_ms < group.filed_expiry;
        if new {
            self.refile_last(id);
        }
        if new || earlier {
            self.refile_expiry(id);
        }
        if check != Check::OnEntry {
            return None;
        }
        let correlation = &self.correlations[index];
        let value = measure_window(correlation, &self.groups[&id])?;
        if !correlation.rule.condition.holds(value) {
            return None;
        }
        let group = self
            .remove_group(id)
            .expect("invariant: the group just fed is live");
        let (first, last) = entry_span(&group);
        Some(self.build_match(index, &group.key, value, first, last))
    }

    fn build_match(
        &self,
        index: usize,
        key: &GroupKey,
        value: f64,
        first_ms: i64,
        last_ms: i64,
    ) -> CorrelationMatch {
        let rule = &self.correlations[index].rule;
        CorrelationMatch {
            correlation_id: rule.id.clone(),
            correlation_name: rule.name.clone(),
            title: rule.title.clone(),
            level: rule.level,
            author: rule.author.clone(),
            tags: rule.tags.clone(),
            client: key.1.clone(),
            group: rule
                .group_by
                .iter()
                .cloned()
                .zip(key.2.iter().cloned())
                .collect(),
            value,
            first_ms,
            last_ms,
        }
    }

    /// A new group, known from `time`; its times are set, and it is filed, by `feed` right
    /// after.
    fn create_group(&mut self, key: GroupKey, time: i64) -> u64 {
        if self.groups.len() >= self.limits.max_groups.max(1) {
            self.evict_stalest();
        }
        let id = self.next_group;
        self.next_group += 1;
        let correlation = &self.correlations[key.0];
        let tally = match correlation.rule.kind {
            CorrelationKind::ValueCount => Tally::Values(HashMap::new()),
            CorrelationKind::Temporal => Tally::Rules(vec![0; correlation.rule.rules.len()]),
            _ => Tally::None,
        };
        self.group_ids.insert(key.clone(), id);
        self.groups.insert(
            id,
            Group {
                key,
                entries: VecDeque::new(),
                tally,
                last_ms: i64::MIN,
                expiry_ms: i64::MIN,
                known_ms: time,
                armed: true,
                filed_last: i64::MIN,
                filed_expiry: i64::MIN,
            },
        );
        id
    }

    /// Evicts the group whose last entry is the oldest.
    fn evict_stalest(&mut self) {
        while let Some(&(filed, id)) = self.by_last.first() {
            if self.groups[&id].last_ms > filed {
                self.refile_last(id);
                continue;
            }
            self.remove_group(id);
            self.evicted += 1;
            return;
        }
    }
}

/// How a correlation's condition is checked: an `event_count` bounded only from above (`lt`,
/// `lte`, `eq: 0`) is an absence, other upper bounds on a count wait for the window to close.
fn check_of(rule: &CorrelationRule, max_events: usize) -> Check {
    let criteria = &rule.condition.criteria;
    let upper_only = !criteria.is_empty()
        && criteria.iter().all(|&(op, bound)| match op {
            CompareOp::Lt | CompareOp::Lte => true,
            CompareOp::Eq => bound == 0.0,
            _ => false,
        });
    let counts = matches!(
        rule.kind,
        CorrelationKind::EventCount
            | CorrelationKind::ValueCount
            | CorrelationKind::Temporal
            | CorrelationKind::TemporalOrdered
    );
    if rule.kind == CorrelationKind::EventCount && upper_only {
        // The condition holds from 0 up to a count; past `max_events` no more entries are
        // kept, so a higher bound counts as `max_events`.
        let keep = (0..max_events)
            .find(|&n| !rule.condition.holds(n as f64))
            .unwrap_or(max_events);
        Check::OnTick { keep }
    } else if counts
        && criteria
            .iter()
            .any(|(op, _)| !matches!(op, CompareOp::Gt | CompareOp::Gte))
    {
        Check::AtClose
    } else {
        Check::OnEntry
    }
}

/// When an armed absence group's condition comes to hold if nothing more arrives: once the
/// group has been known for a full timespan, and once its `keep`-th newest entry (the oldest
/// kept) has left the window `(now - timespan, now]`.
fn absence_due(group: &Group, keep: usize, span: i64) -> i64 {
    let known = group.known_ms.saturating_add(span);
    match group.entries.front() {
        Some(oldest) if group.entries.len() >= keep => known.max(oldest.time.saturating_add(span)),
        _ => known,
    }
}

/// The times of a group's first and last entries.
fn entry_span(group: &Group) -> (i64, i64) {
    (
        group.entries.front().map_or(group.last_ms, |e| e.time),
        group.entries.back().map_or(group.last_ms, |e| e.time),
    )
}

/// The count, sum, mean or percentile of a window, as the correlation's type defines it.
fn measure_window(correlation: &Compiled, group: &Group) -> Option<f64> {
    let entries = &group.entries;
    let numbers = || {
        entries.iter().filter_map(|e| match e.measure {
            Measure::Number(n) => Some(n),
            _ => None,
        })
    };
    Some(match correlation.rule.kind {
        CorrelationKind::EventCount => entries.len() as f64,
        CorrelationKind::ValueCount => match &group.tally {
            Tally::Values(values) => values.len() as f64,
            _ => 0.0,
        },
        CorrelationKind::Temporal => match &group.tally {
            Tally::Rules(rules) => rules.iter().filter(|&&count| count > 0).count() as f64,
            _ => 0.0,
        },
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
