//! The deploy transaction, PRODUCT.md steps 1–8, shared by `deploy` (new
//! images, pulled) and `rollback` (a recorded release's exact images).
//!
//! Each step is journaled before it acts. Steps 1–3 change nothing that runs:
//! a failure there marks the release `aborted` (exit 2). A failure at 4–6
//! restores the way back (exit 1), or says what runs if that fails (exit 3).

use std::collections::{BTreeMap, BTreeSet};

use crate::config::names::split_image;
use crate::engine::compose::pin_override;
use crate::engine::exec;
use crate::error::{Error, Result};
use crate::probe::report;
use crate::state::{self, EnvLock, Kind, Release, ServiceImage, Status, Step};
use crate::{failpoint, interrupt};

use super::context::{state_dir, Ctx};
use super::dependencies;
use super::lifecycle::Lifecycle;
use super::plan;
use super::prune;
use super::rollout::{self, Purpose};

/// Where the new release's images come from.
pub enum Desired {
    /// Deploy: pull `<repo>:<tag>` for every service.
    Pull { tag: String },
    /// Rollback: the exact images of a recorded release.
    Restore { release: Box<Release> },
}

/// Where a deploy came from, for history and notifications.
#[derive(Debug, Clone, Default)]
pub struct Ci {
    pub commit: Option<String>,
    pub branch: Option<String>,
    pub run_url: Option<String>,
}

pub struct Request {
    pub kind: Kind,
    pub desired: Desired,
    pub ci: Ci,
    /// Queue this long behind a run holding the lock (`--wait`).
    pub lock_wait: Option<std::time::Duration>,
}

/// The release as recorded at the end (if one was started), and how it ended.
pub struct Outcome {
    pub release: Option<Release>,
    pub result: Result<()>,
}

const UP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);
const PULL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1800);

