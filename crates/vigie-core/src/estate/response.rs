//! What a client's estate says about responding to its incidents: where notifications go
//! (`channels`), who is on call (`schedules`), who is paged and when (`escalation_policies`,
//! `business_hours`), which team and policy take an incident (`routing`), when the crisis cell
//! is called (`crisis_triggers`, `crisis`), how priority is computed (`priority`) and what is
//! kept quiet (`silences`, `inhibit_rules`). The YAML reference is `docs/response.md`.
//!
//! These are the written forms, kept as written so that a client round-trips through the API
//! unchanged; each compiles to the pure core's types (`escalation::Policy`, `Schedule`,
//! `crisis::CrisisTrigger`, `notify::silence::Silence`…). The invariant this module guards:
//! a client that passes `check_response` compiles without error — every reference resolves
//! within the client, every time zone, local time and matcher reads — so the runtime never
//! meets a dangling id or an unparsable time. Compiling never panics on any input either:
//! what does not read is left out (and reported by validation).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use jiff::tz::TimeZone;
use jiff::{Timestamp, civil};
use serde::de::{self, Deserializer, Visitor};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};

use super::validate::{Finding, check_not_empty, check_unique_ids, looks_like_email};
use super::{AssetKind, Client, Contact, duration};
use crate::crisis::{CrisisTrigger, TriggerCondition};
use crate::escalation::{Hours, Override, Policy, Rotation, Schedule, Step, Target};
use crate::incident::model::{Level, Priority};
use crate::notify::silence::{InhibitRule, Matcher, Silence};

/// The level of a team that does not say: level-2 experts.
pub const DEFAULT_TEAM_LEVEL: u8 = 2;
/// The language of a contact or a client that does not say.
pub const DEFAULT_LANGUAGE: &str = "en";

// ---------------------------------------------------------------------------------------------
// Channels

/// Somewhere notifications are sent, besides people's email: a webhook, a chat, a beacon.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelSpec {
    pub id: String,
    pub kind: ChannelKind,
    /// Required for every kind but `email`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// `email` only: the addresses written to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<String>,
    /// The language of the messages (not for `beacon`, which carries none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// HTTP kinds only: headers sent with every request (e.g. `Authorization`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// `beacon` only: the request that turns it on (default: POST to `url`, no body).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on: Option<BeaconCall>,
    /// `beacon` only: the request that turns it off (default: POST to `url`, no body).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub off: Option<BeaconCall>,
    /// How many messages the channel takes per window before the rest wait for one digest:
    /// `5/1m` when not given; `off` for a machine that takes every message (a beacon is never
    /// limited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
}

/// A channel's rate limit, written `N/duration` (`5/1m`, `30/1h`) or `off`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateLimit {
    Off,
    Every { messages: u32, window_ms: i64 },
}

impl RateLimit {
    /// What a channel without `rate_limit` gets.
    pub const DEFAULT: RateLimit = RateLimit::Every {
        messages: 5,
        window_ms: 60_000,
    };

    pub fn parse(text: &str) -> Result<RateLimit, String> {
        let text = text.trim();
        if text == "off" {
            return Ok(RateLimit::Off);
        }
        let invalid = |why: String| {
            format!(
                "invalid rate limit `{text}`: {why}; expected `N/duration` (e.g. `5/1m`) or `off`"
            )
        };
        let (messages, window) = text
            .split_once('/')
            .ok_or_else(|| invalid("no `/`".into()))?;
        let messages: u32 = messages
            .trim()
            .parse()
            .map_err(|_| invalid(format!("`{}` is not a count of messages", messages.trim())))?;
        if messages == 0 {
            return Err(invalid("0 messages would hold back everything".into()));
        }
        let window_ms = duration::parse_duration(window.trim()).map_err(invalid)?;
        if window_ms <= 0 {
            return Err(invalid("the window must be longer than 0".into()));
        }
        Ok(RateLimit::Every {
            messages,
            window_ms,
        })
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RateLimit::Off => f.write_str("off"),
            RateLimit::Every {
                messages,
                window_ms,
            } => write!(f, "{messages}/{}", duration::format_duration(*window_ms)),
        }
    }
}

impl Serialize for RateLimit {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for RateLimit {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<RateLimit, D::Error> {
        let text = String::deserialize(deserializer)?;
        RateLimit::parse(&text).map_err(de::Error::custom)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    /// Vigie's own JSON.
    Webhook,
    /// The Alertmanager webhook payload (version 4), for receivers written for Alertmanager.
    Alertmanager,
    Slack,
    Mattermost,
    /// Microsoft Teams.
    Teams,
    /// A light (or siren) switched on when a crisis opens and off when it closes.
    Beacon,
    Email,
}

/// One HTTP request of a beacon.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BeaconCall {
    /// `POST`, `PUT` or `GET`.
    #[serde(default = "default_beacon_method")]
    pub method: String,
    /// Overrides the channel's `url` for this request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

const BEACON_METHODS: [&str; 3] = ["POST", "PUT", "GET"];

fn default_beacon_method() -> String {
    "POST".to_string()
}

impl Default for BeaconCall {
    fn default() -> BeaconCall {
        BeaconCall {
            method: default_beacon_method(),
            url: None,
            body: None,
        }
    }
}

impl ChannelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Webhook => "webhook",
            ChannelKind::Alertmanager => "alertmanager",
            ChannelKind::Slack => "slack",
            ChannelKind::Mattermost => "mattermost",
            ChannelKind::Teams => "teams",
            ChannelKind::Beacon => "beacon",
            ChannelKind::Email => "email",
        }
    }

    /// Every kind but `email` is an HTTP request.
    pub fn is_http(self) -> bool {
        self != ChannelKind::Email
    }
}

impl ChannelSpec {
    /// The request that turns a beacon on, with its URL resolved (`None` without any URL).
    pub fn beacon_on(&self) -> Option<(String, BeaconCall)> {
        self.beacon_call(self.on.as_ref())
    }

    /// The request that turns a beacon off, with its URL resolved.
    pub fn beacon_off(&self) -> Option<(String, BeaconCall)> {
        self.beacon_call(self.off.as_ref())
    }

    fn beacon_call(&self, call: Option<&BeaconCall>) -> Option<(String, BeaconCall)> {
        let call = call.cloned().unwrap_or_default();
        let url = call.url.clone().or_else(|| self.url.clone())?;
        Some((url, call))
    }
}

// ---------------------------------------------------------------------------------------------
// Schedules

