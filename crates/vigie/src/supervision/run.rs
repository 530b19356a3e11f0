//! Running one check through `probe::run`: native probes in process, plugins as processes,
//! a plugin named without a path found in the Monitoring Plugins directories. Whatever
//! happens, the answer is a `PluginResult`: a check never fails, it reports its state and
//! why.

use std::path::{Path, PathBuf};
use std::time::Duration;

use vigie_core::check::{PluginResult, Probe};
use vigie_core::estate::CheckDefinition;

/// Where a plugin named without a path is looked for, in order (Debian's, the Monitoring
/// Plugins' own default, Nagios's), before the `PATH` the plugin gets.
const PLUGIN_DIRS: [&str; 3] = [
    "/usr/lib/nagios/plugins",
    "/usr/lib/monitoring-plugins",
    "/usr/local/nagios/libexec",
];

pub async fn run_check(definition: &CheckDefinition) -> PluginResult {
    let timeout = Duration::from_millis(u64::try_from(definition.timeout_ms).unwrap_or(0));
    match &*definition.probe {
        Probe::Plugin { command, args, env } if !command.contains('/') => {
            let probe = Probe::Plugin {
                command: plugin_program(command).to_string_lossy().into_owned(),
                args: args.clone(),
                env: env.clone(),
            };
            crate::probe::run(&probe, &definition.target, timeout).await
        }
        probe => crate::probe::run(probe, &definition.target, timeout).await,
    }
}

/// A program named without a `/` is looked for in the plugin directories; otherwise it is
/// taken as written.
fn plugin_program(command: &str) -> PathBuf {
    if !command.contains('/') {
        for dir in PLUGIN_DIRS {
            let candidate = Path::new(dir).join(command);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    PathBuf::from(command)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_plugin_name_is_found_in_the_plugin_directories() {
        if Path::new("/usr/lib/nagios/plugins/check_dummy").is_file() {
            assert_eq!(
                plugin_program("check_dummy"),
                PathBuf::from("/usr/lib/nagios/plugins/check_dummy")
            );
        }
        assert_eq!(plugin_program("/bin/true"), PathBuf::from("/bin/true"));
        assert_eq!(
            plugin_program("no-such-plugin"),
            PathBuf::from("no-such-plugin")
        );
    }
}
