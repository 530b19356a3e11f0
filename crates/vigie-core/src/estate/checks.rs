//! Checks as code: the checks of each asset, written on the asset (`checks:`, `host_check:`)
//! or applied by the client's `check_rules:` to every asset whose tags and kind match (one
//! definition for all the Linux servers of a client), and how they become `CheckDefinition`s
//! the supervision runtime schedules and runs.
//!
//! ```yaml
//! check_rules:
//!   - match: { tags: [linux], kinds: [host] }   # every tag listed, one of the kinds
//!     host_check: { kind: icmp }
//!     checks:
//!       - { name: ssh, kind: tcp, port: 22 }
//! assets:
//!   - id: lyo-erp-db01
//!     kind: host
//!     checks:
//!       - name: postgres            # a slug, unique on the asset; `host` is the host check
//!         kind: tcp                 # icmp | tcp | http | tls | dns | plugin | passive
//!         port: 5432
//!         interval: 1m              # default 5m
//!         retry_interval: 20s       # default 1m, or the interval when shorter
//!         max_check_attempts: 3     # default 3
//!         timeout: 5s               # default 10s
//!         thresholds: { connect_ms: { warning: "200", critical: "1000" } }
//! ```
//!
//! A check is kept as written (`CheckSpec`, a mapping) and read here, field by field. The
//! invariant this module guards: **one bad check never stops the others**. An unknown kind,
//! a bad threshold range, a bad duration, an option the kind does not take: each is a
//! `Finding` on its own field (`assets[3].checks[1].thresholds.rtt_ms.warning`), the check is
//! left out, and every other check — and the rest of the estate — loads. `load_estate` turns
//! those findings into diagnostics with file and line (`Estate::check_rejections`).
//!
//! Which checks an asset gets: its own, then those of the rules it matches, in rule order; a
//! name already given (by the asset, or by an earlier rule) is not given again, so an asset
//! overrides a rule's check by defining one of the same name. The host check is the asset's
//! own `host_check`, else that of the first matching rule that has one; without either, the
//! asset has none.
//!
//! Parents: `from` depends on `to`, so an asset's parents are the assets it depends on. A
//! host check depends on the nearest host checks up that graph (an asset without a host check
//! is looked through); a service check on its own asset's host check, or, when the asset has
//! none, on those same nearest host checks above it. This is what turns a child host
//! UNREACHABLE, and keeps a service of a down host from paging.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::validate::{Finding, is_slug};
use super::{Asset, AssetKind, BusinessHours, Client, Estate, parse_duration};
use crate::check::{
    CheckConfig, CheckId, CheckKind, CheckState, DEFAULT_TIMEOUT, HOST_CHECK_NAME, Probe,
    ProbeTarget, Thresholds, parse_range,
};

/// Icinga 2's defaults.
pub const DEFAULT_CHECK_INTERVAL_MS: i64 = 5 * 60_000;
pub const DEFAULT_RETRY_INTERVAL_MS: i64 = 60_000;
pub const DEFAULT_MAX_CHECK_ATTEMPTS: u32 = 3;
pub const MAX_CHECK_ATTEMPTS: u64 = 100;

/// One check as the estate writes it: a mapping, kept as written (YAML in files, JSON through
/// the API) and read by `compile_checks`, which reports each problem on its own field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CheckSpec(pub Value);

/// Checks applied to every asset of the client that `match` selects.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckRule {
    #[serde(rename = "match", default)]
    pub selector: AssetSelector,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_check: Option<CheckSpec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<CheckSpec>,
}

/// A downtime that comes back every week (Icinga's `ScheduledDowntime`): every check of the
/// assets it matches (or only those it names) gets a fixed downtime over each occurrence of
/// its window, from the window's start in its time zone, once the occurrence has begun.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecurringDowntime {
    pub name: String,
    #[serde(rename = "match", default)]
    pub selector: AssetSelector,
    /// Check names (`host` for the host check); empty: every check of the matched assets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<String>,
    /// Days, `from` and `to` in a time zone, as `business_hours`.
    pub window: BusinessHours,
    #[serde(default)]
    pub comment: String,
}

impl RecurringDowntime {
    /// Whether it applies to this check of this asset.
    pub fn covers(&self, asset: &Asset, check: &str) -> bool {
        self.selector.matches(asset)
            && (self.checks.is_empty() || self.checks.iter().any(|c| c == check))
    }
}

/// The assets a rule applies to: those carrying every tag listed and, when kinds are listed,
/// of one of them. Empty, it selects every asset of the client.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssetSelector {
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub kinds: Vec<AssetKind>,
}

impl AssetSelector {
    pub fn matches(&self, asset: &Asset) -> bool {
        self.tags.iter().all(|tag| asset.tags.contains(tag))
            && (self.kinds.is_empty() || self.kinds.contains(&asset.kind))
    }
}

/// A check ready to schedule and run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CheckDefinition {
    pub id: CheckId,
    pub kind: CheckKind,
    /// Shared by the checks made from one rule (and one target by those of one asset): a
    /// rule applied to 100,000 hosts keeps one copy.
    pub probe: Arc<Probe>,
    pub target: Arc<ProbeTarget>,
    /// Attempts, check and retry intervals (flapping settings at their defaults).
    pub config: Arc<CheckConfig>,
    pub timeout_ms: i64,
    /// The host checks this one depends on (see the module documentation), sorted.
    pub depends_on: Arc<[CheckId]>,
    /// The checks this one depends on as written in its `depends_on` (Icinga's service
    /// dependencies): while one is CRITICAL or UNKNOWN (DOWN or UNREACHABLE for a host
    /// check), this one's problem does not page. Sorted.
    pub check_dependencies: Arc<[CheckId]>,
    /// Where it is written, as a field path in the client: `assets[2].checks[0]` or
    /// `check_rules[1].checks[0]`.
    pub defined_at: Arc<str>,
}

/// Every check of every client of the estate, in client, asset and name order (an asset's
/// host check first). Checks that do not read are left out; `check_findings` says why.
pub fn compile_checks(estate: &Estate) -> Vec<CheckDefinition> {
    estate
        .clients
        .values()
        .flat_map(|client| client_checks(client).0)
        .collect()
}

