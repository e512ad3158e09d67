//! `slipway deploy`: the transaction with freshly pulled images.

use crate::cli::DeployArgs;
use crate::config::env_rules::check_environment;
use crate::config::names::check_tag;
use crate::config::Strategy;
use crate::error::{Error, Result};
use crate::pipeline::transaction::{self, Desired, Request};
use crate::pipeline::Ctx;
use crate::settings::{ci_context, process_var, Settings};
use crate::state::Kind;

pub async fn run(s: Settings, args: &DeployArgs) -> Result<()> {
    let tag = args.tag.clone().unwrap_or_else(|| s.env.tag.clone());
    check_tag(&tag).map_err(|m| Error::Usage(format!("--tag: {m}")))?;
    let out = s.out;
    for svc in s.config.services.values() {
        if svc.strategy == Strategy::StartFirst {
            out.warn(format!(
                "services.{}: start-first is not available yet; rolling it stop-first",
                svc.name
            ));
        }
    }
    out.line(format!("slipway deploy {} {tag}", s.env.name));
    // Preflight: the env file's rules, before anything is touched (exit 2).
    if let Some(report) = check_environment(
        &s.config.env_rules,
        &s.env.name,
        s.env.env_file.as_deref(),
        &s.config.dir,
    )? {
        if !report.ok() {
            out.line(format!("  ✗ env rules   {}", report.shown));
            return Err(report.error());
        }
        out.line(format!("  ✓ env rules   {}", report.shown));
    }
    let mut ctx = Ctx::open(s.config, s.env, out).await?;
    ctx.junit = args.junit.clone();
    let outcome = transaction::run(
        &ctx,
        Request {
            kind: Kind::Deploy,
            desired: Desired::Pull { tag },
            ci: ci_context(&args.ci, process_var),
        },
    )
    .await;
    super::finish(out, outcome)
}
