//! `slipway.toml`: loading, validation and the resolved model the rest of
//! slipway works with.
//!
//! Loading is two stages: serde into the raw types (unknown keys and wrong
//! types are errors with a span), then checks that need more than a type
//! (durations, names, tags, JSONPath, "exactly one of"). Both report
//! `file:line:col` and the key at fault.

pub mod env_file;
pub mod env_rules;
pub mod fleet;
pub mod hooks;
pub mod names;
pub mod notify;
pub mod predicate;
mod raw;
pub mod redact;
pub mod remote;
pub mod schema;
mod smoke;
mod spanned;

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json_path::JsonPath;

use crate::error::{Error, Result};
pub use crate::suggest::did_you_mean;
use predicate::Predicate;
use raw::{RawConfig, RawHttpHealth, RawKnobs, RawService};
use spanned::S;

pub use hooks::{Hook, HookPoint, Hooks};
pub use notify::{Channel, Format, Notify};

#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    /// The folder holding the config: compose files, env files and `.slipway/` are relative to it.
    pub dir: PathBuf,
    pub project: String,
    pub compose_files: Vec<String>,
    pub environments: BTreeMap<String, Environment>,
    pub services: BTreeMap<String, Service>,
    /// The smoke suite, run once the release takes traffic.
    pub smoke: Vec<SmokeCheck>,
    /// `pre_traffic` checks: run against each new container of their service
    /// before it takes traffic (`{container}` is its address).
    pub pre_traffic: Vec<SmokeCheck>,
    pub notify: Notify,
    pub hooks: Hooks,
    pub env_rules: env_rules::EnvRules,
    /// `[metrics] textfile`: resolved against the config's folder.
    pub metrics_textfile: Option<PathBuf>,
}

/// An environment with every deploy default resolved.
#[derive(Debug, Clone)]
pub struct Environment {
    pub name: String,
    pub url: Option<String>,
    pub env_file: Option<String>,
    pub tag: String,
    pub health_timeout: Duration,
    pub health_interval: Duration,
    pub readiness_delay: Duration,
    pub smoke_timeout: Duration,
    pub keep_releases: usize,
    pub rollback_tag: String,
    /// 0 = no limit.
    pub max_parallel: usize,
    /// Smoke checks in flight at once; 0 = no limit.
    pub smoke_concurrency: usize,
    /// `host = "ssh://…"`: the environment lives on that host (see `crate::remote`).
    pub remote: Option<remote::Remote>,
    /// `hosts = { … }`: one release spans several hosts (see `crate::fleet`).
    pub fleet: Option<fleet::Fleet>,
    /// Run as one host of a fleet: that host's address (`{host}` in checks).
    pub host_address: Option<String>,
    /// What runs the release: Compose on one engine, or a Swarm stack.
    pub backend: BackendKind,
}

/// `backend = "compose" | "swarm"` (`crate::backend`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendKind {
    Compose,
    /// The compose files deployed as stack `stack` on a Swarm manager.
    Swarm {
        stack: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    StopFirst,
    StartFirst,
}

#[derive(Debug, Clone)]
pub struct Service {
    pub name: String,
    /// Repository without tag; `None` means "the compose service's image without its tag".
    pub image: Option<String>,
    pub strategy: Strategy,
    /// Where `strategy` is written (`file:line:col`), for errors found later against compose.
    pub strategy_at: Option<String>,
    /// start-first: how long the old and new containers serve side by side
    /// before the old one leaves rotation (proxies catching up). Default 0.
    pub drain: Duration,
    /// start-first: an old container leaves rotation no earlier than this
    /// after the new one joined the network (is in the engine's DNS), so
    /// proxies that cache DNS answers (nginx `valid=1s` keeps one up to 2 s)
    /// know the new address before the old one goes. Default 2 s; it
    /// overlaps the new container's boot, so it rarely costs anything.
    pub settle: Duration,
    pub health: Health,
    /// With several hosts: where the service runs (empty = every host).
    pub hosts: Vec<String>,
}

/// In a health probe's or `pre_traffic` check's URL, the address of the
/// container being checked, so a start-first rollout probes its new
/// container, not the service behind a proxy.
pub const CONTAINER: &str = "{container}";

/// Default [`Service::settle`].
pub const SETTLE: Duration = Duration::from_secs(2);

// A few per service: the size of the HTTP variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Health {
    /// The container's HEALTHCHECK if it has one, else `readiness_delay` of running.
    Auto,
    /// Require the container's HEALTHCHECK.
    Container,
    /// An HTTP probe (and the container's HEALTHCHECK too, if it has one).
    Http(HttpExpect),
    /// Running for `readiness_delay` is enough.
    None,
}

