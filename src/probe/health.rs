//! Waiting for services to become healthy after a rollout.
//!
//! [`judge`] is the pure decision over what Docker reports (ready, keep
//! waiting, or fail now); [`wait`] polls Docker and any HTTP probe until every
//! service is ready, one fails, or `health_timeout` runs out.

use std::time::{Duration, Instant};

use crate::config::{Health as Mode, HttpExpect};
use crate::engine::{Container, Docker, Health};

use super::{http, Vars};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Ready,
    Wait(String),
    Fail(String),
}

/// What one service must reach.
#[derive(Debug, Clone)]
pub struct Target {
    pub service: String,
    pub image_id: String,
    pub mode: Mode,
}

/// Judge the containers of one service. `running_for` gives how long a
/// container has been running (for the readiness delay).
pub fn judge(
    containers: &[Container],
    target: &Target,
    readiness_delay: Duration,
    running_for: impl Fn(&Container) -> Duration,
) -> Verdict {
    if containers.is_empty() {
        return Verdict::Wait("no container yet".into());
    }
    for c in containers {
        if c.image_id != target.image_id {
            return Verdict::Wait(format!(
                "container {} still runs {}",
                c.name,
                short(&c.image_id)
            ));
        }
    }
    for c in containers {
        match c.state.as_str() {
            "exited" | "dead" => {
                return Verdict::Fail(format!(
                    "container {} exited with code {}",
                    c.name, c.exit_code
                ))
            }
            "restarting" => {
                return Verdict::Fail(format!(
                    "container {} keeps restarting (exit code {}, {} restarts)",
                    c.name, c.exit_code, c.restart_count
                ))
            }
            "running" => {}
            other => return Verdict::Wait(format!("container {} is {other}", c.name)),
        }
        match (c.health, &target.mode) {
            (Health::Unhealthy, _) => {
                let log = c
                    .health_log
                    .as_deref()
                    .map(|l| format!(": {l}"))
                    .unwrap_or_default();
                return Verdict::Fail(format!("container {} is unhealthy{log}", c.name));
            }
            (Health::Starting, _) => {
                return Verdict::Wait(format!("container {} health: starting", c.name))
            }
            (Health::Healthy, _) => {}
            (Health::None, Mode::Container) => {
                return Verdict::Fail(format!(
                    "service {} has health = \"container\" but its container has no HEALTHCHECK",
                    target.service
                ))
            }
            (Health::None, _) => {
                let up = running_for(c);
                if up < readiness_delay {
                    return Verdict::Wait(format!(
                        "container {} running for {}s of readiness_delay {}s",
                        c.name,
                        up.as_secs(),
                        readiness_delay.as_secs()
                    ));
                }
            }
        }
    }
    Verdict::Ready
}

fn short(id: &str) -> &str {
    let id = id.trim_start_matches("sha256:");
    &id[..id.len().min(12)]
}

fn running_for(c: &Container) -> Duration {
    c.started_at
        .parse::<jiff::Timestamp>()
        .ok()
        .and_then(|t| jiff::Timestamp::now().duration_since(t).try_into().ok())
        .unwrap_or_default()
}

pub struct Wait<'a> {
    pub docker: &'a Docker,
    pub project: &'a str,
    pub timeout: Duration,
    pub interval: Duration,
    pub readiness_delay: Duration,
    pub vars: &'a Vars,
}

