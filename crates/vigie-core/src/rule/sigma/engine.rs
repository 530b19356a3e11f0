//! The compiled engine: a rule list with its literal indexes and its logsource routing, tested
//! against JSON documents.
//!
//! Per event: its logsource is derived once; the *route* of that logsource — which rule
//! logsources admit it, and a literal index over the admitted rules only — is looked up in a
//! per-thread memo, or built once for the engine (events come in few logsource shapes, so a
//! Sysmon process creation never scans the literals of Linux or proxy rules); the route's
//! index names the candidate rules; each candidate is evaluated on one shared view of the
//! event (each field resolved and lowered once). Results are those of evaluating every
//! admitted rule in full, in rule order — only cheaper.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use serde_json::Value;

use super::eval::{CompiledRule, EventView, Fnv};
use super::index::{FieldTable, IndexScratch, RuleIndex, all_clauses, clause_stats};
use super::parse::LogSource;
use crate::rule::logsource::{EventLogSource, LogsourceMap};

static ENGINES: AtomicU64 = AtomicU64::new(1);

/// What routes are keyed by: the derived logsource's four parts.
type LogsourceKey = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// Routes kept per engine; events that state arbitrary logsources could otherwise make the
/// cache grow without bound (past it, routes are built per thread and not shared).
const MAX_ROUTES: usize = 256;

/// Compiled Sigma rules, indexed.
pub struct SigmaEngine {
    id: u64,
    /// How events are given their logsource: the operator's map, or the built-in one.
    map: Option<Arc<LogsourceMap>>,
    rules: Vec<CompiledRule>,
    table: FieldTable,
    /// Per rule, its witness clauses (see `index`).
    clauses: Vec<Vec<Vec<(String, String)>>>,
    /// The distinct logsources of the rules, and each rule's.
    logsources: Vec<LogSource>,
    logsource_of: Vec<u32>,
    routes: RwLock<HashMap<LogsourceKey, Arc<Route>>>,
}

/// For one event logsource: the index of the rules whose logsource admits it.
struct Route {
    index: RuleIndex,
}

#[derive(Default)]
struct Scratch {
    engine: u64,
    index: IndexScratch,
    /// Routes met by this thread, by the hash of their key.
    routes: HashMap<u64, Vec<(LogsourceKey, Arc<Route>)>>,
    candidates: Vec<u32>,
}

fn same(key: &LogsourceKey, parts: &[Option<&str>; 4]) -> bool {
    key.0.as_deref() == parts[0]
        && key.1.as_deref() == parts[1]
        && key.2.as_deref() == parts[2]
        && key.3.as_deref() == parts[3]
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
        SigmaEngine::build(rules, None)
    }

    /// An engine routing events with `map` (the operator's entries merged with the built-in
    /// ones, see `LogsourceMap::with_overrides`).
    pub fn with_logsource_map(rules: Vec<CompiledRule>, map: Arc<LogsourceMap>) -> SigmaEngine {
        SigmaEngine::build(rules, Some(map))
    }

    fn build(mut rules: Vec<CompiledRule>, map: Option<Arc<LogsourceMap>>) -> SigmaEngine {
        let table = FieldTable::number(&mut rules);
        let clauses = all_clauses(&rules);
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
            table,
            clauses,
            logsources,
            logsource_of,
            routes: RwLock::new(HashMap::new()),
        }
    }

    pub fn rules(&self) -> &[CompiledRule] {
        &self.rules
    }

    pub fn stats(&self) -> EngineStats {
        let (indexed, literals) = clause_stats(&self.clauses);
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
        let map = self
            .map
            .as_deref()
            .unwrap_or_else(|| LogsourceMap::default_map());
        let logsource = EventLogSource::with_map(document, map);
        SCRATCH.with_borrow_mut(|scratch| {
            if scratch.engine != self.id {
                scratch.engine = self.id;
                scratch.routes.clear();
            }
            let route = self.route(&logsource, scratch);
            scratch.index.next_generation(self.rules.len());
            let states = self.table.walk(document, &mut scratch.index);
            let view = EventView::indexed(document, self.table.names(), states);
            let mut candidates = std::mem::take(&mut scratch.candidates);
            candidates.clear();
            route
                .index
                .candidates(&self.table, &view, &mut scratch.index, &mut candidates);
            for &rule in candidates.iter().chain(route.index.always()) {
                if self.rules[rule as usize].matches_view(&view) {
                    out.push(rule);
                }
            }
            out.sort_unstable();
            scratch.candidates = candidates;
        });
        out
    }

    fn route(&self, logsource: &EventLogSource<'_>, scratch: &mut Scratch) -> Arc<Route> {
        let parts = [
            logsource.product.as_deref(),
            logsource.category.as_deref(),
            logsource.service.as_deref(),
            logsource.channel.as_deref(),
        ];
        let hash = {
            let mut hasher = Fnv::default();
            parts.hash(&mut hasher);
            hasher.finish()
        };
        if let Some((_, known)) = scratch
            .routes
            .get(&hash)
            .and_then(|found| found.iter().find(|(key, _)| same(key, &parts)))
        {
            return Arc::clone(known);
        }
        let key: LogsourceKey = (
            logsource.product.clone(),
            logsource.category.clone(),
            logsource.service.clone(),
            logsource.channel.clone(),
        );
        let shared = self
            .routes
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&key)
            .cloned();
        let route = shared.unwrap_or_else(|| {
            let mask: Vec<bool> = self
                .logsources
                .iter()
                .map(|wanted| logsource.admits(wanted))
                .collect();
            let index = RuleIndex::build(&self.table, &self.clauses, |rule| {
                mask[self.logsource_of[rule as usize] as usize]
            });
            let route = Arc::new(Route { index });
            let mut routes = self
                .routes
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if routes.len() < MAX_ROUTES {
                Arc::clone(routes.entry(key.clone()).or_insert(route))
            } else {
                route
            }
        });
        if scratch.routes.len() >= MAX_ROUTES {
            scratch.routes.clear();
        }
        scratch
            .routes
            .entry(hash)
            .or_default()
            .push((key, Arc::clone(&route)));
        route
    }
}
