//! The literal index: which rules an event can possibly match, found without evaluating them.
//!
//! For each rule, a *witness* is derived from its condition: a set of (field, literal) pairs
//! such that whenever the rule matches an event, at least one of the literals occurs
//! (case-insensitively) in the value of its field. A `contains`, `startswith`, `endswith` or
//! plain value yields its longest literal run; a map (AND) keeps the most selective item's
//! witness; a list or several maps (OR) joins theirs; `not`, `neq`, `exists`, `null`, regular
//! expressions, numeric comparisons, CIDR, time parts, field references and keywords give no
//! witness, and a rule without one is always a candidate.
//!
//! Per field, one Aho-Corasick automaton holds every literal of that field. An event is
//! scanned once per field it carries, its text lowered as the literals are (ASCII letters
//! byte by byte, other text as Unicode lowers it), so that the automata match bytes as they
//! are and stay small; numbers only when a literal of the field could occur in a number's
//! text. The keyword literals are looked for in every scalar of the event at once, the
//! scalars joined by a separator no literal contains. The rules whose literal was seen, plus
//! the rules without a witness, are the candidates; only they are evaluated.
//!
//! Field values repeat from event to event (the same images, parents, users, services): per
//! thread, a bounded memo keeps, for each (index, field, text) met lately, the literals its
//! scan found, and replays them instead of scanning again. A field whose texts seldom repeat
//! (hashes, GUIDs, most command lines) stops being memoized after a trial, and is tried again
//! now and then.
//!
//! Invariant (tested against the full evaluation on the SigmaHQ corpus and its samples): the
//! candidates are a superset of the matching rules.

use std::collections::HashMap;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex::Regex;
use regex_syntax::hir::literal::{ExtractKind, Extractor};
use serde_json::Value;

use super::eval::{CompiledCondition, CompiledRule, CompiledSearch, EventView, SlotState, Target};
use super::modifier::{FieldMatcher, FieldTest, ValueMatcher};

/// A literal some field must contain, lowered. `None` as the field: any scalar (keywords).
type Literal = (String, String);

/// Alternatives: at least one of these literals occurs when the rule matches.
type Witness = Vec<Literal>;

/// Literals shorter than this are too common to narrow anything down; a witness made of them
/// still holds, it is only less selective.
fn quality(witness: &Witness) -> (usize, std::cmp::Reverse<usize>) {
    let shortest = witness.iter().map(|(_, l)| l.len()).min().unwrap_or(0);
    (shortest.min(12), std::cmp::Reverse(witness.len()))
}

fn best(candidates: impl Iterator<Item = Witness>) -> Option<Witness> {
    candidates.max_by_key(quality)
}

fn union(parts: impl Iterator<Item = Option<Witness>>) -> Option<Witness> {
    let mut all = Vec::new();
    for part in parts {
        all.extend(part?);
    }
    (!all.is_empty()).then_some(all)
}

/// A literal safe to look for in lowered text: lowered, and cut at `σ`/`ς` (the lowering of
/// a whole text may give a final sigma where the literal's own lowering gave `σ`).
fn safe_literal(text: &str) -> String {
    text.to_lowercase()
        .split(['σ', 'ς'])
        .max_by_key(|run| run.len())
        .unwrap_or_default()
        .to_owned()
}

/// Literals one of which every match of the regex contains: its prefix literals, or its
/// suffix literals, whichever set is finite, has no empty member and is more selective.
fn regex_literals(regex: &Regex) -> Option<Vec<String>> {
    let hir = regex_syntax::Parser::new().parse(regex.as_str()).ok()?;
    let sets = [ExtractKind::Prefix, ExtractKind::Suffix].map(|kind| {
        let mut extractor = Extractor::new();
        extractor.kind(kind);
        let seq = extractor.extract(&hir);
        let literals = seq.literals()?;
        let texts: Option<Vec<String>> = literals
            .iter()
            .map(|l| {
                let text = std::str::from_utf8(l.as_bytes()).ok().map(safe_literal)?;
                (!text.is_empty()).then_some(text)
            })
            .collect();
        texts.filter(|t| !t.is_empty())
    });
    let [prefix, suffix] = sets;
    let rank = |set: &Vec<String>| {
        (
            set.iter().map(String::len).min().unwrap_or(0).min(12),
            std::cmp::Reverse(set.len()),
        )
    };
    match (prefix, suffix) {
        (Some(p), Some(s)) => Some(if rank(&s) > rank(&p) { s } else { p }),
        (p, s) => p.or(s),
    }
}

