//! How one service is rolled onto a release's image, per strategy, and
//! verified healthy (PRODUCT.md steps 4–5 for one service).
//!
//! - `stop-first` with one container: compose's own recreate (`up -d
//!   --no-deps`), as the seed's `docker compose up -d` did, then wait healthy.
//! - `start-first`: start one new container beside the old ones (`up
//!   --no-recreate --scale n+1`), wait until it is healthy, wait `drain` (and
//!   until it has been on the network for `settle`, so proxies caching DNS
//!   answers know it), then retire one old container; repeat per replica. Retiring is a graceful stop
//!   while the container is still on its networks, as Kubernetes terminates a
//!   pod: the app gets its stop signal, finishes what it serves and closes its
//!   sockets, so proxies see a refused or closed connection (and retry on
//!   another address) instead of an address that vanishes under open
//!   connections and drops their packets. In a deploy the stopped container is
//!   kept as a **standby** until the release commits; if the release fails,
//!   restoring starts the standby again instead of creating a container. In a
//!   restore, replaced containers are stopped and removed.
//! - `stop-first` with replicas: remove one old container, start one new one,
//!   wait healthy; repeat, so all but one keep serving.
//!
//! `pre_traffic` checks of a start-first service run blue-green: the new
//! container is created without starting, put on its networks under its
//! container name only (reachable at `{container}`, not by the service name
//! that proxies resolve), started, checked healthy, checked by the
//! pre-traffic checks, and only then given the service's aliases. A release
//! failing them never served anyone. A service that cannot be kept out of
//! rotation (stop-first, no compose network) runs them right after each new
//! container starts serving, and says so.
//!
//! Which move comes next is a pure decision ([`next_move`]) over what the
//! engine reports, so an interrupted rollout simply continues from what runs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::config::{Config, Health as Mode, SmokeCheck, SmokeKind, Strategy};
use crate::engine::compose::{Model, ModelService};
use crate::engine::exec::{self, Cmd, Output};
use crate::engine::lifecycle::Replica;
use crate::error::{Error, Result};
use crate::failpoint;
use crate::probe::health::{Target, Wait, CONTAINER};
use crate::probe::report;
use crate::probe::smoke::Suite;
use crate::probe::Vars;
use crate::state::ServiceImage;

use super::context::Ctx;
use super::gate::Gate;
use crate::timings::mark;

const UP_TIMEOUT: Duration = Duration::from_secs(300);
const COMPOSE_TIMEOUT: Duration = Duration::from_secs(60);

pub use crate::backend::Purpose;

/// Why a service cannot run two copies at once, if it cannot.
pub fn two_copies_blocker(m: &ModelService) -> Option<String> {
    if let Some(name) = &m.container_name {
        return Some(format!(
            "compose gives it `container_name: {name}`, and two containers cannot share a name"
        ));
    }
    if m.has_fixed_host_port() {
        let ports: Vec<String> = m
            .ports
            .iter()
            .filter_map(|p| {
                let published = p.get("published")?;
                let published = published
                    .as_str()
                    .map(str::to_string)
                    .or_else(|| published.as_u64().map(|n| n.to_string()))?;
                let ip = p
                    .get("host_ip")
                    .and_then(|v| v.as_str())
                    .map(|ip| format!("{ip}:"))
                    .unwrap_or_default();
                let target = p.get("target").map(|t| t.to_string()).unwrap_or_default();
                Some(format!("{ip}{published}:{target}"))
            })
            .collect();
        return Some(format!(
            "it publishes the fixed host port {}, and two containers cannot bind one host port",
            ports.join(", ")
        ));
    }
    if let Some(mode) = &m.network_mode {
        if !matches!(mode.as_str(), "bridge" | "default") && !mode.is_empty() {
            return Some(format!(
                "it uses `network_mode: {mode}`, so a second copy would share its ports and addresses"
            ));
        }
    }
    for (net, a) in &m.networks {
        if let Some(a) = a {
            if a.ipv4_address.is_some() || a.ipv6_address.is_some() {
                return Some(format!(
                    "it has a fixed address on network `{net}`, which two containers cannot share"
                ));
            }
        }
    }
    None
}

/// `check` and preflight: refuse start-first for a service that cannot run
/// two copies, saying why and what to do instead.
pub fn refuse_unrunnable(cfg: &Config, model: &Model) -> Result<()> {
    for (name, svc) in &cfg.services {
        if svc.strategy != Strategy::StartFirst {
            continue;
        }
        let Some(why) = model.services.get(name).and_then(two_copies_blocker) else {
            continue;
        };
        let message = format!(
            "services.{name}.strategy: start-first runs a new container of `{name}` beside the old one \
             until it is healthy, but {why}\n  hint: reach the service through a reverse proxy on a compose \
             network (publish no fixed host port, drop container_name), or use strategy = \"stop-first\""
        );
        return Err(match &svc.strategy_at {
            Some(location) => Error::Config {
                location: location.clone(),
                message,
            },
            None => Error::Preflight(message),
        });
    }
    Ok(())
}

/// One container as a rollout classifies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub id: String,
    /// Stopped: a standby kept for the way back, or a leftover.
    pub running: bool,
    /// On the service's networks (a running container off them is a standby
    /// left by an earlier slipway, which took containers off their networks).
    pub in_rotation: bool,
    /// Already what the release wants (image and compose config).
    pub fresh: bool,
}