pub async fn run(ctx: &Ctx, req: Request) -> Outcome {
    // 1. Preflight (config, Docker and Compose were checked by Ctx::open).
    let step = ctx.out.step("preflight");
    let dir = state_dir(&ctx.cfg);
    let acquired = match req.lock_wait {
        Some(wait) => EnvLock::acquire_waiting(&dir, &ctx.env.name, req.kind.as_str(), wait).await,
        None => EnvLock::acquire(&dir, &ctx.env.name, req.kind.as_str()),
    };
    let lock = match acquired {
        Ok((lock, stale)) => {
            if let Some(s) = stale {
                ctx.out.warn(format!(
                    "took over a stale lock left by {} (pid {} on {}, since {})",
                    s.command, s.pid, s.host, s.since
                ));
            }
            lock
        }
        Err(e) => {
            step.fail("environment is locked");
            return Outcome {
                release: None,
                result: Err(e),
            };
        }
    };
    let current = match preflight(ctx).await {
        Ok(c) => c,
        Err(e) => {
            step.fail(e.to_string());
            return Outcome {
                release: None,
                result: Err(e),
            };
        }
    };
    step.done(match &current {
        Some(c) => format!(
            "live release {} ({})",
            c.id,
            c.tag.as_deref().unwrap_or("adopted")
        ),
        None => "no live release yet".to_string(),
    });
    // Said before acting; the way back stays the last release that passed.
    let drift = match &current {
        Some(c) => find_drift(ctx, c).await,
        None => Vec::new(),
    };
    failpoint::hit("preflight:after");

    let tag = match &req.desired {
        Desired::Pull { tag } => Some(tag.clone()),
        Desired::Restore { release } => release.tag.clone(),
    };
    let mut release = Release {
        id: 0,
        env: ctx.env.name.clone(),
        kind: req.kind,
        tag: tag.clone(),
        status: Status::InProgress,
        started_at: state::now(),
        finished_at: None,
        reason: None,
        previous: current.as_ref().map(|c| c.id),
        services: BTreeMap::new(),
        commit: req.ci.commit.clone(),
        branch: req.ci.branch.clone(),
        run_url: req.ci.run_url.clone(),
    };
    release.id = match ctx.state.begin(&release) {
        Ok(id) => id,
        Err(e) => {
            return Outcome {
                release: None,
                result: Err(e),
            }
        }
    };
    if !drift.is_empty() {
        let _ = ctx
            .state
            .journal(release.id, Step::Drift, &drift.join("; "));
    }
    if let Err(e) = interrupt::journal_to(ctx.state.dir(), release.id) {
        ctx.out.warn(format!(
            "a signal will not be journaled ({e}); `slipway recover` may verify an interrupted release"
        ));
    }
    failpoint::hit("begin:after");
    ctx.out.line(format!(
        "  {} {} → release {}{}",
        req.kind.as_str(),
        ctx.env.name,
        release.id,
        tag.as_deref()
            .map(|t| format!(" ({t})"))
            .unwrap_or_default()
    ));
    let mut life = Lifecycle::start(ctx, &release, &req.desired);

    // 2–3. Resolve the new images and pin the way back. Nothing running changes.
    // The way-back tags as they were before `pin` moved them, to put back if
    // the release is aborted before anything running changed.
    let mut moved = Vec::new();
    let prepared = async {
        let images = resolve(ctx, release.id, &req.desired).await?;
        ctx.state.set_services(release.id, &images)?;
        failpoint::hit("pull:after");
        stop_if_interrupted()?;
        moved = pin(ctx, release.id, current.as_ref(), &images).await?;
        failpoint::hit("pin:after");
        failpoint::pause("pin:after").await;
        stop_if_interrupted()?;
        dependencies::ensure(ctx, release.id).await?;
        stop_if_interrupted()?;
        life.pre_deploy(ctx, &images).await?;
        Ok::<_, Error>(images)
    }
    .await;
    let images = match prepared {
        Ok(i) => i,
        Err(e) => {
            put_back(ctx, &moved).await;
            let _ = ctx
                .state
                .finish(release.id, Status::Aborted, Some(&e.to_string()));
            life.end(ctx, release.id, Some(&e)).await;
            return finished(ctx, release.id, Err(e));
        }
    };
    release.services = images.clone();

    // 4–6. Roll out, wait healthy, smoke test.
    let verified =
        roll_out_and_verify(ctx, release.id, &images, tag.as_deref().unwrap_or("")).await;

    let result = match verified {
        // 7. Commit.
        Ok(()) => {
            failpoint::hit("smoke:after");
            commit(ctx, &release, current.as_ref()).await
        }
        // 8. Or roll back.
        Err(reason) => {
            let logs = super::logs::keep(ctx, release.id);
            life.rolling_back(&release, &reason, logs);
            restore(ctx, &release, current.as_ref(), &reason).await
        }
    };
    life.end(ctx, release.id, result.as_ref().err()).await;
    drop(lock);
    finished(ctx, release.id, result)
}

/// Before anything running changed, a signal aborts the release.
fn stop_if_interrupted() -> Result<()> {
    if interrupt::requested() {
        return Err(Error::RolledBack(
            "interrupted by a signal before anything running changed; the live release is untouched".into(),
        ));
    }
    Ok(())
}

/// Once rolling out, a signal means: stop here and roll back.
fn check_interrupt() -> Result<(), String> {
    if interrupt::requested() {
        return Err("interrupted by a signal".into());
    }
    Ok(())
}

fn finished(ctx: &Ctx, id: i64, result: Result<()>) -> Outcome {
    Outcome {
        release: ctx.state.release(id).ok().flatten(),
        result,
    }
}

/// The checks that need state: no unfinished release; the live release
/// (adopting what runs on a first deploy).
async fn preflight(ctx: &Ctx) -> Result<Option<Release>> {
    rollout::refuse_unrunnable(&ctx.cfg, &ctx.model)?;
    let history = ctx.state.history(&ctx.env.name, None)?;
    if let Some(u) = plan::unfinished(&history) {
        return Err(Error::Preflight(format!(
            "release {} ({}, started {}) did not finish\n  hint: run `slipway recover --env {}` to finish or undo it first",
            u.id,
            u.kind.as_str(),
            u.started_at,
            ctx.env.name
        )));
    }
    match plan::current(&history) {
        Some(c) => Ok(Some(c.clone())),
        None => adopt(ctx).await,
    }
}

