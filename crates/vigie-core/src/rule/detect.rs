//! Sigma rules applied to Vigie events in the pipeline: which rules an event is tested
//! against (its logsource), the document the rules see, and the alert signal a match raises.
//! A match's signal carries the rule's id, title, level, tags and author — the DRL licence of
//! the public rules requires the author on every alert they produce.
//!
//! Per client: a rule compiled for one client (its `expand` placeholders resolved with that
//! client's values) is reported for that client's events only, and a match stands only if
//! every filter that tunes the rule, is scoped to the event's client (or to all) and whose
//! logsource admits the event, holds for it. Invariant: one client's placeholder values and
//! filters never change what another client's events match.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::alert::Fnv1a;
use crate::event::{Event, Severity};
use crate::incident::model::AlertSignal;
use crate::rule::correlation::{
    CorrelationEngine, CorrelationLimits, CorrelationMatch, CorrelationRule,
};
pub use crate::rule::logsource::EventLogSource;
use crate::rule::logsource::LogsourceMap;
use crate::rule::sigma::{
    CompiledFilter, CompiledRule, DefaultFieldSource, FieldSource, RuleSet, SigmaEngine, SigmaLevel,
};

/// Compiled Sigma rules and correlation rules, ready for the pipeline.
pub struct DetectionSet {
    /// Every compiled rule: first those for every client, then the per-client copies.
    engine: SigmaEngine,
    /// The map the engine routes events with; filters are admitted with it too.
    map: Arc<LogsourceMap>,
    /// Per rule: whether a match alerts by itself (not when a correlation uses the rule
    /// without `generate: true`).
    alone: Vec<bool>,
    correlations: Vec<CorrelationRule>,
    /// How many rules (from the first) apply to every client.
    shared: usize,
    /// Per per-client copy (rule `shared + i`), its client.
    owners: Vec<Box<str>>,
    /// How many distinct rules the per-client copies come from.
    per_client: usize,
    filters: Vec<CompiledFilter>,
    /// Per rule, the filters that tune it (empty when there are no filters).
    filters_of: Vec<Vec<u32>>,
    filter_count: usize,
}

impl Default for DetectionSet {
    fn default() -> Self {
        DetectionSet::new(RuleSet::default())
    }
}

/// The JSON document rules are evaluated against: the event's fields at the top level, beside
/// `message`, `client`, `asset`, `source`, `kind` and `severity`.
pub fn event_document(event: &Event) -> Value {
    let mut document: Map<String, Value> = event.fields.clone();
    document.insert("message".into(), Value::String(event.message.clone()));
    document.insert("client".into(), Value::String(event.client.clone()));
    if let Some(asset) = &event.asset {
        document.insert("asset".into(), Value::String(asset.clone()));
    }
    document.insert("source".into(), Value::String(event.source.clone()));
    document.insert("kind".into(), Value::String(event.kind.clone()));
    document.insert(
        "severity".into(),
        Value::String(event.severity.as_str().into()),
    );
    Value::Object(document)
}

/// The alert severity of a Sigma level.
pub fn severity_of(level: Option<SigmaLevel>) -> Severity {
    match level {
        Some(SigmaLevel::Critical) => Severity::Critical,
        Some(SigmaLevel::High) => Severity::Error,
        Some(SigmaLevel::Medium) | None => Severity::Warning,
        Some(SigmaLevel::Low) => Severity::Notice,
        Some(SigmaLevel::Informational) => Severity::Info,
    }
}

fn level_name(level: Option<SigmaLevel>) -> &'static str {
    match level {
        Some(SigmaLevel::Critical) => "critical",
        Some(SigmaLevel::High) => "high",
        Some(SigmaLevel::Medium) => "medium",
        Some(SigmaLevel::Low) => "low",
        Some(SigmaLevel::Informational) => "informational",
        None => "unknown",
    }
}

