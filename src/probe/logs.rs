//! The last log lines of the containers a health wait judged not healthy
//! (exited, restarting, unhealthy, or not ready when it gave up), captured
//! at the moment of the verdict: a rollback removes those containers moments
//! later. A [`Capture`] collects them for the pipeline to keep, print and
//! announce; every line is redacted like any other probe output.

use std::sync::Mutex;

use crate::engine::{Container, Docker, Health};
use crate::state::ContainerLogs;

use super::Secrets;

/// The default of `--logs N`.
pub const DEFAULT_LINES: usize = 30;

/// Which of a service's containers to show when its wait failed: those on
/// the release's image that failed outright (exited, restarting, unhealthy);
/// if none did (a timeout, a probe that never passed), every one on the
/// release's image that was still being waited for.
pub fn failing<'c>(containers: &'c [Container], image_id: &str) -> Vec<&'c Container> {
    let ours: Vec<&Container> = containers
        .iter()
        .filter(|c| image_id.is_empty() || c.image_id == image_id)
        .collect();
    let broken: Vec<&Container> = ours
        .iter()
        .copied()
        .filter(|c| {
            matches!(c.state.as_str(), "exited" | "dead" | "restarting")
                || c.health == Health::Unhealthy
        })
        .collect();
    if broken.is_empty() {
        ours
    } else {
        broken
    }
}

/// Collects the failing containers' lines during one release.
pub struct Capture {
    /// Lines per container; 0 captures nothing.
    pub lines: usize,
    pub secrets: Secrets,
    taken: Mutex<Vec<(String, ContainerLogs)>>,
}

impl Capture {
    pub fn new(lines: usize, secrets: Secrets) -> Capture {
        Capture {
            lines,
            secrets,
            taken: Mutex::new(Vec::new()),
        }
    }

    /// Read the last lines of `containers` now, once per container. A
    /// container whose logs cannot be read is skipped: the failure itself is
    /// what the release reports.
    pub async fn take(&self, docker: &Docker, containers: &[&Container]) {
        if self.lines == 0 {
            return;
        }
        for c in containers {
            if self.has(&c.id) {
                continue;
            }
            let lines = match docker.logs(&c.id, self.lines).await {
                Ok(Some(lines)) => lines,
                Ok(None) => continue,
                Err(e) => {
                    tracing::debug!(container = %c.name, error = %e, "cannot read logs");
                    continue;
                }
            };
            let logs = self.redacted(c, &lines);
            if let Ok(mut taken) = self.taken.lock() {
                taken.push((c.id.clone(), logs));
            }
        }
    }

    /// Keep lines read some other way (a Swarm task's), once per ID.
    pub fn keep(&self, id: &str, service: &str, name: &str, lines: &[String]) {
        if self.lines == 0 || self.has(id) {
            return;
        }
        let logs = ContainerLogs {
            service: service.to_string(),
            container: name.to_string(),
            lines: lines.iter().map(|l| self.secrets.redact(l)).collect(),
        };
        if let Ok(mut taken) = self.taken.lock() {
            taken.push((id.to_string(), logs));
        }
    }

    /// A container's lines as kept: no env file value survives.
    fn redacted(&self, c: &Container, lines: &[String]) -> ContainerLogs {
        ContainerLogs {
            service: c.service.clone(),
            container: c.name.clone(),
            lines: lines.iter().map(|l| self.secrets.redact(l)).collect(),
        }
    }

    fn has(&self, id: &str) -> bool {
        self.taken
            .lock()
            .is_ok_and(|t| t.iter().any(|(taken, _)| taken == id))
    }

    /// Everything captured so far, in the order captured; the capture starts empty again.
    pub fn drain(&self) -> Vec<ContainerLogs> {
        match self.taken.lock() {
            Ok(mut t) => t.drain(..).map(|(_, l)| l).collect(),
            Err(_) => Vec::new(),
        }
    }
}

/// The lines as printed under the failing step: `    ┆ api-1: <line>`, the
/// container named without its project prefix.
pub fn render(logs: &[ContainerLogs], project: &str) -> String {
    let mut out = String::new();
    for l in logs {
        let name = short_name(&l.container, project);
        if l.lines.is_empty() {
            out.push_str(&format!("    ┆ {name}: (no output)\n"));
        }
        for line in &l.lines {
            out.push_str(&format!("    ┆ {name}: {line}\n"));
        }
    }
    out
}

/// `goodgo-api-1` → `api-1` for project `goodgo`.
pub fn short_name<'n>(container: &'n str, project: &str) -> &'n str {
    container
        .strip_prefix(project)
        .and_then(|rest| rest.strip_prefix(['-', '_']))
        .filter(|rest| !rest.is_empty())
        .unwrap_or(container)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(id: &str, state: &str, health: Health, image_id: &str) -> Container {
        Container {
            id: id.into(),
            name: format!("p-api-{id}"),
            service: "api".into(),
            image: "r/api:v2".into(),
            image_id: image_id.into(),
            state: state.into(),
            health,
            exit_code: 3,
            restart_count: 0,
            started_at: String::new(),
            health_log: None,
        }
    }

    #[test]
    fn failing_picks_the_broken_containers_of_the_release() {
        let cs = [
            container("1", "running", Health::Healthy, "sha256:new"),
            container("2", "exited", Health::None, "sha256:new"),
            container("3", "exited", Health::None, "sha256:old"),
            container("4", "running", Health::Unhealthy, "sha256:new"),
        ];
        let ids: Vec<&str> = failing(&cs, "sha256:new")
            .iter()
            .map(|c| c.id.as_str())
            .collect();
        assert_eq!(ids, ["2", "4"]);
        // A timeout: nothing broke outright, every new container is shown.
        let cs = [
            container("1", "running", Health::Starting, "sha256:new"),
            container("2", "running", Health::Healthy, "sha256:old"),
        ];
        let ids: Vec<&str> = failing(&cs, "sha256:new")
            .iter()
            .map(|c| c.id.as_str())
            .collect();
        assert_eq!(ids, ["1"]);
    }

    #[test]
    fn lines_are_printed_per_container_with_its_short_name() {
        let logs = [ContainerLogs {
            service: "api".into(),
            container: "goodgo-api-1".into(),
            lines: vec!["booting".into(), "fixture: crashing".into()],
        }];
        assert_eq!(
            render(&logs, "goodgo"),
            "    ┆ api-1: booting\n    ┆ api-1: fixture: crashing\n"
        );
        assert_eq!(short_name("other-api-1", "goodgo"), "other-api-1");
        assert_eq!(short_name("goodgo", "goodgo"), "goodgo");
    }

    #[test]
    fn env_file_values_are_redacted_from_captured_lines() {
        let secrets = Secrets::from_pairs([("APP_SECRET", "s3cr3t-canary-value")].into_iter());
        let capture = Capture::new(30, secrets);
        let c = container("1", "exited", Health::None, "sha256:new");
        let kept = capture.redacted(
            &c,
            &["config: secret=s3cr3t-canary-value".into(), "bye".into()],
        );
        assert_eq!(kept.lines, ["config: secret=[APP_SECRET]", "bye"]);
        assert_eq!(
            (kept.service.as_str(), kept.container.as_str()),
            ("api", "p-api-1")
        );
    }
}
