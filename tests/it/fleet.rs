//! One release across several hosts (`hosts = { … }`), against three real
//! hosts (network namespaces with their own dockerd and sshd): `api` on two
//! of them, `ai` on the third, reached only over SSH.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use slipway::fixture::{self, App, Registry};

use crate::harness::{runtime, Run};
use crate::lab::{registry, Host, HOSTS_DIR, LAB_IP};
use crate::notify::{Mode, Receiver};

struct Fleet {
    name: String,
    dir: tempfile::TempDir,
    /// a, b (api) and c (ai), in that order; or a, b behind a load balancer.
    hosts: Vec<Host>,
    mirror: Registry,
    layout: fn(&Fleet, &Path),
}

impl Fleet {
    fn new(test: &str) -> Fleet {
        Fleet::with(test, &["a", "b", "c"], Fleet::write_api_ai)
    }

    fn with(test: &str, letters: &[&str], layout: fn(&Fleet, &Path)) -> Fleet {
        let names: Vec<String> = letters.iter().map(|h| format!("{test}{h}")).collect();
        let hosts = Host::up_all(&names.iter().map(String::as_str).collect::<Vec<_>>());
        let f = Fleet {
            name: format!("slipway-f-{test}-{}", std::process::id()),
            dir: tempfile::tempdir().expect("tempdir"),
            hosts,
            mirror: registry().mirror(LAB_IP).expect("registry mirror"),
            layout,
        };
        f.write(f.dir.path());
        f
    }

    fn write(&self, dir: &Path) {
        (self.layout)(self, dir)
    }

    fn write_api_ai(&self, dir: &Path) {
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

[[notify.webhook]]
url_env = "SLIPWAY_T_FLEET_HOOK"

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
        self.hosts[i].kill_dockerd();
    }