#[derive(Debug, Clone)]
pub struct HttpExpect {
    pub url: String,
    pub method: String,
    pub headers: BTreeMap<String, String>,
    pub body: Option<String>,
    pub expect_status: Vec<u16>,
    pub expect_json: Vec<(String, JsonPath, Predicate)>,
    pub expect_body: Option<Predicate>,
    /// Lower-case header name → what its value must satisfy.
    pub expect_header: Vec<(String, Predicate)>,
    pub max_latency: Option<Duration>,
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct SmokeCheck {
    pub name: String,
    pub kind: SmokeKind,
    /// Extra attempts after a failure, `retry_interval` apart.
    pub retries: u32,
    pub retry_interval: Duration,
    /// The service whose new containers this check verifies before they
    /// take traffic (`pre_traffic = "web"`).
    pub pre_traffic: Option<String>,
    /// With several hosts: where a `{host}` check runs (empty = every host).
    pub hosts: Vec<String>,
}

impl SmokeCheck {
    /// Whether a placeholder such as `{url}` appears anywhere in the check.
    pub fn uses(&self, placeholder: &str) -> bool {
        // Debug prints every string the check holds; enough for a yes/no.
        format!("{:?}", self.kind).contains(placeholder)
    }
}

#[derive(Debug, Clone)]
pub enum SmokeKind {
    Http(HttpExpect),
    Exec {
        service: String,
        command: Vec<String>,
        expect_stdout: Option<Predicate>,
        expect_exit: i32,
        timeout: Duration,
    },
    Command {
        command: Vec<String>,
        expect_stdout: Option<Predicate>,
        expect_exit: i32,
        timeout: Duration,
    },
    /// A port that accepts a connection (`HOST:PORT`, placeholders allowed).
    Tcp {
        address: String,
        max_latency: Option<Duration>,
        timeout: Duration,
    },
}

const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

impl Config {
    pub fn load(path: &Path) -> Result<Config> {
        // A config is a few KiB; refuse to parse something enormous by mistake.
        if let Ok(meta) = std::fs::metadata(path) {
            if meta.len() > MAX_CONFIG_BYTES {
                return Err(Error::Usage(format!(
                    "{} is {} bytes; a slipway.toml larger than {MAX_CONFIG_BYTES} bytes is refused (is it the right file?)",
                    path.display(),
                    meta.len()
                )));
            }
        }
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::Usage(format!(
                "cannot read config {}: {e}\n  hint: pass --config PATH, or run slipway in the folder holding slipway.toml",
                path.display()
            ))
        })?;
        // Absolute, so compose (run from the config's folder) and the state
        // folder resolve the same way whatever the caller's directory.
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        Config::parse(&path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Config> {
        let src = Source { path, text };
        let raw: RawConfig = toml::from_str(text).map_err(|e| src.toml_error(&e))?;
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        build(&src, raw, path.to_path_buf(), dir)
    }

    /// The environment named by `--env`, or the only one.
    pub fn environment(&self, name: Option<&str>) -> Result<&Environment> {
        match name {
            Some(n) => self.environments.get(n).ok_or_else(|| {
                let known: Vec<&str> = self.environments.keys().map(String::as_str).collect();
                Error::Usage(format!(
                    "no environment `{n}` in {} (known: {}){}",
                    self.path.display(),
                    known.join(", "),
                    did_you_mean(n, known.iter().copied())
                ))
            }),
            None if self.environments.len() == 1 => {
                Ok(self.environments.values().next().expect("one environment"))
            }
            None => Err(Error::Usage(format!(
                "{} has {} environments; choose one with --env ({})",
                self.path.display(),
                self.environments.len(),
                self.environments
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    /// The env file's path, relative to the config's folder.
    pub fn env_file_path(&self, env: &Environment) -> Option<PathBuf> {
        env.env_file.as_ref().map(|f| self.dir.join(f))
    }

    /// The file whose values are never shown: the environment's env file,
    /// or else the `.env` compose reads on its own from the project
    /// directory (the first compose file's), when there is one.
    pub fn secrets_file(&self, env: &Environment) -> Option<PathBuf> {
        self.env_file_path(env)
            .or_else(|| compose_dotenv(&self.dir, &self.compose_files))
    }
}

/// The `.env` compose reads by itself, from its project directory (the first
/// compose file's), when there is one.
pub fn compose_dotenv(dir: &Path, compose_files: &[String]) -> Option<PathBuf> {
    let first = dir.join(compose_files.first()?);
    let dotenv = first.parent()?.join(".env");
    dotenv.is_file().then_some(dotenv)
}

/// The config text with its path, to turn byte spans into `file:line:col`.
struct Source<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Source<'_> {
    fn at(&self, span: Range<usize>) -> String {
        let start = span.start.min(self.text.len());
        let before = &self.text[..start];
        let line = before.matches('\n').count() + 1;
        let col = before.rfind('\n').map_or(start, |i| start - i - 1) + 1;
        format!("{}:{line}:{col}", self.path.display())
    }

    fn err<T>(&self, span: Range<usize>, message: impl Into<String>) -> Result<T> {
        Err(Error::Config {
            location: self.at(span),
            message: message.into(),
        })
    }

    fn toml_error(&self, e: &toml::de::Error) -> Error {
        let mut message = serde_message(e);
        let span = e.span().unwrap_or(0..0);
        if let Some(key) = self.key_at(span.start) {
            message = format!("{key}: {message}");
        }
        Error::Config {
            location: self.at(span),
            message,
        }
    }

    /// The dotted key written at `offset` (`environments.production.keep_releases`),
    /// from the nearest table header above it and the key before `=` on its line.
    fn key_at(&self, offset: usize) -> Option<String> {
        let offset = offset.min(self.text.len());
        let line_start = self.text[..offset].rfind('\n').map_or(0, |i| i + 1);
        let line_end = self.text[offset..]
            .find('\n')
            .map_or(self.text.len(), |i| offset + i);
        let line = self.text[line_start..line_end].trim();
        if line.starts_with('[') {
            return None;
        }
        let key = line
            .split_once('=')
            .map(|(k, _)| k.trim().trim_matches('"'))?;
        let table = self.text[..line_start]
            .lines()
            .rev()
            .map(str::trim)
            .find(|l| l.starts_with('['))
            .map(|l| l.trim_matches(['[', ']']).trim().to_string());
        Some(match table {
            Some(t) => format!("{t}.{key}"),
            None => key.to_string(),
        })
    }
}

/// serde's message, trimmed; for "unknown field `helth`, expected one of
/// `a`, `b`" with the close one suggested.
fn serde_message(e: &toml::de::Error) -> String {
    let mut message = e.message().trim().to_string();
    if let Some(rest) = message.strip_prefix("unknown field `") {
        if let Some((field, expected)) = rest.split_once("`, expected") {
            let options: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
            message.push_str(&did_you_mean(field, options.into_iter()));
        }
    }
    message
}

fn duration(src: &Source, key: &str, v: &S<String>) -> Result<Duration> {
    humantime::parse_duration(v.get_ref()).or_else(|_| {
        src.err(
            v.span(),
            format!(
                "{key}: `{}` is not a duration (write e.g. \"100s\", \"2m\", \"500ms\")",
                v.get_ref()
            ),
        )
    })
}

/// The checked config, section by section in the order errors are reported.
fn build(src: &Source, raw: RawConfig, path: PathBuf, dir: PathBuf) -> Result<Config> {
    names::check_name("project", raw.project.get_ref())
        .or_else(|m| src.err(raw.project.span(), format!("project: {m}")))?;
    let compose_files = compose_files(src, raw.compose_files.as_ref())?;
    let defaults = raw.deploy.unwrap_or_default();
    let environments = environments(
        src,
        &raw.environments,
        &defaults,
        &dir,
        raw.project.get_ref(),
        raw.ssh.as_ref(),
    )?;
    let services = services(src, &raw.services, &environments)?;
    let (pre_traffic, smoke) = smoke_checks(src, &raw.smoke, &services, &environments)?;
    let env_names: Vec<&str> = environments.keys().map(String::as_str).collect();
    let env_rules = env_rules::build(src, raw.env_rules.as_ref(), &env_names)?;
    let notify = notify::build(src, raw.notify, &environments)?;
    let hooks = hooks::build(src, raw.hooks, &environments, &services)?;
    let metrics_textfile = metrics_textfile(src, raw.metrics, &dir)?;
    Ok(Config {
        path,
        dir,
        project: raw.project.into_inner(),
        compose_files,
        environments,
        services,
        smoke,
        pre_traffic,
        notify,
        hooks,
        env_rules,
        metrics_textfile,
    })
}

/// `compose_files`: a non-empty list; `docker-compose.yml` when absent.
fn compose_files(src: &Source, files: Option<&S<Vec<S<String>>>>) -> Result<Vec<String>> {
    let Some(files) = files else {
        return Ok(vec!["docker-compose.yml".to_string()]);
    };
    if files.get_ref().is_empty() {
        return src.err(
            files.span(),
            "compose_files: list at least one compose file",
        );
    }
    Ok(files
        .get_ref()
        .iter()
        .map(|f| f.get_ref().clone())
        .collect())
}

/// `[environments.NAME]`: at least one, each named well and resolved over
/// `[deploy]`, which must not hold the per-environment `url` or `env_file`.
fn environments(
    src: &Source,
    raw: &BTreeMap<S<String>, RawKnobs>,
    defaults: &RawKnobs,
    dir: &Path,
    project: &str,
    ssh: Option<&remote::RawSsh>,
) -> Result<BTreeMap<String, Environment>> {
    for (key, v) in [
        ("url", &defaults.url),
        ("env_file", &defaults.env_file),
        ("host", &defaults.host),
        ("dir", &defaults.dir),
    ] {
        if let Some(v) = v {
            return src.err(
                v.span(),
                format!("deploy.{key}: set {key} per environment, in [environments.NAME]"),
            );
        }
    }
    if let Some(v) = &defaults.ssh {
        return src.err(
            v.span(),
            "deploy.ssh: write [ssh] at the top level, or [environments.NAME.ssh]",
        );
    }
    if raw.is_empty() {
        return src.err(
            0..0,
            "no environments: add at least one [environments.NAME] table",
        );
    }
    let mut environments = BTreeMap::new();
    for (name, knobs) in raw {
        names::check_name("environment", name.get_ref())
            .or_else(|m| src.err(name.span(), format!("environments: {m}")))?;
        let mut env = resolve_env(src, name.get_ref(), knobs, defaults, project)?;
        // With several hosts, `dir` and `[ssh]` apply to each (fleet::build).
        env.remote = if knobs.hosts.is_some() {
            None
        } else {
            remote::build(
                src,
                dir,
                project,
                name.get_ref(),
                knobs.host.as_ref(),
                knobs.dir.as_ref(),
                ssh,
                knobs.ssh.as_ref(),
            )?
        };
        env.fleet = fleet::build(src, dir, project, name.get_ref(), knobs, ssh)?;
        environments.insert(name.get_ref().clone(), env);
    }
    Ok(environments)
}

/// `[services.NAME]`: at least one, each checked by [`service`].
fn services(
    src: &Source,
    raw: &BTreeMap<S<String>, RawService>,
    environments: &BTreeMap<String, Environment>,
) -> Result<BTreeMap<String, Service>> {
    if raw.is_empty() {
        return src.err(
            0..0,
            "no services: add a [services.NAME] table for each compose service slipway deploys",
        );
    }
    let mut services = BTreeMap::new();
    for (name, s) in raw {
        let mut service = service(src, name, s)?;
        service.hosts = fleet::host_list(
            src,
            &format!("services.{}", name.get_ref()),
            s.hosts.as_ref(),
            environments,
        )?;
        services.insert(service.name.clone(), service);
    }
    Ok(services)
}

/// One `[services.NAME]` table: name, image, strategy, health, drain, settle.
fn service(src: &Source, name: &S<String>, s: &RawService) -> Result<Service> {
    let n = name.get_ref();
    names::check_name("service", n).or_else(|m| src.err(name.span(), format!("services: {m}")))?;
    let image = match &s.image {
        Some(i) => {
            names::check_repository(i.get_ref())
                .or_else(|m| src.err(i.span(), format!("services.{n}.image: {m}")))?;
            Some(i.get_ref().clone())
        }
        None => None,
    };
    let strategy = strategy(src, n, s.strategy.as_ref())?;
    let health = match &s.health {
        None => Health::Auto,
        Some(h) => health(src, n, h)?,
    };
    let drain = match &s.drain {
        Some(d) => duration(src, &format!("services.{n}.drain"), d)?,
        None => Duration::ZERO,
    };
    let settle = match &s.settle {
        Some(d) => duration(src, &format!("services.{n}.settle"), d)?,
        None => SETTLE,
    };
    Ok(Service {
        name: n.clone(),
        image,
        strategy,
        strategy_at: s.strategy.as_ref().map(|s| src.at(s.span())),
        drain,
        settle,
        health,
        hosts: Vec::new(),
    })
}

/// `services.NAME.strategy`: "stop-first" (the default) or "start-first".
fn strategy(src: &Source, n: &str, strategy: Option<&S<String>>) -> Result<Strategy> {
    match strategy.map(|s| (s.get_ref().as_str(), s.span())) {
        None | Some(("stop-first", _)) => Ok(Strategy::StopFirst),
        Some(("start-first", _)) => Ok(Strategy::StartFirst),
        Some((other, span)) => src.err(
            span,
            format!("services.{n}.strategy: `{other}` is not a strategy (use \"stop-first\" or \"start-first\"){}",
                did_you_mean(other, ["stop-first", "start-first"].into_iter())),
        ),
    }
}

/// `services.NAME.health`: a mode by name, or a table holding an HTTP probe.
fn health(src: &Source, n: &str, h: &S<toml::Value>) -> Result<Health> {
    match h.get_ref() {
        toml::Value::String(m) => match m.as_str() {
            "container" => Ok(Health::Container),
            "none" => Ok(Health::None),
            "auto" => Ok(Health::Auto),
            other => src.err(
                h.span(),
                format!("services.{n}.health: `{other}` is not a health mode (use \"container\", \"none\", \"auto\", or a table with `http`){}",
                    did_you_mean(other, ["container", "none", "auto"].into_iter())),
            ),
        },
        table @ toml::Value::Table(_) => {
            let key = format!("services.{n}.health");
            let raw: RawHttpHealth = table.clone().try_into().or_else(|e: toml::de::Error| {
                src.err(h.span(), format!("{key}: {}", serde_message(&e)))
            })?;
            Ok(Health::Http(smoke::health_http(src, &key, h.span(), &raw)?))
        }
        _ => src.err(
            h.span(),
            format!("services.{n}.health: give a mode (\"container\", \"none\", \"auto\") or a table with `http`"),
        ),
    }
}

/// The `[[smoke]]` checks, split into the `pre_traffic` ones and the suite;
/// a `pre_traffic` service must be one slipway deploys.
fn smoke_checks(
    src: &Source,
    raw: &[raw::RawSmoke],
    services: &BTreeMap<String, Service>,
    environments: &BTreeMap<String, Environment>,
) -> Result<(Vec<SmokeCheck>, Vec<SmokeCheck>)> {
    let mut checks = Vec::new();
    for (i, s) in raw.iter().enumerate() {
        let mut check = smoke::check(src, i, s)?;
        check.hosts =
            fleet::host_list(src, &format!("smoke[{i}]"), s.hosts.as_ref(), environments)?;
        checks.push(check);
    }
    for (i, s) in raw.iter().enumerate() {
        let Some(svc) = &s.pre_traffic else { continue };
        if !services.contains_key(svc.get_ref()) {
            return src.err(
                svc.span(),
                format!(
                    "smoke[{i}].pre_traffic: `{}` is not a service slipway deploys ([services.{}] is missing){}",
                    svc.get_ref(),
                    svc.get_ref(),
                    did_you_mean(svc.get_ref(), services.keys().map(String::as_str))
                ),
            );
        }
    }
    Ok(checks.into_iter().partition(|c| c.pre_traffic.is_some()))
}

/// `[metrics] textfile`: a checked path, resolved against the config's folder.
fn metrics_textfile(
    src: &Source,
    metrics: Option<raw::RawMetrics>,
    dir: &Path,
) -> Result<Option<PathBuf>> {
    match metrics.and_then(|m| m.textfile) {
        Some(t) => match crate::metrics::check_path(t.get_ref()) {
            Ok(()) => Ok(Some(dir.join(t.get_ref()))),
            Err(m) => src.err(t.span(), format!("metrics.textfile: {m}")),
        },
        None => Ok(None),
    }
}

fn env_var_name(src: &Source, key: &str, v: &S<String>) -> Result<String> {
    let name = v.get_ref();
    if name.contains("://") {
        return src.err(
            v.span(),
            format!(
                "{key}: give the name of the environment variable that holds the URL, not the URL"
            ),
        );
    }
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return src.err(
            v.span(),
            format!("{key}: `{name}` is not an environment variable name"),
        );
    }
    Ok(name.clone())
}

/// An environment's knobs over `[deploy]`'s: the environment's wins, then
/// the default, then slipway's own.
struct Knobs<'a> {
    src: &'a Source<'a>,
    env: &'a RawKnobs,
    deploy: &'a RawKnobs,
}

/// Picks one knob out of a [`RawKnobs`].
type Knob<T> = fn(&RawKnobs) -> &Option<S<T>>;

impl Knobs<'_> {
    /// The knob as written for the environment, else under `[deploy]`.
    fn pick<T: Clone>(&self, knob: Knob<T>) -> Option<S<T>> {
        knob(self.env).clone().or_else(|| knob(self.deploy).clone())
    }

    /// A duration knob; `default` seconds when unset.
    fn duration(&self, key: &str, knob: Knob<String>, default: u64) -> Result<Duration> {
        match self.pick(knob) {
            Some(v) => duration(self.src, key, &v),
            None => Ok(Duration::from_secs(default)),
        }
    }

    /// A tag knob (`tag`, `rollback_tag`): a valid Docker tag.
    fn tag(&self, key: &str, knob: Knob<String>, default: &str) -> Result<String> {
        match self.pick(knob) {
            Some(t) => {
                names::check_tag(t.get_ref())
                    .or_else(|m| self.src.err(t.span(), format!("{key}: {m}")))?;
                Ok(t.into_inner())
            }
            None => Ok(default.into()),
        }
    }

    /// A count knob between `min` and 10000.
    fn count(&self, key: &str, knob: Knob<i64>, default: i64, min: i64) -> Result<usize> {
        match self.pick(knob) {
            Some(v) if *v.get_ref() < min || *v.get_ref() > 10_000 => self
                .src
                .err(v.span(), format!("{key}: must be between {min} and 10000")),
            Some(v) => Ok(*v.get_ref() as usize),
            None => Ok(default as usize),
        }
    }
}

/// One environment with every deploy default resolved and checked.
fn resolve_env(
    src: &Source,
    name: &str,
    env: &RawKnobs,
    d: &RawKnobs,
    project: &str,
) -> Result<Environment> {
    let k = Knobs {
        src,
        env,
        deploy: d,
    };
    let tag = k.tag("tag", |k| &k.tag, "latest")?;
    let rollback_tag = k.tag("rollback_tag", |k| &k.rollback_tag, "rollback")?;
    let health_timeout = k.duration("health_timeout", |k| &k.health_timeout, 100)?;
    let health_interval = k.duration("health_interval", |k| &k.health_interval, 2)?;
    if health_interval.is_zero() {
        let span = k.pick(|k| &k.health_interval).map_or(0..0, |s| s.span());
        return src.err(span, "health_interval: must be more than 0");
    }
    Ok(Environment {
        name: name.to_string(),
        url: env.url.as_ref().map(|u| u.get_ref().clone()),
        env_file: env.env_file.as_ref().map(|u| u.get_ref().clone()),
        tag,
        health_timeout,
        health_interval,
        readiness_delay: k.duration("readiness_delay", |k| &k.readiness_delay, 5)?,
        smoke_timeout: k.duration("smoke_timeout", |k| &k.smoke_timeout, 120)?,
        keep_releases: k.count("keep_releases", |k| &k.keep_releases, 5, 1)?,
        rollback_tag,
        max_parallel: k.count("max_parallel", |k| &k.max_parallel, 0, 0)?,
        smoke_concurrency: k.count("smoke_concurrency", |k| &k.smoke_concurrency, 8, 0)?,
        remote: None,
        fleet: None,
        host_address: None,
        backend: backend(src, &k, env, project)?,
    })
}

/// `backend` and `stack`: Swarm names its stack after the project unless
/// told; a stack only means something to Swarm, and a Swarm is one cluster
/// reached on one manager, not a list of `hosts`.
fn backend(src: &Source, k: &Knobs, env: &RawKnobs, project: &str) -> Result<BackendKind> {
    let stack = k.pick(|k| &k.stack);
    let kind = match k.pick(|k| &k.backend) {
        None => "compose".to_string(),
        Some(b) => match b.get_ref().as_str() {
            "compose" | "swarm" => b.get_ref().clone(),
            other => {
                return src.err(
                    b.span(),
                    format!("backend: `{other}` is not a backend; use \"compose\" or \"swarm\""),
                )
            }
        },
    };
    if kind == "compose" {
        if let Some(s) = stack {
            return src.err(s.span(), "stack: only with backend = \"swarm\"");
        }
        return Ok(BackendKind::Compose);
    }
    if let Some(h) = &env.hosts {
        return src.err(
            h.span(),
            "hosts: a Swarm is one cluster; with backend = \"swarm\" set `host` to one manager instead",
        );
    }
    let stack = match stack {
        Some(s) => {
            names::check_name("stack", s.get_ref())
                .or_else(|m| src.err(s.span(), format!("stack: {m}")))?;
            s.into_inner()
        }
        None => project.to_string(),
    };
    Ok(BackendKind::Swarm { stack })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config> {
        Config::parse(Path::new("slipway.toml"), text)
    }

    const MINIMAL: &str = r#"
project = "goodgo"
compose_files = ["docker-compose.prod.yml"]

[deploy]
health_timeout = "30s"

[environments.staging]
url = "http://127.0.0.1:8080"
tag = "staging-latest"

[environments.production]
url = "https://example.com"
keep_releases = 3

[services.api]
image = "ghcr.io/acme/goodgo-api"
health = { http = "{url}/health", expect_json = { "$.status" = "ok" } }

[services.web]

[[smoke]]
name = "api health"
http = "{url}/health"
expect_status = 200
expect_json = { "$.status" = "ok" }
"#;

    #[test]
    fn the_secrets_file_is_the_env_file_or_composes_own_dotenv() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("slipway.toml");
        let mut c = Config::parse(&path, MINIMAL).expect("valid");
        let staging = c.environments["staging"].clone();
        assert_eq!(c.secrets_file(&staging), None, "no .env: nothing to hide");
        std::fs::write(dir.path().join(".env"), "JWT_SECRET=x\n").expect(".env");
        assert_eq!(
            c.secrets_file(&staging),
            Some(dir.path().join(".env")),
            "compose reads .env beside the first compose file on its own"
        );
        c.compose_files = vec!["deploy/docker-compose.yml".into()];
        assert_eq!(c.secrets_file(&staging), None, "not beside deploy/");
        let mut with_file = staging;
        with_file.env_file = Some("prod.env".into());
        assert_eq!(
            c.secrets_file(&with_file),
            Some(dir.path().join("prod.env"))
        );
    }

    #[test]
    fn loads_and_resolves_defaults() {
        let c = parse(MINIMAL).expect("valid");
        let s = &c.environments["staging"];
        assert_eq!(s.tag, "staging-latest");
        assert_eq!(s.health_timeout, Duration::from_secs(30));
        assert_eq!(s.keep_releases, 5);
        assert_eq!(c.environments["production"].keep_releases, 3);
        assert_eq!(c.environments["production"].tag, "latest");
        assert_eq!(s.rollback_tag, "rollback");
        assert!(matches!(c.services["api"].health, Health::Http(_)));
        assert!(matches!(c.services["web"].health, Health::Auto));
        assert_eq!(c.smoke.len(), 1);
    }

    fn err(text: &str) -> String {
        match parse(text) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("expected an error"),
        }
    }

