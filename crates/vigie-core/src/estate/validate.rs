//! The rules a client must satisfy beyond its shape: ids are slugs and unique per kind,
//! criticality is within 1–5, every reference resolves within the client, dependencies form
//! no cycle, hostnames and addresses name one asset. Each problem is a `Finding` on a field
//! path inside the client, so the loader can turn it into a file and line and the API into
//! a resource path; all of them are collected, none stops the others.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

use super::sender::{normalize_address, normalize_hostname};
use super::{CRITICALITY_RANGE, Client};

/// The longest id: a DNS label, so ids can appear in hostnames and URLs unchanged.
pub const MAX_ID_LEN: usize = 63;

/// A problem found in one client, on a field path relative to that client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub field: String,
    pub message: String,
    /// For a duplicate: the field path of the first definition.
    pub first_defined: Option<String>,
}

impl Finding {
    pub(super) fn new(field: impl Into<String>, message: impl Into<String>) -> Finding {
        Finding {
            field: field.into(),
            message: message.into(),
            first_defined: None,
        }
    }
}

/// `[a-z0-9][a-z0-9-]*`, at most 63 characters.
pub fn is_slug(id: &str) -> bool {
    let mut chars = id.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    id.len() <= MAX_ID_LEN
        && (first.is_ascii_lowercase() || first.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

pub fn validate_client(client: &Client) -> Vec<Finding> {
    let mut findings = Vec::new();
    check_id(&mut findings, "id", &client.id);
    check_not_empty(&mut findings, "name", &client.name);
    check_grouping(&mut findings, client);

    let sites = check_unique_ids(
        &mut findings,
        "site",
        "sites",
        client.sites.iter().map(|site| site.id.as_str()),
    );
    for (index, site) in client.sites.iter().enumerate() {
        check_not_empty(&mut findings, format!("sites[{index}].name"), &site.name);
    }

    let contacts = check_unique_ids(
        &mut findings,
        "contact",
        "contacts",
        client.contacts.iter().map(|contact| contact.id.as_str()),
    );
    for (index, contact) in client.contacts.iter().enumerate() {
        let field = format!("contacts[{index}]");
        check_not_empty(&mut findings, format!("{field}.name"), &contact.name);
        if !looks_like_email(&contact.email) {
            findings.push(Finding::new(
                format!("{field}.email"),
                format!("`{}` is not an email address", contact.email),
            ));
        }
    }

    check_unique_ids(
        &mut findings,
        "team",
        "teams",
        client.teams.iter().map(|team| team.id.as_str()),
    );
    for (index, team) in client.teams.iter().enumerate() {
        check_not_empty(&mut findings, format!("teams[{index}].name"), &team.name);
        for (member_index, member) in team.members.iter().enumerate() {
            if !contacts.contains_key(member.as_str()) {
                findings.push(Finding::new(
                    format!("teams[{index}].members[{member_index}]"),
                    format!("unknown contact `{member}`"),
                ));
            }
        }
    }

    let assets = check_unique_ids(
        &mut findings,
        "asset",
        "assets",
        client.assets.iter().map(|asset| asset.id.as_str()),
    );
    check_assets(&mut findings, client, &sites, &assets);
    check_dependencies(&mut findings, client, &assets);
    super::detection::check_detection(&mut findings, client);
    super::response::check_response(&mut findings, client);
    super::services::check_services(&mut findings, client);
    findings
}

pub(super) fn check_id(findings: &mut Vec<Finding>, field: impl Into<String>, id: &str) {
    if id.len() > MAX_ID_LEN {
        findings.push(Finding::new(
            field,
            format!("id `{id}` is longer than {MAX_ID_LEN} characters"),
        ));
    } else if !is_slug(id) {
        findings.push(Finding::new(
            field,
            format!(
                "`{id}` is not a valid id: use lowercase letters, digits and dashes, \
                 starting with a letter or digit"
            ),
        ));
    }
}

pub(super) fn check_not_empty(findings: &mut Vec<Finding>, field: impl Into<String>, text: &str) {
    if text.trim().is_empty() {
        findings.push(Finding::new(field, "must not be empty"));
    }
}

/// Checks each id is a slug and appears once; returns where each id is first defined.
pub(super) fn check_unique_ids<'a>(
    findings: &mut Vec<Finding>,
    kind: &str,
    list: &str,
    ids: impl Iterator<Item = &'a str>,
) -> HashMap<&'a str, usize> {
    let mut first: HashMap<&str, usize> = HashMap::new();
    for (index, id) in ids.enumerate() {
        let field = format!("{list}[{index}].id");
        check_id(findings, field.as_str(), id);
        match first.get(id) {
            Some(first_index) => findings.push(Finding {
                field,
                message: format!("{kind} `{id}` is defined twice"),
                first_defined: Some(format!("{list}[{first_index}]")),
            }),
            None => {
                first.insert(id, index);
            }
        }
    }
    first
}

