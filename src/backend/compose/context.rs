//! Everything one command needs about one environment, resolved before any
//! work starts: config, Docker, the compose model, state, and which image
//! repository each deployed service comes from.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use crate::backend::Session;
use crate::config::names::{check_repository, split_image};
use crate::config::{Config, Environment};
use crate::engine::compose::{self, Model};
use crate::engine::exec;
use crate::engine::{Compose, Docker};
use crate::error::{Error, Result};
use crate::output::Printer;
use crate::probe::health::Wait;
use crate::probe::logs::Capture;
use crate::probe::smoke::Suite;
use crate::probe::Vars;
use crate::state::State;

/// The Compose backend on one engine: the session plus the engine, Compose
/// and the project's model. `Backend` is implemented for it in
/// `backend/compose.rs`; the commands that only read (status, prune) use it
/// directly.
pub struct Ctx {
    pub session: Session,
    pub docker: Docker,
    pub compose: Compose,
    pub model: Model,
    /// The failing containers' last lines of the release under way (`--logs N`).
    pub logs: Capture,
}

impl std::ops::Deref for Ctx {
    type Target = Session;
    fn deref(&self) -> &Session {
        &self.session
    }
}

const COMPOSE_TIMEOUT: Duration = Duration::from_secs(60);

pub fn state_dir(cfg: &Config) -> PathBuf {
    cfg.dir.join(".slipway")
}

pub fn compose_for(cfg: &Config, env: &Environment) -> Compose {
    Compose {
        project: cfg.project.clone(),
        dir: cfg.dir.clone(),
        files: cfg.compose_files.clone(),
        env_file: cfg.env_file_path(env),
        secrets: crate::probe::Secrets::of(cfg, env),
    }
}

impl Ctx {
    /// Preflight up to the lock: the env file exists, Docker and Compose v2
    /// answer, and every deployed service is in the compose model with a
    /// known repository. Changes nothing.
    pub async fn open(s: crate::settings::Settings) -> Result<Ctx> {
        let crate::settings::Settings {
            config: cfg,
            env,
            out,
            notify_env,
            failure_log_lines,
            ..
        } = s;
        require_env_file(&cfg, &env)?;
        crate::backend::tags::Owner::new(&cfg.project, &env.name)
            .check()
            .map_err(Error::Preflight)?;
        let compose = compose_for(&cfg, &env);
        let state_path = state_dir(&cfg);
        // Independent checks, at once: they are on every deploy's critical
        // path. A missing Compose is reported before the model it cannot load.
        let (docker, compose_ok, model) = tokio::join!(
            Docker::connect(),
            check_compose_once(&state_path),
            load_model(&compose)
        );
        let docker = docker?;
        let compose_print = compose_ok?;
        let model = model?;
        let repos = resolve_repos(&cfg, &model)?;
        let state = State::open(&state_path)?;
        if let Some(p) = compose_print {
            super::version_cache::remember(&state_path, &p);
        }
        let secrets = compose.secrets.clone();
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
            compose,
            model,
            logs: Capture::new(failure_log_lines, secrets),
        })
    }

    /// The smoke suite as configured for this environment.
    pub fn smoke_suite(&self, vars: Vars) -> Suite<'_> {
        self.session.smoke_suite(vars, &self.compose)
    }

    /// A health wait with this environment's timeouts.
    pub fn health_wait<'a>(&'a self, vars: &'a Vars) -> Wait<'a> {
        Wait {
            docker: &self.docker,
            project: &self.cfg.project,
            timeout: self.env.health_timeout,
            interval: self.env.health_interval,
            readiness_delay: self.env.readiness_delay,
            vars,
            stop_on_signal: false,
            capture: None,
        }
    }

    pub fn managed_repos(&self) -> BTreeSet<String> {
        self.repos.values().cloned().collect()
    }

    /// Where this environment's generated compose overrides live.
    pub fn override_path(&self, release: i64) -> PathBuf {
        override_path(&self.cfg, &self.env.name, release)
    }
}

/// The environment's env file, if it names one, exists.
pub fn require_env_file(cfg: &Config, env: &Environment) -> Result<()> {
    match cfg.env_file_path(env) {
        Some(path) if !path.is_file() => Err(Error::Preflight(format!(
            "env file {} (environments.{}.env_file) does not exist",
            path.display(),
            env.name
        ))),
        _ => Ok(()),
    }
}

