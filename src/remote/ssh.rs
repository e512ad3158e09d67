//! One OpenSSH connection per host for the whole run: a ControlMaster started
//! in the background, every later command a session multiplexed over it
//! (`ssh -S <ctl>`), so a deploy opens one TCP connection and one login.
//! The system's `ssh` is used on purpose: the user's config, agent,
//! known_hosts and ProxyJump all apply; `[ssh]` adds `-F`, `-i` and a
//! known_hosts file for CI. Argument vectors are built by pure functions.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::config::remote::Remote;
use crate::engine::exec::{self, Cmd, Output};
use crate::error::{Error, Result};

/// How long connecting may take (also ssh's own ConnectTimeout).
const CONNECT_TIMEOUT: u64 = 10;

/// Options every ssh invocation for `r` shares.
pub fn options(r: &Remote) -> Vec<String> {
    let mut a = Vec::new();
    if let Some(f) = &r.ssh.config {
        a.extend(["-F".into(), f.display().to_string()]);
    }
    if let Some(k) = &r.ssh.identity_file {
        a.extend(["-i".into(), k.display().to_string()]);
        a.extend(["-o".into(), "IdentitiesOnly=yes".into()]);
    }
    if let Some(k) = &r.ssh.known_hosts {
        a.extend(["-o".into(), format!("UserKnownHostsFile={}", k.display())]);
    }
    // BatchMode: never a prompt, so an unknown host key is refused (strict
    // checking) unless the user's config says otherwise.
    a.extend(["-o".into(), "BatchMode=yes".into()]);
    a.extend(["-o".into(), format!("ConnectTimeout={CONNECT_TIMEOUT}")]);
    // A cut link is noticed in ~15 s rather than at TCP's pace.
    a.extend(["-o".into(), "ServerAliveInterval=5".into()]);
    a.extend(["-o".into(), "ServerAliveCountMax=3".into()]);
    if let Some(p) = r.port {
        a.extend(["-p".into(), p.to_string()]);
    }
    if let Some(u) = r.user.as_ref().or(r.ssh.user.as_ref()) {
        a.extend(["-l".into(), u.clone()]);
    }
    a
}

/// The background master: authenticates once and holds the connection.
pub fn master(r: &Remote, ctl: &Path) -> Cmd {
    Cmd::new("ssh")
        .args(options(r))
        .args(["-M", "-S"])
        .arg(ctl.display().to_string())
        .args(["-o", "ControlPersist=no", "-N"])
        .arg(r.host.clone())
}

/// A command on the host, over the master's connection.
pub fn session(r: &Remote, ctl: &Path, command: &str) -> Cmd {
    Cmd::new("ssh")
        .args(options(r))
        .arg("-S")
        .arg(ctl.display().to_string())
        .args(["-o", "ControlMaster=no"])
        .arg(r.host.clone())
        .arg(command.to_string())
}

/// What a failed connection means, with what to do (exit 2: nothing changed).
pub fn classify(r: &Remote, env: &str, stderr: &str) -> Error {
    let last = stderr
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or("ssh exited without a message");
    let hint = if stderr.contains("Host key verification failed")
        || stderr.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
    {
        format!(
            "the host key of {} is not known (or changed); check it and add it to known_hosts \
             (e.g. `ssh-keyscan {} >> known_hosts`) or point `[ssh] known_hosts` at a file holding it",
            r.host, r.host
        )
    } else if stderr.contains("Permission denied") {
        "the host refused the key; set `[ssh] identity_file` (or load the key into ssh-agent) and \
         check the user in `host` or `[ssh] user`"
            .to_string()
    } else if [
        "timed out",
        "Connection refused",
        "No route to host",
        "Network is unreachable",
        "Could not resolve hostname",
        "Connection closed",
        "Connection reset",
    ]
    .iter()
    .any(|m| stderr.contains(m))
    {
        format!(
            "{} is unreachable; check the address in `environments.{env}.host`, that sshd runs there, and the network",
            r.host
        )
    } else {
        "check the host with `ssh` and the same options".to_string()
    };
    Error::Preflight(format!(
        "cannot connect to {} over SSH: {last}\n  hint: {hint}",
        r.url
    ))
}

/// A live master connection; dropping it ends the connection.
pub struct Conn {
    pub remote: Remote,
    dir: PathBuf,
    ctl: PathBuf,
    master: tokio::process::Child,
}

