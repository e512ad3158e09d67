//! The Swarm backend: the compose files deployed as a stack on a Swarm,
//! reached on a manager (the local engine, or a host over SSH through
//! `crate::remote`). Swarm stays the scheduler; slipway adds the
//! transaction.
//!
//! A release's image is the registry digest its tag names at pull time
//! (`repo:tag@sha256:…`), so every node runs the same bytes and the way back
//! needs no tags: history holds the digests of every release, and a failed
//! release puts each managed service back on the last succeeded release's
//! digests, any depth back (never `docker service rollback`, one level deep).
//! The first deploy creates the stack (`docker stack deploy`, images pinned);
//! later ones update each managed service through the Engine API with the
//! update order of its `strategy` and Swarm's failure action `pause`, and
//! wait by reading `UpdateStatus` and the tasks ([`judge`]). Services of the
//! stack slipway does not manage are never touched.

pub mod auth;
pub mod engine;
pub mod judge;
pub mod prune;
pub mod stack;
pub mod status;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::backend::compose::context::{
    compose_for, load_model, require_env_file, resolve_repos, state_dir,
};
use crate::backend::{Backend, Images, Moved, Purpose, Session};
use crate::config::{BackendKind, Config, Environment, Health, HookPoint, Strategy};
use crate::engine::compose::Model;
use crate::engine::{Compose, Container, Docker};
use crate::error::{Error, Result};
use crate::notify::Payload;
use crate::probe::logs::Capture;
use crate::probe::smoke::SuiteResult;
use crate::probe::Vars;
use crate::state::{ContainerLogs, EnvLock, Release, ServiceImage, State};

use engine::Swarm;
use judge::{digest_of, short, Verdict};

/// How often a wait asks the manager (a local API call, cheap).
const POLL: Duration = Duration::from_millis(500);

/// How long Swarm holds a stop-first task in READY while its predecessor
/// has not been seen stopping (a loaded or slow node), before it starts it
/// anyway (swarmkit's `defaultOldTaskTimeout`).
const OLD_TASK_TIMEOUT: Duration = Duration::from_secs(60);

/// How long to wait for a service's tasks: `health_timeout`, but the way
/// back waits out Swarm's own hold on a stop-first task (and a margin), so a
/// restore on a loaded swarm is not given up a moment before it starts.
fn wait_limit(health_timeout: Duration, purpose: Purpose) -> Duration {
    match purpose {
        Purpose::Release => health_timeout,
        Purpose::Restore => health_timeout.max(OLD_TASK_TIMEOUT + Duration::from_secs(30)),
    }
}

/// The Swarm backend: the session, the manager's engine and the stack.
pub struct Ctx {
    pub session: Session,
    pub docker: Docker,
    pub swarm: Swarm,
    /// For the compose model and `command` smoke checks.
    pub compose: Compose,
    pub model: Model,
    pub stack: String,
    /// The failing tasks' last lines of the release under way (`--logs N`).
    pub logs: Capture,
}

impl std::ops::Deref for Ctx {
    type Target = Session;
    fn deref(&self) -> &Session {
        &self.session
    }
}

impl Ctx {
    /// Preflight up to the lock: a manager answers, the compose project
    /// resolves, every managed service has a repository, and nothing is
    /// configured that Swarm cannot do. Changes nothing.
    pub async fn open(s: crate::settings::Settings) -> Result<Ctx> {
        let crate::settings::Settings {
            config: cfg,
            env,
            out,
            notify_env,
            failure_log_lines,
            ..
        } = s;
        // What Swarm cannot do is refused by `preflight`, for deploy and
        // rollback only: `recover` must work whatever the config asks.
        require_env_file(&cfg, &env)?;
        let stack = stack_of(&cfg, &env);
        let compose = compose_for(&cfg, &env);
        let (swarm, model) = tokio::join!(Swarm::manager(), load_model(&compose));
        let (docker, swarm) = swarm?;
        let model = model?;
        let repos = resolve_repos(&cfg, &model)?;
        let state = State::open(&state_dir(&cfg))?;
        let secrets = crate::probe::Secrets::of(&cfg, &env);
        Ok(Ctx {
            session: Session {
                cfg,
                env,
                state,
                out,
                repos,
                notify_env,
            },
            docker,
            swarm,
            compose,
            model,
            stack,
            logs: Capture::new(failure_log_lines, secrets),
        })
    }

