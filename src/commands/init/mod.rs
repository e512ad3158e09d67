//! `slipway init`: read the compose project the way every other command does
//! (`docker compose config --format json`), look at the local images'
//! HEALTHCHECKs where Docker has them, draft a commented slipway.toml
//! (`draft`), prove it loads, and write it without ever replacing a
//! file that exists (exit 2, nothing written).

mod draft;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::backend::compose::context::check_compose;
use crate::cli::{Cli, InitArgs};
use crate::config::names::check_name;
use crate::config::Config;
use crate::engine::compose::{self, Compose, Model};
use crate::engine::{exec, Docker};
use crate::error::{Error, Result};
use crate::output::Printer;
use draft::{Draft, Inputs};

/// The files `docker compose` reads when given none, in its order of preference.
const DEFAULT_FILES: &[&str] = &[
    "compose.yaml",
    "compose.yml",
    "docker-compose.yaml",
    "docker-compose.yml",
];
const OVERRIDE_FILES: &[&str] = &[
    "compose.override.yaml",
    "compose.override.yml",
    "docker-compose.override.yaml",
    "docker-compose.override.yml",
];

/// Check the flags, read the compose project, draft, prove, write, report.
pub async fn run(cli: &Cli, args: &InitArgs) -> Result<()> {
    let out = Printer::new(cli.json);
    let target = std::path::absolute(&cli.config).unwrap_or_else(|_| cli.config.clone());
    if target.exists() {
        return Err(exists(&target));
    }
    let dir = target
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let files = compose_files(&dir, &args.compose)?;
    let env = cli.env.clone().unwrap_or_else(|| "production".into());
    check_name("environment", &env).map_err(|m| Error::Usage(format!("--env: {m}")))?;
    if let Some(p) = &args.project {
        check_name("project", p).map_err(|m| Error::Usage(format!("--project: {m}")))?;
    }
    let model = read_model(&dir, &files, args.project.as_deref()).await?;
    let project = project_name(args, &model)?;
    let image_healthchecks = image_healthchecks(&model, out).await;
    // `.env.staging` for `--env staging` (the seed's habit), else `.env`.
    let env_file = [format!(".env.{env}"), ".env".to_string()]
        .into_iter()
        .find(|f| dir.join(f).is_file());
    let d = draft::draft(&Inputs {
        project: &project,
        compose_files: &files,
        env: &env,
        env_file: env_file.as_deref(),
        model: &model,
        image_healthchecks: &image_healthchecks,
    });
    something_to_deploy(&d, &files)?;
    write_loadable(&target, &d.render())?;
    report(
        out,
        &Written {
            target: &target,
            project: &project,
            env: &env,
            files: &files,
            draft: &d,
        },
    );
    Ok(())
}

/// The project as compose resolves it (`docker compose config --format json`).
async fn read_model(dir: &Path, files: &[String], project: Option<&str>) -> Result<Model> {
    check_compose().await?;
    let cmd = Compose::config_of(dir, files, project);
    let output = exec::run(&cmd, Duration::from_secs(60))
        .await
        .map_err(|e| Error::Preflight(format!("cannot run `{}`: {e}", cmd.display())))?;
    if !output.success() {
        return Err(Error::Preflight(format!(
            "compose cannot read the project ({}):\n{}",
            files.join(", "),
            output.tail()
        )));
    }
    compose::parse_model(&output.stdout).map_err(Error::Preflight)
}

/// `--project`, else the name compose gives the project; a valid name either way.
fn project_name(args: &InitArgs, model: &Model) -> Result<String> {
    let project = args
        .project
        .clone()
        .or_else(|| model.name.clone())
        .ok_or_else(|| Error::Usage("compose names no project: pass --project NAME".into()))?;
    check_name("project", &project).map_err(|m| Error::Usage(format!("project: {m}")))?;
    Ok(project)
}

/// A draft that deploys nothing is refused, each service's reason listed.
fn something_to_deploy(d: &Draft, files: &[String]) -> Result<()> {
    if d.managed().next().is_some() {
        return Ok(());
    }
    let why: Vec<String> = d
        .unmanaged()
        .map(|(n, u)| format!("    {n}: {}", u.reason(n)))
        .collect();
    Err(Error::Usage(format!(
        "no service in {} has an image from a registry for slipway to deploy; nothing was written:\n{}\n  hint: write slipway.toml by hand with a [services.NAME] table per service to deploy",
        files.join(", "),
        why.join("\n")
    )))
}

/// Write the drafted text, once it is proven to load.
fn write_loadable(target: &Path, text: &str) -> Result<()> {
    // What we write must load: `slipway check` runs the same parser.
    Config::parse(target, text).map_err(|e| {
        Error::env(format!(
            "the drafted config does not load ({e}); nothing was written. Please report this with your compose file"
        ))
    })?;
    write_new(target, text)
}

