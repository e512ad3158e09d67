//! The serde shape of `slipway.toml`, exactly as users write it.
//!
//! Every table denies unknown keys and keeps spans, so the validation stage in
//! `config::mod` can point at `file:line:col` for any value it rejects.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_spanned::Spanned;

pub type S<T> = Spanned<T>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub project: S<String>,
    #[serde(default)]
    pub compose_files: Option<S<Vec<S<String>>>>,
    #[serde(default)]
    pub deploy: Option<RawKnobs>,
    #[serde(default)]
    pub environments: BTreeMap<S<String>, RawKnobs>,
    #[serde(default)]
    pub services: BTreeMap<S<String>, RawService>,
    #[serde(default)]
    pub smoke: Vec<RawSmoke>,
    #[serde(default)]
    pub notify: Option<super::notify::RawNotify>,
    #[serde(default)]
    pub hooks: Option<super::hooks::RawHooks>,
    #[serde(default)]
    pub env_rules: Option<super::env_rules::RawEnvRules>,
}

/// `[deploy]` and `[environments.NAME]` share one shape: an environment may
/// override any deploy default. `url` and `env_file` only make sense per
/// environment; validation says so if they appear under `[deploy]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKnobs {
    pub url: Option<S<String>>,
    pub env_file: Option<S<String>>,
    pub tag: Option<S<String>>,
    pub health_timeout: Option<S<String>>,
    pub health_interval: Option<S<String>>,
    pub readiness_delay: Option<S<String>>,
    pub smoke_timeout: Option<S<String>>,
    pub keep_releases: Option<S<i64>>,
    pub rollback_tag: Option<S<String>>,
    pub max_parallel: Option<S<i64>>,
    pub smoke_concurrency: Option<S<i64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawService {
    pub image: Option<S<String>>,
    pub strategy: Option<S<String>>,
    /// A mode (`"container"`) or an HTTP probe table ([`RawHttpHealth`]),
    /// told apart in validation so a typo gets a real message.
    pub health: Option<S<toml::Value>>,
    pub drain: Option<S<String>>,
    pub settle: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttpHealth {
    // Read from a `toml::Value`, which has no spans: errors point at the
    // whole `health` table.
    pub http: String,
    pub method: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub body: Option<String>,
    pub expect_status: Option<RawStatus>,
    #[serde(default)]
    pub expect_json: BTreeMap<String, toml::Value>,
    pub expect_body: Option<toml::Value>,
    #[serde(default)]
    pub expect_header: BTreeMap<String, toml::Value>,
    pub max_latency: Option<String>,
    pub timeout: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawStatus {
    One(u16),
    Many(Vec<u16>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSmoke {
    pub name: S<String>,
    pub http: Option<S<String>>,
    pub method: Option<S<String>>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub body: Option<String>,
    pub expect_status: Option<S<RawStatus>>,
    #[serde(default)]
    pub expect_json: BTreeMap<S<String>, toml::Value>,
    pub expect_body: Option<S<toml::Value>>,
    #[serde(default)]
    pub expect_header: BTreeMap<S<String>, toml::Value>,
    pub max_latency: Option<S<String>>,
    pub timeout: Option<S<String>>,
    pub retries: Option<S<i64>>,
    pub retry_interval: Option<S<String>>,
    pub exec: Option<S<RawExec>>,
    pub command: Option<S<Vec<String>>>,
    pub tcp: Option<S<String>>,
    pub expect_stdout: Option<S<toml::Value>>,
    pub expect_exit: Option<S<i32>>,
    pub pre_traffic: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExec {
    pub service: String,
    pub command: Vec<String>,
}
