//! The first deploy of a stack: `docker stack deploy` of the compose files
//! with every managed service pinned to the release's digest by an override
//! of slipway's own, so the stack is created with its unmanaged services
//! too. After that slipway only updates the managed services.
//!
//! The release that creates the stack journals it first ([`creating_note`]),
//! so a failed (or killed) first release knows the stack is its own and
//! takes it down again ([`remove`]): the cluster as it was before, no stack.
//! A stack that existed before a release is never removed.

use std::time::{Duration, Instant};

use super::Ctx;
use crate::backend::Images;
use crate::engine::exec::{self, Cmd};
use crate::error::{Error, Result};
use crate::state::{Entry, Step};

const DEPLOY_TIMEOUT: Duration = Duration::from_secs(300);

/// How long a removal may take until the stack's services and networks are
/// gone (each task gets its stop grace period, 10 s by default, first).
const REMOVE_TIMEOUT: Duration = Duration::from_secs(120);

/// `docker stack rm` again this often while something is left (its network
/// removal fails while a task still uses the network).
const REMOVE_AGAIN: Duration = Duration::from_secs(10);

/// The journal detail (step `dependencies`) written before this release
/// creates `stack`. Backticks: no list of compose service names reads so.
pub fn creating_note(stack: &str) -> String {
    format!("creating stack `{stack}`")
}

/// Whether the release with this journal created `stack`: it found no stack
/// and journaled so before `docker stack deploy` ran (a run killed during
/// the deploy counts: what it created is its own). Only such a release may
/// remove the stack; a stack that existed before has no such row.
pub fn created_by(journal: &[Entry], stack: &str) -> bool {
    let note = creating_note(stack);
    journal
        .iter()
        .any(|e| e.step == Step::Dependencies && e.detail == note)
}

/// `{"services": {"api": {"image": "repo:tag@sha256:…"}}}` (JSON is YAML).
pub fn pin_digests(images: &Images) -> String {
    let services: serde_json::Map<String, serde_json::Value> = images
        .iter()
        .map(|(svc, img)| {
            (
                svc.clone(),
                serde_json::json!({ "image": format!("{}@{}", img.image, img.image_id) }),
            )
        })
        .collect();
    serde_json::json!({ "services": services }).to_string()
}

/// The command, as data: the compose files in order, then the pin.
pub fn command(ctx: &Ctx, pin: &std::path::Path) -> Cmd {
    let mut cmd = Cmd::new("docker").args(["stack", "deploy", "--detach=true"]);
    cmd = cmd.arg("--with-registry-auth");
    for f in &ctx.cfg.compose_files {
        cmd = cmd.arg("-c").arg(f.clone());
    }
    cmd = cmd
        .arg("-c")
        .arg(pin.display().to_string())
        .arg(ctx.stack.clone());
    cmd.cwd = Some(ctx.cfg.dir.clone());
    // `docker stack deploy` interpolates from its environment only: give it
    // the env file compose would have read. Values never reach output, nor
    // its error messages.
    if let Some(path) = ctx.cfg.env_file_path(&ctx.env) {
        if let Ok(file) = crate::config::env_file::EnvFile::read(&path) {
            cmd.env = file
                .values()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            cmd.hide = crate::config::redact::Secrets::from_pairs(file.values());
        }
    }
    cmd
}

pub async fn create(ctx: &Ctx, release: i64, images: &Images) -> Result<()> {
    let step = ctx.out.step("stack");
    step.set(format!("creating stack {}", ctx.stack));
    let pin = crate::backend::compose::context::override_path(&ctx.cfg, &ctx.env.name, release)
        .with_file_name(format!("stack-{release}.yml"));
    if let Some(dir) = pin.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::env(format!("cannot create {}: {e}", dir.display())))?;
    }
    std::fs::write(&pin, pin_digests(images))
        .map_err(|e| Error::env(format!("cannot write {}: {e}", pin.display())))?;
    let out = exec::run(&command(ctx, &pin), DEPLOY_TIMEOUT)
        .await
        .map_err(|e| Error::Preflight(format!("cannot run docker stack deploy: {e}")))?;
    if !out.success() {
        step.fail("");
        return Err(Error::Preflight(format!(
            "docker stack deploy {} failed:\n{}\n  hint: `docker stack config -c FILE` shows what Swarm makes of the compose files",
            ctx.stack,
            out.tail()
        )));
    }
    step.done(format!(
        "created stack {} ({} services pinned by digest)",
        ctx.stack,
        images.len()
    ));
    Ok(())
}

