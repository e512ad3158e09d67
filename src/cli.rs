//! Command-line arguments (clap). No I/O here.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "slipway",
    version = env!("SLIPWAY_VERSION"),
    about = "Deploy Docker Compose stacks as transactions: health checks, smoke tests, and a way back that is never lost",
    propagate_version = true
)]
pub struct Cli {
    /// Path to slipway.toml.
    #[arg(
        long,
        global = true,
        default_value = "slipway.toml",
        value_name = "PATH"
    )]
    pub config: PathBuf,
    /// Machine-readable output on stdout (progress stays on stderr).
    #[arg(long, global = true)]
    pub json: bool,
    /// Environment; may be omitted when the config has exactly one.
    #[arg(long, short = 'e', global = true, value_name = "ENV")]
    pub env: Option<String>,
    /// After deploy or rollback, print where the time went: each
    /// step, and each kind of docker compose call (count and time).
    #[arg(long, global = true)]
    pub timings: bool,
    /// After deploy, rollback or recover, write Prometheus textfile-collector metrics here (a `.prom` file).
    #[arg(long, global = true, value_name = "PATH")]
    pub metrics_file: Option<PathBuf>,
    /// Run as the host's end of a remote run (started by the controller over SSH).
    #[arg(long, global = true, hide = true)]
    pub agent: bool,
    /// With --agent: this host of an environment of several (its services and `{host}` checks only).
    #[arg(long, global = true, hide = true, requires = "agent")]
    pub fleet_host: Option<String>,
    /// With --agent: wait at each gate for the coordinator (one release spanning hosts).
    #[arg(long, global = true, hide = true, requires = "agent")]
    pub gated: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Draft a commented slipway.toml from the compose project (never overwrites one).
    Init(InitArgs),
    /// Deploy a tag: pull, pin the way back, roll out, wait healthy, smoke test, commit or roll back.
    Deploy(DeployArgs),
    /// Restore the `:rollback` release, or any retained release, with the same verification.
    Rollback(RollbackArgs),
    /// What runs now, the current and rollback releases, locks and unfinished deploys.
    Status,
    /// Releases, newest first.
    History {
        #[arg(long, short = 'n', value_name = "N")]
        limit: Option<usize>,
    },
    /// Run the smoke suite alone.
    Smoke {
        /// Base URL for `{url}` (default: the environment's url).
        #[arg(long, value_name = "URL")]
        url: Option<String>,
        /// Also write the results as JUnit XML (for CI test reporters).
        #[arg(long, value_name = "PATH")]
        junit: Option<PathBuf>,
    },
    /// The last log lines of a failed release's failing containers (kept after the rollback removed them).
    Logs(LogsArgs),
    /// Validate the config and env file without touching anything.
    Check,
    /// Finish or undo an interrupted deploy, release a stale lock.
    Recover,
    /// Remove images slipway manages that no retained release needs.
    Prune {
        /// Show what would be removed and why the rest is kept.
        #[arg(long)]
        dry_run: bool,
    },
    /// Notification channels: `slipway notify test` sends each a test message.
    Notify {
        #[command(subcommand)]
        action: NotifyAction,
    },
    /// Print a shell completion script: `slipway completions bash > /etc/bash_completion.d/slipway`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff): `slipway man > slipway.1`.
    Man,
    /// A self-contained demonstration on the local Docker engine.
    Demo {
        /// Leave the demo stack running afterwards (remove it with `slipway demo --clean`).
        #[arg(long)]
        keep: bool,
        /// Only remove what an earlier `slipway demo --keep` left behind.
        #[arg(long)]
        clean: bool,
    },
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Compose file(s) to read (default: compose.yaml, docker-compose.yml, … beside the config).
    #[arg(long = "compose", short = 'f', value_name = "FILE", num_args = 1..)]
    pub compose: Vec<PathBuf>,
    /// Compose project name (default: the one compose gives the files: `name:` or the folder).
    #[arg(long, value_name = "NAME")]
    pub project: Option<String>,
}

#[derive(Debug, Args)]
pub struct CiArgs {
    /// Commit being deployed (default: $GITHUB_SHA or $CI_COMMIT_SHA).
    #[arg(long, value_name = "SHA")]
    pub commit: Option<String>,
    /// Branch being deployed (default: $GITHUB_REF_NAME or $CI_COMMIT_REF_NAME).
    #[arg(long, value_name = "NAME")]
    pub branch: Option<String>,
    /// Link to the CI run (default: built from GitHub Actions' or GitLab CI's variables).
    #[arg(long, value_name = "URL")]
    pub run_url: Option<String>,
}

#[derive(Debug, Args)]
pub struct DeployArgs {
    /// Image tag to deploy (default: the environment's `tag`).
    #[arg(long, short = 't', value_name = "TAG")]
    pub tag: Option<String>,
    /// Queue behind a run that holds the environment lock, for at most this long (e.g. 10m).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub wait: Option<std::time::Duration>,
    /// Write the smoke suite's results as JUnit XML (for CI test reporters).
    #[arg(long, value_name = "PATH")]
    pub junit: Option<PathBuf>,
    #[command(flatten)]
    pub failure_logs: FailureLogsArgs,
    #[command(flatten)]
    pub ci: CiArgs,
}

#[derive(Debug, Args)]
pub struct FailureLogsArgs {
    /// On a failed release, show this many last log lines of each failing container (0: none).
    #[arg(long = "logs", value_name = "N", default_value_t = crate::probe::logs::DEFAULT_LINES)]
    pub lines: usize,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// A release ID from `slipway history` (default: the release `:rollback` names).
    #[arg(long, value_name = "RELEASE_ID")]
    pub to: Option<i64>,
    /// Queue behind a run that holds the environment lock, for at most this long (e.g. 10m).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub wait: Option<std::time::Duration>,
    #[command(flatten)]
    pub failure_logs: FailureLogsArgs,
    #[command(flatten)]
    pub ci: CiArgs,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Only this service (without captured lines: its live container's last lines).
    #[arg(value_name = "SERVICE")]
    pub service: Option<String>,
    /// A release ID from `slipway history` (default: the newest release that captured lines).
    #[arg(long, value_name = "RELEASE_ID")]
    pub release: Option<i64>,
    /// Show at most this many last lines per container.
    #[arg(long, short = 'n', value_name = "N", default_value_t = crate::probe::logs::DEFAULT_LINES)]
    pub lines: usize,
}

#[derive(Debug, Subcommand)]
pub enum NotifyAction {
    /// Send a test message to every channel of the environment.
    Test(NotifyTestArgs),
}

#[derive(Debug, Args)]
pub struct NotifyTestArgs {
    #[command(flatten)]
    pub ci: CiArgs,
}
