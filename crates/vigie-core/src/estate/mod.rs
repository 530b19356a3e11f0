//! The estate: the clients the MSP watches, with their sites, assets, the dependencies between
//! assets, teams and contacts — "config as code", read from a directory of YAML files, plus
//! what is added through the API (`Estate::merge`).
//!
//! Layout: **one YAML document per client, everything about the client nested in it**. A file
//! may hold several documents separated by `---`; the convention is one file per client, named
//! after it (`examples/estate/acme-industrie.yaml`). Nesting keeps each client's ids and
//! references resolvable within one document, and lets every problem be named by a field path
//! inside that document (`assets[2].criticality`) and found again by line.
//!
//! ```yaml
//! id: acme-industrie
//! name: ACME Industrie
//! contract: gold
//! incident_grouping: { by: [asset, rule], window: 30m }
//! reopen_window: 2h
//! sites:
//!   - { id: lyon-plant, name: Lyon plant, timezone: Europe/Paris }
//! assets:
//!   - id: lyo-erp-db01
//!     kind: host            # host | network_device | application | business_service
//!     criticality: 5        # 1 (least) to 5 (most), default 3
//!     site: lyon-plant
//!     addresses: [127.0.10.21]
//!     hostnames: [lyo-erp-db01]
//! dependencies:
//!   - { from: lyo-erp-db01, to: lyo-sw-core01 }   # `from` depends on `to`
//! contacts:
//!   - { id: thomas-petit, name: Thomas Petit, email: thomas.petit@msp.example }
//! teams:
//!   - { id: l2-systems, name: L2 systems, members: [thomas-petit] }
//! detection:              # Sigma `expand` placeholders for this client's rules
//!   placeholders: { Administrators: [adm-jdupont] }
//! ```
//!
//! How incidents are qualified, escalated and notified — `language`, `business_hours`,
//! `channels`, `schedules`, `escalation_policies`, `routing`, `crisis_triggers`, `crisis`,
//! `priority`, `silences`, `inhibit_rules`, and an asset's `service:` — is in `response` and
//! `services`, with the YAML reference in `docs/response.md`.
//!
//! Invariant: an `Estate` returned by `load_estate` or left by a successful `merge` passes
//! `validate`: ids are slugs, unique per kind within a client and client ids unique across
//! files; references resolve within their client; dependencies are acyclic. Durations are
//! milliseconds; the core has no clock.

pub mod checks;
mod detection;
mod duration;
mod load;
mod locate;
mod response;
mod sender;
mod services;
mod validate;

#[cfg(test)]
mod response_tests;
#[cfg(test)]
mod tests;

pub use checks::{
    AssetSelector, CheckDefinition, CheckRule, CheckSpec, RecurringDowntime, compile_checks,
    hosts_behind,
};
pub use detection::{
    ClientDetection, DERIVED_PLACEHOLDERS, DOMAIN_CONTROLLER_TAG, WORKSTATION_TAG,
};
pub use duration::{format_duration, parse_duration};
pub use load::{EstateFile, load_estate};
pub use response::{
    AllContacts, BeaconCall, BusinessHours, ChannelKind, ChannelSpec, CrisisSettings,
    CrisisTriggerSpec, DEFAULT_LANGUAGE, DEFAULT_SPREAD_ASSETS, DEFAULT_SPREAD_WINDOW_MS,
    DEFAULT_TEAM_LEVEL, DEFAULT_URGENT_CATEGORIES, InhibitRuleSpec, OverrideSpec, PolicySpec,
    PriorityMatrix, PriorityPolicy, PrioritySpec, RateLimit, RotationSpec, RouteFacts, RouteMatch,
    RouteSpec, ScheduleSpec, SilenceSpec, SpreadSpec, StepSpec, TargetSpec, TimeOfDay, TriggerWhen,
    Weekday,
};
pub use sender::SenderMatch;
pub use services::{
    BusinessServiceDef, CheckRef, ImpactSpec, IndicatorSpec, MethodSpec, RatioSpec, ServiceSpec,
};
pub use validate::is_slug;

use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::ops::RangeInclusive;

use sender::SenderIndex;
use validate::{Finding, validate_client};

