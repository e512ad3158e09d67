//! The deploy transaction, PRODUCT.md steps 1–8, shared by `deploy` (new
//! images, pulled) and `rollback` (a recorded release's exact images), over
//! any [`Backend`]:
//!
//! | step | function | undo |
//! | --- | --- | --- |
//! | 1 preflight | [`Backend::lock`], [`preflight`], [`begin`] | release the lock |
//! | 2 pull | [`resolve`] | nothing ran: `aborted` |
//! | 3 pin | [`pin`] (then dependencies, `pre_deploy` hooks) | [`Backend::put_back`] |
//! | 4 rollout | [`roll_out`], per wave | step 8 |
//! | 5 health | [`roll_out`], per wave | step 8 |
//! | 6 smoke | [`smoke`], then [`commit_point`] | step 8 |
//! | 7 commit | [`commit`] (retire standbys, prune) | — |
//! | 8 roll back | [`restore`] | say what runs: exit 3 |
//!
//! Each step is journaled before it acts. Steps 1–3 change nothing that runs:
//! a failure there marks the release `aborted` (exit 2). A failure at 4–6
//! restores the way back (exit 1), or says what runs if that fails (exit 3).

use std::collections::BTreeMap;
use std::path::Path;

use crate::backend::{Backend, Images, Moved, Purpose};
use crate::error::{Error, Result};
use crate::probe::report;
use crate::state::{self, Kind, Release, Status, Step};
use crate::{failpoint, interrupt};

use super::gate::{self, Phase};
use super::lifecycle::Lifecycle;
use super::plan;
use super::request::{Desired, Outcome, Request};
use super::roll::{check_interrupt, describe_services, restore_release, retag_rollback, roll_out};

pub async fn run<B: Backend>(b: &B, req: Request) -> Outcome {
    // 1. Preflight: the lock, then what is live. Nothing recorded yet.
    let (lock, current, given_id) = match lock_and_preflight(b, &req).await {
        Ok(found) => found,
        Err(e) => return unrecorded(e),
    };
    // Said before acting; the way back stays the last release that passed.
    let drift = match &current {
        Some(c) => find_drift(b, c).await,
        None => Vec::new(),
    };
    failpoint::hit("preflight:after");
    let mut release = match begin(b, &req, current.as_ref(), &drift, given_id) {
        Ok(r) => r,
        Err(e) => return unrecorded(e),
    };
    let mut life = Lifecycle::start(b, &release, &req.desired);

    // 2–3. Resolve, pin, dependencies, pre_deploy hooks; nothing running changes.
    let images = match prepare(b, release.id, current.as_ref(), &req, &life).await {
        Ok(images) => images,
        Err(e) => {
            // Aborted: nothing running changed (or what changed was undone).
            let status = match e {
                Error::Broken(_) => Status::Failed,
                _ => Status::Aborted,
            };
            let _ = b.state.finish(release.id, status, Some(&e.to_string()));
            life.end(b, release.id, Some(&e)).await;
            return finished(b, &req, release.id, Err(e));
        }
    };
    release.services = images.clone();

    // 4–6. Roll out wave by wave (each healthy before the next), smoke test.
    let tag = req.tag().unwrap_or_default();
    let verified = async {
        roll_out(b, release.id, &images, &tag, Purpose::Release).await?;
        smoke(b, release.id, &tag, req.junit.as_deref()).await?;
        // One host of several: the others must pass too before any commits.
        gate::pass(req.gate.as_ref(), Phase::Verified, |reason| reason).await?;
        commit_point(b, release.id)
    }
    .await;

    let result = match verified {
        // 7. Commit.
        Ok(()) => {
            failpoint::hit("smoke:after");
            commit(b, &release, current.as_ref()).await
        }
        // 8. Or roll back.
        Err(reason) => {
            let logs = super::logs::keep(b, release.id);
            life.rolling_back(&release, &reason, logs);
            restore(b, &release, current.as_ref(), &reason).await
        }
    };
    life.end(b, release.id, result.as_ref().err()).await;
    drop(lock);
    finished(b, &req, release.id, result)
}