/// For each host check, the host checks behind it: those that depend on it directly or
/// through others, which its failure makes UNREACHABLE. Sorted.
pub fn hosts_behind(checks: &[CheckDefinition]) -> HashMap<CheckId, Vec<CheckId>> {
    let mut children: HashMap<&CheckId, Vec<&CheckId>> = HashMap::new();
    for check in checks.iter().filter(|c| c.kind == CheckKind::Host) {
        for parent in check.depends_on.iter() {
            children.entry(parent).or_default().push(&check.id);
        }
    }
    let mut behind = HashMap::new();
    for check in checks.iter().filter(|c| c.kind == CheckKind::Host) {
        let mut seen: HashSet<&CheckId> = HashSet::new();
        let mut stack: Vec<&CheckId> = children.get(&check.id).cloned().unwrap_or_default();
        while let Some(child) = stack.pop() {
            if child != &check.id && seen.insert(child) {
                stack.extend(children.get(child).into_iter().flatten());
            }
        }
        if !seen.is_empty() {
            let mut ids: Vec<CheckId> = seen.into_iter().cloned().collect();
            ids.sort();
            behind.insert(check.id.clone(), ids);
        }
    }
    behind
}

/// Every problem of the client's check definitions, each on its field; the checks concerned
/// are the ones `compile_checks` leaves out.
pub(crate) fn check_findings(client: &Client) -> Vec<Finding> {
    client_checks(client).1
}

/// A check read from its spec, not yet given to an asset.
#[derive(Clone, Debug)]
/// Parsed once per rule or asset, shared by every check made from it.
struct ParsedCheck {
    name: Arc<str>,
    probe: Arc<Probe>,
    config: Arc<CheckConfig>,
    timeout_ms: i64,
    field: Arc<str>,
    /// `depends_on` as written: `check` or `asset:check`, resolved per asset.
    depends_on: Arc<[String]>,
}

struct ParsedRule<'c> {
    selector: &'c AssetSelector,
    host_check: Option<ParsedCheck>,
    checks: Vec<ParsedCheck>,
}

struct ParsedClient<'c> {
    rules: Vec<ParsedRule<'c>>,
    /// Per asset, in the client's order: its own host check and checks.
    assets: Vec<(Option<ParsedCheck>, Vec<ParsedCheck>)>,
    findings: Vec<Finding>,
}

fn parse_client(client: &Client) -> ParsedClient<'_> {
    let mut findings = Vec::new();
    let mut rules = Vec::with_capacity(client.check_rules.len());
    for (index, rule) in client.check_rules.iter().enumerate() {
        let field = format!("check_rules[{index}]");
        for (tag_index, tag) in rule.selector.tags.iter().enumerate() {
            if tag.trim().is_empty() {
                findings.push(finding(
                    format!("{field}.match.tags[{tag_index}]"),
                    "must not be empty",
                ));
            }
        }
        let host_check = rule.host_check.as_ref().and_then(|spec| {
            parse_check(spec, &format!("{field}.host_check"), true, &mut findings)
        });
        let checks = parse_list(&rule.checks, &field, &mut findings);
        rules.push(ParsedRule {
            selector: &rule.selector,
            host_check,
            checks,
        });
    }
    let assets = client
        .assets
        .iter()
        .enumerate()
        .map(|(index, asset)| {
            let field = format!("assets[{index}]");
            let host_check = asset.host_check.as_ref().and_then(|spec| {
                parse_check(spec, &format!("{field}.host_check"), true, &mut findings)
            });
            (host_check, parse_list(&asset.checks, &field, &mut findings))
        })
        .collect();
    ParsedClient {
        rules,
        assets,
        findings,
    }
}

/// The checks of one `checks:` list; a name given twice keeps the first.
fn parse_list(specs: &[CheckSpec], owner: &str, findings: &mut Vec<Finding>) -> Vec<ParsedCheck> {
    let mut checks: Vec<ParsedCheck> = Vec::with_capacity(specs.len());
    for (index, spec) in specs.iter().enumerate() {
        let field = format!("{owner}.checks[{index}]");
        let Some(check) = parse_check(spec, &field, false, findings) else {
            continue;
        };
        if let Some(first) = checks.iter().find(|c| c.name == check.name) {
            findings.push(Finding {
                field: format!("{field}.name"),
                message: format!("check `{}` is defined twice", check.name),
                first_defined: Some(first.field.to_string()),
            });
            continue;
        }
        checks.push(check);
    }
    checks
}