/// Classify what the engine reports: `networks` are the service's networks
/// (empty with a `network_mode`: then every container is in rotation); a
/// container is in rotation on them under the service's name (a container
/// kept out of rotation for its pre-traffic checks is there under its own
/// name only). `hash` is compose's config hash for the pinned service, if known.
pub fn classify(
    replicas: &[Replica],
    service: &str,
    networks: &BTreeMap<String, Vec<String>>,
    image_id: &str,
    hash: Option<&str>,
) -> Vec<Slot> {
    replicas
        .iter()
        .map(|r| Slot {
            id: r.id.clone(),
            running: r.running,
            in_rotation: networks.is_empty()
                || networks.keys().any(|n| {
                    r.networks
                        .get(n)
                        .is_some_and(|aliases| aliases.iter().any(|a| a == service))
                }),
            fresh: r.image_id == image_id && hash.is_none_or(|h| r.config_hash == h),
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Move {
    /// Remove a container that serves nothing (stopped, or a standby of another release).
    Discard(String),
    /// Put a running standby of the wanted release back on its networks.
    Reconnect(String),
    /// Start a stopped standby of the wanted release again: no image pull, no create.
    Revive(String),
    /// Start one more container of the wanted release; compose will then run `scale`.
    StartOne {
        scale: usize,
    },
    /// Take a replaced container out of rotation: a graceful stop.
    Retire(String),
    Done,
}

/// Containers to remove before a rollout starts: those of another release
/// that serve nothing (stopped, or off the networks), left by an earlier run.
/// Stopped containers of the wanted release stay: they are its standby.
pub fn stale(slots: &[Slot]) -> Vec<String> {
    slots
        .iter()
        .filter(|s| !s.fresh && (!s.running || !s.in_rotation))
        .map(|s| s.id.clone())
        .collect()
}

/// The next step towards `want` fresh containers in rotation, one container
/// at a time. start-first never lets fewer than `want` containers serve;
/// stop-first never lets fewer than `want - 1` serve. Stopped containers and
/// standbys of other releases serve nothing and are not counted.
pub fn next_move(slots: &[Slot], want: usize, strategy: Strategy) -> Move {
    let live = |s: &&Slot| s.running && s.in_rotation;
    let live_fresh: Vec<&Slot> = slots.iter().filter(live).filter(|s| s.fresh).collect();
    let live_old: Vec<&Slot> = slots.iter().filter(live).filter(|s| !s.fresh).collect();
    let serving = live_fresh.len() + live_old.len();
    // A standby of the wanted release costs no create (and, running, no
    // boot): all of them go back into rotation before anything leaves it.
    if live_fresh.len() < want {
        if let Some(s) = slots
            .iter()
            .find(|s| s.running && !s.in_rotation && s.fresh)
        {
            return Move::Reconnect(s.id.clone());
        }
        if let Some(s) = slots.iter().find(|s| !s.running && s.fresh) {
            return Move::Revive(s.id.clone());
        }
    }
    let room = match strategy {
        Strategy::StartFirst => serving > want,
        Strategy::StopFirst => serving >= want,
    };
    if room {
        if let Some(old) = live_old.first() {
            return Move::Retire(old.id.clone());
        }
    }
    if live_fresh.len() < want {
        // compose's `--scale` starts a stopped container of the service
        // before it creates one: nothing stopped may be left for it to find.
        if let Some(s) = slots.iter().find(|s| !s.running) {
            return Move::Discard(s.id.clone());
        }
        // compose counts every container of the service, standbys included.
        return Move::StartOne {
            scale: slots.len() + 1,
        };
    }
    if let Some(old) = live_old.first() {
        return Move::Retire(old.id.clone());
    }
    if live_fresh.len() > want {
        return Move::Retire(live_fresh[want].id.clone());
    }
    Move::Done
}

/// One rollout of a set of images: what every service's roll shares.
pub struct Rollout<'a> {
    ctx: &'a Ctx,
    file: PathBuf,
    images: &'a BTreeMap<String, ServiceImage>,
    vars: &'a Vars,
    purpose: Purpose,
    /// compose's config hash per service, with the pinned image.
    hashes: BTreeMap<String, String>,
    /// The project's networks exist: compose creates none, so `up`s can run at once.
    networks_ready: bool,
    first_up: tokio::sync::Mutex<bool>,
    /// The wave's start-first services switch together (see `gate`).
    gate: std::sync::Mutex<Option<Arc<Gate>>>,
}

/// How a service's one-by-one rollout ended.
enum Rolled {
    Switched,
    /// Its new containers are healthy but the old ones still serve: another
    /// service of the wave (named) failed, so nothing switched.
    Held(String),
}

/// What one move did.
enum Applied {
    Nothing,
    /// A container joined the service's DNS name then.
    Joined(std::time::Instant),
    Held(String),
}

impl<'a> Rollout<'a> {
    pub async fn prepare(
        ctx: &'a Ctx,
        file: &Path,
        images: &'a BTreeMap<String, ServiceImage>,
        vars: &'a Vars,
        purpose: Purpose,
    ) -> Result<Rollout<'a>, String> {
        let networks: BTreeSet<String> = images
            .keys()
            .flat_map(|svc| {
                ctx.model
                    .service_networks(&ctx.cfg.project, svc)
                    .into_keys()
            })
            .collect();
        let networks: Vec<String> = networks.into_iter().collect();
        let one_by_one: Vec<String> = images
            .keys()
            .filter(|svc| strategy(ctx, svc) == Strategy::StartFirst || replicas(ctx, svc) > 1)
            .cloned()
            .collect();
        let (ready, hashes) = tokio::join!(ctx.docker.networks_exist(&networks), async {
            if one_by_one.is_empty() {
                return BTreeMap::new();
            }
            match exec::run(
                &ctx.compose.config_hashes(file, &one_by_one),
                COMPOSE_TIMEOUT,
            )
            .await
            {
                Ok(out) if out.success() => parse_hashes(&out.stdout),
                // Without hashes a container counts as fresh by image ID alone.
                _ => BTreeMap::new(),
            }
        });
        Ok(Rollout {
            ctx,
            file: file.to_path_buf(),
            images,
            vars,
            purpose,
            hashes,
            networks_ready: ready.map_err(|e| e.to_string())?,
            first_up: tokio::sync::Mutex::new(false),
            gate: std::sync::Mutex::new(None),
        })
    }

    /// Stop-first with one container is compose's own recreate; anything
    /// else moves one container at a time (`one_by_one`).
    fn in_place(&self, svc: &str) -> bool {
        strategy(self.ctx, svc) == Strategy::StopFirst && replicas(self.ctx, svc) == 1
    }

    /// The gate `svc` switches through, if it shares one with other services.
    fn gate_of(&self, svc: &str) -> Option<Arc<Gate>> {
        let gate = self.gate.lock().ok()?;
        gate.as_ref().filter(|g| g.holds(svc)).cloned()
    }

    async fn running_ids(&self, svc: &str, image_id: Option<&str>) -> Result<Vec<String>, String> {
        let ctx = self.ctx;
        Ok(ctx
            .docker
            .replicas(&ctx.cfg.project, svc)
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .filter(|r| r.running && image_id.is_none_or(|id| r.image_id == id))
            .map(|r| r.id)
            .collect())
    }
}

impl crate::backend::Rollout for Rollout<'_> {
    async fn roll(&self, svc: &str) -> Result<String, String> {
        if self.in_place(svc) {
            // compose's own recreate keeps anonymous volumes, as the seed's `up -d` did.
            self.compose_up(&self.ctx.compose.up(&self.file, svc), svc)
                .await?;
            mark(svc, "recreated");
            return Ok(format!("{svc} recreated"));
        }
        let (strategy, want) = (strategy(self.ctx, svc), replicas(self.ctx, svc));
        if let Rolled::Held(failed) = self.one_by_one(svc, strategy, want).await? {
            return Ok(format!(
                "{svc} not switched ({failed} failed; its old container still serves)"
            ));
        }
        Ok(match (strategy, want) {
            (Strategy::StartFirst, 1) => format!("{svc} replaced (start-first)"),
            (Strategy::StartFirst, n) => format!("{svc} ×{n} replaced (start-first)"),
            (Strategy::StopFirst, n) => format!("{svc} ×{n} replaced one by one"),
        })
    }

    /// The wave's stop-first single-container services are recreated by one
    /// `docker compose up` (compose's start-up paid once, not per service);
    /// the others move one by one as `roll` does, at the same time.
    ///
    /// The wave's start-first single-container services switch together
    /// (`gate`): no old container leaves rotation before every new one is
    /// healthy and past its pre-traffic checks.
    async fn roll_wave(&self, services: &[String]) -> Vec<Result<String, String>> {
        let switch_together: Vec<String> = services
            .iter()
            .filter(|s| strategy(self.ctx, s) == Strategy::StartFirst && replicas(self.ctx, s) == 1)
            .cloned()
            .collect();
        if let Ok(mut gate) = self.gate.lock() {
            *gate = (switch_together.len() > 1).then(|| Arc::new(Gate::new(switch_together)));
        }
        let (together, apart): (Vec<String>, Vec<String>) =
            services.iter().cloned().partition(|s| self.in_place(s));
        if together.len() < 2 {
            return futures_util::future::join_all(services.iter().map(|s| self.roll(s))).await;
        }
        let names = together.join(", ");
        let cmd = self.ctx.compose.up_many(&self.file, &together);
        let (up, rest) = tokio::join!(
            self.compose_up(&cmd, &names),
            futures_util::future::join_all(apart.iter().map(|s| self.roll(s)))
        );
        if up.is_ok() {
            together.iter().for_each(|s| mark(s, "recreated"));
        }
        let mut rest = apart.iter().zip(rest).collect::<BTreeMap<_, _>>();
        services
            .iter()
            .map(|s| match rest.remove(s) {
                Some(r) => r,
                None => up.clone().map(|()| format!("{s} recreated")),
            })
            .collect()
    }

    /// A recreated service is waited for here. A service moved one by one
    /// had each new container waited for before an old one went: its
    /// release's containers are looked at once more, and pass at once.
    async fn healthy(&self, svc: &str) -> Result<String, String> {
        let target = self.target(svc);
        if self.in_place(svc) {
            self.wait().all(std::slice::from_ref(&target)).await?;
            mark(svc, "healthy");
            let ids = self.running_ids(svc, None).await?;
            let why = "stop-first replaces the container in place";
            self.pre_traffic(svc, &ids, Some(why)).await?;
            return Ok(format!("{svc} healthy"));
        }
        let ids = self.running_ids(svc, Some(&target.image_id)).await?;
        if ids.is_empty() {
            return Err(format!("{svc}: no container of the release is running"));
        }
        self.wait().containers(&target, &ids).await?;
        Ok(match ids.len() {
            1 => format!("{svc} healthy"),
            n => format!("{svc} ×{n} healthy"),
        })
    }
}