fn value_literals(matcher: &ValueMatcher) -> Option<Vec<String>> {
    let literal = match matcher {
        ValueMatcher::Pattern(glob) => glob.longest_literal(),
        // A numeric field is compared by value: `4624` is found in `4624` and `4624.0`, but a
        // rule's `1.0` would not be found in `1`, nor `1e3` in `1000`.
        ValueMatcher::Number { value, text } => {
            let literal = text.longest_literal();
            let integral = value.fract() == 0.0 && value.abs() < 1e15;
            #[allow(clippy::cast_possible_truncation)]
            if !integral || literal != format!("{}", *value as i64) {
                return None;
            }
            literal
        }
        ValueMatcher::Regex(regex) => return regex_literals(regex),
        ValueMatcher::AnyOf(variants) => {
            let mut all = Vec::new();
            for variant in variants {
                all.extend(value_literals(variant)?);
            }
            return (!all.is_empty()).then_some(all);
        }
        ValueMatcher::Bool(_)
        | ValueMatcher::Null
        | ValueMatcher::Compare(..)
        | ValueMatcher::Cidr(_)
        | ValueMatcher::FieldRef { .. }
        | ValueMatcher::Time(..) => return None,
    };
    (!literal.is_empty()).then(|| vec![literal])
}

/// The field name keyword literals are filed under: any scalar of the event.
const KEYWORDS: &str = "";

fn matcher_witness(matcher: &FieldMatcher) -> Option<Witness> {
    let field = matcher.field.clone().unwrap_or_else(|| KEYWORDS.to_owned());
    let FieldTest::Values {
        values,
        all,
        negate: false,
    } = &matcher.test
    else {
        return None;
    };
    let per_value = |value: &ValueMatcher| -> Option<Witness> {
        Some(
            value_literals(value)?
                .into_iter()
                .map(|literal| (field.clone(), literal))
                .collect(),
        )
    };
    if *all {
        best(values.iter().filter_map(per_value))
    } else {
        union(values.iter().map(per_value))
    }
}

/// The clauses of a search: with one map, one clause per item that has a witness (all items
/// must hold); with several maps (OR), one clause joining each map's best.
fn search_clauses(search: &CompiledSearch) -> Vec<Witness> {
    match search.maps.as_slice() {
        [map] => map.iter().filter_map(matcher_witness).collect(),
        maps => union(
            maps.iter()
                .map(|map| best(map.iter().filter_map(matcher_witness))),
        )
        .into_iter()
        .collect(),
    }
}

/// A conjunction of clauses (each a disjunction of literals) that holds whenever the
/// condition does; empty when nothing can be said.
fn condition_clauses(condition: &CompiledCondition, searches: &[CompiledSearch]) -> Vec<Witness> {
    match condition {
        CompiledCondition::Search(i) => searches.get(*i).map(search_clauses).unwrap_or_default(),
        CompiledCondition::Not(_) => Vec::new(),
        CompiledCondition::And(terms) => terms
            .iter()
            .flat_map(|t| condition_clauses(t, searches))
            .collect(),
        CompiledCondition::Or(terms) => union(
            terms
                .iter()
                .map(|t| best(condition_clauses(t, searches).into_iter())),
        )
        .into_iter()
        .collect(),
    }
}

/// A rule is a candidate only when one literal of each of at most this many clauses is seen.
const MAX_CLAUSES: usize = 4;

/// The witness clauses of a rule (the most selective first, at most `MAX_CLAUSES`), or an
/// empty list when it must always be evaluated.
pub(crate) fn rule_clauses(rule: &CompiledRule) -> Vec<Witness> {
    let mut clauses = condition_clauses(&rule.condition, &rule.searches);
    clauses.sort_by_key(|c| std::cmp::Reverse(quality(c)));
    clauses.dedup();
    clauses.truncate(MAX_CLAUSES);
    clauses
}

/// The literals of one field, and for each (by pattern id) its global witness number.
struct Scanner {
    field: u32,
    automaton: AhoCorasick,
    witness_of_pattern: Vec<u32>,
    /// Whether a literal may occur in the text of a JSON number: if not, numbers are not
    /// scanned.
    numbers: bool,
    /// Whether no literal contains `SEPARATOR`, so that texts joined by it can be scanned at
    /// once (the keyword scanner).
    joinable: bool,
}