impl Conn {
    /// Start the master and wait until it has logged in.
    pub async fn open(r: &Remote, env: &str) -> Result<Conn> {
        let dir = private_dir()?;
        let ctl = dir.join("ctl");
        let cmd = master(r, &ctl);
        let master = exec::spawn_attached(&cmd, Stdio::null(), Stdio::piped()).map_err(|e| {
            Error::Preflight(format!(
                "cannot run ssh: {e}\n  hint: install the OpenSSH client (`ssh`)"
            ))
        })?;
        let mut conn = Conn {
            remote: r.clone(),
            dir,
            ctl,
            master,
        };
        let deadline = Instant::now() + Duration::from_secs(CONNECT_TIMEOUT + 10);
        loop {
            // The master makes its socket only once logged in.
            if conn.ctl.exists() {
                return Ok(conn);
            }
            if let Ok(Some(_)) = conn.master.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = conn.master.stderr.take() {
                    use tokio::io::AsyncReadExt;
                    let _ = e.read_to_string(&mut err).await;
                }
                return Err(classify(r, env, &err));
            }
            if Instant::now() > deadline {
                return Err(classify(r, env, "timed out"));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The command that runs `command` on the host over this connection.
    pub fn session(&self, command: &str) -> Cmd {
        session(&self.remote, &self.ctl, command)
    }

    /// Run `command` on the host, with `input` on its stdin.
    pub async fn run(&self, command: &str, input: Option<Vec<u8>>) -> Result<Output> {
        exec::run_input(&self.session(command), input, Duration::from_secs(600))
            .await
            .map_err(|e| Error::env(format!("cannot run ssh: {e}")))
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        let _ = self.master.start_kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A fresh 0700 folder for the control socket (short path: sockets have a length limit).
fn private_dir() -> Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let dir = std::env::temp_dir().join(format!("slipway-ssh-{}-{nanos}", std::process::id()));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .map_err(|e| Error::env(format!("cannot create {}: {e}", dir.display())))?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::remote::Ssh;

    fn remote() -> Remote {
        Remote {
            url: "ssh://deploy@h1:2222".into(),
            user: Some("deploy".into()),
            host: "h1".into(),
            port: Some(2222),
            dir: "~/app".into(),
            ssh: Ssh {
                config: Some("/ci/ssh_config".into()),
                identity_file: Some("/ci/key".into()),
                known_hosts: Some("/ci/kh".into()),
                user: Some("ops".into()),
            },
        }
    }

    #[test]
    fn master_and_sessions_share_options_and_one_socket() {
        let r = remote();
        let m = master(&r, Path::new("/tmp/x/ctl"));
        assert_eq!(
            m.display(),
            "ssh -F /ci/ssh_config -i /ci/key -o IdentitiesOnly=yes -o UserKnownHostsFile=/ci/kh \
             -o BatchMode=yes -o ConnectTimeout=10 -o ServerAliveInterval=5 -o ServerAliveCountMax=3 \
             -p 2222 -l deploy -M -S /tmp/x/ctl -o ControlPersist=no -N h1"
        );
        let s = session(&r, Path::new("/tmp/x/ctl"), "uname -m");
        assert!(s
            .display()
            .ends_with("-S /tmp/x/ctl -o ControlMaster=no h1 uname -m"));
        // `[ssh] user` applies when the URL names none; nothing added when unset.
        let mut bare = remote();
        bare.user = None;
        bare.ssh = Ssh {
            user: Some("ops".into()),
            ..Ssh::default()
        };
        bare.port = None;
        let a = options(&bare);
        assert!(a.ends_with(&["-l".to_string(), "ops".to_string()]));
        assert!(!a.contains(&"-F".to_string()) && !a.contains(&"-p".to_string()));
    }

    #[test]
    fn connection_failures_say_what_to_do() {
        let r = remote();
        let e = classify(&r, "staging", "Host key verification failed.\r\n");
        assert!(e.to_string().contains("known_hosts"), "{e}");
        let e = classify(&r, "staging", "root@h1: Permission denied (publickey).");
        assert!(e.to_string().contains("identity_file"), "{e}");
        let e = classify(
            &r,
            "staging",
            "ssh: connect to host h1 port 2222: Connection timed out",
        );
        assert!(e.to_string().contains("environments.staging.host"), "{e}");
        assert_eq!(e.exit() as u8, 2);
    }
}
