//! Logsource routing: the `product`, `category` and `service` an event stands for, and whether
//! a rule's logsource admits it.
//!
//! What an event states itself wins; the rest comes from a `LogsourceMap`, data rather than
//! code: ordered entries of conditions on event fields (a Windows channel and event id, a
//! syslog program or facility, a `source`…) that set a product, category or service, the first
//! matching entry winning per attribute. The built-in map (`logsources.yaml` beside this file,
//! embedded) carries the Windows mappings of Hayabusa and pySigma (Sysmon's event ids,
//! Security 4688, PowerShell's logs, the channel of each Windows service) and Linux's syslog
//! programs as SigmaHQ's `product: linux` rules name them; an operator's file goes before it.
//!
//! Guards two invariants. Loading a map reports every problem of the file with its line and
//! field, and a bad file never panics. Deriving an event's logsource runs once per event in
//! the pipeline, so it is a few hash lookups: entries are indexed by the values their
//! equality conditions require, each event field is read once, and nothing is allocated but
//! the resulting strings.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::OnceLock;

use serde_json::Value;
use serde_saphyr::{MessageFormatter, UserMessageFormatter};

use crate::alert::Fnv1a;
use crate::estate::Diagnostic;
use crate::rule::sigma::LogSource;
use crate::yaml::{Node, NodeValue};

/// The built-in map, as shipped.
const DEFAULT_MAP: &str = include_str!("logsources.yaml");
const DEFAULT_MAP_FILE: &str = "logsources.yaml (built in)";

/// The logsource an event stands for: its `product`, `category` and `service` (what it states
/// at the top of its fields or under `logsource`, else what its map derives) and, for events
/// in the EVTX layout, its Windows channel.
///
/// Admission also reads the map the logsource was derived with (the channel of each Windows
/// service, the categories derived from channels), so two logsources are equal when their four
/// attributes are, whatever their maps.
pub struct EventLogSource<'m> {
    pub product: Option<String>,
    pub category: Option<String>,
    pub service: Option<String>,
    /// The Windows channel of an EVTX-layout event (the map's `channel` field).
    pub channel: Option<String>,
    map: &'m LogsourceMap,
}

impl EventLogSource<'static> {
    /// The logsource of `document` by the built-in map.
    pub fn of(document: &Value) -> EventLogSource<'static> {
        EventLogSource::with_map(document, LogsourceMap::default_map())
    }
}

impl<'m> EventLogSource<'m> {
    /// The logsource of `document` by `map` (typically the built-in map with an operator's
    /// overrides, `LogsourceMap::with_overrides`).
    pub fn with_map(document: &Value, map: &'m LogsourceMap) -> EventLogSource<'m> {
        let logsource = document.get("logsource");
        let stated = |key: &str| {
            document
                .get(key)
                .or_else(|| logsource.and_then(|l| l.get(key)))
                .and_then(Value::as_str)
                .map(str::to_ascii_lowercase)
        };
        let mut product = stated("product");
        let mut category = stated("category");
        let mut service = stated("service");
        let mut fields = ResolvedFields::new(&map.compiled, document);
        let needed = [product.is_none(), category.is_none(), service.is_none()];
        if needed.contains(&true) {
            let [derived_product, derived_category, derived_service] =
                map.compiled.derive(&mut fields, needed);
            product = product.or_else(|| derived_product.map(str::to_owned));
            category = category.or_else(|| derived_category.map(str::to_owned));
            service = service.or_else(|| derived_service.map(str::to_owned));
        }
        let channel = map
            .compiled
            .channel_slot
            .and_then(|slot| match fields.get(slot) {
                Scalar::Text(channel) => Some(channel.to_owned()),
                _ => None,
            });
        EventLogSource {
            product,
            category,
            service,
            channel,
            map,
        }
    }

    /// Whether a rule is to be tested against this event: nothing the event states (or its
    /// map derives) contradicts the rule's logsource. For an event with a Windows channel, a
    /// rule whose category the map derives from channels is tested only on events of that
    /// category, and a rule naming a service the map knows the channel of only on events of
    /// that channel; other categories and services (from ETW providers, EDRs) rule nothing out.
    pub fn admits(&self, rule: &LogSource) -> bool {
        let agrees = |stated: &Option<String>, wanted: &Option<String>| match (stated, wanted) {
            (Some(stated), Some(wanted)) => stated.eq_ignore_ascii_case(wanted),
            _ => true,
        };
        if !agrees(&self.product, &rule.product) || !agrees(&self.service, &rule.service) {
            return false;
        }
        let category = match (&self.category, &rule.category) {
            (_, None) => true,
            (Some(stated), Some(wanted)) => {
                stated.eq_ignore_ascii_case(wanted)
                    || (wanted == "registry_event" && stated.starts_with("registry_"))
            }
            // A Windows event whose channel implies no category is not one of the derived ones.
            (None, Some(wanted)) => {
                self.channel.is_none() || !self.map.compiled.channel_categories.contains(wanted)
            }
        };
        if !category {
            return false;
        }
        match (&self.channel, &rule.service) {
            (Some(channel), Some(wanted)) if self.service.is_none() => self
                .map
                .channel_of_service(wanted)
                .is_none_or(|expected| channel.eq_ignore_ascii_case(expected)),
            _ => true,
        }
    }
}

impl Default for EventLogSource<'static> {
    /// Nothing stated or derived, under the built-in map: admits every rule.
    fn default() -> Self {
        EventLogSource {
            product: None,
            category: None,
            service: None,
            channel: None,
            map: LogsourceMap::default_map(),
        }
    }
}