/// An on-call schedule, in local times of its time zone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSpec {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// An IANA zone name such as `Europe/Paris`.
    pub timezone: String,
    /// Layers: the last one with someone on call wins.
    #[serde(default)]
    pub rotations: Vec<RotationSpec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<OverrideSpec>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotationSpec {
    /// Contact ids, in turn order.
    pub members: Vec<String>,
    /// Local time the first member's first shift starts: `2026-11-02T08:00`.
    pub start: String,
    #[serde(rename = "shift", with = "duration")]
    pub shift_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverrideSpec {
    pub person: String,
    pub start: String,
    pub end: String,
}

impl ScheduleSpec {
    /// The schedule with its local times turned into instants of its time zone. A local time
    /// that does not exist (skipped by a DST change) is taken after the gap, an ambiguous one
    /// (repeated) as its first occurrence. Shifts are fixed lengths: a weekly rotation that
    /// crosses a DST change hands over an hour earlier or later in local time from then on.
    pub fn compile(&self) -> Result<Schedule, String> {
        let tz = time_zone(&self.timezone)?;
        let mut rotations = Vec::with_capacity(self.rotations.len());
        for rotation in &self.rotations {
            if rotation.shift_ms <= 0 {
                return Err("shift: must be longer than zero".to_string());
            }
            rotations.push(Rotation {
                members: rotation.members.clone(),
                start_ms: local_ms(&tz, &rotation.start)?,
                shift_ms: rotation.shift_ms,
            });
        }
        let mut overrides = Vec::with_capacity(self.overrides.len());
        for cover in &self.overrides {
            overrides.push(Override {
                person: cover.person.clone(),
                start_ms: local_ms(&tz, &cover.start)?,
                end_ms: local_ms(&tz, &cover.end)?,
            });
        }
        Ok(Schedule {
            id: self.id.clone(),
            rotations,
            overrides,
        })
    }

    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.id)
    }
}

/// The zone of an IANA name, from the system's zoneinfo (or jiff's bundled copy).
fn time_zone(name: &str) -> Result<TimeZone, String> {
    if name.trim().is_empty() {
        return Err("time zone must not be empty".to_string());
    }
    TimeZone::get(name)
        .map_err(|_| format!("unknown time zone `{name}`: use an IANA name such as `Europe/Paris`"))
}

/// A local date and time (`2026-11-02T08:00`) of `tz` as epoch milliseconds.
fn local_ms(tz: &TimeZone, text: &str) -> Result<i64, String> {
    let invalid = || format!("`{text}` is not a local date and time such as `2026-11-02T08:00`");
    let text = text.trim();
    // jiff would read and drop an offset; refuse it so nobody believes it counts.
    let time = text
        .split_once(['T', 't', ' '])
        .map_or("", |(_, time)| time);
    if time.contains(['+', '-', 'Z', 'z', '[']) {
        return Err(format!(
            "`{text}`: write the local time without an offset, the time zone gives it"
        ));
    }
    let datetime: civil::DateTime = text.parse().map_err(|_| invalid())?;
    let zoned = datetime.to_zoned(tz.clone()).map_err(|_| invalid())?;
    Ok(zoned.timestamp().as_millisecond())
}

/// An RFC 3339 instant (`2026-11-28T00:00:00Z`) as epoch milliseconds.
fn instant_ms(text: &str) -> Result<i64, String> {
    text.trim()
        .parse::<Timestamp>()
        .map(Timestamp::as_millisecond)
        .map_err(|_| format!("`{text}` is not an RFC 3339 time such as `2026-11-28T00:00:00Z`"))
}

// ---------------------------------------------------------------------------------------------
// Escalation policies and business hours

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySpec {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub steps: Vec<StepSpec>,
    /// How many times the whole policy runs again after its last step.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub repeat: u32,
    /// Acknowledged but not resolved this long: escalate again from the next step.
    #[serde(
        rename = "reescalate_after",
        default,
        skip_serializing_if = "Option::is_none",
        with = "duration::option"
    )]
    pub reescalate_after_ms: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepSpec {
    pub notify: Vec<TargetSpec>,
    /// How long to wait for an acknowledgement before the next step.
    #[serde(rename = "wait", with = "duration")]
    pub wait_ms: i64,
    /// Only for incidents of this priority or higher (1 = P1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_priority: Option<u8>,
    /// Only within, or only outside, the client's `business_hours`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub during: Option<Hours>,
}

/// Who is notified, as written: `{team: l2-systems}`, `{person: thomas-petit}`,
/// `{schedule: l2-systems-oncall}`, `{client_contact: jean-dupuis}`, `{client_contacts: all}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum TargetSpec {
    Team(String),
    Person(String),
    Schedule(String),
    ClientContact(String),
    /// The client's own people: its contacts that are in no team (`Client::client_contacts`).
    ClientContacts(AllContacts),
}

/// The one value of `client_contacts:`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AllContacts {
    All,
}

impl TargetSpec {
    pub fn target(&self) -> Target {
        match self {
            TargetSpec::Team(id) => Target::Team(id.clone()),
            TargetSpec::Person(id) => Target::Person(id.clone()),
            TargetSpec::Schedule(id) => Target::Schedule(id.clone()),
            TargetSpec::ClientContact(id) => Target::ClientContact(Some(id.clone())),
            TargetSpec::ClientContacts(AllContacts::All) => Target::ClientContact(None),
        }
    }

    /// The YAML key, to name the field in a diagnostic.
    fn key(&self) -> &'static str {
        match self {
            TargetSpec::Team(_) => "team",
            TargetSpec::Person(_) => "person",
            TargetSpec::Schedule(_) => "schedule",
            TargetSpec::ClientContact(_) => "client_contact",
            TargetSpec::ClientContacts(_) => "client_contacts",
        }
    }
}

impl PolicySpec {
    pub fn compile(&self) -> Policy {
        Policy {
            id: self.id.clone(),
            steps: self
                .steps
                .iter()
                .map(|step| Step {
                    targets: step.notify.iter().map(TargetSpec::target).collect(),
                    wait_ms: step.wait_ms,
                    max_priority: step.max_priority,
                    during: step.during,
                })
                .collect(),
            repeat: self.repeat,
            reescalate_after_ms: self.reescalate_after_ms,
        }
    }

    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.id)
    }
}

