//! A backend for unit tests of the transaction: it keeps what "runs" as a
//! map, records every operation in order, fails the operations a test names
//! (each once), and raises a signal at a named operation. The real engine is
//! tested by the integration suite; this one checks step order, undo and
//! journal for a failure at every step.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use crate::backend::compose::prune;
use crate::config::{Config, HookPoint};
use crate::engine::{Container, Health};
use crate::error::{Error, Result};
use crate::notify::Payload;
use crate::output::Printer;
use crate::probe::smoke::SuiteResult;
use crate::probe::{CheckResult, Vars};
use crate::state::{ContainerLogs, EnvLock, Release, ServiceImage, State};
use std::time::Duration;

use super::{Backend, Images, Moved, Purpose, Rollout, Session};

pub struct Fake {
    session: Session,
    /// Every operation, in order: `pull`, `roll api`, `healthy api`, …
    pub calls: Mutex<Vec<String>>,
    /// Operations to fail, each the first time it is called (`op#n`: the n-th time).
    fail: Mutex<BTreeSet<String>>,
    /// Raise a signal right after this operation.
    signal_at: Option<String>,
    /// Service → the image ID its container runs.
    pub runs: Mutex<BTreeMap<String, String>>,
    /// Image IDs present.
    pub images: Mutex<BTreeSet<String>>,
    /// `repo:tag` → image ID: the way-back names.
    pub tags: Mutex<BTreeMap<String, String>>,
    depends_on: BTreeMap<String, Vec<String>>,
}

impl std::ops::Deref for Fake {
    type Target = Session;
    fn deref(&self) -> &Session {
        &self.session
    }
}

/// The image ID a tag pulls as: `sha256:<service>-<tag>`.
pub fn image_id(svc: &str, tag: &str) -> String {
    format!("sha256:{svc}-{tag}")
}

impl Fake {
    /// `api` and `web` (web depends on api) in environment `staging`, with
    /// its state under `dir`.
    pub fn new(dir: &std::path::Path) -> Fake {
        let text = "project = \"fake\"\n[environments.staging]\n[services.api]\nimage = \"r/api\"\n[services.web]\nimage = \"r/web\"\n";
        let cfg = match Config::parse(&dir.join("slipway.toml"), text) {
            Ok(c) => c,
            Err(e) => panic!("fake config: {e}"),
        };
        let env = cfg.environments["staging"].clone();
        let state = match State::open(&dir.join(".slipway")) {
            Ok(s) => s,
            Err(e) => panic!("fake state: {e}"),
        };
        let repos = [("api", "r/api"), ("web", "r/web")]
            .map(|(s, r)| (s.to_string(), r.to_string()))
            .into();
        Fake {
            session: Session {
                cfg,
                env,
                state,
                out: Printer::new(true),
                repos,
                notify_env: BTreeMap::new(),
            },
            calls: Mutex::default(),
            fail: Mutex::default(),
            signal_at: None,
            runs: Mutex::default(),
            images: Mutex::default(),
            tags: Mutex::default(),
            depends_on: [("web".to_string(), vec!["api".to_string()])].into(),
        }
    }

    pub fn failing(self, ops: &[&str]) -> Fake {
        *lock(&self.fail) = ops.iter().map(|s| s.to_string()).collect();
        self
    }

    pub fn signal_at(mut self, op: &str) -> Fake {
        self.signal_at = Some(op.to_string());
        self
    }

    /// `api` and `web` independent: one wave.
    pub fn independent(mut self) -> Fake {
        self.depends_on.clear();
        self
    }

    pub fn forget_calls(&self) {
        lock(&self.calls).clear();
    }

    pub fn calls(&self) -> Vec<String> {
        lock(&self.calls).clone()
    }

    /// Service → image ID, as it runs now.
    pub fn running_now(&self) -> BTreeMap<String, String> {
        lock(&self.runs).clone()
    }

