//! Running `[hooks]`: a command on the host (in the config's folder), or a
//! one-off `docker compose run --rm --no-deps` of a deployed service on a
//! release's exact image (how a team runs its database migrations against
//! the image about to go live). Either way the hook gets the release as
//! `SLIPWAY_*` variables, `{url}`/`{env}`/`{tag}` are expanded in its
//! arguments, and it is killed at its timeout (a one-off container too).
//!
//! A failing `pre_deploy` hook stops the deploy; the caller turns that into
//! an aborted release. Every other hook only warns: the release has already
//! ended by the time it runs.

use std::path::{Path, PathBuf};

use crate::config::{Hook, HookPoint};
use crate::engine::compose::pin_override;
use crate::engine::exec::{self, Cmd, Output};
use crate::engine::Compose;
use crate::notify::Payload;
use crate::probe::Vars;

use crate::backend::Session;

/// The variables a hook sees: the release's (from the event payload), the
/// hook point, and the environment's URL.
pub fn env_vars(point: HookPoint, payload: &Payload, url: &str) -> Vec<(String, String)> {
    let mut vars = payload.env_vars();
    vars.push(("SLIPWAY_HOOK".into(), point.as_str().into()));
    vars.push(("SLIPWAY_URL".into(), url.into()));
    vars
}

/// Where a service hook runs: the override pinning its image, and the one-off container's name.
pub struct Pinned {
    pub file: PathBuf,
    pub container: String,
}

/// The command for a hook, as data.
pub fn command(
    hook: &Hook,
    compose: &Compose,
    dir: &Path,
    vars: &[(String, String)],
    expand: &Vars,
    pinned: Option<&Pinned>,
) -> Cmd {
    let args: Vec<String> = hook.command.iter().map(|a| expand.expand(a)).collect();
    let mut cmd = match (&hook.service, pinned) {
        (Some(svc), Some(p)) => {
            let names: Vec<String> = vars.iter().map(|(k, _)| k.clone()).collect();
            compose.run_once(&p.file, svc, &p.container, &names, &args)
        }
        _ => {
            let mut it = args.into_iter();
            let program = it.next().unwrap_or_default();
            let mut cmd = Cmd::new(&program).args(it);
            cmd.cwd = Some(dir.to_path_buf());
            cmd
        }
    };
    cmd.env = vars.to_vec();
    cmd
}

/// The one-off container's name: unique per release, hook point and hook.
pub fn container_name(
    project: &str,
    service: &str,
    point: HookPoint,
    release: i64,
    n: usize,
) -> String {
    format!(
        "{project}-{service}-{}-{release}-{n}",
        point.as_str().replace('_', "-")
    )
}

/// Run the hooks of `point`. `image_release` is the release whose images a
/// service hook runs on. `pre_deploy` stops at the first failure and returns
/// it; other points run every hook and warn about each failure.
pub async fn run_point(
    ctx: &Session,
    compose: &Compose,
    point: HookPoint,
    payload: &Payload,
    image_release: Option<i64>,
) -> Result<(), String> {
    let hooks: Vec<&Hook> = ctx.cfg.hooks.at(point, &ctx.env.name).collect();
    for (n, hook) in hooks.into_iter().enumerate() {
        if let (Some(id), HookPoint::PreDeploy) = (payload.release, point) {
            ctx.state
                .journal(id, crate::state::Step::PreDeploy, &hook.name)
                .map_err(|e| e.to_string())?;
        }
        let result = run_one(ctx, compose, hook, n, payload, image_release).await;
        match (result, point) {
            (Ok(()), _) => {}
            (Err(e), HookPoint::PreDeploy) => return Err(e),
            (Err(e), _) => ctx.out.warn(e),
        }
    }
    Ok(())
}

