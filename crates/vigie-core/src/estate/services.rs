//! A client's business services, read from its assets: every asset of kind `application` or
//! `business_service` is one, computed from its dependencies unless its `service:` block
//! lists indicators of its own (see `service` for the methods and propagation rules, and
//! `docs/response.md` for the YAML).
//!
//! ```yaml
//! - id: production-line-2
//!   kind: business_service
//!   service:
//!     method: worst                      # worst | best | {ratio: …} | {impact: …}
//!     downtime: inherit                  # ignore (default) | inherit
//!     indicators:                        # default: the asset's dependencies
//!       - { asset: lyo-scada-gw01 }
//!       - { check: { asset: lyo-mes01, check: mes } }
//!       - { service: erp, propagation: { decrease: 1 } }
//! ```
//!
//! The invariant this module guards: a client that passes `check_services` gives services
//! that `service::validate` accepts — every indicator names an asset, check or business
//! service of the client, and no service depends on itself.

use std::collections::{HashMap, HashSet};
use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};

use super::validate::Finding;
use super::{AssetKind, Client};
use crate::service::{
    BusinessService, DowntimePolicy, Impact, Indicator, Method, Propagation, RatioThreshold,
    Weighted,
};

/// How an application or business-service asset is computed, as written.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    #[serde(default, skip_serializing_if = "MethodSpec::is_worst")]
    pub method: MethodSpec,
    #[serde(default, skip_serializing_if = "is_ignore")]
    pub downtime: DowntimePolicy,
    /// Absent: the asset's dependencies, each as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub indicators: Option<Vec<IndicatorSpec>>,
}

/// Centreon BAM's methods: `worst`, `best`, `{ratio: {warning: 1, critical: "50%"}}` (how
/// many indicators are CRITICAL, a count or a percentage), `{impact: {warning: 80, critical:
/// 50}}` (health in percent at or below which the service is in that state).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum MethodSpec {
    #[default]
    Worst,
    Best,
    Ratio {
        warning: RatioSpec,
        critical: RatioSpec,
    },
    Impact {
        warning: u8,
        critical: u8,
    },
}

/// A ratio threshold: a count of CRITICAL indicators (`2`) or a percentage of them (`"50%"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RatioSpec {
    Count(u32),
    Percent(u8),
}

/// One indicator: exactly one of `asset`, `service` or `check`, with how it counts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndicatorSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset: Option<String>,
    /// Another application or business-service asset of the client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<CheckRef>,
    /// `as_is` (default), `{increase: 1}`, `{decrease: 1}`, `ignore`, `{fixed: CRITICAL}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub propagation: Option<Propagation>,
    /// For the `impact` method: the health lost, in percent, per state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impact: Option<ImpactSpec>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckRef {
    pub asset: String,
    pub check: String,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImpactSpec {
    #[serde(default)]
    pub warning: u8,
    #[serde(default)]
    pub unknown: u8,
    #[serde(default)]
    pub critical: u8,
}

/// A business service of a client, with what the asset it comes from says about it.
#[derive(Clone, Debug, PartialEq)]
pub struct BusinessServiceDef {
    pub service: BusinessService,
    pub criticality: u8,
    pub kind: AssetKind,
}

fn is_ignore(policy: &DowntimePolicy) -> bool {
    *policy == DowntimePolicy::Ignore
}

impl MethodSpec {
    pub fn is_worst(&self) -> bool {
        *self == MethodSpec::Worst
    }

    pub fn compile(&self) -> Method {
        match self {
            MethodSpec::Worst => Method::Worst,
            MethodSpec::Best => Method::Best,
            MethodSpec::Ratio { warning, critical } => Method::Ratio {
                warning: warning.compile(),
                critical: critical.compile(),
            },
            MethodSpec::Impact { warning, critical } => Method::Impact {
                warning: f64::from(*warning),
                critical: f64::from(*critical),
            },
        }
    }
}

