//! Probes: one engine for service health waits and the smoke suite.
//!
//! A probe returns data ([`CheckResult`]: what was checked, expected, actual,
//! latency); the pipeline judges it and `report` renders it.

pub mod health;
pub mod http;
pub mod report;
pub mod smoke;

use serde::Serialize;

/// Values substituted for `{url}`, `{env}` and `{tag}` in checks.
#[derive(Debug, Clone, Default)]
pub struct Vars {
    pub url: String,
    pub env: String,
    pub tag: String,
}

impl Vars {
    pub fn expand(&self, s: &str) -> String {
        s.replace("{url}", self.url.trim_end_matches('/'))
            .replace("{env}", &self.env)
            .replace("{tag}", &self.tag)
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
    pub failures: Vec<Mismatch>,
    pub error: Option<String>,
}

impl CheckResult {
    pub fn new(name: &str, kind: &'static str, target: String) -> CheckResult {
        CheckResult {
            name: name.to_string(),
            kind,
            target,
            ok: false,
            latency_ms: 0,
            failures: Vec::new(),
            error: None,
        }
    }

    /// Decide `ok` from what was recorded.
    pub fn judged(mut self) -> CheckResult {
        self.ok = self.error.is_none() && self.failures.is_empty();
        self
    }

    /// One line: why it failed.
    pub fn reason(&self) -> String {
        if let Some(e) = &self.error {
            return e.clone();
        }
        self.failures
            .iter()
            .map(|m| format!("{}: expected {}, got {}", m.what, m.expected, m.actual))
            .collect::<Vec<_>>()
            .join("; ")
    }
}
