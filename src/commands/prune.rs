//! `slipway prune [--dry-run]`: safe prune on demand.

use crate::backend::Backend;
use crate::error::Result;
use crate::settings::Settings;
use crate::state::EnvLock;
use crate::with_backend;

pub async fn run(s: Settings, dry_run: bool) -> Result<()> {
    let out = s.out;
    let plan = with_backend!(s, ctx => {
        // Not while a deploy of this environment is between pull and commit.
        let _lock = EnvLock::acquire(
            &crate::backend::compose::context::state_dir(&ctx.cfg),
            &ctx.env.name,
            "prune",
        )?;
        ctx.prune(dry_run).await?
    });
    if out.json {
        out.json(&plan);
        return Ok(());
    }
    let verb = if dry_run { "would remove" } else { "removed" };
    for d in &plan.delete {
        out.line(format!("  {verb} {} {}", short(&d.id), d.names.join(" ")));
    }
    let untag = if dry_run { "would untag" } else { "untagged" };
    for d in &plan.untag {
        out.line(format!(
            "  {untag} {} {} ({})",
            short(&d.id),
            d.names.join(" "),
            d.reason
        ));
    }
    for d in &plan.keep {
        out.line(format!(
            "  kept    {} {} ({})",
            short(&d.id),
            d.names.join(" "),
            d.reason
        ));
    }
    out.line(format!(
        "{} {} images, {untag} {}, kept {}",
        verb,
        plan.delete.len(),
        plan.untag.len(),
        plan.keep.len()
    ));
    Ok(())
}

fn short(id: &str) -> String {
    id.trim_start_matches("sha256:").chars().take(12).collect()
}