    #[test]
    fn unknown_key_has_location_and_suggestion() {
        let e = err(&MINIMAL.replace("[services.web]", "[services.web]\nhelth = \"none\""));
        assert!(
            e.starts_with("slipway.toml:21:1: services.web.helth: unknown field"),
            "{e}"
        );
        assert!(e.contains("did you mean `health`"), "{e}");
    }

    #[test]
    fn swarm_backend_names_its_stack_after_the_project_unless_told() {
        let swarm = MINIMAL.replace(
            "keep_releases = 3",
            "keep_releases = 3\nbackend = \"swarm\"",
        );
        let c = parse(&swarm).expect("valid");
        assert_eq!(
            c.environments["production"].backend,
            BackendKind::Swarm {
                stack: "goodgo".into()
            }
        );
        assert_eq!(c.environments["staging"].backend, BackendKind::Compose);
        let named = swarm.replace(
            "backend = \"swarm\"",
            "backend = \"swarm\"\nstack = \"shop\"",
        );
        assert_eq!(
            parse(&named).expect("valid").environments["production"].backend,
            BackendKind::Swarm {
                stack: "shop".into()
            }
        );
    }

    #[test]
    fn bad_backend_and_stack_are_located() {
        let e = err(&MINIMAL.replace("keep_releases = 3", "keep_releases = 3\nbackend = \"k8s\""));
        assert!(
            e.starts_with("slipway.toml:15:11: backend: `k8s` is not a backend"),
            "{e}"
        );
        let e = err(&MINIMAL.replace("keep_releases = 3", "keep_releases = 3\nstack = \"shop\""));
        assert!(
            e.starts_with("slipway.toml:15:9: stack: only with backend = \"swarm\""),
            "{e}"
        );
        let e = err(&MINIMAL.replace(
            "keep_releases = 3",
            "keep_releases = 3\nbackend = \"swarm\"\nstack = \"a b\"",
        ));
        assert!(
            e.starts_with("slipway.toml:16:9: stack: `a b` is not a valid stack name"),
            "{e}"
        );
        let e = err(&MINIMAL.replace(
            "keep_releases = 3",
            "keep_releases = 3\nbackend = \"swarm\"\nhosts = { a = \"ssh://a\" }",
        ));
        assert!(e.contains("a Swarm is one cluster"), "{e}");
    }

