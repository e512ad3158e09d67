//! One release across several hosts (`hosts = { … }`), against three real
//! hosts (network namespaces with their own dockerd and sshd): `api` on two
//! of them, `ai` on the third, reached only over SSH.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use slipway::fixture::{self, App, Registry};

use crate::harness::{runtime, Run};
use crate::lab::{registry, Host, HOSTS_DIR, LAB_IP};

struct Fleet {
    name: String,
    dir: tempfile::TempDir,
    /// a, b (api) and c (ai), in that order.
    hosts: Vec<Host>,
    mirror: Registry,
}

impl Fleet {
    fn new(test: &str) -> Fleet {
        let hosts = ["a", "b", "c"]
            .iter()
            .map(|h| Host::up(&format!("{test}{h}")))
            .collect();
        let f = Fleet {
            name: format!("slipway-f-{test}-{}", std::process::id()),
            dir: tempfile::tempdir().expect("tempdir"),
            hosts,
            mirror: registry().mirror(LAB_IP).expect("registry mirror"),
        };
        f.write(f.dir.path());
        f
    }

    fn write(&self, dir: &Path) {
        let repo = |svc: &str| format!("{}/{}/{svc}", self.mirror.addr, self.name);
        let compose = format!(
            "services:\n  api:\n    image: {}:v1\n    ports: [\"8080:8080\"]\n  ai:\n    image: {}:v1\n",
            repo("api"),
            repo("ai")
        );
        let config = format!(
            r#"project = "{name}"

[deploy]
health_timeout = "30s"
readiness_delay = "1s"

[environments.prod]
hosts = {{ a = "ssh://{a}", b = "ssh://{b}", c = "ssh://{c}" }}
dir = "/srv/{name}"
canary = 1

[environments.prod.ssh]
config = "{HOSTS_DIR}/ssh_config"

[services.api]
hosts = ["a", "b"]
health = {{ http = "http://127.0.0.1:8080/health" }}

[services.ai]
hosts = ["c"]

[[smoke]]
name = "api answers"
http = "http://{{host}}:8080/health"
hosts = ["a", "b"]

[[smoke]]
name = "core API"
http = "http://{{host}}:8080/smoke"
expect_json = {{ "$.status" = "ok" }}
hosts = ["b"]
"#,
            name = self.name,
            // Addresses, as `{host}` in a check is the host's address.
            a = self.hosts[0].addr,
            b = self.hosts[1].addr,
            c = self.hosts[2].addr,
        );
        std::fs::write(dir.join("docker-compose.yml"), compose).expect("compose");
        std::fs::write(dir.join("slipway.toml"), config).expect("config");
    }

    fn publish(&self, service: &str, tag: &str, app: App) {
        runtime().block_on(async {
            let docker = slipway::engine::Docker::connect().await.expect("docker");
            fixture::ensure_base(&docker).await.expect("base image");
            let repo = format!("{}/{}/{service}", registry().addr, self.name);
            fixture::publish(&docker, app, &repo, tag)
                .await
                .expect("publish");
        });
    }

    fn publish_good(&self, tag: &str) {
        self.publish("api", tag, App::new(tag));
        self.publish("ai", tag, App::new(tag));
    }

    fn command(&self, dir: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_slipway"));
        cmd.arg("--config").arg(dir.join("slipway.toml")).args(args);
        cmd
    }

    fn slipway_in(&self, dir: &Path, args: &[&str]) -> Run {
        Run::of(args, self.command(dir, args).output().expect("run slipway"))
    }

    fn slipway(&self, args: &[&str]) -> Run {
        self.slipway_in(self.dir.path(), args)
    }

    /// What each service runs where: `(host index, service) → image ID`.
    fn running(&self) -> Vec<(usize, &'static str, String)> {
        [(0, "api"), (1, "api"), (2, "ai")]
            .into_iter()
            .map(|(i, svc)| (i, svc, self.hosts[i].running_image(&self.name, svc)))
            .collect()
    }