    /// Record `op`; Err if the test asked it to fail; raise the signal if due.
    fn call(&self, op: impl Into<String>) -> std::result::Result<(), String> {
        let op = op.into();
        let nth = {
            let mut calls = lock(&self.calls);
            calls.push(op.clone());
            calls.iter().filter(|c| **c == op).count()
        };
        if self.signal_at.as_deref() == Some(op.as_str()) {
            crate::interrupt::testing::signal();
        }
        let mut fail = lock(&self.fail);
        if fail.remove(&op) || fail.remove(&format!("{op}#{nth}")) {
            return Err(format!("{op} failed (as the test asked)"));
        }
        Ok(())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn env_err(e: String) -> Error {
    Error::env(e)
}

impl Backend for Fake {
    type Rollout<'a> = FakeRollout<'a>;
    type Lock = EnvLock;

    async fn lock(&self, command: &str, wait: Option<Duration>) -> Result<EnvLock> {
        self.lock_state(command, wait).await
    }

    fn preflight(&self) -> Result<()> {
        Ok(())
    }

    fn depends_on(&self) -> BTreeMap<String, Vec<String>> {
        self.depends_on.clone()
    }

    async fn running(&self, service: &str) -> Result<Vec<Container>> {
        Ok(lock(&self.runs)
            .get(service)
            .map(|id| Container {
                id: format!("{service}-1"),
                name: format!("fake-{service}-1"),
                service: service.to_string(),
                image: String::new(),
                image_id: id.clone(),
                state: "running".into(),
                health: Health::Healthy,
                exit_code: 0,
                restart_count: 0,
                started_at: String::new(),
                health_log: None,
            })
            .into_iter()
            .collect())
    }

    async fn pull(&self, _release: i64, refs: &BTreeMap<String, String>) -> Result<Images> {
        self.call("pull").map_err(Error::Pull)?;
        let mut images = BTreeMap::new();
        for (svc, image) in refs {
            let tag = image.rsplit(':').next().unwrap_or("");
            let id = image_id(svc, tag);
            lock(&self.images).insert(id.clone());
            images.insert(
                svc.clone(),
                ServiceImage {
                    image: image.clone(),
                    image_id: id,
                },
            );
        }
        Ok(images)
    }

    async fn has_image(&self, image: &ServiceImage) -> Result<bool> {
        Ok(lock(&self.images).contains(&image.image_id))
    }

    async fn tag_release(&self, release: i64, _images: &Images) -> Result<()> {
        self.call(format!("tag {release}")).map_err(env_err)
    }

    async fn point_way_back(&self, target: &Release) -> Result<Vec<Moved>> {
        self.call(format!("way back → {}", target.id))
            .map_err(env_err)?;
        let mut moved = Vec::new();
        for (svc, img) in &target.services {
            let name = format!("r/{svc}:rollback");
            let before = lock(&self.tags).insert(name, img.image_id.clone());
            moved.push(Moved {
                repo: format!("r/{svc}"),
                tag: "rollback".into(),
                before,
            });
        }
        Ok(moved)
    }

    async fn put_back(&self, moved: &[Moved]) {
        let _ = self.call("put back");
        for m in moved {
            let name = format!("{}:{}", m.repo, m.tag);
            match &m.before {
                Some(id) => lock(&self.tags).insert(name, id.clone()),
                None => lock(&self.tags).remove(&name),
            };
        }
    }

    async fn start_dependencies(&self, _release: i64) -> Result<()> {
        self.call("dependencies").map_err(env_err)
    }

    async fn run_hooks(
        &self,
        point: HookPoint,
        _payload: &Payload,
        _image_release: Option<i64>,
    ) -> Result<(), String> {
        self.call(format!("hooks {}", point.as_str()))
    }

    async fn prepare<'a>(
        &'a self,
        release: i64,
        images: &'a Images,
        _vars: &'a Vars,
        _purpose: Purpose,
    ) -> Result<FakeRollout<'a>, String> {
        self.call(format!("prepare {release}"))?;
        Ok(FakeRollout { fake: self, images })
    }

    async fn remove(&self, _release: i64, services: &[String]) -> Result<(), String> {
        for svc in services {
            self.call(format!("remove {svc}"))?;
            lock(&self.runs).remove(svc);
        }
        Ok(())
    }

    /// As Swarm decides: only what the release journaled creating.
    async fn discard_created(&self, release: i64) -> Result<Option<String>, String> {
        self.call(format!("discard {release}"))?;
        let journal = self.state.journal_of(release).map_err(|e| e.to_string())?;
        Ok(crate::backend::swarm::stack::created_by(&journal, "fake")
            .then(|| "removed stack fake".to_string()))
    }

    fn failure_logs(&self) -> Vec<ContainerLogs> {
        Vec::new()
    }

    async fn smoke(&self, _vars: Vars) -> SuiteResult {
        let mut check = CheckResult::new("home", "http", "{url}/".into());
        if let Err(e) = self.call("smoke") {
            check.error = Some(e);
        }
        SuiteResult::new(vec![check.judged()], std::time::Duration::ZERO)
    }

    async fn retire(&self) -> Result<usize> {
        self.call("retire").map_err(env_err)?;
        Ok(0)
    }

    async fn prune(&self, _dry_run: bool) -> Result<prune::Plan> {
        self.call("prune").map_err(env_err)?;
        Ok(prune::Plan::default())
    }
}

pub struct FakeRollout<'a> {
    fake: &'a Fake,
    images: &'a Images,
}

impl Rollout for FakeRollout<'_> {
    async fn roll(&self, service: &str) -> Result<String, String> {
        self.fake.call(format!("roll {service}"))?;
        // A roll takes time: the others of its wave run meanwhile.
        tokio::task::yield_now().await;
        lock(&self.fake.calls).push(format!("rolled {service}"));
        if let Some(img) = self.images.get(service) {
            lock(&self.fake.runs).insert(service.to_string(), img.image_id.clone());
        }
        Ok(format!("{service} rolled"))
    }

    async fn healthy(&self, service: &str) -> Result<String, String> {
        self.fake.call(format!("healthy {service}"))?;
        Ok(format!("{service} healthy"))
    }
}
