//! What happens around a release as the transaction reaches each point: the
//! events its notification channels hear and the hooks it runs.
//!
//! A deploy announces `deploy_started`, runs `pre_deploy` hooks once its
//! images are pinned, and ends with `deploy_succeeded` + `post_deploy`, or
//! `deploy_failed` + `on_failure`. When its checks fail, it announces
//! `deploy_failed` and `rollback_started` (automatic) before the restore, and
//! ends with `rollback_succeeded` + `post_rollback` + `on_failure`, or
//! `rollback_failed` + `on_failure`. `slipway rollback` is the same with
//! `rollback_*` in place of `deploy_*`. Which event and hooks end a release
//! is a pure decision ([`aftermath`]); nothing here can fail a release
//! except a `pre_deploy` hook.

use std::collections::BTreeMap;
use std::time::Instant;

use crate::config::HookPoint;
use crate::error::{Error, Result};
use crate::notify::{Event, Notifier, Payload, ServiceRef};
use crate::state::{ContainerLogs, Kind, Release, ServiceImage, Status};

use super::request::Desired;
use crate::backend::{Backend, Session};

pub struct Lifecycle {
    notifier: Notifier,
    /// This release's event, kept current as the release goes on.
    payload: Payload,
    started: Instant,
    kind: Kind,
    /// The release live when this one started: where an automatic rollback goes.
    previous: Option<i64>,
    rolling_back: bool,
}

/// The event that ends a release and the hooks that follow it, given its
/// kind, whether its checks failed (an automatic rollback ran), and the
/// status it was recorded with.
pub fn aftermath(kind: Kind, rolled_back: bool, status: Status) -> (Event, &'static [HookPoint]) {
    use HookPoint::*;
    match (rolled_back, status, kind) {
        (true, Status::RolledBack, _) => (Event::RollbackSucceeded, &[PostRollback, OnFailure]),
        (true, _, _) => (Event::RollbackFailed, &[OnFailure]),
        (false, Status::Succeeded, Kind::Rollback) => (Event::RollbackSucceeded, &[PostRollback]),
        (false, Status::Succeeded, _) => (Event::DeploySucceeded, &[PostDeploy]),
        (false, _, Kind::Rollback) => (Event::RollbackFailed, &[OnFailure]),
        (false, _, _) => (Event::DeployFailed, &[OnFailure]),
    }
}

fn refs(images: &BTreeMap<String, ServiceImage>) -> BTreeMap<String, ServiceRef> {
    images
        .iter()
        .map(|(svc, i)| {
            (
                svc.clone(),
                ServiceRef {
                    image: i.image.clone(),
                    image_id: Some(i.image_id.clone()),
                },
            )
        })
        .collect()
}

impl Lifecycle {
    /// The release has begun: announce it.
    pub fn start(ctx: &Session, release: &Release, desired: &Desired) -> Lifecycle {
        let var = |name: &str| ctx.notify_env.get(name).cloned();
        let mut notifier = Notifier::new(&ctx.cfg.notify, &ctx.env.name, var, ctx.out);
        let first = match release.kind {
            Kind::Rollback => Event::RollbackStarted,
            _ => Event::DeployStarted,
        };
        let mut p = Payload::new(first.as_str(), &ctx.cfg.project, &ctx.env.name);
        p.release = Some(release.id);
        p.kind = Some(release.kind.as_str().to_string());
        p.tag = release.tag.clone();
        p.status = Some(release.status.as_str().to_string());
        p.commit = release.commit.clone();
        p.branch = release.branch.clone();
        p.run_url = release.run_url.clone();
        match desired {
            Desired::Pull { tag } => {
                p.services = ctx
                    .repos
                    .iter()
                    .map(|(svc, repo)| {
                        let image = format!("{repo}:{tag}");
                        (
                            svc.clone(),
                            ServiceRef {
                                image,
                                image_id: None,
                            },
                        )
                    })
                    .collect();
            }
            Desired::Restore { release: target } => {
                p.services = refs(&target.services);
                p.rollback_to = Some(target.id);
                p.automatic = Some(false);
            }
        }
        notifier.send(&p);
        Lifecycle {
            notifier,
            payload: p,
            started: Instant::now(),
            kind: release.kind,
            previous: release.previous,
            rolling_back: false,
        }
    }

