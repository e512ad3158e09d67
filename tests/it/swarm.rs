//! `backend = "swarm"` on a real three-node Swarm (network namespace hosts
//! with their own dockerd and sshd; scripts/hosts.sh), reached only over SSH
//! on the manager as a user reaches it (`host = "ssh://…"`). This kernel has
//! no IPVS, so services use `endpoint_mode: dnsrr` and host-mode ports:
//! `api` runs on every node (global) behind each node's port 18080, `web`
//! has 2 replicas rolled start-first, and `cache` is a service of the stack
//! slipway does not manage.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use slipway::fixture::{self, App, Behaviour, Registry};

use crate::harness::{runtime, Run};
use crate::lab::{hosts_sh, registry, Host, HOSTS_DIR, LAB_IP};

struct Lab {
    name: String,
    dir: tempfile::TempDir,
    /// The manager, then two workers.
    hosts: Vec<Host>,
    mirror: Registry,
}

impl Lab {
    fn up(test: &str) -> Lab {
        let hosts = Host::up_all(&[
            &format!("{test}m"),
            &format!("{test}w1"),
            &format!("{test}w2"),
        ]);
        let names: Vec<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
        let mut args = vec!["swarm"];
        args.extend(names);
        let (ok, out) = hosts_sh(&args);
        assert!(ok, "hosts.sh swarm: {out}");
        let lab = Lab {
            name: format!("slipway-s-{test}-{}", std::process::id()),
            dir: tempfile::tempdir().expect("tempdir"),
            hosts,
            mirror: registry().mirror(LAB_IP).expect("registry mirror"),
        };
        lab.write();
        lab
    }

    fn repo(&self, svc: &str) -> String {
        format!("{}/{}/{svc}", self.mirror.addr, self.name)
    }

    fn write(&self) {
        let compose = format!(
            r#"services:
  api:
    image: {api}:v1
    ports: [{{target: 8080, published: 18080, mode: host}}]
    deploy: {{mode: global, endpoint_mode: dnsrr, update_config: {{parallelism: 0}}}}
  web:
    image: {web}:v1
    deploy: {{replicas: 2, endpoint_mode: dnsrr, update_config: {{parallelism: 2}}}}
  cache:
    image: {cache}:c1
    deploy: {{replicas: 1, endpoint_mode: dnsrr, placement: {{constraints: [node.role == manager]}}}}
"#,
            api = self.repo("api"),
            web = self.repo("web"),
            cache = self.repo("cache"),
        );
        let config = format!(
            r#"project = "{name}"

[deploy]
health_timeout = "60s"

[environments.prod]
backend = "swarm"
stack = "shop"
host = "ssh://{manager}"
dir = "/srv/{name}"
url = "http://{manager}:18080"

[environments.prod.ssh]
config = "{HOSTS_DIR}/ssh_config"

[services.api]
strategy = "stop-first"

[services.web]
strategy = "start-first"

[[smoke]]
name = "api answers"
http = "{{url}}/smoke"
expect_json = {{ "$.status" = "ok" }}
"#,
            name = self.name,
            manager = self.hosts[0].addr,
        );
        let dir = self.dir.path();
        std::fs::write(dir.join("docker-compose.yml"), compose).expect("compose");
        std::fs::write(dir.join("slipway.toml"), config).expect("config");
    }