    #[test]
    fn wrong_type_has_location() {
        let e = err(&MINIMAL.replace("keep_releases = 3", "keep_releases = \"three\""));
        assert!(
            e.starts_with(
                "slipway.toml:14:17: environments.production.keep_releases: invalid type"
            ),
            "{e}"
        );
    }

    #[test]
    fn bad_values_are_located() {
        let e = err(&MINIMAL.replace("\"30s\"", "\"soon\""));
        assert!(
            e.starts_with("slipway.toml:6:18") && e.contains("health_timeout"),
            "{e}"
        );
        let e = err(&MINIMAL.replace("staging-latest", "--help"));
        assert!(
            e.starts_with("slipway.toml:10:7") && e.contains("not a valid image tag"),
            "{e}"
        );
        let e = err(&MINIMAL.replace("ghcr.io/acme/goodgo-api", "ghcr.io/acme/api:v1"));
        assert!(e.contains("services.api.image"), "{e}");
    }

    #[test]
    fn choosing_an_environment() {
        let c = parse(MINIMAL).expect("valid");
        assert!(c.environment(None).is_err());
        let e = c
            .environment(Some("stagin"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("did you mean `staging`"), "{e}");
        assert_eq!(
            c.environment(Some("production"))
                .map(|e| e.name.as_str())
                .ok(),
            Some("production")
        );
    }

    #[test]
    fn pre_traffic_checks_name_a_service_and_reach_its_containers() {
        let check = |extra: &str| {
            MINIMAL.to_string()
                + &format!("\n[[smoke]]\nname = \"new web\"\nhttp = \"http://{{container}}:8080/smoke\"\n{extra}\n")
        };
        let c = parse(&check("pre_traffic = \"web\"")).expect("valid");
        assert_eq!(c.pre_traffic.len(), 1);
        assert_eq!(c.pre_traffic[0].pre_traffic.as_deref(), Some("web"));
        assert!(
            c.smoke.iter().all(|s| s.pre_traffic.is_none()),
            "pre-traffic checks are not part of the suite run after the switch"
        );
        let e = err(&check("pre_traffic = \"wbe\""));
        assert!(
            e.contains("smoke[1].pre_traffic: `wbe` is not a service")
                && e.contains("did you mean `web`"),
            "{e}"
        );
        let e = err(&(MINIMAL.to_string()
            + "\n[[smoke]]\nname = \"x\"\nhttp = \"{url}/smoke\"\npre_traffic = \"web\"\n"));
        assert!(
            e.contains("pre_traffic: a pre-traffic check must reach each new container")
                && e.contains("{container}"),
            "{e}"
        );
    }

    #[test]
    fn start_first_with_a_drain_period() {
        let c = parse(&MINIMAL.replace(
            "[services.web]",
            "[services.web]\nstrategy = \"start-first\"\ndrain = \"2s\"",
        ))
        .expect("valid");
        let web = &c.services["web"];
        assert_eq!(web.strategy, Strategy::StartFirst);
        assert_eq!(web.drain, Duration::from_secs(2));
        assert_eq!(web.strategy_at.as_deref(), Some("slipway.toml:21:12"));
        assert_eq!(c.services["api"].drain, Duration::ZERO);
        assert_eq!(c.services["api"].settle, SETTLE);
        let e = err(&MINIMAL.replace("[services.web]", "[services.web]\ndrain = \"a while\""));
        assert!(
            e.starts_with("slipway.toml:21:9") && e.contains("services.web.drain"),
            "{e}"
        );
    }

    #[test]
    fn smoke_needs_exactly_one_kind() {
        let e = err(&MINIMAL.replace("http = \"{url}/health\"\nexpect_status", "expect_status"));
        assert!(e.contains("exactly one of"), "{e}");
    }

    #[test]
    fn webhook_env_is_a_name_not_a_url() {
        let e = err(&format!(
            "{MINIMAL}\n[notify.slack]\nwebhook_env = \"https://hooks.slack.com/x\"\n"
        ));
        assert!(e.contains("not the URL"), "{e}");
        assert!(!e.contains("hooks.slack.com"), "{e}");
    }
}