impl fmt::Debug for EventLogSource<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventLogSource")
            .field("product", &self.product)
            .field("category", &self.category)
            .field("service", &self.service)
            .field("channel", &self.channel)
            .finish_non_exhaustive()
    }
}

impl PartialEq for EventLogSource<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.product == other.product
            && self.category == other.category
            && self.service == other.service
            && self.channel == other.channel
    }
}

impl Eq for EventLogSource<'_> {}

/// How events map to Sigma logsources: named fields, the channel of each Windows service, and
/// ordered mapping entries. Built from YAML (`parse`), the built-in one is `default_map`;
/// `with_overrides` layers an operator's map before another.
#[derive(Clone, Debug)]
pub struct LogsourceMap {
    written: WrittenMap,
    compiled: CompiledMap,
}

impl LogsourceMap {
    /// The built-in map (`logsources.yaml`), parsed once.
    pub fn default_map() -> &'static LogsourceMap {
        static DEFAULT: OnceLock<LogsourceMap> = OnceLock::new();
        DEFAULT.get_or_init(|| {
            LogsourceMap::parse(DEFAULT_MAP, DEFAULT_MAP_FILE)
                .expect("invariant: the built-in logsource map parses (tested)")
        })
    }

    /// Reads a map file. `file_name` only names the file in diagnostics. A file with nothing
    /// in it (or only comments) is an empty map. Every problem is reported, each with its line
    /// and, when there is one, the field at fault (`mappings[3].when.event_id`).
    pub fn parse(text: &str, file_name: &str) -> Result<LogsourceMap, Vec<Diagnostic>> {
        let written = read_map(text, file_name)?;
        Ok(LogsourceMap::build(written))
    }

    /// This map with `overrides` consulted first: its entries go before this map's (so they win
    /// per attribute), its named fields try their names before this map's, and its service
    /// channels replace this map's for the same service.
    pub fn with_overrides(&self, overrides: &LogsourceMap) -> LogsourceMap {
        let mut written = overrides.written.clone();
        for (name, paths) in &self.written.fields {
            match written.fields.iter_mut().find(|(known, _)| known == name) {
                Some((_, known_paths)) => {
                    for path in paths {
                        if !known_paths.contains(path) {
                            known_paths.push(path.clone());
                        }
                    }
                }
                None => written.fields.push((name.clone(), paths.clone())),
            }
        }
        for (service, channel) in &self.written.service_channels {
            if !written.service_channels.iter().any(|(s, _)| s == service) {
                written
                    .service_channels
                    .push((service.clone(), channel.clone()));
            }
        }
        written
            .mappings
            .extend(self.written.mappings.iter().cloned());
        LogsourceMap::build(written)
    }

    /// The number of mapping entries.
    pub fn len(&self) -> usize {
        self.written.mappings.len()
    }

    pub fn is_empty(&self) -> bool {
        self.written.mappings.is_empty()
    }

    /// The channel a Windows service reads, if the map knows it.
    fn channel_of_service(&self, service: &str) -> Option<&str> {
        self.written
            .service_channels
            .iter()
            .find(|(known, _)| known.eq_ignore_ascii_case(service))
            .map(|(_, channel)| channel.as_str())
    }

    fn build(written: WrittenMap) -> LogsourceMap {
        let compiled = CompiledMap::build(&written);
        LogsourceMap { written, compiled }
    }
}

// ---------------------------------------------------------------------------------------------
// The map as written.

#[derive(Clone, Debug, Default)]
struct WrittenMap {
    /// Named fields and the event fields each stands for, tried in order.
    fields: Vec<(String, Vec<String>)>,
    /// Sigma Windows service (lower case) and the channel it reads.
    service_channels: Vec<(String, String)>,
    mappings: Vec<Mapping>,
}