async fn run_one(
    ctx: &Session,
    compose: &Compose,
    hook: &Hook,
    n: usize,
    payload: &Payload,
    image_release: Option<i64>,
) -> Result<(), String> {
    let point = hook.point.as_str();
    let what = format!("{point} hook `{}`", hook.name);
    let step = ctx.out.step("hook");
    step.set(format!("{point} {}", hook.name));
    let vars = env_vars(hook.point, payload, ctx.env.url.as_deref().unwrap_or(""));
    let expand = ctx.vars(payload.tag.as_deref().unwrap_or(""));
    let pinned = match &hook.service {
        None => None,
        Some(svc) => match pin(ctx, hook, svc, n, payload, image_release) {
            Ok(p) => Some(p),
            Err(e) => {
                step.fail(&hook.name);
                return Err(format!("{what}: {e}"));
            }
        },
    };
    let mut cmd = command(hook, compose, &ctx.cfg.dir, &vars, &expand, pinned.as_ref());
    // What a script prints goes to the terminal (and CI logs): a migration
    // printing its DATABASE_URL must not show the password. exec hides it
    // in stderr; stdout, which exec keeps whole for parsing, is shown here.
    cmd.hide = expand.secrets.clone();
    let out = exec::run(&cmd, hook.timeout).await.map(|mut o| {
        expand.secrets.redact_in_place(&mut o.stdout);
        o
    });
    if let (Some(p), Ok(o)) = (&pinned, &out) {
        if o.timed_out {
            // Killing `docker compose run` leaves its container running.
            let _ = exec::run(&remove_container(&p.container), REMOVE_TIMEOUT).await;
        }
    }
    if let Some(p) = &pinned {
        let _ = std::fs::remove_file(&p.file);
    }
    match out {
        Ok(o) if o.success() => {
            step.done(format!("{point} {}", hook.name));
            show(ctx, &o);
            Ok(())
        }
        Ok(o) => {
            step.fail(format!("{point} {}", hook.name));
            // Its output goes to the terminal only: history and notifications
            // get the reason, never what a script may have printed.
            let lines = printed(&o);
            if !lines.is_empty() {
                ctx.out
                    .line(indent(&lines[lines.len().saturating_sub(10)..].join("\n")));
            }
            Err(format!("{what} {}", failure(&o, hook)))
        }
        Err(e) => {
            step.fail(format!("{point} {}", hook.name));
            Err(format!(
                "{what}: cannot run `{}`: {e}",
                hook.command.join(" ")
            ))
        }
    }
}

/// Pin the hook's service to the release's image in an override of its own.
fn pin(
    ctx: &Session,
    hook: &Hook,
    svc: &str,
    n: usize,
    payload: &Payload,
    image_release: Option<i64>,
) -> Result<Pinned, String> {
    let id = image_release.ok_or("no release whose image it could run on")?;
    let repo = ctx
        .repos
        .get(svc)
        .ok_or_else(|| format!("`{svc}` is not a deployed service"))?;
    let image = format!("{repo}:{}", ctx.owner().release_tag(id));
    let release = payload.release.unwrap_or(id);
    let file = super::context::override_path(&ctx.cfg, &ctx.env.name, release)
        .with_file_name(format!("hook-{release}-{}-{n}.yml", hook.point.as_str()));
    let images = [(svc.to_string(), image)].into_iter().collect();
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    std::fs::write(&file, pin_override(&images, "never"))
        .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
    Ok(Pinned {
        file,
        container: container_name(&ctx.cfg.project, svc, hook.point, release, n),
    })
}

/// Why a hook failed, in words: its exit code, or that it timed out.
fn failure(o: &Output, hook: &Hook) -> String {
    if o.timed_out {
        format!(
            "timed out after {} and was stopped",
            humantime::format_duration(hook.timeout)
        )
    } else {
        match o.code {
            Some(c) => format!("failed (exit {c})"),
            None => "was killed by a signal".to_string(),
        }
    }
}

const REMOVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Force-remove a one-off container by name.
pub fn remove_container(name: &str) -> Cmd {
    Cmd::new("docker").args(["rm", "--force", "--", name])
}

/// A hook's output, so CI logs show what a migration did.
fn show(ctx: &Session, o: &Output) {
    let lines = printed(o);
    if !lines.is_empty() {
        ctx.out
            .line(indent(&lines[lines.len().saturating_sub(20)..].join("\n")));
    }
}

/// What the hook printed (stdout, then stderr), without the progress lines
/// `docker compose run` adds on stderr (" Network x  Created").
fn printed(o: &Output) -> Vec<&str> {
    o.stdout
        .lines()
        .chain(o.stderr.lines())
        .filter(|l| !l.trim().is_empty() && !is_compose_progress(l))
        .collect()
}

