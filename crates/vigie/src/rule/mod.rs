//! Detection rules on disk: reading directories of Sigma rules and filters and the operator's
//! logsource map (`read_detection`), compiling them for the clients of an estate
//! (`compile_detection`), and reporting what loads (`vigie rules check`). The parsing and the
//! evaluation live in `vigie_core::rule`.
//!
//! A filters directory (`--sigma-filters DIR`): the files directly in `DIR` tune every
//! client's events; those below `DIR/<client-id>/` that client's only. A directory named after
//! no client of the estate is reported, and its filters are not applied.

use std::collections::HashMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use vigie_core::estate::Estate;
use vigie_core::rule::logsource::LogsourceMap;
use vigie_core::rule::sigma::{
    ClientPlaceholders, FilterFile, Notice, RuleSet, load_rules, load_rules_per_client,
};

/// Every `*.yml` and `*.yaml` file below `dir`, in path order, as `(path, text)`.
pub fn read_rule_dir(dir: &Path) -> Result<Vec<(String, String)>> {
    crate::config::read_yaml_dir(dir, "rule directory")
}

/// Where detection is read from: Sigma rule directories, a directory of filters, and the
/// operator's logsource map.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DetectionSources {
    pub rules: Vec<PathBuf>,
    pub filters: Option<PathBuf>,
    pub logsource_map: Option<PathBuf>,
}

/// What `DetectionSources` name, read from disk and not yet compiled.
pub struct DetectionFiles {
    pub rules: Vec<(String, String)>,
    pub filters_dir: Option<PathBuf>,
    pub filters: Vec<FilterFile>,
    /// The operator's map before the built-in one, and how many entries the operator's file has.
    pub logsource_map: Option<(Arc<LogsourceMap>, usize)>,
}

/// Reads every file `sources` name. Fails as a whole when a directory, a file or the
/// logsource map cannot be read, or the map is invalid; a rule or filter that does not
/// parse is not a failure here (`compile_detection` reports it).
pub fn read_detection(sources: &DetectionSources) -> Result<DetectionFiles> {
    let mut rules = Vec::new();
    for dir in &sources.rules {
        rules.extend(read_rule_dir(dir)?);
    }
    let filters = match &sources.filters {
        Some(dir) => read_filter_dir(dir)?,
        None => Vec::new(),
    };
    let logsource_map = match &sources.logsource_map {
        Some(path) => {
            let (map, entries) = read_logsource_map(path)?;
            Some((Arc::new(map), entries))
        }
        None => None,
    };
    Ok(DetectionFiles {
        rules,
        filters_dir: sources.filters.clone(),
        filters,
        logsource_map,
    })
}

/// The filter files of a filters directory: those directly in `dir` for every client, those
/// below `dir/<client-id>/` for that client, in path order.
pub fn read_filter_dir(dir: &Path) -> Result<Vec<FilterFile>> {
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read filter directory {}", dir.display()))?;
    let mut paths = Vec::new();
    for entry in entries {
        let path = entry
            .with_context(|| format!("cannot read filter directory {}", dir.display()))?
            .path();
        paths.push(path);
    }
    paths.sort();
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let client = path
                .file_name()
                .and_then(|name| name.to_str())
                .with_context(|| format!("filter directory {}: not a client id", path.display()))?
                .to_owned();
            for (file, text) in crate::config::read_yaml_dir(&path, "filter directory")? {
                files.push(FilterFile {
                    path: file,
                    text,
                    client: Some(client.clone()),
                });
            }
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        ) {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            files.push(FilterFile {
                path: path.display().to_string(),
                text,
                client: None,
            });
        }
    }
    Ok(files)
}