/// First deploy in an environment that already runs: record what runs as an
/// `adopt` release, so even this deploy can roll back.
async fn adopt(ctx: &Ctx) -> Result<Option<Release>> {
    let mut services = BTreeMap::new();
    for svc in ctx.repos.keys() {
        let containers = ctx.docker.containers(&ctx.cfg.project, Some(svc)).await?;
        if let Some(c) = containers.iter().find(|c| c.state == "running") {
            services.insert(
                svc.clone(),
                ServiceImage {
                    image: c.image.clone(),
                    image_id: c.image_id.clone(),
                },
            );
        }
    }
    if services.is_empty() {
        return Ok(None);
    }
    let now = state::now();
    let mut r = Release {
        id: 0,
        env: ctx.env.name.clone(),
        kind: Kind::Adopt,
        tag: None,
        status: Status::Succeeded,
        started_at: now.clone(),
        finished_at: Some(now),
        reason: Some("what ran when slipway first deployed this environment".into()),
        previous: None,
        services,
        commit: None,
        branch: None,
        run_url: None,
    };
    r.id = ctx.state.begin(&r)?;
    tag_release(ctx, r.id, &r.services).await?;
    ctx.out.line(format!(
        "  adopted the running services as release {}",
        r.id
    ));
    Ok(Some(r))
}

fn repo(ctx: &Ctx, svc: &str, image: &str) -> String {
    ctx.repos
        .get(svc)
        .cloned()
        .unwrap_or_else(|| split_image(image).0.to_string())
}

/// Give a release's images its immutable per-release tag.
async fn tag_release(ctx: &Ctx, id: i64, images: &BTreeMap<String, ServiceImage>) -> Result<()> {
    let tag = ctx.owner().release_tag(id);
    let tags = images.iter().map(|(svc, img)| {
        let (repo, tag) = (repo(ctx, svc, &img.image), &tag);
        async move { ctx.docker.tag(&img.image_id, &repo, tag).await }
    });
    futures_util::future::try_join_all(tags).await?;
    Ok(())
}

/// Step 2: the new images, resolved to IDs.
async fn resolve(ctx: &Ctx, id: i64, desired: &Desired) -> Result<BTreeMap<String, ServiceImage>> {
    match desired {
        Desired::Pull { tag } => pull(ctx, id, tag).await,
        Desired::Restore { release } => {
            let step = ctx.out.step("images");
            for (svc, img) in &release.services {
                if ctx.docker.image_id(&img.image_id).await?.is_none() {
                    let msg = format!(
                        "image of release {} for {svc} ({}, {}) is no longer on this host",
                        release.id, img.image, img.image_id
                    );
                    step.fail(&msg);
                    return Err(Error::Preflight(msg));
                }
            }
            step.done(format!("release {}'s images are present", release.id));
            Ok(release.services.clone())
        }
    }
}

async fn pull(ctx: &Ctx, id: i64, tag: &str) -> Result<BTreeMap<String, ServiceImage>> {
    let step = ctx.out.step("pull");
    let refs: BTreeMap<String, String> = ctx
        .repos
        .iter()
        .map(|(svc, repo)| (svc.clone(), format!("{repo}:{tag}")))
        .collect();
    ctx.state.journal(
        id,
        Step::Pull,
        &refs.values().cloned().collect::<Vec<_>>().join(" "),
    )?;
    let file = ctx
        .override_path(id)
        .with_file_name(format!("pull-{id}.yml"));
    write_file(&file, &pin_override(&refs, "always"))?;
    let services: Vec<String> = refs.keys().cloned().collect();
    step.set(services.join(", "));
    failpoint::hit_soon("pull:during");
    let out = exec::run(&ctx.compose.pull(&file, &services), PULL_TIMEOUT)
        .await
        .map_err(|e| Error::Pull(format!("cannot run docker compose: {e}")))?;
    if !out.success() {
        let why = if out.timed_out {
            "timed out".to_string()
        } else {
            out.tail()
        };
        step.fail("");
        return Err(Error::Pull(format!(
            "docker compose pull {}:\n{why}\n  nothing running was changed",
            refs.values().cloned().collect::<Vec<_>>().join(" ")
        )));
    }
    let mut images = BTreeMap::new();
    for (svc, image) in refs {
        let Some(image_id) = ctx.docker.image_id(&image).await? else {
            step.fail("");
            return Err(Error::Pull(format!(
                "{image} is not on this host after the pull"
            )));
        };
        images.insert(svc, ServiceImage { image, image_id });
    }
    step.done(services.join(", "));
    Ok(images)
}

