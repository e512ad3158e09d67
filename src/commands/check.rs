//! `slipway check`: the config (already parsed by the time we get here), the
//! env file and its rules, plus the compose project when Compose is
//! available. Reports every env rule violation at once, each with the env
//! file's line and never the value. Touches nothing; exit 2 on any problem.

use crate::backend::compose::context::{check_compose, compose_for, load_model, resolve_repos};
use crate::config::env_rules::{check_environment, EnvReport};
use crate::error::{Error, Result};
use crate::output::Printer;
use crate::settings::Settings;

pub async fn run(s: Settings) -> Result<()> {
    let out = &s.out;
    out.line(format!("  ✓ config      {}", s.config.path.display()));
    env_file(&s)?;
    let report = env_rules(&s)?;
    warn_missing_url(&s);
    // Run every check before failing, so one run reports everything.
    let compose = compose_project(&s).await;
    let env_error = report.as_ref().filter(|r| !r.ok()).map(|r| {
        Error::Preflight(format!(
            "env file {} breaks {} rule{} (listed above); nothing was changed",
            r.shown,
            r.violations.len(),
            if r.violations.len() == 1 { "" } else { "s" }
        ))
    });
    let error = match (env_error, compose) {
        (Some(e), Err(c)) => {
            eprintln!("error: {c}");
            Some(e)
        }
        (Some(e), Ok(())) => Some(e),
        (None, Err(c)) => Some(c),
        (None, Ok(())) => None,
    };
    if out.json {
        let violations = report.as_ref().map_or(&[][..], |r| &r.violations[..]);
        out.json(&serde_json::json!({
            "ok": error.is_none(),
            "env": s.env.name,
            "env_file": s.env.env_file,
            "violations": violations,
            "error": error.as_ref().map(|e| serde_json::json!({
                "kind": e.kind(), "message": e.to_string(), "exit": e.exit() as u8
            })),
        }));
    }
    match error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// The environment's env file exists (its rules are checked next).
fn env_file(s: &Settings) -> Result<()> {
    if let Some(path) = s.config.env_file_path(&s.env) {
        if !path.is_file() {
            return Err(Error::Preflight(format!(
                "env file {} (environments.{}.env_file) does not exist",
                path.display(),
                s.env.name
            )));
        }
        s.out.line(format!("  ✓ env file    {}", path.display()));
    }
    Ok(())
}

/// Every `[env_rules]` rule of this environment against its env file, all
/// listed (lines, never values).
fn env_rules(s: &Settings) -> Result<Option<EnvReport>> {
    let report = check_environment(
        &s.config.env_rules,
        &s.env.name,
        s.env.env_file.as_deref(),
        &s.config.dir,
    )?;
    if let Some(r) = &report {
        print_rules(&s.out, s, r);
    }
    Ok(report)
}

fn print_rules(out: &Printer, s: &Settings, r: &EnvReport) {
    let rules: usize = s
        .config
        .env_rules
        .vars
        .iter()
        .filter(|v| {
            v.environments
                .as_ref()
                .is_none_or(|e| e.contains(&s.env.name))
        })
        .map(|v| v.rules.len())
        .sum();
    if r.ok() {
        out.line(format!("  ✓ env rules   {rules} rules hold in {}", r.shown));
        return;
    }
    out.line(format!(
        "  ✗ env rules   {} breaks {} of its rules:",
        r.shown,
        r.violations.len()
    ));
    for l in r.lines() {
        out.line(format!("      {l}"));
    }
}

fn warn_missing_url(s: &Settings) {
    let uses_url = s
        .config
        .smoke
        .iter()
        .any(|c| c.uses("{url}") || c.uses("{host}"));
    if s.env.url.is_none() && uses_url {
        s.out.warn(format!(
            "smoke checks use {{url}} but environments.{}.url is not set",
            s.env.name
        ));
    }
}

/// The compose project resolves and every managed service can roll as
/// configured; only a warning where Compose itself is not available.
async fn compose_project(s: &Settings) -> Result<()> {
    if let Err(e) = check_compose().await {
        s.out.warn(format!("compose project not checked: {e}"));
        return Ok(());
    }
    let model = load_model(&compose_for(&s.config, &s.env)).await?;
    let repos = resolve_repos(&s.config, &model)?;
    crate::backend::compose::rollout::refuse_unrunnable(&s.config, &model)?;
    let list: Vec<String> = repos
        .iter()
        .map(|(svc, r)| format!("{svc} ← {r}"))
        .collect();
    s.out.line(format!("  ✓ compose     {}", list.join(", ")));
    if let crate::config::BackendKind::Swarm { stack } = &s.env.backend {
        let said = crate::backend::swarm::check(&s.config, &s.env.name, stack, &repos).await?;
        s.out.line(format!("  ✓ swarm       {said}"));
    }
    Ok(())
}
