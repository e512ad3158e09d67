//! `slipway check`: the config (already parsed by the time we get here), the
//! env file and its rules, plus the compose project when Compose is
//! available. Reports every env rule violation at once, each with the env
//! file's line and never the value. Touches nothing; exit 2 on any problem.

use crate::config::env_rules::check_environment;
use crate::error::{Error, Result};
use crate::pipeline::context::{check_compose, compose_for, load_model, resolve_repos};
use crate::settings::Settings;

pub async fn run(s: Settings) -> Result<()> {
    let out = s.out;
    out.line(format!("  ✓ config      {}", s.config.path.display()));
    if let Some(path) = s.config.env_file_path(&s.env) {
        if !path.is_file() {
            return Err(Error::Preflight(format!(
                "env file {} (environments.{}.env_file) does not exist",
                path.display(),
                s.env.name
            )));
        }
        out.line(format!("  ✓ env file    {}", path.display()));
    }
    let report = check_environment(
        &s.config.env_rules,
        &s.env.name,
        s.env.env_file.as_deref(),
        &s.config.dir,
    )?;
    if let Some(r) = &report {
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
        } else {
            out.line(format!(
                "  ✗ env rules   {} breaks {} of its rules:",
                r.shown,
                r.violations.len()
            ));
            for l in r.lines() {
                out.line(format!("      {l}"));
            }
        }
    }
    let uses_url = s
        .config
        .smoke
        .iter()
        .any(|c| c.uses("{url}") || c.uses("{host}"));
    if s.env.url.is_none() && uses_url {
        out.warn(format!(
            "smoke checks use {{url}} but environments.{}.url is not set",
            s.env.name
        ));
    }
    // Run every check before failing, so one run reports everything.
    let compose = async {
        match check_compose().await {
            Err(e) => {
                out.warn(format!("compose project not checked: {e}"));
                Ok(())
            }
            Ok(()) => {
                let model = load_model(&compose_for(&s.config, &s.env)).await?;
                let repos = resolve_repos(&s.config, &model)?;
                crate::pipeline::rollout::refuse_unrunnable(&s.config, &model)?;
                let list: Vec<String> = repos
                    .iter()
                    .map(|(svc, r)| format!("{svc} ← {r}"))
                    .collect();
                out.line(format!("  ✓ compose     {}", list.join(", ")));
                Ok(())
            }
        }
    }
    .await;
    let violations = report.as_ref().map_or(&[][..], |r| &r.violations[..]);
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
