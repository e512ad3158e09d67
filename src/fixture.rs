//! Fixture images and a local registry, for `slipway demo` and the tests.
//!
//! No image can be pulled here, so slipway makes its own: a busybox root
//! filesystem imported as `slipway-fixture/busybox:1`, and small app images
//! built `FROM` it that serve `/health` and `/smoke` with busybox httpd. Each
//! build carries a nonce, so two builds never share an image ID. The registry
//! is Debian's `docker-registry` on 127.0.0.1, dying with the process that
//! started it.
//!
//! Compiled only with the `demo` feature: release builds (the .deb) leave it
//! out; tests, benches and examples get it through the dev-dependency on
//! this package, `./scripts/demo.sh` asks for it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bollard::auth::DockerCredentials;
use bollard::query_parameters::{CreateImageOptions, PushImageOptions};
use futures_util::StreamExt;

use crate::engine::Docker;
use crate::error::{Error, Result};

pub mod load;
pub mod proxy;
pub mod server;

pub const BASE_IMAGE: &str = "slipway-fixture/busybox:1";
pub const LABEL: &str = "io.slipway.fixture";

/// How a fixture app behaves once started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Serves `/health` and `/smoke`; its HEALTHCHECK passes.
    Healthy,
    /// Runs, but its HEALTHCHECK never passes (stays `starting` during its long start period).
    NeverHealthy,
    /// Exits with code 3 at start, its last line `fixture: crashing at start
    /// on purpose` (after `$APP_SECRET`, if set).
    Crash,
}

/// What serves a fixture app's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    /// busybox httpd: one answer per connection, a listen backlog of 9.
    Httpd,
    /// `fixtures/serve.rs` ([`server`]): keep-alive, a full backlog and a
    /// graceful stop, as real apps have; needs `rustc` to build.
    Serve,
}

#[derive(Debug, Clone)]
pub struct App {
    pub version: String,
    pub behaviour: Behaviour,
    /// What `/smoke` answers: `{"status":"ok"}` or `{"status":"broken"}`.
    pub smoke_ok: bool,
    /// Seconds before the server answers, as a real app boots.
    pub boot_delay: u32,
    pub server: Server,
}

impl App {
    pub fn new(version: &str) -> App {
        App {
            version: version.to_string(),
            behaviour: Behaviour::Healthy,
            smoke_ok: true,
            boot_delay: 0,
            server: Server::Httpd,
        }
    }
}

fn tar_add(
    b: &mut tar::Builder<Vec<u8>>,
    path: &str,
    data: &[u8],
    mode: u32,
) -> std::io::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(mode);
    h.set_mtime(0);
    h.set_cksum();
    b.append_data(&mut h, path, data)
}

fn nonce() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{}-{t}", std::process::id())
}

/// A root filesystem: static busybox with a link per applet, plus `files`.
fn rootfs(files: &[(&str, &[u8], u32)]) -> Result<Vec<u8>> {
    let busybox = Path::new("/bin/busybox");
    let bin = std::fs::read(busybox).map_err(|e| {
        Error::env(format!(
            "fixture images need a static busybox at /bin/busybox ({e})\n  hint: run scripts/setup.sh (installs Debian's busybox-static)"
        ))
    })?;
    let list = Command::new(busybox)
        .arg("--list")
        .output()
        .map_err(|e| Error::env(format!("cannot run /bin/busybox --list: {e}")))?;
    let build = || -> std::io::Result<Vec<u8>> {
        let mut b = tar::Builder::new(Vec::new());
        for dir in ["bin/", "tmp/", "www/", "app/", "etc/"] {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(if dir == "tmp/" { 0o1777 } else { 0o755 });
            h.set_size(0);
            h.set_cksum();
            b.append_data(&mut h, dir, std::io::empty())?;
        }
        tar_add(&mut b, "bin/busybox", &bin, 0o755)?;
        for applet in String::from_utf8_lossy(&list.stdout).lines() {
            let applet = applet.trim();
            if applet.is_empty() || applet == "busybox" || applet.contains('/') {
                continue;
            }
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            h.set_mode(0o777);
            b.append_link(&mut h, format!("bin/{applet}"), "busybox")?;
        }
        for (path, data, mode) in files {
            tar_add(&mut b, path, data, *mode)?;
        }
        b.into_inner()
    };
    build().map_err(|e| Error::env(format!("cannot build a fixture root filesystem: {e}")))
}

/// `docker import` a root filesystem as `repo:tag` with Dockerfile-style changes.
/// One layer, no build steps: a fraction of a second per image.
async fn import(
    docker: &Docker,
    repo: &str,
    tag: &str,
    tarball: Vec<u8>,
    changes: Vec<String>,
) -> Result<String> {
    let opts = CreateImageOptions {
        from_src: Some("-".into()),
        repo: Some(repo.into()),
        tag: Some(tag.into()),
        changes,
        ..Default::default()
    };
    let mut stream =
        docker
            .api()
            .create_image(Some(opts), Some(bollard::body_full(tarball.into())), None);
    while let Some(item) = stream.next().await {
        let info = item.map_err(|e| Error::env(format!("docker import {repo}:{tag}: {e}")))?;
        if let Some(err) = info.error_detail.and_then(|d| d.message) {
            return Err(Error::env(format!("docker import {repo}:{tag}: {err}")));
        }
    }
    let reference = format!("{repo}:{tag}");
    docker
        .image_id(&reference)
        .await?
        .ok_or_else(|| Error::env(format!("fixture {reference} missing after import")))
}

