//! The `[[smoke]]` suite: checks run concurrently (at most
//! `smoke_concurrency` at once) under the environment's `smoke_timeout`, so a
//! server that never answers cannot hang a deploy. Each check may retry.
//! Results come back in config order, with secrets already redacted.

use std::path::Path;
use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt};
use serde_json::Value;

use crate::config::{SmokeCheck, SmokeKind};
use crate::engine::exec::{self, Cmd};
use crate::engine::Compose;

use super::predicate::{shorten, Predicate};
use super::{http, tcp, CheckResult, Mismatch, Vars};

#[derive(Debug, Clone, serde::Serialize)]
pub struct SuiteResult {
    pub ok: bool,
    pub passed: usize,
    pub failed: usize,
    /// Wall time of the whole suite.
    pub duration_ms: u64,
    /// What the checks would take one after another.
    pub latency_sum_ms: u64,
    pub checks: Vec<CheckResult>,
}

impl SuiteResult {
    pub fn new(checks: Vec<CheckResult>, duration: Duration) -> SuiteResult {
        let failed = checks.iter().filter(|c| !c.ok).count();
        SuiteResult {
            ok: failed == 0,
            passed: checks.len() - failed,
            failed,
            duration_ms: duration.as_millis() as u64,
            latency_sum_ms: checks.iter().map(|c| c.latency_ms).sum(),
            checks,
        }
    }

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

/// Checks in flight at once when the config does not say.
pub const DEFAULT_CONCURRENCY: usize = 8;

pub struct Suite<'a> {
    pub checks: &'a [SmokeCheck],
    pub vars: Vars,
    pub compose: &'a Compose,
    pub cwd: &'a Path,
    pub timeout: Duration,
    /// 0 = all at once.
    pub concurrency: usize,
}

pub fn kind(c: &SmokeCheck) -> &'static str {
    match c.kind {
        SmokeKind::Http(_) => "http",
        SmokeKind::Exec { .. } => "exec",
        SmokeKind::Command { .. } => "command",
        SmokeKind::Tcp { .. } => "tcp",
    }
}