/// One entry: when every condition holds, the event stands for these attributes (each unless
/// an earlier entry already set it).
#[derive(Clone, Debug)]
struct Mapping {
    conditions: Vec<Condition>,
    /// Product, category and service, lower case.
    sets: [Option<String>; 3],
}

#[derive(Clone, Debug)]
struct Condition {
    /// A named field or a field path (`Event.EventData.EventType`).
    field: String,
    test: Test,
}

#[derive(Clone, Debug)]
enum Test {
    /// Equal to one of these.
    Equals(Vec<Literal>),
    /// Text starting with, ending with or containing one of these (lower case).
    StartsWith(Vec<String>),
    EndsWith(Vec<String>),
    Contains(Vec<String>),
    /// The field is present (or absent).
    Exists(bool),
}

/// A value to compare with: an integer when the text is one (so that `4688` and `"4688"`
/// agree), otherwise the text in lower case.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Literal {
    Int(i64),
    Text(String),
}

impl Literal {
    fn of(text: &str) -> Literal {
        match text.trim().parse() {
            Ok(number) => Literal::Int(number),
            Err(_) => Literal::Text(text.to_ascii_lowercase()),
        }
    }

    fn hash_into(&self, hasher: &mut Fnv1a) {
        match self {
            Literal::Int(number) => hash_int(hasher, *number),
            Literal::Text(text) => hash_text(hasher, text),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The map compiled for evaluation.

/// At most this many combinations of values index one entry; beyond, the fields with the
/// longest lists are left to the check.
const MAX_KEYS_PER_ENTRY: usize = 64;

/// Fields read per event are remembered in a fixed array of this size (no allocation); a map
/// naming more fields reads the others each time they are tested.
const CACHED_SLOTS: usize = 32;

#[derive(Clone, Debug, Default)]
struct CompiledMap {
    /// Per slot (a distinct field name of the conditions), the event fields it reads.
    slots: Vec<Vec<FieldPath>>,
    /// The slot of the `channel` named field.
    channel_slot: Option<usize>,
    entries: Vec<CompiledEntry>,
    /// Entries indexed by the values of their equality conditions, one table per set of
    /// fields.
    groups: Vec<KeyGroup>,
    /// Entries without an equality condition, checked on every event.
    unindexed: Vec<u32>,
    /// Categories some entry derives from a Windows channel (and `registry_event`, Sigma's
    /// name for any of the `registry_*` ones).
    channel_categories: HashSet<String>,
}

#[derive(Clone, Debug)]
struct CompiledEntry {
    conditions: Vec<(usize, Test)>,
    sets: [Option<String>; 3],
}

#[derive(Clone, Debug)]
struct KeyGroup {
    slots: Vec<usize>,
    table: HashMap<u64, Vec<u32>, BuildHasherDefault<KeyHasher>>,
}

/// Keys are FNV hashes already: used as they are.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*byte);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

/// A field name as the event is searched for it: the whole name at the top level first, then
/// its dot-separated parts as a path, as rules read fields.
#[derive(Clone, Debug)]
struct FieldPath {
    whole: String,
    parts: Vec<String>,
}

impl FieldPath {
    fn new(name: &str) -> FieldPath {
        let parts = if name.contains('.') {
            name.split('.').map(str::to_owned).collect()
        } else {
            Vec::new()
        };
        FieldPath {
            whole: name.to_owned(),
            parts,
        }
    }

    fn find<'d>(&self, document: &'d Value) -> Option<&'d Value> {
        let object = document.as_object()?;
        if let Some(value) = object.get(&self.whole) {
            return Some(value);
        }
        if self.parts.is_empty() {
            return None;
        }
        self.parts
            .iter()
            .try_fold(document, |value, part| value.as_object()?.get(part))
    }
}

impl CompiledMap {
    fn build(written: &WrittenMap) -> CompiledMap {
        let mut slot_of: HashMap<String, usize> = HashMap::new();
        let mut slots: Vec<Vec<FieldPath>> = Vec::new();
        let mut slot = |field: &str| -> usize {
            if let Some(known) = slot_of.get(field) {
                return *known;
            }
            let paths = match written.fields.iter().find(|(name, _)| name == field) {
                Some((_, paths)) => paths.iter().map(|p| FieldPath::new(p)).collect(),
                None => vec![FieldPath::new(field)],
            };
            slots.push(paths);
            slot_of.insert(field.to_owned(), slots.len() - 1);
            slots.len() - 1
        };
        let channel_slot = written
            .fields
            .iter()
            .any(|(name, _)| name == "channel")
            .then(|| slot("channel"));

        let mut entries = Vec::with_capacity(written.mappings.len());
        for mapping in &written.mappings {
            let conditions = mapping
                .conditions
                .iter()
                .map(|condition| (slot(&condition.field), condition.test.clone()))
                .collect();
            entries.push(CompiledEntry {
                conditions,
                sets: mapping.sets.clone(),
            });
        }

        let channel_paths: Vec<&str> = written
            .fields
            .iter()
            .find(|(name, _)| name == "channel")
            .map(|(_, paths)| paths.iter().map(String::as_str).collect())
            .unwrap_or_default();
        let mut channel_categories = HashSet::new();
        for mapping in &written.mappings {
            let on_channel = mapping.conditions.iter().any(|condition| {
                condition.field == "channel" || channel_paths.contains(&condition.field.as_str())
            });
            if let (true, Some(category)) = (on_channel, &mapping.sets[1]) {
                channel_categories.insert(category.clone());
            }
        }
        if channel_categories
            .iter()
            .any(|category| category.starts_with("registry_"))
        {
            channel_categories.insert("registry_event".to_owned());
        }

        let mut compiled = CompiledMap {
            slots,
            channel_slot,
            entries,
            groups: Vec::new(),
            unindexed: Vec::new(),
            channel_categories,
        };
        compiled.index();
        compiled
    }