/// Step 3: the live release's images get the way-back tags and their release
/// tag; the new images get theirs. Refuses if the way back is already gone.
/// Returns the way-back tags it moved, as they were before.
async fn pin(
    ctx: &Ctx,
    id: i64,
    current: Option<&Release>,
    images: &BTreeMap<String, ServiceImage>,
) -> Result<Vec<Moved>> {
    let step = ctx.out.step("pin");
    ctx.state.journal(
        id,
        Step::Pin,
        &current.map(|c| c.id.to_string()).unwrap_or_default(),
    )?;
    let mut moved = Vec::new();
    if let Some(c) = current {
        // All of the way back must be here before anything is tagged; the
        // engine calls run at once (this step is on every deploy's path).
        let present = c.services.iter().map(|(svc, img)| async move {
            Ok::<_, Error>((svc, img, ctx.docker.image_id(&img.image_id).await?))
        });
        for (svc, img, found) in futures_util::future::try_join_all(present).await? {
            if found.is_none() {
                let msg = format!(
                    "the way back is gone: release {}'s image for {svc} ({}) is not on this host; \
                     nothing was changed\n  hint: `slipway rollback --to ID` to a release whose images exist, \
                     or restore the image",
                    c.id, img.image_id
                );
                step.fail("");
                return Err(Error::Preflight(msg));
            }
        }
        moved = point_way_back(ctx, c).await?;
        tag_release(ctx, c.id, &c.services).await?;
    }
    tag_release(ctx, id, images).await?;
    step.done(match current {
        Some(c) => format!("{} → release {}", way_back_names(ctx, &moved), c.id),
        None => "nothing to go back to (first release)".to_string(),
    });
    Ok(moved)
}

/// One way-back tag `pin` moved: where it pointed before (None: nowhere).
pub struct Moved {
    repo: String,
    tag: String,
    before: Option<String>,
}

/// `:tag` names for messages, the plain `:rollback` first.
fn way_back_names(ctx: &Ctx, moved: &[Moved]) -> String {
    let holder = ctx.owner().holder_tag();
    let mut names: Vec<&str> = moved
        .iter()
        .map(|m| m.tag.as_str())
        .filter(|t| *t != holder)
        .collect();
    names.sort_by_key(|t| (*t != ctx.env.rollback_tag, *t));
    names.dedup();
    names
        .iter()
        .map(|t| format!(":{t}"))
        .collect::<Vec<_>>()
        .join(" and ")
}

/// Point this environment's way-back tags at `target`'s images: its own
/// `slipway-<project>.<env>-rollback` always, the plain `rollback_tag` (with
/// the holder tag that says whose it is) only while it is this
/// environment's in that repository (`plan::may_move_plain_rollback`).
async fn point_way_back(ctx: &Ctx, target: &Release) -> Result<Vec<Moved>> {
    let owner = ctx.owner();
    let engine = ctx.docker.images().await?;
    let history = ctx.state.history(&ctx.env.name, None)?;
    // A tag is another owner's unless namespaced ours, or a pre-namespace
    // release tag our own history wrote.
    let others = |tag: &str, id: &str| {
        tag.starts_with("slipway-")
            && !owner.owns(tag)
            && !history.iter().any(|r| {
                plan::legacy_release_tag(&r.env, r.id) == tag
                    && r.services.values().any(|s| s.image_id == id)
            })
    };
    let mut moved = Vec::new();
    for (svc, img) in &target.services {
        let repo = repo(ctx, svc, &img.image);
        let in_repo: Vec<(String, String)> = engine
            .iter()
            .flat_map(|i| i.tags.iter().map(move |t| (t, &i.id)))
            .filter(|(t, _)| split_image(t).0 == repo)
            .map(|(t, id)| (split_image(t).1.unwrap_or("").to_string(), id.clone()))
            .collect();
        let mut tags = vec![owner.way_back_tag()];
        if plan::may_move_plain_rollback(&owner, &ctx.env.rollback_tag, &in_repo, others) {
            tags.push(ctx.env.rollback_tag.clone());
            tags.push(owner.holder_tag());
        }
        for tag in tags {
            let before = in_repo
                .iter()
                .find(|(t, _)| *t == tag)
                .map(|(_, id)| id.clone());
            ctx.docker.tag(&img.image_id, &repo, &tag).await?;
            moved.push(Moved {
                repo: repo.clone(),
                tag,
                before,
            });
        }
    }
    Ok(moved)
}

