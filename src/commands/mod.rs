//! One file per subcommand: each resolves what it needs, calls the pipeline,
//! and renders the outcome (human on stderr, `--json` on stdout).

pub mod check;
pub mod completions;
#[cfg(feature = "demo")]
pub mod demo;
#[cfg(not(feature = "demo"))]
pub mod demo {
    //! `slipway demo` in a build without the `demo` feature (the .deb): the
    //! fixture code it runs on is left out of release builds, so say where
    //! the demo is.

    use crate::error::{Error, Result};
    use crate::output::Printer;

    pub async fn run(_out: Printer, _keep: bool, _clean_only: bool) -> Result<()> {
        Err(Error::Usage(
            "`slipway demo` is not in this build (release packages leave the demo's fixture code out); \
             run it from a source checkout: ./scripts/demo.sh (or `cargo run --features demo -- demo`)"
                .into(),
        ))
    }
}
pub mod deploy;
pub mod history;
pub mod init;
pub mod logs;
pub mod notify;
pub mod prune;
pub mod recover;
pub mod rollback;
pub mod smoke;
pub mod status;

use std::path::Path;

use serde::Serialize;

use crate::backend::Session;
use crate::error::Result;
use crate::pipeline::request::Outcome;
use crate::state::{ContainerLogs, Release};

/// Render a transaction's outcome and pass its result on. In `--json`, the
/// release comes with the last lines of its failing containers, if any.
pub fn finish(ctx: &Session, outcome: Outcome) -> Result<()> {
    let out = ctx.out;
    if let Some(r) = &outcome.release {
        if out.json {
            let logs = ctx.state.logs_of(r.id).unwrap_or_else(|e| {
                out.warn(format!("cannot read the captured log lines: {e}"));
                Vec::new()
            });
            let timings = crate::timings::snapshot();
            out.json(&Shown {
                release: r,
                logs,
                timings,
            });
        } else if outcome.result.is_ok() {
            out.line(format!(
                "release {} ({}) {} in {}",
                r.id,
                r.tag.as_deref().unwrap_or("-"),
                r.status.as_str(),
                r.env
            ));
        }
    }
    if out.timings && !out.json {
        eprint!("{}", crate::timings::render(&crate::timings::snapshot()));
    }
    outcome.result
}

/// A release as `deploy --json` and `rollback --json` print it.
#[derive(Serialize)]
struct Shown<'a> {
    #[serde(flatten)]
    release: &'a Release,
    logs: Vec<ContainerLogs>,
    /// Where the run's time went (`timings.rs`).
    timings: crate::timings::Timings,
}

/// After a run that may have changed history (deploy, rollback, recover):
/// rewrite the metrics file from the whole history. Never fails the run.
pub fn write_metrics(path: Option<&Path>, ctx: &Session) {
    let Some(path) = path else { return };
    let envs: Vec<String> = ctx.cfg.environments.keys().cloned().collect();
    let result = ctx.state.all_releases().and_then(|releases| {
        crate::metrics::write_atomic(
            path,
            &crate::metrics::render(&ctx.cfg.project, &envs, &releases),
        )
    });
    if let Err(e) = result {
        ctx.out.warn(format!("metrics not written: {e}"));
    }
}