/// What `init` wrote, for the report.
struct Written<'a> {
    target: &'a Path,
    project: &'a str,
    env: &'a str,
    files: &'a [String],
    draft: &'a Draft,
}

/// The JSON object (with `--json`) and the human lines: what was written,
/// which services it deploys and which it leaves.
fn report(out: Printer, w: &Written) {
    let d = w.draft;
    let managed: Vec<&String> = d.managed().map(|(n, _)| n).collect();
    let unmanaged: BTreeMap<&String, String> =
        d.unmanaged().map(|(n, u)| (n, u.reason(n))).collect();
    if out.json {
        out.json(&serde_json::json!({
            "path": w.target,
            "project": w.project,
            "env": w.env,
            "url": d.url,
            "compose_files": w.files,
            "managed": managed,
            "unmanaged": unmanaged,
        }));
    }
    let list = |v: Vec<&String>| {
        if v.is_empty() {
            "none".to_string()
        } else {
            v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
        }
    };
    out.line(format!("  ✓ wrote      {}", w.target.display()));
    out.line(format!("    deploys    {}", list(managed)));
    out.line(format!(
        "    leaves     {} (the file says why)",
        list(unmanaged.keys().copied().collect())
    ));
    out.line("  next: review it, then `slipway check`");
}

fn exists(path: &Path) -> Error {
    Error::Usage(format!(
        "{} already exists; slipway init never overwrites a config\n  hint: remove it, or pass --config OTHER.toml",
        path.display()
    ))
}

/// Create `path` only if it does not exist (no window for a race), then fill it.
fn write_new(path: &Path, text: &str) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => exists(path),
            _ => Error::env(format!("cannot create {}: {e}", path.display())),
        })?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| Error::env(format!("cannot write {}: {e}", path.display())))
}

/// The compose files as slipway.toml will name them: relative to the
/// config's folder when inside it. None given: compose's own defaults there.
fn compose_files(dir: &Path, given: &[PathBuf]) -> Result<Vec<String>> {
    if given.is_empty() {
        let first = DEFAULT_FILES
            .iter()
            .find(|f| dir.join(f).is_file())
            .ok_or_else(|| {
                Error::Usage(format!(
                    "no compose file in {} (looked for {})\n  hint: pass --compose FILE",
                    dir.display(),
                    DEFAULT_FILES.join(", ")
                ))
            })?;
        let mut files = vec![first.to_string()];
        if let Some(o) = OVERRIDE_FILES.iter().find(|f| dir.join(f).is_file()) {
            files.push(o.to_string());
        }
        return Ok(files);
    }
    given
        .iter()
        .map(|f| {
            let abs = std::path::absolute(f).unwrap_or_else(|_| f.clone());
            if !abs.is_file() {
                return Err(Error::Usage(format!(
                    "--compose {}: no such file",
                    f.display()
                )));
            }
            let shown = abs.strip_prefix(dir).map(Path::to_path_buf).unwrap_or(abs);
            Ok(shown.to_string_lossy().into_owned())
        })
        .collect()
}

/// Which services' images, present locally, declare a HEALTHCHECK. Docker
/// not answering only costs the hint: init works from compose alone.
async fn image_healthchecks(model: &compose::Model, out: Printer) -> BTreeMap<String, bool> {
    let mut found = BTreeMap::new();
    let docker = match Docker::connect().await {
        Ok(d) => d,
        Err(e) => {
            out.warn(format!("image HEALTHCHECKs not read: {e}"));
            return found;
        }
    };
    for (name, svc) in &model.services {
        let Some(image) = &svc.image else { continue };
        if let Ok(Some(has)) = docker.image_has_healthcheck(image).await {
            found.insert(name.clone(), has);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compose_files_relative_to_the_config_and_defaults() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        assert!(compose_files(d, &[]).is_err());
        std::fs::write(d.join("docker-compose.yml"), "services: {}\n").expect("write");
        std::fs::write(d.join("docker-compose.override.yml"), "services: {}\n").expect("write");
        assert_eq!(
            compose_files(d, &[]).expect("defaults"),
            ["docker-compose.yml", "docker-compose.override.yml"]
        );
        assert_eq!(
            compose_files(d, &[d.join("docker-compose.yml")]).expect("given"),
            ["docker-compose.yml"]
        );
        let e = compose_files(d, &[d.join("nope.yml")]).expect_err("missing");
        assert!(e.to_string().contains("nope.yml"), "{e}");
        assert_eq!(e.exit() as u8, 2);
    }

    #[test]
    fn an_existing_file_is_never_replaced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("slipway.toml");
        std::fs::write(&p, "mine").expect("write");
        let e = write_new(&p, "theirs").expect_err("exists");
        assert_eq!(e.exit() as u8, 2);
        assert_eq!(std::fs::read_to_string(&p).expect("read"), "mine");
    }
}
