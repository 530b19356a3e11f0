//! Evaluation of a `CompiledRule` against one event given as JSON. Field names are resolved by a
//! `FieldSource`, so the caller decides how Sigma names map to event paths. Any event shape is
//! accepted: a missing or oddly typed field is simply not a match, never a panic.

use std::borrow::Cow;
use std::cell::{OnceCell, RefCell};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::IpAddr;
use std::rc::Rc;

use serde_json::Value;

use super::modifier::{FieldMatcher, FieldTest, RefPosition, TimePart, ValueMatcher};
use super::parse::SigmaRule;
use super::pattern::Glob;

/// Maps a Sigma field name to a value of the event.
pub trait FieldSource {
    fn field<'e>(&self, event: &'e Value, name: &str) -> Option<&'e Value>;
}

impl<F> FieldSource for F
where
    F: for<'e> Fn(&'e Value, &str) -> Option<&'e Value>,
{
    fn field<'e>(&self, event: &'e Value, name: &str) -> Option<&'e Value> {
        self(event, name)
    }
}

/// Looks the name up as a flat key, then as a dotted path, then under the usual nesting spots of
/// Windows (evtx) and shipper events: `Event.EventData`, `Event.System`, `EventData`, `System`,
/// `fields`, `Event.UserData.*`. Windows system attributes use the spec's `_` joining:
/// `Provider_Name` is `Event.System.Provider.#attributes.Name`.
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultFieldSource;

const NESTING_SPOTS: [&[&str]; 5] = [
    &["Event", "EventData"],
    &["Event", "System"],
    &["EventData"],
    &["System"],
    &["fields"],
];

fn descend<'e>(value: &'e Value, path: &[&str]) -> Option<&'e Value> {
    path.iter()
        .try_fold(value, |v, key| v.as_object()?.get(*key))
}

fn lookup_in<'e>(base: &'e Value, name: &str) -> Option<&'e Value> {
    let object = base.as_object()?;
    if let Some(v) = object.get(name) {
        return Some(v);
    }
    if name.contains('.') {
        let parts: Vec<&str> = name.split('.').collect();
        return descend(base, &parts);
    }
    None
}

/// Windows Defender and some other providers name their data with spaces (`Source Name`);
/// Sigma writes the name without them (`SourceName`).
fn lookup_without_spaces<'e>(base: &'e Value, name: &str) -> Option<&'e Value> {
    base.as_object()?
        .iter()
        .find(|(key, _)| key.contains(' ') && key.split(' ').eq(name_parts(key, name)))
        .map(|(_, v)| v)
}

/// Splits `name` at the same character offsets as the spaces of `key`, so that comparing the
/// pieces compares `key` without spaces with `name`.
fn name_parts<'n>(key: &str, name: &'n str) -> Vec<&'n str> {
    let mut parts = Vec::new();
    let mut rest = name;
    for piece in key.split(' ') {
        let Some((head, tail)) = rest.split_at_checked(piece.len()) else {
            return vec![];
        };
        parts.push(head);
        rest = tail;
    }
    if rest.is_empty() { parts } else { vec![] }
}

/// evtx dumps put text next to attributes as `{"#text": …, "#attributes": …}`.
fn unwrap_text(value: &Value) -> &Value {
    match value {
        Value::Object(map) => map.get("#text").unwrap_or(value),
        _ => value,
    }
}

impl FieldSource for DefaultFieldSource {
    fn field<'e>(&self, event: &'e Value, name: &str) -> Option<&'e Value> {
        if let Some(v) = lookup_in(event, name) {
            return Some(unwrap_text(v));
        }
        for spot in NESTING_SPOTS {
            if let Some(v) = descend(event, spot).and_then(|base| lookup_in(base, name)) {
                return Some(unwrap_text(v));
            }
        }
        if !name.contains(' ') {
            for spot in NESTING_SPOTS {
                if let Some(v) =
                    descend(event, spot).and_then(|base| lookup_without_spaces(base, name))
                {
                    return Some(unwrap_text(v));
                }
            }
        }
        if let Some((element, attribute)) = name.split_once('_') {
            for system in [&["Event", "System"][..], &["System"][..]] {
                if let Some(v) = descend(event, system)
                    .and_then(|s| descend(s, &[element, "#attributes", attribute]))
                {
                    return Some(v);
                }
            }
        }
        if let Some(Value::Object(user_data)) = descend(event, &["Event", "UserData"]) {
            for inner in user_data.values() {
                if let Some(v) = lookup_in(inner, name) {
                    return Some(unwrap_text(v));
                }
            }
        }
        None
    }
}

