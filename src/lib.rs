//! slipway deploys Docker Compose stacks so that the way back is never lost.
//!
//! `run` parses the command line, resolves settings, dispatches to one
//! command, and prints the error (once) with its exit code. The layout
//! follows the design: `config` (slipway.toml), `engine` (Docker, Compose,
//! processes), `probe` (health and smoke checks), `state` (history, journal,
//! lock), `pipeline` (the deploy transaction and its decisions), `commands`
//! (one per subcommand), `output` (the printer), `notify` (Slack and
//! webhooks).

pub mod backend;
pub mod cli;
pub mod commands;
pub mod config;
pub mod engine;
pub mod error;
pub mod failpoint;
#[cfg(feature = "demo")]
pub mod fixture;
pub mod fleet;
pub mod interrupt;
pub mod metrics;
pub mod notify;
pub mod output;
pub mod pipeline;
pub mod probe;
pub mod remote;
pub mod settings;
pub mod state;
pub mod suggest;
pub mod timings;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};
use error::{Exit, Result};
use output::Printer;
use settings::Settings;

pub fn run() -> ExitCode {
    timings::begin();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { Exit::Usage as u8 } else { 0 });
        }
    };
    let out = Printer::new(cli.json);
    if let Err(e) = logging() {
        eprintln!("error: {e}");
        return ExitCode::from(Exit::Usage as u8);
    }
    // The host's end of a remote run: the controller's variables first,
    // before any thread; output that survives the controller going away.
    let _relay = if cli.agent {
        if let Err(e) = remote::agent::receive_hello() {
            eprintln!("error: {e}");
            return ExitCode::from(e.exit() as u8);
        }
        let relay = remote::agent::relay_output();
        remote::agent::watch_controller(cli.gated);
        Some(relay)
    } else {
        None
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(Exit::Usage as u8);
        }
    };
    let result = runtime.block_on(dispatch(&cli));
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e}");
            if out.json
                && !matches!(
                    cli.command,
                    Command::Deploy(_)
                        | Command::Rollback(_)
                        | Command::Smoke { .. }
                        | Command::Notify { .. }
                        | Command::Check
                )
            {
                out.json(&serde_json::json!({
                    "error": { "kind": e.kind(), "message": e.to_string(), "exit": e.exit() as u8 }
                }));
            }
            ExitCode::from(e.exit() as u8)
        }
    }
}

/// `SLIPWAY_LOG` (a filter as `RUST_LOG` takes: `debug`, `slipway=debug`)
/// logs what slipway does inside to stderr, stamped with the time since it
/// started: each command it ran, each rollout move, each step and mark.
/// Only slipway's own events, whatever the filter says: the libraries
/// underneath log Engine API answers (a container's environment, so env
/// file values) and request URLs (webhook secrets).
fn logging() -> std::result::Result<(), String> {
    use tracing_subscriber::layer::{Layer, SubscriberExt};
    use tracing_subscriber::util::SubscriberInitExt;
    let Some(filter) = std::env::var_os("SLIPWAY_LOG") else {
        return Ok(());
    };
    let filter = filter.to_string_lossy();
    let parsed = tracing_subscriber::EnvFilter::try_new(filter.as_ref()).map_err(|e| {
        format!("SLIPWAY_LOG={filter}: not a log filter ({e})\n  hint: SLIPWAY_LOG=debug, or SLIPWAY_LOG=slipway=debug")
    })?;
    let ours = tracing_subscriber::filter::filter_fn(|m| {
        m.target() == "slipway" || m.target().starts_with("slipway::")
    });
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_timer(tracing_subscriber::fmt::time::uptime())
        .with_ansi(false)
        .with_filter(ours)
        .with_filter(parsed);
    tracing_subscriber::registry()
        .with(layer)
        .try_init()
        .map_err(|e| format!("SLIPWAY_LOG: {e}"))
}

/// Commands without an environment run at once; the others resolve their
/// settings once, then run on the environment's host (`remote`) or here.
async fn dispatch(cli: &Cli) -> Result<u8> {
    let settings = match &cli.command {
        Command::Demo { keep, clean } => {
            return commands::demo::run(Printer::new(cli.json), *keep, *clean)
                .await
                .map(|()| 0)
        }
        Command::Completions { shell } => {
            return commands::completions::completions(*shell).map(|()| 0)
        }
        Command::Man => return commands::completions::man().map(|()| 0),
        Command::Init(args) => return commands::init::run(cli, args).await.map(|()| 0),
        _ => Settings::resolve(cli)?,
    };
    if let Some(code) = fleet::intercept(cli, &settings).await? {
        return Ok(code);
    }
    if let Some(code) = remote::intercept(cli, &settings).await? {
        return Ok(code);
    }
    match &cli.command {
        Command::Deploy(args) => commands::deploy::run(settings, args).await,
        Command::Rollback(args) => commands::rollback::run(settings, args).await,
        Command::Status => commands::status::run(settings).await,
        Command::History { limit } => commands::history::run(settings, *limit),
        Command::Smoke { url, junit } => {
            commands::smoke::run(settings, url.clone(), junit.clone()).await
        }
        Command::Check => commands::check::run(settings).await,
        Command::Logs(args) => commands::logs::run(settings, args).await,
        Command::Recover => commands::recover::run(settings).await,
        Command::Prune { dry_run } => commands::prune::run(settings, *dry_run).await,
        Command::Notify {
            action: cli::NotifyAction::Test(args),
        } => commands::notify::test(settings, args).await,
        // Returned above, before settings.
        Command::Demo { .. } | Command::Completions { .. } | Command::Man | Command::Init(_) => {
            Ok(())
        }
    }
    .map(|()| 0)
}
