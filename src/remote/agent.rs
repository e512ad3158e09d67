//! The remote run, both ends.
//!
//! Controller: runs `<shipped slipway> --agent --config <dir>/slipway.toml
//! <same arguments>` on the host with stdout/stderr streamed through, sends
//! one JSON line first (the variables the run needs: webhook URLs, CI
//! context), then a heartbeat newline every few seconds, and returns the
//! host's exit code.
//!
//! Host (`--agent`): reads that line instead of its own environment, and
//! treats EOF on stdin, or no heartbeat for a while, as the operator's stop
//! (the first-SIGTERM path): journal `interrupted`, roll back, release the
//! lock. So a controller killed or cut off never leaves a lock behind. Its
//! stdout/stderr go through a relay that ignores a vanished reader, so the
//! undo is never cut short by a write to a closed SSH channel.

use std::collections::BTreeMap;
use std::io::{BufRead, Read, Write};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::error::{Error, Result};
use crate::pipeline::gate::{Gate, Go};

/// Between heartbeats from the controller.
const HEARTBEAT: Duration = Duration::from_secs(5);
/// Without a heartbeat this long, the host acts as if the controller were gone
/// (the default; `SLIPWAY_HEARTBEAT_TIMEOUT` on the controller sets another).
const SILENCE: Duration = Duration::from_secs(30);
/// The variable that sets the host's silence limit, passed on in the hello.
pub const SILENCE_VAR: &str = "SLIPWAY_HEARTBEAT_TIMEOUT";
/// The shortest limit allowed: two heartbeats, so one late beat never stops a run.
const SILENCE_MIN: Duration = Duration::from_secs(2 * HEARTBEAT.as_secs());
/// The longest: a host left an hour with a dead controller's lock is long enough.
const SILENCE_MAX: Duration = Duration::from_secs(3600);

/// The silence limit `value` (a `SLIPWAY_HEARTBEAT_TIMEOUT`, e.g. `10s`, `2m`) names.
pub fn parse_silence(value: &str) -> Result<Duration> {
    let d = humantime::parse_duration(value.trim()).map_err(|e| {
        Error::Usage(format!(
            "{SILENCE_VAR}={value:?}: not a duration ({e}); e.g. 30s or 2m"
        ))
    })?;
    if d < SILENCE_MIN || d > SILENCE_MAX {
        return Err(Error::Usage(format!(
            "{SILENCE_VAR}={value:?}: must be between {}s and {}s (heartbeats come every {}s)",
            SILENCE_MIN.as_secs(),
            SILENCE_MAX.as_secs(),
            HEARTBEAT.as_secs()
        )));
    }
    Ok(d)
}

/// The silence limit in force on the host, in seconds.
static SILENCE_SECS: AtomicU64 = AtomicU64::new(SILENCE.as_secs());

/// The first line on the agent's stdin.
#[derive(Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Hello {
    /// Variables set in the host run's environment (names the config or CI use).
    pub env: BTreeMap<String, String>,
}

/// CI context variables `settings::ci_context` reads.
const CI_VARS: &[&str] = &[
    "GITHUB_SHA",
    "GITHUB_REF_NAME",
    "GITHUB_SERVER_URL",
    "GITHUB_REPOSITORY",
    "GITHUB_RUN_ID",
    "CI_COMMIT_SHA",
    "CI_COMMIT_REF_NAME",
    "CI_JOB_URL",
];

/// Test builds pass the fault-injection variables on, so a test can hold
/// the host's run at a step.
#[cfg(feature = "failpoints")]
const TEST_VARS: &[&str] = &["SLIPWAY_PAUSE", "SLIPWAY_RESUME", "SLIPWAY_FAILPOINT"];
#[cfg(not(feature = "failpoints"))]
const TEST_VARS: &[&str] = &[];

/// The hello for a host run; a `SLIPWAY_HEARTBEAT_TIMEOUT` the host would
/// refuse is refused here first (exit 2), before anything reaches a host.
pub fn hello(
    notify_env: &BTreeMap<String, String>,
    var: impl Fn(&str) -> Option<String>,
) -> Result<Hello> {
    let mut env = notify_env.clone();
    for name in CI_VARS.iter().chain(TEST_VARS).chain(&[SILENCE_VAR]) {
        if let Some(v) = var(name) {
            env.insert(name.to_string(), v);
        }
    }
    if let Some(v) = env.get(SILENCE_VAR) {
        parse_silence(v)?;
    }
    Ok(Hello { env })
}

/// The arguments to pass on: everything but `--config` (the host has its own copy).
pub fn forward_args(argv: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut skip = false;
    for a in argv {
        if skip {
            skip = false;
        } else if a == "--config" {
            skip = true;
        } else if !a.starts_with("--config=") && a != "--agent" && a != "--gated" {
            out.push(a.clone());
        }
    }
    out
}

