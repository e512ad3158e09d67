//! `slipway logs [SERVICE] [--release ID]`: the last log lines of a failed
//! release's failing containers, as captured before its rollback removed
//! them (the newest release that captured any, by default). A service with
//! nothing captured is shown from its live container instead, and the
//! output says which it is.

use serde::Serialize;

use crate::backend::compose::context::state_dir;
use crate::cli::LogsArgs;
use crate::engine::Docker;
use crate::error::{Error, Result};
use crate::probe::logs::{render, Capture};
use crate::probe::Secrets;
use crate::settings::Settings;
use crate::state::{ContainerLogs, State};

/// Where the lines come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Source {
    /// Kept with the release when it failed.
    Captured,
    /// Read from the running (or stopped) container now.
    Live,
    /// Nothing to show.
    None,
}

#[derive(Serialize)]
struct Shown {
    env: String,
    release: Option<i64>,
    source: Source,
    logs: Vec<ContainerLogs>,
}

pub async fn run(s: Settings, args: &LogsArgs) -> Result<()> {
    let env = s.env.name.clone();
    if let Some(svc) = &args.service {
        if !s.config.services.contains_key(svc) {
            return Err(Error::Usage(format!(
                "`{svc}` is not a service slipway deploys in {}{}",
                s.config.path.display(),
                crate::suggest::did_you_mean(svc, s.config.services.keys().map(String::as_str))
            )));
        }
    }
    let state = State::open(&state_dir(&s.config))?;
    let release = match args.release {
        Some(id) => match state.release(id)? {
            Some(r) if r.env == env => Some(id),
            _ => {
                return Err(Error::Usage(format!(
                    "no release {id} in environment `{env}`\n  hint: `slipway history --env {env}` lists them"
                )))
            }
        },
        None => state.newest_with_logs(&env)?,
    };
    let mut captured = match release {
        Some(id) => state.logs_of(id)?,
        None => Vec::new(),
    };
    captured.retain(|l| args.service.as_ref().is_none_or(|s| *s == l.service));
    let shown = match (&args.service, args.release) {
        _ if !captured.is_empty() => Shown {
            env,
            release,
            source: Source::Captured,
            logs: captured
                .into_iter()
                .map(|mut l| {
                    let older = l.lines.len().saturating_sub(args.lines);
                    l.lines.drain(..older);
                    l
                })
                .collect(),
        },
        (Some(svc), None) => Shown {
            env,
            release: None,
            source: Source::Live,
            logs: live(&s, svc, args.lines).await?,
        },
        _ => Shown {
            env,
            release,
            source: Source::None,
            logs: Vec::new(),
        },
    };
    if s.out.json {
        s.out.json(&shown);
        return Ok(());
    }
    let service = args.service.as_deref().unwrap_or("its failing containers");
    let heading = match (shown.source, shown.release) {
        (Source::Captured, Some(id)) => format!(
            "release {id}: the last lines of {service}, captured when it failed"
        ),
        (Source::Live, _) => format!(
            "no lines captured for {service} in {}; its containers' last lines now:",
            shown.env
        ),
        (_, Some(id)) => format!("release {id} captured no log lines for {service}"),
        _ => format!(
            "no release in {} captured log lines\n  hint: `slipway logs SERVICE` shows a running service's last lines",
            shown.env
        ),
    };
    println!("{heading}");
    print!("{}", render(&shown.logs, &s.config.project));
    Ok(())
}

/// A service's containers' last lines now, redacted like captured ones.
async fn live(s: &Settings, svc: &str, lines: usize) -> Result<Vec<ContainerLogs>> {
    let docker = Docker::connect().await?;
    let secrets = Secrets::of(&s.config, &s.env);
    let containers = docker.containers(&s.config.project, Some(svc)).await?;
    let capture = Capture::new(lines, secrets);
    capture
        .take(&docker, &containers.iter().collect::<Vec<_>>())
        .await;
    Ok(capture.drain())
}
