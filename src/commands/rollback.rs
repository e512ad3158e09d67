//! `slipway rollback [--to ID]`: the transaction with a recorded release's
//! exact images; verified like a deploy and recorded with kind `rollback`.

use std::path::Path;

use crate::backend::Backend;
use crate::cli::RollbackArgs;
use crate::error::{Error, Result};
use crate::pipeline::plan;
use crate::pipeline::request::{Desired, Request};
use crate::pipeline::transaction;
use crate::settings::{ci_context, process_var, Settings};
use crate::state::{Kind, Status};
use crate::with_backend;

pub async fn run(s: Settings, args: &RollbackArgs) -> Result<()> {
    let metrics = s.metrics_file.clone();
    with_backend!(s, ctx => run_on(&ctx, args, metrics.as_deref()).await)
}

async fn run_on<B: Backend>(ctx: &B, args: &RollbackArgs, metrics: Option<&Path>) -> Result<()> {
    let out = ctx.out;
    let env = ctx.env.name.clone();
    let history = ctx.state.history(&env, None)?;
    let current = plan::current(&history);
    let target = match args.to {
        Some(id) => history.iter().find(|r| r.id == id).ok_or_else(|| {
            Error::Usage(format!(
                "no release {id} in environment `{env}`\n  hint: `slipway history --env {env}` lists them"
            ))
        })?,
        None => plan::rollback_target(&history, current).ok_or_else(|| {
            Error::Usage(format!(
                "environment `{env}` has no earlier release to roll back to\n  hint: `slipway history --env {env}`"
            ))
        })?,
    };
    if target.status != Status::Succeeded {
        return Err(Error::Usage(format!(
            "release {} never passed its checks (status {}); choose a succeeded release from `slipway history --env {env}`",
            target.id,
            target.status.as_str()
        )));
    }
    if target.services.is_empty() {
        return Err(Error::Usage(format!(
            "release {} recorded no images",
            target.id
        )));
    }
    if current.is_some_and(|c| c.id == target.id) {
        return Err(Error::Usage(format!(
            "release {} is already the live release",
            target.id
        )));
    }
    out.line(format!("slipway rollback {env} → release {}", target.id));
    crate::interrupt::install();
    let outcome = transaction::run(
        ctx,
        Request {
            kind: Kind::Rollback,
            desired: Desired::Restore {
                release: Box::new(target.clone()),
            },
            ci: ci_context(&args.ci, process_var),
            lock_wait: args.wait,
            junit: None,
            gate: crate::remote::agent::gate(),
        },
    )
    .await;
    super::write_metrics(metrics, ctx);
    super::finish(ctx, outcome)
}
