//! Detection rules on disk: reading a directory of Sigma files and reporting what loads.
//! The parsing and the evaluation live in `vigie_core::rule`.

use std::collections::HashMap;
use std::fmt::Write;
use std::path::Path;

use anyhow::Result;
use vigie_core::rule::sigma::{RuleSet, load_rules};

/// Every `*.yml` and `*.yaml` file below `dir`, in path order, as `(path, text)`.
pub fn read_rule_dir(dir: &Path) -> Result<Vec<(String, String)>> {
    crate::config::read_yaml_dir(dir, "rule directory")
}

/// Loads a directory of rules and renders the report `vigie rules check` prints: one line per
/// rejected rule with its place and reason, then `N rules loaded, M rejected` (correlation
/// rules included).
pub fn check_rules(dir: &Path) -> Result<(RuleSet, String)> {
    let files = read_rule_dir(dir)?;
    let set = load_rules(&files, &HashMap::new());
    let mut report = String::new();
    for rejection in &set.rejected {
        let line = rejection.line.map(|l| format!(":{l}")).unwrap_or_default();
        let id = rejection
            .rule_id
            .as_deref()
            .map(|id| format!(" rule {id}:"))
            .unwrap_or_default();
        let _ = writeln!(report, "{}{line}:{id} {}", rejection.path, rejection.reason);
    }
    // Correlation rules count as rules: they are loaded (or rejected) like the others.
    let loaded = set.rules.len() + set.correlations.len();
    let _ = writeln!(
        report,
        "{loaded} rules loaded, {} rejected",
        set.rejected.len()
    );
    Ok((set, report))
}