/// Step 1 as one line of output: the lock, then the live release.
async fn lock_and_preflight<B: Backend>(
    b: &B,
    req: &Request,
) -> Result<(B::Lock, Option<Release>, Option<i64>)> {
    // One host of several takes its lock when the coordinator says (a fixed order).
    gate::pass(req.gate.as_ref(), Phase::Lock, Error::Preflight).await?;
    let step = b.out.step("preflight");
    let lock = match b.lock(req.kind.as_str(), req.lock_wait).await {
        Ok(lock) => lock,
        Err(e) => {
            step.fail("environment is locked");
            return Err(e);
        }
    };
    if let Some(g) = &req.gate {
        g.tell(Phase::Holding);
    }
    match preflight(b).await {
        Ok(current) => {
            step.done(match &current {
                Some(c) => format!(
                    "live release {} ({})",
                    c.id,
                    c.tag.as_deref().unwrap_or("adopted")
                ),
                None => "no live release yet".to_string(),
            });
            let next_id = b.state.next_id()?;
            let id = gate::pass(
                req.gate.as_ref(),
                Phase::Locked { next_id },
                Error::Preflight,
            )
            .await?;
            Ok((lock, current, id))
        }
        Err(e) => {
            step.fail(e.to_string());
            Err(e)
        }
    }
}

/// A run that ended before a release was recorded.
fn unrecorded(e: Error) -> Outcome {
    Outcome {
        release: None,
        result: Err(e),
    }
}

