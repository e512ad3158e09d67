//! The transaction over the fake backend: step order, the undo for a failure
//! at every step, a signal at every safe point, and what is journaled.
//! `api` then `web` (web depends on api): two waves.
#![allow(clippy::await_holding_lock)]

use std::sync::MutexGuard;

use crate::backend::fake::{image_id, Fake};
use crate::error::Exit;
use crate::interrupt::testing;
use crate::state::{Kind, Status};

use super::super::request::{Ci, Desired, Outcome, Request};
use super::run;

/// The interrupt flag is process-wide: one transaction test at a time.
fn serial() -> MutexGuard<'static, ()> {
    let guard = testing::LOCK.lock().unwrap_or_else(|p| p.into_inner());
    testing::reset();
    guard
}

fn deploy(tag: &str) -> Request {
    Request {
        kind: Kind::Deploy,
        desired: Desired::Pull { tag: tag.into() },
        ci: Ci::default(),
        lock_wait: None,
        junit: None,
        gate: None,
    }
}

fn exit(o: &Outcome) -> Exit {
    match &o.result {
        Ok(()) => Exit::Ok,
        Err(e) => e.exit(),
    }
}

fn status(o: &Outcome) -> Status {
    o.release.as_ref().map_or(Status::InProgress, |r| r.status)
}

fn journal(b: &Fake, o: &Outcome) -> Vec<String> {
    let id = o.release.as_ref().map_or(0, |r| r.id);
    b.state
        .journal_of(id)
        .unwrap_or_default()
        .iter()
        .map(|e| {
            if e.detail.is_empty() {
                e.step.to_string()
            } else {
                format!("{} {}", e.step, e.detail)
            }
        })
        .collect()
}

/// A fake with v1 deployed and live; the calls of that deploy forgotten.
async fn with_v1(dir: &std::path::Path, fail: &[&str]) -> Fake {
    let b = Fake::new(dir);
    let first = run(&b, deploy("v1")).await;
    assert_eq!(exit(&first), Exit::Ok, "{:?}", first.result.err());
    b.forget_calls();
    b.failing(fail)
}

fn runs(b: &Fake, tag: &str) -> bool {
    b.running_now()
        == [("api", tag), ("web", tag)]
            .map(|(s, t)| (s.to_string(), image_id(s, t)))
            .into()
}

#[tokio::test]
async fn a_deploy_runs_the_steps_in_order_and_journals_each_before_it_acts() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let b = with_v1(dir.path(), &[]).await;
    let o = run(&b, deploy("v2")).await;
    assert_eq!(exit(&o), Exit::Ok);
    assert_eq!(
        b.calls(),
        [
            "pull",
            "way back → 1",
            "tag 1",
            "tag 2",
            "dependencies",
            "hooks pre_deploy",
            "tag 2",
            "prepare 2",
            "roll api",
            "rolled api",
            "healthy api",
            "roll web",
            "rolled web",
            "healthy web",
            "smoke",
            "retire",
            "prune",
            "hooks post_deploy",
        ]
    );
    assert_eq!(
        journal(&b, &o),
        [
            "pull r/api:v2 r/web:v2",
            "pin 1",
            "rollout api",
            "health api",
            "rollout web",
            "health web",
            "smoke",
            "commit",
        ]
    );
    assert!(runs(&b, "v2"));
    assert_eq!(status(&o), Status::Succeeded);
    assert_eq!(o.release.as_ref().and_then(|r| r.previous), Some(1));
}

/// A failure before anything running changed: `aborted`, exit 2, the
/// way-back names where they were (v1, the way back from v2), v2 running.
#[tokio::test]
async fn a_failure_before_the_rollout_aborts_and_puts_the_way_back_back() {
    for step in ["pull", "way back → 2", "dependencies", "hooks pre_deploy"] {
        let _g = serial();
        let dir = tempfile::tempdir().unwrap();
        let b = with_v1(dir.path(), &[]).await;
        assert_eq!(exit(&run(&b, deploy("v2")).await), Exit::Ok);
        let way_back: std::collections::BTreeMap<String, String> = [
            ("r/api:rollback".to_string(), image_id("api", "v1")),
            ("r/web:rollback".to_string(), image_id("web", "v1")),
        ]
        .into();
        assert_eq!(*b.tags.lock().unwrap(), way_back);
        b.forget_calls();
        let b = b.failing(&[step]);
        let o = run(&b, deploy("v3")).await;
        assert_eq!(exit(&o), Exit::Usage, "{step}");
        assert_eq!(status(&o), Status::Aborted, "{step}");
        assert!(runs(&b, "v2"), "{step}: {:?}", b.running_now());
        assert_eq!(*b.tags.lock().unwrap(), way_back, "{step}");
        let calls = b.calls();
        assert!(
            !calls.iter().any(|c| c.starts_with("roll")),
            "{step}: {calls:?}"
        );
        assert!(calls.contains(&"hooks on_failure".to_string()), "{step}");
    }
}

