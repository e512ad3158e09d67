//! `cargo run --example startfirst`: the start-first example stack end to
//! end on the local Docker engine, under load.
//!
//! Builds the fixture proxy and three releases of `web` (v1, v2, and a v3
//! whose smoke test fails), starts a registry on 127.0.0.1, then with the
//! files in this folder: deploys v1, deploys v2 while a loopback load
//! generator sends requests through the proxy (none may fail), deploys v3
//! (rolled back to v2 by restarting its stopped container, again under load), and removes
//! everything it made.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use slipway::fixture::load::Load;
use slipway::fixture::{self, App, Registry};

type Res<T> = Result<T, String>;

fn main() {
    if let Err(e) = run() {
        eprintln!("example: {e}");
        std::process::exit(1);
    }
}

struct Example {
    dir: PathBuf,
    slipway: PathBuf,
    env: Vec<(String, String)>,
}

fn run() -> Res<()> {
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/startfirst");
    // The example drives the real binary, built from this checkout.
    let built = Command::new(env!("CARGO"))
        .args(["build", "--quiet", "--bin", "slipway"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .map_err(|e| format!("cargo build: {e}"))?;
    if !built.success() {
        return Err("cargo build --bin slipway failed".into());
    }
    let slipway = std::env::current_exe()
        .ok()
        .and_then(|p| Some(p.parent()?.parent()?.join("slipway")))
        .filter(|p| p.exists())
        .ok_or("cannot find the slipway binary next to this example")?;

    let rt = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    let docker = rt
        .block_on(slipway::engine::Docker::connect())
        .map_err(|e| e.to_string())?;
    rt.block_on(fixture::ensure_base(&docker))
        .map_err(|e| e.to_string())?;
    eprintln!("example: building the proxy and web v1, v2, v3 (v3's smoke test fails)");
    let proxy = rt
        .block_on(fixture::proxy::image(&docker))
        .map_err(|e| e.to_string())?;
    let registry = Registry::start().map_err(|e| e.to_string())?;
    let repo = format!("{}/slipway-startfirst/web", registry.addr);
    for (tag, ok) in [("v1", true), ("v2", true), ("v3", false)] {
        let mut app = App::new(tag);
        app.boot_delay = 2;
        app.smoke_ok = ok;
        rt.block_on(fixture::publish(&docker, app, &repo, tag))
            .map_err(|e| e.to_string())?;
    }

    let port = fixture::free_port().map_err(|e| e.to_string())?;
    let dir = std::env::temp_dir().join(format!("slipway-startfirst-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    std::fs::copy(
        here.join("docker-compose.yml"),
        dir.join("docker-compose.yml"),
    )
    .map_err(|e| e.to_string())?;
    let config = std::fs::read_to_string(here.join("slipway.toml")).map_err(|e| e.to_string())?;
    std::fs::write(
        dir.join("slipway.toml"),
        config.replace("127.0.0.1:8080", &format!("127.0.0.1:{port}")),
    )
    .map_err(|e| e.to_string())?;
    let ex = Example {
        dir,
        slipway,
        env: vec![
            ("PROXY_IMAGE".into(), proxy),
            ("PROXY_PORT".into(), port.to_string()),
            ("REGISTRY".into(), registry.addr.clone()),
        ],
    };
    let result = ex.story(port);
    ex.clean(&repo);
    result
}

impl Example {
    fn story(&self, port: u16) -> Res<()> {
        self.compose(&["up", "--detach", "--", "proxy"])?;
        self.slipway(&["deploy", "--tag", "v1"], 0)?;
        let addr = format!("127.0.0.1:{port}")
            .parse()
            .map_err(|e| format!("{e}"))?;
        for (tag, want, what) in [
            ("v2", 0, "deploy v2 (start-first)"),
            ("v3", 1, "deploy v3, whose smoke test fails"),
        ] {
            let load = Load::start(&[addr], "/health", 300, 32);
            std::thread::sleep(Duration::from_millis(300));
            let r = self.slipway(&["deploy", "--tag", tag], want);
            let report = load.stop();
            r?;
            println!("example: {what}, under load: {}", report.summary());
        }
        self.slipway(&["history"], 0)?;
        Ok(())
    }

    fn slipway(&self, args: &[&str], want: i32) -> Res<()> {
        println!("$ slipway {}", args.join(" "));
        let status = Command::new(&self.slipway)
            .arg("--config")
            .arg(self.dir.join("slipway.toml"))
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .status()
            .map_err(|e| format!("cannot run slipway: {e}"))?;
        match status.code() {
            Some(c) if c == want => Ok(()),
            c => Err(format!(
                "slipway {}: exit {c:?}, expected {want}",
                args.join(" ")
            )),
        }
    }

    fn compose(&self, args: &[&str]) -> Res<()> {
        let out = Command::new("docker")
            .args(["compose", "--project-name", "slipway-startfirst"])
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&self.dir)
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    fn clean(&self, repo: &str) {
        let _ = self.compose(&["down", "--volumes", "--remove-orphans", "--timeout", "1"]);
        if let Ok(out) = Command::new("docker")
            .args(["images", "--format", "{{.ID}} {{.Repository}}"])
            .output()
        {
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                if let Some((id, r)) = line.split_once(' ') {
                    if r == repo {
                        let _ = Command::new("docker").args(["rmi", "--force", id]).output();
                    }
                }
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
