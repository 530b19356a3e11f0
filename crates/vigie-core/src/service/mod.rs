//! Business services: what a client's business (a production line, payroll, online banking)
//! depends on, and how healthy it is now. A service is computed from *indicators* — assets,
//! checks and other business services — with one of Centreon BAM's calculation methods, and
//! passes its state on to the services above it through a Zabbix-style propagation rule.
//!
//! - `Worst` / `Best`: the worst or best state of the indicators, in the order
//!   OK < WARNING < UNKNOWN < CRITICAL (Icinga's display order).
//! - `Ratio`: how many indicators are CRITICAL, as a count or a percentage, against warning
//!   and critical thresholds (at or above: that state).
//! - `Impact`: health = 100 − the impacts of the indicators not OK (each indicator states its
//!   impact per state, in percent), floored at 0; at or below the warning or critical health:
//!   that state.
//!
//! Downtimes (`DowntimePolicy`): `Ignore` treats an indicator in downtime as OK; `Inherit`
//! computes as usual and puts the service in downtime when an indicator that makes it not OK
//! is in downtime — the state is shown, the paging is for the caller to hold back.
//!
//! Propagation (per indicator, as Zabbix does per child): `AsIs`, `Increase(n)` /
//! `Decrease(n)` severities, `Ignore` (the child does not count), `Fixed(state)` when the
//! child is not OK.
//!
//! Pure: the states of assets and checks come in as a function; the services are checked for
//! unknown references and cycles (`validate`) before anything is computed, and computed in
//! dependency order. The caller keeps the history from `transitions`.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// A state, ordered from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    Ok,
    Warning,
    Unknown,
    Critical,
}

impl Status {
    /// What a check's state, as supervision names it (`OK`, `WARNING`, `DOWN`, …), counts
    /// for a business service: a host DOWN counts CRITICAL, UNREACHABLE UNKNOWN.
    pub fn of_check_state(state: &str) -> Status {
        match state {
            "OK" | "UP" => Status::Ok,
            "WARNING" => Status::Warning,
            "UNKNOWN" | "UNREACHABLE" => Status::Unknown,
            _ => Status::Critical,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Warning => "WARNING",
            Status::Unknown => "UNKNOWN",
            Status::Critical => "CRITICAL",
        }
    }

    /// Moves `steps` severities up (positive) or down, within OK..CRITICAL.
    fn shifted(self, steps: i8) -> Status {
        const ORDER: [Status; 4] = [
            Status::Ok,
            Status::Warning,
            Status::Unknown,
            Status::Critical,
        ];
        let position = ORDER.iter().position(|s| *s == self).unwrap_or(0) as i8;
        ORDER[(position + steps).clamp(0, 3) as usize]
    }
}

/// What a service is computed from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Indicator {
    Asset(String),
    Check { asset: String, check: String },
    Service(String),
}

impl Indicator {
    pub fn describe(&self) -> String {
        match self {
            Indicator::Asset(asset) => format!("asset `{asset}`"),
            Indicator::Check { asset, check } => format!("check `{check}` of asset `{asset}`"),
            Indicator::Service(service) => format!("business service `{service}`"),
        }
    }
}

/// How a child's state counts for its parent (Zabbix's propagation rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Propagation {
    #[default]
    AsIs,
    Increase(u8),
    Decrease(u8),
    Ignore,
    Fixed(Status),
}

impl Propagation {
    fn apply(self, status: Status) -> Option<Status> {
        match self {
            Propagation::AsIs => Some(status),
            Propagation::Increase(n) if status != Status::Ok => {
                Some(status.shifted(i8::try_from(n.min(3)).unwrap_or(3)))
            }
            Propagation::Decrease(n) if status != Status::Ok => {
                Some(status.shifted(-i8::try_from(n.min(3)).unwrap_or(3)))
            }
            Propagation::Increase(_) | Propagation::Decrease(_) => Some(status),
            Propagation::Ignore => None,
            Propagation::Fixed(fixed) => Some(if status == Status::Ok { status } else { fixed }),
        }
    }
}

/// One indicator of a service, with what it weighs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Weighted {
    pub indicator: Indicator,
    #[serde(default)]
    pub propagation: Propagation,
    /// For `Method::Impact`: the health lost (percent) when the indicator is WARNING,
    /// UNKNOWN or CRITICAL.
    #[serde(default)]
    pub impact: Impact,
}