    /// Files each entry under the combinations of the values its equality conditions require.
    fn index(&mut self) {
        for (id, entry) in (0u32..).zip(&self.entries) {
            // One equality condition per field makes the key; the others are only checked.
            let mut keyed: Vec<(usize, &[Literal])> = Vec::new();
            for (slot, test) in &entry.conditions {
                if let Test::Equals(literals) = test
                    && !keyed.iter().any(|(known, _)| known == slot)
                {
                    keyed.push((*slot, literals));
                }
            }
            while keyed.iter().map(|(_, l)| l.len()).product::<usize>() > MAX_KEYS_PER_ENTRY {
                if let Some(longest) = (0..keyed.len()).max_by_key(|i| keyed[*i].1.len()) {
                    keyed.remove(longest);
                }
            }
            if keyed.is_empty() {
                self.unindexed.push(id);
                continue;
            }
            keyed.sort_by_key(|(slot, _)| *slot);
            let slots: Vec<usize> = keyed.iter().map(|(slot, _)| *slot).collect();
            let group = match self.groups.iter().position(|g| g.slots == slots) {
                Some(position) => position,
                None => {
                    self.groups.push(KeyGroup {
                        slots,
                        table: HashMap::default(),
                    });
                    self.groups.len() - 1
                }
            };
            // Every combination of one literal per keyed field, hashed as `ResolvedFields::key`
            // hashes the event's values.
            let mut keys = vec![Fnv1a::default()];
            for (_, literals) in &keyed {
                keys = keys
                    .iter()
                    .flat_map(|prefix| {
                        literals.iter().map(|literal| {
                            let mut hasher = Fnv1a(prefix.0);
                            literal.hash_into(&mut hasher);
                            hasher.write(&[0xff]);
                            hasher
                        })
                    })
                    .collect();
            }
            let table = &mut self.groups[group].table;
            for key in keys {
                let bucket = table.entry(key.0).or_default();
                if bucket.last() != Some(&id) {
                    bucket.push(id);
                }
            }
        }
    }

    /// For each attribute still `needed`, its value in the first entry that matches and sets it.
    fn derive<'m>(
        &'m self,
        fields: &mut ResolvedFields<'_, '_>,
        needed: [bool; 3],
    ) -> [Option<&'m str>; 3] {
        let mut best: [Option<u32>; 3] = [None; 3];
        for group in &self.groups {
            let Some(key) = fields.key(&group.slots) else {
                continue;
            };
            if let Some(ids) = group.table.get(&key) {
                for id in ids {
                    self.consider(*id, fields, needed, &mut best);
                }
            }
        }
        for id in &self.unindexed {
            self.consider(*id, fields, needed, &mut best);
        }
        let mut derived = [None; 3];
        for (attribute, id) in best.iter().enumerate() {
            derived[attribute] =
                id.and_then(|id| self.entries[id as usize].sets[attribute].as_deref());
        }
        derived
    }

    fn consider(
        &self,
        id: u32,
        fields: &mut ResolvedFields<'_, '_>,
        needed: [bool; 3],
        best: &mut [Option<u32>; 3],
    ) {
        let entry = &self.entries[id as usize];
        let improves = |attribute: usize, best: &[Option<u32>; 3]| {
            needed[attribute]
                && entry.sets[attribute].is_some()
                && best[attribute].is_none_or(|known| id < known)
        };
        if !(0..3).any(|attribute| improves(attribute, best)) {
            return;
        }
        if !entry
            .conditions
            .iter()
            .all(|(slot, test)| test.holds(fields.get(*slot)))
        {
            return;
        }
        for attribute in 0..3 {
            if improves(attribute, best) {
                best[attribute] = Some(id);
            }
        }
    }
}