impl RatioSpec {
    pub fn compile(self) -> RatioThreshold {
        match self {
            RatioSpec::Count(count) => RatioThreshold::Count(count),
            RatioSpec::Percent(percent) => RatioThreshold::Percent(f64::from(percent)),
        }
    }

    fn parse(text: &str) -> Option<RatioSpec> {
        let text = text.trim();
        match text.strip_suffix('%') {
            Some(percent) => percent.trim().parse().ok().map(RatioSpec::Percent),
            None => text.parse().ok().map(RatioSpec::Count),
        }
    }
}

impl fmt::Display for RatioSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RatioSpec::Count(count) => write!(f, "{count}"),
            RatioSpec::Percent(percent) => write!(f, "{percent}%"),
        }
    }
}

impl Serialize for RatioSpec {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            RatioSpec::Count(count) => serializer.serialize_u32(*count),
            RatioSpec::Percent(_) => serializer.collect_str(self),
        }
    }
}

impl<'de> Deserialize<'de> for RatioSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<RatioSpec, D::Error> {
        struct RatioVisitor;

        const EXPECTED: &str = "a count of CRITICAL indicators such as `2` or a percentage \
                                such as `\"50%\"`";

        impl Visitor<'_> for RatioVisitor {
            type Value = RatioSpec;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(EXPECTED)
            }

            fn visit_u64<E: de::Error>(self, value: u64) -> Result<RatioSpec, E> {
                u32::try_from(value)
                    .map(RatioSpec::Count)
                    .map_err(|_| E::custom(format!("`{value}` is too large")))
            }

            fn visit_i64<E: de::Error>(self, value: i64) -> Result<RatioSpec, E> {
                u64::try_from(value)
                    .map_err(|_| E::custom(format!("`{value}`: expected {EXPECTED}")))
                    .and_then(|value| self.visit_u64(value))
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<RatioSpec, E> {
                RatioSpec::parse(text)
                    .ok_or_else(|| E::custom(format!("`{text}`: expected {EXPECTED}")))
            }
        }

        deserializer.deserialize_any(RatioVisitor)
    }
}

impl IndicatorSpec {
    /// The indicator named, `None` unless exactly one of `asset`, `service`, `check` is given.
    pub fn indicator(&self) -> Option<Indicator> {
        match (&self.asset, &self.service, &self.check) {
            (Some(asset), None, None) => Some(Indicator::Asset(asset.clone())),
            (None, Some(service), None) => Some(Indicator::Service(service.clone())),
            (None, None, Some(check)) => Some(Indicator::Check {
                asset: check.asset.clone(),
                check: check.check.clone(),
            }),
            _ => None,
        }
    }
}

fn is_business_service(kind: AssetKind) -> bool {
    matches!(kind, AssetKind::Application | AssetKind::BusinessService)
}

impl Client {
    /// Every application and business-service asset as a business service, in asset order.
    pub fn business_services(&self) -> Vec<BusinessServiceDef> {
        let default_spec = ServiceSpec::default();
        self.assets
            .iter()
            .filter(|asset| is_business_service(asset.kind))
            .map(|asset| {
                let spec = asset.service.as_ref().unwrap_or(&default_spec);
                let indicators = match &spec.indicators {
                    Some(written) => written
                        .iter()
                        .filter_map(|indicator| {
                            Some(Weighted {
                                indicator: indicator.indicator()?,
                                propagation: indicator.propagation.unwrap_or_default(),
                                impact: indicator.impact.map(impact).unwrap_or_default(),
                            })
                        })
                        .collect(),
                    None => self
                        .dependencies_of(&asset.id)
                        .map(|to| Weighted {
                            indicator: match self.asset(to) {
                                Some(child) if is_business_service(child.kind) => {
                                    Indicator::Service(to.to_string())
                                }
                                _ => Indicator::Asset(to.to_string()),
                            },
                            propagation: Propagation::AsIs,
                            impact: Impact::default(),
                        })
                        .collect(),
                };
                BusinessServiceDef {
                    service: BusinessService {
                        id: asset.id.clone(),
                        name: asset.display_name().to_string(),
                        method: spec.method.compile(),
                        indicators,
                        downtime: spec.downtime,
                    },
                    criticality: asset.criticality,
                    kind: asset.kind,
                }
            })
            .collect()
    }
}