/// Make sure the base image exists (scripts/setup.sh makes it too).
pub async fn ensure_base(docker: &Docker) -> Result<()> {
    if docker.image_id(BASE_IMAGE).await?.is_some() {
        return Ok(());
    }
    let changes = vec![format!("LABEL {LABEL}=1"), "CMD [\"sh\"]".into()];
    let (repo, tag) = crate::config::names::split_image(BASE_IMAGE);
    import(docker, repo, tag.unwrap_or("1"), rootfs(&[])?, changes).await?;
    Ok(())
}

/// Build `app` as `repo:tag`; returns its image ID.
pub async fn build(docker: &Docker, app: &App, repo: &str, tag: &str) -> Result<String> {
    let nonce = nonce();
    let status = |ok: bool| if ok { "ok" } else { "broken" };
    let health = format!("{{\"status\":\"ok\",\"version\":\"{}\"}}\n", app.version);
    let smoke = format!(
        "{{\"status\":\"{}\",\"version\":\"{}\"}}\n",
        status(app.smoke_ok),
        app.version
    );
    let run = run_script(app);
    let check = match app.behaviour {
        Behaviour::NeverHealthy => "false".to_string(),
        _ => "wget -q -O /dev/null http://127.0.0.1:8080/health || exit 1".to_string(),
    };
    let server = match app.server {
        Server::Httpd => Vec::new(),
        Server::Serve => server::binary().await?,
    };
    let mut files: Vec<(&str, &[u8], u32)> = vec![
        ("www/health", health.as_bytes(), 0o644),
        ("www/smoke", smoke.as_bytes(), 0o644),
        ("www/version", app.version.as_bytes(), 0o644),
        ("www/nonce", nonce.as_bytes(), 0o644),
        ("app/run.sh", run.as_bytes(), 0o755),
    ];
    if app.server == Server::Serve {
        files.push(("bin/serve", &server, 0o755));
    }
    let changes = vec![
        format!(
            "LABEL {LABEL}=1 {LABEL}.version={} {LABEL}.nonce={nonce}",
            app.version
        ),
        format!(
            "HEALTHCHECK --interval=1s --timeout=3s --start-period=120s --retries=2 CMD {check}"
        ),
        "CMD [\"sh\", \"/app/run.sh\"]".into(),
    ];
    import(docker, repo, tag, rootfs(&files)?, changes).await
}

/// The container's `app/run.sh`: crash at start, or boot then serve with a
/// graceful stop.
fn run_script(app: &App) -> String {
    match app.behaviour {
        // A known last line for `--logs`; a secret given to it, as apps log
        // their config. All on stderr: the engine keeps no order between
        // a container's stdout and stderr written moments apart.
        Behaviour::Crash => "echo 'fixture: booting' >&2\n\
                             [ -z \"$APP_SECRET\" ] || echo \"fixture: APP_SECRET=$APP_SECRET\" >&2\n\
                             echo 'fixture: crashing at start on purpose' >&2\nexit 3\n"
            .to_string(),
        // A graceful stop: the server stops accepting (new connections are
        // refused) and finishes the requests in flight before the container
        // exits. The boot sleep runs in the background so a stop signal is
        // handled at once. httpd's children, one per connection, get a moment.
        _ => {
            let (serve, settle) = match app.server {
                Server::Httpd => ("httpd -f -p 8080 -h /www", "sleep 0.2"),
                Server::Serve => ("/bin/serve 8080 /www", "wait \"$pid\""),
            };
            format!(
                "stop() {{ [ -n \"$pid\" ] && kill -TERM \"$pid\" && {settle}; exit 0; }}\n\
                 trap stop TERM INT\n\
                 sleep {} & wait $!\n\
                 {serve} & pid=$!\n\
                 wait\n",
                app.boot_delay
            )
        }
    }
}

/// Push `repo:tag` to its registry.
pub async fn push(docker: &Docker, repo: &str, tag: &str) -> Result<()> {
    let opts = PushImageOptions {
        tag: Some(tag.to_string()),
        ..Default::default()
    };
    let mut stream = docker
        .api()
        .push_image(repo, Some(opts), Some(DockerCredentials::default()));
    while let Some(item) = stream.next().await {
        let info = item.map_err(|e| Error::env(format!("pushing {repo}:{tag}: {e}")))?;
        if let Some(err) = info.error_detail.and_then(|d| d.message) {
            return Err(Error::env(format!("pushing {repo}:{tag}: {err}")));
        }
    }
    Ok(())
}

/// Build, push, and drop the local tag, so a deploy really pulls it.
pub async fn publish(docker: &Docker, app: App, repo: &str, tag: &str) -> Result<String> {
    let id = build(docker, &app, repo, tag).await?;
    push(docker, repo, tag).await?;
    docker.untag(&format!("{repo}:{tag}")).await?;
    Ok(id)
}