impl DetectionSet {
    /// The rules of `set`, events routed with `set.logsource_map` (the built-in map when the
    /// set has none).
    pub fn new(mut set: RuleSet) -> DetectionSet {
        let map = set
            .logsource_map
            .take()
            .unwrap_or_else(|| Arc::new(LogsourceMap::default_map().clone()));
        DetectionSet::with_logsource_map(set, map)
    }

    /// The rules of `set`, events routed with `map` (the operator's entries merged with the
    /// built-in ones, see `LogsourceMap::with_overrides`).
    pub fn with_logsource_map(set: RuleSet, map: Arc<LogsourceMap>) -> DetectionSet {
        let alone_of = |rule: &CompiledRule| set.alerts_alone(rule);
        let mut alone: Vec<bool> = set.rules.iter().map(alone_of).collect();
        let shared = set.rules.len();
        let mut owners = Vec::new();
        let mut copies = Vec::new();
        for per_client in &set.per_client {
            for (client, compiled) in &per_client.variants {
                alone.push(alone_of(compiled));
                owners.push(client.as_str().into());
                copies.push(compiled.clone());
            }
        }
        let filter_count = set.filter_count();
        let per_client = set.per_client.len();
        let mut rules = set.rules;
        rules.extend(copies);
        let filters = set.filters;
        let filters_of = if filters.is_empty() {
            Vec::new()
        } else {
            rules
                .iter()
                .map(|compiled| {
                    (0..filters.len() as u32)
                        .filter(|&f| filters[f as usize].targets(&compiled.rule))
                        .collect()
                })
                .collect()
        };
        DetectionSet {
            engine: SigmaEngine::with_logsource_map(rules, Arc::clone(&map)),
            map,
            alone,
            correlations: set.correlations,
            shared,
            owners,
            per_client,
            filters,
            filters_of,
            filter_count,
        }
    }

    /// Detection rules and correlation rules (a rule compiled per client counts once).
    pub fn len(&self) -> usize {
        self.shared + self.per_client + self.correlations.len()
    }

    /// The filter documents in use (a filter compiled for several clients counts once).
    pub fn filter_count(&self) -> usize {
        self.filter_count
    }

    /// The client a rule (by index) was compiled for; `None` for a rule of every client.
    pub fn owner(&self, rule: u32) -> Option<&str> {
        let index = (rule as usize).checked_sub(self.shared)?;
        self.owners.get(index).map(|owner| &**owner)
    }

    pub fn is_empty(&self) -> bool {
        self.engine.rules().is_empty()
    }

    /// A correlation engine for these rules; the caller owns its state (one per pipeline).
    pub fn correlation_engine(&self, limits: CorrelationLimits) -> CorrelationEngine {
        // A per-client copy keeps its rule's id and name: to correlations it is that rule.
        let base = self
            .engine
            .rules()
            .iter()
            .map(|compiled| (compiled.rule.id.clone(), compiled.rule.name.clone()));
        CorrelationEngine::new(self.correlations.clone(), base, limits)
    }

    /// The rules (by index) that match an event: the stateless part of detection, which
    /// callers may run in parallel, before the ordered part (`signals`).
    pub fn matching_rules(&self, event: &Event) -> Vec<u32> {
        if self.engine.rules().is_empty() {
            return Vec::new();
        }
        self.matching_document(&event_document(event))
    }

    /// The indices of the rules that match a JSON document (an event's document, or a record
    /// as `vigie hunt` reads it), each tested only if its logsource admits the document. A rule
    /// compiled for a client matches only documents whose `client` is that client; a match
    /// stands only if every filter tuning the rule for this client, and whose logsource admits
    /// the document, holds.
    pub fn matching_document(&self, document: &Value) -> Vec<u32> {
        let mut matched = self.engine.matching(document);
        if matched.is_empty() || (self.owners.is_empty() && self.filters.is_empty()) {
            return matched;
        }
        let client = document.get("client").and_then(Value::as_str);
        let mut logsource: Option<EventLogSource<'_>> = None;
        matched.retain(|&rule| {
            if rule as usize >= self.shared && self.owner(rule) != client {
                return false;
            }
            let Some(filters) = self.filters_of.get(rule as usize) else {
                return true;
            };
            filters.iter().all(|&index| {
                let filter = &self.filters[index as usize];
                if !filter.applies_to_client(client) {
                    return true;
                }
                let admitted = logsource
                    .get_or_insert_with(|| EventLogSource::with_map(document, &self.map))
                    .admits(filter.logsource());
                !admitted || filter.holds(document)
            })
        });
        matched
    }