    /// `pre_deploy` hooks, once the new images are pulled and pinned and
    /// before anything running changes. A failure aborts the deploy.
    pub async fn pre_deploy<B: Backend>(
        &self,
        ctx: &B,
        images: &BTreeMap<String, ServiceImage>,
    ) -> Result<()> {
        if self.kind != Kind::Deploy {
            return Ok(());
        }
        let mut p = self.payload.clone();
        p.services = refs(images);
        ctx.run_hooks(HookPoint::PreDeploy, &p, p.release)
            .await
            .map_err(|e| Error::Preflight(format!("{e}\n  nothing running was changed")))
    }

    /// The release failed its checks: say so, and that the way back is being taken.
    /// `logs`: the failing containers' last lines, for the failure event only.
    pub fn rolling_back(&mut self, release: &Release, reason: &str, logs: Vec<ContainerLogs>) {
        self.rolling_back = true;
        let failed = match self.kind {
            Kind::Rollback => Event::RollbackFailed,
            _ => Event::DeployFailed,
        };
        self.payload.services = refs(&release.services);
        self.payload.reason = Some(reason.to_string());
        self.payload.duration_s = Some(self.elapsed());
        let mut p = self.payload.with_event(failed);
        p.logs = logs;
        self.notifier.send(&p);
        let mut p = self.payload.with_event(Event::RollbackStarted);
        p.automatic = Some(true);
        p.rollback_to = self.previous;
        p.duration_s = None;
        self.notifier.send(&p);
    }

    /// The release has ended and its status is recorded: the last event,
    /// the hooks that follow it, then wait (bounded) for delivery.
    pub async fn end<B: Backend>(mut self, ctx: &B, id: i64, err: Option<&Error>) {
        let recorded = ctx.state.release(id).ok().flatten();
        let status = recorded.as_ref().map_or(Status::InProgress, |r| r.status);
        let (event, points) = aftermath(self.kind, self.rolling_back, status);
        let mut p = self.payload.with_event(event);
        p.status = Some(status.as_str().to_string());
        p.reason = recorded
            .as_ref()
            .and_then(|r| r.reason.clone())
            .or_else(|| err.map(|e| e.to_string()));
        p.duration_s = Some(self.elapsed());
        if let Some(r) = recorded.as_ref().filter(|r| !r.services.is_empty()) {
            p.services = refs(&r.services);
        }
        if self.rolling_back {
            p.automatic = Some(true);
            p.rollback_to = self.previous;
        }
        self.notifier.send(&p);
        // Service hooks run on the images now live.
        let live = match status {
            Status::Succeeded => Some(id),
            _ => self.previous,
        };
        for point in points {
            let _ = ctx.run_hooks(*point, &p, live).await;
        }
        self.notifier.finish().await;
    }

    fn elapsed(&self) -> f64 {
        (self.started.elapsed().as_secs_f64() * 10.0).round() / 10.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use HookPoint::*;

    #[test]
    fn how_a_release_ends() {
        let cases = [
            (
                Kind::Deploy,
                false,
                Status::Succeeded,
                Event::DeploySucceeded,
                vec![PostDeploy],
            ),
            (
                Kind::Deploy,
                false,
                Status::Aborted,
                Event::DeployFailed,
                vec![OnFailure],
            ),
            (
                Kind::Deploy,
                true,
                Status::RolledBack,
                Event::RollbackSucceeded,
                vec![PostRollback, OnFailure],
            ),
            (
                Kind::Deploy,
                true,
                Status::Failed,
                Event::RollbackFailed,
                vec![OnFailure],
            ),
            (
                Kind::Rollback,
                false,
                Status::Succeeded,
                Event::RollbackSucceeded,
                vec![PostRollback],
            ),
            (
                Kind::Rollback,
                false,
                Status::Aborted,
                Event::RollbackFailed,
                vec![OnFailure],
            ),
            (
                Kind::Rollback,
                true,
                Status::RolledBack,
                Event::RollbackSucceeded,
                vec![PostRollback, OnFailure],
            ),
            // The state could not be written: still a failure, never silence.
            (
                Kind::Deploy,
                false,
                Status::InProgress,
                Event::DeployFailed,
                vec![OnFailure],
            ),
        ];
        for (kind, rolled_back, status, event, points) in cases {
            let (e, p) = aftermath(kind, rolled_back, status);
            assert_eq!(
                (e, p.to_vec()),
                (event, points),
                "{kind:?} {rolled_back} {status:?}"
            );
        }
    }
}
