//! Running a Monitoring Plugins-compatible program: arguments with macros expanded, a clean
//! environment plus the check's own variables, a timeout that kills the plugin's whole process
//! group, and stdout read up to the cap (the rest is read and thrown away, so that a plugin
//! flooding its output neither blocks nor costs memory). The exit status and the output are
//! interpreted by `vigie_core::check::interpret_plugin_result`.

use std::collections::HashMap;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;
use vigie_core::check::{
    MAX_PLUGIN_OUTPUT_BYTES, PluginExit, PluginResult, interpret_plugin_result,
};

#[derive(Debug, Clone, PartialEq)]
pub struct PluginCommand {
    pub program: PathBuf,
    /// Arguments, each possibly holding macros such as `$HOSTADDRESS$` or `$ARG1$`.
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub timeout: Duration,
}

/// Replaces every `$NAME$` whose name is in `macros`; `$$` is a literal `$`. An unknown macro
/// is left as written, as Nagios does, so the plugin's own error shows it.
pub fn expand_macros(template: &str, macros: &HashMap<String, String>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find('$') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        if let Some(after_dollar) = after.strip_prefix('$') {
            out.push('$');
            rest = after_dollar;
            continue;
        }
        match after.find('$') {
            Some(end) if macros.contains_key(&after[..end]) => {
                out.push_str(&macros[&after[..end]]);
                rest = &after[end + 1..];
            }
            _ => {
                out.push('$');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Reads up to the cap (plus one byte, to know whether there was more), then drains the rest.
async fn read_capped(mut reader: impl AsyncRead + Unpin) -> Vec<u8> {
    let mut kept = Vec::with_capacity(4096);
    let mut buffer = [0u8; 8192];
    loop {
        match reader.read(&mut buffer).await {
            Ok(0) | Err(_) => return kept,
            Ok(n) => {
                let room = (MAX_PLUGIN_OUTPUT_BYTES + 1).saturating_sub(kept.len());
                kept.extend_from_slice(&buffer[..n.min(room)]);
            }
        }
    }
}

/// Kills the plugin and everything it started (it runs in its own process group).
fn kill_group(pid: Option<u32>) {
    if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
        // SAFETY: kill(2) with a negative pid signals that process group; no memory is shared.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
}

pub async fn run_plugin(command: &PluginCommand) -> PluginResult {
    let started = Instant::now();
    let mut process = Command::new(&command.program);
    process
        .args(&command.args)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .envs(command.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match process.spawn() {
        Ok(child) => child,
        Err(error) => {
            let reason = format!("{}: {error}", command.program.display());
            return interpret_plugin_result(PluginExit::SpawnFailed(reason), b"");
        }
    };
    let pid = child.id();
    let stdout = child.stdout.take().expect("invariant: stdout is piped");
    let stderr = child.stderr.take().expect("invariant: stderr is piped");
    let run = async {
        let (out, err, status) =
            tokio::join!(read_capped(stdout), read_capped(stderr), child.wait());
        (out, err, status)
    };
    match tokio::time::timeout(command.timeout, run).await {
        Ok((mut out, err, status)) => {
            // Plugins that fail early often say why on stderr only.
            if out.iter().all(u8::is_ascii_whitespace) {
                out = err;
            }
            let exit = match status {
                Ok(status) => match (status.code(), status.signal()) {
                    (Some(code), _) => PluginExit::Code(code),
                    (None, Some(signal)) => PluginExit::Signal(signal),
                    (None, None) => PluginExit::Code(-1),
                },
                Err(error) => {
                    PluginExit::SpawnFailed(format!("cannot wait for the plugin: {error}"))
                }
            };
            interpret_plugin_result(exit, &out)
        }
        Err(_) => {
            kill_group(pid);
            let after_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
            interpret_plugin_result(PluginExit::TimedOut { after_ms }, b"")
        }
    }
}

#[cfg(test)]
mod tests {
    use vigie_core::check::CheckState;

    use super::*;

    fn script(body: &str, timeout_ms: u64) -> PluginCommand {
        PluginCommand {
            program: "/bin/sh".into(),
            args: vec!["-c".into(), body.into()],
            env: vec![],
            timeout: Duration::from_millis(timeout_ms),
        }
    }

    #[test]
    fn expands_known_macros_and_keeps_unknown_ones() {
        let macros = HashMap::from([
            ("HOSTADDRESS".to_owned(), "127.0.0.1".to_owned()),
            ("ARG1".to_owned(), "80".to_owned()),
        ]);
        assert_eq!(
            expand_macros("-H $HOSTADDRESS$ -p $ARG1$", &macros),
            "-H 127.0.0.1 -p 80"
        );
        assert_eq!(
            expand_macros("cost $$5 $NOPE$ $", &macros),
            "cost $5 $NOPE$ $"
        );
    }

    #[tokio::test]
    async fn exit_codes_output_and_perfdata_come_through() {
        let result = run_plugin(&script(
            "echo 'WARNING - load 4.2 | load=4.2;4;8'; echo detail; exit 1",
            5_000,
        ))
        .await;
        assert_eq!(result.state, CheckState::Warning);
        assert_eq!(result.output, "WARNING - load 4.2");
        assert_eq!(result.long_output, "detail");
        assert_eq!(result.perfdata, "load=4.2;4;8");
        let result = run_plugin(&script("echo oops; exit 7", 5_000)).await;
        assert_eq!(
            (result.state, result.output.as_str()),
            (
                CheckState::Unknown,
                "(plugin exited with invalid code 7) oops"
            )
        );
    }

    #[tokio::test]
    async fn a_signal_or_a_missing_program_is_unknown_with_the_reason() {
        let result = run_plugin(&script("kill -TERM $$", 5_000)).await;
        assert_eq!(
            (result.state, result.output.as_str()),
            (CheckState::Unknown, "(plugin killed by signal 15)")
        );
        let missing = PluginCommand {
            program: "/nonexistent/check_nothing".into(),
            args: vec![],
            env: vec![],
            timeout: Duration::from_secs(1),
        };
        let result = run_plugin(&missing).await;
        assert_eq!(result.state, CheckState::Unknown);
        assert!(
            result
                .output
                .starts_with("(plugin could not be started: /nonexistent/check_nothing: "),
            "{}",
            result.output
        );
    }

    #[tokio::test]
    async fn a_hanging_plugin_and_its_children_are_killed_at_the_timeout() {
        let marker = std::env::temp_dir().join(format!("vigie_plugin_{}", std::process::id()));
        let body = format!("(sleep 2; touch {}) & sleep 30", marker.display());
        let started = Instant::now();
        let result = run_plugin(&script(&body, 300)).await;
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(result.state, CheckState::Unknown);
        assert!(
            result.output.starts_with("(plugin timed out after "),
            "{}",
            result.output
        );
        tokio::time::sleep(Duration::from_millis(2_500)).await;
        assert!(!marker.exists(), "the plugin's child was killed with it");
    }

    #[tokio::test]
    async fn a_flood_of_output_is_capped_not_refused() {
        let result = run_plugin(&script(
            "echo 'OK flood'; head -c 5000000 /dev/zero | tr '\\0' 'x'; echo; exit 0",
            10_000,
        ))
        .await;
        assert_eq!(result.state, CheckState::Ok);
        assert!(result.truncated);
        assert_eq!(result.output, "OK flood");
        assert!(
            result
                .long_output
                .ends_with("[output truncated at 65536 bytes]")
        );
    }

    /// Debian's monitoring-plugins, which `.ci/run` installs; required under CI=true.
    fn real_plugin(name: &str) -> Option<PathBuf> {
        let path = PathBuf::from("/usr/lib/nagios/plugins").join(name);
        if path.exists() {
            return Some(path);
        }
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{} is missing under CI=true: .ci/run installs monitoring-plugins-basic",
            path.display()
        );
        eprintln!(
            "note: {} is not installed; this test did not run",
            path.display()
        );
        None
    }

    #[tokio::test]
    async fn real_monitoring_plugins_run_unchanged() {
        let Some(check_dummy) = real_plugin("check_dummy") else {
            return;
        };
        let macros = HashMap::from([("ARG1".to_owned(), "2".to_owned())]);
        let command = PluginCommand {
            program: check_dummy,
            args: vec![expand_macros("$ARG1$", &macros), "disk on fire".into()],
            env: vec![],
            timeout: Duration::from_secs(10),
        };
        let result = run_plugin(&command).await;
        assert_eq!(
            (result.state, result.output.as_str()),
            (CheckState::Critical, "CRITICAL: disk on fire")
        );

        let Some(check_tcp) = real_plugin("check_tcp") else {
            return;
        };
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let command = PluginCommand {
            program: check_tcp.clone(),
            args: vec![
                "-H".into(),
                "127.0.0.1".into(),
                "-p".into(),
                port.to_string(),
            ],
            env: vec![],
            timeout: Duration::from_secs(10),
        };
        let result = run_plugin(&command).await;
        assert_eq!(result.state, CheckState::Ok, "{}", result.output);
        assert!(result.perfdata.starts_with("time="), "{}", result.perfdata);
        drop(listener);
        let result = run_plugin(&command).await;
        assert_eq!(result.state, CheckState::Critical, "{}", result.output);
    }

    #[tokio::test]
    async fn the_environment_is_the_checks_own() {
        let mut command = script("echo \"OK $VIGIE_TEST_VAR ${HOME:-no-home}\"", 5_000);
        command.env.push(("VIGIE_TEST_VAR".into(), "set".into()));
        let result = run_plugin(&command).await;
        assert_eq!(result.output, "OK set no-home");
    }
}
