//! The scale run (`BENCH_ONLY=scale`, and part of the full run): 3, 10 and 30
//! independent services (stop-first, each app boots in 2 s by default,
//! `BENCH_SCALE_BOOT`) on one host, one image per service. For each size: the
//! wall time of a slipway deploy of fresh images (median of `BENCH_SCALE_RUNS`
//! rounds, default 2), its ratio to the 3-service time, and slipway's peak
//! memory (VmHWM of its process).

use std::path::PathBuf;
use std::process::{Command, Stdio};

use slipway::engine::Docker;
use slipway::fixture::{self, App};

use super::{bounce, knob, median, run_slipway, Res};

const PROJECT: &str = "slipway-bench-scale";
pub const SIZES: [usize; 3] = [3, 10, 30];

pub struct Row {
    pub services: usize,
    /// Wall seconds of each timed deploy.
    pub deploys: Vec<f64>,
    /// Highest VmHWM of slipway over this size's runs, KiB.
    pub peak_kib: u64,
    /// The `--timings` breakdown of the last timed deploy.
    pub timings: String,
    /// The engine's floor: every container stopped and started at once
    /// through the Engine API (`bounce`), seconds.
    pub floor: f64,
}

struct Stack<'a> {
    rt: &'a tokio::runtime::Runtime,
    docker: &'a Docker,
    registry: &'a str,
    dir: PathBuf,
    project: String,
    services: Vec<String>,
    boot: u32,
}

pub fn measure(rt: &tokio::runtime::Runtime, docker: &Docker, registry: &str) -> Res<Vec<Row>> {
    let runs = knob("BENCH_SCALE_RUNS", 2).max(1) as usize;
    let boot = knob("BENCH_SCALE_BOOT", 2) as u32;
    let mut rows = Vec::new();
    for n in SIZES {
        let stack = Stack {
            rt,
            docker,
            registry,
            dir: std::env::temp_dir()
                .join(format!("slipway-bench-scale{n}-{}", std::process::id())),
            project: format!("{PROJECT}{n}"),
            services: (1..=n).map(|i| format!("s{i:02}")).collect(),
            boot,
        };
        eprintln!("bench: scale, {n} services ({boot} s boot, stop-first), {runs} round(s)");
        let row = stack.run(runs);
        stack.clean();
        rows.push(row?);
    }
    Ok(rows)
}

impl Stack<'_> {
    fn run(&self, runs: usize) -> Res<Row> {
        self.write()?;
        let mut row = Row {
            services: self.services.len(),
            deploys: Vec::new(),
            peak_kib: 0,
            timings: String::new(),
            floor: f64::NAN,
        };
        // The first deploy creates every container; not timed.
        self.publish("r0")?;
        self.deploy("r0", &[])?;
        for round in 1..=runs {
            let tag = format!("r{round}");
            self.publish(&tag)?;
            let (took, stderr, peak) = self.deploy(&tag, &["--timings"])?;
            eprintln!(
                "bench:   {} services, round {round}: {took:.2} s, peak {:.1} MiB",
                self.services.len(),
                peak as f64 / 1024.0
            );
            row.deploys.push(took);
            row.peak_kib = row.peak_kib.max(peak);
            row.timings = stderr
                .split_once("timings:\n")
                .map(|(_, t)| t.to_string())
                .unwrap_or_default();
        }
        row.floor = bounce(self.rt, self.docker, &self.project, &self.services)?;
        eprintln!(
            "bench:   {} services, engine floor (stop + start of all at once): {:.2} s",
            self.services.len(),
            row.floor
        );
        Ok(row)
    }

    fn repo(&self, svc: &str) -> String {
        format!("{}/{PROJECT}/{svc}", self.registry)
    }

    fn write(&self) -> Res<()> {
        std::fs::create_dir_all(&self.dir).map_err(|e| e.to_string())?;
        let mut compose =
            String::from("# slipway's scale benchmark: independent apps.\nservices:\n");
        let mut config = format!(
            "project = \"{}\"\ncompose_files = [\"docker-compose.yml\"]\n\n\
             [deploy]\nhealth_timeout = \"100s\"\n\n[environments.bench]\nurl = \"http://127.0.0.1:9\"\n",
            self.project
        );
        for svc in &self.services {
            compose.push_str(&format!(
                "  {svc}:\n    image: {}:${{IMAGE_TAG:-r0}}\n    healthcheck:\n      disable: true\n",
                self.repo(svc)
            ));
            config.push_str(&format!(
                "\n[services.{svc}]\nstrategy = \"stop-first\"\n\
                 health = {{ http = \"http://{{container}}:8080/health\", expect_json = {{ \"$.status\" = \"ok\" }} }}\n"
            ));
        }
        std::fs::write(self.dir.join("docker-compose.yml"), compose).map_err(|e| e.to_string())?;
        std::fs::write(self.dir.join("slipway.toml"), config).map_err(|e| e.to_string())
    }

    /// Build and push every service's image under `tag` (a few at a time).
    fn publish(&self, tag: &str) -> Res<()> {
        for chunk in self.services.chunks(6) {
            let jobs = chunk.iter().map(|svc| {
                let mut app = App::new(tag);
                app.boot_delay = self.boot;
                let repo = self.repo(svc);
                async move { fixture::publish(self.docker, app, &repo, tag).await }
            });
            self.rt
                .block_on(futures_util::future::try_join_all(jobs))
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    fn deploy(&self, tag: &str, extra: &[&str]) -> Res<(f64, String, u64)> {
        let mut args: Vec<&str> = extra.to_vec();
        args.extend(["deploy", "--tag", tag]);
        run_slipway(&self.dir.join("slipway.toml"), &args, 0)
    }

    fn clean(&self) {
        let _ = Command::new("docker")
            .args(["compose", "--project-name", &self.project])
            .args(["--file", "docker-compose.yml"])
            .args(["down", "--volumes", "--remove-orphans", "--timeout", "1"])
            .current_dir(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        remove_images(&format!("{}/{PROJECT}/", self.registry));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Remove every local image whose repository starts with `prefix`.
pub fn remove_images(prefix: &str) {
    if let Ok(out) = Command::new("docker")
        .args(["images", "--format", "{{.ID}} {{.Repository}}"])
        .output()
    {
        let mut ids: Vec<&str> = Vec::new();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        for line in text.lines() {
            if let Some((id, repo)) = line.split_once(' ') {
                if repo.starts_with(prefix) && !ids.contains(&id) {
                    ids.push(id);
                }
            }
        }
        if !ids.is_empty() {
            let _ = Command::new("docker")
                .arg("rmi")
                .arg("--force")
                .args(&ids)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// The scale table: wall time, ratio to the 3-service time, peak memory.
pub fn render(rows: &[Row]) -> String {
    let base = rows
        .iter()
        .find(|r| r.services == SIZES[0])
        .map(|r| median(&r.deploys))
        .unwrap_or(f64::NAN);
    let mut lines = vec![
        "| independent services (stop-first, one host) | deploy, wall time | × 3-service time | slipway peak memory | engine floor: stop + start of all at once |".to_string(),
        "| --- | --- | --- | --- | --- |".to_string(),
    ];
    for r in rows {
        let t = median(&r.deploys);
        lines.push(format!(
            "| {} | {t:.1} s | {:.2}× | {:.1} MiB | {:.2} s |",
            r.services,
            t / base,
            r.peak_kib as f64 / 1024.0,
            r.floor
        ));
    }
    for r in rows {
        lines.push(format!(
            "raw seconds, {} services: {}",
            r.services,
            r.deploys
                .iter()
                .map(|x| format!("{x:.2}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    lines.join("\n")
}
