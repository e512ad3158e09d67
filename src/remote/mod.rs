//! Environments on a remote host (`host = "ssh://…"`).
//!
//! The controller ships its own binary to the host (checksum-verified, once
//! per version) with the project's files, and runs it there under `--agent`:
//! on the host it is the ordinary local Compose backend, so history, journal,
//! lock and `:rollback` images live there and every rule of a local run holds
//! unchanged. Here, the command layer only forwards: the pipeline never knows.
//! One SSH connection per host carries the whole run (`ssh`); a controller
//! that dies or loses the link leaves the host to roll back on its own
//! (`agent`).

pub mod agent;
pub mod ship;
pub mod ssh;

use crate::cli::{Cli, Command};
use crate::config::remote::Remote;
use crate::error::{Error, Result};
use crate::settings::{self, Settings};

/// Run the command on the environment's host if it has one: `Some(exit
/// code)`; `None` when it runs here (a local environment, or this process is
/// the host's agent).
pub async fn intercept(cli: &Cli, settings: &Settings) -> Result<Option<u8>> {
    if cli.agent {
        return Ok(None);
    }
    let Some(remote) = settings.env.remote.clone() else {
        return Ok(None);
    };
    let (uploads_env_file, wait) = match &cli.command {
        // Reading commands work from a checkout without the env file (another CI runner).
        Command::Status | Command::History { .. } => (false, None),
        Command::Deploy(a) => (true, a.wait),
        Command::Rollback(a) => (true, a.wait),
        _ => (true, None),
    };
    forward(settings, &remote, uploads_env_file, wait)
        .await
        .map(Some)
}

async fn forward(
    s: &Settings,
    r: &Remote,
    with_env_file: bool,
    wait: Option<std::time::Duration>,
) -> Result<u8> {
    let hello = agent::hello(&s.notify_env, settings::process_var)?;
    let host = reach(s, r, with_env_file, wait).await?;
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let command = agent::command(&r.dir, &host.sha, &agent::forward_args(&argv));
    agent::run(&host.conn, &command, &hello, &s.env.name).await
}

/// A host ready to run slipway: connected, our binary and the project's files on it.
pub struct Reached {
    pub conn: ssh::Conn,
    /// The shipped binary's checksum (its name on the host).
    pub sha: String,
}

/// Connect to `r`, put this slipway on it if missing, and unpack the
/// project's files in its `dir` (under the environment's lock there).
pub async fn reach(
    s: &Settings,
    r: &Remote,
    with_env_file: bool,
    wait: Option<std::time::Duration>,
) -> Result<Reached> {
    let env = &s.env.name;
    // Everything that can be refused here is, before any connection.
    let bundle = ship::bundle(&s.config, &s.env, with_env_file)?;
    let exe = std::env::current_exe()
        .map_err(|e| Error::env(format!("cannot find slipway's own binary: {e}")))?;
    let sha = ship::sha256_file(&exe)
        .map_err(|e| Error::env(format!("cannot read {}: {e}", exe.display())))?;
    let conn = ssh::Conn::open(r, env).await?;

    let probe = conn.run(&ship::probe_script(&sha), None).await?;
    if !probe.success() {
        return Err(Error::Preflight(format!(
            "cannot inspect {}: {}",
            r.url,
            probe.tail()
        )));
    }
    let mut lines = probe.stdout.lines();
    let uname = lines.next().unwrap_or_default().trim();
    let present = lines.next().is_some_and(|l| l.trim() == "present");
    let arch = std::env::consts::ARCH;
    if !ship::arch_matches(arch, uname) {
        return Err(Error::Preflight(format!(
            "{} is a {uname} machine and this slipway is built for {arch}\n  hint: run a slipway built for {uname}, or deploy from a {uname} runner",
            r.url
        )));
    }
    if !present {
        let bin = std::fs::read(&exe)
            .map_err(|e| Error::env(format!("cannot read {}: {e}", exe.display())))?;
        let up = conn.run(&ship::upload_script(&sha), Some(bin)).await?;
        if !up.success() {
            return Err(Error::Preflight(format!(
                "cannot put slipway on {}: {}\n  hint: the login needs a writable home (~/.cache/slipway/bin) and sha256sum",
                r.url,
                up.tail()
            )));
        }
    }
    let wait_s = wait.map_or(0, |w| w.as_secs());
    let unpack = conn
        .run(&ship::unpack_script(&r.dir, env, wait_s), Some(bundle))
        .await?;
    if !unpack.success() {
        return Err(Error::Preflight(format!(
            "cannot write the project files to `{}` on {}: {}\n  hint: check `environments.{env}.dir`",
            r.dir,
            r.url,
            unpack.tail()
        )));
    }
    Ok(Reached { conn, sha })
}
