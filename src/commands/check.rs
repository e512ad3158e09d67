//! `slipway check`: the config (already parsed by the time we get here) and
//! the env file, plus the compose project when Compose is available.
//! Touches nothing.

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
    if s.env.url.is_none()
        && s.config
            .smoke
            .iter()
            .any(|c| format!("{:?}", c.kind).contains("{url}"))
    {
        out.warn(format!(
            "smoke checks use {{url}} but environments.{}.url is not set",
            s.env.name
        ));
    }
    match check_compose().await {
        Err(e) => out.warn(format!("compose project not checked: {e}")),
        Ok(()) => {
            let model = load_model(&compose_for(&s.config, &s.env)).await?;
            let repos = resolve_repos(&s.config, &model)?;
            crate::pipeline::rollout::refuse_unrunnable(&s.config, &model)?;
            let list: Vec<String> = repos
                .iter()
                .map(|(svc, r)| format!("{svc} ← {r}"))
                .collect();
            out.line(format!("  ✓ compose     {}", list.join(", ")));
        }
    }
    if out.json {
        out.json(&serde_json::json!({"ok": true, "env": s.env.name}));
    }
    Ok(())
}