pub const CRITICALITY_RANGE: RangeInclusive<u8> = 1..=5;
pub const DEFAULT_CRITICALITY: u8 = 3;
pub const DEFAULT_GROUPING_WINDOW_MS: i64 = 3_600_000;
pub const DEFAULT_REOPEN_WINDOW_MS: i64 = 3_600_000;

/// Everything the MSP watches, by client id.
///
/// `clients` is public so the program can read it freely; code that changes it in place must
/// call `reindex` afterwards, or `find_sender` answers from the old estate. `load_estate`,
/// `merge`, `Estate::new` and deserialisation keep the index in step themselves.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(from = "EstateFields")]
pub struct Estate {
    pub clients: BTreeMap<String, Client>,
    #[serde(skip)]
    senders: SenderIndex,
    /// Checks left out because they do not read, each with its file and line (see `checks`).
    #[serde(skip)]
    check_rejections: Vec<Diagnostic>,
}

/// `Estate` as it is written, before its index is built.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EstateFields {
    clients: BTreeMap<String, Client>,
}

impl From<EstateFields> for Estate {
    fn from(fields: EstateFields) -> Estate {
        Estate::new(fields.clients)
    }
}

/// A company the MSP supervises: a tenant, with everything that belongs to it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Client {
    pub id: String,
    pub name: String,
    /// Free text naming the service level, e.g. `gold`.
    #[serde(default)]
    pub contract: Option<String>,
    /// The language of messages to the client's own people (`en` when not written).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    #[serde(default)]
    pub incident_grouping: IncidentGrouping,
    /// How long after resolution a recurring problem reopens its incident instead of opening a
    /// new one. Written as a duration (`1h`).
    #[serde(
        rename = "reopen_window",
        with = "duration",
        default = "default_reopen_window_ms"
    )]
    pub reopen_window_ms: i64,
    #[serde(default)]
    pub sites: Vec<Site>,
    #[serde(default)]
    pub assets: Vec<Asset>,
    #[serde(default)]
    pub dependencies: Vec<Dependency>,
    #[serde(default)]
    pub teams: Vec<Team>,
    #[serde(default)]
    pub contacts: Vec<Contact>,
    /// Checks applied to the assets they match (see `checks`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub check_rules: Vec<CheckRule>,
    /// Downtimes that come back every week (see `checks::RecurringDowntime`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recurring_downtimes: Vec<RecurringDowntime>,
    /// Sigma placeholder values for this client's rules (see `detection`).
    #[serde(default, skip_serializing_if = "ClientDetection::is_empty")]
    pub detection: ClientDetection,
    /// When the client's people are at work, for escalation steps' `during` (see `response`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub business_hours: Option<BusinessHours>,
    /// Webhooks, chats, beacons and mailboxes notifications go to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<ChannelSpec>,
    /// On-call schedules.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schedules: Vec<ScheduleSpec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub escalation_policies: Vec<PolicySpec>,
    /// Which team and policy take an incident: the first route that matches.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routing: Vec<RouteSpec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub crisis_triggers: Vec<CrisisTriggerSpec>,
    /// Beacons, people and channels a crisis of the client sets off.
    #[serde(default, skip_serializing_if = "CrisisSettings::is_empty")]
    pub crisis: CrisisSettings,
    /// The priority matrix and what raises urgency and impact; Vigie's defaults when absent.
    #[serde(default, skip_serializing_if = "PrioritySpec::is_default")]
    pub priority: PrioritySpec,
    /// Silences written as code, as Alertmanager writes them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub silences: Vec<SilenceSpec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inhibit_rules: Vec<InhibitRuleSpec>,
}

