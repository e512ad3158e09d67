//! Per proxy: the fixture proxy, nginx and Caddy, each configured only as
//! `examples/proxies/` says, in front of one start-first service `web` whose
//! apps serve like real ones (keep-alive, a full backlog, a graceful stop).
//! Under a steady loopback load through the proxy it counts failed requests
//! and requests slower than 1 s during a deploy, a failing deploy with its
//! automatic rollback, and `slipway rollback`.

use std::path::PathBuf;
use std::process::Command;

use slipway::engine::Docker;
use slipway::fixture::load::{Load, Report};
use slipway::fixture::proxy::Kind;
use slipway::fixture::{self, App, Server};

use super::Res;

/// What one proxy saw: (step, load report) for each of the three steps.
pub struct Measured {
    pub proxy: Kind,
    pub steps: Vec<(&'static str, Report)>,
}

pub const STEPS: [&str; 3] = [
    "start-first deploy",
    "failing deploy + automatic rollback",
    "`slipway rollback`",
];

pub fn measure(
    rt: &tokio::runtime::Runtime,
    docker: &Docker,
    registry: &str,
    rate: u32,
    boot: u32,
) -> Res<Vec<Measured>> {
    let mut out = Vec::new();
    for proxy in Kind::ALL {
        let stack = ProxyStack::new(proxy, registry)?;
        let result = stack.run(rt, docker, rate, boot);
        stack.clean();
        out.push(Measured {
            proxy,
            steps: result?,
        });
    }
    Ok(out)
}

/// The table rows: failed / slower than 1 s / requests, per step.
pub fn render(rows: &[Measured], rate: u32) -> Vec<String> {
    let mut lines = vec![
        format!(
            "| start-first through a real proxy ({rate} req/s; failed / slower than 1 s / requests) | {} | {} | {} |",
            STEPS[0], STEPS[1], STEPS[2]
        ),
        "| --- | --- | --- | --- |".into(),
    ];
    for m in rows {
        let cells: Vec<String> = m
            .steps
            .iter()
            .map(|(_, r)| format!("{} / {} / {}", r.failed, r.slow, r.sent))
            .collect();
        lines.push(format!("| {} | {} |", m.proxy.name(), cells.join(" | ")));
    }
    lines
}

struct ProxyStack {
    proxy: Kind,
    project: String,
    dir: PathBuf,
    port: u16,
    repo: String,
}

impl ProxyStack {
    fn new(proxy: Kind, registry: &str) -> Res<ProxyStack> {
        let name = proxy.name().replace(' ', "-");
        let project = format!("slipway-bench-{name}");
        let dir = std::env::temp_dir().join(format!("{project}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        Ok(ProxyStack {
            proxy,
            repo: format!("{registry}/{project}/web"),
            project,
            dir,
            port: fixture::free_port().map_err(|e| e.to_string())?,
        })
    }

    fn run(
        &self,
        rt: &tokio::runtime::Runtime,
        docker: &Docker,
        rate: u32,
        boot: u32,
    ) -> Res<Vec<(&'static str, Report)>> {
        let image = rt
            .block_on(self.proxy.image(docker))
            .map_err(|e| e.to_string())?;
        for (tag, good) in [("v1", true), ("v2", true), ("v3", false)] {
            let mut app = App::new(tag);
            app.boot_delay = boot;
            app.smoke_ok = good;
            app.server = Server::Serve;
            rt.block_on(fixture::publish(docker, app, &self.repo, tag))
                .map_err(|e| e.to_string())?;
        }
        let compose = format!(
            "services:\n{}  web:\n    image: {}:v1\n    healthcheck:\n      disable: true\n",
            self.proxy.compose_service(&image, self.port, None),
            self.repo
        );
        std::fs::write(self.dir.join("docker-compose.yml"), compose).map_err(|e| e.to_string())?;
        let config = format!(
            r#"project = "{project}"
compose_files = ["docker-compose.yml"]

[environments.bench]
url = "http://127.0.0.1:{port}"

[services.web]
strategy = "start-first"
health = {{ http = "http://{{container}}:8080/health" }}

[[smoke]]
name = "core API"
http = "{{url}}/smoke"
expect_json = {{ "$.status" = "ok" }}
"#,
            project = self.project,
            port = self.port
        );
        std::fs::write(self.dir.join("slipway.toml"), config).map_err(|e| e.to_string())?;
        self.compose(&["up", "--detach", "--", "proxy"])?;
        self.slipway(&["deploy", "--tag", "v1"], 0)?;
        let addr = format!("127.0.0.1:{}", self.port)
            .parse()
            .map_err(|e| format!("{e}"))?;
        let mut steps = Vec::new();
        for (step, args, want) in [
            (STEPS[0], &["deploy", "--tag", "v2"][..], 0),
            (STEPS[1], &["deploy", "--tag", "v3"][..], 1),
            (STEPS[2], &["rollback"][..], 0),
        ] {
            let load = Load::start(&[addr], "/health", rate, 96);
            let ran = self.slipway(args, want);
            let report = load.stop();
            ran?;
            eprintln!(
                "bench:   {} {step}: {}",
                self.proxy.name(),
                report.summary()
            );
            steps.push((step, report));
        }
        Ok(steps)
    }

    fn slipway(&self, args: &[&str], want: i32) -> Res<()> {
        let out = Command::new(env!("CARGO_BIN_EXE_slipway"))
            .arg("--config")
            .arg(self.dir.join("slipway.toml"))
            .args(args)
            .env("NO_COLOR", "1")
            .output()
            .map_err(|e| format!("cannot run slipway: {e}"))?;
        let code = out.status.code().unwrap_or(-1);
        if code != want {
            return Err(format!(
                "slipway {} behind {}: exit {code}, wanted {want}\n{}",
                args.join(" "),
                self.proxy.name(),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(())
    }

    fn compose(&self, args: &[&str]) -> Res<()> {
        super::compose(&self.project, &self.dir, args, &[])
    }

    fn clean(&self) {
        let _ = self.compose(&["down", "--volumes", "--remove-orphans", "--timeout", "1"]);
        for tag in ["v1", "v2", "v3"] {
            let _ = Command::new("docker")
                .args(["rmi", "--force", &format!("{}:{tag}", self.repo)])
                .output();
        }
        // Release tags slipway added (slipway-bench-N) name the same images.
        if let Ok(out) = Command::new("docker")
            .args(["images", "--format", "{{.ID}}", &self.repo])
            .output()
        {
            for id in String::from_utf8_lossy(&out.stdout).lines() {
                let _ = Command::new("docker").args(["rmi", "--force", id]).output();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