fn check_grouping(findings: &mut Vec<Finding>, client: &Client) {
    let grouping = &client.incident_grouping;
    if grouping.by.is_empty() {
        findings.push(Finding::new(
            "incident_grouping.by",
            "must name at least one key",
        ));
    }
    let mut seen = HashSet::new();
    for (index, key) in grouping.by.iter().enumerate() {
        if !seen.insert(key) {
            findings.push(Finding::new(
                format!("incident_grouping.by[{index}]"),
                format!("`{}` is listed twice", key.as_str()),
            ));
        }
    }
    if grouping.window_ms <= 0 {
        findings.push(Finding::new(
            "incident_grouping.window",
            "must be longer than zero",
        ));
    }
    if client.reopen_window_ms < 0 {
        findings.push(Finding::new("reopen_window", "must not be negative"));
    }
}

fn check_assets(
    findings: &mut Vec<Finding>,
    client: &Client,
    sites: &HashMap<&str, usize>,
    assets: &HashMap<&str, usize>,
) {
    // Within one client a hostname or an address names one asset, or syslog lines could not
    // be told apart. Across clients they may repeat: the sender index handles that.
    let mut hostnames: HashMap<String, usize> = HashMap::new();
    let mut addresses: HashMap<std::net::IpAddr, usize> = HashMap::new();
    for (index, asset) in client.assets.iter().enumerate() {
        let field = format!("assets[{index}]");
        // A second definition of an asset is already reported; its hostnames and addresses
        // would only repeat that.
        let is_second_definition = assets.get(asset.id.as_str()) != Some(&index);
        if let Some(name) = &asset.name {
            check_not_empty(findings, format!("{field}.name"), name);
        }
        if !CRITICALITY_RANGE.contains(&asset.criticality) {
            findings.push(Finding::new(
                format!("{field}.criticality"),
                "must be between 1 and 5",
            ));
        }
        for (tag_index, tag) in asset.tags.iter().enumerate() {
            check_not_empty(findings, format!("{field}.tags[{tag_index}]"), tag);
        }
        if let Some(site) = &asset.site
            && !sites.contains_key(site.as_str())
        {
            findings.push(Finding::new(
                format!("{field}.site"),
                format!("unknown site `{site}`"),
            ));
        }
        for (host_index, hostname) in asset.hostnames.iter().enumerate() {
            let host_field = format!("{field}.hostnames[{host_index}]");
            if let Some(problem) = hostname_problem(hostname) {
                findings.push(Finding::new(host_field, problem));
            } else if !is_second_definition {
                match hostnames.entry(normalize_hostname(hostname)) {
                    Entry::Vacant(entry) => {
                        entry.insert(index);
                    }
                    Entry::Occupied(entry) => findings.push(Finding::new(
                        host_field,
                        claimed_twice(client, "hostname", hostname, *entry.get(), index),
                    )),
                }
            }
        }
        for (address_index, address) in asset.addresses.iter().enumerate() {
            if is_second_definition {
                break;
            }
            match addresses.entry(normalize_address(*address)) {
                Entry::Vacant(entry) => {
                    entry.insert(index);
                }
                Entry::Occupied(entry) => findings.push(Finding::new(
                    format!("{field}.addresses[{address_index}]"),
                    claimed_twice(client, "address", &address.to_string(), *entry.get(), index),
                )),
            }
        }
    }
}

fn claimed_twice(client: &Client, what: &str, value: &str, owner: usize, asset: usize) -> String {
    if owner == asset {
        format!("{what} `{value}` is listed twice")
    } else {
        format!(
            "{what} `{value}` is already used by asset `{}`",
            client.assets[owner].id
        )
    }
}

