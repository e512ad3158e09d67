//! The serde shape of `slipway.toml`, exactly as users write it.
//!
//! Every table denies unknown keys and keeps spans, so the validation stage in
//! `config::mod` can point at `file:line:col` for any value it rejects.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

use super::spanned::S;

/// Any TOML value (checked in validation): described as any JSON value.
type AnyValue = serde_json::Value;

/// `health`: a mode, or an HTTP probe table.
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code, clippy::large_enum_variant)] // only described, never built
enum HealthSchema {
    /// `auto` (default: the HEALTHCHECK if any, else running for readiness_delay),
    /// `container` (require the HEALTHCHECK) or `none`.
    Mode(HealthMode),
    Http(RawHttpHealth),
}

#[derive(JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[allow(dead_code)]
enum StrategySchema {
    StopFirst,
    StartFirst,
}

#[derive(JsonSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
enum HealthMode {
    Auto,
    Container,
    None,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// The compose project name.
    pub project: S<String>,
    /// Compose files, relative to this file (default: docker-compose.yml).
    #[serde(default)]
    pub compose_files: Option<S<Vec<S<String>>>>,
    /// Defaults for every environment.
    #[serde(default)]
    pub deploy: Option<RawKnobs>,
    /// One table per environment; each may override any `[deploy]` default.
    #[serde(default)]
    pub environments: BTreeMap<S<String>, RawKnobs>,
    /// The compose services slipway deploys; the others are never touched.
    #[serde(default)]
    pub services: BTreeMap<S<String>, RawService>,
    /// The smoke suite: each check has a name and one of http, exec, command, tcp.
    #[serde(default)]
    pub smoke: Vec<RawSmoke>,
    #[serde(default)]
    pub notify: Option<super::notify::RawNotify>,
    #[serde(default)]
    pub hooks: Option<super::hooks::RawHooks>,
    #[serde(default)]
    pub env_rules: Option<super::env_rules::RawEnvRules>,
    #[serde(default)]
    pub metrics: Option<RawMetrics>,
    /// How to reach remote hosts (`host = "ssh://…"`); an environment's own `[environments.NAME.ssh]` overrides it key by key.
    #[serde(default)]
    pub ssh: Option<super::remote::RawSsh>,
}

/// `[metrics]`: where to write Prometheus textfile-collector metrics.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawMetrics {
    /// A `.prom` file for node_exporter's textfile collector, rewritten after every deploy, rollback and recover.
    pub textfile: Option<S<String>>,
}

/// `[deploy]` and `[environments.NAME]` share one shape: an environment may
/// override any deploy default. `url` and `env_file` only make sense per
/// environment; validation says so if they appear under `[deploy]`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawKnobs {
    /// `{url}` in probes and smoke checks (environments only).
    pub url: Option<S<String>>,
    /// Env file given to compose and checked by `slipway check` (environments only).
    pub env_file: Option<S<String>>,
    /// A remote host, `ssh://[user@]host[:port]` (environments only; default: the local engine).
    pub host: Option<S<String>>,
    /// The project folder on the remote host (environments only; default `~/.slipway/PROJECT/ENV`).
    pub dir: Option<S<String>>,
    /// `[ssh]` options for this environment's host (environments only).
    pub ssh: Option<S<super::remote::RawSsh>>,
    /// Several hosts, `{ name = "ssh://…" }`: one release spans them all (environments only).
    pub hosts: Option<S<BTreeMap<S<String>, S<String>>>>,
    /// Hosts (in name order) switched first, alone, before the rest (default 0).
    pub canary: Option<S<i64>>,
    /// Hosts switched at once after the canary; 0 = no limit (default 0).
    pub max_parallel_hosts: Option<S<i64>>,
    /// Where releases run: "compose" (default; the engine at `host`) or "swarm" (a Swarm reached on a manager at `host`).
    pub backend: Option<S<String>>,
    /// With backend = "swarm": the stack's name (default: `project`).
    pub stack: Option<S<String>>,
    /// Tag deployed when `--tag` is not given (default "latest").
    pub tag: Option<S<String>>,
    /// How long services may take to become healthy (default "100s").
    pub health_timeout: Option<S<String>>,
    /// Pause between HTTP health probes (default "2s").
    pub health_interval: Option<S<String>>,
    /// Running this long counts as healthy for a service with no health check (default "5s").
    pub readiness_delay: Option<S<String>>,
    /// Limit for the whole smoke suite.
    pub smoke_timeout: Option<S<String>>,
    /// Succeeded releases whose images prune keeps (default 5).
    pub keep_releases: Option<S<i64>>,
    /// Tag naming the way back (default "rollback").
    pub rollback_tag: Option<S<String>>,
    /// Services rolled at once; 0 = no limit.
    pub max_parallel: Option<S<i64>>,
    /// Smoke checks in flight at once; 0 = all (default 8).
    pub smoke_concurrency: Option<S<i64>>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawService {
    /// Repository without tag (default: the compose service's image without its tag).
    pub image: Option<S<String>>,
    /// "stop-first" (default) or "start-first".
    #[schemars(with = "Option<StrategySchema>")]
    pub strategy: Option<S<String>>,
    /// A mode ("container", "none", "auto") or an HTTP probe table; told
    /// apart in validation, so a typo gets a real message.
    #[schemars(with = "Option<HealthSchema>")]
    pub health: Option<S<toml::Value>>,
    /// start-first: how long old and new serve side by side (default "0s").
    pub drain: Option<S<String>>,
    pub settle: Option<S<String>>,
    /// The environment's hosts this service runs on (default: every host).
    pub hosts: Option<S<Vec<S<String>>>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
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
    #[schemars(with = "BTreeMap<String, AnyValue>")]
    pub expect_json: BTreeMap<String, toml::Value>,
    #[schemars(with = "Option<AnyValue>")]
    pub expect_body: Option<toml::Value>,
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, AnyValue>")]
    pub expect_header: BTreeMap<String, toml::Value>,
    pub max_latency: Option<String>,
    pub timeout: Option<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum RawStatus {
    One(u16),
    Many(Vec<u16>),
}

#[derive(Debug, Deserialize, JsonSchema)]
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
    #[schemars(with = "BTreeMap<String, AnyValue>")]
    pub expect_json: BTreeMap<S<String>, toml::Value>,
    #[schemars(with = "Option<AnyValue>")]
    pub expect_body: Option<S<toml::Value>>,
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, AnyValue>")]
    pub expect_header: BTreeMap<S<String>, toml::Value>,
    pub max_latency: Option<S<String>>,
    pub timeout: Option<S<String>>,
    pub retries: Option<S<i64>>,
    pub retry_interval: Option<S<String>>,
    pub exec: Option<S<RawExec>>,
    pub command: Option<S<Vec<String>>>,
    pub tcp: Option<S<String>>,
    #[schemars(with = "Option<AnyValue>")]
    pub expect_stdout: Option<S<toml::Value>>,
    pub expect_exit: Option<S<i32>>,
    pub pre_traffic: Option<S<String>>,
    /// With several hosts: the hosts a check using `{host}` runs against (default: every host).
    pub hosts: Option<S<Vec<S<String>>>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawExec {
    pub service: String,
    pub command: Vec<String>,
}
