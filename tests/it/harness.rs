//! A test stack: a unique compose project in a temp folder, its own image
//! repositories in the shared loopback registry, and the real `slipway`
//! binary. Dropping it removes every container, network, volume and image it
//! made.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;
use slipway::fixture::{self, App, Registry};

/// One registry for the whole test binary, held by a thread that never ends
/// (the registry is tied to the life of the thread that started it).
pub fn registry() -> &'static str {
    static ADDR: OnceLock<String> = OnceLock::new();
    ADDR.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || match Registry::start() {
            Ok(r) => {
                let _ = tx.send(Ok(r.addr.clone()));
                loop {
                    std::thread::park();
                }
            }
            Err(e) => {
                let _ = tx.send(Err(e.to_string()));
            }
        });
        match rx.recv() {
            Ok(Ok(addr)) => addr,
            other => panic!("cannot start the test registry: {other:?}"),
        }
    })
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

pub fn docker(args: &[&str]) -> (bool, String) {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("docker CLI");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
    )
}

/// The image ID a reference resolves to locally.
pub fn image_id(reference: &str) -> Option<String> {
    let (ok, id) = docker(&["image", "inspect", "--format", "{{.Id}}", reference]);
    ok.then_some(id)
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// What a finished `slipway ARGS` gave back, echoed for the test's log.
    pub fn of(args: &[&str], out: std::process::Output) -> Run {
        let run = Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        eprintln!("$ slipway {}\n{}{}", args.join(" "), run.stderr, run.stdout);
        run
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }
}

pub struct Stack {
    pub name: String,
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub registry: &'static str,
    pub health_timeout: String,
    pub keep_releases: usize,
    pub extra_config: String,
    /// Where this stack's repositories live (`<registry>/<name>` unless it shares another's).
    pub repo_base: String,
}

impl Stack {
    /// `test` names the stack (and its compose project); it must be unique per test.
    pub fn new(test: &str) -> Stack {
        let registry = registry();
        let name = format!("slipway-t-{test}-{}", std::process::id());
        let stack = Stack {
            dir: tempfile::tempdir().expect("tempdir"),
            port: fixture::free_port().expect("port"),
            registry,
            health_timeout: "30s".into(),
            keep_releases: 5,
            extra_config: String::new(),
            repo_base: format!("{registry}/{name}"),
            name,
        };
        stack.write();
        stack
    }

    /// Another compose project (own folder, own history) deploying the same
    /// image repositories as `other`, as a second team would on one engine.
    pub fn sharing(test: &str, other: &Stack) -> Stack {
        let mut stack = Stack::new(test);
        stack.repo_base = other.repo_base.clone();
        stack.write();
        stack
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn config_path(&self) -> PathBuf {
        self.path().join("slipway.toml")
    }

    pub fn repo(&self, service: &str) -> String {
        format!("{}/{service}", self.repo_base)
    }

    /// (Re)write the compose file and slipway.toml from the stack's settings.
    pub fn write(&self) {
        let (api, web) = (self.repo("api"), self.repo("web"));
        fixture::Stack {
            project: &self.name,
            env: "test",
            api_repo: &api,
            web_repo: &web,
            port: self.port,
            health_timeout: &self.health_timeout,
            keep_releases: self.keep_releases,
            web_after_api: false,
            extra_config: &self.extra_config,
        }
        .write(self.path())
        .expect("stack files");
    }

    /// Build and push `service:tag`; returns the image ID a deploy must run.
    pub fn publish(&self, service: &str, tag: &str, app: App) -> String {
        let rt = runtime();
        rt.block_on(async {
            let docker = slipway::engine::Docker::connect().await.expect("docker");
            fixture::ensure_base(&docker).await.expect("base image");
            fixture::publish(&docker, app, &self.repo(service), tag)
                .await
                .expect("publish")
        })
    }

    /// Publish api and web at `tag`, both healthy; returns (api id, web id).
    pub fn publish_good(&self, tag: &str) -> (String, String) {
        (
            self.publish("api", tag, App::new(tag)),
            self.publish("web", tag, App::new(tag)),
        )
    }

    /// Run the real binary with this stack's config.
    pub fn slipway(&self, args: &[&str]) -> Run {
        self.slipway_env(args, &[])
    }

    pub fn slipway_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_slipway"));
        cmd.arg("--config").arg(self.config_path()).args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("run slipway");
        Run::of(args, out)
    }

    pub fn deploy(&self, tag: &str) -> Run {
        self.slipway(&["deploy", "--tag", tag])
    }

