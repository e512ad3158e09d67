//! `slipway recover`: undo an interrupted deploy and free a stale lock.

use crate::error::Result;
use crate::pipeline::recover::{recover, Recovered};
use crate::settings::Settings;
use crate::with_backend;

pub async fn run(s: Settings) -> Result<()> {
    let out = s.out;
    let metrics = s.metrics_file.clone();
    let done = with_backend!(s, ctx => {
        let done = recover(&ctx).await;
        super::write_metrics(metrics.as_deref(), &ctx);
        done
    })?;
    let (msg, json) = match done {
        Recovered::Nothing => (
            "nothing to recover: no unfinished release; the lock is free".to_string(),
            serde_json::json!({"recovered": false}),
        ),
        Recovered::Aborted {
            unfinished,
            removed: None,
        } => (
            format!("release {unfinished} changed nothing running; marked aborted"),
            serde_json::json!({"recovered": true, "unfinished": unfinished, "action": "aborted"}),
        ),
        Recovered::Aborted {
            unfinished,
            removed: Some(removed),
        } => (
            format!("release {unfinished} never reached its rollout; {removed}; marked aborted"),
            serde_json::json!({"recovered": true, "unfinished": unfinished, "action": "aborted", "removed": removed}),
        ),
        Recovered::Completed { unfinished } => (
            format!("release {unfinished} runs, is healthy and passes its smoke tests; marked succeeded"),
            serde_json::json!({"recovered": true, "unfinished": unfinished, "action": "completed"}),
        ),
        Recovered::RolledBack { unfinished, restored } => (
            format!(
                "release {unfinished} marked rolled_back; {}",
                restored.map_or("no earlier release to restore".to_string(), |r| format!(
                    "release {r} runs and is healthy"
                ))
            ),
            serde_json::json!({"recovered": true, "unfinished": unfinished, "action": "rolled_back", "restored": restored}),
        ),
    };
    if out.json {
        out.json(&json);
    } else {
        out.line(msg);
    }
    Ok(())
}
