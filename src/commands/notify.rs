//! `slipway notify test`: a test message to every channel that serves the
//! environment, sent the way real events are (same timeout and retries), with
//! the outcome per channel. Fails (exit 1) if any channel did not get it.

use futures_util::future::join_all;

use crate::cli::NotifyTestArgs;
use crate::config::Channel;
use crate::error::{Error, Result};
use crate::notify::delivery::{self, Delivery, Policy};
use crate::notify::event::TEST_EVENT;
use crate::notify::{render, resolve, Payload};
use crate::settings::{ci_context, process_var, Settings};

/// Send the test message to every channel serving the environment, then
/// report each outcome; exit 1 if any did not get it.
pub async fn test(s: Settings, args: &NotifyTestArgs) -> Result<()> {
    let out = s.out;
    let env = &s.env.name;
    let (serving, others): (Vec<_>, Vec<_>) =
        s.config.notify.channels.iter().partition(|c| c.serves(env));
    if serving.is_empty() {
        return Err(Error::Usage(format!(
            "no notification channel serves environment `{env}` in {}\n  hint: add [notify.slack] webhook_env = \"SLACK_WEBHOOK_URL\" or [[notify.webhook]] url_env = \"…\"",
            s.config.path.display()
        )));
    }
    let results = send_all(&s, args, &serving).await;
    let failed = results.iter().filter(|d| !d.delivered).count();
    if out.json {
        let channels: Vec<serde_json::Value> = serving
            .iter()
            .zip(&results)
            .map(|(c, d)| {
                serde_json::json!({
                    "channel": c.label(), "url_env": c.url_env, "delivered": d.delivered,
                    "attempts": d.attempts, "status": d.status, "error": d.error, "elapsed_ms": d.elapsed_ms,
                })
            })
            .collect();
        out.json(&serde_json::json!({ "env": env, "channels": channels }));
    }
    for (c, d) in serving.iter().zip(&results) {
        out.line(outcome_line(c, d));
    }
    for c in others {
        out.line(format!("  - {:<32} not for environment `{env}`", c.label()));
    }
    if failed == 0 {
        Ok(())
    } else {
        Err(Error::ChecksFailed(format!(
            "{failed} of {} notification channels did not get the test message",
            serving.len()
        )))
    }
}

/// The test event with the CI context, posted to each channel at once with
/// the real events' timeout and retries; one [`Delivery`] per channel, in order.
async fn send_all(s: &Settings, args: &NotifyTestArgs, serving: &[&Channel]) -> Vec<Delivery> {
    let ci = ci_context(&args.ci, process_var);
    let mut p = Payload::new(TEST_EVENT, &s.config.project, &s.env.name);
    p.commit = ci.commit;
    p.branch = ci.branch;
    p.run_url = ci.run_url;
    let policy = Policy::new(s.config.notify.timeout, s.config.notify.retries);
    let client = delivery::client();
    let sends = serving.iter().map(|c| {
        let body = render(c.format, &p);
        let client = &client;
        let policy = &policy;
        async move {
            match resolve(c, &process_var) {
                Ok(url) => delivery::post(client, &url, &body, policy).await,
                Err(why) => Delivery {
                    delivered: false,
                    attempts: 0,
                    status: None,
                    error: Some(why),
                    elapsed_ms: 0,
                },
            }
        }
    });
    join_all(sends).await
}

/// One channel's outcome: delivered (status, attempts, time) or why not.
fn outcome_line(c: &Channel, d: &Delivery) -> String {
    if d.delivered {
        format!(
            "  ✓ {:<32} delivered (HTTP {}, {} attempt{}, {:.1}s)",
            c.label(),
            d.status.unwrap_or(0),
            d.attempts,
            if d.attempts == 1 { "" } else { "s" },
            d.elapsed_ms as f64 / 1000.0
        )
    } else {
        format!(
            "  ✗ {:<32} not delivered: {}{}",
            c.label(),
            d.error.as_deref().unwrap_or("unknown error"),
            match d.attempts {
                0 => String::new(),
                n => format!(" ({n} attempt{})", if n == 1 { "" } else { "s" }),
            }
        )
    }
}
