//! The one place slipway starts another program.
//!
//! Commands are plain data ([`Cmd`]); running one never goes through a shell,
//! puts the child in its own process group so a timeout kills everything it
//! started, caps what it keeps of stdout/stderr, and keeps stderr for errors.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt;

use crate::config::redact::Secrets;

/// A program invocation as data, built by pure functions and unit-tested.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmd {
    pub program: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: Option<PathBuf>,
    /// Values its output may quote that must not reach a message (compose
    /// echoes env file lines it cannot parse): hidden in `stderr` and `tail`.
    pub hide: Secrets,
}

impl Cmd {
    pub fn new(program: &str) -> Cmd {
        Cmd {
            program: program.to_string(),
            args: Vec::new(),
            env: Vec::new(),
            cwd: None,
            hide: Secrets::none(),
        }
    }

    pub fn arg(mut self, a: impl Into<String>) -> Cmd {
        self.args.push(a.into());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// For messages: the program and its arguments, as a user would type them.
    pub fn display(&self) -> String {
        std::iter::once(self.program.as_str())
            .chain(self.args.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[derive(Debug, Clone)]
pub struct Output {
    /// `None` when killed by a signal or the timeout.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
    /// The command's [`Cmd::hide`], for `tail` (stdout is kept whole for parsing).
    pub hide: Secrets,
}

impl Output {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// The last lines of stderr (or stdout), for an error message.
    pub fn tail(&self) -> String {
        let text = if self.stderr.trim().is_empty() {
            &self.stdout
        } else {
            &self.stderr
        };
        let lines: Vec<&str> = text.trim().lines().collect();
        self.hide
            .redact(&lines[lines.len().saturating_sub(6)..].join("\n"))
    }
}

const KEEP: usize = 256 * 1024;

async fn read_capped(mut r: impl tokio::io::AsyncRead + Unpin) -> String {
    let mut kept = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                // Keep draining past the cap so the child never blocks on a full pipe.
                let room = KEEP.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
    String::from_utf8_lossy(&kept).into_owned()
}

/// Process groups of the children running now, so an exit at once (a second
/// signal) can take them along instead of leaving a `compose up` running.
static RUNNING: std::sync::Mutex<Vec<i32>> = std::sync::Mutex::new(Vec::new());

/// Registered while a child runs; unregistered on drop.
struct Running(i32);

impl Running {
    fn register(pid: u32) -> Running {
        let pgid = pid as i32;
        if let Ok(mut r) = RUNNING.lock() {
            r.push(pgid);
        }
        Running(pgid)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(mut r) = RUNNING.lock() {
            r.retain(|p| *p != self.0);
        }
    }
}

/// Kill every child process group still running (before exiting at once).
pub fn kill_all() {
    if let Ok(r) = RUNNING.lock() {
        for pgid in r.iter() {
            // SAFETY: signalling process groups we started.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
        }
    }
}

/// Run `cmd`, killing its whole process group after `timeout`.
pub async fn run(cmd: &Cmd, timeout: Duration) -> std::io::Result<Output> {
    run_input(cmd, None, timeout).await
}

/// `cmd` as a tokio command: no shell, its own process group, killed with us.
fn command(cmd: &Cmd) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(&cmd.program);
    command
        .args(&cmd.args)
        .envs(cmd.env.iter().map(|(k, v)| (k, v)))
        .process_group(0)
        .kill_on_drop(true);
    if let Some(dir) = &cmd.cwd {
        command.current_dir(dir);
    }
    command
}

/// Start `cmd` with stdin piped and stdout/stderr shared with slipway's own
/// (a remote run streamed through); it dies with the thread that started it
/// (PR_SET_PDEATHSIG), so a SIGKILLed slipway leaves no child behind.
pub fn spawn_attached(
    cmd: &Cmd,
    stdout: Stdio,
    stderr: Stdio,
) -> std::io::Result<tokio::process::Child> {
    let mut command = command(cmd);
    command.stdin(Stdio::piped()).stdout(stdout).stderr(stderr);
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    command.spawn()
}

/// [`run`] with `input` written to the child's stdin (then closed): content
/// that must never appear on a command line, such as an env file.
pub async fn run_input(
    cmd: &Cmd,
    input: Option<Vec<u8>>,
    timeout: Duration,
) -> std::io::Result<Output> {
    let mut command = command(cmd);
    command
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = std::time::Instant::now();
    let mut child = command.spawn()?;
    let pid = child.id();
    let _running = pid.map(Running::register);
    if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            // A child that exits early closes the pipe: its exit code says why.
            let _ = stdin.write_all(&input).await;
        });
    }
    let out = child.stdout.take().map(|o| tokio::spawn(read_capped(o)));
    let err = child.stderr.take().map(|e| tokio::spawn(read_capped(e)));
    let (code, timed_out) = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(status) => (status?.code(), false),
        Err(_) => {
            if let Some(pid) = pid {
                // SAFETY: signalling our own child's process group.
                unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
            }
            let _ = child.wait().await;
            (None, true)
        }
    };
    let stdout = match out {
        Some(h) => h.await.unwrap_or_default(),
        None => String::new(),
    };
    let stderr = match err {
        Some(h) => h.await.unwrap_or_default(),
        None => String::new(),
    };
    // The label only: arguments can name files and values a log must not keep.
    let label = crate::timings::label(&cmd.program, &cmd.args);
    tracing::debug!(command = %label, seconds = started.elapsed().as_secs_f64(), ?code, timed_out, "ran");
    crate::timings::command(label, started.elapsed());
    Ok(Output {
        code,
        stdout,
        stderr: cmd.hide.redact(&stderr),
        timed_out,
        hide: cmd.hide.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_without_a_shell_and_times_out() {
        let out = run(&Cmd::new("echo").arg("$(id)"), Duration::from_secs(5))
            .await
            .expect("echo");
        assert_eq!(out.stdout.trim(), "$(id)");
        let slow = Cmd::new("sh").args(["-c", "sleep 30 & sleep 30"]);
        let started = std::time::Instant::now();
        let out = run(&slow, Duration::from_millis(300)).await.expect("sh");
        assert!(out.timed_out && out.code.is_none());
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[tokio::test]
    async fn what_a_command_must_not_quote_is_hidden_in_its_errors() {
        // As compose says of an env file line it cannot read.
        let mut cmd = Cmd::new("sh").args([
            "-c",
            "echo 'JWT_SECRET=s3cret-canary-1' ; echo 'Invalid template: \"s3cret-canary-1${x\"' >&2; exit 1",
        ]);
        cmd.hide = Secrets::from_pairs(
            [
                ("JWT_SECRET", "s3cret-canary-1${x"),
                ("OTHER_TOKEN", "s3cret-canary-1"),
            ]
            .into_iter(),
        );
        let out = run(&cmd, Duration::from_secs(5)).await.expect("sh");
        assert!(!out.stderr.contains("s3cret"), "{}", out.stderr);
        assert!(out.stderr.contains("[JWT_SECRET]"), "{}", out.stderr);
        assert!(!out.tail().contains("s3cret"), "{}", out.tail());
        // stdout stays whole: it is parsed (compose config's JSON), not shown.
        assert!(out.stdout.contains("s3cret-canary-1"));
        let quiet = Cmd {
            hide: cmd.hide.clone(),
            ..Cmd::new("sh").args(["-c", "echo 'token s3cret-canary-1'; exit 1"])
        };
        let out = run(&quiet, Duration::from_secs(5)).await.expect("sh");
        assert_eq!(out.tail(), "token [OTHER_TOKEN]");
    }
}
