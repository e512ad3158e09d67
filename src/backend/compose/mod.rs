//! The Compose backend on one engine: `docker compose` for what Compose owns
//! (pull, up, run), the Engine API for what is read or tagged. A release's
//! images are pinned by an override file that names each service's
//! per-release tag (`release-<id>.yml` under `.slipway/<env>/`); the way back
//! is a set of tags in each repository (`pipeline::plan::Owner`); how a
//! service moves per strategy is `rollout`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::backend::tags;
use crate::config::names::split_image;
use crate::config::HookPoint;
use crate::engine::compose::pin_override;
use crate::engine::{exec, Container};
use crate::error::{Error, Result};
use crate::failpoint;
use crate::notify::Payload;

pub mod context;
pub mod dependencies;
mod gate;
pub mod hooks;
pub mod prune;
pub mod rollout;
pub mod version_cache;

use crate::probe::smoke::SuiteResult;
use crate::probe::Vars;
use crate::state::{ContainerLogs, EnvLock, Release, ServiceImage};
pub use context::Ctx;

use super::{Backend, Images, Moved, Purpose};

const PULL_TIMEOUT: Duration = Duration::from_secs(1800);
const UP_TIMEOUT: Duration = Duration::from_secs(300);

impl Backend for Ctx {
    type Rollout<'a> = rollout::Rollout<'a>;
    type Lock = EnvLock;

    async fn lock(&self, command: &str, wait: Option<Duration>) -> Result<EnvLock> {
        self.lock_state(command, wait).await
    }

    fn preflight(&self) -> Result<()> {
        rollout::refuse_unrunnable(&self.cfg, &self.model)
    }

    fn depends_on(&self) -> BTreeMap<String, Vec<String>> {
        self.model.depends_on()
    }

    async fn running(&self, service: &str) -> Result<Vec<Container>> {
        self.docker
            .containers(&self.cfg.project, Some(service))
            .await
    }

    async fn pull(&self, release: i64, refs: &BTreeMap<String, String>) -> Result<Images> {
        let file = self
            .override_path(release)
            .with_file_name(format!("pull-{release}.yml"));
        write_file(&file, &pin_override(refs, "always"))?;
        let services: Vec<String> = refs.keys().cloned().collect();
        failpoint::hit_soon("pull:during");
        let out = exec::run(&self.compose.pull(&file, &services), PULL_TIMEOUT)
            .await
            .map_err(|e| Error::Pull(format!("cannot run docker compose: {e}")))?;
        if !out.success() {
            let why = if out.timed_out {
                "timed out".to_string()
            } else {
                out.tail()
            };
            return Err(Error::Pull(format!(
                "docker compose pull {}:\n{why}\n  nothing running was changed",
                refs.values().cloned().collect::<Vec<_>>().join(" ")
            )));
        }
        let mut images = BTreeMap::new();
        for (svc, image) in refs {
            let Some(image_id) = self.docker.image_id(image).await? else {
                return Err(Error::Pull(format!(
                    "{image} is not on this host after the pull"
                )));
            };
            images.insert(
                svc.clone(),
                ServiceImage {
                    image: image.clone(),
                    image_id,
                },
            );
        }
        Ok(images)
    }

    async fn has_image(&self, image: &ServiceImage) -> Result<bool> {
        Ok(self.docker.image_id(&image.image_id).await?.is_some())
    }

    async fn tag_release(&self, release: i64, images: &Images) -> Result<()> {
        let tag = self.owner().release_tag(release);
        let tags = images.iter().map(|(svc, img)| {
            let (repo, tag) = (repo(self, svc, &img.image), &tag);
            async move { self.docker.tag(&img.image_id, &repo, tag).await }
        });
        futures_util::future::try_join_all(tags).await?;
        Ok(())
    }