/// A condition with search identifiers resolved to indices.
#[derive(Debug, Clone)]
pub(crate) enum CompiledCondition {
    Search(usize),
    Not(Box<CompiledCondition>),
    And(Vec<CompiledCondition>),
    Or(Vec<CompiledCondition>),
}

/// One search identifier: maps linked with OR, items of a map with AND.
#[derive(Debug, Clone)]
pub(crate) struct CompiledSearch {
    pub name: String,
    pub maps: Vec<Vec<FieldMatcher>>,
}

/// A rule ready to evaluate events.
#[derive(Debug, Clone)]
pub struct CompiledRule {
    /// The rule as written (metadata, logsource, detection).
    pub rule: SigmaRule,
    /// The file the rule came from.
    pub path: String,
    pub(crate) searches: Vec<CompiledSearch>,
    pub(crate) condition: CompiledCondition,
}

impl CompiledRule {
    /// Evaluates the rule with `DefaultFieldSource`.
    pub fn matches(&self, event: &Value) -> bool {
        self.matches_with(event, &DefaultFieldSource)
    }

    /// Evaluates the rule with the caller's field mapping.
    pub fn matches_with(&self, event: &Value, fields: &dyn FieldSource) -> bool {
        self.matches_view(&EventView::new(event, fields))
    }

    /// Evaluates the rule on a view whose field cache other rules may share.
    pub(crate) fn matches_view(&self, view: &EventView<'_, '_>) -> bool {
        /// Searches a rule may have before their memo leaves the stack.
        const ON_STACK: usize = 16;
        if self.searches.len() <= ON_STACK {
            let mut memo = [None; ON_STACK];
            self.eval_condition(&self.condition, view, &mut memo[..self.searches.len()])
        } else {
            let mut memo = vec![None; self.searches.len()];
            self.eval_condition(&self.condition, view, &mut memo)
        }
    }

    fn eval_condition(
        &self,
        condition: &CompiledCondition,
        view: &EventView<'_, '_>,
        memo: &mut [Option<bool>],
    ) -> bool {
        match condition {
            CompiledCondition::Search(i) => {
                if let Some(known) = memo.get(*i).copied().flatten() {
                    return known;
                }
                let result = self.searches.get(*i).is_some_and(|s| {
                    s.maps
                        .iter()
                        .any(|map| map.iter().all(|m| view.field_matches(m)))
                });
                if let Some(slot) = memo.get_mut(*i) {
                    *slot = Some(result);
                }
                result
            }
            CompiledCondition::Not(inner) => !self.eval_condition(inner, view, memo),
            CompiledCondition::And(terms) => {
                terms.iter().all(|t| self.eval_condition(t, view, memo))
            }
            CompiledCondition::Or(terms) => {
                terms.iter().any(|t| self.eval_condition(t, view, memo))
            }
        }
    }
}

/// One event under evaluation, with what rules learn about it kept for the next rules: each
/// field resolved once (its value, its scalars, their lowered text computed once on demand)
/// and the event's scalars for keyword searches. Many rules test the same few fields of an
/// event (`Image`, `CommandLine`…): resolving and lowering them once per event, not once per
/// rule, is what makes evaluating thousands of rules affordable.
///
/// Two ways to find a field: by name through the `FieldSource` (a single rule, or a custom
/// mapping), or — built by the engine — by the field's number, from the states a single walk
/// over the event's keys has left (`SlotState`), falling back to `DefaultFieldSource` only for
/// names the walk cannot place.
pub(crate) struct EventView<'e, 's> {
    event: &'e Value,
    fields: &'s dyn FieldSource,
    /// Engine mode: the interned field names, and per field its state for this event.
    names: &'s [String],
    states: RefCell<Vec<SlotState<'e>>>,
    cache: RefCell<HashMap<String, Rc<Slot<'e>>, FnvBuild>>,
    scalars: OnceCell<Rc<Vec<Target<'e>>>>,
    empty: OnceCell<Rc<Slot<'e>>>,
}

