//! Rules (and filters) with `expand` placeholders, compiled per client: each client of an MSP
//! has its own administrators, jump hosts and servers, so `User|expand: '%Administrators%'`
//! means one thing per client. A rule is compiled once for each client that gives a value to
//! every placeholder it uses; the clients that do not are named once, in one `Notice` per
//! rule, rather than the rule being rejected for everyone. Invariant: a rule's copy for a
//! client is compiled from that client's values only.

use std::collections::{BTreeMap, HashMap};

use super::eval::CompiledRule;
use super::parse::{Search, SigmaRule};
use super::{ClientPlaceholders, Notice, Rejection, compile_rule, modifier};

/// How many clients a notice names before it summarises the rest.
const NAMED_CLIENTS: usize = 10;

/// The placeholder names a rule's `expand` items use, once each, in order of first use.
pub(crate) fn placeholders_of(rule: &SigmaRule) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for named in &rule.searches {
        let Search::Maps(maps) = &named.search else {
            continue;
        };
        for item in maps.iter().flatten() {
            for name in modifier::placeholder_names(item) {
                if !names.contains(&name) {
                    names.push(name);
                }
            }
        }
    }
    names
}

/// What compiling a rule for every client gave.
pub(crate) struct PerClientOutcome {
    /// `(client id, compiled copy)` for each client with values whose copy compiled.
    pub variants: Vec<(String, CompiledRule)>,
    pub rejected: Vec<Rejection>,
    /// The clients the rule does not run for, if any (none when it is rejected outright).
    pub notice: Option<Notice>,
    /// Whether the rule stands (for some clients, or for none until one gives values): false
    /// when it is rejected as written.
    pub loaded: bool,
}

/// Compiles `rule` once per client of `clients` that gives a value to each of `names`.
/// `what` names the document in messages (`rule`, `filter`).
///
/// A failure every client's copy shares is the rule's own: one rejection. A failure of some
/// clients only comes from their values: one rejection per such client. When no client gives
/// values, the rule is still compiled once, with stand-in values, so that its other mistakes
/// are reported now and not when a client first gives values.
pub(crate) fn compile_per_client(
    rule: &SigmaRule,
    path: &str,
    names: &[String],
    clients: &ClientPlaceholders,
    what: &str,
) -> PerClientOutcome {
    let rejection = |line: Option<usize>, reason: String| Rejection {
        path: path.to_owned(),
        line: line.or((rule.line > 0).then_some(rule.line)),
        rule_id: rule.id.clone(),
        reason: match what {
            "rule" => reason,
            _ => format!("{what}: {reason}"),
        },
    };
    let mut variants = Vec::new();
    let mut failures = Vec::new();
    // Per client without values: the placeholders it lacks.
    let mut lacking: Vec<(&str, Vec<&str>)> = Vec::new();
    for (client, values) in clients {
        let missing: Vec<&str> = names
            .iter()
            .filter(|name| values.get(*name).is_none_or(Vec::is_empty))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            lacking.push((client, missing));
            continue;
        }
        match compile_rule(rule.clone(), path, values) {
            Ok(compiled) => variants.push((client.clone(), compiled)),
            Err(error) => failures.push((client.as_str(), error)),
        }
    }
    let mut rejected = Vec::new();
    if variants.is_empty() && !failures.is_empty() {
        let first = &failures[0].1;
        if failures
            .iter()
            .all(|(_, error)| error.reason == first.reason)
        {
            rejected.push(rejection(first.line, first.reason.clone()));
            return PerClientOutcome {
                variants,
                rejected,
                notice: None,
                loaded: false,
            };
        }
    }
    for (client, error) in failures {
        rejected.push(rejection(
            error.line,
            format!("for client `{client}`: {}", error.reason),
        ));
    }
    if variants.is_empty()
        && rejected.is_empty()
        && let Err(error) = compile_rule(rule.clone(), path, &stand_in_values(rule))
    {
        rejected.push(rejection(error.line, error.reason));
        return PerClientOutcome {
            variants,
            rejected,
            notice: None,
            loaded: false,
        };
    }
    // Said as "for no client" unless one client alone lacks values: then it is named.
    let runs_for_none = variants.is_empty() && rejected.is_empty() && lacking.len() != 1;
    let notice = (runs_for_none || !lacking.is_empty()).then(|| Notice {
        path: path.to_owned(),
        line: (rule.line > 0).then_some(rule.line),
        rule_id: rule.id.clone(),
        message: lacking_message(what, names, &lacking, runs_for_none),
    });
    PerClientOutcome {
        variants,
        rejected,
        notice,
        loaded: true,
    }
}

/// Values that let a rule compile without any client's: the placeholder written as itself, or
/// a network that contains every address where the placeholder is a `cidr` value.
fn stand_in_values(rule: &SigmaRule) -> HashMap<String, Vec<String>> {
    let mut values: HashMap<String, Vec<String>> = HashMap::new();
    for named in &rule.searches {
        let Search::Maps(maps) = &named.search else {
            continue;
        };
        for item in maps.iter().flatten() {
            let cidr = item.modifiers.iter().any(|m| m == "cidr");
            for name in modifier::placeholder_names(item) {
                let stand_in = if cidr {
                    "0.0.0.0/0".to_owned()
                } else {
                    format!("%{name}%")
                };
                values.insert(name, vec![stand_in]);
            }
        }
    }
    values
}

/// `rule runs for no client: no client gives values for `%Administrators%``, or `rule does not
/// run for clients `a`, `b` (no `%Administrators%`); `c` (no `%JumpServers%`)`.
fn lacking_message(
    what: &str,
    names: &[String],
    lacking: &[(&str, Vec<&str>)],
    runs_for_none: bool,
) -> String {
    let (for_none, for_some) = match what {
        "filter" => ("applies to no client", "does not apply to"),
        _ => ("runs for no client", "does not run for"),
    };
    let quoted = |names: &mut dyn Iterator<Item = &str>| {
        names
            .map(|name| format!("`%{name}%`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if runs_for_none {
        return format!(
            "{what} {for_none}: no client gives values for {}",
            quoted(&mut names.iter().map(String::as_str))
        );
    }
    // Clients grouped by what they lack, in the order groups first appear.
    let mut groups: BTreeMap<Vec<&str>, Vec<&str>> = BTreeMap::new();
    let mut order: Vec<Vec<&str>> = Vec::new();
    for (client, missing) in lacking {
        if !groups.contains_key(missing) {
            order.push(missing.clone());
        }
        groups.entry(missing.clone()).or_default().push(client);
    }
    let mut named = 0;
    let mut parts = Vec::new();
    for missing in &order {
        let clients = &groups[missing];
        let shown: Vec<String> = clients
            .iter()
            .take(NAMED_CLIENTS.saturating_sub(named))
            .map(|client| format!("`{client}`"))
            .collect();
        named += shown.len();
        let more = clients.len() - shown.len();
        let mut listed = shown.join(", ");
        if more > 0 {
            if !listed.is_empty() {
                listed.push_str(", ");
            }
            listed.push_str(&format!("{more} more"));
        }
        parts.push(format!(
            "{listed} (no {})",
            quoted(&mut missing.iter().copied())
        ));
    }
    let noun = if lacking.len() == 1 {
        "client"
    } else {
        "clients"
    };
    format!("{what} {for_some} {noun} {}", parts.join("; "))
}