/// When the client's people are at work, for `during:` conditions of escalation steps.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusinessHours {
    pub timezone: String,
    /// Default Monday to Friday.
    #[serde(default = "working_days")]
    pub days: Vec<Weekday>,
    /// Local start time, included: `08:00`.
    pub from: TimeOfDay,
    /// Local end time, excluded: `18:00` (`24:00` for midnight).
    pub to: TimeOfDay,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Weekday {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

fn working_days() -> Vec<Weekday> {
    vec![
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
    ]
}

/// A wall-clock time `HH:MM`, `00:00` to `24:00`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimeOfDay {
    minutes: u16,
}

impl TimeOfDay {
    pub fn new(hour: u8, minute: u8) -> Option<TimeOfDay> {
        let minutes = u16::from(hour) * 60 + u16::from(minute);
        (minute < 60 && minutes <= 24 * 60).then_some(TimeOfDay { minutes })
    }

    /// Minutes since midnight.
    pub fn minutes(self) -> u16 {
        self.minutes
    }

    fn parse(text: &str) -> Option<TimeOfDay> {
        let (hour, minute) = text.trim().split_once(':')?;
        if hour.is_empty() || hour.len() > 2 || minute.len() != 2 {
            return None;
        }
        TimeOfDay::new(hour.parse().ok()?, minute.parse().ok()?)
    }
}

impl fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.minutes / 60, self.minutes % 60)
    }
}

impl Serialize for TimeOfDay {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for TimeOfDay {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<TimeOfDay, D::Error> {
        struct TimeVisitor;

        impl Visitor<'_> for TimeVisitor {
            type Value = TimeOfDay;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a time of day such as `08:00`")
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<TimeOfDay, E> {
                TimeOfDay::parse(text).ok_or_else(|| {
                    E::custom(format!(
                        "`{text}` is not a time of day: write `HH:MM`, `00:00` to `24:00`"
                    ))
                })
            }
        }

        deserializer.deserialize_str(TimeVisitor)
    }
}

impl Weekday {
    fn of(day: civil::Weekday) -> Weekday {
        match day {
            civil::Weekday::Monday => Weekday::Mon,
            civil::Weekday::Tuesday => Weekday::Tue,
            civil::Weekday::Wednesday => Weekday::Wed,
            civil::Weekday::Thursday => Weekday::Thu,
            civil::Weekday::Friday => Weekday::Fri,
            civil::Weekday::Saturday => Weekday::Sat,
            civil::Weekday::Sunday => Weekday::Sun,
        }
    }
}

impl BusinessHours {
    /// The occurrence of the window that holds `time_ms`: when it started and when it ends,
    /// as epoch milliseconds (local `from` and `to` of that day in the zone).
    pub fn occurrence(&self, time_ms: i64) -> Option<(i64, i64)> {
        if !self.contains(time_ms) {
            return None;
        }
        let tz = TimeZone::get(&self.timezone).ok()?;
        let day = tz
            .to_datetime(Timestamp::from_millisecond(time_ms).ok()?)
            .date();
        let at = |time: TimeOfDay| -> Option<i64> {
            let (date, minutes) = if time.minutes == 24 * 60 {
                (day.tomorrow().ok()?, 0)
            } else {
                (day, time.minutes)
            };
            let local = date.at(
                i8::try_from(minutes / 60).ok()?,
                i8::try_from(minutes % 60).ok()?,
                0,
                0,
            );
            Some(tz.to_zoned(local).ok()?.timestamp().as_millisecond())
        };
        Some((at(self.from)?, at(self.to)?))
    }

    /// Whether `time_ms` falls on one of `days`, from `from` (included) to `to` (excluded),
    /// in local time of the zone — so 08:00 stays 08:00 across DST changes. An unknown zone
    /// (refused by validation) contains nothing.
    pub fn contains(&self, time_ms: i64) -> bool {
        let (Ok(tz), Ok(instant)) = (
            TimeZone::get(&self.timezone),
            Timestamp::from_millisecond(time_ms),
        ) else {
            return false;
        };
        let local = tz.to_datetime(instant);
        let minutes = u16::try_from(local.hour()).unwrap_or(0) * 60
            + u16::try_from(local.minute()).unwrap_or(0);
        self.days.contains(&Weekday::of(local.weekday()))
            && self.from.minutes <= minutes
            && minutes < self.to.minutes
    }
}

// ---------------------------------------------------------------------------------------------
// Routing

/// Which team and policy take an incident: the first route whose `match` holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSpec {
    #[serde(
        rename = "match",
        default,
        skip_serializing_if = "RouteMatch::is_empty"
    )]
    pub matcher: RouteMatch,
    pub team: String,
    pub policy: String,
}

/// Every field given must hold; a list holds when one of its values is among the incident's.
/// Empty, it matches every incident: the default route.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteMatch {
    /// Of the incident's alerts (`ransomware`…), compared case-insensitively.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
    /// Of the incident's assets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Of the incident's assets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<AssetKind>,
    /// Of the incident's alerts: `supervision`, `sigma`, `alertmanager`…
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
    /// This priority or higher (1 = P1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_priority: Option<u8>,
}

/// What routing needs to know of an incident.
#[derive(Clone, Debug, PartialEq)]
pub struct RouteFacts<'a> {
    pub categories: &'a [String],
    pub asset_tags: Vec<&'a str>,
    pub asset_kinds: Vec<AssetKind>,
    pub sources: &'a [String],
    /// 1 = P1.
    pub priority: u8,
}

impl RouteMatch {
    pub fn is_empty(&self) -> bool {
        *self == RouteMatch::default()
    }

    pub fn matches(&self, facts: &RouteFacts) -> bool {
        let any_text = |wanted: &[String], have: &mut dyn Iterator<Item = &str>| {
            wanted.is_empty() || {
                let have: Vec<&str> = have.collect();
                wanted
                    .iter()
                    .any(|want| have.iter().any(|h| h.eq_ignore_ascii_case(want)))
            }
        };
        any_text(
            &self.categories,
            &mut facts.categories.iter().map(String::as_str),
        ) && any_text(&self.tags, &mut facts.asset_tags.iter().copied())
            && (self.kinds.is_empty() || self.kinds.iter().any(|k| facts.asset_kinds.contains(k)))
            && any_text(&self.sources, &mut facts.sources.iter().map(String::as_str))
            && self.min_priority.is_none_or(|max| facts.priority <= max)
    }
}

// ---------------------------------------------------------------------------------------------
// Crisis

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrisisTriggerSpec {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub when: TriggerWhen,
}