fn hostname_problem(hostname: &str) -> Option<String> {
    if hostname.trim().is_empty() {
        Some("must not be empty".to_string())
    } else if hostname
        .chars()
        .any(|c| c.is_whitespace() || c.is_control())
    {
        Some(format!(
            "`{hostname}` is not a hostname: it contains spaces"
        ))
    } else if hostname.parse::<std::net::IpAddr>().is_ok() {
        Some(format!(
            "`{hostname}` is an IP address: list it under `addresses`"
        ))
    } else {
        None
    }
}

/// A sanity check, not RFC 5322: something before and after a single `@`, no spaces.
pub(super) fn looks_like_email(email: &str) -> bool {
    match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && !email.chars().any(char::is_whitespace)
        }
        None => false,
    }
}

fn check_dependencies(findings: &mut Vec<Finding>, client: &Client, assets: &HashMap<&str, usize>) {
    let mut edges: HashMap<(usize, usize), usize> = HashMap::new();
    // Adjacency by asset position, each edge remembering which `dependencies` entry made it.
    let mut depends_on: Vec<Vec<(usize, usize)>> = vec![Vec::new(); client.assets.len()];
    for (index, dependency) in client.dependencies.iter().enumerate() {
        let field = format!("dependencies[{index}]");
        let from = assets.get(dependency.from.as_str()).copied();
        let to = assets.get(dependency.to.as_str()).copied();
        if from.is_none() {
            findings.push(Finding::new(
                format!("{field}.from"),
                format!("unknown asset `{}`", dependency.from),
            ));
        }
        if to.is_none() {
            findings.push(Finding::new(
                format!("{field}.to"),
                format!("unknown asset `{}`", dependency.to),
            ));
        }
        let (Some(from), Some(to)) = (from, to) else {
            continue;
        };
        match edges.get(&(from, to)) {
            Some(first) => findings.push(Finding {
                field,
                message: format!(
                    "dependency `{}` -> `{}` is defined twice",
                    dependency.from, dependency.to
                ),
                first_defined: Some(format!("dependencies[{first}]")),
            }),
            None => {
                edges.insert((from, to), index);
                depends_on[from].push((to, index));
            }
        }
    }
    for (closing_edge, cycle) in find_cycles(&depends_on) {
        let names: Vec<&str> = cycle
            .iter()
            .map(|&asset| client.assets[asset].id.as_str())
            .collect();
        findings.push(Finding::new(
            format!("dependencies[{closing_edge}]"),
            format!("dependencies form a cycle: {}", names.join(" -> ")),
        ));
    }
}

/// Every cycle closed by a back edge of a depth-first search, in asset order, as the
/// `dependencies` index of the closing edge and the assets along the cycle, first repeated
/// last. Iterative, so a long dependency chain cannot overflow the stack.
fn find_cycles(depends_on: &[Vec<(usize, usize)>]) -> Vec<(usize, Vec<usize>)> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Unseen,
        OnPath,
        Done,
    }
    let mut marks = vec![Mark::Unseen; depends_on.len()];
    let mut cycles = Vec::new();
    for start in 0..depends_on.len() {
        if marks[start] != Mark::Unseen {
            continue;
        }
        // The current path: each asset with the position of the next edge to follow.
        let mut path: Vec<(usize, usize)> = vec![(start, 0)];
        marks[start] = Mark::OnPath;
        while let Some((asset, next_edge)) = path.last_mut() {
            let asset = *asset;
            let Some(&(target, edge)) = depends_on[asset].get(*next_edge) else {
                marks[asset] = Mark::Done;
                path.pop();
                continue;
            };
            *next_edge += 1;
            match marks[target] {
                Mark::Unseen => {
                    marks[target] = Mark::OnPath;
                    path.push((target, 0));
                }
                Mark::OnPath => {
                    let from = path
                        .iter()
                        .position(|&(on_path, _)| on_path == target)
                        .expect("invariant: an asset marked on the path is on the path");
                    let mut cycle: Vec<usize> = path[from..].iter().map(|&(a, _)| a).collect();
                    cycle.push(target);
                    cycles.push((edge, cycle));
                }
                Mark::Done => {}
            }
        }
    }
    cycles
}
