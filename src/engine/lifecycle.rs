//! What slipway does to single containers itself, beside what compose does
//! to services: take one out of rotation (off its networks) and back, stop
//! and remove one, and follow the engine's event stream so waits end when
//! something happens instead of after a sleep.
//!
//! Converted at this boundary into slipway's small types ([`Replica`]).

use std::collections::{BTreeMap, HashMap};

use bollard::models::{EndpointSettings, NetworkConnectRequest, NetworkDisconnectRequest};
use bollard::query_parameters::{
    EventsOptions, InspectContainerOptions, ListNetworksOptions, RemoveContainerOptions,
    StartContainerOptions, StopContainerOptions,
};
use futures_util::{Stream, StreamExt};

use super::docker::{docker_err, is_not_found};
use super::Docker;
use crate::error::Result;

/// One container of a compose service, as a rollout sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replica {
    pub id: String,
    pub name: String,
    /// `com.docker.compose.container-number`, for a stable order.
    pub number: u32,
    pub image_id: String,
    /// `com.docker.compose.config-hash`: equal to compose's hash of the
    /// pinned service means "already what this release wants".
    pub config_hash: String,
    pub running: bool,
    /// Network name → its aliases there.
    pub networks: BTreeMap<String, Vec<String>>,
}

impl Docker {
    /// The containers of one compose service (one-off runs excluded), by number.
    pub async fn replicas(&self, project: &str, service: &str) -> Result<Vec<Replica>> {
        let mut out = Vec::new();
        for id in self.compose_container_ids(project, Some(service)).await? {
            let inspected = match self
                .api()
                .inspect_container(&id, None::<InspectContainerOptions>)
                .await
            {
                Ok(i) => i,
                Err(e) if is_not_found(&e) => continue,
                Err(e) => return Err(docker_err(&format!("inspect container {id}"), e)),
            };
            let labels = inspected
                .config
                .as_ref()
                .and_then(|c| c.labels.clone())
                .unwrap_or_default();
            let networks = inspected
                .network_settings
                .and_then(|n| n.networks)
                .unwrap_or_default()
                .into_iter()
                .map(|(name, e)| (name, e.aliases.unwrap_or_default()))
                .collect();
            out.push(Replica {
                id: id.clone(),
                name: inspected
                    .name
                    .unwrap_or_default()
                    .trim_start_matches('/')
                    .to_string(),
                number: labels
                    .get("com.docker.compose.container-number")
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0),
                image_id: inspected.image.unwrap_or_default(),
                config_hash: labels
                    .get("com.docker.compose.config-hash")
                    .cloned()
                    .unwrap_or_default(),
                running: inspected.state.and_then(|s| s.running).unwrap_or(false),
                networks,
            });
        }
        out.sort_by(|a, b| a.number.cmp(&b.number).then(a.name.cmp(&b.name)));
        Ok(out)
    }

    /// Take a container off a network: the engine's DNS stops naming it, so
    /// proxies resolving the service stop sending it new connections.
    pub async fn disconnect(&self, network: &str, container: &str) -> Result<()> {
        let req = NetworkDisconnectRequest {
            container: container.to_string(),
            force: Some(true),
        };
        match self.api().disconnect_network(network, req).await {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(docker_err(
                &format!("disconnect {container} from {network}"),
                e,
            )),
        }
    }

    /// Put a container back on a network under the given aliases.
    pub async fn reconnect(
        &self,
        network: &str,
        container: &str,
        aliases: &[String],
    ) -> Result<()> {
        let req = NetworkConnectRequest {
            container: container.to_string(),
            endpoint_config: Some(EndpointSettings {
                aliases: Some(aliases.to_vec()),
                ..Default::default()
            }),
        };
        self.api()
            .connect_network(network, req)
            .await
            .map_err(|e| docker_err(&format!("connect {container} to {network}"), e))
    }

    /// Stop a container gracefully, as `docker stop` does: its own stop signal,
    /// then its grace period (compose's `stop_grace_period`) before a kill.
    /// The container is kept. Stopped or gone already is fine.
    pub async fn stop(&self, container: &str) -> Result<()> {
        match self
            .api()
            .stop_container(container, None::<StopContainerOptions>)
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            // 304: already stopped.
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 304, ..
            }) => Ok(()),
            Err(e) => Err(docker_err(&format!("stop container {container}"), e)),
        }
    }

    /// Start a stopped container again, on the networks it was on.
    pub async fn start(&self, container: &str) -> Result<()> {
        match self
            .api()
            .start_container(container, None::<StartContainerOptions>)
            .await
        {
            Ok(()) => Ok(()),
            // 304: already running.
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 304, ..
            }) => Ok(()),
            Err(e) => Err(docker_err(&format!("start container {container}"), e)),
        }
    }

    /// Stop a container (its own stop signal and grace period, as compose
    /// set them) and remove it with its anonymous volumes. Gone already is fine.
    pub async fn stop_and_remove(&self, container: &str) -> Result<()> {
        self.stop(container).await?;
        self.remove(container).await
    }

    /// Remove a container with its anonymous volumes, killing it if it runs
    /// (no grace period: for one that never served). Gone already is fine.
    pub async fn remove(&self, container: &str) -> Result<()> {
        let opts = RemoveContainerOptions {
            force: true,
            v: true,
            ..Default::default()
        };
        match self.api().remove_container(container, Some(opts)).await {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            // 409: removal already in progress.
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 409, ..
            }) => Ok(()),
            Err(e) => Err(docker_err(&format!("remove container {container}"), e)),
        }
    }

    /// The container's address on its networks (the first, by network name),
    /// for probing that one container from the host.
    pub async fn container_address(&self, container: &str) -> Result<Option<String>> {
        let c = match self
            .api()
            .inspect_container(container, None::<InspectContainerOptions>)
            .await
        {
            Ok(c) => c,
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(docker_err(&format!("inspect container {container}"), e)),
        };
        let networks: BTreeMap<String, EndpointSettings> = c
            .network_settings
            .and_then(|n| n.networks)
            .unwrap_or_default()
            .into_iter()
            .collect();
        Ok(networks
            .into_values()
            .filter_map(|e| e.ip_address)
            .find(|ip| !ip.is_empty()))
    }

    /// Every engine event about the containers of one compose service, from
    /// `since` (unix seconds, so nothing between a look and the subscription
    /// is missed). The stream yields `()`: "something happened, look again".
    pub fn service_events(
        &self,
        project: &str,
        service: &str,
        since: f64,
    ) -> impl Stream<Item = ()> + Send + 'static {
        let filters: HashMap<String, Vec<String>> = [
            ("type".to_string(), vec!["container".to_string()]),
            (
                "label".to_string(),
                vec![
                    format!("com.docker.compose.project={project}"),
                    format!("com.docker.compose.service={service}"),
                ],
            ),
        ]
        .into_iter()
        .collect();
        let opts = EventsOptions {
            since: Some(format!("{since:.3}")),
            until: None,
            filters: Some(filters),
        };
        let api = self.api().clone();
        async_stream(api, opts)
    }

    /// Whether every named network exists (then compose creates none, and
    /// several `up`s of one project can run at once).
    pub async fn networks_exist(&self, names: &[String]) -> Result<bool> {
        let list = self
            .api()
            .list_networks(None::<ListNetworksOptions>)
            .await
            .map_err(|e| docker_err("list networks", e))?;
        Ok(names
            .iter()
            .all(|n| list.iter().any(|net| net.name.as_deref() == Some(n))))
    }
}

fn async_stream(
    api: bollard::Docker,
    opts: EventsOptions,
) -> impl Stream<Item = ()> + Send + 'static {
    futures_util::stream::unfold(
        (
            api,
            Some(opts),
            None::<std::pin::Pin<Box<dyn Stream<Item = _> + Send>>>,
        ),
        |(api, opts, mut stream)| async move {
            if stream.is_none() {
                let s = api.events(opts.clone());
                stream = Some(Box::pin(s));
            }
            let s = stream.as_mut()?;
            match s.next().await {
                Some(Ok(_)) => Some(((), (api, opts, stream))),
                // The event stream broke: stop yielding; waits fall back to their timers.
                Some(Err(_)) | None => None,
            }
        },
    )
}

/// Unix time now, in seconds, for [`Docker::service_events`].
pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