/// A failure once something changed: v1 back by its image IDs, verified
/// healthy, `rolled_back`, exit 1; the reason names the step.
#[tokio::test]
async fn a_failure_from_the_rollout_on_restores_the_live_release() {
    for step in [
        "prepare 2",
        "roll api",
        "healthy api",
        "roll web",
        "healthy web",
        "smoke",
    ] {
        let _g = serial();
        let dir = tempfile::tempdir().unwrap();
        let b = with_v1(dir.path(), &[step]).await;
        let o = run(&b, deploy("v2")).await;
        assert_eq!(exit(&o), Exit::RolledBack, "{step}");
        assert_eq!(status(&o), Status::RolledBack, "{step}");
        assert!(runs(&b, "v1"), "{step}: {:?}", b.running_now());
        let reason = o.release.as_ref().and_then(|r| r.reason.clone());
        assert!(
            reason.as_deref().is_some_and(|r| r.contains(step)),
            "{step}: {reason:?}"
        );
        let calls = b.calls();
        let restore = calls
            .iter()
            .position(|c| c == "prepare 1")
            .unwrap_or_else(|| panic!("{step}: no restore in {calls:?}"));
        assert_eq!(
            calls[restore..restore + 7],
            [
                "prepare 1",
                "roll api",
                "rolled api",
                "healthy api",
                "roll web",
                "rolled web",
                "healthy web"
            ],
            "{step}: {calls:?}"
        );
        assert!(!calls.contains(&"retire".to_string()), "{step}");
        let j = journal(&b, &o);
        assert_eq!(
            j.last().map(String::as_str),
            Some("restore 1"),
            "{step}: {j:?}"
        );
        assert!(!j.contains(&"commit".to_string()), "{step}: {j:?}");
    }
}

/// The restore failing too: `failed`, exit 3, and the error says what runs.
#[tokio::test]
async fn a_failed_restore_is_exit_3_and_says_what_runs() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    // v2's smoke fails; restoring v1's api (the second `roll api`) fails too.
    let b = with_v1(dir.path(), &["smoke", "roll api#2"]).await;
    let o = run(&b, deploy("v2")).await;
    assert_eq!(exit(&o), Exit::Broken, "{:?}", o.result.as_ref().err());
    assert_eq!(status(&o), Status::Failed);
    let msg = o.result.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(msg.contains("what runs now:"), "{msg}");
    assert!(msg.contains("fake-api-1 runs"), "{msg}");
    assert!(msg.contains("rollback --env staging --to 1"), "{msg}");
}

/// A signal at each safe point: before the rollout it aborts (exit 2, the
/// way back put back); during it, the live release comes back (exit 1);
/// either way the journal says the operator stopped it.
#[tokio::test]
async fn a_signal_at_each_safe_point_stops_the_release() {
    for (at, want, exit_code) in [
        ("pull", Status::Aborted, Exit::RolledBack),
        ("way back → 1", Status::Aborted, Exit::RolledBack),
        ("dependencies", Status::Aborted, Exit::RolledBack),
        ("roll api", Status::RolledBack, Exit::RolledBack),
        ("healthy api", Status::RolledBack, Exit::RolledBack),
        ("healthy web", Status::RolledBack, Exit::RolledBack),
        ("smoke", Status::RolledBack, Exit::RolledBack),
    ] {
        let _g = serial();
        let dir = tempfile::tempdir().unwrap();
        let b = with_v1(dir.path(), &[]).await.signal_at(at);
        let o = run(&b, deploy("v2")).await;
        testing::reset();
        assert_eq!(status(&o), want, "{at}");
        assert_eq!(exit(&o), exit_code, "{at}");
        assert!(runs(&b, "v1"), "{at}: {:?}", b.running_now());
        let j = journal(&b, &o);
        assert!(
            j.iter().any(|e| e.starts_with("interrupted")),
            "{at}: {j:?}"
        );
        assert!(!j.contains(&"commit".to_string()), "{at}: {j:?}");
        if want == Status::Aborted {
            assert!(!b.calls().iter().any(|c| c.starts_with("roll")), "{at}");
        }
    }
}