/// The checks of one client and the problems of those that do not read.
fn client_checks(client: &Client) -> (Vec<CheckDefinition>, Vec<Finding>) {
    let parsed = parse_client(client);
    // Each asset's host check and service checks, by the override rules.
    let mut chosen: Vec<(Option<&ParsedCheck>, Vec<&ParsedCheck>)> =
        Vec::with_capacity(client.assets.len());
    for (asset, (own_host, own_checks)) in client.assets.iter().zip(&parsed.assets) {
        let matching: Vec<&ParsedRule> = parsed
            .rules
            .iter()
            .filter(|rule| rule.selector.matches(asset))
            .collect();
        let host = own_host
            .as_ref()
            .or_else(|| matching.iter().find_map(|rule| rule.host_check.as_ref()));
        let mut checks: Vec<&ParsedCheck> = own_checks.iter().collect();
        for rule in &matching {
            for check in &rule.checks {
                if !checks.iter().any(|c| c.name == check.name) {
                    checks.push(check);
                }
            }
        }
        checks.sort_by(|a, b| a.name.cmp(&b.name));
        chosen.push((host, checks));
    }

    let with_host_check: HashSet<&str> = client
        .assets
        .iter()
        .zip(&chosen)
        .filter(|(_, (host, _))| host.is_some())
        .map(|(asset, _)| asset.id.as_str())
        .collect();
    let mut parents: HashMap<&str, Vec<&str>> = HashMap::new();
    for dependency in &client.dependencies {
        parents
            .entry(dependency.from.as_str())
            .or_default()
            .push(dependency.to.as_str());
    }
    // The nearest assets with a host check up the dependency graph, looking through those
    // without one. The estate is acyclic once validated; `seen` keeps this finite anyway.
    // One copy of the client's and each asset's name, shared by every id that names them.
    let client_id: Arc<str> = Arc::from(client.id.as_str());
    let host_name: Arc<str> = Arc::from(HOST_CHECK_NAME);
    let nearest_checked = |asset: &str| -> Vec<CheckId> {
        let mut found = Vec::new();
        let mut seen = HashSet::new();
        let mut stack: Vec<&str> = parents.get(asset).cloned().unwrap_or_default();
        while let Some(parent) = stack.pop() {
            if !seen.insert(parent) {
                continue;
            }
            if with_host_check.contains(parent) {
                found.push(CheckId::new(client_id.clone(), parent, host_name.clone()));
            } else {
                stack.extend(parents.get(parent).into_iter().flatten());
            }
        }
        found.sort();
        found.dedup();
        found
    };

    let mut definitions = Vec::new();
    // Per definition, the check it was made from: its `depends_on` is resolved below.
    let mut sources: Vec<&ParsedCheck> = Vec::new();
    let none: Arc<[CheckId]> = Arc::new([]);
    for (asset, (host, checks)) in client.assets.iter().zip(chosen) {
        let target = Arc::new(probe_target(asset));
        let above: Arc<[CheckId]> = nearest_checked(&asset.id).into();
        let asset_id: Arc<str> = Arc::from(asset.id.as_str());
        let host_id =
            host.map(|_| CheckId::new(client_id.clone(), asset_id.clone(), host_name.clone()));
        if let (Some(host), Some(id)) = (host, &host_id) {
            definitions.push(definition(
                id.clone(),
                CheckKind::Host,
                host,
                &target,
                above.clone(),
                &none,
            ));
            sources.push(host);
        }
        let service_depends_on: Arc<[CheckId]> = match host_id {
            Some(id) => Arc::new([id]),
            None => above,
        };
        for check in checks {
            definitions.push(definition(
                CheckId::new(client_id.clone(), asset_id.clone(), check.name.clone()),
                CheckKind::Service,
                check,
                &target,
                service_depends_on.clone(),
                &none,
            ));
            sources.push(check);
        }
    }
    let mut findings = parsed.findings;
    let known: HashSet<CheckId> = definitions.iter().map(|d| d.id.clone()).collect();
    let mut keep = vec![true; definitions.len()];
    for ((definition, source), keep) in definitions.iter_mut().zip(&sources).zip(&mut keep) {
        if source.depends_on.is_empty() {
            continue;
        }
        let mut resolved = Vec::with_capacity(source.depends_on.len());
        for (index, reference) in source.depends_on.iter().enumerate() {
            let id = match reference.split_once(':') {
                Some((asset, check)) => CheckId::new(client_id.clone(), asset, check),
                None => CheckId::new(
                    client_id.clone(),
                    definition.id.asset_arc().clone(),
                    reference.as_str(),
                ),
            };
            let problem = if id == definition.id {
                Some(format!("`{reference}` is the check itself"))
            } else if !known.contains(&id) {
                Some(format!(
                    "unknown check `{}:{}` (for asset `{}`)",
                    id.asset(),
                    id.check(),
                    definition.id.asset()
                ))
            } else {
                None
            };
            match problem {
                Some(message) => {
                    findings.push(finding(
                        format!("{}.depends_on[{index}]", source.field),
                        message,
                    ));
                    *keep = false;
                }
                None => resolved.push(id),
            }
        }
        resolved.sort();
        resolved.dedup();
        definition.check_dependencies = resolved.into();
    }
    let mut kept = keep.into_iter();
    definitions.retain(|_| kept.next().unwrap_or(true));
    (definitions, findings)
}

fn definition(
    id: CheckId,
    kind: CheckKind,
    check: &ParsedCheck,
    target: &Arc<ProbeTarget>,
    depends_on: Arc<[CheckId]>,
    none: &Arc<[CheckId]>,
) -> CheckDefinition {
    CheckDefinition {
        id,
        kind,
        probe: check.probe.clone(),
        target: target.clone(),
        config: check.config.clone(),
        timeout_ms: check.timeout_ms,
        depends_on,
        check_dependencies: none.clone(),
        defined_at: check.field.clone(),
    }
}

/// `$HOSTADDRESS$` is the asset's first address, else its first hostname, else its id (as
/// Icinga falls back to the host's name); `$HOSTNAME$` its first hostname, else its id.
fn probe_target(asset: &Asset) -> ProbeTarget {
    let hostname = asset
        .hostnames
        .first()
        .cloned()
        .unwrap_or_else(|| asset.id.clone());
    let address = asset
        .addresses
        .first()
        .map(ToString::to_string)
        .unwrap_or_else(|| hostname.clone());
    ProbeTarget { address, hostname }
}

// ---- reading one spec ---------------------------------------------------------------------

const KINDS: &str = "icmp, tcp, http, tls, dns, plugin or passive";

/// Every option some kind takes, to tell "not for this kind" from "unknown".
const OPTIONS: [&str; 20] = [
    "packets",
    "port",
    "send",
    "expect",
    "url",
    "method",
    "status",
    "body_regex",
    "max_redirects",
    "verify_tls",
    "server_name",
    "query",
    "record_type",
    "server",
    "command",
    "args",
    "env",
    "freshness",
    "stale_state",
    "thresholds",
];

const COMMON: [&str; 7] = [
    "depends_on",
    "name",
    "kind",
    "interval",
    "retry_interval",
    "max_check_attempts",
    "timeout",
];

const HTTP_METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"];
const DNS_RECORD_TYPES: [&str; 9] = ["A", "AAAA", "CNAME", "MX", "TXT", "NS", "PTR", "SOA", "SRV"];

/// Reads the fields of one check mapping, recording each problem on its field and which
/// fields were read.
struct SpecReader<'a> {
    map: &'a Map<String, Value>,
    field: &'a str,
    findings: Vec<Finding>,
    read: HashSet<&'static str>,
}

impl<'a> SpecReader<'a> {
    fn at(&self, key: &str) -> String {
        format!("{}.{key}", self.field)
    }

    fn problem(&mut self, key: &str, message: impl Into<String>) {
        let field = self.at(key);
        self.findings.push(finding(field, message));
    }