/// An event field as conditions compare it.
#[derive(Clone, Copy, Debug)]
enum Scalar<'d> {
    Missing,
    /// Present, but neither text, integer nor boolean (an object, a list, null, a float).
    Other,
    Text(&'d str),
    Int(i64),
    Bool(bool),
}

impl<'d> Scalar<'d> {
    fn of(value: &'d Value) -> Scalar<'d> {
        // evtx_dump writes an element with attributes as `{"#attributes": …, "#text": …}`.
        let value = match value {
            Value::Object(object) => object.get("#text").unwrap_or(value),
            _ => value,
        };
        match value {
            Value::String(text) => Scalar::Text(text),
            Value::Number(number) => number.as_i64().map_or(Scalar::Other, Scalar::Int),
            Value::Bool(flag) => Scalar::Bool(*flag),
            _ => Scalar::Other,
        }
    }

    fn text(&self) -> Option<&'d str> {
        match self {
            Scalar::Text(text) => Some(text),
            Scalar::Bool(true) => Some("true"),
            Scalar::Bool(false) => Some("false"),
            _ => None,
        }
    }

    fn equals(&self, literal: &Literal) -> bool {
        match (self, literal) {
            (Scalar::Int(number), Literal::Int(wanted)) => number == wanted,
            (Scalar::Text(text), Literal::Int(wanted)) => text.trim().parse() == Ok(*wanted),
            (_, Literal::Text(wanted)) => {
                self.text().is_some_and(|t| t.eq_ignore_ascii_case(wanted))
            }
            _ => false,
        }
    }

    /// Hashes the value as `Literal::hash_into` hashes an equal literal; `false` for values
    /// no literal equals.
    fn hash_into(&self, hasher: &mut Fnv1a) -> bool {
        match self {
            Scalar::Int(number) => hash_int(hasher, *number),
            Scalar::Text(text) => match text.trim().parse() {
                Ok(number) => hash_int(hasher, number),
                Err(_) => hash_text(hasher, text),
            },
            Scalar::Bool(_) => hash_text(hasher, self.text().unwrap_or_default()),
            Scalar::Missing | Scalar::Other => return false,
        }
        true
    }
}

fn hash_int(hasher: &mut Fnv1a, number: i64) {
    hasher.write(&[1]);
    hasher.write(&number.to_le_bytes());
}

fn hash_text(hasher: &mut Fnv1a, text: &str) {
    hasher.write(&[2]);
    for byte in text.bytes() {
        hasher.write(&[byte.to_ascii_lowercase()]);
    }
}

fn starts_with_caseless(text: &str, prefix: &str) -> bool {
    text.as_bytes()
        .get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix.as_bytes()))
}

fn ends_with_caseless(text: &str, suffix: &str) -> bool {
    text.len() >= suffix.len()
        && text.as_bytes()[text.len() - suffix.len()..].eq_ignore_ascii_case(suffix.as_bytes())
}

fn contains_caseless(text: &str, needle: &str) -> bool {
    needle.is_empty()
        || text
            .as_bytes()
            .windows(needle.len())
            .any(|window| window.eq_ignore_ascii_case(needle.as_bytes()))
}

impl Test {
    fn holds(&self, value: Scalar<'_>) -> bool {
        match self {
            Test::Exists(wanted) => !matches!(value, Scalar::Missing) == *wanted,
            Test::Equals(literals) => literals.iter().any(|l| value.equals(l)),
            Test::StartsWith(prefixes) => value
                .text()
                .is_some_and(|t| prefixes.iter().any(|p| starts_with_caseless(t, p))),
            Test::EndsWith(suffixes) => value
                .text()
                .is_some_and(|t| suffixes.iter().any(|s| ends_with_caseless(t, s))),
            Test::Contains(needles) => value
                .text()
                .is_some_and(|t| needles.iter().any(|n| contains_caseless(t, n))),
        }
    }
}

/// The fields of one event, each read at most once.
struct ResolvedFields<'m, 'd> {
    map: &'m CompiledMap,
    document: &'d Value,
    cache: [Option<Scalar<'d>>; CACHED_SLOTS],
}

impl<'m, 'd> ResolvedFields<'m, 'd> {
    fn new(map: &'m CompiledMap, document: &'d Value) -> ResolvedFields<'m, 'd> {
        ResolvedFields {
            map,
            document,
            cache: [None; CACHED_SLOTS],
        }
    }

