//! `slipway status`: what runs now (read from Docker), the current and
//! rollback releases, whether the rollback images still exist and which tags
//! name them, services that drifted from the live release, and any held lock
//! or unfinished deploy.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::backend::compose::context::state_dir;
use crate::backend::swarm::judge::TaskView;
use crate::backend::tags::Owner;
use crate::config::names::split_image;
use crate::config::BackendKind;
use crate::engine::Docker;
use crate::error::Result;
use crate::pipeline::plan::{self, Drift};
use crate::settings::Settings;
use crate::state::{EnvLock, LockInfo, LockState, Release, State};

#[derive(Serialize)]
struct Status {
    env: String,
    current: Option<Release>,
    rollback: Option<Release>,
    rollback_images_present: bool,
    /// Tags that name the rollback release's images now (the way back):
    /// this environment's own `slipway-<project>.<env>-rollback`, and the
    /// plain `rollback_tag` while it is this environment's.
    way_back_tags: Vec<String>,
    locked: Option<LockInfo>,
    stale_lock: Option<LockInfo>,
    unfinished: Option<Release>,
    services: BTreeMap<String, ServiceNow>,
    /// Services whose running image is not the current release's.
    drift: Vec<Drift>,
    /// With backend = "swarm": the stack and each service's tasks per node.
    #[serde(skip_serializing_if = "Option::is_none")]
    stack: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    tasks: BTreeMap<String, Vec<TaskView>>,
}

/// One service as it runs now (its first container, or task).
#[derive(Serialize)]
pub struct ServiceNow {
    pub image: Option<String>,
    /// The image ID (Compose) or registry digest (Swarm) it runs.
    pub image_id: Option<String>,
    pub container: Option<String>,
    pub state: String,
    pub health: String,
}

/// What the backend reports about what runs.
pub struct Now {
    pub rollback_images_present: bool,
    pub way_back_tags: Vec<String>,
    pub services: BTreeMap<String, ServiceNow>,
    /// Service → the image IDs (digests) its running containers (tasks) run.
    pub running: BTreeMap<String, Vec<String>>,
    pub stack: Option<String>,
    pub tasks: BTreeMap<String, Vec<TaskView>>,
}

/// Read the history, the images and tags, the lock and the containers, then print.
pub async fn run(s: Settings) -> Result<()> {
    let state = State::open(&state_dir(&s.config))?;
    let history = state.history(&s.env.name, None)?;
    let current = plan::current(&history).cloned();
    let rollback = plan::rollback_target(&history, current.as_ref()).cloned();
    let now = match &s.env.backend {
        BackendKind::Compose => compose_now(&s, rollback.as_ref()).await?,
        BackendKind::Swarm { .. } => {
            crate::backend::swarm::status::now(&s, rollback.as_ref()).await?
        }
    };
    let (locked, stale_lock) = match EnvLock::inspect(&state_dir(&s.config), &s.env.name) {
        LockState::Free => (None, None),
        LockState::Held(i) => (Some(i), None),
        LockState::Stale(i) => (None, Some(i)),
    };
    // In progress with a live lock holder is a run under way, not an interrupted one.
    let unfinished = plan::unfinished(&history)
        .filter(|_| locked.is_none())
        .cloned();
    // A deploy under way changes containers on purpose: no drift then.
    let drift = match &current {
        Some(c) if locked.is_none() => plan::drift(c, &now.running),
        _ => Vec::new(),
    };
    let status = Status {
        env: s.env.name.clone(),
        current,
        rollback,
        rollback_images_present: now.rollback_images_present,
        way_back_tags: now.way_back_tags,
        locked,
        stale_lock,
        unfinished,
        services: now.services,
        drift,
        stack: now.stack,
        tasks: now.tasks,
    };
    if s.out.json {
        s.out.json(&status);
        return Ok(());
    }
    print_human(&status);
    Ok(())
}

/// What runs on the local engine (Compose), and the way back's tags.
async fn compose_now(s: &Settings, rollback: Option<&Release>) -> Result<Now> {
    let docker = Docker::connect().await?;
    let rollback_images_present = images_present(&docker, rollback).await?;
    let way_back_tags = match rollback.filter(|_| rollback_images_present) {
        Some(r) => way_back_tags(&docker, s, r).await?,
        None => Vec::new(),
    };
    let (services, running) = services_now(&docker, s).await?;
    Ok(Now {
        rollback_images_present,
        way_back_tags,
        services,
        running,
        stack: None,
        tasks: BTreeMap::new(),
    })
}

/// Whether every image of the rollback release is still on this host.
async fn images_present(docker: &Docker, rollback: Option<&Release>) -> Result<bool> {
    let Some(r) = rollback else {
        return Ok(false);
    };
    let mut present = true;
    for img in r.services.values() {
        present &= docker.image_id(&img.image_id).await?.is_some();
    }
    Ok(present)
}

