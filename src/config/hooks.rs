//! `[hooks]` in slipway.toml: commands run at fixed points of a release.
//!
//! ```toml
//! [[hooks.pre_deploy]]            # or [hooks.pre_deploy] for one
//! name = "migrate"
//! service = "api"                 # a one-off container of this service, on the release's image
//! command = ["pnpm", "db:migrate:deploy"]
//! timeout = "10m"                 # default 5m
//!
//! [[hooks.post_deploy]]           # no `service`: a command on the host, in the config's folder
//! command = ["./scripts/announce.sh"]
//! environments = ["production"]   # default: all
//! ```
//!
//! Points: `pre_deploy` (after the pull, before anything running changes; a
//! failure aborts the deploy), `post_deploy`, `post_rollback` (after any
//! rollback that restored a release), `on_failure` (a release that did not
//! succeed). Commands are lists: no shell unless the list starts one.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::Deserialize;

use super::notify::{environments, indexed, OneOrMany};
use super::spanned::S;
use super::{did_you_mean, duration, names, Environment, Service, Source};
use crate::error::Result;

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawHooks {
    pub pre_deploy: Option<OneOrMany<RawHook>>,
    pub post_deploy: Option<OneOrMany<RawHook>>,
    pub post_rollback: Option<OneOrMany<RawHook>>,
    pub on_failure: Option<OneOrMany<RawHook>>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawHook {
    pub name: Option<S<String>>,
    pub command: S<Vec<String>>,
    pub service: Option<S<String>>,
    pub timeout: Option<S<String>>,
    pub environments: Option<S<Vec<S<String>>>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum HookPoint {
    PreDeploy,
    PostDeploy,
    PostRollback,
    OnFailure,
}

impl HookPoint {
    pub fn as_str(self) -> &'static str {
        match self {
            HookPoint::PreDeploy => "pre_deploy",
            HookPoint::PostDeploy => "post_deploy",
            HookPoint::PostRollback => "post_rollback",
            HookPoint::OnFailure => "on_failure",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Hook {
    pub point: HookPoint,
    pub name: String,
    pub command: Vec<String>,
    /// Run in a one-off container of this (deployed) service instead of on the host.
    pub service: Option<String>,
    pub timeout: Duration,
    /// `None`: every environment.
    pub environments: Option<BTreeSet<String>>,
}

#[derive(Debug, Clone, Default)]
pub struct Hooks {
    pub hooks: Vec<Hook>,
}

impl Hooks {
    /// The hooks of `point` for `env`, in the order written.
    pub fn at<'a>(&'a self, point: HookPoint, env: &'a str) -> impl Iterator<Item = &'a Hook> + 'a {
        self.hooks.iter().filter(move |h| {
            h.point == point && h.environments.as_ref().is_none_or(|e| e.contains(env))
        })
    }
}

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

pub(super) fn build(
    src: &Source,
    raw: Option<RawHooks>,
    envs: &BTreeMap<String, Environment>,
    services: &BTreeMap<String, Service>,
) -> Result<Hooks> {
    let mut hooks = Hooks::default();
    let Some(raw) = raw else { return Ok(hooks) };
    for (point, list) in [
        (HookPoint::PreDeploy, raw.pre_deploy),
        (HookPoint::PostDeploy, raw.post_deploy),
        (HookPoint::PostRollback, raw.post_rollback),
        (HookPoint::OnFailure, raw.on_failure),
    ] {
        let list = list.map(|l| l.0).unwrap_or_default();
        let n = list.len();
        for (i, h) in list.into_iter().enumerate() {
            let key = indexed(&format!("hooks.{}", point.as_str()), i, n);
            hooks.hooks.push(hook(src, &key, point, h, envs, services)?);
        }
    }
    Ok(hooks)
}

/// One hook: a command, where it runs, its timeout, name and environments.
fn hook(
    src: &Source,
    key: &str,
    point: HookPoint,
    h: RawHook,
    envs: &BTreeMap<String, Environment>,
    services: &BTreeMap<String, Service>,
) -> Result<Hook> {
    let command = h.command.get_ref().clone();
    if command.first().is_none_or(|p| p.trim().is_empty()) {
        return src.err(
            h.command.span(),
            format!(
                "{key}.command: give the command as a list, e.g. [\"pnpm\", \"db:migrate:deploy\"]"
            ),
        );
    }
    let service = hook_service(src, key, h.service.as_ref(), services)?;
    let timeout = hook_timeout(src, key, h.timeout.as_ref())?;
    let name = match &h.name {
        Some(n) => n.get_ref().clone(),
        None => match &service {
            Some(s) => format!("{s}: {}", command.join(" ")),
            None => command.join(" "),
        },
    };
    Ok(Hook {
        point,
        name,
        command,
        service,
        timeout,
        environments: environments(src, key, h.environments.as_ref(), envs)?,
    })
}

/// `service`: one slipway deploys, or none to run on the host.
fn hook_service(
    src: &Source,
    key: &str,
    service: Option<&S<String>>,
    services: &BTreeMap<String, Service>,
) -> Result<Option<String>> {
    let Some(s) = service else { return Ok(None) };
    let name = s.get_ref();
    names::check_name("service", name)
        .or_else(|m| src.err(s.span(), format!("{key}.service: {m}")))?;
    if !services.contains_key(name) {
        return src.err(
            s.span(),
            format!(
                "{key}.service: `{name}` is not a service slipway deploys (add [services.{name}], or leave `service` out to run on the host){}",
                did_you_mean(name, services.keys().map(String::as_str))
            ),
        );
    }
    Ok(Some(name.clone()))
}

/// `timeout`: a duration above zero; 300 s when absent.
fn hook_timeout(src: &Source, key: &str, timeout: Option<&S<String>>) -> Result<Duration> {
    let Some(t) = timeout else {
        return Ok(DEFAULT_TIMEOUT);
    };
    let d = duration(src, &format!("{key}.timeout"), t)?;
    if d.is_zero() {
        return src.err(t.span(), format!("{key}.timeout: must be more than 0"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use crate::config::{Config, HookPoint};

    const BASE: &str = r#"project = "goodgo"
[environments.staging]
[environments.production]
[services.api]
image = "ghcr.io/acme/api"
"#;

    fn parse(extra: &str) -> Result<Config, String> {
        Config::parse(Path::new("slipway.toml"), &format!("{BASE}{extra}"))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn hooks_at_each_point_in_order() {
        let c = parse(
            r#"[[hooks.pre_deploy]]
name = "migrate"
service = "api"
command = ["pnpm", "db:migrate:deploy"]
timeout = "10m"
[[hooks.pre_deploy]]
command = ["./check.sh"]
environments = ["production"]
[hooks.on_failure]
command = ["./page.sh", "{env}"]
"#,
        )
        .expect("valid");
        let pre: Vec<_> = c.hooks.at(HookPoint::PreDeploy, "production").collect();
        assert_eq!(pre.len(), 2);
        assert_eq!(pre[0].name, "migrate");
        assert_eq!(pre[0].service.as_deref(), Some("api"));
        assert_eq!(pre[0].timeout, Duration::from_secs(600));
        assert_eq!(pre[1].name, "./check.sh");
        assert_eq!(pre[1].timeout, Duration::from_secs(300));
        assert_eq!(c.hooks.at(HookPoint::PreDeploy, "staging").count(), 1);
        assert_eq!(c.hooks.at(HookPoint::OnFailure, "staging").count(), 1);
        assert_eq!(c.hooks.at(HookPoint::PostDeploy, "staging").count(), 0);
    }

    #[test]
    fn bad_hooks_are_located() {
        let e =
            parse("[[hooks.pre_deploy]]\nservice = \"api\"\ncommand = []\n").expect_err("empty");
        assert!(
            e.starts_with(
                "slipway.toml:8:11: hooks.pre_deploy.command: give the command as a list"
            ),
            "{e}"
        );
        let e = parse("[[hooks.pre_deploy]]\nservice = \"db\"\ncommand = [\"x\"]\n")
            .expect_err("service");
        assert!(e.starts_with("slipway.toml:7:11: hooks.pre_deploy.service: `db` is not a service slipway deploys"), "{e}");
        let e = parse("[[hooks.post_deploy]]\ncommand = [\"x\"]\ntimeout = \"soon\"\n")
            .expect_err("timeout");
        assert!(
            e.starts_with("slipway.toml:8:11") && e.contains("hooks.post_deploy.timeout"),
            "{e}"
        );
        let e = parse("[[hooks.pre_deploi]]\ncommand = [\"x\"]\n").expect_err("point");
        assert!(e.contains("did you mean `pre_deploy`"), "{e}");
        let e = parse("[[hooks.pre_deploy]]\ncommand = \"pnpm db:migrate:deploy\"\n")
            .expect_err("string");
        assert!(
            e.starts_with("slipway.toml:7:11") && e.contains("invalid type"),
            "{e}"
        );
    }
}