    /// The compiled single-event rules, in the order `matching_document` numbers them.
    pub fn rules(&self) -> &[CompiledRule] {
        self.engine.rules()
    }

    /// The signals of an event whose matching rules are known: one per rule that alerts by
    /// itself, and one per correlation whose condition the matches complete. Correlation state
    /// is ordered: call this in the order the events are committed.
    pub fn signals(
        &self,
        correlation: &mut CorrelationEngine,
        event: &Event,
        matched: &[u32],
        event_id: Option<i64>,
        criticality: Option<u8>,
    ) -> Vec<AlertSignal> {
        if matched.is_empty() {
            return Vec::new();
        }
        let document = event_document(event);
        let mut signals = Vec::new();
        for compiled_index in matched {
            let index = *compiled_index as usize;
            let (Some(compiled), Some(alone)) =
                (self.engine.rules().get(index), self.alone.get(index))
            else {
                continue;
            };
            if *alone {
                signals.push(signal(compiled, &document, event, event_id, criticality));
            }
            if !self.correlations.is_empty() {
                let rule = &compiled.rule;
                let reference = rule
                    .id
                    .as_deref()
                    .or(rule.name.as_deref())
                    .unwrap_or(&rule.title);
                for matched in
                    correlation.observe(&event.client, reference, &document, event.time_ms)
                {
                    signals.push(correlation_signal(
                        &matched,
                        event.asset.as_deref(),
                        event_id,
                        criticality,
                    ));
                }
            }
        }
        signals
    }

    /// `matching_rules` then `signals`, for callers that need no parallel stage.
    pub fn detect(
        &self,
        correlation: &mut CorrelationEngine,
        event: &Event,
        event_id: Option<i64>,
        criticality: Option<u8>,
    ) -> Vec<AlertSignal> {
        let matched = self.matching_rules(event);
        self.signals(correlation, event, &matched, event_id, criticality)
    }
}

/// The signal of a correlation whose condition held: one alert per correlation and group, its
/// labels saying which group, what value crossed the condition, and over what time.
pub fn correlation_signal(
    matched: &CorrelationMatch,
    asset: Option<&str>,
    event_id: Option<i64>,
    criticality: Option<u8>,
) -> AlertSignal {
    let rule_id = matched
        .correlation_id
        .clone()
        .or_else(|| matched.correlation_name.clone())
        .unwrap_or_else(|| matched.title.clone());
    let mut hasher = Fnv1a::default();
    hasher.write(b"sigma-correlation\xff");
    hasher.write(rule_id.as_bytes());
    for (field, value) in &matched.group {
        hasher.write(&[0xff]);
        hasher.write(field.as_bytes());
        hasher.write(&[0xfe]);
        hasher.write(value.as_bytes());
    }
    let group: Map<String, Value> = matched
        .group
        .iter()
        .map(|(f, v)| (f.clone(), json!(v)))
        .collect();
    let mut labels = Map::new();
    labels.insert("engine".into(), json!("sigma-correlation"));
    labels.insert("level".into(), json!(level_name(matched.level)));
    labels.insert(
        "author".into(),
        json!(matched.author.clone().unwrap_or_default()),
    );
    labels.insert("tags".into(), json!(matched.tags));
    labels.insert("group".into(), Value::Object(group));
    labels.insert("value".into(), json!(matched.value));
    labels.insert("first_ms".into(), json!(matched.first_ms));
    labels.insert("last_ms".into(), json!(matched.last_ms));
    AlertSignal {
        client: matched.client.clone(),
        fingerprint: format!("{:016x}", hasher.0),
        rule: rule_id,
        title: matched.title.clone(),
        severity: severity_of(matched.level),
        asset: asset.map(str::to_owned),
        source: "sigma".into(),
        kind: "correlation".into(),
        criticality,
        event_id,
        time_ms: matched.last_ms,
        labels,
    }
}