/// An aborted release puts the way-back tags back where they were.
async fn put_back(ctx: &Ctx, moved: &[Moved]) {
    for m in moved {
        let done = match &m.before {
            Some(id) => ctx.docker.tag(id, &m.repo, &m.tag).await,
            None => ctx.docker.untag(&format!("{}:{}", m.repo, m.tag)).await,
        };
        if let Err(e) = done {
            ctx.out.warn(format!(
                "could not put {}:{} back where it was: {e}",
                m.repo, m.tag
            ));
        }
    }
}

/// Services of the live release whose running containers run something else
/// (another tool changed them): warned about here, journaled by the caller.
async fn find_drift(ctx: &Ctx, live: &Release) -> Vec<String> {
    let mut running = BTreeMap::new();
    for svc in live.services.keys() {
        match ctx.docker.containers(&ctx.cfg.project, Some(svc)).await {
            Ok(cs) => {
                let ids = cs
                    .into_iter()
                    .filter(|c| c.state == "running")
                    .map(|c| c.image_id)
                    .collect::<Vec<_>>();
                running.insert(svc.clone(), ids);
            }
            Err(e) => {
                ctx.out.warn(format!("cannot check {svc} for drift: {e}"));
                return Vec::new();
            }
        }
    }
    let found: Vec<String> = plan::drift(live, &running)
        .iter()
        .map(|d| d.describe(live.id))
        .collect();
    for d in &found {
        ctx.out.warn(format!(
            "drift: {d}; the way back stays release {}",
            live.id
        ));
    }
    found
}

/// Steps 4–6. The error is the reason, in words, for history.
async fn roll_out_and_verify(
    ctx: &Ctx,
    id: i64,
    images: &BTreeMap<String, ServiceImage>,
    tag: &str,
) -> Result<(), String> {
    roll_out(ctx, id, images, tag, Purpose::Release).await?;

    let step = ctx.out.step("smoke");
    ctx.state
        .journal(id, Step::Smoke, "")
        .map_err(|e| e.to_string())?;
    let suite = ctx.smoke_suite(tag).run().await;
    let failed = suite.failed().count();
    if suite.ok {
        step.done(format!("{} checks passed", suite.checks.len()));
    } else {
        step.fail(format!("{failed} of {} checks failed", suite.checks.len()));
    }
    if !suite.checks.is_empty() && !ctx.out.json {
        eprint!("{}", report::text(&suite));
    }
    if let Some(path) = &ctx.junit {
        let name = format!("slipway deploy ({})", ctx.env.name);
        if let Err(e) = crate::probe::junit::write(path, &suite, &name) {
            ctx.out.warn(e);
        }
    }
    if suite.ok {
        commit_point(ctx, id)
    } else {
        Err(suite.reason())
    }
}

/// The point of no return: journal `commit` unless a signal came first (the
/// signal handler journals under the same lock, so the journal orders them).
fn commit_point(ctx: &Ctx, id: i64) -> Result<(), String> {
    match interrupt::unless_requested(|| ctx.state.journal(id, Step::Commit, "")) {
        Some(journaled) => journaled.map_err(|e| e.to_string()),
        None => check_interrupt(),
    }
}