    /// The Swarm service of a compose service: `<stack>_<service>`.
    pub fn service_name(&self, svc: &str) -> String {
        format!("{}_{svc}", self.stack)
    }

    fn strategy(&self, svc: &str) -> Strategy {
        self.cfg
            .services
            .get(svc)
            .map_or(Strategy::StopFirst, |s| s.strategy)
    }
}

/// The environment's stack: `stack`, else the project's name.
pub fn stack_of(cfg: &Config, env: &Environment) -> String {
    match &env.backend {
        BackendKind::Swarm { stack } => stack.clone(),
        BackendKind::Compose => cfg.project.clone(),
    }
}

/// `shop_api.1 on node-b` (a replica's slot), `shop_api on node-b` (global).
fn task_name(service: &str, t: &judge::TaskView) -> String {
    match t.slot.filter(|s| *s > 0) {
        Some(slot) => format!("{service}.{slot} on {}", t.node),
        None => format!("{service} on {}", t.node),
    }
}

/// What Swarm cannot do the way slipway's config asks, said before anything
/// is touched: Swarm judges health by the image's HEALTHCHECK alone, and
/// there is no one container to `exec` into or run a hook beside.
pub fn refuse_unsupported(cfg: &Config, env: &str) -> Result<()> {
    let swarm = "with backend = \"swarm\"";
    for (name, svc) in &cfg.services {
        if let Health::Http(_) = svc.health {
            return Err(Error::Preflight(format!(
                "services.{name}.health: an HTTP probe is not supported {swarm}: Swarm gates each task on the \
                 image's HEALTHCHECK\n  hint: give the image a HEALTHCHECK and use health = \"auto\", \
                 or check the URL in a [[smoke]] test"
            )));
        }
    }
    for check in &cfg.smoke {
        if matches!(check.kind, crate::config::SmokeKind::Exec { .. }) {
            return Err(Error::Preflight(format!(
                "smoke check `{}`: `exec` is not supported {swarm} (a service's tasks run on several nodes)\n  \
                 hint: use an http, tcp or command check",
                check.name
            )));
        }
    }
    for point in [
        HookPoint::PreDeploy,
        HookPoint::PostDeploy,
        HookPoint::PostRollback,
        HookPoint::OnFailure,
    ] {
        if let Some(h) = cfg.hooks.at(point, env).find(|h| h.service.is_some()) {
            return Err(Error::Preflight(format!(
                "hooks.{}: hook `{}` runs in a one-off container of a service, which is not supported {swarm}\n  \
                 hint: run it as a command on the manager (drop `service`), e.g. `docker run` of the image",
                point.as_str(),
                h.name
            )));
        }
    }
    Ok(())
}

/// `slipway check` on a Swarm: a manager answers, nothing is configured
/// that Swarm cannot do, and the stack either has every managed service or
/// does not exist yet (the first deploy creates it). Changes nothing.
pub async fn check(
    cfg: &Config,
    env: &str,
    stack: &str,
    repos: &BTreeMap<String, String>,
) -> Result<String> {
    refuse_unsupported(cfg, env)?;
    let (_, swarm) = Swarm::manager().await?;
    let existing = swarm.stack_services(stack).await?;
    if existing.is_empty() {
        return Ok(format!(
            "manager answers; stack `{stack}` does not exist yet (the first deploy creates it)"
        ));
    }
    let missing: Vec<String> = repos
        .keys()
        .map(|svc| format!("{stack}_{svc}"))
        .filter(|name| !existing.contains(name))
        .collect();
    if !missing.is_empty() {
        return Err(Error::Preflight(format!(
            "stack `{stack}` has no service {}\n  hint: add it with `docker stack deploy`; slipway updates the services a stack has",
            missing.join(", ")
        )));
    }
    Ok(format!(
        "manager answers; stack `{stack}` has {} managed of {} services",
        repos.len(),
        existing.len()
    ))
}

impl Backend for Ctx {
    type Rollout<'a> = Rollout<'a>;
    type Lock = EnvLock;

    /// The lock lives in the state folder on the manager, beside history.
    async fn lock(&self, command: &str, wait: Option<Duration>) -> Result<EnvLock> {
        self.lock_state(command, wait).await
    }