    /// Rewrite `health_timeout` (60 s, generous for a loaded machine; v5
    /// waits it out, and v7 may, so they run with shorter ones).
    fn health_timeout(&self, value: &str) {
        let path = self.dir.path().join("slipway.toml");
        let config = std::fs::read_to_string(&path).expect("config");
        let config = config
            .lines()
            .map(|l| {
                if l.starts_with("health_timeout = ") {
                    format!("health_timeout = \"{value}\"")
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(path, config + "\n").expect("config");
    }

    /// Build and push `svc:tag`; returns the digest the registry gives it.
    fn publish(&self, svc: &str, tag: &str, app: App) -> String {
        runtime().block_on(async {
            let docker = slipway::engine::Docker::connect().await.expect("docker");
            fixture::ensure_base(&docker).await.expect("base image");
            let repo = format!("{}/{}/{svc}", registry().addr, self.name);
            fixture::publish(&docker, app, &repo, tag)
                .await
                .expect("publish");
            docker
                .api()
                .inspect_registry_image(&format!("{repo}:{tag}"), None)
                .await
                .expect("digest")
                .descriptor
                .digest
                .expect("digest")
        })
    }

    fn slipway(&self, args: &[&str]) -> Run {
        let out = self.command(args).output().expect("run slipway");
        Run::of(args, out)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_slipway"));
        cmd.arg("--config")
            .arg(self.dir.path().join("slipway.toml"))
            .args(args);
        cmd
    }

    /// On the manager: `(image digest, state)` of each task Swarm wants running.
    fn tasks(&self, svc: &str) -> Vec<(String, String)> {
        let (ok, out) = self.hosts[0].ssh(&format!(
            "docker service ps -q --filter desired-state=running shop_{svc} | xargs -r docker inspect \
             --format '{{{{.Spec.ContainerSpec.Image}}}} {{{{.Status.State}}}} {{{{.NodeID}}}}'"
        ));
        assert!(ok, "service ps {svc}");
        out.lines()
            .map(|l| {
                let mut it = l.split(' ');
                let image = it.next().unwrap_or_default();
                let digest = image.rsplit_once('@').map_or("", |(_, d)| d).to_string();
                (digest, it.next().unwrap_or_default().to_string())
            })
            .collect()
    }

    /// Every task of every managed service runs `api`'s and `web`'s digest.
    fn assert_on(&self, api: &str, web: &str, what: &str) {
        self.assert_on_nodes(api, web, 3, what)
    }

    /// The same with `nodes` nodes up (`api` runs on each).
    fn assert_on_nodes(&self, api: &str, web: &str, nodes: usize, what: &str) {
        for (svc, digest, n) in [("api", api, nodes), ("web", web, 2)] {
            let tasks = self.tasks(svc);
            assert_eq!(tasks.len(), n, "{what}: {svc} tasks {tasks:?}");
            for (d, state) in &tasks {
                assert_eq!(
                    (d.as_str(), state.as_str()),
                    (digest, "running"),
                    "{what}: {svc} {tasks:?}"
                );
            }
        }
    }

    fn task_ids(&self, svc: &str) -> String {
        self.hosts[0]
            .ssh(&format!(
                "docker service ps -q --filter desired-state=running shop_{svc}"
            ))
            .1
    }

    /// On the manager: the stacks, services and stack networks there are
    /// (empty when no stack is left).
    fn stack_left(&self) -> String {
        let (ok, out) = self.hosts[0].ssh(
            "docker stack ls --format '{{.Name}}'; docker service ls --format '{{.Name}}'; \
             docker network ls --format '{{.Name}}' --filter label=com.docker.stack.namespace=shop",
        );
        assert!(ok, "stack ls: {out}");
        out.trim().to_string()
    }

    fn history(&self) -> serde_json::Value {
        let run = self.slipway(&["history", "--json"]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        serde_json::from_str(&run.stdout).expect("history json")
    }

    fn status_of(&self, id: i64) -> String {
        let h = self.history();
        h.as_array()
            .and_then(|a| a.iter().find(|r| r["id"] == id))
            .and_then(|r| r["status"].as_str())
            .unwrap_or_else(|| panic!("release {id} in {h}"))
            .to_string()
    }

    fn kill_dockerd(&self, i: usize) {
        self.hosts[i].kill_dockerd();
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        crate::lab::remove_pushed_images(&self.name);
        crate::lab::down_all(&self.hosts);
    }
}

/// A failed first deploy (killed once it created the stack, then `recover`;
/// a failing smoke test) leaves no stack; v1, v2, v3 by digest; a failing
/// smoke test, a HEALTHCHECK that never
/// passes and a crashing image each put every task back on v3's digests;
/// `rollback --to 1` goes three releases back; a worker's dockerd killed
/// mid-update ends in a release that runs on the nodes left, and says so.
#[test]
fn swarm_deploys_roll_back_by_digest_and_survive_a_dead_node() {
    let lab = Lab::up("sw");
    let cache = lab.publish("cache", "c1", App::new("c1"));
    let mut api = Vec::new();
    let mut web = Vec::new();
    for tag in ["v1", "v2", "v3"] {
        api.push(lab.publish("api", tag, App::new(tag)));
        web.push(lab.publish("web", tag, App::new(tag)));
    }
    let run = lab.slipway(&["check"]);
    assert_eq!(run.code, 0, "check: {}", run.stderr);
    assert!(run.stderr.contains("does not exist yet"), "{}", run.stderr);

    // A first deploy that fails leaves no stack behind (cache and network
    // included), so the next one creates it anew. v0 killed right after it
    // created the stack: `recover` aborts it and takes the stack down.
    let started = Instant::now();
    let mut bad = App::new("v0");
    bad.smoke_ok = false;
    lab.publish("api", "v0", bad);
    lab.publish("web", "v0", App::new("v0"));
    let out = lab
        .command(&["deploy", "--tag", "v0"])
        .env("SLIPWAY_FAILPOINT", "dependencies:after")
        .output()
        .expect("deploy v0");
    let run = Run::of(&["deploy", "--tag", "v0"], out);
    assert_eq!(
        run.code, 3,
        "killed after creating the stack: {}",
        run.stderr
    );
    assert!(
        lab.stack_left().contains("shop_cache"),
        "created before the kill"
    );
    let run = lab.slipway(&["recover"]);
    assert_eq!(run.code, 0, "recover: {}", run.stderr);
    assert!(
        run.stderr
            .contains("never reached its rollout; removed stack shop"),
        "{}",
        run.stderr
    );
    assert_eq!(lab.status_of(1), "aborted");
    assert_eq!(lab.stack_left(), "", "no stack after recover");
    // v0 again: its smoke test fails → exit 1, rolled_back, no stack.
    let run = lab.slipway(&["deploy", "--tag", "v0"]);
    assert_eq!(run.code, 1, "first deploy, smoke fails: {}", run.stderr);
    assert!(run.stderr.contains("api answers"), "{}", run.stderr);
    assert!(run.stderr.contains("removed stack shop"), "{}", run.stderr);
    assert_eq!(lab.status_of(2), "rolled_back");
    assert_eq!(lab.stack_left(), "", "no stack after a failed first deploy");
    let h = lab.history();
    for r in h.as_array().into_iter().flatten() {
        let reason = r["reason"].as_str().unwrap_or_default();
        assert!(
            reason.contains("removed stack shop"),
            "history says so: {h}"
        );
    }
    let run = lab.slipway(&["check"]);
    assert!(run.stderr.contains("does not exist yet"), "{}", run.stderr);
    eprintln!("failed first deploys: {:?}", started.elapsed());

    // v1 creates the stack (cache too); v2 and v3 update api and web only.
    let run = lab.slipway(&["deploy", "--tag", "v1"]);
    assert_eq!(run.code, 0, "deploy v1: {}", run.stderr);
    lab.assert_on(&api[0], &web[0], "v1");
    let cache_tasks = lab.task_ids("cache");
    assert!(!cache_tasks.is_empty());
    let cache_tasks_digest = lab.hosts[0].ssh("docker service inspect --format '{{.Spec.TaskTemplate.ContainerSpec.Image}}' shop_cache").1;
    assert!(cache_tasks_digest.ends_with(&cache), "{cache_tasks_digest}");
    for (i, tag) in ["v2", "v3"].iter().enumerate() {
        let run = lab.slipway(&["--timings", "deploy", "--tag", tag]);
        assert_eq!(run.code, 0, "deploy {tag}: {}", run.stderr);
        lab.assert_on(&api[i + 1], &web[i + 1], tag);
        // Per service: when it was pointed at the release, when it converged.
        let api_line = run
            .stderr
            .lines()
            .find(|l| l.trim_start().starts_with("api ") && l.contains("updated"))
            .unwrap_or_default();
        assert!(api_line.contains("converged"), "{}", run.stderr);
    }
    let h = lab.history();
    assert_eq!(h.as_array().map(Vec::len), Some(5), "{h}");
    assert_eq!(
        h[0]["services"]["api"]["image_id"],
        api[2].as_str(),
        "history holds digests: {h}"
    );

    // v4: api's smoke test fails → every task back on v3's digests, exit 1.
    let mut bad = App::new("v4");
    bad.smoke_ok = false;
    lab.publish("api", "v4", bad);
    lab.publish("web", "v4", App::new("v4"));
    let run = lab.slipway(&["deploy", "--tag", "v4"]);
    assert_eq!(run.code, 1, "smoke failure: {}", run.stderr);
    assert!(run.stderr.contains("api answers"), "{}", run.stderr);
    lab.assert_on(&api[2], &web[2], "after v4");
    assert_eq!(lab.status_of(6), "rolled_back");

    // v5: web's HEALTHCHECK never passes → back within health_timeout.
    lab.publish("api", "v5", App::new("v5"));
    let mut sick = App::new("v5");
    sick.behaviour = Behaviour::NeverHealthy;
    lab.publish("web", "v5", sick);
    lab.health_timeout("20s");
    let started = Instant::now();
    let run = lab.slipway(&["deploy", "--tag", "v5"]);
    lab.health_timeout("60s");
    assert_eq!(run.code, 1, "never healthy: {}", run.stderr);
    assert!(
        run.stderr.contains("not healthy after 20s"),
        "{}",
        run.stderr
    );
    assert!(
        started.elapsed() < Duration::from_secs(90),
        "{:?}",
        started.elapsed()
    );
    lab.assert_on(&api[2], &web[2], "after v5");
    assert_eq!(lab.status_of(7), "rolled_back");

    // v6: api crashes at start → Swarm pauses the update, slipway restores
    // at once instead of waiting out the timeout.
    let mut crash = App::new("v6");
    crash.behaviour = Behaviour::Crash;
    lab.publish("api", "v6", crash);
    lab.publish("web", "v6", App::new("v6"));
    let started = Instant::now();
    let run = lab.slipway(&["deploy", "--tag", "v6"]);
    assert_eq!(run.code, 1, "crash: {}", run.stderr);
    assert!(
        run.stderr.contains("crashing at start on purpose"),
        "the failing task's last lines: {}",
        run.stderr
    );
    // Caught when the task failed, not at health_timeout (60 s). The whole
    // run may still take a minute: when a crash-looping task stops between
    // swarmkit's look at the slot and its watch for the stop, the restored
    // stop-first task waits out swarmkit's old-task timeout (1 min) in
    // READY; seen under three test threads (docs/swarm-lab.md).
    let health_took = run
        .stderr
        .lines()
        .find(|l| l.trim_start().starts_with("✗ health"))
        .and_then(|l| {
            l.rsplit_once('(')?
                .1
                .strip_suffix("s)")?
                .parse::<f64>()
                .ok()
        })
        .unwrap_or_else(|| panic!("a failed health step with its time: {}", run.stderr));
    assert!(
        health_took < 20.0,
        "failed fast: health step {health_took} s, whole run {:?}\n{}",
        started.elapsed(),
        run.stderr
    );
    assert!(
        started.elapsed() < Duration::from_secs(20 + 90),
        "restored within swarmkit's hold: {:?}\n{}",
        started.elapsed(),
        run.stderr
    );
    lab.assert_on(&api[2], &web[2], "after v6");

    // Three releases back (v1 is release 3): deeper than `docker service
    // rollback` goes.
    let run = lab.slipway(&["rollback", "--to", "3"]);
    assert_eq!(run.code, 0, "rollback --to 3: {}", run.stderr);
    lab.assert_on(&api[0], &web[0], "rollback --to 3");

    assert_eq!(
        lab.task_ids("cache"),
        cache_tasks,
        "the unmanaged service kept its tasks"
    );

    let run = lab.slipway(&["status", "--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let status: serde_json::Value = serde_json::from_str(&run.stdout).expect("status json");
    assert_eq!(
        status["services"]["api"]["image_id"],
        api[0].as_str(),
        "{status}"
    );
    assert_eq!(
        status["tasks"]["web"].as_array().map(Vec::len),
        Some(2),
        "{status}"
    );

    // v7 with a worker's dockerd killed while the update runs. Either end
    // comes within 30 s when it comes at all (the nodes-left health and
    // the restore each took about 6 s); when web's old task lingers beside
    // the new ones, the deploy waits the whole timeout before restoring.
    lab.publish("api", "v7", App::new("v7"));
    lab.publish("web", "v7", App::new("v7"));
    lab.health_timeout("30s");
    let child = lab
        .command(&["deploy", "--tag", "v7"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("deploy v7");
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline && !lab.hosts[0].ssh("docker service inspect --format '{{.Spec.TaskTemplate.ContainerSpec.Image}}' shop_api").1.contains(":v7@") {
        std::thread::sleep(Duration::from_millis(200));
    }
    lab.kill_dockerd(2);
    let out = child.wait_with_output().expect("deploy v7 ends");
    lab.health_timeout("60s");
    let run = Run::of(&["deploy", "--tag", "v7"], out);
    assert!(
        matches!(run.code, 0 | 1),
        "completes or restores: {}",
        run.stderr
    );
    let said = if run.code == 0 {
        "on the nodes left"
    } else {
        "restored"
    };
    assert!(run.stderr.contains(said), "says which: {}", run.stderr);
    let run = lab.slipway(&["recover"]);
    assert_eq!(run.code, 0, "recover: {}", run.stderr);

    // slipway itself SIGKILLed on the manager once the tasks were healthy
    // (v8): the next deploy refuses, `recover` verifies (health, smoke) and
    // finishes it, or undoes it, on the nodes left.
    lab.publish("api", "v8", App::new("v8"));
    lab.publish("web", "v8", App::new("v8"));
    let out = lab
        .command(&["deploy", "--tag", "v8"])
        .env("SLIPWAY_FAILPOINT", "health:after")
        .output()
        .expect("deploy v8");
    let run = Run::of(&["deploy", "--tag", "v8"], out);
    assert_eq!(run.code, 3, "killed on the manager: {}", run.stderr);
    let refused = lab.slipway(&["deploy", "--tag", "v8"]);
    assert!(
        refused.stderr.contains("slipway recover"),
        "{}",
        refused.stderr
    );
    let run = lab.slipway(&["recover"]);
    assert_eq!(run.code, 0, "recover: {}", run.stderr);
    let h = lab.history();
    assert!(
        h.as_array()
            .into_iter()
            .flatten()
            .all(|r| r["status"] != "in_progress"),
        "{h}"
    );
    let live = h
        .as_array()
        .and_then(|a| a.iter().find(|r| r["status"] == "succeeded"))
        .unwrap_or_else(|| panic!("a live release in {h}"));
    let digest = |svc: &str| {
        live["services"][svc]["image_id"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    lab.assert_on_nodes(&digest("api"), &digest("web"), 2, "after recover");
    assert_eq!(
        lab.task_ids("cache"),
        cache_tasks,
        "the unmanaged service kept its tasks"
    );
    let _ = lab.history();
}