/// After commit nothing goes back: a prune that fails is a warning.
#[tokio::test]
async fn a_failing_prune_after_commit_is_only_a_warning() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let b = with_v1(dir.path(), &["prune", "retire"]).await;
    let o = run(&b, deploy("v2")).await;
    assert_eq!(exit(&o), Exit::Ok);
    assert_eq!(status(&o), Status::Succeeded);
    assert!(runs(&b, "v2"));
}

/// A rollback runs the same steps on a recorded release's exact images,
/// without pulling.
#[tokio::test]
async fn a_rollback_is_the_same_transaction_without_a_pull() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let b = with_v1(dir.path(), &[]).await;
    assert_eq!(exit(&run(&b, deploy("v2")).await), Exit::Ok);
    let v1 = b.state.release(1).ok().flatten().expect("release 1");
    b.forget_calls();
    let o = run(
        &b,
        Request {
            kind: Kind::Rollback,
            desired: Desired::Restore {
                release: Box::new(v1),
            },
            ci: Ci::default(),
            lock_wait: None,
            junit: None,
            gate: None,
        },
    )
    .await;
    assert_eq!(exit(&o), Exit::Ok, "{:?}", o.result.err());
    assert!(runs(&b, "v1"));
    let calls = b.calls();
    assert!(!calls.contains(&"pull".to_string()), "{calls:?}");
    assert_eq!(calls.first().map(String::as_str), Some("way back → 2"));
    let j = journal(&b, &o);
    assert_eq!(j.first().map(String::as_str), Some("pin 2"), "{j:?}");
    assert!(j.contains(&"commit".to_string()));
}

/// A roll that fails does not cut off the others of its wave: a `compose up`
/// killed mid-way would leave containers half stopped for the restore.
#[tokio::test]
async fn a_failing_roll_lets_the_others_of_its_wave_finish_before_restoring() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let b = Fake::new(dir.path()).independent();
    assert_eq!(exit(&run(&b, deploy("v1")).await), Exit::Ok);
    b.forget_calls();
    let b = b.failing(&["roll api"]);
    let o = run(&b, deploy("v2")).await;
    assert_eq!(exit(&o), Exit::RolledBack);
    let calls = b.calls();
    let rolled = calls.iter().position(|c| c == "rolled web");
    let restore = calls.iter().position(|c| c == "prepare 1");
    assert!(
        rolled.is_some() && rolled < restore,
        "web's roll must end before the restore: {calls:?}"
    );
    assert!(runs(&b, "v1"), "{:?}", b.running_now());
}

/// A failed first release (nothing to go back to) removes its containers and
/// then what it created around them (a Swarm stack), after a failure from
/// the rollout on and after one before it; a release with a way back
/// restores it and discards nothing. A discard that fails is exit 3.
#[tokio::test]
async fn a_failed_first_release_discards_what_it_created_and_only_it() {
    for (step, want, exit_code) in [
        ("smoke", Status::RolledBack, Exit::RolledBack),
        ("healthy web", Status::RolledBack, Exit::RolledBack),
        ("hooks pre_deploy", Status::Aborted, Exit::Usage),
    ] {
        let _g = serial();
        let dir = tempfile::tempdir().unwrap();
        let b = Fake::new(dir.path()).failing(&[step]);
        let o = run(&b, deploy("v1")).await;
        assert_eq!((status(&o), exit(&o)), (want, exit_code), "{step}");
        assert!(b.running_now().is_empty(), "{step}: {:?}", b.running_now());
        let calls = b.calls();
        let discard = calls.iter().position(|c| c == "discard 1");
        assert!(discard.is_some(), "{step}: {calls:?}");
        // After the containers are gone (the ones it started, if any).
        let removed = calls.iter().rposition(|c| c.starts_with("remove "));
        assert!(removed < discard, "{step}: {calls:?}");
    }

    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let b = with_v1(dir.path(), &["smoke"]).await;
    let o = run(&b, deploy("v2")).await;
    assert_eq!(exit(&o), Exit::RolledBack);
    assert!(runs(&b, "v1"));
    let calls = b.calls();
    assert!(!calls.iter().any(|c| c.starts_with("discard")), "{calls:?}");
    drop(_g);

    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let b = Fake::new(dir.path()).failing(&["hooks pre_deploy", "discard 1"]);
    let o = run(&b, deploy("v1")).await;
    assert_eq!(exit(&o), Exit::Broken, "{:?}", o.result.as_ref().err());
    assert_eq!(status(&o), Status::Failed);
    let msg = o.result.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(msg.contains("could not be removed"), "{msg}");
}