    fn get(&mut self, slot: usize) -> Scalar<'d> {
        if let Some(Some(known)) = self.cache.get(slot) {
            return *known;
        }
        let found = self.map.slots[slot]
            .iter()
            .find_map(|path| path.find(self.document))
            .map_or(Scalar::Missing, Scalar::of);
        if let Some(cached) = self.cache.get_mut(slot) {
            *cached = Some(found);
        }
        found
    }

    /// The index key of the event's values for `slots`, if it has them all.
    fn key(&mut self, slots: &[usize]) -> Option<u64> {
        let mut hasher = Fnv1a::default();
        for slot in slots {
            if !self.get(*slot).hash_into(&mut hasher) {
                return None;
            }
            hasher.write(&[0xff]);
        }
        Some(hasher.0)
    }
}

// ---------------------------------------------------------------------------------------------
// Reading a map file.

const MAP_FIELDS: &str = "`fields`, `service_channels`, `mappings`";
const ENTRY_FIELDS: &str = "`when`, `product`, `category`, `service`";
const ATTRIBUTES: [&str; 3] = ["product", "category", "service"];
const MODIFIERS: &str = "`exists`, `startswith`, `endswith`, `contains`";

struct Problems<'a> {
    file: &'a str,
    list: Vec<Diagnostic>,
}

impl Problems<'_> {
    fn at(&mut self, line: usize, field: &str, message: impl Into<String>) {
        self.list.push(Diagnostic {
            path: self.file.to_owned(),
            line: (line > 0).then_some(line),
            field: field.to_owned(),
            message: message.into(),
        });
    }
}

fn read_map(text: &str, file: &str) -> Result<WrittenMap, Vec<Diagnostic>> {
    let mut options = serde_saphyr::Options::default();
    // YAML 1.2 booleans only (`on`, `no` stay text), and `0012` stays text as written.
    options.strict_booleans = true;
    options.leading_zero_numbers_as_strings = true;
    options.underscored_numbers_as_strings = true;
    let root: Option<Node> = match serde_saphyr::from_str_with_options(text, options) {
        Ok(root) => root,
        Err(error) => return Err(vec![yaml_diagnostic(file, &error)]),
    };
    let mut problems = Problems {
        file,
        list: Vec::new(),
    };
    let mut written = WrittenMap::default();
    let Some(root) = root else {
        return Ok(written);
    };
    let entries = match root.value {
        NodeValue::Null => return Ok(written),
        NodeValue::Map(entries) => entries,
        other => {
            problems.at(
                root.line,
                "",
                format!(
                    "expected a mapping with {MAP_FIELDS}, found {}",
                    other.describe()
                ),
            );
            return Err(problems.list);
        }
    };
    for (key, value) in entries {
        let Some(name) = key_name(&key, "", &mut problems) else {
            continue;
        };
        match name.as_str() {
            "fields" => written.fields = read_fields(value, &mut problems),
            "service_channels" => {
                written.service_channels = read_service_channels(value, &mut problems);
            }
            "mappings" => written.mappings = read_mappings(value, &mut problems),
            _ => problems.at(
                key.line,
                &name,
                format!("unknown field, expected one of {MAP_FIELDS}"),
            ),
        }
    }
    if problems.list.is_empty() {
        Ok(written)
    } else {
        Err(problems.list)
    }
}

fn yaml_diagnostic(file: &str, error: &serde_saphyr::Error) -> Diagnostic {
    let error = error.without_snippet();
    // One line per problem: the parser's text may carry line breaks of its own.
    let message = UserMessageFormatter
        .format_message(error)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    Diagnostic {
        path: file.to_owned(),
        line: error
            .location()
            .and_then(|location| usize::try_from(location.line()).ok())
            .filter(|line| *line > 0),
        field: String::new(),
        message,
    }
}

/// A mapping key as text; other keys are reported.
fn key_name(key: &Node, at: &str, problems: &mut Problems<'_>) -> Option<String> {
    match &key.value {
        NodeValue::Str(name) if !name.trim().is_empty() => Some(name.clone()),
        NodeValue::Str(_) => {
            problems.at(key.line, at, "a key must not be empty");
            None
        }
        other => {
            problems.at(
                key.line,
                at,
                format!("a key must be a name, found {}", other.describe()),
            );
            None
        }
    }
}

fn join(at: &str, name: &str) -> String {
    if at.is_empty() {
        name.to_owned()
    } else {
        format!("{at}.{name}")
    }
}