/// Health lost per state of an indicator, in percent.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Impact {
    pub warning: f64,
    pub unknown: f64,
    pub critical: f64,
}

/// A threshold of the ratio method: a count of CRITICAL indicators, or a percentage of them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RatioThreshold {
    Count(u32),
    Percent(f64),
}

/// Centreon BAM's calculation methods.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    Worst,
    Best,
    Ratio {
        warning: RatioThreshold,
        critical: RatioThreshold,
    },
    Impact {
        /// Health (percent) at or below which the service is WARNING.
        warning: f64,
        /// Health (percent) at or below which the service is CRITICAL.
        critical: f64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DowntimePolicy {
    #[default]
    Ignore,
    Inherit,
}

/// A business service of a client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BusinessService {
    pub id: String,
    pub name: String,
    pub method: Method,
    pub indicators: Vec<Weighted>,
    #[serde(default)]
    pub downtime: DowntimePolicy,
}

/// The state of an asset or a check, as the caller knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndicatorState {
    pub status: Status,
    pub in_downtime: bool,
}

/// A service's computed health.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Health {
    pub status: Status,
    /// For `Method::Impact`: 0–100. For the other methods: 100 when OK, else 0.
    pub health: f64,
    pub in_downtime: bool,
    /// The indicators that make the service not OK, worst first.
    pub causes: Vec<Indicator>,
}

/// A problem in a client's service definitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceError {
    pub service: String,
    pub message: String,
}