/// Which alerts of a client share an incident: those equal on every key of `by` and no
/// further apart than the window.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentGrouping {
    #[serde(default = "default_grouping_keys")]
    pub by: Vec<GroupingKey>,
    #[serde(
        rename = "window",
        with = "duration",
        default = "default_grouping_window_ms"
    )]
    pub window_ms: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupingKey {
    Asset,
    Rule,
    Source,
    Kind,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Site {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub address: Option<String>,
    /// An IANA zone name such as `Europe/Paris`, for people reading times; not checked here.
    #[serde(default)]
    pub timezone: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Asset {
    pub id: String,
    /// Shown to people; `display_name` falls back to the id.
    #[serde(default)]
    pub name: Option<String>,
    pub kind: AssetKind,
    /// 1 (a printer) to 5 (stops the business). Drives incident priority.
    #[serde(
        default = "default_criticality",
        deserialize_with = "deserialize_criticality"
    )]
    pub criticality: u8,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub addresses: Vec<IpAddr>,
    /// Names the asset sends syslog under; compared case-insensitively.
    #[serde(default)]
    pub hostnames: Vec<String>,
    #[serde(default)]
    pub site: Option<String>,
    /// The asset's host check (UP/DOWN/UNREACHABLE); none unless written here or by a rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_check: Option<CheckSpec>,
    /// The asset's service checks (see `checks`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<CheckSpec>,
    /// For an `application` or `business_service` asset: how its state is computed (see
    /// `services`); absent, the worst of its dependencies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceSpec>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssetKind {
    Host,
    NetworkDevice,
    Application,
    BusinessService,
}

/// `from` depends on `to`: when `to` fails, `from` is impacted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dependency {
    pub from: String,
    pub to: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Team {
    pub id: String,
    pub name: String,
    /// Contact ids of the same client.
    #[serde(default)]
    pub members: Vec<String>,
    /// 1 = level-1 supervision, 2 = level-2 experts (the default), 3 = …; crisis triggers
    /// read how far an incident was escalated from it.
    #[serde(
        default = "response::default_team_level",
        skip_serializing_if = "response::is_default_team_level"
    )]
    pub level: u8,
    /// The team's mailbox.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Ids of the client's `channels`, told whenever the team is notified.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contact {
    pub id: String,
    pub name: String,
    pub email: String,
    #[serde(default)]
    pub phone: Option<String>,
    /// The language of messages to this person, `en` or `fr`…; see `Contact::language`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
}

/// One problem in the estate, located as precisely as known: the file (or, for objects that
/// came through the API, the client's resource path `clients/<id>`), the 1-based line, and the
/// field path inside the client document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnostic {
    pub path: String,
    pub line: Option<usize>,
    pub field: String,
    pub message: String,
}

impl Estate {
    /// An estate over `clients`, with its sender index built. Does not validate.
    pub fn new(clients: BTreeMap<String, Client>) -> Estate {
        let senders = SenderIndex::build(&clients);
        Estate {
            clients,
            senders,
            check_rejections: Vec::new(),
        }
    }

    pub fn client(&self, id: &str) -> Option<&Client> {
        self.clients.get(id)
    }

    pub fn asset(&self, client: &str, asset: &str) -> Option<&Asset> {
        self.client(client)?.asset(asset)
    }

    /// The asset that sent a line: the one listing `hostname` (case-insensitively; an FQDN
    /// also matches by its first label), failing that the one listing `address`. A hostname
    /// or address listed by assets of two clients matches nothing. A hash lookup.
    pub fn find_sender(
        &self,
        address: Option<IpAddr>,
        hostname: Option<&str>,
    ) -> Option<SenderMatch> {
        self.senders.find(address, hostname)
    }

    /// The checks `load_estate` left out because they do not read, each with its file, line
    /// and field; the rest of the estate, and every other check, loaded.
    pub fn check_rejections(&self) -> &[Diagnostic] {
        &self.check_rejections
    }

    /// Rebuilds the sender index after `clients` was changed in place.
    pub fn reindex(&mut self) {
        self.senders = SenderIndex::build(&self.clients);
    }

