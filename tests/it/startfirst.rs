//! start-first behind a reverse proxy on the compose network: zero failed
//! requests under load during a deploy and during a rollback, the warm
//! standby that makes the way back instant, replicas rolled one by one, and
//! services that cannot run two copies refused before anything changes.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use slipway::fixture::load::Load;
use slipway::fixture::{self, App};

use crate::harness::{docker, runtime, Stack};

/// The fixture proxy image, built once per machine.
pub fn proxy_image() -> String {
    runtime().block_on(async {
        let docker = slipway::engine::Docker::connect().await.expect("docker");
        fixture::ensure_base(&docker).await.expect("base image");
        fixture::proxy::image(&docker).await.expect("proxy image")
    })
}

/// A stack where traffic reaches `web` only through the proxy on the stack's
/// port; `web` runs `replicas` copies and rolls with `strategy`.
fn proxied_stack(test: &str, strategy: &str, replicas: usize) -> Stack {
    proxied_stack_with(test, strategy, replicas, "", "")
}

/// The same, with extra lines for `web` in compose and in slipway.toml
/// (appended to its entries, so they may also start another service or
/// table); `{repos}` in the compose lines is where the stack's repositories are.
fn proxied_stack_with(
    test: &str,
    strategy: &str,
    replicas: usize,
    web_compose: &str,
    web_config: &str,
) -> Stack {
    let stack = Stack::new(test);
    let compose = format!(
        r#"services:
  proxy:
    image: {proxy}
    command: ["8080=web:8080"]
    ports: ["127.0.0.1:{port}:8080"]
  web:
    image: {web}:v1
    deploy:
      replicas: {replicas}
{web_compose}"#,
        proxy = proxy_image(),
        port = stack.port,
        web = stack.repo("web"),
        web_compose = web_compose.replace("{repos}", stack.repo("").trim_end_matches('/')),
    );
    let config = format!(
        r#"project = "{name}"
compose_files = ["docker-compose.yml"]

[deploy]
health_timeout = "30s"

[environments.test]
url = "http://127.0.0.1:{port}"

[services.web]
strategy = "{strategy}"
{web_config}

[[smoke]]
name = "core API"
http = "{{url}}/smoke"
expect_json = {{ "$.status" = "ok" }}
"#,
        name = stack.name,
        port = stack.port,
    );
    std::fs::write(stack.path().join("docker-compose.yml"), compose).expect("compose file");
    std::fs::write(stack.config_path(), config).expect("config");
    let (ok, err) = stack.compose(&["up", "--detach", "--", "proxy"]);
    assert!(ok, "proxy: {err}");
    stack
}

/// A web app that takes a second to boot, as real ones do.
fn app(version: &str, smoke_ok: bool) -> App {
    let mut a = App::new(version);
    a.boot_delay = 1;
    a.smoke_ok = smoke_ok;
    a
}

/// Every container of `service`: (id, image id, networks it is on).
fn containers(stack: &Stack, service: &str) -> Vec<(String, String, String)> {
    let (_, ids) = docker(&[
        "ps",
        "-aq",
        "--no-trunc",
        "--filter",
        &format!("label=com.docker.compose.project={}", stack.name),
        "--filter",
        &format!("label=com.docker.compose.service={service}"),
    ]);
    ids.lines()
        .map(|id| {
            let (_, image) = docker(&["inspect", "--format", "{{.Image}}", id]);
            let (_, nets) = docker(&[
                "inspect",
                "--format",
                "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}",
                id,
            ]);
            (id.to_string(), image, nets.trim().to_string())
        })
        .collect()
}

fn load(stack: &Stack, rate: u32) -> Load {
    let addr = format!("127.0.0.1:{}", stack.port).parse().expect("addr");
    Load::start(&[addr], "/health", rate, 32)
}

