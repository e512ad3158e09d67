//! `slipway recover`: undo an interrupted deploy and free a stale lock.

use crate::error::Result;
use crate::pipeline::recover::{recover, Recovered};
use crate::pipeline::Ctx;
use crate::settings::Settings;

pub async fn run(s: Settings) -> Result<()> {
    let out = s.out;
    let ctx = Ctx::open(s.config, s.env, out).await?;
    let done = recover(&ctx).await?;
    let (msg, json) = match done {
        Recovered::Nothing => (
            "nothing to recover: no unfinished release, lock free".to_string(),
            serde_json::json!({"recovered": false}),
        ),
        Recovered::RolledBack {
            unfinished,
            restored,
        } => (
            format!(
                "release {unfinished} marked rolled_back; {}",
                restored.map_or("no earlier release to restore".to_string(), |r| format!(
                    "release {r} runs and is healthy"
                ))
            ),
            serde_json::json!({"recovered": true, "unfinished": unfinished, "restored": restored}),
        ),
    };
    if out.json {
        out.json(&json);
    } else {
        out.line(msg);
    }
    Ok(())
}