    /// Adds `other`'s clients to this estate, or changes nothing and says why. A client that
    /// exists in both brings its sites, assets, dependencies, teams and contacts into the
    /// existing one and must carry the same settings (see `Client::empty_copy`); an id defined
    /// in both is an error. The result must pass `validate` as a whole, and `other`'s checks
    /// must all read: unlike files, which report a bad check and load the rest, an object
    /// added through the API is refused with its bad check.
    pub fn merge(&mut self, other: Estate) -> Result<(), Vec<Diagnostic>> {
        let mut clients = self.clients.clone();
        let mut diagnostics = Vec::new();
        for (key, incoming) in other.clients {
            diagnostics.extend(
                checks::check_findings(&incoming)
                    .into_iter()
                    .map(|finding| api_diagnostic(&key, finding)),
            );
            let Some(existing) = clients.get_mut(&key) else {
                clients.insert(key, incoming);
                continue;
            };
            let differing = existing.settings_differing_from(&incoming);
            if !differing.is_empty() {
                diagnostics.extend(differing.into_iter().map(|field| Diagnostic {
                    path: api_path(&key),
                    line: None,
                    field: field.to_string(),
                    message: format!("differs from the existing definition of client `{key}`"),
                }));
                continue;
            }
            existing.sites.extend(incoming.sites);
            existing.assets.extend(incoming.assets);
            existing.dependencies.extend(incoming.dependencies);
            existing.teams.extend(incoming.teams);
            existing.contacts.extend(incoming.contacts);
            existing.check_rules.extend(incoming.check_rules);
            existing
                .recurring_downtimes
                .extend(incoming.recurring_downtimes);
        }
        let mut merged = Estate::new(clients);
        merged.check_rejections = self.check_rejections.clone();
        diagnostics.extend(merged.validate());
        if diagnostics.is_empty() {
            *self = merged;
            Ok(())
        } else {
            Err(diagnostics)
        }
    }

    /// Every problem in the estate, located by client resource path (`clients/<id>`) and
    /// field; empty when the estate is valid. For files, `load_estate` reports the same
    /// problems with file and line.
    pub fn validate(&self) -> Vec<Diagnostic> {
        let mut diagnostics = Vec::new();
        for (key, client) in &self.clients {
            if *key != client.id {
                diagnostics.push(Diagnostic {
                    path: api_path(key),
                    line: None,
                    field: "id".to_string(),
                    message: format!(
                        "client is filed under `{key}` but its id is `{}`",
                        client.id
                    ),
                });
            }
            diagnostics.extend(
                validate_client(client)
                    .into_iter()
                    .map(|finding| api_diagnostic(key, finding)),
            );
        }
        diagnostics
    }
}

impl PartialEq for Estate {
    /// The index follows from the clients, so only they are compared.
    fn eq(&self, other: &Estate) -> bool {
        self.clients == other.clients
    }
}

impl Eq for Estate {}

impl fmt::Debug for Estate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Estate")
            .field("clients", &self.clients)
            .finish_non_exhaustive()
    }
}

impl Client {
    pub fn site(&self, id: &str) -> Option<&Site> {
        self.sites.iter().find(|site| site.id == id)
    }

    pub fn asset(&self, id: &str) -> Option<&Asset> {
        self.assets.iter().find(|asset| asset.id == id)
    }

    pub fn team(&self, id: &str) -> Option<&Team> {
        self.teams.iter().find(|team| team.id == id)
    }

    pub fn contact(&self, id: &str) -> Option<&Contact> {
        self.contacts.iter().find(|contact| contact.id == id)
    }

    /// The assets `asset` depends on directly.
    pub fn dependencies_of<'a>(&'a self, asset: &'a str) -> impl Iterator<Item = &'a str> {
        self.dependencies
            .iter()
            .filter(move |dependency| dependency.from == asset)
            .map(|dependency| dependency.to.as_str())
    }

    /// The assets that depend directly on `asset`.
    pub fn dependents_of<'a>(&'a self, asset: &'a str) -> impl Iterator<Item = &'a str> {
        self.dependencies
            .iter()
            .filter(move |dependency| dependency.to == asset)
            .map(|dependency| dependency.from.as_str())
    }

    /// This client's settings (response settings included) with no sites, assets,
    /// dependencies, teams or contacts: the shell to put new objects in before merging them
    /// into an estate that has this client.
    pub fn empty_copy(&self) -> Client {
        Client {
            id: self.id.clone(),
            name: self.name.clone(),
            contract: self.contract.clone(),
            language: self.language.clone(),
            incident_grouping: self.incident_grouping.clone(),
            reopen_window_ms: self.reopen_window_ms,
            sites: Vec::new(),
            assets: Vec::new(),
            dependencies: Vec::new(),
            teams: Vec::new(),
            contacts: Vec::new(),
            check_rules: Vec::new(),
            recurring_downtimes: Vec::new(),
            detection: self.detection.clone(),
            business_hours: self.business_hours.clone(),
            channels: self.channels.clone(),
            schedules: self.schedules.clone(),
            escalation_policies: self.escalation_policies.clone(),
            routing: self.routing.clone(),
            crisis_triggers: self.crisis_triggers.clone(),
            crisis: self.crisis.clone(),
            priority: self.priority.clone(),
            silences: self.silences.clone(),
            inhibit_rules: self.inhibit_rules.clone(),
        }
    }