    /// The value of `key`, null counting as absent.
    fn get(&mut self, key: &'static str) -> Option<&'a Value> {
        self.read.insert(key);
        self.map.get(key).filter(|value| !value.is_null())
    }

    fn required<T>(&mut self, key: &'static str, value: Option<T>) -> Option<T> {
        if value.is_none() && self.map.get(key).is_none_or(Value::is_null) {
            self.problem(key, "is required");
        }
        value
    }

    /// A scalar as text: strings as they are, numbers and booleans as written.
    fn text(&mut self, key: &'static str) -> Option<String> {
        let value = self.get(key)?;
        match scalar_text(value) {
            Some(text) => Some(text),
            None => {
                self.problem(key, "must be a single value, not a list or a mapping");
                None
            }
        }
    }

    fn duration_ms(&mut self, key: &'static str) -> Option<i64> {
        let text = self.text(key)?;
        match parse_duration(&text) {
            Ok(ms) if ms > 0 => Some(ms),
            Ok(_) => {
                self.problem(key, "must be longer than zero");
                None
            }
            Err(message) => {
                self.problem(key, message);
                None
            }
        }
    }

    fn integer(&mut self, key: &'static str, min: u64, max: u64) -> Option<u64> {
        let value = self.get(key)?;
        match value.as_u64().filter(|n| (min..=max).contains(n)) {
            Some(n) => Some(n),
            None => {
                self.problem(
                    key,
                    format!("must be a whole number between {min} and {max}, not {value}"),
                );
                None
            }
        }
    }

    fn boolean(&mut self, key: &'static str) -> Option<bool> {
        let value = self.get(key)?;
        match value.as_bool() {
            Some(b) => Some(b),
            None => {
                self.problem(key, format!("must be true or false, not {value}"));
                None
            }
        }
    }

    /// A list of scalars; a single scalar is a list of one.
    fn text_list(&mut self, key: &'static str) -> Option<Vec<String>> {
        let value = self.get(key)?;
        let items: Vec<&Value> = match value {
            Value::Array(items) => items.iter().collect(),
            other => vec![other],
        };
        let mut texts = Vec::with_capacity(items.len());
        for (index, item) in items.into_iter().enumerate() {
            match scalar_text(item) {
                Some(text) => texts.push(text),
                None => {
                    self.problem(&format!("{key}[{index}]"), "must be a single value");
                    return None;
                }
            }
        }
        Some(texts)
    }

    /// `thresholds: { metric: { warning: range, critical: range } }` for the metrics a kind
    /// measures; a metric not given keeps `defaults`.
    fn thresholds(
        &mut self,
        kind: &str,
        metrics: &[&'static str],
        defaults: &[(&'static str, Thresholds)],
    ) -> HashMap<&'static str, Thresholds> {
        let mut out: HashMap<&'static str, Thresholds> = defaults.iter().cloned().collect();
        let Some(value) = self.get("thresholds") else {
            return out;
        };
        let Value::Object(given) = value else {
            self.problem(
                "thresholds",
                "must be a mapping of measures to { warning, critical } ranges",
            );
            return out;
        };
        for (metric, ranges) in given {
            let at = format!("thresholds.{metric}");
            let Some(&metric) = metrics.iter().find(|m| *m == metric) else {
                let expected = if metrics.is_empty() {
                    format!(
                        "a {kind} check takes no thresholds (a plugin gets its own as arguments)"
                    )
                } else {
                    format!(
                        "unknown measure `{metric}` for a {kind} check: expected {}",
                        metrics.join(" or ")
                    )
                };
                self.problem(&at, expected);
                continue;
            };
            let Value::Object(ranges) = ranges else {
                self.problem(&at, "must be a mapping with `warning` and/or `critical`");
                continue;
            };
            let mut thresholds = Thresholds::default();
            for other in ranges
                .keys()
                .filter(|k| !["warning", "critical"].contains(&k.as_str()))
            {
                self.problem(
                    &format!("{at}.{other}"),
                    "unknown field: expected warning or critical",
                );
            }
            for level in ["warning", "critical"] {
                let Some(text) = ranges.get(level).filter(|v| !v.is_null()) else {
                    continue;
                };
                let slot = match level {
                    "warning" => &mut thresholds.warning,
                    _ => &mut thresholds.critical,
                };
                let Some(text) = scalar_text(text) else {
                    self.problem(&format!("{at}.{level}"), "must be a range such as `10:`");
                    continue;
                };
                match parse_range(&text) {
                    Ok(range) => *slot = Some(range),
                    Err(error) => self.problem(
                        &format!("{at}.{level}"),
                        format!("`{text}` is not a threshold range: {error}"),
                    ),
                }
            }
            out.insert(metric, thresholds);
        }
        out
    }

    /// Fields present but not read: not for this kind, or unknown.
    fn report_unread(&mut self, kind: &str) {
        let map = self.map;
        for key in map.keys() {
            if self.read.contains(key.as_str()) {
                continue;
            }
            let message = if OPTIONS.contains(&key.as_str()) {
                format!("`{key}` does not apply to a {kind} check")
            } else {
                format!("unknown field `{key}`")
            };
            self.problem(key, message);
        }
    }
}

fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Reads one check; `None` (with its findings pushed) when it does not read.
fn parse_check(
    spec: &CheckSpec,
    field: &str,
    host: bool,
    findings: &mut Vec<Finding>,
) -> Option<ParsedCheck> {
    let Value::Object(map) = &spec.0 else {
        findings.push(finding(
            field,
            "a check is a mapping with at least `kind` (and `name` for a service check)",
        ));
        return None;
    };
    let mut reader = SpecReader {
        map,
        field,
        findings: Vec::new(),
        read: HashSet::new(),
    };
    let name = read_name(&mut reader, host);
    let kind = reader.text("kind");
    let kind = reader.required("kind", kind);

    let interval_ms = reader
        .duration_ms("interval")
        .unwrap_or(DEFAULT_CHECK_INTERVAL_MS);
    let retry_interval_ms = reader
        .duration_ms("retry_interval")
        .unwrap_or(DEFAULT_RETRY_INTERVAL_MS.min(interval_ms));
    let max_check_attempts = reader
        .integer("max_check_attempts", 1, MAX_CHECK_ATTEMPTS)
        .map_or(DEFAULT_MAX_CHECK_ATTEMPTS, |n| n as u32);
    let timeout_ms = reader
        .duration_ms("timeout")
        .unwrap_or(DEFAULT_TIMEOUT.as_millis() as i64);
    let check_dependencies = reader.text_list("depends_on").unwrap_or_default();
    for (index, reference) in check_dependencies.iter().enumerate() {
        let parts: Vec<&str> = reference.split(':').collect();
        if parts.len() > 2 || parts.iter().any(|part| part.trim().is_empty()) {
            reader.problem(
                &format!("depends_on[{index}]"),
                format!(
                    "`{reference}` is not a check: write `check` (of the same asset) or \
                     `asset:check`"
                ),
            );
        }
    }

    let probe = match kind.as_deref() {
        Some(kind) => read_probe(&mut reader, kind, interval_ms),
        None => None,
    };
    if probe.is_some() {
        reader.report_unread(kind.as_deref().unwrap_or_default());
    } else if kind.is_none() {
        // Without a kind, options cannot be judged; only unknown common fields are.
        let known: Vec<&str> = COMMON.iter().chain(OPTIONS.iter()).copied().collect();
        for key in map.keys().filter(|key| !known.contains(&key.as_str())) {
            let message = format!("unknown field `{key}`");
            reader.problem(key, message);
        }
    }
    let clean = reader.findings.is_empty();
    findings.append(&mut reader.findings);
    if !clean {
        return None;
    }
    Some(ParsedCheck {
        name: Arc::from(name?),
        probe: Arc::new(probe?),
        config: Arc::new(CheckConfig {
            max_check_attempts,
            check_interval_ms: interval_ms,
            retry_interval_ms,
            ..CheckConfig::default()
        }),
        timeout_ms,
        field: Arc::from(field),
        depends_on: check_dependencies.into(),
    })
}

fn read_name(reader: &mut SpecReader, host: bool) -> Option<String> {
    let name = reader.text("name");
    if host {
        return match name {
            Some(name) if name != HOST_CHECK_NAME => {
                reader.problem(
                    "name",
                    format!("a host check is always named `{HOST_CHECK_NAME}`: leave `name` out"),
                );
                None
            }
            _ => Some(HOST_CHECK_NAME.to_owned()),
        };
    }
    let name = reader.required("name", name)?;
    if name == HOST_CHECK_NAME {
        reader.problem(
            "name",
            format!("`{HOST_CHECK_NAME}` names the host check: write it under `host_check`"),
        );
        None
    } else if !is_slug(&name) {
        reader.problem(
            "name",
            format!(
                "`{name}` is not a valid check name: use lowercase letters, digits and dashes, \
                 starting with a letter or digit"
            ),
        );
        None
    } else {
        Some(name)
    }
}

fn read_probe(reader: &mut SpecReader, kind: &str, interval_ms: i64) -> Option<Probe> {
    let probe = match kind {
        "icmp" => {
            let packets = reader.integer("packets", 1, 100).unwrap_or(5) as u32;
            let mut thresholds = reader.thresholds(kind, &["rtt_ms", "loss_percent"], &[]);
            Probe::Icmp {
                packets,
                rtt_ms: thresholds.remove("rtt_ms").unwrap_or_default(),
                loss_percent: thresholds.remove("loss_percent").unwrap_or_default(),
            }
        }
        "tcp" => {
            let port = reader.integer("port", 1, 65_535).map(|p| p as u16);
            let port = reader.required("port", port);
            let send = reader.text("send");
            let expect = reader.text("expect");
            let mut thresholds = reader.thresholds(kind, &["connect_ms"], &[]);
            Probe::Tcp {
                port: port?,
                send,
                expect,
                connect_ms: thresholds.remove("connect_ms").unwrap_or_default(),
            }
        }
        "http" => read_http(reader)?,
        "tls" => {
            let port = reader.integer("port", 1, 65_535).map_or(443, |p| p as u16);
            let server_name = reader.text("server_name");
            let defaults = Thresholds {
                warning: parse_range("30:").ok(),
                critical: parse_range("7:").ok(),
            };
            let mut thresholds =
                reader.thresholds(kind, &["days_left"], &[("days_left", defaults)]);
            Probe::Tls {
                port,
                server_name,
                days_left: thresholds.remove("days_left").unwrap_or_default(),
            }
        }
        "dns" => {
            let query = reader
                .text("query")
                .unwrap_or_else(|| "$HOSTNAME$".to_owned());
            let record_type = reader
                .text("record_type")
                .map_or_else(|| "A".to_owned(), |t| t.to_ascii_uppercase());
            if !DNS_RECORD_TYPES.contains(&record_type.as_str()) {
                reader.problem(
                    "record_type",
                    format!(
                        "unknown record type `{record_type}`: expected one of {}",
                        DNS_RECORD_TYPES.join(", ")
                    ),
                );
            }
            let server = reader.text("server");
            let expect = reader.text_list("expect").unwrap_or_default();
            let mut thresholds = reader.thresholds(kind, &["latency_ms"], &[]);
            Probe::Dns {
                query,
                record_type,
                server,
                expect,
                latency_ms: thresholds.remove("latency_ms").unwrap_or_default(),
            }
        }
        "plugin" => {
            let command = reader.text("command").filter(|c| !c.trim().is_empty());
            let command = reader.required("command", command);
            let args = reader.text_list("args").unwrap_or_default();
            let env = read_env(reader);
            reader.thresholds(kind, &[], &[]);
            Probe::Plugin {
                command: command?,
                args,
                env,
            }
        }
        "passive" => {
            let freshness_ms = reader.duration_ms("freshness").unwrap_or(interval_ms);
            let stale_state = match reader.text("stale_state") {
                None => CheckState::Unknown,
                Some(text) => match text.to_ascii_uppercase().as_str() {
                    "OK" => CheckState::Ok,
                    "WARNING" => CheckState::Warning,
                    "CRITICAL" => CheckState::Critical,
                    "UNKNOWN" => CheckState::Unknown,
                    _ => {
                        reader.problem(
                            "stale_state",
                            format!("`{text}` is not OK, WARNING, CRITICAL or UNKNOWN"),
                        );
                        CheckState::Unknown
                    }
                },
            };
            reader.thresholds(kind, &[], &[]);
            Probe::Passive {
                freshness_ms,
                stale_state,
            }
        }
        other => {
            reader.problem(
                "kind",
                format!("unknown check kind `{other}`: expected {KINDS}"),
            );
            return None;
        }
    };
    Some(probe)
}

fn read_http(reader: &mut SpecReader) -> Option<Probe> {
    let url = reader
        .text("url")
        .unwrap_or_else(|| "http://$HOSTADDRESS$/".to_owned());
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        reader.problem("url", format!("`{url}` is not an http:// or https:// URL"));
    }
    let method = reader
        .text("method")
        .map_or_else(|| "GET".to_owned(), |m| m.to_ascii_uppercase());
    if !HTTP_METHODS.contains(&method.as_str()) {
        reader.problem(
            "method",
            format!(
                "unknown method `{method}`: expected one of {}",
                HTTP_METHODS.join(", ")
            ),
        );
    }
    let mut status = Vec::new();
    for (index, text) in reader
        .text_list("status")
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        match parse_status_range(text) {
            Some(range) => status.push(range),
            None => reader.problem(
                &format!("status[{index}]"),
                format!("`{text}` is not a status or a range of statuses such as `200-299`"),
            ),
        }
    }
    if status.is_empty() {
        status.push((200, 399));
    }
    let body_regex = reader.text("body_regex");
    if let Some(pattern) = &body_regex
        && let Err(error) = regex::Regex::new(pattern)
    {
        reader.problem("body_regex", format!("not a valid regex: {error}"));
    }
    let max_redirects = reader.integer("max_redirects", 0, 20).unwrap_or(0) as u32;
    let verify_tls = reader.boolean("verify_tls").unwrap_or(true);
    let mut thresholds = reader.thresholds("http", &["latency_ms"], &[]);
    Some(Probe::Http {
        url,
        method,
        status,
        body_regex,
        max_redirects,
        verify_tls,
        latency_ms: thresholds.remove("latency_ms").unwrap_or_default(),
    })
}

/// `200` or `200-299`, statuses between 100 and 599.
fn parse_status_range(text: &str) -> Option<(u16, u16)> {
    let (start, end) = match text.split_once('-') {
        Some((start, end)) => (start.trim(), end.trim()),
        None => (text.trim(), text.trim()),
    };
    let start: u16 = start.parse().ok()?;
    let end: u16 = end.parse().ok()?;
    ((100..=599).contains(&start) && (100..=599).contains(&end) && start <= end)
        .then_some((start, end))
}

fn read_env(reader: &mut SpecReader) -> Vec<(String, String)> {
    let Some(value) = reader.get("env") else {
        return Vec::new();
    };
    let Value::Object(variables) = value else {
        reader.problem("env", "must be a mapping of variable names to values");
        return Vec::new();
    };
    let mut env = Vec::with_capacity(variables.len());
    for (name, value) in variables {
        let valid_name = !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !name.starts_with(|c: char| c.is_ascii_digit());
        if !valid_name {
            reader.problem(
                &format!("env.{name}"),
                "not a variable name: use letters, digits and underscores",
            );
            continue;
        }
        match scalar_text(value) {
            Some(text) => env.push((name.clone(), text)),
            None => reader.problem(&format!("env.{name}"), "must be a single value"),
        }
    }
    env
}

fn finding(field: impl Into<String>, message: impl Into<String>) -> Finding {
    Finding {
        field: field.into(),
        message: message.into(),
        first_defined: None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::{EstateFile, load_estate};
    use super::*;

    fn load(text: &str) -> Estate {
        load_estate(&[EstateFile {
            path: "acme.yaml".to_owned(),
            text: text.to_owned(),
        }])
        .unwrap_or_else(|problems| panic!("the estate does not load: {problems:#?}"))
    }

    fn find<'a>(checks: &'a [CheckDefinition], id: &str) -> &'a CheckDefinition {
        checks
            .iter()
            .find(|check| check.id.to_string() == id)
            .unwrap_or_else(|| panic!("no check {id} in {:?}", ids(checks)))
    }