    fn preflight(&self) -> Result<()> {
        refuse_unsupported(&self.cfg, &self.env.name)
    }

    fn depends_on(&self) -> BTreeMap<String, Vec<String>> {
        self.model.depends_on()
    }

    /// The tasks Swarm wants running, as containers (image ID = digest).
    async fn running(&self, service: &str) -> Result<Vec<Container>> {
        let Some(s) = self.swarm.service(&self.service_name(service)).await? else {
            return Ok(Vec::new());
        };
        let tasks = self
            .swarm
            .tasks(s.id.as_deref().unwrap_or_default())
            .await?;
        let image = engine::view(&s).image;
        Ok(tasks
            .into_iter()
            .filter(|t| t.desired == "running")
            .map(|t| Container {
                id: t.id.clone(),
                name: task_name(&self.service_name(service), &t),
                service: service.to_string(),
                image: image.clone(),
                image_id: t.digest.clone().unwrap_or_default(),
                state: t.state.clone(),
                health: match t.state.as_str() {
                    "running" => crate::engine::Health::Healthy,
                    "starting" => crate::engine::Health::Starting,
                    _ => crate::engine::Health::None,
                },
                exit_code: 0,
                restart_count: 0,
                started_at: String::new(),
                health_log: (!t.message.is_empty()).then(|| t.message.clone()),
            })
            .collect())
    }

    /// Resolve each tag to the digest the registry has for it now, through
    /// the manager; the nodes pull by that digest when their tasks start.
    async fn pull(&self, _release: i64, refs: &BTreeMap<String, String>) -> Result<Images> {
        let asks = refs.iter().map(|(svc, image)| async move {
            match self.swarm.registry_digest(image).await {
                Ok(Some(digest)) => Ok((
                    svc.clone(),
                    ServiceImage {
                        image: image.clone(),
                        image_id: digest,
                    },
                )),
                Ok(None) => Err(Error::Pull(format!(
                    "{image}: the registry has no such tag\n  nothing running was changed"
                ))),
                Err(e) => Err(Error::Pull(format!(
                    "{image}: the registry did not resolve it ({e})\n  nothing running was changed"
                ))),
            }
        });
        Ok(futures_util::future::try_join_all(asks)
            .await?
            .into_iter()
            .collect())
    }

    /// The registry still has the digest (any node can pull it). A registry
    /// that cannot answer is an error, not a lost way back.
    async fn has_image(&self, image: &ServiceImage) -> Result<bool> {
        let repo = crate::config::names::split_image(&image.image).0;
        let reference = format!("{repo}@{}", image.image_id);
        match self.swarm.registry_digest(&reference).await {
            Ok(found) => Ok(found.is_some()),
            Err(e) => Err(Error::Preflight(format!(
                "cannot ask the registry for {reference}: {e}"
            ))),
        }
    }

    /// A digest is immutable: a release needs no name of its own.
    async fn tag_release(&self, _release: i64, _images: &Images) -> Result<()> {
        Ok(())
    }

    /// The way back is history's digests, not tags.
    async fn point_way_back(&self, _target: &Release) -> Result<Vec<Moved>> {
        Ok(Vec::new())
    }

    async fn put_back(&self, _moved: &[Moved]) {}

    /// The first deploy creates the stack (every service, managed ones on
    /// the release's digests); after that the stack must hold every managed
    /// service, and the rest is not slipway's to touch.
    async fn start_dependencies(&self, release: i64) -> Result<()> {
        let existing = self.swarm.stack_services(&self.stack).await?;
        if existing.is_empty() {
            let images = self
                .state
                .release(release)?
                .map(|r| r.services)
                .unwrap_or_default();
            // Journaled before anything is created: a failed (or killed)
            // release takes down only a stack it created (`discard_created`).
            self.state.journal(
                release,
                crate::state::Step::Dependencies,
                &stack::creating_note(&self.stack),
            )?;
            return stack::create(self, release, &images).await;
        }
        for svc in self.repos.keys() {
            let name = self.service_name(svc);
            if !existing.contains(&name) {
                return Err(Error::Preflight(format!(
                    "stack `{}` has no service `{name}`\n  hint: add `{svc}` to the stack with `docker stack deploy` \
                     (slipway updates the services a stack has, and creates a stack only when it does not exist); \
                     a stack that only a failed first deploy of an older slipway left behind can go with \
                     `docker stack rm {}`",
                    self.stack, self.stack
                )));
            }
        }
        Ok(())
    }

