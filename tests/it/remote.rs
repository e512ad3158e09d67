//! Remote environments over SSH, against real hosts: each test brings up its
//! own network namespaces with their own dockerd and sshd
//! (scripts/hosts.sh), reaches them only through SSH, and pulls images from
//! a registry mirror on the hosts' network.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use slipway::fixture::{self, App, Registry};

use crate::harness::{runtime, Run};
use crate::lab::{registry, Host, HOSTS_DIR, LAB_IP};

const SECRET: &str = "s3cr3t-env-value-5c1f";

/// A project deployed to one remote host: the config in a temp folder (the
/// CI checkout), its project folder on the host under `<tmp>/host`.
struct Remote {
    name: String,
    dir: tempfile::TempDir,
    host: Host,
    mirror: Registry,
    health_timeout: String,
    ssh_table: String,
    /// `SLIPWAY_HEARTBEAT_TIMEOUT` for the runs (the host's silence limit; default 30 s).
    heartbeat_timeout: Option<&'static str>,
}

impl Remote {
    fn new(test: &str) -> Remote {
        let host = Host::up(test);
        let mirror = registry().mirror(LAB_IP).expect("registry mirror");
        let r = Remote {
            name: format!("slipway-r-{test}-{}", std::process::id()),
            dir: tempfile::tempdir().expect("tempdir"),
            host,
            mirror,
            health_timeout: "60s".into(),
            ssh_table: format!("config = \"{HOSTS_DIR}/ssh_config\"\n"),
            heartbeat_timeout: None,
        };
        r.write(r.dir.path(), true);
        r
    }

    fn host_dir(&self) -> PathBuf {
        self.dir.path().join("host")
    }

    /// Where the main engine pushes, and where the hosts pull the same images from.
    fn push_repo(&self, service: &str) -> String {
        format!("{}/{}/{service}", registry().addr, self.name)
    }

    fn pull_repo(&self, service: &str) -> String {
        format!("{}/{}/{service}", self.mirror.addr, self.name)
    }

    fn write(&self, dir: &Path, env_file: bool) {
        let compose = format!(
            r#"services:
  api:
    image: {api}:v1
    ports: ["127.0.0.1:8080:8080"]
    environment:
      TOKEN: "${{SECRET_TOKEN}}"
  web:
    image: {web}:v1
"#,
            api = self.pull_repo("api"),
            web = self.pull_repo("web"),
        );
        let config = format!(
            r#"project = "{name}"

[deploy]
health_timeout = "{timeout}"
readiness_delay = "1s"

[environments.test]
url = "http://127.0.0.1:8080"
env_file = ".env"
host = "ssh://{host}"
dir = "{hostdir}"

[environments.test.ssh]
{ssh}
[services.api]
health = {{ http = "{{url}}/health", expect_json = {{ "$.status" = "ok" }} }}

[services.web]

[[smoke]]
name = "core API"
http = "{{url}}/smoke"
expect_json = {{ "$.status" = "ok" }}
"#,
            name = self.name,
            timeout = self.health_timeout,
            host = self.host.name,
            hostdir = self.host_dir().display(),
            ssh = self.ssh_table,
        );
        std::fs::write(dir.join("docker-compose.yml"), compose).expect("compose");
        std::fs::write(dir.join("slipway.toml"), config).expect("config");
        if env_file {
            std::fs::write(dir.join(".env"), format!("SECRET_TOKEN={SECRET}\n")).expect("env");
        }
    }

    fn publish(&self, service: &str, tag: &str, app: App) -> String {
        runtime().block_on(async {
            let docker = slipway::engine::Docker::connect().await.expect("docker");
            fixture::ensure_base(&docker).await.expect("base image");
            fixture::publish(&docker, app, &self.push_repo(service), tag)
                .await
                .expect("publish")
        })
    }

    fn publish_good(&self, tag: &str) -> String {
        self.publish("web", tag, App::new(tag));
        self.publish("api", tag, App::new(tag))
    }

    fn command(&self, config_dir: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_slipway"));
        cmd.arg("--config")
            .arg(config_dir.join("slipway.toml"))
            .args(args);
        if let Some(t) = self.heartbeat_timeout {
            cmd.env("SLIPWAY_HEARTBEAT_TIMEOUT", t);
        }
        cmd
    }

    fn slipway_in(&self, config_dir: &Path, args: &[&str]) -> Run {
        let out = self
            .command(config_dir, args)
            .output()
            .expect("run slipway");
        Run::of(args, out)
    }