/// The command line run on the host.
pub fn command(dir: &str, sha: &str, args: &[String]) -> String {
    let d = super::ship::shell_dir(dir);
    let mut c = format!(
        "cd {d} && exec {} --agent --config {d}/slipway.toml",
        super::ship::remote_bin(sha)
    );
    for a in args {
        c.push(' ');
        c.push_str(&super::ship::quote(a));
    }
    c
}

/// Run the agent over `conn`; the host's exit code, or exit 3 if the link dropped.
pub async fn run(conn: &super::ssh::Conn, command: &str, hello: &Hello, env: &str) -> Result<u8> {
    use tokio::io::AsyncWriteExt;
    let cmd = conn.session(command);
    let mut child = crate::engine::exec::spawn_attached(&cmd, Stdio::inherit(), Stdio::inherit())
        .map_err(|e| Error::env(format!("cannot run ssh: {e}")))?;
    let mut stdin = child.stdin.take();
    let line = serde_json::to_string(hello).unwrap_or_default() + "\n";
    if let Some(s) = stdin.as_mut() {
        let _ = s.write_all(line.as_bytes()).await;
    }
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).ok();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let mut beat = tokio::time::interval(HEARTBEAT);
    let status = loop {
        let signalled = async {
            match (int.as_mut(), term.as_mut()) {
                (Some(i), Some(t)) => tokio::select! { _ = i.recv() => (), _ = t.recv() => () },
                _ => std::future::pending().await,
            }
        };
        tokio::select! {
            s = child.wait() => break s,
            _ = beat.tick() => {
                if let Some(s) = stdin.as_mut() {
                    let _ = s.write_all(b"\n").await;
                }
            }
            _ = signalled => {
                if stdin.take().is_some() {
                    // Closing stdin is the host's stop: it rolls back and exits.
                    eprintln!("\nsignal received: the host stops at its next safe point and rolls back (signal again to leave it to finish alone)");
                } else {
                    eprintln!("\nsecond signal: leaving; the host finishes the rollback on its own (check with `slipway status --env {env}`)");
                    return Ok(130);
                }
            }
        }
    };
    let status = status.map_err(|e| Error::env(format!("ssh: {e}")))?;
    match status.code() {
        // ssh's own failure, or the host's slipway killed: no exit code came back.
        Some(255) | None => Err(Error::Broken(format!(
            "lost the SSH connection to {} mid-run (or slipway on the host was killed); the host rolls back on its own; check with `slipway status --env {env}` (it says if `recover` is needed)",
            conn.remote.url
        ))),
        Some(code) => Ok(code.clamp(0, 254) as u8),
    }
}

/// Host side: read the controller's first line and set its variables.
/// Called before any thread starts (the environment is process-wide).
pub fn receive_hello() -> Result<()> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).map_err(|e| {
        Error::Usage(format!(
            "--agent: cannot read the controller's first line: {e}"
        ))
    })?;
    let hello: Hello = serde_json::from_str(line.trim()).map_err(|_| {
        Error::Usage("--agent is for the slipway controller, not for people: it expects a JSON line on stdin".into())
    })?;
    if let Some(v) = hello.env.get(SILENCE_VAR) {
        SILENCE_SECS.store(parse_silence(v)?.as_secs(), Ordering::SeqCst);
    }
    for (k, v) in hello.env {
        std::env::set_var(k, v);
    }
    Ok(())
}

static LAST_BEAT: AtomicU64 = AtomicU64::new(0);
static GONE: AtomicBool = AtomicBool::new(false);

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The coordinator's answers, for the gate of a host of several (`--gated`).
static ANSWERS: std::sync::Mutex<Option<mpsc::UnboundedReceiver<Go>>> = std::sync::Mutex::new(None);

/// What marks a gate's line on the agent's stdout among the run's own output.
pub const CONTROL: &str = "@slipway-gate ";

/// Host side: watch stdin for the rest of the run, a line at a time: empty
/// lines are heartbeats, others the coordinator's answers at a gate. EOF or
/// silence stops the run.
pub fn watch_controller(gated: bool) {
    LAST_BEAT.store(now(), Ordering::SeqCst);
    let (tx, rx) = mpsc::unbounded_channel();
    if gated {
        if let Ok(mut a) = ANSWERS.lock() {
            *a = Some(rx);
        }
    }
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            LAST_BEAT.store(now(), Ordering::SeqCst);
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<Go>(&line) {
                Ok(go) => {
                    let _ = tx.send(go);
                }
                Err(_) => {
                    eprintln!("warning: ignoring a line from the controller that is not an answer")
                }
            }
        }
        GONE.store(true, Ordering::SeqCst);
    });
    std::thread::spawn(|| loop {
        std::thread::sleep(Duration::from_millis(200));
        let silent = now().saturating_sub(LAST_BEAT.load(Ordering::SeqCst))
            > SILENCE_SECS.load(Ordering::SeqCst);
        if GONE.load(Ordering::SeqCst) || silent {
            crate::interrupt::stop("the controller's SSH session ended");
            return;
        }
    });
}