/// Joins the scalars of an event for one keyword scan; no literal that contains it is
/// scanned that way, so no match spans two scalars.
const SEPARATOR: char = '\0';

/// `text` with its ASCII letters lowered, in the buffer taken from `spare` (give it back).
fn ascii_lowered(text: &str, spare: &mut String) -> String {
    let mut lowered = std::mem::take(spare);
    lowered.clear();
    lowered.push_str(text);
    lowered.make_ascii_lowercase();
    lowered
}

/// Whether `literal` (lowered) may occur in the text of a JSON number (`-12`, `1.5`, `1e+20`).
fn fits_number(literal: &str) -> bool {
    literal
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e'))
}

/// Appends the text of every scalar of `value` that a keyword scan reads, each followed by
/// `SEPARATOR`: the scalars and texts `EventView::scalars` gives (`Target::raw`, lowered when
/// not ASCII), numbers only when `numbers`.
fn join_scalars(value: &Value, text: &mut String, numbers: bool, depth: usize) {
    use std::fmt::Write as _;
    if depth > super::eval::MAX_SCALAR_DEPTH {
        return;
    }
    match value {
        Value::String(s) => {
            if s.is_ascii() {
                text.push_str(s);
            } else {
                text.push_str(&s.to_lowercase());
            }
            text.push(SEPARATOR);
        }
        Value::Number(n) if numbers => {
            let _ = write!(text, "{n}");
            text.push(SEPARATOR);
        }
        Value::Array(items) => items
            .iter()
            .for_each(|i| join_scalars(i, text, numbers, depth + 1)),
        Value::Object(map) => map
            .values()
            .for_each(|v| join_scalars(v, text, numbers, depth + 1)),
        Value::Number(_) | Value::Null | Value::Bool(_) => {}
    }
}

/// Every field name the rules test, numbered (`FieldMatcher::slot`), with what the walk over
/// an event needs to find them.
pub(crate) struct FieldTable {
    names: Vec<String>,
    /// Event keys under which a field may be found → field numbers, each with whether the key
    /// is the field's whole (plain) name, so that the walk may place its value.
    by_key: HashMap<String, Vec<(u32, bool)>, KeyHash>,
}

/// The index over some rules of a list (rule numbers are positions in the whole list).
pub(crate) struct RuleIndex {
    /// Unique to this index (memo keys).
    id: u64,
    /// Per field number, its scanner.
    scanner_of: Vec<Option<u32>>,
    /// The scanner of keyword literals, run over every scalar of the event.
    keyword_scanner: Option<u32>,
    scanners: Vec<Scanner>,
    /// Per global witness number, the rules it stands for, with the clause it satisfies.
    witness_rules: Vec<Vec<(u32, u8)>>,
    /// Per rule, the mask of its clauses all set (0 for rules without a witness).
    full: Vec<u8>,
    /// Indexed rules without a witness: always candidates.
    always: Vec<u32>,
}

/// Per-thread working memory of the index, reused from event to event (stamped with a
/// generation number instead of cleared; the stamps grow to the largest index met, so that
/// indexes of several routes share them).
#[derive(Default)]
pub(crate) struct IndexScratch {
    generation: u32,
    witness_stamp: Vec<u32>,
    /// Per rule: the generation its clause mask belongs to, and the mask.
    rule_clauses: Vec<(u32, u8)>,
    /// Fields the event may carry.
    present: Vec<u32>,
    /// The event's scalars joined for the keyword scan.
    text: String,
    /// A field's text with its ASCII letters lowered, for the scan.
    lowered: String,
    /// Texts met lately, with the witnesses their scan found (see `RuleIndex::scan_field`).
    memo: HashMap<u64, MemoEntry, KeyHash>,
    /// Per scanner of the index in use: lookups and hits in the memo.
    memo_counts: Vec<(u32, u32)>,
    /// The index `memo_counts` counts for.
    memo_index: u64,
    /// The counts of the other indexes met (events of several logsources alternate).
    memo_counts_of: HashMap<u64, Vec<(u32, u32)>, KeyHash>,
}

/// A text a scanner has met, and the witnesses of the literals that occur in it.
struct MemoEntry {
    index: u64,
    scanner: u32,
    text: Box<str>,
    witnesses: Box<[u32]>,
}