/// The stack the demo and the integration tests deploy: `api` (published on
/// 127.0.0.1) and `web`, deployed by slipway, and `cache`, which slipway
/// never touches; two smoke checks, the second of which a `smoke_ok = false`
/// image fails.
pub struct Stack<'a> {
    pub project: &'a str,
    pub env: &'a str,
    pub api_repo: &'a str,
    pub web_repo: &'a str,
    pub port: u16,
    pub health_timeout: &'a str,
    pub keep_releases: usize,
    /// Roll `web` after `api` (a compose `depends_on`), instead of beside it.
    pub web_after_api: bool,
    /// Appended to slipway.toml.
    pub extra_config: &'a str,
}

impl Stack<'_> {
    pub fn compose_yml(&self) -> String {
        let web_deps = if self.web_after_api {
            "\n    depends_on: [api]"
        } else {
            ""
        };
        // cache sleeps in the background and `wait`s: sh runs the TERM trap
        // at once then, not after the foreground `sleep` (0.5 s per stop).
        format!(
            r#"# api and web are deployed by slipway; cache is not.
services:
  api:
    image: {api}:v1
    ports: ["127.0.0.1:{port}:8080"]
    depends_on: [cache]
  web:
    image: {web}:v1{web_deps}
  cache:
    image: {BASE_IMAGE}
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1 & wait $$!; done"]
"#,
            api = self.api_repo,
            web = self.web_repo,
            port = self.port,
        )
    }

    pub fn slipway_toml(&self) -> String {
        format!(
            r#"project = "{project}"
compose_files = ["docker-compose.yml"]

[deploy]
health_timeout = "{timeout}"
readiness_delay = "1s"
keep_releases = {keep}

[environments.{env}]
url = "http://127.0.0.1:{port}"

[services.api]
health = {{ http = "{{url}}/health", expect_json = {{ "$.status" = "ok" }} }}

[services.web]

[[smoke]]
name = "api health"
http = "{{url}}/health"
expect_json = {{ "$.status" = "ok" }}

[[smoke]]
name = "core API"
http = "{{url}}/smoke"
expect_json = {{ "$.status" = "ok" }}
{extra}"#,
            project = self.project,
            env = self.env,
            timeout = self.health_timeout,
            keep = self.keep_releases,
            port = self.port,
            extra = self.extra_config
        )
    }

    /// Write `docker-compose.yml` and `slipway.toml` into `dir`.
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("docker-compose.yml"), self.compose_yml())?;
        std::fs::write(dir.join("slipway.toml"), self.slipway_toml())
    }
}

/// Debian's `docker-registry` serving a fresh store on 127.0.0.1.
pub struct Registry {
    child: Child,
    dir: PathBuf,
    /// A mirror leaves the store to the registry that made it.
    owns_dir: bool,
    /// `127.0.0.1:PORT`
    pub addr: String,
}

pub fn free_port() -> Result<u16> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| Error::env(format!("cannot find a free port: {e}")))
}

impl Registry {
    pub fn start() -> Result<Registry> {
        let dir = std::env::temp_dir().join(format!("slipway-registry-{}", nonce()));
        Registry::serve(dir, "127.0.0.1")
    }

    /// A second registry serving this one's store on `ip` (e.g. the test
    /// hosts' network), for pulls: what is pushed here is there at once.
    pub fn mirror(&self, ip: &str) -> Result<Registry> {
        let mut m = Registry::serve(self.dir.clone(), ip)?;
        m.owns_dir = false;
        Ok(m)
    }

    fn serve(dir: PathBuf, ip: &str) -> Result<Registry> {
        let bin = ["/usr/bin/docker-registry", "/usr/sbin/docker-registry"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .unwrap_or("docker-registry");
        std::fs::create_dir_all(dir.join("store"))
            .map_err(|e| Error::env(format!("registry dir: {e}")))?;
        let port = free_port()?;
        let addr = format!("{ip}:{port}");
        let config = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n  secret: slipway-fixture-registry\n",
            dir.join("store").display()
        );
        let config_path = dir.join(format!("config-{port}.yml"));
        std::fs::File::create(&config_path)
            .and_then(|mut f| f.write_all(config.as_bytes()))
            .map_err(|e| Error::env(format!("registry config: {e}")))?;
        let log = std::fs::File::create(dir.join(format!("registry-{port}.log")))
            .map_err(|e| Error::env(format!("registry log: {e}")))?;
        let mut cmd = Command::new(bin);
        cmd.arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        // Die with the process that started us, so a killed test leaves no registry behind.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let child = cmd.spawn().map_err(|e| {
            Error::env(format!(
                "cannot start {bin}: {e}\n  hint: run scripts/setup.sh (installs Debian's docker-registry)"
            ))
        })?;
        let registry = Registry {
            child,
            dir,
            addr,
            owns_dir: true,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(&registry.addr).is_ok() {
                return Ok(registry);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(Error::env(format!(
            "registry on {} did not start",
            registry.addr
        )))
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if self.owns_dir {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