/// What the engine's walk over an event learnt of a field.
#[derive(Clone)]
pub(crate) enum SlotState<'e> {
    /// No key of the event can resolve to this field.
    Absent,
    /// A key that may resolve to it exists; the value when the walk could place it itself
    /// (with the precedence of its position, lower first), else `DefaultFieldSource` decides.
    Present(Option<(u8, &'e Value)>),
    Resolved(Rc<Slot<'e>>),
}

/// A resolved field: its value (if any) and the scalars it stands for.
pub(crate) struct Slot<'e> {
    pub value: Option<&'e Value>,
    targets: Targets<'e>,
}

/// The scalars of a field: nearly always one, kept without a list of its own.
enum Targets<'e> {
    One(Target<'e>),
    Many(Vec<Target<'e>>),
}

impl<'e> Slot<'e> {
    fn of(value: Option<&'e Value>) -> Slot<'e> {
        let targets = match value {
            Some(Value::Array(items)) => {
                Targets::Many(items.iter().map(|i| Target::new(unwrap_text(i))).collect())
            }
            Some(other) => Targets::One(Target::new(other)),
            None => Targets::Many(Vec::new()),
        };
        Slot { value, targets }
    }

    /// The scalars the field stands for: its value, or the elements of its list.
    pub(crate) fn targets(&self) -> &[Target<'e>] {
        match &self.targets {
            Targets::One(target) => std::slice::from_ref(target),
            Targets::Many(targets) => targets,
        }
    }
}

impl<'e, 's> EventView<'e, 's> {
    pub(crate) fn new(event: &'e Value, fields: &'s dyn FieldSource) -> EventView<'e, 's> {
        EventView {
            event,
            fields,
            names: &[],
            states: RefCell::new(Vec::new()),
            cache: RefCell::new(HashMap::default()),
            scalars: OnceCell::new(),
            empty: OnceCell::new(),
        }
    }

    /// A view whose numbered fields start from the states of the engine's walk (one per name).
    pub(crate) fn indexed(
        event: &'e Value,
        names: &'s [String],
        states: Vec<SlotState<'e>>,
    ) -> EventView<'e, 's> {
        EventView {
            names,
            states: RefCell::new(states),
            ..EventView::new(event, &DefaultFieldSource)
        }
    }

    /// The field `name`, resolved once per event.
    pub(crate) fn slot(&self, name: &str) -> Rc<Slot<'e>> {
        if let Some(slot) = self.cache.borrow().get(name) {
            return Rc::clone(slot);
        }
        let slot = Rc::new(Slot::of(self.fields.field(self.event, name)));
        self.cache
            .borrow_mut()
            .insert(name.to_owned(), Rc::clone(&slot));
        slot
    }

    /// The field numbered `id` by the engine (by name when the view has no numbering).
    pub(crate) fn slot_id(&self, id: u32, name: &str) -> Rc<Slot<'e>> {
        let mut states = self.states.borrow_mut();
        let Some(state) = states.get_mut(id as usize) else {
            drop(states);
            return self.slot(name);
        };
        match state {
            SlotState::Resolved(slot) => Rc::clone(slot),
            SlotState::Absent => Rc::clone(self.empty.get_or_init(|| Rc::new(Slot::of(None)))),
            SlotState::Present(placed) => {
                let value = match placed {
                    Some((_, value)) => Some(unwrap_text(value)),
                    None => {
                        let name = self.names.get(id as usize).map_or(name, String::as_str);
                        DefaultFieldSource.field(self.event, name)
                    }
                };
                let slot = Rc::new(Slot::of(value));
                *state = SlotState::Resolved(Rc::clone(&slot));
                slot
            }
        }
    }

    /// The event under evaluation.
    pub(crate) fn event(&self) -> &'e Value {
        self.event
    }

    /// The value of field `id` when the engine's walk has placed it or it is resolved, without
    /// resolving it (`None`: absent, or only resolution can tell).
    pub(crate) fn placed(&self, id: u32) -> Option<&'e Value> {
        match self.states.borrow().get(id as usize)? {
            SlotState::Present(Some((_, value))) => Some(unwrap_text(value)),
            SlotState::Resolved(slot) => slot.value,
            SlotState::Present(None) | SlotState::Absent => None,
        }
    }

    pub(crate) fn scalars(&self) -> Rc<Vec<Target<'e>>> {
        Rc::clone(self.scalars.get_or_init(|| {
            let mut scalars = Vec::new();
            collect_scalars(self.event, &mut scalars, 0);
            Rc::new(scalars.into_iter().map(Target::new).collect())
        }))
    }

    fn field_matches(&self, matcher: &FieldMatcher) -> bool {
        let Some(name) = &matcher.field else {
            return self.keywords_match(matcher);
        };
        let slot = self.slot_id(matcher.slot, name);
        let value = slot.value;
        match &matcher.test {
            FieldTest::Exists(expected) => value.is_some_and(|v| !v.is_null()) == *expected,
            FieldTest::Values {
                values,
                all,
                negate,
            } => {
                let test = |m: &ValueMatcher| match m {
                    ValueMatcher::Null => value.is_none_or(Value::is_null),
                    _ => slot.targets().iter().any(|t| self.scalar_matches(m, t)),
                };
                let hit = if *all {
                    values.iter().all(test)
                } else {
                    values.iter().any(test)
                };
                hit != *negate
            }
        }
    }

    /// A keyword item: each value is searched in every scalar of the event.
    fn keywords_match(&self, matcher: &FieldMatcher) -> bool {
        let FieldTest::Values {
            values,
            all,
            negate,
        } = &matcher.test
        else {
            return false;
        };
        let targets = self.scalars();
        let test = |m: &ValueMatcher| targets.iter().any(|t| self.scalar_matches(m, t));
        let hit = if *all {
            values.iter().all(test)
        } else {
            values.iter().any(test)
        };
        hit != *negate
    }

    fn scalar_matches(&self, matcher: &ValueMatcher, target: &Target) -> bool {
        let value = target.value;
        match matcher {
            ValueMatcher::Null => value.is_null(),
            ValueMatcher::AnyOf(variants) => {
                variants.iter().any(|m| self.scalar_matches(m, target))
            }
            ValueMatcher::Pattern(glob) => target.glob_matches(glob),
            ValueMatcher::Number { value: n, text } => match value {
                Value::Number(v) => v.as_f64().is_some_and(|v| v == *n),
                _ => target.glob_matches(text),
            },
            ValueMatcher::Bool(b) => match value {
                Value::Bool(v) => v == b,
                Value::String(s) => s.eq_ignore_ascii_case(if *b { "true" } else { "false" }),
                _ => false,
            },
            ValueMatcher::Regex(re) => target.raw.as_deref().is_some_and(|t| re.is_match(t)),
            ValueMatcher::Compare(op, n) => as_number(value).is_some_and(|v| op.holds(v, *n)),
            ValueMatcher::Cidr(cidr) => value
                .as_str()
                .and_then(|s| s.trim().parse::<IpAddr>().ok())
                .is_some_and(|ip| cidr.contains(ip)),
            ValueMatcher::Time(part, op, n) => value
                .as_str()
                .and_then(|s| time_part(s, *part))
                .is_some_and(|v| op.holds(f64::from(v), *n)),
            ValueMatcher::FieldRef {
                field,
                position,
                cased,
            } => {
                let other_slot = self.slot(field);
                let Some(other) = other_slot.value else {
                    return false;
                };
                let other = Target::new(other);
                let (Some(left), Some(right)) = (target.raw.as_deref(), other.raw.as_deref())
                else {
                    return false;
                };
                if let (Value::Number(a), Value::Number(b), RefPosition::Whole) =
                    (value, other.value, position)
                {
                    return a.as_f64() == b.as_f64();
                }
                let (left, right) = if *cased {
                    (Cow::Borrowed(left), Cow::Borrowed(right))
                } else {
                    (
                        Cow::Owned(left.to_lowercase()),
                        Cow::Owned(right.to_lowercase()),
                    )
                };
                match position {
                    RefPosition::Whole => left == right,
                    RefPosition::Contains => left.contains(right.as_ref()),
                    RefPosition::StartsWith => left.starts_with(right.as_ref()),
                    RefPosition::EndsWith => left.ends_with(right.as_ref()),
                }
            }
        }
    }
}

