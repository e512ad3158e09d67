//! Flags + slipway.toml + the process environment, resolved once per command
//! before any work starts.

use crate::cli::{CiArgs, Cli, Command};
use crate::config::{Config, Environment};
use crate::error::Result;
use crate::output::Printer;

pub struct Settings {
    pub config: Config,
    pub env: Environment,
    pub out: Printer,
    /// `--metrics-file`, else `[metrics] textfile`.
    pub metrics_file: Option<std::path::PathBuf>,
    /// The variables the notification channels name (their webhook URLs),
    /// read from the process environment once, here.
    pub notify_env: std::collections::BTreeMap<String, String>,
    /// How many last lines of each failing container a failed release shows
    /// (`deploy --logs N` / `rollback --logs N`; 0: none).
    pub failure_log_lines: usize,
}

impl Settings {
    pub fn resolve(cli: &Cli) -> Result<Settings> {
        let mut config = Config::load(&cli.config)?;
        let mut env = config.environment(cli.env.as_deref())?.clone();
        if let Some(host) = &cli.fleet_host {
            crate::config::fleet::narrow_to_host(&mut config, &mut env, host)?;
        }
        if let Some(p) = &cli.metrics_file {
            crate::metrics::check_path(&p.to_string_lossy())
                .map_err(|m| crate::error::Error::Usage(format!("--metrics-file: {m}")))?;
        }
        let metrics_file = cli
            .metrics_file
            .clone()
            .or_else(|| config.metrics_textfile.clone());
        let notify_env = config
            .notify
            .channels
            .iter()
            .filter_map(|c| Some((c.url_env.clone(), process_var(&c.url_env)?)))
            .collect();
        Ok(Settings {
            config,
            env,
            out: Printer::new(cli.json).with_timings(cli.timings),
            metrics_file,
            notify_env,
            failure_log_lines: match &cli.command {
                Command::Deploy(a) => a.failure_logs.lines,
                Command::Rollback(a) => a.failure_logs.lines,
                _ => crate::probe::logs::DEFAULT_LINES,
            },
        })
    }
}

/// Where a deploy came from, for history and notifications.
#[derive(Debug, Clone, Default)]
pub struct Ci {
    pub commit: Option<String>,
    pub branch: Option<String>,
    pub run_url: Option<String>,
}

/// CI context from flags, else GitHub Actions' or GitLab CI's standard variables.
pub fn ci_context(args: &CiArgs, var: impl Fn(&str) -> Option<String>) -> Ci {
    let github_run = || {
        Some(format!(
            "{}/{}/actions/runs/{}",
            var("GITHUB_SERVER_URL")?,
            var("GITHUB_REPOSITORY")?,
            var("GITHUB_RUN_ID")?
        ))
    };
    Ci {
        commit: args
            .commit
            .clone()
            .or_else(|| var("GITHUB_SHA"))
            .or_else(|| var("CI_COMMIT_SHA")),
        branch: args
            .branch
            .clone()
            .or_else(|| var("GITHUB_REF_NAME"))
            .or_else(|| var("CI_COMMIT_REF_NAME")),
        run_url: args
            .run_url
            .clone()
            .or_else(github_run)
            .or_else(|| var("CI_JOB_URL")),
    }
}

pub fn process_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_actions_variables_fill_ci_context() {
        let vars = |k: &str| {
            match k {
                "GITHUB_SHA" => Some("abc123"),
                "GITHUB_REF_NAME" => Some("develop"),
                "GITHUB_SERVER_URL" => Some("https://github.com"),
                "GITHUB_REPOSITORY" => Some("acme/goodgo"),
                "GITHUB_RUN_ID" => Some("42"),
                _ => None,
            }
            .map(String::from)
        };
        let none = CiArgs {
            commit: None,
            branch: None,
            run_url: None,
        };
        let ci = ci_context(&none, vars);
        assert_eq!(ci.commit.as_deref(), Some("abc123"));
        assert_eq!(ci.branch.as_deref(), Some("develop"));
        assert_eq!(
            ci.run_url.as_deref(),
            Some("https://github.com/acme/goodgo/actions/runs/42")
        );
        let flags = CiArgs {
            commit: Some("def".into()),
            branch: None,
            run_url: None,
        };
        assert_eq!(ci_context(&flags, vars).commit.as_deref(), Some("def"));
    }
}