/// Take the stack down (`docker stack rm`) and wait until the manager lists
/// none of its services and networks: Swarm removes a network only once its
/// tasks have stopped, and a `docker stack deploy` meanwhile fails on it
/// (`network <stack>_default not found`). Only for a stack [`created_by`]
/// the failed release. Returns what to print.
pub async fn remove(ctx: &Ctx) -> Result<String> {
    let step = ctx.out.step("stack");
    step.set(format!(
        "removing stack {} (this release created it)",
        ctx.stack
    ));
    let rm = Cmd::new("docker")
        .args(["stack", "rm"])
        .arg(ctx.stack.clone());
    let started = Instant::now();
    let mut said = String::new();
    let mut last_rm: Option<Instant> = None;
    // Nothing there at the first look (a deploy that created nothing, a
    // second `recover`): `docker stack rm` still runs, and says so.
    let mut first_look: Option<bool> = None;
    loop {
        let (services, networks) = tokio::join!(
            ctx.swarm.stack_services(&ctx.stack),
            ctx.swarm.stack_networks(&ctx.stack)
        );
        let (services, networks) = match (services, networks) {
            (Ok(s), Ok(n)) => (s, n),
            (Err(e), _) | (_, Err(e)) => {
                step.fail("");
                return Err(e);
            }
        };
        let gone = services.is_empty() && networks.is_empty();
        let found = *first_look.get_or_insert(!gone);
        if gone && last_rm.is_some() {
            let note = if found {
                format!(
                    "removed stack {} (this release created it; its services and networks are gone)",
                    ctx.stack
                )
            } else {
                format!(
                    "stack {} (created by this release) has no services or networks left",
                    ctx.stack
                )
            };
            step.done(&note);
            return Ok(note);
        }
        if started.elapsed() >= REMOVE_TIMEOUT {
            step.fail("");
            let left: Vec<String> = services.into_iter().chain(networks).collect();
            return Err(Error::env(format!(
                "stack {} is still there after {}: {}{}\n  hint: `docker stack rm {}` on the manager, \
                 then check `docker stack ls` and `docker network ls`",
                ctx.stack,
                humantime::format_duration(REMOVE_TIMEOUT),
                left.join(", "),
                if said.is_empty() {
                    String::new()
                } else {
                    format!(" (docker stack rm said: {said})")
                },
                ctx.stack
            )));
        }
        // Its own errors (a network already being removed is "not found")
        // are kept for the message only: what the manager lists decides.
        if last_rm.is_none_or(|t| t.elapsed() >= REMOVE_AGAIN) {
            last_rm = Some(Instant::now());
            match exec::run(&rm, DEPLOY_TIMEOUT).await {
                Ok(out) if !out.success() => said = out.tail().trim().to_string(),
                Ok(_) => {}
                Err(e) => said = format!("cannot run docker stack rm: {e}"),
            }
            continue;
        }
        tokio::time::sleep(super::POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::ServiceImage;

    #[test]
    fn only_a_release_that_journaled_creating_the_stack_created_it() {
        let entry = |step, detail: &str| Entry::new(step, detail);
        let creating = vec![
            entry(Step::Pull, "reg/shop/api:v1"),
            entry(Step::Pin, ""),
            entry(Step::Dependencies, &creating_note("shop")),
        ];
        // Killed during `docker stack deploy` (the row is the last): its own.
        assert!(created_by(&creating, "shop"));
        // Later steps (a failed rollout, the restore) do not change that.
        let mut failed = creating.clone();
        for step in [Step::Rollout, Step::Health, Step::Smoke, Step::Restore] {
            failed.push(entry(step, ""));
        }
        assert!(created_by(&failed, "shop"));
        // Another stack's row, or a journal without one (the stack existed).
        assert!(!created_by(&creating, "shop2"));
        assert!(!created_by(&creating[..2], "shop"));
        // Compose's `dependencies` row lists services, never this note.
        assert!(!created_by(
            &[entry(Step::Dependencies, "creating stack shop")],
            "shop"
        ));
        // The same words under another step do not count.
        assert!(!created_by(
            &[entry(Step::Rollout, &creating_note("shop"))],
            "shop"
        ));
    }

    #[test]
    fn pins_each_service_by_digest() {
        let images: Images = [(
            "api".to_string(),
            ServiceImage {
                image: "reg:5000/shop/api:v1".into(),
                image_id: "sha256:ab".into(),
            },
        )]
        .into();
        assert_eq!(
            pin_digests(&images),
            r#"{"services":{"api":{"image":"reg:5000/shop/api:v1@sha256:ab"}}}"#
        );
    }
}
