//! The compiled engine: a rule list with its literal index and its logsource routing, tested
//! against JSON documents.
//!
//! Per event: its logsource is derived once, and which rule logsources admit it is looked up
//! in a per-thread memo (events come in few logsource shapes); the literal index names the
//! candidate rules; each candidate whose logsource admits the event is evaluated on one
//! shared view of the event (each field resolved and lowered once). Results are those of
//! evaluating every admitted rule in full, in rule order — only cheaper.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;

use super::eval::{CompiledRule, EventView};
use super::index::{IndexScratch, RuleIndex};
use super::parse::LogSource;
use crate::rule::logsource::{EventLogSource, LogsourceMap};

static ENGINES: AtomicU64 = AtomicU64::new(1);

/// Compiled Sigma rules, indexed.
pub struct SigmaEngine {
    id: u64,
    /// How events are given their logsource (the built-in map unless the operator gave one).
    map: Arc<LogsourceMap>,
    rules: Vec<CompiledRule>,
    index: RuleIndex,
    /// The distinct logsources of the rules, and each rule's.
    logsources: Vec<LogSource>,
    logsource_of: Vec<u32>,
}

/// What the memo of admitted logsources is keyed by.
type LogsourceKey = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// For one event logsource: per rule logsource whether it admits the event, and the admitted
/// rules the index cannot rule out.
struct Admitted {
    mask: Vec<bool>,
    always: Vec<u32>,
}

#[derive(Default)]
struct Scratch {
    engine: u64,
    index: IndexScratch,
    admitted: HashMap<LogsourceKey, Rc<Admitted>>,
    candidates: Vec<u32>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Index statistics, for start-up reports and benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineStats {
    pub rules: usize,
    /// Rules the literal index can rule out.
    pub indexed: usize,
    /// Distinct (field, literal) pairs in the index.
    pub literals: usize,
    pub logsources: usize,
}

impl Default for SigmaEngine {
    fn default() -> Self {
        SigmaEngine::new(Vec::new())
    }
}

impl SigmaEngine {
    /// An engine routing events with the built-in logsource map.
    pub fn new(rules: Vec<CompiledRule>) -> SigmaEngine {
        SigmaEngine::with_logsource_map(rules, Arc::new(LogsourceMap::default_map().clone()))
    }

    /// An engine routing events with `map` (the operator's entries merged with the built-in
    /// ones, see `LogsourceMap::with_overrides`).
    pub fn with_logsource_map(mut rules: Vec<CompiledRule>, map: Arc<LogsourceMap>) -> SigmaEngine {
        let index = RuleIndex::build(&mut rules);
        let mut logsources: Vec<LogSource> = Vec::new();
        let mut logsource_of = Vec::with_capacity(rules.len());
        for rule in &rules {
            let wanted = &rule.rule.logsource;
            let position = match logsources.iter().position(|l| l == wanted) {
                Some(p) => p,
                None => {
                    logsources.push(wanted.clone());
                    logsources.len() - 1
                }
            };
            logsource_of.push(position as u32);
        }
        SigmaEngine {
            id: ENGINES.fetch_add(1, Ordering::Relaxed),
            map,
            rules,
            index,
            logsources,
            logsource_of,
        }
    }

    pub fn rules(&self) -> &[CompiledRule] {
        &self.rules
    }

    pub fn stats(&self) -> EngineStats {
        let (indexed, literals) = self.index.stats();
        EngineStats {
            rules: self.rules.len(),
            indexed,
            literals,
            logsources: self.logsources.len(),
        }
    }

    /// The rules matching `document` whose logsource admits it, in rule order.
    pub fn matching(&self, document: &Value) -> Vec<u32> {
        let mut out = Vec::new();
        if self.rules.is_empty() {
            return out;
        }
        let logsource = EventLogSource::with_map(document, &self.map);
        SCRATCH.with_borrow_mut(|scratch| {
            if scratch.engine != self.id {
                scratch.engine = self.id;
                scratch.admitted.clear();
            }
            let admitted = self.admitted(&logsource, scratch);
            let states = self
                .index
                .walk(document, self.rules.len(), &mut scratch.index);
            let view = EventView::indexed(document, self.index.names(), states);
            let mut candidates = std::mem::take(&mut scratch.candidates);
            candidates.clear();
            self.index
                .candidates(&view, &mut scratch.index, &mut candidates);
            for &rule in candidates.iter().chain(&admitted.always) {
                let i = rule as usize;
                if admitted.mask[self.logsource_of[i] as usize] && self.rules[i].matches_view(&view)
                {
                    out.push(rule);
                }
            }
            out.sort_unstable();
            scratch.candidates = candidates;
        });
        out
    }

    fn admitted(&self, logsource: &EventLogSource<'_>, scratch: &mut Scratch) -> Rc<Admitted> {
        let key: LogsourceKey = (
            logsource.product.clone(),
            logsource.category.clone(),
            logsource.service.clone(),
            logsource.channel.clone(),
        );
        if let Some(known) = scratch.admitted.get(&key) {
            return Rc::clone(known);
        }
        let mask: Vec<bool> = self
            .logsources
            .iter()
            .map(|wanted| logsource.admits(wanted))
            .collect();
        let always = self
            .index
            .always()
            .iter()
            .copied()
            .filter(|&rule| mask[self.logsource_of[rule as usize] as usize])
            .collect();
        let admitted = Rc::new(Admitted { mask, always });
        // Events that state their own logsource could make this grow without bound.
        if scratch.admitted.len() > 4096 {
            scratch.admitted.clear();
        }
        scratch.admitted.insert(key, Rc::clone(&admitted));
        admitted
    }
}