/// Texts longer than this are scanned, never memoized (long texts seldom repeat).
const MEMO_TEXT: usize = 256;
/// Texts kept per thread; past it the memo starts afresh.
const MEMO_ENTRIES: usize = 16_384;
/// Lookups of a scanner before its hit rate decides whether memoizing its texts pays.
const MEMO_TRIAL: u32 = 512;
/// Indexes whose memo counts a thread keeps (past it, they start afresh).
const MEMO_INDEXES: usize = 1024;

/// The hasher of the tables looked up per event (event keys, memo keys): fast, and fixed so
/// that memo keys computed by `memo_key` stay valid.
type KeyHash = foldhash::fast::FixedState;

static INDEXES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

fn memo_key(index: u64, scanner: u32, text: &str) -> u64 {
    use std::hash::{BuildHasher, Hash, Hasher};
    let mut hasher = KeyHash::with_seed(0x5eed).build_hasher();
    index.hash(&mut hasher);
    scanner.hash(&mut hasher);
    text.hash(&mut hasher);
    hasher.finish()
}

impl IndexScratch {
    /// Starts a new event.
    pub(crate) fn next_generation(&mut self, rules: usize) {
        if self.generation == u32::MAX {
            self.witness_stamp.fill(0);
            self.rule_clauses.fill((0, 0));
            self.generation = 0;
        }
        if self.rule_clauses.len() < rules {
            self.rule_clauses.resize(rules, (0, 0));
        }
        self.generation += 1;
        self.present.clear();
    }

    fn fit(&mut self, index: &RuleIndex) {
        if self.witness_stamp.len() < index.witness_rules.len() {
            self.witness_stamp.resize(index.witness_rules.len(), 0);
        }
        if self.memo_index != index.id {
            if self.memo_counts_of.len() >= MEMO_INDEXES {
                self.memo_counts_of.clear();
            }
            let left = std::mem::take(&mut self.memo_counts);
            self.memo_counts_of.insert(self.memo_index, left);
            self.memo_counts = self
                .memo_counts_of
                .remove(&index.id)
                .unwrap_or_else(|| vec![(0, 0); index.scanners.len()]);
            self.memo_index = index.id;
        }
    }
}

/// A literal of a field and the (rule, clause) pairs it satisfies.
type FieldLiteral = (String, Vec<(u32, u8)>);

/// The number the scanner of keyword literals is built under (no field has it).
const KEYWORD_FIELD: u32 = u32::MAX;

/// Objects nested deeper than this are not searched for keys (nor found by field names).
const MAX_DEPTH: usize = 16;

/// Where `DefaultFieldSource` looks a plain name up first, in its order: the top level, then
/// the nesting spots. The rank of a key found directly in the object at `path`, or `None` when
/// that object is none of them (then `DefaultFieldSource` itself resolves the name: names
/// without their spaces, Windows attributes and `Event.UserData` come after every spot).
fn rank_of(path: &[&str]) -> Option<u8> {
    Some(match path {
        [] => 0,
        ["Event", "EventData"] => 2,
        ["Event", "System"] => 4,
        ["EventData"] => 6,
        ["System"] => 8,
        ["fields"] => 10,
        _ => return None,
    })
}

fn visit_fields(rule: &mut CompiledRule, mut visit: impl FnMut(&mut FieldMatcher)) {
    for search in &mut rule.searches {
        for map in &mut search.maps {
            for matcher in map {
                visit(matcher);
            }
        }
    }
}

/// The keys under which `DefaultFieldSource` may find a field: the name itself, the last part
/// of a dotted name, the attribute of a Windows `Element_Attribute` name.
fn keys_of(name: &str) -> Vec<String> {
    let mut keys = vec![name.to_owned()];
    if let Some((_, last)) = name.rsplit_once('.') {
        keys.push(last.to_owned());
    }
    if let Some((_, attribute)) = name.split_once('_') {
        keys.push(attribute.to_owned());
    }
    keys.sort();
    keys.dedup();
    keys
}

impl FieldTable {
    /// Numbers the fields of `rules`, setting each `FieldMatcher::slot`.
    pub(crate) fn number(rules: &mut [CompiledRule]) -> FieldTable {
        let mut names: Vec<String> = Vec::new();
        let mut number: HashMap<String, u32> = HashMap::new();
        for rule in rules.iter_mut() {
            visit_fields(rule, |matcher| {
                if let Some(name) = &matcher.field {
                    matcher.slot = *number.entry(name.clone()).or_insert_with(|| {
                        names.push(name.clone());
                        (names.len() - 1) as u32
                    });
                }
            });
        }
        let mut by_key: HashMap<String, Vec<(u32, bool)>, KeyHash> = HashMap::default();
        for (id, name) in (0u32..).zip(&names) {
            for key in keys_of(name) {
                let direct = !name.contains('.') && key == *name;
                by_key.entry(key).or_default().push((id, direct));
            }
        }
        FieldTable { names, by_key }
    }

