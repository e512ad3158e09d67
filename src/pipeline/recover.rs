//! `slipway recover`: after a run that died (SIGKILL, cancelled CI job,
//! reboot), finish or undo its release from the journal and what Docker
//! reports, then leave the lock free. Safe to run any number of times.
//!
//! [`decide`] is the pure rule: a release that never reached the rollout
//! changed nothing and is aborted; one stopped by the operator's signal
//! before its commit, and one that had already started restoring, goes back
//! to the last succeeded release; one whose services all run its images is
//! verified now (health, smoke) and kept if it passes; anything else goes
//! back.

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::state::{Entry, Release, Status, Step};

use crate::backend::{Backend, Purpose, Rollout as _};

use super::plan;
use super::roll::{describe_services, restore_release, retag_rollback};

pub use crate::state::Decision;

/// `running`: service → image IDs of its containers now.
pub fn decide(
    journal: &[Entry],
    release: &Release,
    running: &BTreeMap<String, Vec<String>>,
) -> Decision {
    let has = |step: Step| journal.iter().any(|e| e.step == step);
    if has(Step::Restore) {
        // It had already failed its checks.
        return Decision::RollBack;
    }
    if !has(Step::Rollout) {
        return Decision::Abort;
    }
    if stopped_by_signal(journal) {
        // The operator said no before it committed: never forward.
        return Decision::RollBack;
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

/// A signal was journaled before the release's commit (or it never committed).
pub fn stopped_by_signal(journal: &[Entry]) -> bool {
    journal
        .iter()
        .take_while(|e| e.step != Step::Commit)
        .any(|e| e.step == Step::Interrupted)
}

#[derive(Debug)]
pub enum Recovered {
    Nothing,
    Aborted {
        unfinished: i64,
        /// What it had created that was removed (a Swarm stack), said so.
        removed: Option<String>,
    },
    Completed {
        unfinished: i64,
    },
    RolledBack {
        unfinished: i64,
        restored: Option<i64>,
    },
}

/// Finish or undo the environment's unfinished release, as `decide` says.
pub async fn recover<B: Backend>(ctx: &B) -> Result<Recovered> {
    let _lock = ctx.lock("recover", None).await?;
    let history = ctx.state.history(&ctx.env.name, None)?;
    let Some(unfinished) = plan::unfinished(&history).cloned() else {
        return Ok(Recovered::Nothing);
    };
    let target: Option<Release> = plan::current(&history).cloned();
    let journal = ctx.state.journal_of(unfinished.id)?;
    let decision = decide(&journal, &unfinished, &running(ctx, &unfinished).await?);
    announce(ctx, &unfinished, &journal, decision);
    ctx.state
        .journal_entry(unfinished.id, &Entry::recover(decision))?;
    match decision {
        Decision::Abort => abort(ctx, &unfinished, target.as_ref()).await,
        Decision::Verify => match verify(ctx, &unfinished).await {
            Ok(()) => {
                ctx.state.finish(
                    unfinished.id,
                    Status::Succeeded,
                    Some("interrupted after rolling out; verified and completed by `slipway recover`"),
                )?;
                Ok(Recovered::Completed {
                    unfinished: unfinished.id,
                })
            }
            Err(why) => {
                ctx.out.line(format!(
                    "  its images run but do not pass: {why}; rolling back"
                ));
                roll_back(ctx, &unfinished, target, &journal).await
            }
        },
        Decision::RollBack => roll_back(ctx, &unfinished, target, &journal).await,
    }
}

/// Service → the image IDs its containers run now.
async fn running<B: Backend>(ctx: &B, release: &Release) -> Result<BTreeMap<String, Vec<String>>> {
    let mut running = BTreeMap::new();
    for svc in release.services.keys() {
        let ids = ctx
            .running(svc)
            .await?
            .into_iter()
            .map(|c| c.image_id)
            .collect::<Vec<_>>();
        running.insert(svc.clone(), ids);
    }
    Ok(running)
}

/// Say what was found and what will be done.
fn announce<B: Backend>(ctx: &B, unfinished: &Release, journal: &[Entry], decision: Decision) {
    ctx.out.line(format!(
        "  release {} ({}) did not finish; last step: {}{}; decision: {}",
        unfinished.id,
        unfinished.kind.as_str(),
        journal
            .iter()
            .rev()
            .find(|e| e.step != Step::Interrupted)
            .map_or("none".to_string(), |e| e.to_string()),
        if stopped_by_signal(journal) {
            "; stopped by the operator's signal"
        } else {
            ""
        },
        match decision {
            Decision::Abort => "abort (it never reached its rollout)",
            Decision::Verify => "verify its images now, keep it if they pass",
            Decision::RollBack => "roll back to the last succeeded release",
        }
    ));
}

/// Nothing running was changed: mark it aborted.
async fn abort<B: Backend>(
    ctx: &B,
    unfinished: &Release,
    target: Option<&Release>,
) -> Result<Recovered> {
    // It may have died after `pin`: the way-back tags name what preceded
    // the live release again, as before it began.
    if let Some(t) = target {
        retag_rollback(ctx, t).await;
    }
    // It may have died after creating what it needed (a Swarm stack, made
    // before the rollout): that goes, so nothing running is left changed.
    let removed = match ctx.discard_created(unfinished.id).await {
        Ok(removed) => removed,
        Err(e) => {
            let why =
                format!("interrupted before its rollout; removing what it created failed: {e}");
            ctx.state
                .finish(unfinished.id, Status::Failed, Some(&why))?;
            return Err(Error::Broken(format!(
                "could not undo interrupted release {}: {e}\n  a human must act: remove it, then deploy again",
                unfinished.id
            )));
        }
    };
    let why = match &removed {
        None => "interrupted before anything running changed; closed by `slipway recover`".into(),
        Some(what) => {
            format!("interrupted before its rollout; closed by `slipway recover`: {what}")
        }
    };
    ctx.state
        .finish(unfinished.id, Status::Aborted, Some(&why))?;
    Ok(Recovered::Aborted {
        unfinished: unfinished.id,
        removed,
    })
}

/// Put the last succeeded release back and verify it.
async fn roll_back<B: Backend>(
    ctx: &B,
    unfinished: &Release,
    target: Option<Release>,
    journal: &[Entry],
) -> Result<Recovered> {
    let reason = if stopped_by_signal(journal) {
        "stopped by a signal; undone by `slipway recover`"
    } else {
        "interrupted; undone by `slipway recover`"
    };
    match restore_release(ctx, unfinished, target.as_ref()).await {
        Ok(removed) => {
            let why = match removed {
                Some(what) => format!("{reason}; {what}"),
                None => reason.to_string(),
            };
            ctx.state
                .finish(unfinished.id, Status::RolledBack, Some(&why))?;
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
async fn verify<B: Backend>(ctx: &B, release: &Release) -> Result<(), String> {
    let tag = release.tag.clone().unwrap_or_default();
    let vars = ctx.vars(&tag);
    let rollout = ctx
        .prepare(release.id, &release.services, &vars, Purpose::Restore)
        .await?;
    let waits = release.services.keys().map(|svc| rollout.healthy(svc));
    futures_util::future::try_join_all(waits).await?;
    let suite = ctx.smoke(vars.clone()).await;
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

    fn journal(steps: &[Step]) -> Vec<Entry> {
        steps.iter().map(|s| Entry::new(*s, "")).collect()
    }

    fn running(api: &[&str], web: &[&str]) -> BTreeMap<String, Vec<String>> {
        let v = |ids: &[&str]| ids.iter().map(|s| s.to_string()).collect();
        [("api".to_string(), v(api)), ("web".to_string(), v(web))].into()
    }

    /// A first release killed before its rollout (say, once it created a
    /// Swarm stack): `recover` aborts it and discards what it created; a
    /// discard that fails is exit 3, `failed`.
    #[tokio::test]
    async fn an_aborted_release_discards_what_it_created() {
        for discard_fails in [false, true] {
            let dir = tempfile::tempdir().expect("tempdir");
            let b = crate::backend::fake::Fake::new(dir.path());
            let mut r = release();
            r.previous = None;
            let id = b.state.begin(&r).expect("begin");
            let b = if discard_fails {
                b.failing(&[&format!("discard {id}")])
            } else {
                b
            };
            b.state.journal(id, Step::Pull, "").expect("journal");
            b.state
                .journal(id, Step::Dependencies, "creating stack `fake`")
                .expect("journal");
            let done = recover(&b).await;
            assert!(
                b.calls().contains(&format!("discard {id}")),
                "{:?}",
                b.calls()
            );
            let status = b.state.release(id).ok().flatten().map(|r| r.status);
            if discard_fails {
                assert!(matches!(done, Err(Error::Broken(_))), "{done:?}");
                assert_eq!(status, Some(Status::Failed));
            } else {
                assert!(
                    matches!(&done, Ok(Recovered::Aborted { unfinished, removed: Some(what) })
                        if *unfinished == id && what == "removed stack fake"),
                    "{done:?}"
                );
                assert_eq!(status, Some(Status::Aborted));
                let reason = b.state.release(id).ok().flatten().and_then(|r| r.reason);
                assert!(
                    reason.is_some_and(|r| r.contains("removed stack fake")),
                    "history says what was removed"
                );
            }
        }
    }

    #[test]
    fn killed_before_rollout_changed_nothing() {
        let r = release();
        let now = running(&["sha256:old"], &["sha256:old"]);
        assert_eq!(
            decide(&journal(&[Step::Pull, Step::Pin]), &r, &now),
            Decision::Abort
        );
        assert_eq!(decide(&journal(&[]), &r, &now), Decision::Abort);
    }

    #[test]
    fn fully_rolled_out_is_verified_half_rolled_out_goes_back() {
        let r = release();
        let steps = journal(&[Step::Pull, Step::Pin, Step::Rollout, Step::Rollout]);
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
        let steps = journal(&[
            Step::Pull,
            Step::Pin,
            Step::Rollout,
            Step::Smoke,
            Step::Restore,
        ]);
        let all_new = running(&["sha256:api-new"], &["sha256:web-new"]);
        assert_eq!(decide(&steps, &r, &all_new), Decision::RollBack);
    }

    #[test]
    fn a_release_stopped_by_a_signal_goes_back_even_if_its_images_run() {
        // Issue 15: two SIGTERMs in v2's health wait; the second killed the run
        // before it journaled `restore`; v2's images run and would pass.
        let r = release();
        let all_new = running(&["sha256:api-new"], &["sha256:web-new"]);
        let steps = journal(&[
            Step::Pull,
            Step::Pin,
            Step::Rollout,
            Step::Rollout,
            Step::Interrupted,
        ]);
        assert_eq!(decide(&steps, &r, &all_new), Decision::RollBack);
        // Stopped before the rollout: nothing changed, nothing to undo.
        let early = journal(&[Step::Pull, Step::Interrupted, Step::Pin]);
        assert_eq!(decide(&early, &r, &all_new), Decision::Abort);
    }

    #[test]
    fn a_signal_after_the_commit_came_too_late_to_stop_it() {
        let r = release();
        let all_new = running(&["sha256:api-new"], &["sha256:web-new"]);
        let steps = journal(&[
            Step::Pull,
            Step::Pin,
            Step::Rollout,
            Step::Smoke,
            Step::Commit,
            Step::Interrupted,
        ]);
        assert_eq!(decide(&steps, &r, &all_new), Decision::Verify);
    }
}