impl Wait<'_> {
    /// Wait for every target; the first failure (or the timeout) is the error.
    pub async fn all(&self, targets: &[Target]) -> Result<(), String> {
        let deadline = Instant::now() + self.timeout;
        let waits = targets.iter().map(|t| self.one(t, deadline));
        futures_util::future::try_join_all(waits).await.map(|_| ())
    }

    async fn one(&self, target: &Target, deadline: Instant) -> Result<(), String> {
        let client = http::client();
        let mut last = String::from("not checked yet");
        let mut next_http = Instant::now();
        let mut http_ok = false;
        loop {
            let containers = self
                .docker
                .containers(self.project, Some(&target.service))
                .await
                .map_err(|e| e.to_string())?;
            match judge(&containers, target, self.readiness_delay, running_for) {
                Verdict::Fail(why) => return Err(format!("{}: {why}", target.service)),
                Verdict::Wait(why) => last = why,
                Verdict::Ready => match &target.mode {
                    Mode::Http(expect) if !http_ok => {
                        if Instant::now() >= next_http {
                            next_http = Instant::now() + self.interval;
                            let left = deadline.saturating_duration_since(Instant::now());
                            match self.probe(&client, expect, left).await {
                                Ok(()) => http_ok = true,
                                Err(why) => last = why,
                            }
                        }
                        if http_ok {
                            return Ok(());
                        }
                    }
                    _ => return Ok(()),
                },
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(format!(
                    "{}: not healthy within health_timeout {} ({last})",
                    target.service,
                    humantime::format_duration(self.timeout)
                ));
            }
            let nap = Duration::from_millis(250).min(deadline - now);
            tokio::time::sleep(nap).await;
        }
    }

    async fn probe(
        &self,
        client: &reqwest::Client,
        expect: &HttpExpect,
        left: Duration,
    ) -> Result<(), String> {
        let r = http::check(client, "health", expect, self.vars, left).await;
        if r.ok {
            Ok(())
        } else {
            Err(format!("HTTP probe {}: {}", r.target, r.reason()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(state: &str, health: Health, image_id: &str) -> Container {
        Container {
            id: "c1".into(),
            name: "p-api-1".into(),
            service: "api".into(),
            image: "r/api:v2".into(),
            image_id: image_id.into(),
            state: state.into(),
            health,
            exit_code: 3,
            restart_count: 0,
            started_at: String::new(),
            health_log: Some("wget: server returned error".into()),
        }
    }

    fn target(mode: Mode) -> Target {
        Target {
            service: "api".into(),
            image_id: "sha256:new".into(),
            mode,
        }
    }

    const D: Duration = Duration::from_secs(5);

    #[test]
    fn exited_and_unhealthy_fail_fast() {
        let t = target(Mode::Auto);
        let v = judge(
            &[container("exited", Health::None, "sha256:new")],
            &t,
            D,
            |_| D,
        );
        assert_eq!(
            v,
            Verdict::Fail("container p-api-1 exited with code 3".into())
        );
        let v = judge(
            &[container("running", Health::Unhealthy, "sha256:new")],
            &t,
            D,
            |_| D,
        );
        assert!(matches!(v, Verdict::Fail(m) if m.contains("unhealthy: wget")));
        let v = judge(
            &[container("restarting", Health::None, "sha256:new")],
            &t,
            D,
            |_| D,
        );
        assert!(matches!(v, Verdict::Fail(_)));
    }

    #[test]
    fn waits_for_the_right_image_and_health() {
        let t = target(Mode::Auto);
        assert!(matches!(judge(&[], &t, D, |_| D), Verdict::Wait(_)));
        let old = container("running", Health::Healthy, "sha256:old");
        assert!(matches!(judge(&[old], &t, D, |_| D), Verdict::Wait(_)));
        let starting = container("running", Health::Starting, "sha256:new");
        assert!(matches!(judge(&[starting], &t, D, |_| D), Verdict::Wait(_)));
        let healthy = container("running", Health::Healthy, "sha256:new");
        assert_eq!(judge(&[healthy], &t, D, |_| Duration::ZERO), Verdict::Ready);
    }

    #[test]
    fn no_healthcheck_means_readiness_delay() {
        let t = target(Mode::Auto);
        let c = container("running", Health::None, "sha256:new");
        assert!(matches!(
            judge(std::slice::from_ref(&c), &t, D, |_| Duration::from_secs(1)),
            Verdict::Wait(_)
        ));
        assert_eq!(
            judge(std::slice::from_ref(&c), &t, D, |_| D),
            Verdict::Ready
        );
        let v = judge(&[c], &target(Mode::Container), D, |_| D);
        assert!(matches!(v, Verdict::Fail(m) if m.contains("no HEALTHCHECK")));
    }
}