impl Suite<'_> {
    pub async fn run(&self) -> SuiteResult {
        let started = Instant::now();
        let deadline = started + self.timeout;
        let client = http::client();
        let width = match self.concurrency {
            0 => self.checks.len().max(1),
            n => n,
        };
        let runs = stream::iter(self.checks.iter().enumerate())
            .map(|(i, c)| {
                let client = &client;
                async move {
                    let left = deadline.saturating_duration_since(Instant::now());
                    let result =
                        match tokio::time::timeout(left, self.with_retries(client, c, deadline))
                            .await
                        {
                            Ok(r) => r,
                            Err(_) => {
                                let mut r = CheckResult::new(&c.name, kind(c), String::new());
                                r.latency_ms = left.as_millis() as u64;
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
            .buffer_unordered(width);
        let mut results: Vec<(usize, CheckResult)> = runs.collect().await;
        results.sort_by_key(|(i, _)| *i);
        let checks: Vec<CheckResult> = results
            .into_iter()
            .map(|(_, mut r)| {
                r.redact(&self.vars.secrets);
                r
            })
            .collect();
        SuiteResult::new(checks, started.elapsed())
    }

    /// Run a check until it passes or its retries (or the suite's time) run out.
    async fn with_retries(
        &self,
        client: &reqwest::Client,
        c: &SmokeCheck,
        deadline: Instant,
    ) -> CheckResult {
        let mut attempt = 1;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let mut r = self.one(client, c, left).await;
            r.attempts = attempt;
            let room = deadline.saturating_duration_since(Instant::now());
            if r.ok || attempt > c.retries || room <= c.retry_interval {
                return r;
            }
            attempt += 1;
            tokio::time::sleep(c.retry_interval).await;
        }
    }

    async fn one(&self, client: &reqwest::Client, c: &SmokeCheck, left: Duration) -> CheckResult {
        match &c.kind {
            SmokeKind::Http(e) => http::check(client, &c.name, e, &self.vars, left).await,
            SmokeKind::Tcp {
                address,
                max_latency,
                timeout,
            } => tcp::check(&c.name, address, &self.vars, *max_latency, *timeout, left).await,
            SmokeKind::Exec {
                service,
                command,
                expect_stdout,
                expect_exit,
                timeout,
            } => {
                let command: Vec<String> = command.iter().map(|a| self.vars.expand(a)).collect();
                let cmd = self
                    .compose
                    .exec_with_env(service, &command, &self.vars.env_vars());
                let target = format!("{service}: {}", command.join(" "));
                let expect = Expect {
                    stdout: expect_stdout.as_ref(),
                    exit: *expect_exit,
                    timeout: *timeout,
                };
                run_command(&c.name, "exec", target, cmd, expect, &self.vars, left).await
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
                let expect = Expect {
                    stdout: expect_stdout.as_ref(),
                    exit: *expect_exit,
                    timeout: *timeout,
                };
                run_command(&c.name, "command", target, cmd, expect, &self.vars, left).await
            }
        }
    }
}

struct Expect<'a> {
    stdout: Option<&'a Predicate>,
    exit: i32,
    /// The check's own timeout.
    timeout: Duration,
}

async fn run_command(
    name: &str,
    kind: &'static str,
    target: String,
    cmd: Cmd,
    expect: Expect<'_>,
    vars: &Vars,
    limit: Duration,
) -> CheckResult {
    let own = expect.timeout;
    let timeout = own.min(limit).max(Duration::from_millis(1));
    let mut result = CheckResult::new(name, kind, target);
    let started = Instant::now();
    let out = exec::run(&cmd, timeout).await;
    result.latency_ms = started.elapsed().as_millis() as u64;
    match out {
        Err(e) => result.error = Some(format!("cannot run `{}`: {e}", cmd.program)),
        Ok(o) if o.timed_out => {
            result.error = Some(format!(
                "{} (killed)",
                super::timeout_message("no result", own, limit)
            ))
        }
        Ok(o) => {
            let (failures, excerpt) = judge_output(&o, &expect, vars);
            result.failures = failures;
            result.excerpt = excerpt;
        }
    }
    result.judged()
}

/// Exit code and stdout against what was expected; pure.
fn judge_output(o: &exec::Output, expect: &Expect, vars: &Vars) -> (Vec<Mismatch>, Option<String>) {
    let mut failures = Vec::new();
    if o.code != Some(expect.exit) {
        failures.push(Mismatch {
            what: "exit code".into(),
            expected: expect.exit.to_string(),
            actual: o
                .code
                .map_or("killed by a signal".to_string(), |c| c.to_string()),
        });
    }
    let mut stdout_shown = false;
    if let Some(pred) = expect.stdout {
        // `echo PONG` prints "PONG\n"; the line end is not part of the answer.
        let stdout = o.stdout.trim_end_matches(['\n', '\r']).to_string();
        for m in pred.judge(Some(&Value::String(stdout)), vars) {
            stdout_shown = true;
            failures.push(Mismatch {
                what: "stdout".into(),
                expected: m.expected,
                actual: m.actual,
            });
        }
    }
    let excerpt = if failures.is_empty() || stdout_shown {
        None
    } else {
        let tail = o.tail();
        Some(if tail.trim().is_empty() {
            "no output".to_string()
        } else {
            format!("output: {}", shorten(&tail, 160))
        })
    };
    (failures, excerpt)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::predicate::Literal;

    fn output(code: Option<i32>, stdout: &str, stderr: &str) -> exec::Output {
        exec::Output {
            code,
            stdout: stdout.into(),
            stderr: stderr.into(),
            timed_out: false,
            hide: Default::default(),
        }
    }

    #[test]
    fn exit_code_and_stdout_are_judged() {
        let pong = Predicate::parse(&toml::Value::String("PONG".into()), Literal::Contains)
            .expect("predicate");
        let expect = Expect {
            stdout: Some(&pong),
            exit: 0,
            timeout: Duration::from_secs(1),
        };
        let v = Vars::default();
        let (f, _) = judge_output(&output(Some(0), "PONG\n", ""), &expect, &v);
        assert!(f.is_empty());
        let (f, x) = judge_output(&output(Some(1), "", "no route to redis"), &expect, &v);
        assert_eq!(f.len(), 2);
        assert_eq!((f[0].expected.as_str(), f[0].actual.as_str()), ("0", "1"));
        assert!(x.is_none(), "stdout already shown");
        let plain = Expect {
            stdout: None,
            exit: 0,
            timeout: Duration::from_secs(1),
        };
        let (_, x) = judge_output(&output(Some(2), "", "pg_isready: no response"), &plain, &v);
        assert_eq!(x.as_deref(), Some("output: pg_isready: no response"));
    }

    #[test]
    fn the_suite_adds_up() {
        let mut a = CheckResult::new("a", "http", String::new());
        a.latency_ms = 100;
        let mut b = CheckResult::new("b", "http", String::new());
        b.latency_ms = 50;
        b.error = Some("connection refused".into());
        let s = SuiteResult::new(vec![a.judged(), b.judged()], Duration::from_millis(110));
        assert!(!s.ok);
        assert_eq!((s.passed, s.failed, s.latency_sum_ms), (1, 1, 150));
        assert_eq!(s.reason(), "smoke check `b` failed: connection refused");
    }
}
