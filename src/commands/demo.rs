//! `slipway demo`: the seed's story on the local Docker engine, with nothing
//! prepared: a local registry, fixture images for `api` and `web`, then
//! deploy v1, deploy v2, deploy v3 (whose smoke test fails and is rolled back
//! automatically), `status` and `history`. Cleans up afterwards unless
//! `--keep`; `--clean` removes what a kept demo left.

use std::path::{Path, PathBuf};

use crate::cli::{CiArgs, DeployArgs, FailureLogsArgs};
use crate::config::Config;
use crate::engine::exec::{self, Cmd};
use crate::engine::Docker;
use crate::error::{Error, Exit, Result};
use crate::fixture::{self, App, Registry};
use crate::output::Printer;
use crate::settings::Settings;

const PROJECT: &str = "slipway-demo";

fn demo_dir() -> PathBuf {
    std::env::temp_dir().join("slipway-demo")
}

pub async fn run(out: Printer, keep: bool, clean_only: bool) -> Result<()> {
    let docker = Docker::connect().await?;
    crate::backend::compose::context::check_compose().await?;
    clean(&docker).await;
    if clean_only {
        out.line("demo removed");
        return Ok(());
    }
    let started = std::time::Instant::now();
    let registry = set_up(&docker, &out).await?;
    let result = async {
        start_cache().await?;
        tell_the_story(&out).await
    }
    .await;
    if keep {
        out.line(format!(
            "\nthe demo stack is still running (project {PROJECT}, config {}); remove it with `slipway demo --clean`",
            demo_dir().join("slipway.toml").display()
        ));
    } else {
        clean(&docker).await;
    }
    drop(registry);
    result?;
    out.line(format!(
        "\ndemo finished in {:.0}s",
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// A loopback registry holding api and web v1..v3 (v3's core API broken),
/// and the project folder. The registry lives as long as the returned value.
async fn set_up(docker: &Docker, out: &Printer) -> Result<Registry> {
    let step = out.step("setup");
    step.set("base image");
    fixture::ensure_base(docker).await?;
    step.set("registry");
    let registry = Registry::start()?;
    let repo = |svc: &str| format!("{}/slipway-demo/{svc}", registry.addr);
    step.set("images");
    let (api_repo, web_repo) = (repo("api"), repo("web"));
    let mut publishes = Vec::new();
    for v in ["v1", "v2", "v3"] {
        let mut api = App::new(v);
        // v3's core API is broken: healthy container, failing smoke test.
        api.smoke_ok = v != "v3";
        publishes.push(fixture::publish(docker, api, &api_repo, v));
        publishes.push(fixture::publish(docker, App::new(v), &web_repo, v));
    }
    futures_util::future::try_join_all(publishes).await?;
    let port = fixture::free_port()?;
    let dir = demo_dir();
    write_project(&dir, &api_repo, &web_repo, port)?;
    step.done(format!(
        "registry {}, images api+web v1..v3, project in {}",
        registry.addr,
        dir.display()
    ));
    Ok(registry)
}

/// The database-like service slipway never touches.
async fn start_cache() -> Result<()> {
    let mut compose_up = Cmd::new("docker").args([
        "compose",
        "--project-name",
        PROJECT,
        "up",
        "--detach",
        "--",
        "cache",
    ]);
    compose_up.cwd = Some(demo_dir());
    let o = exec::run(&compose_up, std::time::Duration::from_secs(120))
        .await
        .map_err(|e| Error::env(format!("docker compose: {e}")))?;
    if !o.success() {
        return Err(Error::env(format!(
            "starting the demo's cache service: {}",
            o.tail()
        )));
    }
    Ok(())
}

/// Deploy v1, v2, then v3 (rolled back), then `status` and `history`.
async fn tell_the_story(out: &Printer) -> Result<()> {
    let config = Config::load(&demo_dir().join("slipway.toml"))?;
    let env = config.environment(None)?.clone();
    let settings = || Settings {
        config: config.clone(),
        env: env.clone(),
        out: Printer::new(false),
        metrics_file: None,
        notify_env: Default::default(),
        failure_log_lines: crate::probe::logs::DEFAULT_LINES,
    };
    let deploy = |tag: &str| DeployArgs {
        tag: Some(tag.into()),
        wait: None,
        junit: None,
        failure_logs: FailureLogsArgs {
            lines: crate::probe::logs::DEFAULT_LINES,
        },
        ci: CiArgs {
            commit: None,
            branch: Some("demo".into()),
            run_url: None,
        },
    };
    for (tag, story) in [
        ("v1", "first release"),
        ("v2", "a good update: v1 becomes the way back"),
        (
            "v3",
            "a release whose core API smoke test fails: slipway must put v2 back",
        ),
    ] {
        out.line(format!("\n── deploy {tag}: {story}"));
        match super::deploy::run(settings(), &deploy(tag)).await {
            Ok(()) => {}
            Err(e) if tag == "v3" && e.exit() == Exit::RolledBack => {
                out.line(format!("  exit 1 as expected: {e}"));
            }
            Err(e) => return Err(e),
        }
    }
    out.line("\n── slipway status");
    super::status::run(settings()).await?;
    out.line("\n── slipway history");
    super::history::run(settings(), None)?;
    Ok(())
}

fn write_project(dir: &Path, api: &str, web: &str, port: u16) -> Result<()> {
    fixture::Stack {
        project: PROJECT,
        env: "demo",
        api_repo: api,
        web_repo: web,
        port,
        health_timeout: "30s",
        keep_releases: 2,
        web_after_api: true,
        extra_config: "",
    }
    .write(dir)
    .map_err(|e| {
        Error::env(format!(
            "cannot write the demo project in {}: {e}",
            dir.display()
        ))
    })
}

/// Remove the demo's containers, network, images and folder.
async fn clean(docker: &Docker) {
    let down = Cmd::new("docker").args([
        "compose",
        "--project-name",
        PROJECT,
        "down",
        "--volumes",
        "--remove-orphans",
    ]);
    let _ = exec::run(&down, std::time::Duration::from_secs(120)).await;
    if let Ok(images) = docker.images().await {
        for img in images {
            if img
                .tags
                .iter()
                .chain(img.digests.iter())
                .any(|t| t.contains("/slipway-demo/"))
            {
                let _ = docker.remove_image(&img.id).await;
            }
        }
    }
    let _ = std::fs::remove_dir_all(demo_dir());
}