    async fn run_hooks(
        &self,
        point: HookPoint,
        payload: &Payload,
        image_release: Option<i64>,
    ) -> Result<(), String> {
        crate::backend::compose::hooks::run_point(
            self,
            &self.compose,
            point,
            payload,
            image_release,
        )
        .await
    }

    async fn prepare<'a>(
        &'a self,
        _release: i64,
        images: &'a Images,
        _vars: &'a Vars,
        purpose: Purpose,
    ) -> Result<Rollout<'a>, String> {
        Ok(Rollout {
            ctx: self,
            images,
            purpose,
            before: Mutex::new(BTreeMap::new()),
        })
    }

    /// Services a failed release created that the release it goes back to
    /// did not have: removed.
    async fn remove(&self, _release: i64, services: &[String]) -> Result<(), String> {
        for svc in services {
            self.swarm
                .remove(&self.service_name(svc))
                .await
                .map_err(|e| format!("{svc}: {e}"))?;
        }
        Ok(())
    }

    /// The stack, if this release created it (its journal says so): a
    /// failed first release leaves no stack behind, unmanaged services and
    /// networks included, and the next deploy creates it again. A stack
    /// that existed before the release is never touched here.
    async fn discard_created(&self, release: i64) -> Result<Option<String>, String> {
        let journal = self.state.journal_of(release).map_err(|e| e.to_string())?;
        if !stack::created_by(&journal, &self.stack) {
            return Ok(None);
        }
        stack::remove(self)
            .await
            .map(Some)
            .map_err(|e| e.to_string())
    }

    fn failure_logs(&self) -> Vec<ContainerLogs> {
        self.logs.drain()
    }

    async fn smoke(&self, vars: Vars) -> SuiteResult {
        self.session.smoke_suite(vars, &self.compose).run().await
    }

    /// Swarm shuts replaced tasks down itself.
    async fn retire(&self) -> Result<usize> {
        Ok(0)
    }

    async fn prune(&self, dry_run: bool) -> Result<crate::backend::compose::prune::Plan> {
        prune::run(self, dry_run).await
    }
}

/// One release's images rolled out over the stack's services.
pub struct Rollout<'a> {
    ctx: &'a Ctx,
    images: &'a Images,
    purpose: Purpose,
    /// Service → its task IDs before its update (their failures are history).
    before: Mutex<BTreeMap<String, BTreeSet<String>>>,
}

impl Rollout<'_> {
    fn target(&self, svc: &str) -> std::result::Result<&ServiceImage, String> {
        self.images
            .get(svc)
            .ok_or_else(|| format!("{svc}: no image in this release"))
    }
}

impl Rollout<'_> {
    /// The failing task's last lines, for `--logs` and the notification.
    async fn keep_logs(&self, svc: &str, task: &judge::TaskView) {
        let ctx = self.ctx;
        if ctx.logs.lines == 0 {
            return;
        }
        if let Some(lines) = ctx.swarm.task_logs(&task.id, ctx.logs.lines).await {
            let name = task_name(&ctx.service_name(svc), task);
            ctx.logs.keep(&task.id, svc, &name, &lines);
        }
    }
}

