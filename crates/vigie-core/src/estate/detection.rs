//! A client's detection settings: the values of the Sigma `expand` placeholders its rules use
//! (`%Administrators%`, `%JumpServers%`…), written in its document, and those Vigie derives
//! from its assets when the client does not write them.
//!
//! ```yaml
//! detection:
//!   placeholders:
//!     Administrators: [adm-jdupont, adm-mmartin]
//!     JumpServers: [lyo-jump01]
//! ```
//!
//! Derived, unless written (a written list, even empty, wins):
//! - `Servers`: the host names of the client's `host` assets not tagged `workstation`;
//! - `Workstations`: the host names of its `host` assets tagged `workstation`;
//! - `DomainControllers`: the host names of its `host` assets tagged `domain-controller`.
//!
//! An asset's host names are its `hostnames`, or its id when it lists none. A derived list
//! that comes out empty is no value: a rule that needs it does not run for the client.
//! Invariant: a client's placeholder values come from its own document and assets only.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::validate::Finding;
use super::{AssetKind, Client, Estate};

/// The placeholders derived from assets when a client does not write them.
pub const DERIVED_PLACEHOLDERS: [&str; 3] = ["Servers", "Workstations", "DomainControllers"];

/// The tag that makes a `host` asset a workstation (`%Workstations%`, not `%Servers%`).
pub const WORKSTATION_TAG: &str = "workstation";
/// The tag that makes a `host` asset a domain controller (`%DomainControllers%`).
pub const DOMAIN_CONTROLLER_TAG: &str = "domain-controller";

/// The `detection:` section of a client document.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientDetection {
    /// Values of the Sigma `expand` placeholders, by name without the `%` (`Administrators`).
    #[serde(default)]
    pub placeholders: BTreeMap<String, Vec<String>>,
}

impl ClientDetection {
    pub fn is_empty(&self) -> bool {
        self.placeholders.is_empty()
    }
}

impl Client {
    /// The values of this client's Sigma placeholders: those written under
    /// `detection.placeholders`, and the derived ones it does not write (see the module).
    pub fn placeholders(&self) -> HashMap<String, Vec<String>> {
        let mut values: HashMap<String, Vec<String>> = self
            .detection
            .placeholders
            .iter()
            .map(|(name, list)| (name.clone(), list.clone()))
            .collect();
        for name in DERIVED_PLACEHOLDERS {
            if values.contains_key(name) {
                continue;
            }
            let derived = self.derived_placeholder(name);
            if !derived.is_empty() {
                values.insert(name.to_owned(), derived);
            }
        }
        values
    }

    fn derived_placeholder(&self, name: &str) -> Vec<String> {
        let tagged = |tags: &[String], tag: &str| tags.iter().any(|t| t.eq_ignore_ascii_case(tag));
        let mut values: Vec<String> = Vec::new();
        for asset in self.assets.iter().filter(|a| a.kind == AssetKind::Host) {
            let wanted = match name {
                "Servers" => !tagged(&asset.tags, WORKSTATION_TAG),
                "Workstations" => tagged(&asset.tags, WORKSTATION_TAG),
                "DomainControllers" => tagged(&asset.tags, DOMAIN_CONTROLLER_TAG),
                _ => false,
            };
            if !wanted {
                continue;
            }
            let names = if asset.hostnames.is_empty() {
                std::slice::from_ref(&asset.id)
            } else {
                asset.hostnames.as_slice()
            };
            for host in names {
                if !values.iter().any(|known| known.eq_ignore_ascii_case(host)) {
                    values.push(host.clone());
                }
            }
        }
        values
    }
}

impl Estate {
    /// Every client's placeholder values (`Client::placeholders`), by client id.
    pub fn placeholders(&self) -> BTreeMap<String, HashMap<String, Vec<String>>> {
        self.clients
            .iter()
            .map(|(id, client)| (id.clone(), client.placeholders()))
            .collect()
    }
}

