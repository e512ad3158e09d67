//! Docker Engine API access (bollard), converted at this boundary into
//! slipway's own small types: image IDs, tags, container state and health.
//!
//! Reads go through the Engine API; nothing here pulls or creates containers
//! (that is Compose's job, see `compose.rs`).

use std::collections::{BTreeSet, HashMap};

use bollard::query_parameters::{
    InspectContainerOptions, ListContainersOptions, ListImagesOptions, LogsOptions,
    RemoveImageOptions, TagImageOptions,
};
use futures_util::StreamExt;

use crate::error::{Error, Result};

#[derive(Clone)]
pub struct Docker {
    api: bollard::Docker,
}

/// A local image: its ID and every `repo:tag` / `repo@digest` naming it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub id: String,
    pub tags: Vec<String>,
    pub digests: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// The image defines no HEALTHCHECK.
    None,
    Starting,
    Healthy,
    Unhealthy,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::None => "none",
            Health::Starting => "starting",
            Health::Healthy => "healthy",
            Health::Unhealthy => "unhealthy",
        }
    }
}

/// One container of a compose service, as Docker reports it now.
#[derive(Debug, Clone)]
pub struct Container {
    pub id: String,
    pub name: String,
    pub service: String,
    /// The reference the container was created from.
    pub image: String,
    pub image_id: String,
    /// `created`, `running`, `restarting`, `exited`, `dead`, …
    pub state: String,
    pub health: Health,
    pub exit_code: i64,
    pub restart_count: i64,
    /// When the current run started (RFC 3339), for the readiness delay.
    pub started_at: String,
    /// The last health check output, for error messages.
    pub health_log: Option<String>,
}

pub(super) fn docker_err(what: &str, e: bollard::errors::Error) -> Error {
    Error::env(format!("docker: {what}: {e}"))
}

