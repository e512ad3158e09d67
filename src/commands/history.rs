//! `slipway history`: releases, newest first.

use crate::backend::compose::context::state_dir;
use crate::error::Result;
use crate::settings::Settings;
use crate::state::State;

pub fn run(s: Settings, limit: Option<usize>) -> Result<()> {
    let state = State::open(&state_dir(&s.config))?;
    let releases = state.history(&s.env.name, limit)?;
    if s.out.json {
        s.out.json(&releases);
        return Ok(());
    }
    if releases.is_empty() {
        s.out.line(format!("no releases in {} yet", s.env.name));
        return Ok(());
    }
    println!(
        "{:>4}  {:<8}  {:<16}  {:<11}  {:<20}  reason",
        "id", "kind", "tag", "status", "started"
    );
    for r in releases {
        println!(
            "{:>4}  {:<8}  {:<16}  {:<11}  {:<20}  {}",
            r.id,
            r.kind.as_str(),
            r.tag.as_deref().unwrap_or("-"),
            r.status.as_str(),
            r.started_at,
            r.reason.as_deref().unwrap_or("")
        );
    }
    Ok(())
}