/// Steps 4–5 for one set of images: each service pinned to its release tag
/// and rolled per its strategy (`rollout`), wave by wave, each service
/// healthy before the next wave.
/// Steps 4–5 for one set of images: each service pinned to its release tag
/// and rolled per its strategy (`rollout`), wave by wave, each service
/// healthy before the next wave. A release's rollout stops at the next wave
/// boundary (or health wait) on a signal; a restore does not.
async fn roll_out(
    ctx: &Ctx,
    id: i64,
    images: &BTreeMap<String, ServiceImage>,
    tag: &str,
    purpose: Purpose,
) -> Result<(), String> {
    let check_interrupt = || match purpose {
        Purpose::Release => check_interrupt(),
        Purpose::Restore => Ok(()),
    };
    let file = ctx.override_path(id);
    // Tagged here too: a release recorded before tags were namespaced (or
    // whose tag someone removed) still rolls out by its exact image IDs.
    tag_release(ctx, id, images)
        .await
        .map_err(|e| e.to_string())?;
    let release_tag = ctx.owner().release_tag(id);
    let pinned: BTreeMap<String, String> = images
        .iter()
        .map(|(svc, img)| {
            (
                svc.clone(),
                format!("{}:{release_tag}", repo(ctx, svc, &img.image)),
            )
        })
        .collect();
    write_file(&file, &pin_override(&pinned, "never")).map_err(|e| e.to_string())?;
    let services: BTreeSet<String> = images.keys().cloned().collect();
    let vars = ctx.vars(tag);
    let roll = rollout::Rollout::prepare(ctx, id, &file, images, &vars, purpose).await?;
    for wave in plan::waves(&services, &ctx.depends_on(), ctx.env.max_parallel) {
        let step = ctx.out.step("rollout");
        step.set(wave.join(", "));
        match roll.wave(&wave).await {
            Ok(done) => step.done(done),
            Err(e) => {
                step.fail(&e);
                return Err(e);
            }
        };
        failpoint::hit("rollout:after");
        check_interrupt()?;
    }
    failpoint::hit("health:after");
    Ok(())
}

/// Step 7: mark succeeded, then prune; a prune problem is only a warning.
async fn commit(ctx: &Ctx, release: &Release, current: Option<&Release>) -> Result<()> {
    ctx.state.finish(release.id, Status::Succeeded, None)?;
    failpoint::hit("commit:after");
    ctx.out.line(format!(
        "  release {} is live{}",
        release.id,
        current
            .map(|c| format!("; the way back is release {}", c.id))
            .unwrap_or_default()
    ));
    let step = ctx.out.step("prune");
    // At once: removing the replaced containers kept warm for a fast way back
    // (not needed now) and pruning (their images are the way back, kept).
    let (retired, pruned) = tokio::join!(rollout::retire_standby(ctx), prune::run(ctx, false));
    match pruned {
        Ok(p) => {
            step.done(format!(
                "{} images removed, {} kept",
                p.delete.len(),
                p.keep.len()
            ));
        }
        Err(e) => {
            step.fail("");
            ctx.out
                .warn(format!("prune failed (the release is live and fine): {e}"));
        }
    }
    if let Err(e) = retired {
        ctx.out
            .warn(format!("could not remove the replaced containers: {e}"));
    }
    Ok(())
}

/// Put `target` back exactly (or, with no target, remove what `failed`
/// started), and verify it is healthy. Used by step 8 and by `recover`.
pub async fn restore_release(
    ctx: &Ctx,
    failed: &Release,
    target: Option<&Release>,
) -> Result<(), String> {
    let file = ctx.override_path(failed.id);
    let step = ctx.out.step("restore");
    // Services the failed release runs that the target did not: take them down.
    let extra: Vec<&String> = failed
        .services
        .keys()
        .filter(|s| target.is_none_or(|t| !t.services.contains_key(*s)))
        .collect();
    for svc in &extra {
        let out = exec::run(&ctx.compose.remove(&file, svc), UP_TIMEOUT).await;
        if !out.as_ref().is_ok_and(|o| o.success()) {
            let why = format!("{svc}: could not remove its container");
            step.fail(&why);
            return Err(why);
        }
    }
    let Some(target) = target else {
        step.done("no earlier release: removed the new containers");
        return Ok(());
    };
    step.done(format!("back to release {}", target.id));
    failpoint::hit("restore:during");
    roll_out(
        ctx,
        target.id,
        &target.services,
        target.tag.as_deref().unwrap_or(""),
        Purpose::Restore,
    )
    .await
}