    pub(crate) fn names(&self) -> &[String] {
        &self.names
    }

    fn number_of(&self, name: &str) -> Option<u32> {
        self.by_key
            .get(name)?
            .iter()
            .map(|(id, _)| *id)
            .find(|&id| self.names[id as usize] == name)
    }

    /// One walk over the event's keys: which fields it may carry (listed in
    /// `scratch.present`), and where the walk can tell, their values. `next_generation` must
    /// have started the event.
    pub(crate) fn walk<'e>(
        &self,
        event: &'e Value,
        scratch: &mut IndexScratch,
    ) -> Vec<SlotState<'e>> {
        let mut states = vec![SlotState::Absent; self.names.len()];
        let mut path: Vec<&str> = Vec::with_capacity(MAX_DEPTH);
        self.walk_object(event, &mut path, &mut states, scratch);
        states
    }

    fn walk_object<'e>(
        &self,
        value: &'e Value,
        path: &mut Vec<&'e str>,
        states: &mut [SlotState<'e>],
        scratch: &mut IndexScratch,
    ) {
        let Value::Object(map) = value else {
            return;
        };
        if path.len() > MAX_DEPTH {
            return;
        }
        let rank = rank_of(path);
        for (key, inner) in map {
            self.mark(key, Some(inner).zip(rank), states, scratch);
            if key.contains(' ') {
                self.mark(&key.replace(' ', ""), None, states, scratch);
            }
            if inner.is_object() {
                path.push(key);
                self.walk_object(inner, path, states, scratch);
                path.pop();
            }
        }
    }

    fn mark<'e>(
        &self,
        key: &str,
        placed: Option<(&'e Value, u8)>,
        states: &mut [SlotState<'e>],
        scratch: &mut IndexScratch,
    ) {
        let Some(ids) = self.by_key.get(key) else {
            return;
        };
        for &(id, plain) in ids {
            let i = id as usize;
            let direct = placed.filter(|_| plain);
            match (&mut states[i], direct) {
                (state @ SlotState::Absent, _) => {
                    *state = SlotState::Present(direct.map(|(v, r)| (r, v)));
                    scratch.present.push(id);
                }
                (SlotState::Present(current), Some((value, rank)))
                    if current.is_none_or(|(known, _)| rank < known) =>
                {
                    *current = Some((rank, value));
                }
                _ => {}
            }
        }
    }
}

/// The witness clauses of every rule of a list, computed once.
pub(crate) fn all_clauses(rules: &[CompiledRule]) -> Vec<Vec<Witness>> {
    rules.iter().map(rule_clauses).collect()
}