impl Rollout<'_> {
    async fn one_by_one(
        &self,
        svc: &str,
        strategy: Strategy,
        want: usize,
    ) -> Result<Rolled, String> {
        let gate = self.gate_of(svc);
        let rolled = self.moves(svc, strategy, want, gate.as_deref()).await;
        if let Some(gate) = &gate {
            match &rolled {
                // Nobody may wait for a service that failed or is done.
                Err(_) => gate.fail(svc),
                Ok(_) => gate.mark(svc),
            }
        }
        rolled
    }

    /// `one_by_one`'s moves until done, or held at the gate.
    async fn moves(
        &self,
        svc: &str,
        strategy: Strategy,
        want: usize,
        gate: Option<&Gate>,
    ) -> Result<Rolled, String> {
        let ctx = self.ctx;
        let project = &ctx.cfg.project;
        let networks = ctx.model.service_networks(project, svc);
        let image_id = self
            .images
            .get(svc)
            .map(|i| i.image_id.as_str())
            .unwrap_or("");
        let hash = self.hashes.get(svc).map(String::as_str);
        let look = || async {
            let replicas = ctx
                .docker
                .replicas(project, svc)
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, String>((
                classify(&replicas, svc, &networks, image_id, hash),
                replicas,
            ))
        };
        let (slots, _) = look().await?;
        // Off rotation or stopped, they serve nobody: no grace period.
        for id in stale(&slots) {
            ctx.docker
                .remove(&id)
                .await
                .map_err(|e| format!("{svc}: {e}"))?;
        }
        // When a container last joined the service's networks (and its DNS name).
        let mut joined: Option<std::time::Instant> = None;
        // Each move changes one container; this bounds a rollout that cannot converge.
        let mut moves_left = 4 * (want + slots.len()) + 4;
        loop {
            let (slots, replicas) = look().await?;
            let mv = next_move(&slots, want, strategy);
            tracing::debug!(service = svc, ?mv, "rollout move");
            if mv == Move::Done {
                return Ok(Rolled::Switched);
            }
            // An old container leaves rotation only when the whole wave can switch.
            if let (Some(gate), Move::Retire(id)) = (gate, &mv) {
                if slots.iter().any(|s| &s.id == id && !s.fresh) {
                    if let Err(failed) = gate.ready(svc).await {
                        return Ok(Rolled::Held(failed));
                    }
                }
            }
            let on_networks = !networks.is_empty();
            match self
                .apply(svc, mv, strategy, on_networks, &replicas, joined)
                .await?
            {
                Applied::Nothing => {}
                Applied::Joined(at) => joined = Some(at),
                Applied::Held(failed) => return Ok(Rolled::Held(failed)),
            }
            moves_left = moves_left.saturating_sub(1);
            if moves_left == 0 {
                return Err(format!(
                    "{svc}: the rollout does not converge on {want} container(s) of the release; see `slipway status`"
                ));
            }
        }
    }

    /// Make one move; says when a container joined the service's DNS
    /// name, if this move put one there.
    async fn apply(
        &self,
        svc: &str,
        mv: Move,
        strategy: Strategy,
        on_networks: bool,
        replicas: &[Replica],
        joined: Option<std::time::Instant>,
    ) -> Result<Applied, String> {
        let ctx = self.ctx;
        match mv {
            Move::Done => Ok(Applied::Nothing),
            Move::Discard(id) => {
                self.remove(svc, &id).await?;
                mark(svc, "discarded");
                Ok(Applied::Nothing)
            }
            Move::Reconnect(id) => {
                self.rejoin(svc, &id, replicas, true).await?;
                mark(svc, "reconnected");
                let at = std::time::Instant::now();
                self.wait()
                    .containers(&self.target(svc), std::slice::from_ref(&id))
                    .await?;
                Ok(Applied::Joined(at))
            }
            Move::Revive(id) => {
                ctx.docker
                    .start(&id)
                    .await
                    .map_err(|e| format!("{svc}: {e}"))?;
                // In DNS from its start, not from when we asked for it.
                let at = std::time::Instant::now();
                mark(svc, "revived");
                self.wait()
                    .containers(&self.target(svc), std::slice::from_ref(&id))
                    .await?;
                mark(svc, "healthy");
                Ok(Applied::Joined(at))
            }
            Move::StartOne { scale } => {
                self.start_one(svc, strategy, scale, on_networks, replicas)
                    .await
            }
            Move::Retire(id) => {
                self.retire(svc, &id, strategy, joined).await?;
                Ok(Applied::Nothing)
            }
        }
    }

    /// Take one old container out: start-first waits out `drain` (and
    /// `settle` since the newest container joined), then, in a release,
    /// stops it on its networks (see the module doc); otherwise removes it.
    async fn retire(
        &self,
        svc: &str,
        id: &str,
        strategy: Strategy,
        joined: Option<std::time::Instant>,
    ) -> Result<(), String> {
        let (drain, settle) = self
            .ctx
            .cfg
            .services
            .get(svc)
            .map_or((Duration::ZERO, Duration::ZERO), |s| (s.drain, s.settle));
        if strategy == Strategy::StartFirst {
            let unsettled = joined.map_or(Duration::ZERO, |t| settle.saturating_sub(t.elapsed()));
            tokio::time::sleep(drain.max(unsettled)).await;
        }
        if strategy == Strategy::StartFirst && self.purpose == Purpose::Release {
            self.ctx
                .docker
                .stop(id)
                .await
                .map_err(|e| format!("{svc}: {e}"))?;
            mark(svc, "old stopped");
        } else {
            self.remove(svc, id).await?;
            mark(svc, "old removed");
        }
        Ok(())
    }

    /// One more container of the release (`scale` in all), healthy and past
    /// its pre-traffic checks; says when it joined the service's DNS name.
    /// Blue-green where it can: created off rotation, checked, then switched
    /// (when the wave's `gate` lets it). A new container that fails is
    /// removed while the old ones still serve.
    async fn start_one(
        &self,
        svc: &str,
        strategy: Strategy,
        scale: usize,
        on_networks: bool,
        replicas: &[Replica],
    ) -> Result<Applied, String> {
        let ctx = self.ctx;
        let blue_green =
            strategy == Strategy::StartFirst && on_networks && self.checks(svc).next().is_some();
        let before: BTreeSet<&str> = replicas.iter().map(|r| r.id.as_str()).collect();
        let up = if blue_green {
            ctx.compose.create_scaled(&self.file, svc, scale)
        } else {
            ctx.compose.up_scaled(&self.file, svc, scale)
        };
        self.compose_up(&up, svc).await?;
        mark(svc, if blue_green { "created" } else { "started" });
        // Started (and so in the service's DNS) by the time compose returns;
        // counting from before would spend part of `settle` where proxies
        // caching DNS could not see the container yet.
        let started = std::time::Instant::now();
        let after = ctx
            .docker
            .replicas(&ctx.cfg.project, svc)
            .await
            .map_err(|e| e.to_string())?;
        let new: Vec<String> = after
            .iter()
            .filter(|r| !before.contains(r.id.as_str()))
            .map(|r| r.id.clone())
            .collect();
        if new.is_empty() {
            return Err(format!(
                "{svc}: docker compose up --scale {svc}={scale} started no new container"
            ));
        }
        let verified = async {
            if blue_green {
                for id in &new {
                    self.rejoin(svc, id, &after, false).await?;
                    ctx.docker
                        .start(id)
                        .await
                        .map_err(|e| format!("{svc}: {e}"))?;
                }
                mark(svc, "started");
            }
            self.wait().containers(&self.target(svc), &new).await?;
            mark(svc, "healthy");
            let why = (!blue_green).then_some(match strategy {
                Strategy::StopFirst => "stop-first replaces containers in rotation",
                Strategy::StartFirst => "it is on no compose network of its own",
            });
            self.pre_traffic(svc, &new, why).await
        };
        if let Err(e) = verified.await {
            if strategy == Strategy::StartFirst {
                // The old containers still serve: take the new ones away, at
                // once if they never took traffic (blue-green).
                for id in &new {
                    let _ = if blue_green {
                        ctx.docker.remove(id).await
                    } else {
                        ctx.docker.stop_and_remove(id).await
                    };
                }
            }
            return Err(e);
        }
        if !blue_green {
            return Ok(Applied::Joined(started));
        }
        if let Some(gate) = self.gate_of(svc) {
            if let Err(failed) = gate.ready(svc).await {
                // Off rotation, it never served: the restore removes it.
                return Ok(Applied::Held(failed));
            }
        }
        // The switch: the new containers take traffic from now on.
        for id in &new {
            self.rejoin(svc, id, &after, true).await?;
        }
        mark(svc, "in rotation");
        Ok(Applied::Joined(std::time::Instant::now()))
    }

    /// Put a container (back) on the service's networks: under the service's
    /// names (in rotation), or under its container name only (reachable at
    /// its address, resolved by no proxy).
    async fn rejoin(
        &self,
        svc: &str,
        id: &str,
        replicas: &[Replica],
        in_rotation: bool,
    ) -> Result<(), String> {
        let ctx = self.ctx;
        let name = replicas
            .iter()
            .find(|r| r.id == id)
            .map(|r| r.name.clone())
            .unwrap_or_default();
        for (net, aliases) in ctx.model.service_networks(&ctx.cfg.project, svc) {
            let mut all = vec![name.clone()];
            if in_rotation {
                all.push(svc.to_string());
                all.extend(aliases);
            }
            // Not on the network (a standby taken off by an earlier slipway) is fine:
            // the connect below says what is wrong if anything is.
            let _ = ctx.docker.disconnect(&net, id).await;
            ctx.docker
                .reconnect(&net, id, &all)
                .await
                .map_err(|e| format!("{svc}: {e}"))?;
        }
        Ok(())
    }

    /// The pre-traffic checks of a service.
    fn checks<'c>(&'c self, svc: &'c str) -> impl Iterator<Item = &'c SmokeCheck> + 'c {
        self.ctx
            .cfg
            .pre_traffic
            .iter()
            .filter(move |c| c.pre_traffic.as_deref() == Some(svc))
    }

    /// Run the service's pre-traffic checks against each of `ids` at its own
    /// address; `late` says why they run after the container took traffic.
    /// Only in a release: a restore goes back to what passed before.
    async fn pre_traffic(
        &self,
        svc: &str,
        ids: &[String],
        late: Option<&str>,
    ) -> Result<(), String> {
        let ctx = self.ctx;
        if self.purpose != Purpose::Release || self.checks(svc).next().is_none() {
            return Ok(());
        }
        for id in ids {
            let step = ctx.out.step("pre-traffic");
            let address = ctx
                .docker
                .container_address(id)
                .await
                .map_err(|e| format!("{svc}: {e}"))?
                .ok_or_else(|| format!("{svc}: container {id} has no address"))?;
            let checks: Vec<SmokeCheck> = self
                .checks(svc)
                .map(|c| {
                    let mut c = c.clone();
                    if let SmokeKind::Http(h) = &mut c.kind {
                        h.url = h.url.replace(CONTAINER, &address);
                    }
                    c
                })
                .collect();
            let suite = Suite {
                checks: &checks,
                vars: self.vars.clone(),
                compose: &ctx.compose,
                cwd: &ctx.cfg.dir,
                timeout: ctx.env.smoke_timeout,
                concurrency: ctx.env.smoke_concurrency,
            }
            .run()
            .await;
            let when = match late {
                None => "before it took traffic".to_string(),
                Some(why) => format!("after it took traffic: {why}"),
            };
            let short = &id[..id.len().min(12)];
            if suite.ok {
                step.done(format!(
                    "{svc} {short}: {} checks passed {when}",
                    suite.checks.len()
                ));
            } else {
                step.fail(format!(
                    "{svc} {short}: {} of {} checks failed {when}",
                    suite.failed,
                    suite.checks.len()
                ));
                if !ctx.out.json {
                    eprint!("{}", report::text(&suite));
                }
                return Err(format!("pre-traffic {}", suite.reason()));
            }
        }
        mark(svc, "checked");
        Ok(())
    }

    async fn remove(&self, svc: &str, id: &str) -> Result<(), String> {
        self.ctx
            .docker
            .stop_and_remove(id)
            .await
            .map_err(|e| format!("{svc}: {e}"))
    }

    /// Run a compose `up`. Until the project's networks exist, the first one
    /// runs alone: concurrent first runs would each create the network.
    async fn compose_up(&self, cmd: &Cmd, svc: &str) -> Result<(), String> {
        let run = || async {
            exec::run(cmd, UP_TIMEOUT)
                .await
                .map_err(|e| format!("{svc}: cannot run docker compose: {e}"))
        };
        let out: Output = if self.networks_ready {
            run().await?
        } else {
            let mut created = self.first_up.lock().await;
            if *created {
                drop(created);
                run().await?
            } else {
                let out = run().await?;
                *created = out.success();
                out
            }
        };
        if out.success() {
            Ok(())
        } else {
            Err(format!("{svc}: docker compose up failed: {}", out.tail()))
        }
    }

    fn target(&self, svc: &str) -> Target {
        let ctx = self.ctx;
        ctx.health_targets(self.images.iter().filter(|(name, _)| name.as_str() == svc))
            .pop()
            .unwrap_or(Target {
                service: svc.to_string(),
                image_id: String::new(),
                mode: Mode::Auto,
            })
    }

    /// A health wait that a signal stops during a release (never during a
    /// restore), and that captures a release's failing containers' last lines.
    fn wait(&self) -> Wait<'_> {
        let mut wait = self.ctx.health_wait(self.vars);
        wait.stop_on_signal = self.purpose == Purpose::Release;
        wait.capture = (self.purpose == Purpose::Release).then_some(&self.ctx.logs);
        failpoint::hit_soon("health:during");
        wait
    }
}