impl crate::backend::Rollout for Rollout<'_> {
    /// Point the service at `repo:tag@digest`; Swarm replaces the tasks in
    /// the strategy's order. Already there and not paused: nothing to do.
    async fn roll(&self, svc: &str) -> Result<String, String> {
        let ctx = self.ctx;
        let img = self.target(svc)?;
        let name = ctx.service_name(svc);
        let service = ctx
            .swarm
            .service(&name)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("{svc}: stack `{}` has no service `{name}`", ctx.stack))?;
        let id = service.id.clone().unwrap_or_default();
        let tasks = ctx.swarm.tasks(&id).await.map_err(|e| e.to_string())?;
        if let Ok(mut before) = self.before.lock() {
            before.insert(
                svc.to_string(),
                tasks.iter().map(|t| t.id.clone()).collect(),
            );
        }
        let view = engine::view(&service);
        let there = digest_of(&view.image) == Some(img.image_id.as_str());
        let stuck = view
            .update_state
            .as_deref()
            .is_some_and(|s| s == "paused" || s.starts_with("rollback"));
        if there && !stuck {
            crate::timings::mark(svc, "already there");
            return Ok(format!("{svc} on {}", short(&img.image_id)));
        }
        let reference = format!("{}@{}", img.image, img.image_id);
        let strategy = ctx.strategy(svc);
        ctx.swarm
            .set_image(&service, &reference, strategy, there)
            .await
            .map_err(|e| e.to_string())?;
        crate::timings::mark(svc, "updated");
        Ok(format!(
            "{svc} → {} ({})",
            short(&img.image_id),
            match strategy {
                Strategy::StartFirst => "start-first",
                Strategy::StopFirst => "stop-first",
            }
        ))
    }

    /// Until every task Swarm wants runs the digest (healthy), a task of
    /// this update fails, Swarm pauses the update, or `health_timeout`.
    async fn healthy(&self, svc: &str) -> Result<String, String> {
        let ctx = self.ctx;
        let img = self.target(svc)?;
        let name = ctx.service_name(svc);
        let before = self
            .before
            .lock()
            .map(|b| b.get(svc).cloned().unwrap_or_default())
            .unwrap_or_default();
        let timeout = wait_limit(ctx.env.health_timeout, self.purpose);
        let started = Instant::now();
        loop {
            let service = ctx
                .swarm
                .service(&name)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("{svc}: service `{name}` is gone"))?;
            let (tasks, down) = ctx
                .swarm
                .tasks_and_down_nodes(service.id.as_deref().unwrap_or_default())
                .await
                .map_err(|e| e.to_string())?;
            let view = engine::view(&service);
            let why = match judge::judge(&view, &tasks, &img.image_id, &before, &down) {
                Verdict::Done(note) => {
                    crate::timings::mark(svc, "converged");
                    return Ok(format!("{svc}: {note}"));
                }
                Verdict::Failed(why) => why,
                Verdict::Wait(what) if started.elapsed() >= timeout => format!(
                    "{svc} not healthy after {}: {what}",
                    humantime::format_duration(timeout)
                ),
                Verdict::Wait(_) => {
                    tokio::time::sleep(POLL).await;
                    continue;
                }
            };
            if let Some(t) = judge::culprit(&tasks, &img.image_id, &before) {
                self.keep_logs(svc, t).await;
            }
            return Err(why);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_way_back_outwaits_swarms_hold_on_a_stop_first_task() {
        let s = Duration::from_secs;
        assert_eq!(wait_limit(s(20), Purpose::Release), s(20));
        assert_eq!(wait_limit(s(20), Purpose::Restore), s(90));
        assert_eq!(wait_limit(s(300), Purpose::Restore), s(300));
    }

    fn parse(text: &str) -> Config {
        Config::parse(std::path::Path::new("slipway.toml"), text).expect("valid config")
    }

    const BASE: &str = r#"
project = "shop"
[environments.prod]
backend = "swarm"
[services.api]
"#;

    #[test]
    fn the_swarm_example_parses_and_asks_nothing_swarm_cannot_do() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/swarm/slipway.toml");
        let text = std::fs::read_to_string(&path).expect("example");
        let cfg = Config::parse(&path, &text).expect("parses");
        assert_eq!(
            cfg.environments["production"].backend,
            BackendKind::Swarm {
                stack: "goodgo".into()
            }
        );
        refuse_unsupported(&cfg, "production").expect("supported");
    }

    #[test]
    fn refuses_http_health_exec_checks_and_service_hooks_naming_the_key() {
        let refused =
            |extra: &str| match refuse_unsupported(&parse(&format!("{BASE}{extra}")), "prod") {
                Err(Error::Preflight(m)) => m,
                other => panic!("{extra}: {other:?}"),
            };
        assert!(refused("health = { http = \"http://x/health\" }\n")
            .starts_with("services.api.health: an HTTP probe is not supported"));
        assert!(refused(
            "[[smoke]]\nname = \"db\"\nexec = { service = \"api\", command = [\"true\"] }\n"
        )
        .starts_with("smoke check `db`: `exec` is not supported"));
        assert!(refused("[hooks]\npre_deploy = { name = \"migrate\", service = \"api\", command = [\"true\"] }\n")
            .starts_with("hooks.pre_deploy: hook `migrate` runs in a one-off container"));
        assert!(refuse_unsupported(&parse(BASE), "prod").is_ok());
    }
}