/// A scalar as text: strings as written, numbers and booleans as YAML read them.
fn scalar_text(node: &Node) -> Option<String> {
    match &node.value {
        NodeValue::Str(text) => Some(text.clone()),
        NodeValue::Int(number) => Some(number.to_string()),
        NodeValue::Float(number) => Some(number.to_string()),
        NodeValue::Bool(flag) => Some(flag.to_string()),
        NodeValue::Null | NodeValue::Seq(_) | NodeValue::Map(_) => None,
    }
}

/// Non-empty text.
fn text(node: &Node, at: &str, problems: &mut Problems<'_>) -> Option<String> {
    let Some(text) = scalar_text(node) else {
        problems.at(
            node.line,
            at,
            format!("expected text, found {}", node.value.describe()),
        );
        return None;
    };
    if text.trim().is_empty() {
        problems.at(node.line, at, "must not be empty");
        return None;
    }
    Some(text)
}

/// One text or a non-empty list of texts.
fn texts(node: Node, at: &str, problems: &mut Problems<'_>) -> Option<Vec<String>> {
    let items = match node.value {
        NodeValue::Seq(items) if items.is_empty() => {
            problems.at(node.line, at, "must list at least one value");
            return None;
        }
        NodeValue::Seq(items) => items,
        _ => return text(&node, at, problems).map(|text| vec![text]),
    };
    let before = problems.list.len();
    let texts: Vec<String> = items
        .iter()
        .enumerate()
        .filter_map(|(index, item)| text(item, &format!("{at}[{index}]"), problems))
        .collect();
    (problems.list.len() == before).then_some(texts)
}

/// A field name: non-empty, without `|` (which introduces a modifier) or empty parts.
fn check_field_name(name: &str, line: usize, at: &str, problems: &mut Problems<'_>) -> bool {
    if name.contains('|') {
        problems.at(line, at, "a field name cannot contain `|`");
        return false;
    }
    if name.split('.').any(|part| part.trim().is_empty()) {
        problems.at(line, at, format!("`{name}` has an empty part between dots"));
        return false;
    }
    true
}

fn read_fields(node: Node, problems: &mut Problems<'_>) -> Vec<(String, Vec<String>)> {
    let entries = match node.value {
        NodeValue::Null => return Vec::new(),
        NodeValue::Map(entries) => entries,
        other => {
            problems.at(
                node.line,
                "fields",
                format!(
                    "expected a mapping of names to event fields, found {}",
                    other.describe()
                ),
            );
            return Vec::new();
        }
    };
    let mut fields = Vec::new();
    for (key, value) in entries {
        let Some(name) = key_name(&key, "fields", problems) else {
            continue;
        };
        let at = join("fields", &name);
        if !check_field_name(&name, key.line, &at, problems) {
            continue;
        }
        let line = value.line;
        let Some(paths) = texts(value, &at, problems) else {
            continue;
        };
        let all_named = paths
            .iter()
            .enumerate()
            .all(|(index, path)| check_field_name(path, line, &format!("{at}[{index}]"), problems));
        if all_named {
            fields.push((name, paths));
        }
    }
    fields
}

fn read_service_channels(node: Node, problems: &mut Problems<'_>) -> Vec<(String, String)> {
    let entries = match node.value {
        NodeValue::Null => return Vec::new(),
        NodeValue::Map(entries) => entries,
        other => {
            problems.at(
                node.line,
                "service_channels",
                format!(
                    "expected a mapping of services to channels, found {}",
                    other.describe()
                ),
            );
            return Vec::new();
        }
    };
    let mut channels = Vec::new();
    for (key, value) in entries {
        let Some(service) = key_name(&key, "service_channels", problems) else {
            continue;
        };
        let at = join("service_channels", &service);
        if let Some(channel) = text(&value, &at, problems) {
            channels.push((service.to_ascii_lowercase(), channel));
        }
    }
    channels
}

fn read_mappings(node: Node, problems: &mut Problems<'_>) -> Vec<Mapping> {
    let items = match node.value {
        NodeValue::Null => return Vec::new(),
        NodeValue::Seq(items) => items,
        other => {
            problems.at(
                node.line,
                "mappings",
                format!("expected a list of entries, found {}", other.describe()),
            );
            return Vec::new();
        }
    };
    let mut mappings = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        if let Some(mapping) = read_mapping(item, &format!("mappings[{index}]"), problems) {
            mappings.push(mapping);
        }
    }
    mappings
}