/// The condition of a crisis trigger, as written (see `crisis::TriggerCondition`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum TriggerWhen {
    Unresolved {
        /// 1 = P1; this priority or higher.
        max_priority: u8,
        /// Escalated to a team of at least this level.
        #[serde(default)]
        min_level: u8,
        #[serde(rename = "for", with = "duration")]
        for_ms: i64,
    },
    Category {
        category: String,
        #[serde(default = "default_min_criticality")]
        min_criticality: u8,
    },
    SameAttack {
        #[serde(default = "default_min_clients")]
        min_clients: usize,
        #[serde(rename = "within", with = "duration")]
        within_ms: i64,
    },
}

fn default_min_criticality() -> u8 {
    1
}

fn default_min_clients() -> usize {
    2
}

impl CrisisTriggerSpec {
    pub fn compile(&self) -> CrisisTrigger {
        let condition = match &self.when {
            TriggerWhen::Unresolved {
                max_priority,
                min_level,
                for_ms,
            } => TriggerCondition::Unresolved {
                max_priority: *max_priority,
                min_level: *min_level,
                for_ms: *for_ms,
            },
            TriggerWhen::Category {
                category,
                min_criticality,
            } => TriggerCondition::Category {
                category: category.clone(),
                min_criticality: *min_criticality,
            },
            TriggerWhen::SameAttack {
                min_clients,
                within_ms,
            } => TriggerCondition::SameAttack {
                min_clients: *min_clients,
                within_ms: *within_ms,
            },
        };
        CrisisTrigger {
            id: self.id.clone(),
            name: self.name.clone().unwrap_or_else(|| self.id.clone()),
            condition,
        }
    }
}

/// Who and what a crisis of the client sets off, besides the crisis record.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrisisSettings {
    /// Channels of kind `beacon`: on when a crisis opens, off when the last one closes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub beacon: Vec<String>,
    /// Notified when a crisis opens (the same forms as an escalation step's `notify`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notify: Vec<TargetSpec>,
    /// Channels told when a crisis opens and closes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<String>,
}

impl CrisisSettings {
    pub fn is_empty(&self) -> bool {
        *self == CrisisSettings::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Priority

/// How the client's incidents get their priority; every field defaults to Vigie's built-in
/// rules (`incident::priority`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrioritySpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matrix: Option<PriorityMatrix>,
    /// Categories that make an incident's urgency high.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urgent_categories: Option<Vec<String>>,
    /// So many assets touched within the window make the urgency high.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spread: Option<SpreadSpec>,
    /// Contract name to the lowest impact of the client's incidents.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub contract_impact: BTreeMap<String, Level>,
}

/// Rows are impact, columns urgency high, medium, low.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriorityMatrix {
    pub high: Vec<Priority>,
    pub medium: Vec<Priority>,
    pub low: Vec<Priority>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpreadSpec {
    pub assets: usize,
    #[serde(rename = "within", with = "duration")]
    pub within_ms: i64,
}

pub const DEFAULT_URGENT_CATEGORIES: [&str; 3] = ["ransomware", "exfiltration", "lateral_movement"];
pub const DEFAULT_SPREAD_ASSETS: usize = 3;
pub const DEFAULT_SPREAD_WINDOW_MS: i64 = 15 * 60_000;

/// A client's priority rules with every default filled in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PriorityPolicy {
    /// `matrix[impact][urgency]`, each axis in the order high, medium, low.
    pub matrix: [[Priority; 3]; 3],
    pub urgent_categories: Vec<String>,
    pub spread_assets: usize,
    pub spread_window_ms: i64,
    pub contract_impact: BTreeMap<String, Level>,
}

const LEVELS: [Level; 3] = [Level::High, Level::Medium, Level::Low];

fn level_index(level: Level) -> usize {
    match level {
        Level::High => 0,
        Level::Medium => 1,
        Level::Low => 2,
    }
}

impl Default for PriorityPolicy {
    fn default() -> PriorityPolicy {
        PriorityPolicy {
            matrix: LEVELS
                .map(|impact| LEVELS.map(|urgency| crate::incident::priority(impact, urgency))),
            urgent_categories: DEFAULT_URGENT_CATEGORIES.map(String::from).to_vec(),
            spread_assets: DEFAULT_SPREAD_ASSETS,
            spread_window_ms: DEFAULT_SPREAD_WINDOW_MS,
            contract_impact: BTreeMap::new(),
        }
    }
}

impl PriorityPolicy {
    pub fn priority(&self, impact: Level, urgency: Level) -> Priority {
        self.matrix[level_index(impact)][level_index(urgency)]
    }

    /// The lowest impact an incident of a client under this contract has.
    pub fn impact_floor(&self, contract: Option<&str>) -> Option<Level> {
        self.contract_impact.get(contract?).copied()
    }

    /// Whether one of `categories` makes the urgency high (case-insensitively).
    pub fn is_urgent_category(&self, category: &str) -> bool {
        self.urgent_categories
            .iter()
            .any(|urgent| urgent.eq_ignore_ascii_case(category))
    }
}

impl PrioritySpec {
    pub fn is_default(&self) -> bool {
        *self == PrioritySpec::default()
    }
}

impl PriorityMatrix {
    fn rows(&self) -> [&Vec<Priority>; 3] {
        [&self.high, &self.medium, &self.low]
    }
}

// ---------------------------------------------------------------------------------------------
// Silences and inhibition

/// A silence written in the estate, as Alertmanager writes one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SilenceSpec {
    /// `asset="lyo-print01"`, `rule=~"check/.*"`…
    pub matchers: Vec<String>,
    /// RFC 3339: `2026-11-28T00:00:00Z`.
    pub starts_at: String,
    pub ends_at: String,
    pub created_by: String,
    pub comment: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InhibitRuleSpec {
    pub source_matchers: Vec<String>,
    pub target_matchers: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub equal: Vec<String>,
}

impl SilenceSpec {
    fn compile(&self, id: String) -> Result<Silence, String> {
        Ok(Silence {
            id,
            matchers: parse_matchers(&self.matchers)?,
            starts_at_ms: instant_ms(&self.starts_at)?,
            ends_at_ms: instant_ms(&self.ends_at)?,
            created_by: self.created_by.clone(),
            comment: self.comment.clone(),
        })
    }
}

impl InhibitRuleSpec {
    fn compile(&self) -> Result<InhibitRule, String> {
        Ok(InhibitRule {
            source: parse_matchers(&self.source_matchers)?,
            target: parse_matchers(&self.target_matchers)?,
            equal: self.equal.clone(),
        })
    }
}

fn parse_matchers(texts: &[String]) -> Result<Vec<Matcher>, String> {
    texts.iter().map(|text| Matcher::parse(text)).collect()
}

