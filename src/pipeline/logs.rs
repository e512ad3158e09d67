//! A failed release's captured log lines (see `probe::logs`): kept with the
//! release in the state database, printed under the failing step, and handed
//! on to the failure notification. Called where the failure is known, before
//! the rollback removes the containers (their lines were read by then).

use crate::probe::logs::render;
use crate::state::ContainerLogs;

use crate::backend::Backend;

/// Take what the release's health waits captured: store it, print it, return it.
pub fn keep<B: Backend>(ctx: &B, release: i64) -> Vec<ContainerLogs> {
    let logs = ctx.failure_logs();
    if logs.is_empty() {
        return logs;
    }
    if let Err(e) = ctx.state.save_logs(release, &logs) {
        ctx.out.warn(format!(
            "the failing containers' log lines were not kept: {e}"
        ));
    }
    if !ctx.out.json {
        eprint!("{}", render(&logs, &ctx.cfg.project));
    }
    logs
}