/// Step 8: put the live release back, verify it, and say what happened.
async fn restore(
    ctx: &Ctx,
    release: &Release,
    target: Option<&Release>,
    reason: &str,
) -> Result<()> {
    failpoint::pause("restore:before").await;
    let _ = ctx.state.journal(
        release.id,
        Step::Restore,
        &target.map(|t| t.id.to_string()).unwrap_or_default(),
    );
    ctx.out.line(format!("  rolling back: {reason}"));
    match (restore_release(ctx, release, target).await, target) {
        (Ok(()), None) => {
            let why =
                format!("{reason}; no earlier release to restore, the new containers were removed");
            ctx.state
                .finish(release.id, Status::RolledBack, Some(&why))?;
            Err(Error::RolledBack(format!(
                "release {} failed: {why}",
                release.id
            )))
        }
        (Ok(()), Some(target)) => {
            ctx.state
                .finish(release.id, Status::RolledBack, Some(reason))?;
            retag_rollback(ctx, target).await;
            Err(Error::RolledBack(format!(
                "release {} failed: {reason}\nrelease {} is restored and healthy",
                release.id, target.id
            )))
        }
        (Err(restore_err), _) => {
            let back = target.map_or("the earlier state".to_string(), |t| {
                format!("release {}", t.id)
            });
            let why = format!("{reason}; restoring {back} failed: {restore_err}");
            ctx.state.finish(release.id, Status::Failed, Some(&why))?;
            let now = describe_services(ctx).await;
            let hint = match target {
                Some(t) => format!(
                    "fix the cause, then `slipway rollback --env {} --to {}`",
                    ctx.env.name, t.id
                ),
                None => "fix the cause, then deploy again".to_string(),
            };
            Err(Error::Broken(format!(
                "release {} failed and {back} could not be restored: {restore_err}\n\
                 original failure: {reason}\nwhat runs now:\n{now}\n  a human must act: {hint}",
                release.id
            )))
        }
    }
}

/// After going back to `live`, the way-back tags name what preceded it again.
pub async fn retag_rollback(ctx: &Ctx, live: &Release) {
    let Some(prev) = live
        .previous
        .and_then(|p| ctx.state.release(p).ok().flatten())
    else {
        return;
    };
    for img in prev.services.values() {
        if !matches!(ctx.docker.image_id(&img.image_id).await, Ok(Some(_))) {
            return;
        }
    }
    if let Err(e) = point_way_back(ctx, &prev).await {
        ctx.out.warn(format!(
            "could not point the way-back tags at release {}: {e}",
            prev.id
        ));
    }
}

pub async fn describe_services(ctx: &Ctx) -> String {
    let mut lines = Vec::new();
    for svc in ctx.repos.keys() {
        match ctx.docker.containers(&ctx.cfg.project, Some(svc)).await {
            Ok(cs) if cs.is_empty() => lines.push(format!("  {svc}: no container")),
            Ok(cs) => {
                for c in cs {
                    lines.push(format!(
                        "  {svc}: {} runs {} ({}), {}, health {}",
                        c.name,
                        c.image,
                        c.image_id,
                        c.state,
                        c.health.as_str()
                    ));
                }
            }
            Err(e) => lines.push(format!("  {svc}: cannot ask Docker: {e}")),
        }
    }
    lines.join("\n")
}

fn write_file(path: &std::path::Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::env(format!("cannot create {}: {e}", dir.display())))?;
    }
    std::fs::write(path, text)
        .map_err(|e| Error::env(format!("cannot write {}: {e}", path.display())))
}
