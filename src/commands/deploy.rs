//! `slipway deploy`: the transaction with freshly pulled images.

use crate::cli::DeployArgs;
use crate::config::names::check_tag;
use crate::error::{Error, Result};
use crate::pipeline::request::{Desired, Request};
use crate::pipeline::transaction;
use crate::settings::{ci_context, process_var, Settings};
use crate::state::Kind;
use crate::with_backend;

pub async fn run(s: Settings, args: &DeployArgs) -> Result<()> {
    let tag = args.tag.clone().unwrap_or_else(|| s.env.tag.clone());
    check_tag(&tag).map_err(|m| Error::Usage(format!("--tag: {m}")))?;
    let out = s.out;
    let metrics = s.metrics_file.clone();
    out.line(format!("slipway deploy {} {tag}", s.env.name));
    crate::backend::compose::context::enforce_env_rules(&s.config, &s.env, out)?;
    let request = Request {
        kind: Kind::Deploy,
        desired: Desired::Pull { tag },
        ci: ci_context(&args.ci, process_var),
        lock_wait: args.wait,
        junit: args.junit.clone(),
        gate: crate::remote::agent::gate(),
    };
    with_backend!(s, ctx => {
        crate::interrupt::install();
        let outcome = transaction::run(&ctx, request).await;
        super::write_metrics(metrics.as_deref(), &ctx);
        super::finish(&ctx, outcome)
    })
}
