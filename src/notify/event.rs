//! What slipway tells the outside world about a release: the six event names
//! of PRODUCT.md ("Webhook events") and the one payload every channel is
//! rendered from. Generic webhooks get the payload as JSON; Slack gets it as a
//! message (`slack.rs`); hooks get it as `SLIPWAY_*` variables.

use std::collections::BTreeMap;

use serde::Serialize;

/// The six events live with the config that names them (`[notify] events`).
pub use crate::config::notify::Event;
use crate::state::ContainerLogs;

/// The name on the wire: one of the six events, or `test` for `slipway notify test`.
pub const TEST_EVENT: &str = "test";

/// One image of a release as announced. `image_id` is null in `deploy_started`:
/// the new images are not pulled yet.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceRef {
    pub image: String,
    pub image_id: Option<String>,
}

/// PRODUCT.md's event object, plus what a reader of the event would look up
/// next: the project, the release kind, which release a rollback restores,
/// whether it was automatic, the host, and how long the release has taken.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Payload {
    pub event: String,
    pub project: String,
    pub env: String,
    pub release: Option<i64>,
    /// `deploy` or `rollback` (the release's kind).
    pub kind: Option<String>,
    pub tag: Option<String>,
    /// The release's status when the event was sent (`in_progress` while a
    /// failed release is being rolled back).
    pub status: Option<String>,
    pub reason: Option<String>,
    pub commit: Option<String>,
    pub branch: Option<String>,
    pub run_url: Option<String>,
    pub services: BTreeMap<String, ServiceRef>,
    /// For `rollback_*`: the release being restored (null: none, the new
    /// containers of a first deploy were removed).
    pub rollback_to: Option<i64>,
    /// For `rollback_*`: true when slipway rolled back a failed release by
    /// itself, false for `slipway rollback`.
    pub automatic: Option<bool>,
    /// Seconds since the release started, on the events that end a step.
    pub duration_s: Option<f64>,
    pub host: String,
    pub at: String,
    /// For `deploy_failed` / `rollback_failed` after a failed rollout: the
    /// last lines (redacted) of each container judged not healthy.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub logs: Vec<ContainerLogs>,
}

impl Payload {
    /// A payload with only the fixed fields set; the pipeline fills the rest.
    pub fn new(event: &str, project: &str, env: &str) -> Payload {
        Payload {
            event: event.to_string(),
            project: project.to_string(),
            env: env.to_string(),
            release: None,
            kind: None,
            tag: None,
            status: None,
            reason: None,
            commit: None,
            branch: None,
            run_url: None,
            services: BTreeMap::new(),
            rollback_to: None,
            automatic: None,
            duration_s: None,
            host: gethostname::gethostname().to_string_lossy().into_owned(),
            at: crate::state::now(),
            logs: Vec::new(),
        }
    }

    /// The same release, another event, stamped now.
    pub fn with_event(&self, event: Event) -> Payload {
        Payload {
            event: event.as_str().to_string(),
            at: crate::state::now(),
            ..self.clone()
        }
    }

    pub fn event(&self) -> Option<Event> {
        Event::parse(&self.event)
    }

    /// The payload as `SLIPWAY_*` variables for hooks; absent values are
    /// empty strings, so a script can test `[ -n "$SLIPWAY_REASON" ]`.
    pub fn env_vars(&self) -> Vec<(String, String)> {
        let opt = |v: &Option<String>| v.clone().unwrap_or_default();
        let num = |v: Option<i64>| v.map(|n| n.to_string()).unwrap_or_default();
        vec![
            ("SLIPWAY_EVENT".into(), self.event.clone()),
            ("SLIPWAY_PROJECT".into(), self.project.clone()),
            ("SLIPWAY_ENV".into(), self.env.clone()),
            ("SLIPWAY_RELEASE".into(), num(self.release)),
            ("SLIPWAY_KIND".into(), opt(&self.kind)),
            ("SLIPWAY_TAG".into(), opt(&self.tag)),
            ("SLIPWAY_STATUS".into(), opt(&self.status)),
            ("SLIPWAY_REASON".into(), opt(&self.reason)),
            ("SLIPWAY_COMMIT".into(), opt(&self.commit)),
            ("SLIPWAY_BRANCH".into(), opt(&self.branch)),
            ("SLIPWAY_RUN_URL".into(), opt(&self.run_url)),
            ("SLIPWAY_ROLLBACK_TO".into(), num(self.rollback_to)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_names_round_trip() {
        for e in Event::ALL {
            assert_eq!(Event::parse(e.as_str()), Some(e));
        }
        assert_eq!(Event::parse("deploy_start"), None);
        assert_eq!(Event::parse(TEST_EVENT), None);
    }

    #[test]
    fn payload_has_product_fields_and_hook_variables() {
        let mut p = Payload::new("deploy_failed", "goodgo", "staging");
        p.release = Some(8);
        p.tag = Some("v2".into());
        p.status = Some("in_progress".into());
        p.reason = Some("smoke check `core API` failed".into());
        p.commit = Some("abc123".into());
        let json = serde_json::to_value(&p).expect("json");
        for key in [
            "event", "env", "release", "tag", "status", "reason", "commit", "branch", "run_url",
            "services", "at",
        ] {
            assert!(json.get(key).is_some(), "{key} missing from {json}");
        }
        assert_eq!(json["release"], 8);
        assert!(json["branch"].is_null());
        let vars: BTreeMap<String, String> = p.env_vars().into_iter().collect();
        assert_eq!(vars["SLIPWAY_ENV"], "staging");
        assert_eq!(vars["SLIPWAY_RELEASE"], "8");
        assert_eq!(vars["SLIPWAY_TAG"], "v2");
        assert_eq!(vars["SLIPWAY_STATUS"], "in_progress");
        assert_eq!(vars["SLIPWAY_REASON"], "smoke check `core API` failed");
        assert_eq!(vars["SLIPWAY_BRANCH"], "");
        let next = p.with_event(Event::RollbackStarted);
        assert_eq!(next.event(), Some(Event::RollbackStarted));
        assert_eq!(next.release, Some(8));
    }
}
