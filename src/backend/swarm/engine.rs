//! The Swarm half of the Engine API (bollard), on a manager: services of a
//! stack, their tasks and nodes, a service's image, and a tag's registry
//! digest. Converted at this boundary into [`judge`]'s plain views.

use std::collections::{BTreeMap, HashMap};

use bollard::models::{
    LocalNodeState, NodeState, Service, ServiceSpec, ServiceSpecUpdateConfig,
    ServiceSpecUpdateConfigFailureActionEnum, ServiceSpecUpdateConfigOrderEnum, Task,
};
use bollard::query_parameters::{
    ListNetworksOptions, ListNodesOptions, ListServicesOptions, ListTasksOptions,
    UpdateServiceOptions,
};

use super::judge::{digest_of, ServiceView, TaskView};
use crate::config::Strategy;
use crate::error::{Error, Result};

/// The stack label `docker stack deploy` puts on everything it creates.
pub const STACK_LABEL: &str = "com.docker.stack.namespace";

#[derive(Clone)]
pub struct Swarm {
    pub api: bollard::Docker,
}

fn err(what: &str, e: bollard::errors::Error) -> Error {
    Error::env(format!("docker: {what}: {e}"))
}

fn not_found(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

impl Swarm {
    /// Connect to the engine and check it is an active manager.
    pub async fn manager() -> Result<(crate::engine::Docker, Swarm)> {
        let docker = crate::engine::Docker::connect().await?;
        let swarm = Swarm {
            api: docker.api().clone(),
        };
        swarm.check_manager().await?;
        Ok((docker, swarm))
    }

    /// This engine is an active manager of a swarm, or what to do.
    pub async fn check_manager(&self) -> Result<()> {
        let info = self
            .api
            .info()
            .await
            .map_err(|e| Error::Preflight(format!("cannot ask Docker about its swarm: {e}")))?;
        let swarm = info.swarm.unwrap_or_default();
        let active = swarm.local_node_state == Some(LocalNodeState::ACTIVE);
        if !active {
            return Err(Error::Preflight(
                "backend = \"swarm\" but this engine is not part of a swarm\n  hint: `docker swarm init` here, or point `host` at a manager".into(),
            ));
        }
        if swarm.control_available != Some(true) {
            return Err(Error::Preflight(
                "backend = \"swarm\" but this engine is a worker, not a manager\n  hint: point `host` at a manager (`docker node ls` on one lists them)".into(),
            ));
        }
        Ok(())
    }

    /// The services of `stack`, by Swarm name.
    pub async fn stack_services(&self, stack: &str) -> Result<Vec<String>> {
        let filters: HashMap<String, Vec<String>> =
            [("label".to_string(), vec![format!("{STACK_LABEL}={stack}")])].into();
        let services = self
            .api
            .list_services(Some(ListServicesOptions {
                filters: Some(filters),
                ..Default::default()
            }))
            .await
            .map_err(|e| err("list services", e))?;
        Ok(services
            .into_iter()
            .filter_map(|s| s.spec.and_then(|s| s.name))
            .collect())
    }

    /// The networks of `stack` the manager still lists (Swarm removes a
    /// stack's networks only once its tasks are gone, after `docker stack rm`).
    pub async fn stack_networks(&self, stack: &str) -> Result<Vec<String>> {
        let filters: HashMap<String, Vec<String>> =
            [("label".to_string(), vec![format!("{STACK_LABEL}={stack}")])].into();
        let networks = self
            .api
            .list_networks(Some(ListNetworksOptions {
                filters: Some(filters),
            }))
            .await
            .map_err(|e| err("list networks", e))?;
        Ok(networks.into_iter().filter_map(|n| n.name).collect())
    }

    /// A service, if it exists.
    pub async fn service(&self, name: &str) -> Result<Option<Service>> {
        match self.api.inspect_service(name, None).await {
            Ok(s) => Ok(Some(s)),
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(err(&format!("inspect service {name}"), e)),
        }
    }

    /// The tasks of the service with this ID (every state Swarm still
    /// keeps), and the hostnames of the nodes the manager marks down.
    pub async fn tasks_and_down_nodes(&self, id: &str) -> Result<(Vec<TaskView>, Vec<String>)> {
        let filters: HashMap<String, Vec<String>> =
            [("service".to_string(), vec![id.to_string()])].into();
        let (tasks, nodes) = tokio::join!(
            self.api.list_tasks(Some(ListTasksOptions {
                filters: Some(filters)
            })),
            self.nodes()
        );
        let tasks = tasks.map_err(|e| err(&format!("list tasks of service {id}"), e))?;
        let nodes = nodes?;
        let tasks = tasks
            .into_iter()
            // The filter also matches names that start alike: keep its own.
            .filter(|t| t.service_id.as_deref() == Some(id))
            .map(|t| task_view(t, &nodes))
            .collect();
        let down = nodes
            .into_values()
            .filter(|(_, down)| *down)
            .map(|(host, _)| host)
            .collect();
        Ok((tasks, down))
    }

    /// The tasks of the service with this ID.
    pub async fn tasks(&self, id: &str) -> Result<Vec<TaskView>> {
        Ok(self.tasks_and_down_nodes(id).await?.0)
    }

    /// Node ID → (hostname, down).
    pub async fn nodes(&self) -> Result<BTreeMap<String, (String, bool)>> {
        let nodes = self
            .api
            .list_nodes(None::<ListNodesOptions>)
            .await
            .map_err(|e| err("list nodes", e))?;
        Ok(nodes
            .into_iter()
            .filter_map(|n| {
                let id = n.id?;
                let host = n
                    .description
                    .and_then(|d| d.hostname)
                    .unwrap_or_else(|| id.clone());
                let down = n
                    .status
                    .and_then(|s| s.state)
                    .is_some_and(|s| matches!(s, NodeState::DOWN | NodeState::DISCONNECTED));
                Some((id, (host, down)))
            })
            .collect())
    }

    /// Move a service onto `image` in `strategy`'s update order. Swarm pauses
    /// on a failing task instead of rolling back on its own: the way back is
    /// slipway's history, not `PreviousSpec`. `force`: redo tasks even when
    /// the image is what the spec already names (a paused update).
    pub async fn set_image(
        &self,
        service: &Service,
        image: &str,
        strategy: Strategy,
        force: bool,
    ) -> Result<()> {
        let name = view(service).name;
        let mut spec: ServiceSpec = service.spec.clone().unwrap_or_default();
        let mut task = spec.task_template.clone().unwrap_or_default();
        let mut container = task.container_spec.clone().unwrap_or_default();
        container.image = Some(image.to_string());
        task.container_spec = Some(container);
        if force {
            task.force_update = Some(task.force_update.unwrap_or(0) + 1);
        }
        spec.task_template = Some(task);
        let update = spec.update_config.clone().unwrap_or_default();
        spec.update_config = Some(ServiceSpecUpdateConfig {
            order: Some(match strategy {
                Strategy::StartFirst => ServiceSpecUpdateConfigOrderEnum::START_FIRST,
                Strategy::StopFirst => ServiceSpecUpdateConfigOrderEnum::STOP_FIRST,
            }),
            failure_action: Some(ServiceSpecUpdateConfigFailureActionEnum::PAUSE),
            ..update
        });
        let version = service
            .version
            .as_ref()
            .and_then(|v| v.index)
            .unwrap_or_default();
        let options = UpdateServiceOptions {
            version: version as i32,
            ..Default::default()
        };
        // As `--with-registry-auth`: the nodes pull with the user's login.
        let answer = self
            .api
            .update_service(&name, spec, options, super::auth::credentials_for(image))
            .await
            .map_err(|e| err(&format!("update service {name}"), e))?;
        if let Some(w) = answer.warnings.filter(|w| !w.is_empty()) {
            tracing::debug!("update {name}: {}", w.join("; "));
        }
        Ok(())
    }

    /// The last `tail` lines a task wrote (read through the manager from
    /// its node); `None` when they cannot be read (the node is gone).
    pub async fn task_logs(&self, id: &str, tail: usize) -> Option<Vec<String>> {
        use futures_util::StreamExt;
        let opts = bollard::query_parameters::LogsOptions {
            stdout: true,
            stderr: true,
            tail: tail.to_string(),
            ..Default::default()
        };
        let read = async {
            let mut stream = self.api.task_logs(id, Some(opts));
            let mut bytes = Vec::new();
            while let Some(chunk) = stream.next().await {
                bytes.extend_from_slice(chunk.ok()?.as_ref());
            }
            Some(crate::engine::docker::last_lines(
                &String::from_utf8_lossy(&bytes),
                tail,
            ))
        };
        tokio::time::timeout(std::time::Duration::from_secs(5), read)
            .await
            .ok()
            .flatten()
    }

    pub async fn remove(&self, name: &str) -> Result<()> {
        match self.api.delete_service(name).await {
            Ok(()) => Ok(()),
            Err(e) if not_found(&e) => Ok(()),
            Err(e) => Err(err(&format!("remove service {name}"), e)),
        }
    }

    /// The digest a registry gives `reference` (`repo:tag` or `repo@digest`)
    /// now, asked through the manager's engine (its registry settings and
    /// credentials); `None` when the registry does not have it. An error is
    /// a registry (or engine) that could not say.
    pub async fn registry_digest(
        &self,
        reference: &str,
    ) -> std::result::Result<Option<String>, String> {
        match self
            .api
            .inspect_registry_image(reference, super::auth::credentials_for(reference))
            .await
        {
            Ok(answer) => answer
                .descriptor
                .digest
                .map(Some)
                .ok_or_else(|| format!("the registry gave no digest for {reference}")),
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// What the judge needs of a service.
pub fn view(s: &Service) -> ServiceView {
    let spec = s.spec.clone().unwrap_or_default();
    let image = spec
        .task_template
        .and_then(|t| t.container_spec)
        .and_then(|c| c.image)
        .unwrap_or_default();
    let replicas = match spec.mode {
        Some(m) if m.global.is_some() => None,
        Some(m) => Some(m.replicated.and_then(|r| r.replicas).unwrap_or(1).max(0) as u64),
        None => Some(1),
    };
    let status = s.update_status.clone();
    ServiceView {
        name: spec.name.unwrap_or_default(),
        image,
        replicas,
        update_state: status
            .as_ref()
            .and_then(|u| u.state)
            .map(|s| s.to_string())
            .filter(|s| !s.is_empty()),
        update_message: status.and_then(|u| u.message),
    }
}

fn task_view(t: Task, nodes: &BTreeMap<String, (String, bool)>) -> TaskView {
    let image = t
        .spec
        .and_then(|s| s.container_spec)
        .and_then(|c| c.image)
        .unwrap_or_default();
    let node_id = t.node_id.unwrap_or_default();
    // A node the swarm no longer lists is gone: as good as down.
    let (node, node_down) = nodes
        .get(&node_id)
        .cloned()
        .unwrap_or_else(|| (node_id.clone(), !node_id.is_empty()));
    let status = t.status.unwrap_or_default();
    let message = status
        .err
        .filter(|e| !e.is_empty())
        .or(status.message)
        .unwrap_or_default();
    TaskView {
        id: t.id.unwrap_or_default(),
        slot: t.slot,
        node,
        node_down,
        digest: digest_of(&image).map(str::to_string),
        state: status.state.map(|s| s.to_string()).unwrap_or_default(),
        desired: t.desired_state.map(|s| s.to_string()).unwrap_or_default(),
        message,
    }
}
