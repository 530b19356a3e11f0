//! The server's own settings: a YAML file (`--config`), each key overridable by a flag.
//! Unknown keys are errors, reported with the file and line.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Address of the HTTP API, e.g. `127.0.0.1:8080`.
    pub listen: Option<SocketAddr>,
    /// Where the embedded SQLite database lives.
    pub data_dir: Option<PathBuf>,
    /// `sqlite:///path` or `postgres://user@host:port/db`; defaults to SQLite in `data_dir`.
    pub database: Option<String>,
    /// Directory of estate YAML files.
    pub estate: Option<PathBuf>,
    /// YAML file of alert rules replacing the built-in set.
    pub alert_rules: Option<PathBuf>,
    #[serde(default)]
    pub syslog: SyslogSettings,
    /// Directories of Sigma rules evaluated on every event.
    #[serde(default)]
    pub sigma_rules: Vec<PathBuf>,
    /// Directory of Sigma filters: its files tune every client, those of `<client-id>/` one.
    pub sigma_filters: Option<PathBuf>,
    /// The operator's logsource map, consulted before the built-in one (docs/logsources.md).
    pub logsource_map: Option<PathBuf>,
    /// Events accepted and not yet committed, at most; beyond it ingest answers 503.
    pub max_queued_events: Option<usize>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SyslogSettings {
    pub udp: Option<SocketAddr>,
    pub tcp: Option<SocketAddr>,
    /// `false` turns both listeners off.
    pub enabled: Option<bool>,
}

/// Reads and checks a config file; a relative path inside it is taken from the file's folder.
pub fn read_config(path: &Path) -> Result<ConfigFile> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut config: ConfigFile =
        serde_saphyr::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let optional = [
        &mut config.data_dir,
        &mut config.estate,
        &mut config.alert_rules,
        &mut config.sigma_filters,
        &mut config.logsource_map,
    ];
    for dir in optional
        .into_iter()
        .flatten()
        .chain(config.sigma_rules.iter_mut())
    {
        if dir.is_relative() {
            *dir = base.join(&*dir);
        }
    }
    Ok(config)
}

/// Every `*.yaml` and `*.yml` file below `dir`, recursively, in path order, as
/// `(path, text)`: how the estate and rule directories are read. `what` names the directory
/// in errors ("estate directory", "rule directory").
pub fn read_yaml_dir(dir: &Path, what: &str) -> Result<Vec<(String, String)>> {
    let mut paths = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        let entries = std::fs::read_dir(&folder)
            .with_context(|| format!("cannot read {what} {}", folder.display()))?;
        for entry in entries {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml")
            ) {
                paths.push(path);
            }
        }
    }
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            Ok((path.display().to_string(), text))
        })
        .collect()
}