fn strategy(ctx: &Ctx, svc: &str) -> Strategy {
    ctx.cfg
        .services
        .get(svc)
        .map_or(Strategy::StopFirst, |s| s.strategy)
}

fn replicas(ctx: &Ctx, svc: &str) -> usize {
    ctx.model
        .services
        .get(svc)
        .map_or(1, ModelService::replicas)
        .max(1)
}

/// `docker compose config --hash a,b` prints `a <hash>` per line.
pub fn parse_hashes(stdout: &str) -> BTreeMap<String, String> {
    stdout
        .lines()
        .filter_map(|l| {
            let (svc, hash) = l.trim().split_once(' ')?;
            Some((svc.to_string(), hash.trim().to_string()))
        })
        .collect()
}

/// After a commit: remove the standbys (replaced containers kept stopped for
/// a fast way back, or off the networks by an earlier slipway) of every
/// deployed service. Returns how many.
pub async fn retire_standby(ctx: &Ctx) -> Result<usize> {
    let mut standby = Vec::new();
    for svc in ctx.repos.keys() {
        let networks = ctx.model.service_networks(&ctx.cfg.project, svc);
        for r in ctx.docker.replicas(&ctx.cfg.project, svc).await? {
            let off_networks =
                !networks.is_empty() && !networks.keys().any(|n| r.networks.contains_key(n));
            if !r.running || off_networks {
                standby.push(r.id);
            }
        }
    }
    let removals = standby.iter().map(|id| ctx.docker.stop_and_remove(id));
    futures_util::future::try_join_all(removals).await?;
    Ok(standby.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::compose::parse_model;

    fn slot(id: &str, in_rotation: bool, fresh: bool) -> Slot {
        Slot {
            id: id.into(),
            running: true,
            in_rotation,
            fresh,
        }
    }

    /// Apply moves to a simulated service until done; returns the moves and
    /// the fewest containers serving at any point.
    fn simulate(mut slots: Vec<Slot>, want: usize, strategy: Strategy) -> (Vec<Move>, usize) {
        let mut moves = Vec::new();
        let mut fewest = usize::MAX;
        let mut n = 0;
        for _ in 0..50 {
            let mv = next_move(&slots, want, strategy);
            moves.push(mv.clone());
            match mv {
                Move::Done => break,
                Move::Discard(id) => slots.retain(|s| s.id != id),
                Move::Reconnect(id) => {
                    if let Some(s) = slots.iter_mut().find(|s| s.id == id) {
                        s.in_rotation = true;
                    }
                }
                Move::Revive(id) => {
                    if let Some(s) = slots.iter_mut().find(|s| s.id == id) {
                        s.running = true;
                    }
                }
                Move::StartOne { scale } => {
                    assert_eq!(scale, slots.len() + 1);
                    assert!(
                        slots.iter().all(|s| s.running),
                        "compose would start a stopped container instead: {slots:?}"
                    );
                    n += 1;
                    slots.push(slot(&format!("new{n}"), true, true));
                }
                // start-first: a graceful stop, the container stays as a
                // standby; stop-first: removed.
                Move::Retire(id) if strategy == Strategy::StopFirst => slots.retain(|s| s.id != id),
                Move::Retire(id) => {
                    if let Some(s) = slots.iter_mut().find(|s| s.id == id) {
                        s.running = false;
                    }
                }
            }
            fewest = fewest.min(slots.iter().filter(|s| s.running && s.in_rotation).count());
        }
        (moves, fewest)
    }

    #[test]
    fn start_first_starts_the_new_container_before_retiring_the_old() {
        let (moves, fewest) = simulate(vec![slot("old", true, false)], 1, Strategy::StartFirst);
        assert_eq!(
            moves,
            [
                Move::StartOne { scale: 2 },
                Move::Retire("old".into()),
                Move::Done
            ]
        );
        assert_eq!(fewest, 1, "never fewer than one container serving");
    }

    #[test]
    fn replicas_roll_one_by_one_without_losing_capacity() {
        let old = vec![
            slot("o1", true, false),
            slot("o2", true, false),
            slot("o3", true, false),
        ];
        let (moves, fewest) = simulate(old.clone(), 3, Strategy::StartFirst);
        let starts = moves
            .iter()
            .filter(|m| matches!(m, Move::StartOne { .. }))
            .count();
        assert_eq!(starts, 3);
        assert_eq!(fewest, 3);
        // Strictly alternating: one new container, then one old one retired
        // (stopped), which goes before compose scales again.
        assert!(matches!(moves[0], Move::StartOne { .. }));
        assert_eq!(moves[1], Move::Retire("o1".into()));
        assert_eq!(moves[2], Move::Discard("o1".into()));
        assert!(matches!(moves[3], Move::StartOne { .. }));
        assert_eq!(moves[4], Move::Retire("o2".into()));
        // The last one retired stays, stopped, as the way back.
        assert_eq!(moves[moves.len() - 2], Move::Retire("o3".into()));

        let (moves, fewest) = simulate(old, 3, Strategy::StopFirst);
        assert_eq!(moves[0], Move::Retire("o1".into()));
        assert!(matches!(moves[1], Move::StartOne { .. }));
        assert_eq!(fewest, 2, "stop-first: all but one keep serving");
    }

    fn stopped(id: &str, fresh: bool) -> Slot {
        Slot {
            running: false,
            ..slot(id, true, fresh)
        }
    }

    #[test]
    fn a_restore_starts_the_stopped_standby_instead_of_creating_one() {
        // After a failed deploy: the new (bad) container serves, the old one
        // was stopped on its networks; restoring the old release starts it.
        let slots = vec![slot("bad", true, false), stopped("standby", true)];
        let (moves, fewest) = simulate(slots, 1, Strategy::StartFirst);
        assert_eq!(
            moves,
            [
                Move::Revive("standby".into()),
                Move::Retire("bad".into()),
                Move::Done
            ]
        );
        assert_eq!(fewest, 1);
        assert!(stale(&[stopped("standby", true)]).is_empty());
    }

    #[test]
    fn replicas_discard_stopped_standbys_before_compose_scales() {
        // o1 was retired (stopped); compose --scale would start it again
        // instead of creating the second new container, so it goes first.
        let slots = vec![
            stopped("o1", false),
            slot("o2", true, false),
            slot("new1", true, true),
        ];
        assert_eq!(
            next_move(&slots, 2, Strategy::StartFirst),
            Move::Discard("o1".into())
        );
        // The last one retired stays stopped until commit.
        let slots = vec![stopped("o1", false), slot("n1", true, true)];
        assert_eq!(next_move(&slots, 1, Strategy::StartFirst), Move::Done);
    }

    #[test]
    fn a_restore_reuses_a_running_standby_left_off_the_networks() {
        // Left by an earlier slipway, which took old containers off their networks.
        let slots = vec![slot("bad", true, false), slot("standby", false, true)];
        let (moves, fewest) = simulate(slots, 1, Strategy::StartFirst);
        assert_eq!(
            moves,
            [
                Move::Reconnect("standby".into()),
                Move::Retire("bad".into()),
                Move::Done
            ]
        );
        assert_eq!(fewest, 1);
        // With replicas, every standby is back before the first bad one leaves.
        let slots = vec![
            slot("bad1", true, false),
            slot("bad2", true, false),
            slot("s1", false, true),
            slot("s2", false, true),
        ];
        let (moves, fewest) = simulate(slots, 2, Strategy::StartFirst);
        assert_eq!(
            moves,
            [
                Move::Reconnect("s1".into()),
                Move::Reconnect("s2".into()),
                Move::Retire("bad1".into()),
                Move::Retire("bad2".into()),
                Move::Done
            ]
        );
        assert_eq!(fewest, 2);
    }

    #[test]
    fn up_to_date_services_are_left_alone_and_leftovers_cleaned() {
        assert_eq!(
            next_move(&[slot("a", true, true)], 1, Strategy::StartFirst),
            Move::Done
        );
        let slots = vec![
            stopped("dead", false),
            slot("old-standby", false, false),
            slot("a", true, true),
        ];
        assert_eq!(stale(&slots), ["dead", "old-standby"]);
        // Standbys of another release are not counted as serving.
        assert_eq!(next_move(&slots, 1, Strategy::StartFirst), Move::Done);
        // Scaled down in compose: the extra fresh container leaves.
        let (moves, _) = simulate(
            vec![slot("a", true, true), slot("b", true, true)],
            1,
            Strategy::StartFirst,
        );
        assert_eq!(moves, [Move::Retire("b".into()), Move::Done]);
    }

    #[test]
    fn classifies_by_networks_image_and_config_hash() {
        let mut nets = BTreeMap::new();
        nets.insert("p_default".to_string(), vec![]);
        let replica = |id: &str, image: &str, hash: &str, on: bool| Replica {
            id: id.into(),
            name: format!("p-api-{id}"),
            number: 1,
            image_id: image.into(),
            config_hash: hash.into(),
            running: true,
            networks: if on {
                [("p_default".to_string(), vec!["api".to_string()])].into()
            } else {
                BTreeMap::new()
            },
        };
        let mut hidden = replica("4", "sha256:new", "h2", true);
        hidden.networks = [("p_default".to_string(), vec!["p-api-4".to_string()])].into();
        let slots = classify(
            &[
                replica("1", "sha256:new", "h2", true),
                replica("2", "sha256:new", "h1", true),
                replica("3", "sha256:old", "h1", false),
                hidden,
            ],
            "api",
            &nets,
            "sha256:new",
            Some("h2"),
        );
        assert!(slots[0].fresh && slots[0].in_rotation);
        assert!(!slots[1].fresh, "same image, other config: not fresh");
        assert!(!slots[2].in_rotation);
        assert!(
            !slots[3].in_rotation,
            "on the network without the service's name: out of rotation"
        );
        // Without a hash, the image decides.
        let slots = classify(
            &[replica("2", "sha256:new", "h1", true)],
            "api",
            &nets,
            "sha256:new",
            None,
        );
        assert!(slots[0].fresh);
        assert_eq!(parse_hashes("api 1a2b\nweb 3c4d\n")["web"], "3c4d");
    }

    #[test]
    fn services_that_cannot_run_twice_are_named_with_the_reason() {
        let m = parse_model(
            r#"{"services":{
            "api":{"image":"r/api","ports":[{"host_ip":"127.0.0.1","target":8080,"published":"3001"}]},
            "web":{"image":"r/web","container_name":"web"},
            "host":{"image":"r/h","network_mode":"host"},
            "fixed":{"image":"r/f","networks":{"default":{"ipv4_address":"10.0.0.5"}}},
            "ok":{"image":"r/ok","ports":[{"target":8080}],"networks":{"default":null}}}}"#,
        )
        .expect("model");
        let why = |s: &str| two_copies_blocker(&m.services[s]).unwrap_or_default();
        assert!(
            why("api").contains("fixed host port 127.0.0.1:3001:8080"),
            "{}",
            why("api")
        );
        assert!(why("web").contains("container_name: web"));
        assert!(why("host").contains("network_mode: host"));
        assert!(why("fixed").contains("fixed address"));
        assert_eq!(two_copies_blocker(&m.services["ok"]), None);
    }

    #[test]
    fn check_refuses_start_first_where_it_cannot_work() {
        let cfg = Config::parse(
            Path::new("slipway.toml"),
            "project = \"p\"\n[environments.test]\n[services.api]\nstrategy = \"start-first\"\n[services.web]\n",
        )
        .expect("config");
        let model = parse_model(
            r#"{"services":{"api":{"image":"r/api","container_name":"api"},"web":{"image":"r/web","container_name":"web"}}}"#,
        )
        .expect("model");
        let e = refuse_unrunnable(&cfg, &model)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.starts_with("slipway.toml:4:12: services.api.strategy: start-first"),
            "{e}"
        );
        assert!(
            e.contains("container_name: api") && e.contains("stop-first"),
            "{e}"
        );
        // web is stop-first: its container_name is fine.
        let model = parse_model(r#"{"services":{"api":{"image":"r/api"},"web":{"image":"r/web","container_name":"web"}}}"#)
            .expect("model");
        assert!(refuse_unrunnable(&cfg, &model).is_ok());
    }
}