fn impact(spec: ImpactSpec) -> Impact {
    Impact {
        warning: f64::from(spec.warning),
        unknown: f64::from(spec.unknown),
        critical: f64::from(spec.critical),
    }
}

/// Every problem of the client's business services, each on its field.
pub(super) fn check_services(findings: &mut Vec<Finding>, client: &Client) {
    let before = findings.len();
    let check_names = check_names(client);
    let mut duplicate_assets = false;
    let mut seen = HashSet::new();
    for (index, asset) in client.assets.iter().enumerate() {
        duplicate_assets |= !seen.insert(asset.id.as_str());
        let Some(spec) = &asset.service else {
            continue;
        };
        let field = format!("assets[{index}].service");
        if !is_business_service(asset.kind) {
            findings.push(Finding::new(
                field.as_str(),
                "only `application` and `business_service` assets are business services",
            ));
        }
        match &spec.method {
            MethodSpec::Ratio { warning, critical } => {
                for (key, threshold) in [("warning", warning), ("critical", critical)] {
                    if let RatioSpec::Percent(percent) = threshold
                        && *percent > 100
                    {
                        findings.push(Finding::new(
                            format!("{field}.method.ratio.{key}"),
                            "a percentage is 0% to 100%",
                        ));
                    }
                }
            }
            MethodSpec::Impact { warning, critical } => {
                for (key, threshold) in [("warning", warning), ("critical", critical)] {
                    if *threshold > 100 {
                        findings.push(Finding::new(
                            format!("{field}.method.impact.{key}"),
                            "health is 0 to 100 (percent)",
                        ));
                    }
                }
                if critical > warning {
                    findings.push(Finding::new(
                        format!("{field}.method.impact.critical"),
                        format!(
                            "must be at or below `warning` ({warning}): the service is CRITICAL \
                             when its health falls to this"
                        ),
                    ));
                }
                if spec.indicators.is_none() {
                    findings.push(Finding::new(
                        format!("{field}.method"),
                        "the `impact` method needs `indicators`, each with its `impact`",
                    ));
                }
            }
            MethodSpec::Worst | MethodSpec::Best => {}
        }
        for (indicator_index, indicator) in spec.indicators.iter().flatten().enumerate() {
            check_indicator(
                findings,
                client,
                &check_names,
                &format!("{field}.indicators[{indicator_index}]"),
                indicator,
            );
        }
    }
    // Cycles are only meaningful once every reference resolves.
    if findings.len() > before || duplicate_assets {
        return;
    }
    let services: Vec<BusinessService> = client
        .business_services()
        .into_iter()
        .map(|def| def.service)
        .collect();
    if let Err(errors) = crate::service::validate(&services) {
        for error in errors {
            findings.push(Finding::new(
                closing_field(client, &services, &error.service),
                format!("business service `{}`: {}", error.service, error.message),
            ));
        }
    }
}