/// A placeholder name: letters, digits, `_` and `-` (it is written between `%` in rules and
/// names a field path in diagnostics).
fn is_placeholder_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// The problems of a client's `detection` section, on field paths of the client document.
pub(super) fn check_detection(findings: &mut Vec<Finding>, client: &Client) {
    for (name, values) in &client.detection.placeholders {
        if !is_placeholder_name(name) {
            findings.push(Finding {
                field: "detection.placeholders".to_owned(),
                message: format!(
                    "`{name}` is not a placeholder name: use letters, digits, `_` and `-`, \
                     without the `%` (`Administrators` for `%Administrators%`)"
                ),
                first_defined: None,
            });
            continue;
        }
        for (index, value) in values.iter().enumerate() {
            if value.trim().is_empty() {
                findings.push(Finding {
                    field: format!("detection.placeholders.{name}[{index}]"),
                    message: "must not be empty".to_owned(),
                    first_defined: None,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::estate::{EstateFile, load_estate};

    fn estate(text: &str) -> Result<Estate, Vec<String>> {
        load_estate(&[EstateFile {
            path: "estate/acme.yaml".to_owned(),
            text: text.to_owned(),
        }])
        .map_err(|problems| problems.iter().map(ToString::to_string).collect())
    }

    const ACME: &str = "id: acme\nname: ACME\n\
        assets:\n\
        \x20 - { id: dc01, kind: host, tags: [windows, domain-controller], hostnames: [dc01, dc01.acme.lan] }\n\
        \x20 - { id: fs01, kind: host, tags: [windows] }\n\
        \x20 - { id: pc-042, kind: host, tags: [Workstation], hostnames: [PC-042] }\n\
        \x20 - { id: fw01, kind: network_device, hostnames: [fw01] }\n";

    fn sorted(values: &HashMap<String, Vec<String>>) -> Vec<(String, Vec<String>)> {
        let mut pairs: Vec<_> = values.clone().into_iter().collect();
        pairs.sort();
        pairs
    }

    #[test]
    fn servers_workstations_and_domain_controllers_are_derived_from_host_assets() {
        let estate = estate(ACME).expect("the estate loads");
        let strings = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            sorted(&estate.clients["acme"].placeholders()),
            [
                (
                    "DomainControllers".to_owned(),
                    strings(&["dc01", "dc01.acme.lan"])
                ),
                (
                    "Servers".to_owned(),
                    strings(&["dc01", "dc01.acme.lan", "fs01"])
                ),
                ("Workstations".to_owned(), strings(&["PC-042"])),
            ],
            "a network device is no server; an asset without hostnames goes by its id"
        );
    }

    #[test]
    fn written_placeholders_win_over_derived_ones_even_empty() {
        let text = format!(
            "{ACME}detection:\n  placeholders:\n    Administrators: [adm-jdupont, adm-mmartin]\n    Servers: []\n"
        );
        let estate = estate(&text).expect("the estate loads");
        let values = estate.placeholders();
        let acme = &values["acme"];
        assert_eq!(acme["Administrators"], ["adm-jdupont", "adm-mmartin"]);
        assert!(acme["Servers"].is_empty(), "written empty: no servers");
        assert_eq!(acme["Workstations"], ["PC-042"]);
    }

    #[test]
    fn a_bad_placeholder_is_reported_with_file_line_and_field() {
        let text = format!(
            "{ACME}detection:\n  placeholders:\n    '%Admins%': [x]\n    JumpServers: [jump01, '  ']\n"
        );
        assert_eq!(
            estate(&text).expect_err("the estate is refused"),
            [
                "estate/acme.yaml:9: field `detection.placeholders`: `%Admins%` is not a placeholder name: \
                 use letters, digits, `_` and `-`, without the `%` (`Administrators` for `%Administrators%`)",
                "estate/acme.yaml:11: field `detection.placeholders.JumpServers[1]`: must not be empty",
            ]
        );
        let unknown = format!("{ACME}detection:\n  placehodlers: {{}}\n");
        let problems = estate(&unknown).expect_err("the estate is refused");
        assert!(
            problems[0]
                .starts_with("estate/acme.yaml:9: field `detection`: unknown field `placehodlers`"),
            "{problems:?}"
        );
    }
}