    /// Its own `slipway-<project>.<env>-rollback` always; the plain
    /// `rollback_tag` (with the holder tag that says whose it is) only while
    /// it is this environment's in that repository
    /// (`tags::may_move_plain_rollback`).
    async fn point_way_back(&self, target: &Release) -> Result<Vec<Moved>> {
        let owner = self.owner();
        let engine = self.docker.images().await?;
        let history = self.state.history(&self.env.name, None)?;
        // A tag is another owner's unless namespaced ours, or a pre-namespace
        // release tag our own history wrote.
        let others = |tag: &str, id: &str| {
            tag.starts_with("slipway-")
                && !owner.owns(tag)
                && !history.iter().any(|r| {
                    tags::legacy_release_tag(&r.env, r.id) == tag
                        && r.services.values().any(|s| s.image_id == id)
                })
        };
        let mut moved = Vec::new();
        for (svc, img) in &target.services {
            let repo = repo(self, svc, &img.image);
            let in_repo: Vec<(String, String)> = engine
                .iter()
                .flat_map(|i| i.tags.iter().map(move |t| (t, &i.id)))
                .filter(|(t, _)| split_image(t).0 == repo)
                .map(|(t, id)| (split_image(t).1.unwrap_or("").to_string(), id.clone()))
                .collect();
            let mut tags = vec![owner.way_back_tag()];
            if tags::may_move_plain_rollback(&owner, &self.env.rollback_tag, &in_repo, others) {
                tags.push(self.env.rollback_tag.clone());
                tags.push(owner.holder_tag());
            }
            for tag in tags {
                let before = in_repo
                    .iter()
                    .find(|(t, _)| *t == tag)
                    .map(|(_, id)| id.clone());
                moved.push((
                    &img.image_id,
                    Moved {
                        repo: repo.clone(),
                        tag,
                        before,
                    },
                ));
            }
        }
        // Repositories are tagged at once; within one (services that share
        // it), in order, so the last service's image wins as before.
        let mut by_repo: BTreeMap<&str, Vec<(&String, &Moved)>> = BTreeMap::new();
        for (id, m) in &moved {
            by_repo.entry(m.repo.as_str()).or_default().push((id, m));
        }
        let tagging = by_repo.into_values().map(|tags| async move {
            for (id, m) in tags {
                self.docker.tag(id, &m.repo, &m.tag).await?;
            }
            Ok::<(), Error>(())
        });
        futures_util::future::try_join_all(tagging).await?;
        Ok(moved.into_iter().map(|(_, m)| m).collect())
    }

    async fn put_back(&self, moved: &[Moved]) {
        for m in moved {
            let done = match &m.before {
                Some(id) => self.docker.tag(id, &m.repo, &m.tag).await,
                None => self.docker.untag(&format!("{}:{}", m.repo, m.tag)).await,
            };
            if let Err(e) = done {
                self.out.warn(format!(
                    "could not put {}:{} back where it was: {e}",
                    m.repo, m.tag
                ));
            }
        }
    }

    async fn start_dependencies(&self, release: i64) -> Result<()> {
        dependencies::ensure(self, release).await
    }

    async fn run_hooks(
        &self,
        point: HookPoint,
        payload: &Payload,
        image_release: Option<i64>,
    ) -> Result<(), String> {
        hooks::run_point(self, &self.compose, point, payload, image_release).await
    }

    /// Pins each service to its release tag in an override file, then lets
    /// `rollout` plan the moves (compose's config hashes, networks).
    async fn prepare<'a>(
        &'a self,
        release: i64,
        images: &'a Images,
        vars: &'a Vars,
        purpose: Purpose,
    ) -> Result<rollout::Rollout<'a>, String> {
        let file = self.override_path(release);
        let release_tag = self.owner().release_tag(release);
        let pinned: BTreeMap<String, String> = images
            .iter()
            .map(|(svc, img)| {
                (
                    svc.clone(),
                    format!("{}:{release_tag}", repo(self, svc, &img.image)),
                )
            })
            .collect();
        write_file(&file, &pin_override(&pinned, "never")).map_err(|e| e.to_string())?;
        rollout::Rollout::prepare(self, &file, images, vars, purpose).await
    }

    async fn remove(&self, release: i64, services: &[String]) -> Result<(), String> {
        let file = self.override_path(release);
        for svc in services {
            let out = exec::run(&self.compose.remove(&file, svc), UP_TIMEOUT).await;
            if !out.as_ref().is_ok_and(|o| o.success()) {
                return Err(format!("{svc}: could not remove its container"));
            }
        }
        Ok(())
    }

    fn failure_logs(&self) -> Vec<ContainerLogs> {
        self.logs.drain()
    }

    async fn smoke(&self, vars: Vars) -> SuiteResult {
        self.smoke_suite(vars).run().await
    }

    async fn retire(&self) -> Result<usize> {
        rollout::retire_standby(self).await
    }

    async fn prune(&self, dry_run: bool) -> Result<prune::Plan> {
        prune::run(self, dry_run).await
    }
}

/// The repository a service's images are tagged in.
fn repo(ctx: &Ctx, svc: &str, image: &str) -> String {
    ctx.repos
        .get(svc)
        .cloned()
        .unwrap_or_else(|| split_image(image).0.to_string())
}

fn write_file(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::env(format!("cannot create {}: {e}", dir.display())))?;
    }
    std::fs::write(path, text)
        .map_err(|e| Error::env(format!("cannot write {}: {e}", path.display())))
}