fn read_mapping(node: Node, at: &str, problems: &mut Problems<'_>) -> Option<Mapping> {
    let before = problems.list.len();
    let line = node.line;
    let entries = match node.value {
        NodeValue::Map(entries) => entries,
        other => {
            problems.at(
                line,
                at,
                format!(
                    "expected a mapping with {ENTRY_FIELDS}, found {}",
                    other.describe()
                ),
            );
            return None;
        }
    };
    let mut conditions = None;
    let mut sets: [Option<String>; 3] = [None, None, None];
    for (key, value) in entries {
        let Some(name) = key_name(&key, at, problems) else {
            continue;
        };
        let field = join(at, &name);
        if name == "when" {
            conditions = read_conditions(value, &field, problems);
        } else if let Some(attribute) = ATTRIBUTES.iter().position(|a| *a == name) {
            sets[attribute] = attribute_value(&value, &field, problems);
        } else {
            problems.at(
                key.line,
                &field,
                format!("unknown field, expected one of {ENTRY_FIELDS}"),
            );
        }
    }
    let reported = |problems: &Problems<'_>, field: &str| {
        problems.list[before..]
            .iter()
            .any(|d| d.field.starts_with(field))
    };
    let when = join(at, "when");
    if conditions.is_none() && !reported(problems, &when) {
        problems.at(line, &when, "is required");
    }
    let attributes: Vec<String> = ATTRIBUTES.iter().map(|a| join(at, a)).collect();
    if sets.iter().all(Option::is_none) && !attributes.iter().any(|a| reported(problems, a)) {
        problems.at(
            line,
            at,
            "sets nothing: give at least one of `product`, `category`, `service`",
        );
    }
    if problems.list.len() > before {
        return None;
    }
    Some(Mapping {
        conditions: conditions?,
        sets,
    })
}

/// A product, category or service: Sigma writes them in lower case, without spaces.
fn attribute_value(node: &Node, at: &str, problems: &mut Problems<'_>) -> Option<String> {
    let value = text(node, at, problems)?;
    if value.chars().any(char::is_whitespace) {
        problems.at(
            node.line,
            at,
            format!("`{value}` has spaces; Sigma logsource values use `_` instead"),
        );
        return None;
    }
    Some(value.to_ascii_lowercase())
}

fn read_conditions(node: Node, at: &str, problems: &mut Problems<'_>) -> Option<Vec<Condition>> {
    let line = node.line;
    let entries = match node.value {
        NodeValue::Map(entries) if entries.is_empty() => {
            problems.at(line, at, "needs at least one condition");
            return None;
        }
        NodeValue::Map(entries) => entries,
        other => {
            problems.at(
                line,
                at,
                format!(
                    "expected a mapping of event fields to values, found {}",
                    other.describe()
                ),
            );
            return None;
        }
    };
    let before = problems.list.len();
    let mut conditions = Vec::with_capacity(entries.len());
    for (key, value) in entries {
        let Some(name) = key_name(&key, at, problems) else {
            continue;
        };
        let here = join(at, &name);
        let (field, modifier) = match name.split_once('|') {
            Some((field, modifier)) => (field, Some(modifier)),
            None => (name.as_str(), None),
        };
        if !check_field_name(field, key.line, &here, problems) {
            continue;
        }
        if let Some(test) = read_test(modifier, value, &here, problems) {
            conditions.push(Condition {
                field: field.to_owned(),
                test,
            });
        }
    }
    (problems.list.len() == before).then_some(conditions)
}

fn read_test(
    modifier: Option<&str>,
    value: Node,
    at: &str,
    problems: &mut Problems<'_>,
) -> Option<Test> {
    if matches!(value.value, NodeValue::Null) {
        problems.at(
            value.line,
            at,
            "expected a value (to require that a field be absent, write `field|exists: false`)",
        );
        return None;
    }
    let lower = |texts: Vec<String>| texts.iter().map(|t| t.to_ascii_lowercase()).collect();
    match modifier {
        None => texts(value, at, problems)
            .map(|texts| Test::Equals(texts.iter().map(|t| Literal::of(t)).collect())),
        Some("exists") => match value.value {
            NodeValue::Bool(flag) => Some(Test::Exists(flag)),
            other => {
                problems.at(
                    value.line,
                    at,
                    format!("expected `true` or `false`, found {}", other.describe()),
                );
                None
            }
        },
        Some("startswith") => texts(value, at, problems).map(|t| Test::StartsWith(lower(t))),
        Some("endswith") => texts(value, at, problems).map(|t| Test::EndsWith(lower(t))),
        Some("contains") => texts(value, at, problems).map(|t| Test::Contains(lower(t))),
        Some(other) => {
            problems.at(
                value.line,
                at,
                format!("unknown modifier `{other}`, expected one of {MODIFIERS}"),
            );
            None
        }
    }
}

#[cfg(test)]
#[path = "logsource_tests.rs"]
mod tests;
