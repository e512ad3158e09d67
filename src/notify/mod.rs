//! Notifications: Slack incoming webhooks and generic JSON webhooks, for the
//! release events of PRODUCT.md.
//!
//! A [`Notifier`] gives every channel its own queue and worker, so channels
//! are served in parallel, each channel gets events in order, and the deploy
//! never waits on a slow receiver: it only waits, once, at the end, for at
//! most one message's retry budget. A channel that could not be reached gets a
//! single attempt for its later events. An undeliverable notification is a
//! warning, never an error, and no message slipway prints names the URL: a
//! channel is known by the variable that holds it.

pub mod delivery;
pub mod event;
pub mod slack;

use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::config::{Channel, Format, Notify};
use crate::output::Printer;

pub use delivery::{Delivery, Policy, SecretUrl};
pub use event::{Event, Payload, ServiceRef};

/// The body a channel receives for a payload.
pub fn render(format: Format, p: &Payload) -> Value {
    match format {
        Format::Slack => slack::message(p),
        Format::Json => serde_json::to_value(p).unwrap_or(Value::Null),
    }
}

/// The channel's URL from its environment variable. The error names the
/// variable, never the value.
pub fn resolve(
    channel: &Channel,
    var: &impl Fn(&str) -> Option<String>,
) -> Result<SecretUrl, String> {
    match var(&channel.url_env) {
        None => Err(format!("{} is not set", channel.url_env)),
        Some(v) => {
            SecretUrl::parse(&v).map_err(|why| format!("the value of {} {why}", channel.url_env))
        }
    }
}

/// What a channel's worker reports: failed messages (event, delivery) and how many it finished.
#[derive(Default)]
struct Report {
    failed: Vec<(String, Delivery)>,
    finished: usize,
}

struct Lane {
    channel: Channel,
    tx: mpsc::UnboundedSender<Payload>,
    worker: JoinHandle<()>,
    sent: usize,
    report: Arc<Mutex<Report>>,
}

pub struct Notifier {
    lanes: Vec<Lane>,
    policy: Policy,
    out: Printer,
}

impl Notifier {
    /// Start a worker for every channel that serves `env` and whose URL is
    /// set. A missing or malformed URL is a warning: notifications are never
    /// a reason not to deploy.
    pub fn new(
        cfg: &Notify,
        env: &str,
        var: impl Fn(&str) -> Option<String>,
        out: Printer,
    ) -> Notifier {
        let policy = Policy::new(cfg.timeout, cfg.retries);
        let client = delivery::client();
        let mut lanes = Vec::new();
        for channel in cfg.channels.iter().filter(|c| c.serves(env)) {
            let url = match resolve(channel, &var) {
                Ok(u) => u,
                Err(why) => {
                    out.warn(format!(
                        "notify: {}: {why}; this channel gets no notifications",
                        channel.label()
                    ));
                    continue;
                }
            };
            let (tx, rx) = mpsc::unbounded_channel();
            let report = Arc::new(Mutex::new(Report::default()));
            let worker = tokio::spawn(work(
                rx,
                client.clone(),
                url,
                channel.format,
                policy,
                report.clone(),
            ));
            lanes.push(Lane {
                channel: channel.clone(),
                tx,
                worker,
                sent: 0,
                report,
            });
        }
        Notifier { lanes, policy, out }
    }

    /// A notifier with no channels.
    pub fn none(out: Printer) -> Notifier {
        Notifier {
            lanes: Vec::new(),
            policy: Policy::new(std::time::Duration::from_secs(1), 0),
            out,
        }
    }

    /// Queue `p` for every channel that wants its event; returns at once.
    pub fn send(&mut self, p: &Payload) {
        let Some(event) = p.event() else { return };
        for lane in &mut self.lanes {
            if lane.channel.events.contains(&event) && lane.tx.send(p.clone()).is_ok() {
                lane.sent += 1;
            }
        }
    }

    /// Wait for the queues to drain, at most one message's retry budget,
    /// then warn about what was not delivered.
    pub async fn finish(self) {
        let deadline = tokio::time::Instant::now() + self.policy.budget();
        let mut lanes = Vec::new();
        for lane in self.lanes {
            let Lane {
                channel,
                tx,
                worker,
                sent,
                report,
            } = lane;
            drop(tx);
            lanes.push((channel, worker, sent, report));
        }
        for (_, worker, _, _) in &mut lanes {
            if tokio::time::timeout_at(deadline, &mut *worker)
                .await
                .is_err()
            {
                worker.abort();
            }
        }
        for (channel, _, sent, report) in lanes {
            let Ok(report) = report.lock() else { continue };
            if let Some(w) = warning(&channel.label(), sent, &report) {
                self.out.warn(w);
            }
        }
    }
}

/// One channel's worker: its events in order, each with the full policy
/// while the endpoint answers, one attempt once it has failed.
async fn work(
    mut rx: mpsc::UnboundedReceiver<Payload>,
    client: reqwest::Client,
    url: SecretUrl,
    format: Format,
    policy: Policy,
    report: Arc<Mutex<Report>>,
) {
    let mut down = false;
    while let Some(p) = rx.recv().await {
        let body = render(format, &p);
        let d = delivery::post(
            &client,
            &url,
            &body,
            &if down { policy.single() } else { policy },
        )
        .await;
        down = !d.delivered;
        if let Ok(mut r) = report.lock() {
            r.finished += 1;
            if !d.delivered {
                r.failed.push((p.event.clone(), d));
            }
        }
    }
}

/// The warning for a channel, if anything was not delivered.
fn warning(label: &str, sent: usize, r: &Report) -> Option<String> {
    let unsent = sent.saturating_sub(r.finished);
    if r.failed.is_empty() && unsent == 0 {
        return None;
    }
    let mut parts: Vec<String> = r
        .failed
        .iter()
        .map(|(event, d)| {
            format!(
                "{event}: {} ({} attempt{})",
                d.error.as_deref().unwrap_or("not delivered"),
                d.attempts,
                if d.attempts == 1 { "" } else { "s" }
            )
        })
        .collect();
    if unsent > 0 {
        parts.push(format!("{unsent} not sent: out of time"));
    }
    Some(format!(
        "notify: {label}: {} of {sent} notification{} not delivered (the release is not affected): {}",
        r.failed.len() + unsent,
        if sent == 1 { "" } else { "s" },
        parts.join("; ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_warning_counts_failed_and_unsent_messages() {
        let d = Delivery {
            delivered: false,
            attempts: 3,
            status: None,
            error: Some("cannot connect (Connection refused)".into()),
            elapsed_ms: 10,
        };
        let r = Report {
            failed: vec![("deploy_started".into(), d)],
            finished: 1,
        };
        let w = warning("slack (SLACK_WEBHOOK_URL)", 2, &r).expect("warning");
        assert_eq!(
            w,
            "notify: slack (SLACK_WEBHOOK_URL): 2 of 2 notifications not delivered (the release is not affected): \
             deploy_started: cannot connect (Connection refused) (3 attempts); 1 not sent: out of time"
        );
        let ok = Report {
            failed: Vec::new(),
            finished: 2,
        };
        assert!(warning("x", 2, &ok).is_none());
    }
}
