//! `slipway recover`: after a run that died (SIGKILL, cancelled CI job,
//! reboot), finish or undo its release from the journal and what Docker
//! reports, then leave the lock free. Safe to run any number of times.
//!
//! [`decide`] is the pure rule: a release that never reached the rollout
//! changed nothing and is aborted; one whose services all run its images is
//! verified now (health, smoke) and kept if it passes; anything else, and any
//! release that had already started restoring, goes back to the last
//! succeeded release.

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::state::{EnvLock, Release, Status};

use super::context::{state_dir, Ctx};
use super::plan;
use super::transaction::{describe_services, restore_release, retag_rollback};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Nothing running was touched: mark it aborted.
    Abort,
    /// Every service runs the release's images: verify them now and keep the release if they pass.
    Verify,
    /// Put the last succeeded release back.
    RollBack,
}

/// `running`: service → image IDs of its containers now.
pub fn decide(
    journal: &[(String, String)],
    release: &Release,
    running: &BTreeMap<String, Vec<String>>,
) -> Decision {
    let has = |step: &str| journal.iter().any(|(s, _)| s == step);
    if has("restore") {
        // It had already failed its checks.
        return Decision::RollBack;
    }
    if !has("rollout") {
        return Decision::Abort;
    }
    let all_new = !release.services.is_empty()
        && release.services.iter().all(|(svc, img)| {
            running
                .get(svc)
                .is_some_and(|ids| !ids.is_empty() && ids.iter().all(|id| *id == img.image_id))
        });
    if all_new {
        Decision::Verify
    } else {
        Decision::RollBack
    }
}

#[derive(Debug)]
pub enum Recovered {
    Nothing,
    Aborted {
        unfinished: i64,
    },
    Completed {
        unfinished: i64,
    },
    RolledBack {
        unfinished: i64,
        restored: Option<i64>,
    },
}

pub async fn recover(ctx: &Ctx) -> Result<Recovered> {
    let (_lock, stale) = EnvLock::acquire(&state_dir(&ctx.cfg), &ctx.env.name, "recover")?;
    if let Some(s) = stale {
        ctx.out.line(format!(
            "  took over a stale lock left by {} (pid {} on {}, since {})",
            s.command, s.pid, s.host, s.since
        ));
    }
    let history = ctx.state.history(&ctx.env.name, None)?;
    let Some(unfinished) = plan::unfinished(&history).cloned() else {
        return Ok(Recovered::Nothing);
    };
    let target: Option<Release> = plan::current(&history).cloned();
    let journal = ctx.state.journal_of(unfinished.id)?;
    let mut running = BTreeMap::new();
    for svc in unfinished.services.keys() {
        let ids = ctx
            .docker
            .containers(&ctx.cfg.project, Some(svc))
            .await?
            .into_iter()
            .map(|c| c.image_id)
            .collect::<Vec<_>>();
        running.insert(svc.clone(), ids);
    }
    let decision = decide(&journal, &unfinished, &running);
    ctx.out.line(format!(
        "  release {} ({}) did not finish; last step: {}; decision: {decision:?}",
        unfinished.id,
        unfinished.kind.as_str(),
        journal
            .last()
            .map_or("none".to_string(), |(s, d)| format!("{s} {d}")
                .trim()
                .to_string())
    ));
    ctx.state
        .journal(unfinished.id, "recover", &format!("{decision:?}"))?;

    if decision == Decision::Abort {
        // It may have died after `pin`: the way-back tags name what preceded
        // the live release again, as before it began.
        if let Some(t) = &target {
            retag_rollback(ctx, t).await;
        }
        ctx.state.finish(
            unfinished.id,
            Status::Aborted,
            Some("interrupted before anything running changed; closed by `slipway recover`"),
        )?;
        return Ok(Recovered::Aborted {
            unfinished: unfinished.id,
        });
    }
    if decision == Decision::Verify {
        match verify(ctx, &unfinished).await {
            Ok(()) => {
                ctx.state.finish(
                    unfinished.id,
                    Status::Succeeded,
                    Some("interrupted after rolling out; verified and completed by `slipway recover`"),
                )?;
                return Ok(Recovered::Completed {
                    unfinished: unfinished.id,
                });
            }
            Err(why) => ctx.out.line(format!(
                "  its images run but do not pass: {why}; rolling back"
            )),
        }
    }

    let reason = "interrupted; undone by `slipway recover`";
    match restore_release(ctx, &unfinished, target.as_ref()).await {
        Ok(()) => {
            ctx.state
                .finish(unfinished.id, Status::RolledBack, Some(reason))?;
            if let Some(t) = &target {
                retag_rollback(ctx, t).await;
            }
            Ok(Recovered::RolledBack {
                unfinished: unfinished.id,
                restored: target.map(|t| t.id),
            })
        }
        Err(e) => {
            let why = format!("{reason}; restoring failed: {e}");
            ctx.state
                .finish(unfinished.id, Status::Failed, Some(&why))?;
            Err(Error::Broken(format!(
                "could not restore after interrupted release {}: {e}\nwhat runs now:\n{}",
                unfinished.id,
                describe_services(ctx).await
            )))
        }
    }
}

