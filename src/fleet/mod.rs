//! Environments of several hosts (`hosts = { name = "ssh://…" }`): one
//! release spans them all.
//!
//! The controller reaches every host as `crate::remote` reaches one (its own
//! binary and the project's files shipped over one SSH connection each) and
//! runs the ordinary transaction there under `--agent --gated --fleet-host
//! NAME`: each host keeps its own history, journal, lock and way back, and
//! waits at the pipeline's gates (`crate::pipeline::gate`) for the
//! coordinator (`coordinator`), which makes the hosts one transaction. Other
//! commands run on every host and are shown together (`each`); `recover`
//! also brings every host to one release. Decisions are in `plan`.

pub mod agent;
pub mod coordinator;
pub mod each;
pub mod plan;

use futures_util::future::join_all;

use crate::cli::{Cli, Command};
use crate::config::fleet::Fleet;
use crate::error::{Error, Result};
use crate::settings::{self, Settings};
use agent::Agent;

/// Run the command over the environment's hosts if it has several:
/// `Some(exit code)`; `None` when it runs here.
pub async fn intercept(cli: &Cli, s: &Settings) -> Result<Option<u8>> {
    if cli.agent {
        return Ok(None);
    }
    let Some(fleet) = s.env.fleet.clone() else {
        return Ok(None);
    };
    let code = match &cli.command {
        Command::Deploy(a) => {
            let ask = coordinator::Ask {
                kind: "deploy",
                tag: Some(a.tag.clone().unwrap_or_else(|| s.env.tag.clone())),
                wait: a.wait,
            };
            coordinator::run(s, &fleet, ask).await?
        }
        Command::Rollback(a) => {
            let ask = coordinator::Ask {
                kind: "rollback",
                tag: None,
                wait: a.wait,
            };
            coordinator::run(s, &fleet, ask).await?
        }
        Command::Recover => each::recover(s, &fleet).await?,
        Command::Smoke { url, junit } => {
            // Each host's `{host}` checks there, then the rest once from here.
            let hosts = each::show(s, &fleet, true, false).await?;
            let here = crate::config::fleet::environment_checks(&s.config);
            let local =
                match crate::commands::smoke::checks(s, &here, url.clone(), junit.clone()).await {
                    Ok(()) => 0,
                    Err(e) => {
                        eprintln!("error: {e}");
                        e.exit() as u8
                    }
                };
            hosts.max(local)
        }
        // Notifications leave from here, never from the hosts.
        Command::Notify { .. } => return Ok(None),
        Command::Status => each::show(s, &fleet, false, false).await?,
        Command::History { .. } => each::show(s, &fleet, false, true).await?,
        _ => each::show(s, &fleet, true, false).await?,
    };
    Ok(Some(code))
}

/// Reach every host at once (nothing changes on any until all answered),
/// then start this command's agent on each, in name order.
pub(crate) async fn start_agents(
    s: &Settings,
    fleet: &Fleet,
    with_env_file: bool,
    wait: Option<std::time::Duration>,
    flags: &[&str],
) -> Result<Vec<Agent>> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    start_with(
        s,
        fleet,
        with_env_file,
        wait,
        flags,
        &crate::remote::agent::forward_args(&argv),
    )
    .await
}

/// [`start_agents`] with the arguments given (not this process's own).
pub(crate) async fn start_with(
    s: &Settings,
    fleet: &Fleet,
    with_env_file: bool,
    wait: Option<std::time::Duration>,
    flags: &[&str],
    args: &[String],
) -> Result<Vec<Agent>> {
    let step = s.out.step("hosts");
    let reached = join_all(
        fleet
            .hosts
            .iter()
            .map(|h| crate::remote::reach(s, &h.remote, with_env_file, wait)),
    )
    .await;
    let mut hosts = Vec::new();
    for (h, r) in fleet.hosts.iter().zip(reached) {
        match r {
            Ok(r) => hosts.push((h, r)),
            Err(e) => {
                step.fail(format!("{} cannot be reached", h.name));
                let msg = format!(
                    "host {} ({}): {e}\nnothing changed on any host",
                    h.name, h.remote.url
                );
                return Err(match e {
                    Error::Locked(_) => Error::Locked(msg),
                    _ => Error::Preflight(msg),
                });
            }
        }
    }
    step.done(format!(
        "{} reached",
        fleet.names().collect::<Vec<_>>().join(", ")
    ));
    // Webhook URLs never leave the controller: the hosts send no notifications.
    let hello = crate::remote::agent::hello(&Default::default(), settings::process_var)?;
    let mut agents = Vec::new();
    for (h, r) in hosts {
        let mut a: Vec<String> = flags.iter().map(|f| f.to_string()).collect();
        a.extend(["--fleet-host".to_string(), h.name.clone()]);
        a.extend(args.iter().cloned());
        let command = crate::remote::agent::command(&h.remote.dir, &r.sha, &a);
        agents.push(Agent::start(&h.name, r, &command, &hello, false)?);
    }
    Ok(agents)
}