/// One scalar of the event under test, with its text and (computed once, on demand) its lowered
/// text, so that a field tested against many case-insensitive values is lowered only once.
pub(crate) struct Target<'v> {
    pub value: &'v Value,
    pub raw: Option<Cow<'v, str>>,
    lowered: OnceCell<String>,
}

impl<'v> Target<'v> {
    fn new(value: &'v Value) -> Target<'v> {
        let raw: Option<Cow<'v, str>> = match value {
            Value::String(s) => Some(Cow::Borrowed(s.as_str())),
            Value::Number(n) => Some(Cow::Owned(n.to_string())),
            Value::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
            _ => None,
        };
        Target {
            value,
            raw,
            lowered: OnceCell::new(),
        }
    }

    /// The lowered text (computed once).
    pub(crate) fn lowered(&self) -> Option<&str> {
        let raw = self.raw.as_deref()?;
        Some(self.lowered.get_or_init(|| raw.to_lowercase()))
    }

    /// Whether the glob matches this scalar: ASCII text as written (the glob folds ASCII case
    /// itself, so nothing is allocated), other text lowered once.
    fn glob_matches(&self, glob: &Glob) -> bool {
        let Some(raw) = self.raw.as_deref() else {
            return false;
        };
        if glob.is_cased() {
            glob.matches(raw)
        } else if raw.is_ascii() {
            glob.matches_ascii(raw)
        } else {
            self.lowered().is_some_and(|lowered| glob.matches(lowered))
        }
    }
}

