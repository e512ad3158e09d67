//! `[notify]` in slipway.toml: the channels that hear about releases, which
//! events and environments each one wants, and how hard delivery tries.
//!
//! ```toml
//! [notify]
//! timeout = "5s"                  # per attempt
//! retries = 2                     # after the first attempt
//!
//! [notify.slack]                  # or [[notify.slack]] for several
//! webhook_env = "SLACK_WEBHOOK_URL"
//! events = ["deploy_failed", "rollback_started", "rollback_failed"]   # default: all
//! environments = ["production"]   # default: all
//!
//! [[notify.webhook]]
//! url_env = "DEPLOY_WEBHOOK_URL"
//! ```
//!
//! A channel names the variable that holds its URL, never the URL.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::spanned::S;
use super::{did_you_mean, duration, env_var_name, Environment, Source};
use crate::error::Result;

/// An event a channel can subscribe to: PRODUCT.md's six, by the names a
/// channel's `events` uses. Defined here, in the config that names them;
/// `notify` builds and sends the payloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Event {
    DeployStarted,
    DeploySucceeded,
    DeployFailed,
    RollbackStarted,
    RollbackSucceeded,
    RollbackFailed,
}

impl Event {
    pub const ALL: [Event; 6] = [
        Event::DeployStarted,
        Event::DeploySucceeded,
        Event::DeployFailed,
        Event::RollbackStarted,
        Event::RollbackSucceeded,
        Event::RollbackFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Event::DeployStarted => "deploy_started",
            Event::DeploySucceeded => "deploy_succeeded",
            Event::DeployFailed => "deploy_failed",
            Event::RollbackStarted => "rollback_started",
            Event::RollbackSucceeded => "rollback_succeeded",
            Event::RollbackFailed => "rollback_failed",
        }
    }

    pub fn parse(s: &str) -> Option<Event> {
        Event::ALL.into_iter().find(|e| e.as_str() == s)
    }
}