// ---------------------------------------------------------------------------------------------
// The client's side

impl Client {
    pub fn channel(&self, id: &str) -> Option<&ChannelSpec> {
        self.channels.iter().find(|channel| channel.id == id)
    }

    pub fn schedule(&self, id: &str) -> Option<&ScheduleSpec> {
        self.schedules.iter().find(|schedule| schedule.id == id)
    }

    pub fn escalation_policy(&self, id: &str) -> Option<&PolicySpec> {
        self.escalation_policies
            .iter()
            .find(|policy| policy.id == id)
    }

    /// The first route that matches the incident; `None` when no route does (no routing, or
    /// no default route).
    pub fn route(&self, facts: &RouteFacts) -> Option<&RouteSpec> {
        self.routing
            .iter()
            .find(|route| route.matcher.matches(facts))
    }

    /// The client's own people: its contacts that are in no team (the MSP's engineers on the
    /// account are in teams). What `client_contacts: all` notifies.
    pub fn client_contacts(&self) -> Vec<&Contact> {
        self.contacts
            .iter()
            .filter(|contact| {
                !self
                    .teams
                    .iter()
                    .any(|team| team.members.contains(&contact.id))
            })
            .collect()
    }

    /// The language of the client's own people's messages.
    pub fn language(&self) -> &str {
        self.language.as_deref().unwrap_or(DEFAULT_LANGUAGE)
    }

    /// Whether `time_ms` is within the client's business hours; a client without business
    /// hours is always within them.
    pub fn in_business_hours(&self, time_ms: i64) -> bool {
        self.business_hours
            .as_ref()
            .is_none_or(|hours| hours.contains(time_ms))
    }

    pub fn priority_policy(&self) -> PriorityPolicy {
        let mut policy = PriorityPolicy::default();
        let spec = &self.priority;
        if let Some(matrix) = &spec.matrix {
            for (row, written) in matrix.rows().into_iter().enumerate() {
                for (column, cell) in written.iter().take(3).enumerate() {
                    policy.matrix[row][column] = *cell;
                }
            }
        }
        if let Some(categories) = &spec.urgent_categories {
            policy.urgent_categories = categories.clone();
        }
        if let Some(spread) = &spec.spread {
            policy.spread_assets = spread.assets;
            policy.spread_window_ms = spread.within_ms;
        }
        policy.contract_impact = spec.contract_impact.clone();
        policy
    }

    /// The silences written in the estate, with ids `config:<client>:<index>`; one that does
    /// not read (refused by validation) is left out.
    pub fn silences(&self) -> Vec<Silence> {
        self.silences
            .iter()
            .enumerate()
            .filter_map(|(index, spec)| spec.compile(format!("config:{}:{index}", self.id)).ok())
            .collect()
    }

    pub fn inhibit_rules(&self) -> Vec<InhibitRule> {
        self.inhibit_rules
            .iter()
            .filter_map(|spec| spec.compile().ok())
            .collect()
    }

    pub fn crisis_triggers(&self) -> Vec<CrisisTrigger> {
        self.crisis_triggers
            .iter()
            .map(CrisisTriggerSpec::compile)
            .collect()
    }
}

impl Contact {
    /// The language of messages to this person (`en` when not written).
    pub fn language(&self) -> &str {
        self.language.as_deref().unwrap_or(DEFAULT_LANGUAGE)
    }
}

pub(super) fn default_team_level() -> u8 {
    DEFAULT_TEAM_LEVEL
}

pub(super) fn is_default_team_level(level: &u8) -> bool {
    *level == DEFAULT_TEAM_LEVEL
}

fn is_zero(value: &u32) -> bool {
    *value == 0
}

// ---------------------------------------------------------------------------------------------
// Validation

/// Every problem of the client's response settings, each on its field.
pub(super) fn check_response(findings: &mut Vec<Finding>, client: &Client) {
    let ids = Ids::of(client);
    if let Some(language) = &client.language {
        check_language(findings, "language", language);
    }
    for (index, contact) in client.contacts.iter().enumerate() {
        if let Some(language) = &contact.language {
            check_language(findings, format!("contacts[{index}].language"), language);
        }
    }
    for (index, team) in client.teams.iter().enumerate() {
        let field = format!("teams[{index}]");
        if team.level == 0 {
            findings.push(Finding::new(
                format!("{field}.level"),
                "must be 1 or more (1 = level-1 supervision)",
            ));
        }
        if let Some(email) = &team.email
            && !looks_like_email(email)
        {
            findings.push(Finding::new(
                format!("{field}.email"),
                format!("`{email}` is not an email address"),
            ));
        }
        for (channel_index, channel) in team.channels.iter().enumerate() {
            if !ids.channels.contains_key(channel.as_str()) {
                findings.push(Finding::new(
                    format!("{field}.channels[{channel_index}]"),
                    format!("unknown channel `{channel}`"),
                ));
            }
        }
    }
    check_channels(findings, client);
    check_schedules(findings, client, &ids);
    if let Some(hours) = &client.business_hours {
        check_business_hours(findings, hours);
    }
    check_policies(findings, client, &ids);
    check_routing(findings, client, &ids);
    check_crisis(findings, client, &ids);
    check_priority(findings, &client.priority);
    check_silences(findings, client);
    check_recurring_downtimes(findings, client);
}

fn check_recurring_downtimes(findings: &mut Vec<Finding>, client: &Client) {
    let mut names: HashMap<&str, usize> = HashMap::new();
    for (index, downtime) in client.recurring_downtimes.iter().enumerate() {
        let field = format!("recurring_downtimes[{index}]");
        check_not_empty(findings, format!("{field}.name"), &downtime.name);
        let first = *names.entry(downtime.name.as_str()).or_insert(index);
        if first != index {
            findings.push(Finding {
                field: format!("{field}.name"),
                message: format!("recurring downtime `{}` is defined twice", downtime.name),
                first_defined: Some(format!("recurring_downtimes[{first}]")),
            });
        }
        check_window(
            findings,
            &format!("{field}.window"),
            &downtime.window,
            "a window does not span midnight, write it as two downtimes",
        );
    }
}

/// The ids a reference may name.
struct Ids<'a> {
    teams: HashSet<&'a str>,
    contacts: HashSet<&'a str>,
    channels: HashMap<&'a str, ChannelKind>,
    schedules: HashSet<&'a str>,
    policies: HashSet<&'a str>,
}

