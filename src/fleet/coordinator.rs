//! `deploy` and `rollback` over several hosts: one transaction, each host's
//! agent running the ordinary one and waiting at its gates. Locks in name
//! order; one release ID; pull and pin everywhere before anything switches;
//! canary hosts, then batches, each verified before the next; the
//! environment's own checks; commit everywhere. Any failure stops every
//! host: those that switched restore themselves (the agent's own undo), the
//! rest abort with nothing changed.

use std::time::Instant;

use futures_util::future::join_all;

use super::agent::{Agent, Event};
use super::plan::{self, HostEnd, Stage};
use crate::config::fleet::{self, Fleet};
use crate::error::Result;
use crate::notify::{Notifier, Payload};
use crate::pipeline::gate::{Go, Phase};
use crate::settings::Settings;

/// What the controller asks each host for.
pub struct Ask {
    /// "deploy" or "rollback", for messages and notifications.
    pub kind: &'static str,
    pub tag: Option<String>,
    pub wait: Option<std::time::Duration>,
}

pub async fn run(s: &Settings, fleet: &Fleet, ask: Ask) -> Result<u8> {
    let out = s.out;
    let started = Instant::now();
    out.line(format!(
        "slipway {} {} over {} hosts: {}",
        ask.kind,
        s.env.name,
        fleet.hosts.len(),
        fleet.names().collect::<Vec<_>>().join(", ")
    ));
    let mut agents = super::start_agents(s, fleet, true, ask.wait, &["--gated"]).await?;
    let mut fleet_run = Run {
        stages: vec![Stage::Started; agents.len()],
        release: None,
    };
    let result = fleet_run.drive(s, fleet, &mut agents, &ask).await;
    let reason = result.err();
    let ends = fleet_run.finish(&mut agents, reason.as_deref()).await;
    let code = plan::exit_code(&ends);
    report(
        s,
        &ask,
        fleet_run.release,
        &ends,
        code,
        reason.as_deref(),
        started,
    )
    .await;
    Ok(code)
}

struct Run {
    stages: Vec<Stage>,
    release: Option<i64>,
}

impl Run {
    /// The happy path; `Err(reason)` at the first host that fails.
    async fn drive(
        &mut self,
        s: &Settings,
        fleet: &Fleet,
        agents: &mut [Agent],
        ask: &Ask,
    ) -> std::result::Result<(), String> {
        let out = s.out;
        // Locks one host at a time in name order, so two controllers never
        // hold part each.
        let step = out.step("lock");
        for (i, a) in agents.iter_mut().enumerate() {
            expect(a, |p| matches!(p, Phase::Lock))
                .await
                .inspect_err(|e| step_fail(&step, e))?;
            a.send(&Go::On).await;
            expect(a, |p| matches!(p, Phase::Holding))
                .await
                .inspect_err(|e| step_fail(&step, e))?;
            self.stages[i] = Stage::Locked;
        }
        // Preflight runs on every host at once once each holds its lock.
        let mut next_ids = Vec::new();
        for a in agents.iter_mut() {
            if let Phase::Locked { next_id } = expect(a, |p| matches!(p, Phase::Locked { .. }))
                .await
                .inspect_err(|e| step_fail(&step, e))?
            {
                next_ids.push(next_id);
            }
        }
        step.done(format!("{} hosts locked, preflight passed", agents.len()));

        let id = plan::release_id(&next_ids);
        self.release = Some(id);
        announce(s, ask, id, None, None).await;
        let step = out.step("pull");
        for a in agents.iter() {
            a.send(&Go::As { id }).await;
        }
        for (i, a) in agents.iter_mut().enumerate() {
            expect(a, |p| matches!(p, Phase::Ready))
                .await
                .inspect_err(|e| step_fail(&step, e))?;
            self.stages[i] = Stage::Ready;
        }
        step.done(format!("release {id} pulled and pinned on every host"));

        let names: Vec<String> = fleet.names().map(str::to_string).collect();
        for (n, batch) in plan::batches(&names, fleet.canary, fleet.max_parallel_hosts)
            .into_iter()
            .enumerate()
        {
            let label = if n < fleet.canary { "canary" } else { "switch" };
            let step = out.step(label);
            step.set(batch.join(", "));
            let idx: Vec<usize> = batch
                .iter()
                .filter_map(|h| names.iter().position(|x| x == h))
                .collect();
            for &i in &idx {
                self.stages[i] = Stage::Switching;
                agents[i].send(&Go::On).await;
            }
            for &i in &idx {
                expect(&mut agents[i], |p| matches!(p, Phase::Verified))
                    .await
                    .inspect_err(|e| step_fail(&step, e))?;
                self.stages[i] = Stage::Verified;
            }
            step.done(format!("{} healthy, checks passed", batch.join(", ")));
            crate::failpoint::pause("batch:after").await;
        }

        environment_checks(s, ask).await?;
        for a in agents.iter() {
            a.send(&Go::On).await;
        }
        Ok(())
    }

    /// Every host's end; after a failure, stop the hosts still waiting
    /// (those that switched roll back, the others abort), all at once.
    async fn finish(&self, agents: &mut [Agent], reason: Option<&str>) -> Vec<HostEnd> {
        if let Some(reason) = reason {
            let stop = Go::Stop {
                reason: reason.to_string(),
            };
            for a in agents.iter().filter(|a| !a.ended()) {
                a.send(&stop).await;
            }
        }
        let ends = join_all(agents.iter_mut().map(|a| a.end())).await;
        ends.into_iter()
            .zip(agents.iter())
            .zip(&self.stages)
            .map(|(((exit, done), a), stage)| HostEnd {
                host: a.name.clone(),
                stage: *stage,
                exit,
                reason: match done {
                    Some(Phase::Done { reason, .. }) => reason,
                    _ => None,
                },
            })
            .collect()
    }
}