/// Compiles what was read for the clients of `estate`: a rule with `expand` placeholders once
/// per client that gives it values (`Client::placeholders`), each client's filters for that
/// client. Without an estate (`vigie rules check` without `--estate`) no client gives values
/// and every filter directory is taken at its word. A filter directory named after no client
/// of the estate is reported once, in `notices`, and its filters are left out.
pub fn compile_detection(files: DetectionFiles, estate: Option<&Estate>) -> RuleSet {
    let clients: ClientPlaceholders = estate.map(Estate::placeholders).unwrap_or_default();
    let mut unknown: Vec<String> = Vec::new();
    let filters: Vec<FilterFile> = files
        .filters
        .into_iter()
        .filter(|file| match (&file.client, estate) {
            (Some(client), Some(estate)) if estate.client(client).is_none() => {
                if !unknown.contains(client) {
                    unknown.push(client.clone());
                }
                false
            }
            _ => true,
        })
        .collect();
    let mut set = load_rules_per_client(&files.rules, &filters, &clients);
    for client in unknown {
        let path = match &files.filters_dir {
            Some(dir) => dir.join(&client).display().to_string(),
            None => client.clone(),
        };
        set.notices.push(Notice {
            path,
            line: None,
            rule_id: None,
            message: format!(
                "no client `{client}` in the estate: the filters of this directory are not applied"
            ),
        });
    }
    set.logsource_map = files.logsource_map.map(|(map, _)| map);
    set
}

/// The estate of an estate directory, from its files alone (the objects created through the
/// API live in the server's store); every problem is listed.
pub fn read_estate(estate_dir: &Path) -> Result<Estate> {
    let estate_files = crate::estate::read_estate_dir(estate_dir)?;
    vigie_core::estate::load_estate(&estate_files).map_err(|problems| {
        let listed: Vec<String> = problems.iter().map(|p| format!("  {p}")).collect();
        anyhow::anyhow!(
            "the estate {} does not load:\n{}",
            estate_dir.display(),
            listed.join("\n")
        )
    })
}

/// `path:line: rule id: reason`, as `vigie rules check`, `vigie hunt` and the logs print a
/// problem.
pub(crate) fn located(
    path: &str,
    line: Option<usize>,
    rule_id: Option<&str>,
    text: &str,
) -> String {
    let line = line.map(|l| format!(":{l}")).unwrap_or_default();
    let id = rule_id.map(|id| format!(" rule {id}:")).unwrap_or_default();
    format!("{path}{line}:{id} {text}")
}

/// Loads a directory of rules (with, optionally, a filters directory and the estate whose
/// clients give placeholder values) and renders the report `vigie rules check` prints: one
/// line per rejected rule or filter with its place and reason, one per notice (a rule that
/// does not run for some clients…), then `N rules loaded, M rejected` (correlation rules
/// included), with `, F filters` when filters were read.
pub fn check_rules(
    dir: &Path,
    filters: Option<&Path>,
    estate: Option<&Path>,
) -> Result<(RuleSet, String)> {
    let files = read_detection(&DetectionSources {
        rules: vec![dir.to_path_buf()],
        filters: filters.map(Path::to_path_buf),
        logsource_map: None,
    })?;
    let estate = estate.map(read_estate).transpose()?;
    let set = compile_detection(files, estate.as_ref());
    let mut report = String::new();
    for rejection in &set.rejected {
        let _ = writeln!(
            report,
            "{}",
            located(
                &rejection.path,
                rejection.line,
                rejection.rule_id.as_deref(),
                &rejection.reason
            )
        );
    }
    for notice in &set.notices {
        let _ = writeln!(
            report,
            "{}",
            located(
                &notice.path,
                notice.line,
                notice.rule_id.as_deref(),
                &format!("notice: {}", notice.message)
            )
        );
    }
    // Correlation rules count as rules: they are loaded (or rejected) like the others.
    let _ = write!(
        report,
        "{} rules loaded, {} rejected",
        set.loaded(),
        set.rejected.len()
    );
    let filter_count = set.filter_count();
    if filter_count > 0 || filters.is_some() {
        let _ = write!(report, ", {filter_count} filters");
    }
    report.push('\n');
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
