//! Services slipway does not deploy (a database, a cache, a migration job)
//! that deployed services `depends_on` in compose.
//!
//! slipway rolls each deployed service with `up --no-deps`, so compose would
//! never start them: on a fresh host the api came up without its database and
//! the deploy said nothing. Before the rollout (and before `pre_deploy` hooks,
//! which need them too), the unmanaged dependencies that are not running are
//! started with `up --no-recreate` (one that runs is never recreated or
//! restarted), and every declared `condition` is waited for. A dependency that
//! cannot meet its condition stops the deploy before anything slipway deploys
//! changes (exit 2; a dependency marked `required: false` only warns).
//! Restores and `recover` leave them alone: they belong to no release.
//!
//! [`needs`], [`start`] and [`verdict`] are the pure rules.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::engine::compose::Model;
use crate::engine::docker::{Container, Health};
use crate::engine::exec;
use crate::error::{Error, Result};
use crate::state::Step;

use super::context::Ctx;

const UP_TIMEOUT: Duration = Duration::from_secs(300);
const POLL: Duration = Duration::from_millis(250);

/// A compose `depends_on` condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Condition {
    Started,
    Healthy,
    CompletedSuccessfully,
}

impl Condition {
    fn parse(value: &serde_json::Value) -> Condition {
        match value.get("condition").and_then(|c| c.as_str()) {
            Some("service_healthy") => Condition::Healthy,
            Some("service_completed_successfully") => Condition::CompletedSuccessfully,
            // compose's default, and what the short list syntax means.
            _ => Condition::Started,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Condition::Started => "service_started",
            Condition::Healthy => "service_healthy",
            Condition::CompletedSuccessfully => "service_completed_successfully",
        }
    }
}

/// What one unmanaged dependency must reach, and who needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    pub conditions: BTreeSet<Condition>,
    /// False only if every service that depends on it says `required: false`.
    pub required: bool,
    pub needed_by: BTreeSet<String>,
}

/// The unmanaged services the `deployed` ones depend on, directly or through
/// other unmanaged services (compose would start those first too). Managed
/// services are never in it: slipway rolls them itself.
pub fn needs(model: &Model, deployed: &BTreeSet<String>) -> BTreeMap<String, Need> {
    let mut out: BTreeMap<String, Need> = BTreeMap::new();
    let mut queue: Vec<String> = deployed.iter().cloned().collect();
    let mut seen: BTreeSet<String> = queue.iter().cloned().collect();
    while let Some(svc) = queue.pop() {
        let Some(s) = model.services.get(&svc) else {
            continue;
        };
        for (dep, how) in &s.depends_on {
            if deployed.contains(dep) || !model.services.contains_key(dep) {
                continue;
            }
            let required = how
                .get("required")
                .and_then(|r| r.as_bool())
                .unwrap_or(true);
            let need = out.entry(dep.clone()).or_insert_with(|| Need {
                conditions: BTreeSet::new(),
                required: false,
                needed_by: BTreeSet::new(),
            });
            need.conditions.insert(Condition::parse(how));
            need.required |= required;
            need.needed_by.insert(svc.clone());
            if seen.insert(dep.clone()) {
                queue.push(dep.clone());
            }
        }
    }
    out
}

/// What the engine reports about a dependency's container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// No container yet (a fresh host).
    Missing,
    Running(Health),
    Exited(i64),
    /// `created`, `restarting`, `paused`, `dead`, …
    Other(String),
}

impl Seen {
    pub fn of(containers: &[Container]) -> Seen {
        // With several (scaled), the first running one speaks for it.
        let Some(c) = containers
            .iter()
            .find(|c| c.state == "running")
            .or(containers.first())
        else {
            return Seen::Missing;
        };
        match c.state.as_str() {
            "running" => Seen::Running(c.health),
            "exited" => Seen::Exited(c.exit_code),
            other => Seen::Other(other.to_string()),
        }
    }
}