impl RuleIndex {
    /// Indexes the rules of the list that `wanted` selects, from their clauses.
    pub(crate) fn build(
        table: &FieldTable,
        clauses: &[Vec<Witness>],
        wanted: impl Fn(u32) -> bool,
    ) -> RuleIndex {
        let mut always = Vec::new();
        let mut full = vec![0u8; clauses.len()];
        // field → literal → (rule, clause), in first-seen order for stable numbering
        let mut fields: Vec<(u32, Vec<FieldLiteral>)> = Vec::new();
        let mut field_position: HashMap<u32, usize> = HashMap::new();
        let mut literal_number: HashMap<(usize, &str), usize> = HashMap::new();
        for (rule_number, rule_clauses) in (0u32..).zip(clauses) {
            if !wanted(rule_number) {
                continue;
            }
            if rule_clauses.is_empty() {
                always.push(rule_number);
                continue;
            }
            full[rule_number as usize] = ((1u16 << rule_clauses.len()) - 1) as u8;
            for (clause, witness) in (0u8..).zip(rule_clauses) {
                for (field, literal) in witness {
                    let id = if field == KEYWORDS {
                        KEYWORD_FIELD
                    } else {
                        table
                            .number_of(field)
                            .expect("invariant: every witness field is numbered")
                    };
                    let f = *field_position.entry(id).or_insert_with(|| {
                        fields.push((id, Vec::new()));
                        fields.len() - 1
                    });
                    let literals = &mut fields[f].1;
                    let l = *literal_number
                        .entry((f, literal.as_str()))
                        .or_insert_with(|| {
                            literals.push((literal.clone(), Vec::new()));
                            literals.len() - 1
                        });
                    let owners = &mut literals[l].1;
                    if !owners.contains(&(rule_number, clause)) {
                        owners.push((rule_number, clause));
                    }
                }
            }
        }
        let mut scanner_of = vec![None; table.names.len()];
        let mut keyword_scanner = None;
        let mut scanners = Vec::with_capacity(fields.len());
        let mut witness_rules = Vec::new();
        for (scanner_number, (field, literals)) in (0u32..).zip(fields) {
            let automaton = AhoCorasickBuilder::new()
                .match_kind(MatchKind::Standard)
                // (a rare-byte prefilter finds its bytes everywhere in hashes and GUIDs)
                .prefilter(false)
                .build(literals.iter().map(|(l, _)| l.as_bytes()))
                .expect("invariant: literal automata are small enough to build");
            let numbers = literals.iter().any(|(l, _)| fits_number(l));
            let joinable = !literals.iter().any(|(l, _)| l.contains(SEPARATOR));
            let mut witness_of_pattern = Vec::with_capacity(literals.len());
            for (_, owners) in literals {
                witness_of_pattern.push(witness_rules.len() as u32);
                witness_rules.push(owners);
            }
            if field == KEYWORD_FIELD {
                keyword_scanner = Some(scanner_number);
            } else {
                scanner_of[field as usize] = Some(scanner_number);
            }
            scanners.push(Scanner {
                field,
                automaton,
                witness_of_pattern,
                numbers,
                joinable,
            });
        }
        RuleIndex {
            id: INDEXES.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            scanner_of,
            keyword_scanner,
            scanners,
            witness_rules,
            full,
            always,
        }
    }

    /// Rules that need no literal to match.
    pub(crate) fn always(&self) -> &[u32] {
        &self.always
    }

    /// Adds to `out` the rules (other than `always`) whose clauses all saw one of their
    /// literals, each once. `FieldTable::walk` must have run on the same event and scratch.
    pub(crate) fn candidates(
        &self,
        table: &FieldTable,
        view: &EventView<'_, '_>,
        scratch: &mut IndexScratch,
        out: &mut Vec<u32>,
    ) {
        scratch.fit(self);
        for position in 0..scratch.present.len() {
            let field = scratch.present[position];
            let Some(number) = self.scanner_of[field as usize] else {
                continue;
            };
            let scanner = &self.scanners[number as usize];
            // A value the walk placed is scanned as it is: the field is resolved only if a
            // candidate rule reads it.
            match view.placed(scanner.field) {
                Some(Value::String(text)) if text.is_ascii() => {
                    self.scan_field(number, text, scratch, out);
                    continue;
                }
                Some(Value::Number(_)) if !scanner.numbers => continue,
                _ => {}
            }
            let slot = view.slot_id(scanner.field, &table.names[scanner.field as usize]);
            for target in slot.targets() {
                self.scan(number, target, scratch, out);
            }
        }
        if let Some(number) = self.keyword_scanner {
            let scanner = &self.scanners[number as usize];
            if scanner.joinable {
                let mut text = std::mem::take(&mut scratch.text);
                text.clear();
                join_scalars(view.event(), &mut text, scanner.numbers, 0);
                text.make_ascii_lowercase();
                self.scan_text(scanner, &text, scratch, out, None);
                scratch.text = text;
            } else {
                for target in view.scalars().iter() {
                    self.scan(number, target, scratch, out);
                }
            }
        }
    }

    fn scan(
        &self,
        number: u32,
        target: &Target<'_>,
        scratch: &mut IndexScratch,
        out: &mut Vec<u32>,
    ) {
        let Some(raw) = target.raw.as_deref() else {
            return;
        };
        let scanner = &self.scanners[number as usize];
        if !scanner.numbers && target.value.is_number() {
            return;
        }
        let text = if raw.is_ascii() {
            raw
        } else {
            match target.lowered() {
                Some(lowered) => lowered,
                None => return,
            }
        };
        self.scan_field(number, text, scratch, out);
    }