impl<'a> Ids<'a> {
    fn of(client: &'a Client) -> Ids<'a> {
        Ids {
            teams: client.teams.iter().map(|t| t.id.as_str()).collect(),
            contacts: client.contacts.iter().map(|c| c.id.as_str()).collect(),
            channels: client
                .channels
                .iter()
                .map(|c| (c.id.as_str(), c.kind))
                .collect(),
            schedules: client.schedules.iter().map(|s| s.id.as_str()).collect(),
            policies: client
                .escalation_policies
                .iter()
                .map(|p| p.id.as_str())
                .collect(),
        }
    }
}

/// `en`, `fr`, `pt-BR`: a BCP 47 primary language of 2–3 letters and optional subtags.
fn check_language(findings: &mut Vec<Finding>, field: impl Into<String>, language: &str) {
    let mut parts = language.split('-');
    let primary = parts.next().unwrap_or("");
    let reads = (2..=3).contains(&primary.len())
        && primary.chars().all(|c| c.is_ascii_alphabetic())
        && parts.all(|part| {
            (1..=8).contains(&part.len()) && part.chars().all(|c| c.is_ascii_alphanumeric())
        });
    if !reads {
        findings.push(Finding::new(
            field,
            format!("`{language}` is not a language tag such as `en` or `fr`"),
        ));
    }
}

/// A sanity check, not RFC 3986: `http://` or `https://`, then a host.
fn url_problem(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    let host = rest.map(|rest| rest.split(['/', '?', '#']).next().unwrap_or(""));
    match host {
        None => Some(format!("`{url}` is not an http:// or https:// URL")),
        Some(host)
            if host.is_empty()
                || host.starts_with(':')
                || host.chars().any(|c| c.is_whitespace() || c.is_control()) =>
        {
            Some(format!("`{url}` has no host"))
        }
        Some(_) => None,
    }
}

fn check_channels(findings: &mut Vec<Finding>, client: &Client) {
    check_unique_ids(
        findings,
        "channel",
        "channels",
        client.channels.iter().map(|channel| channel.id.as_str()),
    );
    for (index, channel) in client.channels.iter().enumerate() {
        let field = format!("channels[{index}]");
        let kind = channel.kind.as_str();
        match (&channel.url, channel.kind) {
            (Some(url), _) => {
                if let Some(problem) = url_problem(url) {
                    findings.push(Finding::new(format!("{field}.url"), problem));
                }
            }
            (None, ChannelKind::Email) => {}
            (None, _) => findings.push(Finding::new(
                format!("{field}.url"),
                format!("a `{kind}` channel needs a `url`"),
            )),
        }
        if channel.kind == ChannelKind::Email {
            if channel.url.is_some() {
                findings.push(Finding::new(
                    format!("{field}.url"),
                    "an `email` channel has no `url`: list addresses under `to`",
                ));
            }
            if channel.to.is_empty() {
                findings.push(Finding::new(
                    format!("{field}.to"),
                    "an `email` channel needs at least one address",
                ));
            }
            for (to_index, address) in channel.to.iter().enumerate() {
                if !looks_like_email(address) {
                    findings.push(Finding::new(
                        format!("{field}.to[{to_index}]"),
                        format!("`{address}` is not an email address"),
                    ));
                }
            }
            if !channel.headers.is_empty() {
                findings.push(Finding::new(
                    format!("{field}.headers"),
                    "only HTTP channels take `headers`",
                ));
            }
        } else if !channel.to.is_empty() {
            findings.push(Finding::new(
                format!("{field}.to"),
                format!("only `email` channels take `to`, not `{kind}`"),
            ));
        }
        if let Some(language) = &channel.language {
            if channel.kind == ChannelKind::Beacon {
                findings.push(Finding::new(
                    format!("{field}.language"),
                    "a `beacon` channel carries no message, so no `language`",
                ));
            } else {
                check_language(findings, format!("{field}.language"), language);
            }
        }
        for (key, call) in [("on", &channel.on), ("off", &channel.off)] {
            let Some(call) = call else {
                continue;
            };
            if channel.kind != ChannelKind::Beacon {
                findings.push(Finding::new(
                    format!("{field}.{key}"),
                    format!("only `beacon` channels take `{key}`, not `{kind}`"),
                ));
                continue;
            }
            if !BEACON_METHODS.contains(&call.method.as_str()) {
                findings.push(Finding::new(
                    format!("{field}.{key}.method"),
                    format!("`{}` is not one of POST, PUT, GET", call.method),
                ));
            }
            if let Some(url) = &call.url
                && let Some(problem) = url_problem(url)
            {
                findings.push(Finding::new(format!("{field}.{key}.url"), problem));
            }
        }
        for name in channel.headers.keys() {
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                findings.push(Finding::new(
                    format!("{field}.headers"),
                    format!("`{name}` is not a header name"),
                ));
            }
        }
    }
}

fn check_schedules(findings: &mut Vec<Finding>, client: &Client, ids: &Ids) {
    check_unique_ids(
        findings,
        "schedule",
        "schedules",
        client.schedules.iter().map(|schedule| schedule.id.as_str()),
    );
    for (index, schedule) in client.schedules.iter().enumerate() {
        let field = format!("schedules[{index}]");
        if let Some(name) = &schedule.name {
            check_not_empty(findings, format!("{field}.name"), name);
        }
        let tz = match time_zone(&schedule.timezone) {
            Ok(tz) => Some(tz),
            Err(problem) => {
                findings.push(Finding::new(format!("{field}.timezone"), problem));
                None
            }
        };
        if schedule.rotations.is_empty() {
            findings.push(Finding::new(
                format!("{field}.rotations"),
                "a schedule needs at least one rotation",
            ));
        }
        for (rotation_index, rotation) in schedule.rotations.iter().enumerate() {
            let field = format!("{field}.rotations[{rotation_index}]");
            if rotation.members.is_empty() {
                findings.push(Finding::new(
                    format!("{field}.members"),
                    "a rotation needs at least one member",
                ));
            }
            for (member_index, member) in rotation.members.iter().enumerate() {
                if !ids.contacts.contains(member.as_str()) {
                    findings.push(Finding::new(
                        format!("{field}.members[{member_index}]"),
                        format!("unknown contact `{member}`"),
                    ));
                }
            }
            if let Some(tz) = &tz
                && let Err(problem) = local_ms(tz, &rotation.start)
            {
                findings.push(Finding::new(format!("{field}.start"), problem));
            }
            if rotation.shift_ms <= 0 {
                findings.push(Finding::new(
                    format!("{field}.shift"),
                    "must be longer than zero",
                ));
            }
        }
        for (cover_index, cover) in schedule.overrides.iter().enumerate() {
            let field = format!("{field}.overrides[{cover_index}]");
            if !ids.contacts.contains(cover.person.as_str()) {
                findings.push(Finding::new(
                    format!("{field}.person"),
                    format!("unknown contact `{}`", cover.person),
                ));
            }
            let Some(tz) = &tz else {
                continue;
            };
            let start = local_ms(tz, &cover.start)
                .map_err(|problem| findings.push(Finding::new(format!("{field}.start"), problem)));
            let end = local_ms(tz, &cover.end)
                .map_err(|problem| findings.push(Finding::new(format!("{field}.end"), problem)));
            if let (Ok(start), Ok(end)) = (start, end)
                && end <= start
            {
                findings.push(Finding::new(
                    format!("{field}.end"),
                    "must be after `start`",
                ));
            }
        }
    }
}