/// Whether slipway starts it: only when it does not run, and not a one-off
/// job that already completed successfully (running it again would repeat
/// e.g. a migration compose considers done).
pub fn start(need: &Need, seen: &Seen) -> bool {
    match seen {
        Seen::Running(_) => false,
        Seen::Exited(0) => !need
            .conditions
            .iter()
            .all(|c| *c == Condition::CompletedSuccessfully),
        _ => true,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Met,
    Wait,
    Failed(String),
}

/// One condition against what the engine reports now (compose's rules: an
/// unhealthy or exited dependency fails `service_healthy` at once; a
/// dependency with no HEALTHCHECK cannot be `service_healthy`).
pub fn verdict(condition: Condition, seen: &Seen) -> Verdict {
    match (condition, seen) {
        (Condition::Started, Seen::Running(_)) => Verdict::Met,
        (Condition::Started, Seen::Exited(0)) => Verdict::Met,
        (Condition::Healthy, Seen::Running(Health::Healthy)) => Verdict::Met,
        (Condition::Healthy, Seen::Running(Health::Starting)) => Verdict::Wait,
        (Condition::Healthy, Seen::Running(Health::Unhealthy)) => {
            Verdict::Failed("is unhealthy".into())
        }
        (Condition::Healthy, Seen::Running(Health::None)) => {
            Verdict::Failed("has no HEALTHCHECK, so it can never be service_healthy".into())
        }
        (Condition::CompletedSuccessfully, Seen::Exited(0)) => Verdict::Met,
        (Condition::CompletedSuccessfully, Seen::Running(_)) => Verdict::Wait,
        (_, Seen::Exited(code)) => Verdict::Failed(format!("exited with code {code}")),
        (_, Seen::Missing) => Verdict::Failed("has no container".into()),
        (_, Seen::Other(state)) if state == "created" || state == "restarting" => Verdict::Wait,
        (_, Seen::Other(state)) => Verdict::Failed(format!("is {state}")),
    }
}

/// Start what is needed and wait for every condition. Prints one step and
/// journals what it starts; nothing at all when no dependency is unmanaged.
pub async fn ensure(ctx: &Ctx, release: i64) -> Result<()> {
    let deployed: BTreeSet<String> = ctx.repos.keys().cloned().collect();
    let needs = needs(&ctx.model, &deployed);
    if needs.is_empty() {
        return Ok(());
    }
    let step = ctx.out.step("dependencies");
    let mut to_start = Vec::new();
    for (dep, need) in &needs {
        if start(need, &seen(ctx, dep).await?) {
            to_start.push(dep.clone());
        }
    }
    ctx.state
        .journal(release, Step::Dependencies, &to_start.join(" "))?;
    if !to_start.is_empty() {
        step.set(format!("starting {}", to_start.join(", ")));
        let out = exec::run(&ctx.compose.up_dependencies(&to_start), UP_TIMEOUT)
            .await
            .map_err(|e| Error::Preflight(format!("cannot run docker compose: {e}")))?;
        if !out.success() {
            let msg = format!(
                "could not start {} (services slipway does not deploy, needed by {}):\n{}\n  \
                 nothing slipway deploys was changed",
                to_start.join(", "),
                needed_by(&needs, &to_start),
                out.tail()
            );
            step.fail("");
            return Err(Error::Preflight(msg));
        }
    }
    match wait(ctx, &needs).await {
        Ok(()) => {
            step.done(summary(&needs, &to_start));
            Ok(())
        }
        Err(msg) => {
            step.fail("");
            Err(Error::Preflight(format!(
                "{msg}\n  nothing slipway deploys was changed{}",
                if to_start.is_empty() {
                    String::new()
                } else {
                    format!("; {} was started and left running", to_start.join(", "))
                }
            )))
        }
    }
}

async fn seen(ctx: &Ctx, dep: &str) -> Result<Seen> {
    Ok(Seen::of(
        &ctx.docker.containers(&ctx.cfg.project, Some(dep)).await?,
    ))
}

/// Poll until every condition is met, one fails, a signal comes, or `health_timeout`.
async fn wait(ctx: &Ctx, needs: &BTreeMap<String, Need>) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + ctx.env.health_timeout;
    let mut pending: BTreeMap<&String, &Need> = needs.iter().collect();
    loop {
        let mut still = BTreeMap::new();
        for (dep, need) in pending {
            let now = seen(ctx, dep).await.map_err(|e| e.to_string())?;
            let mut waiting = false;
            for c in &need.conditions {
                match verdict(*c, &now) {
                    Verdict::Met => {}
                    Verdict::Wait => waiting = true,
                    Verdict::Failed(why) => {
                        let msg = format!(
                            "{dep} (needed by {} with {}) {why}",
                            join(&need.needed_by),
                            c.as_str()
                        );
                        if need.required {
                            return Err(msg);
                        }
                        ctx.out
                            .warn(format!("{msg}; it is `required: false`, going on"));
                    }
                }
            }
            if waiting {
                still.insert(dep, need);
            }
        }
        pending = still;
        if pending.is_empty() {
            return Ok(());
        }
        if crate::interrupt::requested() {
            return Err("interrupted by a signal while waiting for dependencies".into());
        }
        if tokio::time::Instant::now() >= deadline {
            let names: Vec<String> = pending
                .iter()
                .map(|(dep, need)| {
                    let c: Vec<&str> = need.conditions.iter().map(|c| c.as_str()).collect();
                    format!("{dep} ({})", c.join(", "))
                })
                .collect();
            return Err(format!(
                "dependencies not ready within health_timeout {}: {}",
                humantime::format_duration(ctx.env.health_timeout),
                names.join(", ")
            ));
        }
        tokio::time::sleep(POLL).await;
    }
}