/// The hosts a lateral movement goes from and to, as the event names them: the source is the
/// remote address or workstation of a logon, the target the computer that logged it (or the
/// event's asset). Drawing the attack's spread starts from these.
fn lateral_hosts(document: &Value, event: &Event) -> Value {
    let text = |names: &[&str]| {
        names.iter().find_map(|name| {
            DefaultFieldSource
                .field(document, name)
                .and_then(|v| {
                    v.as_str()
                        .map(str::to_owned)
                        .or_else(|| v.get("#text").and_then(Value::as_str).map(str::to_owned))
                })
                .filter(|v| !v.is_empty() && v != "-")
        })
    };
    json!({
        "source": text(&["IpAddress", "WorkstationName", "SourceHostname", "SourceIp"]),
        "target": text(&["Computer"]).or_else(|| event.asset.clone()),
    })
}

fn signal(
    compiled: &CompiledRule,
    document: &Value,
    event: &Event,
    event_id: Option<i64>,
    criticality: Option<u8>,
) -> AlertSignal {
    let rule = &compiled.rule;
    let rule_id = rule.id.clone().unwrap_or_else(|| rule.title.clone());
    // One alert per rule and asset: repeats of the same detection on the same asset count up.
    let mut hasher = Fnv1a::default();
    hasher.write(b"sigma\xff");
    hasher.write(rule_id.as_bytes());
    hasher.write(&[0xff]);
    hasher.write(event.asset.as_deref().unwrap_or("").as_bytes());
    let mut labels = Map::new();
    labels.insert("engine".into(), json!("sigma"));
    labels.insert("level".into(), json!(level_name(rule.level)));
    labels.insert(
        "author".into(),
        json!(rule.author.clone().unwrap_or_default()),
    );
    labels.insert("tags".into(), json!(rule.tags));
    labels.insert("rule_path".into(), json!(compiled.path));
    if rule
        .tags
        .iter()
        .any(|tag| tag.eq_ignore_ascii_case("attack.lateral-movement"))
    {
        labels.insert("lateral_movement".into(), lateral_hosts(document, event));
    }
    AlertSignal {
        client: event.client.clone(),
        fingerprint: format!("{:016x}", hasher.0),
        rule: rule_id,
        title: rule.title.clone(),
        severity: severity_of(rule.level),
        asset: event.asset.clone(),
        source: event.source.clone(),
        kind: event.kind.clone(),
        criticality,
        event_id,
        time_ms: event.time_ms,
        labels,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use serde_json::json;

    use super::*;
    use crate::event::event_from_json;
    use crate::rule::sigma::LogSource;
    use crate::rule::sigma::load_rules;

    fn rules(yaml: &str) -> DetectionSet {
        let set = load_rules(
            &[("pack/test.yml".to_owned(), yaml.to_owned())],
            &HashMap::new(),
        );
        assert!(set.rejected.is_empty(), "{:?}", set.rejected);
        DetectionSet::new(set)
    }

    fn detect(
        set: &DetectionSet,
        event: &Event,
        id: Option<i64>,
        criticality: Option<u8>,
    ) -> Vec<AlertSignal> {
        let mut engine = set.correlation_engine(CorrelationLimits::default());
        set.detect(&mut engine, event, id, criticality)
    }

    const VSSADMIN: &str = "title: Shadow copies deleted\nid: 11111111-2222-3333-4444-555555555555\nauthor: Vigie\nlevel: critical\n\
        tags: [attack.impact, attack.t1490]\nlogsource: {product: windows, category: process_creation}\n\
        detection:\n  selection:\n    Image|endswith: '\\vssadmin.exe'\n    CommandLine|contains|all: [delete, shadows]\n  condition: selection\n";

    fn event(value: serde_json::Value) -> Event {
        event_from_json(value, 1_000, "http").unwrap()
    }

    #[test]
    fn a_match_raises_a_signal_with_the_rules_metadata_and_author() {
        let set = rules(VSSADMIN);
        let hit = event(
            json!({"client": "acme", "asset": "srv-1", "message": "process created",
            "Event": {"System": {"EventID": 1}, "EventData": {"Image": "C:\\Windows\\System32\\vssadmin.exe", "CommandLine": "vssadmin Delete Shadows /all /quiet"}}}),
        );
        let signals = detect(&set, &hit, Some(7), Some(5));
        assert_eq!(signals.len(), 1);
        let signal = &signals[0];
        assert_eq!(signal.rule, "11111111-2222-3333-4444-555555555555");
        assert_eq!(signal.title, "Shadow copies deleted");
        assert_eq!(signal.severity, Severity::Critical);
        assert_eq!((signal.event_id, signal.criticality), (Some(7), Some(5)));
        assert_eq!(signal.labels["author"], "Vigie");
        assert_eq!(signal.labels["level"], "critical");
        assert_eq!(
            signal.labels["tags"],
            json!(["attack.impact", "attack.t1490"])
        );
        // The same detection on the same asset is the same alert; on another asset, another.
        let again = detect(&set, &hit, Some(8), Some(5));
        assert_eq!(again[0].fingerprint, signal.fingerprint);
        let mut elsewhere = hit.clone();
        elsewhere.asset = Some("srv-2".into());
        assert_ne!(
            detect(&set, &elsewhere, None, None)[0].fingerprint,
            signal.fingerprint
        );
    }

    #[test]
    fn an_event_of_another_stated_product_is_not_tested() {
        let set = rules(VSSADMIN);
        let linux = event(json!({"client": "acme", "message": "m", "product": "linux",
            "Image": "/tmp/vssadmin.exe", "CommandLine": "delete shadows"}));
        assert!(detect(&set, &linux, None, None).is_empty());
        let unstated = event(json!({"client": "acme", "message": "m",
            "Image": "C:\\vssadmin.exe", "CommandLine": "delete shadows"}));
        assert_eq!(
            detect(&set, &unstated, None, None).len(),
            1,
            "an event that states no product is tested"
        );
        let benign = event(
            json!({"client": "acme", "message": "m", "Image": "C:\\vssadmin.exe", "CommandLine": "list shadows"}),
        );
        assert!(detect(&set, &benign, None, None).is_empty());
    }

    #[test]
    fn a_lateral_movement_names_its_source_and_target_hosts() {
        let set = rules(
            "title: Remote logon\nid: lm-1\nauthor: Vigie\nlevel: medium\ntags: [attack.lateral-movement]\n\
            logsource: {product: windows, service: security}\ndetection:\n  selection:\n    EventID: 4624\n    LogonType: 3\n  condition: selection\n",
        );
        let logon = event(
            json!({"client": "acme", "asset": "lyo-fs01", "message": "logon",
            "Event": {"System": {"EventID": 4624, "Computer": "lyo-fs01.acme.lan"},
                      "EventData": {"LogonType": 3, "IpAddress": "127.0.10.20", "WorkstationName": "LYO-ERP-APP01"}}}),
        );
        let signals = detect(&set, &logon, None, None);
        assert_eq!(
            signals[0].labels["lateral_movement"],
            json!({"source": "127.0.10.20", "target": "lyo-fs01.acme.lan"})
        );
    }

    #[test]
    fn a_burst_raises_one_correlation_alert_and_no_base_alerts() {
        let set = rules(
            "title: File renamed\nname: file_renamed\nid: base-1\nlogsource: {category: file_rename}\n\
            detection:\n  selection:\n    TargetFilename|exists: true\n  condition: selection\n---\n\
            title: Mass file renaming\nid: corr-1\nauthor: Vigie\nlevel: critical\n\
            correlation:\n  type: event_count\n  rules: [file_renamed]\n  group-by: [asset]\n  timespan: 1m\n  condition: {gte: 5}\n",
        );
        let mut engine = set.correlation_engine(CorrelationLimits::default());
        let mut raised = Vec::new();
        for i in 0..7 {
            let mut renamed = event(
                json!({"client": "acme", "asset": "srv-1", "message": "renamed", "TargetFilename": format!("C:\\data\\{i}.docx.locked")}),
            );
            renamed.time_ms = 1_000 + i * 1_000;
            raised.extend(set.detect(&mut engine, &renamed, Some(i), Some(4)));
        }
        assert_eq!(raised.len(), 1, "{raised:#?}");
        assert_eq!(raised[0].title, "Mass file renaming");
        assert_eq!(raised[0].labels["group"], json!({"asset": "srv-1"}));
        assert_eq!(raised[0].labels["value"], json!(5.0));
        assert_eq!(raised[0].labels["author"], "Vigie");
        assert_eq!(raised[0].severity, Severity::Critical);
    }

    #[test]
    fn windows_channels_and_event_ids_route_rules() {
        let logsource = |category: Option<&str>, service: Option<&str>| LogSource {
            product: Some("windows".into()),
            category: category.map(str::to_owned),
            service: service.map(str::to_owned),
            definition: None,
        };
        let sysmon = |id: i64| {
            EventLogSource::of(
                &json!({"Event": {"System": {"Channel": "Microsoft-Windows-Sysmon/Operational", "EventID": id}}}),
            )
        };
        let security = |id: i64| {
            EventLogSource::of(
                &json!({"Event": {"System": {"Channel": "Security", "EventID": {"#text": id.to_string()}}}}),
            )
        };
        assert_eq!(sysmon(1).category.as_deref(), Some("process_creation"));
        assert!(sysmon(1).admits(&logsource(Some("process_creation"), None)));
        assert!(!sysmon(3).admits(&logsource(Some("process_creation"), None)));
        assert!(sysmon(13).admits(&logsource(Some("registry_event"), None)));
        assert!(sysmon(13).admits(&logsource(Some("registry_set"), None)));
        assert!(security(4688).admits(&logsource(Some("process_creation"), None)));
        assert!(
            !security(4624).admits(&logsource(Some("process_creation"), None)),
            "a logon is no process creation"
        );
        assert!(security(4624).admits(&logsource(None, Some("security"))));
        assert!(!security(4624).admits(&logsource(None, Some("system"))));
        assert!(
            security(4624).admits(&logsource(None, Some("ntlm"))),
            "an unmapped service is not ruled out"
        );
        assert!(
            security(4624).admits(&logsource(Some("antivirus"), None)),
            "an underived category is not ruled out"
        );
        assert!(!sysmon(1).admits(&LogSource {
            product: Some("linux".into()),
            ..logsource(None, None)
        }));
    }

    #[test]
    fn levels_map_to_severities() {
        assert_eq!(severity_of(Some(SigmaLevel::Critical)), Severity::Critical);
        assert_eq!(severity_of(Some(SigmaLevel::High)), Severity::Error);
        assert_eq!(severity_of(Some(SigmaLevel::Medium)), Severity::Warning);
        assert_eq!(severity_of(None), Severity::Warning);
        assert_eq!(severity_of(Some(SigmaLevel::Low)), Severity::Notice);
        assert_eq!(severity_of(Some(SigmaLevel::Informational)), Severity::Info);
    }
}
