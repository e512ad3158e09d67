//! `slipway recover`: after a run that died (SIGKILL, cancelled CI job,
//! reboot), put the environment back on its last succeeded release and close
//! the unfinished release, then leave the lock free. Safe to run twice.

use crate::error::{Error, Result};
use crate::state::{EnvLock, Release, Status};

use super::context::{state_dir, Ctx};
use super::plan;
use super::transaction::{describe_services, restore_release};

pub enum Recovered {
    Nothing,
    RolledBack {
        unfinished: i64,
        restored: Option<i64>,
    },
}

pub async fn recover(ctx: &Ctx) -> Result<Recovered> {
    let (lock, stale) = EnvLock::acquire(&state_dir(&ctx.cfg), &ctx.env.name, "recover")?;
    if let Some(s) = stale {
        ctx.out.line(format!(
            "  released a stale lock left by {} (pid {} on {}, since {})",
            s.command, s.pid, s.host, s.since
        ));
    }
    let history = ctx.state.history(&ctx.env.name, None)?;
    let Some(unfinished) = plan::unfinished(&history).cloned() else {
        drop(lock);
        return Ok(Recovered::Nothing);
    };
    let target: Option<Release> = plan::current(&history).cloned();
    ctx.out.line(format!(
        "  release {} ({}) did not finish; restoring {}",
        unfinished.id,
        unfinished.kind.as_str(),
        target
            .as_ref()
            .map_or("nothing (no earlier release)".to_string(), |t| format!(
                "release {}",
                t.id
            ))
    ));
    let reason = "interrupted; undone by `slipway recover`";
    match restore_release(ctx, &unfinished, target.as_ref()).await {
        Ok(()) => {
            ctx.state
                .finish(unfinished.id, Status::RolledBack, Some(reason))?;
            Ok(Recovered::RolledBack {
                unfinished: unfinished.id,
                restored: target.map(|t| t.id),
            })
        }
        Err(e) => {
            let why = format!("{reason}; restoring failed: {e}");
            ctx.state
                .finish(unfinished.id, Status::Failed, Some(&why))?;
            Err(Error::Broken(format!(
                "could not restore after interrupted release {}: {e}\nwhat runs now:\n{}",
                unfinished.id,
                describe_services(ctx).await
            )))
        }
    }
}