pub fn is_compose_progress(line: &str) -> bool {
    let words: Vec<&str> = line.split_whitespace().collect();
    matches!(words.first(), Some(&("Network" | "Container" | "Volume")))
        && words.len() == 3
        && words[2].chars().next().is_some_and(char::is_uppercase)
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("    │ {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn hook(service: Option<&str>) -> Hook {
        Hook {
            point: HookPoint::PreDeploy,
            name: "migrate".into(),
            command: vec![
                "pnpm".into(),
                "db:migrate:deploy".into(),
                "--url={url}".into(),
            ],
            service: service.map(String::from),
            timeout: Duration::from_secs(60),
            environments: None,
        }
    }

    fn compose() -> Compose {
        Compose {
            project: "goodgo".into(),
            dir: PathBuf::from("/srv/goodgo"),
            files: vec!["docker-compose.prod.yml".into()],
            env_file: Some(PathBuf::from("/srv/goodgo/.env")),
            secrets: Default::default(),
        }
    }

    fn payload() -> Payload {
        let mut p = Payload::new("deploy_started", "goodgo", "staging");
        p.release = Some(8);
        p.tag = Some("v2".into());
        p.status = Some("in_progress".into());
        p
    }

    fn expand() -> Vars {
        Vars {
            url: "https://staging.example".into(),
            env: "staging".into(),
            tag: "v2".into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_host_hook_runs_in_the_config_folder_with_slipway_variables() {
        let vars = env_vars(HookPoint::PreDeploy, &payload(), "https://staging.example");
        let cmd = command(
            &hook(None),
            &compose(),
            Path::new("/srv/goodgo"),
            &vars,
            &expand(),
            None,
        );
        assert_eq!(cmd.program, "pnpm");
        assert_eq!(
            cmd.args,
            ["db:migrate:deploy", "--url=https://staging.example"]
        );
        assert_eq!(cmd.cwd.as_deref(), Some(Path::new("/srv/goodgo")));
        let env: std::collections::BTreeMap<_, _> = cmd.env.into_iter().collect();
        assert_eq!(env["SLIPWAY_ENV"], "staging");
        assert_eq!(env["SLIPWAY_RELEASE"], "8");
        assert_eq!(env["SLIPWAY_TAG"], "v2");
        assert_eq!(env["SLIPWAY_STATUS"], "in_progress");
        assert_eq!(env["SLIPWAY_REASON"], "");
        assert_eq!(env["SLIPWAY_HOOK"], "pre_deploy");
        assert_eq!(env["SLIPWAY_URL"], "https://staging.example");
    }

    #[test]
    fn a_service_hook_is_a_one_off_compose_run_on_the_pinned_image() {
        let vars = env_vars(HookPoint::PreDeploy, &payload(), "");
        let pinned = Pinned {
            file: PathBuf::from("/srv/goodgo/.slipway/staging/hook-8-pre_deploy-0.yml"),
            container: container_name("goodgo", "api", HookPoint::PreDeploy, 8, 0),
        };
        let cmd = command(
            &hook(Some("api")),
            &compose(),
            Path::new("/srv/goodgo"),
            &vars,
            &expand(),
            Some(&pinned),
        );
        assert_eq!(cmd.program, "docker");
        let args = cmd.args.join(" ");
        assert!(
            args.starts_with(
                "compose --project-name goodgo --file docker-compose.prod.yml \
                 --file /srv/goodgo/.slipway/staging/hook-8-pre_deploy-0.yml \
                 --env-file /srv/goodgo/.env run --rm --no-deps -T --name goodgo-api-pre-deploy-8-0 -e SLIPWAY_EVENT"
            ),
            "{args}"
        );
        assert!(
            args.ends_with(
                "-e SLIPWAY_URL -- api pnpm db:migrate:deploy --url=https://staging.example"
            ),
            "{args}"
        );
        // Values travel in the environment, not in argv.
        assert!(!args.contains("in_progress"), "{args}");
        assert!(cmd.env.iter().any(|(k, v)| k == "SLIPWAY_TAG" && v == "v2"));
    }

    #[test]
    fn compose_progress_is_not_hook_output() {
        assert!(is_compose_progress(" Network goodgo_default  Creating"));
        assert!(is_compose_progress(" Container goodgo-db-1  Running"));
        assert!(!is_compose_progress("Applied 2 migrations"));
        assert!(!is_compose_progress("Network timeout after 3 retries"));
        let o = Output {
            code: Some(1),
            stdout: "migrating v2\n".into(),
            stderr: " Network goodgo_default  Created\nerror: relation exists\n".into(),
            timed_out: false,
            hide: Default::default(),
        };
        assert_eq!(printed(&o), ["migrating v2", "error: relation exists"]);
        assert_eq!(failure(&o, &hook(None)), "failed (exit 1)");
        let timed_out = Output {
            timed_out: true,
            code: None,
            ..o
        };
        assert_eq!(
            failure(&timed_out, &hook(None)),
            "timed out after 1m and was stopped"
        );
        assert_eq!(
            remove_container("goodgo-api-pre-deploy-8-0").args,
            ["rm", "--force", "--", "goodgo-api-pre-deploy-8-0"]
        );
    }
}