    /// `scan_text` on `text` with its ASCII letters lowered (the literals are lowered, and
    /// the automata match bytes as they are, which keeps them small).
    fn scan_lowered(
        &self,
        scanner: &Scanner,
        text: &str,
        scratch: &mut IndexScratch,
        out: &mut Vec<u32>,
        found: Option<&mut Vec<u32>>,
    ) {
        let lowered = ascii_lowered(text, &mut scratch.lowered);
        self.scan_text(scanner, &lowered, scratch, out, found);
        scratch.lowered = lowered;
    }

    /// Marks the witnesses whose literal occurs in `text`, which must be lowered, and adds to
    /// `out` the rules this completes; lists each witness once in `found` when asked, also
    /// those this event had already seen elsewhere.
    fn scan_text(
        &self,
        scanner: &Scanner,
        text: &str,
        scratch: &mut IndexScratch,
        out: &mut Vec<u32>,
        mut found: Option<&mut Vec<u32>>,
    ) {
        for hit in scanner.automaton.find_overlapping_iter(text) {
            let witness = scanner.witness_of_pattern[hit.pattern().as_usize()];
            self.saw(witness, scratch, out);
            if let Some(found) = found.as_deref_mut()
                && !found.contains(&witness)
            {
                found.push(witness);
            }
        }
    }

    /// `scan_text` for a field's text, through the memo: a text this scanner has met lately is
    /// not scanned again, its witnesses are replayed. Fields whose texts rarely repeat (hashes,
    /// GUIDs) stop being memoized, and are tried again now and then.
    fn scan_field(
        &self,
        scanner_number: u32,
        text: &str,
        scratch: &mut IndexScratch,
        out: &mut Vec<u32>,
    ) {
        let scanner = &self.scanners[scanner_number as usize];
        if text.len() > MEMO_TEXT {
            return self.scan_lowered(scanner, text, scratch, out, None);
        }
        let counts = &mut scratch.memo_counts[scanner_number as usize];
        let tried = counts.0 >= MEMO_TRIAL;
        if tried && counts.1 * 8 < counts.0 {
            // not worth it: count the skip so that the field is tried again later
            counts.0 += 1;
            if counts.0 >= MEMO_TRIAL * 16 {
                *counts = (0, 0);
            }
            return self.scan_lowered(scanner, text, scratch, out, None);
        }
        if tried && counts.0 >= MEMO_TRIAL * 4 {
            *counts = (counts.0 / 2, counts.1 / 2);
        }
        counts.0 += 1;
        let key = memo_key(self.id, scanner_number, text);
        let mut memo = std::mem::take(&mut scratch.memo);
        match memo.get(&key) {
            Some(entry)
                if entry.index == self.id
                    && entry.scanner == scanner_number
                    && *entry.text == *text =>
            {
                scratch.memo_counts[scanner_number as usize].1 += 1;
                for &witness in &entry.witnesses {
                    self.saw(witness, scratch, out);
                }
            }
            _ => {
                let mut witnesses = Vec::new();
                self.scan_lowered(scanner, text, scratch, out, Some(&mut witnesses));
                if memo.len() >= MEMO_ENTRIES {
                    memo.clear();
                }
                memo.insert(
                    key,
                    MemoEntry {
                        index: self.id,
                        scanner: scanner_number,
                        text: text.into(),
                        witnesses: witnesses.into(),
                    },
                );
            }
        }
        scratch.memo = memo;
    }

    /// Marks `witness` seen for this event and adds to `out` the rules this completes.
    fn saw(&self, witness: u32, scratch: &mut IndexScratch, out: &mut Vec<u32>) {
        let generation = scratch.generation;
        let stamp = &mut scratch.witness_stamp[witness as usize];
        if *stamp == generation {
            return;
        }
        *stamp = generation;
        for &(rule, clause) in &self.witness_rules[witness as usize] {
            let (stamp, mask) = &mut scratch.rule_clauses[rule as usize];
            if *stamp != generation {
                *stamp = generation;
                *mask = 0;
            }
            let before = *mask;
            *mask |= 1 << clause;
            let full = self.full[rule as usize];
            if *mask == full && before != full {
                out.push(rule);
            }
        }
    }
}

/// How many rules have clauses, and how many distinct (field, literal) pairs they name.
pub(crate) fn clause_stats(clauses: &[Vec<Witness>]) -> (usize, usize) {
    let indexed = clauses.iter().filter(|c| !c.is_empty()).count();
    let mut literals: Vec<&Literal> = clauses.iter().flatten().flatten().collect();
    literals.sort_unstable();
    literals.dedup();
    (indexed, literals.len())
}
