//! Waiting for services to become healthy after a rollout.
//!
//! [`judge`] is the pure decision over what Docker reports (ready, keep
//! waiting, or fail now). [`Wait`] looks again whenever the engine reports an
//! event about the service's containers (start, die, health status) or a
//! timer is due, not after fixed sleeps: a container that exits fails the
//! wait at once, and one whose HEALTHCHECK passes ends it at once. The
//! engine's own health status decides (proxies such as Traefik route by it),
//! so a HEALTHCHECK's `interval` is the granularity of readiness. HTTP probes
//! (a connection refused costs next to nothing) retry after 50 ms, then every
//! 100 ms (or `health_interval`, if shorter);
//! `{container}` in a probe's URL is the address of each container checked.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures_util::{FutureExt, StreamExt};

use crate::config::{Health as Mode, HttpExpect};
use crate::engine::lifecycle::unix_now;
use crate::engine::{Container, Docker, Health};

use super::logs::{self, Capture};
use super::{http, Vars};
pub use crate::config::CONTAINER;

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
            // The HTTP probe is the readiness signal: no delay to sit out.
            (Health::None, Mode::Http(_)) => {}
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
    /// The longest gap between two looks when nothing happens.
    pub interval: Duration,
    pub readiness_delay: Duration,
    pub vars: &'a Vars,
    /// Give up at once when SIGINT/SIGTERM asks a release to stop (not while restoring).
    pub stop_on_signal: bool,
    /// Where the last log lines of the containers judged not healthy go (a
    /// release's rollout; a restore captures nothing).
    pub capture: Option<&'a Capture>,
}

/// The engine's events about a service's containers (one `()` each).
type Events = std::pin::Pin<Box<dyn futures_util::Stream<Item = ()> + Send>>;

/// The first retry of a probe that did not pass yet; later ones back off.
const FIRST_RETRY: Duration = Duration::from_millis(50);
/// Retries back off to this at most (or `health_interval`, if shorter).
const MAX_RETRY: Duration = Duration::from_millis(100);

/// With no event and no timer due, look again anyway after this long: a
/// safety net should the event stream miss something.
const SAFETY_NET: Duration = Duration::from_secs(1);

/// Gaps between retries: 50 ms, growing by half, up to `cap`.
fn next_gap(gap: Duration, cap: Duration) -> Duration {
    gap.mul_f64(1.5).min(cap).max(FIRST_RETRY.min(cap))
}