fn step_fail(step: &crate::output::Step, e: &str) {
    step.set(e.to_string());
}

/// The next phase of `a` if it is the one wanted; otherwise why not (the
/// host's run ended, with its reason).
async fn expect(
    a: &mut Agent,
    want: impl Fn(&Phase) -> bool,
) -> std::result::Result<Phase, String> {
    loop {
        match a.next().await {
            Event::Phase(p) if want(&p) => return Ok(p),
            Event::Phase(Phase::Done { reason, status, .. }) => {
                return Err(format!(
                    "host {}: {}",
                    a.name,
                    reason.or(status).unwrap_or_else(|| "stopped".into())
                ))
            }
            Event::Phase(_) => {}
            Event::Exit(Some(code)) => {
                return Err(format!(
                    "host {}: slipway there ended with exit code {code}",
                    a.name
                ))
            }
            Event::Exit(None) => {
                return Err(format!(
                    "host {}: lost the connection (its sshd, network or slipway is gone)",
                    a.name
                ))
            }
        }
    }
}

/// The checks that do not name `{host}`: once, from here, against the
/// environment's `url` (the load balancer), after every host passed its own.
async fn environment_checks(s: &Settings, ask: &Ask) -> std::result::Result<(), String> {
    let checks = fleet::environment_checks(&s.config);
    if checks.is_empty() {
        return Ok(());
    }
    let step = s.out.step("smoke");
    let compose = crate::backend::compose::context::compose_for(&s.config, &s.env);
    let suite = crate::probe::smoke::Suite {
        checks: &checks,
        vars: crate::probe::Vars {
            url: s.env.url.clone().unwrap_or_default(),
            env: s.env.name.clone(),
            tag: ask.tag.clone().unwrap_or_default(),
            secrets: crate::probe::Secrets::of(&s.config, &s.env),
            host: None,
        },
        compose: &compose,
        cwd: &s.config.dir,
        timeout: s.env.smoke_timeout,
        concurrency: s.env.smoke_concurrency,
    }
    .run()
    .await;
    if suite.ok {
        step.done(format!("{} environment checks passed", suite.passed));
        return Ok(());
    }
    step.fail(format!(
        "{} of {} checks failed",
        suite.failed,
        suite.checks.len()
    ));
    if !s.out.json {
        eprint!("{}", crate::probe::report::text(&suite));
    }
    Err(format!(
        "environment ({}): {}",
        s.env.url.as_deref().unwrap_or(""),
        suite.reason()
    ))
}

/// Say how it ended, here and to the channels.
async fn report(
    s: &Settings,
    ask: &Ask,
    release: Option<i64>,
    ends: &[HostEnd],
    code: u8,
    reason: Option<&str>,
    started: Instant,
) {
    let out = s.out;
    let what = match code {
        0 => "succeeded",
        1 => "rolled back",
        2 | 4 => "aborted",
        _ => "broken",
    };
    for e in ends {
        let state = match (e.exit, e.stage.touched()) {
            (Some(0), _) => "committed".to_string(),
            (None, true) => {
                "UNREACHABLE: it restores itself once it notices; run `slipway recover`".to_string()
            }
            (None, false) => "unreachable; nothing changed there".to_string(),
            (Some(3), _) => format!(
                "NOT RESTORED: {}",
                e.reason.as_deref().unwrap_or("see its output")
            ),
            (Some(_), true) => "restored to the previous release".to_string(),
            (Some(_), false) => "nothing changed".to_string(),
        };
        out.line(format!("  {:>8}  {state}", e.host));
    }
    let id = release
        .map(|r| format!("release {r}"))
        .unwrap_or_else(|| "the release".into());
    if out.json {
        out.json(&serde_json::json!({
            "release": release,
            "status": what.replace(' ', "_"),
            "exit": code,
            "reason": reason,
            "hosts": ends.iter().map(|e| serde_json::json!({
                "host": e.host,
                "switched": e.stage.touched(),
                "exit": e.exit,
                "reason": e.reason,
            })).collect::<Vec<_>>(),
        }));
    }
    let secs = started.elapsed().as_secs_f64();
    match reason {
        None if code == 0 => out.line(format!("{id} {what} on every host in {secs:.1}s")),
        _ => eprintln!("error: {id} {what}: {}", reason.unwrap_or("a host failed")),
    }
    if let Some(id) = release {
        announce(s, ask, id, Some(code), reason).await;
    }
}

/// Notifications for the whole release (the hosts send none).
async fn announce(s: &Settings, ask: &Ask, id: i64, end: Option<u8>, reason: Option<&str>) {
    use crate::config::notify::Event as E;
    let var = |name: &str| s.notify_env.get(name).cloned();
    let mut n = Notifier::new(&s.config.notify, &s.env.name, var, s.out);
    let event = match (ask.kind, end) {
        ("rollback", None) => E::RollbackStarted,
        ("rollback", Some(0)) => E::RollbackSucceeded,
        ("rollback", Some(_)) => E::RollbackFailed,
        (_, None) => E::DeployStarted,
        (_, Some(0)) => E::DeploySucceeded,
        (_, Some(_)) => E::DeployFailed,
    };
    let mut p = Payload::new(event.as_str(), &s.config.project, &s.env.name);
    p.release = Some(id);
    p.kind = Some(ask.kind.to_string());
    p.tag = ask.tag.clone();
    p.reason = reason.map(str::to_string);
    p.status = end.map(|c| {
        match c {
            0 => "succeeded",
            1 => "rolled_back",
            2 | 4 => "aborted",
            _ => "failed",
        }
        .to_string()
    });
    n.send(&p);
    n.finish().await;
}