/// Steps 2–3: the new images resolved and pinned, the services they need
/// started, the `pre_deploy` hooks passed. Nothing running changes; a
/// failure (or a signal) puts the way-back names back where they were and
/// removes what the release created (a Swarm stack its first deploy made).
async fn prepare<B: Backend>(
    b: &B,
    id: i64,
    current: Option<&Release>,
    req: &Request,
    life: &Lifecycle,
) -> Result<Images> {
    let mut moved = Vec::new();
    let prepared = async {
        let images = resolve(b, id, &req.desired).await?;
        b.state.set_services(id, &images)?;
        failpoint::hit("pull:after");
        stop_if_interrupted()?;
        moved = pin(b, id, current, &images).await?;
        failpoint::hit("pin:after");
        failpoint::pause("pin:after").await;
        stop_if_interrupted()?;
        b.start_dependencies(id).await?;
        failpoint::hit("dependencies:after");
        stop_if_interrupted()?;
        life.pre_deploy(b, &images).await?;
        // One host of several: switch only when every host got this far.
        gate::pass(req.gate.as_ref(), Phase::Ready, Error::Preflight).await?;
        Ok::<_, Error>(images)
    }
    .await;
    match prepared {
        Ok(images) => Ok(images),
        Err(e) => {
            b.put_back(&moved).await;
            // What `start_dependencies` created for this release (a Swarm
            // stack) goes too: nothing running is left changed.
            match b.discard_created(id).await {
                Ok(_) => Err(e),
                Err(left) => Err(Error::Broken(format!(
                    "{e}\nwhat this release created could not be removed: {left}\n  \
                     a human must act: remove it, then deploy again"
                ))),
            }
        }
    }
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

fn finished<B: Backend>(b: &B, req: &Request, id: i64, result: Result<()>) -> Outcome {
    let release = b.state.release(id).ok().flatten();
    if let Some(g) = &req.gate {
        g.tell(Phase::Done {
            release: Some(id),
            status: release.as_ref().map(|r| r.status.as_str().to_string()),
            reason: result.as_ref().err().map(ToString::to_string),
        });
    }
    Outcome { release, result }
}

/// Step 1, the checks that need state: no unfinished release; the live
/// release (adopting what runs on a first deploy).
async fn preflight<B: Backend>(b: &B) -> Result<Option<Release>> {
    b.preflight()?;
    let history = b.state.history(&b.env.name, None)?;
    if let Some(u) = plan::unfinished(&history) {
        return Err(Error::Preflight(format!(
            "release {} ({}, started {}) did not finish\n  hint: run `slipway recover --env {}` to finish or undo it first",
            u.id,
            u.kind.as_str(),
            u.started_at,
            b.env.name
        )));
    }
    match plan::current(&history) {
        Some(c) => Ok(Some(c.clone())),
        None => adopt(b).await,
    }
}

/// First deploy in an environment that already runs: record what runs as an
/// `adopt` release, so even this deploy can roll back.
async fn adopt<B: Backend>(b: &B) -> Result<Option<Release>> {
    let mut services = BTreeMap::new();
    for svc in b.repos.keys() {
        let containers = b.running(svc).await?;
        if let Some(c) = containers.iter().find(|c| c.state == "running") {
            services.insert(
                svc.clone(),
                state::ServiceImage {
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
        env: b.env.name.clone(),
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
    r.id = b.state.begin(&r)?;
    b.tag_release(r.id, &r.services).await?;
    b.out.line(format!(
        "  adopted the running services as release {}",
        r.id
    ));
    Ok(Some(r))
}

/// The release is recorded `in_progress` before anything changes, with the
/// drift found, and a signal from now on is journaled against it.
fn begin<B: Backend>(
    b: &B,
    req: &Request,
    current: Option<&Release>,
    drift: &[String],
    given_id: Option<i64>,
) -> Result<Release> {
    let tag = req.tag();
    let mut release = Release {
        id: given_id.unwrap_or(0),
        env: b.env.name.clone(),
        kind: req.kind,
        tag: tag.clone(),
        status: Status::InProgress,
        started_at: state::now(),
        finished_at: None,
        reason: None,
        previous: current.map(|c| c.id),
        services: BTreeMap::new(),
        commit: req.ci.commit.clone(),
        branch: req.ci.branch.clone(),
        run_url: req.ci.run_url.clone(),
    };
    release.id = b.state.begin(&release)?;
    if !drift.is_empty() {
        let _ = b.state.journal(release.id, Step::Drift, &drift.join("; "));
    }
    if let Err(e) = interrupt::journal_to(b.state.dir(), release.id) {
        b.out.warn(format!(
            "a signal will not be journaled ({e}); `slipway recover` may verify an interrupted release"
        ));
    }
    failpoint::hit("begin:after");
    b.out.line(format!(
        "  {} {} → release {}{}",
        req.kind.as_str(),
        b.env.name,
        release.id,
        tag.as_deref()
            .map(|t| format!(" ({t})"))
            .unwrap_or_default()
    ));
    Ok(release)
}

/// Step 2: the new images, resolved to IDs.
async fn resolve<B: Backend>(b: &B, id: i64, desired: &Desired) -> Result<Images> {
    match desired {
        Desired::Pull { tag } => {
            let step = b.out.step("pull");
            let refs: BTreeMap<String, String> = b
                .repos
                .iter()
                .map(|(svc, repo)| (svc.clone(), format!("{repo}:{tag}")))
                .collect();
            b.state.journal(
                id,
                Step::Pull,
                &refs.values().cloned().collect::<Vec<_>>().join(" "),
            )?;
            let services = refs.keys().cloned().collect::<Vec<_>>().join(", ");
            step.set(&services);
            match b.pull(id, &refs).await {
                Ok(images) => {
                    step.done(services);
                    Ok(images)
                }
                Err(e) => {
                    step.fail("");
                    Err(e)
                }
            }
        }
        Desired::Restore { release } => {
            let step = b.out.step("images");
            for (svc, img) in &release.services {
                if !b.has_image(img).await? {
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

/// Step 3: the live release's images get the way-back names and their
/// release name; the new images get theirs. Refuses if the way back is
/// already gone. Returns the way-back names it moved, as they were before.
async fn pin<B: Backend>(
    b: &B,
    id: i64,
    current: Option<&Release>,
    images: &Images,
) -> Result<Vec<Moved>> {
    let step = b.out.step("pin");
    b.state.journal(
        id,
        Step::Pin,
        &current.map(|c| c.id.to_string()).unwrap_or_default(),
    )?;
    let mut moved = Vec::new();
    if let Some(c) = current {
        // All of the way back must be here before anything is tagged; the
        // engine calls run at once (this step is on every deploy's path).
        let present = c
            .services
            .iter()
            .map(|(svc, img)| async move { Ok::<_, Error>((svc, img, b.has_image(img).await?)) });
        for (svc, img, found) in futures_util::future::try_join_all(present).await? {
            if !found {
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
        moved = b.point_way_back(c).await?;
        b.tag_release(c.id, &c.services).await?;
    }
    b.tag_release(id, images).await?;
    step.done(match current {
        // A backend whose way back is history alone (Swarm's digests) moves no names.
        Some(c) if moved.is_empty() => format!("the way back is release {}", c.id),
        Some(c) => format!("{} → release {}", way_back_names(b, &moved), c.id),
        None => "nothing to go back to (first release)".to_string(),
    });
    Ok(moved)
}

/// `:tag` names for messages, the plain `:rollback` first.
fn way_back_names<B: Backend>(b: &B, moved: &[Moved]) -> String {
    let holder = b.owner().holder_tag();
    let mut names: Vec<&str> = moved
        .iter()
        .map(|m| m.tag.as_str())
        .filter(|t| *t != holder)
        .collect();
    names.sort_by_key(|t| (*t != b.env.rollback_tag, *t));
    names.dedup();
    names
        .iter()
        .map(|t| format!(":{t}"))
        .collect::<Vec<_>>()
        .join(" and ")
}

/// Services of the live release whose running containers run something else
/// (another tool changed them): warned about here, journaled by `begin`.
async fn find_drift<B: Backend>(b: &B, live: &Release) -> Vec<String> {
    let mut running = BTreeMap::new();
    for svc in live.services.keys() {
        match b.running(svc).await {
            Ok(cs) => {
                let ids = cs
                    .into_iter()
                    .filter(|c| c.state == "running")
                    .map(|c| c.image_id)
                    .collect::<Vec<_>>();
                running.insert(svc.clone(), ids);
            }
            Err(e) => {
                b.out.warn(format!("cannot check {svc} for drift: {e}"));
                return Vec::new();
            }
        }
    }
    let found: Vec<String> = plan::drift(live, &running)
        .iter()
        .map(|d| d.describe(live.id))
        .collect();
    for d in &found {
        b.out.warn(format!(
            "drift: {d}; the way back stays release {}",
            live.id
        ));
    }
    found
}

/// Step 6: the smoke suite against the new release (JUnit XML if asked).
async fn smoke<B: Backend>(b: &B, id: i64, tag: &str, junit: Option<&Path>) -> Result<(), String> {
    let step = b.out.step("smoke");
    b.state
        .journal(id, Step::Smoke, "")
        .map_err(|e| e.to_string())?;
    let suite = b.smoke(b.vars(tag)).await;
    let failed = suite.failed().count();
    if suite.ok {
        step.done(format!("{} checks passed", suite.checks.len()));
    } else {
        step.fail(format!("{failed} of {} checks failed", suite.checks.len()));
    }
    if !suite.checks.is_empty() && !b.out.json {
        eprint!("{}", report::text(&suite));
    }
    if let Some(path) = junit {
        let name = format!("slipway deploy ({})", b.env.name);
        if let Err(e) = crate::probe::junit::write(path, &suite, &name) {
            b.out.warn(e);
        }
    }
    if suite.ok {
        Ok(())
    } else {
        Err(suite.reason())
    }
}

/// The point of no return: journal `commit` unless a signal came first (the
/// signal handler journals under the same lock, so the journal orders them).
fn commit_point<B: Backend>(b: &B, id: i64) -> Result<(), String> {
    match interrupt::unless_requested(|| b.state.journal(id, Step::Commit, "")) {
        Some(journaled) => journaled.map_err(|e| e.to_string()),
        None => check_interrupt(),
    }
}

/// Step 7: mark succeeded, then prune; a prune problem is only a warning.
async fn commit<B: Backend>(b: &B, release: &Release, current: Option<&Release>) -> Result<()> {
    b.state.finish(release.id, Status::Succeeded, None)?;
    failpoint::hit("commit:after");
    b.out.line(format!(
        "  release {} is live{}",
        release.id,
        current
            .map(|c| format!("; the way back is release {}", c.id))
            .unwrap_or_default()
    ));
    let step = b.out.step("prune");
    // At once: removing the replaced containers kept warm for a fast way back
    // (not needed now) and pruning (their images are the way back, kept).
    let (retired, pruned) = tokio::join!(b.retire(), b.prune(false));
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
            b.out
                .warn(format!("prune failed (the release is live and fine): {e}"));
        }
    }
    if let Err(e) = retired {
        b.out
            .warn(format!("could not remove the replaced containers: {e}"));
    }
    Ok(())
}

/// Step 8: put the live release back, verify it, and say what happened.
async fn restore<B: Backend>(
    b: &B,
    release: &Release,
    target: Option<&Release>,
    reason: &str,
) -> Result<()> {
    failpoint::pause("restore:before").await;
    let _ = b.state.journal(
        release.id,
        Step::Restore,
        &target.map(|t| t.id.to_string()).unwrap_or_default(),
    );
    b.out.line(format!("  rolling back: {reason}"));
    match (restore_release(b, release, target).await, target) {
        (Ok(removed), None) => {
            let why = format!(
                "{reason}; no earlier release to restore, the new containers were removed{}",
                removed.map(|what| format!("; {what}")).unwrap_or_default()
            );
            b.state.finish(release.id, Status::RolledBack, Some(&why))?;
            Err(Error::RolledBack(format!(
                "release {} failed: {why}",
                release.id
            )))
        }
        (Ok(_), Some(target)) => {
            b.state
                .finish(release.id, Status::RolledBack, Some(reason))?;
            retag_rollback(b, target).await;
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
            b.state.finish(release.id, Status::Failed, Some(&why))?;
            let now = describe_services(b).await;
            let hint = match target {
                Some(t) => format!(
                    "fix the cause, then `slipway rollback --env {} --to {}`",
                    b.env.name, t.id
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

#[cfg(test)]
#[path = "transaction_tests.rs"]
mod tests;