fn check_business_hours(findings: &mut Vec<Finding>, hours: &BusinessHours) {
    check_window(
        findings,
        "business_hours",
        hours,
        "business hours do not span midnight, write the night as `during: outside_business_hours`",
    );
}

/// A weekly window (`BusinessHours`'s shape) at `field`; `no_midnight` says what to write
/// instead of a window across midnight.
pub(crate) fn check_window(
    findings: &mut Vec<Finding>,
    field: &str,
    hours: &BusinessHours,
    no_midnight: &str,
) {
    if let Err(problem) = time_zone(&hours.timezone) {
        findings.push(Finding::new(format!("{field}.timezone"), problem));
    }
    if hours.days.is_empty() {
        findings.push(Finding::new(
            format!("{field}.days"),
            "must name at least one day",
        ));
    }
    if hours.to <= hours.from {
        findings.push(Finding::new(
            format!("{field}.to"),
            format!("must be after `from` ({}): {no_midnight}", hours.from),
        ));
    }
}

fn check_target(findings: &mut Vec<Finding>, field: &str, target: &TargetSpec, ids: &Ids) {
    let (known, what, id) = match target {
        TargetSpec::Team(id) => (ids.teams.contains(id.as_str()), "team", id),
        TargetSpec::Person(id) | TargetSpec::ClientContact(id) => {
            (ids.contacts.contains(id.as_str()), "contact", id)
        }
        TargetSpec::Schedule(id) => (ids.schedules.contains(id.as_str()), "schedule", id),
        TargetSpec::ClientContacts(AllContacts::All) => return,
    };
    if !known {
        findings.push(Finding::new(
            format!("{field}.{}", target.key()),
            format!("unknown {what} `{id}`"),
        ));
    }
}

fn check_priority_number(findings: &mut Vec<Finding>, field: String, priority: Option<u8>) {
    if let Some(priority) = priority
        && !(1..=5).contains(&priority)
    {
        findings.push(Finding::new(field, "must be between 1 (P1) and 5 (P5)"));
    }
}

fn check_policies(findings: &mut Vec<Finding>, client: &Client, ids: &Ids) {
    check_unique_ids(
        findings,
        "escalation policy",
        "escalation_policies",
        client
            .escalation_policies
            .iter()
            .map(|policy| policy.id.as_str()),
    );
    for (index, policy) in client.escalation_policies.iter().enumerate() {
        let field = format!("escalation_policies[{index}]");
        if let Some(name) = &policy.name {
            check_not_empty(findings, format!("{field}.name"), name);
        }
        if policy.steps.is_empty() {
            findings.push(Finding::new(
                format!("{field}.steps"),
                "a policy needs at least one step",
            ));
        }
        for (step_index, step) in policy.steps.iter().enumerate() {
            let field = format!("{field}.steps[{step_index}]");
            if step.notify.is_empty() {
                findings.push(Finding::new(
                    format!("{field}.notify"),
                    "a step needs at least one target",
                ));
            }
            for (target_index, target) in step.notify.iter().enumerate() {
                check_target(
                    findings,
                    &format!("{field}.notify[{target_index}]"),
                    target,
                    ids,
                );
            }
            check_priority_number(findings, format!("{field}.max_priority"), step.max_priority);
            if step.during.is_some() && client.business_hours.is_none() {
                findings.push(Finding::new(
                    format!("{field}.during"),
                    "the client has no `business_hours` to compare with",
                ));
            }
        }
        if policy.reescalate_after_ms == Some(0) {
            findings.push(Finding::new(
                format!("{field}.reescalate_after"),
                "must be longer than zero",
            ));
        }
    }
}

fn check_routing(findings: &mut Vec<Finding>, client: &Client, ids: &Ids) {
    let mut default_route: Option<usize> = None;
    for (index, route) in client.routing.iter().enumerate() {
        let field = format!("routing[{index}]");
        if !ids.teams.contains(route.team.as_str()) {
            findings.push(Finding::new(
                format!("{field}.team"),
                format!("unknown team `{}`", route.team),
            ));
        }
        if !ids.policies.contains(route.policy.as_str()) {
            findings.push(Finding::new(
                format!("{field}.policy"),
                format!("unknown escalation policy `{}`", route.policy),
            ));
        }
        check_priority_number(
            findings,
            format!("{field}.match.min_priority"),
            route.matcher.min_priority,
        );
        if let Some(default_index) = default_route {
            findings.push(Finding::new(
                field,
                format!(
                    "never used: route {default_index} has an empty `match`, which takes every \
                     incident; put the default route last"
                ),
            ));
        } else if route.matcher.is_empty() {
            default_route = Some(index);
        }
    }
}