#[test]
fn start_first_deploys_and_rolls_back_with_zero_failed_requests() {
    let stack = proxied_stack("sf-zero", "start-first", 1);
    stack.publish("web", "v1", app("v1", true));
    let v2 = stack.publish("web", "v2", app("v2", true));
    stack.publish("web", "v3", app("v3", false));
    assert_eq!(stack.deploy("v1").code, 0);

    let traffic = load(&stack, 200);
    let run = stack.deploy("v2");
    let report = traffic.stop();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(report.failed, 0, "deploy: {}", report.summary());
    assert!(report.sent >= 200, "too little load: {}", report.summary());
    // One container left, on v2, in rotation: the old one was removed at commit.
    let web = containers(&stack, "web");
    assert_eq!(web.len(), 1, "{web:?}");
    assert_eq!(web[0].1, v2);
    assert!(web[0].2.contains("_default"), "{web:?}");
    let v2_container = web[0].0.clone();

    // v3's smoke test fails: the v2 container, kept warm off the network, comes back.
    let traffic = load(&stack, 200);
    let run = stack.deploy("v3");
    let report = traffic.stop();
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(report.failed, 0, "rollback: {}", report.summary());
    let web = containers(&stack, "web");
    assert_eq!(web.len(), 1, "{web:?}");
    assert_eq!(web[0].1, v2);
    assert_eq!(
        web[0].0, v2_container,
        "the way back reused the warm container instead of booting a new one"
    );
    let h = stack.history();
    assert_eq!(h[0]["status"], "rolled_back");
    assert_eq!(h[1]["status"], "succeeded");

    // A manual rollback to v1 is start-first too: no request fails.
    let traffic = load(&stack, 200);
    let run = stack.slipway(&["rollback"]);
    let report = traffic.stop();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(report.failed, 0, "manual rollback: {}", report.summary());
    assert_eq!(containers(&stack, "web").len(), 1);
}

#[test]
fn a_container_http_probe_checks_the_new_container_not_the_proxy() {
    // No HEALTHCHECK; readiness is an HTTP probe of each new container.
    let stack = proxied_stack_with(
        "sf-probe",
        "start-first",
        1,
        "    healthcheck:\n      disable: true\n",
        "health = { http = \"http://{container}:8080/health\", expect_json = { \"$.status\" = \"ok\" } }",
    );
    let config = std::fs::read_to_string(stack.config_path()).expect("config");
    std::fs::write(
        stack.config_path(),
        config.replace("health_timeout = \"30s\"", "health_timeout = \"4s\""),
    )
    .expect("config");
    let v1 = stack.publish("web", "v1", app("v1", true));
    let v2 = stack.publish("web", "v2", app("v2", true));
    // v3 would answer only after a minute: through the proxy the old v2
    // container keeps answering /health, but v3's own container never does.
    let mut slow = app("v3", true);
    slow.boot_delay = 60;
    stack.publish("web", "v3", slow);
    assert_eq!(stack.deploy("v1").code, 0);
    let run = stack.deploy("v2");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(containers(&stack, "web")[0].1, v2);

    let run = stack.deploy("v3");
    assert_eq!(run.code, 1, "{}", run.stderr);
    let h = stack.history();
    let reason = h[0]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("not healthy within health_timeout 4s") && reason.contains(":8080/health"),
        "{reason}"
    );
    let web = containers(&stack, "web");
    assert_eq!(web.len(), 1, "the slow container was removed: {web:?}");
    assert_eq!(web[0].1, v2);
    assert_ne!(web[0].1, v1);
}

#[test]
fn stop_first_behind_the_same_proxy_drops_requests() {
    // The control for the test above: the load generator does see downtime.
    let stack = proxied_stack("sf-control", "stop-first", 1);
    stack.publish("web", "v1", app("v1", true));
    let v2 = stack.publish("web", "v2", app("v2", true));
    assert_eq!(stack.deploy("v1").code, 0);
    let traffic = load(&stack, 200);
    let run = stack.deploy("v2");
    let report = traffic.stop();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(report.failed > 0, "{}", report.summary());
    assert_eq!(containers(&stack, "web")[0].1, v2);
}