fn join(set: &BTreeSet<String>) -> String {
    set.iter().cloned().collect::<Vec<_>>().join(", ")
}

fn needed_by(needs: &BTreeMap<String, Need>, deps: &[String]) -> String {
    let by: BTreeSet<String> = deps
        .iter()
        .filter_map(|d| needs.get(d))
        .flat_map(|n| n.needed_by.iter().cloned())
        .collect();
    join(&by)
}

fn summary(needs: &BTreeMap<String, Need>, started: &[String]) -> String {
    needs
        .iter()
        .map(|(dep, need)| {
            let best = need.conditions.iter().max().copied();
            let state = match best {
                Some(Condition::Healthy) => "healthy",
                Some(Condition::CompletedSuccessfully) => "completed",
                _ => "running",
            };
            if started.contains(dep) {
                format!("{dep} started, {state}")
            } else {
                format!("{dep} {state}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::compose::parse_model;

    fn model() -> Model {
        parse_model(
            r#"{"services": {
                "api": {"image": "r/api", "depends_on": {
                    "db": {"condition": "service_healthy", "required": true},
                    "migrate": {"condition": "service_completed_successfully", "required": true},
                    "web": {"condition": "service_started", "required": true},
                    "metrics": {"condition": "service_started", "required": false}}},
                "web": {"image": "r/web", "depends_on": {"cache": {"condition": "service_started"}}},
                "migrate": {"image": "r/api", "depends_on": {"db": {"condition": "service_healthy"}}},
                "db": {"image": "postgres"},
                "cache": {"image": "redis"},
                "metrics": {"image": "m"},
                "unrelated": {"image": "x"}
            }}"#,
        )
        .expect("model")
    }

    fn deployed() -> BTreeSet<String> {
        ["api", "web"].map(String::from).into()
    }

    #[test]
    fn unmanaged_dependencies_are_found_through_unmanaged_ones_only() {
        let n = needs(&model(), &deployed());
        assert_eq!(
            n.keys().map(String::as_str).collect::<Vec<_>>(),
            ["cache", "db", "metrics", "migrate"]
        );
        assert_eq!(
            n["db"].conditions,
            [Condition::Healthy].into(),
            "api and migrate both want it healthy"
        );
        assert_eq!(
            n["db"].needed_by,
            ["api", "migrate"].map(String::from).into()
        );
        assert_eq!(n["cache"].conditions, [Condition::Started].into());
        assert!(n["db"].required && !n["metrics"].required);
        // A managed dependency (api → web) is rolled by slipway, not started here.
        assert!(!n.contains_key("web"));
        let none = needs(&model(), &["db"].map(String::from).into());
        assert!(none.is_empty());
    }

    #[test]
    fn only_what_does_not_run_is_started() {
        let n = needs(&model(), &deployed());
        assert!(start(&n["db"], &Seen::Missing));
        assert!(start(&n["db"], &Seen::Exited(137)));
        assert!(start(&n["db"], &Seen::Other("created".into())));
        assert!(!start(&n["db"], &Seen::Running(Health::Starting)));
        assert!(!start(&n["db"], &Seen::Running(Health::Unhealthy)));
        // A job that completed is not run again; one that failed is.
        assert!(!start(&n["migrate"], &Seen::Exited(0)));
        assert!(start(&n["migrate"], &Seen::Exited(1)));
        // A service that stopped cleanly but is meant to run is started again.
        assert!(start(&n["cache"], &Seen::Exited(0)));
    }

    #[test]
    fn conditions_follow_compose() {
        use Condition::*;
        let running = |h| Seen::Running(h);
        assert_eq!(verdict(Started, &running(Health::None)), Verdict::Met);
        assert_eq!(verdict(Healthy, &running(Health::Healthy)), Verdict::Met);
        assert_eq!(verdict(Healthy, &running(Health::Starting)), Verdict::Wait);
        assert!(matches!(
            verdict(Healthy, &running(Health::Unhealthy)),
            Verdict::Failed(_)
        ));
        assert!(
            matches!(verdict(Healthy, &running(Health::None)), Verdict::Failed(w) if w.contains("no HEALTHCHECK"))
        );
        assert_eq!(
            verdict(CompletedSuccessfully, &Seen::Exited(0)),
            Verdict::Met
        );
        assert_eq!(
            verdict(CompletedSuccessfully, &running(Health::None)),
            Verdict::Wait
        );
        assert!(
            matches!(verdict(CompletedSuccessfully, &Seen::Exited(2)), Verdict::Failed(w) if w.contains("code 2"))
        );
        assert!(matches!(
            verdict(Healthy, &Seen::Exited(0)),
            Verdict::Failed(_)
        ));
        assert_eq!(
            verdict(Started, &Seen::Other("created".into())),
            Verdict::Wait
        );
        assert!(matches!(
            verdict(Started, &Seen::Missing),
            Verdict::Failed(_)
        ));
    }
}