    /// The image ID `tag` has on each host that runs `service`.
    fn ids(&self, tag: &str) -> Vec<(usize, &'static str, String)> {
        [(0, "api"), (1, "api"), (2, "ai")]
            .into_iter()
            .map(|(i, svc)| {
                let r = format!("{}/{}/{svc}:{tag}", self.mirror.addr, self.name);
                (i, svc, self.hosts[i].image_id(&r))
            })
            .collect()
    }

    fn history(&self) -> serde_json::Value {
        let run = self.slipway(&["history", "--json"]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        serde_json::from_str(&run.stdout).expect("history json")
    }

    fn containers(&self) -> Vec<Vec<String>> {
        [(0, "api"), (1, "api"), (2, "ai")]
            .into_iter()
            .map(|(i, svc)| self.hosts[i].containers(&self.name, svc))
            .collect()
    }

    fn kill_dockerd(&self, i: usize) {
        let pid =
            std::fs::read_to_string(format!("{HOSTS_DIR}/{}/run/docker.pid", self.hosts[i].name))
                .expect("dockerd pid");
        let ok = Command::new("kill")
            .args(["-9", pid.trim()])
            .status()
            .expect("kill");
        assert!(ok.success());
    }

    fn restart_host(&self, i: usize) {
        let (ok, out) = crate::lab::hosts_sh(&["up", &self.hosts[i].name]);
        assert!(ok, "{out}");
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
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

fn statuses(h: &serde_json::Value, id: i64) -> (String, Vec<String>) {
    let r = h
        .as_array()
        .and_then(|a| a.iter().find(|r| r["id"] == id))
        .unwrap_or_else(|| panic!("release {id} in {h}"));
    let hosts = r["hosts"]
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    (r["status"].as_str().unwrap_or_default().to_string(), hosts)
}

/// v1, v2 everywhere; v3 failing a check on the second host puts every host
/// back on v2; v4 missing for `ai` stops before anything changes anywhere.
#[test]
fn fleet_release_commits_everywhere_or_nowhere() {
    let f = Fleet::new("fl");
    for tag in ["v1", "v2", "v3"] {
        f.publish_good(tag);
    }
    let mut v3 = App::new("v3");
    v3.smoke_ok = false;
    f.publish("api", "v3", v3);

    for tag in ["v1", "v2"] {
        let run = f.slipway(&["deploy", "--tag", tag]);
        assert_eq!(run.code, 0, "deploy {tag}: {}", run.stderr);
    }
    let v2 = f.ids("v2");
    assert_eq!(
        f.running(),
        v2,
        "every container on v2's image, on its own host"
    );
    let h = f.history();
    assert_eq!(h.as_array().map(Vec::len), Some(2), "{h}");
    for id in [1, 2] {
        assert_eq!(
            statuses(&h, id),
            ("succeeded".into(), vec!["a".into(), "b".into(), "c".into()])
        );
    }

    // v3: healthy and passing on the canary (a), failing `core API` on b.
    let run = f.slipway(&["deploy", "--tag", "v3"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("core API"), "{}", run.stderr);
    assert_eq!(f.running(), v2, "every host back on v2's image IDs");
    let h = f.history();
    let r3 = h
        .as_array()
        .and_then(|a| a.iter().find(|r| r["id"] == 3))
        .cloned()
        .expect("release 3");
    assert_eq!(r3["status"], "rolled_back", "{r3}");
    let reason = r3["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("core API") && reason.contains('b'),
        "{reason}"
    );
    assert_eq!(
        r3["hosts"]["a"]["status"], "rolled_back",
        "the canary was restored too: {r3}"
    );

    // v4: api's image exists, ai's does not (c's pull fails): nothing changes anywhere.
    f.publish("api", "v4", App::new("v4"));
    let before = f.containers();
    let run = f.slipway(&["deploy", "--tag", "v4"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("host c"), "{}", run.stderr);
    assert_eq!(f.containers(), before, "no container recreated on any host");
    assert_eq!(f.running(), v2);

    // c's sshd down at preflight: exit 2 naming it, nothing changed on a or b.
    f.publish("ai", "v4", App::new("v4"));
    let sshd = std::fs::read_to_string(format!("{HOSTS_DIR}/{}/sshd.pid", f.hosts[2].name))
        .expect("sshd pid");
    let killed = Command::new("kill")
        .arg(sshd.trim())
        .status()
        .expect("kill");
    assert!(killed.success());
    let run = f.slipway(&["deploy", "--tag", "v4"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("host c"), "{}", run.stderr);
    let ab: Vec<Vec<String>> = before.into_iter().take(2).collect();
    assert_eq!(f.containers().into_iter().take(2).collect::<Vec<_>>(), ab);
}

#[cfg(feature = "failpoints")]
fn wait_for_line(
    stderr: std::process::ChildStderr,
    needle: &str,
) -> std::thread::JoinHandle<String> {
    use std::io::BufRead;
    let (tx, rx) = std::sync::mpsc::channel();
    let needle = needle.to_string();
    let t = std::thread::spawn(move || {
        let mut all = String::new();
        let mut sent = false;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            all.push_str(&line);
            all.push('\n');
            if !sent && line.contains(&needle) {
                let _ = tx.send(());
                sent = true;
            }
        }
        all
    });
    rx.recv_timeout(Duration::from_secs(120)).expect("the line");
    t
}

/// The third host's dockerd killed while the canary is switching: the other
/// two are restored and the run says which host is lost (exit 3); once its
/// dockerd is back, `recover` leaves all three on one release. Then a
/// controller SIGKILLed mid-release: `recover` from a second checkout.
#[cfg(feature = "failpoints")]
#[test]
fn fleet_host_lost_and_controller_killed_recover_to_one_release() {
    let f = Fleet::new("fk");
    for tag in ["v1", "v2", "v3"] {
        f.publish_good(tag);
    }
    let run = f.slipway(&["deploy", "--tag", "v1"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let v1 = f.ids("v1");
    let resume = f.dir.path().join("resume");

    // v2: the canary pauses after its health; c's dockerd dies meanwhile.
    let mut child = f
        .command(f.dir.path(), &["deploy", "--tag", "v2"])
        .env("SLIPWAY_PAUSE", "health:after")
        .env("SLIPWAY_RESUME", &resume)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let reader = wait_for_line(
        child.stderr.take().expect("stderr"),
        "failpoint health:after: paused",
    );
    f.kill_dockerd(2);
    std::fs::write(&resume, "").expect("resume");
    let status = child.wait().expect("wait");
    let stderr = reader.join().expect("stderr");
    assert_eq!(status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("host c"), "{stderr}");
    for i in [0, 1] {
        let id = f.hosts[i].running_image(&f.name, "api");
        assert_eq!(id, v1[i].2, "api on host {i} restored to v1");
    }
    std::fs::remove_file(&resume).expect("rm resume");
    f.restart_host(2);
    let rec = f.slipway(&["recover"]);
    assert_eq!(rec.code, 0, "{}\n{}", rec.stdout, rec.stderr);
    assert_eq!(f.running(), v1, "all three on release 1 after recover");

    // v3: the controller SIGKILLed while the canary waits; recover elsewhere.
    let mut child = f
        .command(f.dir.path(), &["deploy", "--tag", "v3"])
        .env("SLIPWAY_PAUSE", "health:after")
        .env("SLIPWAY_RESUME", &resume)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let reader = wait_for_line(
        child.stderr.take().expect("stderr"),
        "failpoint health:after: paused",
    );
    child.kill().expect("SIGKILL the controller");
    let _ = child.wait();
    std::fs::write(&resume, "").expect("resume");
    let _ = reader.join();
    let other = tempfile::tempdir().expect("tempdir");
    f.write(other.path());
    let deadline = Instant::now() + Duration::from_secs(120);
    let rec = loop {
        // The hosts notice the controller is gone and roll back on their own first.
        let rec = f.slipway_in(other.path(), &["recover"]);
        if rec.code == 0 || Instant::now() > deadline {
            break rec;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(rec.code, 0, "{}\n{}", rec.stdout, rec.stderr);
    let now = f.running();
    assert!(
        now == v1 || now == f.ids("v3"),
        "every host on one release: {now:?}"
    );
    let h = f.history();
    assert!(
        h.as_array()
            .into_iter()
            .flatten()
            .all(|r| r["status"] != "in_progress"),
        "{h}"
    );
}