/// FNV-1a as a `Hasher`: field names are short, and SipHash costs more than the lookup.
#[derive(Clone, Copy)]
pub(crate) struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 ^= u64::from(*byte);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

pub(crate) type FnvBuild = BuildHasherDefault<Fnv>;

fn as_number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
        _ => None,
    }
}

/// How deep in an event keyword searches look for scalars.
pub(crate) const MAX_SCALAR_DEPTH: usize = 64;

/// Gathers the scalar values of an event for keyword search (depth-bounded).
fn collect_scalars<'e>(value: &'e Value, out: &mut Vec<&'e Value>, depth: usize) {
    if depth > MAX_SCALAR_DEPTH {
        return;
    }
    match value {
        Value::String(_) | Value::Number(_) => out.push(value),
        Value::Array(items) => items
            .iter()
            .for_each(|i| collect_scalars(i, out, depth + 1)),
        Value::Object(map) => map
            .values()
            .for_each(|v| collect_scalars(v, out, depth + 1)),
        Value::Null | Value::Bool(_) => {}
    }
}

/// Extracts a part of an ISO-8601 like date (`2024-03-05T10:20:30Z` or `2024-03-05 10:20:30`).
/// No time zone conversion, as the spec says.
pub(crate) fn time_part(text: &str, part: TimePart) -> Option<u32> {
    let text = text.trim();
    let number = |range: std::ops::Range<usize>| text.get(range)?.parse::<u32>().ok();
    let year = number(0..4)?;
    let month = number(5..7).filter(|m| (1..=12).contains(m))?;
    let day = number(8..10).filter(|d| (1..=31).contains(d))?;
    if text.get(4..5) != Some("-") || text.get(7..8) != Some("-") {
        return None;
    }
    let clock = |range: std::ops::Range<usize>, max: u32| -> Option<u32> {
        if !matches!(text.get(10..11), Some("T" | "t" | " ")) {
            return None;
        }
        number(range).filter(|v| *v <= max)
    };
    match part {
        TimePart::Year => Some(year),
        TimePart::Month => Some(month),
        TimePart::Day => Some(day),
        TimePart::Hour => clock(11..13, 23),
        TimePart::Minute => clock(14..16, 59),
        TimePart::Week => Some(iso_week(i64::from(year), month, day)),
    }
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// ISO-8601 week number (1..=53).
fn iso_week(year: i64, month: u32, day: u32) -> u32 {
    let days = days_from_civil(year, month, day);
    // 1970-01-01 was a Thursday; ISO weekday 1 = Monday.
    let weekday = (days + 3).rem_euclid(7) + 1;
    let thursday = days - weekday + 4;
    let thursday_year = {
        // the year of the Thursday of this week decides the week-numbering year
        let mut y = year + 1;
        while days_from_civil(y, 1, 1) > thursday {
            y -= 1;
        }
        y
    };
    let week = (thursday - days_from_civil(thursday_year, 1, 1)) / 7 + 1;
    u32::try_from(week).unwrap_or(0)
}
