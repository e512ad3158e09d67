//! The rollout benchmark: `cargo bench --bench rollout` (or `./bench/run.sh`).
//!
//! On one three-service fixture stack whose apps take seconds to boot (2 s
//! each by default), behind the fixture reverse proxy, it measures in one run,
//! on this machine:
//!
//! - deploy wall time: slipway (stop-first, start-first, and start-first
//!   with the failing check run pre-traffic: `blue-green`) against
//!   `bench/baseline.sh`, the seed's shell pipeline re-enacted (tag
//!   `:rollback`, pull, `up -d`, health polling, smoke script, prune), run
//!   twice: polling as the seed did (`BENCH_BASELINE_POLL`) and every 1 s;
//! - time from the start of a deploy whose smoke test fails to the previous
//!   release healthy again, for the same three;
//! - requests that failed under a steady loopback load during a deploy (plain
//!   `docker compose up -d`, slipway stop-first, start-first) and during a
//!   failed deploy's rollback and a manual rollback (start-first);
//! - slipway's peak memory, binary size, and its overhead above the physical
//!   limit (pull time plus the slowest boot), and above that plus the
//!   engine's floor through the Engine API, all three containers at once:
//!   for stop-first a graceful stop and a start (`bounce`), for start-first
//!   a copy created and started, then the old one stopped (`switch_floor`);
//! - per proxy (the fixture proxy, nginx, Caddy as `examples/proxies/`
//!   configures them): failed and slow (> 1 s) requests during a start-first
//!   deploy, a failing deploy + rollback and `slipway rollback` (`proxies.rs`);
//! - the scale run: 3, 10 and 30 independent stop-first services on one host,
//!   deploy wall time, its ratio to the 3-service time, slipway's peak
//!   memory and the engine's floor for each (`scale.rs`).
//!
//! Knobs (environment): `BENCH_RUNS` (rounds, median reported; default 3),
//! `BENCH_BOOT` (seconds each of api, web, worker takes to boot; default
//! `2,2,2`), `BENCH_BASELINE_POLL` (seconds between the baseline's health
//! polls; the seed polled for up to 100 s: 20 tries of 5 s; default 5),
//! `BENCH_RATE` (requests per second of the load; default: enough for 6,000
//! requests in a start-first deploy, at least 1,200), `BENCH_PROXY_RATE`
//! (requests per second through each real proxy; default 600),
//! `BENCH_ONLY=proxies` (only the per-proxy part), `BENCH_ONLY=scale` (only
//! the scale run; `BENCH_SCALE_RUNS` rounds, default 2, `BENCH_SCALE_BOOT`
//! seconds, default 2), `BENCH_ONLY=timings`
//! (one deploy per strategy with its `--timings` breakdown), `BENCH_VERBOSE` (show
//! slipway's own output).
//!
//! `cargo test --all-targets` builds this but does not run it (no `--bench`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use slipway::engine::Docker;
use slipway::fixture::load::{Load, Report};
use slipway::fixture::{self, App, Registry};

mod proxies;
mod scale;

/// `docker compose --project-name PROJECT ARGS…` in `dir`; its stderr is the error.
fn compose(project: &str, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Res<()> {
    let out = Command::new("docker")
        .args(["compose", "--project-name", project])
        .args(args)
        .envs(env.iter().copied())
        .current_dir(dir)
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "docker compose {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

const PROJECT: &str = "slipway-bench";
const SERVICES: [&str; 3] = ["api", "web", "worker"];
/// The third slipway contender: start-first with the failing check pre-traffic.
const BLUE_GREEN: &str = "blue-green";

type Res<T> = Result<T, String>;

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("the rollout benchmark runs with `cargo bench --bench rollout` (a few minutes)");
        return;
    }
    if let Err(e) = run() {
        eprintln!("bench: {e}");
        std::process::exit(1);
    }
}