/// Host side: the gate of a host of several (`--gated`): phases as marked
/// lines on stdout, answers from stdin. `None` for any other run.
pub fn gate() -> Option<Gate> {
    let rx = ANSWERS.lock().ok()?.take()?;
    Some(Gate::new(
        |phase| {
            let line = serde_json::to_string(phase).unwrap_or_default();
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{CONTROL}{line}");
            let _ = out.flush();
        },
        rx,
    ))
}

/// Host side: stdout and stderr through pipes copied by threads that ignore
/// a closed reader. Dropping it flushes and waits for the copies.
pub struct Relay(Vec<(i32, std::thread::JoinHandle<()>)>);

pub fn relay_output() -> Relay {
    let mut threads = Vec::new();
    for fd in [1, 2] {
        let mut p = [0i32; 2];
        // SAFETY: plain fd calls on our own descriptors.
        let ok = unsafe {
            // CLOEXEC: the programs the run starts must not hold the relay open.
            libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC) == 0 && {
                let saved = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3);
                saved >= 0 && libc::dup2(p[1], fd) >= 0 && libc::close(p[1]) == 0 && {
                    let read = p[0];
                    threads.push((
                        fd,
                        std::thread::spawn(move || copy_ignoring_errors(read, saved)),
                    ));
                    true
                }
            }
        };
        if !ok {
            break;
        }
    }
    Relay(threads)
}

fn copy_ignoring_errors(from: i32, to: i32) {
    use std::os::fd::FromRawFd;
    // SAFETY: both descriptors are ours alone from here on.
    let (mut r, mut w) = unsafe {
        (
            std::fs::File::from_raw_fd(from),
            std::fs::File::from_raw_fd(to),
        )
    };
    let mut buf = [0u8; 8192];
    let mut open = true;
    loop {
        match r.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) if open => open = w.write_all(&buf[..n]).is_ok(),
            Ok(_) => {}
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = std::io::stdout().flush();
        let _ = std::io::stderr().flush();
        for (fd, t) in self.0.drain(..) {
            // SAFETY: pointing our fd at /dev/null ends the pipe's last writer.
            unsafe {
                let null = libc::open(c"/dev/null".as_ptr(), libc::O_WRONLY);
                if null >= 0 {
                    libc::dup2(null, fd);
                    libc::close(null);
                }
            }
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_flag_is_not_forwarded() {
        let argv: Vec<String> = [
            "--config",
            "/ci/slipway.toml",
            "deploy",
            "--env",
            "staging",
            "--config=x",
            "--json",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            forward_args(&argv),
            ["deploy", "--env", "staging", "--json"]
        );
    }

    #[test]
    fn host_command_quotes_every_argument() {
        let c = command(
            "~/app",
            "ab12",
            &["deploy".into(), "--tag".into(), "v1; rm -rf /".into()],
        );
        assert_eq!(
            c,
            "cd \"$HOME\"/app && exec \"$HOME\"/.cache/slipway/bin/slipway-ab12 --agent --config \"$HOME\"/app/slipway.toml deploy --tag 'v1; rm -rf /'"
        );
    }

    #[test]
    fn hello_carries_webhooks_and_ci_context_only() {
        let notify = BTreeMap::from([("SLACK_URL".to_string(), "https://hooks/x".to_string())]);
        let h = hello(&notify, |k| match k {
            "GITHUB_SHA" => Some("abc".into()),
            "HOME" => Some("/root".into()),
            _ => None,
        })
        .expect("hello");
        assert_eq!(
            h.env.get("SLACK_URL").map(String::as_str),
            Some("https://hooks/x")
        );
        assert_eq!(h.env.get("GITHUB_SHA").map(String::as_str), Some("abc"));
        assert!(!h.env.contains_key("HOME"));
    }

    #[test]
    fn heartbeat_timeout_is_validated_and_passed_on() {
        assert_eq!(parse_silence("10s").ok(), Some(Duration::from_secs(10)));
        assert_eq!(parse_silence(" 2m ").ok(), Some(Duration::from_secs(120)));
        for bad in ["5s", "9s", "2h", "ten", "", "10"] {
            assert!(
                matches!(parse_silence(bad), Err(Error::Usage(_))),
                "{bad:?} accepted"
            );
        }
        let h = hello(&BTreeMap::new(), |k| {
            (k == SILENCE_VAR).then(|| "12s".to_string())
        })
        .expect("hello");
        assert_eq!(h.env.get(SILENCE_VAR).map(String::as_str), Some("12s"));
        let refused = hello(&BTreeMap::new(), |k| {
            (k == SILENCE_VAR).then(|| "1s".to_string())
        });
        assert!(matches!(refused, Err(Error::Usage(_))));
        assert_eq!(SILENCE.as_secs(), 30, "the default stays 30 s");
    }
}