/// Checks that every service indicator names a known service (assets and checks are the
/// caller's to check) and that services do not depend on themselves, directly or not.
/// Returns the services in dependency order (children first).
pub fn validate(services: &[BusinessService]) -> Result<Vec<usize>, Vec<ServiceError>> {
    let position: BTreeMap<&str, usize> = services
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.as_str(), i))
        .collect();
    let mut errors = Vec::new();
    let mut seen = BTreeSet::new();
    for service in services {
        if !seen.insert(service.id.as_str()) {
            errors.push(ServiceError {
                service: service.id.clone(),
                message: "defined twice".into(),
            });
        }
        for weighted in &service.indicators {
            if let Indicator::Service(child) = &weighted.indicator
                && !position.contains_key(child.as_str())
            {
                errors.push(ServiceError {
                    service: service.id.clone(),
                    message: format!("indicator: unknown business service `{child}`"),
                });
            }
        }
        if let Method::Impact { warning, critical } = service.method
            && (!(0.0..=100.0).contains(&warning) || !(0.0..=100.0).contains(&critical))
        {
            errors.push(ServiceError {
                service: service.id.clone(),
                message: "method impact: thresholds are health percentages, 0 to 100".into(),
            });
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    // Depth-first, children first; a service met again on the current path is a cycle.
    fn visit(
        i: usize,
        services: &[BusinessService],
        position: &BTreeMap<&str, usize>,
        state: &mut [u8],
        path: &mut Vec<usize>,
        order: &mut Vec<usize>,
    ) -> Result<(), ServiceError> {
        match state[i] {
            2 => return Ok(()),
            1 => {
                let start = path.iter().position(|p| *p == i).unwrap_or(0);
                let cycle: Vec<&str> = path[start..]
                    .iter()
                    .chain(std::iter::once(&i))
                    .map(|p| services[*p].id.as_str())
                    .collect();
                return Err(ServiceError {
                    service: services[i].id.clone(),
                    message: format!("cycle: {}", cycle.join(" → ")),
                });
            }
            _ => {}
        }
        state[i] = 1;
        path.push(i);
        for weighted in &services[i].indicators {
            if let Indicator::Service(child) = &weighted.indicator
                && let Some(&c) = position.get(child.as_str())
            {
                visit(c, services, position, state, path, order)?;
            }
        }
        path.pop();
        state[i] = 2;
        order.push(i);
        Ok(())
    }
    let mut state = vec![0u8; services.len()];
    let mut order = Vec::with_capacity(services.len());
    for i in 0..services.len() {
        let mut path = Vec::new();
        if let Err(error) = visit(i, services, &position, &mut state, &mut path, &mut order) {
            return Err(vec![error]);
        }
    }
    Ok(order)
}

fn meets(threshold: RatioThreshold, critical: usize, total: usize) -> bool {
    match threshold {
        RatioThreshold::Count(n) => critical >= n as usize,
        RatioThreshold::Percent(p) => total > 0 && (critical as f64) * 100.0 / (total as f64) >= p,
    }
}

/// Computes every service of a client. `state_of` gives the state of an asset or a check
/// (`None`: unknown to the caller, counted UNKNOWN). Errors are `validate`'s.
pub fn evaluate(
    services: &[BusinessService],
    state_of: impl Fn(&Indicator) -> Option<IndicatorState>,
) -> Result<BTreeMap<String, Health>, Vec<ServiceError>> {
    let order = validate(services)?;
    let mut computed: BTreeMap<String, Health> = BTreeMap::new();
    for i in order {
        let service = &services[i];
        // (indicator, status after propagation, in downtime, impact)
        let mut inputs: Vec<(&Indicator, Status, bool, Impact)> = Vec::new();
        for weighted in &service.indicators {
            let state = match &weighted.indicator {
                Indicator::Service(child) => computed.get(child).map(|h| IndicatorState {
                    status: h.status,
                    in_downtime: h.in_downtime,
                }),
                other => state_of(other),
            }
            .unwrap_or(IndicatorState {
                status: Status::Unknown,
                in_downtime: false,
            });
            let Some(status) = weighted.propagation.apply(state.status) else {
                continue;
            };
            let status = if state.in_downtime && service.downtime == DowntimePolicy::Ignore {
                Status::Ok
            } else {
                status
            };
            inputs.push((
                &weighted.indicator,
                status,
                state.in_downtime,
                weighted.impact,
            ));
        }
        let (status, health) = match &service.method {
            Method::Worst => {
                let worst = inputs.iter().map(|i| i.1).max().unwrap_or(Status::Ok);
                (worst, if worst == Status::Ok { 100.0 } else { 0.0 })
            }
            Method::Best => {
                let best = inputs.iter().map(|i| i.1).min().unwrap_or(Status::Ok);
                (best, if best == Status::Ok { 100.0 } else { 0.0 })
            }
            Method::Ratio { warning, critical } => {
                let down = inputs.iter().filter(|i| i.1 == Status::Critical).count();
                let status = if meets(*critical, down, inputs.len()) {
                    Status::Critical
                } else if meets(*warning, down, inputs.len()) {
                    Status::Warning
                } else {
                    Status::Ok
                };
                (status, if status == Status::Ok { 100.0 } else { 0.0 })
            }
            Method::Impact { warning, critical } => {
                let lost: f64 = inputs
                    .iter()
                    .map(|(_, status, _, impact)| match status {
                        Status::Ok => 0.0,
                        Status::Warning => impact.warning,
                        Status::Unknown => impact.unknown,
                        Status::Critical => impact.critical,
                    })
                    .sum();
                let health = (100.0 - lost).max(0.0);
                let status = if health <= *critical {
                    Status::Critical
                } else if health <= *warning {
                    Status::Warning
                } else {
                    Status::Ok
                };
                (status, health)
            }
        };
        let mut causes: Vec<(&Indicator, Status, bool)> = inputs
            .iter()
            .filter(|i| i.1 != Status::Ok)
            .map(|i| (i.0, i.1, i.2))
            .collect();
        causes.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        let in_downtime = service.downtime == DowntimePolicy::Inherit
            && status != Status::Ok
            && causes.iter().any(|c| c.2);
        computed.insert(
            service.id.clone(),
            Health {
                status,
                health,
                in_downtime,
                causes: causes.into_iter().map(|c| c.0.clone()).collect(),
            },
        );
    }
    Ok(computed)
}

/// A change of a service's state between two computations, for its history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    pub service: String,
    pub from: Option<Status>,
    pub to: Status,
    pub health: f64,
}

/// What changed from `before` to `after` (services that appeared count as changed from none).
pub fn transitions(
    before: &BTreeMap<String, Health>,
    after: &BTreeMap<String, Health>,
) -> Vec<Transition> {
    after
        .iter()
        .filter_map(|(id, health)| {
            let from = before.get(id).map(|h| h.status);
            (from != Some(health.status)).then(|| Transition {
                service: id.clone(),
                from,
                to: health.status,
                health: health.health,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests;
