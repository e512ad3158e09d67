//! The `[[smoke]]` suite: checks run concurrently (bounded) under the
//! environment's `smoke_timeout`, so a server that never answers cannot hang
//! a deploy.

use std::path::Path;
use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt};

use crate::config::{SmokeCheck, SmokeKind};
use crate::engine::exec::{self, Cmd};
use crate::engine::Compose;

use super::{http, CheckResult, Mismatch, Vars};

/// Checks in flight at once.
const CONCURRENCY: usize = 8;

#[derive(Debug, Clone, serde::Serialize)]
pub struct SuiteResult {
    pub ok: bool,
    pub duration_ms: u64,
    pub checks: Vec<CheckResult>,
}

impl SuiteResult {
    pub fn failed(&self) -> impl Iterator<Item = &CheckResult> {
        self.checks.iter().filter(|c| !c.ok)
    }

    /// `smoke check "x" failed: …` for history and errors.
    pub fn reason(&self) -> String {
        self.failed()
            .map(|c| format!("smoke check `{}` failed: {}", c.name, c.reason()))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

pub struct Suite<'a> {
    pub checks: &'a [SmokeCheck],
    pub vars: Vars,
    pub compose: &'a Compose,
    pub cwd: &'a Path,
    pub timeout: Duration,
}

impl Suite<'_> {
    pub async fn run(&self) -> SuiteResult {
        let started = Instant::now();
        let deadline = started + self.timeout;
        let client = http::client();
        let runs = stream::iter(self.checks.iter().enumerate())
            .map(|(i, c)| {
                let client = &client;
                async move {
                    let left = deadline.saturating_duration_since(Instant::now());
                    let result = match tokio::time::timeout(left, self.one(client, c, left)).await {
                        Ok(r) => r,
                        Err(_) => {
                            let mut r = CheckResult::new(&c.name, kind(c), String::new());
                            r.error = Some(format!(
                                "the suite's smoke_timeout ({}) ran out",
                                humantime::format_duration(self.timeout)
                            ));
                            r.judged()
                        }
                    };
                    (i, result)
                }
            })
            .buffer_unordered(CONCURRENCY);
        let mut results: Vec<(usize, CheckResult)> = runs.collect().await;
        results.sort_by_key(|(i, _)| *i);
        let checks: Vec<CheckResult> = results.into_iter().map(|(_, r)| r).collect();
        SuiteResult {
            ok: checks.iter().all(|c| c.ok),
            duration_ms: started.elapsed().as_millis() as u64,
            checks,
        }
    }

    async fn one(&self, client: &reqwest::Client, c: &SmokeCheck, left: Duration) -> CheckResult {
        match &c.kind {
            SmokeKind::Http(e) => http::check(client, &c.name, e, &self.vars, left).await,
            SmokeKind::Exec {
                service,
                command,
                expect_stdout,
                expect_exit,
                timeout,
            } => {
                let command: Vec<String> = command.iter().map(|a| self.vars.expand(a)).collect();
                let cmd = self.compose.exec(service, &command);
                let target = format!("{service}: {}", command.join(" "));
                run_command(
                    &c.name,
                    "exec",
                    target,
                    cmd,
                    expect_stdout,
                    *expect_exit,
                    (*timeout).min(left),
                )
                .await
            }
            SmokeKind::Command {
                command,
                expect_stdout,
                expect_exit,
                timeout,
            } => {
                let mut args = command.iter().map(|a| self.vars.expand(a));
                let program = args.next().unwrap_or_default();
                let mut cmd = Cmd::new(&program).args(args);
                cmd.env = self.vars.env_vars();
                cmd.cwd = Some(self.cwd.to_path_buf());
                let target = cmd.display();
                run_command(
                    &c.name,
                    "command",
                    target,
                    cmd,
                    expect_stdout,
                    *expect_exit,
                    (*timeout).min(left),
                )
                .await
            }
        }
    }
}

fn kind(c: &SmokeCheck) -> &'static str {
    match c.kind {
        SmokeKind::Http(_) => "http",
        SmokeKind::Exec { .. } => "exec",
        SmokeKind::Command { .. } => "command",
    }
}

async fn run_command(
    name: &str,
    kind: &'static str,
    target: String,
    cmd: Cmd,
    expect_stdout: &Option<String>,
    expect_exit: i32,
    timeout: Duration,
) -> CheckResult {
    let mut result = CheckResult::new(name, kind, target);
    let started = Instant::now();
    let out = exec::run(&cmd, timeout).await;
    result.latency_ms = started.elapsed().as_millis() as u64;
    match out {
        Err(e) => result.error = Some(format!("cannot run `{}`: {e}", cmd.program)),
        Ok(o) if o.timed_out => {
            result.error = Some(format!(
                "no result within {}",
                humantime::format_duration(timeout)
            ))
        }
        Ok(o) => {
            if o.code != Some(expect_exit) {
                result.failures.push(Mismatch {
                    what: "exit code".into(),
                    expected: expect_exit.to_string(),
                    actual: format!(
                        "{}{}",
                        o.code
                            .map_or("killed by a signal".to_string(), |c| c.to_string()),
                        http::excerpt(o.tail().as_bytes())
                    ),
                });
            }
            if let Some(want) = expect_stdout {
                if !o.stdout.contains(want.as_str()) {
                    result.failures.push(Mismatch {
                        what: "stdout".into(),
                        expected: format!("to contain {want:?}"),
                        actual: http::excerpt(o.stdout.as_bytes()).trim_start().to_string(),
                    });
                }
            }
        }
    }
    result.judged()
}