/// `.slipway/<env>/release-<id>.yml`: generated files of one release.
pub fn override_path(cfg: &Config, env: &str, release: i64) -> PathBuf {
    state_dir(cfg)
        .join(env)
        .join(format!("release-{release}.yml"))
}

/// Deploy preflight: the env file's `[env_rules]`, before anything is
/// touched (exit 2 with every violation, never a value). Only `deploy` calls
/// it: `rollback`, `recover` and `prune` must work whatever the env file holds.
pub fn enforce_env_rules(cfg: &Config, env: &Environment, out: Printer) -> Result<()> {
    let report = crate::config::env_rules::check_environment(
        &cfg.env_rules,
        &env.name,
        env.env_file.as_deref(),
        &cfg.dir,
    )?;
    match report {
        Some(r) if !r.ok() => {
            out.line(format!("  ✗ env rules  {}", r.shown));
            Err(r.error())
        }
        Some(r) => {
            out.line(format!("  ✓ env rules  {}", r.shown));
            Ok(())
        }
        None => Ok(()),
    }
}

/// `check_compose`, skipped when this Compose already passed it for this
/// config (`version_cache`). Returns the fingerprint to remember once the
/// preflight has passed, so a failing one leaves no file behind.
pub async fn check_compose_once(state: &std::path::Path) -> Result<Option<String>> {
    use super::version_cache;
    let print = version_cache::current();
    if print
        .as_deref()
        .is_some_and(|p| version_cache::passed(state, p))
    {
        return Ok(None);
    }
    check_compose().await?;
    Ok(print)
}

pub async fn check_compose() -> Result<()> {
    let install = "\n  hint: slipway needs Docker Compose v2 (`docker compose`); install the docker-compose-plugin package, or run scripts/setup.sh";
    let out = exec::run(&Compose::version(), Duration::from_secs(20))
        .await
        .map_err(|e| {
            Error::Preflight(format!("cannot run `docker compose version`: {e}{install}"))
        })?;
    if !out.success() {
        return Err(Error::Preflight(format!(
            "`docker compose` is not available: {}{install}",
            out.tail()
        )));
    }
    match compose::parse_version(&out.stdout) {
        Some((major, _)) if major >= 2 => Ok(()),
        _ => Err(Error::Preflight(format!(
            "`docker compose version` says {}; slipway needs v2{install}",
            out.stdout.trim()
        ))),
    }
}

pub async fn load_model(compose: &Compose) -> Result<Model> {
    let cmd = compose.config();
    let out = exec::run(&cmd, COMPOSE_TIMEOUT)
        .await
        .map_err(|e| Error::Preflight(format!("cannot run `{}`: {e}", cmd.display())))?;
    if !out.success() {
        return Err(Error::Preflight(format!(
            "compose cannot read the project ({}):\n{}",
            compose.files.join(", "),
            out.tail()
        )));
    }
    compose::parse_model(&out.stdout).map_err(Error::Preflight)
}

/// Service → repository, from slipway.toml or else the compose image without its tag.
pub fn resolve_repos(cfg: &Config, model: &Model) -> Result<BTreeMap<String, String>> {
    let mut repos = BTreeMap::new();
    for (name, svc) in &cfg.services {
        let Some(m) = model.services.get(name) else {
            return Err(Error::Preflight(format!(
                "service `{name}` in {} is not in the compose files ({}){}",
                cfg.path.display(),
                cfg.compose_files.join(", "),
                crate::config::did_you_mean(name, model.services.keys().map(String::as_str))
            )));
        };
        let repo = match (&svc.image, &m.image) {
            (Some(r), _) => r.clone(),
            (None, Some(image)) => split_image(image).0.to_string(),
            (None, None) => {
                return Err(Error::Preflight(format!(
                    "service `{name}` has no image in compose; set services.{name}.image in {}",
                    cfg.path.display()
                )))
            }
        };
        check_repository(&repo).map_err(|m| Error::Preflight(format!("service `{name}`: {m}")))?;
        repos.insert(name.clone(), repo);
    }
    Ok(repos)
}