/// `[x]` or `[[x]]`: one table or an array of tables, so one channel or hook
/// reads naturally and several are possible. Errors inside keep their spans.
#[derive(Debug)]
pub struct OneOrMany<T>(pub Vec<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OneOrMany<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = OneOrMany<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a table, or an array of tables")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                map: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map)).map(|t| OneOrMany(vec![t]))
            }
            fn visit_seq<A: SeqAccess<'de>>(
                self,
                seq: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                Vec::<T>::deserialize(SeqAccessDeserializer::new(seq)).map(OneOrMany)
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// In the schema: one table, or an array of them.
impl<T: schemars::JsonSchema> schemars::JsonSchema for OneOrMany<T> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        format!("OneOrMany_{}", T::schema_name()).into()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let one = generator.subschema_for::<T>();
        schemars::json_schema!({ "anyOf": [one, { "type": "array", "items": one }] })
    }
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawNotify {
    pub timeout: Option<S<String>>,
    pub retries: Option<S<i64>>,
    pub slack: Option<OneOrMany<RawSlack>>,
    pub webhook: Option<OneOrMany<RawWebhook>>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSlack {
    pub webhook_env: S<String>,
    pub events: Option<S<Vec<S<String>>>>,
    pub environments: Option<S<Vec<S<String>>>>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawWebhook {
    pub url_env: S<String>,
    pub events: Option<S<Vec<S<String>>>>,
    pub environments: Option<S<Vec<S<String>>>>,
}

/// How a channel's messages look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A Slack incoming webhook: a readable message.
    Slack,
    /// A generic webhook: the event object as JSON.
    Json,
}

#[derive(Debug, Clone)]
pub struct Channel {
    pub format: Format,
    /// The environment variable holding the URL.
    pub url_env: String,
    pub events: BTreeSet<Event>,
    /// `None`: every environment.
    pub environments: Option<BTreeSet<String>>,
}

impl Channel {
    /// How messages name the channel: its kind and variable, never its URL.
    pub fn label(&self) -> String {
        let kind = match self.format {
            Format::Slack => "slack",
            Format::Json => "webhook",
        };
        format!("{kind} ({})", self.url_env)
    }

    pub fn serves(&self, env: &str) -> bool {
        self.environments.as_ref().is_none_or(|e| e.contains(env))
    }
}

#[derive(Debug, Clone)]
pub struct Notify {
    /// For one delivery attempt.
    pub timeout: Duration,
    /// Attempts after the first.
    pub retries: u32,
    pub channels: Vec<Channel>,
}

impl Default for Notify {
    fn default() -> Notify {
        Notify {
            timeout: Duration::from_secs(5),
            retries: 2,
            channels: Vec::new(),
        }
    }
}

pub(super) fn build(
    src: &Source,
    raw: Option<RawNotify>,
    envs: &BTreeMap<String, Environment>,
) -> Result<Notify> {
    let mut notify = Notify::default();
    let Some(raw) = raw else { return Ok(notify) };
    if let Some(t) = &raw.timeout {
        notify.timeout = duration(src, "notify.timeout", t)?;
        if notify.timeout.is_zero() || notify.timeout > Duration::from_secs(60) {
            return src.err(
                t.span(),
                "notify.timeout: must be more than 0 and at most 60s",
            );
        }
    }
    if let Some(r) = &raw.retries {
        if !(0..=5).contains(r.get_ref()) {
            return src.err(r.span(), "notify.retries: must be between 0 and 5");
        }
        notify.retries = *r.get_ref() as u32;
    }
    let slack = raw.slack.map(|s| s.0).unwrap_or_default();
    let n = slack.len();
    for (i, s) in slack.into_iter().enumerate() {
        let key = indexed("notify.slack", i, n);
        notify.channels.push(Channel {
            format: Format::Slack,
            url_env: env_var_name(src, &format!("{key}.webhook_env"), &s.webhook_env)?,
            events: events(src, &key, s.events.as_ref())?,
            environments: environments(src, &key, s.environments.as_ref(), envs)?,
        });
    }
    let hooks = raw.webhook.map(|w| w.0).unwrap_or_default();
    let n = hooks.len();
    for (i, w) in hooks.into_iter().enumerate() {
        let key = indexed("notify.webhook", i, n);
        notify.channels.push(Channel {
            format: Format::Json,
            url_env: env_var_name(src, &format!("{key}.url_env"), &w.url_env)?,
            events: events(src, &key, w.events.as_ref())?,
            environments: environments(src, &key, w.environments.as_ref(), envs)?,
        });
    }
    Ok(notify)
}

/// `notify.webhook` for one, `notify.webhook[1]` when there are several.
pub(super) fn indexed(key: &str, i: usize, n: usize) -> String {
    if n > 1 {
        format!("{key}[{i}]")
    } else {
        key.to_string()
    }
}

fn events(src: &Source, key: &str, v: Option<&S<Vec<S<String>>>>) -> Result<BTreeSet<Event>> {
    let Some(list) = v else {
        return Ok(Event::ALL.into_iter().collect());
    };
    if list.get_ref().is_empty() {
        return src.err(
            list.span(),
            format!("{key}.events: list at least one event, or leave `events` out for all of them"),
        );
    }
    list.get_ref()
        .iter()
        .map(|e| {
            Event::parse(e.get_ref()).map_or_else(
                || {
                    src.err(
                        e.span(),
                        format!(
                            "{key}.events: `{}` is not an event (one of {}){}",
                            e.get_ref(),
                            Event::ALL.map(Event::as_str).join(", "),
                            did_you_mean(e.get_ref(), Event::ALL.iter().map(|e| e.as_str()))
                        ),
                    )
                },
                Ok,
            )
        })
        .collect()
}

/// An `environments = [...]` filter: every name must be a configured environment.
pub(super) fn environments(
    src: &Source,
    key: &str,
    v: Option<&S<Vec<S<String>>>>,
    envs: &BTreeMap<String, Environment>,
) -> Result<Option<BTreeSet<String>>> {
    let Some(list) = v else { return Ok(None) };
    if list.get_ref().is_empty() {
        return src.err(
            list.span(),
            format!("{key}.environments: list at least one environment, or leave `environments` out for all"),
        );
    }
    let mut names = BTreeSet::new();
    for e in list.get_ref() {
        let name = e.get_ref();
        if !envs.contains_key(name) {
            return src.err(
                e.span(),
                format!(
                    "{key}.environments: no environment `{name}` (known: {}){}",
                    envs.keys().cloned().collect::<Vec<_>>().join(", "),
                    did_you_mean(name, envs.keys().map(String::as_str))
                ),
            );
        }
        names.insert(name.clone());
    }
    Ok(Some(names))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::Event;
    use crate::config::{Config, Format};

    const BASE: &str = r#"project = "goodgo"
[environments.staging]
url = "http://127.0.0.1:8080"
[environments.production]
url = "https://example.com"
[services.api]
image = "ghcr.io/acme/api"
"#;

    fn parse(extra: &str) -> Result<Config, String> {
        Config::parse(Path::new("slipway.toml"), &format!("{BASE}{extra}"))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn the_product_keys_still_work_and_default_to_every_event() {
        let c = parse(
            "[notify.slack]\nwebhook_env = \"SLACK_WEBHOOK_URL\"\n\n[[notify.webhook]]\nurl_env = \"DEPLOY_WEBHOOK_URL\"\n",
        )
        .expect("valid");
        assert_eq!(c.notify.channels.len(), 2);
        let slack = &c.notify.channels[0];
        assert_eq!(slack.format, Format::Slack);
        assert_eq!(slack.url_env, "SLACK_WEBHOOK_URL");
        assert_eq!(slack.events.len(), 6);
        assert!(slack.serves("production"));
        assert_eq!(c.notify.channels[1].format, Format::Json);
        assert_eq!(c.notify.channels[1].label(), "webhook (DEPLOY_WEBHOOK_URL)");
        assert_eq!(c.notify.retries, 2);
        assert_eq!(c.notify.timeout, std::time::Duration::from_secs(5));
    }

    #[test]
    fn channels_choose_events_and_environments() {
        let c = parse(
            r#"[notify]
timeout = "2s"
retries = 1
[[notify.slack]]
webhook_env = "SLACK_ALL"
[[notify.slack]]
webhook_env = "SLACK_ALERTS"
events = ["deploy_failed", "rollback_failed"]
environments = ["production"]
[notify.webhook]
url_env = "HOOK"
"#,
        )
        .expect("valid");
        assert_eq!(c.notify.channels.len(), 3);
        let alerts = &c.notify.channels[1];
        assert_eq!(
            alerts.events.iter().copied().collect::<Vec<_>>(),
            [Event::DeployFailed, Event::RollbackFailed]
        );
        assert!(alerts.serves("production") && !alerts.serves("staging"));
        assert_eq!(c.notify.retries, 1);
    }

    #[test]
    fn bad_channel_settings_are_located() {
        let e = parse(
            "[notify.slack]\nwebhook_env = \"S\"\nevents = [\"deploy_failed\", \"deploy_fail\"]\n",
        )
        .expect_err("bad event");
        assert!(
            e.starts_with("slipway.toml:10:28: notify.slack.events: `deploy_fail` is not an event"),
            "{e}"
        );
        assert!(e.contains("did you mean `deploy_failed`"), "{e}");
        let e = parse("[[notify.webhook]]\nurl_env = \"A\"\n[[notify.webhook]]\nurl_env = \"B\"\nenvironments = [\"prod\"]\n")
            .expect_err("bad env");
        assert!(
            e.starts_with(
                "slipway.toml:12:17: notify.webhook[1].environments: no environment `prod`"
            ),
            "{e}"
        );
        let e = parse("[notify.slack]\nwebhook_env = \"S\"\nchannel = \"#deploys\"\n")
            .expect_err("unknown key");
        assert!(
            e.contains("slipway.toml:10:1") && e.contains("unknown field `channel`"),
            "{e}"
        );
        let e = parse("[notify]\nretries = 50\n").expect_err("retries");
        assert!(e.starts_with("slipway.toml:9:11: notify.retries"), "{e}");
        let e =
            parse("[[notify.webhook]]\nurl_env = \"http://127.0.0.1/secret\"\n").expect_err("url");
        assert!(e.contains("not the URL") && !e.contains("secret"), "{e}");
    }
}
