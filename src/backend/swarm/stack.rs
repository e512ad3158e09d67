//! The first deploy of a stack: `docker stack deploy` of the compose files
//! with every managed service pinned to the release's digest by an override
//! of slipway's own, so the stack is created with its unmanaged services
//! too. After that slipway only updates the managed services.

use std::time::Duration;

use super::Ctx;
use crate::backend::Images;
use crate::engine::exec::{self, Cmd};
use crate::error::{Error, Result};

const DEPLOY_TIMEOUT: Duration = Duration::from_secs(300);

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
    // the env file compose would have read. Values never reach output.
    if let Some(path) = ctx.cfg.env_file_path(&ctx.env) {
        if let Ok(file) = crate::config::env_file::EnvFile::read(&path) {
            cmd.env = file
                .values()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::ServiceImage;

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