/// `BENCH_BOOT=api,web,worker` seconds.
fn boots() -> Res<[(&'static str, u32); 3]> {
    let spec = std::env::var("BENCH_BOOT").unwrap_or_else(|_| "2,2,2".into());
    let secs: Vec<u32> = spec
        .split(',')
        .map(|v| v.trim().parse::<u32>())
        .collect::<Result<_, _>>()
        .map_err(|_| format!("BENCH_BOOT={spec}: give three whole seconds, e.g. 2,2,3"))?;
    match secs[..] {
        [a, w, k] => Ok([("api", a), ("web", w), ("worker", k)]),
        _ => Err(format!(
            "BENCH_BOOT={spec}: give three whole seconds, e.g. 2,2,3"
        )),
    }
}

fn knob(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The stack under test and the tools to deploy it.
struct Bench {
    rt: tokio::runtime::Runtime,
    docker: Docker,
    registry: Registry,
    dir: PathBuf,
    ports: [u16; 3],
    poll: u64,
    /// Seconds each service takes to boot (fixture `boot_delay`).
    boot: [(&'static str, u32); 3],
    next_tag: std::cell::Cell<u32>,
    /// Highest resident set of any slipway run, in KiB.
    peak_kib: std::cell::Cell<u64>,
}

fn run() -> Res<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let docker = rt.block_on(Docker::connect()).map_err(|e| e.to_string())?;
    rt.block_on(fixture::ensure_base(&docker))
        .map_err(|e| e.to_string())?;
    let proxy = rt
        .block_on(fixture::proxy::image(&docker))
        .map_err(|e| e.to_string())?;
    let registry = Registry::start().map_err(|e| e.to_string())?;
    let dir = std::env::temp_dir().join(format!("slipway-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let mut ports = [0u16; 3];
    for p in &mut ports {
        *p = fixture::free_port().map_err(|e| e.to_string())?;
    }
    let bench = Bench {
        rt,
        docker,
        registry,
        dir,
        ports,
        poll: knob("BENCH_BASELINE_POLL", 5).max(1),
        boot: boots()?,
        next_tag: std::cell::Cell::new(0),
        peak_kib: std::cell::Cell::new(0),
    };
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    let result = match only.as_str() {
        "proxies" | "scale" => Ok(()),
        "timings" => bench.breakdown(&proxy),
        _ => bench.measure(&proxy),
    };
    bench.clean();
    result?;
    if only == "timings" {
        return Ok(());
    }
    if only.is_empty() || only == "scale" {
        let rows = scale::measure(&bench.rt, &bench.docker, &bench.registry.addr)?;
        println!("\n{}", scale::render(&rows));
        if let Some(last) = rows.last() {
            println!(
                "\n--timings of the last {}-service deploy:\n{}",
                last.services, last.timings
            );
        }
        if only == "scale" {
            return Ok(());
        }
    }
    let rate = knob("BENCH_PROXY_RATE", 600).max(1) as u32;
    let web_boot = bench.boot[1].1;
    eprintln!("bench: start-first through each proxy ({rate} req/s)");
    let rows = proxies::measure(
        &bench.rt,
        &bench.docker,
        &bench.registry.addr,
        rate,
        web_boot,
    )?;
    println!("\n{}", proxies::render(&rows, rate).join("\n"));
    Ok(())
}

struct Timing {
    baseline: Vec<f64>,
    /// The same pipeline polling health every second (as docker-rollout and
    /// Kamal do): the honest baseline when the seed's poll is slower.
    fast: Vec<f64>,
    stop_first: Vec<f64>,
    start_first: Vec<f64>,
    blue_green: Vec<f64>,
}

impl Timing {
    fn new() -> Timing {
        Timing {
            baseline: Vec::new(),
            fast: Vec::new(),
            stop_first: Vec::new(),
            start_first: Vec::new(),
            blue_green: Vec::new(),
        }
    }
}

/// The IDs of the running containers of `services`.
async fn running<S: AsRef<str>>(
    docker: &Docker,
    project: &str,
    services: &[S],
) -> Res<Vec<String>> {
    let mut ids = Vec::new();
    for svc in services {
        let replicas = docker
            .replicas(project, svc.as_ref())
            .await
            .map_err(|e| e.to_string())?;
        ids.extend(replicas.into_iter().filter(|r| r.running).map(|r| r.id));
    }
    Ok(ids)
}

/// A graceful stop and a start of every running container of `services`
/// at once, straight through the Engine API: the least the engine spends to
/// replace them (no compose, no create). Seconds.
fn bounce<S: AsRef<str>>(
    rt: &tokio::runtime::Runtime,
    docker: &Docker,
    project: &str,
    services: &[S],
) -> Res<f64> {
    rt.block_on(async {
        let ids = running(docker, project, services).await?;
        let started = Instant::now();
        let bounces = ids.iter().map(|id| async move {
            docker.stop(id).await?;
            docker.start(id).await
        });
        futures_util::future::try_join_all(bounces)
            .await
            .map_err(|e| e.to_string())?;
        Ok(started.elapsed().as_secs_f64())
    })
}

/// What a start-first switch costs the engine at least, for every running
/// container of `services` at once: create and start a copy (same image,
/// command and environment, on the same network, under no alias), then
/// gracefully stop the original. Seconds for those engine calls alone (no
/// boot wait); afterwards the copies are removed and the originals started.
fn switch_floor<S: AsRef<str>>(
    rt: &tokio::runtime::Runtime,
    docker: &Docker,
    project: &str,
    services: &[S],
) -> Res<(f64, f64)> {
    use bollard::models::{ContainerCreateBody, HostConfig};
    use bollard::query_parameters::{CreateContainerOptions, InspectContainerOptions};
    rt.block_on(async {
        let api = docker.api();
        let mut plans = Vec::new();
        for id in running(docker, project, services).await? {
            let c = api
                .inspect_container(&id, None::<InspectContainerOptions>)
                .await
                .map_err(|e| e.to_string())?;
            let config = c.config.unwrap_or_default();
            let network = c
                .network_settings
                .and_then(|n| n.networks)
                .and_then(|n| n.into_keys().next());
            let body = ContainerCreateBody {
                image: c.image,
                cmd: config.cmd,
                entrypoint: config.entrypoint,
                env: config.env,
                labels: Some([("slipway.bench".to_string(), "floor".to_string())].into()),
                host_config: Some(HostConfig {
                    network_mode: network,
                    ..Default::default()
                }),
                ..Default::default()
            };
            plans.push((id, body));
        }
        let started = Instant::now();
        let copies = futures_util::future::join_all(plans.iter().map(|(_, body)| async {
            let id = api
                .create_container(None::<CreateContainerOptions>, body.clone())
                .await
                .map_err(|e| e.to_string())?
                .id;
            docker.start(&id).await.map_err(|e| e.to_string())?;
            Ok::<_, String>(id)
        }))
        .await;
        let up = started.elapsed().as_secs_f64();
        let stops =
            futures_util::future::join_all(plans.iter().map(|(id, _)| docker.stop(id))).await;
        let took = started.elapsed().as_secs_f64();
        for id in copies.iter().flatten() {
            let _ = docker.remove(id).await;
        }
        for (id, _) in &plans {
            let _ = docker.start(id).await;
        }
        for c in copies {
            c?;
        }
        for s in stops {
            s.map_err(|e| e.to_string())?;
        }
        Ok((up, took))
    })
}

/// The engine's floors for replacing the stack's containers (seconds).
#[derive(Clone, Copy)]
struct Floor {
    /// Stop-first: a graceful stop and a start of each, all at once (`bounce`).
    stop_start: f64,
    /// Start-first: a copy created and started, then the old one stopped (`switch_floor`).
    switch: f64,
    /// The first half of `switch`: the copies created and started. A failed
    /// start-first release whose new containers never take traffic pays
    /// only this (then their removal).
    copies_up: f64,
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

impl Bench {
    fn measure(&self, proxy: &str) -> Res<()> {
        let runs = knob("BENCH_RUNS", 3).max(1) as usize;
        self.write_stack(proxy, "stop-first")?;
        eprintln!(
            "bench: stack in {}, registry {}, {runs} round(s), baseline polls every {} s",
            self.dir.display(),
            self.registry.addr,
            self.poll
        );
        let first = self.publish(true)?;
        self.compose(&["up", "--detach", "--", "proxy"])?;
        self.slipway_deploy("stop-first", &first, 0)?;

        let mut deploy = Timing::new();
        let mut failing = Timing::new();
        let mut pulls = Vec::new();
        for round in 1..=runs {
            eprintln!("bench: round {round} of {runs}");
            // Good releases: each contender deploys fresh images (a real pull).
            let tag = self.publish(true)?;
            deploy.baseline.push(self.baseline(&tag, 0, self.poll)?);
            let tag = self.publish(true)?;
            deploy.fast.push(self.baseline(&tag, 0, 1)?);
            let tag = self.publish(true)?;
            deploy
                .stop_first
                .push(self.slipway_deploy("stop-first", &tag, 0)?);
            let tag = self.publish(true)?;
            pulls.push(self.pull_time(&tag)?);
            deploy
                .start_first
                .push(self.slipway_deploy("start-first", &tag, 0)?);
            let tag = self.publish(true)?;
            deploy
                .blue_green
                .push(self.slipway_deploy(BLUE_GREEN, &tag, 0)?);
            // Releases whose smoke test fails: back to the previous one.
            let tag = self.publish(false)?;
            failing.baseline.push(self.baseline(&tag, 1, self.poll)?);
            let tag = self.publish(false)?;
            failing.fast.push(self.baseline(&tag, 1, 1)?);
            let tag = self.publish(false)?;
            failing
                .stop_first
                .push(self.slipway_deploy("stop-first", &tag, 1)?);
            let tag = self.publish(false)?;
            failing
                .start_first
                .push(self.slipway_deploy("start-first", &tag, 1)?);
            let tag = self.publish(false)?;
            failing
                .blue_green
                .push(self.slipway_deploy(BLUE_GREEN, &tag, 1)?);
        }
        let floor = self.engine_floor()?;

        // Steady enough for 6,000 requests in a start-first deploy's window.
        let rate = match std::env::var("BENCH_RATE")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            Some(r) => r,
            None => ((6000.0 / median(&deploy.start_first)).ceil() as u32).clamp(1200, 2000),
        };
        eprintln!("bench: failed requests under load ({rate} req/s)");
        let addrs: Vec<SocketAddr> = self
            .ports
            .iter()
            .filter_map(|p| format!("127.0.0.1:{p}").parse().ok())
            .collect();
        let under_load = |what: &str, f: &dyn Fn() -> Res<()>| -> Res<Report> {
            let load = Load::start(&addrs, "/health", rate, 96);
            let r = f();
            let report = load.stop();
            r?;
            eprintln!("bench:   {what}: {}", report.summary());
            Ok(report)
        };
        let tag = self.publish(true)?;
        let plain = under_load("plain docker compose up -d", &|| self.plain_up(&tag))?;
        let tag = self.publish(true)?;
        let load_stop = under_load("slipway stop-first deploy", &|| {
            self.slipway_deploy("stop-first", &tag, 0).map(|_| ())
        })?;
        let tag = self.publish(true)?;
        let load_start = under_load("slipway start-first deploy", &|| {
            self.slipway_deploy("start-first", &tag, 0).map(|_| ())
        })?;
        let tag = self.publish(false)?;
        let load_fail = under_load("slipway start-first failing deploy + rollback", &|| {
            self.slipway_deploy("start-first", &tag, 1).map(|_| ())
        })?;
        let load_back = under_load("slipway start-first manual rollback", &|| {
            self.slipway_run("start-first", &["rollback"], 0)
                .map(|_| ())
        })?;
        let tag = self.publish(false)?;
        let load_blue_green = under_load("slipway blue-green failing deploy", &|| {
            self.slipway_deploy(BLUE_GREEN, &tag, 1).map(|_| ())
        })?;

        let boot = self.boot.iter().map(|(_, b)| *b).max().unwrap_or(0) as f64;
        let pull = median(&pulls);
        let binary = std::fs::metadata(env!("CARGO_BIN_EXE_slipway"))
            .map(|m| m.len())
            .unwrap_or(0);
        let table = render(&Summary {
            runs,
            poll: self.poll,
            boots: self.boot,
            deploy: &deploy,
            failing: &failing,
            pull,
            boot,
            rate,
            plain: &plain,
            load_stop: &load_stop,
            load_start: &load_start,
            load_fail: &load_fail,
            load_back: &load_back,
            load_blue_green: &load_blue_green,
            floor,
            peak_kib: self.peak_kib.get(),
            binary,
        });
        println!("{table}");
        Ok(())
    }

    /// `BENCH_ONLY=timings`: one deploy per strategy with `--timings`, its
    /// breakdown printed next to the pull time, to see where the overhead
    /// above the physical limit goes (seconds, not minutes).
    fn breakdown(&self, proxy: &str) -> Res<()> {
        self.write_stack(proxy, "stop-first")?;
        let first = self.publish(true)?;
        self.compose(&["up", "--detach", "--", "proxy"])?;
        self.slipway_deploy("stop-first", &first, 0)?;
        self.engine_floor()?;
        for (strategy, good) in [
            ("stop-first", true),
            ("start-first", true),
            (BLUE_GREEN, true),
            ("start-first", false),
            (BLUE_GREEN, false),
        ] {
            let tag = self.publish(good)?;
            let pull = self.pull_time(&tag)?;
            let (took, stderr) = self.slipway_output(
                strategy,
                &["--timings", "deploy", "--tag", &tag],
                i32::from(!good),
            )?;
            let timings = stderr
                .split_once("timings:\n")
                .map(|(_, t)| t)
                .unwrap_or("");
            let what = if good { "deploy" } else { "failing deploy" };
            println!(
                "{strategy}: {what} {took:.2} s, pull {pull:.2} s, slowest boot {} s\n{timings}",
                self.boot.iter().map(|(_, b)| *b).max().unwrap_or(0)
            );
        }
        Ok(())
    }

    fn repo(&self, svc: &str) -> String {
        format!("{}/{PROJECT}/{svc}", self.registry.addr)
    }

    fn write_stack(&self, proxy: &str, strategy: &str) -> Res<()> {
        let [p0, p1, p2] = self.ports;
        let mut compose = format!(
            r#"# slipway's benchmark stack: three apps that take seconds to boot, reached
# through a reverse proxy on the compose network.
services:
  proxy:
    image: {proxy}
    command: ["8080=api:8080", "8081=web:8080", "8082=worker:8080"]
    ports: ["127.0.0.1:{p0}:8080", "127.0.0.1:{p1}:8081", "127.0.0.1:{p2}:8082"]
"#
        );
        // Like the seed's `web`, the apps declare no HEALTHCHECK: slipway
        // probes each new container over HTTP, the baseline polls the proxy.
        for svc in SERVICES {
            compose.push_str(&format!(
                "  {svc}:\n    image: {}:${{IMAGE_TAG:-r0}}\n    healthcheck:\n      disable: true\n",
                self.repo(svc)
            ));
        }
        std::fs::write(self.dir.join("docker-compose.yml"), compose).map_err(|e| e.to_string())?;
        self.write_config(strategy)
    }

    /// `strategy` is stop-first, start-first, or `blue-green`: start-first
    /// with the core API check run pre-traffic against each new api
    /// container (`pre_traffic = "api"`), and `settle = "0s"` because the
    /// fixture proxy resolves the service name on every connection.
    fn write_config(&self, strategy: &str) -> Res<()> {
        let [p0, p1, p2] = self.ports;
        let blue_green = strategy == BLUE_GREEN;
        let (strategy, settle) = if blue_green {
            ("start-first", "settle = \"0s\"\n")
        } else {
            (strategy, "")
        };
        let mut config = format!(
            r#"project = "{PROJECT}"
compose_files = ["docker-compose.yml"]

[deploy]
health_timeout = "100s"

[environments.bench]
url = "http://127.0.0.1:{p0}"
"#
        );
        for svc in SERVICES {
            config.push_str(&format!(
                "\n[services.{svc}]\nstrategy = \"{strategy}\"\n{settle}\
                 health = {{ http = \"http://{{container}}:8080/health\", expect_json = {{ \"$.status\" = \"ok\" }} }}\n"
            ));
        }
        let core_api = if blue_green {
            "http://{container}:8080/smoke\"\npre_traffic = \"api"
        } else {
            "{url}/smoke"
        };
        // The same four checks as bench/smoke-test.sh.
        for (name, url) in [
            ("api health", "{url}/health".to_string()),
            ("core API", core_api.to_string()),
            ("web health", format!("http://127.0.0.1:{p1}/health")),
            ("worker health", format!("http://127.0.0.1:{p2}/health")),
        ] {
            config.push_str(&format!(
                "\n[[smoke]]\nname = \"{name}\"\nhttp = \"{url}\"\nexpect_json = {{ \"$.status\" = \"ok\" }}\n"
            ));
        }
        std::fs::write(self.dir.join("slipway.toml"), config).map_err(|e| e.to_string())
    }

    /// Build and push a release of all three apps under a new tag (and a
    /// twin tag with equal content, to time a plain pull); returns the tag.
    fn publish(&self, good: bool) -> Res<String> {
        let n = self.next_tag.get();
        self.next_tag.set(n + 1);
        let tag = format!("r{n}{}", if good { "" } else { "-bad" });
        let mut jobs = Vec::new();
        for (svc, boot) in self.boot {
            for t in [tag.clone(), format!("{tag}-twin")] {
                let mut app = App::new(&t);
                app.boot_delay = boot;
                app.smoke_ok = good || svc != "api";
                let repo = self.repo(svc);
                let docker = &self.docker;
                jobs.push(async move { fixture::publish(docker, app, &repo, &t).await });
            }
        }
        self.rt
            .block_on(futures_util::future::try_join_all(jobs))
            .map_err(|e| e.to_string())?;
        Ok(tag)
    }

    /// The engine's own floor for what a stop-first deploy must do to the
    /// running containers: a graceful stop and a start of the three app
    /// containers at once, straight through the Engine API (no compose, no
    /// create: a recreate cannot be faster). Then waits until they answer
    /// again. Median of three.
    fn engine_floor(&self) -> Res<Floor> {
        let (mut stop_start, mut switch, mut copies_up) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..3 {
            stop_start.push(bounce(&self.rt, &self.docker, PROJECT, &SERVICES)?);
            self.wait_answering()?;
            let (up, all) = switch_floor(&self.rt, &self.docker, PROJECT, &SERVICES)?;
            copies_up.push(up);
            switch.push(all);
            self.wait_answering()?;
        }
        let floor = Floor {
            stop_start: median(&stop_start),
            switch: median(&switch),
            copies_up: median(&copies_up),
        };
        eprintln!(
            "bench:   engine floor: stop + start of 3 containers at once {:.2} s; \
             create + start of 3 copies {:.2} s, then stop of the 3 old, at once {:.2} s",
            floor.stop_start, floor.copies_up, floor.switch
        );
        Ok(floor)
    }

    /// Until every service answers through the proxy (100 s at most).
    fn wait_answering(&self) -> Res<()> {
        let deadline = Instant::now() + Duration::from_secs(100);
        while Instant::now() < deadline {
            let all = self.ports.iter().all(|p| {
                Command::new("curl")
                    .args(["-sf", "-o", "/dev/null", "--max-time", "2"])
                    .arg(format!("http://127.0.0.1:{p}/health"))
                    .status()
                    .is_ok_and(|s| s.success())
            });
            if all {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err("services not answering within 100 s".into())
    }

    /// The physical pull time: the three images of a release pulled at once
    /// by the engine (the twin tag, same size), then removed again.
    fn pull_time(&self, tag: &str) -> Res<f64> {
        let refs: Vec<String> = SERVICES
            .iter()
            .map(|s| format!("{}:{tag}-twin", self.repo(s)))
            .collect();
        let started = Instant::now();
        let children: Vec<_> = refs
            .iter()
            .map(|r| {
                Command::new("docker")
                    .args(["pull", "--quiet", r])
                    .stdout(Stdio::null())
                    .spawn()
            })
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?;
        for mut c in children {
            let s = c.wait().map_err(|e| e.to_string())?;
            if !s.success() {
                return Err("docker pull of a twin tag failed".into());
            }
        }
        let took = started.elapsed().as_secs_f64();
        for r in &refs {
            let _ = Command::new("docker")
                .args(["rmi", r])
                .stdout(Stdio::null())
                .status();
        }
        Ok(took)
    }

    /// `bench/baseline.sh TAG` polling health every `poll` seconds: wall
    /// seconds; `want` is the exit code expected.
    fn baseline(&self, tag: &str, want: i32, poll: u64) -> Res<f64> {
        let [p0, p1, p2] = self.ports;
        let bench_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench");
        let urls: Vec<String> = self
            .ports
            .iter()
            .map(|p| format!("http://127.0.0.1:{p}/health"))
            .collect();
        let started = Instant::now();
        let out = Command::new("bash")
            .arg(bench_dir.join("baseline.sh"))
            .arg(tag)
            .env("PROJECT", PROJECT)
            .env("STACK_DIR", &self.dir)
            .env("SERVICES", SERVICES.join(" "))
            .env("REPO_PREFIX", format!("{}/{PROJECT}", self.registry.addr))
            .env("HEALTH_URLS", urls.join(" "))
            .env("SMOKE", bench_dir.join("smoke-test.sh"))
            .env("URL", format!("http://127.0.0.1:{p0}"))
            .env("WEB_URL", format!("http://127.0.0.1:{p1}"))
            .env("WORKER_URL", format!("http://127.0.0.1:{p2}"))
            .env("POLL", poll.to_string())
            .output()
            .map_err(|e| format!("cannot run bench/baseline.sh: {e}"))?;
        let took = started.elapsed().as_secs_f64();
        let code = out.status.code().unwrap_or(-1);
        if code != want {
            return Err(format!(
                "baseline {tag}: exit {code}, wanted {want}\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        eprintln!("bench:   baseline {tag} (poll {poll} s): {took:.2} s (exit {code})");
        Ok(took)
    }

    fn slipway_deploy(&self, strategy: &str, tag: &str, want: i32) -> Res<f64> {
        self.slipway_run(strategy, &["deploy", "--tag", tag], want)
    }

    /// Run slipway with the stack's config (all services on `strategy`),
    /// sampling its resident set until it exits. Wall seconds.
    fn slipway_run(&self, strategy: &str, args: &[&str], want: i32) -> Res<f64> {
        self.slipway_output(strategy, args, want)
            .map(|(took, _)| took)
    }

    /// As `slipway_run`, with slipway's stderr.
    fn slipway_output(&self, strategy: &str, args: &[&str], want: i32) -> Res<(f64, String)> {
        self.write_config(strategy)?;
        let (took, stderr, peak) = run_slipway(&self.dir.join("slipway.toml"), args, want)
            .map_err(|e| format!("({strategy}) {e}"))?;
        self.peak_kib.set(self.peak_kib.get().max(peak));
        eprintln!(
            "bench:   slipway {} ({strategy}): {took:.2} s",
            args.join(" ")
        );
        Ok((took, stderr))
    }

    /// Plain `docker compose pull` + `up -d`, until every service answers again.
    fn plain_up(&self, tag: &str) -> Res<()> {
        let env = [("IMAGE_TAG", tag)];
        self.compose_env(&["pull", "--quiet", "api", "web", "worker"], &env)?;
        self.compose_env(
            &["up", "--detach", "--no-deps", "api", "web", "worker"],
            &env,
        )?;
        self.wait_answering()
            .map_err(|e| format!("plain compose: {e}"))
    }

    fn compose(&self, args: &[&str]) -> Res<()> {
        self.compose_env(args, &[])
    }

    fn compose_env(&self, args: &[&str], env: &[(&str, &str)]) -> Res<()> {
        let mut all = vec!["--file", "docker-compose.yml"];
        all.extend_from_slice(args);
        compose(PROJECT, &self.dir, &all, env)
    }

    fn clean(&self) {
        let _ = self.compose(&["down", "--volumes", "--remove-orphans", "--timeout", "1"]);
        scale::remove_images(&format!("{}/{PROJECT}/", self.registry.addr));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Run slipway with `config`, sampling its resident set until it exits:
/// wall seconds, its stderr, and its peak resident set (VmHWM, KiB). `want`
/// is the exit code expected.
fn run_slipway(config: &Path, args: &[&str], want: i32) -> Res<(f64, String, u64)> {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_slipway"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run slipway: {e}"))?;
    // Read stderr on a thread: a long `--timings` must not fill the pipe.
    let mut err = child.stderr.take();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(e) = err.as_mut() {
            let _ = std::io::Read::read_to_string(e, &mut text);
        }
        text
    });
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak = 0u64;
    let status = loop {
        if let Ok(text) = std::fs::read_to_string(&status_file) {
            peak = peak.max(vm_hwm_kib(&text));
        }
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(e.to_string()),
        }
    };
    let took = started.elapsed().as_secs_f64();
    let _ = child.wait_with_output();
    let stderr = reader.join().unwrap_or_default();
    let code = status.code().unwrap_or(-1);
    if code != want {
        return Err(format!(
            "slipway {}: exit {code}, wanted {want}\n{stderr}",
            args.join(" ")
        ));
    }
    if std::env::var_os("BENCH_VERBOSE").is_some() {
        eprint!("{stderr}");
    }
    Ok((took, stderr, peak))
}

fn vm_hwm_kib(status: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

struct Summary<'a> {
    runs: usize,
    poll: u64,
    boots: [(&'static str, u32); 3],
    deploy: &'a Timing,
    failing: &'a Timing,
    pull: f64,
    boot: f64,
    rate: u32,
    plain: &'a Report,
    load_stop: &'a Report,
    load_start: &'a Report,
    load_fail: &'a Report,
    load_back: &'a Report,
    load_blue_green: &'a Report,
    /// The engine's own floor for replacing the three containers (see `engine_floor`).
    floor: Floor,
    peak_kib: u64,
    binary: u64,
}

/// The table the README and the closing note show.
fn render(s: &Summary) -> String {
    // Each slipway figure with its ratio to both baselines (seed, 1 s poll).
    let row = |name: &str, t: &Timing| {
        let (b, f) = (median(&t.baseline), median(&t.fast));
        let cell = |v: &[f64]| {
            let m = median(v);
            format!("{m:.1} s ({:.2}× / {:.2}×)", m / b, m / f)
        };
        format!(
            "| {name} | {b:.1} s | {f:.1} s | {} | {} | {} |",
            cell(&t.stop_first),
            cell(&t.start_first),
            cell(&t.blue_green)
        )
    };
    let limit = s.pull + s.boot;
    let over = |t: &[f64]| median(t) - limit;
    let mut lines = vec![
        format!(
            "slipway rollout benchmark: 3 services ({}) behind a proxy; median of {} round(s); \
             baseline = bench/baseline.sh, health polled every {} s",
            s.boots
                .iter()
                .map(|(svc, b)| format!("{svc} boots in {b} s"))
                .collect::<Vec<_>>()
                .join(", "),
            s.runs,
            s.poll
        ),
        String::new(),
        "| | seed pipeline (baseline) | same, polling every 1 s | slipway stop-first (× seed / × 1 s) | slipway start-first (× seed / × 1 s) | slipway start-first, failing check pre-traffic (× seed / × 1 s) |".into(),
        "| --- | --- | --- | --- | --- | --- |".into(),
        row("deploy, wall time", s.deploy),
        row("failing release → previous one healthy", s.failing),
        format!(
            "| physical limit: pull ({:.2} s) + slowest boot ({:.0} s) | | | {limit:.2} s | {limit:.2} s | {limit:.2} s |",
            s.pull, s.boot
        ),
        format!(
            "| slipway's overhead above it (deploy) | | | {:+.2} s | {:+.2} s | {:+.2} s |",
            over(&s.deploy.stop_first),
            over(&s.deploy.start_first),
            over(&s.deploy.blue_green)
        ),
        format!(
            "| the engine's floor for replacing the 3 containers at once, Engine API (stop-first: stop + start; start-first: create + start a copy, then stop the old) | | | {:.2} s | {:.2} s | {:.2} s |",
            s.floor.stop_start, s.floor.switch, s.floor.switch
        ),
        format!(
            "| slipway's overhead above pull + engine floor + boot (deploy) | | | {:+.2} s | {:+.2} s | {:+.2} s |",
            over(&s.deploy.stop_first) - s.floor.stop_start,
            over(&s.deploy.start_first) - s.floor.switch,
            over(&s.deploy.blue_green) - s.floor.switch
        ),
        String::new(),
        format!(
            "| failed requests under load ({} req/s, loopback → proxy → services) | failed | of |",
            s.rate
        ),
        "| --- | --- | --- |".into(),
    ];
    for (name, r) in [
        ("plain `docker compose up -d` (the seed's rollout)", s.plain),
        ("slipway stop-first deploy", s.load_stop),
        ("slipway start-first deploy", s.load_start),
        ("slipway start-first failing deploy + rollback", s.load_fail),
        ("slipway start-first manual rollback", s.load_back),
        (
            "slipway start-first failing deploy, check pre-traffic",
            s.load_blue_green,
        ),
    ] {
        lines.push(format!("| {name} | {} | {} |", r.failed, r.sent));
    }
    lines.push(String::new());
    lines.push(format!(
        "slipway peak memory (VmHWM, max over all runs): {:.1} MiB; binary size: {:.1} MiB (release, stripped)",
        s.peak_kib as f64 / 1024.0,
        s.binary as f64 / (1024.0 * 1024.0)
    ));
    let raw = |name: &str, v: &[f64]| {
        format!(
            "  {name}: {}",
            v.iter()
                .map(|x| format!("{x:.2}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    lines.push("raw seconds per round:".into());
    for (name, t) in [("deploy", s.deploy), ("failing", s.failing)] {
        lines.push(raw(&format!("{name} baseline"), &t.baseline));
        lines.push(raw(&format!("{name} baseline, 1 s poll"), &t.fast));
        lines.push(raw(&format!("{name} stop-first"), &t.stop_first));
        lines.push(raw(&format!("{name} start-first"), &t.start_first));
        lines.push(raw(&format!("{name} blue-green"), &t.blue_green));
    }
    lines.join("\n")
}
