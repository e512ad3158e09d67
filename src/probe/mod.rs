//! Probes: one engine for service health waits and the smoke suite.
//!
//! A probe returns data ([`CheckResult`]: what was checked, expected, actual,
//! latency); the pipeline judges it and `report` renders it. "A check ran and
//! an assertion failed" (`failures`) is kept apart from "the check could not
//! run" (`error`). Results pass through [`redact::Secrets`] before anyone
//! sees them, so env file values never reach output, history or reports.

pub mod health;
pub mod http;
pub mod junit;
pub mod logs;
pub mod predicate;
pub use crate::config::redact;
pub mod report;
pub mod smoke;
pub mod tcp;

use serde::Serialize;

pub use redact::Secrets;

/// Values substituted for `{url}`, `{env}`, `{tag}` (and `{host}`, the
/// url's `host:port`) in checks, and the secrets to keep out of results.
#[derive(Debug, Clone, Default)]
pub struct Vars {
    pub url: String,
    pub env: String,
    pub tag: String,
    pub secrets: Secrets,
    /// One host of several: its address, which `{host}` means there.
    pub host: Option<String>,
}

impl Vars {
    fn base_url(&self) -> &str {
        self.url.trim_end_matches('/')
    }

    /// `host:port` of the url (`{host}`), for `tcp` checks and the like.
    pub fn host(&self) -> String {
        if let Some(h) = &self.host {
            return h.clone();
        }
        match reqwest::Url::parse(&self.url) {
            Ok(u) => match (u.host_str(), u.port_or_known_default()) {
                (Some(h), Some(p)) => format!("{h}:{p}"),
                (Some(h), None) => h.to_string(),
                _ => String::new(),
            },
            Err(_) => String::new(),
        }
    }

    pub fn expand(&self, s: &str) -> String {
        if !s.contains('{') {
            return s.to_string();
        }
        s.replace("{url}", self.base_url())
            .replace("{env}", &self.env)
            .replace("{tag}", &self.tag)
            .replace("{host}", &self.host())
    }

    /// The same substitution inside a regular expression: values match literally.
    pub fn expand_regex(&self, s: &str) -> String {
        s.replace("{url}", &regex::escape(self.base_url()))
            .replace("{env}", &regex::escape(&self.env))
            .replace("{tag}", &regex::escape(&self.tag))
            .replace("{host}", &regex::escape(&self.host()))
    }

    /// The same values for commands, as `SLIPWAY_*` variables.
    pub fn env_vars(&self) -> Vec<(String, String)> {
        vec![
            ("SLIPWAY_URL".into(), self.url.clone()),
            ("SLIPWAY_ENV".into(), self.env.clone()),
            ("SLIPWAY_TAG".into(), self.tag.clone()),
        ]
    }
}

/// Why a check stopped waiting: its own `timeout`, or the overall deadline
/// (`smoke_timeout`, `health_timeout`) when that came first.
pub fn timeout_message(what: &str, own: std::time::Duration, limit: std::time::Duration) -> String {
    if limit < own {
        format!(
            "{what} before the overall timeout ran out ({:.1}s were left)",
            limit.as_secs_f64()
        )
    } else {
        format!("{what} within {}", humantime::format_duration(own))
    }
}

/// One failed assertion: what was expected and what came back.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Mismatch {
    pub what: String,
    pub expected: String,
    pub actual: String,
}

/// The outcome of one check. `error` means it could not run at all (no
/// connection, timeout); `failures` means it ran and an assertion failed.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    pub name: String,
    pub kind: &'static str,
    pub target: String,
    pub ok: bool,
    pub latency_ms: u64,
    /// Runs made (more than 1 when `retries` was needed).
    pub attempts: u32,
    pub failures: Vec<Mismatch>,
    pub error: Option<String>,
    /// A short single-line excerpt of the body or output, kept on failure.
    pub excerpt: Option<String>,
}

impl CheckResult {
    pub fn new(name: &str, kind: &'static str, target: String) -> CheckResult {
        CheckResult {
            name: name.to_string(),
            kind,
            target,
            ok: false,
            latency_ms: 0,
            attempts: 1,
            failures: Vec::new(),
            error: None,
            excerpt: None,
        }
    }

    /// Decide `ok` from what was recorded; an excerpt is only kept on failure.
    pub fn judged(mut self) -> CheckResult {
        self.ok = self.error.is_none() && self.failures.is_empty();
        if self.ok {
            self.excerpt = None;
        }
        self
    }

    /// One line: why it failed.
    pub fn reason(&self) -> String {
        let mut why = match &self.error {
            Some(e) => e.clone(),
            None => self
                .failures
                .iter()
                .map(|m| format!("{}: expected {}, got {}", m.what, m.expected, m.actual))
                .collect::<Vec<_>>()
                .join("; "),
        };
        if let Some(x) = &self.excerpt {
            why.push_str(&format!(" — {x}"));
        }
        why
    }

    /// Replace every secret in every text this result holds.
    pub fn redact(&mut self, secrets: &Secrets) {
        if secrets.is_empty() {
            return;
        }
        secrets.redact_in_place(&mut self.target);
        for m in &mut self.failures {
            secrets.redact_in_place(&mut m.what);
            secrets.redact_in_place(&mut m.expected);
            secrets.redact_in_place(&mut m.actual);
        }
        for s in [&mut self.error, &mut self.excerpt].into_iter().flatten() {
            secrets.redact_in_place(s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_expand_everywhere() {
        let v = Vars {
            url: "http://127.0.0.1:8080/".into(),
            env: "staging".into(),
            tag: "v2".into(),
            ..Vars::default()
        };
        assert_eq!(
            v.expand("{url}/health?e={env}&t={tag}"),
            "http://127.0.0.1:8080/health?e=staging&t=v2"
        );
        assert_eq!(v.expand("{host}"), "127.0.0.1:8080");
        assert_eq!(v.expand_regex("^{url}$"), "^http://127\\.0\\.0\\.1:8080$");
        let https = Vars {
            url: "https://example.com".into(),
            ..Vars::default()
        };
        assert_eq!(https.host(), "example.com:443");
    }
}
