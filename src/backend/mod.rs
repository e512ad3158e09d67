//! Where a release runs: the one interface between the deploy transaction
//! (`pipeline::transaction`) and the engine it deploys to. The transaction
//! holds a `Backend` and never asks which one: Compose on one engine today
//! (`compose/`, implemented by `compose::Ctx`) or a Swarm stack (`swarm/`,
//! `swarm::Ctx`); a host over SSH and several hosts run one of these there
//! (`crate::remote`, `crate::fleet`; docs/backends.md). Everything that differs per
//! backend (compose override files, `--scale n+1`, standby containers, how
//! an image is named and tagged) lives behind it; what every backend shares
//! (config, state, output) is the [`Session`] it dereferences to.
//!
//! The operations speak slipway's own small types: a service's images are
//! [`Images`] (service → reference + image ID), what runs is a list of
//! [`Container`]s, a smoke run is a [`SuiteResult`].

pub mod compose;
#[cfg(test)]
pub mod fake;
pub mod swarm;
pub mod tags;

use std::collections::BTreeMap;
use std::time::Duration;

use crate::backend::compose::prune;
use crate::backend::tags::Owner;
use crate::config::{Config, Environment, HookPoint};
use crate::engine::Container;
use crate::error::Result;
use crate::notify::Payload;
use crate::output::Printer;
use crate::probe::health::Target;
use crate::probe::smoke::SuiteResult;
use crate::probe::Vars;
use crate::state::{ContainerLogs, EnvLock, Release, ServiceImage, State};

/// Open the environment's backend from `Settings` as `$b` and evaluate
/// `$body` with it (inside an async fn returning `Result`): the commands
/// that run the transaction are written once, over any [`Backend`].
#[macro_export]
macro_rules! with_backend {
    ($settings:expr, $b:ident => $body:expr) => {
        match $settings.env.backend {
            $crate::config::BackendKind::Compose => {
                let $b = $crate::backend::compose::Ctx::open($settings).await?;
                $body
            }
            $crate::config::BackendKind::Swarm { .. } => {
                let $b = $crate::backend::swarm::Ctx::open($settings).await?;
                $body
            }
        }
    };
}

/// A release's images: service → the reference it came from and its ID.
pub type Images = BTreeMap<String, ServiceImage>;

/// What every backend shares: the config for one environment, its state
/// (history, journal, lock), and where output goes. Resolved before any work.
pub struct Session {
    pub cfg: Config,
    pub env: Environment,
    pub state: State,
    pub out: Printer,
    /// Managed service → image repository (no tag).
    pub repos: BTreeMap<String, String>,
    /// The notification channels' webhook variables, as `Settings` read them.
    pub notify_env: BTreeMap<String, String>,
}

impl Session {
    pub fn vars(&self, tag: &str) -> Vars {
        Vars {
            url: self.env.url.clone().unwrap_or_default(),
            env: self.env.name.clone(),
            tag: tag.to_string(),
            secrets: crate::probe::Secrets::of(&self.cfg, &self.env),
            host: self.env.host_address.clone(),
        }
    }

    /// The environment's smoke suite (`compose` runs its `exec` checks).
    pub fn smoke_suite<'a>(
        &'a self,
        vars: Vars,
        compose: &'a crate::engine::Compose,
    ) -> crate::probe::smoke::Suite<'a> {
        crate::probe::smoke::Suite {
            checks: &self.cfg.smoke,
            vars,
            compose,
            cwd: &self.cfg.dir,
            timeout: self.env.smoke_timeout,
            concurrency: self.env.smoke_concurrency,
        }
    }

    /// Whose tags this environment writes on the engine.
    pub fn owner(&self) -> Owner {
        Owner::new(&self.cfg.project, &self.env.name)
    }

    /// What each service must reach to count as healthy on these images.
    pub fn health_targets<'a>(
        &self,
        images: impl IntoIterator<Item = (&'a String, &'a ServiceImage)>,
    ) -> Vec<Target> {
        images
            .into_iter()
            .map(|(svc, img)| Target {
                service: svc.clone(),
                image_id: img.image_id.clone(),
                mode: self
                    .cfg
                    .services
                    .get(svc)
                    .map_or(crate::config::Health::Auto, |s| s.health.clone()),
            })
            .collect()
    }
}

impl Session {
    /// The lock in the state folder (a lock left by a dead run is taken over,
    /// and said so).
    pub async fn lock_state(&self, command: &str, wait: Option<Duration>) -> Result<EnvLock> {
        let dir = self.state.dir();
        let (lock, stale) = match wait {
            Some(wait) => EnvLock::acquire_waiting(dir, &self.env.name, command, wait).await?,
            None => EnvLock::acquire(dir, &self.env.name, command)?,
        };
        if let Some(s) = stale {
            self.out.warn(format!(
                "took over a stale lock left by {} (pid {} on {}, since {})",
                s.command, s.pid, s.host, s.since
            ));
        }
        Ok(lock)
    }
}