    fn ids(checks: &[CheckDefinition]) -> Vec<String> {
        checks.iter().map(|check| check.id.to_string()).collect()
    }

    const RULES: &str = "\
id: acme
name: ACME
check_rules:
  - match: { tags: [linux], kinds: [host] }
    host_check: { kind: icmp, interval: 1m }
    checks:
      - { name: ssh, kind: tcp, port: 22 }
      - name: load
        kind: plugin
        command: /usr/lib/nagios/plugins/check_load
        args: [-w, 5, -c, 10]
  - match: { tags: [linux] }
    checks:
      - { name: ssh, kind: tcp, port: 2200 }
      - { name: ntp, kind: plugin, command: check_ntp }
assets:
  - id: web01
    kind: host
    tags: [linux, web]
    addresses: [127.0.10.5]
    hostnames: [web01.acme.lan]
    checks:
      - name: ssh
        kind: tcp
        port: 2222
        interval: 30s
        timeout: 3s
        thresholds: { connect_ms: { warning: 100, critical: \"500\" } }
      - { name: site, kind: http, url: \"https://$HOSTNAME$/health\", status: [200, 301-302] }
  - id: db01
    kind: host
    tags: [linux]
  - id: dc01
    kind: host
    tags: [windows]
    host_check: { kind: plugin, command: check_dummy, args: [0] }
";

    #[test]
    fn rules_apply_one_definition_to_every_matching_asset_and_assets_override_them() {
        let estate = load(RULES);
        assert!(estate.check_rejections().is_empty());
        let checks = compile_checks(&estate);
        assert_eq!(
            ids(&checks),
            [
                "acme:web01:host",
                "acme:web01:load",
                "acme:web01:ntp",
                "acme:web01:site",
                "acme:web01:ssh",
                "acme:db01:host",
                "acme:db01:load",
                "acme:db01:ntp",
                "acme:db01:ssh",
                "acme:dc01:host",
            ]
        );
        let own = find(&checks, "acme:web01:ssh");
        assert_eq!(&*own.defined_at, "assets[0].checks[0]");
        assert_eq!(own.config.check_interval_ms, 30_000);
        assert_eq!(
            own.config.retry_interval_ms, 30_000,
            "never slower than the interval"
        );
        assert_eq!(own.timeout_ms, 3_000);
        let Probe::Tcp {
            port, connect_ms, ..
        } = &*own.probe
        else {
            panic!("{:?}", own.probe)
        };
        assert_eq!(*port, 2222);
        assert_eq!(
            (
                connect_ms.warning.unwrap().end,
                connect_ms.critical.unwrap().end
            ),
            (100.0, 500.0)
        );
        assert_eq!(own.target.address, "127.0.10.5");
        assert_eq!(own.target.hostname, "web01.acme.lan");

        let ruled = find(&checks, "acme:db01:ssh");
        assert_eq!(
            &*ruled.defined_at, "check_rules[0].checks[0]",
            "the first rule wins"
        );
        assert_eq!(ruled.kind, CheckKind::Service);
        assert_eq!(&*ruled.depends_on, [CheckId::host("acme", "db01")]);
        assert_eq!(
            (
                ruled.target.address.as_str(),
                ruled.target.hostname.as_str()
            ),
            ("db01", "db01"),
            "no address nor hostname: the id"
        );
        // Icinga's defaults.
        assert_eq!(ruled.config.check_interval_ms, 5 * 60_000);
        assert_eq!(ruled.config.retry_interval_ms, 60_000);
        assert_eq!(ruled.config.max_check_attempts, 3);
        assert_eq!(ruled.timeout_ms, 10_000);

        let load = find(&checks, "acme:db01:load");
        assert_eq!(
            *load.probe,
            Probe::Plugin {
                command: "/usr/lib/nagios/plugins/check_load".to_owned(),
                args: vec!["-w".into(), "5".into(), "-c".into(), "10".into()],
                env: vec![],
            }
        );
        let Probe::Http {
            url,
            status,
            method,
            ..
        } = &*find(&checks, "acme:web01:site").probe
        else {
            panic!()
        };
        assert_eq!(
            (url.as_str(), method.as_str(), status.as_slice()),
            (
                "https://$HOSTNAME$/health",
                "GET",
                &[(200, 200), (301, 302)][..]
            )
        );
        let host = find(&checks, "acme:web01:host");
        assert_eq!(host.kind, CheckKind::Host);
        assert_eq!(host.config.check_interval_ms, 60_000);
        assert!(matches!(*host.probe, Probe::Icmp { packets: 5, .. }));
        assert_eq!(
            &*find(&checks, "acme:dc01:host").defined_at,
            "assets[2].host_check"
        );
    }

    #[test]
    fn the_example_estate_checks_all_read() {
        let estate = load_estate(&[
            EstateFile {
                path: "acme-industrie.yaml".to_owned(),
                text: include_str!("../../../../examples/estate/acme-industrie.yaml").to_owned(),
            },
            EstateFile {
                path: "bellevue-clinic.yaml".to_owned(),
                text: include_str!("../../../../examples/estate/bellevue-clinic.yaml").to_owned(),
            },
        ])
        .expect("the example estate loads");
        assert_eq!(estate.check_rejections(), &[]);
        let checks = compile_checks(&estate);
        assert_eq!(
            ids(&checks),
            [
                "acme-industrie:lyo-erp-app01:heartbeat",
                "acme-industrie:lyo-erp-app01:web",
                "acme-industrie:lyo-erp-db01:heartbeat",
                "acme-industrie:lyo-erp-db01:postgres",
                "acme-industrie:lyo-mes01:mes",
                "acme-industrie:lyo-backup01:agent-port",
                "acme-industrie:lyo-backup01:heartbeat",
            ]
        );
    }

    #[test]
    fn an_asset_without_a_host_check_has_none() {
        let estate = load(
            "id: acme\nname: ACME\nassets:\n  - id: app\n    kind: application\n    checks: [{ name: http, kind: http }]\n",
        );
        let checks = compile_checks(&estate);
        assert_eq!(ids(&checks), ["acme:app:http"]);
        assert!(checks[0].depends_on.is_empty());
        let Probe::Http {
            url,
            status,
            verify_tls,
            max_redirects,
            ..
        } = &*checks[0].probe
        else {
            panic!()
        };
        assert_eq!(url, "http://$HOSTADDRESS$/");
        assert_eq!(status, &[(200, 399)]);
        assert!(*verify_tls);
        assert_eq!(*max_redirects, 0);
    }

    #[test]
    fn a_bad_check_is_reported_with_file_line_and_field_and_the_rest_loads() {
        let text = "\
id: acme
name: ACME
check_rules:
  - match: { tags: [linux] }
    checks:
      - { name: snmp, kind: snmp, community: public }
      - { name: ok, kind: tcp, port: 22 }
assets:
  - id: srv
    kind: host
    tags: [linux]
    checks:
      - name: ping
        kind: icmp
        thresholds:
          rtt_ms: { warning: \"20:10\", critical: abc }
          jitter: { warning: 5 }
      - { name: web, kind: http, interval: 30, port: 80 }
      - { name: Disk Space, kind: plugin, command: check_disk }
      - { name: dns, kind: dns, query: acme.lan, typo: 1 }
      - { name: load, kind: plugin, command: check_load, thresholds: { load: { warning: 1 } } }
      - { name: ssh, kind: tcp, port: 70000 }
      - { name: tls, kind: tls }
      - { name: tls, kind: tcp, port: 443 }
      - { kind: passive, stale_state: red }
";
        let estate = load(text);
        let shown: Vec<String> = estate
            .check_rejections()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            shown,
            [
                "acme.yaml:6: field `check_rules[0].checks[0].kind`: unknown check kind `snmp`: expected icmp, tcp, http, tls, dns, plugin or passive",
                "acme.yaml:16: field `assets[0].checks[0].thresholds.rtt_ms.warning`: `20:10` is not a threshold range: range start 20 is greater than its end 10",
                "acme.yaml:16: field `assets[0].checks[0].thresholds.rtt_ms.critical`: `abc` is not a threshold range: invalid number \"abc\" in range",
                "acme.yaml:17: field `assets[0].checks[0].thresholds.jitter`: unknown measure `jitter` for a icmp check: expected rtt_ms or loss_percent",
                "acme.yaml:18: field `assets[0].checks[1].interval`: invalid duration `30`: a unit is required (ms, s, m, h, d, w), e.g. `30m`",
                "acme.yaml:18: field `assets[0].checks[1].port`: `port` does not apply to a http check",
                "acme.yaml:19: field `assets[0].checks[2].name`: `Disk Space` is not a valid check name: use lowercase letters, digits and dashes, starting with a letter or digit",
                "acme.yaml:20: field `assets[0].checks[3].typo`: unknown field `typo`",
                "acme.yaml:21: field `assets[0].checks[4].thresholds.load`: a plugin check takes no thresholds (a plugin gets its own as arguments)",
                "acme.yaml:22: field `assets[0].checks[5].port`: must be a whole number between 1 and 65535, not 70000",
                "acme.yaml:24: field `assets[0].checks[7].name`: check `tls` is defined twice (first defined on line 23)",
                "acme.yaml:25: field `assets[0].checks[8].name`: is required",
                "acme.yaml:25: field `assets[0].checks[8].stale_state`: `red` is not OK, WARNING, CRITICAL or UNKNOWN",
            ]
        );
        // The checks that read are all there.
        assert_eq!(
            ids(&compile_checks(&estate)),
            ["acme:srv:ok", "acme:srv:tls"]
        );
        let tls = &compile_checks(&estate)[1];
        let Probe::Tls {
            port, days_left, ..
        } = &*tls.probe
        else {
            panic!()
        };
        assert_eq!(*port, 443);
        assert_eq!(days_left.warning.unwrap().to_string(), "30:");
        assert_eq!(days_left.critical.unwrap().to_string(), "7:");
    }

    #[test]
    fn check_dependencies_resolve_per_asset_and_a_bad_one_leaves_its_check_out() {
        let text = "\
id: acme
name: ACME
check_rules:
  - match: { tags: [app] }
    checks:
      - { name: web, kind: tcp, port: 80, depends_on: [postgres, \"db:postgres\"] }
assets:
  - id: db
    kind: host
    checks:
      - { name: postgres, kind: tcp, port: 5432 }
      - { name: replica, kind: tcp, port: 5433, depends_on: [\"a:b:c\", replica] }
  - id: app1
    kind: host
    tags: [app]
    checks:
      - { name: postgres, kind: tcp, port: 5432 }
  - id: app2
    kind: host
    tags: [app]
";
        let estate = load(text);
        let shown: Vec<String> = estate
            .check_rejections()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            shown,
            [
                "acme.yaml:6: field `check_rules[0].checks[0].depends_on[0]`: unknown check `app2:postgres` (for asset `app2`)",
                "acme.yaml:12: field `assets[0].checks[1].depends_on[0]`: `a:b:c` is not a check: write `check` (of the same asset) or `asset:check`",
            ]
        );
        let checks = compile_checks(&estate);
        assert_eq!(
            ids(&checks),
            ["acme:db:postgres", "acme:app1:postgres", "acme:app1:web"],
            "app2's web (its own postgres missing) and the replica are left out"
        );
        assert_eq!(
            &*find(&checks, "acme:app1:web").check_dependencies,
            [
                CheckId::new("acme", "app1", "postgres"),
                CheckId::new("acme", "db", "postgres")
            ]
        );
        assert!(
            find(&checks, "acme:db:postgres")
                .check_dependencies
                .is_empty()
        );
    }

    #[test]
    fn parents_come_from_the_dependencies_looking_through_assets_without_a_host_check() {
        let text = "\
id: acme
name: ACME
check_rules:
  - match: { kinds: [host, network_device] }
    host_check: { kind: icmp }
assets:
  - { id: rtr, kind: network_device }
  - { id: sw, kind: network_device, tags: [unchecked] }
  - { id: srv1, kind: host }
  - { id: srv2, kind: host }
  - id: app
    kind: application
    checks: [{ name: http, kind: http }]
dependencies:
  - { from: sw, to: rtr }
  - { from: srv1, to: sw }
  - { from: srv2, to: srv1 }
  - { from: app, to: srv2 }
";
        let mut estate = load(text);
        // The switch has no host check: take it out of the rule's reach.
        let client = estate.clients.get_mut("acme").unwrap();
        client.check_rules[0].selector.tags = vec![];
        client.assets[1].kind = AssetKind::Application;
        let checks = compile_checks(&estate);
        assert_eq!(
            ids(&checks),
            [
                "acme:rtr:host",
                "acme:srv1:host",
                "acme:srv2:host",
                "acme:app:http"
            ]
        );
        assert!(find(&checks, "acme:rtr:host").depends_on.is_empty());
        assert_eq!(
            &*find(&checks, "acme:srv1:host").depends_on,
            [CheckId::host("acme", "rtr")],
            "through the switch, which has no host check"
        );
        assert_eq!(
            &*find(&checks, "acme:srv2:host").depends_on,
            [CheckId::host("acme", "srv1")]
        );
        assert_eq!(
            &*find(&checks, "acme:app:http").depends_on,
            [CheckId::host("acme", "srv2")],
            "a service of an asset without a host check depends on the nearest above"
        );
        let behind = hosts_behind(&checks);
        assert_eq!(
            behind[&CheckId::host("acme", "rtr")],
            [CheckId::host("acme", "srv1"), CheckId::host("acme", "srv2")]
        );
        assert_eq!(
            behind[&CheckId::host("acme", "srv1")],
            [CheckId::host("acme", "srv2")]
        );
        assert!(!behind.contains_key(&CheckId::host("acme", "srv2")));
    }

    #[test]
    fn an_api_object_with_a_bad_check_is_refused_and_checks_survive_json() {
        let mut estate = load(RULES);
        let json = serde_json::to_value(&estate).unwrap();
        let back: Estate = serde_json::from_value(json).unwrap();
        assert_eq!(back, estate);
        assert_eq!(compile_checks(&back), compile_checks(&estate));

        let mut shell = estate.client("acme").unwrap().empty_copy();
        let mut asset = estate.asset("acme", "db01").unwrap().clone();
        asset.id = "db02".to_owned();
        asset.checks = vec![CheckSpec(serde_json::json!({"name": "x", "kind": "snmp"}))];
        shell.assets.push(asset);
        let problems = estate
            .merge(Estate::new([("acme".to_owned(), shell)].into()))
            .unwrap_err();
        assert_eq!(
            problems.iter().map(ToString::to_string).collect::<Vec<_>>(),
            [
                "clients/acme: field `assets[0].checks[0].kind`: unknown check kind `snmp`: expected icmp, tcp, http, tls, dns, plugin or passive"
            ]
        );
    }
}