fn check_indicator(
    findings: &mut Vec<Finding>,
    client: &Client,
    check_names: &HashMap<&str, HashSet<&str>>,
    field: &str,
    indicator: &IndicatorSpec,
) {
    let given = [
        indicator.asset.is_some(),
        indicator.service.is_some(),
        indicator.check.is_some(),
    ]
    .into_iter()
    .filter(|given| *given)
    .count();
    if given != 1 {
        findings.push(Finding::new(
            field,
            "name exactly one of `asset`, `service` or `check`",
        ));
        return;
    }
    if let Some(asset) = &indicator.asset
        && client.asset(asset).is_none()
    {
        findings.push(Finding::new(
            format!("{field}.asset"),
            format!("unknown asset `{asset}`"),
        ));
    }
    if let Some(service) = &indicator.service {
        match client.asset(service) {
            None => findings.push(Finding::new(
                format!("{field}.service"),
                format!("unknown business service `{service}`"),
            )),
            Some(asset) if !is_business_service(asset.kind) => findings.push(Finding::new(
                format!("{field}.service"),
                format!(
                    "asset `{service}` is not an application or business service: name it \
                     with `asset:`"
                ),
            )),
            Some(_) => {}
        }
    }
    if let Some(check) = &indicator.check {
        if client.asset(&check.asset).is_none() {
            findings.push(Finding::new(
                format!("{field}.check.asset"),
                format!("unknown asset `{}`", check.asset),
            ));
        } else if !check_names
            .get(check.asset.as_str())
            .is_some_and(|names| names.contains(check.check.as_str()))
        {
            findings.push(Finding::new(
                format!("{field}.check.check"),
                format!("asset `{}` has no check `{}`", check.asset, check.check),
            ));
        }
    }
}

/// The names of the checks each asset has, as written on it or given by a rule — a check
/// that does not read still counts, since `load_estate` reports it and loads the rest.
fn check_names(client: &Client) -> HashMap<&str, HashSet<&str>> {
    let mut names: HashMap<&str, HashSet<&str>> = HashMap::new();
    for asset in &client.assets {
        let entry = names.entry(asset.id.as_str()).or_default();
        entry.extend(asset.checks.iter().filter_map(name_of));
        let mut host = asset.host_check.is_some();
        for rule in client
            .check_rules
            .iter()
            .filter(|rule| rule.selector.matches(asset))
        {
            entry.extend(rule.checks.iter().filter_map(name_of));
            host |= rule.host_check.is_some();
        }
        if host {
            entry.insert(crate::check::HOST_CHECK_NAME);
        }
    }
    names
}

fn name_of(spec: &super::CheckSpec) -> Option<&str> {
    spec.0.get("name")?.as_str()
}

/// Where a cycle through `service` is best pointed at: the first indicator written on a
/// service of the cycle (`service` itself first, then in asset order) that leads back into
/// it; else the asset itself, when only dependencies close the cycle.
fn closing_field(client: &Client, services: &[BusinessService], service: &str) -> String {
    let Some(own) = client.assets.iter().position(|asset| asset.id == service) else {
        return "assets".to_string();
    };
    let on_cycle = std::iter::once(own).chain((0..client.assets.len()).filter(|&index| {
        let id = client.assets[index].id.as_str();
        index != own && reaches(services, service, id) && reaches(services, id, service)
    }));
    for index in on_cycle {
        let written = client.assets[index]
            .service
            .as_ref()
            .and_then(|spec| spec.indicators.as_ref());
        for (indicator_index, indicator) in written.into_iter().flatten().enumerate() {
            if let Some(child) = &indicator.service
                && reaches(services, child, service)
            {
                return format!("assets[{index}].service.indicators[{indicator_index}].service");
            }
        }
    }
    format!("assets[{own}]")
}

/// Whether `from` is `to` or depends on it through service indicators.
fn reaches(services: &[BusinessService], from: &str, to: &str) -> bool {
    let mut stack = vec![from];
    let mut seen = HashSet::new();
    while let Some(current) = stack.pop() {
        if current == to {
            return true;
        }
        if !seen.insert(current) {
            continue;
        }
        let Some(service) = services.iter().find(|s| s.id == current) else {
            continue;
        };
        stack.extend(
            service
                .indicators
                .iter()
                .filter_map(|w| match &w.indicator {
                    Indicator::Service(child) => Some(child.as_str()),
                    _ => None,
                }),
        );
    }
    false
}