    fn slipway(&self, args: &[&str]) -> Run {
        self.slipway_in(self.dir.path(), args)
    }

    fn api(&self) -> String {
        self.host.running_image(&self.name, "api")
    }

    fn wait_until(&self, what: &str, mut f: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(180);
        while Instant::now() < deadline {
            if f() {
                return;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        panic!("timed out waiting for {what}");
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        // The host goes with its containers and images (hosts.sh down); the
        // main engine keeps only what publish left untagged.
        let (_, list) = crate::harness::docker(&["images", "--format", "{{.ID}} {{.Repository}}"]);
        let prefix = format!("{}/{}/", registry().addr, self.name);
        for line in list.lines() {
            if let Some((id, repo)) = line.split_once(' ') {
                if repo.starts_with(&prefix) {
                    let _ = crate::harness::docker(&["rmi", "--force", id]);
                }
            }
        }
    }
}

/// v1 then v2 on the host: state and way back on the host, the secret
/// nowhere else, the other commands forwarded, `rollback` by image ID; then
/// v3 failing its smoke check is restored to v1 by image ID; then
/// [`connection_problems_exit_2_and_change_nothing`].
/// (All on one host: bringing a host up is most of a remote test's cost.)
#[test]
fn remote_deploys_keep_state_on_the_host_and_secrets_out_of_output() {
    let mut r = Remote::new("rdep");
    let v1 = r.publish_good("v1");
    let v2 = r.publish_good("v2");
    assert_ne!(v1, v2);
    r.publish("web", "v3", App::new("v3"));
    let mut bad = App::new("v3");
    bad.smoke_ok = false;
    let v3 = r.publish("api", "v3", bad);

    let first = r.slipway(&["deploy", "--tag", "v1"]);
    assert_eq!(first.code, 0, "deploy v1: {}", first.stderr);
    assert_eq!(r.api(), v1);
    let second = r.slipway(&["deploy", "--tag", "v2", "--json"]);
    assert_eq!(second.code, 0, "deploy v2: {}", second.stderr);
    // The host's own engine runs v2 by ID, and its way back is v1.
    assert_eq!(r.api(), v2);
    assert_eq!(
        r.host.image_id(&format!("{}:rollback", r.pull_repo("api"))),
        v1
    );

    // Another runner: a fresh checkout of the config, no env file, no state.
    let other = tempfile::tempdir().expect("tempdir");
    r.write(other.path(), false);
    let history = r.slipway_in(other.path(), &["history", "--json"]);
    assert_eq!(history.code, 0, "history: {}", history.stderr);
    let releases = history.json();
    let tags: Vec<&str> = releases
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|r| r["tag"].as_str())
        .collect();
    assert_eq!(tags, ["v2", "v1"], "{releases}");
    assert!(
        !other.path().join(".slipway").exists(),
        "state stays on the host"
    );
    assert!(
        !r.dir.path().join(".slipway").exists(),
        "state stays on the host"
    );
    let status = r.slipway_in(other.path(), &["status"]);
    assert_eq!(status.code, 0, "status: {}", status.stderr);

    // The secret: in the env file on the host (0600) and nowhere else.
    let key = std::fs::read_to_string(format!("{HOSTS_DIR}/id_ed25519")).expect("key");
    let key_body = key.lines().nth(1).expect("key line").to_string();
    for run in [&first, &second, &history, &status] {
        for text in [&run.stdout, &run.stderr] {
            assert!(!text.contains(SECRET), "secret in output: {text}");
            assert!(!text.contains(&key_body), "key in output: {text}");
        }
    }
    let (_, found) = r.host.ssh(&format!(
        "grep -rl --exclude=*.log {SECRET} {} || true",
        r.host_dir().display()
    ));
    assert_eq!(
        found.trim(),
        r.host_dir().join(".env").display().to_string()
    );
    let (_, mode) = r
        .host
        .ssh(&format!("stat -c %a {}/.env", r.host_dir().display()));
    assert_eq!(mode, "600");

    // The other commands forward the same way.
    for args in [&["check"][..], &["smoke"], &["prune", "--dry-run"]] {
        let run = r.slipway(args);
        assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
    }
    let back = r.slipway(&["rollback"]);
    assert_eq!(back.code, 0, "rollback: {}", back.stderr);
    assert_eq!(r.api(), v1, "rolled back on the host by image ID");

    // A failing smoke check: restored by image ID.
    let run = r.slipway(&["deploy", "--tag", "v3"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(r.api(), v1, "restored by image ID, not v3 ({v3})");
    let history = r.slipway(&["history", "--json"]).json();
    assert_eq!(history[0]["status"], "rolled_back", "{history}");
    assert_eq!(history[0]["tag"], "v3", "{history}");

    connection_problems_exit_2_and_change_nothing(&mut r);
}

/// Deploy v1, then nothing changes on the host: returns the api container.
#[cfg(feature = "failpoints")]
fn deployed_v1(r: &Remote) -> String {
    r.publish_good("v1");
    assert_eq!(r.slipway(&["deploy", "--tag", "v1"]).code, 0);
    let c = r.host.containers(&r.name, "api");
    assert_eq!(c.len(), 1);
    c[0].clone()
}

fn refused(r: &Remote, run: &Run, hint: &str, api: &str) {
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains(hint), "no `{hint}` in: {}", run.stderr);
    assert_eq!(r.host.containers(&r.name, "api"), [api.to_string()]);
}

/// Connection problems refuse a deploy with exit 2 and change nothing on the
/// host: an unknown host key, a key the host does not accept, a host without
/// Compose v2, a host that is down (its sshd stopped: last, as the host stays
/// unreachable). `r` runs a release and has v2 published.
fn connection_problems_exit_2_and_change_nothing(r: &mut Remote) {
    let c = r.host.containers(&r.name, "api");
    assert_eq!(c.len(), 1);
    let api = c[0].clone();

    // Unknown host key: an empty known_hosts.
    std::fs::write(r.dir.path().join("kh"), "").expect("kh");
    r.ssh_table = format!("config = \"{HOSTS_DIR}/ssh_config\"\nknown_hosts = \"kh\"\n");
    r.write(r.dir.path(), true);
    let run = r.slipway(&["deploy", "--tag", "v2"]);
    refused(r, &run, "known_hosts", &api);

    // A key the host does not accept.
    let key = r.dir.path().join("other_key");
    let made = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .expect("ssh-keygen");
    assert!(made.success());
    // Its own ssh_config: the lab's one names the lab's key for every host.
    std::fs::write(
        r.dir.path().join("ssh_config"),
        format!(
            "Host {}\n  HostName {}\n  User root\n  UserKnownHostsFile {HOSTS_DIR}/known_hosts\n",
            r.host.name, r.host.addr
        ),
    )
    .expect("ssh_config");
    r.ssh_table = "config = \"ssh_config\"\nidentity_file = \"other_key\"\n".into();
    r.write(r.dir.path(), true);
    let run = r.slipway(&["deploy", "--tag", "v2"]);
    refused(r, &run, "identity_file", &api);
    let key_body = std::fs::read_to_string(&key).expect("key");
    assert!(!run.stderr.contains(key_body.lines().nth(1).expect("line")));

    // A host without Compose v2: its CLI plugin hidden on that host alone.
    r.ssh_table = format!("config = \"{HOSTS_DIR}/ssh_config\"\n");
    r.write(r.dir.path(), true);
    let (ok, _) = r.host.ssh(
        "mkdir -p /tmp/slw-empty && mount --bind /tmp/slw-empty /usr/libexec/docker/cli-plugins",
    );
    assert!(ok, "hide compose on the host");
    let run = r.slipway(&["deploy", "--tag", "v2"]);
    refused(r, &run, "Compose", &api);
    let (ok, _) = r.host.ssh("umount /usr/libexec/docker/cli-plugins");
    assert!(ok);

    // A host that is down: its sshd stopped.
    let (ok, _) = r
        .host
        .ssh(&format!("kill $(cat {HOSTS_DIR}/{}/sshd.pid)", r.host.name));
    let _ = ok; // the session may end with its sshd
    let run = r.slipway(&["deploy", "--tag", "v2"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("unreachable"), "{}", run.stderr);
}

/// Two controllers, one host: the second gets exit 4 and leaves the first
/// run's files alone; the first deploys v2. Then, on the same host, see
/// [`killed_host_run_needs_recover`].
/// (One host for both: bringing a host up is most of a remote test's cost.)
#[cfg(feature = "failpoints")]
#[test]
fn remote_two_controllers_one_gets_exit_4_and_a_killed_host_run_needs_recover() {
    let r = Remote::new("rlock");
    deployed_v1(&r);
    let v2 = r.publish_good("v2");
    let resume = r.dir.path().join("resume");
    let mut first = r
        .command(r.dir.path(), &["deploy", "--tag", "v2"])
        .env("SLIPWAY_PAUSE", "pin:after")
        .env("SLIPWAY_RESUME", &resume)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let stderr = first.stderr.take().expect("stderr");
    let seen = wait_for_line(stderr, "failpoint pin:after: paused");
    // A second runner, its own checkout, same host.
    let other = tempfile::tempdir().expect("tempdir");
    r.write(other.path(), true);
    // Its compose file differs: it must not replace the one the first run
    // reads for its rollout and its way back.
    let compose = other.path().join("docker-compose.yml");
    let mut text = std::fs::read_to_string(&compose).expect("compose");
    text.push_str("# the second runner's copy\n");
    std::fs::write(&compose, text).expect("compose");
    let second = r.slipway_in(other.path(), &["deploy", "--tag", "v2"]);
    assert_eq!(second.code, 4, "{}", second.stderr);
    let on_host =
        std::fs::read_to_string(r.host_dir().join("docker-compose.yml")).expect("host compose");
    assert!(!on_host.contains("second runner"), "{on_host}");
    std::fs::write(&resume, "").expect("resume");
    let status = first.wait().expect("wait");
    drop(seen);
    assert_eq!(status.code(), Some(0));
    assert_eq!(r.api(), v2);

    killed_host_run_needs_recover(&r);
}

/// The host's own slipway SIGKILLed mid-run: the kernel frees its lock, its
/// journal says unfinished, so the next deploy (from any runner) refuses
/// until `recover`, which puts the host back on the release before (v2 of
/// [`remote_two_controllers_one_gets_exit_4_and_a_killed_host_run_needs_recover`]).
#[cfg(feature = "failpoints")]
fn killed_host_run_needs_recover(r: &Remote) {
    let v2 = r.api();
    r.publish_good("v3");
    let _ = std::fs::remove_file(r.dir.path().join("resume"));
    let mut run = r
        .command(r.dir.path(), &["deploy", "--tag", "v3"])
        .env("SLIPWAY_PAUSE", "pin:after")
        .env("SLIPWAY_RESUME", r.dir.path().join("resume"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let stderr = run.stderr.take().expect("stderr");
    let reader = wait_for_line(stderr, "failpoint pin:after: paused");
    // This test's agent on the host, found by its own project folder.
    let (_, ps) = r.host.ssh("ps -eo pid=,args=");
    let marker = format!("--config {}/slipway.toml", r.host_dir().display());
    let pid = ps
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|w| {
            w.len() > 1
                && w[1].contains("/.cache/slipway/bin/slipway-")
                && w.join(" ").contains(&marker)
        })
        .map(|w| w[0])
        .expect("the agent on the host")
        .to_string();
    let (ok, _) = r.host.ssh(&format!("kill -9 {pid}"));
    assert!(ok);
    let status = run.wait().expect("wait");
    let _ = reader.join();
    assert_eq!(status.code(), Some(3));

    let other = tempfile::tempdir().expect("tempdir");
    r.write(other.path(), true);
    let refused = r.slipway_in(other.path(), &["deploy", "--tag", "v3"]);
    assert_ne!(refused.code, 0);
    assert!(
        refused.stderr.contains("slipway recover"),
        "{}",
        refused.stderr
    );
    let recover = r.slipway_in(other.path(), &["recover"]);
    assert_eq!(recover.code, 0, "{}", recover.stderr);
    assert_eq!(r.api(), v2);
    let again = r.slipway_in(other.path(), &["deploy", "--tag", "v3"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
}

/// Read `stderr` on a thread until `needle` appears; the thread keeps draining after.
fn wait_for_line(stderr: std::process::ChildStderr, needle: &str) -> std::thread::JoinHandle<()> {
    use std::io::BufRead;
    let (tx, rx) = std::sync::mpsc::channel();
    let needle = needle.to_string();
    let t = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            eprintln!("| {line}");
            if line.contains(&needle) {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(300))
        .expect("the run never reached its pause point");
    t
}

/// The controller SIGKILLed, or its SSH session killed on the host, while
/// the host's run is in its health wait: the host rolls back on its own,
/// the lock is free, and the host runs v1 with its way back intact.
#[cfg(feature = "failpoints")]
fn controller_lost(
    test: &str,
    heartbeat_timeout: Option<&'static str>,
    expected_exit: Option<i32>,
    cut: impl FnOnce(&Remote, &mut std::process::Child) -> Option<AfterExit>,
) -> Remote {
    let mut r = Remote::new(test);
    r.health_timeout = "30m".into();
    r.heartbeat_timeout = heartbeat_timeout;
    r.write(r.dir.path(), true);
    deployed_v1(&r);
    controller_lost_on(&r, ["v2", "v3"], expected_exit, cut);
    r
}

/// What a cut does once the controller has exited (e.g. bring the link back up).
#[cfg(feature = "failpoints")]
type AfterExit = Box<dyn FnOnce()>;

/// As [`controller_lost`], on `r` whose live release runs now: `tags` are
/// the never-ready release and the one deployed after the roll back.
#[cfg(feature = "failpoints")]
fn controller_lost_on(
    r: &Remote,
    [slow_tag, next_tag]: [&str; 2],
    expected_exit: Option<i32>,
    cut: impl FnOnce(&Remote, &mut std::process::Child) -> Option<AfterExit>,
) {
    let v1 = r.api();
    // The way back as it is now (none yet after a first release: then the
    // failed deploy leaves its pin on the live release).
    let rollback_ref = format!("{}:rollback", r.pull_repo("api"));
    let way_back = Some(r.host.image_id(&rollback_ref))
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| v1.clone());
    r.publish("web", slow_tag, App::new(slow_tag));
    let mut slow = App::new(slow_tag);
    slow.boot_delay = 3600;
    let v2 = r.publish("api", slow_tag, slow);
    let mut run = r
        .command(r.dir.path(), &["deploy", "--tag", slow_tag])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let stderr = run.stderr.take().expect("stderr");
    // Mid-rollout: the new api container exists and is starting.
    r.wait_until("the new api container on the host", || {
        r.host.containers(&r.name, "api").iter().any(|c| {
            r.host
                .ssh(&format!("docker inspect --format '{{{{.Image}}}}' {c}"))
                .1
                == v2
        })
    });
    let after_exit = cut(r, &mut run);
    let status = run.wait().expect("wait");
    if let Some(after) = after_exit {
        after();
    }
    let mut said = String::new();
    std::io::Read::read_to_string(&mut { stderr }, &mut said).expect("stderr");
    eprintln!("{said}");
    assert_eq!(status.code(), expected_exit, "{said}");
    if expected_exit == Some(3) {
        assert!(said.contains("rolls back on its own"), "{said}");
    }
    // The host notices, rolls back and releases the lock on its own.
    r.wait_until("the host to roll back on its own", || {
        let h = r.slipway(&["history", "--json"]);
        h.code == 0 && h.json()[0]["status"] == "rolled_back"
    });
    assert_eq!(r.api(), v1);
    assert_eq!(
        r.host.image_id(&rollback_ref),
        way_back,
        "the way back is still there"
    );
    // The lock does not block the next run.
    r.publish_good(next_tag);
    let next = r.slipway(&["deploy", "--tag", next_tag]);
    assert_eq!(next.code, 0, "{}", next.stderr);
}

/// The controller SIGKILLed (v2), then, on the same host, its SSH session
/// killed on the host (v4): each time the host rolls back on its own.
/// (One host for both: bringing a host up is most of a remote test's cost.)
#[cfg(feature = "failpoints")]
#[test]
fn remote_sigkilled_controller_or_cut_ssh_session_leaves_the_host_to_roll_back() {
    let r = controller_lost("rkill", None, None, |_, run| {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(run.id() as i32, libc::SIGKILL) };
        None
    });
    cut_ssh_session_after(&r);
}

/// The host's sshd sessions killed mid-deploy (v4 on a host running v3).
#[cfg(feature = "failpoints")]
fn cut_ssh_session_after(r: &Remote) {
    controller_lost_on(r, ["v4", "v5"], Some(3), |r, _| {
        // Kill the sshd processes serving the connection, by their IDs (the
        // listener stays): the host's side of the link is gone.
        let listener = std::fs::read_to_string(format!("{HOSTS_DIR}/{}/sshd.pid", r.host.name))
            .expect("sshd.pid");
        let l = listener.trim();
        let children =
            std::fs::read_to_string(format!("/proc/{l}/task/{l}/children")).expect("sshd children");
        let pids: Vec<i32> = children
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
        assert!(!pids.is_empty(), "no sshd session to cut");
        for pid in pids {
            // SAFETY: the host's sshd sessions, started for this test's connection.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        None
    });
}

/// Not a test: deploy wall time of one small stack, local vs over SSH, and
/// the SSH connections a remote deploy opens (sshd's "Accepted" log lines).
/// Run with scripts/bench-remote.sh.
#[test]
#[ignore = "benchmark, run by scripts/bench-remote.sh"]
fn remote_bench_local_vs_ssh() {
    let r = Remote::new("rbench");
    for tag in ["v1", "v2"] {
        r.publish_good(tag);
    }
    // The same stack on the local engine: images from the loopback registry.
    let local = tempfile::tempdir().expect("tempdir");
    let port = fixture::free_port().expect("port");
    r.write(local.path(), true);
    let compose = std::fs::read_to_string(local.path().join("docker-compose.yml"))
        .expect("compose")
        .replace(&r.mirror.addr, &registry().addr)
        .replace("127.0.0.1:8080:8080", &format!("127.0.0.1:{port}:8080"));
    std::fs::write(local.path().join("docker-compose.yml"), compose).expect("compose");
    let config = std::fs::read_to_string(local.path().join("slipway.toml"))
        .expect("config")
        .replace(
            &format!("project = \"{}\"", r.name),
            &format!("project = \"{}-local\"", r.name),
        )
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"));
    let config: String = config
        .lines()
        .filter(|l| {
            !l.starts_with("host =") && !l.starts_with("dir =") && !l.starts_with("config =")
        })
        .map(|l| format!("{l}\n"))
        .collect::<String>()
        .replace("[environments.test.ssh]\n", "");
    std::fs::write(local.path().join("slipway.toml"), config).expect("config");

    let rounds = 4;
    let time = |dir: &Path, tag: &str| {
        let started = Instant::now();
        let run = r.slipway_in(dir, &["deploy", "--tag", tag]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        started.elapsed().as_secs_f64()
    };
    let accepted = || {
        std::fs::read_to_string(format!("{HOSTS_DIR}/{}/sshd.log", r.host.name))
            .unwrap_or_default()
            .matches("Accepted publickey")
            .count()
    };
    let mut local_times = Vec::new();
    for i in 0..rounds {
        local_times.push(time(local.path(), ["v1", "v2"][i % 2]));
    }
    let before = accepted();
    let first_remote = time(r.dir.path(), "v1");
    let first_conns = accepted() - before;
    let mut remote_times = Vec::new();
    let before = accepted();
    for i in 1..=rounds {
        remote_times.push(time(r.dir.path(), ["v1", "v2"][i % 2]));
    }
    let conns = accepted() - before;
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    println!(
        "BENCH local deploy: median {:.2} s over {rounds} ({local_times:.2?})",
        median(&mut local_times.clone())
    );
    println!(
        "BENCH remote deploy (ssh): first {first_remote:.2} s (ships the binary unless the host has it; {first_conns} SSH connection(s)), \
         then median {:.2} s over {rounds} ({remote_times:.2?})",
        median(&mut remote_times.clone())
    );
    println!(
        "BENCH SSH connections per remote deploy: {:.1} ({conns} over {rounds} deploys)",
        conns as f64 / rounds as f64
    );
    let _ = Command::new("docker")
        .args([
            "compose",
            "--project-name",
            &format!("{}-local", r.name),
            "down",
            "--timeout",
            "1",
        ])
        .current_dir(local.path())
        .output();
}

/// The network to the host dropped mid-rollout (its link down, nothing
/// closed cleanly): the controller gives up after its keepalives (exit 3),
/// the host misses the heartbeat and rolls back on its own. The host's
/// silence limit is set to 10 s (`SLIPWAY_HEARTBEAT_TIMEOUT`, default 30 s)
/// so the link need not stay down for the default's 30 s.
#[cfg(feature = "failpoints")]
#[test]
fn remote_dropped_link_leaves_the_host_to_roll_back() {
    const SILENCE: Duration = Duration::from_secs(10);
    controller_lost("rlink", Some("10s"), Some(3), |r, _| {
        let link = format!("p-{}", r.host.name);
        let set = move |state: &str| {
            Command::new("ip")
                .args(["-n", "slw-sw", "link", "set", &link, state])
                .status()
                .expect("ip link")
                .success()
        };
        assert!(set("down"), "link down");
        let down = Instant::now();
        // Back once the controller has given up, and never before the
        // host's silence limit has passed (with a margin), so the test can look.
        Some(Box::new(move || {
            let limit = SILENCE + Duration::from_secs(3);
            if let Some(rest) = limit.checked_sub(down.elapsed()) {
                std::thread::sleep(rest);
            }
            eprintln!("link down for {:?}", down.elapsed());
            assert!(set("up"), "link up");
        }))
    });
}
