//! Detection rules on disk: reading a directory of Sigma files and reporting what loads.
//! The parsing and the evaluation live in `vigie_core::rule`.

use std::collections::HashMap;
use std::fmt::Write;
use std::path::Path;

use anyhow::{Context, Result};
use vigie_core::rule::logsource::LogsourceMap;
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

/// Runs the rule tests of `tests_dir` (see `vigie_core::rule::test`) against the rules of
/// `rule_dirs`; returns the number of failures and the report `vigie rules test` prints: one
/// line per case, then `N passed, M failed`.
pub fn test_rules(tests_dir: &Path, rule_dirs: &[std::path::PathBuf]) -> Result<(usize, String)> {
    use vigie_core::rule::detect::DetectionSet;
    use vigie_core::rule::test::{parse_rule_tests, run_rule_tests};

    let mut files = Vec::new();
    for dir in rule_dirs {
        files.extend(read_rule_dir(dir)?);
    }
    let set = load_rules(&files, &HashMap::new());
    let mut report = String::new();
    for rejection in &set.rejected {
        let _ = writeln!(
            report,
            "rule rejected: {}: {}",
            rejection.path, rejection.reason
        );
    }
    let rejected = set.rejected.len();
    let detection = DetectionSet::new(set);
    let (mut passed, mut failed) = (0, rejected);
    for (path, text) in crate::config::read_yaml_dir(tests_dir, "rule test directory")? {
        let file = match parse_rule_tests(&path, &text) {
            Ok(file) => file,
            Err(problem) => {
                failed += 1;
                let _ = writeln!(report, "FAILED {problem}");
                continue;
            }
        };
        for outcome in run_rule_tests(&detection, &path, &file) {
            match outcome.failure {
                None => {
                    passed += 1;
                    let _ = writeln!(report, "ok     {}: {}", outcome.file, outcome.case);
                }
                Some(why) => {
                    failed += 1;
                    let _ = writeln!(report, "FAILED {}: {}: {why}", outcome.file, outcome.case);
                }
            }
        }
    }
    let _ = writeln!(report, "rule tests: {passed} passed, {failed} failed");
    Ok((failed, report))
}

/// The built-in logsource map with the operator's file before it, and how many entries the
/// file has; every problem of the file is listed, with its line.
pub fn read_logsource_map(path: &Path) -> Result<(LogsourceMap, usize)> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read logsource map {}", path.display()))?;
    let overrides =
        LogsourceMap::parse(&text, &path.display().to_string()).map_err(|problems| {
            let listed: Vec<String> = problems.iter().map(|p| format!("  {p}")).collect();
            anyhow::anyhow!(
                "invalid logsource map {}:\n{}",
                path.display(),
                listed.join("\n")
            )
        })?;
    Ok((
        LogsourceMap::default_map().with_overrides(&overrides),
        overrides.len(),
    ))
}