#[test]
fn replicas_are_rolled_one_by_one() {
    let stack = proxied_stack("sf-replicas", "start-first", 3);
    stack.publish("web", "v1", app("v1", true));
    let v2 = stack.publish("web", "v2", app("v2", true));
    assert_eq!(stack.deploy("v1").code, 0);
    assert_eq!(containers(&stack, "web").len(), 3);

    // Watch the containers in rotation (on a network) while v2 rolls out.
    let watching = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let watcher = {
        let watching = watching.clone();
        let name = stack.name.clone();
        std::thread::spawn(move || {
            let (mut most, mut fewest) = (0, usize::MAX);
            let mut seen = BTreeSet::new();
            while watching.load(std::sync::atomic::Ordering::Relaxed) {
                let (_, list) = docker(&[
                    "ps",
                    "--format",
                    "{{.ID}} {{.Networks}}",
                    "--filter",
                    &format!("label=com.docker.compose.project={name}"),
                    "--filter",
                    "label=com.docker.compose.service=web",
                ]);
                let serving = list
                    .lines()
                    .filter(|l| l.split_whitespace().nth(1).is_some())
                    .count();
                most = most.max(serving);
                fewest = fewest.min(serving);
                seen.extend(
                    list.lines()
                        .filter_map(|l| l.split_whitespace().next())
                        .map(str::to_string),
                );
                std::thread::sleep(Duration::from_millis(50));
            }
            (most, fewest, seen.len())
        })
    };
    let traffic = load(&stack, 150);
    let started = Instant::now();
    let run = stack.deploy("v2");
    let report = traffic.stop();
    watching.store(false, std::sync::atomic::Ordering::Relaxed);
    let (most_serving, fewest_serving, seen) = watcher.join().expect("watcher");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(report.failed, 0, "{}", report.summary());
    let web = containers(&stack, "web");
    assert_eq!(web.len(), 3, "{web:?}");
    assert!(web.iter().all(|c| c.1 == v2), "{web:?}");
    // One extra container in rotation at a time, never fewer than three.
    assert!(
        most_serving <= 4,
        "{most_serving} containers served at once"
    );
    assert!(
        fewest_serving >= 3,
        "only {fewest_serving} served at some point"
    );
    assert_eq!(
        seen,
        6,
        "3 old + 3 new containers in {:?}",
        started.elapsed()
    );
    assert!(
        run.stderr.contains("web ×3 replaced (start-first)")
            && run.stderr.contains("web ×3 healthy"),
        "{}",
        run.stderr
    );
}

#[test]
fn start_first_is_refused_for_a_service_with_a_fixed_host_port() {
    let stack = Stack::new("sf-refused");
    stack.publish_good("v1");
    // The harness's api publishes 127.0.0.1:PORT:8080.
    let config = std::fs::read_to_string(stack.config_path()).expect("config");
    let config = config.replace(
        "[services.api]\n",
        "[services.api]\nstrategy = \"start-first\"\n",
    );
    std::fs::write(stack.config_path(), config).expect("config");

    let run = stack.slipway(&["check"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("slipway.toml:13:12: services.api.strategy: start-first"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains(&format!("fixed host port 127.0.0.1:{}:8080", stack.port)),
        "{}",
        run.stderr
    );

    let run = stack.deploy("v1");
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("fixed host port"), "{}", run.stderr);
    assert_eq!(stack.container("api"), None, "nothing was started");
    assert!(stack.history().is_empty());
}

/// When one start-first service of a wave fails, the others have not switched
/// yet: their old containers never stopped, so going back boots nothing.
#[test]
fn start_first_services_of_a_wave_switch_together() {
    // An `api` beside `web`, start-first too, in the same wave (no depends_on).
    let stack = proxied_stack_with(
        "sf-gate",
        "start-first",
        1,
        "  api:\n    image: {repos}/api:v1\n",
        "\n[services.api]\nstrategy = \"start-first\"\n",
    );
    for svc in ["web", "api"] {
        stack.publish(svc, "v1", app("v1", true));
    }
    // v2: web is fine (boots in 1 s), api crashes at start.
    stack.publish("web", "v2", app("v2", true));
    let mut crash = app("v2", true);
    crash.behaviour = fixture::Behaviour::Crash;
    stack.publish("api", "v2", crash);
    assert_eq!(stack.deploy("v1").code, 0);
    let started = |id: &str| docker(&["inspect", "--format", "{{.State.StartedAt}}", id]).1;
    let web_v1 = containers(&stack, "web");
    assert_eq!(web_v1.len(), 1, "{web_v1:?}");
    let (web_id, web_image) = (web_v1[0].0.clone(), web_v1[0].1.clone());
    let web_started = started(&web_id);

    let traffic = load(&stack, 100);
    let run = stack.deploy("v2");
    let report = traffic.stop();
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("api"), "{}", run.stderr);
    assert_eq!(stack.history()[0]["status"], "rolled_back");
    // web's v1 container served throughout: never stopped, never restarted.
    let web = containers(&stack, "web");
    assert_eq!(web.len(), 1, "web's v2 container was not removed: {web:?}");
    assert_eq!(web[0].0, web_id, "web's v1 container was replaced");
    assert_eq!(web[0].1, web_image);
    assert_eq!(
        started(&web_id),
        web_started,
        "web's v1 container was stopped and started again"
    );
    assert_eq!(report.failed, 0, "{}", report.summary());
    assert_eq!(stack.state("web"), "running");
}