/// Why a rollout runs: a new release (replaced containers are kept as a
/// standby until commit) or a restore (replaced containers are removed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Release,
    Restore,
}

/// One way-back name `pin` moved, as it was before (None: it named nothing),
/// so an aborted release can put it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moved {
    pub repo: String,
    pub tag: String,
    pub before: Option<String>,
}

/// The operations the transaction needs, in the order it uses them.
#[allow(async_fn_in_trait)]
pub trait Backend: std::ops::Deref<Target = Session> {
    /// Rolling one release's images out, service by service.
    type Rollout<'a>: Rollout
    where
        Self: 'a;

    /// Held until dropped: the environment's lock.
    type Lock;

    /// Step 1: take the environment's lock for `command`, queueing up to
    /// `wait` behind a holder (exit 4 naming it otherwise).
    async fn lock(&self, command: &str, wait: Option<Duration>) -> Result<Self::Lock>;

    /// Checks that need no state: every managed service can be rolled here.
    fn preflight(&self) -> Result<()>;

    /// Service → the services it depends on (rollout waves follow it).
    fn depends_on(&self) -> BTreeMap<String, Vec<String>>;

    /// The containers (or tasks) that run a service now, in any state.
    async fn running(&self, service: &str) -> Result<Vec<Container>>;

    /// Step 2 of a deploy: fetch `refs` (service → `repo:tag`) and resolve
    /// each to the image ID it names here. Changes nothing that runs.
    async fn pull(&self, release: i64, refs: &BTreeMap<String, String>) -> Result<Images>;

    /// Whether a recorded image can still run here (the way back needs it).
    async fn has_image(&self, image: &ServiceImage) -> Result<bool>;

    /// Give a release's images its immutable per-release name.
    async fn tag_release(&self, release: i64, images: &Images) -> Result<()>;

    /// Point this environment's way-back names at `target`'s images; returns
    /// what moved, for [`Backend::put_back`].
    async fn point_way_back(&self, target: &Release) -> Result<Vec<Moved>>;

    /// Undo of `point_way_back`: every name where it was before.
    async fn put_back(&self, moved: &[Moved]);

    /// Start the services the managed ones depend on that slipway does not deploy.
    async fn start_dependencies(&self, release: i64) -> Result<()>;

    /// Run the hooks of a point (one-off containers, host commands).
    async fn run_hooks(
        &self,
        point: HookPoint,
        payload: &Payload,
        image_release: Option<i64>,
    ) -> Result<(), String>;

    /// Get ready to roll `images` out (files, hashes, networks).
    async fn prepare<'a>(
        &'a self,
        release: i64,
        images: &'a Images,
        vars: &'a Vars,
        purpose: Purpose,
    ) -> Result<Self::Rollout<'a>, String>;

    /// Take down what a failed release runs for these services (ones the
    /// release it goes back to did not run).
    async fn remove(&self, release: i64, services: &[String]) -> Result<(), String>;

    /// Take down what `start_dependencies` created for this release alone
    /// (Swarm: the stack its first deploy created), when the release aborts
    /// or fails with no earlier release to go back to: the environment as it
    /// was before it. Nothing that existed before the release. Returns what
    /// was removed, to say so; `None`: nothing was created.
    async fn discard_created(&self, _release: i64) -> Result<Option<String>, String> {
        Ok(None)
    }

    /// The last log lines of the containers a failed release's health wait
    /// judged not healthy, read before anything removed them (taken once).
    fn failure_logs(&self) -> Vec<ContainerLogs>;

    /// Step 6: run the environment's smoke suite.
    async fn smoke(&self, vars: Vars) -> SuiteResult;

    /// After commit: drop what was kept for a fast way back (standbys).
    async fn retire(&self) -> Result<usize>;

    /// After commit: remove images no retained release needs.
    async fn prune(&self, dry_run: bool) -> Result<prune::Plan>;
}

/// One rollout of a release's images. The transaction calls `roll` then
/// `healthy` for each service of a wave (services of a wave at once).
#[allow(async_fn_in_trait)]
pub trait Rollout {
    /// Step 4 for one service: move it onto the release's images by its
    /// strategy. A start-first strategy gates each new container on its
    /// health before retiring an old one. Returns what to print.
    async fn roll(&self, service: &str) -> Result<String, String>;

    /// Step 4 for a whole wave: every service's roll, each run to its end
    /// even when another fails; what each said, in the wave's order. A
    /// backend may move several services in one go.
    async fn roll_wave(&self, services: &[String]) -> Vec<Result<String, String>> {
        futures_util::future::join_all(services.iter().map(|s| self.roll(s))).await
    }

    /// Step 5 for one service: wait until its containers of the release are
    /// healthy (and past their pre-traffic checks). Returns what was seen.
    async fn healthy(&self, service: &str) -> Result<String, String>;
}
