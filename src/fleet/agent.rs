//! The controller's end of one host's agent in a fleet run: its phases (the
//! marked lines on its stdout) and its end as events, its stderr shown with
//! the host's name, answers and heartbeats on its stdin.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::ChildStdin;
use tokio::sync::{mpsc, Mutex};

use crate::error::{Error, Result};
use crate::pipeline::gate::{Go, Phase};
use crate::remote::agent::{Hello, CONTROL};
use crate::remote::Reached;

const HEARTBEAT: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub enum Event {
    Phase(Phase),
    /// The agent ended: its exit code (`None`: killed, or the link is gone).
    Exit(Option<i32>),
}

pub struct Agent {
    pub name: String,
    /// The host's SSH connection lives as long as its agent.
    _host: Reached,
    stdin: Arc<Mutex<Option<ChildStdin>>>,
    events: mpsc::UnboundedReceiver<Event>,
    /// Its stdout apart from phases (`--json` documents).
    pub stdout: Arc<std::sync::Mutex<String>>,
    ended: Option<Option<i32>>,
}

impl Agent {
    /// Start `command` on the host; `quiet` keeps its stderr to itself.
    pub fn start(
        name: &str,
        host: Reached,
        command: &str,
        hello: &Hello,
        quiet: bool,
    ) -> Result<Agent> {
        let cmd = host.conn.session(command);
        let mut child = crate::engine::exec::spawn_attached(&cmd, Stdio::piped(), Stdio::piped())
            .map_err(|e| Error::env(format!("cannot run ssh: {e}")))?;
        let (tx, events) = mpsc::unbounded_channel();
        let stdout = Arc::new(std::sync::Mutex::new(String::new()));
        let out = child.stdout.take();
        let err = child.stderr.take();
        let (collected, phases, label) = (stdout.clone(), tx.clone(), name.to_string());
        let reading = tokio::spawn(async move {
            let Some(out) = out else { return };
            let mut lines = BufReader::new(out).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                match line
                    .strip_prefix(CONTROL)
                    .map(serde_json::from_str::<Phase>)
                {
                    Some(Ok(p)) => {
                        let _ = phases.send(Event::Phase(p));
                    }
                    _ => {
                        if let Ok(mut c) = collected.lock() {
                            c.push_str(&line);
                            c.push('\n');
                        }
                    }
                }
            }
        });
        tokio::spawn(async move {
            let Some(err) = err else { return };
            let mut lines = BufReader::new(err).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if !quiet {
                    eprintln!("  {label:>8} │ {line}");
                }
            }
        });
        let stdin = Arc::new(Mutex::new(child.stdin.take()));
        let beat = stdin.clone();
        let first = serde_json::to_string(hello).unwrap_or_default() + "\n";
        tokio::spawn(async move {
            let mut first = Some(first);
            loop {
                {
                    let mut g = beat.lock().await;
                    let Some(s) = g.as_mut() else { return };
                    let line = first.take().unwrap_or_else(|| "\n".into());
                    if s.write_all(line.as_bytes()).await.is_err() {
                        return;
                    }
                }
                tokio::time::sleep(HEARTBEAT).await;
            }
        });
        tokio::spawn(async move {
            let status = child.wait().await;
            let _ = reading.await;
            let _ = tx.send(Event::Exit(status.ok().and_then(|s| s.code())));
        });
        Ok(Agent {
            name: name.to_string(),
            _host: host,
            stdin,
            events,
            stdout,
            ended: None,
        })
    }

    /// Answer the agent at its gate.
    pub async fn send(&self, go: &Go) {
        let line = serde_json::to_string(go).unwrap_or_default() + "\n";
        if let Some(s) = self.stdin.lock().await.as_mut() {
            let _ = s.write_all(line.as_bytes()).await;
        }
    }

    /// The next thing the agent did; after its end, the end again.
    pub async fn next(&mut self) -> Event {
        if let Some(code) = self.ended {
            return Event::Exit(code);
        }
        let e = self.events.recv().await.unwrap_or(Event::Exit(None));
        if let Event::Exit(code) = e {
            self.ended = Some(code);
        }
        e
    }

    /// Wait for the agent's end, past any phase it still reports.
    pub async fn end(&mut self) -> (Option<i32>, Option<Phase>) {
        let mut done = None;
        loop {
            match self.next().await {
                Event::Exit(code) => return (code, done),
                Event::Phase(p @ Phase::Done { .. }) => done = Some(p),
                Event::Phase(_) => {
                    // A gate it reached meanwhile: the run is over, so stop it.
                    self.send(&Go::Stop {
                        reason: "the release stopped on another host".into(),
                    })
                    .await;
                }
            }
        }
    }

    pub fn ended(&self) -> bool {
        self.ended.is_some()
    }
}