/// The tags that name every image of release `r` now: this environment's
/// own way-back tag, and the plain `rollback_tag` where its holder tag is too.
async fn way_back_tags(docker: &Docker, s: &Settings, r: &Release) -> Result<Vec<String>> {
    let owner = Owner::new(&s.config.project, &s.env.name);
    let own = owner.way_back_tag();
    let plain = s.env.rollback_tag.clone();
    let mut tags = Vec::new();
    for (tag, needs) in [
        (own.clone(), vec![own]),
        (plain.clone(), vec![plain, owner.holder_tag()]),
    ] {
        let mut all = true;
        for img in r.services.values() {
            let repo = split_image(&img.image).0;
            for t in &needs {
                all &= docker.image_id(&format!("{repo}:{t}")).await?.as_deref()
                    == Some(img.image_id.as_str());
            }
        }
        if all {
            tags.push(tag);
        }
    }
    Ok(tags)
}

/// Each configured service's first container as shown, and the image IDs
/// of its running containers (for drift).
async fn services_now(
    docker: &Docker,
    s: &Settings,
) -> Result<(BTreeMap<String, ServiceNow>, BTreeMap<String, Vec<String>>)> {
    let mut services = BTreeMap::new();
    let mut running = BTreeMap::new();
    for name in s.config.services.keys() {
        let cs = docker.containers(&s.config.project, Some(name)).await?;
        running.insert(
            name.clone(),
            cs.iter()
                .filter(|c| c.state == "running")
                .map(|c| c.image_id.clone())
                .collect::<Vec<_>>(),
        );
        let now = match cs.first() {
            None => ServiceNow {
                image: None,
                image_id: None,
                container: None,
                state: "missing".into(),
                health: "none".into(),
            },
            Some(c) => ServiceNow {
                image: Some(c.image.clone()),
                image_id: Some(c.image_id.clone()),
                container: Some(c.name.clone()),
                state: c.state.clone(),
                health: c.health.as_str().into(),
            },
        };
        services.insert(name.clone(), now);
    }
    Ok((services, running))
}

fn release_line(r: &Option<Release>) -> String {
    match r {
        None => "none".into(),
        Some(r) => format!(
            "release {} ({}, {}, {})",
            r.id,
            r.kind.as_str(),
            r.tag.as_deref().unwrap_or("-"),
            r.finished_at.as_deref().unwrap_or(&r.started_at)
        ),
    }
}

/// The human report: releases, way back, drift and locks, then services.
fn print_human(s: &Status) {
    print_releases(s);
    println!();
    print_services(&s.services);
    print_tasks(s);
}

/// Swarm: each service's tasks, one line per node.
fn print_tasks(s: &Status) {
    if let Some(stack) = &s.stack {
        println!("\nstack {stack}");
    }
    for (svc, tasks) in &s.tasks {
        for t in tasks {
            println!(
                "  {svc}{} on {}{}: {} {}{}",
                // A global service's tasks have no slot: one per node.
                t.slot
                    .filter(|n| *n > 0)
                    .map(|n| format!(".{n}"))
                    .unwrap_or_default(),
                t.node,
                if t.node_down { " (node down)" } else { "" },
                t.state,
                t.digest.as_deref().map(short).unwrap_or_else(|| "-".into()),
                if t.message.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", t.message)
                }
            );
        }
    }
}

fn short(id: &str) -> String {
    id.trim_start_matches("sha256:").chars().take(12).collect()
}

/// The current and rollback releases, the way-back tags, drift, locks and
/// an unfinished deploy, one line each.
fn print_releases(s: &Status) {
    println!("environment  {}", s.env);
    println!("current      {}", release_line(&s.current));
    let present = if s.rollback.is_none() {
        ""
    } else if s.rollback_images_present {
        "  (images present)"
    } else {
        "  (IMAGES MISSING)"
    };
    println!("rollback     {}{present}", release_line(&s.rollback));
    if !s.way_back_tags.is_empty() {
        let tags: Vec<String> = s.way_back_tags.iter().map(|t| format!(":{t}")).collect();
        println!("way back     {}", tags.join(", "));
    }
    if let Some(c) = &s.current {
        for d in &s.drift {
            println!(
                "DRIFT        {}; changed outside slipway (the next deploy pins release {} as the way back)",
                d.describe(c.id),
                c.id
            );
        }
    }
    if let Some(l) = &s.locked {
        println!(
            "locked       by {} (pid {} on {}, since {})",
            l.command, l.pid, l.host, l.since
        );
    }
    if let Some(l) = &s.stale_lock {
        println!(
            "stale lock   left by {} (pid {} on {}, since {}); `slipway recover` clears it",
            l.command, l.pid, l.host, l.since
        );
    }
    if let Some(u) = &s.unfinished {
        println!(
            "unfinished   {}; run `slipway recover`",
            release_line(&Some(u.clone()))
        );
    }
}

/// What runs per service: state, health, short image ID and image.
fn print_services(services: &BTreeMap<String, ServiceNow>) {
    println!(
        "{:<14} {:<10} {:<10} {:<20} image",
        "service", "state", "health", "image id"
    );
    for (name, svc) in services {
        let id = svc
            .image_id
            .as_deref()
            .map(|i| {
                i.trim_start_matches("sha256:")
                    .chars()
                    .take(12)
                    .collect::<String>()
            })
            .unwrap_or_else(|| "-".into());
        println!(
            "{:<14} {:<10} {:<10} {:<20} {}",
            name,
            svc.state,
            svc.health,
            id,
            svc.image.as_deref().unwrap_or("-")
        );
    }
}