impl Wait<'_> {
    /// Wait for every target; the first failure (or the timeout) is the error.
    pub async fn all(&self, targets: &[Target]) -> Result<(), String> {
        let deadline = Instant::now() + self.timeout;
        let waits = targets.iter().map(|t| self.one(t, None, deadline));
        futures_util::future::try_join_all(waits).await.map(|_| ())
    }

    /// Wait for the given containers of one service only (a start-first
    /// rollout's new container, while the old ones still run beside it).
    pub async fn containers(&self, target: &Target, ids: &[String]) -> Result<(), String> {
        self.one(target, Some(ids), Instant::now() + self.timeout)
            .await
    }

    /// Look, judge, and sleep until the engine reports a change to the
    /// service's containers or a timer is due (a probe retry, the end of a
    /// readiness delay, the deadline).
    async fn one(
        &self,
        target: &Target,
        only: Option<&[String]>,
        deadline: Instant,
    ) -> Result<(), String> {
        // Subscribe from a second ago, so nothing between the first look and
        // the subscription is missed.
        let mut events: Events = Box::pin(self.docker.service_events(
            self.project,
            &target.service,
            unix_now() - 1.0,
        ));
        let cap = MAX_RETRY.min(self.interval);
        let client = http::client();
        let mut last = String::from("not checked yet");
        let mut http_next = Instant::now();
        let mut http_gap = Duration::ZERO;
        let mut addresses = HashMap::new();
        loop {
            let containers = self.look(target, only).await?;
            let now = Instant::now();
            let mut wake = deadline.min(now + SAFETY_NET);
            match judge(&containers, target, self.readiness_delay, running_for) {
                Verdict::Fail(why) => {
                    self.capture(&containers, target).await;
                    return Err(format!("{}: {why}", target.service));
                }
                Verdict::Ready => match &target.mode {
                    Mode::Http(expect) => {
                        if now >= http_next {
                            let left = deadline.saturating_duration_since(now);
                            let probed = if expect.url.contains(CONTAINER) {
                                self.probe_each(&client, expect, &containers, &mut addresses, left)
                                    .await
                            } else {
                                self.probe(&client, expect, left).await
                            };
                            match probed {
                                Ok(()) => return Ok(()),
                                Err(why) => last = why,
                            }
                            http_gap = next_gap(http_gap, cap);
                            http_next = Instant::now() + http_gap;
                        }
                        wake = wake.min(http_next);
                    }
                    _ => return Ok(()),
                },
                Verdict::Wait(why) => {
                    last = why;
                    wake = wake.min(self.readiness_over(&containers, now));
                }
            }
            if Instant::now() >= deadline {
                self.capture(&containers, target).await;
                return Err(format!(
                    "{}: not healthy within health_timeout {} ({last})",
                    target.service,
                    humantime::format_duration(self.timeout)
                ));
            }
            self.until_change(&mut events, wake)
                .await
                .map_err(|why| format!("{}: {why}", target.service))?;
        }
    }

    /// The service's containers now (only `only`, when given).
    async fn look(
        &self,
        target: &Target,
        only: Option<&[String]>,
    ) -> Result<Vec<Container>, String> {
        let mut containers = self
            .docker
            .containers(self.project, Some(&target.service))
            .await
            .map_err(|e| e.to_string())?;
        if let Some(ids) = only {
            containers.retain(|c| ids.contains(&c.id));
            if containers.is_empty() {
                return Err(format!(
                    "{}: its new container was removed while starting",
                    target.service
                ));
            }
        }
        Ok(containers)
    }

    /// When the first readiness delay ends (a HEALTHCHECK result arrives as
    /// an event; a readiness delay ends on a timer).
    fn readiness_over(&self, containers: &[Container], now: Instant) -> Instant {
        containers
            .iter()
            .filter(|c| c.state == "running" && c.health == Health::None)
            .map(|c| {
                now + self.readiness_delay.saturating_sub(running_for(c))
                    + Duration::from_millis(10)
            })
            .min()
            .unwrap_or(now + SAFETY_NET)
    }

    /// Sleep until the engine reports an event (a burst counts once) or
    /// `wake` is due; a signal ends the wait of a release.
    async fn until_change(&self, events: &mut Events, wake: Instant) -> Result<(), String> {
        tokio::select! {
            _ = crate::interrupt::wait(), if self.stop_on_signal => {
                Err("interrupted by a signal".to_string())
            }
            event = events.next() => {
                if event.is_none() {
                    // The stream ended: the timers still drive the wait.
                    *events = Box::pin(futures_util::stream::pending());
                }
                while let Some(Some(())) = events.next().now_or_never() {}
                Ok(())
            }
            _ = tokio::time::sleep_until(wake.into()) => Ok(()),
        }
    }

    /// Before the verdict is returned (and a rollback removes the containers).
    async fn capture(&self, containers: &[Container], target: &Target) {
        if let Some(capture) = self.capture {
            capture
                .take(self.docker, &logs::failing(containers, &target.image_id))
                .await;
        }
    }

    /// Probe every container at its own address (`{container}` in the URL).
    async fn probe_each(
        &self,
        client: &reqwest::Client,
        expect: &HttpExpect,
        containers: &[Container],
        addresses: &mut HashMap<String, String>,
        left: Duration,
    ) -> Result<(), String> {
        for c in containers {
            if !addresses.contains_key(&c.id) {
                match self.docker.container_address(&c.id).await {
                    Ok(Some(ip)) => {
                        addresses.insert(c.id.clone(), ip);
                    }
                    _ => return Err(format!("container {} has no address yet", c.name)),
                }
            }
        }
        let probes = containers.iter().map(|c| {
            let mut one = expect.clone();
            let ip = addresses.get(&c.id).cloned().unwrap_or_default();
            one.url = one.url.replace(CONTAINER, &ip);
            async move {
                self.probe(client, &one, left)
                    .await
                    .map_err(|why| format!("container {}: {why}", c.name))
            }
        });
        futures_util::future::try_join_all(probes).await.map(|_| ())
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
    fn an_http_probe_replaces_the_readiness_delay() {
        let http = Mode::Http(HttpExpect {
            url: "http://{container}:8080/health".into(),
            method: "GET".into(),
            headers: Default::default(),
            body: None,
            expect_status: vec![200],
            expect_json: Vec::new(),
            expect_body: None,
            expect_header: Vec::new(),
            max_latency: None,
            timeout: D,
        });
        let c = container("running", Health::None, "sha256:new");
        assert_eq!(
            judge(std::slice::from_ref(&c), &target(http.clone()), D, |_| {
                Duration::ZERO
            }),
            Verdict::Ready
        );
        // A HEALTHCHECK, if the image has one, must still pass too.
        let starting = container("running", Health::Starting, "sha256:new");
        assert!(matches!(
            judge(&[starting], &target(http), D, |_| D),
            Verdict::Wait(_)
        ));
    }

    #[test]
    fn retries_back_off_to_a_cap() {
        let cap = Duration::from_millis(500);
        let mut gap = Duration::ZERO;
        let mut gaps = Vec::new();
        for _ in 0..8 {
            gap = next_gap(gap, cap);
            gaps.push(gap.as_millis());
        }
        assert_eq!(gaps[0], 50);
        assert!(gaps.windows(2).all(|w| w[0] <= w[1]), "{gaps:?}");
        assert_eq!(*gaps.last().unwrap_or(&0), 500);
        // A health_interval below the first retry is the cap from the start.
        assert_eq!(
            next_gap(Duration::ZERO, Duration::from_millis(20)),
            Duration::from_millis(20)
        );
    }

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
