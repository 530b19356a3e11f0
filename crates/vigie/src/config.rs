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
    /// Notification delivery: SMTP relay, timeouts, retries.
    #[serde(default)]
    pub notify: NotifySettings,
    /// Check results' performance data as time series: on or off, and its retention.
    #[serde(default)]
    pub perfdata: PerfdataSettings,
}

/// The `perfdata:` section: `enabled` (default true) and how long raw points and each roll-up
/// are kept (`retention: { raw: 2d, five_minutes: 30d, hourly: 400d }`, the defaults).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PerfdataSettings {
    pub enabled: Option<bool>,
    #[serde(default)]
    pub retention: PerfdataRetentionSettings,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PerfdataRetentionSettings {
    pub raw: Option<String>,
    pub five_minutes: Option<String>,
    pub hourly: Option<String>,
}

impl PerfdataSettings {
    /// The perfdata configuration these settings describe, or every problem, each naming its
    /// key.
    pub fn perfdata_config(&self) -> Result<crate::supervision::PerfdataConfig, Vec<String>> {
        let mut problems = Vec::new();
        let mut config = crate::supervision::PerfdataConfig::default();
        let retention = &mut config.retention;
        for (key, text, ms) in [
            ("raw", &self.retention.raw, &mut retention.raw_ms),
            (
                "five_minutes",
                &self.retention.five_minutes,
                &mut retention.five_minutes_ms,
            ),
            ("hourly", &self.retention.hourly, &mut retention.hourly_ms),
        ] {
            if let Some(text) = text {
                match vigie_core::estate::parse_duration(text) {
                    Ok(parsed) => *ms = parsed,
                    Err(error) => problems.push(format!("perfdata.retention.{key}: {error}")),
                }
            }
        }
        if problems.is_empty() {
            problems = config.retention.problems("perfdata.retention");
        }
        config.enabled = self.enabled != Some(false);
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(problems)
        }
    }
}

/// The `notify:` section. Durations are written `5s`, `10m`…
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NotifySettings {
    pub smtp: Option<SmtpSettings>,
    /// Vigie's address as recipients reach it (links in messages), e.g. `https://vigie.example`.
    pub public_url: Option<String>,
    /// Per-attempt timeout of a webhook call (default 5s).
    pub http_timeout: Option<String>,
    /// Per-attempt timeout of an SMTP delivery (default 10s).
    pub smtp_timeout: Option<String>,
    #[serde(default)]
    pub retry: RetrySettings,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SmtpSettings {
    /// `smtp://host:port` (plain, local relay), `smtp://host:port?tls=starttls`, `smtps://host:port`.
    pub url: Option<String>,
    /// The sender address, e.g. `Vigie <vigie@example.com>`.
    pub from: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
}

/// Retries of a failed delivery: `base`, doubled at each failure, capped at `max`; never given up.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RetrySettings {
    pub base: Option<String>,
    pub max: Option<String>,
}

impl NotifySettings {
    /// The delivery configuration these settings describe, or every problem, each naming its
    /// key.
    pub fn delivery_config(&self) -> Result<crate::notify::DeliveryConfig, Vec<String>> {
        let mut problems = Vec::new();
        let mut config = crate::notify::DeliveryConfig::default();
        let mut duration = |key: &str, text: &Option<String>, default_ms: i64| -> i64 {
            let Some(text) = text else { return default_ms };
            match vigie_core::estate::parse_duration(text) {
                Ok(ms) if ms > 0 => ms,
                Ok(_) => {
                    problems.push(format!("{key}: must be more than 0"));
                    default_ms
                }
                Err(error) => {
                    problems.push(format!("{key}: {error}"));
                    default_ms
                }
            }
        };
        let millis = |d: std::time::Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        let http_ms = duration(
            "notify.http_timeout",
            &self.http_timeout,
            millis(config.http_timeout),
        );
        let smtp_ms = duration(
            "notify.smtp_timeout",
            &self.smtp_timeout,
            millis(config.smtp_timeout),
        );
        let base_ms = duration(
            "notify.retry.base",
            &self.retry.base,
            config.backoff.base_ms,
        );
        let max_ms = duration("notify.retry.max", &self.retry.max, config.backoff.max_ms);
        let to_duration =
            |ms: i64| std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0));
        config.http_timeout = to_duration(http_ms);
        config.smtp_timeout = to_duration(smtp_ms);
        if base_ms > max_ms {
            problems.push(format!(
                "notify.retry: base ({}) is longer than max ({})",
                vigie_core::estate::format_duration(base_ms),
                vigie_core::estate::format_duration(max_ms)
            ));
        }
        config.backoff = vigie_core::notify::Backoff { base_ms, max_ms };
        if let Some(url) = &self.public_url {
            match url::Url::parse(url) {
                Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && parsed.has_host() => {
                    config.public_url = Some(url.trim_end_matches('/').to_owned());
                }
                _ => problems.push(format!(
                    "notify.public_url: {url:?} is not an http:// or https:// address"
                )),
            }
        }
        if let Some(smtp) = &self.smtp {
            match (&smtp.url, &smtp.from) {
                (None, None) if smtp.username.is_none() && smtp.password.is_none() => {}
                (None, _) => {
                    problems.push("notify.smtp.url: is required to send e-mail".to_owned())
                }
                (Some(_), None) => {
                    problems.push("notify.smtp.from: is required with notify.smtp.url".to_owned())
                }
                (Some(url), Some(from)) => {
                    let smtp = crate::notify::SmtpConfig {
                        url: url.clone(),
                        from: from.clone(),
                        username: smtp.username.clone(),
                        password: smtp.password.clone(),
                    };
                    match crate::notify::deliver::check_smtp(&smtp) {
                        Ok(()) => config.smtp = Some(smtp),
                        Err(found) => problems.extend(found),
                    }
                }
            }
        }
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(problems)
        }
    }
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