fn check_crisis(findings: &mut Vec<Finding>, client: &Client, ids: &Ids) {
    check_unique_ids(
        findings,
        "crisis trigger",
        "crisis_triggers",
        client
            .crisis_triggers
            .iter()
            .map(|trigger| trigger.id.as_str()),
    );
    for (index, trigger) in client.crisis_triggers.iter().enumerate() {
        let field = format!("crisis_triggers[{index}]");
        if let Some(name) = &trigger.name {
            check_not_empty(findings, format!("{field}.name"), name);
        }
        match &trigger.when {
            TriggerWhen::Unresolved {
                max_priority,
                min_level: _,
                for_ms: _,
            } => check_priority_number(
                findings,
                format!("{field}.when.unresolved.max_priority"),
                Some(*max_priority),
            ),
            TriggerWhen::Category {
                category,
                min_criticality,
            } => {
                check_not_empty(
                    findings,
                    format!("{field}.when.category.category"),
                    category,
                );
                if !super::CRITICALITY_RANGE.contains(min_criticality) {
                    findings.push(Finding::new(
                        format!("{field}.when.category.min_criticality"),
                        "must be between 1 and 5",
                    ));
                }
            }
            TriggerWhen::SameAttack {
                min_clients,
                within_ms,
            } => {
                if *min_clients < 2 {
                    findings.push(Finding::new(
                        format!("{field}.when.same_attack.min_clients"),
                        "must be 2 or more: the same attack on several clients",
                    ));
                }
                if *within_ms <= 0 {
                    findings.push(Finding::new(
                        format!("{field}.when.same_attack.within"),
                        "must be longer than zero",
                    ));
                }
            }
        }
    }
    let crisis = &client.crisis;
    for (index, beacon) in crisis.beacon.iter().enumerate() {
        let field = format!("crisis.beacon[{index}]");
        match ids.channels.get(beacon.as_str()) {
            None => findings.push(Finding::new(field, format!("unknown channel `{beacon}`"))),
            Some(ChannelKind::Beacon) => {}
            Some(kind) => findings.push(Finding::new(
                field,
                format!(
                    "channel `{beacon}` is of kind `{}`, not `beacon`",
                    kind.as_str()
                ),
            )),
        }
    }
    for (index, channel) in crisis.channels.iter().enumerate() {
        if !ids.channels.contains_key(channel.as_str()) {
            findings.push(Finding::new(
                format!("crisis.channels[{index}]"),
                format!("unknown channel `{channel}`"),
            ));
        }
    }
    for (index, target) in crisis.notify.iter().enumerate() {
        check_target(findings, &format!("crisis.notify[{index}]"), target, ids);
    }
}

fn check_priority(findings: &mut Vec<Finding>, spec: &PrioritySpec) {
    if let Some(matrix) = &spec.matrix {
        let mut complete = true;
        for (row, name) in matrix.rows().into_iter().zip(["high", "medium", "low"]) {
            if row.len() != 3 {
                complete = false;
                findings.push(Finding::new(
                    format!("priority.matrix.{name}"),
                    format!(
                        "must give 3 priorities, for urgency high, medium and low; found {}",
                        row.len()
                    ),
                ));
            }
        }
        if complete {
            let rows = matrix.rows();
            let names = ["high", "medium", "low"];
            'check: for impact in 0..3 {
                for urgency in 0..3 {
                    let cell = rows[impact][urgency];
                    let field = format!("priority.matrix.{}[{urgency}]", names[impact]);
                    // Each cell must be at most (as urgent as, or less urgent than) the cell of
                    // a higher impact above it and of a higher urgency to its left.
                    if impact > 0 && rows[impact - 1][urgency] > cell {
                        findings.push(Finding::new(
                            field,
                            format!(
                                "not monotonic: impact {} with urgency {} is {}, more urgent \
                                 than {} for impact {}; raising impact must never lower the \
                                 priority",
                                names[impact],
                                names[urgency],
                                cell.as_str(),
                                rows[impact - 1][urgency].as_str(),
                                names[impact - 1]
                            ),
                        ));
                        break 'check;
                    }
                    if urgency > 0 && rows[impact][urgency - 1] > cell {
                        findings.push(Finding::new(
                            field,
                            format!(
                                "not monotonic: urgency {} is {}, more urgent than {} for \
                                 urgency {} (impact {}); raising urgency must never lower the \
                                 priority",
                                names[urgency],
                                cell.as_str(),
                                rows[impact][urgency - 1].as_str(),
                                names[urgency - 1],
                                names[impact]
                            ),
                        ));
                        break 'check;
                    }
                }
            }
        }
    }
    if let Some(categories) = &spec.urgent_categories {
        for (index, category) in categories.iter().enumerate() {
            check_not_empty(
                findings,
                format!("priority.urgent_categories[{index}]"),
                category,
            );
        }
    }
    if let Some(spread) = &spec.spread {
        if spread.assets < 2 {
            findings.push(Finding::new(
                "priority.spread.assets",
                "must be 2 or more: one asset is no spread",
            ));
        }
        if spread.within_ms <= 0 {
            findings.push(Finding::new(
                "priority.spread.within",
                "must be longer than zero",
            ));
        }
    }
    for contract in spec.contract_impact.keys() {
        if contract.trim().is_empty() {
            findings.push(Finding::new(
                "priority.contract_impact",
                "a contract name must not be empty",
            ));
        }
    }
}

fn check_matchers(findings: &mut Vec<Finding>, field: &str, texts: &[String]) {
    for (index, text) in texts.iter().enumerate() {
        if let Err(problem) = Matcher::parse(text) {
            findings.push(Finding::new(format!("{field}[{index}]"), problem));
        }
    }
}

fn check_silences(findings: &mut Vec<Finding>, client: &Client) {
    for (index, spec) in client.silences.iter().enumerate() {
        let field = format!("silences[{index}]");
        let before = findings.len();
        check_matchers(findings, &format!("{field}.matchers"), &spec.matchers);
        for (key, text) in [("starts_at", &spec.starts_at), ("ends_at", &spec.ends_at)] {
            if let Err(problem) = instant_ms(text) {
                findings.push(Finding::new(format!("{field}.{key}"), problem));
            }
        }
        if findings.len() > before {
            continue;
        }
        if let Ok(silence) = spec.compile(String::new())
            && let Err(problem) = silence.validate()
        {
            let key = match problem.as_str() {
                p if p.contains("createdBy") => "created_by",
                p if p.contains("comment") => "comment",
                p if p.contains("endsAt") => "ends_at",
                _ => "matchers",
            };
            let problem = problem
                .replace("createdBy", "created_by")
                .replace("endsAt", "ends_at")
                .replace("startsAt", "starts_at");
            findings.push(Finding::new(format!("{field}.{key}"), problem));
        }
    }
    for (index, rule) in client.inhibit_rules.iter().enumerate() {
        let field = format!("inhibit_rules[{index}]");
        for (key, texts) in [
            ("source_matchers", &rule.source_matchers),
            ("target_matchers", &rule.target_matchers),
        ] {
            if texts.is_empty() {
                findings.push(Finding::new(
                    format!("{field}.{key}"),
                    "needs at least one matcher",
                ));
            }
            check_matchers(findings, &format!("{field}.{key}"), texts);
        }
        for (label_index, label) in rule.equal.iter().enumerate() {
            if label.is_empty() || !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                findings.push(Finding::new(
                    format!("{field}.equal[{label_index}]"),
                    format!("`{label}` is not a label name"),
                ));
            }
        }
    }
}