/// The release's services healthy and the smoke suite passing, now.
async fn verify(ctx: &Ctx, release: &Release) -> Result<(), String> {
    let tag = release.tag.clone().unwrap_or_default();
    let vars = ctx.vars(&tag);
    let targets = ctx.health_targets(&release.services);
    ctx.health_wait(&vars).all(&targets).await?;
    let suite = ctx.smoke_suite(&tag).run().await;
    if suite.ok {
        Ok(())
    } else {
        Err(suite.reason())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Kind, ServiceImage};

    fn release() -> Release {
        let mut services = BTreeMap::new();
        for svc in ["api", "web"] {
            services.insert(
                svc.to_string(),
                ServiceImage {
                    image: format!("r/{svc}:v2"),
                    image_id: format!("sha256:{svc}-new"),
                },
            );
        }
        Release {
            id: 7,
            env: "staging".into(),
            kind: Kind::Deploy,
            tag: Some("v2".into()),
            status: Status::InProgress,
            started_at: String::new(),
            finished_at: None,
            reason: None,
            previous: Some(6),
            services,
            commit: None,
            branch: None,
            run_url: None,
        }
    }

    fn journal(steps: &[&str]) -> Vec<(String, String)> {
        steps
            .iter()
            .map(|s| (s.to_string(), String::new()))
            .collect()
    }

    fn running(api: &[&str], web: &[&str]) -> BTreeMap<String, Vec<String>> {
        let v = |ids: &[&str]| ids.iter().map(|s| s.to_string()).collect();
        [("api".to_string(), v(api)), ("web".to_string(), v(web))].into()
    }

    #[test]
    fn killed_before_rollout_changed_nothing() {
        let r = release();
        let now = running(&["sha256:old"], &["sha256:old"]);
        assert_eq!(
            decide(&journal(&["pull", "pin"]), &r, &now),
            Decision::Abort
        );
        assert_eq!(decide(&journal(&[]), &r, &now), Decision::Abort);
    }

    #[test]
    fn fully_rolled_out_is_verified_half_rolled_out_goes_back() {
        let r = release();
        let steps = journal(&["pull", "pin", "rollout", "rollout", "health"]);
        let all_new = running(&["sha256:api-new"], &["sha256:web-new"]);
        assert_eq!(decide(&steps, &r, &all_new), Decision::Verify);
        let half = running(&["sha256:api-new"], &["sha256:old"]);
        assert_eq!(decide(&steps, &r, &half), Decision::RollBack);
        let missing = running(&["sha256:api-new"], &[]);
        assert_eq!(decide(&steps, &r, &missing), Decision::RollBack);
        let two_copies = running(&["sha256:api-new", "sha256:old"], &["sha256:web-new"]);
        assert_eq!(decide(&steps, &r, &two_copies), Decision::RollBack);
    }

    #[test]
    fn a_release_that_was_restoring_never_goes_forward() {
        let r = release();
        let steps = journal(&["pull", "pin", "rollout", "smoke", "restore"]);
        let all_new = running(&["sha256:api-new"], &["sha256:web-new"]);
        assert_eq!(decide(&steps, &r, &all_new), Decision::RollBack);
    }
}