pub(super) fn is_not_found(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

impl Docker {
    /// Connect (DOCKER_HOST or the local socket) and agree on an API version,
    /// so an older daemon than bollard's default still answers.
    pub async fn connect() -> Result<Docker> {
        let hint = "\n  hint: is the Docker daemon running? `docker info` should answer (DOCKER_HOST is honoured)";
        let api = bollard::Docker::connect_with_defaults()
            .map_err(|e| Error::Preflight(format!("cannot reach Docker: {e}{hint}")))?;
        let api = tokio::time::timeout(std::time::Duration::from_secs(15), api.negotiate_version())
            .await
            .map_err(|_| Error::Preflight(format!("Docker did not answer within 15 s{hint}")))?
            .map_err(|e| Error::Preflight(format!("cannot reach Docker: {e}{hint}")))?;
        api.ping()
            .await
            .map_err(|e| Error::Preflight(format!("cannot reach Docker: {e}{hint}")))?;
        Ok(Docker { api })
    }

    pub fn api(&self) -> &bollard::Docker {
        &self.api
    }

    /// The image ID a reference (tag or ID) resolves to, if present locally.
    pub async fn image_id(&self, reference: &str) -> Result<Option<String>> {
        match self.api.inspect_image(reference).await {
            Ok(i) => Ok(i.id),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(docker_err(&format!("inspect image {reference}"), e)),
        }
    }

    /// Whether a local image declares a HEALTHCHECK (`None`: not present locally).
    pub async fn image_has_healthcheck(&self, reference: &str) -> Result<Option<bool>> {
        match self.api.inspect_image(reference).await {
            Ok(i) => Ok(Some(
                i.config
                    .and_then(|c| c.healthcheck)
                    .and_then(|h| h.test)
                    .is_some_and(|t| !t.is_empty() && t[0] != "NONE"),
            )),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(docker_err(&format!("inspect image {reference}"), e)),
        }
    }

    /// Point `repo:tag` at `image_id` (moving the tag if it exists).
    pub async fn tag(&self, image_id: &str, repo: &str, tag: &str) -> Result<()> {
        let opts = TagImageOptions {
            repo: Some(repo.to_string()),
            tag: Some(tag.to_string()),
        };
        self.api
            .tag_image(image_id, Some(opts))
            .await
            .map_err(|e| docker_err(&format!("tag {image_id} as {repo}:{tag}"), e))
    }

    pub async fn images(&self) -> Result<Vec<Image>> {
        let opts = ListImagesOptions {
            all: false,
            ..Default::default()
        };
        let list = self
            .api
            .list_images(Some(opts))
            .await
            .map_err(|e| docker_err("list images", e))?;
        Ok(list
            .into_iter()
            .map(|i| Image {
                id: i.id,
                tags: i
                    .repo_tags
                    .into_iter()
                    .filter(|t| t != "<none>:<none>")
                    .collect(),
                digests: i
                    .repo_digests
                    .into_iter()
                    .filter(|t| t != "<none>@<none>")
                    .collect(),
            })
            .collect())
    }

    /// Delete an image by ID with all its tags. Only called for IDs outside the keep-set.
    pub async fn remove_image(&self, id: &str) -> Result<()> {
        let opts = RemoveImageOptions {
            force: true,
            noprune: false,
            ..Default::default()
        };
        match self.api.remove_image(id, Some(opts), None).await {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(docker_err(&format!("remove image {id}"), e)),
        }
    }

    /// Remove one tag (not the image behind it, unless it was the last name).
    pub async fn untag(&self, reference: &str) -> Result<()> {
        let opts = RemoveImageOptions {
            force: false,
            noprune: true,
            ..Default::default()
        };
        match self.api.remove_image(reference, Some(opts), None).await {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(docker_err(&format!("untag {reference}"), e)),
        }
    }

    /// Image IDs used by any container on the host, running or not.
    pub async fn images_in_use(&self) -> Result<BTreeSet<String>> {
        let opts = ListContainersOptions {
            all: true,
            ..Default::default()
        };
        let list = self
            .api
            .list_containers(Some(opts))
            .await
            .map_err(|e| docker_err("list containers", e))?;
        Ok(list.into_iter().filter_map(|c| c.image_id).collect())
    }

    /// IDs of the containers of a compose project (optionally one service),
    /// one-off runs excluded, selected by compose's labels (same in v1 and v2).
    pub(super) async fn compose_container_ids(
        &self,
        project: &str,
        service: Option<&str>,
    ) -> Result<Vec<String>> {
        let mut labels = vec![format!("com.docker.compose.project={project}")];
        if let Some(s) = service {
            labels.push(format!("com.docker.compose.service={s}"));
        }
        let filters: HashMap<String, Vec<String>> =
            [("label".to_string(), labels)].into_iter().collect();
        let opts = ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        };
        let list = self
            .api
            .list_containers(Some(opts))
            .await
            .map_err(|e| docker_err("list containers", e))?;
        Ok(list
            .into_iter()
            .filter(|c| {
                c.labels
                    .as_ref()
                    .and_then(|l| l.get("com.docker.compose.oneoff"))
                    .is_none_or(|v| v != "True")
            })
            .filter_map(|c| c.id)
            .collect())
    }

    /// The containers of a compose project (optionally one service), one-off runs excluded.
    pub async fn containers(&self, project: &str, service: Option<&str>) -> Result<Vec<Container>> {
        let mut out = Vec::new();
        for id in self.compose_container_ids(project, service).await? {
            if let Some(container) = self.container(&id).await? {
                out.push(container);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// The last `tail` lines a container wrote, stdout and stderr merged in
    /// the order the engine kept them, without timestamps. A container
    /// already removed has none (`None`).
    pub async fn logs(&self, id: &str, tail: usize) -> Result<Option<Vec<String>>> {
        let opts = LogsOptions {
            stdout: true,
            stderr: true,
            timestamps: false,
            tail: tail.to_string(),
            ..Default::default()
        };
        let mut stream = self.api.logs(id, Some(opts));
        let mut bytes = Vec::new();
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(out) => bytes.extend_from_slice(out.as_ref()),
                Err(e) if is_not_found(&e) => return Ok(None),
                Err(e) => return Err(docker_err(&format!("logs of container {id}"), e)),
            }
        }
        Ok(Some(last_lines(&String::from_utf8_lossy(&bytes), tail)))
    }

    pub async fn container(&self, id: &str) -> Result<Option<Container>> {
        let c = match self
            .api
            .inspect_container(id, None::<InspectContainerOptions>)
            .await
        {
            Ok(c) => c,
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(docker_err(&format!("inspect container {id}"), e)),
        };
        let state = c.state.unwrap_or_default();
        let (health, health_log) = match state.health {
            None => (Health::None, None),
            Some(h) => {
                let log = h
                    .log
                    .and_then(|l| l.last().and_then(|r| r.output.clone()))
                    .map(|o| o.trim().chars().take(300).collect());
                let status = match h.status.map(|s| s.to_string()).as_deref() {
                    Some("healthy") => Health::Healthy,
                    Some("unhealthy") => Health::Unhealthy,
                    Some("starting") => Health::Starting,
                    _ => Health::None,
                };
                (status, log)
            }
        };
        let config = c.config.unwrap_or_default();
        let service = config
            .labels
            .as_ref()
            .and_then(|l| l.get("com.docker.compose.service").cloned())
            .unwrap_or_default();
        Ok(Some(Container {
            id: c.id.unwrap_or_default(),
            name: c
                .name
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_string(),
            service,
            image: config.image.unwrap_or_default(),
            image_id: c.image.unwrap_or_default(),
            state: state
                .status
                .map(|s| s.to_string())
                .unwrap_or_else(|| "unknown".into()),
            health,
            exit_code: state.exit_code.unwrap_or(0),
            restart_count: c.restart_count.unwrap_or(0),
            started_at: state.started_at.unwrap_or_default(),
            health_log,
        }))
    }
}

/// The last `n` lines of `text`, without line ends; a trailing empty line
/// (the newline after the last) is not a line.
pub fn last_lines(text: &str, n: usize) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let skip = lines.len().saturating_sub(n);
    lines[skip..]
        .iter()
        .map(|l| l.trim_end_matches('\r').to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_keeps_the_last_lines_without_line_ends() {
        assert_eq!(last_lines("a\nb\r\nc\n", 2), ["b", "c"]);
        assert_eq!(last_lines("a\nb", 30), ["a", "b"]);
        assert!(last_lines("a\nb\n", 0).is_empty());
        assert!(last_lines("", 5).is_empty());
        // An empty line inside the output is a line.
        assert_eq!(last_lines("a\n\nb\n", 3), ["a", "", "b"]);
    }
}