    fn restart_host(&self, i: usize) {
        let (ok, out) = crate::lab::hosts_sh(&["up", &self.hosts[i].name]);
        assert!(ok, "{out}");
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        crate::lab::remove_pushed_images(&self.name);
        crate::lab::down_all(&self.hosts);
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
/// back on v2; v4 missing for `ai` stops before anything changes anywhere;
/// `rollback --to 1` puts every host on v1. With failpoints, on the same
/// hosts: see [`host_lost_and_controller_killed`]. Last, c's sshd down at
/// preflight: exit 2 naming it, nothing changed on a or b.
/// (One test, one set of three hosts: bringing hosts up is most of the cost.)
#[test]
fn fleet_release_commits_everywhere_or_nowhere() {
    let f = Fleet::new("fl");
    for tag in ["v1", "v2", "v3", "v5"] {
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
    let run = f.slipway(&["status", "--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let status: serde_json::Value = serde_json::from_str(&run.stdout).expect("status json");
    let mut placed: Vec<(String, String)> = status["services"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            (
                s["host"].as_str().unwrap_or("").into(),
                s["service"].as_str().unwrap_or("").into(),
            )
        })
        .collect();
    placed.sort();
    let want: Vec<(String, String)> = [("a", "api"), ("b", "api"), ("c", "ai")]
        .map(|(h, s)| (h.to_string(), s.to_string()))
        .to_vec();
    assert_eq!(placed, want, "{status}");
    let run = f.slipway(&["smoke"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("core API"),
        "b ran its own check: {}",
        run.stderr
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
    let receiver = Receiver::start(Mode::Ok);
    let hook = receiver.url("/hook");
    let run = Run::of(
        &["deploy"],
        f.command(f.dir.path(), &["deploy", "--tag", "v3"])
            .env("SLIPWAY_T_FLEET_HOOK", &hook)
            .output()
            .expect("run"),
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("core API"), "{}", run.stderr);
    assert!(!run.stderr.contains(&hook) && !run.stdout.contains(&hook));
    // The controller announces the release once, naming the failing host.
    let posted = receiver.bodies("/hook");
    let events: Vec<&str> = posted.iter().filter_map(|e| e["event"].as_str()).collect();
    assert_eq!(events, ["deploy_started", "deploy_failed"], "{posted:?}");
    let why = posted[1]["reason"].as_str().unwrap_or_default();
    assert!(why.contains("host b") && why.contains("core API"), "{why}");
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

    // `rollback --to 1`: two releases back, on every host, as one release.
    let run = f.slipway(&["rollback", "--to", "1"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(f.running(), f.ids("v1"));
    let h = f.history();
    assert_eq!(h[0]["kind"], "rollback", "{h}");
    assert_eq!(statuses(&h, h[0]["id"].as_i64().unwrap_or(0)).1.len(), 3);

    #[cfg(feature = "failpoints")]
    host_lost_and_controller_killed(&f);

    // c's sshd down at preflight: exit 2 naming it, nothing changed on a or b.
    let before = f.containers();
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

/// Every host on v1 (`f` as [`fleet_release_commits_everywhere_or_nowhere`]
/// leaves it after `rollback --to 1`). The third host's dockerd killed while
/// the canary is switching (v2): the other two are restored and the run says
/// which host is lost (exit 3); once its dockerd is back, `recover` leaves
/// all three on one release. Then a controller SIGKILLed mid-release (v5):
/// `recover` from a second checkout.
#[cfg(feature = "failpoints")]
fn host_lost_and_controller_killed(f: &Fleet) {
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

    // v5: the controller SIGKILLed between batches (the canary switched and
    // verified, b and c not yet); recover from a second checkout.
    let mut child = f
        .command(f.dir.path(), &["deploy", "--tag", "v5"])
        .env("SLIPWAY_PAUSE", "batch:after")
        .env("SLIPWAY_RESUME", &resume)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let reader = wait_for_line(
        child.stderr.take().expect("stderr"),
        "failpoint batch:after: paused",
    );
    let v5 = f.ids("v5");
    assert_eq!(
        f.hosts[0].running_image(&f.name, "api"),
        v5[0].2,
        "the canary switched"
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
    assert_eq!(f.running(), v1, "every host on v1 again");
    let h = f.history();
    assert!(
        h.as_array()
            .into_iter()
            .flatten()
            .all(|r| r["status"] != "in_progress"),
        "{h}"
    );
}

/// The load balancer's port on 127.0.0.1 (one per test process).
fn lb_port() -> u16 {
    static PORT: std::sync::OnceLock<u16> = std::sync::OnceLock::new();
    *PORT.get_or_init(|| fixture::free_port().expect("port"))
}

impl Fleet {
    /// Two hosts, each with `web` (start-first) behind Debian's nginx as
    /// shipped in examples/proxies; the environment's url is the balancer.
    fn write_balanced(&self, dir: &Path) {
        let repo = |svc: &str| format!("{}/{}/{svc}", self.mirror.addr, self.name);
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/proxies/nginx.conf");
        let compose = format!(
            "services:\n  proxy:\n    image: {}:v1\n    ports: [\"8080:8080\"]\n    volumes: [\"{}:/etc/nginx/nginx.conf:ro\"]\n  web:\n    image: {}:v1\n",
            repo("proxy"),
            shipped.display(),
            repo("web"),
        );
        let config = format!(
            r#"project = "{name}"

[deploy]
health_timeout = "30s"

[environments.prod]
hosts = {{ a = "ssh://{a}", b = "ssh://{b}" }}
dir = "/srv/{name}"
url = "http://127.0.0.1:{lb}"
canary = 1

[environments.prod.ssh]
config = "{HOSTS_DIR}/ssh_config"

[services.web]
strategy = "start-first"
health = {{ http = "http://{{container}}:8080/health" }}

[[smoke]]
name = "core API"
http = "http://{{host}}:8080/smoke"
expect_json = {{ "$.status" = "ok" }}
hosts = ["b"]

[[smoke]]
name = "through the balancer"
http = "{{url}}/health"
"#,
            name = self.name,
            a = self.hosts[0].addr,
            b = self.hosts[1].addr,
            lb = lb_port(),
        );
        std::fs::write(dir.join("docker-compose.yml"), compose).expect("compose");
        std::fs::write(dir.join("slipway.toml"), config).expect("config");
    }
}

/// nginx on the main engine, in the root namespace, balancing over the hosts.
struct Balancer(String);

impl Balancer {
    fn start(f: &Fleet) -> Balancer {
        let conf = f.dir.path().join("lb.conf");
        let servers: String = f
            .hosts
            .iter()
            .map(|h| format!("        server {}:8080 max_fails=0;\n", h.addr))
            .collect();
        std::fs::write(
            &conf,
            format!(
                "worker_processes 1;\npid /tmp/nginx-lb-{port}.pid;\nerror_log stderr warn;\nevents {{ worker_connections 1024; }}\nhttp {{\n    access_log off;\n    upstream hosts {{\n{servers}        keepalive 16;\n    }}\n    server {{\n        listen 127.0.0.1:{port};\n        location / {{\n            proxy_pass http://hosts;\n            proxy_connect_timeout 250ms;\n            proxy_next_upstream error timeout;\n            proxy_http_version 1.1;\n            proxy_set_header Connection \"\";\n        }}\n    }}\n}}\n",
                port = lb_port()
            ),
        )
        .expect("lb config");
        let name = format!("{}-lb", f.name);
        let (ok, out) = crate::harness::docker(&[
            "run",
            "--detach",
            "--name",
            &name,
            "--label",
            "slipway-test=fleet",
            "--network",
            "host",
            "--volume",
            &format!("{}:/etc/nginx/nginx.conf:ro", conf.display()),
            slipway::fixture::proxy::NGINX_IMAGE,
        ]);
        assert!(ok, "nginx balancer: {out}");
        Balancer(name)
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        let _ = crate::harness::docker(&["rm", "--force", &self.0]);
    }
}

/// Under steady load through a load balancer in front of two hosts, a
/// start-first deploy and a failing one rolled back on both hosts: not one
/// request fails.
#[test]
fn fleet_behind_a_load_balancer_drops_no_request() {
    let f = Fleet::with("lb", &["a", "b"], Fleet::write_balanced);
    let reg = format!("{}/{}/proxy:v1", registry().addr, f.name);
    for args in [
        &["tag", slipway::fixture::proxy::NGINX_IMAGE, reg.as_str()][..],
        &["push", reg.as_str()][..],
    ] {
        let (ok, out) = crate::harness::docker(args);
        assert!(ok, "{args:?}: {out}");
    }
    let _ = crate::harness::docker(&["rmi", &reg]);
    let app = |v: &str, ok: bool| {
        let mut a = crate::proxies::app(v, ok);
        a.boot_delay = 1;
        a
    };
    f.publish("web", "v1", app("v1", true));
    f.publish("web", "v2", app("v2", true));
    f.publish("web", "v3", app("v3", false));
    // `check` puts the project's files on every host; each host's proxy
    // runs before the first deploy, as on a real server.
    let run = f.slipway(&["check"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    for h in &f.hosts {
        let (ok, out) = h.ssh(&format!(
            "cd /srv/{n} && docker compose -p {n} up --detach --no-deps proxy 2>&1",
            n = f.name
        ));
        assert!(ok, "proxy on {}: {out}", h.name);
    }
    let _lb = Balancer::start(&f);
    let addr = format!("127.0.0.1:{}", lb_port()).parse().expect("addr");
    let ready = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(addr).is_err() && Instant::now() < ready {
        std::thread::sleep(Duration::from_millis(100));
    }
    let run = f.slipway(&["deploy", "--tag", "v1"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let mut total = 0;
    for (tag, code) in [("v2", 0), ("v3", 1)] {
        let traffic = slipway::fixture::load::Load::start(&[addr], "/health", 600, 64);
        let run = f.slipway(&["deploy", "--tag", tag]);
        // At least 5,000 requests over the two runs: keep the load on a little after.
        while traffic.count() < 2_600 {
            std::thread::sleep(Duration::from_millis(100));
        }
        let report = traffic.stop();
        eprintln!("deploy {tag} across two hosts: {}", report.summary());
        assert_eq!(run.code, code, "{}", run.stderr);
        assert_eq!(report.failed, 0, "deploy {tag}: {}", report.summary());
        total += report.sent;
    }
    assert!(total >= 5_000, "{total} requests in all");
    for h in &f.hosts {
        let v2 = h.image_id(&format!("{}/{}/web:v2", f.mirror.addr, f.name));
        assert_eq!(h.running_image(&f.name, "web"), v2, "{} back on v2", h.name);
    }
}

/// The same stack (`api` on every host, no published port) on the first `n`
/// hosts of `f`, as its own project: for the benchmark.
fn write_spread(f: &Fleet, dir: &Path, n: usize) -> String {
    let project = format!("{}-n{n}", f.name);
    let repo = format!("{}/{}/api", f.mirror.addr, f.name);
    let hosts: Vec<String> = f.hosts[..n]
        .iter()
        .enumerate()
        .map(|(i, h)| format!("h{i} = \"ssh://{}\"", h.addr))
        .collect();
    std::fs::write(
        dir.join("docker-compose.yml"),
        format!("services:\n  api:\n    image: {repo}:v1\n"),
    )
    .expect("compose");
    std::fs::write(
        dir.join("slipway.toml"),
        format!(
            "project = \"{project}\"\n\n[deploy]\nhealth_timeout = \"30s\"\n\n[environments.prod]\nhosts = {{ {} }}\ndir = \"/srv/{project}\"\nmax_parallel_hosts = 0\n\n[environments.prod.ssh]\nconfig = \"{HOSTS_DIR}/ssh_config\"\n\n[services.api]\nhealth = {{ http = \"http://{{container}}:8080/health\" }}\n",
            hosts.join(", ")
        ),
    )
    .expect("config");
    project
}

/// CPU time the whole machine (controller and every test host) spent busy.
fn machine_busy_s() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: Vec<f64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|t| t.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal: busy = all but idle and iowait.
    let busy: f64 = ticks
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .map(|(_, t)| t)
        .sum();
    busy / 100.0
}

/// Not a test: deploy wall time of one stack on 1, 2 and 3 hosts
/// (`max_parallel_hosts = 0`, no canary), median of 4 deploys each, and the
/// ratio to one host. Run with scripts/bench-fleet.sh.
#[test]
#[ignore = "benchmark, run by scripts/bench-fleet.sh"]
fn fleet_bench_one_two_three_hosts() {
    let f = Fleet::new("fb");
    for tag in ["v1", "v2"] {
        f.publish("api", tag, App::new(tag));
    }
    let mut medians = Vec::new();
    for n in 1..=3 {
        let dir = tempfile::tempdir().expect("tempdir");
        write_spread(&f, dir.path(), n);
        let first = f.slipway_in(dir.path(), &["deploy", "--tag", "v1"]);
        assert_eq!(first.code, 0, "{}", first.stderr);
        if std::env::var_os("FLEET_BENCH_SHOW").is_some() {
            let run = f.slipway_in(dir.path(), &["deploy", "--tag", "v2", "--timings"]);
            eprintln!("{}", run.stderr);
        }
        let mut busy = 0.0;
        let mut times: Vec<f64> = (0..4)
            .map(|i| {
                let (started, cpu) = (Instant::now(), machine_busy_s());
                let run = f.slipway_in(dir.path(), &["deploy", "--tag", ["v2", "v1"][i % 2]]);
                assert_eq!(run.code, 0, "{}", run.stderr);
                busy += machine_busy_s() - cpu;
                started.elapsed().as_secs_f64()
            })
            .collect();
        times.sort_by(f64::total_cmp);
        let median = (times[1] + times[2]) / 2.0;
        medians.push(median);
        println!(
            "BENCH fleet hosts={n} deploy median {median:.2}s (runs {:?}) ratio to 1 host {:.2}x; machine CPU busy {:.2}s per deploy ({:.1} of {} cores, hosts included)",
            times.iter().map(|t| format!("{t:.2}")).collect::<Vec<_>>(),
            median / medians[0],
            busy / 4.0,
            busy / times.iter().sum::<f64>(),
            std::thread::available_parallelism().map_or(1, |p| p.get()),
        );
    }
}