    fn settings_differing_from(&self, other: &Client) -> Vec<&'static str> {
        let mut fields = Vec::new();
        if self.id != other.id {
            fields.push("id");
        }
        if self.name != other.name {
            fields.push("name");
        }
        if self.contract != other.contract {
            fields.push("contract");
        }
        if self.incident_grouping != other.incident_grouping {
            fields.push("incident_grouping");
        }
        if self.reopen_window_ms != other.reopen_window_ms {
            fields.push("reopen_window");
        }
        if self.detection != other.detection {
            fields.push("detection");
        }
        // The response settings are the client's, like its grouping: one definition.
        let response: [(&'static str, bool); 11] = [
            ("language", self.language == other.language),
            (
                "business_hours",
                self.business_hours == other.business_hours,
            ),
            ("channels", self.channels == other.channels),
            ("schedules", self.schedules == other.schedules),
            (
                "escalation_policies",
                self.escalation_policies == other.escalation_policies,
            ),
            ("routing", self.routing == other.routing),
            (
                "crisis_triggers",
                self.crisis_triggers == other.crisis_triggers,
            ),
            ("crisis", self.crisis == other.crisis),
            ("priority", self.priority == other.priority),
            ("silences", self.silences == other.silences),
            ("inhibit_rules", self.inhibit_rules == other.inhibit_rules),
        ];
        fields.extend(
            response
                .into_iter()
                .filter(|(_, same)| !same)
                .map(|(field, _)| field),
        );
        fields
    }
}

impl Asset {
    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.id)
    }
}

impl Default for IncidentGrouping {
    fn default() -> IncidentGrouping {
        IncidentGrouping {
            by: default_grouping_keys(),
            window_ms: DEFAULT_GROUPING_WINDOW_MS,
        }
    }
}

impl GroupingKey {
    pub fn as_str(self) -> &'static str {
        match self {
            GroupingKey::Asset => "asset",
            GroupingKey::Rule => "rule",
            GroupingKey::Source => "source",
            GroupingKey::Kind => "kind",
        }
    }
}

impl fmt::Display for Diagnostic {
    /// `examples/estate/acme.yaml:12: field `assets[2].criticality`: must be between 1 and 5`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_sanitized(f, &self.path)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        f.write_str(": ")?;
        if !self.field.is_empty() {
            f.write_str("field `")?;
            write_sanitized(f, &self.field)?;
            f.write_str("`: ")?;
        }
        write_sanitized(f, &self.message)
    }
}

impl std::error::Error for Diagnostic {}

/// Writes text from the estate's files without its control characters, which could rewrite a
/// terminal or forge log lines.
fn write_sanitized(f: &mut fmt::Formatter<'_>, text: &str) -> fmt::Result {
    for c in text.chars() {
        if c.is_control() {
            write!(f, "{}", c.escape_default())?;
        } else {
            write!(f, "{c}")?;
        }
    }
    Ok(())
}

fn api_path(client: &str) -> String {
    format!("clients/{client}")
}

fn api_diagnostic(client: &str, finding: Finding) -> Diagnostic {
    let message = match finding.first_defined {
        Some(first) => format!("{} (first defined at `{first}`)", finding.message),
        None => finding.message,
    };
    Diagnostic {
        path: api_path(client),
        line: None,
        field: finding.field,
        message,
    }
}

fn default_grouping_keys() -> Vec<GroupingKey> {
    vec![GroupingKey::Asset]
}

fn default_grouping_window_ms() -> i64 {
    DEFAULT_GROUPING_WINDOW_MS
}

fn default_reopen_window_ms() -> i64 {
    DEFAULT_REOPEN_WINDOW_MS
}

fn default_criticality() -> u8 {
    DEFAULT_CRITICALITY
}

/// Any integer is read, so that `criticality: 300` gets the same message as `7` rather than
/// a type error; the range itself is checked by `validate`, which reports every problem.
fn deserialize_criticality<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u8, D::Error> {
    let value = i64::deserialize(deserializer)?;
    u8::try_from(value).map_err(|_| serde::de::Error::custom("must be between 1 and 5"))
}