    pub fn compose(&self, args: &[&str]) -> (bool, String) {
        let out = Command::new("docker")
            .args(["compose", "--project-name", &self.name])
            .args(args)
            .current_dir(self.path())
            .output()
            .expect("docker compose");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Every container of a service (two while compose recreates one).
    pub fn containers(&self, service: &str) -> Vec<String> {
        let (_, ids) = docker(&[
            "ps",
            "-aq",
            "--no-trunc",
            "--filter",
            &format!("label=com.docker.compose.project={}", self.name),
            "--filter",
            &format!("label=com.docker.compose.service={service}"),
        ]);
        ids.lines().map(str::to_string).collect()
    }

    /// The container of a service (exactly one expected).
    pub fn container(&self, service: &str) -> Option<String> {
        let ids = self.containers(service);
        assert!(
            ids.len() <= 1,
            "{service}: more than one container: {ids:?}"
        );
        ids.first().cloned()
    }

    /// The image ID the service's container runs.
    pub fn running_image(&self, service: &str) -> String {
        let c = self
            .container(service)
            .unwrap_or_else(|| panic!("{service} has no container"));
        docker(&["inspect", "--format", "{{.Image}}", &c]).1
    }

    pub fn state(&self, service: &str) -> String {
        let c = self
            .container(service)
            .unwrap_or_else(|| panic!("{service} has no container"));
        docker(&["inspect", "--format", "{{.State.Status}}", &c]).1
    }

    pub fn history(&self) -> Vec<Value> {
        let run = self.slipway(&["history", "--json"]);
        assert_eq!(run.code, 0, "history: {}", run.stderr);
        run.json().as_array().cloned().expect("array")
    }

    /// Start the unmanaged `cache` service (as a team would have it running).
    pub fn start_cache(&self) -> String {
        let (ok, err) = self.compose(&["up", "--detach", "--", "cache"]);
        assert!(ok, "compose up cache: {err}");
        self.container("cache").expect("cache container")
    }

    /// Start `slipway ARGS` in the background with `env`; its stderr is
    /// collected so a test can wait for a line instead of guessing a time.
    pub fn spawn(&self, args: &[&str], env: &[(&str, &str)]) -> Background {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_slipway"));
        cmd.arg("--config").arg(self.config_path()).args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn slipway");
        let stderr = child.stderr.take().expect("stderr");
        let seen = std::sync::Arc::new((
            std::sync::Mutex::new(String::new()),
            std::sync::Condvar::new(),
        ));
        let writer = seen.clone();
        let reader = std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                let (text, cv) = &*writer;
                let mut t = text.lock().unwrap_or_else(|p| p.into_inner());
                t.push_str(&line);
                t.push('\n');
                cv.notify_all();
            }
        });
        Background {
            child,
            seen,
            reader,
        }
    }

    /// A file whose existence resumes a run held by `SLIPWAY_PAUSE` (see failpoint.rs).
    pub fn resume_file(&self) -> PathBuf {
        self.path().join("resume")
    }

    pub fn wait_until(&self, what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if f() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("timed out waiting for {what}");
    }
}

/// A slipway run in the background (see [`Stack::spawn`]).
pub struct Background {
    pub child: std::process::Child,
    seen: std::sync::Arc<(std::sync::Mutex<String>, std::sync::Condvar)>,
    reader: std::thread::JoinHandle<()>,
}

impl Background {
    /// Block until the run has printed `needle` on stderr (a generous bound
    /// only turns a hang into a failure; nothing races it).
    pub fn wait_for(&self, needle: &str) {
        let (text, cv) = &*self.seen;
        let guard = text.lock().unwrap_or_else(|p| p.into_inner());
        let (guard, timeout) = cv
            .wait_timeout_while(guard, Duration::from_secs(300), |t| !t.contains(needle))
            .unwrap_or_else(|p| p.into_inner());
        assert!(
            !timeout.timed_out(),
            "never printed {needle:?}:\n{}",
            *guard
        );
    }

    pub fn signal(&self, signal: i32) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, signal) };
    }

    /// Wait for the exit; returns the code (-1 if killed) and everything printed on stderr.
    pub fn finish(self) -> (i32, String) {
        let mut child = self.child;
        let status = child.wait().expect("wait");
        // The reader ends with the pipe, after the last line.
        let _ = self.reader.join();
        let (text, _) = &*self.seen;
        let out = text.lock().unwrap_or_else(|p| p.into_inner()).clone();
        (status.code().unwrap_or(-1), out)
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = self.compose(&["down", "--volumes", "--remove-orphans", "--timeout", "1"]);
        // Anything compose no longer knows about (e.g. created by a run killed mid-`up`).
        let (_, left) = docker(&[
            "ps",
            "-aq",
            "--filter",
            &format!("label=com.docker.compose.project={}", self.name),
        ]);
        for id in left.lines() {
            let _ = docker(&["rm", "--force", "--volumes", id]);
        }
        let (_, list) = docker(&["images", "--format", "{{.ID}} {{.Repository}}"]);
        let prefix = format!("{}/", self.repo_base);
        for line in list.lines() {
            if let Some((id, repo)) = line.split_once(' ') {
                if repo.starts_with(&prefix) {
                    let _ = docker(&["rmi", "--force", id]);
                }
            }
        }
    }
}
