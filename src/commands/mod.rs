//! One file per subcommand: each resolves what it needs, calls the pipeline,
//! and renders the outcome (human on stderr, `--json` on stdout).

pub mod check;
pub mod completions;
pub mod demo;
pub mod deploy;
pub mod history;
pub mod init;
pub mod notify;
pub mod prune;
pub mod recover;
pub mod rollback;
pub mod smoke;
pub mod status;

use crate::error::Result;
use crate::output::Printer;
use crate::pipeline::transaction::Outcome;

/// Render a transaction's outcome and pass its result on.
pub fn finish(out: Printer, outcome: Outcome) -> Result<()> {
    if let Some(r) = &outcome.release {
        if out.json {
            out.json(r);
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
    outcome.result
}
